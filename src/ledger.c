/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/ledger.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "xennet/util.h"

static int append(void *arrp, size_t *n, size_t size, const void *item)
{
	void **arr = arrp;
	char *p = reallocarray(*arr, *n + 1, size);

	if (!p)
		return -ENOMEM;
	memcpy(p + *n * size, item, size);
	*arr = p;
	(*n)++;
	return 0;
}

static void remove_at(void *arr, size_t *n, size_t size, size_t i)
{
	char *p = arr;

	memmove(p + i * size, p + (i + 1) * size, (*n - i - 1) * size);
	(*n)--;
}

static void copy_name(char dst[IFNAMSIZ], const char *src)
{
	snprintf(dst, IFNAMSIZ, "%s", src);
}

void xn_ledger_clear(struct xn_ledger *l)
{
	free(l->bridges);
	free(l->ports);
	free(l->addrs);
	free(l->moved_addrs);
	free(l->moved_routes);
	free(l->sysctls);
	free(l->tuned);
	*l = (struct xn_ledger){ 0 };
}

bool xn_ledger_has_bridge(const struct xn_ledger *l, const char *name)
{
	for (size_t i = 0; i < l->n_bridges; i++)
		if (strcmp(l->bridges[i], name) == 0)
			return true;
	return false;
}

int xn_ledger_add_bridge(struct xn_ledger *l, const char *name)
{
	char b[IFNAMSIZ];

	if (xn_ledger_has_bridge(l, name))
		return 0;
	copy_name(b, name);
	return append(&l->bridges, &l->n_bridges, sizeof(b), b);
}

void xn_ledger_del_bridge(struct xn_ledger *l, const char *name)
{
	for (size_t i = 0; i < l->n_bridges; i++)
		if (strcmp(l->bridges[i], name) == 0)
			return remove_at(l->bridges, &l->n_bridges,
					 sizeof(l->bridges[0]), i);
}

bool xn_ledger_has_port(const struct xn_ledger *l, const char *bridge,
			const char *port)
{
	for (size_t i = 0; i < l->n_ports; i++)
		if (strcmp(l->ports[i].bridge, bridge) == 0 &&
		    strcmp(l->ports[i].port, port) == 0)
			return true;
	return false;
}

int xn_ledger_add_port(struct xn_ledger *l, const char *bridge, const char *port)
{
	struct xn_ledger_port p;

	if (xn_ledger_has_port(l, bridge, port))
		return 0;
	copy_name(p.bridge, bridge);
	copy_name(p.port, port);
	return append(&l->ports, &l->n_ports, sizeof(p), &p);
}

void xn_ledger_del_port(struct xn_ledger *l, const char *bridge, const char *port)
{
	for (size_t i = 0; i < l->n_ports; i++)
		if (strcmp(l->ports[i].bridge, bridge) == 0 &&
		    strcmp(l->ports[i].port, port) == 0)
			return remove_at(l->ports, &l->n_ports,
					 sizeof(l->ports[0]), i);
}

bool xn_ledger_has_addr(const struct xn_ledger *l, const char *dev,
			const struct xn_addr *a)
{
	for (size_t i = 0; i < l->n_addrs; i++)
		if (strcmp(l->addrs[i].dev, dev) == 0 &&
		    xn_addr_equal(&l->addrs[i].addr, a))
			return true;
	return false;
}

int xn_ledger_add_addr(struct xn_ledger *l, const char *dev,
		       const struct xn_addr *a)
{
	struct xn_ledger_addr e = { .addr = *a };

	if (xn_ledger_has_addr(l, dev, a))
		return 0;
	copy_name(e.dev, dev);
	return append(&l->addrs, &l->n_addrs, sizeof(e), &e);
}

void xn_ledger_del_addr(struct xn_ledger *l, const char *dev,
			const struct xn_addr *a)
{
	for (size_t i = 0; i < l->n_addrs; i++)
		if (strcmp(l->addrs[i].dev, dev) == 0 &&
		    xn_addr_equal(&l->addrs[i].addr, a))
			return remove_at(l->addrs, &l->n_addrs,
					 sizeof(l->addrs[0]), i);
}

int xn_ledger_add_moved_addr(struct xn_ledger *l, const char *from,
			     const char *to, const struct xn_addr *a)
{
	struct xn_ledger_moved_addr e = { .addr = *a };

	for (size_t i = 0; i < l->n_moved_addrs; i++)
		if (strcmp(l->moved_addrs[i].from, from) == 0 &&
		    strcmp(l->moved_addrs[i].to, to) == 0 &&
		    xn_addr_equal(&l->moved_addrs[i].addr, a))
			return 0;
	copy_name(e.from, from);
	copy_name(e.to, to);
	return append(&l->moved_addrs, &l->n_moved_addrs, sizeof(e), &e);
}

void xn_ledger_del_moved_addr(struct xn_ledger *l, const char *from,
			      const char *to, const struct xn_addr *a)
{
	for (size_t i = 0; i < l->n_moved_addrs; i++)
		if (strcmp(l->moved_addrs[i].from, from) == 0 &&
		    strcmp(l->moved_addrs[i].to, to) == 0 &&
		    xn_addr_equal(&l->moved_addrs[i].addr, a))
			return remove_at(l->moved_addrs, &l->n_moved_addrs,
					 sizeof(l->moved_addrs[0]), i);
}

int xn_ledger_add_moved_route(struct xn_ledger *l, const char *from,
			      const char *to, const struct xn_route *r)
{
	struct xn_ledger_moved_route e = { .route = *r };

	e.route.ifindex = 0;
	copy_name(e.from, from);
	copy_name(e.to, to);
	return append(&l->moved_routes, &l->n_moved_routes, sizeof(e), &e);
}

void xn_ledger_del_moved_route(struct xn_ledger *l, size_t index)
{
	if (index < l->n_moved_routes)
		remove_at(l->moved_routes, &l->n_moved_routes,
			  sizeof(l->moved_routes[0]), index);
}

const struct xn_ledger_sysctl *xn_ledger_sysctl(const struct xn_ledger *l,
						const char *path)
{
	for (size_t i = 0; i < l->n_sysctls; i++)
		if (strcmp(l->sysctls[i].path, path) == 0)
			return &l->sysctls[i];
	return NULL;
}

int xn_ledger_add_sysctl(struct xn_ledger *l, const char *path,
			 const char *original)
{
	struct xn_ledger_sysctl e;

	if (xn_ledger_sysctl(l, path))
		return 0;
	if (strlen(path) >= sizeof(e.path) ||
	    strlen(original) >= sizeof(e.original) || strpbrk(original, " \n"))
		return -EINVAL;
	snprintf(e.path, sizeof(e.path), "%s", path);
	snprintf(e.original, sizeof(e.original), "%s", original);
	return append(&l->sysctls, &l->n_sysctls, sizeof(e), &e);
}

void xn_ledger_del_sysctl(struct xn_ledger *l, const char *path)
{
	for (size_t i = 0; i < l->n_sysctls; i++)
		if (strcmp(l->sysctls[i].path, path) == 0)
			return remove_at(l->sysctls, &l->n_sysctls,
					 sizeof(l->sysctls[0]), i);
}

const struct xn_ledger_tuned *xn_ledger_tuned(const struct xn_ledger *l, const char *bridge)
{
	for (size_t i = 0; i < l->n_tuned; i++)
		if (strcmp(l->tuned[i].bridge, bridge) == 0)
			return &l->tuned[i];
	return NULL;
}

int xn_ledger_add_tuned(struct xn_ledger *l, const char *bridge, uint32_t stp,
			uint32_t forward_delay)
{
	struct xn_ledger_tuned t = { .stp = stp, .forward_delay = forward_delay };

	if (xn_ledger_tuned(l, bridge))
		return 0;
	copy_name(t.bridge, bridge);
	return append(&l->tuned, &l->n_tuned, sizeof(t), &t);
}

void xn_ledger_del_tuned(struct xn_ledger *l, const char *bridge)
{
	for (size_t i = 0; i < l->n_tuned; i++)
		if (strcmp(l->tuned[i].bridge, bridge) == 0)
			return remove_at(l->tuned, &l->n_tuned, sizeof(l->tuned[0]), i);
}

/* ---- file format: one record per line, words separated by spaces ---- */

static void put_route(struct xn_buf *b, const struct xn_ledger_moved_route *m)
{
	char d[XN_ADDR_STRLEN], g[XN_ADDR_STRLEN], s[XN_ADDR_STRLEN];
	const struct xn_route *r = &m->route;

	xn_buf_printf(b, "route %s %s %s %s %s %u %u %u %u\n", m->from, m->to,
		      xn_addr_format(&r->dst, true, d),
		      r->has_gateway ? xn_addr_format(&r->gateway, false, g) : "-",
		      r->has_prefsrc ? xn_addr_format(&r->prefsrc, false, s) : "-",
		      r->priority, r->table, r->protocol, r->scope);
}

int xn_ledger_save(const char *path, const struct xn_ledger *l)
{
	struct xn_buf b = { 0 };
	char a[XN_ADDR_STRLEN];
	const char *text;
	int r;

	/* The profile path is the rest of its line: a newline in it would
	 * end it there and make the rest a record of its own. */
	if (strchr(l->profile, '\n'))
		return -EINVAL;
	xn_buf_printf(&b, "# xennet ledger: what xennetd changed on this host. Do not edit.\n");
	if (l->profile[0])
		xn_buf_printf(&b, "profile %s\n", l->profile);
	for (size_t i = 0; i < l->n_bridges; i++)
		xn_buf_printf(&b, "bridge %s\n", l->bridges[i]);
	for (size_t i = 0; i < l->n_ports; i++)
		xn_buf_printf(&b, "port %s %s\n", l->ports[i].bridge,
			      l->ports[i].port);
	for (size_t i = 0; i < l->n_addrs; i++)
		xn_buf_printf(&b, "address %s %s\n", l->addrs[i].dev,
			      xn_addr_format(&l->addrs[i].addr, true, a));
	for (size_t i = 0; i < l->n_moved_addrs; i++)
		xn_buf_printf(&b, "moved %s %s %s\n", l->moved_addrs[i].from,
			      l->moved_addrs[i].to,
			      xn_addr_format(&l->moved_addrs[i].addr, true, a));
	for (size_t i = 0; i < l->n_moved_routes; i++)
		put_route(&b, &l->moved_routes[i]);
	for (size_t i = 0; i < l->n_sysctls; i++)
		xn_buf_printf(&b, "sysctl %s %s\n", l->sysctls[i].path,
			      l->sysctls[i].original);
	for (size_t i = 0; i < l->n_tuned; i++)
		xn_buf_printf(&b, "tuned %s %u %u\n", l->tuned[i].bridge, l->tuned[i].stp,
			      l->tuned[i].forward_delay);
	text = xn_buf_str(&b);
	r = text ? xn_write_file_atomic(path, text, strlen(text)) : -ENOMEM;
	xn_buf_free(&b);
	return r;
}

static int parse_u(const char *s, unsigned long max, unsigned *ret)
{
	unsigned long v;
	int r = xn_parse_uint(s, 0, max, &v);

	if (r < 0)
		return r;
	*ret = (unsigned)v;
	return 0;
}

/* "profile PATH": the path is the rest of the line, spaces and all. */
static int parse_profile(struct xn_ledger *l, const char *path)
{
	if (!*path || strlen(path) >= sizeof(l->profile))
		return -EBADMSG;
	snprintf(l->profile, sizeof(l->profile), "%s", path);
	return 0;
}

static int parse_line(struct xn_ledger *l, char *line)
{
	char *w[12];
	size_t n = 0;
	struct xn_addr a;

	if (strncmp(line, "profile ", 8) == 0)
		return parse_profile(l, line + 8);
	for (char *save = NULL, *t = strtok_r(line, " ", &save); t;
	     t = strtok_r(NULL, " ", &save)) {
		if (n == XN_ARRAY_SIZE(w))
			return -EBADMSG;
		w[n++] = t;
	}
	if (n == 0)
		return 0;
	/* Every word after the first names an interface, except where a
	 * record says otherwise below. */
	if (strcmp(w[0], "bridge") == 0 || strcmp(w[0], "port") == 0)
		for (size_t i = 1; i < n; i++)
			if (!xn_ifname_valid(w[i]))
				return -EBADMSG;
	if ((strcmp(w[0], "address") == 0 || strcmp(w[0], "moved") == 0) &&
	    (n < 3 || !xn_ifname_valid(w[1]) ||
	     (n == 4 && !xn_ifname_valid(w[2]))))
		return -EBADMSG;

	if (strcmp(w[0], "bridge") == 0 && n == 2)
		return xn_ledger_add_bridge(l, w[1]);
	if (strcmp(w[0], "port") == 0 && n == 3)
		return xn_ledger_add_port(l, w[1], w[2]);
	if (strcmp(w[0], "address") == 0 && n == 3) {
		if (xn_addr_parse(w[2], true, &a) < 0)
			return -EBADMSG;
		return xn_ledger_add_addr(l, w[1], &a);
	}
	if (strcmp(w[0], "moved") == 0 && n == 4) {
		if (xn_addr_parse(w[3], true, &a) < 0)
			return -EBADMSG;
		return xn_ledger_add_moved_addr(l, w[1], w[2], &a);
	}
	/* route FROM TO DST/LEN GATEWAY|- PREFSRC|- PRIORITY TABLE PROTOCOL
	 * SCOPE: the gateway and the source are addresses, not networks. */
	if (strcmp(w[0], "route") == 0 && n == 10) {
		struct xn_route r = { 0 };
		unsigned proto, scope;
		if (!xn_ifname_valid(w[1]) || !xn_ifname_valid(w[2]) ||
		    xn_addr_parse(w[3], true, &r.dst) < 0)
			return -EBADMSG;
		r.family = r.dst.family;
		if (strcmp(w[4], "-") != 0) {
			if (strchr(w[4], '/') || xn_addr_parse(w[4], false, &r.gateway) < 0 ||
			    r.gateway.family != r.family)
				return -EBADMSG;
			r.has_gateway = true;
		}
		if (strcmp(w[5], "-") != 0) {
			if (strchr(w[5], '/') || xn_addr_parse(w[5], false, &r.prefsrc) < 0 ||
			    r.prefsrc.family != r.family)
				return -EBADMSG;
			r.has_prefsrc = true;
		}
		if (parse_u(w[6], UINT32_MAX, &r.priority) < 0 ||
		    parse_u(w[7], UINT32_MAX, &r.table) < 0 ||
		    parse_u(w[8], 255, &proto) < 0 || parse_u(w[9], 255, &scope) < 0)
			return -EBADMSG;
		r.protocol = (uint8_t)proto;
		r.scope = (uint8_t)scope;
		return xn_ledger_add_moved_route(l, w[1], w[2], &r);
	}
	/* tuned BRIDGE STP FORWARD_DELAY: what an adopted bridge had. */
	if (strcmp(w[0], "tuned") == 0 && n == 4) {
		unsigned stp, fd;
		if (!xn_ifname_valid(w[1]) || parse_u(w[2], 1, &stp) < 0 ||
		    parse_u(w[3], UINT32_MAX - 1, &fd) < 0)
			return -EBADMSG;
		return xn_ledger_add_tuned(l, w[1], stp, fd);
	}
	if (strcmp(w[0], "sysctl") == 0 && n == 3) {
		if (strstr(w[1], "..") || w[1][0] == '/' ||
		    strncmp(w[1], "net/", 4) != 0)
			return -EBADMSG;
		return xn_ledger_add_sysctl(l, w[1], w[2]) < 0 ? -EBADMSG : 0;
	}
	return -EBADMSG;
}

static int parse_one(char *line, void *userdata)
{
	return parse_line(userdata, line);
}

int xn_ledger_load(const char *path, struct xn_ledger *l, unsigned *bad_line)
{
	int r;

	*l = (struct xn_ledger){ 0 };
	r = xn_read_lines(path, parse_one, l, bad_line);
	if (r < 0)
		xn_ledger_clear(l);
	return r;
}
