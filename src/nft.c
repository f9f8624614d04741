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
	NFT_TYPE_IP6ADDR = 8,
	NFT_TYPE_ETHERADDR = 9,
	NFT_TYPE_IFNAME = 41,
};
/* ... and its byte orders, kept in the set's user data so that nft(8)
 * prints the elements right (the kernel compares raw bytes either way). */
enum {
	NFT_BYTEORDER_HOST = 1,
	NFT_BYTEORDER_BIG = 2,
};

#define FINGERPRINT_PREFIX "xennet ruleset "

static bool want_inet(const struct xn_nft_spec *s)
{
	return s->nat || s->antispoof_routed;
}

static bool want_bridge(const struct xn_nft_spec *s)
{
	return s->antispoof_bridge;
}

bool xn_nft_spec_empty(const struct xn_nft_spec *s)
{
	return !want_inet(s) && !want_bridge(s);
}

static const char *family_name(uint16_t family)
{
	return family == NFPROTO_BRIDGE ? "bridge" : "inet";
}

/* Rules are the lines that start with four spaces: xn_nft_query counts
 * them to notice rules added or removed by hand. */
static void describe_antispoof(struct xn_buf *out, bool bridge)
{
	const char *v4 = bridge ? "ether type ip" : "meta nfproto ipv4";
	const char *v6 = bridge ? "ether type ip6" : "meta nfproto ipv6";

	xn_buf_printf(out,
		      "  set as_ports { type ifname }\n"
		      "  set as_ipless { type ifname }\n"
		      "  set as_mac { type ifname . ether_addr }\n"
		      "  set as_ip4 { type ifname . ipv4_addr; flags interval }\n"
		      "  set as_ip6 { type ifname . ipv6_addr; flags interval }\n"
		      "  chain antispoof {\n"
		      "    iifname . ether saddr != @as_mac counter drop\n"
		      "    iifname @as_ipless accept\n");
	if (bridge)
		xn_buf_printf(out,
			      "    ether type arp iifname . arp saddr ether != @as_mac counter drop\n"
			      "    ether type arp arp saddr ip 0.0.0.0 accept\n"
			      "    ether type arp iifname . arp saddr ip @as_ip4 accept\n");
	xn_buf_printf(out,
		      "    %s ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept\n"
		      "    %s iifname . ip saddr @as_ip4 accept\n"
		      "    %s ip6 saddr :: icmpv6 type nd-neighbor-solicit accept\n"
		      "    %s ip6 saddr :: icmpv6 type mld2-listener-report accept\n"
		      "    %s ip6 saddr fe80::/10 icmpv6 type nd-router-solicit accept\n"
		      "    %s ip6 saddr fe80::/10 icmpv6 type nd-neighbor-solicit accept\n"
		      "    %s ip6 saddr fe80::/10 icmpv6 type mld2-listener-report accept\n"
		      "    %s ip6 saddr fe80::/10 icmpv6 type nd-neighbor-advert icmpv6 target fe80::/10 accept\n"
		      "    %s iifname . ip6 saddr @as_ip6 accept\n"
		      "    counter drop\n  }\n"
		      "  chain prerouting { type filter hook prerouting priority -300 }\n"
		      "    iifname @as_ports jump antispoof\n",
		      v4, v4, v6, v6, v6, v6, v6, v6, v6);
}

static void describe_table(const struct xn_nft_spec *s, uint16_t family,
			   struct xn_buf *out)
{
	char a[XN_ADDR_STRLEN];

	if (family == NFPROTO_BRIDGE) {
		if (!want_bridge(s))
			return;
		xn_buf_printf(out, "table bridge %s\n", XN_NFT_TABLE);
		describe_antispoof(out, true);
		return;
	}
	if (!want_inet(s))
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
		xn_buf_printf(out, "  map map_dnat { type ipv4_addr : ipv4_addr }\n"
				   "  map map_snat { type ipv4_addr : ipv4_addr }\n"
				   "  map fwd_dnat { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }\n");
		for (int out_chain = 0; out_chain < 2; out_chain++)
			xn_buf_printf(out, "  chain %s { type nat hook %s priority dstnat }\n"
					   "    dnat ip to ip daddr . meta l4proto . th dport map @fwd_dnat counter\n"
					   "    dnat ip to ip daddr map @map_dnat counter\n",
				      out_chain ? "dnat_output" : "dnat_prerouting",
				      out_chain ? "output" : "prerouting");
		xn_buf_printf(out, "  chain postrouting { type nat hook postrouting priority srcnat }\n"
				   "    ct status dnat ip saddr @nat_networks ip daddr @nat_networks counter masquerade\n"
				   "    oifname @nat_uplinks snat ip to ip saddr map @map_snat counter\n"
				   "    oifname @nat_uplinks ip saddr @nat_networks ip daddr != @nat_networks counter masquerade\n");
		xn_buf_printf(out, "  set public_addrs { type ipv4_addr }\n"
				   "  chain input { type filter hook input priority filter; policy accept }\n"
				   "    ct state != established,related ip daddr @public_addrs counter drop\n"
				   "    ct state != established,related ip daddr @map_dnat counter drop\n");
		xn_buf_printf(out, "  chain forward { type filter hook forward priority filter; policy accept }\n"
				   "    ct state established,related counter accept\n"
				   "    ct status dnat counter accept\n"
				   "    iifname @nat_uplinks ip daddr @nat_networks counter drop\n");
	}
	if (s->antispoof_routed)
		describe_antispoof(out, false);
}

void xn_nft_describe(const struct xn_nft_spec *s, struct xn_buf *out)
{
	describe_table(s, NFPROTO_INET, out);
	describe_table(s, NFPROTO_BRIDGE, out);
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

/* The table's comment: a fingerprint of what it was built from. */
static int fingerprint(const struct xn_nft_spec *s, uint16_t family,
		       char out[64], size_t *rules)
{
	struct xn_buf b = { 0 };
	const char *text;

	describe_table(s, family, &b);
	text = xn_buf_str(&b);
	if (!text)
		return -ENOMEM;
	snprintf(out, 64, FINGERPRINT_PREFIX "%016llx",
		 (unsigned long long)fnv1a(text));
	*rules = 0;
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		*rules += strncmp(l, "    ", 4) == 0;
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

static struct nftnl_expr *expr_meta_reg(uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = expr_meta(key);
	if (e)
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
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

static struct nftnl_expr *expr_payload(uint32_t base, uint32_t offset,
				       uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	}
	return e;
}

static struct nftnl_expr *expr_payload_nh(uint32_t offset, uint32_t len)
{
	return expr_payload(NFT_PAYLOAD_NETWORK_HEADER, offset, len, NFT_REG_1);
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

static int add_masked_cmp(struct nftnl_rule *r, const void *mask,
			  const void *value, uint32_t len);

/* ct KEY & mask == 0 */
static int add_ct_bits_clear(struct nftnl_rule *r, uint32_t key, uint32_t mask)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	static const uint32_t zero;

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
	return add_masked_cmp(r, &mask, &zero, sizeof(mask));
}

static int add_match_ipv4(struct nftnl_rule *r)
{
	uint8_t proto = NFPROTO_IPV4;

	int ret = add_expr(r, expr_meta(NFT_META_NFPROTO));
	return ret < 0 ? ret : add_expr(r, expr_cmp(NFT_CMP_EQ, &proto, 1));
}

static struct nftnl_expr *expr_lookup_map(const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = expr_lookup(set, set_id, false);
	if (e)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_1);
	return e;
}

/* nat to the address in reg 1 (and the port in reg 9, the second 32-bit
 * word, when with_port). */
static struct nftnl_expr *expr_nat(uint32_t type, bool with_port)
{
	struct nftnl_expr *e = nftnl_expr_alloc("nat");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, type);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
		if (with_port)
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG32_01);
	}
	return e;
}

static int add_jump(struct nftnl_rule *r, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)NFT_JUMP);
	nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	nftnl_rule_add_expr(r, e);
	return 0;
}

/* reg1 & mask == value, over len bytes */
static int add_masked_cmp(struct nftnl_rule *r, const void *mask,
			  const void *value, uint32_t len)
{
	static const uint8_t zero[16];
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	nftnl_rule_add_expr(r, e);
	return add_expr(r, expr_cmp(NFT_CMP_EQ, value, len));
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
	uint16_t family; /* of the objects being added */
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
				     bt->family, flags | NLM_F_ACK,
				     bt->seq++);
}

static void batch_next(struct batch *bt)
{
	if (nftnl_batch_update(bt->b) < 0 && !bt->err)
		bt->err = -ENOMEM;
}

static struct nftnl_table *table_new(uint16_t family, const char *comment)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		return NULL;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family);
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
	struct nftnl_table *t = table_new(bt->family, comment);

	if (!t) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_table_nlmsg_build_payload(batch_hdr(bt, type, flags, what), t);
	nftnl_table_free(t);
	batch_next(bt);
}

/* A base chain (type non-NULL) or a regular one (type NULL). */
static void batch_chain(struct batch *bt, const char *name, const char *type,
			uint32_t hook, int32_t prio)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, bt->family);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, XN_NFT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (type) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nftnl_chain_nlmsg_build_payload(
		batch_hdr(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE, name), c);
	nftnl_chain_free(c);
	batch_next(bt);
}

struct elem {
	const void *key;
	uint32_t len;
	const void *key_end; /* concatenated ranges: the last key, inclusive */
	bool interval_end;
	const void *data; /* maps */
	uint32_t dlen;
};

struct set_def {
	const char *name;
	uint32_t type; /* nft datatype, concatenations as nft encodes them */
	uint32_t keylen;
	uint32_t flags;
	uint8_t fields[2]; /* concatenation field lengths, in bytes */
	bool host_order; /* how nft(8) should print the key */
	uint32_t data_type, data_len; /* maps */
};

#define CONCAT_TYPE(a, b) (((uint32_t)(a) << 6) | (uint32_t)(b))

static const struct set_def SET_NAT_UPLINKS = {
	.name = "nat_uplinks", .type = NFT_TYPE_IFNAME, .keylen = IFNAMSIZ, .host_order = true };
static const struct set_def SET_NAT_NETWORKS = {
	.name = "nat_networks", .type = NFT_TYPE_IPADDR, .keylen = 4, .flags = NFT_SET_INTERVAL };
#define NFT_TYPE_INET_PROTOCOL 12
#define NFT_TYPE_INET_SERVICE 13
static const struct set_def MAP_DNAT = {
	.name = "map_dnat", .type = NFT_TYPE_IPADDR, .keylen = 4, .flags = NFT_SET_MAP,
	.data_type = NFT_TYPE_IPADDR, .data_len = 4 };
static const struct set_def MAP_SNAT = {
	.name = "map_snat", .type = NFT_TYPE_IPADDR, .keylen = 4, .flags = NFT_SET_MAP,
	.data_type = NFT_TYPE_IPADDR, .data_len = 4 };
static const struct set_def MAP_FWD = {
	.name = "fwd_dnat",
	.type = CONCAT_TYPE(CONCAT_TYPE(NFT_TYPE_IPADDR, NFT_TYPE_INET_PROTOCOL), NFT_TYPE_INET_SERVICE),
	.keylen = 12, .flags = NFT_SET_MAP,
	.data_type = CONCAT_TYPE(NFT_TYPE_IPADDR, NFT_TYPE_INET_SERVICE), .data_len = 8 };
static const struct set_def SET_PUBLICS = {
	.name = "public_addrs", .type = NFT_TYPE_IPADDR, .keylen = 4 };
static const struct set_def SET_AS_PORTS = {
	.name = "as_ports", .type = NFT_TYPE_IFNAME, .keylen = IFNAMSIZ, .host_order = true };
static const struct set_def SET_AS_IPLESS = {
	.name = "as_ipless", .type = NFT_TYPE_IFNAME, .keylen = IFNAMSIZ, .host_order = true };
/* A hash: no concatenation field lengths (those are for intervals). */
static const struct set_def SET_AS_MAC = {
	.name = "as_mac", .type = CONCAT_TYPE(NFT_TYPE_IFNAME, NFT_TYPE_ETHERADDR),
	.keylen = IFNAMSIZ + 8 };
static const struct set_def SET_AS_IP4 = {
	.name = "as_ip4", .type = CONCAT_TYPE(NFT_TYPE_IFNAME, NFT_TYPE_IPADDR),
	.keylen = IFNAMSIZ + 4, .flags = NFT_SET_INTERVAL | NFT_SET_CONCAT,
	.fields = { IFNAMSIZ, 4 } };
static const struct set_def SET_AS_IP6 = {
	.name = "as_ip6", .type = CONCAT_TYPE(NFT_TYPE_IFNAME, NFT_TYPE_IP6ADDR),
	.keylen = IFNAMSIZ + 16, .flags = NFT_SET_INTERVAL | NFT_SET_CONCAT,
	.fields = { IFNAMSIZ, 16 } };

static struct nftnl_set *set_new(struct batch *bt, const struct set_def *d)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s) {
		bt->err = -ENOMEM;
		return NULL;
	}
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, bt->family);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, XN_NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, d->name);
	return s;
}

/* Messages adding (or deleting) elements of a set: at most 64 elements a
 * message, so that each fits a batch page (10,000 mappings are ~160
 * messages in the same transaction). */
#define ELEMS_PER_MSG 64

static void batch_elems(struct batch *bt, const struct set_def *d, bool add,
			const struct elem *elems, size_t n)
{
	for (size_t first = 0; first < n; first += ELEMS_PER_MSG) {
		size_t last = first + ELEMS_PER_MSG < n ? first + ELEMS_PER_MSG : n;
		struct nftnl_set *s = set_new(bt, d);

		if (!s)
			return;
		for (size_t i = first; i < last; i++) {
			struct nftnl_set_elem *e = nftnl_set_elem_alloc();
			if (!e) {
				bt->err = -ENOMEM;
				break;
			}
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, elems[i].key, elems[i].len);
			if (elems[i].key_end)
				nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY_END, elems[i].key_end,
						   elems[i].len);
			if (elems[i].data && add)
				nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, elems[i].data,
						   elems[i].dlen);
			if (elems[i].interval_end)
				nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS,
						       NFT_SET_ELEM_INTERVAL_END);
			nftnl_set_elem_add(s, e);
		}
		nftnl_set_elems_nlmsg_build_payload(
			batch_hdr(bt, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
				  add ? NLM_F_CREATE : 0, d->name),
			s);
		batch_next(bt);
		nftnl_set_free(s);
	}
}

/* How many entries the NAT maps have room for, n being in force: twice as
 * many, at least 1,024. The kernel makes a set of known size a fixed hash,
 * which takes elements twice as fast as the resizable one it picks
 * otherwise (10,000 in 8 ms instead of 19), and refuses elements past the
 * size (ENFILE): then the table is replaced by one with larger maps
 * (xn_nft_query says it is too small). */
static uint32_t nat_capacity(size_t n)
{
	uint32_t c = 1024;

	while (c < 2 * (uint64_t)n + 2 && c < (1u << 30))
		c <<= 1;
	return c;
}

/* Entries the NAT maps must hold: public_addrs holds at most one address
 * per forward. */
struct nat_room {
	size_t maps, fwds, publics;
};

static struct nat_room nat_room_of(const struct xn_nft_dynamic *dyn)
{
	struct nat_room r = { 0 };

	if (dyn && dyn->maps) {
		r.maps = dyn->maps->n_maps;
		r.fwds = dyn->maps->n_fwds;
	}
	r.publics = r.fwds; /* the addresses only forwarded */
	if (dyn && dyn->n_publics > r.publics)
		r.publics = dyn->n_publics;
	return r;
}

/* A set and its elements; returns the set id for lookups in this batch.
 * size: the most elements it will hold, 0 if unknown. */
static uint32_t batch_set(struct batch *bt, const struct set_def *d,
			  const struct elem *elems, size_t n, uint32_t size)
{
	struct nftnl_set *s = set_new(bt, d);
	uint32_t id = ++bt->next_set_id;
	struct nftnl_udata_buf *u;

	if (!s)
		return id;
	nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, d->type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, d->keylen);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, d->flags);
	if (d->flags & NFT_SET_MAP) {
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, d->data_type);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, d->data_len);
	}
	if (d->fields[0])
		nftnl_set_set_data(s, NFTNL_SET_DESC_CONCAT, d->fields, 2);
	if (size)
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, size);
	u = nftnl_udata_buf_alloc(64);
	if (!u || !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER,
				       d->host_order ? NFT_BYTEORDER_HOST
						     : NFT_BYTEORDER_BIG)) {
		nftnl_udata_buf_free(u);
		nftnl_set_free(s);
		bt->err = -ENOMEM;
		return id;
	}
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
			   nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
	nftnl_set_nlmsg_build_payload(
		batch_hdr(bt, NFT_MSG_NEWSET, NLM_F_CREATE, d->name), s);
	batch_next(bt);
	nftnl_set_free(s);
	batch_elems(bt, d, true, elems, n);
	return id;
}

static struct nftnl_rule *rule_new(uint16_t family, const char *chain,
				   const char *comment)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_udata_buf *u;

	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, family);
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

static void build_nat(struct batch *bt, const struct xn_nft_spec *s, const struct nat_room *room)
{
	char ifname[IFNAMSIZ] = { 0 };
	struct elem ifelem = { .key = ifname, .len = IFNAMSIZ };
	struct elem nets[1 + 2 * XN_ARRAY_SIZE(s->nat_networks)];
	uint32_t starts[XN_ARRAY_SIZE(s->nat_networks)];
	uint32_t ends[XN_ARRAY_SIZE(s->nat_networks)];
	static const uint32_t zero;
	uint32_t up_id, net_id;
	struct nftnl_rule *r;
	size_t n = 0;
	int ret;

	memcpy(ifname, s->nat_uplink, strnlen(s->nat_uplink, sizeof(ifname) - 1));
	up_id = batch_set(bt, &SET_NAT_UPLINKS, &ifelem, 1, 0);

	/* Interval set elements as nft(8) writes them: a leading end at 0,
	 * then start and end (exclusive) of each network. */
	for (size_t i = 0; i < s->n_nat_networks; i++) {
		struct xn_addr net = xn_addr_network(&s->nat_networks[i]);
		uint64_t size = 1ULL << (32 - net.prefixlen);
		uint64_t end = (uint64_t)ntohl(net.v4.s_addr) + size;

		starts[i] = net.v4.s_addr;
		if (i == 0 && starts[i] != 0)
			nets[n++] = (struct elem){ .key = &zero, .len = 4, .interval_end = true };
		nets[n++] = (struct elem){ .key = &starts[i], .len = 4 };
		if (end <= UINT32_MAX) {
			ends[i] = htonl((uint32_t)end);
			nets[n++] = (struct elem){ .key = &ends[i], .len = 4, .interval_end = true };
		}
	}
	net_id = batch_set(bt, &SET_NAT_NETWORKS, nets, n, 0);

	uint32_t dnat_id = batch_set(bt, &MAP_DNAT, NULL, 0, nat_capacity(room->maps));
	uint32_t snat_id = batch_set(bt, &MAP_SNAT, NULL, 0, nat_capacity(room->maps));
	uint32_t fwd_id = batch_set(bt, &MAP_FWD, NULL, 0, nat_capacity(room->fwds));
	uint32_t pub_id = batch_set(bt, &SET_PUBLICS, NULL, 0, nat_capacity(room->publics));

	batch_chain(bt, "dnat_prerouting", "nat", NF_INET_PRE_ROUTING, NF_IP_PRI_NAT_DST);
	batch_chain(bt, "dnat_output", "nat", NF_INET_LOCAL_OUT, NF_IP_PRI_NAT_DST);
	batch_chain(bt, "postrouting", "nat", NF_INET_POST_ROUTING,
		    NF_IP_PRI_NAT_SRC);
	batch_chain(bt, "input", "filter", NF_INET_LOCAL_IN, NF_IP_PRI_FILTER);
	batch_chain(bt, "forward", "filter", NF_INET_FORWARD,
		    NF_IP_PRI_FILTER);

	/* Public addresses xennet made reachable are for the guests: what
	 * is not translated never reaches Dom0's own services. They are the
	 * keys of the DNAT map (looked up without its data) and, for those
	 * only forwarded, the set public_addrs: 10,000 mappings are not
	 * 10,000 more elements. */
	for (int k = 0; k < 2; k++) {
		r = rule_new(NFPROTO_INET, "input", k ? "xennet: Dom0 itself does not answer on 1:1 public addresses"
						       : "xennet: Dom0 itself does not answer on public addresses");
		ret = r ? add_match_ipv4(r) : -ENOMEM;
		/* New (or invalid) only: replies to Dom0's own connections to
		 * a public address (hairpin from Dom0) come back this way. */
		if (ret >= 0)
			ret = add_ct_bits_clear(r, NFT_CT_STATE,
						NF_CT_STATE_BIT(IP_CT_ESTABLISHED) |
							NF_CT_STATE_BIT(IP_CT_RELATED));
		if (ret >= 0)
			ret = add_expr(r, expr_payload_nh(16, 4));
		if (ret >= 0)
			ret = add_expr(r, k ? expr_lookup(MAP_DNAT.name, dnat_id, false)
					    : expr_lookup(SET_PUBLICS.name, pub_id, false));
		if (ret >= 0)
			ret = add_expr(r, nftnl_expr_alloc("counter"));
		if (ret >= 0)
			ret = add_verdict(r, NF_DROP);
		batch_rule(bt, r, ret, "public address input rule");
	}

	/* Public addresses: port forwards first, then 1:1 mappings; in
	 * prerouting for the LAN and other guests, in output for Dom0. */
	for (int out_chain = 0; out_chain < 2; out_chain++) {
		const char *chain = out_chain ? "dnat_output" : "dnat_prerouting";

		r = rule_new(NFPROTO_INET, chain, "xennet: port forwards to guests");
		ret = r ? add_match_ipv4(r) : -ENOMEM;
		if (ret >= 0)
			ret = add_expr(r, expr_payload_nh(16, 4));
		if (ret >= 0)
			ret = add_expr(r, expr_meta_reg(NFT_META_L4PROTO, NFT_REG32_01));
		if (ret >= 0)
			ret = add_expr(r, expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_02));
		if (ret >= 0)
			ret = add_expr(r, expr_lookup_map(MAP_FWD.name, fwd_id));
		if (ret >= 0)
			ret = add_expr(r, nftnl_expr_alloc("counter"));
		if (ret >= 0)
			ret = add_expr(r, expr_nat(NFT_NAT_DNAT, true));
		batch_rule(bt, r, ret, "port forward rule");

		r = rule_new(NFPROTO_INET, chain, "xennet: public addresses mapped 1:1 to guests");
		ret = r ? add_match_ipv4(r) : -ENOMEM;
		if (ret >= 0)
			ret = add_expr(r, expr_payload_nh(16, 4));
		if (ret >= 0)
			ret = add_expr(r, expr_lookup_map(MAP_DNAT.name, dnat_id));
		if (ret >= 0)
			ret = add_expr(r, nftnl_expr_alloc("counter"));
		if (ret >= 0)
			ret = add_expr(r, expr_nat(NFT_NAT_DNAT, false));
		batch_rule(bt, r, ret, "1:1 DNAT rule");
	}

	/* Hairpin: a guest reaching another through its public address is
	 * answered through Dom0, not directly on the bridge. */
	r = rule_new(NFPROTO_INET, "postrouting", "xennet: hairpin to public addresses");
	ret = r ? add_match_ipv4(r) : -ENOMEM;
	if (ret >= 0)
		ret = add_ct_bits(r, NFT_CT_STATUS, IPS_DST_NAT);
	if (ret >= 0)
		ret = add_expr(r, expr_payload_nh(12, 4));
	if (ret >= 0)
		ret = add_expr(r, expr_lookup("nat_networks", net_id, false));
	if (ret >= 0)
		ret = add_expr(r, expr_payload_nh(16, 4));
	if (ret >= 0)
		ret = add_expr(r, expr_lookup("nat_networks", net_id, false));
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("counter"));
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("masq"));
	batch_rule(bt, r, ret, "hairpin rule");

	r = rule_new(NFPROTO_INET, "postrouting", "xennet: mapped guests leave with their public address");
	ret = r ? add_match_ipv4(r) : -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, expr_meta(NFT_META_OIFNAME));
	if (ret >= 0)
		ret = add_expr(r, expr_lookup("nat_uplinks", up_id, false));
	if (ret >= 0)
		ret = add_expr(r, expr_payload_nh(12, 4));
	if (ret >= 0)
		ret = add_expr(r, expr_lookup_map(MAP_SNAT.name, snat_id));
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("counter"));
	if (ret >= 0)
		ret = add_expr(r, expr_nat(NFT_NAT_SNAT, false));
	batch_rule(bt, r, ret, "1:1 SNAT rule");

	r = rule_new(NFPROTO_INET, "postrouting", "xennet: masquerade guest networks");
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

	r = rule_new(NFPROTO_INET, "forward", "xennet: replies to guest connections");
	ret = r ? add_ct_bits(r, NFT_CT_STATE,
			      NF_CT_STATE_BIT(IP_CT_ESTABLISHED) |
				      NF_CT_STATE_BIT(IP_CT_RELATED))
		: -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("counter"));
	if (ret >= 0)
		ret = add_verdict(r, NF_ACCEPT);
	batch_rule(bt, r, ret, "forward established rule");

	r = rule_new(NFPROTO_INET, "forward", "xennet: mapped (DNAT) connections");
	ret = r ? add_ct_bits(r, NFT_CT_STATUS, IPS_DST_NAT) : -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("counter"));
	if (ret >= 0)
		ret = add_verdict(r, NF_ACCEPT);
	batch_rule(bt, r, ret, "forward dnat rule");

	r = rule_new(NFPROTO_INET, "forward",
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

/* ---- anti-spoofing ---- */

/* Keys of one vif's elements, kept alive until the batch is built. */
struct vif_keys {
	uint8_t name[IFNAMSIZ];
	uint8_t mac[IFNAMSIZ + 8];
	uint8_t lo[16][IFNAMSIZ + 16], hi[16][IFNAMSIZ + 16];
	struct elem e4[16], e6[16];
	size_t n4, n6;
};

static void vif_keys(const struct xn_nft_vif *v, struct vif_keys *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->name, v->ifname, strnlen(v->ifname, IFNAMSIZ - 1));
	memcpy(k->mac, k->name, IFNAMSIZ);
	memcpy(k->mac + IFNAMSIZ, v->mac, 6);
	for (size_t i = 0; i < v->n_ips && i < 16; i++) {
		struct xn_addr net = xn_addr_network(&v->ips[i]);
		size_t len = net.family == AF_INET ? 4 : 16;
		uint8_t *lo = k->lo[i], *hi = k->hi[i];

		memcpy(lo, k->name, IFNAMSIZ);
		memcpy(hi, k->name, IFNAMSIZ);
		memcpy(lo + IFNAMSIZ, net.bytes, len);
		memcpy(hi + IFNAMSIZ, net.bytes, len);
		/* The last address of the network: host bits set. */
		for (size_t bit = net.prefixlen; bit < len * 8; bit++)
			hi[IFNAMSIZ + bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
		if (net.family == AF_INET)
			k->e4[k->n4++] = (struct elem){ .key = lo, .len = IFNAMSIZ + 4, .key_end = hi };
		else
			k->e6[k->n6++] = (struct elem){ .key = lo, .len = IFNAMSIZ + 16, .key_end = hi };
	}
}

static void batch_vif(struct batch *bt, const struct xn_nft_vif *v, bool add)
{
	struct vif_keys *k = malloc(sizeof(*k));
	struct elem port, mac;

	if (!k) {
		bt->err = -ENOMEM;
		return;
	}
	vif_keys(v, k);
	port = (struct elem){ .key = k->name, .len = IFNAMSIZ };
	mac = (struct elem){ .key = k->mac, .len = IFNAMSIZ + 8 };
	batch_elems(bt, &SET_AS_MAC, add, &mac, 1);
	if (v->n_ips == 0)
		batch_elems(bt, &SET_AS_IPLESS, add, &port, 1);
	batch_elems(bt, &SET_AS_IP4, add, k->e4, k->n4);
	batch_elems(bt, &SET_AS_IP6, add, k->e6, k->n6);
	/* Last: the port is checked only once its allow-lists exist (all in
	 * one transaction anyway). */
	batch_elems(bt, &SET_AS_PORTS, add, &port, 1);
	free(k);
}

static void build_antispoof(struct batch *bt, bool bridge)
{
	static const uint8_t dhcp_ports[4] = { 0, 68, 0, 67 };
	static const uint8_t zero16[16];
	static const uint8_t ll_mask[16] = { 0xff, 0xc0 };
	static const uint8_t ll_net[16] = { 0xfe, 0x80 };
	static const uint8_t arp_type[2] = { 0x08, 0x06 }, ip_type[2] = { 0x08, 0x00 },
			     ip6_type[2] = { 0x86, 0xdd };
	uint32_t ports_id, ipless_id, mac_id, ip4_id, ip6_id;
	struct nftnl_rule *r;
	uint8_t udp = 17, icmp6 = 58;
	int ret;

	ports_id = batch_set(bt, &SET_AS_PORTS, NULL, 0, 0);
	ipless_id = batch_set(bt, &SET_AS_IPLESS, NULL, 0, 0);
	mac_id = batch_set(bt, &SET_AS_MAC, NULL, 0, 0);
	ip4_id = batch_set(bt, &SET_AS_IP4, NULL, 0, 0);
	ip6_id = batch_set(bt, &SET_AS_IP6, NULL, 0, 0);
	batch_chain(bt, "antispoof", NULL, 0, 0);
	batch_chain(bt, "prerouting", "filter", NF_INET_PRE_ROUTING, -300);

	/* Match the protocol: by ethertype on a bridge, by nfproto in inet. */
#define PROTO(rule, etype, nfproto)                                                   \
	(bridge ? (add_expr(rule, expr_payload(NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1)) < 0 \
			   ? -ENOMEM                                                       \
			   : add_expr(rule, expr_cmp(NFT_CMP_EQ, etype, 2)))               \
		: (add_expr(rule, expr_meta(NFT_META_NFPROTO)) < 0                          \
			   ? -ENOMEM                                                       \
			   : add_expr(rule, expr_cmp(NFT_CMP_EQ, &(uint8_t){ nfproto }, 1))))
#define IIFNAME_AND(rule, base, off, len)                                             \
	(add_expr(rule, expr_meta(NFT_META_IIFNAME)) < 0                                  \
		 ? -ENOMEM                                                                \
		 : add_expr(rule, expr_payload(base, off, len, NFT_REG_2)))
	uint16_t fam = bridge ? NFPROTO_BRIDGE : NFPROTO_INET;

	r = rule_new(fam, "antispoof", "xennet: frames from a MAC that is not the vif's");
	ret = r ? IIFNAME_AND(r, NFT_PAYLOAD_LL_HEADER, 6, 6) : -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, expr_lookup(SET_AS_MAC.name, mac_id, true));
	if (ret >= 0)
		ret = add_expr(r, nftnl_expr_alloc("counter"));
	if (ret >= 0)
		ret = add_verdict(r, NF_DROP);
	batch_rule(bt, r, ret, "anti-spoofing MAC rule");

	r = rule_new(fam, "antispoof", "xennet: vifs without addresses are checked by MAC only");
	ret = r ? add_expr(r, expr_meta(NFT_META_IIFNAME)) : -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, expr_lookup(SET_AS_IPLESS.name, ipless_id, false));
	if (ret >= 0)
		ret = add_verdict(r, NF_ACCEPT);
	batch_rule(bt, r, ret, "anti-spoofing MAC-only rule");

	if (bridge) {
		r = rule_new(fam, "antispoof", "xennet: ARP with a sender MAC that is not the vif's");
		ret = r ? PROTO(r, arp_type, 0) : -ENOMEM;
		if (ret >= 0)
			ret = IIFNAME_AND(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 6);
		if (ret >= 0)
			ret = add_expr(r, expr_lookup(SET_AS_MAC.name, mac_id, true));
		if (ret >= 0)
			ret = add_expr(r, nftnl_expr_alloc("counter"));
		if (ret >= 0)
			ret = add_verdict(r, NF_DROP);
		batch_rule(bt, r, ret, "anti-spoofing ARP sender rule");

		r = rule_new(fam, "antispoof", "xennet: ARP probes");
		ret = r ? PROTO(r, arp_type, 0) : -ENOMEM;
		if (ret >= 0)
			ret = add_expr(r, expr_payload_nh(14, 4));
		if (ret >= 0)
			ret = add_expr(r, expr_cmp(NFT_CMP_EQ, zero16, 4));
		if (ret >= 0)
			ret = add_verdict(r, NF_ACCEPT);
		batch_rule(bt, r, ret, "anti-spoofing ARP probe rule");

		r = rule_new(fam, "antispoof", "xennet: ARP for the vif's own addresses");
		ret = r ? PROTO(r, arp_type, 0) : -ENOMEM;
		if (ret >= 0)
			ret = IIFNAME_AND(r, NFT_PAYLOAD_NETWORK_HEADER, 14, 4);
		if (ret >= 0)
			ret = add_expr(r, expr_lookup(SET_AS_IP4.name, ip4_id, false));
		if (ret >= 0)
			ret = add_verdict(r, NF_ACCEPT);
		batch_rule(bt, r, ret, "anti-spoofing ARP rule");
	}

	r = rule_new(fam, "antispoof", "xennet: DHCP client");
	ret = r ? PROTO(r, ip_type, NFPROTO_IPV4) : -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, expr_payload_nh(12, 4));
	if (ret >= 0)
		ret = add_expr(r, expr_cmp(NFT_CMP_EQ, zero16, 4));
	if (ret >= 0)
		ret = add_expr(r, expr_meta(NFT_META_L4PROTO));
	if (ret >= 0)
		ret = add_expr(r, expr_cmp(NFT_CMP_EQ, &udp, 1));
	if (ret >= 0)
		ret = add_expr(r, expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 4, NFT_REG_1));
	if (ret >= 0)
		ret = add_expr(r, expr_cmp(NFT_CMP_EQ, dhcp_ports, 4));
	if (ret >= 0)
		ret = add_verdict(r, NF_ACCEPT);
	batch_rule(bt, r, ret, "anti-spoofing DHCP rule");

	r = rule_new(fam, "antispoof", "xennet: IPv4 from the vif's own addresses");
	ret = r ? PROTO(r, ip_type, NFPROTO_IPV4) : -ENOMEM;
	if (ret >= 0)
		ret = IIFNAME_AND(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
	if (ret >= 0)
		ret = add_expr(r, expr_lookup(SET_AS_IP4.name, ip4_id, false));
	if (ret >= 0)
		ret = add_verdict(r, NF_ACCEPT);
	batch_rule(bt, r, ret, "anti-spoofing IPv4 rule");

	/* IPv6 neighbour discovery without an own global address: only what
	 * cannot claim somebody else's address. DAD and MLD from ::; router
	 * and neighbour solicitations and MLD from link-local; neighbour
	 * advertisements from link-local only for a link-local target (a
	 * global target is advertised from that address, checked below). */
	static const struct nd_rule {
		bool link_local; /* source fe80::/10, else :: */
		uint8_t type;
		bool ll_target;
		const char *comment;
	} nd[] = {
		{ false, 135, false, "xennet: IPv6 duplicate address detection" },
		{ false, 143, false, "xennet: IPv6 MLD report before an address" },
		{ true, 133, false, "xennet: IPv6 router solicitation" },
		{ true, 135, false, "xennet: IPv6 neighbour solicitation from link-local" },
		{ true, 143, false, "xennet: IPv6 MLD report" },
		{ true, 136, true, "xennet: IPv6 neighbour advertisement of a link-local address" },
	};
	for (size_t k = 0; k < XN_ARRAY_SIZE(nd); k++) {
		r = rule_new(fam, "antispoof", nd[k].comment);
		ret = r ? PROTO(r, ip6_type, NFPROTO_IPV6) : -ENOMEM;
		if (ret >= 0)
			ret = add_expr(r, expr_meta(NFT_META_L4PROTO));
		if (ret >= 0)
			ret = add_expr(r, expr_cmp(NFT_CMP_EQ, &icmp6, 1));
		if (ret >= 0)
			ret = add_expr(r, expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1));
		if (ret >= 0)
			ret = add_expr(r, expr_cmp(NFT_CMP_EQ, &nd[k].type, 1));
		if (ret >= 0)
			ret = add_expr(r, expr_payload_nh(8, 16));
		if (ret >= 0)
			ret = nd[k].link_local ? add_masked_cmp(r, ll_mask, ll_net, 16)
					       : add_expr(r, expr_cmp(NFT_CMP_EQ, zero16, 16));
		if (ret >= 0 && nd[k].ll_target)
			ret = add_expr(r, expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, NFT_REG_1));
		if (ret >= 0 && nd[k].ll_target)
			ret = add_masked_cmp(r, ll_mask, ll_net, 16);
		if (ret >= 0)
			ret = add_verdict(r, NF_ACCEPT);
		batch_rule(bt, r, ret, "anti-spoofing IPv6 ND rule");
	}

	r = rule_new(fam, "antispoof", "xennet: IPv6 from the vif's own addresses");
	ret = r ? PROTO(r, ip6_type, NFPROTO_IPV6) : -ENOMEM;
	if (ret >= 0)
		ret = IIFNAME_AND(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 16);
	if (ret >= 0)
		ret = add_expr(r, expr_lookup(SET_AS_IP6.name, ip6_id, false));
	if (ret >= 0)
		ret = add_verdict(r, NF_ACCEPT);
	batch_rule(bt, r, ret, "anti-spoofing IPv6 rule");

	r = rule_new(fam, "antispoof", "xennet: spoofed packets");
	ret = r ? add_expr(r, nftnl_expr_alloc("counter")) : -ENOMEM;
	if (ret >= 0)
		ret = add_verdict(r, NF_DROP);
	batch_rule(bt, r, ret, "anti-spoofing drop rule");

	r = rule_new(fam, "prerouting", "xennet: vifs under anti-spoofing");
	ret = r ? add_expr(r, expr_meta(NFT_META_IIFNAME)) : -ENOMEM;
	if (ret >= 0)
		ret = add_expr(r, expr_lookup(SET_AS_PORTS.name, ports_id, false));
	if (ret >= 0)
		ret = add_jump(r, "antispoof");
	batch_rule(bt, r, ret, "anti-spoofing hook rule");
#undef PROTO
#undef IIFNAME_AND
}

/* ---- talking to the kernel ---- */

/* One socket for the life of the process. Closing a nfnetlink socket
 * makes the kernel wait for the destruction of what earlier transactions
 * deleted (an RCU grace period, ~10 ms): a socket per request would charge
 * that to every mapping removed. */
static struct mnl_socket *the_socket;
static uint32_t the_seq;

void xn_nft_close(void)
{
	if (the_socket)
		mnl_socket_close(the_socket);
	the_socket = NULL;
}

static uint32_t next_seq(void)
{
	if (the_seq == 0)
		the_seq = (uint32_t)time(NULL);
	return the_seq++;
}

/* A socket that has been used for a request that failed half way may
 * still hold replies: start over with a new one. */
static void nft_socket_reset(void)
{
	xn_nft_close();
}

static int nft_socket(struct mnl_socket **ret)
{
	struct mnl_socket *nl;
	int bufsize = 16 << 20;

	if (the_socket) {
		*ret = the_socket;
		return 0;
	}
	nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = -errno;
		mnl_socket_close(nl);
		return e;
	}
	/* Room for large batches (10,000 mappings are ~1 MiB) and their
	 * replies: as root, past the system's default limits. */
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUFFORCE, &bufsize,
		       sizeof(bufsize)) < 0)
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &bufsize,
		       sizeof(bufsize)) < 0)
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
	the_socket = nl;
	*ret = nl;
	return 0;
}

/* Send the batch and read one reply per message. Returns the first error,
 * naming its object in err. */
#define QUIET_BATCH_MSGS 8
static void monitor_quiet(bool quiet, uint32_t *gen);
static void monitor_loud(bool quiet, uint32_t gen, bool committed);

static int batch_talk(struct batch *bt, struct xn_buf *err)
{
	struct mnl_socket *nl = NULL;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t expected = bt->seq - bt->seq_first, got = 0;
	uint32_t portid, gen = 0;
	int first_err = 0;
	/* A large batch (hundreds of elements, or a table) is not echoed to
	 * our own monitor: the kernel would build an event per element. */
	bool quiet = expected >= QUIET_BATCH_MSGS;
	int r;

	/* First: its request may replace the shared socket on an error. */
	monitor_quiet(quiet, &gen);
	r = nft_socket(&nl);
	if (r < 0) {
		monitor_loud(quiet, gen, false);
		return r;
	}
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
		int left = (int)len;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
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
	if (got < expected)
		nft_socket_reset(); /* replies may still come on it */
	monitor_loud(quiet, gen, r >= 0 && got == expected);
	return r;
}

static int batch_open(struct batch *bt)
{
	*bt = (struct batch){ 0 };
	bt->b = nftnl_batch_alloc(MNL_SOCKET_BUFFER_SIZE, MNL_SOCKET_BUFFER_SIZE);
	if (!bt->b)
		return -ENOMEM;
	bt->seq = next_seq();
	bt->seq += 1024; /* room for this batch's messages */
	the_seq = bt->seq + 65536;
	memset(nftnl_batch_buffer(bt->b), 0, MNL_SOCKET_BUFFER_SIZE);
	nftnl_batch_begin(nftnl_batch_buffer(bt->b), bt->seq++);
	bt->seq_first = bt->seq;
	batch_next(bt);
	return 0;
}

static int batch_close_and_send(struct batch *bt, struct xn_buf *err)
{
	int r;

	memset(nftnl_batch_buffer(bt->b), 0, MNL_SOCKET_BUFFER_SIZE);
	nftnl_batch_end(nftnl_batch_buffer(bt->b), bt->seq);
	batch_next(bt);
	r = bt->err;
	if (r >= 0 && bt->seq != bt->seq_first)
		r = batch_talk(bt, err);
	nftnl_batch_free(bt->b);
	return r;
}

struct request {
	uint16_t type, flags, family;
	const char *set; /* GETSETELEM */
	int (*cb)(const struct nlmsghdr *h, void *data);
	void *data;
};

static int nft_request(const struct request *q);

/* ---- public IP mappings ---- */

struct map_entry {
	uint8_t key[12], data[8];
};

static void map_keys(const struct xn_mapping *m, struct map_entry *dnat, struct map_entry *snat)
{
	memset(dnat, 0, sizeof(*dnat));
	memset(snat, 0, sizeof(*snat));
	memcpy(dnat->key, &m->public_addr.v4, 4);
	memcpy(dnat->data, &m->guest.v4, 4);
	memcpy(snat->key, &m->guest.v4, 4);
	memcpy(snat->data, &m->public_addr.v4, 4);
}

static void fwd_key(const struct xn_forward *f, struct map_entry *e)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->key, &f->public_addr.v4, 4);
	e->key[4] = f->proto;
	e->key[8] = (uint8_t)(f->public_port >> 8);
	e->key[9] = (uint8_t)f->public_port;
	memcpy(e->data, &f->guest.v4, 4);
	e->data[4] = (uint8_t)(f->guest_port >> 8);
	e->data[5] = (uint8_t)f->guest_port;
}

/* Add (or delete) the elements of some mappings and forwards. */
static void batch_mappings(struct batch *bt, const struct xn_mapping *maps, size_t n_maps,
			   const struct xn_forward *fwds, size_t n_fwds, bool add)
{
	struct map_entry *ent = calloc(2 * n_maps + n_fwds + 1, sizeof(*ent));
	struct elem *el = calloc(2 * n_maps + n_fwds + 1, sizeof(*el));

	if (!ent || !el) {
		bt->err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_maps; i++) {
		map_keys(&maps[i], &ent[i], &ent[n_maps + i]);
		el[i] = (struct elem){ .key = ent[i].key, .len = 4, .data = ent[i].data, .dlen = 4 };
		el[n_maps + i] = (struct elem){ .key = ent[n_maps + i].key, .len = 4,
						.data = ent[n_maps + i].data, .dlen = 4 };
	}
	for (size_t i = 0; i < n_fwds; i++) {
		struct map_entry *e = &ent[2 * n_maps + i];
		fwd_key(&fwds[i], e);
		el[2 * n_maps + i] = (struct elem){ .key = e->key, .len = 12, .data = e->data, .dlen = 8 };
	}
	batch_elems(bt, &MAP_DNAT, add, el, n_maps);
	batch_elems(bt, &MAP_SNAT, add, el + n_maps, n_maps);
	batch_elems(bt, &MAP_FWD, add, el + 2 * n_maps, n_fwds);
out:
	free(ent);
	free(el);
}

static void batch_publics(struct batch *bt, const struct xn_addr *a, size_t n, bool add)
{
	struct elem *el = calloc(n + 1, sizeof(*el));

	if (!el) {
		bt->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < n; i++)
		el[i] = (struct elem){ .key = &a[i].v4, .len = 4 };
	batch_elems(bt, &SET_PUBLICS, add, el, n);
	free(el);
}

/* Calls fn for each element of a set-element message (key, key end and
 * data, each with its length; absent ones NULL). */
typedef int (*elem_fn)(const void *key, uint32_t klen, const void *key_end, uint32_t elen,
		       const void *data, uint32_t dlen, void *userdata);

static int for_each_elem(const struct nlmsghdr *h, elem_fn fn, void *userdata)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	int r = MNL_CB_OK;

	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(h, s) < 0) {
		nftnl_set_free(s);
		return MNL_CB_OK;
	}
	it = nftnl_set_elems_iter_create(s);
	for (e = it ? nftnl_set_elems_iter_next(it) : NULL; e && r == MNL_CB_OK;
	     e = nftnl_set_elems_iter_next(it)) {
		uint32_t klen = 0, elen = 0, dlen = 0;
		const void *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
		const void *key_end = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &elen);
		const void *data = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &dlen);
		if (key)
			r = fn(key, klen, key_end, elen, data, dlen, userdata);
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return r;
}

struct elem_dump {
	struct map_entry *v;
	size_t n, cap;
	int err;
};

static int add_map_elem(const void *key, uint32_t klen, const void *key_end, uint32_t elen,
			const void *val, uint32_t dlen, void *data)
{
	struct elem_dump *d = data;
	struct map_entry *v;

	(void)key_end, (void)elen;
	if (klen > 12 || dlen > 8)
		return MNL_CB_OK;
	if (xn_grow((void **)&d->v, d->n, &d->cap, sizeof(*d->v)) < 0) {
		d->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	v = d->v;
	memset(&v[d->n], 0, sizeof(*v));
	memcpy(v[d->n].key, key, klen);
	if (val)
		memcpy(v[d->n].data, val, dlen);
	d->n++;
	return MNL_CB_OK;
}

static int cmp_entry_key(const void *a, const void *b)
{
	return memcmp(((const struct map_entry *)a)->key, ((const struct map_entry *)b)->key,
		      sizeof(((const struct map_entry *)a)->key));
}

static void sort_entries(struct elem_dump *d)
{
	if (d->n > 1)
		qsort(d->v, d->n, sizeof(*d->v), cmp_entry_key);
}

/* The keys wanted, as a sorted dump to search in. */
static int wanted_keys(struct elem_dump *out, size_t n,
		       void (*key_of)(const void *items, size_t i, struct map_entry *e),
		       const void *items)
{
	*out = (struct elem_dump){ .v = calloc(n + 1, sizeof(*out->v)), .n = n };
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		key_of(items, i, &out->v[i]);
	sort_entries(out);
	return 0;
}

static int on_map_elems(const struct nlmsghdr *h, void *data)
{
	return for_each_elem(h, add_map_elem, data);
}

static int dump_map(const struct set_def *d, struct elem_dump *out)
{
	struct request q = { NFT_MSG_GETSETELEM, NLM_F_DUMP, NFPROTO_INET, d->name, on_map_elems, out };
	int r;

	*out = (struct elem_dump){ 0 };
	r = nft_request(&q);
	if (r >= 0 && out->err < 0)
		r = out->err;
	if (r < 0) {
		free(out->v);
		*out = (struct elem_dump){ 0 };
		return r;
	}
	sort_entries(out);
	return r;
}

/* Sorted by key (sort_entries): a binary search, so that comparing 10,000
 * wanted mappings with 10,000 in the kernel is not 10^8 comparisons. */
static const struct map_entry *find_entry(const struct elem_dump *d, const uint8_t *key)
{
	struct map_entry k;

	memcpy(k.key, key, sizeof(k.key));
	return d->n ? bsearch(&k, d->v, d->n, sizeof(*d->v), cmp_entry_key) : NULL;
}

/* What to change in one map (or set) so that it holds exactly the wanted
 * entries: unchanged ones are not touched. */
struct map_diff {
	struct elem_dump del, add;
};

static void map_diff_free(struct map_diff *d)
{
	free(d->del.v);
	free(d->add.v);
	*d = (struct map_diff){ 0 };
}

/* want is sorted by key (sort_entries); dlen: the data compared (0 for a
 * set). Each map is compared with its own dump, so that an element
 * someone else added or removed in one of them never fails the batch. */
static int diff_map(const struct set_def *d, const struct elem_dump *want, size_t dlen,
		    struct map_diff *out)
{
	struct elem_dump have;
	int r = dump_map(d, &have);

	*out = (struct map_diff){ 0 };
	if (r < 0)
		return r;
	out->del.v = calloc(have.n + 1, sizeof(*have.v));
	out->add.v = calloc(want->n + 1, sizeof(*want->v));
	if (!out->del.v || !out->add.v) {
		free(have.v);
		map_diff_free(out);
		return -ENOMEM;
	}
	for (size_t i = 0; i < want->n; i++) {
		const struct map_entry *h = find_entry(&have, want->v[i].key);
		if (h && memcmp(h->data, want->v[i].data, dlen) == 0)
			continue;
		if (h)
			out->del.v[out->del.n++] = *h;
		out->add.v[out->add.n++] = want->v[i];
	}
	for (size_t i = 0; i < have.n; i++)
		if (!find_entry(want, have.v[i].key))
			out->del.v[out->del.n++] = have.v[i];
	free(have.v);
	return 0;
}

static void batch_entries(struct batch *bt, const struct set_def *d, bool add,
			  const struct elem_dump *e, uint32_t klen, uint32_t dlen)
{
	struct elem *el = calloc(e->n + 1, sizeof(*el));

	if (!el) {
		bt->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < e->n; i++)
		el[i] = (struct elem){ .key = e->v[i].key, .len = klen,
				       .data = dlen ? e->v[i].data : NULL, .dlen = dlen };
	batch_elems(bt, d, add, el, e->n);
	free(el);
}

static void public_entry_of(const void *items, size_t i, struct map_entry *e)
{
	*e = (struct map_entry){ 0 };
	memcpy(e->key, &((const struct xn_addr *)items)[i].v4, 4);
}

static void dnat_entry_of(const void *items, size_t i, struct map_entry *e)
{
	struct map_entry sn;

	map_keys(&((const struct xn_mapping *)items)[i], e, &sn);
}

static void snat_entry_of(const void *items, size_t i, struct map_entry *e)
{
	struct map_entry dn;

	map_keys(&((const struct xn_mapping *)items)[i], &dn, e);
}

static void fwd_entry_of(const void *items, size_t i, struct map_entry *e)
{
	fwd_key(&((const struct xn_forward *)items)[i], e);
}

/* The public addresses (first 4 bytes of the key) of the DNAT and forward
 * entries that change or go: their flows must not keep the old path. */
static int list_changed(const struct map_diff *dn, const struct elem_dump *want_dn,
			const struct map_diff *fw, const struct elem_dump *want_fw,
			struct xn_addr **ret, size_t *n)
{
	struct xn_addr *v = calloc(dn->add.n + dn->del.n + fw->add.n + fw->del.n + 1, sizeof(*v));
	const struct map_diff *diffs[2] = { dn, fw };
	const struct elem_dump *wants[2] = { want_dn, want_fw };

	*ret = v;
	*n = 0;
	if (!v)
		return -ENOMEM;
	for (int k = 0; k < 2; k++) {
		/* Changed entries are in both lists: counted once, as added. */
		for (size_t i = 0; i < diffs[k]->add.n; i++) {
			v[*n] = (struct xn_addr){ .family = AF_INET, .prefixlen = 32 };
			memcpy(&v[(*n)++].v4, diffs[k]->add.v[i].key, 4);
		}
		for (size_t i = 0; i < diffs[k]->del.n; i++) {
			if (find_entry(wants[k], diffs[k]->del.v[i].key))
				continue;
			v[*n] = (struct xn_addr){ .family = AF_INET, .prefixlen = 32 };
			memcpy(&v[(*n)++].v4, diffs[k]->del.v[i].key, 4);
		}
	}
	return 0;
}

int xn_nft_maps_sync(const struct xn_mapset *want, bool maps_in_place,
		     const struct xn_addr *publics, size_t n_publics,
		     struct xn_addr **changed, size_t *n_changed, struct xn_buf *err)
{
	struct elem_dump w_dnat = { 0 }, w_snat = { 0 }, w_fwd = { 0 }, w_pub = { 0 };
	struct map_diff dnat = { 0 }, snat = { 0 }, fwd = { 0 }, pub = { 0 };
	struct batch bt;
	int r;

	*changed = NULL;
	*n_changed = 0;
	r = wanted_keys(&w_dnat, want->n_maps, dnat_entry_of, want->maps);
	if (r >= 0)
		r = wanted_keys(&w_snat, want->n_maps, snat_entry_of, want->maps);
	if (r >= 0)
		r = wanted_keys(&w_fwd, want->n_fwds, fwd_entry_of, want->fwds);
	if (r >= 0)
		r = wanted_keys(&w_pub, n_publics, public_entry_of, publics);
	if (r >= 0 && !maps_in_place)
		r = diff_map(&MAP_DNAT, &w_dnat, 4, &dnat);
	if (r >= 0 && !maps_in_place)
		r = diff_map(&MAP_SNAT, &w_snat, 4, &snat);
	if (r >= 0 && !maps_in_place)
		r = diff_map(&MAP_FWD, &w_fwd, 8, &fwd);
	if (r >= 0)
		r = diff_map(&SET_PUBLICS, &w_pub, 0, &pub);
	if (r >= 0)
		r = list_changed(&dnat, &w_dnat, &fwd, &w_fwd, changed, n_changed);
	if (r < 0 || (!dnat.del.n && !dnat.add.n && !snat.del.n && !snat.add.n && !fwd.del.n &&
		      !fwd.add.n && !pub.del.n && !pub.add.n))
		goto out;
	r = batch_open(&bt);
	if (r < 0)
		goto out;
	bt.family = NFPROTO_INET;
	batch_entries(&bt, &MAP_DNAT, false, &dnat.del, 4, 0);
	batch_entries(&bt, &MAP_SNAT, false, &snat.del, 4, 0);
	batch_entries(&bt, &MAP_FWD, false, &fwd.del, 12, 0);
	batch_entries(&bt, &SET_PUBLICS, false, &pub.del, 4, 0);
	batch_entries(&bt, &MAP_DNAT, true, &dnat.add, 4, 4);
	batch_entries(&bt, &MAP_SNAT, true, &snat.add, 4, 4);
	batch_entries(&bt, &MAP_FWD, true, &fwd.add, 12, 8);
	batch_entries(&bt, &SET_PUBLICS, true, &pub.add, 4, 0);
	r = batch_close_and_send(&bt, err);
out:
	free(w_dnat.v);
	free(w_snat.v);
	free(w_fwd.v);
	free(w_pub.v);
	map_diff_free(&dnat);
	map_diff_free(&snat);
	map_diff_free(&fwd);
	map_diff_free(&pub);
	if (r < 0) {
		free(*changed);
		*changed = NULL;
		*n_changed = 0;
	}
	return r;
}

int xn_nft_mapping_update(const struct xn_mapping *add_m, const struct xn_mapping *del_m,
			  const struct xn_forward *add_f, const struct xn_forward *del_f,
			  const struct xn_addr *add_pub, const struct xn_addr *del_pub,
			  struct xn_buf *err)
{
	struct batch bt;
	int r = batch_open(&bt);

	if (r < 0)
		return r;
	bt.family = NFPROTO_INET;
	batch_mappings(&bt, del_m, del_m ? 1 : 0, del_f, del_f ? 1 : 0, false);
	if (del_pub)
		batch_publics(&bt, del_pub, 1, false);
	batch_mappings(&bt, add_m, add_m ? 1 : 0, add_f, add_f ? 1 : 0, true);
	if (add_pub)
		batch_publics(&bt, add_pub, 1, true);
	return batch_close_and_send(&bt, err);
}

static const struct set_def *const AS_SETS[] = { &SET_AS_PORTS, &SET_AS_IPLESS, &SET_AS_MAC,
						  &SET_AS_IP4, &SET_AS_IP6 };
struct dead_elem;
static int collect_others(uint16_t family, const struct set_def *set,
			  const char (*keep)[IFNAMSIZ], size_t n_keep,
			  struct dead_elem **ret, size_t *n);
static void batch_dead(struct batch *bt, const struct set_def *set, bool add,
		       const struct dead_elem *d, size_t n);

static int install(const struct xn_nft_spec *s, const struct xn_nft_dynamic *dyn,
		   struct xn_buf *err);
static long install_us = -1;
static void nat_room_grow(struct nat_room *room);

int xn_nft_install(const struct xn_nft_spec *s, const struct xn_nft_dynamic *dyn,
		   struct xn_buf *err)
{
	struct timespec t0, t1;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = install(s, dyn, err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	install_us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	return r;
}

long xn_nft_take_install_us(void)
{
	long us = install_us;

	install_us = -1;
	return us;
}

static int install(const struct xn_nft_spec *s, const struct xn_nft_dynamic *dyn,
		   struct xn_buf *err)
{
	const struct xn_nft_vif *vifs = dyn ? dyn->vifs : NULL;
	size_t n_vifs = dyn ? dyn->n_vifs : 0;
	/* Filter elements of vifs the caller does not know about (a restart
	 * before xenstore answers): kept across the replacement, or those
	 * vifs would run unfiltered until they are found again. */
	struct dead_elem *others[2][XN_ARRAY_SIZE(AS_SETS)] = { { 0 } };
	size_t n_others[2][XN_ARRAY_SIZE(AS_SETS)] = { { 0 } };
	char (*keep)[IFNAMSIZ] = calloc(n_vifs + 1, IFNAMSIZ);

	if (!keep)
		return -ENOMEM;
	for (size_t i = 0; i < n_vifs; i++)
		memcpy(keep[i], vifs[i].ifname, IFNAMSIZ);
	for (int b = 0; b < 2; b++) {
		if (!(b ? s->antispoof_bridge : s->antispoof_routed))
			continue;
		for (size_t k = 0; k < XN_ARRAY_SIZE(AS_SETS); k++)
			collect_others(b ? NFPROTO_BRIDGE : NFPROTO_INET, AS_SETS[k],
				       (const char (*)[IFNAMSIZ])keep, n_vifs, &others[b][k],
				       &n_others[b][k]);
	}
	free(keep);

	static const uint16_t families[] = { NFPROTO_INET, NFPROTO_BRIDGE };
	struct nat_room room = nat_room_of(dyn);
	struct batch bt;
	int r;

	if (dyn && dyn->grow_nat)
		nat_room_grow(&room);
	r = batch_open(&bt);
	if (r < 0)
		return r;
	for (size_t f = 0; f < XN_ARRAY_SIZE(families); f++) {
		bool bridge = families[f] == NFPROTO_BRIDGE;
		bool want = bridge ? want_bridge(s) : want_inet(s);
		bool antispoof = bridge ? s->antispoof_bridge : s->antispoof_routed;
		char fp[64];
		size_t nrules;

		bt.family = families[f];
		/* "add; delete" removes the table whether or not it existed,
		 * in the same transaction as the new one: packets never see
		 * a moment without it. */
		batch_table(&bt, NFT_MSG_NEWTABLE, NLM_F_CREATE, NULL, "table (probe)");
		batch_table(&bt, NFT_MSG_DELTABLE, 0, NULL, "table (delete old)");
		if (!want)
			continue;
		r = fingerprint(s, families[f], fp, &nrules);
		if (r < 0)
			break;
		batch_table(&bt, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, fp,
			    bridge ? "table bridge " XN_NFT_TABLE : "table inet " XN_NFT_TABLE);
		if (!bridge && s->nat) {
			build_nat(&bt, s, &room);
			if (dyn && dyn->maps)
				batch_mappings(&bt, dyn->maps->maps, dyn->maps->n_maps,
					       dyn->maps->fwds, dyn->maps->n_fwds, true);
			if (dyn && dyn->n_publics)
				batch_publics(&bt, dyn->publics, dyn->n_publics, true);
		}
		if (antispoof) {
			build_antispoof(&bt, bridge);
			for (size_t i = 0; i < n_vifs; i++)
				if (vifs[i].routed == !bridge)
					batch_vif(&bt, &vifs[i], true);
			for (size_t k = 0; k < XN_ARRAY_SIZE(AS_SETS); k++)
				batch_dead(&bt, AS_SETS[k], true, others[bridge][k],
					   n_others[bridge][k]);
		}
	}
	for (int b = 0; b < 2; b++)
		for (size_t k = 0; k < XN_ARRAY_SIZE(AS_SETS); k++)
			free(others[b][k]);
	if (r < 0) {
		nftnl_batch_free(bt.b);
		return r;
	}
	return batch_close_and_send(&bt, err);
}

int xn_nft_vif_update(const struct xn_nft_vif *add, const struct xn_nft_vif *del,
		      struct xn_buf *err)
{
	struct batch bt;
	int r;

	r = batch_open(&bt);
	if (r < 0)
		return r;
	if (del) {
		bt.family = del->routed ? NFPROTO_INET : NFPROTO_BRIDGE;
		batch_vif(&bt, del, false);
	}
	if (add) {
		bt.family = add->routed ? NFPROTO_INET : NFPROTO_BRIDGE;
		batch_vif(&bt, add, true);
	}
	return batch_close_and_send(&bt, err);
}

int xn_nft_vifs_add(const struct xn_nft_vif *v, size_t n, struct xn_buf *err)
{
	struct batch bt;
	int r;

	if (n == 0)
		return 0;
	r = batch_open(&bt);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		bt.family = v[i].routed ? NFPROTO_INET : NFPROTO_BRIDGE;
		batch_vif(&bt, &v[i], true);
	}
	return batch_close_and_send(&bt, err);
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

/* The kernel makes each part of a dump as large as the largest read the
 * socket has seen, up to 32 KiB. Large parts matter: the kernel walks a
 * fixed-size hash set from its first bucket again for each part. */
#define NFT_DUMP_BUF 32768

static int nft_request(const struct request *q)
{
	char buf[NFT_DUMP_BUF];
	struct mnl_socket *nl = NULL;
	struct nlmsghdr *h;
	uint32_t seq = next_seq(), portid;
	ssize_t n;
	int r;

	r = nft_socket(&nl);
	if (r < 0)
		return r;
	portid = mnl_socket_get_portid(nl);
	memset(buf, 0, sizeof(buf)); /* no uninitialised padding on the wire */
	h = nftnl_nlmsg_build_hdr(buf, q->type, q->family, q->flags | NLM_F_ACK, seq);
	if (q->type == NFT_MSG_GETTABLE) {
		struct nftnl_table *t = table_new(q->family, NULL);
		if (!t) {
			r = -ENOMEM;
			goto out;
		}
		nftnl_table_nlmsg_build_payload(h, t);
		nftnl_table_free(t);
	} else if (q->type == NFT_MSG_GETRULE) {
		struct nftnl_rule *rl = nftnl_rule_alloc();
		if (!rl) {
			r = -ENOMEM;
			goto out;
		}
		nftnl_rule_set_u32(rl, NFTNL_RULE_FAMILY, q->family);
		nftnl_rule_set_str(rl, NFTNL_RULE_TABLE, XN_NFT_TABLE);
		nftnl_rule_nlmsg_build_payload(h, rl);
		nftnl_rule_free(rl);
	} else {
		struct nftnl_set *st = nftnl_set_alloc();
		if (!st) {
			r = -ENOMEM;
			goto out;
		}
		nftnl_set_set_u32(st, NFTNL_SET_FAMILY, q->family);
		nftnl_set_set_str(st, NFTNL_SET_TABLE, XN_NFT_TABLE);
		if (q->type == NFT_MSG_GETGEN) {
			/* no attributes */
		} else if (q->type == NFT_MSG_GETSET) {
			nftnl_set_nlmsg_build_payload(h, st);
		} else {
			nftnl_set_set_str(st, NFTNL_SET_NAME, q->set);
			nftnl_set_elems_nlmsg_build_payload(h, st);
		}
		nftnl_set_free(st);
	}
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
		r = mnl_cb_run(buf, (size_t)n, seq, portid, q->cb, q->data);
		if (r < 0) {
			r = -errno;
			/* An error answer ends the exchange; anything else may
			 * leave replies behind. */
			if (r != -ENOENT && r != -EPERM && r != -EINVAL && r != -EOPNOTSUPP)
				nft_socket_reset();
			return r;
		}
		if (r == MNL_CB_STOP)
			break;
	}
	return 0;
out:
	nft_socket_reset();
	return r;
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

static int get_table(uint16_t family, struct table_info *ti)
{
	struct request q = { NFT_MSG_GETTABLE, 0, family, NULL, on_table, ti };

	*ti = (struct table_info){ 0 };
	return nft_request(&q);
}

struct rules_acc {
	struct xn_nft_rule_info *v;
	size_t n;
	uint16_t family;
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
	snprintf(ri->family, sizeof(ri->family), "%s", family_name(acc->family));
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
	static const uint16_t families[] = { NFPROTO_INET, NFPROTO_BRIDGE };
	struct rules_acc acc = { 0 };
	bool any = false;
	int r = 0;

	for (size_t f = 0; f < XN_ARRAY_SIZE(families); f++) {
		struct table_info ti;
		struct request q = { NFT_MSG_GETRULE, NLM_F_DUMP, families[f], NULL, on_rule, &acc };

		r = get_table(families[f], &ti);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		any = true;
		acc.family = families[f];
		r = nft_request(&q);
		if (r < 0 || acc.err < 0)
			break;
	}
	if (r >= 0 && acc.err < 0)
		r = acc.err;
	if (r >= 0 && !any)
		r = -ENOENT;
	if (r < 0) {
		free(acc.v);
		return r;
	}
	*ret = acc.v;
	*n = acc.n;
	return 0;
}

static int count_rules(uint16_t family, size_t *n)
{
	struct rules_acc acc = { .family = family };
	struct request q = { NFT_MSG_GETRULE, NLM_F_DUMP, family, NULL, on_rule, &acc };
	int r = nft_request(&q);

	*n = acc.n;
	free(acc.v);
	return r < 0 ? r : acc.err;
}

/* The sizes of the NAT maps, to know whether they have room. */
struct nat_sizes {
	uint32_t dnat, snat, fwd, publics;
};

static int on_set(const struct nlmsghdr *h, void *data)
{
	struct nat_sizes *z = data;
	struct nftnl_set *s = nftnl_set_alloc();
	const char *name;
	uint32_t size;

	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_nlmsg_parse(h, s) < 0) {
		nftnl_set_free(s);
		return MNL_CB_OK;
	}
	name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	size = nftnl_set_is_set(s, NFTNL_SET_DESC_SIZE) ? nftnl_set_get_u32(s, NFTNL_SET_DESC_SIZE) : 0;
	if (name && strcmp(name, MAP_DNAT.name) == 0)
		z->dnat = size;
	else if (name && strcmp(name, MAP_SNAT.name) == 0)
		z->snat = size;
	else if (name && strcmp(name, MAP_FWD.name) == 0)
		z->fwd = size;
	else if (name && strcmp(name, SET_PUBLICS.name) == 0)
		z->publics = size;
	nftnl_set_free(s);
	return MNL_CB_OK;
}

static int nat_sizes_get(struct nat_sizes *z)
{
	struct request q = { NFT_MSG_GETSET, NLM_F_DUMP, NFPROTO_INET, NULL, on_set, z };

	*z = (struct nat_sizes){ 0 };
	return nft_request(&q);
}

/* The maps were full: room for at least as many as they hold now, so
 * that they come out (at least) twice as large. */
static void nat_room_grow(struct nat_room *room)
{
	struct nat_sizes z;

	if (nat_sizes_get(&z) < 0)
		return;
	room->maps = z.dnat > room->maps ? z.dnat : room->maps;
	room->maps = z.snat > room->maps ? z.snat : room->maps;
	room->fwds = z.fwd > room->fwds ? z.fwd : room->fwds;
	room->publics = z.publics > room->publics ? z.publics : room->publics;
}

/* Do the NAT maps in the kernel have room for dyn and one more? Maps
 * without a size (made by an older xennet) are replaced too. */
static int nat_room_enough(const struct xn_nft_dynamic *dyn, bool *enough)
{
	struct nat_room room = nat_room_of(dyn);
	struct nat_sizes z;
	int r = nat_sizes_get(&z);

	if (r < 0)
		return r;
	*enough = z.dnat > room.maps && z.snat > room.maps && z.fwd > room.fwds &&
		  z.publics > room.publics;
	return 0;
}

int xn_nft_query(const struct xn_nft_spec *s, const struct xn_nft_dynamic *dyn,
		 enum xn_nft_table_state *ret)
{
	static const uint16_t families[] = { NFPROTO_INET, NFPROTO_BRIDGE };
	bool any_present = false, stale = false;

	for (size_t f = 0; f < XN_ARRAY_SIZE(families); f++) {
		bool want = families[f] == NFPROTO_BRIDGE ? want_bridge(s) : want_inet(s);
		struct table_info ti;
		char fp[64];
		size_t want_rules, have_rules;
		int r = get_table(families[f], &ti);

		if (r == -ENOENT) {
			stale |= want;
			continue;
		}
		if (r < 0)
			return r;
		any_present = true;
		if (!want) {
			stale = true;
			continue;
		}
		r = fingerprint(s, families[f], fp, &want_rules);
		if (r < 0)
			return r;
		if (strcmp(ti.comment, fp) != 0) {
			stale = true;
			continue;
		}
		/* Same fingerprint: make sure nobody edited the rules. */
		r = count_rules(families[f], &have_rules);
		if (r < 0)
			return r;
		stale |= have_rules != want_rules;
		if (dyn && dyn->grow_nat && s->nat && families[f] == NFPROTO_INET)
			stale = true;
		if (dyn && s->nat && families[f] == NFPROTO_INET && !stale) {
			bool enough;
			r = nat_room_enough(dyn, &enough);
			if (r < 0)
				return r;
			stale |= !enough;
		}
	}
	*ret = !any_present && !stale ? XN_NFT_ABSENT : stale ? XN_NFT_STALE : XN_NFT_CURRENT;
	if (!any_present && xn_nft_spec_empty(s))
		*ret = XN_NFT_ABSENT;
	return 0;
}

/* ---- purging vanished vifs ---- */

struct dead_elem {
	uint8_t key[IFNAMSIZ + 16], key_end[IFNAMSIZ + 16];
	uint32_t klen, elen;
};

struct purge_acc {
	const char (*keep)[IFNAMSIZ];
	size_t n_keep;
	struct dead_elem *dead; /* elements to delete, of one set */
	size_t n_dead;
	char purged[64][IFNAMSIZ];
	size_t n_purged;
	int err;
};

static bool kept(const struct purge_acc *p, const char *name)
{
	for (size_t i = 0; i < p->n_keep; i++)
		if (strncmp(p->keep[i], name, IFNAMSIZ) == 0)
			return true;
	return false;
}

static int add_dead_elem(const void *key, uint32_t len, const void *key_end, uint32_t elen,
			 const void *val, uint32_t dlen, void *data)
{
	struct purge_acc *p = data;
	char name[IFNAMSIZ] = "";
	struct dead_elem *d;
	bool seen = false;

	(void)val, (void)dlen;
	if (len < IFNAMSIZ || len > sizeof(d->key) || elen > sizeof(d->key_end))
		return MNL_CB_OK;
	memcpy(name, key, IFNAMSIZ - 1);
	if (kept(p, name))
		return MNL_CB_OK;
	d = reallocarray(p->dead, p->n_dead + 1, sizeof(*d));
	if (!d) {
		p->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	p->dead = d;
	d = &p->dead[p->n_dead++];
	memset(d, 0, sizeof(*d));
	memcpy(d->key, key, len);
	d->klen = len;
	if (key_end && elen) {
		memcpy(d->key_end, key_end, elen);
		d->elen = elen;
	}
	for (size_t i = 0; i < p->n_purged; i++)
		seen |= strcmp(p->purged[i], name) == 0;
	if (!seen && p->n_purged < XN_ARRAY_SIZE(p->purged))
		memcpy(p->purged[p->n_purged++], name, IFNAMSIZ);
	return MNL_CB_OK;
}

static int on_elems(const struct nlmsghdr *h, void *data)
{
	return for_each_elem(h, add_dead_elem, data);
}

static int collect_others(uint16_t family, const struct set_def *set,
			  const char (*keep)[IFNAMSIZ], size_t n_keep,
			  struct dead_elem **ret, size_t *n)
{
	struct purge_acc p = { .keep = keep, .n_keep = n_keep };
	struct request q = { NFT_MSG_GETSETELEM, NLM_F_DUMP, family, set->name, on_elems, &p };
	int r = nft_request(&q);

	if (r >= 0 && p.err < 0)
		r = p.err;
	if (r < 0) {
		free(p.dead);
		*ret = NULL;
		*n = 0;
		return r == -ENOENT ? 0 : r; /* no table or no such set */
	}
	*ret = p.dead;
	*n = p.n_dead;
	return 0;
}

static void batch_dead(struct batch *bt, const struct set_def *set, bool add,
		       const struct dead_elem *d, size_t n)
{
	struct elem *el;

	if (n == 0)
		return;
	el = calloc(n, sizeof(*el));
	if (!el) {
		bt->err = -ENOMEM;
		return;
	}
	for (size_t k = 0; k < n; k++)
		el[k] = (struct elem){ .key = d[k].key, .len = d[k].klen,
				       .key_end = d[k].elen ? d[k].key_end : NULL };
	batch_elems(bt, set, add, el, n);
	free(el);
}

int xn_nft_purge(const char (*keep)[IFNAMSIZ], size_t n_keep, struct xn_buf *err)
{
	static const uint16_t families[] = { NFPROTO_INET, NFPROTO_BRIDGE };
	static const struct set_def *const sets[] = { &SET_AS_PORTS, &SET_AS_IPLESS, &SET_AS_MAC,
						      &SET_AS_IP4, &SET_AS_IP6 };
	struct purge_acc p = { .keep = keep, .n_keep = n_keep };
	struct batch bt;
	size_t purged = 0;
	int r;

	r = batch_open(&bt);
	if (r < 0)
		return r;
	for (size_t f = 0; f < XN_ARRAY_SIZE(families) && r >= 0; f++) {
		struct table_info ti;
		if (get_table(families[f], &ti) < 0)
			continue;
		bt.family = families[f];
		for (size_t i = 0; i < XN_ARRAY_SIZE(sets) && r >= 0; i++) {
			struct request q = { NFT_MSG_GETSETELEM, NLM_F_DUMP, families[f], sets[i]->name,
					     on_elems, &p };
			p.n_dead = 0;
			r = nft_request(&q);
			if (r == -ENOENT) /* a table without that set */
				r = 0;
			if (r >= 0 && p.err < 0)
				r = p.err;
			if (r >= 0 && p.n_dead) {
				/* batch_elems splits them into messages that fit. */
				struct elem *el = calloc(p.n_dead, sizeof(*el));
				if (!el) {
					r = -ENOMEM;
				} else {
					for (size_t k = 0; k < p.n_dead; k++)
						el[k] = (struct elem){ .key = p.dead[k].key, .len = p.dead[k].klen,
								       .key_end = p.dead[k].elen ? p.dead[k].key_end : NULL };
					batch_elems(&bt, sets[i], false, el, p.n_dead);
					free(el);
				}
			}
			free(p.dead);
			p.dead = NULL;
		}
	}
	if (r < 0) {
		nftnl_batch_free(bt.b);
		return r;
	}
	purged = p.n_purged;
	r = batch_close_and_send(&bt, err);
	return r < 0 ? r : (int)purged;
}

/* ---- noticing changes made by others ---- */

static struct mnl_socket *monitor;
static bool monitor_missed; /* others committed while it did not listen */

static int on_gen(const struct nlmsghdr *h, void *data)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, h, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == NFTA_GEN_ID && mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
			*(uint32_t *)data = ntohl(mnl_attr_get_u32(a));
	return MNL_CB_OK;
}

/* The ruleset's generation: one more at each commit, whoever made it. */
static int get_gen(uint32_t *gen)
{
	struct request q = { NFT_MSG_GETGEN, 0, AF_UNSPEC, NULL, on_gen, gen };

	return nft_request(&q);
}

static void monitor_listen(bool on)
{
	int group = NFNLGRP_NFTABLES;

	setsockopt(mnl_socket_get_fd(monitor), SOL_NETLINK,
		   on ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP, &group, sizeof(group));
}

/* Stop listening for the length of our own batch, noting the generation
 * first: a commit before the drop is heard, one after it is counted. */
static void monitor_quiet(bool quiet, uint32_t *gen)
{
	if (!quiet || !monitor)
		return;
	if (get_gen(gen) < 0)
		monitor_missed = true;
	monitor_listen(false);
}

/* Listen again, then count the commits made meanwhile: ours, or also
 * someone else's (which is then checked for, as if heard). */
static void monitor_loud(bool quiet, uint32_t gen, bool committed)
{
	uint32_t now = 0;

	if (!quiet || !monitor)
		return;
	monitor_listen(true);
	if (get_gen(&now) < 0 || now != gen + (committed ? 1 : 0))
		monitor_missed = true;
}

int xn_nft_monitor_open(void)
{
	monitor = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!monitor)
		return -errno;
	if (mnl_socket_bind(monitor, 1 << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) {
		int e = -errno;
		mnl_socket_close(monitor);
		monitor = NULL;
		return e;
	}
	/* Each vif or mapping change is a few events: room for bursts of
	 * them (an overflow only costs a check of the tables). */
	int size = 4 << 20;
	if (setsockopt(mnl_socket_get_fd(monitor), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(mnl_socket_get_fd(monitor), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return mnl_socket_get_fd(monitor);
}

void xn_nft_monitor_close(void)
{
	if (monitor)
		mnl_socket_close(monitor);
	monitor = NULL;
}

struct monitor_state {
	bool pending; /* this transaction touched a xennet table's rules */
	bool changed; /* ... and it was not ours */
	bool lost; /* the socket overflowed: nobody knows */
};

static int on_event(const struct nlmsghdr *h, void *data)
{
	struct monitor_state *st = data;
	uint16_t type = h->nlmsg_type & 0xff;
	const struct nlattr *a;

	if ((h->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES)
		return MNL_CB_OK;
	if (type == NFT_MSG_NEWGEN) {
		uint32_t pid = 0;
		mnl_attr_for_each(a, h, sizeof(struct nfgenmsg))
			if (mnl_attr_get_type(a) == NFTA_GEN_PROC_PID &&
			    mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
				pid = ntohl(mnl_attr_get_u32(a));
		if (st->pending && pid != (uint32_t)getpid())
			st->changed = true;
		st->pending = false;
		return MNL_CB_OK;
	}
	if (type != NFT_MSG_DELTABLE && type != NFT_MSG_DELCHAIN && type != NFT_MSG_NEWCHAIN &&
	    type != NFT_MSG_DELRULE && type != NFT_MSG_NEWRULE && type != NFT_MSG_DELSET)
		return MNL_CB_OK;
	/* The table's name is attribute 1 of all these messages. */
	mnl_attr_for_each(a, h, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == 1 && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0 &&
		    strcmp(mnl_attr_get_str(a), XN_NFT_TABLE) == 0)
			st->pending = true;
	return MNL_CB_OK;
}

int xn_nft_monitor_drain(void)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct monitor_state st = { 0 };

	if (!monitor)
		return 0;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(monitor, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) { /* events lost: look again */
				st.lost = true;
				continue;
			}
			return -errno;
		}
		mnl_cb_run(buf, (size_t)n, 0, 0, on_event, &st);
	}
	return st.changed ? 1 : st.lost ? 2 : 0;
}

bool xn_nft_monitor_take_missed(void)
{
	bool m = monitor_missed;

	monitor_missed = false;
	return m;
}
