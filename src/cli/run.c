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

#include <sodium.h>

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
	const char *bind_files[CLI_MAX_BIND_FILES]; /**< files whose contents are approved too */
	size_t n_bind;
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
	char id[SO_CLIENT_ID_MAX];
	long started;       /**< now_seconds() at the start */
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

/** so_client_update_fn: show each version of the pending request. */
static void
waiter_update(const json_t *request, void *arg)
{
	struct waiter *w = arg;

	snprintf(w->id, sizeof(w->id), "%s", cli_str(request, "id", "?"));
	if (strcmp(cli_str(request, "status", ""), "pending") != 0)
		return; /* decided: the verb says what happened */
	snprintf(w->status, sizeof(w->status), "%s", cli_str(request, "status", "?"));
	cli_describe_wait(request, w->waits, sizeof(w->waits));
	waiter_draw(w);
}

/** so_client tick, about once a second: stop on a caught signal; refresh the tty line. */
static int
waiter_tick(void *arg)
{
	struct waiter *w = arg;

	if (w->interruptible && got_signal != 0)
		return 1;
	if (w->tty && w->id[0] != '\0' && now_seconds() != w->drawn_at)
		waiter_draw(w);
	return 0;
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
	       "  --idempotency-key K  submit at most once under this key\n"
	       "  --bind-file F      make F's contents part of the action (its SHA-256);\n"
	       "                     %s (repeatable, up to %d)\n",
	       run ? "F is hashed again just before CMD runs, and nothing runs if it changed"
	           : "'signoff run' checks it again before running",
	       CLI_MAX_BIND_FILES);
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
		OPT_BIND_FILE,
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
		{"bind-file", required_argument, NULL, OPT_BIND_FILE},
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
		case OPT_BIND_FILE:
			if (ask->n_bind == CLI_MAX_BIND_FILES)
				return cli_usage_error(cli, "at most %d --bind-file options",
				                       CLI_MAX_BIND_FILES);
			ask->bind_files[ask->n_bind++] = optarg;
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

/* ---- files bound to the action ---- */

/** SHA-256 of a file's contents as 64 hex; false with errno-style text in `why`. */
static bool
hash_file(const char *path, char hex[65], char *why, size_t size)
{
	crypto_hash_sha256_state st;
	unsigned char buf[65536], md[crypto_hash_sha256_BYTES];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		snprintf(why, size, "%s", strerror(errno));
		return false;
	}
	crypto_hash_sha256_init(&st);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		crypto_hash_sha256_update(&st, buf, n);
	if (ferror(f)) {
		snprintf(why, size, "read error");
		fclose(f);
		return false;
	}
	fclose(f);
	crypto_hash_sha256_final(&st, md);
	sodium_bin2hex(hex, 65, md, sizeof(md));
	return true;
}

/** Add "files": [{"path", "sha256"}] for each --bind-file. Prints why on failure. */
static bool
bind_files(const struct cli *cli, const struct ask *ask, json_t *action)
{
	json_t *files;
	char hex[65], why[128];
	size_t i;

	if (ask->n_bind == 0)
		return true;
	files = json_array();
	if (files == NULL || json_object_set_new(action, "files", files) != 0)
		return false;
	for (i = 0; i < ask->n_bind; i++) {
		if (!hash_file(ask->bind_files[i], hex, why, sizeof(why))) {
			cli_warn("%s: --bind-file %s: %s", cli->verb, ask->bind_files[i], why);
			return false;
		}
		if (json_array_append_new(files, json_pack("{s:s,s:s}", "path", ask->bind_files[i],
		                                           "sha256", hex)) != 0) {
			cli_warn("%s: --bind-file %s: the path must be UTF-8 text", cli->verb,
			         ask->bind_files[i]);
			return false;
		}
	}
	return true;
}

/**
 * Just before running: every bound file still has the contents that were approved.
 * Writes what differs into `detail` and returns false otherwise.
 */
static bool
files_unchanged(const json_t *action, char *detail, size_t size)
{
	const json_t *files = json_object_get(action, "files");
	json_t *f;
	char hex[65], why[128];
	size_t i;

	json_array_foreach(files, i, f) {
		const char *path = cli_str(f, "path", "");
		if (!hash_file(path, hex, why, sizeof(why))) {
			snprintf(detail, size, "not run: bound file %.150s: %.100s", path, why);
			return false;
		}
		if (strcmp(hex, cli_str(f, "sha256", "")) != 0) {
			snprintf(detail, size, "not run: bound file %.200s changed since it was approved",
			         path);
			return false;
		}
	}
	return true;
}

/**
 * Build the action and read the context; connect. On success the caller owns `*action` and
 * `*context` (which may be NULL). Returns CLI_EXIT_OK or an exit status after printing why.
 */
static int
prepare(struct cli *cli, const struct ask *ask, json_t **action, json_t **context)
{
	int status;

	*context = NULL;
	*action = build_action(ask);
	if (*action == NULL) {
		cli_warn("%s: the command and options must be UTF-8 text", cli->verb);
		return CLI_EXIT_ERROR;
	}
	if (!bind_files(cli, ask, *action)) {
		json_decref(*action);
		*action = NULL;
		return CLI_EXIT_ERROR;
	}
	if (ask->context_file != NULL &&
	    (*context = load_context(cli, ask->context_file)) == NULL) {
		json_decref(*action);
		*action = NULL;
		return CLI_EXIT_ERROR;
	}
	status = cli_connect(cli, true);
	if (status != CLI_EXIT_OK) {
		json_decref(*context);
		json_decref(*action);
		*action = *context = NULL;
	}
	return status;
}

static void
fill_submit(so_client_submit_t *sub, const struct ask *ask, const json_t *action,
            const json_t *context)
{
	memset(sub, 0, sizeof(*sub));
	sub->action = action;
	sub->intent = ask->why;
	sub->context = context;
	sub->on_behalf_of = ask->on_behalf_of;
	sub->ttl_seconds = ask->ttl_seconds;
	sub->idempotency_key = ask->idempotency_key;
}

/** "signoff: ID <what happened>" with the daemon's and reviewers' text escaped. */
static void
say(const char *id, const char *what, const char *tail)
{
	fprintf(stderr, "signoff: %s ", id);
	cli_put_safe(stderr, what);
	fputs(tail, stderr);
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

int
cli_run(struct cli *cli, int argc, char **argv)
{
	struct ask ask;
	struct waiter w;
	so_client_submit_t sub;
	so_client_gate_opts_t opts;
	so_client_gate_t gate;
	so_client_error_t err;
	json_t *action = NULL, *context = NULL, *request = NULL;
	char detail[300];
	int status, rc, code;

	memset(&w, 0, sizeof(w));
	w.started = now_seconds();
	status = parse_ask(cli, argc, argv, &ask);
	if (status >= 0)
		return status;

	got_signal = 0;
	catch_signals(false);
	status = prepare(cli, &ask, &action, &context);
	if (status != CLI_EXIT_OK)
		return status;
	fill_submit(&sub, &ask, action, context);
	w.interruptible = true;
	w.tty = isatty(STDERR_FILENO) == 1;
	memset(&opts, 0, sizeof(opts));
	opts.timeout_seconds = ask.timeout_seconds;
	opts.on_update = waiter_update;
	opts.should_stop = waiter_tick;
	opts.arg = &w;
	rc = so_client_gate(cli->client, &sub, &opts, &gate, &request, &err);
	waiter_close(&w);
	if (rc != SO_CLIENT_OK) {
		status = cli_fail(cli, gate.id[0] != '\0' ? gate.id : NULL, rc, &err);
		goto out;
	}

	switch (gate.verdict) {
	case SO_CLIENT_PROCEED:
		break;
	case SO_CLIENT_DENIED:
		say(gate.id, gate.reason, "\n");
		status = CLI_EXIT_DENIED;
		goto out;
	case SO_CLIENT_STOPPED:
		say(gate.id, "interrupted: ", "");
		cli_put_safe(stderr, gate.reason);
		fputs("; nothing ran\n", stderr);
		status = CLI_EXIT_EXPIRED;
		goto out;
	default: /* expired, cancelled, timed out */
		say(gate.id, gate.reason, "; nothing ran\n");
		status = CLI_EXIT_EXPIRED;
		goto out;
	}

	if (got_signal != 0) {
		/* Interrupted while the grant was claimed: the command does not start. */
		say(gate.id, "claimed, but interrupted", "; nothing ran\n");
		so_client_result(cli->client, gate.id, 1, "not run: interrupted after the claim", NULL,
		                 NULL);
		status = CLI_EXIT_EXPIRED;
		goto out;
	}
	if (!files_unchanged(action, detail, sizeof(detail))) {
		fprintf(stderr, "signoff: %s: ", gate.id);
		cli_put_safe(stderr, detail);
		fputc('\n', stderr);
		so_client_result(cli->client, gate.id, 1, detail, NULL, NULL);
		status = CLI_EXIT_ERROR;
		goto out;
	}
	say(gate.id, gate.reason, "; running ");
	cli_put_argv(stderr, json_object_get(json_object_get(request, "action"), "command"));
	fputc('\n', stderr);

	so_client_disconnect(cli->client); /* the command inherits no socket of ours */
	code = run_command(ask.command, detail, sizeof(detail));
	if (code < 0) {
		fprintf(stderr, "signoff: %s: %s\n", gate.id, detail);
		status = CLI_EXIT_ERROR;
		code = 127;
	} else {
		status = code;
		if (code == 126 || code == 127)
			fprintf(stderr, "signoff: %s: %s\n", gate.id, detail);
	}
	rc = so_client_result(cli->client, gate.id, code, detail, NULL, &err);
	if (rc != SO_CLIENT_OK) {
		fprintf(stderr, "signoff: %s: the command ran (%s) but reporting its result failed: ",
		        gate.id, detail);
		cli_put_safe(stderr, err.message[0] != '\0' ? err.message : so_client_strerror(rc));
		fputc('\n', stderr);
	}
out:
	json_decref(request);
	json_decref(context);
	json_decref(action);
	return status;
}

int
cli_request(struct cli *cli, int argc, char **argv)
{
	struct ask ask;
	so_client_submit_t sub;
	so_client_error_t err;
	json_t *action = NULL, *context = NULL, *request = NULL;
	char digest[65], reason[SO_CLIENT_MESSAGE_MAX];
	int status, rc;

	status = parse_ask(cli, argc, argv, &ask);
	if (status >= 0)
		return status;
	status = prepare(cli, &ask, &action, &context);
	if (status != CLI_EXIT_OK)
		return status;
	fill_submit(&sub, &ask, action, context);
	rc = so_client_submit_checked(cli->client, &sub, digest, &request, &err);
	if (rc != SO_CLIENT_OK) {
		status = cli_fail(cli, NULL, rc, &err);
		goto out;
	}
	if (cli->json) {
		cli_print_json(request);
	} else {
		printf("%s\n", cli_str(request, "id", "?"));
		if (strcmp(cli_str(request, "status", ""), "pending") != 0) {
			so_client_describe(request, reason, sizeof(reason));
			say(cli_str(request, "id", "?"),
			    strcmp(cli_str(request, "status", ""), "denied") == 0 ? "" : "already ", "");
			cli_put_safe(stderr, reason);
			fputc('\n', stderr);
		}
	}
out:
	json_decref(request);
	json_decref(context);
	json_decref(action);
	return status;
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

	memset(&w, 0, sizeof(w));
	w.started = now_seconds();
	w.tty = isatty(STDERR_FILENO) == 1;
	so_client_set_tick(cli->client, waiter_tick, &w);
	rc = so_client_wait(cli->client, id, 0, waiter_update, &w, &request, &err);
	so_client_set_tick(cli->client, NULL, NULL);
	waiter_close(&w);
	if (rc != SO_CLIENT_OK)
		return cli_fail(cli, id, rc, &err);
	if (cli->json)
		cli_print_json(request);
	else
		printf("%s\n", cli_str(request, "status", "?"));
	status = status_exit(cli_str(request, "status", ""));
	json_decref(request);
	return status;
}
