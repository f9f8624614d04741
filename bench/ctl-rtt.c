/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Round trips to xennetd's control socket, without the cost of starting a
 * process: ctl-rtt SOCKET COUNT WORDS... [-- WORDS...]
 * Sends COUNT requests, cycling through the requests given (separated by
 * "--"), and prints "p50_us p99_us max_us failures". CTL_RTT_GAP_US in the
 * environment waits that long between requests, so that work the daemon
 * does after replying (conntrack purges) is not charged to the next one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xennet/control.h"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *const *req[8];
	size_t len[8], n_req = 0;
	int count, failures = 0;
	double *us;

	if (argc < 4)
		return 2;
	count = atoi(argv[2]);
	for (int i = 3; i < argc && n_req < 8;) {
		int j = i;
		while (j < argc && strcmp(argv[j], "--") != 0)
			j++;
		req[n_req] = (const char *const *)&argv[i];
		len[n_req++] = (size_t)(j - i);
		i = j + 1;
	}
	us = calloc((size_t)count, sizeof(*us));
	const char *gap = getenv("CTL_RTT_GAP_US");
	for (int i = 0; i < count; i++) {
		struct timespec t0, t1;
		char *body = NULL;
		int status = 0, r;
		size_t k = (size_t)i % n_req;

		if (gap && i)
			usleep((useconds_t)atoi(gap));
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = xn_ctl_call(argv[1], req[k], len[k], 5000, &status, &body);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (r < 0 || status != 0) {
			if (failures++ == 0)
				fprintf(stderr, "ctl-rtt: %s: %s", req[k][0], body ? body : strerror(-r));
		}
		free(body);
		us[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
	}
	qsort(us, (size_t)count, sizeof(*us), cmp);
	printf("%.0f %.0f %.0f %d\n", us[count / 2], us[(count * 99) / 100], us[count - 1], failures);
	free(us);
	return failures ? 1 : 0;
}
