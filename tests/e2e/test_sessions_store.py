"""Console sessions live in the store: they outlive a restart, the store keeps neither the
cookie nor the CSRF token (only the cookie's SHA-256), and signing out ends the session for
good. Runs on either backend (SIGNOFF_E2E_STORE); test_cluster.py has the several-node side.
"""

import hashlib

from conftest import CAST, Daemon, expect_error, make_config, ok, store_rows
from test_console import CONSOLE_POLICY, INTENT, principal_of, sign_in, with_cookie


def sessions_of(workdir):
    """The principals of the sessions in the store, sorted."""
    return sorted(r[0] for r in store_rows(workdir,
                                           "SELECT principal FROM sessions WHERE kind = 'session'"))


def secrets_in_store(workdir, *secrets):
    """Which of `secrets` appear anywhere in the sessions table (any column)."""
    rows = store_rows(workdir, "SELECT hash, kind, principal FROM sessions")
    text = repr(rows)
    return [s for s in secrets if s in text]


def test_a_session_outlives_a_kill_and_restart(start_daemon):
    d = start_daemon(policy=CONSOLE_POLICY)
    bob = sign_in(d, "bob")
    rid = d.client("deploy-bot").submit(intent=INTENT)["id"]
    d.restart()  # kill -9, same store
    again = ok(bob.get("/v1/session"))
    assert principal_of(again) == "bob"
    assert again["csrf_token"] == bob.csrf, "the CSRF token changed across a restart"
    # A change with the cookie still needs, and still accepts, the same CSRF token.
    expect_error(bob.post(f"/v1/requests/{rid}/reviews", {"decision": "approve"}, csrf=None),
                 403, "csrf")
    r = ok(bob.post(f"/v1/requests/{rid}/reviews", {"decision": "approve"}))
    assert any(rv["reviewer"] == "bob" for rv in r["reviews"]), r["reviews"]
    assert not d.sanitizer_reports()


def test_the_store_keeps_only_the_cookies_hash(start_daemon):
    d = start_daemon(policy=CONSOLE_POLICY)
    bob = sign_in(d, "bob")
    rows = store_rows(d.workdir, "SELECT hash, kind, principal FROM sessions")
    assert (hashlib.sha256(bob.cookie.encode()).hexdigest(), "session", "bob") in \
        [tuple(r) for r in rows], rows
    assert secrets_in_store(d.workdir, bob.cookie, bob.csrf) == [], \
        "the session cookie or its CSRF token is stored in clear"


def test_sign_out_ends_the_session_for_good(start_daemon):
    d = start_daemon(policy=CONSOLE_POLICY)
    bob, carol = sign_in(d, "bob"), sign_in(d, "carol")
    r = bob.delete("/v1/session")
    assert r.status_code == 204, f"DELETE /v1/session: {r.status_code} {r.text[:300]}"
    assert sessions_of(d.workdir) == ["carol"]
    d.restart()
    expect_error(bob.get("/v1/session"), 401, "unauthorized")
    assert principal_of(ok(carol.get("/v1/session"))) == "carol", "sign-out ended another session"
    assert not d.sanitizer_reports()


def test_a_principal_taken_out_of_the_configuration_loses_its_session(start_daemon):
    """The session names a principal; once the configuration no longer has it, the cookie is
    worth nothing, though its row is still in the store."""
    d = start_daemon(policy=CONSOLE_POLICY)
    bob = sign_in(d, "bob")
    d.stop()
    without_bob = [p for name, p in CAST.items() if name != "bob"]
    d2 = Daemon(d.workdir, make_config(d.workdir, policy=CONSOLE_POLICY, principals=without_bob))
    d2.start()
    try:
        assert sessions_of(d2.workdir) == ["bob"], "the row was expected to stay"
        expect_error(with_cookie(d2, "GET", "/v1/session", bob.cookie), 401, "unauthorized")
        assert not d2.sanitizer_reports()
    finally:
        d2.stop()
