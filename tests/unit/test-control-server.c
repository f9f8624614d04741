/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control server when the kernel refuses to watch a connection
 * (epoll_ctl fails: max_user_watches, no memory): a request it could not
 * wait for is handed over as failed (r < 0), never as a request without
 * words, which the daemon would read past. epoll_ctl is wrapped
 * (-Wl,--wrap=epoll_ctl) to fail on demand. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "xennet/control.h"

int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);

static bool fail_adds;

int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	if (fail_adds && op == EPOLL_CTL_ADD) {
		errno = ENOSPC;
		return -1;
	}
	return __real_epoll_ctl(epfd, op, fd, ev);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(void)
{
	char dir[] = "/tmp/xennet-ctl-XXXXXX", path[64];
	struct xn_ctl_server *s = NULL;
	struct xn_ctl_request *ready[4];
	uint32_t half = 16; /* a length, and none of the words yet */
	size_t n;
	int err, c;

	if (geteuid() != 0) {
		printf("SKIP: the control server serves root only\n");
		return 77;
	}
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	check(xn_ctl_server_open(path, &s) == 0, "server opens");
	if (!s)
		return 1;

	c = connect_to(path);
	check(c >= 0, "client connects");
	check(write(c, &half, sizeof(half)) == sizeof(half), "half a request sent");
	fail_adds = true;
	n = xn_ctl_server_take(s, ready, 4, &err);
	fail_adds = false;
	check(n == 1, "the connection that cannot be watched is handed over (%zu)", n);
	if (n == 1) {
		check(ready[0]->r < 0, "as failed (r = %d), not as a request of %zu words",
		      ready[0]->r, ready[0]->n);
		xn_ctl_server_reply(s, ready[0], EIO, "bad request\n");
	}
	close(c);
	xn_ctl_server_close(s);
	unlink(path);
	rmdir(dir);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
