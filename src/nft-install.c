/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xennet's tables replaced whole, in one batch: the ruleset, the NAT maps
 * with the mappings in force, the anti-spoofing sets with the vifs'
 * elements. */
#include "nft-internal.h"

/* Filter elements of vifs the caller does not know about (a restart
 * before xenstore answers), per table ([0] inet, [1] bridge) and set:
 * kept across the replacement, or those vifs would run unfiltered until
 * they are found again. */
struct others {
	struct dead_elem *elems[2][XN_ARRAY_SIZE(AS_SETS)];
	size_t n[2][XN_ARRAY_SIZE(AS_SETS)];
};

static void others_free(struct others *o)
{
	for (int b = 0; b < 2; b++)
		for (size_t k = 0; k < XN_ARRAY_SIZE(AS_SETS); k++)
			free(o->elems[b][k]);
}

static int others_collect(struct xn_nft *nft, const struct xn_nft_spec *s,
			  const struct xn_nft_dynamic *dyn, struct others *o)
{
	const struct xn_nft_vif *vifs = dyn ? dyn->vifs : NULL;
	size_t n_vifs = dyn ? dyn->n_vifs : 0;
	char (*keep)[IFNAMSIZ] = calloc(n_vifs + 1, IFNAMSIZ);

	*o = (struct others){ 0 };
	if (!keep)
		return -ENOMEM;
	for (size_t i = 0; i < n_vifs; i++)
		memcpy(keep[i], vifs[i].ifname, IFNAMSIZ);
	for (int b = 0; b < 2; b++) {
		if (!(b ? s->antispoof_bridge : s->antispoof_routed))
			continue;
		/* One that cannot be read is not kept: the replacement
		 * goes on (as a table made anew has none). */
		for (size_t k = 0; k < XN_ARRAY_SIZE(AS_SETS); k++)
			nft_collect_others(nft, b ? NFPROTO_BRIDGE : NFPROTO_INET, AS_SETS[k],
					   (const char (*)[IFNAMSIZ])keep, n_vifs, &o->elems[b][k],
					   &o->n[b][k]);
	}
	free(keep);
	return 0;
}

/* What lives in the sets and maps of a table just made. */
static void batch_dynamic(struct batch *bt, const struct xn_nft_spec *s, bool bridge,
			  const struct xn_nft_dynamic *dyn, const struct others *o)
{
	if (!bridge && s->nat) {
		if (dyn && dyn->maps)
			nft_batch_mappings(bt, dyn->maps->maps, dyn->maps->n_maps, dyn->maps->fwds,
					   dyn->maps->n_fwds, true);
		if (dyn && dyn->n_publics)
			nft_batch_publics(bt, dyn->publics, dyn->n_publics, true);
	}
	if (!(bridge ? s->antispoof_bridge : s->antispoof_routed))
		return;
	for (size_t i = 0; dyn && i < dyn->n_vifs; i++)
		if (dyn->vifs[i].routed == !bridge)
			nft_batch_vif(bt, &dyn->vifs[i], true);
	for (size_t k = 0; k < XN_ARRAY_SIZE(AS_SETS); k++)
		nft_batch_dead(bt, AS_SETS[k], true, o->elems[bridge][k], o->n[bridge][k]);
}

/* One family's table: the old one deleted (if any), the new one made (if
 * wanted) with its rules and elements. */
static int batch_table(struct batch *bt, uint16_t family, const struct xn_nft_spec *s,
		       const struct xn_nft_dynamic *dyn, const struct nat_room *room,
		       const struct others *o)
{
	bool bridge = family == NFPROTO_BRIDGE;
	char fp[64];
	size_t nrules;
	int r;

	bt->family = family;
	/* "add; delete" removes the table whether or not it existed, in the
	 * same transaction as the new one: packets never see a moment
	 * without it. */
	nft_batch_table(bt, NFT_MSG_NEWTABLE, NLM_F_CREATE, NULL, "table (probe)");
	nft_batch_table(bt, NFT_MSG_DELTABLE, 0, NULL, "table (delete old)");
	if (!(bridge ? nft_want_bridge(s) : nft_want_inet(s)))
		return 0;
	r = nft_fingerprint(s, family, fp, &nrules);
	if (r < 0)
		return r;
	nft_batch_table(bt, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, fp,
			bridge ? "table bridge " XN_NFT_TABLE : "table inet " XN_NFT_TABLE);
	if (!bridge && s->nat)
		nft_build_nat(bt, s, room);
	if (bridge ? s->antispoof_bridge : s->antispoof_routed)
		nft_build_antispoof(bt, bridge);
	batch_dynamic(bt, s, bridge, dyn, o);
	return 0;
}

static int install(struct xn_nft *nft, const struct xn_nft_spec *s,
		   const struct xn_nft_dynamic *dyn, struct xn_buf *err)
{
	static const uint16_t families[] = { NFPROTO_INET, NFPROTO_BRIDGE };
	struct nat_room room = nft_nat_room_of(dyn);
	struct others o;
	struct batch bt;
	int r = others_collect(nft, s, dyn, &o);

	if (r < 0)
		return r;
	if (dyn && dyn->grow_nat)
		nft_nat_room_grow(nft, &room);
	r = nft_batch_open(nft, &bt);
	for (size_t f = 0; r >= 0 && f < XN_ARRAY_SIZE(families); f++)
		r = batch_table(&bt, families[f], s, dyn, &room, &o);
	others_free(&o);
	if (r < 0) {
		nft_batch_abort(&bt);
		return r;
	}
	return nft_batch_close_and_send(&bt, err);
}

int xn_nft_install(struct xn_nft *nft, const struct xn_nft_spec *s,
		   const struct xn_nft_dynamic *dyn, struct xn_buf *err)
{
	int64_t t0 = xn_now_us();
	int r = install(nft, s, dyn, err);

	nft->install_us = (long)(xn_now_us() - t0);
	return r;
}

long xn_nft_take_install_us(struct xn_nft *nft)
{
	long us = nft->install_us;

	nft->install_us = -1;
	return us;
}
