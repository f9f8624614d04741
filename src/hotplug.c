/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vif hotplug: the table of vifs, what xenstore says of them (watch
 * events, backend keys read once per change, hotplug-status written in
 * the background), the requests of vif-xennet, and the state of each vif
 * from waiting to connected. Its kernel side is vifattach.c; what is
 * kept across restarts, hotplug-restart.c. */
#include "hotplug-internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "xennet/control.h"

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

/* ---- the table of vifs ---- */

struct vif *vif_find(struct xn_hotplug *h, unsigned domid, unsigned devid,
			    bool emu)
{
	for (size_t i = 0; i < h->n_vifs; i++) {
		struct vif *v = h->vifs[i];
		if (v->domid == domid && v->devid == devid && v->emu == emu)
			return v;
	}
	return NULL;
}

struct vif *vif_get(struct xn_hotplug *h, unsigned domid, unsigned devid,
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
	if (v->unverified)
		h->n_unverified--;
	for (int k = 0; k < BK_N; k++)
		drop_value(h, (enum backend_key)k, v->be[k]);
	free(v->conf);
	free(v->error);
	free(v->domain);
	free(v);
}

void vif_drop(struct xn_hotplug *h, struct vif *v)
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
const char *vif_backend_get(struct xn_hotplug *h, struct vif *v, enum backend_key k)
{
	char path[96];
	int r;

	if (v->be_stale & (1u << k)) {
		char *value = NULL;

		drop_value(h, k, v->be[k]);
		v->be[k] = NULL;
		if (k == BK_DIR) {
			backend_dir(v, path, sizeof(path));
			/* Unreadable is not gone: a failing xenstore must not
			 * take a connected vif down. */
			r = xn_xs_exists(h->xs, path);
			r = r > 0 ? 0 : r == 0 ? -ENOENT : r;
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
		/* libxenstore closes a connection it cannot trust any more (a
		 * reply too large for it, xenstored gone): a new one is made. */
		if (r == -EBADF || r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN)
			h->lost = true;
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

	return k < 0 ? XN_VIF_BAD_VALUE : vif_backend_get(kr->h, kr->v, (enum backend_key)k);
}

static const struct vif_conf no_conf;

const struct vif_conf *vif_conf_of(const struct vif *v)
{
	return v->conf ? v->conf : &no_conf;
}

/* v's configuration becomes a copy of c, in the bytes it needs. */
int vif_set_conf(struct vif *v, const struct xn_vif_conf *c)
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

void vif_conf_export(const struct vif_conf *k, struct xn_vif_conf *out)
{
	memcpy(out, k, offsetof(struct xn_vif_conf, ips));
	memcpy(out->ips, k->ips, k->n_ips * sizeof(k->ips[0]));
}

int vif_read_conf(struct xn_hotplug *h, struct vif *v, struct xn_buf *err)
{
	struct key_reader kr = { .h = h, .v = v };
	struct xn_vif_conf c;
	int r;

	r = xn_vif_conf_read(v->domid, v->devid, read_key, &kr, &c, err);
	if (r >= 0 && vif_set_conf(v, &c) < 0) {
		xn_buf_printf(err, "backend/vif/%u/%u: out of memory", v->domid, v->devid);
		r = -ENOMEM;
	}
	return r;
}

/* Is the backend there and online? */
bool vif_backend_online(struct xn_hotplug *h, struct vif *v)
{
	const char *online = vif_backend_get(h, v, BK_ONLINE);

	if (!online)
		return vif_backend_get(h, v, BK_DIR) != NULL;
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

/* ---- the state of a vif ---- */

static void report_failure(struct xn_hotplug *h, struct vif *v);
static bool vif_script_waits(const struct vif *v);
static bool keep_waiting_scripts(struct xn_hotplug *h, struct vif *v);

void vif_try(struct xn_hotplug *h, struct vif *v, bool requested)
{
	struct xn_buf err = { 0 };
	struct xn_link l;
	int r;

	if (v->state == VIF_CONNECTED || v->state == VIF_OFFLINE || !vif_backend_online(h, v))
		return;
	/* Only for the script libxl ran: libxl waits for netback's state 2
	 * before it runs it, and hotplug-status=connected written earlier
	 * lets a running guest's frontend take the backend to state 4 first
	 * (libxl then times out). A vif the toolstack saw fail (its script
	 * gave up) must not come up later either. */
	if (!requested && !keep_waiting_scripts(h, v))
		return;
	r = vif_read_conf(h, v, &err);
	if (r < 0) {
		vif_fail(v, r, "%s", xn_buf_str(&err));
		xn_buf_free(&err);
		goto failed;
	}
	r = vif_find_device(h, v, &l);
	if (r == -ENODEV)
		return; /* it arrives later: the link event brings us back */
	if (r < 0) {
		vif_fail(v, r, "looking up %s: %s", v->kname, strerror(-r));
		goto failed;
	}
	memcpy(v->name, l.name, sizeof(v->name));
	v->ifindex = l.ifindex;
	r = vif_configure(h, v, &l);
	if (r < 0)
		goto failed;
	if (!v->emu) {
		r = post_status(h, v, NULL);
		if (r < 0) {
			vif_fail(v, r, "writing hotplug-status: %s", strerror(-r));
			vif_detach(h, v);
			goto failed;
		}
	}
	v->state = VIF_CONNECTED;
	h->dirty = true;
	free(v->error);
	v->error = NULL;
	if (v->emu) {
		vif_report(h, v, XN_VIF_CONNECTED, NULL);
		answer(h, v, 0, "connected\n");
	}
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
	vif_report(h, v, XN_VIF_FAILED, vif_error(v));
	if (v->emu || post_status(h, v, vif_error(v)) < 0) {
		char msg[XN_VIF_ERROR_MAX + 2];
		v->pending = 0;
		snprintf(msg, sizeof(msg), "%s\n", vif_error(v));
		answer(h, v, EIO, msg);
	}
}

/* A request of the background thread is made. A sync: the requests
 * parked for it can be served. A hotplug-status write: the vif's waiters
 * hear how it went, unless the vif changed meanwhile (its later write
 * answers them then). */
static void request_made(bool sync, uint64_t cookie, int result, void *ud)
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
	if (v->state == VIF_CONNECTED && result >= 0 && v->waiters && !vif_script_waits(v))
		result = -ECONNABORTED;
	if (v->state == VIF_CONNECTED && result == -ECONNABORTED) {
		/* Its script gave up (killed, or at its own deadline) and told
		 * libxl the vif failed: it must not stay up behind its back. */
		vif_fail(v, result, "the hotplug script gave up before %s was connected", v->name);
		vif_detach(h, v);
		report_failure(h, v);
	} else if (v->state == VIF_CONNECTED && result < 0) {
		vif_fail(v, result, "writing hotplug-status: %s", strerror(-result));
		vif_detach(h, v);
		report_failure(h, v);
	} else if (v->state == VIF_CONNECTED) {
		vif_report(h, v, XN_VIF_CONNECTED, NULL);
		answer(h, v, 0, "connected\n");
	} else if (v->state == VIF_FAILED) {
		char msg[XN_VIF_ERROR_MAX + 2];
		snprintf(msg, sizeof(msg), "%s\n", vif_error(v));
		answer(h, v, EIO, msg);
	}
}

void vif_offline(struct xn_hotplug *h, struct vif *v)
{
	h->dirty = true;
	if (v->state == VIF_CONNECTED) {
		vif_detach(h, v);
		vif_report(h, v, XN_VIF_OFFLINE, NULL);
	}
	v->state = VIF_OFFLINE;
}

/* Is any script still waiting for v? One that gave up has closed its
 * connection. */
static bool vif_script_waits(const struct vif *v)
{
	for (const struct waiter *w = v->waiters; w; w = w->next)
		if (!xn_ctl_peer_gone(w->fd))
			return true;
	return false;
}

/* The scripts that went while v waited for its device (killed: libxl
 * aborting, an admin's Ctrl-C) are forgotten: they told libxl the vif
 * failed. Is any still waiting? */
static bool keep_waiting_scripts(struct xn_hotplug *h, struct vif *v)
{
	struct waiter **p = &v->waiters;
	bool dropped = false;

	while (*p) {
		struct waiter *w = *p;
		if (!xn_ctl_peer_gone(w->fd)) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		close(w->fd);
		free(w);
		dropped = true;
	}
	if (dropped && !v->waiters)
		vif_report(h, v, XN_VIF_REQUEST_DROPPED, "its hotplug script has gone");
	return v->waiters != NULL;
}

static bool conf_same(const struct vif_conf *a, const struct xn_vif_conf *b)
{
	if (a->ioemu != b->ioemu || strcmp(a->bridge, b->bridge) || a->has_mac != b->has_mac ||
	    memcmp(a->mac, b->mac, sizeof(a->mac)) || a->mtu != b->mtu ||
	    strcmp(a->vifname, b->vifname) || strcmp(a->gatewaydev, b->gatewaydev) ||
	    a->n_ips != b->n_ips)
		return false;
	for (size_t i = 0; i < a->n_ips; i++)
		if (!xn_addr_equal(&a->ips[i], &b->ips[i]))
			return false;
	return true;
}

bool vif_reapply(struct xn_hotplug *h, struct vif *v)
{
	struct key_reader kr = { .h = h, .v = v };
	enum xn_mode mode = h->profile ? h->profile->mode : XN_MODE_BRIDGED;
	struct xn_buf err = { 0 };
	struct xn_vif_conf c;
	bool renamed;
	int r;

	if (v->unverified) {
		v->unverified = false;
		h->n_unverified--;
	}
	r = xn_vif_conf_read(v->domid, v->devid, read_key, &kr, &c, &err);
	if (r >= 0 && v->mode == mode && conf_same(vif_conf_of(v), &c) &&
	    (mode == XN_MODE_ROUTED || strcmp(v->bridge, vif_bridge_for_key(h, c.bridge)) == 0)) {
		xn_buf_free(&err);
		return false;
	}
	/* Undone as it was made (the old addresses' filter elements and
	 * routes), then made from the keys as they are now. */
	renamed = strcmp(v->name, v->kname) != 0;
	vif_detach(h, v);
	if (renamed && v->ifindex > 0 && (r < 0 || strcmp(vif_conf_of(v)->vifname, c.vifname)) &&
	    xn_nl_link_set_name(h->nl, v->ifindex, v->kname) >= 0)
		memcpy(v->name, v->kname, sizeof(v->name));
	v->state = VIF_WAITING;
	if (r < 0) {
		vif_fail(v, r, "%s", xn_buf_str(&err) ? xn_buf_str(&err) : "out of memory");
		xn_buf_free(&err);
		report_failure(h, v);
		return true;
	}
	xn_buf_free(&err);
	if (vif_set_conf(v, &c) < 0) {
		vif_fail(v, -ENOMEM, "backend/vif/%u/%u: out of memory", v->domid, v->devid);
		report_failure(h, v);
		return true;
	}
	vif_report(h, v, XN_VIF_RECONFIGURED, NULL);
	vif_try(h, v, true);
	return true;
}

/* The domain's name, for the log: read once, printable or not kept. */
static const char *vif_domain(struct xn_hotplug *h, struct vif *v)
{
	char path[48];

	if (v->domain)
		return v->domain[0] ? v->domain : NULL;
	snprintf(path, sizeof(path), "/local/domain/%u/name", v->domid);
	if (xn_xs_read(h->xs, path, 64, &v->domain) < 0)
		v->domain = NULL;
	for (char *c = v->domain; c && *c; c++)
		if (*c < 0x20 || *c > 0x7e) {
			v->domain[0] = '\0';
			break;
		}
	if (!v->domain)
		v->domain = strdup("");
	return v->domain && v->domain[0] ? v->domain : NULL;
}

void vif_report(struct xn_hotplug *h, struct vif *v, enum xn_vif_event ev, const char *detail)
{
	struct xn_vif_report r = { .event = ev, .domid = v->domid, .devid = v->devid,
				   .emu = v->emu, .device = v->name, .detail = detail };

	if (!h->report)
		return;
	r.domain = vif_domain(h, v);
	h->report(&r, h->report_ud);
}

void xn_hotplug_set_reporter(struct xn_hotplug *h, xn_vif_report_fn fn, void *userdata)
{
	h->report = fn;
	h->report_ud = userdata;
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
		if (!vif_backend_get(h, v, BK_DIR)) {
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
	size_t made = xn_xsq_collect(h->writes, request_made, h);

	release_held(h, h->writes_done);
	/* libxenstore's reader sees xenstored go (EOF) and closes the
	 * connection: the next look at its events fails. */
	if (xn_xs_drain(h->xs, on_watch, &t) < 0)
		h->lost = true;
	h->next_check = now_ms() + CHECK_MS;
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
		v = vif_find(h, domid, devid, emu);
		if (!v && added) {
			/* Only for a backend that exists: the device of a vif
			 * whose backend went (netback deletes it late) would
			 * stay listed as waiting for ever. */
			v = vif_get(h, domid, devid, emu);
			if (v && !vif_backend_get(h, v, BK_DIR)) {
				vif_drop(h, v);
				return;
			}
		}
		if (!v)
			return;
	}
	if (added) {
		int r;
		if (v->state == VIF_WAITING)
			vif_try(h, v, false);
		else if ((r = vif_check_port(h, v)) != 0)
			vif_report(h, v, r > 0 ? XN_VIF_REPAIRED : XN_VIF_FAILED,
				   r > 0 ? NULL : vif_error(v));
	} else if (v->state == VIF_CONNECTED) {
		struct xn_link l;
		/* A rename also comes as an event: only a real removal counts,
		 * told by the ifindex (a new device may already have the name). */
		if ((v->ifindex && ifindex == v->ifindex) || vif_find_device(h, v, &l) == -ENODEV) {
			vif_detach(h, v); /* filter elements, neighbour proxies */
			v->state = VIF_WAITING;
			v->fe_mtu = 0;
			memcpy(v->name, v->kname, sizeof(v->name));
		}
	}
}

/* ---- requests ---- */

static int park(struct xn_hotplug *h, bool up, bool emu, unsigned domid, unsigned devid,
		int64_t since, int fd);
static int serve(struct xn_hotplug *h, bool up, bool emu, unsigned domid, unsigned devid,
		 int fd, int64_t since, int *status, struct xn_buf *out);

int xn_hotplug_request(struct xn_hotplug *h, const char *action, unsigned domid,
		       unsigned devid, int64_t sent_ms, int fd, int *status, struct xn_buf *out)
{
	bool emu = strcmp(action, "add") == 0 || strcmp(action, "remove") == 0;
	bool up = strcmp(action, "online") == 0 || strcmp(action, "add") == 0;
	int64_t now = now_ms();

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
	/* A time to come is not believed: the request counts from now. */
	if (sent_ms <= 0 || sent_ms > now)
		sent_ms = now;
	if (up && sent_ms + WAIT_MS <= now) {
		xn_buf_printf(out, "the request is older than %d s: not carried out\n", WAIT_MS / 1000);
		*status = ETIMEDOUT;
		return 1;
	}
	/* What libxl wrote before it ran the script is in our watch list
	 * after one round trip: then the cached keys are current (also for
	 * a vif already connected, whose keys an admin may have changed
	 * before running the script again). The round trip is made in the
	 * background, one for every request read before it; requests read
	 * meanwhile wait behind, to keep their order. */
	if (h->parked || up) {
		if (park(h, up, emu, domid, devid, sent_ms, fd) == 0)
			return 0;
		xn_buf_printf(out, "out of memory\n");
		*status = ENOMEM;
		return 1;
	}
	return serve(h, up, emu, domid, devid, fd, sent_ms, status, out);
}

static int park(struct xn_hotplug *h, bool up, bool emu, unsigned domid, unsigned devid,
		int64_t since, int fd)
{
	struct parked *p = malloc(sizeof(*p));

	if (!p)
		return -ENOMEM;
	*p = (struct parked){ .sync = h->syncs_posted + 1, .since = since, .fd = fd,
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
				if (vif_read_conf(h, v, &err) >= 0) {
					v->mode = h->profile ? h->profile->mode : XN_MODE_BRIDGED;
					v->state = VIF_CONNECTED;
				}
				xn_buf_free(&err);
			}
			vif_offline(h, v);
			/* An online request still waiting has failed. */
			answer(h, v, EIO, "the vif was taken offline\n");
			v->pending = 0;
		}
		xn_buf_printf(out, "vif %u/%u%s is offline\n", domid, devid, emu ? " (emu)" : "");
		if (v && v->last_posted > h->writes_done && xn_buf_str(out)) {
			reply_after(h, v->last_posted, fd, 0, xn_buf_str(out));
			return 0;
		}
		*status = 0;
		return 1;
	}
	if (!v) {
		xn_buf_printf(out, "out of memory\n");
		*status = ENOMEM;
		return 1;
	}
	/* A request its script no longer waits for is not carried out: the
	 * script has told libxl the vif failed. */
	if (xn_ctl_peer_gone(fd)) {
		vif_report(h, v, XN_VIF_REQUEST_DROPPED, "its hotplug script has gone");
		close(fd);
		return 0;
	}
	/* The sync proved the cached keys current only if xenstored's
	 * replies follow its watch events: else read them. */
	if (!xn_xs_events_ordered(h->xs))
		v->be_stale = BK_ALL;
	if (v->state == VIF_CONNECTED) {
		vif_reapply(h, v); /* its keys may have changed */
	} else {
		if (v->state == VIF_FAILED || v->state == VIF_OFFLINE)
			v->state = VIF_WAITING; /* a new request tries again */
		vif_try(h, v, true);
	}
	if (v->state == VIF_CONNECTED && !v->pending) {
		xn_buf_printf(out, "connected\n");
		*status = 0;
		return 1;
	}
	if (v->state == VIF_FAILED && !v->pending) {
		xn_buf_printf(out, "%s\n", vif_error(v));
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

bool xn_hotplug_events_ordered(const struct xn_hotplug *h)
{
	return xn_xs_events_ordered(h->xs);
}

void xn_hotplug_end_batch(struct xn_hotplug *h)
{
	post_sync(h);
}

/* Vifs adopted at start as saved: their keys read, a few at a time (the
 * loop serves in between), and configured again if they changed. */
#define VERIFY_BATCH 32
static void verify_adopted(struct xn_hotplug *h)
{
	size_t done = 0;

	for (size_t i = 0; h->n_unverified && done < VERIFY_BATCH && i < h->n_vifs; i++) {
		struct vif *v = h->vifs[i];
		if (!v->unverified)
			continue;
		done++;
		if (v->state != VIF_CONNECTED) {
			v->unverified = false;
			h->n_unverified--;
		} else if (!vif_reapply(h, v)) {
			vif_report(h, v, XN_VIF_ADOPTED, NULL);
		}
	}
}

bool xn_hotplug_lost(struct xn_hotplug *h)
{
	return h->lost;
}

int xn_hotplug_timeout_ms(struct xn_hotplug *h)
{
	int64_t first = h->next_check, now = now_ms();

	if (h->n_unverified)
		return 0; /* more adopted vifs to check */
	if (h->parked && h->parked->since + WAIT_MS < first)
		first = h->parked->since + WAIT_MS;
	for (size_t i = 0; i < h->n_vifs; i++) {
		const struct vif *v = h->vifs[i];
		if (v->state == VIF_CONNECTED && v->pending)
			continue; /* answered when its write is made */
		for (struct waiter *w = v->waiters; w; w = w->next)
			if (w->deadline < first)
				first = w->deadline;
	}
	return first <= now ? 0 : (int)(first - now);
}

void xn_hotplug_on_timer(struct xn_hotplug *h)
{
	int64_t now = now_ms();

	if (now >= h->next_check)
		settle(h); /* is xenstored still there? */
	verify_adopted(h);
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
			vif_detach(h, v);
		v->state = VIF_FAILED;
		h->dirty = true;
		vif_fail(v, -ETIMEDOUT, "%s", msg);
		if (v->emu || post_status(h, v, vif_error(v)) < 0)
			v->pending = 0;
		strcat(msg, "\n");
		answer(h, v, ETIMEDOUT, msg);
	}
}

/* ---- opening and closing ---- */

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
	h->next_check = now_ms() + CHECK_MS;
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
	const char *why;

	if (!h)
		return;
	/* What the scripts waiting write in hotplug-error: the daemon goes
	 * on (and reconnects) when it is xenstore that went. */
	why = h->lost ? "xennetd lost its connection to xenstore\n" : "xennetd is exiting\n";
	/* Requests not served yet are refused; what is posted is made
	 * (for a while: xenstored may be stuck), and the scripts waiting
	 * for it hear how it went. Nothing new is configured. */
	while (h->parked) {
		struct parked *p = h->parked;
		h->parked = p->next;
		xn_ctl_write_reply(p->fd, ECANCELED, why);
		close(p->fd);
		free(p);
	}
	if (xn_xsq_flush(h->writes, CLOSE_FLUSH_MS) == 0)
		xn_xsq_collect(h->writes, request_made, h);
	if (!xn_xsq_close(h->writes)) {
		/* Its thread waits on our watch connection, and closing that
		 * would wait for it: both are left to the process's exit. */
		xs_left_to_exit = h->xs;
		h->xs = NULL;
	}
	release_held(h, UINT64_MAX);
	for (size_t i = 0; i < h->n_vifs; i++) {
		answer(h, h->vifs[i], ECANCELED, why);
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
			     (v->mode != XN_MODE_ROUTED && strcmp(v->bridge, vif_bridge(h, v)) != 0);
		if (!stale)
			continue;
		vif_detach(h, v);
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
			vif_nft(h->vifs[i], &v[(*n)++]);
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

void xn_hotplug_each_vif(struct xn_hotplug *h,
			 void (*fn)(const struct xn_vif_info *vif, void *userdata), void *userdata)
{
	for (size_t i = 0; i < h->n_vifs; i++) {
		const struct vif *v = h->vifs[i];
		const struct vif_conf *c = vif_conf_of(v);
		struct xn_vif_info info = {
			.domid = v->domid, .devid = v->devid, .emu = v->emu, .name = v->name,
			.domain = v->domain && v->domain[0] ? v->domain : NULL,
			.state = state_name(v), .mode = v->mode,
			.bridge = v->mode == XN_MODE_ROUTED ? "" : v->bridge,
			.has_mac = c->has_mac, .ips = c->ips, .n_ips = c->n_ips,
			.filtered = v->filtered,
			.error = v->state == VIF_FAILED ? vif_error(v) : NULL,
		};
		memcpy(info.mac, c->mac, sizeof(info.mac));
		fn(&info, userdata);
	}
}
