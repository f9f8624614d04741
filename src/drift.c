/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/drift.h"

#include <stdio.h>
#include <string.h>

#include "xennet/conntrack.h"
#include "xennet/nft.h"
#include "xennet/plan.h"
#include "xennet/sysctl.h"

static int antispoof_elements(struct xn_nft *nft, const struct xn_profile *p,
			      struct xn_hotplug *h, struct xn_buf *err)
{
	struct xn_nft_spec spec;
	struct xn_nft_vif *vifs = NULL;
	size_t n = 0;
	int r;

	xn_plan_nft_spec(p, &spec);
	if (!h || (!spec.antispoof_bridge && !spec.antispoof_routed))
		return 0;
	r = xn_hotplug_nft_vifs(h, &vifs, &n);
	if (r < 0)
		return r;
	r = xn_nft_vifs_sync(nft, &spec, vifs, n, err);
	free(vifs);
	return r;
}

/* The NAT maps against the mappings in force (not the public addresses'
 * routes: xn_publicip_sync's business, at each convergence). */
static int nat_elements(struct xn_nft *nft, const struct xn_profile *p, struct xn_publicip *pi,
			unsigned sets, struct xn_drift_report *rep, struct xn_buf *err)
{
	const struct xn_mapset *maps;
	const struct xn_addr *publics;
	size_t n_publics;
	int r = xn_publicip_compose(pi, p, &maps, err);

	if (r < 0)
		return r;
	xn_publicip_listed(pi, &publics, &n_publics);
	r = xn_nft_maps_sync_sets(nft, maps, sets, publics, n_publics, &rep->moved, &rep->publics, err);
	xn_publicip_compose_done(pi);
	return r;
}

void xn_drift_purge(struct xn_conntrack *ct, struct xn_drift_report *rep)
{
	if (rep->publics)
		xn_conntrack_purge(ct, rep->moved, rep->publics);
	free(rep->moved);
	rep->moved = NULL;
}

int xn_drift_elements(struct xn_nft *nft, const struct xn_profile *p, struct xn_hotplug *h,
		      struct xn_publicip *pi, unsigned sets, struct xn_drift_report *rep,
		      struct xn_buf *err)
{
	int r;

	*rep = (struct xn_drift_report){ 0 };
	if (!p)
		return 0;
	r = antispoof_elements(nft, p, h, err);
	if (r < 0)
		return r;
	rep->antispoof = r;
	if (sets && p->mode == XN_MODE_NAT && pi)
		r = nat_elements(nft, p, pi, sets, rep, err);
	return r < 0 ? r : 0;
}

int xn_drift_sysctls(const struct xn_profile *p, bool fix, struct xn_buf *which)
{
	struct xn_wanted_sysctl w[XN_MAX_WANTED_SYSCTLS];
	size_t n = xn_plan_sysctls(p, w);
	int differ = 0;

	for (size_t i = 0; i < n; i++) {
		char v[XN_SYSCTL_VALUE_MAX];
		/* Gone (a device removed) is the links' business. */
		if (xn_sysctl_read(w[i].path, v) < 0 || strcmp(v, w[i].value) == 0)
			continue;
		/* Its value from before xennet is in the ledger already. */
		if (fix) {
			int r = xn_sysctl_write(w[i].path, w[i].value);
			if (r < 0)
				return r;
		}
		if (which)
			xn_buf_printf(which, "%s%s", differ ? ", " : "", w[i].path);
		differ++;
	}
	return differ;
}
