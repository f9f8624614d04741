/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness for the mappings journal (STATE_DIR/mappings, read by
 * xn_publicip_open at start): the bytes become the file and go through
 * xn_mapset_load(). Checked besides crashes:
 *  - a refused file is -EBADMSG with the number of a line it has, and
 *    leaves an empty set;
 *  - an accepted one holds only IPv4 host addresses, ports 1-65535, tcp or
 *    udp, and valid names;
 *  - saved whole (xn_mapset_save) it loads back the same;
 *  - a change journaled at its end (a `map` line, then its `del` line, as
 *    `xennet map add|del` do) loads back as the same change made in
 *    memory: whatever the file ends with, such as a line cut short by a
 *    crash, an append is never lost or glued to it. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "fuzz-common.h"
#include "xennet/mapping.h"

static bool same_name(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool set_equal(const struct xn_mapset *a, const struct xn_mapset *b)
{
	if (a->n_maps != b->n_maps || a->n_fwds != b->n_fwds)
		return false;
	for (size_t i = 0; i < a->n_maps; i++) {
		const struct xn_mapping *x = &a->maps[i], *y = &b->maps[i];
		if (!xn_addr_equal(&x->public_addr, &y->public_addr) ||
		    !xn_addr_equal(&x->guest, &y->guest) || !same_name(x->name, y->name))
			return false;
	}
	for (size_t i = 0; i < a->n_fwds; i++) {
		const struct xn_forward *x = &a->fwds[i], *y = &b->fwds[i];
		if (!xn_addr_equal(&x->public_addr, &y->public_addr) ||
		    !xn_addr_equal(&x->guest, &y->guest) || x->public_port != y->public_port ||
		    x->guest_port != y->guest_port || x->proto != y->proto ||
		    !same_name(x->name, y->name))
			return false;
	}
	return true;
}

static void check_host(const struct xn_addr *a)
{
	FUZZ_CHECK(a->family == AF_INET && a->prefixlen == 32);
}

static void check_valid(const struct xn_mapset *s)
{
	for (size_t i = 0; i < s->n_maps; i++) {
		check_host(&s->maps[i].public_addr);
		check_host(&s->maps[i].guest);
		FUZZ_CHECK(!s->maps[i].name || xn_mapping_name_valid(s->maps[i].name));
	}
	for (size_t i = 0; i < s->n_fwds; i++) {
		const struct xn_forward *f = &s->fwds[i];
		check_host(&f->public_addr);
		check_host(&f->guest);
		FUZZ_CHECK(f->public_port && f->guest_port);
		FUZZ_CHECK(f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP);
		FUZZ_CHECK(!f->name || xn_mapping_name_valid(f->name));
	}
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	FUZZ_CHECK(fd >= 0);
	fuzz_write_fd(fd, data, size);
	close(fd);
}

static void load_ok(const char *path, struct xn_mapset *s)
{
	unsigned bad = 0;
	size_t records;

	FUZZ_CHECK(xn_mapset_load(path, s, &bad, &records) == 0);
}

static void check_saved(const char *path, const struct xn_mapset *s)
{
	struct xn_mapset back;

	FUZZ_CHECK(xn_mapset_save(path, s) == 0);
	load_ok(path, &back);
	FUZZ_CHECK(set_equal(s, &back));
	xn_mapset_clear(&back);
}

/* The file as it was, one map journaled and then removed. */
static void check_journal(const char *path, const uint8_t *data, size_t size, struct xn_mapset *s)
{
	struct xn_mapping m = { .name = "fuzz" };
	struct xn_mapset back;

	FUZZ_CHECK(xn_addr_parse_ipv4_host("203.0.113.77", &m.public_addr) == 0);
	FUZZ_CHECK(xn_addr_parse_ipv4_host("10.0.0.77", &m.guest) == 0);
	write_file(path, data, size);

	FUZZ_CHECK(xn_mapset_journal_map(path, &m, true) == 0);
	FUZZ_CHECK(xn_mapset_add_map(s, &m) == 0);
	load_ok(path, &back);
	FUZZ_CHECK(set_equal(s, &back));
	xn_mapset_clear(&back);

	FUZZ_CHECK(xn_mapset_journal_map(path, &m, false) == 0);
	FUZZ_CHECK(xn_mapset_del_map(s, &m.public_addr, NULL) == 0);
	load_ok(path, &back);
	FUZZ_CHECK(set_equal(s, &back));
	xn_mapset_clear(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_state_path();
	struct xn_mapset s;
	unsigned bad = 0, lines = 0;
	size_t records = 0;
	int r;

	if (size > 256 * 1024)
		return 0;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	write_file(path, data, size);
	r = xn_mapset_load(path, &s, &bad, &records);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG);
		FUZZ_CHECK(bad >= 1 && bad <= lines);
		FUZZ_CHECK(s.n_maps == 0 && s.n_fwds == 0 && !s.maps && !s.fwds && !s.names);
		return 0;
	}
	FUZZ_CHECK(records <= lines);
	check_valid(&s);
	check_saved(path, &s);
	check_journal(path, data, size, &s);
	xn_mapset_clear(&s);
	return 0;
}
