/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/sysctl.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "xennet/util.h"

static int full_path(const char *path, char out[PATH_MAX])
{
	if (strstr(path, "..") || path[0] == '/')
		return -EINVAL;
	if ((size_t)snprintf(out, PATH_MAX, "/proc/sys/%s", path) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int xn_sysctl_read(const char *path, char value[XN_SYSCTL_VALUE_MAX])
{
	char p[PATH_MAX];
	int r;

	r = full_path(path, p);
	if (r < 0)
		return r;
	r = xn_read_file(p, value, XN_SYSCTL_VALUE_MAX);
	if (r < 0)
		return r;
	value[strcspn(value, "\n")] = '\0';
	return 0;
}

int xn_sysctl_write(const char *path, const char *value)
{
	char p[PATH_MAX];
	_cleanup_close_ int fd = -1;
	size_t len = strlen(value);
	int r;

	r = full_path(path, p);
	if (r < 0)
		return r;
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, len) != (ssize_t)len)
		return errno ? -errno : -EIO;
	return 0;
}

int xn_sysctl_if_path(const char *family, const char *ifname, const char *key,
		      char *out, size_t size)
{
	if (!xn_ifname_valid(ifname))
		return -EINVAL;
	if ((size_t)snprintf(out, size, "net/%s/conf/%s/%s", family, ifname,
			     key) >= size)
		return -ENAMETOOLONG;
	return 0;
}
