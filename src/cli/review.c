/**
 * Verbs that change a request as a reviewer or requester: approve, deny, cancel.
 */
#include <string.h>

#include "cli/cli.h"

/** Print "VERBED ID: now STATUS[ — waiting for ...]" for humans, or the request as JSON. */
static void
print_outcome(const struct cli *cli, const char *done, const char *id, const json_t *request)
{
	char waits[512];
	const char *status = cli_str(request, "status", "?");

	if (cli->json) {
		cli_print_json(request);
		return;
	}
	printf("%s ", done);
	cli_put_safe(stdout, id);
	printf(": request is now ");
	cli_put_safe(stdout, status);
	if (strcmp(status, "pending") == 0) {
		cli_describe_wait(request, waits, sizeof(waits));
		if (waits[0] != '\0') {
			printf(", waiting for ");
			cli_put_safe(stdout, waits);
		}
	}
	putchar('\n');
}

static int
review(struct cli *cli, int argc, char **argv, so_client_decision_t decision)
{
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{"message", required_argument, NULL, 'm'},
		{NULL, 0, NULL, 0},
	};
	so_client_error_t err;
	json_t *request = NULL;
	const char *comment = NULL, *id;
	int opt, rc, status;

	while ((opt = getopt_long(argc, argv, ":hm:", options, NULL)) != -1) {
		if (opt == 'm') {
			comment = optarg;
			continue;
		}
		switch (cli_option(cli, opt, argv)) {
		case CLI_OPT_HANDLED:
			break;
		case CLI_OPT_HELP:
			printf("usage: signoff %s ID [-m COMMENT]\n\n"
			       "%s a pending request. Only an eligible human who did not make the request\n"
			       "(nor had it made on their behalf) may review it.\n\n"
			       "options:\n"
			       "  -m, --message TEXT a comment recorded with the review\n" CLI_COMMON_HELP,
			       cli->verb, decision == SO_CLIENT_APPROVE ? "Approve" : "Deny");
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	status = cli_connect_for_id(cli, argc, argv, &id);
	if (status != CLI_EXIT_OK)
		return status;
	rc = so_client_review(cli->client, id, decision, comment, &request, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, id, rc, &err);
	print_outcome(cli, decision == SO_CLIENT_APPROVE ? "approved" : "denied", id, request);
	json_decref(request);
	return CLI_EXIT_OK;
}

int
cli_approve(struct cli *cli, int argc, char **argv)
{
	return review(cli, argc, argv, SO_CLIENT_APPROVE);
}

int
cli_deny(struct cli *cli, int argc, char **argv)
{
	return review(cli, argc, argv, SO_CLIENT_DENY);
}

int
cli_cancel(struct cli *cli, int argc, char **argv)
{
	so_client_error_t err;
	json_t *request = NULL;
	const char *id;
	int rc, status;

	if ((status = cli_common_args(cli, argc, argv,
	                              "usage: signoff cancel ID\n\n"
	                              "Cancel a pending request you made. Nothing it asked for will "
	                              "run.\n")) >= 0)
		return status;
	status = cli_connect_for_id(cli, argc, argv, &id);
	if (status != CLI_EXIT_OK)
		return status;
	rc = so_client_cancel(cli->client, id, &request, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, id, rc, &err);
	print_outcome(cli, "cancelled", id, request);
	json_decref(request);
	return CLI_EXIT_OK;
}
