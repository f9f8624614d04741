/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xennet/util.h"

/* The control socket: a unix stream socket, root only. One request per
 * connection. Framing: a request is a u32 length then that many bytes of
 * NUL-separated words (argv style); a reply is a u32 status (0 or a
 * positive errno) then a u32 length and that many bytes of text. */

#define XN_CTL_MAX_REQUEST 4096
#define XN_CTL_MAX_WORDS 16
#define XN_CTL_MAX_REPLY (16u << 20)

/* The socket path: $XENNET_SOCKET, else the built-in default. */
const char *xn_ctl_default_path(void);

/* Client side. *ret_body is malloc'ed (NUL-terminated). Returns -errno
 * for transport errors; *ret_status holds the daemon's verdict. */
int xn_ctl_call(const char *path, const char *const *words, size_t n,
		int timeout_ms, int *ret_status, char **ret_body);

/* Server side. */
int xn_ctl_listen(const char *path);

/* A request read without blocking: each connection its own buffer and
 * deadline (2 s from its connection), so that a slow or idle client
 * delays nobody. */
struct xn_ctl_request {
	int fd; /* the client, to answer (-1 once handed on) */
	int r; /* 0, or -errno: the request could not be read */
	size_t n;
	char *words[XN_CTL_MAX_WORDS]; /* into raw */
	/* the server's */
	int64_t deadline;
	uint32_t got;
	char *out; /* the reply, while the client has not taken all of it */
	size_t out_len, out_off;
	struct xn_ctl_request *prev, *next;
	char raw[sizeof(uint32_t) + XN_CTL_MAX_REQUEST + 1];
};
struct xn_ctl_server;

/* Listens on path; only peers with uid 0 are served (SO_PEERCRED). */
int xn_ctl_server_open(const char *path, struct xn_ctl_server **ret);
void xn_ctl_server_close(struct xn_ctl_server *s);
/* One fd for the event loop: readable when a client connects or sends. */
int xn_ctl_server_fd(const struct xn_ctl_server *s);
/* Accepts new clients and reads what every client sent; puts up to max
 * requests that are complete (or failed: r < 0) in ready, in the order
 * they came, and returns how many (call again while it returns max).
 * *err: an accept error other than a refused peer. */
size_t xn_ctl_server_take(struct xn_ctl_server *s, struct xn_ctl_request **ready, size_t max,
			  int *err);
/* Until the earliest deadline of a request not complete yet (-1: none),
 * and dropping those past it. */
int xn_ctl_server_timeout_ms(const struct xn_ctl_server *s);
void xn_ctl_server_expire(struct xn_ctl_server *s);
/* Answers q and takes it: what the socket does not take at once is sent
 * as the client reads it (a client that does not read delays nobody),
 * for 10 s at most. -errno: not sent (q is freed all the same). */
int xn_ctl_server_reply(struct xn_ctl_server *s, struct xn_ctl_request *q, int status,
			const char *body);
/* Peers refused (not root), requests dropped (past their deadline, or the
 * oldest of too many) and replies abandoned (not read within 10 s) since
 * last asked. */
void xn_ctl_server_counts(struct xn_ctl_server *s, unsigned *refused, unsigned *expired,
			  unsigned *abandoned);
/* Reads what q->fd (non-blocking) holds: 1 when the request is complete
 * (q->r 0 and q->words set) or cannot be (q->r < 0), 0 when more is to
 * come. The server's reader; the fuzzer's too. */
int xn_ctl_request_read(struct xn_ctl_request *q);
/* Closes q->fd unless it is -1, and frees q. */
void xn_ctl_request_free(struct xn_ctl_request *q);
int xn_ctl_write_reply(int fd, int status, const char *body);
/* Has the client closed its end (given up waiting)? Never blocks. */
bool xn_ctl_peer_gone(int fd);
