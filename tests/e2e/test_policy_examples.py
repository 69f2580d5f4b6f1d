"""The example policy set in packaging/policies, end to end.

Offline: every cases folder passes `signoff policy test --cases`, and `signoff policy check`
accepts the example configuration. Online: a real signoffd on a copy of the example
configuration (fresh tokens in place of its placeholder hashes) gives real submissions the
decisions their case files expect, and enforces them: a staging deploy is approved at once,
an IAM change needs two different people from security.
"""

import json
import re
import shutil
import subprocess

import pytest

from conftest import (Client, Daemon, digest_of, error_of, new_token, ok, sha256_hex, store_url,
                      REPO, SIGNOFF)

POLICIES = REPO / "packaging" / "policies"
CONFIG = POLICIES / "signoff.yaml"
CASES = POLICIES / "cases"
AREAS = ["data-export", "secrets", "iam", "kubernetes", "scaling", "traffic-and-config"]


def signoff(*args):
    if not SIGNOFF.exists():
        pytest.fail(f"signoff CLI is not built: {SIGNOFF} (set SIGNOFF_BUILD)")
    return subprocess.run([str(SIGNOFF)] + [str(a) for a in args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def load_case(area, name):
    return json.loads((CASES / area / f"{name}.json").read_text())


# --------------------------------------------------------------------------------------------
# Offline: the CLI.


def test_every_area_has_cases():
    found = sorted(p.name for p in CASES.iterdir() if p.is_dir())
    assert found == sorted(AREAS)
    for area in AREAS:
        assert len(list((CASES / area).glob("*.json"))) >= 5, f"{area}: too few cases"


@pytest.mark.parametrize("area", AREAS)
def test_cases_pass(area):
    folder = CASES / area
    n = len(list(folder.glob("*.json")))
    r = signoff("policy", "test", CONFIG, "--cases", folder)
    assert r.returncode == 0, f"{area}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert f"{n} passed, 0 failed" in r.stdout, r.stdout
    assert "FAIL" not in r.stdout


def test_cases_json_output_lists_each_case():
    folder = CASES / "iam"
    r = signoff("policy", "test", CONFIG, "--cases", folder, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    results = json.loads(r.stdout)
    assert sorted(x["case"] for x in results) == sorted(p.name for p in folder.glob("*.json"))
    assert all(x["ok"] for x in results)


def test_cases_catch_a_wrong_expectation(tmp_path):
    """A case runner that cannot fail proves nothing: change one expectation, see it fail."""
    c = load_case("scaling", "allow-within-bounds")
    c["expect"]["outcome"] = "review"
    (tmp_path / "wrong.json").write_text(json.dumps(c))
    r = signoff("policy", "test", CONFIG, "--cases", tmp_path)
    assert r.returncode == 1
    assert "0 passed, 1 failed" in r.stdout
    assert "expected outcome review, got allow" in r.stdout


def test_policy_check_accepts_the_example():
    r = signoff("policy", "check", CONFIG)
    assert r.returncode == 0, r.stderr
    assert "policy is valid" in r.stdout
    r = signoff("policy", "check", CONFIG, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["valid"] is True
    assert info["rules"] == 30
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", info["policy_version"])


def test_policy_test_prints_the_trace(tmp_path):
    c = load_case("kubernetes", "review-incident-outside-window")
    (tmp_path / "request.json").write_text(json.dumps(c["request"]))
    r = signoff("policy", "test", CONFIG, tmp_path / "request.json")
    assert r.returncode == 0, r.stderr
    assert "outcome: review" in r.stdout
    assert "k8s-deploy-production" in r.stdout and "k8s-emergency-change" in r.stdout
    assert "1 from group incident-commanders" in r.stdout
    assert "escalates to sre-leads" in r.stdout


def test_placeholder_hashes_are_valid_and_distinct():
    text = CONFIG.read_text()
    hashes = re.findall(r'token_sha256: "([^"]*)"', text)
    assert len(hashes) == len(re.findall(r"^  - \{ id: ", text, re.M)) == 21
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    assert len(set(hashes)) == len(hashes)


# --------------------------------------------------------------------------------------------
# Online: a real daemon on a copy of the example.


class ExampleDaemon:
    def __init__(self, workdir):
        self.tokens = {}
        text = CONFIG.read_text()

        def fresh(m):
            token = new_token()
            self.tokens[m.group(1)] = token
            return f'{m.group(0)[:m.start(2) - m.start(0)]}{sha256_hex(token)}"'

        text = re.sub(r'id: ([A-Za-z0-9_.@-]+),.*token_sha256: "([0-9a-f]{64})"', fresh, text)
        text = text.replace('listen: "127.0.0.1:8700"', 'listen: "127.0.0.1:0"')
        assert '"sqlite:var/signoff.db"' in text, "the example's store.url is not where it was"
        text = text.replace('"sqlite:var/signoff.db"', f'"{store_url(workdir)}"')
        text = text.replace('"var/audit.key"', f'"{workdir}/audit.key"')
        workdir.mkdir(parents=True, exist_ok=True)
        for f in POLICIES.glob("*.yaml"):
            if f.name != "signoff.yaml":
                shutil.copy(f, workdir / f.name)
        self.daemon = Daemon(workdir, text)

    def client(self, who):
        return Client(self.daemon, self.tokens[who], who)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    ex = ExampleDaemon(tmp_path_factory.mktemp("example"))
    ex.daemon.start()
    yield ex
    ex.daemon.stop()
    reports = ex.daemon.sanitizer_reports()
    assert not reports, f"sanitizer reported {reports}:\n{ex.daemon.log_text()[-4000:]}"


def submit_case(example, area, name):
    """Submit a case's request as its requester; check the decision is the case's."""
    c = load_case(area, name)
    req, want = dict(c["request"]), c["expect"]
    assert "time" not in req, f"{name}: a timed case cannot be replayed against the clock"
    who = req.pop("requester")
    resp = example.client(who).post("/v1/requests", req)
    if "error" in want:
        error_of(resp, 400, want["error"])
        return None
    r = ok(resp, 201)
    d = r["decision"]
    status = {"allow": "approved", "deny": "denied", "review": "pending"}[want["outcome"]]
    assert r["status"] == status, f"{name}: {r['status']}: {d}"
    assert d["outcome"] == want["outcome"]
    assert [x["name"] for x in d["rules"]] == want["rules"], f"{name}: {d['rules']}"
    got = [{k: v for k, v in q.items() if k not in ("approved_by", "escalation")}
           for q in d["requirements"]]
    assert got == want["requirements"], f"{name}: {d['requirements']}"
    return r


# Cases that do not depend on the time of day, replayed against the real daemon.
TIMELESS = [
    ("data-export", "allow-small-internal"),
    ("data-export", "review-payments-data-two-teams"),
    ("data-export", "deny-too-large"),
    ("data-export", "deny-rows-not-a-number"),
    ("data-export", "error-missing-intent"),
    ("secrets", "review-production-agent-owning-team"),
    ("secrets", "review-environment-absent"),
    ("secrets", "deny-owner-without-team"),
    ("secrets", "deny-agent-reads-secret"),
    ("iam", "review-two-person"),
    ("iam", "deny-agent-principal-absent"),
    ("iam", "review-rolebinding-beats-staging-allow"),
    ("scaling", "allow-within-bounds"),
    ("scaling", "review-replicas-absent"),
    ("scaling", "deny-zero-in-production"),
    ("traffic-and-config", "review-production-full-cutover"),
    ("traffic-and-config", "review-config-production-agent"),
    ("traffic-and-config", "error-config-without-diff"),
    ("traffic-and-config", "deny-secret-in-config"),
]


def test_real_submissions_match_their_cases(example):
    for area, name in TIMELESS:
        submit_case(example, area, name)


def test_staging_deploy_is_allowed_at_once_and_runs_once(example):
    c = load_case("kubernetes", "allow-staging-deploy")
    req = dict(c["request"])
    req.pop("time")  # staging is allowed at any hour
    req.pop("requester")
    bot = example.client("deploy-bot")
    r = ok(bot.post("/v1/requests", req), 201)
    assert r["status"] == "approved"
    assert [x["name"] for x in r["decision"]["rules"]] == ["k8s-deploy-nonprod"]
    assert r["decision"]["requirements"] == []
    ok(bot.claim(r["id"], digest_of(req["action"])))
    error_of(bot.claim(r["id"], digest_of(req["action"])), 409, "already_claimed")


def test_iam_change_needs_two_people_from_security(example):
    r = submit_case(example, "iam", "review-two-person")
    rid = r["id"]
    assert r["decision"]["route"] == [{"slack": "#security-approvals"}]
    carol, erik = example.client("carol"), example.client("erik")
    r = ok(carol.approve(rid))  # carol is in security (and sre): still one person
    assert r["status"] == "pending", "one person met a two-person rule"
    assert r["decision"]["requirements"][0]["approved_by"] == ["carol"]
    error_of(carol.approve(rid), 409, "already_reviewed")
    # Not security: refused, whatever else they are.
    error_of(example.client("alice").approve(rid), 403, "not_eligible")
    # iam-bot is dana's: its owner may not approve it, though dana is in security.
    error_of(example.client("dana").approve(rid), 403, "self_approval")
    error_of(example.client("iam-bot").approve(rid), 403, "agent_cannot_review")
    assert carol.show(rid)["status"] == "pending"
    r = ok(erik.approve(rid))
    assert r["status"] == "approved"
    assert sorted(r["decision"]["requirements"][0]["approved_by"]) == ["carol", "erik"]


def test_two_teams_need_two_different_people(example):
    """grace is a data owner and in payments: she fills one seat, not both."""
    r = submit_case(example, "data-export", "review-payments-data-two-teams")
    rid = r["id"]
    r = ok(example.client("grace").approve(rid))
    assert r["status"] == "pending"
    r = ok(example.client("ivan").approve(rid))  # payments
    assert r["status"] == "approved"


def test_owner_team_routing_reaches_the_owners_team(example):
    r = submit_case(example, "secrets", "review-production-agent-owning-team")
    rid = r["id"]
    # payments-copilot belongs to heidi (team payments): heidi is the owner, not a reviewer.
    error_of(example.client("heidi").approve(rid), 403, "self_approval")
    # frank is a data owner, neither security nor payments.
    error_of(example.client("frank").approve(rid), 403, "not_eligible")
    assert ok(example.client("ivan").approve(rid))["status"] == "pending"
    assert ok(example.client("dana").approve(rid))["status"] == "approved"


def test_owner_may_approve_in_the_sandbox_counts_once(example):
    c = load_case("kubernetes", "review-sandbox-owner-team")
    req = dict(c["request"])
    req.pop("time")
    req.pop("requester")
    r = ok(example.client("sandbox-copilot").post("/v1/requests", req), 201)
    assert r["status"] == "pending"
    assert r["decision"]["owner_may_approve"] is True
    # bob owns sandbox-copilot and is on team platform: he may approve his copilot here.
    r = ok(example.client("bob").approve(r["id"]))
    assert r["status"] == "approved"
