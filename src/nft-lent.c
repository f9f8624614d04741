/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Transitional (issue 13): hotplug.c, vifattach.c and hotplug-restart.c
 * change vifs' elements without holding an nft context yet. The daemon
 * lends them its own (so that their batches share its socket, sequence
 * numbers and monitor, as before); this file and its pointer go once
 * they are given the context. */
#include "nft-internal.h"

static struct xn_nft *lent;

void xn_nft_lend(struct xn_nft *nft)
{
	lent = nft;
}

int xn_nft_vif_update(const struct xn_nft_vif *add, const struct xn_nft_vif *del,
		      struct xn_buf *err)
{
	return lent ? xn_nft_vif_elements(lent, add, del, err) : -ENOTCONN;
}

int xn_nft_vifs_add(const struct xn_nft_vif *v, size_t n, struct xn_buf *err)
{
	return lent ? xn_nft_vifs_elements_add(lent, v, n, err) : -ENOTCONN;
}

int xn_nft_purge(const char (*keep)[IFNAMSIZ], size_t n_keep, struct xn_buf *err)
{
	return lent ? xn_nft_purge_others(lent, keep, n_keep, err) : -ENOTCONN;
}
