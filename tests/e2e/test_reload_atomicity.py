"""A request submitted while the policy is being reloaded sees the old policy or the new one,
never a mix: its decision names one version and only that version's rules."""
import subprocess
import threading

from conftest import SIGNOFF, make_config, ok, sample_action

RULES = {
    "a": [{"name": "a-review", "when": 'action.kind == "shell"', "decide": "review",
           "reason": "version a", "approvers": {"group": "sre", "count": 1}},
          {"name": "a-allow", "when": 'action.environment == "production"', "decide": "allow"}],
    "b": [{"name": "b-deny", "when": 'action.kind == "shell"', "decide": "deny",
           "reason": "version b"},
          {"name": "b-review", "when": 'action.environment == "production"',
           "decide": "review"}],
}


def config_text(workdir, which):
    return make_config(workdir, policy={"default": "allow", "rules": RULES[which]})


def version_of(path):
    out = subprocess.run([str(SIGNOFF), "--json", "policy", "check", str(path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    import json
    return json.loads(out.stdout)["policy_version"]


def test_requests_during_reloads_see_one_whole_policy(start_daemon, tmp_path):
    d = start_daemon(policy={"default": "allow", "rules": RULES["a"]})
    versions = {}
    for which in ("a", "b"):
        probe = d.workdir / f"probe-{which}.yaml"
        probe.write_text(config_text(d.workdir, which))
        versions[which] = version_of(probe)
    assert versions["a"] != versions["b"]
    cfg = d.config_path
    assert version_of(cfg) == versions["a"]

    bot, admin = d.client("deploy-bot"), d.client("carol")
    results, errors = [], []
    stop = threading.Event()

    def submit_many():
        for i in range(150):
            r = bot.submit_raw(sample_action(resource=f"r/{i}"))
            if r.status_code != 201:
                errors.append(r.text)
            else:
                results.append(r.json())
        stop.set()

    t = threading.Thread(target=submit_many)
    t.start()
    flips = 0
    while not stop.is_set() and flips < 40:
        which = "b" if flips % 2 == 0 else "a"
        cfg.write_text(config_text(d.workdir, which))
        ok(admin.post("/v1/admin/policy/reload", {}))
        flips += 1
    t.join(120)
    assert not errors, errors[:3]
    assert flips >= 2, "the reloads did not overlap the submissions"
    seen = set()
    for req in results:
        v = req["decision"]["policy_version"]
        which = next((w for w, ver in versions.items() if ver == v), None)
        assert which, f"{req['id']} names a version that was never loaded: {v}"
        seen.add(which)
        names = {rule["name"] for rule in req["decision"]["rules"]}
        foreign = {n for n in names if not n.startswith(which + "-") and n != "default"}
        assert not foreign, f"{req['id']} mixes policy {which} with rules {sorted(names)}"
        # and the outcome is that policy's: a reviews a production shell, b denies it
        assert req["status"] == ("pending" if which == "a" else "denied"), req["status"]
    assert seen, "no request was decided"
