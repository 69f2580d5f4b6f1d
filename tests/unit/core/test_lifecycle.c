/*
 * The state machine and separation of duties, attacked one invariant at a time
 * (DESIGN.md: no self-approval, distinct humans, eligibility, terminal states, one claim).
 */
#include "core/fixture.h"

#define DIGEST "878d1277dba27291616c9a4e98225455e611e872a20b99c509081d28924a8507"
#define EXPIRES (NOW + 1800 * 1000)
#define LATER (NOW + 60 * 1000)

static so_requirement_t sre1[] = {{.group = "sre", .count = 1}};
static so_requirement_t sre2[] = {{.group = "sre", .count = 2}};
static so_requirement_t sre1_dba1[] = {{.group = "sre", .count = 1}, {.group = "dba", .count = 1}};

static int
review(so_request_t *r, const char *reviewer, enum so_verdict v, so_core_err_t *err)
{
	memset(err, 0, sizeof(*err));
	return so_core_review(&fixture_dir, r, who(reviewer), v, "lgtm", "api", LATER, err);
}

static void
assert_review_refused(so_request_t *r, const char *reviewer, enum so_verdict v, int http,
                      const char *code)
{
	so_core_err_t err;
	enum so_status before = r->status;
	size_t nreviews = r->nreviews;
	int rc = review(r, reviewer, v, &err);
	if (rc == SO_OK)
		fail_msg("%s's review was accepted; expected %s", reviewer, code);
	assert_int_equal(rc, http == 409 ? SO_ECONFLICT : SO_EDENIED);
	assert_int_equal(err.http, http);
	if (!err.code || strcmp(err.code, code))
		fail_msg("%s's review refused with %s (%s), not %s", reviewer,
		         err.code ? err.code : "(null)", err.message, code);
	assert_int_equal(r->nreviews, nreviews);
	if (r->status != before && !(before == SO_ST_PENDING && r->status == SO_ST_EXPIRED))
		fail_msg("refused review moved %s to %s", so_status_name(before),
		         so_status_name(r->status));
}

static void
assert_review_ok(so_request_t *r, const char *reviewer, enum so_verdict v)
{
	so_core_err_t err;
	int rc = review(r, reviewer, v, &err);
	if (rc != SO_OK)
		fail_msg("%s's review refused: %s (%s)", reviewer, err.code ? err.code : "?", err.message);
}

static so_request_t *
pending(const char *requester, const char *body, so_requirement_t *reqs, size_t nreqs,
        int owner_may_approve)
{
	so_policy_t pol;
	policy_init(&pol, SO_OUT_REVIEW, reqs, nreqs, owner_may_approve);
	so_request_t *r = submit(requester, body, &pol);
	assert_int_equal(r->status, SO_ST_PENDING);
	return r;
}

/* An approved shell request by deploy-bot (alice's agent), approved by carol. */
static so_request_t *
approved(void)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1, 1, 0);
	assert_review_ok(r, "carol", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_APPROVED);
	return r;
}

/* ---- decisions ---- */

static void
test_policy_allow_approves_at_once_with_a_grant(void **state)
{
	so_policy_t pol;
	policy_init(&pol, SO_OUT_ALLOW, NULL, 0, 0);
	so_request_t *r = submit("deploy-bot", SHELL_BODY, &pol);
	assert_int_equal(r->status, SO_ST_APPROVED);
	assert_int_equal(r->decided_at, NOW);
	assert_int_equal(r->grant_expires_at, NOW + 600 * 1000);
	assert_string_equal(r->decision.policy_version, pol.version);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r->decision.rules, 0),
	                                                      "decide")),
	                    "allow");
	so_request_free(r);
}

static void
test_policy_deny_denies_at_once(void **state)
{
	so_policy_t pol;
	policy_init(&pol, SO_OUT_DENY, NULL, 0, 0);
	so_request_t *r = submit("deploy-bot", SHELL_BODY, &pol);
	assert_int_equal(r->status, SO_ST_DENIED);
	assert_int_equal(r->decided_at, NOW);
	assert_int_equal(r->grant_expires_at, 0);
	so_core_err_t err = {0};
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, LATER, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "not_approved");
	so_request_free(r);
}

static void
test_review_sets_expiry_from_policy_or_requested_ttl(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1, 1, 0);
	assert_int_equal(r->expires_at, EXPIRES);
	so_request_free(r);
	r = pending("deploy-bot", "{\"action\":{\"kind\":\"x\"},\"ttl_seconds\":60}", sre1, 1, 0);
	assert_int_equal(r->expires_at, NOW + 60 * 1000);
	so_request_free(r);
}

/* ---- invariant 1: no self-approval; agents never review ---- */

static void
test_agent_cannot_review_even_in_the_group(void **state)
{
	so_request_t *r = pending("ci", SHELL_BODY, sre1, 1, 0);
	assert_review_refused(r, "sre-bot", SO_APPROVE, 403, "agent_cannot_review");
	assert_review_refused(r, "sre-bot", SO_DENY, 403, "agent_cannot_review");
	so_request_free(r);
}

static void
test_service_cannot_review(void **state)
{
	so_request_t *r = pending("alice", SHELL_BODY, sre1, 1, 0);
	assert_review_refused(r, "ci", SO_APPROVE, 403, "agent_cannot_review");
	so_request_free(r);
}

static void
test_requester_cannot_review_own_request(void **state)
{
	so_request_t *r = pending("alice", SHELL_BODY, sre1, 1, 0);
	assert_review_refused(r, "alice", SO_APPROVE, 403, "self_approval");
	assert_int_equal(r->status, SO_ST_PENDING);
	so_request_free(r);
}

static void
test_on_behalf_of_cannot_review(void **state)
{
	so_request_t *r = pending("ci", "{\"action\":{\"kind\":\"x\"},\"on_behalf_of\":\"bob\"}",
	                          sre1, 1, 0);
	assert_review_refused(r, "bob", SO_APPROVE, 403, "self_approval");
	assert_review_ok(r, "carol", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
}

static void
test_owner_cannot_review_agents_request(void **state)
{
	/* deploy-bot works for alice by default */
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1, 1, 0);
	assert_review_refused(r, "alice", SO_APPROVE, 403, "self_approval");
	so_request_free(r);
	/* ...and when it says it works for carol, alice is still its owner */
	r = pending("deploy-bot", "{\"action\":{\"kind\":\"x\"},\"on_behalf_of\":\"carol\"}", sre1, 1, 0);
	assert_review_refused(r, "alice", SO_APPROVE, 403, "self_approval");
	assert_review_refused(r, "carol", SO_APPROVE, 403, "self_approval");
	so_request_free(r);
}

static void
test_owner_may_approve_when_the_rule_says_so(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1, 1, 1);
	assert_review_ok(r, "alice", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
}

static void
test_owner_may_approve_still_counts_as_one_person(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre2, 1, 1);
	assert_review_ok(r, "alice", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_false(so_core_quorum_met(&fixture_dir, r));
	/* a second click by the owner, on any channel, is refused and changes nothing */
	so_core_err_t err = {0};
	assert_int_equal(so_core_review(&fixture_dir, r, who("alice"), SO_APPROVE, "", "slack", LATER,
	                                &err),
	                 SO_ECONFLICT);
	assert_string_equal(err.code, "already_reviewed");
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_review_ok(r, "bob", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
}

static void
test_owner_may_approve_does_not_open_it_to_the_requester(void **state)
{
	/* The opening is for the owner of an agent, never for the one who asked. */
	so_request_t *r = pending("alice", SHELL_BODY, sre1, 1, 1);
	assert_review_refused(r, "alice", SO_APPROVE, 403, "self_approval");
	so_request_free(r);
	r = pending("ci", "{\"action\":{\"kind\":\"x\"},\"on_behalf_of\":\"bob\"}", sre1, 1, 1);
	assert_review_refused(r, "bob", SO_APPROVE, 403, "self_approval");
	so_request_free(r);
}

static void
test_is_self_names_requester_owner_and_on_behalf_of(void **state)
{
	so_request_t *r = pending("deploy-bot", "{\"action\":{\"kind\":\"x\"},\"on_behalf_of\":\"carol\"}",
	                          sre1, 1, 0);
	assert_true(so_core_is_self(r, who("deploy-bot")));
	assert_true(so_core_is_self(r, who("alice")));
	assert_true(so_core_is_self(r, who("carol")));
	assert_false(so_core_is_self(r, who("bob")));
	so_request_free(r);
}

/* ---- invariant 3: eligibility ---- */

static void
test_ineligible_human_is_refused(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1, 1, 0);
	assert_review_refused(r, "erin", SO_APPROVE, 403, "not_eligible");
	assert_review_refused(r, "dave", SO_APPROVE, 403, "not_eligible");
	/* an ineligible deny is refused too: it must not deny the request */
	assert_review_refused(r, "erin", SO_DENY, 403, "not_eligible");
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_false(so_core_eligible(r, who("erin")));
	assert_true(so_core_eligible(r, who("bob")));
	so_request_free(r);
}

static void
test_named_principals_are_eligible(void **state)
{
	static char *only_dave[] = {"dave", NULL};
	so_requirement_t reqs[] = {{.principals = only_dave, .count = 1}};
	so_request_t *r = pending("deploy-bot", SHELL_BODY, reqs, 1, 0);
	assert_review_refused(r, "bob", SO_APPROVE, 403, "not_eligible");
	assert_review_ok(r, "dave", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
}

/* ---- invariant 2: quorum counts distinct humans ---- */

static void
test_same_human_twice_is_already_reviewed(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre2, 1, 0);
	assert_review_ok(r, "bob", SO_APPROVE);
	assert_review_refused(r, "bob", SO_APPROVE, 409, "already_reviewed");
	/* the same person through another channel is still the same person */
	so_core_err_t err = {0};
	assert_int_equal(so_core_review(&fixture_dir, r, who("bob"), SO_APPROVE, "", "slack", LATER,
	                                &err),
	                 SO_ECONFLICT);
	assert_string_equal(err.code, "already_reviewed");
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_int_equal(r->nreviews, 1);
	so_request_free(r);
}

static void
test_two_distinct_humans_meet_a_two_person_rule(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre2, 1, 0);
	assert_review_ok(r, "bob", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_int_equal(r->decided_at, 0);
	assert_review_ok(r, "carol", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_APPROVED);
	assert_int_equal(r->decided_at, LATER);
	assert_int_equal(r->grant_expires_at, LATER + 600 * 1000);
	assert_int_equal(r->nreviews, 2);
	assert_string_equal(r->reviews[1].reviewer, "carol");
	assert_string_equal(r->reviews[1].channel, "api");
	assert_string_equal(r->reviews[1].comment, "lgtm");
	assert_int_equal(r->reviews[1].at, LATER);
	so_request_free(r);
}

static void
test_one_human_in_two_groups_does_not_meet_two_requirements(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1_dba1, 2, 0);
	assert_review_ok(r, "bob", SO_APPROVE); /* in sre and dba */
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_false(so_core_quorum_met(&fixture_dir, r));
	assert_review_refused(r, "bob", SO_APPROVE, 409, "already_reviewed");
	assert_review_ok(r, "dave", SO_APPROVE); /* dba only */
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
}

static void
test_quorum_reseats_a_two_group_human(void **state)
{
	/* bob first takes the sre seat; carol (sre only) arrives: bob must move to dba. */
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1_dba1, 2, 0);
	assert_review_ok(r, "bob", SO_APPROVE);
	assert_review_ok(r, "carol", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
}

static void
test_two_humans_in_one_group_do_not_meet_another_groups_requirement(void **state)
{
	so_request_t *r = pending("ci", SHELL_BODY, sre1_dba1, 2, 0);
	assert_review_ok(r, "carol", SO_APPROVE);
	assert_review_ok(r, "alice", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_review_ok(r, "dave", SO_APPROVE);
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
}

static void
test_quorum_ignores_approvals_that_were_never_allowed(void **state)
{
	/* Reviews injected past so_core_review (say, from a tampered store) do not count. */
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre2, 1, 0);
	assert_int_equal(so_request_add_review(r, "alice", SO_APPROVE, "api", "", LATER), SO_OK);
	assert_int_equal(so_request_add_review(r, "sre-bot", SO_APPROVE, "api", "", LATER), SO_OK);
	assert_int_equal(so_request_add_review(r, "mallory", SO_APPROVE, "api", "", LATER), SO_OK);
	assert_int_equal(so_request_add_review(r, "deploy-bot", SO_APPROVE, "api", "", LATER), SO_OK);
	assert_int_equal(so_request_add_review(r, "carol", SO_APPROVE, "api", "", LATER), SO_OK);
	assert_false(so_core_quorum_met(&fixture_dir, r));
	so_request_free(r);
}

/* ---- deny, expiry ---- */

static void
test_any_eligible_deny_denies_and_is_final(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre2, 1, 0);
	assert_review_ok(r, "bob", SO_APPROVE);
	assert_review_ok(r, "carol", SO_DENY);
	assert_int_equal(r->status, SO_ST_DENIED);
	assert_int_equal(r->decided_at, LATER);
	assert_review_refused(r, "alice", SO_APPROVE, 403, "self_approval");
	assert_review_refused(r, "dave", SO_APPROVE, 409, "not_pending");
	so_request_free(r);

	r = pending("deploy-bot", SHELL_BODY, sre2, 1, 0);
	assert_review_ok(r, "carol", SO_DENY);
	assert_review_refused(r, "bob", SO_APPROVE, 409, "not_pending");
	assert_int_equal(r->status, SO_ST_DENIED);
	so_request_free(r);
}

static void
test_pending_request_expires_at_expires_at(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1, 1, 0);
	assert_int_equal(so_core_expire(r, EXPIRES - 1), 0);
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_int_equal(so_core_expire(r, EXPIRES), 1);
	assert_int_equal(r->status, SO_ST_EXPIRED);
	assert_int_equal(r->decided_at, EXPIRES);
	assert_int_equal(so_core_expire(r, EXPIRES + 1), 0);
	so_request_free(r);
}

static void
test_review_at_expiry_is_not_pending_and_expires(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1, 1, 0);
	so_core_err_t err = {0};
	assert_int_equal(so_core_review(&fixture_dir, r, who("bob"), SO_APPROVE, "", "api", EXPIRES,
	                                &err),
	                 SO_ECONFLICT);
	assert_string_equal(err.code, "not_pending");
	assert_int_equal(r->status, SO_ST_EXPIRED);
	assert_int_equal(r->nreviews, 0);
	so_request_free(r);
}

/* ---- claim, result, cancel ---- */

static void
test_claim_by_someone_else_is_forbidden(void **state)
{
	so_request_t *r = approved();
	so_core_err_t err = {0};
	assert_int_equal(so_core_claim(r, who("alice"), DIGEST, LATER, &err), SO_EDENIED);
	assert_int_equal(err.http, 403);
	assert_string_equal(err.code, "forbidden");
	assert_int_equal(so_core_claim(r, who("carol"), DIGEST, LATER, &err), SO_EDENIED);
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
}

static void
test_claim_with_another_digest_is_digest_mismatch(void **state)
{
	so_request_t *r = approved();
	so_core_err_t err = {0};
	char other[65];
	memcpy(other, DIGEST, 65);
	other[63] = other[63] == '0' ? '1' : '0';
	assert_int_equal(so_core_claim(r, who("deploy-bot"), other, LATER, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "digest_mismatch");
	assert_int_equal(err.http, 409);
	assert_int_equal(so_core_claim(r, who("deploy-bot"), "", LATER, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "digest_mismatch");
	assert_int_equal(so_core_claim(r, who("deploy-bot"), NULL, LATER, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "digest_mismatch");
	/* a prefix of the right digest is not the digest */
	assert_int_equal(so_core_claim(r, who("deploy-bot"), "878d1277", LATER, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "digest_mismatch");
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
}

static void
test_claim_succeeds_once_then_already_claimed(void **state)
{
	so_request_t *r = approved();
	so_core_err_t err = {0};
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, LATER + 1, &err), SO_OK);
	assert_int_equal(r->status, SO_ST_CLAIMED);
	assert_int_equal(r->claimed_at, LATER + 1);
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, LATER + 2, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "already_claimed");
	assert_int_equal(r->claimed_at, LATER + 1);
	so_request_free(r);
}

static void
test_claim_after_grant_expiry_is_grant_expired(void **state)
{
	so_request_t *r = approved();
	so_core_err_t err = {0};
	int64_t grant = r->grant_expires_at;
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, grant, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "grant_expired");
	assert_int_equal(r->status, SO_ST_EXPIRED);
	/* and it stays so */
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, grant - 1, &err), SO_ECONFLICT);
	assert_int_equal(r->status, SO_ST_EXPIRED);
	so_request_free(r);
}

static void
test_claim_just_before_grant_expiry_works(void **state)
{
	so_request_t *r = approved();
	so_core_err_t err = {0};
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, r->grant_expires_at - 1, &err),
	                 SO_OK);
	so_request_free(r);
}

static void
test_claim_before_approval_is_not_approved(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre2, 1, 0);
	so_core_err_t err = {0};
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, LATER, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "not_approved");
	assert_review_ok(r, "bob", SO_APPROVE); /* one of two */
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, LATER, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "not_approved");
	assert_int_equal(r->status, SO_ST_PENDING);
	so_request_free(r);
}

static void
test_result_only_after_claim(void **state)
{
	so_request_t *r = approved();
	so_core_err_t err = {0};
	assert_int_equal(so_core_result(r, who("deploy-bot"), 0, "ok", LATER, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "not_claimed");
	assert_int_equal(r->status, SO_ST_APPROVED);
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, LATER, &err), SO_OK);
	assert_int_equal(so_core_result(r, who("bob"), 0, "ok", LATER, &err), SO_EDENIED);
	assert_string_equal(err.code, "forbidden");
	assert_int_equal(so_core_result(r, who("deploy-bot"), 0, "restarted", LATER + 5, &err), SO_OK);
	assert_int_equal(r->status, SO_ST_SUCCEEDED);
	assert_true(r->has_result);
	assert_int_equal(r->exit_code, 0);
	assert_string_equal(r->result_detail, "restarted");
	assert_int_equal(r->finished_at, LATER + 5);
	/* a second report does not rewrite history */
	assert_int_equal(so_core_result(r, who("deploy-bot"), 1, "oops", LATER + 6, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "not_claimed");
	assert_int_equal(r->exit_code, 0);
	assert_int_equal(r->status, SO_ST_SUCCEEDED);
	so_request_free(r);
}

static void
test_nonzero_exit_code_fails(void **state)
{
	so_request_t *r = approved();
	so_core_err_t err = {0};
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, LATER, &err), SO_OK);
	assert_int_equal(so_core_result(r, who("deploy-bot"), 3, NULL, LATER, &err), SO_OK);
	assert_int_equal(r->status, SO_ST_FAILED);
	assert_int_equal(r->exit_code, 3);
	assert_string_equal(r->result_detail, "");
	so_request_free(r);
}

static void
test_cancel_only_by_requester_and_only_pending(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1, 1, 0);
	so_core_err_t err = {0};
	assert_int_equal(so_core_cancel(r, who("alice"), LATER, &err), SO_EDENIED);
	assert_string_equal(err.code, "forbidden");
	assert_int_equal(so_core_cancel(r, who("bob"), LATER, &err), SO_EDENIED);
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_int_equal(so_core_cancel(r, who("deploy-bot"), LATER, &err), SO_OK);
	assert_int_equal(r->status, SO_ST_CANCELLED);
	assert_int_equal(r->decided_at, LATER);
	assert_int_equal(so_core_cancel(r, who("deploy-bot"), LATER, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "not_pending");
	so_request_free(r);

	r = approved();
	assert_int_equal(so_core_cancel(r, who("deploy-bot"), LATER, &err), SO_ECONFLICT);
	assert_string_equal(err.code, "not_pending");
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
}

/* ---- terminal states never change ---- */

static void
assert_frozen(so_request_t *r)
{
	enum so_status st = r->status;
	assert_true(so_status_terminal(st));
	so_core_err_t err = {0};
	int64_t t = EXPIRES + 3600 * 1000; /* past every deadline */
	assert_int_not_equal(so_core_review(&fixture_dir, r, who("bob"), SO_APPROVE, "", "api", LATER, &err), SO_OK);
	assert_int_not_equal(so_core_review(&fixture_dir, r, who("carol"), SO_DENY, "", "api", LATER, &err), SO_OK);
	assert_int_not_equal(so_core_cancel(r, who("deploy-bot"), LATER, &err), SO_OK);
	assert_int_not_equal(so_core_claim(r, who("deploy-bot"), DIGEST, LATER, &err), SO_OK);
	assert_int_not_equal(so_core_result(r, who("deploy-bot"), 0, "", LATER, &err), SO_OK);
	assert_int_equal(so_core_expire(r, t), 0);
	assert_int_not_equal(so_core_claim(r, who("deploy-bot"), DIGEST, t, &err), SO_OK);
	if (r->status != st)
		fail_msg("terminal %s became %s", so_status_name(st), so_status_name(r->status));
}

static void
test_terminal_states_never_change(void **state)
{
	so_core_err_t err = {0};
	so_request_t *r;

	r = pending("deploy-bot", SHELL_BODY, sre1, 1, 0); /* denied */
	assert_review_ok(r, "carol", SO_DENY);
	assert_frozen(r);
	so_request_free(r);

	r = pending("deploy-bot", SHELL_BODY, sre1, 1, 0); /* cancelled */
	assert_int_equal(so_core_cancel(r, who("deploy-bot"), LATER, &err), SO_OK);
	assert_frozen(r);
	so_request_free(r);

	r = pending("deploy-bot", SHELL_BODY, sre1, 1, 0); /* expired while pending */
	assert_int_equal(so_core_expire(r, EXPIRES), 1);
	assert_frozen(r);
	so_request_free(r);

	r = approved(); /* expired grant */
	assert_int_equal(so_core_expire(r, r->grant_expires_at), 1);
	assert_frozen(r);
	so_request_free(r);

	r = approved(); /* succeeded */
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, LATER, &err), SO_OK);
	assert_int_equal(so_core_result(r, who("deploy-bot"), 0, "", LATER, &err), SO_OK);
	assert_frozen(r);
	so_request_free(r);

	r = approved(); /* failed */
	assert_int_equal(so_core_claim(r, who("deploy-bot"), DIGEST, LATER, &err), SO_OK);
	assert_int_equal(so_core_result(r, who("deploy-bot"), 2, "", LATER, &err), SO_OK);
	assert_frozen(r);
	so_request_free(r);
}

static void
test_status_names_round_trip(void **state)
{
	for (int s = 0; s < SO_ST__COUNT; s++) {
		enum so_status back;
		assert_int_equal(so_status_parse(so_status_name((enum so_status)s), &back), SO_OK);
		assert_int_equal(back, s);
	}
	enum so_status x;
	assert_int_equal(so_status_parse("approve", &x), SO_EINVAL);
	assert_false(so_status_terminal(SO_ST_PENDING));
	assert_false(so_status_terminal(SO_ST_APPROVED));
	assert_false(so_status_terminal(SO_ST_CLAIMED));
}

/* ---- who may see ---- */

static void
test_may_view_rules(void **state)
{
	so_request_t *r = pending("deploy-bot", "{\"action\":{\"kind\":\"x\"},\"on_behalf_of\":\"dave\"}",
	                          sre1, 1, 0);
	assert_true(so_core_may_view(r, who("deploy-bot"), "admins", "auditors")); /* requester */
	assert_true(so_core_may_view(r, who("dave"), "admins", "auditors"));       /* on behalf of */
	assert_true(so_core_may_view(r, who("alice"), "admins", "auditors"));      /* owner */
	assert_true(so_core_may_view(r, who("carol"), "admins", "auditors"));      /* may review */
	assert_true(so_core_may_view(r, who("root"), "admins", "auditors"));       /* admin */
	assert_true(so_core_may_view(r, who("audrey"), "admins", "auditors"));     /* auditor */
	assert_false(so_core_may_view(r, who("erin"), "admins", "auditors"));      /* nobody */
	assert_false(so_core_may_view(r, who("sre-bot"), "admins", "auditors"));   /* agent in group */
	assert_false(so_core_may_view(r, who("ci"), "admins", "auditors"));        /* service in group */
	/* group names come from configuration */
	assert_false(so_core_may_view(r, who("root"), "ops", "auditors"));
	so_request_free(r);
}

static void
test_api_view_lists_who_approved_each_requirement(void **state)
{
	so_request_t *r = pending("deploy-bot", SHELL_BODY, sre1_dba1, 2, 0);
	assert_review_ok(r, "carol", SO_APPROVE);
	json_t *j = so_request_to_json(&fixture_dir, r);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
	assert_string_equal(json_string_value(json_object_get(j, "digest")), DIGEST);
	assert_string_equal(json_string_value(json_object_get(j, "created_at")),
	                    "2026-11-24T02:10:00.000Z");
	assert_true(json_is_null(json_object_get(j, "claimed_at")));
	json_t *reqs = json_object_get(json_object_get(j, "decision"), "requirements");
	assert_int_equal(json_array_size(reqs), 2);
	json_t *by = json_object_get(json_array_get(reqs, 0), "approved_by");
	assert_int_equal(json_array_size(by), 1);
	assert_string_equal(json_string_value(json_array_get(by, 0)), "carol");
	assert_int_equal(json_array_size(json_object_get(json_array_get(reqs, 1), "approved_by")), 0);
	json_t *rv = json_array_get(json_object_get(j, "reviews"), 0);
	assert_string_equal(json_string_value(json_object_get(rv, "decision")), "approve");
	json_decref(j);
	so_request_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_allow_approves_at_once_with_a_grant),
		cmocka_unit_test(test_policy_deny_denies_at_once),
		cmocka_unit_test(test_review_sets_expiry_from_policy_or_requested_ttl),
		cmocka_unit_test(test_agent_cannot_review_even_in_the_group),
		cmocka_unit_test(test_service_cannot_review),
		cmocka_unit_test(test_requester_cannot_review_own_request),
		cmocka_unit_test(test_on_behalf_of_cannot_review),
		cmocka_unit_test(test_owner_cannot_review_agents_request),
		cmocka_unit_test(test_owner_may_approve_when_the_rule_says_so),
		cmocka_unit_test(test_owner_may_approve_still_counts_as_one_person),
		cmocka_unit_test(test_owner_may_approve_does_not_open_it_to_the_requester),
		cmocka_unit_test(test_is_self_names_requester_owner_and_on_behalf_of),
		cmocka_unit_test(test_ineligible_human_is_refused),
		cmocka_unit_test(test_named_principals_are_eligible),
		cmocka_unit_test(test_same_human_twice_is_already_reviewed),
		cmocka_unit_test(test_two_distinct_humans_meet_a_two_person_rule),
		cmocka_unit_test(test_one_human_in_two_groups_does_not_meet_two_requirements),
		cmocka_unit_test(test_quorum_reseats_a_two_group_human),
		cmocka_unit_test(test_two_humans_in_one_group_do_not_meet_another_groups_requirement),
		cmocka_unit_test(test_quorum_ignores_approvals_that_were_never_allowed),
		cmocka_unit_test(test_any_eligible_deny_denies_and_is_final),
		cmocka_unit_test(test_pending_request_expires_at_expires_at),
		cmocka_unit_test(test_review_at_expiry_is_not_pending_and_expires),
		cmocka_unit_test(test_claim_by_someone_else_is_forbidden),
		cmocka_unit_test(test_claim_with_another_digest_is_digest_mismatch),
		cmocka_unit_test(test_claim_succeeds_once_then_already_claimed),
		cmocka_unit_test(test_claim_after_grant_expiry_is_grant_expired),
		cmocka_unit_test(test_claim_just_before_grant_expiry_works),
		cmocka_unit_test(test_claim_before_approval_is_not_approved),
		cmocka_unit_test(test_result_only_after_claim),
		cmocka_unit_test(test_nonzero_exit_code_fails),
		cmocka_unit_test(test_cancel_only_by_requester_and_only_pending),
		cmocka_unit_test(test_terminal_states_never_change),
		cmocka_unit_test(test_status_names_round_trip),
		cmocka_unit_test(test_may_view_rules),
		cmocka_unit_test(test_api_view_lists_who_approved_each_requirement),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
