/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/plan.h"

#include <linux/rtnetlink.h>
#include <string.h>

#include "xennet/util.h"

static const char *const SYSCTL_IP_FORWARD = "net/ipv4/ip_forward";

/* ---- what the profile wants ---- */

void xn_plan_nft_spec(const struct xn_profile *p, struct xn_nft_spec *spec)
{
	*spec = (struct xn_nft_spec){ 0 };
	if (!p)
		return;
	spec->antispoof_bridge = p->antispoof && p->mode != XN_MODE_ROUTED;
	spec->antispoof_routed = p->antispoof && p->mode == XN_MODE_ROUTED;
	if (p->mode != XN_MODE_NAT)
		return;
	spec->nat = true;
	snprintf(spec->nat_uplink, sizeof(spec->nat_uplink), "%s", p->nat_uplink);
	const struct xn_bridge_conf *br = xn_profile_bridge(p, p->nat_bridge);
	for (size_t i = 0; br && i < br->n_addresses &&
			   spec->n_nat_networks < XN_ARRAY_SIZE(spec->nat_networks);
	     i++)
		if (br->addresses[i].family == AF_INET)
			spec->nat_networks[spec->n_nat_networks++] =
				xn_addr_network(&br->addresses[i]);
}

size_t xn_plan_sysctls(const struct xn_profile *p,
		       struct xn_wanted_sysctl out[XN_MAX_WANTED_SYSCTLS])
{
	size_t n = 0;

	if (!p)
		return 0;
	if (p->mode == XN_MODE_ROUTED || p->mode == XN_MODE_NAT) {
		snprintf(out[n].path, sizeof(out[n].path), "%s", SYSCTL_IP_FORWARD);
		out[n++].value = "1";
	}
	if (p->mode == XN_MODE_ROUTED &&
	    xn_sysctl_if_path("ipv4", p->routed_uplink, "proxy_arp", out[n].path,
			      sizeof(out[n].path)) == 0)
		out[n++].value = "1";
	/* Routed guests with IPv6 addresses: forwarding, and proxy NDP on
	 * the uplink for the neighbour proxies each vif adds. */
	if (p->mode == XN_MODE_ROUTED) {
		snprintf(out[n].path, sizeof(out[n].path), "net/ipv6/conf/all/forwarding");
		out[n++].value = "1";
		if (xn_sysctl_if_path("ipv6", p->routed_uplink, "proxy_ndp", out[n].path,
				      sizeof(out[n].path)) == 0)
			out[n++].value = "1";
	}
	return n;
}

static bool wants_bridge(const struct xn_profile *p, const char *name)
{
	return p && xn_profile_bridge(p, name);
}

static bool wants_port(const struct xn_profile *p, const char *bridge,
		       const char *port)
{
	const struct xn_bridge_conf *b = p ? xn_profile_bridge(p, bridge) : NULL;

	return b && strcmp(b->uplink, port) == 0;
}

static bool wants_move(const struct xn_profile *p, const char *from,
		       const char *to)
{
	const struct xn_bridge_conf *b = p ? xn_profile_bridge(p, to) : NULL;

	return b && b->take_addresses && strcmp(b->uplink, from) == 0;
}

static bool wants_addr(const struct xn_profile *p, const char *dev,
		       const struct xn_addr *a)
{
	const struct xn_bridge_conf *b = p ? xn_profile_bridge(p, dev) : NULL;

	for (size_t i = 0; b && i < b->n_addresses; i++)
		if (xn_addr_equal(&b->addresses[i], a))
			return true;
	return false;
}

/* ---- building ---- */

static struct xn_step *push(struct xn_plan *plan, enum xn_step_op op,
			    const char *dev, const char *dev2)
{
	struct xn_step *v = reallocarray(plan->steps, plan->n_steps + 1,
					 sizeof(*v));
	struct xn_step *st;

	if (!v)
		return NULL;
	plan->steps = v;
	st = &v[plan->n_steps++];
	*st = (struct xn_step){ .op = op };
	if (dev)
		snprintf(st->dev, sizeof(st->dev), "%s", dev);
	if (dev2)
		snprintf(st->dev2, sizeof(st->dev2), "%s", dev2);
	return st;
}

#define PUSH(plan, op, dev, dev2)                                              \
	({                                                                     \
		struct xn_step *_s = push(plan, op, dev, dev2);                \
		if (!_s)                                                       \
			return -ENOMEM;                                        \
		_s;                                                            \
	})

static bool route_on(const struct xn_route *r, int ifindex)
{
	return r->ifindex == ifindex && r->protocol != RTPROT_KERNEL &&
	       r->type == RTN_UNICAST;
}

static bool addr_movable(const struct xn_ifaddr *a)
{
	return a->scope == RT_SCOPE_UNIVERSE;
}

/* A bridge about to be removed that still has ports other than the
 * uplinks xennet put there: guests connected to it lose their network. */
static void warn_ports_detached(const struct xn_profile *p, const struct xn_snapshot *s,
				const struct xn_ledger *l, const char *bridge,
				struct xn_plan *plan)
{
	const struct xn_link *br = xn_snapshot_link(s, bridge);
	size_t n = 0;

	(void)p;
	for (size_t i = 0; br && i < s->n_links; i++) {
		const struct xn_link *port = &s->links[i];

		if (port->master != br->ifindex || xn_ledger_has_port(l, bridge, port->name))
			continue;
		xn_buf_printf(&plan->warnings, "%s%s", n++ ? ", " : "", port->name);
	}
	if (n)
		xn_buf_printf(&plan->warnings,
			      " %s detached: bridge %s, which the profile no longer has, is removed with %s ports (their guests lose their network)\n",
			      n == 1 ? "is" : "are", bridge, n == 1 ? "its" : "all its");
}

static int plan_undo(const struct xn_profile *p, const struct xn_snapshot *s,
		     const struct xn_ledger *l, struct xn_plan *plan)
{
	struct xn_step *st;

	/* Ports first: a moved address can only work again on a released
	 * uplink. */
	for (size_t i = 0; i < l->n_ports; i++) {
		const struct xn_ledger_port *pt = &l->ports[i];
		const struct xn_link *port = xn_snapshot_link(s, pt->port);
		const struct xn_link *br = xn_snapshot_link(s, pt->bridge);

		if (wants_port(p, pt->bridge, pt->port))
			continue;
		st = PUSH(plan, XN_STEP_PORT_RELEASE, pt->port, pt->bridge);
		/* Only release it if it is still where we put it. */
		st->record = port && br && port->master == br->ifindex;
	}
	for (size_t i = 0; i < l->n_moved_addrs; i++) {
		const struct xn_ledger_moved_addr *m = &l->moved_addrs[i];

		if (wants_move(p, m->from, m->to))
			continue;
		st = PUSH(plan, XN_STEP_ADDR_RESTORE, m->from, m->to);
		st->addr = m->addr;
	}
	for (size_t i = 0; i < l->n_moved_routes; i++) {
		const struct xn_ledger_moved_route *m = &l->moved_routes[i];

		if (wants_move(p, m->from, m->to))
			continue;
		st = PUSH(plan, XN_STEP_ROUTE_RESTORE, m->from, m->to);
		st->route = m->route;
	}
	for (size_t i = 0; i < l->n_moved_addrs; i++) {
		const struct xn_ledger_moved_addr *m = &l->moved_addrs[i];
		const struct xn_link *to = xn_snapshot_link(s, m->to);

		if (wants_move(p, m->from, m->to) || !to ||
		    !xn_snapshot_has_addr(s, to->ifindex, &m->addr))
			continue;
		st = PUSH(plan, XN_STEP_ADDR_DEL, m->to, NULL);
		st->addr = m->addr;
	}
	for (size_t i = 0; i < l->n_addrs; i++) {
		const struct xn_ledger_addr *a = &l->addrs[i];
		const struct xn_link *dev = xn_snapshot_link(s, a->dev);

		if (wants_addr(p, a->dev, &a->addr))
			continue;
		st = PUSH(plan, XN_STEP_ADDR_DEL, a->dev, NULL);
		st->addr = a->addr;
		st->record = true; /* drop from the ledger */
		if (!dev || !xn_snapshot_has_addr(s, dev->ifindex, &a->addr))
			st->dev2[0] = '-'; /* already gone: ledger only */
	}
	for (size_t i = 0; i < l->n_tuned; i++) {
		const struct xn_ledger_tuned *t = &l->tuned[i];
		const struct xn_bridge_conf *b = p ? xn_profile_bridge(p, t->bridge) : NULL;

		if (b && (b->stp >= 0 || b->forward_delay >= 0))
			continue;
		st = PUSH(plan, XN_STEP_BRIDGE_RESTORE, t->bridge, NULL);
		st->stp = t->stp;
		st->forward_delay = t->forward_delay;
		st->record = xn_snapshot_link(s, t->bridge) != NULL;
	}
	for (size_t i = 0; i < l->n_bridges; i++)
		if (!wants_bridge(p, l->bridges[i])) {
			PUSH(plan, XN_STEP_BRIDGE_DELETE, l->bridges[i], NULL);
			warn_ports_detached(p, s, l, l->bridges[i], plan);
		}
	for (size_t i = 0; i < l->n_sysctls; i++) {
		struct xn_wanted_sysctl w[XN_MAX_WANTED_SYSCTLS];
		size_t n = xn_plan_sysctls(p, w);
		bool wanted = false;

		for (size_t j = 0; j < n; j++)
			wanted |= strcmp(w[j].path, l->sysctls[i].path) == 0;
		if (wanted)
			continue;
		st = PUSH(plan, XN_STEP_SYSCTL_RESTORE, NULL, NULL);
		snprintf(st->path, sizeof(st->path), "%s", l->sysctls[i].path);
		snprintf(st->value, sizeof(st->value), "%s", l->sysctls[i].original);
	}
	return 0;
}

static bool route_present(const struct xn_snapshot *s, int ifindex, const struct xn_route *r)
{
	for (size_t i = 0; ifindex > 0 && i < s->n_routes; i++) {
		const struct xn_route *x = &s->routes[i];
		if (x->ifindex == ifindex && x->family == r->family && x->table == r->table &&
		    xn_addr_equal(&x->dst, &r->dst) && x->has_gateway == r->has_gateway &&
		    (!r->has_gateway || xn_addr_equal(&x->gateway, &r->gateway)))
			return true;
	}
	return false;
}

/* Addresses and routes the ledger says were moved from the uplink to the
 * bridge, now on neither (the bridge was deleted, and they with it): put
 * on the bridge again. Routes after the addresses they need. */
static int plan_moved_back(const struct xn_bridge_conf *b, const struct xn_snapshot *s,
			    const struct xn_ledger *l, const struct xn_link *br,
			    const struct xn_link *up, bool routes, struct xn_plan *plan)
{
	int br_index = br ? br->ifindex : 0;
	struct xn_step *st;

	for (size_t i = 0; !routes && i < l->n_moved_addrs; i++) {
		const struct xn_ledger_moved_addr *m = &l->moved_addrs[i];
		if (strcmp(m->to, b->name) != 0 || strcmp(m->from, b->uplink) != 0 ||
		    xn_snapshot_has_addr(s, up->ifindex, &m->addr) ||
		    (br && xn_snapshot_has_addr(s, br->ifindex, &m->addr)))
			continue;
		st = PUSH(plan, XN_STEP_ADDR_MOVE, b->name, b->uplink);
		st->addr = m->addr;
		st->record = true;
	}
	for (size_t i = 0; routes && i < l->n_moved_routes; i++) {
		const struct xn_ledger_moved_route *m = &l->moved_routes[i];
		if (strcmp(m->to, b->name) != 0 || strcmp(m->from, b->uplink) != 0 ||
		    route_present(s, up->ifindex, &m->route) ||
		    route_present(s, br_index, &m->route))
			continue;
		st = PUSH(plan, XN_STEP_ROUTE_MOVE, b->name, b->uplink);
		st->route = m->route;
		st->record = true;
	}
	return 0;
}

/* STP and forward delay of an existing bridge: one xennet made gets the
 * profile's values, else off and 0; one it adopts keeps its own unless
 * the profile sets them, and the ledger keeps what it had. */
static int plan_bridge_tune(const struct xn_bridge_conf *b, const struct xn_link *br,
			    const struct xn_ledger *l, struct xn_plan *plan)
{
	bool ours = xn_ledger_has_bridge(l, b->name);
	uint32_t stp = b->stp >= 0 ? (uint32_t)b->stp : ours ? 0 : XN_BRIDGE_LEAVE;
	uint32_t fd = b->forward_delay >= 0 ? (uint32_t)b->forward_delay * 100
		      : ours ? 0 : XN_BRIDGE_LEAVE;
	struct xn_step *st;

	if (stp == br->stp_state || (stp == 1 && br->stp_state != 0))
		stp = XN_BRIDGE_LEAVE; /* the kernel's user or kernel STP is on */
	if (fd == br->forward_delay)
		fd = XN_BRIDGE_LEAVE;
	if (stp == XN_BRIDGE_LEAVE && fd == XN_BRIDGE_LEAVE)
		return 0;
	st = PUSH(plan, XN_STEP_BRIDGE_TUNE, b->name, NULL);
	st->stp = stp;
	st->forward_delay = fd;
	st->was_stp = br->stp_state ? 1 : 0;
	st->was_forward_delay = br->forward_delay;
	st->record = !ours;
	return 0;
}

/* Addresses the host uses outside xennet (on other devices, not moved or
 * added by xennet): a bridge address inside one of their networks, or
 * whose network holds one of them, takes the host's own traffic (the LAN
 * gateway's address on the bridge: Dom0 loses its gateway). */
static bool prefixes_overlap(const struct xn_addr *a, const struct xn_addr *b)
{
	const struct xn_addr *wide = a->prefixlen <= b->prefixlen ? a : b;
	const struct xn_addr *narrow = wide == a ? b : a;

	return a->family == b->family && xn_addr_in_network(wide, narrow);
}

static bool ledger_knows_addr(const struct xn_ledger *l, const char *dev,
			      const struct xn_addr *a)
{
	if (xn_ledger_has_addr(l, dev, a))
		return true;
	for (size_t i = 0; i < l->n_moved_addrs; i++)
		if (strcmp(l->moved_addrs[i].to, dev) == 0 &&
		    xn_addr_equal(&l->moved_addrs[i].addr, a))
			return true;
	return false;
}

/* Is dev one whose addresses and routes are not the host's own here: the
 * bridge itself, its uplink when they move to it, a bridge xennet made. */
static bool dev_is_xennets(const struct xn_bridge_conf *b, const struct xn_ledger *l,
			   const struct xn_link *dev)
{
	return !dev || strcmp(dev->name, b->name) == 0 ||
	       (b->take_addresses && strcmp(dev->name, b->uplink) == 0) ||
	       xn_ledger_has_bridge(l, dev->name);
}

static int check_overlap(const struct xn_profile *p, const struct xn_bridge_conf *b,
			 size_t k, const struct xn_snapshot *s, const struct xn_ledger *l,
			 struct xn_buf *err)
{
	const struct xn_addr *want = &b->addresses[k];
	struct xn_addr net = xn_addr_network(want);
	char a[XN_ADDR_STRLEN], o[XN_ADDR_STRLEN];

	for (size_t i = 0; i < s->n_addrs; i++) {
		const struct xn_ifaddr *x = &s->addrs[i];
		const struct xn_link *dev = xn_snapshot_link_by_index(s, x->ifindex);

		if (x->scope > RT_SCOPE_SITE || dev_is_xennets(b, l, dev) ||
		    ledger_knows_addr(l, dev->name, &x->addr) || !prefixes_overlap(&net, &x->addr))
			continue;
		xn_buf_printf(err, "%s:%u: address %s of bridge %s overlaps %s on %s, which this host already uses; refused (the host would lose that network): choose a network of its own",
			      p->path, b->address_lines ? b->address_lines[k] : b->line,
			      xn_addr_format(want, true, a), b->name,
			      xn_addr_format(&x->addr, true, o), dev->name);
		return -EADDRINUSE;
	}
	for (size_t i = 0; i < s->n_routes; i++) {
		const struct xn_route *r = &s->routes[i];
		const struct xn_link *dev = xn_snapshot_link_by_index(s, r->ifindex);

		if (r->dst.prefixlen == 0 || r->protocol == RTPROT_KERNEL ||
		    r->protocol == XN_RTPROT_PUBLIC || dev_is_xennets(b, l, dev) ||
		    !prefixes_overlap(&net, &r->dst))
			continue;
		xn_buf_printf(err, "%s:%u: address %s of bridge %s overlaps the route to %s on %s, which this host already uses; refused (the host would lose that network): choose a network of its own",
			      p->path, b->address_lines ? b->address_lines[k] : b->line,
			      xn_addr_format(want, true, a), b->name,
			      xn_addr_format(&r->dst, true, o), dev->name);
		return -EADDRINUSE;
	}
	return 0;
}

/* An address that is not permanent (a DHCP lease, a SLAAC address: the
 * kernel lets it expire unless its client renews it) becomes permanent
 * once copied to the bridge, and nobody renews it there. */
static void warn_dynamic(const struct xn_bridge_conf *b, const struct xn_ifaddr *x,
			 struct xn_plan *plan)
{
	char a[XN_ADDR_STRLEN];

	if (x->flags & IFA_F_PERMANENT)
		return;
	xn_buf_printf(&plan->warnings,
		      "address %s on %s is dynamic (%s, valid for %u s more): moved to %s it becomes permanent and is no longer renewed; run the DHCP client (or accept router advertisements) on %s instead\n",
		      xn_addr_format(&x->addr, true, a), b->uplink,
		      x->addr.family == AF_INET ? "a DHCP lease" : "SLAAC or DHCPv6",
		      x->valid_lft, b->name, b->name);
}

static int plan_bridge(const struct xn_profile *p, const struct xn_bridge_conf *b,
		       const struct xn_snapshot *s, const struct xn_ledger *l,
		       struct xn_plan *plan, struct xn_buf *err)
{
	const struct xn_link *br = xn_snapshot_link(s, b->name);
	const struct xn_link *up = NULL;
	struct xn_step *st;

	if (br && strcmp(br->kind, "bridge") != 0) {
		xn_buf_printf(err, "bridge %s: a device of that name exists and is not a bridge (kind \"%s\")",
			      b->name, br->kind[0] ? br->kind : "none");
		return -EEXIST;
	}
	if (b->uplink[0]) {
		up = xn_snapshot_link(s, b->uplink);
		if (!up) {
			xn_buf_printf(err, "bridge %s: uplink %s does not exist",
				      b->name, b->uplink);
			return -ENODEV;
		}
		if (strcmp(up->kind, "bridge") == 0) {
			xn_buf_printf(err, "bridge %s: uplink %s is itself a bridge",
				      b->name, b->uplink);
			return -EINVAL;
		}
	}

	/* The bridge's MTU is its own (the profile's, else the uplink's):
	 * never the smallest of its ports', which one vif could lower. */
	if (!br) {
		/* dev2: the uplink whose MTU it takes (without one, 1500). */
		st = PUSH(plan, XN_STEP_BRIDGE_CREATE, b->name, b->uplink[0] ? b->uplink : NULL);
		st->mtu = b->mtu;
		st->stp = b->stp > 0 ? 1 : 0;
		st->forward_delay = b->forward_delay > 0 ? (uint32_t)b->forward_delay * 100 : 0;
		st->record = true;
	} else {
		unsigned want = b->mtu ? b->mtu : up ? up->mtu : 0;
		if (plan_bridge_tune(b, br, l, plan) < 0)
			return -ENOMEM;
		if (want && br->mtu != want) {
			st = PUSH(plan, XN_STEP_LINK_MTU, b->name, NULL);
			st->mtu = want;
		}
	}
	if (up) {
		if (!br || up->master != br->ifindex) {
			st = PUSH(plan, XN_STEP_PORT_ADD, b->uplink, b->name);
			st->record = true;
		}
		if (!up->up)
			PUSH(plan, XN_STEP_LINK_UP, b->uplink, NULL);
	}
	if (!br || !br->up)
		PUSH(plan, XN_STEP_LINK_UP, b->name, NULL);

	for (size_t i = 0; i < b->n_addresses; i++) {
		int r;

		if (br && xn_snapshot_has_addr(s, br->ifindex, &b->addresses[i]))
			continue;
		r = check_overlap(p, b, i, s, l, err);
		if (r < 0)
			return r;
		st = PUSH(plan, XN_STEP_ADDR_ADD, b->name, NULL);
		st->addr = b->addresses[i];
		st->record = true;
	}

	if (b->take_addresses && up) {
		if (plan_moved_back(b, s, l, br, up, false, plan) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < s->n_addrs; i++) {
			const struct xn_ifaddr *a = &s->addrs[i];
			if (a->ifindex != up->ifindex || !addr_movable(a))
				continue;
			st = PUSH(plan, XN_STEP_ADDR_MOVE, b->name, b->uplink);
			st->addr = a->addr;
			st->record = true;
			warn_dynamic(b, a, plan);
		}
		for (size_t i = 0; i < s->n_routes; i++) {
			if (!route_on(&s->routes[i], up->ifindex))
				continue;
			st = PUSH(plan, XN_STEP_ROUTE_MOVE, b->name, b->uplink);
			st->route = s->routes[i];
			st->record = true;
		}
		if (plan_moved_back(b, s, l, br, up, true, plan) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < s->n_addrs; i++) {
			const struct xn_ifaddr *a = &s->addrs[i];
			if (a->ifindex != up->ifindex || !addr_movable(a))
				continue;
			st = PUSH(plan, XN_STEP_ADDR_DEL, b->uplink, NULL);
			st->addr = a->addr;
		}
	}
	return 0;
}

int xn_plan_build(const struct xn_profile *p, const struct xn_snapshot *s,
		  const struct xn_ledger *l, enum xn_nft_table_state nft_state,
		  bool nft_unknown, struct xn_plan *plan, struct xn_buf *err)
{
	struct xn_wanted_sysctl w[XN_MAX_WANTED_SYSCTLS];
	size_t nw;
	int r;

	*plan = (struct xn_plan){ .nft_unknown = nft_unknown };
	xn_plan_nft_spec(p, &plan->nft);

	if (p && p->mode == XN_MODE_ROUTED && !xn_snapshot_link(s, p->routed_uplink)) {
		xn_buf_printf(err, "routed: uplink %s does not exist", p->routed_uplink);
		return -ENODEV;
	}
	if (p && p->mode == XN_MODE_NAT && !xn_snapshot_link(s, p->nat_uplink)) {
		xn_buf_printf(err, "nat: uplink %s does not exist", p->nat_uplink);
		return -ENODEV;
	}

	r = plan_undo(p, s, l, plan);
	for (size_t i = 0; r >= 0 && p && i < p->n_bridges; i++)
		r = plan_bridge(p, &p->bridges[i], s, l, plan, err);
	if (r < 0)
		goto fail;

	nw = xn_plan_sysctls(p, w);
	for (size_t i = 0; i < nw; i++) {
		const struct xn_snapshot_sysctl *cur = NULL;
		struct xn_step *st;

		for (size_t j = 0; j < s->n_sysctls; j++)
			if (strcmp(s->sysctls[j].path, w[i].path) == 0)
				cur = &s->sysctls[j];
		if (cur && cur->exists && strcmp(cur->value, w[i].value) == 0)
			continue;
		st = push(plan, XN_STEP_SYSCTL_SET, NULL, NULL);
		if (!st) {
			r = -ENOMEM;
			goto fail;
		}
		snprintf(st->path, sizeof(st->path), "%s", w[i].path);
		snprintf(st->value, sizeof(st->value), "%s", w[i].value);
		/* Unknown when the interface only appears later in this plan:
		 * the original value is read again when the step runs. */
		snprintf(st->original, sizeof(st->original), "%s",
			 cur && cur->exists ? cur->value : "?");
		st->record = true;
	}

	if (nft_unknown ||
	    (xn_nft_spec_empty(&plan->nft) ? nft_state != XN_NFT_ABSENT
					    : nft_state != XN_NFT_CURRENT)) {
		if (!push(plan, XN_STEP_NFT_INSTALL, NULL, NULL)) {
			r = -ENOMEM;
			goto fail;
		}
	}
	return 0;
fail:
	xn_plan_clear(plan);
	return r;
}

void xn_plan_clear(struct xn_plan *plan)
{
	xn_buf_free(&plan->warnings);
	free(plan->steps);
	plan->steps = NULL;
	plan->n_steps = 0;
}

/* ---- describing ---- */

static void describe_route(const struct xn_route *r, struct xn_buf *b)
{
	char d[XN_ADDR_STRLEN], g[XN_ADDR_STRLEN];

	if (r->dst.prefixlen == 0)
		xn_buf_printf(b, "%s route", r->family == AF_INET6 ? "IPv6 default" : "default");
	else
		xn_buf_printf(b, "route %s", xn_addr_format(&r->dst, true, d));
	if (r->has_gateway)
		xn_buf_printf(b, " via %s", xn_addr_format(&r->gateway, false, g));
	if (r->priority)
		xn_buf_printf(b, " metric %u", r->priority);
}

void xn_step_describe(const struct xn_step *st, struct xn_buf *b)
{
	char a[XN_ADDR_STRLEN];

	switch (st->op) {
	case XN_STEP_PORT_RELEASE:
		xn_buf_printf(b, "release %s from bridge %s%s", st->dev, st->dev2,
			      st->record ? "" : " (already released)");
		break;
	case XN_STEP_ADDR_RESTORE:
		xn_buf_printf(b, "move address %s back from %s to %s",
			      xn_addr_format(&st->addr, true, a), st->dev2, st->dev);
		break;
	case XN_STEP_ROUTE_RESTORE:
		xn_buf_printf(b, "move ");
		describe_route(&st->route, b);
		xn_buf_printf(b, " back from %s to %s", st->dev2, st->dev);
		break;
	case XN_STEP_ADDR_DEL:
		xn_buf_printf(b, "remove address %s from %s%s",
			      xn_addr_format(&st->addr, true, a), st->dev,
			      st->dev2[0] == '-' ? " (already gone)" : "");
		break;
	case XN_STEP_BRIDGE_DELETE:
		xn_buf_printf(b, "remove bridge %s", st->dev);
		break;
	case XN_STEP_SYSCTL_RESTORE:
		xn_buf_printf(b, "restore sysctl %s to %s", st->path, st->value);
		break;
	case XN_STEP_BRIDGE_RESTORE:
		xn_buf_printf(b, "set STP %s and forward delay %u s on bridge %s back%s",
			      st->stp ? "on" : "off", st->forward_delay / 100, st->dev,
			      st->record ? "" : " (bridge gone: ledger only)");
		break;
	case XN_STEP_BRIDGE_CREATE:
		xn_buf_printf(b, "create bridge %s (STP %s, forward delay %u s", st->dev,
			      st->stp ? "on" : "off", st->forward_delay / 100);
		if (st->mtu)
			xn_buf_printf(b, ", mtu %u", st->mtu);
		xn_buf_printf(b, ")");
		break;
	case XN_STEP_BRIDGE_TUNE:
		xn_buf_printf(b, "set");
		if (st->stp != XN_BRIDGE_LEAVE)
			xn_buf_printf(b, " STP %s", st->stp ? "on" : "off");
		if (st->forward_delay != XN_BRIDGE_LEAVE)
			xn_buf_printf(b, "%s forward delay %u s",
				      st->stp != XN_BRIDGE_LEAVE ? " and" : "", st->forward_delay / 100);
		xn_buf_printf(b, " on bridge %s", st->dev);
		if (st->record)
			xn_buf_printf(b, " (was STP %s, forward delay %u s: put back when the profile no longer sets them)",
				      st->was_stp ? "on" : "off", st->was_forward_delay / 100);
		break;
	case XN_STEP_LINK_MTU:
		xn_buf_printf(b, "set mtu %u on %s", st->mtu, st->dev);
		break;
	case XN_STEP_PORT_ADD:
		xn_buf_printf(b, "add %s to bridge %s", st->dev, st->dev2);
		break;
	case XN_STEP_LINK_UP:
		xn_buf_printf(b, "bring %s up", st->dev);
		break;
	case XN_STEP_ADDR_ADD:
		xn_buf_printf(b, "add address %s to %s",
			      xn_addr_format(&st->addr, true, a), st->dev);
		break;
	case XN_STEP_ADDR_MOVE:
		xn_buf_printf(b, "copy address %s from %s to %s",
			      xn_addr_format(&st->addr, true, a), st->dev2, st->dev);
		break;
	case XN_STEP_ROUTE_MOVE:
		xn_buf_printf(b, "move ");
		describe_route(&st->route, b);
		xn_buf_printf(b, " from %s to %s", st->dev2, st->dev);
		break;
	case XN_STEP_SYSCTL_SET:
		xn_buf_printf(b, "set sysctl %s = %s (now %s)", st->path, st->value,
			      st->original);
		break;
	case XN_STEP_NFT_INSTALL:
		xn_buf_printf(b, "replace the nftables tables named %s (one atomic batch)",
			      XN_NFT_TABLE);
		break;
	}
}

void xn_plan_warnings(const struct xn_plan *plan, struct xn_buf *b)
{
	const char *w = plan->warnings.len ? plan->warnings.data : NULL;

	while (w && *w) {
		const char *end = strchr(w, '\n');
		size_t n = end ? (size_t)(end - w) : strlen(w);

		xn_buf_printf(b, "warning: %.*s\n", (int)n, w);
		w += n + (end ? 1 : 0);
	}
}

void xn_plan_print(const struct xn_plan *plan, FILE *f)
{
	struct xn_buf b = { 0 };
	const char *text;

	for (size_t i = 0; i < plan->n_steps; i++) {
		xn_buf_printf(&b, "  %zu. ", i + 1);
		if (plan->steps[i].op == XN_STEP_NFT_INSTALL &&
		    xn_nft_spec_empty(&plan->nft))
			xn_buf_printf(&b, "remove the nftables tables named %s", XN_NFT_TABLE);
		else
			xn_step_describe(&plan->steps[i], &b);
		xn_buf_printf(&b, "\n");
	}
	if (plan->n_steps == 0)
		xn_buf_printf(&b, "  nothing to change: the host already matches the profile\n");
	if (plan->nft_unknown)
		xn_buf_printf(&b, "  (the nftables table could not be read without privileges; shown as if it had to be replaced)\n");
	xn_plan_warnings(plan, &b);
	if (!xn_nft_spec_empty(&plan->nft)) {
		xn_buf_printf(&b, "nftables tables wanted:\n");
		xn_nft_describe(&plan->nft, &b);
	}
	text = xn_buf_str(&b);
	if (text)
		fputs(text, f);
	xn_buf_free(&b);
}

/* ---- executing ---- */

static int ifindex_of(const char *name)
{
	unsigned i = if_nametoindex(name);

	return i ? (int)i : -ENODEV;
}

static bool same_route(const struct xn_route *a, const struct xn_route *b)
{
	return a->family == b->family && xn_addr_equal(&a->dst, &b->dst) &&
	       a->priority == b->priority && a->table == b->table &&
	       a->has_gateway == b->has_gateway &&
	       (!a->has_gateway || xn_addr_equal(&a->gateway, &b->gateway));
}

/* The index of the ledger's entry for a moved route, -1 if none. */
static ssize_t ledger_find_route(const struct xn_ledger *l, const char *from, const char *to,
				 const struct xn_route *r)
{
	for (size_t i = 0; i < l->n_moved_routes; i++)
		if (strcmp(l->moved_routes[i].from, from) == 0 &&
		    strcmp(l->moved_routes[i].to, to) == 0 &&
		    same_route(&l->moved_routes[i].route, r))
			return (ssize_t)i;
	return -1;
}

static void ledger_drop_route(struct xn_ledger *l, const char *from,
			      const char *to, const struct xn_route *r)
{
	ssize_t i = ledger_find_route(l, from, to, r);

	if (i >= 0)
		xn_ledger_del_moved_route(l, (size_t)i);
}

/* The ledger on disk as it is in memory (plan->ledger_path). Before a
 * step makes something, its entry is saved (intent): a kill -9 between the
 * two leaves an entry whose undo finds nothing to undo, never a change
 * that no ledger records. After a step undoes something, its entry goes. */
static int ledger_write(const struct xn_plan *plan, const struct xn_ledger *l)
{
	return plan->ledger_path ? xn_ledger_save(plan->ledger_path, l) : 0;
}

/* r: what adding the entry returned. */
static int intend(const struct xn_plan *plan, const struct xn_ledger *l, int r)
{
	return r < 0 ? r : ledger_write(plan, l);
}

/* After an undo step: its entry is gone from the ledger, on disk too. */
static int undone(const struct xn_plan *plan, const struct xn_ledger *l, int r)
{
	return r < 0 ? r : ledger_write(plan, l);
}

static int step_apply(struct xn_nl *nl, struct xn_nft *nft, const struct xn_plan *plan,
		      const struct xn_step *st, struct xn_ledger *l,
		      struct xn_buf *err)
{
	struct xn_route rt;
	int idx, idx2, r = 0;
	bool had;

	switch (st->op) {
	case XN_STEP_PORT_RELEASE:
		if (st->record) {
			idx = ifindex_of(st->dev);
			r = idx < 0 ? 0 : xn_nl_link_set_master(nl, idx, 0);
			if (r == -ENODEV)
				r = 0;
		}
		if (r >= 0)
			xn_ledger_del_port(l, st->dev2, st->dev);
		return undone(plan, l, r);
	case XN_STEP_ADDR_RESTORE:
		idx = ifindex_of(st->dev);
		if (idx >= 0) {
			r = xn_nl_addr_add(nl, idx, &st->addr);
			if (r == -EEXIST)
				r = 0;
		}
		if (r >= 0)
			xn_ledger_del_moved_addr(l, st->dev, st->dev2, &st->addr);
		return undone(plan, l, r);
	case XN_STEP_ROUTE_RESTORE:
		idx = ifindex_of(st->dev);
		if (idx >= 0) {
			rt = st->route;
			rt.ifindex = idx;
			r = xn_nl_route_replace(nl, &rt);
		}
		if (r >= 0)
			ledger_drop_route(l, st->dev, st->dev2, &st->route);
		return undone(plan, l, r);
	case XN_STEP_ADDR_DEL:
		if (st->dev2[0] != '-') {
			idx = ifindex_of(st->dev);
			r = idx < 0 ? 0 : xn_nl_addr_del(nl, idx, &st->addr);
			if (r == -EADDRNOTAVAIL || r == -ENODEV || r == -ENOENT)
				r = 0;
		}
		if (r >= 0 && st->record)
			xn_ledger_del_addr(l, st->dev, &st->addr);
		return undone(plan, l, r);
	case XN_STEP_BRIDGE_DELETE:
		idx = ifindex_of(st->dev);
		r = idx < 0 ? 0 : xn_nl_link_delete(nl, idx);
		if (r == -ENODEV)
			r = 0;
		if (r >= 0) {
			xn_ledger_del_bridge(l, st->dev);
			/* Whatever was on it went with it. */
			for (size_t i = l->n_addrs; i-- > 0;)
				if (strcmp(l->addrs[i].dev, st->dev) == 0)
					xn_ledger_del_addr(l, st->dev, &l->addrs[i].addr);
			for (size_t i = l->n_ports; i-- > 0;)
				if (strcmp(l->ports[i].bridge, st->dev) == 0)
					xn_ledger_del_port(l, st->dev, l->ports[i].port);
		}
		return undone(plan, l, r);
	case XN_STEP_SYSCTL_RESTORE:
		r = xn_sysctl_write(st->path, st->value);
		if (r == -ENOENT) /* the interface is gone */
			r = 0;
		if (r >= 0)
			xn_ledger_del_sysctl(l, st->path);
		return undone(plan, l, r);
	case XN_STEP_BRIDGE_CREATE: {
		struct xn_link up;
		unsigned mtu = st->mtu;
		/* Without an mtu of its own, the uplink's: a vif's smaller
		 * one then stays on that vif. */
		if (!mtu && st->dev2[0] && xn_nl_link_get(nl, st->dev2, &up) >= 0)
			mtu = up.mtu;
		had = xn_ledger_has_bridge(l, st->dev);
		r = intend(plan, l, xn_ledger_add_bridge(l, st->dev));
		if (r >= 0)
			r = xn_nl_bridge_create(nl, st->dev, mtu, st->stp, st->forward_delay);
		if (r < 0 && !had) {
			xn_ledger_del_bridge(l, st->dev);
			ledger_write(plan, l);
		}
		return r;
	}
	case XN_STEP_BRIDGE_RESTORE:
		if (st->record) {
			idx = ifindex_of(st->dev);
			r = idx < 0 ? 0 : xn_nl_bridge_tune(nl, idx, st->stp, st->forward_delay);
			if (r == -ENODEV)
				r = 0;
		}
		if (r >= 0)
			xn_ledger_del_tuned(l, st->dev);
		return undone(plan, l, r);
	case XN_STEP_BRIDGE_TUNE:
		idx = ifindex_of(st->dev);
		if (idx < 0)
			return idx;
		if (st->record) {
			r = intend(plan, l, xn_ledger_add_tuned(l, st->dev, st->was_stp,
								 st->was_forward_delay));
			if (r < 0)
				return r;
		}
		return xn_nl_bridge_tune(nl, idx, st->stp, st->forward_delay);
	case XN_STEP_LINK_MTU:
		idx = ifindex_of(st->dev);
		return idx < 0 ? idx : xn_nl_link_set_mtu(nl, idx, st->mtu);
	case XN_STEP_PORT_ADD:
		idx = ifindex_of(st->dev);
		idx2 = ifindex_of(st->dev2);
		if (idx < 0 || idx2 < 0)
			return -ENODEV;
		had = xn_ledger_has_port(l, st->dev2, st->dev);
		r = intend(plan, l, xn_ledger_add_port(l, st->dev2, st->dev));
		if (r >= 0)
			r = xn_nl_link_set_master(nl, idx, idx2);
		if (r < 0 && !had) {
			xn_ledger_del_port(l, st->dev2, st->dev);
			ledger_write(plan, l);
		}
		return r;
	case XN_STEP_LINK_UP:
		idx = ifindex_of(st->dev);
		return idx < 0 ? idx : xn_nl_link_set_up(nl, idx, true);
	case XN_STEP_ADDR_ADD:
		idx = ifindex_of(st->dev);
		if (idx < 0)
			return idx;
		had = xn_ledger_has_addr(l, st->dev, &st->addr);
		r = intend(plan, l, xn_ledger_add_addr(l, st->dev, &st->addr));
		if (r >= 0)
			r = xn_nl_addr_add(nl, idx, &st->addr);
		if (r == -EEXIST)
			r = 0;
		if (r < 0 && !had) {
			xn_ledger_del_addr(l, st->dev, &st->addr);
			ledger_write(plan, l);
		}
		return r;
	case XN_STEP_ADDR_MOVE:
		idx = ifindex_of(st->dev);
		if (idx < 0)
			return idx;
		/* An entry already there (the address put back on a bridge
		 * made again) stays if the kernel refuses: it says where
		 * the address belongs. */
		had = false;
		for (size_t i = 0; i < l->n_moved_addrs; i++)
			had = had || (strcmp(l->moved_addrs[i].from, st->dev2) == 0 &&
				      strcmp(l->moved_addrs[i].to, st->dev) == 0 &&
				      xn_addr_equal(&l->moved_addrs[i].addr, &st->addr));
		r = intend(plan, l, xn_ledger_add_moved_addr(l, st->dev2, st->dev, &st->addr));
		if (r >= 0)
			r = xn_nl_addr_add(nl, idx, &st->addr);
		if (r == -EEXIST)
			r = 0;
		if (r < 0 && !had) {
			xn_ledger_del_moved_addr(l, st->dev2, st->dev, &st->addr);
			ledger_write(plan, l);
		}
		return r;
	case XN_STEP_ROUTE_MOVE:
		idx = ifindex_of(st->dev);
		if (idx < 0)
			return idx;
		rt = st->route;
		rt.ifindex = idx;
		/* Once in the ledger: a route put back is not a second entry. */
		had = ledger_find_route(l, st->dev2, st->dev, &st->route) >= 0;
		r = intend(plan, l, had ? 0 : xn_ledger_add_moved_route(l, st->dev2, st->dev, &st->route));
		if (r >= 0)
			r = xn_nl_route_replace(nl, &rt);
		if (r < 0 && !had) {
			ledger_drop_route(l, st->dev2, st->dev, &st->route);
			ledger_write(plan, l);
		}
		return r;
	case XN_STEP_SYSCTL_SET: {
		char cur[XN_SYSCTL_VALUE_MAX];
		/* Remember what was there before xennet, read now: an
		 * interface created by this plan has its own default. */
		if (!xn_ledger_sysctl(l, st->path)) {
			r = xn_sysctl_read(st->path, cur);
			if (r < 0)
				return r;
			r = intend(plan, l, xn_ledger_add_sysctl(l, st->path, cur));
			if (r < 0)
				return r;
		}
		return xn_sysctl_write(st->path, st->value);
	}
	case XN_STEP_NFT_INSTALL:
		return xn_nft_install(nft, &plan->nft, plan->dyn, err);
	}
	return -EINVAL;
}

int xn_plan_apply(struct xn_nl *nl, struct xn_nft *nft, const struct xn_plan *plan,
		  struct xn_ledger *l, size_t *done, struct xn_buf *err)
{
	*done = 0;
	for (size_t i = 0; i < plan->n_steps; i++, (*done)++) {
		const struct xn_step *st = &plan->steps[i];
		int r = step_apply(nl, nft, plan, st, l, err);

		if (r < 0) {
			if (err->len)
				xn_buf_printf(err, "; ");
			xn_buf_printf(err, "step %zu (", i + 1);
			xn_step_describe(st, err);
			xn_buf_printf(err, ") failed: %s", strerror(-r));
			return r;
		}
	}
	return 0;
}
