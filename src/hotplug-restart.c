/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Across restarts: the vifs configured are saved, and adopted at start
 * without touching them; those that vanished meanwhile are cleaned up
 * and those that appeared are configured. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotplug-internal.h"
#include "xennet/vifstate.h"

/* Did a script (ours, before a restart) report the vif connected? Only
 * then may xennetd configure it without a request: any other vif waits
 * for the script libxl runs. */
static int hotplug_status_connected(struct xn_hotplug *h, const struct vif *v)
{
	char path[96], *st = NULL;
	int r;

	if (v->emu)
		return 1; /* taps have no hotplug-status */
	snprintf(path, sizeof(path), "backend/vif/%u/%u/hotplug-status", v->domid, v->devid);
	r = xn_xs_read(h->xs, path, 32, &st);
	if (r >= 0)
		r = strcmp(st, "connected") == 0;
	free(st);
	return r == -ENOENT || r == -EBADMSG ? 0 : r;
}

static bool reported_connected(struct xn_hotplug *h, const struct vif *v)
{
	return hotplug_status_connected(h, v) > 0;
}

/* A vif that is already configured is adopted without touching it: no
 * link down/up, no lost packets. */
static bool looks_configured(struct xn_hotplug *h, struct vif *v, const struct xn_link *l)
{
	struct xn_link br;

	if (!l->up)
		return false;
	if (h->profile && h->profile->mode == XN_MODE_ROUTED)
		return l->master == 0;
	return xn_nl_link_get(h->nl, vif_bridge(h, v), &br) >= 0 && l->master == br.ifindex;
}

static void scan_one(struct xn_hotplug *h, unsigned domid, unsigned devid, bool emu)
{
	struct vif *v = vif_find(h, domid, devid, emu);
	struct xn_buf err = { 0 };
	struct xn_link l;

	if (v && v->state != VIF_WAITING)
		return;
	if (!v)
		v = vif_get(h, domid, devid, emu);
	if (!v || !vif_backend_online(h, v))
		return;
	if (v->waiters) { /* its script waits: link events were lost, say */
		vif_try(h, v, false);
		return;
	}
	if (!reported_connected(h, v))
		return;
	if (vif_read_conf(h, v, &err) >= 0 && vif_find_device(h, v, &l) >= 0 &&
	    looks_configured(h, v, &l)) {
		v->mode = h->profile ? h->profile->mode : XN_MODE_BRIDGED;
		memcpy(v->name, l.name, sizeof(v->name));
		v->ifindex = l.ifindex;
		snprintf(v->bridge, sizeof(v->bridge), "%s", vif_bridge(h, v));
		h->dirty = true;
		/* Its filter elements may have been lost with a table
		 * replaced while we were away: adding is idempotent. */
		if (vif_install_filter(h, v) < 0) {
			v->state = VIF_WAITING;
			vif_detach(h, v);
			vif_try(h, v, true); /* it was connected: configured anew */
		} else {
			v->state = VIF_CONNECTED;
			vif_report(h, v, XN_VIF_ADOPTED, NULL);
		}
	} else {
		/* Reported connected but not as it should be (someone took
		 * it off its bridge meanwhile): made so again. */
		vif_try(h, v, true);
	}
	xn_buf_free(&err);
}

void xn_hotplug_rescan(struct xn_hotplug *h)
{
	char **doms = NULL, **devs = NULL, path[64];
	unsigned nd = 0, nv = 0;

	/* A whole backend/vif/D removed fires one watch on D only. */
	for (size_t i = h->n_vifs; i-- > 0;) {
		struct vif *v = h->vifs[i];
		v->be_stale |= 1u << BK_DIR;
		v->fe_mtu = 0;
		if (!vif_backend_get(h, v, BK_DIR) && !v->waiters) {
			vif_offline(h, v);
			vif_drop(h, v);
		}
	}

	if (xn_xs_directory(h->xs, "backend/vif", &doms, &nd) < 0)
		return;
	for (unsigned i = 0; i < nd; i++) {
		unsigned domid, devid;
		const char *key;
		snprintf(path, sizeof(path), "backend/vif/%s", doms[i]);
		if (xn_xs_directory(h->xs, path, &devs, &nv) < 0)
			continue;
		for (unsigned j = 0; j < nv; j++) {
			char full[96];
			snprintf(full, sizeof(full), "backend/vif/%s/%s", doms[i], devs[j]);
			if (xn_vif_parse_path(full, &domid, &devid, &key) < 0 || *key)
				continue;
			scan_one(h, domid, devid, false);
			/* An HVM guest's tap, if QEMU made one. */
			char emu[IFNAMSIZ];
			struct xn_link l;
			if (xn_vif_kernel_name(domid, devid, true, emu) >= 0 &&
			    xn_nl_link_get(h->nl, emu, &l) >= 0)
				scan_one(h, domid, devid, true);
		}
		free(devs);
	}
	free(doms);
}

/* ---- kept across restarts ---- */

int xn_hotplug_save(struct xn_hotplug *h, const char *path)
{
	struct xn_buf b = { 0 };
	char boot[40];
	int r;

	if (!h->dirty)
		return 0;
	r = xn_boot_id(boot);
	if (r < 0)
		return r;
	xn_buf_printf(&b, "# the vifs xennetd configured: a cache, checked against the kernel at start\n"
			  "boot %s\n", boot);
	for (size_t i = 0; i < h->n_vifs; i++) {
		const struct vif *v = h->vifs[i];
		struct xn_vif_record rec = {
			.domid = v->domid, .devid = v->devid, .emu = v->emu,
			.ifindex = v->ifindex, .mode = v->mode, .filtered = v->filtered,
		};
		size_t len = b.len;
		if (v->state != VIF_CONNECTED || v->ifindex <= 0)
			continue;
		vif_conf_export(vif_conf_of(v), &rec.conf);
		memcpy(rec.name, v->name, IFNAMSIZ);
		memcpy(rec.bridge, v->bridge, IFNAMSIZ);
		memcpy(rec.uplink, v->uplink, IFNAMSIZ);
		if (xn_vif_record_format(&rec, &b) < 0)
			b.len = len; /* left out: configured the slow way at start */
		else
			xn_buf_printf(&b, "\n");
	}
	r = b.oom ? -ENOMEM : xn_write_file_atomic(path, b.data, b.len);
	xn_buf_free(&b);
	if (r >= 0)
		h->dirty = false;
	return r;
}

struct saved_vifs {
	char boot[40];
	bool same_boot;
	struct xn_vif_record *recs;
	size_t n;
};

static int on_saved_line(char *line, void *ud)
{
	struct saved_vifs *sv = ud;
	struct xn_vif_record rec, *arr;

	if (strncmp(line, "boot ", 5) == 0) {
		sv->same_boot = strcmp(line + 5, sv->boot) == 0;
		return 0;
	}
	/* A line not understood is a vif configured the slow way. */
	if (!sv->same_boot || xn_vif_record_parse(line, &rec) < 0)
		return 0;
	arr = reallocarray(sv->recs, sv->n + 1, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	sv->recs = arr;
	sv->recs[sv->n++] = rec;
	return 0;
}

static bool domain_listed(char **doms, unsigned nd, unsigned domid)
{
	char want[16];

	snprintf(want, sizeof(want), "%u", domid);
	for (unsigned i = 0; i < nd; i++)
		if (strcmp(doms[i], want) == 0)
			return true;
	return false;
}

/* Which vif is this device? By its kernel name, or the alias we gave it
 * when we renamed it. */
static bool device_vif(const struct xn_link *l, unsigned *domid, unsigned *devid, bool *emu)
{
	char tail[8] = "";
	int n = 0;

	if (xn_vif_parse_kernel_name(l->name, domid, devid, emu) >= 0)
		return true;
	if (sscanf(l->alias, ALIAS_PREFIX "%u/%u%n", domid, devid, &n) != 2 || n <= 0)
		return false;
	snprintf(tail, sizeof(tail), "%s", l->alias + n);
	*emu = strcmp(tail, " emu") == 0;
	return *emu || tail[0] == '\0';
}

/* A saved vif is adopted as it is only if the kernel still has it so. */
static bool adopt_saved(struct xn_hotplug *h, const struct xn_snapshot *links,
			const struct xn_vif_record *rec)
{
	const struct xn_link *l = xn_snapshot_link_by_index(links, rec->ifindex), *br;
	enum xn_mode mode = h->profile ? h->profile->mode : XN_MODE_BRIDGED;
	unsigned domid, devid;
	struct vif *v;
	bool emu;

	if (!l || strcmp(l->name, rec->name) != 0 || !l->up || rec->mode != mode ||
	    rec->filtered != hotplug_antispoof_on(h))
		return false;
	/* The device must be this vif's by its own name or our alias: a
	 * file saying otherwise is not believed. */
	if (!device_vif(l, &domid, &devid, &emu) || domid != rec->domid || devid != rec->devid ||
	    emu != rec->emu)
		return false;
	if (mode == XN_MODE_ROUTED) {
		if (l->master != 0)
			return false;
	} else {
		br = xn_snapshot_link(links, rec->bridge);
		if (!br || l->master != br->ifindex ||
		    strcmp(rec->bridge, vif_bridge_for_key(h, rec->conf.bridge)) != 0)
			return false;
	}
	v = vif_get(h, rec->domid, rec->devid, rec->emu);
	if (!v || v->state != VIF_WAITING || vif_set_conf(v, &rec->conf) < 0)
		return false;
	/* Its device group keeps it filtered if its as_ports element goes:
	 * an older xennet did not set it, someone may have reset it. */
	if (rec->filtered && l->group != XN_NFT_VIF_GROUP &&
	    xn_nl_link_set_group(h->nl, l->ifindex, XN_NFT_VIF_GROUP) < 0)
		return false;
	v->mode = rec->mode;
	v->ifindex = rec->ifindex;
	v->filtered = rec->filtered;
	memcpy(v->name, rec->name, IFNAMSIZ);
	memcpy(v->bridge, rec->bridge, IFNAMSIZ);
	memcpy(v->uplink, rec->uplink, IFNAMSIZ);
	v->state = VIF_CONNECTED;
	/* Saved as connected, but its script may have given up since (and
	 * told libxl the vif failed): only a vif reported connected stays
	 * up; another is undone and waits for the next request. */
	if (hotplug_status_connected(h, v) == 0) { /* unreadable: as saved */
		vif_detach(h, v);
		v->state = VIF_WAITING;
		vif_report(h, v, XN_VIF_OFFLINE, "its hotplug-status is not \"connected\": not adopted");
		return false;
	}
	return true;
}

void xn_hotplug_start(struct xn_hotplug *h, const char *saved_path, size_t *adopted,
		       size_t *looked_up)
{
	struct saved_vifs sv = { 0 };
	struct xn_snapshot *links = NULL;
	struct xn_nft_vif *nv = NULL;
	char **doms = NULL;
	unsigned nd = 0;
	size_t n_nv = 0;
	int r;

	*adopted = *looked_up = 0;
	r = xn_nl_links_take(h->nl, &links);
	if (r >= 0) {
		r = xn_xs_directory(h->xs, "backend/vif", &doms, &nd);
		if (r == -ENOENT)
			r = 0, nd = 0;
	}
	if (r < 0) {
		xn_snapshot_free(links);
		xn_hotplug_rescan(h);
		return;
	}
	h->last_domid_at_start = 0;
	for (unsigned i = 0; i < nd; i++) {
		unsigned long d;
		if (xn_parse_uint(doms[i], 0, UINT_MAX - 1, &d) < 0) {
			h->last_domid_at_start = UINT_MAX; /* not understood: none is new */
			break;
		}
		if (d > h->last_domid_at_start)
			h->last_domid_at_start = (unsigned)d;
	}
	/* 1. The vifs saved by the previous run, as the kernel still has
	 *    them: adopted without a request to xenstore. */
	if (saved_path && xn_boot_id(sv.boot) >= 0 &&
	    xn_read_lines(saved_path, on_saved_line, &sv, NULL) >= 0)
		for (size_t i = 0; i < sv.n; i++)
			if (domain_listed(doms, nd, sv.recs[i].domid) &&
			    adopt_saved(h, links, &sv.recs[i]))
				(*adopted)++;
	free(sv.recs);

	/* 2. Their filter elements, in case the tables were replaced while
	 *    we were away: one transaction. */
	nv = calloc(h->n_vifs + 1, sizeof(*nv));
	for (size_t i = 0; nv && i < h->n_vifs; i++)
		if (h->vifs[i]->state == VIF_CONNECTED && h->vifs[i]->filtered)
			vif_nft(h->vifs[i], &nv[n_nv++]);
	if (!nv || xn_nft_vifs_add(nv, n_nv, NULL) < 0) {
		/* Fail closed, one by one, as for a new vif. */
		for (size_t i = 0; i < h->n_vifs; i++) {
			struct vif *v = h->vifs[i];
			if (v->state != VIF_CONNECTED || !v->filtered)
				continue;
			vif_detach(h, v);
			v->state = VIF_WAITING;
			vif_try(h, v, true);
		}
	}
	free(nv);

	/* The saved records said what the vifs were made from: the keys may
	 * have changed while we were away (an admin's edit, a hostile value).
	 * They are checked against xenstore once the daemon serves, a few at
	 * a time (xn_hotplug_on_timer): a restart answers as soon as it
	 * has adopted them. */
	for (size_t i = 0; i < h->n_vifs; i++)
		if (h->vifs[i]->state == VIF_CONNECTED && !h->vifs[i]->unverified) {
			h->vifs[i]->unverified = true;
			h->n_unverified++;
		}

	/* 3. Every other vif device there is: read from xenstore, adopted
	 *    or configured. (A backend without its device yet is configured
	 *    when the device's link event comes.) */
	for (size_t i = 0; i < links->n_links; i++) {
		unsigned domid, devid;
		bool emu;
		struct vif *v;
		if (!device_vif(&links->links[i], &domid, &devid, &emu) ||
		    !domain_listed(doms, nd, domid))
			continue;
		v = vif_find(h, domid, devid, emu);
		if (!v || v->state == VIF_WAITING) {
			scan_one(h, domid, devid, emu);
			(*looked_up)++;
		}
	}
	xn_snapshot_free(links);
	free(doms);
	h->dirty = true; /* what is saved now is what was found */
}
