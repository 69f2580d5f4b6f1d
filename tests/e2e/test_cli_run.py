"""`signoff run` from an agent's seat: the command runs only after approval, exactly once, and
never when the answer is no, too late, withdrawn, or cannot be had."""

import contextlib
import json
import re
import time

from conftest import (CAST, REQUEST_ID_RE, expect_error, finish_process, free_closed_port, ok,
                      reap_process, run_cli,
                      spawn_cli, wait_until)

RUN_TIMEOUT = 90  # seconds for `signoff run` to finish once the outcome is decided


def marker_cmd(marker, code=0):
    """A command that appends one line to `marker` and exits with `code`."""
    return ["/bin/sh", "-c", 'echo ran >> "$1"; exit "$2"', "sh", str(marker), str(code)]


def runs(marker):
    return marker.read_text().splitlines() if marker.exists() else []


@contextlib.contextmanager
def signoff_run(d_url, tmp_path, cmd, who="deploy-bot", extra=()):
    args = ["run", "--env", "production", "--why", "e2e test", *extra, "--", *cmd]
    proc = spawn_cli(args, d_url, CAST[who].token, tmp_path)
    try:
        yield proc
    finally:
        reap_process(proc)


def finish(proc, timeout=RUN_TIMEOUT):
    return finish_process(proc, timeout, "signoff run")


def pending_for(daemon, cmd, proc):
    """The pending request `signoff run` made for `cmd`, as reviewer bob sees it."""
    bob = daemon.client("bob")

    def find():
        if proc.poll() is not None:
            raise AssertionError(f"signoff run exited early with {proc.returncode}: "
                                 f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
        for r in bob.list(status="pending")["requests"]:
            if r["action"].get("command") == cmd:
                return r
        return None

    return wait_until(find, timeout=30, interval=0.1, what="signoff run to submit its request")


def test_run_waits_for_two_approvals_then_runs_exactly_once(daemon, tmp_path):
    marker = tmp_path / "marker"
    cmd = marker_cmd(marker, 0)
    with signoff_run(daemon.url, tmp_path, cmd) as proc:
        req = pending_for(daemon, cmd, proc)
        assert req["requester"] == "deploy-bot"
        assert req["action"]["command"] == cmd, "the request must name exactly the command"
        assert req["action"]["environment"] == "production"
        assert req["intent"] == "e2e test"
        time.sleep(0.5)
        assert runs(marker) == [], "command ran while its request was pending"

        ok(daemon.client("bob").approve(req["id"]))
        time.sleep(0.5)
        assert runs(marker) == [], "command ran after one approval of a two-person rule"
        assert proc.poll() is None

        ok(daemon.client("carol").approve(req["id"]))
        rc, out, err = finish(proc)
    assert rc == 0, err
    assert runs(marker) == ["ran"], "command must run exactly once"
    final = daemon.client("deploy-bot").show(req["id"])
    assert final["status"] == "succeeded"
    assert final["result"]["exit_code"] == 0
    # The grant is used up.
    expect_error(daemon.client("deploy-bot").claim(req["id"], req["digest"]), 409, None)


def test_run_exit_status_is_the_commands(start_daemon, tmp_path):
    d = start_daemon(policy={"default": "allow"})
    marker = tmp_path / "marker"
    for code in [0, 7, 1]:
        cmd = marker_cmd(marker, code)
        with signoff_run(d.url, tmp_path, cmd) as proc:
            rc, out, err = finish(proc)
        assert rc == code, f"signoff run exited {rc}, the command exited {code}: {err}"
    assert runs(marker) == ["ran"] * 3
    statuses = sorted((r["status"], r["result"]["exit_code"])
                      for r in d.client("erin").list()["requests"])
    assert statuses == [("failed", 1), ("failed", 7), ("succeeded", 0)]


def test_run_passes_arguments_verbatim(start_daemon, tmp_path):
    d = start_daemon(policy={"default": "allow"})
    out_file = tmp_path / "args"
    tricky = ["a b", "$HOME", "'q'", "--", "é✓", ""]
    cmd = ["/bin/sh", "-c", 'for a in "$@"; do printf "%s\\n" "$a"; done > "$0"', str(out_file)] + tricky
    with signoff_run(d.url, tmp_path, cmd) as proc:
        rc, out, err = finish(proc)
    assert rc == 0, err
    assert out_file.read_text(encoding="utf-8").split("\n")[:-1] == tricky
    (req,) = d.client("erin").list()["requests"]
    assert req["action"]["command"] == cmd


def test_run_denied_by_reviewer_never_runs(daemon, tmp_path):
    marker = tmp_path / "marker"
    cmd = marker_cmd(marker)
    with signoff_run(daemon.url, tmp_path, cmd) as proc:
        req = pending_for(daemon, cmd, proc)
        ok(daemon.client("bob").deny(req["id"], comment="no"))
        rc, out, err = finish(proc)
    assert rc == 3, f"denied: expected exit 3, got {rc}: {err}"
    assert runs(marker) == []


def test_run_denied_by_policy_never_runs(start_daemon, tmp_path):
    d = start_daemon(policy={"default": "deny"})
    marker = tmp_path / "marker"
    with signoff_run(d.url, tmp_path, marker_cmd(marker)) as proc:
        rc, out, err = finish(proc)
    assert rc == 3, err
    assert runs(marker) == []


def test_run_expired_never_runs(start_daemon, tmp_path):
    d = start_daemon(policy={"ttl": "2s"})
    marker = tmp_path / "marker"
    cmd = marker_cmd(marker)
    with signoff_run(d.url, tmp_path, cmd) as proc:
        req = pending_for(d, cmd, proc)
        rc, out, err = finish(proc)
        # Approving after it expired cannot revive it.
        expect_error(d.client("bob").approve(req["id"]), 409, "not_pending")
    assert rc == 4, f"expired: expected exit 4, got {rc}: {err}"
    assert runs(marker) == []
    assert d.client("deploy-bot").show(req["id"])["status"] == "expired"


def test_run_cancelled_never_runs(daemon, tmp_path):
    marker = tmp_path / "marker"
    cmd = marker_cmd(marker)
    with signoff_run(daemon.url, tmp_path, cmd) as proc:
        req = pending_for(daemon, cmd, proc)
        ok(daemon.client("deploy-bot").cancel(req["id"]))
        rc, out, err = finish(proc)
    assert rc == 4, f"cancelled: expected exit 4, got {rc}: {err}"
    assert runs(marker) == []


def test_run_with_daemon_unreachable_never_runs(tmp_path):
    marker = tmp_path / "marker"
    url = f"http://127.0.0.1:{free_closed_port()}"
    with signoff_run(url, tmp_path, marker_cmd(marker)) as proc:
        rc, out, err = finish(proc)
    assert rc == 5, f"unreachable: expected exit 5, got {rc}: {err}"
    assert runs(marker) == []


def test_run_with_daemon_killed_while_waiting_never_runs(daemon, tmp_path):
    marker = tmp_path / "marker"
    cmd = marker_cmd(marker)
    with signoff_run(daemon.url, tmp_path, cmd) as proc:
        pending_for(daemon, cmd, proc)
        daemon.kill9()
        rc, out, err = finish(proc)
    assert rc == 5, f"daemon gone: expected exit 5, got {rc}: {err}"
    assert runs(marker) == []


def test_run_with_bad_token_never_runs(daemon, tmp_path):
    marker = tmp_path / "marker"
    p = run_cli(["run", "--", *marker_cmd(marker)], daemon.url, "so_" + "0" * 64, tmp_path,
                timeout=RUN_TIMEOUT)
    assert p.returncode == 5, f"bad token: expected exit 5, got {p.returncode}: {p.stderr[-2000:]}"
    assert runs(marker) == []
    assert daemon.client("erin").list()["requests"] == []


def test_run_without_token_or_url_never_runs(tmp_path):
    marker = tmp_path / "marker"
    proc = run_cli(["run", "--", *marker_cmd(marker)], None, None, tmp_path)
    assert proc.returncode != 0
    assert runs(marker) == []


# The review verbs, as a human at a terminal uses them. ---------------------------------------


def ids_in(listing):
    data = json.loads(listing)
    if isinstance(data, dict):
        data = data["requests"]
    return [r["id"] for r in data]


def test_request_list_approve_deny_from_the_cli(daemon, tmp_path):
    url = daemon.url
    bot = CAST["deploy-bot"].token
    p = run_cli(["request", "--env", "production", "--why", "cli", "--", "kubectl", "get", "pods"],
                url, bot, tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    m = re.search(r"req_[0-9A-Z]{26}", p.stdout.decode())
    assert m, p.stdout
    rid = m.group(0)
    assert REQUEST_ID_RE.match(rid)

    p = run_cli(["list", "--pending", "--json"], url, CAST["bob"].token, tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    assert rid in ids_in(p.stdout)

    p = run_cli(["approve", rid, "-m", "fine"], url, CAST["bob"].token, tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    p = run_cli(["approve", rid], url, CAST["alice"].token, tmp_path)
    assert p.returncode != 0, "the owner's approval must be refused"
    assert daemon.client("bob").show(rid)["status"] == "pending"
    p = run_cli(["approve", rid], url, CAST["carol"].token, tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    shown = daemon.client("bob").show(rid)
    assert shown["status"] == "approved"
    assert shown["reviews"][0]["comment"] == "fine"

    p = run_cli(["show", rid, "--json"], url, bot, tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["status"] == "approved"

    p = run_cli(["request", "--", "kubectl", "delete", "pods"], url, bot, tmp_path)
    rid2 = re.search(r"req_[0-9A-Z]{26}", p.stdout.decode()).group(0)
    p = run_cli(["deny", rid2, "-m", "no"], url, CAST["bob"].token, tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    assert daemon.client("bob").show(rid2)["status"] == "denied"


def test_run_bind_file_refuses_a_file_changed_after_approval(daemon, tmp_path):
    """--bind-file puts the file's SHA-256 in the action; the run checks it again before it
    starts the command, so a plan swapped while the request waited is never applied."""
    import hashlib
    plan = tmp_path / "tfplan"
    plan.write_bytes(b"plan reviewed by bob and carol\n")
    marker = tmp_path / "marker"
    cmd = marker_cmd(marker, 0)
    with signoff_run(daemon.url, tmp_path, cmd, extra=["--bind-file", str(plan)]) as proc:
        req = pending_for(daemon, cmd, proc)
        assert req["action"]["files"] == [
            {"path": str(plan), "sha256": hashlib.sha256(plan.read_bytes()).hexdigest()}]
        plan.write_bytes(b"a different plan\n")
        ok(daemon.client("bob").approve(req["id"]))
        ok(daemon.client("carol").approve(req["id"]))
        rc, out, err = finish(proc)
    assert rc == 5, f"a changed bound file must stop the run with 5, got {rc}: {err}"
    assert "changed since it was approved" in err
    assert runs(marker) == [], "the command ran although its bound file changed"
    final = daemon.client("deploy-bot").show(req["id"])
    assert final["status"] == "failed"
    assert "changed since it was approved" in final["result"]["detail"]


def test_run_bind_file_unchanged_runs_and_missing_file_asks_nothing(daemon, tmp_path):
    plan = tmp_path / "tfplan"
    plan.write_bytes(b"the plan\n")
    marker = tmp_path / "marker"
    cmd = marker_cmd(marker, 0)
    with signoff_run(daemon.url, tmp_path, cmd, extra=["--bind-file", str(plan)]) as proc:
        req = pending_for(daemon, cmd, proc)
        ok(daemon.client("bob").approve(req["id"]))
        ok(daemon.client("carol").approve(req["id"]))
        rc, out, err = finish(proc)
    assert rc == 0, err
    assert runs(marker) == ["ran"]

    before = len(daemon.client("bob").list()["requests"])
    with signoff_run(daemon.url, tmp_path, cmd,
                     extra=["--bind-file", str(tmp_path / "no-such-plan")]) as proc:
        rc, out, err = finish(proc)
    assert rc == 5 and "no-such-plan" in err, err
    assert len(daemon.client("bob").list()["requests"]) == before, "a request was made anyway"
    assert runs(marker) == ["ran"]
