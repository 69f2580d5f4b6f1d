/**
 * `signoff hook AGENT`: an agent's pre-tool hook. Reads the agent's JSON on stdin, maps it to
 * an action (src/agent/hook.c), asks through the gate, and prints the agent's allow or deny.
 *
 * Fails closed: an agent lets a tool call through when its hook fails in any way other than
 * exit status 2, so every error of ours prints a deny, says why on stderr, and exits 2.
 * A decision (approved, denied, expired) exits 0.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "agent/hook.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"

/** Exit status that blocks the call in every supported agent. */
#define HOOK_EXIT_BLOCK 2
/** Default bound on the wait: inside Claude Code's default hook timeout of 60 s. */
#define HOOK_DEFAULT_TIMEOUT 50

static volatile sig_atomic_t hook_signal;

static void
on_signal(int signo)
{
	hook_signal = signo;
}

/** so_client tick: the agent gave up on us (its own timeout) or the user stopped it. */
static int
hook_should_stop(void *arg)
{
	(void)arg;
	return hook_signal != 0;
}

static void
hook_help(void)
{
	printf("usage: signoff hook AGENT [OPTIONS] < HOOK_INPUT.json\n\n"
	       "Decide one tool call of a coding agent: read the agent's pre-tool hook input on\n"
	       "stdin, ask signoff, wait for the decision, and print the agent's allow or deny.\n"
	       "AGENT is claude-code (PreToolUse), gemini (BeforeTool) or cursor\n"
	       "(beforeShellExecution, beforeMCPExecution). An approved call is claimed, so it\n"
	       "is allowed once. On any error the call is blocked: a deny on stdout, the reason\n"
	       "on stderr, exit status 2. See docs/integrations/claude-code.md.\n\n"
	       "options:\n"
	       "  --env E            environment the agent works on (e.g. production)\n"
	       "  --on-behalf-of P   the human principal the agent works for\n"
	       "  --timeout SECONDS  give up waiting after this long (default %d; keep it\n"
	       "                     under the agent's hook timeout); the call is then blocked\n"
	       "                     and the request cancelled\n",
	       HOOK_DEFAULT_TIMEOUT);
	printf(CLI_COMMON_HELP);
}

/** Print the agent's deny with `reason`, say it on stderr, and return the blocking status. */
static int
block(enum hook_agent agent, const char *reason)
{
	char text[SO_CLIENT_MESSAGE_MAX + 512];
	json_t *answer;

	snprintf(text, sizeof(text), "signoff: %s", reason);
	answer = hook_answer(agent, false, text);
	if (answer != NULL)
		json_dumpf(answer, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(answer);
	fputs("signoff hook: ", stderr);
	cli_put_safe(stderr, reason);
	fputc('\n', stderr);
	return HOOK_EXIT_BLOCK;
}

/** Print the agent's answer for a decision; exit status 0. */
static int
answer(enum hook_agent agent, bool allow, const so_client_gate_t *gate)
{
	char reason[SO_CLIENT_MESSAGE_MAX + 128];
	json_t *out;

	snprintf(reason, sizeof(reason), "signoff %s: %s", gate->id, gate->reason);
	out = hook_answer(agent, allow, reason);
	if (out == NULL)
		return block(agent, "signoff: cannot encode the answer");
	json_dumpf(out, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(out);
	return CLI_EXIT_OK;
}

/** Read and parse the hook input; NULL with `err` set when it is unreadable. */
static json_t *
read_input(char *err, size_t errlen)
{
	static const so_json_limits_t limits = {
		.max_depth = HOOK_MAX_DEPTH, .max_string = HOOK_MAX_INPUT, .max_items = HOOK_MAX_ITEMS};
	so_buf_t buf;
	json_t *input = NULL;
	char why[200];
	int rc;

	so_buf_init(&buf, HOOK_MAX_INPUT);
	rc = so_buf_read_file(&buf, stdin);
	if (rc == SO_ETOOLARGE)
		snprintf(err, errlen, "the hook input is over %u bytes", HOOK_MAX_INPUT);
	else if (rc != SO_OK)
		snprintf(err, errlen, "cannot read the hook input");
	else if (buf.len == 0)
		snprintf(err, errlen, "no hook input on stdin");
	else if (so_json_parse(buf.data, buf.len, &limits, &input, why, sizeof(why)) != SO_OK)
		snprintf(err, errlen, "the hook input is not JSON: %s", why);
	so_buf_free(&buf);
	return input;
}

int
cli_hook(struct cli *cli, int argc, char **argv)
{
	enum { OPT_ENV = CLI_OPT_FIRST_VERB, OPT_TIMEOUT, OPT_ON_BEHALF_OF };
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{"env", required_argument, NULL, OPT_ENV},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"on-behalf-of", required_argument, NULL, OPT_ON_BEHALF_OF},
		{NULL, 0, NULL, 0},
	};
	const char *environment = NULL, *on_behalf_of = NULL;
	long timeout = HOOK_DEFAULT_TIMEOUT;
	enum hook_agent agent;
	struct hook_ask ask = {0};
	so_client_submit_t sub;
	so_client_gate_opts_t opts;
	so_client_gate_t gate;
	so_client_error_t err;
	json_t *input = NULL;
	char why[SO_CLIENT_MESSAGE_MAX + 256];
	bool bad_usage = false;
	int opt, rc, status;

	while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (opt) {
		case OPT_ENV:
			environment = optarg;
			continue;
		case OPT_ON_BEHALF_OF:
			on_behalf_of = optarg;
			continue;
		case OPT_TIMEOUT:
			if (!cli_parse_seconds(optarg, 1, 86400, &timeout)) {
				cli_usage_error(cli, "--timeout must be 1..86400 seconds");
				bad_usage = true;
			}
			continue;
		}
		switch (cli_option(cli, opt, argv)) {
		case CLI_OPT_HANDLED:
			break;
		case CLI_OPT_HELP:
			hook_help();
			return CLI_EXIT_OK;
		default:
			bad_usage = true; /* said why; go on to find the agent, to answer it */
		}
	}
	if (optind + 1 != argc || !hook_agent_from_name(argv[optind], &agent)) {
		cli_usage_error(cli, "name one agent: claude-code, gemini or cursor");
		return HOOK_EXIT_BLOCK; /* a usage error must block too: exit 2 */
	}
	if (bad_usage)
		return block(agent, "the hook's command line is wrong (see 'signoff hook --help'); "
		                    "blocked until it is fixed");

	input = read_input(why, sizeof(why));
	if (input == NULL)
		return block(agent, why);
	if (hook_map(agent, input, environment, &ask, why, sizeof(why)) != 0) {
		status = block(agent, why);
		goto out;
	}
	if (cli_connect(cli, true) != CLI_EXIT_OK) {
		status = block(agent, "not configured (set SIGNOFF_URL and SIGNOFF_TOKEN); "
		                      "blocked until it is");
		goto out;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	memset(&sub, 0, sizeof(sub));
	sub.action = ask.action;
	sub.context = ask.context;
	sub.intent = ask.intent;
	sub.on_behalf_of = on_behalf_of;
	memset(&opts, 0, sizeof(opts));
	opts.timeout_seconds = timeout;
	opts.should_stop = hook_should_stop;
	rc = so_client_gate(cli->client, &sub, &opts, &gate, NULL, &err);
	if (rc != SO_CLIENT_OK) {
		if (rc == SO_CLIENT_EUNREACHABLE)
			snprintf(why, sizeof(why), "daemon unreachable at %.200s (%.200s); "
			         "blocked (fail closed)", cli->url, err.message);
		else
			snprintf(why, sizeof(why), "%s%s%s; blocked (fail closed)",
			         gate.id, gate.id[0] != '\0' ? ": " : "",
			         err.message[0] != '\0' ? err.message : so_client_strerror(rc));
		status = block(agent, why);
		goto out;
	}
	switch (gate.verdict) {
	case SO_CLIENT_PROCEED:
		status = answer(agent, true, &gate);
		break;
	case SO_CLIENT_DENIED:
	case SO_CLIENT_EXPIRED:
		status = answer(agent, false, &gate);
		break;
	default: /* timed out or stopped: we gave up, so block as an error */
		snprintf(why, sizeof(why), "%s: %s; blocked", gate.id, gate.reason);
		status = block(agent, why);
		break;
	}
out:
	hook_ask_free(&ask);
	json_decref(input);
	return status;
}
