"""Slack, black-box: a real signoffd notifying a local fake of the Slack Web API (fakes.py),
and signed interactivity payloads posted to /v1/integrations/slack/interactions as Slack
sends them.

- Request signing: our signer against Slack's published example; the daemon refuses that
  example's exact bytes (its timestamp is from 2018), any changed byte, a wrong secret, a
  timestamp more than 5 minutes away, a missing header, and a replay.
- Who may click: the requester, the on-behalf-of human, the agent's owner, an unmapped Slack
  user (whatever username it claims) and an ineligible user are refused with 200, an ephemeral
  explanation and a review.refused audit event, the request unchanged. One person counts once
  (two clicks, or Slack and the API). Reviews made in Slack carry channel "slack".
- Messages: posted with the context to the rule's route or the default channel and DMed to
  eligible reviewers (never the requester, the on-behalf-of human or the owner); updated in
  place after approval, denial, cancellation, expiry and escalation.
- Durability: Slack down or answering 500 never slows the API; kill -9 and restart lose
  nothing and post nothing twice; 429 Retry-After is honoured; max_attempts ends in
  notify.failed.
"""

import json
import re
import secrets
import time
import urllib.parse

import pytest
import requests

from conftest import CAST, Principal, error_of, ok, parse_time, store_holds, wait_until
from fakes import FakeSlack, slack_signature, slack_verify

INTERACTIONS = "/v1/integrations/slack/interactions"
CHANNEL = "C0APPROVALS"
CONSOLE = "http://console.test/"
TEAM = "T0SIGNOFF"
SLACK_IDS = {"alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL", "dave": "U0DAVE",
             "erin": "U0ERIN"}
NOBODY = "U0NOBODY"  # a Slack user no principal maps to

# Slack's published example (../shared/REFERENCE.md).
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TS = 1531420618
VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    b"collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977008"
    b"85554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c4"
    b"47fce8b6703c")
VECTOR_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

FAST = 2.0       # seconds: the API must not wait on Slack
CLICK_FAST = 3.0  # seconds: Slack's limit for answering an interaction


def rule(name, when, decide, **more):
    r = {"name": name, "when": when, "decide": decide}
    r.update(more)
    return r


# --------------------------------------------------------------------------------------------
# Principals with Slack ids (same tokens as conftest's CAST, so Daemon.client() works).


class ChatPrincipal(Principal):
    def __init__(self, base, slack_user=None):  # noqa: no super().__init__: keep base's token
        self.__dict__.update(vars(base))
        self.slack_user = slack_user

    def config(self):
        entry = super().config()
        if self.slack_user:
            entry["slack_user"] = self.slack_user
        return entry


def chat_cast():
    return [ChatPrincipal(p, SLACK_IDS.get(p.id)) for p in CAST.values()]


# --------------------------------------------------------------------------------------------
# Interactivity payloads, as Slack sends them.


def button(post, action_id):
    """(block_id, element) of the button `action_id` in a posted message's blocks."""
    for b in (post.params or {}).get("blocks") or []:
        if isinstance(b, dict) and b.get("type") == "actions":
            for e in b.get("elements") or []:
                if isinstance(e, dict) and e.get("action_id") == action_id:
                    return b.get("block_id"), e
    return None, None


def interaction_body(user_id, action_id, value, channel, message_ts, block_id=None,
                     username=None, response_url="https://hooks.slack.com/actions/x"):
    now = time.time()
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": username or user_id.lower(),
                 "name": username or user_id.lower(), "team_id": TEAM},
        "api_app_id": "A0SIGNOFF",
        "token": "legacy-verification-token-not-used",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": False},
        "trigger_id": f"{int(now)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}",
        "team": {"id": TEAM, "domain": "signoff-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "approvals"},
        "message": {"type": "message", "ts": message_ts, "text": "A review is waiting"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": block_id or "blk_" + secrets.token_hex(3),
                     "value": value, "type": "button", "action_ts": f"{now:.6f}",
                     "text": {"type": "plain_text", "text": "Approve", "emoji": True}}],
    }
    # Slack form-encodes with '+' for spaces; json.dumps' ", " separators put spaces in.
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


class Slack:
    """One test's Slack world: the fake Web API, the secrets, the daemon, and clicks."""

    def __init__(self, start_daemon, tmp_path, monkeypatch):
        self._start_daemon = start_daemon
        self.tmp = tmp_path
        self.mp = monkeypatch
        self.token = "xoxb-" + secrets.token_hex(12)
        self.secret = secrets.token_hex(16)
        self.fake = FakeSlack(self.token)
        self.d = None

    def start(self, policy=None, slack=None, notify=None, via="env"):
        if via == "env":
            self.mp.setenv("SIGNOFF_TEST_SLACK_TOKEN", self.token)
            self.mp.setenv("SIGNOFF_TEST_SLACK_SECRET", self.secret)
            s = {"bot_token_env": "SIGNOFF_TEST_SLACK_TOKEN",
                 "signing_secret_env": "SIGNOFF_TEST_SLACK_SECRET"}
        else:
            # Written as `echo SECRET > FILE` would: with a trailing newline, which is not part
            # of the secret.
            tok, sec = self.tmp / "slack-bot-token", self.tmp / "slack-signing-secret"
            tok.write_text(self.token + "\n")
            sec.write_text(self.secret + "\n")
            tok.chmod(0o600)
            sec.chmod(0o600)
            s = {"bot_token_file": str(tok), "signing_secret_file": str(sec)}
        s.update({"api_url": self.fake.api_url, "channel": CHANNEL, "dm_reviewers": True})
        s.update(slack or {})
        n = {"console_url": CONSOLE, "max_attempts": 10, "max_delay": "2s", "slack": s}
        n.update(notify or {})
        self.d = self._start_daemon(policy=policy, principals=chat_cast(), extra={"notify": n})
        return self.d

    def client(self, name):
        return self.d.client(name)

    @property
    def auditor(self):
        return self.d.client("erin")

    # Outbound --------------------------------------------------------------------------------

    def wait_posts(self, rid, n, timeout=20.0):
        """Wait for n successful posts about rid; return them (keyed by requested channel)."""
        self.fake.wait_for(lambda calls: len(self.fake.posts(rid, calls)) >= n, timeout,
                           f"{n} chat.postMessage about {rid}")
        return {p.params["channel"]: p for p in self.fake.posts(rid)}

    def wait_updated(self, posts, *words, final=False, timeout=20.0):
        """Wait until every message in posts has an update that says all `words` (a tuple is
        alternatives; case-insensitive, in its text and blocks); return that update of each.

        For a final outcome (final=True) the update must also have no buttons left; otherwise
        each word must be news: said more often than in the original message."""
        def said(call):
            p = call.params or {}
            return json.dumps([p.get("text"), p.get("blocks")], ensure_ascii=False).lower()

        def matches(call, post):
            if final and has_buttons(call):
                return False
            now, before = said(call), said(post)
            for w in words:
                alts = [a.lower() for a in (w if isinstance(w, tuple) else (w,))]
                if final and not any(a in now for a in alts):
                    return False
                if not final and not any(now.count(a) > before.count(a) for a in alts):
                    return False
            return True

        def done(calls):
            last = {}
            for ch, p in posts.items():
                ups = [u for u in self.fake.updates(p, calls) if matches(u, p)]
                if not ups:
                    return None
                last[ch] = ups[-1]
            return last
        return self.fake.wait_for(
            done, timeout, f"chat.update of {sorted(posts)} saying {words}"
            + (" without buttons" if final else ""))

    def final_updates(self, posts, *words, settle=0.5):
        """A decided request: every message updated to say so without buttons, and no later
        update brings the pending message back."""
        got = self.wait_updated(posts, *words, final=True)
        time.sleep(settle)
        for ch, p in posts.items():
            ups = self.fake.updates(p)
            assert ups[-1] is got[ch], f"{ch}: a later update replaced the outcome: {ups[-1]}"
        return got

    # Inbound ---------------------------------------------------------------------------------

    def signed_headers(self, body, ts=None, secret=None):
        ts = int(time.time()) if ts is None else ts
        return {"Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": str(ts),
                "X-Slack-Signature": slack_signature(secret or self.secret, ts, body)}

    def send(self, body, headers):
        t0 = time.monotonic()
        r = requests.post(self.d.url + INTERACTIONS, data=body, headers=headers, timeout=30)
        r.elapsed_s = time.monotonic() - t0
        return r

    def click_body(self, post, user, action, username=None, value=None):
        """The body Slack sends when Slack user `user` clicks `action` on the message `post`."""
        block_id, elem = button(post, action)
        assert elem is not None, f"no {action} button in the message: {post.params}"
        return interaction_body(user, action, elem.get("value") if value is None else value,
                                post.answer["channel"], post.answer["ts"], block_id, username,
                                response_url=f"http://127.0.0.1:{self.fake.port}/actions/T/1/x")

    def click(self, post, user, action="signoff_approve", **kw):
        body = self.click_body(post, user, action, **kw)
        r = self.send(body, self.signed_headers(body))
        assert r.elapsed_s < CLICK_FAST, f"the click took {r.elapsed_s:.2f}s to answer"
        return r

    def expect_refused(self, post, user, action="signoff_approve", rid=None, who=None, **kw):
        """A validly signed click that must be refused: 200, an ephemeral explanation to the
        clicker in that channel, a review.refused audit event, and the request unchanged."""
        rid = rid or button(post, action)[1]["value"]
        auditor = self.auditor
        before = auditor.show(rid) if rid.startswith("req_") and kw.get("value") is None else None
        n_eph = len(self.fake.ephemerals(user))
        n_ref = len([e for e in auditor.audit_events() if e["type"] == "review.refused"])
        r = self.click(post, user, action, **kw)
        assert r.status_code == 200, f"refused click: expected 200, got {r.status_code}: {r.text}"
        eph = self.fake.wait_for(
            lambda calls: self.fake.ephemerals(user, calls)[n_eph:], 15,
            f"chat.postEphemeral to {user}")[0]
        assert eph.params["channel"] == post.answer["channel"], eph.params
        assert isinstance(eph.params.get("text"), str) and eph.params["text"].strip(), eph.params
        assert eph.headers.get("authorization") == f"Bearer {self.token}"

        def refused_events():
            evs = [e for e in auditor.audit_events() if e["type"] == "review.refused"]
            return evs[n_ref:] or None
        evs = wait_until(refused_events, 15, 0.1, "a review.refused audit event")
        assert len(evs) == 1, f"one refused click, {len(evs)} review.refused events: {evs}"
        ev = evs[0]
        blob = json.dumps(ev)
        if kw.get("value") is None:
            assert ev["request_id"] == rid, ev
        assert (who or user) in blob, f"review.refused does not say who clicked ({who or user}): {ev}"
        if before is not None:
            after = auditor.show(rid)
            assert after["status"] == before["status"] and after["reviews"] == before["reviews"], \
                (before, after)
            assert after["decision"]["requirements"] == before["decision"]["requirements"]
        return eph, ev

    def events(self, type_, rid=None):
        return [e for e in self.auditor.audit_events()
                if e["type"] == type_ and (rid is None or about(e, rid))]


def about(ev, rid):
    """Is audit event ev about request rid (notify.* events name it in data.request_id)?"""
    return ev.get("request_id") == rid or (ev.get("data") or {}).get("request_id") == rid


@pytest.fixture
def slack(start_daemon, tmp_path, monkeypatch):
    s = Slack(start_daemon, tmp_path, monkeypatch)
    yield s
    s.fake.close()


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    value = fn(*args, **kw)
    elapsed = time.monotonic() - t0
    return value, elapsed


def has_buttons(call):
    return any(button(call, a)[1] is not None for a in ("signoff_approve", "signoff_deny"))


PROD_RULE = rule("prod-changes", 'action.environment == "production"', "review",
                 approvers={"group": "sre", "count": 2},
                 reason="Production changes need two reviewers from sre.")
INTENT = "restart after the config change in INC-4411"


# --------------------------------------------------------------------------------------------
# Request signing.


def test_our_signer_matches_slacks_published_example_and_fails_on_any_change():
    assert slack_signature(VECTOR_SECRET, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG
    assert slack_verify(VECTOR_SECRET, VECTOR_TS, VECTOR_BODY, VECTOR_SIG, now=VECTOR_TS + 299)
    # Any changed byte of the body, the timestamp or the secret breaks it.
    for i in range(len(VECTOR_BODY)):
        changed = VECTOR_BODY[:i] + bytes([VECTOR_BODY[i] ^ 0x01]) + VECTOR_BODY[i + 1:]
        assert not slack_verify(VECTOR_SECRET, VECTOR_TS, changed, VECTOR_SIG), i
    assert not slack_verify(VECTOR_SECRET, VECTOR_TS + 1, VECTOR_BODY, VECTOR_SIG)
    assert not slack_verify(VECTOR_SECRET[:-1] + "6", VECTOR_TS, VECTOR_BODY, VECTOR_SIG)
    assert not slack_verify(VECTOR_SECRET, VECTOR_TS, VECTOR_BODY + b"&", VECTOR_SIG)
    # More than 5 minutes away is refused whatever the signature.
    assert not slack_verify(VECTOR_SECRET, VECTOR_TS, VECTOR_BODY, VECTOR_SIG, now=VECTOR_TS + 301)
    assert not slack_verify(VECTOR_SECRET, VECTOR_TS, VECTOR_BODY, VECTOR_SIG, now=VECTOR_TS - 301)


def test_daemon_refuses_the_published_example_for_its_old_timestamp_only(slack):
    slack.secret = VECTOR_SECRET
    slack.start()
    r = slack.send(VECTOR_BODY, {"Content-Type": "application/x-www-form-urlencoded",
                                 "X-Slack-Request-Timestamp": str(VECTOR_TS),
                                 "X-Slack-Signature": VECTOR_SIG})
    error_of(r, 401)
    # The same bytes signed now with the same secret pass the signature check (it is a slash
    # command, not a click, so the daemon may refuse what it says, but not with 401).
    r = slack.send(VECTOR_BODY, slack.signed_headers(VECTOR_BODY))
    assert r.status_code != 401, f"a fresh valid signature was refused: {r.status_code} {r.text}"
    assert r.status_code < 500, f"{r.status_code} {r.text}"


def test_daemon_checks_the_signature_byte_for_byte_and_refuses_old_and_replayed(slack):
    d = slack.start(policy={"approvers": {"group": "sre", "count": 1}})
    bot, bob = d.client("deploy-bot"), d.client("bob")
    rid = bot.submit(intent=INTENT)["id"]
    post = slack.wait_posts(rid, 1)[CHANNEL]
    body = slack.click_body(post, SLACK_IDS["bob"], "signoff_approve")
    now = int(time.time())

    def flipped(i):
        return body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]

    good = slack.signed_headers(body, now)
    attempts = []
    # One changed byte anywhere (first, inside the JSON, the user id, last).
    ix = body.index(b"U0BOB")
    for i in (0, 5, len(body) // 3, len(body) // 2, ix + 4, len(body) - 1):
        attempts.append((f"byte {i} changed", flipped(i), good))
    attempts.append(("U0BOB -> U0BOC", body.replace(b"U0BOB", b"U0BOC"), good))
    attempts.append(("a byte appended", body + b"&", good))
    attempts.append(("signed with another secret", body,
                     slack.signed_headers(body, now, secret=secrets.token_hex(16))))
    attempts.append(("timestamp header off by one", body,
                     dict(good, **{"X-Slack-Request-Timestamp": str(now + 1)})))
    attempts.append(("signature changed in one digit", body,
                     dict(good, **{"X-Slack-Signature": good["X-Slack-Signature"][:-1] + (
                         "0" if good["X-Slack-Signature"][-1] != "0" else "1")})))
    attempts.append(("v1= instead of v0=", body,
                     dict(good, **{"X-Slack-Signature": "v1=" + good["X-Slack-Signature"][3:]})))
    attempts.append(("no signature", body,
                     {k: v for k, v in good.items() if k != "X-Slack-Signature"}))
    attempts.append(("no timestamp", body,
                     {k: v for k, v in good.items() if k != "X-Slack-Request-Timestamp"}))
    attempts.append(("timestamp not a number", body,
                     dict(good, **{"X-Slack-Request-Timestamp": "soon"})))
    attempts.append(("6 minutes old, validly signed", body, slack.signed_headers(body, now - 360)))
    attempts.append(("6 minutes ahead, validly signed", body, slack.signed_headers(body, now + 360)))
    attempts.append(("bob's bearer token and no signature", body,
                     {"Content-Type": "application/x-www-form-urlencoded",
                      "Authorization": f"Bearer {CAST['bob'].token}"}))
    for what, b, h in attempts:
        r = slack.send(b, h)
        assert r.status_code == 401, f"{what}: expected 401, got {r.status_code}: {r.text[:300]}"
        error_of(r, 401)
    req = bob.show(rid)
    assert req["status"] == "pending" and req["reviews"] == [], req

    # Two minutes old is inside the window: accepted, and it approves.
    h = slack.signed_headers(body, now - 120)
    r = slack.send(body, h)
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    assert r.elapsed_s < CLICK_FAST
    wait_until(lambda: bob.show(rid)["status"] == "approved", 15, 0.1, "the Slack approval")
    # The same bytes and headers again: a replay, refused before anything else.
    r = slack.send(body, h)
    assert r.status_code == 401, f"replay: expected 401, got {r.status_code}: {r.text}"
    error_of(r, 401)
    assert len(slack.events("request.reviewed", rid)) == 1


# --------------------------------------------------------------------------------------------
# Messages.


def test_review_is_posted_with_its_context_to_the_channel_and_eligible_reviewers(slack):
    d = slack.start(policy={"rules": [PROD_RULE]})
    bot = d.client("deploy-bot")  # owned by alice, so on behalf of alice
    req, elapsed = timed(bot.submit, intent=INTENT, context={"ticket": "INC-4411"})
    assert elapsed < FAST
    rid = req["id"]
    posts = slack.wait_posts(rid, 3)
    time.sleep(0.5)
    posts = {p.params["channel"]: p for p in slack.fake.posts(rid)}
    # The channel, and a DM to each eligible human with a slack_user: bob and carol, not
    # alice (owner and on-behalf-of), dave (dba) or erin (auditors).
    assert sorted(posts) == sorted([CHANNEL, "U0BOB", "U0CAROL"]), sorted(posts)
    assert len(slack.fake.posts(rid)) == 3, "one message per target"
    for ch, p in posts.items():
        assert p.http_method == "POST" and p.path == "/api/chat.postMessage"
        assert p.headers.get("authorization") == f"Bearer {slack.token}"
        ctype = p.headers.get("content-type", "").replace(" ", "").lower()
        assert ctype == "application/json;charset=utf-8", p.headers.get("content-type")
        assert isinstance(p.params, dict), p.raw
        assert isinstance(p.params.get("text"), str) and p.params["text"].strip(), p.params
        blocks = p.params.get("blocks")
        assert isinstance(blocks, list) and blocks, p.params
        blob = json.dumps(blocks, ensure_ascii=False)
        low = blob.lower()
        for needle in ("kubectl", "rollout", "restart", "deploy/api", "production", "alice",
                       INTENT, "Production changes need two reviewers from sre.", "sre",
                       CONSOLE.rstrip("/")):
            assert needle.lower() in low, f"message to {ch} lacks {needle!r}: {blob}"
        assert "expir" in low, f"message to {ch} does not say when it expires: {blob}"
        for action in ("signoff_approve", "signoff_deny"):
            block_id, elem = button(p, action)
            assert elem is not None, f"no {action} button in the message to {ch}: {blob}"
            assert elem.get("type") == "button" and elem.get("value") == rid, elem
    # Nothing about this request went anywhere else, and no secret leaked.
    assert not slack.fake.attempts("chat.postMessage", rid, channel="U0ALICE")
    for text in (d.log_text(), d.config_path.read_text(),
                 json.dumps(slack.auditor.audit_events())):
        assert slack.token not in text and slack.secret not in text


def test_route_sends_to_the_rule_channel_and_dms_skip_requester_owner_and_on_behalf_of(slack):
    d = slack.start(policy={"rules": [
        rule("exports", 'action.kind == "mcp"', "review", approvers={"group": "sre", "count": 1},
             route={"slack": "C0PROD"}, reason="Exports leave the building."),
    ]})
    # report-bot is owned by carol and acts on behalf of alice: only bob may be DMed.
    action = {"kind": "mcp", "tool": "db.export", "arguments": {"table": "customers"},
              "resource": "db/customers", "environment": "production"}
    rid = d.client("report-bot").submit(action, intent="quarterly numbers",
                                        on_behalf_of="alice")["id"]
    posts = slack.wait_posts(rid, 2)
    # bob himself asks: the channel, and DMs to alice and carol, never to bob.
    rid2 = d.client("bob").submit(action, intent="my own export")["id"]
    posts2 = slack.wait_posts(rid2, 3)
    time.sleep(0.7)
    assert sorted(p.params["channel"] for p in slack.fake.posts(rid)) == ["C0PROD", "U0BOB"]
    assert sorted(p.params["channel"] for p in slack.fake.posts(rid2)) == \
        ["C0PROD", "U0ALICE", "U0CAROL"]
    assert not slack.fake.attempts("chat.postMessage", channel=CHANNEL), \
        "a routed review must not also go to the default channel"
    for p in list(posts.values()) + list(posts2.values()):
        blob = json.dumps(p.params["blocks"])
        assert "db.export" in blob and "db/customers" in blob, blob


def test_slack_approvals_count_with_channel_slack_and_every_message_is_updated(slack):
    d = slack.start(policy={"rules": [PROD_RULE]})
    bot, bob = d.client("deploy-bot"), d.client("bob")
    rid = bot.submit(intent=INTENT)["id"]
    posts = slack.wait_posts(rid, 3)

    r = slack.click(posts[CHANNEL], SLACK_IDS["bob"])
    assert r.status_code == 200, r.text
    wait_until(lambda: bob.show(rid)["reviews"], 15, 0.1, "bob's Slack review")
    req = bob.show(rid)
    assert req["status"] == "pending"
    assert req["decision"]["requirements"][0]["approved_by"] == ["bob"]
    # carol approves in her DM.
    r = slack.click(posts["U0CAROL"], SLACK_IDS["carol"])
    assert r.status_code == 200, r.text
    wait_until(lambda: bob.show(rid)["status"] == "approved", 15, 0.1, "carol's Slack approval")
    req = bob.show(rid)
    assert [(x["reviewer"], x["decision"], x["channel"]) for x in req["reviews"]] == \
        [("bob", "approve", "slack"), ("carol", "approve", "slack")], req["reviews"]
    assert sorted(req["decision"]["requirements"][0]["approved_by"]) == ["bob", "carol"]
    evs = slack.events("request.reviewed", rid)
    assert [(e["actor"], e["data"]["channel"]) for e in evs] == [("bob", "slack"), ("carol", "slack")]

    # Every message (channel and both DMs) shows the outcome and who decided, without buttons.
    last = slack.final_updates(posts, "approved", "carol")
    for ch, u in last.items():
        assert u.headers.get("authorization") == f"Bearer {slack.token}"
        assert isinstance(u.params.get("blocks"), list), u.params
    assert not slack.fake.failed_updates(), slack.fake.failed_updates()

    # Each delivery is audited.
    def delivered():
        evs = [e for e in slack.events("notify.delivered", rid) if e["data"].get("channel") == "slack"]
        kinds = {(e["data"].get("kind"), e["data"].get("target")) for e in evs}
        # An update is addressed to the channel Slack answered the post with (D... for a DM).
        want_posts = {("post", t) for t in posts}
        for t, p in posts.items():
            if not ({("update", t), ("update", p.answer["channel"])} & kinds):
                return None
        return evs if want_posts <= kinds else None
    try:
        evs = wait_until(delivered, 15, 0.2, "notify.delivered for each post and update")
    except AssertionError as e:
        got = [e2["data"] for e2 in slack.events("notify.delivered", rid)]
        raise AssertionError(f"{e}: one notify.delivered per message updated (target its "
                             f"channel) was expected; the audit log has {got}") from None
    for e in evs:
        assert e["data"].get("request_id") == rid and e["request_id"] == rid, e
        assert e["data"].get("attempts", 1) >= 1


def test_deny_in_slack_with_secrets_from_files(slack):
    d = slack.start(policy={"rules": [PROD_RULE]}, via="file")
    bot, bob = d.client("deploy-bot"), d.client("bob")
    rid = bot.submit(intent=INTENT)["id"]
    posts = slack.wait_posts(rid, 3)
    r = slack.click(posts["U0CAROL"], SLACK_IDS["carol"], "signoff_deny")
    assert r.status_code == 200, r.text
    wait_until(lambda: bob.show(rid)["status"] == "denied", 15, 0.1, "carol's Slack denial")
    req = bob.show(rid)
    assert [(x["reviewer"], x["decision"], x["channel"]) for x in req["reviews"]] == \
        [("carol", "deny", "slack")]
    slack.final_updates(posts, "denied", "carol")
    assert slack.token not in d.log_text() and slack.secret not in d.log_text()


def test_cancel_updates_every_message(slack):
    d = slack.start()
    bot = d.client("deploy-bot")
    rid = bot.submit(intent=INTENT)["id"]
    posts = slack.wait_posts(rid, 3)
    ok(bot.cancel(rid))
    slack.final_updates(posts, "cancel")


def test_expiry_updates_every_message_and_later_clicks_are_refused(slack):
    d = slack.start(policy={"ttl": "2s", "approvers": {"group": "sre", "count": 1}})
    bot = d.client("deploy-bot")
    rid = bot.submit(intent=INTENT)["id"]
    posts = slack.wait_posts(rid, 3)
    wait_until(lambda: bot.show(rid)["status"] == "expired", 20, 0.2, "the request to expire")
    slack.final_updates(posts, "expired")
    slack.expect_refused(posts["U0CAROL"], SLACK_IDS["carol"], who="carol")
    assert bot.show(rid)["status"] == "expired"


def test_escalation_updates_the_messages_and_the_escalated_group_can_approve(slack):
    d = slack.start(policy={"rules": [
        rule("db-changes", 'action.kind == "sql"', "review",
             approvers={"group": "dba", "count": 1},
             escalate={"after": "1s", "to": {"group": "admins"}}),
    ]})
    bot = d.client("deploy-bot")
    rid = bot.submit({"kind": "sql", "command": ["psql", "-c", "VACUUM"],
                      "environment": "production", "resource": "db/main"})["id"]
    posts = slack.wait_posts(rid, 2)  # the channel, and dave (dba)
    assert sorted(posts) == [CHANNEL, "U0DAVE"], sorted(posts)
    wait_until(lambda: bot.show(rid)["decision"]["requirements"][0]["escalation"]["escalated"],
               20, 0.2, "the escalation")
    last = slack.wait_updated(posts, "escalat")
    # Still pending: the buttons stay.
    for ch, u in last.items():
        assert has_buttons(u), f"the escalated (still pending) message in {ch} lost its buttons"
    # carol (admins, not dba) may now approve from the channel message.
    r = slack.click(posts[CHANNEL], SLACK_IDS["carol"])
    assert r.status_code == 200, r.text
    wait_until(lambda: bot.show(rid)["status"] == "approved", 15, 0.1, "carol's approval")
    assert bot.show(rid)["reviews"][0]["channel"] == "slack"
    slack.final_updates(posts, "approved", "carol")


# --------------------------------------------------------------------------------------------
# Who may click.


def test_refused_clicks_get_an_ephemeral_explanation_and_change_nothing(slack):
    d = slack.start(policy={"rules": [PROD_RULE]})
    # bob asks himself: DMs to alice and carol, not bob.
    rid1 = d.client("bob").submit(intent="my own change")["id"]
    posts1 = slack.wait_posts(rid1, 3)
    assert sorted(posts1) == [CHANNEL, "U0ALICE", "U0CAROL"]
    # deploy-bot (owned by alice) on behalf of bob.
    rid2 = d.client("deploy-bot").submit(intent=INTENT, on_behalf_of="bob")["id"]
    posts2 = slack.wait_posts(rid2, 2)
    assert sorted(posts2) == [CHANNEL, "U0CAROL"]

    slack.expect_refused(posts1[CHANNEL], SLACK_IDS["bob"], who="bob")       # the requester
    slack.expect_refused(posts2[CHANNEL], SLACK_IDS["alice"], who="alice")   # the agent's owner
    slack.expect_refused(posts2[CHANNEL], SLACK_IDS["bob"], who="bob")       # on behalf of
    slack.expect_refused(posts2[CHANNEL], SLACK_IDS["bob"], "signoff_deny", who="bob")
    slack.expect_refused(posts2[CHANNEL], SLACK_IDS["dave"], who="dave")     # not eligible (dba)
    # An unmapped Slack user, whatever name it claims, is nobody.
    slack.expect_refused(posts2[CHANNEL], NOBODY, username="bob", who=NOBODY)
    slack.expect_refused(posts2[CHANNEL], NOBODY, "signoff_deny", username="carol", who=NOBODY)
    for rid in (rid1, rid2):
        req = d.client("carol").show(rid)
        assert req["status"] == "pending" and req["reviews"] == [], req
    assert not slack.fake.attempts("chat.update", rid1) and not slack.fake.attempts("chat.update", rid2)
    # And an eligible click still works in the same daemon.
    assert slack.click(posts2["U0CAROL"], SLACK_IDS["carol"]).status_code == 200
    wait_until(lambda: d.client("carol").show(rid2)["reviews"], 15, 0.1, "carol's review")
    # A button naming a request that does not exist is refused the same way.
    slack.expect_refused(posts2[CHANNEL], SLACK_IDS["carol"], value="req_00000000000000000000000000",
                         who="carol")


def test_two_clicks_by_one_person_count_once(slack):
    d = slack.start(policy={"rules": [PROD_RULE]})
    bot, carol = d.client("deploy-bot"), d.client("carol")
    rid = bot.submit(intent=INTENT)["id"]
    posts = slack.wait_posts(rid, 3)
    assert slack.click(posts[CHANNEL], SLACK_IDS["bob"]).status_code == 200
    wait_until(lambda: carol.show(rid)["reviews"], 15, 0.1, "bob's first click")
    # The same button again, and the one in his DM: refused, counted once.
    slack.expect_refused(posts[CHANNEL], SLACK_IDS["bob"], who="bob")
    slack.expect_refused(posts["U0BOB"], SLACK_IDS["bob"], who="bob")
    req = carol.show(rid)
    assert req["status"] == "pending", "two clicks by bob met a two-person rule"
    assert req["decision"]["requirements"][0]["approved_by"] == ["bob"]
    assert len(req["reviews"]) == 1
    req = ok(carol.approve(rid))
    assert req["status"] == "approved"
    assert sorted(req["decision"]["requirements"][0]["approved_by"]) == ["bob", "carol"]
    assert [(x["reviewer"], x["channel"]) for x in req["reviews"]] == [("bob", "slack"), ("carol", "api")]
    # A click on a decided request is refused too.
    slack.expect_refused(posts["U0CAROL"], SLACK_IDS["carol"], who="carol")


def test_slack_and_api_by_the_same_person_count_once(slack):
    d = slack.start(policy={"rules": [PROD_RULE]})
    bot, bob = d.client("deploy-bot"), d.client("bob")
    # API first, then Slack.
    rid1 = bot.submit(intent=INTENT)["id"]
    posts1 = slack.wait_posts(rid1, 3)
    ok(bob.approve(rid1))
    slack.expect_refused(posts1[CHANNEL], SLACK_IDS["bob"], who="bob")
    req = bob.show(rid1)
    assert req["status"] == "pending" and len(req["reviews"]) == 1
    assert req["reviews"][0]["channel"] == "api"
    # Slack first, then the API.
    rid2 = bot.submit(intent=INTENT)["id"]
    posts2 = slack.wait_posts(rid2, 3)
    assert slack.click(posts2["U0BOB"], SLACK_IDS["bob"]).status_code == 200
    wait_until(lambda: bob.show(rid2)["reviews"], 15, 0.1, "bob's Slack review")
    error_of(bob.approve(rid2), 409, "already_reviewed")
    req = bob.show(rid2)
    assert req["status"] == "pending" and len(req["reviews"]) == 1
    assert req["reviews"][0]["channel"] == "slack"
    assert req["decision"]["requirements"][0]["approved_by"] == ["bob"]


# --------------------------------------------------------------------------------------------
# Durability.


def _one_post_per_target(fake, rid, targets):
    posts = fake.posts(rid)
    chans = sorted(p.params["channel"] for p in posts)
    assert chans == sorted(targets), f"{rid}: posts to {chans}, expected one each to {sorted(targets)}"


def test_slack_down_then_kill9_and_restart_delivers_everything_once(slack):
    d = slack.start(policy={"rules": [PROD_RULE]},
                    notify={"max_delay": "1s", "max_attempts": 1000})
    bot, bob, carol = d.client("deploy-bot"), d.client("bob"), d.client("carol")
    targets = [CHANNEL, "U0BOB", "U0CAROL"]

    # E is fully delivered (and audited) before Slack goes away.
    e_id = bot.submit(intent="before the outage")["id"]
    slack.wait_posts(e_id, 3)
    wait_until(lambda: len([e for e in slack.events("notify.delivered", e_id)
                            if e["data"].get("kind") == "post"]) >= 3, 15, 0.2,
               "E's posts to be audited as delivered")

    slack.fake.down()
    ids, slow = {}, []
    for name in ("A", "B", "C", "D"):
        r, t = timed(bot.submit, intent=f"during the outage {name}")
        ids[name] = r["id"]
        slow.append((f"submit {name}", t))
    for who, verb, name in ((bob, "approve", "B"), (carol, "approve", "B"), (bob, "deny", "C")):
        r, t = timed(getattr(who, verb), ids[name])
        ok(r)
        slow.append((f"{who.name} {verb} {name}", t))
    r, t = timed(bot.cancel, ids["D"])
    ok(r)
    slow.append(("cancel D", t))
    assert all(t < FAST for _, t in slow), f"the API waited on a dead Slack: {slow}"
    assert bob.show(ids["B"])["status"] == "approved"
    time.sleep(1.5)  # let the worker fail a few attempts

    d.restart()  # kill -9, start on the same store
    slack.fake.up()
    posts = {n: slack.wait_posts(rid, 3) for n, rid in ids.items()}
    outcome = {"B": ("approved",), "C": ("denied",), "D": ("cancel",)}
    for n, words in outcome.items():
        slack.wait_updated(posts[n], *words, final=True)
    time.sleep(2.0)  # anything duplicated would have come by now

    calls = slack.fake.snapshot()
    for n, rid in list(ids.items()) + [("E", e_id)]:
        _one_post_per_target(slack.fake, rid, targets)
    assert not slack.fake.failed_updates(calls), \
        f"chat.update for messages that do not exist: {slack.fake.failed_updates(calls)}"
    for n in outcome:
        for ch, p in posts[n].items():
            assert slack.fake.updates(p, calls), f"{n}: the message in {ch} was not updated"
    assert not slack.fake.attempts("chat.update", e_id, calls=calls), "E never changed"
    # One notify.delivered per post, none twice.
    for rid in list(ids.values()) + [e_id]:
        evs = [(e["data"].get("kind"), e["data"].get("target")) for e in
               slack.events("notify.delivered", rid) if e["data"].get("kind") == "post"]
        assert sorted(evs) == sorted(("post", t) for t in targets), (rid, evs)


def test_slack_answering_500_does_not_slow_the_api_and_is_retried_with_backoff(slack):
    slack.fake.fail_always(500)
    d = slack.start(policy={"approvers": {"group": "sre", "count": 1}},
                    slack={"dm_reviewers": False}, notify={"max_delay": "1s"})
    bot, bob = d.client("deploy-bot"), d.client("bob")
    t_start = time.monotonic()
    rids, times = [], []
    for _ in range(3):
        r, t = timed(bot.submit, intent=INTENT)
        rids.append(r["id"])
        times.append(t)
    r, t = timed(bob.approve, rids[0])
    assert ok(r)["status"] == "approved"
    times.append(t)
    assert max(times) < FAST, f"the API waited on a failing Slack: {times}"
    slack.fake.wait_for(lambda calls: len(slack.fake.attempts("chat.postMessage", rids[0],
                                                                 calls=calls)) >= 2,
                        15, "a retry after a 500")
    time.sleep(max(0.0, 2.5 - (time.monotonic() - t_start)))
    hot = len(slack.fake.attempts("chat.postMessage", rids[0]))
    assert hot <= 12, f"{hot} attempts in ~2.5 s: that is a hot loop, not a backoff"
    slack.fake.heal()
    for rid in rids:
        slack.wait_posts(rid, 1)
    slack.wait_updated({CHANNEL: slack.fake.posts(rids[0])[0]}, "approved", "bob", final=True)
    time.sleep(1.0)
    for rid in rids:
        _one_post_per_target(slack.fake, rid, [CHANNEL])


def test_slack_429_retry_after_is_honoured(slack):
    slack.fake.fail_next(1, 429, retry_after=1, method="chat.postMessage")
    slack.fake.fail_next(1, 429, retry_after=2, method="chat.postMessage")
    d = slack.start(slack={"dm_reviewers": False}, notify={"max_delay": "2s"})
    rid = d.client("deploy-bot").submit(intent=INTENT)["id"]
    slack.wait_posts(rid, 1, timeout=20)
    tries = slack.fake.attempts("chat.postMessage", rid)
    assert [c.status for c in tries] == [429, 429, 200], tries
    gap1, gap2 = tries[1].t - tries[0].t, tries[2].t - tries[1].t
    assert gap1 >= 0.95, f"Retry-After: 1 not honoured: next attempt after {gap1:.3f}s"
    assert gap2 >= 1.95, f"Retry-After: 2 not honoured: next attempt after {gap2:.3f}s"


def test_slack_gives_up_after_max_attempts_audits_it_and_keeps_working(slack):
    slack.fake.fail_always(500)
    d = slack.start(slack={"dm_reviewers": False},
                    notify={"max_attempts": 3, "max_delay": "1s"})
    bot = d.client("deploy-bot")
    rid = bot.submit(intent=INTENT)["id"]

    def failed():
        return [e for e in slack.events("notify.failed", rid)] or None
    evs = wait_until(failed, 25, 0.2, "notify.failed after 3 attempts")
    assert len(evs) == 1, evs
    data = evs[0]["data"]
    assert data.get("channel") == "slack" and data.get("kind") == "post", data
    assert data.get("target") == CHANNEL and data.get("request_id") == rid, evs[0]
    time.sleep(2.5)
    tries = slack.fake.attempts("chat.postMessage", rid)
    assert len(tries) == 3, f"max_attempts 3, but {len(tries)} attempts: {tries}"
    assert not slack.events("notify.delivered", rid)
    assert bot.show(rid)["status"] == "pending", "a failed notification changes nothing"
    # The worker is not stuck: once Slack is back, the next request goes out.
    slack.fake.heal()
    rid2 = bot.submit(intent=INTENT)["id"]
    slack.wait_posts(rid2, 1)


def test_slack_ok_false_is_not_a_delivery(slack):
    # Slack reports most failures as HTTP 200 with ok: false.
    slack.fake.fail_always(200, body={"ok": False, "error": "channel_not_found"})
    d = slack.start(slack={"dm_reviewers": False},
                    notify={"max_attempts": 3, "max_delay": "1s"})
    rid = d.client("deploy-bot").submit(intent=INTENT)["id"]
    evs = wait_until(lambda: slack.events("notify.failed", rid) or None, 25, 0.2,
                     "notify.failed for a post Slack answered ok: false")
    assert "channel_not_found" in json.dumps(evs[0]["data"]), evs[0]
    time.sleep(1.5)
    assert 1 <= len(slack.fake.attempts("chat.postMessage", rid)) <= 3
    assert not slack.events("notify.delivered", rid), "ok: false was audited as delivered"


@pytest.mark.xfail(reason="at-least-once: a post in flight when signoffd is killed is sent "
                          "again after the restart (Slack's chat.postMessage has no "
                          "idempotency key); reported, not yet solved", strict=False)
def test_kill9_during_an_inflight_post_does_not_post_twice(slack):
    d = slack.start(slack={"dm_reviewers": False}, notify={"max_delay": "1s"})
    slack.fake.delay = 1.5  # Slack is slow: the post is received, its answer held
    rid = d.client("deploy-bot").submit(intent=INTENT)["id"]
    slack.fake.wait_for(lambda calls: True, 1)
    time.sleep(0.7)
    d.restart()
    slack.fake.delay = 0
    slack.wait_posts(rid, 1)
    time.sleep(2.5)
    _one_post_per_target(slack.fake, rid, [CHANNEL])


def test_open_in_the_console_sends_a_personal_one_time_sign_in_link(slack):
    """The message carries "Open in the console"; a click sends the clicker alone a link that
    signs that person in once, within minutes; it is useless to anyone a second time."""
    d = slack.start(policy={"rules": [PROD_RULE]})
    rid = d.client("deploy-bot").submit(intent=INTENT)["id"]
    post = slack.wait_posts(rid, 3)[CHANNEL]
    assert button(post, "signoff_console")[1] is not None, "no Open in the console button"

    n_eph = len(slack.fake.ephemerals(SLACK_IDS["bob"]))
    assert slack.click(post, SLACK_IDS["bob"], "signoff_console").status_code == 200
    eph = slack.fake.wait_for(
        lambda calls: slack.fake.ephemerals(SLACK_IDS["bob"], calls)[n_eph:], 15,
        "the sign-in link, privately to bob")[0]
    assert eph.params["user"] == SLACK_IDS["bob"] and eph.params["channel"] == CHANNEL
    m = re.search(re.escape(CONSOLE) + r"#/link/([0-9a-f]{64})/(req_[0-9A-Z]{26})", eph.params["text"])
    assert m and m.group(2) == rid, eph.params["text"]
    code = m.group(1)
    # The request's status is untouched by asking for a link.
    assert d.client("bob").show(rid)["reviews"] == []

    r = requests.post(d.url + "/v1/session", json={"link": code}, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["principal"]["id"] == "bob", r.json()
    cookie = r.cookies.get("signoff_session")
    assert cookie and "HttpOnly" in r.headers["Set-Cookie"]
    me = requests.get(d.url + "/v1/session", cookies={"signoff_session": cookie}, timeout=30)
    assert me.status_code == 200 and me.json()["principal"]["id"] == "bob"
    # Single use.
    again = requests.post(d.url + "/v1/session", json={"link": code}, timeout=30)
    assert again.status_code == 401, again.text
    # Audited: who asked, for which request, and the sign-in by link.
    issued = slack.events("session.link_issued", rid)
    assert len(issued) == 1 and issued[0]["actor"] == "bob", issued
    assert code not in json.dumps(slack.auditor.audit_events()), "the link's code is in the log"
    signed = [e for e in slack.auditor.audit_events() if e["type"] == "session.signed_in"]
    assert signed and signed[-1]["actor"] == "bob" and signed[-1]["data"]["via"] == "link"
    # Once delivered, the link is not kept at rest: neither the store nor its journal holds it
    # (under PostgreSQL: no row of the daemon's database).
    def code_at_rest():
        return store_holds(d.workdir, code)
    # The row is settled right after Slack answered; wait for that, bounded.
    wait_until(lambda: not code_at_rest(), 15, 0.2, "the delivered link to leave the store")
    # An unmapped Slack user gets no link, only the refusal.
    slack.expect_refused(post, NOBODY, "signoff_console", username="bob", who=NOBODY)


def test_sign_in_link_opens_the_request_in_a_real_browser(slack, tmp_path):
    import browser
    reason = browser.missing()
    if reason:
        pytest.skip(reason)
    d = slack.start(policy={"rules": [PROD_RULE]})
    rid = d.client("deploy-bot").submit(intent=INTENT)["id"]
    post = slack.wait_posts(rid, 3)[CHANNEL]
    n_eph = len(slack.fake.ephemerals(SLACK_IDS["carol"]))
    assert slack.click(post, SLACK_IDS["carol"], "signoff_console").status_code == 200
    eph = slack.fake.wait_for(
        lambda calls: slack.fake.ephemerals(SLACK_IDS["carol"], calls)[n_eph:], 15,
        "the sign-in link, privately to carol")[0]
    code = re.search(r"#/link/([0-9a-f]{64})/", eph.params["text"]).group(1)

    b = browser.Browser(d.url, "carol", tmp_path / "browser").start()
    try:
        b.open(f"/#/link/{code}/{rid}")
        b.wait(lambda: b.hash() == f"#/r/{rid}" and b.shown("request"),
               "the request page, signed in by the link")
        b.wait_text("whoami", lambda t: "carol" in t, "carol signed in")
        b.wait_text("request", lambda t: INTENT in t, "the request's intent")
        assert code not in b.js("return location.href + ' ' + history.length"), \
            "the link's code stayed in the address bar"
        assert b.usable("approve-button"), "carol may decide, so the buttons are there"
    finally:
        b.close()
    # The link is spent: using it again gets nothing.
    assert requests.post(d.url + "/v1/session", json={"link": code}, timeout=30).status_code == 401
