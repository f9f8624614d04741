/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/conntrack.h"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xennet/util.h"

struct victims {
	const struct xn_addr *addrs;
	size_t n_addrs;
	/* Copies of the CTA_TUPLE_ORIG attribute of each entry to delete. */
	struct nlattr **tuples;
	size_t n;
	int err;
};

static int ip_dst(const struct nlattr *tuple, uint32_t *ret)
{
	const struct nlattr *a, *b;

	mnl_attr_for_each_nested(a, tuple) {
		if (mnl_attr_get_type(a) != CTA_TUPLE_IP)
			continue;
		mnl_attr_for_each_nested(b, a) {
			if (mnl_attr_get_type(b) == CTA_IP_V4_DST &&
			    mnl_attr_validate(b, MNL_TYPE_U32) >= 0) {
				*ret = mnl_attr_get_u32(b);
				return 0;
			}
		}
	}
	return -ENOENT;
}

static bool wanted(const struct victims *v, uint32_t ip)
{
	for (size_t i = 0; i < v->n_addrs; i++)
		if (v->addrs[i].family == AF_INET && v->addrs[i].v4.s_addr == ip)
			return true;
	return false;
}

static int on_entry(const struct nlmsghdr *h, void *data)
{
	struct victims *v = data;
	const struct nlattr *a, *orig = NULL, *reply = NULL;
	uint32_t od = 0, rd = 0;
	struct nlattr *copy, **t;

	mnl_attr_for_each(a, h, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) == CTA_TUPLE_ORIG)
			orig = a;
		else if (mnl_attr_get_type(a) == CTA_TUPLE_REPLY)
			reply = a;
	}
	if (!orig || !reply)
		return MNL_CB_OK;
	/* To the public address (DNAT, or nothing yet), or translated to it
	 * (the reply goes to it: SNAT of a mapped guest). */
	if (!(ip_dst(orig, &od) >= 0 && wanted(v, od)) &&
	    !(ip_dst(reply, &rd) >= 0 && wanted(v, rd)))
		return MNL_CB_OK;
	copy = malloc(orig->nla_len);
	t = reallocarray(v->tuples, v->n + 1, sizeof(*t));
	if (!copy || !t) {
		free(copy);
		if (t)
			v->tuples = t;
		v->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	memcpy(copy, orig, orig->nla_len);
	v->tuples = t;
	v->tuples[v->n++] = copy;
	return MNL_CB_OK;
}

static struct nlmsghdr *ct_msg(char *buf, uint16_t type, uint16_t flags, uint32_t seq)
{
	struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;

	h->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(h, sizeof(*g));
	g->nfgen_family = AF_INET;
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	return h;
}

static int talk(struct mnl_socket *nl, struct nlmsghdr *h, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int r;

	if (mnl_socket_sendto(nl, h, h->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)n, h->nlmsg_seq, portid, cb, data);
		if (r < 0)
			return -errno;
		if (r == MNL_CB_STOP)
			return 0;
	}
}

struct xn_conntrack {
	/* Kept open: closing a nfnetlink socket waits for nftables'
	 * deferred destruction work (an RCU grace period). */
	struct mnl_socket *sock;
	uint32_t seq;
};

int xn_conntrack_new(struct xn_conntrack **ret)
{
	*ret = calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

static void ct_close(struct xn_conntrack *ct)
{
	if (ct->sock)
		mnl_socket_close(ct->sock);
	ct->sock = NULL;
}

void xn_conntrack_free(struct xn_conntrack *ct)
{
	if (!ct)
		return;
	ct_close(ct);
	free(ct);
}

static int ct_socket(struct xn_conntrack *ct)
{
	if (ct->sock)
		return 0;
	ct->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!ct->sock)
		return -errno;
	if (mnl_socket_bind(ct->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;
		ct_close(ct);
		return r;
	}
	ct->seq = (uint32_t)time(NULL);
	return 0;
}

int xn_conntrack_purge(struct xn_conntrack *ct, const struct xn_addr *addrs, size_t n)
{
	struct victims v = { .addrs = addrs, .n_addrs = n };
	struct mnl_socket *nl;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t seq;
	int r, deleted = 0;

	if (n == 0)
		return 0;
	r = ct_socket(ct);
	if (r < 0)
		return r;
	nl = ct->sock;
	seq = ct->seq;
	ct->seq += (uint32_t)n + 4096;
	memset(buf, 0, sizeof(buf));
	r = talk(nl, ct_msg(buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, seq++), on_entry, &v);
	if (r >= 0 && v.err < 0)
		r = v.err;
	for (size_t i = 0; r >= 0 && i < v.n; i++) {
		struct nlmsghdr *h;

		memset(buf, 0, sizeof(buf));
		h = ct_msg(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, seq++);
		memcpy(mnl_nlmsg_get_payload_tail(h), v.tuples[i], v.tuples[i]->nla_len);
		h->nlmsg_len += MNL_ALIGN(v.tuples[i]->nla_len);
		r = talk(nl, h, NULL, NULL);
		if (r == -ENOENT) /* gone meanwhile */
			r = 0;
		else if (r >= 0)
			deleted++;
	}
	if (r < 0 && r != -ENOENT)
		ct_close(ct); /* replies may be left on it */
	for (size_t i = 0; i < v.n; i++)
		free(v.tuples[i]);
	free(v.tuples);
	return r < 0 ? r : deleted;
}
