/*
 * A small fixed directory and hand-made policies for the core tests. Time is fixed (NOW), so
 * every rule is tested without a clock.
 */
#ifndef SO_TESTS_CORE_FIXTURE_H
#define SO_TESTS_CORE_FIXTURE_H

#include "unit.h"

#include "common/json.h"
#include "core/core.h"
#include "policy/policy.h"

#define NOW INT64_C(1795486200000) /* 2026-11-24T02:10:00Z */

static char *no_groups[] = {NULL};
static char *sre[] = {"sre", NULL};
static char *sre_dba[] = {"sre", "dba", NULL};
static char *dba[] = {"dba", NULL};
static char *admins[] = {"admins", NULL};
static char *auditors[] = {"auditors", NULL};

/* The directory every core test uses. Static memory: never so_directory_free() it. */
static so_principal_t fixture_people[] = {
	{.id = "deploy-bot", .kind = SO_KIND_AGENT, .owner = "alice", .groups = no_groups},
	{.id = "sre-bot", .kind = SO_KIND_AGENT, .owner = "bob", .groups = sre},
	{.id = "ci", .kind = SO_KIND_SERVICE, .groups = sre},
	{.id = "alice", .kind = SO_KIND_HUMAN, .groups = sre},
	{.id = "bob", .kind = SO_KIND_HUMAN, .groups = sre_dba},
	{.id = "carol", .kind = SO_KIND_HUMAN, .groups = sre},
	{.id = "dave", .kind = SO_KIND_HUMAN, .groups = dba},
	{.id = "erin", .kind = SO_KIND_HUMAN, .groups = no_groups},
	{.id = "root", .kind = SO_KIND_HUMAN, .groups = admins},
	{.id = "audrey", .kind = SO_KIND_HUMAN, .groups = auditors},
};
static const so_directory_t fixture_dir = {fixture_people,
                                           sizeof(fixture_people) / sizeof(fixture_people[0])};

static inline const so_principal_t *
who(const char *id)
{
	const so_principal_t *p = so_directory_find(&fixture_dir, id);
	if (!p)
		fail_msg("no principal '%s' in the fixture", id);
	return p;
}

static inline json_t *
json_of(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);
	if (!v)
		fail_msg("test JSON does not parse: %s: %s", text, jerr.text);
	return v;
}

/** A policy deciding `outcome`, needing each {group, count} in `reqs` (ends with group NULL). */
static inline void
policy_init(so_policy_t *p, enum so_outcome outcome, so_requirement_t *reqs, size_t nreqs,
            int owner_may_approve)
{
	/* The policy borrows the test's strings; fixture policies are never freed. */
	static so_approver_spec_t specs[8][16];
	static size_t next_slot;
	so_approver_spec_t *a = specs[next_slot++ % 8];
	assert_true(nreqs <= 16);
	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < nreqs; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].group = reqs[i].group;
		a[i].principals = reqs[i].principals;
		a[i].count = reqs[i].count;
	}
	p->def = (int)outcome;
	p->approvers = a;
	p->napprovers = nreqs;
	p->ttl = 1800;
	p->grant_ttl = 600;
	p->owner_may_approve = owner_may_approve;
	assert_int_equal(so_policy_seal(p), SO_OK);
}

/** Submit `body` as `requester` at NOW and apply the decision of `policy`. */
static inline so_request_t *
submit(const char *requester, const char *body, const so_policy_t *policy)
{
	static const unsigned char rnd[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	json_t *b = json_of(body);
	so_request_t *r = NULL;
	so_core_err_t err = {0};
	int rc = so_core_new_request(&fixture_dir, who(requester), b, NOW, rnd, &r, &err);
	if (rc != SO_OK)
		fail_msg("submit refused (%d %s): %s", rc, err.code ? err.code : "", err.message);
	so_decision_t d;
	assert_int_equal(so_policy_decide(policy, &fixture_dir, r, NOW, &d, &err), SO_OK);
	so_core_apply_decision(r, &d, so_core_requested_ttl(b), NOW);
	json_decref(b);
	return r;
}

#define SHELL_BODY                                                                         \
	"{\"action\":{\"kind\":\"shell\",\"command\":[\"kubectl\",\"rollout\",\"restart\","   \
	"\"deploy/api\"],\"resource\":\"deploy/api\",\"environment\":\"production\"},"          \
	"\"intent\":\"restart after INC-4411\"}"

#endif
