/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a vif hotplug script for N vifs the way libxl does
 * (libxl__hotplug_nic, libxl__exec): fork, the script's variables in the
 * environment, argv "SCRIPT ACTION type_if=vif", stdin and stdout
 * /dev/null, stderr to ERRLOG. The vifs are those of the domains from
 * FIRST on, PER_DOMAIN each (devids 0..PER_DOMAIN-1; 1 by default).
 *   hotplug-driver seq|all SCRIPT FIRST N ACTION ERRLOG [PER_DOMAIN]
 * seq: one after another, prints each one's time in microseconds (from
 * fork to exit); all: all started at once, as libxl does for many domains,
 * prints the time until the last one has exited. "FAILED" is printed for
 * a script that did not exit 0. A C program, not a shell loop: a shell
 * forks itself for each child, about 1 ms each, and 500 of them would be
 * the harness's time, not the scripts'. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static pid_t start(const char *script, int domid, int devid, const char *action, int null_fd,
		   int err_fd)
{
	char path[64], vif[32];
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	snprintf(path, sizeof(path), "backend/vif/%d/%d", domid, devid);
	snprintf(vif, sizeof(vif), "vif%d.%d", domid, devid);
	if (setenv("script", script, 1) < 0 || setenv("XENBUS_TYPE", "vif", 1) < 0 ||
	    setenv("XENBUS_PATH", path, 1) < 0 || setenv("XENBUS_BASE_PATH", "backend", 1) < 0 ||
	    setenv("netdev", "", 1) < 0 || setenv("vif", vif, 1) < 0)
		_exit(127);
	dup2(null_fd, 0);
	dup2(null_fd, 1);
	dup2(err_fd, 2);
	execl(script, script, action, "type_if=vif", (char *)NULL);
	_exit(127);
}

static bool ok(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
	int first, n, per = 1, null_fd, err_fd, status;
	bool all;
	double t0;

	if ((argc != 7 && argc != 8) ||
	    (strcmp(argv[1], "seq") != 0 && strcmp(argv[1], "all") != 0) ||
	    (first = atoi(argv[3])) <= 0 || (n = atoi(argv[4])) <= 0 ||
	    (argc == 8 && (per = atoi(argv[7])) <= 0)) {
		fprintf(stderr,
			"usage: hotplug-driver seq|all SCRIPT FIRST N ACTION ERRLOG [PER_DOMAIN]\n");
		return 2;
	}
	all = strcmp(argv[1], "all") == 0;
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	err_fd = open(argv[6], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (null_fd < 0 || err_fd < 0) {
		perror("hotplug-driver: open");
		return 1;
	}
	/* The children get them as 0, 1 and 2 (dup2 clears FD_CLOEXEC). */
	if (!all) {
		for (int i = 0; i < n; i++) {
			int d = first + i / per, v = i % per;
			pid_t pid;
			t0 = now_us();
			pid = start(argv[2], d, v, argv[5], null_fd, err_fd);
			if (pid < 0 || waitpid(pid, &status, 0) < 0 || !ok(status))
				printf("FAILED %d/%d\n", d, v);
			printf("%.0f\n", now_us() - t0);
		}
		return 0;
	}
	t0 = now_us();
	for (int i = 0; i < n; i++)
		if (start(argv[2], first + i / per, i % per, argv[5], null_fd, err_fd) < 0)
			printf("FAILED %d/%d\n", first + i / per, i % per);
	while (wait(&status) > 0)
		if (!ok(status))
			printf("FAILED\n");
	printf("%.0f\n", now_us() - t0);
	return 0;
}
