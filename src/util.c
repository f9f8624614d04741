/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/util.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

bool xn_ifname_valid(const char *name)
{
	size_t n = 0;

	if (!name || !*name)
		return false;
	for (const char *c = name; *c; c++, n++) {
		if (n >= 15)
			return false;
		if (!isascii((unsigned char)*c) ||
		    !(isalnum((unsigned char)*c) || *c == '_' || *c == '.' ||
		      *c == '-'))
			return false;
	}
	return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int xn_parse_uint(const char *s, unsigned long min, unsigned long max,
		  unsigned long *ret)
{
	unsigned long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int xn_parse_bool(const char *s)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < XN_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -EINVAL;
}

int xn_read_file(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = -1;
	size_t got = 0;

	if (size == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < size - 1) {
		ssize_t n = read(fd, buf + got, size - 1 - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return (int)got;
}

int xn_write_file_atomic(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	_cleanup_close_ int fd = -1;
	size_t done = 0;
	int r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto fail;
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	/* The rename itself on disk: the directory's entry. */
	{
		char dir[PATH_MAX];
		char *slash;
		int dfd;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		else
			snprintf(dir, sizeof(dir), ".");
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return 0;
fail:
	unlink(tmp);
	return r;
}

int xn_fopen_regular(const char *path, FILE **ret)
{
	struct stat st;
	FILE *f;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	else
		r = 0;
	if (r < 0) {
		close(fd);
		return r;
	}
	f = fdopen(fd, "r");
	if (!f) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret = f;
	return 0;
}

const char *xn_file_strerror(int r)
{
	if (r == -EISDIR)
		return "a directory, not a regular file";
	if (r == -EINVAL)
		return "not a regular file";
	return strerror(-r);
}

int xn_read_lines(const char *path, int (*fn)(char *line, void *userdata),
		  void *userdata, unsigned *bad_line)
{
	FILE *f = NULL;
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int r = xn_fopen_regular(path, &f);

	if (r < 0)
		return r == -ENOENT ? 0 : r;
	errno = 0;
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#')
			continue;
		r = fn(line, userdata);
		if (r < 0) {
			if (bad_line)
				*bad_line = lineno;
			break;
		}
	}
	if (r == 0 && ferror(f))
		r = errno ? -errno : -EIO;
	free(line);
	fclose(f);
	return r;
}

void xn_buf_printf(struct xn_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d) {
			b->oom = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
}

void xn_buf_free(struct xn_buf *b)
{
	free(b->data);
	*b = (struct xn_buf){ 0 };
}

const char *xn_buf_str(struct xn_buf *b)
{
	if (b->oom)
		return NULL;
	return b->data ? b->data : "";
}

int xn_grow(void **arr, size_t n, size_t *cap, size_t size)
{
	size_t want;
	void *v;

	if (n < *cap)
		return 0;
	want = n < 8 ? 8 : n + n / 2;
	v = reallocarray(*arr, want, size);
	if (!v)
		return -ENOMEM;
	*arr = v;
	*cap = want;
	return 0;
}

bool xn_files_equal(const char *a, const char *b)
{
	FILE *fa = NULL, *fb = NULL;
	bool equal = false;
	int ca, cb;

	if (xn_fopen_regular(a, &fa) < 0 || xn_fopen_regular(b, &fb) < 0)
		goto out;
	do {
		ca = getc(fa);
		cb = getc(fb);
	} while (ca == cb && ca != EOF);
	equal = ca == cb && !ferror(fa) && !ferror(fb);
out:
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return equal;
}

int64_t xn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t xn_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int xn_name_lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return (int)i;
	return -ENOENT;
}
