/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/json.h"

#include <inttypes.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0: overlong forms,
 * surrogates and code points above U+10FFFF are not valid. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

void xn_json_quote(struct xn_buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	xn_buf_printf(b, "\"");
	while (*s) {
		size_t n = utf8_len(s);
		const char *esc = *s == '"' ? "\\\"" : *s == '\\' ? "\\\\" : *s == '\n' ? "\\n"
				  : *s == '\t' ? "\\t" : *s == '\r' ? "\\r" : NULL;

		if (esc)
			xn_buf_printf(b, "%s", esc);
		else if (*s < 0x20 || *s == 0x7f)
			xn_buf_printf(b, "\\u%04x", *s);
		else if (n == 0)
			xn_buf_printf(b, "\\ufffd"); /* not UTF-8: replaced, one per byte */
		else
			xn_buf_printf(b, "%.*s", (int)n, (const char *)s);
		s += n ? n : 1;
	}
	xn_buf_printf(b, "\"");
}

void xn_json_init(struct xn_json *j, struct xn_buf *out)
{
	*j = (struct xn_json){ .out = out };
}

/* The comma and the key before a member. */
static void member(struct xn_json *j, const char *key)
{
	if (j->has_member[j->depth])
		xn_buf_printf(j->out, ",");
	j->has_member[j->depth] = true;
	if (key) {
		xn_json_quote(j->out, key);
		xn_buf_printf(j->out, ":");
	}
}

static void json_open(struct xn_json *j, const char *key, const char *bracket)
{
	member(j, key);
	xn_buf_printf(j->out, "%s", bracket);
	if (j->depth + 1 < XN_JSON_MAX_DEPTH)
		j->depth++;
	j->has_member[j->depth] = false;
}

static void json_close(struct xn_json *j, const char *bracket)
{
	xn_buf_printf(j->out, "%s", bracket);
	if (j->depth)
		j->depth--;
}

void xn_json_object_begin(struct xn_json *j, const char *key)
{
	json_open(j, key, "{");
}

void xn_json_object_end(struct xn_json *j)
{
	json_close(j, "}");
}

void xn_json_array_begin(struct xn_json *j, const char *key)
{
	json_open(j, key, "[");
}

void xn_json_array_end(struct xn_json *j)
{
	json_close(j, "]");
}

void xn_json_string(struct xn_json *j, const char *key, const char *value)
{
	member(j, key);
	if (value)
		xn_json_quote(j->out, value);
	else
		xn_buf_printf(j->out, "null");
}

void xn_json_uint(struct xn_json *j, const char *key, uint64_t value)
{
	member(j, key);
	xn_buf_printf(j->out, "%" PRIu64, value);
}

void xn_json_int(struct xn_json *j, const char *key, int64_t value)
{
	member(j, key);
	xn_buf_printf(j->out, "%" PRId64, value);
}

void xn_json_bool(struct xn_json *j, const char *key, bool value)
{
	member(j, key);
	xn_buf_printf(j->out, "%s", value ? "true" : "false");
}

void xn_json_null(struct xn_json *j, const char *key)
{
	member(j, key);
	xn_buf_printf(j->out, "null");
}

void xn_json_document_begin(struct xn_json *j, struct xn_buf *out)
{
	xn_json_init(j, out);
	xn_json_object_begin(j, NULL);
	xn_json_uint(j, "version", XN_JSON_VERSION);
}

void xn_json_document_end(struct xn_json *j)
{
	xn_json_object_end(j);
	xn_buf_printf(j->out, "\n");
}
