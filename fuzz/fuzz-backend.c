/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness for the backend values of a vif (what libxl writes
 * under backend/vif/D/N, which xennetd validates before anything touches
 * the kernel): xn_vif_conf_read() and its per-key parsers, and the parsers
 * of watch paths and vif device names.
 *
 * Input: the first line is a xenstore path (a watch event's), the next
 * lines are backend keys "KEY=VALUE" (the last one of a key counts); a
 * line "KEY" without "=", or a value with a NUL byte or over
 * XN_XS_VALUE_MAX bytes, is a key that cannot be read, as xn_xs_read()
 * reports it. Checked besides crashes:
 *  - a refused configuration leaves *conf untouched, and the message names
 *    the vif and the key ("backend/vif/D/N/KEY: ...") and is printable;
 *  - an accepted one holds only valid names, a unicast MAC, an MTU in
 *    range and networks with their host bits clear;
 *  - its values formatted back (MAC, MTU, the ip list) are read again to
 *    the same configuration;
 *  - it is saved in a vifs record (STATE_DIR/vifs) and read back equal;
 *  - a path or device name that parses formats back to itself. */
#include <stdio.h>
#include <string.h>

#include "fuzz-common.h"
#include "xennet/vif.h"
#include "xennet/vifstate.h"

/* Any key the input gives is there to be read: a key xn_vif_conf_read
 * learns to read (a new one, say "vlan") is fuzzed without a change here. */
#define MAX_KEYS 16
#define KEY_MAX 32

struct backend {
	size_t n;
	char name[MAX_KEYS][KEY_MAX];
	const char *value[MAX_KEYS]; /* NULL: absent; may be XN_VIF_BAD_VALUE */
	char copy[MAX_KEYS][XN_XS_VALUE_MAX + 1];
	size_t n_asked; /* the keys xn_vif_conf_read asked for */
	char asked[MAX_KEYS][KEY_MAX];
};

static int find_key(char (*names)[KEY_MAX], size_t n, const char *key, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(names[i]) == len && memcmp(names[i], key, len) == 0)
			return (int)i;
	return -1;
}

/* value: NULL (absent), XN_VIF_BAD_VALUE or vlen bytes to copy. */
static void set_value(struct backend *b, const char *key, size_t klen, const char *value, size_t vlen)
{
	int k = find_key(b->name, b->n, key, klen);

	if (k < 0) {
		if (b->n == MAX_KEYS || klen == 0 || klen >= KEY_MAX || memchr(key, '\0', klen))
			return;
		k = (int)b->n++;
		memcpy(b->name[k], key, klen);
		b->name[k][klen] = '\0';
	}
	if (!value || value == XN_VIF_BAD_VALUE) {
		b->value[k] = value;
		return;
	}
	memcpy(b->copy[k], value, vlen);
	b->copy[k][vlen] = '\0';
	b->value[k] = b->copy[k];
}

static const char *value_of(struct backend *b, const char *key)
{
	int k = find_key(b->name, b->n, key, strlen(key));

	return k < 0 ? NULL : b->value[k];
}

static const char *get_key(const char *key, void *ud)
{
	struct backend *b = ud;

	if (find_key(b->asked, b->n_asked, key, strlen(key)) < 0 && b->n_asked < MAX_KEYS)
		snprintf(b->asked[b->n_asked++], KEY_MAX, "%s", key);
	return value_of(b, key);
}

/* "KEY=VALUE"; "KEY" alone, a NUL in the value or a value over
 * XN_XS_VALUE_MAX bytes: a key that cannot be read. */
static void set_key(struct backend *b, const char *line, size_t len)
{
	const char *eq = memchr(line, '=', len);
	size_t klen = eq ? (size_t)(eq - line) : len;
	size_t vlen = eq ? len - klen - 1 : 0;

	if (!eq || vlen > XN_XS_VALUE_MAX || memchr(eq + 1, '\0', vlen))
		set_value(b, line, klen, XN_VIF_BAD_VALUE, 0);
	else
		set_value(b, line, klen, eq + 1, vlen);
}

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

static void check_name(const char *name, bool may_be_empty)
{
	FUZZ_CHECK(strnlen(name, IFNAMSIZ) < IFNAMSIZ);
	FUZZ_CHECK(may_be_empty ? !name[0] || xn_ifname_valid(name) : xn_ifname_valid(name));
}

static void check_valid(const struct xn_vif_conf *c)
{
	unsigned d, n;
	bool emu;

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

static void set_string(struct backend *b, const char *key, const char *value)
{
	set_value(b, key, strlen(key), value, value ? strlen(value) : 0);
}

/* The configuration's own values, formatted, read again (the other keys
 * as they were). */
static void check_reread(const struct backend *given, const struct xn_vif_conf *c)
{
	static struct backend b;
	struct xn_vif_conf again;
	struct xn_buf err = { 0 };
	char mac[18], mtu[16], a[XN_ADDR_STRLEN], ips[XN_VIF_MAX_IPS * (XN_ADDR_STRLEN + 1)];
	size_t len = 0;

	b = *given;
	set_string(&b, "type", c->ioemu ? "vif_ioemu" : "vif");
	set_string(&b, "bridge", c->bridge[0] ? c->bridge : NULL);
	set_string(&b, "vifname", c->vifname[0] ? c->vifname : NULL);
	set_string(&b, "gatewaydev", c->gatewaydev[0] ? c->gatewaydev : NULL);
	set_string(&b, "mac", c->has_mac ? xn_format_mac(c->mac, mac) : NULL);
	snprintf(mtu, sizeof(mtu), "%u", c->mtu);
	set_string(&b, "mtu", c->mtu ? mtu : NULL);
	for (size_t i = 0; i < c->n_ips; i++)
		len += (size_t)snprintf(ips + len, sizeof(ips) - len, "%s%s", i ? " " : "",
					xn_addr_format(&c->ips[i], true, a));
	FUZZ_CHECK(len < sizeof(ips) && len <= XN_XS_VALUE_MAX);
	set_string(&b, "ip", c->n_ips ? ips : NULL);

	FUZZ_CHECK(xn_vif_conf_read(c->domid, c->devid, get_key, &b, &again, &err) == 0);
	FUZZ_CHECK(conf_equal(c, &again));
	xn_buf_free(&err);
}

/* What hotplug-restart.c saves of a vif configured from it. */
static void check_record(const struct xn_vif_conf *c)
{
	struct xn_vif_record rec = { .domid = c->domid, .devid = c->devid, .ifindex = 7,
				     .mode = XN_MODE_BRIDGED, .filtered = true, .conf = *c };
	struct xn_vif_record back;
	struct xn_buf line = { 0 };

	if (c->vifname[0])
		memcpy(rec.name, c->vifname, IFNAMSIZ);
	else
		FUZZ_CHECK(xn_vif_kernel_name(c->domid, c->devid, false, rec.name) == 0);
	snprintf(rec.bridge, sizeof(rec.bridge), "%s", c->bridge[0] ? c->bridge : "xenbr0");
	FUZZ_CHECK(xn_vif_record_format(&rec, &line) == 0);
	FUZZ_CHECK(!memchr(line.data, '\n', line.len) && fuzz_printable(line.data));
	FUZZ_CHECK(xn_vif_record_parse(line.data, &back) == 0);
	FUZZ_CHECK(conf_equal(c, &back.conf));
	xn_buf_free(&line);
}

static void check_refused(int r, struct backend *b, const struct xn_vif_conf *c,
			  const struct xn_vif_conf *untouched, struct xn_buf *err, unsigned domid,
			  unsigned devid)
{
	char prefix[64];
	const char *msg = xn_buf_str(err);
	size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "backend/vif/%u/%u/", domid, devid);
	size_t klen;

	FUZZ_CHECK(r == -EINVAL);
	FUZZ_CHECK(memcmp(c, untouched, sizeof(*c)) == 0);
	FUZZ_CHECK(msg && strncmp(msg, prefix, plen) == 0);
	klen = strcspn(msg + plen, ":");
	FUZZ_CHECK(find_key(b->asked, b->n_asked, msg + plen, klen) >= 0 &&
		   msg[plen + klen] == ':');
	FUZZ_CHECK(fuzz_printable(msg));
}

/* A watch path and a device name: what parses formats back to itself. */
static void check_names(const char *first)
{
	unsigned d, n, d2, n2;
	const char *key, *key2;
	char path[XN_XS_VALUE_MAX + 64], name[IFNAMSIZ];
	bool emu, emu2;

	if (xn_vif_parse_path(first, &d, &n, &key) == 0) {
		FUZZ_CHECK(d < XN_DOMID_FIRST_RESERVED && n <= XN_VIF_MAX_DEVID);
		snprintf(path, sizeof(path), "backend/vif/%u/%u%s%s", d, n, *key ? "/" : "", key);
		FUZZ_CHECK(xn_vif_parse_path(path, &d2, &n2, &key2) == 0);
		FUZZ_CHECK(d == d2 && n == n2 && strcmp(key, key2) == 0);
	}
	/* Device names come from the kernel: at most 15 bytes. */
	if (strlen(first) < IFNAMSIZ && xn_vif_parse_kernel_name(first, &d, &n, &emu) == 0) {
		FUZZ_CHECK(xn_vif_kernel_name(d, n, emu, name) == 0 && strcmp(name, first) == 0);
		FUZZ_CHECK(xn_vif_parse_kernel_name(name, &d2, &n2, &emu2) == 0);
		FUZZ_CHECK(d == d2 && n == n2 && emu == emu2);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct backend b;
	struct xn_vif_conf c, untouched;
	struct xn_buf err = { 0 };
	const char *p = (const char *)data, *end = p + size;
	const char *nl = memchr(p, '\n', size);
	char first[XN_XS_VALUE_MAX + 1];
	unsigned domid = 1, devid = 0;
	size_t flen = nl ? (size_t)(nl - p) : size;
	int r;

	if (size > 64 * 1024)
		return 0;
	b.n = b.n_asked = 0;
	if (flen <= XN_XS_VALUE_MAX && !memchr(p, '\0', flen)) {
		const char *key;
		memcpy(first, p, flen);
		first[flen] = '\0';
		check_names(first);
		if (xn_vif_parse_path(first, &domid, &devid, &key) < 0)
			domid = 1, devid = 0;
	}
	for (p = nl ? nl + 1 : end; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
		set_key(&b, p, len);
		p += len + 1;
	}

	memset(&c, 0xa5, sizeof(c));
	untouched = c;
	r = xn_vif_conf_read(domid, devid, get_key, &b, &c, &err);
	if (r == 0) {
		FUZZ_CHECK(err.len == 0);
		FUZZ_CHECK(c.domid == domid && c.devid == devid);
		FUZZ_CHECK(c.has_mac == (value_of(&b, "mac") != NULL) &&
			   (c.mtu != 0) == (value_of(&b, "mtu") != NULL) &&
			   (c.n_ips != 0) == (value_of(&b, "ip") != NULL));
		check_valid(&c);
		check_reread(&b, &c);
		check_record(&c);
	} else {
		check_refused(r, &b, &c, &untouched, &err, domid, devid);
	}
	xn_buf_free(&err);
	return 0;
}
