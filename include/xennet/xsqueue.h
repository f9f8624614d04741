/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xennet/xs.h"

/* xenstore requests that the event loop does not wait for: a thread makes
 * them one after another, and hands each result back through a file
 * descriptor the loop polls. hotplug-status writes go in the order posted,
 * on a connection of the thread's own; syncs (xn_xs_sync on the loop's
 * connection) go before the writes still queued. */

struct xn_xsq;

int xn_xsq_open(struct xn_xs *watch, struct xn_xsq **ret);
/* Makes what is still queued, then stops the thread. Results not
 * collected are dropped. false if the thread did not end within a second
 * (stuck on a xenstored that does not answer): it is left to the
 * process's exit, and so is the connection it was using. */
bool xn_xsq_close(struct xn_xsq *q);

/* dir is a vif's backend directory. error NULL: hotplug-status =
 * "connected"; else hotplug-error = error and hotplug-status = "error",
 * in one transaction. cookie comes back with the result. */
int xn_xsq_post(struct xn_xsq *q, const char *dir, const char *error, uint64_t cookie);
/* Once it is done, every watch event that xenstored sent to the watch
 * connection before the sync started is ready for xn_xs_drain. */
int xn_xsq_post_sync(struct xn_xsq *q, uint64_t cookie);
/* Readable when results are there to collect. */
int xn_xsq_fd(const struct xn_xsq *q);
/* Calls done for each request made since the last call, in the order
 * made, with 0 or -errno; returns how many. Never blocks. */
size_t xn_xsq_collect(struct xn_xsq *q,
		      void (*done)(bool sync, uint64_t cookie, int result, void *ud), void *ud);
/* Waits until every request posted so far is made: 0, or -ETIMEDOUT
 * after timeout_ms (< 0: no limit). */
int xn_xsq_flush(struct xn_xsq *q, int timeout_ms);
