"""Each invariant of DESIGN.md attacked through the API; every attack gets its documented error
and leaves the request as it was."""

import concurrent.futures
import time

from conftest import digest_of, expect_error, expect_one_of, ok, sample_action, wait_until


def assert_untouched(client, rid, reviewers=()):
    req = client.show(rid)
    assert req["status"] == "pending", f"attack changed the request: {req['status']}"
    assert [r["reviewer"] for r in req["reviews"]] == list(reviewers)
    return req


# 1. No self-approval; agents never review. ------------------------------------------------


def test_agent_cannot_approve_its_own_request(daemon):
    bot = daemon.client("deploy-bot")
    req = bot.submit()
    expect_error(bot.approve(req["id"]), 403, "agent_cannot_review")
    expect_error(bot.deny(req["id"]), 403, "agent_cannot_review")
    assert_untouched(daemon.client("bob"), req["id"])


def test_agent_in_reviewer_group_cannot_review_anything(daemon):
    # ops-bot is an agent that configuration put into sre and auditors: it can see the request
    # and is in the required group, and still must never review.
    req = daemon.client("deploy-bot").submit()
    ops = daemon.client("ops-bot")
    expect_error(ops.approve(req["id"]), 403, "agent_cannot_review")
    expect_error(ops.deny(req["id"]), 403, "agent_cannot_review")
    human_req = daemon.client("alice").submit()
    expect_error(ops.approve(human_req["id"]), 403, "agent_cannot_review")
    assert_untouched(daemon.client("bob"), req["id"])
    assert_untouched(daemon.client("bob"), human_req["id"])


def test_other_agent_cannot_approve(daemon):
    req = daemon.client("deploy-bot").submit()
    # report-bot may not even see the request, so "not found" is an acceptable refusal too;
    # what matters is that it is refused and nothing counts.
    expect_one_of(daemon.client("report-bot").approve(req["id"]), (403, "agent_cannot_review"), (404, "not_found"))
    assert_untouched(daemon.client("bob"), req["id"])


def test_service_principal_cannot_review(daemon):
    req = daemon.client("alice").submit()
    expect_one_of(daemon.client("ci").approve(req["id"]), (403, "agent_cannot_review"), (404, "not_found"))
    assert_untouched(daemon.client("bob"), req["id"])


def test_owner_cannot_approve_own_agents_request(daemon):
    req = daemon.client("deploy-bot").submit()
    alice = daemon.client("alice")
    expect_error(alice.approve(req["id"]), 403, "self_approval")
    assert_untouched(daemon.client("bob"), req["id"])


def test_owner_cannot_approve_even_with_explicit_on_behalf_of_someone_else(daemon):
    # deploy-bot claims to act for bob; alice still owns the agent.
    req = daemon.client("deploy-bot").submit(on_behalf_of="bob")
    assert req["on_behalf_of"] == "bob"
    expect_error(daemon.client("alice").approve(req["id"]), 403, "self_approval")
    expect_error(daemon.client("bob").approve(req["id"]), 403, "self_approval")
    assert_untouched(daemon.client("carol"), req["id"])


def test_human_cannot_approve_own_request(daemon):
    alice = daemon.client("alice")
    req = alice.submit()
    assert req["requester"] == "alice"
    expect_error(alice.approve(req["id"]), 403, "self_approval")
    assert_untouched(alice, req["id"])
    ok(daemon.client("bob").approve(req["id"]))
    assert ok(daemon.client("carol").approve(req["id"]))["status"] == "approved"


def test_reviewer_named_on_behalf_of_cannot_approve(daemon):
    ci = daemon.client("ci")
    req = ci.submit(on_behalf_of="bob")
    assert req["on_behalf_of"] == "bob"
    expect_error(daemon.client("bob").approve(req["id"]), 403, "self_approval")
    assert_untouched(daemon.client("carol"), req["id"])
    ok(daemon.client("alice").approve(req["id"]))
    assert ok(daemon.client("carol").approve(req["id"]))["status"] == "approved"


def test_unknown_or_non_human_on_behalf_of_is_bad_request(daemon):
    ci = daemon.client("ci")
    expect_error(ci.submit_raw(on_behalf_of="mallory"), 400, "bad_request")
    # on_behalf_of names a human; an agent cannot be used to launder a request.
    expect_error(ci.submit_raw(on_behalf_of="report-bot"), 400, "bad_request")
    expect_error(ci.submit_raw(on_behalf_of=""), 400, "bad_request")
    assert daemon.client("carol").list()["requests"] == []


# 2. A quorum counts distinct humans. ------------------------------------------------------


def test_same_human_twice_does_not_make_a_quorum(daemon):
    req = daemon.client("deploy-bot").submit()
    bob = daemon.client("bob")
    ok(bob.approve(req["id"]))
    expect_error(bob.approve(req["id"]), 409, "already_reviewed")
    after = assert_untouched(bob, req["id"], ["bob"])
    assert after["decision"]["requirements"][0]["approved_by"] == ["bob"]


def test_same_human_cannot_change_vote(daemon):
    req = daemon.client("deploy-bot").submit()
    bob = daemon.client("bob")
    ok(bob.approve(req["id"]))
    expect_error(bob.deny(req["id"]), 409, "already_reviewed")
    assert_untouched(bob, req["id"], ["bob"])


def test_concurrent_approvals_by_one_human_count_once(daemon):
    req = daemon.client("deploy-bot").submit()
    bob = daemon.client("bob")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        resps = list(pool.map(lambda _: bob.approve(req["id"]), range(8)))
    statuses = sorted(r.status_code for r in resps)
    assert statuses.count(200) == 1, statuses
    for r in resps:
        if r.status_code != 200:
            expect_error(r, 409, "already_reviewed")
    assert_untouched(bob, req["id"], ["bob"])


def test_human_in_two_groups_counts_once(start_daemon):
    # carol is in sre and admins; two clicks from her are still one person.
    d = start_daemon()
    req = d.client("deploy-bot").submit()
    carol = d.client("carol")
    ok(carol.approve(req["id"]))
    expect_error(carol.approve(req["id"]), 409, "already_reviewed")
    assert_untouched(carol, req["id"], ["carol"])


# 3. Reviewers must be eligible. -----------------------------------------------------------


def test_auditor_who_can_see_is_not_eligible(daemon):
    req = daemon.client("deploy-bot").submit()
    erin = daemon.client("erin")
    assert erin.show(req["id"])["id"] == req["id"]
    expect_error(erin.approve(req["id"]), 403, "not_eligible")
    expect_error(erin.deny(req["id"]), 403, "not_eligible")
    assert_untouched(erin, req["id"])


def test_human_outside_required_group_is_refused(daemon):
    req = daemon.client("deploy-bot").submit()
    # dave (dba) may not see the request at all, so 404 is also a refusal.
    expect_one_of(daemon.client("dave").approve(req["id"]), (403, "not_eligible"), (404, "not_found"))
    assert_untouched(daemon.client("bob"), req["id"])


def test_admin_outside_required_group_is_not_eligible(start_daemon):
    # With approvers from dba, carol (admin, sre) is not eligible although she sees everything.
    d = start_daemon(policy={"approvers": {"group": "dba", "count": 1}})
    req = d.client("deploy-bot").submit()
    expect_error(d.client("carol").approve(req["id"]), 403, "not_eligible")
    assert_untouched(d.client("carol"), req["id"])
    assert ok(d.client("dave").approve(req["id"]))["status"] == "approved"


# One-time grants and the digest. ----------------------------------------------------------


def approved_request(d, **submit_fields):
    bot = d.client("deploy-bot")
    req = bot.submit(**submit_fields)
    ok(d.client("bob").approve(req["id"]))
    req = ok(d.client("carol").approve(req["id"]))
    assert req["status"] == "approved"
    return bot, req


def test_claim_twice_is_refused(daemon):
    bot, req = approved_request(daemon)
    ok(bot.claim(req["id"], req["digest"]))
    expect_error(bot.claim(req["id"], req["digest"]), 409, "already_claimed")
    assert bot.show(req["id"])["status"] == "claimed"


def test_concurrent_claims_only_one_wins(daemon):
    bot, req = approved_request(daemon)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        resps = list(pool.map(lambda _: bot.claim(req["id"], req["digest"]), range(8)))
    statuses = [r.status_code for r in resps]
    assert statuses.count(200) == 1, statuses
    for r in resps:
        if r.status_code != 200:
            expect_error(r, 409, "already_claimed")


def test_claim_with_other_digest_is_refused(daemon):
    bot, req = approved_request(daemon)
    # The agent tries to run a different action under this approval.
    other = digest_of(sample_action(command=["kubectl", "delete", "deploy/api"]))
    assert other != req["digest"]
    expect_error(bot.claim(req["id"], other), 409, "digest_mismatch")
    expect_error(bot.claim(req["id"], "0" * 64), 409, "digest_mismatch")
    assert bot.show(req["id"])["status"] != "claimed"


def test_claim_after_grant_ttl_is_refused(start_daemon):
    d = start_daemon(policy={"approvers": {"group": "sre", "count": 1}, "grant_ttl": "2s"})
    bot = d.client("deploy-bot")
    req = bot.submit()
    approved = ok(d.client("bob").approve(req["id"]))
    assert approved["status"] == "approved"
    assert approved["grant_expires_at"]
    # Let the grant run out (2 s), then a little more; the daemon decides, not our clock.
    time.sleep(3.5)
    expect_error(bot.claim(req["id"], req["digest"]), 409, "grant_expired")
    assert bot.show(req["id"])["status"] == "expired"
    expect_error(bot.claim(req["id"], req["digest"]), 409, None)


def test_claim_cancel_result_by_someone_else_are_forbidden(start_daemon):
    d = start_daemon(policy={"approvers": {"group": "sre", "count": 1}})
    bot, bob, alice = d.client("deploy-bot"), d.client("bob"), d.client("alice")
    pending = bot.submit()
    # bob (a reviewer) and alice (the owner) can both see it, and neither may act as requester.
    expect_error(bob.cancel(pending["id"]), 403, "forbidden")
    expect_error(alice.cancel(pending["id"]), 403, "forbidden")
    assert bot.show(pending["id"])["status"] == "pending"

    approved = bot.submit(sample_action(resource="deploy/web"))
    ok(bob.approve(approved["id"]))
    expect_error(bob.claim(approved["id"], approved["digest"]), 403, "forbidden")
    expect_error(alice.claim(approved["id"], approved["digest"]), 403, "forbidden")
    expect_error(d.client("carol").claim(approved["id"], approved["digest"]), 403, "forbidden")
    assert bot.show(approved["id"])["status"] == "approved"

    ok(bot.claim(approved["id"], approved["digest"]))
    expect_error(bob.result(approved["id"], 0), 403, "forbidden")
    expect_error(alice.result(approved["id"], 0), 403, "forbidden")
    assert bot.show(approved["id"])["status"] == "claimed"
    assert ok(bot.result(approved["id"], 0))["status"] == "succeeded"


def test_unrelated_principal_cannot_act_on_request(daemon):
    bot = daemon.client("deploy-bot")
    req = bot.submit()
    for name in ["report-bot", "dave"]:
        other = daemon.client(name)
        for resp in [other.cancel(req["id"]), other.claim(req["id"], req["digest"])]:
            expect_one_of(resp, (403, "forbidden"), (404, "not_found"))
    assert bot.show(req["id"])["status"] == "pending"


# Expiry is final. --------------------------------------------------------------------------


def test_approve_after_expiry_is_refused(daemon):
    bot = daemon.client("deploy-bot")
    req = bot.submit(ttl_seconds=1)
    wait_until(lambda: bot.show(req["id"])["status"] == "expired", timeout=30, interval=0.2,
               what="request to expire")
    expect_error(daemon.client("bob").approve(req["id"]), 409, "not_pending")
    expect_error(bot.cancel(req["id"]), 409, "not_pending")
    assert bot.show(req["id"])["status"] == "expired"
