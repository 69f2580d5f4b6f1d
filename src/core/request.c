/* The request model: names, memory, and its JSON forms (API view and stored document). */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/json.h"
#include "core/core.h"

static const char *const status_names[SO_ST__COUNT] = {
	"pending", "approved", "denied", "expired", "cancelled", "claimed", "succeeded", "failed",
};

const char *
so_status_name(enum so_status s)
{
	return (unsigned)s < SO_ST__COUNT ? status_names[s] : "?";
}

int
so_status_parse(const char *name, enum so_status *s)
{
	for (int i = 0; i < SO_ST__COUNT; i++) {
		if (strcmp(name, status_names[i]) == 0) {
			*s = (enum so_status)i;
			return SO_OK;
		}
	}
	return SO_EINVAL;
}

int
so_status_terminal(enum so_status s)
{
	return s == SO_ST_DENIED || s == SO_ST_EXPIRED || s == SO_ST_CANCELLED ||
	       s == SO_ST_SUCCEEDED || s == SO_ST_FAILED;
}

const char *
so_outcome_name(enum so_outcome o)
{
	switch (o) {
	case SO_OUT_ALLOW: return "allow";
	case SO_OUT_REVIEW: return "review";
	case SO_OUT_DENY: return "deny";
	}
	return "?";
}

void
so_decision_clear(so_decision_t *d)
{
	free(d->policy_version);
	json_decref(d->rules);
	json_decref(d->route);
	for (size_t i = 0; i < d->nreqs; i++) {
		free(d->reqs[i].group);
		free(d->reqs[i].escalate_group);
		if (d->reqs[i].principals)
			for (char **p = d->reqs[i].principals; *p; p++)
				free(*p);
		free(d->reqs[i].principals);
	}
	free(d->reqs);
	memset(d, 0, sizeof(*d));
}

void
so_request_free(so_request_t *r)
{
	if (!r)
		return;
	free(r->requester);
	free(r->on_behalf_of);
	free(r->owner);
	json_decref(r->action);
	free(r->intent);
	json_decref(r->context);
	so_decision_clear(&r->decision);
	json_decref(r->anomaly);
	for (size_t i = 0; i < r->nreviews; i++) {
		free(r->reviews[i].reviewer);
		free(r->reviews[i].channel);
		free(r->reviews[i].comment);
	}
	free(r->reviews);
	free(r->idempotency_key);
	free(r->result_detail);
	free(r->doc_text);
	free(r);
}

int
so_request_add_review(so_request_t *r, const char *reviewer, enum so_verdict v,
                      const char *channel, const char *comment, int64_t at)
{
	so_review_t *rv = realloc(r->reviews, (r->nreviews + 1) * sizeof(*rv));
	if (!rv)
		return SO_ENOMEM;
	r->reviews = rv;
	so_review_t *n = &rv[r->nreviews];
	n->reviewer = strdup(reviewer);
	n->channel = strdup(channel ? channel : "api");
	n->comment = strdup(comment ? comment : "");
	n->verdict = v;
	n->at = at;
	if (!n->reviewer || !n->channel || !n->comment) {
		free(n->reviewer);
		free(n->channel);
		free(n->comment);
		return SO_ENOMEM;
	}
	r->nreviews++;
	return SO_OK;
}

static json_t *
time_json(int64_t ms)
{
	char buf[40];
	if (!ms)
		return json_null();
	so_clock_format(ms, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *
so_review_to_json(const so_review_t *rv)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o}", "reviewer", rv->reviewer, "decision",
	                 rv->verdict == SO_APPROVE ? "approve" : "deny", "channel", rv->channel,
	                 "comment", rv->comment, "at", time_json(rv->at));
}

/* One requirement; the API view (dir != NULL) adds who has approved toward it. */
static json_t *
requirement_json(const so_directory_t *dir, const so_request_t *r, const so_requirement_t *q)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	if (q->group)
		json_object_set_new(o, "group", json_string(q->group));
	if (q->principals) {
		json_t *list = json_array();
		for (char **p = q->principals; *p; p++)
			json_array_append_new(list, json_string(*p));
		json_object_set_new(o, "principals", list);
	}
	json_object_set_new(o, "count", json_integer(q->count));
	if (q->escalate_group) {
		json_t *esc = json_pack("{s:s, s:b}", "to_group", q->escalate_group, "escalated",
		                        q->escalated);
		json_object_set_new(esc, "at", dir ? time_json(q->escalate_at)
		                                   : json_integer(q->escalate_at));
		json_object_set_new(o, "escalation", esc);
	}
	if (!dir)
		return o;
	json_t *by = json_array();
	for (size_t i = 0; i < r->nreviews; i++) {
		const so_review_t *rv = &r->reviews[i];
		const so_principal_t *p = so_directory_find(dir, rv->reviewer);
		if (rv->verdict == SO_APPROVE && p && so_core_eligible_for(q, p))
			json_array_append_new(by, json_string(p->id));
	}
	json_object_set_new(o, "approved_by", by);
	return o;
}

static json_t *
decision_json(const so_directory_t *dir, const so_request_t *r, int stored)
{
	const so_decision_t *d = &r->decision;
	json_t *o = json_object();
	json_t *reqs = json_array();
	for (size_t i = 0; i < d->nreqs; i++)
		json_array_append_new(reqs, requirement_json(stored ? NULL : dir, r, &d->reqs[i]));
	json_object_set_new(o, "outcome", json_string(so_outcome_name(d->outcome)));
	json_object_set_new(o, "policy_version", str_or_null(d->policy_version));
	json_object_set_new(o, "rules", d->rules ? json_incref(d->rules) : json_array());
	json_object_set_new(o, "requirements", reqs);
	json_object_set_new(o, "owner_may_approve", json_boolean(d->owner_may_approve));
	json_object_set_new(o, "route", d->route ? json_incref(d->route) : json_array());
	if (stored) {
		json_object_set_new(o, "ttl", json_integer(d->ttl));
		json_object_set_new(o, "grant_ttl", json_integer(d->grant_ttl));
	}
	return o;
}

static json_t *
common_json(const so_request_t *r)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "status", json_string(so_status_name(r->status)));
	json_object_set_new(o, "requester", json_string(r->requester));
	json_object_set_new(o, "on_behalf_of", str_or_null(r->on_behalf_of));
	json_object_set(o, "action", r->action);
	json_object_set_new(o, "intent", str_or_null(r->intent));
	json_object_set_new(o, "context", r->context ? json_incref(r->context) : json_object());
	json_object_set_new(o, "digest", json_string(r->digest));
	/* The score is a real number in the API whatever form storage gave it. */
	json_t *score = r->anomaly ? json_object_get(r->anomaly, "score") : NULL;
	json_t *reasons = r->anomaly ? json_object_get(r->anomaly, "reasons") : NULL;
	json_object_set_new(o, "anomaly",
	                    json_pack("{s:f, s:o}", "score", score ? json_number_value(score) : 0.0,
	                              "reasons", reasons ? json_incref(reasons) : json_array()));
	return o;
}

json_t *
so_request_to_json(const so_directory_t *dir, const so_request_t *r)
{
	json_t *o = common_json(r);
	if (!o)
		return NULL;
	json_object_set_new(o, "decision", decision_json(dir, r, 0));
	json_t *reviews = json_array();
	for (size_t i = 0; i < r->nreviews; i++)
		json_array_append_new(reviews, so_review_to_json(&r->reviews[i]));
	json_object_set_new(o, "reviews", reviews);
	json_object_set_new(o, "created_at", time_json(r->created_at));
	json_object_set_new(o, "expires_at", time_json(r->expires_at));
	json_object_set_new(o, "decided_at", time_json(r->decided_at));
	json_object_set_new(o, "grant_expires_at", time_json(r->grant_expires_at));
	json_object_set_new(o, "claimed_at", time_json(r->claimed_at));
	json_object_set_new(o, "finished_at", time_json(r->finished_at));
	json_object_set_new(o, "result", r->has_result ? json_pack("{s:I, s:s}", "exit_code",
	                                                           (json_int_t)r->exit_code, "detail",
	                                                           r->result_detail ? r->result_detail : "")
	                                               : json_null());
	return o;
}

json_t *
so_request_to_doc(const so_request_t *r)
{
	json_t *o = common_json(r);
	if (!o)
		return NULL;
	json_object_set_new(o, "owner", str_or_null(r->owner));
	json_object_set_new(o, "decision", decision_json(NULL, r, 1));
	json_object_set_new(o, "idempotency_key", str_or_null(r->idempotency_key));
	json_object_set_new(o, "created_at", json_integer(r->created_at));
	json_object_set_new(o, "expires_at", json_integer(r->expires_at));
	json_object_set_new(o, "decided_at", json_integer(r->decided_at));
	json_object_set_new(o, "grant_expires_at", json_integer(r->grant_expires_at));
	json_object_set_new(o, "claimed_at", json_integer(r->claimed_at));
	json_object_set_new(o, "finished_at", json_integer(r->finished_at));
	if (r->has_result)
		json_object_set_new(o, "result", json_pack("{s:I, s:s}", "exit_code",
		                                           (json_int_t)r->exit_code, "detail",
		                                           r->result_detail ? r->result_detail : ""));
	return o;
}

static char *
dup_opt(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? strdup(s) : NULL;
}

static int64_t
int_of(const json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

static int
decision_from_doc(const json_t *d, so_decision_t *out)
{
	const char *outcome = json_string_value(json_object_get(d, "outcome"));
	if (!outcome)
		return SO_EINVAL;
	if (!strcmp(outcome, "allow"))
		out->outcome = SO_OUT_ALLOW;
	else if (!strcmp(outcome, "deny"))
		out->outcome = SO_OUT_DENY;
	else
		out->outcome = SO_OUT_REVIEW;
	out->policy_version = dup_opt(d, "policy_version");
	out->rules = json_incref(json_object_get(d, "rules"));
	out->route = json_incref(json_object_get(d, "route"));
	out->owner_may_approve = json_is_true(json_object_get(d, "owner_may_approve"));
	out->ttl = int_of(d, "ttl");
	out->grant_ttl = int_of(d, "grant_ttl");
	json_t *reqs = json_object_get(d, "requirements");
	size_t n = json_array_size(reqs);
	if (n) {
		out->reqs = calloc(n, sizeof(*out->reqs));
		if (!out->reqs)
			return SO_ENOMEM;
		out->nreqs = n;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *q = json_array_get(reqs, i);
		out->reqs[i].group = dup_opt(q, "group");
		out->reqs[i].count = int_of(q, "count");
		json_t *esc = json_object_get(q, "escalation");
		if (json_is_object(esc)) {
			out->reqs[i].escalate_group = dup_opt(esc, "to_group");
			out->reqs[i].escalate_at = int_of(esc, "at");
			out->reqs[i].escalated = json_is_true(json_object_get(esc, "escalated"));
		}
		json_t *pl = json_object_get(q, "principals");
		if (json_is_array(pl)) {
			size_t k = json_array_size(pl);
			out->reqs[i].principals = calloc(k + 1, sizeof(char *));
			if (!out->reqs[i].principals)
				return SO_ENOMEM;
			for (size_t j = 0; j < k; j++) {
				const char *id = json_string_value(json_array_get(pl, j));
				if (!id || !(out->reqs[i].principals[j] = strdup(id)))
					return id ? SO_ENOMEM : SO_EINVAL;
			}
		}
	}
	return SO_OK;
}

int
so_request_from_doc(const json_t *doc, so_request_t **out)
{
	so_request_t *r = calloc(1, sizeof(*r));
	if (!r)
		return SO_ENOMEM;
	const char *id = json_string_value(json_object_get(doc, "id"));
	const char *status = json_string_value(json_object_get(doc, "status"));
	const char *digest = json_string_value(json_object_get(doc, "digest"));
	const char *requester = json_string_value(json_object_get(doc, "requester"));
	if (!id || strlen(id) > SO_ID_LEN || !status || so_status_parse(status, &r->status) ||
	    !digest || strlen(digest) != 64 || !requester)
		goto bad;
	memcpy(r->id, id, strlen(id) + 1);
	memcpy(r->digest, digest, 65);
	r->requester = strdup(requester);
	r->on_behalf_of = dup_opt(doc, "on_behalf_of");
	r->owner = dup_opt(doc, "owner");
	r->action = json_incref(json_object_get(doc, "action"));
	r->intent = dup_opt(doc, "intent");
	r->context = json_incref(json_object_get(doc, "context"));
	r->anomaly = json_incref(json_object_get(doc, "anomaly"));
	r->idempotency_key = dup_opt(doc, "idempotency_key");
	r->created_at = int_of(doc, "created_at");
	r->expires_at = int_of(doc, "expires_at");
	r->decided_at = int_of(doc, "decided_at");
	r->grant_expires_at = int_of(doc, "grant_expires_at");
	r->claimed_at = int_of(doc, "claimed_at");
	r->finished_at = int_of(doc, "finished_at");
	json_t *result = json_object_get(doc, "result");
	if (json_is_object(result)) {
		r->has_result = 1;
		r->exit_code = int_of(result, "exit_code");
		r->result_detail = dup_opt(result, "detail");
	}
	if (!r->action || !r->requester || decision_from_doc(json_object_get(doc, "decision"), &r->decision))
		goto bad;
	*out = r;
	return SO_OK;
bad:
	so_request_free(r);
	return SO_EINVAL;
}

int
so_request_seal(so_request_t *r)
{
	json_t *doc = so_request_to_doc(r);
	char *text = doc ? so_json_canonical_str(doc) : NULL;
	json_decref(doc);
	if (!text)
		return SO_ENOMEM;
	free(r->doc_text);
	r->doc_text = text;
	return SO_OK;
}
