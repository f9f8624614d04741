/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "xennet/foreign.h"
#include "xennet/sysctl.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

/* A base chain on a forward hook that is not xennet's. */
struct fwd_chain {
	uint16_t family;
	char table[64], name[64];
	bool policy_drop, final_drop;
	unsigned rules;
};

struct scan {
	struct fwd_chain chains[32];
	size_t n_chains;
	/* Tables ("family table") with a rule accepting a guest interface. */
	char accepting[8][80];
	size_t n_accepting;
	const char *ifnames[4]; /* the guests' interfaces (or prefixes) */
	size_t n_ifnames;
};

static const char *family_name(uint16_t f)
{
	switch (f) {
	case NFPROTO_IPV4: return "ip";
	case NFPROTO_IPV6: return "ip6";
	case NFPROTO_INET: return "inet";
	case NFPROTO_BRIDGE: return "bridge";
	default: return "?";
	}
}

static int on_chain(const struct nlmsghdr *nlh, void *data)
{
	struct scan *s = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct fwd_chain *fc;

	if (!c || nftnl_chain_nlmsg_parse(nlh, c) < 0)
		goto out;
	if (!nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) ||
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) != NF_INET_FORWARD ||
	    strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), "xennet") == 0 ||
	    s->n_chains == sizeof(s->chains) / sizeof(s->chains[0]))
		goto out;
	fc = &s->chains[s->n_chains++];
	*fc = (struct fwd_chain){ .family = (uint16_t)nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY) };
	snprintf(fc->table, sizeof(fc->table), "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE));
	snprintf(fc->name, sizeof(fc->name), "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	fc->policy_drop = nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY) &&
			  nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_DROP;
out:
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

/* What one rule does, as far as the scan needs to know. */
struct rule_facts {
	bool only_verdict; /* nothing but counter/log/limit before it */
	bool drops, accepts;
	bool names_guest_if; /* compares iifname/oifname with a guest's */
};

static bool guest_ifname(const struct scan *s, const char *data, uint32_t len)
{
	char name[IFNAMSIZ + 1] = "";
	/* nft pads an exact name with NULs; a wildcard ("vif*") is the
	 * prefix alone. */
	bool exact = memchr(data, '\0', len) != NULL;

	memcpy(name, data, len < IFNAMSIZ ? len : IFNAMSIZ);
	for (size_t i = 0; i < s->n_ifnames; i++)
		if (*name && (exact ? strcmp(s->ifnames[i], name) == 0
				    : strncmp(s->ifnames[i], name, strlen(name)) == 0))
			return true; /* the name, or a prefix of it (vif+) */
	return false;
}

static int on_expr(struct nftnl_expr *e, void *data)
{
	struct rule_facts *f = ((void **)data)[0];
	const struct scan *s = ((void **)data)[1];
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
	uint32_t len = 0;

	if (strcmp(name, "reject") == 0) {
		f->drops = true;
	} else if (strcmp(name, "immediate") == 0 &&
		   nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT)) {
		int v = (int)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT);
		f->drops = f->drops || v == NF_DROP;
		f->accepts = f->accepts || v == NF_ACCEPT;
	} else if (strcmp(name, "cmp") == 0) {
		const char *d = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
		if (d && guest_ifname(s, d, len))
			f->names_guest_if = true;
		f->only_verdict = false;
	} else if (strcmp(name, "counter") && strcmp(name, "log") && strcmp(name, "limit")) {
		f->only_verdict = false;
	}
	return 0;
}

static int on_rule(const struct nlmsghdr *nlh, void *data)
{
	struct scan *s = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct rule_facts f = { .only_verdict = true };
	void *ctx[2] = { &f, s };
	uint16_t family;
	const char *table, *chain;

	if (!r || nftnl_rule_nlmsg_parse(nlh, r) < 0)
		goto out;
	family = (uint16_t)nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY);
	table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
	chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
	nftnl_expr_foreach(r, on_expr, ctx);
	if (f.names_guest_if && f.accepts && s->n_accepting < 8)
		snprintf(s->accepting[s->n_accepting++], sizeof(s->accepting[0]), "%s %s",
			 family_name(family), table);
	/* Rules come in order: the last one of a chain decides final_drop. */
	for (size_t i = 0; i < s->n_chains; i++) {
		struct fwd_chain *fc = &s->chains[i];
		if (fc->family == family && !strcmp(fc->table, table) && !strcmp(fc->name, chain)) {
			fc->rules++;
			fc->final_drop = f.only_verdict && f.drops;
		}
	}
out:
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

static int dump(struct mnl_socket *nl, uint16_t type, mnl_cb_t cb, struct scan *s)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t seq = (uint32_t)time(NULL), portid = mnl_socket_get_portid(nl);
	struct nlmsghdr *nlh;
	int n, r;

	nlh = type == NFT_MSG_GETCHAIN
		? nftnl_chain_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NFPROTO_UNSPEC, NLM_F_DUMP, seq)
		: nftnl_rule_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_UNSPEC, NLM_F_DUMP, seq);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	while ((n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		r = mnl_cb_run(buf, (size_t)n, seq, portid, cb, s);
		if (r <= 0)
			return r < 0 ? -errno : 0;
	}
	return n < 0 ? -errno : 0;
}

static bool table_accepts(const struct scan *s, const struct fwd_chain *fc)
{
	char key[80];

	snprintf(key, sizeof(key), "%s %s", family_name(fc->family), fc->table);
	for (size_t i = 0; i < s->n_accepting; i++)
		if (strcmp(s->accepting[i], key) == 0)
			return true;
	return false;
}

static int read_ruleset(struct scan *s)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	int r;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
	} else {
		r = dump(nl, NFT_MSG_GETCHAIN, on_chain, s);
		if (r >= 0 && s->n_chains)
			r = dump(nl, NFT_MSG_GETRULE, on_rule, s);
	}
	mnl_socket_close(nl);
	return r;
}

static void add(struct xn_foreign *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct xn_foreign *f, const char *fmt, ...)
{
	va_list ap;

	if (f->n == XN_FOREIGN_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(f->what[f->n++], sizeof(f->what[0]), fmt, ap);
	va_end(ap);
}

static bool br_netfilter_on(void)
{
	static const char *const keys[] = { "net/bridge/bridge-nf-call-iptables",
					    "net/bridge/bridge-nf-call-ip6tables" };
	char v[XN_SYSCTL_VALUE_MAX];

	for (size_t i = 0; i < 2; i++)
		if (xn_sysctl_read(keys[i], v) >= 0 && atoi(v) == 1)
			return true;
	return false;
}

/* The usual cure, in the README's words. */
static const char *remedy(const struct fwd_chain *fc, bool bridged)
{
	if (bridged && fc->family != NFPROTO_BRIDGE)
		return " (sysctl net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0, or accept the bridge: see the README)";
	if (!strcmp(fc->table, "filter") && !strcmp(fc->name, "FORWARD"))
		return " (Docker? iptables -I DOCKER-USER -i BRIDGE -j ACCEPT and -o BRIDGE: see the README)";
	if (!strcmp(fc->table, "firewalld"))
		return " (firewalld: firewall-cmd --permanent --zone=trusted --add-interface=BRIDGE: see the README)";
	return " (accept the guests' interfaces there: see the README)";
}

int xn_foreign_check(const struct xn_profile *p, struct xn_foreign *ret)
{
	struct scan *s;
	bool brnf = br_netfilter_on(), bridged;
	int r;

	*ret = (struct xn_foreign){ 0 };
	if (!p)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	bridged = p->mode == XN_MODE_BRIDGED;
	for (size_t i = 0; i < p->n_bridges && s->n_ifnames < 3; i++)
		s->ifnames[s->n_ifnames++] = p->bridges[i].name;
	if (p->mode == XN_MODE_ROUTED)
		s->ifnames[s->n_ifnames++] = "vif1.0"; /* a rule on vif+ */
	r = read_ruleset(s);
	for (size_t i = 0; r >= 0 && i < s->n_chains; i++) {
		const struct fwd_chain *fc = &s->chains[i];
		/* Bridged frames meet ip/ip6/inet chains only through br_netfilter. */
		bool reached = fc->family == NFPROTO_BRIDGE ? bridged : !bridged || brnf;
		if (!(fc->policy_drop || fc->final_drop) || !reached || table_accepts(s, fc))
			continue;
		ret->degraded = true;
		add(ret, "the chain %s %s %s (not xennet's) %s forwarded packets%s: the guests' traffic is dropped there%s",
		    family_name(fc->family), fc->table, fc->name,
		    fc->policy_drop ? "has policy drop for" : "ends with a drop or reject of",
		    bridged && fc->family != NFPROTO_BRIDGE
			? ", which bridged frames reach through br_netfilter (bridge-nf-call-iptables/ip6tables = 1)" : "",
		    remedy(fc, bridged));
	}
	free(s);
	return r < 0 ? r : 0;
}

bool xn_foreign_same(const struct xn_foreign *a, const struct xn_foreign *b)
{
	if (a->n != b->n || a->degraded != b->degraded)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->what[i], b->what[i]) != 0)
			return false;
	return true;
}
