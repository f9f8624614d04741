/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* hotplug-status writes that the event loop does not wait for: a thread
 * makes them one after another, in the order posted, on a xenstore
 * connection of its own, and hands each result back through a file
 * descriptor the loop polls. */

struct xn_xsq;

int xn_xsq_open(struct xn_xsq **ret);
/* Writes what is still queued, then stops the thread. Results not
 * collected are dropped. */
void xn_xsq_close(struct xn_xsq *q);

/* dir is a vif's backend directory. error NULL: hotplug-status =
 * "connected"; else hotplug-error = error and hotplug-status = "error",
 * in one transaction. cookie comes back with the result. */
int xn_xsq_post(struct xn_xsq *q, const char *dir, const char *error, uint64_t cookie);
/* Readable when results are there to collect. */
int xn_xsq_fd(const struct xn_xsq *q);
/* Calls done for each write made since the last call, in order, with 0
 * or -errno. Never blocks. */
void xn_xsq_collect(struct xn_xsq *q, void (*done)(uint64_t cookie, int result, void *ud),
		    void *ud);
/* Waits until every write posted so far is made. */
void xn_xsq_flush(struct xn_xsq *q);
