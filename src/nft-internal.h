/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the nftables files share. Not an API. Lowest first (each calls
 * only those before it; scripts/check-layers fails on a loop):
 * nft-netlink.c: the context, a batch sent, a request and its dump;
 * nft-expr.c: expressions; nft.c: the ruleset and the objects of a
 * batch; nft-readback.c: reading the kernel's tables back; nft-monitor.c:
 * changes made by others; nft-antispoof.c: per-vif filters;
 * nft-purge.c: elements of vanished vifs; nft-mappings.c: public IP
 * mappings; nft-drift.c: the anti-spoofing sets put back; nft-install.c:
 * the whole table replaced. */

#include "xennet/nft.h"
#include "xennet/util.h"

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stddef.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A connection to nftables (xn_nft_new). */
struct xn_nft {
	/* Kept open between requests. Closing a nfnetlink socket makes the
	 * kernel wait for the destruction of what earlier transactions
	 * deleted (an RCU grace period): a socket per request would charge
	 * that to every mapping removed. */
	struct mnl_socket *sock;
	uint32_t seq;
	struct mnl_socket *monitor; /* others' changes (nft-monitor.c) */
	bool monitor_missed; /* others committed while it did not listen */
	unsigned monitor_sets; /* NAT maps (XN_NFT_SET_*) others changed elements of */
	long install_us; /* the last xn_nft_install, -1 when taken */
};

/* A batch being built: the messages, and what each one is about (errors
 * are reported per message, by sequence number). */
struct batch {
	struct xn_nft *nft;
	struct nftnl_batch *b;
	uint16_t family; /* of the objects being added */
	uint32_t seq_first, seq;
	const char *what[256]; /* description per sequence number */
	uint32_t next_set_id;
	int err;
};

struct elem {
	const void *key;
	uint32_t len;
	const void *key_end; /* concatenated ranges: the last key, inclusive */
	bool interval_end;
	const void *data; /* maps */
	uint32_t dlen;
};

struct set_def {
	const char *name;
	uint32_t type; /* nft datatype, concatenations as nft encodes them */
	uint32_t keylen;
	uint32_t flags;
	uint8_t fields[2]; /* concatenation field lengths, in bytes */
	bool host_order; /* how nft(8) should print the key */
	uint32_t data_type, data_len; /* maps */
	bool counters; /* a counter on each element */
};

/* A rule being built (nft_rule_begin): once a step has failed the next
 * ones do nothing, and nft_rule_end adds the rule to the batch or makes
 * the batch fail with that first error. A rule then reads as the list of
 * its expressions. */
struct rule_b {
	struct batch *bt;
	struct nftnl_rule *r;
	int err;
};

/* Entries the NAT maps must hold: public_addrs holds at most one address
 * per forward. */
struct nat_room {
	size_t maps, fwds, publics;
};

struct request {
	uint16_t type, flags, family;
	const char *set; /* GETSETELEM */
	int (*cb)(const struct nlmsghdr *h, void *data);
	void *data;
};

struct table_info {
	bool found;
	char comment[64];
};

/* ---- purging vanished vifs ---- */

struct dead_elem {
	uint8_t key[IFNAMSIZ + 16], key_end[IFNAMSIZ + 16];
	uint32_t klen, elen;
};

/* Calls fn for each element of a set-element message (key, key end and
 * data, each with its length; absent ones NULL). */
typedef int (*elem_fn)(const void *key, uint32_t klen, const void *key_end, uint32_t elen,
		       const void *data, uint32_t dlen, void *userdata);

extern const struct set_def SET_NAT_UPLINKS;
extern const struct set_def SET_NAT_NETWORKS;
extern const struct set_def MAP_DNAT;
extern const struct set_def MAP_SNAT;
extern const struct set_def MAP_FWD;
extern const struct set_def SET_PUBLICS;
extern const struct set_def SET_AS_PORTS;
extern const struct set_def SET_AS_IPLESS;
extern const struct set_def SET_AS_MAC;
extern const struct set_def SET_AS_IP4;
extern const struct set_def SET_AS_IP6;
extern const struct set_def SET_AS_DROPS;
/* The anti-spoofing sets, each with elements per vif (as_drops holds the
 * vif's counter of spoofed packets). */
#define N_AS_SETS 6
extern const struct set_def *const AS_SETS[N_AS_SETS];

/* nft-netlink.c */
uint32_t nft_next_seq(struct xn_nft *nft);
void nft_socket_reset(struct xn_nft *nft);
int nft_socket(struct xn_nft *nft, struct mnl_socket **ret);
struct nftnl_table *nft_table_new(uint16_t family, const char *comment);
int nft_request(struct xn_nft *nft, const struct request *q);
int nft_batch_open(struct xn_nft *nft, struct batch *bt);
struct nlmsghdr *nft_batch_hdr(struct batch *bt, uint16_t type, uint16_t flags, const char *what);
void nft_batch_next(struct batch *bt);
/* Sends it, reads every reply; frees it either way. */
int nft_batch_close_and_send(struct batch *bt, struct xn_buf *err);
/* Frees it unsent. */
void nft_batch_abort(struct batch *bt);

/* nft.c */
bool nft_want_inet(const struct xn_nft_spec *s);
bool nft_want_bridge(const struct xn_nft_spec *s);
const char *nft_family_name(uint16_t family);
int nft_fingerprint(const struct xn_nft_spec *s, uint16_t family, char out[64], size_t *rules);
void nft_batch_table(struct batch *bt, uint16_t type, uint16_t flags, const char *comment, const char *what);
void nft_batch_chain(struct batch *bt, const char *name, const char *type, uint32_t hook, int32_t prio);
void nft_batch_elems(struct batch *bt, const struct set_def *d, bool add, const struct elem *elems, size_t n);
struct nat_room nft_nat_room_of(const struct xn_nft_dynamic *dyn);
uint32_t nft_batch_set(struct batch *bt, const struct set_def *d, const struct elem *elems, size_t n, uint32_t size);
struct nftnl_rule *nft_rule_new(uint16_t family, const char *chain, const char *comment);
void nft_batch_rule(struct batch *bt, struct nftnl_rule *r, int built, const char *what);
void nft_build_nat(struct batch *bt, const struct xn_nft_spec *s, const struct nat_room *room);
size_t nft_nat_network_elems(const struct xn_nft_spec *s, uint32_t *starts, uint32_t *ends,
			     struct elem *out);
struct rule_b nft_rule_begin(struct batch *bt, uint16_t family, const char *chain, const char *comment);
void nft_rule_end(struct rule_b *b, const char *what);

/* nft-expr.c */
int nft_add_expr(struct nftnl_rule *r, struct nftnl_expr *e);
struct nftnl_expr *nft_expr_meta(uint32_t key);
struct nftnl_expr *nft_expr_meta_reg(uint32_t key, uint32_t dreg);
struct nftnl_expr *nft_expr_cmp(uint32_t op, const void *data, uint32_t len);
struct nftnl_expr *nft_expr_payload(uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg);
struct nftnl_expr *nft_expr_payload_nh(uint32_t offset, uint32_t len);
struct nftnl_expr *nft_expr_lookup(const char *set, uint32_t set_id, bool invert);
int nft_add_ct_bits(struct nftnl_rule *r, uint32_t key, uint32_t mask);
int nft_add_ct_bits_clear(struct nftnl_rule *r, uint32_t key, uint32_t mask);
int nft_add_match_ipv4(struct nftnl_rule *r);
struct nftnl_expr *nft_expr_lookup_map(const char *set, uint32_t set_id);
struct nftnl_expr *nft_expr_nat(uint32_t type, bool with_port);
int nft_add_jump(struct nftnl_rule *r, const char *chain);
int nft_add_masked_cmp(struct nftnl_rule *r, const void *mask, const void *value, uint32_t len);
int nft_add_verdict(struct nftnl_rule *r, int verdict);
/* The same steps on a rule being built (struct rule_b): nothing once a
 * step failed. nft_rule_expr takes e (NULL: out of memory). */
void nft_rule_expr(struct rule_b *b, struct nftnl_expr *e);
void nft_rule_ipv4(struct rule_b *b);
void nft_rule_ct_bits(struct rule_b *b, uint32_t key, uint32_t mask);
void nft_rule_ct_bits_clear(struct rule_b *b, uint32_t key, uint32_t mask);
void nft_rule_verdict(struct rule_b *b, int verdict);
void nft_rule_jump(struct rule_b *b, const char *chain);
void nft_rule_masked_cmp(struct rule_b *b, const void *mask, const void *value, uint32_t len);

/* nft-readback.c */
/* Orders dead elements by key, then key end (qsort). */
int nft_dead_elem_cmp(const void *a, const void *b);
int nft_for_each_elem(const struct nlmsghdr *h, elem_fn fn, void *userdata);
int nft_get_table(struct xn_nft *nft, uint16_t family, struct table_info *ti);
void nft_nat_room_grow(struct xn_nft *nft, struct nat_room *room);

/* nft-antispoof.c */
void nft_batch_vif(struct batch *bt, const struct xn_nft_vif *v, bool add);
void nft_build_antispoof(struct batch *bt, bool bridge);
size_t nft_vif_wanted(const struct xn_nft_vif *v, const struct set_def *set, struct dead_elem out[16]);

/* nft-purge.c */
int nft_collect_others(struct xn_nft *nft, uint16_t family, const struct set_def *set,
		       const char (*keep)[IFNAMSIZ], size_t n_keep, struct dead_elem **ret, size_t *n);
void nft_batch_dead(struct batch *bt, const struct set_def *set, bool add, const struct dead_elem *d, size_t n);

/* nft-mappings.c */
void nft_batch_mappings(struct batch *bt, const struct xn_mapping *maps, size_t n_maps,
			const struct xn_forward *fwds, size_t n_fwds, bool add);
void nft_batch_publics(struct batch *bt, const struct xn_addr *a, size_t n, bool add);
