/**
 * Helpers shared by the verbs: options, connecting, error lines, safe output.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void
cli_getopt_reset(void)
{
	optind = 0; /* glibc: 0 re-initialises getopt, including the '+' mode */
	opterr = 0; /* we print our own messages */
}

void
cli_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("signoff: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_common_args(struct cli *cli, int argc, char **argv, const char *help)
{
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	int opt;
	while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (cli_option(cli, opt, argv)) {
		case CLI_OPT_HANDLED:
			break;
		case CLI_OPT_HELP:
			fputs(help, stdout);
			fputs("\noptions:\n" CLI_COMMON_HELP, stdout);
			return CLI_EXIT_OK;
		case CLI_OPT_NOT_COMMON:
		case CLI_OPT_BAD:
			return CLI_EXIT_USAGE;
		}
	}
	return -1;
}

int
cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	bool top = strcmp(cli->verb, "signoff") == 0; /* before any verb */

	fprintf(stderr, "signoff%s%s: ", top ? "" : " ", top ? "" : cli->verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'signoff%s%s --help')\n", top ? "" : " ", top ? "" : cli->verb);
	return CLI_EXIT_USAGE;
}

enum cli_opt_result
cli_option(struct cli *cli, int opt, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	switch (opt) {
	case CLI_OPT_URL:
		cli->url = optarg;
		cli->url_is_default = false;
		return CLI_OPT_HANDLED;
	case CLI_OPT_TOKEN:
		cli->token = optarg;
		return CLI_OPT_HANDLED;
	case CLI_OPT_JSON:
		cli->json = true;
		return CLI_OPT_HANDLED;
	case 'h':
		return CLI_OPT_HELP;
	case ':':
		cli_usage_error(cli, "option %s needs a value", arg);
		return CLI_OPT_BAD;
	case '?':
		if (optopt != 0 && optopt < 0x100)
			cli_usage_error(cli, "unknown option -%c", optopt);
		else
			cli_usage_error(cli, "unknown option %s", arg);
		return CLI_OPT_BAD;
	default:
		return CLI_OPT_NOT_COMMON;
	}
}

int
cli_connect(struct cli *cli, bool need_token)
{
	int rc;

	if (need_token && (cli->token == NULL || cli->token[0] == '\0')) {
		cli_warn("%s: no token: set SIGNOFF_TOKEN or pass --token", cli->verb);
		return CLI_EXIT_USAGE;
	}
	rc = so_client_new(cli->url, cli->token, CLI_CALL_TIMEOUT_MS, &cli->client);
	if (rc == SO_CLIENT_EINVAL) {
		if (strncmp(cli->url, "http://", 7) != 0 && strncmp(cli->url, "https://", 8) != 0)
			cli_warn("%s: bad URL '%s': it must start with http:// or https://", cli->verb,
			         cli->url);
		else
			cli_warn("%s: bad URL or token: the URL may hold no query, the token only "
			         "printable characters without spaces", cli->verb);
		return CLI_EXIT_USAGE;
	}
	if (rc != SO_CLIENT_OK) {
		cli_warn("%s: %s", cli->verb, so_client_strerror(rc));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

int
cli_connect_for_id(struct cli *cli, int argc, char **argv, const char **id)
{
	if (argc - optind != 1)
		return cli_usage_error(cli, "expected one request id");
	*id = argv[optind];
	return cli_connect(cli, true);
}

int
cli_fail(const struct cli *cli, const char *id, int rc, const so_client_error_t *err)
{
	fprintf(stderr, "signoff: %s%s", cli->verb, id != NULL ? " " : "");
	if (id != NULL)
		cli_put_safe(stderr, id);
	fputs(": ", stderr);
	if (rc == SO_CLIENT_EUNREACHABLE) {
		fprintf(stderr, "daemon unreachable at %s", cli->url);
		if (err->message[0] != '\0') {
			fputs(": ", stderr);
			cli_put_safe(stderr, err->message);
		}
		if (cli->url_is_default)
			fputs(" (the default address: SIGNOFF_URL is not set)", stderr);
	} else if (rc == SO_CLIENT_EHTTP) {
		fprintf(stderr, "%ld", err->http_status);
		if (err->error_code[0] != '\0') {
			fputc(' ', stderr);
			cli_put_safe(stderr, err->error_code);
		}
		if (err->message[0] != '\0') {
			fputs(": ", stderr);
			cli_put_safe(stderr, err->message);
		}
	} else {
		fputs(so_client_strerror(rc), stderr);
		if (err->message[0] != '\0') {
			fputs(": ", stderr);
			cli_put_safe(stderr, err->message);
		}
	}
	fputc('\n', stderr);
	return CLI_EXIT_ERROR;
}

void
cli_print_json(const json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	fflush(stdout);
}

void
cli_put_safe(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++) {
		if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p == '\r')
			fputs("\\r", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			/* U+0080..U+009F: C1 controls, which some terminals obey. */
			fprintf(f, "\\u%04x", p[1]);
			p++;
		} else
			fputc(*p, f);
	}
}

/** True when `s` reads the same to a shell unquoted. */
static bool
shell_plain(const char *s)
{
	if (*s == '\0')
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	                 "_@%+=:,./-") == strlen(s);
}

void
cli_put_argv(FILE *f, const json_t *command)
{
	size_t i;
	json_t *arg;

	json_array_foreach(command, i, arg) {
		const char *s = json_string_value(arg);
		if (i > 0)
			fputc(' ', f);
		if (s == NULL) {
			fputs("?", f);
		} else if (shell_plain(s)) {
			fputs(s, f);
		} else {
			fputc('\'', f);
			for (; *s != '\0'; s++) {
				if (*s == '\'') {
					fputs("'\\''", f);
				} else {
					char one[2] = {*s, '\0'};
					cli_put_safe(f, one);
				}
			}
			fputc('\'', f);
		}
	}
}

bool
cli_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool
cli_parse_seconds(const char *s, long min, long max, long *out)
{
	char *end;
	long v, unit = 1;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0)
		return false;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		unit = 60, end++;
	else if (*end == 'h')
		unit = 3600, end++;
	if (*end != '\0' || v > LONG_MAX / unit)
		return false;
	v *= unit;
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

const char *
cli_str(const json_t *obj, const char *key, const char *fallback)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : fallback;
}

const char *
cli_format_elapsed(long seconds, char *buf, size_t size)
{
	if (seconds < 0)
		seconds = 0;
	if (seconds < 60)
		snprintf(buf, size, "%lds", seconds);
	else if (seconds < 3600)
		snprintf(buf, size, "%ldm%02lds", seconds / 60, seconds % 60);
	else
		snprintf(buf, size, "%ldh%02ldm", seconds / 3600, (seconds % 3600) / 60);
	return buf;
}

void
cli_describe_wait(const json_t *request, char *buf, size_t size)
{
	const json_t *reqs = json_object_get(json_object_get(request, "decision"), "requirements");
	size_t used = 0, i;
	json_t *r;

	buf[0] = '\0';
	json_array_foreach(reqs, i, r) {
		const char *group = cli_str(r, "group", "?");
		json_t *by = json_object_get(r, "approved_by");
		long count = (long)json_integer_value(json_object_get(r, "count"));
		long have = (long)json_array_size(by);
		long missing = count - have;
		size_t j;
		json_t *who;
		int n;

		if (missing <= 0)
			continue;
		n = snprintf(buf + used, size - used, "%s%ld %sapproval%s from %s", used > 0 ? "; " : "",
		             missing, have > 0 ? "more " : "", missing == 1 ? "" : "s", group);
		if (n < 0 || (size_t)n >= size - used)
			return;
		used += (size_t)n;
		json_array_foreach(by, j, who) {
			n = snprintf(buf + used, size - used, "%s%s", j == 0 ? " (approved: " : ", ",
			             json_string_value(who) ? json_string_value(who) : "?");
			if (n < 0 || (size_t)n >= size - used)
				return;
			used += (size_t)n;
		}
		if (have > 0) {
			n = snprintf(buf + used, size - used, ")");
			if (n < 0 || (size_t)n >= size - used)
				return;
			used += (size_t)n;
		}
	}
}
