/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xennet: the command line. check works alone; the rest asks xennetd over
 * its control socket. Exit status: 0 ok, 1 failed or invalid, 2 usage. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "xennet/control.h"
#include "xennet/engine.h"
#include "xennet/mapping.h"
#include "xennet/profile.h"
#include "xennet/status.h"
#include "xn-config.h"

struct options {
	const char *socket_path;
	const char *state_dir;
	const char *name; /* --name for map|forward add */
	bool json;
	bool force; /* map|forward add: take an address another host answers for */
};

static int load_or_report(const char *path, struct xn_profile **p)
{
	struct xn_diag diag = { 0 };
	int r = xn_profile_load(path, p, &diag);

	for (size_t i = 0; i < diag.n; i++)
		fprintf(stderr, "%s\n", diag.lines[i]);
	xn_diag_free(&diag);
	return r;
}

static int call_daemon(const struct options *o, const char *const *words,
		       size_t n)
{
	char *body = NULL;
	int status = 0, r;

	r = xn_ctl_call(o->socket_path, words, n, 30000, &status, &body);
	if (r < 0) {
		if (r == -ENOENT || r == -ECONNREFUSED)
			fprintf(stderr, "xennet: xennetd is not running (no daemon at %s)\n",
				o->socket_path);
		else
			fprintf(stderr, "xennet: talking to xennetd at %s: %s\n",
				o->socket_path, strerror(-r));
		return 1;
	}
	/* A degraded host's status is still the answer asked for. */
	fputs(body, status && status != XN_STATUS_DEGRADED ? stderr : stdout);
	free(body);
	return status ? 1 : 0;
}

static int cmd_check(const struct options *o, int argc, char **argv)
{
	struct xn_profile *p = NULL;
	struct xn_engine *e = NULL;
	struct xn_plan plan;
	struct xn_buf err = { 0 };
	int r;

	if (argc != 1) {
		fprintf(stderr, "Usage: xennet check FILE\n");
		return 2;
	}
	if (load_or_report(argv[0], &p) < 0) {
		fprintf(stderr, "%s: invalid profile\n", argv[0]);
		return 1;
	}
	printf("%s: valid profile (%s mode)\n", argv[0], xn_mode_name(p->mode));
	r = xn_engine_open(o->state_dir, &e, &err);
	if (r >= 0)
		r = xn_engine_plan(e, p, NULL, &plan, &err);
	if (r < 0) {
		fprintf(stderr, "xennet: this host cannot take the profile: %s\n",
			xn_buf_str(&err));
		r = 1;
	} else {
		printf("plan for this host (dry run, nothing changed):\n");
		xn_plan_print(&plan, stdout);
		xn_plan_clear(&plan);
		r = 0;
	}
	xn_engine_close(e);
	xn_profile_free(p);
	xn_buf_free(&err);
	return r;
}

static int cmd_apply(const struct options *o, int argc, char **argv)
{
	struct xn_profile *p = NULL;
	char abs[PATH_MAX];

	if (argc != 1) {
		fprintf(stderr, "Usage: xennet apply FILE\n");
		return 2;
	}
	if (load_or_report(argv[0], &p) < 0) {
		fprintf(stderr, "%s: invalid profile, nothing sent to xennetd\n", argv[0]);
		return 1;
	}
	xn_profile_free(p);
	if (!realpath(argv[0], abs)) {
		fprintf(stderr, "xennet: %s: %m\n", argv[0]);
		return 1;
	}
	return call_daemon(o, (const char *const[]){ "apply", abs }, 2);
}

static int cmd_status(const struct options *o, int argc, char **argv)
{
	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "Usage: xennet status [--json]\n");
		return 2;
	}
	if (o->json)
		return call_daemon(o, (const char *const[]){ "status", "json" }, 2);
	return call_daemon(o, (const char *const[]){ "status" }, 1);
}

static int cmd_inventory(const struct options *o, int argc, char **argv)
{
	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "Usage: xennet inventory [--json]\n");
		return 2;
	}
	if (o->json)
		return call_daemon(o, (const char *const[]){ "inventory", "json" }, 2);
	return call_daemon(o, (const char *const[]){ "inventory" }, 1);
}

/* map|forward add|del|list: checked here for a quick message, then sent;
 * the daemon checks again (it is the one that knows the conflicts). */
static int cmd_mapping(const struct options *o, int argc, char **argv, bool fwd)
{
	const char *kind = fwd ? "forward" : "map";
	const char *words[7] = { kind };
	struct xn_addr a;
	uint16_t port;
	uint8_t proto;
	size_t n = 1;

	if (argc < 1)
		goto usage;
	words[n++] = argv[0];
	if (strcmp(argv[0], "list") == 0 && argc == 1) {
		if (o->json)
			words[n++] = "json";
		return call_daemon(o, words, n);
	}
	if (strcmp(argv[0], "add") == 0 && argc == 3) {
		bool ok = fwd ? xn_parse_public_port(argv[1], &a, &port, &proto) >= 0 &&
				       xn_parse_host_port(argv[2], &a, &port) >= 0
			      : xn_addr_parse_ipv4_host(argv[1], &a) >= 0 &&
				       xn_addr_parse_ipv4_host(argv[2], &a) >= 0;
		if (!ok) {
			fprintf(stderr, "xennet %s add: bad address%s: \"%s\" \"%s\"\n", kind,
				fwd ? " (PUBLIC:PORT/tcp|udp GUEST:PORT)" : " (PUBLIC GUEST, IPv4)",
				argv[1], argv[2]);
			return 1;
		}
		if (o->name && !xn_mapping_name_valid(o->name)) {
			fprintf(stderr, "xennet %s add: bad --name \"%s\" (1 to 63 letters, digits, \"_\", \".\" or \"-\")\n",
				kind, o->name);
			return 1;
		}
		if (o->force)
			words[n++] = "--force";
		words[n++] = argv[1];
		words[n++] = argv[2];
		if (o->name)
			words[n++] = o->name;
		return call_daemon(o, words, n);
	}
	if (strcmp(argv[0], "del") == 0 && argc == 2) {
		bool ok = fwd ? xn_parse_public_port(argv[1], &a, &port, &proto) >= 0
			      : xn_addr_parse_ipv4_host(argv[1], &a) >= 0;
		if (!ok) {
			fprintf(stderr, "xennet %s del: bad public \"%s\"\n", kind, argv[1]);
			return 1;
		}
		words[n++] = argv[1];
		return call_daemon(o, words, n);
	}
usage:
	if (fwd)
		fprintf(stderr, "Usage: xennet forward add PUBLIC:PORT/tcp|udp GUEST:PORT [--name VM] [--force]\n"
				"       xennet forward del PUBLIC:PORT/tcp|udp\n"
				"       xennet forward list [--json]\n");
	else
		fprintf(stderr, "Usage: xennet map add PUBLIC GUEST [--name VM] [--force]\n"
				"       xennet map del PUBLIC\n"
				"       xennet map list [--json]\n");
	return 2;
}

static int cmd_map(const struct options *o, int argc, char **argv)
{
	return cmd_mapping(o, argc, argv, false);
}

static int cmd_forward(const struct options *o, int argc, char **argv)
{
	return cmd_mapping(o, argc, argv, true);
}

static int cmd_reload(const struct options *o, int argc, char **argv)
{
	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "Usage: xennet reload\n");
		return 2;
	}
	return call_daemon(o, (const char *const[]){ "reload" }, 1);
}

static int cmd_down(const struct options *o, int argc, char **argv)
{
	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "Usage: xennet down\n");
		return 2;
	}
	return call_daemon(o, (const char *const[]){ "down" }, 1);
}

static const struct command {
	const char *name;
	int (*fn)(const struct options *o, int argc, char **argv);
	const char *help;
} commands[] = {
	{ "check", cmd_check, "check FILE      validate a profile and print the plan (dry run)" },
	{ "apply", cmd_apply, "apply FILE      validate, then have xennetd apply it" },
	{ "status", cmd_status, "status [--json] what xennetd manages, and its state" },
	{ "inventory", cmd_inventory, "inventory [--json]\n                  per domain: its vifs, public addresses and forwards" },
	{ "reload", cmd_reload, "reload          re-read the profile in force (as SIGHUP)" },
	{ "down", cmd_down, "down            undo everything xennet made, then xennetd exits" },
	{ "map", cmd_map, "map add PUBLIC GUEST [--name VM] [--force] | map del PUBLIC | map list [--json]\n"
			  "                  1:1 public IPv4 address of a guest (nat mode)" },
	{ "forward", cmd_forward, "forward add PUBLIC:PORT/tcp|udp GUEST:PORT [--name VM] [--force] | forward del PUBLIC:PORT/PROTO\n"
				  "                  | forward list [--json]: one port of a public address to a guest" },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void command_help(const struct command *c)
{
	printf("Usage: xennet [--socket PATH] [--state-dir DIR] %s\n", c->help);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: xennet [--socket PATH] [--state-dir DIR] COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n", commands[i].help);
	fprintf(f, "  help [COMMAND]  this help, or a command's\n");
	fprintf(f, "\nThe socket defaults to $XENNET_SOCKET or %s;\n"
		   "the state directory (read by check) to %s.\n",
		XN_DEFAULT_SOCKET, XN_DEFAULT_STATE_DIR);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "name", required_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct options o = { .socket_path = xn_ctl_default_path(),
			     .state_dir = XN_DEFAULT_STATE_DIR };
	int c;

	while ((c = getopt_long(argc, argv, "+s:d:jhV", opts, NULL)) != -1) {
		switch (c) {
		case 's': o.socket_path = optarg; break;
		case 'd': o.state_dir = optarg; break;
		case 'j': o.json = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("xennet %s\n", XN_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind++];
	if (strcmp(name, "help") == 0) {
		const struct command *cmd = optind < argc ? find_command(argv[optind]) : NULL;
		if (optind < argc && (!cmd || optind + 1 < argc)) {
			fprintf(stderr, "xennet help: unknown command \"%s\"\n", argv[optind]);
			return 2;
		}
		if (cmd)
			command_help(cmd);
		else
			usage(stdout);
		return 0;
	}
	/* Options may also follow the command: `xennet status --json`. */
	int first = optind;
	optind = 0; /* 0: glibc re-initialises its argument permutation */
	char **rest = argv + first - 1;
	int nrest = argc - first + 1;
	while ((c = getopt_long(nrest, rest, "s:d:jn:h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			if (!find_command(name))
				break;
			command_help(find_command(name));
			return 0;
		case 's': o.socket_path = optarg; break;
		case 'd': o.state_dir = optarg; break;
		case 'j': o.json = true; break;
		case 'n': o.name = optarg; break;
		case 'F': o.force = true; break;
		default: usage(stderr); return 2;
		}
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0) {
			if (o.json && commands[i].fn != cmd_status && commands[i].fn != cmd_map &&
			    commands[i].fn != cmd_forward && commands[i].fn != cmd_inventory) {
				fprintf(stderr, "xennet %s: --json is only for status, inventory and lists\n", name);
				return 2;
			}
			if ((o.name || o.force) && commands[i].fn != cmd_map && commands[i].fn != cmd_forward) {
				fprintf(stderr, "xennet %s: --name and --force are only for map and forward add\n", name);
				return 2;
			}
			return commands[i].fn(&o, nrest - optind, rest + optind);
		}
	fprintf(stderr, "xennet: unknown command \"%s\"\n", name);
	usage(stderr);
	return 2;
}
