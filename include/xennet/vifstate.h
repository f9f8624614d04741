/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The vifs xennetd has configured, one line each, kept in the state
 * directory so that a restarted daemon adopts them from one link dump and
 * one xenstore listing instead of reading every backend key of every vif
 * again (ten requests per vif, to a xenstored that slows down as domains
 * are added). The file is a cache: each record is checked against the
 * kernel before it is believed (same boot, same ifindex and name, up, on
 * the right bridge), and anything missing or wrong is configured the slow
 * way. */

#include "xennet/profile.h"
#include "xennet/vif.h"

struct xn_vif_record {
	unsigned domid, devid;
	bool emu;
	int ifindex;
	char name[IFNAMSIZ]; /* as configured (vifname when renamed) */
	enum xn_mode mode;
	char bridge[IFNAMSIZ]; /* bridged, nat: the bridge it is a port of */
	bool filtered; /* anti-spoofing elements installed */
	char uplink[IFNAMSIZ]; /* routed: where its neighbour proxies are */
	struct xn_vif_conf conf; /* the backend keys it was configured from */
};

/* One line, without the newline. -EINVAL for what could not be parsed
 * back (a name the format cannot hold). */
int xn_vif_record_format(const struct xn_vif_record *r, struct xn_buf *out);
/* Strict: -EINVAL for anything malformed; line is modified. */
int xn_vif_record_parse(char *line, struct xn_vif_record *r);

/* This boot's id (/proc/sys/kernel/random/boot_id), 36 characters. */
int xn_boot_id(char out[40]);
