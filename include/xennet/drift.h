/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "xennet/hotplug.h"
#include "xennet/profile.h"
#include "xennet/publicip.h"
#include "xennet/util.h"

/* Drift that the profile's convergence does not see: the elements of
 * xennet's sets and maps (someone deleting a vif's anti-spoofing element
 * or a mapping, or adding one of their own), and the sysctls xennet set
 * (written back by someone). The daemon checks on nftables and netconf
 * events, and once a second. */

struct xn_drift_report {
	int antispoof; /* anti-spoofing elements put back or removed */
	size_t publics; /* public addresses whose mapping was put back */
	struct xn_addr *moved; /* ... which they are */
};

/* Make the anti-spoofing sets hold exactly the connected vifs' elements
 * (when h is known: without it the vifs are not) and the NAT maps named
 * in sets (XN_NFT_SET_*) exactly the mappings in force, each in one
 * batch. */
struct xn_nft;
struct xn_conntrack;
int xn_drift_elements(struct xn_nft *nft, const struct xn_profile *p, struct xn_hotplug *h,
		      struct xn_publicip *pi, unsigned sets, struct xn_drift_report *rep,
		      struct xn_buf *err);

/* After a report: the flows that went to a public address while its
 * element was missing (to Dom0, untranslated) are dropped (a walk of the
 * conntrack table: after the repair, not before), and the report freed. */
void xn_drift_purge(struct xn_conntrack *ct, struct xn_drift_report *rep);

/* How many sysctls the profile wants have another value now (named in
 * which); with fix, each is written back. */
int xn_drift_sysctls(const struct xn_profile *p, bool fix, struct xn_buf *which);
