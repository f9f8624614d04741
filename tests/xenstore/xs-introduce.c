/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xs-introduce DOMID [PORT]: what libxl does when it builds a domain
 * (xs_introduce_domain): tells xenstored that DOMID has a xenstore ring.
 * Against the xs-shim'd xenstored the ring is a blank page, but the domain
 * is then "introduced": @introduceDomain fires now, and @releaseDomain
 * fires when the domain disappears from the shim's XS_SHIM_DOMAINS list
 * (after SIGUSR1 to xenstored), as for a destroyed guest.
 * xs-introduce -r DOMID: XS_RELEASE (what xend did; libxl does not).
 * xs-introduce -q DOMID: exit 0 if DOMID is introduced, 1 if not.
 * Honours XENSTORED_PATH like every libxenstore client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

static unsigned int parse_uint(const char *s, const char *what)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v > 0x7FEFu) {
		fprintf(stderr, "xs-introduce: bad %s '%s'\n", what, s);
		exit(2);
	}
	return (unsigned int)v;
}

int main(int argc, char **argv)
{
	struct xs_handle *h;
	int release = argc > 1 && strcmp(argv[1], "-r") == 0;
	int query = argc > 1 && strcmp(argv[1], "-q") == 0;
	unsigned int domid, port = 1;
	bool ok;

	if (argc - release < 2 || argc - release > 3) {
		fprintf(stderr, "usage: xs-introduce DOMID [PORT] | xs-introduce -r|-q DOMID\n");
		return 2;
	}
	if (query) {
		if (argc != 3) {
			fprintf(stderr, "usage: xs-introduce -q DOMID\n");
			return 2;
		}
		domid = parse_uint(argv[2], "domid");
		h = xs_open(0);
		if (!h) {
			perror("xs-introduce: xs_open");
			return 2;
		}
		ok = xs_is_domain_introduced(h, domid);
		xs_close(h);
		return ok ? 0 : 1;
	}
	domid = parse_uint(argv[1 + release], "domid");
	if (argc - release == 3)
		port = parse_uint(argv[2 + release], "port");
	if (domid == 0 || port == 0) {
		fprintf(stderr, "xs-introduce: domid and port must be > 0\n");
		return 2;
	}
	h = xs_open(0);
	if (!h) {
		perror("xs-introduce: xs_open");
		return 1;
	}
	/* The frame number is ignored by xenstored (it maps the reserved
	 * grant GNTTAB_RESERVED_XENSTORE). */
	ok = release ? xs_release_domain(h, domid)
		     : xs_introduce_domain(h, domid, 0, port);
	if (!ok)
		perror(release ? "xs-introduce: release" : "xs-introduce: introduce");
	xs_close(h);
	return ok ? 0 : 1;
}
