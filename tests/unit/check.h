/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The unit tests' one assertion: counts, and prints what failed. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int passed, failed;

__attribute__((format(printf, 2, 3), unused))
static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (ok) {
		passed++;
	} else {
		failed++;
		printf("FAIL: ");
		vprintf(fmt, ap);
		printf("\n");
	}
	va_end(ap);
}
