/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What xenstored alone costs a hotplug script: write hotplug-status of the
 * N vifs one after another, as every script must once per vif, and print
 * the total in microseconds. xenstored serves one request at a time, so no
 * implementation brings N vifs online faster. The vifs are those of the
 * domains from FIRST on, PER_DOMAIN each (1 by default).
 *   xs-floor FIRST N [PER_DOMAIN] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xenstore.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	struct xs_handle *xs;
	char path[96];
	double t0;
	int first, n, per = 1;

	if ((argc != 3 && argc != 4) || (first = atoi(argv[1])) <= 0 ||
	    (n = atoi(argv[2])) <= 0 || (argc == 4 && (per = atoi(argv[3])) <= 0)) {
		fprintf(stderr, "usage: xs-floor FIRST N [PER_DOMAIN]\n");
		return 2;
	}
	xs = xs_open(0);
	if (!xs) {
		perror("xs-floor: xs_open");
		return 1;
	}
	t0 = now_us();
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "backend/vif/%d/%d/hotplug-status", first + i / per,
			 i % per);
		if (!xs_write(xs, XBT_NULL, path, "connected", strlen("connected"))) {
			perror("xs-floor: xs_write");
			return 1;
		}
	}
	printf("%.0f\n", now_us() - t0);
	xs_close(xs);
	return 0;
}
