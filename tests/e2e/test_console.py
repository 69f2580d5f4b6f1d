"""The web console: signoffd's session, cookie, CSRF and event-stream contract over HTTP, and the
page itself in a real headless Chromium against a real signoffd.

HTTP level (always run): the page and its assets carry the security headers and the CSP; sign-in
gives an HttpOnly, SameSite=Strict cookie (Secure under TLS) and refuses unknown tokens (401),
agents and services (403 not_human), and a sixth failure within a minute (429, audited); a
cookie-authenticated change without the session's X-CSRF-Token changes nothing; sign-out kills
the cookie; the viewer block says who may review; /v1/events streams each change.

In the browser (skipped, with the reason, only when Debian's chromium, chromium-driver or
python3-selenium is missing): a reviewer sees an agent's `signoff run` request arrive without a
reload, opens it, reads its intent, context and diff, approves it while a second reviewer's
window follows live, and the waiting `signoff run` runs its command once; nobody gets buttons on
a request they may not review; a forged cross-site form changes nothing; HTML in an agent's
intent stays text; sign-out returns to the form and the old cookie is dead.

Screenshots of the queue and of the request page (queue.png, request.png) are kept in
$SIGNOFF_BUILD/e2e-artifacts/console/, and each browser's last screen and console log in a
folder per test beside them.
"""

import contextlib
import http.client
import http.server
import json
import re
import socket
import threading
import time
import urllib.parse

import pytest
import requests

import browser
from conftest import (BUILD, CAST, HTTP_TIMEOUT, expect_error, finish_process, https_daemon,
                      new_token, ok, parse_time, reap_process, run_cli, sample_action, spawn_cli,
                      wait_until)

ARTIFACTS = BUILD / "e2e-artifacts" / "console"
COOKIE = "signoff_session"
RUN_TIMEOUT = 90  # seconds for `signoff run` to finish once its request is decided
PING_WAIT = 90  # seconds to wait for the event stream's first comment ping

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
CONSOLE_FILES = {  # path -> the start of its Content-Type
    "/": ("text/html",),
    "/console/app.js": ("text/javascript", "application/javascript"),
    "/console/app.css": ("text/css",),
}

# deploy-bot's shell commands need one person from sre (bob, carol and alice are sre humans;
# alice owns deploy-bot and, with owner_may_approve false, may not review its requests).
# Everything else needs the same by the default, so a human's own request is pending too.
CONSOLE_POLICY = {
    "default": "review",
    "approvers": {"group": "sre", "count": 1},
    "owner_may_approve": False,
    "rules": [{
        "name": "deploy-bot-shell",
        "when": 'requester.id == "deploy-bot" && action.kind == "shell"',
        "decide": "review",
        "approvers": {"group": "sre", "count": 1},
        "reason": "deploy-bot's shell commands need one person from sre",
    }],
}

INTENT = "roll the api to 3 replicas for the INC-4411 traffic spike"
TICKET = "INC-4411"
DIFF = ("--- a/deploy/api.yaml\n+++ b/deploy/api.yaml\n@@ -3,3 +3,3 @@\n"
        " kind: Deployment\n-replicas: 2\n+replicas: 3\n image: api:1.42\n")
COMMENT = "diff checked against INC-4411"

PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


@pytest.fixture
def console(start_daemon):
    return start_daemon(policy=CONSOLE_POLICY)


# --------------------------------------------------------------------------------------------
# Sessions over plain HTTP.

_OWN = object()  # "send this session's own CSRF token"


def sign_in_raw(daemon, token, extra_headers=None):
    headers = {"Content-Type": "application/json"}
    headers.update(extra_headers or {})
    return requests.post(daemon.url + "/v1/session", data=json.dumps({"token": token}),
                         headers=headers, timeout=HTTP_TIMEOUT)


def set_cookie_headers(resp):
    """Every Set-Cookie header of a response, unjoined."""
    return resp.raw.headers.getlist("Set-Cookie")


def parse_set_cookie(header):
    """(name, value, {attribute (lowercase): value or True})."""
    parts = [p.strip() for p in header.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), value.strip(), attrs


def session_cookie(resp):
    """The one signoff_session cookie a response sets: (value, attributes)."""
    found = [parse_set_cookie(h) for h in set_cookie_headers(resp)]
    ours = [(v, a) for n, v, a in found if n == COOKIE]
    assert len(ours) == 1, \
        f"expected one {COOKIE} cookie, got Set-Cookie {set_cookie_headers(resp)}"
    return ours[0]


def principal_of(body):
    """The session's principal id (the contract names the field, not its shape)."""
    p = body.get("principal")
    return p.get("id") if isinstance(p, dict) else p


class Session:
    """A person signed in with a cookie, calling /v1 as the console does."""

    def __init__(self, daemon, resp):
        self.daemon = daemon
        self.body = ok(resp, 201)
        self.cookie, self.cookie_attrs = session_cookie(resp)
        self.csrf = self.body["csrf_token"]

    def request(self, method, path, body=None, csrf=_OWN, headers=None, data=None, cookie=None):
        h = {"Cookie": f"{COOKIE}={self.cookie if cookie is None else cookie}"}
        token = self.csrf if csrf is _OWN else csrf
        if token is not None:
            h["X-CSRF-Token"] = token
        if body is not None:
            data = json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        return requests.request(method, self.daemon.url + path, data=data, headers=h,
                                timeout=HTTP_TIMEOUT)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def sign_in(daemon, who):
    return Session(daemon, sign_in_raw(daemon, CAST[who].token))


def with_cookie(daemon, method, path, cookie_value, csrf=None, body=None):
    """A call carrying only this cookie value (and optionally a CSRF header)."""
    h = {"Cookie": f"{COOKIE}={cookie_value}"}
    if csrf is not None:
        h["X-CSRF-Token"] = csrf
    data = None
    if body is not None:
        data = json.dumps(body)
        h["Content-Type"] = "application/json"
    return requests.request(method, daemon.url + path, data=data, headers=h, timeout=HTTP_TIMEOUT)


def csp_directives(text):
    """{directive: [sources]} of a Content-Security-Policy value (order of directives ignored)."""
    out = {}
    for part in text.split(";"):
        words = part.split()
        if words:
            assert words[0].lower() not in out, f"directive {words[0]} given twice in {text!r}"
            out[words[0].lower()] = words[1:]
    return out


def assert_console_headers(resp):
    where = resp.request.path_url
    csp = resp.headers.get("Content-Security-Policy")
    assert csp is not None, f"{where}: no Content-Security-Policy"
    assert csp_directives(csp) == csp_directives(CSP), f"{where}: CSP is {csp!r}, expected {CSP!r}"
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name, "").lower() == value.lower(), \
            f"{where}: {name} is {resp.headers.get(name)!r}, expected {value!r}"


def events_of(daemon, etype):
    return [e for e in daemon.client("erin").audit_events() if e["type"] == etype]


def pending_deploy_request(daemon, intent=INTENT, **fields):
    return daemon.client("deploy-bot").submit(sample_action(), intent=intent, **fields)


# --------------------------------------------------------------------------------------------
# The page and its files.


def test_console_page_and_assets_carry_the_security_headers(console):
    for path, types in CONSOLE_FILES.items():
        r = requests.get(console.url + path, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}"
        ctype = r.headers.get("Content-Type", "")
        assert ctype.startswith(types), f"GET {path}: Content-Type {ctype!r}, expected {types}"
        assert r.content, f"GET {path} is empty"
        assert_console_headers(r)
    page = requests.get(console.url + "/", timeout=HTTP_TIMEOUT).text
    assert re.search(r"""<script[^>]*\ssrc=["']/console/app\.js["']""", page), \
        "the page does not load /console/app.js"
    assert re.search(r"""<link[^>]*href=["']/console/app\.css["']""", page), \
        "the page does not load /console/app.css"
    # script-src 'self' forbids inline script: the page must need none.
    for tag in re.findall(r"<script\b[^>]*>", page, re.I):
        assert re.search(r"\ssrc=", tag), f"inline <script> in the page (the CSP blocks it): {tag}"
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", page, re.I), \
        "inline event handler attribute in the page (the CSP blocks it)"


def raw_get(daemon, path):
    """GET `path` sent exactly as written, dots and escapes included: (status, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def test_console_files_stay_inside_the_console(console):
    """No path under /console/ reaches the daemon's configuration or the file system."""
    secret_markers = ("token_sha256", "signing_key_file", "root:x:0:0")
    paths = [
        "/console/../signoff.yaml",
        "/console/%2e%2e/signoff.yaml",
        "/console/..%2fsignoff.yaml",
        "/console/%2e%2e%2fsignoff.yaml",
        "/console/..%5csignoff.yaml",
        "/console/../../../../../../../../etc/passwd",
        "/console/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/console//etc/passwd",
        "/console/",
    ]
    for path in paths:
        status, body = raw_get(console, path)
        assert status >= 400, f"GET {path} answered {status}: {body[:300]}"
        for marker in secret_markers:
            assert marker not in body, f"GET {path} leaked a file ({marker!r} in the answer)"


def test_console_paths_with_a_nul_byte_are_not_found(console):
    """%00 decodes to a NUL byte; a name compared as a C string would stop there and serve
    app.js for "app.js%00.css". Only the exact names are files of the console."""
    for path in ["/console/app.js%00.css", "/console/app.css%00", "/%00x"]:
        status, body = raw_get(console, path)
        assert status == 404, f"GET {path} answered {status}: {body[:200]}"


# --------------------------------------------------------------------------------------------
# Signing in and out.


def test_sign_in_gives_an_http_only_strict_session_cookie(console):
    before = time.time()
    r = sign_in_raw(console, CAST["bob"].token)
    body = ok(r, 201)
    assert principal_of(body) == "bob", body
    assert isinstance(body["csrf_token"], str) and len(body["csrf_token"]) >= 16, body
    expires = parse_time(body["expires_at"])
    assert expires > before, f"the session expires before it began: {body['expires_at']}"

    value, attrs = session_cookie(r)
    assert value, "empty session cookie"
    assert attrs.get("httponly") is True, f"session cookie is not HttpOnly: {attrs}"
    assert str(attrs.get("samesite", "")).lower() == "strict", f"SameSite is not Strict: {attrs}"
    assert attrs.get("path") == "/", f"cookie Path is not /: {attrs}"
    assert "secure" not in attrs, \
        "Secure over plain HTTP: a browser at an http:// address would not keep the cookie"
    assert "domain" not in attrs, f"a Domain attribute widens the cookie to other hosts: {attrs}"
    max_age = int(attrs.get("max-age", "0"))
    assert max_age > 0, f"no positive Max-Age: {attrs}"
    assert abs((before + max_age) - expires) < 120, \
        f"Max-Age {max_age} disagrees with expires_at {body['expires_at']}"

    # The cookie is a session of its own, not the bearer token, and not the CSRF token.
    token = CAST["bob"].token
    assert token not in value and token[3:] not in value, "the cookie carries the API token"
    assert value != body["csrf_token"]

    # GET /v1/session gives the same object back; /v1 calls act as bob.
    s = Session(console, r)
    again = ok(s.get("/v1/session", csrf=None))
    assert principal_of(again) == "bob"
    assert again["csrf_token"] == body["csrf_token"]
    assert again["expires_at"] == body["expires_at"]
    assert ok(s.get("/v1/whoami", csrf=None))["id"] == "bob"

    # Audited, without the secrets.
    (ev,) = events_of(console, "session.signed_in")
    assert ev["actor"] == "bob", ev
    dumped = json.dumps(console.client("erin").audit_events())
    for secret in (token, value, body["csrf_token"]):
        assert secret not in dumped, "a session secret was written to the audit log"


def test_sign_in_refuses_unknown_tokens_and_non_humans(console):
    for bad in [new_token(), "not-a-token"]:
        r = sign_in_raw(console, bad)
        expect_error(r, 401, "unauthorized")
        assert not set_cookie_headers(r), "a refused sign-in set a cookie"
    for who in ["deploy-bot", "ci"]:  # an agent, a service
        r = sign_in_raw(console, CAST[who].token)
        expect_error(r, 403, "not_human")
        assert not set_cookie_headers(r), f"{who} got a console cookie"
    expect_error(requests.get(console.url + "/v1/session", timeout=HTTP_TIMEOUT), 401,
                 "unauthorized")


def test_failed_sign_ins_are_rate_limited_and_audited(console):
    bad_tokens = [new_token() for _ in range(6)]
    for t in bad_tokens[:5]:
        expect_error(sign_in_raw(console, t), 401, "unauthorized")
    r = sign_in_raw(console, bad_tokens[5])
    expect_error(r, 429, "rate_limited")
    retry = r.headers.get("Retry-After")
    assert retry is not None and retry.isdigit() and 0 < int(retry) <= 60, \
        f"Retry-After should be seconds within the minute: {retry!r}"
    # While limited, even the right token gets no session from this address.
    r = sign_in_raw(console, CAST["bob"].token)
    expect_error(r, 429, "rate_limited")
    assert not set_cookie_headers(r)

    failed = events_of(console, "session.signin_failed")
    assert len(failed) >= 5, f"expected each failed sign-in audited, got {len(failed)}"
    for ev in failed:
        assert ev["actor"] == "anonymous", ev
        assert "127.0.0.1" in json.dumps(ev["data"]), f"no address in {ev}"
    assert events_of(console, "session.signed_in") == []
    dumped = json.dumps(console.client("erin").audit_events())
    for t in bad_tokens:
        assert t not in dumped, "a presented token was written to the audit log"


def test_sign_out_ends_the_session(console):
    rid = pending_deploy_request(console)["id"]
    bob = sign_in(console, "bob")
    expect_error(bob.delete("/v1/session", csrf=None), 403, "csrf")
    assert principal_of(ok(bob.get("/v1/session"))) == "bob", "a refused sign-out ended the session"

    r = bob.delete("/v1/session")
    assert r.status_code == 204, f"DELETE /v1/session: {r.status_code} {r.text[:300]}"
    expect_error(bob.get("/v1/session"), 401, "unauthorized")
    expect_error(bob.get("/v1/whoami"), 401, "unauthorized")
    expect_error(bob.post(f"/v1/requests/{rid}/reviews", {"decision": "approve"}), 401,
                 "unauthorized")
    assert console.client("bob").show(rid)["status"] == "pending"


def test_unknown_and_foreign_cookies_are_refused(console):
    rid = pending_deploy_request(console)["id"]
    bob = sign_in(console, "bob")
    forged = [
        "",
        "0" * len(bob.cookie),
        bob.cookie[:-1] + ("A" if bob.cookie[-1] != "A" else "B"),  # one character off
        CAST["bob"].token,  # an API token is not a session
        bob.csrf,
    ]
    for value in forged:
        expect_error(with_cookie(console, "GET", "/v1/session", value), 401, "unauthorized")
        expect_error(with_cookie(console, "GET", "/v1/whoami", value), 401, "unauthorized")
        expect_error(with_cookie(console, "POST", f"/v1/requests/{rid}/reviews", value,
                                 csrf=bob.csrf, body={"decision": "approve"}),
                     401, "unauthorized")
    assert console.client("bob").show(rid)["status"] == "pending"
    assert ok(bob.get("/v1/session"))  # the real one still works


def test_session_cookie_is_secure_under_tls(tmp_path):
    with https_daemon(tmp_path, policy=CONSOLE_POLICY) as (base, cert):
        r = requests.post(base + "/v1/session", data=json.dumps({"token": CAST["bob"].token}),
                          verify=str(cert), headers={"Content-Type": "application/json"},
                          timeout=HTTP_TIMEOUT)
        ok(r, 201)
        _, attrs = session_cookie(r)
        assert attrs.get("secure") is True, f"session cookie over TLS is not Secure: {attrs}"
        assert attrs.get("httponly") is True and str(attrs.get("samesite")).lower() == "strict"
        page = requests.get(base + "/", verify=str(cert), timeout=HTTP_TIMEOUT)
        assert page.status_code == 200
        assert_console_headers(page)


# --------------------------------------------------------------------------------------------
# CSRF and the viewer block.


def test_cookie_changes_need_the_sessions_csrf_token(console):
    rid = pending_deploy_request(console)["id"]
    bob = sign_in(console, "bob")
    carol = sign_in(console, "carol")
    path = f"/v1/requests/{rid}/reviews"
    forged = {"decision": "approve", "comment": "forged"}

    expect_error(bob.post(path, forged, csrf=None), 403, "csrf")
    expect_error(bob.post(path, forged, csrf=""), 403, "csrf")
    expect_error(bob.post(path, forged, csrf="x" + bob.csrf[1:]), 403, "csrf")
    expect_error(bob.post(path, forged, csrf=carol.csrf), 403, "csrf")  # another session's
    # What a cross-site HTML form can send: text/plain whose body happens to be JSON.
    expect_error(bob.post(path, csrf=None, data='{"decision":"approve","comment":"=x"}\r\n',
                          headers={"Content-Type": "text/plain"}), 403, "csrf")
    expect_error(bob.post(f"/v1/requests/{rid}/cancel", {}, csrf=None), 403, "csrf")

    shown = console.client("bob").show(rid)
    assert shown["status"] == "pending" and shown["reviews"] == [], \
        "a call without the CSRF token changed the request"
    assert events_of(console, "request.reviewed") == []

    # Reading needs no CSRF token, and no other origin is let in.
    r = bob.get(f"/v1/requests/{rid}", csrf=None, headers={"Origin": "http://evil.example"})
    assert ok(r)["id"] == rid
    assert "Access-Control-Allow-Origin" not in r.headers, "CORS opened to another origin"
    assert "Access-Control-Allow-Credentials" not in r.headers

    done = ok(bob.post(path, {"decision": "approve", "comment": "checked"}))
    assert done["status"] == "approved"
    assert [(x["reviewer"], x["comment"]) for x in done["reviews"]] == [("bob", "checked")]
    # Bearer calls need no CSRF token (every Client call here is one).
    assert console.client("deploy-bot").show(rid)["status"] == "approved"


def test_viewer_block_says_who_may_review(console):
    rid = pending_deploy_request(console)["id"]
    own = console.client("bob").submit(sample_action(command=["kubectl", "get", "pods"]),
                                       intent="bob's own")["id"]

    def viewer(who, request_id):
        v = console.client(who).show(request_id)["viewer"]
        assert isinstance(v, dict) and isinstance(v.get("may_review"), bool), v
        assert v.get("reason") is None or isinstance(v["reason"], str), v
        return v

    v = viewer("bob", rid)
    assert v["may_review"] is True and v["reason"] is None, v
    for who, request_id, why in [("alice", rid, "owns the requesting agent"),
                                 ("deploy-bot", rid, "made it, and is an agent"),
                                 ("erin", rid, "is not in sre"),
                                 ("bob", own, "made it")]:
        v = viewer(who, request_id)
        assert v["may_review"] is False, f"{who} {why}, yet may_review: {v}"
        assert v["reason"], f"{who} may not review, but no reason is given: {v}"

    for item in console.client("bob").list(status="pending")["requests"]:
        assert isinstance(item.get("viewer"), dict), f"list item without viewer: {item}"
        assert item["viewer"]["may_review"] is (item["id"] == rid), item

    # Through the cookie the same, and after bob's review he may not review again.
    bob = sign_in(console, "bob")
    assert ok(bob.get(f"/v1/requests/{rid}"))["viewer"]["may_review"] is True
    ok(bob.post(f"/v1/requests/{rid}/reviews", {"decision": "approve"}))
    after = ok(bob.get(f"/v1/requests/{rid}"))["viewer"]
    assert after["may_review"] is False and after["reason"], after


# --------------------------------------------------------------------------------------------
# The event stream.


class EventStream:
    """GET /v1/events on a plain socket: status, headers, and the events and pings as they come.

    A socket of our own (not requests) so that every read is bounded and closing is immediate."""

    def __init__(self, base_url, headers):
        u = urllib.parse.urlsplit(base_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=HTTP_TIMEOUT)
        lines = ["GET /v1/events HTTP/1.1", f"Host: {u.netloc}", "Accept: text/event-stream",
                 "Cache-Control: no-cache"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw, self.text, self.closed = b"", b"", False
        self.events, self.comments = [], []
        deadline = time.monotonic() + HTTP_TIMEOUT
        while b"\r\n\r\n" not in self.raw:
            assert not self.closed and time.monotonic() < deadline, \
                f"no response head from /v1/events: {self.raw[:300]!r}"
            self._recv(deadline)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for h in header_lines:
            k, _, v = h.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._decode()

    def _recv(self, deadline):
        self.sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        if not data:
            self.closed = True
        self.raw += data

    def _decode(self):
        if not self.chunked:
            self.text += self.raw
            self.raw = b""
        else:
            while True:
                end = self.raw.find(b"\r\n")
                if end < 0:
                    break
                size = int(self.raw[:end].split(b";")[0], 16)
                if len(self.raw) < end + 2 + size + 2:
                    break
                self.text += self.raw[end + 2:end + 2 + size]
                self.raw = self.raw[end + 2 + size + 2:]
                if size == 0:
                    self.closed = True
                    break
        pending = self.text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        while b"\n\n" in pending:
            block, pending = pending.split(b"\n\n", 1)
            name, data = "message", []
            for line in block.decode("utf-8").split("\n"):
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
            if data:
                self.events.append({"event": name, "data": "\n".join(data)})
        self.text = pending

    def wait_for(self, predicate, what, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if predicate(ev):
                    return ev
            if self.closed:
                raise AssertionError(f"event stream closed while waiting for {what}: {self.events}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}: {self.events}")
            self._recv(deadline)
            self._decode()

    def close(self):
        self.sock.close()


def request_event(rid, status):
    def match(ev):
        if ev["event"] != "request":
            return False
        data = json.loads(ev["data"])
        return data.get("id") == rid and data.get("status") == status
    return match


def test_event_stream_reports_each_change(console):
    r = requests.get(console.url + "/v1/events", timeout=HTTP_TIMEOUT, stream=True)
    try:
        expect_error(r, 401, "unauthorized")
    finally:
        r.close()

    bob = sign_in(console, "bob")
    stream = EventStream(console.url, {"Cookie": f"{COOKIE}={bob.cookie}"})
    try:
        assert stream.status == 200, f"/v1/events answered {stream.status}"
        ctype = stream.headers.get("content-type", "")
        assert ctype.startswith("text/event-stream"), f"/v1/events Content-Type {ctype!r}"

        rid = pending_deploy_request(console)["id"]
        ev = stream.wait_for(request_event(rid, "pending"), f"'request' {rid} pending")
        assert {"id", "status"} <= set(json.loads(ev["data"])), ev
        ok(console.client("carol").approve(rid, "stream test"))
        stream.wait_for(request_event(rid, "approved"), f"'request' {rid} approved")
        bot = console.client("deploy-bot")
        ok(bot.claim(rid, console.client("bob").show(rid)["digest"]))
        stream.wait_for(request_event(rid, "claimed"), f"'request' {rid} claimed")
        ok(bot.result(rid, 0))
        stream.wait_for(request_event(rid, "succeeded"), f"'request' {rid} succeeded")

        deadline = time.monotonic() + PING_WAIT
        while not stream.comments:
            assert not stream.closed, "the event stream closed"
            assert time.monotonic() < deadline, f"no comment ping within {PING_WAIT}s"
            stream._recv(deadline)
            stream._decode()
    finally:
        stream.close()


# --------------------------------------------------------------------------------------------
# The real browser.


@pytest.fixture
def browsers(start_daemon, request):
    """Factory: browsers(daemon, name) -> a started headless Chromium; all quit at teardown.

    Depends on start_daemon so that the browsers close before the daemons stop."""
    reason = browser.missing()
    if reason:
        pytest.skip(reason)
    opened = []
    folder = ARTIFACTS / request.node.name

    def open_browser(daemon, name):
        b = browser.Browser(daemon.url, name, folder)
        opened.append(b)
        return b.start()

    yield open_browser
    problems = []
    for b in reversed(opened):
        try:
            b.close()
        except Exception as e:  # keep closing the others
            problems.append(f"{b.name}: {e!r}")
    if problems:
        pytest.fail("could not close every browser: " + "; ".join(problems))


def signed_in(browsers, daemon, who, route=None):
    b = browsers(daemon, who)
    b.open("/")
    b.sign_in(CAST[who].token, who)
    if route:
        b.go(route)
    return b


def open_request(b, rid, intent):
    """Follow #/r/ID and wait until the page shows that request (its intent)."""
    b.go(f"#/r/{rid}")
    b.wait_text("request-intent", lambda t: intent in t, f"the intent {intent!r}")


def status_is(*statuses):
    return lambda text: any(re.search(rf"\b{s}\b", text.lower()) for s in statuses)


@contextlib.contextmanager
def background_run(daemon, cwd, cmd, intent, context_file):
    args = ["run", "--env", "production", "--resource", "deploy/api", "--why", intent,
            "--context-file", str(context_file), "--", *cmd]
    proc = spawn_cli(args, daemon.url, CAST["deploy-bot"].token, cwd)
    try:
        yield proc
    finally:
        reap_process(proc)


def finish(proc, timeout=RUN_TIMEOUT):
    return finish_process(proc, timeout, "signoff run")


def pending_id_of_run(daemon, cmd, proc):
    def find():
        if proc.poll() is not None:
            raise AssertionError(f"signoff run exited early with {proc.returncode}: "
                                 f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
        for r in daemon.client("bob").list(status="pending")["requests"]:
            if r["action"].get("command") == cmd:
                return r["id"]
        return None

    return wait_until(find, timeout=30, what="signoff run to submit its request")


def row_css(rid):
    return f'#queue tr.request-row[data-id="{rid}"]'


def test_reviewer_approves_in_the_browser_and_the_waiting_run_proceeds(console, browsers, tmp_path):
    d = console
    marker = tmp_path / "ran"
    cmd = ["/bin/sh", "-c", 'echo ran >> "$1"', "sh", str(marker)]
    context_file = tmp_path / "context.json"
    context_file.write_text(json.dumps({"ticket": TICKET, "diff": DIFF}))

    bob = browsers(d, "bob")
    bob.open("/#/queue")
    bob.sign_in(CAST["bob"].token, "bob")
    # The session lives in an HttpOnly cookie: no script reads it, and the token is not kept.
    cookie = bob.cookie(COOKIE)
    assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Strict", cookie
    assert COOKIE not in bob.js("return document.cookie;")
    kept = bob.js("return JSON.stringify([Object.entries(localStorage), "
                  "Object.entries(sessionStorage)]);")
    assert CAST["bob"].token not in kept, "the page keeps the API token in web storage"

    if bob.hash() != "#/queue":
        bob.go("#/queue")
    bob.wait(lambda: bob.shown("filter-pending"), "the queue and its filters")
    bob.by_id("filter-pending").click()
    bob.wait(lambda: bob.shown("live-indicator"), "the live indicator")
    assert not bob.find("#queue tr.request-row"), "a fresh daemon has no requests to show"
    bob.set_marker()

    with background_run(d, tmp_path, cmd, INTENT, context_file) as proc:
        rid = pending_id_of_run(d, cmd, proc)
        bob.wait(lambda: bob.find(row_css(rid)), f"request {rid} to appear in the queue")
        assert bob.still_same_document(), \
            "the page reloaded to show the new request; it must arrive live"
        bob.screenshot(ARTIFACTS / "queue.png")

        row = bob.find(row_css(rid))[0]
        links = row.find_elements("css selector", "a[href]")
        (links[0] if links else row).click()
        bob.wait(lambda: bob.hash() == f"#/r/{rid}", f"the route #/r/{rid}")
        bob.wait_text("request-status", status_is("pending"), "pending")
        assert bob.still_same_document(), "opening a request reloaded the page"
        bob.wait_text("request-action", lambda t: "echo ran" in t, "the command")
        assert str(marker) in bob.text("request-action")
        assert INTENT in bob.text("request-intent")
        assert TICKET in bob.wait_text("request-context", lambda t: TICKET in t, "the ticket")
        diff = bob.wait_text("request-diff", lambda t: "+replicas: 3" in t, "the diff")
        assert "-replicas: 2" in diff and "deploy/api.yaml" in diff, diff
        assert "deploy-bot-shell" in bob.text("request-trace"), "the decision trace is not shown"
        assert bob.usable("approve-button") and bob.usable("deny-button")
        assert not bob.text("no-review-reason").strip()
        bob.screenshot(ARTIFACTS / "request.png")

        carol = signed_in(browsers, d, "carol")
        open_request(carol, rid, INTENT)
        carol.wait_text("request-status", status_is("pending"), "pending")
        assert carol.usable("approve-button"), "carol is in sre and may review"
        carol.set_marker()

        assert not marker.exists(), "the command ran before anyone approved"
        bob.by_id("review-comment").send_keys(COMMENT)
        bob.by_id("approve-button").click()
        bob.wait_text("request-status", status_is("approved", "claimed", "succeeded"),
                      "the approval")
        assert not bob.text("review-error").strip(), bob.text("review-error")
        carol.wait_text("request-status", status_is("approved", "claimed", "succeeded"),
                        "bob's approval, live")
        assert carol.still_same_document(), "carol's window reloaded; the change must come live"

        rc, out, err = finish(proc)
    assert rc == 0, f"signoff run exited {rc}: {err[-2000:]}"
    assert marker.read_text().splitlines() == ["ran"], "the command must run exactly once"

    final = d.client("deploy-bot").show(rid)
    assert final["status"] == "succeeded"
    assert [(r["reviewer"], r["decision"], r["comment"]) for r in final["reviews"]] == \
        [("bob", "approve", COMMENT)]
    carol.wait_text("request-status", status_is("succeeded"), "succeeded, live")
    carol.wait_text("request-reviews", lambda t: "bob" in t and COMMENT in t, "bob's review")
    carol.wait(lambda: not carol.usable("approve-button"),
               "the Approve button to go once the request is decided")
    assert carol.still_same_document() and bob.still_same_document()
    for b in (bob, carol):
        assert not b.csp_refusals(), f"{b.name}: the page broke its own CSP: {b.csp_refusals()}"


def test_no_review_buttons_where_the_viewer_may_not_review(console, browsers, tmp_path):
    d = console
    p = run_cli(["request", "--env", "production", "--why", "bob's own change", "--",
                 "kubectl", "scale", "deploy/api", "--replicas=3"],
                d.url, CAST["bob"].token, tmp_path)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    own = re.search(r"req_[0-9A-Z]{26}", p.stdout.decode()).group(0)
    agents = pending_deploy_request(d, intent="alice's agent asks")["id"]
    assert d.client("bob").show(own)["viewer"]["may_review"] is False
    assert d.client("alice").show(agents)["viewer"]["may_review"] is False

    # bob, on his own request: no buttons, and the page says why.
    bob = signed_in(browsers, d, "bob")
    open_request(bob, own, "bob's own change")
    bob.wait_text("request-status", status_is("pending"), "pending")
    bob.wait_text("no-review-reason", lambda t: t.strip(), "why bob may not review")
    assert not bob.shown("approve-button") and not bob.shown("deny-button"), \
        "bob is offered buttons on his own request"
    # The same window on a request he may review has them (the buttons do depend on the viewer).
    open_request(bob, agents, "alice's agent asks")
    bob.wait(lambda: bob.usable("approve-button") and bob.usable("deny-button"),
             "the review buttons on deploy-bot's request")
    assert not bob.text("no-review-reason").strip()

    # alice owns deploy-bot, and the policy does not let owners approve.
    alice = signed_in(browsers, d, "alice")
    open_request(alice, agents, "alice's agent asks")
    alice.wait_text("request-status", status_is("pending"), "pending")
    alice.wait_text("no-review-reason", lambda t: t.strip(), "why alice may not review")
    assert not alice.shown("approve-button") and not alice.shown("deny-button"), \
        "alice is offered buttons on her own agent's request"
    assert d.client("bob").show(agents)["reviews"] == []


def test_html_in_an_agents_request_renders_as_text(console, browsers):
    d = console
    action = sample_action(command=["echo", PAYLOAD], resource=PAYLOAD)
    rid = d.client("deploy-bot").submit(action, intent=PAYLOAD,
                                        context={"note": PAYLOAD, "ticket": PAYLOAD,
                                                 "diff": f"-{PAYLOAD}\n+{PAYLOAD}\n"})["id"]
    bob = signed_in(browsers, d, "bob", route="#/queue")
    bob.wait(lambda: bob.find(row_css(rid)), "the request in the queue")
    bob.go(f"#/r/{rid}")
    bob.wait_text("request-intent", lambda t: PAYLOAD in t, "the intent, literally")
    bob.wait_text("request-context", lambda t: "onerror" in t, "the context, literally")
    assert "<script>" in bob.text("request-action") or "onerror" in bob.text("request-action")

    assert bob.js("return typeof window.__pwned;") == "undefined", "the agent's HTML ran"
    injected = bob.js("""
        return Array.from(document.querySelectorAll(
            '#request script, #request img, #queue script, [onerror], img[src="x"]'))
          .map(e => e.outerHTML);""")
    assert injected == [], f"the agent's HTML became elements: {injected}"
    assert not bob.csp_refusals(), \
        f"something tried to run inline script (stopped only by the CSP): {bob.csp_refusals()}"


class _AttackerSite:
    """A page on another site (http://localhost:PORT, not 127.0.0.1) that posts a form to the
    daemon as soon as it loads: a JSON body disguised as text/plain form data."""

    def __init__(self, target):
        name = '{"decision":"approve","comment":"'
        page = (
            "<!doctype html><title>win a prize</title>"
            f'<form id="f" method="POST" action="{target}" enctype="text/plain">'
            f"<input type=\"hidden\" name='{name}' value='forged\"}}'></form>"
            "<script>document.getElementById('f').submit();</script>"
        ).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def test_forged_changes_from_the_browser_are_refused(console, browsers):
    d = console
    rid = pending_deploy_request(d)["id"]
    bob = signed_in(browsers, d, "bob")

    # A script on the console's own origin that does not send the CSRF token.
    res = bob.fetch("POST", f"/v1/requests/{rid}/reviews",
                    json.dumps({"decision": "approve", "comment": "forged"}),
                    {"Content-Type": "application/json"})
    assert res["status"] == 403, res
    assert json.loads(res["text"])["error"]["code"] == "csrf", res

    # Another site's page posting a form at the daemon, in bob's signed-in browser.
    attacker = _AttackerSite(f"{d.url}/v1/requests/{rid}/reviews")
    try:
        bob.driver.get(attacker.url)
        bob.wait(lambda: bob.driver.current_url.startswith(d.url),
                 "the forged form to reach the daemon")
        answer = bob.driver.find_element("tag name", "body").text
        assert ('"csrf"' in answer or '"unauthorized"' in answer), \
            f"the forged form was not refused: {answer[:500]}"
    finally:
        attacker.close()

    shown = d.client("bob").show(rid)
    assert shown["status"] == "pending" and shown["reviews"] == [], \
        f"a forged call changed the request: {shown['status']} {shown['reviews']}"
    assert events_of(d, "request.reviewed") == []


def test_sign_out_returns_to_the_form_and_the_old_cookie_is_dead(console, browsers):
    d = console
    bob = browsers(d, "bob")
    bob.open("/")
    bob.wait(lambda: bob.shown("signin-form"), "the sign-in form")
    bob.by_id("token-input").send_keys(new_token())
    bob.by_id("signin-button").click()
    bob.wait_text("signin-error", lambda t: t.strip(), "a sign-in error")
    assert bob.shown("signin-form") and bob.cookie(COOKIE) is None

    bob.sign_in(CAST["bob"].token, "bob")
    old = bob.cookie(COOKIE)["value"]
    assert principal_of(ok(with_cookie(d, "GET", "/v1/session", old))) == "bob"

    bob.by_id("signout-button").click()
    bob.wait(lambda: bob.shown("signin-form"), "the sign-in form after signing out")
    bob.wait(lambda: "bob" not in bob.text("whoami"), "the name to go away")
    expect_error(with_cookie(d, "GET", "/v1/session", old), 401, "unauthorized")
    expect_error(with_cookie(d, "GET", "/v1/whoami", old), 401, "unauthorized")
    assert bob.fetch("GET", "/v1/session")["status"] == 401

    bob.open("/")  # a fresh load does not sign anyone in again
    bob.wait(lambda: bob.shown("signin-form"), "the sign-in form after a reload")
    assert "bob" not in bob.text("whoami")
