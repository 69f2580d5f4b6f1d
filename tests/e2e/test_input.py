"""Bad input gets a clear, bounded JSON error and never changes stored data."""

import json
import time

import pytest
import requests

from conftest import CAST, HTTP_TIMEOUT, error_of, expect_error, new_token, ok, sample_action


# Authentication ----------------------------------------------------------------------------


def raw(daemon, method, path, headers=None, data=None):
    return requests.request(method, daemon.url + path, headers=headers or {}, data=data,
                            timeout=HTTP_TIMEOUT)


BODY = json.dumps({"action": sample_action(), "intent": "x"})


@pytest.mark.parametrize("authorization", [
    None,                                           # missing
    "",                                             # empty
    "Bearer",                                       # no token
    "Bearer ",                                      # empty token
    "Basic YWxpY2U6c2VjcmV0",                       # wrong scheme
    "Bearer not-a-token",                           # malformed
    "Bearer so_",                                   # prefix only
    "Bearer so_" + "a" * 63,                        # one hex short
    "Bearer so_" + "a" * 65,                        # one hex long
    "Bearer so_" + "g" * 64,                        # not hex
    "Bearer " + "a" * 64,                           # no prefix
    "Bearer " + new_token(),                        # well-formed, unknown
    "Bearer " + "x" * 5000,                         # long garbage
])
def test_bad_or_missing_token_is_unauthorized(daemon, authorization):
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    for method, path, data in [("GET", "/v1/requests", None), ("POST", "/v1/requests", BODY),
                               ("GET", "/v1/whoami", None)]:
        expect_error(raw(daemon, method, path, headers, data), 401, "unauthorized")
    # Nothing was submitted.
    assert daemon.client("carol").list()["requests"] == []


def test_token_of_one_principal_with_altered_case_is_unauthorized(daemon):
    token = CAST["bob"].token
    mangled = token[:3] + token[3:].upper()
    if mangled != token:
        expect_error(raw(daemon, "GET", "/v1/whoami", {"Authorization": f"Bearer {mangled}"}),
                     401, "unauthorized")
    # A token with a trailing byte is another (unknown) token.
    expect_error(raw(daemon, "GET", "/v1/whoami", {"Authorization": f"Bearer {token}0"}),
                 401, "unauthorized")
    assert ok(raw(daemon, "GET", "/v1/whoami", {"Authorization": f"Bearer {token}"}))["id"] == "bob"


# Malformed bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"",
    b"{",
    b"not json",
    b'{"action": {"kind": "shell"}, "intent": "x"',
    b'{"action": {"kind": "shell"}, "intent": "x"} trailing',
    b"\xff\xfe{}",
    b'{"action": {"kind": "shell"}, "intent": "x",}',
])
def test_malformed_json_is_bad_request(daemon, body):
    bot = daemon.client("deploy-bot")
    expect_error(bot.request("POST", "/v1/requests", data=body), 400, "bad_request")
    assert daemon.client("carol").list()["requests"] == []


@pytest.mark.parametrize("body", [
    [],
    "a string",
    42,
    None,
    {},                                                         # no action
    {"intent": "x"},                                            # no action
    {"action": "kubectl delete", "intent": "x"},                # action not an object
    {"action": [], "intent": "x"},
    {"action": {}, "intent": "x"},                              # no kind
    {"action": {"kind": 5}, "intent": "x"},
    {"action": {"kind": "shell", "command": "rm -rf /"}, "intent": "x"},
    {"action": {"kind": "shell", "command": ["ls", 5]}, "intent": "x"},
    {"action": {"kind": "mcp", "tool": ["x"]}, "intent": "x"},
    {"action": {"kind": "mcp", "tool": "x", "arguments": "y"}, "intent": "x"},
    {"action": {"kind": "shell", "resource": 1}, "intent": "x"},
    {"action": {"kind": "shell", "environment": False}, "intent": "x"},
    {"action": {"kind": "shell"}, "intent": 5},
    {"action": {"kind": "shell"}, "intent": "x", "context": "ctx"},
    {"action": {"kind": "shell"}, "intent": "x", "on_behalf_of": 7},
    {"action": {"kind": "shell"}, "intent": "x", "ttl_seconds": "60"},
    {"action": {"kind": "shell"}, "intent": "x", "ttl_seconds": 1.5},
    {"action": {"kind": "shell"}, "intent": "x", "ttl_seconds": 0},
    {"action": {"kind": "shell"}, "intent": "x", "ttl_seconds": -5},
    {"action": {"kind": "shell"}, "intent": "x", "ttl_seconds": 86401},
    {"action": {"kind": "shell"}, "intent": "x", "idempotency_key": 9},
    {"action": {"kind": "shell"}, "intent": "x", "idempotency_key": "k" * 201},
])
def test_submit_with_wrong_types_is_400(daemon, body):
    bot = daemon.client("deploy-bot")
    resp = bot.request("POST", "/v1/requests", data=json.dumps(body))
    code = error_of(resp, 400)
    assert code in ("bad_request", "too_long"), code
    assert daemon.client("carol").list()["requests"] == []


@pytest.mark.parametrize("body", [
    {},
    {"decision": "maybe"},
    {"decision": "APPROVE"},
    {"decision": True},
    {"decision": "approve", "comment": 5},
    [],
])
def test_review_with_wrong_types_is_400(daemon, body):
    req = daemon.client("deploy-bot").submit()
    bob = daemon.client("bob")
    expect_error(bob.request("POST", f"/v1/requests/{req['id']}/reviews", data=json.dumps(body)),
                 400, "bad_request")
    expect_error(bob.request("POST", f"/v1/requests/{req['id']}/reviews", data=b"{nope"),
                 400, "bad_request")
    after = bob.show(req["id"])
    assert after["status"] == "pending" and after["reviews"] == []


def test_claim_and_result_with_wrong_types_are_400(start_daemon):
    d = start_daemon(policy={"default": "allow"})
    bot = d.client("deploy-bot")
    req = bot.submit()
    for body in [{}, {"digest": 5}, {"digest": None}, {"digest": ["a"]}]:
        expect_error(bot.request("POST", f"/v1/requests/{req['id']}/claim", data=json.dumps(body)),
                     400, "bad_request")
    assert bot.show(req["id"])["status"] == "approved"
    ok(bot.claim(req["id"], req["digest"]))
    for body in [{}, {"exit_code": "0"}, {"exit_code": 1.5}, {"exit_code": None},
                 {"exit_code": 0, "detail": 3}]:
        expect_error(bot.request("POST", f"/v1/requests/{req['id']}/result", data=json.dumps(body)),
                     400, "bad_request")
    assert bot.show(req["id"])["status"] == "claimed"


def test_deeply_nested_json_is_too_deep(daemon):
    bot = daemon.client("deploy-bot")
    deep = "[" * 5000 + "]" * 5000
    body = '{"action": {"kind": "shell"}, "intent": "x", "context": {"d": ' + deep + '}}'
    expect_error(bot.request("POST", "/v1/requests", data=body), 400, "too_deep")
    deep_obj = '{"a":' * 100 + "1" + "}" * 100
    body = '{"action": {"kind": "shell", "arguments": ' + deep_obj + '}, "intent": "x"}'
    expect_error(bot.request("POST", "/v1/requests", data=body), 400, "too_deep")
    # Unbalanced deep input is refused just as cleanly.
    expect_error(bot.request("POST", "/v1/requests", data="[" * 100000), 400, None)
    assert daemon.client("carol").list()["requests"] == []
    # Nesting within the limit is fine.
    ok_nested = {"a": {"b": {"c": {"d": [1, [2, [3]]]}}}}
    assert bot.submit(context=ok_nested)["context"] == ok_nested


def test_overlong_string_and_list_are_too_long(daemon):
    bot = daemon.client("deploy-bot")
    resp = bot.submit_raw(intent="x" * (64 * 1024 + 1))
    expect_error(resp, 400, "too_long")
    resp = bot.submit_raw(context={"data": list(range(1001))})
    expect_error(resp, 400, "too_long")
    assert daemon.client("carol").list()["requests"] == []


def test_oversize_body_is_too_large(start_daemon):
    d = start_daemon(server={"max_body": 1024})
    bot = d.client("deploy-bot")
    small = bot.submit()  # an ordinary request still fits
    big = bot.submit_raw(context={"diff": "x" * 4096})
    expect_error(big, 413, "too_large")
    listed = d.client("carol").list()["requests"]
    assert [r["id"] for r in listed] == [small["id"]]


def test_unknown_request_is_404(daemon):
    bob = daemon.client("bob")
    expect_error(bob.get("/v1/requests/req_01JDZ6W3K2T8QXR5V0M4N7B9CA"), 404, "not_found")
    expect_error(bob.get("/v1/requests/nope"), 404, "not_found")
    expect_error(bob.approve("req_01JDZ6W3K2T8QXR5V0M4N7B9CA"), 404, "not_found")


def test_unknown_path_is_404(daemon):
    bob = daemon.client("bob")
    expect_error(bob.get("/v1/nothing-here"), 404, "not_found")
    expect_error(bob.get("/v2/requests"), 404, "not_found")


def test_wrong_method_is_405(daemon):
    bob = daemon.client("bob")
    expect_error(bob.request("DELETE", "/v1/requests"), 405, "method_not_allowed")
    expect_error(bob.request("PUT", "/v1/whoami", data=b"{}"), 405, "method_not_allowed")


def test_bad_input_does_not_disturb_stored_requests(daemon):
    bot = daemon.client("deploy-bot")
    req = bot.submit()
    ok(daemon.client("bob").approve(req["id"]))
    for body in [b"{", b"[" * 1000, b'{"decision": 1}', b"\x00\x01\x02"]:
        r = daemon.client("carol").request("POST", f"/v1/requests/{req['id']}/reviews", data=body)
        error_of(r, 400)
    after = bot.show(req["id"])
    assert after["status"] == "pending"
    assert [r["reviewer"] for r in after["reviews"]] == ["bob"]
    assert ok(daemon.client("carol").approve(req["id"]))["status"] == "approved"


def test_chunked_oversize_body_is_too_large(start_daemon):
    # Without a Content-Length the limit must still hold.
    d = start_daemon(server={"max_body": 1024})
    bot = d.client("deploy-bot")
    prefix = json.dumps({"action": sample_action(), "intent": "x", "context": {"diff": ""}})[:-2]

    def chunks():
        yield prefix.encode()
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}}'

    headers = dict(bot.headers(), **{"Content-Type": "application/json"})
    try:
        resp = requests.post(d.url + "/v1/requests", data=chunks(), headers=headers,
                             timeout=HTTP_TIMEOUT)
    except requests.ConnectionError:
        resp = None  # the server hung up mid-body: also a refusal
    if resp is not None:
        expect_error(resp, 413, "too_large")
    assert d.client("carol").list()["requests"] == []


def test_long_poll_is_bounded_by_max_wait(start_daemon):
    d = start_daemon(server={"max_wait": 1})
    bot = d.client("deploy-bot")
    req = bot.submit()
    t0 = time.monotonic()
    resp = bot.show_raw(req["id"], wait=100000, timeout=120)
    assert ok(resp)["status"] == "pending"
    assert time.monotonic() - t0 < 60, "wait was not clamped to server.max_wait"
