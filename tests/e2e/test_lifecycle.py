"""The request lifecycle through the HTTP API, as an agent and its reviewers see it."""

import threading
import time

from conftest import (HEX64_RE, REQUEST_ID_RE, digest_of, expect_error, expect_one_of, ok,
                      parse_time, sample_action, wait_until)


def test_submit_returns_pending_request_with_digest_of_canonical_action(daemon):
    bot = daemon.client("deploy-bot")
    action = sample_action()
    req = bot.submit(action, intent="restart after INC-4411", context={"ticket": "INC-4411"})
    assert REQUEST_ID_RE.match(req["id"]), req["id"]
    assert req["status"] == "pending"
    assert req["requester"] == "deploy-bot"
    # An agent with an owner and no on_behalf_of acts on behalf of its owner.
    assert req["on_behalf_of"] == "alice"
    assert req["action"] == action
    assert req["intent"] == "restart after INC-4411"
    assert req["context"] == {"ticket": "INC-4411"}
    assert HEX64_RE.match(req["digest"])
    assert req["digest"] == digest_of(action)
    assert req["decision"]["outcome"] == "review"
    assert req["reviews"] == []
    assert req["expires_at"] and req["created_at"]
    assert req["decided_at"] is None and req["claimed_at"] is None and req["result"] is None
    created, expires = parse_time(req["created_at"]), parse_time(req["expires_at"])
    assert expires - created == 30 * 60, "policy ttl 30m sets expires_at"
    reqs = req["decision"]["requirements"]
    assert len(reqs) == 1 and reqs[0]["group"] == "sre" and reqs[0]["count"] == 2
    assert reqs[0]["approved_by"] == []


def test_digest_covers_unicode_nested_and_extra_fields(daemon):
    bot = daemon.client("deploy-bot")
    action = {
        "tool": "export_table",
        "kind": "mcp",
        "arguments": {"zeta": [3, 2, 1], "alpha": {"y": "é", "x": "日本語 ✓"}, "quote": "a\"b\\c\n"},
        "resource": "db/customers",
        "environment": "staging",
        "extra_field": {"kept": True, "none": None},
    }
    req = bot.submit(action)
    assert req["action"] == action
    assert req["digest"] == digest_of(action)
    # Key order in the submitted JSON does not change the digest.
    reordered = dict(reversed(list(action.items())))
    req2 = bot.submit(reordered)
    assert req2["digest"] == req["digest"]
    assert req2["id"] != req["id"]
    # Any change to the action changes it.
    changed = dict(action, environment="production")
    assert bot.submit(changed)["digest"] == digest_of(changed) != req["digest"]


def test_full_lifecycle_with_long_poll_two_approvals_claim_and_success(daemon):
    bot, bob, carol = daemon.client("deploy-bot"), daemon.client("bob"), daemon.client("carol")
    action = sample_action()
    req = bot.submit(action)
    rid = req["id"]

    waited = {}

    def long_poll():
        t0 = time.monotonic()
        resp = bot.show_raw(rid, wait=60, timeout=120)
        waited["elapsed"] = time.monotonic() - t0
        waited["resp"] = resp

    waiter = threading.Thread(target=long_poll)
    waiter.start()
    time.sleep(0.5)
    try:
        after_bob = ok(bob.approve(rid, comment="looks right"))
        assert after_bob["status"] == "pending", "one approval must not meet a two-person rule"
        assert [r["reviewer"] for r in after_bob["reviews"]] == ["bob"]
        assert after_bob["reviews"][0]["decision"] == "approve"
        assert after_bob["decision"]["requirements"][0]["approved_by"] == ["bob"]
        time.sleep(0.3)
        assert waiter.is_alive(), "long-poll returned while the request was still pending"

        after_carol = ok(carol.approve(rid))
        assert after_carol["status"] == "approved"
        assert after_carol["decided_at"] is not None
        assert after_carol["grant_expires_at"] is not None
        assert sorted(after_carol["decision"]["requirements"][0]["approved_by"]) == ["bob", "carol"]
    finally:
        waiter.join(120)
    assert not waiter.is_alive()
    polled = ok(waited["resp"])
    assert polled["status"] == "approved", "long-poll must return the approved request"
    assert waited["elapsed"] < 50, "long-poll held past the approval until its wait ran out"

    claimed = ok(bot.claim(rid, req["digest"]))
    assert claimed["status"] == "claimed"
    assert claimed["claimed_at"] is not None

    done = ok(bot.result(rid, 0, detail="rolled out"))
    assert done["status"] == "succeeded"
    assert done["result"]["exit_code"] == 0
    assert done["finished_at"] is not None

    final = bot.show(rid)
    assert final["status"] == "succeeded"
    assert final["result"]["exit_code"] == 0
    assert [r["reviewer"] for r in final["reviews"]] == ["bob", "carol"]
    # Terminal: nothing more can be reported.
    expect_error(bot.result(rid, 1), 409, "not_claimed")


def test_nonzero_result_marks_request_failed(start_daemon):
    d = start_daemon(policy={"approvers": {"group": "sre", "count": 1}})
    bot = d.client("deploy-bot")
    req = bot.submit()
    ok(d.client("bob").approve(req["id"]))
    ok(bot.claim(req["id"], req["digest"]))
    done = ok(bot.result(req["id"], 7, detail="exit 7"))
    assert done["status"] == "failed"
    assert done["result"]["exit_code"] == 7
    assert bot.show(req["id"])["status"] == "failed"


def test_ttl_seconds_sets_expiry_and_times_are_rfc3339(daemon):
    req = daemon.client("deploy-bot").submit(ttl_seconds=120)
    assert parse_time(req["expires_at"]) - parse_time(req["created_at"]) == 120
    ok(daemon.client("bob").approve(req["id"]))
    done = ok(daemon.client("carol").approve(req["id"]))
    for field in ["created_at", "expires_at", "decided_at", "grant_expires_at"]:
        parse_time(done[field])
    for review in done["reviews"]:
        parse_time(review["at"])
    # grant_ttl 10m runs from the approval.
    assert parse_time(done["grant_expires_at"]) - parse_time(done["decided_at"]) == 600


def test_long_poll_returns_pending_when_wait_runs_out(daemon):
    bot = daemon.client("deploy-bot")
    req = bot.submit()
    resp = bot.show_raw(req["id"], wait=1, timeout=60)
    assert ok(resp)["status"] == "pending"


def test_long_poll_returns_on_denial(daemon):
    bot, bob = daemon.client("deploy-bot"), daemon.client("bob")
    req = bot.submit()
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", bot.show_raw(req["id"], wait=60, timeout=120)))
    t.start()
    time.sleep(0.5)
    ok(bob.deny(req["id"], comment="not now"))
    t.join(120)
    assert ok(box["r"])["status"] == "denied"


def test_policy_allow_approves_at_once(start_daemon):
    d = start_daemon(policy={"default": "allow"})
    bot = d.client("deploy-bot")
    req = bot.submit()
    assert req["status"] == "approved"
    assert req["decision"]["outcome"] == "allow"
    assert req["grant_expires_at"] is not None
    assert ok(bot.claim(req["id"], req["digest"]))["status"] == "claimed"
    assert ok(bot.result(req["id"], 0))["status"] == "succeeded"


def test_policy_deny_denies_at_once(start_daemon):
    d = start_daemon(policy={"default": "deny"})
    bot = d.client("deploy-bot")
    req = bot.submit()
    assert req["status"] == "denied"
    assert req["decision"]["outcome"] == "deny"
    expect_error(bot.claim(req["id"], req["digest"]), 409, "not_approved")
    # No review can revive it (carol, an admin, sees every request; nobody is asked to review).
    expect_one_of(d.client("carol").approve(req["id"]), (409, "not_pending"), (403, "not_eligible"))
    assert bot.show(req["id"])["status"] == "denied"


def test_one_deny_denies_and_is_final(daemon):
    bot, bob, carol = daemon.client("deploy-bot"), daemon.client("bob"), daemon.client("carol")
    req = bot.submit()
    denied = ok(bob.deny(req["id"], comment="no"))
    assert denied["status"] == "denied"
    assert denied["decided_at"] is not None
    assert denied["reviews"][0]["decision"] == "deny"
    # Approve after deny: a fresh eligible reviewer cannot revive it.
    expect_error(carol.approve(req["id"]), 409, "not_pending")
    expect_error(bot.claim(req["id"], req["digest"]), 409, "not_approved")
    expect_error(bot.cancel(req["id"]), 409, "not_pending")
    final = bot.show(req["id"])
    assert final["status"] == "denied"
    assert [r["reviewer"] for r in final["reviews"]] == ["bob"]


def test_deny_after_partial_approval_denies(daemon):
    bot, bob, carol = daemon.client("deploy-bot"), daemon.client("bob"), daemon.client("carol")
    req = bot.submit()
    ok(bob.approve(req["id"]))
    assert ok(carol.deny(req["id"]))["status"] == "denied"
    assert bot.show(req["id"])["status"] == "denied"


def test_cancel_by_requester(daemon):
    bot = daemon.client("deploy-bot")
    req = bot.submit()
    cancelled = ok(bot.cancel(req["id"]))
    assert cancelled["status"] == "cancelled"
    expect_error(bot.cancel(req["id"]), 409, "not_pending")
    expect_error(daemon.client("bob").approve(req["id"]), 409, "not_pending")
    expect_error(bot.claim(req["id"], req["digest"]), 409, "not_approved")
    assert bot.show(req["id"])["status"] == "cancelled"


def test_pending_request_expires_after_its_ttl(daemon):
    bot, bob = daemon.client("deploy-bot"), daemon.client("bob")
    req = bot.submit(ttl_seconds=1)
    expired = wait_until(lambda: bot.show(req["id"])["status"] == "expired" or None,
                         timeout=30, interval=0.2, what="request to expire")
    assert expired
    expect_error(bob.approve(req["id"]), 409, "not_pending")
    expect_error(bot.claim(req["id"], req["digest"]), 409, "not_approved")
    assert bot.show(req["id"])["status"] == "expired"


def test_policy_ttl_applies_when_request_gives_none(start_daemon):
    d = start_daemon(policy={"ttl": "2s"})
    bot = d.client("deploy-bot")
    req = bot.submit()
    wait_until(lambda: bot.show(req["id"])["status"] == "expired",
               timeout=30, interval=0.2, what="request to expire under policy ttl 2s")
    expect_error(d.client("bob").approve(req["id"]), 409, "not_pending")


def test_claim_before_approval_is_refused(daemon):
    bot = daemon.client("deploy-bot")
    req = bot.submit()
    expect_error(bot.claim(req["id"], req["digest"]), 409, "not_approved")
    assert bot.show(req["id"])["status"] == "pending"


def test_result_before_claim_is_refused(start_daemon):
    d = start_daemon(policy={"default": "allow"})
    bot = d.client("deploy-bot")
    req = bot.submit()
    expect_error(bot.result(req["id"], 0), 409, "not_claimed")
    assert bot.show(req["id"])["status"] == "approved"


def test_list_pending_shows_request_to_reviewer(daemon):
    bot, bob = daemon.client("deploy-bot"), daemon.client("bob")
    req = bot.submit()
    other = bot.submit(sample_action(resource="deploy/web"))
    ok(daemon.client("carol").deny(other["id"]))
    listed = bob.list(status="pending")
    assert "next" in listed
    ids = [r["id"] for r in listed["requests"]]
    assert req["id"] in ids
    assert other["id"] not in ids
    assert all(r["status"] == "pending" for r in listed["requests"])
    denied = bob.list(status="denied")
    assert [r["id"] for r in denied["requests"]] == [other["id"]]


def test_whoami_names_each_principal(daemon):
    for name, kind in [("deploy-bot", "agent"), ("ci", "service"), ("carol", "human")]:
        me = ok(daemon.client(name).get("/v1/whoami"))
        assert me["id"] == name
        assert me["kind"] == kind
    carol = ok(daemon.client("carol").get("/v1/whoami"))
    assert sorted(carol["groups"]) == ["admins", "sre"]
    assert ok(daemon.client("deploy-bot").get("/v1/whoami"))["owner"] == "alice"


def test_list_pages_with_limit_and_cursor(daemon):
    bot = daemon.client("deploy-bot")
    made = [bot.submit(sample_action(resource=f"deploy/{i}"))["id"] for i in range(7)]
    bob = daemon.client("bob")
    seen, cursor = [], None
    for _ in range(10):
        params = {"status": "pending", "limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = ok(bob.get("/v1/requests", params=params))
        assert len(page["requests"]) <= 3
        seen.extend(r["id"] for r in page["requests"])
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(reversed(made)), "newest first, each request exactly once"
    for bad in ["-1", "x", "3x"]:
        expect_error(bob.get("/v1/requests", params={"limit": bad}), 400, "bad_request")
    # Over the maximum: refused, or clamped to 200 (the contract names the range, not the error).
    resp = bob.get("/v1/requests", params={"limit": "100000"})
    if resp.status_code != 200:
        expect_error(resp, 400, "bad_request")
    else:
        assert len(resp.json()["requests"]) <= 200


def test_cancel_only_while_pending(start_daemon):
    d = start_daemon(policy={"default": "allow"})
    bot = d.client("deploy-bot")
    req = bot.submit()
    expect_error(bot.cancel(req["id"]), 409, "not_pending")
    ok(bot.claim(req["id"], req["digest"]))
    expect_error(bot.cancel(req["id"]), 409, "not_pending")
    ok(bot.result(req["id"], 0))
    expect_error(bot.cancel(req["id"]), 409, "not_pending")
    assert bot.show(req["id"])["status"] == "succeeded"
