"""A wait rides over its daemon going away for a few seconds (a node restarting, or stopping
behind a load balancer): `signoff run` keeps asking for up to 10 s, then fails closed.
Submitting and claiming are never repeated, so nothing runs twice."""

import time

from conftest import free_closed_port, ok
from test_cli_run import finish, marker_cmd, pending_for, runs, signoff_run


def test_run_rides_over_its_daemon_restarting(start_daemon, tmp_path):
    port = free_closed_port()
    d = start_daemon(server={"listen": f"127.0.0.1:{port}"})
    marker = tmp_path / "marker"
    cmd = marker_cmd(marker)
    with signoff_run(d.url, tmp_path, cmd) as proc:
        req = pending_for(d, cmd, proc)
        d.kill9()
        time.sleep(1.0)  # the run's long-poll has lost its connection and is asking again
        assert proc.poll() is None, "signoff run gave up at once when its daemon went away"
        d.start()  # the same store, the same port
        assert d.url.endswith(f":{port}")
        ok(d.client("bob").approve(req["id"]))
        ok(d.client("carol").approve(req["id"]))
        rc, out, err = finish(proc)
    assert rc == 0, f"expected the approved command to run: {rc}: {err[-2000:]}"
    assert runs(marker) == ["ran"]
    assert d.client("erin").show(req["id"])["status"] == "succeeded", \
        "the run's claim and result were not recorded"
    assert not d.sanitizer_reports()


def test_run_fails_closed_when_its_daemon_stays_away(start_daemon, tmp_path):
    d = start_daemon()
    marker = tmp_path / "marker"
    cmd = marker_cmd(marker)
    with signoff_run(d.url, tmp_path, cmd) as proc:
        pending_for(d, cmd, proc)
        d.kill9()
        t0 = time.monotonic()
        rc, out, err = finish(proc)
        waited = time.monotonic() - t0
    assert rc == 5, f"daemon gone: expected exit 5, got {rc}: {err[-2000:]}"
    assert runs(marker) == []
    assert waited < 60, f"gave up only after {waited:.0f}s"
