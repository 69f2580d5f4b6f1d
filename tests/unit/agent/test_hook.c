/*
 * Agent hooks: a tool call as Claude Code, Gemini CLI or Cursor sends it, mapped to the
 * signoff action a policy sees; the answer each agent reads back; shell words only for one
 * simple command; the diff excerpt's bound; and so_utf8_prefix, which every cut relies on.
 */
#include "unit.h"

#include <stdbool.h>

#include "agent/hook.h"
#include "common/json.h"

static json_t *
load(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!v)
		fail_msg("test JSON does not parse: %s: %s", text, jerr.text);
	return v;
}

/** `v` is the JSON `expected` (compared in canonical form, so key order does not matter). */
static void
assert_json(const json_t *v, const char *expected)
{
	json_t *want = load(expected);
	char *got_c = so_json_canonical_str(v), *want_c = so_json_canonical_str(want);
	assert_non_null(got_c);
	assert_non_null(want_c);
	assert_string_equal(got_c, want_c);
	free(got_c);
	free(want_c);
	json_decref(want);
}

/** Map `input` for `agent`; the test fails with the error if it does not map. */
static struct hook_ask
map_ok(enum hook_agent agent, const char *input, const char *environment)
{
	json_t *in = load(input);
	struct hook_ask ask;
	char err[256] = "";
	if (hook_map(agent, in, environment, &ask, err, sizeof(err)) != 0)
		fail_msg("hook_map refused %s: %s", input, err);
	json_decref(in);
	return ask;
}

/** Map `input` for `agent`, which must fail with `why` in the message and nothing left. */
static void
map_fails(enum hook_agent agent, const char *input, const char *why)
{
	json_t *in = load(input);
	struct hook_ask ask;
	char err[256] = "";
	assert_int_equal(hook_map(agent, in, NULL, &ask, err, sizeof(err)), -1);
	assert_contains(err, why);
	assert_null(ask.action);
	assert_null(ask.context);
	assert_null(ask.intent);
	json_decref(in);
}

/** The action, context and intent of mapping `input`. */
static void
assert_maps(enum hook_agent agent, const char *input, const char *environment,
            const char *action, const char *context, const char *intent)
{
	struct hook_ask ask = map_ok(agent, input, environment);
	assert_json(ask.action, action);
	if (context != NULL)
		assert_json(ask.context, context);
	assert_string_equal(ask.intent, intent);
	hook_ask_free(&ask);
}

/* ---- hook_split_simple ---- */

/** Split `line`; `expected` is the JSON array of words, or NULL when it must refuse. */
static void
assert_split(const char *line, const char *expected)
{
	json_t *words = json_array();
	bool simple = hook_split_simple(line, words);
	if (expected == NULL) {
		if (simple)
			fail_msg("\"%s\" was split as a simple command", line);
	} else {
		if (!simple)
			fail_msg("\"%s\" was refused as a simple command", line);
		assert_json(words, expected);
	}
	json_decref(words);
}

static void
test_split_simple_words(void **state)
{
	assert_split("ls -la /tmp", "[\"ls\",\"-la\",\"/tmp\"]");
	assert_split("  kubectl\t rollout  restart\tdeploy/api  ",
	             "[\"kubectl\",\"rollout\",\"restart\",\"deploy/api\"]");
	assert_split("echo héllo ☃", "[\"echo\",\"héllo\",\"☃\"]");
	assert_split("make FOO=bar", "[\"make\",\"FOO=bar\"]");
	assert_split("git log --format=%H", "[\"git\",\"log\",\"--format=%H\"]");
}

static void
test_split_single_quotes_keep_everything(void **state)
{
	assert_split("echo 'a b; c | d && $HOME `id` \\ * \" #'",
	             "[\"echo\",\"a b; c | d && $HOME `id` \\\\ * \\\" #\"]");
	assert_split("echo '$HOME'", "[\"echo\",\"$HOME\"]");
}

static void
test_split_double_quotes_keep_all_but_expansions(void **state)
{
	assert_split("git commit -m \"fix: it's; done | ok > x\"",
	             "[\"git\",\"commit\",\"-m\",\"fix: it's; done | ok > x\"]");
	assert_split("echo \"$HOME\"", NULL);
	assert_split("echo \"${HOME}\"", NULL);
	assert_split("echo \"`id`\"", NULL);
	assert_split("echo \"a\\\"b\"", NULL);
}

static void
test_split_quotes_join_within_a_word(void **state)
{
	assert_split("a'b c'\"d e\"f", "[\"ab cd ef\"]");
	assert_split("echo --msg='x y'", "[\"echo\",\"--msg=x y\"]");
}

static void
test_split_empty_quoted_word_is_a_word(void **state)
{
	assert_split("printf '' x", "[\"printf\",\"\",\"x\"]");
	assert_split("echo \"\"", "[\"echo\",\"\"]");
	assert_split("''", "[\"\"]");
}

static void
test_split_refuses_every_shell_metacharacter(void **state)
{
	static const char syntax[] = "|&;<>()$`\\*?[]{}~#!\n\r";
	const char *c;

	for (c = syntax; *c != '\0'; c++) {
		char line[32];
		snprintf(line, sizeof(line), "echo a%cb", *c);
		assert_split(line, NULL);
		snprintf(line, sizeof(line), "echo %c", *c);
		assert_split(line, NULL);
		/* Inside single quotes it is just a character. */
		snprintf(line, sizeof(line), "echo '%c'", *c);
		char expected[32];
		snprintf(expected, sizeof(expected), "[\"echo\",\"%s\"]",
		         *c == '\\' ? "\\\\" : *c == '\n' ? "\\n" : *c == '\r' ? "\\r" : (char[]){*c, 0});
		assert_split(line, expected);
	}
}

static void
test_split_refuses_lists_pipes_and_substitutions(void **state)
{
	assert_split("ls; rm -rf /", NULL);
	assert_split("ls;rm -rf /", NULL);
	assert_split("ls && rm -rf /", NULL);
	assert_split("ls || rm -rf /", NULL);
	assert_split("cat x | sh", NULL);
	assert_split("echo $(rm -rf /)", NULL);
	assert_split("echo `rm -rf /`", NULL);
	assert_split("rm -rf /tmp/*", NULL);
	assert_split("echo x > /etc/passwd", NULL);
	assert_split("ls\nrm -rf /", NULL);
	assert_split("sleep 1 &", NULL);
}

static void
test_split_assignment_first_word_is_not_a_command(void **state)
{
	assert_split("FOO=bar make install", NULL);
	assert_split("a=b", NULL);
	assert_split("PATH=/tmp ls", NULL);
	/* Later words are arguments, even when they look like assignments. */
	assert_split("env a=b", "[\"env\",\"a=b\"]");
	/* A quoted '=' makes no assignment. */
	assert_split("'a=b' c", "[\"a=b\",\"c\"]");
}

static void
test_split_refuses_unterminated_quotes(void **state)
{
	assert_split("echo 'abc", NULL);
	assert_split("echo \"abc", NULL);
	assert_split("echo 'a'\"", NULL);
	assert_split("'", NULL);
}

static void
test_split_refuses_a_line_without_words(void **state)
{
	assert_split("", NULL);
	assert_split("   ", NULL);
	assert_split(" \t \t", NULL);
}

/* ---- hook_map: Claude Code ---- */

static const char cc_head[] = "{\"session_id\":\"s1\",\"transcript_path\":\"/h/.claude/s1.jsonl\","
                              "\"cwd\":\"/p\",\"hook_event_name\":\"PreToolUse\","
                              "\"tool_use_id\":\"toolu_1\",";

static char *
cc_input(const char *tail)
{
	size_t n = strlen(cc_head) + strlen(tail) + 1;
	char *s = malloc(n);
	assert_non_null(s);
	snprintf(s, n, "%s%s", cc_head, tail);
	return s;
}

static void
test_claude_bash_simple_command_becomes_words(void **state)
{
	char *in = cc_input("\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"git commit -m "
	                    "'fix it'\",\"description\":\"Commit the fix\"}}");
	assert_maps(HOOK_CLAUDE_CODE, in, NULL,
	            "{\"kind\":\"shell\",\"command\":[\"git\",\"commit\",\"-m\",\"fix it\"],"
	            "\"command_line\":\"git commit -m 'fix it'\"}",
	            "{\"agent\":\"claude-code\",\"tool\":\"Bash\",\"session_id\":\"s1\","
	            "\"tool_use_id\":\"toolu_1\",\"cwd\":\"/p\"}",
	            "Commit the fix");
	free(in);
}

static void
test_claude_bash_list_becomes_sh_c_with_environment(void **state)
{
	char *in = cc_input("\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"ls; rm -rf /\"}}");
	assert_maps(HOOK_CLAUDE_CODE, in, "production",
	            "{\"kind\":\"shell\",\"command\":[\"sh\",\"-c\",\"ls; rm -rf /\"],"
	            "\"command_line\":\"ls; rm -rf /\",\"environment\":\"production\"}",
	            NULL, "Claude Code wants to use Bash");
	free(in);
}

static void
test_claude_write_binds_the_input_digest_and_shows_a_diff(void **state)
{
	/*
	 * input_sha256 from Python: hashlib.sha256(json.dumps({"file_path":"/p/a.txt",
	 * "content":"line one\nline two"}, sort_keys=True, separators=(',',':'),
	 * ensure_ascii=False).encode()).hexdigest()
	 */
	char *in = cc_input("\"tool_name\":\"Write\",\"tool_input\":{\"file_path\":\"/p/a.txt\","
	                    "\"content\":\"line one\\nline two\"}}");
	assert_maps(HOOK_CLAUDE_CODE, in, NULL,
	            "{\"kind\":\"file.write\",\"path\":\"/p/a.txt\",\"input_sha256\":"
	            "\"59ec5d1d3e5786492be523acc4a8e454012271ff29e7c65a8dfd44fbe20a8ad0\"}",
	            "{\"agent\":\"claude-code\",\"tool\":\"Write\",\"session_id\":\"s1\","
	            "\"tool_use_id\":\"toolu_1\",\"cwd\":\"/p\",\"diff\":\"--- /p/a.txt\\n+++ "
	            "/p/a.txt\\n+line one\\n+line two\\n\"}",
	            "Claude Code wants to use Write");
	free(in);
}

/** The action's input_sha256 is the digest of `tool_input`, and the diff is `diff`. */
static void
assert_write(enum hook_agent agent, const char *input, const char *tool_input,
             const char *path, const char *diff)
{
	struct hook_ask ask = map_ok(agent, input, NULL);
	json_t *ti = load(tool_input);
	char hex[65];
	assert_int_equal(so_json_digest(ti, hex), SO_OK);
	assert_string_equal(so_json_str(ask.action, "kind", ""), "file.write");
	assert_string_equal(so_json_str(ask.action, "path", ""), path);
	assert_string_equal(so_json_str(ask.action, "input_sha256", ""), hex);
	assert_int_equal(json_object_size(ask.action), 3);
	assert_string_equal(so_json_str(ask.context, "diff", ""), diff);
	json_decref(ti);
	hook_ask_free(&ask);
}

static void
test_claude_edit_and_multiedit_show_old_and_new_lines(void **state)
{
	const char *edit = "{\"file_path\":\"f.c\",\"old_string\":\"int x;\\nint y;\","
	                   "\"new_string\":\"long x;\",\"replace_all\":false}";
	const char *multi = "{\"file_path\":\"g.c\",\"edits\":[{\"old_string\":\"a\",\"new_string\":"
	                    "\"b\"},{\"old_string\":\"c\",\"new_string\":\"d\\ne\"}]}";
	char tail[512];
	char *in;

	snprintf(tail, sizeof(tail), "\"tool_name\":\"Edit\",\"tool_input\":%s}", edit);
	in = cc_input(tail);
	assert_write(HOOK_CLAUDE_CODE, in, edit, "f.c",
	             "--- f.c\n+++ f.c\n-int x;\n-int y;\n+long x;\n");
	free(in);
	snprintf(tail, sizeof(tail), "\"tool_name\":\"MultiEdit\",\"tool_input\":%s}", multi);
	in = cc_input(tail);
	assert_write(HOOK_CLAUDE_CODE, in, multi, "g.c", "--- g.c\n+++ g.c\n-a\n+b\n-c\n+d\n+e\n");
	free(in);
}

static void
test_claude_webfetch_is_a_fetch_of_its_url(void **state)
{
	char *in = cc_input("\"tool_name\":\"WebFetch\",\"tool_input\":{\"url\":"
	                    "\"https://example.com/docs\",\"prompt\":\"Summarise\"}}");
	assert_maps(HOOK_CLAUDE_CODE, in, NULL,
	            "{\"kind\":\"net.fetch\",\"url\":\"https://example.com/docs\"}", NULL,
	            "Claude Code wants to use WebFetch");
	free(in);
}

static void
test_claude_mcp_tool_names_server_and_tool(void **state)
{
	char *in = cc_input("\"tool_name\":\"mcp__github__create_issue\",\"tool_input\":"
	                    "{\"title\":\"Bug\",\"labels\":[\"p1\"]}}");
	assert_maps(HOOK_CLAUDE_CODE, in, "production",
	            "{\"kind\":\"mcp.tool\",\"server\":\"github\",\"tool\":\"create_issue\","
	            "\"arguments\":{\"title\":\"Bug\",\"labels\":[\"p1\"]},"
	            "\"environment\":\"production\"}",
	            "{\"agent\":\"claude-code\",\"tool\":\"mcp__github__create_issue\","
	            "\"session_id\":\"s1\",\"tool_use_id\":\"toolu_1\",\"cwd\":\"/p\"}",
	            "Claude Code wants to use mcp__github__create_issue");
	free(in);
	/* "a" or "a__b" could be the server: a name that splits two ways names no server for
	 * sure, so it stays a plain tool and no mcp.tool rule for server "a" matches it. */
	in = cc_input("\"tool_name\":\"mcp__a__b__c\",\"tool_input\":{}}");
	assert_maps(HOOK_CLAUDE_CODE, in, NULL,
	            "{\"kind\":\"claude.tool\",\"tool\":\"mcp__a__b__c\",\"arguments\":{}}",
	            NULL, "Claude Code wants to use mcp__a__b__c");
	free(in);
}

static void
test_claude_other_tools_keep_their_name_and_arguments(void **state)
{
	char *in = cc_input("\"tool_name\":\"Read\",\"tool_input\":{\"file_path\":\"/etc/passwd\"}}");
	assert_maps(HOOK_CLAUDE_CODE, in, NULL,
	            "{\"kind\":\"claude.tool\",\"tool\":\"Read\",\"arguments\":"
	            "{\"file_path\":\"/etc/passwd\"}}",
	            NULL, "Claude Code wants to use Read");
	free(in);
	/* An MCP-looking name without a tool part is just another tool. */
	in = cc_input("\"tool_name\":\"mcp__github\"}");
	assert_maps(HOOK_CLAUDE_CODE, in, NULL,
	            "{\"kind\":\"claude.tool\",\"tool\":\"mcp__github\",\"arguments\":{}}", NULL,
	            "Claude Code wants to use mcp__github");
	free(in);
}

static void
test_claude_refuses_other_events_and_calls_without_a_tool(void **state)
{
	map_fails(HOOK_CLAUDE_CODE,
	          "{\"hook_event_name\":\"PostToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{}}",
	          "expected a PreToolUse event, got \"PostToolUse\"");
	map_fails(HOOK_CLAUDE_CODE, "{\"tool_name\":\"Bash\",\"tool_input\":{}}",
	          "expected a PreToolUse event");
	map_fails(HOOK_CLAUDE_CODE, "{\"hook_event_name\":\"PreToolUse\",\"tool_input\":{}}",
	          "no \"tool_name\" string");
	map_fails(HOOK_CLAUDE_CODE, "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"\"}",
	          "no \"tool_name\" string");
	map_fails(HOOK_CLAUDE_CODE, "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":7}",
	          "no \"tool_name\" string");
	map_fails(HOOK_CLAUDE_CODE, "[\"PreToolUse\"]", "not a JSON object");
}

static void
test_claude_refuses_tools_without_their_main_field(void **state)
{
	map_fails(HOOK_CLAUDE_CODE,
	          "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{}}",
	          "no \"command\" string");
	map_fails(HOOK_CLAUDE_CODE,
	          "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":"
	          "{\"command\":[\"ls\"]}}",
	          "no \"command\" string");
	map_fails(HOOK_CLAUDE_CODE,
	          "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Write\",\"tool_input\":"
	          "{\"content\":\"x\"}}",
	          "no \"file_path\" string");
}

/* ---- hook_map: Gemini CLI ---- */

static void
test_gemini_tools_map_to_the_same_families(void **state)
{
	assert_maps(HOOK_GEMINI,
	            "{\"session_id\":\"g1\",\"cwd\":\"/w\",\"hook_event_name\":\"BeforeTool\","
	            "\"tool_name\":\"run_shell_command\",\"tool_input\":{\"command\":\"npm test\","
	            "\"description\":\"Run the tests\"}}",
	            NULL,
	            "{\"kind\":\"shell\",\"command\":[\"npm\",\"test\"],\"command_line\":\"npm test\"}",
	            "{\"agent\":\"gemini\",\"tool\":\"run_shell_command\",\"session_id\":\"g1\","
	            "\"cwd\":\"/w\"}",
	            "Run the tests");
	assert_maps(HOOK_GEMINI,
	            "{\"hook_event_name\":\"BeforeTool\",\"tool_name\":\"web_fetch\",\"tool_input\":"
	            "{\"prompt\":\"Summarise https://example.com\"}}",
	            NULL, "{\"kind\":\"net.fetch\",\"prompt\":\"Summarise https://example.com\"}",
	            NULL, "Gemini CLI wants to use web_fetch");
	assert_maps(HOOK_GEMINI,
	            "{\"hook_event_name\":\"BeforeTool\",\"tool_name\":\"web_fetch\",\"tool_input\":"
	            "{\"urls\":[\"https://a\"]}}",
	            NULL, "{\"kind\":\"net.fetch\",\"arguments\":{\"urls\":[\"https://a\"]}}", NULL,
	            "Gemini CLI wants to use web_fetch");
	assert_maps(HOOK_GEMINI,
	            "{\"hook_event_name\":\"BeforeTool\",\"tool_name\":\"read_file\",\"tool_input\":"
	            "{\"absolute_path\":\"/etc/hosts\"}}",
	            NULL, "{\"kind\":\"gemini.tool\",\"tool\":\"read_file\",\"arguments\":"
	            "{\"absolute_path\":\"/etc/hosts\"}}",
	            NULL, "Gemini CLI wants to use read_file");
}

static void
test_gemini_write_file_and_replace_are_file_writes(void **state)
{
	const char *write = "{\"file_path\":\"/w/n.md\",\"content\":\"# Notes\\n- one\"}";
	const char *replace = "{\"file_path\":\"/w/a.go\",\"old_string\":\"return nil\","
	                      "\"new_string\":\"return err\",\"instruction\":\"propagate\"}";
	char in[512];

	snprintf(in, sizeof(in), "{\"hook_event_name\":\"BeforeTool\",\"tool_name\":\"write_file\","
	                         "\"tool_input\":%s}", write);
	assert_write(HOOK_GEMINI, in, write, "/w/n.md", "--- /w/n.md\n+++ /w/n.md\n+# Notes\n+- one\n");
	snprintf(in, sizeof(in), "{\"hook_event_name\":\"BeforeTool\",\"tool_name\":\"replace\","
	                         "\"tool_input\":%s}", replace);
	assert_write(HOOK_GEMINI, in, replace, "/w/a.go",
	             "--- /w/a.go\n+++ /w/a.go\n-return nil\n+return err\n");
}

static void
test_gemini_mcp_tool_from_its_context_or_its_name(void **state)
{
	assert_maps(HOOK_GEMINI,
	            "{\"hook_event_name\":\"BeforeTool\",\"tool_name\":\"mcp_github_create_issue\","
	            "\"tool_input\":{\"title\":\"Bug\"},\"mcp_context\":{\"server_name\":"
	            "\"git_hub\",\"tool_name\":\"create_issue\"}}",
	            NULL, "{\"kind\":\"mcp.tool\",\"server\":\"git_hub\",\"tool\":\"create_issue\","
	            "\"arguments\":{\"title\":\"Bug\"}}",
	            NULL, "Gemini CLI wants to use mcp_github_create_issue");
	assert_maps(HOOK_GEMINI,
	            "{\"hook_event_name\":\"BeforeTool\",\"tool_name\":\"mcp_db_query\","
	            "\"tool_input\":{\"sql\":\"select 1\"}}",
	            NULL, "{\"kind\":\"mcp.tool\",\"server\":\"db\",\"tool\":\"query\","
	            "\"arguments\":{\"sql\":\"select 1\"}}",
	            NULL, "Gemini CLI wants to use mcp_db_query");
}

static void
test_gemini_refuses_other_events(void **state)
{
	map_fails(HOOK_GEMINI,
	          "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"write_file\",\"tool_input\":{}}",
	          "expected a BeforeTool event, got \"PreToolUse\"");
	map_fails(HOOK_GEMINI,
	          "{\"hook_event_name\":\"AfterTool\",\"tool_name\":\"write_file\",\"tool_input\":{}}",
	          "expected a BeforeTool event");
	map_fails(HOOK_GEMINI, "{\"hook_event_name\":\"BeforeTool\"}", "no \"tool_name\" string");
}

/* ---- hook_map: Cursor ---- */

static void
test_cursor_shell_execution_uses_the_first_workspace_root(void **state)
{
	assert_maps(HOOK_CURSOR,
	            "{\"conversation_id\":\"c1\",\"generation_id\":\"g1\",\"hook_event_name\":"
	            "\"beforeShellExecution\",\"command\":\"git status --short\","
	            "\"workspace_roots\":[\"/w\",\"/x\"]}",
	            "staging",
	            "{\"kind\":\"shell\",\"command\":[\"git\",\"status\",\"--short\"],"
	            "\"command_line\":\"git status --short\",\"environment\":\"staging\"}",
	            "{\"agent\":\"cursor\",\"tool\":\"shell\",\"conversation_id\":\"c1\","
	            "\"cwd\":\"/w\"}",
	            "Cursor wants to use shell");
	assert_maps(HOOK_CURSOR,
	            "{\"hook_event_name\":\"beforeShellExecution\",\"command\":\"ls; rm -rf /\","
	            "\"cwd\":\"/here\",\"workspace_roots\":[\"/w\"]}",
	            NULL,
	            "{\"kind\":\"shell\",\"command\":[\"sh\",\"-c\",\"ls; rm -rf /\"],"
	            "\"command_line\":\"ls; rm -rf /\"}",
	            "{\"agent\":\"cursor\",\"tool\":\"shell\",\"cwd\":\"/here\"}",
	            "Cursor wants to use shell");
}

static void
test_cursor_mcp_execution_parses_tool_input_given_as_a_string(void **state)
{
	assert_maps(HOOK_CURSOR,
	            "{\"conversation_id\":\"c1\",\"hook_event_name\":\"beforeMCPExecution\","
	            "\"tool_name\":\"create_issue\",\"tool_input\":\"{\\\"title\\\":\\\"Bug\\\","
	            "\\\"labels\\\":[\\\"p1\\\"]}\",\"url\":\"https://mcp.example.com/sse\"}",
	            NULL,
	            "{\"kind\":\"mcp.tool\",\"server\":\"https://mcp.example.com/sse\",\"tool\":"
	            "\"create_issue\",\"arguments\":{\"title\":\"Bug\",\"labels\":[\"p1\"]}}",
	            "{\"agent\":\"cursor\",\"tool\":\"create_issue\",\"conversation_id\":\"c1\"}",
	            "Cursor wants to use create_issue");
	/* A stdio server is named by its command; an object tool_input is taken as it is. */
	assert_maps(HOOK_CURSOR,
	            "{\"hook_event_name\":\"beforeMCPExecution\",\"tool_name\":\"query\","
	            "\"tool_input\":{\"sql\":\"drop table users\"},\"command\":\"npx -y db-mcp\"}",
	            NULL,
	            "{\"kind\":\"mcp.tool\",\"server\":\"npx -y db-mcp\",\"tool\":\"query\","
	            "\"arguments\":{\"sql\":\"drop table users\"}}",
	            NULL, "Cursor wants to use query");
}

static void
test_cursor_mcp_tool_input_that_is_no_object_is_refused(void **state)
{
	/* Arguments we cannot read must not be approved as if there were none: the call the
	 * agent then makes would carry them. Only an absent or null tool_input means {}. */
	static const char *const inputs[] = {"\"not json\"", "\"[1,2]\"", "\"{\\\"a\\\":1\"", "7",
	                                     NULL};
	char in[256];
	int i;

	for (i = 0; inputs[i] != NULL; i++) {
		snprintf(in, sizeof(in), "{\"hook_event_name\":\"beforeMCPExecution\",\"tool_name\":"
		                         "\"q\",\"tool_input\":%s}", inputs[i]);
		map_fails(HOOK_CURSOR, in, "tool_input is not a JSON object");
	}
	assert_maps(HOOK_CURSOR,
	            "{\"hook_event_name\":\"beforeMCPExecution\",\"tool_name\":\"q\",\"tool_input\":null}",
	            NULL, "{\"kind\":\"mcp.tool\",\"server\":\"?\",\"tool\":\"q\",\"arguments\":{}}",
	            NULL, "Cursor wants to use q");
}

static void
test_cursor_refuses_other_events_and_missing_fields(void **state)
{
	map_fails(HOOK_CURSOR, "{\"hook_event_name\":\"beforeReadFile\",\"file_path\":\"/etc/passwd\"}",
	          "expected a beforeShellExecution or beforeMCPExecution event, "
	          "got \"beforeReadFile\"");
	map_fails(HOOK_CURSOR, "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\"}",
	          "got \"PreToolUse\"");
	map_fails(HOOK_CURSOR, "{\"hook_event_name\":\"beforeShellExecution\"}",
	          "beforeShellExecution has no \"command\" string");
	map_fails(HOOK_CURSOR, "{\"hook_event_name\":\"beforeMCPExecution\",\"url\":\"https://x\"}",
	          "beforeMCPExecution has no \"tool_name\" string");
}

static void
test_mcp_server_name_is_kept_whole(void **state)
{
	/*
	 * Regression (fuzz_hook): the MCP server and tool names were once cut at 255 bytes, so
	 * two servers sharing their first 255 bytes looked the same to a rule and a reviewer,
	 * and a cut inside a character made hook_map fail on a valid call (a Cursor URL of
	 * 130 'é'). The names must arrive whole.
	 */
	char name[301], url[300], in[1024], report[512] = "";
	struct hook_ask ask;
	json_t *input;
	char err[256] = "";
	size_t used = 0;
	int i;

	memset(name, 's', 300);
	name[300] = '\0';
	snprintf(in, sizeof(in), "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"mcp__%s__t\"}",
	         name);
	ask = map_ok(HOOK_CLAUDE_CODE, in, NULL);
	if (strcmp(so_json_str(ask.action, "server", ""), name) != 0)
		used += (size_t)snprintf(report + used, sizeof(report) - used,
		                         "\n  a 300-byte server name became %zu bytes",
		                         strlen(so_json_str(ask.action, "server", "")));
	hook_ask_free(&ask);

	memcpy(url, "https://x/", 10);
	for (i = 0; i < 130; i++)
		memcpy(url + 10 + 2 * i, "é", 2);
	url[10 + 2 * 130] = '\0';
	snprintf(in, sizeof(in), "{\"hook_event_name\":\"beforeMCPExecution\",\"tool_name\":\"t\","
	                         "\"url\":\"%s\"}", url);
	input = load(in);
	if (hook_map(HOOK_CURSOR, input, NULL, &ask, err, sizeof(err)) != 0)
		used += (size_t)snprintf(report + used, sizeof(report) - used,
		                         "\n  a 270-byte non-ASCII server URL was refused: %s", err);
	else if (strcmp(so_json_str(ask.action, "server", ""), url) != 0)
		used += (size_t)snprintf(report + used, sizeof(report) - used,
		                         "\n  a 270-byte server URL was changed");
	hook_ask_free(&ask);
	json_decref(input);
	if (used > 0)
		fail_msg("MCP server names are not kept whole:%s", report);
}

/* ---- the diff excerpt ---- */

static void
test_diff_excerpt_is_bounded_and_cut_between_characters(void **state)
{
	/* One long line of 2-, 3- and 4-byte characters, shifted by 0..3 ASCII bytes. */
	static const char *const chars[] = {"é", "☃", "😀", NULL};
	int c, shift;

	for (c = 0; chars[c] != NULL; c++) {
		for (shift = 0; shift < 4; shift++) {
			size_t w = strlen(chars[c]), n = 12000 / w, i;
			char *content = malloc((size_t)shift + n * w + 1);
			json_t *input = json_object(), *tool_input = json_object();
			struct hook_ask ask;
			char err[256];
			const char *diff;

			assert_non_null(content);
			memset(content, 'x', (size_t)shift);
			for (i = 0; i < n; i++)
				memcpy(content + shift + i * w, chars[c], w);
			content[shift + n * w] = '\0';
			json_object_set_new(tool_input, "file_path", json_string("big.txt"));
			json_object_set_new(tool_input, "content", json_string(content));
			json_object_set_new(input, "hook_event_name", json_string("PreToolUse"));
			json_object_set_new(input, "tool_name", json_string("Write"));
			json_object_set_new(input, "tool_input", tool_input);
			assert_int_equal(hook_map(HOOK_CLAUDE_CODE, input, NULL, &ask, err, sizeof(err)), 0);
			diff = so_json_str(ask.context, "diff", NULL);
			assert_non_null(diff);
			assert_true(strlen(diff) <= HOOK_MAX_DIFF);
			/* All the room is used, but for at most one character's bytes. */
			assert_true(strlen(diff) + 4 >= HOOK_MAX_DIFF);
			assert_int_equal(so_utf8_prefix(diff, strlen(diff)), strlen(diff));
			assert_prefix(diff, shift > 0 ? "--- big.txt\n+++ big.txt\n+x"
			                              : "--- big.txt\n+++ big.txt\n+");
			assert_string_equal(diff + strlen(diff) - strlen("[... cut at 8 KiB]\n"),
			                    "[... cut at 8 KiB]\n");
			hook_ask_free(&ask);
			json_decref(input);
			free(content);
		}
	}
}

static void
test_diff_excerpt_of_many_edits_stops_at_the_bound(void **state)
{
	json_t *input = load("{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"MultiEdit\","
	                     "\"tool_input\":{\"file_path\":\"m.txt\",\"edits\":[]}}");
	json_t *edits = json_object_get(json_object_get(input, "tool_input"), "edits");
	struct hook_ask ask;
	char err[256];
	const char *diff;
	int i;

	for (i = 0; i < 2000; i++)
		json_array_append_new(edits, json_pack("{s:s,s:s}", "old_string", "ünïcödé",
		                                       "new_string", "ÜNÏCÖDÉ"));
	assert_int_equal(hook_map(HOOK_CLAUDE_CODE, input, NULL, &ask, err, sizeof(err)), 0);
	diff = so_json_str(ask.context, "diff", "");
	assert_true(strlen(diff) <= HOOK_MAX_DIFF);
	assert_int_equal(so_utf8_prefix(diff, strlen(diff)), strlen(diff));
	assert_contains(diff, "[... cut at 8 KiB]\n");
	hook_ask_free(&ask);
	json_decref(input);
}

/* ---- hook_answer ---- */

static void
assert_answer(enum hook_agent agent, bool allow, const char *reason, const char *expected)
{
	json_t *answer = hook_answer(agent, allow, reason);
	assert_non_null(answer);
	assert_json(answer, expected);
	json_decref(answer);
}

static void
test_answer_has_each_agents_shape(void **state)
{
	assert_answer(HOOK_CLAUDE_CODE, true, "approved by alice",
	              "{\"hookSpecificOutput\":{\"hookEventName\":\"PreToolUse\","
	              "\"permissionDecision\":\"allow\",\"permissionDecisionReason\":"
	              "\"approved by alice\"}}");
	assert_answer(HOOK_CLAUDE_CODE, false, "denied",
	              "{\"hookSpecificOutput\":{\"hookEventName\":\"PreToolUse\","
	              "\"permissionDecision\":\"deny\",\"permissionDecisionReason\":\"denied\"}}");
	assert_answer(HOOK_GEMINI, true, "ok", "{\"decision\":\"allow\",\"reason\":\"ok\"}");
	assert_answer(HOOK_GEMINI, false, "no", "{\"decision\":\"deny\",\"reason\":\"no\"}");
	assert_answer(HOOK_CURSOR, true, "ok",
	              "{\"permission\":\"allow\",\"userMessage\":\"ok\",\"agentMessage\":\"ok\"}");
	assert_answer(HOOK_CURSOR, false, "no",
	              "{\"permission\":\"deny\",\"userMessage\":\"no\",\"agentMessage\":\"no\"}");
}

static void
test_answer_cuts_a_long_reason_between_characters(void **state)
{
	char reason[3001];
	json_t *answer;
	const char *said;
	int i;

	for (i = 0; i < 1000; i++)
		memcpy(reason + 3 * i, "☃", 3);
	reason[3000] = '\0';
	answer = hook_answer(HOOK_GEMINI, false, reason);
	assert_non_null(answer);
	said = so_json_str(answer, "reason", "");
	/* 1023 bytes fit; 341 snowmen are 1023 bytes. */
	assert_int_equal(strlen(said), 1023);
	assert_memory_equal(said, reason, 1023);
	json_decref(answer);

	reason[1] = 'x'; /* "\xe2" "x": the reason stops before the broken character */
	answer = hook_answer(HOOK_CURSOR, false, reason);
	assert_non_null(answer);
	assert_string_equal(so_json_str(answer, "userMessage", "?"), "");
	json_decref(answer);
	answer = hook_answer(HOOK_CURSOR, false, "é\xff tail");
	assert_non_null(answer);
	assert_string_equal(so_json_str(answer, "userMessage", "?"), "é");
	json_decref(answer);
}

static void
test_agent_names_round_trip(void **state)
{
	enum hook_agent a;

	assert_true(hook_agent_from_name("claude-code", &a));
	assert_int_equal(a, HOOK_CLAUDE_CODE);
	assert_string_equal(hook_agent_name(a), "claude-code");
	assert_true(hook_agent_from_name("gemini", &a));
	assert_int_equal(a, HOOK_GEMINI);
	assert_string_equal(hook_agent_name(a), "gemini");
	assert_true(hook_agent_from_name("cursor", &a));
	assert_int_equal(a, HOOK_CURSOR);
	assert_string_equal(hook_agent_name(a), "cursor");
	assert_false(hook_agent_from_name("claude", &a));
	assert_false(hook_agent_from_name("", &a));
}

/* ---- so_utf8_prefix ---- */

static void
assert_prefix_len(const char *s, size_t n, size_t expected)
{
	size_t got = so_utf8_prefix(s, n);
	if (got != expected) {
		char hex[64] = "";
		size_t i, used = 0;
		for (i = 0; i < n && used + 4 < sizeof(hex); i++)
			used += (size_t)snprintf(hex + used, sizeof(hex) - used, "%02x ",
			                         (unsigned char)s[i]);
		fail_msg("so_utf8_prefix(%s, %zu) = %zu, expected %zu", hex, n, got, expected);
	}
}

#define PREFIX(lit, expected) assert_prefix_len(lit, sizeof(lit) - 1, expected)

static void
test_utf8_prefix_of_valid_text_is_all_of_it(void **state)
{
	PREFIX("", 0);
	PREFIX("plain ascii", 11);
	PREFIX("a\0b", 3);
	PREFIX("\xc3\xa9", 2);                   /* é */
	PREFIX("\xe2\x98\x83", 3);               /* U+2603 */
	PREFIX("\xf0\x9f\x98\x80", 4);           /* U+1F600 */
	PREFIX("\xc2\x80\xdf\xbf", 4);           /* U+0080, U+07FF */
	PREFIX("\xe0\xa0\x80\xef\xbf\xbf", 6);   /* U+0800, U+FFFF */
	PREFIX("\xed\x9f\xbf\xee\x80\x80", 6);   /* U+D7FF, U+E000: either side of surrogates */
	PREFIX("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8); /* U+10000, U+10FFFF */
}

static void
test_utf8_prefix_stops_before_a_truncated_character(void **state)
{
	PREFIX("a\xc3", 1);
	PREFIX("ab\xe2\x98", 2);
	PREFIX("\xf0\x9f\x98", 0);
	PREFIX("x\xc3\xa9\xf0\x9f", 3);
	/* n, not the NUL, ends the text. */
	assert_prefix_len("\xc3\xa9", 1, 0);
	assert_prefix_len("a\xe2\x98\x83", 3, 1);
}

static void
test_utf8_prefix_refuses_overlong_forms(void **state)
{
	PREFIX("a\xc0\xaf", 1);         /* '/' in two bytes */
	PREFIX("\xc1\xbf", 0);
	PREFIX("\xe0\x80\xaf", 0);      /* '/' in three */
	PREFIX("\xe0\x9f\xbf", 0);      /* U+07FF in three */
	PREFIX("\xf0\x80\x80\xaf", 0);  /* '/' in four */
	PREFIX("\xf0\x8f\xbf\xbf", 0);  /* U+FFFF in four */
}

static void
test_utf8_prefix_refuses_surrogates_and_beyond_unicode(void **state)
{
	PREFIX("ok\xed\xa0\x80", 2);        /* U+D800 */
	PREFIX("\xed\xbf\xbf", 0);          /* U+DFFF */
	PREFIX("\xed\xa0\xbd\xed\xb8\x80", 0); /* a surrogate pair in CESU-8 */
	PREFIX("\xf4\x90\x80\x80", 0);      /* U+110000 */
	PREFIX("\xf5\x80\x80\x80", 0);
	PREFIX("\xf8\x88\x80\x80\x80", 0);
	PREFIX("\xff", 0);
	PREFIX("\xfe", 0);
}

static void
test_utf8_prefix_refuses_stray_and_missing_continuations(void **state)
{
	PREFIX("a\x80" "b", 1);
	PREFIX("\xbf", 0);
	PREFIX("\xc3\x41", 0);
	PREFIX("\xe2\x28\xa1", 0);
	PREFIX("\xf0\x9f\x28\x80", 0);
	PREFIX("\xc3\xa9\xc3\xc3", 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_simple_words),
		cmocka_unit_test(test_split_single_quotes_keep_everything),
		cmocka_unit_test(test_split_double_quotes_keep_all_but_expansions),
		cmocka_unit_test(test_split_quotes_join_within_a_word),
		cmocka_unit_test(test_split_empty_quoted_word_is_a_word),
		cmocka_unit_test(test_split_refuses_every_shell_metacharacter),
		cmocka_unit_test(test_split_refuses_lists_pipes_and_substitutions),
		cmocka_unit_test(test_split_assignment_first_word_is_not_a_command),
		cmocka_unit_test(test_split_refuses_unterminated_quotes),
		cmocka_unit_test(test_split_refuses_a_line_without_words),
		cmocka_unit_test(test_claude_bash_simple_command_becomes_words),
		cmocka_unit_test(test_claude_bash_list_becomes_sh_c_with_environment),
		cmocka_unit_test(test_claude_write_binds_the_input_digest_and_shows_a_diff),
		cmocka_unit_test(test_claude_edit_and_multiedit_show_old_and_new_lines),
		cmocka_unit_test(test_claude_webfetch_is_a_fetch_of_its_url),
		cmocka_unit_test(test_claude_mcp_tool_names_server_and_tool),
		cmocka_unit_test(test_claude_other_tools_keep_their_name_and_arguments),
		cmocka_unit_test(test_claude_refuses_other_events_and_calls_without_a_tool),
		cmocka_unit_test(test_claude_refuses_tools_without_their_main_field),
		cmocka_unit_test(test_gemini_tools_map_to_the_same_families),
		cmocka_unit_test(test_gemini_write_file_and_replace_are_file_writes),
		cmocka_unit_test(test_gemini_mcp_tool_from_its_context_or_its_name),
		cmocka_unit_test(test_gemini_refuses_other_events),
		cmocka_unit_test(test_cursor_shell_execution_uses_the_first_workspace_root),
		cmocka_unit_test(test_cursor_mcp_execution_parses_tool_input_given_as_a_string),
		cmocka_unit_test(test_cursor_mcp_tool_input_that_is_no_object_is_refused),
		cmocka_unit_test(test_cursor_refuses_other_events_and_missing_fields),
		cmocka_unit_test(test_mcp_server_name_is_kept_whole),
		cmocka_unit_test(test_diff_excerpt_is_bounded_and_cut_between_characters),
		cmocka_unit_test(test_diff_excerpt_of_many_edits_stops_at_the_bound),
		cmocka_unit_test(test_answer_has_each_agents_shape),
		cmocka_unit_test(test_answer_cuts_a_long_reason_between_characters),
		cmocka_unit_test(test_agent_names_round_trip),
		cmocka_unit_test(test_utf8_prefix_of_valid_text_is_all_of_it),
		cmocka_unit_test(test_utf8_prefix_stops_before_a_truncated_character),
		cmocka_unit_test(test_utf8_prefix_refuses_overlong_forms),
		cmocka_unit_test(test_utf8_prefix_refuses_surrogates_and_beyond_unicode),
		cmocka_unit_test(test_utf8_prefix_refuses_stray_and_missing_continuations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
