/**
 * MCP over stdio, as the proxy sees it: newline-delimited JSON-RPC 2.0 messages, framed from
 * a byte stream and classified. Pure: no I/O. `signoff mcp-proxy` (src/cli/mcp_proxy.c) does
 * the relaying; the fuzz target fuzz_mcp drives this file with arbitrary bytes.
 */
#ifndef SO_AGENT_MCP_H
#define SO_AGENT_MCP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/buf.h"

/** Longest message (one line) the proxy relays; a longer one is refused, never cut. */
#define MCP_MAX_LINE (16u * 1024u * 1024u)

/**
 * Splits a byte stream into lines. A line is handed over without its "\n" (and without a
 * "\r" before it). A line over the limit is handed over once, empty, with `too_long` set, and
 * the rest of it is skipped.
 */
typedef struct mcp_framer {
	so_buf_t line;
	bool skipping; /**< inside a line that went over the limit */
} mcp_framer_t;

/** Receives one line; return 0 to go on, non-zero to stop mcp_framer_feed(). */
typedef int (*mcp_line_fn)(const char *line, size_t len, bool too_long, void *arg);

void mcp_framer_init(mcp_framer_t *f, size_t max_line);
void mcp_framer_free(mcp_framer_t *f);

/** Feed `n` bytes; calls `fn` for each line completed. Returns 0, or what `fn` returned. */
int mcp_framer_feed(mcp_framer_t *f, const char *data, size_t n, mcp_line_fn fn, void *arg);

/** True if bytes of an unfinished line are held (the stream ended mid-line). */
bool mcp_framer_pending(const mcp_framer_t *f);

enum mcp_kind {
	MCP_INVALID,      /**< not JSON-RPC 2.0 we can route: answer an error, never forward */
	MCP_REQUEST,      /**< method and id */
	MCP_NOTIFICATION, /**< method, no id */
	MCP_RESPONSE,     /**< id and result or error, no method */
};

/** One message, classified. `msg` owns the parse; the other members point into it. */
typedef struct mcp_message {
	enum mcp_kind kind;
	json_t *msg;        /**< owned; NULL if the line was not JSON */
	const char *method; /**< requests and notifications */
	json_t *id;         /**< borrowed from msg: requests and responses */
	int error_code;     /**< MCP_INVALID: -32700 parse error or -32600 invalid request */
	char error[160];    /**< MCP_INVALID: why, for the error message */
} mcp_message_t;

/**
 * Parse and classify one line. Duplicate keys, invalid UTF-8, batches (arrays), ids that are
 * neither string nor integer, and anything nested over 128 deep are MCP_INVALID: a line the
 * proxy cannot read exactly as the server would is never relayed.
 */
void mcp_parse(const char *line, size_t len, mcp_message_t *out);

void mcp_message_free(mcp_message_t *m);

/** `{"jsonrpc":"2.0","id":ID,"error":{"code":CODE,"message":MESSAGE}}`; ID may be NULL. */
char *mcp_error_line(const json_t *id, int code, const char *message);

/** `{"jsonrpc":"2.0","id":ID,"result":{"content":[{"type":"text","text":TEXT}],"isError":true}}`. */
char *mcp_tool_error_line(const json_t *id, const char *text);

#endif
