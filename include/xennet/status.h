/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "xennet/hotplug.h"
#include "xennet/json.h"
#include "xennet/ledger.h"
#include "xennet/netlink.h"
#include "xennet/nft.h"
#include "xennet/profile.h"

/* The status a daemon answers `status` with when the answer is good but
 * the host is degraded (another firewall drops the guests' traffic). */
#define XN_STATUS_DEGRADED 1000

struct xn_status_input {
	pid_t pid;
	const struct xn_profile *profile; /* may be NULL */
	const struct xn_ledger *ledger;
	const struct xn_snapshot *snapshot;
	const struct xn_nft_rule_info *rules;
	size_t n_rules;
	int nft_error; /* 0, -ENOENT (no table) or another -errno */
	const char *last_error; /* of the last apply, or NULL */
	/* The warnings of the last profile applied ("warning: ..." lines), or NULL. */
	const char *last_warnings;
	const char *state_dir; /* may be NULL */
	int state_error; /* 0, or why the state directory cannot be written */
	const char *profile_source; /* where the profile was applied from, "" or NULL unknown */
	/* More to say (the vifs): text lines in out, or (json not NULL)
	 * members of the status object written with json. */
	void (*extra)(struct xn_json *json, struct xn_buf *out, void *userdata);
	void *extra_userdata;
};

/* Human-readable text, or one JSON object. */
void xn_status_render(const struct xn_status_input *in, bool json,
		      struct xn_buf *out);

/* The vifs h knows (h may be NULL), with the spoofed packets dropped
 * from each (drops: xn_nft_vif_drops): text lines, or with json a "vifs"
 * member. */
void xn_status_vifs(struct xn_hotplug *h, const struct xn_nft_vif_drops *drops, size_t n_drops,
		    struct xn_json *json, struct xn_buf *out);
