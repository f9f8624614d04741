/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * oxs-shim: LD_PRELOAD stand-in for the hypervisor calls of the OCaml
 * xenstored (/usr/lib/xen-4.17/bin/oxenstored), so that tests run it on a
 * machine without Xen, as xs-shim does for the C xenstored. What differs:
 *
 *   OXS_SHIM_RUNDIR=DIR   oxenstored's socket and database have fixed
 *                         paths under /var/run/xenstored: every path-taking
 *                         call it makes (open, unlink, mkdir, rename, bind,
 *                         ...) has that prefix replaced by DIR. Required.
 *   XS_SHIM_DOMAINS=FILE  as for xs-shim: the domains that exist, one
 *                         domid per line, optionally "dying", "shutdown"
 *                         or "crashed"; re-read at every lookup. Unset:
 *                         every domid exists.
 *   SIGUSR2               fires the VIRQ_DOM_EXC event channel (xenstored
 *                         re-checks its domains). Not SIGUSR1 as in
 *                         xs-shim: oxenstored installs its own handler for
 *                         that one (it reopens its logs).
 *
 * Dom0's event channel and ring page are not intercepted: the test's
 * config file names them (xenstored-port: a file holding "1" with no
 * newline, which oxenstored's int_of_string needs; xenstored-kva: a file
 * of one page). A guest's ring (XS_INTRODUCE) is an anonymous page from
 * xc_map_foreign_range. oxenstored raises RLIMIT_NOFILE to the system's
 * nr_open and exits if that is refused: a refused raise is retried with
 * the current hard limit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* xc_map_foreign_range is in the compat part of the header. */
#define XC_WANT_COMPAT_MAP_FOREIGN_API
#include <xenctrl.h>
#include <xenevtchn.h>

#define FIXED_RUNDIR "/var/run/xenstored"

/* Opaque to oxenstored: it only passes the pointer back. */
static char xc_handle_obj;

/* ---- paths --------------------------------------------------------- */

/* PATH with FIXED_RUNDIR (or /run/xenstored) replaced by $OXS_SHIM_RUNDIR
 * into buf; PATH itself when it is not under it. */
static const char *redirect(const char *path, char *buf, size_t size)
{
	static const char *const prefixes[] = { FIXED_RUNDIR, "/run/xenstored" };
	const char *dir = getenv("OXS_SHIM_RUNDIR");

	if (!path || !dir || !*dir)
		return path;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);

		if (strncmp(path, prefixes[i], n) != 0 || (path[n] != '/' && path[n] != '\0'))
			continue;
		if ((size_t)snprintf(buf, size, "%s%s", dir, path + n) >= size)
			return path; /* too long: let the call fail as it would */
		return buf;
	}
	return path;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

static mode_t open_mode(int flags, va_list ap)
{
	if (flags & O_CREAT || (flags & O_TMPFILE) == O_TMPFILE)
		return (mode_t)va_arg(ap, int);
	return 0;
}

#define DEFINE_OPEN(name)                                                    \
	int name(const char *path, int flags, ...)                           \
	{                                                                    \
		char buf[PATH_MAX];                                          \
		va_list ap;                                                  \
		mode_t mode;                                                 \
                                                                             \
		va_start(ap, flags);                                         \
		mode = open_mode(flags, ap);                                 \
		va_end(ap);                                                  \
		return REAL(name)(redirect(path, buf, sizeof(buf)), flags, mode); \
	}
DEFINE_OPEN(open)
DEFINE_OPEN(open64)

#define DEFINE_OPENAT(name)                                                  \
	int name(int dirfd, const char *path, int flags, ...)                \
	{                                                                    \
		char buf[PATH_MAX];                                          \
		va_list ap;                                                  \
		mode_t mode;                                                 \
                                                                             \
		va_start(ap, flags);                                         \
		mode = open_mode(flags, ap);                                 \
		va_end(ap);                                                  \
		return REAL(name)(dirfd, redirect(path, buf, sizeof(buf)), flags, mode); \
	}
DEFINE_OPENAT(openat)
DEFINE_OPENAT(openat64)

int unlink(const char *path)
{
	char buf[PATH_MAX];

	return REAL(unlink)(redirect(path, buf, sizeof(buf)));
}

int mkdir(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	return REAL(mkdir)(redirect(path, buf, sizeof(buf)), mode);
}

int rename(const char *from, const char *to)
{
	char b1[PATH_MAX], b2[PATH_MAX];

	return REAL(rename)(redirect(from, b1, sizeof(b1)), redirect(to, b2, sizeof(b2)));
}

int stat(const char *path, struct stat *st)
{
	char buf[PATH_MAX];

	return REAL(stat)(redirect(path, buf, sizeof(buf)), st);
}

int lstat(const char *path, struct stat *st)
{
	char buf[PATH_MAX];

	return REAL(lstat)(redirect(path, buf, sizeof(buf)), st);
}

int access(const char *path, int mode)
{
	char buf[PATH_MAX];

	return REAL(access)(redirect(path, buf, sizeof(buf)), mode);
}

/* The listening socket: Unix.bind with a sockaddr_un. */
int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_un un;
	const struct sockaddr_un *in = (const struct sockaddr_un *)addr;
	char path[sizeof(un.sun_path) + 1], buf[PATH_MAX];
	const char *to;

	if (!addr || addr->sa_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path))
		return REAL(bind)(fd, addr, len);
	memset(path, 0, sizeof(path));
	memcpy(path, in->sun_path, len - offsetof(struct sockaddr_un, sun_path));
	to = redirect(path, buf, sizeof(buf));
	if (to == path)
		return REAL(bind)(fd, addr, len);
	if (strlen(to) >= sizeof(un.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	strcpy(un.sun_path, to);
	return REAL(bind)(fd, (const struct sockaddr *)&un, (socklen_t)sizeof(un));
}

/* ---- RLIMIT_NOFILE ------------------------------------------------- */

static int raise_within_hard_limit(int (*real)(__rlimit_resource_t, const struct rlimit *),
				   __rlimit_resource_t resource, const struct rlimit *rl)
{
	struct rlimit now, capped;

	if (real(resource, rl) == 0)
		return 0;
	if (errno != EPERM || getrlimit(resource, &now) < 0)
		return -1;
	capped.rlim_max = rl->rlim_max < now.rlim_max ? rl->rlim_max : now.rlim_max;
	capped.rlim_cur = rl->rlim_cur < capped.rlim_max ? rl->rlim_cur : capped.rlim_max;
	return real(resource, &capped);
}

int setrlimit(__rlimit_resource_t resource, const struct rlimit *rl)
{
	return raise_within_hard_limit(REAL(setrlimit), resource, rl);
}

/* ---- xenctrl ------------------------------------------------------- */

xc_interface *xc_interface_open(xentoollog_logger *logger,
				xentoollog_logger *dombuild_logger,
				unsigned open_flags)
{
	(void)logger;
	(void)dombuild_logger;
	(void)open_flags;
	return (xc_interface *)&xc_handle_obj;
}

int xc_interface_close(xc_interface *xch)
{
	(void)xch;
	return 0;
}

static xc_error last_error;

const xc_error *xc_get_last_error(xc_interface *xch)
{
	(void)xch;
	return &last_error;
}

void xc_clear_last_error(xc_interface *xch)
{
	(void)xch;
	last_error.code = XC_ERROR_NONE;
	last_error.message[0] = '\0';
}

const char *xc_error_code_to_desc(int code)
{
	return code == XC_ERROR_NONE ? "No error details" : "Internal error";
}

/* XEN_DOMINF_* flags of DOMID per the XS_SHIM_DOMAINS file; -1 if it
 * does not exist. */
static int domain_flags(uint32_t domid)
{
	const char *path = getenv("XS_SHIM_DOMAINS");
	char line[256];
	int flags = -1;
	FILE *f;

	if (domid >= DOMID_FIRST_RESERVED)
		return -1;
	if (!path || !*path)
		return 0;
	f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *end;

			if (line[0] < '0' || line[0] > '9' || strtoul(line, &end, 10) != domid)
				continue;
			flags = 0;
			if (strstr(end, "dying"))
				flags |= XEN_DOMINF_dying;
			if (strstr(end, "shutdown") || strstr(end, "crashed"))
				flags |= XEN_DOMINF_shutdown;
			break;
		}
		fclose(f);
	}
	return domid == 0 && flags < 0 ? 0 : flags;
}

/* Like the hypercall: the first MAX_DOMS existing domains whose id is at
 * least FIRST (oxenstored asks for one and checks it is the one asked). */
int xc_domain_getinfolist(xc_interface *xch, uint32_t first, unsigned int max_doms,
			  xc_domaininfo_t *info)
{
	unsigned int n = 0;

	(void)xch;
	for (uint32_t d = first; d < DOMID_FIRST_RESERVED && n < max_doms; d++) {
		int flags = domain_flags(d);

		if (flags < 0) {
			if (max_doms == 1 && d - first > 64)
				break; /* do not scan 32k ids for one */
			continue;
		}
		memset(&info[n], 0, sizeof(info[n]));
		info[n].domain = (domid_t)d;
		info[n].flags = (uint32_t)flags | (flags ? 0 : XEN_DOMINF_running);
		info[n].max_vcpu_id = 0;
		info[n].nr_online_vcpus = 1;
		n++;
	}
	return (int)n;
}

/* A guest's xenstore ring (XS_INTRODUCE): an empty page, so the guest's
 * connection exists but never speaks. */
void *xc_map_foreign_range(xc_interface *xch, uint32_t dom, int size, int prot,
			   unsigned long mfn)
{
	void *p;

	(void)xch;
	(void)mfn;
	if (domain_flags(dom) < 0) {
		errno = ESRCH;
		return NULL;
	}
	p = mmap(NULL, (size_t)size, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* ---- event channels ------------------------------------------------ */

struct evtchn {
	int rd, wr; /* the pipe: xenstored polls rd */
	int next_port;
	int virq_port; /* -1 until bind_virq */
};

static struct evtchn *volatile active_evtchn;

static void on_sigusr2(int sig)
{
	struct evtchn *e = active_evtchn;
	int saved = errno;
	char c = 'v';

	(void)sig;
	if (e && write(e->wr, &c, 1) < 0) {
		/* pipe full: an event is already pending, which is enough */
	}
	errno = saved;
}

__attribute__((constructor)) static void oxs_shim_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr2;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
}

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned int flags)
{
	struct evtchn *e;
	int p[2];

	(void)logger;
	(void)flags;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(e);
		return NULL;
	}
	e->rd = p[0];
	e->wr = p[1];
	e->next_port = 1;
	e->virq_port = -1;
	active_evtchn = e;
	return (xenevtchn_handle *)e;
}

/* Only used when xenstored restarts itself for a live update. */
xenevtchn_handle *xenevtchn_fdopen(struct xentoollog_logger *logger, int fd,
				   unsigned open_flags)
{
	(void)fd;
	return xenevtchn_open(logger, open_flags);
}

int xenevtchn_close(xenevtchn_handle *xce)
{
	struct evtchn *e = (struct evtchn *)xce;

	if (!e)
		return 0;
	if (active_evtchn == e)
		active_evtchn = NULL;
	close(e->rd);
	close(e->wr);
	free(e);
	return 0;
}

int xenevtchn_fd(xenevtchn_handle *xce)
{
	return ((struct evtchn *)xce)->rd;
}

int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
	(void)xce;
	(void)port;
	return 0;
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid,
						     evtchn_port_t remote_port)
{
	(void)domid;
	(void)remote_port;
	return ((struct evtchn *)xce)->next_port++;
}

xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce, unsigned int virq)
{
	struct evtchn *e = (struct evtchn *)xce;

	(void)virq;
	e->virq_port = e->next_port++;
	return e->virq_port;
}

int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
	(void)xce;
	(void)port;
	return 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
	struct evtchn *e = (struct evtchn *)xce;
	char c;

	if (e->virq_port >= 0 && read(e->rd, &c, 1) == 1)
		return e->virq_port;
	errno = EAGAIN;
	return -1;
}

int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
	(void)xce;
	(void)port;
	return 0;
}
