/*
 * A submission body as the API gets it: bounded parse, then so_core_new_request against a
 * small fixed directory, then a review-policy decision and the request's JSON forms.
 * Accepted requests must carry a digest equal to the digest of their action, and the
 * stored form must read back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "core/core.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *no_groups[] = {NULL};
static char *sre[] = {"sre", NULL};
static so_principal_t people[] = {
	{.id = "deploy-bot", .kind = SO_KIND_AGENT, .owner = "alice", .groups = no_groups},
	{.id = "ci", .kind = SO_KIND_SERVICE, .groups = no_groups},
	{.id = "alice", .kind = SO_KIND_HUMAN, .groups = sre},
	{.id = "bob", .kind = SO_KIND_HUMAN, .groups = sre},
};
static const so_directory_t dir = {people, sizeof(people) / sizeof(people[0])};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const so_json_limits_t lim = {.max_depth = 32, .max_string = 65536, .max_items = 1000};
	static const unsigned char rnd[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
	static so_approver_spec_t reqs[] = {{.group = "sre", .count = 1}};
	const int64_t now = INT64_C(1795486200000);
	json_t *body = NULL;
	char err[256];

	if (so_json_parse((const char *)data, size, &lim, &body, err, sizeof(err)) != SO_OK)
		return 0;
	so_policy_t pol = {.def = SO_OUT_REVIEW, .approvers = reqs, .napprovers = 1, .ttl = 1800,
	                   .grant_ttl = 600};
	so_policy_seal(&pol);
	/* The input's length picks the requester, so every kind of principal submits. */
	const so_principal_t *requester = &people[size % dir.n];
	so_request_t *r = NULL;
	so_core_err_t cerr = {0};
	int rc = so_core_new_request(&dir, requester, body, now, rnd, &r, &cerr);
	if (rc != SO_OK) {
		if (r || !cerr.code || cerr.http != 400)
			abort();
		json_decref(body);
		return 0;
	}
	char hex[65];
	if (so_json_digest(r->action, hex) != SO_OK || strcmp(hex, r->digest))
		abort();
	if (r->on_behalf_of) {
		const so_principal_t *obo = so_directory_find(&dir, r->on_behalf_of);
		if (!obo || obo->kind != SO_KIND_HUMAN)
			abort();
	}
	so_decision_t d;
	so_core_err_t perr = {0};
	if (so_policy_decide(&pol, &dir, r, now, &d, &perr) != SO_OK)
		abort();
	so_core_apply_decision(r, &d, so_core_requested_ttl(body), now);
	if (r->expires_at <= now || r->expires_at > now + 86400 * INT64_C(1000))
		abort();
	/* Nobody on the request's side of separation of duties may approve it. */
	so_core_err_t rerr = {0};
	if (so_core_review(&dir, r, requester, SO_APPROVE, "", "api", now, &rerr) == SO_OK)
		abort();
	json_t *view = so_request_to_json(&dir, r);
	json_t *doc = so_request_to_doc(r);
	so_request_t *back = NULL;
	if (!view || !doc || so_request_from_doc(doc, &back) != SO_OK ||
	    strcmp(back->digest, r->digest) || !json_equal(back->action, r->action))
		abort();
	so_request_free(back);
	json_decref(view);
	json_decref(doc);
	so_request_free(r);
	json_decref(body);
	return 0;
}
