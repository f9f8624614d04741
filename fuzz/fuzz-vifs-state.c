/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness for the saved vifs (STATE_DIR/vifs, read at start to
 * adopt the vifs configured by the previous run): the bytes become the
 * file, read line by line with xn_read_lines() as xn_hotplug_start() does,
 * each line that is not the "boot" line through xn_vif_record_parse().
 * Checked besides crashes:
 *  - an accepted record holds what adoption relies on: valid interface
 *    names, a known mode, an ifindex, ids in range, a unicast MAC, an MTU
 *    in range, networks with their host bits clear, a vifname that is not
 *    another vif's kernel name;
 *  - it formats (xn_vif_record_format) and parses back to the same record,
 *    and that format is a fixed point;
 *  - a refused line is -EINVAL. */
#include <stdio.h>
#include <string.h>

#include "fuzz-common.h"
#include "xennet/vifstate.h"

static bool conf_equal(const struct xn_vif_conf *a, const struct xn_vif_conf *b)
{
	if (a->domid != b->domid || a->devid != b->devid || a->ioemu != b->ioemu ||
	    strcmp(a->bridge, b->bridge) != 0 || a->has_mac != b->has_mac ||
	    (a->has_mac && memcmp(a->mac, b->mac, 6) != 0) || a->mtu != b->mtu ||
	    strcmp(a->vifname, b->vifname) != 0 || strcmp(a->gatewaydev, b->gatewaydev) != 0 ||
	    a->n_ips != b->n_ips)
		return false;
	for (size_t i = 0; i < a->n_ips; i++)
		if (!xn_addr_equal(&a->ips[i], &b->ips[i]))
			return false;
	return true;
}

static bool record_equal(const struct xn_vif_record *a, const struct xn_vif_record *b)
{
	return a->domid == b->domid && a->devid == b->devid && a->emu == b->emu &&
	       a->ifindex == b->ifindex && strcmp(a->name, b->name) == 0 && a->mode == b->mode &&
	       strcmp(a->bridge, b->bridge) == 0 && a->filtered == b->filtered &&
	       strcmp(a->uplink, b->uplink) == 0 && conf_equal(&a->conf, &b->conf);
}

static void check_name(const char *name, bool may_be_empty)
{
	FUZZ_CHECK(strnlen(name, IFNAMSIZ) < IFNAMSIZ);
	FUZZ_CHECK(may_be_empty ? !name[0] || xn_ifname_valid(name) : xn_ifname_valid(name));
}

static void check_valid(const struct xn_vif_record *r)
{
	const struct xn_vif_conf *c = &r->conf;
	unsigned d, n;
	bool emu;

	FUZZ_CHECK(r->domid < XN_DOMID_FIRST_RESERVED && r->devid <= XN_VIF_MAX_DEVID);
	FUZZ_CHECK(c->domid == r->domid && c->devid == r->devid);
	FUZZ_CHECK(r->ifindex > 0);
	FUZZ_CHECK(r->mode == XN_MODE_BRIDGED || r->mode == XN_MODE_ROUTED || r->mode == XN_MODE_NAT);
	check_name(r->name, false);
	check_name(r->bridge, true);
	check_name(r->uplink, true);
	check_name(c->bridge, true);
	check_name(c->vifname, true);
	check_name(c->gatewaydev, true);
	FUZZ_CHECK(!c->vifname[0] || xn_vif_parse_kernel_name(c->vifname, &d, &n, &emu) < 0);
	FUZZ_CHECK(!c->has_mac || (!(c->mac[0] & 1) &&
				   (c->mac[0] | c->mac[1] | c->mac[2] | c->mac[3] | c->mac[4] | c->mac[5])));
	FUZZ_CHECK(c->mtu == 0 || (c->mtu >= 68 && c->mtu <= 65535));
	FUZZ_CHECK(c->n_ips <= XN_VIF_MAX_IPS);
	for (size_t i = 0; i < c->n_ips; i++) {
		struct xn_addr net = xn_addr_network(&c->ips[i]);
		FUZZ_CHECK(c->ips[i].family == AF_INET || c->ips[i].family == AF_INET6);
		FUZZ_CHECK(xn_addr_equal(&net, &c->ips[i]));
	}
}

static void check_round_trip(const struct xn_vif_record *r)
{
	struct xn_buf once = { 0 }, twice = { 0 };
	struct xn_vif_record back;
	char *copy;

	FUZZ_CHECK(xn_vif_record_format(r, &once) == 0);
	FUZZ_CHECK(once.data && !memchr(once.data, '\n', once.len) && fuzz_printable(once.data));
	copy = strdup(once.data);
	FUZZ_CHECK(copy);
	FUZZ_CHECK(xn_vif_record_parse(copy, &back) == 0);
	FUZZ_CHECK(record_equal(r, &back));
	FUZZ_CHECK(xn_vif_record_format(&back, &twice) == 0);
	FUZZ_CHECK(once.len == twice.len && memcmp(once.data, twice.data, once.len) == 0);
	free(copy);
	xn_buf_free(&once);
	xn_buf_free(&twice);
}

static int on_line(char *line, void *ud)
{
	struct xn_vif_record rec;
	size_t *accepted = ud;
	int r;

	FUZZ_CHECK(!strchr(line, '\n') && line[0] != '#');
	if (strncmp(line, "boot ", 5) == 0)
		return 0;
	r = xn_vif_record_parse(line, &rec);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		return 0;
	}
	check_valid(&rec);
	check_round_trip(&rec);
	(*accepted)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t accepted = 0;

	if (size > 256 * 1024)
		return 0;
	FUZZ_CHECK(xn_read_lines(fuzz_input_path(data, size), on_line, &accepted, NULL) == 0);
	return 0;
}
