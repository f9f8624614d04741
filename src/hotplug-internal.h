/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the hotplug files share (hotplug.c: the table of vifs, xenstore,
 * events and requests; vifattach.c: a vif's kernel side; hotplug-restart.c:
 * what is kept across restarts and adopted at start). Not an API. */

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "xennet/hotplug.h"
#include "xennet/netlink.h"
#include "xennet/nft.h"
#include "xennet/profile.h"
#include "xennet/util.h"
#include "xennet/vif.h"
#include "xennet/xs.h"
#include "xennet/xsqueue.h"

#define WAIT_MS 30000 /* far below libxl's 40 s SIGKILL */
#define CLOSE_FLUSH_MS 5000 /* at exit, for the writes still queued */
#define CHECK_MS 1000 /* how often an idle connection to xenstored is checked */
#define XN_VIF_ERROR_MAX 319 /* hotplug-error, status and replies */
#define ALIAS_PREFIX "xennet vif "

struct waiter {
	int fd;
	int64_t deadline;
	struct waiter *next;
};

/* A request read before xennetd knew it had every watch event libxl's
 * writes made: it is served, in order, once the sync posted after it
 * is done. */
struct parked {
	struct parked *next;
	uint64_t sync;
	int64_t since; /* when it came: its 30 s run from then */
	int fd;
	unsigned domid, devid;
	bool up, emu;
};

/* A reply held until xenstore has the writes posted before it: a script
 * that exits makes libxl go on (remove the backend directory, say), and a
 * write of ours made after that would bring back what it removed. */
struct held {
	struct held *next;
	uint64_t after; /* the write that must be made first */
	int fd, status;
	char msg[];
};

/* The backend keys xennetd reads; BK_DIR is the directory itself. */
enum backend_key {
	BK_TYPE, BK_BRIDGE, BK_VIFNAME, BK_GATEWAYDEV, BK_MAC, BK_MTU, BK_IP,
	BK_ONLINE, BK_SCRIPT, BK_DIR, BK_N
};
#define BK_ALL ((1u << BK_N) - 1)

/* A vif's configuration as kept: only the addresses it has (1,000 vifs
 * with one address each keep 300 KiB less than with room for 16). */
struct vif_conf {
	XN_VIF_CONF_FIELDS;
	struct xn_addr ips[];
};
_Static_assert(offsetof(struct vif_conf, ips) == offsetof(struct xn_vif_conf, ips),
	       "struct vif_conf and struct xn_vif_conf have the same fields");

enum vif_state {
	VIF_WAITING, /* backend or device not there yet */
	VIF_CONNECTED,
	VIF_FAILED,
	VIF_OFFLINE, /* taken down by an offline/remove request: stays down
			until the next online/add request */
};

struct vif {
	unsigned domid, devid;
	bool emu; /* the HVM vifD.N-emu tap */
	char kname[IFNAMSIZ]; /* vifD.N or vifD.N-emu */
	char name[IFNAMSIZ]; /* the name it has now (vifname when renamed) */
	enum vif_state state;
	struct vif_conf *conf; /* as last read; NULL before */
	enum xn_mode mode; /* as configured */
	char bridge[IFNAMSIZ]; /* bridged, nat */
	struct xn_addr src; /* routed: Dom0's address used as source */
	bool has_src;
	bool filtered; /* its anti-spoofing elements are installed */
	char uplink[IFNAMSIZ]; /* routed: where its neighbour proxies live */
	int ifindex; /* of the device configured: identity, not the name */
	unsigned fe_mtu; /* the frontend's mtu as last read or written, 0: unknown */
	bool fe_written; /* we wrote it once: libxl's value is not to be assumed */
	char *error; /* why it failed, NULL if it did not: kept only then */
	char *domain; /* the domain's name, read once for the log; NULL: not yet or none */
	bool unverified; /* adopted as saved: its keys are yet to be read */
	struct waiter *waiters;
	/* Its hotplug-status write in flight (xn_xsq cookie), 0: none. The
	 * waiters are answered when it is made. */
	uint64_t pending;
	uint64_t last_posted; /* its last write, made or not: replies wait for it */
	/* The backend keys used, as last read. A watch event marks what
	 * it touched stale: each key is read once per change, not once
	 * per look (500 vifs at once wait on one xenstored). */
	char *be[BK_N]; /* NULL: absent */
	int be_err[BK_N]; /* -errno of the last read, 0 or -ENOENT */
	unsigned be_stale; /* bit per enum backend_key */
};

/* A backend value that many vifs have ("vif", "1", "xenbr0", the script's
 * path): kept once, counted (1,000 vifs keep 150 KiB less). */
struct shared_value {
	struct shared_value *next;
	unsigned refs;
	char text[];
};

struct xn_hotplug {
	struct xn_nl *nl;
	struct shared_value *values;
	struct xn_xs *xs;
	struct xn_xsq *writes; /* hotplug-status, written in the background */
	uint64_t last_write; /* the cookie of the last one posted */
	uint64_t writes_done; /* the last one made (they are made in order) */
	struct held *held, **held_tail; /* replies waiting for writes, in order */
	int efd; /* epoll: xenstore's watch events and the writes made */
	const struct xn_profile *profile;
	struct vif **vifs;
	size_t n_vifs;
	struct parked *parked, **parked_tail; /* oldest first */
	uint64_t syncs_posted, syncs_done;
	bool sync_wanted; /* requests were parked for a sync not yet posted */
	bool dirty; /* the vifs changed since they were last saved */
	bool initial_watch; /* xs_watch's first event is yet to come */
	bool lost; /* the connection to xenstored is gone */
	size_t n_unverified; /* vifs adopted whose keys are yet to be read */
	int64_t next_check; /* of the connection, when nothing else happens */
	xn_vif_report_fn report; /* each vif event, for the log */
	void *report_ud;
	/* Domains above this one were made while xennetd watched: libxl
	 * wrote their vifs' frontend mtu, and no script has run for them
	 * but us. UINT_MAX until xenstore was read at start. */
	unsigned last_domid_at_start;
};

static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* hotplug.c */
struct vif *vif_find(struct xn_hotplug *h, unsigned domid, unsigned devid, bool emu);
struct vif *vif_get(struct xn_hotplug *h, unsigned domid, unsigned devid, bool emu);
void vif_drop(struct xn_hotplug *h, struct vif *v);
const char *vif_backend_get(struct xn_hotplug *h, struct vif *v, enum backend_key k);
const struct vif_conf *vif_conf_of(const struct vif *v);
int vif_set_conf(struct vif *v, const struct xn_vif_conf *c);
void vif_conf_export(const struct vif_conf *k, struct xn_vif_conf *out);
int vif_read_conf(struct xn_hotplug *h, struct vif *v, struct xn_buf *err);
bool vif_backend_online(struct xn_hotplug *h, struct vif *v);
/* Try to bring a vif to CONNECTED; its waiters hear when it gets there
 * (its hotplug-status written) or fails. */
void vif_try(struct xn_hotplug *h, struct vif *v, bool requested);
void vif_offline(struct xn_hotplug *h, struct vif *v);
/* A connected vif's backend keys may have changed: configure it again
 * from them if they did (or fail it, undone, if they are bad). Returns
 * true if it was configured again. */
bool vif_reapply(struct xn_hotplug *h, struct vif *v);
/* Tell the daemon of a vif event (detail: the error, or NULL). */
void vif_report(struct xn_hotplug *h, struct vif *v, enum xn_vif_event ev, const char *detail);

/* vifattach.c */
/* Record why v failed (its hotplug-error); returns r. */
int vif_fail(struct vif *v, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *vif_error(const struct vif *v);
int vif_find_device(struct xn_hotplug *h, struct vif *v, struct xn_link *l);
const char *vif_bridge_for_key(const struct xn_hotplug *h, const char *key_bridge);
const char *vif_bridge(const struct xn_hotplug *h, const struct vif *v);
bool hotplug_antispoof_on(const struct xn_hotplug *h);
void vif_nft(const struct vif *v, struct xn_nft_vif *nv);
int vif_install_filter(struct xn_hotplug *h, struct vif *v);
/* Undo, idempotently: whatever of it is still there goes. */
void vif_detach(struct xn_hotplug *h, struct vif *v);
int vif_configure(struct xn_hotplug *h, struct vif *v, struct xn_link *l);
/* A connected vif off its bridge or down: a port again. 1 if repaired,
 * 0 if there was nothing to do, -EIO if it failed (vif_error says why). */
int vif_check_port(struct xn_hotplug *h, struct vif *v);
