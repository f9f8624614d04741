/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/publicip.h"

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "xennet/conntrack.h"
#include "xennet/json.h"
#include "xennet/nft.h"

/* A sorted set of IPv4 addresses (network order words): with 10,000
 * mappings a linear search per address is 10^8 comparisons. */
struct v4set {
	uint32_t *v;
	size_t n;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int v4set_init(struct v4set *s, size_t cap)
{
	s->n = 0;
	s->v = calloc(cap + 1, sizeof(*s->v));
	return s->v ? 0 : -ENOMEM;
}

static void v4set_add(struct v4set *s, const struct xn_addr *a)
{
	if (a->family == AF_INET)
		s->v[s->n++] = a->v4.s_addr;
}

static void v4set_done(struct v4set *s)
{
	size_t k = 0;

	qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
	for (size_t i = 0; i < s->n; i++)
		if (k == 0 || s->v[k - 1] != s->v[i])
			s->v[k++] = s->v[i];
	s->n = k;
}

static bool v4set_has(const struct v4set *s, const struct xn_addr *a)
{
	return a->family == AF_INET && s->n &&
	       bsearch(&a->v4.s_addr, s->v, s->n, sizeof(*s->v), cmp_u32);
}

static struct xn_addr v4_of(uint32_t word)
{
	struct xn_addr a = { .family = AF_INET, .prefixlen = 32 };

	a.v4.s_addr = word;
	return a;
}

struct xn_publicip {
	struct xn_nl *nl;
	struct xn_nft *nft;
	struct xn_conntrack *ct;
	char path[PATH_MAX];
	const struct xn_profile *profile; /* in force (borrowed) */
	/* In force: the profile's and those made with the CLI (from_profile
	 * false; saved in path). One copy: 10,000 mappings are 1.1 MiB. */
	struct xn_mapset all;
	size_t journal_records; /* lines in path: rewritten at twice the CLI's */
	struct xn_mapset scratch; /* compose() */
	struct v4set owned; /* public addresses xennet made reachable */
	struct xn_addr *listed; /* xn_publicip_listed() */
	size_t n_listed;
	char uplink[IFNAMSIZ]; /* where they are */
	struct xn_addr *purge; /* conntrack purges due after the reply */
	size_t n_purge;
	long last_sync_us; /* the last xn_nft_maps_sync, for the log */
	size_t last_sync_changes;
	int (*grow)(void *ctx, struct xn_buf *err); /* the maps are full */
	void *grow_ctx;
};

void xn_publicip_on_full(struct xn_publicip *pi, int (*grow)(void *ctx, struct xn_buf *err),
			 void *ctx)
{
	pi->grow = grow;
	pi->grow_ctx = ctx;
}

static bool same_ip(const struct xn_addr *a, const struct xn_addr *b)
{
	return a->family == b->family && a->v4.s_addr == b->v4.s_addr;
}

static struct xn_addr host32(const struct xn_addr *a)
{
	struct xn_addr h = *a;

	h.prefixlen = 32;
	return h;
}

int xn_publicip_open(const char *state_dir, struct xn_nl *nl, struct xn_nft *nft,
		     struct xn_conntrack *ct, struct xn_publicip **ret, struct xn_buf *err)
{
	struct xn_publicip *pi = calloc(1, sizeof(*pi));
	unsigned bad = 0;
	int r;

	if (!pi)
		return -ENOMEM;
	pi->nl = nl;
	pi->nft = nft;
	pi->ct = ct;
	snprintf(pi->path, sizeof(pi->path), "%s/mappings", state_dir);
	r = xn_mapset_load(pi->path, &pi->all, &bad, &pi->journal_records);
	if (r < 0) {
		if (r == -EBADMSG)
			xn_buf_printf(err, "%s:%u: malformed mapping line", pi->path, bad);
		else
			xn_buf_printf(err, "%s: cannot read the public IP mappings: %s; nothing changed",
				      pi->path, xn_file_strerror(r));
		free(pi);
		return r;
	}
	for (size_t i = 0; i < pi->all.n_maps; i++)
		pi->all.maps[i].from_profile = false;
	for (size_t i = 0; i < pi->all.n_fwds; i++)
		pi->all.fwds[i].from_profile = false;
	/* Which public addresses are ours after a restart: the first sync
	 * finds the local routes of our protocol. */
	*ret = pi;
	return 0;
}

void xn_publicip_close(struct xn_publicip *pi)
{
	if (!pi)
		return;
	xn_mapset_clear(&pi->all);
	xn_mapset_clear(&pi->scratch);
	xn_publicip_flush(pi);
	free(pi->owned.v);
	free(pi->listed);
	free(pi);
}

static size_t cli_count(const struct xn_mapset *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_maps; i++)
		n += !s->maps[i].from_profile;
	for (size_t i = 0; i < s->n_fwds; i++)
		n += !s->fwds[i].from_profile;
	return n;
}

/* The profile's mappings and the CLI's (those of pi->all), into out (not
 * pi->all itself). */
static int compose_into(struct xn_publicip *pi, const struct xn_profile *p, struct xn_mapset *out,
			struct xn_buf *err)
{
	char a[XN_ADDR_STRLEN];
	size_t n_cli = cli_count(&pi->all);
	int r;

	xn_mapset_clear(out);
	if (!p || p->mode != XN_MODE_NAT) {
		if (n_cli) {
			xn_buf_printf(err, "%zu public IP mappings made with `xennet map|forward add` need a profile in nat mode; remove them first",
				      n_cli);
			return -EINVAL;
		}
		return 0;
	}
	for (size_t i = 0; i < p->n_maps; i++) {
		struct xn_mapping m = { .public_addr = p->maps[i].public_addr,
					.guest = p->maps[i].guest, .from_profile = true };
		m.name = p->maps[i].name;
		r = xn_mapset_add_map(out, &m);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < p->n_forwards; i++) {
		const struct xn_forward_conf *fc = &p->forwards[i];
		struct xn_forward f = { .public_addr = fc->public_addr, .guest = fc->guest,
					.public_port = fc->public_port, .guest_port = fc->guest_port,
					.proto = fc->proto, .from_profile = true };
		f.name = fc->name;
		r = xn_mapset_add_forward(out, &f);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < pi->all.n_maps; i++) {
		r = pi->all.maps[i].from_profile ? 0 : xn_mapset_add_map(out, &pi->all.maps[i]);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < pi->all.n_fwds; i++) {
		r = pi->all.fwds[i].from_profile ? 0 : xn_mapset_add_forward(out, &pi->all.fwds[i]);
		if (r < 0)
			return r;
	}
	xn_mapset_shrink(out);
	/* All at once: 10,000 mappings are checked by sorting, not in pairs. */
	{
		struct xn_buf why = { 0 };
		bool is_fwd = false;
		size_t k = 0;
		struct xn_nat_net net = xn_profile_nat_net(p);
		r = xn_mapset_check_all(out, &net, &why, &is_fwd, &k);
		if (r < 0) {
			if (is_fwd)
				xn_buf_printf(err, "the forward of %s:%u/%s %s does not fit this profile: %s",
					      xn_addr_format(&out->fwds[k].public_addr, false, a),
					      out->fwds[k].public_port, xn_proto_name(out->fwds[k].proto),
					      out->fwds[k].from_profile ? "in the profile" : "made with `xennet forward add`",
					      xn_buf_str(&why));
			else
				xn_buf_printf(err, "the mapping of %s %s does not fit this profile: %s%s%s",
					      xn_addr_format(&out->maps[k].public_addr, false, a),
					      out->maps[k].from_profile ? "in the profile" : "made with `xennet map add`",
					      xn_buf_str(&why),
					      out->maps[k].from_profile ? "" : "; remove it first with `xennet map del ",
					      out->maps[k].from_profile ? "" : a);
			if (!is_fwd && !out->maps[k].from_profile)
				xn_buf_printf(err, "`");
			xn_buf_free(&why);
			return r;
		}
	}
	return 0;
}

int xn_publicip_compose(struct xn_publicip *pi, const struct xn_profile *p,
			const struct xn_mapset **ret, struct xn_buf *err)
{
	int r = compose_into(pi, p, &pi->scratch, err);

	if (r >= 0)
		*ret = &pi->scratch;
	return r;
}

void xn_publicip_compose_done(struct xn_publicip *pi)
{
	xn_mapset_clear(&pi->scratch); /* 10,000 mappings are 1 MiB */
}


/* The public addresses of owned that are not 1:1 mapped in all: those
 * the set public_addrs holds (the DNAT map's keys stand for the others). */
static int listed_of(const struct xn_mapset *all, const struct v4set *owned,
		     struct xn_addr **ret, size_t *n)
{
	struct v4set mapped;
	struct xn_addr *v = calloc(owned->n + 1, sizeof(*v));

	*ret = v;
	*n = 0;
	if (!v || v4set_init(&mapped, all->n_maps) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < all->n_maps; i++)
		v4set_add(&mapped, &all->maps[i].public_addr);
	v4set_done(&mapped);
	for (size_t i = 0; i < owned->n; i++) {
		struct xn_addr a = v4_of(owned->v[i]);
		if (!v4set_has(&mapped, &a))
			v[(*n)++] = a;
	}
	free(mapped.v);
	return 0;
}

void xn_publicip_listed(struct xn_publicip *pi, const struct xn_addr **ret, size_t *n)
{
	free(pi->listed);
	if (listed_of(&pi->all, &pi->owned, &pi->listed, &pi->n_listed) < 0) {
		free(pi->listed); /* then the sync after the table adds them */
		pi->listed = NULL;
		pi->n_listed = 0;
	}
	*ret = pi->listed;
	*n = pi->n_listed;
}

/* A translation as bytes, for sorting: kind, public address, then the
 * rest (a 1:1 mapping's guest; a forward's protocol, ports and guest). */
struct translation {
	uint8_t b[16];
};

static int cmp_translation(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct translation));
}

static struct translation *translations_of(const struct xn_mapset *s)
{
	struct translation *t = calloc(s->n_maps + s->n_fwds + 1, sizeof(*t));

	if (!t)
		return NULL;
	for (size_t i = 0; i < s->n_maps; i++) {
		memcpy(t[i].b + 1, &s->maps[i].public_addr.v4, 4);
		memcpy(t[i].b + 5, &s->maps[i].guest.v4, 4);
	}
	for (size_t i = 0; i < s->n_fwds; i++) {
		const struct xn_forward *f = &s->fwds[i];
		uint8_t *b = t[s->n_maps + i].b;
		b[0] = 1;
		memcpy(b + 1, &f->public_addr.v4, 4);
		b[5] = f->proto;
		b[6] = (uint8_t)(f->public_port >> 8);
		b[7] = (uint8_t)f->public_port;
		memcpy(b + 8, &f->guest.v4, 4);
		b[12] = (uint8_t)(f->guest_port >> 8);
		b[13] = (uint8_t)f->guest_port;
	}
	qsort(t, s->n_maps + s->n_fwds, sizeof(*t), cmp_translation);
	return t;
}

/* The public addresses of the translations in one set and not (the same)
 * in the other, added to *v: when the table was made anew with its maps,
 * there is no kernel diff to say which flows must not keep their path. */
static int translations_changed(const struct xn_mapset *old, const struct xn_mapset *new,
				struct xn_addr **v, size_t *n)
{
	size_t no = old->n_maps + old->n_fwds, nn = new->n_maps + new->n_fwds, i = 0, j = 0;
	struct translation *a = translations_of(old), *b = translations_of(new);
	struct xn_addr *out = a && b ? reallocarray(*v, *n + no + nn + 1, sizeof(**v)) : NULL;

	if (!out) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	*v = out;
	while (i < no || j < nn) {
		int c = i == no ? 1 : j == nn ? -1 : cmp_translation(&a[i], &b[j]);
		const struct translation *t = c < 0 ? &a[i] : &b[j];
		if (c != 0) {
			out[*n] = (struct xn_addr){ .family = AF_INET, .prefixlen = 32 };
			memcpy(&out[(*n)++].v4, t->b + 1, 4);
		}
		i += c <= 0;
		j += c >= 0;
	}
	free(a);
	free(b);
	return 0;
}

int xn_publicip_sync(struct xn_publicip *pi, const struct xn_profile *p, bool maps_in_place,
		     struct xn_buf *err)
{
	struct xn_mapset before = { 0 };
	struct xn_snapshot *snap = NULL;
	struct xn_addr *want = NULL, *changed = NULL;
	struct v4set wanted = { 0 }, dom0_addrs = { 0 }, now_owned = { 0 };
	struct v4set routed = { 0 };
	struct xn_local_route *routes = NULL;
	struct xn_addr *listed = NULL;
	size_t n_routes = 0, n_listed = 0;
	size_t n_want = 0, n_changed = 0;
	struct xn_link up_link;
	const struct xn_link *up = NULL;
	int r;

	r = compose_into(pi, p, &before, err);
	if (r < 0) {
		xn_mapset_clear(&before);
		return r;
	}
	/* The new set in force; the old one kept to compare, if needed. */
	{
		struct xn_mapset old = pi->all;
		pi->all = before;
		before = old;
		if (!maps_in_place)
			xn_mapset_clear(&before);
	}
	pi->profile = p;
	/* For Dom0's addresses; the uplinks are asked for by name (a dump of
	 * every link is a thousand vifs). */
	snap = calloc(1, sizeof(*snap));
	if (!snap) {
		r = -ENOMEM;
		goto out;
	}
	want = calloc(pi->all.n_maps + pi->all.n_fwds + 1, sizeof(*want));
	if (!want || v4set_init(&wanted, pi->all.n_maps + pi->all.n_fwds) < 0 ||
	    v4set_init(&now_owned, pi->all.n_maps + pi->all.n_fwds) < 0) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < pi->all.n_maps; i++)
		v4set_add(&wanted, &pi->all.maps[i].public_addr);
	for (size_t i = 0; i < pi->all.n_fwds; i++)
		v4set_add(&wanted, &pi->all.fwds[i].public_addr);
	v4set_done(&wanted);
	for (size_t i = 0; i < wanted.n; i++) {
		want[n_want] = (struct xn_addr){ .family = AF_INET, .prefixlen = 32 };
		want[n_want++].v4.s_addr = wanted.v[i];
	}

	/* Public addresses we made reachable that are no longer wanted go
	 * with the routes of ours found below (on any device). */
	if (p && p->mode == XN_MODE_NAT) {
		up = xn_nl_link_get(pi->nl, p->nat_uplink, &up_link) >= 0 ? &up_link : NULL;
		if (!up) {
			xn_buf_printf(err, "nat uplink %s does not exist", p->nat_uplink);
			r = -ENODEV;
			goto out;
		}
		/* Dom0's own addresses, on any device (as bind() sees them);
		 * our local routes on the uplink are the public addresses
		 * still reachable. */
		r = xn_nl_addrs_take(pi->nl, 0, AF_INET, snap);
		if (r >= 0)
			r = v4set_init(&dom0_addrs, snap->n_addrs);
		if (r >= 0)
			r = xn_nl_local_routes_take(pi->nl, 0, &routes, &n_routes);
		if (r >= 0)
			r = v4set_init(&routed, n_routes);
		if (r < 0)
			goto out;
		for (size_t i = 0; i < snap->n_addrs; i++)
			v4set_add(&dom0_addrs, &snap->addrs[i].addr);
		v4set_done(&dom0_addrs);
		for (size_t i = 0; i < n_routes; i++)
			if (routes[i].ifindex == up->ifindex)
				v4set_add(&routed, &routes[i].addr);
		v4set_done(&routed);
		/* Ours not wanted, or not on the uplink (left by a run that
		 * did not finish, or by another profile): no orphan. First,
		 * so that the ones moving to the uplink can be added. */
		for (size_t i = 0; i < n_routes; i++)
			if (!v4set_has(&wanted, &routes[i].addr) || routes[i].ifindex != up->ifindex)
				xn_nl_local_route_del(pi->nl, routes[i].ifindex, &routes[i].addr);
		for (size_t i = 0; i < n_want; i++) {
			bool ours = v4set_has(&pi->owned, &want[i]) || v4set_has(&routed, &want[i]);
			if (!ours && v4set_has(&dom0_addrs, &want[i]))
				continue; /* Dom0's own address: forwards on it */
			if (!v4set_has(&routed, &want[i])) {
				r = xn_nl_local_route_add(pi->nl, up->ifindex, &want[i]);
				if (r == -EEXIST)
					continue; /* a local route not ours: Dom0's own */
				if (r < 0) {
					char a[XN_ADDR_STRLEN];
					xn_buf_printf(err, "making public address %s reachable on %s: %s",
						      xn_addr_format(&want[i], true, a), p->nat_uplink, strerror(-r));
					goto out;
				}
			}
			/* sorted: want is */
			now_owned.v[now_owned.n++] = want[i].v4.s_addr;
		}
		r = listed_of(&pi->all, &now_owned, &listed, &n_listed);
		if (r < 0)
			goto out;
		int64_t t0 = xn_now_us();
		r = xn_nft_maps_sync(pi->nft, &pi->all, maps_in_place, listed, n_listed, &changed, &n_changed, err);
		int64_t t1 = xn_now_us();
		if (r >= 0 && maps_in_place)
			r = translations_changed(&before, &pi->all, &changed, &n_changed);
		if (r < 0)
			goto out;
		pi->last_sync_us = (long)(t1 - t0);
		pi->last_sync_changes = n_changed;
		snprintf(pi->uplink, sizeof(pi->uplink), "%s", p->nat_uplink);
	} else {
		/* Not a NAT host (any more): none of our routes stays. */
		if (xn_nl_local_routes_take(pi->nl, 0, &routes, &n_routes) >= 0)
			for (size_t i = 0; i < n_routes; i++)
				xn_nl_local_route_del(pi->nl, routes[i].ifindex, &routes[i].addr);
		pi->uplink[0] = '\0';
	}
	/* Flows of translations that changed or went must not linger. */
	for (size_t i = 0; i < pi->owned.n; i++) {
		struct xn_addr a = v4_of(pi->owned.v[i]);
		if (!v4set_has(&now_owned, &a)) {
			struct xn_addr *c = reallocarray(changed, n_changed + 1, sizeof(*c));
			if (c) {
				changed = c;
				changed[n_changed++] = a;
			}
		}
	}
	xn_conntrack_purge(pi->ct, changed, n_changed);
	free(pi->owned.v);
	pi->owned = now_owned;
	now_owned = (struct v4set){ 0 };
	r = 0;
out:
	free(want);
	free(changed);
	free(wanted.v);
	free(dom0_addrs.v);
	free(now_owned.v);
	free(routed.v);
	free(routes);
	free(listed);
	xn_mapset_clear(&before);
	xn_snapshot_free(snap);
	return r;
}

/* ---- the CLI's requests ---- */

/* Is a a local address of this host (of Dom0 itself)? bind() says so in
 * one system call, where an address dump would grow with the mappings. */
static bool local_address(const struct xn_addr *a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = a->v4 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool local;

	if (fd < 0)
		return false;
	local = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return local;
}

static int uplink_state(struct xn_publicip *pi, const struct xn_addr *pub, int *ifindex,
			bool *dom0_own, struct xn_buf *out)
{
	unsigned idx;

	if (!pi->profile || pi->profile->mode != XN_MODE_NAT) {
		xn_buf_printf(out, "public IP mappings need a profile in nat mode\n");
		return -EINVAL;
	}
	idx = if_nametoindex(pi->profile->nat_uplink);
	if (!idx) {
		xn_buf_printf(out, "nat uplink %s does not exist\n", pi->profile->nat_uplink);
		return -ENODEV;
	}
	*ifindex = (int)idx;
	*dom0_own = !v4set_has(&pi->owned, pub) && local_address(pub);
	return 0;
}

static bool public_in_use(const struct xn_mapset *s, const struct xn_addr *pub)
{
	for (size_t i = 0; i < s->n_maps; i++)
		if (same_ip(&s->maps[i].public_addr, pub))
			return true;
	for (size_t i = 0; i < s->n_fwds; i++)
		if (same_ip(&s->fwds[i].public_addr, pub))
			return true;
	return false;
}

static int defer_purge(struct xn_publicip *pi, const struct xn_addr *a)
{
	struct xn_addr *v;

	for (size_t i = 0; i < pi->n_purge; i++)
		if (same_ip(&pi->purge[i], a))
			return 0;
	v = reallocarray(pi->purge, pi->n_purge + 1, sizeof(*v));

	if (!v) /* then now */
		return xn_conntrack_purge(pi->ct, a, 1) < 0 ? 0 : 0;
	pi->purge = v;
	pi->purge[pi->n_purge++] = *a;
	return 0;
}

bool xn_publicip_purge_pending(const struct xn_publicip *pi)
{
	return pi && pi->n_purge;
}

int xn_publicip_flush(struct xn_publicip *pi)
{
	int r = 0;

	if (pi->n_purge)
		r = xn_conntrack_purge(pi->ct, pi->purge, pi->n_purge);
	free(pi->purge);
	pi->purge = NULL;
	pi->n_purge = 0;
	return r;
}

/* A change made with the CLI, on disk before the reply: one line at the
 * end of the file (O(1)), the whole file again once it has grown to twice
 * what it holds. */
static int save_change(struct xn_publicip *pi, const struct xn_mapping *m,
		       const struct xn_forward *f, bool add)
{
	size_t live = cli_count(&pi->all);
	int r;

	if (pi->journal_records + 1 > 2 * live + 64) {
		r = xn_mapset_save(pi->path, &pi->all);
		if (r >= 0)
			pi->journal_records = live;
		return r;
	}
	r = m ? xn_mapset_journal_map(pi->path, m, add) : xn_mapset_journal_forward(pi->path, f, add);
	if (r >= 0)
		pi->journal_records++;
	else /* the file may not say what is in force: whole, next time */
		pi->journal_records = SIZE_MAX / 4;
	return r;
}

/* Where word is, or would go, in the sorted set. */
static size_t v4set_position(const struct v4set *s, uint32_t word)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cmp_u32(&s->v[mid], &word) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int own(struct xn_publicip *pi, const struct xn_addr *pub)
{
	size_t at = v4set_position(&pi->owned, pub->v4.s_addr);
	uint32_t *v;

	if (at < pi->owned.n && pi->owned.v[at] == pub->v4.s_addr)
		return 0;
	v = reallocarray(pi->owned.v, pi->owned.n + 2, sizeof(*v));
	if (!v)
		return -ENOMEM;
	memmove(&v[at + 1], &v[at], (pi->owned.n - at) * sizeof(*v));
	v[at] = pub->v4.s_addr;
	pi->owned.v = v;
	pi->owned.n++;
	return 0;
}

static void disown(struct xn_publicip *pi, const struct xn_addr *pub)
{
	size_t at = v4set_position(&pi->owned, pub->v4.s_addr);

	if (at < pi->owned.n && pi->owned.v[at] == pub->v4.s_addr) {
		memmove(&pi->owned.v[at], &pi->owned.v[at + 1], (pi->owned.n - at - 1) * sizeof(uint32_t));
		pi->owned.n--;
	}
}

/* Add (m or f) to the kernel and the sets; on failure undo. */
static int add_common(struct xn_publicip *pi, const struct xn_mapping *m, const struct xn_forward *f,
		      struct xn_buf *out)
{
	const struct xn_addr *pub = m ? &m->public_addr : &f->public_addr;
	struct xn_addr p32 = host32(pub);
	struct xn_buf err = { 0 };
	bool dom0_own = false, new_addr;
	const struct xn_addr *listed;
	int ifindex = 0, r;

	r = uplink_state(pi, pub, &ifindex, &dom0_own, out);
	if (r < 0)
		return r;
	if (m && dom0_own) {
		/* A forward takes one port of it; this would take them all. */
		xn_buf_printf(out, "refused: public address %s is one of Dom0's own addresses: a 1:1 mapping would take all of Dom0's traffic to it\n",
			      xn_addr_format(pub, false, (char[XN_ADDR_STRLEN]){ 0 }));
		return -EADDRINUSE;
	}
	new_addr = !dom0_own && !v4set_has(&pi->owned, pub);
	/* public_addrs lists the addresses only forwarded. */
	listed = f && new_addr ? &p32 : NULL;
	r = xn_nft_mapping_update(pi->nft, m, NULL, f, NULL, listed, NULL, &err);
	if (r == -ENFILE && pi->grow) {
		/* The maps are full (nothing changed): larger ones, then again. */
		xn_buf_free(&err);
		err = (struct xn_buf){ 0 };
		r = pi->grow(pi->grow_ctx, &err);
		if (r >= 0)
			r = xn_nft_mapping_update(pi->nft, m, NULL, f, NULL, listed, NULL, &err);
	}
	if (r < 0) {
		xn_buf_printf(out, "nftables: %s\n", err.len ? xn_buf_str(&err) : strerror(-r));
		xn_buf_free(&err);
		return r;
	}
	if (new_addr) {
		r = xn_nl_local_route_add(pi->nl, ifindex, &p32);
		if (r >= 0)
			r = own(pi, pub);
		if (r < 0) {
			xn_nft_mapping_update(pi->nft, NULL, m, NULL, f, NULL, listed, NULL);
			xn_nl_local_route_del(pi->nl, ifindex, &p32);
			xn_buf_printf(out, "making %s reachable on the uplink: %s\n",
				      xn_addr_format(&p32, false, (char[XN_ADDR_STRLEN]){ 0 }), strerror(-r));
			return r;
		}
	}
	r = m ? xn_mapset_add_map(&pi->all, m) : xn_mapset_add_forward(&pi->all, f);
	if (r >= 0)
		r = save_change(pi, m, f, true);
	if (r < 0) {
		xn_buf_printf(out, "saving %s: %s; nothing changed\n", pi->path, strerror(-r));
		if (m)
			xn_mapset_del_map(&pi->all, pub, NULL);
		else
			xn_mapset_del_forward(&pi->all, pub, f->public_port, f->proto, NULL);
		xn_nft_mapping_update(pi->nft, NULL, m, NULL, f, NULL, listed, NULL);
		if (new_addr) {
			xn_nl_local_route_del(pi->nl, ifindex, &p32);
			disown(pi, pub);
		}
		return r;
	}
	/* Flows that went to this address before must take the new path:
	 * right after the reply (a conntrack walk takes milliseconds). */
	return defer_purge(pi, &p32);
}

int xn_publicip_check(struct xn_publicip *pi, const struct xn_mapping *m,
		      const struct xn_forward *f, struct xn_buf *out)
{
	struct xn_buf why = { 0 };
	int r;

	struct xn_nat_net net = xn_profile_nat_net(pi->profile);

	xn_mapset_tidy_names(&pi->all); /* nothing refers to a name now */
	r = m ? xn_mapset_check_map(&pi->all, &net, m, &why)
	      : xn_mapset_check_forward(&pi->all, &net, f, &why);
	if (r < 0)
		xn_buf_printf(out, "refused: %s\n", xn_buf_str(&why));
	xn_buf_free(&why);
	return r;
}

/* Is pub in one of the uplink's subnets (and not its network or broadcast
 * address)? (1, 0, or -errno with out.) */
static int on_uplink_link(struct xn_publicip *pi, int ifindex, const struct xn_addr *pub,
			  struct xn_buf *out)
{
	struct xn_snapshot *snap = calloc(1, sizeof(*snap));
	int r = snap ? xn_nl_addrs_take(pi->nl, ifindex, AF_INET, snap) : -ENOMEM, found = 0;

	for (size_t i = 0; r >= 0 && i < snap->n_addrs && !found; i++) {
		const struct xn_addr *ua = &snap->addrs[i].addr;
		struct xn_addr net = xn_addr_network(ua);
		struct xn_addr host = { .family = AF_INET, .v4 = pub->v4, .prefixlen = ua->prefixlen };
		if (ua->prefixlen >= 31 || !xn_addr_in_network(&net, pub))
			continue;
		if (xn_addr_is_network_or_broadcast(&host)) {
			xn_buf_printf(out, "refused: public address %s is the network or broadcast address of %s on %s\n",
				      xn_addr_format(pub, false, (char[XN_ADDR_STRLEN]){ 0 }),
				      xn_addr_format(&net, true, (char[XN_ADDR_STRLEN]){ 0 }), pi->profile->nat_uplink);
			r = -EINVAL;
		}
		found = 1;
	}
	if (r < 0 && r != -EINVAL)
		xn_buf_printf(out, "reading the addresses of %s: %s\n", pi->profile->nat_uplink, strerror(-r));
	xn_snapshot_free(snap);
	return r < 0 ? r : found;
}

int xn_publicip_needs_probe(struct xn_publicip *pi, const struct xn_addr *pub, int *ifindex,
			    struct xn_buf *out)
{
	bool dom0_own;
	int r;

	r = uplink_state(pi, pub, ifindex, &dom0_own, out);
	if (r >= 0)
		r = on_uplink_link(pi, *ifindex, pub, out);
	/* Ours already (another forward on it), or Dom0's own: nobody else
	 * on the link can be using it. */
	if (r > 0 && (dom0_own || v4set_has(&pi->owned, pub)))
		r = 0;
	return r;
}

int xn_publicip_map_add(struct xn_publicip *pi, const struct xn_mapping *m, struct xn_buf *out)
{
	char a[XN_ADDR_STRLEN], g[XN_ADDR_STRLEN];
	int r;

	r = xn_publicip_check(pi, m, NULL, out);
	if (r < 0)
		return r;
	r = add_common(pi, m, NULL, out);
	if (r >= 0)
		xn_buf_printf(out, "mapped %s to %s\n", xn_addr_format(&m->public_addr, false, a),
			      xn_addr_format(&m->guest, false, g));
	return r;
}

int xn_publicip_fwd_add(struct xn_publicip *pi, const struct xn_forward *f, struct xn_buf *out)
{
	char a[XN_ADDR_STRLEN], g[XN_ADDR_STRLEN];
	int r;

	r = xn_publicip_check(pi, NULL, f, out);
	if (r < 0)
		return r;
	r = add_common(pi, NULL, f, out);
	if (r >= 0)
		xn_buf_printf(out, "forwarding %s:%u/%s to %s:%u\n",
			      xn_addr_format(&f->public_addr, false, a), f->public_port,
			      xn_proto_name(f->proto), xn_addr_format(&f->guest, false, g), f->guest_port);
	return r;
}

static void restore_entry(struct xn_publicip *pi, const struct xn_mapping *m,
			  const struct xn_forward *f)
{
	if (m)
		xn_mapset_add_map(&pi->all, m);
	else
		xn_mapset_add_forward(&pi->all, f);
}

/* A removal is on disk before the kernel changes: one that is not saved
 * would come back at the next start, so a full or read-only state
 * directory refuses it and nothing changes. */
static int del_common(struct xn_publicip *pi, const struct xn_mapping *m, const struct xn_forward *f,
		      struct xn_buf *out)
{
	const struct xn_addr *pub = m ? &m->public_addr : &f->public_addr;
	struct xn_addr p32 = host32(pub);
	struct xn_buf err = { 0 };
	bool drop_addr;
	int r;

	/* Is the address still used by something else after this? */
	if (m)
		xn_mapset_del_map(&pi->all, pub, NULL);
	else
		xn_mapset_del_forward(&pi->all, pub, f->public_port, f->proto, NULL);
	r = save_change(pi, m, f, false);
	if (r < 0) {
		restore_entry(pi, m, f);
		xn_buf_printf(out, "saving %s: %s; nothing changed\n", pi->path, strerror(-r));
		return r;
	}
	drop_addr = v4set_has(&pi->owned, pub) && !public_in_use(&pi->all, pub);
	r = xn_nft_mapping_update(pi->nft, NULL, m, NULL, f, NULL, f && drop_addr ? &p32 : NULL, &err);
	if (r < 0) {
		restore_entry(pi, m, f);
		/* The file says removed: it says what is in force again. */
		if (save_change(pi, m, f, true) < 0)
			xn_buf_printf(out, "warning: %s may not list it any more\n", pi->path);
		xn_buf_printf(out, "nftables: %s\n", err.len ? xn_buf_str(&err) : strerror(-r));
		xn_buf_free(&err);
		return r;
	}
	/* The address stops being local right away. */
	if (drop_addr) {
		unsigned idx = if_nametoindex(pi->uplink);
		if (idx)
			xn_nl_local_route_del(pi->nl, (int)idx, &p32);
		disown(pi, pub);
	}
	/* A running flow must not keep the translation that went: right
	 * after the reply. */
	return defer_purge(pi, &p32);
}

static const struct xn_mapping *find_map(const struct xn_mapset *s, const struct xn_addr *pub)
{
	for (size_t i = 0; i < s->n_maps; i++)
		if (same_ip(&s->maps[i].public_addr, pub))
			return &s->maps[i];
	return NULL;
}

int xn_publicip_map_del(struct xn_publicip *pi, const struct xn_addr *pub, struct xn_buf *out)
{
	const struct xn_mapping *found;
	struct xn_mapping m;
	char a[XN_ADDR_STRLEN];

	xn_mapset_tidy_names(&pi->all); /* nothing refers to a name now */
	found = find_map(&pi->all, pub);
	if (!found) {
		xn_buf_printf(out, "%s is not mapped\n", xn_addr_format(pub, false, a));
		return -ENOENT;
	}
	if (found->from_profile) {
		xn_buf_printf(out, "%s is mapped by the profile ([map %s]): edit the profile to remove it\n",
			      xn_addr_format(pub, false, a), found->name ? found->name : "?");
		return -EPERM;
	}
	m = *found;
	int r = del_common(pi, &m, NULL, out);
	if (r >= 0)
		xn_buf_printf(out, "unmapped %s\n", xn_addr_format(pub, false, a));
	return r;
}

int xn_publicip_fwd_del(struct xn_publicip *pi, const struct xn_addr *pub, uint16_t port,
			uint8_t proto, struct xn_buf *out)
{
	char a[XN_ADDR_STRLEN];

	xn_mapset_tidy_names(&pi->all); /* nothing refers to a name now */
	for (size_t i = 0; i < pi->all.n_fwds; i++) {
		struct xn_forward f = pi->all.fwds[i];
		if (!same_ip(&f.public_addr, pub) || f.public_port != port || f.proto != proto)
			continue;
		if (f.from_profile) {
			xn_buf_printf(out, "%s:%u/%s is forwarded by the profile: edit the profile to remove it\n",
				      xn_addr_format(pub, false, a), port, xn_proto_name(proto));
			return -EPERM;
		}
		int r = del_common(pi, NULL, &f, out);
		if (r >= 0)
			xn_buf_printf(out, "removed the forward of %s:%u/%s\n",
				      xn_addr_format(pub, false, a), port, xn_proto_name(proto));
		return r;
	}
	xn_buf_printf(out, "%s:%u/%s is not forwarded\n", xn_addr_format(pub, false, a), port,
		      xn_proto_name(proto));
	return -ENOENT;
}

const struct xn_mapset *xn_publicip_all(const struct xn_publicip *pi)
{
	return &pi->all;
}

static void list_json(struct xn_publicip *pi, bool forwards, struct xn_buf *out)
{
	char a[XN_ADDR_STRLEN];
	struct xn_json j;

	xn_json_document_begin(&j, out);
	xn_json_array_begin(&j, forwards ? "forwards" : "maps");
	for (size_t i = 0; !forwards && i < pi->all.n_maps; i++) {
		const struct xn_mapping *m = &pi->all.maps[i];
		xn_json_object_begin(&j, NULL);
		xn_json_string(&j, "public", xn_addr_format(&m->public_addr, false, a));
		xn_json_string(&j, "guest", xn_addr_format(&m->guest, false, a));
		xn_json_string(&j, "name", m->name);
		xn_json_string(&j, "source", m->from_profile ? "profile" : "cli");
		xn_json_object_end(&j);
	}
	for (size_t i = 0; forwards && i < pi->all.n_fwds; i++) {
		const struct xn_forward *f = &pi->all.fwds[i];
		xn_json_object_begin(&j, NULL);
		xn_json_string(&j, "public", xn_addr_format(&f->public_addr, false, a));
		xn_json_uint(&j, "port", f->public_port);
		xn_json_string(&j, "proto", xn_proto_name(f->proto));
		xn_json_string(&j, "guest", xn_addr_format(&f->guest, false, a));
		xn_json_uint(&j, "guest_port", f->guest_port);
		xn_json_string(&j, "name", f->name);
		xn_json_string(&j, "source", f->from_profile ? "profile" : "cli");
		xn_json_object_end(&j);
	}
	xn_json_array_end(&j);
	xn_json_document_end(&j);
}

void xn_publicip_list(struct xn_publicip *pi, bool forwards, bool json, struct xn_buf *out)
{
	char a[XN_ADDR_STRLEN], g[XN_ADDR_STRLEN];

	if (json)
		return list_json(pi, forwards, out);
	for (size_t i = 0; !forwards && i < pi->all.n_maps; i++) {
		const struct xn_mapping *m = &pi->all.maps[i];
		xn_addr_format(&m->public_addr, false, a);
		xn_addr_format(&m->guest, false, g);
		xn_buf_printf(out, "%-15s -> %-15s %-20s %s\n", a, g, m->name ? m->name : "-",
			      m->from_profile ? "profile" : "cli");
	}
	for (size_t i = 0; forwards && i < pi->all.n_fwds; i++) {
		const struct xn_forward *f = &pi->all.fwds[i];
		xn_addr_format(&f->public_addr, false, a);
		xn_addr_format(&f->guest, false, g);
		xn_buf_printf(out, "%s:%u/%s -> %s:%u %s %s\n", a, f->public_port,
			      xn_proto_name(f->proto), g, f->guest_port,
			      f->name ? f->name : "-", f->from_profile ? "profile" : "cli");
	}
}

void xn_publicip_last_sync(struct xn_publicip *pi, size_t *maps, size_t *fwds, size_t *changed,
			   long *us)
{
	*maps = pi->all.n_maps;
	*fwds = pi->all.n_fwds;
	*changed = pi->last_sync_changes;
	*us = pi->last_sync_us;
}
