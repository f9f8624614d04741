/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Tell the service manager about the daemon's state (sd_notify(3)):
 * "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...". Does nothing when
 * NOTIFY_SOCKET is not set or xennet was built without libsystemd. */
void xn_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
