/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "xennet/addr.h"
#include "xennet/util.h"

/* A guest's network interface as its backend xenstore directory
 * (backend/vif/DOMID/DEVID) describes it. Only backend keys, which the
 * guest can read but not write, are trusted; every value is validated
 * here before anything touches the kernel. */

#define XN_VIF_MAX_IPS 16
#define XN_DOMID_FIRST_RESERVED 0x7FF0u
#define XN_VIF_MAX_DEVID 65535u
/* A xenstore value longer than this is refused outright. */
#define XN_XS_VALUE_MAX 1024

/* The fields before the addresses; hotplug.c keeps a copy with only the
 * addresses a vif has (struct vif_conf), made of the same fields. */
#define XN_VIF_CONF_FIELDS                                                        \
	unsigned domid, devid;                                                     \
	bool ioemu; /* type = vif_ioemu (HVM: also an emulated -emu tap) */        \
	char bridge[IFNAMSIZ]; /* "" when absent */                                \
	bool has_mac;                                                              \
	uint8_t mac[6];                                                            \
	unsigned mtu; /* 0 when absent */                                          \
	char vifname[IFNAMSIZ]; /* "" when absent */                               \
	char gatewaydev[IFNAMSIZ]; /* "" when absent */                            \
	size_t n_ips

struct xn_vif_conf {
	XN_VIF_CONF_FIELDS;
	struct xn_addr ips[XN_VIF_MAX_IPS];
};

/* Reads one backend key: returns the value (NUL-terminated, owned by the
 * callee until the next call) or NULL when the key does not exist. A
 * value with an embedded NUL or over XN_XS_VALUE_MAX bytes is reported by
 * returning XN_VIF_BAD_VALUE. */
extern const char XN_VIF_BAD_VALUE[];
typedef const char *(*xn_vif_key_reader)(const char *key, void *userdata);

/* Validate the backend keys into conf. On a bad value returns -EINVAL and
 * err says which key, which value and why, e.g.
 * `backend/vif/3/0/ip: "1.2.3.4;reboot" is not an IP address`. */
int xn_vif_conf_read(unsigned domid, unsigned devid, xn_vif_key_reader get,
		     void *userdata, struct xn_vif_conf *conf, struct xn_buf *err);

/* "backend/vif/D/N[/key]" or ".../local/domain/X/backend/vif/D/N[/key]":
 * strict decimal ids. *key points to the rest after "D/N/" ("" if none).
 * Returns -EINVAL for anything else. */
int xn_vif_parse_path(const char *path, unsigned *domid, unsigned *devid,
		      const char **key);

/* The kernel's own name, "vifD.N" (netback) or "vifD.N-emu" (QEMU tap).
 * -ENAMETOOLONG if it would not fit an interface name. */
int xn_vif_kernel_name(unsigned domid, unsigned devid, bool emu,
		       char out[IFNAMSIZ]);
/* Parse "vifD.N" or "vifD.N-emu" back. */
int xn_vif_parse_kernel_name(const char *name, unsigned *domid, unsigned *devid,
			     bool *emu);

/* "00:16:3e:01:02:03": six hex pairs, unicast, not all zero. */
int xn_parse_mac(const char *s, uint8_t mac[6]);
const char *xn_format_mac(const uint8_t mac[6], char buf[18]);
