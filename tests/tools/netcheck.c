/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A tiny traffic checker for the namespace tests.
 *   netcheck serve tcp|udp ADDR PORT [TIMEOUT_S]
 *       Serves one exchange: prints "peer ADDR" (the source the server
 *       saw), answers "echo:" + the message, exits 0; 1 on timeout.
 *   netcheck send tcp|udp ADDR PORT MESSAGE [TIMEOUT_S]
 *       Retries until the server answers (it may start later), prints the
 *       answer, exits 0 if it is "echo:" + MESSAGE, 1 otherwise.
 *       NETCHECK_SRC=ADDR in the environment binds the source address
 *       first (to send from an address that is not the default one).
 *   netcheck count udp ADDR PORT SECONDS
 *       Counts the datagrams that arrive for SECONDS and prints the number. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse(const char *a, const char *port, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	int p = atoi(port);

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)p);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, a, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*in6);
		return 0;
	}
	fprintf(stderr, "netcheck: bad address %s\n", a);
	return -1;
}

static void print_peer(const struct sockaddr_storage *ss)
{
	char buf[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, sizeof(buf));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, sizeof(buf));
	printf("peer %s\n", buf);
	fflush(stdout);
}

static bool wait_in(int fd, double deadline)
{
	struct pollfd p = { fd, POLLIN, 0 };
	double left = deadline - now();

	if (left <= 0)
		return false;
	return poll(&p, 1, (int)(left * 1000) + 1) == 1;
}

static int serve(bool tcp, struct sockaddr_storage *ss, socklen_t len, double timeout)
{
	double deadline = now() + timeout;
	int fd = socket(ss->ss_family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0), one = 1;
	char buf[512], out[600];
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)ss, len) < 0 || (tcp && listen(fd, 4) < 0)) {
		perror("netcheck: bind");
		return 1;
	}
	if (!wait_in(fd, deadline)) {
		fprintf(stderr, "netcheck: nobody came\n");
		return 1;
	}
	if (tcp) {
		int c = accept(fd, (struct sockaddr *)&peer, &plen);
		if (c < 0 || !wait_in(c, deadline))
			return 1;
		n = recv(c, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			return 1;
		buf[n] = '\0';
		print_peer(&peer);
		snprintf(out, sizeof(out), "echo:%s", buf);
		send(c, out, strlen(out), 0);
		shutdown(c, SHUT_WR);
		wait_in(c, now() + 1); /* let the client read before closing */
		close(c);
	} else {
		n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&peer, &plen);
		if (n <= 0)
			return 1;
		buf[n] = '\0';
		print_peer(&peer);
		snprintf(out, sizeof(out), "echo:%s", buf);
		/* Answer a few times: the client may have retried. */
		for (int i = 0; i < 3; i++)
			sendto(fd, out, strlen(out), 0, (struct sockaddr *)&peer, plen);
	}
	close(fd);
	return 0;
}

static int sendit(bool tcp, struct sockaddr_storage *ss, socklen_t len,
		  const char *msg, double timeout)
{
	double deadline = now() + timeout;
	char buf[600], want[600];

	snprintf(want, sizeof(want), "echo:%s", msg);
	while (now() < deadline) {
		int fd = socket(ss->ss_family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
		ssize_t n = -1;
		const char *src = getenv("NETCHECK_SRC");

		if (src && *src) {
			struct sockaddr_storage sa;
			socklen_t salen;
			if (parse(src, "0", &sa, &salen) < 0 ||
			    bind(fd, (struct sockaddr *)&sa, salen) < 0) {
				perror("netcheck: bind source");
				close(fd);
				return 2;
			}
		}

		if (tcp) {
			if (connect(fd, (struct sockaddr *)ss, len) == 0 &&
			    send(fd, msg, strlen(msg), 0) >= 0) {
				size_t got = 0;
				while (got < sizeof(buf) - 1 && wait_in(fd, deadline)) {
					ssize_t k = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
					if (k <= 0)
						break;
					got += (size_t)k;
				}
				n = (ssize_t)got;
			}
		} else {
			sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)ss, len);
			if (wait_in(fd, now() + 0.3))
				n = recv(fd, buf, sizeof(buf) - 1, 0);
		}
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			printf("%s\n", buf);
			return strcmp(buf, want) == 0 ? 0 : 1;
		}
		usleep(100000);
	}
	fprintf(stderr, "netcheck: no answer\n");
	return 1;
}

static int count(struct sockaddr_storage *ss, socklen_t len, double seconds)
{
	double deadline = now() + seconds;
	int fd = socket(ss->ss_family, SOCK_DGRAM, 0), one = 1;
	long n = 0;
	char buf[512];

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)ss, len) < 0) {
		perror("netcheck: bind");
		return 1;
	}
	while (wait_in(fd, deadline))
		if (recv(fd, buf, sizeof(buf), 0) >= 0)
			n++;
	printf("%ld\n", n);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	bool tcp;

	if (argc < 5 || (strcmp(argv[2], "tcp") && strcmp(argv[2], "udp"))) {
		fprintf(stderr, "usage: netcheck serve|send tcp|udp ADDR PORT [MESSAGE] [TIMEOUT]\n");
		return 2;
	}
	tcp = strcmp(argv[2], "tcp") == 0;
	if (parse(argv[3], argv[4], &ss, &len) < 0)
		return 2;
	if (strcmp(argv[1], "serve") == 0)
		return serve(tcp, &ss, len, argc > 5 ? atof(argv[5]) : 10);
	if (strcmp(argv[1], "count") == 0 && !tcp && argc == 6)
		return count(&ss, len, atof(argv[5]));
	if (strcmp(argv[1], "send") == 0 && argc >= 6)
		return sendit(tcp, &ss, len, argv[5], argc > 6 ? atof(argv[6]) : 10);
	return 2;
}
