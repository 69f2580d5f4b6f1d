/**
 * `signoff anomaly show [PRINCIPAL]` and `signoff anomaly score REQUEST.json`: what the
 * daemon has learned of a principal, in words, and how unusual a request would be, without
 * submitting it (docs/anomaly.md).
 */
#include <errno.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/error.h"

#define ANOMALY_USAGE                                                                      \
	"usage: signoff anomaly show [PRINCIPAL]\n"                                            \
	"       signoff anomaly score REQUEST.json\n\n"                                        \
	"show: the baseline the daemon learned for PRINCIPAL (default: the token's own), in\n"  \
	"words: its usual actions, environments, resources, hours, rates and sizes.\n"         \
	"score: how unusual the request in REQUEST.json ({\"action\", \"context\"?,\n"          \
	"\"requester\"?}; '-' reads standard input) would be now, with the reasons; nothing\n" \
	"is submitted. You may look at yourself, the agents you own, or anyone if you are an\n" \
	"admin or auditor.\n"

/** Principal ids go into a query string: keep to the characters that need no escaping. */
static int
id_ok(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n <= 128 &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.@") == n;
}

static int
show(struct cli *cli, const char *principal)
{
	so_client_error_t err;
	json_t *answer = NULL;
	char path[256];
	int rc;

	if (principal && !id_ok(principal))
		return cli_usage_error(cli, "a principal id has only letters, digits and - _ . @");
	snprintf(path, sizeof(path), "/v1/anomaly/baseline%s%s", principal ? "?principal=" : "",
	         principal ? principal : "");
	rc = so_client_get_json(cli->client, path, &answer, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, principal, rc, &err);
	if (cli->json)
		cli_print_json(answer);
	else
		cli_put_safe(stdout, cli_str(answer, "description", ""));
	json_decref(answer);
	return CLI_EXIT_OK;
}

static int
score(struct cli *cli, const char *file)
{
	so_client_error_t err;
	json_error_t jerr;
	json_t *request = NULL, *answer = NULL;
	const json_t *reasons;
	so_buf_t buf;
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	size_t i;
	int rc, status = CLI_EXIT_ERROR;

	so_buf_init(&buf, CLI_MAX_CONTEXT_FILE);
	if (!f) {
		cli_warn("anomaly score: %s: %s", file, strerror(errno));
		goto out;
	}
	if (so_buf_read_file(&buf, f) != SO_OK) {
		cli_warn("anomaly score: %s: unreadable or over %u bytes", file, CLI_MAX_CONTEXT_FILE);
		goto out;
	}
	request = json_loadb(so_buf_cstr(&buf), buf.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(request)) {
		cli_warn("anomaly score: %s:%d: %s", file, jerr.line,
		         request ? "not a JSON object" : jerr.text);
		goto out;
	}
	rc = so_client_post_json(cli->client, "/v1/anomaly/score", request, &answer, &err);
	if (rc != SO_CLIENT_OK) {
		status = cli_fail(cli, NULL, rc, &err);
		goto out;
	}
	if (cli->json) {
		cli_print_json(answer);
	} else {
		printf("score %.3f\n", json_number_value(json_object_get(answer, "score")));
		reasons = json_object_get(answer, "reasons");
		for (i = 0; i < json_array_size(reasons); i++) {
			fputs("  - ", stdout);
			cli_put_safe(stdout, json_string_value(json_array_get(reasons, i)));
			fputc('\n', stdout);
		}
	}
	status = CLI_EXIT_OK;
out:
	if (f && f != stdin)
		fclose(f);
	so_buf_free(&buf);
	json_decref(request);
	json_decref(answer);
	return status;
}

int
cli_anomaly(struct cli *cli, int argc, char **argv)
{
	int status;

	if ((status = cli_common_args(cli, argc, argv, ANOMALY_USAGE)) >= 0)
		return status;
	if (argc - optind < 1)
		return cli_usage_error(cli, "expected: anomaly show [PRINCIPAL] | anomaly score FILE");
	if (strcmp(argv[optind], "show") == 0 && argc - optind <= 2) {
		if ((status = cli_connect(cli, true)) != CLI_EXIT_OK)
			return status;
		return show(cli, argc - optind == 2 ? argv[optind + 1] : NULL);
	}
	if (strcmp(argv[optind], "score") == 0 && argc - optind == 2) {
		if ((status = cli_connect(cli, true)) != CLI_EXIT_OK)
			return status;
		return score(cli, argv[optind + 1]);
	}
	return cli_usage_error(cli, "expected: anomaly show [PRINCIPAL] | anomaly score FILE");
}
