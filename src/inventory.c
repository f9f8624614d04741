/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/inventory.h"

#include <stdlib.h>
#include <string.h>

#include "xennet/vif.h"

/* A vif as the inventory lists it; ips point into the daemon's vif, which
 * does not change while the (synchronous) answer is built. */
struct inv_vif {
	unsigned domid, devid;
	char name[IFNAMSIZ], bridge[IFNAMSIZ], domain[256];
	const char *state;
	enum xn_mode mode;
	bool has_mac;
	uint8_t mac[6];
	const struct xn_addr *ips;
	size_t n_ips;
};

struct inv {
	struct inv_vif *vifs;
	size_t n;
	bool oom;
};

static void collect(const struct xn_vif_info *v, void *userdata)
{
	struct inv *inv = userdata;
	struct inv_vif *grown, *x;

	if (v->emu) /* the HVM tap is the same network interface of the guest */
		return;
	grown = reallocarray(inv->vifs, inv->n + 1, sizeof(*grown));
	if (!grown) {
		inv->oom = true;
		return;
	}
	inv->vifs = grown;
	x = &grown[inv->n++];
	*x = (struct inv_vif){ .domid = v->domid, .devid = v->devid, .state = v->state,
			       .mode = v->mode, .has_mac = v->has_mac, .ips = v->ips,
			       .n_ips = v->n_ips };
	snprintf(x->name, sizeof(x->name), "%s", v->name);
	snprintf(x->bridge, sizeof(x->bridge), "%s", v->bridge);
	snprintf(x->domain, sizeof(x->domain), "%s", v->domain ? v->domain : "");
	memcpy(x->mac, v->mac, sizeof(x->mac));
}

static int by_domain(const void *a, const void *b)
{
	const struct inv_vif *x = a, *y = b;

	if (x->domid != y->domid)
		return x->domid < y->domid ? -1 : 1;
	return x->devid < y->devid ? -1 : x->devid > y->devid;
}

static bool vif_has(const struct inv_vif *v, const struct xn_addr *a)
{
	for (size_t i = 0; i < v->n_ips; i++)
		if (v->ips[i].family == a->family &&
		    memcmp(v->ips[i].bytes, a->bytes, a->family == AF_INET ? 4 : 16) == 0)
			return true;
	return false;
}

/* Does the domain whose vifs are vifs[first..end) have address a? */
static bool domain_has(const struct inv *inv, size_t first, size_t end, const struct xn_addr *a)
{
	for (size_t i = first; i < end; i++)
		if (vif_has(&inv->vifs[i], a))
			return true;
	return false;
}

static bool anyone_has(const struct inv *inv, const struct xn_addr *a)
{
	return domain_has(inv, 0, inv->n, a);
}

static void vif_out(const struct inv_vif *v, struct xn_json *j, struct xn_buf *out)
{
	char mac[18] = "", a[XN_ADDR_STRLEN];

	if (v->has_mac)
		xn_format_mac(v->mac, mac);
	if (!j) {
		xn_buf_printf(out, "  %s (%u/%u): mac %s, %s", v->name, v->domid, v->devid,
			      v->has_mac ? mac : "-", v->state);
		if (v->mode == XN_MODE_ROUTED)
			xn_buf_printf(out, ", routed");
		else
			xn_buf_printf(out, ", bridge %s (%s)", v->bridge, xn_mode_name(v->mode));
		for (size_t i = 0; i < v->n_ips; i++)
			xn_buf_printf(out, "%s%s", i ? " " : ", addresses ",
				      xn_addr_format(&v->ips[i], false, a));
		xn_buf_printf(out, "\n");
		return;
	}
	xn_json_object_begin(j, NULL);
	xn_json_string(j, "name", v->name);
	xn_json_uint(j, "devid", v->devid);
	xn_json_string(j, "mac", v->has_mac ? mac : NULL);
	xn_json_array_begin(j, "addresses");
	for (size_t i = 0; i < v->n_ips; i++)
		xn_json_string(j, NULL, xn_addr_format(&v->ips[i], false, a));
	xn_json_array_end(j);
	xn_json_string(j, "mode", xn_mode_name(v->mode));
	xn_json_string(j, "bridge", v->mode == XN_MODE_ROUTED ? NULL : v->bridge);
	xn_json_string(j, "state", v->state);
	xn_json_object_end(j);
}

static void map_out(const struct xn_mapping *m, struct xn_json *j, struct xn_buf *out)
{
	char p[XN_ADDR_STRLEN], g[XN_ADDR_STRLEN];

	xn_addr_format(&m->public_addr, false, p);
	xn_addr_format(&m->guest, false, g);
	if (!j) {
		xn_buf_printf(out, "  public %s -> %s (map, %s)\n", p, g,
			      m->from_profile ? "profile" : "cli");
		return;
	}
	xn_json_object_begin(j, NULL);
	xn_json_string(j, "public", p);
	xn_json_string(j, "guest", g);
	xn_json_string(j, "name", m->name);
	xn_json_string(j, "source", m->from_profile ? "profile" : "cli");
	xn_json_object_end(j);
}

static void fwd_out(const struct xn_forward *f, struct xn_json *j, struct xn_buf *out)
{
	char p[XN_ADDR_STRLEN], g[XN_ADDR_STRLEN];

	xn_addr_format(&f->public_addr, false, p);
	xn_addr_format(&f->guest, false, g);
	if (!j) {
		xn_buf_printf(out, "  public %s:%u/%s -> %s:%u (forward, %s)\n", p, f->public_port,
			      xn_proto_name(f->proto), g, f->guest_port,
			      f->from_profile ? "profile" : "cli");
		return;
	}
	xn_json_object_begin(j, NULL);
	xn_json_string(j, "public", p);
	xn_json_uint(j, "port", f->public_port);
	xn_json_string(j, "proto", xn_proto_name(f->proto));
	xn_json_string(j, "guest", g);
	xn_json_uint(j, "guest_port", f->guest_port);
	xn_json_string(j, "name", f->name);
	xn_json_string(j, "source", f->from_profile ? "profile" : "cli");
	xn_json_object_end(j);
}

/* The mappings and forwards to the domain vifs[first..end), or (first ==
 * end) to nobody's address. */
static void mappings_out(const struct inv *inv, size_t first, size_t end,
			 const struct xn_mapset *maps, struct xn_json *j, struct xn_buf *out)
{
	bool unattached = first == end;

	if (j)
		xn_json_array_begin(j, "maps");
	for (size_t i = 0; maps && i < maps->n_maps; i++) {
		const struct xn_addr *g = &maps->maps[i].guest;
		if (unattached ? !anyone_has(inv, g) : domain_has(inv, first, end, g))
			map_out(&maps->maps[i], j, out);
	}
	if (j) {
		xn_json_array_end(j);
		xn_json_array_begin(j, "forwards");
	}
	for (size_t i = 0; maps && i < maps->n_fwds; i++) {
		const struct xn_addr *g = &maps->fwds[i].guest;
		if (unattached ? !anyone_has(inv, g) : domain_has(inv, first, end, g))
			fwd_out(&maps->fwds[i], j, out);
	}
	if (j)
		xn_json_array_end(j);
}

static void domain_out(const struct inv *inv, size_t first, size_t end,
		       const struct xn_mapset *maps, struct xn_json *j, struct xn_buf *out)
{
	const char *name = NULL;

	for (size_t i = first; i < end && !name; i++)
		if (inv->vifs[i].domain[0])
			name = inv->vifs[i].domain;
	if (j) {
		xn_json_object_begin(j, NULL);
		xn_json_uint(j, "domid", inv->vifs[first].domid);
		xn_json_string(j, "name", name);
		xn_json_array_begin(j, "vifs");
	} else {
		xn_buf_printf(out, "domain %u", inv->vifs[first].domid);
		for (const char *c = name; c && *c; c++) /* shown, never obeyed by a terminal */
			xn_buf_printf(out, c == name ? " (%c" : "%c",
				      (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c);
		xn_buf_printf(out, "%s\n", name ? ")" : "");
	}
	for (size_t i = first; i < end; i++)
		vif_out(&inv->vifs[i], j, out);
	if (j)
		xn_json_array_end(j);
	mappings_out(inv, first, end, maps, j, out);
	if (j)
		xn_json_object_end(j);
}

void xn_inventory_render(struct xn_hotplug *h, const struct xn_mapset *maps, bool json,
			 struct xn_buf *out)
{
	struct inv inv = { 0 };
	struct xn_json j;
	size_t first = 0;

	if (h)
		xn_hotplug_each_vif(h, collect, &inv);
	if (inv.oom) {
		free(inv.vifs);
		xn_buf_printf(out, "inventory: out of memory\n");
		return;
	}
	if (inv.n)
		qsort(inv.vifs, inv.n, sizeof(*inv.vifs), by_domain);
	if (json) {
		xn_json_document_begin(&j, out);
		xn_json_bool(&j, "xenstore", h != NULL);
		xn_json_array_begin(&j, "domains");
	} else if (!h) {
		xn_buf_printf(out, "xenstore: not connected; no vif known yet\n");
	}
	for (size_t i = 1; i <= inv.n; i++)
		if (i == inv.n || inv.vifs[i].domid != inv.vifs[first].domid) {
			domain_out(&inv, first, i, maps, json ? &j : NULL, out);
			first = i;
		}
	if (json) {
		xn_json_array_end(&j);
		xn_json_object_begin(&j, "unattached");
		mappings_out(&inv, 0, 0, maps, &j, out);
		xn_json_object_end(&j);
		xn_json_document_end(&j);
	} else {
		struct xn_buf rest = { 0 };
		mappings_out(&inv, 0, 0, maps, NULL, &rest);
		if (rest.len)
			xn_buf_printf(out, "public addresses of no running guest's address:\n%s",
				      xn_buf_str(&rest));
		xn_buf_free(&rest);
	}
	free(inv.vifs);
}
