"""`signoff mcp-proxy` between a real MCP client and real MCP servers.

The client is the MCP SDK's own (tests/e2e/mcp/client.mjs drives it and reports each event as
a JSON line), or, for what only the wire shows (a malformed line, a chosen request id, the
proxy's exit status), newline-delimited JSON-RPC written straight to the proxy. The servers are
@modelcontextprotocol/server-everything and server-filesystem as published, plus a small
stand-in (mcp/stub_server.py) that logs what reaches it and can crash on request. Packages are
installed from tests/e2e/mcp/package-lock.json by tests/e2e/mcp/install.

What a user of the proxy would notice: initialize and tools/list are the server's own; a gated
tools/call waits, as a pending signoff request with the exact action, until a human approves
it, and then returns the server's real result; a no (policy, reviewer, expiry, cancel, or a
daemon that cannot be reached) is a tool result with isError that says why, and the server
never sees the call; one waiting call blocks nothing else.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import CAST, cli_env, cli_path, free_closed_port, ok, wait_until

NODE = shutil.which("node")
if NODE is None:
    pytest.skip("node is not installed (scripts/bootstrap test installs it): the mcp-proxy tests "
                "run real MCP servers and a real client on node", allow_module_level=True)

MCP = Path(__file__).resolve().parent / "mcp"
MODULES = MCP / "node_modules"
CLIENT_JS = MCP / "client.mjs"
STUB_SERVER = MCP / "stub_server.py"
EVERYTHING_JS = MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
FILESYSTEM_JS = MODULES / "@modelcontextprotocol" / "server-filesystem" / "dist" / "index.js"
EVERYTHING_BIN = MODULES / ".bin" / "mcp-server-everything"

INSTALL_TIMEOUT = 900  # seconds for a first `npm ci`
EVENT_TIMEOUT = 60.0  # seconds for anything a test waits for (generous for ASan builds)
EXIT_TIMEOUT = 30.0  # seconds for a process to exit once it should
QUIET = 1.5  # seconds during which something must not happen

AGENT = "deploy-bot"  # the proxy's token; owned by alice, so bob reviews
EVERYTHING = [NODE, str(EVERYTHING_JS), "stdio"]
INIT_PARAMS = {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "signoff-e2e-raw", "version": "1.0.0"}}

ENV_REASON = "A server's environment may hold secrets."


def rule(name, when, decide, **more):
    r = {"name": name, "when": when, "decide": decide}
    r.update(more)
    return r


def mcp_tool(tool, extra=""):
    return f'action.kind == "mcp.tool" && action.tool == "{tool}"{extra}'


ONE_SRE = {"group": "sre", "count": 1}
POLICY = {
    "default": "review",
    "approvers": {"group": "sre", "count": 2},
    "rules": [
        rule("mcp-echo-is-reviewed", mcp_tool("echo"), "review", approvers=ONE_SRE,
             reason="An echo is looked at by one SRE."),
        rule("mcp-sum-is-free", mcp_tool("get-sum"), "allow", reason="Adding numbers changes nothing."),
        rule("mcp-env-is-refused", mcp_tool("get-env"), "deny", reason=ENV_REASON),
        rule("mcp-image-expires-soon", mcp_tool("get-tiny-image"), "review", approvers=ONE_SRE,
             ttl="2s"),
        rule("fs-writes-are-reviewed", mcp_tool("write_file", ' && action.server == "fs"'), "review",
             approvers=ONE_SRE),
        rule("fs-reads-are-free", mcp_tool("read_text_file", ' && action.server == "fs"'), "allow"),
        rule("stub-crash-is-free", mcp_tool("crash", ' && action.server == "stub"'), "allow"),
    ],
}


def action(tool, arguments, server="everything"):
    """The action the proxy must submit for a tools/call: exactly these four fields."""
    return {"kind": "mcp.tool", "server": server, "tool": tool, "arguments": arguments}


def text_of(result):
    """The one text item of a proxy-made result."""
    content = result.get("content")
    assert isinstance(content, list) and len(content) == 1, f"expected one content item: {result}"
    assert content[0].get("type") == "text" and isinstance(content[0].get("text"), str), result
    return content[0]["text"]


def refusal_text(result):
    """The reason of a result the proxy answered itself: {content: [text], isError: true}."""
    assert result.get("isError") is True, f"expected a result with isError: true, got {result}"
    return text_of(result)


# --------------------------------------------------------------------------------------------
# Fixtures: the packages, a daemon with the MCP policy, and every process killed at the end.


@pytest.fixture(scope="module", autouse=True)
def mcp_packages():
    """Install the pinned servers and client (a no-op when node_modules is up to date)."""
    try:
        r = subprocess.run(["sh", str(MCP / "install")], capture_output=True, text=True,
                           timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"tests/e2e/mcp/install did not finish within {INSTALL_TIMEOUT}s")
    if r.returncode != 0:
        pytest.fail(f"tests/e2e/mcp/install failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    for path in (EVERYTHING_JS, FILESYSTEM_JS, EVERYTHING_BIN):
        assert path.exists(), f"the install left no {path}"


@pytest.fixture
def mcp_daemon(start_daemon):
    return start_daemon(policy=POLICY)


@pytest.fixture
def spawned():
    """Processes started by a test, each the leader of its own process group: at teardown the
    whole group (client driver, proxy, server) is killed."""
    procs = []
    yield procs
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        for pipe in (p.stdin, p.stdout):
            if pipe:
                try:
                    pipe.close()
                except OSError:
                    pass


def proxy_cmd(server_cmd, name="everything"):
    args = [cli_path(), "mcp-proxy"]
    if name is not None:
        args += ["--name", name]
    return args + ["--"] + [str(x) for x in server_cmd]


def stub_cmd(log):
    return [sys.executable, str(STUB_SERVER), str(log)]


def agent_env(url):
    return cli_env(url, CAST[AGENT].token)


def tail(path, n=3000):
    try:
        return Path(path).read_text(errors="replace")[-n:]
    except FileNotFoundError:
        return ""


# --------------------------------------------------------------------------------------------
# Two ways to talk to the proxy.


class LineReader:
    """Collects the JSON lines a child prints on stdout, for waits with a deadline."""

    def __init__(self, proc, stderr_path, label):
        self.proc = proc
        self.stderr_path = stderr_path
        self.label = label
        self.items = []
        self.eof = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            try:
                item = json.loads(line)
            except ValueError:
                item = {"_not_json": line.decode(errors="replace")}
            with self.cond:
                self.items.append(item)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.items)

    def describe(self):
        return (f"{self.label}: exit status {self.proc.poll()}; stdout so far:\n"
                + "\n".join(json.dumps(i)[:400] for i in self.snapshot()[-20:])
                + f"\nstderr:\n{tail(self.stderr_path)}")

    def check(self, item):
        """Override: raise on an item that must fail the test whatever is awaited."""

    def wait_for(self, pred, what, timeout=EVENT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            seen = 0
            while True:
                while seen < len(self.items):
                    item = self.items[seen]
                    seen += 1
                    self.check(item)
                    if pred(item):
                        return item
                if self.eof:
                    raise AssertionError(f"stdout closed while waiting for {what}\n{self.describe()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n"
                                         + self.describe())
                self.cond.wait(min(left, 0.5))

    def wait_eof(self, timeout=EXIT_TIMEOUT):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"stdout still open after {timeout}s\n{self.describe()}"


class RawSession(LineReader):
    """Newline-delimited JSON-RPC written straight to a process (the proxy, or a server)."""

    def __init__(self, cmd, env, cwd, spawned, label):
        stderr_path = Path(cwd) / f"{label}.stderr"
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        spawned.append(proc)
        super().__init__(proc, stderr_path, label)

    def check(self, item):
        assert "_not_json" not in item, (f"{self.label} wrote a line that is not JSON on stdout: "
                                         f"{item['_not_json']!r}")

    def send_line(self, data):
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def send(self, msg):
        self.send_line(json.dumps(msg).encode())

    def request(self, msg_id, method, params=None):
        msg = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    @staticmethod
    def is_response(item, msg_id):
        return ("method" not in item and "id" in item and item["id"] == msg_id
                and type(item["id"]) is type(msg_id) and ("result" in item or "error" in item))

    def response(self, msg_id, timeout=EVENT_TIMEOUT):
        return self.wait_for(lambda m: self.is_response(m, msg_id), f"the response to id {msg_id!r}",
                             timeout)

    def responses_to(self, msg_id):
        return [m for m in self.snapshot() if self.is_response(m, msg_id)]

    def result(self, msg_id, timeout=EVENT_TIMEOUT):
        msg = self.response(msg_id, timeout)
        assert "result" in msg, f"expected a result for id {msg_id!r}, got {msg}"
        return msg["result"]

    def initialize(self, msg_id=1):
        self.request(msg_id, "initialize", INIT_PARAMS)
        msg = self.response(msg_id)
        self.notify("notifications/initialized")
        return msg

    def close_stdin(self):
        self.proc.stdin.close()

    def wait_exit(self, timeout=EXIT_TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.label} did not exit within {timeout}s\n{self.describe()}")


class Driver(LineReader):
    """The SDK's client (tests/e2e/mcp/client.mjs), steered one step at a time."""

    def __init__(self, target_cmd, env, cwd, spawned, label="client"):
        stderr_path = Path(cwd) / f"{label}.stderr"
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen([NODE, str(CLIENT_JS), "--", *map(str, target_cmd)], cwd=cwd,
                                    env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, start_new_session=True)
        spawned.append(proc)
        super().__init__(proc, stderr_path, label)

    def check(self, item):
        assert "_not_json" not in item, f"client.mjs printed a line that is not JSON: {item}"
        assert item.get("event") != "bad-step", f"the test sent a bad step: {item}"

    def step(self, **s):
        self.proc.stdin.write((json.dumps(s) + "\n").encode())
        self.proc.stdin.flush()

    def connect(self):
        self.step(op="connect")
        ev = self.wait_for(lambda e: e.get("event") == "connected"
                           or (e.get("event") == "error" and e.get("tag") == "connect"),
                           "the client to connect")
        assert ev["event"] == "connected", f"the client could not connect: {ev}\n{self.describe()}"
        return ev

    def call(self, tag, name, arguments=None):
        s = {"op": "callTool", "tag": tag, "name": name}
        if arguments is not None:
            s["arguments"] = arguments
        self.step(**s)

    @staticmethod
    def _is_outcome(e, tag):
        return e.get("event") in ("result", "error") and e.get("tag") == tag

    def outcome(self, tag, timeout=EVENT_TIMEOUT):
        return self.wait_for(lambda e: self._is_outcome(e, tag), f"the outcome of {tag}", timeout)

    def result(self, tag, timeout=EVENT_TIMEOUT):
        ev = self.outcome(tag, timeout)
        assert ev["event"] == "result", f"{tag} failed: {ev}\n{self.describe()}"
        return ev["result"]

    def has_outcome(self, tag):
        return any(self._is_outcome(e, tag) for e in self.snapshot())

    def client_errors(self):
        return [e for e in self.snapshot() if e.get("event") == "client-error"]

    def still_waiting(self, tag):
        """For find_request: fail at once if the call already ended or the client died."""

        def watch():
            if self.has_outcome(tag):
                raise AssertionError(f"{tag} ended before its request was seen\n{self.describe()}")
            if self.proc.poll() is not None:
                raise AssertionError(f"the client exited while {tag} was waiting\n{self.describe()}")

        return watch

    def close(self):
        self.step(op="close")
        self.wait_for(lambda e: e.get("event") == "closed", "the client to close")
        try:
            return self.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"client.mjs did not exit\n{self.describe()}")


def run_script(steps, target_cmd, env, cwd, spawned):
    """client.mjs with a whole scenario at once; its events."""
    proc = subprocess.Popen([NODE, str(CLIENT_JS), "--steps", json.dumps(steps), "--",
                             *map(str, target_cmd)], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    spawned.append(proc)
    try:
        out, err = proc.communicate(timeout=EVENT_TIMEOUT * 2)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"client.mjs did not finish {steps} within {EVENT_TIMEOUT * 2}s")
    assert proc.returncode == 0, f"client.mjs exited {proc.returncode}: {err.decode()[-3000:]}"
    return [json.loads(line) for line in out.decode().splitlines()]


# --------------------------------------------------------------------------------------------
# The daemon's side.


def find_request(daemon, act, watch=None, timeout=EVENT_TIMEOUT):
    """The one signoff request whose action is exactly `act`, as an admin (carol) sees it."""
    admin = daemon.client("carol")
    deadline = time.monotonic() + timeout
    while True:
        if watch:
            watch()
        seen = admin.list(limit=100)["requests"]
        found = [r for r in seen if r["action"] == act]
        assert len(found) <= 1, f"one call must make one request, found {len(found)}: {found}"
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no signoff request with action {json.dumps(act)} within "
                                 f"{timeout}s; the actions there: "
                                 + json.dumps([r["action"] for r in seen]))
        time.sleep(0.1)


def all_requests(daemon):
    return daemon.client("carol").list(limit=100)["requests"]


def status_of(daemon, rid):
    return daemon.client("carol").show(rid)["status"]


def assert_claimed(daemon, rid):
    req = daemon.client("carol").show(rid)
    assert req["status"] in ("claimed", "succeeded", "failed") and req["claimed_at"], \
        f"the proxy must claim the grant before it forwards the call: {req}"


def pending_request(daemon, driver, tag, act):
    req = find_request(daemon, act, watch=driver.still_waiting(tag))
    assert req["status"] == "pending", req
    assert req["requester"] == AGENT, "the request is the proxy's, made with its token"
    return req


def descendants(pid):
    """Pids of every live descendant of `pid`, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


# --------------------------------------------------------------------------------------------
# Relaying.


def test_initialize_and_tools_list_are_the_servers_own(mcp_daemon, tmp_path, spawned):
    env = agent_env(mcp_daemon.url)

    def session(cmd, label):
        s = RawSession(cmd, env, tmp_path, spawned, label)
        init = s.initialize("init-1")  # a string id comes back as the same string
        s.request(2, "tools/list")
        tools = s.response(2)
        s.close_stdin()
        return init, tools, s.wait_exit()

    direct_init, direct_tools, _ = session(EVERYTHING, "direct")
    proxied_init, proxied_tools, rc = session(proxy_cmd(EVERYTHING), "proxied")
    assert "result" in direct_init and "result" in direct_tools, (direct_init, direct_tools)
    names = [t["name"] for t in direct_tools["result"]["tools"]]
    assert {"echo", "get-sum", "get-env", "get-tiny-image"} <= set(names), \
        f"the policy names tools this server-everything does not have: {names}"
    assert proxied_init == direct_init, "initialize must pass through unchanged"
    assert proxied_tools == direct_tools, "tools/list must pass through unchanged"
    assert rc == 0
    assert all_requests(mcp_daemon) == [], "only tools/call is gated"


def test_sdk_client_sees_the_same_server_through_the_proxy(mcp_daemon, tmp_path, spawned):
    steps = [{"op": "connect"}, {"op": "listTools", "tag": "tools"}, {"op": "await", "tag": "tools"}]
    env = agent_env(mcp_daemon.url)

    def essentials(events):
        by = {e["event"]: e for e in events if e["event"] in ("connected", "result")}
        assert "connected" in by and "result" in by, events
        conn = {k: by["connected"][k] for k in ("serverInfo", "capabilities", "instructions")}
        return conn, by["result"]["result"]

    direct = essentials(run_script(steps, EVERYTHING, env, tmp_path, spawned))
    proxied = essentials(run_script(steps, proxy_cmd(EVERYTHING), env, tmp_path, spawned))
    assert proxied == direct


# --------------------------------------------------------------------------------------------
# Gated calls.


def test_gated_call_waits_for_approval_then_returns_the_real_result(mcp_daemon, tmp_path, spawned):
    drv = Driver(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned)
    drv.connect()
    drv.call("A", "echo", {"message": "hello through signoff"})
    req = pending_request(mcp_daemon, drv, "A",
                          action("echo", {"message": "hello through signoff"}))
    assert [r["name"] for r in req["decision"]["rules"]] == ["mcp-echo-is-reviewed"]

    time.sleep(QUIET)
    assert not drv.has_outcome("A"), "the call returned before anyone approved it"
    assert status_of(mcp_daemon, req["id"]) == "pending"

    ok(mcp_daemon.client("bob").approve(req["id"]))
    assert drv.result("A") == {"content": [{"type": "text", "text": "Echo: hello through signoff"}]}
    assert_claimed(mcp_daemon, req["id"])
    assert drv.client_errors() == []
    assert drv.close() == 0


def test_call_allowed_by_policy_passes_at_once(mcp_daemon, tmp_path, spawned):
    drv = Driver(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned)
    drv.connect()
    drv.call("S", "get-sum", {"a": 2, "b": 3})
    assert drv.result("S") == {"content": [{"type": "text", "text": "The sum of 2 and 3 is 5."}]}
    req = find_request(mcp_daemon, action("get-sum", {"a": 2, "b": 3}))
    assert req["decision"]["outcome"] == "allow" and req["reviews"] == []
    assert_claimed(mcp_daemon, req["id"])


def test_call_denied_by_policy_is_an_error_result_with_the_rules_reason(mcp_daemon, tmp_path,
                                                                         spawned):
    drv = Driver(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned)
    drv.connect()
    drv.call("E", "get-env")  # no arguments: the action says {}
    text = refusal_text(drv.result("E"))
    assert "denied" in text.lower() and ENV_REASON in text, text
    assert "PATH" not in text, "the server ran a denied call"
    req = find_request(mcp_daemon, action("get-env", {}))
    assert req["status"] == "denied"


def test_call_denied_by_a_reviewer_is_an_error_result_with_the_comment(mcp_daemon, tmp_path,
                                                                        spawned):
    drv = Driver(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned)
    drv.connect()
    drv.call("A", "echo", {"message": "please"})
    req = pending_request(mcp_daemon, drv, "A", action("echo", {"message": "please"}))
    ok(mcp_daemon.client("bob").deny(req["id"], "not during the freeze"))
    text = refusal_text(drv.result("A"))
    assert "denied" in text.lower() and "not during the freeze" in text, text
    assert "Echo:" not in text
    assert status_of(mcp_daemon, req["id"]) == "denied"


def test_call_that_expires_is_an_error_result(mcp_daemon, tmp_path, spawned):
    drv = Driver(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned)
    drv.connect()
    drv.call("I", "get-tiny-image", {})  # its rule gives the review a ttl of 2s
    text = refusal_text(drv.result("I"))
    assert "expired" in text.lower(), text
    assert find_request(mcp_daemon, action("get-tiny-image", {}))["status"] == "expired"


def test_call_cancelled_through_the_api_is_an_error_result(mcp_daemon, tmp_path, spawned):
    drv = Driver(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned)
    drv.connect()
    drv.call("A", "echo", {"message": "never mind"})
    req = pending_request(mcp_daemon, drv, "A", action("echo", {"message": "never mind"}))
    ok(mcp_daemon.client(AGENT).cancel(req["id"]))
    text = refusal_text(drv.result("A"))
    assert "cancelled" in text.lower() or "canceled" in text.lower(), text


# --------------------------------------------------------------------------------------------
# Concurrency.


def test_approved_call_completes_while_another_is_still_pending(mcp_daemon, tmp_path, spawned):
    drv = Driver(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned)
    drv.connect()
    drv.call("A", "echo", {"message": "first asked"})
    drv.call("B", "echo", {"message": "second asked"})
    req_a = pending_request(mcp_daemon, drv, "A", action("echo", {"message": "first asked"}))
    req_b = pending_request(mcp_daemon, drv, "B", action("echo", {"message": "second asked"}))

    ok(mcp_daemon.client("bob").approve(req_b["id"]))
    assert drv.result("B") == {"content": [{"type": "text", "text": "Echo: second asked"}]}
    assert not drv.has_outcome("A"), "A was never approved"
    assert status_of(mcp_daemon, req_a["id"]) == "pending"

    ok(mcp_daemon.client("bob").approve(req_a["id"]))
    assert drv.result("A") == {"content": [{"type": "text", "text": "Echo: first asked"}]}


def test_waiting_call_blocks_neither_ping_nor_other_calls(mcp_daemon, tmp_path, spawned):
    drv = Driver(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned)
    drv.connect()
    drv.call("A", "echo", {"message": "slow"})
    req = pending_request(mcp_daemon, drv, "A", action("echo", {"message": "slow"}))
    drv.step(op="ping", tag="P")
    assert drv.result("P") == {}
    drv.call("S", "get-sum", {"a": 40, "b": 2})
    assert drv.result("S") == {"content": [{"type": "text", "text": "The sum of 40 and 2 is 42."}]}
    drv.step(op="listTools", tag="L")
    assert any(t["name"] == "echo" for t in drv.result("L")["tools"])
    assert not drv.has_outcome("A")
    assert status_of(mcp_daemon, req["id"]) == "pending"
    ok(mcp_daemon.client("bob").approve(req["id"]))
    assert drv.result("A") == {"content": [{"type": "text", "text": "Echo: slow"}]}


def test_notifications_cancelled_cancels_the_request_and_gets_no_response(mcp_daemon, tmp_path,
                                                                          spawned):
    s = RawSession(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned, "proxy")
    s.initialize()
    s.request(7, "tools/call", {"name": "echo", "arguments": {"message": "abandoned"}})
    req = find_request(mcp_daemon, action("echo", {"message": "abandoned"}))
    assert req["status"] == "pending"
    s.notify("notifications/cancelled", {"requestId": 7, "reason": "the user moved on"})
    wait_until(lambda: status_of(mcp_daemon, req["id"]) == "cancelled", timeout=EVENT_TIMEOUT,
               what="notifications/cancelled to cancel the signoff request")

    time.sleep(QUIET)
    s.request(8, "ping")
    assert s.result(8) == {}
    s.request(9, "tools/call", {"name": "get-sum", "arguments": {"a": 1, "b": 1}})
    assert s.result(9) == {"content": [{"type": "text", "text": "The sum of 1 and 1 is 2."}]}
    assert s.responses_to(7) == [], "a cancelled call must get no response"


# --------------------------------------------------------------------------------------------
# The protocol's edges and the proxy's life.


def test_malformed_line_is_a_parse_error_and_the_session_goes_on(mcp_daemon, tmp_path, spawned):
    s = RawSession(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned, "proxy")
    s.initialize()
    s.send_line(b"this is {not json")
    err = s.wait_for(lambda m: "error" in m and "id" in m and m["id"] is None,
                     "a parse error with id null")
    assert err["jsonrpc"] == "2.0" and err["error"]["code"] == -32700, err
    assert isinstance(err["error"].get("message"), str)
    s.request(3, "tools/call", {"name": "get-sum", "arguments": {"a": 2, "b": 2}})
    assert s.result(3) == {"content": [{"type": "text", "text": "The sum of 2 and 2 is 4."}]}
    s.request(4, "ping")
    assert s.result(4) == {}
    assert s.proc.poll() is None


def test_closing_stdin_ends_the_server_then_the_proxy_with_status_0(mcp_daemon, tmp_path, spawned):
    s = RawSession(proxy_cmd(EVERYTHING), agent_env(mcp_daemon.url), tmp_path, spawned, "proxy")
    s.initialize()
    server = descendants(s.proc.pid)
    assert server, "the proxy has no server process"
    s.close_stdin()
    assert s.wait_exit() == 0, s.describe()
    left = [pid for pid in server if alive(pid)]
    assert left == [], f"the proxy exited before its server did: {left} still run"
    s.wait_eof()


def test_server_exit_fails_every_pending_call_and_ends_the_proxy(mcp_daemon, tmp_path, spawned):
    log = tmp_path / "stub.log"
    s = RawSession(proxy_cmd(stub_cmd(log), name="stub"), agent_env(mcp_daemon.url), tmp_path,
                   spawned, "proxy")
    s.initialize()
    s.request(10, "tools/call", {"name": "echo", "arguments": {"message": "waiting"}})
    waiting = find_request(mcp_daemon, action("echo", {"message": "waiting"}, server="stub"))
    assert waiting["status"] == "pending"
    s.request("crash-11", "tools/call", {"name": "crash", "arguments": {}})  # allowed: the stub exits

    for msg_id in ("crash-11", 10):
        msg = s.response(msg_id)
        assert "error" in msg and "result" not in msg, f"expected a JSON-RPC error: {msg}"
        assert isinstance(msg["error"].get("code"), int), msg
        assert isinstance(msg["error"].get("message"), str) and msg["error"]["message"], msg
    rc = s.wait_exit()
    assert rc != 0, "the proxy must exit non-zero when its server exits"
    assert tail(s.stderr_path).strip(), "the proxy must say on stderr why it stopped"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [m["params"]["name"] for m in calls if m.get("method") == "tools/call"] == ["crash"], \
        "only the allowed call may have reached the server"


def test_daemon_unreachable_fails_closed(tmp_path, spawned):
    log = tmp_path / "stub.log"
    url = f"http://127.0.0.1:{free_closed_port()}"
    s = RawSession(proxy_cmd(stub_cmd(log), name="stub"), agent_env(url), tmp_path, spawned,
                   "proxy")
    init = s.initialize()
    assert init["result"]["serverInfo"]["name"] == "stub", "initialize needs no daemon"
    s.request(2, "tools/call", {"name": "echo", "arguments": {"message": "hello?"}})
    s.request(3, "tools/call", {"name": "crash", "arguments": {}})
    for msg_id in (2, 3):
        text = refusal_text(s.result(msg_id))
        assert "reach" in text.lower(), f"the reason must say the daemon is unreachable: {text}"
    s.request(4, "ping")
    assert s.result(4) == {}
    assert s.proc.poll() is None, "the server must still run: no call reached it"
    received = [json.loads(line).get("method") for line in log.read_text().splitlines()]
    assert "tools/call" not in received, f"a call reached the server: {received}"


def test_name_defaults_to_the_basename_of_the_server_command(mcp_daemon, tmp_path, spawned):
    drv = Driver(proxy_cmd([EVERYTHING_BIN, "stdio"], name=None), agent_env(mcp_daemon.url),
                 tmp_path, spawned)
    drv.connect()
    drv.call("S", "get-sum", {"a": 1, "b": 2})
    assert drv.result("S") == {"content": [{"type": "text", "text": "The sum of 1 and 2 is 3."}]}
    find_request(mcp_daemon, action("get-sum", {"a": 1, "b": 2}, server="mcp-server-everything"))


# --------------------------------------------------------------------------------------------
# A server with real side effects.


def test_filesystem_write_happens_only_after_approval(mcp_daemon, tmp_path, spawned):
    root = (tmp_path / "files").resolve()
    root.mkdir()
    target, refused = root / "approved.txt", root / "refused.txt"
    drv = Driver(proxy_cmd([NODE, FILESYSTEM_JS, root], name="fs"), agent_env(mcp_daemon.url),
                 tmp_path, spawned)
    drv.connect()
    drv.step(op="listTools", tag="L")  # as a real client would; the SDK then checks outputs
    assert "write_file" in [t["name"] for t in drv.result("L")["tools"]]

    drv.call("W", "write_file", {"path": str(target), "content": "written after review\n"})
    req = pending_request(mcp_daemon, drv, "W", action(
        "write_file", {"path": str(target), "content": "written after review\n"}, server="fs"))
    time.sleep(QUIET)
    assert not target.exists(), "the file was written before approval"
    ok(mcp_daemon.client("bob").approve(req["id"]))
    res = drv.result("W")
    assert not res.get("isError"), res
    assert text_of(res) == f"Successfully wrote to {target}"
    assert target.read_text() == "written after review\n"
    assert_claimed(mcp_daemon, req["id"])

    drv.call("X", "write_file", {"path": str(refused), "content": "never\n"})
    req = pending_request(mcp_daemon, drv, "X", action(
        "write_file", {"path": str(refused), "content": "never\n"}, server="fs"))
    ok(mcp_daemon.client("bob").deny(req["id"], "wrong directory"))
    assert "wrong directory" in refusal_text(drv.result("X"))
    assert not refused.exists(), "a denied write reached the filesystem"

    drv.call("R", "read_text_file", {"path": str(target)})
    assert text_of(drv.result("R")) == "written after review\n"
    assert sorted(p.name for p in root.iterdir()) == ["approved.txt"]


def test_lines_read_differently_by_the_server_never_reach_it(mcp_daemon, tmp_path, spawned):
    """A line that could mean tools/call to the server but not to the proxy, or that the proxy
    cannot read exactly as the server would, is answered with an error and never relayed."""
    log = tmp_path / "stub.log"
    s = RawSession(proxy_cmd(stub_cmd(log), name="stub"), agent_env(mcp_daemon.url), tmp_path,
                   spawned, "proxy")
    s.initialize()
    call = {"jsonrpc": "2.0", "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "sneaked"}}}
    # Duplicate keys: a JavaScript server keeps the last "method".
    s.send_line(b'{"jsonrpc":"2.0","id":21,"method":"ping","method":"tools/call",'
                b'"params":{"name":"echo","arguments":{"message":"sneaked"}}}')
    # A batch holding a call.
    s.send_line(json.dumps([dict(call, id=22)]).encode())
    # A call sent as a notification (no id): no answer is due, and it must not run.
    s.send_line(json.dumps(call).encode())
    # Invalid UTF-8 inside the arguments.
    s.send_line(b'{"jsonrpc":"2.0","id":23,"method":"tools/call","params":{"name":"echo",'
                b'"arguments":{"message":"\xff"}}}')
    s.request(24, "ping")
    assert s.result(24) == {}
    codes = [m["error"]["code"] for m in s.snapshot() if "error" in m and "method" not in m]
    assert codes == [-32700, -32600, -32700], \
        f"each unreadable line must get its own error (parse, batch, UTF-8): {codes}"
    received = [json.loads(line) for line in log.read_text().splitlines()]
    assert not [m for m in received if m.get("method") == "tools/call"], \
        f"a line the proxy could not read reached the server: {received}"
    assert all(isinstance(m, dict) for m in received)


def test_server_does_not_inherit_the_agents_token(mcp_daemon, tmp_path, spawned):
    env_file = tmp_path / "server.env"
    log = tmp_path / "stub.log"
    wrapped = ["/bin/sh", "-c", 'env > "$0"; exec "$@"', str(env_file), *stub_cmd(log)]
    s = RawSession(proxy_cmd(wrapped, name="stub"), agent_env(mcp_daemon.url), tmp_path, spawned,
                   "proxy")
    s.initialize()
    names = {line.split("=", 1)[0] for line in env_file.read_text().splitlines() if "=" in line}
    assert "SIGNOFF_URL" in names, "the environment was not captured"
    assert "SIGNOFF_TOKEN" not in names, "the MCP server was given the agent's signoff token"
