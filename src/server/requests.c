/*
 * The request resources: submit, read (with long-poll), list, review, cancel, claim, result.
 * Changes run as writer ops (op_*) inside a savepoint; each writes its audit event in the
 * same transaction, and the answer goes out only after the commit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit/audit.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "policy/policy.h"
#include "server/internal.h"

#define LIST_DEFAULT 50
#define LIST_MAX 200
#define LIST_SCAN_MAX 2000
#define COMMENT_MAX 4096
#define DETAIL_MAX 16384

static const so_directory_t *
dir_of(struct conn *c)
{
	return &c->srv->cfg->directory;
}

static int
visible(struct conn *c, const so_request_t *r)
{
	return so_core_may_view(r, c->caller, c->srv->cfg->admin_group, c->srv->cfg->auditor_group);
}

/**
 * The request as the caller sees it: the API's form plus "viewer", whether the caller may
 * review it now and, if not, why in words (the console shows it instead of the buttons).
 */
static json_t *
request_for_caller(struct conn *c, const so_request_t *r)
{
	json_t *out = so_request_to_json(dir_of(c), r);
	so_core_err_t e;
	int may;

	if (out == NULL)
		return NULL;
	may = so_core_may_review(r, c->caller, so_clock_now_ms(), &e) == SO_OK;
	json_object_set_new(out, "viewer",
	                    json_pack("{s:b, s:o}", "may_review", may, "reason",
	                              may ? json_null() : json_string(e.message)));
	return out;
}

static void
reply_request(struct conn *c, unsigned status, const so_request_t *r)
{
	reply_json(c, status, request_for_caller(c, r));
}

/* ---- submit ---- */

static int
op_submit(so_store_t *s, struct conn *c)
{
	so_request_t *r = c->req;
	int rc;

	if (r->idempotency_key) {
		char id[SO_ID_LEN + 1];
		rc = s->ops->request_find_idem(s, r->requester, r->idempotency_key, id);
		if (rc == SO_OK) {
			so_request_t *prev = NULL;
			if ((rc = s->ops->request_get(s, id, &prev)))
				return rc;
			if (strcmp(prev->digest, r->digest))
				reply_error(c, 409, "idempotency_conflict",
				            "idempotency key '%s' was used for another action (%s)",
				            r->idempotency_key, prev->id);
			else
				reply_request(c, 200, prev);
			so_request_free(prev);
			return SO_OK;
		}
		if (rc != SO_ENOTFOUND)
			return rc;
	}
	/* The stored form is the audit record: what reviewers see, the decision and its trace. */
	if ((rc = s->ops->request_insert(s, r)) ||
	    (rc = so_audit_append_text(s, "request.submitted", r->id, r->requester, r->doc_text,
	                               r->created_at)) ||
	    (rc = so_notify_request(c->srv->notifier, s, r, "request.submitted", r->created_at)) ||
	    (rc = anomaly_after_submit(c->srv, s, r)))
		return rc;
	/* c->resp already holds the 201 answer, made before the job was queued. */
	c->transition = (int)r->status;
	memcpy(c->id, r->id, sizeof(c->id));
	c->changed = 1; /* nobody waits on a new id, but the console's live queue shows it */
	if (r->status != SO_ST_PENDING)
		c->decision_usec = 0;
	return SO_OK;
}

void
h_submit(struct conn *c, struct MHD_Connection *mc)
{
	so_core_err_t e;
	so_decision_t d;
	unsigned char rnd[10];
	int64_t now = so_clock_now_ms();

	if (parse_body(c))
		return;
	randombytes_buf(rnd, sizeof(rnd));
	if (so_core_new_request(dir_of(c), c->caller, c->in, now, rnd, &c->req, &e)) {
		if (e.http)
			reply_core_err(c, &e);
		else
			reply_error(c, 500, "internal", "out of memory");
		return;
	}
	anomaly_score_request(c->srv, c->req, now);
	struct policy_ref *pr = policy_acquire(c->srv);
	int rc = so_policy_decide(&pr->policy, dir_of(c), c->req, now, &d, &e);
	policy_release(pr);
	if (rc == SO_EINVAL) {
		reply_core_err(c, &e);
		return;
	}
	if (rc) {
		reply_error(c, 500, "internal", "policy evaluation failed");
		return;
	}
	so_core_apply_decision(c->req, &d, so_core_requested_ttl(c->in), now);
	memcpy(c->id, c->req->id, sizeof(c->id));
	/* JSON work happens here, in parallel HTTP threads, not in the single writer. */
	if (so_request_seal(c->req)) {
		reply_error(c, 500, "internal", "out of memory");
		return;
	}
	reply_request(c, 201, c->req);
	atomic_fetch_add(&so_metrics.submitted, 1);
	run_op(c, mc, op_submit);
}

/* ---- read, long-poll, list ---- */

static int
load_visible(struct conn *c, so_request_t **out)
{
	so_store_t *s = readers_take(&c->srv->readers);
	int rc = s->ops->request_get(s, c->id, out);
	readers_give(&c->srv->readers, s);
	if (rc == SO_OK && !visible(c, *out)) {
		so_request_free(*out);
		*out = NULL;
		rc = SO_ENOTFOUND;
	}
	if (rc)
		reply_store_err(c, rc);
	return rc;
}

static int
query_int(struct MHD_Connection *mc, const char *key, int64_t min, int64_t max, int64_t def,
          int64_t *out)
{
	const char *v = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, key);
	if (!v) {
		*out = def;
		return SO_OK;
	}
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < min)
		return SO_EINVAL;
	*out = n > max ? max : n;
	return SO_OK;
}

void
finish_wait(struct conn *c)
{
	so_request_t *r = NULL;
	if (load_visible(c, &r) == SO_OK)
		reply_request(c, 200, r);
	so_request_free(r);
}

void
h_get_request(struct conn *c, struct MHD_Connection *mc)
{
	int64_t wait;
	so_request_t *r = NULL;
	if (query_int(mc, "wait", 0, c->srv->cfg->max_wait, 0, &wait)) {
		reply_error(c, 400, "bad_request", "wait must be a whole number of seconds >= 0");
		return;
	}
	if (load_visible(c, &r))
		return;
	if (r->status != SO_ST_PENDING || wait == 0) {
		reply_request(c, 200, r);
		so_request_free(r);
		return;
	}
	so_request_free(r);
	/* Suspend first, then register, then look again: a change committed at any point
	 * after the first read either shows in the second read or wakes us. */
	struct waiter *w = &c->waiter;
	memcpy(w->id, c->id, sizeof(w->id));
	w->mc = mc;
	w->deadline = so_clock_mono_ms() + wait * 1000;
	c->state = CONN_SUSPENDED;
	c->waiting = 1;
	c->parked = 1;
	atomic_fetch_add(&c->srv->parked, 1);
	MHD_suspend_connection(mc);
	waiters_add(c->srv->waiters, w);
	so_store_t *s = readers_take(&c->srv->readers);
	int rc = s->ops->request_get(s, c->id, &r);
	readers_give(&c->srv->readers, s);
	if (rc != SO_OK || r->status != SO_ST_PENDING)
		waiters_cancel(c->srv->waiters, w);
	so_request_free(r);
}

void
h_list_requests(struct conn *c, struct MHD_Connection *mc)
{
	so_store_query_t q = {0};
	int64_t limit;
	const char *status = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "status");
	const char *cursor = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "cursor");
	char cursor_id[SO_ID_LEN + 1] = "";

	if (query_int(mc, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit)) {
		reply_error(c, 400, "bad_request", "limit must be a whole number from 1 to %d", LIST_MAX);
		return;
	}
	if (status) {
		if (so_status_parse(status, &q.status)) {
			reply_error(c, 400, "bad_request", "unknown status '%s'", status);
			return;
		}
		q.has_status = 1;
	}
	if (cursor) {
		char *dot;
		errno = 0;
		long long created = strtoll(cursor, &dot, 10);
		if (errno || *dot != '.' || strlen(dot + 1) > SO_ID_LEN || created <= 0) {
			reply_error(c, 400, "bad_request", "malformed cursor");
			return;
		}
		q.before_created = created;
		snprintf(cursor_id, sizeof(cursor_id), "%s", dot + 1);
		q.before_id = cursor_id;
	}
	json_t *list = json_array();
	json_t *next = json_null();
	size_t scanned = 0;
	int rc = SO_OK, more = 1;
	so_store_t *s = readers_take(&c->srv->readers);
	while (more && json_array_size(list) < (size_t)limit && scanned < LIST_SCAN_MAX) {
		so_request_t **items = NULL;
		size_t n = 0;
		q.limit = LIST_MAX;
		if ((rc = s->ops->request_list(s, &q, &items, &n)))
			break;
		more = n == q.limit;
		for (size_t i = 0; i < n; i++) {
			so_request_t *r = items[i];
			scanned++;
			if (json_array_size(list) < (size_t)limit) {
				if (visible(c, r))
					json_array_append_new(list, request_for_caller(c, r));
				q.before_created = r->created_at;
				memcpy(cursor_id, r->id, sizeof(cursor_id));
				q.before_id = cursor_id;
			}
			so_request_free(r);
		}
		free(items);
		if (json_array_size(list) >= (size_t)limit || scanned >= LIST_SCAN_MAX)
			more = 1;
	}
	readers_give(&c->srv->readers, s);
	if (rc) {
		json_decref(list);
		reply_store_err(c, rc);
		return;
	}
	if (more && q.before_created) {
		char buf[64];
		snprintf(buf, sizeof(buf), "%" PRId64 ".%s", q.before_created, cursor_id);
		next = json_string(buf);
	}
	reply_json(c, 200, json_pack("{s:o, s:o}", "requests", list, "next", next));
}

/* ---- changes to one request ---- */

static int
apply_review(struct conn *c, so_request_t *r, int64_t now, so_core_err_t *e, const char **event,
             json_t **data)
{
	const char *decision = json_string_value(json_object_get(c->in, "decision"));
	const char *comment = json_string_value(json_object_get(c->in, "comment"));
	const char *channel = c->channel ? c->channel : "api";
	enum so_verdict v = !strcmp(decision, "approve") ? SO_APPROVE : SO_DENY;
	int rc = so_core_review(dir_of(c), r, c->caller, v, comment, channel, now, e);
	if (rc == SO_OK) {
		*event = "request.reviewed";
		/* what the reviewer decided on: this exact action */
		*data = json_pack("{s:s, s:s, s:s, s:s, s:s}", "decision", decision, "comment",
		                  comment ? comment : "", "channel", channel, "status",
		                  so_status_name(r->status), "digest", r->digest);
	}
	return rc;
}

static int
apply_cancel(struct conn *c, so_request_t *r, int64_t now, so_core_err_t *e, const char **event,
             json_t **data)
{
	int rc = so_core_cancel(r, c->caller, now, e);
	const char *reason = json_string_value(json_object_get(c->in, "reason"));
	if (rc == SO_OK) {
		*event = "request.cancelled";
		*data = json_pack("{s:s}", "reason", reason ? reason : "");
	}
	return rc;
}

static int
apply_claim(struct conn *c, so_request_t *r, int64_t now, so_core_err_t *e, const char **event,
            json_t **data)
{
	const char *digest = json_string_value(json_object_get(c->in, "digest"));
	int rc = so_core_claim(r, c->caller, digest, now, e);
	if (rc == SO_OK) {
		*event = "request.claimed";
		*data = json_pack("{s:s}", "digest", r->digest);
	}
	return rc;
}

static int
apply_result(struct conn *c, so_request_t *r, int64_t now, so_core_err_t *e, const char **event,
             json_t **data)
{
	json_int_t code = json_integer_value(json_object_get(c->in, "exit_code"));
	const char *detail = json_string_value(json_object_get(c->in, "detail"));
	int rc = so_core_result(r, c->caller, code, detail, now, e);
	if (rc == SO_OK) {
		*event = "request.result";
		*data = json_pack("{s:I, s:s, s:s}", "exit_code", code, "detail", detail ? detail : "",
		                  "status", so_status_name(r->status));
	}
	return rc;
}

static int
op_modify(so_store_t *s, struct conn *c)
{
	so_request_t *r = NULL;
	so_core_err_t e = {0};
	const char *event = NULL;
	json_t *data = NULL;
	int64_t now = so_clock_now_ms();

	int rc = s->ops->request_get(s, c->id, &r);
	if (rc == SO_ENOTFOUND) {
		reply_error(c, 404, "not_found", "no such request");
		if (!c->chat_user[0])
			return SO_OK;
		/* a chat click on a request that does not exist: audited and explained too */
		const char *why = "there is no such request (any more)";
		rc = so_audit_append(s, "review.refused", NULL, c->caller->id,
		                     json_pack("{s:s, s:s, s:s, s:s, s:s}", "channel", c->channel,
		                               "chat_user", c->chat_user, "code", "not_found", "reason",
		                               why, "request", c->id),
		                     now);
		return rc ? rc : so_notify_ephemeral(c->srv->notifier, s, c->channel, c->chat_where,
		                                   c->chat_user, why, now);
	}
	if (rc)
		return rc;
	enum so_status before = r->status;
	size_t nreviews = r->nreviews;
	int refused = c->apply(c, r, now, &e, &event, &data);
	if (refused && r->status == SO_ST_EXPIRED && before != SO_ST_EXPIRED)
		event = "request.expired"; /* the refusal found it out of time: record that */
	if (event) {
		if ((rc = s->ops->request_update(s, r, nreviews)) ||
		    (rc = so_audit_append(s, event, r->id, refused ? NULL : c->caller->id, data, now)) ||
		    (rc = so_notify_request(c->srv->notifier, s, r, event, now))) {
			data = NULL;
			goto out;
		}
		data = NULL;
		if (r->status == SO_ST_APPROVED && before == SO_ST_PENDING &&
		    (rc = anomaly_after_approval(c->srv, s, r)))
			goto out;
		if (r->status != before) {
			c->changed = 1;
			c->transition = (int)r->status;
			if (r->status == SO_ST_APPROVED || r->status == SO_ST_DENIED)
				c->decision_usec = (now - r->created_at) * 1000;
		}
	}
	if (refused && c->chat_user[0] && e.http) {
		/* A refused chat click: audited, and explained privately to the clicker. */
		if ((rc = so_audit_append(s, "review.refused", r->id, c->caller->id,
		                          json_pack("{s:s, s:s, s:s, s:s}", "channel", c->channel,
		                                    "chat_user", c->chat_user, "code", e.code, "reason",
		                                    e.message),
		                          now)) ||
		    (rc = so_notify_ephemeral(c->srv->notifier, s, c->channel, c->chat_where, c->chat_user,
		                            e.message, now)))
			goto out;
	}
	if (refused) {
		if (e.http)
			reply_core_err(c, &e);
		else
			reply_error(c, 500, "internal", "%s", so_strerror(refused));
	} else {
		reply_request(c, 200, r);
	}
out:
	json_decref(data);
	so_request_free(r);
	return rc;
}

static void
modify(struct conn *c, struct MHD_Connection *mc, apply_fn apply)
{
	c->apply = apply;
	run_op(c, mc, op_modify);
}

static int
check_fields(struct conn *c, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(c->in, key, v) {
		int ok = 0;
		for (int i = 0; allowed[i]; i++)
			ok |= !strcmp(key, allowed[i]);
		if (!ok) {
			reply_error(c, 400, "bad_request", "unknown field '%s'", key);
			return -1;
		}
	}
	return 0;
}

static int
optional_text(struct conn *c, const char *key, size_t max)
{
	json_t *v = json_object_get(c->in, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		reply_error(c, 400, "bad_request", "'%s' must be a string", key);
		return -1;
	}
	if (json_string_length(v) > max) {
		reply_error(c, 400, "too_long", "'%s' is longer than %zu bytes", key, max);
		return -1;
	}
	return 0;
}

void
review_request(struct conn *c, struct MHD_Connection *mc)
{
	modify(c, mc, apply_review);
}

void
h_review(struct conn *c, struct MHD_Connection *mc)
{
	static const char *const fields[] = {"decision", "comment", NULL};
	if (parse_body(c) || check_fields(c, fields) || optional_text(c, "comment", COMMENT_MAX))
		return;
	const char *d = json_string_value(json_object_get(c->in, "decision"));
	if (!d || (strcmp(d, "approve") && strcmp(d, "deny"))) {
		reply_error(c, 400, "bad_request", "'decision' must be \"approve\" or \"deny\"");
		return;
	}
	modify(c, mc, apply_review);
}

void
h_cancel(struct conn *c, struct MHD_Connection *mc)
{
	static const char *const fields[] = {"reason", NULL};
	if (c->body.len && (parse_body(c) || check_fields(c, fields) ||
	                    optional_text(c, "reason", COMMENT_MAX)))
		return;
	modify(c, mc, apply_cancel);
}

void
h_claim(struct conn *c, struct MHD_Connection *mc)
{
	static const char *const fields[] = {"digest", NULL};
	if (parse_body(c) || check_fields(c, fields))
		return;
	if (!json_is_string(json_object_get(c->in, "digest"))) {
		reply_error(c, 400, "bad_request", "'digest' (the action's SHA-256, hex) is required");
		return;
	}
	modify(c, mc, apply_claim);
}

void
h_result(struct conn *c, struct MHD_Connection *mc)
{
	static const char *const fields[] = {"exit_code", "detail", NULL};
	if (parse_body(c) || check_fields(c, fields) || optional_text(c, "detail", DETAIL_MAX))
		return;
	json_t *code = json_object_get(c->in, "exit_code");
	if (!json_is_integer(code) || json_integer_value(code) < -255 ||
	    json_integer_value(code) > 255) {
		reply_error(c, 400, "bad_request", "'exit_code' must be an integer from -255 to 255");
		return;
	}
	modify(c, mc, apply_result);
}

/* ---- the sweeper's op: expire what is due ---- */

struct sweep {
	so_server_t *srv;
	so_notifier_t *notifier;
	char (*ids)[SO_ID_LEN + 1];
	size_t n;
	unsigned char *changed;
};

static int
op_sweep(so_store_t *s, void *arg)
{
	struct sweep *sw = arg;
	int64_t now = so_clock_now_ms();
	for (size_t i = 0; i < sw->n; i++) {
		so_request_t *r = NULL;
		int rc = s->ops->request_get(s, sw->ids[i], &r);
		if (rc == SO_ENOTFOUND)
			continue;
		if (rc)
			return rc;
		enum so_status before = r->status;
		int escalated = 0;
		if (so_core_expire(r, now)) {
			json_t *data = json_pack("{s:s}", "from", so_status_name(before));
			if ((rc = s->ops->request_update(s, r, r->nreviews)) ||
			    (rc = so_audit_append(s, "request.expired", r->id, NULL, data, now)) ||
			    (rc = so_notify_request(sw->notifier, s, r, "request.expired", now)) ||
			    (rc = cluster_announce(sw->srv, s, r->id, SO_ST_EXPIRED))) {
				so_request_free(r);
				return rc;
			}
			sw->changed[i] = 1;
		} else if ((escalated = so_core_escalate(r, now))) {
			json_t *groups = json_array();
			for (size_t k = 0; k < r->decision.nreqs; k++)
				if (r->decision.reqs[k].escalated && r->decision.reqs[k].escalate_group)
					json_array_append_new(groups, json_string(r->decision.reqs[k].escalate_group));
			if ((rc = s->ops->request_update(s, r, r->nreviews)) ||
			    (rc = so_audit_append(s, "request.escalated", r->id, NULL,
			                          json_pack("{s:o}", "groups", groups), now)) ||
			    (rc = so_notify_request(sw->notifier, s, r, "request.escalated", now)) ||
			    (rc = cluster_announce(sw->srv, s, r->id, SO_ST_PENDING))) {
				so_request_free(r);
				return rc;
			}
			sw->changed[i] = 2;
		}
		so_request_free(r);
	}
	return SO_OK;
}

void
sweep_due(so_server_t *srv)
{
	struct sweep sw = {.srv = srv, .notifier = srv->notifier};
	so_store_t *s = readers_take(&srv->readers);
	int rc = s->ops->request_due(s, so_clock_now_ms(), 500, &sw.ids, &sw.n);
	readers_give(&srv->readers, s);
	if (rc || !sw.n) {
		free(sw.ids);
		return;
	}
	sw.changed = calloc(sw.n, 1);
	if (sw.changed && so_writer_run(srv->writer, op_sweep, &sw) == SO_OK) {
		for (size_t i = 0; i < sw.n; i++) {
			if (sw.changed[i] == 1) {
				atomic_fetch_add(&so_metrics.transitions[SO_ST_EXPIRED], 1);
				waiters_wake(srv->waiters, sw.ids[i]);
				events_publish(srv->events, sw.ids[i], "expired");
			} else if (sw.changed[i] == 2) {
				events_publish(srv->events, sw.ids[i], "pending"); /* escalated */
			}
		}
		so_notifier_kick(srv->notifier);
		so_debug("expired %zu requests", sw.n);
	}
	free(sw.changed);
	free(sw.ids);
}
