/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Expressions for nftables rules, built with libnftnl. */
#include "nft-internal.h"

int nft_add_expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (!e)
		return -ENOMEM;
	nftnl_rule_add_expr(r, e);
	return 0;
}

struct nftnl_expr *nft_expr_meta(uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	return e;
}

struct nftnl_expr *nft_expr_meta_reg(uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = nft_expr_meta(key);
	if (e)
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	return e;
}

struct nftnl_expr *nft_expr_cmp(uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	return e;
}

struct nftnl_expr *nft_expr_payload(uint32_t base, uint32_t offset,
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

struct nftnl_expr *nft_expr_payload_nh(uint32_t offset, uint32_t len)
{
	return nft_expr_payload(NFT_PAYLOAD_NETWORK_HEADER, offset, len, NFT_REG_1);
}

struct nftnl_expr *nft_expr_lookup(const char *set, uint32_t set_id,
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
int nft_add_ct_bits(struct nftnl_rule *r, uint32_t key, uint32_t mask)
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
	return nft_add_expr(r, nft_expr_cmp(NFT_CMP_NEQ, &zero, sizeof(zero)));
}

/* ct KEY & mask == 0 */
int nft_add_ct_bits_clear(struct nftnl_rule *r, uint32_t key, uint32_t mask)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	static const uint32_t zero;

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
	return nft_add_masked_cmp(r, &mask, &zero, sizeof(mask));
}

int nft_add_match_ipv4(struct nftnl_rule *r)
{
	uint8_t proto = NFPROTO_IPV4;

	int ret = nft_add_expr(r, nft_expr_meta(NFT_META_NFPROTO));
	return ret < 0 ? ret : nft_add_expr(r, nft_expr_cmp(NFT_CMP_EQ, &proto, 1));
}

struct nftnl_expr *nft_expr_lookup_map(const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = nft_expr_lookup(set, set_id, false);
	if (e)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_1);
	return e;
}

/* nat to the address in reg 1 (and the port in reg 9, the second 32-bit
 * word, when with_port). */
struct nftnl_expr *nft_expr_nat(uint32_t type, bool with_port)
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

int nft_add_jump(struct nftnl_rule *r, const char *chain)
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
int nft_add_masked_cmp(struct nftnl_rule *r, const void *mask,
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
	return nft_add_expr(r, nft_expr_cmp(NFT_CMP_EQ, value, len));
}

int nft_add_verdict(struct nftnl_rule *r, int verdict)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	nftnl_rule_add_expr(r, e);
	return 0;
}

void nft_rule_expr(struct rule_b *b, struct nftnl_expr *e)
{
	if (b->err < 0) {
		if (e)
			nftnl_expr_free(e);
		return;
	}
	b->err = nft_add_expr(b->r, e);
}

void nft_rule_ipv4(struct rule_b *b)
{
	if (b->err >= 0)
		b->err = nft_add_match_ipv4(b->r);
}

void nft_rule_ct_bits(struct rule_b *b, uint32_t key, uint32_t mask)
{
	if (b->err >= 0)
		b->err = nft_add_ct_bits(b->r, key, mask);
}

void nft_rule_ct_bits_clear(struct rule_b *b, uint32_t key, uint32_t mask)
{
	if (b->err >= 0)
		b->err = nft_add_ct_bits_clear(b->r, key, mask);
}

void nft_rule_verdict(struct rule_b *b, int verdict)
{
	if (b->err >= 0)
		b->err = nft_add_verdict(b->r, verdict);
}

void nft_rule_jump(struct rule_b *b, const char *chain)
{
	if (b->err >= 0)
		b->err = nft_add_jump(b->r, chain);
}

void nft_rule_masked_cmp(struct rule_b *b, const void *mask, const void *value, uint32_t len)
{
	if (b->err >= 0)
		b->err = nft_add_masked_cmp(b->r, mask, value, len);
}
