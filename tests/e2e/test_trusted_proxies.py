"""Behind a reverse proxy, every caller arrives from the proxy's address. With
server.trusted_proxies naming it, the console's sign-in limit and the audit events use the
client's address from the last X-Forwarded-For entry; without it, or from anyone else, the
header is ignored (a client cannot pick the address it is counted under)."""

import http.client
import json

import pytest

from conftest import expect_error, new_token
from test_config import check, good_lines
from test_console import CONSOLE_POLICY, events_of, sign_in_raw

LIMIT = 5  # failed sign-ins per address per minute


def fail_from(d, xff):
    return sign_in_raw(d, new_token(), {"X-Forwarded-For": xff})


def test_a_trusted_proxys_forwarded_address_is_the_client(start_daemon):
    d = start_daemon(policy=CONSOLE_POLICY, server={"trusted_proxies": "10.9.9.9, 127.0.0.1"})
    for _ in range(LIMIT):
        expect_error(fail_from(d, "203.0.113.5"), 401, "unauthorized")
    expect_error(fail_from(d, "203.0.113.5"), 429, "rate_limited")
    # Another client behind the same proxy is not locked out by the first one's failures.
    expect_error(fail_from(d, "203.0.113.6"), 401, "unauthorized")
    # Addresses a client wrote itself come first; the proxy's own entry is the last.
    expect_error(fail_from(d, "203.0.113.5, 203.0.113.7"), 401, "unauthorized")
    expect_error(fail_from(d, "198.51.100.1,203.0.113.5"), 429, "rate_limited")
    addresses = [ev["data"]["address"] for ev in events_of(d, "session.signin_failed")]
    assert addresses.count("203.0.113.5") == LIMIT, addresses
    assert "203.0.113.6" in addresses and "203.0.113.7" in addresses, addresses
    assert "127.0.0.1" not in addresses, addresses
    assert not d.sanitizer_reports()


@pytest.mark.parametrize("xff", ["", "not-an-address", "203.0.113.5, junk", "1.2.3.4 5.6.7.8"])
def test_a_forwarded_header_without_an_address_at_its_end_is_not_used(start_daemon, xff):
    d = start_daemon(policy=CONSOLE_POLICY, server={"trusted_proxies": "127.0.0.1"})
    expect_error(fail_from(d, xff), 401, "unauthorized")
    [ev] = events_of(d, "session.signin_failed")
    assert ev["data"]["address"] == "127.0.0.1", ev


def test_without_trusted_proxies_the_header_is_ignored(start_daemon):
    d = start_daemon(policy=CONSOLE_POLICY)
    for i in range(LIMIT):
        expect_error(fail_from(d, f"203.0.113.{i}"), 401, "unauthorized")
    # Each try named another address; all of them count against the peer's own.
    expect_error(fail_from(d, "203.0.113.99"), 429, "rate_limited")
    dumped = json.dumps([ev["data"] for ev in events_of(d, "session.signin_failed")])
    assert "203.0.113." not in dumped, dumped


@pytest.mark.parametrize("value,words", [
    ("10.0.0.300", "is not an IPv4 address"),
    ("10.0.0.1,,10.0.0.2", "an empty or overlong entry"),
    ("10.0.0.1,", "an empty or overlong entry"),
    ("::1", "is not an IPv4 address"),
    (",".join(f"10.0.0.{i}" for i in range(17)), "at most 16 addresses"),
])
def test_bad_trusted_proxies_are_refused_by_the_config_check(tmp_path, value, words):
    lines = good_lines(tmp_path)
    i = next(k for k, l in enumerate(lines) if l.strip().startswith("listen"))
    lines.insert(i + 1, f'  trusted_proxies: "{value}"')
    proc, out = check(tmp_path, lines)
    assert proc.returncode != 0 and "server.trusted_proxies" in out and words in out, out


def test_the_proxys_own_header_line_wins_over_the_clients(start_daemon):
    """HAProxy's `option forwardfor` adds a line of its own after whatever the client sent:
    the client's line must not be the one read."""
    d = start_daemon(policy=CONSOLE_POLICY, server={"trusted_proxies": "127.0.0.1"})
    host, port = d.url.split("//")[1].split(":")
    for _ in range(LIMIT + 1):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        body = json.dumps({"token": new_token()})
        conn.putrequest("POST", "/v1/session")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.putheader("X-Forwarded-For", f"198.51.100.{_}")  # the client's: a new one each time
        conn.putheader("X-Forwarded-For", "203.0.113.9")      # the proxy's
        conn.endheaders(body.encode())
        status = conn.getresponse().status
        conn.close()
    assert status == 429, "the client's own X-Forwarded-For line escaped the sign-in limit"
    addresses = {ev["data"]["address"] for ev in events_of(d, "session.signin_failed")}
    assert addresses == {"203.0.113.9"}, addresses
