/**
 * Agent tool hooks: what Claude Code (PreToolUse), Gemini CLI (BeforeTool) and Cursor
 * (beforeShellExecution, beforeMCPExecution) send about a tool call, mapped to one signoff
 * action, and the answer each agent reads back. Pure: no I/O, no clock; the `signoff hook`
 * verb (src/cli/hook.c) does the asking.
 *
 * One mapping serves every agent: each agent's tool names are looked up in its own table to
 * one family (shell, file write, fetch, MCP tool, other), and the family builds the action.
 */
#ifndef SO_AGENT_HOOK_H
#define SO_AGENT_HOOK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/** Largest hook input read from stdin. */
#define HOOK_MAX_INPUT (1024u * 1024u)
/** Deepest nesting and most items of one list or object in hook input. */
#define HOOK_MAX_DEPTH 64
#define HOOK_MAX_ITEMS 100000
/** Largest diff excerpt put in the request's context. */
#define HOOK_MAX_DIFF 8192u

enum hook_agent { HOOK_CLAUDE_CODE, HOOK_GEMINI, HOOK_CURSOR };

/** What to submit for one tool call; every member is owned (hook_ask_free). */
struct hook_ask {
	json_t *action;  /**< {"kind", ...}; see docs/integrations/claude-code.md */
	json_t *context; /**< {"agent", "session_id", "cwd", "diff"?, ...} */
	char *intent;    /**< the tool's own description, or a plain sentence */
};

/** The agent named `name` ("claude-code", "gemini", "cursor"); false if unknown. */
bool hook_agent_from_name(const char *name, enum hook_agent *out);

/** The agent's name as on the command line. */
const char *hook_agent_name(enum hook_agent agent);

/**
 * Map one hook input (the parsed stdin) to an ask. `environment` (may be NULL) is added to
 * the action. Returns 0, or -1 with a message in `err` when the input is not a tool call of
 * that agent's pre-tool event (wrong event, missing tool name, non-text fields).
 */
int hook_map(enum hook_agent agent, const json_t *input, const char *environment,
             struct hook_ask *out, char *err, size_t errlen);

void hook_ask_free(struct hook_ask *ask);

/** The answer the agent reads on stdout: allow or deny with `reason`. NULL on ENOMEM. */
json_t *hook_answer(enum hook_agent agent, bool allow, const char *reason);

/**
 * Split a shell command line into words when it is one simple command: blanks separate
 * words; '...' quotes anything; "..." quotes anything but $, ` and \. Returns false, leaving
 * `words` with whatever it appended, when the line uses any other shell syntax (pipes, lists,
 * redirections, expansions, globs, comments, an assignment first) or has no word: then
 * a policy must see it as `sh -c LINE`.
 */
bool hook_split_simple(const char *line, json_t *words);

#endif
