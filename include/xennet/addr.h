/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address with an optional prefix length. */
struct xn_addr {
	uint16_t family; /* AF_INET or AF_INET6 */
	unsigned char prefixlen; /* 32/128 when none was given */
	union {
		struct in_addr v4;
		struct in6_addr v6;
		unsigned char bytes[16];
	};
}; /* 20 bytes: 10,000 mappings hold two each */

#define XN_ADDR_STRLEN (INET6_ADDRSTRLEN + 4)

/* "10.0.0.1/24", "fd00::1/64". With require_prefix the "/N" is mandatory;
 * without it a missing prefix means a host address. Strict: inet_pton, no
 * trailing junk, prefix in range. Returns 0 or -EINVAL. */
int xn_addr_parse(const char *s, bool require_prefix, struct xn_addr *ret);
/* Only an IPv4 host address, no prefix allowed. */
int xn_addr_parse_ipv4_host(const char *s, struct xn_addr *ret);

/* Writes "addr/prefix" (or just "addr" when with_prefix is false). */
const char *xn_addr_format(const struct xn_addr *a, bool with_prefix,
			   char buf[XN_ADDR_STRLEN]);

bool xn_addr_equal(const struct xn_addr *a, const struct xn_addr *b);
/* The network of a with its host bits cleared. */
struct xn_addr xn_addr_network(const struct xn_addr *a);
/* Does net (with its prefixlen) contain host? Families must match. */
bool xn_addr_in_network(const struct xn_addr *net, const struct xn_addr *host);
/* Host bits all zero (network address) or, for IPv4 < /31, all one. */
bool xn_addr_is_network_or_broadcast(const struct xn_addr *a);
