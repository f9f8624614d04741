/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xennet/util.h"

/* The one JSON writer: every `--json` answer is written with it, so that
 * every string is escaped the same way (quotes, backslashes, control
 * characters, bytes that are not UTF-8) and commas are never forgotten.
 * Members take a key (inside an object) or NULL (inside an array, or the
 * top-level value). */

/* The "version" of every top-level JSON object xennet prints; raised
 * when a member changes meaning or goes away (new members do not). */
#define XN_JSON_VERSION 1

#define XN_JSON_MAX_DEPTH 16

struct xn_json {
	struct xn_buf *out;
	unsigned depth;
	bool has_member[XN_JSON_MAX_DEPTH];
};

void xn_json_init(struct xn_json *j, struct xn_buf *out);
void xn_json_object_begin(struct xn_json *j, const char *key);
void xn_json_object_end(struct xn_json *j);
void xn_json_array_begin(struct xn_json *j, const char *key);
void xn_json_array_end(struct xn_json *j);
/* value NULL writes null. */
void xn_json_string(struct xn_json *j, const char *key, const char *value);
void xn_json_uint(struct xn_json *j, const char *key, uint64_t value);
void xn_json_int(struct xn_json *j, const char *key, int64_t value);
void xn_json_bool(struct xn_json *j, const char *key, bool value);
void xn_json_null(struct xn_json *j, const char *key);
/* A top-level object with "version" first. */
void xn_json_document_begin(struct xn_json *j, struct xn_buf *out);
/* Closes it, with a newline. */
void xn_json_document_end(struct xn_json *j);

/* s as a JSON string, quotes included. */
void xn_json_quote(struct xn_buf *b, const char *s);
