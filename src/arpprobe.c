/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/arpprobe.h"
#include "xennet/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/if_ether.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Probes per address and their interval; the verdict one interval after
 * the last. A host on the link answers within a millisecond or so. */
#define PROBES 3
#define PROBE_INTERVAL_MS 100

struct target {
	struct in_addr addr;
	void *cookie;
	int sent;
	int64_t next; /* the next probe, or the verdict after the last */
	bool in_use;
	uint8_t mac[ETH_ALEN];
};

struct xn_arp_prober {
	int fd, ifindex;
	uint8_t mac[ETH_ALEN];
	struct target *targets;
	size_t n;
};

static int own_mac(int fd, int ifindex, uint8_t mac[ETH_ALEN])
{
	struct ifreq ifr = { 0 };

	if (!if_indextoname((unsigned)ifindex, ifr.ifr_name))
		return -errno;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		return -errno;
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		return -EOPNOTSUPP;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	return 0;
}

int xn_arp_prober_open(int ifindex, struct xn_arp_prober **ret)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP),
				   .sll_ifindex = ifindex };
	struct xn_arp_prober *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->ifindex = ifindex;
	p->fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (p->fd < 0) {
		r = -errno;
		free(p);
		return r;
	}
	r = own_mac(p->fd, ifindex, p->mac);
	if (r >= 0 && bind(p->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		r = -errno;
	if (r < 0) {
		xn_arp_prober_close(p);
		return r;
	}
	*ret = p;
	return 0;
}

void xn_arp_prober_close(struct xn_arp_prober *p)
{
	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	free(p->targets);
	free(p);
}

int xn_arp_prober_fd(const struct xn_arp_prober *p)
{
	return p->fd;
}

int xn_arp_prober_ifindex(const struct xn_arp_prober *p)
{
	return p->ifindex;
}

static int send_probe(struct xn_arp_prober *p, struct in_addr addr)
{
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP),
				  .sll_ifindex = p->ifindex, .sll_halen = ETH_ALEN };
	struct ether_arp a = { 0 };

	a.arp_hrd = htons(ARPHRD_ETHER);
	a.arp_pro = htons(ETH_P_IP);
	a.arp_hln = ETH_ALEN;
	a.arp_pln = 4;
	a.arp_op = htons(ARPOP_REQUEST);
	memcpy(a.arp_sha, p->mac, ETH_ALEN);
	memcpy(a.arp_tpa, &addr, 4); /* sender address 0.0.0.0: a probe */
	memset(to.sll_addr, 0xff, ETH_ALEN);
	if (sendto(p->fd, &a, sizeof(a), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

int xn_arp_prober_add(struct xn_arp_prober *p, struct in_addr addr, void *cookie)
{
	struct target *t = reallocarray(p->targets, p->n + 1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	p->targets = t;
	r = send_probe(p, addr);
	if (r < 0)
		return r;
	t[p->n++] = (struct target){ .addr = addr, .cookie = cookie, .sent = 1,
				     .next = xn_now_ms() + PROBE_INTERVAL_MS };
	return 0;
}

/* Someone else on the link has the address: it answers for it (or
 * announces it), or probes for it too (RFC 5227, 2.1.1). */
static void on_packet(struct xn_arp_prober *p, const struct ether_arp *a)
{
	struct in_addr spa, tpa;

	if (ntohs(a->arp_hrd) != ARPHRD_ETHER || ntohs(a->arp_pro) != ETH_P_IP ||
	    a->arp_hln != ETH_ALEN || a->arp_pln != 4 || !memcmp(a->arp_sha, p->mac, ETH_ALEN))
		return;
	memcpy(&spa, a->arp_spa, 4);
	memcpy(&tpa, a->arp_tpa, 4);
	for (size_t i = 0; i < p->n; i++) {
		struct target *t = &p->targets[i];
		bool probing_too = spa.s_addr == 0 && ntohs(a->arp_op) == ARPOP_REQUEST &&
				   tpa.s_addr == t->addr.s_addr;
		if (spa.s_addr == t->addr.s_addr || probing_too) {
			t->in_use = true;
			memcpy(t->mac, a->arp_sha, ETH_ALEN);
		}
	}
}

static void read_answers(struct xn_arp_prober *p)
{
	for (;;) {
		struct ether_arp a;
		struct sockaddr_ll from;
		socklen_t len = sizeof(from);
		ssize_t k = recvfrom(p->fd, &a, sizeof(a), 0, (struct sockaddr *)&from, &len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return; /* EAGAIN: all read */
		if (k >= (ssize_t)sizeof(a) && from.sll_pkttype != PACKET_OUTGOING)
			on_packet(p, &a);
	}
}

void xn_arp_prober_run(struct xn_arp_prober *p, xn_arp_done_fn *done, void *ctx)
{
	int64_t now = xn_now_ms();
	size_t k = 0;

	read_answers(p);
	for (size_t i = 0; i < p->n; i++) {
		struct target *t = &p->targets[i];
		if (!t->in_use && now >= t->next && t->sent < PROBES) {
			/* A probe that cannot be sent counts as sent: the
			 * verdict comes from those that were. */
			send_probe(p, t->addr);
			t->sent++;
			t->next = now + PROBE_INTERVAL_MS;
		}
		if (t->in_use || now >= t->next)
			done(ctx, t->cookie, t->in_use, t->mac);
		else
			p->targets[k++] = *t;
	}
	p->n = k;
}

int xn_arp_prober_timeout_ms(const struct xn_arp_prober *p)
{
	int64_t first = -1, now = xn_now_ms();

	for (size_t i = 0; i < p->n; i++)
		if (first < 0 || p->targets[i].next < first)
			first = p->targets[i].next;
	if (first < 0)
		return -1;
	return first <= now ? 0 : (int)(first - now);
}
