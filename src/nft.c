/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nftables through libnftnl + libmnl: one table, one batch per change,
 * every reply read and mapped back to the object that caused it. */
#include "xennet/nft.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter_ipv4.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* nft(8)'s datatype numbers, so that `nft list` prints our sets nicely. */
enum {
	NFT_TYPE_IPADDR = 7,
	NFT_TYPE_IFNAME = 41,
};
/* ... and its byte orders, kept in the set's user data so that nft(8)
 * prints the elements right (the kernel compares raw bytes either way). */
enum {
	NFT_BYTEORDER_HOST = 1,
	NFT_BYTEORDER_BIG = 2,
};

#define FINGERPRINT_PREFIX "xennet ruleset "

bool xn_nft_spec_empty(const struct xn_nft_spec *s)
{
	return !s->nat;
}

void xn_nft_describe(const struct xn_nft_spec *s, struct xn_buf *out)
{
	char a[XN_ADDR_STRLEN];

	if (xn_nft_spec_empty(s))
		return;
	xn_buf_printf(out, "table inet %s\n", XN_NFT_TABLE);
	if (s->nat) {
		xn_buf_printf(out, "  set nat_uplinks { type ifname; elements = { \"%s\" } }\n",
			      s->nat_uplink);
		xn_buf_printf(out, "  set nat_networks { type ipv4_addr; flags interval; elements = {");
		for (size_t i = 0; i < s->n_nat_networks; i++) {
			struct xn_addr n = xn_addr_network(&s->nat_networks[i]);
			xn_buf_printf(out, "%s %s", i ? "," : "",
				      xn_addr_format(&n, true, a));
		}
		xn_buf_printf(out, " } }\n");
		xn_buf_printf(out, "  chain postrouting { type nat hook postrouting priority srcnat }\n"
				   "    oifname @nat_uplinks ip saddr @nat_networks ip daddr != @nat_networks counter masquerade\n");
		xn_buf_printf(out, "  chain forward { type filter hook forward priority filter; policy accept }\n"
				   "    ct state established,related counter accept\n"
				   "    ct status dnat counter accept\n"
				   "    iifname @nat_uplinks ip daddr @nat_networks counter drop\n");
	}
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int fingerprint(const struct xn_nft_spec *s, char out[64])
{
	struct xn_buf b = { 0 };
	const char *text;

	xn_nft_describe(s, &b);
	text = xn_buf_str(&b);
	if (!text)
		return -ENOMEM;
	snprintf(out, 64, FINGERPRINT_PREFIX "%016llx",
		 (unsigned long long)fnv1a(text));
	xn_buf_free(&b);
	return 0;
}

/* ---- expression builders ---- */

static int add_expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (!e)
		return -ENOMEM;
	nftnl_rule_add_expr(r, e);
	return 0;
}

static struct nftnl_expr *expr_meta(uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	return e;
}

static struct nftnl_expr *expr_cmp(uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	return e;
}

static struct nftnl_expr *expr_payload_nh(uint32_t offset, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE,
				   NFT_PAYLOAD_NETWORK_HEADER);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	}
	return e;
}

static struct nftnl_expr *expr_lookup(const char *set, uint32_t set_id,
				      bool invert)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
		if (invert)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS,
					   NFT_LOOKUP_F_INV);
	}
	return e;
}

/* ct KEY & mask != 0 */
static int add_ct_bits(struct nftnl_rule *r, uint32_t key, uint32_t mask)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	uint32_t zero = 0;

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
	e = nftnl_expr_alloc("bitwise");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(uint32_t));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	nftnl_rule_add_expr(r, e);
	return add_expr(r, expr_cmp(NFT_CMP_NEQ, &zero, sizeof(zero)));
}

static int add_match_ipv4(struct nftnl_rule *r)
{
	uint8_t proto = NFPROTO_IPV4;

	int ret = add_expr(r, expr_meta(NFT_META_NFPROTO));
	return ret < 0 ? ret : add_expr(r, expr_cmp(NFT_CMP_EQ, &proto, 1));
}

static int add_verdict(struct nftnl_rule *r, int verdict)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	nftnl_rule_add_expr(r, e);
	return 0;
}

/* ---- the batch ---- */

struct batch {
	struct nftnl_batch *b;
	uint32_t seq_first, seq;
	const char *what[256]; /* description per sequence number */
	uint32_t next_set_id;
	int err;
};

static struct nlmsghdr *batch_hdr(struct batch *bt, uint16_t type,
				  uint16_t flags, const char *what)
{
	uint32_t idx = bt->seq - bt->seq_first;

	if (idx < XN_ARRAY_SIZE(bt->what))
		bt->what[idx] = what;
	/* libmnl 1.0.4 leaves attribute padding uninitialised; the tail of
	 * a batch page always has the overrun room (one socket buffer). */
	memset(nftnl_batch_buffer(bt->b), 0, MNL_SOCKET_BUFFER_SIZE);
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(bt->b), type,
				     NFPROTO_INET, flags | NLM_F_ACK,
				     bt->seq++);
}

static void batch_next(struct batch *bt)
{
	if (nftnl_batch_update(bt->b) < 0 && !bt->err)
		bt->err = -ENOMEM;
}

static struct nftnl_table *table_new(const char *comment)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		return NULL;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, XN_NFT_TABLE);
	if (comment) {
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(128);
		if (!u || !nftnl_udata_put_strz(u, NFTNL_UDATA_TABLE_COMMENT,
						comment)) {
			nftnl_udata_buf_free(u);
			nftnl_table_free(t);
			return NULL;
		}
		nftnl_table_set_data(t, NFTNL_TABLE_USERDATA,
				     nftnl_udata_buf_data(u),
				     nftnl_udata_buf_len(u));
		nftnl_udata_buf_free(u);
	}
	return t;
}

static void batch_table(struct batch *bt, uint16_t type, uint16_t flags,
			const char *comment, const char *what)
{
	struct nftnl_table *t = table_new(comment);

	if (!t) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_table_nlmsg_build_payload(batch_hdr(bt, type, flags, what), t);
	nftnl_table_free(t);
	batch_next(bt);
}

static void batch_chain(struct batch *bt, const char *name, const char *type,
			uint32_t hook, int32_t prio)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, XN_NFT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nftnl_chain_nlmsg_build_payload(
		batch_hdr(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE, name), c);
	nftnl_chain_free(c);
	batch_next(bt);
}

struct elem {
	const void *key;
	uint32_t len;
	bool interval_end;
};

/* A set and its elements; returns the set id for lookups in this batch. */
static uint32_t batch_set(struct batch *bt, const char *name, uint32_t type,
			  uint32_t keylen, bool interval,
			  const struct elem *elems, size_t n)
{
	struct nftnl_set *s = nftnl_set_alloc();
	uint32_t id = ++bt->next_set_id;

	if (!s) {
		bt->err = -ENOMEM;
		return id;
	}
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, XN_NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, keylen);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, interval ? NFT_SET_INTERVAL : 0);
	{
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(64);
		if (!u || !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER,
					       type == NFT_TYPE_IFNAME ? NFT_BYTEORDER_HOST
								       : NFT_BYTEORDER_BIG)) {
			nftnl_udata_buf_free(u);
			nftnl_set_free(s);
			bt->err = -ENOMEM;
			return id;
		}
		nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
				   nftnl_udata_buf_len(u));
		nftnl_udata_buf_free(u);
	}
	nftnl_set_nlmsg_build_payload(
		batch_hdr(bt, NFT_MSG_NEWSET, NLM_F_CREATE, name), s);
	batch_next(bt);

	if (n) {
		for (size_t i = 0; i < n; i++) {
			struct nftnl_set_elem *e = nftnl_set_elem_alloc();
			if (!e) {
				bt->err = -ENOMEM;
				break;
			}
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, elems[i].key,
					   elems[i].len);
			if (elems[i].interval_end)
				nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS,
						       NFT_SET_ELEM_INTERVAL_END);
			nftnl_set_elem_add(s, e);
		}
		nftnl_set_elems_nlmsg_build_payload(
			batch_hdr(bt, NFT_MSG_NEWSETELEM, NLM_F_CREATE, name),
			s);
		batch_next(bt);
	}
	nftnl_set_free(s);
	return id;
}

static struct nftnl_rule *rule_new(const char *chain, const char *comment)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_udata_buf *u;

	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, XN_NFT_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	u = nftnl_udata_buf_alloc(256);
	if (!u || !nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, comment)) {
		nftnl_udata_buf_free(u);
		nftnl_rule_free(r);
		return NULL;
	}
	nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u),
			    nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
	return r;
}

static void batch_rule(struct batch *bt, struct nftnl_rule *r, int built,
		       const char *what)
{
	if (built < 0 || !r) {
		bt->err = built < 0 ? built : -ENOMEM;
		nftnl_rule_free(r);
		return;
	}
	nftnl_rule_nlmsg_build_payload(
		batch_hdr(bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
			  what),
		r);
	nftnl_rule_free(r);
	batch_next(bt);
}

static void build_nat(struct batch *bt, const struct xn_nft_spec *s)
{
	char ifname[IFNAMSIZ] = { 0 };
	struct elem ifelem = { ifname, IFNAMSIZ, false };
	struct elem nets[1 + 2 * XN_ARRAY_SIZE(s->nat_networks)];
	uint32_t starts[XN_ARRAY_SIZE(s->nat_networks)];
	uint32_t ends[XN_ARRAY_SIZE(s->nat_networks)];
	static const uint32_t zero;
	uint32_t up_id, net_id;
	struct nftnl_rule *r;
	size_t n = 0;
	int ret;

	memcpy(ifname, s->nat_uplink, strnlen(s->nat_uplink, sizeof(ifname) - 1));
	up_id = batch_set(bt, "nat_uplinks", NFT_TYPE_IFNAME, IFNAMSIZ, false,
			  &ifelem, 1);

	/* Interval set elements as nft(8) writes them: a leading end at 0,
	 * then start and end (exclusive) of each network. */
	for (size_t i = 0; i < s->n_nat_networks; i++) {
		struct xn_addr net = xn_addr_network(&s->nat_networks[i]);
		uint64_t size = 1ULL << (32 - net.prefixlen);
		uint64_t end = (uint64_t)ntohl(net.v4.s_addr) + size;

		starts[i] = net.v4.s_addr;
		if (i == 0 && starts[i] != 0)
			nets[n++] = (struct elem){ &zero, 4, true };
		nets[n++] = (struct elem){ &starts[i], 4, false };
		if (end <= UINT32_MAX) {
			ends[i] = htonl((uint32_t)end);
			nets[n++] = (struct elem){ &ends[i], 4, true };
		}
	}
	net_id = batch_set(bt, "nat_networks", NFT_TYPE_IPADDR, 4, true, nets,
			   n);

	batch_chain(bt, "postrouting", "nat", NF_INET_POST_ROUTING,
		    NF_IP_PRI_NAT_SRC);
	batch_chain(bt, "forward", "filter", NF_INET_FORWARD,
		    NF_IP_PRI_FILTER);

	r = rule_new("postrouting", "xennet: masquerade guest networks");
	ret = r ? add_match_ipv4(r) : -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, expr_meta(NFT_META_OIFNAME));
	if (ret >= 0)
		ret = add_expr(r, expr_lookup("nat_uplinks", up_id, false));
	if (ret >= 0)
		ret = add_expr(r, expr_payload_nh(12, 4));
	if (ret >= 0)
		ret = add_expr(r, expr_lookup("nat_networks", net_id, false));
	if (ret >= 0)
		ret = add_expr(r, expr_payload_nh(16, 4));
	if (ret >= 0)
		ret = add_expr(r, expr_lookup("nat_networks", net_id, true));
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("counter"));
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("masq"));
	batch_rule(bt, r, ret, "masquerade rule");

	r = rule_new("forward", "xennet: replies to guest connections");
	ret = r ? add_ct_bits(r, NFT_CT_STATE,
			      NF_CT_STATE_BIT(IP_CT_ESTABLISHED) |
				      NF_CT_STATE_BIT(IP_CT_RELATED))
		: -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("counter"));
	if (ret >= 0)
		ret = add_verdict(r, NF_ACCEPT);
	batch_rule(bt, r, ret, "forward established rule");

	r = rule_new("forward", "xennet: mapped (DNAT) connections");
	ret = r ? add_ct_bits(r, NFT_CT_STATUS, IPS_DST_NAT) : -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("counter"));
	if (ret >= 0)
		ret = add_verdict(r, NF_ACCEPT);
	batch_rule(bt, r, ret, "forward dnat rule");

	r = rule_new("forward",
		     "xennet: no new connections from the uplink into the guest network");
	ret = r ? add_expr(r, expr_meta(NFT_META_IIFNAME)) : -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, expr_lookup("nat_uplinks", up_id, false));
	if (ret >= 0)
		ret = add_match_ipv4(r);
	if (ret >= 0)
		ret = add_expr(r, expr_payload_nh(16, 4));
	if (ret >= 0)
		ret = add_expr(r, expr_lookup("nat_networks", net_id, false));
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("counter"));
	if (ret >= 0)
		ret = add_verdict(r, NF_DROP);
	batch_rule(bt, r, ret, "forward drop rule");
}

/* ---- talking to the kernel ---- */

static int nft_socket(struct mnl_socket **ret)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	int bufsize = 4 << 20;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = -errno;
		mnl_socket_close(nl);
		return e;
	}
	/* Room for the replies to a large batch; best effort. */
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &bufsize,
		   sizeof(bufsize));
	*ret = nl;
	return 0;
}

/* Send the batch and read one reply per message. Returns the first error,
 * naming its object in err. */
static int batch_talk(struct batch *bt, struct xn_buf *err)
{
	struct mnl_socket *nl = NULL;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t expected = bt->seq - bt->seq_first, got = 0;
	uint32_t portid;
	int first_err = 0;
	int r;

	r = nft_socket(&nl);
	if (r < 0)
		return r;
	portid = mnl_socket_get_portid(nl);
	{
		int iovlen = nftnl_batch_iovec_len(bt->b);
		struct iovec iov[iovlen];
		struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
		struct msghdr msg = { .msg_name = &sa,
				      .msg_namelen = sizeof(sa),
				      .msg_iov = iov,
				      .msg_iovlen = (size_t)iovlen };

		nftnl_batch_iovec(bt->b, iov, (uint32_t)iovlen);
		if (sendmsg(mnl_socket_get_fd(nl), &msg, 0) < 0) {
			r = -errno;
			goto out;
		}
	}
	while (got < expected) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(nl),
				      .events = POLLIN };
		ssize_t len;

		r = poll(&pfd, 1, 5000);
		if (r == 0) {
			r = first_err ? first_err : -ETIMEDOUT;
			goto out;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		len = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (len < 0) {
			r = -errno;
			goto out;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     mnl_nlmsg_ok(h, (int)len); h = mnl_nlmsg_next(h, (int *)&len)) {
			if (h->nlmsg_pid != portid)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
				got++;
				if (h->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
					continue;
				if (e->error && !first_err) {
					uint32_t idx = h->nlmsg_seq - bt->seq_first;
					first_err = e->error;
					if (err)
						xn_buf_printf(err, "nftables refused %s: %s",
							      idx < XN_ARRAY_SIZE(bt->what) && bt->what[idx]
								      ? bt->what[idx] : "a message",
							      strerror(-e->error));
				}
			}
		}
	}
	r = first_err;
out:
	mnl_socket_close(nl);
	return r;
}

int xn_nft_install(const struct xn_nft_spec *s, struct xn_buf *err)
{
	struct batch bt = { 0 };
	char fp[64];
	int r;

	r = fingerprint(s, fp);
	if (r < 0)
		return r;
	bt.b = nftnl_batch_alloc(MNL_SOCKET_BUFFER_SIZE, MNL_SOCKET_BUFFER_SIZE);
	if (!bt.b)
		return -ENOMEM;
	bt.seq_first = bt.seq = (uint32_t)time(NULL);

	nftnl_batch_begin(nftnl_batch_buffer(bt.b), bt.seq++);
	bt.seq_first = bt.seq;
	batch_next(&bt);
	/* "add; delete" removes the table whether or not it existed, all in
	 * the same transaction as the new one: readers never see a gap. */
	batch_table(&bt, NFT_MSG_NEWTABLE, NLM_F_CREATE, NULL, "table (probe)");
	batch_table(&bt, NFT_MSG_DELTABLE, 0, NULL, "table (delete old)");
	if (!xn_nft_spec_empty(s)) {
		batch_table(&bt, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, fp,
			    "table inet " XN_NFT_TABLE);
		if (s->nat)
			build_nat(&bt, s);
	}
	nftnl_batch_end(nftnl_batch_buffer(bt.b), bt.seq);
	batch_next(&bt);

	r = bt.err;
	if (r >= 0)
		r = batch_talk(&bt, err);
	nftnl_batch_free(bt.b);
	return r;
}

/* ---- reading back ---- */

static int udata_comment_cb(const struct nftnl_udata *attr, void *data)
{
	const char **out = data;
	uint8_t len = nftnl_udata_len(attr);
	const char *v = nftnl_udata_get(attr);

	/* Both table and rule comments use type 0; check it is a string. */
	if (nftnl_udata_type(attr) == NFTNL_UDATA_TABLE_COMMENT && len > 0 &&
	    v[len - 1] == '\0')
		*out = v;
	return MNL_CB_OK;
}

static const char *udata_comment(const void *data, uint32_t len)
{
	const char *c = NULL;

	if (data && len)
		nftnl_udata_parse(data, len, udata_comment_cb, &c);
	return c;
}

struct dump {
	int (*cb)(const struct nlmsghdr *h, void *data);
	void *data;
};

static int nft_request(uint16_t type, uint16_t flags,
		       void (*fill)(struct nlmsghdr *h), struct dump *d)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = NULL;
	struct nlmsghdr *h;
	uint32_t seq = (uint32_t)time(NULL), portid;
	ssize_t n;
	int r;

	r = nft_socket(&nl);
	if (r < 0)
		return r;
	portid = mnl_socket_get_portid(nl);
	memset(buf, 0, sizeof(buf)); /* no uninitialised padding on the wire */
	h = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, flags | NLM_F_ACK,
				  seq);
	fill(h);
	if (mnl_socket_sendto(nl, h, h->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			r = -errno;
			goto out;
		}
		r = mnl_cb_run(buf, (size_t)n, seq, portid, d->cb, d->data);
		if (r < 0) {
			r = -errno;
			goto out;
		}
		if (r == MNL_CB_STOP)
			break;
	}
	r = 0;
out:
	mnl_socket_close(nl);
	return r;
}

static void fill_table(struct nlmsghdr *h)
{
	struct nftnl_table *t = table_new(NULL);

	if (t) {
		nftnl_table_nlmsg_build_payload(h, t);
		nftnl_table_free(t);
	}
}

static void fill_rules(struct nlmsghdr *h)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (r) {
		nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, XN_NFT_TABLE);
		nftnl_rule_nlmsg_build_payload(h, r);
		nftnl_rule_free(r);
	}
}

struct table_info {
	bool found;
	char comment[64];
};

static int on_table(const struct nlmsghdr *h, void *data)
{
	struct table_info *ti = data;
	struct nftnl_table *t = nftnl_table_alloc();
	const char *c;
	uint32_t len = 0;
	const void *ud;

	if (!t)
		return MNL_CB_ERROR;
	if (nftnl_table_nlmsg_parse(h, t) < 0) {
		nftnl_table_free(t);
		return MNL_CB_OK;
	}
	ti->found = true;
	ud = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);
	c = udata_comment(ud, len);
	if (c)
		snprintf(ti->comment, sizeof(ti->comment), "%s", c);
	nftnl_table_free(t);
	return MNL_CB_OK;
}

struct rules_acc {
	struct xn_nft_rule_info *v;
	size_t n;
	int err;
};

static int on_counter(struct nftnl_expr *e, void *data)
{
	struct xn_nft_rule_info *ri = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (name && strcmp(name, "counter") == 0) {
		ri->packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		ri->bytes += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
	}
	return MNL_CB_OK;
}

static int on_rule(const struct nlmsghdr *h, void *data)
{
	struct rules_acc *acc = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct xn_nft_rule_info *ri, *v;
	const char *chain, *c;
	const void *ud;
	uint32_t len = 0;

	if (!r)
		return MNL_CB_ERROR;
	if (nftnl_rule_nlmsg_parse(h, r) < 0)
		goto out;
	v = reallocarray(acc->v, acc->n + 1, sizeof(*v));
	if (!v) {
		acc->err = -ENOMEM;
		nftnl_rule_free(r);
		return MNL_CB_ERROR;
	}
	acc->v = v;
	ri = &v[acc->n++];
	*ri = (struct xn_nft_rule_info){ 0 };
	chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
	snprintf(ri->chain, sizeof(ri->chain), "%s", chain ? chain : "?");
	ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
	c = udata_comment(ud, len);
	snprintf(ri->comment, sizeof(ri->comment), "%s", c ? c : "");
	nftnl_expr_foreach(r, on_counter, ri);
out:
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

int xn_nft_list_rules(struct xn_nft_rule_info **ret, size_t *n)
{
	struct table_info ti = { 0 };
	struct dump d = { on_table, &ti };
	struct rules_acc acc = { 0 };
	int r;

	r = nft_request(NFT_MSG_GETTABLE, 0, fill_table, &d);
	if (r < 0)
		return r;
	d = (struct dump){ on_rule, &acc };
	r = nft_request(NFT_MSG_GETRULE, NLM_F_DUMP, fill_rules, &d);
	if (r < 0 || acc.err < 0) {
		free(acc.v);
		return r < 0 ? r : acc.err;
	}
	*ret = acc.v;
	*n = acc.n;
	return 0;
}

static size_t spec_rule_count(const struct xn_nft_spec *s)
{
	return s->nat ? 4 : 0;
}

int xn_nft_query(const struct xn_nft_spec *s, enum xn_nft_table_state *ret)
{
	struct table_info ti = { 0 };
	struct dump d = { on_table, &ti };
	struct xn_nft_rule_info *rules = NULL;
	size_t n = 0;
	char fp[64];
	int r;

	r = nft_request(NFT_MSG_GETTABLE, 0, fill_table, &d);
	if (r == -ENOENT) {
		*ret = XN_NFT_ABSENT;
		return 0;
	}
	if (r < 0)
		return r;
	r = fingerprint(s, fp);
	if (r < 0)
		return r;
	if (xn_nft_spec_empty(s) || strcmp(ti.comment, fp) != 0) {
		*ret = XN_NFT_STALE;
		return 0;
	}
	/* Same fingerprint: make sure nobody edited the rules by hand. */
	r = xn_nft_list_rules(&rules, &n);
	if (r < 0)
		return r;
	*ret = n == spec_rule_count(s) ? XN_NFT_CURRENT : XN_NFT_STALE;
	free(rules);
	return 0;
}
