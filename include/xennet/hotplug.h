/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xennet/netlink.h"
#include "xennet/profile.h"
#include "xennet/util.h"

/* vif hotplug: xennetd watches backend/vif in xenstore and the kernel's
 * link events; when a vif's backend directory and its device both exist,
 * it configures the device from the backend keys and the profile's mode
 * and writes hotplug-status, as Xen's vif scripts do. vif-xennet asks for
 * the same over the control socket and waits for the answer. */

struct xn_hotplug;

/* What happened to a vif, for the daemon's log: one report per event. */
enum xn_vif_event {
	XN_VIF_CONNECTED, /* hotplug-status=connected is written */
	XN_VIF_RECONFIGURED, /* its backend keys changed: configured anew */
	XN_VIF_ADOPTED, /* at start, as the previous run left it */
	XN_VIF_OFFLINE,
	XN_VIF_FAILED, /* detail: its hotplug-error */
	XN_VIF_REQUEST_DROPPED, /* detail: why (the script gave up, ...) */
	XN_VIF_REPAIRED, /* someone took it off its bridge or down: put back */
};

struct xn_vif_report {
	enum xn_vif_event event;
	unsigned domid, devid;
	bool emu;
	const char *device; /* its interface name now */
	const char *domain; /* the domain's name, NULL if unknown */
	const char *detail; /* NULL if none */
};

typedef void (*xn_vif_report_fn)(const struct xn_vif_report *r, void *userdata);

int xn_hotplug_open(struct xn_nl *nl, struct xn_hotplug **ret, struct xn_buf *err);
void xn_hotplug_close(struct xn_hotplug *h);

/* Who hears of each vif event (the daemon logs them). */
void xn_hotplug_set_reporter(struct xn_hotplug *h, xn_vif_report_fn fn, void *userdata);

/* The profile in force (borrowed; set again after each reload). */
void xn_hotplug_set_profile(struct xn_hotplug *h, const struct xn_profile *p);

/* For the event loop: readable when xenstore has news (watch events, or
 * hotplug-status writes made), and its handler. */
int xn_hotplug_fd(struct xn_hotplug *h);
/* Does xenstored send the replies on the watch connection after the watch
 * events queued before them? If not (oxenstored), requests read the keys. */
bool xn_hotplug_events_ordered(const struct xn_hotplug *h);
void xn_hotplug_on_xenstore(struct xn_hotplug *h);
void xn_hotplug_on_link(struct xn_hotplug *h, bool added, int ifindex,
			const char *name);

/* Look at every backend vif and every vif device: configure what is
 * missing, adopt what is already configured without touching it. */
void xn_hotplug_rescan(struct xn_hotplug *h);

/* A request from vif-xennet: action online|offline (the PV vif) or
 * add|remove (the HVM -emu tap), sent at sent_ms (CLOCK_MONOTONIC, as
 * the script read it; its 30 s count from then). Returns 1 when answered
 * now (*status 0 or a positive errno, message in out), 0 when the answer
 * will come later: then the request owns fd and replies on it. A request
 * whose script has gone (fd hung up) is dropped, not carried out. */
int xn_hotplug_request(struct xn_hotplug *h, const char *action,
		       unsigned domid, unsigned devid, int64_t sent_ms, int fd,
		       int *status, struct xn_buf *out);

/* Milliseconds until the next request times out, -1 when none waits. */
/* At start: adopt the vifs saved by the previous run that the kernel
 * still has as they were, then look at every other vif device. Says how
 * many of each. */
void xn_hotplug_start(struct xn_hotplug *h, const char *saved_path, size_t *adopted,
		       size_t *looked_up);
/* Save the configured vifs (if they changed) for the next start. */
int xn_hotplug_save(struct xn_hotplug *h, const char *path);
/* The requests read together have been handled: the next one needs a
 * new round trip to xenstore before it trusts the cached backend keys. */
void xn_hotplug_end_batch(struct xn_hotplug *h);
int xn_hotplug_timeout_ms(struct xn_hotplug *h);
/* The connection to xenstored is gone (it exited or restarted): close
 * this and open a new one. Checked at least every second. */
bool xn_hotplug_lost(struct xn_hotplug *h);
void xn_hotplug_on_timer(struct xn_hotplug *h);

/* The anti-spoofing content of the connected vifs, for a table
 * replacement to keep (free() the array). */
struct xn_nft_vif;
int xn_hotplug_nft_vifs(struct xn_hotplug *h, struct xn_nft_vif **ret, size_t *n);
/* Bridge (deleted and) made again: its connected vifs join it again.
 * Returns how many did; the first failure is described in err. */
int xn_hotplug_reattach(struct xn_hotplug *h, const char *bridge, struct xn_buf *err);
/* Remove filter elements of interfaces that are not connected vifs. */
void xn_hotplug_purge_vanished(struct xn_hotplug *h);

/* Each vif: domid/devid, name, mode, bridge or routes, addresses. */
/* What a vif is, for status and inventory (valid during the callback). */
struct xn_vif_info {
	unsigned domid, devid;
	bool emu;
	const char *name; /* its device's name now */
	const char *domain; /* NULL: not known */
	const char *state; /* connected, connecting, waiting, offline, error */
	enum xn_mode mode;
	const char *bridge; /* "" when routed */
	bool has_mac;
	uint8_t mac[6];
	const struct xn_addr *ips;
	size_t n_ips;
	bool filtered;
	const char *error; /* NULL unless it failed */
};
void xn_hotplug_each_vif(struct xn_hotplug *h,
			 void (*fn)(const struct xn_vif_info *vif, void *userdata), void *userdata);

