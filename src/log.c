/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "xennet/log.h"

static bool use_syslog;
static int log_max = LOG_INFO;
static const char *log_ident = "xennet";

void xn_log_init(const char *ident, bool to_syslog, int max_level)
{
	log_ident = ident;
	use_syslog = to_syslog;
	log_max = max_level;
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void xn_log(int level, const char *fmt, ...)
{
	static const char *const prefix[] = {
		[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",
		[LOG_CRIT] = "crit",   [LOG_ERR] = "error",
		[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
		[LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
	};
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	if (use_syslog) {
		vsyslog(level, fmt, ap);
	} else {
		flockfile(stderr);
		fprintf(stderr, "%s: %s: ", log_ident, prefix[level & 7]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		funlockfile(stderr);
	}
	va_end(ap);
}
