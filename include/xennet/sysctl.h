/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Kernel parameters through /proc/sys (no sysctl program). Paths are
 * relative to /proc/sys with '/' separators, e.g. "net/ipv4/ip_forward".
 * /proc/sys/net is per network namespace: the namespace we run in. */

#define XN_SYSCTL_VALUE_MAX 32

/* Reads the value without its trailing newline. */
int xn_sysctl_read(const char *path, char value[XN_SYSCTL_VALUE_MAX]);
int xn_sysctl_write(const char *path, const char *value);
/* The path of a per-interface setting, e.g. ("ipv4", "eth0", "proxy_arp").
 * Returns -EINVAL for a bad interface name. */
int xn_sysctl_if_path(const char *family, const char *ifname, const char *key,
		      char *out, size_t size);
