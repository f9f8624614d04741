/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "xennet/log.h"
#include "xennet/notify.h"
#include "xn-config.h"

#if XN_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void xn_notify(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r = sd_notify(0, msg);
	if (r < 0)
		log_warn("telling systemd \"%s\": %s", msg, strerror(-r));
}
#else
void xn_notify(const char *fmt, ...)
{
	(void)fmt;
}
#endif
