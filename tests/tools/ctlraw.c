/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Raw requests to xennetd's control socket, for the fault tests.
 *   ctlraw call SOCKET WORDS...
 *       One request as the CLI would send it, without the CLI's own checks
 *       (a path the CLI would open itself). Prints the reply's text; exits
 *       0 if the status is 0, 1 otherwise, 2 if there was no reply.
 *   ctlraw stall SOCKET N SECONDS
 *       Opens N connections, sends each half a request (its length and a
 *       few of its bytes, never the rest), prints "stalled N" once they
 *       are all sent, and holds them for SECONDS.
 *   ctlraw noread SOCKET SECONDS WORDS...
 *       Sends one request whole, prints "sent", and never reads the reply
 *       (holds the connection for SECONDS). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "xennet/control.h"

static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(2);
	}
	return fd;
}

static int stall(const char *path, int n, int seconds)
{
	static const char part[] = "stat"; /* of "status\0" */
	uint32_t len = 7;

	for (int i = 0; i < n; i++) {
		int fd = dial(path);
		if (send(fd, &len, sizeof(len), MSG_NOSIGNAL) != sizeof(len) ||
		    send(fd, part, 4, MSG_NOSIGNAL) != 4) {
			perror("send");
			return 2;
		}
	}
	printf("stalled %d\n", n);
	fflush(stdout);
	sleep((unsigned)seconds);
	return 0;
}

static int noread(const char *path, int seconds, char **words, int n)
{
	char req[XN_CTL_MAX_REQUEST];
	uint32_t len = 0;
	int fd = dial(path);

	for (int i = 0; i < n; i++) {
		size_t l = strlen(words[i]) + 1;
		if (len + l > sizeof(req))
			return 2;
		memcpy(req + len, words[i], l);
		len += (uint32_t)l;
	}
	if (send(fd, &len, sizeof(len), MSG_NOSIGNAL) != sizeof(len) ||
	    send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
		perror("send");
		return 2;
	}
	printf("sent\n");
	fflush(stdout);
	sleep((unsigned)seconds);
	return 0;
}

int main(int argc, char **argv)
{
	char *body = NULL;
	int status = -1, r;

	if (argc == 5 && strcmp(argv[1], "stall") == 0)
		return stall(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc >= 5 && strcmp(argv[1], "noread") == 0)
		return noread(argv[2], atoi(argv[3]), argv + 4, argc - 4);
	if (argc < 4 || strcmp(argv[1], "call") != 0) {
		fprintf(stderr, "usage: ctlraw call SOCKET WORDS... | stall SOCKET N SECONDS | noread SOCKET SECONDS WORDS...\n");
		return 2;
	}
	r = xn_ctl_call(argv[2], (const char *const *)argv + 3, (size_t)(argc - 3), 30000,
			&status, &body);
	if (r < 0) {
		fprintf(stderr, "ctlraw: %s\n", strerror(-r));
		return 2;
	}
	fputs(body, stdout);
	free(body);
	return status == 0 ? 0 : 1;
}
