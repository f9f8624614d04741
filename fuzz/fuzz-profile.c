/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness for the profile parser: the bytes become a profile file
 * (a memfd, read through /proc/self/fd like any path) and go through
 * xn_profile_load(). Besides crashes and sanitizer reports it checks what
 * callers rely on:
 *  - success means a profile and no message, failure no profile and at
 *    least one message;
 *  - every message is "PATH:..." and printable: the bad values it quotes
 *    are escaped, so a profile cannot write control bytes to a terminal;
 *  - an accepted profile holds only valid names and addresses. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xennet/addr.h"
#include "xennet/profile.h"
#include "xennet/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int input_fd(void)
{
	static int fd = -1;

	if (fd < 0) {
		fd = memfd_create("fuzz-profile", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
	}
	return fd;
}

static void write_input(int fd, const uint8_t *data, size_t size)
{
	size_t done = 0;

	if (ftruncate(fd, 0) < 0)
		abort();
	while (done < size) {
		ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort();
		done += (size_t)n;
	}
}

static void check_accepted(const struct xn_profile *p)
{
	char buf[XN_ADDR_STRLEN];

	if (p->mode != XN_MODE_BRIDGED && p->mode != XN_MODE_ROUTED &&
	    p->mode != XN_MODE_NAT)
		abort();
	for (size_t i = 0; i < p->n_bridges; i++) {
		const struct xn_bridge_conf *b = &p->bridges[i];
		if (!xn_ifname_valid(b->name) || xn_profile_bridge(p, b->name) != b)
			abort();
		if (b->uplink[0] && !xn_ifname_valid(b->uplink))
			abort();
		if (b->take_addresses && !b->uplink[0])
			abort();
		if (b->mtu && (b->mtu < 68 || b->mtu > 65535))
			abort();
		for (size_t k = 0; k < b->n_addresses; k++) {
			struct xn_addr back;
			xn_addr_format(&b->addresses[k], true, buf);
			if (xn_addr_parse(buf, true, &back) < 0 ||
			    !xn_addr_equal(&back, &b->addresses[k]) ||
			    xn_addr_is_network_or_broadcast(&back))
				abort();
		}
	}
	if (p->mode == XN_MODE_ROUTED && !xn_ifname_valid(p->routed_uplink))
		abort();
	if (p->mode == XN_MODE_NAT) {
		const struct xn_addr *gw = xn_profile_nat_gateway(p);
		if (!gw || gw->family != AF_INET)
			abort();
		for (size_t i = 0; i < p->n_maps; i++)
			if (!xn_addr_in_network(gw, &p->maps[i].guest) ||
			    xn_addr_in_network(gw, &p->maps[i].public_addr))
				abort();
	} else if (p->n_maps || xn_profile_nat_gateway(p)) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xn_profile *p = NULL;
	struct xn_diag d = { 0 };
	char path[64];
	size_t plen;
	int fd, r;

	if (size > 256 * 1024)
		return 0;
	fd = input_fd();
	write_input(fd, data, size);
	plen = (size_t)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	r = xn_profile_load(path, &p, &d);
	if (r == 0) {
		if (!p || d.n != 0)
			abort();
		check_accepted(p);
	} else {
		if (p || d.n == 0 || r == -ENOMEM)
			abort();
		for (size_t i = 0; i < d.n; i++) {
			if (strncmp(d.lines[i], path, plen) != 0 ||
			    d.lines[i][plen] != ':')
				abort();
			for (const char *c = d.lines[i]; *c; c++)
				if ((unsigned char)*c < 0x20 ||
				    (unsigned char)*c == 0x7f)
					abort();
		}
	}
	xn_profile_free(p);
	xn_diag_free(&d);
	return 0;
}
