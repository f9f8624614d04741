/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xennet/addr.h"
#include "xennet/profile.h"
#include "xennet/util.h"

/* Per-VM public IPv4 mappings of a NAT host: 1:1 (public <-> guest, every
 * protocol) and port forwards (public:port/proto -> guest:port). They come
 * from the profile ([map NAME]) or from `xennet map|forward add`, which are
 * kept in the state directory. */

#define XN_MAPPING_NAME_MAX 63

/* name is NULL when there is none. A set keeps its own copy of each
 * name (xn_mapset_add_*): a name copied out of a set is valid until the
 * set is cleared or its names tidied. */
struct xn_mapping {
	struct xn_addr public_addr, guest;
	const char *name;
	bool from_profile;
};

struct xn_forward {
	struct xn_addr public_addr, guest;
	uint16_t public_port, guest_port;
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
	const char *name;
	bool from_profile;
};

struct xn_name_chunk;

struct xn_mapset {
	struct xn_mapping *maps;
	size_t n_maps, cap_maps;
	struct xn_forward *fwds;
	size_t n_fwds, cap_fwds;
	/* The names, packed in chunks that never move (10,000 names of a
	 * few letters take kilobytes, not 64 bytes each). */
	struct xn_name_chunk *names;
	size_t names_live, names_dead; /* bytes */
};

void xn_mapset_clear(struct xn_mapset *s);
/* Give back the room of removed entries' names once it exceeds what the
 * others take: names copied out of s before are then no longer valid. */
void xn_mapset_tidy_names(struct xn_mapset *s);
/* Give back the room kept for more (after a bulk load). */
void xn_mapset_shrink(struct xn_mapset *s);

/* "192.0.2.10:80/tcp" and "10.0.0.10:8080". Strict. */
int xn_parse_public_port(const char *s, struct xn_addr *a, uint16_t *port, uint8_t *proto);
int xn_parse_host_port(const char *s, struct xn_addr *a, uint16_t *port);
bool xn_mapping_name_valid(const char *name);
const char *xn_proto_name(uint8_t proto);

/* Would adding m (or f) to s be consistent with the NAT network net
 * (xn_profile_nat_net)? On a conflict returns -EEXIST or -EINVAL with
 * the reason in err. */
int xn_mapset_check_map(const struct xn_mapset *s, const struct xn_nat_net *net,
			const struct xn_mapping *m, struct xn_buf *err);
int xn_mapset_check_forward(const struct xn_mapset *s, const struct xn_nat_net *net,
			    const struct xn_forward *f, struct xn_buf *err);

/* The address rules alone (nat mode, public outside and guest inside the
 * guest network, ...), without looking at the other mappings. */
int xn_mapping_check_addresses(const struct xn_nat_net *net, const struct xn_addr *pub,
			       const struct xn_addr *guest, struct xn_buf *err);
/* A whole set at once, in O(n log n): the first conflict found is in err
 * and names the entry (forward or map, and its index). */
int xn_mapset_check_all(const struct xn_mapset *s, const struct xn_nat_net *net,
			struct xn_buf *err, bool *bad_is_forward, size_t *bad_index);

int xn_mapset_add_map(struct xn_mapset *s, const struct xn_mapping *m);
int xn_mapset_add_forward(struct xn_mapset *s, const struct xn_forward *f);
/* Remove by public address (maps) or public address, port and protocol
 * (forwards); -ENOENT when there is none. The removed entry is copied out. */
int xn_mapset_del_map(struct xn_mapset *s, const struct xn_addr *public_addr,
		      struct xn_mapping *removed);
int xn_mapset_del_forward(struct xn_mapset *s, const struct xn_addr *public_addr,
			  uint16_t port, uint8_t proto, struct xn_forward *removed);

/* The mappings made with the CLI, kept in a file: a journal of `map` and
 * `forward` lines and `del` lines that remove an earlier one, each change
 * appended and on disk (fdatasync) before it is acknowledged; rewritten
 * whole (temporary file, fsync, rename) when it has grown to twice what
 * it holds. A missing file is an empty set; a bad line is -EBADMSG (its
 * number in bad_line); records: the lines read, to know when to rewrite. */
int xn_mapset_load(const char *path, struct xn_mapset *s, unsigned *bad_line, size_t *records);
int xn_mapset_save(const char *path, const struct xn_mapset *s);
/* One change at the end of the journal; on failure the file is as it was. */
int xn_mapset_journal_map(const char *path, const struct xn_mapping *m, bool add);
int xn_mapset_journal_forward(const char *path, const struct xn_forward *f, bool add);
