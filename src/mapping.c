/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/mapping.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct xn_name_chunk {
	struct xn_name_chunk *next;
	size_t used, size;
	char text[];
};

#define NAME_CHUNK_SIZE 4096

static void free_chunks(struct xn_name_chunk *c)
{
	while (c) {
		struct xn_name_chunk *next = c->next;
		free(c);
		c = next;
	}
}

void xn_mapset_clear(struct xn_mapset *s)
{
	free(s->maps);
	free(s->fwds);
	free_chunks(s->names);
	*s = (struct xn_mapset){ 0 };
}

/* A copy of name in s's chunks; *out NULL for no name. */
static int intern(struct xn_mapset *s, const char *name, const char **out)
{
	struct xn_name_chunk *c = s->names;
	size_t len;

	*out = NULL;
	if (!name || !*name)
		return 0;
	len = strlen(name) + 1;
	if (!c || c->size - c->used < len) {
		size_t size = NAME_CHUNK_SIZE - sizeof(*c);
		if (size < len)
			size = len;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return -ENOMEM;
		*c = (struct xn_name_chunk){ .next = s->names, .size = size };
		s->names = c;
	}
	*out = memcpy(c->text + c->used, name, len);
	c->used += len;
	s->names_live += len;
	return 0;
}

static void name_gone(struct xn_mapset *s, const char *name)
{
	if (name) {
		size_t len = strlen(name) + 1;
		s->names_live -= len;
		s->names_dead += len;
	}
}

void xn_mapset_tidy_names(struct xn_mapset *s)
{
	struct xn_mapset fresh = { 0 };

	if (s->names_dead <= NAME_CHUNK_SIZE || s->names_dead <= s->names_live)
		return;
	const char *moved;

	for (size_t i = 0; i < s->n_maps; i++) {
		if (intern(&fresh, s->maps[i].name, &moved) < 0)
			goto oom;
		s->maps[i].name = moved;
	}
	for (size_t i = 0; i < s->n_fwds; i++) {
		if (intern(&fresh, s->fwds[i].name, &moved) < 0)
			goto oom;
		s->fwds[i].name = moved;
	}
	free_chunks(s->names);
	s->names = fresh.names;
	s->names_live = fresh.names_live;
	s->names_dead = 0;
	return;
oom:	/* the names that moved are in fresh: keep both chunk lists (the
	 * moved ones count twice until the next tidy) */
	if (fresh.names) {
		struct xn_name_chunk *last = fresh.names;
		while (last->next)
			last = last->next;
		last->next = s->names;
		s->names = fresh.names;
		s->names_live += fresh.names_live;
	}
}

const char *xn_proto_name(uint8_t proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

bool xn_mapping_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > XN_MAPPING_NAME_MAX)
		return false;
	for (const char *c = name; *c; c++)
		if (!isascii((unsigned char)*c) ||
		    !(isalnum((unsigned char)*c) || *c == '_' || *c == '.' || *c == '-'))
			return false;
	return true;
}

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v;

	if (xn_parse_uint(s, 1, 65535, &v) < 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int xn_parse_host_port(const char *s, struct xn_addr *a, uint16_t *port)
{
	char host[32];
	const char *colon = strrchr(s, ':');

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (xn_addr_parse_ipv4_host(host, a) < 0 || parse_port(colon + 1, port) < 0)
		return -EINVAL;
	return 0;
}

int xn_parse_public_port(const char *s, struct xn_addr *a, uint16_t *port, uint8_t *proto)
{
	char hp[48];
	const char *slash = strrchr(s, '/');

	if (!slash || (size_t)(slash - s) >= sizeof(hp))
		return -EINVAL;
	if (strcmp(slash + 1, "tcp") == 0)
		*proto = IPPROTO_TCP;
	else if (strcmp(slash + 1, "udp") == 0)
		*proto = IPPROTO_UDP;
	else
		return -EINVAL;
	memcpy(hp, s, (size_t)(slash - s));
	hp[slash - s] = '\0';
	return xn_parse_host_port(hp, a, port);
}

static bool same_ip(const struct xn_addr *a, const struct xn_addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16) == 0;
}

/* Addresses that are never anyone's public address: Dom0 would take
 * them for every host (0.0.0.0, broadcast, multicast) or for itself
 * (loopback), or they never leave the link (link-local). */
static const char *reserved_class(const struct xn_addr *a)
{
	uint32_t h = ntohl(a->v4.s_addr);

	if (h == 0xffffffffu)
		return "the limited broadcast address";
	if ((h >> 24) == 0)
		return "in 0.0.0.0/8 (this host on this network)";
	if ((h >> 24) == 127)
		return "a loopback address (127.0.0.0/8)";
	if ((h >> 16) == 0xa9fe)
		return "a link-local address (169.254.0.0/16)";
	if ((h >> 28) == 0xe)
		return "a multicast address (224.0.0.0/4)";
	if ((h >> 28) == 0xf)
		return "a reserved address (240.0.0.0/4)";
	return NULL;
}

/* Shared checks: NAT mode, public not reserved, outside the guest network
 * and not an address of a bridge, guest inside it and not the gateway. */
int xn_mapping_check_addresses(const struct xn_nat_net *nat, const struct xn_addr *pub,
			       const struct xn_addr *guest, struct xn_buf *err)
{
	const struct xn_addr *gw = nat->gateway;
	char a[XN_ADDR_STRLEN], b[XN_ADDR_STRLEN];

	if (!gw) {
		xn_buf_printf(err, "public IP mappings need a profile in nat mode");
		return -EINVAL;
	}
	const char *reserved = reserved_class(pub);
	if (reserved) {
		xn_buf_printf(err, "public address %s is %s", xn_addr_format(pub, false, a), reserved);
		return -EINVAL;
	}
	struct xn_addr net = xn_addr_network(gw);
	if (xn_addr_in_network(&net, pub)) {
		xn_buf_printf(err, "public address %s is inside the guest network %s",
			      xn_addr_format(pub, false, a), xn_addr_format(&net, true, b));
		return -EINVAL;
	}
	if (!xn_addr_in_network(&net, guest)) {
		xn_buf_printf(err, "guest address %s is outside the guest network %s",
			      xn_addr_format(guest, false, a), xn_addr_format(&net, true, b));
		return -EINVAL;
	}
	if (same_ip(guest, gw) || xn_addr_is_network_or_broadcast(&(struct xn_addr){
					  .family = AF_INET, .v4 = guest->v4, .prefixlen = net.prefixlen })) {
		xn_buf_printf(err, "guest address %s is the gateway, network or broadcast address of %s",
			      xn_addr_format(guest, false, a), xn_addr_format(&net, true, b));
		return -EINVAL;
	}
	for (size_t i = 0; i < nat->n_bridges; i++)
		for (size_t j = 0; j < nat->bridges[i].n_addresses; j++)
			if (same_ip(&nat->bridges[i].addresses[j], pub)) {
				xn_buf_printf(err, "public address %s is an address of bridge %s",
					      xn_addr_format(pub, false, a), nat->bridges[i].name);
				return -EINVAL;
			}
	return 0;
}

int xn_mapset_check_map(const struct xn_mapset *s, const struct xn_nat_net *nat,
			const struct xn_mapping *m, struct xn_buf *err)
{
	char a[XN_ADDR_STRLEN];
	int r = xn_mapping_check_addresses(nat, &m->public_addr, &m->guest, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n_maps; i++) {
		if (same_ip(&s->maps[i].public_addr, &m->public_addr)) {
			xn_buf_printf(err, "public address %s is already mapped to %s (%s)",
				      xn_addr_format(&m->public_addr, false, a),
				      xn_addr_format(&s->maps[i].guest, false, (char[XN_ADDR_STRLEN]){ 0 }),
				      s->maps[i].name ? s->maps[i].name : "unnamed");
			return -EEXIST;
		}
		if (same_ip(&s->maps[i].guest, &m->guest)) {
			xn_buf_printf(err, "guest %s already has the public address %s",
				      xn_addr_format(&m->guest, false, a),
				      xn_addr_format(&s->maps[i].public_addr, false, (char[XN_ADDR_STRLEN]){ 0 }));
			return -EEXIST;
		}
	}
	for (size_t i = 0; i < s->n_fwds; i++)
		if (same_ip(&s->fwds[i].public_addr, &m->public_addr)) {
			xn_buf_printf(err, "public address %s already has port forwards (%u/%s); a 1:1 mapping would take all its ports",
				      xn_addr_format(&m->public_addr, false, a), s->fwds[i].public_port,
				      xn_proto_name(s->fwds[i].proto));
			return -EEXIST;
		}
	return 0;
}

int xn_mapset_check_forward(const struct xn_mapset *s, const struct xn_nat_net *nat,
			    const struct xn_forward *f, struct xn_buf *err)
{
	char a[XN_ADDR_STRLEN];
	int r = xn_mapping_check_addresses(nat, &f->public_addr, &f->guest, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n_maps; i++)
		if (same_ip(&s->maps[i].public_addr, &f->public_addr)) {
			xn_buf_printf(err, "public address %s is mapped 1:1 to %s: a port forward would collide with it",
				      xn_addr_format(&f->public_addr, false, a),
				      xn_addr_format(&s->maps[i].guest, false, (char[XN_ADDR_STRLEN]){ 0 }));
			return -EEXIST;
		}
	for (size_t i = 0; i < s->n_fwds; i++)
		if (same_ip(&s->fwds[i].public_addr, &f->public_addr) &&
		    s->fwds[i].public_port == f->public_port && s->fwds[i].proto == f->proto) {
			xn_buf_printf(err, "%s:%u/%s is already forwarded",
				      xn_addr_format(&f->public_addr, false, a), f->public_port,
				      xn_proto_name(f->proto));
			return -EEXIST;
		}
	return 0;
}

void xn_mapset_shrink(struct xn_mapset *s)
{
	void *v;

	if (s->n_maps && s->n_maps < s->cap_maps &&
	    (v = reallocarray(s->maps, s->n_maps, sizeof(*s->maps)))) {
		s->maps = v;
		s->cap_maps = s->n_maps;
	}
	if (s->n_fwds && s->n_fwds < s->cap_fwds &&
	    (v = reallocarray(s->fwds, s->n_fwds, sizeof(*s->fwds)))) {
		s->fwds = v;
		s->cap_fwds = s->n_fwds;
	}
}

int xn_mapset_add_map(struct xn_mapset *s, const struct xn_mapping *m)
{
	const char *name;

	if (xn_grow((void **)&s->maps, s->n_maps, &s->cap_maps, sizeof(*s->maps)) < 0 ||
	    intern(s, m->name, &name) < 0)
		return -ENOMEM;
	s->maps[s->n_maps] = *m;
	s->maps[s->n_maps++].name = name;
	return 0;
}

int xn_mapset_add_forward(struct xn_mapset *s, const struct xn_forward *f)
{
	const char *name;

	if (xn_grow((void **)&s->fwds, s->n_fwds, &s->cap_fwds, sizeof(*s->fwds)) < 0 ||
	    intern(s, f->name, &name) < 0)
		return -ENOMEM;
	s->fwds[s->n_fwds] = *f;
	s->fwds[s->n_fwds++].name = name;
	return 0;
}

int xn_mapset_del_map(struct xn_mapset *s, const struct xn_addr *pub, struct xn_mapping *removed)
{
	for (size_t i = 0; i < s->n_maps; i++)
		if (same_ip(&s->maps[i].public_addr, pub)) {
			if (removed)
				*removed = s->maps[i];
			name_gone(s, s->maps[i].name);
			s->maps[i] = s->maps[--s->n_maps];
			return 0;
		}
	return -ENOENT;
}

int xn_mapset_del_forward(struct xn_mapset *s, const struct xn_addr *pub, uint16_t port,
			  uint8_t proto, struct xn_forward *removed)
{
	for (size_t i = 0; i < s->n_fwds; i++)
		if (same_ip(&s->fwds[i].public_addr, pub) && s->fwds[i].public_port == port &&
		    s->fwds[i].proto == proto) {
			if (removed)
				*removed = s->fwds[i];
			name_gone(s, s->fwds[i].name);
			s->fwds[i] = s->fwds[--s->n_fwds];
			return 0;
		}
	return -ENOENT;
}

#define MAPPINGS_HEADER "# xennet public IP mappings made with `xennet map|forward add`. Do not edit.\n"

static void format_map(struct xn_buf *b, const struct xn_mapping *m)
{
	char a[XN_ADDR_STRLEN], g[XN_ADDR_STRLEN];

	xn_buf_printf(b, "map %s %s %s\n", xn_addr_format(&m->public_addr, false, a),
		      xn_addr_format(&m->guest, false, g), m->name ? m->name : "-");
}

static void format_forward(struct xn_buf *b, const struct xn_forward *f)
{
	char a[XN_ADDR_STRLEN], g[XN_ADDR_STRLEN];

	xn_buf_printf(b, "forward %s %u %s %s %u %s\n", xn_addr_format(&f->public_addr, false, a),
		      f->public_port, xn_proto_name(f->proto), xn_addr_format(&f->guest, false, g),
		      f->guest_port, f->name ? f->name : "-");
}

int xn_mapset_save(const char *path, const struct xn_mapset *s)
{
	struct xn_buf b = { 0 };
	const char *text;
	int r;

	xn_buf_printf(&b, MAPPINGS_HEADER);
	for (size_t i = 0; i < s->n_maps; i++)
		if (!s->maps[i].from_profile)
			format_map(&b, &s->maps[i]);
	for (size_t i = 0; i < s->n_fwds; i++)
		if (!s->fwds[i].from_profile)
			format_forward(&b, &s->fwds[i]);
	text = xn_buf_str(&b);
	r = text ? xn_write_file_atomic(path, text, strlen(text)) : -ENOMEM;
	xn_buf_free(&b);
	return r;
}

/* One line at the end of the file, on disk before this returns; on
 * failure the file is as it was. */
/* Where the last complete line ends: a line cut short by a crash (never
 * acknowledged, ignored by the loader whatever its length) must not have
 * the next one glued to it. Read back from the end a block at a time
 * (ours are far shorter than one). */
static off_t complete_end(int fd, off_t end)
{
	char block[512];
	off_t to = end;

	while (to > 0) {
		off_t from = to > (off_t)sizeof(block) ? to - (off_t)sizeof(block) : 0;
		ssize_t n = pread(fd, block, (size_t)(to - from), from);

		if (n != to - from)
			return end; /* unreadable: the loader says */
		if (to == end && block[n - 1] == '\n')
			return end;
		for (ssize_t i = n - 1; i >= 0; i--)
			if (block[i] == '\n')
				return from + i + 1;
		to = from;
	}
	return 0; /* no line at all */
}

static int append_line(const char *path, struct xn_buf *b)
{
	const char *text = xn_buf_str(b);
	size_t len = text ? strlen(text) : 0, done = 0;
	int fd, r = 0;
	off_t end;

	if (!text)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	end = lseek(fd, 0, SEEK_END);
	if (end >= 0) {
		off_t good = complete_end(fd, end);
		if (good != end && ftruncate(fd, good) < 0)
			end = -1;
		else
			end = good;
	}
	if (end < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (end == 0) { /* a new file: the header first, then the line */
		struct xn_buf whole = { 0 };

		close(fd);
		xn_buf_printf(&whole, MAPPINGS_HEADER "%s", text);
		r = xn_buf_str(&whole) ? xn_write_file_atomic(path, xn_buf_str(&whole), whole.len) : -ENOMEM;
		xn_buf_free(&whole);
		return r;
	}
	while (done < len && r == 0) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0)
			done += (size_t)n;
	}
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (r < 0 && ftruncate(fd, end) < 0) {
		/* the torn line stays: the loader ignores it, the next append
		 * cuts it */
	}
	close(fd);
	return r;
}

int xn_mapset_journal_map(const char *path, const struct xn_mapping *m, bool add)
{
	struct xn_buf b = { 0 };
	char a[XN_ADDR_STRLEN];
	int r;

	if (add)
		format_map(&b, m);
	else
		xn_buf_printf(&b, "del map %s\n", xn_addr_format(&m->public_addr, false, a));
	r = append_line(path, &b);
	xn_buf_free(&b);
	return r;
}

int xn_mapset_journal_forward(const char *path, const struct xn_forward *f, bool add)
{
	struct xn_buf b = { 0 };
	char a[XN_ADDR_STRLEN];
	int r;

	if (add)
		format_forward(&b, f);
	else
		xn_buf_printf(&b, "del forward %s %u %s\n", xn_addr_format(&f->public_addr, false, a),
			      f->public_port, xn_proto_name(f->proto));
	r = append_line(path, &b);
	xn_buf_free(&b);
	return r;
}

static int parse_line(struct xn_mapset *s, char *line)
{
	char *w[8], *save = NULL;
	size_t n = 0;

	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == XN_ARRAY_SIZE(w))
			return -EBADMSG;
		w[n++] = t;
	}
	if (n == 0)
		return 0;
	if (strcmp(w[0], "map") == 0 && n == 4) {
		struct xn_mapping m = { 0 };
		if (xn_addr_parse_ipv4_host(w[1], &m.public_addr) < 0 ||
		    xn_addr_parse_ipv4_host(w[2], &m.guest) < 0 ||
		    (strcmp(w[3], "-") != 0 && !xn_mapping_name_valid(w[3])))
			return -EBADMSG;
		if (strcmp(w[3], "-") != 0)
			m.name = w[3];
		return xn_mapset_add_map(s, &m);
	}
	/* Journal lines: what a later `del` removed. */
	if (strcmp(w[0], "del") == 0 && n == 3 && strcmp(w[1], "map") == 0) {
		struct xn_addr pub;
		if (xn_addr_parse_ipv4_host(w[2], &pub) < 0)
			return -EBADMSG;
		xn_mapset_del_map(s, &pub, NULL);
		return 0;
	}
	if (strcmp(w[0], "del") == 0 && n == 5 && strcmp(w[1], "forward") == 0) {
		struct xn_addr pub;
		uint16_t port;
		uint8_t proto = strcmp(w[4], "tcp") == 0 ? IPPROTO_TCP
				: strcmp(w[4], "udp") == 0 ? IPPROTO_UDP : 0;
		if (xn_addr_parse_ipv4_host(w[2], &pub) < 0 || parse_port(w[3], &port) < 0 || !proto)
			return -EBADMSG;
		xn_mapset_del_forward(s, &pub, port, proto, NULL);
		return 0;
	}
	if (strcmp(w[0], "forward") == 0 && n == 7) {
		struct xn_forward f = { 0 };
		if (xn_addr_parse_ipv4_host(w[1], &f.public_addr) < 0 || parse_port(w[2], &f.public_port) < 0 ||
		    xn_addr_parse_ipv4_host(w[4], &f.guest) < 0 || parse_port(w[5], &f.guest_port) < 0 ||
		    (strcmp(w[6], "-") != 0 && !xn_mapping_name_valid(w[6])))
			return -EBADMSG;
		if (strcmp(w[3], "tcp") == 0)
			f.proto = IPPROTO_TCP;
		else if (strcmp(w[3], "udp") == 0)
			f.proto = IPPROTO_UDP;
		else
			return -EBADMSG;
		if (strcmp(w[6], "-") != 0)
			f.name = w[6];
		return xn_mapset_add_forward(s, &f);
	}
	return -EBADMSG;
}

int xn_mapset_load(const char *path, struct xn_mapset *s, unsigned *bad_line, size_t *records)
{
	FILE *f = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	int r;

	*s = (struct xn_mapset){ 0 };
	*records = 0;
	/* Missing: none made yet. Unreadable (a directory, an I/O error) is
	 * not "none": read as empty, every acknowledged mapping would go. */
	r = xn_fopen_regular(path, &f);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	errno = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		/* A last line without its newline is an append cut short (a
		 * crash before it was on disk, never acknowledged). */
		if (len == 0 || line[len - 1] != '\n')
			break;
		line[len - 1] = '\0';
		if (line[0] == '#')
			continue;
		r = parse_line(s, line);
		if (r < 0) {
			*bad_line = lineno;
			break;
		}
		(*records)++;
	}
	if (r == 0 && ferror(f))
		r = errno ? -errno : -EIO;
	free(line);
	fclose(f);
	if (r < 0)
		xn_mapset_clear(s);
	else
		xn_mapset_shrink(s);
	return r;
}

/* ---- checking a whole set at once: sorting, not pairs ---- */

struct keyed {
	uint64_t key;
	size_t idx;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

static uint64_t ip_key(const struct xn_addr *a)
{
	return ntohl(a->v4.s_addr);
}

int xn_mapset_check_all(const struct xn_mapset *s, const struct xn_nat_net *nat,
			struct xn_buf *err, bool *bad_is_forward, size_t *bad_index)
{
	size_t n = s->n_maps, nf = s->n_fwds;
	struct keyed *pub = calloc(n + 1, sizeof(*pub)), *gst = calloc(n + 1, sizeof(*gst));
	struct keyed *fwd = calloc(nf + 1, sizeof(*fwd));
	char a[XN_ADDR_STRLEN];
	int r = 0;

	if (!pub || !gst || !fwd) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = xn_mapping_check_addresses(nat, &s->maps[i].public_addr, &s->maps[i].guest, err);
		if (r < 0) {
			*bad_is_forward = false;
			*bad_index = i;
		}
		pub[i] = (struct keyed){ ip_key(&s->maps[i].public_addr), i };
		gst[i] = (struct keyed){ ip_key(&s->maps[i].guest), i };
	}
	for (size_t i = 0; i < nf && r >= 0; i++) {
		r = xn_mapping_check_addresses(nat, &s->fwds[i].public_addr, &s->fwds[i].guest, err);
		if (r < 0) {
			*bad_is_forward = true;
			*bad_index = i;
		}
		fwd[i] = (struct keyed){ ip_key(&s->fwds[i].public_addr) << 24 |
					 (uint64_t)s->fwds[i].public_port << 8 | s->fwds[i].proto, i };
	}
	if (r < 0)
		goto out;
	qsort(pub, n, sizeof(*pub), cmp_keyed);
	qsort(gst, n, sizeof(*gst), cmp_keyed);
	qsort(fwd, nf, sizeof(*fwd), cmp_keyed);
	for (size_t i = 1; i < n; i++) {
		if (pub[i].key == pub[i - 1].key) {
			size_t k = pub[i].idx > pub[i - 1].idx ? pub[i].idx : pub[i - 1].idx;
			xn_buf_printf(err, "public address %s is mapped twice",
				      xn_addr_format(&s->maps[k].public_addr, false, a));
			*bad_is_forward = false;
			*bad_index = k;
			r = -EEXIST;
			goto out;
		}
		if (gst[i].key == gst[i - 1].key) {
			size_t k = gst[i].idx > gst[i - 1].idx ? gst[i].idx : gst[i - 1].idx;
			xn_buf_printf(err, "guest %s has two public addresses",
				      xn_addr_format(&s->maps[k].guest, false, a));
			*bad_is_forward = false;
			*bad_index = k;
			r = -EEXIST;
			goto out;
		}
	}
	for (size_t i = 0; i < nf; i++) {
		struct keyed probe = { fwd[i].key >> 24, 0 };
		if (i && fwd[i].key == fwd[i - 1].key) {
			xn_buf_printf(err, "%s:%u/%s is forwarded twice",
				      xn_addr_format(&s->fwds[fwd[i].idx].public_addr, false, a),
				      s->fwds[fwd[i].idx].public_port, xn_proto_name(s->fwds[fwd[i].idx].proto));
			r = -EEXIST;
		} else if (n && bsearch(&probe, pub, n, sizeof(*pub), cmp_keyed)) {
			xn_buf_printf(err, "public address %s is mapped 1:1: a port forward would collide with it",
				      xn_addr_format(&s->fwds[fwd[i].idx].public_addr, false, a));
			r = -EEXIST;
		}
		if (r < 0) {
			*bad_is_forward = true;
			*bad_index = fwd[i].idx;
			goto out;
		}
	}
out:
	free(pub);
	free(gst);
	free(fwd);
	return r;
}
