/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "xennet/addr.h"

/* A connection to ctnetlink: the socket kept open between purges and
 * its sequence numbers. Nothing is opened before a purge needs it. */
struct xn_conntrack;
int xn_conntrack_new(struct xn_conntrack **ret);
/* Closes its socket; NULL is fine. */
void xn_conntrack_free(struct xn_conntrack *ct);

/* Drop the conntrack entries of flows that went to, or were translated
 * to, one of these IPv4 addresses (ctnetlink through libmnl), so that a
 * running flow cannot keep a translation that was removed or changed.
 * Nothing else is disturbed. Returns how many entries were deleted. */
int xn_conntrack_purge(struct xn_conntrack *ct, const struct xn_addr *addrs, size_t n);
