/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xl-shim: LD_PRELOAD stand-in for the hypervisor BELOW libxenctrl, so
 * that Debian's real xl (/usr/lib/xen-4.17/bin/xl, libxenlight 4.17) runs
 * in the namespace tests on a machine without Xen. libxenctrl, libxl and
 * xl are the real ones; only the privcmd layer is replaced:
 *
 *   xencall_open/close, xencall0..5, the hypercall buffers
 *   xenforeignmemory_open/close (and map/unmap: ENOSYS)
 *   xendevicemodel_open/close
 *
 * Hypercalls answered: sysctl getdomaininfolist and physinfo, domctl
 * getdomaininfo (as Xen 4.17: the first existing domid >= the one
 * asked), xen_version. Everything else fails with ENOSYS (libxl copes:
 * it only asks flask and the build id at the places the tests reach).
 *
 *   XL_SHIM_DOMAINS=FILE  the domains that exist, one line each:
 *                         DOMID [uuid=UUID] [hvm|pvh] [dying|shutdown|crashed]
 *                         (the file xs-shim reads too: the same words).
 *                         Re-read at every call. Dom0 always exists.
 *   XL_SHIM_TRACE=1       log every hypercall to stderr.
 *
 * LD_PRELOAD is removed from the environment as soon as the library is
 * loaded, so that what xl runs (the hotplug scripts) does not inherit it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xencall.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xendevicemodel.h>

#define SHIM_PAGE 4096UL
#define SHIM_TOTAL_PAGES (4UL << 18)	/* 4 GiB of "host memory" */
#define SHIM_DOM0_PAGES (1UL << 18)
#define SHIM_GUEST_PAGES (1UL << 16)

struct shim_domain {
	uint32_t domid;
	xen_domain_handle_t uuid;
	int hvm, pvh, dying, shutdown, crashed;
};

static int tracing;

__attribute__((constructor)) static void xl_shim_init(void)
{
	unsetenv("LD_PRELOAD");
	tracing = getenv("XL_SHIM_TRACE") != NULL;
}

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
	va_list ap;

	if (!tracing)
		return;
	va_start(ap, fmt);
	fputs("xl-shim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- the domains -------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into 16 bytes; 0 or -1. */
static int parse_uuid(const char *s, xen_domain_handle_t out)
{
	int i = 0;

	while (*s && i < 16) {
		int hi, lo;

		if (*s == '-') {
			s++;
			continue;
		}
		hi = hexval(s[0]);
		lo = hi < 0 ? -1 : hexval(s[1]);
		if (lo < 0)
			return -1;
		out[i++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	return i == 16 ? 0 : -1;
}

/* One line of the domains file into D; 0, or -1 if it names none. */
static int parse_domain_line(char *line, struct shim_domain *d)
{
	char *save = NULL, *word, *end;
	unsigned long id;

	if (line[0] < '0' || line[0] > '9')
		return -1;
	id = strtoul(line, &end, 10);
	if (id >= DOMID_FIRST_RESERVED)
		return -1;
	memset(d, 0, sizeof(*d));
	d->domid = (uint32_t)id;
	for (word = strtok_r(end, " \t\n", &save); word;
	     word = strtok_r(NULL, " \t\n", &save)) {
		if (strncmp(word, "uuid=", 5) == 0)
			parse_uuid(word + 5, d->uuid);
		else if (strcmp(word, "hvm") == 0)
			d->hvm = 1;
		else if (strcmp(word, "pvh") == 0)
			d->hvm = d->pvh = 1;
		else if (strcmp(word, "dying") == 0)
			d->dying = 1;
		else if (strcmp(word, "shutdown") == 0)
			d->shutdown = 1;
		else if (strcmp(word, "crashed") == 0)
			d->crashed = 1;
	}
	return 0;
}

/* The first existing domain with an id >= FIRST, into D: 0, or -1 if
 * there is none. Dom0 exists whether the file names it or not. A domid
 * listed twice is the first of its lines. */
static int find_domain(uint32_t first, struct shim_domain *d)
{
	const char *path = getenv("XL_SHIM_DOMAINS");
	struct shim_domain cur;
	char line[512];
	int found = 0;
	FILE *f = path && *path ? fopen(path, "re") : NULL;

	while (f && fgets(line, sizeof(line), f)) {
		if (parse_domain_line(line, &cur) < 0 || cur.domid < first)
			continue;
		if (!found || cur.domid < d->domid) {
			*d = cur;
			found = 1;
		}
	}
	if (f)
		fclose(f);
	if (first == 0 && (!found || d->domid != 0)) {
		memset(d, 0, sizeof(*d));
		found = 1;
	}
	return found ? 0 : -1;
}

static void fill_dominfo(struct xen_domctl_getdomaininfo *gi,
			 const struct shim_domain *d)
{
	memset(gi, 0, sizeof(*gi));
	gi->domain = (domid_t)d->domid;
	if (d->dying)
		gi->flags |= XEN_DOMINF_dying;
	if (d->shutdown || d->crashed) {
		gi->flags |= XEN_DOMINF_shutdown;
		gi->flags |= (uint32_t)(d->crashed ? SHUTDOWN_crash : SHUTDOWN_poweroff)
			     << XEN_DOMINF_shutdownshift;
	}
	if (!(d->dying || d->shutdown || d->crashed))
		gi->flags |= d->domid == 0 ? XEN_DOMINF_running : XEN_DOMINF_blocked;
	if (d->hvm)
		gi->flags |= XEN_DOMINF_hvm_guest | XEN_DOMINF_hap;
	gi->tot_pages = d->domid == 0 ? SHIM_DOM0_PAGES : SHIM_GUEST_PAGES;
	gi->max_pages = gi->tot_pages;
	gi->nr_online_vcpus = 1;
	gi->max_vcpu_id = 0;
	gi->cpu_time = 1000000000ULL * (d->domid + 1);
	memcpy(gi->handle, d->uuid, sizeof(gi->handle));
	gi->cpupool = 0;
	gi->gpaddr_bits = 52;
}

/* ---- the hypercalls ----------------------------------------------- */

static int fail_errno(int err)
{
	errno = err;
	return -1;
}

static int sysctl_getdomaininfolist(struct xen_sysctl_getdomaininfolist *l)
{
	struct xen_domctl_getdomaininfo *out = l->buffer.p;
	struct shim_domain d;
	uint32_t next = l->first_domain, n = 0;

	while (n < l->max_domains && find_domain(next, &d) == 0) {
		fill_dominfo(&out[n++], &d);
		next = d.domid + 1;
	}
	l->num_domains = n;
	return 0;
}

static void fill_physinfo(struct xen_sysctl_physinfo *pi)
{
	memset(pi, 0, sizeof(*pi));
	pi->threads_per_core = 1;
	pi->cores_per_socket = 1;
	pi->nr_cpus = 1;
	pi->max_cpu_id = 0;
	pi->nr_nodes = 1;
	pi->max_node_id = 0;
	pi->cpu_khz = 2000000;
	pi->capabilities = XEN_SYSCTL_PHYSCAP_hvm | XEN_SYSCTL_PHYSCAP_pv |
			   XEN_SYSCTL_PHYSCAP_hap;
	pi->total_pages = SHIM_TOTAL_PAGES;
	pi->free_pages = SHIM_TOTAL_PAGES / 2;
	pi->max_mfn = SHIM_TOTAL_PAGES - 1;
}

static int do_sysctl(struct xen_sysctl *op)
{
	trace("sysctl cmd %u", op->cmd);
	switch (op->cmd) {
	case XEN_SYSCTL_getdomaininfolist:
		return sysctl_getdomaininfolist(&op->u.getdomaininfolist);
	case XEN_SYSCTL_physinfo:
		fill_physinfo(&op->u.physinfo);
		return 0;
	default:
		return fail_errno(ENOSYS);
	}
}

static int do_domctl(struct xen_domctl *op)
{
	struct shim_domain d;

	trace("domctl cmd %u domain %u", op->cmd, op->domain);
	switch (op->cmd) {
	case XEN_DOMCTL_getdomaininfo:
		if (find_domain(op->domain, &d) < 0)
			return fail_errno(ESRCH);
		fill_dominfo(&op->u.getdomaininfo, &d);
		op->domain = (domid_t)d.domid;
		return 0;
	default:
		return fail_errno(ENOSYS);
	}
}

static void copy_string(void *dst, size_t size, const char *s)
{
	memset(dst, 0, size);
	strncpy(dst, s, size - 1);
}

static int do_xen_version(unsigned long cmd, void *arg)
{
	trace("xen_version cmd %lu", cmd);
	switch (cmd) {
	case XENVER_version:
		return 4 << 16 | 17;
	case XENVER_extraversion:
		copy_string(arg, sizeof(xen_extraversion_t), ".7-shim");
		return 0;
	case XENVER_compile_info: {
		xen_compile_info_t *ci = arg;

		memset(ci, 0, sizeof(*ci));
		copy_string(ci->compiler, sizeof(ci->compiler), "xl-shim");
		return 0;
	}
	case XENVER_capabilities:
		copy_string(arg, sizeof(xen_capabilities_info_t),
			    "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64");
		return 0;
	case XENVER_changeset:
		copy_string(arg, sizeof(xen_changeset_info_t), "xl-shim");
		return 0;
	case XENVER_commandline:
		copy_string(arg, sizeof(xen_commandline_t), "");
		return 0;
	case XENVER_platform_parameters:
		memset(arg, 0, sizeof(xen_platform_parameters_t));
		return 0;
	case XENVER_pagesize:
		return (int)SHIM_PAGE;
	default:
		return fail_errno(ENOSYS);
	}
}

static int hypercall(unsigned int op, uint64_t a1, uint64_t a2)
{
	switch (op) {
	case __HYPERVISOR_sysctl:
		return do_sysctl((struct xen_sysctl *)(uintptr_t)a1);
	case __HYPERVISOR_domctl:
		return do_domctl((struct xen_domctl *)(uintptr_t)a1);
	case __HYPERVISOR_xen_version:
		return do_xen_version((unsigned long)a1, (void *)(uintptr_t)a2);
	default:
		trace("hypercall %u: ENOSYS", op);
		return fail_errno(ENOSYS);
	}
}

/* ---- libxencall ---------------------------------------------------- */

static char xcall_obj, fmem_obj, dmod_obj;

xencall_handle *xencall_open(struct xentoollog_logger *logger,
			     unsigned open_flags)
{
	return (xencall_handle *)&xcall_obj;
}

int xencall_close(xencall_handle *xcall)
{
	return 0;
}

int xencall_fd(xencall_handle *xcall)
{
	return fail_errno(ENOSYS);
}

int xencall0(xencall_handle *xcall, unsigned int op)
{
	return hypercall(op, 0, 0);
}

int xencall1(xencall_handle *xcall, unsigned int op, uint64_t arg1)
{
	return hypercall(op, arg1, 0);
}

int xencall2(xencall_handle *xcall, unsigned int op, uint64_t arg1,
	     uint64_t arg2)
{
	return hypercall(op, arg1, arg2);
}

long xencall2L(xencall_handle *xcall, unsigned int op, uint64_t arg1,
	       uint64_t arg2)
{
	return hypercall(op, arg1, arg2);
}

int xencall3(xencall_handle *xcall, unsigned int op, uint64_t arg1,
	     uint64_t arg2, uint64_t arg3)
{
	return hypercall(op, arg1, arg2);
}

int xencall4(xencall_handle *xcall, unsigned int op, uint64_t arg1,
	     uint64_t arg2, uint64_t arg3, uint64_t arg4)
{
	return hypercall(op, arg1, arg2);
}

int xencall5(xencall_handle *xcall, unsigned int op, uint64_t arg1,
	     uint64_t arg2, uint64_t arg3, uint64_t arg4, uint64_t arg5)
{
	return hypercall(op, arg1, arg2);
}

void *xencall_alloc_buffer_pages(xencall_handle *xcall, size_t nr_pages)
{
	void *p = mmap(NULL, nr_pages * SHIM_PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void xencall_free_buffer_pages(xencall_handle *xcall, void *p, size_t nr_pages)
{
	if (p)
		munmap(p, nr_pages * SHIM_PAGE);
}

/* A buffer of any size: pages with its page count in front, as the
 * real library does (xencall_free_buffer is not told the size). */
struct buffer_header {
	size_t nr_pages;
	size_t pad;
};

void *xencall_alloc_buffer(xencall_handle *xcall, size_t size)
{
	size_t nr = (size + sizeof(struct buffer_header) + SHIM_PAGE - 1) / SHIM_PAGE;
	struct buffer_header *h = xencall_alloc_buffer_pages(xcall, nr);

	if (!h)
		return NULL;
	h->nr_pages = nr;
	return h + 1;
}

void xencall_free_buffer(xencall_handle *xcall, void *p)
{
	struct buffer_header *h = p;

	if (!p)
		return;
	h--;
	xencall_free_buffer_pages(xcall, h, h->nr_pages);
}

int xencall_buffers_never_fault(xencall_handle *xcall)
{
	return 1;
}

/* ---- libxenforeignmemory, libxendevicemodel ----------------------- */

xenforeignmemory_handle *xenforeignmemory_open(struct xentoollog_logger *logger,
					       unsigned open_flags)
{
	return (xenforeignmemory_handle *)&fmem_obj;
}

int xenforeignmemory_close(xenforeignmemory_handle *fmem)
{
	return 0;
}

void *xenforeignmemory_map(xenforeignmemory_handle *fmem, uint32_t dom,
			   int prot, size_t pages, const xen_pfn_t arr[],
			   int err[])
{
	trace("xenforeignmemory_map dom %u: ENOSYS", dom);
	errno = ENOSYS;
	return NULL;
}

int xenforeignmemory_unmap(xenforeignmemory_handle *fmem, void *addr,
			   size_t pages)
{
	return fail_errno(EINVAL);
}

xendevicemodel_handle *xendevicemodel_open(struct xentoollog_logger *logger,
					   unsigned open_flags)
{
	return (xendevicemodel_handle *)&dmod_obj;
}

int xendevicemodel_close(xendevicemodel_handle *dmod)
{
	return 0;
}
