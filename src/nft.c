/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nftables through libnftnl + libmnl: one table, one batch per change,
 * every reply read and mapped back to the object that caused it. This
 * file: the ruleset and the objects a batch carries (nft-netlink.c sends
 * it). */
#include "nft-internal.h"

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

bool nft_want_inet(const struct xn_nft_spec *s)
{
	return s->nat || s->antispoof_routed;
}

bool nft_want_bridge(const struct xn_nft_spec *s)
{
	return s->antispoof_bridge;
}

bool xn_nft_spec_empty(const struct xn_nft_spec *s)
{
	return !nft_want_inet(s) && !nft_want_bridge(s);
}

const char *nft_family_name(uint16_t family)
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
		      "  set as_drops { type ifname; counter }\n"
		      "  chain spoofed {\n"
		      "    iifname @as_drops drop\n"
		      "    drop\n  }\n"
		      "  chain antispoof {\n"
		      "    iifname . ether saddr != @as_mac counter jump spoofed\n"
		      "    iifname @as_ipless accept\n");
	if (bridge)
		xn_buf_printf(out,
			      "    ether type arp iifname . arp saddr ether != @as_mac counter jump spoofed\n"
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
		      "    counter jump spoofed\n  }\n"
		      "  chain prerouting { type filter hook prerouting priority -300 }\n"
		      "    iifname @as_ports jump antispoof\n"
		      "    meta iifgroup %u jump antispoof\n",
		      v4, v4, v6, v6, v6, v6, v6, v6, v6, XN_NFT_VIF_GROUP);
}

static void describe_table(const struct xn_nft_spec *s, uint16_t family,
			   struct xn_buf *out)
{
	char a[XN_ADDR_STRLEN];

	if (family == NFPROTO_BRIDGE) {
		if (!nft_want_bridge(s))
			return;
		xn_buf_printf(out, "table bridge %s\n", XN_NFT_TABLE);
		describe_antispoof(out, true);
		return;
	}
	if (!nft_want_inet(s))
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
int nft_fingerprint(const struct xn_nft_spec *s, uint16_t family,
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

/* ---- the objects of a batch ---- */

void nft_batch_table(struct batch *bt, uint16_t type, uint16_t flags,
			const char *comment, const char *what)
{
	struct nftnl_table *t = nft_table_new(bt->family, comment);

	if (!t) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_table_nlmsg_build_payload(nft_batch_hdr(bt, type, flags, what), t);
	nftnl_table_free(t);
	nft_batch_next(bt);
}

/* A base chain (type non-NULL) or a regular one (type NULL). */
void nft_batch_chain(struct batch *bt, const char *name, const char *type,
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
		nft_batch_hdr(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE, name), c);
	nftnl_chain_free(c);
	nft_batch_next(bt);
}

#define CONCAT_TYPE(a, b) (((uint32_t)(a) << 6) | (uint32_t)(b))

const struct set_def SET_NAT_UPLINKS = {
	.name = "nat_uplinks", .type = NFT_TYPE_IFNAME, .keylen = IFNAMSIZ, .host_order = true };
const struct set_def SET_NAT_NETWORKS = {
	.name = "nat_networks", .type = NFT_TYPE_IPADDR, .keylen = 4, .flags = NFT_SET_INTERVAL };
#define NFT_TYPE_INET_PROTOCOL 12
#define NFT_TYPE_INET_SERVICE 13
const struct set_def MAP_DNAT = {
	.name = "map_dnat", .type = NFT_TYPE_IPADDR, .keylen = 4, .flags = NFT_SET_MAP,
	.data_type = NFT_TYPE_IPADDR, .data_len = 4 };
const struct set_def MAP_SNAT = {
	.name = "map_snat", .type = NFT_TYPE_IPADDR, .keylen = 4, .flags = NFT_SET_MAP,
	.data_type = NFT_TYPE_IPADDR, .data_len = 4 };
const struct set_def MAP_FWD = {
	.name = "fwd_dnat",
	.type = CONCAT_TYPE(CONCAT_TYPE(NFT_TYPE_IPADDR, NFT_TYPE_INET_PROTOCOL), NFT_TYPE_INET_SERVICE),
	.keylen = 12, .flags = NFT_SET_MAP,
	.data_type = CONCAT_TYPE(NFT_TYPE_IPADDR, NFT_TYPE_INET_SERVICE), .data_len = 8 };
const struct set_def SET_PUBLICS = {
	.name = "public_addrs", .type = NFT_TYPE_IPADDR, .keylen = 4 };
const struct set_def SET_AS_PORTS = {
	.name = "as_ports", .type = NFT_TYPE_IFNAME, .keylen = IFNAMSIZ, .host_order = true };
/* One element per filtered vif, each with its counter: the spoofed
 * packets dropped from that vif (`xennet status`). */
const struct set_def SET_AS_DROPS = {
	.name = "as_drops", .type = NFT_TYPE_IFNAME, .keylen = IFNAMSIZ, .host_order = true,
	.counters = true };
const struct set_def SET_AS_IPLESS = {
	.name = "as_ipless", .type = NFT_TYPE_IFNAME, .keylen = IFNAMSIZ, .host_order = true };
/* A hash: no concatenation field lengths (those are for intervals). */
const struct set_def SET_AS_MAC = {
	.name = "as_mac", .type = CONCAT_TYPE(NFT_TYPE_IFNAME, NFT_TYPE_ETHERADDR),
	.keylen = IFNAMSIZ + 8 };
const struct set_def SET_AS_IP4 = {
	.name = "as_ip4", .type = CONCAT_TYPE(NFT_TYPE_IFNAME, NFT_TYPE_IPADDR),
	.keylen = IFNAMSIZ + 4, .flags = NFT_SET_INTERVAL | NFT_SET_CONCAT,
	.fields = { IFNAMSIZ, 4 } };
const struct set_def SET_AS_IP6 = {
	.name = "as_ip6", .type = CONCAT_TYPE(NFT_TYPE_IFNAME, NFT_TYPE_IP6ADDR),
	.keylen = IFNAMSIZ + 16, .flags = NFT_SET_INTERVAL | NFT_SET_CONCAT,
	.fields = { IFNAMSIZ, 16 } };
const struct set_def *const AS_SETS[N_AS_SETS] = { &SET_AS_PORTS, &SET_AS_IPLESS, &SET_AS_MAC,
						   &SET_AS_DROPS, &SET_AS_IP4, &SET_AS_IP6 };

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

void nft_batch_elems(struct batch *bt, const struct set_def *d, bool add,
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
			nft_batch_hdr(bt, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
				  add ? NLM_F_CREATE : 0, d->name),
			s);
		nft_batch_next(bt);
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

struct nat_room nft_nat_room_of(const struct xn_nft_dynamic *dyn)
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
uint32_t nft_batch_set(struct batch *bt, const struct set_def *d,
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
	if (d->counters) {
		struct nftnl_expr *c = nftnl_expr_alloc("counter");
		if (!c) {
			nftnl_set_free(s);
			bt->err = -ENOMEM;
			return id;
		}
		nftnl_set_add_expr(s, c);
	}
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
		nft_batch_hdr(bt, NFT_MSG_NEWSET, NLM_F_CREATE, d->name), s);
	nft_batch_next(bt);
	nftnl_set_free(s);
	nft_batch_elems(bt, d, true, elems, n);
	return id;
}

struct nftnl_rule *nft_rule_new(uint16_t family, const char *chain,
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

void nft_batch_rule(struct batch *bt, struct nftnl_rule *r, int built,
		       const char *what)
{
	if (built < 0 || !r) {
		bt->err = built < 0 ? built : -ENOMEM;
		nftnl_rule_free(r);
		return;
	}
	nftnl_rule_nlmsg_build_payload(
		nft_batch_hdr(bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
			  what),
		r);
	nftnl_rule_free(r);
	nft_batch_next(bt);
}

/* Interval set elements as nft(8) writes them: a leading end at 0, then
 * start and end (exclusive) of each network. out: room for 1 + 2 per
 * network; starts and ends hold the keys. */
size_t nft_nat_network_elems(const struct xn_nft_spec *s, uint32_t *starts, uint32_t *ends,
			     struct elem *out)
{
	static const uint32_t zero;
	size_t n = 0;

	for (size_t i = 0; i < s->n_nat_networks; i++) {
		struct xn_addr net = xn_addr_network(&s->nat_networks[i]);
		uint64_t size = 1ULL << (32 - net.prefixlen);
		uint64_t end = (uint64_t)ntohl(net.v4.s_addr) + size;

		starts[i] = net.v4.s_addr;
		if (i == 0 && starts[i] != 0)
			out[n++] = (struct elem){ .key = &zero, .len = 4, .interval_end = true };
		out[n++] = (struct elem){ .key = &starts[i], .len = 4 };
		if (end <= UINT32_MAX) {
			ends[i] = htonl((uint32_t)end);
			out[n++] = (struct elem){ .key = &ends[i], .len = 4, .interval_end = true };
		}
	}
	return n;
}

struct rule_b nft_rule_begin(struct batch *bt, uint16_t family, const char *chain,
			    const char *comment)
{
	struct nftnl_rule *r = nft_rule_new(family, chain, comment);

	return (struct rule_b){ .bt = bt, .r = r, .err = r ? 0 : -ENOMEM };
}

void nft_rule_end(struct rule_b *b, const char *what)
{
	nft_batch_rule(b->bt, b->r, b->err, what);
	b->r = NULL;
}

/* ---- the NAT table's rules, one function each ---- */

/* The set ids of the NAT table's sets and maps, for lookups in the batch
 * that makes them. */
struct nat_ids {
	uint32_t uplinks, networks, dnat, snat, fwd, publics;
};

#define IP_SADDR offsetof(struct iphdr, saddr)
#define IP_DADDR offsetof(struct iphdr, daddr)
#define TH_DPORT offsetof(struct udphdr, dest) /* where TCP has it too */
#define CT_ESTABLISHED_RELATED \
	(NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED))

/* ct state != established,related ip daddr @SET counter drop
 *
 * New (or invalid) only: replies to Dom0's own connections to a public
 * address (hairpin from Dom0) come back this way. */
static void rule_input_drop_public(struct batch *bt, const char *set, uint32_t set_id,
				   const char *comment)
{
	struct rule_b b = nft_rule_begin(bt, NFPROTO_INET, "input", comment);

	nft_rule_ipv4(&b);
	nft_rule_ct_bits_clear(&b, NFT_CT_STATE, CT_ESTABLISHED_RELATED);
	nft_rule_expr(&b, nft_expr_payload_nh(IP_DADDR, 4));
	nft_rule_expr(&b, nft_expr_lookup(set, set_id, false));
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_verdict(&b, NF_DROP);
	nft_rule_end(&b, "public address input rule");
}

/* dnat ip to ip daddr . meta l4proto . th dport map @fwd_dnat counter */
static void rule_dnat_forwards(struct batch *bt, const char *chain, const struct nat_ids *id)
{
	struct rule_b b = nft_rule_begin(bt, NFPROTO_INET, chain, "xennet: port forwards to guests");

	nft_rule_ipv4(&b);
	nft_rule_expr(&b, nft_expr_payload_nh(IP_DADDR, 4));
	nft_rule_expr(&b, nft_expr_meta_reg(NFT_META_L4PROTO, NFT_REG32_01));
	nft_rule_expr(&b, nft_expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, TH_DPORT, 2, NFT_REG32_02));
	nft_rule_expr(&b, nft_expr_lookup_map(MAP_FWD.name, id->fwd));
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_expr(&b, nft_expr_nat(NFT_NAT_DNAT, true));
	nft_rule_end(&b, "port forward rule");
}

/* dnat ip to ip daddr map @map_dnat counter */
static void rule_dnat_maps(struct batch *bt, const char *chain, const struct nat_ids *id)
{
	struct rule_b b = nft_rule_begin(bt, NFPROTO_INET, chain,
					 "xennet: public addresses mapped 1:1 to guests");

	nft_rule_ipv4(&b);
	nft_rule_expr(&b, nft_expr_payload_nh(IP_DADDR, 4));
	nft_rule_expr(&b, nft_expr_lookup_map(MAP_DNAT.name, id->dnat));
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_expr(&b, nft_expr_nat(NFT_NAT_DNAT, false));
	nft_rule_end(&b, "1:1 DNAT rule");
}

/* ct status dnat ip saddr @nat_networks ip daddr @nat_networks counter masquerade
 *
 * Hairpin: a guest reaching another through its public address is
 * answered through Dom0, not directly on the bridge. */
static void rule_masquerade_hairpin(struct batch *bt, const struct nat_ids *id)
{
	struct rule_b b = nft_rule_begin(bt, NFPROTO_INET, "postrouting",
					 "xennet: hairpin to public addresses");

	nft_rule_ipv4(&b);
	nft_rule_ct_bits(&b, NFT_CT_STATUS, IPS_DST_NAT);
	nft_rule_expr(&b, nft_expr_payload_nh(IP_SADDR, 4));
	nft_rule_expr(&b, nft_expr_lookup("nat_networks", id->networks, false));
	nft_rule_expr(&b, nft_expr_payload_nh(IP_DADDR, 4));
	nft_rule_expr(&b, nft_expr_lookup("nat_networks", id->networks, false));
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_expr(&b, nftnl_expr_alloc("masq"));
	nft_rule_end(&b, "hairpin rule");
}

/* oifname @nat_uplinks snat ip to ip saddr map @map_snat counter */
static void rule_snat_maps(struct batch *bt, const struct nat_ids *id)
{
	struct rule_b b = nft_rule_begin(bt, NFPROTO_INET, "postrouting",
					 "xennet: mapped guests leave with their public address");

	nft_rule_ipv4(&b);
	nft_rule_expr(&b, nft_expr_meta(NFT_META_OIFNAME));
	nft_rule_expr(&b, nft_expr_lookup("nat_uplinks", id->uplinks, false));
	nft_rule_expr(&b, nft_expr_payload_nh(IP_SADDR, 4));
	nft_rule_expr(&b, nft_expr_lookup_map(MAP_SNAT.name, id->snat));
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_expr(&b, nft_expr_nat(NFT_NAT_SNAT, false));
	nft_rule_end(&b, "1:1 SNAT rule");
}

/* oifname @nat_uplinks ip saddr @nat_networks ip daddr != @nat_networks counter masquerade */
static void rule_masquerade(struct batch *bt, const struct nat_ids *id)
{
	struct rule_b b = nft_rule_begin(bt, NFPROTO_INET, "postrouting",
					 "xennet: masquerade guest networks");

	nft_rule_ipv4(&b);
	nft_rule_expr(&b, nft_expr_meta(NFT_META_OIFNAME));
	nft_rule_expr(&b, nft_expr_lookup("nat_uplinks", id->uplinks, false));
	nft_rule_expr(&b, nft_expr_payload_nh(IP_SADDR, 4));
	nft_rule_expr(&b, nft_expr_lookup("nat_networks", id->networks, false));
	nft_rule_expr(&b, nft_expr_payload_nh(IP_DADDR, 4));
	nft_rule_expr(&b, nft_expr_lookup("nat_networks", id->networks, true));
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_expr(&b, nftnl_expr_alloc("masq"));
	nft_rule_end(&b, "masquerade rule");
}

/* ct state established,related counter accept */
static void rule_forward_established(struct batch *bt)
{
	struct rule_b b = nft_rule_begin(bt, NFPROTO_INET, "forward",
					 "xennet: replies to guest connections");

	nft_rule_ct_bits(&b, NFT_CT_STATE, CT_ESTABLISHED_RELATED);
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_verdict(&b, NF_ACCEPT);
	nft_rule_end(&b, "forward established rule");
}

/* ct status dnat counter accept */
static void rule_forward_dnat(struct batch *bt)
{
	struct rule_b b = nft_rule_begin(bt, NFPROTO_INET, "forward",
					 "xennet: mapped (DNAT) connections");

	nft_rule_ct_bits(&b, NFT_CT_STATUS, IPS_DST_NAT);
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_verdict(&b, NF_ACCEPT);
	nft_rule_end(&b, "forward dnat rule");
}

/* iifname @nat_uplinks ip daddr @nat_networks counter drop */
static void rule_forward_drop_inbound(struct batch *bt, const struct nat_ids *id)
{
	struct rule_b b = nft_rule_begin(bt, NFPROTO_INET, "forward",
					 "xennet: no new connections from the uplink into the guest network");

	nft_rule_expr(&b, nft_expr_meta(NFT_META_IIFNAME));
	nft_rule_expr(&b, nft_expr_lookup("nat_uplinks", id->uplinks, false));
	nft_rule_ipv4(&b);
	nft_rule_expr(&b, nft_expr_payload_nh(IP_DADDR, 4));
	nft_rule_expr(&b, nft_expr_lookup("nat_networks", id->networks, false));
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_verdict(&b, NF_DROP);
	nft_rule_end(&b, "forward drop rule");
}

/* set nat_networks, with the guest networks' interval elements. */
static uint32_t batch_nat_networks(struct batch *bt, const struct xn_nft_spec *s)
{
	struct elem nets[1 + 2 * XN_ARRAY_SIZE(s->nat_networks)];
	uint32_t starts[XN_ARRAY_SIZE(s->nat_networks)];
	uint32_t ends[XN_ARRAY_SIZE(s->nat_networks)];
	size_t n = nft_nat_network_elems(s, starts, ends, nets);

	return nft_batch_set(bt, &SET_NAT_NETWORKS, nets, n, 0);
}

void nft_build_nat(struct batch *bt, const struct xn_nft_spec *s, const struct nat_room *room)
{
	char ifname[IFNAMSIZ] = { 0 };
	struct elem ifelem = { .key = ifname, .len = IFNAMSIZ };
	struct nat_ids id;

	memcpy(ifname, s->nat_uplink, strnlen(s->nat_uplink, sizeof(ifname) - 1));
	id.uplinks = nft_batch_set(bt, &SET_NAT_UPLINKS, &ifelem, 1, 0);
	id.networks = batch_nat_networks(bt, s);
	id.dnat = nft_batch_set(bt, &MAP_DNAT, NULL, 0, nat_capacity(room->maps));
	id.snat = nft_batch_set(bt, &MAP_SNAT, NULL, 0, nat_capacity(room->maps));
	id.fwd = nft_batch_set(bt, &MAP_FWD, NULL, 0, nat_capacity(room->fwds));
	id.publics = nft_batch_set(bt, &SET_PUBLICS, NULL, 0, nat_capacity(room->publics));

	nft_batch_chain(bt, "dnat_prerouting", "nat", NF_INET_PRE_ROUTING, NF_IP_PRI_NAT_DST);
	nft_batch_chain(bt, "dnat_output", "nat", NF_INET_LOCAL_OUT, NF_IP_PRI_NAT_DST);
	nft_batch_chain(bt, "postrouting", "nat", NF_INET_POST_ROUTING, NF_IP_PRI_NAT_SRC);
	nft_batch_chain(bt, "input", "filter", NF_INET_LOCAL_IN, NF_IP_PRI_FILTER);
	nft_batch_chain(bt, "forward", "filter", NF_INET_FORWARD, NF_IP_PRI_FILTER);

	/* Public addresses xennet made reachable are for the guests: what
	 * is not translated never reaches Dom0's own services. They are the
	 * keys of the DNAT map (looked up without its data) and, for those
	 * only forwarded, the set public_addrs: 10,000 mappings are not
	 * 10,000 more elements. */
	rule_input_drop_public(bt, SET_PUBLICS.name, id.publics,
			       "xennet: Dom0 itself does not answer on public addresses");
	rule_input_drop_public(bt, MAP_DNAT.name, id.dnat,
			       "xennet: Dom0 itself does not answer on 1:1 public addresses");
	/* Port forwards first, then 1:1 mappings; in prerouting for the LAN
	 * and other guests, in output for Dom0. */
	rule_dnat_forwards(bt, "dnat_prerouting", &id);
	rule_dnat_maps(bt, "dnat_prerouting", &id);
	rule_dnat_forwards(bt, "dnat_output", &id);
	rule_dnat_maps(bt, "dnat_output", &id);
	rule_masquerade_hairpin(bt, &id);
	rule_snat_maps(bt, &id);
	rule_masquerade(bt, &id);
	rule_forward_established(bt);
	rule_forward_dnat(bt);
	rule_forward_drop_inbound(bt, &id);
}
