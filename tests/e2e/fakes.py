"""Local fakes of the services signoffd notifies: the Slack Web API and a webhook receiver.

Each fake is a Python stdlib HTTP server in a thread on 127.0.0.1 (port 0 at first, then the
same port for its whole life, so a daemon configured with its URL can find it again after it
was "down"). Every call is recorded with its raw bytes, headers, arrival time and the answer
given. On demand a fake answers a scripted status (500, 429 with Retry-After, ...) for the next
calls or for all of them, or goes down (stops listening: connections are refused) and comes
back up on the same port.

The Slack fake speaks the Web API as documented (see ../shared/REFERENCE.md):
`POST {api_url}/chat.postMessage` -> `{"ok": true, "channel", "ts"}` (a DM to a user id U... is
answered with the id of the IM channel, D..., as Slack does), `chat.update` (only for a
message it posted: `{"ok": false, "error": "message_not_found"}` otherwise) and
`chat.postEphemeral`; a wrong bearer token gets HTTP 200 `{"ok": false, "error": "invalid_auth"}`.

Also here: Slack's request signing (`slack_signature`) and the webhook signature check written
as the documentation shows it (`verify_webhook`).
"""

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# --------------------------------------------------------------------------------------------
# Signatures.


def slack_signature(secret, timestamp, body):
    """Slack's v0 request signature: "v0=" + hex HMAC-SHA256(secret, "v0:{ts}:{body}")."""
    if isinstance(secret, str):
        secret = secret.encode()
    if isinstance(body, str):
        body = body.encode()
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()


def slack_verify(secret, timestamp, body, signature, now=None, tolerance=300):
    """What a Slack app must do with an inbound request (used to check our own signer)."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if now is not None and abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(slack_signature(secret, timestamp, body), signature or "")


def verify_webhook(secret, header, body, now=None, tolerance=300):
    """Check a `Signoff-Signature: t=<unix seconds>,v1=<hex>` header, as docs show it.

    v1 = hex HMAC-SHA256(secret, "<t>.<raw body>"); refuse a t more than `tolerance`
    seconds from now (so a captured delivery cannot be replayed later)."""
    if isinstance(secret, str):
        secret = secret.encode()
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t, sig = parts["t"], parts["v1"]
        if abs((time.time() if now is None else now) - int(t)) > tolerance:
            return False
    except (AttributeError, KeyError, ValueError):
        return False
    expected = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, sig)


# --------------------------------------------------------------------------------------------
# The generic recording server.


class Call:
    """One HTTP call a fake received, and what it answered."""

    def __init__(self, method, path, headers, raw):
        self.t = time.monotonic()
        self.wall = time.time()
        self.http_method = method
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = raw
        self.params = None  # parsed body (JSON object, or form fields) when it parses
        self.status = None
        self.answer = None  # parsed JSON answered, when JSON
        self.answer_headers = {}

    @property
    def method(self):
        """The Web API method, e.g. chat.postMessage (the last path segment)."""
        return self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]

    @property
    def ok(self):
        return self.status == 200 and (not isinstance(self.answer, dict) or
                                       self.answer.get("ok", True) is True)

    def text(self):
        return self.raw.decode("utf-8", "replace")

    def __repr__(self):
        body = self.text()
        if len(body) > 300:
            body = body[:300] + "..."
        return f"<{self.http_method} {self.path} -> {self.status} {self.answer!r:.120} {body}>"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one call per connection: "down" really refuses at once

    def _any(self):
        self.server.fake._handle(self)

    do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _any

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeServer:
    """A recording HTTP server that can fail on demand."""

    def __init__(self):
        self.calls = []
        self._cond = threading.Condition()
        self._script = []   # [(method or None, status, headers, body)] for the next calls
        self.mode = None    # (status, headers, body) for every call, or None
        self.delay = 0.0    # seconds to hold each answer
        self._srv = None
        self._thread = None
        self.port = None
        self.up()

    # Control ---------------------------------------------------------------------------------

    def up(self):
        """Listen (again, on the same port once it has one)."""
        if self._srv is not None:
            return
        deadline = time.monotonic() + 5
        while True:
            try:
                srv = _Server(("127.0.0.1", self.port or 0), _Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        srv.fake = self
        self.port = srv.server_address[1]
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self._srv = srv

    def down(self):
        """Stop listening: connections to the port are refused until up()."""
        srv, self._srv = self._srv, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
            self._thread.join(5)

    def close(self):
        self.down()

    @property
    def is_up(self):
        return self._srv is not None

    def fail_next(self, n=1, status=500, retry_after=None, method=None, body=None):
        """Answer the next n calls (of `method`, if given) with `status`."""
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        with self._cond:
            for _ in range(n):
                self._script.append((method, status, headers, body))

    def fail_always(self, status=500, retry_after=None, body=None):
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self.mode = (status, headers, body)

    def heal(self):
        """Answer normally again (and forget scripted failures)."""
        with self._cond:
            self._script.clear()
        self.mode = None

    # Recording -------------------------------------------------------------------------------

    def snapshot(self):
        with self._cond:
            return list(self.calls)

    def wait_for(self, pred, timeout=20.0, what="calls"):
        """Wait until pred(list of calls) is truthy; return its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = pred(list(self.calls))
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what}; calls so far:\n"
                        + "\n".join(repr(c) for c in self.calls[-40:]))
                self._cond.wait(min(left, 0.2))

    # Serving ---------------------------------------------------------------------------------

    def respond(self, call):
        """(status, headers, JSON-able body) for a call nothing scripted. Override."""
        return 200, {}, {"ok": True}

    def _handle(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        call = Call(h.command, h.path, h.headers, raw)
        self._parse(call)
        scripted = None
        with self._cond:
            for i, (m, status, headers, body) in enumerate(self._script):
                if m is None or m == call.method:
                    scripted = (status, headers, body)
                    del self._script[i]
                    break
        if scripted is None and self.mode is not None:
            scripted = self.mode
        if scripted is not None:
            status, headers, body = scripted
            if body is None:
                body = {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}
        else:
            status, headers, body = self.respond(call)
        if self.delay:
            time.sleep(self.delay)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        call.status = status
        call.answer = body if not isinstance(body, bytes) else None
        call.answer_headers = dict(headers)
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json; charset=utf-8")
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except OSError:
            pass

    def _parse(self, call):
        ctype = call.headers.get("content-type", "")
        try:
            if ctype.startswith("application/json"):
                call.params = json.loads(call.raw.decode("utf-8"))
            elif ctype.startswith("application/x-www-form-urlencoded"):
                call.params = dict(urllib.parse.parse_qsl(call.raw.decode("utf-8")))
        except (ValueError, UnicodeDecodeError):
            call.params = None


# --------------------------------------------------------------------------------------------
# Slack Web API.


class FakeSlack(FakeServer):
    """chat.postMessage / chat.update / chat.postEphemeral, as Slack answers them."""

    def __init__(self, token):
        self.token = token
        self._ts = itertools.count(1)
        self.messages = {}  # (channel, ts) -> {"post": Call, "updates": [Call]}
        super().__init__()

    @property
    def api_url(self):
        return f"http://127.0.0.1:{self.port}/api"

    def _next_ts(self):
        return f"{int(time.time())}.{next(self._ts):06d}"

    def respond(self, call):
        if not call.path.startswith("/api/"):
            return 404, {}, {"ok": False, "error": "unknown_method"}
        if call.headers.get("authorization") != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        p = call.params
        if not isinstance(p, dict):
            return 200, {}, {"ok": False, "error": "invalid_arguments"}
        m = call.method
        if m == "chat.postMessage":
            ch = p.get("channel")
            if not isinstance(ch, str) or not ch:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            if not p.get("text") and not p.get("blocks"):
                return 200, {}, {"ok": False, "error": "no_text"}
            answered = "D" + ch[1:] if ch[0] in "UW" else ch
            ts = self._next_ts()
            with self._cond:
                self.messages[(answered, ts)] = {"post": call, "updates": []}
            return 200, {}, {"ok": True, "channel": answered, "ts": ts,
                             "message": {"type": "message", "text": p.get("text", ""), "ts": ts}}
        if m == "chat.update":
            key = (p.get("channel"), p.get("ts"))
            with self._cond:
                msg = self.messages.get(key)
                if msg is None:
                    return 200, {}, {"ok": False, "error": "message_not_found"}
                msg["updates"].append(call)
            return 200, {}, {"ok": True, "channel": key[0], "ts": key[1], "text": p.get("text", "")}
        if m == "chat.postEphemeral":
            if not p.get("channel") or not p.get("user"):
                return 200, {}, {"ok": False, "error": "invalid_arguments"}
            return 200, {}, {"ok": True, "message_ts": self._next_ts()}
        return 200, {}, {"ok": False, "error": "unknown_method"}

    # Queries ---------------------------------------------------------------------------------

    def attempts(self, method=None, rid=None, channel=None, calls=None):
        """Every call received (failed ones too), optionally of one method, request, channel."""
        out = []
        for c in (self.snapshot() if calls is None else calls):
            if method and c.method != method:
                continue
            if rid and rid not in c.text():
                continue
            if channel and not (isinstance(c.params, dict) and c.params.get("channel") == channel):
                continue
            out.append(c)
        return out

    def posts(self, rid=None, calls=None):
        """Successful chat.postMessage calls (about request `rid`)."""
        return [c for c in self.attempts("chat.postMessage", rid, calls=calls) if c.ok]

    def updates(self, post, calls=None):
        """Successful chat.update calls of the message `post` created."""
        ch, ts = post.answer["channel"], post.answer["ts"]
        return [c for c in self.attempts("chat.update", calls=calls)
                if c.ok and c.params.get("channel") == ch and c.params.get("ts") == ts]

    def ephemerals(self, user=None, calls=None):
        return [c for c in self.attempts("chat.postEphemeral", calls=calls)
                if c.ok and (user is None or c.params.get("user") == user)]

    def failed_updates(self, calls=None):
        return [c for c in self.attempts("chat.update", calls=calls)
                if c.status == 200 and not c.ok]


# --------------------------------------------------------------------------------------------
# Webhook receiver.


class FakeWebhook(FakeServer):
    """Accepts POST /hook with 200 {"ok": true}; records everything."""

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def respond(self, call):
        if call.http_method != "POST" or call.path != "/hook":
            return 404, {}, {"error": "not here"}
        return 200, {}, {"ok": True}

    def deliveries(self, calls=None):
        """Calls answered 200 whose body is JSON."""
        return [c for c in (self.snapshot() if calls is None else calls)
                if c.status == 200 and isinstance(c.params, dict)]
