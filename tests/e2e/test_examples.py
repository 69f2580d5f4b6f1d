"""The embedding examples (examples/c/gate.c, examples/http/gate.sh, examples/http/gate.py)
from an agent's seat: each exports only after approval, exactly once, reports the result,
stops with its own exit status when the answer is no, and refuses when the daemon digested
a different action than the one it would perform."""

import contextlib
import http.server
import json
import subprocess
import threading
import time

import pytest
import requests

from conftest import (BUILD, CAST, HTTP_TIMEOUT, REPO, cli_env, digest_of, finish_process,
                      free_closed_port, ok, reap_process,
                      wait_until)

RUN_TIMEOUT = 90  # seconds for an example to finish once the outcome is decided

# The examples' exit statuses (the header comment of each example).
EXIT_DONE, EXIT_DENIED, EXIT_EXPIRED, EXIT_ERROR, EXIT_DIGEST = 0, 3, 4, 5, 6


def example_command(name):
    if name == "c":
        binary = BUILD / "examples" / "signoff-example-gate"
        if not binary.exists():
            pytest.fail(f"the C example is not built: {binary} (set SIGNOFF_BUILD)")
        return [str(binary)]
    if name == "sh":
        return ["/bin/sh", str(REPO / "examples" / "http" / "gate.sh")]
    return ["/usr/bin/python3", str(REPO / "examples" / "http" / "gate.py")]


@pytest.fixture(params=["c", "sh", "py"])
def example(request):
    return example_command(request.param)


@contextlib.contextmanager
def running(example, url, args, cwd, who="deploy-bot"):
    proc = subprocess.Popen(example + [str(a) for a in args], cwd=cwd,
                            env=cli_env(url, CAST[who].token), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        reap_process(proc)


def finish(proc, timeout=RUN_TIMEOUT):
    return finish_process(proc, timeout, "the example")


def submitted(client, output, proc, status=None):
    """The request the example made for `output`, as `client` sees it, once it exists."""

    def find():
        if proc.poll() is not None:
            raise AssertionError(f"the example exited early with {proc.returncode}: "
                                 f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
        for r in client.list(status=status)["requests"]:
            if r["action"].get("destination") == str(output):
                return r
        return None

    return wait_until(find, timeout=30, interval=0.1, what="the example to submit its request")


def only_request(client):
    (req,) = client.list()["requests"]
    return req


def exported_lines(output):
    return output.read_text(encoding="utf-8").splitlines() if output.exists() else []


def test_approved_export_happens_exactly_once_and_is_reported(daemon, tmp_path, example):
    output = tmp_path / "export.txt"
    with running(example, daemon.url, ["customers", "production", output, "quarterly report"],
                 tmp_path) as proc:
        req = submitted(daemon.client("bob"), output, proc, status="pending")
        action = {"kind": "db.export", "table": "customers", "environment": "production",
                  "destination": str(output)}
        assert req["action"] == action, "the request must name exactly what will be done"
        assert req["digest"] == digest_of(action)
        assert req["requester"] == "deploy-bot"
        assert req["intent"] == "quarterly report"
        assert exported_lines(output) == [], "exported while the request was pending"

        ok(daemon.client("bob").approve(req["id"]))
        time.sleep(0.5)
        assert exported_lines(output) == [], "exported after one approval of a two-person rule"
        ok(daemon.client("carol").approve(req["id"]))
        rc, out, err = finish(proc)

    rid = req["id"]
    detail = f"exported table customers from production to {output}"
    assert rc == EXIT_DONE, err
    line = f"export of table customers from production, approved as {rid}"
    assert exported_lines(output) == [line], "the export must happen exactly once"
    assert f"{rid}: {detail}" in out
    final = daemon.client("deploy-bot").show(rid)
    assert final["status"] == "succeeded"
    assert final["result"] == {"exit_code": 0, "detail": detail}
    claims = [e for e in daemon.client("carol").audit_events()
              if e["type"] == "request.claimed" and e["request_id"] == rid]
    assert [e["data"]["digest"] for e in claims] == [digest_of(action)], "claimed exactly once"


def test_own_digest_matches_the_daemons_for_unusual_text(start_daemon, tmp_path, example):
    """Quotes, backslashes, slashes and non-ASCII text: the example's digest must still be the
    daemon's canonical one, or it would refuse (exit 6) instead of exporting."""
    d = start_daemon(policy={"default": "allow"})
    output = tmp_path / "Übersicht 2026 \"final\".txt"
    table = 'kunden_ü "vip" \\ a/b €'
    with running(example, d.url, [table, "prod-eu", output], tmp_path) as proc:
        rc, out, err = finish(proc)
    assert rc == EXIT_DONE, err
    assert len(exported_lines(output)) == 1
    req = only_request(d.client("deploy-bot"))
    assert req["action"]["table"] == table
    assert req["status"] == "succeeded"


def test_denied_exits_3_and_nothing_is_exported(daemon, tmp_path, example):
    output = tmp_path / "export.txt"
    with running(example, daemon.url, ["customers", "production", output], tmp_path) as proc:
        req = submitted(daemon.client("bob"), output, proc, status="pending")
        ok(daemon.client("bob").deny(req["id"], "not during the freeze"))
        rc, out, err = finish(proc)
    assert rc == EXIT_DENIED, err
    assert "denied" in err and "bob" in err and "not during the freeze" in err
    assert not output.exists(), "a denied export happened"
    final = daemon.client("deploy-bot").show(req["id"])
    assert final["status"] == "denied"
    assert final["claimed_at"] is None and final["result"] is None


def test_denied_by_policy_exits_3_at_once(start_daemon, tmp_path, example):
    d = start_daemon(policy={"default": "deny"})
    output = tmp_path / "export.txt"
    with running(example, d.url, ["customers", "production", output], tmp_path) as proc:
        rc, out, err = finish(proc)
    assert rc == EXIT_DENIED, err
    assert not output.exists()
    assert only_request(d.client("deploy-bot"))["status"] == "denied"


def test_cancelled_while_waiting_exits_4_and_nothing_is_exported(daemon, tmp_path, example):
    output = tmp_path / "export.txt"
    bot = daemon.client("deploy-bot")
    with running(example, daemon.url, ["customers", "production", output], tmp_path) as proc:
        req = submitted(bot, output, proc, status="pending")
        ok(bot.cancel(req["id"]))
        rc, out, err = finish(proc)
    assert rc == EXIT_EXPIRED, err
    assert "cancelled" in err
    assert not output.exists()
    assert bot.show(req["id"])["status"] == "cancelled"


def test_unreachable_daemon_exits_5_and_nothing_is_exported(tmp_path, example):
    output = tmp_path / "export.txt"
    url = f"http://127.0.0.1:{free_closed_port()}"
    with running(example, url, ["customers", "production", output], tmp_path) as proc:
        rc, out, err = finish(proc)
    assert rc == EXIT_ERROR, err
    assert not output.exists()


# --------------------------------------------------------------------------------------------
# The digest check: a proxy between the example and the real daemon rewrites the submitted
# action. The daemon then honestly digests an action the example would not perform.


class TamperingProxy:
    """Forwards every call to `upstream`, changing the table of each submitted action."""

    def __init__(self, upstream, table):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.forward(self)

            def do_POST(self):
                proxy.forward(self)

            def log_message(self, *args):
                pass

        self.upstream = upstream
        self.table = table
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        if h.command == "POST" and h.path == "/v1/requests":
            doc = json.loads(body)
            doc["action"]["table"] = self.table
            body = json.dumps(doc).encode()
        resp = requests.request(h.command, self.upstream + h.path, data=body,
                                headers={"Authorization": h.headers.get("Authorization", ""),
                                         "Content-Type": "application/json"},
                                timeout=HTTP_TIMEOUT + 30)
        h.send_response(resp.status_code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(resp.content)))
        h.end_headers()
        h.wfile.write(resp.content)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.mark.parametrize("policy, left_as", [("review", "cancelled"), ("allow", "approved")])
def test_refuses_when_the_daemon_digested_another_action(start_daemon, tmp_path, example,
                                                         policy, left_as):
    d = start_daemon(policy={"default": policy})
    output = tmp_path / "export.txt"
    with TamperingProxy(d.url, "salaries") as proxy:
        with running(example, proxy.url, ["customers", "production", output], tmp_path) as proc:
            rc, out, err = finish(proc)
    assert rc == EXIT_DIGEST, err
    assert "digest" in err
    assert not output.exists(), "exported under an approval for another action"
    req = only_request(d.client("deploy-bot"))
    assert req["action"]["table"] == "salaries", "the proxy did not change the action"
    # A pending request is withdrawn; a grant given at once is left unclaimed.
    assert req["status"] == left_as
    assert req["claimed_at"] is None
