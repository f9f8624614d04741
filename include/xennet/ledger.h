/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <limits.h>
#include <net/if.h>

#include "xennet/addr.h"
#include "xennet/netlink.h"
#include "xennet/sysctl.h"

/* The ledger: what xennet itself changed on this host, kept in the state
 * directory. Converging to a new profile undoes what the ledger holds and
 * the new profile does not want; nothing xennet did not make is touched. */

struct xn_ledger_port {
	char bridge[IFNAMSIZ], port[IFNAMSIZ];
};
struct xn_ledger_addr {
	char dev[IFNAMSIZ];
	struct xn_addr addr;
};
struct xn_ledger_moved_addr {
	char from[IFNAMSIZ], to[IFNAMSIZ];
	struct xn_addr addr;
};
struct xn_ledger_moved_route {
	char from[IFNAMSIZ], to[IFNAMSIZ];
	struct xn_route route; /* ifindex not kept */
};
struct xn_ledger_sysctl {
	char path[128];
	char original[XN_SYSCTL_VALUE_MAX];
};

/* A bridge xennet did not make whose STP or forward delay it changed:
 * the values it had before. */
struct xn_ledger_tuned {
	char bridge[IFNAMSIZ];
	uint32_t stp, forward_delay; /* forward delay in centiseconds */
};

struct xn_ledger {
	char profile[PATH_MAX]; /* the profile last applied, "" if none */
	char (*bridges)[IFNAMSIZ];
	size_t n_bridges;
	struct xn_ledger_port *ports;
	size_t n_ports;
	struct xn_ledger_addr *addrs;
	size_t n_addrs;
	struct xn_ledger_moved_addr *moved_addrs;
	size_t n_moved_addrs;
	struct xn_ledger_moved_route *moved_routes;
	size_t n_moved_routes;
	struct xn_ledger_sysctl *sysctls;
	size_t n_sysctls;
	struct xn_ledger_tuned *tuned;
	size_t n_tuned;
};

void xn_ledger_clear(struct xn_ledger *l);

/* A missing file is an empty ledger. A malformed one is -EBADMSG, with the
 * line number in *bad_line. */
int xn_ledger_load(const char *path, struct xn_ledger *l, unsigned *bad_line);
/* -EINVAL, nothing written, for a profile path a line cannot hold (a
 * newline in it). */
int xn_ledger_save(const char *path, const struct xn_ledger *l);

/* Adders keep entries unique; removers drop the matching entry. All return
 * 0 or -ENOMEM. */
int xn_ledger_add_bridge(struct xn_ledger *l, const char *name);
void xn_ledger_del_bridge(struct xn_ledger *l, const char *name);
int xn_ledger_add_port(struct xn_ledger *l, const char *bridge, const char *port);
void xn_ledger_del_port(struct xn_ledger *l, const char *bridge, const char *port);
int xn_ledger_add_addr(struct xn_ledger *l, const char *dev, const struct xn_addr *a);
void xn_ledger_del_addr(struct xn_ledger *l, const char *dev, const struct xn_addr *a);
int xn_ledger_add_moved_addr(struct xn_ledger *l, const char *from, const char *to,
			     const struct xn_addr *a);
void xn_ledger_del_moved_addr(struct xn_ledger *l, const char *from, const char *to,
			      const struct xn_addr *a);
int xn_ledger_add_moved_route(struct xn_ledger *l, const char *from, const char *to,
			      const struct xn_route *r);
void xn_ledger_del_moved_route(struct xn_ledger *l, size_t index);
/* Records the original value only the first time. */
int xn_ledger_add_sysctl(struct xn_ledger *l, const char *path, const char *original);
void xn_ledger_del_sysctl(struct xn_ledger *l, const char *path);
const struct xn_ledger_sysctl *xn_ledger_sysctl(const struct xn_ledger *l,
						const char *path);
/* Records the bridge's values only the first time. */
int xn_ledger_add_tuned(struct xn_ledger *l, const char *bridge, uint32_t stp,
			uint32_t forward_delay);
void xn_ledger_del_tuned(struct xn_ledger *l, const char *bridge);
const struct xn_ledger_tuned *xn_ledger_tuned(const struct xn_ledger *l, const char *bridge);
bool xn_ledger_has_bridge(const struct xn_ledger *l, const char *name);
bool xn_ledger_has_port(const struct xn_ledger *l, const char *bridge, const char *port);
bool xn_ledger_has_addr(const struct xn_ledger *l, const char *dev, const struct xn_addr *a);
