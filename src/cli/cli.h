/**
 * The signoff command: shared state, exit statuses, option handling and output helpers.
 *
 * Owns: nothing global. Each verb gets a `struct cli` from main.c, whose client it may
 * create with cli_connect(); main.c frees it. Verbs return an exit status (CLI_EXIT_*).
 */
#ifndef SO_CLI_CLI_H
#define SO_CLI_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "signoff/client.h"

/** Exit statuses: the CLI contract (docs/man/signoff.1, EXIT STATUS). */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_USAGE = 2,   /**< bad command line; nothing was sent */
	CLI_EXIT_DENIED = 3,  /**< the request was denied */
	CLI_EXIT_EXPIRED = 4, /**< the request expired or was cancelled (or timed out) */
	CLI_EXIT_ERROR = 5,   /**< daemon unreachable, refused the call, or any other error */
};

/** Default daemon URL when neither --url nor SIGNOFF_URL says otherwise. */
#define CLI_DEFAULT_URL "http://127.0.0.1:8700"
/** Bound on one HTTP call, not counting a long-poll's wait. */
#define CLI_CALL_TIMEOUT_MS 30000L
/** Seconds asked of the daemon per long-poll. */
#define CLI_POLL_SECONDS 25
/** Most --bind-file options of one run or request. */
#define CLI_MAX_BIND_FILES 16
/** Largest file read for --context-file. */
#define CLI_MAX_CONTEXT_FILE (1024u * 1024u)

struct cli {
	const char *verb;   /**< e.g. "approve", for messages */
	const char *url;    /**< borrowed from argv or the environment */
	bool url_is_default; /**< neither --url nor SIGNOFF_URL gave it: say so when it fails */
	const char *token;  /**< borrowed from argv or the environment */
	bool json;          /**< machine output */
	so_client_t *client; /**< owned; created by cli_connect(), freed by main */
};

/** Long options every verb accepts; put first in each verb's option table. */
enum { CLI_OPT_URL = 0x100, CLI_OPT_TOKEN, CLI_OPT_JSON, CLI_OPT_FIRST_VERB };
#define CLI_COMMON_OPTIONS                                                                 \
	{"url", required_argument, NULL, CLI_OPT_URL},                                     \
	{"token", required_argument, NULL, CLI_OPT_TOKEN},                                 \
	{"json", no_argument, NULL, CLI_OPT_JSON},                                         \
	{"help", no_argument, NULL, 'h'}
#define CLI_COMMON_HELP                                                                    \
	"  --url URL          daemon address (default $SIGNOFF_URL or " CLI_DEFAULT_URL ")\n" \
	"  --token TOKEN      API token (default $SIGNOFF_TOKEN)\n"                           \
	"  --json             print JSON instead of text\n"                                   \
	"  -h, --help         show this help\n"

/**
 * Result of cli_option(): the option was one of the common ones and was handled, or it asks
 * for help, or it is unknown/malformed (a message is printed).
 */
enum cli_opt_result { CLI_OPT_HANDLED, CLI_OPT_HELP, CLI_OPT_BAD, CLI_OPT_NOT_COMMON };

/** Handle a common option or getopt's '?'/':' answer. `argv` is the verb's argv. */
enum cli_opt_result cli_option(struct cli *cli, int opt, char **argv);

/**
 * Parse the arguments of a verb that takes only the common options. Returns -1 to go on
 * (operands start at optind), or the exit status after printing `help` (usage and
 * description, options appended) or a usage error.
 */
int cli_common_args(struct cli *cli, int argc, char **argv, const char *help);

/** Reset getopt before a verb parses its arguments. */
void cli_getopt_reset(void);

/** Print "signoff VERB: <message>" on stderr and return CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Print "signoff: <message>" on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Create cli->client from the URL and token. Returns CLI_EXIT_OK or, after printing why,
 * CLI_EXIT_USAGE (no token, malformed URL) or CLI_EXIT_ERROR.
 */
int cli_connect(struct cli *cli, bool need_token);

/**
 * For a verb whose one operand is a request id: check there is exactly one (at optind),
 * point `*id` at it and connect with a token. Returns CLI_EXIT_OK or the exit status.
 */
int cli_connect_for_id(struct cli *cli, int argc, char **argv, const char **id);

/**
 * Print a failed call as one line: "signoff: VERB [ID]: 403 self_approval: message", or
 * "daemon unreachable at URL: ..." — and return CLI_EXIT_ERROR.
 */
int cli_fail(const struct cli *cli, const char *id, int rc, const so_client_error_t *err);

/** Print `v` as indented JSON and a newline on stdout. */
void cli_print_json(const json_t *v);

/** Write `s` with control characters escaped, so untrusted text cannot drive the terminal. */
void cli_put_safe(FILE *f, const char *s);

/** Write a shell-quoted rendering of a JSON list of strings (argv), control characters escaped. */
void cli_put_argv(FILE *f, const json_t *command);

/** Parse seconds: a positive integer with an optional s, m or h suffix, within [min, max]. */
bool cli_parse_seconds(const char *s, long min, long max, long *out);

/** Parse a decimal integer within [min, max], the whole string. */
bool cli_parse_long(const char *s, long min, long max, long *out);

/** The string member `key` of `obj`, or `fallback` if absent or not a string. */
const char *cli_str(const json_t *obj, const char *key, const char *fallback);

/** Format elapsed seconds as "42s", "3m04s" or "1h02m" into `buf`. */
const char *cli_format_elapsed(long seconds, char *buf, size_t size);

/**
 * Describe what a pending request waits for, from decision.requirements:
 * "1 more approval from sre (approved: bob)". Writes "" when there is nothing to say.
 */
void cli_describe_wait(const json_t *request, char *buf, size_t size);

/** Verbs, each in the file of its family. `argv[0]` is the verb. */
int cli_run(struct cli *cli, int argc, char **argv);
int cli_request(struct cli *cli, int argc, char **argv);
int cli_wait(struct cli *cli, int argc, char **argv);
int cli_show(struct cli *cli, int argc, char **argv);
int cli_list(struct cli *cli, int argc, char **argv);
int cli_approve(struct cli *cli, int argc, char **argv);
int cli_deny(struct cli *cli, int argc, char **argv);
int cli_cancel(struct cli *cli, int argc, char **argv);
int cli_token(struct cli *cli, int argc, char **argv);
int cli_whoami(struct cli *cli, int argc, char **argv);
int cli_policy(struct cli *cli, int argc, char **argv);
int cli_audit(struct cli *cli, int argc, char **argv);
int cli_explain(struct cli *cli, int argc, char **argv);
int cli_hook(struct cli *cli, int argc, char **argv);
int cli_anomaly(struct cli *cli, int argc, char **argv);
int cli_mcp_proxy(struct cli *cli, int argc, char **argv);

/** Print a request for humans (show). */
void cli_print_request(const json_t *request);

#endif
