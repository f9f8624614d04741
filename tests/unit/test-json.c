/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The JSON writer: escaping (quotes, backslashes, control characters,
 * bytes that are not UTF-8) and commas between members. */
#include <string.h>

#include "xennet/json.h"

#include "check.h"

static void quoted(const char *in, const char *want)
{
	struct xn_buf b = { 0 };

	xn_json_quote(&b, in);
	check(strcmp(xn_buf_str(&b), want) == 0, "quote: got %s, wanted %s", xn_buf_str(&b), want);
	xn_buf_free(&b);
}

int main(void)
{
	struct xn_buf b = { 0 };
	struct xn_json j;

	quoted("plain", "\"plain\"");
	quoted("a\"b\\c", "\"a\\\"b\\\\c\"");
	quoted("line\nnext\ttab\rcr", "\"line\\nnext\\ttab\\rcr\"");
	quoted("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* A lone continuation byte, a cut sequence, an overlong '/', a surrogate. */
	quoted("\x80", "\"\\ufffd\"");
	quoted("a\xc3", "\"a\\ufffd\"");
	quoted("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	quoted("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");

	xn_json_document_begin(&j, &b);
	xn_json_string(&j, "name", "vif1.0");
	xn_json_string(&j, "domain", NULL);
	xn_json_array_begin(&j, "list");
	xn_json_uint(&j, NULL, 1);
	xn_json_object_begin(&j, NULL);
	xn_json_bool(&j, "ok", true);
	xn_json_int(&j, "n", -3);
	xn_json_object_end(&j);
	xn_json_array_begin(&j, NULL);
	xn_json_array_end(&j);
	xn_json_array_end(&j);
	xn_json_null(&j, "last");
	xn_json_document_end(&j);
	check(strcmp(xn_buf_str(&b),
		     "{\"version\":1,\"name\":\"vif1.0\",\"domain\":null,\"list\":[1,{\"ok\":true,\"n\":-3},[]],\"last\":null}\n") == 0,
	      "document: %s", xn_buf_str(&b));
	xn_buf_free(&b);

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
