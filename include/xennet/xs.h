/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* xenstore through libxenstore ($XENSTORED_PATH is honoured by the
 * library). Paths may be relative to our domain's home. Values read are
 * untrusted: bounded, NUL-terminated, and refused if they hold a NUL. */

struct xn_xs;

int xn_xs_open(struct xn_xs **ret);
/* One connection, for requests only: no watch, no xn_xs_sync. */
int xn_xs_open_requests(struct xn_xs **ret);
void xn_xs_close(struct xn_xs *xs);

/* -ENOENT when the node does not exist, -EBADMSG for a value that is not
 * text or longer than max. *ret is malloc'ed. */
int xn_xs_read(struct xn_xs *xs, const char *path, size_t max, char **ret);
/* 1 if path exists, 0 if it does not, -errno if xenstore cannot say. */
int xn_xs_exists(struct xn_xs *xs, const char *path);
int xn_xs_write(struct xn_xs *xs, const char *path, const char *value);
/* Write hotplug-error and hotplug-status=error in one transaction. */
int xn_xs_write_error(struct xn_xs *xs, const char *dir, const char *message);
/* Names of the children of path: one allocation, free() the array. */
int xn_xs_directory(struct xn_xs *xs, const char *path, char ***ret, unsigned *n);

int xn_xs_watch(struct xn_xs *xs, const char *path, const char *token);
/* Returns once every watch event xenstored sent before this call is
 * queued for xn_xs_drain(): one round trip on the watch connection. */
int xn_xs_sync(struct xn_xs *xs);
/* Does a reply on the watch connection come after every watch event
 * xenstored queued for it before (the C xenstored)? If not (oxenstored),
 * xn_xs_sync proves nothing and a node's value must be read. */
bool xn_xs_events_ordered(const struct xn_xs *xs);
int xn_xs_fd(struct xn_xs *xs);
/* Calls fn for every pending watch event without blocking. */
int xn_xs_drain(struct xn_xs *xs,
		void (*fn)(const char *path, const char *token, void *userdata),
		void *userdata);
