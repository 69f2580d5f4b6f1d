/*
 * gate: a complete program that asks signoff before it does something privileged.
 *
 *     SIGNOFF_URL=http://127.0.0.1:8700 SIGNOFF_TOKEN=so_... \
 *         signoff-example-gate TABLE ENVIRONMENT OUTPUT [WHY]
 *
 * It asks to export TABLE from ENVIRONMENT into the file OUTPUT, waits for the decision, and
 * only once the request is approved claims the grant with the digest of the action it is
 * about to perform, "exports" (appends one line to OUTPUT), and reports how that went.
 *
 * Exit status (the same as `signoff run` where they overlap):
 *   0  exported (and reported)
 *   1  approved, but the export itself failed (and that was reported)
 *   2  usage: bad arguments, SIGNOFF_URL or SIGNOFF_TOKEN
 *   3  denied
 *   4  expired or cancelled, or we stopped waiting
 *   5  the daemon could not be reached, refused a call, or answered something unexpected
 *   6  the daemon's digest of the action is not ours: what would be approved is not what
 *      we would run
 * Nothing is exported on 2 to 6: every doubt ends in not acting (fail closed). When the
 * export ran but reporting it failed, the status is still 0 or 1, with a warning.
 *
 * Only libsignoff's public calls (include/signoff/client.h) and jansson are used,
 * one step at a time so that the same loop can be followed in any language. In C, submit,
 * wait and claim are also one call: so_client_gate(). See docs/integrations/c-api.md.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime() when built outside meson with -std=c11 */

#include <signoff/client.h>

#include <jansson.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum gate_exit {
	GATE_EXIT_DONE = 0,
	GATE_EXIT_ACTION_FAILED = 1,
	GATE_EXIT_USAGE = 2,
	GATE_EXIT_DENIED = 3,
	GATE_EXIT_EXPIRED = 4,
	GATE_EXIT_ERROR = 5,
	GATE_EXIT_DIGEST = 6,
};

/** Seconds one long-poll asks the daemon to hold its answer (at most SO_CLIENT_MAX_WAIT). */
#define GATE_POLL_SECONDS 25

/** How long we wait for a decision in all before we cancel and give up. */
#define GATE_MAX_WAIT_SECONDS 3600

/** Request ids are `req_` and 26 characters; anything longer or stranger is refused. */
#define GATE_ID_MAX 64
#define GATE_ID_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

/** Hex SHA-256 plus its NUL. */
#define GATE_DIGEST_HEX 65 /* 64 hex and a NUL */

/** A top-level string field of a request, or "" when it is missing or not a string. */
static const char *
str_field(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s != NULL ? s : "";
}

/** Print text that someone else wrote (a reviewer's comment) without control characters. */
static void
put_safe(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

/** Say why a libsignoff call failed; returns GATE_EXIT_ERROR. */
static int
call_failed(const char *what, int rc, const so_client_error_t *err)
{
	fprintf(stderr, "gate: %s failed: %s", what, so_client_strerror(rc));
	if (rc == SO_CLIENT_EHTTP)
		fprintf(stderr, " (HTTP %ld %s)", err->http_status, err->error_code);
	if (err->message[0] != '\0') {
		fputs(": ", stderr);
		put_safe(stderr, err->message);
	}
	fputs("; nothing was exported\n", stderr);
	return GATE_EXIT_ERROR;
}

/** Seconds on a clock that only goes forward. */
static double
now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/** "denied by bob: not during the freeze", or the policy rule that denied it. */
static void
put_denial(const json_t *request)
{
	const json_t *rules = json_object_get(json_object_get(request, "decision"), "rules");
	json_t *item;
	size_t i;

	json_array_foreach(json_object_get(request, "reviews"), i, item) {
		if (strcmp(str_field(item, "decision"), "deny") != 0)
			continue;
		fputs(" by ", stderr);
		put_safe(stderr, str_field(item, "reviewer"));
		if (str_field(item, "comment")[0] != '\0') {
			fputs(": ", stderr);
			put_safe(stderr, str_field(item, "comment"));
		}
		return;
	}
	json_array_foreach(rules, i, item) {
		if (strcmp(str_field(item, "decide"), "deny") != 0)
			continue;
		fputs(" by policy rule ", stderr);
		put_safe(stderr, str_field(item, "name"));
		fputs(": ", stderr);
		put_safe(stderr, str_field(item, "reason"));
		return;
	}
}

/**
 * The privileged action itself, done only after a successful claim: append one line to
 * `output`. Returns the exit code to report (0 or 1) and says what happened in `detail`.
 */
static int
export_table(const char *table, const char *environment, const char *output, const char *id,
             char *detail, size_t size)
{
	FILE *f = fopen(output, "a");
	int failed;

	if (f == NULL) {
		snprintf(detail, size, "could not open %s", output);
		return 1;
	}
	fprintf(f, "export of table %s from %s, approved as %s\n", table, environment, id);
	failed = ferror(f);
	failed |= fclose(f);
	if (failed != 0) {
		snprintf(detail, size, "could not write %s", output);
		return 1;
	}
	snprintf(detail, size, "exported table %s from %s to %s", table, environment, output);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *url = getenv("SIGNOFF_URL"), *token = getenv("SIGNOFF_TOKEN");
	const char *table, *environment, *output, *why, *status, *theirs;
	so_client_t *client = NULL;
	so_client_submit_t submit;
	so_client_error_t err;
	json_t *action = NULL, *request = NULL, *claimed = NULL, *finished = NULL;
	char digest[GATE_DIGEST_HEX], id[GATE_ID_MAX + 1], detail[512];
	double deadline;
	int rc, code, exit_status = GATE_EXIT_ERROR;

	if (argc < 4 || argc > 5 || url == NULL || token == NULL) {
		fprintf(stderr, "usage: SIGNOFF_URL=URL SIGNOFF_TOKEN=TOKEN "
		                "%s TABLE ENVIRONMENT OUTPUT [WHY]\n",
		        argc > 0 ? argv[0] : "signoff-example-gate");
		return GATE_EXIT_USAGE;
	}
	table = argv[1];
	environment = argv[2];
	output = argv[3];
	why = argc == 5 ? argv[4] : "export requested by signoff-example-gate";
	/* 1. The action, exactly as it will be performed, and our own digest of it. The output
	 * file is part of it: reviewers approve where the data goes, not only what is read. */
	action = json_pack("{s:s, s:s, s:s, s:s}", "kind", "db.export", "table", table,
	                   "environment", environment, "destination", output);
	if (action == NULL) {
		fputs("gate: TABLE, ENVIRONMENT and OUTPUT must be UTF-8 text\n", stderr);
		exit_status = GATE_EXIT_USAGE;
		goto out;
	}
	/* SHA-256 of the canonical JSON, as the daemon computes it (docs/api.md). */
	if (so_client_digest(action, digest) != SO_CLIENT_OK) {
		fputs("gate: cannot compute the action's digest\n", stderr);
		goto out;
	}

	/* 2. Ask. The answer says at once approved (by policy), denied, or pending. */
	rc = so_client_new(url, token, 0, &client);
	if (rc != SO_CLIENT_OK) {
		fprintf(stderr, "gate: cannot use SIGNOFF_URL or SIGNOFF_TOKEN: %s\n",
		        so_client_strerror(rc));
		exit_status = rc == SO_CLIENT_EINVAL ? GATE_EXIT_USAGE : GATE_EXIT_ERROR;
		goto out;
	}
	memset(&submit, 0, sizeof(submit));
	submit.action = action;
	submit.intent = why;
	rc = so_client_submit(client, &submit, &request, &err);
	if (rc != SO_CLIENT_OK) {
		exit_status = call_failed("submit", rc, &err);
		goto out;
	}
	if (snprintf(id, sizeof(id), "%s", str_field(request, "id")) >= (int)sizeof(id) ||
	    id[0] == '\0' || strspn(id, GATE_ID_CHARS) != strlen(id)) {
		fputs("gate: the daemon's answer has no usable request id; nothing was exported\n",
		      stderr);
		goto out;
	}

	/* 3. The daemon must have hashed the very action we built. If not, what a reviewer
	 * would approve is not what we would run: withdraw the request and stop. */
	theirs = str_field(request, "digest");
	if (strcmp(theirs, digest) != 0) {
		fprintf(stderr, "gate: %s: the daemon's digest ", id);
		put_safe(stderr, theirs[0] != '\0' ? theirs : "(none)");
		fprintf(stderr, " is not our %s; refusing, nothing was exported\n", digest);
		if (strcmp(str_field(request, "status"), "pending") == 0)
			so_client_cancel(client, id, NULL, NULL);
		exit_status = GATE_EXIT_DIGEST;
		goto out;
	}

	/* 4. Long-poll until the request leaves "pending". Each call returns after at most
	 * GATE_POLL_SECONDS, decided or not; the request's TTL and our deadline end the loop. */
	deadline = now_seconds() + GATE_MAX_WAIT_SECONDS;
	while (strcmp(str_field(request, "status"), "pending") == 0) {
		if (now_seconds() > deadline) {
			so_client_cancel(client, id, NULL, NULL);
			fprintf(stderr, "gate: %s: no decision within %d s; cancelled, nothing was "
			                "exported\n", id, GATE_MAX_WAIT_SECONDS);
			exit_status = GATE_EXIT_EXPIRED;
			goto out;
		}
		fprintf(stderr, "gate: %s is pending review\n", id);
		json_decref(request);
		rc = so_client_get(client, id, GATE_POLL_SECONDS, &request, &err);
		if (rc != SO_CLIENT_OK) {
			exit_status = call_failed("waiting for the decision", rc, &err);
			goto out;
		}
	}

	/* 5. Decided. Anything but "approved" ends here, with nothing done. */
	status = str_field(request, "status");
	if (strcmp(status, "denied") == 0) {
		fprintf(stderr, "gate: %s denied", id);
		put_denial(request);
		fputs("; nothing was exported\n", stderr);
		exit_status = GATE_EXIT_DENIED;
		goto out;
	}
	if (strcmp(status, "expired") == 0 || strcmp(status, "cancelled") == 0) {
		fprintf(stderr, "gate: %s %s; nothing was exported\n", id, status);
		exit_status = GATE_EXIT_EXPIRED;
		goto out;
	}
	if (strcmp(status, "approved") != 0) {
		fprintf(stderr, "gate: %s is ", id);
		put_safe(stderr, status);
		fputs(", not approved (a grant is used once); nothing was exported\n", stderr);
		goto out;
	}

	/* 6. Claim the grant with OUR digest, not the one in the answer. The first claim wins;
	 * a refusal (already claimed, grant expired, digest mismatch) means we must not act. */
	rc = so_client_claim(client, id, digest, &claimed, &err);
	if (rc != SO_CLIENT_OK) {
		exit_status = call_failed("claim", rc, &err);
		if (rc == SO_CLIENT_EHTTP && strcmp(err.error_code, "grant_expired") == 0)
			exit_status = GATE_EXIT_EXPIRED;
		goto out;
	}
	if (strcmp(str_field(claimed, "status"), "claimed") != 0 ||
	    strcmp(str_field(claimed, "digest"), digest) != 0) {
		fprintf(stderr, "gate: %s: the claim's answer is not a claim of our action; "
		                "nothing was exported\n", id);
		goto out;
	}

	/* 7. Act, exactly once, then report. Past this point the action has happened: a
	 * failed report must not make us act again. */
	code = export_table(table, environment, output, id, detail, sizeof(detail));
	printf("%s: %s\n", id, detail);
	exit_status = code == 0 ? GATE_EXIT_DONE : GATE_EXIT_ACTION_FAILED;
	rc = so_client_result(client, id, code, detail, &finished, &err);
	if (rc != SO_CLIENT_OK) {
		/* The exit status still says how the export went, as with `signoff run`. */
		fprintf(stderr, "gate: %s: the export ran (%s) but reporting it failed: %s\n", id,
		        detail, so_client_strerror(rc));
		goto out;
	}
	fprintf(stderr, "gate: %s %s\n", id, str_field(finished, "status"));
out:
	json_decref(finished);
	json_decref(claimed);
	json_decref(request);
	json_decref(action);
	so_client_free(client);
	return exit_status;
}
