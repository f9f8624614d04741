/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "xennet/hotplug.h"
#include "xennet/json.h"
#include "xennet/mapping.h"

/* `xennet inventory`: per domain (domid, name) its vifs (MAC, addresses,
 * bridge or routed, state) and the public addresses and port forwards
 * that lead to those addresses; then the mappings whose guest address no
 * vif has. h and maps may be NULL (no xenstore yet, no NAT). Text in out,
 * or with json a whole JSON document ({"version":1,"domains":[...],
 * "unattached":{...}}) in out. */
void xn_inventory_render(struct xn_hotplug *h, const struct xn_mapset *maps, bool json,
			 struct xn_buf *out);
