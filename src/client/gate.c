/**
 * libsignoff's gate: submit an action, check the daemon's digest, wait for the decision,
 * claim the grant. Built only on the public calls of client.c; `signoff run`, the agent hooks
 * and the MCP proxy all go through here, so they fail closed in the same way.
 *
 * Owns nothing between calls. Borrows the client (and its tick slot while waiting).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client/internal.h"
#include "common/json.h"

/** Seconds asked of the daemon per long-poll: short enough to notice a lost connection. */
#define POLL_SECONDS 25
/**
 * How long a wait keeps asking after its daemon went away (a node stopping behind a load
 * balancer, a restart) or answered 502/503/504, before it fails. Reading is safe to repeat.
 */
#define RETRY_SECONDS 10
#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS 2000

static long
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec;
}

static const char *
str_member(const json_t *obj, const char *key, const char *fallback)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s != NULL ? s : fallback;
}

/* ---- describing a request ---- */

/** Append to a bounded buffer; the text is cut, never overrun. */
struct line {
	char *buf;
	size_t size, len;
};

static void
line_put(struct line *l, const char *s)
{
	size_t n = strlen(s);

	if (l->size == 0 || l->len >= l->size - 1)
		return;
	if (n > l->size - 1 - l->len)
		n = so_utf8_prefix(s, l->size - 1 - l->len);
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	l->buf[l->len] = '\0';
}

/** "by bob, carol" from the reviews that decided `decision`; false if none did. */
static bool
put_reviewers(struct line *l, const json_t *request, const char *decision, bool comment)
{
	const json_t *reviews = json_object_get(request, "reviews");
	json_t *r;
	size_t i;
	int n = 0;

	json_array_foreach(reviews, i, r) {
		if (strcmp(str_member(r, "decision", ""), decision) != 0)
			continue;
		line_put(l, n++ == 0 ? " by " : ", ");
		line_put(l, str_member(r, "reviewer", "?"));
		if (comment && str_member(r, "comment", "")[0] != '\0') {
			line_put(l, ": ");
			line_put(l, str_member(r, "comment", ""));
			return true; /* a denial needs one reviewer; its comment ends the line */
		}
	}
	return n > 0;
}

/** " by policy rule NAME[: reason]" for the first rule that decided `decide`. */
static bool
put_rule(struct line *l, const json_t *request, const char *decide, bool reason)
{
	const json_t *rules = json_object_get(json_object_get(request, "decision"), "rules");
	json_t *r;
	size_t i;

	json_array_foreach(rules, i, r) {
		if (strcmp(str_member(r, "decide", ""), decide) != 0)
			continue;
		line_put(l, " by policy rule ");
		line_put(l, str_member(r, "name", "?"));
		if (reason && str_member(r, "reason", "")[0] != '\0') {
			line_put(l, ": ");
			line_put(l, str_member(r, "reason", ""));
		}
		return true;
	}
	return false;
}

void
so_client_describe(const json_t *request, char *buf, size_t size)
{
	struct line l = {.buf = buf, .size = size};
	const char *status = str_member(request, "status", "unknown");
	bool done = strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	if (strcmp(status, "denied") == 0) {
		line_put(&l, "denied");
		if (!put_reviewers(&l, request, "deny", true))
			put_rule(&l, request, "deny", true);
	} else if (strcmp(status, "approved") == 0 || strcmp(status, "claimed") == 0 || done) {
		line_put(&l, "approved");
		if (!put_reviewers(&l, request, "approve", false)) {
			l.len = 0;
			line_put(&l, "allowed");
			if (!put_rule(&l, request, "allow", false))
				line_put(&l, " by policy");
		}
		if (done) {
			line_put(&l, "; ");
			line_put(&l, status);
		}
	} else {
		line_put(&l, status);
	}
}

/* ---- submit, wait, claim ---- */

/** End a call: on success `*out` (when wanted) takes `v`; otherwise `v` is released. */
static int
hand_over(int rc, json_t *v, json_t **out)
{
	if (rc == SO_CLIENT_OK && out != NULL)
		*out = v;
	else
		json_decref(v);
	return rc;
}

int
so_client_digest(const json_t *action, char digest[65])
{
	digest[0] = '\0';
	if (!json_is_object(action) || so_json_digest(action, digest) != 0)
		return SO_CLIENT_EINVAL;
	return SO_CLIENT_OK;
}

int
so_client_submit_checked(so_client_t *c, const so_client_submit_t *req, char digest[65],
                         json_t **out, so_client_error_t *err)
{
	json_t *request = NULL;
	const char *id, *theirs;
	int rc;

	if (out != NULL)
		*out = NULL;
	digest[0] = '\0';
	if (req == NULL || so_client_digest(req->action, digest) != SO_CLIENT_OK) {
		so_client_error_set(err, SO_CLIENT_EINVAL, 0, NULL,
		                    "action must be a JSON object of UTF-8 text");
		return SO_CLIENT_EINVAL;
	}
	rc = so_client_submit(c, req, &request, err);
	if (rc != SO_CLIENT_OK)
		return rc;

	id = str_member(request, "id", NULL);
	theirs = str_member(request, "digest", "(none)");
	if (id == NULL || str_member(request, "status", NULL) == NULL) {
		so_client_error_set(err, SO_CLIENT_EPROTO, 0, NULL,
		                    "the daemon's answer has no request id or status; refusing");
		rc = SO_CLIENT_EPROTO;
	} else if (strcmp(theirs, digest) != 0) {
		so_client_error_set(err, SO_CLIENT_EPROTO, 0, NULL,
		                    "%s: the daemon's digest %.64s does not match the action's digest "
		                    "%s; refusing", id, theirs, digest);
		if (strcmp(str_member(request, "status", ""), "pending") == 0)
			so_client_cancel(c, id, NULL, NULL);
		rc = SO_CLIENT_EPROTO;
	}
	return hand_over(rc, request, out);
}

static int
retryable(int rc, const so_client_error_t *err)
{
	return rc == SO_CLIENT_EUNREACHABLE ||
	       (rc == SO_CLIENT_EHTTP && (err->http_status == 502 || err->http_status == 503 ||
	                                  err->http_status == 504));
}

/**
 * so_client_get() for a wait: a daemon that cannot answer now is asked again, with a growing
 * pause, for up to RETRY_SECONDS (and never past `deadline`); any other error at once.
 */
static int
get_again(so_client_t *c, const char *id, int poll, long deadline, json_t **next,
          so_client_error_t *err)
{
	so_client_error_t local;
	long failing_since = 0;
	long pause_ms = RETRY_FIRST_MS;
	int rc;

	for (;;) {
		rc = so_client_get(c, id, poll, next, &local);
		if (rc == SO_CLIENT_OK || !retryable(rc, &local))
			break;
		long now = now_seconds();
		if (failing_since == 0)
			failing_since = now; /* a long-poll may fail late: the window starts here */
		if (now - failing_since >= RETRY_SECONDS || (deadline != 0 && now >= deadline))
			break;
		struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		pause_ms = pause_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause_ms * 2;
		if (deadline != 0 && deadline - now_seconds() < poll)
			poll = deadline > now_seconds() ? (int)(deadline - now_seconds()) : 0;
	}
	if (err != NULL)
		*err = local;
	return rc;
}

/**
 * Long-poll `*request` (owned by the caller throughout, replaced by each new version) until it
 * is no longer pending or `deadline` (now_seconds() bound, 0 for none) passes.
 */
static int
follow(so_client_t *c, json_t **request, long deadline, so_client_update_fn on_update,
       void *arg, so_client_error_t *err)
{
	char id[SO_CLIENT_ID_MAX];
	json_t *next = NULL;
	int rc;

	snprintf(id, sizeof(id), "%s", str_member(*request, "id", ""));
	for (;;) {
		int poll = POLL_SECONDS;

		if (on_update != NULL)
			on_update(*request, arg);
		if (strcmp(str_member(*request, "status", ""), "pending") != 0)
			return SO_CLIENT_OK;
		if (deadline != 0) {
			long left = deadline - now_seconds();
			if (left <= 0)
				return SO_CLIENT_OK;
			if (left < poll)
				poll = (int)left;
		}
		rc = get_again(c, id, poll, deadline, &next, err);
		if (rc != SO_CLIENT_OK)
			return rc;
		json_decref(*request);
		*request = next;
	}
}

int
so_client_wait(so_client_t *c, const char *id, long timeout_seconds,
               so_client_update_fn on_update, void *arg, json_t **out, so_client_error_t *err)
{
	long deadline = timeout_seconds > 0 ? now_seconds() + timeout_seconds : 0;
	json_t *request = NULL;
	int rc;

	if (out != NULL)
		*out = NULL;
	rc = get_again(c, id, 0, deadline, &request, err);
	if (rc == SO_CLIENT_OK)
		rc = follow(c, &request, deadline, on_update, arg, err);
	return hand_over(rc, request, out);
}

/** The request stays undecided and we stop waiting: cancel it and say how that went. */
static void
give_up(so_client_t *c, so_client_gate_t *gate, so_client_verdict_t verdict, const char *why)
{
	so_client_error_t cerr;
	int rc;

	gate->verdict = verdict;
	rc = so_client_cancel(c, gate->id, NULL, &cerr);
	if (rc == SO_CLIENT_OK)
		snprintf(gate->reason, sizeof(gate->reason), "%s; request %s cancelled", why, gate->id);
	else if (rc == SO_CLIENT_EHTTP && strcmp(cerr.error_code, "not_pending") == 0)
		snprintf(gate->reason, sizeof(gate->reason),
		         "%s; request %s was no longer pending and is not used", why, gate->id);
	else
		snprintf(gate->reason, sizeof(gate->reason),
		         "%s; cancelling request %s failed: %.200s", why, gate->id,
		         cerr.message[0] != '\0' ? cerr.message : so_client_strerror(rc));
}

/** Claim an approved request; sets the verdict or returns the error. */
static int
claim(so_client_t *c, so_client_gate_t *gate, json_t **request, so_client_error_t *err)
{
	json_t *claimed = NULL;
	int rc;

	rc = so_client_claim(c, gate->id, gate->digest, &claimed, err);
	if (rc == SO_CLIENT_EHTTP && err != NULL && strcmp(err->error_code, "grant_expired") == 0) {
		gate->verdict = SO_CLIENT_EXPIRED;
		snprintf(gate->reason, sizeof(gate->reason),
		         "approved, but the grant expired before it was claimed");
		return SO_CLIENT_OK;
	}
	if (rc != SO_CLIENT_OK)
		return rc;
	if (strcmp(str_member(claimed, "status", ""), "claimed") != 0 ||
	    strcmp(str_member(claimed, "digest", ""), gate->digest) != 0) {
		json_decref(claimed);
		so_client_error_set(err, SO_CLIENT_EPROTO, 0, NULL,
		                    "%s: the claim's answer is not a claim of this action", gate->id);
		return SO_CLIENT_EPROTO;
	}
	json_decref(*request);
	*request = claimed;
	gate->verdict = SO_CLIENT_PROCEED;
	so_client_describe(claimed, gate->reason, sizeof(gate->reason));
	return SO_CLIENT_OK;
}

int
so_client_gate(so_client_t *c, const so_client_submit_t *req, const so_client_gate_opts_t *opts,
               so_client_gate_t *gate, json_t **out, so_client_error_t *err)
{
	static const so_client_gate_opts_t no_opts;
	json_t *request = NULL;
	const char *status;
	long deadline;
	int rc;

	if (opts == NULL)
		opts = &no_opts;
	memset(gate, 0, sizeof(*gate));
	if (out != NULL)
		*out = NULL;
	deadline = opts->timeout_seconds > 0 ? now_seconds() + opts->timeout_seconds : 0;

	rc = so_client_submit_checked(c, req, gate->digest, &request, err);
	if (rc != SO_CLIENT_OK)
		return rc;
	snprintf(gate->id, sizeof(gate->id), "%s", str_member(request, "id", ""));

	so_client_set_tick(c, opts->should_stop, opts->arg);
	rc = follow(c, &request, deadline, opts->on_update, opts->arg, err);
	so_client_set_tick(c, NULL, NULL);

	status = str_member(request, "status", "");
	if (rc == SO_CLIENT_EABORTED) {
		give_up(c, gate, SO_CLIENT_STOPPED, "stopped");
		rc = SO_CLIENT_OK;
	} else if (rc != SO_CLIENT_OK) {
		/* error already set */
	} else if (strcmp(status, "pending") == 0) {
		char why[64];
		snprintf(why, sizeof(why), "no decision within %lds", opts->timeout_seconds);
		give_up(c, gate, SO_CLIENT_TIMED_OUT, why);
	} else if (strcmp(status, "denied") == 0) {
		gate->verdict = SO_CLIENT_DENIED;
		so_client_describe(request, gate->reason, sizeof(gate->reason));
	} else if (strcmp(status, "expired") == 0 || strcmp(status, "cancelled") == 0) {
		gate->verdict = SO_CLIENT_EXPIRED;
		so_client_describe(request, gate->reason, sizeof(gate->reason));
	} else if (strcmp(status, "approved") == 0) {
		if (opts->should_stop != NULL && opts->should_stop(opts->arg) != 0) {
			/* Stopped between the decision and now: do not claim what will not run. */
			gate->verdict = SO_CLIENT_STOPPED;
			snprintf(gate->reason, sizeof(gate->reason),
			         "stopped after the approval; the grant of %s is not used", gate->id);
		} else {
			rc = claim(c, gate, &request, err);
		}
	} else {
		so_client_error_set(err, SO_CLIENT_ESPENT, 0, NULL,
		                    "%s is already %s (a grant runs once)", gate->id, status);
		rc = SO_CLIENT_ESPENT;
	}
	if (rc == SO_CLIENT_OK)
		so_client_error_set(err, SO_CLIENT_OK, 0, NULL, NULL);
	if (out != NULL)
		*out = request;
	else
		json_decref(request);
	return rc;
}
