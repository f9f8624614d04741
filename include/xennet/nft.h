/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "xennet/addr.h"
#include "xennet/mapping.h"
#include "xennet/util.h"

/* xennet owns the nftables tables named "xennet": "inet xennet" (NAT, and
 * anti-spoofing of routed vifs) and "bridge xennet" (anti-spoofing of
 * vifs that are bridge ports), and never touches another. Their rules are
 * fixed; what varies (the vifs) lives in sets. Every change is one atomic
 * batch. */

#define XN_NFT_TABLE "xennet"

/* A connection to nftables, given to every call below that talks to the
 * kernel: the socket kept open between requests, its sequence numbers,
 * the monitor of others' changes, the time of the last install. Nothing
 * is opened before a call needs it. One per process (the engine makes
 * it), used from one thread. */
struct xn_nft;
int xn_nft_new(struct xn_nft **ret);
/* Closes its sockets; NULL is fine. */
void xn_nft_free(struct xn_nft *nft);

/* The device group (`ip link set group`) of the vifs xennet filters:
 * anti-spoofing checks a device of that group even when its element in
 * as_ports is missing (someone deleted it), so that an incomplete filter
 * fails closed. 0x78656e: "xen". */
#define XN_NFT_VIF_GROUP 0x78656eu

/* What the table must hold. An all-empty spec means no table at all. */
struct xn_nft_spec {
	/* NAT: masquerade guest networks leaving through the uplink, and
	 * refuse new connections from the uplink into the guest network. */
	bool nat;
	char nat_uplink[IFNAMSIZ];
	struct xn_addr nat_networks[4]; /* IPv4 networks */
	size_t n_nat_networks;
	/* Anti-spoofing of vifs: on bridge ports, on routed vifs. */
	bool antispoof_bridge;
	bool antispoof_routed;
};

bool xn_nft_spec_empty(const struct xn_nft_spec *s);

/* What anti-spoofing lets a vif send: frames from its MAC and packets from
 * its addresses (networks); with no address, MAC-only. */
struct xn_nft_vif {
	char ifname[IFNAMSIZ];
	bool routed; /* inet table (routed) or bridge table (port) */
	uint8_t mac[6];
	struct xn_addr ips[16];
	size_t n_ips;
};

/* The canonical, human-readable description of the table the spec makes,
 * one line per object; also the input of the fingerprint. */
void xn_nft_describe(const struct xn_nft_spec *s, struct xn_buf *out);

enum xn_nft_table_state {
	XN_NFT_ABSENT, /* no table */
	XN_NFT_CURRENT, /* table present and built from this very spec */
	XN_NFT_STALE, /* table present but different (or tampered with) */
};


/* Replace the tables with the ones the spec makes (deleting those it does
 * not want) and fill the vif sets, in one atomic batch. On failure the
 * kernel keeps the old tables; err (if not NULL) names the object the
 * kernel refused. */
/* What lives in the sets and maps: the connected vifs and the public IP
 * mappings. A table replacement re-adds it in the same batch. */
struct xn_nft_dynamic {
	const struct xn_nft_vif *vifs;
	size_t n_vifs;
	const struct xn_mapset *maps; /* NULL: none */
	/* Public addresses xennet made reachable that are not 1:1 mapped
	 * (only forwarded): the set public_addrs. Dom0 drops what reaches
	 * it untranslated on them and on the DNAT map's keys. */
	const struct xn_addr *publics;
	size_t n_publics;
	/* A change found the NAT maps full: make them larger than they are. */
	bool grow_nat;
};

int xn_nft_install(struct xn_nft *nft, const struct xn_nft_spec *s, const struct xn_nft_dynamic *dyn,
		   struct xn_buf *err);
/* How long the last xn_nft_install took (µs), -1 if none since the last
 * call; for the daemon's log. */
long xn_nft_take_install_us(struct xn_nft *nft);

/* Compare the kernel's table with the spec and, when dyn is given, whether
 * its NAT maps have room for dyn's mappings and one more (they are sized
 * when the table is made; on ENFILE from a change, apply again). Needs
 * CAP_NET_ADMIN. */
int xn_nft_query(struct xn_nft *nft, const struct xn_nft_spec *s, const struct xn_nft_dynamic *dyn,
		 enum xn_nft_table_state *ret);

/* Make the NAT maps hold exactly want and public_addrs exactly publics
 * (dumped and diffed: unchanged entries are not touched), in one batch.
 * maps_in_place: the table was just made with want's maps (only
 * public_addrs is compared; changed lists nothing of the maps). The public addresses whose
 * translation changed or went are listed in changed (caller frees) so
 * that their conntrack entries can be dropped. */
int xn_nft_maps_sync(struct xn_nft *nft, const struct xn_mapset *want, bool maps_in_place,
		     const struct xn_addr *publics, size_t n_publics,
		     struct xn_addr **changed, size_t *n_changed, struct xn_buf *err);

/* The same for some of them only (XN_NFT_SET_*): a drift seen in one
 * map does not make the others be read back. */
#define XN_NFT_SET_DNAT 1u
#define XN_NFT_SET_SNAT 2u
#define XN_NFT_SET_FWD 4u
#define XN_NFT_SET_PUBLICS 8u
#define XN_NFT_SETS_ALL 15u
int xn_nft_maps_sync_sets(struct xn_nft *nft, const struct xn_mapset *want, unsigned sets,
			  const struct xn_addr *publics, size_t n_publics,
			  struct xn_addr **changed, size_t *n_changed, struct xn_buf *err);

/* One mapping or forward (and its public address) added and/or removed,
 * in one batch. Any pointer may be NULL. */
int xn_nft_mapping_update(struct xn_nft *nft, const struct xn_mapping *add_m, const struct xn_mapping *del_m,
			  const struct xn_forward *add_f, const struct xn_forward *del_f,
			  const struct xn_addr *add_pub, const struct xn_addr *del_pub,
			  struct xn_buf *err);

/* Add and/or remove one vif's elements, in one batch. */
int xn_nft_vif_elements(struct xn_nft *nft, const struct xn_nft_vif *add,
			const struct xn_nft_vif *del, struct xn_buf *err);

/* The elements of many vifs in one transaction (adding what is already
 * there changes nothing): a restarted daemon makes sure the vifs it
 * adopted still have theirs. */
int xn_nft_vifs_elements_add(struct xn_nft *nft, const struct xn_nft_vif *v, size_t n,
			     struct xn_buf *err);

/* Make the anti-spoofing sets the spec has hold exactly the elements of
 * vifs: what someone removed is added back, what someone added (or a
 * vanished vif left) is removed, in one batch. Returns how many elements
 * changed. */
int xn_nft_vifs_sync(struct xn_nft *nft, const struct xn_nft_spec *s, const struct xn_nft_vif *vifs, size_t n,
		     struct xn_buf *err);

/* Remove the elements of every interface not in keep (vifs that vanished
 * while the daemon was away). Returns how many interfaces were purged. */
int xn_nft_purge_others(struct xn_nft *nft, const char (*keep)[IFNAMSIZ], size_t n_keep,
			struct xn_buf *err);

/* Close the nftables socket kept open between requests (the next call
 * opens another). */
void xn_nft_close(struct xn_nft *nft);

/* Transitional (issue 13): hotplug.c, vifattach.c and hotplug-restart.c
 * do not hold the context yet; these use the one the daemon lent with
 * xn_nft_lend() (src/nft-lent.c). Remove with them. */
void xn_nft_lend(struct xn_nft *nft);
int xn_nft_vif_update(const struct xn_nft_vif *add, const struct xn_nft_vif *del,
		      struct xn_buf *err);
int xn_nft_vifs_add(const struct xn_nft_vif *v, size_t n, struct xn_buf *err);
int xn_nft_purge(const char (*keep)[IFNAMSIZ], size_t n_keep, struct xn_buf *err);

/* Rule counters of the table, for status. */
struct xn_nft_rule_info {
	char family[8]; /* "inet", "bridge" */
	char chain[32];
	char comment[128];
	uint64_t packets, bytes;
};
/* All rules of xennet's tables; -ENOENT when there is none. */
int xn_nft_list_rules(struct xn_nft *nft, struct xn_nft_rule_info **ret, size_t *n);

/* Spoofed packets dropped, per filtered vif (the counter of its as_drops
 * element); *ret (caller frees) holds n, none when nothing is filtered. */
struct xn_nft_vif_drops {
	char ifname[IFNAMSIZ];
	uint64_t packets, bytes;
};
int xn_nft_vif_drops(struct xn_nft *nft, struct xn_nft_vif_drops **ret, size_t *n);

/* Someone else (nft flush ruleset, a hand edit) changed xennet's tables:
 * open a socket on nftables' events (its fd for the event loop; closed
 * by xn_nft_free), and drain it: 1 when a transaction not made by this process added or
 * removed a table, chain, set or rule of a table named xennet, 2 when
 * events were lost (the tables must be checked), 3 when such a
 * transaction changed only elements of its sets and maps, 4 when only
 * elements of the anti-spoofing sets (as_*), 0 otherwise. */
int xn_nft_monitor_open(struct xn_nft *nft);
int xn_nft_monitor_drain(struct xn_nft *nft);
/* Someone else committed while the monitor did not listen (during one of
 * our large batches, not echoed to it): check the tables. */
bool xn_nft_monitor_take_missed(struct xn_nft *nft);
/* The NAT maps (XN_NFT_SET_*) whose elements others changed since the
 * last call, as heard by the monitor. */
unsigned xn_nft_monitor_take_sets(struct xn_nft *nft);
/* The ruleset's generation (one more at each commit, anyone's): a cheap
 * way to know that nothing changed since the last check. */
int xn_nft_generation(struct xn_nft *nft, uint32_t *gen);
