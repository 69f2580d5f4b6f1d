"""A local fake of the Microsoft services a Teams bot talks to, and a Bot Framework token
signer, speaking the wire formats of ../shared/REFERENCE.md (Microsoft Teams section).

One recording server (fakes.FakeServer) on 127.0.0.1 plays:

- the Entra ID token endpoint: `POST /token` with the OAuth2 client-credentials form
  (grant_type, client_id, client_secret, scope) -> `{"token_type": "Bearer", "expires_in",
  "ext_expires_in", "access_token"}`; wrong credentials -> 401 `{"error": "invalid_client"}`;
- the Bot Framework OpenID metadata: `GET /openid` -> `{"issuer", "jwks_uri", ...}`, and the
  JWKS: `GET /keys` -> `{"keys": [{kty, use, kid, x5t, n, e, endorsements}]}`;
- the connector: `POST /v3/conversations/{id}/activities` -> 201 `{"id": activityId}` and
  `PUT /v3/conversations/{id}/activities/{activityId}` -> 200 `{"id"}` (404 for an activity it
  never created); a bearer token it did not issue -> 401;
- a Workflows incoming webhook: `POST /workflow` -> 202 (empty body).

`BotSigner` signs Bot Framework bearer JWTs (RS256) with RSA keys made here (python3
cryptography, Debian's python3-cryptography), so tests can also sign wrong ones.
"""

import base64
import itertools
import json
import secrets
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fakes import FakeServer

ISSUER = "https://api.botframework.com"
SCOPE = "https://api.botframework.com/.default"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")))


class RsaKey:
    def __init__(self, kid):
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self):
        nums = self.private.public_key().public_numbers()
        n = nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")
        e = nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": b64url(n),
                "e": b64url(e), "endorsements": ["msteams"]}

    def sign(self, data):
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())


class BotSigner:
    """Signs Bot Framework bearer tokens the way the Bot Connector service does."""

    def __init__(self, app_id, service_url):
        self.app_id = app_id
        self.service_url = service_url
        self.published = [RsaKey("bf-key-1")]
        self.unpublished = RsaKey("bf-key-unknown")

    def jwks(self):
        return {"keys": [k.jwk() for k in self.published]}

    def token(self, key=None, kid=None, alg="RS256", signature=None, **claims):
        """A compact JWS; claims override the good ones (None deletes a claim)."""
        key = key or self.published[0]
        now = int(time.time())
        body = {"serviceUrl": self.service_url, "nbf": now - 5, "exp": now + 3600,
                "iss": ISSUER, "aud": self.app_id}
        for k, v in claims.items():
            if v is None:
                body.pop(k, None)
            else:
                body[k] = v
        header = {"alg": alg, "kid": kid or key.kid, "x5t": kid or key.kid, "typ": "JWT"}
        signing_input = b64url_json(header) + "." + b64url_json(body)
        if signature is None:
            signature = b64url(key.sign(signing_input.encode())) if alg == "RS256" else ""
        return signing_input + "." + signature


class FakeTeams(FakeServer):
    """Token endpoint, OpenID metadata + JWKS, Bot Framework connector, Workflows webhook."""

    def __init__(self, app_id, app_password, signer=None):
        self.app_id = app_id
        self.app_password = app_password
        self.signer = signer
        self.issued = set()       # bot tokens handed out
        self.activities = {}      # (conversation, id) -> {"post": Call, "updates": [Call]}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        super().__init__()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self):
        return self.base + "/token"

    @property
    def openid_url(self):
        return self.base + "/openid"

    @property
    def service_url(self):
        return self.base + "/"

    @property
    def workflow_url(self):
        return self.base + "/workflow"

    def respond(self, call):
        path = call.path.split("?", 1)[0]
        m = call.http_method
        if m == "POST" and path == "/token":
            return self._token(call)
        if m == "GET" and path == "/openid":
            return 200, {}, {"issuer": ISSUER, "authorization_endpoint": self.base + "/auth",
                             "jwks_uri": self.base + "/keys",
                             "id_token_signing_alg_values_supported": ["RS256"],
                             "token_endpoint_auth_methods_supported": ["private_key_jwt"]}
        if m == "GET" and path == "/keys":
            return 200, {}, self.signer.jwks()
        if m == "POST" and path == "/workflow":
            return 202, {}, b""
        if path.startswith("/v3/conversations/"):
            return self._connector(call, path)
        return 404, {}, {"error": {"code": "NotFound", "message": path}}

    def _token(self, call):
        p = call.params or {}
        if p.get("grant_type") != "client_credentials" or p.get("scope") != SCOPE:
            return 400, {}, {"error": "invalid_request"}
        if p.get("client_id") != self.app_id or p.get("client_secret") != self.app_password:
            return 401, {}, {"error": "invalid_client"}
        tok = "eyJ0eXAiOiJKV1QifQ." + secrets.token_urlsafe(48)
        with self._lock:
            self.issued.add(tok)
        return 200, {}, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                         "access_token": tok}

    def _connector(self, call, path):
        auth = call.headers.get("authorization", "")
        with self._lock:
            good = auth.startswith("Bearer ") and auth[7:] in self.issued
        if not good:
            return 401, {}, {"message": "Authorization has been denied for this request."}
        parts = path.split("/")  # ['', 'v3', 'conversations', conv, 'activities', (id)]
        if len(parts) < 5 or parts[4] != "activities":
            return 404, {}, {"error": {"code": "NotFound"}}
        conv = urllib.parse.unquote(parts[3])
        act = call.params
        if not isinstance(act, dict) or act.get("type") != "message":
            return 400, {}, {"error": {"code": "BadArgument", "message": "not a message"}}
        if call.http_method == "POST" and len(parts) == 5:
            aid = f"1:{int(time.time() * 1000)}{next(self._ids)}"
            with self._cond:
                self.activities[(conv, aid)] = {"post": call, "updates": []}
            call.conversation, call.activity_id = conv, aid
            return 201, {}, {"id": aid}
        if call.http_method == "PUT" and len(parts) == 6:
            aid = urllib.parse.unquote(parts[5])
            with self._cond:
                rec = self.activities.get((conv, aid))
                if rec is None:
                    return 404, {}, {"error": {"code": "ActivityNotFoundInConversation"}}
                rec["updates"].append(call)
            call.conversation, call.activity_id = conv, aid
            return 200, {}, {"id": aid}
        return 405, {}, {"error": {"code": "MethodNotAllowed"}}

    # Queries ---------------------------------------------------------------------------------

    def token_calls(self, calls=None):
        return [c for c in (self.snapshot() if calls is None else calls) if c.path == "/token"]

    def posts(self, rid=None, calls=None):
        """Connector POSTs of a card (about `rid`) that were answered 201."""
        return [c for c in (self.snapshot() if calls is None else calls)
                if c.http_method == "POST" and c.path.startswith("/v3/") and c.status == 201
                and (rid is None or rid in c.text())]

    def updates(self, post, calls=None):
        return [c for c in (self.snapshot() if calls is None else calls)
                if c.http_method == "PUT" and c.status == 200
                and getattr(c, "activity_id", None) == post.activity_id]

    def webhook_posts(self, calls=None):
        return [c for c in (self.snapshot() if calls is None else calls)
                if c.path == "/workflow" and c.status == 202]


def card_of(call):
    """The Adaptive Card a message activity (a connector or webhook call) carries."""
    atts = (call.params or {}).get("attachments") or []
    assert len(atts) == 1 and atts[0].get("contentType") == CARD_TYPE, call.params
    return atts[0]["content"]


def card_text(card):
    """Every string in a card, joined (for 'does it say X' checks)."""
    out = []

    def walk(v):
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(card)
    return "\n".join(out)


def executes(card):
    """{verb: data} of the card's Action.Execute buttons."""
    return {a.get("verb"): a.get("data") for a in card.get("actions") or []
            if a.get("type") == "Action.Execute"}
