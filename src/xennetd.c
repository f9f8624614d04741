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

#include "xennet/arpprobe.h"
#include "xennet/conntrack.h"
#include "xennet/control.h"
#include "xennet/drift.h"
#include "xennet/engine.h"
#include "xennet/foreign.h"
#include "xennet/hotplug.h"
#include "xennet/inventory.h"
#include "xennet/log.h"
#include "xennet/nft.h"
#include "xennet/notify.h"
#include "xennet/profilecopy.h"
#include "xennet/publicip.h"
#include "xennet/status.h"
#include "xennet/sysctl.h"
#include "xn-config.h"

#define IDLE_TRIM_MS 200
/* Conntrack purges after a mapping change wait this long for more
 * requests, so that the client reads its reply before the walk of the
 * conntrack table (~10 ms on a large host) takes the CPU, and changes in
 * quick succession share one walk; never longer than the second. */
#define PURGE_QUIET_MS 2
#define PURGE_LATEST_MS 10

struct daemon {
	char profile_path[PATH_MAX]; /* the copy in the state directory, once applied */
	char profile_source[PATH_MAX]; /* where that copy came from ("" unknown) */
	const char *socket_path;
	const char *state_dir;
	struct xn_profile *profile; /* the profile in force */
	struct xn_engine *engine; /* its nft context is everyone's */
	struct xn_conntrack *conntrack;
	struct xn_nl *events;
	struct xn_hotplug *hotplug; /* NULL while xenstore is unreachable */
	struct xn_nft_vif *vifs_away; /* the connected vifs' filter while it is lost */
	size_t n_vifs_away;
	struct xn_publicip *publicip; /* per-VM public IP mappings */
	struct xn_ctl_server *control;
	struct xn_arp_prober *prober; /* while public addresses are probed */
	struct probe_wait *probe_waits; /* the requests waiting for them */
	bool busy; /* worked since the heap was last trimmed */
	int64_t last_work; /* when (ms): the trim waits for IDLE_TRIM_MS of quiet */
	char vifs_path[PATH_MAX]; /* the configured vifs, for the next start */
	int64_t xenstore_retry; /* when to try connecting again (ms) */
	int xenstore_backoff; /* ms until the next try after this one fails */
	int64_t purge_first, purge_due; /* pending conntrack purges (ms), 0: none */
	int efd;
	struct {
		char name[IFNAMSIZ];
		int ifindex;
	} known[16]; /* managed links as last seen */
	char *last_error;
	char *last_warnings; /* of the last profile applied, NULL: none */
	int state_error; /* why the state directory cannot be written, 0 if it can */
	char who[64]; /* who asked for the change being made, for the log */
	bool resync; /* a link we manage changed: converge again */
	bool drift; /* compare the sysctls ... */
	bool drift_elems; /* ... and the sets' elements */
	unsigned drift_sets; /* ... and these NAT maps' (XN_NFT_SET_*) */
	int64_t drift_next; /* the next periodic check (ms) */
	uint32_t drift_gen; /* nftables' generation when last checked */
	bool drift_gen_known;
	int64_t drift_event_us; /* when an event first asked for the check, 0: none */
	int64_t resync_event_us; /* ... for the convergence (resync) */
	bool quit;
	int arp_ignore_warned; /* the value last warned about */
	struct xn_foreign foreign; /* other firewalls' drops, as last logged */
	int64_t foreign_due; /* when to look at the other firewalls again (ms) */
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

/* Can the state directory take a write? A page written and removed: a
 * full or read-only one says so at once. */
static int probe_state_dir(const char *dir)
{
	static const char page[4096];
	char path[PATH_MAX];
	ssize_t n;
	int fd, r;

	if ((size_t)snprintf(path, sizeof(path), "%s/.probe", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = write(fd, page, sizeof(page));
	r = n == (ssize_t)sizeof(page) ? 0 : n < 0 ? -errno : -ENOSPC;
	close(fd);
	unlink(path);
	return r;
}

/* The daemon serves with a full or read-only state directory; only the
 * changes that must be saved are refused. Logged when a problem appears
 * and when it is gone. */
static void check_state_dir(struct daemon *d)
{
	int r = probe_state_dir(d->state_dir);

	if (r < 0 && r != d->state_error)
		log_warn("state directory %s: %s: changes that must be saved (map, forward, a profile with changes to record) are refused; vif hotplug and repairs go on",
			 d->state_dir, strerror(-r));
	else if (r == 0 && d->state_error)
		log_info("state directory %s can be written again", d->state_dir);
	d->state_error = r;
}

/* Other firewalls that drop the guests' traffic: logged when what is found
 * changes (at apply, and every FOREIGN_CHECK_MS: their changes make no
 * event of ours). */
#define FOREIGN_CHECK_MS 10000

static int64_t mono_ms(void);

static void check_foreign(struct daemon *d)
{
	struct xn_foreign now;
	int r = xn_foreign_check(d->profile, &now);

	d->foreign_due = mono_ms() + FOREIGN_CHECK_MS;
	if (r < 0) {
		log_debug("reading the other firewalls: %s", strerror(-r));
		return;
	}
	if (xn_foreign_same(&now, &d->foreign))
		return;
	for (size_t i = 0; i < now.n; i++)
		log_warn("%s", now.what[i]);
	if (!now.degraded && d->foreign.degraded)
		log_info("no other firewall drops the guests' traffic any more");
	d->foreign = now;
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
	/* xenstore lost: the vifs stay as they were, and so do their elements. */
	dyn.vifs = d->hotplug ? vifs : d->vifs_away;
	dyn.n_vifs = d->hotplug ? n : d->n_vifs_away;
	xn_nft_take_install_us(d->engine->nft);
	r = xn_engine_apply(d->engine, p, &dyn, report, err);
	long install_us = xn_nft_take_install_us(d->engine->nft);
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

static void notify_ready(const struct daemon *d)
{
	char status[400];

	if (d->profile)
		snprintf(status, sizeof(status), "%s mode, profile %s%s%s",
			 xn_mode_name(d->profile->mode),
			 d->profile_source[0] ? d->profile_source : d->profile_path,
			 d->last_error ? "; last error: " : "", d->last_error ? d->last_error : "");
	else
		snprintf(status, sizeof(status), "no profile applied");
	/* One line: a newline would start another assignment. */
	for (char *c = status; *c; c++)
		if (*c == '\n')
			*c = ' ';
	xn_notify("READY=1\nSTATUS=%s", status);
}

/* Load a profile from a copy of path in the state directory (path is read
 * once), its errors named after path. The copy becomes the profile in
 * force in apply_profile, once applied. */
static bool is_the_copy(const struct daemon *d, const char *path)
{
	char copy[PATH_MAX];

	return xn_profile_copy_path(d->state_dir, copy) == 0 && strcmp(path, copy) == 0;
}

static int load_profile(struct daemon *d, const char *path, struct xn_profile **p,
			struct xn_diag *diag, struct xn_buf *out)
{
	char staged[PATH_MAX], copy[PATH_MAX];
	struct xn_buf err = { 0 };
	size_t n;
	int r;

	if (is_the_copy(d, path))
		return xn_profile_load(path, p, diag); /* at start, or its source is gone */
	/* No copy can be kept in a state directory that cannot be written
	 * (read-only, full): the profile is read where it is, and the
	 * changes it needs recorded are refused later, not the start. */
	check_state_dir(d);
	if (d->state_error) {
		r = xn_profile_load(path, p, diag);
		/* The copy in force says the same: it is the profile, as the
		 * ledger records it. */
		if (r >= 0 && xn_profile_copy_path(d->state_dir, copy) == 0 &&
		    xn_files_equal(path, copy)) {
			char *named = strdup(copy);
			if (named) {
				free((*p)->path);
				(*p)->path = named;
			}
		}
		return r;
	}
	r = xn_profile_copy_stage(d->state_dir, path, staged, &err);
	if (r < 0) {
		xn_buf_printf(out, "%s\n", xn_buf_str(&err));
		log_err("%s", xn_buf_str(&err));
		xn_buf_free(&err);
		return r;
	}
	r = xn_profile_load(staged, p, diag);
	n = strlen(staged);
	for (size_t i = 0; i < diag->n; i++) {
		char *line = diag->lines[i], *named;
		if (strncmp(line, staged, n) != 0 || asprintf(&named, "%s%s", path, line + n) < 0)
			continue;
		free(line);
		diag->lines[i] = named;
	}
	if (r >= 0) {
		/* What the ledger records: the copy, once it is committed. */
		char *named = xn_profile_copy_path(d->state_dir, copy) == 0 ? strdup(copy) : NULL;
		if (!named) {
			xn_profile_free(*p);
			*p = NULL;
			r = -ENOMEM;
		} else {
			free((*p)->path);
			(*p)->path = named;
		}
	}
	if (r < 0)
		unlink(staged);
	return r;
}

/* After an apply: its copy is the profile in force from now on (or,
 * when it failed, the staged copy goes). */
static void keep_copy(struct daemon *d, const char *path, bool applied)
{
	char staged[PATH_MAX];
	int r;

	if (is_the_copy(d, path))
		return;
	if (d->state_error)
		return; /* no copy was staged (load_profile); the problem is told */
	snprintf(staged, sizeof(staged), "%s/profile.conf.new", d->state_dir);
	if (!applied) {
		unlink(staged);
		return;
	}
	r = xn_profile_copy_commit(d->state_dir, staged, path);
	if (r < 0)
		log_err("keeping a copy of %s in %s: %s; a restart applies the previous copy",
			path, d->state_dir, strerror(-r));
	if (path != d->profile_source) /* a reload passes it */
		snprintf(d->profile_source, sizeof(d->profile_source), "%s", path);
}

/* Load, check and apply a profile. On a bad profile nothing changes; on a
 * kernel failure half way the previous profile is applied again. */
/* An error about a line of the copy the profile was read from names the
 * file it came from, where the administrator edits it. */
static void name_source(struct xn_buf *err, const char *copy, const char *source)
{
	const char *e = xn_buf_str(err);
	size_t n = strlen(copy);
	struct xn_buf named = { 0 };

	if (!e || strcmp(copy, source) == 0 || strncmp(e, copy, n) != 0 || e[n] != ':')
		return;
	xn_buf_printf(&named, "%s%s", source, e + n);
	xn_buf_free(err);
	*err = named;
}

static int apply_profile(struct daemon *d, const char *path, struct xn_buf *out)
{
	struct xn_profile *p = NULL;
	struct xn_diag diag = { 0 };
	struct xn_buf report = { 0 }, err = { 0 };
	int r;

	r = load_profile(d, path, &p, &diag, out);
	if (r < 0) {
		struct xn_buf lines = { 0 };
		for (size_t i = 0; i < diag.n; i++) {
			xn_buf_printf(out, "%s\n", diag.lines[i]);
			xn_buf_printf(&lines, "\n%s", diag.lines[i]);
		}
		xn_buf_printf(out, "%s: profile rejected, nothing changed\n", path);
		/* One message: the rate limit counts it once, whatever its errors. */
		log_err("%s: profile rejected (%s), nothing changed%s", path, d->who,
			xn_buf_str(&lines) ? xn_buf_str(&lines) : "");
		xn_buf_free(&lines);
		xn_diag_free(&diag);
		return r;
	}
	r = engine_apply(d, p, &report, &err);
	if (r < 0) {
		name_source(&err, p->path, path);
		xn_buf_printf(out, "applying %s failed: %s\n", path, xn_buf_str(&err));
		set_last_error(d, xn_buf_str(&err));
		log_err("applying %s (%s) failed: %s", path, d->who, xn_buf_str(&err));
		if (d->profile) {
			struct xn_buf err2 = { 0 };
			int r2 = engine_apply(d, d->profile, NULL, &err2);
			if (r2 < 0)
				log_err("restoring %s failed too: %s", d->profile->path,
					xn_buf_str(&err2));
			else {
				xn_buf_printf(out, "restored the previous profile %s\n",
					      d->profile->path);
				log_info("restored the previous profile %s", d->profile->path);
			}
			xn_buf_free(&err2);
		}
		keep_copy(d, path, false);
		xn_profile_free(p);
	} else {
		size_t steps = 0;
		for (const char *c = xn_buf_str(&report); c && *c; c++)
			steps += *c == '\n';
		log_info("applied %s (%s mode, %s): %zu changes%s%s", path, xn_mode_name(p->mode),
			 d->who, steps, steps ? "\n" : "", steps ? xn_buf_str(&report) : "");
		xn_buf_printf(out, "applied %s: %zu changes\n%s", path, steps,
			      xn_buf_str(&report));
		free(d->last_warnings);
		d->last_warnings = NULL;
		if (d->engine->warnings.len) {
			xn_buf_printf(out, "%s", xn_buf_str(&d->engine->warnings));
			log_warn("applying %s: %s", path, xn_buf_str(&d->engine->warnings));
			d->last_warnings = strdup(xn_buf_str(&d->engine->warnings));
		}
		xn_profile_free(d->profile);
		d->profile = p;
		if (d->hotplug)
			xn_hotplug_set_profile(d->hotplug, p);
		keep_copy(d, path, true);
		snprintf(d->profile_path, sizeof(d->profile_path), "%s", p->path);
		set_last_error(d, NULL);
		check_foreign(d);
	}
	xn_buf_free(&report);
	xn_buf_free(&err);
	return r;
}

/* A reload reads the file the profile in force was applied from, where
 * the administrator edits it; if that is gone, the copy. */
static const char *reload_path(struct daemon *d)
{
	if (!d->profile_source[0] || access(d->profile_source, F_OK) == 0)
		return d->profile_source[0] ? d->profile_source : d->profile_path;
	log_warn("%s, which the profile in force came from, is gone: reloading its copy %s",
		 d->profile_source, d->profile_path);
	return d->profile_path;
}

/* A profile applied while running (SIGHUP, apply, reload): systemd is told,
 * so that `systemctl reload` returns once it is done. */
static int reload_profile(struct daemon *d, const char *path, struct xn_buf *out)
{
	int r;

	xn_notify("RELOADING=1\nSTATUS=applying %s", path);
	r = apply_profile(d, path, out);
	notify_ready(d);
	return r;
}

static void status_foreign(const struct xn_foreign *f, struct xn_json *json, struct xn_buf *out)
{
	if (json) {
		xn_json_bool(json, "degraded", f->degraded);
		xn_json_array_begin(json, "foreign_firewalls");
		for (size_t i = 0; i < f->n; i++)
			xn_json_string(json, NULL, f->what[i]);
		xn_json_array_end(json);
		return;
	}
	xn_buf_printf(out, "firewalls: %s\n", f->degraded ? "DEGRADED, guests' traffic is dropped"
						  : f->n ? "warning" : "ok");
	for (size_t i = 0; i < f->n; i++)
		xn_buf_printf(out, "  %s\n", f->what[i]);
}

static void status_vifs(struct xn_json *json, struct xn_buf *out, void *userdata)
{
	struct daemon *d = userdata;

	struct xn_nft_vif_drops *drops = NULL;
	size_t n_drops = 0;

	status_foreign(&d->foreign, json, out);
	if (json)
		xn_json_bool(json, "xenstore", d->hotplug != NULL);
	else if (!d->hotplug)
		xn_buf_printf(out, "xenstore: not connected; vif hotplug starts when it is\n");
	if (d->hotplug && xn_nft_vif_drops(d->engine->nft, &drops, &n_drops) < 0)
		n_drops = 0; /* the table is being rebuilt: no counters this time */
	xn_status_vifs(d->hotplug, drops, n_drops, json, out);
	free(drops);
}

static void render_status(struct daemon *d, bool json, struct xn_buf *out)
{
	struct xn_snapshot *snap = NULL;
	struct xn_nft_rule_info *rules = NULL;
	struct xn_status_input in = { .pid = getpid(), .profile = d->profile,
				      .ledger = &d->engine->ledger,
				      .last_error = d->last_error, .state_dir = d->state_dir,
				      .last_warnings = d->last_warnings,
				      .profile_source = d->profile_source };
	int r;

	check_state_dir(d);
	in.state_error = d->state_error;

	r = xn_snapshot_take(d->engine->nl, &snap);
	if (r < 0) {
		xn_buf_printf(out, "reading kernel state: %s\n", strerror(-r));
		return;
	}
	in.snapshot = snap;
	in.nft_error = xn_nft_list_rules(d->engine->nft, &rules, &in.n_rules);
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

/* A map|forward add waiting for the verdict of its ARP probes; the loop
 * serves others meanwhile. */
struct probe_wait {
	struct probe_wait *next;
	int fd;
	bool fwd;
	struct xn_mapping m;
	struct xn_forward f;
	char name[XN_MAPPING_NAME_MAX + 1];
	char what[320]; /* the request and who asked, for the log */
};

static int prober_for(struct daemon *d, int ifindex)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int r;

	if (d->prober && xn_arp_prober_ifindex(d->prober) == ifindex)
		return 0;
	if (d->prober) /* the uplink changed while probing: rare */
		return -EBUSY;
	r = xn_arp_prober_open(ifindex, &d->prober);
	if (r < 0)
		return r;
	ev.data.fd = xn_arp_prober_fd(d->prober);
	if (epoll_ctl(d->efd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
		r = -errno;
		xn_arp_prober_close(d->prober);
		d->prober = NULL;
	}
	return r;
}

static void schedule_purges(struct daemon *d);

static void probe_done(void *ctx, void *cookie, bool in_use, const uint8_t mac[6])
{
	struct daemon *d = ctx;
	struct probe_wait *w = cookie, **pp;
	struct xn_buf out = { 0 };
	char a[XN_ADDR_STRLEN];
	int r;

	for (pp = &d->probe_waits; *pp != w; pp = &(*pp)->next)
		;
	*pp = w->next;
	if (in_use) {
		xn_buf_printf(&out, "refused: public address %s is in use on %s: %02x:%02x:%02x:%02x:%02x:%02x answered ARP for it (--force takes it anyway)\n",
			      xn_addr_format(w->fwd ? &w->f.public_addr : &w->m.public_addr, false, a),
			      d->profile ? d->profile->nat_uplink : "the uplink",
			      mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		r = -EADDRINUSE;
	} else {
		r = w->fwd ? xn_publicip_fwd_add(d->publicip, &w->f, &out)
			   : xn_publicip_map_add(d->publicip, &w->m, &out);
	}
	if (r >= 0)
		log_info("%s: done", w->what);
	else
		log_warn("%s: not done: %.*s", w->what, (int)strcspn(xn_buf_str(&out) ? xn_buf_str(&out) : "", "\n"),
			 xn_buf_str(&out) ? xn_buf_str(&out) : "");
	r = xn_ctl_write_reply(w->fd, r, xn_buf_str(&out) ? xn_buf_str(&out) : "out of memory\n");
	if (r < 0)
		log_warn("control: reply not delivered: %s", strerror(-r));
	close(w->fd);
	xn_buf_free(&out);
	free(w);
	schedule_purges(d);
}

static void run_prober(struct daemon *d)
{
	xn_arp_prober_run(d->prober, probe_done, d);
	if (xn_arp_prober_timeout_ms(d->prober) < 0) {
		epoll_ctl(d->efd, EPOLL_CTL_DEL, xn_arp_prober_fd(d->prober), NULL);
		xn_arp_prober_close(d->prober);
		d->prober = NULL;
	}
}

/* Returns 1 when the request waits for its probes (fd kept). */
static int probe_then_add(struct daemon *d, const struct xn_mapping *m, const struct xn_forward *f,
			  int ifindex, int fd, struct xn_buf *out)
{
	const struct xn_addr *pub = m ? &m->public_addr : &f->public_addr;
	const char *name = m ? m->name : f->name;
	struct probe_wait *w = calloc(1, sizeof(*w));
	int r = w ? prober_for(d, ifindex) : -ENOMEM;

	if (r >= 0)
		r = xn_arp_prober_add(d->prober, pub->v4, w);
	if (r == -EOPNOTSUPP) { /* no ARP on this link: nothing to ask */
		free(w);
		return m ? xn_publicip_map_add(d->publicip, m, out) : xn_publicip_fwd_add(d->publicip, f, out);
	}
	if (r < 0) {
		xn_buf_printf(out, "probing whether %s is in use on the uplink: %s\n",
			      xn_addr_format(pub, false, (char[XN_ADDR_STRLEN]){ 0 }), strerror(-r));
		free(w);
		return r;
	}
	*w = (struct probe_wait){ .next = d->probe_waits, .fd = fd, .fwd = !m };
	if (m)
		w->m = *m;
	else
		w->f = *f;
	if (name) {
		snprintf(w->name, sizeof(w->name), "%s", name);
		*(m ? &w->m.name : &w->f.name) = w->name;
	}
	d->probe_waits = w;
	return 1;
}

/* An address new to Dom0 on the uplink's own link is probed first (as
 * DAD does): another host may be using it (the LAN's router). */
static int mapping_add(struct daemon *d, const struct xn_mapping *m, const struct xn_forward *f,
		       bool force, int fd, struct xn_buf *out)
{
	const struct xn_addr *pub = m ? &m->public_addr : &f->public_addr;
	int ifindex = 0, r = 0;

	r = xn_publicip_needs_probe(d->publicip, pub, &ifindex, out);
	if (force && r > 0)
		r = 0;
	if (r > 0 && xn_publicip_check(d->publicip, m, f, out) < 0)
		return -EINVAL; /* refused now, not after the probes */
	if (r > 0)
		return probe_then_add(d, m, f, ifindex, fd, out);
	if (r < 0)
		return r;
	return m ? xn_publicip_map_add(d->publicip, m, out) : xn_publicip_fwd_add(d->publicip, f, out);
}

static int handle_mapping(struct daemon *d, char **w, size_t n, int fd, struct xn_buf *out)
{
	bool fwd = strcmp(w[0], "forward") == 0, force = false;
	const char *name = NULL;

	if (strcmp(w[1], "add") == 0 && n >= 3 && strcmp(w[2], "--force") == 0) {
		force = true;
		memmove(&w[2], &w[3], (n - 3) * sizeof(*w));
		n--;
	}

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
			return mapping_add(d, &m, NULL, force, fd, out);
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
		return mapping_add(d, NULL, &f, force, fd, out);
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

/* `xennet down`: undo everything the ledger holds (bridges, moved
 * addresses and routes, sysctls, the nftables tables, public addresses),
 * then exit; a start applies a profile again. Refused, changing nothing,
 * while mappings made with the CLI exist (they would be lost). */
static int take_down(struct daemon *d, struct xn_buf *out)
{
	struct xn_buf report = { 0 }, err = { 0 };
	size_t steps = 0;
	int r;

	r = engine_apply(d, NULL, &report, &err);
	if (r < 0) {
		xn_buf_printf(out, "down: %s\n", xn_buf_str(&err));
		log_err("down (%s) failed: %s", d->who, xn_buf_str(&err));
		set_last_error(d, xn_buf_str(&err));
	} else {
		for (const char *c = xn_buf_str(&report); c && *c; c++)
			steps += *c == '\n';
		log_info("down (%s): %zu changes, nothing of xennet's is left; exiting%s%s", d->who,
			 steps, steps ? "\n" : "", steps ? xn_buf_str(&report) : "");
		xn_buf_printf(out, "removed everything xennet made: %zu changes\n%sxennetd exits\n",
			      steps, xn_buf_str(&report) ? xn_buf_str(&report) : "");
		d->quit = true; /* with its profile, which the hotplug code still points to */
	}
	xn_buf_free(&report);
	xn_buf_free(&err);
	return r;
}

/* Every change an operator asks for is logged, with who asked; one that
 * waits for its ARP probes, when they are done (probe_done). */
static void log_mapping_change(struct daemon *d, char **w, size_t n, int r, const char *reply)
{
	char what[256];
	size_t len = 0;

	for (size_t i = 0; i < n && len < sizeof(what); i++)
		len += (size_t)snprintf(what + len, sizeof(what) - len, "%s%s", i ? " " : "", w[i]);
	if (r == 1) {
		snprintf(d->probe_waits->what, sizeof(d->probe_waits->what), "%s (%s)", what, d->who);
		return;
	}
	if (r >= 0)
		log_info("%s (%s): done", what, d->who);
	else
		log_warn("%s (%s): not done: %.*s", what, d->who, (int)strcspn(reply, "\n"), reply);
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
		check_foreign(d); /* what status says is of now */
		render_status(d, json, out);
		return d->foreign.degraded ? -XN_STATUS_DEGRADED : 0;
	}
	if (strcmp(w[0], "inventory") == 0 && n <= 2) {
		bool json = n == 2 && strcmp(w[1], "json") == 0;
		if (n == 2 && !json) {
			xn_buf_printf(out, "inventory: unknown argument \"%s\"\n", w[1]);
			return -EINVAL;
		}
		xn_inventory_render(d->hotplug, d->publicip ? xn_publicip_all(d->publicip) : NULL,
				    json, out);
		return 0;
	}
	if (strcmp(w[0], "apply") == 0 && n == 2) {
		if (w[1][0] != '/') {
			xn_buf_printf(out, "apply: the profile path must be absolute\n");
			return -EINVAL;
		}
		return reload_profile(d, w[1], out);
	}
	if (strcmp(w[0], "down") == 0 && n == 1)
		return take_down(d, out);
	if (strcmp(w[0], "reload") == 0 && n == 1)
		return reload_profile(d, reload_path(d), out);
	if ((strcmp(w[0], "map") == 0 || strcmp(w[0], "forward") == 0) && n >= 2) {
		size_t before = out->len;
		int r = handle_mapping(d, w, n, fd, out);
		if (r < 0)
			check_state_dir(d);
		if (strcmp(w[1], "list") != 0)
			log_mapping_change(d, w, n, r, xn_buf_str(out) ? xn_buf_str(out) + before : "");
		return r;
	}
	if (strcmp(w[0], "hotplug") == 0 && (n == 4 || n == 5)) {
		unsigned domid, devid;
		unsigned long sent = 0; /* when the script sent it (CLOCK_MONOTONIC ms) */
		int status = 0;
		if (parse_id(w[2], 0x7fef, &domid) < 0 || parse_id(w[3], 65535, &devid) < 0) {
			xn_buf_printf(out, "hotplug: bad domid/devid \"%s/%s\"\n", w[2], w[3]);
			return -EINVAL;
		}
		if (n == 5 && xn_parse_uint(w[4], 0, INT64_MAX, &sent) < 0) {
			xn_buf_printf(out, "hotplug: bad time \"%s\"\n", w[4]);
			return -EINVAL;
		}
		if (!d->hotplug) {
			xn_buf_printf(out, "xennetd is not connected to xenstore\n");
			return -ENOTCONN;
		}
		if (xn_hotplug_request(d->hotplug, w[1], domid, devid, (int64_t)sent, fd, &status,
				       out) == 0)
			return 1;
		return -status;
	}
	xn_buf_printf(out, "unknown request \"%s\" with %zu arguments\n", w[0], n - 1);
	return -EINVAL;
}

/* Requests are answered in batches: all those already complete (500
 * vif-xennet started at once) are read first, then answered, so that
 * per-batch work (one round trip to xenstore) is done once. */
#define CONTROL_BATCH 32

/* "requested by uid U pid P" of the client on fd, for the log. */
static void note_peer(struct daemon *d, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		snprintf(d->who, sizeof(d->who), "requested by uid %u pid %d",
			 (unsigned)cred.uid, (int)cred.pid);
	else
		snprintf(d->who, sizeof(d->who), "requested by an unknown client");
}

/* Answers q and takes it. */
static void answer_request(struct daemon *d, struct xn_ctl_request *q)
{
	struct xn_buf out = { 0 };
	int r = q->r;

	if (r < 0) {
		log_warn("control: bad request: %s", strerror(-r));
		xn_buf_printf(&out, "bad request: %s\n", strerror(-r));
	} else {
		note_peer(d, q->fd);
		r = handle_request(d, q->words, q->n, q->fd, &out);
		if (r == 1) { /* answered later: the fd is handed on */
			q->fd = -1;
			xn_ctl_request_free(q);
			xn_buf_free(&out);
			return;
		}
	}
	r = xn_ctl_server_reply(d->control, q, r, xn_buf_str(&out) ? xn_buf_str(&out) : "out of memory\n");
	if (r < 0)
		log_warn("control: reply not delivered: %s", strerror(-r));
	xn_buf_free(&out);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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

/* Clients drop off without a complete request (idle, or too many
 * half-sent ones): said once per sweep, not once per client. */
static void control_counts(struct daemon *d)
{
	unsigned refused, expired, abandoned;

	xn_ctl_server_counts(d->control, &refused, &expired, &abandoned);
	/* One message per client: the log's rate limit says how many it
	 * left out, over every sweep. */
	while (refused-- > 0)
		log_warn("control: refused a client that is not root");
	if (expired)
		log_warn("control: dropped %u client%s that sent no complete request in time",
			 expired, expired == 1 ? "" : "s");
	if (abandoned)
		log_warn("control: dropped %u client%s that did not read %s reply in time",
			 abandoned, abandoned == 1 ? "" : "s", abandoned == 1 ? "its" : "their");
}

/* Work that the clients need not wait for. */
static void schedule_purges(struct daemon *d)
{
	int64_t now = mono_ms();

	if (!xn_publicip_purge_pending(d->publicip))
		return;
	if (!d->purge_first)
		d->purge_first = now;
	d->purge_due = now + PURGE_QUIET_MS;
	if (d->purge_due > d->purge_first + PURGE_LATEST_MS)
		d->purge_due = d->purge_first + PURGE_LATEST_MS;
}

static void on_control(struct daemon *d)
{
	struct xn_ctl_request *batch[CONTROL_BATCH];
	size_t n;
	int err;

	do {
		n = xn_ctl_server_take(d->control, batch, CONTROL_BATCH, &err);
		if (err < 0)
			log_err("control: accept: %s", strerror(-err));
		for (size_t i = 0; i < n; i++)
			answer_request(d, batch[i]);
		if (d->hotplug)
			xn_hotplug_end_batch(d->hotplug);
		if (n)
			schedule_purges(d);
	} while (n == CONTROL_BATCH);
	control_counts(d);
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
		d->resync_event_us = mono_us();
	}
}

/* A bridge made anew (someone deleted it): its vifs are still there,
 * connected, but no longer its ports. */
static void rejoin_bridges(struct daemon *d, const unsigned *before)
{
	for (size_t i = 0; d->hotplug && i < d->profile->n_bridges && i < 8; i++) {
		const char *name = d->profile->bridges[i].name;
		struct xn_buf err = { 0 };
		unsigned now = if_nametoindex(name);
		int n;

		if (!now || now == before[i])
			continue;
		n = xn_hotplug_reattach(d->hotplug, name, &err);
		if (n > 0)
			log_info("bridge %s made again: %d vifs joined it again", name, n);
		if (err.len)
			log_err("bridge %s made again: a vif could not join it: %s", name,
				xn_buf_str(&err));
		xn_buf_free(&err);
	}
}

static void resync(struct daemon *d)
{
	struct xn_buf report = { 0 }, err = { 0 };
	unsigned before[8] = { 0 };
	int64_t since = d->resync_event_us ? d->resync_event_us : mono_us();
	int r;

	d->resync = false;
	d->resync_event_us = 0;
	if (!d->profile)
		return;
	for (size_t i = 0; i < d->profile->n_bridges && i < XN_ARRAY_SIZE(before); i++)
		before[i] = if_nametoindex(d->profile->bridges[i].name);
	r = engine_apply(d, d->profile, &report, &err);
	rejoin_bridges(d, before);
	if (r < 0) {
		log_err("converging to %s: %s", d->profile->path, xn_buf_str(&err));
		set_last_error(d, xn_buf_str(&err));
	} else if (report.len) {
		log_info("repaired drift from %s, %.3f ms after the event:\n%s", d->profile->path,
			 (double)(mono_us() - since) / 1000, xn_buf_str(&report));
	}
	xn_buf_free(&report);
	xn_buf_free(&err);
}

/* An event (nftables, netconf) asks for a check: the heal time logged is
 * counted from the first one. elems: the sets' elements too; sets: these
 * NAT maps too (XN_NFT_SET_*). */
static void drift_event(struct daemon *d, bool elems, unsigned sets)
{
	if (!d->drift_event_us)
		d->drift_event_us = mono_us();
	d->drift = true;
	d->drift_elems |= elems;
	d->drift_sets |= sets;
}

static void drift_all(struct daemon *d)
{
	d->drift = d->drift_elems = true;
	d->drift_sets = XN_NFT_SETS_ALL;
}

static void check_sysctls(struct daemon *d, int64_t since, const char *after)
{
	struct xn_buf which = { 0 };
	int r = xn_drift_sysctls(d->profile, true, &which);

	if (r > 0)
		log_warn("sysctl %s was changed by someone: put back %.3f ms after %s",
			 xn_buf_str(&which), (double)(mono_us() - since) / 1000, after);
	if (r < 0) {
		log_err("writing back the sysctls %s: %s; converging again", xn_buf_str(&which),
			strerror(-r));
		resync(d);
	}
	xn_buf_free(&which);
}

/* Sysctls, then elements of xennet's sets and maps, put back as wanted.
 * The nftables generation is read first: a commit made during the check
 * is checked again next time. */
static void check_drift(struct daemon *d)
{
	struct xn_drift_report rep;
	struct xn_buf err = { 0 };
	bool by_event = d->drift_event_us != 0;
	unsigned sets = d->drift_sets;
	int64_t since = by_event ? d->drift_event_us : mono_us();
	const char *after = by_event ? "the event" : "the check began";
	uint32_t gen;
	int r;

	d->drift = false;
	d->drift_event_us = 0;
	if (!d->profile)
		return;
	check_sysctls(d, since, after);
	if (!d->drift_elems)
		return;
	d->drift_elems = false;
	d->drift_sets = 0;
	d->drift_gen_known = xn_nft_generation(d->engine->nft, &gen) >= 0;
	d->drift_gen = gen;
	r = xn_drift_elements(d->engine->nft, d->profile, d->hotplug, d->publicip, sets, &rep, &err);
	double ms = (double)(mono_us() - since) / 1000;
	if (r < 0)
		log_err("checking the elements of xennet's sets and maps: %s",
			err.len ? xn_buf_str(&err) : strerror(-r));
	if (rep.antispoof)
		log_warn("anti-spoofing: %d set elements were changed by someone: put back %.3f ms after %s",
			 rep.antispoof, ms, after);
	if (rep.publics)
		log_warn("public IP mappings: %zu public addresses' map elements were changed by someone: put back %.3f ms after %s",
			 rep.publics, ms, after);
	xn_drift_purge(d->conntrack, &rep);
	xn_buf_free(&err);
}

/* Once a second: the sysctls (a few reads), and the elements if
 * nftables committed anything since the last check (one request). */
static void periodic_drift(struct daemon *d)
{
	uint32_t gen;

	if (mono_ms() < d->drift_next)
		return;
	d->drift_next = mono_ms() + 1000;
	if (!d->drift_gen_known || xn_nft_generation(d->engine->nft, &gen) < 0 || gen != d->drift_gen)
		drift_all(d);
	else if (xn_drift_sysctls(d->profile, false, NULL) > 0)
		d->drift = true;
}

static void on_nft_events(struct daemon *d)
{
	int m = xn_nft_monitor_drain(d->engine->nft);
	unsigned sets = xn_nft_monitor_take_sets(d->engine->nft);

	if (m == 1)
		log_warn("someone else changed xennet's nftables tables: putting them back");
	else if (m == 2)
		log_debug("nftables events lost: checking xennet's tables");
	if (m == 1 || m == 2) {
		d->resync = true;
		d->resync_event_us = mono_us();
	}
	/* Rules changed or events lost: every map; elements: those touched
	 * (none for the anti-spoofing sets alone). */
	if (m > 0)
		drift_event(d, true, m == 3 ? sets : m == 4 ? 0 : XN_NFT_SETS_ALL);
}

static void on_netconf(void *userdata)
{
	drift_event(userdata, false, 0);
}

/* xenstored may start after us (or restart): keep trying, quietly after
 * the first complaint. */
static void save_vifs(struct daemon *d)
{
	int r;

	if (!d->hotplug)
		return;
	r = xn_hotplug_save(d->hotplug, d->vifs_path);
	if (r < 0) {
		int known = d->state_error;
		check_state_dir(d);
		if (!known && !d->state_error)
			log_warn("saving %s: %s (a restart reads every vif from xenstore)",
				 d->vifs_path, strerror(-r));
	}
}

/* One line per vif event, with what an operator looks for: the vif,
 * its device, its domain, and why it failed. */
static void log_vif_event(const struct xn_vif_report *r, void *userdata)
{
	static const char *const what[] = {
		[XN_VIF_CONNECTED] = "connected",
		[XN_VIF_RECONFIGURED] = "backend keys changed, configuring it again",
		[XN_VIF_ADOPTED] = "adopted as the previous run left it",
		[XN_VIF_OFFLINE] = "offline",
		[XN_VIF_FAILED] = "failed",
		[XN_VIF_REQUEST_DROPPED] = "request not carried out",
		[XN_VIF_REPAIRED] = "taken off its bridge, down or out of its device group by someone: put back",
	};
	bool bad = r->event == XN_VIF_FAILED;

	(void)userdata;
	xn_log_each(bad ? LOG_ERR : r->event == XN_VIF_REQUEST_DROPPED ? LOG_WARNING : LOG_INFO,
	       "vif %u/%u%s (%s, domain %s): %s%s%s", r->domid, r->devid, r->emu ? " emu" : "",
	       r->device, r->domain ? r->domain : "?", what[r->event], r->detail ? ": " : "",
	       r->detail ? r->detail : "");
}

/* Connecting again: soon at first (xenstored restarting), then every
 * 5 s at most. */
static void retry_xenstore_later(struct daemon *d)
{
	d->xenstore_backoff = d->xenstore_backoff ? d->xenstore_backoff * 2 : 100;
	if (d->xenstore_backoff > 5000)
		d->xenstore_backoff = 5000;
	d->xenstore_retry = mono_ms() + d->xenstore_backoff;
}

/* xenstored went away: what the vifs are is saved, the connection closed
 * (the scripts waiting are told), and a new one is made. */
static void reconnect_xenstore(struct daemon *d)
{
	log_err("lost the connection to xenstore: vif hotplug stops until it is back (reconnecting)");
	save_vifs(d);
	if (xn_hotplug_nft_vifs(d->hotplug, &d->vifs_away, &d->n_vifs_away) < 0)
		d->n_vifs_away = 0;
	epoll_ctl(d->efd, EPOLL_CTL_DEL, xn_hotplug_fd(d->hotplug), NULL);
	xn_hotplug_close(d->hotplug);
	d->hotplug = NULL;
	d->xenstore_backoff = 0;
	retry_xenstore_later(d);
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
			log_warn("%s; vif hotplug waits for xenstore (retrying)",
				 xn_buf_str(&err));
		complained = true;
		retry_xenstore_later(d);
		xn_buf_free(&err);
		return;
	}
	ev.data.fd = xn_hotplug_fd(d->hotplug);
	if (epoll_ctl(d->efd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
		log_err("epoll_ctl: %m");
		xn_hotplug_close(d->hotplug);
		d->hotplug = NULL;
		retry_xenstore_later(d);
		return;
	}
	complained = false;
	d->xenstore_backoff = 0;
	free(d->vifs_away);
	d->vifs_away = NULL;
	d->n_vifs_away = 0;
	xn_hotplug_set_reporter(d->hotplug, log_vif_event, NULL);
	xn_hotplug_set_profile(d->hotplug, d->profile);
	log_info("connected to xenstore, watching backend/vif%s",
		 xn_hotplug_events_ordered(d->hotplug) ? "" :
		 " (this xenstored may hold watch events back: backend keys are read at each request)");
	xn_hotplug_start(d->hotplug, d->vifs_path, &adopted, &looked_up);
	if (adopted || looked_up)
		log_info("vifs at start: %zu adopted as saved in %s, %zu looked up in xenstore",
			 adopted, d->vifs_path, looked_up);
	xn_hotplug_purge_vanished(d->hotplug);
	drift_all(d); /* and elements someone added meanwhile */
}

static int on_signal(struct daemon *d, int sfd)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			struct xn_buf out = { 0 };
			snprintf(d->who, sizeof(d->who), "SIGHUP from pid %u", si.ssi_pid);
			if (reload_profile(d, reload_path(d), &out) < 0)
				log_err("reload failed, the previous state stays");
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
	/* A read-only or full state directory: the lock without the pid
	 * (the file read-only, or the directory itself if it has none). */
	if (fd < 0 && errno != ENOENT && errno != ENOTDIR)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
		"  -V, --version         print the version\n",
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

	while ((c = getopt_long(argc, argv, "p:s:d:fvhV", opts, NULL)) != -1) {
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
	check_state_dir(&d);
	r = xn_engine_open(d.state_dir, &d.engine, &err);
	if (r >= 0)
		xn_nft_lend(d.engine->nft);
	if (r >= 0)
		r = xn_conntrack_new(&d.conntrack);
	if (r >= 0)
		r = xn_publicip_open(d.state_dir, d.engine->nl, d.engine->nft, d.conntrack,
				     &d.publicip, &err);
	if (r >= 0)
		xn_publicip_on_full(d.publicip, grow_nat_maps, &d);
	if (r < 0) {
		log_err("%s", xn_buf_str(&err));
		goto out;
	}
	/* Without --profile, keep the profile last applied (by `xennet
	 * apply`), so a restart does not silently switch back. */
	/* A relative --profile is made absolute now: as a daemon xennetd
	 * works from /, and a reload must find the same file. */
	if (profile_arg && profile_arg[0] != '/') {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)) ||
		    (size_t)snprintf(d.profile_path, sizeof(d.profile_path), "%s/%s", cwd, profile_arg) >=
			    sizeof(d.profile_path)) {
			log_err("--profile %s: the path is too long", profile_arg);
			goto out;
		}
	} else if (profile_arg) {
		snprintf(d.profile_path, sizeof(d.profile_path), "%s", profile_arg);
	}
	else if (d.engine->ledger.profile[0])
		snprintf(d.profile_path, sizeof(d.profile_path), "%s", d.engine->ledger.profile);
	else
		snprintf(d.profile_path, sizeof(d.profile_path), "%s", XN_DEFAULT_PROFILE);
	if (!profile_arg && is_the_copy(&d, d.profile_path))
		xn_profile_copy_source(d.state_dir, d.profile_source);

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Converge before taking requests: a restart reconciles with what
	 * the kernel has, and changes nothing when nothing drifted. */
	snprintf(d.who, sizeof(d.who), "at start");
	if (!profile_arg && access(d.profile_path, F_OK) < 0 && errno == ENOENT) {
		log_err("no profile: %s does not exist; copy one of %s to it and edit it, or start with --profile FILE",
			d.profile_path, XN_EXAMPLES_DIR);
		goto out;
	}
	r = apply_profile(&d, d.profile_path, &out); /* it logs what it did */
	if (r < 0)
		goto out;

	if (dirname_of(d.socket_path, sockdir) == 0)
		mkdir_p(sockdir, 0755);
	r = xn_ctl_server_open(d.socket_path, &d.control);
	if (r < 0) {
		log_err("control socket %s: %s", d.socket_path,
			r == -EADDRINUSE ? "another daemon answers there" : strerror(-r));
		goto out;
	}
	lfd = xn_ctl_server_fd(d.control);
	r = xn_nl_events_open(&d.events, on_link_event, &d);
	if (r < 0) {
		log_err("link events: %s", strerror(-r));
		goto out;
	}
	xn_nl_events_on_netconf(d.events, on_netconf);
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
	nft_fd = xn_nft_monitor_open(d.engine->nft);
	if (nft_fd < 0) {
		log_warn("cannot watch nftables for changes by others: %s", strerror(-nft_fd));
	} else {
		ev.data.fd = nft_fd;
		if (epoll_ctl(efd, EPOLL_CTL_ADD, nft_fd, &ev) < 0)
			goto epoll_fail;
	}
	d.efd = efd;
	connect_xenstore(&d);
	log_info("ready: profile %s%s%s%s, control socket %s", d.profile_path,
		 d.profile_source[0] ? " (a copy of " : "", d.profile_source,
		 d.profile_source[0] ? ")" : "", d.socket_path);
	notify_ready(&d);
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
		wake_by(&timeout, d.drift_next);
		if (xn_ctl_server_timeout_ms(d.control) >= 0)
			wake_by(&timeout, mono_ms() + xn_ctl_server_timeout_ms(d.control));
		if (xn_log_flush_due())
			wake_by(&timeout, xn_log_flush_due());
		if (d.prober && xn_arp_prober_timeout_ms(d.prober) >= 0)
			wake_by(&timeout, mono_ms() + xn_arp_prober_timeout_ms(d.prober));
		wake_by(&timeout, d.foreign_due);
		n = epoll_wait(efd, evs, 8, timeout);
		xn_log_flush(false);
		if (n == 0 && d.purge_due && mono_ms() >= d.purge_due)
			run_purges(&d);
		if (n == 0 && d.busy && mono_ms() >= d.last_work + IDLE_TRIM_MS) {
			/* Quiet for a while after some work: save the vifs,
			 * and give the memory that work freed back to the
			 * kernel; glibc keeps it otherwise, and RSS stays at
			 * the peak. Never in the way of a request. */
			save_vifs(&d);
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
		/* Requests first: a repair of drift read in the same turn then
		 * compares with what they asked for (a map that was full). */
		for (int i = 0; i < n; i++)
			if (evs[i].data.fd == lfd)
				on_control(&d);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == sfd)
				on_signal(&d, sfd);
			else if (fd == lfd)
				continue;
			else if (d.prober && fd == xn_arp_prober_fd(d.prober))
				run_prober(&d);
			else if (d.hotplug && fd == xn_hotplug_fd(d.hotplug))
				xn_hotplug_on_xenstore(d.hotplug);
			else if (fd == nft_fd)
				on_nft_events(&d);
			else if (xn_nl_events_drain(d.events) == -ENOBUFS) {
				d.resync = true;
				if (d.hotplug) /* link events were lost */
					xn_hotplug_rescan(d.hotplug);
			}
		}
		if (d.hotplug)
			xn_hotplug_on_timer(d.hotplug);
		if (d.hotplug && xn_hotplug_lost(d.hotplug))
			reconnect_xenstore(&d);
		else if (!d.hotplug && mono_ms() >= d.xenstore_retry)
			connect_xenstore(&d);
		if (d.purge_due && mono_ms() >= d.purge_due)
			run_purges(&d);
		if (d.prober && xn_arp_prober_timeout_ms(d.prober) == 0)
			run_prober(&d);
		if (xn_ctl_server_timeout_ms(d.control) == 0) {
			xn_ctl_server_expire(d.control);
			control_counts(&d);
		}
		if (xn_nft_monitor_take_missed(d.engine->nft)) {
			log_debug("nftables changed during a batch of ours: checking xennet's tables");
			d.resync = true;
		}
		if (d.resync && !d.quit)
			resync(&d);
		periodic_drift(&d);
		if (d.drift && !d.quit)
			check_drift(&d);
		if (mono_ms() >= d.foreign_due && !d.quit)
			check_foreign(&d);
	}
	xn_notify("STOPPING=1\nSTATUS=stopping, the network stays as it is");
	ret = 0;
	goto out;
epoll_fail:
	log_err("epoll_ctl: %m");
out:
	while (d.probe_waits) {
		struct probe_wait *w = d.probe_waits;
		d.probe_waits = w->next;
		xn_ctl_write_reply(w->fd, ECANCELED, "xennetd is exiting\n");
		close(w->fd);
		free(w);
	}
	xn_arp_prober_close(d.prober);
	if (d.control) {
		xn_ctl_server_close(d.control);
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
	free(d.vifs_away);
	xn_publicip_close(d.publicip);
	xn_nft_lend(NULL);
	xn_conntrack_free(d.conntrack);
	xn_nl_close(d.events);
	xn_engine_close(d.engine);
	xn_profile_free(d.profile);
	free(d.last_error);
	free(d.last_warnings);
	xn_buf_free(&out);
	xn_buf_free(&err);
	close(lock_fd);
	xn_log_flush(true);
	return ret;
}
