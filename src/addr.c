/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static unsigned addr_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* Parses the address part only (no "/"). Family chosen by the presence of
 * ':'; inet_pton does the rest, so no spaces, zones or short forms. */
static int parse_host(const char *s, size_t len, struct xn_addr *ret)
{
	char buf[INET6_ADDRSTRLEN];
	struct xn_addr a = { 0 };

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';

	a.family = memchr(buf, ':', len) ? AF_INET6 : AF_INET;
	if (inet_pton(a.family, buf, a.bytes) != 1)
		return -EINVAL;
	a.prefixlen = (unsigned char)addr_bits(a.family);
	*ret = a;
	return 0;
}

int xn_addr_parse(const char *s, bool require_prefix, struct xn_addr *ret)
{
	const char *slash;
	struct xn_addr a;
	unsigned prefix = 0;
	size_t ndigits;
	int r;

	if (!s || !ret)
		return -EINVAL;

	slash = strchr(s, '/');
	r = parse_host(s, slash ? (size_t)(slash - s) : strlen(s), &a);
	if (r < 0)
		return r;

	if (!slash) {
		if (require_prefix)
			return -EINVAL;
		*ret = a;
		return 0;
	}

	/* Digits only: no sign, no spaces, no hex, at most three of them. */
	ndigits = strlen(slash + 1);
	if (ndigits == 0 || ndigits > 3)
		return -EINVAL;
	for (const char *c = slash + 1; *c; c++) {
		if (*c < '0' || *c > '9')
			return -EINVAL;
		prefix = prefix * 10 + (unsigned)(*c - '0');
	}
	if (prefix > addr_bits(a.family))
		return -EINVAL;

	a.prefixlen = (unsigned char)prefix;
	*ret = a;
	return 0;
}

int xn_addr_parse_ipv4_host(const char *s, struct xn_addr *ret)
{
	struct xn_addr a;
	int r;

	if (!s || !ret || strchr(s, '/'))
		return -EINVAL;
	r = parse_host(s, strlen(s), &a);
	if (r < 0)
		return r;
	if (a.family != AF_INET)
		return -EINVAL;
	*ret = a;
	return 0;
}

const char *xn_addr_format(const struct xn_addr *a, bool with_prefix,
			   char buf[XN_ADDR_STRLEN])
{
	char host[INET6_ADDRSTRLEN];

	if (!a || (a->family != AF_INET && a->family != AF_INET6) ||
	    !inet_ntop(a->family, a->bytes, host, sizeof(host))) {
		snprintf(buf, XN_ADDR_STRLEN, "(invalid)");
		return buf;
	}
	if (with_prefix)
		snprintf(buf, XN_ADDR_STRLEN, "%s/%u", host, a->prefixlen);
	else
		snprintf(buf, XN_ADDR_STRLEN, "%s", host);
	return buf;
}

/* Compares family, the address bytes that family uses, and the prefix. */
bool xn_addr_equal(const struct xn_addr *a, const struct xn_addr *b)
{
	if (a->family != b->family || a->prefixlen != b->prefixlen)
		return false;
	if (a->family != AF_INET && a->family != AF_INET6)
		return false;
	return memcmp(a->bytes, b->bytes, addr_len(a->family)) == 0;
}

static unsigned clamp_prefix(const struct xn_addr *a)
{
	unsigned bits = addr_bits(a->family);

	return a->prefixlen > bits ? bits : a->prefixlen;
}

struct xn_addr xn_addr_network(const struct xn_addr *a)
{
	struct xn_addr n = *a;
	unsigned plen = clamp_prefix(a);
	size_t len = addr_len(a->family);

	for (size_t i = 0; i < len; i++) {
		unsigned bit = (unsigned)i * 8;
		if (bit >= plen)
			n.bytes[i] = 0;
		else if (plen - bit < 8)
			n.bytes[i] &= (unsigned char)(0xff00u >> (plen - bit));
	}
	return n;
}

bool xn_addr_in_network(const struct xn_addr *net, const struct xn_addr *host)
{
	unsigned plen, full, rest;

	if (net->family != host->family ||
	    (net->family != AF_INET && net->family != AF_INET6))
		return false;
	plen = clamp_prefix(net);
	full = plen / 8;
	rest = plen % 8;
	if (memcmp(net->bytes, host->bytes, full) != 0)
		return false;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff00u >> rest);
		if ((net->bytes[full] & mask) != (host->bytes[full] & mask))
			return false;
	}
	return true;
}

bool xn_addr_is_network_or_broadcast(const struct xn_addr *a)
{
	unsigned bits = addr_bits(a->family);
	unsigned plen = clamp_prefix(a);
	bool all_zero = true, all_one = true;

	/* Point-to-point prefixes (/31, /32, /127, /128) have neither. */
	if (plen + 1 >= bits)
		return false;
	for (unsigned bit = plen; bit < bits; bit++) {
		bool set = a->bytes[bit / 8] & (0x80u >> (bit % 8));
		if (set)
			all_zero = false;
		else
			all_one = false;
	}
	if (all_zero)
		return true;
	return a->family == AF_INET && all_one;
}
