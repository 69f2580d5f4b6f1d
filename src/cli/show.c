/**
 * Verbs that read requests: show, list; and the human rendering of a request.
 * Every string from the daemon is printed through cli_put_safe(): requests carry text
 * written by agents, and a reviewer's terminal must not obey it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

#define LABEL_WIDTH 14

/** Seconds since the epoch of an RFC 3339 UTC time, or -1. */
static time_t
parse_time(const char *s)
{
	struct tm tm;
	const char *rest;

	if (s == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL)
		return -1;
	return timegm(&tm);
}

static void
label(const char *name)
{
	printf("  %-*s ", LABEL_WIDTH, name);
}

/** One line "label: text", skipped when text is NULL. */
static void
line(const char *name, const char *text)
{
	if (text == NULL)
		return;
	label(name);
	cli_put_safe(stdout, text);
	putchar('\n');
}

/** Compact JSON of `v`, control characters escaped. */
static void
put_compact(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);

	cli_put_safe(stdout, s != NULL ? s : "?");
	free(s);
}

/** A time line with how long ago or ahead it is: "2026-...Z (in 29m10s)". */
static void
time_line(const char *name, const json_t *request, const char *key, time_t now)
{
	const char *s = cli_str(request, key, NULL);
	time_t t = parse_time(s);
	char ago[32];

	if (s == NULL)
		return;
	label(name);
	cli_put_safe(stdout, s);
	if (t >= 0 && t > now)
		printf(" (in %s)", cli_format_elapsed((long)(t - now), ago, sizeof(ago)));
	else if (t >= 0)
		printf(" (%s ago)", cli_format_elapsed((long)(now - t), ago, sizeof(ago)));
	putchar('\n');
}

/** "shell: kubectl get pods" or "tool NAME" — a one-line summary of an action. */
static void
put_action_summary(FILE *f, const json_t *action)
{
	const json_t *command = json_object_get(action, "command");
	const char *tool = cli_str(action, "tool", NULL);

	cli_put_safe(f, cli_str(action, "kind", "?"));
	if (json_is_array(command)) {
		fputs(": ", f);
		cli_put_argv(f, command);
	} else if (tool != NULL) {
		fputs(": ", f);
		cli_put_safe(f, tool);
	}
}

static void
print_action(const json_t *action)
{
	static const char *const known[] = {"kind", "command", "tool", "resource", "environment"};
	const char *key;
	json_t *value;
	size_t i;

	label("action:");
	put_action_summary(stdout, action);
	putchar('\n');
	line("resource:", cli_str(action, "resource", NULL));
	line("environment:", cli_str(action, "environment", NULL));
	json_object_foreach((json_t *)action, key, value) {
		bool seen = false;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			seen = seen || strcmp(key, known[i]) == 0;
		if (seen)
			continue;
		printf("  ");
		cli_put_safe(stdout, key);
		printf(":%*s ", (int)(LABEL_WIDTH > strlen(key) + 1 ? LABEL_WIDTH - strlen(key) - 1 : 0), "");
		put_compact(value);
		putchar('\n');
	}
}

/** Context for reviewers: one line per key; multi-line strings (diffs) shown as blocks. */
static void
print_context(const json_t *context)
{
	const char *key;
	json_t *value;

	if (!json_is_object(context) || json_object_size(context) == 0)
		return;
	printf("  context:\n");
	json_object_foreach((json_t *)context, key, value) {
		const char *s = json_string_value(value);
		printf("    ");
		cli_put_safe(stdout, key);
		if (s != NULL && strchr(s, '\n') != NULL) {
			printf(":\n");
			while (*s != '\0') {
				const char *nl = strchr(s, '\n');
				size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);
				char *piece = strndup(s, n);
				printf("      | ");
				cli_put_safe(stdout, piece != NULL ? piece : "?");
				putchar('\n');
				free(piece);
				s += n;
				if (*s == '\n')
					s++;
			}
		} else {
			printf(": ");
			if (s != NULL)
				cli_put_safe(stdout, s);
			else
				put_compact(value);
			putchar('\n');
		}
	}
}

static void
print_decision(const json_t *decision)
{
	const json_t *rules = json_object_get(decision, "rules");
	const json_t *reqs = json_object_get(decision, "requirements");
	json_t *r, *who;
	size_t i, j;

	if (!json_is_object(decision))
		return;
	label("decision:");
	cli_put_safe(stdout, cli_str(decision, "outcome", "?"));
	if (cli_str(decision, "policy_version", NULL) != NULL) {
		printf(" (policy ");
		cli_put_safe(stdout, cli_str(decision, "policy_version", ""));
		putchar(')');
	}
	putchar('\n');
	json_array_foreach(rules, i, r) {
		printf("    rule ");
		cli_put_safe(stdout, cli_str(r, "name", "?"));
		printf(": ");
		cli_put_safe(stdout, cli_str(r, "decide", "?"));
		if (cli_str(r, "reason", NULL) != NULL && cli_str(r, "reason", "")[0] != '\0') {
			printf(" — ");
			cli_put_safe(stdout, cli_str(r, "reason", ""));
		}
		putchar('\n');
	}
	json_array_foreach(reqs, i, r) {
		json_t *by = json_object_get(r, "approved_by");
		long count = (long)json_integer_value(json_object_get(r, "count"));
		printf("    needs %ld approval%s from ", count, count == 1 ? "" : "s");
		cli_put_safe(stdout, cli_str(r, "group", "?"));
		printf(": ");
		if (json_array_size(by) == 0)
			printf("none yet");
		json_array_foreach(by, j, who) {
			if (j > 0)
				printf(", ");
			cli_put_safe(stdout, json_string_value(who) ? json_string_value(who) : "?");
		}
		if ((long)json_array_size(by) >= count)
			printf(" (met)");
		putchar('\n');
	}
}

static void
print_reviews(const json_t *reviews)
{
	json_t *r;
	size_t i;

	if (json_array_size(reviews) == 0)
		return;
	printf("  reviews:\n");
	json_array_foreach(reviews, i, r) {
		const char *decision = cli_str(r, "decision", "?");
		const char *comment = cli_str(r, "comment", "");
		printf("    ");
		cli_put_safe(stdout, cli_str(r, "reviewer", "?"));
		printf(" %s", strcmp(decision, "approve") == 0 ? "approved"
		              : strcmp(decision, "deny") == 0  ? "denied"
		                                               : "reviewed");
		if (cli_str(r, "channel", NULL) != NULL) {
			printf(" via ");
			cli_put_safe(stdout, cli_str(r, "channel", ""));
		}
		if (cli_str(r, "at", NULL) != NULL) {
			printf(" at ");
			cli_put_safe(stdout, cli_str(r, "at", ""));
		}
		if (comment[0] != '\0') {
			printf(": ");
			cli_put_safe(stdout, comment);
		}
		putchar('\n');
	}
}

void
cli_print_request(const json_t *request)
{
	const json_t *anomaly = json_object_get(request, "anomaly");
	const json_t *result = json_object_get(request, "result");
	const json_t *action = json_object_get(request, "action");
	time_t now = time(NULL);

	cli_put_safe(stdout, cli_str(request, "id", "?"));
	printf("  ");
	cli_put_safe(stdout, cli_str(request, "status", "?"));
	putchar('\n');
	line("requester:", cli_str(request, "requester", NULL));
	line("on behalf of:", cli_str(request, "on_behalf_of", NULL));
	if (json_is_object(action))
		print_action(action);
	line("intent:", cli_str(request, "intent", NULL));
	print_context(json_object_get(request, "context"));
	line("digest:", cli_str(request, "digest", NULL));
	print_decision(json_object_get(request, "decision"));
	if (json_is_object(anomaly) && json_number_value(json_object_get(anomaly, "score")) > 0) {
		label("anomaly:");
		printf("%.2f", json_number_value(json_object_get(anomaly, "score")));
		if (json_array_size(json_object_get(anomaly, "reasons")) > 0) {
			printf(" ");
			put_compact(json_object_get(anomaly, "reasons"));
		}
		putchar('\n');
	}
	print_reviews(json_object_get(request, "reviews"));
	time_line("created:", request, "created_at", now);
	time_line("expires:", request, "expires_at", now);
	time_line("decided:", request, "decided_at", now);
	time_line("grant expires:", request, "grant_expires_at", now);
	time_line("claimed:", request, "claimed_at", now);
	time_line("finished:", request, "finished_at", now);
	if (json_is_object(result)) {
		label("result:");
		printf("exit %lld", (long long)json_integer_value(json_object_get(result, "exit_code")));
		if (cli_str(result, "detail", NULL) != NULL) {
			printf(": ");
			cli_put_safe(stdout, cli_str(result, "detail", ""));
		}
		putchar('\n');
	}
}

int
cli_show(struct cli *cli, int argc, char **argv)
{
	so_client_error_t err;
	json_t *request = NULL;
	const char *id;
	int rc, status;

	if ((status = cli_common_args(
	         cli, argc, argv,
	         "usage: signoff show ID\n\n"
	         "Show a request: status, who asked and for whom, the action, the intent and\n"
	         "context, the policy decision with what it requires and who approved, the\n"
	         "reviews and the times.\n")) >= 0)
		return status;
	status = cli_connect_for_id(cli, argc, argv, &id);
	if (status != CLI_EXIT_OK)
		return status;
	rc = so_client_get(cli->client, id, 0, &request, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, id, rc, &err);
	if (cli->json)
		cli_print_json(request);
	else
		cli_print_request(request);
	json_decref(request);
	return CLI_EXIT_OK;
}

int
cli_list(struct cli *cli, int argc, char **argv)
{
	enum { OPT_PENDING = CLI_OPT_FIRST_VERB, OPT_STATUS, OPT_LIMIT, OPT_CURSOR };
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{"pending", no_argument, NULL, OPT_PENDING},
		{"status", required_argument, NULL, OPT_STATUS},
		{"limit", required_argument, NULL, OPT_LIMIT},
		{"cursor", required_argument, NULL, OPT_CURSOR},
		{NULL, 0, NULL, 0},
	};
	so_client_error_t err;
	json_t *page = NULL, *requests, *r;
	const char *filter = NULL, *cursor = NULL, *next;
	long limit = 0;
	size_t i;
	int opt, rc, status;
	time_t now = time(NULL);

	while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (opt) {
		case OPT_PENDING:
			filter = "pending";
			continue;
		case OPT_STATUS:
			filter = optarg;
			continue;
		case OPT_LIMIT:
			if (!cli_parse_long(optarg, 1, 200, &limit))
				return cli_usage_error(cli, "--limit must be 1..200");
			continue;
		case OPT_CURSOR:
			cursor = optarg;
			continue;
		}
		switch (cli_option(cli, opt, argv)) {
		case CLI_OPT_HANDLED:
			break;
		case CLI_OPT_HELP:
			printf("usage: signoff list [--pending] [--status S] [--limit N] [--cursor C]\n\n"
			       "List the requests you may see, newest first.\n\n"
			       "options:\n"
			       "  --pending          only pending requests (same as --status pending)\n"
			       "  --status S         only requests in status S (pending, approved, denied,\n"
			       "                     expired, cancelled, claimed, succeeded, failed)\n"
			       "  --limit N          at most N requests (1..200; default 50)\n"
			       "  --cursor C         continue after a previous page\n" CLI_COMMON_HELP);
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 0)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);

	status = cli_connect(cli, true);
	if (status != CLI_EXIT_OK)
		return status;
	rc = so_client_list(cli->client, filter, (int)limit, cursor, &page, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, NULL, rc, &err);
	if (cli->json) {
		cli_print_json(page);
		goto out;
	}
	requests = json_object_get(page, "requests");
	if (json_array_size(requests) == 0) {
		printf("no %s%srequests\n", filter != NULL ? filter : "", filter != NULL ? " " : "");
	} else {
		printf("%-30s  %-9s  %-16s  %-9s  %s\n", "ID", "STATUS", "REQUESTER", "AGE", "ACTION");
	}
	json_array_foreach(requests, i, r) {
		char age[32] = "?";
		time_t created = parse_time(cli_str(r, "created_at", NULL));
		const char *who = cli_str(r, "requester", "?");
		int pad;

		if (created >= 0)
			cli_format_elapsed((long)(now - created), age, sizeof(age));
		cli_put_safe(stdout, cli_str(r, "id", "?"));
		pad = 30 - (int)strlen(cli_str(r, "id", "?"));
		printf("%*s  ", pad > 0 ? pad : 0, "");
		cli_put_safe(stdout, cli_str(r, "status", "?"));
		pad = 9 - (int)strlen(cli_str(r, "status", "?"));
		printf("%*s  ", pad > 0 ? pad : 0, "");
		cli_put_safe(stdout, who);
		pad = 16 - (int)strlen(who);
		printf("%*s  %-9s  ", pad > 0 ? pad : 0, "", age);
		put_action_summary(stdout, json_object_get(r, "action"));
		putchar('\n');
	}
	next = cli_str(page, "next", NULL);
	if (next != NULL || json_is_integer(json_object_get(page, "next"))) {
		fprintf(stderr, "signoff: more requests: signoff list --cursor ");
		if (next != NULL)
			cli_put_safe(stderr, next);
		else
			fprintf(stderr, "%lld", (long long)json_integer_value(json_object_get(page, "next")));
		fputc('\n', stderr);
	}
out:
	json_decref(page);
	return CLI_EXIT_OK;
}
