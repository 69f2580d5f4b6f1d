"""Anomaly flags in the daemon: scored before the policy, raised to review when unusual,
learned from what is allowed or approved (never from what is denied), kept across a restart,
and shown with `signoff anomaly`."""

import json
import time

import pytest

from conftest import CAST, ok, run_cli

ALLOW_ALL = {"default": "allow", "approvers": {"group": "sre", "count": 1}}
# Learn fast: no waiting period, three learned requests make a principal known.
QUICK = {"anomaly": {"learning_period": "0", "learning_requests": 3, "threshold": 50}}


def shell(*words, env="staging"):
    return {"kind": "shell", "command": list(words), "environment": env}


def settle_habit(bot, n=4):
    """A few ordinary, allowed requests: the habit the baseline learns."""
    for _ in range(n):
        req = bot.submit(shell("kubectl", "get", "pods"), intent="look around")
        assert req["status"] == "approved", req


def test_a_new_agent_is_marked_new_but_not_blocked(start_daemon):
    d = start_daemon(policy=ALLOW_ALL)
    req = d.client("deploy-bot").submit(shell("kubectl", "get", "pods"), intent="first look")
    assert req["status"] == "approved", "a new agent's allowed request must not be held by default"
    assert 0 < req["anomaly"]["score"] < 0.5, req["anomaly"]
    assert any("new" in r for r in req["anomaly"]["reasons"]), req["anomaly"]


def test_unusual_allowed_action_goes_to_review_with_the_reason(start_daemon):
    d = start_daemon(policy=ALLOW_ALL, extra=QUICK)
    bot = d.client("deploy-bot")
    settle_habit(bot)
    usual = bot.submit(shell("kubectl", "get", "pods"), intent="again")
    assert usual["status"] == "approved" and usual["anomaly"]["score"] < 0.5, usual["anomaly"]

    odd = bot.submit(shell("kubectl", "delete", "namespace", "shop", env="production"),
                     intent="clean up")
    assert odd["status"] == "pending", f"an unusual allow must wait for review: {odd}"
    assert odd["anomaly"]["score"] >= 0.5
    reasons = " ".join(odd["anomaly"]["reasons"])
    assert "kubectl delete" in reasons and "production" in reasons, reasons
    trace = [r for r in odd["decision"]["rules"] if r["name"] == "anomaly"]
    assert trace and trace[0]["decide"] == "review", odd["decision"]["rules"]
    assert "deploy-bot" in trace[0]["reason"]
    # The reasons are in the audit event too.
    ev = [e for e in d.client("erin").audit_events(limit=200)
          if e["type"] == "request.submitted" and e["request_id"] == odd["id"]][0]
    assert ev["data"]["anomaly"]["reasons"] == odd["anomaly"]["reasons"]


def test_approval_makes_it_normal_and_denial_does_not(start_daemon):
    d = start_daemon(policy=ALLOW_ALL, extra=QUICK)
    bot = d.client("deploy-bot")
    settle_habit(bot)

    first = bot.submit(shell("terraform", "apply", env="production"), intent="ship it")
    assert first["status"] == "pending"
    ok(d.client("bob").approve(first["id"], "planned change"))
    again = bot.submit(shell("terraform", "apply", env="production"), intent="ship it again")
    assert again["status"] == "approved", \
        f"an approved unusual action must become normal: {again['anomaly']}"

    wild = bot.submit(shell("terraform", "destroy", env="production"), intent="oops")
    assert wild["status"] == "pending"
    ok(d.client("bob").deny(wild["id"], "no"))
    still = bot.submit(shell("terraform", "destroy", env="production"), intent="oops again")
    assert still["status"] == "pending", "a denied action must stay unusual"
    assert any("terraform destroy" in r for r in still["anomaly"]["reasons"]), still["anomaly"]


def test_policy_can_use_the_score_and_reasons(start_daemon):
    policy = dict(ALLOW_ALL, rules=[{
        "name": "very-odd", "when": "anomaly.score >= 0.9", "decide": "deny",
        "reason": "Far outside this agent's normal.",
    }])
    d = start_daemon(policy=policy, extra={"anomaly": {"learning_score": 95}})
    req = d.client("deploy-bot").submit(shell("ls"), intent="x")
    assert req["status"] == "denied", req
    assert [r["name"] for r in req["decision"]["rules"] if r["decide"] == "deny"] == ["very-odd"]


@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_baseline_survives_a_restart(start_daemon, how):
    """A clean stop saves everything learned; a kill -9 loses at most the last second of it
    (a changed baseline is saved within a second), so that case gives it two."""
    d = start_daemon(policy=ALLOW_ALL, extra=QUICK)
    bot = d.client("deploy-bot")
    settle_habit(bot)
    before = bot.submit(shell("kubectl", "get", "pods"), intent="x")["anomaly"]
    if how == "stop":
        d.stop()
        d.start()
    else:
        time.sleep(2.0)
        d.restart()
    after = d.client("deploy-bot").submit(shell("kubectl", "get", "pods"), intent="x")
    assert after["status"] == "approved"
    assert not any("new" in r for r in after["anomaly"]["reasons"]), \
        f"the learned baseline was lost in the restart: {after['anomaly']} (before: {before})"


def test_cli_shows_the_baseline_and_scores_without_submitting(start_daemon, tmp_path):
    d = start_daemon(policy=ALLOW_ALL, extra=QUICK)
    bot = d.client("deploy-bot")
    settle_habit(bot)
    shown = run_cli(["anomaly", "show", "deploy-bot"], d.url, CAST["alice"].token, tmp_path)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    assert "kubectl get" in text and "staging" in text, text

    n = len(d.client("erin").list()["requests"])
    req_file = tmp_path / "req.json"
    req_file.write_text(json.dumps({"action": shell("kubectl", "delete", "pods", env="production")}))
    scored = run_cli(["anomaly", "score", str(req_file)], d.url, CAST["deploy-bot"].token, tmp_path)
    assert scored.returncode == 0, scored.stderr
    out = scored.stdout.decode()
    assert out.startswith("score ") and "kubectl delete" in out, out
    assert len(d.client("erin").list()["requests"]) == n, "scoring submitted a request"
    # Someone else's agent is not yours to inspect.
    other = run_cli(["anomaly", "show", "deploy-bot"], d.url, CAST["bob"].token, tmp_path)
    assert other.returncode == 5 and b"404" in other.stderr, other.stderr
