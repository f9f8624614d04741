/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the address helpers and the profile parser.
 *
 * usage: test-profile BAD_FIXTURE_DIR PROFILES_DIR
 * meson passes both (tests/unit/bad and profiles of the source tree). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xennet/addr.h"
#include "xennet/profile.h"
#include "xennet/util.h"

static unsigned n_passed, n_failed;

static void check_at(bool ok, const char *expr, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void check_at(bool ok, const char *expr, int line, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		n_passed++;
		return;
	}
	n_failed++;
	fprintf(stderr, "FAIL test-profile.c:%d: %s", line, expr);
	if (fmt) {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
}

#define CHECK(cond) check_at(!!(cond), #cond, __LINE__, NULL)
#define CHECKF(cond, ...) check_at(!!(cond), #cond, __LINE__, __VA_ARGS__)

static const char *bad_dir, *profiles_dir;

static void dump_diag(const struct xn_diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "    | %s\n", d->lines[i]);
}

/* ---- a file to load, written to TMPDIR ---- */

static char *write_tmp(const char *data, size_t len)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd;

	if (asprintf(&path, "%s/xn-test-profile-XXXXXX", dir ? dir : "/tmp") < 0)
		abort();
	fd = mkstemp(path);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		perror("write_tmp");
		abort();
	}
	close(fd);
	return path;
}

static void drop_tmp(char *path)
{
	unlink(path);
	free(path);
}

/* Loads text from a temporary file. */
static int load_text(const char *text, size_t len, struct xn_profile **p,
		     struct xn_diag *d, char **ret_path)
{
	char *path = write_tmp(text, len);
	int r = xn_profile_load(path, p, d);

	if (ret_path)
		*ret_path = path;
	else
		drop_tmp(path);
	return r;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return NULL;
	n = getdelim(&buf, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Replaces every occurrence of from by to (same length or shorter). */
static void replace_all(char *s, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	char *p;

	while ((p = strstr(s, from))) {
		memmove(p + tl, p + fl, strlen(p + fl) + 1);
		memcpy(p, to, tl);
		s = p + tl;
	}
}

/* ---- addr.c ---- */

static void check_roundtrip(const char *in, bool require_prefix,
			    const char *want)
{
	char buf[XN_ADDR_STRLEN];
	struct xn_addr a, b;
	int r;

	r = xn_addr_parse(in, require_prefix, &a);
	CHECKF(r == 0, "parse \"%s\" gave %d", in, r);
	if (r < 0)
		return;
	xn_addr_format(&a, true, buf);
	CHECKF(strcmp(buf, want) == 0, "\"%s\" formats as \"%s\", want \"%s\"",
	       in, buf, want);
	CHECKF(xn_addr_parse(buf, true, &b) == 0 && xn_addr_equal(&a, &b),
	       "\"%s\" does not parse back to the same address", buf);
}

static void check_rejected(const char *in, bool require_prefix)
{
	struct xn_addr a, sentinel;
	int r;

	memset(&a, 0xaa, sizeof(a));
	memset(&sentinel, 0xaa, sizeof(sentinel));
	r = xn_addr_parse(in, require_prefix, &a);
	CHECKF(r == -EINVAL, "\"%s\" (prefix %s) accepted or gave %d", in,
	       require_prefix ? "required" : "optional", r);
	CHECKF(memcmp(&a, &sentinel, sizeof(a)) == 0,
	       "\"%s\": output written on failure", in);
}

static struct xn_addr A(const char *s)
{
	struct xn_addr a = { 0 };

	if (xn_addr_parse(s, false, &a) < 0) {
		fprintf(stderr, "bad test address %s\n", s);
		abort();
	}
	return a;
}

static void test_addr(void)
{
	static const char *const junk[] = {
		"1.2.3.4;reboot", "10.0.0.1/33", "10.0.0.1/", "::1/129",
		" 1.2.3.4",	  "1.2.3.4 ",	 "1.2.3.4/24 ", "1.2.3.4/ 24",
		"1.2.3.4/+24",	  "1.2.3.4/-1",	 "1.2.3.4/2a", "1.2.3.4/0x10",
		"1.2.3.4/1234",	  "1.2.3",	 "1.2.3.4.5",  "256.1.1.1",
		"",		  "/24",	 "1.2.3.4/24/24", "fe80::1%eth0",
		"fe80::1%eth0/64", "0x0a.0.0.1", "10.0.0.1\n", "::1 ",
		"12345::1/64",	  "1.2.3.4\t",	 "localhost",  "1.2.3.4/24;x",
	};
	char buf[XN_ADDR_STRLEN];
	struct xn_addr a, n, sentinel;

	check_roundtrip("10.0.0.1/24", true, "10.0.0.1/24");
	check_roundtrip("192.168.1.254/32", true, "192.168.1.254/32");
	check_roundtrip("0.0.0.0/0", true, "0.0.0.0/0");
	check_roundtrip("fd00::1/64", true, "fd00::1/64");
	check_roundtrip("FD00:0:0::0001/64", true, "fd00::1/64");
	check_roundtrip("::/0", true, "::/0");
	check_roundtrip("2001:db8::1/128", true, "2001:db8::1/128");
	check_roundtrip("::ffff:192.0.2.1/96", true, "::ffff:192.0.2.1/96");
	check_roundtrip("10.0.0.1", false, "10.0.0.1/32");
	check_roundtrip("2001:db8::5", false, "2001:db8::5/128");

	CHECK(xn_addr_parse("10.0.0.1/24", true, &a) == 0 &&
	      a.family == AF_INET && a.prefixlen == 24);
	CHECK(xn_addr_parse("fd00::1/64", true, &a) == 0 &&
	      a.family == AF_INET6 && a.prefixlen == 64);
	CHECK(strcmp(xn_addr_format(&a, false, buf), "fd00::1") == 0);

	for (size_t i = 0; i < XN_ARRAY_SIZE(junk); i++) {
		check_rejected(junk[i], true);
		check_rejected(junk[i], false);
	}
	check_rejected("10.0.0.1", true);
	check_rejected("fd00::1", true);
	CHECK(xn_addr_parse(NULL, false, &a) == -EINVAL);

	CHECK(xn_addr_parse_ipv4_host("192.0.2.1", &a) == 0 &&
	      a.family == AF_INET && a.prefixlen == 32);
	memset(&a, 0xaa, sizeof(a));
	memset(&sentinel, 0xaa, sizeof(sentinel));
	CHECK(xn_addr_parse_ipv4_host("192.0.2.1/32", &a) == -EINVAL);
	CHECK(xn_addr_parse_ipv4_host("192.0.2.1/", &a) == -EINVAL);
	CHECK(xn_addr_parse_ipv4_host("::1", &a) == -EINVAL);
	CHECK(xn_addr_parse_ipv4_host("1.2.3.4;reboot", &a) == -EINVAL);
	CHECK(xn_addr_parse_ipv4_host(" 1.2.3.4", &a) == -EINVAL);
	CHECK(xn_addr_parse_ipv4_host("", &a) == -EINVAL);
	CHECK(memcmp(&a, &sentinel, sizeof(a)) == 0);

	/* equal: family, address and prefix */
	a = A("10.0.0.1/24");
	n = A("10.0.0.1/24");
	CHECK(xn_addr_equal(&a, &n));
	n = A("10.0.0.1/25");
	CHECK(!xn_addr_equal(&a, &n));
	n = A("10.0.0.2/24");
	CHECK(!xn_addr_equal(&a, &n));
	n = A("::a00:1/24");
	CHECK(!xn_addr_equal(&a, &n));

	/* network */
	a = A("10.1.2.3/12");
	n = xn_addr_network(&a);
	CHECK(strcmp(xn_addr_format(&n, true, buf), "10.0.0.0/12") == 0);
	a = A("10.0.0.77/24");
	n = xn_addr_network(&a);
	CHECK(strcmp(xn_addr_format(&n, true, buf), "10.0.0.0/24") == 0);
	a = A("10.0.0.77/0");
	n = xn_addr_network(&a);
	CHECK(strcmp(xn_addr_format(&n, true, buf), "0.0.0.0/0") == 0);
	a = A("fd00::1:2:3:4/64");
	n = xn_addr_network(&a);
	CHECK(strcmp(xn_addr_format(&n, true, buf), "fd00::/64") == 0);
	a = A("fd00:1234:5678::1/20");
	n = xn_addr_network(&a);
	CHECK(strcmp(xn_addr_format(&n, true, buf), "fd00:1000::/20") == 0);

	/* in_network */
	struct {
		const char *net, *host;
		bool in;
	} in[] = {
		{ "10.0.0.0/24", "10.0.0.77", true },
		{ "10.0.0.1/24", "10.0.0.255", true },
		{ "10.0.0.0/24", "10.0.1.1", false },
		{ "10.0.0.1/23", "10.0.1.5", true },
		{ "10.0.0.128/25", "10.0.0.200", true },
		{ "10.0.0.128/25", "10.0.0.100", false },
		{ "0.0.0.0/0", "203.0.113.9", true },
		{ "10.0.0.1/32", "10.0.0.1", true },
		{ "10.0.0.1/32", "10.0.0.2", false },
		{ "10.0.0.0/8", "::a00:1", false },
		{ "fd00::/64", "fd00::abcd", true },
		{ "fd00::/64", "fd00:0:0:1::1", false },
		{ "::/0", "2001:db8::1", true },
		{ "fd00::/8", "fc00::1", false },
		{ "fc00::/7", "fdff::1", true },
	};
	for (size_t i = 0; i < XN_ARRAY_SIZE(in); i++) {
		struct xn_addr net = A(in[i].net), host = A(in[i].host);
		CHECKF(xn_addr_in_network(&net, &host) == in[i].in,
		       "%s in %s should be %d", in[i].host, in[i].net, in[i].in);
	}

	/* network or broadcast */
	struct {
		const char *addr;
		bool nb;
	} nb[] = {
		{ "10.0.0.0/24", true },	{ "10.0.0.255/24", true },
		{ "10.0.0.1/24", false },	{ "10.0.0.254/24", false },
		{ "10.0.0.0/31", false },	{ "10.0.0.1/31", false },
		{ "10.0.0.1/32", false },	{ "10.0.0.0/32", false },
		{ "10.0.0.3/30", true },	{ "10.0.0.2/30", false },
		{ "0.0.0.0/0", true },		{ "fd00::/64", true },
		{ "fd00::1/64", false },	{ "fd00::ffff:ffff:ffff:ffff/64", false },
		{ "fd00::/127", false },	{ "fd00::/128", false },
	};
	for (size_t i = 0; i < XN_ARRAY_SIZE(nb); i++) {
		struct xn_addr x = A(nb[i].addr);
		CHECKF(xn_addr_is_network_or_broadcast(&x) == nb[i].nb,
		       "%s network/broadcast should be %d", nb[i].addr, nb[i].nb);
	}

	a = (struct xn_addr){ .family = 12345 };
	CHECK(strcmp(xn_addr_format(&a, true, buf), "(invalid)") == 0);
}

/* ---- the example profiles ---- */

static struct xn_profile *load_ok(const char *path)
{
	struct xn_diag d = { 0 };
	struct xn_profile *p = NULL;
	int r = xn_profile_load(path, &p, &d);

	CHECKF(r == 0 && p && d.n == 0, "%s: load gave %d", path, r);
	if (r < 0)
		dump_diag(&d);
	xn_diag_free(&d);
	return r == 0 ? p : NULL;
}

static bool addr_is(const struct xn_addr *a, const char *want)
{
	char buf[XN_ADDR_STRLEN];

	return strcmp(xn_addr_format(a, true, buf), want) == 0;
}

static void test_examples(void)
{
	struct xn_profile *p;
	char *path, *text, *tmp;

	/* bridged */
	if (asprintf(&path, "%s/bridged.conf", profiles_dir) < 0)
		abort();
	p = load_ok(path);
	if (p) {
		const struct xn_bridge_conf *b = xn_profile_bridge(p, "xenbr0");
		CHECK(strcmp(p->path, path) == 0);
		CHECK(p->mode == XN_MODE_BRIDGED);
		CHECK(strcmp(xn_mode_name(p->mode), "bridged") == 0);
		CHECK(p->antispoof);
		CHECK(p->n_bridges == 1);
		CHECK(b == &p->bridges[0]);
		CHECK(b && strcmp(b->uplink, "eth0") == 0);
		CHECK(b && b->take_addresses);
		CHECK(b && b->n_addresses == 0 && b->mtu == 0);
		CHECK(b && b->line > 0);
		CHECK(p->n_maps == 0);
		CHECK(p->routed_uplink[0] == '\0' && p->nat_uplink[0] == '\0');
		CHECK(xn_profile_nat_gateway(p) == NULL);
		CHECK(xn_profile_bridge(p, "xenbr1") == NULL);
	}
	xn_profile_free(p);

	/* the commented-out keys of bridged.conf are valid too */
	text = read_all(path);
	CHECK(text != NULL);
	if (text) {
		replace_all(text, ";address", "address");
		replace_all(text, ";mtu", "mtu");
		tmp = write_tmp(text, strlen(text));
		p = load_ok(tmp);
		CHECK(p && p->bridges[0].n_addresses == 1 &&
		      addr_is(&p->bridges[0].addresses[0], "192.168.10.1/24"));
		CHECK(p && p->bridges[0].mtu == 1500);
		xn_profile_free(p);
		drop_tmp(tmp);
	}
	free(text);
	free(path);

	/* routed */
	if (asprintf(&path, "%s/routed.conf", profiles_dir) < 0)
		abort();
	p = load_ok(path);
	if (p) {
		CHECK(p->mode == XN_MODE_ROUTED);
		CHECK(p->antispoof);
		CHECK(strcmp(p->routed_uplink, "eth0") == 0);
		CHECK(p->n_bridges == 0 && p->n_maps == 0);
		CHECK(xn_profile_nat_gateway(p) == NULL);
	}
	xn_profile_free(p);
	free(path);

	/* nat */
	if (asprintf(&path, "%s/nat.conf", profiles_dir) < 0)
		abort();
	p = load_ok(path);
	if (p) {
		const struct xn_bridge_conf *b = xn_profile_bridge(p, "xenbr0");
		const struct xn_addr *gw = xn_profile_nat_gateway(p);
		CHECK(p->mode == XN_MODE_NAT);
		CHECK(strcmp(p->nat_uplink, "eth0") == 0);
		CHECK(strcmp(p->nat_bridge, "xenbr0") == 0);
		CHECK(p->n_bridges == 1 && b);
		CHECK(b && b->uplink[0] == '\0' && !b->take_addresses);
		CHECK(b && b->n_addresses == 1 &&
		      addr_is(&b->addresses[0], "10.0.0.1/24"));
		CHECK(gw && addr_is(gw, "10.0.0.1/24"));
		CHECK(p->n_maps == 0);
	}
	xn_profile_free(p);

	/* and its commented-out [map web] works once uncommented */
	text = read_all(path);
	CHECK(text != NULL);
	if (text) {
		replace_all(text, ";[map", "[map");
		replace_all(text, ";public", "public");
		replace_all(text, ";guest", "guest");
		tmp = write_tmp(text, strlen(text));
		p = load_ok(tmp);
		CHECK(p && p->n_maps == 1);
		if (p && p->n_maps == 1) {
			CHECK(strcmp(p->maps[0].name, "web") == 0);
			CHECK(addr_is(&p->maps[0].public_addr, "192.0.2.10/32"));
			CHECK(addr_is(&p->maps[0].guest, "10.0.0.10/32"));
			CHECK(p->maps[0].line > 0);
		}
		xn_profile_free(p);
		drop_tmp(tmp);
	}
	free(text);
	free(path);
}

/* ---- malformed profiles ---- */

static const struct bad_case {
	const char *file;
	unsigned line;
	const char *msg; /* a distinctive part of the message */
	size_t n_errors; /* errors in total: no echoes of the first */
} bad_cases[] = {
	/* port forwards */
	{ "forward-bad-port.conf", 9, "192.0.2.10:99999/tcp", 1 },
	{ "forward-not-nat.conf", 5, "only used with mode = nat", 1 },
	{ "forward-collides-map.conf", 11, "a port forward would collide with it", 1 },
	{ "forward-missing-guest.conf", 8, "missing key \"guest\" in [forward web]", 1 },
	/* sections */
	{ "dup-section.conf", 7, "duplicate section [bridge xenbr0], first at line 4", 1 },
	{ "dup-section-consecutive.conf", 5, "duplicate section [bridge xenbr0]", 1 },
	{ "dup-section-xennet.conf", 2, "duplicate section [xennet], first at line 1", 1 },
	{ "empty-section.conf", 7, "empty section [bridge xenbr1]", 1 },
	{ "unknown-section.conf", 7, "unknown section \"firewall\"", 1 },
	{ "bridge-no-name.conf", 4, "missing name in section header [bridge]", 1 },
	{ "bridge-bad-name.conf", 4, "invalid bridge name \"bad/name\"", 1 },
	{ "xennet-extra.conf", 1, "section [xennet] takes no name, got \"extra\"", 1 },
	{ "empty-header.conf", 6, "empty section header", 1 },
	{ "header-no-bracket.conf", 3, "missing \"]\" in section header \"[bridge xenbr0\"", 1 },
	{ "header-trailing.conf", 1, "unexpected text \"mode = bridged\" after section header", 1 },
	{ "map-bad-name.conf", 11, "invalid map name \"web server\"", 1 },
	/* lines and keys */
	{ "unknown-key.conf", 5, "unknown key \"upilnk\" in [bridge xenbr0]", 1 },
	{ "key-outside.conf", 2, "key \"mode\" outside of any section", 1 },
	{ "dup-key.conf", 7, "key \"uplink\" given twice in [bridge xenbr0], first at line 5", 1 },
	{ "empty-value.conf", 5, "empty value for key \"uplink\" in [bridge xenbr0]", 1 },
	{ "missing-key-name.conf", 5, "missing key name", 1 },
	{ "syntax-error.conf", 5, "syntax error, expected key = value or [section], got \"uplink eth0\"", 1 },
	{ "line-too-long.conf", 6, "line too long", 1 },
	{ "hash-comment.conf", 5, "invalid interface name \"eth0 # the NIC\"", 1 },
	/* values */
	{ "bad-mode.conf", 2, "invalid mode \"bridge\" for key \"mode\" in [xennet]", 1 },
	{ "bad-bool.conf", 6, "invalid boolean \"maybe\" for key \"take_addresses\"", 1 },
	{ "bad-antispoof.conf", 3, "invalid boolean \"sometimes\" for key \"antispoof\"", 1 },
	{ "bad-address.conf", 7, "invalid address \"10.0.0.300/24\" for key \"address\" in [bridge xenbr0]", 1 },
	{ "bad-prefix.conf", 5, "\"10.0.0.1/33\" for key \"address\" in [bridge xenbr0]: the prefix length must be 0 to 32", 1 },
	{ "bad-prefix6.conf", 5, "\"fd00::1/129\" for key \"address\" in [bridge xenbr0]: the prefix length must be 0 to 128", 1 },
	{ "no-prefix.conf", 5, "a prefix length is required", 1 },
	{ "network-address.conf", 5, "that is the network address of 10.0.0.0/24", 1 },
	{ "broadcast-address.conf", 5, "that is the broadcast address of 10.0.0.0/24", 1 },
	{ "multicast-address.conf", 5, "\"224.0.0.1/24\" for key \"address\" in [bridge xenbr0]: that is a multicast address", 1 },
	{ "ifname-long.conf", 5, "invalid interface name \"enp0s31f6abcdefgh\" for key \"uplink\" in [bridge xenbr0]: 17 bytes long, at most 15", 1 },
	{ "ifname-chars.conf", 5, "invalid interface name \"eth0;reboot\"", 1 },
	{ "ifname-all.conf", 4, "invalid interface name \"all\" for key \"uplink\" in [routed]", 1 },
	{ "mtu-range.conf", 6, "invalid MTU \"70000\" for key \"mtu\" in [bridge xenbr0]: must be a number from 68 to 65535", 1 },
	{ "mtu-nan.conf", 6, "invalid MTU \"1500b\"", 1 },
	{ "map-public-prefix.conf", 12, "invalid IPv4 address \"192.0.2.10/32\" for key \"public\" in [map web]", 1 },
	{ "map-guest-ipv6.conf", 13, "invalid IPv4 address \"fd00::10\" for key \"guest\" in [map web]: only IPv4", 1 },
	/* what spans keys and sections */
	{ "missing-xennet.conf", 1, "missing [xennet] section", 1 },
	{ "missing-mode.conf", 2, "missing key \"mode\" in [xennet]", 1 },
	{ "dup-address.conf", 7, "address \"10.0.0.1/16\" is given twice in [bridge xenbr0] (first at line 5)", 1 },
	{ "overlap.conf", 8, "address \"10.0.5.1/16\" of [bridge xenbr1] overlaps the network 10.0.0.0/24 of [bridge xenbr0] (line 5)", 1 },
	{ "mtu-ipv6.conf", 6, "below 1280", 1 },
	{ "take-no-uplink.conf", 6, "take_addresses = yes in [bridge xenbr0] needs an uplink", 1 },
	{ "dup-uplink.conf", 8, "uplink \"eth0\" of [bridge xenbr1] is already the uplink of [bridge xenbr0] (line 5)", 1 },
	{ "uplink-is-bridge.conf", 5, "uplink \"xenbr1\" of [bridge xenbr0] is a bridge defined at line 7", 1 },
	{ "uplink-is-self.conf", 5, "uplink \"xenbr0\" of [bridge xenbr0] is the bridge itself", 1 },
	{ "routed-wrong-mode.conf", 7, "section [routed] is only used with mode = routed, but mode is bridged (line 2)", 1 },
	{ "nat-wrong-mode.conf", 5, "section [nat] is only used with mode = nat, but mode is routed", 1 },
	{ "map-wrong-mode.conf", 6, "section [map web] is only used with mode = nat", 1 },
	{ "bridged-no-bridge.conf", 3, "mode = bridged needs at least one [bridge NAME] section", 1 },
	{ "routed-no-routed.conf", 2, "mode = routed needs a [routed] section", 1 },
	{ "routed-uplink-port.conf", 6, "uplink \"eth0\" in [routed] is the uplink of [bridge xenbr0] (line 4), a bridge port", 1 },
	{ "nat-no-nat.conf", 2, "mode = nat needs a [nat] section", 1 },
	{ "nat-missing-bridge.conf", 5, "missing key \"bridge\" in [nat]", 1 },
	{ "nat-bridge-undefined.conf", 7, "bridge \"xenbr9\" in [nat] is not defined", 1 },
	{ "nat-bridge-no-ipv4.conf", 3, "[bridge xenbr0] is the nat bridge but has no IPv4 address", 1 },
	{ "nat-bridge-uplink.conf", 5, "[bridge xenbr0] is the nat bridge and must not have an uplink (\"eth1\")", 1 },
	{ "nat-uplink-is-bridge.conf", 6, "uplink \"xenbr0\" in [nat] is the nat bridge itself", 1 },
	{ "nat-uplink-port.conf", 9, "uplink \"eth0\" in [nat] is the uplink of [bridge xenbr1] (line 6), a bridge port; use the bridge xenbr1", 1 },
	{ "nat-gateway-32.conf", 4, "leaves no room for guests", 1 },
	{ "map-public-inside.conf", 12, "public address \"10.0.0.20\" of [map web] is inside the guest network 10.0.0.0/24", 1 },
	{ "map-guest-outside.conf", 13, "guest address \"10.0.1.10\" of [map web] is outside the guest network 10.0.0.0/24", 1 },
	{ "map-guest-gateway.conf", 13, "guest address \"10.0.0.1\" of [map web] is the gateway address", 1 },
	{ "map-guest-broadcast.conf", 13, "is the network or broadcast address of 10.0.0.0/24", 1 },
	{ "map-dup-public.conf", 16, "public address \"192.0.2.10\" of [map mail] is already mapped by [map web] (line 12)", 1 },
	{ "map-dup-guest.conf", 17, "guest address \"10.0.0.10\" of [map mail] is already mapped by [map web] (line 13)", 1 },
	{ "map-public-is-bridge.conf", 11, "public address \"192.0.2.1\" of [map web] is the address of [bridge xenbr1] (line 6)", 1 },
	{ "map-missing-guest.conf", 11, "missing key \"guest\" in [map web]", 1 },
};

/* Is there a diag line "PATH:LINE: ...msg..."? */
static bool diag_has(const struct xn_diag *d, const char *path, unsigned line,
		     const char *msg)
{
	char *prefix;
	bool found = false;

	if (asprintf(&prefix, "%s:%u: ", path, line) < 0)
		abort();
	for (size_t i = 0; i < d->n && !found; i++)
		found = strncmp(d->lines[i], prefix, strlen(prefix)) == 0 &&
			strstr(d->lines[i] + strlen(prefix), msg);
	free(prefix);
	return found;
}

static void test_bad(void)
{
	for (size_t i = 0; i < XN_ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *t = &bad_cases[i];
		struct xn_profile *p = (struct xn_profile *)&n_passed; /* sentinel */
		struct xn_diag d = { 0 };
		char *path;
		int r;

		if (asprintf(&path, "%s/%s", bad_dir, t->file) < 0)
			abort();
		r = xn_profile_load(path, &p, &d);
		CHECKF(r == -EINVAL, "%s: load gave %d", t->file, r);
		CHECKF(p == (struct xn_profile *)&n_passed,
		       "%s: *ret written on failure", t->file);
		CHECKF(diag_has(&d, path, t->line, t->msg),
		       "%s: no error at line %u with \"%s\"", t->file, t->line,
		       t->msg);
		CHECKF(d.n == t->n_errors, "%s: %zu errors, expected %zu",
		       t->file, d.n, t->n_errors);
		if (!diag_has(&d, path, t->line, t->msg) || d.n != t->n_errors)
			dump_diag(&d);
		xn_diag_free(&d);
		free(path);
	}
}

/* A profile with many mistakes reports every one, in line order. */
static void test_several(void)
{
	static const struct {
		unsigned line;
		const char *msg;
	} want[] = {
		{ 3, "invalid boolean \"perhaps\" for key \"antispoof\"" },
		{ 7, "invalid MTU \"9\"" },
		{ 8, "invalid address \"10.0.0.300/24\"" },
		{ 9, "unknown key \"foo\" in [bridge xenbr0]" },
		{ 12, "uplink \"eth0\" of [bridge xenbr1] is already the uplink" },
		{ 14, "duplicate section [bridge xenbr0], first at line 5" },
		{ 17, "section [routed] is only used with mode = routed" },
		{ 19, "syntax error" },
	};
	struct xn_profile *p = NULL;
	struct xn_diag d = { 0 };
	char *path, *prefix;
	int r;

	if (asprintf(&path, "%s/several-errors.conf", bad_dir) < 0)
		abort();
	r = xn_profile_load(path, &p, &d);
	CHECK(r == -EINVAL && p == NULL);
	CHECKF(d.n == XN_ARRAY_SIZE(want), "%zu errors, expected %zu", d.n,
	       XN_ARRAY_SIZE(want));
	for (size_t i = 0; i < XN_ARRAY_SIZE(want) && i < d.n; i++) {
		if (asprintf(&prefix, "%s:%u: ", path, want[i].line) < 0)
			abort();
		CHECKF(strncmp(d.lines[i], prefix, strlen(prefix)) == 0 &&
			       strstr(d.lines[i], want[i].msg),
		       "error %zu is \"%s\", want line %u with \"%s\"", i,
		       d.lines[i], want[i].line, want[i].msg);
		free(prefix);
	}
	if (d.n != XN_ARRAY_SIZE(want))
		dump_diag(&d);
	xn_diag_free(&d);
	free(path);
}

/* ---- edge cases written on the fly ---- */

static void expect_error_len(const char *what, const char *text, size_t len,
			     unsigned line, const char *msg)
{
	struct xn_profile *p = NULL;
	struct xn_diag d = { 0 };
	char *path;
	int r;

	r = load_text(text, len, &p, &d, &path);
	CHECKF(r == -EINVAL && !p, "%s: load gave %d", what, r);
	CHECKF(diag_has(&d, path, line, msg), "%s: no error at line %u with \"%s\"",
	       what, line, msg);
	if (!diag_has(&d, path, line, msg))
		dump_diag(&d);
	xn_diag_free(&d);
	xn_profile_free(p);
	drop_tmp(path);
}

static void expect_error(const char *what, const char *text, unsigned line,
			 const char *msg)
{
	expect_error_len(what, text, strlen(text), line, msg);
}

static void test_edges(void)
{
	static const char nul[] = "[xennet]\nmode = bridged\n[bridge xenbr0]\nuplink = eth\0000\n";
	static const char friendly[] =
		"\xef\xbb\xbf# BOM, CRLF, indentation, comments, ':' separator\r\n"
		"[xennet]\r\n"
		"    mode = nat ; an inline comment\r\n"
		"\tantispoof: no\r\n"
		"\r\n"
		"  [ bridge   xenbr0 ]   ; comment after a header\r\n"
		"    address = 10.0.0.1/24\r\n"
		"    address = fd00:10::1/64\r\n"
		"    address = 10.0.1.1/24\r\n"
		"    mtu = 9000\r\n"
		"# a long comment line is fine: "
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
		"[bridge br-lan.10]\r\n"
		"    uplink = eth1.10\r\n"
		"    take_addresses = on\r\n"
		"[nat]\r\n"
		"    uplink = br-lan.10\r\n"
		"    bridge = xenbr0\r\n"
		"[map a-very-long-map-name.0123456789_0123456789_0123456789_xxxxxxxxx]\r\n"
		"    public = 198.51.100.7\r\n"
		"    guest = 10.0.0.7\r\n"
		"[map db]\r\n"
		"    public = 198.51.100.8\r\n"
		"    guest = 10.0.0.8\r\n"; /* no final newline issue: there is one */
	struct xn_profile *p = NULL, *sentinel = (struct xn_profile *)&n_failed;
	struct xn_diag d = { 0 };
	char *path, *text;
	int r;

	/* a friendly but unusual layout loads */
	r = load_text(friendly, sizeof(friendly) - 1, &p, &d, NULL);
	CHECKF(r == 0, "friendly layout gave %d", r);
	if (r < 0)
		dump_diag(&d);
	xn_diag_free(&d);
	if (p) {
		const struct xn_bridge_conf *b = xn_profile_bridge(p, "xenbr0");
		CHECK(p->mode == XN_MODE_NAT && !p->antispoof);
		CHECK(b && b->n_addresses == 3 && b->mtu == 9000);
		CHECK(b && addr_is(&b->addresses[1], "fd00:10::1/64"));
		CHECK(strcmp(p->nat_uplink, "br-lan.10") == 0);
		CHECK(p->n_bridges == 2 && p->n_maps == 2);
		CHECK(p->n_maps == 2 && strlen(p->maps[0].name) == 63);
		CHECK(p->n_maps == 2 && p->maps[0].line == 18);
		CHECK(b && b->line == 6);
	}
	xn_profile_free(p);
	p = NULL;

	/* the same without its final newline */
	text = strdup("[xennet]\nmode = routed\n[routed]\nuplink = eth0");
	r = load_text(text, strlen(text), &p, &d, NULL);
	free(text);
	CHECK(r == 0 && p && strcmp(p->routed_uplink, "eth0") == 0);
	xn_profile_free(p);
	p = NULL;
	xn_diag_free(&d);

	expect_error_len("NUL byte", nul, sizeof(nul) - 1, 4, "NUL byte");
	expect_error("empty file", "", 1, "missing [xennet] section");
	expect_error("map name of 64 bytes",
		     "[xennet]\nmode = nat\n"
		     "[map a-very-long-map-name.0123456789_0123456789_0123456789_xxxxxxxxxy]\n",
		     3, "longer than 63 bytes");
	expect_error("control bytes are escaped",
		     "[xennet]\nmode = \x1b[31mnat\n", 2,
		     "invalid mode \"\\x1b[31mnat\"");
	expect_error("ipv4 loopback", "[xennet]\nmode = bridged\n[bridge b]\naddress = 127.0.0.2/8\n",
		     4, "loopback");
	expect_error("ipv6 unspecified", "[xennet]\nmode = bridged\n[bridge b]\naddress = ::/0\n",
		     4, "\"::/0\"");
	expect_error("bridge lo", "[xennet]\nmode = bridged\n[bridge lo]\nmtu = 1500\n", 3,
		     "invalid bridge name \"lo\"");
	expect_error("uplink too long on the header line",
		     "[xennet]\nmode = bridged\n[bridge abcdefghijklmnop]\nmtu = 1500\n",
		     3, "16 bytes long, at most 15 allowed");

	/* a mistyped header does not also say the section is missing */
	text = strdup("[xennet]\nmode = nat\n[bridge xenbr0]\naddress = 10.0.0.1/24\n[nta]\nuplink = eth0\nbridge = xenbr0\n");
	r = load_text(text, strlen(text), &p, &d, NULL);
	CHECK(r == -EINVAL && d.n == 1);
	if (d.n != 1)
		dump_diag(&d);
	xn_diag_free(&d);
	free(text);

	/* nor does a mistyped [xennet] (found by the fuzzer) */
	text = strdup("[xannet]\nmode = bridged\n\n[bridge xenbr0]\naddress = 10.0.0.0/24\n");
	r = load_text(text, strlen(text), &p, &d, NULL);
	CHECK(r == -EINVAL && d.n == 2);
	CHECK(d.n == 2 && strstr(d.lines[0], ":1: unknown section \"xannet\""));
	CHECK(d.n == 2 && strstr(d.lines[1], ":5: invalid address \"10.0.0.0/24\""));
	if (d.n != 2)
		dump_diag(&d);
	xn_diag_free(&d);
	free(text);

	/* a binary file gives up after 100 errors */
	text = malloc(100000);
	for (size_t i = 0; i < 100000; i++)
		text[i] = (i % 7 == 6) ? '\n' : 'z';
	r = load_text(text, 100000, &p, &d, NULL);
	CHECK(r == -EINVAL && d.n == 101);
	CHECK(d.n > 0 && strstr(d.lines[d.n - 1], "too many errors"));
	xn_diag_free(&d);
	free(text);

	/* errors of I/O and the rest leave *ret alone */
	p = sentinel;
	r = xn_profile_load("/nonexistent/xennet.conf", &p, &d);
	CHECK(r == -ENOENT && p == sentinel);
	CHECK(d.n == 1 && strstr(d.lines[0], "/nonexistent/xennet.conf: cannot open"));
	xn_diag_free(&d);
	r = xn_profile_load(bad_dir, &p, &d);
	CHECKF(r == -EISDIR && p == sentinel, "directory gave %d", r);
	CHECK(d.n == 1);
	xn_diag_free(&d);

	/* A path with a newline (a file can be named so) would forge a
	 * message line and a ledger record: refused, the path escaped. */
	{
		const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		char *good = write_tmp("[xennet]\nmode = routed\n[routed]\nuplink = eth0\n", 45);
		char *odd;
		if (asprintf(&odd, "%s/xn-test-profile\nbridge eth0", tmp) < 0)
			abort();
		CHECK(rename(good, odd) == 0);
		p = sentinel;
		r = xn_profile_load(odd, &p, &d);
		CHECKF(r == -EINVAL && p == sentinel, "a path with a newline gave %d", r);
		CHECK(d.n == 1 && !strchr(d.lines[0], '\n') &&
		      strstr(d.lines[0], "\\x0a") && strstr(d.lines[0], "newline is not accepted"));
		xn_diag_free(&d);
		unlink(odd);
		free(odd);
		free(good);
	}

	/* diag may be NULL; free functions take NULL and empty */
	if (asprintf(&path, "%s/bad-mode.conf", bad_dir) < 0)
		abort();
	CHECK(xn_profile_load(path, &p, NULL) == -EINVAL && p == sentinel);
	free(path);
	xn_diag_free(&d);
	xn_diag_free(NULL);
	xn_profile_free(NULL);
	CHECK(xn_profile_bridge(NULL, "x") == NULL);
	CHECK(xn_profile_nat_gateway(NULL) == NULL);
}

/* 10,000 [map] sections: duplicates far apart are found, naming the
 * first one, and all of them load (duplicates and addresses are looked
 * up, not compared pair by pair). */
static void test_many_maps(void)
{
	enum { N = 10000 };
	const char *head = "[xennet]\nmode = nat\n[bridge xenbr0]\naddress = 10.0.0.1/16\n"
			   "[nat]\nuplink = eth0\nbridge = xenbr0\n"; /* 7 lines */
	size_t cap = strlen(head) + (N + 1) * 80, len;
	char *text = malloc(cap), *path = NULL;
	struct xn_profile *p = NULL;
	struct xn_diag d = { 0 };
	int r;

	CHECK(text != NULL);
	if (!text)
		return;
	len = (size_t)snprintf(text, cap, "%s", head);
	for (unsigned i = 0; i < N; i++)
		len += (size_t)snprintf(text + len, cap - len,
					"[map vm%u]\npublic = 198.18.%u.%u\nguest = 10.0.%u.%u\n", i,
					i / 256, i % 256, (i + 2) / 256, (i + 2) % 256);
	r = load_text(text, len, &p, &d, NULL);
	CHECKF(r == 0, "%u maps: load gave %d", (unsigned)N, r);
	if (r < 0)
		dump_diag(&d);
	CHECK(p && p->n_maps == N);
	xn_profile_free(p);
	p = NULL;
	xn_diag_free(&d);

	/* the last map repeats the first one's name, public and guest
	 * addresses (the first: lines 8-10; the last header: line 8 + 3 N) */
	len += (size_t)snprintf(text + len, cap - len,
				"[map vm0]\n[map vm-again]\npublic = 198.18.0.0\nguest = 10.0.0.2\n");
	r = load_text(text, len, &p, &d, &path);
	CHECK(r == -EINVAL && !p);
	CHECK(diag_has(&d, path, 8 + 3 * N, "duplicate section [map vm0], first at line 8"));
	CHECK(diag_has(&d, path, 10 + 3 * N,
		       "public address \"198.18.0.0\" of [map vm-again] is already mapped by [map vm0] (line 9)"));
	CHECK(diag_has(&d, path, 11 + 3 * N,
		       "guest address \"10.0.0.2\" of [map vm-again] is already mapped by [map vm0] (line 10)"));
	CHECKF(d.n == 3, "%zu errors, expected 3", d.n);
	if (d.n != 3)
		dump_diag(&d);
	drop_tmp(path);
	xn_diag_free(&d);
	free(text);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s BAD_FIXTURE_DIR PROFILES_DIR\n",
			argv[0]);
		return 2;
	}
	bad_dir = argv[1];
	profiles_dir = argv[2];
	if (access(bad_dir, R_OK) < 0 || access(profiles_dir, R_OK) < 0) {
		fprintf(stderr, "fixture directories not readable: %s, %s\n",
			bad_dir, profiles_dir);
		return 2;
	}

	test_addr();
	test_examples();
	test_bad();
	test_several();
	test_edges();
	test_many_maps();

	printf("%u passed, %u failed\n", n_passed, n_failed);
	return n_failed ? 1 : 0;
}
