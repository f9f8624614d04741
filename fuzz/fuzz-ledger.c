/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness for the ledger (STATE_DIR/ledger: what xennetd made
 * and changed, read at start and undone by it): the bytes become the file
 * and go through xn_ledger_load(). Checked besides crashes:
 *  - a refused file is -EBADMSG with the number of a line it has, and
 *    leaves an empty ledger;
 *  - an accepted one holds only what undoing may act on: valid interface
 *    names, addresses and routes of one family, sysctls under net/ with
 *    a value of one word, no entry twice;
 *  - saved (xn_ledger_save) it loads back the same, and saving that again
 *    writes the same bytes;
 *  - with its profile path replaced by one a client may send (`xennet
 *    apply PATH`: absolute, any bytes but NUL), it is still read back as
 *    saved, or refused by the save, which then leaves the file as it was. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "fuzz-common.h"
#include "xennet/ledger.h"
#include "xennet/util.h"

static bool route_equal(const struct xn_route *a, const struct xn_route *b)
{
	return a->family == b->family && xn_addr_equal(&a->dst, &b->dst) &&
	       a->has_gateway == b->has_gateway && (!a->has_gateway || xn_addr_equal(&a->gateway, &b->gateway)) &&
	       a->has_prefsrc == b->has_prefsrc && (!a->has_prefsrc || xn_addr_equal(&a->prefsrc, &b->prefsrc)) &&
	       a->priority == b->priority && a->table == b->table && a->protocol == b->protocol &&
	       a->scope == b->scope;
}

static bool ledger_equal(const struct xn_ledger *a, const struct xn_ledger *b)
{
	if (strcmp(a->profile, b->profile) != 0 || a->n_bridges != b->n_bridges ||
	    a->n_ports != b->n_ports || a->n_addrs != b->n_addrs ||
	    a->n_moved_addrs != b->n_moved_addrs || a->n_moved_routes != b->n_moved_routes ||
	    a->n_sysctls != b->n_sysctls || a->n_tuned != b->n_tuned)
		return false;
	for (size_t i = 0; i < a->n_tuned; i++)
		if (strcmp(a->tuned[i].bridge, b->tuned[i].bridge) != 0 ||
		    a->tuned[i].stp != b->tuned[i].stp ||
		    a->tuned[i].forward_delay != b->tuned[i].forward_delay)
			return false;
	for (size_t i = 0; i < a->n_bridges; i++)
		if (strcmp(a->bridges[i], b->bridges[i]) != 0)
			return false;
	for (size_t i = 0; i < a->n_ports; i++)
		if (strcmp(a->ports[i].bridge, b->ports[i].bridge) != 0 ||
		    strcmp(a->ports[i].port, b->ports[i].port) != 0)
			return false;
	for (size_t i = 0; i < a->n_addrs; i++)
		if (strcmp(a->addrs[i].dev, b->addrs[i].dev) != 0 ||
		    !xn_addr_equal(&a->addrs[i].addr, &b->addrs[i].addr))
			return false;
	for (size_t i = 0; i < a->n_moved_addrs; i++)
		if (strcmp(a->moved_addrs[i].from, b->moved_addrs[i].from) != 0 ||
		    strcmp(a->moved_addrs[i].to, b->moved_addrs[i].to) != 0 ||
		    !xn_addr_equal(&a->moved_addrs[i].addr, &b->moved_addrs[i].addr))
			return false;
	for (size_t i = 0; i < a->n_moved_routes; i++)
		if (strcmp(a->moved_routes[i].from, b->moved_routes[i].from) != 0 ||
		    strcmp(a->moved_routes[i].to, b->moved_routes[i].to) != 0 ||
		    !route_equal(&a->moved_routes[i].route, &b->moved_routes[i].route))
			return false;
	for (size_t i = 0; i < a->n_sysctls; i++)
		if (strcmp(a->sysctls[i].path, b->sysctls[i].path) != 0 ||
		    strcmp(a->sysctls[i].original, b->sysctls[i].original) != 0)
			return false;
	return true;
}

static void check_addr(const struct xn_addr *a)
{
	FUZZ_CHECK(a->family == AF_INET || a->family == AF_INET6);
	FUZZ_CHECK(a->prefixlen <= (a->family == AF_INET ? 32 : 128));
}

static void check_routes(const struct xn_ledger *l)
{
	for (size_t i = 0; i < l->n_moved_routes; i++) {
		const struct xn_route *r = &l->moved_routes[i].route;
		FUZZ_CHECK(xn_ifname_valid(l->moved_routes[i].from) && xn_ifname_valid(l->moved_routes[i].to));
		check_addr(&r->dst);
		FUZZ_CHECK(r->family == r->dst.family);
		FUZZ_CHECK(!r->has_gateway || r->gateway.family == r->family);
		FUZZ_CHECK(!r->has_prefsrc || r->prefsrc.family == r->family);
	}
}

static void check_valid(const struct xn_ledger *l)
{
	FUZZ_CHECK(strnlen(l->profile, sizeof(l->profile)) < sizeof(l->profile));
	FUZZ_CHECK(!strchr(l->profile, '\n'));
	for (size_t i = 0; i < l->n_bridges; i++) {
		FUZZ_CHECK(xn_ifname_valid(l->bridges[i]));
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(l->bridges[i], l->bridges[j]) != 0);
	}
	for (size_t i = 0; i < l->n_ports; i++)
		FUZZ_CHECK(xn_ifname_valid(l->ports[i].bridge) && xn_ifname_valid(l->ports[i].port));
	for (size_t i = 0; i < l->n_addrs; i++) {
		FUZZ_CHECK(xn_ifname_valid(l->addrs[i].dev));
		check_addr(&l->addrs[i].addr);
	}
	for (size_t i = 0; i < l->n_moved_addrs; i++) {
		FUZZ_CHECK(xn_ifname_valid(l->moved_addrs[i].from) && xn_ifname_valid(l->moved_addrs[i].to));
		check_addr(&l->moved_addrs[i].addr);
	}
	check_routes(l);
	for (size_t i = 0; i < l->n_sysctls; i++) {
		const struct xn_ledger_sysctl *s = &l->sysctls[i];
		FUZZ_CHECK(strncmp(s->path, "net/", 4) == 0 && !strstr(s->path, ".."));
		FUZZ_CHECK(s->original[0] && !strpbrk(s->original, " \n") && !strpbrk(s->path, " \n"));
		FUZZ_CHECK(xn_ledger_sysctl(l, s->path) == s);
	}
}

static size_t read_all(const char *path, char *buf, size_t size)
{
	int r = xn_read_file(path, buf, size);

	FUZZ_CHECK(r >= 0 && (size_t)r < size - 1);
	return (size_t)r;
}

static void check_saved(const char *path, const struct xn_ledger *l)
{
	static char first[1 << 20], second[1 << 20];
	struct xn_ledger back;
	unsigned bad = 0;
	size_t n1, n2;

	FUZZ_CHECK(xn_ledger_save(path, l) == 0);
	n1 = read_all(path, first, sizeof(first));
	FUZZ_CHECK(xn_ledger_load(path, &back, &bad) == 0);
	FUZZ_CHECK(ledger_equal(l, &back));
	FUZZ_CHECK(xn_ledger_save(path, &back) == 0);
	n2 = read_all(path, second, sizeof(second));
	FUZZ_CHECK(n1 == n2 && memcmp(first, second, n1) == 0);
	xn_ledger_clear(&back);
}

/* The profile path of `xennet apply`: "/" and the input's first bytes. */
static void check_profile_path(const char *path, struct xn_ledger *l, const uint8_t *data, size_t size)
{
	static char before[1 << 20], after[1 << 20];
	size_t n = strnlen((const char *)data, size), nb, na;
	int r;

	if (n > sizeof(l->profile) - 2)
		n = sizeof(l->profile) - 2;
	l->profile[0] = '/';
	memcpy(l->profile + 1, data, n);
	l->profile[n + 1] = '\0';
	nb = read_all(path, before, sizeof(before));
	r = xn_ledger_save(path, l);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		na = read_all(path, after, sizeof(after));
		FUZZ_CHECK(na == nb && memcmp(before, after, na) == 0);
		return;
	}
	check_saved(path, l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *state = fuzz_state_path();
	struct xn_ledger l;
	unsigned bad = 0, lines = 0;
	int r;

	if (size > 64 * 1024)
		return 0;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (size && data[size - 1] != '\n')
		lines++;
	r = xn_ledger_load(fuzz_input_path(data, size), &l, &bad);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG);
		FUZZ_CHECK(bad >= 1 && bad <= lines);
		FUZZ_CHECK(!l.n_bridges && !l.n_ports && !l.n_addrs && !l.n_moved_addrs &&
			   !l.n_moved_routes && !l.n_sysctls && !l.profile[0]);
		return 0;
	}
	check_valid(&l);
	check_saved(state, &l);
	check_profile_path(state, &l, data, size);
	xn_ledger_clear(&l);
	return 0;
}
