/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <limits.h>

#include "xennet/util.h"

/* The profile in force is kept in the state directory, as
 * STATE/profile.conf, with the path it was applied from in
 * STATE/profile.source: a restart never depends on a file elsewhere that
 * may be gone (one under /tmp) or half edited. */

/* STATE/profile.conf */
int xn_profile_copy_path(const char *state_dir, char out[PATH_MAX]);
/* Read src once (a regular file; never blocks on a FIFO) and write it to
 * STATE/profile.conf.new, synced; its path in staged. -errno, with why
 * in err. */
int xn_profile_copy_stage(const char *state_dir, const char *src, char staged[PATH_MAX],
			  struct xn_buf *err);
/* The staged copy becomes the profile in force, src recorded as where it
 * came from. */
int xn_profile_copy_commit(const char *state_dir, const char *staged, const char *src);
/* Where the copy came from; "" when not known. */
void xn_profile_copy_source(const char *state_dir, char out[PATH_MAX]);
