/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * netback-sim: what Linux's xen-netback (in Dom0) and a running guest's
 * xen-netfront do in xenstore around a vif, so that the real xl can attach
 * and detach vifs in the namespace tests (tests/ns/xl.sh). Run it in
 * Dom0's network namespace; it watches /local/domain/0/backend/vif:
 *
 *  - a new backend (state 1, written by libxl): netback_probe's feature
 *    keys; the vif: a veth vifD.N with MAC fe:ff:ff:ff:ff:ff whose peer
 *    ethN (MAC = the backend `mac`, up) goes into the guest's namespace;
 *    backend state 2 (InitWait: what libxl waits for). The guest is
 *    running, so its netfront answers InitWait at once: frontend state 4.
 *  - backend state 4 (Connected) only once the frontend is 4 and
 *    hotplug-status reads `connected` (netback's hotplug_status watch).
 *  - backend state 5 (Closing, libxl's remove): frontend 6, backend 6,
 *    hotplug-status removed (netback_remove), then the device deleted by
 *    its ifindex, as netback frees it.
 *  - the backend directory removed: the device goes too.
 *
 *   netback-sim --guest-ns FORMAT [--late MS] [--delete-late MS]
 *
 * FORMAT names a guest's namespace, with %u for its domid ("xn12g%u").
 * --late MS: the device is made MS ms after state 2 instead of before.
 * --delete-late MS: the device is deleted MS ms after state 6 (so after
 * libxl ran the offline script) instead of at once.
 * Each action is logged on stderr with a timestamp. SIGTERM ends it.
 * Test code: it runs `ip` to make the veth pair.
 */
#include <errno.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenstore.h>

#define BACKEND_ROOT "/local/domain/0/backend/vif"
#define MAX_VIFS 4096

extern char **environ;

struct sim_vif {
	unsigned int domid, devid;
	bool used;
	bool probed;		/* features and state 2 written */
	int ifindex;		/* of vifD.N in Dom0, 0 if none */
	long long create_at;	/* --late: when to make the device (ms) */
	long long delete_at;	/* --delete-late: when to delete it (ms) */
	bool closed;		/* state 6 written */
};

static struct sim_vif vifs[MAX_VIFS];
static const char *guest_ns_format;
static long late_ms = -1, delete_late_ms = -1;
static volatile sig_atomic_t stopping;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "%lld.%03ld netback-sim: ", (long long)ts.tv_sec,
		ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* ---- xenstore ------------------------------------------------------ */

static char *xs_get(struct xs_handle *xs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char *xs_get(struct xs_handle *xs, const char *fmt, ...)
{
	char path[256];
	unsigned int len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return xs_read(xs, XBT_NULL, path, &len);
}

static void xs_put(struct xs_handle *xs, const struct sim_vif *v, bool front,
		   const char *key, const char *value)
{
	char path[256];

	if (front)
		snprintf(path, sizeof(path), "/local/domain/%u/device/vif/%u/%s",
			 v->domid, v->devid, key);
	else
		snprintf(path, sizeof(path), BACKEND_ROOT "/%u/%u/%s", v->domid,
			 v->devid, key);
	if (!xs_write(xs, XBT_NULL, path, value, (unsigned int)strlen(value)))
		say("write %s: %s", path, strerror(errno));
}

/* ---- the device ---------------------------------------------------- */

static int run(const char *const argv[])
{
	pid_t pid;
	int status;

	/* posix_spawnp's argv is not const for historical reasons only. */
	if (posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ) != 0)
		return -1;
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* vifD.N in Dom0, its peer ethN (the guest's MAC, up) in the guest. */
static void create_device(struct xs_handle *xs, struct sim_vif *v)
{
	char name[IFNAMSIZ], peer[IFNAMSIZ], ns[64];
	char *mac = xs_get(xs, BACKEND_ROOT "/%u/%u/mac", v->domid, v->devid);

	snprintf(name, sizeof(name), "vif%u.%u", v->domid, v->devid);
	snprintf(peer, sizeof(peer), "eth%u", v->devid);
	snprintf(ns, sizeof(ns), guest_ns_format, v->domid);
	const char *add[] = { "ip", "link", "add", name, "address", "fe:ff:ff:ff:ff:ff",
			      "type", "veth", "peer", "name", peer, "address",
			      mac ? mac : "00:16:3e:00:00:01", "netns", ns, NULL };
	const char *up[] = { "ip", "-n", ns, "link", "set", peer, "up", NULL };

	if (run(add) < 0 || run(up) < 0)
		say("%s: could not make the veth pair", name);
	free(mac);
	v->ifindex = (int)if_nametoindex(name);
	say("%s: device made, ifindex %d", name, v->ifindex);
}

/* RTM_DELLINK by ifindex: the name may have changed (vifname). */
static void delete_device(struct sim_vif *v)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_DELLINK,
			.nlmsg_flags = NLM_F_REQUEST },
		.ifi = { .ifi_family = AF_UNSPEC, .ifi_index = v->ifindex },
	};
	int fd;

	if (!v->ifindex)
		return;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0 || send(fd, &req, sizeof(req), 0) < 0)
		say("vif%u.%u: RTM_DELLINK: %s", v->domid, v->devid, strerror(errno));
	else
		say("vif%u.%u: device %d deleted", v->domid, v->devid, v->ifindex);
	if (fd >= 0)
		close(fd);
	v->ifindex = 0;
}

/* ---- netback and netfront ----------------------------------------- */

static void probe(struct xs_handle *xs, struct sim_vif *v)
{
	static const char *const features[] = {
		"feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6",
		"feature-ipv6-csum-offload", "feature-rx-copy",
		"feature-multicast-control", "feature-dynamic-multicast-control",
		"feature-split-event-channels", "feature-ctrl-ring",
		"feature-xdp-headroom",
	};

	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		xs_put(xs, v, false, features[i], "1");
	xs_put(xs, v, false, "feature-rx-flip", "0");
	xs_put(xs, v, false, "multi-queue-max-queues", "1");
	if (late_ms < 0)
		create_device(xs, v);
	else
		v->create_at = now_ms() + late_ms;
	xs_put(xs, v, false, "state", "2");
	say("vif%u.%u: backend InitWait", v->domid, v->devid);
	/* The guest runs: netfront connects as soon as it sees InitWait. */
	xs_put(xs, v, true, "request-rx-copy", "1");
	xs_put(xs, v, true, "state", "4");
	v->probed = true;
	v->closed = false;
}

static void close_vif(struct xs_handle *xs, struct sim_vif *v)
{
	char path[256];

	xs_put(xs, v, true, "state", "6");
	xs_put(xs, v, false, "state", "6");
	snprintf(path, sizeof(path), BACKEND_ROOT "/%u/%u/hotplug-status",
		 v->domid, v->devid);
	xs_rm(xs, XBT_NULL, path);
	say("vif%u.%u: closed", v->domid, v->devid);
	v->closed = true;
	v->create_at = 0;
	if (delete_late_ms < 0)
		delete_device(v);
	else
		v->delete_at = now_ms() + delete_late_ms;
}

static void maybe_connect(struct xs_handle *xs, struct sim_vif *v)
{
	char *fe = xs_get(xs, "/local/domain/%u/device/vif/%u/state", v->domid, v->devid);
	char *hs = xs_get(xs, BACKEND_ROOT "/%u/%u/hotplug-status", v->domid, v->devid);

	if (fe && hs && strcmp(fe, "4") == 0 && strcmp(hs, "connected") == 0) {
		xs_put(xs, v, false, "state", "4");
		say("vif%u.%u: backend Connected", v->domid, v->devid);
	}
	free(fe);
	free(hs);
}

/* Something under backend/vif/D/N changed: do what netback would. */
static void update(struct xs_handle *xs, struct sim_vif *v)
{
	char *state = xs_get(xs, BACKEND_ROOT "/%u/%u/state", v->domid, v->devid);

	if (!state) {
		/* the backend directory went: netback_remove (unless
		 * --delete-late holds the device a while longer) */
		if (!v->delete_at) {
			delete_device(v);
			v->used = false;
		}
		return;
	}
	if (strcmp(state, "1") == 0 && (!v->probed || v->closed))
		probe(xs, v);
	else if (strcmp(state, "2") == 0)
		maybe_connect(xs, v);
	else if (strcmp(state, "5") == 0 && !v->closed)
		close_vif(xs, v);
	free(state);
}

static struct sim_vif *vif_for(unsigned int domid, unsigned int devid)
{
	struct sim_vif *free_slot = NULL;

	for (size_t i = 0; i < MAX_VIFS; i++) {
		if (vifs[i].used && vifs[i].domid == domid && vifs[i].devid == devid)
			return &vifs[i];
		if (!vifs[i].used && !free_slot)
			free_slot = &vifs[i];
	}
	if (free_slot) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->used = true;
		free_slot->domid = domid;
		free_slot->devid = devid;
	}
	return free_slot;
}

static void on_event(struct xs_handle *xs, const char *path)
{
	unsigned int domid, devid;
	struct sim_vif *v;

	if (sscanf(path, BACKEND_ROOT "/%u/%u", &domid, &devid) != 2)
		return;
	v = vif_for(domid, devid);
	if (v)
		update(xs, v);
}

/* Is the time AT (0: none) come? If not, NEXT becomes the ms until it
 * if that is sooner. */
static bool due(long long at, long long now, long long *next)
{
	if (!at)
		return false;
	if (at <= now)
		return true;
	if (*next < 0 || at - now < *next)
		*next = at - now;
	return false;
}

/* --late, --delete-late: the devices to make or delete now; the poll
 * timeout until the next one (-1: none pending). */
static int run_timers(struct xs_handle *xs)
{
	long long now = now_ms(), next = -1;

	for (size_t i = 0; i < MAX_VIFS; i++) {
		struct sim_vif *v = &vifs[i];

		if (!v->used)
			continue;
		if (due(v->create_at, now, &next)) {
			v->create_at = 0;
			create_device(xs, v);
		}
		if (due(v->delete_at, now, &next)) {
			v->delete_at = 0;
			delete_device(v);
		}
	}
	return (int)next;
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--guest-ns") == 0 && i + 1 < argc)
			guest_ns_format = argv[++i];
		else if (strcmp(argv[i], "--late") == 0 && i + 1 < argc)
			late_ms = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--delete-late") == 0 && i + 1 < argc)
			delete_late_ms = strtol(argv[++i], NULL, 10);
		else
			return -1;
	}
	return guest_ns_format && strstr(guest_ns_format, "%u") ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct xs_handle *xs;
	struct sigaction sa = { .sa_handler = on_signal };

	if (parse_args(argc, argv) < 0) {
		fprintf(stderr, "usage: netback-sim --guest-ns FORMAT(with %%u) [--late MS] "
			"[--delete-late MS]\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	xs = xs_open(0);
	if (!xs || !xs_watch(xs, BACKEND_ROOT, "vif")) {
		say("xenstore: %s", strerror(errno));
		return 1;
	}
	say("watching " BACKEND_ROOT "%s", late_ms >= 0 ? " (late devices)" : "");
	while (!stopping) {
		struct pollfd pfd = { .fd = xs_fileno(xs), .events = POLLIN };
		char **ev;

		if (poll(&pfd, 1, run_timers(xs)) < 0 && errno != EINTR)
			break;
		while ((ev = xs_check_watch(xs))) {
			on_event(xs, ev[XS_WATCH_PATH]);
			free(ev);
		}
	}
	xs_close(xs);
	return 0;
}
