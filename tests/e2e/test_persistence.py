"""State and the audit chain survive kill -9 and a restart on the same directory."""

import concurrent.futures
import hashlib
import time

from conftest import (Client, canonical_json, expect_error, ok, parse_time, sample_action,
                      wait_until)

KEPT_FIELDS = ["id", "status", "requester", "on_behalf_of", "action", "intent", "context",
               "digest", "reviews", "created_at", "expires_at", "decided_at", "claimed_at",
               "result"]


def verify_chain(events):
    """Every property of the audit chain a user can check offline; returns the events."""
    assert events, "no audit events"
    prev_hash, prev_seq = "0" * 64, None
    for ev in events:
        for field in ["seq", "at", "type", "request_id", "actor", "data", "prev_hash", "hash"]:
            assert field in ev, f"audit event without {field}: {ev}"
        assert isinstance(ev["seq"], int)
        if prev_seq is not None:
            assert ev["seq"] == prev_seq + 1, f"seq jumps from {prev_seq} to {ev['seq']}"
        assert ev["prev_hash"] == prev_hash, f"chain broken at seq {ev['seq']}"
        body = {k: v for k, v in ev.items() if k not in ("prev_hash", "hash")}
        expect = hashlib.sha256(bytes.fromhex(ev["prev_hash"]) + canonical_json(body)).hexdigest()
        assert ev["hash"] == expect, f"hash of seq {ev['seq']} does not match its content"
        prev_hash, prev_seq = ev["hash"], ev["seq"]
    return events


def snapshot(client, rid):
    req = client.show(rid)
    return {k: req.get(k) for k in KEPT_FIELDS}


def test_requests_and_reviews_survive_kill_and_restart(daemon):
    bot, bob, carol = daemon.client("deploy-bot"), daemon.client("bob"), daemon.client("carol")
    erin = daemon.client("erin")

    half = bot.submit(sample_action(resource="deploy/half"), context={"ticket": "INC-1"})
    ok(bob.approve(half["id"], comment="one of two"))

    untouched = bot.submit(sample_action(resource="deploy/untouched"))

    denied = bot.submit(sample_action(resource="deploy/denied"))
    ok(bob.deny(denied["id"], comment="no"))

    approved = bot.submit(sample_action(resource="deploy/approved"))
    ok(bob.approve(approved["id"]))
    ok(carol.approve(approved["id"]))

    done = bot.submit(sample_action(resource="deploy/done"))
    ok(bob.approve(done["id"]))
    ok(carol.approve(done["id"]))
    ok(bot.claim(done["id"], done["digest"]))
    ok(bot.result(done["id"], 0, detail="ok"))

    cancelled = bot.submit(sample_action(resource="deploy/cancelled"))
    ok(bot.cancel(cancelled["id"]))

    ids = [half["id"], untouched["id"], denied["id"], approved["id"], done["id"], cancelled["id"]]
    before = {rid: snapshot(erin, rid) for rid in ids}
    events_before = verify_chain(erin.audit_events())

    daemon.restart()

    after = {rid: snapshot(erin, rid) for rid in ids}
    for rid in ids:
        assert after[rid] == before[rid], f"{rid} changed across restart"
    assert [after[rid]["status"] for rid in ids] == [
        "pending", "pending", "denied", "approved", "succeeded", "cancelled"]

    # bob's review from before the kill still counts: he cannot review again, and one more
    # human completes the quorum.
    expect_error(bob.approve(half["id"]), 409, "already_reviewed")
    assert ok(carol.approve(half["id"]))["status"] == "approved"
    # The grant approved before the kill can still be claimed, once.
    ok(bot.claim(approved["id"], approved["digest"]))
    expect_error(bot.claim(approved["id"], approved["digest"]), 409, "already_claimed")
    # Denied stays denied; done stays done.
    expect_error(carol.approve(denied["id"]), 409, "not_pending")
    expect_error(bot.result(done["id"], 1), 409, "not_claimed")

    # The chain continues from where it was, intact across the restart.
    events_after = verify_chain(erin.audit_events())
    assert events_after[: len(events_before)] == events_before
    assert len(events_after) > len(events_before)
    mentioned = {ev["request_id"] for ev in events_after}
    assert set(ids) <= mentioned, "every request's changes are in the audit log"


def test_audit_chain_is_intact_and_complete(start_daemon):
    d = start_daemon(policy={"approvers": {"group": "sre", "count": 1}})
    bot, bob = d.client("deploy-bot"), d.client("bob")
    req = bot.submit()
    ok(bob.approve(req["id"]))
    ok(bot.claim(req["id"], req["digest"]))
    ok(bot.result(req["id"], 3))
    denied = bot.submit(sample_action(resource="x"))
    ok(bob.deny(denied["id"]))
    # Refused attempts change nothing and need not be logged, but must not break the chain.
    expect_error(bot.claim(req["id"], req["digest"]), 409, None)

    events = verify_chain(d.client("erin").audit_events())
    for_req = [ev for ev in events if ev["request_id"] == req["id"]]
    # submit, review (approved), claim, result: at least one event for each change of state.
    assert len(for_req) >= 4, [ev["type"] for ev in for_req]
    assert {ev["actor"] for ev in for_req} >= {"deploy-bot", "bob"}
    # Small pages give the same events as one big read.
    assert d.client("erin").audit_events(limit=1) == events
    assert d.client("erin").audit_events(limit=3) == events


def test_audit_events_name_actor_request_and_time(start_daemon):
    d = start_daemon(policy={"approvers": {"group": "sre", "count": 1}})
    req = d.client("deploy-bot").submit()
    ok(d.client("bob").approve(req["id"]))
    events = [ev for ev in d.client("erin").audit_events() if ev["request_id"] == req["id"]]
    assert [ev["actor"] for ev in events] == ["deploy-bot", "bob"]
    for ev in events:
        assert isinstance(ev["type"], str) and ev["type"]
        parse_time(ev["at"])  # times are RFC 3339 strings everywhere in the API


def test_audit_after_cursor(start_daemon):
    d = start_daemon(policy={"default": "allow"})
    bot = d.client("deploy-bot")
    for i in range(3):
        bot.submit(sample_action(resource=f"r{i}"))
    erin = d.client("erin")
    events = erin.audit_events()
    assert len(events) >= 3
    mid = events[1]["seq"]
    rest = ok(erin.get("/v1/audit", params={"after": mid, "limit": 1000}))["events"]
    assert [e["seq"] for e in rest] == [e["seq"] for e in events if e["seq"] > mid]


def test_issued_token_survives_restart(daemon):
    issued = ok(daemon.client("carol").post("/v1/tokens", {"principal": "bob"}), 201)
    daemon.restart()
    assert ok(Client(daemon, issued["token"]).get("/v1/whoami"))["id"] == "bob"


def test_signing_key_is_created_and_kept(daemon):
    key = daemon.workdir / "audit.key"
    assert key.exists(), "audit signing key was not created on first start"
    content = key.read_bytes()
    assert content
    mode = key.stat().st_mode & 0o777
    assert mode & 0o077 == 0, f"audit key is readable by others: {oct(mode)}"
    daemon.restart()
    assert key.read_bytes() == content, "restart replaced the audit signing key"


def test_sigterm_stops_cleanly(daemon):
    daemon.client("deploy-bot").submit()
    rc = daemon.stop()
    assert rc == 0, f"signoffd exited with {rc} on SIGTERM"
    daemon.start()
    assert ok(daemon.client("erin").get("/v1/requests"))["requests"], "data lost after clean stop"


def test_deadlines_pass_while_daemon_is_down(start_daemon):
    # A pending request and an unclaimed grant whose time runs out while signoffd is dead
    # must not come back usable.
    d = start_daemon(policy={"approvers": {"group": "sre", "count": 1}, "grant_ttl": "2s"})
    bot, bob = d.client("deploy-bot"), d.client("bob")
    pending = bot.submit(ttl_seconds=2)
    granted = bot.submit(sample_action(resource="deploy/granted"))
    assert ok(bob.approve(granted["id"]))["status"] == "approved"
    d.kill9()
    time.sleep(3)
    d.start()
    expect_error(bob.approve(pending["id"]), 409, "not_pending")
    assert bot.show(pending["id"])["status"] == "expired"
    expect_error(bot.claim(granted["id"], granted["digest"]), 409, "grant_expired")
    assert bot.show(granted["id"])["status"] == "expired"
    verify_chain(d.client("erin").audit_events())


def test_audit_chain_stays_intact_under_concurrent_changes(start_daemon):
    d = start_daemon(policy={"approvers": {"group": "sre", "count": 1}})
    bot = d.client("deploy-bot")

    def one(i):
        req = bot.submit(sample_action(resource=f"deploy/{i}"))
        reviewer = d.client("bob" if i % 2 else "carol")
        return ok(reviewer.approve(req["id"]))["id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(one, range(24)))
    events = verify_chain(d.client("erin").audit_events())
    per_request = {rid: [ev for ev in events if ev["request_id"] == rid] for rid in ids}
    for rid, evs in per_request.items():
        assert len(evs) >= 2, f"{rid}: submit and approval must both be audited: {evs}"


def test_sigterm_answers_parked_waiters_and_survives_abandoned_ones(daemon):
    # A stop with long-polls parked, some whose clients already went away (their sockets
    # half-closed on the daemon's side), exits 0 and answers every waiter still there once.
    import socket

    bot = daemon.client("deploy-bot")
    ids = []
    for i in range(40):
        r = bot.submit(action=sample_action(resource=f"stop/{i}"))
        assert r["status"] == "pending", r
        ids.append(r["id"])

    def park(rid):
        s = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
        s.sendall((f"GET /v1/requests/{rid}?wait=120 HTTP/1.1\r\nHost: signoff\r\n"
                   f"Authorization: Bearer {bot.token}\r\n\r\n").encode())
        return s

    kept = [park(rid) for rid in ids[:20]]
    gone = [park(rid) for rid in ids[20:]]
    wait_until(lambda: "signoff_waiters 40" in bot.get("/metrics").text, what="40 parked waiters")
    for s in gone:
        s.close()
    time.sleep(0.5)
    rc = daemon.stop()
    assert rc == 0, f"signoffd exited with {rc} on SIGTERM with waiters parked"
    for rid, s in zip(ids, kept):
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), f"waiter for {rid} got {data[:200]!r}"
        assert head.count(b"HTTP/1.1 ") == 1 and body.count(b'"id"') >= 1, data[:400]
        assert f'"{rid}"'.encode() in body
