/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Anti-spoofing elements of vifs that vanished while xennetd was away. */
#include "nft-internal.h"

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
	return nft_for_each_elem(h, add_dead_elem, data);
}

int nft_collect_others(struct xn_nft *nft, uint16_t family, const struct set_def *set,
		       const char (*keep)[IFNAMSIZ], size_t n_keep,
		       struct dead_elem **ret, size_t *n)
{
	struct purge_acc p = { .keep = keep, .n_keep = n_keep };
	struct request q = { NFT_MSG_GETSETELEM, NLM_F_DUMP, family, set->name, on_elems, &p };
	int r = nft_request(nft, &q);

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

void nft_batch_dead(struct batch *bt, const struct set_def *set, bool add,
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
	nft_batch_elems(bt, set, add, el, n);
	free(el);
}

int xn_nft_purge_others(struct xn_nft *nft, const char (*keep)[IFNAMSIZ], size_t n_keep,
			struct xn_buf *err)
{
	static const uint16_t families[] = { NFPROTO_INET, NFPROTO_BRIDGE };
	struct purge_acc p = { .keep = keep, .n_keep = n_keep };
	struct batch bt;
	size_t purged = 0;
	int r;

	r = nft_batch_open(nft, &bt);
	if (r < 0)
		return r;
	for (size_t f = 0; f < XN_ARRAY_SIZE(families) && r >= 0; f++) {
		struct table_info ti;
		if (nft_get_table(nft, families[f], &ti) < 0)
			continue;
		bt.family = families[f];
		for (size_t i = 0; i < N_AS_SETS && r >= 0; i++) {
			struct request q = { NFT_MSG_GETSETELEM, NLM_F_DUMP, families[f], AS_SETS[i]->name,
					     on_elems, &p };
			p.n_dead = 0;
			r = nft_request(nft, &q);
			if (r == -ENOENT) /* a table without that set */
				r = 0;
			if (r >= 0 && p.err < 0)
				r = p.err;
			if (r >= 0)
				nft_batch_dead(&bt, AS_SETS[i], false, p.dead, p.n_dead);
			free(p.dead);
			p.dead = NULL;
		}
	}
	if (r < 0) {
		nft_batch_abort(&bt);
		return r;
	}
	purged = p.n_purged;
	r = nft_batch_close_and_send(&bt, err);
	return r < 0 ? r : (int)purged;
}
