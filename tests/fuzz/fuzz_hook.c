/*
 * A coding agent's hook input as `signoff hook` reads it: the first byte picks the agent
 * (low nibble mod 3: 0 claude-code, 1 gemini, 2 cursor) and, with bit 0x40, passes
 * `--env production`; the rest is parsed with the limits of src/cli/hook.c read_input and
 * mapped with hook_map. So "0{...}" is a Claude Code input and "B{...}" a Cursor one with an
 * environment.
 *
 * What a mapped ask must be: an action object with a string kind the agent may produce; a
 * shell action whose words are exactly hook_split_simple's split of its command line, or
 * `sh -c LINE` when that split refuses; a diff excerpt within HOOK_MAX_DIFF and valid UTF-8;
 * MCP server and tool names that spell the tool's name uncut; a digest; an answer in every
 * agent's format. The raw bytes also go through hook_split_simple directly, checked against
 * an independent reading of shell quoting.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/hook.h"
#include "common/error.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char environment[] = "production";

static void
broken(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_hook: %s: %s\n", what, detail ? detail : "");
	abort();
}

/* ---- an independent reading of one simple command ---- */

/** What no simple command may hold outside quotes: lists, pipes, redirections, expansions. */
static bool
is_shell_syntax(char c)
{
	switch (c) {
	case ';': case '|': case '&': case '$': case '`': case '<': case '>': case '(': case ')':
	case '\\': case '*': case '?': case '[': case ']': case '{': case '}': case '~': case '#':
	case '!': case '\n': case '\r':
		return true;
	default:
		return false;
	}
}

static bool
is_name_char(char c, bool first)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (!first && c >= '0' && c <= '9');
}

/**
 * Walk `line` one character at a time as sh would tokenise it, appending each word to
 * `words`. True only when the line is one simple command: no syntax character outside
 * quotes, no $ ` \ inside double quotes, every quote closed, at least one word, and the
 * first word not an assignment (NAME=...).
 */
static bool
reference_split(const char *line, json_t *words)
{
	enum { OUT, SINGLE, DOUBLE } state = OUT;
	size_t len = strlen(line), wlen = 0, nwords = 0;
	char *word = malloc(len + 1);
	bool in_word = false, safe = true;
	/* The first word so far is NAME chars, all unquoted (an assignment if '=' follows). */
	bool name_so_far = true;
	size_t i;

	if (word == NULL)
		broken("out of memory", NULL);
	for (i = 0; i <= len && safe; i++) {
		char c = line[i];

		if (state == SINGLE) {
			if (c == '\0')
				safe = false;
			else if (c == '\'')
				state = OUT;
			else
				word[wlen++] = c;
			continue;
		}
		if (state == DOUBLE) {
			if (c == '\0' || c == '$' || c == '`' || c == '\\')
				safe = false;
			else if (c == '"')
				state = OUT;
			else
				word[wlen++] = c;
			continue;
		}
		if (c == '\0' || c == ' ' || c == '\t') {
			if (in_word) {
				if (json_array_append_new(words, json_stringn(word, wlen)) != 0)
					broken("out of memory", NULL);
				nwords++;
				wlen = 0;
				in_word = false;
			}
			continue;
		}
		if (nwords == 0) {
			if (c == '=' && name_so_far && wlen > 0)
				safe = false; /* NAME=value: an assignment, not a command */
			else if (c == '\'' || c == '"' || !is_name_char(c, wlen == 0))
				name_so_far = false;
		}
		in_word = true;
		if (c == '\'')
			state = SINGLE;
		else if (c == '"')
			state = DOUBLE;
		else if (is_shell_syntax(c))
			safe = false;
		else
			word[wlen++] = c;
	}
	free(word);
	return safe && state == OUT && nwords > 0;
}

/** hook_split_simple on `line`; when it says "simple", the reference must agree word for word. */
static bool
checked_split(const char *line, json_t **words_out)
{
	json_t *words = json_array(), *ref = json_array();
	bool simple;

	if (words == NULL || ref == NULL)
		broken("out of memory", NULL);
	simple = hook_split_simple(line, words);
	if (simple) {
		if (!reference_split(line, ref))
			broken("hook_split_simple accepted a line that is not one simple command", line);
		if (!json_equal(words, ref))
			broken("hook_split_simple split differently from the reference", line);
	}
	json_decref(ref);
	if (words_out != NULL)
		*words_out = words;
	else
		json_decref(words);
	return simple;
}

/* ---- the mapped ask ---- */

static bool
is_utf8(const char *s, size_t n)
{
	return so_utf8_prefix(s, n) == n;
}

static void
check_shell(const json_t *action)
{
	const json_t *command = json_object_get(action, "command");
	const char *line = so_json_str(action, "command_line", NULL);
	json_t *words = NULL, *arg;
	size_t i;

	if (!json_is_array(command) || json_array_size(command) == 0)
		broken("a shell action without a command array", NULL);
	json_array_foreach(command, i, arg) {
		if (!json_is_string(arg))
			broken("a shell word that is not a string", NULL);
	}
	if (line == NULL)
		broken("a shell action without its command_line", NULL);
	if (checked_split(line, &words)) {
		if (!json_equal(words, command))
			broken("the command is not the split of the command line", line);
	} else {
		json_t *wrapped = json_pack("[s,s,s]", "sh", "-c", line);
		if (wrapped == NULL)
			broken("out of memory", NULL);
		if (!json_equal(wrapped, command))
			broken("a line that is not simple did not become sh -c LINE", line);
		json_decref(wrapped);
	}
	json_decref(words);
}

static void
check_write(const json_t *action, const json_t *context)
{
	const char *digest = so_json_str(action, "input_sha256", "");
	const json_t *diff = json_object_get(context, "diff");
	size_t i;

	if (so_json_str(action, "path", NULL) == NULL)
		broken("a file.write without a path", NULL);
	if (strlen(digest) != 64)
		broken("a file.write without a sha256 of its input", digest);
	for (i = 0; i < 64; i++) {
		if (strchr("0123456789abcdef", digest[i]) == NULL)
			broken("input_sha256 is not lowercase hex", digest);
	}
	if (diff == NULL)
		return;
	if (!json_is_string(diff))
		broken("the diff excerpt is not a string", NULL);
	if (json_string_length(diff) > HOOK_MAX_DIFF)
		broken("the diff excerpt is over HOOK_MAX_DIFF", NULL);
	if (!is_utf8(json_string_value(diff), json_string_length(diff)))
		broken("the diff excerpt is not UTF-8", NULL);
}

static void
check_answer(enum hook_agent agent, bool allow, const char *reason)
{
	json_t *answer = hook_answer(agent, allow, reason);
	const char *said = NULL;

	if (answer == NULL)
		broken("hook_answer returned NULL", reason);
	switch (agent) {
	case HOOK_CLAUDE_CODE:
		said = so_json_str(json_object_get(answer, "hookSpecificOutput"),
		                   "permissionDecisionReason", NULL);
		break;
	case HOOK_GEMINI:
		said = so_json_str(answer, "reason", NULL);
		break;
	case HOOK_CURSOR:
		said = so_json_str(answer, "userMessage", NULL);
		break;
	}
	/* The reason is the intent, cut (at a character boundary) only when it is long. */
	if (said == NULL || strncmp(said, reason, strlen(said)) != 0 ||
	    (strlen(said) < strlen(reason) && strlen(said) + 3 < 1023))
		broken("the answer's reason is not the reason given", reason);
	json_decref(answer);
}

/**
 * An MCP tool named by Claude Code or Gemini ("mcp__SERVER__TOOL", "mcp_SERVER_TOOL")
 * without an mcp_context: the action's server and tool spell that name again, uncut.
 */
static void
check_mcp_name(enum hook_agent agent, const json_t *input, const json_t *action)
{
	const char *name = so_json_str(input, "tool_name", "");
	const char *server = so_json_str(action, "server", "");
	const char *tool = so_json_str(action, "tool", "");
	const char *prefix = agent == HOOK_CLAUDE_CODE ? "mcp__" : "mcp_";
	const char *sep = agent == HOOK_CLAUDE_CODE ? "__" : "_";
	size_t np = strlen(prefix), ns = strlen(server), nsep = strlen(sep);

	if (agent == HOOK_CURSOR ||
	    so_json_str(json_object_get(input, "mcp_context"), "server_name", NULL) != NULL)
		return;
	if (strncmp(name, prefix, np) != 0 || strncmp(name + np, server, ns) != 0 ||
	    strncmp(name + np + ns, sep, nsep) != 0 || strcmp(name + np + ns + nsep, tool) != 0)
		broken("the MCP server and tool do not spell the tool's name", name);
}

static void
check_ask(enum hook_agent agent, bool with_env, const json_t *input,
          const struct hook_ask *ask)
{
	static const char *const other_kind[] = {
		[HOOK_CLAUDE_CODE] = "claude.tool", [HOOK_GEMINI] = "gemini.tool",
		[HOOK_CURSOR] = "cursor.tool"};
	const char *kind = so_json_str(ask->action, "kind", NULL);
	char digest[65];

	if (!json_is_object(ask->action) || kind == NULL)
		broken("the action is not an object with a string kind", NULL);
	if (!json_is_object(ask->context) || ask->intent == NULL)
		broken("an ask without its context or intent", NULL);
	if (strcmp(so_json_str(ask->context, "agent", ""), hook_agent_name(agent)) != 0)
		broken("the context names another agent", NULL);
	if (agent != HOOK_CURSOR && strcmp(so_json_str(ask->context, "tool", ""),
	                                   so_json_str(input, "tool_name", "?")) != 0)
		broken("the context names another tool", NULL);
	if (with_env != (json_object_get(ask->action, "environment") != NULL) ||
	    (with_env && strcmp(so_json_str(ask->action, "environment", ""), environment) != 0))
		broken("the environment given is not the action's", NULL);
	if (strcmp(kind, "shell") == 0) {
		check_shell(ask->action);
	} else if (strcmp(kind, "file.write") == 0) {
		check_write(ask->action, ask->context);
	} else if (strcmp(kind, "mcp.tool") == 0) {
		if (so_json_str(ask->action, "server", NULL) == NULL ||
		    so_json_str(ask->action, "tool", NULL) == NULL ||
		    !json_is_object(json_object_get(ask->action, "arguments")))
			broken("an mcp.tool action without server, tool and arguments", NULL);
		check_mcp_name(agent, input, ask->action);
	} else if (strcmp(kind, "net.fetch") != 0 && strcmp(kind, other_kind[agent]) != 0) {
		broken("an action kind this agent cannot produce", kind);
	}
	if (strcmp(kind, "file.write") != 0 && json_object_get(ask->context, "diff") != NULL)
		broken("a diff excerpt for an action that writes no file", kind);
	if (!is_utf8(ask->intent, strlen(ask->intent)))
		broken("the intent is not UTF-8", NULL);
	if (so_json_digest(ask->action, digest) != SO_OK)
		broken("the action has no digest", NULL);
	check_answer(agent, true, ask->intent);
	check_answer(agent, false, ask->intent);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The limits of src/cli/hook.c read_input. */
	static const so_json_limits_t limits = {.max_depth = 64, .max_string = HOOK_MAX_INPUT,
	                                        .max_items = 100000};
	enum hook_agent agent;
	bool with_env;
	struct hook_ask ask;
	json_t *input = NULL;
	char err[256], why[200];
	char *line;

	if (size == 0 || size - 1 > HOOK_MAX_INPUT)
		return 0;
	agent = (enum hook_agent)((data[0] & 0x0f) % 3);
	with_env = (data[0] & 0x40) != 0;
	data++;
	size--;

	/* The bytes as one command line (up to the first NUL). */
	line = malloc(size + 1);
	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	checked_split(line, NULL);
	free(line);

	if (size == 0 ||
	    so_json_parse((const char *)data, size, &limits, &input, why, sizeof(why)) != SO_OK)
		return 0;
	err[0] = '\0';
	if (hook_map(agent, input, with_env ? environment : NULL, &ask, err, sizeof(err)) != 0) {
		if (err[0] == '\0' || ask.action != NULL || ask.context != NULL || ask.intent != NULL)
			broken("hook_map failed without a message, or left an ask behind", err);
	} else {
		check_ask(agent, with_env, input, &ask);
		hook_ask_free(&ask);
	}
	json_decref(input);
	return 0;
}
