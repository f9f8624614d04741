/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "xennet/addr.h"

/* Drop the conntrack entries of flows that went to, or were translated
 * to, one of these IPv4 addresses (ctnetlink through libmnl), so that a
 * running flow cannot keep a translation that was removed or changed.
 * Nothing else is disturbed. Returns how many entries were deleted. */
int xn_conntrack_purge(const struct xn_addr *addrs, size_t n);

/* Close the socket kept open between purges (at exit). */
void xn_conntrack_close(void);
