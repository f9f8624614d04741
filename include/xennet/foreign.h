/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "xennet/profile.h"
#include "xennet/util.h"

/* Other firewalls on the host that drop the guests' traffic: xennet never
 * edits them, but says so. A base chain on the forward hook that is not
 * xennet's, with policy drop or a final unconditional drop/reject (Docker's
 * `ip filter FORWARD`, firewalld's `inet firewalld filter_FORWARD`), unless
 * its table has a rule accepting the guests' interfaces. In bridged mode
 * the ip/ip6/inet ones count only with br_netfilter's
 * bridge-nf-call-iptables/ip6tables = 1, which sends bridged frames
 * through them. */

#define XN_FOREIGN_MAX 8

struct xn_foreign {
	size_t n; /* findings, each a sentence with its remedy */
	char what[XN_FOREIGN_MAX][256];
	bool degraded; /* the guests' traffic is dropped */
};

/* Read the ruleset and the br_netfilter sysctls for profile p (NULL:
 * nothing to check). Returns -errno when the ruleset cannot be read. */
int xn_foreign_check(const struct xn_profile *p, struct xn_foreign *ret);
/* The same findings as before (to log only what changed). */
bool xn_foreign_same(const struct xn_foreign *a, const struct xn_foreign *b);
