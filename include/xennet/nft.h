/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "xennet/addr.h"
#include "xennet/util.h"

/* xennet owns exactly one nftables table, "inet xennet", and never touches
 * another. Its rules are fixed; what varies lives in sets. The whole table
 * is installed as one atomic batch. */

#define XN_NFT_TABLE "xennet"

/* What the table must hold. An all-empty spec means no table at all. */
struct xn_nft_spec {
	/* NAT: masquerade guest networks leaving through the uplink, and
	 * refuse new connections from the uplink into the guest network. */
	bool nat;
	char nat_uplink[IFNAMSIZ];
	struct xn_addr nat_networks[4]; /* IPv4 networks */
	size_t n_nat_networks;
};

bool xn_nft_spec_empty(const struct xn_nft_spec *s);

/* The canonical, human-readable description of the table the spec makes,
 * one line per object; also the input of the fingerprint. */
void xn_nft_describe(const struct xn_nft_spec *s, struct xn_buf *out);

enum xn_nft_table_state {
	XN_NFT_ABSENT, /* no table */
	XN_NFT_CURRENT, /* table present and built from this very spec */
	XN_NFT_STALE, /* table present but different (or tampered with) */
};

/* Compare the kernel's table with the spec. Needs CAP_NET_ADMIN. */
int xn_nft_query(const struct xn_nft_spec *s, enum xn_nft_table_state *ret);

/* Replace the table with the one the spec makes (or delete it if the spec
 * is empty), in one atomic batch. On failure the kernel keeps the old
 * table; err (if not NULL) names the object the kernel refused. */
int xn_nft_install(const struct xn_nft_spec *s, struct xn_buf *err);

/* Rule counters of the table, for status. */
struct xn_nft_rule_info {
	char chain[32];
	char comment[128];
	uint64_t packets, bytes;
};
/* Returns -ENOENT when there is no table. */
int xn_nft_list_rules(struct xn_nft_rule_info **ret, size_t *n);
