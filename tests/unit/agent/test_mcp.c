/*
 * MCP over stdio: lines framed from a byte stream however it arrives, and each line
 * classified as the proxy routes it (request, notification, response) or refused with the
 * JSON-RPC error it answers.
 */
#include "unit.h"

#include <stdbool.h>

#include "agent/mcp.h"
#include "common/json.h"

/* ---- framing ---- */

/** The lines handed over, joined as "line|line|<too long>|". */
struct lines {
	char text[1024];
	size_t used;
	int calls;
	int stop_at; /**< return 9 from this call (1-based); 0: never */
};

static int
collect(const char *line, size_t len, bool too_long, void *arg)
{
	struct lines *l = arg;

	l->calls++;
	if (too_long) {
		assert_int_equal(len, 0);
		l->used += (size_t)snprintf(l->text + l->used, sizeof(l->text) - l->used, "<too long>|");
	} else {
		assert_true(len > 0);
		assert_null(memchr(line, '\n', len));
		l->used += (size_t)snprintf(l->text + l->used, sizeof(l->text) - l->used, "%.*s|",
		                            (int)len, line);
	}
	assert_true(l->used < sizeof(l->text));
	return l->calls == l->stop_at ? 9 : 0;
}

/** Feed the NULL-terminated `chunks` in turn to a framer of `max_line`; `expected` lines. */
static void
assert_framed(size_t max_line, const char *const *chunks, const char *expected, bool pending)
{
	struct lines l = {0};
	mcp_framer_t f;
	size_t i;

	mcp_framer_init(&f, max_line);
	for (i = 0; chunks[i] != NULL; i++)
		assert_int_equal(mcp_framer_feed(&f, chunks[i], strlen(chunks[i]), collect, &l), 0);
	assert_string_equal(l.text, expected);
	assert_int_equal(mcp_framer_pending(&f), pending);
	mcp_framer_free(&f);
}

#define FRAMED(max, expected, pending, ...)                                                   \
	assert_framed(max, (const char *const[]){__VA_ARGS__, NULL}, expected, pending)

static void
test_framer_joins_lines_across_chunks(void **state)
{
	FRAMED(1024, "{\"a\":1}|{\"b\":2}|{}|", false, "{\"a\"", ":1}\n{\"b\":2}\n{", "}\n");
	FRAMED(1024, "abc|", false, "a", "b", "c", "\n");
	FRAMED(1024, "one|two|", false, "one\ntwo\n");
}

static void
test_framer_gives_the_same_lines_byte_by_byte(void **state)
{
	static const char stream[] = "{\"id\":1}\r\n\n{\"id\":2}\nxyz\r\r\n0123456789AB\nend";
	struct lines whole = {0}, bytes = {0};
	mcp_framer_t f;
	size_t i;

	mcp_framer_init(&f, 10);
	assert_int_equal(mcp_framer_feed(&f, stream, sizeof(stream) - 1, collect, &whole), 0);
	mcp_framer_free(&f);
	mcp_framer_init(&f, 10);
	for (i = 0; i + 1 < sizeof(stream); i++)
		assert_int_equal(mcp_framer_feed(&f, stream + i, 1, collect, &bytes), 0);
	assert_true(mcp_framer_pending(&f));
	mcp_framer_free(&f);
	assert_string_equal(whole.text, "{\"id\":1}|{\"id\":2}|xyz\r|<too long>|");
	assert_string_equal(bytes.text, whole.text);
}

static void
test_framer_drops_one_cr_before_the_newline(void **state)
{
	FRAMED(1024, "a|b|", false, "a\r\nb\r\n");
	/* A CR and its LF in different chunks. */
	FRAMED(1024, "a|b|", false, "a\r", "\nb\r", "\n");
	/* Only the one right before the LF; others are the line's. */
	FRAMED(1024, "a\r|a\rb|", false, "a\r\r\n", "a\rb\n");
}

static void
test_framer_skips_empty_lines(void **state)
{
	FRAMED(1024, "a|", false, "\n\n\r\na\n\n\r\n");
	FRAMED(1024, "", false, "\n", "\r\n", "\n");
}

static void
test_framer_reports_a_too_long_line_once_and_keeps_the_next(void **state)
{
	FRAMED(8, "<too long>|abc|", false, "0123456789\nabc\n");
	/* Over the limit across several chunks: still one report. */
	FRAMED(8, "<too long>|abc|", false, "0123", "456789", "0123456789", "01\nabc\n");
	/* The line at the limit passes; one byte more does not. */
	FRAMED(8, "01234567|<too long>|x|", false, "01234567\n012345678\nx\n");
	/* A too-long line is reported before its newline arrives. */
	FRAMED(8, "<too long>|", true, "0123456789");
}

static void
test_framer_pending_while_a_line_is_unfinished(void **state)
{
	FRAMED(1024, "", false, "");
	FRAMED(1024, "", true, "{\"jsonrpc\":");
	FRAMED(1024, "a|", true, "a\nb");
	FRAMED(1024, "", true, "\r");
	FRAMED(1024, "a|b|", false, "a\nb", "\n");
	FRAMED(4, "<too long>|", true, "abcdef", "gh");
	FRAMED(4, "<too long>|", false, "abcdef", "gh\n");
}

static void
test_framer_stops_when_the_callback_says_so(void **state)
{
	static const char stream[] = "a\nb\nc\n";
	struct lines l = {.stop_at = 2};
	mcp_framer_t f;

	mcp_framer_init(&f, 1024);
	assert_int_equal(mcp_framer_feed(&f, stream, sizeof(stream) - 1, collect, &l), 9);
	assert_string_equal(l.text, "a|b|");
	mcp_framer_free(&f);

	/* Stopping at a too-long report. */
	memset(&l, 0, sizeof(l));
	l.stop_at = 1;
	mcp_framer_init(&f, 2);
	assert_int_equal(mcp_framer_feed(&f, "abcd\nx\n", 7, collect, &l), 9);
	assert_string_equal(l.text, "<too long>|");
	mcp_framer_free(&f);
}

/* ---- classification ---- */

static void
parse(const char *line, mcp_message_t *m)
{
	mcp_parse(line, strlen(line), m);
}

static void
assert_invalid(const char *line, int code, const char *why)
{
	mcp_message_t m;

	parse(line, &m);
	if (m.kind != MCP_INVALID)
		fail_msg("%s was classified %d, not invalid", line, (int)m.kind);
	assert_int_equal(m.error_code, code);
	assert_contains(m.error, why);
	assert_null(m.method);
	mcp_message_free(&m);
}

static void
test_parse_request_with_integer_or_string_id(void **state)
{
	mcp_message_t m;

	parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{}}", &m);
	assert_int_equal(m.kind, MCP_REQUEST);
	assert_string_equal(m.method, "tools/list");
	assert_true(json_is_integer(m.id));
	assert_int_equal(json_integer_value(m.id), 1);
	mcp_message_free(&m);

	parse("{\"method\":\"tools/call\",\"id\":\"call-7\",\"jsonrpc\":\"2.0\",\"params\":"
	      "{\"name\":\"create_issue\",\"arguments\":{}}}", &m);
	assert_int_equal(m.kind, MCP_REQUEST);
	assert_string_equal(m.method, "tools/call");
	assert_string_equal(json_string_value(m.id), "call-7");
	mcp_message_free(&m);

	parse("{\"jsonrpc\":\"2.0\",\"id\":-9223372036854775808,\"method\":\"ping\"}", &m);
	assert_int_equal(m.kind, MCP_REQUEST);
	mcp_message_free(&m);
	parse("{\"jsonrpc\":\"2.0\",\"id\":\"\",\"method\":\"ping\"}", &m);
	assert_int_equal(m.kind, MCP_REQUEST);
	mcp_message_free(&m);
}

static void
test_parse_notification_has_no_id(void **state)
{
	mcp_message_t m;

	parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":"
	      "{\"requestId\":\"call-7\",\"reason\":\"user\"}}", &m);
	assert_int_equal(m.kind, MCP_NOTIFICATION);
	assert_string_equal(m.method, "notifications/cancelled");
	assert_null(m.id);
	mcp_message_free(&m);
}

static void
test_parse_response_with_result_or_error(void **state)
{
	mcp_message_t m;

	parse("{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[],\"isError\":false}}", &m);
	assert_int_equal(m.kind, MCP_RESPONSE);
	assert_null(m.method);
	assert_int_equal(json_integer_value(m.id), 2);
	mcp_message_free(&m);

	parse("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":-32601,\"message\":\"no\"}}", &m);
	assert_int_equal(m.kind, MCP_RESPONSE);
	assert_string_equal(json_string_value(m.id), "x");
	mcp_message_free(&m);

	/* A null result is still a result. */
	parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":null}", &m);
	assert_int_equal(m.kind, MCP_RESPONSE);
	mcp_message_free(&m);
}

static void
test_parse_refuses_what_is_not_json(void **state)
{
	mcp_message_t m;

	assert_invalid("{\"jsonrpc\":\"2.0\",", -32700, "Parse error");
	assert_invalid("not json", -32700, "Parse error");
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\xff\"}", -32700, "Parse error");
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xc0\xaf\"}", -32700, "Parse error");
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\\ud800\"}", -32700, "Parse error");
	parse("{", &m);
	assert_null(m.msg);
	mcp_message_free(&m);
}

static void
test_parse_refuses_duplicate_keys(void **state)
{
	/* The server could take either method; the proxy must not guess. */
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"method\":"
	               "\"tools/call\"}", -32700, "duplicate");
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}", -32700,
	               "duplicate");
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
	               "{\"name\":\"a\",\"name\":\"b\"}}", -32700, "duplicate");
}

static void
test_parse_refuses_batches(void **state)
{
	assert_invalid("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", -32600,
	               "batches are not supported");
	assert_invalid("[]", -32600, "batches are not supported");
	/* A bare value is not even read as JSON-RPC: it is a parse error. */
	assert_invalid("\"2.0\"", -32700, "Parse error");
	assert_invalid("7", -32700, "Parse error");
}

static void
test_parse_refuses_ids_that_are_not_string_or_integer(void **state)
{
	static const char *const ids[] = {"1.5", "1e3", "-0.0", "true", "false", "{}",
	                                  "{\"a\":1}", "[1]", "null", NULL};
	char line[128];
	int i;

	for (i = 0; ids[i] != NULL; i++) {
		snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"ping\"}",
		         ids[i]);
		assert_invalid(line, -32600, "the id must be a string or an integer");
		snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{}}", ids[i]);
		assert_invalid(line, -32600, "the id must be a string or an integer");
	}
}

static void
test_parse_refuses_a_missing_or_wrong_jsonrpc(void **state)
{
	assert_invalid("{\"id\":1,\"method\":\"ping\"}", -32600, "\"jsonrpc\" must be \"2.0\"");
	assert_invalid("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", -32600,
	               "\"jsonrpc\" must be \"2.0\"");
	assert_invalid("{\"jsonrpc\":2.0,\"id\":1,\"method\":\"ping\"}", -32600,
	               "\"jsonrpc\" must be \"2.0\"");
	assert_invalid("{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"ping\"}", -32600,
	               "\"jsonrpc\" must be \"2.0\"");
}

static void
test_parse_refuses_a_method_that_is_not_a_name(void **state)
{
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", -32600,
	               "the method must be a string");
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}", -32600,
	               "the method must be a string");
	assert_invalid("{\"jsonrpc\":\"2.0\",\"method\":[\"ping\"]}", -32600,
	               "the method must be a string");
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", -32600,
	               "the method must be a string");
	/*
	 * An embedded NUL would make the proxy read "tools/list" where the server reads more:
	 * the parser already refuses \u0000 anywhere.
	 */
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\\u0000x\"}", -32700,
	               "\\u0000 is not allowed");
}

static void
test_parse_refuses_responses_with_both_or_neither(void **state)
{
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1}}", -32600,
	               "neither a request nor a response");
	assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1}", -32600, "neither a request nor a response");
	assert_invalid("{\"jsonrpc\":\"2.0\",\"result\":{}}", -32600,
	               "neither a request nor a response");
	assert_invalid("{\"jsonrpc\":\"2.0\"}", -32600, "neither a request nor a response");
}

/** A request whose params are `depth` nested arrays (so the line nests depth + 1 deep). */
static void
nested_request(char *line, size_t size, int depth)
{
	size_t n = (size_t)snprintf(line, size, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\","
	                                        "\"params\":");
	int i;

	assert_true(n + 2 * (size_t)depth + 2 <= size);
	for (i = 0; i < depth; i++)
		line[n++] = '[';
	for (i = 0; i < depth; i++)
		line[n++] = ']';
	line[n++] = '}';
	line[n] = '\0';
}

static void
test_parse_refuses_nesting_over_128(void **state)
{
	char line[512];
	mcp_message_t m;

	nested_request(line, sizeof(line), 128);
	assert_invalid(line, -32700, "nested deeper than 128");
	nested_request(line, sizeof(line), 127);
	parse(line, &m);
	assert_int_equal(m.kind, MCP_REQUEST);
	mcp_message_free(&m);
}

/* ---- the error lines ---- */

static void
assert_line_is(char *line, const char *expected)
{
	json_error_t jerr;
	json_t *got, *want;
	char *got_c, *want_c;

	assert_non_null(line);
	assert_null(strchr(line, '\n'));
	got = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	want = json_loads(expected, 0, &jerr);
	assert_non_null(got);
	assert_non_null(want);
	got_c = so_json_canonical_str(got);
	want_c = so_json_canonical_str(want);
	assert_string_equal(got_c, want_c);
	free(got_c);
	free(want_c);
	json_decref(got);
	json_decref(want);
	free(line);
}

static void
test_error_line_carries_the_id_back(void **state)
{
	json_t *num = json_integer(7), *str = json_string("call-7");

	assert_line_is(mcp_error_line(num, -32600, "Invalid Request: x"),
	               "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32600,"
	               "\"message\":\"Invalid Request: x\"}}");
	assert_line_is(mcp_error_line(str, -32601, "é \"q\"\n"),
	               "{\"jsonrpc\":\"2.0\",\"id\":\"call-7\",\"error\":{\"code\":-32601,"
	               "\"message\":\"é \\\"q\\\"\\n\"}}");
	assert_line_is(mcp_error_line(NULL, -32700, "Parse error"),
	               "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
	               "\"message\":\"Parse error\"}}");
	json_decref(num);
	json_decref(str);
}

static void
test_tool_error_line_is_a_result_marked_as_error(void **state)
{
	json_t *str = json_string("call-7");

	assert_line_is(mcp_tool_error_line(str, "signoff: denied by alice; the tool was not called"),
	               "{\"jsonrpc\":\"2.0\",\"id\":\"call-7\",\"result\":{\"content\":[{\"type\":"
	               "\"text\",\"text\":\"signoff: denied by alice; the tool was not called\"}],"
	               "\"isError\":true}}");
	json_decref(str);
}

static void
test_error_line_for_each_invalid_line_is_json(void **state)
{
	/* What the proxy answers to a line it refuses must itself be a line the client reads. */
	static const char *const lines[] = {
		"{\"a\":\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
		"[1,2", "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"a\"}", NULL};
	int i;

	for (i = 0; lines[i] != NULL; i++) {
		mcp_message_t m;
		char *line;
		json_t *back;
		json_error_t jerr;

		parse(lines[i], &m);
		assert_int_equal(m.kind, MCP_INVALID);
		line = mcp_error_line(m.error_code == -32700 ? NULL : m.id, m.error_code, m.error);
		assert_non_null(line);
		back = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
		assert_non_null(back);
		assert_string_equal(so_json_str(json_object_get(back, "error"), "message", ""), m.error);
		json_decref(back);
		free(line);
		mcp_message_free(&m);
	}
}

static void
test_parse_error_reason_is_utf8(void **state)
{
	/*
	 * Regression (fuzz_mcp): jansson's "near '...'" context can end inside a multi-byte
	 * character, which once made the parse error's reason invalid UTF-8, so that
	 * mcp_error_line() returned NULL and the proxy answered nothing to a malformed line.
	 * Input: {"a":"\u00é"} (é as C3 A9). The reason must be UTF-8 and the line built.
	 */
	static const char *const lines[] = {
		"{\"a\":\"\\u00\xc3\xa9\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u000\xd3\x9d\xdd\x82",
		NULL};
	int i;

	for (i = 0; lines[i] != NULL; i++) {
		mcp_message_t m;
		char *line;

		parse(lines[i], &m);
		assert_int_equal(m.kind, MCP_INVALID);
		assert_int_equal(m.error_code, -32700);
		if (so_utf8_prefix(m.error, strlen(m.error)) != strlen(m.error))
			fail_msg("the reason for %s is not UTF-8: %s", lines[i], m.error);
		line = mcp_error_line(NULL, m.error_code, m.error);
		assert_non_null(line);
		free(line);
		mcp_message_free(&m);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framer_joins_lines_across_chunks),
		cmocka_unit_test(test_framer_gives_the_same_lines_byte_by_byte),
		cmocka_unit_test(test_framer_drops_one_cr_before_the_newline),
		cmocka_unit_test(test_framer_skips_empty_lines),
		cmocka_unit_test(test_framer_reports_a_too_long_line_once_and_keeps_the_next),
		cmocka_unit_test(test_framer_pending_while_a_line_is_unfinished),
		cmocka_unit_test(test_framer_stops_when_the_callback_says_so),
		cmocka_unit_test(test_parse_request_with_integer_or_string_id),
		cmocka_unit_test(test_parse_notification_has_no_id),
		cmocka_unit_test(test_parse_response_with_result_or_error),
		cmocka_unit_test(test_parse_refuses_what_is_not_json),
		cmocka_unit_test(test_parse_refuses_duplicate_keys),
		cmocka_unit_test(test_parse_refuses_batches),
		cmocka_unit_test(test_parse_refuses_ids_that_are_not_string_or_integer),
		cmocka_unit_test(test_parse_refuses_a_missing_or_wrong_jsonrpc),
		cmocka_unit_test(test_parse_refuses_a_method_that_is_not_a_name),
		cmocka_unit_test(test_parse_refuses_responses_with_both_or_neither),
		cmocka_unit_test(test_parse_refuses_nesting_over_128),
		cmocka_unit_test(test_error_line_carries_the_id_back),
		cmocka_unit_test(test_tool_error_line_is_a_result_marked_as_error),
		cmocka_unit_test(test_error_line_for_each_invalid_line_is_json),
		cmocka_unit_test(test_parse_error_reason_is_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
