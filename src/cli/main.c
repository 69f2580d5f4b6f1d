/**
 * signoff: the command line of the signoff approval gate. This file reads the global
 * options and the environment, then hands over to one verb.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

struct verb {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *summary;
};

static const struct verb verbs[] = {
	{"run", cli_run, "ask, wait for approval, then run a command once"},
	{"request", cli_request, "ask for approval of a command; print the request id"},
	{"wait", cli_wait, "wait until a request is decided"},
	{"show", cli_show, "show one request"},
	{"list", cli_list, "list requests"},
	{"approve", cli_approve, "approve a request"},
	{"deny", cli_deny, "deny a request"},
	{"cancel", cli_cancel, "cancel your pending request"},
	{"token", cli_token, "issue an API token (token issue PRINCIPAL)"},
	{"whoami", cli_whoami, "show who the token belongs to"},
	{"audit", cli_audit, "verify, export or prove the signed audit log"},
	{"explain", cli_explain, "tell the story of one request"},
	{"policy", cli_policy, "check a policy, or dry-run requests against it (offline)"},
	{"anomaly", cli_anomaly, "what is normal for an agent; how unusual a request would be"},
	{"mcp-proxy", cli_mcp_proxy, "run an MCP server behind the gate (stdio)"},
	{"hook", cli_hook, "decide a coding agent's tool call (Claude Code, Gemini CLI, Cursor)"},
};

static void
usage(FILE *f)
{
	size_t i;

	fputs("usage: signoff [--url URL] [--token TOKEN] [--json] COMMAND [ARGS...]\n"
	      "\n"
	      "Ask for human approval before an action runs, and review such requests.\n"
	      "\n"
	      "commands:\n",
	      f);
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
	fputs("\n"
	      "options:\n" CLI_COMMON_HELP "  --version          print the version\n"
	      "\n"
	      "environment: SIGNOFF_URL, SIGNOFF_TOKEN. 'signoff COMMAND --help' for more;\n"
	      "exit statuses in signoff(1).\n",
	      f);
}

static const struct verb *
find_verb(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	enum { OPT_VERSION = CLI_OPT_FIRST_VERB };
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0},
	};
	struct cli cli = {.verb = "signoff"};
	const struct verb *verb;
	const char *env;
	int opt, status;

	env = getenv("SIGNOFF_URL");
	cli.url_is_default = env == NULL || env[0] == '\0';
	cli.url = cli.url_is_default ? CLI_DEFAULT_URL : env;
	cli.token = getenv("SIGNOFF_TOKEN");

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		if (opt == OPT_VERSION) {
			printf("signoff %s\n", so_client_version());
			return CLI_EXIT_OK;
		}
		switch (cli_option(&cli, opt, argv)) {
		case CLI_OPT_HANDLED:
			break;
		case CLI_OPT_HELP:
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		verb = optind + 1 < argc ? find_verb(argv[optind + 1]) : NULL;
		if (verb != NULL) {
			char *help_argv[] = {(char *)verb->name, "--help", NULL};
			cli.verb = verb->name;
			cli_getopt_reset();
			return verb->run(&cli, 2, help_argv);
		}
		usage(stdout);
		return CLI_EXIT_OK;
	}
	verb = find_verb(argv[optind]);
	if (verb == NULL) {
		fprintf(stderr, "signoff: unknown command '%s' (see 'signoff --help')\n", argv[optind]);
		return CLI_EXIT_USAGE;
	}

	cli.verb = verb->name;
	argc -= optind;
	argv += optind;
	cli_getopt_reset();
	status = verb->run(&cli, argc, argv);
	so_client_free(cli.client);
	fflush(stdout);
	if (ferror(stdout) && status == CLI_EXIT_OK)
		status = CLI_EXIT_ERROR;
	return status;
}
