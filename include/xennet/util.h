/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define XN_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define XN_CLEANUP(fn) __attribute__((cleanup(fn)))

/* Hand ownership of *p on: returns the pointer and leaves NULL behind. */
#define XN_TAKE_PTR(p)                                                         \
	({                                                                     \
		__typeof__(p) _taken = (p);                                    \
		(p) = NULL;                                                    \
		_taken;                                                        \
	})

static inline void xn_freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ XN_CLEANUP(xn_freep)

static inline void xn_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_close_ XN_CLEANUP(xn_closep)

/* CLOCK_MONOTONIC in milliseconds and in microseconds: deadlines,
 * timeouts and durations (not the time of day). */
int64_t xn_now_ms(void);
int64_t xn_now_us(void);

/* The index of s in a table of names indexed by an enum (NULL entries
 * are holes), -ENOENT when it is none of them. */
int xn_name_lookup(const char *const *names, size_t n, const char *s);

/* Interface names: 1..15 bytes of [A-Za-z0-9_.-], not "." or "..". */
bool xn_ifname_valid(const char *name);

/* Strict number parsing: whole string, no sign unless allowed, range checked.
 * Returns 0 or -EINVAL / -ERANGE. */
int xn_parse_uint(const char *s, unsigned long min, unsigned long max,
		  unsigned long *ret);

/* yes/no/true/false/on/off/1/0. Returns 0/1 or -EINVAL. */
int xn_parse_bool(const char *s);

/* Read/write a small text file (sysctl, state). write is atomic: temp file,
 * fsync, rename. Return -errno. */
/* Two regular files with the same bytes (false if either cannot be read). */
bool xn_files_equal(const char *a, const char *b);
int xn_read_file(const char *path, char *buf, size_t size);
int xn_write_file_atomic(const char *path, const char *data, size_t len);

/* Open a file to read it, refusing anything but a regular file (a FIFO
 * or a device must not block the daemon in open() or read(): O_NONBLOCK,
 * then fstat). -EISDIR for a directory, -EINVAL for any other kind;
 * *ret is a stream (O_CLOEXEC). A missing file is -ENOENT. */
int xn_fopen_regular(const char *path, FILE **ret);
/* strerror() for what xn_fopen_regular and xn_read_lines return. */
const char *xn_file_strerror(int r);

/* Read a state file line by line ('#' lines skipped, newline removed),
 * calling fn for each; stops at the first error, whose line is put in
 * *bad_line. A missing file is no line at all (0); one that cannot be
 * read (a directory, an I/O error) is its -errno, never read as empty. */
int xn_read_lines(const char *path, int (*fn)(char *line, void *userdata),
		  void *userdata, unsigned *bad_line);

/* Room in *arr (of *cap items of size bytes) for item n, growing by half:
 * 10,000 items added one by one are not 10,000 reallocations. */
int xn_grow(void **arr, size_t n, size_t *cap, size_t size);

/* Growable string buffer used to build messages and reports. */
struct xn_buf {
	char *data;
	size_t len, cap;
	bool oom;
};
void xn_buf_printf(struct xn_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void xn_buf_free(struct xn_buf *b);
/* Returns the NUL-terminated text ("" if empty), or NULL after an OOM. */
const char *xn_buf_str(struct xn_buf *b);
