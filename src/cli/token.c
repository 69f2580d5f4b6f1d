/**
 * Verbs about identities: token issue, whoami.
 */
#include <string.h>

#include "cli/cli.h"

#define TOKEN_USAGE                                                                        \
	"usage: signoff token issue PRINCIPAL\n\n"                                             \
	"Mint a new API token for PRINCIPAL (admins only). The token is printed once on\n"     \
	"stdout; the daemon keeps only its SHA-256.\n"

int
cli_token(struct cli *cli, int argc, char **argv)
{
	so_client_error_t err;
	json_t *issued = NULL;
	const char *principal, *token;
	int rc, status;

	if ((status = cli_common_args(cli, argc, argv, TOKEN_USAGE)) >= 0)
		return status;
	if (argc - optind == 0)
		return cli_usage_error(cli, "expected: token issue PRINCIPAL");
	if (strcmp(argv[optind], "issue") != 0)
		return cli_usage_error(cli, "unknown subcommand '%s'", argv[optind]);
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected: token issue PRINCIPAL");
	principal = argv[optind + 1];

	status = cli_connect(cli, true);
	if (status != CLI_EXIT_OK)
		return status;
	rc = so_client_token_issue(cli->client, principal, &issued, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, principal, rc, &err);
	token = cli_str(issued, "token", NULL);
	if (token == NULL) {
		json_decref(issued);
		cli_warn("token issue: the daemon's answer has no token");
		return CLI_EXIT_ERROR;
	}
	if (cli->json) {
		cli_print_json(issued);
	} else {
		printf("%s\n", token);
		fprintf(stderr, "signoff: token for ");
		cli_put_safe(stderr, cli_str(issued, "principal", principal));
		fprintf(stderr, " (shown once; the daemon stores only its sha256 ");
		cli_put_safe(stderr, cli_str(issued, "token_sha256", "?"));
		fprintf(stderr, ")\n");
	}
	json_decref(issued);
	return CLI_EXIT_OK;
}

int
cli_whoami(struct cli *cli, int argc, char **argv)
{
	so_client_error_t err;
	json_t *me = NULL, *groups, *g;
	size_t i;
	int rc, status;

	if ((status = cli_common_args(cli, argc, argv,
	                              "usage: signoff whoami\n\n"
	                              "Show the principal the token belongs to: id, kind, groups, "
	                              "owner.\n")) >= 0)
		return status;
	if (argc - optind != 0)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);

	status = cli_connect(cli, true);
	if (status != CLI_EXIT_OK)
		return status;
	rc = so_client_whoami(cli->client, &me, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, NULL, rc, &err);
	if (cli->json) {
		cli_print_json(me);
		goto out;
	}
	cli_put_safe(stdout, cli_str(me, "id", "?"));
	printf(" (");
	cli_put_safe(stdout, cli_str(me, "kind", "?"));
	if (cli_str(me, "owner", NULL) != NULL) {
		printf(", owned by ");
		cli_put_safe(stdout, cli_str(me, "owner", ""));
	}
	printf(")");
	groups = json_object_get(me, "groups");
	json_array_foreach(groups, i, g) {
		printf("%s", i == 0 ? " groups: " : ", ");
		cli_put_safe(stdout, json_string_value(g) ? json_string_value(g) : "?");
	}
	putchar('\n');
out:
	json_decref(me);
	return CLI_EXIT_OK;
}
