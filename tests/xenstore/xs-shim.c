/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xs-shim: LD_PRELOAD stand-in for the hypervisor calls of the real
 * xenstored (/usr/lib/xen-4.17/bin/xenstored), so that tests run it on a
 * machine without Xen (see shared/xenstored-test.md).
 *
 *   XS_SHIM_DOMAINS=FILE  the domains that exist: one domid per line,
 *                         optionally followed by the words "dying",
 *                         "shutdown" or "crashed". Re-read at every
 *                         xc_domain_getinfo() call, so a test makes a
 *                         domain vanish by rewriting the file. Dom0 always
 *                         exists. A missing file means "only dom0".
 *                         Unset: every domid below DOMID_FIRST_RESERVED
 *                         exists (and is running).
 *   SIGUSR1               fires the VIRQ_DOM_EXC event channel: xenstored
 *                         re-checks its domains, drops the ones that went
 *                         and fires @releaseDomain for introduced ones.
 *
 * Everything else is "succeed and do nothing". Rings are pages nobody
 * writes: dom0's is a memfd (/proc/xen/xsd_kva), a guest's (mapped only
 * if a test introduces the guest with XS_INTRODUCE, see xs-introduce.c)
 * an anonymous page; clients talk to the daemon over its socket. What
 * xenstored sends to syslog goes to its stderr instead, so that tests
 * leave no trace in the system's logs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>

/* The handle types are opaque in the headers: xenstored only passes the
 * pointers back to us, so any non-NULL address will do. */
static char xc_handle_obj, gnt_handle_obj;

struct evtchn {
	int rd, wr;	/* the pipe: xenstored polls rd */
	int next_port;
	int virq_port;	/* -1 until bind_virq */
};

/* The one event channel handle of the daemon (the SIGUSR1 target). */
static struct evtchn *volatile active_evtchn;

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

struct dom_state {
	int exists;
	int dying, shutdown, crashed;
};

/* What the XS_SHIM_DOMAINS file says about DOMID. */
static struct dom_state lookup_domain(uint32_t domid)
{
	struct dom_state st = { 0, 0, 0, 0 };
	const char *path = getenv("XS_SHIM_DOMAINS");
	char line[256];
	FILE *f;

	if (domid >= DOMID_FIRST_RESERVED)
		return st;
	if (!path || !*path) {
		st.exists = 1;
		return st;
	}
	f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *end;
			unsigned long id;

			if (line[0] < '0' || line[0] > '9')
				continue;
			id = strtoul(line, &end, 10);
			if (id != domid)
				continue;
			st.exists = 1;
			st.dying = strstr(end, "dying") != NULL;
			st.shutdown = strstr(end, "shutdown") != NULL;
			st.crashed = strstr(end, "crashed") != NULL;
			break;
		}
		fclose(f);
	}
	if (domid == 0)
		st.exists = 1;
	return st;
}

/* Like the hypercall: the first MAX_DOMS existing domains whose id is at
 * least FIRST_DOMID (xenstored then checks that info[0].domid is the one
 * it asked for, so a vanished domain reads as "some other domain"). */
int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid,
		      unsigned int max_doms, xc_dominfo_t *info)
{
	unsigned int n = 0;
	uint32_t d;

	(void)xch;
	for (d = first_domid; d < DOMID_FIRST_RESERVED && n < max_doms; d++) {
		struct dom_state st = lookup_domain(d);

		if (!st.exists) {
			/* "Every domid exists" never gets here; with a list,
			 * do not scan 32k ids when a single one was asked. */
			if (max_doms == 1 && d - first_domid > 64)
				break;
			continue;
		}
		memset(&info[n], 0, sizeof(info[n]));
		info[n].domid = d;
		info[n].dying = st.dying;
		info[n].shutdown = st.shutdown || st.crashed;
		info[n].crashed = st.crashed;
		info[n].running = !(st.dying || st.shutdown || st.crashed);
		info[n].max_vcpu_id = 0;
		info[n].nr_online_vcpus = 1;
		n++;
	}
	return (int)n;
}

/* ---- grant tables -------------------------------------------------- */

xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger,
				 unsigned open_flags)
{
	(void)logger;
	(void)open_flags;
	return (xengnttab_handle *)&gnt_handle_obj;
}

int xengnttab_close(xengnttab_handle *xgt)
{
	(void)xgt;
	return 0;
}

int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants)
{
	(void)xgt;
	(void)nr_grants;
	return 0;
}

/* The guest's xenstore ring, for XS_INTRODUCE: an empty page (both
 * rings empty), so the guest's connection exists but never speaks. */
void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid,
			      uint32_t ref, int prot)
{
	void *p;

	(void)xgt;
	(void)ref;
	if (!lookup_domain(domid).exists) {
		errno = ESRCH;
		return NULL;
	}
	p = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), prot,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address,
		    uint32_t count)
{
	(void)xgt;
	return munmap(start_address, (size_t)count * (size_t)sysconf(_SC_PAGESIZE));
}

/* ---- event channels ------------------------------------------------ */

static void on_sigusr1(int sig)
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

/* Installed as soon as the library is loaded, so that an early SIGUSR1
 * cannot kill the daemon with the default action. */
__attribute__((constructor)) static void xs_shim_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger,
				 unsigned int flags)
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
xenevtchn_handle *xenevtchn_fdopen(struct xentoollog_logger *logger,
				   int fd, unsigned open_flags)
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

xenevtchn_port_or_error_t
xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid,
			   evtchn_port_t remote_port)
{
	(void)domid;
	(void)remote_port;
	return ((struct evtchn *)xce)->next_port++;
}

xenevtchn_port_or_error_t
xenevtchn_bind_virq(xenevtchn_handle *xce, unsigned int virq)
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

/* ---- /proc/xen/xsd_port and /proc/xen/xsd_kva ---------------------- */

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A memfd standing in for PATH, -1 with errno on failure, or -2 when
 * PATH is not one of ours. */
static int fake_open(const char *path)
{
	int fd, err;

	if (!path)
		return -2;
	if (ends_with(path, "/xsd_port")) {
		/* dom0's xenstore event channel */
		fd = memfd_create("xsd_port", MFD_CLOEXEC);
		if (fd < 0)
			return -1;
		if (write(fd, "1\n", 2) != 2 || lseek(fd, 0, SEEK_SET) < 0)
			goto fail;
		return fd;
	}
	if (ends_with(path, "/xsd_kva")) {
		/* dom0's xenstore ring page (mmap MAP_SHARED) */
		fd = memfd_create("xsd_kva", MFD_CLOEXEC);
		if (fd < 0)
			return -1;
		if (ftruncate(fd, sysconf(_SC_PAGESIZE)) < 0)
			goto fail;
		return fd;
	}
	return -2;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

typedef int open_fn(const char *, int, ...);

static int real_open(const char *name, const char *path, int flags,
		     mode_t mode)
{
	open_fn *fn = (open_fn *)dlsym(RTLD_NEXT, name);

	if (!fn) {
		errno = ENOSYS;
		return -1;
	}
	return fn(path, flags, mode);
}

static mode_t open_mode(int flags, va_list ap)
{
	if (flags & O_CREAT || (flags & O_TMPFILE) == O_TMPFILE)
		return (mode_t)va_arg(ap, int);
	return 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	int fd = fake_open(path);

	if (fd != -2)
		return fd;
	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return real_open("open", path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	int fd = fake_open(path);

	if (fd != -2)
		return fd;
	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return real_open("open64", path, flags, mode);
}

/* ---- syslog -> stderr ---------------------------------------------- */

void __syslog_chk(int pri, int flag, const char *fmt, ...);

void openlog(const char *ident, int option, int facility)
{
	(void)ident;
	(void)option;
	(void)facility;
}

static void log_stderr(int pri, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	fprintf(stderr, "syslog<%d>: %s\n", LOG_PRI(pri), msg);
	fflush(stderr);
}

void syslog(int pri, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_stderr(pri, fmt, ap);
	va_end(ap);
}

void __syslog_chk(int pri, int flag, const char *fmt, ...)
{
	va_list ap;

	(void)flag;
	va_start(ap, fmt);
	log_stderr(pri, fmt, ap);
	va_end(ap);
}
