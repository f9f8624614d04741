/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What xenstored alone costs a hotplug script: write hotplug-status of the
 * vifs FIRST..FIRST+N-1 (devid 0) one after another, as every script must
 * once per vif, and print the total in microseconds. xenstored serves one
 * request at a time, so no implementation brings N vifs online faster.
 *   xs-floor FIRST N */
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
	int first, n;

	if (argc != 3 || (first = atoi(argv[1])) <= 0 || (n = atoi(argv[2])) <= 0) {
		fprintf(stderr, "usage: xs-floor FIRST N\n");
		return 2;
	}
	xs = xs_open(0);
	if (!xs) {
		perror("xs-floor: xs_open");
		return 1;
	}
	t0 = now_us();
	for (int d = first; d < first + n; d++) {
		snprintf(path, sizeof(path), "backend/vif/%d/0/hotplug-status", d);
		if (!xs_write(xs, XBT_NULL, path, "connected", strlen("connected"))) {
			perror("xs-floor: xs_write");
			return 1;
		}
	}
	printf("%.0f\n", now_us() - t0);
	xs_close(xs);
	return 0;
}
