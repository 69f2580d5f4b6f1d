#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "policy/policy.h"

static json_t *
requirement_json(const so_requirement_t *q)
{
	json_t *o = json_object();
	if (q->group)
		json_object_set_new(o, "group", json_string(q->group));
	if (q->principals) {
		json_t *l = json_array();
		for (char **p = q->principals; *p; p++)
			json_array_append_new(l, json_string(*p));
		json_object_set_new(o, "principals", l);
	}
	json_object_set_new(o, "count", json_integer(q->count));
	return o;
}

int
so_policy_seal(so_policy_t *p)
{
	json_t *reqs = json_array();
	for (size_t i = 0; i < p->napprovers; i++)
		json_array_append_new(reqs, requirement_json(&p->approvers[i]));
	json_t *o = json_pack("{s:s, s:o, s:I, s:I, s:b}", "default",
	                      so_outcome_name((enum so_outcome)p->def), "approvers", reqs, "ttl",
	                      (json_int_t)p->ttl, "grant_ttl", (json_int_t)p->grant_ttl,
	                      "owner_may_approve", (int)p->owner_may_approve);
	if (!o)
		return SO_ENOMEM;
	char hex[65];
	int rc = so_json_digest(o, hex);
	json_decref(o);
	if (rc == SO_OK)
		snprintf(p->version, sizeof(p->version), "sha256:%s", hex);
	return rc;
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

int
so_policy_decide(const so_policy_t *p, const so_request_t *r, so_decision_t *out)
{
	(void)r;
	memset(out, 0, sizeof(*out));
	out->outcome = (enum so_outcome)p->def;
	out->ttl = p->ttl;
	out->grant_ttl = p->grant_ttl;
	out->owner_may_approve = (int)p->owner_may_approve;
	out->policy_version = strdup(p->version);
	const char *reason = out->outcome == SO_OUT_ALLOW    ? "allowed by the default policy"
	                     : out->outcome == SO_OUT_DENY ? "denied by the default policy"
	                                                   : "the default policy asks for review";
	out->rules = json_pack("[{s:s, s:s, s:s}]", "name", "default", "decide",
	                       so_outcome_name(out->outcome), "reason", reason);
	if (!out->policy_version || !out->rules)
		goto nomem;
	if (out->outcome == SO_OUT_REVIEW && p->napprovers) {
		out->reqs = calloc(p->napprovers, sizeof(*out->reqs));
		if (!out->reqs)
			goto nomem;
		out->nreqs = p->napprovers;
		for (size_t i = 0; i < p->napprovers; i++) {
			const so_requirement_t *src = &p->approvers[i];
			so_requirement_t *dst = &out->reqs[i];
			dst->count = src->count;
			if (src->group && !(dst->group = strdup(src->group)))
				goto nomem;
			if (src->principals && !(dst->principals = copy_list(src->principals)))
				goto nomem;
		}
	}
	return SO_OK;
nomem:
	so_decision_clear(out);
	return SO_ENOMEM;
}

void
so_policy_free(so_policy_t *p)
{
	for (size_t i = 0; i < p->napprovers; i++) {
		free(p->approvers[i].group);
		if (p->approvers[i].principals)
			for (char **q = p->approvers[i].principals; *q; q++)
				free(*q);
		free(p->approvers[i].principals);
	}
	free(p->approvers);
	p->approvers = NULL;
	p->napprovers = 0;
}
