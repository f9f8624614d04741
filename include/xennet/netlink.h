/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "xennet/addr.h"

/* rtnetlink through libnl-route-3. Every function returns >= 0 or -errno
 * (the kernel's own errno, not libnl's NLE_* code). */

struct xn_nl;

int xn_nl_open(struct xn_nl **ret);
void xn_nl_close(struct xn_nl *nl);

struct xn_link {
	int ifindex;
	char name[IFNAMSIZ];
	char kind[16]; /* "bridge", "veth", "" ... */
	int master; /* ifindex of the master, 0 if none */
	unsigned mtu;
	bool up; /* IFF_UP set */
	uint8_t stp_state; /* bridges */
	uint32_t forward_delay; /* bridges, in centiseconds (USER_HZ) */
	char alias[64]; /* IFLA_IFALIAS, "" if none */
	uint32_t group; /* IFLA_GROUP, 0 the default */
};

struct xn_ifaddr {
	int ifindex;
	struct xn_addr addr; /* with prefixlen */
	uint8_t scope; /* RT_SCOPE_* */
	uint32_t flags; /* IFA_F_* */
	uint32_t valid_lft; /* seconds; UINT32_MAX: forever */
};

struct xn_route {
	int ifindex;
	int family;
	struct xn_addr dst; /* prefixlen 0 for default routes */
	bool has_gateway;
	struct xn_addr gateway;
	bool has_prefsrc;
	struct xn_addr prefsrc;
	uint32_t table;
	uint32_t priority; /* metric */
	uint8_t protocol;
	uint8_t scope;
	uint8_t type;
};

/* What the kernel holds now, in the namespace we run in. */
struct xn_snapshot {
	struct xn_link *links;
	size_t n_links;
	struct xn_ifaddr *addrs;
	size_t n_addrs;
	struct xn_route *routes; /* unicast routes of the main table */
	size_t n_routes;
	/* sysctl values read for the plan (filled by the caller). */
	struct xn_snapshot_sysctl {
		char path[128];
		char value[32];
		bool exists;
	} sysctls[4];
	size_t n_sysctls;
};

int xn_snapshot_take(struct xn_nl *nl, struct xn_snapshot **ret);
/* Links only: one dump. */
int xn_nl_links_take(struct xn_nl *nl, struct xn_snapshot **ret);
/* Add the addresses of one interface (AF_INET, AF_INET6 or AF_UNSPEC) to
 * s->addrs: the kernel walks that interface only. */
int xn_nl_addrs_take(struct xn_nl *nl, int ifindex, int family, struct xn_snapshot *s);
void xn_snapshot_free(struct xn_snapshot *s);
const struct xn_link *xn_snapshot_link(const struct xn_snapshot *s,
				       const char *name);
const struct xn_link *xn_snapshot_link_by_index(const struct xn_snapshot *s,
						int ifindex);
bool xn_snapshot_has_addr(const struct xn_snapshot *s, int ifindex,
			  const struct xn_addr *a);

/* STP state (0 off, 1 on) and forward delay (centiseconds) of a bridge;
 * XN_BRIDGE_LEAVE: as the kernel has it. mtu 0 = default. */
#define XN_BRIDGE_LEAVE UINT32_MAX
int xn_nl_bridge_create(struct xn_nl *nl, const char *name, unsigned mtu, uint32_t stp,
			uint32_t forward_delay);
int xn_nl_bridge_tune(struct xn_nl *nl, int ifindex, uint32_t stp, uint32_t forward_delay);
int xn_nl_link_delete(struct xn_nl *nl, int ifindex);
/* master 0 releases the port. */
int xn_nl_link_set_master(struct xn_nl *nl, int ifindex, int master);
/* MAC, MTU and bridge in one request (the kernel applies them in that
 * order); on failure, some may be applied. */
int xn_nl_link_make_port(struct xn_nl *nl, int ifindex, const uint8_t mac[6],
			 unsigned mtu, int master);
int xn_nl_link_set_up(struct xn_nl *nl, int ifindex, bool up);
int xn_nl_link_set_mtu(struct xn_nl *nl, int ifindex, unsigned mtu);
int xn_nl_link_set_name(struct xn_nl *nl, int ifindex, const char *name);
int xn_nl_link_set_mac(struct xn_nl *nl, int ifindex, const uint8_t mac[6]);
int xn_nl_link_set_alias(struct xn_nl *nl, int ifindex, const char *alias);
/* The device's group (IFLA_GROUP, `ip link set group`). */
int xn_nl_link_set_group(struct xn_nl *nl, int ifindex, uint32_t group);
/* One link by name (RTM_GETLINK, no dump); -ENODEV when absent. */
int xn_nl_link_get(struct xn_nl *nl, const char *name, struct xn_link *ret);
/* Delete every address of a link. */
int xn_nl_addr_flush(struct xn_nl *nl, int ifindex);
/* The link's primary global IPv4 address; -EADDRNOTAVAIL when none. */
int xn_nl_primary_ipv4(struct xn_nl *nl, int ifindex, struct xn_addr *ret);

/* IPv6 addresses are added with IFA_F_NODAD. EEXIST is returned as is. */
int xn_nl_addr_add(struct xn_nl *nl, int ifindex, const struct xn_addr *a);
int xn_nl_addr_del(struct xn_nl *nl, int ifindex, const struct xn_addr *a);

/* Create or replace route r (its ifindex is used). */
int xn_nl_route_replace(struct xn_nl *nl, const struct xn_route *r);
int xn_nl_route_del(struct xn_nl *nl, const struct xn_route *r);

/* A public address made reachable on a device without being one of its
 * addresses: a route of type local for a/32 in the local table (the
 * kernel answers ARP for it and delivers to it as to an address), marked
 * with xennet's own protocol number. Adding one is O(log n); adding an
 * IPv4 address is O(addresses of the device), 2.5 ms at 10,000. */
#define XN_RTPROT_PUBLIC 120
/* -EEXIST if a local route for a is there already (ours or not). */
int xn_nl_local_route_add(struct xn_nl *nl, int ifindex, const struct xn_addr *a);
/* Idempotent: a route that is not there is not an error. */
int xn_nl_local_route_del(struct xn_nl *nl, int ifindex, const struct xn_addr *a);
struct xn_local_route {
	struct xn_addr addr;
	int ifindex;
};
/* Ours on a device (0: on any): *ret (caller frees) holds n of them. */
int xn_nl_local_routes_take(struct xn_nl *nl, int ifindex, struct xn_local_route **ret,
			    size_t *n);

/* Proxy neighbour entries (ip neigh add proxy ADDR dev DEV): the uplink
 * answers neighbour solicitations for a routed guest's IPv6 address. */
int xn_nl_neigh_proxy_add(struct xn_nl *nl, int ifindex, const struct xn_addr *a);
int xn_nl_neigh_proxy_del(struct xn_nl *nl, int ifindex, const struct xn_addr *a);

/* A second socket subscribed to link events (RTNLGRP_LINK), for the
 * event loop: poll its fd, then xn_nl_events_drain() calls fn for each
 * event. -ENOBUFS from drain means events were lost: resynchronise. */
typedef void (*xn_link_event_fn)(bool added, int ifindex, unsigned flags, const char *name,
				 void *userdata);
int xn_nl_events_open(struct xn_nl **ret, xn_link_event_fn fn, void *userdata);
int xn_nl_events_fd(struct xn_nl *nl);
/* Also call fn when netconf reports a changed sysctl (forwarding,
 * proxy_arp, proxy_ndp, ...) on any device. */
void xn_nl_events_on_netconf(struct xn_nl *nl, void (*fn)(void *userdata));
int xn_nl_events_drain(struct xn_nl *nl);
