/* Rules, their combination, and the decision with its trace. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "policy/policy.h"

static json_t *
spec_json(const so_approver_spec_t *a)
{
	json_t *o = json_object();
	if (a->group)
		json_object_set_new(o, "group", json_string(a->group));
	if (a->group_expr)
		json_object_set_new(o, "group_from", json_string(so_expr_text(a->group_expr)));
	if (a->principals) {
		json_t *l = json_array();
		for (char **p = a->principals; *p; p++)
			json_array_append_new(l, json_string(*p));
		json_object_set_new(o, "principals", l);
	}
	json_object_set_new(o, "count", json_integer(a->count));
	return o;
}

int
so_policy_seal(so_policy_t *p)
{
	json_t *reqs = json_array();
	for (size_t i = 0; i < p->napprovers; i++)
		json_array_append_new(reqs, spec_json(&p->approvers[i]));
	json_t *rules = json_array();
	for (size_t i = 0; i < p->nrules; i++) {
		const so_rule_t *r = &p->rules[i];
		json_array_append_new(rules, json_pack("{s:s, s:s, s:s}", "name", r->name, "when",
		                                       so_expr_text(r->when), "decide",
		                                       so_outcome_name((enum so_outcome)r->decide)));
	}
	json_t *o = json_pack("{s:s, s:o, s:I, s:I, s:b, s:o}", "default",
	                      so_outcome_name((enum so_outcome)p->def), "approvers", reqs, "ttl",
	                      (json_int_t)p->ttl, "grant_ttl", (json_int_t)p->grant_ttl,
	                      "owner_may_approve", (int)p->owner_may_approve, "rules", rules);
	if (!o)
		return SO_ENOMEM;
	char hex[65];
	int rc = so_json_digest(o, hex);
	json_decref(o);
	if (rc == SO_OK)
		snprintf(p->version, sizeof(p->version), "sha256:%s", hex);
	return rc;
}

void
so_policy_input(const so_policy_t *p, const so_directory_t *dir, const so_request_t *r,
                int64_t now, so_expr_input_t *in)
{
	memset(in, 0, sizeof(*in));
	in->request = r;
	in->requester = so_directory_find(dir, r->requester);
	in->owner = r->owner ? so_directory_find(dir, r->owner) : NULL;
	/* Local time: shift by the zone's offset, then read the civil fields. */
	int64_t secs = now / 1000;
	secs += so_tz_offset(&p->tz, secs);
	int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	int64_t sod = secs - days * 86400;
	in->hour = (int)(sod / 3600);
	in->minute = (int)(sod % 3600 / 60);
	in->weekday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
	if (r->anomaly) {
		json_t *score = json_object_get(r->anomaly, "score");
		in->anomaly_score = json_is_number(score) ? json_number_value(score) : 0;
		in->anomaly_reasons = json_object_get(r->anomaly, "reasons");
	}
}

static char **
copy_list(char **src)
{
	size_t n = 0;
	while (src[n])
		n++;
	char **dst = calloc(n + 1, sizeof(*dst));
	if (!dst)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!(dst[i] = strdup(src[i]))) {
			for (size_t j = 0; j < i; j++)
				free(dst[j]);
			free(dst);
			return NULL;
		}
	}
	return dst;
}

struct builder {
	so_decision_t *d;
	size_t cap;
};

/* Add the requirements of `specs` (a rule's or the default's) to the decision. */
static int
add_requirements(struct builder *b, const so_approver_spec_t *specs, size_t n,
                 const so_expr_input_t *in, const so_rule_t *rule, int64_t now,
                 const char **unresolved)
{
	so_decision_t *d = b->d;
	for (size_t i = 0; i < n; i++) {
		const so_approver_spec_t *a = &specs[i];
		if (d->nreqs == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 4;
			so_requirement_t *q = realloc(d->reqs, cap * sizeof(*q));
			if (!q)
				return SO_ENOMEM;
			d->reqs = q;
			b->cap = cap;
		}
		so_requirement_t *q = &d->reqs[d->nreqs];
		memset(q, 0, sizeof(*q));
		d->nreqs++;
		q->count = a->count;
		if (a->group && !(q->group = strdup(a->group)))
			return SO_ENOMEM;
		if (a->group_expr) {
			const char *s;
			size_t len;
			if (!so_expr_eval_string(a->group_expr, in, &s, &len) || !len) {
				*unresolved = so_expr_text(a->group_expr);
				return SO_OK;
			}
			if (!(q->group = strndup(s, len)))
				return SO_ENOMEM;
		}
		if (a->principals && !(q->principals = copy_list(a->principals)))
			return SO_ENOMEM;
		if (rule && rule->escalate_group) {
			if (!(q->escalate_group = strdup(rule->escalate_group)))
				return SO_ENOMEM;
			q->escalate_at = now + rule->escalate_after * 1000;
		}
	}
	return SO_OK;
}

static int
refuse_missing(so_core_err_t *refusal, const so_rule_t *rule, const char *path)
{
	refusal->http = 400;
	refusal->code = "missing_field";
	snprintf(refusal->message, sizeof(refusal->message),
	         "rule '%s' requires %s; say it in the request (for example with --why or "
	         "--context-file)", rule->name, path);
	return SO_EINVAL;
}

static json_t *
trace_entry(const so_rule_t *rule, enum so_tri t, const char *absent, size_t absent_len)
{
	json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "name", rule->name, "decide",
	                      so_outcome_name((enum so_outcome)rule->decide), "reason",
	                      rule->reason ? rule->reason : "", "when", so_expr_text(rule->when));
	if (t == SO_TRUE) {
		json_object_set_new(e, "matched", json_string("true"));
	} else {
		char why[256];
		snprintf(why, sizeof(why), "%.*s is absent; a %s rule applies when it cannot be decided",
		         absent ? (int)absent_len : 14, absent ? absent : "a field value",
		         so_outcome_name((enum so_outcome)rule->decide));
		json_object_set_new(e, "matched", json_string("unknown"));
		json_object_set_new(e, "why", json_string(why));
	}
	return e;
}

int
so_policy_decide(const so_policy_t *p, const so_directory_t *dir, const so_request_t *r,
                 int64_t now, so_decision_t *out, so_core_err_t *refusal)
{
	so_expr_input_t in;
	struct builder b = {.d = out};
	const char *unresolved = NULL;
	int rc = SO_OK, outcome = -1, owner_ok = 1;
	int64_t ttl = 0;
	unsigned char small[256], *matched = NULL;

	memset(out, 0, sizeof(*out));
	so_policy_input(p, dir, r, now, &in);
	out->policy_version = strdup(p->version);
	out->rules = json_array();
	out->route = json_array();
	if (!out->policy_version || !out->rules || !out->route)
		goto nomem;

	/* Which rules match, and the strongest decision among them. The answers are kept for
	 * the review pass below, so no rule is evaluated twice. */
	const so_rule_t *matched_require = NULL;
	const char *kind = json_string_value(json_object_get(r->action, "kind"));
	matched = p->nrules <= sizeof(small) ? small : calloc(p->nrules, 1);
	if (!matched)
		goto nomem;
	for (size_t i = 0; i < p->nrules; i++) {
		const so_rule_t *rule = &p->rules[i];
		const char *absent;
		size_t absent_len;
		enum so_tri t = SO_FALSE;
		if (so_expr_kind_possible(rule->when, kind))
			t = so_expr_eval(rule->when, &in, &absent, &absent_len);
		matched[i] = (unsigned char)t;
		if (t == SO_FALSE || (t == SO_UNKNOWN && rule->decide == SO_OUT_ALLOW))
			continue;
		json_array_append_new(out->rules, trace_entry(rule, t, absent, absent_len));
		if (rule->decide > outcome)
			outcome = rule->decide;
		for (size_t k = 0; k < rule->nrequire && !matched_require; k++)
			if (!so_expr_present(rule->require[k], &in))
				matched_require = rule;
	}
	if (outcome < 0) {
		outcome = p->def;
		const char *reason = outcome == SO_OUT_ALLOW    ? "no rule matched; the default allows"
		                     : outcome == SO_OUT_DENY ? "no rule matched; the default denies"
		                                              : "no rule matched; the default asks for review";
		json_array_append_new(out->rules, json_pack("{s:s, s:s, s:s, s:s}", "name", "default",
		                                            "decide", so_outcome_name(outcome),
		                                            "reason", reason, "matched", "default"));
	}
	if (outcome == SO_OUT_ALLOW && p->anomaly_threshold_pct > 0 &&
	    in.anomaly_score * 100.0 >= (double)p->anomaly_threshold_pct - 1e-9) {
		/* Unusual for this principal: people look at it first, told why. */
		const char *first = json_string_value(json_array_get(in.anomaly_reasons, 0));
		char reason[400], test[64];
		snprintf(reason, sizeof(reason), "unusual for %s: %s", r->requester,
		         first ? first : "its anomaly score is high");
		reason[so_utf8_prefix(reason, strlen(reason))] = '\0';
		snprintf(test, sizeof(test), "anomaly.score >= %.2f",
		         (double)p->anomaly_threshold_pct / 100.0);
		json_array_append_new(out->rules, json_pack("{s:s, s:s, s:s, s:s}", "name", "anomaly",
		                                            "decide", "review", "reason", reason,
		                                            "matched", test));
		outcome = SO_OUT_REVIEW;
	}
	out->outcome = (enum so_outcome)outcome;
	out->grant_ttl = p->grant_ttl;
	if (outcome != SO_OUT_DENY && matched_require) {
		for (size_t k = 0; k < matched_require->nrequire; k++) {
			if (!so_expr_present(matched_require->require[k], &in)) {
				rc = refuse_missing(refusal, matched_require,
				                    so_expr_text(matched_require->require[k]));
				goto fail;
			}
		}
	}
	if (outcome != SO_OUT_REVIEW) {
		out->ttl = p->ttl;
		goto done;
	}

	/* Review: the requirements of every matching review rule, or the default's. */
	int any_rule = 0;
	for (size_t i = 0; i < p->nrules && !unresolved; i++) {
		const so_rule_t *rule = &p->rules[i];
		if (rule->decide != SO_OUT_REVIEW || matched[i] == SO_FALSE)
			continue;
		any_rule = 1;
		if (rule->napprovers)
			rc = add_requirements(&b, rule->approvers, rule->napprovers, &in, rule, now,
			                      &unresolved);
		else
			rc = add_requirements(&b, p->approvers, p->napprovers, &in, rule, now, &unresolved);
		if (rc)
			goto nomem;
		if (rule->ttl && (!ttl || rule->ttl < ttl))
			ttl = rule->ttl;
		int oma = rule->owner_may_approve >= 0 ? (int)rule->owner_may_approve
		                                       : (int)p->owner_may_approve;
		owner_ok &= oma;
		if (rule->route)
			json_array_append(out->route, rule->route);
	}
	if (!any_rule) {
		if ((rc = add_requirements(&b, p->approvers, p->napprovers, &in, NULL, now, &unresolved)))
			goto nomem;
		owner_ok = (int)p->owner_may_approve;
	}
	if (unresolved) {
		/* Nobody can be asked: fail closed, and say why. */
		for (size_t i = 0; i < out->nreqs; i++) {
			free(out->reqs[i].group);
			free(out->reqs[i].escalate_group);
			if (out->reqs[i].principals)
				for (char **q = out->reqs[i].principals; *q; q++)
					free(*q);
			free(out->reqs[i].principals);
		}
		free(out->reqs);
		out->reqs = NULL;
		out->nreqs = 0;
		out->outcome = SO_OUT_DENY;
		char why[256];
		snprintf(why, sizeof(why), "no approver group: %s is absent for this request", unresolved);
		json_array_append_new(out->rules, json_pack("{s:s, s:s, s:s, s:s}", "name",
		                                            "unresolved-approvers", "decide", "deny",
		                                            "reason", why, "matched", "true"));
		out->ttl = p->ttl;
		goto done;
	}
	out->ttl = ttl ? ttl : p->ttl;
	out->owner_may_approve = owner_ok;
done:
	if (matched != small)
		free(matched);
	return SO_OK;
nomem:
	rc = SO_ENOMEM;
fail:
	if (matched && matched != small)
		free(matched);
	so_decision_clear(out);
	return rc;
}

void
so_approver_spec_free(so_approver_spec_t *a)
{
	free(a->group);
	so_expr_free(a->group_expr);
	if (a->principals)
		for (char **q = a->principals; *q; q++)
			free(*q);
	free(a->principals);
	memset(a, 0, sizeof(*a));
}

void
so_rule_free(so_rule_t *rule)
{
	free(rule->name);
	so_expr_free(rule->when);
	free(rule->reason);
	for (size_t i = 0; i < rule->napprovers; i++)
		so_approver_spec_free(&rule->approvers[i]);
	free(rule->approvers);
	free(rule->escalate_group);
	json_decref(rule->route);
	for (size_t i = 0; i < rule->nrequire; i++)
		so_expr_free(rule->require[i]);
	free(rule->require);
	memset(rule, 0, sizeof(*rule));
}

void
so_policy_free(so_policy_t *p)
{
	so_tz_free(&p->tz);
	for (size_t i = 0; i < p->napprovers; i++)
		so_approver_spec_free(&p->approvers[i]);
	free(p->approvers);
	p->approvers = NULL;
	p->napprovers = 0;
	for (size_t i = 0; i < p->nrules; i++)
		so_rule_free(&p->rules[i]);
	free(p->rules);
	p->rules = NULL;
	p->nrules = 0;
}
