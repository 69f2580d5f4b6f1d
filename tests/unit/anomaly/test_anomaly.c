/*
 * Baselines and anomaly scores, on synthetic histories with an injected clock.
 *
 * deploy-bot's routine (history()): one request an hour, 09:05-16:05 on weekdays, the same
 * verb at the same hour every day; its exports declare 6,000-10,000 rows (10,000 on Fridays).
 * Four weeks of it start on Monday 2026-10-05; the tests then act in the week after.
 */
#include "unit.h"

#include <math.h>

#include "anomaly/anomaly.h"
#include "common/json.h"

#define MIN INT64_C(60000)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define T0 INT64_C(1791158400000) /* Monday 2026-10-05 00:00 UTC */
#define WEEK5 (T0 + 28 * DAY)      /* Monday 2026-11-02 00:00 UTC, after the history */

static so_anomaly_params_t P;

static int
setup(void **state)
{
	so_anomaly_params_default(&P);
	return 0;
}

static json_t *
load(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (!v)
		fail_msg("test JSON does not parse: %s: %s", text, jerr.text);
	return v;
}

/* Features of an action and context given as JSON text (context may be NULL). */
static void
features(const char *action, const char *context, so_anomaly_features_t *f)
{
	json_t *a = load(action);
	json_t *c = context ? load(context) : NULL;
	so_anomaly_features(a, c, f);
	json_decref(a);
	json_decref(c);
}

/* A shell command in an environment ("" for none), touching `resource`. */
static void
shell(const char *argv_json, const char *env, const char *resource, so_anomaly_features_t *f)
{
	char text[1024];
	snprintf(text, sizeof(text), "{\"kind\":\"shell\",\"command\":%s%s%s%s%s%s%s}", argv_json,
	         env[0] ? ",\"environment\":\"" : "", env, env[0] ? "\"" : "",
	         resource ? ",\"resource\":\"" : "", resource ? resource : "", resource ? "\"" : "");
	features(text, NULL, f);
}

static void
export_rows(double rows, so_anomaly_features_t *f)
{
	char ctx[128];
	snprintf(ctx, sizeof(ctx), "{\"rows\":%.0f,\"ticket\":\"DATA-7\"}", rows);
	features("{\"kind\":\"mcp.tool\",\"server\":\"snowflake\",\"tool\":\"export\","
	         "\"environment\":\"production\",\"resource\":\"table:orders\","
	         "\"arguments\":{\"table\":\"orders\",\"format\":\"csv\"}}",
	         ctx, f);
}

/* What deploy-bot does at `hour` (9..16) on day `day` of the history. */
static void
routine(int hour, int day, so_anomaly_features_t *f)
{
	switch (hour) {
	case 9: shell("[\"kubectl\",\"get\",\"pods\"]", "staging", "deploy/api", f); break;
	case 10: export_rows(6000 + 1000 * (day % 7 < 5 ? day % 7 : 0), f); break;
	case 11: shell("[\"kubectl\",\"rollout\",\"restart\",\"deploy/api\"]", "staging", "deploy/api", f); break;
	case 12: shell("[\"kubectl\",\"get\",\"pods\"]", "production", "deploy/api", f); break;
	case 13: shell("[\"terraform\",\"plan\"]", "staging", "stack:web", f); break;
	case 14: shell("[\"kubectl\",\"rollout\",\"restart\",\"deploy/api\"]", "production", "deploy/api", f); break;
	case 15: shell("[\"git\",\"push\"]", "", "repo:signoff", f); break;
	default: shell("[\"kubectl\",\"get\",\"pods\"]", "staging", "deploy/api", f); break;
	}
}

/* Score, count and learn one request the way the daemon does when policy allows it. */
static void
allowed(so_baseline_t *b, const so_anomaly_features_t *f, int64_t t, so_anomaly_result_t *r)
{
	so_anomaly_score(b, &P, "deploy-bot", f, t, r);
	so_baseline_note_submitted(b, &P, t);
	so_baseline_learn(b, &P, f, t);
}

/* deploy-bot's routine for `weeks` weeks from T0; every request allowed and learned. */
static so_baseline_t *
history(int weeks)
{
	so_baseline_t *b = so_baseline_new();
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	assert_non_null(b);
	for (int day = 0; day < weeks * 7; day++) {
		if (day % 7 >= 5)
			continue; /* Saturday and Sunday */
		for (int hour = 9; hour <= 16; hour++) {
			routine(hour, day, &f);
			allowed(b, &f, T0 + day * DAY + hour * HOUR + 5 * MIN, &r);
		}
	}
	return b;
}

static int
has_signal(const so_anomaly_result_t *r, int sig)
{
	for (size_t i = 0; i < r->nreasons; i++)
		if (r->signal[i] == sig)
			return 1;
	return 0;
}

static const char *
reason_of(const so_anomaly_result_t *r, int sig)
{
	for (size_t i = 0; i < r->nreasons; i++)
		if (r->signal[i] == sig)
			return r->reasons[i];
	fail_msg("no %s reason among %zu (first: %s)", so_anomaly_signal_name(sig), r->nreasons,
	         r->nreasons ? r->reasons[0] : "none");
	return NULL;
}

/* Append `s` to the string in buf[cap]. */
static void
append(char *buf, size_t cap, const char *s)
{
	size_t len = strlen(buf);
	assert_true(len + strlen(s) < cap);
	snprintf(buf + len, cap - len, "%s", s);
}

static char *
canonical(const json_t *v)
{
	char *s = so_json_canonical_str(v);
	assert_non_null(s);
	return s;
}

/* ---- features ---- */

static void
test_features_shell_verb_is_the_command_and_its_sub_command(void **state)
{
	so_anomaly_features_t f;
	shell("[\"kubectl\",\"delete\",\"pod\",\"api-1\"]", "production", NULL, &f);
	assert_string_equal(f.kind, "shell");
	assert_string_equal(f.verb, "kubectl delete");
	assert_string_equal(f.environment, "production");
	shell("[\"/usr/local/bin/terraform\",\"apply\",\"-auto-approve\"]", "", NULL, &f);
	assert_string_equal(f.verb, "terraform apply");
	shell("[\"git\",\"push\",\"origin\",\"main\"]", "", NULL, &f);
	assert_string_equal(f.verb, "git push");
	/* A flag, a path or a file name after the command is not a sub-command. */
	shell("[\"psql\",\"-c\",\"select 1\"]", "", NULL, &f);
	assert_string_equal(f.verb, "psql");
	shell("[\"cat\",\"/etc/passwd\"]", "", NULL, &f);
	assert_string_equal(f.verb, "cat");
	shell("[\"python3\",\"backfill.py\"]", "", NULL, &f);
	assert_string_equal(f.verb, "python3");
	shell("[\"aws\",\"s3\",\"cp\",\"a\",\"b\"]", "", NULL, &f);
	assert_string_equal(f.verb, "aws s3");
}

static void
test_features_tool_verb_is_server_and_tool(void **state)
{
	so_anomaly_features_t f;
	features("{\"kind\":\"mcp.tool\",\"server\":\"github\",\"tool\":\"create_pr\","
	         "\"arguments\":{\"title\":\"x\"}}", NULL, &f);
	assert_string_equal(f.kind, "mcp.tool");
	assert_string_equal(f.verb, "github/create_pr");
	features("{\"kind\":\"claude.tool\",\"tool\":\"WebSearch\",\"arguments\":{}}", NULL, &f);
	assert_string_equal(f.verb, "WebSearch");
	features("{\"kind\":\"file.write\",\"path\":\"/etc/hosts\"}", NULL, &f);
	assert_string_equal(f.verb, "");
	assert_string_equal(f.prefix, "etc/");
}

static void
test_features_resource_prefix_ends_at_the_first_slash_or_colon(void **state)
{
	static const struct {
		const char *action, *prefix;
	} cases[] = {
		{"{\"kind\":\"k\",\"resource\":\"deploy/api\"}", "deploy/"},
		{"{\"kind\":\"k\",\"resource\":\"s3://bucket/key\"}", "s3:"},
		{"{\"kind\":\"k\",\"resource\":\"arn:aws:iam::1:role/x\"}", "arn:"},
		{"{\"kind\":\"k\",\"resource\":\"customers\"}", "customers"},
		{"{\"kind\":\"k\",\"url\":\"https://api.example.com:8443/v1?q=1\"}", "api.example.com"},
		{"{\"kind\":\"k\",\"resource\":\"\",\"path\":\"//srv/data/x\"}", "srv/"},
		{"{\"kind\":\"k\"}", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		so_anomaly_features_t f;
		features(cases[i].action, NULL, &f);
		assert_string_equal(f.prefix, cases[i].prefix);
	}
}

static void
test_features_sizes_come_from_context_and_arguments(void **state)
{
	so_anomaly_features_t f;
	features("{\"kind\":\"mcp.tool\",\"tool\":\"export\",\"arguments\":{\"rows\":500,"
	         "\"bytes\":\"4096\",\"files\":-3,\"count\":\"12abc\"},\"context\":{\"records\":7}}",
	         "{\"rows\":2000000,\"size\":1.5,\"count\":true,\"nested\":{\"rows\":1e12}}", &f);
	assert_true(f.sizes[SO_ANOMALY_SIZE_ROWS] == 2000000); /* the largest of the two */
	assert_true(f.sizes[SO_ANOMALY_SIZE_BYTES] == 4096);   /* a string of digits counts */
	assert_true(f.sizes[SO_ANOMALY_SIZE_RECORDS] == 7);    /* action.context counts */
	assert_true(f.sizes[SO_ANOMALY_SIZE_SIZE] == 1.5);
	assert_true(f.sizes[SO_ANOMALY_SIZE_FILES] < 0);       /* negative: absent */
	assert_true(f.sizes[SO_ANOMALY_SIZE_COUNT] < 0);       /* not a number: absent */
	assert_true(f.sizes[SO_ANOMALY_SIZE_ROW_COUNT] < 0);
	assert_string_equal(so_anomaly_size_name(SO_ANOMALY_SIZE_ROW_COUNT), "row_count");
	assert_null(so_anomaly_size_name(SO_ANOMALY_NSIZES));
}

static void
test_features_argument_bytes_are_the_canonical_length(void **state)
{
	static const char *const actions[] = {
		"{\"kind\":\"shell\",\"command\":[\"echo\",\"a \\\"q\\\" \\\\ \\n\\u0001 é ☃\"]}",
		"{\"kind\":\"mcp.tool\",\"tool\":\"t\",\"arguments\":{\"z\":[1,-2.5,1e300,0.1,true,"
		"null,false,{\"b\":{},\"a\":[]}],\"\\t\":\"x\",\"n\":-9223372036854775807}}",
	};
	for (size_t i = 0; i < 2; i++) {
		json_t *a = load(actions[i]);
		json_t *payload = json_object_get(a, i == 0 ? "command" : "arguments");
		char *c = canonical(payload);
		so_anomaly_features_t f;
		so_anomaly_features(a, NULL, &f);
		assert_true(f.sizes[SO_ANOMALY_SIZE_ARG_BYTES] == (double)strlen(c));
		free(c);
		json_decref(a);
	}
	so_anomaly_features_t f;
	features("{\"kind\":\"file.write\",\"path\":\"x\"}", NULL, &f);
	assert_true(f.sizes[SO_ANOMALY_SIZE_ARG_BYTES] < 0);
}

static void
test_features_names_are_cut_at_a_character_and_cleaned(void **state)
{
	char argv[512] = "[\"";
	for (int i = 0; i < 40; i++)
		append(argv, sizeof(argv), "é"); /* 80 bytes, 2 each: the verb keeps 31 whole characters */
	append(argv, sizeof(argv), "\"]");
	so_anomaly_features_t f;
	shell(argv, "", NULL, &f);
	assert_int_equal(strlen(f.verb), 62);
	assert_int_equal(so_utf8_prefix(f.verb, strlen(f.verb)), strlen(f.verb));
	shell("[\"rm`x\\u0007y\"]", "prod\\nx", NULL, &f);
	assert_string_equal(f.verb, "rm'x?y");
	assert_string_equal(f.environment, "prod?x");
	/* Missing or odd pieces are simply absent. */
	so_anomaly_features(NULL, NULL, &f);
	assert_string_equal(f.kind, "");
	json_t *odd = load("[1,2]");
	so_anomaly_features(odd, odd, &f);
	assert_string_equal(f.verb, "");
	json_decref(odd);
}

static void
test_hour_of_week_counts_from_sunday_midnight_with_the_offset(void **state)
{
	assert_int_equal(so_anomaly_hour_of_week(0, 0), 4 * 24); /* 1970-01-01 was a Thursday */
	assert_int_equal(so_anomaly_hour_of_week(WEEK5 - DAY + 3 * HOUR + 10 * MIN, 0), 3); /* Sunday */
	assert_int_equal(so_anomaly_hour_of_week(WEEK5 - DAY + 3 * HOUR + 10 * MIN, 60), 4);
	assert_int_equal(so_anomaly_hour_of_week(WEEK5 - DAY + 30 * MIN, -60), 167); /* Saturday 23:30 */
	assert_int_equal(so_anomaly_hour_of_week(WEEK5 + 9 * HOUR, 0), 24 + 9);      /* Monday */
}

/* ---- the learning period ---- */

static void
test_a_principal_without_baseline_is_new_and_never_scores_zero(void **state)
{
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	routine(9, 0, &f);
	so_anomaly_score(NULL, &P, "deploy-bot", &f, T0, &r);
	assert_true(r.score == 0.5);
	assert_int_equal(r.nreasons, 1);
	assert_int_equal(r.signal[0], SO_ANOMALY_SIG_LEARNING);
	assert_string_equal(r.reasons[0],
	                    "deploy-bot is new to signoff (nothing learned yet); everything it does "
	                    "counts as unusual until it has 20 learned requests over 7 days");
	/* A learning score of 0 would trust new principals silently: the settings refuse it,
	 * and scoring does not take it either. */
	so_anomaly_params_t bad = P;
	char err[128];
	bad.learning_score = 0;
	assert_int_equal(so_anomaly_params_check(&bad, err, sizeof(err)), SO_EINVAL);
	assert_contains(err, "learning score");
	so_anomaly_score(NULL, &bad, "deploy-bot", &f, T0, &r);
	assert_true(r.score == 0.5);
}

static void
test_learning_lasts_until_both_the_time_and_the_count_are_reached(void **state)
{
	so_baseline_t *b = so_baseline_new();
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	routine(9, 0, &f);
	/* 3 requests on the first day. */
	for (int i = 0; i < 3; i++)
		allowed(b, &f, T0 + 9 * HOUR + i * HOUR, &r);
	so_anomaly_score(b, &P, "deploy-bot", &f, T0 + DAY + 9 * HOUR, &r);
	assert_true(r.score == P.learning_score);
	assert_string_equal(r.reasons[0], "deploy-bot is new to signoff (3 requests learned over 1 day); "
	                                  "everything it does counts as unusual until it has 20 learned "
	                                  "requests over 7 days");
	/* 20 requests, but within 7 days of the first: still new. */
	for (int i = 3; i < 20; i++)
		allowed(b, &f, T0 + 9 * HOUR + i * HOUR, &r);
	assert_true(so_baseline_is_learning(b, &P, T0 + 9 * HOUR + 7 * DAY - 1));
	/* 7 days after the first learned request, with 20 learned: no longer new. */
	assert_false(so_baseline_is_learning(b, &P, T0 + 9 * HOUR + 7 * DAY));
	so_anomaly_score(b, &P, "deploy-bot", &f, T0 + 9 * HOUR + 7 * DAY, &r);
	assert_false(has_signal(&r, SO_ANOMALY_SIG_LEARNING));
	so_baseline_free(b);

	/* Time alone is not enough either: 19 requests over 30 days are still new. */
	b = so_baseline_new();
	for (int i = 0; i < 19; i++)
		allowed(b, &f, T0 + 9 * HOUR + i * DAY, &r);
	assert_true(so_baseline_is_learning(b, &P, T0 + 30 * DAY));
	allowed(b, &f, T0 + 9 * HOUR + 20 * DAY, &r);
	assert_false(so_baseline_is_learning(b, &P, T0 + 30 * DAY));
	so_baseline_free(b);
}

/* ---- steady traffic ---- */

static void
test_steady_normal_traffic_raises_no_flags(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	/* Two more weeks of the same routine, at slightly different minutes. */
	for (int day = 28; day < 42; day++) {
		if (day % 7 >= 5)
			continue;
		for (int hour = 9; hour <= 16; hour++) {
			routine(hour, day, &f);
			allowed(b, &f, T0 + day * DAY + hour * HOUR + (day * 7 + hour) % 50 * MIN, &r);
			if (r.nreasons)
				fail_msg("day %d %02d:xx: score %.3f, %s", day, hour, r.score, r.reasons[0]);
			assert_true(r.score == 0);
		}
	}
	so_baseline_free(b);
}

/* ---- each kind of deviation ---- */

static void
test_a_new_verb_is_flagged_by_name(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	shell("[\"kubectl\",\"delete\",\"pod\",\"api-1\"]", "production", "deploy/api", &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + DAY + 12 * HOUR, &r);
	assert_int_equal(r.nreasons, 1);
	assert_string_equal(r.reasons[0], "first time deploy-bot ran `kubectl delete` in production");
	assert_true(r.score == 0.6);
	assert_true(r.score >= P.threshold);

	features("{\"kind\":\"mcp.tool\",\"server\":\"github\",\"tool\":\"delete_repo\","
	         "\"environment\":\"production\",\"resource\":\"repo:signoff\"}", NULL, &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + DAY + 12 * HOUR, &r);
	assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_VERB),
	                    "first time deploy-bot called mcp.tool `github/delete_repo` in production");
	so_baseline_free(b);
}

static void
test_a_new_environment_is_flagged_with_the_known_ones(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	shell("[\"kubectl\",\"get\",\"pods\"]", "prod-eu", "deploy/api", &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + DAY + 12 * HOUR, &r);
	assert_int_equal(r.nreasons, 1);
	/* staging is used 4 times a day, production 3: strongest first. */
	assert_string_equal(r.reasons[0],
	                    "first time deploy-bot acted in prod-eu; before, only in staging and production");
	assert_true(r.score >= P.threshold);
	so_baseline_free(b);
}

static void
test_a_known_verb_in_a_known_environment_for_the_first_time_is_flagged(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	shell("[\"terraform\",\"plan\"]", "production", "stack:web", &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + DAY + 13 * HOUR, &r);
	assert_int_equal(r.nreasons, 1);
	assert_string_equal(r.reasons[0],
	                    "first time deploy-bot ran `terraform plan` in production; before, only in staging");
	assert_true(r.score == 0.5);
	so_baseline_free(b);
}

static void
test_a_new_resource_prefix_is_a_weak_signal(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	shell("[\"kubectl\",\"get\",\"pods\"]", "staging", "secret/db-password", &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + DAY + 9 * HOUR, &r);
	assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_PREFIX),
	                    "first time deploy-bot touched a resource under `secret/`");
	/* Alone it stays below the threshold: it marks, it does not hold. */
	assert_true(r.score == 0.3);
	assert_true(r.score < P.threshold);
	so_baseline_free(b);
}

static void
test_off_hours_are_flagged_with_the_usual_hours(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	routine(9, 0, &f);
	/* Sunday 03:10, the week after the history. */
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + 6 * DAY + 3 * HOUR + 10 * MIN, &r);
	assert_int_equal(r.nreasons, 1);
	assert_string_equal(r.reasons[0],
	                    "active at 03:10 Sunday; never before outside 09:00–17:00 on weekdays");
	assert_true(r.score == 0.6);

	/* A weekday night: only the hour is new. */
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + 2 * DAY + 23 * HOUR + 45 * MIN, &r);
	assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_HOURS),
	                    "active at 23:45 Wednesday; never before outside 09:00–17:00 on weekdays");
	assert_true(r.score == 0.5);

	/* A Saturday at a usual hour: only the day is new. */
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + 5 * DAY + 11 * HOUR + 5 * MIN, &r);
	assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_HOURS),
	                    "active at 11:05 Saturday; before, only on weekdays");

	/* Within an hour of the usual ones is not off-hours. */
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + 8 * HOUR + 20 * MIN, &r);
	assert_false(has_signal(&r, SO_ANOMALY_SIG_HOURS));
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + 17 * HOUR + 50 * MIN, &r);
	assert_false(has_signal(&r, SO_ANOMALY_SIG_HOURS));
	so_baseline_free(b);
}

static void
test_a_known_hour_on_a_known_day_never_seen_together_is_off_hours(void **state)
{
	/*
	 * Its routine on weekdays, and a nightly job of 20 requests at 02:05 every day: 11:00
	 * is a usual hour and Saturday a usual day, but Saturday 11:00 never happened. Were
	 * hours and days independent, it would have made about 5 requests (decayed) around
	 * Saturday 11:00 over these 8 weeks: 3 or more with none seen is unusual.
	 */
	so_baseline_t *b = history(0);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	for (int day = 0; day <= 54; day++) {
		routine(9, day, &f);
		for (int k = 0; k < 20; k++)
			allowed(b, &f, T0 + day * DAY + 2 * HOUR + 5 * MIN + k * 30000, &r);
		for (int hour = 9; hour <= 16 && day % 7 < 5; hour++) {
			routine(hour, day, &f);
			allowed(b, &f, T0 + day * DAY + hour * HOUR + 5 * MIN, &r);
		}
	}
	int64_t saturday = T0 + 54 * DAY;
	routine(9, 0, &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, saturday + 11 * HOUR + 5 * MIN, &r);
	assert_int_equal(r.nreasons, 1);
	assert_string_equal(r.reasons[0],
	                    "active at 11:05 Saturday; on Saturdays, never before outside 02:00–03:00");
	assert_true(r.score == 0.5);
	/* Within an hour of the job is its usual time. */
	so_anomaly_score(b, &P, "deploy-bot", &f, saturday + 3 * HOUR + 5 * MIN, &r);
	assert_int_equal(r.nreasons, 0);
	/* A weekday at 11:00 is usual. */
	so_anomaly_score(b, &P, "deploy-bot", &f, saturday - DAY + 11 * HOUR, &r);
	assert_int_equal(r.nreasons, 0);
	so_baseline_free(b);

	/* With one nightly request instead of 20, about 1 would have been due: too thin a
	 * history to call Saturday 11:00 unusual. */
	b = history(0);
	for (int day = 0; day <= 54; day++) {
		routine(9, day, &f);
		allowed(b, &f, T0 + day * DAY + 2 * HOUR + 5 * MIN, &r);
		for (int hour = 9; hour <= 16 && day % 7 < 5; hour++) {
			routine(hour, day, &f);
			allowed(b, &f, T0 + day * DAY + hour * HOUR + 5 * MIN, &r);
		}
	}
	routine(9, 0, &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, saturday + 11 * HOUR + 5 * MIN, &r);
	assert_int_equal(r.nreasons, 0);
	so_baseline_free(b);
}

static void
test_off_hours_use_the_configured_offset(void **state)
{
	P.tz_offset_minutes = 120;
	so_baseline_t *b = history(4); /* learned at 11:05-18:05 local */
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	routine(9, 0, &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + 6 * DAY + 1 * HOUR + 10 * MIN, &r);
	assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_HOURS),
	                    "active at 03:10 Sunday; never before outside 11:00–19:00 on weekdays");
	so_baseline_free(b);
}

static void
test_a_burst_is_flagged_against_the_usual_rate(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	routine(9, 0, &f);
	int64_t t = WEEK5 + 2 * DAY + 10 * HOUR + 30 * MIN; /* Wednesday 10:30 */
	int first_flag = 0;
	for (int i = 1; i <= 12; i++) {
		so_anomaly_score(b, &P, "deploy-bot", &f, t + i * 5000, &r);
		if (!first_flag && has_signal(&r, SO_ANOMALY_SIG_BURST))
			first_flag = i;
		if (i < 12)
			so_baseline_note_submitted(b, &P, t + i * 5000);
	}
	/* More than twice the reference (3, the floor; its busiest minute was 1): from the 7th. */
	assert_int_equal(first_flag, 7);
	assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_BURST),
	                    "12 requests in a minute; usual is 1 an hour when active "
	                    "(busiest minute before: 1)");
	assert_true(r.score >= P.threshold);
	/* Twice the doubling point: 0.5 + 0.2. */
	assert_true(fabs(r.strength[0] - 0.7) < 1e-9);
	so_baseline_free(b);
}

static void
test_a_learned_burst_cannot_raise_its_own_bar(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	routine(9, 0, &f);
	int64_t t = WEEK5 + 2 * DAY + 10 * HOUR + 30 * MIN;
	int flagged = 0;
	/* Every request is learned as it comes (say policy allows them all): the busiest
	 * minute it teaches only counts once that minute is over. */
	for (int i = 1; i <= 20; i++) {
		allowed(b, &f, t + i * 2000, &r);
		flagged += has_signal(&r, SO_ANOMALY_SIG_BURST);
	}
	assert_int_equal(flagged, 14); /* the 7th to the 20th */
	/* The next day the same burst is what it has done before: normal. */
	t += DAY;
	flagged = 0;
	for (int i = 1; i <= 20; i++) {
		allowed(b, &f, t + i * 2000, &r);
		flagged += has_signal(&r, SO_ANOMALY_SIG_BURST);
	}
	assert_int_equal(flagged, 0);
	so_baseline_free(b);
}

static void
test_a_volume_far_above_its_largest_is_flagged(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	export_rows(2000000, &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + DAY + 10 * HOUR + 5 * MIN, &r);
	assert_int_equal(r.nreasons, 1);
	/* The largest was on Friday 10:05, four days before. */
	assert_string_equal(r.reasons[0], "`snowflake/export` of 2,000,000 rows; its largest before "
	                                  "was 10,000 (4 days ago)");
	assert_true(r.score == 0.95);
	/* Three times the largest is within its range. */
	export_rows(30000, &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + DAY + 10 * HOUR + 5 * MIN, &r);
	assert_int_equal(r.nreasons, 0);
	so_baseline_free(b);
}

static void
test_sizes_are_judged_per_action(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	/* Its queries return a million rows every day; its exports stay at 6,000-10,000. */
	for (int day = 0; day < 28; day++) {
		features("{\"kind\":\"mcp.tool\",\"server\":\"snowflake\",\"tool\":\"query\","
		         "\"environment\":\"production\",\"resource\":\"table:orders\"}",
		         "{\"rows\":1000000}", &f);
		allowed(b, &f, T0 + day * DAY + 10 * HOUR + 30 * MIN, &r);
	}
	export_rows(200000, &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + DAY + 10 * HOUR + 5 * MIN, &r);
	assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_VOLUME),
	                    "`snowflake/export` of 200,000 rows; its largest before was 10,000 (4 days ago)");

	/* An action new in this environment has no sizes of its own: the principal's count. */
	features("{\"kind\":\"mcp.tool\",\"server\":\"snowflake\",\"tool\":\"export\","
	         "\"environment\":\"staging\",\"resource\":\"table:orders\"}",
	         "{\"rows\":90000000}", &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + DAY + 10 * HOUR + 5 * MIN, &r);
	assert_true(has_signal(&r, SO_ANOMALY_SIG_SHAPE_ENV));
	assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_VOLUME),
	                    "`snowflake/export` of 90,000,000 rows; the largest deploy-bot declared "
	                    "before was 1,000,000 (2 days ago)");
	so_baseline_free(b);
}

static void
test_long_arguments_are_flagged_as_volume(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	char *action = malloc(60000);
	assert_non_null(action);
	int n = snprintf(action, 60000, "{\"kind\":\"shell\",\"resource\":\"repo:signoff\","
	                                "\"command\":[\"git\",\"push\",\"");
	memset(action + n, 'A', 50000);
	snprintf(action + n + 50000, 60000 - (size_t)n - 50000, "\"]}");
	features(action, NULL, &f);
	free(action);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + DAY + 15 * HOUR + 5 * MIN, &r);
	assert_int_equal(r.nreasons, 1);
	/* ["git","push","AAA..."] is 50,017 bytes in canonical JSON; ["git","push"] was 14. */
	assert_string_equal(r.reasons[0], "`git push` with 50,017 bytes of arguments; its largest "
	                                  "before was 14 (4 days ago)");
	so_baseline_free(b);
}

static void
test_signals_combine_and_the_strongest_come_first(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	shell("[\"kubectl\",\"delete\",\"secret\",\"db\"]", "prod-eu", "secret/db", &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + 6 * DAY + 3 * HOUR + 10 * MIN, &r);
	assert_int_equal(r.nreasons, 4);
	/* 1 - (1-0.6)(1-0.6)(1-0.6)(1-0.3) */
	assert_true(r.score == 0.955);
	assert_int_equal(r.signal[0], SO_ANOMALY_SIG_VERB);
	assert_int_equal(r.signal[1], SO_ANOMALY_SIG_ENV);
	assert_int_equal(r.signal[2], SO_ANOMALY_SIG_HOURS);
	assert_int_equal(r.signal[3], SO_ANOMALY_SIG_PREFIX);
	/* The verb reason does not name an environment it has never acted in. */
	assert_string_equal(r.reasons[0], "first time deploy-bot ran `kubectl delete`");
	json_t *j = so_anomaly_result_to_json(&r);
	assert_non_null(j);
	assert_true(json_number_value(json_object_get(j, "score")) == 0.955);
	assert_int_equal(json_array_size(json_object_get(j, "reasons")), 4);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "reasons"), 3)),
	                    "first time deploy-bot touched a resource under `secret/`");
	json_decref(j);
	so_baseline_free(b);
}

/* ---- feedback and decay ---- */

static void
test_an_approved_unusual_action_becomes_normal(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	shell("[\"kubectl\",\"delete\",\"pod\",\"api-1\"]", "production", "deploy/api", &f);
	int64_t t = WEEK5 + DAY + 12 * HOUR;
	so_anomaly_score(b, &P, "deploy-bot", &f, t, &r);
	assert_true(r.score >= P.threshold);
	so_baseline_note_submitted(b, &P, t);
	/* A reviewer approves it twenty minutes later: it is learned as of its submission. */
	so_baseline_learn(b, &P, &f, t);
	so_anomaly_score(b, &P, "deploy-bot", &f, t + DAY, &r);
	assert_int_equal(r.nreasons, 0);
	assert_true(r.score == 0);
	so_baseline_free(b);
}

static void
test_a_denied_action_stays_unusual(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	shell("[\"kubectl\",\"delete\",\"pod\",\"api-1\"]", "production", "deploy/api", &f);
	for (int day = 1; day <= 4; day++) {
		int64_t t = WEEK5 + day * DAY + 12 * HOUR + 30 * MIN;
		so_anomaly_score(b, &P, "deploy-bot", &f, t, &r);
		assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_VERB),
		                    "first time deploy-bot ran `kubectl delete` in production");
		so_baseline_note_submitted(b, &P, t); /* counted, denied, never learned */
	}
	so_baseline_free(b);
}

static void
test_an_unused_habit_is_forgotten_after_two_half_lives(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	shell("[\"helm\",\"upgrade\",\"api\"]", "staging", "deploy/api", &f);
	int64_t once = WEEK5 + 10 * HOUR;
	allowed(b, &f, once, &r);
	/* One use weighs 2^(-t/30 days): still known at 59 days (0.256), not at 61 (0.244). */
	so_anomaly_score(b, &P, "deploy-bot", &f, once + 59 * DAY, &r);
	assert_false(has_signal(&r, SO_ANOMALY_SIG_VERB));
	so_anomaly_score(b, &P, "deploy-bot", &f, once + 61 * DAY, &r);
	assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_VERB),
	                    "first time in 61 days that deploy-bot ran `helm upgrade` in staging");
	so_baseline_free(b);
}

static void
test_a_sustained_new_rate_becomes_usual_after_the_documented_time(void **state)
{
	/*
	 * From one request an hour to two a minute, in the same hours, none of them learned
	 * (say they wait for a review nobody gives): the usual rate R = S/A follows with the
	 * half-life. A steady rate stops being a burst once R reaches a sixth of it, here 20 an
	 * hour (docs/anomaly.md): with four weeks of the old rate behind it, on the fourth
	 * working day of the new one.
	 */
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	routine(9, 0, &f);
	int flagged_days[5] = {0};
	for (int day = 0; day < 5; day++) {
		for (int half = 9 * 120; half < 17 * 120; half++) {
			int64_t t = WEEK5 + day * DAY + half * (MIN / 2);
			so_anomaly_score(b, &P, "deploy-bot", &f, t, &r);
			flagged_days[day] |= has_signal(&r, SO_ANOMALY_SIG_BURST);
			so_baseline_note_submitted(b, &P, t);
		}
	}
	assert_true(flagged_days[0] && flagged_days[1] && flagged_days[2]);
	assert_false(flagged_days[3]);
	assert_false(flagged_days[4]);
	so_baseline_free(b);
}

/* ---- bounds, persistence, description ---- */

static void
test_memory_is_bounded_and_the_weakest_habit_is_evicted(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	int64_t t = WEEK5 + 9 * HOUR;
	for (int i = 0; i < 1000; i++) {
		char argv[64], env[32];
		snprintf(argv, sizeof(argv), "[\"tool%d\",\"run\"]", i);
		snprintf(env, sizeof(env), "env%d", i % 40);
		shell(argv, env, NULL, &f);
		so_baseline_learn(b, &P, &f, t + i * MIN);
	}
	json_t *doc = so_baseline_to_json(b);
	assert_non_null(doc);
	assert_true(json_array_size(json_object_get(doc, "shapes")) <= SO_ANOMALY_SHAPES);
	assert_true(json_array_size(json_object_get(doc, "environments")) <= SO_ANOMALY_ENVS);
	char *text = canonical(doc);
	assert_true(strlen(text) < 64 * 1024);
	free(text);
	json_decref(doc);
	/* The routine (weights of 20 and more) survived; the latest one-off is known; the
	 * first one-offs were evicted. */
	int64_t now = t + 1000 * MIN;
	routine(12, 0, &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, now, &r);
	assert_false(has_signal(&r, SO_ANOMALY_SIG_VERB));
	assert_false(has_signal(&r, SO_ANOMALY_SIG_SHAPE_ENV));
	shell("[\"tool999\",\"run\"]", "env39", NULL, &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, now, &r);
	assert_false(has_signal(&r, SO_ANOMALY_SIG_VERB));
	shell("[\"tool0\",\"run\"]", "env0", NULL, &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, now, &r);
	assert_string_equal(reason_of(&r, SO_ANOMALY_SIG_VERB), "first time deploy-bot ran `tool0 run`");
	so_baseline_free(b);
}

static void
test_scoring_changes_nothing(void **state)
{
	so_baseline_t *b = history(2);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	json_t *before = so_baseline_to_json(b);
	shell("[\"kubectl\",\"delete\",\"pod\",\"x\"]", "prod-eu", "secret/x", &f);
	so_anomaly_score(b, &P, "deploy-bot", &f, WEEK5 + 100 * DAY, &r);
	json_t *after = so_baseline_to_json(b);
	assert_true(json_equal(before, after));
	json_decref(before);
	json_decref(after);
	so_baseline_free(b);
}

/* Probes that exercise every signal, for comparing two baselines. */
static void
assert_same_scores(const so_baseline_t *a, const so_baseline_t *b)
{
	so_anomaly_features_t f;
	so_anomaly_result_t ra, rb;
	int64_t times[] = {WEEK5 + DAY + 12 * HOUR, WEEK5 + 6 * DAY + 3 * HOUR, WEEK5 + 90 * DAY};
	for (int k = 0; k < 6; k++) {
		if (k < 4)
			routine(9 + 2 * k, 0, &f);
		else if (k == 4)
			export_rows(5e6, &f);
		else
			shell("[\"kubectl\",\"delete\",\"x\"]", "prod-eu", "secret/x", &f);
		for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
			so_anomaly_score(a, &P, "deploy-bot", &f, times[i], &ra);
			so_anomaly_score(b, &P, "deploy-bot", &f, times[i], &rb);
			assert_true(ra.score == rb.score);
			assert_int_equal(ra.nreasons, rb.nreasons);
			for (size_t q = 0; q < ra.nreasons; q++)
				assert_string_equal(ra.reasons[q], rb.reasons[q]);
		}
	}
}

static void
test_the_persisted_form_reads_back_the_same(void **state)
{
	so_baseline_t *b = history(4);
	for (int i = 0; i < 5; i++)
		so_baseline_note_submitted(b, &P, WEEK5 + i * 1000);
	json_t *doc = so_baseline_to_json(b);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc, "version")), SO_BASELINE_VERSION);
	/* Through text, as the store keeps it. */
	char *text = canonical(doc);
	json_t *again = load(text);
	so_baseline_t *back = NULL;
	assert_int_equal(so_baseline_from_json(again, &back), SO_OK);
	assert_non_null(back);
	json_t *doc2 = so_baseline_to_json(back);
	char *text2 = canonical(doc2);
	assert_string_equal(text, text2);
	assert_same_scores(b, back);
	free(text);
	free(text2);
	json_decref(doc);
	json_decref(doc2);
	json_decref(again);
	so_baseline_free(back);
	so_baseline_free(b);

	/* The smallest document is an empty baseline. */
	json_t *empty = load("{\"version\":1}");
	assert_int_equal(so_baseline_from_json(empty, &back), SO_OK);
	assert_true(so_baseline_is_learning(back, &P, WEEK5));
	so_baseline_free(back);
	json_decref(empty);
}

/* A copy of `doc` with the member at `path` ("shapes.0.verb") replaced by `value` (JSON). */
static json_t *
mutate(const json_t *doc, const char *path, const char *value)
{
	json_t *copy = json_deep_copy(doc);
	json_t *at = copy;
	char buf[128], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	char *part = strtok_r(buf, ".", &save);
	for (char *next; part; part = next) {
		next = strtok_r(NULL, ".", &save);
		int index = json_is_array(at);
		size_t i = index ? (size_t)strtoul(part, NULL, 10) : 0;
		if (next) {
			at = index ? json_array_get(at, i) : json_object_get(at, part);
			continue;
		}
		int rc = index ? json_array_set_new(at, i, load(value))
		               : json_object_set_new(at, part, load(value));
		assert_int_equal(rc, 0);
	}
	return copy;
}

static void
assert_refused(const json_t *doc, const char *path, const char *value)
{
	json_t *bad = mutate(doc, path, value);
	so_baseline_t *b = (so_baseline_t *)1;
	int rc = so_baseline_from_json(bad, &b);
	if (rc != SO_EINVAL)
		fail_msg("%s = %.60s was accepted", path, value);
	assert_null(b);
	json_decref(bad);
}

static void
test_the_persisted_form_is_never_trusted(void **state)
{
	so_baseline_t *b = history(1);
	so_baseline_note_submitted(b, &P, WEEK5);
	json_t *doc = so_baseline_to_json(b);
	so_baseline_free(b);

	char big[8192] = "[", item[128];
	for (int i = 0; i < SO_ANOMALY_SHAPES + 1; i++) {
		snprintf(item, sizeof(item), "%s{\"kind\":\"shell\",\"verb\":\"v%d\",\"environment\":\"\"}",
		         i ? "," : "", i);
		append(big, sizeof(big), item);
	}
	append(big, sizeof(big), "]");
	char recent[4096] = "[";
	for (int i = 0; i < SO_ANOMALY_RECENT + 1; i++) {
		snprintf(item, sizeof(item), "%s%d", i ? "," : "", i);
		append(recent, sizeof(recent), item);
	}
	append(recent, sizeof(recent), "]");
	char long_verb[128]; /* one byte over the limit */
	snprintf(long_verb, sizeof(long_verb), "\"%0*d\"", SO_ANOMALY_VERB_LEN, 7);

	assert_refused(doc, "version", "2");
	assert_refused(doc, "version", "\"1\"");
	assert_refused(doc, "as_of", "-5");
	assert_refused(doc, "half_life_days", "0.001");
	assert_refused(doc, "learned", "4294967296");
	assert_refused(doc, "shapes", big);
	assert_refused(doc, "shapes", "{}");
	assert_refused(doc, "shapes.0.weight", "-1");
	assert_refused(doc, "shapes.0.weight", "1e300");
	assert_refused(doc, "shapes.0.weight", "\"1\"");
	assert_refused(doc, "shapes.0.verb", long_verb);
	assert_refused(doc, "shapes.0.verb", "\"a`b\"");
	assert_refused(doc, "shapes.0.kind", "null");
	assert_refused(doc, "shapes.0.last", "9007199254740993");
	assert_refused(doc, "shapes.1", "{\"kind\":\"shell\",\"verb\":\"kubectl get\",\"environment\":\"staging\"}");
	assert_refused(doc, "environments.0.name", "\"\"");
	assert_refused(doc, "environments.0.name", "\"a\\nb\"");
	assert_refused(doc, "environments.1.name", "\"staging\"");
	assert_refused(doc, "hours", "[1,2,3]");
	assert_refused(doc, "hours.5", "null");
	assert_refused(doc, "sizes.rows.largest", "-3");
	assert_refused(doc, "sizes.rows", "[]");
	assert_refused(doc, "rate.recent", recent);
	assert_refused(doc, "rate.recent.0", "99999999999999");
	assert_refused(doc, "rate.last_hour", "-2");
	assert_refused(doc, "rate.minute.pending_at", "99999999999999");
	assert_refused(doc, "last_learned", "99999999999999");

	so_baseline_t *out = (so_baseline_t *)1;
	json_t *arr = load("[]");
	assert_int_equal(so_baseline_from_json(arr, &out), SO_EINVAL);
	assert_null(out);
	json_decref(arr);
	/* Unknown members are ignored (a newer daemon may add some). */
	json_t *extra = mutate(doc, "comment", "\"hello\"");
	assert_int_equal(so_baseline_from_json(extra, &out), SO_OK);
	so_baseline_free(out);
	json_decref(extra);
	json_decref(doc);
}

static void
test_a_changed_half_life_keeps_what_was_learned(void **state)
{
	so_baseline_t *b = history(2);
	json_t *before = so_baseline_to_json(b);
	P.half_life_days = 7;
	/* A submission at the very time of the last one: no decay in between. */
	so_baseline_note_submitted(b, &P, T0 + 11 * DAY + 16 * HOUR + 5 * MIN);
	json_t *after = so_baseline_to_json(b);
	json_t *s0 = json_array_get(json_object_get(before, "shapes"), 0);
	json_t *s1 = json_array_get(json_object_get(after, "shapes"), 0);
	assert_true(fabs(json_number_value(json_object_get(s0, "weight")) -
	                 json_number_value(json_object_get(s1, "weight"))) < 1e-9);
	assert_true(json_number_value(json_object_get(after, "half_life_days")) == 7);
	json_decref(before);
	json_decref(after);
	so_baseline_free(b);
}

static void
test_describe_says_what_is_normal(void **state)
{
	so_baseline_t *b = history(4);
	so_buf_t out;
	so_buf_init(&out, 1 << 20);
	assert_int_equal(so_baseline_describe(b, &P, "deploy-bot", WEEK5, &out), SO_OK);
	const char *s = so_buf_cstr(&out);
	assert_prefix(s, "deploy-bot: 160 requests learned since 2026-10-05 (the last 2 days ago), "
	                 "160 submitted\n");
	assert_contains(s, "`kubectl get` in staging");
	assert_contains(s, "`snowflake/export` (mcp.tool) in production");
	assert_contains(s, "\n    rows up to 10,000 (3 days ago)\n");
	assert_contains(s, "`git push` ");
	assert_contains(s, "environments (weight, last use):\n  staging");
	assert_contains(s, "deploy/");
	assert_contains(s, "hours: usually 09:00–17:00 on weekdays (UTC)");
	assert_contains(s, "rate: usual 1 an hour when active; busiest minute 1");
	assert_contains(s, "rows up to 10,000 (3 days ago");
	assert_int_equal(so_utf8_prefix(s, out.len), out.len);
	so_buf_reset(&out);
	assert_int_equal(so_baseline_describe(NULL, &P, "new-bot", WEEK5, &out), SO_OK);
	assert_string_equal(so_buf_cstr(&out), "new-bot: nothing learned yet; it is new until it has "
	                                       "20 learned requests over 7 days\n");
	so_buf_free(&out);
	so_baseline_free(b);
}

static void
test_reasons_stay_bounded_and_utf8_for_long_names(void **state)
{
	so_baseline_t *b = history(4);
	so_anomaly_features_t f;
	so_anomaly_result_t r;
	char who[600] = "";
	for (int i = 0; i < 150; i++)
		append(who, sizeof(who), "☃"); /* 3 bytes each */
	char argv[600] = "[\"";
	for (int i = 0; i < 60; i++)
		append(argv, sizeof(argv), "ü");
	append(argv, sizeof(argv), "\"]");
	shell(argv, "€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€", "ẞẞẞẞẞẞẞẞẞẞẞẞẞẞẞẞẞẞẞẞẞẞ/x", &f);
	so_anomaly_score(b, &P, who, &f, WEEK5 + 6 * DAY + 3 * HOUR, &r);
	assert_true(r.nreasons >= 3);
	for (size_t i = 0; i < r.nreasons; i++) {
		size_t len = strlen(r.reasons[i]);
		assert_true(len < SO_ANOMALY_REASON_LEN);
		assert_int_equal(so_utf8_prefix(r.reasons[i], len), len);
	}
	json_t *j = so_anomaly_result_to_json(&r);
	assert_non_null(j); /* jansson takes only valid UTF-8 */
	json_decref(j);
	so_baseline_free(b);
}

static void
test_params_defaults_and_bounds(void **state)
{
	so_anomaly_params_t p;
	char err[128] = "";
	so_anomaly_params_default(&p);
	assert_true(p.learning_ms == 7 * DAY);
	assert_int_equal(p.learning_events, 20);
	assert_true(p.learning_score == 0.5 && p.threshold == 0.5 && p.half_life_days == 30);
	assert_int_equal(so_anomaly_params_check(&p, err, sizeof(err)), SO_OK);
	p.half_life_days = 0;
	assert_int_equal(so_anomaly_params_check(&p, err, sizeof(err)), SO_EINVAL);
	assert_contains(err, "half-life");
	so_anomaly_params_default(&p);
	p.tz_offset_minutes = 900;
	assert_int_equal(so_anomaly_params_check(&p, err, sizeof(err)), SO_EINVAL);
	so_anomaly_params_default(&p);
	p.threshold = 1.5;
	assert_int_equal(so_anomaly_params_check(&p, err, sizeof(err)), SO_EINVAL);
	assert_string_equal(so_anomaly_signal_name(SO_ANOMALY_SIG_BURST), "burst");
	assert_string_equal(so_anomaly_signal_name(99), "?");
}

#define T(name) cmocka_unit_test_setup(name, setup)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_features_shell_verb_is_the_command_and_its_sub_command),
		T(test_features_tool_verb_is_server_and_tool),
		T(test_features_resource_prefix_ends_at_the_first_slash_or_colon),
		T(test_features_sizes_come_from_context_and_arguments),
		T(test_features_argument_bytes_are_the_canonical_length),
		T(test_features_names_are_cut_at_a_character_and_cleaned),
		T(test_hour_of_week_counts_from_sunday_midnight_with_the_offset),
		T(test_a_principal_without_baseline_is_new_and_never_scores_zero),
		T(test_learning_lasts_until_both_the_time_and_the_count_are_reached),
		T(test_steady_normal_traffic_raises_no_flags),
		T(test_a_new_verb_is_flagged_by_name),
		T(test_a_new_environment_is_flagged_with_the_known_ones),
		T(test_a_known_verb_in_a_known_environment_for_the_first_time_is_flagged),
		T(test_a_new_resource_prefix_is_a_weak_signal),
		T(test_off_hours_are_flagged_with_the_usual_hours),
		T(test_a_known_hour_on_a_known_day_never_seen_together_is_off_hours),
		T(test_off_hours_use_the_configured_offset),
		T(test_a_burst_is_flagged_against_the_usual_rate),
		T(test_a_learned_burst_cannot_raise_its_own_bar),
		T(test_a_volume_far_above_its_largest_is_flagged),
		T(test_sizes_are_judged_per_action),
		T(test_long_arguments_are_flagged_as_volume),
		T(test_signals_combine_and_the_strongest_come_first),
		T(test_an_approved_unusual_action_becomes_normal),
		T(test_a_denied_action_stays_unusual),
		T(test_an_unused_habit_is_forgotten_after_two_half_lives),
		T(test_a_sustained_new_rate_becomes_usual_after_the_documented_time),
		T(test_memory_is_bounded_and_the_weakest_habit_is_evicted),
		T(test_scoring_changes_nothing),
		T(test_the_persisted_form_reads_back_the_same),
		T(test_the_persisted_form_is_never_trusted),
		T(test_a_changed_half_life_keeps_what_was_learned),
		T(test_describe_says_what_is_normal),
		T(test_reasons_stay_bounded_and_utf8_for_long_names),
		T(test_params_defaults_and_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
