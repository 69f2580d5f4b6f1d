/**
 * MCP stdio framing and message classification. See mcp.h.
 */
#include "agent/mcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"

void
mcp_framer_init(mcp_framer_t *f, size_t max_line)
{
	so_buf_init(&f->line, max_line);
	f->skipping = false;
}

void
mcp_framer_free(mcp_framer_t *f)
{
	so_buf_free(&f->line);
}

bool
mcp_framer_pending(const mcp_framer_t *f)
{
	return f->line.len > 0 || f->skipping;
}

int
mcp_framer_feed(mcp_framer_t *f, const char *data, size_t n, mcp_line_fn fn, void *arg)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t part = nl != NULL ? (size_t)(nl - data) : n;
		int rc = 0;

		if (!f->skipping && so_buf_add(&f->line, data, part) != SO_OK) {
			/* Over the limit (or out of memory): report once, skip to the newline. */
			so_buf_reset(&f->line);
			f->skipping = true;
			rc = fn("", 0, true, arg);
		}
		data += part;
		n -= part;
		if (nl == NULL)
			return rc;
		data++; /* the newline */
		n--;
		if (f->skipping) {
			f->skipping = false;
		} else if (rc == 0) {
			size_t len = f->line.len;
			if (len > 0 && f->line.data[len - 1] == '\r')
				len--;
			if (len > 0)
				rc = fn(f->line.data, len, false, arg);
		}
		so_buf_reset(&f->line);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void
invalid(mcp_message_t *m, int code, const char *why)
{
	m->kind = MCP_INVALID;
	m->error_code = code;
	snprintf(m->error, sizeof(m->error), "%s", why);
}

void
mcp_parse(const char *line, size_t len, mcp_message_t *m)
{
	static const so_json_limits_t limits = {
		.max_depth = 128, .max_string = MCP_MAX_LINE, .max_items = 1000000};
	char why[120];
	json_t *id, *method, *version;
	bool has_id;

	memset(m, 0, sizeof(*m));
	if (so_json_parse(line, len, &limits, &m->msg, why, sizeof(why)) != SO_OK) {
		char text[160];
		snprintf(text, sizeof(text), "Parse error: %s", why);
		invalid(m, -32700, text);
		return;
	}
	if (!json_is_object(m->msg)) {
		invalid(m, -32600, json_is_array(m->msg)
		                           ? "Invalid Request: batches are not supported"
		                           : "Invalid Request: not a JSON-RPC object");
		return;
	}
	version = json_object_get(m->msg, "jsonrpc");
	if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0) {
		invalid(m, -32600, "Invalid Request: \"jsonrpc\" must be \"2.0\"");
		return;
	}
	id = json_object_get(m->msg, "id");
	has_id = id != NULL;
	if (json_is_null(id) && json_object_get(m->msg, "method") == NULL &&
	    json_object_get(m->msg, "error") != NULL && json_object_get(m->msg, "result") == NULL) {
		/* An error answer to a request that could not be read carries a null id. */
		m->id = id;
		m->kind = MCP_RESPONSE;
		return;
	}
	if (has_id && !json_is_string(id) && !json_is_integer(id)) {
		invalid(m, -32600, "Invalid Request: the id must be a string or an integer");
		return;
	}
	m->id = id;
	method = json_object_get(m->msg, "method");
	if (method != NULL) {
		if (!json_is_string(method) || json_string_length(method) == 0 ||
		    strlen(json_string_value(method)) != json_string_length(method)) {
			invalid(m, -32600, "Invalid Request: the method must be a string");
			return;
		}
		m->method = json_string_value(method);
		m->kind = has_id ? MCP_REQUEST : MCP_NOTIFICATION;
		return;
	}
	if (!has_id ||
	    (json_object_get(m->msg, "result") == NULL) == (json_object_get(m->msg, "error") == NULL)) {
		invalid(m, -32600, "Invalid Request: neither a request nor a response");
		return;
	}
	m->kind = MCP_RESPONSE;
}

void
mcp_message_free(mcp_message_t *m)
{
	json_decref(m->msg);
	memset(m, 0, sizeof(*m));
}

/** Encode a message built around `id` (NULL: JSON null) as one compact line. */
static char *
dump_with_id(json_t *msg, const json_t *id)
{
	char *line = NULL;

	if (msg != NULL &&
	    json_object_set_new(msg, "id", id != NULL ? json_copy((json_t *)id) : json_null()) == 0)
		line = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	return line;
}

char *
mcp_error_line(const json_t *id, int code, const char *message)
{
	return dump_with_id(json_pack("{s:s,s:{s:i,s:s}}", "jsonrpc", "2.0", "error", "code", code,
	                              "message", message),
	                    id);
}

char *
mcp_tool_error_line(const json_t *id, const char *text)
{
	return dump_with_id(json_pack("{s:s,s:{s:[{s:s,s:s}],s:b}}", "jsonrpc", "2.0", "result",
	                              "content", "type", "text", "text", text, "isError", 1),
	                    id);
}
