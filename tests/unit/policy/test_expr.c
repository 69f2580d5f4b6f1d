/*
 * The policy expression language (src/policy/expr.c): lexer, parser, type checker and the
 * three-valued evaluator, against requests built by hand. Every error names its line and
 * column; every operator is tried on present and on absent fields; evaluation allocates
 * nothing and terminates.
 */
#include "unit.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "policy/expr.h"

/* ---- fixtures ---- */

static char *bot_groups[] = {"bots", "deployers", NULL};
static char *sre_groups[] = {"sre", NULL};

static so_principal_t deploy_bot = {.id = "deploy-bot", .kind = SO_KIND_AGENT, .owner = "alice",
                                    .team = "platform", .groups = bot_groups};
static so_principal_t alice = {.id = "alice", .kind = SO_KIND_HUMAN, .team = "sre-team",
                               .groups = sre_groups};
/* A principal with nothing optional set: no owner, no team, no groups. */
static so_principal_t bare = {.id = "ci", .kind = SO_KIND_SERVICE};

#define SHELL_ACTION                                                                       \
	"{\"kind\":\"shell\",\"command\":[\"kubectl\",\"rollout\",\"restart\",\"deploy/api\"],"   \
	"\"resource\":\"deploy/api\",\"environment\":\"production\"}"
#define MCP_ACTION                                                                         \
	"{\"kind\":\"mcp\",\"tool\":\"github.create_issue\",\"arguments\":{\"repo\":\"acme/api\"," \
	"\"count\":3,\"labels\":[\"bug\",\"p1\"]}}"
#define CONTEXT                                                                            \
	"{\"ticket\":\"INC-4411\",\"tags\":[\"prod\",\"urgent\"],\"n\":1,\"neg\":-1,"               \
	"\"two\":2.0,\"ratio\":0.5,\"flag\":true,\"off\":false,\"nothing\":null,\"one\":\"1\","     \
	"\"nested\":{\"a\":{\"b\":\"deep\"}},\"outer\":[[\"a\",\"deep\"],[\"b\"]],"                 \
	"\"items\":[{\"name\":\"x\",\"size\":1},{\"name\":\"y\"}],\"empty\":[],"                   \
	"\"mixed\":[\"a\",1,null],\"obj\":{\"k\":1},\"obj2\":{\"k\":1}}"

struct fx {
	so_request_t shell, mcp, bare;
	json_t *reasons;
	so_expr_input_t in;      /* the shell request by deploy-bot, owner alice */
	so_expr_input_t mcp_in;  /* an MCP call by deploy-bot */
	so_expr_input_t bare_in; /* a shell request by ci: no owner, context, intent, reasons */
};

static struct fx fx;

static json_t *
json_of(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);
	if (!v)
		fail_msg("test JSON does not parse: %s: %s", text, jerr.text);
	return v;
}

static int
setup(void **state)
{
	memset(&fx, 0, sizeof(fx));
	fx.shell.requester = "deploy-bot";
	fx.shell.on_behalf_of = "alice";
	fx.shell.owner = "alice";
	fx.shell.action = json_of(SHELL_ACTION);
	fx.shell.intent = "restart after INC-4411";
	fx.shell.context = json_of(CONTEXT);
	fx.mcp.requester = "deploy-bot";
	fx.mcp.action = json_of(MCP_ACTION);
	fx.bare.requester = "ci";
	fx.bare.action = json_of(SHELL_ACTION);
	fx.reasons = json_of("[\"new-command\",\"off-hours\"]");
	fx.in = (so_expr_input_t){.request = &fx.shell, .requester = &deploy_bot, .owner = &alice,
	                          .hour = 2, .minute = 10, .weekday = 2, .anomaly_score = 0.25,
	                          .anomaly_reasons = fx.reasons};
	fx.mcp_in = fx.in;
	fx.mcp_in.request = &fx.mcp;
	fx.bare_in = (so_expr_input_t){.request = &fx.bare, .requester = &bare, .hour = 23,
	                               .minute = 59, .weekday = 6};
	return 0;
}

static int
teardown(void **state)
{
	json_decref(fx.shell.action);
	json_decref(fx.shell.context);
	json_decref(fx.mcp.action);
	json_decref(fx.bare.action);
	json_decref(fx.reasons);
	return 0;
}

static const char *
tri_name(enum so_tri t)
{
	return t == SO_TRUE ? "true" : t == SO_FALSE ? "false" : t == SO_UNKNOWN ? "unknown" : "?";
}

static so_expr_t *
compile_ok(const char *text, enum so_expr_kind kind)
{
	so_expr_t *e = NULL;
	int line = 0, col = 0;
	char err[256] = "";
	int rc = so_expr_compile(text, kind, &e, &line, &col, err, sizeof(err));
	if (rc != SO_OK)
		fail_msg("`%s` does not compile: %d:%d: %s", text, line, col, err);
	assert_non_null(e);
	assert_string_equal(so_expr_text(e), text);
	return e;
}

/* Compile must fail at line:col with a message containing `part`. */
static void
refused_at(const char *text, enum so_expr_kind kind, int want_line, int want_col,
           const char *part)
{
	so_expr_t *e = (so_expr_t *)0x1;
	int line = 0, col = 0;
	char err[256] = "";
	int rc = so_expr_compile(text, kind, &e, &line, &col, err, sizeof(err));
	if (rc == SO_OK) {
		so_expr_free(e);
		fail_msg("`%s` compiled; expected an error at %d:%d containing \"%s\"", text,
		         want_line, want_col, part);
	}
	assert_int_equal(rc, SO_EINVAL);
	assert_null(e);
	if (line != want_line || col != want_col || !strstr(err, part))
		fail_msg("`%s`: got %d:%d \"%s\"; expected %d:%d containing \"%s\"", text, line, col,
		         err, want_line, want_col, part);
}

#define refused(text, col, part) refused_at((text), SO_EXPR_CONDITION, 1, (col), (part))

/* cmocka reports the helper's line; name the caller's line in the message. */
#define fail_at_line(file, line, fmt, ...) fail_msg("%s:%d: " fmt, (file), (line), __VA_ARGS__)

static enum so_tri
eval_in(const char *text, const so_expr_input_t *in)
{
	so_expr_t *e = compile_ok(text, SO_EXPR_CONDITION);
	const char *absent = (const char *)0x1;
	size_t absent_len = 99;
	enum so_tri t = so_expr_eval(e, in, &absent, &absent_len);
	if (t != SO_UNKNOWN && (absent != NULL || absent_len != 0))
		fail_msg("`%s` is %s but names an absent field", text, tri_name(t));
	so_expr_free(e);
	return t;
}

static void
check_tri(const char *text, const so_expr_input_t *in, enum so_tri want, const char *file,
          int line)
{
	enum so_tri got = eval_in(text, in);
	if (got != want)
		fail_at_line(file, line, "`%s` is %s, expected %s", text, tri_name(got), tri_name(want));
}

#define is_true(text) check_tri((text), &fx.in, SO_TRUE, __FILE__, __LINE__)
#define is_false(text) check_tri((text), &fx.in, SO_FALSE, __FILE__, __LINE__)
#define is_unknown(text) check_tri((text), &fx.in, SO_UNKNOWN, __FILE__, __LINE__)

/* ---- lexing and parsing: literals ---- */

static void
test_int_literals(void **state)
{
	is_true("0 == 0");
	is_true("42 == 42");
	is_true("007 == 7");
	is_true("9223372036854775807 > 9223372036854775806");
	is_false("1 == 2");
}

static void
test_double_literals_compare_with_ints(void **state)
{
	is_true("1.5 > 1");
	is_true("2.0 == 2");
	is_true("0.25 < 0.5");
	is_true("anomaly.score == 0.25");
}

static void
test_double_quoted_and_single_quoted_strings_are_the_same(void **state)
{
	is_true("\"abc\" == 'abc'");
	is_true("'' == \"\"");
	is_true("'say \"hi\"' == \"say \\\"hi\\\"\"");
	is_true("\"it's\" == 'it\\'s'");
}

static void
test_each_escape_decodes(void **state)
{
	is_true("size('\\\\') == 1 && '\\\\'.startsWith('\\u005c')");
	is_true("'\\\"' == '\\u0022'");
	is_true("\"\\'\" == '\\u0027'");
	is_true("'\\n' == '\\u000a'");
	is_true("'\\t' == '\\u0009'");
	is_true("'\\r' == '\\u000D'");
	/* \uXXXX becomes UTF-8: one, two and three bytes. */
	is_true("'\\u0041' == 'A'");
	is_true("'\\u00e9' == '\xc3\xa9' && size('\\u00e9') == 2");
	is_true("'\\u20AC' == '\xe2\x82\xac' && size('\\u20ac') == 3");
}

static void
test_true_false_null_literals(void **state)
{
	is_true("true");
	is_false("false");
	is_true("null == null");
	is_false("null != null");
	is_true("context.nothing == null");
	is_false("context.ticket == null");
}

static void
test_list_literals(void **state)
{
	is_true("[] == []");
	is_true("[1, 2, 3] == [1, 2, 3]");
	is_false("[1, 2, 3] == [1, 2]");
	is_false("[1, 2, 3] == [1, 2, 4]");
	is_true("size(['a', 'b']) == 2");
	is_true("[[1], [2, 3]][1][0] == 2");
	is_true("['kubectl', 'rollout', 'restart', 'deploy/api'] == action.command");
	is_true("2 in [1, 2.0]");
}

static void
test_keywords_need_whole_words(void **state)
{
	/* `inx`, `trueish` are names, not keywords; unknown names are refused. */
	refused("inx == 1", 1, "unknown name 'inx'");
	refused("trueish", 1, "unknown name 'trueish'");
}

/* ---- parsing: precedence, parentheses, calls, indexing ---- */

static void
test_and_binds_tighter_than_or(void **state)
{
	is_true("true || true && false");   /* true || (true && false) */
	is_true("false && false || true");  /* (false && false) || true */
	is_false("(true || true) && false");
	is_false("false && (false || true)");
}

static void
test_comparisons_bind_tighter_than_and(void **state)
{
	is_true("1 == 1 && 2 == 2");
	is_true("1 == 2 || 'a' in ['a'] && 3 > 2");
	/* If && bound tighter, `1 == (1 && 2) == 2` would be refused. */
}

static void
test_not_binds_tighter_than_comparisons(void **state)
{
	/* `!1 == 2` is `(!1) == 2`, and `!1` is refused; `!(1 == 2)` is fine. */
	refused("!1 == 2", 2, "'!' needs true or false");
	is_true("!(1 == 2)");
	is_true("!false && true");
	is_true("!!true");
	is_false("!true || false");
}

static void
test_parentheses_group(void **state)
{
	is_true("((((true))))");
	is_true("(1 == 1) == (2 == 2)");
	is_false("!(true || false)");
}

static void
test_member_calls_and_function_calls(void **state)
{
	is_true("action.command.size() == 4");
	is_true("size(action.command) == 4");
	is_true("intent.startsWith('restart')");
	is_true("'abc'.endsWith('bc')");
	is_true("has(context.ticket) && context.ticket.contains('-')");
}

static void
test_indexing_lists_and_maps(void **state)
{
	is_true("action.command[0] == 'kubectl'");
	is_true("action.command[3] == 'deploy/api'");
	is_true("action['kind'] == 'shell'");
	is_true("context['nested']['a'].b == 'deep'");
	is_true("context.tags[context.n] == 'urgent'");
	is_unknown("action.command[4] == 'x'");
}

static void
test_negative_index_from_a_value_counts_from_the_end(void **state)
{
	/* context.neg is -1 */
	is_true("action.command[context.neg] == 'deploy/api'");
	is_true("context.tags[context.neg] == 'urgent'");
}

static void
test_negative_index_literal_counts_from_the_end(void **state)
{
	/* expr.c: "action.command[-1] is the last argument" — so it must be writable. */
	is_true("action.command[-1] == 'deploy/api'");
	is_true("action.command[-4] == 'kubectl'");
	is_unknown("action.command[-5] == 'kubectl'");
}

/* ---- errors name the line and the column ---- */

static void
test_single_equals_is_refused_at_the_equals(void **state)
{
	refused("action.kind = \"x\"", 13, "'=' is not an operator");
	refused("a & b", 3, "'&' is not an operator; use '&&'");
	refused("true & false", 6, "'&' is not an operator");
	refused("true | false", 6, "'|' is not an operator");
	refused("true ~ false", 6, "unexpected character '~'");
}

static void
test_unterminated_string_is_refused_at_its_quote(void **state)
{
	refused("action.kind == \"shell", 16, "unterminated string");
	refused("action.kind == 'shell", 16, "unterminated string");
	refused("'abc\ndef' == 'x'", 1, "unterminated string");
	refused("'abc\\", 1, "unterminated string"); /* a backslash at the very end */
}

static void
test_unknown_escape_is_refused_at_the_backslash(void **state)
{
	refused("intent == 'a\\qb'", 13, "unknown escape '\\q'");
	refused("intent == 'a\\x41'", 13, "unknown escape '\\x'");
	refused("intent == '\\u12g4'", 16, "four hex digits");
	refused("intent == '\\u0000'", 12, "not allowed");
	refused("intent == '\\ud800'", 12, "not allowed");
}

static void
test_unknown_root_name_is_refused(void **state)
{
	refused("request.kind == 'shell'", 1, "unknown name 'request'");
	refused("true && actions.kind == 'shell'", 9, "unknown name 'actions'");
}

static void
test_unknown_field_of_requester_owner_time_anomaly_is_refused(void **state)
{
	refused("requester.name == 'x'", 11, "'requester' has no field 'name'");
	refused("owner.email == 'x'", 7, "'owner' has no field 'email'");
	refused("time.second == 0", 6, "'time' has no field 'second'");
	refused("anomaly.level > 1", 9, "'anomaly' has no field 'level'");
}

static void
test_field_of_a_string_root_is_refused(void **state)
{
	refused("intent.text == 'x'", 8, "cannot take field 'text' of a string");
	refused("on_behalf_of.id == 'x'", 14, "cannot take field 'id' of a string");
}

static void
test_field_of_a_typed_value_is_refused(void **state)
{
	refused("action.kind.x == 'y'", 13, "cannot take field 'x' of a string");
	refused("action.command.x == 'y'", 16, "cannot take field 'x' of a list");
	refused("time.hour.x == 1", 11, "cannot take field 'x' of a int");
	refused("intent[0] == 'r'", 7, "cannot index a string");
	refused("action.command['x'] == 'y'", 16, "whole number");
}

static void
test_unknown_function_is_refused(void **state)
{
	refused("intent.lower() == 'x'", 8, "unknown function 'lower'");
	refused("lower(intent) == 'x'", 1, "unknown function 'lower'");
	refused("exists(action.command, x, x == 'a')", 1, "unknown function 'exists'");
}

static void
test_chained_comparisons_are_refused(void **state)
{
	refused("1 < 2 < 3", 7, "comparisons do not chain");
	refused("time.hour == 2 == true", 16, "comparisons do not chain");
	refused("'a' in ['a'] in [true]", 14, "comparisons do not chain");
}

static void
test_trailing_tokens_are_refused(void **state)
{
	refused("true false", 6, "unexpected 'false' after the expression");
	refused("true)", 5, "unexpected ')'");
	refused("action.kind == 'shell' 'x'", 24, "after the expression");
}

static void
test_missing_pieces_are_refused(void **state)
{
	refused("", 1, "expected a value");
	refused("   ", 4, "expected a value");
	refused("(true", 6, "expected ')'");
	refused("[1, 2", 6, "expected ']'");
	refused("action.", 8, "expected a field name");
	refused("true &&", 8, "expected a value");
	refused("action.command[0", 17, "expected ']'");
	refused(".5 > 0", 1, "expected a value");
	refused("1e5 > 0", 1, "malformed number");
	refused("99999999999999999999 > 0", 1, "out of range");
}

static void
test_too_deep_nesting_is_refused(void **state)
{
	char text[512];
	size_t n = 0;
	for (int i = 0; i < 60; i++)
		text[n++] = '(';
	text[n++] = '1';
	for (int i = 0; i < 60; i++)
		text[n++] = ')';
	text[n] = '\0';
	so_expr_t *e = NULL;
	int line, col;
	char err[256];
	assert_int_equal(so_expr_compile(text, SO_EXPR_CONDITION, &e, &line, &col, err, sizeof(err)),
	                 SO_EINVAL);
	assert_null(e);
	assert_contains(err, "nested deeper than 48");
	assert_int_equal(line, 1);
	if (col < 2 || col > 60)
		fail_msg("the nesting error is at column %d, not on a '('", col);
	assert_int_equal(text[col - 1], '(');

	/* So is a long run of '!' */
	n = 0;
	for (int i = 0; i < 100; i++)
		text[n++] = '!';
	strcpy(text + n, "true");
	assert_int_equal(so_expr_compile(text, SO_EXPR_CONDITION, &e, &line, &col, err, sizeof(err)),
	                 SO_EINVAL);
	assert_contains(err, "nested deeper than");
	assert_int_equal(text[col - 1], '!');

	/* ...and lists in lists */
	n = 0;
	for (int i = 0; i < 60; i++)
		text[n++] = '[';
	for (int i = 0; i < 60; i++)
		text[n++] = ']';
	strcpy(text + n, " == []");
	assert_int_equal(so_expr_compile(text, SO_EXPR_CONDITION, &e, &line, &col, err, sizeof(err)),
	                 SO_EINVAL);
	assert_contains(err, "nested deeper than");
}

static void
test_nesting_within_the_limit_compiles(void **state)
{
	char text[64];
	size_t n = 0;
	for (int i = 0; i < 10; i++)
		text[n++] = '(';
	text[n++] = '1';
	text[n++] = '=';
	text[n++] = '=';
	text[n++] = '1';
	for (int i = 0; i < 10; i++)
		text[n++] = ')';
	text[n] = '\0';
	is_true(text);
}

static void
test_too_long_is_refused_and_the_limit_itself_is_fine(void **state)
{
	char *text = malloc(SO_EXPR_MAX_LEN + 2);
	assert_non_null(text);
	memset(text, ' ', SO_EXPR_MAX_LEN + 1);
	memcpy(text, "true", 4);
	text[SO_EXPR_MAX_LEN] = '\0';
	so_expr_t *e = compile_ok(text, SO_EXPR_CONDITION);
	assert_int_equal(so_expr_eval(e, &fx.in, NULL, NULL), SO_TRUE);
	so_expr_free(e);
	text[SO_EXPR_MAX_LEN] = ' ';
	text[SO_EXPR_MAX_LEN + 1] = '\0';
	refused(text, 1, "longer than 8192");
	free(text);
}

static void
test_too_many_parts_are_refused(void **state)
{
	size_t cap = 3 * SO_EXPR_MAX_NODES + 64;
	char *text = malloc(cap);
	assert_non_null(text);
	size_t n = 0;
	text[n++] = '[';
	for (int i = 0; i < SO_EXPR_MAX_NODES + 10; i++) {
		text[n++] = '1';
		text[n++] = ',';
	}
	strcpy(text + n, "1] == []");
	so_expr_t *e = NULL;
	int line, col;
	char err[256];
	assert_int_equal(so_expr_compile(text, SO_EXPR_CONDITION, &e, &line, &col, err, sizeof(err)),
	                 SO_EINVAL);
	assert_null(e);
	assert_contains(err, "more than 2048 parts");
	free(text);
}

static void
test_error_on_a_later_line_names_that_line(void **state)
{
	refused_at("action.kind == 'shell' &&\n  action.environment = 'production'",
	           SO_EXPR_CONDITION, 2, 22, "'=' is not an operator");
	refused_at("true\n&&\n\tfoo.bar", SO_EXPR_CONDITION, 3, 2, "unknown name 'foo'");
	refused_at("true &&\r\n  intent == 'x\n'", SO_EXPR_CONDITION, 2, 13, "unterminated string");
	refused_at("true\n\n\n1", SO_EXPR_CONDITION, 4, 1, "after the expression");
}

/* ---- the type checker ---- */

static void
test_ordering_a_string_against_an_int_is_refused(void **state)
{
	refused("action.kind > 3", 13, "cannot order a string and a int");
	refused("3 <= intent", 3, "cannot order");
	refused("true < false", 6, "cannot order a bool and a bool");
	refused("null < 1", 6, "cannot order");
	refused("[1] < [2]", 5, "cannot order a list");
}

static void
test_comparing_different_static_types_is_refused(void **state)
{
	refused("time.hour == \"x\"", 11, "cannot compare a int with a string");
	refused("action.kind != 1", 13, "cannot compare a string with a int");
	refused("requester.groups == 'sre'", 18, "cannot compare a list with a string");
}

static void
test_size_of_a_number_is_refused(void **state)
{
	refused("size(1) == 1", 6, "size() needs a string, list or map, not a int");
	refused("size(true) == 1", 6, "not a bool");
	refused("time.hour.size() == 1", 11, "size() needs a string, list or map");
}

static void
test_not_of_a_number_is_refused(void **state)
{
	refused("!1", 2, "'!' needs true or false, not a int");
	refused("!intent", 2, "'!' needs true or false, not a string");
}

static void
test_and_or_of_non_booleans_are_refused(void **state)
{
	refused("1 && true", 1, "'&&' needs true or false on each side, not a int");
	refused("true && 'x'", 9, "'&&' needs true or false on each side, not a string");
	refused("true || 2.5", 9, "'||' needs true or false on each side, not a number");
}

static void
test_in_over_a_string_is_refused(void **state)
{
	refused("\"a\" in \"abc\"", 5, "'in' needs a list or map on its right, not a string");
	refused("1 in time.hour", 3, "not a int");
	refused("'a' in [1, 2]", 5, "cannot look for a string in a list of int");
	refused("time.hour in requester.groups", 11, "cannot look for a int in a list of string");
}

static void
test_matches_needs_a_literal_pattern(void **state)
{
	refused("intent.matches(context.ticket)", 16, "matches() takes a string literal");
	refused("intent.matches(intent)", 16, "string literal");
	refused("intent.matches(1)", 16, "matches() takes a string, not a int");
}

static void
test_bad_regex_is_refused_with_its_offset(void **state)
{
	refused("intent.matches('a(b')", 16, "bad pattern at offset 3");
	refused("true && intent.matches(\"[z-a]\")", 24, "bad pattern at offset 3");
	refused("intent.matches('x{2,1}')", 16, "bad pattern at offset");
}

static void
test_string_functions_need_strings(void **state)
{
	refused("time.hour.startsWith('1')", 11, "startsWith() needs a string, not a int");
	refused("intent.contains(1)", 17, "contains() takes a string, not a int");
	refused("action.command.endsWith('x')", 16, "endsWith() needs a string, not a list");
}

static void
test_exists_is_checked(void **state)
{
	refused("intent.exists(x, true)", 8, "exists() needs a list, not a string");
	refused("action.command.exists(x, 1)", 26, "must be true or false, not a int");
	refused("action.command.exists(1, true)", 23, "needs a variable name first");
	refused("action.command.exists(action, true)", 23, "is a field name");
	refused("action.command.exists(x, y == 'a')", 26, "unknown name 'y'");
	/* The variable is not visible after the call. */
	refused("action.command.exists(x, x == 'a') && x == 'b'", 39, "unknown name 'x'");
}

static void
test_has_needs_a_field(void **state)
{
	refused("has(1)", 5, "has() takes a field");
	refused("has('intent')", 5, "has() takes a field");
	refused("action.command.exists(x, has(x))", 30, "has() takes a field");
}

static void
test_a_condition_must_be_boolean(void **state)
{
	refused("action.kind", 1, "a condition must be true or false, not a string");
	refused("1", 1, "not a int");
	refused("  action.command", 3, "not a list");
	refused("requester", 1, "not a object");
	refused("size(intent)", 1, "not a int");
	/* A value only known at run time is accepted; a non-boolean one evaluates to unknown. */
	is_true("context.flag");
	is_unknown("context.ticket");
}

static void
test_path_accepts_string_fields(void **state)
{
	const char *ok[] = {"owner.team", "requester.team", "requester.id", "owner.groups[0]",
	                    "context.team", "context['team']", "on_behalf_of", "action.resource"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		so_expr_free(compile_ok(ok[i], SO_EXPR_PATH));
}

static void
test_path_refuses_values_and_conditions(void **state)
{
	refused_at("1", SO_EXPR_PATH, 1, 1, "expected a field naming a string");
	refused_at("'sre'", SO_EXPR_PATH, 1, 1, "expected a field naming a string");
	refused_at("owner.team == 'x'", SO_EXPR_PATH, 1, 1, "expected a field naming a string");
	refused_at("requester.groups", SO_EXPR_PATH, 1, 1, "expected a field naming a string");
	refused_at("time.hour", SO_EXPR_PATH, 1, 1, "expected a field naming a string");
	refused_at("owner", SO_EXPR_PATH, 1, 1, "expected a field naming a string");
	refused_at("a == b", SO_EXPR_PATH, 1, 1, "unknown name 'a'");
}

/* ---- evaluation: field paths ---- */

static void
test_requester_fields(void **state)
{
	is_true("requester.id == 'deploy-bot'");
	is_true("requester.kind == 'agent'");
	is_true("requester.owner == 'alice'");
	is_true("requester.team == 'platform'");
	is_true("requester.groups == ['bots', 'deployers']");
	is_true("size(requester.groups) == 2");
	is_true("requester.groups[1] == 'deployers'");
}

static void
test_owner_fields(void **state)
{
	is_true("owner.id == 'alice'");
	is_true("owner.kind == 'human'");
	is_true("owner.team == 'sre-team'");
	is_true("'sre' in owner.groups");
}

static void
test_request_fields(void **state)
{
	is_true("on_behalf_of == 'alice'");
	is_true("intent == 'restart after INC-4411'");
	is_true("action.kind == 'shell'");
	is_true("action.command[0] == 'kubectl'");
	is_true("action.resource == 'deploy/api'");
	is_true("action.environment == 'production'");
	is_true("context.ticket == 'INC-4411'");
	is_true("context.nested.a.b == 'deep'");
	is_true("context.items[0].name == 'x'");
	is_true("context.items[0].size == 1");
}

static void
test_mcp_action_fields(void **state)
{
	check_tri("action.kind == 'mcp' && action.tool == 'github.create_issue'", &fx.mcp_in,
	          SO_TRUE, __FILE__, __LINE__);
	check_tri("action.arguments.repo == 'acme/api'", &fx.mcp_in, SO_TRUE, __FILE__, __LINE__);
	check_tri("action.arguments.count >= 3", &fx.mcp_in, SO_TRUE, __FILE__, __LINE__);
	check_tri("'p1' in action.arguments.labels", &fx.mcp_in, SO_TRUE, __FILE__, __LINE__);
	check_tri("'repo' in action.arguments", &fx.mcp_in, SO_TRUE, __FILE__, __LINE__);
	check_tri("action.tool == 'x'", &fx.in, SO_UNKNOWN, __FILE__, __LINE__);
	check_tri("action.arguments.repo == 'x'", &fx.in, SO_UNKNOWN, __FILE__, __LINE__);
	check_tri("action.command[0] == 'x'", &fx.mcp_in, SO_UNKNOWN, __FILE__, __LINE__);
}

static void
test_time_fields(void **state)
{
	is_true("time.hour == 2");
	is_true("time.minute == 10");
	is_true("time.weekday == 2");
	is_true("time.hour < 6 || time.hour >= 22");
	check_tri("time.hour == 23 && time.minute == 59 && time.weekday == 6", &fx.bare_in,
	          SO_TRUE, __FILE__, __LINE__);
}

static void
test_anomaly_fields(void **state)
{
	is_true("anomaly.score == 0.25");
	is_true("anomaly.score > 0.2 && anomaly.score < 0.3");
	is_true("'off-hours' in anomaly.reasons");
	is_true("anomaly.reasons[0] == 'new-command'");
	is_true("size(anomaly.reasons) == 2");
	check_tri("anomaly.score == 0", &fx.bare_in, SO_TRUE, __FILE__, __LINE__);
	check_tri("'off-hours' in anomaly.reasons", &fx.bare_in, SO_UNKNOWN, __FILE__, __LINE__);
}

/* ---- evaluation: operators on present values ---- */

static void
test_equality_operators(void **state)
{
	is_true("action.kind == 'shell'");
	is_false("action.kind == 'mcp'");
	is_true("action.kind != 'mcp'");
	is_false("action.kind != 'shell'");
	is_true("context.obj == context.obj2");
	is_false("context.obj == context.nested");
	is_true("context.tags == ['prod', 'urgent']");
	is_false("context.tags != ['prod', 'urgent']");
}

static void
test_ordering_operators(void **state)
{
	is_true("time.hour < 3");
	is_false("time.hour < 2");
	is_true("time.hour <= 2");
	is_false("time.hour <= 1");
	is_true("time.hour > 1");
	is_false("time.hour > 2");
	is_true("time.hour >= 2");
	is_false("time.hour >= 3");
}

static void
test_string_compare_is_byte_order(void **state)
{
	is_true("'B' < 'a'");
	is_true("'abc' < 'abd'");
	is_true("'ab' < 'abc'");
	is_false("'abc' < 'ab'");
	is_true("'' < 'a'");
	is_true("'\xc3\xa9' > 'z'");   /* é (0xc3..) sorts after every ASCII letter */
	is_true("'Z' <= 'Z' && 'Z' >= 'Z'");
	is_true("context.ticket > 'INC-4410' && context.ticket < 'INC-4412'");
}

static void
test_int_and_double_compare_by_value(void **state)
{
	is_true("1 < 1.5");
	is_true("2 == 2.0");
	is_true("context.two == 2");
	is_true("context.ratio < 1");
	is_true("context.n <= 1.0");
	is_false("context.n > 1.0");
	is_true("context.neg < 0");
}

static void
test_equality_across_types_is_false_not_unknown(void **state)
{
	is_false("context.one == 1");   /* "1" vs 1 */
	is_true("context.one != 1");
	is_false("context.flag == 1");  /* true vs 1 */
	is_false("context.n == true");
	is_false("context.tags == 'prod'");
	is_false("context.nothing == 'x'"); /* null vs a string */
	is_true("context.nothing != 0");
	is_false("context.obj == [1]");
	is_false("context.mixed == ['a', 1]");
}

static void
test_ordering_across_types_is_unknown(void **state)
{
	is_unknown("context.one < 2");
	is_unknown("context.flag > context.off");
	is_unknown("context.tags < 'z'");
}

static void
test_in_over_literal_lists(void **state)
{
	is_true("action.command[1] in ['get', 'describe', 'rollout']");
	is_false("action.command[1] in ['get', 'describe', 'logs']");
	is_false("'a' in []");
	is_true("2 in [1, 2, 3]");
	is_true("null in [1, null]");
	is_true("['a'] in [['b'], ['a']]");
}

static void
test_in_over_principal_groups(void **state)
{
	is_true("'deployers' in requester.groups");
	is_false("'sre' in requester.groups");
	is_true("'sre' in owner.groups");
}

static void
test_in_over_json_arrays_from_context(void **state)
{
	is_true("'urgent' in context.tags");
	is_false("'staging' in context.tags");
	is_false("'a' in context.empty");
	is_true("1 in context.mixed");
	is_true("null in context.mixed");
	is_true("['b'] in context.outer");
}

static void
test_in_over_a_map_is_key_presence(void **state)
{
	is_true("'ticket' in context");
	is_true("'nothing' in context"); /* present, with null */
	is_false("'missing' in context");
	is_true("'b' in context.nested.a");
	is_false("'deep' in context.nested.a");
	is_false("1 in context");
	check_tri("'command' in action", &fx.in, SO_TRUE, __FILE__, __LINE__);
	check_tri("'command' in action", &fx.mcp_in, SO_FALSE, __FILE__, __LINE__);
}

static void
test_in_with_an_absent_item_in_the_list(void **state)
{
	is_true("'x' in [context.missing, 'x']");   /* found anyway */
	is_unknown("'y' in [context.missing, 'x']"); /* might have been it */
}

static void
test_starts_ends_contains(void **state)
{
	is_true("intent.startsWith('restart')");
	is_false("intent.startsWith('after')");
	is_true("intent.endsWith('4411')");
	is_false("intent.endsWith('restart')");
	is_true("intent.contains('after INC')");
	is_false("intent.contains('rollback')");
	is_true("intent.contains('') && intent.startsWith('') && intent.endsWith('')");
	is_false("'ab'.startsWith('abc')");
	is_false("'ab'.endsWith('xab')");
	is_true("context.ticket.startsWith(context.ticket)");
}

static void
test_matches_searches_with_pcre2(void **state)
{
	is_true("intent.matches('INC-[0-9]+')");
	is_false("intent.matches('^INC-[0-9]+')");
	is_true("intent.matches('^restart.*4411$')");
	is_false("intent.matches('(?i)ROLLBACK')");
	is_true("intent.matches('(?i)RESTART')");
	is_true("action.command.exists(a, a.matches('^deploy/'))");
	is_true("'\xc3\xa9'.matches('^.$')"); /* UTF mode: é is one character */
}

static void
test_matches_on_a_non_string_is_unknown(void **state)
{
	is_unknown("context.n.matches('1')");
	is_unknown("context.tags.matches('prod')");
}

static void
test_size(void **state)
{
	is_true("size(intent) == 22");
	is_true("intent.size() == 22");
	is_true("size('') == 0");
	is_true("size(context.tags) == 2");
	is_true("size(context.empty) == 0");
	is_true("size(context.nested) == 1");
	is_true("size(context.obj) == 1");
	is_true("size([1, 2, 3]) == 3");
	is_unknown("size(context.n) == 1");
}

static void
test_exists(void **state)
{
	is_true("action.command.exists(a, a == 'restart')");
	is_false("action.command.exists(a, a == 'delete')");
	is_false("context.empty.exists(a, true)");
	is_true("context.items.exists(i, i.name == 'y')");
	is_true("[1, 2, 3].exists(n, n > 2)");
	is_true("requester.groups.exists(g, g.startsWith('deploy'))");
	is_true("anomaly.reasons.exists(r, r == 'off-hours')");
}

static void
test_exists_with_an_unknown_predicate(void **state)
{
	/* items[1] has no size: unknown for it, but items[0] decides when it can. */
	is_true("context.items.exists(i, i.size == 1)");
	is_unknown("context.items.exists(i, i.size == 2)");
}

static void
test_nested_exists(void **state)
{
	is_true("context.outer.exists(l, l.exists(s, s == 'deep'))");
	is_false("context.outer.exists(l, l.exists(s, s == 'shallow'))");
	is_true("context.outer.exists(l, size(l) == 1 && context.tags.exists(t, t == 'prod'))");
	is_false("context.outer.exists(l, action.command.exists(c, l.exists(s, s == c)))");
	is_true("context.outer.exists(l, l.exists(s, context.tags.exists(t, s == 'deep' && "
	        "t == 'urgent')))");
}

static void
test_exists_shadowed_variable_names(void **state)
{
	/* The inner x is the string; the outer x is the list again after the inner call. */
	is_true("context.outer.exists(x, x.exists(x, x == 'deep'))");
	is_true("context.outer.exists(x, x.exists(x, x == 'deep') && size(x) == 2)");
	is_false("context.outer.exists(x, x.exists(x, x == 'deep') && size(x) == 1)");
	is_true("[1, 2].exists(x, [10, 20].exists(x, x == 20) && x == 2)");
}

/* ---- evaluation: absent fields ---- */

static void
test_every_operator_on_an_absent_operand_is_unknown(void **state)
{
	static const char *const cases[] = {
		"context.missing == 'x'",
		"'x' == context.missing",
		"context.missing != 'x'",
		"'x' != context.missing",
		"context.missing == null",
		"context.missing < 1",
		"1 < context.missing",
		"context.missing <= 1",
		"context.missing > 1",
		"context.missing >= 1",
		"context.missing in ['x']",
		"'x' in context.missing",
		"context.missing in context",
		"context.missing.startsWith('x')",
		"intent.startsWith(context.missing)",
		"context.missing.endsWith('x')",
		"intent.endsWith(context.missing)",
		"context.missing.contains('x')",
		"intent.contains(context.missing)",
		"context.missing.matches('x')",
		"size(context.missing) == 0",
		"context.missing.size() >= 0",
		"context.missing[0] == 'x'",
		"context.missing['k'] == 'x'",
		"context.tags[context.missing] == 'x'",
		"action.command[4] == 'x'",
		"context.missing.b == 'x'",
		"context.missing.b.c == 'x'",
		"context.missing.exists(x, true)",
		"context.missing.exists(x, false)",
		"!context.missing",
		"!(context.missing == 1)",
		"context.missing",
		"context.missing == context.missing",
		"[context.missing] == ['x']",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_tri(cases[i], &fx.in, SO_UNKNOWN, __FILE__, __LINE__);
}

static void
test_absent_parts_of_the_request_are_unknown(void **state)
{
	static const char *const cases[] = {
		"on_behalf_of == 'alice'",
		"on_behalf_of != 'alice'",
		"intent.contains('INC')",
		"intent.matches('INC')",
		"size(intent) > 0",
		"context.ticket == 'INC-4411'",
		"'ticket' in context",
		"owner.team == 'sre-team'",
		"owner.id != 'alice'",
		"'sre' in owner.groups",
		"requester.owner == 'alice'",
		"requester.team == 'platform'",
		"'sre' in requester.groups",
		"requester.groups.exists(g, true)",
		"'off-hours' in anomaly.reasons",
		"anomaly.reasons.exists(r, true)",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_tri(cases[i], &fx.bare_in, SO_UNKNOWN, __FILE__, __LINE__);
	/* What is there is still decided. */
	check_tri("requester.id == 'ci' && requester.kind == 'service'", &fx.bare_in, SO_TRUE,
	          __FILE__, __LINE__);
}

static void
test_an_input_without_a_request_or_requester_is_unknown_not_a_crash(void **state)
{
	so_expr_input_t empty = {0};
	static const char *const cases[] = {"action.kind == 'shell'", "requester.id == 'x'",
	                                    "context.a == 1", "intent == 'x'", "on_behalf_of == 'x'",
	                                    "owner.team == 'x'", "'x' in requester.groups"};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_tri(cases[i], &empty, SO_UNKNOWN, __FILE__, __LINE__);
	check_tri("time.hour == 0 && has(time.hour)", &empty, SO_TRUE, __FILE__, __LINE__);
}

static void
test_kleene_and(void **state)
{
	is_false("false && context.missing");
	is_false("context.missing && false");
	is_unknown("true && context.missing");
	is_unknown("context.missing && true");
	is_unknown("context.missing && context.other");
	is_true("true && true");
	is_false("true && false");
	is_false("false && true");
	is_false("false && false");
}

static void
test_kleene_or(void **state)
{
	is_true("true || context.missing");
	is_true("context.missing || true");
	is_unknown("false || context.missing");
	is_unknown("context.missing || false");
	is_unknown("context.missing || context.other");
	is_true("true || false");
	is_true("false || true");
	is_false("false || false");
}

static void
test_kleene_not(void **state)
{
	is_unknown("!context.missing");
	is_unknown("!!context.missing");
	is_true("!(false && context.missing)");
	is_false("!(true || context.missing)");
}

static void
test_has_is_never_unknown(void **state)
{
	is_true("has(context.ticket)");
	is_false("has(context.missing)");
	is_false("has(context.missing.deeper)");
	is_true("has(context.nothing)");       /* present, with null */
	is_true("has(action.command[3])");
	is_false("has(action.command[4])");
	is_true("has(requester.team)");
	is_true("has(time.hour) && has(anomaly.score)");
	is_false("!has(context.ticket)");
	is_true("!has(context.missing)");
	is_false("has(context.ticket.x)");     /* a field of a string */
	is_false("has(action.tool)");
	check_tri("has(owner.team)", &fx.bare_in, SO_FALSE, __FILE__, __LINE__);
	check_tri("has(context.ticket)", &fx.bare_in, SO_FALSE, __FILE__, __LINE__);
	check_tri("has(requester.groups)", &fx.bare_in, SO_FALSE, __FILE__, __LINE__);
	check_tri("has(anomaly.reasons)", &fx.bare_in, SO_FALSE, __FILE__, __LINE__);
	check_tri("has(context.ticket) && context.ticket.startsWith('INC')", &fx.bare_in, SO_FALSE,
	          __FILE__, __LINE__);
	check_tri("!has(context.ticket) || context.ticket.startsWith('INC')", &fx.bare_in, SO_TRUE,
	          __FILE__, __LINE__);
}

/* ---- the absent out-parameter ---- */

static void
check_absent(const char *text, const so_expr_input_t *in, const char *want, const char *file,
             int line)
{
	so_expr_t *e = compile_ok(text, SO_EXPR_CONDITION);
	const char *absent = NULL;
	size_t len = 0;
	enum so_tri t = so_expr_eval(e, in, &absent, &len);
	if (t != SO_UNKNOWN)
		fail_at_line(file, line, "`%s` is %s, expected unknown", text, tri_name(t));
	if (!want) {
		if (absent)
			fail_at_line(file, line, "`%s` names \"%.*s\" absent, expected none", text,
			             (int)len, absent);
	} else if (!absent || len != strlen(want) || memcmp(absent, want, len)) {
		fail_at_line(file, line, "`%s` names \"%.*s\" absent, expected \"%s\"", text,
		             absent ? (int)len : 6, absent ? absent : "(none)", want);
	}
	/* It points into the expression's own text. */
	if (absent) {
		const char *src = so_expr_text(e);
		assert_true(absent >= src && absent + len <= src + strlen(src));
	}
	so_expr_free(e);
}

#define absent_is(text, want) check_absent((text), &fx.in, (want), __FILE__, __LINE__)

static void
test_absent_names_the_first_absent_path(void **state)
{
	absent_is("context.ticket2 == 'INC-1'", "context.ticket2");
	absent_is("time.hour > 1 && context.change.id == 'CHG-1'", "context.change");
	absent_is("action.command[7] == 'x'", "action.command[7]");
	absent_is("context.tags[ 9 ]  == 'x'", "context.tags[ 9 ]");
	absent_is("context.a == 1 || context.b == 2", "context.a");
	absent_is("'x' in context.list", "context.list");
	absent_is("context.list.exists(x, x == 1)", "context.list");
	check_absent("on_behalf_of == 'alice'", &fx.bare_in, "on_behalf_of", __FILE__, __LINE__);
	check_absent("owner.team == 'sre'", &fx.bare_in, "owner", __FILE__, __LINE__);
	check_absent("requester.team == 'x'", &fx.bare_in, "requester.team", __FILE__, __LINE__);
}

static void
test_has_does_not_count_as_absent(void **state)
{
	absent_is("(has(context.ticket2) || true) && context.change == 'x'", "context.change");
	absent_is("!has(context.a) && context.b == 1", "context.b");
}

static void
test_unknown_from_a_wrong_type_names_no_absent_field(void **state)
{
	absent_is("context.ticket < 3", NULL);
	absent_is("context.ticket", NULL);
}

static void
test_absent_may_be_null(void **state)
{
	so_expr_t *e = compile_ok("context.missing == 1", SO_EXPR_CONDITION);
	assert_int_equal(so_expr_eval(e, &fx.in, NULL, NULL), SO_UNKNOWN);
	so_expr_free(e);
}

/* ---- bounded matching and bounded evaluation ---- */

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_catastrophic_regex_hits_the_limit_and_is_never_true(void **state)
{
	json_t *ctx = json_of("{\"s\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"}");
	so_request_t r = fx.shell;
	r.context = ctx;
	so_expr_input_t in = fx.in;
	in.request = &r;
	static const char *const patterns[] = {
		"context.s.matches('(a+)+$')",
		"context.s.matches('^(a|a)*$')",
		"context.s.matches('^(a|aa)+$')",
		"context.s.matches('(.*a){20}')",
	};
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		so_expr_t *e = compile_ok(patterns[i], SO_EXPR_CONDITION);
		double t0 = now_s();
		enum so_tri t = so_expr_eval(e, &in, NULL, NULL);
		double took = now_s() - t0;
		if (t == SO_TRUE)
			fail_msg("`%s` matched 30 a's and a b", patterns[i]);
		if (took > 2.0)
			fail_msg("`%s` took %.1f s; the match limit should stop it", patterns[i], took);
		so_expr_free(e);
	}
	/* The limit hit is unknown (undecided), and `!` of it is unknown too, never a yes. */
	so_expr_t *e = compile_ok("!context.s.matches('(a+)+$')", SO_EXPR_CONDITION);
	assert_int_not_equal(so_expr_eval(e, &in, NULL, NULL), SO_TRUE);
	so_expr_free(e);
	json_decref(ctx);
}

/*
 * Run one evaluation in a child with an alarm, so a runaway evaluation fails the test
 * instead of hanging it. Returns the result, or -1 when the child did not finish in time.
 */
static int
eval_with_deadline(const char *text, const so_expr_input_t *in, unsigned seconds)
{
	so_expr_t *e = compile_ok(text, SO_EXPR_CONDITION);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(seconds);
		_exit((int)so_expr_eval(e, in, NULL, NULL));
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	so_expr_free(e);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -1;
}

static void
test_nested_exists_over_a_bound_list_finishes(void **state)
{
	/*
	 * Seven nested exists() over one 32-item list bound to a variable: 32^7 (3.4e10)
	 * predicate evaluations if nothing bounds the work. A policy that passes `policy check`
	 * must not stall every decision for hours.
	 */
	char text[1024];
	size_t n = (size_t)snprintf(text, sizeof(text), "[[");
	for (int i = 0; i < 32; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s0", i ? "," : "");
	snprintf(text + n, sizeof(text) - n,
	         "]].exists(l, l.exists(a, l.exists(b, l.exists(c, l.exists(d, l.exists(e, "
	         "l.exists(f, a == 1)))))))");
	int r = eval_with_deadline(text, &fx.in, 3);
	if (r < 0)
		fail_msg("evaluating a 7-deep exists() over a 32-item list ran for more than 3 s");
	assert_int_not_equal(r, SO_TRUE);
}

static void
test_nested_exists_over_request_lists_finishes(void **state)
{
	/* The same with a list the requester controls: 200 items, 5 levels = 3.2e11. */
	char body[2048];
	size_t n = (size_t)snprintf(body, sizeof(body), "{\"l\":[");
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%s0", i ? "," : "");
	snprintf(body + n, sizeof(body) - n, "]}");
	json_t *ctx = json_of(body);
	so_request_t r = fx.shell;
	r.context = ctx;
	so_expr_input_t in = fx.in;
	in.request = &r;
	int res = eval_with_deadline(
	    "context.l.exists(a, context.l.exists(b, context.l.exists(c, context.l.exists(d, "
	    "context.l.exists(e, a == 1)))))",
	    &in, 3);
	json_decref(ctx);
	if (res < 0)
		fail_msg("evaluating a 5-deep exists() over a 200-item context list ran for more than "
		         "3 s");
	assert_int_not_equal(res, SO_TRUE);
}

/* ---- so_expr_eval_string ---- */

static void
test_eval_string_of_owner_team(void **state)
{
	so_expr_t *e = compile_ok("owner.team", SO_EXPR_PATH);
	const char *s = NULL;
	size_t len = 0;
	assert_int_equal(so_expr_eval_string(e, &fx.in, &s, &len), 1);
	assert_int_equal(len, strlen("sre-team"));
	assert_memory_equal(s, "sre-team", len);
	s = NULL;
	assert_int_equal(so_expr_eval_string(e, &fx.bare_in, &s, &len), 0); /* no owner */
	assert_null(s);
	so_expr_free(e);
}

static void
test_eval_string_of_other_paths(void **state)
{
	const char *s;
	size_t len;
	so_expr_t *e = compile_ok("context.ticket", SO_EXPR_PATH);
	assert_int_equal(so_expr_eval_string(e, &fx.in, &s, &len), 1);
	assert_int_equal(len, 8);
	assert_memory_equal(s, "INC-4411", 8);
	assert_int_equal(so_expr_eval_string(e, &fx.bare_in, &s, &len), 0);
	so_expr_free(e);
	e = compile_ok("context.n", SO_EXPR_PATH); /* present, but not a string */
	assert_int_equal(so_expr_eval_string(e, &fx.in, &s, &len), 0);
	so_expr_free(e);
	e = compile_ok("requester.groups[1]", SO_EXPR_PATH);
	assert_int_equal(so_expr_eval_string(e, &fx.in, &s, &len), 1);
	assert_int_equal(len, 9);
	assert_memory_equal(s, "deployers", 9);
	so_expr_free(e);
}

/* ---- evaluation allocates nothing ---- */

/*
 * Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (tests/unit/meson.build): every
 * allocation by code linked statically into this test — the expression module included —
 * goes through these counters. libpcre2 and libjansson are shared libraries, so allocations
 * inside them are not seen here; the thread's PCRE2 match data is made by expr.c on first use,
 * so the warm-up evaluation below makes it before counting starts.
 */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static int counting;
static size_t allocations;

void *
__wrap_malloc(size_t n)
{
	allocations += counting;
	return __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
	allocations += counting;
	return __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
	allocations += counting;
	return __real_realloc(p, n);
}

static void
test_evaluation_allocates_nothing(void **state)
{
	static const char *const texts[] = {
		"action.kind == 'shell' && action.command[0] == 'kubectl' && "
		"action.command[1] in ['get', 'describe', 'logs']",
		"action.environment == 'production'",
		"intent.matches('INC-[0-9]+') && context.ticket.matches('^INC-')",
		"action.command.exists(a, a.matches('^deploy/') || a in context.tags)",
		"context.outer.exists(x, x.exists(y, y == 'deep'))",
		"'sre' in owner.groups || 'deployers' in requester.groups",
		"'ticket' in context && has(context.nested.a.b) && !has(context.missing)",
		"size(context.tags) == 2 && intent.contains('INC') && intent.startsWith('re')",
		"context.missing == 1 || anomaly.score > 0.5 || 'off-hours' in anomaly.reasons",
		"time.hour < 6 && time.weekday in [0, 6]",
	};
	enum { N = sizeof(texts) / sizeof(texts[0]) };
	so_expr_t *e[N];
	for (size_t i = 0; i < N; i++)
		e[i] = compile_ok(texts[i], SO_EXPR_CONDITION);
	/* The wrap is live: compiling allocates. */
	counting = 1;
	allocations = 0;
	so_expr_t *probe = compile_ok("intent.matches('x')", SO_EXPR_CONDITION);
	counting = 0;
	so_expr_free(probe);
	if (allocations == 0)
		fail_msg("the malloc wrap saw no allocation while compiling; is --wrap in effect?");
	/* Warm up the thread's PCRE2 match data. */
	for (size_t i = 0; i < N; i++)
		so_expr_eval(e[i], &fx.in, NULL, NULL);
	enum so_tri results[N];
	const char *absent;
	size_t absent_len;
	counting = 1;
	allocations = 0;
	for (size_t i = 0; i < N; i++)
		results[i] = so_expr_eval(e[i], &fx.in, &absent, &absent_len);
	for (size_t i = 0; i < N; i++)
		so_expr_eval(e[i], &fx.bare_in, &absent, &absent_len);
	counting = 0;
	size_t seen = allocations;
	for (size_t i = 0; i < N; i++)
		so_expr_free(e[i]);
	if (seen)
		fail_msg("evaluation allocated %zu times", seen);
	/* And the evaluations did real work: */
	assert_int_equal(results[0], SO_FALSE);
	assert_int_equal(results[2], SO_TRUE);
	assert_int_equal(results[3], SO_TRUE);
	assert_int_equal(results[4], SO_TRUE);
	assert_int_equal(results[5], SO_TRUE);
	assert_int_equal(results[6], SO_TRUE);
	assert_int_equal(results[7], SO_TRUE);
	assert_int_equal(results[8], SO_TRUE);
	assert_int_equal(results[9], SO_FALSE);
}

static void
test_compile_errors_free_everything(void **state)
{
	/* Checked for leaks under ASan (build-asan): every error path after allocation. */
	static const char *const bad[] = {
		"[1, 'a', context.x", "intent.matches('(')", "action.command.exists(x, x == 'a'",
		"'abc", "true && 'x\\q'", "context.a.b.c == 1 == 2", "has(1)", "size(1)",
		"action.command.exists(a, a.exists(b, b.exists(c, c.exists(d, d.exists(e, "
		"e.exists(f, f.exists(g, g.exists(h, h.exists(i, true)))))))))",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		so_expr_t *e = NULL;
		int line, col;
		char err[8]; /* a short buffer truncates the message, never overflows */
		assert_int_equal(so_expr_compile(bad[i], SO_EXPR_CONDITION, &e, &line, &col, err,
		                                 sizeof(err)),
		                 SO_EINVAL);
		assert_null(e);
		assert_true(strlen(err) < sizeof(err));
		assert_true(line >= 1 && col >= 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int_literals),
		cmocka_unit_test(test_double_literals_compare_with_ints),
		cmocka_unit_test(test_double_quoted_and_single_quoted_strings_are_the_same),
		cmocka_unit_test(test_each_escape_decodes),
		cmocka_unit_test(test_true_false_null_literals),
		cmocka_unit_test(test_list_literals),
		cmocka_unit_test(test_keywords_need_whole_words),
		cmocka_unit_test(test_and_binds_tighter_than_or),
		cmocka_unit_test(test_comparisons_bind_tighter_than_and),
		cmocka_unit_test(test_not_binds_tighter_than_comparisons),
		cmocka_unit_test(test_parentheses_group),
		cmocka_unit_test(test_member_calls_and_function_calls),
		cmocka_unit_test(test_indexing_lists_and_maps),
		cmocka_unit_test(test_negative_index_from_a_value_counts_from_the_end),
		cmocka_unit_test(test_negative_index_literal_counts_from_the_end),
		cmocka_unit_test(test_single_equals_is_refused_at_the_equals),
		cmocka_unit_test(test_unterminated_string_is_refused_at_its_quote),
		cmocka_unit_test(test_unknown_escape_is_refused_at_the_backslash),
		cmocka_unit_test(test_unknown_root_name_is_refused),
		cmocka_unit_test(test_unknown_field_of_requester_owner_time_anomaly_is_refused),
		cmocka_unit_test(test_field_of_a_string_root_is_refused),
		cmocka_unit_test(test_field_of_a_typed_value_is_refused),
		cmocka_unit_test(test_unknown_function_is_refused),
		cmocka_unit_test(test_chained_comparisons_are_refused),
		cmocka_unit_test(test_trailing_tokens_are_refused),
		cmocka_unit_test(test_missing_pieces_are_refused),
		cmocka_unit_test(test_too_deep_nesting_is_refused),
		cmocka_unit_test(test_nesting_within_the_limit_compiles),
		cmocka_unit_test(test_too_long_is_refused_and_the_limit_itself_is_fine),
		cmocka_unit_test(test_too_many_parts_are_refused),
		cmocka_unit_test(test_error_on_a_later_line_names_that_line),
		cmocka_unit_test(test_ordering_a_string_against_an_int_is_refused),
		cmocka_unit_test(test_comparing_different_static_types_is_refused),
		cmocka_unit_test(test_size_of_a_number_is_refused),
		cmocka_unit_test(test_not_of_a_number_is_refused),
		cmocka_unit_test(test_and_or_of_non_booleans_are_refused),
		cmocka_unit_test(test_in_over_a_string_is_refused),
		cmocka_unit_test(test_matches_needs_a_literal_pattern),
		cmocka_unit_test(test_bad_regex_is_refused_with_its_offset),
		cmocka_unit_test(test_string_functions_need_strings),
		cmocka_unit_test(test_exists_is_checked),
		cmocka_unit_test(test_has_needs_a_field),
		cmocka_unit_test(test_a_condition_must_be_boolean),
		cmocka_unit_test(test_path_accepts_string_fields),
		cmocka_unit_test(test_path_refuses_values_and_conditions),
		cmocka_unit_test(test_requester_fields),
		cmocka_unit_test(test_owner_fields),
		cmocka_unit_test(test_request_fields),
		cmocka_unit_test(test_mcp_action_fields),
		cmocka_unit_test(test_time_fields),
		cmocka_unit_test(test_anomaly_fields),
		cmocka_unit_test(test_equality_operators),
		cmocka_unit_test(test_ordering_operators),
		cmocka_unit_test(test_string_compare_is_byte_order),
		cmocka_unit_test(test_int_and_double_compare_by_value),
		cmocka_unit_test(test_equality_across_types_is_false_not_unknown),
		cmocka_unit_test(test_ordering_across_types_is_unknown),
		cmocka_unit_test(test_in_over_literal_lists),
		cmocka_unit_test(test_in_over_principal_groups),
		cmocka_unit_test(test_in_over_json_arrays_from_context),
		cmocka_unit_test(test_in_over_a_map_is_key_presence),
		cmocka_unit_test(test_in_with_an_absent_item_in_the_list),
		cmocka_unit_test(test_starts_ends_contains),
		cmocka_unit_test(test_matches_searches_with_pcre2),
		cmocka_unit_test(test_matches_on_a_non_string_is_unknown),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_exists),
		cmocka_unit_test(test_exists_with_an_unknown_predicate),
		cmocka_unit_test(test_nested_exists),
		cmocka_unit_test(test_exists_shadowed_variable_names),
		cmocka_unit_test(test_every_operator_on_an_absent_operand_is_unknown),
		cmocka_unit_test(test_absent_parts_of_the_request_are_unknown),
		cmocka_unit_test(test_an_input_without_a_request_or_requester_is_unknown_not_a_crash),
		cmocka_unit_test(test_kleene_and),
		cmocka_unit_test(test_kleene_or),
		cmocka_unit_test(test_kleene_not),
		cmocka_unit_test(test_has_is_never_unknown),
		cmocka_unit_test(test_absent_names_the_first_absent_path),
		cmocka_unit_test(test_has_does_not_count_as_absent),
		cmocka_unit_test(test_unknown_from_a_wrong_type_names_no_absent_field),
		cmocka_unit_test(test_absent_may_be_null),
		cmocka_unit_test(test_catastrophic_regex_hits_the_limit_and_is_never_true),
		cmocka_unit_test(test_nested_exists_over_a_bound_list_finishes),
		cmocka_unit_test(test_nested_exists_over_request_lists_finishes),
		cmocka_unit_test(test_eval_string_of_owner_team),
		cmocka_unit_test(test_eval_string_of_other_paths),
		cmocka_unit_test(test_evaluation_allocates_nothing),
		cmocka_unit_test(test_compile_errors_free_everything),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
