/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <syslog.h>

/* Logging happens at the edge (daemon, CLI); library code returns -errno. */
void xn_log_init(const char *ident, bool to_syslog, int max_level);
void xn_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) xn_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) xn_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...) xn_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) xn_log(LOG_DEBUG, __VA_ARGS__)
