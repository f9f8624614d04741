/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/vif.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

const char XN_VIF_BAD_VALUE[] = "\x01<bad value>";

static bool all_digits(const char *s, size_t n)
{
	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static int parse_id(const char *s, size_t n, unsigned max, unsigned *ret)
{
	unsigned v = 0;

	if (!all_digits(s, n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int xn_vif_parse_path(const char *path, unsigned *domid, unsigned *devid,
		      const char **key)
{
	const char *p = strstr(path, "backend/vif/");
	const char *slash;
	unsigned d, n;

	if (!p || (p != path && p[-1] != '/'))
		return -EINVAL;
	if (p != path && strncmp(path, "/local/domain/", 14) != 0)
		return -EINVAL;
	p += strlen("backend/vif/");
	slash = strchr(p, '/');
	if (!slash || parse_id(p, (size_t)(slash - p), XN_DOMID_FIRST_RESERVED - 1, &d) < 0)
		return -EINVAL;
	p = slash + 1;
	slash = strchr(p, '/');
	if (parse_id(p, slash ? (size_t)(slash - p) : strlen(p), XN_VIF_MAX_DEVID, &n) < 0)
		return -EINVAL;
	*domid = d;
	*devid = n;
	*key = slash ? slash + 1 : "";
	return 0;
}

int xn_vif_kernel_name(unsigned domid, unsigned devid, bool emu,
		       char out[IFNAMSIZ])
{
	int n = snprintf(out, IFNAMSIZ, "vif%u.%u%s", domid, devid, emu ? "-emu" : "");

	return n < 0 || n >= IFNAMSIZ ? -ENAMETOOLONG : 0;
}

int xn_vif_parse_kernel_name(const char *name, unsigned *domid, unsigned *devid,
			     bool *emu)
{
	const char *dot, *end;
	size_t len = strlen(name);

	if (strncmp(name, "vif", 3) != 0)
		return -EINVAL;
	*emu = len > 4 && strcmp(name + len - 4, "-emu") == 0;
	end = name + len - (*emu ? 4 : 0);
	dot = memchr(name + 3, '.', (size_t)(end - name - 3));
	if (!dot || parse_id(name + 3, (size_t)(dot - name - 3), XN_DOMID_FIRST_RESERVED - 1, domid) < 0 ||
	    parse_id(dot + 1, (size_t)(end - dot - 1), XN_VIF_MAX_DEVID, devid) < 0)
		return -EINVAL;
	return 0;
}

int xn_parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t m[6];

	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    (i < 5 && p[2] != ':'))
			return -EINVAL;
		m[i] = (uint8_t)strtoul((char[]){ p[0], p[1], 0 }, NULL, 16);
	}
	if (m[0] & 1) /* multicast */
		return -EINVAL;
	if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
}

const char *xn_format_mac(const uint8_t m[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
		 m[4], m[5]);
	return buf;
}

/* Quote a hostile value for a message: printable ASCII only, bounded. */
static void quote(struct xn_buf *err, const char *v)
{
	size_t n = 0;

	xn_buf_printf(err, "\"");
	for (; *v && n < 64; v++, n++) {
		unsigned char c = (unsigned char)*v;
		if (c == '"' || c == '\\')
			xn_buf_printf(err, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			xn_buf_printf(err, "%c", c);
		else
			xn_buf_printf(err, "\\x%02x", c);
	}
	xn_buf_printf(err, "%s\"", *v ? "..." : "");
}

static int bad(struct xn_buf *err, const struct xn_vif_conf *c, const char *key,
	       const char *value, const char *why)
{
	xn_buf_printf(err, "backend/vif/%u/%u/%s: ", c->domid, c->devid, key);
	if (value == XN_VIF_BAD_VALUE)
		xn_buf_printf(err, "unreadable value (too long or not text)");
	else {
		quote(err, value);
		xn_buf_printf(err, " %s", why);
	}
	return -EINVAL;
}

static int read_ifname(const char *key, const char *v, struct xn_vif_conf *c,
		       char out[IFNAMSIZ], struct xn_buf *err)
{
	if (!v)
		return 0;
	if (v == XN_VIF_BAD_VALUE)
		return bad(err, c, key, v, NULL);
	if (strlen(v) >= IFNAMSIZ)
		return bad(err, c, key, v, "is longer than 15 bytes, the limit of an interface name");
	if (!xn_ifname_valid(v))
		return bad(err, c, key, v, "is not a valid interface name (letters, digits, \"_\", \".\", \"-\")");
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int read_ips(const char *v, struct xn_vif_conf *c, struct xn_buf *err)
{
	char copy[XN_XS_VALUE_MAX + 1];
	char *save = NULL;

	if (!v)
		return 0;
	if (v == XN_VIF_BAD_VALUE)
		return bad(err, c, "ip", v, NULL);
	for (const char *p = v; *p; p++)
		if (!(isxdigit((unsigned char)*p) || *p == '.' || *p == ':' || *p == '/' || *p == ' '))
			return bad(err, c, "ip", v, "is not a space-separated list of IP addresses");
	snprintf(copy, sizeof(copy), "%s", v);
	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		struct xn_addr a;
		if (c->n_ips == XN_VIF_MAX_IPS)
			return bad(err, c, "ip", v, "has more than 16 addresses");
		if (xn_addr_parse(t, false, &a) < 0) {
			xn_buf_printf(err, "backend/vif/%u/%u/ip: ", c->domid, c->devid);
			quote(err, t);
			xn_buf_printf(err, " is not an IP address or network");
			return -EINVAL;
		}
		c->ips[c->n_ips++] = xn_addr_network(&a);
	}
	if (c->n_ips == 0)
		return bad(err, c, "ip", v, "holds no address");
	return 0;
}

int xn_vif_conf_read(unsigned domid, unsigned devid, xn_vif_key_reader get,
		     void *ud, struct xn_vif_conf *conf, struct xn_buf *err)
{
	struct xn_vif_conf c = { .domid = domid, .devid = devid };
	const char *v;
	int r;

	v = get("type", ud);
	if (v == XN_VIF_BAD_VALUE)
		return bad(err, &c, "type", v, NULL);
	if (v && strcmp(v, "vif") != 0 && strcmp(v, "vif_ioemu") != 0)
		return bad(err, &c, "type", v, "is neither \"vif\" nor \"vif_ioemu\"");
	c.ioemu = v && strcmp(v, "vif_ioemu") == 0;

	r = read_ifname("bridge", get("bridge", ud), &c, c.bridge, err);
	if (r < 0)
		return r;
	r = read_ifname("vifname", get("vifname", ud), &c, c.vifname, err);
	if (r < 0)
		return r;
	{
		unsigned d, n;
		bool emu;
		/* A vifname that looks like another vif's kernel name would
		 * make that vif's events ours. */
		if (c.vifname[0] && xn_vif_parse_kernel_name(c.vifname, &d, &n, &emu) >= 0)
			return bad(err, &c, "vifname", c.vifname,
				   "looks like a kernel vif name (vifD.N); choose another name");
	}
	r = read_ifname("gatewaydev", get("gatewaydev", ud), &c, c.gatewaydev, err);
	if (r < 0)
		return r;

	v = get("mac", ud);
	if (v) {
		if (v == XN_VIF_BAD_VALUE || xn_parse_mac(v, c.mac) < 0)
			return bad(err, &c, "mac", v,
				   "is not a unicast MAC address like 00:16:3e:xx:xx:xx");
		c.has_mac = true;
	}
	v = get("mtu", ud);
	if (v) {
		unsigned long m;
		if (v == XN_VIF_BAD_VALUE || xn_parse_uint(v, 68, 65535, &m) < 0)
			return bad(err, &c, "mtu", v, "is not an MTU between 68 and 65535");
		c.mtu = (unsigned)m;
	}
	r = read_ips(get("ip", ud), &c, err);
	if (r < 0)
		return r;
	*conf = c;
	return 0;
}
