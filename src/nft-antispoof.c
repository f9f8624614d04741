/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Anti-spoofing: per-vif sets (MAC, addresses, ports) and the rules
 * that check what a vif sends against them. */
#include "nft-internal.h"

#include <net/ethernet.h>
#include <netinet/icmp6.h>
#include <netinet/if_ether.h>
#include <netinet/ip6.h>

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

/* The elements one vif wants in one of the anti-spoofing sets (at most
 * 16), as the kernel lists them: for the daemon's comparison with what
 * the sets hold. */
size_t nft_vif_wanted(const struct xn_nft_vif *v, const struct set_def *set, struct dead_elem out[16])
{
	struct vif_keys *k = malloc(sizeof(*k));
	const struct elem *src = NULL;
	struct elem one;
	size_t n = 0;

	if (!k)
		return 0;
	vif_keys(v, k);
	if (set == &SET_AS_PORTS || set == &SET_AS_DROPS ||
	    (set == &SET_AS_IPLESS && v->n_ips == 0)) {
		one = (struct elem){ .key = k->name, .len = IFNAMSIZ };
		src = &one, n = 1;
	} else if (set == &SET_AS_MAC) {
		one = (struct elem){ .key = k->mac, .len = IFNAMSIZ + 8 };
		src = &one, n = 1;
	} else if (set == &SET_AS_IP4) {
		src = k->e4, n = k->n4;
	} else if (set == &SET_AS_IP6) {
		src = k->e6, n = k->n6;
	}
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		memcpy(out[i].key, src[i].key, src[i].len);
		out[i].klen = src[i].len;
		if (src[i].key_end) {
			memcpy(out[i].key_end, src[i].key_end, src[i].len);
			out[i].elen = src[i].len;
		}
	}
	free(k);
	return n;
}

void nft_batch_vif(struct batch *bt, const struct xn_nft_vif *v, bool add)
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
	nft_batch_elems(bt, &SET_AS_MAC, add, &mac, 1);
	if (v->n_ips == 0)
		nft_batch_elems(bt, &SET_AS_IPLESS, add, &port, 1);
	nft_batch_elems(bt, &SET_AS_IP4, add, k->e4, k->n4);
	nft_batch_elems(bt, &SET_AS_IP6, add, k->e6, k->n6);
	nft_batch_elems(bt, &SET_AS_DROPS, add, &port, 1);
	/* Last: the port is checked only once its allow-lists exist (all in
	 * one transaction anyway). */
	nft_batch_elems(bt, &SET_AS_PORTS, add, &port, 1);
	free(k);
}

/* ---- the rules, one function each ---- */

/* What every anti-spoofing rule of one table needs: the family and the
 * set ids of this batch. */
struct as_table {
	struct batch *bt;
	bool bridge;
	uint32_t ports_id, ipless_id, mac_id, ip4_id, ip6_id, drops_id;
};

#define ETHER_SADDR offsetof(struct ether_header, ether_shost)
#define ETHER_TYPE offsetof(struct ether_header, ether_type)
#define ARP_SHA offsetof(struct ether_arp, arp_sha)
#define ARP_SPA offsetof(struct ether_arp, arp_spa)
#define IP_SADDR offsetof(struct iphdr, saddr)
#define IP6_SADDR offsetof(struct ip6_hdr, ip6_src)
#define ICMP6_TYPE offsetof(struct icmp6_hdr, icmp6_type)
#define ND_TARGET offsetof(struct nd_neighbor_advert, nd_na_target)
#define UDP_PORTS offsetof(struct udphdr, source) /* source and dest, 4 bytes */
#define MLD2_REPORT 143 /* ICMPv6 type of an MLDv2 listener report (RFC 3810) */

static struct rule_b as_rule(const struct as_table *t, const char *chain, const char *comment)
{
	return nft_rule_begin(t->bt, t->bridge ? NFPROTO_BRIDGE : NFPROTO_INET, chain, comment);
}

/* The protocol: by ethertype on a bridge, by nfproto in inet. */
static void match_proto(struct rule_b *b, const struct as_table *t, uint16_t ethertype,
			uint8_t nfproto)
{
	uint8_t etype[2] = { (uint8_t)(ethertype >> 8), (uint8_t)ethertype };

	if (t->bridge) {
		nft_rule_expr(b, nft_expr_payload(NFT_PAYLOAD_LL_HEADER, ETHER_TYPE, 2, NFT_REG_1));
		nft_rule_expr(b, nft_expr_cmp(NFT_CMP_EQ, etype, 2));
	} else {
		nft_rule_expr(b, nft_expr_meta(NFT_META_NFPROTO));
		nft_rule_expr(b, nft_expr_cmp(NFT_CMP_EQ, &nfproto, 1));
	}
}

/* iifname . FIELD: the key of a lookup in an as_* set. */
static void load_iifname_and(struct rule_b *b, uint32_t base, uint32_t offset, uint32_t len)
{
	nft_rule_expr(b, nft_expr_meta(NFT_META_IIFNAME));
	nft_rule_expr(b, nft_expr_payload(base, offset, len, NFT_REG_2));
}

/* iifname @as_drops drop
 *
 * Where spoofed packets go: counted on their vif's as_drops element, then
 * dropped. */
static void rule_spoofed_counted(const struct as_table *t)
{
	struct rule_b b = as_rule(t, "spoofed", "xennet: spoofed packets, counted per vif");

	nft_rule_expr(&b, nft_expr_meta(NFT_META_IIFNAME));
	nft_rule_expr(&b, nft_expr_lookup(SET_AS_DROPS.name, t->drops_id, false));
	nft_rule_verdict(&b, NF_DROP);
	nft_rule_end(&b, "anti-spoofing per-vif drop rule");
}

/* drop
 *
 * Fail closed: also a vif without an as_drops element. */
static void rule_spoofed_uncounted(const struct as_table *t)
{
	struct rule_b b = as_rule(t, "spoofed", "xennet: spoofed packets of a vif without a counter");

	nft_rule_verdict(&b, NF_DROP);
	nft_rule_end(&b, "anti-spoofing drop rule");
}

/* iifname . ether saddr != @as_mac counter jump spoofed */
static void rule_mac(const struct as_table *t)
{
	struct rule_b b = as_rule(t, "antispoof", "xennet: frames from a MAC that is not the vif's");

	load_iifname_and(&b, NFT_PAYLOAD_LL_HEADER, ETHER_SADDR, 6);
	nft_rule_expr(&b, nft_expr_lookup(SET_AS_MAC.name, t->mac_id, true));
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_jump(&b, "spoofed");
	nft_rule_end(&b, "anti-spoofing MAC rule");
}

/* iifname @as_ipless accept */
static void rule_ipless(const struct as_table *t)
{
	struct rule_b b = as_rule(t, "antispoof", "xennet: vifs without addresses are checked by MAC only");

	nft_rule_expr(&b, nft_expr_meta(NFT_META_IIFNAME));
	nft_rule_expr(&b, nft_expr_lookup(SET_AS_IPLESS.name, t->ipless_id, false));
	nft_rule_verdict(&b, NF_ACCEPT);
	nft_rule_end(&b, "anti-spoofing MAC-only rule");
}

/* ether type arp iifname . arp saddr ether != @as_mac counter jump spoofed */
static void rule_arp_sender(const struct as_table *t)
{
	struct rule_b b = as_rule(t, "antispoof", "xennet: ARP with a sender MAC that is not the vif's");

	match_proto(&b, t, ETHERTYPE_ARP, 0);
	load_iifname_and(&b, NFT_PAYLOAD_NETWORK_HEADER, ARP_SHA, 6);
	nft_rule_expr(&b, nft_expr_lookup(SET_AS_MAC.name, t->mac_id, true));
	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_jump(&b, "spoofed");
	nft_rule_end(&b, "anti-spoofing ARP sender rule");
}

/* ether type arp arp saddr ip 0.0.0.0 accept */
static void rule_arp_probe(const struct as_table *t)
{
	static const uint8_t zero[4];
	struct rule_b b = as_rule(t, "antispoof", "xennet: ARP probes");

	match_proto(&b, t, ETHERTYPE_ARP, 0);
	nft_rule_expr(&b, nft_expr_payload_nh(ARP_SPA, 4));
	nft_rule_expr(&b, nft_expr_cmp(NFT_CMP_EQ, zero, 4));
	nft_rule_verdict(&b, NF_ACCEPT);
	nft_rule_end(&b, "anti-spoofing ARP probe rule");
}

/* ether type arp iifname . arp saddr ip @as_ip4 accept */
static void rule_arp_own(const struct as_table *t)
{
	struct rule_b b = as_rule(t, "antispoof", "xennet: ARP for the vif's own addresses");

	match_proto(&b, t, ETHERTYPE_ARP, 0);
	load_iifname_and(&b, NFT_PAYLOAD_NETWORK_HEADER, ARP_SPA, 4);
	nft_rule_expr(&b, nft_expr_lookup(SET_AS_IP4.name, t->ip4_id, false));
	nft_rule_verdict(&b, NF_ACCEPT);
	nft_rule_end(&b, "anti-spoofing ARP rule");
}

/* ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept */
static void rule_dhcp_client(const struct as_table *t)
{
	static const uint8_t zero[4], dhcp_ports[4] = { 0, 68, 0, 67 };
	uint8_t udp = IPPROTO_UDP;
	struct rule_b b = as_rule(t, "antispoof", "xennet: DHCP client");

	match_proto(&b, t, ETHERTYPE_IP, NFPROTO_IPV4);
	nft_rule_expr(&b, nft_expr_payload_nh(IP_SADDR, 4));
	nft_rule_expr(&b, nft_expr_cmp(NFT_CMP_EQ, zero, 4));
	nft_rule_expr(&b, nft_expr_meta(NFT_META_L4PROTO));
	nft_rule_expr(&b, nft_expr_cmp(NFT_CMP_EQ, &udp, 1));
	nft_rule_expr(&b, nft_expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, UDP_PORTS, 4, NFT_REG_1));
	nft_rule_expr(&b, nft_expr_cmp(NFT_CMP_EQ, dhcp_ports, 4));
	nft_rule_verdict(&b, NF_ACCEPT);
	nft_rule_end(&b, "anti-spoofing DHCP rule");
}

/* iifname . ip saddr @as_ip4 accept */
static void rule_ip4_own(const struct as_table *t)
{
	struct rule_b b = as_rule(t, "antispoof", "xennet: IPv4 from the vif's own addresses");

	match_proto(&b, t, ETHERTYPE_IP, NFPROTO_IPV4);
	load_iifname_and(&b, NFT_PAYLOAD_NETWORK_HEADER, IP_SADDR, 4);
	nft_rule_expr(&b, nft_expr_lookup(SET_AS_IP4.name, t->ip4_id, false));
	nft_rule_verdict(&b, NF_ACCEPT);
	nft_rule_end(&b, "anti-spoofing IPv4 rule");
}

/* IPv6 neighbour discovery without an own global address: only what
 * cannot claim somebody else's address. DAD and MLD from ::; router and
 * neighbour solicitations and MLD from link-local; neighbour
 * advertisements from link-local only for a link-local target (a global
 * target is advertised from that address, checked by rule_ip6_own). */
struct nd_rule {
	bool link_local; /* source fe80::/10, else :: */
	uint8_t type;
	bool ll_target;
	const char *comment;
};

/* ip6 saddr ::|fe80::/10 icmpv6 type TYPE [icmpv6 target fe80::/10] accept */
static void rule_nd(const struct as_table *t, const struct nd_rule *nd)
{
	static const uint8_t zero16[16];
	static const uint8_t ll_mask[16] = { 0xff, 0xc0 };
	static const uint8_t ll_net[16] = { 0xfe, 0x80 };
	uint8_t icmp6 = IPPROTO_ICMPV6;
	struct rule_b b = as_rule(t, "antispoof", nd->comment);

	match_proto(&b, t, ETHERTYPE_IPV6, NFPROTO_IPV6);
	nft_rule_expr(&b, nft_expr_meta(NFT_META_L4PROTO));
	nft_rule_expr(&b, nft_expr_cmp(NFT_CMP_EQ, &icmp6, 1));
	nft_rule_expr(&b, nft_expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, ICMP6_TYPE, 1, NFT_REG_1));
	nft_rule_expr(&b, nft_expr_cmp(NFT_CMP_EQ, &nd->type, 1));
	nft_rule_expr(&b, nft_expr_payload_nh(IP6_SADDR, 16));
	if (nd->link_local)
		nft_rule_masked_cmp(&b, ll_mask, ll_net, 16);
	else
		nft_rule_expr(&b, nft_expr_cmp(NFT_CMP_EQ, zero16, 16));
	if (nd->ll_target) {
		nft_rule_expr(&b, nft_expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, ND_TARGET, 16,
						   NFT_REG_1));
		nft_rule_masked_cmp(&b, ll_mask, ll_net, 16);
	}
	nft_rule_verdict(&b, NF_ACCEPT);
	nft_rule_end(&b, "anti-spoofing IPv6 ND rule");
}

/* iifname . ip6 saddr @as_ip6 accept */
static void rule_ip6_own(const struct as_table *t)
{
	struct rule_b b = as_rule(t, "antispoof", "xennet: IPv6 from the vif's own addresses");

	match_proto(&b, t, ETHERTYPE_IPV6, NFPROTO_IPV6);
	load_iifname_and(&b, NFT_PAYLOAD_NETWORK_HEADER, IP6_SADDR, 16);
	nft_rule_expr(&b, nft_expr_lookup(SET_AS_IP6.name, t->ip6_id, false));
	nft_rule_verdict(&b, NF_ACCEPT);
	nft_rule_end(&b, "anti-spoofing IPv6 rule");
}

/* counter jump spoofed */
static void rule_spoofed(const struct as_table *t)
{
	struct rule_b b = as_rule(t, "antispoof", "xennet: spoofed packets");

	nft_rule_expr(&b, nftnl_expr_alloc("counter"));
	nft_rule_jump(&b, "spoofed");
	nft_rule_end(&b, "anti-spoofing drop rule");
}

/* iifname @as_ports jump antispoof */
static void rule_hook_ports(const struct as_table *t)
{
	struct rule_b b = as_rule(t, "prerouting", "xennet: vifs under anti-spoofing");

	nft_rule_expr(&b, nft_expr_meta(NFT_META_IIFNAME));
	nft_rule_expr(&b, nft_expr_lookup(SET_AS_PORTS.name, t->ports_id, false));
	nft_rule_jump(&b, "antispoof");
	nft_rule_end(&b, "anti-spoofing hook rule");
}

/* meta iifgroup 0x78656e jump antispoof
 *
 * Fail closed: a vif xennet filters is checked even if its as_ports
 * element went (with what is left of its elements: at worst it may send
 * nothing), until the element is put back. */
static void rule_hook_group(const struct as_table *t)
{
	static const uint32_t vif_group = XN_NFT_VIF_GROUP;
	struct rule_b b = as_rule(t, "prerouting", "xennet: vifs under anti-spoofing, by their device group");

	nft_rule_expr(&b, nft_expr_meta(NFT_META_IIFGROUP));
	nft_rule_expr(&b, nft_expr_cmp(NFT_CMP_EQ, &vif_group, sizeof(vif_group)));
	nft_rule_jump(&b, "antispoof");
	nft_rule_end(&b, "anti-spoofing group rule");
}

void nft_build_antispoof(struct batch *bt, bool bridge)
{
	static const struct nd_rule nd[] = {
		{ false, ND_NEIGHBOR_SOLICIT, false, "xennet: IPv6 duplicate address detection" },
		{ false, MLD2_REPORT, false, "xennet: IPv6 MLD report before an address" },
		{ true, ND_ROUTER_SOLICIT, false, "xennet: IPv6 router solicitation" },
		{ true, ND_NEIGHBOR_SOLICIT, false, "xennet: IPv6 neighbour solicitation from link-local" },
		{ true, MLD2_REPORT, false, "xennet: IPv6 MLD report" },
		{ true, ND_NEIGHBOR_ADVERT, true,
		  "xennet: IPv6 neighbour advertisement of a link-local address" },
	};
	struct as_table t = { .bt = bt, .bridge = bridge };

	t.ports_id = nft_batch_set(bt, &SET_AS_PORTS, NULL, 0, 0);
	t.ipless_id = nft_batch_set(bt, &SET_AS_IPLESS, NULL, 0, 0);
	t.mac_id = nft_batch_set(bt, &SET_AS_MAC, NULL, 0, 0);
	t.ip4_id = nft_batch_set(bt, &SET_AS_IP4, NULL, 0, 0);
	t.ip6_id = nft_batch_set(bt, &SET_AS_IP6, NULL, 0, 0);
	t.drops_id = nft_batch_set(bt, &SET_AS_DROPS, NULL, 0, 0);
	nft_batch_chain(bt, "spoofed", NULL, 0, 0);
	rule_spoofed_counted(&t);
	rule_spoofed_uncounted(&t);
	nft_batch_chain(bt, "antispoof", NULL, 0, 0);
	nft_batch_chain(bt, "prerouting", "filter", NF_INET_PRE_ROUTING, -300);

	rule_mac(&t);
	rule_ipless(&t);
	if (bridge) {
		rule_arp_sender(&t);
		rule_arp_probe(&t);
		rule_arp_own(&t);
	}
	rule_dhcp_client(&t);
	rule_ip4_own(&t);
	for (size_t k = 0; k < XN_ARRAY_SIZE(nd); k++)
		rule_nd(&t, &nd[k]);
	rule_ip6_own(&t);
	rule_spoofed(&t);
	rule_hook_ports(&t);
	rule_hook_group(&t);
}

int xn_nft_vif_elements(struct xn_nft *nft, const struct xn_nft_vif *add,
			const struct xn_nft_vif *del, struct xn_buf *err)
{
	struct batch bt;
	int r;

	r = nft_batch_open(nft, &bt);
	if (r < 0)
		return r;
	if (del) {
		bt.family = del->routed ? NFPROTO_INET : NFPROTO_BRIDGE;
		nft_batch_vif(&bt, del, false);
	}
	if (add) {
		bt.family = add->routed ? NFPROTO_INET : NFPROTO_BRIDGE;
		nft_batch_vif(&bt, add, true);
	}
	return nft_batch_close_and_send(&bt, err);
}

int xn_nft_vifs_elements_add(struct xn_nft *nft, const struct xn_nft_vif *v, size_t n,
			     struct xn_buf *err)
{
	struct batch bt;
	int r;

	if (n == 0)
		return 0;
	r = nft_batch_open(nft, &bt);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		bt.family = v[i].routed ? NFPROTO_INET : NFPROTO_BRIDGE;
		nft_batch_vif(&bt, &v[i], true);
	}
	return nft_batch_close_and_send(&bt, err);
}
