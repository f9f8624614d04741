/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/engine.h"

#include <stdio.h>
#include <string.h>

int xn_engine_open(const char *state_dir, struct xn_engine **ret,
		   struct xn_buf *err)
{
	struct xn_engine *e;
	unsigned bad = 0;
	int r;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if ((size_t)snprintf(e->ledger_path, sizeof(e->ledger_path), "%s/ledger",
			     state_dir) >= sizeof(e->ledger_path)) {
		free(e);
		return -ENAMETOOLONG;
	}
	r = xn_ledger_load(e->ledger_path, &e->ledger, &bad);
	if (r < 0) {
		if (r == -EBADMSG)
			xn_buf_printf(err, "%s:%u: malformed ledger line", e->ledger_path, bad);
		else
			xn_buf_printf(err, "%s: %s", e->ledger_path, xn_file_strerror(r));
		free(e);
		return r;
	}
	r = xn_nl_open(&e->nl);
	if (r < 0) {
		xn_buf_printf(err, "rtnetlink: %s", strerror(-r));
		xn_ledger_clear(&e->ledger);
		free(e);
		return r;
	}
	r = xn_nft_new(&e->nft);
	if (r < 0) {
		xn_buf_printf(err, "nftables: %s", strerror(-r));
		xn_engine_close(e);
		return r;
	}
	*ret = e;
	return 0;
}

void xn_engine_close(struct xn_engine *e)
{
	if (!e)
		return;
	xn_nft_free(e->nft);
	xn_nl_close(e->nl);
	xn_ledger_clear(&e->ledger);
	xn_buf_free(&e->warnings);
	free(e);
}

int xn_engine_plan(struct xn_engine *e, const struct xn_profile *profile,
		   const struct xn_nft_dynamic *dyn, struct xn_plan *plan,
		   struct xn_buf *err)
{
	struct xn_snapshot *snap = NULL;
	struct xn_nft_spec spec;
	enum xn_nft_table_state st = XN_NFT_ABSENT;
	bool unknown = false;
	int r;

	r = xn_snapshot_take(e->nl, &snap);
	if (r < 0) {
		xn_buf_printf(err, "reading links, addresses and routes: %s", strerror(-r));
		return r;
	}
	{
		struct xn_wanted_sysctl w[XN_MAX_WANTED_SYSCTLS];
		size_t n = xn_plan_sysctls(profile, w);

		for (size_t i = 0; i < n && i < XN_ARRAY_SIZE(snap->sysctls); i++) {
			struct xn_snapshot_sysctl *sc = &snap->sysctls[snap->n_sysctls++];
			snprintf(sc->path, sizeof(sc->path), "%s", w[i].path);
			sc->exists = xn_sysctl_read(w[i].path, sc->value) >= 0;
		}
	}
	xn_plan_nft_spec(profile, &spec);
	r = xn_nft_query(e->nft, &spec, dyn, &st);
	if (r == -EPERM || r == -EACCES)
		unknown = true;
	else if (r < 0) {
		xn_buf_printf(err, "reading nftables: %s", strerror(-r));
		xn_snapshot_free(snap);
		return r;
	}
	r = xn_plan_build(profile, snap, &e->ledger, st, unknown, plan, err);
	xn_snapshot_free(snap);
	return r;
}

/* Does this step change what the ledger holds? Those that only tune what
 * the ledger already records (a bridge made again after someone deleted
 * it, a sysctl put back) do not: they heal with a read-only state
 * directory too. */
static bool step_recorded(const struct xn_ledger *l, const struct xn_step *st)
{
	switch (st->op) {
	case XN_STEP_BRIDGE_TUNE:
		return st->record && !xn_ledger_tuned(l, st->dev);
	case XN_STEP_LINK_MTU:
	case XN_STEP_LINK_UP:
	case XN_STEP_NFT_INSTALL:
		return false;
	case XN_STEP_BRIDGE_CREATE:
		return !xn_ledger_has_bridge(l, st->dev);
	case XN_STEP_PORT_ADD:
		return !xn_ledger_has_port(l, st->dev2, st->dev);
	case XN_STEP_ADDR_ADD:
		return !xn_ledger_has_addr(l, st->dev, &st->addr);
	case XN_STEP_ADDR_DEL:
		return st->record;
	case XN_STEP_SYSCTL_SET:
		return !xn_ledger_sysctl(l, st->path);
	default:
		return true;
	}
}

static bool plan_recorded(const struct xn_ledger *l, const struct xn_plan *plan,
			  const char *profile_path)
{
	if (strcmp(l->profile, profile_path) != 0)
		return true;
	for (size_t i = 0; i < plan->n_steps; i++)
		if (step_recorded(l, &plan->steps[i]))
			return true;
	return false;
}

int xn_engine_apply(struct xn_engine *e, const struct xn_profile *profile,
		    const struct xn_nft_dynamic *dyn,
		    struct xn_buf *report, struct xn_buf *err)
{
	struct xn_plan plan;
	size_t done = 0;
	bool recorded;
	int r, s;

	xn_buf_free(&e->warnings);
	r = xn_engine_plan(e, profile, dyn, &plan, err);
	if (r < 0)
		return r;
	plan.dyn = dyn;
	xn_plan_warnings(&plan, &e->warnings);
	/* What must be recorded is refused before the kernel changes when
	 * the ledger cannot be written (a full or read-only state
	 * directory); nothing is written when nothing is to be recorded. */
	recorded = plan_recorded(&e->ledger, &plan, profile ? profile->path : "");
	if (recorded) {
		s = xn_ledger_save(e->ledger_path, &e->ledger);
		if (s < 0) {
			xn_buf_printf(err, "cannot record the changes in %s: %s; nothing changed",
				      e->ledger_path, strerror(-s));
			xn_plan_clear(&plan);
			return s;
		}
	}
	/* Each step's entry reaches the disk before the kernel changes
	 * (write-ahead): a kill -9 half way leaves nothing unrecorded. */
	plan.ledger_path = recorded ? e->ledger_path : NULL;
	r = xn_plan_apply(e->nl, e->nft, &plan, &e->ledger, &done, err);
	if (report) {
		for (size_t i = 0; i < done; i++) {
			xn_step_describe(&plan.steps[i], report);
			xn_buf_printf(report, "\n");
		}
	}
	if (r >= 0)
		snprintf(e->ledger.profile, sizeof(e->ledger.profile), "%s",
			 profile ? profile->path : "");
	s = recorded ? xn_ledger_save(e->ledger_path, &e->ledger) : 0;
	if (s < 0 && r >= 0) {
		xn_buf_printf(err, "saving %s: %s", e->ledger_path, strerror(-s));
		r = s;
	}
	xn_plan_clear(&plan);
	return r;
}
