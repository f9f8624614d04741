/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Talking to nftables: the context (its socket, sequence numbers and
 * monitor), a batch sent and its replies read, one request and its dump.
 * The lowest of the nft files: it calls none of the others. */
#include "nft-internal.h"

int xn_nft_new(struct xn_nft **ret)
{
	struct xn_nft *nft = calloc(1, sizeof(*nft));

	if (!nft)
		return -ENOMEM;
	nft->install_us = -1;
	*ret = nft;
	return 0;
}

void xn_nft_close(struct xn_nft *nft)
{
	if (nft && nft->sock)
		mnl_socket_close(nft->sock);
	if (nft)
		nft->sock = NULL;
}

void xn_nft_free(struct xn_nft *nft)
{
	if (!nft)
		return;
	xn_nft_close(nft);
	if (nft->monitor)
		mnl_socket_close(nft->monitor);
	free(nft);
}

uint32_t nft_next_seq(struct xn_nft *nft)
{
	if (nft->seq == 0)
		nft->seq = (uint32_t)time(NULL);
	return nft->seq++;
}

/* A socket that has been used for a request that failed half way may
 * still hold replies: start over with a new one. */
void nft_socket_reset(struct xn_nft *nft)
{
	xn_nft_close(nft);
}

int nft_socket(struct xn_nft *nft, struct mnl_socket **ret)
{
	struct mnl_socket *nl;
	int bufsize = 16 << 20;

	if (nft->sock) {
		*ret = nft->sock;
		return 0;
	}
	nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = -errno;
		mnl_socket_close(nl);
		return e;
	}
	/* Room for large batches (10,000 mappings are ~1 MiB) and their
	 * replies: as root, past the system's default limits. */
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUFFORCE, &bufsize,
		       sizeof(bufsize)) < 0)
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &bufsize,
		       sizeof(bufsize)) < 0)
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
	nft->sock = nl;
	*ret = nl;
	return 0;
}

struct nftnl_table *nft_table_new(uint16_t family, const char *comment)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		return NULL;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, XN_NFT_TABLE);
	if (comment) {
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(128);
		if (!u || !nftnl_udata_put_strz(u, NFTNL_UDATA_TABLE_COMMENT,
						comment)) {
			nftnl_udata_buf_free(u);
			nftnl_table_free(t);
			return NULL;
		}
		nftnl_table_set_data(t, NFTNL_TABLE_USERDATA,
				     nftnl_udata_buf_data(u),
				     nftnl_udata_buf_len(u));
		nftnl_udata_buf_free(u);
	}
	return t;
}

/* ---- one request ---- */

/* The kernel makes each part of a dump as large as the largest read the
 * socket has seen, up to 32 KiB. Large parts matter: the kernel walks a
 * fixed-size hash set from its first bucket again for each part. */
#define NFT_DUMP_BUF 32768

int nft_request(struct xn_nft *nft, const struct request *q)
{
	char buf[NFT_DUMP_BUF];
	struct mnl_socket *nl = NULL;
	struct nlmsghdr *h;
	uint32_t seq = nft_next_seq(nft), portid;
	ssize_t n;
	int r;

	r = nft_socket(nft, &nl);
	if (r < 0)
		return r;
	portid = mnl_socket_get_portid(nl);
	memset(buf, 0, sizeof(buf)); /* no uninitialised padding on the wire */
	h = nftnl_nlmsg_build_hdr(buf, q->type, q->family, q->flags | NLM_F_ACK, seq);
	if (q->type == NFT_MSG_GETTABLE) {
		struct nftnl_table *t = nft_table_new(q->family, NULL);
		if (!t) {
			r = -ENOMEM;
			goto out;
		}
		nftnl_table_nlmsg_build_payload(h, t);
		nftnl_table_free(t);
	} else if (q->type == NFT_MSG_GETRULE) {
		struct nftnl_rule *rl = nftnl_rule_alloc();
		if (!rl) {
			r = -ENOMEM;
			goto out;
		}
		nftnl_rule_set_u32(rl, NFTNL_RULE_FAMILY, q->family);
		nftnl_rule_set_str(rl, NFTNL_RULE_TABLE, XN_NFT_TABLE);
		nftnl_rule_nlmsg_build_payload(h, rl);
		nftnl_rule_free(rl);
	} else {
		struct nftnl_set *st = nftnl_set_alloc();
		if (!st) {
			r = -ENOMEM;
			goto out;
		}
		nftnl_set_set_u32(st, NFTNL_SET_FAMILY, q->family);
		nftnl_set_set_str(st, NFTNL_SET_TABLE, XN_NFT_TABLE);
		if (q->type == NFT_MSG_GETGEN) {
			/* no attributes */
		} else if (q->type == NFT_MSG_GETSET) {
			nftnl_set_nlmsg_build_payload(h, st);
		} else {
			nftnl_set_set_str(st, NFTNL_SET_NAME, q->set);
			nftnl_set_elems_nlmsg_build_payload(h, st);
		}
		nftnl_set_free(st);
	}
	if (mnl_socket_sendto(nl, h, h->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			r = -errno;
			goto out;
		}
		r = mnl_cb_run(buf, (size_t)n, seq, portid, q->cb, q->data);
		if (r < 0) {
			r = -errno;
			/* An error answer ends the exchange; anything else may
			 * leave replies behind. */
			if (r != -ENOENT && r != -EPERM && r != -EINVAL && r != -EOPNOTSUPP)
				nft_socket_reset(nft);
			return r;
		}
		if (r == MNL_CB_STOP)
			break;
	}
	return 0;
out:
	nft_socket_reset(nft);
	return r;
}

static int on_gen(const struct nlmsghdr *h, void *data)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, h, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(a) == NFTA_GEN_ID && mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
			*(uint32_t *)data = ntohl(mnl_attr_get_u32(a));
	return MNL_CB_OK;
}

/* The ruleset's generation: one more at each commit, whoever made it. */
int xn_nft_generation(struct xn_nft *nft, uint32_t *gen)
{
	struct request q = { NFT_MSG_GETGEN, 0, AF_UNSPEC, NULL, on_gen, gen };

	return nft_request(nft, &q);
}

/* ---- the monitor, quiet during our large batches ---- */

static void monitor_listen(struct xn_nft *nft, bool on)
{
	int group = NFNLGRP_NFTABLES;

	setsockopt(mnl_socket_get_fd(nft->monitor), SOL_NETLINK,
		   on ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP, &group, sizeof(group));
}

/* Stop listening for the length of our own batch, noting the generation
 * first: a commit before the drop is heard, one after it is counted. */
static void monitor_quiet(struct xn_nft *nft, bool quiet, uint32_t *gen)
{
	if (!quiet || !nft->monitor)
		return;
	if (xn_nft_generation(nft, gen) < 0)
		nft->monitor_missed = true;
	monitor_listen(nft, false);
}

/* Listen again, then count the commits made meanwhile: ours, or also
 * someone else's (which is then checked for, as if heard). */
static void monitor_loud(struct xn_nft *nft, bool quiet, uint32_t gen, bool committed)
{
	uint32_t now = 0;

	if (!quiet || !nft->monitor)
		return;
	monitor_listen(nft, true);
	if (xn_nft_generation(nft, &now) < 0 || now != gen + (committed ? 1 : 0))
		nft->monitor_missed = true;
}

/* ---- the batch ---- */

struct nlmsghdr *nft_batch_hdr(struct batch *bt, uint16_t type, uint16_t flags,
			       const char *what)
{
	uint32_t idx = bt->seq - bt->seq_first;

	if (idx < XN_ARRAY_SIZE(bt->what))
		bt->what[idx] = what;
	/* libmnl 1.0.4 leaves attribute padding uninitialised; the tail of
	 * a batch page always has the overrun room (one socket buffer). */
	memset(nftnl_batch_buffer(bt->b), 0, MNL_SOCKET_BUFFER_SIZE);
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(bt->b), type,
				     bt->family, flags | NLM_F_ACK,
				     bt->seq++);
}

void nft_batch_next(struct batch *bt)
{
	if (nftnl_batch_update(bt->b) < 0 && !bt->err)
		bt->err = -ENOMEM;
}

/* Reads the replies to a batch sent: one per message. Returns the first
 * error, naming its object in err. */
static int batch_replies(struct batch *bt, struct mnl_socket *nl, uint32_t *got,
			 struct xn_buf *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t expected = bt->seq - bt->seq_first;
	uint32_t portid = mnl_socket_get_portid(nl);
	int first_err = 0;

	while (*got < expected) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(nl), .events = POLLIN };
		ssize_t len;
		int r = poll(&pfd, 1, 5000);

		if (r == 0)
			return first_err ? first_err : -ETIMEDOUT;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		len = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (len < 0)
			return -errno;
		int left = (int)len;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
			uint32_t idx = h->nlmsg_seq - bt->seq_first;

			if (h->nlmsg_pid != portid || h->nlmsg_type != NLMSG_ERROR)
				continue;
			(*got)++;
			if (h->nlmsg_len < mnl_nlmsg_size(sizeof(*e)) || !e->error || first_err)
				continue;
			first_err = e->error;
			if (err)
				xn_buf_printf(err, "nftables refused %s: %s",
					      idx < XN_ARRAY_SIZE(bt->what) && bt->what[idx]
						      ? bt->what[idx] : "a message",
					      strerror(-e->error));
		}
	}
	return first_err;
}

/* A large batch (hundreds of elements, or a table) is not echoed to our
 * own monitor: the kernel would build an event per element. */
#define QUIET_BATCH_MSGS 8

static int batch_talk(struct batch *bt, struct xn_buf *err)
{
	struct xn_nft *nft = bt->nft;
	struct mnl_socket *nl = NULL;
	uint32_t expected = bt->seq - bt->seq_first, got = 0, gen = 0;
	bool quiet = expected >= QUIET_BATCH_MSGS;
	int r;

	/* First: its request may replace the shared socket on an error. */
	monitor_quiet(nft, quiet, &gen);
	r = nft_socket(nft, &nl);
	if (r < 0) {
		monitor_loud(nft, quiet, gen, false);
		return r;
	}
	int iovlen = nftnl_batch_iovec_len(bt->b);
	struct iovec iov[iovlen];
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct msghdr msg = { .msg_name = &sa, .msg_namelen = sizeof(sa),
			      .msg_iov = iov, .msg_iovlen = (size_t)iovlen };

	nftnl_batch_iovec(bt->b, iov, (uint32_t)iovlen);
	if (sendmsg(mnl_socket_get_fd(nl), &msg, 0) < 0)
		r = -errno;
	else
		r = batch_replies(bt, nl, &got, err);
	if (got < expected)
		nft_socket_reset(nft); /* replies may still come on it */
	monitor_loud(nft, quiet, gen, r >= 0 && got == expected);
	return r;
}

int nft_batch_open(struct xn_nft *nft, struct batch *bt)
{
	*bt = (struct batch){ .nft = nft };
	bt->b = nftnl_batch_alloc(MNL_SOCKET_BUFFER_SIZE, MNL_SOCKET_BUFFER_SIZE);
	if (!bt->b)
		return -ENOMEM;
	bt->seq = nft_next_seq(nft);
	bt->seq += 1024; /* room for this batch's messages */
	nft->seq = bt->seq + 65536;
	memset(nftnl_batch_buffer(bt->b), 0, MNL_SOCKET_BUFFER_SIZE);
	nftnl_batch_begin(nftnl_batch_buffer(bt->b), bt->seq++);
	bt->seq_first = bt->seq;
	nft_batch_next(bt);
	return 0;
}

void nft_batch_abort(struct batch *bt)
{
	nftnl_batch_free(bt->b);
	bt->b = NULL;
}

int nft_batch_close_and_send(struct batch *bt, struct xn_buf *err)
{
	int r;

	memset(nftnl_batch_buffer(bt->b), 0, MNL_SOCKET_BUFFER_SIZE);
	nftnl_batch_end(nftnl_batch_buffer(bt->b), bt->seq);
	nft_batch_next(bt);
	r = bt->err;
	if (r >= 0 && bt->seq != bt->seq_first)
		r = batch_talk(bt, err);
	nft_batch_abort(bt);
	return r;
}
