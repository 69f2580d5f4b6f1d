"""Idempotent submits, run-time tokens, who may see what, audit access, health and metrics."""

import concurrent.futures
import re

import requests

from conftest import (HEX64_RE, HTTP_TIMEOUT, Client, expect_error, expect_one_of, ok, sample_action,
                      sha256_hex)


# Idempotency --------------------------------------------------------------------------------


def test_same_idempotency_key_and_action_returns_same_request(daemon):
    bot = daemon.client("deploy-bot")
    first = bot.submit(idempotency_key="deploy-42")
    again = ok(bot.submit_raw(idempotency_key="deploy-42"), 200)
    assert again["id"] == first["id"]
    assert again["digest"] == first["digest"]
    listed = daemon.client("carol").list()["requests"]
    assert [r["id"] for r in listed] == [first["id"]], "a retry must not create a second request"


def test_same_idempotency_key_other_action_conflicts(daemon):
    bot = daemon.client("deploy-bot")
    first = bot.submit(idempotency_key="deploy-43")
    other = sample_action(command=["kubectl", "delete", "deploy/api"])
    expect_error(bot.submit_raw(other, idempotency_key="deploy-43"), 409, "idempotency_conflict")
    listed = daemon.client("carol").list()["requests"]
    assert [r["id"] for r in listed] == [first["id"]]


def test_idempotency_key_returns_decided_request_unchanged(daemon):
    bot = daemon.client("deploy-bot")
    first = bot.submit(idempotency_key="deploy-44")
    ok(daemon.client("bob").deny(first["id"]))
    again = ok(bot.submit_raw(idempotency_key="deploy-44"), 200)
    assert again["id"] == first["id"]
    assert again["status"] == "denied", "a retry must not reopen a denied request"


def test_concurrent_retries_with_one_key_make_one_request(daemon):
    bot = daemon.client("deploy-bot")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        resps = list(pool.map(lambda _: bot.submit_raw(idempotency_key="burst"), range(8)))
    statuses = sorted(r.status_code for r in resps)
    assert statuses == [200] * 7 + [201], statuses
    assert len({r.json()["id"] for r in resps}) == 1
    assert len(daemon.client("carol").list()["requests"]) == 1


def test_idempotency_keys_belong_to_their_requester(daemon):
    a = daemon.client("deploy-bot").submit(idempotency_key="shared-key")
    b = daemon.client("report-bot").submit(idempotency_key="shared-key")
    assert a["id"] != b["id"]
    assert b["requester"] == "report-bot"


# Tokens --------------------------------------------------------------------------------------


def test_admin_issues_token_that_works(daemon):
    req = daemon.client("deploy-bot").submit()
    issued = ok(daemon.client("carol").post("/v1/tokens", {"principal": "bob"}), 201)
    token = issued["token"]
    assert issued["principal"] == "bob"
    assert re.fullmatch(r"so_[0-9a-f]{64}", token), token
    assert HEX64_RE.match(issued["token_sha256"])
    assert issued["token_sha256"] == sha256_hex(token)
    new_bob = Client(daemon, token)
    assert ok(new_bob.get("/v1/whoami"))["id"] == "bob"
    after = ok(new_bob.approve(req["id"]))
    assert [r["reviewer"] for r in after["reviews"]] == ["bob"]
    # The old token still works and is the same person.
    expect_error(daemon.client("bob").approve(req["id"]), 409, "already_reviewed")


def test_non_admin_cannot_issue_tokens(daemon):
    for name in ["alice", "bob", "erin", "deploy-bot", "ci"]:
        resp = daemon.client(name).post("/v1/tokens", {"principal": "bob"})
        expect_error(resp, 403, "forbidden")
    # Nor for themselves.
    expect_error(daemon.client("alice").post("/v1/tokens", {"principal": "alice"}), 403, "forbidden")


def test_token_issue_needs_authentication(daemon):
    expect_error(Client(daemon, None).post("/v1/tokens", {"principal": "bob"}), 401, "unauthorized")


def test_token_issue_for_unknown_principal_is_refused(daemon):
    resp = daemon.client("carol").post("/v1/tokens", {"principal": "mallory"})
    expect_one_of(resp, (400, "bad_request"), (404, "not_found"))


# Visibility -----------------------------------------------------------------------------------


def test_unrelated_principal_gets_404(daemon):
    req = daemon.client("deploy-bot").submit()
    rid = req["id"]
    for name in ["dave", "report-bot", "ci"]:
        c = daemon.client(name)
        expect_error(c.show_raw(rid), 404, "not_found")
        assert rid not in [r["id"] for r in c.list()["requests"]]
        assert rid not in [r["id"] for r in c.list(status="pending")["requests"]]
    # Those related to it see it: requester, owner (on behalf of), eligible reviewers,
    # admins and auditors.
    for name in ["deploy-bot", "alice", "bob", "carol", "erin"]:
        assert daemon.client(name).show(rid)["id"] == rid, name
    for name in ["bob", "carol"]:
        assert rid in [r["id"] for r in daemon.client(name).list(status="pending")["requests"]]


def test_long_poll_by_unrelated_principal_is_404_at_once(daemon):
    req = daemon.client("deploy-bot").submit()
    expect_error(daemon.client("dave").show_raw(req["id"], wait=30), 404, "not_found")


def test_agent_sees_only_its_own_requests(daemon):
    mine = daemon.client("deploy-bot").submit()
    theirs = daemon.client("report-bot").submit()
    ids = [r["id"] for r in daemon.client("deploy-bot").list()["requests"]]
    assert mine["id"] in ids and theirs["id"] not in ids
    expect_error(daemon.client("deploy-bot").show_raw(theirs["id"]), 404, "not_found")


# Audit access -----------------------------------------------------------------------------------


def test_audit_is_for_auditors_and_admins(daemon):
    daemon.client("deploy-bot").submit()
    assert ok(daemon.client("erin").get("/v1/audit"))["events"]
    assert ok(daemon.client("carol").get("/v1/audit"))["events"]
    for name in ["alice", "bob", "dave", "deploy-bot"]:
        expect_error(daemon.client(name).get("/v1/audit"), 403, "forbidden")
    expect_error(Client(daemon, None).get("/v1/audit"), 401, "unauthorized")


# Operations -------------------------------------------------------------------------------------


def test_healthz_needs_no_token(daemon):
    resp = requests.get(daemon.url + "/healthz", timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"
    assert re.fullmatch(r"[0-9a-f]{12}", resp.json()["node"]), resp.json()


def test_metrics_are_prometheus_text(daemon):
    daemon.client("deploy-bot").submit()
    resp = requests.get(daemon.url + "/metrics", timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers.get("Content-Type", "").startswith("text/plain")
    text = resp.text
    assert "signoff_" in text
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples, "no metric samples"
    sample_re = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEinfNa]+( \d+)?$")
    for line in samples:
        assert sample_re.match(line), f"not a Prometheus sample: {line!r}"
    assert any(line.startswith("signoff_") for line in samples)

