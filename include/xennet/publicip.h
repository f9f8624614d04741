/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "xennet/mapping.h"
#include "xennet/netlink.h"
#include "xennet/profile.h"

/* The public IP mappings in force on a NAT host: the profile's [map]
 * sections plus those made with `xennet map|forward add` (kept in
 * STATE_DIR/mappings). A public address is made reachable by a local
 * route on the NAT uplink (unless it is already one of Dom0's own
 * addresses), with xennet's protocol number, which is how a restarted
 * daemon knows its own. Dom0 drops whatever reaches it untranslated on
 * them: the keys of the DNAT map, and the set "public_addrs" for the
 * addresses that are only forwarded. */

struct xn_publicip;
struct xn_nft;
struct xn_conntrack;

/* nl, nft and ct are borrowed: they outlive it. */
int xn_publicip_open(const char *state_dir, struct xn_nl *nl, struct xn_nft *nft,
		     struct xn_conntrack *ct, struct xn_publicip **ret, struct xn_buf *err);
void xn_publicip_close(struct xn_publicip *pi);

/* What to call when the NAT maps are full (they are sized when the table
 * is made): apply the profile again, which makes larger ones. */
void xn_publicip_on_full(struct xn_publicip *pi, int (*grow)(void *ctx, struct xn_buf *err),
			 void *ctx);

/* The mappings a profile would have in force (its own + the CLI's), for
 * the table that profile installs. -EINVAL with err when the CLI's no
 * longer fit the profile. *ret is valid until the next call. */
int xn_publicip_compose(struct xn_publicip *pi, const struct xn_profile *p,
			const struct xn_mapset **ret, struct xn_buf *err);
/* The composed set is no longer needed: its memory goes. */
void xn_publicip_compose_done(struct xn_publicip *pi);
/* The public addresses xennet made reachable that are not 1:1 mapped, as
 * last synchronised: what the set public_addrs holds. Valid until the
 * next call. */
void xn_publicip_listed(struct xn_publicip *pi, const struct xn_addr **ret, size_t *n);

/* After a profile was applied: make the kernel hold exactly its
 * mappings (maps, addresses, conntrack of what changed). maps_in_place:
 * the apply made the table anew with them (xn_publicip_compose), so the
 * maps are not read back; what changed is found against the last sync. */
int xn_publicip_sync(struct xn_publicip *pi, const struct xn_profile *p, bool maps_in_place,
		     struct xn_buf *err);

/* Would m (or f) be refused (conflicts, reserved addresses)? Says why in
 * out. The adds below check it again. */
int xn_publicip_check(struct xn_publicip *pi, const struct xn_mapping *m,
		      const struct xn_forward *f, struct xn_buf *out);
/* Must pub be probed before it is taken (1; *ifindex: the uplink)? It is
 * when it is new to Dom0 and on the uplink's own link, where another host
 * may be using it. 0 when not; -errno (with out) when it cannot be
 * taken at all (the network or broadcast address of the link). */
int xn_publicip_needs_probe(struct xn_publicip *pi, const struct xn_addr *pub, int *ifindex,
			    struct xn_buf *out);

/* The CLI's requests. Each checks, changes the kernel in one batch, drops
 * the conntrack entries of the public address, then saves the file; on
 * any failure nothing changes. Messages go to out. */
int xn_publicip_map_add(struct xn_publicip *pi, const struct xn_mapping *m, struct xn_buf *out);
int xn_publicip_map_del(struct xn_publicip *pi, const struct xn_addr *pub, struct xn_buf *out);
int xn_publicip_fwd_add(struct xn_publicip *pi, const struct xn_forward *f, struct xn_buf *out);
int xn_publicip_fwd_del(struct xn_publicip *pi, const struct xn_addr *pub, uint16_t port,
			uint8_t proto, struct xn_buf *out);
/* What the last sync did: mappings in force, how many public addresses
 * changed, and how long the nftables part took (one dump-and-diff and
 * one batch). */
void xn_publicip_last_sync(struct xn_publicip *pi, size_t *maps, size_t *fwds, size_t *changed,
			   long *us);
/* Conntrack purges that requests left for after their reply (a conntrack
 * walk takes milliseconds; the client does not wait for it), and running
 * them: one walk for all of them. */
bool xn_publicip_purge_pending(const struct xn_publicip *pi);
int xn_publicip_flush(struct xn_publicip *pi);
/* Every mapping and forward in force (the profile's and the CLI's). */
const struct xn_mapset *xn_publicip_all(const struct xn_publicip *pi);
void xn_publicip_list(struct xn_publicip *pi, bool forwards, bool json, struct xn_buf *out);
