/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drift of the anti-spoofing sets: compare each element with what the
 * connected vifs want, and put back what someone removed or added. */
#include "nft-internal.h"

static const struct set_def *const SYNC_SETS[] = { &SET_AS_PORTS, &SET_AS_IPLESS, &SET_AS_MAC, &SET_AS_DROPS,
						   &SET_AS_IP4, &SET_AS_IP6 };

static int cmp_elem(const void *a, const void *b)
{
	const struct dead_elem *x = a, *y = b;
	int c;

	if (x->klen != y->klen)
		return x->klen < y->klen ? -1 : 1;
	c = memcmp(x->key, y->key, x->klen);
	if (c)
		return c;
	if (x->elen != y->elen)
		return x->elen < y->elen ? -1 : 1;
	return memcmp(x->key_end, y->key_end, x->elen);
}

/* What the vifs of one table want in one set, sorted. */
static int wanted_elems(const struct xn_nft_vif *vifs, size_t n, bool bridge,
			const struct set_def *set, struct dead_elem **ret, size_t *n_ret)
{
	struct dead_elem *w = calloc(16 * n + 1, sizeof(*w));
	size_t k = 0;

	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (vifs[i].routed == !bridge)
			k += nft_vif_wanted(&vifs[i], set, &w[k]);
	if (k > 1)
		qsort(w, k, sizeof(*w), cmp_elem);
	*ret = w;
	*n_ret = k;
	return 0;
}

/* One set: the elements it lacks added, those nobody wants deleted
 * (deletions first: a foreign range may overlap a wanted one). Returns
 * how many changed. */
static int sync_set(struct batch *bt, const struct xn_nft_vif *vifs, size_t n, bool bridge,
		    const struct set_def *set)
{
	struct dead_elem *want = NULL, *have = NULL, *del = NULL, *add = NULL;
	size_t n_want = 0, n_have = 0, n_del = 0, n_add = 0, i = 0, j = 0;
	int r = wanted_elems(vifs, n, bridge, set, &want, &n_want);

	if (r >= 0)
		r = nft_collect_others(bridge ? NFPROTO_BRIDGE : NFPROTO_INET, set, NULL, 0, &have,
				       &n_have);
	if (r < 0)
		goto out;
	if (n_have > 1)
		qsort(have, n_have, sizeof(*have), cmp_elem);
	del = calloc(n_have + 1, sizeof(*del));
	add = calloc(n_want + 1, sizeof(*add));
	if (!del || !add) {
		r = -ENOMEM;
		goto out;
	}
	while (i < n_want || j < n_have) {
		int c = i == n_want ? 1 : j == n_have ? -1 : cmp_elem(&want[i], &have[j]);
		if (c < 0)
			add[n_add++] = want[i++];
		else if (c > 0)
			del[n_del++] = have[j++];
		else
			i++, j++;
	}
	nft_batch_dead(bt, set, false, del, n_del);
	nft_batch_dead(bt, set, true, add, n_add);
	r = (int)(n_del + n_add);
out:
	free(want);
	free(have);
	free(del);
	free(add);
	return r;
}

int xn_nft_vifs_sync(const struct xn_nft_spec *s, const struct xn_nft_vif *vifs, size_t n,
		     struct xn_buf *err)
{
	struct batch bt;
	int changed = 0, r;

	r = nft_batch_open(&bt);
	if (r < 0)
		return r;
	for (int b = 0; b < 2 && r >= 0; b++) {
		if (!(b ? s->antispoof_bridge : s->antispoof_routed))
			continue;
		bt.family = b ? NFPROTO_BRIDGE : NFPROTO_INET;
		for (size_t k = 0; k < XN_ARRAY_SIZE(SYNC_SETS) && r >= 0; k++) {
			r = sync_set(&bt, vifs, n, b, SYNC_SETS[k]);
			changed += r > 0 ? r : 0;
		}
	}
	if (r < 0 || changed == 0) {
		nftnl_batch_free(bt.b);
		return r < 0 ? r : 0;
	}
	r = nft_batch_close_and_send(&bt, err);
	return r < 0 ? r : changed;
}

struct key_dump {
	struct dead_elem *v;
	size_t n, cap;
	int err;
};

static int add_key(const void *key, uint32_t len, const void *key_end, uint32_t elen,
		   const void *val, uint32_t dlen, void *data)
{
	struct key_dump *d = data;

	(void)key_end, (void)elen, (void)val, (void)dlen;
	if (len > sizeof(d->v->key))
		return MNL_CB_OK;
	if (xn_grow((void **)&d->v, d->n, &d->cap, sizeof(*d->v)) < 0) {
		d->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	memset(&d->v[d->n], 0, sizeof(d->v[d->n]));
	memcpy(d->v[d->n].key, key, len);
	d->v[d->n++].klen = len;
	return MNL_CB_OK;
}

static int on_keys(const struct nlmsghdr *h, void *data)
{
	return nft_for_each_elem(h, add_key, data);
}

/* Do one fixed set's elements (compared by key) match want? */
static int keys_match(const struct set_def *set, const struct elem *want, size_t n_want,
		      bool *match)
{
	struct key_dump kd = { 0 };
	struct request q = { NFT_MSG_GETSETELEM, NLM_F_DUMP, NFPROTO_INET, set->name, on_keys, &kd };
	struct dead_elem *w = calloc(n_want + 1, sizeof(*w)), *have;
	int r = w ? nft_request(&q) : -ENOMEM;
	size_t n_have = kd.n;

	have = kd.v;
	if (r >= 0 && kd.err < 0)
		r = kd.err;

	if (r >= 0) {
		for (size_t i = 0; i < n_want; i++) {
			memcpy(w[i].key, want[i].key, want[i].len);
			w[i].klen = want[i].len;
		}
		if (n_want > 1)
			qsort(w, n_want, sizeof(*w), cmp_elem);
		if (n_have > 1)
			qsort(have, n_have, sizeof(*have), cmp_elem);
		*match = n_have == n_want;
		for (size_t i = 0; *match && i < n_want; i++)
			*match = cmp_elem(&w[i], &have[i]) == 0;
	}
	free(w);
	free(have);
	return r;
}

/* The NAT table's fixed sets (its uplink, its networks) are part of the
 * ruleset: an element someone removed or added there makes the table
 * stale (replaced whole, with the elements of the others). */
int nft_nat_sets_current(const struct xn_nft_spec *s, bool *current)
{
	char ifname[IFNAMSIZ] = { 0 };
	struct elem up = { .key = ifname, .len = IFNAMSIZ };
	struct elem nets[1 + 2 * XN_ARRAY_SIZE(s->nat_networks)];
	uint32_t starts[XN_ARRAY_SIZE(s->nat_networks)], ends[XN_ARRAY_SIZE(s->nat_networks)];
	size_t n = nft_nat_network_elems(s, starts, ends, nets);
	int r;

	*current = true;
	if (!s->nat)
		return 0;
	memcpy(ifname, s->nat_uplink, strnlen(s->nat_uplink, sizeof(ifname) - 1));
	r = keys_match(&SET_NAT_UPLINKS, &up, 1, current);
	if (r >= 0 && *current)
		r = keys_match(&SET_NAT_NETWORKS, nets, n, current);
	if (r == -ENOENT) { /* no such set: stale all the same */
		*current = false;
		r = 0;
	}
	return r;
}
