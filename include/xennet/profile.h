/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xennet/addr.h"

/* The validated, immutable model of a profile. Apply code only ever sees a
 * profile that xn_profile_load() accepted. */

enum xn_mode {
	XN_MODE_BRIDGED,
	XN_MODE_ROUTED,
	XN_MODE_NAT,
};

/* "bridged", "routed", "nat": the profile's words, also in saved state. */
const char *xn_mode_name(enum xn_mode m);
/* -ENOENT when name is none of them. */
int xn_mode_from_name(const char *name, enum xn_mode *ret);

struct xn_bridge_conf {
	char name[IFNAMSIZ];
	char uplink[IFNAMSIZ]; /* "" when none */
	bool take_addresses;
	struct xn_addr *addresses; /* address = CIDR, may repeat */
	unsigned *address_lines; /* the line of each address */
	size_t n_addresses;
	unsigned mtu; /* 0: leave as it is */
	/* -1 when not set: a bridge xennet makes gets STP off and forward
	 * delay 0, one it adopts keeps its own. */
	int stp; /* 0 or 1 */
	int forward_delay; /* seconds */
	unsigned line; /* line of the [bridge NAME] header */
};

struct xn_map_conf {
	char name[64];
	struct xn_addr public_addr; /* IPv4 host */
	struct xn_addr guest; /* IPv4 host */
	unsigned line;
};

struct xn_forward_conf {
	char name[64];
	struct xn_addr public_addr; /* IPv4 host */
	uint16_t public_port;
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
	struct xn_addr guest; /* IPv4 host */
	uint16_t guest_port;
	unsigned line;
};

struct xn_profile {
	char *path;
	enum xn_mode mode;
	bool antispoof; /* default true */

	struct xn_bridge_conf *bridges;
	size_t n_bridges;

	char routed_uplink[IFNAMSIZ]; /* [routed] uplink, mode routed */

	char nat_uplink[IFNAMSIZ]; /* [nat] uplink, mode nat */
	char nat_bridge[IFNAMSIZ]; /* [nat] bridge, mode nat */

	struct xn_map_conf *maps;
	size_t n_maps;

	struct xn_forward_conf *forwards;
	size_t n_forwards;
};

/* Errors found while loading: one line each, "file:line: message". */
struct xn_diag {
	char **lines;
	size_t n;
};
void xn_diag_free(struct xn_diag *d);

/* Parse and validate a profile. On success *ret is set and 0 returned.
 * On a bad profile, returns -EINVAL and d holds every error, one
 * "file:line: what is wrong, quoting the bad value" line each. On I/O
 * errors returns -errno (and adds a line to d). */
int xn_profile_load(const char *path, struct xn_profile **ret,
		    struct xn_diag *d);
void xn_profile_free(struct xn_profile *p);

const struct xn_bridge_conf *xn_profile_bridge(const struct xn_profile *p,
					       const char *name);

/* The guest network of a NAT profile: the first IPv4 address of the nat
 * bridge, as a network. Returns NULL for other modes. */
const struct xn_addr *xn_profile_nat_gateway(const struct xn_profile *p);

/* What public IP mappings are checked against (xn_mapset_check_*): the
 * guest network, and Dom0's own addresses on its bridges, which no
 * mapping may take. Borrowed from a profile, valid as long as it is. */
struct xn_nat_net {
	const struct xn_addr *gateway; /* with its prefix; NULL: not nat mode */
	const struct xn_bridge_conf *bridges;
	size_t n_bridges;
};
/* p may be NULL (no profile: no NAT network). */
struct xn_nat_net xn_profile_nat_net(const struct xn_profile *p);
