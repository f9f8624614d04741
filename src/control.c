/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/control.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "xn-config.h"

const char *xn_ctl_default_path(void)
{
	const char *e = getenv("XENNET_SOCKET");

	return e && *e ? e : XN_DEFAULT_SOCKET;
}

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Full read/write with an overall deadline (ms since boot, -1 none). */
static int io_full(int fd, void *buf, size_t len, bool writing,
		   int64_t deadline)
{
	char *p = buf;

	while (len) {
		ssize_t n;

		if (deadline >= 0) {
			struct pollfd pfd = { fd, writing ? POLLOUT : POLLIN, 0 };
			int64_t left = deadline - now_ms();
			int r;

			if (left <= 0)
				return -ETIMEDOUT;
			r = poll(&pfd, 1, (int)left);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				return -ETIMEDOUT;
		}
		n = writing ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int xn_ctl_call(const char *path, const char *const *words, size_t n,
		int timeout_ms, int *ret_status, char **ret_body)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sa;
	char req[XN_CTL_MAX_REQUEST];
	uint32_t len = 0, hdr[2];
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	char *body;
	int r;

	if (n == 0 || n > XN_CTL_MAX_WORDS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(words[i]) + 1;
		if (len + l > sizeof(req))
			return -E2BIG;
		memcpy(req + len, words[i], l);
		len += (uint32_t)l;
	}
	r = fill_addr(path, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	r = io_full(fd, &len, sizeof(len), true, deadline);
	if (r >= 0)
		r = io_full(fd, req, len, true, deadline);
	if (r >= 0)
		r = io_full(fd, hdr, sizeof(hdr), false, deadline);
	if (r < 0)
		return r;
	if (hdr[1] > XN_CTL_MAX_REPLY)
		return -EBADMSG;
	body = malloc(hdr[1] + 1);
	if (!body)
		return -ENOMEM;
	r = io_full(fd, body, hdr[1], false, deadline);
	if (r < 0) {
		free(body);
		return r;
	}
	body[hdr[1]] = '\0';
	*ret_status = (int)hdr[0];
	*ret_body = body;
	return 0;
}

int xn_ctl_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd, r;

	r = fill_addr(path, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a daemon that died is replaced; a live one
	 * is refused so that two daemons never fight. */
	{
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0) {
			int c = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
			close(probe);
			if (c == 0) {
				close(fd);
				return -EADDRINUSE;
			}
		}
	}
	unlink(path);
	{
		mode_t old = umask(0177); /* the socket is born 0600 */
		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
	}
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int xn_ctl_accept(int listen_fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct timeval tv = { .tv_sec = 2 };
	int fd;

	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    cred.uid != 0) {
		close(fd);
		return -EPERM;
	}
	/* A stuck client must not stall the daemon. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

int xn_ctl_read_request(int fd, char buf[XN_CTL_MAX_REQUEST + 1],
			char *words[XN_CTL_MAX_WORDS], size_t *n)
{
	uint32_t len;
	int64_t deadline = now_ms() + 2000;
	int r;

	r = io_full(fd, &len, sizeof(len), false, deadline);
	if (r < 0)
		return r;
	if (len == 0 || len > XN_CTL_MAX_REQUEST)
		return -EMSGSIZE;
	r = io_full(fd, buf, len, false, deadline);
	if (r < 0)
		return r;
	if (buf[len - 1] != '\0')
		return -EBADMSG;
	buf[len] = '\0';
	*n = 0;
	for (uint32_t off = 0; off < len;) {
		if (*n == XN_CTL_MAX_WORDS)
			return -E2BIG;
		words[(*n)++] = buf + off;
		off += (uint32_t)strlen(buf + off) + 1;
	}
	return 0;
}

int xn_ctl_write_reply(int fd, int status, const char *body)
{
	uint32_t hdr[2] = { (uint32_t)(status < 0 ? -status : status),
			    (uint32_t)strlen(body) };
	int64_t deadline = now_ms() + 2000;
	int r;

	r = io_full(fd, hdr, sizeof(hdr), true, deadline);
	if (r >= 0)
		r = io_full(fd, (void *)body, hdr[1], true, deadline);
	return r;
}

bool xn_ctl_peer_gone(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}
