/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/vifstate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* vif DOMID DEVID emu=0 ifindex=N name=NAME mode=MODE bridge=NAME
 * antispoof=0|1 uplink=NAME mac=MAC mtu=N vifname=NAME gatewaydev=NAME
 * keybridge=NAME ioemu=0|1 ip=ADDR/LEN,... -- empty values are empty. */

int xn_vif_record_format(const struct xn_vif_record *r, struct xn_buf *out)
{
	const struct xn_vif_conf *c = &r->conf;
	char a[XN_ADDR_STRLEN];

	if (!xn_ifname_valid(r->name))
		return -EINVAL;
	xn_buf_printf(out, "vif %u %u emu=%d ifindex=%d name=%s mode=%s bridge=%s antispoof=%d uplink=%s mac=",
		      r->domid, r->devid, r->emu, r->ifindex, r->name, xn_mode_name(r->mode), r->bridge,
		      r->filtered, r->uplink);
	if (c->has_mac)
		xn_buf_printf(out, "%02x:%02x:%02x:%02x:%02x:%02x", c->mac[0], c->mac[1],
			      c->mac[2], c->mac[3], c->mac[4], c->mac[5]);
	xn_buf_printf(out, " mtu=%u vifname=%s gatewaydev=%s keybridge=%s ioemu=%d ip=", c->mtu,
		      c->vifname, c->gatewaydev, c->bridge, c->ioemu);
	for (size_t i = 0; i < c->n_ips && i < XN_VIF_MAX_IPS; i++)
		xn_buf_printf(out, "%s%s", i ? "," : "", xn_addr_format(&c->ips[i], true, a));
	return out->oom ? -ENOMEM : 0;
}

static int take(char **p, const char *key, char **val)
{
	char *word = strsep(p, " ");
	size_t n = strlen(key);

	if (!word || strncmp(word, key, n) != 0 || word[n] != '=')
		return -EINVAL;
	*val = word + n + 1;
	return 0;
}

static int take_name(char **p, const char *key, bool optional, char out[IFNAMSIZ])
{
	char *v;

	if (take(p, key, &v) < 0)
		return -EINVAL;
	if (!*v && optional) {
		out[0] = '\0';
		return 0;
	}
	if (!xn_ifname_valid(v))
		return -EINVAL;
	snprintf(out, IFNAMSIZ, "%s", v);
	return 0;
}

static int take_uint(char **p, const char *key, unsigned long max, unsigned long *out)
{
	char *v;

	if (take(p, key, &v) < 0)
		return -EINVAL;
	return xn_parse_uint(v, 0, max, out);
}

int xn_vif_record_parse(char *line, struct xn_vif_record *r)
{
	struct xn_vif_record x = { 0 };
	struct xn_vif_conf *c = &x.conf;
	unsigned long u;
	char *p = line, *v, *word;

	word = strsep(&p, " ");
	if (!word || strcmp(word, "vif") != 0)
		return -EINVAL;
	word = strsep(&p, " ");
	if (!word || xn_parse_uint(word, 0, XN_DOMID_FIRST_RESERVED - 1, &u) < 0)
		return -EINVAL;
	x.domid = (unsigned)u;
	word = strsep(&p, " ");
	if (!word || xn_parse_uint(word, 0, XN_VIF_MAX_DEVID, &u) < 0)
		return -EINVAL;
	x.devid = (unsigned)u;
	c->domid = x.domid;
	c->devid = x.devid;
	if (take_uint(&p, "emu", 1, &u) < 0)
		return -EINVAL;
	x.emu = u;
	if (take_uint(&p, "ifindex", 0x7fffffff, &u) < 0 || u == 0)
		return -EINVAL;
	x.ifindex = (int)u;
	if (take_name(&p, "name", false, x.name) < 0 || take(&p, "mode", &v) < 0)
		return -EINVAL;
	if (xn_mode_from_name(v, &x.mode) < 0)
		return -EINVAL;
	if (take_name(&p, "bridge", true, x.bridge) < 0 || take_uint(&p, "antispoof", 1, &u) < 0)
		return -EINVAL;
	x.filtered = u;
	if (take_name(&p, "uplink", true, x.uplink) < 0 || take(&p, "mac", &v) < 0)
		return -EINVAL;
	if (*v) {
		if (xn_parse_mac(v, c->mac) < 0)
			return -EINVAL;
		c->has_mac = true;
	}
	if (take_uint(&p, "mtu", 65535, &u) < 0 || (u && u < 68))
		return -EINVAL;
	c->mtu = (unsigned)u;
	if (take_name(&p, "vifname", true, c->vifname) < 0 ||
	    (c->vifname[0] && xn_vif_parse_kernel_name(c->vifname, &(unsigned){ 0 },
							&(unsigned){ 0 }, &(bool){ false }) >= 0) ||
	    take_name(&p, "gatewaydev", true, c->gatewaydev) < 0 ||
	    take_name(&p, "keybridge", true, c->bridge) < 0 || take_uint(&p, "ioemu", 1, &u) < 0)
		return -EINVAL;
	c->ioemu = u;
	if (take(&p, "ip", &v) < 0 || p) /* ip is last */
		return -EINVAL;
	while (v && *v) {
		char *one = strsep(&v, ",");
		struct xn_addr a;
		/* As xn_vif_conf_read keeps them: networks, host bits clear. */
		if (c->n_ips == XN_VIF_MAX_IPS || xn_addr_parse(one, true, &a) < 0)
			return -EINVAL;
		c->ips[c->n_ips] = xn_addr_network(&a);
		if (memcmp(c->ips[c->n_ips].bytes, a.bytes, sizeof(a.bytes)) != 0)
			return -EINVAL;
		c->n_ips++;
		if (v && !*v) /* a trailing comma */
			return -EINVAL;
	}
	*r = x;
	return 0;
}

int xn_boot_id(char out[40])
{
	char buf[64];
	int r = xn_read_file("/proc/sys/kernel/random/boot_id", buf, sizeof(buf));

	if (r < 0)
		return r;
	buf[strcspn(buf, "\n")] = '\0';
	if (strlen(buf) != 36)
		return -EINVAL;
	memcpy(out, buf, 37);
	return 0;
}
