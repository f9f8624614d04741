/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* notify-listen PATH [FILE...]: stands in for systemd's notification
 * socket. Binds a datagram socket at PATH and prints each message it gets
 * on one line (its fields joined by " "), with the sender's pid, the time
 * in ms since start and which of the FILEs existed when it came, until it
 * gets STOPPING=1 or is killed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, one = 1;
	long start = now_ms();

	if (argc < 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify-listen PATH [FILE...]\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("notify-listen");
		return 1;
	}
	for (;;) {
		char buf[4096], cbuf[CMSG_SPACE(sizeof(struct ucred))];
		struct iovec iov = { buf, sizeof(buf) - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *c;
		int pid = 0;
		ssize_t n = recvmsg(fd, &mh, 0);

		if (n < 0) {
			perror("notify-listen: recvmsg");
			return 1;
		}
		buf[n] = '\0';
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred uc;
				memcpy(&uc, CMSG_DATA(c), sizeof(uc));
				pid = uc.pid;
			}
		for (char *p = buf; *p; p++)
			if (*p == '\n')
				*p = ' ';
		printf("%ld pid=%d %s", now_ms() - start, pid, buf);
		for (int i = 2; i < argc; i++)
			if (access(argv[i], F_OK) == 0)
				printf(" exists:%s", argv[i]);
		printf("\n");
		fflush(stdout);
		if (strstr(buf, "STOPPING=1"))
			return 0;
	}
}
