"""Webhooks, black-box: a real signoffd posting request events to local receivers (fakes.py).

Each request event is POSTed as {"type": <audit event type>, "at": <RFC 3339>, "request":
<the request as the API shows it>} with `Signoff-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256(secret, "<t>.<raw body>")>`. The check below is the ten lines a receiver writes
(see `verify` in this file: the documentation's example). Deliveries are retried and survive
kill -9; each event arrives once; max_attempts ends in notify.failed.
"""

import hashlib
import hmac
import json
import secrets
import time
from collections import Counter

import pytest

from conftest import TIME_RE, ok, parse_time, wait_until
from fakes import FakeWebhook, verify_webhook

FAST = 2.0


def verify(secret: bytes, header: str, body: bytes, tolerance=300) -> bool:
    """How a receiver checks a signoff webhook (the documentation's example)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    t, sig = fields["t"], fields["v1"]
    if abs(time.time() - int(t)) > tolerance:
        return False  # too old (or from the future): maybe a replay
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, sig)


def about(ev, rid):
    """Is audit event ev about request rid (notify.* events name it in data.request_id)?"""
    return ev.get("request_id") == rid or (ev.get("data") or {}).get("request_id") == rid


def rule(name, when, decide, **more):
    r = {"name": name, "when": when, "decide": decide}
    r.update(more)
    return r


class Hooks:
    def __init__(self, start_daemon, tmp_path, monkeypatch):
        self._start = start_daemon
        self.tmp = tmp_path
        self.mp = monkeypatch
        self.a = FakeWebhook()  # secret from a file
        self.b = FakeWebhook()  # secret from the environment
        self.secret_a = secrets.token_hex(24)
        self.secret_b = secrets.token_hex(24)
        self.d = None

    def start(self, policy=None, notify=None, only_a=False):
        f = self.tmp / "webhook-secret"
        f.write_text(self.secret_a + "\n")  # as `echo SECRET > FILE` writes it
        f.chmod(0o600)
        self.mp.setenv("SIGNOFF_TEST_WEBHOOK_SECRET", self.secret_b)
        hooks = [{"url": self.a.url, "secret_file": str(f)}]
        if not only_a:
            hooks.append({"url": self.b.url, "secret_env": "SIGNOFF_TEST_WEBHOOK_SECRET"})
        n = {"max_attempts": 10, "max_delay": "1s", "webhooks": hooks}
        n.update(notify or {})
        self.d = self._start(policy=policy, extra={"notify": n})
        return self.d

    def audit(self):
        return self.d.client("erin").audit_events()

    def request_events(self, rids):
        return [e for e in self.audit() if e["request_id"] in rids and e["type"].startswith("request.")]


@pytest.fixture
def hooks(start_daemon, tmp_path, monkeypatch):
    h = Hooks(start_daemon, tmp_path, monkeypatch)
    yield h
    h.a.close()
    h.b.close()


def events_of(fake, rids=None, calls=None):
    """(rid, type) of each delivery a receiver answered 200 to."""
    out = []
    for c in fake.deliveries(calls):
        rid = (c.params.get("request") or {}).get("id")
        if rids is None or rid in rids:
            out.append((rid, c.params.get("type")))
    return out


def wait_all(fake, want, timeout=25.0):
    """Wait until fake received at least the multiset `want` of (rid, type)."""
    want = Counter(want)
    rids = {rid for rid, _ in want}

    def done(calls):
        got = Counter(events_of(fake, rids, calls))
        return all(got[k] >= n for k, n in want.items())
    fake.wait_for(done, timeout, f"webhook deliveries {sorted(want)}")


def check_delivery(call, secret, other_secret):
    assert call.http_method == "POST" and call.path == "/hook", call
    ctype = call.headers.get("content-type", "").lower()
    assert ctype.startswith("application/json"), call.headers
    header = call.headers.get("signoff-signature")
    assert header, f"no Signoff-Signature header: {call.headers}"
    assert verify(secret, header, call.raw), f"signature does not verify: {header} over {call.raw[:200]!r}"
    assert verify_webhook(secret, header, call.raw)
    t = int(dict(p.split("=", 1) for p in header.split(","))["t"])
    assert abs(t - call.wall) < 60, f"t={t} is not the time of sending ({call.wall:.0f})"
    # A tampered body, another secret, or the same bytes under another t fail.
    mid = len(call.raw) // 2
    tampered = call.raw[:mid] + bytes([call.raw[mid] ^ 0x01]) + call.raw[mid + 1:]
    assert not verify(secret, header, tampered)
    assert not verify(secret, header, call.raw + b" ")
    assert not verify(other_secret, header, call.raw)
    assert not verify(secret, header.replace(f"t={t}", f"t={t + 1}"), call.raw)
    body = call.params
    assert isinstance(body, dict) and {"type", "at", "request"} <= set(body), body
    assert TIME_RE.match(body["at"]), body["at"]
    assert isinstance(body["request"], dict) and body["request"].get("id"), body
    return body


def test_every_state_change_is_delivered_signed_to_every_webhook(hooks):
    d = hooks.start(policy={
        "approvers": {"group": "sre", "count": 2},
        "rules": [
            rule("no-forbidden", 'action.kind == "forbidden"', "deny", reason="never"),
            rule("reads", 'action.kind == "read"', "allow"),
            rule("db", 'action.kind == "sql"', "review", approvers={"group": "dba", "count": 1},
                 escalate={"after": "1s", "to": {"group": "admins"}}),
        ]})
    bot, bob, carol = d.client("deploy-bot"), d.client("bob"), d.client("carol")
    t0 = time.monotonic()
    r_ok = bot.submit(intent="the happy path")
    r_den = bot.submit(intent="to be denied")
    r_can = bot.submit(intent="to be cancelled")
    r_exp = bot.submit(intent="to expire", ttl_seconds=1)
    r_esc = bot.submit({"kind": "sql", "command": ["psql", "-c", "VACUUM"]}, intent="to escalate")
    r_pdeny = bot.submit({"kind": "forbidden"}, intent="denied by policy")
    r_allow = bot.submit({"kind": "read"}, intent="allowed by policy")
    assert r_pdeny["status"] == "denied" and r_allow["status"] == "approved"
    ok(bob.approve(r_ok["id"]))
    ok(carol.approve(r_ok["id"]))
    ok(bot.claim(r_ok["id"], r_ok["digest"]))
    ok(bot.result(r_ok["id"], 0, "done"))
    ok(bob.deny(r_den["id"], "not today"))
    ok(bot.cancel(r_can["id"]))
    assert time.monotonic() - t0 < 7 * FAST
    wait_until(lambda: bot.show(r_exp["id"])["status"] == "expired", 20, 0.2, "the expiry")
    wait_until(lambda: bot.show(r_esc["id"])["decision"]["requirements"][0]["escalation"]["escalated"],
               20, 0.2, "the escalation")
    ok(carol.approve(r_esc["id"]))
    rids = [r["id"] for r in (r_ok, r_den, r_can, r_exp, r_esc, r_pdeny, r_allow)]

    evs = hooks.request_events(rids)
    want = [(e["request_id"], e["type"]) for e in evs]
    types = {t for _, t in want}
    for t in ("request.submitted", "request.reviewed", "request.claimed", "request.result",
              "request.cancelled", "request.expired", "request.escalated"):
        assert t in types, f"the scenario did not produce {t}: {sorted(types)}"
    for fake in (hooks.a, hooks.b):
        wait_all(fake, want)
    time.sleep(1.0)

    for fake, secret, other in ((hooks.a, hooks.secret_a, hooks.secret_b),
                                (hooks.b, hooks.secret_b, hooks.secret_a)):
        calls = fake.snapshot()
        got = events_of(fake, None, calls)
        assert not [x for x in got if x[1] and not x[1].startswith("request.")], \
            f"non-request events were sent as webhooks (notify.* must never be): {got}"
        assert Counter(events_of(fake, set(rids), calls)) == Counter(want), \
            f"each request event exactly once:\n got {sorted(got)}\nwant {sorted(want)}"
        by_rid = {}
        for c in fake.deliveries(calls):
            body = check_delivery(c, secret.encode(), other.encode())
            by_rid.setdefault(body["request"]["id"], []).append(body)
        for rid in rids:
            audit = [e for e in evs if e["request_id"] == rid]
            got_bodies = by_rid[rid]
            # Pair each delivery with its audit event: same type, the status that event left
            # the request in, and (about) the same time.
            free = list(audit)
            pairs = []
            for body in got_bodies:
                cands = [e for e in free if e["type"] == body["type"]
                         and body["request"]["status"] == status_after(e)
                         and abs(parse_time(body["at"]) - parse_time(e["at"])) < 1.0]
                assert cands, (f"{rid}: delivery {body['type']} at {body['at']} with status "
                               f"{body['request']['status']} matches no audit event: {audit}")
                ev = min(cands, key=lambda e: abs(parse_time(body["at"]) - parse_time(e["at"])))
                free.remove(ev)
                pairs.append((ev["seq"], body))
            # The last event's request is the request as the API shows it now.
            last = max(pairs, key=lambda x: x[0])[1]
            # ... less "viewer", which is about whoever asks the API, not the request.
            shown = {k: v for k, v in bot.show(rid).items() if k != "viewer"}
            assert last["request"] == shown, (last["request"], shown)


def status_after(ev):
    """The request's status right after audit event ev."""
    t, data = ev["type"], ev["data"]
    if t == "request.submitted":
        return data.get("status")
    if t in ("request.reviewed", "request.result"):
        return data.get("status")
    return {"request.claimed": "claimed", "request.cancelled": "cancelled",
            "request.expired": "expired", "request.escalated": "pending"}.get(t)


def test_webhook_receiver_down_then_kill9_and_restart_delivers_each_event_once(hooks):
    d = hooks.start(policy={"approvers": {"group": "sre", "count": 1}},
                    notify={"max_attempts": 1000}, only_a=True)
    bot, bob = d.client("deploy-bot"), d.client("bob")
    hooks.a.down()
    times, rids = [], []
    for i in range(3):
        r, t0 = None, time.monotonic()
        r = bot.submit(intent=f"outage {i}")
        times.append(time.monotonic() - t0)
        rids.append(r["id"])
    t0 = time.monotonic()
    ok(bob.approve(rids[0]))
    times.append(time.monotonic() - t0)
    t0 = time.monotonic()
    ok(bob.deny(rids[1]))
    times.append(time.monotonic() - t0)
    assert max(times) < FAST, f"the API waited on a dead receiver: {times}"
    time.sleep(1.5)
    d.restart()
    hooks.a.up()
    want = [(e["request_id"], e["type"]) for e in hooks.request_events(rids)]
    assert len(want) == 5, want
    wait_all(hooks.a, want)
    time.sleep(2.0)
    assert Counter(events_of(hooks.a, set(rids))) == Counter(want), \
        f"duplicates or losses after restart: {sorted(events_of(hooks.a, set(rids)))}"
    for c in hooks.a.deliveries():
        check_delivery(c, hooks.secret_a.encode(), b"wrong")
    # Each delivery is audited once.
    delivered = [e for e in hooks.audit() if e["type"] == "notify.delivered"
                 and e["data"].get("channel") == "webhook"]
    assert len(delivered) == len(want), delivered
    for e in delivered:
        assert e["data"].get("kind") == "event" and e["data"].get("request_id") in rids, e


def test_webhook_5xx_is_retried_then_given_up_after_max_attempts(hooks):
    hooks.a.fail_always(500)
    hooks.b.fail_next(2, 503)
    d = hooks.start(policy={"approvers": {"group": "sre", "count": 1}},
                    notify={"max_attempts": 3, "max_delay": "1s"})
    bot = d.client("deploy-bot")
    t0 = time.monotonic()
    rid = bot.submit(intent="nobody listens")["id"]
    assert time.monotonic() - t0 < FAST
    # b fails twice, then gets it exactly once.
    wait_all(hooks.b, [(rid, "request.submitted")])

    def failed():
        return [e for e in hooks.audit() if e["type"] == "notify.failed" and about(e, rid)] or None
    evs = wait_until(failed, 25, 0.2, "notify.failed for the dead receiver")
    assert len(evs) == 1, evs
    data = evs[0]["data"]
    assert data.get("channel") == "webhook" and data.get("kind") == "event", data
    assert data.get("request_id") == rid and data.get("target") not in (None, ""), evs[0]
    time.sleep(2.0)
    tries_a = [c for c in hooks.a.snapshot() if isinstance(c.params, dict)]
    assert len(tries_a) == 3 and all(c.status == 500 for c in tries_a), tries_a
    tries_b = [c for c in hooks.b.snapshot() if isinstance(c.params, dict)]
    assert [c.status for c in tries_b] == [503, 503, 200], tries_b
    # Each attempt is signed afresh and verifies.
    for c in tries_a:
        assert verify(hooks.secret_a.encode(), c.headers["signoff-signature"], c.raw)
    delivered = [e for e in hooks.audit() if e["type"] == "notify.delivered" and about(e, rid)]
    assert len(delivered) == 1 and delivered[0]["data"].get("channel") == "webhook", delivered
    assert bot.show(rid)["status"] == "pending"
