/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

/* Logging happens at the edge (daemon, CLI); library code returns -errno.
 * To syslog, or to stderr: with "<N>" priority prefixes when stderr is the
 * journal (JOURNAL_STREAM), with "ident: level: " otherwise. Warnings and
 * errors repeated from one call site are rate-limited; a line then says
 * how many were left out. */
void xn_log_init(const char *ident, bool to_syslog, int max_level);
void xn_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Never rate-limited: one line per event of its own (a vif that failed),
 * each naming what it is about, which a "left out" count would lose. */
void xn_log_each(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* When (CLOCK_MONOTONIC ms) a "left out" line is due, 0 if none. */
int64_t xn_log_flush_due(void);
/* Print the "left out" lines that are due (all of them with all). */
void xn_log_flush(bool all);

#define log_err(...) xn_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) xn_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...) xn_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) xn_log(LOG_DEBUG, __VA_ARGS__)
