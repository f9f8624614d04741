/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "xennet/log.h"
#include "xennet/util.h"

enum log_target { LOG_TO_STDERR, LOG_TO_JOURNAL, LOG_TO_SYSLOG };

static enum log_target target;
static int log_max = LOG_INFO;
static const char *log_ident = "xennet";

/* Repeated warnings and errors (a client refused 5,000 times, the same
 * repair failing on every vif of a bridge that vanished) are limited per
 * call site (the caller's return address: many share a format like
 * "%s"): LOG_BURST in each window of
 * LOG_WINDOW_MS, then one line saying how many were left out. Info and
 * debug lines (one per change or event) are never dropped. */
#define LOG_BURST 10
#define LOG_WINDOW_MS 5000
#define LOG_SITES 32

struct log_site {
	const void *caller;
	int level;
	int64_t window_start;
	unsigned printed, suppressed;
	char last[160]; /* the last one left out, to quote */
};

static struct log_site sites[LOG_SITES];
/* Threads may log too: the sites are shared. */
static pthread_mutex_t sites_lock = PTHREAD_MUTEX_INITIALIZER;

/* stderr is the journal when JOURNAL_STREAM names its device and inode. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void xn_log_init(const char *ident, bool to_syslog, int max_level)
{
	log_ident = ident;
	log_max = max_level;
	if (to_syslog) {
		target = LOG_TO_SYSLOG;
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	} else {
		target = stderr_is_journal() ? LOG_TO_JOURNAL : LOG_TO_STDERR;
	}
}

/* One message, each of its lines with its priority for the journal
 * (sd-daemon(3): "<N>" at the start of each line), or with the program's
 * name and the level's for a terminal. */
static void emit(int level, const char *msg)
{
	static const char *const prefix[] = {
		[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",
		[LOG_CRIT] = "crit",   [LOG_ERR] = "error",
		[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
		[LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
	};
	const char *line = msg;

	if (target == LOG_TO_SYSLOG) {
		syslog(level, "%s", msg);
		return;
	}
	flockfile(stderr);
	do {
		size_t len = strcspn(line, "\n");
		if (target == LOG_TO_JOURNAL)
			fprintf(stderr, "<%d>%.*s\n", level & 7, (int)len, line);
		else if (line == msg)
			fprintf(stderr, "%s: %s: %.*s\n", log_ident, prefix[level & 7], (int)len, line);
		else
			fprintf(stderr, "%.*s\n", (int)len, line);
		line += len;
	} while (*line++ && *line);
	funlockfile(stderr);
}

static void report_suppressed(struct log_site *s)
{
	char msg[256];

	if (!s->suppressed)
		return;
	snprintf(msg, sizeof(msg), "%u more like this left out in %d s: %s", s->suppressed,
		 LOG_WINDOW_MS / 1000, s->last);
	emit(s->level, msg);
	s->suppressed = 0;
}

/* The site of caller, or a free one (or the oldest) for it. */
static struct log_site *site_of(const void *caller, int level, int64_t now)
{
	struct log_site *oldest = &sites[0];

	for (size_t i = 0; i < LOG_SITES; i++) {
		if (sites[i].caller == caller)
			return &sites[i];
		if (sites[i].window_start < oldest->window_start)
			oldest = &sites[i];
	}
	report_suppressed(oldest);
	*oldest = (struct log_site){ .caller = caller, .level = level, .window_start = now };
	return oldest;
}

/* Whether a message of this site may be printed now. */
static bool admit(struct log_site *s, int64_t now)
{
	if (now - s->window_start >= LOG_WINDOW_MS) {
		report_suppressed(s);
		s->window_start = now;
		s->printed = 0;
	}
	return s->printed++ < LOG_BURST;
}

/* caller: the call site whose lines are rate-limited; NULL: never. */
static void log_v(int level, const void *caller, const char *fmt, va_list ap)
{
	struct log_site *site = NULL;
	char stackbuf[1024], *msg = stackbuf;
	va_list aq;
	int n;

	if (level > log_max)
		return;
	if (caller && level <= LOG_WARNING) {
		int64_t now = xn_now_ms();
		bool admitted;

		pthread_mutex_lock(&sites_lock);
		site = site_of(caller, level, now);
		admitted = admit(site, now);
		if (!admitted) {
			va_copy(aq, ap);
			vsnprintf(site->last, sizeof(site->last), fmt, aq);
			va_end(aq);
			site->suppressed++;
		}
		pthread_mutex_unlock(&sites_lock);
		if (!admitted)
			return;
	}
	va_copy(aq, ap);
	n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, aq);
	va_end(aq);
	if (n >= (int)sizeof(stackbuf)) {
		msg = malloc((size_t)n + 1);
		if (msg) {
			va_copy(aq, ap);
			vsnprintf(msg, (size_t)n + 1, fmt, aq);
			va_end(aq);
		} else {
			msg = stackbuf; /* cut short rather than lost */
		}
	}
	emit(level, msg);
	if (msg != stackbuf)
		free(msg);
}

void xn_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(level, __builtin_return_address(0), fmt, ap);
	va_end(ap);
}

void xn_log_each(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(level, NULL, fmt, ap);
	va_end(ap);
}

int64_t xn_log_flush_due(void)
{
	int64_t due = 0;

	pthread_mutex_lock(&sites_lock);
	for (size_t i = 0; i < LOG_SITES; i++) {
		int64_t end = sites[i].window_start + LOG_WINDOW_MS;
		if (sites[i].suppressed && (!due || end < due))
			due = end;
	}
	pthread_mutex_unlock(&sites_lock);
	return due;
}

void xn_log_flush(bool all)
{
	int64_t now = xn_now_ms();

	pthread_mutex_lock(&sites_lock);
	for (size_t i = 0; i < LOG_SITES; i++)
		if (sites[i].suppressed &&
		    (all || now - sites[i].window_start >= LOG_WINDOW_MS)) {
			report_suppressed(&sites[i]);
			/* A new window: the next ones are printed again. */
			sites[i].window_start = now;
			sites[i].printed = 0;
		}
	pthread_mutex_unlock(&sites_lock);
}
