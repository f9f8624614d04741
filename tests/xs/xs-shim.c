/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* LD_PRELOAD stand-in for the few hypervisor calls xenstored makes, so the
 * real xenstored runs in tests on a machine without Xen (see
 * shared/xenstored-test.md).
 *   XS_SHIM_DOMAINS=FILE  domids that exist, one per line, re-read at each
 *                         call (unset: every domid below 0x7FF0 exists)
 *   SIGUSR1               fires the VIRQ_DOM_EXC event channel, so that
 *                         xenstored re-checks its domains (and fires
 *                         @releaseDomain for those that went). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Opaque handles: only their addresses matter to xenstored. */
struct shim_xc { int unused; };
struct shim_gnt { int unused; };
struct shim_evtchn {
	int pipe[2];
	int next_port;
	int virq_port;
};

static struct shim_evtchn *the_evtchn;

/* ---- xenctrl ---- */

/* Only the first field, domid, and the flag word matter to xenstored;
 * mirror the start of xc_dominfo_t. */
struct shim_dominfo {
	uint32_t domid;
	uint32_t ssidref;
	unsigned int dying : 1, crashed : 1, shutdown : 1, paused : 1, blocked : 1,
		running : 1, hvm : 1, debugged : 1, xenstore : 1, hap : 1;
};

void *xc_interface_open(void *logger, void *dombuild_logger, unsigned flags);
void *xc_interface_open(void *logger, void *dombuild_logger, unsigned flags)
{
	static struct shim_xc xc;
	(void)logger, (void)dombuild_logger, (void)flags;
	return &xc;
}

int xc_interface_close(void *xch);
int xc_interface_close(void *xch)
{
	(void)xch;
	return 0;
}

static int domain_exists(uint32_t domid)
{
	const char *path = getenv("XS_SHIM_DOMAINS");
	char line[32];
	FILE *f;
	int found = 0;

	if (domid >= 0x7FF0)
		return 0;
	if (!path || !*path || domid == 0)
		return 1;
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strtoul(line, NULL, 10) == domid && line[0] >= '0' && line[0] <= '9')
			found = 1;
	fclose(f);
	return found;
}

int xc_domain_getinfo(void *xch, uint32_t first_domid, unsigned max_doms, void *info);
int xc_domain_getinfo(void *xch, uint32_t first_domid, unsigned max_doms, void *info)
{
	struct shim_dominfo *di = info;

	(void)xch;
	if (max_doms < 1 || !domain_exists(first_domid))
		return 0;
	/* The caller's struct is larger: clear what we describe. */
	memset(di, 0, sizeof(*di));
	di->domid = first_domid;
	di->running = 1;
	return 1;
}

/* ---- gnttab ---- */

void *xengnttab_open(void *logger, unsigned flags);
void *xengnttab_open(void *logger, unsigned flags)
{
	static struct shim_gnt g;
	(void)logger, (void)flags;
	return &g;
}

int xengnttab_close(void *xgt);
int xengnttab_close(void *xgt)
{
	(void)xgt;
	return 0;
}

int xengnttab_set_max_grants(void *xgt, uint32_t count);
int xengnttab_set_max_grants(void *xgt, uint32_t count)
{
	(void)xgt, (void)count;
	return 0;
}

void *xengnttab_map_grant_ref(void *xgt, uint32_t domid, uint32_t ref, int prot);
void *xengnttab_map_grant_ref(void *xgt, uint32_t domid, uint32_t ref, int prot)
{
	(void)xgt, (void)domid, (void)ref, (void)prot;
	errno = ENOSYS; /* no guest rings are ever introduced */
	return NULL;
}

int xengnttab_unmap(void *xgt, void *start_address, uint32_t count);
int xengnttab_unmap(void *xgt, void *start_address, uint32_t count)
{
	(void)xgt, (void)start_address, (void)count;
	return 0;
}

/* ---- evtchn ---- */

static void on_usr1(int sig)
{
	char c = 1;
	int saved = errno;

	(void)sig;
	if (the_evtchn && write(the_evtchn->pipe[1], &c, 1) < 0) {
		/* nothing to do from a signal handler */
	}
	errno = saved;
}

void *xenevtchn_open(void *logger, unsigned flags);
void *xenevtchn_open(void *logger, unsigned flags)
{
	struct shim_evtchn *e = calloc(1, sizeof(*e));

	(void)logger, (void)flags;
	if (!e || pipe2(e->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(e);
		return NULL;
	}
	e->next_port = 10;
	e->virq_port = -1;
	the_evtchn = e;
	signal(SIGUSR1, on_usr1);
	return e;
}

void *xenevtchn_fdopen(void *logger, int fd, unsigned flags);
void *xenevtchn_fdopen(void *logger, int fd, unsigned flags)
{
	(void)fd;
	return xenevtchn_open(logger, flags);
}

int xenevtchn_fd(void *xce);
int xenevtchn_fd(void *xce)
{
	return ((struct shim_evtchn *)xce)->pipe[0];
}

int xenevtchn_bind_virq(void *xce, unsigned virq);
int xenevtchn_bind_virq(void *xce, unsigned virq)
{
	struct shim_evtchn *e = xce;

	(void)virq;
	e->virq_port = e->next_port++;
	return e->virq_port;
}

int xenevtchn_bind_interdomain(void *xce, uint32_t domid, uint32_t remote_port);
int xenevtchn_bind_interdomain(void *xce, uint32_t domid, uint32_t remote_port)
{
	(void)domid, (void)remote_port;
	return ((struct shim_evtchn *)xce)->next_port++;
}

int xenevtchn_notify(void *xce, uint32_t port);
int xenevtchn_notify(void *xce, uint32_t port)
{
	(void)xce, (void)port;
	return 0;
}

int xenevtchn_unmask(void *xce, uint32_t port);
int xenevtchn_unmask(void *xce, uint32_t port)
{
	(void)xce, (void)port;
	return 0;
}

int xenevtchn_unbind(void *xce, uint32_t port);
int xenevtchn_unbind(void *xce, uint32_t port)
{
	(void)xce, (void)port;
	return 0;
}

int xenevtchn_pending(void *xce);
int xenevtchn_pending(void *xce)
{
	struct shim_evtchn *e = xce;
	char c;

	if (read(e->pipe[0], &c, 1) == 1 && e->virq_port >= 0)
		return e->virq_port;
	errno = EAGAIN;
	return -1;
}

/* ---- /proc/xen/xsd_port and xsd_kva ---- */

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int fake_file(const char *path)
{
	int fd;

	if (ends_with(path, "xsd_port")) {
		fd = memfd_create("xsd_port", MFD_CLOEXEC);
		if (fd >= 0 && (write(fd, "1\n", 2) != 2 || lseek(fd, 0, SEEK_SET) < 0)) {
			close(fd);
			return -1;
		}
		return fd;
	}
	if (ends_with(path, "xsd_kva")) {
		fd = memfd_create("xsd_kva", MFD_CLOEXEC);
		if (fd >= 0 && ftruncate(fd, 4096) < 0) {
			close(fd);
			return -1;
		}
		return fd;
	}
	return -2;
}

int open(const char *path, int flags, ...);
int open(const char *path, int flags, ...)
{
	static int (*real_open)(const char *, int, ...);
	mode_t mode = 0;
	int fd;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	fd = fake_file(path);
	if (fd != -2)
		return fd;
	if (!real_open)
		real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
	return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...);
int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return open(path, flags, mode);
}
