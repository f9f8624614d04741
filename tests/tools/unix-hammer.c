/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* unix-hammer PATH N: connects N times, one after the other, to the stream
 * socket at PATH, reads until the server closes, and prints how many
 * connections were made (for the test of refused clients). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long n, made = 0;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: unix-hammer PATH N\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	n = atol(argv[2]);
	for (long i = 0; i < n; i++) {
		char buf[256];
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("unix-hammer");
			return 1;
		}
		made++;
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
	printf("%ld\n", made);
	return 0;
}
