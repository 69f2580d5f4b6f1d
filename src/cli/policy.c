/**
 * Verbs about policy, run offline against a configuration file (no daemon needed):
 *   signoff policy check FILE
 *   signoff policy test FILE REQUEST.json      dry-run one request, print the trace
 *   signoff policy test FILE --cases DIR       run a folder of request/expected cases
 *
 * A request file is {requester, action, intent?, context?, on_behalf_of?, time?} where
 * `time` (RFC 3339 UTC, e.g. "2026-11-24T02:10:00Z") fixes the clock for time.* rules.
 * A case file is {"request": {...}, "expect": {outcome, rules?, requirements?, error?}}.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/json.h"
#include "core/core.h"
#include "daemon/config.h"
#include "policy/policy.h"

#define MAX_CASES 10000
#define MAX_REQUEST_FILE (1u << 20)

static int
policy_help(FILE *f)
{
	fputs("usage: signoff policy check FILE\n"
	      "       signoff policy test FILE REQUEST.json [--json]\n"
	      "       signoff policy test FILE --cases DIR [--json]\n\n"
	      "Check a signoffd configuration's policy, or dry-run requests against it, offline.\n"
	      "FILE is the signoffd configuration (principals and policy). REQUEST.json holds\n"
	      "{requester, action, intent, context, on_behalf_of, time}. With --cases, every\n"
	      "*.json in DIR holds {\"request\": ..., \"expect\": {\"outcome\", \"rules\",\n"
	      "\"requirements\", \"error\"}}; the exit status is 1 when any case fails.\n\n"
	      "options:\n"
	      "  --cases DIR        run every case in DIR\n"
	      "  --json             print JSON instead of text\n"
	      "  -h, --help         show this help\n",
	      f);
	return f == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* Decide one request object. On success `*out` is the decision as JSON (owned) and `*error`
 * is NULL; when the request is refused, `*error` names the code and `*out` holds the message. */
static int
decide(const so_config_t *cfg, const json_t *spec, json_t **out, const char **error, char *msg,
       size_t msglen)
{
	static const unsigned char rnd[10] = {0};
	so_request_t *r = NULL;
	so_core_err_t cerr = {0};
	so_decision_t d;
	int64_t now = so_clock_now_ms();

	*out = NULL;
	*error = NULL;
	if (!json_is_object(spec)) {
		snprintf(msg, msglen, "the request must be a JSON object");
		return -1;
	}
	const char *who = json_string_value(json_object_get(spec, "requester"));
	const so_principal_t *requester = so_directory_find(&cfg->directory, who);
	if (!requester) {
		snprintf(msg, msglen, "requester '%s' is not a principal of the configuration",
		         who ? who : "(missing)");
		return -1;
	}
	const char *when = json_string_value(json_object_get(spec, "time"));
	if (when && so_clock_parse_rfc3339(when, &now)) {
		snprintf(msg, msglen, "time '%s' is not RFC 3339 UTC like 2026-11-24T02:10:00Z", when);
		return -1;
	}
	json_t *body = json_deep_copy(spec);
	json_object_del(body, "requester");
	json_object_del(body, "time");
	int rc = so_core_new_request(&cfg->directory, requester, body, now, rnd, &r, &cerr);
	json_decref(body);
	if (rc == SO_OK)
		rc = so_policy_decide(&cfg->policy, &cfg->directory, r, now, &d, &cerr);
	if (rc == SO_OK) {
		so_core_apply_decision(r, &d, 0, now);
		json_t *view = so_request_to_json(&cfg->directory, r);
		*out = json_incref(json_object_get(view, "decision"));
		json_decref(view);
	} else if (cerr.code) {
		*error = cerr.code;
		snprintf(msg, msglen, "%s", cerr.message);
		rc = SO_OK;
	} else {
		snprintf(msg, msglen, "%s", so_strerror(rc));
		rc = -1;
	}
	so_request_free(r);
	return rc;
}

static void
print_trace(const json_t *decision)
{
	size_t i;
	json_t *rule, *q;
	printf("outcome: %s\npolicy:  %s\n", cli_str(decision, "outcome", "?"),
	       cli_str(decision, "policy_version", "?"));
	printf("rules:\n");
	json_array_foreach(json_object_get(decision, "rules"), i, rule) {
		printf("  %-24s %-6s ", cli_str(rule, "name", "?"), cli_str(rule, "decide", "?"));
		cli_put_safe(stdout, cli_str(rule, "reason", ""));
		const char *why = cli_str(rule, "why", NULL);
		if (why) {
			printf("\n  %-24s        (", "");
			cli_put_safe(stdout, why);
			printf(")");
		}
		printf("\n");
	}
	json_t *reqs = json_object_get(decision, "requirements");
	if (json_array_size(reqs)) {
		printf("requirements:\n");
		json_array_foreach(reqs, i, q) {
			const char *g = cli_str(q, "group", NULL);
			printf("  %lld from %s%s", (long long)json_integer_value(json_object_get(q, "count")),
			       g ? "group " : "principals ", g ? g : "");
			json_t *pl = json_object_get(q, "principals");
			size_t k;
			json_t *p;
			json_array_foreach(pl, k, p) printf("%s%s", k ? ", " : "", json_string_value(p));
			json_t *esc = json_object_get(q, "escalation");
			if (esc)
				printf(" (escalates to %s)", cli_str(esc, "to_group", "?"));
			printf("\n");
		}
	}
}

static json_t *
load_json_file(const char *path, char *msg, size_t msglen)
{
	json_error_t jerr;
	json_t *v = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!v)
		snprintf(msg, msglen, "%.300s:%d: %.160s", path, jerr.line, jerr.text);
	return v;
}

/* Compare one case's expectation with the decision; describe the first difference. */
static int
case_matches(const json_t *expect, const json_t *decision, const char *error, char *why,
             size_t whylen)
{
	const char *want_error = json_string_value(json_object_get(expect, "error"));
	if (want_error || error) {
		if (!want_error || !error || strcmp(want_error, error)) {
			snprintf(why, whylen, "expected %s %s, got %s %s", want_error ? "error" : "outcome",
			         want_error ? want_error : cli_str(expect, "outcome", "?"),
			         error ? "error" : "outcome",
			         error ? error : cli_str(decision, "outcome", "?"));
			return 0;
		}
		return 1;
	}
	const char *want = json_string_value(json_object_get(expect, "outcome"));
	const char *got = cli_str(decision, "outcome", "?");
	if (!want || strcmp(want, got)) {
		snprintf(why, whylen, "expected outcome %s, got %s", want ? want : "(missing)", got);
		return 0;
	}
	json_t *want_rules = json_object_get(expect, "rules");
	if (want_rules) {
		json_t *names = json_array();
		size_t i;
		json_t *rule;
		json_array_foreach(json_object_get(decision, "rules"), i, rule)
		    json_array_append_new(names, json_string(cli_str(rule, "name", "")));
		int same = json_equal(names, want_rules);
		char *g = json_dumps(names, JSON_COMPACT), *w = json_dumps(want_rules, JSON_COMPACT);
		if (!same)
			snprintf(why, whylen, "expected rules %s, got %s", w ? w : "?", g ? g : "?");
		free(g);
		free(w);
		json_decref(names);
		if (!same)
			return 0;
	}
	json_t *want_reqs = json_object_get(expect, "requirements");
	if (want_reqs) {
		json_t *reqs = json_object_get(decision, "requirements");
		json_t *plain = json_array();
		size_t i;
		json_t *q;
		json_array_foreach(reqs, i, q) {
			json_t *c = json_deep_copy(q);
			json_object_del(c, "approved_by");
			json_object_del(c, "escalation");
			json_array_append_new(plain, c);
		}
		int same = json_equal(plain, want_reqs);
		char *g = json_dumps(plain, JSON_COMPACT), *w = json_dumps(want_reqs, JSON_COMPACT);
		if (!same)
			snprintf(why, whylen, "expected requirements %s, got %s", w ? w : "?", g ? g : "?");
		free(g);
		free(w);
		json_decref(plain);
		if (!same)
			return 0;
	}
	return 1;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
run_cases(struct cli *cli, const so_config_t *cfg, const char *dir)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	int passed = 0, failed = 0;

	if (!d) {
		cli_warn("policy test: cannot open %s", dir);
		return CLI_EXIT_ERROR;
	}
	while ((e = readdir(d)) && n < MAX_CASES) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".json") || e->d_name[0] == '.')
			continue;
		char **grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown)
			break;
		names = grown;
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	json_t *results = json_array();
	for (size_t i = 0; i < n; i++) {
		char path[4096], msg[512] = "", why[1024] = "";
		json_t *decision = NULL;
		const char *error = NULL;
		int ok = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		json_t *c = load_json_file(path, msg, sizeof(msg));
		json_t *expect = json_object_get(c, "expect");
		if (!c) {
			snprintf(why, sizeof(why), "%s", msg);
		} else if (!json_is_object(expect)) {
			snprintf(why, sizeof(why), "the case has no \"expect\" object");
		} else if (decide(cfg, json_object_get(c, "request"), &decision, &error, msg,
		                  sizeof(msg))) {
			snprintf(why, sizeof(why), "bad request: %s", msg);
		} else {
			ok = case_matches(expect, decision, error, why, sizeof(why));
		}
		ok ? passed++ : failed++;
		if (cli->json) {
			json_array_append_new(results, json_pack("{s:s, s:b, s:s}", "case", names[i], "ok",
			                                         ok, "why", why));
		} else {
			printf("%s %s", ok ? "ok  " : "FAIL", names[i]);
			if (!ok) {
				printf(": ");
				cli_put_safe(stdout, why);
			}
			printf("\n");
		}
		json_decref(decision);
		json_decref(c);
		free(names[i]);
	}
	free(names);
	if (cli->json)
		cli_print_json(results);
	else
		printf("%d passed, %d failed\n", passed, failed);
	json_decref(results);
	if (!n) {
		cli_warn("policy test: no *.json cases in %s", dir);
		return CLI_EXIT_ERROR;
	}
	return failed ? 1 : CLI_EXIT_OK;
}

int
cli_policy(struct cli *cli, int argc, char **argv)
{
	enum { OPT_CASES = CLI_OPT_FIRST_VERB };
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{"cases", required_argument, NULL, OPT_CASES},
		{NULL, 0, NULL, 0},
	};
	const char *cases = NULL;
	char err[1024];
	so_config_t cfg;
	int opt;

	while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (opt == OPT_CASES) {
			cases = optarg;
			continue;
		}
		switch (cli_option(cli, opt, argv)) {
		case CLI_OPT_HANDLED:
			break;
		case CLI_OPT_HELP:
			return policy_help(stdout);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	int nargs = argc - optind;
	if (nargs < 2)
		return policy_help(stderr);
	const char *sub = argv[optind], *file = argv[optind + 1];
	int is_check = !strcmp(sub, "check"), is_test = !strcmp(sub, "test");
	if (!is_check && !is_test)
		return cli_usage_error(cli, "unknown subcommand '%s' (check or test)", sub);
	if ((is_check && (nargs != 2 || cases)) ||
	    (is_test && ((cases && nargs != 2) || (!cases && nargs != 3))))
		return policy_help(stderr);
	if (so_config_load_policy_file(file, &cfg, err, sizeof(err))) {
		fprintf(stderr, "signoff policy: %s\n", err);
		return 1;
	}
	int status = CLI_EXIT_OK;
	if (is_check) {
		if (cli->json) {
			json_t *o = json_pack("{s:b, s:s, s:I}", "valid", 1, "policy_version",
			                      cfg.policy.version, "rules", (json_int_t)cfg.policy.nrules);
			cli_print_json(o);
			json_decref(o);
		} else
			printf("%s: policy is valid (%zu rules, default %s, %s)\n", file, cfg.policy.nrules,
			       so_outcome_name((enum so_outcome)cfg.policy.def), cfg.policy.version);
	} else if (cases) {
		status = run_cases(cli, &cfg, cases);
	} else {
		char msg[512];
		const char *error = NULL;
		json_t *decision = NULL;
		json_t *spec = load_json_file(argv[optind + 2], msg, sizeof(msg));
		if (!spec || decide(&cfg, spec, &decision, &error, msg, sizeof(msg))) {
			fprintf(stderr, "signoff policy test: %s\n", msg);
			status = CLI_EXIT_ERROR;
		} else if (error) {
			if (cli->json) {
				json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", error, "message", msg);
				cli_print_json(e);
				json_decref(e);
			} else
				printf("refused: %s: %s\n", error, msg);
		} else if (cli->json) {
			cli_print_json(decision);
		} else {
			print_trace(decision);
		}
		json_decref(decision);
		json_decref(spec);
	}
	so_config_free(&cfg);
	return status;
}
