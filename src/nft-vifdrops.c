/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spoofed packets dropped per vif: the counters of the as_drops
 * elements, in both tables. */
#include "nft-internal.h"

struct drops_acc {
	struct xn_nft_vif_drops *v;
	size_t n;
	int err;
};

static int on_elem_counter(struct nftnl_expr *e, void *data)
{
	struct xn_nft_vif_drops *d = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (name && strcmp(name, "counter") == 0) {
		d->packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		d->bytes += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
	}
	return MNL_CB_OK;
}

/* A vif filtered in both tables (never today) is counted once, summed. */
static int add_elem(struct drops_acc *acc, struct nftnl_set_elem *e)
{
	struct xn_nft_vif_drops d = { 0 }, *v;
	uint32_t len = 0;
	const void *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);

	if (!key || len != IFNAMSIZ)
		return 0;
	memcpy(d.ifname, key, IFNAMSIZ - 1);
	nftnl_set_elem_expr_foreach(e, on_elem_counter, &d);
	for (size_t i = 0; i < acc->n; i++)
		if (strcmp(acc->v[i].ifname, d.ifname) == 0) {
			acc->v[i].packets += d.packets;
			acc->v[i].bytes += d.bytes;
			return 0;
		}
	v = reallocarray(acc->v, acc->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	acc->v = v;
	v[acc->n++] = d;
	return 0;
}

static int on_drop_elems(const struct nlmsghdr *h, void *data)
{
	struct drops_acc *acc = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it = NULL;
	struct nftnl_set_elem *e;

	if (!s) {
		acc->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_set_elems_nlmsg_parse(h, s) >= 0)
		it = nftnl_set_elems_iter_create(s);
	while (it && acc->err >= 0 && (e = nftnl_set_elems_iter_next(it)))
		acc->err = add_elem(acc, e);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return acc->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

int xn_nft_vif_drops(struct xn_nft *nft, struct xn_nft_vif_drops **ret, size_t *n)
{
	static const uint16_t families[] = { NFPROTO_INET, NFPROTO_BRIDGE };
	struct drops_acc acc = { 0 };
	int r = 0;

	for (size_t f = 0; f < XN_ARRAY_SIZE(families) && r >= 0 && acc.err >= 0; f++) {
		struct request q = { NFT_MSG_GETSETELEM, NLM_F_DUMP, families[f],
				     SET_AS_DROPS.name, on_drop_elems, &acc };
		r = nft_request(nft, &q);
		if (r == -ENOENT) /* no table, or one without the set */
			r = 0;
	}
	if (r >= 0 && acc.err < 0)
		r = acc.err;
	if (r < 0) {
		free(acc.v);
		return r;
	}
	*ret = acc.v;
	*n = acc.n;
	return 0;
}
