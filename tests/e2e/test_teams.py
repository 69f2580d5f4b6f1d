"""Microsoft Teams, black-box: a real signoffd with a Bot Framework bot whose token endpoint,
OpenID metadata / JWKS, connector and Workflows webhook are local fakes (fake_teams.py), and
adaptiveCard/action invokes POSTed to /v1/integrations/teams/messages as Teams sends them,
with bearer JWTs signed here.

- Inbound auth: tokens with a wrong issuer, audience, expiry, unknown key, bad signature,
  alg none, a serviceUrl other than the activity's, or none at all are refused with 401 and
  change nothing; a key published later is found by refreshing the JWKS on its unknown kid.
- Clicks: a mapped reviewer's Approve counts (channel "teams") and the invoke is answered with
  the refreshed card; the requester, the agent's owner and an unmapped Teams user are refused
  (audited review.refused, the card says why), the request unchanged.
- Outbound: the card is posted to the routed (or default) conversation with a bot token from
  the client-credentials grant, and updated in place (PUT) once decided; without a bot, a card
  with a console link goes to the Workflows webhook.
"""

import json
import secrets
import time
import uuid

import pytest
import requests

from conftest import CAST, Principal, ok, wait_until
from fake_teams import BotSigner, FakeTeams, card_of, card_text, executes

MESSAGES = "/v1/integrations/teams/messages"
CONSOLE = "http://console.test/"
TENANT = str(uuid.uuid4())
CONVERSATION = "19:approvals0a1b2c3d4e5f@thread.tacv2"
ROUTED = "19:databases9f8e7d6c@thread.tacv2"
AAD = {name: str(uuid.uuid4()) for name in ("alice", "bob", "carol", "dave", "erin")}
NOBODY = str(uuid.uuid4())  # an Entra ID user no principal maps to


class TeamsPrincipal(Principal):
    def __init__(self, base, teams_user=None):  # keep base's token
        self.__dict__.update(vars(base))
        self.teams_user = teams_user

    def config(self):
        entry = super().config()
        if self.teams_user:
            entry["teams_user"] = self.teams_user
        return entry


class Teams:
    """One test's Teams world: the fakes, the bot's secrets, the daemon, and clicks."""

    def __init__(self, start_daemon, tmp_path, monkeypatch):
        self._start_daemon = start_daemon
        self.tmp = tmp_path
        self.mp = monkeypatch
        self.app_id = str(uuid.uuid4())
        self.password = secrets.token_urlsafe(24)
        self.fake = FakeTeams(self.app_id, self.password)
        self.signer = BotSigner(self.app_id, self.fake.service_url)
        self.fake.signer = self.signer
        self.d = None

    def start(self, policy=None, bot=True, webhook=False):
        t = {}
        if bot:
            self.mp.setenv("SIGNOFF_TEST_TEAMS_PASSWORD", self.password)
            t.update({"app_id": self.app_id, "app_password_env": "SIGNOFF_TEST_TEAMS_PASSWORD",
                      "tenant": TENANT, "token_url": self.fake.token_url,
                      "openid_metadata_url": self.fake.openid_url,
                      "service_url": self.fake.service_url, "conversation": CONVERSATION})
        if webhook:
            hook = self.tmp / "teams-webhook-url"
            hook.write_text(self.fake.workflow_url + "\n")
            hook.chmod(0o600)
            t["webhook_url_file"] = str(hook)
        n = {"console_url": CONSOLE, "max_attempts": 10, "max_delay": "2s", "teams": t}
        principals = [TeamsPrincipal(p, AAD.get(p.id)) for p in CAST.values()]
        self.d = self._start_daemon(policy=policy, principals=principals, extra={"notify": n})
        return self.d

    def client(self, name):
        return self.d.client(name)

    @property
    def auditor(self):
        return self.d.client("erin")

    def wait_post(self, rid, conversation=CONVERSATION):
        def found(calls):
            return [c for c in self.fake.posts(rid, calls) if c.conversation == conversation]
        return self.fake.wait_for(found, 20, f"a card about {rid} in {conversation}")[0]

    # Inbound ---------------------------------------------------------------------------------

    def activity(self, aad, verb, rid, conversation=CONVERSATION, service_url=None):
        """An adaptiveCard/action invoke as Teams sends it for a click on our card."""
        return {
            "name": "adaptiveCard/action",
            "type": "invoke",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "localTimestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime()),
            "id": "f:" + secrets.token_hex(8),
            "channelId": "msteams",
            "serviceUrl": service_url or self.fake.service_url,
            "from": {"id": "29:1" + secrets.token_hex(20), "name": "Some One", "aadObjectId": aad},
            "conversation": {"isGroup": True, "conversationType": "channel", "tenantId": TENANT,
                             "id": conversation},
            "recipient": {"id": "28:" + self.app_id, "name": "signoff"},
            "entities": [{"locale": "en-US", "country": "US", "platform": "Web",
                          "timezone": "Europe/Paris", "type": "clientInfo"}],
            "channelData": {"tenant": {"id": TENANT}, "source": {"name": "message"},
                            "legacy": {"replyToId": "1:abc"}},
            "replyToId": "1:abc",
            "value": {"action": {"type": "Action.Execute", "title": "Approve", "verb": verb,
                                 "data": {"request_id": rid}},
                      "trigger": "manual"},
            "locale": "en-US",
        }

    def send(self, activity, token=None, header=None):
        if header is None:
            header = "Bearer " + (token if token is not None else self.signer.token())
        h = {"Content-Type": "application/json; charset=utf-8"}
        if header:
            h["Authorization"] = header
        return requests.post(self.d.url + MESSAGES, data=json.dumps(activity), headers=h,
                             timeout=30)

    def click(self, who, rid, verb="signoff_approve", **kw):
        aad = AAD.get(who, who)
        return self.send(self.activity(aad, verb, rid), **kw)

    def refused_events(self):
        return [e for e in self.auditor.audit_events() if e["type"] == "review.refused"]


@pytest.fixture
def teams(start_daemon, tmp_path, monkeypatch):
    t = Teams(start_daemon, tmp_path, monkeypatch)
    yield t
    t.fake.close()


def invoke_card(r):
    """The refreshed card of an invoke answer (asserting its shape)."""
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.get("statusCode") == 200, body
    assert body.get("type") == "application/vnd.microsoft.card.adaptive", body
    card = body["value"]
    assert card.get("type") == "AdaptiveCard", card
    return card


# --------------------------------------------------------------------------------------------


def test_bad_tokens_are_refused_and_change_nothing(teams):
    teams.start()
    rid = teams.client("deploy-bot").submit()["id"]
    s = teams.signer
    now = int(time.time())
    bad = {
        "wrong issuer": s.token(iss="https://sts.windows.net/" + TENANT + "/"),
        "wrong audience": s.token(aud=str(uuid.uuid4())),
        "expired": s.token(exp=now - 400, nbf=now - 4000),
        "not yet valid": s.token(nbf=now + 3600, exp=now + 7200),
        "no expiry": s.token(exp=None),
        "unknown key": s.token(key=s.unpublished),
        "bad signature": s.token(key=s.unpublished, kid=s.published[0].kid),
        "alg none": s.token(alg="none"),
        "HS256": s.token(alg="HS256", signature="c2lnbmF0dXJl"),
        "other serviceUrl": s.token(serviceUrl="https://evil.example/"),
        "garbage": "not.a.jwt",
    }
    for what, tok in bad.items():
        r = teams.click("bob", rid, token=tok)
        assert r.status_code == 401, f"{what}: expected 401, got {r.status_code}: {r.text}"
    assert teams.send(teams.activity(AAD["bob"], "signoff_approve", rid), header="").status_code == 401
    assert teams.send(teams.activity(AAD["bob"], "signoff_approve", rid),
                      header="Basic " + s.token()).status_code == 401
    req = teams.auditor.show(rid)
    assert req["status"] == "pending" and req["reviews"] == [], req
    # the JWKS was fetched (and only refreshed at the pace allowed): not once per token
    keys = [c for c in teams.fake.snapshot() if c.path == "/keys"]
    assert 1 <= len(keys) <= 2, keys
    # and a good token still works afterwards
    card = invoke_card(teams.click("bob", rid))
    assert "approved: 1" in card_text(card), card


def test_approve_in_teams_counts_answers_with_the_card_and_updates_the_message(teams):
    teams.start()
    rid = teams.client("deploy-bot").submit(intent="roll the api after the config change",
                                            context={"ticket": "OPS-1234"})["id"]
    post = teams.wait_post(rid)
    # the bot token came from the client-credentials grant and was used on the connector
    tok = teams.fake.token_calls()
    assert tok and tok[0].params == {"grant_type": "client_credentials",
                                     "client_id": teams.app_id, "client_secret": teams.password,
                                     "scope": "https://api.botframework.com/.default"}, tok
    assert post.headers["authorization"] == "Bearer " + tok[0].answer["access_token"]
    card = card_of(post)
    text = card_text(card)
    for word in ("deploy-bot", "alice", "kubectl rollout restart deploy/api", "production",
                 "deploy/api", "roll the api after the config change", "OPS-1234", rid,
                 CONSOLE):
        assert word in text, f"{word!r} not on the card: {card}"
    assert executes(card) == {"signoff_approve": {"request_id": rid},
                              "signoff_deny": {"request_id": rid}}, card

    r = teams.click("bob", rid)
    card = invoke_card(r)
    assert executes(card), "still pending (1 of 2): the buttons stay"
    assert "approved: 1" in card_text(card), card
    card = invoke_card(teams.click("carol", rid))
    text = card_text(card)
    assert "approved" in text.lower() and not executes(card), card
    assert "carol approved via teams" in text, card

    req = teams.auditor.show(rid)
    assert req["status"] == "approved", req
    assert [(x["reviewer"], x["decision"], x["channel"]) for x in req["reviews"]] == \
        [("bob", "approve", "teams"), ("carol", "approve", "teams")], req["reviews"]

    # the posted card is refreshed in place, without buttons
    def decided(calls):
        ups = [u for u in teams.fake.updates(post, calls) if not executes(card_of(u))]
        return ups
    up = teams.fake.wait_for(decided, 20, "a PUT of the decided card")[-1]
    assert up.params.get("id") == post.activity_id
    assert "carol approved via teams" in card_text(card_of(up))
    # one token for all of it: cached, not fetched per call
    assert len(teams.fake.token_calls()) == 1


def test_deny_in_teams_and_route_to_the_rule_conversation(teams):
    teams.start(policy={"rules": [{"name": "db", "when": "action.resource == 'db/main'",
                                   "decide": "review", "route": {"teams": ROUTED}}]})
    rid = teams.client("deploy-bot").submit(sample_db_action())["id"]
    post = teams.wait_post(rid, ROUTED)
    assert not teams.fake.posts(rid) or all(p.conversation == ROUTED for p in teams.fake.posts(rid))
    card = invoke_card(teams.send(teams.activity(AAD["bob"], "signoff_deny", rid, ROUTED)))
    assert "denied" in card_text(card).lower() and not executes(card), card
    assert teams.auditor.show(rid)["status"] == "denied"
    teams.fake.wait_for(lambda calls: teams.fake.updates(post, calls), 20, "the card updated")


def sample_db_action():
    return {"kind": "shell", "command": ["psql", "-c", "vacuum full"], "resource": "db/main",
            "environment": "production"}


def test_requester_owner_and_unmapped_users_are_refused(teams):
    teams.start()
    rid = teams.client("deploy-bot").submit()["id"]  # agent owned by alice
    own = teams.client("bob").submit()["id"]           # bob asks himself
    cases = [("alice", rid, "owner"), (NOBODY, rid, "unknown_chat_user"), ("bob", own, "self")]
    for who, target, _ in cases:
        n = len(teams.refused_events())
        card = invoke_card(teams.click(who, target))
        text = card_text(card)
        assert "Not recorded" in text, f"{who}: the card does not say why: {card}"
        assert executes(card), "still pending: the buttons stay"
        evs = wait_until(lambda: teams.refused_events()[n:] or None, 15, 0.1,
                         "a review.refused event")
        assert len(evs) == 1, evs
        assert evs[0]["request_id"] == target and evs[0]["data"]["channel"] == "teams", evs[0]
        assert AAD.get(who, who) in json.dumps(evs[0]), evs[0]
    assert "teams_user" in card_text(invoke_card(teams.click(NOBODY, rid)))
    for target in (rid, own):
        req = teams.auditor.show(target)
        assert req["status"] == "pending" and req["reviews"] == [], req


def test_other_activities_get_an_empty_200_and_unknown_buttons_a_400_invoke(teams):
    teams.start()
    msg = teams.activity(AAD["bob"], "signoff_approve", "req_x")
    msg.update({"type": "message", "text": "hello"})
    msg.pop("name")
    r = teams.send(msg)
    assert r.status_code == 200 and r.text == "", r.text
    r = teams.send(teams.activity(AAD["bob"], "something_else", "req_x"))
    assert r.status_code == 200 and r.json().get("statusCode") == 400, r.text
    r = teams.click("bob", "req_00000000000000000000000000")
    assert r.status_code == 200 and r.json().get("statusCode") == 404, r.text


def test_a_key_published_later_is_found_by_refreshing_on_its_kid(teams):
    teams.start()
    rid = teams.client("deploy-bot").submit()["id"]
    assert teams.click("bob", rid, token=teams.signer.token(key=teams.signer.unpublished)) \
        .status_code == 401
    teams.signer.published.append(teams.signer.unpublished)  # Microsoft rotates its keys
    # refreshes are rate-limited (10 s): it is accepted once the next refresh is allowed
    deadline = time.monotonic() + 30
    while True:
        r = teams.click("bob", rid, token=teams.signer.token(key=teams.signer.unpublished))
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    invoke_card(r)
    assert teams.auditor.show(rid)["reviews"][0]["channel"] == "teams"
    assert len([c for c in teams.fake.snapshot() if c.path == "/keys"]) <= 4


def test_without_a_bot_a_card_with_a_console_link_goes_to_the_workflow(teams):
    teams.start(bot=False, webhook=True)
    rid = teams.client("deploy-bot").submit()["id"]
    hook = teams.fake.wait_for(lambda calls: teams.fake.webhook_posts(calls), 20,
                               "a card at the Workflows webhook")[0]
    assert hook.params.get("type") == "message"
    card = card_of(hook)
    assert not executes(card), "a webhook card cannot have Action.Execute"
    links = [a for a in card.get("actions") or [] if a.get("type") == "Action.OpenUrl"]
    assert links and links[0]["url"] == f"{CONSOLE}#/r/{rid}", card
    assert rid in card_text(card)
    # no bot: no endpoint, no connector, no token
    r = teams.send(teams.activity(AAD["bob"], "signoff_approve", rid))
    assert r.status_code == 404, r.text
    ok(teams.client("bob").approve(rid))
    time.sleep(1.0)
    assert not [c for c in teams.fake.snapshot() if c.path.startswith(("/v3/", "/token"))]
