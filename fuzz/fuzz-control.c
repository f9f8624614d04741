/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness for what a control-socket client sends to xennetd:
 * the bytes are written to one end of a socket pair, which is then shut,
 * and xn_ctl_read_request() reads the request from the other, as the
 * daemon does. Then each word goes through the parsers the daemon applies
 * to request arguments (ids, IPv4 addresses, ADDRESS:PORT[/PROTO], mapping
 * names). Checked besides crashes:
 *  - the framing's verdict is the one the protocol gives (a u32 length of
 *    1 to XN_CTL_MAX_REQUEST, that many bytes, NUL-terminated words, at
 *    most XN_CTL_MAX_WORDS of them; a short request is a reset
 *    connection), and never a wait;
 *  - an accepted request's words are the bytes sent, in order, each
 *    NUL-terminated inside the buffer;
 *  - an accepted argument formats back to a string that parses to the same
 *    value. */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz-common.h"
#include "xennet/addr.h"
#include "xennet/control.h"
#include "xennet/mapping.h"
#include "xennet/vif.h"

/* What the protocol says of these bytes: 0 or the -errno to expect. */
static int expected_verdict(const uint8_t *data, size_t size, size_t *n_words)
{
	uint32_t len;
	size_t n = 0;

	if (size < sizeof(len))
		return -ECONNRESET;
	memcpy(&len, data, sizeof(len));
	if (len == 0 || len > XN_CTL_MAX_REQUEST)
		return -EMSGSIZE;
	if (size - sizeof(len) < len)
		return -ECONNRESET;
	data += sizeof(len);
	if (data[len - 1] != '\0')
		return -EBADMSG;
	for (uint32_t i = 0; i < len; i++)
		n += data[i] == '\0';
	if (n > XN_CTL_MAX_WORDS)
		return -E2BIG;
	*n_words = n;
	return 0;
}

static void check_words(const uint8_t *body, char *buf, char **words, size_t n)
{
	const char *p = buf;
	uint32_t len;

	memcpy(&len, body - sizeof(len), sizeof(len));
	FUZZ_CHECK(memcmp(buf, body, len) == 0 && buf[len] == '\0');
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(words[i] == p);
		p += strlen(p) + 1;
	}
	FUZZ_CHECK(p == buf + len);
}

static void check_id(const char *w, unsigned long max)
{
	unsigned long v, back;
	char s[32];

	if (xn_parse_uint(w, 0, max, &v) < 0)
		return;
	FUZZ_CHECK(v <= max);
	snprintf(s, sizeof(s), "%lu", v);
	FUZZ_CHECK(xn_parse_uint(s, 0, max, &back) == 0 && back == v);
}

static void check_addresses(const char *w)
{
	struct xn_addr a, back;
	char s[XN_ADDR_STRLEN + 16];
	uint16_t port, port2;
	uint8_t proto, proto2;

	if (xn_addr_parse_ipv4_host(w, &a) == 0) {
		FUZZ_CHECK(a.family == AF_INET && a.prefixlen == 32);
		xn_addr_format(&a, false, s);
		FUZZ_CHECK(xn_addr_parse_ipv4_host(s, &back) == 0 && xn_addr_equal(&a, &back));
	}
	if (xn_parse_host_port(w, &a, &port) == 0) {
		FUZZ_CHECK(a.family == AF_INET && port != 0);
		snprintf(s, sizeof(s), "%s:%u", xn_addr_format(&a, false, (char[XN_ADDR_STRLEN]){ 0 }), port);
		FUZZ_CHECK(xn_parse_host_port(s, &back, &port2) == 0 && xn_addr_equal(&a, &back) &&
			   port == port2);
	}
	if (xn_parse_public_port(w, &a, &port, &proto) == 0) {
		FUZZ_CHECK(a.family == AF_INET && port != 0 &&
			   (proto == IPPROTO_TCP || proto == IPPROTO_UDP));
		snprintf(s, sizeof(s), "%s:%u/%s", xn_addr_format(&a, false, (char[XN_ADDR_STRLEN]){ 0 }),
			 port, xn_proto_name(proto));
		FUZZ_CHECK(xn_parse_public_port(s, &back, &port2, &proto2) == 0 &&
			   xn_addr_equal(&a, &back) && port == port2 && proto == proto2);
	}
}

static void check_arguments(char **words, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *w = words[i];
		check_id(w, XN_DOMID_FIRST_RESERVED - 1);
		check_id(w, 65535);
		check_addresses(w);
		/* A name goes into the journal as one word and into replies. */
		if (xn_mapping_name_valid(w))
			FUZZ_CHECK(strlen(w) <= XN_MAPPING_NAME_MAX && !strpbrk(w, " \n") &&
				   fuzz_printable(w));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct xn_ctl_request q;
	size_t want_n = 0;
	int sv[2], r, want;

	if (size > XN_CTL_MAX_REQUEST + 64)
		return 0;
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	FUZZ_CHECK(size == 0 || send(sv[0], data, size, MSG_NOSIGNAL) == (ssize_t)size);
	shutdown(sv[0], SHUT_WR);

	want = expected_verdict(data, size, &want_n);
	memset(&q, 0, sizeof(q));
	q.fd = sv[1];
	FUZZ_CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	/* Everything was sent and the write side shut: it completes. */
	FUZZ_CHECK(xn_ctl_request_read(&q) == 1);
	r = q.r;
	close(sv[0]);
	close(sv[1]);
	if (r != want)
		fprintf(stderr, "read %d, the protocol says %d\n", r, want);
	FUZZ_CHECK(r == want);
	if (r < 0)
		return 0;
	FUZZ_CHECK(q.n == want_n && q.n >= 1);
	check_words(data + sizeof(uint32_t), q.raw + sizeof(uint32_t), q.words, q.n);
	check_arguments(q.words, q.n);
	return 0;
}
