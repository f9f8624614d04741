/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Public IP mappings: the DNAT/SNAT maps and forward sets changed in one
 * batch, element by element, against what the kernel has. */
#include "nft-internal.h"

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
void nft_batch_mappings(struct batch *bt, const struct xn_mapping *maps, size_t n_maps,
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
	nft_batch_elems(bt, &MAP_DNAT, add, el, n_maps);
	nft_batch_elems(bt, &MAP_SNAT, add, el + n_maps, n_maps);
	nft_batch_elems(bt, &MAP_FWD, add, el + 2 * n_maps, n_fwds);
out:
	free(ent);
	free(el);
}

void nft_batch_publics(struct batch *bt, const struct xn_addr *a, size_t n, bool add)
{
	struct elem *el = calloc(n + 1, sizeof(*el));

	if (!el) {
		bt->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < n; i++)
		el[i] = (struct elem){ .key = &a[i].v4, .len = 4 };
	nft_batch_elems(bt, &SET_PUBLICS, add, el, n);
	free(el);
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
	return nft_for_each_elem(h, add_map_elem, data);
}

static int dump_map(struct xn_nft *nft, const struct set_def *d, struct elem_dump *out)
{
	struct request q = { NFT_MSG_GETSETELEM, NLM_F_DUMP, NFPROTO_INET, d->name, on_map_elems, out };
	int r;

	*out = (struct elem_dump){ 0 };
	r = nft_request(nft, &q);
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
static int diff_map(struct xn_nft *nft, const struct set_def *d, const struct elem_dump *want,
		    size_t dlen, struct map_diff *out)
{
	struct elem_dump have;
	int r = dump_map(nft, d, &have);

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
	nft_batch_elems(bt, d, add, el, e->n);
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

int xn_nft_maps_sync(struct xn_nft *nft, const struct xn_mapset *want, bool maps_in_place,
		     const struct xn_addr *publics, size_t n_publics,
		     struct xn_addr **changed, size_t *n_changed, struct xn_buf *err)
{
	unsigned sets = maps_in_place ? XN_NFT_SET_PUBLICS : XN_NFT_SETS_ALL;

	return xn_nft_maps_sync_sets(nft, want, sets, publics, n_publics, changed, n_changed, err);
}

static void elem_dump_free(struct elem_dump *d)
{
	free(d->v);
}

int xn_nft_maps_sync_sets(struct xn_nft *nft, const struct xn_mapset *want, unsigned sets,
			  const struct xn_addr *publics, size_t n_publics,
			  struct xn_addr **changed, size_t *n_changed, struct xn_buf *err)
{
	XN_CLEANUP(elem_dump_free) struct elem_dump w_dnat = { 0 };
	XN_CLEANUP(elem_dump_free) struct elem_dump w_snat = { 0 };
	XN_CLEANUP(elem_dump_free) struct elem_dump w_fwd = { 0 };
	XN_CLEANUP(elem_dump_free) struct elem_dump w_pub = { 0 };
	XN_CLEANUP(map_diff_free) struct map_diff dnat = { 0 };
	XN_CLEANUP(map_diff_free) struct map_diff snat = { 0 };
	XN_CLEANUP(map_diff_free) struct map_diff fwd = { 0 };
	XN_CLEANUP(map_diff_free) struct map_diff pub = { 0 };
	_cleanup_free_ struct xn_addr *moved = NULL;
	size_t n_moved = 0;
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
	/* Each dump of a large fixed-size map costs milliseconds: only those
	 * asked for. */
	if (r >= 0 && (sets & XN_NFT_SET_DNAT))
		r = diff_map(nft, &MAP_DNAT, &w_dnat, 4, &dnat);
	if (r >= 0 && (sets & XN_NFT_SET_SNAT))
		r = diff_map(nft, &MAP_SNAT, &w_snat, 4, &snat);
	if (r >= 0 && (sets & XN_NFT_SET_FWD))
		r = diff_map(nft, &MAP_FWD, &w_fwd, 8, &fwd);
	if (r >= 0 && (sets & XN_NFT_SET_PUBLICS))
		r = diff_map(nft, &SET_PUBLICS, &w_pub, 0, &pub);
	if (r >= 0)
		r = list_changed(&dnat, &w_dnat, &fwd, &w_fwd, &moved, &n_moved);
	if (r < 0)
		return r;
	if (dnat.del.n || dnat.add.n || snat.del.n || snat.add.n || fwd.del.n || fwd.add.n ||
	    pub.del.n || pub.add.n) {
		r = nft_batch_open(nft, &bt);
		if (r < 0)
			return r;
		bt.family = NFPROTO_INET;
		batch_entries(&bt, &MAP_DNAT, false, &dnat.del, 4, 0);
		batch_entries(&bt, &MAP_SNAT, false, &snat.del, 4, 0);
		batch_entries(&bt, &MAP_FWD, false, &fwd.del, 12, 0);
		batch_entries(&bt, &SET_PUBLICS, false, &pub.del, 4, 0);
		batch_entries(&bt, &MAP_DNAT, true, &dnat.add, 4, 4);
		batch_entries(&bt, &MAP_SNAT, true, &snat.add, 4, 4);
		batch_entries(&bt, &MAP_FWD, true, &fwd.add, 12, 8);
		batch_entries(&bt, &SET_PUBLICS, true, &pub.add, 4, 0);
		r = nft_batch_close_and_send(&bt, err);
		if (r < 0)
			return r;
	}
	*changed = XN_TAKE_PTR(moved);
	*n_changed = n_moved;
	return r;
}

int xn_nft_mapping_update(struct xn_nft *nft, const struct xn_mapping *add_m, const struct xn_mapping *del_m,
			  const struct xn_forward *add_f, const struct xn_forward *del_f,
			  const struct xn_addr *add_pub, const struct xn_addr *del_pub,
			  struct xn_buf *err)
{
	struct batch bt;
	int r = nft_batch_open(nft, &bt);

	if (r < 0)
		return r;
	bt.family = NFPROTO_INET;
	nft_batch_mappings(&bt, del_m, del_m ? 1 : 0, del_f, del_f ? 1 : 0, false);
	if (del_pub)
		nft_batch_publics(&bt, del_pub, 1, false);
	nft_batch_mappings(&bt, add_m, add_m ? 1 : 0, add_f, add_f ? 1 : 0, true);
	if (add_pub)
		nft_batch_publics(&bt, add_pub, 1, true);
	return nft_batch_close_and_send(&bt, err);
}
