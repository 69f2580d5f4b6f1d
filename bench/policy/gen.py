#!/usr/bin/python3
"""Make the inputs of bench/policy: the same rules for signoff and for Cedar, and the same
requests for both.

Usage: bench/policy/gen.py OUTDIR [--rules 10,100,1000] [--requests 10000] [--seed 7]

Writes, in OUTDIR:
  signoff-N.yaml        a whole signoff configuration (principals + policy with N rules)
  cedar-N.json          {"policies": {ID: "cedar text"}, "decide": {ID: allow|review|deny}}
  requests.jsonl        one request a line: {"requester", "now_ms", "body"} (signoff's
                        submission body) and "cedar": {principal, action, resource, context}
  entities.json         the Cedar entity of each principal, by principal id

Only the Python standard library. The output is a pure function of the arguments.

Rule mapping (signoff -> Cedar), also in bench/policy/README.md:
  decide: deny    -> forbid
  decide: allow   -> permit with id "allow-rNNNN" and @decide("allow")
  decide: review  -> permit with id "review-rNNNN" and @decide("review")
  Outcome from one Cedar answer: decision deny with a determining policy -> deny (a forbid
  matched); decision allow -> review when a review-* permit is among the determining
  policies, else allow; decision deny with none determining -> no rule matched -> the
  signoff default (review). This is signoff's "deny beats review beats allow".
  action.kind == K              -> action == Action::"K" (in the scope)
  action.kind in [K1, K2]       -> action in [Action::"K1", Action::"K2"]
  action.command[0], [1]        -> context.cmd0, context.cmd1 (Cedar has no list index)
  action.environment/resource/tool, context.rows/replicas -> context.environment, ...
  x in ["a", "b"]               -> ["a", "b"].contains(x)
  s.startsWith("p")             -> s like "p*"
  s.contains("w")               -> s like "*w*"
  s.matches("^a.*b$")           -> s like "a*b"   (only patterns of this form are generated)
  requester.kind == "agent"     -> principal is Agent
  "g" in requester.groups       -> principal in Group::"g"
  time.hour                     -> context.hour (the caller computes it, as signoff does)
  intent (may be absent)        -> context.intent; signoff's "unknown counts for deny and
                                   review, not for allow" is written out with `has`:
                                   deny/review: (!(context has intent) || LIT)
                                   allow:       (context has intent && LIT)
"""

import json
import os
import random
import sys

KINDS = [  # (kind, weight)
    ("shell", 40), ("deploy", 14), ("data.export", 12), ("mcp.tool", 10), ("secret.read", 8),
    ("iam.change", 5), ("scale", 6), ("config.change", 5),
]
ENVS = [("production", 35), ("staging", 35), ("dev", 20), ("sandbox", 10)]

WORDS = [
    "billing", "search", "payments", "ledger", "checkout", "auth", "catalog", "inventory",
    "shipping", "notify", "pricing", "reports", "identity", "gateway", "media", "profile",
    "orders", "fraud", "risk", "tax", "invoices", "cart", "reviews", "recs", "ads", "geo",
    "chat", "email", "sms", "feeds", "metrics", "logs", "queue", "cache", "storage", "cdn",
    "export", "import", "sync", "audit",
]
SERVICES = [w + s for s in ("", "-api", "-worker") for w in WORDS]  # 120

# shell tools: (tool, read verbs, write verbs, destructive verbs)
TOOLS = [
    ("kubectl", ["get", "describe", "logs", "top"], ["apply", "rollout", "scale", "patch", "set"],
     ["delete", "drain", "exec"]),
    ("helm", ["list", "status", "history"], ["upgrade", "install", "rollback"], ["uninstall"]),
    ("terraform", ["plan", "show", "output"], ["apply", "import"], ["destroy", "taint"]),
    ("psql", ["-l", "--list"], ["-c", "-f"], ["--drop"]),
    ("aws", ["sts", "describe"], ["s3", "lambda", "ecs"], ["iam", "rds"]),
    ("gcloud", ["info", "config"], ["compute", "run"], ["sql", "iam"]),
    ("docker", ["ps", "images", "logs"], ["pull", "run", "push"], ["rm", "rmi", "prune"]),
    ("git", ["status", "log", "diff"], ["push", "tag", "merge"], ["reset", "clean"]),
    ("systemctl", ["status", "is-active"], ["restart", "start", "reload"], ["stop", "disable"]),
    ("redis-cli", ["get", "info", "scan"], ["set", "expire"], ["flushall", "del"]),
]
MCP_TOOLS = ["k8s_apply", "k8s_rollout_restart", "k8s_set_image", "db_query", "db_migrate",
             "s3_put", "s3_delete", "pagerduty_ack", "jira_create", "github_merge",
             "slack_post", "feature_flag_set"]

PRINCIPALS = [
    # id, kind, owner, team, groups
    ("deploy-bot", "agent", "alice", None, ["bots", "team-platform"]),
    ("report-bot", "agent", "frank", None, ["bots", "team-analytics"]),
    ("payments-copilot", "agent", "heidi", None, ["bots", "team-payments"]),
    ("iam-bot", "agent", "dana", None, ["bots", "team-security"]),
    ("sandbox-copilot", "agent", "bob", None, ["bots", "team-platform"]),
    ("intern-bot", "agent", "nina", None, ["bots"]),
    ("ci", "service", None, "platform", ["team-platform"]),
    ("alice", "human", None, "platform", ["sre", "platform", "team-platform"]),
    ("bob", "human", None, "platform", ["sre", "platform", "team-platform"]),
    ("carol", "human", None, "platform", ["sre", "security", "team-platform"]),
    ("judy", "human", None, "platform", ["sre", "sre-leads", "team-platform"]),
    ("dana", "human", None, "security", ["security", "team-security"]),
    ("erik", "human", None, "security", ["security", "security-oncall", "team-security"]),
    ("frank", "human", None, "analytics", ["data-owners", "team-analytics"]),
    ("grace", "human", None, "payments", ["data-owners", "team-payments"]),
    ("heidi", "human", None, "payments", ["team-payments"]),
    ("nina", "human", None, None, ["interns"]),
]
REQUESTERS = [  # who submits, with weights: mostly agents
    ("deploy-bot", 25), ("report-bot", 12), ("payments-copilot", 12), ("iam-bot", 6),
    ("sandbox-copilot", 12), ("intern-bot", 5), ("ci", 10), ("alice", 5), ("bob", 3),
    ("carol", 3), ("judy", 2), ("dana", 2), ("frank", 2), ("heidi", 1),
]
TEAM_GROUPS = ["team-platform", "team-analytics", "team-payments", "team-security"]
INTENTS = [
    "ship build {n}", "roll back a bad release of {svc}", "hotfix for {svc} latency",
    "nightly export for finance (DPA-{n})", "rotate credentials for {svc}",
    "investigate incident INC-{n}", "scale up for the sale", "clean up stale resources",
    "weekly report for {svc}", "customer request CR-{n}", "hotfix: null pointer in {svc}",
    "migrate {svc} to the new cluster",
]

CEDAR_TYPE = {"agent": "Agent", "human": "Human", "service": "Service"}


def q(s):
    """A string literal both languages read the same (no quotes or backslashes are used)."""
    assert '"' not in s and "\\" not in s
    return '"' + s + '"'


def qlist(xs):
    return "[" + ", ".join(q(x) for x in xs) + "]"


def pick(rng, weighted):
    total = sum(w for _, w in weighted)
    x = rng.uniform(0, total)
    for v, w in weighted:
        x -= w
        if x <= 0:
            return v
    return weighted[-1][0]


# ---------------------------------------------------------------------------------------
# Rules. A rule is (decide, kinds, conjuncts); a conjunct is (signoff text, cedar text,
# optional) where `optional` marks a literal over `intent`, which a request may omit.


class Rule:
    def __init__(self, name, decide, kinds, conj, reason, approvers=None):
        self.name, self.decide, self.kinds, self.conj = name, decide, kinds, conj
        self.reason, self.approvers = reason, approvers

    def signoff_when(self):
        parts = []
        if self.kinds is not None:
            if len(self.kinds) == 1:
                parts.append(f"action.kind == {q(self.kinds[0])}")
            else:
                parts.append(f"action.kind in {qlist(self.kinds)}")
        parts += [s for s, _, _ in self.conj]
        return " && ".join(parts)

    def cedar_text(self, pid):
        if self.kinds is None:
            act = "action"
        elif len(self.kinds) == 1:
            act = f"action == Action::{q(self.kinds[0])}"
        else:
            act = "action in [" + ", ".join(f"Action::{q(k)}" for k in self.kinds) + "]"
        conds = []
        for _, c, optional in self.conj:
            if optional:  # signoff: unknown when intent is absent
                if self.decide == "allow":
                    c = f"(context has intent && {c})"
                else:
                    c = f"(!(context has intent) || {c})"
            conds.append(c)
        effect = "forbid" if self.decide == "deny" else "permit"
        when = " && ".join(conds) if conds else "true"
        return (f'@id("{pid}")\n@decide("{self.decide}")\n'
                f"{effect} (principal, {act}, resource)\nwhen {{ {when} }};")


def starts(field_s, field_c, prefix):
    return (f"{field_s}.startsWith({q(prefix)})", f"{field_c} like {q(prefix + '*')}", False)


def one_of(field_s, field_c, xs):
    if len(xs) == 1:
        return (f"{field_s} == {q(xs[0])}", f"{field_c} == {q(xs[0])}", False)
    return (f"{field_s} in {qlist(xs)}", f"{qlist(xs)}.contains({field_c})", False)


def in_group(g, neg=False):
    s, c = f"{q(g)} in requester.groups", f"principal in Group::{q(g)}"
    return (f"!({s})", f"!({c})", False) if neg else (s, c, False)


def intent_has(word, neg=False):
    s, c = f"intent.contains({q(word)})", f"context.intent like {q('*' + word + '*')}"
    return (f"!{s}", f"!({c})", True) if neg else (s, c, True)


def cmp(field_s, field_c, op, n):
    return (f"{field_s} {op} {n}", f"{field_c} {op} {n}", False)


ENV_S, ENV_C = "action.environment", "context.environment"
RES_S, RES_C = "action.resource", "context.resource"


def make_rule(i):
    """Rule i: template i % T, about one service (rules 0..T-1 are generic)."""
    T = len(TEMPLATES)
    group = i // T
    svc = SERVICES[(group - 1) % len(SERVICES)] if group else None
    r = random.Random(1000 + i)
    tool, reads, writes, destroys = TOOLS[(i // T + i) % len(TOOLS)]
    return TEMPLATES[i % T](f"r{i:04d}", svc, r, tool, reads, writes, destroys)


def pfx(env, svc):
    return f"{env}/{svc}/" if svc else f"{env}/"


def t_shell_reads(n, svc, r, tool, reads, writes, destroys):
    if not svc:  # the generic rule: every tool's reads, anywhere
        return Rule(n, "allow", ["shell"],
                    [one_of("action.command[0]", "context.cmd0", [t[0] for t in TOOLS]),
                     one_of("action.command[1]", "context.cmd1",
                            sorted({v for t in TOOLS for v in t[1]}))],
                    "Reading changes nothing.")
    env = r.choice(["production", "staging", "dev"])
    return Rule(n, "allow", ["shell"],
                [one_of("action.command[0]", "context.cmd0", [tool]),
                 one_of("action.command[1]", "context.cmd1", reads),
                 starts(RES_S, RES_C, pfx(env, svc))],
                "Reading changes nothing.")


def t_shell_prod_writes(n, svc, r, tool, reads, writes, destroys):
    return Rule(n, "review", ["shell"],
                [one_of("action.command[0]", "context.cmd0", [tool]),
                 one_of("action.command[1]", "context.cmd1", writes),
                 (f"{ENV_S} == \"production\"", f"{ENV_C} == \"production\"", False),
                 starts(RES_S, RES_C, pfx("production", svc))],
                "A production change: an SRE checks it.")


def t_shell_destroy(n, svc, r, tool, reads, writes, destroys):
    return Rule(n, "deny", ["shell"],
                [one_of("action.command[0]", "context.cmd0", [tool]),
                 one_of("action.command[1]", "context.cmd1", destroys),
                 one_of(ENV_S, ENV_C, ["production", "staging"]),
                 in_group("sre-leads", neg=True),
                 starts(RES_S, RES_C, pfx(r.choice(["production", "staging"]), svc))],
                "Destructive commands outside dev are done by hand.")


def t_export_review(n, svc, r, *_):
    env = r.choice(["production", "staging"])
    return Rule(n, "review", ["data.export"],
                [cmp("context.rows", "context.rows", ">", r.choice([1000, 5000, 10000])),
                 starts(RES_S, RES_C, f"s3://acme-{env}-{svc or ''}")],
                "Large exports are checked by a data owner.",
                {"group": "data-owners", "count": 1})


def t_export_deny(n, svc, r, *_):
    return Rule(n, "deny", ["data.export"],
                [cmp("context.rows", "context.rows", ">", r.choice([500000, 1000000])),
                 (f"{ENV_S} == \"production\"", f"{ENV_C} == \"production\"", False),
                 intent_has("DPA-", neg=True),
                 starts(RES_S, RES_C, f"s3://acme-production-{svc or ''}")],
                "Huge production exports need a data processing agreement.")


def t_export_allow(n, svc, r, *_):
    env = r.choice(["staging", "dev", "sandbox"])
    return Rule(n, "allow", ["data.export"],
                [cmp("context.rows", "context.rows", "<=", r.choice([1000, 5000])),
                 (f"{ENV_S} != \"production\"", f"{ENV_C} != \"production\"", False)]
                + ([starts(RES_S, RES_C, f"s3://acme-{env}-{svc}")] if svc else []),
                "Small exports outside production are fine.")


def t_deploy_hours(n, svc, r, *_):
    h1, h2 = r.choice([(7, 19), (8, 18), (9, 17), (6, 22)])
    return Rule(n, "deny", ["deploy"],
                [(f"{ENV_S} == \"production\"", f"{ENV_C} == \"production\"", False),
                 starts(RES_S, RES_C, pfx("production", svc)),
                 (f"(time.hour < {h1} || time.hour >= {h2})",
                  f"(context.hour < {h1} || context.hour >= {h2})", False)],
                f"Production deploys happen {h1:02d}:00-{h2:02d}:00 UTC.")


def t_deploy_hotfix(n, svc, r, *_):
    return Rule(n, "review", ["deploy"],
                [(f"{ENV_S} == \"production\"", f"{ENV_C} == \"production\"", False),
                 intent_has("hotfix"),
                 starts(RES_S, RES_C, pfx("production", svc))],
                "A hotfix to production: two SREs look.", {"group": "sre", "count": 2})


def t_deploy_team(n, svc, r, *_):
    if not svc:  # the generic rule: anyone deploys outside production
        return Rule(n, "allow", ["deploy"], [one_of(ENV_S, ENV_C, ["staging", "dev", "sandbox"])],
                    "Deploys outside production are free.")
    return Rule(n, "allow", ["deploy"],
                [one_of(ENV_S, ENV_C, ["staging", "dev"]),
                 in_group(r.choice(TEAM_GROUPS)),
                 starts(RES_S, RES_C, pfx(r.choice(["staging", "dev"]), svc))],
                "A team deploys its own services outside production.")


def t_mcp(n, svc, r, *_):
    tools = r.sample(MCP_TOOLS, 3)
    return Rule(n, "review", ["mcp.tool"],
                [one_of("action.tool", "context.tool", tools),
                 one_of(ENV_S, ENV_C, ["production", "staging"]),
                 starts(RES_S, RES_C, pfx(r.choice(["production", "staging"]), svc))],
                "Tools that change things are reviewed.")


def t_backup(n, svc, r, *_):
    s = svc or ".*"
    like = svc or "*"
    return Rule(n, "deny", ["shell", "mcp.tool"],
                [(f"{RES_S}.matches(\"^arn:aws:s3:::prod-{s}-.*-backup$\")",
                  f"{RES_C} like \"arn:aws:s3:::prod-{like}-*-backup\"", False),
                 ("requester.kind == \"agent\"", "principal is Agent", False)],
                "Agents do not touch production backups.")


def t_iam(n, svc, r, *_):
    return Rule(n, "review", ["iam.change"],
                [("requester.kind == \"agent\"", "principal is Agent", False),
                 starts(RES_S, RES_C, f"iam/{svc}/" if svc else "iam/")],
                "An agent's IAM change: two from security.", {"group": "security", "count": 2})


def t_secret(n, svc, r, *_):
    return Rule(n, "review", ["secret.read"],
                [(f"{ENV_S} == \"production\"", f"{ENV_C} == \"production\"", False),
                 in_group("security", neg=True),
                 starts(RES_S, RES_C, f"secret/production/{svc}/" if svc else "secret/production/")],
                "Production secrets are read with security's consent.",
                {"group": "security", "count": 1})


def t_scale(n, svc, r, *_):
    hi = r.choice([10, 20, 50])
    return Rule(n, "allow", ["scale"],
                [cmp("context.replicas", "context.replicas", ">=", 1),
                 cmp("context.replicas", "context.replicas", "<=", hi)]
                + ([starts(RES_S, RES_C, pfx(r.choice(["production", "staging"]), svc))] if svc else []),
                f"Scaling within 1..{hi} replicas.")


def t_restart(n, svc, r, *_):
    return Rule(n, "allow", ["shell"],
                [one_of("action.command[0]", "context.cmd0", ["systemctl"]),
                 one_of("action.command[1]", "context.cmd1", ["restart", "status", "reload"]),
                 in_group("sre"),
                 (f"{ENV_S} != \"production\"", f"{ENV_C} != \"production\"", False),
                 starts(RES_S, RES_C, pfx(r.choice(["staging", "dev"]), svc))],
                "SREs restart services outside production.")


TEMPLATES = [t_shell_reads, t_shell_prod_writes, t_export_review, t_deploy_hours, t_mcp,
             t_shell_destroy, t_deploy_team, t_secret, t_export_allow, t_backup, t_deploy_hotfix,
             t_scale, t_export_deny, t_iam, t_restart]


def signoff_yaml(rules):
    out = ["# generated by bench/policy/gen.py", "principals:"]
    for pid, kind, owner, team, groups in PRINCIPALS:
        f = [f"id: {pid}", f"kind: {kind}"]
        if owner:
            f.append(f"owner: {owner}")
        if team:
            f.append(f"team: {team}")
        f.append("groups: [" + ", ".join(groups) + "]")
        out.append("  - { " + ", ".join(f) + " }")
    out += ["policy:", "  default: review", "  approvers: { group: sre, count: 1 }",
            "  ttl: 30m", "  grant_ttl: 10m", "  rules:"]
    for ru in rules:
        out.append(f"    - name: {ru.name}")
        out.append(f"      when: {json.dumps(ru.signoff_when())}")
        out.append(f"      decide: {ru.decide}")
        out.append(f"      reason: {json.dumps(ru.reason)}")
        if ru.approvers and ru.decide == "review":
            a = ru.approvers
            out.append(f"      approvers: {{ group: {a['group']}, count: {a['count']} }}")
    return "\n".join(out) + "\n"


def cedar_json(rules):
    pol, decide = {}, {}
    for ru in rules:
        pid = f"{ru.decide}-{ru.name}"
        pol[pid] = ru.cedar_text(pid)
        decide[pid] = ru.decide
    return {"policies": pol, "decide": decide, "default": "review"}


# ---------------------------------------------------------------------------------------
# Requests.

BASE_MS = 1772409600000  # 2026-03-02T00:00:00Z, a Monday


def make_request(rng):
    kind = pick(rng, KINDS)
    env = pick(rng, ENVS)
    # Services: a few are busy (Zipf-like), the rest share the tail.
    svc = SERVICES[min(int(rng.paretovariate(1.0)) - 1, len(SERVICES) - 1)
                   if rng.random() < 0.5 else rng.randrange(len(SERVICES))]
    requester = pick(rng, REQUESTERS)
    action = {"kind": kind, "environment": env}
    ctx = {}
    cedar_ctx = {"environment": env}
    if kind == "shell":
        tool, reads, writes, destroys = rng.choice(TOOLS)
        verb = rng.choice(pick(rng, [(reads, 55), (writes, 35), (destroys, 10)]))
        cmd = [tool, verb] + rng.choice([[], [svc], ["-n", svc], ["--force"], [svc, "-o", "yaml"]])
        action["command"] = cmd
        if tool == "aws" and rng.random() < 0.5:
            res = f"arn:aws:s3:::prod-{svc}-{rng.randrange(2024, 2027)}-backup"
        else:
            res = f"{env}/{svc}/{rng.choice(['deploy', 'db', 'svc', 'cm'])}/{svc}"
        cedar_ctx.update(cmd0=cmd[0], cmd1=cmd[1])
    elif kind == "deploy":
        res = f"{env}/{svc}/deploy/{svc}"
        action["arguments"] = {"image": f"registry/acme/{svc}:{rng.randrange(1000, 9999)}"}
    elif kind == "data.export":
        res = f"s3://acme-{env}-{svc}/exports/{rng.randrange(100000)}.parquet"
        rows = int(rng.lognormvariate(8, 2.5))
        ctx["rows"] = rows
        cedar_ctx["rows"] = rows
    elif kind == "mcp.tool":
        tool = rng.choice(MCP_TOOLS)
        action["tool"] = tool
        action["arguments"] = {"target": svc}
        if tool == "s3_delete" and rng.random() < 0.5:
            res = f"arn:aws:s3:::prod-{svc}-{rng.randrange(2024, 2027)}-backup"
        else:
            res = f"{env}/{svc}/{rng.choice(['deploy', 'db', 'flag'])}/{svc}"
        cedar_ctx["tool"] = tool
    elif kind == "secret.read":
        res = f"secret/{env}/{svc}/{rng.choice(['db-password', 'api-key', 'tls'])}"
    elif kind == "iam.change":
        res = f"iam/{svc}/role/{svc}-{rng.choice(['reader', 'writer', 'admin'])}"
        action["arguments"] = {"add": [f"{svc}:read"]}
    elif kind == "scale":
        res = f"{env}/{svc}/deploy/{svc}"
        reps = rng.choice([0, 1, 2, 3, 5, 8, 12, 20, 30, 60])
        ctx["replicas"] = reps
        cedar_ctx["replicas"] = reps
    else:  # config.change: no rule speaks about it, the default decides
        res = f"{env}/{svc}/config/{rng.choice(['timeouts', 'limits', 'flags'])}"
        ctx["diff"] = "-a: 1\n+a: 2"
    action["resource"] = res
    cedar_ctx["resource"] = res
    if kind in ("data.export", "scale", "config.change"):
        ctx["ticket"] = f"CHG-{rng.randrange(10000)}"
    body = {"action": action, "context": ctx}
    if rng.random() < 0.85:
        intent = rng.choice(INTENTS).format(n=rng.randrange(100, 99999), svc=svc)
        body["intent"] = intent
        cedar_ctx["intent"] = intent
    now_ms = BASE_MS + rng.randrange(7 * 86400) * 1000
    cedar_ctx["hour"] = (now_ms // 1000 % 86400) // 3600
    ptype = CEDAR_TYPE[dict((p[0], p[1]) for p in PRINCIPALS)[requester]]
    cedar = {"principal": {"type": ptype, "id": requester},
             "action": {"type": "Action", "id": kind},
             "resource": {"type": "Resource", "id": res},
             "context": cedar_ctx}
    return {"requester": requester, "now_ms": now_ms, "body": body, "cedar": cedar}


def entities():
    out = {}
    for pid, kind, owner, team, groups in PRINCIPALS:
        attrs = {}
        if owner:
            attrs["owner"] = owner
        if team:
            attrs["team"] = team
        out[pid] = {"uid": {"type": CEDAR_TYPE[kind], "id": pid}, "attrs": attrs,
                    "parents": [{"type": "Group", "id": g} for g in groups]}
    return out


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    outdir = args[0]
    opts = {"--rules": "10,100,1000", "--requests": "10000", "--seed": "7"}
    for k, v in zip(args[1::2], args[2::2]):
        if k not in opts:
            sys.exit(f"unknown option {k}")
        opts[k] = v
    os.makedirs(outdir, exist_ok=True)
    for n in (int(x) for x in opts["--rules"].split(",")):
        rules = [make_rule(i) for i in range(n)]
        with open(os.path.join(outdir, f"signoff-{n}.yaml"), "w") as f:
            f.write(signoff_yaml(rules))
        with open(os.path.join(outdir, f"cedar-{n}.json"), "w") as f:
            json.dump(cedar_json(rules), f, indent=1)
    rng = random.Random(int(opts["--seed"]))
    with open(os.path.join(outdir, "requests.jsonl"), "w") as f:
        for _ in range(int(opts["--requests"])):
            f.write(json.dumps(make_request(rng), separators=(",", ":")) + "\n")
    with open(os.path.join(outdir, "entities.json"), "w") as f:
        json.dump(entities(), f, indent=1)


if __name__ == "__main__":
    main()
