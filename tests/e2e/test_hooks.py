"""`signoff hook AGENT` as Claude Code (PreToolUse), Gemini CLI (BeforeTool) and Cursor
(beforeShellExecution, beforeMCPExecution) run it: one JSON event on stdin, one decision on
stdout.

What is pinned: each tool call becomes exactly the documented action (so policy sees what will
run), the hook waits for a human and claims the grant before it answers allow, a no is a deny
that carries the reviewer's comment or the rule's reason, and every failure of its own is a
deny JSON on stdout, a reason on stderr and exit status 2, the only status that blocks the call
in all three agents.
"""

import contextlib
import hashlib
import json
import re
import subprocess
import threading

import pytest

from conftest import (CAST, canonical_json, cli_env, cli_path, digest_of, free_closed_port, ok,
                      wait_until)

HOOK_TIMEOUT = 90  # seconds for a hook to finish once the outcome is decided
STDIN_LIMIT = 1024 * 1024  # the hook reads at most 1 MiB
DIFF_LIMIT = 8 * 1024  # the diff excerpt in the request's context
AGENTS = ("claude-code", "gemini", "cursor")
AGENT_BOT = "deploy-bot"  # the hook's token: an agent owned by alice
REVIEWER = "bob"  # a human of sre, not the agent's owner

CWD = "/home/dev/src/shop"
CLAUDE_SESSION = "8d0c5e7a-3b52-4d6e-9f1a-2c47b6e0d913"
GEMINI_SESSION = "f3a9c2d1-6e4b-4c8a-b7d5-0e1f2a3b4c5d"
CURSOR_CONVERSATION = "c7b6a5f4-e3d2-4c1b-a098-f7e6d5c4b3a2"


# --------------------------------------------------------------------------------------------
# Events as the agents send them.


def claude_event(tool_name, tool_input, event="PreToolUse"):
    return {
        "session_id": CLAUDE_SESSION,
        "transcript_path": f"/home/dev/.claude/projects/-home-dev-src-shop/{CLAUDE_SESSION}.jsonl",
        "cwd": CWD,
        "permission_mode": "default",
        "hook_event_name": event,
        "tool_name": tool_name,
        "tool_input": tool_input,
        "tool_use_id": "toolu_01HkVq9ZtXw3mB6nR2pL8sJd",
    }


def gemini_event(tool_name, tool_input, event="BeforeTool", mcp_context=None):
    e = {
        "session_id": GEMINI_SESSION,
        "transcript_path": f"/home/dev/.gemini/tmp/3c1e/chats/session-{GEMINI_SESSION}.json",
        "cwd": CWD,
        "hook_event_name": event,
        "timestamp": "2026-11-29T16:02:11.481Z",
        "tool_name": tool_name,
        "tool_input": tool_input,
    }
    if mcp_context is not None:
        e["mcp_context"] = mcp_context
    return e


def cursor_shell_event(command, event="beforeShellExecution"):
    return {
        "conversation_id": CURSOR_CONVERSATION,
        "generation_id": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
        "hook_event_name": event,
        "command": command,
        "cwd": CWD,
        "workspace_roots": [CWD],
    }


def cursor_mcp_event(tool_name, tool_input, **server):
    e = {
        "conversation_id": CURSOR_CONVERSATION,
        "generation_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "hook_event_name": "beforeMCPExecution",
        "tool_name": tool_name,
        "tool_input": tool_input,
        "workspace_roots": [CWD],
    }
    e.update(server)  # url=... or command=...
    return e


def shell_event(agent, line, description=None):
    """The event each agent sends before running one shell line."""
    if agent == "claude-code":
        ti = {"command": line, "description": description or "Run a shell command"}
        return claude_event("Bash", ti)
    if agent == "gemini":
        ti = {"command": line}
        if description:
            ti["description"] = description
        return gemini_event("run_shell_command", ti)
    return cursor_shell_event(line)


def input_sha256(tool_input):
    return hashlib.sha256(canonical_json(tool_input)).hexdigest()


def shell_action(line, words):
    return {"kind": "shell", "command_line": line, "command": words}


def sh_c(line):
    return shell_action(line, ["sh", "-c", line])


# --------------------------------------------------------------------------------------------
# One case per tool of each agent: the event, and the request it must become.


class Case:
    def __init__(self, cid, agent, event, action, intent=None, context=None, diff=None):
        self.id = cid
        self.agent = agent
        self.event = event
        self.action = action  # exactly what the request's "action" must be
        self.intent = intent  # None: a default that names the tool
        self.tool = event.get("tool_name")
        self.context = {"agent": agent}
        self.context.update(context or {})
        self.diff = diff  # (lines that must appear in order) or None

    def __repr__(self):
        return self.id


def claude_case(cid, tool_name, tool_input, action, intent=None, diff=None):
    ctx = {"session_id": CLAUDE_SESSION, "cwd": CWD, "tool_use_id": "toolu_01HkVq9ZtXw3mB6nR2pL8sJd"}
    return Case(cid, "claude-code", claude_event(tool_name, tool_input), action, intent, ctx, diff)


def gemini_case(cid, tool_name, tool_input, action, intent=None, diff=None, mcp_context=None):
    ctx = {"session_id": GEMINI_SESSION, "cwd": CWD}
    return Case(cid, "gemini", gemini_event(tool_name, tool_input, mcp_context=mcp_context),
                action, intent, ctx, diff)


WRITE_INPUT = {"file_path": f"{CWD}/NOTES.md", "content": "# Notes\n\nship on friday\n"}
EDIT_INPUT = {"file_path": f"{CWD}/src/config.py",
              "old_string": "DEBUG = True\nRETRIES = 1",
              "new_string": "DEBUG = False\nRETRIES = 3"}
SQL_INPUT = {"sql": "select count(*) from orders", "limit": 10}

CASES = [
    claude_case("claude-Bash", "Bash",
                {"command": 'ls -la "My Documents"', "description": "List the documents folder"},
                shell_action('ls -la "My Documents"', ["ls", "-la", "My Documents"]),
                intent="List the documents folder"),
    claude_case("claude-Write", "Write", WRITE_INPUT,
                {"kind": "file.write", "path": WRITE_INPUT["file_path"],
                 "input_sha256": input_sha256(WRITE_INPUT)},
                diff=["+# Notes", "+ship on friday"]),
    claude_case("claude-Edit", "Edit", EDIT_INPUT,
                {"kind": "file.write", "path": EDIT_INPUT["file_path"],
                 "input_sha256": input_sha256(EDIT_INPUT)},
                diff=["-DEBUG = True", "-RETRIES = 1", "+DEBUG = False", "+RETRIES = 3"]),
    claude_case("claude-WebFetch", "WebFetch",
                {"url": "https://docs.example.com/api/v2", "prompt": "List the endpoints"},
                {"kind": "net.fetch", "url": "https://docs.example.com/api/v2"}),
    claude_case("claude-mcp", "mcp__shop_db__run_query", SQL_INPUT,
                {"kind": "mcp.tool", "server": "shop_db", "tool": "run_query",
                 "arguments": SQL_INPUT}),
    claude_case("claude-Read", "Read", {"file_path": f"{CWD}/.env"},
                {"kind": "claude.tool", "tool": "Read", "arguments": {"file_path": f"{CWD}/.env"}}),
    gemini_case("gemini-run_shell_command", "run_shell_command",
                {"command": "ls -l 'src dir'", "description": "Look at the sources"},
                shell_action("ls -l 'src dir'", ["ls", "-l", "src dir"]),
                intent="Look at the sources"),
    gemini_case("gemini-run_shell_command-no-description", "run_shell_command",
                {"command": "git status --short"},
                shell_action("git status --short", ["git", "status", "--short"])),
    gemini_case("gemini-write_file", "write_file", WRITE_INPUT,
                {"kind": "file.write", "path": WRITE_INPUT["file_path"],
                 "input_sha256": input_sha256(WRITE_INPUT)},
                diff=["+# Notes", "+ship on friday"]),
    gemini_case("gemini-replace", "replace", EDIT_INPUT,
                {"kind": "file.write", "path": EDIT_INPUT["file_path"],
                 "input_sha256": input_sha256(EDIT_INPUT)},
                diff=["-DEBUG = True", "-RETRIES = 1", "+DEBUG = False", "+RETRIES = 3"]),
    gemini_case("gemini-web_fetch", "web_fetch",
                {"prompt": "Summarise https://status.example.com/incidents"},
                {"kind": "net.fetch", "prompt": "Summarise https://status.example.com/incidents"}),
    gemini_case("gemini-mcp", "mcp_everything_echo", {"message": "hello"},
                {"kind": "mcp.tool", "server": "everything", "tool": "echo",
                 "arguments": {"message": "hello"}}),
    # Server and tool names with underscores: only mcp_context says where one ends.
    gemini_case("gemini-mcp-context", "mcp_shop_db_run_query", SQL_INPUT,
                {"kind": "mcp.tool", "server": "shop_db", "tool": "run_query",
                 "arguments": SQL_INPUT},
                mcp_context={"server_name": "shop_db", "tool_name": "run_query"}),
    gemini_case("gemini-read_file", "read_file", {"file_path": f"{CWD}/.env"},
                {"kind": "gemini.tool", "tool": "read_file",
                 "arguments": {"file_path": f"{CWD}/.env"}}),
    Case("cursor-shell", "cursor", cursor_shell_event("ls -la 'My Documents'"),
         shell_action("ls -la 'My Documents'", ["ls", "-la", "My Documents"]),
         context={"conversation_id": CURSOR_CONVERSATION, "cwd": CWD}),
    Case("cursor-mcp-url", "cursor",
         cursor_mcp_event("run_query", SQL_INPUT, url="https://mcp.example.com/shop/sse"),
         {"kind": "mcp.tool", "server": "https://mcp.example.com/shop/sse", "tool": "run_query",
          "arguments": SQL_INPUT},
         context={"conversation_id": CURSOR_CONVERSATION}),
    # Cursor may send tool_input as a JSON string: the action carries the object.
    Case("cursor-mcp-string-input", "cursor",
         cursor_mcp_event("run_query", json.dumps(SQL_INPUT), command="npx -y shop-db-mcp"),
         {"kind": "mcp.tool", "server": "npx -y shop-db-mcp", "tool": "run_query",
          "arguments": SQL_INPUT},
         context={"conversation_id": CURSOR_CONVERSATION}),
]


# --------------------------------------------------------------------------------------------
# Policies.


def rule(name, when, decide, **more):
    r = {"name": name, "when": when, "decide": decide}
    r.update(more)
    return r


def one_rule_policy(kind, decide, name, reason):
    """Every action of `kind` is decided `decide` by the rule `name`; anything else is denied."""
    return {
        "default": "deny",
        "approvers": {"group": "sre", "count": 1},
        "rules": [rule(name, f'action.kind == "{kind}"', decide, reason=reason)],
    }


ALLOW_ALL = {"default": "allow"}
REVIEW_ALL = {"default": "review", "approvers": {"group": "sre", "count": 1}}

LS_RULE = "ls-is-harmless"
RM_RULE = "agents-never-delete"
RM_REASON = "deleting files is done by hand"
FETCH_RULE = "no-network-fetches"
FETCH_REASON = "agents do not fetch from the network"

# The policy a team would write: listing is free, any shell snippet and any file write waits
# for an SRE, deletes and fetches are refused.
TEAM_POLICY = {
    "default": "review",
    "approvers": {"group": "sre", "count": 1},
    "rules": [
        rule(LS_RULE, 'action.kind == "shell" && action.command[0] == "ls"', "allow",
             reason="listing a directory changes nothing"),
        rule("shell-snippets-reviewed", 'action.kind == "shell" && action.command[0] == "sh"',
             "review", reason="a shell snippet can do anything"),
        rule(RM_RULE, 'action.kind == "shell" && action.command[0] == "rm"', "deny",
             reason=RM_REASON),
        rule("writes-reviewed", 'action.kind == "file.write"', "review",
             approvers={"group": "sre", "count": 1}, reason="an SRE reads every write"),
        rule(FETCH_RULE, 'action.kind == "net.fetch"', "deny", reason=FETCH_REASON),
    ],
}


# --------------------------------------------------------------------------------------------
# Running the hook.


class Hook:
    def __init__(self, proc, writer):
        self.proc = proc
        self.writer = writer
        self.result = None

    def alive(self):
        return self.proc.poll() is None

    def finish(self, timeout=HOOK_TIMEOUT):
        """(exit status, stdout, stderr) once the hook has ended."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=30)
            raise AssertionError(f"signoff hook did not finish within {timeout}s: "
                                 f"{err.decode(errors='replace')[-2000:]}")
        self.writer.join(30)
        self.result = (self.proc.returncode, out.decode(errors="replace"),
                       err.decode(errors="replace"))
        return self.result


def _feed(pipe, data):
    """Write all of stdin, then close it; a hook that stopped reading early is not an error."""
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            pipe.close()
        except (BrokenPipeError, OSError):
            pass


@contextlib.contextmanager
def hook(agent, event, url, tmp_path, extra=(), token=None, who=AGENT_BOT):
    """`signoff hook AGENT [extra...]` with `event` (a dict, or raw bytes) piped to stdin."""
    data = event if isinstance(event, bytes) else json.dumps(event).encode()
    if token is None and who is not None:
        token = CAST[who].token
    proc = subprocess.Popen([cli_path(), "hook", agent, *extra], cwd=tmp_path,
                            env=cli_env(url, token), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdin, proc.stdin = proc.stdin, None  # the writer owns it; communicate() leaves it alone
    writer = threading.Thread(target=_feed, args=(stdin, data), daemon=True)
    writer.start()
    h = Hook(proc, writer)
    try:
        yield h
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        writer.join(30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()


def run_hook(agent, event, url, tmp_path, extra=(), token=None, who=AGENT_BOT):
    with hook(agent, event, url, tmp_path, extra, token, who) as h:
        return h.finish()


def verdict(agent, out):
    """(decision, reason) from the hook's stdout, which must be exactly one JSON object of the
    shape that agent reads."""
    try:
        data = json.loads(out)
    except ValueError:
        raise AssertionError(f"hook stdout is not one JSON object: {out[:2000]!r}")
    assert isinstance(data, dict), f"hook stdout is not a JSON object: {out[:2000]!r}"
    if agent == "claude-code":
        hso = data.get("hookSpecificOutput")
        assert isinstance(hso, dict), f"no hookSpecificOutput: {data}"
        assert hso.get("hookEventName") == "PreToolUse", data
        decision, reason = hso.get("permissionDecision"), hso.get("permissionDecisionReason")
    elif agent == "gemini":
        decision, reason = data.get("decision"), data.get("reason")
    else:
        decision = data.get("permission")
        user, agent_msg = data.get("userMessage"), data.get("agentMessage")
        assert isinstance(user, str) and user, f"no userMessage: {data}"
        assert isinstance(agent_msg, str) and agent_msg, f"no agentMessage: {data}"
        reason = user + "\n" + agent_msg
    assert decision in ("allow", "deny"), f"decision must be allow or deny: {data}"
    assert isinstance(reason, str) and reason.strip(), f"a decision without a reason: {data}"
    return decision, reason


def decided(agent, result, expect):
    """The reason of a decision the hook made normally: exit 0, `expect` on stdout."""
    rc, out, err = result
    assert rc == 0, f"expected exit 0 with a decision, got {rc}: stdout {out[:1000]!r} " \
                    f"stderr {err[-2000:]!r}"
    decision, reason = verdict(agent, out)
    assert decision == expect, f"expected {expect}, got {decision}: {reason!r} (stderr {err[-1000:]!r})"
    return reason


def failed_closed(agent, result):
    """An error of the hook's own: deny JSON on stdout, the reason on stderr, exit 2."""
    rc, out, err = result
    assert rc == 2, f"an error of the hook must exit 2 (the only status that blocks), got {rc}: " \
                    f"stdout {out[:1000]!r} stderr {err[-2000:]!r}"
    decision, reason = verdict(agent, out)
    assert decision == "deny", f"an error must deny, got {decision}: {reason!r}"
    assert err.strip(), "an error must say why on stderr"
    return reason, err


# --------------------------------------------------------------------------------------------
# The daemon's view.


def all_requests(d):
    """Every request, as auditor erin sees them (newest first)."""
    return d.client("erin").list(limit=200)["requests"]


def only_request(d):
    reqs = all_requests(d)
    assert len(reqs) == 1, f"expected exactly one request, found {len(reqs)}: " \
                           f"{[r['action'] for r in reqs]}"
    return reqs[0]


def pending_of(d, h):
    """The one pending request the running hook `h` made."""

    def find():
        if not h.alive():
            rc, out, err = h.finish()
            raise AssertionError(f"signoff hook exited with {rc} before a decision: "
                                 f"stdout {out[:1000]!r} stderr {err[-2000:]!r}")
        pending = d.client("erin").list(status="pending")["requests"]
        assert len(pending) <= 1, f"the hook made {len(pending)} requests"
        return pending[0] if pending else None

    return wait_until(find, timeout=30, interval=0.1, what="signoff hook to submit its request")


def check_request(req, case, environment=None):
    """The request is exactly what the spec says this tool call becomes."""
    action = dict(case.action)
    if environment is not None:
        action["environment"] = environment
    assert req["action"] == action, f"{case.id}: wrong action:\n got {req['action']}\nwant {action}"
    assert req["digest"] == digest_of(action)
    assert req["requester"] == AGENT_BOT
    if case.intent is not None:
        assert req["intent"] == case.intent
    else:
        assert isinstance(req["intent"], str) and req["intent"].strip(), \
            f"{case.id}: the intent must say what the agent wants: {req['intent']!r}"
        if case.tool:
            names = {case.tool, case.action.get("tool")} - {None}
            assert any(n in req["intent"] for n in names), \
                f"{case.id}: the default intent must name the tool: {req['intent']!r}"
    ctx = req["context"]
    for k, v in case.context.items():
        assert ctx.get(k) == v, f"{case.id}: context[{k!r}] is {ctx.get(k)!r}, want {v!r}"
    if case.diff is not None:
        check_diff(ctx.get("diff"), case.diff)


def check_diff(diff, want_lines):
    assert isinstance(diff, str), f"context.diff must be text: {diff!r}"
    assert len(diff.encode("utf-8")) <= DIFF_LIMIT, \
        f"context.diff is {len(diff.encode('utf-8'))} bytes, over {DIFF_LIMIT}"
    lines = diff.split("\n")
    at = 0
    for want in want_lines:
        assert want in lines[at:], f"{want!r} missing (or out of order) in the diff:\n{diff[:2000]}"
        at = lines.index(want, at) + 1


def request_for_line(d, line):
    mine = [r for r in all_requests(d) if r["action"].get("command_line") == line]
    assert len(mine) == 1, f"expected one request for {line!r}, found {len(mine)}"
    return mine[0]


def ids(cases):
    return [c.id for c in cases]


# --------------------------------------------------------------------------------------------
# Every tool of every agent, down each path.


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_allowed_by_policy_answers_allow_at_once_and_claims(start_daemon, tmp_path, case):
    kind = case.action["kind"]
    d = start_daemon(policy=one_rule_policy(kind, "allow", "agents-may-do-this",
                                            "fine for agents"))
    reason = decided(case.agent, run_hook(case.agent, case.event, d.url, tmp_path), "allow")
    req = only_request(d)
    check_request(req, case)
    assert req["status"] == "claimed", "the hook must claim the grant before it allows"
    assert req["id"] in reason, f"the reason must name the request: {reason!r}"
    assert "agents-may-do-this" in reason, f"the reason must name the rule: {reason!r}"


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_waits_for_a_human_then_allows_and_claims(start_daemon, tmp_path, case):
    d = start_daemon(policy=one_rule_policy(case.action["kind"], "review", "a-human-looks",
                                            "someone checks it"))
    with hook(case.agent, case.event, d.url, tmp_path) as h:
        req = pending_of(d, h)
        check_request(req, case)
        assert h.alive(), "the hook must wait while the request is pending"
        assert d.client("erin").show(req["id"])["status"] == "pending", \
            "the hook must not touch a pending request"
        ok(d.client(REVIEWER).approve(req["id"], comment="looks right"))
        reason = decided(case.agent, h.finish(), "allow")
    final = d.client("erin").show(req["id"])
    assert final["status"] == "claimed", "the hook must claim the grant before it allows"
    assert req["id"] in reason, f"the reason must name the request: {reason!r}"
    assert REVIEWER in reason, f"the reason must say who approved: {reason!r}"
    assert len(all_requests(d)) == 1


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_denied_by_reviewer_carries_the_comment(start_daemon, tmp_path, case):
    d = start_daemon(policy=one_rule_policy(case.action["kind"], "review", "a-human-looks",
                                            "someone checks it"))
    comment = "not on a Friday, open a ticket first"
    with hook(case.agent, case.event, d.url, tmp_path) as h:
        req = pending_of(d, h)
        check_request(req, case)
        ok(d.client(REVIEWER).deny(req["id"], comment=comment))
        reason = decided(case.agent, h.finish(), "deny")
    assert comment in reason, f"the reason must carry the reviewer's comment: {reason!r}"
    assert REVIEWER in reason, f"the reason must say who denied: {reason!r}"
    assert d.client("erin").show(req["id"])["status"] == "denied"


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_denied_by_policy_carries_the_rules_reason(start_daemon, tmp_path, case):
    why = "this tool is switched off for agents"
    d = start_daemon(policy=one_rule_policy(case.action["kind"], "deny", "switched-off", why))
    reason = decided(case.agent, run_hook(case.agent, case.event, d.url, tmp_path), "deny")
    assert why in reason, f"the reason must carry the rule's reason: {reason!r}"
    assert "switched-off" in reason, f"the reason must name the rule: {reason!r}"
    req = only_request(d)
    check_request(req, case)
    assert req["status"] == "denied"


# --------------------------------------------------------------------------------------------
# Shell lines: what policy on command[0] sees.


@pytest.mark.parametrize("agent", AGENTS)
def test_ls_is_allowed_by_the_ls_rule(start_daemon, tmp_path, agent):
    d = start_daemon(policy=TEAM_POLICY)
    reason = decided(agent, run_hook(agent, shell_event(agent, "ls -la /var/log"), d.url,
                                     tmp_path), "allow")
    assert LS_RULE in reason, reason
    req = only_request(d)
    assert req["action"] == shell_action("ls -la /var/log", ["ls", "-la", "/var/log"])
    assert req["status"] == "claimed"


@pytest.mark.parametrize("agent", AGENTS)
def test_ls_then_rm_is_not_allowed_by_the_ls_rule(start_daemon, tmp_path, agent):
    d = start_daemon(policy=TEAM_POLICY)
    line = "ls; rm -rf /"
    with hook(agent, shell_event(agent, line), d.url, tmp_path) as h:
        req = pending_of(d, h)
        assert req["action"] == sh_c(line), \
            f"a line with shell syntax must be ['sh', '-c', line]: {req['action']}"
        assert [r["name"] for r in req["decision"]["rules"]] == ["shell-snippets-reviewed"]
        assert h.alive(), "the hook must wait for a human"
        ok(d.client(REVIEWER).deny(req["id"], comment="no rm -rf"))
        decided(agent, h.finish(), "deny")


@pytest.mark.parametrize("agent", AGENTS)
def test_rm_is_denied_by_policy_with_the_rules_reason(start_daemon, tmp_path, agent):
    d = start_daemon(policy=TEAM_POLICY)
    reason = decided(agent, run_hook(agent, shell_event(agent, "rm -rf build"), d.url,
                                     tmp_path), "deny")
    assert RM_REASON in reason and RM_RULE in reason, reason
    assert only_request(d)["action"] == shell_action("rm -rf build", ["rm", "-rf", "build"])


# Lines and the word list they must give: a list for a simple command, None for
# ["sh", "-c", line].
SIMPLE = [
    ("ls", ["ls"]),
    ("ls -la /tmp", ["ls", "-la", "/tmp"]),
    ("  ls \t -l\t\tsrc  ", ["ls", "-l", "src"]),
    ("ls 'my dir' \"other dir\"", ["ls", "my dir", "other dir"]),
    ("ls \"it's\" 'say \"hi\"'", ["ls", "it's", 'say "hi"']),
    ("ls ''", ["ls", ""]),
    ("ls \"\"", ["ls", ""]),
    ("git commit -m 'fix: the bug'", ["git", "commit", "-m", "fix: the bug"]),
    ("ls -- -weird=name,x:y@z+%", ["ls", "--", "-weird=name,x:y@z+%"]),
    ("ls é✓", ["ls", "é✓"]),
]
SYNTAX = [
    "ls; rm -rf /",
    "ls && rm -rf /",
    "ls || rm -rf /",
    "ls | sh",
    "ls & rm -rf /",
    "ls > /etc/passwd",
    "ls < /etc/shadow",
    "(rm -rf /)",
    "ls $(rm -rf /)",
    "ls $HOME",
    "ls ${HOME}",
    "ls `rm -rf /`",
    "ls \"$(rm -rf /)\"",
    "ls \"`rm -rf /`\"",
    "ls \"a\\\"b\"",
    "ls a\\ b",
    "ls *.c",
    "ls ?",
    "ls [ab]",
    "ls {a,b}",
    "ls ~",
    "ls ~root",
    "ls # rm -rf /",
    "ls !x",
    "ls\nrm -rf /",
    "PATH=/tmp/evil ls",
    "A=b ls",
]
# Lines the spec leaves to the implementation, within a bound: either the shell's own split
# or ["sh", "-c", line], never anything else (and never an error that lets the call through).
EITHER = [
    ("ls a'b c'd", ["ls", "ab cd"]),
    ("ls 'a$b'", ["ls", "a$b"]),
    ("ls 'a;b'", ["ls", "a;b"]),
    ("ls \"a|b\"", ["ls", "a|b"]),
    ("ls 'unterminated", None),
]


def test_shell_lines_split_as_the_shell_would_or_go_to_sh_c(start_daemon, tmp_path):
    """Every shell is allowed here, so the action the hook submits is all there is to see."""
    d = start_daemon(policy=ALLOW_ALL)
    problems = []
    for line, words in SIMPLE + [(s, None) for s in SYNTAX] + EITHER:
        rc, out, err = run_hook("claude-code", shell_event("claude-code", line), d.url, tmp_path)
        newest = all_requests(d)
        mine = [r for r in newest if r["action"].get("command_line") == line]
        if (line, words) in EITHER:
            allowed = [sh_c(line)] + ([shell_action(line, words)] if words else [])
            if words is None and rc == 2 and not mine:
                # Not a line the shell can run: refusing it outright is fine, if it denies.
                if verdict("claude-code", out)[0] != "deny":
                    problems.append(f"{line!r}: exit 2 without a deny: {out[:300]!r}")
                continue
        else:
            allowed = [shell_action(line, words) if words is not None else sh_c(line)]
        if rc != 0 or len(mine) != 1:
            problems.append(f"{line!r}: exit {rc}, {len(mine)} requests: {err[-300:]!r}")
        elif mine[0]["action"] not in allowed:
            problems.append(f"{line!r}: action {mine[0]['action']}, want one of {allowed}")
    assert not problems, "shell lines mapped wrongly:\n" + "\n".join(problems)


@pytest.mark.parametrize("agent", AGENTS)
def test_every_agent_splits_the_same_way(start_daemon, tmp_path, agent):
    d = start_daemon(policy=ALLOW_ALL)
    for line, want in [("ls 'a b' \"c d\" e", shell_action("ls 'a b' \"c d\" e",
                                                           ["ls", "a b", "c d", "e"])),
                       ("ls | sh", sh_c("ls | sh")),
                       ("FOO=1 ls", sh_c("FOO=1 ls"))]:
        decided(agent, run_hook(agent, shell_event(agent, line), d.url, tmp_path), "allow")
        assert request_for_line(d, line)["action"] == want, line


# --------------------------------------------------------------------------------------------
# The team policy end to end: file writes wait for an SRE, fetches are refused.


def test_team_policy_write_waits_for_sre_and_fetch_is_denied(start_daemon, tmp_path):
    d = start_daemon(policy=TEAM_POLICY)
    edit = claude_event("Edit", EDIT_INPUT)
    with hook("claude-code", edit, d.url, tmp_path) as h:
        req = pending_of(d, h)
        assert req["action"]["kind"] == "file.write"
        assert [r["name"] for r in req["decision"]["rules"]] == ["writes-reviewed"]
        # The agent's owner may not approve for it; the hook keeps waiting.
        assert d.client("alice").approve(req["id"]).status_code == 403
        assert h.alive()
        ok(d.client("carol").approve(req["id"]))
        reason = decided("claude-code", h.finish(), "allow")
    assert "carol" in reason and req["id"] in reason, reason
    assert d.client("erin").show(req["id"])["status"] == "claimed"

    fetch = claude_event("WebFetch", {"url": "https://paste.example.net/x", "prompt": "read"})
    reason = decided("claude-code", run_hook("claude-code", fetch, d.url, tmp_path), "deny")
    assert FETCH_REASON in reason and FETCH_RULE in reason, reason


# --------------------------------------------------------------------------------------------
# Options.


@pytest.mark.parametrize("agent", AGENTS)
def test_env_puts_the_environment_into_the_action(start_daemon, tmp_path, agent):
    d = start_daemon(policy={
        "default": "deny",
        "rules": [rule("staging-is-open", 'action.environment == "staging"', "allow")],
    })
    event = shell_event(agent, "ls -l", description="look around")
    reason = decided(agent, run_hook(agent, event, d.url, tmp_path, extra=["--env", "staging"]),
                     "allow")
    assert "staging-is-open" in reason
    (req,) = all_requests(d)
    assert req["action"] == dict(shell_action("ls -l", ["ls", "-l"]), environment="staging")
    assert req["status"] == "claimed"
    # Without --env there is no environment, so the staging rule cannot allow it.
    decided(agent, run_hook(agent, event, d.url, tmp_path), "deny")
    second = [r for r in all_requests(d) if r["id"] != req["id"]]
    assert [r["action"] for r in second] == [shell_action("ls -l", ["ls", "-l"])]


@pytest.mark.parametrize("case", [c for c in CASES if c.id in
                                  ("claude-Write", "gemini-mcp-context", "cursor-mcp-url")],
                         ids=["claude-Write", "gemini-mcp-context", "cursor-mcp-url"])
def test_env_applies_to_every_kind_of_action(start_daemon, tmp_path, case):
    d = start_daemon(policy=ALLOW_ALL)
    decided(case.agent, run_hook(case.agent, case.event, d.url, tmp_path,
                                 extra=["--env", "production"]), "allow")
    check_request(only_request(d), case, environment="production")


def test_on_behalf_of_names_the_human(start_daemon, tmp_path):
    d = start_daemon(policy=ALLOW_ALL)
    decided("claude-code", run_hook("claude-code", shell_event("claude-code", "ls"), d.url,
                                    tmp_path, extra=["--on-behalf-of", "dave"]), "allow")
    assert only_request(d)["on_behalf_of"] == "dave"


def test_url_and_token_options_work_without_the_environment(start_daemon, tmp_path):
    d = start_daemon(policy=ALLOW_ALL)
    result = run_hook("gemini", shell_event("gemini", "ls"), None, tmp_path, who=None,
                      extra=["--url", d.url, "--token", CAST[AGENT_BOT].token])
    decided("gemini", result, "allow")
    assert only_request(d)["requester"] == AGENT_BOT


# --------------------------------------------------------------------------------------------
# The diff excerpt.


def test_edit_diff_is_in_the_context_and_bounded(start_daemon, tmp_path):
    d = start_daemon(policy=ALLOW_ALL)
    old = "\n".join(f"old line {i}" for i in range(2000))
    new = "\n".join(f"new line {i}" for i in range(2000))
    ti = {"file_path": f"{CWD}/big.txt", "old_string": old, "new_string": new}
    decided("claude-code", run_hook("claude-code", claude_event("Edit", ti), d.url, tmp_path),
            "allow")
    req = only_request(d)
    assert req["action"] == {"kind": "file.write", "path": ti["file_path"],
                             "input_sha256": input_sha256(ti)}, \
        "the digest of the action must cover the whole edit, not the excerpt"
    check_diff(req["context"].get("diff"), ["-old line 0", "-old line 1"])
    diff = req["context"]["diff"]
    assert len(diff.encode("utf-8")) > DIFF_LIMIT // 2, "the excerpt should use its room"


@pytest.mark.parametrize("agent,tool", [("claude-code", "Write"), ("gemini", "write_file")])
def test_write_diff_is_bounded(start_daemon, tmp_path, agent, tool):
    d = start_daemon(policy=ALLOW_ALL)
    content = "".join(f"row {i}: {'x' * 60}\n" for i in range(1000))  # ~70 KB
    ti = {"file_path": f"{CWD}/data.csv", "content": content}
    event = claude_event(tool, ti) if agent == "claude-code" else gemini_event(tool, ti)
    decided(agent, run_hook(agent, event, d.url, tmp_path), "allow")
    req = only_request(d)
    assert req["action"]["input_sha256"] == input_sha256(ti)
    check_diff(req["context"].get("diff"), [f"+row 0: {'x' * 60}", f"+row 1: {'x' * 60}"])


# --------------------------------------------------------------------------------------------
# Endings that are not a reviewer's answer.


@pytest.mark.parametrize("agent", AGENTS)
def test_timeout_cancels_the_request_and_fails_closed(start_daemon, tmp_path, agent):
    d = start_daemon(policy=REVIEW_ALL)
    result = run_hook(agent, shell_event(agent, "ls"), d.url, tmp_path, extra=["--timeout", "2"])
    reason, err = failed_closed(agent, result)
    assert re.search(r"no decision|timed? ?out", reason + err, re.I), \
        f"the reason must say no decision came in time: {reason!r} / {err!r}"
    req = only_request(d)
    assert req["status"] == "cancelled", "a hook that gives up must cancel its request first"
    # Nobody can approve it afterwards.
    assert d.client(REVIEWER).approve(req["id"]).status_code == 409


@pytest.mark.parametrize("agent", AGENTS)
def test_expired_request_is_denied(start_daemon, tmp_path, agent):
    d = start_daemon(policy={"default": "review", "approvers": {"group": "sre", "count": 1},
                             "ttl": "2s"})
    with hook(agent, shell_event(agent, "ls"), d.url, tmp_path) as h:
        req = pending_of(d, h)
        reason = decided(agent, h.finish(), "deny")
    assert "expired" in reason.lower(), reason
    assert d.client("erin").show(req["id"])["status"] == "expired"


@pytest.mark.parametrize("agent", AGENTS)
def test_request_cancelled_while_waiting_is_denied(start_daemon, tmp_path, agent):
    d = start_daemon(policy=REVIEW_ALL)
    with hook(agent, shell_event(agent, "ls"), d.url, tmp_path) as h:
        req = pending_of(d, h)
        ok(d.client(AGENT_BOT).cancel(req["id"]))
        reason = decided(agent, h.finish(), "deny")
    assert "cancel" in reason.lower(), reason


# --------------------------------------------------------------------------------------------
# Fail closed: every error of the hook's own is exit 2 with a deny.


@pytest.mark.parametrize("agent", AGENTS)
def test_daemon_unreachable_fails_closed(tmp_path, agent):
    url = f"http://127.0.0.1:{free_closed_port()}"
    failed_closed(agent, run_hook(agent, shell_event(agent, "ls"), url, tmp_path))


@pytest.mark.parametrize("agent", AGENTS)
def test_daemon_killed_while_waiting_fails_closed(start_daemon, tmp_path, agent):
    d = start_daemon(policy=REVIEW_ALL)
    with hook(agent, shell_event(agent, "ls"), d.url, tmp_path) as h:
        pending_of(d, h)
        d.kill9()
        failed_closed(agent, h.finish())


@pytest.mark.parametrize("agent", AGENTS)
def test_no_token_fails_closed(start_daemon, tmp_path, agent):
    d = start_daemon(policy=ALLOW_ALL)
    failed_closed(agent, run_hook(agent, shell_event(agent, "ls"), d.url, tmp_path, who=None))
    assert all_requests(d) == []


@pytest.mark.parametrize("agent", AGENTS)
def test_bad_token_fails_closed(start_daemon, tmp_path, agent):
    d = start_daemon(policy=ALLOW_ALL)
    failed_closed(agent, run_hook(agent, shell_event(agent, "ls"), d.url, tmp_path,
                                  token="so_" + "0" * 64, who=None))
    assert all_requests(d) == []


def valid_event(agent):
    return shell_event(agent, "ls")


BAD_STDIN = {
    "garbage": b"rm -rf / please",
    "empty": b"",
    "only-whitespace": b" \n\t\n",
    "truncated": b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"comm',
    "array": b"[]",
    "string": b'"PreToolUse"',
    "null": b"null",
    "nul-byte": b'{"hook_event_name": "Pre\x00ToolUse"}',
}


@pytest.mark.parametrize("agent", AGENTS)
@pytest.mark.parametrize("name", sorted(BAD_STDIN))
def test_stdin_that_is_not_one_json_object_fails_closed(start_daemon, tmp_path, agent, name):
    d = start_daemon(policy=ALLOW_ALL)
    failed_closed(agent, run_hook(agent, BAD_STDIN[name], d.url, tmp_path))
    assert all_requests(d) == [], "nothing may be submitted for input that was not understood"


@pytest.mark.parametrize("agent", AGENTS)
def test_two_json_objects_fail_closed(start_daemon, tmp_path, agent):
    d = start_daemon(policy=ALLOW_ALL)
    data = json.dumps(valid_event(agent)).encode() + b"\n" + json.dumps(valid_event(agent)).encode()
    failed_closed(agent, run_hook(agent, data, d.url, tmp_path))
    assert all_requests(d) == []


@pytest.mark.parametrize("agent", AGENTS)
def test_stdin_over_1_mib_fails_closed(start_daemon, tmp_path, agent):
    """2 MiB of valid JSON (an allowed call and whitespace): only the size is wrong."""
    d = start_daemon(policy=ALLOW_ALL)
    data = json.dumps(valid_event(agent)).encode()
    data += b" " * (2 * STDIN_LIMIT - len(data))
    failed_closed(agent, run_hook(agent, data, d.url, tmp_path))
    assert all_requests(d) == []


def test_stdin_of_exactly_1_mib_is_read_and_one_byte_more_is_not(start_daemon, tmp_path):
    d = start_daemon(policy=ALLOW_ALL)
    data = json.dumps(valid_event("claude-code")).encode()
    at_limit = data + b" " * (STDIN_LIMIT - len(data))
    assert len(at_limit) == STDIN_LIMIT
    decided("claude-code", run_hook("claude-code", at_limit, d.url, tmp_path), "allow")
    assert len(all_requests(d)) == 1
    failed_closed("claude-code", run_hook("claude-code", at_limit + b" ", d.url, tmp_path))
    assert len(all_requests(d)) == 1


def without(event, key):
    e = dict(event)
    e.pop(key)
    return e


WRONG_EVENTS = [
    ("claude-code", "PostToolUse", claude_event("Bash", {"command": "ls"}, event="PostToolUse")),
    ("claude-code", "UserPromptSubmit", claude_event("Bash", {"command": "ls"},
                                                     event="UserPromptSubmit")),
    ("claude-code", "no-event-name", without(claude_event("Bash", {"command": "ls"}),
                                             "hook_event_name")),
    ("claude-code", "no-tool_name", without(claude_event("Bash", {"command": "ls"}), "tool_name")),
    ("claude-code", "tool_name-not-a-string", dict(claude_event("Bash", {"command": "ls"}),
                                                   tool_name=["Bash"])),
    ("claude-code", "gemini-event", gemini_event("run_shell_command", {"command": "ls"})),
    ("gemini", "AfterTool", gemini_event("run_shell_command", {"command": "ls"},
                                         event="AfterTool")),
    ("gemini", "no-tool_name", without(gemini_event("run_shell_command", {"command": "ls"}),
                                       "tool_name")),
    ("gemini", "claude-event", claude_event("Bash", {"command": "ls"})),
    ("cursor", "afterShellExecution", cursor_shell_event("ls", event="afterShellExecution")),
    ("cursor", "beforeReadFile", dict(cursor_shell_event("ls"), hook_event_name="beforeReadFile")),
    ("cursor", "no-event-name", without(cursor_shell_event("ls"), "hook_event_name")),
    ("cursor", "shell-without-command", without(cursor_shell_event("ls"), "command")),
    ("cursor", "mcp-without-tool_name", without(cursor_mcp_event("echo", {}, url="http://x/mcp"),
                                                "tool_name")),
    ("cursor", "claude-event", claude_event("Bash", {"command": "ls"})),
]


@pytest.mark.parametrize("agent,name,event", WRONG_EVENTS, ids=[f"{a}-{n}" for a, n, _ in
                                                               WRONG_EVENTS])
def test_wrong_or_incomplete_event_fails_closed(start_daemon, tmp_path, agent, name, event):
    d = start_daemon(policy=ALLOW_ALL)
    failed_closed(agent, run_hook(agent, event, d.url, tmp_path))
    assert all_requests(d) == []


@pytest.mark.parametrize("agent", AGENTS)
def test_bad_timeout_option_fails_closed(start_daemon, tmp_path, agent):
    d = start_daemon(policy=ALLOW_ALL)
    failed_closed(agent, run_hook(agent, valid_event(agent), d.url, tmp_path,
                                  extra=["--timeout", "soon"]))
    assert all_requests(d) == []


def test_unknown_agent_blocks(start_daemon, tmp_path):
    """No agent to shape a deny for, but the status still has to be the one that blocks."""
    d = start_daemon(policy=ALLOW_ALL)
    rc, out, err = run_hook("copilot", valid_event("claude-code"), d.url, tmp_path)
    assert rc == 2, f"an unknown agent must exit 2, got {rc}: {err[-1000:]!r}"
    assert err.strip()
    assert all_requests(d) == []
