/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "xennet/ledger.h"
#include "xennet/netlink.h"
#include "xennet/plan.h"
#include "xennet/profile.h"

/* Converging the host to a profile: snapshot, plan, apply, ledger. Used by
 * the daemon (apply) and by `xennet check` (plan only). */

struct xn_engine {
	struct xn_nl *nl;
	/* Made with the engine; the daemon's other modules borrow it. */
	struct xn_nft *nft;
	char ledger_path[PATH_MAX];
	struct xn_ledger ledger;
	/* The last applied plan's warnings (guests detached, a lease made
	 * permanent), one a line; empty when none. */
	struct xn_buf warnings;
};

/* Loads the ledger from state_dir (a corrupt ledger is reported in err and
 * -EBADMSG returned). */
int xn_engine_open(const char *state_dir, struct xn_engine **ret,
		   struct xn_buf *err);
void xn_engine_close(struct xn_engine *e);

/* The plan that would take the host to profile (NULL: remove all); dyn
 * (NULL if unknown) is what the tables' sets are to hold. */
int xn_engine_plan(struct xn_engine *e, const struct xn_profile *profile,
		   const struct xn_nft_dynamic *dyn, struct xn_plan *plan,
		   struct xn_buf *err);

/* Plan and apply; the steps done are listed in report (one per line). When
 * the plan changes what the ledger holds, the ledger is written before the
 * kernel changes (refused, nothing changed, if it cannot be) and saved
 * after whatever happens, so that it always tells the truth; otherwise it
 * is not written at all (a full or read-only state directory does not
 * stop a restart or a repair). */
int xn_engine_apply(struct xn_engine *e, const struct xn_profile *profile,
		    const struct xn_nft_dynamic *dyn,
		    struct xn_buf *report, struct xn_buf *err);
