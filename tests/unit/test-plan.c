/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The planner, without a kernel: a made-up snapshot of a host and a ledger
 * go in, the ordered steps come out. Also the ledger's file round trip. */
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "xennet/plan.h"

#include "check.h"

static struct xn_addr A(const char *s)
{
	struct xn_addr a;

	if (xn_addr_parse(s, strchr(s, '/') != NULL, &a) < 0) {
		printf("bad address in test: %s\n", s);
		exit(2);
	}
	return a;
}

/* Dom0 as it boots: eth0 with 192.168.1.2/24, default route via .1. */
static struct xn_link links[8];
static struct xn_ifaddr addrs[8];
static struct xn_route routes[8];
static struct xn_snapshot snap;

static void host_fresh(void)
{
	memset(&snap, 0, sizeof(snap));
	links[0] = (struct xn_link){ .ifindex = 1, .name = "lo", .up = true, .mtu = 65536 };
	links[1] = (struct xn_link){ .ifindex = 2, .name = "eth0", .kind = "veth", .up = true, .mtu = 1500 };
	addrs[0] = (struct xn_ifaddr){ .ifindex = 2, .addr = A("192.168.1.2/24"), .scope = RT_SCOPE_UNIVERSE };
	addrs[1] = (struct xn_ifaddr){ .ifindex = 2, .addr = A("fe80::1/64"), .scope = RT_SCOPE_LINK };
	routes[0] = (struct xn_route){ .ifindex = 2, .family = AF_INET, .dst = { .family = AF_INET },
				       .has_gateway = true, .gateway = A("192.168.1.1"),
				       .table = RT_TABLE_MAIN, .protocol = RTPROT_BOOT, .type = RTN_UNICAST };
	routes[1] = (struct xn_route){ .ifindex = 2, .family = AF_INET, .dst = A("192.168.1.0/24"),
				       .table = RT_TABLE_MAIN, .protocol = RTPROT_KERNEL, .type = RTN_UNICAST,
				       .scope = RT_SCOPE_LINK };
	snap.links = links;
	snap.n_links = 2;
	snap.addrs = addrs;
	snap.n_addrs = 2;
	snap.routes = routes;
	snap.n_routes = 2;
	snap.sysctls[0] = (struct xn_snapshot_sysctl){ "net/ipv4/ip_forward", "0", true };
	snap.sysctls[1] = (struct xn_snapshot_sysctl){ "net/ipv4/conf/eth0/proxy_arp", "0", true };
	snap.n_sysctls = 2;
}

/* The same host after the NAT profile was applied. */
static void host_nat_applied(void)
{
	host_fresh();
	links[2] = (struct xn_link){ .ifindex = 3, .name = "xenbr0", .kind = "bridge", .up = true, .mtu = 1500 };
	snap.n_links = 3;
	addrs[2] = (struct xn_ifaddr){ .ifindex = 3, .addr = A("10.0.0.1/24"), .scope = RT_SCOPE_UNIVERSE };
	snap.n_addrs = 3;
	strcpy(snap.sysctls[0].value, "1");
}

static struct xn_profile *load(const char *dir, const char *name)
{
	char path[4096];
	struct xn_profile *p = NULL;
	struct xn_diag d = { 0 };

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (xn_profile_load(path, &p, &d) < 0) {
		for (size_t i = 0; i < d.n; i++)
			printf("%s\n", d.lines[i]);
		printf("cannot load %s\n", path);
		exit(2);
	}
	xn_diag_free(&d);
	return p;
}

/* The plan as text, one step per line, to compare with what we expect. */
static char *plan_text(const struct xn_plan *plan)
{
	struct xn_buf b = { 0 };

	for (size_t i = 0; i < plan->n_steps; i++) {
		xn_step_describe(&plan->steps[i], &b);
		xn_buf_printf(&b, "\n");
	}
	char *text = strdup(xn_buf_str(&b));
	xn_buf_free(&b);
	return text;
}

static void expect_plan(const char *what, const struct xn_profile *p,
			const struct xn_ledger *l, enum xn_nft_table_state nft,
			const char *want)
{
	struct xn_plan plan;
	struct xn_buf err = { 0 };
	int r = xn_plan_build(p, &snap, l, nft, false, &plan, &err);
	char *got;

	check(r == 0, "%s: plan failed: %s", what, xn_buf_str(&err));
	if (r < 0)
		return;
	got = plan_text(&plan);
	check(strcmp(got, want) == 0, "%s: plan\n--- wanted\n%s--- got\n%s", what, want, got);
	free(got);
	xn_plan_clear(&plan);
	xn_buf_free(&err);
}

static void test_examples(const char *dir)
{
	struct xn_ledger empty = { 0 };
	struct xn_profile *bridged = load(dir, "bridged.conf");
	struct xn_profile *routed = load(dir, "routed.conf");
	struct xn_profile *nat = load(dir, "nat.conf");

	host_fresh();
	expect_plan("bridged on a fresh host", bridged, &empty, XN_NFT_ABSENT,
		    "create bridge xenbr0 (STP off, forward delay 0 s)\n"
		    "add eth0 to bridge xenbr0\n"
		    "bring xenbr0 up\n"
		    "copy address 192.168.1.2/24 from eth0 to xenbr0\n"
		    "move default route via 192.168.1.1 from eth0 to xenbr0\n"
		    "remove address 192.168.1.2/24 from eth0\n"
		    "replace the nftables tables named xennet (one atomic batch)\n");
	expect_plan("routed on a fresh host", routed, &empty, XN_NFT_ABSENT,
		    "set sysctl net/ipv4/ip_forward = 1 (now 0)\n"
		    "set sysctl net/ipv4/conf/eth0/proxy_arp = 1 (now 0)\n"
		    "set sysctl net/ipv6/conf/all/forwarding = 1 (now ?)\n"
		    "set sysctl net/ipv6/conf/eth0/proxy_ndp = 1 (now ?)\n"
		    "replace the nftables tables named xennet (one atomic batch)\n");
	expect_plan("nat on a fresh host", nat, &empty, XN_NFT_ABSENT,
		    "create bridge xenbr0 (STP off, forward delay 0 s)\n"
		    "bring xenbr0 up\n"
		    "add address 10.0.0.1/24 to xenbr0\n"
		    "set sysctl net/ipv4/ip_forward = 1 (now 0)\n"
		    "replace the nftables tables named xennet (one atomic batch)\n");

	/* Applied already: nothing to do. A stale table is replaced. */
	struct xn_ledger l = { 0 };
	struct xn_addr gw = A("10.0.0.1/24");
	xn_ledger_add_bridge(&l, "xenbr0");
	xn_ledger_add_addr(&l, "xenbr0", &gw);
	xn_ledger_add_sysctl(&l, "net/ipv4/ip_forward", "0");
	host_nat_applied();
	expect_plan("nat applied twice", nat, &l, XN_NFT_CURRENT, "");
	expect_plan("nat with a tampered table", nat, &l, XN_NFT_STALE,
		    "replace the nftables tables named xennet (one atomic batch)\n");

	/* nat -> bridged: the gateway address and the sysctl are undone, the
	 * bridge (wanted by both) stays, the table goes. */
	expect_plan("nat then bridged", bridged, &l, XN_NFT_STALE,
		    "remove address 10.0.0.1/24 from xenbr0\n"
		    "restore sysctl net/ipv4/ip_forward to 0\n"
		    "add eth0 to bridge xenbr0\n"
		    "copy address 192.168.1.2/24 from eth0 to xenbr0\n"
		    "move default route via 192.168.1.1 from eth0 to xenbr0\n"
		    "remove address 192.168.1.2/24 from eth0\n"
		    "replace the nftables tables named xennet (one atomic batch)\n");
	/* Nothing wanted: everything xennet made goes, nothing else. */
	expect_plan("remove all", NULL, &l, XN_NFT_CURRENT,
		    "remove address 10.0.0.1/24 from xenbr0\n"
		    "remove bridge xenbr0\n"
		    "restore sysctl net/ipv4/ip_forward to 0\n"
		    "replace the nftables tables named xennet (one atomic batch)\n");
	/* A bridge xennet did not create is kept, even when unwanted. */
	struct xn_ledger none = { 0 };
	expect_plan("remove all with an empty ledger", NULL, &none, XN_NFT_ABSENT, "");

	/* Moved addresses and routes go back to the uplink. */
	struct xn_ledger moved = { 0 };
	struct xn_addr dom0 = A("192.168.1.2/24");
	xn_ledger_add_bridge(&moved, "xenbr0");
	xn_ledger_add_port(&moved, "xenbr0", "eth0");
	xn_ledger_add_moved_addr(&moved, "eth0", "xenbr0", &dom0);
	xn_ledger_add_moved_route(&moved, "eth0", "xenbr0", &routes[0]);
	host_fresh();
	links[1].master = 3;
	links[2] = (struct xn_link){ .ifindex = 3, .name = "xenbr0", .kind = "bridge", .up = true, .mtu = 1500 };
	snap.n_links = 3;
	addrs[0].ifindex = 3;
	routes[0].ifindex = 3;
	expect_plan("bridged applied twice", bridged, &moved, XN_NFT_CURRENT, "");
	expect_plan("bridged then routed", routed, &moved, XN_NFT_ABSENT,
		    "release eth0 from bridge xenbr0\n"
		    "move address 192.168.1.2/24 back from xenbr0 to eth0\n"
		    "move default route via 192.168.1.1 back from xenbr0 to eth0\n"
		    "remove address 192.168.1.2/24 from xenbr0\n"
		    "remove bridge xenbr0\n"
		    "set sysctl net/ipv4/ip_forward = 1 (now 0)\n"
		    "set sysctl net/ipv4/conf/eth0/proxy_arp = 1 (now 0)\n"
		    "set sysctl net/ipv6/conf/all/forwarding = 1 (now ?)\n"
		    "set sysctl net/ipv6/conf/eth0/proxy_ndp = 1 (now ?)\n"
		    "replace the nftables tables named xennet (one atomic batch)\n");

	xn_ledger_clear(&moved);
	xn_ledger_clear(&l);
	xn_profile_free(bridged);
	xn_profile_free(routed);
	xn_profile_free(nat);
}

static void test_host_errors(const char *dir)
{
	struct xn_ledger empty = { 0 };
	struct xn_profile *bridged = load(dir, "bridged.conf");
	struct xn_profile *nat = load(dir, "nat.conf");
	struct xn_plan plan;
	struct xn_buf err = { 0 };
	int r;

	host_fresh();
	strcpy(links[1].name, "eth1"); /* no eth0 */
	r = xn_plan_build(bridged, &snap, &empty, XN_NFT_ABSENT, false, &plan, &err);
	check(r == -ENODEV, "missing uplink: -ENODEV, got %d", r);
	check(strstr(xn_buf_str(&err), "uplink eth0 does not exist") != NULL,
	      "missing uplink message: %s", xn_buf_str(&err));
	xn_buf_free(&err);
	r = xn_plan_build(nat, &snap, &empty, XN_NFT_ABSENT, false, &plan, &err);
	check(r == -ENODEV && strstr(xn_buf_str(&err), "nat: uplink eth0 does not exist"),
	      "nat missing uplink: %d %s", r, xn_buf_str(&err));
	xn_buf_free(&err);

	host_fresh();
	links[2] = (struct xn_link){ .ifindex = 3, .name = "xenbr0", .kind = "veth" };
	snap.n_links = 3;
	r = xn_plan_build(nat, &snap, &empty, XN_NFT_ABSENT, false, &plan, &err);
	check(r == -EEXIST && strstr(xn_buf_str(&err), "is not a bridge"),
	      "bridge name taken by a veth: %d %s", r, xn_buf_str(&err));
	xn_buf_free(&err);
	xn_profile_free(bridged);
	xn_profile_free(nat);
}

static void test_ledger_file(void)
{
	char dir[] = "/tmp/xennet-ledger.XXXXXX", path[64], bad[64];
	struct xn_ledger l = { 0 }, back = { 0 };
	struct xn_addr a = A("192.168.1.2/24"), v6 = A("fd00::2/64");
	unsigned line = 0;
	FILE *f;
	int r;

	if (!mkdtemp(dir)) {
		check(false, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/ledger", dir);
	snprintf(bad, sizeof(bad), "%s/bad", dir);
	host_fresh();
	strcpy(l.profile, "/etc/xennet/xennet.conf");
	xn_ledger_add_bridge(&l, "xenbr0");
	xn_ledger_add_bridge(&l, "xenbr0"); /* kept unique */
	xn_ledger_add_port(&l, "xenbr0", "eth0");
	xn_ledger_add_addr(&l, "xenbr0", &v6);
	xn_ledger_add_moved_addr(&l, "eth0", "xenbr0", &a);
	xn_ledger_add_moved_route(&l, "eth0", "xenbr0", &routes[0]);
	xn_ledger_add_sysctl(&l, "net/ipv4/ip_forward", "0");
	xn_ledger_add_sysctl(&l, "net/ipv4/ip_forward", "1"); /* first value kept */
	check(xn_ledger_save(path, &l) == 0, "ledger save");
	r = xn_ledger_load(path, &back, &line);
	check(r == 0, "ledger load: %d line %u", r, line);
	check(strcmp(back.profile, l.profile) == 0, "ledger profile");
	check(back.n_bridges == 1 && back.n_ports == 1 && back.n_addrs == 1 &&
		      back.n_moved_addrs == 1 && back.n_moved_routes == 1 && back.n_sysctls == 1,
	      "ledger counts %zu %zu %zu %zu %zu %zu", back.n_bridges, back.n_ports,
	      back.n_addrs, back.n_moved_addrs, back.n_moved_routes, back.n_sysctls);
	check(back.n_moved_routes == 1 && back.moved_routes[0].route.has_gateway &&
		      xn_addr_equal(&back.moved_routes[0].route.gateway, &routes[0].gateway) &&
		      back.moved_routes[0].route.protocol == RTPROT_BOOT,
	      "ledger route round trip");
	check(back.n_sysctls == 1 && strcmp(back.sysctls[0].original, "0") == 0,
	      "ledger keeps the first original value");
	check(back.n_addrs == 1 && xn_addr_equal(&back.addrs[0].addr, &v6), "ledger IPv6 address");
	xn_ledger_clear(&back);

	/* `xennet apply` takes any absolute path: one with a space is read
	 * back whole (a daemon restarted with it would not start otherwise);
	 * one with a newline, which a line cannot hold, is refused by the
	 * save, which then leaves the file as it was. */
	strcpy(l.profile, "/etc/xennet/my host.conf");
	check(xn_ledger_save(path, &l) == 0, "ledger save, a space in the profile path");
	r = xn_ledger_load(path, &back, &line);
	check(r == 0 && strcmp(back.profile, l.profile) == 0,
	      "a profile path with a space read back: %d line %u \"%s\"", r, line, back.profile);
	xn_ledger_clear(&back);
	strcpy(l.profile, "/tmp/x\nbridge eth0");
	check(xn_ledger_save(path, &l) == -EINVAL, "a profile path with a newline is not saved");
	r = xn_ledger_load(path, &back, &line);
	check(r == 0 && strcmp(back.profile, "/etc/xennet/my host.conf") == 0 && back.n_bridges == 1,
	      "the ledger as it was: %d \"%s\" %zu bridges", r, back.profile, back.n_bridges);
	xn_ledger_clear(&back);

	f = fopen(bad, "w");
	fputs("# comment\nbridge xenbr0\nbridge ../etc\n", f);
	fclose(f);
	r = xn_ledger_load(bad, &back, &line);
	check(r == -EBADMSG && line == 3, "malformed ledger: %d line %u", r, line);
	f = fopen(bad, "w");
	fputs("sysctl /etc/shadow 0\n", f);
	fclose(f);
	r = xn_ledger_load(bad, &back, &line);
	check(r == -EBADMSG && line == 1, "ledger sysctl outside net/: %d line %u", r, line);
	/* A gateway or a source with a prefix is not what the ledger writes
	 * (it would not read back the same). */
	f = fopen(bad, "w");
	fputs("route eth0 xenbr0 0.0.0.0/0 192.168.1.1/0 - 0 254 3 0\n", f);
	fclose(f);
	r = xn_ledger_load(bad, &back, &line);
	check(r == -EBADMSG && line == 1, "ledger route gateway with a prefix: %d line %u", r, line);
	f = fopen(bad, "w");
	fputs("route eth0 xenbr0 192.168.1.0/24 - 192.168.1.2/24 0 254 3 0\n", f);
	fclose(f);
	r = xn_ledger_load(bad, &back, &line);
	check(r == -EBADMSG && line == 1, "ledger route source with a prefix: %d line %u", r, line);
	check(xn_ledger_load("/nonexistent/ledger", &back, &line) == 0 && back.n_bridges == 0,
	      "missing ledger is empty");
	xn_ledger_clear(&l);
	unlink(path);
	unlink(bad);
	rmdir(dir);
}

/* A profile from text, through a file (the loader reads files). */
static struct xn_profile *load_text(const char *text)
{
	char path[] = "/tmp/xennet-test-plan-XXXXXX";
	struct xn_profile *p = NULL;
	struct xn_diag d = { 0 };
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		printf("cannot write %s\n", path);
		exit(2);
	}
	close(fd);
	if (xn_profile_load(path, &p, &d) < 0) {
		for (size_t i = 0; i < d.n; i++)
			printf("%s\n", d.lines[i]);
		exit(2);
	}
	xn_diag_free(&d);
	unlink(path);
	return p;
}

/* What would break the host: refused, or warned about. */
static void test_host_safety(void)
{
	struct xn_ledger empty = { 0 };
	struct xn_plan plan;
	struct xn_buf err = { 0 };
	struct xn_profile *lan = load_text("[xennet]\nmode = nat\n[bridge xenbr1]\n"
					   "address = 10.0.0.1/24\naddress = 192.168.1.1/24\n"
					   "[nat]\nuplink = eth0\nbridge = xenbr1\n");
	struct xn_profile *take = load_text("[xennet]\nmode = bridged\n[bridge xenbr0]\n"
					    "uplink = eth0\ntake_addresses = yes\n");
	int r;

	host_fresh();
	r = xn_plan_build(lan, &snap, &empty, XN_NFT_ABSENT, false, &plan, &err);
	check(r == -EADDRINUSE, "the LAN's subnet on the NAT bridge is refused (%d)", r);
	check(strstr(xn_buf_str(&err), ":5: address 192.168.1.1/24 of bridge xenbr1 overlaps 192.168.1.2/24 on eth0") != NULL,
	      "and the error names line 5: %s", xn_buf_str(&err));
	xn_buf_free(&err);

	/* A DHCP lease (no IFA_F_PERMANENT) moved by take_addresses. */
	addrs[0].flags = 0;
	addrs[0].valid_lft = 3600;
	r = xn_plan_build(take, &snap, &empty, XN_NFT_ABSENT, false, &plan, &err);
	check(r == 0 && plan.warnings.len &&
		      strstr(plan.warnings.data, "address 192.168.1.2/24 on eth0 is dynamic (a DHCP lease, valid for 3600 s more)"),
	      "a lease moved to the bridge is warned about: %s", plan.warnings.data ? plan.warnings.data : "");
	xn_plan_clear(&plan);
	addrs[0].flags = IFA_F_PERMANENT;
	r = xn_plan_build(take, &snap, &empty, XN_NFT_ABSENT, false, &plan, &err);
	check(r == 0 && plan.warnings.len == 0, "a permanent address is not");
	xn_plan_clear(&plan);

	/* A bridge someone else made with STP on keeps it; one of ours not. */
	links[2] = (struct xn_link){ .ifindex = 3, .name = "xenbr0", .kind = "bridge", .up = true,
				     .mtu = 1500, .stp_state = 1, .forward_delay = 1500 };
	links[1].master = 3;
	snap.n_links = 3;
	snap.n_addrs = 1;
	snap.n_routes = 0;
	r = xn_plan_build(take, &snap, &empty, XN_NFT_CURRENT, false, &plan, &err);
	{
		char *got = r == 0 ? plan_text(&plan) : NULL;
		check(got && strcmp(got, "copy address 192.168.1.2/24 from eth0 to xenbr0\n"
					 "remove address 192.168.1.2/24 from eth0\n") == 0,
		      "an adopted bridge keeps STP and its forward delay:\n%s", got ? got : "");
		free(got);
	}
	xn_plan_clear(&plan);
	struct xn_ledger ours = { 0 };
	xn_ledger_add_bridge(&ours, "xenbr0");
	r = xn_plan_build(take, &snap, &ours, XN_NFT_CURRENT, false, &plan, &err);
	check(r == 0 && plan.n_steps >= 1 && plan.steps[0].op == XN_STEP_BRIDGE_TUNE &&
		      plan.steps[0].stp == 0 && plan.steps[0].forward_delay == 0 && !plan.steps[0].record,
	      "a bridge xennet made is set back to STP off, 0");
	xn_plan_clear(&plan);
	xn_ledger_clear(&ours);
	links[1].master = 0;
	xn_buf_free(&err);
	xn_profile_free(lan);
	xn_profile_free(take);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-plan PROFILES_DIR\n");
		return 2;
	}
	test_examples(argv[1]);
	test_host_errors(argv[1]);
	test_host_safety();
	test_ledger_file();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
