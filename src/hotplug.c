/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/hotplug.h"

#include <limits.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "xennet/control.h"
#include "xennet/nft.h"
#include "xennet/sysctl.h"
#include "xennet/vif.h"
#include "xennet/vifstate.h"
#include "xennet/xs.h"
#include "xennet/xsqueue.h"

#define WAIT_MS 30000 /* far below libxl's 40 s SIGKILL */
#define CLOSE_FLUSH_MS 5000 /* at exit, for the writes still queued */
#define XN_VIF_ERROR_MAX 319 /* hotplug-error, status and replies */
#define ALIAS_PREFIX "xennet vif "

static const uint8_t BRIDGE_PORT_MAC[6] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff };

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

static const struct {
	const char *name;
	size_t max; /* longer values are refused, not truncated */
	bool shared; /* the same for most vifs: one copy for all */
} backend_keys[BK_N] = {
	[BK_TYPE] = { "type", XN_XS_VALUE_MAX, true },
	[BK_BRIDGE] = { "bridge", XN_XS_VALUE_MAX, true },
	[BK_VIFNAME] = { "vifname", XN_XS_VALUE_MAX, false },
	[BK_GATEWAYDEV] = { "gatewaydev", XN_XS_VALUE_MAX, true },
	[BK_MAC] = { "mac", XN_XS_VALUE_MAX, false },
	[BK_MTU] = { "mtu", XN_XS_VALUE_MAX, true },
	[BK_IP] = { "ip", XN_XS_VALUE_MAX, false },
	[BK_ONLINE] = { "online", 8, true },
	[BK_SCRIPT] = { "script", 4096, true },
	[BK_DIR] = { "", 0, true },
};

static int backend_key_index(const char *name)
{
	for (int k = 0; k < BK_DIR; k++)
		if (strcmp(backend_keys[k].name, name) == 0)
			return k;
	return -1;
}

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
	/* Domains above this one were made while xennetd watched: libxl
	 * wrote their vifs' frontend mtu, and no script has run for them
	 * but us. UINT_MAX until xenstore was read at start. */
	unsigned last_domid_at_start;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the table of vifs ---- */

static struct vif *vif_find(struct xn_hotplug *h, unsigned domid, unsigned devid,
			    bool emu)
{
	for (size_t i = 0; i < h->n_vifs; i++) {
		struct vif *v = h->vifs[i];
		if (v->domid == domid && v->devid == devid && v->emu == emu)
			return v;
	}
	return NULL;
}

static struct vif *vif_get(struct xn_hotplug *h, unsigned domid, unsigned devid,
			   bool emu)
{
	struct vif *v = vif_find(h, domid, devid, emu), **arr;

	if (v)
		return v;
	if (xn_vif_kernel_name(domid, devid, emu, (char[IFNAMSIZ]){ 0 }) < 0)
		return NULL;
	v = calloc(1, sizeof(*v));
	arr = reallocarray(h->vifs, h->n_vifs + 1, sizeof(*arr));
	if (!v || !arr) {
		free(v);
		if (arr)
			h->vifs = arr;
		return NULL;
	}
	h->vifs = arr;
	v->domid = domid;
	v->devid = devid;
	v->emu = emu;
	xn_vif_kernel_name(domid, devid, emu, v->kname);
	memcpy(v->name, v->kname, sizeof(v->name));
	v->be_stale = BK_ALL;
	h->vifs[h->n_vifs++] = v;
	return v;
}

/* Reply on fd (and close it) once the write "after" is made: at once if
 * it is. Without memory to hold it, at once too. */
static void reply_after(struct xn_hotplug *h, uint64_t after, int fd, int status,
			const char *msg)
{
	size_t len = strlen(msg) + 1;
	struct held *r = after > h->writes_done ? malloc(sizeof(*r) + len) : NULL;

	if (!r) {
		xn_ctl_write_reply(fd, status, msg);
		close(fd);
		return;
	}
	*r = (struct held){ .after = after, .fd = fd, .status = status };
	memcpy(r->msg, msg, len);
	if (!h->held)
		h->held_tail = &h->held;
	*h->held_tail = r;
	h->held_tail = &r->next;
}

/* Send the held replies whose write is made (all: UINT64_MAX). */
static void release_held(struct xn_hotplug *h, uint64_t done)
{
	while (h->held && h->held->after <= done) {
		struct held *r = h->held;
		h->held = r->next;
		xn_ctl_write_reply(r->fd, r->status, r->msg);
		close(r->fd);
		free(r);
	}
}

/* Answer every script waiting for v, once v's writes are made. */
static void answer(struct xn_hotplug *h, struct vif *v, int status, const char *msg)
{
	while (v->waiters) {
		struct waiter *w = v->waiters;
		v->waiters = w->next;
		reply_after(h, v->last_posted, w->fd, status, msg);
		free(w);
	}
}

/* value (malloc'd) as kept for key k: the shared copy if there is one
 * (value is then freed), else value itself. NULL on no memory. */
static char *keep_value(struct xn_hotplug *h, enum backend_key k, char *value)
{
	struct shared_value *sv;
	size_t len;

	if (!value || !backend_keys[k].shared)
		return value;
	for (sv = h->values; sv; sv = sv->next)
		if (strcmp(sv->text, value) == 0)
			break;
	if (!sv) {
		len = strlen(value) + 1;
		sv = malloc(sizeof(*sv) + len);
		if (!sv) {
			free(value);
			return NULL;
		}
		*sv = (struct shared_value){ .next = h->values };
		memcpy(sv->text, value, len);
		h->values = sv;
	}
	free(value);
	sv->refs++;
	return sv->text;
}

static void drop_value(struct xn_hotplug *h, enum backend_key k, char *value)
{
	struct shared_value **p;

	if (!value || !backend_keys[k].shared) {
		free(value);
		return;
	}
	for (p = &h->values; *p; p = &(*p)->next)
		if ((*p)->text == value) {
			struct shared_value *sv = *p;
			if (--sv->refs == 0) {
				*p = sv->next;
				free(sv);
			}
			return;
		}
}

static void vif_free(struct xn_hotplug *h, struct vif *v)
{
	for (int k = 0; k < BK_N; k++)
		drop_value(h, (enum backend_key)k, v->be[k]);
	free(v->conf);
	free(v->error);
	free(v);
}

static void vif_drop(struct xn_hotplug *h, struct vif *v)
{
	h->dirty = true;
	answer(h, v, ENODEV, "the vif's backend directory is gone\n");
	for (size_t i = 0; i < h->n_vifs; i++)
		if (h->vifs[i] == v) {
			h->vifs[i] = h->vifs[--h->n_vifs];
			break;
		}
	vif_free(h, v);
}

/* ---- xenstore ---- */

static void backend_dir(const struct vif *v, char *out, size_t size)
{
	snprintf(out, size, "backend/vif/%u/%u", v->domid, v->devid);
}

/* A backend key: its value, NULL when absent, XN_VIF_BAD_VALUE when it
 * cannot be read (too long, not text, xenstore failing). Read only when
 * a watch event said it changed. */
static const char *backend_get(struct xn_hotplug *h, struct vif *v, enum backend_key k)
{
	char path[96];
	int r;

	if (v->be_stale & (1u << k)) {
		char *value = NULL;

		drop_value(h, k, v->be[k]);
		v->be[k] = NULL;
		if (k == BK_DIR) {
			backend_dir(v, path, sizeof(path));
			r = xn_xs_exists(h->xs, path) ? 0 : -ENOENT;
			if (r == 0)
				value = strdup("");
		} else {
			snprintf(path, sizeof(path), "backend/vif/%u/%u/%s", v->domid, v->devid,
				 backend_keys[k].name);
			r = xn_xs_read(h->xs, path, backend_keys[k].max, &value);
		}
		if (r == 0) {
			v->be[k] = keep_value(h, k, value);
			if (!v->be[k])
				r = -ENOMEM;
		}
		v->be_err[k] = r;
		/* A value, a missing key or a bad one stays so until the next
		 * event; a failing xenstore is asked again next time. */
		if (r == 0 || r == -ENOENT || r == -EBADMSG)
			v->be_stale &= ~(1u << k);
	}
	if (v->be_err[k] == -ENOENT)
		return NULL;
	if (v->be_err[k] < 0)
		return XN_VIF_BAD_VALUE;
	return v->be[k];
}

struct key_reader {
	struct xn_hotplug *h;
	struct vif *v;
};

static const char *read_key(const char *key, void *ud)
{
	struct key_reader *kr = ud;
	int k = backend_key_index(key);

	return k < 0 ? XN_VIF_BAD_VALUE : backend_get(kr->h, kr->v, (enum backend_key)k);
}

static const struct vif_conf no_conf;

static const struct vif_conf *conf_of(const struct vif *v)
{
	return v->conf ? v->conf : &no_conf;
}

/* v's configuration becomes a copy of c, in the bytes it needs. */
static int set_conf(struct vif *v, const struct xn_vif_conf *c)
{
	size_t head = offsetof(struct xn_vif_conf, ips), n = c->n_ips * sizeof(c->ips[0]);
	struct vif_conf *copy = malloc(sizeof(*copy) + n);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, c, head);
	memcpy(copy->ips, c->ips, n);
	free(v->conf);
	v->conf = copy;
	return 0;
}

static void conf_export(const struct vif_conf *k, struct xn_vif_conf *out)
{
	memcpy(out, k, offsetof(struct xn_vif_conf, ips));
	memcpy(out->ips, k->ips, k->n_ips * sizeof(k->ips[0]));
}

static int read_conf(struct xn_hotplug *h, struct vif *v, struct xn_buf *err)
{
	struct key_reader kr = { .h = h, .v = v };
	struct xn_vif_conf c;
	int r;

	r = xn_vif_conf_read(v->domid, v->devid, read_key, &kr, &c, err);
	if (r >= 0 && set_conf(v, &c) < 0) {
		xn_buf_printf(err, "backend/vif/%u/%u: out of memory", v->domid, v->devid);
		r = -ENOMEM;
	}
	return r;
}

/* Is the backend there and online? */
static bool backend_online(struct xn_hotplug *h, struct vif *v)
{
	const char *online = backend_get(h, v, BK_ONLINE);

	if (!online)
		return backend_get(h, v, BK_DIR) != NULL;
	return online != XN_VIF_BAD_VALUE && strcmp(online, "0") != 0;
}

/* Queue the vif's hotplug-status: "connected", or "error" with
 * hotplug-error = error. Its waiters are answered when it is written. */
static int post_status(struct xn_hotplug *h, struct vif *v, const char *error)
{
	char dir[64];
	int r;

	backend_dir(v, dir, sizeof(dir));
	r = xn_xsq_post(h->writes, dir, error, h->last_write + 1);
	if (r < 0)
		return r;
	v->pending = v->last_posted = ++h->last_write;
	return 0;
}

/* ---- configuring a device ---- */

static int fail(struct vif *v, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct vif *v, int r, const char *fmt, ...)
{
	char msg[XN_VIF_ERROR_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(v->error);
	v->error = strdup(msg); /* NULL: reported as "out of memory" */
	return r;
}

static const char *error_of(const struct vif *v)
{
	return v->error ? v->error : "out of memory";
}

static void vif_alias(const struct vif *v, char out[64])
{
	snprintf(out, 64, ALIAS_PREFIX "%u/%u%s", v->domid, v->devid, v->emu ? " emu" : "");
}

/* Find the device: its kernel name, or the vifname we gave it (proved by
 * the alias we set, never by the name alone). */
static int find_device(struct xn_hotplug *h, struct vif *v, struct xn_link *l)
{
	char alias[64], want[IFNAMSIZ];
	int r;

	r = xn_nl_link_get(h->nl, v->kname, l);
	if (r != -ENODEV)
		return r;
	if (!conf_of(v)->vifname[0])
		return -ENODEV;
	if (snprintf(want, sizeof(want), "%s%s", conf_of(v)->vifname, v->emu ? "-emu" : "") >=
	    (int)sizeof(want))
		return -ENODEV;
	r = xn_nl_link_get(h->nl, want, l);
	if (r < 0)
		return r;
	vif_alias(v, alias);
	return strcmp(l->alias, alias) == 0 ? 0 : -ENODEV;
}

static int rename_device(struct xn_hotplug *h, struct vif *v, struct xn_link *l)
{
	char want[IFNAMSIZ], alias[64];
	struct xn_link other;
	int r;

	if (!conf_of(v)->vifname[0])
		return 0;
	if (snprintf(want, sizeof(want), "%s%s", conf_of(v)->vifname, v->emu ? "-emu" : "") >=
	    (int)sizeof(want))
		return fail(v, -ENAMETOOLONG, "vifname %s%s is too long for an interface name",
			    conf_of(v)->vifname, v->emu ? "-emu" : "");
	if (strcmp(l->name, want) == 0)
		return 0;
	r = xn_nl_link_get(h->nl, want, &other);
	if (r >= 0)
		return fail(v, -EEXIST, "Cannot rename interface %s. An interface with name %s already exists.",
			    l->name, want);
	r = xn_nl_link_set_up(h->nl, l->ifindex, false);
	if (r >= 0)
		r = xn_nl_link_set_name(h->nl, l->ifindex, want);
	if (r < 0)
		return fail(v, r, "renaming %s to %s: %s", l->name, want, strerror(-r));
	vif_alias(v, alias);
	xn_nl_link_set_alias(h->nl, l->ifindex, alias);
	memcpy(l->name, want, sizeof(l->name));
	memcpy(v->name, want, sizeof(v->name));
	return 0;
}

static const char *bridge_for_conf(const struct xn_hotplug *h, const char *key_bridge)
{
	const struct xn_profile *p = h->profile;

	if (p && p->mode == XN_MODE_NAT)
		return p->nat_bridge;
	if (key_bridge[0])
		return key_bridge;
	if (p && p->n_bridges)
		return p->bridges[0].name;
	return "xenbr0"; /* libxl's default */
}

static const char *bridge_for(const struct xn_hotplug *h, const struct vif *v)
{
	return bridge_for_conf(h, conf_of(v)->bridge);
}

/* The frontend's mtu, without asking xenstore when it is known: what we
 * last read or wrote; or, for a vif of a domain made since we started
 * whose backend has no mtu key, libxl's 1500 (libxl 4.17 writes the
 * frontend's mtu, read-only to the guest, with the nic's mtu, and the
 * backend's only when it is not 1500). 0: unknown. */
static unsigned frontend_mtu_known(const struct xn_hotplug *h, const struct vif *v)
{
	if (v->fe_mtu)
		return v->fe_mtu;
	if (!v->fe_written && h->last_domid_at_start != UINT_MAX &&
	    v->domid > h->last_domid_at_start && !conf_of(v)->mtu)
		return 1500;
	return 0;
}

static int write_frontend_mtu(struct xn_hotplug *h, struct vif *v, unsigned mtu)
{
	char path[96], val[16], *now = NULL;
	unsigned known = frontend_mtu_known(h, v);
	bool same;
	int r;

	if (v->emu)
		return 0;
	/* 500 vifs at once wait on one xenstored: a request saved is time
	 * saved for every one of them. */
	if (known == mtu)
		return 0;
	/* By domid/devid, not parsed out of a custom vifname (Xen's bug). */
	snprintf(path, sizeof(path), "/local/domain/%u/device/vif/%u/mtu", v->domid, v->devid);
	snprintf(val, sizeof(val), "%u", mtu);
	/* Unknown: libxl wrote it, usually right; a read costs xenstored a
	 * fraction of a write, which also wakes every watcher. */
	same = !known && xn_xs_read(h->xs, path, sizeof(val), &now) >= 0 && strcmp(now, val) == 0;
	free(now);
	r = same ? 0 : xn_xs_write(h->xs, path, val);
	if (r >= 0)
		v->fe_mtu = mtu;
	v->fe_written |= !same;
	return r;
}

static int attach_to_bridge(struct xn_hotplug *h, struct vif *v, struct xn_link *l)
{
	const char *brname = bridge_for(h, v);
	struct xn_link br;
	unsigned mtu;
	int r;

	r = xn_nl_link_get(h->nl, brname, &br);
	if (r < 0 || strcmp(br.kind, "bridge") != 0)
		return fail(v, -ENODEV, "Could not find bridge device %s", brname);
	snprintf(v->bridge, sizeof(v->bridge), "%s", brname);

	if (l->master == br.ifindex && l->up)
		return 0;
	/* As setup_virtual_bridge_port: down, a MAC the bridge will not
	 * adopt, no addresses; then the MTU and the bridge. */
	r = l->up ? xn_nl_link_set_up(h->nl, l->ifindex, false) : 0;
	if (r >= 0)
		r = xn_nl_addr_flush(h->nl, l->ifindex);
	if (r < 0)
		return fail(v, r, "preparing %s as a bridge port: %s", l->name, strerror(-r));
	mtu = conf_of(v)->mtu ? conf_of(v)->mtu : br.mtu;
	/* One request; if it fails, one step at a time says which. */
	r = xn_nl_link_make_port(h->nl, l->ifindex, BRIDGE_PORT_MAC, mtu, br.ifindex);
	if (r < 0) {
		r = xn_nl_link_set_mac(h->nl, l->ifindex, BRIDGE_PORT_MAC);
		if (r < 0)
			return fail(v, r, "setting the bridge-port MAC on %s: %s", l->name,
				    strerror(-r));
		r = xn_nl_link_set_mtu(h->nl, l->ifindex, mtu);
		if (r < 0)
			return fail(v, r, "setting mtu %u on %s: %s", mtu, l->name, strerror(-r));
		r = xn_nl_link_set_master(h->nl, l->ifindex, br.ifindex);
		if (r < 0)
			return fail(v, r, "adding %s to bridge %s: %s", l->name, brname,
				    strerror(-r));
	}
	r = write_frontend_mtu(h, v, mtu);
	if (r < 0)
		return fail(v, r, "writing the frontend mtu of vif %u/%u: %s", v->domid,
			    v->devid, strerror(-r));
	r = xn_nl_link_set_up(h->nl, l->ifindex, true);
	if (r < 0)
		return fail(v, r, "bringing %s up: %s", l->name, strerror(-r));
	return 0;
}

static struct xn_route host_route(const struct vif *v, int ifindex, const struct xn_addr *ip)
{
	struct xn_route rt = {
		.ifindex = ifindex,
		.family = ip->family,
		.dst = *ip,
		.table = RT_TABLE_MAIN,
		.priority = v->emu ? 1 : 2, /* as vif-route: taps win */
		.protocol = RTPROT_STATIC,
		.scope = RT_SCOPE_LINK,
		.type = RTN_UNICAST,
	};

	if (ip->family == AF_INET && v->has_src) {
		rt.has_prefsrc = true;
		rt.prefsrc = v->src;
		rt.prefsrc.prefixlen = 32;
	}
	return rt;
}

static int attach_routed(struct xn_hotplug *h, struct vif *v, struct xn_link *l)
{
	const char *uplink = conf_of(v)->gatewaydev[0] ? conf_of(v)->gatewaydev
			     : h->profile ? h->profile->routed_uplink : "";
	char path[128];
	struct xn_link up;
	int r;

	r = xn_nl_link_get(h->nl, uplink, &up);
	if (r < 0)
		return fail(v, -ENODEV, "routed uplink %s does not exist", uplink);
	r = xn_nl_primary_ipv4(h->nl, up.ifindex, &v->src);
	v->has_src = r >= 0;
	if (r < 0)
		return fail(v, r, "%s has no IPv4 address to route guests with", uplink);
	if (conf_of(v)->mtu) {
		r = xn_nl_link_set_mtu(h->nl, l->ifindex, conf_of(v)->mtu);
		if (r >= 0)
			r = write_frontend_mtu(h, v, conf_of(v)->mtu);
		if (r < 0)
			return fail(v, r, "setting mtu %u on %s: %s", conf_of(v)->mtu, l->name,
				    strerror(-r));
	}
	r = xn_nl_link_set_up(h->nl, l->ifindex, true);
	if (r < 0)
		return fail(v, r, "bringing %s up: %s", l->name, strerror(-r));
	if (xn_sysctl_if_path("ipv4", l->name, "proxy_arp", path, sizeof(path)) == 0) {
		r = xn_sysctl_write(path, "1");
		if (r < 0)
			return fail(v, r, "proxy_arp on %s: %s", l->name, strerror(-r));
	}
	snprintf(v->uplink, sizeof(v->uplink), "%s", uplink);
	for (size_t i = 0; i < conf_of(v)->n_ips; i++) {
		const struct xn_addr *ip = &conf_of(v)->ips[i];
		struct xn_route rt = host_route(v, l->ifindex, ip);
		char a[XN_ADDR_STRLEN];
		r = xn_nl_route_replace(h->nl, &rt);
		if (r < 0)
			return fail(v, r, "route to %s through %s: %s",
				    xn_addr_format(ip, true, a), l->name, strerror(-r));
		/* The LAN finds an IPv6 guest by neighbour discovery on the
		 * uplink: Dom0 answers for it (proxy_ndp). */
		if (ip->family == AF_INET6 && ip->prefixlen == 128) {
			r = xn_nl_neigh_proxy_add(h->nl, up.ifindex, ip);
			if (r < 0)
				return fail(v, r, "neighbour proxy for %s on %s: %s",
					    xn_addr_format(ip, false, a), uplink, strerror(-r));
		}
	}
	return 0;
}

static bool antispoof_on(const struct xn_hotplug *h)
{
	return h->profile && h->profile->antispoof;
}

static void nft_vif(const struct vif *v, struct xn_nft_vif *nv)
{
	*nv = (struct xn_nft_vif){ .routed = v->mode == XN_MODE_ROUTED };
	memcpy(nv->ifname, v->name, sizeof(nv->ifname));
	memcpy(nv->mac, conf_of(v)->mac, 6);
	nv->n_ips = conf_of(v)->n_ips < 16 ? conf_of(v)->n_ips : 16;
	memcpy(nv->ips, conf_of(v)->ips, nv->n_ips * sizeof(nv->ips[0]));
}

/* Fail closed: without its filter a vif is not attached. */
static int install_filter(struct xn_hotplug *h, struct vif *v)
{
	struct xn_nft_vif nv;
	struct xn_buf err = { 0 };
	int r;

	if (!antispoof_on(h))
		return 0;
	if (!conf_of(v)->has_mac)
		return fail(v, -EINVAL, "backend/vif/%u/%u/mac is missing: anti-spoofing needs the vif's MAC",
			    v->domid, v->devid);
	nft_vif(v, &nv);
	r = xn_nft_vif_update(&nv, NULL, &err);
	if (r < 0) {
		fail(v, r, "anti-spoofing filter for %s could not be installed: %s", v->name,
		     err.len ? xn_buf_str(&err) : strerror(-r));
		xn_buf_free(&err);
		return r;
	}
	xn_buf_free(&err);
	v->filtered = true;
	return 0;
}

static void remove_filter(struct xn_hotplug *h, struct vif *v)
{
	struct xn_nft_vif nv;

	if (!v->filtered)
		return;
	nft_vif(v, &nv);
	if (xn_nft_vif_update(NULL, &nv, NULL) < 0) {
		/* Some element was already gone: remove whatever is left of
		 * this name, keeping every other vif's. */
		char (*keep)[IFNAMSIZ] = calloc(h->n_vifs + 1, IFNAMSIZ);
		size_t n = 0;
		for (size_t i = 0; keep && i < h->n_vifs; i++)
			if (h->vifs[i] != v && h->vifs[i]->filtered)
				memcpy(keep[n++], h->vifs[i]->name, IFNAMSIZ);
		if (keep)
			xn_nft_purge((const char (*)[IFNAMSIZ])keep, n, NULL);
		free(keep);
	}
	v->filtered = false;
}

/* Undo, idempotently: whatever of it is still there goes. */
static void detach(struct xn_hotplug *h, struct vif *v)
{
	struct xn_link l;

	h->dirty = true;
	remove_filter(h, v);
	if (v->mode == XN_MODE_ROUTED && !v->uplink[0]) /* adopted after a restart */
		snprintf(v->uplink, sizeof(v->uplink), "%s",
			 conf_of(v)->gatewaydev[0] ? conf_of(v)->gatewaydev
			 : h->profile ? h->profile->routed_uplink : "");
	if (v->mode == XN_MODE_ROUTED && v->uplink[0]) {
		struct xn_link up;
		if (xn_nl_link_get(h->nl, v->uplink, &up) >= 0)
			for (size_t i = 0; i < conf_of(v)->n_ips; i++)
				if (conf_of(v)->ips[i].family == AF_INET6)
					xn_nl_neigh_proxy_del(h->nl, up.ifindex, &conf_of(v)->ips[i]);
	}
	if (find_device(h, v, &l) < 0)
		return; /* the device went, and its routes and port with it */
	if (v->mode == XN_MODE_ROUTED) {
		for (size_t i = 0; i < conf_of(v)->n_ips; i++) {
			struct xn_route rt = host_route(v, l.ifindex, &conf_of(v)->ips[i]);
			xn_nl_route_del(h->nl, &rt);
		}
	} else if (l.master) {
		xn_nl_link_set_master(h->nl, l.ifindex, 0);
	}
	xn_nl_link_set_up(h->nl, l.ifindex, false);
}

static int configure(struct xn_hotplug *h, struct vif *v, struct xn_link *l)
{
	int r;

	v->mode = h->profile ? h->profile->mode : XN_MODE_BRIDGED;
	r = rename_device(h, v, l);
	if (r < 0)
		return r;
	memcpy(v->name, l->name, sizeof(v->name));
	r = install_filter(h, v);
	if (r < 0)
		return r;
	if (v->mode == XN_MODE_ROUTED)
		r = attach_routed(h, v, l);
	else
		r = attach_to_bridge(h, v, l);
	if (r < 0)
		detach(h, v); /* nothing half-done stays behind */
	return r;
}

/* Try to bring a vif to CONNECTED; answers its waiters when it gets
 * there or fails. */
/* Is this vif's hotplug script ours? Without a request from vif-xennet,
 * xennetd only takes vifs whose backend names it: a host may run other
 * scripts (vif-openvswitch, a custom vif-route) for some of its vifs. */
static bool script_is_ours(struct xn_hotplug *h, struct vif *v)
{
	const char *script = backend_get(h, v, BK_SCRIPT), *base;

	if (!script || script == XN_VIF_BAD_VALUE)
		return false;
	base = strrchr(script, '/');
	base = base ? base + 1 : script;
	return strcmp(base, "vif-xennet") == 0;
}

static void report_failure(struct xn_hotplug *h, struct vif *v);

static void vif_try(struct xn_hotplug *h, struct vif *v, bool requested)
{
	struct xn_buf err = { 0 };
	struct xn_link l;
	int r;

	if (v->state == VIF_CONNECTED || v->state == VIF_OFFLINE || !backend_online(h, v))
		return;
	if (!requested && !v->waiters && !script_is_ours(h, v))
		return;
	r = read_conf(h, v, &err);
	if (r < 0) {
		fail(v, r, "%s", xn_buf_str(&err));
		xn_buf_free(&err);
		goto failed;
	}
	r = find_device(h, v, &l);
	if (r == -ENODEV)
		return; /* it arrives later: the link event brings us back */
	if (r < 0) {
		fail(v, r, "looking up %s: %s", v->kname, strerror(-r));
		goto failed;
	}
	memcpy(v->name, l.name, sizeof(v->name));
	v->ifindex = l.ifindex;
	r = configure(h, v, &l);
	if (r < 0)
		goto failed;
	if (!v->emu) {
		r = post_status(h, v, NULL);
		if (r < 0) {
			fail(v, r, "writing hotplug-status: %s", strerror(-r));
			detach(h, v);
			goto failed;
		}
	}
	v->state = VIF_CONNECTED;
	h->dirty = true;
	free(v->error);
	v->error = NULL;
	if (v->emu)
		answer(h, v, 0, "connected\n");
	return;
failed:
	report_failure(h, v);
}

/* The vif could not be configured (v->error says why): hotplug-error and
 * hotplug-status=error are written, then its waiters hear it. */
static void report_failure(struct xn_hotplug *h, struct vif *v)
{
	v->state = VIF_FAILED;
	h->dirty = true;
	if (v->emu || post_status(h, v, error_of(v)) < 0) {
		char msg[XN_VIF_ERROR_MAX + 2];
		v->pending = 0;
		snprintf(msg, sizeof(msg), "%s\n", error_of(v));
		answer(h, v, EIO, msg);
	}
}

/* A hotplug-status write is made: the waiters hear how it went, unless
 * the vif changed meanwhile (its later write answers them then). */
static void status_written(bool sync, uint64_t cookie, int result, void *ud)
{
	struct xn_hotplug *h = ud;
	struct vif *v = NULL;

	if (sync) {
		/* Served after the watch events are taken, failed or not:
		 * then from what is known. */
		h->syncs_done = cookie;
		return;
	}
	h->writes_done = cookie;
	for (size_t i = h->n_vifs; i-- > 0;)
		if (h->vifs[i]->pending == cookie) {
			v = h->vifs[i];
			break;
		}
	if (!v)
		return; /* gone, or written again since */
	v->pending = 0;
	if (v->state == VIF_CONNECTED && result < 0) {
		fail(v, result, "writing hotplug-status: %s", strerror(-result));
		detach(h, v);
		report_failure(h, v);
	} else if (v->state == VIF_CONNECTED) {
		answer(h, v, 0, "connected\n");
	} else if (v->state == VIF_FAILED) {
		char msg[XN_VIF_ERROR_MAX + 2];
		snprintf(msg, sizeof(msg), "%s\n", error_of(v));
		answer(h, v, EIO, msg);
	}
}

static void vif_offline(struct xn_hotplug *h, struct vif *v)
{
	h->dirty = true;
	if (v->state == VIF_CONNECTED)
		detach(h, v);
	v->state = VIF_OFFLINE;
}

/* ---- events ---- */

/* Watch events come one per key written: libxl writes some twenty for a
 * new vif. They are collected while draining and each vif is looked at
 * once afterwards. */
struct touched {
	struct xn_hotplug *h;
	struct touched_vif {
		unsigned domid, devid;
		unsigned stale; /* backend keys it changed */
		bool key_seen; /* an event for a key: the directory is there */
	} *ids;
	size_t n;
	bool rescan;
};

static void on_watch(const char *path, const char *token, void *ud)
{
	struct touched *t = ud;
	unsigned domid, devid, stale;
	struct touched_vif *v;
	const char *key;
	int k;

	(void)token;
	/* xs_watch fires once at once: the start-up scan has looked. */
	if (t->h->initial_watch && strcmp(path, "backend/vif") == 0) {
		t->h->initial_watch = false;
		return;
	}
	if (xn_vif_parse_path(path, &domid, &devid, &key) < 0) {
		/* backend/vif itself or a domain directory: look again. */
		if (strstr(path, "backend/vif"))
			t->rescan = true;
		return;
	}
	/* Our own writes, and netback's state changes, need nothing. */
	if (strcmp(key, "hotplug-status") == 0 || strcmp(key, "hotplug-error") == 0 ||
	    strcmp(key, "state") == 0)
		return;
	/* The directory itself: made or removed, anything may have changed. */
	k = *key ? backend_key_index(key) : BK_DIR;
	stale = k == BK_DIR ? BK_ALL : k >= 0 ? 1u << k : 0;
	for (size_t i = t->n; i-- > 0;) /* recent ones first: the usual hit */
		if (t->ids[i].domid == domid && t->ids[i].devid == devid) {
			t->ids[i].stale |= stale;
			t->ids[i].key_seen |= *key != '\0';
			return;
		}
	v = reallocarray(t->ids, t->n + 1, sizeof(*v));
	if (!v) {
		t->rescan = true;
		return;
	}
	t->ids = v;
	t->ids[t->n++] = (struct touched_vif){ domid, devid, stale, *key != '\0' };
}

/* The backend directory is known to exist (a key in it was written). */
static void backend_dir_seen(struct xn_hotplug *h, struct vif *v)
{
	if (v->be_stale & (1u << BK_DIR))
		return; /* read it then */
	if (!v->be[BK_DIR])
		v->be[BK_DIR] = keep_value(h, BK_DIR, strdup(""));
	v->be_err[BK_DIR] = v->be[BK_DIR] ? 0 : -ENOMEM;
}

static void vif_changed(struct xn_hotplug *h, unsigned domid, unsigned devid, unsigned stale,
			bool key_seen)
{
	for (int emu = 0; emu < 2; emu++) {
		struct vif *v = vif_find(h, domid, devid, emu);
		if (!v && !emu)
			v = vif_get(h, domid, devid, false);
		if (!v)
			continue;
		v->be_stale |= stale;
		if (stale & (1u << BK_DIR))
			v->fe_mtu = 0; /* made or removed: maybe another frontend */
		if (key_seen)
			backend_dir_seen(h, v);
		if (!backend_get(h, v, BK_DIR)) {
			vif_offline(h, v);
			vif_drop(h, v);
			continue;
		}
		if (v->state == VIF_WAITING)
			vif_try(h, v, false);
	}
}

static void serve_parked(struct xn_hotplug *h, uint64_t done);
static void post_sync(struct xn_hotplug *h);

/* Take the requests made in the background, then the watch events, then
 * serve the requests whose sync is done; returns how many were made. */
static size_t settle(struct xn_hotplug *h)
{
	struct touched t = { .h = h };
	size_t made = xn_xsq_collect(h->writes, status_written, h);

	release_held(h, h->writes_done);
	xn_xs_drain(h->xs, on_watch, &t);
	for (size_t i = 0; i < t.n; i++)
		vif_changed(h, t.ids[i].domid, t.ids[i].devid, t.ids[i].stale, t.ids[i].key_seen);
	if (t.rescan)
		xn_hotplug_rescan(h);
	free(t.ids);
	serve_parked(h, h->syncs_done);
	post_sync(h);
	return made;
}

void xn_hotplug_on_xenstore(struct xn_hotplug *h)
{
	settle(h);
}

void xn_hotplug_on_link(struct xn_hotplug *h, bool added, int ifindex,
			const char *name)
{
	unsigned domid, devid;
	bool emu;
	struct vif *v;

	/* Keys written before the device came are in the watch list (or
	 * will come as events): take what is there first, so that a vif is
	 * not configured from keys already known to be stale. */
	if (added)
		xn_hotplug_on_xenstore(h);
	if (xn_vif_parse_kernel_name(name, &domid, &devid, &emu) < 0) {
		/* A renamed vif: find it by its current name. */
		v = NULL;
		for (size_t i = 0; i < h->n_vifs; i++)
			if (strcmp(h->vifs[i]->name, name) == 0)
				v = h->vifs[i];
		if (!v)
			return;
	} else {
		v = added ? vif_get(h, domid, devid, emu) : vif_find(h, domid, devid, emu);
		if (!v)
			return;
	}
	if (added) {
		if (v->state == VIF_WAITING)
			vif_try(h, v, false);
	} else if (v->state == VIF_CONNECTED) {
		struct xn_link l;
		/* A rename also comes as an event: only a real removal counts,
		 * told by the ifindex (a new device may already have the name). */
		if ((v->ifindex && ifindex == v->ifindex) || find_device(h, v, &l) == -ENODEV) {
			detach(h, v); /* filter elements, neighbour proxies */
			v->state = VIF_WAITING;
			v->fe_mtu = 0;
			memcpy(v->name, v->kname, sizeof(v->name));
		}
	}
}

/* ---- requests ---- */

static int park(struct xn_hotplug *h, bool up, bool emu, unsigned domid, unsigned devid,
		int fd);
static int serve(struct xn_hotplug *h, bool up, bool emu, unsigned domid, unsigned devid,
		 int fd, int64_t since, int *status, struct xn_buf *out);

int xn_hotplug_request(struct xn_hotplug *h, const char *action, unsigned domid,
		       unsigned devid, int fd, int *status, struct xn_buf *out)
{
	bool emu = strcmp(action, "add") == 0 || strcmp(action, "remove") == 0;
	bool up = strcmp(action, "online") == 0 || strcmp(action, "add") == 0;
	struct vif *v;

	if (!up && strcmp(action, "offline") != 0 && strcmp(action, "remove") != 0) {
		xn_buf_printf(out, "unknown hotplug action \"%s\"\n", action);
		*status = EINVAL;
		return 1;
	}
	if (domid >= XN_DOMID_FIRST_RESERVED || devid > XN_VIF_MAX_DEVID) {
		xn_buf_printf(out, "bad vif %u/%u\n", domid, devid);
		*status = EINVAL;
		return 1;
	}
	v = vif_find(h, domid, devid, emu);
	/* What libxl wrote before it ran the script is in our watch list
	 * after one round trip: then the cached keys are current. The round
	 * trip is made in the background, one for every request read before
	 * it; requests read meanwhile wait behind, to keep their order. */
	if (h->parked || (up && (!v || v->state != VIF_CONNECTED))) {
		if (park(h, up, emu, domid, devid, fd) == 0)
			return 0;
		xn_buf_printf(out, "out of memory\n");
		*status = ENOMEM;
		return 1;
	}
	return serve(h, up, emu, domid, devid, fd, now_ms(), status, out);
}

static int park(struct xn_hotplug *h, bool up, bool emu, unsigned domid, unsigned devid,
		int fd)
{
	struct parked *p = malloc(sizeof(*p));

	if (!p)
		return -ENOMEM;
	*p = (struct parked){ .sync = h->syncs_posted + 1, .since = now_ms(), .fd = fd,
			      .domid = domid, .devid = devid, .up = up, .emu = emu };
	if (!h->parked)
		h->parked_tail = &h->parked;
	*h->parked_tail = p;
	h->parked_tail = &p->next;
	h->sync_wanted = true;
	return 0;
}

/* Serve the parked requests whose sync is done (all: UINT64_MAX). */
static void serve_parked(struct xn_hotplug *h, uint64_t done)
{
	while (h->parked && h->parked->sync <= done) {
		struct parked *p = h->parked;
		struct xn_buf out = { 0 };
		int status = 0;

		h->parked = p->next;
		if (serve(h, p->up, p->emu, p->domid, p->devid, p->fd, p->since, &status, &out)) {
			const char *msg = xn_buf_str(&out);
			xn_ctl_write_reply(p->fd, status, msg ? msg : "out of memory\n");
			close(p->fd);
		}
		xn_buf_free(&out);
		free(p);
	}
}

/* Returns 1 when answered now (*status, out), 0 when fd is kept for a
 * later reply. since: when the request came. */
static int serve(struct xn_hotplug *h, bool up, bool emu, unsigned domid, unsigned devid,
		 int fd, int64_t since, int *status, struct xn_buf *out)
{
	struct vif *v = up ? vif_get(h, domid, devid, emu) : vif_find(h, domid, devid, emu);

	if (!up) {
		if (v) {
			if (v->state != VIF_CONNECTED) {
				/* After a restart we may not know it yet. */
				struct xn_buf err = { 0 };
				if (read_conf(h, v, &err) >= 0) {
					v->mode = h->profile ? h->profile->mode : XN_MODE_BRIDGED;
					v->state = VIF_CONNECTED;
				}
				xn_buf_free(&err);
			}
			vif_offline(h, v);
			/* An online request still waiting has failed. */
			answer(h, v, EIO, "the vif was taken offline\n");
			v->pending = 0;
			if (v->last_posted > h->writes_done) {
				char msg[64];
				snprintf(msg, sizeof(msg), "vif %u/%u%s is offline\n", domid, devid,
					 emu ? " (emu)" : "");
				reply_after(h, v->last_posted, fd, 0, msg);
				return 0;
			}
		}
		xn_buf_printf(out, "vif %u/%u%s is offline\n", domid, devid, emu ? " (emu)" : "");
		*status = 0;
		return 1;
	}
	if (!v) {
		xn_buf_printf(out, "out of memory\n");
		*status = ENOMEM;
		return 1;
	}
	if (v->state == VIF_FAILED || v->state == VIF_OFFLINE)
		v->state = VIF_WAITING; /* a new request tries again */
	vif_try(h, v, true);
	if (v->state == VIF_CONNECTED && !v->pending) {
		xn_buf_printf(out, "connected\n");
		*status = 0;
		return 1;
	}
	if (v->state == VIF_FAILED && !v->pending) {
		xn_buf_printf(out, "%s\n", error_of(v));
		*status = EIO;
		return 1;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		xn_buf_printf(out, "out of memory\n");
		*status = ENOMEM;
		return 1;
	}
	w->fd = fd;
	w->deadline = since + WAIT_MS;
	w->next = v->waiters;
	v->waiters = w;
	return 0;
}

/* One sync at a time: the requests read while it is made wait for the
 * next, all together (each request costs xenstored a pass over every
 * domain's connection). */
static void post_sync(struct xn_hotplug *h)
{
	if (!h->sync_wanted || h->syncs_done != h->syncs_posted)
		return;
	h->sync_wanted = false;
	if (xn_xsq_post_sync(h->writes, h->syncs_posted + 1) == 0)
		h->syncs_posted++;
	else
		serve_parked(h, UINT64_MAX); /* no memory: from what is known */
}

void xn_hotplug_end_batch(struct xn_hotplug *h)
{
	post_sync(h);
}

int xn_hotplug_timeout_ms(struct xn_hotplug *h)
{
	int64_t first = h->parked ? h->parked->since + WAIT_MS : -1, now = now_ms();

	for (size_t i = 0; i < h->n_vifs; i++) {
		const struct vif *v = h->vifs[i];
		if (v->state == VIF_CONNECTED && v->pending)
			continue; /* answered when its write is made */
		for (struct waiter *w = v->waiters; w; w = w->next)
			if (first < 0 || w->deadline < first)
				first = w->deadline;
	}
	if (first < 0)
		return -1;
	return first <= now ? 0 : (int)(first - now);
}

void xn_hotplug_on_timer(struct xn_hotplug *h)
{
	int64_t now = now_ms();

	/* Parked so long: xenstore does not answer. In order, oldest first. */
	while (h->parked && h->parked->since + WAIT_MS <= now) {
		struct parked *p = h->parked;
		h->parked = p->next;
		xn_ctl_write_reply(p->fd, ETIMEDOUT, "xenstore did not answer within 30 s\n");
		close(p->fd);
		free(p);
	}
	for (size_t i = 0; i < h->n_vifs; i++) {
		struct vif *v = h->vifs[i];
		bool expired = false;
		char msg[160];

		/* A vif configured whose write is on its way: the write
		 * answers its waiters. */
		if (v->state == VIF_CONNECTED && v->pending)
			continue;
		for (struct waiter *w = v->waiters; w; w = w->next)
			expired = expired || w->deadline <= now;
		if (!expired)
			continue;
		snprintf(msg, sizeof(msg), "%s: the device or its backend did not appear within %d s",
			 v->kname, WAIT_MS / 1000);
		/* The script reports failure: so does the vif, or a device
		 * appearing later would be "connected". Its waiters hear it
		 * once hotplug-error is written. */
		if (v->state == VIF_CONNECTED)
			detach(h, v);
		v->state = VIF_FAILED;
		h->dirty = true;
		fail(v, -ETIMEDOUT, "%s", msg);
		if (v->emu || post_status(h, v, error_of(v)) < 0)
			v->pending = 0;
		strcat(msg, "\n");
		answer(h, v, ETIMEDOUT, msg);
	}
}

/* ---- start-up ---- */

/* A vif that is already configured is adopted without touching it: no
 * link down/up, no lost packets. */
static bool looks_configured(struct xn_hotplug *h, struct vif *v, const struct xn_link *l)
{
	char path[96], *st = NULL;
	bool connected;

	snprintf(path, sizeof(path), "backend/vif/%u/%u/hotplug-status", v->domid, v->devid);
	connected = v->emu || (xn_xs_read(h->xs, path, 32, &st) >= 0 && strcmp(st, "connected") == 0);
	free(st);
	if (!connected || !l->up)
		return false;
	if (h->profile && h->profile->mode == XN_MODE_ROUTED)
		return l->master == 0;
	struct xn_link br;
	return xn_nl_link_get(h->nl, bridge_for(h, v), &br) >= 0 && l->master == br.ifindex;
}

static void scan_one(struct xn_hotplug *h, unsigned domid, unsigned devid, bool emu)
{
	struct vif *v = vif_find(h, domid, devid, emu);
	struct xn_buf err = { 0 };
	struct xn_link l;

	if (v && v->state != VIF_WAITING)
		return;
	if (!v)
		v = vif_get(h, domid, devid, emu);
	if (!v || !backend_online(h, v))
		return;
	if (read_conf(h, v, &err) >= 0 &&
	    find_device(h, v, &l) >= 0 && looks_configured(h, v, &l)) {
		v->mode = h->profile ? h->profile->mode : XN_MODE_BRIDGED;
		memcpy(v->name, l.name, sizeof(v->name));
		v->ifindex = l.ifindex;
		snprintf(v->bridge, sizeof(v->bridge), "%s", bridge_for(h, v));
		h->dirty = true;
		/* Its filter elements may have been lost with a table
		 * replaced while we were away: adding is idempotent. */
		if (install_filter(h, v) < 0) {
			v->state = VIF_WAITING;
			detach(h, v);
			vif_try(h, v, false);
		} else {
			v->state = VIF_CONNECTED;
		}
	} else {
		vif_try(h, v, false);
	}
	xn_buf_free(&err);
}

void xn_hotplug_rescan(struct xn_hotplug *h)
{
	char **doms = NULL, **devs = NULL, path[64];
	unsigned nd = 0, nv = 0;

	/* A whole backend/vif/D removed fires one watch on D only. */
	for (size_t i = h->n_vifs; i-- > 0;) {
		struct vif *v = h->vifs[i];
		v->be_stale |= 1u << BK_DIR;
		v->fe_mtu = 0;
		if (!backend_get(h, v, BK_DIR) && !v->waiters) {
			vif_offline(h, v);
			vif_drop(h, v);
		}
	}

	if (xn_xs_directory(h->xs, "backend/vif", &doms, &nd) < 0)
		return;
	for (unsigned i = 0; i < nd; i++) {
		unsigned domid, devid;
		const char *key;
		snprintf(path, sizeof(path), "backend/vif/%s", doms[i]);
		if (xn_xs_directory(h->xs, path, &devs, &nv) < 0)
			continue;
		for (unsigned j = 0; j < nv; j++) {
			char full[96];
			snprintf(full, sizeof(full), "backend/vif/%s/%s", doms[i], devs[j]);
			if (xn_vif_parse_path(full, &domid, &devid, &key) < 0 || *key)
				continue;
			scan_one(h, domid, devid, false);
			/* An HVM guest's tap, if QEMU made one. */
			char emu[IFNAMSIZ];
			struct xn_link l;
			if (xn_vif_kernel_name(domid, devid, true, emu) >= 0 &&
			    xn_nl_link_get(h->nl, emu, &l) >= 0)
				scan_one(h, domid, devid, true);
		}
		free(devs);
	}
	free(doms);
}

/* ---- kept across restarts ---- */

int xn_hotplug_save(struct xn_hotplug *h, const char *path)
{
	struct xn_buf b = { 0 };
	char boot[40];
	int r;

	if (!h->dirty)
		return 0;
	r = xn_boot_id(boot);
	if (r < 0)
		return r;
	xn_buf_printf(&b, "# the vifs xennetd configured: a cache, checked against the kernel at start\n"
			  "boot %s\n", boot);
	for (size_t i = 0; i < h->n_vifs; i++) {
		const struct vif *v = h->vifs[i];
		struct xn_vif_record rec = {
			.domid = v->domid, .devid = v->devid, .emu = v->emu,
			.ifindex = v->ifindex, .mode = v->mode, .filtered = v->filtered,
		};
		size_t len = b.len;
		if (v->state != VIF_CONNECTED || v->ifindex <= 0)
			continue;
		conf_export(conf_of(v), &rec.conf);
		memcpy(rec.name, v->name, IFNAMSIZ);
		memcpy(rec.bridge, v->bridge, IFNAMSIZ);
		memcpy(rec.uplink, v->uplink, IFNAMSIZ);
		if (xn_vif_record_format(&rec, &b) < 0)
			b.len = len; /* left out: configured the slow way at start */
		else
			xn_buf_printf(&b, "\n");
	}
	r = b.oom ? -ENOMEM : xn_write_file_atomic(path, b.data, b.len);
	xn_buf_free(&b);
	if (r >= 0)
		h->dirty = false;
	return r;
}

struct saved_vifs {
	char boot[40];
	bool same_boot;
	struct xn_vif_record *recs;
	size_t n;
};

static int on_saved_line(char *line, void *ud)
{
	struct saved_vifs *sv = ud;
	struct xn_vif_record rec, *arr;

	if (strncmp(line, "boot ", 5) == 0) {
		sv->same_boot = strcmp(line + 5, sv->boot) == 0;
		return 0;
	}
	/* A line not understood is a vif configured the slow way. */
	if (!sv->same_boot || xn_vif_record_parse(line, &rec) < 0)
		return 0;
	arr = reallocarray(sv->recs, sv->n + 1, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	sv->recs = arr;
	sv->recs[sv->n++] = rec;
	return 0;
}

static bool domain_listed(char **doms, unsigned nd, unsigned domid)
{
	char want[16];

	snprintf(want, sizeof(want), "%u", domid);
	for (unsigned i = 0; i < nd; i++)
		if (strcmp(doms[i], want) == 0)
			return true;
	return false;
}

/* Which vif is this device? By its kernel name, or the alias we gave it
 * when we renamed it. */
static bool device_vif(const struct xn_link *l, unsigned *domid, unsigned *devid, bool *emu)
{
	char tail[8] = "";
	int n = 0;

	if (xn_vif_parse_kernel_name(l->name, domid, devid, emu) >= 0)
		return true;
	if (sscanf(l->alias, ALIAS_PREFIX "%u/%u%n", domid, devid, &n) != 2 || n <= 0)
		return false;
	snprintf(tail, sizeof(tail), "%s", l->alias + n);
	*emu = strcmp(tail, " emu") == 0;
	return *emu || tail[0] == '\0';
}

/* A saved vif is adopted as it is only if the kernel still has it so. */
static bool adopt_saved(struct xn_hotplug *h, const struct xn_snapshot *links,
			const struct xn_vif_record *rec)
{
	const struct xn_link *l = xn_snapshot_link_by_index(links, rec->ifindex), *br;
	enum xn_mode mode = h->profile ? h->profile->mode : XN_MODE_BRIDGED;
	unsigned domid, devid;
	struct vif *v;
	bool emu;

	if (!l || strcmp(l->name, rec->name) != 0 || !l->up || rec->mode != mode ||
	    rec->filtered != antispoof_on(h))
		return false;
	/* The device must be this vif's by its own name or our alias: a
	 * file saying otherwise is not believed. */
	if (!device_vif(l, &domid, &devid, &emu) || domid != rec->domid || devid != rec->devid ||
	    emu != rec->emu)
		return false;
	if (mode == XN_MODE_ROUTED) {
		if (l->master != 0)
			return false;
	} else {
		br = xn_snapshot_link(links, rec->bridge);
		if (!br || l->master != br->ifindex ||
		    strcmp(rec->bridge, bridge_for_conf(h, rec->conf.bridge)) != 0)
			return false;
	}
	v = vif_get(h, rec->domid, rec->devid, rec->emu);
	if (!v || v->state != VIF_WAITING || set_conf(v, &rec->conf) < 0)
		return false;
	v->mode = rec->mode;
	v->ifindex = rec->ifindex;
	v->filtered = rec->filtered;
	memcpy(v->name, rec->name, IFNAMSIZ);
	memcpy(v->bridge, rec->bridge, IFNAMSIZ);
	memcpy(v->uplink, rec->uplink, IFNAMSIZ);
	v->state = VIF_CONNECTED;
	return true;
}

void xn_hotplug_start(struct xn_hotplug *h, const char *saved_path, size_t *adopted,
		       size_t *looked_up)
{
	struct saved_vifs sv = { 0 };
	struct xn_snapshot *links = NULL;
	struct xn_nft_vif *nv = NULL;
	char **doms = NULL;
	unsigned nd = 0;
	size_t n_nv = 0;
	int r;

	*adopted = *looked_up = 0;
	r = xn_nl_links_take(h->nl, &links);
	if (r >= 0) {
		r = xn_xs_directory(h->xs, "backend/vif", &doms, &nd);
		if (r == -ENOENT)
			r = 0, nd = 0;
	}
	if (r < 0) {
		xn_snapshot_free(links);
		xn_hotplug_rescan(h);
		return;
	}
	h->last_domid_at_start = 0;
	for (unsigned i = 0; i < nd; i++) {
		unsigned long d;
		if (xn_parse_uint(doms[i], 0, UINT_MAX - 1, &d) < 0) {
			h->last_domid_at_start = UINT_MAX; /* not understood: none is new */
			break;
		}
		if (d > h->last_domid_at_start)
			h->last_domid_at_start = (unsigned)d;
	}
	/* 1. The vifs saved by the previous run, as the kernel still has
	 *    them: adopted without a request to xenstore. */
	if (saved_path && xn_boot_id(sv.boot) >= 0 &&
	    xn_read_lines(saved_path, on_saved_line, &sv, NULL) >= 0)
		for (size_t i = 0; i < sv.n; i++)
			if (domain_listed(doms, nd, sv.recs[i].domid) &&
			    adopt_saved(h, links, &sv.recs[i]))
				(*adopted)++;
	free(sv.recs);

	/* 2. Their filter elements, in case the tables were replaced while
	 *    we were away: one transaction. */
	nv = calloc(h->n_vifs + 1, sizeof(*nv));
	for (size_t i = 0; nv && i < h->n_vifs; i++)
		if (h->vifs[i]->state == VIF_CONNECTED && h->vifs[i]->filtered)
			nft_vif(h->vifs[i], &nv[n_nv++]);
	if (!nv || xn_nft_vifs_add(nv, n_nv, NULL) < 0) {
		/* Fail closed, one by one, as for a new vif. */
		for (size_t i = 0; i < h->n_vifs; i++) {
			struct vif *v = h->vifs[i];
			if (v->state != VIF_CONNECTED || !v->filtered)
				continue;
			detach(h, v);
			v->state = VIF_WAITING;
			vif_try(h, v, false);
		}
	}
	free(nv);

	/* 3. Every other vif device there is: read from xenstore, adopted
	 *    or configured. (A backend without its device yet is configured
	 *    when the device's link event comes.) */
	for (size_t i = 0; i < links->n_links; i++) {
		unsigned domid, devid;
		bool emu;
		struct vif *v;
		if (!device_vif(&links->links[i], &domid, &devid, &emu) ||
		    !domain_listed(doms, nd, domid))
			continue;
		v = vif_find(h, domid, devid, emu);
		if (!v || v->state == VIF_WAITING) {
			scan_one(h, domid, devid, emu);
			(*looked_up)++;
		}
	}
	xn_snapshot_free(links);
	free(doms);
	h->dirty = true; /* what is saved now is what was found */
}

static int open_poll(struct xn_hotplug *h);

int xn_hotplug_open(struct xn_nl *nl, struct xn_hotplug **ret, struct xn_buf *err)
{
	struct xn_hotplug *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	h->nl = nl;
	h->efd = -1;
	r = xn_xs_open(&h->xs);
	if (r < 0) {
		xn_buf_printf(err, "cannot connect to xenstore: %s", strerror(-r));
		free(h);
		return r;
	}
	h->initial_watch = true;
	h->last_domid_at_start = UINT_MAX;
	r = xn_xs_watch(h->xs, "backend/vif", "xennet");
	if (r < 0) {
		xn_buf_printf(err, "cannot watch backend/vif in xenstore: %s", strerror(-r));
		goto fail;
	}
	r = xn_xsq_open(h->xs, &h->writes);
	if (r < 0) {
		xn_buf_printf(err, "cannot start the xenstore writer: %s", strerror(-r));
		goto fail;
	}
	r = open_poll(h);
	if (r < 0) {
		xn_buf_printf(err, "epoll: %s", strerror(-r));
		goto fail;
	}
	*ret = h;
	return 0;
fail:
	xn_xsq_close(h->writes);
	xn_xs_close(h->xs);
	free(h);
	return r;
}

/* One descriptor for the daemon's loop: readable when watch events or
 * made writes are there. */
static int open_poll(struct xn_hotplug *h)
{
	const int fds[] = { xn_xs_fd(h->xs), xn_xsq_fd(h->writes) };

	h->efd = epoll_create1(EPOLL_CLOEXEC);
	if (h->efd < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		if (epoll_ctl(h->efd, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			int r = -errno;
			close(h->efd);
			h->efd = -1;
			return r;
		}
	}
	return 0;
}

/* A xenstore connection left open at exit (xn_hotplug_close): still
 * referenced, not leaked. */
static struct xn_xs *xs_left_to_exit;

void xn_hotplug_close(struct xn_hotplug *h)
{
	if (!h)
		return;
	/* Requests not served yet are refused; what is posted is made
	 * (for a while: xenstored may be stuck), and the scripts waiting
	 * for it hear how it went. Nothing new is configured. */
	while (h->parked) {
		struct parked *p = h->parked;
		h->parked = p->next;
		xn_ctl_write_reply(p->fd, ECANCELED, "xennetd is exiting\n");
		close(p->fd);
		free(p);
	}
	if (xn_xsq_flush(h->writes, CLOSE_FLUSH_MS) == 0)
		xn_xsq_collect(h->writes, status_written, h);
	if (!xn_xsq_close(h->writes)) {
		/* Its thread waits on our watch connection, and closing that
		 * would wait for it: both are left to the process's exit. */
		xs_left_to_exit = h->xs;
		h->xs = NULL;
	}
	release_held(h, UINT64_MAX);
	for (size_t i = 0; i < h->n_vifs; i++) {
		answer(h, h->vifs[i], ECANCELED, "xennetd is exiting\n");
		vif_free(h, h->vifs[i]);
	}
	release_held(h, UINT64_MAX);
	close(h->efd);
	free(h->vifs);
	xn_xs_close(h->xs);
	free(h);
}

void xn_hotplug_set_profile(struct xn_hotplug *h, const struct xn_profile *p)
{
	h->profile = p;
	/* Connected vifs follow a new profile: another mode or bridge, or
	 * anti-spoofing turned on, means configuring them again (failing
	 * closed like a new vif). */
	for (size_t i = 0; p && i < h->n_vifs; i++) {
		struct vif *v = h->vifs[i];
		if (v->state != VIF_CONNECTED)
			continue;
		bool stale = v->mode != p->mode || (p->antispoof && !v->filtered) ||
			     (!p->antispoof && v->filtered) ||
			     (v->mode != XN_MODE_ROUTED && strcmp(v->bridge, bridge_for(h, v)) != 0);
		if (!stale)
			continue;
		detach(h, v);
		v->state = VIF_WAITING;
		vif_try(h, v, true);
	}
}

int xn_hotplug_fd(struct xn_hotplug *h)
{
	return h->efd;
}

int xn_hotplug_nft_vifs(struct xn_hotplug *h, struct xn_nft_vif **ret, size_t *n)
{
	struct xn_nft_vif *v = calloc(h->n_vifs + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	*n = 0;
	for (size_t i = 0; i < h->n_vifs; i++)
		if (h->vifs[i]->state == VIF_CONNECTED && h->vifs[i]->filtered)
			nft_vif(h->vifs[i], &v[(*n)++]);
	*ret = v;
	return 0;
}

void xn_hotplug_purge_vanished(struct xn_hotplug *h)
{
	char (*keep)[IFNAMSIZ] = calloc(h->n_vifs + 1, IFNAMSIZ);
	size_t n = 0;

	if (!keep)
		return;
	for (size_t i = 0; i < h->n_vifs; i++)
		if (h->vifs[i]->filtered)
			memcpy(keep[n++], h->vifs[i]->name, IFNAMSIZ);
	xn_nft_purge((const char (*)[IFNAMSIZ])keep, n, NULL);
	free(keep);
}

/* ---- status ---- */

static const char *state_name(const struct vif *v)
{
	return v->state == VIF_CONNECTED ? (v->pending ? "connecting" : "connected")
	       : v->state == VIF_FAILED ? "error" : v->state == VIF_OFFLINE ? "offline"
	       : "waiting";
}

void xn_hotplug_status(struct xn_hotplug *h, bool json, struct xn_buf *out)
{
	char a[XN_ADDR_STRLEN];

	for (size_t i = 0; i < h->n_vifs; i++) {
		struct vif *v = h->vifs[i];
		char namepath[64], *dom = NULL;

		snprintf(namepath, sizeof(namepath), "/local/domain/%u/name", v->domid);
		if (xn_xs_read(h->xs, namepath, 64, &dom) < 0)
			dom = NULL;
		if (dom)
			for (char *c = dom; *c; c++)
				if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
					*c = '?';
		if (json) {
			xn_buf_printf(out, "%s{\"domid\":%u,\"devid\":%u,\"emu\":%s,\"name\":\"%s\",\"domain\":",
				      i ? "," : "", v->domid, v->devid, v->emu ? "true" : "false", v->name);
			if (dom)
				xn_buf_printf(out, "\"%s\"", dom);
			else
				xn_buf_printf(out, "null");
			xn_buf_printf(out, ",\"state\":\"%s\",\"antispoof\":%s,\"mode\":\"%s\",\"bridge\":%s%s%s,\"addresses\":[",
				      state_name(v), v->filtered ? "true" : "false",
				      xn_mode_name(v->mode),
				      v->mode == XN_MODE_ROUTED ? "" : "\"",
				      v->mode == XN_MODE_ROUTED ? "null" : v->bridge,
				      v->mode == XN_MODE_ROUTED ? "" : "\"");
			for (size_t j = 0; j < conf_of(v)->n_ips; j++)
				xn_buf_printf(out, "%s\"%s\"", j ? "," : "",
					      xn_addr_format(&conf_of(v)->ips[j], true, a));
			xn_buf_printf(out, "]");
			if (v->state == VIF_FAILED) {
				xn_buf_printf(out, ",\"error\":\"");
				for (const char *c = error_of(v); *c; c++)
					xn_buf_printf(out, (*c == '"' || *c == '\\') ? "\\%c" : "%c", *c);
				xn_buf_printf(out, "\"");
			}
			xn_buf_printf(out, "}");
		} else {
			xn_buf_printf(out, "vif %u/%u%s %s", v->domid, v->devid, v->emu ? " (emu)" : "", v->name);
			if (dom)
				xn_buf_printf(out, " (domain %s)", dom);
			xn_buf_printf(out, ": %s", state_name(v));
			if (v->state == VIF_CONNECTED) {
				if (v->mode == XN_MODE_ROUTED)
					xn_buf_printf(out, ", routed");
				else
					xn_buf_printf(out, ", bridge %s", v->bridge);
			}
			for (size_t j = 0; j < conf_of(v)->n_ips; j++)
				xn_buf_printf(out, "%s%s", j ? " " : ", addresses ",
					      xn_addr_format(&conf_of(v)->ips[j], true, a));
			if (v->state == VIF_CONNECTED)
				xn_buf_printf(out, ", anti-spoofing %s", v->filtered ? "on" : "off");
			if (v->state == VIF_FAILED)
				xn_buf_printf(out, ": %s", error_of(v));
			xn_buf_printf(out, "\n");
		}
		free(dom);
	}
}
