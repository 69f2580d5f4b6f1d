/*
 * Rules and their combination, with the clock injected: deny beats review beats allow,
 * requirements of several rules need distinct humans, escalation happens exactly when due,
 * unknown answers only make decisions stricter, `require`, and identity-aware routing.
 */
#include "unit.h"

#include <string.h>

#include "common/error.h"
#include "core/core.h"
#include "daemon/config.h"
#include "policy/policy.h"

#define NOW INT64_C(1795486200000) /* 2026-11-24T02:10:00Z */

#define PRINCIPALS                                                                       \
	"principals:\n"                                                                      \
	"  - { id: deploy-bot, kind: agent, owner: alice }\n"                                \
	"  - { id: pay-bot, kind: agent, owner: paula }\n"                                   \
	"  - { id: lone-bot, kind: agent, owner: erin }\n"                                   \
	"  - { id: alice, kind: human, groups: [sre] }\n"                                    \
	"  - { id: bob, kind: human, groups: [sre, dba] }\n"                                 \
	"  - { id: carol, kind: human, groups: [sre] }\n"                                    \
	"  - { id: dave, kind: human, groups: [dba] }\n"                                     \
	"  - { id: erin, kind: human }\n"                                                    \
	"  - { id: paula, kind: human, team: payments, groups: [payments] }\n"               \
	"  - { id: pete, kind: human, groups: [payments] }\n"

static so_config_t cfg;

static void
load(const char *policy)
{
	char text[8192], err[512] = "";
	snprintf(text, sizeof(text), PRINCIPALS "policy:\n%s", policy);
	if (so_config_load_text(text, "t.yaml", &cfg, err, sizeof(err)))
		fail_msg("policy does not load: %s", err);
}

static so_request_t *
submit_at(const char *requester, const char *body, int64_t now, so_core_err_t *refusal,
          int *rc_out)
{
	static const unsigned char rnd[10] = {1};
	json_error_t jerr;
	json_t *b = json_loads(body, 0, &jerr);
	so_request_t *r = NULL;
	so_core_err_t err = {0};
	assert_non_null(b);
	assert_int_equal(so_core_new_request(&cfg.directory,
	                                     so_directory_find(&cfg.directory, requester), b, now,
	                                     rnd, &r, &err),
	                 SO_OK);
	so_decision_t d;
	int rc = so_policy_decide(&cfg.policy, &cfg.directory, r, now, &d, refusal);
	if (rc_out)
		*rc_out = rc;
	if (rc == SO_OK)
		so_core_apply_decision(r, &d, 0, now);
	json_decref(b);
	return r;
}

static so_request_t *
submit(const char *requester, const char *body)
{
	so_core_err_t refusal = {0};
	int rc;
	so_request_t *r = submit_at(requester, body, NOW, &refusal, &rc);
	if (rc != SO_OK)
		fail_msg("refused: %s %s", refusal.code ? refusal.code : "?", refusal.message);
	return r;
}

static void
done(so_request_t *r)
{
	so_request_free(r);
	so_config_free(&cfg);
}

static int
matched(const so_request_t *r, const char *name)
{
	size_t i;
	json_t *rule;
	json_array_foreach(r->decision.rules, i, rule) {
		if (!strcmp(json_string_value(json_object_get(rule, "name")), name))
			return 1;
	}
	return 0;
}

#define PROD "{\"action\":{\"kind\":\"shell\",\"command\":[\"kubectl\",\"delete\",\"pod\"]," \
             "\"environment\":\"production\"},\"intent\":\"cleanup\"}"

static void
test_deny_beats_review_beats_allow(void **state)
{
	load("  default: allow\n"
	     "  approvers: { group: sre, count: 1 }\n"
	     "  rules:\n"
	     "    - { name: kubectl, when: 'action.command[0] == \"kubectl\"', decide: allow }\n"
	     "    - { name: prod, when: 'action.environment == \"production\"', decide: review }\n"
	     "    - { name: no-delete, when: '\"delete\" in action.command', decide: deny }\n");
	so_request_t *r = submit("deploy-bot", PROD);
	assert_int_equal(r->status, SO_ST_DENIED);
	assert_true(matched(r, "kubectl") && matched(r, "prod") && matched(r, "no-delete"));
	so_request_free(r);
	r = submit("deploy-bot", "{\"action\":{\"kind\":\"shell\",\"command\":[\"kubectl\",\"get\"],"
	                         "\"environment\":\"production\"}}");
	assert_int_equal(r->status, SO_ST_PENDING); /* review beats allow */
	assert_int_equal(r->decision.outcome, SO_OUT_REVIEW);
	so_request_free(r);
	r = submit("deploy-bot", "{\"action\":{\"kind\":\"shell\",\"command\":[\"kubectl\",\"get\"],"
	                         "\"environment\":\"staging\"}}");
	assert_int_equal(r->status, SO_ST_APPROVED);
	done(r);
}

static void
test_two_review_rules_need_distinct_humans(void **state)
{
	load("  default: allow\n"
	     "  approvers: { group: sre, count: 1 }\n"
	     "  rules:\n"
	     "    - { name: prod, when: 'action.environment == \"production\"', decide: review,\n"
	     "        approvers: { group: sre, count: 1 } }\n"
	     "    - { name: data, when: 'action.command[1] == \"delete\"', decide: review,\n"
	     "        approvers: { group: dba, count: 1 } }\n");
	so_request_t *r = submit("deploy-bot", PROD);
	so_core_err_t e;
	assert_int_equal(r->decision.nreqs, 2);
	/* bob is in both groups: he fills one seat, never two */
	assert_int_equal(so_core_review(&cfg.directory, r, so_directory_find(&cfg.directory, "bob"),
	                                SO_APPROVE, "", "api", NOW + 1, &e),
	                 SO_OK);
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_int_equal(so_core_review(&cfg.directory, r, so_directory_find(&cfg.directory, "carol"),
	                                SO_APPROVE, "", "api", NOW + 2, &e),
	                 SO_OK);
	assert_int_equal(r->status, SO_ST_APPROVED);
	done(r);
}

static void
test_escalation_happens_exactly_when_due(void **state)
{
	load("  default: allow\n"
	     "  approvers: { group: sre, count: 1 }\n"
	     "  rules:\n"
	     "    - name: prod\n"
	     "      when: 'action.environment == \"production\"'\n"
	     "      decide: review\n"
	     "      approvers: { group: payments, count: 1 }\n"
	     "      escalate: { after: 10m, to: { group: dba } }\n");
	so_request_t *r = submit("deploy-bot", PROD);
	const so_principal_t *dave = so_directory_find(&cfg.directory, "dave");
	so_core_err_t e;
	assert_int_equal(r->decision.reqs[0].escalate_at, NOW + 600000);
	assert_int_equal(so_core_next_escalation(r), NOW + 600000);
	/* a millisecond early: nothing changes, dave may not approve */
	assert_int_equal(so_core_escalate(r, NOW + 599999), 0);
	assert_int_equal(so_core_review(&cfg.directory, r, dave, SO_APPROVE, "", "api", NOW + 599999,
	                                &e),
	                 SO_EDENIED);
	assert_string_equal(e.code, "not_eligible");
	/* on time: the review opens to dba, once */
	assert_int_equal(so_core_escalate(r, NOW + 600000), 1);
	assert_int_equal(so_core_escalate(r, NOW + 700000), 0);
	assert_int_equal(so_core_next_escalation(r), 0);
	assert_int_equal(so_core_review(&cfg.directory, r, dave, SO_APPROVE, "", "api", NOW + 600001,
	                                &e),
	                 SO_OK);
	assert_int_equal(r->status, SO_ST_APPROVED);
	done(r);
}

static void
test_unknown_makes_review_and_deny_apply_but_never_allow(void **state)
{
	load("  default: review\n"
	     "  approvers: { group: sre, count: 1 }\n"
	     "  rules:\n"
	     "    - { name: staging-ok, when: 'action.environment == \"staging\"', decide: allow }\n"
	     "    - { name: big-export, when: 'context.rows > 1000', decide: deny }\n");
	/* no environment, no rows: the allow rule cannot apply, the deny rule does */
	so_request_t *r = submit("deploy-bot", "{\"action\":{\"kind\":\"data.export\"}}");
	assert_int_equal(r->status, SO_ST_DENIED);
	assert_false(matched(r, "staging-ok"));
	assert_true(matched(r, "big-export"));
	so_request_free(r);
	r = submit("deploy-bot", "{\"action\":{\"kind\":\"data.export\",\"environment\":\"staging\"},"
	                         "\"context\":{\"rows\":10}}");
	assert_int_equal(r->status, SO_ST_APPROVED);
	done(r);
}

static void
test_require_refuses_a_request_without_the_field(void **state)
{
	load("  default: allow\n"
	     "  approvers: { group: sre, count: 1 }\n"
	     "  rules:\n"
	     "    - { name: prod, when: 'action.environment == \"production\"', decide: review,\n"
	     "        require: [intent, context.ticket] }\n");
	so_core_err_t refusal = {0};
	int rc;
	so_request_t *r = submit_at("deploy-bot", PROD, NOW, &refusal, &rc);
	assert_int_equal(rc, SO_EINVAL);
	assert_string_equal(refusal.code, "missing_field");
	assert_non_null(strstr(refusal.message, "context.ticket"));
	so_request_free(r);
	r = submit("deploy-bot",
	           "{\"action\":{\"kind\":\"shell\",\"command\":[\"kubectl\"],\"environment\":"
	           "\"production\"},\"intent\":\"x\",\"context\":{\"ticket\":\"INC-1\"}}");
	assert_int_equal(r->status, SO_ST_PENDING);
	done(r);
}

static void
test_owner_team_routes_to_the_team_and_fails_closed_without_one(void **state)
{
	load("  default: allow\n"
	     "  approvers: { group: sre, count: 1 }\n"
	     "  rules:\n"
	     "    - { name: team, when: 'action.kind == \"deploy\"', decide: review,\n"
	     "        approvers: { group: owner.team, count: 1 } }\n");
	so_request_t *r = submit("pay-bot", "{\"action\":{\"kind\":\"deploy\"}}");
	assert_int_equal(r->decision.nreqs, 1);
	assert_string_equal(r->decision.reqs[0].group, "payments");
	so_core_err_t e;
	assert_int_equal(so_core_review(&cfg.directory, r, so_directory_find(&cfg.directory, "pete"),
	                                SO_APPROVE, "", "api", NOW + 1, &e),
	                 SO_OK);
	assert_int_equal(r->status, SO_ST_APPROVED);
	so_request_free(r);
	/* erin has no team: nobody can be asked, so it is denied, and the trace says why */
	r = submit("lone-bot", "{\"action\":{\"kind\":\"deploy\"}}");
	assert_int_equal(r->status, SO_ST_DENIED);
	assert_true(matched(r, "unresolved-approvers"));
	done(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deny_beats_review_beats_allow),
		cmocka_unit_test(test_two_review_rules_need_distinct_humans),
		cmocka_unit_test(test_escalation_happens_exactly_when_due),
		cmocka_unit_test(test_unknown_makes_review_and_deny_apply_but_never_allow),
		cmocka_unit_test(test_require_refuses_a_request_without_the_field),
		cmocka_unit_test(test_owner_team_routes_to_the_team_and_fails_closed_without_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
