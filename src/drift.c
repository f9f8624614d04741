/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/drift.h"

#include <stdio.h>
#include <string.h>

#include "xennet/nft.h"
#include "xennet/plan.h"
#include "xennet/sysctl.h"

static int antispoof_elements(const struct xn_profile *p, struct xn_hotplug *h,
			      struct xn_buf *err)
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
	r = xn_nft_vifs_sync(&spec, vifs, n, err);
	free(vifs);
	return r;
}

int xn_drift_elements(const struct xn_profile *p, struct xn_hotplug *h, struct xn_publicip *pi,
		      struct xn_drift_report *rep, struct xn_buf *err)
{
	int r;

	*rep = (struct xn_drift_report){ 0 };
	if (!p)
		return 0;
	r = antispoof_elements(p, h, err);
	if (r < 0)
		return r;
	rep->antispoof = r;
	if (p->mode == XN_MODE_NAT && pi) {
		size_t maps, fwds;
		long us;
		r = xn_publicip_sync(pi, p, false, err);
		if (r < 0)
			return r;
		xn_publicip_last_sync(pi, &maps, &fwds, &rep->publics, &us);
	}
	return 0;
}

bool xn_drift_sysctls(const struct xn_profile *p, char *path, size_t size)
{
	struct xn_wanted_sysctl w[XN_MAX_WANTED_SYSCTLS];
	size_t n = xn_plan_sysctls(p, w);

	for (size_t i = 0; i < n; i++) {
		char v[XN_SYSCTL_VALUE_MAX];
		/* Gone (a device removed) is the links' business. */
		if (xn_sysctl_read(w[i].path, v) >= 0 && strcmp(v, w[i].value) != 0) {
			snprintf(path, size, "%s", w[i].path);
			return true;
		}
	}
	return false;
}
