/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xennetd: applies a profile and keeps the host converged to it. One
 * single-threaded epoll loop: signals, the control socket, link events. */
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <net/if.h>
#include <sys/stat.h>
#include <time.h>

#include "xennet/conntrack.h"
#include "xennet/control.h"
#include "xennet/engine.h"
#include "xennet/hotplug.h"
#include "xennet/log.h"
#include "xennet/nft.h"
#include "xennet/publicip.h"
#include "xennet/status.h"
#include "xennet/sysctl.h"
#include "xn-config.h"

struct control_request;

#define IDLE_TRIM_MS 200
/* Conntrack purges after a mapping change wait this long for more
 * requests, so that the client reads its reply before the walk of the
 * conntrack table (~10 ms on a large host) takes the CPU, and changes in
 * quick succession share one walk; never longer than the second. */
#define PURGE_QUIET_MS 2
#define PURGE_LATEST_MS 10

struct daemon {
	char profile_path[PATH_MAX];
	const char *socket_path;
	const char *state_dir;
	struct xn_profile *profile; /* the profile in force */
	struct xn_engine *engine;
	struct xn_nl *events;
	struct xn_hotplug *hotplug; /* NULL while xenstore is unreachable */
	struct xn_publicip *publicip; /* per-VM public IP mappings */
	struct control_request *control_batch; /* allocated on first use */
	bool busy; /* worked since the heap was last trimmed */
	int64_t last_work; /* when (ms): the trim waits for IDLE_TRIM_MS of quiet */
	char vifs_path[PATH_MAX]; /* the configured vifs, for the next start */
	int64_t xenstore_retry; /* when to try connecting again (ms) */
	int64_t purge_first, purge_due; /* pending conntrack purges (ms), 0: none */
	int efd;
	struct {
		char name[IFNAMSIZ];
		int ifindex;
	} known[16]; /* managed links as last seen */
	char *last_error;
	bool resync; /* a link we manage changed: converge again */
	bool quit;
	int arp_ignore_warned; /* the value last warned about */
};

/* Public addresses are local routes: Linux answers ARP for them only with
 * arp_ignore 0 (the default). Said once per value, not per apply. */
static void check_arp_ignore(struct daemon *d, const struct xn_profile *p, size_t n_public)
{
	char path[96], v[XN_SYSCTL_VALUE_MAX];
	int worst = 0;

	if (!p || p->mode != XN_MODE_NAT || !n_public)
		return;
	snprintf(path, sizeof(path), "net/ipv4/conf/%s/arp_ignore", p->nat_uplink);
	if (xn_sysctl_read(path, v) >= 0 && atoi(v) > worst)
		worst = atoi(v);
	if (xn_sysctl_read("net/ipv4/conf/all/arp_ignore", v) >= 0 && atoi(v) > worst)
		worst = atoi(v);
	if (worst && worst != d->arp_ignore_warned)
		log_warn("arp_ignore is %d on %s: the LAN gets no ARP answer for public addresses on its own link (routed ones work); set net.ipv4.conf.%s.arp_ignore and .all.arp_ignore to 0",
			 worst, p->nat_uplink, p->nat_uplink);
	d->arp_ignore_warned = worst;
}

static void set_last_error(struct daemon *d, const char *msg)
{
	free(d->last_error);
	d->last_error = msg ? strdup(msg) : NULL;
}

/* Apply p keeping the connected vifs' filter elements. */
static int engine_apply_grow(struct daemon *d, const struct xn_profile *p, bool grow_nat,
			     struct xn_buf *report, struct xn_buf *err)
{
	struct xn_nft_vif *vifs = NULL;
	size_t n = 0;
	int r;

	struct xn_nft_dynamic dyn = { .grow_nat = grow_nat };

	r = xn_publicip_compose(d->publicip, p, &dyn.maps, err);
	if (r < 0)
		return r;
	xn_publicip_listed(d->publicip, &dyn.publics, &dyn.n_publics);
	if (d->hotplug && xn_hotplug_nft_vifs(d->hotplug, &vifs, &n) < 0)
		return -ENOMEM;
	dyn.vifs = vifs;
	dyn.n_vifs = n;
	xn_nft_take_install_us();
	r = xn_engine_apply(d->engine, p, &dyn, report, err);
	long install_us = xn_nft_take_install_us();
	free(vifs);
	xn_publicip_compose_done(d->publicip);
	/* Then the mappings themselves: only what differs changes. */
	if (r >= 0)
		r = xn_publicip_sync(d->publicip, p, install_us >= 0, err);
	if (r >= 0) {
		size_t maps, fwds, changed;
		long us;
		xn_publicip_last_sync(d->publicip, &maps, &fwds, &changed, &us);
		/* Mappings go in with a new table (made when its maps were
		 * too small), then what differs; the time is of both. */
		if (install_us >= 0 && maps + fwds)
			us += install_us;
		check_arp_ignore(d, p, maps + fwds);
		if (changed || (install_us >= 0 && maps + fwds))
			log_info("public IP mappings: %zu maps and %zu forwards in force, %zu public addresses changed, nftables %ld.%03ld ms%s",
				 maps, fwds, changed, us / 1000, us % 1000,
				 install_us >= 0 ? " (with the table, made anew)" : "");
	}
	return r;
}

static int engine_apply(struct daemon *d, const struct xn_profile *p,
			struct xn_buf *report, struct xn_buf *err)
{
	return engine_apply_grow(d, p, false, report, err);
}

/* The NAT maps are full (they are sized when the table is made): the
 * table again, with larger ones, in one batch. */
static int grow_nat_maps(void *ctx, struct xn_buf *err)
{
	struct daemon *d = ctx;

	log_info("public IP mappings: the NAT maps are full, making them larger");
	return engine_apply_grow(d, d->profile, true, NULL, err);
}

/* Load, check and apply a profile. On a bad profile nothing changes; on a
 * kernel failure half way the previous profile is applied again. */
static int apply_profile(struct daemon *d, const char *path, struct xn_buf *out)
{
	struct xn_profile *p = NULL;
	struct xn_diag diag = { 0 };
	struct xn_buf report = { 0 }, err = { 0 };
	int r;

	r = xn_profile_load(path, &p, &diag);
	if (r < 0) {
		for (size_t i = 0; i < diag.n; i++)
			xn_buf_printf(out, "%s\n", diag.lines[i]);
		xn_buf_printf(out, "%s: profile rejected, nothing changed\n", path);
		xn_diag_free(&diag);
		return r;
	}
	r = engine_apply(d, p, &report, &err);
	if (r < 0) {
		xn_buf_printf(out, "applying %s failed: %s\n", path, xn_buf_str(&err));
		set_last_error(d, xn_buf_str(&err));
		log_err("applying %s failed: %s", path, xn_buf_str(&err));
		if (d->profile) {
			struct xn_buf err2 = { 0 };
			int r2 = engine_apply(d, d->profile, NULL, &err2);
			if (r2 < 0)
				log_err("restoring %s failed too: %s", d->profile->path,
					xn_buf_str(&err2));
			else
				xn_buf_printf(out, "restored the previous profile %s\n",
					      d->profile->path);
			xn_buf_free(&err2);
		}
		xn_profile_free(p);
	} else {
		size_t steps = 0;
		for (const char *c = xn_buf_str(&report); c && *c; c++)
			steps += *c == '\n';
		if (steps)
			log_info("applied %s (%s mode): %zu changes", path,
				 xn_mode_name(p->mode), steps);
		xn_buf_printf(out, "applied %s: %zu changes\n%s", path, steps,
			      xn_buf_str(&report));
		xn_profile_free(d->profile);
		d->profile = p;
		if (d->hotplug)
			xn_hotplug_set_profile(d->hotplug, p);
		if (path != d->profile_path)
			snprintf(d->profile_path, sizeof(d->profile_path), "%s", path);
		set_last_error(d, NULL);
	}
	xn_buf_free(&report);
	xn_buf_free(&err);
	return r;
}

static void status_vifs(bool json, struct xn_buf *out, void *userdata)
{
	struct daemon *d = userdata;

	if (json) {
		xn_buf_printf(out, ",\"xenstore\":%s,\"vifs\":[", d->hotplug ? "true" : "false");
		if (d->hotplug)
			xn_hotplug_status(d->hotplug, true, out);
		xn_buf_printf(out, "]");
	} else if (!d->hotplug) {
		xn_buf_printf(out, "xenstore: not connected; vif hotplug starts when it is\n");
	} else {
		xn_hotplug_status(d->hotplug, false, out);
	}
}

static void render_status(struct daemon *d, bool json, struct xn_buf *out)
{
	struct xn_snapshot *snap = NULL;
	struct xn_nft_rule_info *rules = NULL;
	struct xn_status_input in = { .pid = getpid(), .profile = d->profile,
				      .ledger = &d->engine->ledger,
				      .last_error = d->last_error };
	int r;

	r = xn_snapshot_take(d->engine->nl, &snap);
	if (r < 0) {
		xn_buf_printf(out, "reading kernel state: %s\n", strerror(-r));
		return;
	}
	in.snapshot = snap;
	in.nft_error = xn_nft_list_rules(&rules, &in.n_rules);
	in.rules = rules;
	in.extra = status_vifs;
	in.extra_userdata = d;
	xn_status_render(&in, json, out);
	free(rules);
	xn_snapshot_free(snap);
}

static int parse_id(const char *s, unsigned long max, unsigned *ret)
{
	unsigned long v;

	if (xn_parse_uint(s, 0, max, &v) < 0)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

static int handle_mapping(struct daemon *d, char **w, size_t n, struct xn_buf *out)
{
	bool fwd = strcmp(w[0], "forward") == 0;
	const char *name = NULL;

	if (strcmp(w[1], "list") == 0 && n <= 3) {
		bool json = n == 3 && strcmp(w[2], "json") == 0;
		if (n == 3 && !json)
			goto usage;
		xn_publicip_list(d->publicip, fwd, json, out);
		return 0;
	}
	if (strcmp(w[1], "add") == 0 && (n == 4 || n == 5)) {
		if (n == 5) {
			name = w[4];
			if (!xn_mapping_name_valid(name)) {
				xn_buf_printf(out, "bad name \"%.64s\" (1 to 63 letters, digits, \"_\", \".\" or \"-\")\n", name);
				return -EINVAL;
			}
		}
		if (!fwd) {
			struct xn_mapping m = { 0 };
			if (xn_addr_parse_ipv4_host(w[2], &m.public_addr) < 0) {
				xn_buf_printf(out, "bad public address \"%.64s\" (an IPv4 address)\n", w[2]);
				return -EINVAL;
			}
			if (xn_addr_parse_ipv4_host(w[3], &m.guest) < 0) {
				xn_buf_printf(out, "bad guest address \"%.64s\" (an IPv4 address)\n", w[3]);
				return -EINVAL;
			}
			m.name = name;
			return xn_publicip_map_add(d->publicip, &m, out);
		}
		struct xn_forward f = { 0 };
		if (xn_parse_public_port(w[2], &f.public_addr, &f.public_port, &f.proto) < 0) {
			xn_buf_printf(out, "bad public \"%.64s\" (ADDRESS:PORT/tcp or /udp)\n", w[2]);
			return -EINVAL;
		}
		if (xn_parse_host_port(w[3], &f.guest, &f.guest_port) < 0) {
			xn_buf_printf(out, "bad guest \"%.64s\" (ADDRESS:PORT)\n", w[3]);
			return -EINVAL;
		}
		f.name = name;
		return xn_publicip_fwd_add(d->publicip, &f, out);
	}
	if (strcmp(w[1], "del") == 0 && n == 3) {
		struct xn_addr a;
		uint16_t port;
		uint8_t proto;
		if (!fwd) {
			if (xn_addr_parse_ipv4_host(w[2], &a) < 0) {
				xn_buf_printf(out, "bad public address \"%.64s\"\n", w[2]);
				return -EINVAL;
			}
			return xn_publicip_map_del(d->publicip, &a, out);
		}
		if (xn_parse_public_port(w[2], &a, &port, &proto) < 0) {
			xn_buf_printf(out, "bad public \"%.64s\" (ADDRESS:PORT/tcp or /udp)\n", w[2]);
			return -EINVAL;
		}
		return xn_publicip_fwd_del(d->publicip, &a, port, proto, out);
	}
usage:
	xn_buf_printf(out, "usage: %s add|del|list ...\n", w[0]);
	return -EINVAL;
}

/* Returns the status to answer, or 1 when the request kept fd to answer
 * later. */
static int handle_request(struct daemon *d, char **w, size_t n, int fd,
			  struct xn_buf *out)
{
	if (strcmp(w[0], "ping") == 0 && n == 1) {
		xn_buf_printf(out, "pong\n");
		return 0;
	}
	if (strcmp(w[0], "status") == 0 && n <= 2) {
		bool json = n == 2 && strcmp(w[1], "json") == 0;
		if (n == 2 && !json) {
			xn_buf_printf(out, "status: unknown argument \"%s\"\n", w[1]);
			return -EINVAL;
		}
		render_status(d, json, out);
		return 0;
	}
	if (strcmp(w[0], "apply") == 0 && n == 2) {
		if (w[1][0] != '/') {
			xn_buf_printf(out, "apply: the profile path must be absolute\n");
			return -EINVAL;
		}
		return apply_profile(d, w[1], out);
	}
	if (strcmp(w[0], "reload") == 0 && n == 1)
		return apply_profile(d, d->profile_path, out);
	if ((strcmp(w[0], "map") == 0 || strcmp(w[0], "forward") == 0) && n >= 2)
		return handle_mapping(d, w, n, out);
	if (strcmp(w[0], "hotplug") == 0 && n == 4) {
		unsigned domid, devid;
		int status = 0;
		if (parse_id(w[2], 0x7fef, &domid) < 0 || parse_id(w[3], 65535, &devid) < 0) {
			xn_buf_printf(out, "hotplug: bad domid/devid \"%s/%s\"\n", w[2], w[3]);
			return -EINVAL;
		}
		if (!d->hotplug) {
			xn_buf_printf(out, "xennetd is not connected to xenstore\n");
			return -ENOTCONN;
		}
		if (xn_hotplug_request(d->hotplug, w[1], domid, devid, fd, &status, out) == 0)
			return 1;
		return -status;
	}
	xn_buf_printf(out, "unknown request \"%s\" with %zu arguments\n", w[0], n - 1);
	return -EINVAL;
}

/* Requests are read in batches: all the clients already waiting (500
 * vif-xennet started at once) are read first, then answered, so that
 * per-batch work (one round trip to xenstore) is done once. */
#define CONTROL_BATCH 32

struct control_request {
	int fd;
	int r; /* reading it: 0 or -errno */
	size_t n;
	char *words[XN_CTL_MAX_WORDS];
	char buf[XN_CTL_MAX_REQUEST + 1];
};

static void answer_request(struct daemon *d, struct control_request *q)
{
	struct xn_buf out = { 0 };
	int r = q->r;

	if (r < 0) {
		log_warn("control: bad request: %s", strerror(-r));
		xn_buf_printf(&out, "bad request: %s\n", strerror(-r));
	} else {
		r = handle_request(d, q->words, q->n, q->fd, &out);
		if (r == 1) { /* answered later */
			xn_buf_free(&out);
			return;
		}
	}
	r = xn_ctl_write_reply(q->fd, r, xn_buf_str(&out) ? xn_buf_str(&out) : "out of memory\n");
	if (r < 0)
		log_warn("control: reply not delivered: %s", strerror(-r));
	xn_buf_free(&out);
	close(q->fd);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Shorten an epoll timeout (ms, -1 for none) so as to wake at deadline. */
static void wake_by(int *timeout, int64_t deadline)
{
	int64_t left = deadline - mono_ms();

	if (left < 0)
		left = 0;
	if (*timeout < 0 || *timeout > left)
		*timeout = (int)left;
}

static void on_control(struct daemon *d, int lfd)
{
	struct control_request *batch = d->control_batch;
	size_t n;

	if (!batch)
		batch = d->control_batch = malloc(CONTROL_BATCH * sizeof(*batch));
	if (!batch) {
		log_err("control: out of memory");
		return;
	}
	do {
		for (n = 0; n < CONTROL_BATCH;) {
			int fd = xn_ctl_accept(lfd);
			if (fd == -EAGAIN || fd == -EWOULDBLOCK)
				break;
			if (fd == -EPERM) {
				log_warn("control: refused a client that is not root");
				continue;
			}
			if (fd < 0) {
				log_err("control: accept: %s", strerror(-fd));
				break;
			}
			batch[n].fd = fd;
			batch[n].r = xn_ctl_read_request(fd, batch[n].buf, batch[n].words, &batch[n].n);
			n++;
		}
		for (size_t i = 0; i < n; i++)
			answer_request(d, &batch[i]);
		if (d->hotplug)
			xn_hotplug_end_batch(d->hotplug);
		/* Work that the clients need not wait for. */
		if (n && xn_publicip_purge_pending(d->publicip)) {
			int64_t now = mono_ms();

			if (!d->purge_first)
				d->purge_first = now;
			d->purge_due = now + PURGE_QUIET_MS;
			if (d->purge_due > d->purge_first + PURGE_LATEST_MS)
				d->purge_due = d->purge_first + PURGE_LATEST_MS;
		}
	} while (n == CONTROL_BATCH);
}

static void run_purges(struct daemon *d)
{
	int r = xn_publicip_flush(d->publicip);

	if (r < 0)
		log_warn("conntrack purge: %s", strerror(-r));
	d->purge_first = d->purge_due = 0;
}

static bool managed_name(const struct xn_profile *p, const char *name)
{
	if (!p || !*name)
		return false;
	for (size_t i = 0; i < p->n_bridges; i++)
		if (strcmp(p->bridges[i].name, name) == 0 ||
		    strcmp(p->bridges[i].uplink, name) == 0)
			return true;
	return strcmp(p->routed_uplink, name) == 0 ||
	       strcmp(p->nat_uplink, name) == 0;
}

/* Has a managed link drifted? Removed, brought down, or a new device
 * under its name. Its other changes (a port joining a bridge changes the
 * bridge too, hundreds of times when vifs come) are not drift. */
static bool drifted(struct daemon *d, bool added, int ifindex, unsigned flags, const char *name)
{
	size_t i;

	for (i = 0; i < XN_ARRAY_SIZE(d->known) && d->known[i].name[0]; i++)
		if (strcmp(d->known[i].name, name) == 0)
			break;
	if (i == XN_ARRAY_SIZE(d->known))
		return true;
	if (!added) {
		d->known[i].ifindex = 0;
		return true;
	}
	bool is_new = d->known[i].ifindex != ifindex;
	snprintf(d->known[i].name, sizeof(d->known[i].name), "%s", name);
	d->known[i].ifindex = ifindex;
	return is_new || !(flags & IFF_UP);
}

static void on_link_event(bool added, int ifindex, unsigned flags, const char *name,
			  void *userdata)
{
	struct daemon *d = userdata;

	if (d->hotplug)
		xn_hotplug_on_link(d->hotplug, added, ifindex, name);
	if (managed_name(d->profile, name) && drifted(d, added, ifindex, flags, name) &&
	    !d->resync) {
		log_debug("link %s %s: converging again", name, added ? "changed" : "removed");
		d->resync = true;
	}
}

static void resync(struct daemon *d)
{
	struct xn_buf report = { 0 }, err = { 0 };
	int r;

	d->resync = false;
	if (!d->profile)
		return;
	r = engine_apply(d, d->profile, &report, &err);
	if (r < 0) {
		log_err("converging to %s: %s", d->profile->path, xn_buf_str(&err));
		set_last_error(d, xn_buf_str(&err));
	} else if (report.len) {
		log_info("repaired drift from %s:\n%s", d->profile->path, xn_buf_str(&report));
	}
	xn_buf_free(&report);
	xn_buf_free(&err);
}

/* xenstored may start after us (or restart): keep trying, quietly after
 * the first complaint. */
static void save_vifs(struct daemon *d)
{
	int r;

	if (!d->hotplug)
		return;
	r = xn_hotplug_save(d->hotplug, d->vifs_path);
	if (r < 0)
		log_warn("saving %s: %s (a restart reads every vif from xenstore)",
			 d->vifs_path, strerror(-r));
}

static void connect_xenstore(struct daemon *d)
{
	static bool complained;
	struct xn_buf err = { 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	size_t adopted, looked_up;
	int r;

	r = xn_hotplug_open(d->engine->nl, &d->hotplug, &err);
	if (r < 0) {
		if (!complained)
			log_warn("%s; vif hotplug waits for xenstore (retrying every 5 s)",
				 xn_buf_str(&err));
		complained = true;
		d->xenstore_retry = mono_ms() + 5000;
		xn_buf_free(&err);
		return;
	}
	ev.data.fd = xn_hotplug_fd(d->hotplug);
	if (epoll_ctl(d->efd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
		log_err("epoll_ctl: %m");
		xn_hotplug_close(d->hotplug);
		d->hotplug = NULL;
		d->xenstore_retry = mono_ms() + 5000;
		return;
	}
	complained = false;
	xn_hotplug_set_profile(d->hotplug, d->profile);
	log_info("connected to xenstore, watching backend/vif%s",
		 xn_hotplug_events_ordered(d->hotplug) ? "" :
		 " (this xenstored may hold watch events back: backend keys are read at each request)");
	xn_hotplug_start(d->hotplug, d->vifs_path, &adopted, &looked_up);
	if (adopted || looked_up)
		log_info("vifs at start: %zu adopted as saved in %s, %zu looked up in xenstore",
			 adopted, d->vifs_path, looked_up);
	xn_hotplug_purge_vanished(d->hotplug);
}

static int on_signal(struct daemon *d, int sfd)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			struct xn_buf out = { 0 };
			log_info("SIGHUP: reloading %s", d->profile_path);
			if (apply_profile(d, d->profile_path, &out) < 0)
				log_err("reload failed, the previous state stays:\n%s",
					xn_buf_str(&out));
			xn_buf_free(&out);
		} else {
			log_info("signal %u: exiting, the network stays as it is",
				 si.ssi_signo);
			d->quit = true;
		}
	}
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int lock_state_dir(const char *dir)
{
	char path[PATH_MAX];
	char pid[32];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/lock", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return e;
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0 && write(fd, pid, strlen(pid)) < 0)
		log_debug("cannot write pid to %s", path);
	return fd; /* held until exit */
}

static int dirname_of(const char *path, char out[PATH_MAX])
{
	const char *slash = strrchr(path, '/');

	if (!slash || slash == path) {
		snprintf(out, PATH_MAX, "%s", slash ? "/" : ".");
		return 0;
	}
	if ((size_t)(slash - path) >= PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(out, path, (size_t)(slash - path));
	out[slash - path] = '\0';
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: xennetd [OPTIONS]\n"
		"Apply a xennet profile and keep the host converged to it.\n\n"
		"  -p, --profile FILE    profile (default %s, or the one last applied)\n"
		"  -s, --socket PATH     control socket (default $XENNET_SOCKET or %s)\n"
		"  -d, --state-dir DIR   state directory (default %s)\n"
		"  -f, --foreground      stay in the foreground and log to stderr\n"
		"  -v, --verbose         log debug messages\n"
		"  -h, --help            this help\n"
		"      --version         print the version\n",
		XN_DEFAULT_PROFILE, XN_DEFAULT_SOCKET, XN_DEFAULT_STATE_DIR);
}

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -errno;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct daemon d = { .socket_path = xn_ctl_default_path(),
			    .state_dir = XN_DEFAULT_STATE_DIR };
	const char *profile_arg = NULL;
	bool foreground = false, verbose = false;
	struct epoll_event ev;
	char sockdir[PATH_MAX];
	struct xn_buf out = { 0 }, err = { 0 };
	sigset_t mask;
	int c, r, lock_fd, sfd = -1, lfd = -1, efd = -1, nft_fd = -1, ret = 1;

	while ((c = getopt_long(argc, argv, "p:s:d:fvh", opts, NULL)) != -1) {
		switch (c) {
		case 'p': profile_arg = optarg; break;
		case 's': d.socket_path = optarg; break;
		case 'd': d.state_dir = optarg; break;
		case 'f': foreground = true; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("xennetd %s\n", XN_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xennetd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	xn_log_init("xennetd", false, verbose ? LOG_DEBUG : LOG_INFO);

	snprintf(d.vifs_path, sizeof(d.vifs_path), "%s/vifs", d.state_dir);
	r = mkdir_p(d.state_dir, 0700);
	if (r < 0) {
		log_err("state directory %s: %s", d.state_dir, strerror(-r));
		return 1;
	}
	lock_fd = lock_state_dir(d.state_dir);
	if (lock_fd < 0) {
		log_err("state directory %s: %s", d.state_dir,
			lock_fd == -EBUSY ? "another xennetd is running" : strerror(-lock_fd));
		return 1;
	}
	r = xn_engine_open(d.state_dir, &d.engine, &err);
	if (r >= 0)
		r = xn_publicip_open(d.state_dir, d.engine->nl, &d.publicip, &err);
	if (r >= 0)
		xn_publicip_on_full(d.publicip, grow_nat_maps, &d);
	if (r < 0) {
		log_err("%s", xn_buf_str(&err));
		goto out;
	}
	/* Without --profile, keep the profile last applied (by `xennet
	 * apply`), so a restart does not silently switch back. */
	if (profile_arg)
		snprintf(d.profile_path, sizeof(d.profile_path), "%s", profile_arg);
	else if (d.engine->ledger.profile[0])
		snprintf(d.profile_path, sizeof(d.profile_path), "%s", d.engine->ledger.profile);
	else
		snprintf(d.profile_path, sizeof(d.profile_path), "%s", XN_DEFAULT_PROFILE);

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Converge before taking requests: a restart reconciles with what
	 * the kernel has, and changes nothing when nothing drifted. */
	r = apply_profile(&d, d.profile_path, &out);
	fputs(xn_buf_str(&out) ? xn_buf_str(&out) : "", stderr);
	if (r < 0)
		goto out;

	if (dirname_of(d.socket_path, sockdir) == 0)
		mkdir_p(sockdir, 0755);
	lfd = xn_ctl_listen(d.socket_path);
	if (lfd < 0) {
		log_err("control socket %s: %s", d.socket_path,
			lfd == -EADDRINUSE ? "another daemon answers there" : strerror(-lfd));
		goto out;
	}
	r = xn_nl_events_open(&d.events, on_link_event, &d);
	if (r < 0) {
		log_err("link events: %s", strerror(-r));
		goto out;
	}
	if (!foreground) {
		r = daemonize();
		if (r < 0) {
			log_err("daemonize: %s", strerror(-r));
			goto out;
		}
		xn_log_init("xennetd", true, verbose ? LOG_DEBUG : LOG_INFO);
		/* The pid in the lock file is the daemon's. */
		{
			char pid[32];
			snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
			if (ftruncate(lock_fd, 0) < 0 ||
			    pwrite(lock_fd, pid, strlen(pid), 0) < 0)
				log_warn("cannot record the pid: %m");
		}
	}
	/* After daemonize: a signalfd in epoll only wakes the process that
	 * created it. */
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	efd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || efd < 0) {
		log_err("signalfd/epoll: %m");
		goto out;
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = sfd };
	if (epoll_ctl(efd, EPOLL_CTL_ADD, sfd, &ev) < 0)
		goto epoll_fail;
	ev.data.fd = lfd;
	if (epoll_ctl(efd, EPOLL_CTL_ADD, lfd, &ev) < 0)
		goto epoll_fail;
	ev.data.fd = xn_nl_events_fd(d.events);
	if (epoll_ctl(efd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0)
		goto epoll_fail;
	nft_fd = xn_nft_monitor_open();
	if (nft_fd < 0) {
		log_warn("cannot watch nftables for changes by others: %s", strerror(-nft_fd));
	} else {
		ev.data.fd = nft_fd;
		if (epoll_ctl(efd, EPOLL_CTL_ADD, nft_fd, &ev) < 0)
			goto epoll_fail;
	}
	d.efd = efd;
	connect_xenstore(&d);
	log_info("ready: profile %s, control socket %s", d.profile_path, d.socket_path);
	d.busy = true; /* starting was work */
	d.last_work = mono_ms();

	while (!d.quit) {
		struct epoll_event evs[8];
		int timeout = -1, n;

		if (d.hotplug)
			timeout = xn_hotplug_timeout_ms(d.hotplug);
		else
			wake_by(&timeout, d.xenstore_retry);
		if (d.busy)
			wake_by(&timeout, d.last_work + IDLE_TRIM_MS);
		if (d.purge_due)
			wake_by(&timeout, d.purge_due);
		n = epoll_wait(efd, evs, 8, timeout);
		if (n == 0 && d.purge_due && mono_ms() >= d.purge_due)
			run_purges(&d);
		if (n == 0 && d.busy && mono_ms() >= d.last_work + IDLE_TRIM_MS) {
			/* Quiet for a while after some work: save the vifs,
			 * and give the memory that work freed back to the
			 * kernel; glibc keeps it otherwise, and RSS stays at
			 * the peak. Never in the way of a request. */
			save_vifs(&d);
			free(d.control_batch); /* 130 KiB, again at the next request */
			d.control_batch = NULL;
			malloc_trim(0);
			d.busy = false;
		}
		if (n > 0) {
			d.busy = true;
			d.last_work = mono_ms();
		}

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("epoll_wait: %m");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == sfd)
				on_signal(&d, sfd);
			else if (fd == lfd)
				on_control(&d, lfd);
			else if (d.hotplug && fd == xn_hotplug_fd(d.hotplug))
				xn_hotplug_on_xenstore(d.hotplug);
			else if (fd == nft_fd) {
				int m = xn_nft_monitor_drain();
				if (m == 1)
					log_warn("someone else changed xennet's nftables tables: putting them back");
				else if (m == 2)
					log_debug("nftables events lost: checking xennet's tables");
				if (m > 0)
					d.resync = true;
			}
			else if (xn_nl_events_drain(d.events) == -ENOBUFS) {
				d.resync = true;
				if (d.hotplug) /* link events were lost */
					xn_hotplug_rescan(d.hotplug);
			}
		}
		if (d.hotplug)
			xn_hotplug_on_timer(d.hotplug);
		else if (mono_ms() >= d.xenstore_retry)
			connect_xenstore(&d);
		if (d.purge_due && mono_ms() >= d.purge_due)
			run_purges(&d);
		if (xn_nft_monitor_take_missed()) {
			log_debug("nftables changed during a batch of ours: checking xennet's tables");
			d.resync = true;
		}
		if (d.resync && !d.quit)
			resync(&d);
	}
	ret = 0;
	goto out;
epoll_fail:
	log_err("epoll_ctl: %m");
out:
	if (lfd >= 0) {
		close(lfd);
		unlink(d.socket_path);
	}
	if (sfd >= 0)
		close(sfd);
	if (efd >= 0)
		close(efd);
	if (d.purge_due)
		run_purges(&d);
	save_vifs(&d);
	xn_hotplug_close(d.hotplug);
	xn_publicip_close(d.publicip);
	xn_nft_close();
	xn_nft_monitor_close();
	xn_conntrack_close();
	xn_nl_close(d.events);
	xn_engine_close(d.engine);
	xn_profile_free(d.profile);
	free(d.last_error);
	free(d.control_batch);
	xn_buf_free(&out);
	xn_buf_free(&err);
	close(lock_fd);
	return ret;
}
