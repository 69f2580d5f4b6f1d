/* The state machine and separation of duties. Every refusal names its API error code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "core/core.h"

static int
refuse(so_core_err_t *err, int http, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
refuse(so_core_err_t *err, int http, const char *code, const char *fmt, ...)
{
	va_list ap;
	err->http = http;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return http == 400 ? SO_EINVAL : http == 409 ? SO_ECONFLICT : SO_EDENIED;
}

void
so_core_make_id(int64_t now, const unsigned char rnd[10], char out[SO_ID_LEN + 1])
{
	static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint64_t t = (uint64_t)now;
	memcpy(out, "req_", 4);
	/* 48 bits of time in 10 characters (the top 2 bits are zero). */
	for (int i = 9; i >= 0; i--) {
		out[4 + i] = b32[t & 31];
		t >>= 5;
	}
	/* 80 random bits in 16 characters. */
	uint64_t hi = 0, lo = 0;
	for (int i = 0; i < 5; i++) {
		hi = (hi << 8) | rnd[i];
		lo = (lo << 8) | rnd[5 + i];
	}
	for (int i = 7; i >= 0; i--) {
		out[14 + i] = b32[hi & 31];
		hi >>= 5;
		out[22 + i] = b32[lo & 31];
		lo >>= 5;
	}
	out[SO_ID_LEN] = '\0';
}

static int
optional_string(const json_t *body, const char *key, char **out, size_t max, so_core_err_t *err)
{
	json_t *v = json_object_get(body, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return SO_OK;
	if (!json_is_string(v))
		return refuse(err, 400, "bad_request", "'%s' must be a string", key);
	if (max && json_string_length(v) > max)
		return refuse(err, 400, "too_long", "'%s' is longer than %zu bytes", key, max);
	*out = strdup(json_string_value(v));
	return *out ? SO_OK : SO_ENOMEM;
}

static int
validate_action(const json_t *action, so_core_err_t *err)
{
	const char *key;
	json_t *v;
	size_t i;

	if (!json_is_object(action))
		return refuse(err, 400, "bad_request", "'action' must be an object");
	if (!json_is_string(json_object_get(action, "kind")) ||
	    !json_string_length(json_object_get(action, "kind")))
		return refuse(err, 400, "bad_request", "'action.kind' must be a non-empty string");
	json_object_foreach((json_t *)action, key, v) {
		if (!strcmp(key, "command")) {
			if (!json_is_array(v) || !json_array_size(v))
				return refuse(err, 400, "bad_request",
				              "'action.command' must be a non-empty list of strings");
			json_t *arg;
			json_array_foreach(v, i, arg) {
				if (!json_is_string(arg))
					return refuse(err, 400, "bad_request",
					              "'action.command[%zu]' must be a string", i);
			}
		} else if (!strcmp(key, "arguments") || !strcmp(key, "context")) {
			if (!json_is_object(v))
				return refuse(err, 400, "bad_request", "'action.%s' must be an object", key);
		} else if (!strcmp(key, "tool") || !strcmp(key, "resource") ||
		           !strcmp(key, "environment")) {
			if (!json_is_string(v))
				return refuse(err, 400, "bad_request", "'action.%s' must be a string", key);
		}
	}
	return SO_OK;
}

int64_t
so_core_requested_ttl(const json_t *body)
{
	return (int64_t)json_integer_value(json_object_get(body, "ttl_seconds"));
}

int
so_core_new_request(const so_directory_t *dir, const so_principal_t *requester,
                    const json_t *body, int64_t now, const unsigned char rnd[10],
                    so_request_t **out, so_core_err_t *err)
{
	static const char *const known[] = {"action", "intent", "context", "on_behalf_of",
	                                    "ttl_seconds", "idempotency_key", NULL};
	const char *key;
	json_t *v;
	int rc;

	*out = NULL;
	if (!json_is_object(body))
		return refuse(err, 400, "bad_request", "the body must be a JSON object");
	json_object_foreach((json_t *)body, key, v) {
		int ok = 0;
		for (int i = 0; known[i]; i++)
			ok |= !strcmp(key, known[i]);
		if (!ok)
			return refuse(err, 400, "bad_request", "unknown field '%s'", key);
	}
	json_t *action = json_object_get(body, "action");
	if (!action)
		return refuse(err, 400, "bad_request", "'action' is required");
	if ((rc = validate_action(action, err)))
		return rc;
	json_t *context = json_object_get(body, "context");
	if (context && !json_is_object(context) && !json_is_null(context))
		return refuse(err, 400, "bad_request", "'context' must be an object");
	json_t *ttl = json_object_get(body, "ttl_seconds");
	if (ttl && !json_is_null(ttl) &&
	    (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
	     json_integer_value(ttl) > SO_MAX_TTL_SECONDS))
		return refuse(err, 400, "bad_request", "'ttl_seconds' must be an integer in 1..%d",
		              SO_MAX_TTL_SECONDS);

	so_request_t *r = calloc(1, sizeof(*r));
	if (!r)
		return SO_ENOMEM;
	if ((rc = optional_string(body, "intent", &r->intent, 0, err)) ||
	    (rc = optional_string(body, "on_behalf_of", &r->on_behalf_of, 0, err)) ||
	    (rc = optional_string(body, "idempotency_key", &r->idempotency_key,
	                          SO_MAX_IDEMPOTENCY_KEY, err)))
		goto fail;
	if (r->on_behalf_of) {
		const so_principal_t *obo = so_directory_find(dir, r->on_behalf_of);
		if (!obo || obo->kind != SO_KIND_HUMAN) {
			rc = refuse(err, 400, "bad_request", "'on_behalf_of' must name a configured human");
			goto fail;
		}
	} else if (requester->kind == SO_KIND_AGENT && requester->owner) {
		/* An agent works for its owner unless it says otherwise. */
		r->on_behalf_of = strdup(requester->owner);
	}
	r->requester = strdup(requester->id);
	r->owner = requester->owner ? strdup(requester->owner) : NULL;
	r->action = json_deep_copy(action);
	r->context = context && json_is_object(context) ? json_deep_copy(context) : json_object();
	r->anomaly = json_pack("{s:f, s:[]}", "score", 0.0, "reasons");
	if (!r->requester || !r->action || !r->context || !r->anomaly ||
	    (requester->owner && !r->owner)) {
		rc = SO_ENOMEM;
		goto fail;
	}
	if ((rc = so_json_digest(r->action, r->digest)))
		goto fail;
	so_core_make_id(now, rnd, r->id);
	r->status = SO_ST_PENDING;
	r->created_at = now;
	*out = r;
	return SO_OK;
fail:
	so_request_free(r);
	return rc;
}

void
so_core_apply_decision(so_request_t *r, so_decision_t *d, int64_t ttl_override, int64_t now)
{
	so_decision_clear(&r->decision);
	r->decision = *d;
	memset(d, 0, sizeof(*d));
	/* A requester may ask for less time than policy gives, never more. */
	int64_t ttl = ttl_override > 0 && ttl_override < r->decision.ttl ? ttl_override : r->decision.ttl;
	r->expires_at = now + ttl * 1000;
	switch (r->decision.outcome) {
	case SO_OUT_ALLOW:
		r->status = SO_ST_APPROVED;
		r->decided_at = now;
		r->grant_expires_at = now + r->decision.grant_ttl * 1000;
		break;
	case SO_OUT_DENY:
		r->status = SO_ST_DENIED;
		r->decided_at = now;
		break;
	case SO_OUT_REVIEW:
		r->status = SO_ST_PENDING;
		break;
	}
}

int
so_core_is_self(const so_request_t *r, const so_principal_t *p)
{
	if (!strcmp(p->id, r->requester))
		return 1;
	int is_owner = r->owner && !strcmp(p->id, r->owner);
	if (is_owner)
		return !r->decision.owner_may_approve;
	if (r->on_behalf_of && !strcmp(p->id, r->on_behalf_of))
		return 1;
	return 0;
}

int
so_core_eligible_for(const so_requirement_t *q, const so_principal_t *p)
{
	if (q->group && so_principal_in_group(p, q->group))
		return 1;
	if (q->escalated && q->escalate_group && so_principal_in_group(p, q->escalate_group))
		return 1;
	if (q->principals)
		for (char **pp = q->principals; *pp; pp++)
			if (!strcmp(*pp, p->id))
				return 1;
	return 0;
}

int
so_core_eligible(const so_request_t *r, const so_principal_t *p)
{
	for (size_t i = 0; i < r->decision.nreqs; i++)
		if (so_core_eligible_for(&r->decision.reqs[i], p))
			return 1;
	return 0;
}

/*
 * Quorum as a flow problem: each distinct approving human can fill one seat of one
 * requirement they are eligible for. Requirements are met when every seat is filled.
 * Sizes are tiny (a few requirements, a few approvers), so simple augmenting paths do.
 */
#define QUORUM_MAX_APPROVERS 64
#define QUORUM_MAX_REQS 16

struct quorum {
	size_t na, nq;
	unsigned char elig[QUORUM_MAX_APPROVERS][QUORUM_MAX_REQS];
	int assigned[QUORUM_MAX_APPROVERS]; /* requirement index or -1 */
	int64_t need[QUORUM_MAX_REQS];
	int64_t filled[QUORUM_MAX_REQS];
};

static int
augment(struct quorum *q, size_t a, unsigned char *seen)
{
	for (size_t k = 0; k < q->nq; k++) {
		if (!q->elig[a][k] || seen[k])
			continue;
		seen[k] = 1;
		if (q->filled[k] < q->need[k]) {
			q->filled[k]++;
			q->assigned[a] = (int)k;
			return 1;
		}
		/* Seat full: try to move one of its holders elsewhere. */
		for (size_t b = 0; b < q->na; b++) {
			if (q->assigned[b] == (int)k && augment(q, b, seen)) {
				q->assigned[a] = (int)k;
				return 1;
			}
		}
	}
	return 0;
}

int
so_core_quorum_met(const so_directory_t *dir, const so_request_t *r)
{
	struct quorum q;
	memset(&q, 0, sizeof(q));
	q.nq = r->decision.nreqs < QUORUM_MAX_REQS ? r->decision.nreqs : QUORUM_MAX_REQS;
	if (r->decision.nreqs > QUORUM_MAX_REQS)
		return 0; /* fail closed on a policy we cannot evaluate */
	int64_t total = 0;
	for (size_t k = 0; k < q.nq; k++) {
		q.need[k] = r->decision.reqs[k].count;
		total += q.need[k];
	}
	for (size_t i = 0; i < r->nreviews && q.na < QUORUM_MAX_APPROVERS; i++) {
		const so_review_t *rv = &r->reviews[i];
		const so_principal_t *p = so_directory_find(dir, rv->reviewer);
		if (rv->verdict != SO_APPROVE || !p || p->kind != SO_KIND_HUMAN || so_core_is_self(r, p))
			continue;
		/* Reviews are one per human (enforced at review time and by the store). */
		for (size_t k = 0; k < q.nq; k++)
			q.elig[q.na][k] = (unsigned char)so_core_eligible_for(&r->decision.reqs[k], p);
		q.assigned[q.na] = -1;
		q.na++;
	}
	int64_t seated = 0;
	for (size_t a = 0; a < q.na; a++) {
		unsigned char seen[QUORUM_MAX_REQS] = {0};
		seated += augment(&q, a, seen);
	}
	return seated >= total;
}

static int
check_open(so_request_t *r, int64_t now, so_core_err_t *err)
{
	if (so_core_expire(r, now) || r->status != SO_ST_PENDING)
		return refuse(err, 409, "not_pending", "request %s is %s, not pending", r->id,
		              so_status_name(r->status));
	return SO_OK;
}

/** Why `reviewer` may not review `r` now (`open`: still pending and in time), or SO_OK. */
static int
review_refusal(const so_request_t *r, const so_principal_t *reviewer, int open,
               so_core_err_t *err)
{
	if (reviewer->kind != SO_KIND_HUMAN)
		return refuse(err, 403, "agent_cannot_review", "%s is an %s; only humans review",
		              reviewer->id, so_kind_name(reviewer->kind));
	if (so_core_is_self(r, reviewer)) {
		const char *why = !strcmp(reviewer->id, r->requester) ? "you made this request"
		                  : r->owner && !strcmp(reviewer->id, r->owner)
		                      ? "you own the agent that made this request"
		                      : "this request was made on your behalf";
		return refuse(err, 403, "self_approval", "%s", why);
	}
	if (!open)
		return refuse(err, 409, "not_pending", "request %s is %s, not pending", r->id,
		              so_status_name(r->status));
	if (!so_core_eligible(r, reviewer))
		return refuse(err, 403, "not_eligible", "%s is not among the approvers this request needs",
		              reviewer->id);
	for (size_t i = 0; i < r->nreviews; i++)
		if (!strcmp(r->reviews[i].reviewer, reviewer->id))
			return refuse(err, 409, "already_reviewed", "%s has already reviewed this request",
			              reviewer->id);
	return SO_OK;
}

int
so_core_may_review(const so_request_t *r, const so_principal_t *reviewer, int64_t now,
                   so_core_err_t *err)
{
	return review_refusal(r, reviewer, r->status == SO_ST_PENDING && now < r->expires_at, err);
}

int
so_core_review(const so_directory_t *dir, so_request_t *r, const so_principal_t *reviewer,
               enum so_verdict verdict, const char *comment, const char *channel, int64_t now,
               so_core_err_t *err)
{
	int open = !so_core_expire(r, now) && r->status == SO_ST_PENDING;
	int rc;

	if ((rc = review_refusal(r, reviewer, open, err)))
		return rc;
	if ((rc = so_request_add_review(r, reviewer->id, verdict, channel, comment, now)))
		return rc;
	if (verdict == SO_DENY) {
		r->status = SO_ST_DENIED;
		r->decided_at = now;
	} else if (so_core_quorum_met(dir, r)) {
		r->status = SO_ST_APPROVED;
		r->decided_at = now;
		r->grant_expires_at = now + r->decision.grant_ttl * 1000;
	}
	return SO_OK;
}

static int
check_requester(const so_request_t *r, const so_principal_t *caller, const char *what,
                so_core_err_t *err)
{
	if (strcmp(caller->id, r->requester))
		return refuse(err, 403, "forbidden", "only the requester may %s this request", what);
	return SO_OK;
}

int
so_core_cancel(so_request_t *r, const so_principal_t *caller, int64_t now, so_core_err_t *err)
{
	int rc;
	if ((rc = check_requester(r, caller, "cancel", err)) || (rc = check_open(r, now, err)))
		return rc;
	r->status = SO_ST_CANCELLED;
	r->decided_at = now;
	return SO_OK;
}

int
so_core_claim(so_request_t *r, const so_principal_t *caller, const char *digest, int64_t now,
              so_core_err_t *err)
{
	int rc;
	if ((rc = check_requester(r, caller, "claim", err)))
		return rc;
	if ((r->status == SO_ST_APPROVED && so_core_expire(r, now)) ||
	    (r->status == SO_ST_EXPIRED && r->grant_expires_at && now >= r->grant_expires_at))
		return refuse(err, 409, "grant_expired", "the approval was not claimed in time");
	if (r->status == SO_ST_CLAIMED || r->status == SO_ST_SUCCEEDED || r->status == SO_ST_FAILED)
		return refuse(err, 409, "already_claimed", "request %s was already claimed", r->id);
	if (r->status != SO_ST_APPROVED) {
		so_core_expire(r, now);
		return refuse(err, 409, "not_approved", "request %s is %s", r->id,
		              so_status_name(r->status));
	}
	if (!digest || strlen(digest) != 64 || strcmp(digest, r->digest))
		return refuse(err, 409, "digest_mismatch",
		              "the approval is for another action (digest %.12s...)", r->digest);
	r->status = SO_ST_CLAIMED;
	r->claimed_at = now;
	return SO_OK;
}

int
so_core_result(so_request_t *r, const so_principal_t *caller, int64_t exit_code,
               const char *detail, int64_t now, so_core_err_t *err)
{
	int rc;
	if ((rc = check_requester(r, caller, "report on", err)))
		return rc;
	if (r->status != SO_ST_CLAIMED)
		return refuse(err, 409, "not_claimed", "request %s is %s, not claimed", r->id,
		              so_status_name(r->status));
	char *d = strdup(detail ? detail : "");
	if (!d)
		return SO_ENOMEM;
	free(r->result_detail);
	r->result_detail = d;
	r->has_result = 1;
	r->exit_code = exit_code;
	r->status = exit_code == 0 ? SO_ST_SUCCEEDED : SO_ST_FAILED;
	r->finished_at = now;
	return SO_OK;
}

int
so_core_expire(so_request_t *r, int64_t now)
{
	if (r->status == SO_ST_PENDING && now >= r->expires_at) {
		r->status = SO_ST_EXPIRED;
		r->decided_at = now;
		return 1;
	}
	if (r->status == SO_ST_APPROVED && r->grant_expires_at && now >= r->grant_expires_at) {
		r->status = SO_ST_EXPIRED;
		return 1;
	}
	return 0;
}

int
so_core_may_view(const so_request_t *r, const so_principal_t *p, const char *admin_group,
                 const char *auditor_group)
{
	if (!strcmp(p->id, r->requester) || (r->on_behalf_of && !strcmp(p->id, r->on_behalf_of)) ||
	    (r->owner && !strcmp(p->id, r->owner)))
		return 1;
	if (so_principal_in_group(p, admin_group) || so_principal_in_group(p, auditor_group))
		return 1;
	return p->kind == SO_KIND_HUMAN && so_core_eligible(r, p);
}

int
so_core_escalate(so_request_t *r, int64_t now)
{
	int n = 0;
	if (r->status != SO_ST_PENDING)
		return 0;
	for (size_t i = 0; i < r->decision.nreqs; i++) {
		so_requirement_t *q = &r->decision.reqs[i];
		if (q->escalate_group && !q->escalated && q->escalate_at && now >= q->escalate_at) {
			q->escalated = 1;
			n++;
		}
	}
	return n;
}

int64_t
so_core_next_escalation(const so_request_t *r)
{
	int64_t next = 0;
	if (r->status != SO_ST_PENDING)
		return 0;
	for (size_t i = 0; i < r->decision.nreqs; i++) {
		const so_requirement_t *q = &r->decision.reqs[i];
		if (q->escalate_group && !q->escalated && q->escalate_at &&
		    (!next || q->escalate_at < next))
			next = q->escalate_at;
	}
	return next;
}
