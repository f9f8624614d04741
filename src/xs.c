/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/xs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>

/* Two connections: one for the watch (libxenstore then runs a reader
 * thread on it, and every request on that handle goes through it: futex
 * and signal-mask calls each time), one for plain requests, answered
 * synchronously. */
struct xn_xs {
	struct xs_handle *h; /* requests */
	struct xs_handle *w; /* the watch */
	bool events_ordered;
};

/* The C xenstored sends a connection's replies and watch events through
 * one queue, in order, and leaves /tool/xenstored without a value.
 * oxenstored names itself there, and past its quota-maxwatchevents it
 * holds a watch's events back in a queue of that watch (flushed only when
 * the watch fires again) while replies and other watches' events go on.
 * Any xenstored but the C one is taken as unordered. */
static bool replies_follow_events(struct xs_handle *h)
{
	unsigned len = 0;
	char *v = xs_read(h, XBT_NULL, "/tool/xenstored", &len);
	bool ordered = v && len == 0;

	free(v);
	return ordered;
}

static int open_handles(struct xn_xs **ret, bool watch)
{
	struct xn_xs *xs = calloc(1, sizeof(*xs));

	if (!xs)
		return -ENOMEM;
	xs->h = xs_open(0);
	xs->w = xs->h && watch ? xs_open(0) : NULL;
	if (!xs->h || (watch && !xs->w)) {
		int e = errno ? -errno : -ECONNREFUSED;
		xs_close(xs->h);
		free(xs);
		return e;
	}
	xs->events_ordered = watch && replies_follow_events(xs->h);
	*ret = xs;
	return 0;
}

int xn_xs_open(struct xn_xs **ret)
{
	return open_handles(ret, true);
}

int xn_xs_open_requests(struct xn_xs **ret)
{
	return open_handles(ret, false);
}

void xn_xs_close(struct xn_xs *xs)
{
	if (!xs)
		return;
	xs_close(xs->h);
	if (xs->w)
		xs_close(xs->w);
	free(xs);
}

int xn_xs_read(struct xn_xs *xs, const char *path, size_t max, char **ret)
{
	unsigned len = 0;
	char *v = xs_read(xs->h, XBT_NULL, path, &len);

	if (!v)
		return errno == ENOENT ? -ENOENT : (errno ? -errno : -EIO);
	if (len > max || strlen(v) != len) {
		free(v);
		return -EBADMSG;
	}
	*ret = v;
	return 0;
}

int xn_xs_exists(struct xn_xs *xs, const char *path)
{
	unsigned n = 0;
	char **d = xs_directory(xs->h, XBT_NULL, path, &n);

	if (d) {
		free(d);
		return 1;
	}
	return errno == ENOENT ? 0 : (errno ? -errno : -EIO);
}

int xn_xs_write(struct xn_xs *xs, const char *path, const char *value)
{
	if (!xs_write(xs->h, XBT_NULL, path, value, (unsigned)strlen(value)))
		return errno ? -errno : -EIO;
	return 0;
}

int xn_xs_write_error(struct xn_xs *xs, const char *dir, const char *message)
{
	char p1[512], p2[512];

	snprintf(p1, sizeof(p1), "%s/hotplug-error", dir);
	snprintf(p2, sizeof(p2), "%s/hotplug-status", dir);
	for (int attempt = 0; attempt < 5; attempt++) {
		xs_transaction_t t = xs_transaction_start(xs->h);
		bool ok;

		if (t == XBT_NULL)
			return errno ? -errno : -EIO;
		ok = xs_write(xs->h, t, p1, message, (unsigned)strlen(message)) &&
		     xs_write(xs->h, t, p2, "error", 5);
		if (!ok) {
			int e = errno;
			xs_transaction_end(xs->h, t, true);
			return e ? -e : -EIO;
		}
		if (xs_transaction_end(xs->h, t, false))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

int xn_xs_directory(struct xn_xs *xs, const char *path, char ***ret, unsigned *n)
{
	char **d = xs_directory(xs->h, XBT_NULL, path, n);

	if (!d)
		return errno == ENOENT ? -ENOENT : (errno ? -errno : -EIO);
	*ret = d; /* one allocation: free(d) frees the names too */
	return 0;
}

int xn_xs_watch(struct xn_xs *xs, const char *path, const char *token)
{
	if (!xs_watch(xs->w, path, token))
		return errno ? -errno : -EIO;
	return 0;
}

int xn_xs_sync(struct xn_xs *xs)
{
	unsigned len = 0;
	/* xenstored answers a connection in order: once this reply is in,
	 * every watch event it queued for us before is in libxenstore's
	 * list. The path needs no permission and may be empty. */
	char *v = xs_read(xs->w, XBT_NULL, "/", &len);

	if (!v && errno != ENOENT)
		return errno ? -errno : -EIO;
	free(v);
	return 0;
}

bool xn_xs_events_ordered(const struct xn_xs *xs)
{
	return xs->events_ordered;
}

int xn_xs_fd(struct xn_xs *xs)
{
	return xs_fileno(xs->w);
}

int xn_xs_drain(struct xn_xs *xs,
		void (*fn)(const char *path, const char *token, void *userdata),
		void *userdata)
{
	for (;;) {
		char **ev = xs_check_watch(xs->w);

		if (!ev)
			return errno == EAGAIN ? 0 : -errno;
		fn(ev[XS_WATCH_PATH], ev[XS_WATCH_TOKEN], userdata);
		free(ev);
	}
}
