/*
 * MCP stdio as the proxy reads it. The first byte says how many of the next bytes (1 to 8)
 * give chunk sizes; the rest is the stream, fed to an mcp_framer with a 4096-byte line
 * limit in chunks of those sizes, in turn. Lines handed over, up to 8 KiB of them, are
 * classified with mcp_parse and answered with mcp_error_line and mcp_tool_error_line.
 *
 * Checked: the lines (and too-long reports) are exactly those of a plain split of the stream
 * on "\n", fed in chunks or all at once; the pending state matches the unfinished tail;
 * each classification has the members its kind promises; both error lines are JSON-RPC 2.0
 * objects that carry the id back.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/mcp.h"
#include "common/error.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/** Small, so that libFuzzer's inputs reach the too-long path. */
#define FUZZ_MAX_LINE 4096u
/**
 * Bytes of lines per input classified (once, in the chunked pass): JSON work on every line
 * of a 64 KiB input would slow the fuzzer down several times for little new coverage.
 */
#define FUZZ_MAX_CLASSIFIED (2 * FUZZ_MAX_LINE)

static void
broken(const char *what, const char *line, size_t len)
{
	fprintf(stderr, "fuzz_mcp: %s: %.*s\n", what, (int)(len > 200 ? 200 : len), line);
	abort();
}

/** One line as handed over: where it is in the expected sequence. */
struct seen {
	uint64_t hash;
	size_t len;
	bool too_long;
};

struct record {
	struct seen *lines;
	size_t n, cap;
	size_t classify; /**< bytes of lines left to run through mcp_parse and the error lines */
};

static uint64_t
fnv1a(const char *s, size_t n)
{
	uint64_t h = UINT64_C(14695981039346656037);
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static void
add_seen(struct record *r, const char *line, size_t len, bool too_long)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct seen *more = realloc(r->lines, cap * sizeof(*more));
		if (more == NULL)
			broken("out of memory", "", 0);
		r->lines = more;
		r->cap = cap;
	}
	r->lines[r->n++] = (struct seen){fnv1a(line, len), len, too_long};
}

/** An error line must be one JSON-RPC 2.0 object whose id is `id` (JSON null for none). */
static void
check_error_line(char *text, const json_t *id, const char *line, size_t len)
{
	static const so_json_limits_t lim = {.max_depth = 140, .max_string = MCP_MAX_LINE,
	                                     .max_items = 1000000};
	json_t *back = NULL;
	char why[200];

	if (text == NULL)
		broken("an error line could not be built", line, len);
	if (strchr(text, '\n') != NULL)
		broken("an error line holds a newline", line, len);
	if (so_json_parse(text, strlen(text), &lim, &back, why, sizeof(why)) != SO_OK ||
	    !json_is_object(back) || strcmp(so_json_str(back, "jsonrpc", ""), "2.0") != 0)
		broken("an error line is not a JSON-RPC 2.0 object", line, len);
	if (id != NULL ? !json_equal(json_object_get(back, "id"), (json_t *)id)
	               : !json_is_null(json_object_get(back, "id")))
		broken("an error line does not carry the id back", line, len);
	json_decref(back);
	free(text);
}

static void
classify(const char *line, size_t len)
{
	mcp_message_t m;
	const json_t *answer_id;

	mcp_parse(line, len, &m);
	switch (m.kind) {
	case MCP_REQUEST:
	case MCP_NOTIFICATION:
		if (m.method == NULL || m.method[0] == '\0' ||
		    strlen(m.method) != json_string_length(json_object_get(m.msg, "method")))
			broken("a request without a method name", line, len);
		if ((m.kind == MCP_REQUEST) != (m.id != NULL))
			broken("a request without an id, or a notification with one", line, len);
		break;
	case MCP_RESPONSE:
		if (m.method != NULL || m.id == NULL)
			broken("a response with a method or without an id", line, len);
		if ((json_object_get(m.msg, "result") == NULL) ==
		    (json_object_get(m.msg, "error") == NULL))
			broken("a response without exactly one of result and error", line, len);
		break;
	case MCP_INVALID:
		if (m.error_code != -32700 && m.error_code != -32600)
			broken("an invalid message with another error code", line, len);
		if (m.error[0] == '\0')
			broken("an invalid message without a reason", line, len);
		if ((m.error_code == -32700) != (m.msg == NULL))
			broken("a parse error for JSON that parsed, or the reverse", line, len);
		/* The reason goes into the error line's message, which must be UTF-8. */
		if (so_utf8_prefix(m.error, strlen(m.error)) != strlen(m.error))
			broken("an invalid message's reason is not UTF-8", line, len);
		break;
	default:
		broken("an unknown kind", line, len);
	}
	if (m.kind != MCP_INVALID) {
		if (!json_is_object(m.msg) || strcmp(so_json_str(m.msg, "jsonrpc", ""), "2.0") != 0)
			broken("a valid message that is not a JSON-RPC 2.0 object", line, len);
		if (m.kind != MCP_NOTIFICATION && !json_is_string(m.id) && !json_is_integer(m.id))
			broken("an id that is neither a string nor an integer", line, len);
	}
	/* As the proxy answers: a parse error has no id to give back. */
	answer_id = m.kind == MCP_INVALID && m.error_code == -32700 ? NULL : m.id;
	check_error_line(mcp_error_line(answer_id, m.kind == MCP_INVALID ? m.error_code : -32601,
	                                m.kind == MCP_INVALID ? m.error : "Method not found"),
	                 answer_id, line, len);
	check_error_line(mcp_tool_error_line(answer_id, m.method != NULL ? m.method : m.error),
	                 answer_id, line, len);
	mcp_message_free(&m);
}

static int
on_line(const char *line, size_t len, bool too_long, void *arg)
{
	struct record *r = arg;

	if (too_long ? len != 0 : len == 0)
		broken("a too-long report with bytes, or an empty line handed over", line, len);
	if (len > FUZZ_MAX_LINE || memchr(line, '\n', len) != NULL)
		broken("a line over the limit or holding a newline", line, len);
	add_seen(r, line, len, too_long);
	if (len > 0 && len <= r->classify) {
		r->classify -= len;
		classify(line, len);
	}
	return 0;
}

/**
 * The lines a plain split gives: each "\n"-terminated piece, over the limit (counting a
 * "\r" before the "\n") reported as too long, else without one "\r", if not empty; and an
 * unfinished tail reported only if already over the limit. Returns whether a tail is left.
 */
static bool
reference_lines(const char *s, size_t n, struct record *r)
{
	size_t start = 0;

	while (start < n) {
		const char *nl = memchr(s + start, '\n', n - start);
		size_t piece = nl != NULL ? (size_t)(nl - (s + start)) : n - start;

		if (piece > FUZZ_MAX_LINE) {
			add_seen(r, "", 0, true);
		} else if (nl != NULL) {
			size_t len = piece > 0 && s[start + piece - 1] == '\r' ? piece - 1 : piece;
			if (len > 0)
				add_seen(r, s + start, len, false);
		}
		if (nl == NULL)
			return true;
		start += piece + 1;
	}
	return false;
}

/** Records the first line, then asks the framer to stop. */
static int
stop_after_first(const char *line, size_t len, bool too_long, void *arg)
{
	on_line(line, len, too_long, arg);
	return 7;
}

static bool
same_line(const struct seen *a, const struct seen *b)
{
	return a->hash == b->hash && a->len == b->len && a->too_long == b->too_long;
}

static bool
same_lines(const struct record *a, const struct record *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++) {
		if (!same_line(&a->lines[i], &b->lines[i]))
			return false;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record chunked = {.classify = FUZZ_MAX_CLASSIFIED}, whole = {0}, expected = {0};
	size_t nsizes, at, turn = 0;
	const char *stream;
	mcp_framer_t f;
	bool tail;

	if (size == 0)
		return 0;
	nsizes = (size_t)(data[0] % 8) + 1;
	if (size < 1 + nsizes)
		return 0;
	stream = (const char *)data + 1 + nsizes;
	size -= 1 + nsizes;

	/* In chunks: a size byte b gives b + 1 bytes up to 199, then (b - 199) * 512. */
	mcp_framer_init(&f, FUZZ_MAX_LINE);
	for (at = 0; at < size; turn++) {
		unsigned b = data[1 + turn % nsizes];
		size_t chunk = b < 200 ? b + 1 : (b - 199) * 512u;
		if (chunk > size - at)
			chunk = size - at;
		if (mcp_framer_feed(&f, stream + at, chunk, on_line, &chunked) != 0)
			broken("the feed stopped though every callback said go on", "", 0);
		at += chunk;
	}
	tail = mcp_framer_pending(&f);
	mcp_framer_free(&f);

	/* All at once. */
	mcp_framer_init(&f, FUZZ_MAX_LINE);
	if (mcp_framer_feed(&f, stream, size, on_line, &whole) != 0)
		broken("the feed stopped though every callback said go on", "", 0);
	if (mcp_framer_pending(&f) != tail)
		broken("the pending state depends on the chunks", "", 0);
	mcp_framer_free(&f);

	if (reference_lines(stream, size, &expected) != tail)
		broken("the pending state is not whether an unfinished line is left", "", 0);
	if (!same_lines(&chunked, &whole))
		broken("fed in chunks and at once give different lines", "", 0);
	if (!same_lines(&whole, &expected))
		broken("the lines are not the stream's lines", "", 0);

	/* A callback that says stop stops the feed at once, with its value. */
	if (expected.n > 0) {
		struct record stop = {0};

		mcp_framer_init(&f, FUZZ_MAX_LINE);
		if (mcp_framer_feed(&f, stream, size, stop_after_first, &stop) != 7 || stop.n != 1 ||
		    !same_line(&stop.lines[0], &expected.lines[0]))
			broken("a callback's non-zero return did not stop the feed", "", 0);
		free(stop.lines);
		mcp_framer_free(&f);
	}
	free(chunked.lines);
	free(whole.lines);
	free(expected.lines);
	return 0;
}
