/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xennet/profilecopy.h"

/* Larger than any profile (10,000 [map] sections are about 1 MiB). */
#define PROFILE_MAX_BYTES (64u << 20)

int xn_profile_copy_path(const char *state_dir, char out[PATH_MAX])
{
	if ((size_t)snprintf(out, PATH_MAX, "%s/profile.conf", state_dir) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static int read_all(int fd, size_t size, char **ret)
{
	char *data = malloc(size + 1);
	size_t done = 0;

	if (!data)
		return -ENOMEM;
	while (done < size) {
		ssize_t n = read(fd, data + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			free(data);
			return e;
		}
		if (n == 0)
			break; /* shrunk meanwhile: what was there */
		done += (size_t)n;
	}
	data[done] = '\0';
	*ret = data;
	return (int)done;
}

int xn_profile_copy_stage(const char *state_dir, const char *src, char staged[PATH_MAX],
			  struct xn_buf *err)
{
	struct stat st;
	char *data = NULL;
	int fd, r;

	if ((size_t)snprintf(staged, PATH_MAX, "%s/profile.conf.new", state_dir) >= PATH_MAX)
		return -ENAMETOOLONG;
	fd = open(src, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		xn_buf_printf(err, "%s: cannot open: %s", src, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		xn_buf_printf(err, "%s: %s", src, strerror(-r));
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > PROFILE_MAX_BYTES) {
		r = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		if (r == -EINVAL && S_ISDIR(st.st_mode))
			r = -EISDIR;
		xn_buf_printf(err, "%s: cannot open: %s", src,
			      r == -EFBIG ? "too large for a profile" : xn_file_strerror(r));
		close(fd);
		return r;
	}
	r = read_all(fd, (size_t)st.st_size, &data);
	close(fd);
	if (r >= 0)
		r = xn_write_file_atomic(staged, data, (size_t)r);
	if (r < 0)
		xn_buf_printf(err, "%s: cannot copy it to %s: %s", src, staged, strerror(-r));
	free(data);
	return r < 0 ? r : 0;
}

int xn_profile_copy_commit(const char *state_dir, const char *staged, const char *src)
{
	char path[PATH_MAX], line[PATH_MAX + 1];
	int r;

	/* The source first: a crash between the two leaves the old copy
	 * named after the new source, never a copy of unknown origin. */
	if ((size_t)snprintf(path, sizeof(path), "%s/profile.source", state_dir) >= sizeof(path))
		return -ENAMETOOLONG;
	snprintf(line, sizeof(line), "%s\n", src);
	r = xn_write_file_atomic(path, line, strlen(line));
	if (r < 0)
		return r;
	r = xn_profile_copy_path(state_dir, path);
	if (r < 0)
		return r;
	if (rename(staged, path) < 0)
		return -errno;
	return 0;
}

void xn_profile_copy_source(const char *state_dir, char out[PATH_MAX])
{
	char path[PATH_MAX];

	out[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/profile.source", state_dir) >= sizeof(path) ||
	    xn_read_file(path, out, PATH_MAX) < 0)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
}
