/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mappings file is a journal: a whole save, then changes appended one
 * line each. What is loaded back must be exactly what was in force; an
 * append cut short by a crash is ignored; a bad line is named. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xennet/mapping.h"

#include "check.h"

static struct xn_mapping map(const char *pub, const char *guest, const char *name)
{
	struct xn_mapping m = { 0 };

	xn_addr_parse_ipv4_host(pub, &m.public_addr);
	xn_addr_parse_ipv4_host(guest, &m.guest);
	m.name = *name ? name : NULL;
	return m;
}

static bool has_map(const struct xn_mapset *s, const char *pub, const char *guest)
{
	struct xn_mapping m = map(pub, guest, "");

	for (size_t i = 0; i < s->n_maps; i++)
		if (s->maps[i].public_addr.v4.s_addr == m.public_addr.v4.s_addr)
			return s->maps[i].guest.v4.s_addr == m.guest.v4.s_addr;
	return false;
}

static void append_raw(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");

	fputs(text, f);
	fclose(f);
}

int main(void)
{
	char dir[] = "/tmp/xennet-unit.XXXXXX", path[64];
	struct xn_mapset s = { 0 }, back;
	struct xn_forward f = { .public_port = 80, .guest_port = 8080, .proto = IPPROTO_TCP };
	unsigned bad = 0;
	size_t records;
	int r;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/mappings", dir);

	/* Changes appended to a file that does not exist yet. */
	struct xn_mapping a = map("192.0.2.1", "10.0.0.1", "a"), b = map("192.0.2.2", "10.0.0.2", "-");
	check(xn_mapset_journal_map(path, &a, true) == 0, "first append creates the file");
	check(xn_mapset_journal_map(path, &b, true) == 0, "second append");
	xn_addr_parse_ipv4_host("192.0.2.3", &f.public_addr);
	xn_addr_parse_ipv4_host("10.0.0.3", &f.guest);
	check(xn_mapset_journal_forward(path, &f, true) == 0, "forward append");
	check(xn_mapset_journal_map(path, &a, false) == 0, "del append");
	r = xn_mapset_load(path, &back, &bad, &records);
	check(r == 0, "load journal: %d", r);
	check(back.n_maps == 1 && has_map(&back, "192.0.2.2", "10.0.0.2"), "a deleted, b kept (%zu maps)", back.n_maps);
	check(back.n_fwds == 1 && back.fwds[0].public_port == 80 && back.fwds[0].guest_port == 8080,
	      "the forward kept");
	check(records == 4, "four records read (%zu)", records);
	xn_mapset_clear(&back);

	/* The same address mapped again after its removal. */
	struct xn_mapping a2 = map("192.0.2.1", "10.0.0.9", "again");
	check(xn_mapset_journal_map(path, &a2, true) == 0, "re-add append");
	check(xn_mapset_journal_forward(path, &f, false) == 0, "forward del append");
	r = xn_mapset_load(path, &back, &bad, &records);
	check(r == 0 && back.n_maps == 2 && has_map(&back, "192.0.2.1", "10.0.0.9") && back.n_fwds == 0,
	      "re-added with its new guest, forward gone");
	xn_mapset_clear(&back);

	/* A whole save (the compaction) then more changes. */
	check(xn_mapset_add_map(&s, &a2) == 0 && xn_mapset_add_map(&s, &b) == 0, "set built");
	check(xn_mapset_save(path, &s) == 0, "save");
	r = xn_mapset_load(path, &back, &bad, &records);
	check(r == 0 && back.n_maps == 2 && records == 2, "save loads back (%zu records)", records);
	xn_mapset_clear(&back);

	/* An append cut short by a crash: no newline, ignored. */
	append_raw(path, "map 192.0.2.7 10.0.");
	r = xn_mapset_load(path, &back, &bad, &records);
	check(r == 0 && back.n_maps == 2, "a torn last line is ignored (%d, %zu maps)", r, back.n_maps);
	xn_mapset_clear(&back);
	/* ... and cut by the next append, which is not glued to it. */
	struct xn_mapping c = map("192.0.2.8", "10.0.0.8", "c");
	check(xn_mapset_journal_map(path, &c, true) == 0, "append after a torn line");
	r = xn_mapset_load(path, &back, &bad, &records);
	check(r == 0 && back.n_maps == 3 && has_map(&back, "192.0.2.8", "10.0.0.8") &&
		      !has_map(&back, "192.0.2.7", "10.0.0.1"),
	      "the torn line is gone, the new one there (%d, %zu maps, bad line %u)", r, back.n_maps, bad);
	xn_mapset_clear(&back);

	/* A torn line longer than what is read back of the end: cut all the
	 * same (the loader ignores it whatever its length). */
	{
		char torn[2000];
		memset(torn, 'x', sizeof(torn) - 1);
		torn[sizeof(torn) - 1] = '\0';
		memcpy(torn, "map 192.0.2.9 10.0.0.9 ", 23);
		append_raw(path, torn);
		struct xn_mapping d = map("192.0.2.10", "10.0.0.10", "d");
		check(xn_mapset_journal_map(path, &d, true) == 0, "append after a long torn line");
		r = xn_mapset_load(path, &back, &bad, &records);
		check(r == 0 && back.n_maps == 4 && has_map(&back, "192.0.2.10", "10.0.0.10"),
		      "a long torn line is cut too, the new one there (%d, %zu maps, bad line %u)", r,
		      back.n_maps, bad);
		xn_mapset_clear(&back);
	}

	/* A bad line is refused with its number. */
	check(xn_mapset_save(path, &s) == 0, "save again");
	append_raw(path, "del map 192.0.2.300\n");
	r = xn_mapset_load(path, &back, &bad, &records);
	check(r == -EBADMSG && bad == 4, "a bad del line is refused, line %u", bad);
	xn_mapset_clear(&back);
	check(xn_mapset_save(path, &s) == 0, "save again");
	append_raw(path, "del forward 192.0.2.3 80 sctp\n");
	r = xn_mapset_load(path, &back, &bad, &records);
	check(r == -EBADMSG && bad == 4, "a del forward with a bad protocol is refused, line %u", bad);
	xn_mapset_clear(&back);

	xn_mapset_clear(&s);

	/* Names: the set keeps its own copies (the caller's buffer may go),
	 * and gives back the room of removed ones once they outweigh the rest. */
	char buf[XN_MAPPING_NAME_MAX + 1];
	bool names_ok = true;
	for (unsigned i = 0; i < 2000; i++) {
		struct xn_mapping m = { 0 };
		char ip[32];
		snprintf(ip, sizeof(ip), "198.18.%u.%u", i / 250, i % 250 + 1);
		xn_addr_parse_ipv4_host(ip, &m.public_addr);
		snprintf(ip, sizeof(ip), "10.1.%u.%u", i / 250, i % 250 + 1);
		xn_addr_parse_ipv4_host(ip, &m.guest);
		snprintf(buf, sizeof(buf), "vm-%u", i);
		m.name = i % 10 == 9 ? NULL : buf;
		names_ok &= xn_mapset_add_map(&s, &m) == 0;
	}
	memset(buf, 'x', sizeof(buf) - 1);
	check(names_ok && s.n_maps == 2000 && strcmp(s.maps[1234].name, "vm-1234") == 0 &&
		      s.maps[9].name == NULL,
	      "names copied into the set");
	for (unsigned i = 0; i < 2000; i++) {
		if (i % 4 == 0)
			continue;
		struct xn_addr pub;
		char ip[32];
		snprintf(ip, sizeof(ip), "198.18.%u.%u", i / 250, i % 250 + 1);
		xn_addr_parse_ipv4_host(ip, &pub);
		names_ok &= xn_mapset_del_map(&s, &pub, NULL) == 0;
	}
	size_t dead = s.names_dead;
	xn_mapset_tidy_names(&s);
	names_ok &= s.n_maps == 500;
	for (size_t i = 0; i < s.n_maps; i++) {
		unsigned n = ntohl(s.maps[i].public_addr.v4.s_addr) & 0xffff;
		unsigned idx = (n >> 8) * 250 + (n & 0xff) - 1;
		snprintf(buf, sizeof(buf), "vm-%u", idx);
		names_ok &= idx % 10 == 9 ? s.maps[i].name == NULL
					  : s.maps[i].name && strcmp(s.maps[i].name, buf) == 0;
	}
	check(names_ok && dead > 4096 && s.names_dead == 0 && s.names_live < dead,
	      "removed names given back, the others intact (dead %zu, live %zu)", dead, s.names_live);
	xn_mapset_clear(&s);
	unlink(path);
	rmdir(dir);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
