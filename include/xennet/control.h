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
/* Accepts only peers with uid 0 (SO_PEERCRED). Returns the fd, -EPERM for
 * a refused peer (already closed), or -errno. */
int xn_ctl_accept(int listen_fd);
/* Reads one request; words point into buf. */
int xn_ctl_read_request(int fd, char buf[XN_CTL_MAX_REQUEST + 1],
			char *words[XN_CTL_MAX_WORDS], size_t *n);
int xn_ctl_write_reply(int fd, int status, const char *body);
/* Has the client closed its end (given up waiting)? Never blocks. */
bool xn_ctl_peer_gone(int fd);
