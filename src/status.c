/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/status.h"

#include <string.h>

#include "xennet/plan.h"
#include "xennet/sysctl.h"

/* JSON string with escaping; names are validated but comments and error
 * messages are free text. */
static void json_str(struct xn_buf *b, const char *s)
{
	xn_buf_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			xn_buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			xn_buf_printf(b, "\\u%04x", c);
		else
			xn_buf_printf(b, "%c", c);
	}
	xn_buf_printf(b, "\"");
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
		in->extra(false, b, in->extra_userdata);
}

static void render_json(const struct xn_status_input *in, struct xn_buf *b)
{
	const struct xn_profile *p = in->profile;
	const struct xn_snapshot *s = in->snapshot;
	char a[XN_ADDR_STRLEN];

	xn_buf_printf(b, "{\"pid\":%d,\"profile\":", (int)in->pid);
	if (p)
		json_str(b, p->path);
	else
		xn_buf_printf(b, "null");
	if (p && in->profile_source && in->profile_source[0]) {
		xn_buf_printf(b, ",\"profile_source\":");
		json_str(b, in->profile_source);
	}
	xn_buf_printf(b, ",\"mode\":");
	if (p)
		json_str(b, xn_mode_name(p->mode));
	else
		xn_buf_printf(b, "null");
	xn_buf_printf(b, ",\"last_error\":");
	if (in->last_error)
		json_str(b, in->last_error);
	else
		xn_buf_printf(b, "null");
	if (in->state_dir) {
		xn_buf_printf(b, ",\"state_dir\":{\"path\":");
		json_str(b, in->state_dir);
		xn_buf_printf(b, ",\"error\":");
		if (in->state_error)
			json_str(b, strerror(-in->state_error));
		else
			xn_buf_printf(b, "null");
		xn_buf_printf(b, "}");
	}

	xn_buf_printf(b, ",\"bridges\":[");
	for (size_t i = 0; p && i < p->n_bridges; i++) {
		const struct xn_bridge_conf *bc = &p->bridges[i];
		const struct xn_link *br = xn_snapshot_link(s, bc->name);
		bool first = true;

		xn_buf_printf(b, "%s{\"name\":", i ? "," : "");
		json_str(b, bc->name);
		xn_buf_printf(b, ",\"present\":%s", br ? "true" : "false");
		if (br) {
			xn_buf_printf(b, ",\"up\":%s,\"mtu\":%u,\"stp\":%s,\"forward_delay\":%u,\"created_by_xennet\":%s",
				      br->up ? "true" : "false", br->mtu,
				      br->stp_state ? "true" : "false",
				      br->forward_delay / 100,
				      xn_ledger_has_bridge(in->ledger, bc->name) ? "true" : "false");
			xn_buf_printf(b, ",\"ports\":[");
			for (size_t j = 0; j < s->n_links; j++)
				if (s->links[j].master == br->ifindex) {
					xn_buf_printf(b, "%s", first ? "" : ",");
					json_str(b, s->links[j].name);
					first = false;
				}
			xn_buf_printf(b, "],\"addresses\":[");
			first = true;
			for (size_t j = 0; j < s->n_addrs; j++)
				if (s->addrs[j].ifindex == br->ifindex) {
					xn_buf_printf(b, "%s", first ? "" : ",");
					json_str(b, xn_addr_format(&s->addrs[j].addr, true, a));
					first = false;
				}
			xn_buf_printf(b, "]");
		}
		xn_buf_printf(b, "}");
	}
	xn_buf_printf(b, "],\"sysctls\":[");
	struct xn_wanted_sysctl w[XN_MAX_WANTED_SYSCTLS];
	size_t nw = xn_plan_sysctls(p, w);
	for (size_t i = 0; i < nw; i++) {
		char cur[XN_SYSCTL_VALUE_MAX] = "";
		const struct xn_ledger_sysctl *ls = xn_ledger_sysctl(in->ledger, w[i].path);
		xn_sysctl_read(w[i].path, cur);
		xn_buf_printf(b, "%s{\"path\":", i ? "," : "");
		json_str(b, w[i].path);
		xn_buf_printf(b, ",\"value\":");
		json_str(b, cur);
		xn_buf_printf(b, ",\"wanted\":");
		json_str(b, w[i].value);
		xn_buf_printf(b, ",\"original\":");
		if (ls)
			json_str(b, ls->original);
		else
			xn_buf_printf(b, "null");
		xn_buf_printf(b, "}");
	}
	xn_buf_printf(b, "],\"nftables\":{\"table\":\"inet %s\",\"present\":%s",
		      XN_NFT_TABLE, in->nft_error == 0 ? "true" : "false");
	if (in->nft_error && in->nft_error != -ENOENT) {
		xn_buf_printf(b, ",\"error\":");
		json_str(b, strerror(-in->nft_error));
	}
	xn_buf_printf(b, ",\"rules\":[");
	for (size_t i = 0; in->nft_error == 0 && i < in->n_rules; i++) {
		xn_buf_printf(b, "%s{\"chain\":", i ? "," : "");
		json_str(b, in->rules[i].chain);
		xn_buf_printf(b, ",\"comment\":");
		json_str(b, in->rules[i].comment);
		xn_buf_printf(b, ",\"packets\":%llu,\"bytes\":%llu}",
			      (unsigned long long)in->rules[i].packets,
			      (unsigned long long)in->rules[i].bytes);
	}
	xn_buf_printf(b, "]}");
	if (in->extra)
		in->extra(true, b, in->extra_userdata);
	xn_buf_printf(b, "}\n");
}

void xn_status_render(const struct xn_status_input *in, bool json,
		      struct xn_buf *out)
{
	if (json)
		render_json(in, out);
	else
		render_text(in, out);
}
