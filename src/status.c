/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/status.h"

#include <linux/rtnetlink.h>
#include <string.h>

#include "xennet/json.h"
#include "xennet/plan.h"
#include "xennet/sysctl.h"
#include "xennet/vif.h"

/* The uplinks the profile names: the bridges' (bridged), [routed] or
 * [nat] uplink. */
static size_t profile_uplinks(const struct xn_profile *p, const char *out[], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; p && i < p->n_bridges && n < max; i++)
		if (p->bridges[i].uplink[0])
			out[n++] = p->bridges[i].uplink;
	if (p && p->mode == XN_MODE_ROUTED && n < max)
		out[n++] = p->routed_uplink;
	if (p && p->mode == XN_MODE_NAT && n < max)
		out[n++] = p->nat_uplink;
	return n;
}

static void uplinks_text(const struct xn_status_input *in, struct xn_buf *b)
{
	const struct xn_snapshot *s = in->snapshot;
	const char *names[16];
	size_t n = profile_uplinks(in->profile, names, XN_ARRAY_SIZE(names));
	char a[XN_ADDR_STRLEN];

	for (size_t i = 0; i < n; i++) {
		const struct xn_link *l = xn_snapshot_link(s, names[i]);
		const struct xn_link *m = l && l->master ? xn_snapshot_link_by_index(s, l->master) : NULL;

		xn_buf_printf(b, "uplink %s: ", names[i]);
		if (!l) {
			xn_buf_printf(b, "MISSING\n");
			continue;
		}
		xn_buf_printf(b, "%s, mtu %u", l->up ? "up" : "DOWN", l->mtu);
		if (m)
			xn_buf_printf(b, ", port of %s", m->name);
		for (size_t j = 0, k = 0; j < s->n_addrs; j++)
			if (s->addrs[j].ifindex == l->ifindex && s->addrs[j].scope != RT_SCOPE_LINK)
				xn_buf_printf(b, "%s%s", k++ ? " " : ", addresses ",
					      xn_addr_format(&s->addrs[j].addr, true, a));
		xn_buf_printf(b, "\n");
	}
}

static void uplinks_json(const struct xn_status_input *in, struct xn_json *j)
{
	const struct xn_snapshot *s = in->snapshot;
	const char *names[16];
	size_t n = profile_uplinks(in->profile, names, XN_ARRAY_SIZE(names));
	char a[XN_ADDR_STRLEN];

	xn_json_array_begin(j, "uplinks");
	for (size_t i = 0; i < n; i++) {
		const struct xn_link *l = xn_snapshot_link(s, names[i]);
		const struct xn_link *m = l && l->master ? xn_snapshot_link_by_index(s, l->master) : NULL;

		xn_json_object_begin(j, NULL);
		xn_json_string(j, "name", names[i]);
		xn_json_bool(j, "present", l != NULL);
		if (l) {
			xn_json_bool(j, "up", l->up);
			xn_json_uint(j, "mtu", l->mtu);
			xn_json_string(j, "master", m ? m->name : NULL);
			xn_json_array_begin(j, "addresses");
			for (size_t k = 0; k < s->n_addrs; k++)
				if (s->addrs[k].ifindex == l->ifindex && s->addrs[k].scope != RT_SCOPE_LINK)
					xn_json_string(j, NULL, xn_addr_format(&s->addrs[k].addr, true, a));
			xn_json_array_end(j);
		}
		xn_json_object_end(j);
	}
	xn_json_array_end(j);
}

static void render_text(const struct xn_status_input *in, struct xn_buf *b)
{
	const struct xn_profile *p = in->profile;
	const struct xn_snapshot *s = in->snapshot;
	char a[XN_ADDR_STRLEN];

	xn_buf_printf(b, "xennetd running, pid %d\n", (int)in->pid);
	xn_buf_printf(b, "profile: %s", p ? p->path : "(none)");
	if (p && in->profile_source && in->profile_source[0])
		xn_buf_printf(b, " (a copy of %s, as applied)", in->profile_source);
	xn_buf_printf(b, "\n");
	xn_buf_printf(b, "mode: %s\n", p ? xn_mode_name(p->mode) : "-");
	if (in->last_error)
		xn_buf_printf(b, "last apply failed: %s\n", in->last_error);
	if (in->last_warnings)
		xn_buf_printf(b, "the last profile applied warned:\n%s", in->last_warnings);
	if (in->state_dir && in->state_error)
		xn_buf_printf(b, "state directory %s: %s: changes that must be saved are refused\n",
			      in->state_dir, strerror(-in->state_error));
	else if (in->state_dir)
		xn_buf_printf(b, "state directory %s: writable\n", in->state_dir);

	for (size_t i = 0; p && i < p->n_bridges; i++) {
		const struct xn_bridge_conf *bc = &p->bridges[i];
		const struct xn_link *br = xn_snapshot_link(s, bc->name);

		xn_buf_printf(b, "bridge %s: ", bc->name);
		if (!br) {
			xn_buf_printf(b, "MISSING\n");
			continue;
		}
		xn_buf_printf(b, "%s, mtu %u, stp %s, forward delay %u%s\n",
			      br->up ? "up" : "DOWN", br->mtu,
			      br->stp_state ? "on" : "off", br->forward_delay / 100,
			      xn_ledger_has_bridge(in->ledger, bc->name)
				      ? ", created by xennet" : "");
		xn_buf_printf(b, "  ports:");
		for (size_t j = 0; j < s->n_links; j++)
			if (s->links[j].master == br->ifindex)
				xn_buf_printf(b, " %s%s", s->links[j].name,
					      s->links[j].up ? "" : "(down)");
		xn_buf_printf(b, "\n  addresses:");
		for (size_t j = 0; j < s->n_addrs; j++)
			if (s->addrs[j].ifindex == br->ifindex)
				xn_buf_printf(b, " %s",
					      xn_addr_format(&s->addrs[j].addr, true, a));
		xn_buf_printf(b, "\n");
	}
	uplinks_text(in, b);
	for (size_t i = 0; i < in->ledger->n_moved_addrs; i++)
		xn_buf_printf(b, "moved address %s from %s to %s\n",
			      xn_addr_format(&in->ledger->moved_addrs[i].addr, true, a),
			      in->ledger->moved_addrs[i].from,
			      in->ledger->moved_addrs[i].to);

	struct xn_wanted_sysctl w[XN_MAX_WANTED_SYSCTLS];
	size_t nw = xn_plan_sysctls(p, w);
	for (size_t i = 0; i < nw; i++) {
		char cur[XN_SYSCTL_VALUE_MAX] = "?";
		const struct xn_ledger_sysctl *ls = xn_ledger_sysctl(in->ledger, w[i].path);
		xn_sysctl_read(w[i].path, cur);
		xn_buf_printf(b, "sysctl %s = %s", w[i].path, cur);
		if (ls)
			xn_buf_printf(b, " (was %s before xennet)", ls->original);
		xn_buf_printf(b, "\n");
	}

	if (in->nft_error == -ENOENT)
		xn_buf_printf(b, "nftables: no table inet %s\n", XN_NFT_TABLE);
	else if (in->nft_error < 0)
		xn_buf_printf(b, "nftables: cannot read: %s\n", strerror(-in->nft_error));
	else {
		xn_buf_printf(b, "nftables: table inet %s present, %zu rules\n",
			      XN_NFT_TABLE, in->n_rules);
		for (size_t i = 0; i < in->n_rules; i++)
			xn_buf_printf(b, "  %-12s %10llu pkts %12llu bytes  %s\n",
				      in->rules[i].chain,
				      (unsigned long long)in->rules[i].packets,
				      (unsigned long long)in->rules[i].bytes,
				      in->rules[i].comment);
	}
	if (in->extra)
		in->extra(NULL, b, in->extra_userdata);
}

static void bridges_json(const struct xn_status_input *in, struct xn_json *j)
{
	const struct xn_profile *p = in->profile;
	const struct xn_snapshot *s = in->snapshot;
	char a[XN_ADDR_STRLEN];

	xn_json_array_begin(j, "bridges");
	for (size_t i = 0; p && i < p->n_bridges; i++) {
		const struct xn_bridge_conf *bc = &p->bridges[i];
		const struct xn_link *br = xn_snapshot_link(s, bc->name);

		xn_json_object_begin(j, NULL);
		xn_json_string(j, "name", bc->name);
		xn_json_bool(j, "present", br != NULL);
		if (br) {
			xn_json_bool(j, "up", br->up);
			xn_json_uint(j, "mtu", br->mtu);
			xn_json_bool(j, "stp", br->stp_state != 0);
			xn_json_uint(j, "forward_delay", br->forward_delay / 100);
			xn_json_bool(j, "created_by_xennet", xn_ledger_has_bridge(in->ledger, bc->name));
			xn_json_array_begin(j, "ports");
			for (size_t k = 0; k < s->n_links; k++)
				if (s->links[k].master == br->ifindex)
					xn_json_string(j, NULL, s->links[k].name);
			xn_json_array_end(j);
			xn_json_array_begin(j, "addresses");
			for (size_t k = 0; k < s->n_addrs; k++)
				if (s->addrs[k].ifindex == br->ifindex)
					xn_json_string(j, NULL, xn_addr_format(&s->addrs[k].addr, true, a));
			xn_json_array_end(j);
		}
		xn_json_object_end(j);
	}
	xn_json_array_end(j);
}

static void sysctls_json(const struct xn_status_input *in, struct xn_json *j)
{
	struct xn_wanted_sysctl w[XN_MAX_WANTED_SYSCTLS];
	size_t nw = xn_plan_sysctls(in->profile, w);

	xn_json_array_begin(j, "sysctls");
	for (size_t i = 0; i < nw; i++) {
		char cur[XN_SYSCTL_VALUE_MAX] = "";
		const struct xn_ledger_sysctl *ls = xn_ledger_sysctl(in->ledger, w[i].path);

		xn_sysctl_read(w[i].path, cur);
		xn_json_object_begin(j, NULL);
		xn_json_string(j, "path", w[i].path);
		xn_json_string(j, "value", cur);
		xn_json_string(j, "wanted", w[i].value);
		xn_json_string(j, "original", ls ? ls->original : NULL);
		xn_json_object_end(j);
	}
	xn_json_array_end(j);
}

static void nft_json(const struct xn_status_input *in, struct xn_json *j)
{
	char table[64];

	snprintf(table, sizeof(table), "inet %s", XN_NFT_TABLE);
	xn_json_object_begin(j, "nftables");
	xn_json_string(j, "table", table);
	xn_json_bool(j, "present", in->nft_error == 0);
	if (in->nft_error && in->nft_error != -ENOENT)
		xn_json_string(j, "error", strerror(-in->nft_error));
	xn_json_array_begin(j, "rules");
	for (size_t i = 0; in->nft_error == 0 && i < in->n_rules; i++) {
		xn_json_object_begin(j, NULL);
		xn_json_string(j, "chain", in->rules[i].chain);
		xn_json_string(j, "comment", in->rules[i].comment);
		xn_json_uint(j, "packets", in->rules[i].packets);
		xn_json_uint(j, "bytes", in->rules[i].bytes);
		xn_json_object_end(j);
	}
	xn_json_array_end(j);
	xn_json_object_end(j);
}

static void render_json(const struct xn_status_input *in, struct xn_buf *b)
{
	const struct xn_profile *p = in->profile;
	struct xn_json j;

	xn_json_document_begin(&j, b);
	xn_json_int(&j, "pid", in->pid);
	xn_json_string(&j, "profile", p ? p->path : NULL);
	if (p && in->profile_source && in->profile_source[0])
		xn_json_string(&j, "profile_source", in->profile_source);
	xn_json_string(&j, "mode", p ? xn_mode_name(p->mode) : NULL);
	xn_json_string(&j, "last_error", in->last_error);
	xn_json_array_begin(&j, "last_warnings");
	for (const char *w = in->last_warnings; w && *w;) {
		const char *end = strchr(w, '\n');
		size_t n = end ? (size_t)(end - w) : strlen(w);
		char *line = strndup(w, n);

		if (line && strncmp(line, "warning: ", 9) == 0)
			xn_json_string(&j, NULL, line + 9);
		else if (line)
			xn_json_string(&j, NULL, line);
		free(line);
		w += n + (end ? 1 : 0);
	}
	xn_json_array_end(&j);
	if (in->state_dir) {
		xn_json_object_begin(&j, "state_dir");
		xn_json_string(&j, "path", in->state_dir);
		xn_json_string(&j, "error", in->state_error ? strerror(-in->state_error) : NULL);
		xn_json_object_end(&j);
	}
	bridges_json(in, &j);
	uplinks_json(in, &j);
	sysctls_json(in, &j);
	nft_json(in, &j);
	if (in->extra)
		in->extra(&j, b, in->extra_userdata);
	xn_json_document_end(&j);
}

void xn_status_render(const struct xn_status_input *in, bool json,
		      struct xn_buf *out)
{
	if (json)
		render_json(in, out);
	else
		render_text(in, out);
}

/* ---- vifs ---- */

struct vifs_ctx {
	const struct xn_nft_vif_drops *drops;
	size_t n_drops;
	struct xn_json *json;
	struct xn_buf *out;
};

static const struct xn_nft_vif_drops *drops_of(const struct vifs_ctx *c, const char *name)
{
	for (size_t i = 0; i < c->n_drops; i++)
		if (strcmp(c->drops[i].ifname, name) == 0)
			return &c->drops[i];
	return NULL;
}

static void vif_json(const struct xn_vif_info *v, const char *mac,
		     const struct xn_nft_vif_drops *d, struct xn_json *j)
{
	char a[XN_ADDR_STRLEN];

	xn_json_object_begin(j, NULL);
	xn_json_uint(j, "domid", v->domid);
	xn_json_uint(j, "devid", v->devid);
	xn_json_bool(j, "emu", v->emu);
	xn_json_string(j, "name", v->name);
	xn_json_string(j, "domain", v->domain);
	xn_json_string(j, "mac", mac);
	xn_json_string(j, "state", v->state);
	xn_json_bool(j, "antispoof", v->filtered);
	xn_json_string(j, "mode", xn_mode_name(v->mode));
	xn_json_string(j, "bridge", v->mode == XN_MODE_ROUTED ? NULL : v->bridge);
	xn_json_array_begin(j, "addresses");
	for (size_t i = 0; i < v->n_ips; i++)
		xn_json_string(j, NULL, xn_addr_format(&v->ips[i], true, a));
	xn_json_array_end(j);
	if (d) {
		xn_json_object_begin(j, "spoofed_dropped");
		xn_json_uint(j, "packets", d->packets);
		xn_json_uint(j, "bytes", d->bytes);
		xn_json_object_end(j);
	} else {
		xn_json_null(j, "spoofed_dropped");
	}
	if (v->error)
		xn_json_string(j, "error", v->error);
	xn_json_object_end(j);
}

static void vif_text(const struct xn_vif_info *v, const char *mac,
		     const struct xn_nft_vif_drops *d, struct xn_buf *out)
{
	bool connected = strcmp(v->state, "connected") == 0;
	char a[XN_ADDR_STRLEN];

	xn_buf_printf(out, "vif %u/%u%s %s", v->domid, v->devid, v->emu ? " (emu)" : "", v->name);
	if (v->domain) {
		xn_buf_printf(out, " (domain ");
		for (const char *c = v->domain; *c; c++) /* shown, never obeyed by a terminal */
			xn_buf_printf(out, "%c", (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c);
		xn_buf_printf(out, ")");
	}
	xn_buf_printf(out, ": %s", v->state);
	if (mac)
		xn_buf_printf(out, ", mac %s", mac);
	if (connected)
		xn_buf_printf(out, v->mode == XN_MODE_ROUTED ? ", routed" : ", bridge %s", v->bridge);
	for (size_t i = 0; i < v->n_ips; i++)
		xn_buf_printf(out, "%s%s", i ? " " : ", addresses ",
			      xn_addr_format(&v->ips[i], true, a));
	if (connected)
		xn_buf_printf(out, ", anti-spoofing %s", v->filtered ? "on" : "off");
	if (d)
		xn_buf_printf(out, ", %llu spoofed packets dropped", (unsigned long long)d->packets);
	if (v->error)
		xn_buf_printf(out, ": %s", v->error);
	xn_buf_printf(out, "\n");
}

static void one_vif(const struct xn_vif_info *v, void *userdata)
{
	struct vifs_ctx *c = userdata;
	const struct xn_nft_vif_drops *d = v->filtered ? drops_of(c, v->name) : NULL;
	char mac[18];

	if (v->has_mac)
		xn_format_mac(v->mac, mac);
	if (c->json)
		vif_json(v, v->has_mac ? mac : NULL, d, c->json);
	else
		vif_text(v, v->has_mac ? mac : NULL, d, c->out);
}

void xn_status_vifs(struct xn_hotplug *h, const struct xn_nft_vif_drops *drops, size_t n_drops,
		    struct xn_json *json, struct xn_buf *out)
{
	struct vifs_ctx c = { .drops = drops, .n_drops = n_drops, .json = json, .out = out };

	if (json)
		xn_json_array_begin(json, "vifs");
	if (h)
		xn_hotplug_each_vif(h, one_vif, &c);
	if (json)
		xn_json_array_end(json);
}
