/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/* Is an IPv4 address in use by another host on a link? ARP probes as in
 * RFC 5227 (sender address 0.0.0.0, so that no host's ARP cache learns
 * anything from them), a few of them a short interval apart, on one packet
 * socket per link, without blocking: the caller's event loop watches the
 * fd and calls xn_arp_prober_run when it is readable or the timeout is up.
 * (IPv6 would use neighbour solicitations; public addresses are IPv4.) */

struct xn_arp_prober;

/* -EOPNOTSUPP: the link has no ARP (not Ethernet). */
int xn_arp_prober_open(int ifindex, struct xn_arp_prober **ret);
void xn_arp_prober_close(struct xn_arp_prober *p);
int xn_arp_prober_fd(const struct xn_arp_prober *p);
int xn_arp_prober_ifindex(const struct xn_arp_prober *p);
/* Starts probing addr (the first probe is sent now); cookie is given back
 * to done. */
int xn_arp_prober_add(struct xn_arp_prober *p, struct in_addr addr, void *cookie);
/* Reads the answers, sends the probes that are due, and calls done for
 * every address with a verdict: in use (mac: who answered) or not (no
 * answer to any probe). */
typedef void xn_arp_done_fn(void *ctx, void *cookie, bool in_use, const uint8_t mac[6]);
void xn_arp_prober_run(struct xn_arp_prober *p, xn_arp_done_fn *done, void *ctx);
/* Until the next probe or verdict (ms), -1 when nothing is probed. */
int xn_arp_prober_timeout_ms(const struct xn_arp_prober *p);
