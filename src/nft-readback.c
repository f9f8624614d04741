/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading xennet's tables back from the kernel: requests and dumps. */
#include "nft-internal.h"

static int udata_comment_cb(const struct nftnl_udata *attr, void *data)
{
	const char **out = data;
	uint8_t len = nftnl_udata_len(attr);
	const char *v = nftnl_udata_get(attr);

	/* Both table and rule comments use type 0; check it is a string. */
	if (nftnl_udata_type(attr) == NFTNL_UDATA_TABLE_COMMENT && len > 0 &&
	    v[len - 1] == '\0')
		*out = v;
	return MNL_CB_OK;
}

static const char *udata_comment(const void *data, uint32_t len)
{
	const char *c = NULL;

	if (data && len)
		nftnl_udata_parse(data, len, udata_comment_cb, &c);
	return c;
}

int nft_dead_elem_cmp(const void *a, const void *b)
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

static int on_table(const struct nlmsghdr *h, void *data)
{
	struct table_info *ti = data;
	struct nftnl_table *t = nftnl_table_alloc();
	const char *c;
	uint32_t len = 0;
	const void *ud;

	if (!t)
		return MNL_CB_ERROR;
	if (nftnl_table_nlmsg_parse(h, t) < 0) {
		nftnl_table_free(t);
		return MNL_CB_OK;
	}
	ti->found = true;
	ud = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);
	c = udata_comment(ud, len);
	if (c)
		snprintf(ti->comment, sizeof(ti->comment), "%s", c);
	nftnl_table_free(t);
	return MNL_CB_OK;
}

int nft_get_table(struct xn_nft *nft, uint16_t family, struct table_info *ti)
{
	struct request q = { NFT_MSG_GETTABLE, 0, family, NULL, on_table, ti };

	*ti = (struct table_info){ 0 };
	return nft_request(nft, &q);
}

int nft_for_each_elem(const struct nlmsghdr *h, elem_fn fn, void *userdata)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	int r = MNL_CB_OK;

	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(h, s) < 0) {
		nftnl_set_free(s);
		return MNL_CB_OK;
	}
	it = nftnl_set_elems_iter_create(s);
	for (e = it ? nftnl_set_elems_iter_next(it) : NULL; e && r == MNL_CB_OK;
	     e = nftnl_set_elems_iter_next(it)) {
		uint32_t klen = 0, elen = 0, dlen = 0;
		const void *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
		const void *key_end = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &elen);
		const void *data = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &dlen);
		if (key)
			r = fn(key, klen, key_end, elen, data, dlen, userdata);
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return r;
}

struct rules_acc {
	struct xn_nft_rule_info *v;
	size_t n;
	uint16_t family;
	int err;
};

static int on_counter(struct nftnl_expr *e, void *data)
{
	struct xn_nft_rule_info *ri = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (name && strcmp(name, "counter") == 0) {
		ri->packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		ri->bytes += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
	}
	return MNL_CB_OK;
}

static int on_rule(const struct nlmsghdr *h, void *data)
{
	struct rules_acc *acc = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct xn_nft_rule_info *ri, *v;
	const char *chain, *c;
	const void *ud;
	uint32_t len = 0;

	if (!r)
		return MNL_CB_ERROR;
	if (nftnl_rule_nlmsg_parse(h, r) < 0)
		goto out;
	v = reallocarray(acc->v, acc->n + 1, sizeof(*v));
	if (!v) {
		acc->err = -ENOMEM;
		nftnl_rule_free(r);
		return MNL_CB_ERROR;
	}
	acc->v = v;
	ri = &v[acc->n++];
	*ri = (struct xn_nft_rule_info){ 0 };
	snprintf(ri->family, sizeof(ri->family), "%s", nft_family_name(acc->family));
	chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
	snprintf(ri->chain, sizeof(ri->chain), "%s", chain ? chain : "?");
	ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
	c = udata_comment(ud, len);
	snprintf(ri->comment, sizeof(ri->comment), "%s", c ? c : "");
	nftnl_expr_foreach(r, on_counter, ri);
out:
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

int xn_nft_list_rules(struct xn_nft *nft, struct xn_nft_rule_info **ret, size_t *n)
{
	static const uint16_t families[] = { NFPROTO_INET, NFPROTO_BRIDGE };
	struct rules_acc acc = { 0 };
	bool any = false;
	int r = 0;

	for (size_t f = 0; f < XN_ARRAY_SIZE(families); f++) {
		struct table_info ti;
		struct request q = { NFT_MSG_GETRULE, NLM_F_DUMP, families[f], NULL, on_rule, &acc };

		r = nft_get_table(nft, families[f], &ti);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		any = true;
		acc.family = families[f];
		r = nft_request(nft, &q);
		if (r < 0 || acc.err < 0)
			break;
	}
	if (r >= 0 && acc.err < 0)
		r = acc.err;
	if (r >= 0 && !any)
		r = -ENOENT;
	if (r < 0) {
		free(acc.v);
		return r;
	}
	*ret = acc.v;
	*n = acc.n;
	return 0;
}

static int count_rules(struct xn_nft *nft, uint16_t family, size_t *n)
{
	struct rules_acc acc = { .family = family };
	struct request q = { NFT_MSG_GETRULE, NLM_F_DUMP, family, NULL, on_rule, &acc };
	int r = nft_request(nft, &q);

	*n = acc.n;
	free(acc.v);
	return r < 0 ? r : acc.err;
}

/* The sizes of the NAT maps, to know whether they have room. */
struct nat_sizes {
	uint32_t dnat, snat, fwd, publics;
};

static int on_set(const struct nlmsghdr *h, void *data)
{
	struct nat_sizes *z = data;
	struct nftnl_set *s = nftnl_set_alloc();
	const char *name;
	uint32_t size;

	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_nlmsg_parse(h, s) < 0) {
		nftnl_set_free(s);
		return MNL_CB_OK;
	}
	name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	size = nftnl_set_is_set(s, NFTNL_SET_DESC_SIZE) ? nftnl_set_get_u32(s, NFTNL_SET_DESC_SIZE) : 0;
	if (name && strcmp(name, MAP_DNAT.name) == 0)
		z->dnat = size;
	else if (name && strcmp(name, MAP_SNAT.name) == 0)
		z->snat = size;
	else if (name && strcmp(name, MAP_FWD.name) == 0)
		z->fwd = size;
	else if (name && strcmp(name, SET_PUBLICS.name) == 0)
		z->publics = size;
	nftnl_set_free(s);
	return MNL_CB_OK;
}

static int nat_sizes_get(struct xn_nft *nft, struct nat_sizes *z)
{
	struct request q = { NFT_MSG_GETSET, NLM_F_DUMP, NFPROTO_INET, NULL, on_set, z };

	*z = (struct nat_sizes){ 0 };
	return nft_request(nft, &q);
}

/* The maps were full: room for at least as many as they hold now, so
 * that they come out (at least) twice as large. */
void nft_nat_room_grow(struct xn_nft *nft, struct nat_room *room)
{
	struct nat_sizes z;

	if (nat_sizes_get(nft, &z) < 0)
		return;
	room->maps = z.dnat > room->maps ? z.dnat : room->maps;
	room->maps = z.snat > room->maps ? z.snat : room->maps;
	room->fwds = z.fwd > room->fwds ? z.fwd : room->fwds;
	room->publics = z.publics > room->publics ? z.publics : room->publics;
}

/* Do the NAT maps in the kernel have room for dyn and one more? Maps
 * without a size (made by an older xennet) are replaced too. */
static int nat_room_enough(struct xn_nft *nft, const struct xn_nft_dynamic *dyn, bool *enough)
{
	struct nat_room room = nft_nat_room_of(dyn);
	struct nat_sizes z;
	int r = nat_sizes_get(nft, &z);

	if (r < 0)
		return r;
	*enough = z.dnat > room.maps && z.snat > room.maps && z.fwd > room.fwds &&
		  z.publics > room.publics;
	return 0;
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
static int keys_match(struct xn_nft *nft, const struct set_def *set, const struct elem *want, size_t n_want,
		      bool *match)
{
	struct key_dump kd = { 0 };
	struct request q = { NFT_MSG_GETSETELEM, NLM_F_DUMP, NFPROTO_INET, set->name, on_keys, &kd };
	struct dead_elem *w = calloc(n_want + 1, sizeof(*w)), *have;
	int r = w ? nft_request(nft, &q) : -ENOMEM;
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
			qsort(w, n_want, sizeof(*w), nft_dead_elem_cmp);
		if (n_have > 1)
			qsort(have, n_have, sizeof(*have), nft_dead_elem_cmp);
		*match = n_have == n_want;
		for (size_t i = 0; *match && i < n_want; i++)
			*match = nft_dead_elem_cmp(&w[i], &have[i]) == 0;
	}
	free(w);
	free(have);
	return r;
}

/* The NAT table's fixed sets (its uplink, its networks) are part of the
 * ruleset: an element someone removed or added there makes the table
 * stale (replaced whole, with the elements of the others). */
static int nat_sets_current(struct xn_nft *nft, const struct xn_nft_spec *s, bool *current)
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
	r = keys_match(nft, &SET_NAT_UPLINKS, &up, 1, current);
	if (r >= 0 && *current)
		r = keys_match(nft, &SET_NAT_NETWORKS, nets, n, current);
	if (r == -ENOENT) { /* no such set: stale all the same */
		*current = false;
		r = 0;
	}
	return r;
}

int xn_nft_query(struct xn_nft *nft, const struct xn_nft_spec *s, const struct xn_nft_dynamic *dyn,
		 enum xn_nft_table_state *ret)
{
	static const uint16_t families[] = { NFPROTO_INET, NFPROTO_BRIDGE };
	bool any_present = false, stale = false;

	for (size_t f = 0; f < XN_ARRAY_SIZE(families); f++) {
		bool want = families[f] == NFPROTO_BRIDGE ? nft_want_bridge(s) : nft_want_inet(s);
		struct table_info ti;
		char fp[64];
		size_t want_rules, have_rules;
		int r = nft_get_table(nft, families[f], &ti);

		if (r == -ENOENT) {
			stale |= want;
			continue;
		}
		if (r < 0)
			return r;
		any_present = true;
		if (!want) {
			stale = true;
			continue;
		}
		r = nft_fingerprint(s, families[f], fp, &want_rules);
		if (r < 0)
			return r;
		if (strcmp(ti.comment, fp) != 0) {
			stale = true;
			continue;
		}
		/* Same fingerprint: make sure nobody edited the rules. */
		r = count_rules(nft, families[f], &have_rules);
		if (r < 0)
			return r;
		stale |= have_rules != want_rules;
		if (families[f] == NFPROTO_INET && !stale) {
			bool current;
			r = nat_sets_current(nft, s, &current);
			if (r < 0)
				return r;
			stale |= !current;
		}
		if (dyn && dyn->grow_nat && s->nat && families[f] == NFPROTO_INET)
			stale = true;
		if (dyn && s->nat && families[f] == NFPROTO_INET && !stale) {
			bool enough;
			r = nat_room_enough(nft, dyn, &enough);
			if (r < 0)
				return r;
			stale |= !enough;
		}
	}
	*ret = !any_present && !stale ? XN_NFT_ABSENT : stale ? XN_NFT_STALE : XN_NFT_CURRENT;
	if (!any_present && xn_nft_spec_empty(s))
		*ret = XN_NFT_ABSENT;
	return 0;
}
