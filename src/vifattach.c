/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A vif's kernel side: found (by name or by our alias), renamed, its
 * anti-spoofing elements installed, made a bridge port or given its host
 * routes and neighbour proxies; and all of it undone. */
#include <errno.h>
#include <limits.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotplug-internal.h"
#include "xennet/sysctl.h"

static const uint8_t BRIDGE_PORT_MAC[6] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff };

int vif_fail(struct vif *v, int r, const char *fmt, ...)
{
	char msg[XN_VIF_ERROR_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(v->error);
	v->error = strdup(msg); /* NULL: reported as "out of memory" */
	return r;
}

const char *vif_error(const struct vif *v)
{
	return v->error ? v->error : "out of memory";
}

static void vif_alias(const struct vif *v, char out[64])
{
	snprintf(out, 64, ALIAS_PREFIX "%u/%u%s", v->domid, v->devid, v->emu ? " emu" : "");
}

/* Find the device: its kernel name, or the vifname we gave it (proved by
 * the alias we set, never by the name alone). */
int vif_find_device(struct xn_hotplug *h, struct vif *v, struct xn_link *l)
{
	char alias[64], want[IFNAMSIZ];
	int r;

	r = xn_nl_link_get(h->nl, v->kname, l);
	if (r != -ENODEV)
		return r;
	if (!vif_conf_of(v)->vifname[0])
		return -ENODEV;
	if (snprintf(want, sizeof(want), "%s%s", vif_conf_of(v)->vifname, v->emu ? "-emu" : "") >=
	    (int)sizeof(want))
		return -ENODEV;
	r = xn_nl_link_get(h->nl, want, l);
	if (r < 0)
		return r;
	vif_alias(v, alias);
	return strcmp(l->alias, alias) == 0 ? 0 : -ENODEV;
}

static int rename_device(struct xn_hotplug *h, struct vif *v, struct xn_link *l)
{
	char want[IFNAMSIZ], alias[64];
	struct xn_link other;
	int r;

	if (!vif_conf_of(v)->vifname[0])
		return 0;
	if (snprintf(want, sizeof(want), "%s%s", vif_conf_of(v)->vifname, v->emu ? "-emu" : "") >=
	    (int)sizeof(want))
		return vif_fail(v, -ENAMETOOLONG, "vifname %s%s is too long for an interface name",
			    vif_conf_of(v)->vifname, v->emu ? "-emu" : "");
	if (strcmp(l->name, want) == 0)
		return 0;
	r = xn_nl_link_get(h->nl, want, &other);
	if (r >= 0)
		return vif_fail(v, -EEXIST, "Cannot rename interface %s. An interface with name %s already exists.",
			    l->name, want);
	r = xn_nl_link_set_up(h->nl, l->ifindex, false);
	if (r >= 0)
		r = xn_nl_link_set_name(h->nl, l->ifindex, want);
	if (r < 0)
		return vif_fail(v, r, "renaming %s to %s: %s", l->name, want, strerror(-r));
	vif_alias(v, alias);
	xn_nl_link_set_alias(h->nl, l->ifindex, alias);
	memcpy(l->name, want, sizeof(l->name));
	memcpy(v->name, want, sizeof(v->name));
	return 0;
}

const char *vif_bridge_for_key(const struct xn_hotplug *h, const char *key_bridge)
{
	const struct xn_profile *p = h->profile;

	if (p && p->mode == XN_MODE_NAT)
		return p->nat_bridge;
	if (key_bridge[0])
		return key_bridge;
	if (p && p->n_bridges)
		return p->bridges[0].name;
	return "xenbr0"; /* libxl's default */
}

const char *vif_bridge(const struct xn_hotplug *h, const struct vif *v)
{
	return vif_bridge_for_key(h, vif_conf_of(v)->bridge);
}

/* The frontend's mtu, without asking xenstore when it is known: what we
 * last read or wrote; or, for a vif of a domain made since we started
 * whose backend has no mtu key, libxl's 1500 (libxl 4.17 writes the
 * frontend's mtu, read-only to the guest, with the nic's mtu, and the
 * backend's only when it is not 1500). 0: unknown. */
static unsigned frontend_mtu_known(const struct xn_hotplug *h, const struct vif *v)
{
	if (v->fe_mtu)
		return v->fe_mtu;
	if (!v->fe_written && h->last_domid_at_start != UINT_MAX &&
	    v->domid > h->last_domid_at_start && !vif_conf_of(v)->mtu)
		return 1500;
	return 0;
}

static int write_frontend_mtu(struct xn_hotplug *h, struct vif *v, unsigned mtu)
{
	char path[96], val[16], *now = NULL;
	unsigned known = frontend_mtu_known(h, v);
	bool same;
	int r;

	if (v->emu)
		return 0;
	/* 500 vifs at once wait on one xenstored: a request saved is time
	 * saved for every one of them. */
	if (known == mtu)
		return 0;
	/* By domid/devid, not parsed out of a custom vifname (Xen's bug). */
	snprintf(path, sizeof(path), "/local/domain/%u/device/vif/%u/mtu", v->domid, v->devid);
	snprintf(val, sizeof(val), "%u", mtu);
	/* Unknown: libxl wrote it, usually right; a read costs xenstored a
	 * fraction of a write, which also wakes every watcher. */
	same = !known && xn_xs_read(h->xs, path, sizeof(val), &now) >= 0 && strcmp(now, val) == 0;
	free(now);
	r = same ? 0 : xn_xs_write(h->xs, path, val);
	if (r >= 0)
		v->fe_mtu = mtu;
	v->fe_written |= !same;
	return r;
}

static int attach_to_bridge(struct xn_hotplug *h, struct vif *v, struct xn_link *l)
{
	const char *brname = vif_bridge(h, v);
	struct xn_link br;
	unsigned mtu;
	int r;

	r = xn_nl_link_get(h->nl, brname, &br);
	if (r < 0 || strcmp(br.kind, "bridge") != 0)
		return vif_fail(v, -ENODEV, "Could not find bridge device %s", brname);
	snprintf(v->bridge, sizeof(v->bridge), "%s", brname);

	if (l->master == br.ifindex && l->up)
		return 0;
	/* As setup_virtual_bridge_port: down, a MAC the bridge will not
	 * adopt, no addresses; then the MTU and the bridge. */
	r = l->up ? xn_nl_link_set_up(h->nl, l->ifindex, false) : 0;
	if (r >= 0)
		r = xn_nl_addr_flush(h->nl, l->ifindex);
	if (r < 0)
		return vif_fail(v, r, "preparing %s as a bridge port: %s", l->name, strerror(-r));
	mtu = vif_conf_of(v)->mtu ? vif_conf_of(v)->mtu : br.mtu;
	/* One request; if it fails, one step at a time says which. */
	r = xn_nl_link_make_port(h->nl, l->ifindex, BRIDGE_PORT_MAC, mtu, br.ifindex);
	if (r < 0) {
		r = xn_nl_link_set_mac(h->nl, l->ifindex, BRIDGE_PORT_MAC);
		if (r < 0)
			return vif_fail(v, r, "setting the bridge-port MAC on %s: %s", l->name,
				    strerror(-r));
		r = xn_nl_link_set_mtu(h->nl, l->ifindex, mtu);
		if (r < 0)
			return vif_fail(v, r, "setting mtu %u on %s: %s", mtu, l->name, strerror(-r));
		r = xn_nl_link_set_master(h->nl, l->ifindex, br.ifindex);
		if (r < 0)
			return vif_fail(v, r, "adding %s to bridge %s: %s", l->name, brname,
				    strerror(-r));
	}
	/* A bridge whose MTU is not its own (made by an older xennet, or by
	 * hand) took this vif's smaller one: set back, it keeps it. */
	if (mtu < br.mtu)
		xn_nl_link_set_mtu(h->nl, br.ifindex, br.mtu);
	r = write_frontend_mtu(h, v, mtu);
	if (r < 0)
		return vif_fail(v, r, "writing the frontend mtu of vif %u/%u: %s", v->domid,
			    v->devid, strerror(-r));
	r = xn_nl_link_set_up(h->nl, l->ifindex, true);
	if (r < 0)
		return vif_fail(v, r, "bringing %s up: %s", l->name, strerror(-r));
	return 0;
}

/* A connected vif taken off its bridge, or set down, by someone: made a
 * port again. Only if its bridge is there: a bridge made again brings its
 * vifs back itself (xn_hotplug_reattach). Its device group, which keeps
 * it filtered without its as_ports element, is put back too. Returns 1 if
 * it was repaired. */
int vif_check_port(struct xn_hotplug *h, struct vif *v)
{
	struct xn_link l, br;
	int fixed = 0;

	if (v->state != VIF_CONNECTED || v->pending || vif_find_device(h, v, &l) < 0)
		return 0;
	if (v->filtered && l.group != XN_NFT_VIF_GROUP) {
		int r = xn_nl_link_set_group(h->nl, l.ifindex, XN_NFT_VIF_GROUP);
		if (r < 0)
			return vif_fail(v, -EIO, "anti-spoofing: setting the device group of %s: %s",
					l.name, strerror(-r));
		fixed = 1;
	}
	if (v->mode == XN_MODE_ROUTED || xn_nl_link_get(h->nl, v->bridge, &br) < 0)
		return fixed;
	if (l.master == br.ifindex && l.up)
		return fixed;
	return attach_to_bridge(h, v, &l) < 0 ? -EIO : 1;
}

static struct xn_route host_route(const struct vif *v, int ifindex, const struct xn_addr *ip)
{
	struct xn_route rt = {
		.ifindex = ifindex,
		.family = ip->family,
		.dst = *ip,
		.table = RT_TABLE_MAIN,
		.priority = v->emu ? 1 : 2, /* as vif-route: taps win */
		.protocol = RTPROT_STATIC,
		.scope = RT_SCOPE_LINK,
		.type = RTN_UNICAST,
	};

	if (ip->family == AF_INET && v->has_src) {
		rt.has_prefsrc = true;
		rt.prefsrc = v->src;
		rt.prefsrc.prefixlen = 32;
	}
	return rt;
}

static int attach_routed(struct xn_hotplug *h, struct vif *v, struct xn_link *l)
{
	const char *uplink = vif_conf_of(v)->gatewaydev[0] ? vif_conf_of(v)->gatewaydev
			     : h->profile ? h->profile->routed_uplink : "";
	char path[128];
	struct xn_link up;
	int r;

	r = xn_nl_link_get(h->nl, uplink, &up);
	if (r < 0)
		return vif_fail(v, -ENODEV, "routed uplink %s does not exist", uplink);
	r = xn_nl_primary_ipv4(h->nl, up.ifindex, &v->src);
	v->has_src = r >= 0;
	if (r < 0)
		return vif_fail(v, r, "%s has no IPv4 address to route guests with", uplink);
	if (vif_conf_of(v)->mtu) {
		r = xn_nl_link_set_mtu(h->nl, l->ifindex, vif_conf_of(v)->mtu);
		if (r >= 0)
			r = write_frontend_mtu(h, v, vif_conf_of(v)->mtu);
		if (r < 0)
			return vif_fail(v, r, "setting mtu %u on %s: %s", vif_conf_of(v)->mtu, l->name,
				    strerror(-r));
	}
	r = xn_nl_link_set_up(h->nl, l->ifindex, true);
	if (r < 0)
		return vif_fail(v, r, "bringing %s up: %s", l->name, strerror(-r));
	if (xn_sysctl_if_path("ipv4", l->name, "proxy_arp", path, sizeof(path)) == 0) {
		r = xn_sysctl_write(path, "1");
		if (r < 0)
			return vif_fail(v, r, "proxy_arp on %s: %s", l->name, strerror(-r));
	}
	snprintf(v->uplink, sizeof(v->uplink), "%s", uplink);
	for (size_t i = 0; i < vif_conf_of(v)->n_ips; i++) {
		const struct xn_addr *ip = &vif_conf_of(v)->ips[i];
		struct xn_route rt = host_route(v, l->ifindex, ip);
		char a[XN_ADDR_STRLEN];
		r = xn_nl_route_replace(h->nl, &rt);
		if (r < 0)
			return vif_fail(v, r, "route to %s through %s: %s",
				    xn_addr_format(ip, true, a), l->name, strerror(-r));
		/* The LAN finds an IPv6 guest by neighbour discovery on the
		 * uplink: Dom0 answers for it (proxy_ndp). */
		if (ip->family == AF_INET6 && ip->prefixlen == 128) {
			r = xn_nl_neigh_proxy_add(h->nl, up.ifindex, ip);
			if (r < 0)
				return vif_fail(v, r, "neighbour proxy for %s on %s: %s",
					    xn_addr_format(ip, false, a), uplink, strerror(-r));
		}
	}
	return 0;
}

bool hotplug_antispoof_on(const struct xn_hotplug *h)
{
	return h->profile && h->profile->antispoof;
}

void vif_nft(const struct vif *v, struct xn_nft_vif *nv)
{
	*nv = (struct xn_nft_vif){ .routed = v->mode == XN_MODE_ROUTED };
	memcpy(nv->ifname, v->name, sizeof(nv->ifname));
	memcpy(nv->mac, vif_conf_of(v)->mac, 6);
	nv->n_ips = vif_conf_of(v)->n_ips < 16 ? vif_conf_of(v)->n_ips : 16;
	memcpy(nv->ips, vif_conf_of(v)->ips, nv->n_ips * sizeof(nv->ips[0]));
}

/* Fail closed: without its filter a vif is not attached. */
int vif_install_filter(struct xn_hotplug *h, struct vif *v)
{
	struct xn_nft_vif nv;
	struct xn_buf err = { 0 };
	int r;

	if (!hotplug_antispoof_on(h))
		return 0;
	if (!vif_conf_of(v)->has_mac)
		return vif_fail(v, -EINVAL, "backend/vif/%u/%u/mac is missing: anti-spoofing needs the vif's MAC",
			    v->domid, v->devid);
	/* First: a device of this group is checked even without its
	 * as_ports element (fail closed if that element goes). */
	r = xn_nl_link_set_group(h->nl, v->ifindex, XN_NFT_VIF_GROUP);
	if (r < 0)
		return vif_fail(v, r, "anti-spoofing: setting the device group of %s: %s", v->name,
				strerror(-r));
	vif_nft(v, &nv);
	r = xn_nft_vif_update(&nv, NULL, &err);
	if (r < 0) {
		vif_fail(v, r, "anti-spoofing filter for %s could not be installed: %s", v->name,
		     err.len ? xn_buf_str(&err) : strerror(-r));
		xn_buf_free(&err);
		return r;
	}
	xn_buf_free(&err);
	v->filtered = true;
	return 0;
}

static void remove_filter(struct xn_hotplug *h, struct vif *v)
{
	struct xn_nft_vif nv;

	if (!v->filtered)
		return;
	vif_nft(v, &nv);
	if (xn_nft_vif_update(NULL, &nv, NULL) < 0) {
		/* Some element was already gone: remove whatever is left of
		 * this name, keeping every other vif's. */
		char (*keep)[IFNAMSIZ] = calloc(h->n_vifs + 1, IFNAMSIZ);
		size_t n = 0;
		for (size_t i = 0; keep && i < h->n_vifs; i++)
			if (h->vifs[i] != v && h->vifs[i]->filtered)
				memcpy(keep[n++], h->vifs[i]->name, IFNAMSIZ);
		if (keep)
			xn_nft_purge((const char (*)[IFNAMSIZ])keep, n, NULL);
		free(keep);
	}
	v->filtered = false;
}

/* Undo, idempotently: whatever of it is still there goes. */
void vif_detach(struct xn_hotplug *h, struct vif *v)
{
	struct xn_link l;

	h->dirty = true;
	remove_filter(h, v);
	if (v->mode == XN_MODE_ROUTED && !v->uplink[0]) /* adopted after a restart */
		snprintf(v->uplink, sizeof(v->uplink), "%s",
			 vif_conf_of(v)->gatewaydev[0] ? vif_conf_of(v)->gatewaydev
			 : h->profile ? h->profile->routed_uplink : "");
	if (v->mode == XN_MODE_ROUTED && v->uplink[0]) {
		struct xn_link up;
		if (xn_nl_link_get(h->nl, v->uplink, &up) >= 0)
			for (size_t i = 0; i < vif_conf_of(v)->n_ips; i++)
				if (vif_conf_of(v)->ips[i].family == AF_INET6)
					xn_nl_neigh_proxy_del(h->nl, up.ifindex, &vif_conf_of(v)->ips[i]);
	}
	if (vif_find_device(h, v, &l) < 0)
		return; /* the device went, and its routes and port with it */
	xn_nl_link_set_group(h->nl, l.ifindex, 0); /* no longer filtered by us */
	if (v->mode == XN_MODE_ROUTED) {
		for (size_t i = 0; i < vif_conf_of(v)->n_ips; i++) {
			struct xn_route rt = host_route(v, l.ifindex, &vif_conf_of(v)->ips[i]);
			xn_nl_route_del(h->nl, &rt);
		}
	} else if (l.master) {
		xn_nl_link_set_master(h->nl, l.ifindex, 0);
	}
	xn_nl_link_set_up(h->nl, l.ifindex, false);
}

int vif_configure(struct xn_hotplug *h, struct vif *v, struct xn_link *l)
{
	int r;

	v->mode = h->profile ? h->profile->mode : XN_MODE_BRIDGED;
	r = rename_device(h, v, l);
	if (r < 0)
		return r;
	memcpy(v->name, l->name, sizeof(v->name));
	r = vif_install_filter(h, v);
	if (r < 0)
		return r;
	if (v->mode == XN_MODE_ROUTED)
		r = attach_routed(h, v, l);
	else
		r = attach_to_bridge(h, v, l);
	if (r < 0)
		vif_detach(h, v); /* nothing half-done stays behind */
	return r;
}

/* The bridge was deleted and made again: its connected vifs (still there,
 * no longer its ports) join it again. Returns how many did; the first
 * failure is described in err. */
int xn_hotplug_reattach(struct xn_hotplug *h, const char *bridge, struct xn_buf *err)
{
	int joined = 0;

	for (size_t i = 0; i < h->n_vifs; i++) {
		struct vif *v = h->vifs[i];
		struct xn_link l;
		if (v->state != VIF_CONNECTED || v->mode == XN_MODE_ROUTED ||
		    strcmp(v->bridge, bridge) != 0 || vif_find_device(h, v, &l) < 0 ||
		    l.master > 0)
			continue;
		if (attach_to_bridge(h, v, &l) < 0) {
			if (err && !err->len)
				xn_buf_printf(err, "%s", vif_error(v));
			continue;
		}
		joined++;
	}
	return joined;
}
