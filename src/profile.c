/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/profile.h"
#include "xennet/mapping.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xennet/util.h"

/* How a profile is read.
 *
 * inih splits "key = value" lines and strips inline " ;" comments. It only
 * ever reports the line of its first error and silently splits lines longer
 * than its buffer, so everything else happens in our reader, which sees each
 * line before inih does:
 *  - it counts lines, so the handler knows where it is;
 *  - it parses "[kind NAME]" headers itself (inih would cut names at 49
 *    bytes), so duplicate, empty and badly named sections are caught with
 *    their line, and hands inih a blank line instead;
 *  - it strips leading blanks, so indented keys are fine and inih never
 *    takes a line for the continuation of the previous value;
 *  - it refuses lines longer than inih's buffer, NUL bytes and lines that
 *    are not "key = value", and hands inih a blank line for them.
 * Every problem is collected with its line; a second pass checks what spans
 * sections. Nothing is logged here: the caller prints xn_diag. */

#define PROFILE_MAX_BYTES (1024 * 1024)
#define MAX_ERRORS 100
#define LINE_STORE 4096 /* bytes of a line kept; longer ones are refused */
#define MAP_NAME_MAX 63
#define QUOTE_MAX 80 /* bytes of a bad value shown in a message */
#define QUOTE_BUF (QUOTE_MAX * 4 + 8)

enum sect_kind {
	SECT_XENNET,
	SECT_BRIDGE,
	SECT_ROUTED,
	SECT_NAT,
	SECT_MAP,
	SECT_FORWARD,
};

static const struct sect_def {
	const char *kind;
	bool named;
} sect_defs[] = {
	[SECT_XENNET] = { "xennet", false }, [SECT_BRIDGE] = { "bridge", true },
	[SECT_ROUTED] = { "routed", false }, [SECT_NAT] = { "nat", false },
	[SECT_MAP] = { "map", true },
	[SECT_FORWARD] = { "forward", true },
};

enum key_id {
	K_MODE,
	K_ANTISPOOF,
	K_BR_UPLINK,
	K_BR_TAKE,
	K_BR_ADDRESS,
	K_BR_MTU,
	K_BR_STP,
	K_BR_FORWARD_DELAY,
	K_ROUTED_UPLINK,
	K_NAT_UPLINK,
	K_NAT_BRIDGE,
	K_MAP_PUBLIC,
	K_MAP_GUEST,
	K_FWD_PUBLIC,
	K_FWD_GUEST,
	N_KEYS,
};

struct load_ctx;
struct sect;

/* Parses value into field. Returns NULL when the value is good, else a
 * detail for the message ("" for none). */
typedef const char *(*value_parser)(struct load_ctx *c, struct sect *s,
				    void *field, const char *value);

static const char *parse_mode(struct load_ctx *c, struct sect *s, void *field,
			      const char *value);
static const char *parse_bool(struct load_ctx *c, struct sect *s, void *field,
			      const char *value);
static const char *parse_ifname(struct load_ctx *c, struct sect *s,
				void *field, const char *value);
static const char *parse_address(struct load_ctx *c, struct sect *s,
				 void *field, const char *value);
static const char *parse_mtu(struct load_ctx *c, struct sect *s, void *field,
			     const char *value);
static const char *parse_ipv4_host(struct load_ctx *c, struct sect *s,
				   void *field, const char *value);
static const char *parse_stp(struct load_ctx *c, struct sect *s, void *field,
			     const char *value);
static const char *parse_forward_delay(struct load_ctx *c, struct sect *s, void *field,
				       const char *value);
static const char *parse_fwd_public(struct load_ctx *c, struct sect *s,
				    void *field, const char *value);
static const char *parse_fwd_guest(struct load_ctx *c, struct sect *s,
				   void *field, const char *value);

static const struct key_def {
	enum sect_kind sect;
	const char *key;
	const char *what; /* the kind of value, for messages */
	value_parser parse;
	size_t offset; /* in xn_profile, xn_bridge_conf or xn_map_conf */
	bool repeat;
} keys[] = {
#define KEY(s, k, w, p, o) { .sect = s, .key = k, .what = w, .parse = p, .offset = o }
	[K_MODE] = KEY(SECT_XENNET, "mode", "mode", parse_mode,
		       offsetof(struct xn_profile, mode)),
	[K_ANTISPOOF] = KEY(SECT_XENNET, "antispoof", "boolean", parse_bool,
			    offsetof(struct xn_profile, antispoof)),
	[K_BR_UPLINK] = KEY(SECT_BRIDGE, "uplink", "interface name",
			    parse_ifname,
			    offsetof(struct xn_bridge_conf, uplink)),
	[K_BR_TAKE] = KEY(SECT_BRIDGE, "take_addresses", "boolean", parse_bool,
			  offsetof(struct xn_bridge_conf, take_addresses)),
	[K_BR_ADDRESS] = { .sect = SECT_BRIDGE, .key = "address",
			   .what = "address", .parse = parse_address,
			   .offset = 0, .repeat = true },
	[K_BR_MTU] = KEY(SECT_BRIDGE, "mtu", "MTU", parse_mtu,
			 offsetof(struct xn_bridge_conf, mtu)),
	[K_BR_STP] = KEY(SECT_BRIDGE, "stp", "boolean", parse_stp,
			 offsetof(struct xn_bridge_conf, stp)),
	[K_BR_FORWARD_DELAY] = KEY(SECT_BRIDGE, "forward_delay", "seconds",
				   parse_forward_delay,
				   offsetof(struct xn_bridge_conf, forward_delay)),
	[K_ROUTED_UPLINK] = KEY(SECT_ROUTED, "uplink", "interface name",
				parse_ifname,
				offsetof(struct xn_profile, routed_uplink)),
	[K_NAT_UPLINK] = KEY(SECT_NAT, "uplink", "interface name", parse_ifname,
			     offsetof(struct xn_profile, nat_uplink)),
	[K_NAT_BRIDGE] = KEY(SECT_NAT, "bridge", "bridge name", parse_ifname,
			     offsetof(struct xn_profile, nat_bridge)),
	[K_MAP_PUBLIC] = KEY(SECT_MAP, "public", "IPv4 address",
			     parse_ipv4_host,
			     offsetof(struct xn_map_conf, public_addr)),
	[K_MAP_GUEST] = KEY(SECT_MAP, "guest", "IPv4 address", parse_ipv4_host,
			    offsetof(struct xn_map_conf, guest)),
	[K_FWD_PUBLIC] = KEY(SECT_FORWARD, "public", "ADDRESS:PORT/tcp|udp",
			     parse_fwd_public, 0),
	[K_FWD_GUEST] = KEY(SECT_FORWARD, "guest", "ADDRESS:PORT", parse_fwd_guest, 0),
#undef KEY
};

_Static_assert(XN_ARRAY_SIZE(keys) == N_KEYS, "one key_def per key_id");

/* A section as written in the file. A duplicate header points back at the
 * first one, whose keys it continues. */
struct sect {
	enum sect_kind kind;
	char name[MAP_NAME_MAX + 1];
	unsigned line;
	unsigned content; /* lines other than blanks and comments */
	bool dup;
	size_t idx; /* in p->bridges or p->maps */
	unsigned key_line[N_KEYS]; /* first line that set the key */
	bool key_ok[N_KEYS]; /* the key was set to a good value */
	unsigned bad_addresses;
	unsigned *addr_lines; /* bridge: the line of each address */
};

struct error {
	unsigned line;
	size_t seq;
	char *msg;
};

enum { CUR_NONE = -1, CUR_SKIP = -2 };

struct load_ctx {
	const char *path;
	FILE *f;
	char line[LINE_STORE];
	unsigned lineno;
	size_t total;
	bool stop; /* do not read further */
	int io_err;
	bool oom;

	struct xn_profile *p;
	struct sect *sects;
	size_t n_sects;
	/* sects by kind and name (a profile may have 10,000 [map]
	 * sections): open addressing, a slot holds index + 1, 0 is free. */
	size_t *by_name;
	size_t by_name_cap; /* a power of two, at most half full */
	long cur; /* index in sects, CUR_NONE before any, CUR_SKIP in a bad one */
	unsigned n_bridge_headers;
	unsigned n_broken_headers; /* unreadable or unknown: maybe a typo */

	struct error *errs;
	size_t n_errs;
	char detail[256];
};

/* ---- messages ---- */

/* s between double quotes; quotes, backslashes, control and non-ASCII
 * bytes escaped, cut after QUOTE_MAX bytes. */
static const char *quote(const char *s, char buf[QUOTE_BUF])
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; s[i] && i < QUOTE_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			o += (size_t)snprintf(buf + o, 5, "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	if (s[i]) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static void add_error(struct load_ctx *c, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_error(struct load_ctx *c, unsigned line, const char *fmt, ...)
{
	struct error *v;
	va_list ap;
	char *msg;
	int r;

	if (c->oom || c->n_errs > MAX_ERRORS)
		return;
	if (c->n_errs == MAX_ERRORS) {
		/* One last line, then stop reading: a binary file or a wrong
		 * path should not produce a message per line. */
		c->stop = true;
		r = asprintf(&msg, "too many errors, giving up");
		if (line < c->lineno)
			line = c->lineno; /* sorts after the others */
	} else {
		va_start(ap, fmt);
		r = vasprintf(&msg, fmt, ap);
		va_end(ap);
	}
	if (r < 0) {
		c->oom = true;
		return;
	}
	v = reallocarray(c->errs, c->n_errs + 1, sizeof(*v));
	if (!v) {
		free(msg);
		c->oom = true;
		return;
	}
	c->errs = v;
	v[c->n_errs] = (struct error){ line ? line : 1, c->n_errs, msg };
	c->n_errs++;
}

/* "[bridge xenbr0]", "[xennet]": a section as the admin wrote it. */
static const char *label(const struct sect *s, char buf[80])
{
	if (sect_defs[s->kind].named)
		snprintf(buf, 80, "[%s %s]", sect_defs[s->kind].kind, s->name);
	else
		snprintf(buf, 80, "[%s]", sect_defs[s->kind].kind);
	return buf;
}

static int diag_add(struct xn_diag *d, char *line)
{
	char **v;

	if (!d) {
		free(line);
		return 0;
	}
	v = reallocarray(d->lines, d->n + 1, sizeof(*v));
	if (!v) {
		free(line);
		return -ENOMEM;
	}
	d->lines = v;
	d->lines[d->n++] = line;
	return 0;
}

static void diag_addf(struct xn_diag *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void diag_addf(struct xn_diag *d, const char *fmt, ...)
{
	va_list ap;
	char *line;
	int r;

	if (!d)
		return;
	va_start(ap, fmt);
	r = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (r >= 0)
		diag_add(d, line);
}

void xn_diag_free(struct xn_diag *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->lines[i]);
	free(d->lines);
	*d = (struct xn_diag){ 0 };
}

/* ---- small helpers ---- */

static bool same_host(const struct xn_addr *a, const struct xn_addr *b)
{
	return a->family == b->family &&
	       memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16) == 0;
}

static bool overlap(const struct xn_addr *a, const struct xn_addr *b)
{
	return a->family == b->family &&
	       (xn_addr_in_network(a, b) || xn_addr_in_network(b, a));
}

/* Addresses no bridge or mapping can use. */
static const char *special_address(const struct xn_addr *a)
{
	static const unsigned char v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const unsigned char zero[16];

	if (a->family == AF_INET) {
		unsigned char b0 = a->bytes[0];
		if (b0 == 0)
			return "addresses in 0.0.0.0/8 cannot be used";
		if (b0 == 127)
			return "that is a loopback address";
		if (b0 >= 224 && b0 <= 239)
			return "that is a multicast address";
		if (b0 >= 240)
			return "addresses in 240.0.0.0/4 cannot be used";
		return NULL;
	}
	if (memcmp(a->bytes, zero, 16) == 0)
		return "that is the unspecified address";
	if (memcmp(a->bytes, zero, 15) == 0 && a->bytes[15] == 1)
		return "that is the loopback address";
	if (a->bytes[0] == 0xff)
		return "that is a multicast address";
	if (memcmp(a->bytes, v4mapped, 12) == 0)
		return "IPv4-mapped addresses cannot be used";
	return NULL;
}

static const char *ifname_problem(const char *s)
{
	static char buf[64];

	if (strcmp(s, "all") == 0 || strcmp(s, "default") == 0)
		return "\"all\" and \"default\" name sysctl trees, not interfaces";
	if (strcmp(s, "lo") == 0)
		return "that is the loopback interface";
	if (xn_ifname_valid(s))
		return NULL;
	if (strlen(s) > 15) {
		snprintf(buf, sizeof(buf), "%zu bytes long, at most 15 allowed",
			 strlen(s));
		return buf;
	}
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return "\".\" and \"..\" are not allowed";
	return "only letters, digits, \"_\", \".\" and \"-\" are allowed";
}

static const char *map_name_problem(const char *s)
{
	size_t n = strlen(s);

	if (n > MAP_NAME_MAX)
		return "longer than 63 bytes";
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		      ch == '-'))
			return "only letters, digits, \"_\", \".\" and \"-\" are allowed";
	}
	return NULL;
}

static struct sect *find_kind(struct load_ctx *c, enum sect_kind kind)
{
	for (size_t i = 0; i < c->n_sects; i++)
		if (c->sects[i].kind == kind)
			return &c->sects[i];
	return NULL;
}

static struct sect *find_bridge(struct load_ctx *c, const char *name)
{
	for (size_t i = 0; i < c->n_sects; i++)
		if (c->sects[i].kind == SECT_BRIDGE &&
		    strcmp(c->sects[i].name, name) == 0)
			return &c->sects[i];
	return NULL;
}

static const struct xn_addr *first_ipv4(const struct xn_bridge_conf *b,
					size_t *idx)
{
	for (size_t i = 0; i < b->n_addresses; i++)
		if (b->addresses[i].family == AF_INET) {
			if (idx)
				*idx = i;
			return &b->addresses[i];
		}
	return NULL;
}

/* ---- value parsers ---- */

static const char *parse_mode(struct load_ctx *c, struct sect *s, void *field,
			      const char *value)
{
	(void)c;
	(void)s;
	return xn_mode_from_name(value, field) < 0 ? "expected bridged, routed or nat" : NULL;
}

static const char *parse_bool(struct load_ctx *c, struct sect *s, void *field,
			      const char *value)
{
	int r = xn_parse_bool(value);

	(void)c;
	(void)s;
	if (r < 0)
		return "expected yes or no";
	*(bool *)field = r;
	return NULL;
}

/* Bridge STP and forward delay: unset (-1) leaves an adopted bridge's
 * own values alone. */
static const char *parse_stp(struct load_ctx *c, struct sect *s, void *field,
			     const char *value)
{
	bool on;
	const char *bad = parse_bool(c, s, &on, value);

	if (!bad)
		*(int *)field = on;
	return bad;
}

static const char *parse_forward_delay(struct load_ctx *c, struct sect *s, void *field,
				       const char *value)
{
	unsigned long v;

	(void)c;
	(void)s;
	if (xn_parse_uint(value, 0, 30, &v) < 0)
		return "must be a number of seconds from 0 to 30";
	*(int *)field = (int)v;
	return NULL;
}

static const char *parse_ifname(struct load_ctx *c, struct sect *s,
				void *field, const char *value)
{
	const char *why = ifname_problem(value);

	(void)c;
	(void)s;
	if (why)
		return why;
	snprintf(field, IFNAMSIZ, "%s", value);
	return NULL;
}

static const char *parse_mtu(struct load_ctx *c, struct sect *s, void *field,
			     const char *value)
{
	unsigned long v;

	(void)c;
	(void)s;
	if (xn_parse_uint(value, 68, 65535, &v) < 0)
		return "must be a number from 68 to 65535";
	*(unsigned *)field = (unsigned)v;
	return NULL;
}

static const char *address_syntax_problem(const char *value)
{
	const char *slash = strchr(value, '/');
	struct xn_addr a;
	char host[INET6_ADDRSTRLEN];
	size_t len;

	if (!slash)
		return xn_addr_parse(value, false, &a) == 0 ?
			       "a prefix length is required, e.g. 10.0.0.1/24" :
			       "";
	len = (size_t)(slash - value);
	if (len >= sizeof(host))
		return "";
	memcpy(host, value, len);
	host[len] = '\0';
	if (xn_addr_parse(host, false, &a) < 0)
		return "";
	return a.family == AF_INET ? "the prefix length must be 0 to 32" :
				     "the prefix length must be 0 to 128";
}

static const char *parse_address(struct load_ctx *c, struct sect *s,
				 void *field, const char *value)
{
	struct xn_bridge_conf *b = field;
	struct xn_addr a, *va;
	char net[XN_ADDR_STRLEN];
	const char *why;
	unsigned *vl;

	if (xn_addr_parse(value, true, &a) < 0) {
		s->bad_addresses++;
		return address_syntax_problem(value);
	}
	why = special_address(&a);
	if (why) {
		s->bad_addresses++;
		return why;
	}
	if (xn_addr_is_network_or_broadcast(&a)) {
		struct xn_addr n = xn_addr_network(&a);
		s->bad_addresses++;
		snprintf(c->detail, sizeof(c->detail),
			 "that is the %s address of %s, not a host address",
			 same_host(&n, &a) ? "network" : "broadcast",
			 xn_addr_format(&n, true, net));
		return c->detail;
	}

	va = reallocarray(b->addresses, b->n_addresses + 1, sizeof(*va));
	if (!va) {
		c->oom = true;
		return NULL;
	}
	b->addresses = va;
	vl = reallocarray(s->addr_lines, b->n_addresses + 1, sizeof(*vl));
	if (!vl) {
		c->oom = true;
		return NULL;
	}
	s->addr_lines = vl;
	vl = reallocarray(b->address_lines, b->n_addresses + 1, sizeof(*vl));
	if (!vl) {
		c->oom = true;
		return NULL;
	}
	b->address_lines = vl;
	vl[b->n_addresses] = c->lineno;
	vl = s->addr_lines;
	va[b->n_addresses] = a;
	vl[b->n_addresses] = c->lineno;
	b->n_addresses++;
	return NULL;
}

static const char *parse_ipv4_host(struct load_ctx *c, struct sect *s,
				   void *field, const char *value)
{
	struct xn_addr a;
	const char *why;

	(void)c;
	(void)s;
	if (xn_addr_parse_ipv4_host(value, &a) < 0) {
		if (strchr(value, '/') && xn_addr_parse(value, true, &a) == 0)
			return "a single address is expected, without /prefix";
		if (xn_addr_parse(value, false, &a) == 0)
			return "only IPv4 is supported";
		return "";
	}
	why = special_address(&a);
	if (why)
		return why;
	if (a.bytes[0] == 255 && a.bytes[1] == 255 && a.bytes[2] == 255 &&
	    a.bytes[3] == 255)
		return "that is the broadcast address";
	*(struct xn_addr *)field = a;
	return NULL;
}

static const char *parse_fwd_public(struct load_ctx *c, struct sect *s,
				    void *field, const char *value)
{
	struct xn_forward_conf *f = field;

	(void)c, (void)s;
	if (xn_parse_public_port(value, &f->public_addr, &f->public_port, &f->proto) < 0)
		return "";
	return NULL;
}

static const char *parse_fwd_guest(struct load_ctx *c, struct sect *s,
				   void *field, const char *value)
{
	struct xn_forward_conf *f = field;

	(void)c, (void)s;
	if (xn_parse_host_port(value, &f->guest, &f->guest_port) < 0)
		return "";
	return NULL;
}

/* ---- sections ---- */

static void *sect_object(struct load_ctx *c, const struct sect *s)
{
	switch (s->kind) {
	case SECT_BRIDGE:
		return &c->p->bridges[s->idx];
	case SECT_MAP:
		return &c->p->maps[s->idx];
	case SECT_FORWARD:
		return &c->p->forwards[s->idx];
	default:
		return c->p;
	}
}

static char *skip_blanks(char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\v' || *s == '\f' || *s == '\r')
		s++;
	return s;
}

static void trim_end(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
			 s[n - 1] == '\v' || s[n - 1] == '\f' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

static int new_sect(struct load_ctx *c, enum sect_kind kind, const char *name)
{
	struct xn_profile *p = c->p;
	struct sect *v, *s;

	v = reallocarray(c->sects, c->n_sects + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->sects = v;
	s = &v[c->n_sects];
	*s = (struct sect){ .kind = kind, .line = c->lineno };
	snprintf(s->name, sizeof(s->name), "%s", name);

	if (kind == SECT_BRIDGE) {
		struct xn_bridge_conf *b;
		b = reallocarray(p->bridges, p->n_bridges + 1, sizeof(*b));
		if (!b)
			return -ENOMEM;
		p->bridges = b;
		b[p->n_bridges] = (struct xn_bridge_conf){ .line = c->lineno, .stp = -1,
							   .forward_delay = -1 };
		snprintf(b[p->n_bridges].name, IFNAMSIZ, "%s", name);
		s->idx = p->n_bridges++;
	} else if (kind == SECT_MAP) {
		struct xn_map_conf *m;
		m = reallocarray(p->maps, p->n_maps + 1, sizeof(*m));
		if (!m)
			return -ENOMEM;
		p->maps = m;
		m[p->n_maps] = (struct xn_map_conf){ .line = c->lineno };
		snprintf(m[p->n_maps].name, sizeof(m->name), "%s", name);
		s->idx = p->n_maps++;
	} else if (kind == SECT_FORWARD) {
		struct xn_forward_conf *f;
		f = reallocarray(p->forwards, p->n_forwards + 1, sizeof(*f));
		if (!f)
			return -ENOMEM;
		p->forwards = f;
		f[p->n_forwards] = (struct xn_forward_conf){ .line = c->lineno };
		snprintf(f[p->n_forwards].name, sizeof(f->name), "%s", name);
		s->idx = p->n_forwards++;
	}
	c->cur = (long)c->n_sects++;
	return 0;
}

/* line starts with '['. */
static size_t sect_hash(enum sect_kind kind, const char *name)
{
	size_t h = 14695981039346656037ULL ^ (size_t)kind; /* FNV-1a */

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return h;
}

/* The slot of section kind/name in c->by_name: holding its index + 1, or
 * 0 where it would go. NULL when no memory to grow the table. */
static size_t *sect_slot(struct load_ctx *c, enum sect_kind kind, const char *name)
{
	if (2 * (c->n_sects + 1) > c->by_name_cap) {
		size_t cap = c->by_name_cap ? 2 * c->by_name_cap : 64;
		size_t *t = calloc(cap, sizeof(*t));
		if (!t)
			return NULL;
		for (size_t i = 0; i < c->by_name_cap; i++) {
			size_t v = c->by_name[i], j;
			if (!v)
				continue;
			j = sect_hash(c->sects[v - 1].kind, c->sects[v - 1].name) & (cap - 1);
			while (t[j])
				j = (j + 1) & (cap - 1);
			t[j] = v;
		}
		free(c->by_name);
		c->by_name = t;
		c->by_name_cap = cap;
	}
	for (size_t j = sect_hash(kind, name) & (c->by_name_cap - 1);;
	     j = (j + 1) & (c->by_name_cap - 1)) {
		size_t v = c->by_name[j];
		if (!v || (c->sects[v - 1].kind == kind && strcmp(c->sects[v - 1].name, name) == 0))
			return &c->by_name[j];
	}
}

static void section_header(struct load_ctx *c, char *line)
{
	char q1[QUOTE_BUF], q2[QUOTE_BUF], lb[80];
	const struct sect_def *def = NULL;
	enum sect_kind kind = SECT_XENNET;
	char *close, *rest, *inner, *name;
	const char *why;

	c->cur = CUR_SKIP;
	close = strchr(line, ']');
	if (!close) {
		c->n_broken_headers++;
		add_error(c, c->lineno,
			  "syntax error, missing \"]\" in section header %s",
			  quote(line, q1));
		return;
	}
	*close = '\0';
	rest = skip_blanks(close + 1);
	inner = skip_blanks(line + 1);
	trim_end(inner);
	if (!*inner) {
		c->n_broken_headers++;
		add_error(c, c->lineno, "syntax error, empty section header \"[]\"");
		return;
	}

	/* "kind" or "kind NAME" */
	name = inner;
	while (*name && *name != ' ' && *name != '\t')
		name++;
	if (*name) {
		*name = '\0';
		name = skip_blanks(name + 1);
	}
	for (size_t i = 0; i < XN_ARRAY_SIZE(sect_defs); i++)
		if (strcmp(inner, sect_defs[i].kind) == 0) {
			def = &sect_defs[i];
			kind = (enum sect_kind)i;
		}
	if (!def) {
		c->n_broken_headers++;
		add_error(c, c->lineno,
			  "unknown section %s (expected xennet, bridge NAME, routed, nat, map NAME or forward NAME)",
			  quote(inner, q1));
		return;
	}

	if (*rest && *rest != ';' && *rest != '#')
		add_error(c, c->lineno,
			  "unexpected text %s after section header, put each key on its own line",
			  quote(rest, q1));

	if (kind == SECT_BRIDGE)
		c->n_bridge_headers++; /* even a bad one: no "no bridge" echo */

	if (def->named) {
		if (!*name) {
			add_error(c, c->lineno,
				  "missing name in section header [%s], e.g. [%s %s]",
				  def->kind, def->kind,
				  kind == SECT_BRIDGE ? "xenbr0" : "web");
			return;
		}
		why = kind == SECT_BRIDGE ? ifname_problem(name) :
					    map_name_problem(name);
		if (why) {
			add_error(c, c->lineno,
				  "invalid %s name %s in section header: %s",
				  def->kind, quote(name, q1), why);
			return;
		}
	} else if (*name) {
		/* Report, but keep reading its keys: they are good. */
		add_error(c, c->lineno,
			  "section [%s] takes no name, got %s", def->kind,
			  quote(name, q2));
		*name = '\0';
	}

	size_t *slot = sect_slot(c, kind, name);
	if (slot && *slot) {
		struct sect *s = &c->sects[*slot - 1];
		add_error(c, c->lineno, "duplicate section %s, first at line %u",
			  label(s, lb), s->line);
		s->dup = true;
		c->cur = (long)(*slot - 1);
		return;
	}
	if (!slot || new_sect(c, kind, name) < 0) {
		c->oom = true;
		return;
	}
	*slot = c->n_sects; /* the new one's index + 1 */
}

/* ---- the reader inih pulls lines from ---- */

/* Reads one line into c->line, keeping at most LINE_STORE - 1 bytes.
 * Returns the full length without the "\n", or -1 at the end. */
static long read_line(struct load_ctx *c, bool *has_nul)
{
	size_t len = 0;
	int ch;

	*has_nul = false;
	for (;;) {
		errno = 0;
		ch = getc(c->f);
		if (ch == EOF) {
			if (ferror(c->f)) {
				c->io_err = errno > 0 ? -errno : -EIO;
				return -1;
			}
			if (len == 0)
				return -1;
			break;
		}
		if (++c->total > PROFILE_MAX_BYTES) {
			add_error(c, c->lineno + 1,
				  "the profile is larger than %d bytes, giving up",
				  PROFILE_MAX_BYTES);
			c->stop = true;
			return -1;
		}
		if (ch == '\n')
			break;
		if (ch == '\0')
			*has_nul = true;
		if (len < LINE_STORE - 1)
			c->line[len] = (char)ch;
		len++;
	}
	c->line[len < LINE_STORE - 1 ? len : LINE_STORE - 1] = '\0';
	return (long)len;
}

static char *blank_line(char *str)
{
	str[0] = '\n';
	str[1] = '\0';
	return str;
}

/* Mirrors inih: the first '=' or ':' before an inline " ;" comment. */
static bool has_separator(const char *s)
{
	bool was_space = false;

	for (; *s; s++) {
		if (*s == '=' || *s == ':')
			return true;
		if (was_space && *s == ';')
			return false;
		was_space = *s == ' ' || *s == '\t' || *s == '\v' ||
			    *s == '\f' || *s == '\r';
	}
	return false;
}

static void count_content(struct load_ctx *c)
{
	if (c->cur >= 0)
		c->sects[c->cur].content++;
}

static char *reader(char *str, int num, void *stream)
{
	struct load_ctx *c = stream;
	char q[QUOTE_BUF];
	size_t len, limit;
	bool has_nul;
	char *s;
	long n;

	if (c->stop || c->oom || c->io_err || num < 4)
		return NULL;
	n = read_line(c, &has_nul);
	if (n < 0)
		return NULL;
	c->lineno++;
	len = (size_t)n;
	s = c->line;

	if (has_nul) {
		count_content(c);
		add_error(c, c->lineno, "line contains a NUL byte");
		return blank_line(str);
	}
	if (len > 0 && len < LINE_STORE && s[len - 1] == '\r')
		s[--len] = '\0';
	if (c->lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0) {
		s += 3;
		len -= 3;
	}

	/* inih needs room for the text, "\r\n" and the NUL. */
	limit = (size_t)num - 3;
	if (limit > LINE_STORE - 2)
		limit = LINE_STORE - 2;

	s = skip_blanks(s);
	if (*s == '\0' || *s == '#' || *s == ';')
		return blank_line(str); /* comments may be of any length */
	if (len > limit) {
		if (*s == '[') {
			c->cur = CUR_SKIP;
			c->n_broken_headers++;
		} else {
			count_content(c);
		}
		add_error(c, c->lineno, "line too long (%zu bytes, at most %zu)",
			  len, limit);
		return blank_line(str);
	}
	if (*s == '[') {
		section_header(c, s);
		return blank_line(str);
	}
	count_content(c);
	if (!has_separator(s)) {
		add_error(c, c->lineno,
			  "syntax error, expected key = value or [section], got %s",
			  quote(s, q));
		return blank_line(str);
	}
	len = strlen(s);
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

/* ---- the handler inih calls for each key = value ---- */

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct load_ctx *c = user;
	char q1[QUOTE_BUF], q2[QUOTE_BUF], lb[80];
	const struct key_def *k = NULL;
	const char *why;
	struct sect *s;
	size_t ki;

	(void)section; /* ours, from the reader, is the one that counts */
	if (c->oom)
		return 1;
	if (c->cur == CUR_NONE) {
		add_error(c, c->lineno,
			  "key %s outside of any section, it must follow a [section] header",
			  quote(name, q1));
		return 1;
	}
	if (c->cur == CUR_SKIP)
		return 1; /* the header's error is enough */
	s = &c->sects[c->cur];
	label(s, lb);

	if (!*name) {
		add_error(c, c->lineno, "missing key name before \"=\" in %s", lb);
		return 1;
	}
	for (ki = 0; ki < N_KEYS; ki++)
		if (keys[ki].sect == s->kind && strcmp(keys[ki].key, name) == 0) {
			k = &keys[ki];
			break;
		}
	if (!k) {
		char known[128] = "";
		size_t o = 0, total = 0, seen = 0;
		for (size_t i = 0; i < N_KEYS; i++)
			total += keys[i].sect == s->kind;
		for (size_t i = 0; i < N_KEYS && o < sizeof(known); i++) {
			if (keys[i].sect != s->kind)
				continue;
			seen++;
			o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s",
					      seen == 1	      ? "" :
					      seen == total ? " or " :
							      ", ",
					      keys[i].key);
		}
		add_error(c, c->lineno, "unknown key %s in %s (expected %s)",
			  quote(name, q1), lb, known);
		return 1;
	}

	if (s->key_line[ki] && !k->repeat) {
		add_error(c, c->lineno, "key %s given twice in %s, first at line %u",
			  quote(name, q1), lb, s->key_line[ki]);
		return 1;
	}
	if (!s->key_line[ki])
		s->key_line[ki] = c->lineno;
	if (!*value) {
		if (ki == K_BR_ADDRESS)
			s->bad_addresses++;
		add_error(c, c->lineno, "empty value for key %s in %s",
			  quote(name, q1), lb);
		return 1;
	}

	why = k->parse(c, s, (char *)sect_object(c, s) + k->offset, value);
	if (why) {
		bool hash = strchr(value, '#') != NULL;
		add_error(c, c->lineno, "invalid %s %s for key %s in %s%s%s%s",
			  k->what, quote(value, q1), quote(name, q2), lb,
			  *why ? ": " : "", why,
			  hash ? " (a comment after a value starts with \" ;\")" :
				 "");
	} else {
		s->key_ok[ki] = true;
	}
	return 1;
}

/* ---- the second pass: what spans keys and sections ---- */

static void check_bridges(struct load_ctx *c)
{
	struct xn_profile *p = c->p;
	char q1[QUOTE_BUF], lb[80], lb2[80], a1[XN_ADDR_STRLEN],
		a2[XN_ADDR_STRLEN];

	for (size_t i = 0; i < c->n_sects; i++) {
		struct sect *s = &c->sects[i];
		const struct xn_bridge_conf *b;
		const struct xn_addr *v6 = NULL;
		unsigned v6_line = 0;

		if (s->kind != SECT_BRIDGE)
			continue;
		b = &p->bridges[s->idx];
		label(s, lb);

		if (b->stp == 1 && b->forward_delay >= 0 && b->forward_delay < 2)
			add_error(c, s->key_line[K_BR_FORWARD_DELAY],
				  "forward_delay = %d in %s: with stp = yes the kernel takes 2 to 30 seconds",
				  b->forward_delay, lb);
		if (b->take_addresses && !s->key_line[K_BR_UPLINK])
			add_error(c, s->key_line[K_BR_TAKE],
				  "take_addresses = yes in %s needs an uplink to take the addresses from",
				  lb);

		if (b->uplink[0]) {
			unsigned ul = s->key_line[K_BR_UPLINK];
			const struct sect *o = find_bridge(c, b->uplink);
			if (o == s)
				add_error(c, ul,
					  "uplink %s of %s is the bridge itself",
					  quote(b->uplink, q1), lb);
			else if (o)
				add_error(c, ul,
					  "uplink %s of %s is a bridge defined at line %u; an uplink must be a network interface",
					  quote(b->uplink, q1), lb, o->line);
			for (size_t j = 0; j < i; j++) {
				const struct sect *t = &c->sects[j];
				if (t->kind == SECT_BRIDGE &&
				    strcmp(p->bridges[t->idx].uplink,
					   b->uplink) == 0) {
					add_error(c, ul,
						  "uplink %s of %s is already the uplink of %s (line %u); an interface can be in one bridge only",
						  quote(b->uplink, q1), lb,
						  label(t, lb2),
						  t->key_line[K_BR_UPLINK]);
					break;
				}
			}
		}

		for (size_t k = 0; k < b->n_addresses; k++) {
			const struct xn_addr *a = &b->addresses[k];
			unsigned al = s->addr_lines[k];
			bool reported = false;

			if (a->family == AF_INET6 && !v6) {
				v6 = a;
				v6_line = al;
			}
			for (size_t m = 0; m < k && !reported; m++)
				if (same_host(&b->addresses[m], a)) {
					add_error(c, al,
						  "address \"%s\" is given twice in %s (first at line %u)",
						  xn_addr_format(a, true, a1), lb,
						  s->addr_lines[m]);
					reported = true;
				}
			for (size_t j = 0; j < i && !reported; j++) {
				const struct sect *t = &c->sects[j];
				const struct xn_bridge_conf *ob;
				if (t->kind != SECT_BRIDGE)
					continue;
				ob = &p->bridges[t->idx];
				for (size_t m = 0; m < ob->n_addresses; m++) {
					const struct xn_addr *o =
						&ob->addresses[m];
					struct xn_addr on;
					if (same_host(o, a)) {
						add_error(c, al,
							  "address \"%s\" of %s is already used by %s (line %u)",
							  xn_addr_format(a, true, a1),
							  lb, label(t, lb2),
							  t->addr_lines[m]);
					} else if (overlap(o, a)) {
						on = xn_addr_network(o);
						add_error(c, al,
							  "address \"%s\" of %s overlaps the network %s of %s (line %u)",
							  xn_addr_format(a, true, a1),
							  lb,
							  xn_addr_format(&on, true, a2),
							  label(t, lb2),
							  t->addr_lines[m]);
					} else {
						continue;
					}
					reported = true;
					break;
				}
			}
		}

		if (b->mtu && b->mtu < 1280 && v6)
			add_error(c, s->key_line[K_BR_MTU],
				  "mtu %u of %s is below 1280, the minimum for IPv6 (address \"%s\" at line %u)",
				  b->mtu, lb, xn_addr_format(v6, true, a1),
				  v6_line);
	}
}

/* An interface that is the uplink of a bridge is a bridge port: it cannot
 * carry routed or NATed traffic itself. */
static void check_not_a_port(struct load_ctx *c, const char *ifname,
			     unsigned line, const char *what)
{
	char q1[QUOTE_BUF], lb[80];

	for (size_t i = 0; i < c->n_sects; i++) {
		const struct sect *s = &c->sects[i];
		const struct xn_bridge_conf *b;
		if (s->kind != SECT_BRIDGE)
			continue;
		b = &c->p->bridges[s->idx];
		if (strcmp(b->uplink, ifname) == 0) {
			add_error(c, line,
				  "uplink %s in [%s] is the uplink of %s (line %u), a bridge port; use the bridge %s instead",
				  quote(ifname, q1), what, label(s, lb),
				  s->key_line[K_BR_UPLINK], b->name);
			return;
		}
	}
}

/* An address of a [map] section, for finding the ones used twice. */
struct map_addr {
	const struct xn_addr *a;
	size_t sect;
};

static int map_addr_cmp(const void *x, const void *y)
{
	const struct map_addr *m = x, *n = y;
	int r = (int)m->a->family - (int)n->a->family;

	if (!r)
		r = memcmp(m->a->bytes, n->a->bytes, m->a->family == AF_INET ? 4 : 16);
	if (!r)
		r = m->sect < n->sect ? -1 : m->sect > n->sect;
	return r;
}

/* first[i]: the first [map] section with the same address as section i
 * under key (public or guest), i itself if none; by sorting, not by
 * comparing every pair (10,000 maps). */
static int first_same_address(struct load_ctx *c, enum key_id key, size_t *first)
{
	struct map_addr *v = calloc(c->n_sects ? c->n_sects : 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_sects; i++) {
		const struct sect *s = &c->sects[i];
		first[i] = i;
		if (s->kind == SECT_MAP && s->key_ok[key]) {
			const struct xn_map_conf *m = &c->p->maps[s->idx];
			v[n++] = (struct map_addr){
				key == K_MAP_PUBLIC ? &m->public_addr : &m->guest, i };
		}
	}
	qsort(v, n, sizeof(*v), map_addr_cmp);
	for (size_t i = 1, head = 0; i < n; i++) {
		if (same_host(v[i].a, v[head].a))
			first[v[i].sect] = v[head].sect;
		else
			head = i;
	}
	free(v);
	return 0;
}

static void check_maps(struct load_ctx *c, const struct sect *nb)
{
	struct xn_profile *p = c->p;
	const struct xn_bridge_conf *br = nb ? &p->bridges[nb->idx] : NULL;
	const struct xn_addr *gw = br ? first_ipv4(br, NULL) : NULL;
	char lb[80], lb2[80], a1[XN_ADDR_STRLEN], a2[XN_ADDR_STRLEN];
	struct xn_addr gnet = { 0 };
	size_t *first_public = calloc(c->n_sects + 1, sizeof(size_t));
	size_t *first_guest = calloc(c->n_sects + 1, sizeof(size_t));
	size_t *bridges = calloc(c->n_sects + 1, sizeof(size_t)), n_bridges = 0;

	if (!first_public || !first_guest || !bridges ||
	    first_same_address(c, K_MAP_PUBLIC, first_public) < 0 ||
	    first_same_address(c, K_MAP_GUEST, first_guest) < 0) {
		c->oom = true;
		goto out;
	}
	for (size_t i = 0; i < c->n_sects; i++)
		if (c->sects[i].kind == SECT_BRIDGE)
			bridges[n_bridges++] = i;
	if (gw)
		gnet = xn_addr_network(gw);

	for (size_t i = 0; i < c->n_sects; i++) {
		const struct sect *s = &c->sects[i];
		const struct xn_map_conf *m;
		unsigned pl, gl;

		if (s->kind != SECT_MAP)
			continue;
		m = &p->maps[s->idx];
		pl = s->key_line[K_MAP_PUBLIC];
		gl = s->key_line[K_MAP_GUEST];
		label(s, lb);

		if (s->key_ok[K_MAP_PUBLIC]) {
			const struct xn_addr *a = &m->public_addr;
			bool reported = false;

			xn_addr_format(a, false, a1);
			if (gw && xn_addr_in_network(gw, a)) {
				add_error(c, pl,
					  "public address \"%s\" of %s is inside the guest network %s",
					  a1, lb, xn_addr_format(&gnet, true, a2));
				reported = true;
			}
			for (size_t j = 0; j < n_bridges && !reported; j++) {
				const struct sect *t = &c->sects[bridges[j]];
				const struct xn_bridge_conf *b = &p->bridges[t->idx];
				for (size_t k = 0; k < b->n_addresses; k++)
					if (same_host(&b->addresses[k], a)) {
						add_error(c, pl,
							  "public address \"%s\" of %s is the address of %s (line %u)",
							  a1, lb, label(t, lb2),
							  t->addr_lines[k]);
						reported = true;
						break;
					}
			}
			if (!reported && first_public[i] != i) {
				const struct sect *t = &c->sects[first_public[i]];
				add_error(c, pl,
					  "public address \"%s\" of %s is already mapped by %s (line %u)",
					  a1, lb, label(t, lb2), t->key_line[K_MAP_PUBLIC]);
			}
		}

		if (s->key_ok[K_MAP_GUEST]) {
			const struct xn_addr *a = &m->guest;
			struct xn_addr in_net = *a;
			bool reported = false;

			xn_addr_format(a, false, a1);
			in_net.prefixlen = gnet.prefixlen;
			if (gw && !xn_addr_in_network(gw, a)) {
				add_error(c, gl,
					  "guest address \"%s\" of %s is outside the guest network %s",
					  a1, lb, xn_addr_format(&gnet, true, a2));
				reported = true;
			} else if (gw && same_host(gw, a)) {
				add_error(c, gl,
					  "guest address \"%s\" of %s is the gateway address of [bridge %s]",
					  a1, lb, br->name);
				reported = true;
			} else if (gw && xn_addr_is_network_or_broadcast(&in_net)) {
				add_error(c, gl,
					  "guest address \"%s\" of %s is the network or broadcast address of %s",
					  a1, lb, xn_addr_format(&gnet, true, a2));
				reported = true;
			}
			for (size_t k = 0; br && k < br->n_addresses && !reported;
			     k++)
				if (same_host(&br->addresses[k], a)) {
					add_error(c, gl,
						  "guest address \"%s\" of %s is an address of [bridge %s] (line %u)",
						  a1, lb, br->name,
						  nb->addr_lines[k]);
					reported = true;
				}
			if (!reported && first_guest[i] != i) {
				const struct sect *t = &c->sects[first_guest[i]];
				add_error(c, gl,
					  "guest address \"%s\" of %s is already mapped by %s (line %u)",
					  a1, lb, label(t, lb2), t->key_line[K_MAP_GUEST]);
			}
		}
	}
out:
	free(first_public);
	free(first_guest);
	free(bridges);
}

static void check_nat(struct load_ctx *c, const struct sect *ns)
{
	struct xn_profile *p = c->p;
	char q1[QUOTE_BUF], lb[80], a1[XN_ADDR_STRLEN];
	const struct sect *nb = NULL;

	if (ns && ns->key_ok[K_NAT_BRIDGE]) {
		unsigned l = ns->key_line[K_NAT_BRIDGE];
		nb = find_bridge(c, p->nat_bridge);
		if (!nb) {
			add_error(c, l,
				  "bridge %s in [nat] is not defined, add a [bridge %s] section",
				  quote(p->nat_bridge, q1), p->nat_bridge);
		} else {
			const struct xn_bridge_conf *b = &p->bridges[nb->idx];
			const struct xn_addr *gw;
			size_t gi = 0;

			label(nb, lb);
			gw = first_ipv4(b, &gi);
			if (!gw && !nb->bad_addresses)
				add_error(c, nb->line,
					  "%s is the nat bridge but has no IPv4 address; add e.g. address = 10.0.0.1/24",
					  lb);
			else if (gw && gw->prefixlen == 32)
				add_error(c, nb->addr_lines[gi],
					  "address \"%s\" of the nat bridge %s leaves no room for guests, use a shorter prefix",
					  xn_addr_format(gw, true, a1), lb);
			if (b->uplink[0])
				add_error(c, nb->key_line[K_BR_UPLINK],
					  "%s is the nat bridge and must not have an uplink (%s); guests reach the outside through [nat] uplink",
					  lb, quote(b->uplink, q1));
		}
	}
	if (ns && ns->key_ok[K_NAT_UPLINK]) {
		unsigned l = ns->key_line[K_NAT_UPLINK];
		if (ns->key_ok[K_NAT_BRIDGE] &&
		    strcmp(p->nat_uplink, p->nat_bridge) == 0)
			add_error(c, l,
				  "uplink %s in [nat] is the nat bridge itself",
				  quote(p->nat_uplink, q1));
		else
			check_not_a_port(c, p->nat_uplink, l, "nat");
	}
	check_maps(c, nb);
}

static void check_profile(struct load_ctx *c)
{
	struct xn_profile *p = c->p;
	struct sect *xs = find_kind(c, SECT_XENNET);
	struct sect *rs = find_kind(c, SECT_ROUTED);
	struct sect *ns = find_kind(c, SECT_NAT);
	bool mode_ok = xs && xs->key_ok[K_MODE];
	unsigned mode_line = xs ? xs->key_line[K_MODE] : 1;
	const char *mode = xn_mode_name(p->mode);
	/* A section that could not be read may be the one that seems
	 * missing: its error is enough. */
	bool broken = c->n_broken_headers > 0;
	char lb[80];

	if (!xs) {
		if (!broken)
			add_error(c, 1,
				  "missing [xennet] section, it must set mode = bridged, routed or nat");
	} else if (xs->content && !xs->key_line[K_MODE]) {
		add_error(c, xs->line,
			  "missing key \"mode\" in [xennet] (bridged, routed or nat)");
	}

	for (size_t i = 0; i < c->n_sects; i++)
		if (!c->sects[i].content && !c->sects[i].dup)
			add_error(c, c->sects[i].line, "empty section %s",
				  label(&c->sects[i], lb));

	check_bridges(c);

	if (rs) {
		if (mode_ok && p->mode != XN_MODE_ROUTED)
			add_error(c, rs->line,
				  "section [routed] is only used with mode = routed, but mode is %s (line %u)",
				  mode, mode_line);
		else if (rs->content && !rs->key_line[K_ROUTED_UPLINK])
			add_error(c, rs->line, "missing key \"uplink\" in [routed]");
	} else if (mode_ok && p->mode == XN_MODE_ROUTED && !broken) {
		add_error(c, mode_line,
			  "mode = routed needs a [routed] section with uplink = INTERFACE");
	}

	if (ns) {
		if (mode_ok && p->mode != XN_MODE_NAT) {
			add_error(c, ns->line,
				  "section [nat] is only used with mode = nat, but mode is %s (line %u)",
				  mode, mode_line);
		} else if (ns->content) {
			if (!ns->key_line[K_NAT_UPLINK])
				add_error(c, ns->line,
					  "missing key \"uplink\" in [nat]");
			if (!ns->key_line[K_NAT_BRIDGE])
				add_error(c, ns->line,
					  "missing key \"bridge\" in [nat]");
		}
	} else if (mode_ok && p->mode == XN_MODE_NAT && !broken) {
		add_error(c, mode_line,
			  "mode = nat needs a [nat] section with uplink and bridge");
	}

	for (size_t i = 0; i < c->n_sects; i++) {
		const struct sect *s = &c->sects[i];
		if (s->kind != SECT_FORWARD)
			continue;
		label(s, lb);
		if (mode_ok && p->mode != XN_MODE_NAT) {
			add_error(c, s->line,
				  "section %s is only used with mode = nat, but mode is %s (line %u)",
				  lb, mode, mode_line);
		} else if (s->content) {
			if (!s->key_line[K_FWD_PUBLIC])
				add_error(c, s->line, "missing key \"public\" in %s", lb);
			if (!s->key_line[K_FWD_GUEST])
				add_error(c, s->line, "missing key \"guest\" in %s", lb);
		}
	}

	for (size_t i = 0; i < c->n_sects; i++) {
		const struct sect *s = &c->sects[i];
		if (s->kind != SECT_MAP)
			continue;
		label(s, lb);
		if (mode_ok && p->mode != XN_MODE_NAT) {
			add_error(c, s->line,
				  "section %s is only used with mode = nat, but mode is %s (line %u)",
				  lb, mode, mode_line);
		} else if (s->content) {
			if (!s->key_line[K_MAP_PUBLIC])
				add_error(c, s->line,
					  "missing key \"public\" in %s", lb);
			if (!s->key_line[K_MAP_GUEST])
				add_error(c, s->line,
					  "missing key \"guest\" in %s", lb);
		}
	}

	if (!mode_ok)
		return;
	switch (p->mode) {
	case XN_MODE_BRIDGED:
		if (c->n_bridge_headers == 0 && !broken)
			add_error(c, mode_line,
				  "mode = bridged needs at least one [bridge NAME] section");
		break;
	case XN_MODE_ROUTED:
		if (rs && rs->key_ok[K_ROUTED_UPLINK])
			check_not_a_port(c, p->routed_uplink,
					 rs->key_line[K_ROUTED_UPLINK], "routed");
		break;
	case XN_MODE_NAT:
		check_nat(c, ns);
		break;
	}
}

/* ---- loading ---- */

static int cmp_error(const void *a, const void *b)
{
	const struct error *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void ctx_done(struct load_ctx *c)
{
	for (size_t i = 0; i < c->n_sects; i++)
		free(c->sects[i].addr_lines);
	free(c->sects);
	free(c->by_name);
	for (size_t i = 0; i < c->n_errs; i++)
		free(c->errs[i].msg);
	free(c->errs);
	xn_profile_free(c->p);
	if (c->f)
		fclose(c->f);
}

/* Forwards against the maps and each other, with the rules `xennet
 * forward add` applies; only on an otherwise valid profile. */
static void check_forwards(struct load_ctx *c)
{
	struct xn_profile *p = c->p;
	struct xn_nat_net net = xn_profile_nat_net(p);
	struct xn_mapset set = { 0 };

	for (size_t i = 0; i < p->n_maps; i++) {
		struct xn_mapping m = { .public_addr = p->maps[i].public_addr,
					.guest = p->maps[i].guest, .from_profile = true };
		if (xn_mapset_add_map(&set, &m) < 0)
			c->oom = true;
	}
	for (size_t i = 0; i < p->n_forwards && !c->oom; i++) {
		const struct xn_forward_conf *fc = &p->forwards[i];
		struct xn_forward f = { .public_addr = fc->public_addr, .guest = fc->guest,
					.public_port = fc->public_port, .guest_port = fc->guest_port,
					.proto = fc->proto, .from_profile = true };
		struct xn_buf why = { 0 };
		if (xn_mapset_check_forward(&set, &net, &f, &why) < 0)
			add_error(c, fc->line, "[forward %s]: %s", fc->name, xn_buf_str(&why));
		else if (xn_mapset_add_forward(&set, &f) < 0)
			c->oom = true;
		xn_buf_free(&why);
	}
	xn_mapset_clear(&set);
}

int xn_profile_load(const char *path, struct xn_profile **ret,
		    struct xn_diag *d)
{
	struct load_ctx c = { .path = path, .cur = CUR_NONE };
	int r;

	if (!path || !ret)
		return -EINVAL;
	/* The path goes into messages ("PATH:LINE: ...") and into the ledger
	 * (one line per record): a newline in it would forge either. */
	if (strchr(path, '\n')) {
		char q[QUOTE_BUF];
		diag_addf(d, "%s: a profile path with a newline is not accepted", quote(path, q));
		return -EINVAL;
	}

	/* Not blocked by a FIFO (the daemon applies paths sent to it). */
	r = xn_fopen_regular(path, &c.f);
	if (r < 0) {
		diag_addf(d, "%s: cannot open: %s", path, xn_file_strerror(r));
		return r;
	}
	c.p = calloc(1, sizeof(*c.p));
	if (!c.p) {
		r = -ENOMEM;
		goto out;
	}
	c.p->antispoof = true;
	c.p->path = strdup(path);
	if (!c.p->path) {
		r = -ENOMEM;
		goto out;
	}

	r = ini_parse_stream(reader, &c, handler, &c);
	if (c.io_err) {
		r = c.io_err;
		diag_addf(d, "%s:%u: cannot read: %s", path, c.lineno + 1,
			  strerror(-r));
		goto out;
	}
	if (r == -2 || c.oom) {
		r = -ENOMEM;
		goto out;
	}
	if (r > 0) {
		/* inih found a problem the reader let through. */
		bool known = false;
		for (size_t i = 0; i < c.n_errs; i++)
			known = known || c.errs[i].line == (unsigned)r;
		if (!known)
			add_error(&c, (unsigned)r,
				  "syntax error, expected key = value or [section]");
	}
	if (!c.stop)
		check_profile(&c);
	if (!c.stop && c.n_errs == 0)
		check_forwards(&c);
	if (c.oom) {
		r = -ENOMEM;
		goto out;
	}

	if (c.n_errs > 0) {
		qsort(c.errs, c.n_errs, sizeof(*c.errs), cmp_error);
		for (size_t i = 0; i < c.n_errs; i++) {
			char *line;
			if (asprintf(&line, "%s:%u: %s", path, c.errs[i].line,
				     c.errs[i].msg) < 0 ||
			    diag_add(d, line) < 0) {
				r = -ENOMEM;
				goto out;
			}
		}
		r = -EINVAL;
		goto out;
	}

	*ret = XN_TAKE_PTR(c.p);
	r = 0;
out:
	if (r == -ENOMEM)
		diag_addf(d, "%s: out of memory", path);
	ctx_done(&c);
	return r;
}

void xn_profile_free(struct xn_profile *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_bridges; i++) {
		free(p->bridges[i].addresses);
		free(p->bridges[i].address_lines);
	}
	free(p->bridges);
	free(p->maps);
	free(p->forwards);
	free(p->path);
	free(p);
}

static const char *const mode_names[] = {
	[XN_MODE_BRIDGED] = "bridged",
	[XN_MODE_ROUTED] = "routed",
	[XN_MODE_NAT] = "nat",
};

const char *xn_mode_name(enum xn_mode m)
{
	return (size_t)m < XN_ARRAY_SIZE(mode_names) ? mode_names[m] : "unknown";
}

int xn_mode_from_name(const char *name, enum xn_mode *ret)
{
	int i = xn_name_lookup(mode_names, XN_ARRAY_SIZE(mode_names), name);

	if (i < 0)
		return i;
	*ret = (enum xn_mode)i;
	return 0;
}

const struct xn_bridge_conf *xn_profile_bridge(const struct xn_profile *p,
					       const char *name)
{
	if (!p || !name)
		return NULL;
	for (size_t i = 0; i < p->n_bridges; i++)
		if (strcmp(p->bridges[i].name, name) == 0)
			return &p->bridges[i];
	return NULL;
}

const struct xn_addr *xn_profile_nat_gateway(const struct xn_profile *p)
{
	const struct xn_bridge_conf *b;

	if (!p || p->mode != XN_MODE_NAT)
		return NULL;
	b = xn_profile_bridge(p, p->nat_bridge);
	return b ? first_ipv4(b, NULL) : NULL;
}

struct xn_nat_net xn_profile_nat_net(const struct xn_profile *p)
{
	if (!p)
		return (struct xn_nat_net){ 0 };
	return (struct xn_nat_net){ .gateway = xn_profile_nat_gateway(p),
				    .bridges = p->bridges,
				    .n_bridges = p->n_bridges };
}
