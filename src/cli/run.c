/**
 * Verbs that ask and follow: run, request, wait.
 *
 * `run` is the gate itself: build the action from argv, submit it, check the daemon's digest
 * against our own, long-poll until decided, claim with our digest, fork+execvp the command
 * exactly once, report its exit code. Every failure before the exec ends with nothing run.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"

/** What run and request were asked for. Strings are borrowed from argv. */
struct ask {
	const char *environment;
	const char *why;
	const char *resource;
	const char *context_file;
	const char *on_behalf_of;
	const char *idempotency_key;
	long ttl_seconds;     /**< 0: the policy's default */
	long timeout_seconds; /**< 0: wait as long as the request may stay pending */
	char **command;       /**< NULL-terminated argv of the command */
};

/** The signal that arrived (0 if none), and whether a process sent it (kill) or the tty. */
static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t signal_from_process;

static void
on_signal(int signo, siginfo_t *info, void *ucontext)
{
	(void)ucontext;
	got_signal = signo;
	signal_from_process = info != NULL && info->si_code <= 0;
}

/** Catch INT, TERM, HUP (and QUIT when `quit`) without SA_RESTART, so waits wake up. */
static void
catch_signals(bool quit)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (quit)
		sigaction(SIGQUIT, &sa, NULL);
}

static long
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec;
}

/* ---- the status line ---- */

/** Progress shown on stderr while waiting: refreshed in place on a tty, else on change. */
struct waiter {
	const char *id;     /**< borrowed */
	long started;       /**< now_seconds() at the start */
	long deadline;      /**< now_seconds() bound, or 0 for none */
	bool interruptible; /**< a caught signal stops the wait */
	bool tty;
	bool line_open;     /**< a status line without newline is on the tty */
	long drawn_at;      /**< now_seconds() of the last tty redraw */
	char status[32];
	char waits[512];
	char shown[600];    /**< last text printed when not a tty */
};

static void
waiter_draw(struct waiter *w)
{
	char elapsed[32], text[600];

	snprintf(text, sizeof(text), "%s%s%s", w->status, w->waits[0] != '\0' ? ", waiting for " : "",
	         w->waits);
	cli_format_elapsed(now_seconds() - w->started, elapsed, sizeof(elapsed));
	if (w->tty) {
		w->drawn_at = now_seconds();
		fputs("\r\033[K", stderr);
		fprintf(stderr, "signoff: %s ", w->id);
		cli_put_safe(stderr, text);
		fprintf(stderr, " [%s]", elapsed);
		w->line_open = true;
	} else if (strcmp(text, w->shown) != 0) {
		fprintf(stderr, "signoff: %s ", w->id);
		cli_put_safe(stderr, text);
		fprintf(stderr, " [%s]\n", elapsed);
		snprintf(w->shown, sizeof(w->shown), "%s", text);
	}
	fflush(stderr);
}

/** End the in-place line so that the next message starts on a fresh line. */
static void
waiter_close(struct waiter *w)
{
	if (w->line_open) {
		fputc('\n', stderr);
		w->line_open = false;
	}
}

static void
waiter_update(struct waiter *w, const json_t *request)
{
	snprintf(w->status, sizeof(w->status), "%s", cli_str(request, "status", "?"));
	cli_describe_wait(request, w->waits, sizeof(w->waits));
	waiter_draw(w);
}

static bool
waiter_should_stop(const struct waiter *w)
{
	return (w->interruptible && got_signal != 0) ||
	       (w->deadline != 0 && now_seconds() >= w->deadline);
}

/** so_client tick: refresh the line on a tty; stop the call on a signal or the deadline. */
static int
waiter_tick(void *arg)
{
	struct waiter *w = arg;

	if (waiter_should_stop(w))
		return 1;
	if (w->tty && now_seconds() != w->drawn_at)
		waiter_draw(w);
	return 0;
}

enum wait_end { WAIT_DECIDED, WAIT_INTERRUPTED, WAIT_TIMED_OUT, WAIT_FAILED };

/**
 * Long-poll `*request` until it leaves "pending". `*request` is replaced by the latest
 * version (owned by the caller throughout). WAIT_FAILED has printed why.
 */
static enum wait_end
wait_decided(struct cli *cli, struct waiter *w, json_t **request)
{
	so_client_error_t err;
	enum wait_end end = WAIT_DECIDED;
	json_t *next = NULL;
	int rc;

	so_client_set_tick(cli->client, waiter_tick, w);
	for (;;) {
		const char *status = cli_str(*request, "status", "");
		int poll = CLI_POLL_SECONDS;

		if (strcmp(status, "pending") != 0)
			break;
		waiter_update(w, *request);
		if (w->interruptible && got_signal != 0) {
			end = WAIT_INTERRUPTED;
			break;
		}
		if (w->deadline != 0) {
			long left = w->deadline - now_seconds();
			if (left <= 0) {
				end = WAIT_TIMED_OUT;
				break;
			}
			if (left < poll)
				poll = (int)left;
		}
		rc = so_client_get(cli->client, w->id, poll, &next, &err);
		if (rc == SO_CLIENT_EABORTED)
			continue; /* the checks above say which */
		if (rc != SO_CLIENT_OK) {
			waiter_close(w);
			cli_fail(cli, w->id, rc, &err);
			end = WAIT_FAILED;
			break;
		}
		json_decref(*request);
		*request = next;
		next = NULL;
	}
	so_client_set_tick(cli->client, NULL, NULL);
	waiter_close(w);
	return end;
}

/* ---- options and the action ---- */

static void
ask_help(const char *verb)
{
	bool run = strcmp(verb, "run") == 0;

	printf("usage: signoff %s [OPTIONS] -- CMD [ARGS...]\n\n", verb);
	if (run)
		printf("Ask for approval to run CMD, wait for the decision, then run CMD exactly once\n"
		       "(no shell) and report its exit code. Exits with CMD's status; 3 if denied,\n"
		       "4 if expired, cancelled or timed out, 5 on any error (then nothing runs).\n"
		       "Ctrl-C while waiting cancels the request.\n\n");
	else
		printf("Ask for approval to run CMD and print the request id. Does not wait or run;\n"
		       "follow it with 'signoff wait ID'.\n\n");
	printf("options:\n"
	       "  --env E            environment the action touches (e.g. production)\n"
	       "  --resource R       resource the action touches (e.g. deploy/api)\n"
	       "  --why TEXT         intent: why this should run, for the reviewers\n"
	       "  --context-file F   JSON object shown to reviewers (diff, ticket, data...);\n"
	       "                     '-' reads standard input\n"
	       "  --on-behalf-of P   the human principal this is done for\n"
	       "  --ttl SECONDS      how long the request may stay pending (1..86400; 30m, 2h)\n"
	       "  --idempotency-key K  submit at most once under this key\n");
	if (run)
		printf("  --timeout SECONDS  give up waiting after this long (cancels the request)\n");
	printf(CLI_COMMON_HELP);
}

/** Parse run/request arguments into `ask`. Returns -1 to go on, else an exit status. */
static int
parse_ask(struct cli *cli, int argc, char **argv, struct ask *ask)
{
	enum {
		OPT_ENV = CLI_OPT_FIRST_VERB,
		OPT_WHY,
		OPT_RESOURCE,
		OPT_CONTEXT,
		OPT_ON_BEHALF_OF,
		OPT_TTL,
		OPT_TIMEOUT,
		OPT_IDEMPOTENCY,
	};
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{"env", required_argument, NULL, OPT_ENV},
		{"why", required_argument, NULL, OPT_WHY},
		{"resource", required_argument, NULL, OPT_RESOURCE},
		{"context-file", required_argument, NULL, OPT_CONTEXT},
		{"on-behalf-of", required_argument, NULL, OPT_ON_BEHALF_OF},
		{"ttl", required_argument, NULL, OPT_TTL},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"idempotency-key", required_argument, NULL, OPT_IDEMPOTENCY},
		{NULL, 0, NULL, 0},
	};
	int opt;

	memset(ask, 0, sizeof(*ask));
	/* '+': stop at the command, so its own options are not ours. */
	while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		switch (opt) {
		case OPT_ENV:
			ask->environment = optarg;
			continue;
		case OPT_WHY:
			ask->why = optarg;
			continue;
		case OPT_RESOURCE:
			ask->resource = optarg;
			continue;
		case OPT_CONTEXT:
			ask->context_file = optarg;
			continue;
		case OPT_ON_BEHALF_OF:
			ask->on_behalf_of = optarg;
			continue;
		case OPT_IDEMPOTENCY:
			ask->idempotency_key = optarg;
			continue;
		case OPT_TTL:
			if (!cli_parse_seconds(optarg, 1, 86400, &ask->ttl_seconds))
				return cli_usage_error(cli, "--ttl must be 1..86400 seconds (or 30m, 2h)");
			continue;
		case OPT_TIMEOUT:
			if (!cli_parse_seconds(optarg, 1, 7L * 86400, &ask->timeout_seconds))
				return cli_usage_error(cli, "--timeout must be a positive number of seconds");
			continue;
		}
		switch (cli_option(cli, opt, argv)) {
		case CLI_OPT_HANDLED:
			break;
		case CLI_OPT_HELP:
			ask_help(cli->verb);
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return cli_usage_error(cli, "no command: put it after '--'");
	ask->command = argv + optind;
	return -1;
}

/** Read --context-file (or stdin for "-") as a JSON object. Prints why on failure. */
static json_t *
load_context(const struct cli *cli, const char *path)
{
	so_buf_t buf;
	json_error_t jerr;
	json_t *context = NULL;
	FILE *f = NULL;
	int rc;

	so_buf_init(&buf, CLI_MAX_CONTEXT_FILE);
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL) {
		cli_warn("%s: %s: %s", cli->verb, path, strerror(errno));
		goto out;
	}
	rc = so_buf_read_file(&buf, f);
	if (rc == SO_EIO) {
		cli_warn("%s: %s: read error", cli->verb, path);
		goto out;
	}
	if (rc != SO_OK) {
		cli_warn("%s: %s: larger than %u bytes", cli->verb, path, CLI_MAX_CONTEXT_FILE);
		goto out;
	}
	context = json_loadb(so_buf_cstr(&buf), buf.len, JSON_REJECT_DUPLICATES, &jerr);
	if (context == NULL) {
		cli_warn("%s: %s:%d: %s", cli->verb, path, jerr.line, jerr.text);
	} else if (!json_is_object(context)) {
		cli_warn("%s: %s: the context must be a JSON object", cli->verb, path);
		json_decref(context);
		context = NULL;
	}
out:
	if (f != NULL && f != stdin)
		fclose(f);
	so_buf_free(&buf);
	return context;
}

/** {"kind": "shell", "command": [argv...], "environment"?, "resource"?}; NULL if not UTF-8. */
static json_t *
build_action(const struct ask *ask)
{
	json_t *action = json_object(), *command = json_array();
	char **arg;

	if (action == NULL || command == NULL)
		goto fail;
	for (arg = ask->command; *arg != NULL; arg++) {
		if (json_array_append_new(command, json_string(*arg)) != 0)
			goto fail;
	}
	if (json_object_set_new(action, "kind", json_string("shell")) != 0 ||
	    json_object_set(action, "command", command) != 0)
		goto fail;
	if (ask->environment != NULL &&
	    json_object_set_new(action, "environment", json_string(ask->environment)) != 0)
		goto fail;
	if (ask->resource != NULL &&
	    json_object_set_new(action, "resource", json_string(ask->resource)) != 0)
		goto fail;
	json_decref(command);
	return action;
fail:
	json_decref(command);
	json_decref(action);
	return NULL;
}

/**
 * Submit `ask` and check that the daemon hashed the very action we built. On success
 * `*request` (owned by the caller) is the new request and `digest` our own digest.
 * Returns CLI_EXIT_OK or an exit status after printing why.
 */
static int
submit(struct cli *cli, const struct ask *ask, json_t **request, char digest[65])
{
	so_client_submit_t sub;
	so_client_error_t err;
	json_t *action = NULL, *context = NULL;
	const char *theirs, *id;
	int rc, status = CLI_EXIT_ERROR;

	*request = NULL;
	action = build_action(ask);
	if (action == NULL) {
		cli_warn("%s: the command and options must be UTF-8 text", cli->verb);
		goto out;
	}
	if (so_json_digest(action, digest) != 0) {
		cli_warn("%s: cannot compute the action digest", cli->verb);
		goto out;
	}
	if (ask->context_file != NULL && (context = load_context(cli, ask->context_file)) == NULL)
		goto out;

	status = cli_connect(cli, true);
	if (status != CLI_EXIT_OK)
		goto out;
	status = CLI_EXIT_ERROR;

	memset(&sub, 0, sizeof(sub));
	sub.action = action;
	sub.intent = ask->why;
	sub.context = context;
	sub.on_behalf_of = ask->on_behalf_of;
	sub.ttl_seconds = ask->ttl_seconds;
	sub.idempotency_key = ask->idempotency_key;
	rc = so_client_submit(cli->client, &sub, request, &err);
	if (rc != SO_CLIENT_OK) {
		cli_fail(cli, NULL, rc, &err);
		goto out;
	}

	id = cli_str(*request, "id", NULL);
	theirs = cli_str(*request, "digest", NULL);
	if (id == NULL || cli_str(*request, "status", NULL) == NULL) {
		cli_warn("%s: the daemon's answer has no request id or status; refusing", cli->verb);
		goto out;
	}
	if (theirs == NULL || strcmp(theirs, digest) != 0) {
		fprintf(stderr, "signoff: %s %s: the daemon's digest %s does not match the action's "
		        "digest %s; refusing\n", cli->verb, id, theirs != NULL ? theirs : "(none)", digest);
		if (strcmp(cli_str(*request, "status", ""), "pending") == 0)
			so_client_cancel(cli->client, id, NULL, NULL);
		goto out;
	}
	status = CLI_EXIT_OK;
out:
	if (status != CLI_EXIT_OK) {
		json_decref(*request);
		*request = NULL;
	}
	json_decref(context);
	json_decref(action);
	return status;
}

/** "bob, carol" from the approving reviews, or the allowing rule. */
static void
put_approvers(FILE *f, const json_t *request)
{
	const json_t *reviews = json_object_get(request, "reviews");
	const json_t *rules = json_object_get(json_object_get(request, "decision"), "rules");
	json_t *r;
	size_t i;
	int n = 0;

	json_array_foreach(reviews, i, r) {
		if (strcmp(cli_str(r, "decision", ""), "approve") != 0)
			continue;
		fputs(n++ == 0 ? "by " : ", ", f);
		cli_put_safe(f, cli_str(r, "reviewer", "?"));
	}
	if (n > 0)
		return;
	fputs("by policy", f);
	json_array_foreach(rules, i, r) {
		if (strcmp(cli_str(r, "decide", ""), "allow") != 0)
			continue;
		fputs(n++ == 0 ? " (rule " : ", ", f);
		cli_put_safe(f, cli_str(r, "name", "?"));
	}
	if (n > 0)
		fputc(')', f);
}

/** "denied by bob: comment" or "denied by policy rule NAME: reason". */
static void
put_denial(FILE *f, const json_t *request)
{
	const json_t *reviews = json_object_get(request, "reviews");
	const json_t *rules = json_object_get(json_object_get(request, "decision"), "rules");
	json_t *r;
	size_t i;

	json_array_foreach(reviews, i, r) {
		const char *comment = cli_str(r, "comment", "");
		if (strcmp(cli_str(r, "decision", ""), "deny") != 0)
			continue;
		fputs("denied by ", f);
		cli_put_safe(f, cli_str(r, "reviewer", "?"));
		if (comment[0] != '\0') {
			fputs(": ", f);
			cli_put_safe(f, comment);
		}
		return;
	}
	json_array_foreach(rules, i, r) {
		const char *reason = cli_str(r, "reason", "");
		if (strcmp(cli_str(r, "decide", ""), "deny") != 0)
			continue;
		fputs("denied by policy rule ", f);
		cli_put_safe(f, cli_str(r, "name", "?"));
		if (reason[0] != '\0') {
			fputs(": ", f);
			cli_put_safe(f, reason);
		}
		return;
	}
	fputs("denied", f);
}

/** Exit status for a decided request: 0 approved (or later), 3 denied, 4 expired/cancelled. */
static int
status_exit(const char *status)
{
	if (strcmp(status, "denied") == 0)
		return CLI_EXIT_DENIED;
	if (strcmp(status, "expired") == 0 || strcmp(status, "cancelled") == 0)
		return CLI_EXIT_EXPIRED;
	if (strcmp(status, "approved") == 0 || strcmp(status, "claimed") == 0 ||
	    strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0)
		return CLI_EXIT_OK;
	return CLI_EXIT_ERROR;
}

/* ---- running the command ---- */

/**
 * fork+execvp `argv` once, wait for it and return the status to report: its exit code,
 * 128+signal if killed, 126/127 if it could not be executed; -1 if it never started (fork
 * failed). `detail` says what happened. Signals a process sends us are passed on to it;
 * those from the terminal reach it directly, as it shares our process group.
 */
static int
run_command(char **argv, char *detail, size_t size)
{
	static const int passed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	int pipefd[2] = {-1, -1};
	int wstatus, exec_errno = 0, code = -1;
	ssize_t n;
	pid_t pid;
	size_t i;

	got_signal = 0;
	catch_signals(true);
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		snprintf(detail, size, "could not start: pipe: %s", strerror(errno));
		goto out;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		snprintf(detail, size, "could not start: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		for (i = 0; i < sizeof(passed) / sizeof(passed[0]); i++)
			signal(passed[i], SIG_DFL);
		close(pipefd[0]);
		execvp(argv[0], argv);
		exec_errno = errno;
		n = write(pipefd[1], &exec_errno, sizeof(exec_errno));
		(void)n;
		_exit(exec_errno == ENOENT ? 127 : 126);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	do {
		n = read(pipefd[0], &exec_errno, sizeof(exec_errno));
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(exec_errno))
		exec_errno = 0;

	while (waitpid(pid, &wstatus, 0) < 0) {
		if (errno != EINTR) {
			snprintf(detail, size, "waitpid: %s", strerror(errno));
			code = 1;
			goto out;
		}
		if (got_signal != 0) {
			if (signal_from_process)
				kill(pid, got_signal);
			got_signal = 0;
		}
	}
	if (exec_errno != 0) {
		code = exec_errno == ENOENT ? 127 : 126;
		snprintf(detail, size, "could not run %s: %s", argv[0], strerror(exec_errno));
	} else if (WIFEXITED(wstatus)) {
		code = WEXITSTATUS(wstatus);
		snprintf(detail, size, "exited with status %d", code);
	} else if (WIFSIGNALED(wstatus)) {
		code = 128 + WTERMSIG(wstatus);
		snprintf(detail, size, "killed by signal %d (%s)", WTERMSIG(wstatus),
		         strsignal(WTERMSIG(wstatus)));
	} else {
		code = 1;
		snprintf(detail, size, "ended with wait status %d", wstatus);
	}
out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	return code;
}

/** Cancel after Ctrl-C or --timeout; say what happened. Always CLI_EXIT_EXPIRED. */
static int
give_up(struct cli *cli, const char *id, const char *why)
{
	so_client_error_t err;
	json_t *after = NULL;
	int rc;

	rc = so_client_cancel(cli->client, id, &after, &err);
	if (rc == SO_CLIENT_OK)
		fprintf(stderr, "signoff: %s: %s; request cancelled, nothing ran\n", id, why);
	else if (rc == SO_CLIENT_EHTTP && strcmp(err.error_code, "not_pending") == 0)
		fprintf(stderr, "signoff: %s: %s; the request was no longer pending; nothing ran\n",
		        id, why);
	else {
		fprintf(stderr, "signoff: %s: %s; nothing ran, but cancelling failed: ", id, why);
		cli_put_safe(stderr, err.message[0] != '\0' ? err.message : so_client_strerror(rc));
		fputc('\n', stderr);
	}
	json_decref(after);
	return CLI_EXIT_EXPIRED;
}

int
cli_run(struct cli *cli, int argc, char **argv)
{
	struct ask ask;
	struct waiter w;
	so_client_error_t err;
	json_t *request = NULL, *claimed = NULL;
	char digest[65], detail[300], id_copy[80];
	const char *id, *status_name;
	int status, rc, code;

	memset(&w, 0, sizeof(w));
	w.started = now_seconds();
	status = parse_ask(cli, argc, argv, &ask);
	if (status >= 0)
		return status;

	got_signal = 0;
	catch_signals(false);
	status = submit(cli, &ask, &request, digest);
	if (status != CLI_EXIT_OK)
		goto out;
	/* Our own copy: `request` is replaced on every poll. */
	snprintf(id_copy, sizeof(id_copy), "%s", cli_str(request, "id", "?"));
	id = id_copy;

	w.id = id;
	w.deadline = ask.timeout_seconds > 0 ? w.started + ask.timeout_seconds : 0;
	w.interruptible = true;
	w.tty = isatty(STDERR_FILENO) == 1;
	switch (wait_decided(cli, &w, &request)) {
	case WAIT_DECIDED:
		break;
	case WAIT_INTERRUPTED:
		status = give_up(cli, id, "interrupted");
		goto out;
	case WAIT_TIMED_OUT:
		status = give_up(cli, id, "timed out");
		goto out;
	case WAIT_FAILED:
		status = CLI_EXIT_ERROR;
		goto out;
	}
	status_name = cli_str(request, "status", "?");

	if (strcmp(status_name, "denied") == 0) {
		fprintf(stderr, "signoff: %s ", id);
		put_denial(stderr, request);
		fputc('\n', stderr);
		status = CLI_EXIT_DENIED;
		goto out;
	}
	if (strcmp(status_name, "expired") == 0 || strcmp(status_name, "cancelled") == 0) {
		fprintf(stderr, "signoff: %s %s; nothing ran\n", id, status_name);
		status = CLI_EXIT_EXPIRED;
		goto out;
	}
	if (strcmp(status_name, "approved") != 0) {
		fprintf(stderr, "signoff: %s is already %s (a grant runs once); nothing ran\n", id,
		        status_name);
		status = CLI_EXIT_ERROR;
		goto out;
	}
	if (got_signal != 0) {
		/* Interrupted between the last answer and now: do not start what was stopped. */
		fprintf(stderr, "signoff: %s approved, but interrupted; nothing ran\n", id);
		status = CLI_EXIT_EXPIRED;
		goto out;
	}

	rc = so_client_claim(cli->client, id, digest, &claimed, &err);
	if (rc != SO_CLIENT_OK) {
		cli_fail(cli, id, rc, &err);
		status = rc == SO_CLIENT_EHTTP && strcmp(err.error_code, "grant_expired") == 0
		                 ? CLI_EXIT_EXPIRED
		                 : CLI_EXIT_ERROR;
		goto out;
	}
	if (strcmp(cli_str(claimed, "status", ""), "claimed") != 0 ||
	    strcmp(cli_str(claimed, "digest", ""), digest) != 0) {
		fprintf(stderr, "signoff: %s: the claim's answer is not a claim of this action; "
		        "nothing ran\n", id);
		status = CLI_EXIT_ERROR;
		goto out;
	}

	fprintf(stderr, "signoff: %s approved ", id);
	put_approvers(stderr, request);
	fputs("; running ", stderr);
	cli_put_argv(stderr, json_object_get(json_object_get(request, "action"), "command"));
	fputc('\n', stderr);

	so_client_disconnect(cli->client); /* the command inherits no socket of ours */
	code = run_command(ask.command, detail, sizeof(detail));
	if (code < 0) {
		fprintf(stderr, "signoff: %s: %s\n", id, detail);
		status = CLI_EXIT_ERROR;
		code = 127;
	} else {
		status = code;
		if (code == 126 || code == 127)
			fprintf(stderr, "signoff: %s: %s\n", id, detail);
	}
	rc = so_client_result(cli->client, id, code, detail, NULL, &err);
	if (rc != SO_CLIENT_OK) {
		fprintf(stderr, "signoff: %s: the command ran (%s) but reporting its result failed: ",
		        id, detail);
		cli_put_safe(stderr, err.message[0] != '\0' ? err.message : so_client_strerror(rc));
		fputc('\n', stderr);
	}
out:
	json_decref(claimed);
	json_decref(request);
	return status;
}

int
cli_request(struct cli *cli, int argc, char **argv)
{
	struct ask ask;
	json_t *request = NULL;
	char digest[65];
	const char *status_name;
	int status;

	status = parse_ask(cli, argc, argv, &ask);
	if (status >= 0)
		return status;
	status = submit(cli, &ask, &request, digest);
	if (status != CLI_EXIT_OK)
		return status;
	if (cli->json) {
		cli_print_json(request);
	} else {
		printf("%s\n", cli_str(request, "id", "?"));
		status_name = cli_str(request, "status", "?");
		if (strcmp(status_name, "pending") != 0) {
			fprintf(stderr, "signoff: %s ", cli_str(request, "id", "?"));
			if (strcmp(status_name, "denied") == 0)
				put_denial(stderr, request);
			else
				fprintf(stderr, "already %s", status_name);
			fputc('\n', stderr);
		}
	}
	json_decref(request);
	return CLI_EXIT_OK;
}

int
cli_wait(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	so_client_error_t err;
	struct waiter w;
	json_t *request = NULL;
	const char *id;
	int opt, rc, status;

	while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (cli_option(cli, opt, argv)) {
		case CLI_OPT_HANDLED:
			break;
		case CLI_OPT_HELP:
			printf("usage: signoff wait ID\n\n"
			       "Wait until a request is no longer pending and print its status.\n"
			       "Exits 0 if approved (or already claimed or finished), 3 if denied,\n"
			       "4 if expired or cancelled, 5 on error.\n\n"
			       "options:\n" CLI_COMMON_HELP);
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	status = cli_connect_for_id(cli, argc, argv, &id);
	if (status != CLI_EXIT_OK)
		return status;
	rc = so_client_get(cli->client, id, 0, &request, &err);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, id, rc, &err);

	memset(&w, 0, sizeof(w));
	w.id = id;
	w.started = now_seconds();
	w.tty = isatty(STDERR_FILENO) == 1;
	if (wait_decided(cli, &w, &request) != WAIT_DECIDED) {
		status = CLI_EXIT_ERROR;
		goto out;
	}
	if (cli->json)
		cli_print_json(request);
	else
		printf("%s\n", cli_str(request, "status", "?"));
	status = status_exit(cli_str(request, "status", ""));
out:
	json_decref(request);
	return status;
}
