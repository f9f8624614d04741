/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rtnetlink: links through raw messages built with libnl (bridge attributes
 * that libnl-route does not model), addresses and routes through
 * libnl-route-3 objects. Errors are the kernel's errno, caught by an error
 * callback, because libnl's NLE_* codes lose information. */
#include "xennet/netlink.h"

#include <arpa/inet.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <stdlib.h>
#include <string.h>

#include "xennet/util.h"

struct xn_nl {
	struct nl_sock *sk;
	int last_errno; /* set by the error callback, positive */
	void *event_ctx; /* events sockets only */
};

static int nle_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case 0: return 0;
	case NLE_INTR: return EINTR;
	case NLE_BAD_SOCK: return EBADF;
	case NLE_AGAIN: return EAGAIN;
	case NLE_NOMEM: return ENOMEM;
	case NLE_EXIST: return EEXIST;
	case NLE_INVAL: return EINVAL;
	case NLE_RANGE: return ERANGE;
	case NLE_MSGSIZE: return EMSGSIZE;
	case NLE_OPNOTSUPP: return EOPNOTSUPP;
	case NLE_AF_NOSUPPORT: return EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND: return ENOENT;
	case NLE_NOATTR: return ENODATA;
	case NLE_PERM: return EPERM;
	case NLE_BUSY: return EBUSY;
	case NLE_PROTO_MISMATCH: return EPROTONOSUPPORT;
	case NLE_NOACCESS: return EACCES;
	case NLE_NODEV: return ENODEV;
	case NLE_NOADDR: return EADDRNOTAVAIL;
	case NLE_DUMP_INTR: return EINTR;
	default: return EIO;
	}
}

static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct xn_nl *nl = arg;

	nl->last_errno = e->error < 0 ? -e->error : e->error;
	return NL_STOP;
}

/* Map a libnl return value to -errno, preferring the kernel's own. */
static int nl_result(struct xn_nl *nl, int r)
{
	int e;

	if (r >= 0)
		return 0;
	e = nl->last_errno ? nl->last_errno : nle_to_errno(r);
	nl->last_errno = 0;
	return -e;
}

static int nl_open_common(struct xn_nl **ret, bool events)
{
	struct xn_nl *nl;
	int r;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		free(nl);
		return -ENOMEM;
	}
	if (events)
		nl_socket_disable_seq_check(nl->sk);
	else
		nl_socket_modify_err_cb(nl->sk, NL_CB_CUSTOM, on_error, nl);
	r = nl_connect(nl->sk, NETLINK_ROUTE);
	if (r < 0) {
		r = -nle_to_errno(r);
		goto fail;
	}
	if (events) {
		/* Links, and the sysctls netconf reports (forwarding,
		 * proxy_arp, proxy_ndp): someone resetting one is drift. */
		r = nl_socket_add_memberships(nl->sk, RTNLGRP_LINK, RTNLGRP_IPV4_NETCONF,
					      RTNLGRP_IPV6_NETCONF, 0);
		if (r < 0) {
			r = -nle_to_errno(r);
			goto fail;
		}
		nl_socket_set_nonblocking(nl->sk);
	}
	/* Large dumps (hundreds of vifs) and batches. */
	nl_socket_set_buffer_size(nl->sk, 1 << 20, 1 << 20);
	nl_socket_set_msg_buf_size(nl->sk, 32768);
	*ret = nl;
	return 0;
fail:
	nl_socket_free(nl->sk);
	free(nl);
	return r < 0 ? r : -EIO; /* a libnl code without an errno is still a failure */
}

int xn_nl_open(struct xn_nl **ret)
{
	return nl_open_common(ret, false);
}

void xn_nl_close(struct xn_nl *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->sk);
	free(nl->event_ctx);
	free(nl);
}

static int dump_addrs(struct xn_nl *nl, struct xn_snapshot *s);

/* ---- snapshot ---- */

struct dump_ctx {
	struct xn_snapshot *s;
	int err;
};

static int grow(void **arr, size_t n, size_t size)
{
	void *p;

	if (n & (n - 1) && n > 16)
		return 0; /* only reallocate at powers of two */
	if (n < 16 && n != 0)
		return 0;
	p = reallocarray(*arr, n ? n * 2 : 16, size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	return 0;
}

static void parse_bridge_info(struct nlattr *info, struct xn_link *l)
{
	struct nlattr *li[IFLA_INFO_MAX + 1], *br[IFLA_BR_MAX + 1];
	static struct nla_policy info_pol[IFLA_INFO_MAX + 1] = {
		[IFLA_INFO_KIND] = { .type = NLA_STRING },
		[IFLA_INFO_DATA] = { .type = NLA_NESTED },
	};
	static struct nla_policy br_pol[IFLA_BR_MAX + 1] = {
		[IFLA_BR_FORWARD_DELAY] = { .type = NLA_U32 },
		[IFLA_BR_STP_STATE] = { .type = NLA_U32 },
	};

	if (nla_parse_nested(li, IFLA_INFO_MAX, info, info_pol) < 0)
		return;
	if (li[IFLA_INFO_KIND]) {
		const char *kind = nla_data(li[IFLA_INFO_KIND]);
		size_t len = strnlen(kind, (size_t)nla_len(li[IFLA_INFO_KIND]));
		if (len >= sizeof(l->kind))
			len = sizeof(l->kind) - 1;
		memcpy(l->kind, kind, len);
		l->kind[len] = '\0';
	}
	if (strcmp(l->kind, "bridge") != 0 || !li[IFLA_INFO_DATA])
		return;
	if (nla_parse_nested(br, IFLA_BR_MAX, li[IFLA_INFO_DATA], br_pol) < 0)
		return;
	if (br[IFLA_BR_FORWARD_DELAY])
		l->forward_delay = nla_get_u32(br[IFLA_BR_FORWARD_DELAY]);
	if (br[IFLA_BR_STP_STATE])
		l->stp_state = (uint8_t)nla_get_u32(br[IFLA_BR_STP_STATE]);
}

static int on_link(struct nl_msg *msg, void *arg)
{
	static struct nla_policy pol[IFLA_MAX + 1] = {
		[IFLA_IFNAME] = { .type = NLA_STRING, .maxlen = IFNAMSIZ },
		[IFLA_MTU] = { .type = NLA_U32 },
		[IFLA_MASTER] = { .type = NLA_U32 },
		[IFLA_LINKINFO] = { .type = NLA_NESTED },
		[IFLA_IFALIAS] = { .type = NLA_STRING },
		[IFLA_GROUP] = { .type = NLA_U32 },
	};
	struct dump_ctx *ctx = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[IFLA_MAX + 1];
	struct ifinfomsg *ifi;
	struct xn_link *l;

	if (h->nlmsg_type != RTM_NEWLINK ||
	    !nlmsg_valid_hdr(h, sizeof(struct ifinfomsg)))
		return NL_SKIP;
	if (nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, pol) < 0 ||
	    !tb[IFLA_IFNAME])
		return NL_SKIP;
	ifi = nlmsg_data(h);
	if (grow((void **)&ctx->s->links, ctx->s->n_links, sizeof(*l)) < 0) {
		ctx->err = -ENOMEM;
		return NL_STOP;
	}
	l = &ctx->s->links[ctx->s->n_links++];
	*l = (struct xn_link){ .ifindex = ifi->ifi_index,
			       .up = ifi->ifi_flags & IFF_UP };
	nla_strlcpy(l->name, tb[IFLA_IFNAME], sizeof(l->name));
	if (tb[IFLA_MTU])
		l->mtu = nla_get_u32(tb[IFLA_MTU]);
	if (tb[IFLA_MASTER])
		l->master = (int)nla_get_u32(tb[IFLA_MASTER]);
	if (tb[IFLA_LINKINFO])
		parse_bridge_info(tb[IFLA_LINKINFO], l);
	if (tb[IFLA_IFALIAS])
		nla_strlcpy(l->alias, tb[IFLA_IFALIAS], sizeof(l->alias));
	if (tb[IFLA_GROUP])
		l->group = nla_get_u32(tb[IFLA_GROUP]);
	return NL_OK;
}

/* Read the answers to the request just sent, each valid message through
 * fn. The libnl result (< 0 on failure) or -ENOMEM. */
static int recv_answers(struct xn_nl *nl, nl_recvmsg_msg_cb_t fn, void *arg)
{
	struct nl_cb *sock_cb = nl_socket_get_cb(nl->sk); /* a reference */
	struct nl_cb *cb = nl_cb_clone(sock_cb);
	int r;

	nl_cb_put(sock_cb);
	if (!cb)
		return -NLE_NOMEM;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, fn, arg);
	r = nl_recvmsgs(nl->sk, cb);
	nl_cb_put(cb);
	return r;
}

static int dump_links(struct xn_nl *nl, struct xn_snapshot *s)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct dump_ctx ctx = { .s = s };
	struct nl_msg *msg;
	int r;

	msg = nlmsg_alloc_simple(RTM_GETLINK, NLM_F_DUMP);
	if (!msg)
		return -ENOMEM;
	/* Without the counters: a thousand vifs' statistics are most of a
	 * link dump, and nothing here reads them. */
	if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    nla_put_u32(msg, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	nl->last_errno = 0;
	r = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	if (r < 0)
		return nl_result(nl, r);
	r = recv_answers(nl, on_link, &ctx);
	if (ctx.err)
		return ctx.err;
	return nl_result(nl, r);
}

static int dump_addrs_of(struct xn_nl *nl, int ifindex, int family, struct xn_snapshot *s);

/* Every address: parsed straight from the messages (a libnl cache of the
 * 10,000 public /32 addresses of a NAT host costs tens of ms). */
static int dump_addrs(struct xn_nl *nl, struct xn_snapshot *s)
{
	return dump_addrs_of(nl, 0, AF_UNSPEC, s);
}

struct route_dump_ctx {
	struct xn_snapshot *s;
	int err;
};

static void attr_addr(const struct nlattr *a, int family, unsigned prefixlen, struct xn_addr *out,
		      bool *present)
{
	size_t len = family == AF_INET ? 4 : 16;

	*out = (struct xn_addr){ .family = family, .prefixlen = (unsigned char)prefixlen };
	if (a && (size_t)nla_len(a) == len) {
		memcpy(out->bytes, nla_data(a), len);
		if (present)
			*present = true;
	}
}

/* Unicast routes of the main table with one next hop, as the plan
 * compares them. */
static int on_route(struct nl_msg *msg, void *arg)
{
	static struct nla_policy pol[RTA_MAX + 1] = {
		[RTA_TABLE] = { .type = NLA_U32 },
		[RTA_OIF] = { .type = NLA_U32 },
		[RTA_PRIORITY] = { .type = NLA_U32 },
	};
	struct route_dump_ctx *ctx = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[RTA_MAX + 1];
	struct rtmsg *rtm;
	struct xn_route *x;
	uint32_t table;
	int fam;

	if (h->nlmsg_type != RTM_NEWROUTE || !nlmsg_valid_hdr(h, sizeof(*rtm)) ||
	    nlmsg_parse(h, sizeof(*rtm), tb, RTA_MAX, pol) < 0)
		return NL_SKIP;
	rtm = nlmsg_data(h);
	fam = rtm->rtm_family;
	table = tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if ((fam != AF_INET && fam != AF_INET6) || table != RT_TABLE_MAIN ||
	    rtm->rtm_type != RTN_UNICAST || tb[RTA_MULTIPATH] || !tb[RTA_OIF])
		return NL_SKIP;
	if (grow((void **)&ctx->s->routes, ctx->s->n_routes, sizeof(*x)) < 0) {
		ctx->err = -ENOMEM;
		return NL_STOP;
	}
	x = &ctx->s->routes[ctx->s->n_routes++];
	*x = (struct xn_route){
		.family = fam,
		.ifindex = (int)nla_get_u32(tb[RTA_OIF]),
		.table = table,
		.priority = tb[RTA_PRIORITY] ? nla_get_u32(tb[RTA_PRIORITY]) : 0,
		.protocol = rtm->rtm_protocol,
		.scope = rtm->rtm_scope,
		.type = rtm->rtm_type,
	};
	attr_addr(tb[RTA_DST], fam, tb[RTA_DST] ? rtm->rtm_dst_len : 0, &x->dst, NULL);
	attr_addr(tb[RTA_GATEWAY], fam, fam == AF_INET ? 32 : 128, &x->gateway, &x->has_gateway);
	attr_addr(tb[RTA_PREFSRC], fam, fam == AF_INET ? 32 : 128, &x->prefsrc, &x->has_prefsrc);
	if (!x->has_gateway)
		x->gateway = (struct xn_addr){ 0 };
	if (!x->has_prefsrc)
		x->prefsrc = (struct xn_addr){ 0 };
	return NL_OK;
}

/* The main table only, parsed from the messages: the local table of a NAT
 * host holds a route for each of its 10,000 public addresses. */
static int dump_routes(struct xn_nl *nl, struct xn_snapshot *s)
{
	struct rtmsg rtm = { .rtm_family = AF_UNSPEC, .rtm_table = RT_TABLE_MAIN };
	struct route_dump_ctx ctx = { .s = s };
	int fd = nl_socket_get_fd(nl->sk), on = 1, off = 0, r;

	setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &on, sizeof(on));
	nl->last_errno = 0;
	r = nl_send_simple(nl->sk, RTM_GETROUTE, NLM_F_DUMP, &rtm, sizeof(rtm));
	setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &off, sizeof(off));
	if (r < 0)
		return nl_result(nl, r);
	r = recv_answers(nl, on_route, &ctx);
	if (ctx.err)
		return ctx.err;
	return nl_result(nl, r);
}

int xn_snapshot_take(struct xn_nl *nl, struct xn_snapshot **ret)
{
	struct xn_snapshot *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* A dump interrupted by a concurrent change is retried, bounded. */
	for (int attempt = 0; attempt < 5; attempt++) {
		r = dump_links(nl, s);
		if (r >= 0)
			r = dump_addrs(nl, s);
		if (r >= 0)
			r = dump_routes(nl, s);
		if (r != -EINTR)
			break;
		free(s->links);
		free(s->addrs);
		free(s->routes);
		*s = (struct xn_snapshot){ 0 };
	}
	if (r < 0) {
		xn_snapshot_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

int xn_nl_links_take(struct xn_nl *nl, struct xn_snapshot **ret)
{
	struct xn_snapshot *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;

	for (int attempt = 0; s && attempt < 5; attempt++) {
		r = dump_links(nl, s);
		if (r != -EINTR)
			break;
		free(s->links);
		*s = (struct xn_snapshot){ 0 };
	}
	if (r < 0) {
		xn_snapshot_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void xn_snapshot_free(struct xn_snapshot *s)
{
	if (!s)
		return;
	free(s->links);
	free(s->addrs);
	free(s->routes);
	free(s);
}

const struct xn_link *xn_snapshot_link(const struct xn_snapshot *s,
				       const char *name)
{
	for (size_t i = 0; i < s->n_links; i++)
		if (strcmp(s->links[i].name, name) == 0)
			return &s->links[i];
	return NULL;
}

const struct xn_link *xn_snapshot_link_by_index(const struct xn_snapshot *s,
						int ifindex)
{
	for (size_t i = 0; i < s->n_links; i++)
		if (s->links[i].ifindex == ifindex)
			return &s->links[i];
	return NULL;
}

bool xn_snapshot_has_addr(const struct xn_snapshot *s, int ifindex,
			  const struct xn_addr *a)
{
	for (size_t i = 0; i < s->n_addrs; i++)
		if (s->addrs[i].ifindex == ifindex &&
		    xn_addr_equal(&s->addrs[i].addr, a))
			return true;
	return false;
}

/* ---- links ---- */

struct link_change {
	const char *name; /* IFLA_IFNAME to create or look up by */
	const char *newname; /* rename */
	const char *kind; /* IFLA_INFO_KIND */
	bool bridge_tune; /* STP and forward delay below */
	uint32_t stp, forward_delay; /* XN_BRIDGE_LEAVE: not sent */
	unsigned mtu;
	bool set_master;
	int master; /* 0 releases */
	const uint8_t *mac;
	const char *alias;
	bool set_group;
	uint32_t group;
};

static int link_request(struct xn_nl *nl, int type, int flags,
			const struct ifinfomsg *ifi, const struct link_change *c)
{
	struct nl_msg *msg;
	int r = -EMSGSIZE;

	msg = nlmsg_alloc_simple(type, flags | NLM_F_ACK);
	if (!msg)
		return -ENOMEM;
	if (nlmsg_append(msg, (void *)ifi, sizeof(*ifi), NLMSG_ALIGNTO) < 0)
		goto out;
	if (c->name && nla_put_string(msg, IFLA_IFNAME, c->name) < 0)
		goto out;
	if (c->newname && nla_put_string(msg, IFLA_IFNAME, c->newname) < 0)
		goto out;
	if (c->mtu && nla_put_u32(msg, IFLA_MTU, c->mtu) < 0)
		goto out;
	if (c->set_master && nla_put_u32(msg, IFLA_MASTER, (uint32_t)c->master) < 0)
		goto out;
	if (c->mac && nla_put(msg, IFLA_ADDRESS, 6, c->mac) < 0)
		goto out;
	if (c->alias && nla_put_string(msg, IFLA_IFALIAS, c->alias) < 0)
		goto out;
	if (c->set_group && nla_put_u32(msg, IFLA_GROUP, c->group) < 0)
		goto out;
	if (c->kind) {
		struct nlattr *li = nla_nest_start(msg, IFLA_LINKINFO);
		if (!li || nla_put_string(msg, IFLA_INFO_KIND, c->kind) < 0)
			goto out;
		if (c->bridge_tune) {
			struct nlattr *d = nla_nest_start(msg, IFLA_INFO_DATA);
			if (!d ||
			    (c->stp != XN_BRIDGE_LEAVE &&
			     nla_put_u32(msg, IFLA_BR_STP_STATE, c->stp) < 0) ||
			    (c->forward_delay != XN_BRIDGE_LEAVE &&
			     nla_put_u32(msg, IFLA_BR_FORWARD_DELAY, c->forward_delay) < 0))
				goto out;
			nla_nest_end(msg, d);
		}
		nla_nest_end(msg, li);
	}
	nl->last_errno = 0;
	r = nl_send_sync(nl->sk, msg); /* frees msg */
	return nl_result(nl, r);
out:
	nlmsg_free(msg);
	return r;
}

#define LINK_CHANGE(...) (&(const struct link_change){ __VA_ARGS__ })
#define IFI(idx) (&(const struct ifinfomsg){ .ifi_family = AF_UNSPEC, .ifi_index = (idx) })

/* The MTU is set after the bridge is made, not with it: only an MTU
 * changed on a bridge is kept as its own; one given at creation follows
 * its ports (one vif with a small mtu would lower it for every guest) and
 * falls to 1500 when the last one leaves. The kernel ignores a change to
 * the value the bridge has already: then it is set to another value
 * first, so that the bridge keeps it as its own. */
int xn_nl_bridge_create(struct xn_nl *nl, const char *name, unsigned mtu, uint32_t stp,
			uint32_t forward_delay)
{
	struct xn_link l;
	int r;

	r = link_request(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, IFI(0),
			 LINK_CHANGE(.name = name, .kind = "bridge", .bridge_tune = true,
				     .stp = stp, .forward_delay = forward_delay));
	if (r >= 0)
		r = xn_nl_link_get(nl, name, &l);
	if (r < 0)
		return r;
	if (!mtu)
		mtu = 1500;
	if (l.mtu == mtu)
		r = xn_nl_link_set_mtu(nl, l.ifindex, mtu > 68 ? mtu - 1 : mtu + 1);
	return r < 0 ? r : xn_nl_link_set_mtu(nl, l.ifindex, mtu);
}

int xn_nl_bridge_tune(struct xn_nl *nl, int ifindex, uint32_t stp, uint32_t forward_delay)
{
	/* The kernel sets the forward delay before the STP state, and takes
	 * only 2 to 30 s while STP is on: STP goes off first. */
	if (stp == 0 && forward_delay != XN_BRIDGE_LEAVE) {
		int r = xn_nl_bridge_tune(nl, ifindex, 0, XN_BRIDGE_LEAVE);
		if (r < 0)
			return r;
		stp = XN_BRIDGE_LEAVE;
	}
	return link_request(nl, RTM_NEWLINK, 0, IFI(ifindex),
			    LINK_CHANGE(.kind = "bridge", .bridge_tune = true, .stp = stp,
					.forward_delay = forward_delay));
}

int xn_nl_link_delete(struct xn_nl *nl, int ifindex)
{
	return link_request(nl, RTM_DELLINK, 0, IFI(ifindex), LINK_CHANGE());
}

int xn_nl_link_set_master(struct xn_nl *nl, int ifindex, int master)
{
	return link_request(nl, RTM_NEWLINK, 0, IFI(ifindex),
			    LINK_CHANGE(.set_master = true, .master = master < 0 ? 0 : master));
}

int xn_nl_link_make_port(struct xn_nl *nl, int ifindex, const uint8_t mac[6],
			 unsigned mtu, int master)
{
	return link_request(nl, RTM_NEWLINK, 0, IFI(ifindex),
			    LINK_CHANGE(.mac = mac, .mtu = mtu, .set_master = true,
					.master = master));
}

int xn_nl_link_set_group(struct xn_nl *nl, int ifindex, uint32_t group)
{
	return link_request(nl, RTM_NEWLINK, 0, IFI(ifindex),
			    LINK_CHANGE(.set_group = true, .group = group));
}

int xn_nl_link_set_up(struct xn_nl *nl, int ifindex, bool up)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC,
				 .ifi_index = ifindex,
				 .ifi_flags = up ? IFF_UP : 0,
				 .ifi_change = IFF_UP };

	return link_request(nl, RTM_NEWLINK, 0, &ifi, LINK_CHANGE());
}

int xn_nl_link_set_mtu(struct xn_nl *nl, int ifindex, unsigned mtu)
{
	if (mtu == 0)
		return -EINVAL;
	return link_request(nl, RTM_NEWLINK, 0, IFI(ifindex), LINK_CHANGE(.mtu = mtu));
}

int xn_nl_link_set_name(struct xn_nl *nl, int ifindex, const char *name)
{
	if (!xn_ifname_valid(name))
		return -EINVAL;
	return link_request(nl, RTM_NEWLINK, 0, IFI(ifindex), LINK_CHANGE(.newname = name));
}

int xn_nl_link_set_mac(struct xn_nl *nl, int ifindex, const uint8_t mac[6])
{
	return link_request(nl, RTM_NEWLINK, 0, IFI(ifindex), LINK_CHANGE(.mac = mac));
}

int xn_nl_link_set_alias(struct xn_nl *nl, int ifindex, const char *alias)
{
	return link_request(nl, RTM_NEWLINK, 0, IFI(ifindex), LINK_CHANGE(.alias = alias));
}

int xn_nl_link_get(struct xn_nl *nl, const char *name, struct xn_link *ret)
{
	struct xn_snapshot s = { 0 };
	struct dump_ctx ctx = { .s = &s };
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nl_msg *msg;
	int r;

	if (!xn_ifname_valid(name))
		return -EINVAL;
	msg = nlmsg_alloc_simple(RTM_GETLINK, 0);
	if (!msg)
		return -ENOMEM;
	if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    nla_put_string(msg, IFLA_IFNAME, name) < 0 ||
	    nla_put_u32(msg, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	nl->last_errno = 0;
	r = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	if (r < 0)
		return nl_result(nl, r);
	r = recv_answers(nl, on_link, &ctx);
	/* libnl asked for an ACK too: read it, or the next request on this
	 * socket would take it for its own answer. (An error reply comes
	 * alone, without an ACK.) */
	if (r >= 0)
		r = nl_wait_for_ack(nl->sk);
	if (ctx.err) {
		free(s.links);
		return ctx.err;
	}
	r = nl_result(nl, r);
	if (r >= 0 && s.n_links != 1)
		r = -ENODEV;
	if (r >= 0)
		*ret = s.links[0];
	free(s.links);
	return r;
}

struct addr_dump_ctx {
	struct xn_snapshot *s;
	int ifindex;
	int err;
};

static int on_addr(struct nl_msg *msg, void *arg)
{
	static struct nla_policy pol[IFA_MAX + 1] = {
		[IFA_FLAGS] = { .type = NLA_U32 },
		[IFA_CACHEINFO] = { .minlen = sizeof(struct ifa_cacheinfo) },
	};
	struct addr_dump_ctx *ctx = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[IFA_MAX + 1], *local;
	struct ifaddrmsg *ifa;
	struct xn_ifaddr *ia;
	size_t len;

	if (h->nlmsg_type != RTM_NEWADDR || !nlmsg_valid_hdr(h, sizeof(*ifa)) ||
	    nlmsg_parse(h, sizeof(*ifa), tb, IFA_MAX, pol) < 0)
		return NL_SKIP;
	ifa = nlmsg_data(h);
	/* A kernel without strict checking dumps every address. */
	if ((ctx->ifindex && (int)ifa->ifa_index != ctx->ifindex) ||
	    (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
		return NL_SKIP;
	local = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	len = ifa->ifa_family == AF_INET ? 4 : 16;
	if (!local || (size_t)nla_len(local) != len)
		return NL_SKIP;
	if (grow((void **)&ctx->s->addrs, ctx->s->n_addrs, sizeof(*ia)) < 0) {
		ctx->err = -ENOMEM;
		return NL_STOP;
	}
	ia = &ctx->s->addrs[ctx->s->n_addrs++];
	*ia = (struct xn_ifaddr){
		.ifindex = (int)ifa->ifa_index,
		.addr = { .family = ifa->ifa_family, .prefixlen = ifa->ifa_prefixlen },
		.scope = ifa->ifa_scope,
		.flags = tb[IFA_FLAGS] ? nla_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags,
		.valid_lft = tb[IFA_CACHEINFO]
				     ? ((const struct ifa_cacheinfo *)nla_data(tb[IFA_CACHEINFO]))->ifa_valid
				     : UINT32_MAX,
	};
	memcpy(ia->addr.bytes, nla_data(local), len);
	return NL_OK;
}

/* The addresses of one interface. With strict checking the kernel walks
 * that interface only: a host with a thousand vifs has thousands of
 * link-local addresses, and a vif being configured must not cost a dump of
 * all of them. */
static int dump_addrs_of(struct xn_nl *nl, int ifindex, int family, struct xn_snapshot *s)
{
	struct ifaddrmsg ifa = { .ifa_family = (uint8_t)family, .ifa_index = (uint32_t)ifindex };
	struct addr_dump_ctx ctx = { .s = s, .ifindex = ifindex };
	int fd = nl_socket_get_fd(nl->sk), on = 1, off = 0;
	int r;

	/* Only for this request: libnl's own cache requests would not pass
	 * the stricter header checks. (ifindex 0: every interface.) */
	if (ifindex)
		setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &on, sizeof(on));
	nl->last_errno = 0;
	r = nl_send_simple(nl->sk, RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof(ifa));
	if (ifindex)
		setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &off, sizeof(off));
	if (r < 0)
		return nl_result(nl, r);
	r = recv_answers(nl, on_addr, &ctx);
	if (ctx.err)
		return ctx.err;
	return nl_result(nl, r);
}

static int dump_addrs_retry(struct xn_nl *nl, int ifindex, int family, struct xn_snapshot *s);

int xn_nl_addrs_take(struct xn_nl *nl, int ifindex, int family, struct xn_snapshot *s)
{
	return dump_addrs_retry(nl, ifindex, family, s);
}

/* A dump interrupted by a concurrent change (-EINTR) is taken again,
 * bounded: libnl's caches did so, raw dumps must too. */
static int dump_addrs_retry(struct xn_nl *nl, int ifindex, int family, struct xn_snapshot *s)
{
	size_t n0 = s->n_addrs;
	int r = -EINTR;

	for (int attempt = 0; attempt < 5 && r == -EINTR; attempt++) {
		s->n_addrs = n0;
		r = dump_addrs_of(nl, ifindex, family, s);
	}
	return r;
}

int xn_nl_addr_flush(struct xn_nl *nl, int ifindex)
{
	struct xn_snapshot s = { 0 };
	int r;

	r = dump_addrs_retry(nl, ifindex, AF_UNSPEC, &s);
	for (size_t i = 0; r >= 0 && i < s.n_addrs; i++) {
		if (s.addrs[i].ifindex != ifindex)
			continue;
		r = xn_nl_addr_del(nl, ifindex, &s.addrs[i].addr);
		if (r == -EADDRNOTAVAIL)
			r = 0;
	}
	free(s.addrs);
	return r;
}

int xn_nl_primary_ipv4(struct xn_nl *nl, int ifindex, struct xn_addr *ret)
{
	struct xn_snapshot s = { 0 };
	int r;

	r = dump_addrs_retry(nl, ifindex, AF_INET, &s);
	if (r >= 0) {
		r = -EADDRNOTAVAIL;
		for (size_t i = 0; i < s.n_addrs; i++)
			if (s.addrs[i].ifindex == ifindex &&
			    s.addrs[i].addr.family == AF_INET &&
			    s.addrs[i].scope == RT_SCOPE_UNIVERSE &&
			    !(s.addrs[i].flags & IFA_F_SECONDARY)) {
				*ret = s.addrs[i].addr;
				r = 0;
				break;
			}
	}
	free(s.addrs);
	return r;
}

/* ---- addresses ---- */

static struct nl_addr *nl_addr_from(const struct xn_addr *a, bool prefix)
{
	struct nl_addr *na;

	na = nl_addr_build(a->family, a->bytes, a->family == AF_INET ? 4 : 16);
	if (na)
		nl_addr_set_prefixlen(na, prefix ? a->prefixlen
					       : (a->family == AF_INET ? 32 : 128));
	return na;
}

static int addr_request(struct xn_nl *nl, int ifindex, const struct xn_addr *a,
			bool add)
{
	struct rtnl_addr *ra;
	struct nl_addr *local;
	int r;

	ra = rtnl_addr_alloc();
	if (!ra)
		return -ENOMEM;
	local = nl_addr_from(a, true);
	if (!local) {
		rtnl_addr_put(ra);
		return -ENOMEM;
	}
	rtnl_addr_set_ifindex(ra, ifindex);
	rtnl_addr_set_family(ra, a->family);
	r = rtnl_addr_set_local(ra, local);
	nl_addr_put(local);
	if (r < 0) {
		rtnl_addr_put(ra);
		return -nle_to_errno(r);
	}
	rtnl_addr_set_prefixlen(ra, a->prefixlen);
	if (add && a->family == AF_INET6)
		rtnl_addr_set_flags(ra, IFA_F_NODAD);
	nl->last_errno = 0;
	r = add ? rtnl_addr_add(nl->sk, ra, NLM_F_CREATE | NLM_F_EXCL)
		: rtnl_addr_delete(nl->sk, ra, 0);
	rtnl_addr_put(ra);
	return nl_result(nl, r);
}

int xn_nl_addr_add(struct xn_nl *nl, int ifindex, const struct xn_addr *a)
{
	return addr_request(nl, ifindex, a, true);
}

int xn_nl_addr_del(struct xn_nl *nl, int ifindex, const struct xn_addr *a)
{
	return addr_request(nl, ifindex, a, false);
}

/* ---- routes ---- */

static int route_build(const struct xn_route *x, struct rtnl_route **ret)
{
	struct rtnl_route *rt;
	struct rtnl_nexthop *nh;
	struct nl_addr *dst, *gw = NULL, *src = NULL;

	rt = rtnl_route_alloc();
	nh = rtnl_route_nh_alloc();
	dst = nl_addr_from(&x->dst, true);
	if (x->has_gateway)
		gw = nl_addr_from(&x->gateway, false);
	if (x->has_prefsrc)
		src = nl_addr_from(&x->prefsrc, false);
	if (!rt || !nh || !dst || (x->has_gateway && !gw) ||
	    (x->has_prefsrc && !src)) {
		rtnl_route_put(rt);
		if (nh)
			rtnl_route_nh_free(nh);
		nl_addr_put(dst);
		nl_addr_put(gw);
		nl_addr_put(src);
		return -ENOMEM;
	}
	rtnl_route_set_family(rt, (uint8_t)x->family);
	rtnl_route_set_dst(rt, dst);
	rtnl_route_set_table(rt, x->table ? x->table : RT_TABLE_MAIN);
	rtnl_route_set_priority(rt, x->priority);
	rtnl_route_set_protocol(rt, x->protocol ? x->protocol : RTPROT_BOOT);
	rtnl_route_set_scope(rt, x->scope);
	rtnl_route_set_type(rt, x->type ? x->type : RTN_UNICAST);
	if (src)
		rtnl_route_set_pref_src(rt, src);
	rtnl_route_nh_set_ifindex(nh, x->ifindex);
	if (gw)
		rtnl_route_nh_set_gateway(nh, gw);
	rtnl_route_add_nexthop(rt, nh);
	nl_addr_put(dst);
	nl_addr_put(gw);
	nl_addr_put(src);
	*ret = rt;
	return 0;
}

static int route_add(struct xn_nl *nl, const struct xn_route *x, int flags)
{
	struct rtnl_route *rt;
	int r;

	r = route_build(x, &rt);
	if (r < 0)
		return r;
	nl->last_errno = 0;
	r = rtnl_route_add(nl->sk, rt, flags);
	rtnl_route_put(rt);
	return nl_result(nl, r);
}

int xn_nl_route_replace(struct xn_nl *nl, const struct xn_route *x)
{
	return route_add(nl, x, NLM_F_CREATE | NLM_F_REPLACE);
}

int xn_nl_route_del(struct xn_nl *nl, const struct xn_route *x)
{
	struct rtnl_route *rt;
	int r;

	r = route_build(x, &rt);
	if (r < 0)
		return r;
	nl->last_errno = 0;
	r = rtnl_route_delete(nl->sk, rt, 0);
	rtnl_route_put(rt);
	return nl_result(nl, r);
}

/* ---- public addresses: local routes ---- */

static void local_route_of(int ifindex, const struct xn_addr *a, struct xn_route *x)
{
	*x = (struct xn_route){ .ifindex = ifindex, .family = AF_INET, .dst = *a,
				.table = RT_TABLE_LOCAL, .protocol = XN_RTPROT_PUBLIC,
				.scope = RT_SCOPE_HOST, .type = RTN_LOCAL };
	x->dst.prefixlen = 32;
}

int xn_nl_local_route_add(struct xn_nl *nl, int ifindex, const struct xn_addr *a)
{
	struct xn_route x;

	local_route_of(ifindex, a, &x);
	/* Never over a local route of someone else's (an address of Dom0's,
	 * on any device): that is -EEXIST. */
	return route_add(nl, &x, NLM_F_CREATE | NLM_F_EXCL);
}

int xn_nl_local_route_del(struct xn_nl *nl, int ifindex, const struct xn_addr *a)
{
	struct xn_route x;
	int r;

	local_route_of(ifindex, a, &x);
	r = xn_nl_route_del(nl, &x);
	return r == -ESRCH || r == -ENOENT ? 0 : r;
}

struct local_dump_ctx {
	struct xn_local_route *v;
	size_t n;
	int err;
};

static int on_local_route(struct nl_msg *msg, void *arg)
{
	struct local_dump_ctx *ctx = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	static struct nla_policy pol[RTA_MAX + 1] = { [RTA_OIF] = { .type = NLA_U32 } };
	struct nlattr *tb[RTA_MAX + 1];
	struct rtmsg *rtm;
	struct xn_addr a;
	bool present = false;

	if (h->nlmsg_type != RTM_NEWROUTE || !nlmsg_valid_hdr(h, sizeof(*rtm)) ||
	    nlmsg_parse(h, sizeof(*rtm), tb, RTA_MAX, pol) < 0)
		return NL_SKIP;
	rtm = nlmsg_data(h);
	/* The kernel filtered already; checked again all the same. */
	if (rtm->rtm_family != AF_INET || rtm->rtm_type != RTN_LOCAL ||
	    rtm->rtm_protocol != XN_RTPROT_PUBLIC || rtm->rtm_dst_len != 32)
		return NL_SKIP;
	attr_addr(tb[RTA_DST], AF_INET, 32, &a, &present);
	if (!present)
		return NL_SKIP;
	if (grow((void **)&ctx->v, ctx->n, sizeof(*ctx->v)) < 0) {
		ctx->err = -ENOMEM;
		return NL_STOP;
	}
	ctx->v[ctx->n++] = (struct xn_local_route){
		.addr = a, .ifindex = tb[RTA_OIF] ? (int)nla_get_u32(tb[RTA_OIF]) : 0 };
	return NL_OK;
}

int xn_nl_local_routes_take(struct xn_nl *nl, int ifindex, struct xn_local_route **ret,
			    size_t *n)
{
	struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_table = RT_TABLE_LOCAL,
			     .rtm_protocol = XN_RTPROT_PUBLIC, .rtm_type = RTN_LOCAL };
	struct local_dump_ctx ctx = { 0 };
	int fd = nl_socket_get_fd(nl->sk), on = 1, off = 0, r;
	struct nl_msg *m = nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_DUMP);

	*ret = NULL;
	*n = 0;
	if (!m)
		return -ENOMEM;
	if (nlmsg_append(m, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0 ||
	    (ifindex && nla_put_u32(m, RTA_OIF, (uint32_t)ifindex) < 0)) {
		nlmsg_free(m);
		return -ENOMEM;
	}
	/* The kernel filters by table, protocol, type and device (ifindex 0:
	 * any). */
	setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &on, sizeof(on));
	nl->last_errno = 0;
	r = nl_send_auto(nl->sk, m);
	setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &off, sizeof(off));
	nlmsg_free(m);
	if (r >= 0)
		r = recv_answers(nl, on_local_route, &ctx);
	r = ctx.err ? ctx.err : nl_result(nl, r);
	if (r < 0) {
		free(ctx.v);
		return r;
	}
	*ret = ctx.v;
	*n = ctx.n;
	return 0;
}

/* ---- neighbour proxies ---- */

static int neigh_proxy(struct xn_nl *nl, int ifindex, const struct xn_addr *a, bool add)
{
	struct rtnl_neigh *n = rtnl_neigh_alloc();
	struct nl_addr *dst = nl_addr_from(a, false);
	int r;

	if (!n || !dst) {
		rtnl_neigh_put(n);
		nl_addr_put(dst);
		return -ENOMEM;
	}
	rtnl_neigh_set_family(n, a->family);
	rtnl_neigh_set_ifindex(n, ifindex);
	rtnl_neigh_set_flags(n, NTF_PROXY);
	r = rtnl_neigh_set_dst(n, dst);
	nl_addr_put(dst);
	if (r < 0) {
		rtnl_neigh_put(n);
		return -nle_to_errno(r);
	}
	nl->last_errno = 0;
	r = add ? rtnl_neigh_add(nl->sk, n, NLM_F_CREATE | NLM_F_REPLACE)
		: rtnl_neigh_delete(nl->sk, n, 0);
	rtnl_neigh_put(n);
	return nl_result(nl, r);
}

int xn_nl_neigh_proxy_add(struct xn_nl *nl, int ifindex, const struct xn_addr *a)
{
	return neigh_proxy(nl, ifindex, a, true);
}

int xn_nl_neigh_proxy_del(struct xn_nl *nl, int ifindex, const struct xn_addr *a)
{
	return neigh_proxy(nl, ifindex, a, false);
}

/* ---- events ---- */

struct event_ctx {
	xn_link_event_fn fn;
	void *userdata;
	void (*netconf_fn)(void *userdata);
};

void xn_nl_events_on_netconf(struct xn_nl *nl, void (*fn)(void *userdata))
{
	struct event_ctx *ctx = nl->event_ctx;

	if (ctx)
		ctx->netconf_fn = fn;
}

static int on_event(struct nl_msg *msg, void *arg)
{
	static struct nla_policy pol[IFLA_MAX + 1] = {
		[IFLA_IFNAME] = { .type = NLA_STRING, .maxlen = IFNAMSIZ },
	};
	struct event_ctx *ctx = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[IFLA_MAX + 1];
	char name[IFNAMSIZ] = "";
	struct ifinfomsg *ifi;

	if (h->nlmsg_type == RTM_NEWNETCONF || h->nlmsg_type == RTM_DELNETCONF) {
		if (ctx->netconf_fn)
			ctx->netconf_fn(ctx->userdata);
		return NL_OK;
	}
	if ((h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) ||
	    !nlmsg_valid_hdr(h, sizeof(*ifi)) ||
	    nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, pol) < 0)
		return NL_SKIP;
	ifi = nlmsg_data(h);
	/* A bridge's news about its ports (AF_BRIDGE): a port leaving its
	 * bridge (the bridge deleted, say) is RTM_DELLINK too, but the
	 * device is still there. */
	if (ifi->ifi_family == AF_BRIDGE)
		return NL_SKIP;
	if (tb[IFLA_IFNAME])
		nla_strlcpy(name, tb[IFLA_IFNAME], sizeof(name));
	ctx->fn(h->nlmsg_type == RTM_NEWLINK, ifi->ifi_index, ifi->ifi_flags, name, ctx->userdata);
	return NL_OK;
}

int xn_nl_events_open(struct xn_nl **ret, xn_link_event_fn fn, void *userdata)
{
	struct event_ctx *ctx;
	struct xn_nl *nl;
	int r;

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	*ctx = (struct event_ctx){ .fn = fn, .userdata = userdata };
	r = nl_open_common(&nl, true);
	if (r < 0) {
		free(ctx);
		return r;
	}
	nl->event_ctx = ctx;
	nl_socket_modify_cb(nl->sk, NL_CB_VALID, NL_CB_CUSTOM, on_event, ctx);
	*ret = nl;
	return 0;
}

int xn_nl_events_fd(struct xn_nl *nl)
{
	return nl_socket_get_fd(nl->sk);
}

int xn_nl_events_drain(struct xn_nl *nl)
{
	for (;;) {
		int r = nl_recvmsgs_default(nl->sk);

		if (r == -NLE_AGAIN)
			return 0;
		if (r == -NLE_NOMEM) /* ENOBUFS: the kernel dropped events */
			return -ENOBUFS;
		if (r < 0)
			return -nle_to_errno(r);
	}
}
