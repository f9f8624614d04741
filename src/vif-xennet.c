/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vif-xennet: the hotplug script libxl runs for a vif (script=vif-xennet,
 * or installed in place of vif-bridge). It takes exactly what libxl
 * passes -- `online|offline type_if=vif`, `add|remove type_if=tap`, extra
 * k=v words (never evaluated), XENBUS_PATH, vif, INTERFACE -- asks xennetd
 * to handle the device and waits for the answer. Exit 0 on success; 1 with
 * hotplug-error and hotplug-status=error written, as Xen's scripts do. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "xennet/control.h"
#include "xennet/vif.h"
#include "xennet/xs.h"
#include "xn-config.h"

#define ANSWER_TIMEOUT_MS 35000 /* libxl kills the script at 40 s */

static void report(const char *xenbus_path, bool write_status, const char *msg)
{
	struct xn_xs *xs = NULL;
	char line[512];

	snprintf(line, sizeof(line), "%s", msg);
	line[strcspn(line, "\n")] = '\0';
	fprintf(stderr, "vif-xennet: %s\n", line);
	if (!write_status || !xenbus_path)
		return;
	if (xn_xs_open_requests(&xs) < 0 || xn_xs_write_error(xs, xenbus_path, line) < 0)
		fprintf(stderr, "vif-xennet: could not write hotplug-error to %s\n", xenbus_path);
	xn_xs_close(xs);
}

int main(int argc, char **argv)
{
	const char *command = NULL, *type_if = "vif";
	const char *xenbus_path = getenv("XENBUS_PATH");
	char tap_path[64], req_domid[16], req_devid[16], req_sent[24];
	struct timespec started;
	unsigned domid, devid;
	const char *key;
	bool tap, up;
	char *body = NULL;
	int status = 0, r;

	/* The daemon counts the request's 30 s from here, and does not carry
	 * it out after this script has given up (its 35 s). */
	clock_gettime(CLOCK_MONOTONIC, &started);

	if (argc == 2 && (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))) {
		printf("vif-xennet %s\n", XN_VERSION);
		return 0;
	}
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: vif-xennet online|offline type_if=vif | add|remove type_if=tap\n"
		       "Run by libxl for a vif (XENBUS_PATH set); asks xennetd to configure it.\n");
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		if (!eq) {
			if (!command)
				command = argv[i];
			continue;
		}
		if (strncmp(argv[i], "type_if=", 8) == 0)
			type_if = eq + 1;
	}
	if (!command || (strcmp(command, "online") && strcmp(command, "offline") &&
			 strcmp(command, "add") && strcmp(command, "remove"))) {
		fprintf(stderr, "vif-xennet: invalid command \"%s\" (online, offline, add or remove)\n",
			command ? command : "");
		return 1;
	}
	tap = strcmp(command, "add") == 0 || strcmp(command, "remove") == 0;
	up = strcmp(command, "online") == 0 || strcmp(command, "add") == 0;
	/* As vif-common.sh: each pair of commands is for one kind only. */
	if (strcmp(type_if, tap ? "tap" : "vif") != 0)
		return 0;

	if (tap) {
		/* The tap's domid/devid come from its name, vifD.N-emu. */
		const char *iface = getenv("INTERFACE");
		bool emu = false;
		if (!iface || xn_vif_parse_kernel_name(iface, &domid, &devid, &emu) < 0 || !emu) {
			fprintf(stderr, "vif-xennet: INTERFACE=\"%s\" is not a vifD.N-emu tap\n",
				iface ? iface : "");
			return 1;
		}
		snprintf(tap_path, sizeof(tap_path), "/local/domain/0/backend/vif/%u/%u", domid, devid);
		xenbus_path = tap_path;
	} else if (!xenbus_path || xn_vif_parse_path(xenbus_path, &domid, &devid, &key) < 0 || *key) {
		fprintf(stderr, "vif-xennet: XENBUS_PATH=\"%s\" is not backend/vif/DOMID/DEVID\n",
			xenbus_path ? xenbus_path : "");
		return 1;
	}

	snprintf(req_domid, sizeof(req_domid), "%u", domid);
	snprintf(req_devid, sizeof(req_devid), "%u", devid);
	snprintf(req_sent, sizeof(req_sent), "%lld",
		 (long long)started.tv_sec * 1000 + started.tv_nsec / 1000000);
	r = xn_ctl_call(xn_ctl_default_path(),
			(const char *const[]){ "hotplug", command, req_domid, req_devid, req_sent }, 5,
			ANSWER_TIMEOUT_MS, &status, &body);
	if (r < 0) {
		char msg[256];
		if (r == -ENOENT || r == -ECONNREFUSED)
			snprintf(msg, sizeof(msg), "xennetd is not running (no daemon at %s)",
				 xn_ctl_default_path());
		else
			snprintf(msg, sizeof(msg), "no answer from xennetd at %s: %s",
				 xn_ctl_default_path(), strerror(-r));
		report(xenbus_path, up && !tap, msg);
		return 1;
	}
	if (status != 0) {
		report(xenbus_path, up && !tap, body);
		free(body);
		return 1;
	}
	free(body);
	return 0;
}
