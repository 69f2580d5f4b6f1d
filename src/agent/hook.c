/**
 * Agent tool hooks mapped to signoff actions. See hook.h and docs/integrations/claude-code.md.
 *
 * Owns nothing global. Every string that reaches an action or a context comes from the
 * agent's JSON as it is (jansson has checked it is UTF-8); the diff excerpt is cut at a
 * character boundary.
 */
#include "agent/hook.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"

/** What a tool does, as far as the action is concerned. */
enum family { F_SHELL, F_WRITE, F_FETCH, F_MCP, F_OTHER };

struct tool {
	const char *name;
	enum family family;
};

static const struct tool claude_tools[] = {
	{"Bash", F_SHELL},      {"Write", F_WRITE},     {"Edit", F_WRITE},
	{"MultiEdit", F_WRITE}, {"WebFetch", F_FETCH},  {NULL, F_OTHER},
};

static const struct tool gemini_tools[] = {
	{"run_shell_command", F_SHELL}, {"write_file", F_WRITE}, {"replace", F_WRITE},
	{"web_fetch", F_FETCH},         {NULL, F_OTHER},
};

struct agent {
	const char *name;       /**< on the command line and in the context */
	const char *title;      /**< in sentences */
	const char *event;      /**< the pre-tool event it must be (NULL: cursor has two) */
	const char *session;    /**< the member naming the session */
	const char *other_kind; /**< action kind of a tool with no family */
	const char *mcp_prefix; /**< how MCP tool names start */
	const struct tool *tools;
};

static const struct agent agents[] = {
	[HOOK_CLAUDE_CODE] = {"claude-code", "Claude Code", "PreToolUse", "session_id",
	                      "claude.tool", "mcp__", claude_tools},
	[HOOK_GEMINI] = {"gemini", "Gemini CLI", "BeforeTool", "session_id", "gemini.tool", "mcp_",
	                 gemini_tools},
	[HOOK_CURSOR] = {"cursor", "Cursor", NULL, "conversation_id", "cursor.tool", NULL, NULL},
};

/** One tool call, whatever the agent: the family and where its fields are. */
struct call {
	const struct agent *agent;
	enum family family;
	const char *tool;    /**< the agent's own name of the tool */
	json_t *input;       /**< owned reference: the tool's arguments (an object) */
	char *server;        /**< owned, F_MCP: kept whole, however long */
	char *mcp_tool;      /**< owned, F_MCP */
};

bool
hook_agent_from_name(const char *name, enum hook_agent *out)
{
	size_t i;

	for (i = 0; i < sizeof(agents) / sizeof(agents[0]); i++) {
		if (strcmp(agents[i].name, name) == 0) {
			*out = (enum hook_agent)i;
			return true;
		}
	}
	return false;
}

const char *
hook_agent_name(enum hook_agent agent)
{
	return agents[agent].name;
}

void
hook_ask_free(struct hook_ask *ask)
{
	json_decref(ask->action);
	json_decref(ask->context);
	free(ask->intent);
	memset(ask, 0, sizeof(*ask));
}

/* ---- shell words ---- */

/** Characters that make a line more than one simple command, outside quotes. */
static const char shell_syntax[] = "|&;<>()$`\\*?[]{}~#!\n\r";

bool
hook_split_simple(const char *line, json_t *words)
{
	so_buf_t word;
	const char *p = line;
	bool ok = true, first = true;
	size_t n = 0;

	so_buf_init(&word, strlen(line) + 1);
	while (ok) {
		bool in_word = false;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		so_buf_reset(&word);
		while (ok && *p != '\0' && *p != ' ' && *p != '\t') {
			const char *end;

			in_word = true;
			if (*p == '\'' || *p == '"') {
				end = strchr(p + 1, *p);
				if (end == NULL || (*p == '"' && strcspn(p + 1, "$`\\") < (size_t)(end - p - 1)))
					ok = false;
				else if (so_buf_add(&word, p + 1, (size_t)(end - p - 1)) != SO_OK)
					ok = false;
				else
					p = end + 1;
			} else if (strchr(shell_syntax, *p) != NULL || (first && *p == '=')) {
				ok = false;
			} else {
				ok = so_buf_add(&word, p, 1) == SO_OK;
				p++;
			}
		}
		if (ok && in_word) {
			/* An empty '' word is a word; json_stringn keeps embedded bytes as they are. */
			json_t *s = json_stringn(word.len > 0 ? word.data : "", word.len);
			ok = s != NULL && json_array_append_new(words, s) == 0;
			n++;
			first = false;
		}
	}
	so_buf_free(&word);
	return ok && n > 0;
}

/* ---- the diff excerpt ---- */

/** Append `s` to `b`, cut at a UTF-8 character boundary if it does not fit; false if cut. */
static bool
put_bounded(so_buf_t *b, const char *s, size_t n)
{
	size_t room = b->max > b->len ? b->max - b->len : 0;

	if (n <= room)
		return so_buf_add(b, s, n) == SO_OK;
	while (room > 0 && ((unsigned char)s[room] & 0xC0) == 0x80)
		room--;
	so_buf_add(b, s, room);
	return false;
}

/** Each line of `text` with `mark` in front; false once the excerpt is full. */
static bool
put_lines(so_buf_t *b, char mark, const char *text)
{
	const char *p = text;

	if (text == NULL)
		return true;
	while (*p != '\0') {
		size_t n = strcspn(p, "\n");

		if (!put_bounded(b, &mark, 1) || !put_bounded(b, p, n) || !put_bounded(b, "\n", 1))
			return false;
		p += n;
		if (*p == '\n')
			p++;
	}
	return true;
}

static bool
put_edit(so_buf_t *b, const json_t *edit)
{
	return put_lines(b, '-', so_json_str(edit, "old_string", NULL)) &&
	       put_lines(b, '+', so_json_str(edit, "new_string", NULL));
}

/** "--- path / +++ path" and the removed and added lines, at most HOOK_MAX_DIFF bytes. */
static json_t *
diff_excerpt(const char *path, const json_t *input)
{
	static const char cut_note[] = "[... cut at 8 KiB]\n";
	const json_t *edits = json_object_get(input, "edits");
	const char *content = so_json_str(input, "content", NULL);
	json_t *edit, *diff = NULL;
	so_buf_t b;
	bool whole;
	size_t i;

	so_buf_init(&b, HOOK_MAX_DIFF - sizeof(cut_note));
	whole = put_bounded(&b, "--- ", 4) && put_bounded(&b, path, strlen(path)) &&
	        put_bounded(&b, "\n+++ ", 5) && put_bounded(&b, path, strlen(path)) &&
	        put_bounded(&b, "\n", 1);
	if (whole && content != NULL)
		whole = put_lines(&b, '+', content);
	else if (whole && json_is_array(edits)) {
		json_array_foreach(edits, i, edit) {
			if (!(whole = put_edit(&b, edit)))
				break;
		}
	} else if (whole)
		whole = put_edit(&b, input);
	b.max = HOOK_MAX_DIFF;
	if (!whole)
		so_buf_adds(&b, cut_note);
	if (b.len > 0)
		diff = json_stringn(b.data, b.len);
	so_buf_free(&b);
	return diff;
}

/* ---- from the agent's JSON to a call ---- */

/** Bounds on a tool's arguments given as JSON text (Cursor sends them so). */
static const so_json_limits_t hook_json_limits = {
	.max_depth = HOOK_MAX_DEPTH, .max_string = HOOK_MAX_INPUT, .max_items = HOOK_MAX_ITEMS};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** Write the message and return -1. */
static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/** Copy the server name (`n` bytes of `server`) and the tool name into the call. */
static bool
set_mcp_names(struct call *call, const char *server, size_t n, const char *tool)
{
	free(call->server);
	free(call->mcp_tool);
	call->server = strndup(server, n);
	call->mcp_tool = strdup(tool);
	return call->server != NULL && call->mcp_tool != NULL;
}

/** Split "<server><sep><tool>" (after the prefix) into the call; false if it has no sep. */
static bool
split_mcp_name(struct call *call, const char *rest, const char *sep)
{
	const char *at = strstr(rest, sep);

	if (at == NULL || at == rest || at[strlen(sep)] == '\0')
		return false;
	/* "mcp_docs_evil_x" could be server docs or docs_evil: a name that splits more than one
	 * way names no server for sure, so it stays a plain tool (no mcp.tool rule matches it). */
	if (strstr(at + strlen(sep), sep) != NULL)
		return false;
	return set_mcp_names(call, rest, (size_t)(at - rest), at + strlen(sep));
}

/**
 * The tool's arguments as an object: given, parsed from a JSON string, or {} when there are
 * none. NULL when they are there but not an object we can read: the call must be refused,
 * never approved as if it had no arguments (`*unreadable` says which NULL it is).
 */
static json_t *
arguments_of(const json_t *value, bool *unreadable)
{
	json_t *parsed = NULL;
	char why[64];

	*unreadable = false;
	if (value == NULL || json_is_null(value))
		return json_object();
	if (json_is_object(value))
		return json_incref((json_t *)value);
	if (json_is_string(value) &&
	    so_json_parse(json_string_value(value), json_string_length(value), &hook_json_limits,
	                  &parsed, why, sizeof(why)) == SO_OK) {
		if (json_is_object(parsed))
			return parsed;
		json_decref(parsed);
	}
	*unreadable = true;
	return NULL;
}

static int
read_cursor(struct call *call, const json_t *input, char *err, size_t errlen)
{
	const char *event = so_json_str(input, "hook_event_name", "");
	bool unreadable;
	const char *command = so_json_str(input, "command", NULL);

	if (strcmp(event, "beforeShellExecution") == 0) {
		if (command == NULL)
			return fail(err, errlen, "%s has no \"command\" string", event);
		call->family = F_SHELL;
		call->tool = "shell";
		call->input = json_pack("{s:s}", "command", command);
		return call->input != NULL ? 0 : fail(err, errlen, "%s", "out of memory");
	}
	if (strcmp(event, "beforeMCPExecution") == 0) {
		const char *tool = so_json_str(input, "tool_name", NULL);
		const char *server = so_json_str(input, "url", command);
		if (tool == NULL)
			return fail(err, errlen, "%s has no \"tool_name\" string", event);
		call->family = F_MCP;
		call->tool = tool;
		if (server == NULL)
			server = "?";
		call->input = arguments_of(json_object_get(input, "tool_input"), &unreadable);
		if (unreadable)
			return fail(err, errlen, "%s", "tool_input is not a JSON object");
		if (call->input == NULL || !set_mcp_names(call, server, strlen(server), tool))
			return fail(err, errlen, "%s", "out of memory");
		return 0;
	}
	return fail(err, errlen,
	            "expected a beforeShellExecution or beforeMCPExecution event, got \"%.64s\"",
	            event);
}

static int
read_call(struct call *call, const json_t *input, char *err, size_t errlen)
{
	const struct agent *agent = call->agent;
	const char *event = so_json_str(input, "hook_event_name", "");
	const struct tool *t;
	const json_t *ctx;
	bool unreadable;

	if (agent->event == NULL)
		return read_cursor(call, input, err, errlen);
	if (strcmp(event, agent->event) != 0) {
		snprintf(err, errlen, "expected a %s event, got \"%.64s\"", agent->event, event);
		return -1;
	}
	call->tool = so_json_str(input, "tool_name", NULL);
	if (call->tool == NULL || call->tool[0] == '\0')
		return fail(err, errlen, "%s", "the input has no \"tool_name\" string");
	call->input = arguments_of(json_object_get(input, "tool_input"), &unreadable);
	if (unreadable)
		return fail(err, errlen, "%s", "tool_input is not a JSON object");
	if (call->input == NULL)
		return fail(err, errlen, "%s", "out of memory");

	call->family = F_OTHER;
	for (t = agent->tools; t->name != NULL; t++) {
		if (strcmp(t->name, call->tool) == 0)
			call->family = t->family;
	}
	if (call->family != F_OTHER ||
	    strncmp(call->tool, agent->mcp_prefix, strlen(agent->mcp_prefix)) != 0)
		return 0;
	ctx = json_object_get(input, "mcp_context");
	if (so_json_str(ctx, "server_name", NULL) != NULL) {
		const char *server = so_json_str(ctx, "server_name", "");
		if (!set_mcp_names(call, server, strlen(server),
		                   so_json_str(ctx, "tool_name", call->tool)))
			return fail(err, errlen, "%s", "out of memory");
		call->family = F_MCP;
	} else if (split_mcp_name(call, call->tool + strlen(agent->mcp_prefix),
	                          agent == &agents[HOOK_CLAUDE_CODE] ? "__" : "_")) {
		call->family = F_MCP;
	}
	return 0;
}

/* ---- from a call to an action ---- */

/** json_object_set_new that tolerates a NULL value by failing; returns 0 or -1. */
static int
put(json_t *obj, const char *key, json_t *value)
{
	return value != NULL ? json_object_set_new(obj, key, value) : -1;
}

static int
shell_action(json_t *action, const json_t *input, char *err, size_t errlen)
{
	const char *line = so_json_str(input, "command", NULL);
	json_t *words;

	if (line == NULL)
		return fail(err, errlen, "%s", "the shell call has no \"command\" string");
	words = json_array();
	if (words == NULL)
		return -1;
	if (!hook_split_simple(line, words)) {
		json_array_clear(words);
		if (json_array_append_new(words, json_string("sh")) != 0 ||
		    json_array_append_new(words, json_string("-c")) != 0 ||
		    json_array_append_new(words, json_string(line)) != 0) {
			json_decref(words);
			return -1;
		}
	}
	if (put(action, "kind", json_string("shell")) != 0 ||
	    put(action, "command_line", json_string(line)) != 0) {
		json_decref(words);
		return -1;
	}
	return put(action, "command", words); /* takes `words`, also when it fails */
}

static int
write_action(json_t *action, json_t *context, const json_t *input, char *err, size_t errlen)
{
	const char *path = so_json_str(input, "file_path", NULL);
	char digest[65];
	json_t *diff;

	if (path == NULL)
		return fail(err, errlen, "%s", "the file write has no \"file_path\" string");
	if (so_json_digest(input, digest) != 0)
		return -1;
	if (put(action, "kind", json_string("file.write")) != 0 ||
	    put(action, "path", json_string(path)) != 0 ||
	    put(action, "input_sha256", json_string(digest)) != 0)
		return -1;
	diff = diff_excerpt(path, input);
	if (diff != NULL && put(context, "diff", diff) != 0)
		return -1;
	return 0;
}

static int
build_action(const struct call *call, json_t *action, json_t *context, char *err,
             size_t errlen)
{
	const char *url = so_json_str(call->input, "url", NULL);

	switch (call->family) {
	case F_SHELL:
		return shell_action(action, call->input, err, errlen);
	case F_WRITE:
		return write_action(action, context, call->input, err, errlen);
	case F_FETCH:
		if (put(action, "kind", json_string("net.fetch")) != 0)
			return -1;
		if (url != NULL)
			return put(action, "url", json_string(url));
		if (so_json_str(call->input, "prompt", NULL) != NULL)
			return put(action, "prompt", json_string(so_json_str(call->input, "prompt", "")));
		return put(action, "arguments", json_incref(call->input));
	case F_MCP:
		return put(action, "kind", json_string("mcp.tool")) != 0 ||
		               put(action, "server", json_string(call->server)) != 0 ||
		               put(action, "tool", json_string(call->mcp_tool)) != 0 ||
		               put(action, "arguments", json_incref(call->input)) != 0
		           ? -1
		           : 0;
	case F_OTHER:
		break;
	}
	return put(action, "kind", json_string(call->agent->other_kind)) != 0 ||
	               put(action, "tool", json_string(call->tool)) != 0 ||
	               put(action, "arguments", json_incref(call->input)) != 0
	           ? -1
	           : 0;
}

/** Copy the string member `key` of `from` into `to`, if there is one. */
static int
copy_str(json_t *to, const json_t *from, const char *key)
{
	const char *s = so_json_str(from, key, NULL);
	return s != NULL ? put(to, key, json_string(s)) : 0;
}

static int
build_context(const struct call *call, const json_t *input, json_t *context)
{
	const json_t *roots = json_object_get(input, "workspace_roots");

	if (put(context, "agent", json_string(call->agent->name)) != 0 ||
	    put(context, "tool", json_string(call->tool)) != 0 ||
	    copy_str(context, input, call->agent->session) != 0 ||
	    copy_str(context, input, "tool_use_id") != 0 || copy_str(context, input, "cwd") != 0)
		return -1;
	if (json_object_get(context, "cwd") == NULL && json_is_string(json_array_get(roots, 0)))
		return put(context, "cwd", json_incref(json_array_get(roots, 0)));
	return 0;
}

static char *
build_intent(const struct call *call)
{
	const char *description = so_json_str(call->input, "description", NULL);
	char text[512];

	if (description != NULL && description[0] != '\0')
		return strdup(description);
	snprintf(text, sizeof(text), "%s wants to use %s", call->agent->title, call->tool);
	text[so_utf8_prefix(text, strlen(text))] = '\0';
	return strdup(text);
}

int
hook_map(enum hook_agent agent, const json_t *input, const char *environment,
         struct hook_ask *out, char *err, size_t errlen)
{
	struct call call = {.agent = &agents[agent]};
	int rc = -1;

	memset(out, 0, sizeof(*out));
	snprintf(err, errlen, "out of memory, or text that is not UTF-8");
	if (!json_is_object(input)) {
		snprintf(err, errlen, "the hook input is not a JSON object");
		return -1;
	}
	if (read_call(&call, input, err, errlen) != 0)
		goto out;
	out->action = json_object();
	out->context = json_object();
	if (out->action == NULL || out->context == NULL ||
	    build_action(&call, out->action, out->context, err, errlen) != 0 ||
	    build_context(&call, input, out->context) != 0)
		goto out;
	if (environment != NULL && put(out->action, "environment", json_string(environment)) != 0)
		goto out;
	out->intent = build_intent(&call);
	if (out->intent != NULL)
		rc = 0;
out:
	json_decref(call.input);
	free(call.server);
	free(call.mcp_tool);
	if (rc != 0)
		hook_ask_free(out);
	return rc;
}

/* ---- the answer ---- */

json_t *
hook_answer(enum hook_agent agent, bool allow, const char *text)
{
	const char *decision = allow ? "allow" : "deny";
	char reason[1024];

	/* The reason may have been cut bytewise on its way here; JSON needs whole characters. */
	snprintf(reason, sizeof(reason), "%s", text);
	reason[so_utf8_prefix(reason, strlen(reason))] = '\0';
	switch (agent) {
	case HOOK_CLAUDE_CODE:
		return json_pack("{s:{s:s,s:s,s:s}}", "hookSpecificOutput", "hookEventName",
		                 "PreToolUse", "permissionDecision", decision,
		                 "permissionDecisionReason", reason);
	case HOOK_GEMINI:
		return json_pack("{s:s,s:s}", "decision", decision, "reason", reason);
	case HOOK_CURSOR:
		return json_pack("{s:s,s:s,s:s}", "permission", decision, "userMessage", reason,
		                 "agentMessage", reason);
	}
	return NULL;
}
