/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Anti-spoofing: per-vif sets (MAC, addresses, ports) and the rules
 * that check what a vif sends against them. */
#include "nft-internal.h"

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
	if (set == &SET_AS_PORTS || (set == &SET_AS_IPLESS && v->n_ips == 0)) {
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
	/* Last: the port is checked only once its allow-lists exist (all in
	 * one transaction anyway). */
	nft_batch_elems(bt, &SET_AS_PORTS, add, &port, 1);
	free(k);
}

void nft_build_antispoof(struct batch *bt, bool bridge)
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

	ports_id = nft_batch_set(bt, &SET_AS_PORTS, NULL, 0, 0);
	ipless_id = nft_batch_set(bt, &SET_AS_IPLESS, NULL, 0, 0);
	mac_id = nft_batch_set(bt, &SET_AS_MAC, NULL, 0, 0);
	ip4_id = nft_batch_set(bt, &SET_AS_IP4, NULL, 0, 0);
	ip6_id = nft_batch_set(bt, &SET_AS_IP6, NULL, 0, 0);
	nft_batch_chain(bt, "antispoof", NULL, 0, 0);
	nft_batch_chain(bt, "prerouting", "filter", NF_INET_PRE_ROUTING, -300);

	/* Match the protocol: by ethertype on a bridge, by nfproto in inet. */
#define PROTO(rule, etype, nfproto)                                                   \
	(bridge ? (nft_add_expr(rule, nft_expr_payload(NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1)) < 0 \
			   ? -ENOMEM                                                       \
			   : nft_add_expr(rule, nft_expr_cmp(NFT_CMP_EQ, etype, 2)))               \
		: (nft_add_expr(rule, nft_expr_meta(NFT_META_NFPROTO)) < 0                          \
			   ? -ENOMEM                                                       \
			   : nft_add_expr(rule, nft_expr_cmp(NFT_CMP_EQ, &(uint8_t){ nfproto }, 1))))
#define IIFNAME_AND(rule, base, off, len)                                             \
	(nft_add_expr(rule, nft_expr_meta(NFT_META_IIFNAME)) < 0                                  \
		 ? -ENOMEM                                                                \
		 : nft_add_expr(rule, nft_expr_payload(base, off, len, NFT_REG_2)))
	uint16_t fam = bridge ? NFPROTO_BRIDGE : NFPROTO_INET;

	r = nft_rule_new(fam, "antispoof", "xennet: frames from a MAC that is not the vif's");
	ret = r ? IIFNAME_AND(r, NFT_PAYLOAD_LL_HEADER, 6, 6) : -ENOMEM;
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_lookup(SET_AS_MAC.name, mac_id, true));
	if (ret >= 0)
		ret = nft_add_expr(r, nftnl_expr_alloc("counter"));
	if (ret >= 0)
		ret = nft_add_verdict(r, NF_DROP);
	nft_batch_rule(bt, r, ret, "anti-spoofing MAC rule");

	r = nft_rule_new(fam, "antispoof", "xennet: vifs without addresses are checked by MAC only");
	ret = r ? nft_add_expr(r, nft_expr_meta(NFT_META_IIFNAME)) : -ENOMEM;
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_lookup(SET_AS_IPLESS.name, ipless_id, false));
	if (ret >= 0)
		ret = nft_add_verdict(r, NF_ACCEPT);
	nft_batch_rule(bt, r, ret, "anti-spoofing MAC-only rule");

	if (bridge) {
		r = nft_rule_new(fam, "antispoof", "xennet: ARP with a sender MAC that is not the vif's");
		ret = r ? PROTO(r, arp_type, 0) : -ENOMEM;
		if (ret >= 0)
			ret = IIFNAME_AND(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 6);
		if (ret >= 0)
			ret = nft_add_expr(r, nft_expr_lookup(SET_AS_MAC.name, mac_id, true));
		if (ret >= 0)
			ret = nft_add_expr(r, nftnl_expr_alloc("counter"));
		if (ret >= 0)
			ret = nft_add_verdict(r, NF_DROP);
		nft_batch_rule(bt, r, ret, "anti-spoofing ARP sender rule");

		r = nft_rule_new(fam, "antispoof", "xennet: ARP probes");
		ret = r ? PROTO(r, arp_type, 0) : -ENOMEM;
		if (ret >= 0)
			ret = nft_add_expr(r, nft_expr_payload_nh(14, 4));
		if (ret >= 0)
			ret = nft_add_expr(r, nft_expr_cmp(NFT_CMP_EQ, zero16, 4));
		if (ret >= 0)
			ret = nft_add_verdict(r, NF_ACCEPT);
		nft_batch_rule(bt, r, ret, "anti-spoofing ARP probe rule");

		r = nft_rule_new(fam, "antispoof", "xennet: ARP for the vif's own addresses");
		ret = r ? PROTO(r, arp_type, 0) : -ENOMEM;
		if (ret >= 0)
			ret = IIFNAME_AND(r, NFT_PAYLOAD_NETWORK_HEADER, 14, 4);
		if (ret >= 0)
			ret = nft_add_expr(r, nft_expr_lookup(SET_AS_IP4.name, ip4_id, false));
		if (ret >= 0)
			ret = nft_add_verdict(r, NF_ACCEPT);
		nft_batch_rule(bt, r, ret, "anti-spoofing ARP rule");
	}

	r = nft_rule_new(fam, "antispoof", "xennet: DHCP client");
	ret = r ? PROTO(r, ip_type, NFPROTO_IPV4) : -ENOMEM;
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_payload_nh(12, 4));
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_cmp(NFT_CMP_EQ, zero16, 4));
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_meta(NFT_META_L4PROTO));
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_cmp(NFT_CMP_EQ, &udp, 1));
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 4, NFT_REG_1));
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_cmp(NFT_CMP_EQ, dhcp_ports, 4));
	if (ret >= 0)
		ret = nft_add_verdict(r, NF_ACCEPT);
	nft_batch_rule(bt, r, ret, "anti-spoofing DHCP rule");

	r = nft_rule_new(fam, "antispoof", "xennet: IPv4 from the vif's own addresses");
	ret = r ? PROTO(r, ip_type, NFPROTO_IPV4) : -ENOMEM;
	if (ret >= 0)
		ret = IIFNAME_AND(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_lookup(SET_AS_IP4.name, ip4_id, false));
	if (ret >= 0)
		ret = nft_add_verdict(r, NF_ACCEPT);
	nft_batch_rule(bt, r, ret, "anti-spoofing IPv4 rule");

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
		r = nft_rule_new(fam, "antispoof", nd[k].comment);
		ret = r ? PROTO(r, ip6_type, NFPROTO_IPV6) : -ENOMEM;
		if (ret >= 0)
			ret = nft_add_expr(r, nft_expr_meta(NFT_META_L4PROTO));
		if (ret >= 0)
			ret = nft_add_expr(r, nft_expr_cmp(NFT_CMP_EQ, &icmp6, 1));
		if (ret >= 0)
			ret = nft_add_expr(r, nft_expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1));
		if (ret >= 0)
			ret = nft_add_expr(r, nft_expr_cmp(NFT_CMP_EQ, &nd[k].type, 1));
		if (ret >= 0)
			ret = nft_add_expr(r, nft_expr_payload_nh(8, 16));
		if (ret >= 0)
			ret = nd[k].link_local ? nft_add_masked_cmp(r, ll_mask, ll_net, 16)
					       : nft_add_expr(r, nft_expr_cmp(NFT_CMP_EQ, zero16, 16));
		if (ret >= 0 && nd[k].ll_target)
			ret = nft_add_expr(r, nft_expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, NFT_REG_1));
		if (ret >= 0 && nd[k].ll_target)
			ret = nft_add_masked_cmp(r, ll_mask, ll_net, 16);
		if (ret >= 0)
			ret = nft_add_verdict(r, NF_ACCEPT);
		nft_batch_rule(bt, r, ret, "anti-spoofing IPv6 ND rule");
	}

	r = nft_rule_new(fam, "antispoof", "xennet: IPv6 from the vif's own addresses");
	ret = r ? PROTO(r, ip6_type, NFPROTO_IPV6) : -ENOMEM;
	if (ret >= 0)
		ret = IIFNAME_AND(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 16);
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_lookup(SET_AS_IP6.name, ip6_id, false));
	if (ret >= 0)
		ret = nft_add_verdict(r, NF_ACCEPT);
	nft_batch_rule(bt, r, ret, "anti-spoofing IPv6 rule");

	r = nft_rule_new(fam, "antispoof", "xennet: spoofed packets");
	ret = r ? nft_add_expr(r, nftnl_expr_alloc("counter")) : -ENOMEM;
	if (ret >= 0)
		ret = nft_add_verdict(r, NF_DROP);
	nft_batch_rule(bt, r, ret, "anti-spoofing drop rule");

	r = nft_rule_new(fam, "prerouting", "xennet: vifs under anti-spoofing");
	ret = r ? nft_add_expr(r, nft_expr_meta(NFT_META_IIFNAME)) : -ENOMEM;
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_lookup(SET_AS_PORTS.name, ports_id, false));
	if (ret >= 0)
		ret = nft_add_jump(r, "antispoof");
	nft_batch_rule(bt, r, ret, "anti-spoofing hook rule");

	/* Fail closed: a vif xennet filters is checked even if its as_ports
	 * element went (with what is left of its elements: at worst it may
	 * send nothing), until the element is put back. */
	static const uint32_t vif_group = XN_NFT_VIF_GROUP;
	r = nft_rule_new(fam, "prerouting", "xennet: vifs under anti-spoofing, by their device group");
	ret = r ? nft_add_expr(r, nft_expr_meta(NFT_META_IIFGROUP)) : -ENOMEM;
	if (ret >= 0)
		ret = nft_add_expr(r, nft_expr_cmp(NFT_CMP_EQ, &vif_group, sizeof(vif_group)));
	if (ret >= 0)
		ret = nft_add_jump(r, "antispoof");
	nft_batch_rule(bt, r, ret, "anti-spoofing group rule");
#undef PROTO
#undef IIFNAME_AND
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
