"""`signoff explain ID` and GET /v1/requests/{id}/explain: the story of a request that went
each way (allowed and run, denied by policy, denied by a reviewer, approved by two, expired,
cancelled, escalated), told from its audit events, with the checkpoint that covers them."""

import json

import pytest

from conftest import CAST, Daemon, expect_error, make_config, ok, run_cli, sample_action, wait_until

POLICY = {
    "default": "review",
    "approvers": {"group": "sre", "count": 1},
    "rules": [
        {"name": "reads-are-free", "when": 'action.command[1] == "get"', "decide": "allow",
         "reason": "Reading changes nothing."},
        {"name": "no-deletes", "when": 'action.command[1] == "delete"', "decide": "deny",
         "reason": "Deletes are done by hand."},
        {"name": "two-sres", "when": 'action.resource == "deploy/two"', "decide": "review",
         "reason": "Two people look at this one.", "approvers": {"group": "sre", "count": 2}},
        {"name": "short-lived", "when": 'action.resource == "deploy/short"', "decide": "review",
         "reason": "Only worth doing right now.", "ttl": "1s"},
        {"name": "escalating", "when": 'action.resource == "deploy/esc"', "decide": "review",
         "reason": "SRE first, then the DBAs.", "escalate": {"after": "1s", "to": {"group": "dba"}}},
    ],
}


def get_action(resource):
    return sample_action(command=["kubectl", "get", "pods"], resource=resource)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One daemon; one request down each path; everything under a checkpoint."""
    wd = tmp_path_factory.mktemp("explain")
    audit = {"audit": {"checkpoint_every": 1, "checkpoint_interval": "1s",
                       "signing_key_file": f"{wd}/audit.key"}}
    d = Daemon(wd, make_config(wd, POLICY, None, None, audit))
    d.start()
    try:
        bot, bob, carol, dave = (d.client(n) for n in ["deploy-bot", "bob", "carol", "dave"])
        r = {}
        r["ran"] = bot.submit(get_action("pods/ok"), intent="check the pods after the deploy")
        ok(bot.claim(r["ran"]["id"], r["ran"]["digest"]))
        ok(bot.result(r["ran"]["id"], 0, detail="3 pods running"))
        r["crashed"] = bot.submit(get_action("pods/bad"), intent="look at the failing pods")
        ok(bot.claim(r["crashed"]["id"], r["crashed"]["digest"]))
        ok(bot.result(r["crashed"]["id"], 2, detail="connection refused"))
        r["policy_denied"] = bot.submit(
            sample_action(command=["kubectl", "delete", "namespace", "prod"], resource="ns/prod"),
            intent="clean up the namespace")
        r["reviewer_denied"] = bot.submit(sample_action(resource="deploy/api"),
                                          intent="restart the api to pick up the config")
        ok(bob.deny(r["reviewer_denied"]["id"], comment="not during the freeze"))
        r["two"] = bot.submit(sample_action(resource="deploy/two"), intent="roll the two-step deploy")
        ok(bob.approve(r["two"]["id"], comment="looks right"))
        ok(carol.approve(r["two"]["id"]))
        ok(bot.claim(r["two"]["id"], r["two"]["digest"]))
        r["cancelled"] = bot.submit(sample_action(resource="deploy/cancel"),
                                    intent="restart, unless it recovers")
        ok(bot.cancel(r["cancelled"]["id"]))
        r["expired"] = bot.submit(sample_action(resource="deploy/short"), intent="a quick bounce")
        r["escalated"] = bot.submit(sample_action(resource="deploy/esc"), intent="migrate the schema")
        wait_until(lambda: bot.show(r["expired"]["id"])["status"] == "expired", timeout=15,
                   what="the short-lived request to expire")
        wait_until(lambda: any(q.get("escalation", {}).get("escalated")
                               for q in bot.show(r["escalated"]["id"])["decision"]["requirements"]),
                   timeout=15, what="the escalation")
        ok(dave.approve(r["escalated"]["id"], comment="schema change reviewed"))
        head = d.client("erin").audit_events(limit=1000)[-1]["seq"]
        wait_until(lambda: d.client("erin").get("/v1/audit/checkpoint").json().get("size", 0) >= head,
                   timeout=15, what="a checkpoint over every event")
        yield d, r
    finally:
        d.stop()
        assert not d.sanitizer_reports(), d.log_text()[-4000:]


def explain(d, who, rid):
    return ok(d.client(who).get(f"/v1/requests/{rid}/explain"))


def story_of(d, rid, who="erin"):
    """The story from the API, checked against `signoff explain` and the audit log."""
    body = explain(d, who, rid)
    story = body["story"]
    cli = run_cli(["explain", rid], d.url, CAST[who].token, d.workdir)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.decode().splitlines() == story
    js = run_cli(["explain", "--json", rid], d.url, CAST[who].token, d.workdir)
    assert js.returncode == 0 and json.loads(js.stdout)["story"] == story
    # The events are this request's audit events, as the log has them.
    log = [e for e in d.client("erin").audit_events(limit=1000) if e["request_id"] == rid]
    assert [(e["seq"], e["type"], e["hash"]) for e in body["events"]] == \
           [(e["seq"], e["type"], e["hash"]) for e in log]
    assert body["request"]["id"] == rid
    # The covering checkpoint: named in the story, signed with the daemon's key.
    cp = body["checkpoint"]
    key = ok(d.client("erin").get("/v1/audit/pubkey"))
    assert cp and cp["size"] >= log[-1]["seq"] and cp["key_id"] == key["key_id"], body
    assert f"covered by checkpoint {cp['size']}" in story[-1], story
    assert key["key_id"] in story[-1]
    return "\n".join(story), body


def assert_common(text, intent, rule):
    assert "deploy-bot (agent, owned by alice) asked to" in text, text
    assert "on behalf of alice" in text, text
    assert f"Why, in its words: {intent}" in text, text
    assert f"rule {rule} (" in text, text


def test_allowed_request_that_ran_and_succeeded(world):
    d, r = world
    text, body = story_of(d, r["ran"]["id"])
    assert_common(text, "check the pods after the deploy", "reads-are-free")
    assert "run `kubectl get pods` in production on pods/ok" in text
    assert "decided: allow" in text
    assert "deploy-bot claimed the approval for the exact action with digest " \
           f"{r['ran']['digest'][:16]}" in text
    assert "finished with exit code 0 (succeeded)" in text
    assert [e["type"] for e in body["events"]] == ["request.submitted", "request.claimed",
                                                  "request.result"]


def test_allowed_request_that_ran_and_failed(world):
    d, r = world
    text, _ = story_of(d, r["crashed"]["id"])
    assert_common(text, "look at the failing pods", "reads-are-free")
    assert "finished with exit code 2 (failed)" in text


def test_request_denied_by_policy(world):
    d, r = world
    text, body = story_of(d, r["policy_denied"]["id"])
    assert_common(text, "clean up the namespace", "no-deletes")
    assert "decided: deny" in text and "Deletes are done by hand." in text
    assert "claimed" not in text and "finished" not in text
    assert [e["type"] for e in body["events"]] == ["request.submitted"]


def test_request_denied_by_a_reviewer_with_a_comment(world):
    d, r = world
    text, _ = story_of(d, r["reviewer_denied"]["id"])
    assert_common(text, "restart the api to pick up the config", "default")
    assert "it needs 1 approval(s) from group sre" in text
    assert 'bob denied through api ("not during the freeze"); the request was then denied.' in text
    assert "claimed" not in text


def test_request_approved_by_two_reviewers_then_claimed(world):
    d, r = world
    text, body = story_of(d, r["two"]["id"])
    assert_common(text, "roll the two-step deploy", "two-sres")
    assert "it needs 2 approval(s) from group sre" in text
    assert 'bob approved through api ("looks right"); the request was then pending.' in text
    assert "carol approved through api; the request was then approved." in text
    assert text.index("bob approved") < text.index("carol approved") < text.index("claimed")
    assert "deploy-bot claimed the approval" in text
    assert [e["actor"] for e in body["events"]] == ["deploy-bot", "bob", "carol", "deploy-bot"]


def test_request_that_expired(world):
    d, r = world
    text, _ = story_of(d, r["expired"]["id"])
    assert_common(text, "a quick bounce", "short-lived")
    assert "time ran out while it was pending, so it expired; nothing ran." in text


def test_request_that_was_cancelled(world):
    d, r = world
    text, _ = story_of(d, r["cancelled"]["id"])
    assert_common(text, "restart, unless it recovers", "default")
    assert "deploy-bot cancelled the request" in text


def test_request_that_escalated_and_was_approved_by_the_escalation_group(world):
    d, r = world
    text, body = story_of(d, r["escalated"]["id"])
    assert_common(text, "migrate the schema", "escalating")
    assert "nobody had decided in time, so the review was opened to more approvers" in text
    assert 'dave approved through api ("schema change reviewed"); the request was then approved.' \
        in text
    assert text.index("opened to more approvers") < text.index("dave approved")
    assert [e["type"] for e in body["events"]] == ["request.submitted", "request.escalated",
                                                  "request.reviewed"]


def test_escalation_story_names_the_group_it_was_opened_to(world):
    # Fails today (src gap): src/server/explain.c says "opened to more approvers" without the
    # groups its request.escalated event records.
    d, r = world
    text, _ = story_of(d, r["escalated"]["id"])
    line = next(ln for ln in text.split("\n") if "opened to more approvers" in ln)
    assert "dba" in line, f"the escalation line does not say who it was opened to: {line!r}"


def test_everyone_who_may_see_a_request_gets_its_story_and_others_get_404(world):
    d, r = world
    rid = r["two"]["id"]
    # requester, the human it acted for, reviewers, auditors and admins
    for who in ["deploy-bot", "alice", "bob", "carol", "erin"]:
        assert explain(d, who, rid)["request"]["id"] == rid, who
    # an agent and a human with no part in it: the same answer as for an unknown id
    for who in ["report-bot", "dave"]:
        expect_error(d.client(who).get(f"/v1/requests/{rid}/explain"), 404, "not_found")
        cli = run_cli(["explain", rid], d.url, CAST[who].token, d.workdir)
        assert cli.returncode != 0 and cli.stdout == b"", (who, cli.stdout)
    expect_error(d.client("erin").get("/v1/requests/req_01AAAAAAAAAAAAAAAAAAAAAAAA/explain"),
                 404, "not_found")
    assert d.anonymous().get(f"/v1/requests/{rid}/explain").status_code == 401


def test_audit_prove_checks_every_event_of_a_request(world):
    d, r = world
    rid = r["two"]["id"]
    res = run_cli(["audit", "prove", rid], d.url, CAST["erin"].token, d.workdir)
    assert res.returncode == 0, res.stderr
    bundle = json.loads(res.stdout)
    assert bundle["request_id"] == rid and len(bundle["proofs"]) == 4
    assert b"4 events of" in res.stderr and b"verified" in res.stderr


def test_story_before_any_checkpoint_says_so(start_daemon):
    # The default checkpoint settings: nothing is signed within the test.
    d = start_daemon(policy={"default": "allow"})
    req = d.client("deploy-bot").submit(get_action("pods/x"), intent="just looking")
    body = explain(d, "deploy-bot", req["id"])
    assert body["checkpoint"] is None
    assert "not yet under a signed checkpoint" in body["story"][-1], body["story"]
