/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Noticing changes others make to xennet's tables (nftables events). */
#include "nft-internal.h"

int xn_nft_monitor_open(struct xn_nft *nft)
{
	struct mnl_socket *monitor = mnl_socket_open2(NETLINK_NETFILTER,
						      SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (!monitor)
		return -errno;
	if (mnl_socket_bind(monitor, 1 << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) {
		int e = -errno;
		mnl_socket_close(monitor);
		return e;
	}
	nft->monitor = monitor;
	/* Each vif or mapping change is a few events: room for bursts of
	 * them (an overflow only costs a check of the tables). */
	int size = 4 << 20;
	if (setsockopt(mnl_socket_get_fd(monitor), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(mnl_socket_get_fd(monitor), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return mnl_socket_get_fd(monitor);
}

struct monitor_state {
	struct xn_nft *nft;
	bool pending; /* this transaction touched a xennet table's rules */
	bool pending_elems; /* ... or only elements of its sets */
	bool pending_nat; /* ... some of them not anti-spoofing elements */
	bool changed; /* a transaction that was not ours touched rules */
	bool changed_elems; /* ... or elements */
	bool changed_nat; /* ... some of them not anti-spoofing elements */
	bool lost; /* the socket overflowed: nobody knows */
	unsigned pending_sets; /* the NAT maps (XN_NFT_SET_*) among them */
};

static unsigned nat_set_bit(const char *name)
{
	static const struct {
		const char *name;
		unsigned bit;
	} sets[] = { { "map_dnat", XN_NFT_SET_DNAT }, { "map_snat", XN_NFT_SET_SNAT },
		     { "fwd_dnat", XN_NFT_SET_FWD }, { "public_addrs", XN_NFT_SET_PUBLICS } };

	for (size_t i = 0; i < XN_ARRAY_SIZE(sets); i++)
		if (strcmp(name, sets[i].name) == 0)
			return sets[i].bit;
	return 0;
}

static int on_event(const struct nlmsghdr *h, void *data)
{
	struct monitor_state *st = data;
	uint16_t type = h->nlmsg_type & 0xff;
	const struct nlattr *a;

	if ((h->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES)
		return MNL_CB_OK;
	if (type == NFT_MSG_NEWGEN) {
		uint32_t pid = 0;
		mnl_attr_for_each(a, h, sizeof(struct nfgenmsg))
			if (mnl_attr_get_type(a) == NFTA_GEN_PROC_PID &&
			    mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
				pid = ntohl(mnl_attr_get_u32(a));
		if (pid != (uint32_t)getpid()) {
			st->changed |= st->pending;
			st->changed_elems |= st->pending_elems;
			st->changed_nat |= st->pending_nat;
			st->nft->monitor_sets |= st->pending_sets;
		}
		st->pending = st->pending_elems = st->pending_nat = false;
		st->pending_sets = 0;
		return MNL_CB_OK;
	}
	bool elems = type == NFT_MSG_NEWSETELEM || type == NFT_MSG_DELSETELEM;
	if (!elems && type != NFT_MSG_DELTABLE && type != NFT_MSG_DELCHAIN &&
	    type != NFT_MSG_NEWCHAIN && type != NFT_MSG_DELRULE && type != NFT_MSG_NEWRULE &&
	    type != NFT_MSG_DELSET)
		return MNL_CB_OK;
	/* The table's name is attribute 1 of all these messages; an
	 * element's set is attribute 2 (NFTA_SET_ELEM_LIST_SET). */
	bool ours = false, antispoof = false, fixed = false;
	unsigned set_bit = 0;
	mnl_attr_for_each(a, h, sizeof(struct nfgenmsg)) {
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
			continue;
		if (mnl_attr_get_type(a) == 1)
			ours |= strcmp(mnl_attr_get_str(a), XN_NFT_TABLE) == 0;
		if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_SET) {
			antispoof |= strncmp(mnl_attr_get_str(a), "as_", 3) == 0;
			set_bit |= nat_set_bit(mnl_attr_get_str(a));
			/* The NAT table's fixed sets are part of its rules. */
			fixed |= strncmp(mnl_attr_get_str(a), "nat_", 4) == 0;
		}
	}
	if (ours) {
		st->pending |= !elems || fixed;
		st->pending_elems |= elems;
		st->pending_nat |= elems && !antispoof;
		st->pending_sets |= elems ? set_bit : 0;
	}
	return MNL_CB_OK;
}

int xn_nft_monitor_drain(struct xn_nft *nft)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct monitor_state st = { .nft = nft };

	if (!nft->monitor)
		return 0;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nft->monitor, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) { /* events lost: look again */
				st.lost = true;
				continue;
			}
			return -errno;
		}
		mnl_cb_run(buf, (size_t)n, 0, 0, on_event, &st);
	}
	return st.changed ? 1 : st.lost ? 2 : st.changed_nat ? 3 : st.changed_elems ? 4 : 0;
}

unsigned xn_nft_monitor_take_sets(struct xn_nft *nft)
{
	unsigned s = nft->monitor_sets;

	nft->monitor_sets = 0;
	return s;
}

bool xn_nft_monitor_take_missed(struct xn_nft *nft)
{
	bool m = nft->monitor_missed;

	nft->monitor_missed = false;
	return m;
}
