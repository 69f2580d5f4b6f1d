"""Several signoffd nodes on one PostgreSQL database, black-box.

Two or three signoffd processes share one database (`pg_database`, a fresh database on the
session's PostgreSQL server from `pg_server`) and one audit signing key file; each listens on
its own free port on 127.0.0.1. Any node must accept any call, and together they must behave
as one daemon:

- a long-poll, `signoff run` or `/v1/events` on one node learns of a change made on another
  (LISTEN/NOTIFY, with a periodic check as a safety net), well before its wait runs out;
- concurrent reviews of one request on two nodes make exactly one quorum (one person still
  counts once), and an approval racing a denial or a cancel has one outcome;
- concurrent claims on three nodes: exactly one wins; one idempotency key makes one request;
- after a mixed workload on three nodes the audit log is one chain, gap-free, identical from
  every node, and `signoff audit verify` passes; checkpoints signed by different nodes with the
  shared key have distinct sizes, sign the right roots and verify;
- the outbox is delivered once (the fake Slack counts posts and updates, the fake webhook
  receiver counts events), and expiries and escalations fire once;
- a key rotated on one node: no node signs with the old key after it, the log verifies, and
  a node restarted on the shared key file signs with the new one;
- a console session made on one node works on the others, and ends on all at sign-out;
- a signed Slack click accepted by one node is a replay on every other (401, nothing done).

These tests always use PostgreSQL (skipped, with the reason, when it is not installed),
whatever SIGNOFF_E2E_STORE says. The helpers here (Cluster, start_cluster, Load, the audit
checks) are also used by test_faults_pg.py.
"""

import hashlib
import json
import random
import re
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import (CAST, HTTP_TIMEOUT, Daemon, canonical_text, expect_error, finish_process,
                      make_config, ok, reap_process, run_cli, sample_action, spawn_cli,
                      wait_until)
from fakes import FakeSlack, FakeWebhook, slack_signature
from test_audit_log import all_roots, checkpoint_message, ed25519_verify, key_id, leaf_hash
from test_console import EventStream, request_event, sign_in, with_cookie
from test_slack import CHANNEL, SLACK_IDS, button, chat_cast, interaction_body

WAIT = 60           # seconds a long-poll asks to be held
WAKE_BOUND = 20.0   # seconds within which a waiter on one node must learn of another's change
SETTLE = 3.0        # seconds to let a duplicate (delivery, expiry, ...) show up if there is one
ROUNDS = 15         # races per test: each round is one chance for the nodes to collide
RUN_TIMEOUT = 90    # seconds for `signoff run` to finish once its request is decided

ONE_SRE = {"approvers": {"group": "sre", "count": 1}}
TWO_SRE = {"approvers": {"group": "sre", "count": 2}}
READS_ALLOWED = {"name": "reads", "when": 'action.kind == "read"', "decide": "allow"}


# --------------------------------------------------------------------------------------------
# Several nodes on one database.


class Cluster:
    """N signoffd processes with one store URL and one audit signing key file.

    Each node has its own directory (configuration, logs, archive dir) under `base`; the key
    lives in `base/shared/audit.key`. The first node to start creates the key; the others
    start after it and read the same file."""

    def __init__(self, base, store_url, n, policy=None, principals=None, audit=None, extra=None):
        self.base = Path(base)
        shared = self.base / "shared"
        shared.mkdir(parents=True, exist_ok=True)
        self.key_file = shared / "audit.key"
        self.store_url = store_url
        self.nodes = []
        for i in range(n):
            wd = self.base / f"node{i}"
            wd.mkdir(parents=True, exist_ok=True)
            aud = {"signing_key_file": str(self.key_file)}
            aud.update(audit or {})
            ext = {"store": {"url": store_url}, "audit": aud}
            ext.update(extra or {})
            self.nodes.append(Daemon(wd, make_config(wd, policy, None, principals, ext)))

    def start(self):
        for d in self.nodes:
            d.start()
        return self

    @property
    def urls(self):
        return [d.url for d in self.nodes]

    def stop_all(self):
        """Stop every node (SIGTERM, then SIGKILL); return the sanitizer problems found."""
        problems = []
        for d in self.nodes:
            d.stop()
            reports = d.sanitizer_reports()
            if reports:
                problems.append(f"{d.workdir}: sanitizer reported {reports}:\n"
                                f"{d.log_text()[-4000:]}")
        return problems


@pytest.fixture
def start_cluster(pg_database, tmp_path):
    """Factory: start_cluster(n, policy=..., audit=..., extra=..., store_url=...) -> a started
    Cluster on `store_url` (default: this test's fresh database on the session's server).
    Every node is stopped at teardown (before the database is dropped), and a sanitizer report
    in any node's log fails the test."""
    made = []

    def factory(n=2, store_url=None, **kw):
        c = Cluster(tmp_path / f"cluster{len(made)}", store_url or pg_database, n, **kw)
        made.append(c)
        return c.start()

    yield factory
    problems = []
    for c in made:
        problems += c.stop_all()
    if problems:
        pytest.fail("\n".join(problems))


# --------------------------------------------------------------------------------------------
# Small helpers.


def race(*calls, timeout=90):
    """Run the callables at the same moment (one thread each, released by a barrier);
    return their results in order. An exception in a call is raised here."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, fn):
        try:
            barrier.wait(timeout)
            results[i] = fn()
        except Exception as e:  # noqa: handed back to the test
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True)
               for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), f"a raced call did not finish within {timeout}s"
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


def answer(resp):
    """(status, error code or None, body) of an API answer."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    code = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
    return resp.status_code, code, body


def describe(resp):
    """A short line for a failure message: the status, and the request's status or the error."""
    status, code, body = answer(resp)
    if isinstance(body, dict) and code:
        return f"{status} {code} ({body['error'].get('message', '')[:120]})"
    if isinstance(body, dict) and "status" in body:
        return f"{status} status={body['status']}"
    return f"{status} {resp.text[:160]}"


def short(status, code, body):
    if code:
        return f"{status} {code}"
    if isinstance(body, dict) and "status" in body:
        return f"{status} status={body['status']}"
    return f"{status} {str(body)[:160]}"


def metric(daemon, name):
    text = requests.get(daemon.url + "/metrics", timeout=HTTP_TIMEOUT).text
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def audit_events(daemon):
    return daemon.client("erin").audit_events(limit=1000)


def check_chain(events):
    """One chain: seq 1..N without a gap, every prev_hash and hash recomputed here."""
    prev = "0" * 64
    for i, ev in enumerate(events):
        assert ev["seq"] == i + 1, \
            f"the audit log has a gap or a repeat: event #{i + 1} has seq {ev['seq']}"
        body = {k: v for k, v in ev.items() if k not in ("prev_hash", "hash")}
        h = hashlib.sha256(bytes.fromhex(prev) + canonical_text(body).encode()).hexdigest()
        assert ev["prev_hash"] == prev, \
            f"event {ev['seq']} does not follow event {ev['seq'] - 1}: the chain forked"
        assert ev["hash"] == h, f"event {ev['seq']}: its hash does not match its content"
        prev = h
    return events


def same_log_everywhere(nodes):
    """Every node serves the same chain (one may be ahead of another by events appended while
    they were read); return the longest, checked."""
    logs = [check_chain(audit_events(d)) for d in nodes]
    longest = max(logs, key=len)
    for d, log in zip(nodes, logs):
        assert [e["hash"] for e in log] == [e["hash"] for e in longest[:len(log)]], \
            f"node {d.workdir.name} serves another audit log than its peers"
    return longest


def cli_verify(daemon):
    """`signoff audit verify` against this node: exit 0 and its "ok:" line; and the daemon's
    own GET /v1/audit/verify."""
    r = run_cli(["audit", "verify"], daemon.url, CAST["erin"].token, daemon.workdir, timeout=180)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, f"signoff audit verify via {daemon.workdir.name} exited " \
                              f"{r.returncode}:\n{out[-3000:]}"
    assert out.startswith("ok:"), out
    v = ok(daemon.client("erin").get("/v1/audit/verify", timeout=180))
    assert v["ok"] is True, f"GET /v1/audit/verify via {daemon.workdir.name}: {v}"
    return out, v


def export(daemon):
    resp = daemon.client("erin").get("/v1/audit/export?format=jsonl", timeout=180)
    assert resp.status_code == 200, resp.text[:300]
    return [json.loads(line) for line in resp.text.splitlines() if line]


def check_checkpoints(daemon, key_ids=None):
    """The checkpoints of this node's export: one per size, in order, each over the Merkle root
    of the log's first SIZE events (as the log is now, its chain checked), each under one of
    `key_ids` (default: the node's current key). Returns them."""
    cps = [ln["checkpoint"] for ln in export(daemon) if "checkpoint" in ln]
    events = check_chain(audit_events(daemon))
    sizes = [cp["size"] for cp in cps]
    dups = sorted({s for s in sizes if sizes.count(s) > 1})
    assert not dups, f"several checkpoints signed for the same size (nodes signing at once): " \
                     f"sizes {dups} of {sizes}"
    assert sizes == sorted(sizes), f"checkpoint sizes out of order: {sizes}"
    roots = all_roots([leaf_hash(e["hash"]) for e in events])
    wrong = [cp["size"] for cp in cps if cp["size"] > len(events)
             or cp["root"] != roots[cp["size"]].hex()]
    assert not wrong, f"checkpoints whose root is not the Merkle root of the log's first SIZE " \
                      f"events (a node signed its own view of the log): {wrong}"
    if key_ids is None:
        key_ids = {ok(daemon.client("erin").get("/v1/audit/pubkey"))["key_id"]}
    others = sorted({cp["key_id"] for cp in cps} - set(key_ids))
    assert not others, f"checkpoints under keys other than {sorted(key_ids)}: {others}"
    return cps


def by_request(events, type_):
    out = {}
    for e in events:
        if e["type"] == type_:
            out.setdefault(e["request_id"], []).append(e)
    return out


def about(ev):
    return ev.get("request_id") or (ev.get("data") or {}).get("request_id")


# --------------------------------------------------------------------------------------------
# A bounded load that keeps a ledger of everything acknowledged.


class Ledger:
    """What the daemons acknowledged (a 2xx answer), per request, and everything odd."""

    def __init__(self):
        self.lock = threading.Lock()
        self.submitted = {}       # rid -> {"digest", "status", "key"}
        self.reviews = {}         # rid -> [(reviewer, decision)] answered 200
        self.claims = {}          # rid -> number of 200 answers to a claim
        self.runs = {}            # rid -> times the "agent" ran the action (after a 200 claim)
        self.results = {}         # rid -> exit code answered 200
        self.cancelled = set()    # rids whose cancel was answered 200
        self.denied_claims = {}   # rid -> codes of refused claims
        self.unexpected = []      # answers no contract allows here
        self.unavailable = 0      # 503 unavailable answers (fail closed)
        self.conn_errors = 0      # calls that found a node gone
        self.unknown = []         # (rid, op, "503"|"dropped"): an earlier try was done after all
        self.stories_done = 0
        self.stories_given_up = []

    def summary(self):
        return (f"{len(self.submitted)} submissions, {sum(self.claims.values())} claims and "
                f"{len(self.results)} results acknowledged; {self.unavailable} answers 503, "
                f"{self.conn_errors} calls found a node gone, {len(self.unknown)} outcomes "
                f"unknown {self.unknown[:8]}, {len(self.stories_given_up)} stories given up")

    def note(self, attr, *args):
        with self.lock:
            if attr == "unexpected":
                self.unexpected.append(args[0])
            elif attr == "unknown":
                self.unknown.append(args[0])
            else:
                setattr(self, attr, getattr(self, attr) + 1)


class GiveUp(Exception):
    pass


class Load:
    """`threads` threads, each running `stories` short request stories against the nodes in
    turn: submit (with an idempotency key), then review, cancel or claim on other nodes, then
    run (count) and report. Calls that find a node gone go to the next node; 503 answers are
    retried (if `tolerate_unavailable`, otherwise they are noted as unexpected) until the
    story's deadline. Stories by index: 0 allowed by policy (claimed by two nodes at once),
    1 and 2 approved, 3 denied, 4 cancelled."""

    def __init__(self, urls, threads=4, stories=50, tolerate_unavailable=False,
                 story_deadline=120.0, tag=None):
        self.urls = list(urls)
        self.threads = threads
        self.stories = stories
        self.tolerate = tolerate_unavailable
        self.story_deadline = story_deadline
        self.tag = tag or f"load-{random.randrange(1 << 30):x}"
        self.ledger = Ledger()
        self._threads = []
        self.tokens = {n: CAST[n].token for n in ("deploy-bot", "bob", "carol")}

    # Calls ----------------------------------------------------------------------------------

    def call(self, node, who, method, path, body, deadline):
        """One API call as `who`, starting on node index `node`, moving to the next node when
        one is gone and retrying 503s. Returns (status, error code, body, node index used,
        lost): `lost` says an earlier try of this call may have been done without its answer
        reaching us (a dropped connection or a 503), so a 409 may be that try's doing."""
        led = self.ledger
        i = node
        lost = None  # None, "dropped" (a connection lost) or "503" (the last try answered 503)
        while True:
            if time.monotonic() > deadline:
                raise GiveUp(f"{method} {path}: no answer before the story's deadline")
            url = self.urls[i % len(self.urls)]
            try:
                resp = requests.request(method, url + path, data=json.dumps(body) if body else None,
                                        headers={"Authorization": f"Bearer {self.tokens[who]}",
                                                 "Content-Type": "application/json"},
                                        timeout=HTTP_TIMEOUT)
            except requests.exceptions.Timeout:
                led.note("unexpected", f"{method} {path} on {url}: no answer within "
                                       f"{HTTP_TIMEOUT}s (a hang, not a refusal)")
                raise GiveUp("hang")
            except requests.exceptions.RequestException:
                # The node is gone (killed): the caller reconnects elsewhere. The call may or
                # may not have been done.
                led.note("conn_errors")
                lost = lost or "dropped"
                i += 1
                time.sleep(0.05)
                continue
            status, code, data = answer(resp)
            if status == 503 and code == "unavailable":
                led.note("unavailable")
                if not self.tolerate:
                    led.note("unexpected", f"{method} {path} on {url}: 503 unavailable without "
                                           f"any fault: {resp.text[:200]}")
                lost = "503"  # "nothing happened", unless the commit's answer was what was lost
                i += 1
                time.sleep(0.2)
                continue
            if status >= 500 or (status >= 400 and not isinstance(data, dict)):
                led.note("unexpected", f"{method} {path} on {url}: {status} {resp.text[:200]}")
                raise GiveUp(f"{status}")
            return status, code, data, i, lost

    # Stories --------------------------------------------------------------------------------

    def story(self, t, k):
        led = self.ledger
        kind = k % 5
        n = len(self.urls)
        node = (t + k) % n
        deadline = time.monotonic() + self.story_deadline
        key = f"{self.tag}-{t}-{k}"
        if kind == 0:
            action = {"kind": "read", "command": ["kubectl", "get", "pods"],
                      "resource": f"pods/{key}", "environment": "production"}
        else:
            action = sample_action(resource=f"deploy/{key}")
        status, code, req, node, lost = self.call(
            node, "deploy-bot", "POST", "/v1/requests",
            {"action": action, "intent": f"load {key}", "idempotency_key": key}, deadline)
        if status not in (200, 201) or (status == 200 and not lost):
            led.note("unexpected", f"submit {key}: {short(status, code, req)}")
            return
        rid = req["id"]
        want = "approved" if kind == 0 else "pending"
        if req["status"] != want:
            led.note("unexpected", f"submit {key}: status {req['status']}, expected {want}")
            return
        with led.lock:
            assert rid not in led.submitted or led.submitted[rid]["key"] == key
            led.submitted[rid] = {"digest": req["digest"], "status": req["status"], "key": key}

        if kind in (1, 2, 3):
            reviewer = "bob" if kind == 1 else "carol"
            decision = "deny" if kind == 3 else "approve"
            status, code, body, node, lost = self.call(
                node + 1, reviewer, "POST", f"/v1/requests/{rid}/reviews",
                {"decision": decision}, deadline)
            if status == 200:
                with led.lock:
                    led.reviews.setdefault(rid, []).append((reviewer, decision))
                if body["status"] != ("denied" if kind == 3 else "approved"):
                    led.note("unexpected", f"review {rid}: answered status {body['status']}")
            elif lost and status == 409 and code in ("already_reviewed", "not_pending"):
                led.note("unknown", (rid, "review", lost))  # an earlier try landed
            else:
                led.note("unexpected", f"review {rid}: {short(status, code, body)}")
                return
        elif kind == 4:
            status, code, body, node, lost = self.call(
                node + 1, "deploy-bot", "POST", f"/v1/requests/{rid}/cancel", {}, deadline)
            if status == 200:
                with led.lock:
                    led.cancelled.add(rid)
            elif not (lost and status == 409 and code == "not_pending"):
                led.note("unexpected", f"cancel {rid}: {short(status, code, body)}")
                return

        claim = {"digest": req["digest"]}
        if kind == 0:
            # Two claims of one grant on two nodes at once: at most one may win.
            answers = race(
                lambda: self.call(node + 1, "deploy-bot", "POST", f"/v1/requests/{rid}/claim",
                                  claim, deadline),
                lambda: self.call(node + 2, "deploy-bot", "POST", f"/v1/requests/{rid}/claim",
                                  claim, deadline))
        else:
            answers = [self.call(node + 1, "deploy-bot", "POST", f"/v1/requests/{rid}/claim",
                                 claim, deadline)]
        won = 0
        for status, code, body, _, lost in answers:
            if status == 200:
                won += 1
            elif status == 409:
                with led.lock:
                    led.denied_claims.setdefault(rid, []).append(code)
                if kind in (1, 2) and code == "already_claimed" and not lost and len(answers) == 1:
                    led.note("unexpected", f"claim {rid}: already_claimed on the first try")
                if kind in (3, 4) and code not in ("not_approved",):
                    led.note("unexpected", f"claim of a {'denied' if kind == 3 else 'cancelled'}"
                                           f" request {rid}: {status} {code}")
                if lost and code == "already_claimed" and len(answers) == 1:
                    led.note("unknown", (rid, "claim", lost))
            else:
                led.note("unexpected", f"claim {rid}: {short(status, code, body)}")
        with led.lock:
            led.claims[rid] = led.claims.get(rid, 0) + won
        if won != 1:
            if kind in (0, 1, 2) and won == 0 and not any(a[4] for a in answers):
                led.note("unexpected", f"claim {rid}: nobody won the claim of an approved request")
            return
        with led.lock:
            led.runs[rid] = led.runs.get(rid, 0) + 1  # the agent runs the action, once
        exit_code = k % 3
        status, code, body, node, lost = self.call(
            node + 2, "deploy-bot", "POST", f"/v1/requests/{rid}/result",
            {"exit_code": exit_code}, deadline)
        if status == 200:
            with led.lock:
                led.results[rid] = exit_code
        elif not (lost and status == 409):
            led.note("unexpected", f"result {rid}: {short(status, code, body)}")

    def _thread(self, t):
        for k in range(self.stories):
            try:
                self.story(t, k)
            except GiveUp as e:
                with self.ledger.lock:
                    self.ledger.stories_given_up.append(f"{self.tag}-{t}-{k}: {e}")
            except Exception as e:  # noqa: a bug in a story must not hang the test
                self.ledger.note("unexpected", f"story {t}-{k} raised {e!r}")
            with self.ledger.lock:
                self.ledger.stories_done += 1

    def start(self):
        for t in range(self.threads):
            th = threading.Thread(target=self._thread, args=(t,), daemon=True)
            th.start()
            self._threads.append(th)
        return self

    @property
    def total(self):
        return self.threads * self.stories

    def wait_done(self, fraction, timeout=300):
        target = int(self.total * fraction)
        wait_until(lambda: self.ledger.stories_done >= target, timeout, 0.05,
                   f"{target} of {self.total} load stories")

    def join(self, timeout=600):
        deadline = time.monotonic() + timeout
        for th in self._threads:
            th.join(max(0.1, deadline - time.monotonic()))
        alive = [th for th in self._threads if th.is_alive()]
        assert not alive, f"the load did not finish within {timeout}s " \
                          f"({self.ledger.stories_done} of {self.total} stories)"
        return self.ledger


def check_ledger(ledger, daemon, events, allow_given_up=False):
    """Everything acknowledged is there, nothing ran twice, and the audit log agrees.
    `daemon` is a live node; `events` the whole audit log (checked chain)."""
    led = ledger
    assert not led.unexpected, "answers no contract allows:\n" + "\n".join(led.unexpected[:30])
    if not allow_given_up:
        assert not led.stories_given_up, "stories that never got through:\n" + \
            "\n".join(led.stories_given_up[:20])
    assert led.submitted, "the load acknowledged no submission at all"
    twice = {rid: n for rid, n in led.runs.items() if n > 1}
    assert not twice, f"actions run more than once: {twice}"
    claimed_twice = {rid: n for rid, n in led.claims.items() if n > 1}
    assert not claimed_twice, f"grants claimed more than once (200 answers): {claimed_twice}"

    bot = daemon.client("erin")
    problems = []
    for rid, sub in led.submitted.items():
        r = bot.show_raw(rid)
        if r.status_code != 200:
            problems.append(f"{rid}: acknowledged submission, now {describe(r)}")
            continue
        req = r.json()
        if req["digest"] != sub["digest"]:
            problems.append(f"{rid}: digest changed")
        st = req["status"]
        got = [(rv["reviewer"], rv["decision"]) for rv in req["reviews"]]
        for rv in led.reviews.get(rid, []):
            if rv not in got:
                problems.append(f"{rid}: acknowledged review {rv} is missing: {got}")
        if any(d == "deny" for _, d in led.reviews.get(rid, [])) and st != "denied":
            problems.append(f"{rid}: acknowledged denial, status now {st}")
        if rid in led.cancelled and st != "cancelled":
            problems.append(f"{rid}: acknowledged cancel, status now {st}")
        if led.claims.get(rid) and st not in ("claimed", "succeeded", "failed"):
            problems.append(f"{rid}: acknowledged claim, status now {st}")
        if rid in led.results:
            want = "succeeded" if led.results[rid] == 0 else "failed"
            if st != want or (req.get("result") or {}).get("exit_code") != led.results[rid]:
                problems.append(f"{rid}: acknowledged result {led.results[rid]}, now {st} "
                                f"{req.get('result')}")
        if st in ("denied", "cancelled") and led.claims.get(rid):
            problems.append(f"{rid}: {st}, yet a claim was answered 200")
    assert not problems, "acknowledged changes lost or contradicted:\n" + "\n".join(problems[:30])

    # The audit log: one submission per idempotency key, at most one claim per request, and
    # every claim after an approval.
    submitted = by_request(events, "request.submitted")
    keys = {}
    for rid, evs in submitted.items():
        assert len(evs) == 1, f"{rid} was submitted {len(evs)} times: {[e['seq'] for e in evs]}"
        k = (evs[0]["data"] or {}).get("idempotency_key")
        if k:
            keys.setdefault(k, []).append(rid)
    dup_keys = {k: v for k, v in keys.items() if len(v) > 1}
    assert not dup_keys, f"one idempotency key made several requests: {dup_keys}"
    for rid in led.submitted:
        assert rid in submitted, f"acknowledged {rid} has no request.submitted event"
    claimed = by_request(events, "request.claimed")
    many = {rid: [e["seq"] for e in evs] for rid, evs in claimed.items() if len(evs) > 1}
    assert not many, f"grants claimed more than once in the audit log: {many}"
    for rid in led.claims:
        if led.claims[rid]:
            assert rid in claimed, f"acknowledged claim of {rid} has no request.claimed event"
    approved_at = {}
    for e in events:
        rid = e.get("request_id")
        st = (e.get("data") or {}).get("status")
        if e["type"] in ("request.submitted", "request.reviewed") and st == "approved":
            approved_at.setdefault(rid, e["seq"])
    for rid, evs in claimed.items():
        assert rid in approved_at and approved_at[rid] < evs[0]["seq"], \
            f"{rid} was claimed (event {evs[0]['seq']}) without an approval before it"
    final = by_request(events, "request.result")
    many = {rid: len(v) for rid, v in final.items() if len(v) > 1}
    assert not many, f"results recorded more than once: {many}"


# --------------------------------------------------------------------------------------------
# Any node serves any call.


def test_any_node_serves_any_call_and_all_share_one_key(start_cluster):
    c = start_cluster(3, policy=TWO_SRE)
    a, b, cc = c.nodes
    keys = [ok(d.client("deploy-bot").get("/v1/audit/pubkey")) for d in c.nodes]
    assert len({(k["key_id"], k["public_key"]) for k in keys}) == 1, \
        f"the nodes sign with different keys although they share one key file: {keys}"

    req = a.client("deploy-bot").submit()
    rid = req["id"]
    assert b.client("bob").show(rid)["status"] == "pending"
    assert rid in [r["id"] for r in cc.client("carol").list(status="pending")["requests"]]
    assert ok(b.client("bob").approve(rid))["status"] == "pending"
    expect_error(a.client("bob").approve(rid), 409, "already_reviewed")  # one person, any node
    assert ok(cc.client("carol").approve(rid))["status"] == "approved"
    assert ok(a.client("deploy-bot").claim(rid, req["digest"]))["status"] == "claimed"
    expect_error(b.client("deploy-bot").claim(rid, req["digest"]), 409, "already_claimed")
    expect_error(cc.client("deploy-bot").claim(rid, req["digest"]), 409, "already_claimed")
    assert ok(cc.client("deploy-bot").result(rid, 0))["status"] == "succeeded"
    for d in c.nodes:
        got = d.client("erin").show(rid)
        assert got["status"] == "succeeded" and [r["reviewer"] for r in got["reviews"]] == \
            ["bob", "carol"], got

    events = same_log_everywhere(c.nodes)
    started = [e for e in events if e["type"] == "daemon.started"]
    assert len(started) == 3, f"three nodes started, {len(started)} daemon.started events"
    types = [e["type"] for e in events if e["request_id"] == rid]
    assert types == ["request.submitted", "request.reviewed", "request.reviewed",
                     "request.claimed", "request.result"], types


# --------------------------------------------------------------------------------------------
# Wake-ups across nodes.


def wait_for_waiters(daemon, n, what):
    wait_until(lambda: (metric(daemon, "signoff_waiters") or 0) >= n, 30, 0.05,
               f"{n} long-poll waiter(s) suspended on {daemon.workdir.name} ({what})")


class Waiter(threading.Thread):
    """GET /v1/requests/{id}?wait=WAIT on one node; notes when and with what it returned."""

    def __init__(self, daemon, who, rid, wait=WAIT):
        super().__init__(daemon=True)
        self.daemon_node, self.who, self.rid, self.wait = daemon, who, rid, wait
        self.status = self.answered_at = self.error = None

    def run(self):
        try:
            r = self.daemon_node.client(self.who).show_raw(self.rid, wait=self.wait,
                                                           timeout=self.wait + 60)
            self.answered_at = time.monotonic()
            self.status = r.json()["status"] if r.status_code == 200 else describe(r)
        except Exception as e:  # noqa
            self.error = repr(e)


def test_long_poll_on_one_node_wakes_when_another_node_decides(start_cluster):
    c = start_cluster(3, policy=ONE_SRE)
    a, b, cc = c.nodes
    bot = a.client("deploy-bot")
    ids = {what: bot.submit(sample_action(resource=f"deploy/wake-{what}"))["id"]
           for what in ("approve", "deny", "cancel")}
    waiters = []
    for what, rid in ids.items():
        waiters.append((what, Waiter(a, "deploy-bot", rid)))
        waiters.append((what, Waiter(cc, "bob", rid)))
    for _, w in waiters:
        w.start()
    wait_for_waiters(a, 3, "the requester's")
    wait_for_waiters(cc, 3, "a reviewer's")

    decided_at = time.monotonic()
    assert ok(b.client("carol").approve(ids["approve"]))["status"] == "approved"
    assert ok(b.client("carol").deny(ids["deny"]))["status"] == "denied"
    assert ok(b.client("deploy-bot").cancel(ids["cancel"]))["status"] == "cancelled"
    want = {"approve": "approved", "deny": "denied", "cancel": "cancelled"}
    late = []
    for what, w in waiters:
        w.join(WAIT + 90)
        assert w.error is None, f"waiter on {w.daemon_node.workdir.name}: {w.error}"
        assert w.status == want[what], \
            f"waiter on {w.daemon_node.workdir.name} for the {what} got {w.status}"
        took = w.answered_at - decided_at
        if took > WAKE_BOUND:
            late.append(f"{what} on {w.daemon_node.workdir.name}: {took:.1f}s")
    assert not late, (f"long-polls learned of a change made on another node only after "
                      f"{WAKE_BOUND}s or more (their wait is {WAIT}s): no cross-node wake-up: "
                      f"{late}")


def test_signoff_run_on_one_node_runs_once_when_two_other_nodes_approve(start_cluster, tmp_path):
    c = start_cluster(3, policy=TWO_SRE)
    a, b, cc = c.nodes
    marker = tmp_path / "marker"
    cmd = ["/bin/sh", "-c", 'echo ran >> "$1"', "sh", str(marker)]
    proc = spawn_cli(["run", "--env", "production", "--why", "cluster", "--", *cmd], a.url,
                     CAST["deploy-bot"].token, tmp_path)
    try:
        def pending():
            assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
            for r in b.client("bob").list(status="pending")["requests"]:
                if r["action"].get("command") == cmd:
                    return r
        req = wait_until(pending, 30, 0.1, "signoff run's request, seen on another node")
        ok(b.client("bob").approve(req["id"]))
        time.sleep(0.5)
        assert not marker.exists(), "ran after one approval of a two-person rule"
        ok(cc.client("carol").approve(req["id"]))
        rc, out, err = finish_process(proc, RUN_TIMEOUT, "signoff run")
    finally:
        reap_process(proc)
    assert rc == 0, err
    assert marker.read_text().splitlines() == ["ran"], "the command must run exactly once"
    assert cc.client("deploy-bot").show(req["id"])["status"] == "succeeded"


def test_event_stream_on_one_node_reports_changes_made_on_others(start_cluster):
    c = start_cluster(3, policy=ONE_SRE)
    a, b, cc = c.nodes
    stream = EventStream(a.url, {"Authorization": f"Bearer {CAST['bob'].token}"})
    try:
        assert stream.status == 200, f"/v1/events answered {stream.status}"
        rid = b.client("deploy-bot").submit()["id"]
        stream.wait_for(request_event(rid, "pending"),
                        f"'request' {rid} pending (submitted on another node)", WAKE_BOUND)
        ok(cc.client("carol").approve(rid))
        stream.wait_for(request_event(rid, "approved"),
                        f"'request' {rid} approved (on a third node)", WAKE_BOUND)
    finally:
        stream.close()


# --------------------------------------------------------------------------------------------
# Races between nodes.


@pytest.mark.parametrize("count", [1, 2])
def test_concurrent_approvals_on_two_nodes_make_exactly_one_quorum(start_cluster, count):
    c = start_cluster(2, policy={"approvers": {"group": "sre", "count": count}})
    a, b = c.nodes
    bot = a.client("deploy-bot")
    reqs = [bot.submit(sample_action(resource=f"deploy/q{count}-{i}")) for i in range(ROUNDS)]
    problems = []
    for req in reqs:
        rid = req["id"]
        ra, rb = race(lambda: a.client("bob").approve(rid), lambda: b.client("carol").approve(rid))
        got = sorted([answer(ra)[:2], answer(rb)[:2]], key=lambda x: (x[0], x[1] or ""))
        final = a.client("erin").show(rid)
        reviewers = sorted(r["reviewer"] for r in final["reviews"])
        if count == 2:
            st = sorted(r.json().get("status", "?") for r in (ra, rb) if r.status_code == 200)
            if got != [(200, None), (200, None)] or st != ["approved", "pending"]:
                problems.append(f"{rid}: answers {describe(ra)} | {describe(rb)}")
            if final["status"] != "approved" or reviewers != ["bob", "carol"]:
                problems.append(f"{rid}: two approvals of two people acknowledged, now "
                                f"{final['status']} with reviews by {reviewers}")
        else:
            if got != [(200, None), (409, "not_pending")]:
                problems.append(f"{rid}: expected one 200 and one 409 not_pending, got "
                                f"{describe(ra)} | {describe(rb)}")
            winner = ["bob", "carol"][0 if ra.status_code == 200 else 1]
            if final["status"] != "approved" or reviewers != [winner]:
                problems.append(f"{rid}: {winner} won, now {final['status']} with reviews by "
                                f"{reviewers}")
        # The grant is one grant: claims on both nodes at once, one wins.
        ca, cb = race(lambda: a.client("deploy-bot").claim(rid, req["digest"]),
                      lambda: b.client("deploy-bot").claim(rid, req["digest"]))
        if sorted([answer(ca)[:2], answer(cb)[:2]], key=lambda x: (x[0], x[1] or "")) != \
                [(200, None), (409, "already_claimed")]:
            problems.append(f"{rid}: claims answered {describe(ca)} | {describe(cb)}")
    events = same_log_everywhere(c.nodes)
    reviewed = by_request(events, "request.reviewed")
    claimed = by_request(events, "request.claimed")
    for req in reqs:
        evs = reviewed.get(req["id"], [])
        quorums = [e for e in evs if e["data"].get("status") == "approved"]
        if len(evs) != count or len(quorums) != 1:
            problems.append(f"{req['id']}: {len(evs)} request.reviewed events, {len(quorums)} "
                            f"of them reaching the quorum (expected {count} and 1)")
        if len(claimed.get(req["id"], [])) != 1:
            problems.append(f"{req['id']}: {len(claimed.get(req['id'], []))} request.claimed")
    assert not problems, "\n".join(problems)
    cli_verify(a)


def test_one_person_approving_on_two_nodes_at_once_counts_once(start_cluster):
    c = start_cluster(2, policy=TWO_SRE)
    a, b = c.nodes
    bot = a.client("deploy-bot")
    problems = []
    for i in range(ROUNDS):
        rid = bot.submit(sample_action(resource=f"deploy/once-{i}"))["id"]
        ra, rb = race(lambda: a.client("bob").approve(rid), lambda: b.client("bob").approve(rid))
        got = sorted([answer(ra)[:2], answer(rb)[:2]], key=lambda x: (x[0], x[1] or ""))
        final = b.client("erin").show(rid)
        if got != [(200, None), (409, "already_reviewed")]:
            problems.append(f"{rid}: bob twice at once answered {describe(ra)} | {describe(rb)}")
        if final["status"] != "pending" or [r["reviewer"] for r in final["reviews"]] != ["bob"]:
            problems.append(f"{rid}: one person on two nodes made it {final['status']} with "
                            f"reviews {final['reviews']}")
    assert not problems, "\n".join(problems)


def test_approval_racing_a_denial_on_two_nodes_has_one_outcome(start_cluster):
    c = start_cluster(2, policy=ONE_SRE)
    a, b = c.nodes
    bot = a.client("deploy-bot")
    problems = []
    for i in range(ROUNDS):
        req = bot.submit(sample_action(resource=f"deploy/duel-{i}"))
        rid = req["id"]
        ra, rb = race(lambda: a.client("bob").approve(rid), lambda: b.client("carol").deny(rid))
        got = sorted([answer(ra)[:2], answer(rb)[:2]], key=lambda x: (x[0], x[1] or ""))
        if got != [(200, None), (409, "not_pending")]:
            problems.append(f"{rid}: approve | deny answered {describe(ra)} | {describe(rb)}")
            continue
        want = "approved" if ra.status_code == 200 else "denied"
        final = b.client("erin").show(rid)
        if final["status"] != want or len(final["reviews"]) != 1:
            problems.append(f"{rid}: the {want} won, now {final['status']} with {final['reviews']}")
        cl = b.client("deploy-bot").claim(rid, req["digest"])
        if want == "denied" and cl.status_code != 409:
            problems.append(f"{rid}: denied, yet its claim answered {describe(cl)}")
        if want == "approved" and cl.status_code != 200:
            problems.append(f"{rid}: approved, yet its claim answered {describe(cl)}")
    assert not problems, "\n".join(problems)


def test_cancel_racing_an_approval_on_two_nodes_has_one_outcome(start_cluster):
    c = start_cluster(2, policy=ONE_SRE)
    a, b = c.nodes
    problems = []
    for i in range(ROUNDS):
        req = a.client("deploy-bot").submit(sample_action(resource=f"deploy/cancel-{i}"))
        rid = req["id"]
        ra, rb = race(lambda: a.client("bob").approve(rid),
                      lambda: b.client("deploy-bot").cancel(rid))
        got = sorted([answer(ra)[:2], answer(rb)[:2]], key=lambda x: (x[0], x[1] or ""))
        if got != [(200, None), (409, "not_pending")]:
            problems.append(f"{rid}: approve | cancel answered {describe(ra)} | {describe(rb)}")
            continue
        want = "approved" if ra.status_code == 200 else "cancelled"
        final = b.client("erin").show(rid)
        if final["status"] != want:
            problems.append(f"{rid}: the {want} won, now {final['status']}")
        cl = a.client("deploy-bot").claim(rid, req["digest"])
        if (cl.status_code == 200) != (want == "approved"):
            problems.append(f"{rid}: {want}, and its claim answered {describe(cl)}")
    assert not problems, "\n".join(problems)


def test_concurrent_claims_on_three_nodes_exactly_one_wins(start_cluster):
    c = start_cluster(3, policy={"default": "allow"})
    bot = c.nodes[0].client("deploy-bot")
    reqs = [bot.submit(sample_action(resource=f"deploy/claim-{i}")) for i in range(ROUNDS)]
    assert all(r["status"] == "approved" for r in reqs)
    problems = []
    for req in reqs:
        rid, dg = req["id"], req["digest"]
        answers = race(*[(lambda d=d: d.client("deploy-bot").claim(rid, dg)) for d in c.nodes])
        got = sorted((answer(r)[:2] for r in answers), key=lambda x: (x[0], x[1] or ""))
        if got != [(200, None), (409, "already_claimed"), (409, "already_claimed")]:
            problems.append(f"{rid}: three claims at once answered "
                            + " | ".join(describe(r) for r in answers))
    events = same_log_everywhere(c.nodes)
    claimed = by_request(events, "request.claimed")
    for req in reqs:
        n = len(claimed.get(req["id"], []))
        if n != 1:
            problems.append(f"{req['id']}: {n} request.claimed events")
    assert not problems, "\n".join(problems)


def test_one_idempotency_key_on_three_nodes_at_once_makes_one_request(start_cluster):
    c = start_cluster(3, policy=ONE_SRE)
    problems = []
    for i in range(ROUNDS):
        key = f"idem-{i}"
        action = sample_action(resource=f"deploy/idem-{i}")
        answers = race(*[(lambda d=d: d.client("deploy-bot").submit_raw(
            action, idempotency_key=key)) for d in c.nodes])
        codes = sorted(r.status_code for r in answers)
        ids = {r.json().get("id") for r in answers if r.status_code in (200, 201)}
        if codes != [200, 200, 201] or len(ids) != 1:
            problems.append(f"{key}: " + " | ".join(describe(r) for r in answers))
    events = same_log_everywhere(c.nodes)
    per_key = {}
    for e in events:
        if e["type"] == "request.submitted":
            k = e["data"].get("idempotency_key")
            per_key[k] = per_key.get(k, 0) + 1
    many = {k: n for k, n in per_key.items() if n != 1}
    if many:
        problems.append(f"request.submitted events per key: {many}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# The audit log with writers on several nodes.


def test_audit_is_one_chain_after_a_mixed_workload_on_three_nodes(start_cluster):
    c = start_cluster(3, policy={"approvers": {"group": "sre", "count": 1},
                                 "rules": [READS_ALLOWED]})
    load = Load(c.urls, threads=4, stories=50).start()  # 200 submissions
    ledger = load.join(timeout=600)
    print("load:", ledger.summary())
    events = same_log_everywhere(c.nodes)
    check_ledger(ledger, c.nodes[0], events)
    assert len(ledger.submitted) == load.total, \
        f"{load.total} submissions, {len(ledger.submitted)} acknowledged"
    for d in c.nodes:
        cli_verify(d)


def wait_fully_signed(daemon, timeout=60):
    """Wait until the latest checkpoint covers the whole log (as this node reads it)."""
    erin = daemon.client("erin")

    def signed():
        head = len(erin.audit_events(limit=1000))
        r = erin.get("/v1/audit/checkpoint")
        return r.status_code == 200 and r.json()["size"] >= head and r.json()
    return wait_until(signed, timeout, 0.2, f"a checkpoint over the whole log ({daemon.workdir.name})")


def test_checkpoints_from_several_nodes_have_distinct_sizes_and_all_verify(start_cluster):
    c = start_cluster(3, policy={"approvers": {"group": "sre", "count": 1},
                                 "rules": [READS_ALLOWED]},
                      audit={"checkpoint_every": 1, "checkpoint_interval": "1s"})
    load = Load(c.urls, threads=3, stories=20).start()
    ledger = load.join(timeout=600)
    print("load:", ledger.summary())
    wait_fully_signed(c.nodes[0])
    # A clean stop signs what is unsigned: with nothing unsigned it must not sign the same
    # size again.
    assert c.nodes[2].stop() == 0
    for i in range(6):
        c.nodes[i % 2].client("deploy-bot").submit(sample_action(resource=f"deploy/after-{i}"))
    wait_fully_signed(c.nodes[1])

    alive = c.nodes[:2]
    events = same_log_everywhere(alive)
    check_ledger(ledger, alive[0], events)
    pub = ok(alive[0].client("erin").get("/v1/audit/pubkey"))
    pk = bytes.fromhex(pub["public_key"])
    cps = check_checkpoints(alive[0], {key_id(pk)})
    assert len(cps) >= 2, f"too few checkpoints to judge: {[cp['size'] for cp in cps]}"
    # Pure-Python Ed25519 is slow: the first, the last and a few between.
    sample = {0, len(cps) - 1} | set(random.sample(range(len(cps)), min(4, len(cps))))
    for i in sorted(sample):
        cp = cps[i]
        assert ed25519_verify(pk, checkpoint_message(cp), bytes.fromhex(cp["signature"])), \
            f"checkpoint {cp['size']}: the signature does not hold"
    for d in alive:
        out, v = cli_verify(d)
        assert v["checkpoints"] >= len(cps), (v, len(cps))


# --------------------------------------------------------------------------------------------
# Once-only work: the outbox, expiries, escalations.


SLACK_SECRET = "cluster-signing-secret"


def notify_config(tmp_path, slack=None, webhook=None):
    n = {"max_delay": "1s", "max_attempts": 20}
    if slack is not None:
        tok, sec = tmp_path / "slack-bot-token", tmp_path / "slack-signing-secret"
        tok.write_text(slack.token + "\n")
        sec.write_text(SLACK_SECRET + "\n")
        for f in (tok, sec):
            f.chmod(0o600)
        n["slack"] = {"bot_token_file": str(tok), "signing_secret_file": str(sec),
                      "api_url": slack.api_url, "channel": CHANNEL, "dm_reviewers": True}
    if webhook is not None:
        sf = tmp_path / "webhook-secret"
        sf.write_text("cluster-webhook-secret\n")
        sf.chmod(0o600)
        n["webhooks"] = [{"url": webhook.url, "secret_file": str(sf)}]
    return n


def webhook_events(hook):
    """(type, request id) of every delivery the fake received, and the bodies seen twice."""
    seen, dup_bodies = [], []
    bodies = set()
    for call in hook.deliveries():
        p = call.params
        seen.append((p.get("type"), (p.get("request") or {}).get("id")))
        h = hashlib.sha256(call.raw).hexdigest()
        if h in bodies:
            dup_bodies.append((p.get("type"), (p.get("request") or {}).get("id")))
        bodies.add(h)
    return seen, dup_bodies


@pytest.fixture
def fakes():
    slack = FakeSlack("xoxb-cluster-" + hashlib.sha256(str(time.time()).encode()).hexdigest()[:12])
    hook = FakeWebhook()
    yield slack, hook
    slack.close()
    hook.close()


def test_outbox_is_delivered_once_across_three_nodes(start_cluster, tmp_path, fakes):
    slack, hook = fakes
    c = start_cluster(3, policy=ONE_SRE, principals=chat_cast(),
                      extra={"notify": notify_config(tmp_path, slack, hook)})
    targets = sorted([CHANNEL, "U0BOB", "U0CAROL"])  # not alice: she owns deploy-bot
    rids = [c.nodes[i % 3].client("deploy-bot").submit(
        sample_action(resource=f"deploy/outbox-{i}"))["id"] for i in range(12)]
    slack.wait_for(lambda calls: all(len(slack.posts(rid, calls)) >= 3 for rid in rids), 60,
                   "3 posts about every request")
    for i, rid in enumerate(rids):
        ok(c.nodes[(i + 1) % 3].client("bob").approve(rid))

    def all_updated(calls):
        for rid in rids:
            for p in slack.posts(rid, calls):
                if not slack.updates(p, calls):
                    return False
        return True
    slack.wait_for(all_updated, 60, "an update of every message after its approval")
    hook.wait_for(lambda calls: len(hook.deliveries(calls)) >= 2 * len(rids), 60,
                  "a webhook delivery of every submission and approval")
    time.sleep(SETTLE + 2)  # a second node delivering the same rows would have done so now

    problems = []
    calls = slack.snapshot()
    for rid in rids:
        posts = slack.posts(rid, calls)
        chans = sorted(p.params["channel"] for p in posts)
        if chans != targets:
            problems.append(f"{rid}: posts to {chans}, expected one each to {targets}")
        for p in posts:
            ups = slack.updates(p, calls)
            if len(ups) != 1:
                problems.append(f"{rid}: the message in {p.params['channel']} was updated "
                                f"{len(ups)} times for one approval")
    seen, dup_bodies = webhook_events(hook)
    if dup_bodies:
        problems.append(f"webhook events delivered twice (same bytes): {dup_bodies}")
    for rid in rids:
        got = sorted(t for t, r in seen if r == rid)
        if got != ["request.reviewed", "request.submitted"]:
            problems.append(f"{rid}: webhook events {got}")
    events = same_log_everywhere(c.nodes[:1])
    delivered = {}
    for e in events:
        if e["type"] == "notify.delivered" and e["data"].get("kind") == "post":
            k = (about(e), e["data"].get("channel"), e["data"].get("target"))
            delivered[k] = delivered.get(k, 0) + 1
    many = {k: n for k, n in delivered.items() if n > 1}
    if many:
        problems.append(f"posts audited as delivered more than once: {many}")
    assert not problems, "\n".join(problems[:40])


def test_expiry_fires_once_with_two_nodes(start_cluster, tmp_path, fakes):
    _, hook = fakes
    grant_rule = {"name": "grants", "when": 'action.kind == "grant"', "decide": "allow"}
    c = start_cluster(2,
                      policy={"ttl": "2s", "grant_ttl": "2s",
                              "approvers": {"group": "sre", "count": 1}, "rules": [grant_rule]},
                      extra={"notify": notify_config(tmp_path, webhook=hook)})
    a, b = c.nodes
    pending = [c.nodes[i % 2].client("deploy-bot").submit(
        sample_action(resource=f"deploy/ttl-{i}"))["id"] for i in range(10)]
    grants = [c.nodes[i % 2].client("deploy-bot").submit(
        {"kind": "grant", "command": ["true"], "resource": f"g/{i}"})["id"] for i in range(4)]
    rids = pending + grants
    wait_until(lambda: all(a.client("erin").show(r)["status"] == "expired" for r in rids), 60,
               0.3, "every request and grant to expire")
    time.sleep(SETTLE)
    events = same_log_everywhere(c.nodes)
    expired = by_request(events, "request.expired")
    problems = [f"{rid}: {len(expired.get(rid, []))} request.expired events "
                f"(seq {[e['seq'] for e in expired.get(rid, [])]})"
                for rid in rids if len(expired.get(rid, [])) != 1]
    for rid in pending:
        froms = [e["data"].get("from") for e in expired.get(rid, [])]
        if froms and froms != ["pending"]:
            problems.append(f"{rid}: expired from {froms}")
    for rid in grants:
        froms = [e["data"].get("from") for e in expired.get(rid, [])]
        if froms and froms != ["approved"]:
            problems.append(f"{rid} (grant): expired from {froms}")
    hook.wait_for(lambda calls: sum(1 for call in hook.deliveries(calls)
                                    if call.params.get("type") == "request.expired")
                  >= len(rids), 30, "a webhook delivery of every expiry")
    time.sleep(SETTLE)
    seen, dup_bodies = webhook_events(hook)
    for rid in rids:
        n = seen.count(("request.expired", rid))
        if n != 1:
            problems.append(f"{rid}: request.expired delivered {n} times to the webhook")
    assert not problems, "\n".join(problems)
    cli_verify(b)


def test_escalation_fires_once_with_two_nodes(start_cluster):
    rule = {"name": "db-changes", "when": 'action.kind == "sql"', "decide": "review",
            "approvers": {"group": "dba", "count": 1},
            "escalate": {"after": "1s", "to": {"group": "admins"}}}
    c = start_cluster(2, policy={"rules": [rule]})
    a, b = c.nodes
    rids = [c.nodes[i % 2].client("deploy-bot").submit(
        {"kind": "sql", "command": ["psql", "-c", "VACUUM"], "environment": "production",
         "resource": f"db/{i}"})["id"] for i in range(10)]

    def escalated(rid):
        return a.client("erin").show(rid)["decision"]["requirements"][0]["escalation"]["escalated"]
    wait_until(lambda: all(escalated(r) for r in rids), 60, 0.3, "every request to escalate")
    time.sleep(SETTLE)
    events = same_log_everywhere(c.nodes)
    esc = by_request(events, "request.escalated")
    problems = [f"{rid}: {len(esc.get(rid, []))} request.escalated events "
                f"(seq {[e['seq'] for e in esc.get(rid, [])]})"
                for rid in rids if len(esc.get(rid, [])) != 1]
    assert not problems, "\n".join(problems)
    # carol (admins) may now approve on either node, once.
    assert ok(b.client("carol").approve(rids[0]))["status"] == "approved"
    cli_verify(a)


# --------------------------------------------------------------------------------------------
# The shared key, rotated on one node.


def test_key_rotated_on_one_node_is_the_only_key_signing_after_it(start_cluster):
    c = start_cluster(2, policy={"default": "allow"},
                      audit={"checkpoint_every": 1, "checkpoint_interval": "1s"})
    a, b = c.nodes
    for i in range(4):
        c.nodes[i % 2].client("deploy-bot").submit(sample_action(resource=f"deploy/pre-{i}"))
    wait_fully_signed(a)
    old = ok(a.client("erin").get("/v1/audit/pubkey"))
    rot = ok(a.client("carol").post("/v1/admin/audit/rotate-key"))
    assert rot["key_id"] != old["key_id"]
    # Both nodes keep taking changes; every checkpoint past the rotation is the new key's.
    for i in range(8):
        c.nodes[i % 2].client("deploy-bot").submit(sample_action(resource=f"deploy/post-{i}"))
    wait_fully_signed(a)
    for d in c.nodes:
        cli_verify(d)
    cps = [ln["checkpoint"] for ln in export(b) if "checkpoint" in ln]
    after = [(cp["size"], cp["key_id"]) for cp in cps if cp["size"] > rot["checkpoint_size"]]
    assert after, "no checkpoint after the rotation"
    stale = [x for x in after if x[1] != rot["key_id"]]
    assert not stale, f"checkpoints signed with a key other than the rotated one: {stale}"
    # A node started again reads the rotated key from the shared file and signs with it alone.
    b.stop()
    b.start()
    assert ok(b.client("erin").get("/v1/audit/pubkey"))["key_id"] == rot["key_id"]
    assert a.stop() == 0
    for i in range(3):
        b.client("deploy-bot").submit(sample_action(resource=f"deploy/late-{i}"))
    cp = wait_fully_signed(b)
    assert cp["key_id"] == rot["key_id"], cp
    cli_verify(b)


# --------------------------------------------------------------------------------------------
# Console sessions.


def test_a_console_session_from_one_node_works_on_the_others_until_signed_out(start_cluster):
    c = start_cluster(3, policy=ONE_SRE)
    a, b, cc = c.nodes
    rid = a.client("deploy-bot").submit()["id"]
    bob = sign_in(a, "bob")
    who = ok(with_cookie(b, "GET", "/v1/session", bob.cookie))
    assert (who.get("principal") or {}).get("id") == "bob", who
    # A change through another node, with the session's CSRF token; without it, nothing.
    expect_error(with_cookie(cc, "POST", f"/v1/requests/{rid}/reviews", bob.cookie,
                             body={"decision": "approve"}), 403, "csrf")
    r = with_cookie(cc, "POST", f"/v1/requests/{rid}/reviews", bob.cookie, csrf=bob.csrf,
                    body={"decision": "approve"})
    assert ok(r)["status"] == "approved"
    # Signed out on one node: the cookie is dead on every node.
    r = with_cookie(b, "DELETE", "/v1/session", bob.cookie, csrf=bob.csrf)
    assert r.status_code == 204, describe(r)
    for d in c.nodes:
        r = with_cookie(d, "GET", "/v1/session", bob.cookie)
        assert r.status_code == 401, f"{d.workdir.name} still knows a signed-out session: " \
                                     f"{describe(r)}"


# --------------------------------------------------------------------------------------------
# Slack clicks.


def test_a_slack_click_accepted_by_one_node_is_refused_as_a_replay_by_the_others(
        start_cluster, tmp_path, fakes):
    slack, _ = fakes
    notify = notify_config(tmp_path, slack)
    notify["slack"]["dm_reviewers"] = False
    c = start_cluster(3, policy=TWO_SRE, principals=chat_cast(), extra={"notify": notify})
    a, b, cc = c.nodes
    rid = a.client("deploy-bot").submit()["id"]
    post = slack.wait_for(lambda calls: slack.posts(rid, calls), 30, f"the post about {rid}")[0]
    block_id, elem = button(post, "signoff_approve")
    assert elem is not None, post.params
    body = interaction_body(SLACK_IDS["bob"], "signoff_approve", elem["value"],
                            post.answer["channel"], post.answer["ts"], block_id,
                            response_url=f"http://127.0.0.1:{slack.port}/actions/T/1/x")
    ts = int(time.time())
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": str(ts),
               "X-Slack-Signature": slack_signature(SLACK_SECRET, ts, body)}
    path = "/v1/integrations/slack/interactions"
    r = requests.post(a.url + path, data=body, headers=headers, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, describe(r)
    wait_until(lambda: [rv["reviewer"] for rv in a.client("erin").show(rid)["reviews"]] == ["bob"],
               20, 0.1, "bob's click to count")
    # The same bytes and headers, captured and sent to the other nodes within the window.
    problems = []
    for d in (b, cc):
        r = requests.post(d.url + path, data=body, headers=headers, timeout=HTTP_TIMEOUT)
        if r.status_code != 401:
            problems.append(f"{d.workdir.name} took a replay of a click {a.workdir.name} had "
                            f"accepted: {r.status_code} {r.text[:120]!r}")
    time.sleep(SETTLE)
    evs = [e for e in audit_events(a) if e.get("request_id") == rid
           and e["type"] in ("request.reviewed", "review.refused")]
    if [e["type"] for e in evs] != ["request.reviewed"]:
        problems.append(f"audit events of the click and its replays: "
                        f"{[(e['type'], e['data'].get('code')) for e in evs]}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# Anomaly baselines, shared through the store.


def test_what_one_node_learned_is_normal_on_the_others(start_cluster):
    """An agent's habit formed through one node is its habit on every node, and what the
    second node then learns does not erase what the first learned (each batch reads the
    stored baseline again under the write lock and saves it before committing)."""
    from test_anomaly import QUICK, settle_habit, shell
    c = start_cluster(2, policy={"default": "allow", "approvers": {"group": "sre", "count": 1}},
                      extra=QUICK)
    a, b = c.nodes
    settle_habit(a.client("deploy-bot"))
    on_b = b.client("deploy-bot").submit(shell("kubectl", "get", "pods"), intent="x")
    assert on_b["status"] == "approved", on_b
    assert not any("new" in r for r in on_b["anomaly"]["reasons"]), \
        f"node b did not know the habit node a learned: {on_b['anomaly']}"
    # b learns a second habit (approved by a person when it is flagged); a must still know both.
    for _ in range(4):
        r = b.client("deploy-bot").submit(shell("terraform", "plan", env="staging"), intent="y")
        if r["status"] == "pending":
            ok(b.client("bob").approve(r["id"]))
    time.sleep(1.5)  # a node scores with a copy at most 1 s old (SHARED_REFRESH_MS)
    for node in (a, b):
        for words in (("kubectl", "get", "pods"), ("terraform", "plan")):
            r = node.client("deploy-bot").submit(shell(*words), intent="z")
            assert not any("first time" in x for x in r["anomaly"]["reasons"]), \
                (node.workdir.name, words, r["anomaly"])
