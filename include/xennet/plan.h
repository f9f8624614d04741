/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>

#include "xennet/ledger.h"
#include "xennet/netlink.h"
#include "xennet/nft.h"
#include "xennet/profile.h"

/* A plan is the ordered list of kernel changes that converge the host from
 * what it has (snapshot, ledger, nft table) to what a profile wants. The
 * same plan is printed by `xennet check` (a dry run) and executed by the
 * daemon. */

enum xn_step_op {
	XN_STEP_PORT_RELEASE, /* dev leaves bridge dev2 (undo) */
	XN_STEP_ADDR_RESTORE, /* moved addr back: add to dev (was on dev2) */
	XN_STEP_ROUTE_RESTORE, /* moved route back to dev (from dev2) */
	XN_STEP_ADDR_DEL, /* delete addr from dev */
	XN_STEP_BRIDGE_DELETE, /* delete bridge dev */
	XN_STEP_SYSCTL_RESTORE, /* write original value back */
	XN_STEP_BRIDGE_RESTORE, /* STP and forward delay of an adopted bridge back */
	XN_STEP_BRIDGE_CREATE, /* create bridge dev (mtu, stp, forward_delay) */
	XN_STEP_BRIDGE_TUNE, /* stp, forward_delay on dev (XN_BRIDGE_LEAVE: as is) */
	XN_STEP_LINK_MTU, /* set mtu of dev */
	XN_STEP_PORT_ADD, /* dev joins bridge dev2 */
	XN_STEP_LINK_UP, /* bring dev up */
	XN_STEP_ADDR_ADD, /* add addr to dev */
	XN_STEP_ADDR_MOVE, /* copy addr from dev2 to dev (then ADDR_DEL) */
	XN_STEP_ROUTE_MOVE, /* move route from dev2 to dev */
	XN_STEP_SYSCTL_SET, /* write value, remembering original */
	XN_STEP_NFT_INSTALL, /* replace the nft table (or delete it) */
};

struct xn_step {
	enum xn_step_op op;
	char dev[IFNAMSIZ];
	char dev2[IFNAMSIZ];
	struct xn_addr addr;
	struct xn_route route;
	unsigned mtu;
	uint32_t stp, forward_delay; /* bridge steps; forward delay in centiseconds */
	uint32_t was_stp, was_forward_delay; /* BRIDGE_TUNE of an adopted bridge */
	bool record; /* add what this step makes to the ledger */
	char path[128];
	char value[XN_SYSCTL_VALUE_MAX];
	char original[XN_SYSCTL_VALUE_MAX];
};

struct xn_plan {
	struct xn_step *steps;
	size_t n_steps;
	struct xn_nft_spec nft; /* wanted tables */
	/* What a table replacement keeps: vif elements, mappings
	 * (borrowed from the caller, may be NULL). */
	const struct xn_nft_dynamic *dyn;
	bool nft_unknown; /* the table could not be read (no privilege) */
	/* Write-ahead: where the ledger is saved before each step that makes
	 * something (and after each that undoes something); NULL: never. */
	const char *ledger_path;
	/* What applying would break or change beyond the profile's own
	 * devices (guests detached, a lease made permanent): one line each,
	 * shown by `xennet check` and in the apply report. */
	struct xn_buf warnings;
};

/* The sysctls a profile wants, with their values. */
#define XN_MAX_WANTED_SYSCTLS 4
struct xn_wanted_sysctl {
	char path[128];
	const char *value;
};
size_t xn_plan_sysctls(const struct xn_profile *p,
		       struct xn_wanted_sysctl out[XN_MAX_WANTED_SYSCTLS]);

/* The nftables table a profile wants (empty spec for NULL). */
void xn_plan_nft_spec(const struct xn_profile *p, struct xn_nft_spec *spec);

/* Compute the plan. profile NULL means "remove everything xennet made".
 * Fails with -ENODEV / -EEXIST and a message in err when the host cannot
 * take the profile (an uplink that does not exist, a bridge name taken by
 * another kind of device), and with -EADDRINUSE ("FILE:LINE: ...") when a
 * bridge address it would add overlaps an address or route the host uses
 * outside xennet (the LAN's own subnet). */
int xn_plan_build(const struct xn_profile *profile, const struct xn_snapshot *s,
		  const struct xn_ledger *ledger, enum xn_nft_table_state nft_state,
		  bool nft_unknown, struct xn_plan *plan, struct xn_buf *err);
void xn_plan_clear(struct xn_plan *plan);
void xn_plan_print(const struct xn_plan *plan, FILE *f);
/* The plan's warnings, "warning: ..." one a line. */
void xn_plan_warnings(const struct xn_plan *plan, struct xn_buf *b);
void xn_step_describe(const struct xn_step *st, struct xn_buf *b);

/* Execute the steps in order, keeping the ledger true to what was done
 * even when a step fails half way. Returns the first error, with the
 * failing step described in err. */
int xn_plan_apply(struct xn_nl *nl, struct xn_nft *nft, const struct xn_plan *plan,
		  struct xn_ledger *ledger, size_t *done, struct xn_buf *err);
