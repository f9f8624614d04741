/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drift of the anti-spoofing sets: compare each element with what the
 * connected vifs want, and put back what someone removed or added. */
#include "nft-internal.h"

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
		qsort(w, k, sizeof(*w), nft_dead_elem_cmp);
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
		r = nft_collect_others(bt->nft, bridge ? NFPROTO_BRIDGE : NFPROTO_INET, set, NULL, 0,
				       &have, &n_have);
	if (r < 0)
		goto out;
	if (n_have > 1)
		qsort(have, n_have, sizeof(*have), nft_dead_elem_cmp);
	del = calloc(n_have + 1, sizeof(*del));
	add = calloc(n_want + 1, sizeof(*add));
	if (!del || !add) {
		r = -ENOMEM;
		goto out;
	}
	while (i < n_want || j < n_have) {
		int c = i == n_want ? 1 : j == n_have ? -1 : nft_dead_elem_cmp(&want[i], &have[j]);
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

int xn_nft_vifs_sync(struct xn_nft *nft, const struct xn_nft_spec *s, const struct xn_nft_vif *vifs, size_t n,
		     struct xn_buf *err)
{
	struct batch bt;
	int changed = 0, r;

	r = nft_batch_open(nft, &bt);
	if (r < 0)
		return r;
	for (int b = 0; b < 2 && r >= 0; b++) {
		if (!(b ? s->antispoof_bridge : s->antispoof_routed))
			continue;
		bt.family = b ? NFPROTO_BRIDGE : NFPROTO_INET;
		for (size_t k = 0; k < N_AS_SETS && r >= 0; k++) {
			r = sync_set(&bt, vifs, n, b, AS_SETS[k]);
			changed += r > 0 ? r : 0;
		}
	}
	if (r < 0 || changed == 0) {
		nft_batch_abort(&bt);
		return r < 0 ? r : 0;
	}
	r = nft_batch_close_and_send(&bt, err);
	return r < 0 ? r : changed;
}
