"""The policy engine, black-box: rules in a real signoffd's configuration, seen through the API.

Combination (deny beats review beats allow), requirements from several rules met by distinct
humans, `require`, absent fields (unknown: review and deny rules apply, allow rules do not),
identity-aware approvers (`{group: owner.team}`), escalation, the decision trace, and reload
(POST /v1/admin/policy/reload and SIGHUP) with its audit event and policy versions.
"""

import json
import signal
import subprocess
import time

from conftest import (CAST, Client, Principal, error_of, make_config, ok, parse_time, wait_until,
                      SIGNOFF)


def rule(name, when, decide, **more):
    r = {"name": name, "when": when, "decide": decide}
    r.update(more)
    return r


def shell(*argv, env="production", **more):
    a = {"kind": "shell", "command": list(argv), "resource": "deploy/api"}
    if env is not None:
        a["environment"] = env
    a.update(more)
    return a


def names(req):
    return [x["name"] for x in req["decision"]["rules"]]


def plain_requirements(req):
    return [{k: v for k, v in q.items() if k in ("group", "principals", "count")}
            for q in req["decision"]["requirements"]]


def policy_version_of(path):
    """The version `signoff policy check` computes for a configuration file."""
    r = subprocess.run([str(SIGNOFF), "policy", "check", str(path), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["policy_version"]


def events_of(client, etype):
    return [e for e in client.audit_events() if e["type"] == etype]


# --------------------------------------------------------------------------------------------
# Combination.

COMBINE = {
    "default": "deny",
    "approvers": {"group": "sre", "count": 1},
    "rules": [
        rule("shell-is-fine", 'action.kind == "shell"', "allow", reason="shell is allowed"),
        rule("prod-needs-review", 'action.environment == "production"', "review",
             reason="production changes are reviewed"),
        rule("no-deletes", 'action.command[1] == "delete"', "deny", reason="never delete"),
    ],
}


def test_deny_beats_review_beats_allow(start_daemon):
    d = start_daemon(policy=COMBINE)
    bot = d.client("deploy-bot")

    r = bot.submit(shell("kubectl", "get", "pods", env="staging"))
    assert (r["status"], r["decision"]["outcome"]) == ("approved", "allow")
    assert names(r) == ["shell-is-fine"]

    r = bot.submit(shell("kubectl", "rollout", "restart", "deploy/api"))
    assert (r["status"], r["decision"]["outcome"]) == ("pending", "review")
    assert names(r) == ["shell-is-fine", "prod-needs-review"]
    assert plain_requirements(r) == [{"group": "sre", "count": 1}]

    r = bot.submit(shell("kubectl", "delete", "deploy/api"))
    assert (r["status"], r["decision"]["outcome"]) == ("denied", "deny")
    assert names(r) == ["shell-is-fine", "prod-needs-review", "no-deletes"]
    assert r["decision"]["requirements"] == []

    # No rule matches: policy.default.
    r = bot.submit({"kind": "http", "command": ["curl", "https://example.com"],
                    "environment": "staging"})
    assert r["status"] == "denied"
    assert r["decision"]["rules"][0]["name"] == "default"
    assert r["decision"]["rules"][0]["matched"] == "default"


# --------------------------------------------------------------------------------------------
# Requirements from several rules: distinct humans.


def test_requirements_of_several_rules_need_distinct_humans(start_daemon):
    d = start_daemon(policy={
        "default": "allow",
        "rules": [
            rule("prod-sre", 'action.environment == "production"', "review",
                 approvers={"group": "sre", "count": 1}),
            rule("deploys-admins", 'action.resource.startsWith("deploy/")', "review",
                 approvers={"group": "admins", "count": 1}),
        ],
    })
    ci = d.client("ci")
    r = ci.submit(shell("kubectl", "apply", "-f", "api.yaml"))
    rid = r["id"]
    assert names(r) == ["prod-sre", "deploys-admins"]
    assert plain_requirements(r) == [{"group": "sre", "count": 1}, {"group": "admins", "count": 1}]

    # carol is in sre and in admins: one person, one seat.
    r = ok(d.client("carol").approve(rid))
    assert r["status"] == "pending", "one human met two requirements"
    error_of(d.client("carol").approve(rid), 409, "already_reviewed")
    r = ok(d.client("alice").approve(rid))
    assert r["status"] == "approved"


def test_two_rules_asking_the_same_group_need_two_people(start_daemon):
    d = start_daemon(policy={
        "default": "allow",
        "rules": [
            rule("prod-sre", 'action.environment == "production"', "review",
                 approvers={"group": "sre", "count": 1}),
            rule("kubectl-sre", 'action.command[0] == "kubectl"', "review",
                 approvers={"group": "sre", "count": 1}),
        ],
    })
    r = d.client("ci").submit(shell("kubectl", "apply", "-f", "api.yaml"))
    assert plain_requirements(r) == [{"group": "sre", "count": 1}, {"group": "sre", "count": 1}]
    assert ok(d.client("alice").approve(r["id"]))["status"] == "pending"
    assert ok(d.client("bob").approve(r["id"]))["status"] == "approved"


# --------------------------------------------------------------------------------------------
# require.

REQUIRE = {
    "default": "review",
    "approvers": {"group": "sre", "count": 1},
    "rules": [
        rule("prod-needs-why", 'action.environment == "production"', "review",
             require=["intent", "context.ticket"]),
        rule("no-drops", 'action.command[1] == "drop"', "deny"),
    ],
}


def test_require_refuses_a_request_without_the_field(start_daemon):
    d = start_daemon(policy=REQUIRE)
    bot = d.client("deploy-bot")
    action = shell("psql", "migrate")

    resp = bot.post("/v1/requests", {"action": action, "context": {"ticket": "CHG-1"}})
    error_of(resp, 400, "missing_field")
    msg = resp.json()["error"]["message"]
    assert "prod-needs-why" in msg and "intent" in msg, msg

    error_of(bot.submit_raw(action, intent="", context={"ticket": "CHG-1"}), 400, "missing_field")
    error_of(bot.submit_raw(action, intent="x", context={"ticket": None}), 400, "missing_field")
    resp = bot.submit_raw(action, intent="schema change")
    error_of(resp, 400, "missing_field")
    assert "context.ticket" in resp.json()["error"]["message"]

    r = bot.submit(action, intent="schema change", context={"ticket": "CHG-1"})
    assert r["status"] == "pending"

    # Where the rule does not match, nothing is required.
    r = d.client("ci").post("/v1/requests", {"action": shell("psql", "migrate", env="staging")})
    assert ok(r, 201)["status"] == "pending"

    # A request that is denied anyway is denied, not refused for the missing field.
    r = ok(bot.post("/v1/requests", {"action": shell("psql", "drop")}), 201)
    assert r["status"] == "denied"
    assert names(r) == ["prod-needs-why", "no-drops"]

    # Refused submissions stored nothing.
    listed = d.client("carol").list()["requests"]
    assert len(listed) == 3


def test_require_accepts_a_present_value_that_is_not_a_string(start_daemon):
    """context.ticket: 4411 (a number) is present; `require` must not call it missing."""
    d = start_daemon(policy=REQUIRE)
    for ticket in (4411, True, ["CHG-1"], {"id": "CHG-1"}):
        resp = d.client("deploy-bot").submit_raw(shell("psql", "migrate"), intent="schema change",
                                                 context={"ticket": ticket})
        assert resp.status_code == 201, f"ticket {ticket!r} was called missing: {resp.text}"


# --------------------------------------------------------------------------------------------
# Absent fields.


def test_absent_field_applies_review_rules_but_not_allow_rules(start_daemon):
    d = start_daemon(policy={
        "default": "review",
        "approvers": {"group": "sre", "count": 1},
        "rules": [
            rule("small-exports", 'action.kind == "data.export" && action.arguments.rows < 100',
                 "allow"),
            rule("nonprod-shell", 'action.kind == "shell" && action.environment != "production"',
                 "allow"),
            rule("prod-shell", 'action.kind == "shell" && action.environment == "production"',
                 "review", approvers={"group": "dba", "count": 1}),
        ],
    })
    bot = d.client("deploy-bot")

    r = bot.submit({"kind": "data.export", "arguments": {"rows": 10}})
    assert r["status"] == "approved" and names(r) == ["small-exports"]
    # rows absent: the allow rule is unknown and does not count; the default decides.
    r = bot.submit({"kind": "data.export", "arguments": {}})
    assert r["status"] == "pending" and names(r) == ["default"]
    # rows of the wrong type: the same.
    r = bot.submit({"kind": "data.export", "arguments": {"rows": "10"}})
    assert r["status"] == "pending" and names(r) == ["default"]

    r = bot.submit(shell("kubectl", "apply", env="staging"))
    assert r["status"] == "approved" and names(r) == ["nonprod-shell"]
    # environment absent: the review rule applies (unknown), the allow rule does not.
    r = bot.submit(shell("kubectl", "apply", env=None))
    assert r["status"] == "pending"
    assert names(r) == ["prod-shell"]
    entry = r["decision"]["rules"][0]
    assert entry["matched"] == "unknown"
    assert "action.environment" in entry["why"]
    assert plain_requirements(r) == [{"group": "dba", "count": 1}]


def test_absent_field_applies_deny_rules(start_daemon):
    d = start_daemon(policy={
        "default": "allow",
        "rules": [rule("big-exports", 'action.arguments.rows > 1000', "deny")],
    })
    r = d.client("deploy-bot").submit({"kind": "data.export", "arguments": {}})
    assert r["status"] == "denied"
    assert r["decision"]["rules"][0]["matched"] == "unknown"


def test_matches_rules_decide_in_a_real_daemon(start_daemon):
    """A regular expression in a rule, evaluated by the daemon's worker threads (under
    ASan+UBSan the fixture also fails this test if the daemon leaks or misbehaves)."""
    d = start_daemon(policy={"default": "allow", "rules": [
        rule("no-secrets-in-config",
             'action.kind == "config.change" && action.arguments.key.matches("(?i)(password|token)")',
             "deny"),
    ]})
    bot = d.client("deploy-bot")
    for key, status in (("DB_PASSWORD", "denied"), ("FEATURE_X", "approved"),
                        ("api_token", "denied")):
        r = bot.submit({"kind": "config.change", "arguments": {"key": key}})
        assert r["status"] == status, key
    r = bot.submit({"kind": "config.change", "arguments": {}})
    assert r["status"] == "denied"  # key absent: unknown, and a deny rule applies
    assert d.stop() == 0


# --------------------------------------------------------------------------------------------
# Identity-aware approvers.


class TeamPrincipal(Principal):
    def __init__(self, pid, kind, owner=None, groups=None, team=None):
        super().__init__(pid, kind, owner=owner, groups=groups)
        self.team = team

    def config(self):
        entry = super().config()
        if self.team:
            entry["team"] = self.team
        return entry


TEAMS = {p.id: p for p in [
    TeamPrincipal("heidi", "human", groups=["payments"], team="payments"),
    TeamPrincipal("ivan", "human", groups=["payments"], team="payments"),
    TeamPrincipal("sven", "human", groups=["search"], team="search"),
    TeamPrincipal("sara", "human", groups=["search"], team="search"),
    TeamPrincipal("nina", "human"),
    TeamPrincipal("pay-bot", "agent", owner="heidi"),
    TeamPrincipal("search-bot", "agent", owner="sven"),
    TeamPrincipal("orphan-bot", "agent", owner="nina"),
]}


def team_client(d, who):
    p = TEAMS.get(who) or CAST[who]
    return Client(d, p.token, who)


def test_owner_team_routes_the_review_to_the_owners_team(start_daemon):
    d = start_daemon(
        principals=list(CAST.values()) + list(TEAMS.values()),
        policy={"rules": [rule("agents-ask-their-team", 'requester.kind == "agent"', "review",
                               approvers={"group": "owner.team", "count": 1})]})

    r = team_client(d, "pay-bot").submit(shell("kubectl", "apply"))
    assert plain_requirements(r) == [{"group": "payments", "count": 1}]
    error_of(team_client(d, "heidi").approve(r["id"]), 403, "self_approval")  # the owner
    error_of(team_client(d, "alice").approve(r["id"]), 403, "not_eligible")
    error_of(team_client(d, "sara").approve(r["id"]), 403, "not_eligible")
    assert ok(team_client(d, "ivan").approve(r["id"]))["status"] == "approved"

    r = team_client(d, "search-bot").submit(shell("kubectl", "apply"))
    assert plain_requirements(r) == [{"group": "search", "count": 1}]
    error_of(team_client(d, "ivan").approve(r["id"]), 403, "not_eligible")
    assert ok(team_client(d, "sara").approve(r["id"]))["status"] == "approved"

    # An owner without a team: nobody could be asked, so the request fails closed.
    r = team_client(d, "orphan-bot").submit(shell("kubectl", "apply"))
    assert r["status"] == "denied"
    assert names(r) == ["agents-ask-their-team", "unresolved-approvers"]
    assert "owner.team" in r["decision"]["rules"][-1]["reason"]


# --------------------------------------------------------------------------------------------
# Escalation.


def test_escalation_lets_the_escalation_group_approve_only_after_it_fires(start_daemon):
    d = start_daemon(policy={"rules": [
        rule("db-changes", 'action.kind == "sql"', "review",
             approvers={"group": "dba", "count": 1},
             escalate={"after": "1s", "to": {"group": "admins"}}),
    ]})
    bot, carol = d.client("deploy-bot"), d.client("carol")  # carol: sre and admins, not dba
    r = bot.submit({"kind": "sql", "command": ["psql", "-c", "VACUUM"]})
    rid = r["id"]
    esc = r["decision"]["requirements"][0]["escalation"]
    assert esc["to_group"] == "admins" and esc["escalated"] is False
    assert abs(parse_time(esc["at"]) - parse_time(r["created_at"]) - 1.0) < 0.01

    error_of(carol.approve(rid), 403, "not_eligible")

    def escalated():
        q = carol.show(rid)["decision"]["requirements"][0]
        return q["escalation"]["escalated"]
    wait_until(escalated, timeout=15, what="the escalation to fire")

    r = ok(carol.approve(rid))
    assert r["status"] == "approved"
    assert r["decision"]["requirements"][0]["approved_by"] == ["carol"]
    ev = [e for e in events_of(carol, "request.escalated") if e["request_id"] == rid]
    assert len(ev) == 1 and ev[0]["data"]["groups"] == ["admins"]


# --------------------------------------------------------------------------------------------
# The decision trace.


def test_trace_lists_every_matching_rule_and_only_those(start_daemon):
    d = start_daemon(policy={
        "default": "allow",
        "rules": [
            rule("a-allow-true", 'action.kind == "shell"', "allow", reason="shell"),
            rule("b-allow-unknown", "action.arguments.n < 5", "allow"),
            rule("c-review-unknown", 'context.ticket.startsWith("CHG-")', "review",
                 reason="tickets", approvers={"group": "sre", "count": 1}),
            rule("d-deny-false", 'action.environment == "moon"', "deny"),
            rule("e-review-true", 'action.environment == "production"', "review",
                 reason="production", approvers={"group": "sre", "count": 1}),
        ],
    })
    r = d.client("deploy-bot").submit(shell("kubectl", "apply"))
    trace = r["decision"]["rules"]
    assert [t["name"] for t in trace] == ["a-allow-true", "c-review-unknown", "e-review-true"]
    assert [t["matched"] for t in trace] == ["true", "unknown", "true"]
    assert [t["decide"] for t in trace] == ["allow", "review", "review"]
    assert trace[0]["reason"] == "shell" and trace[0]["when"] == 'action.kind == "shell"'
    assert "context.ticket" in trace[1]["why"] and "why" not in trace[2]
    assert r["decision"]["outcome"] == "review"

    # Every rule false (b-allow-unknown is unknown, which an allow rule never counts as).
    r = d.client("deploy-bot").submit({"kind": "noop", "environment": "staging"},
                                      context={"ticket": "INC-7"})
    assert [(t["name"], t["matched"]) for t in r["decision"]["rules"]] == [("default", "default")]
    assert r["status"] == "approved"


# --------------------------------------------------------------------------------------------
# Reload.

BEFORE = {"default": "allow", "rules": [
    rule("prod-review", 'action.environment == "production"', "review",
         approvers={"group": "sre", "count": 2}),
]}
AFTER = {"default": "allow", "rules": [
    rule("prod-review", 'action.environment == "production"', "review",
         approvers={"group": "dba", "count": 1}),
    rule("no-deletes", 'action.command[1] == "delete"', "deny"),
]}
BROKEN = {"default": "allow", "rules": [rule("broken", 'action.kind = "shell"', "deny")]}


def rewrite(d, policy):
    d.config_path.write_text(make_config(d.workdir, policy=policy))
    return policy_version_of(d.config_path)


def test_reload_by_api(start_daemon):
    d = start_daemon(policy=BEFORE)
    bot, carol, alice = d.client("deploy-bot"), d.client("carol"), d.client("alice")
    v1 = policy_version_of(d.config_path)
    started = events_of(carol, "daemon.started")
    assert started and started[-1]["data"]["policy_version"] == v1

    old = bot.submit(shell("kubectl", "apply"))
    assert old["decision"]["policy_version"] == v1
    assert plain_requirements(old) == [{"group": "sre", "count": 2}]

    v2 = rewrite(d, AFTER)
    assert v2 != v1

    # Not an admin: refused, and nothing changes.
    error_of(alice.post("/v1/admin/policy/reload"), 403, "forbidden")
    error_of(bot.post("/v1/admin/policy/reload"), 403, "forbidden")
    assert bot.submit(shell("kubectl", "apply"))["decision"]["policy_version"] == v1

    body = ok(carol.post("/v1/admin/policy/reload"))
    assert body == {"policy_version": v2, "rules": 2}

    new = bot.submit(shell("kubectl", "apply"))
    assert new["decision"]["policy_version"] == v2
    assert plain_requirements(new) == [{"group": "dba", "count": 1}]
    assert bot.submit(shell("kubectl", "delete", "pod/x"))["status"] == "denied"

    # The pending request keeps the requirements it was submitted under.
    old = carol.show(old["id"])
    assert old["decision"]["policy_version"] == v1
    assert plain_requirements(old) == [{"group": "sre", "count": 2}]
    error_of(d.client("dave").approve(old["id"]), 403, "not_eligible")  # dba
    assert ok(carol.approve(old["id"]))["status"] == "pending"
    assert ok(d.client("bob").approve(old["id"]))["status"] == "approved"

    reloads = events_of(carol, "policy.reloaded")
    assert len(reloads) == 1
    assert reloads[0]["actor"] == "carol"
    assert reloads[0]["data"]["old_version"] == v1
    assert reloads[0]["data"]["new_version"] == v2
    assert reloads[0]["data"]["rules"] == 2

    # A broken file is refused; the policy in force stays.
    rewrite_broken = make_config(d.workdir, policy=BROKEN)
    d.config_path.write_text(rewrite_broken)
    resp = carol.post("/v1/admin/policy/reload")
    error_of(resp, 422, "bad_policy")
    assert "broken" in resp.json()["error"]["message"]
    r = bot.submit(shell("kubectl", "apply"))
    assert r["decision"]["policy_version"] == v2
    assert plain_requirements(r) == [{"group": "dba", "count": 1}]
    assert len(events_of(carol, "policy.reloaded")) == 1


def test_reload_by_sighup(start_daemon):
    d = start_daemon(policy=BEFORE)
    bot, carol = d.client("deploy-bot"), d.client("carol")
    v1 = policy_version_of(d.config_path)
    v2 = rewrite(d, AFTER)
    d.proc.send_signal(signal.SIGHUP)

    def reloaded():
        r = bot.submit(shell("kubectl", "apply"))
        return r if r["decision"]["policy_version"] == v2 else None
    r = wait_until(reloaded, timeout=15, interval=0.2, what="SIGHUP to reload the policy")
    assert plain_requirements(r) == [{"group": "dba", "count": 1}]
    ev = events_of(carol, "policy.reloaded")
    assert len(ev) == 1 and ev[0]["actor"] is None
    assert (ev[0]["data"]["old_version"], ev[0]["data"]["new_version"]) == (v1, v2)

    # A broken file on SIGHUP: logged, and the policy in force stays.
    d.config_path.write_text(make_config(d.workdir, policy=BROKEN))
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "policy not reloaded" in d.log_text(), timeout=15,
               what="the refused reload to be logged")
    assert bot.submit(shell("kubectl", "apply"))["decision"]["policy_version"] == v2
    assert len(events_of(carol, "policy.reloaded")) == 1
