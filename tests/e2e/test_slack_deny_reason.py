"""Deny with a reason: the third button opens a Slack form (views.open with the click's
trigger_id); its submission denies the request with that reason as the comment, through the
same review path as every other click."""
import json
import secrets
import time
import urllib.parse

import pytest

from conftest import ok
from test_slack import CHANNEL, INTENT, PROD_RULE, SLACK_IDS, Slack, button


class FormSlack:
    """Wraps the fake Slack so that views.open is answered (and recorded) as Slack does."""

    def __init__(self, fake):
        self.fake = fake
        plain = fake.respond

        def respond(call):
            if call.method == "views.open":
                p = call.params or {}
                if not p.get("trigger_id") or not isinstance(p.get("view"), dict):
                    return 200, {}, {"ok": False, "error": "invalid_arguments"}
                return 200, {}, {"ok": True, "view": {"id": "V" + secrets.token_hex(4)}}
            return plain(call)
        fake.respond = respond

    def forms(self, calls=None):
        return [c for c in (self.fake.snapshot() if calls is None else calls)
                if c.method == "views.open" and c.ok]


@pytest.fixture
def slack(start_daemon, tmp_path, monkeypatch):
    s = Slack(start_daemon, tmp_path, monkeypatch)
    s.forms = FormSlack(s.fake)
    yield s
    s.fake.close()


def submission_body(user, rid, reason):
    payload = {
        "type": "view_submission", "user": {"id": user}, "team": {"id": "T0TEST"},
        "trigger_id": f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(8)}",
        "view": {"id": "V1", "callback_id": "signoff_deny", "private_metadata": rid,
                 "state": {"values": {"reason": {"reason": {"type": "plain_text_input",
                                                            "value": reason}}}}},
    }
    return "payload=" + urllib.parse.quote(json.dumps(payload))


def test_deny_with_a_reason_opens_a_form_and_records_the_reason(slack):
    d = slack.start(policy={"rules": [PROD_RULE]})
    rid = d.client("deploy-bot").submit(intent=INTENT)["id"]
    posts = slack.wait_posts(rid, 1)
    post = posts[CHANNEL]
    assert button(post, "signoff_deny_reason")[1] is not None, "no 'Deny with a reason' button"

    # The click opens the form on the clicker's screen, with the click's trigger_id.
    r = slack.click(post, SLACK_IDS["carol"], "signoff_deny_reason")
    assert r.status_code == 200
    forms = slack.fake.wait_for(lambda calls: slack.forms.forms(calls), 10, "views.open")
    view = forms[0].params["view"]
    assert forms[0].params["trigger_id"]
    assert view["private_metadata"] == rid and view["callback_id"] == "signoff_deny"
    assert d.client("carol").show(rid)["status"] == "pending", "opening the form decided"

    # Sending the form denies, with the reason, as carol, through Slack.
    body = submission_body(SLACK_IDS["carol"], rid, "not during the freeze")
    r = slack.send(body, slack.signed_headers(body))
    assert r.status_code == 200
    req = ok(d.client("carol").get(f"/v1/requests/{rid}"))
    assert req["status"] == "denied"
    assert [(x["reviewer"], x["decision"], x["channel"], x["comment"]) for x in req["reviews"]] \
        == [("carol", "deny", "slack", "not during the freeze")]


def test_a_form_sent_by_the_requester_side_is_refused(slack):
    d = slack.start(policy={"rules": [PROD_RULE]})
    rid = d.client("deploy-bot").submit(intent=INTENT)["id"]
    slack.wait_posts(rid, 1)
    # alice owns deploy-bot: her form is refused like her click would be.
    body = submission_body(SLACK_IDS["alice"], rid, "mine")
    r = slack.send(body, slack.signed_headers(body))
    assert r.status_code == 200
    assert d.client("carol").show(rid)["status"] == "pending"
    refused = [e for e in d.client("erin").audit_events() if e["type"] == "review.refused"]
    assert refused and refused[-1]["data"]["code"] == "self_approval"
