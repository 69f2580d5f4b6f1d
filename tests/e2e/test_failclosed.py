"""Fail closed: when the store cannot record a change, nothing changes and nothing runs.

The store is made unable to write by another client holding its write lock: under SQLite a
connection in BEGIN EXCLUSIVE, under PostgreSQL a session holding every table of the daemon's
database in EXCLUSIVE mode (reads go on, writes wait). Either way the daemon gives up after
300 ms (SQLite's busy_timeout_ms, PostgreSQL's lock_timeout)."""
import sqlite3
import threading

import pytest

from conftest import POSTGRES, expect_error, new_database, ok, store_server, store_sql

LOCK_WAIT = 300  # ms the daemon waits for a lock before it gives up
LOCK_TAKE_TIMEOUT = 30  # s for the test's own client to take the lock


def locked_daemon(start_daemon, tmp_path):
    """A daemon whose store gives up on a held lock after LOCK_WAIT: (daemon, its store)."""
    if POSTGRES:
        db = new_database()
        url = (store_server().url(db) +
               f"?options=-c%20lock_timeout%3D{LOCK_WAIT}%20-c%20statement_timeout%3D30000")
    else:
        db = tmp_path / "locked.db"
        url = f"sqlite:{db}?busy_timeout_ms={LOCK_WAIT}"
    d = start_daemon(policy={"approvers": {"group": "sre", "count": 1}},
                     extra={"store": {"url": url}})
    return d, db


class PgWriteLock:
    """A psql session holding every table of `db` in EXCLUSIVE mode, until rollback()."""

    def __init__(self, db):
        pg = store_server()
        tables = pg.psql(db, "SELECT string_agg(format('%I', tablename), ', ' ORDER BY tablename) "
                             "FROM pg_tables WHERE schemaname = 'public'").strip()
        assert "audit_events" in tables and "requests" in tables, tables
        self.proc = pg.psql_process(db)
        self.proc.stdin.write(f"BEGIN;\nLOCK TABLE {tables} IN EXCLUSIVE MODE;\n\\echo locked\n")
        self.proc.stdin.flush()
        line = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(LOCK_TAKE_TIMEOUT)
        if not line or line[0].strip() != "locked":
            err = self.close()
            pytest.fail(f"psql did not take the lock within {LOCK_TAKE_TIMEOUT}s: {line} {err}")

    def rollback(self):
        self.proc.stdin.write("ROLLBACK;\n")
        self.proc.stdin.flush()

    def close(self):
        """End the session (its transaction, if still open, is rolled back); its stderr."""
        try:
            _, err = self.proc.communicate("\\q\n" if self.proc.poll() is None else None,
                                           timeout=30)
        except Exception:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
        return (err or "")[-2000:]


def hold_write_lock(db):
    if POSTGRES:
        return PgWriteLock(db)
    conn = sqlite3.connect(str(db), isolation_level=None, timeout=10)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_approval_that_cannot_be_stored_is_refused_and_changes_nothing(start_daemon, tmp_path):
    d, db = locked_daemon(start_daemon, tmp_path)
    req = d.client("deploy-bot").submit()
    lock = hold_write_lock(db)
    try:
        expect_error(d.client("bob").approve(req["id"]), 503, "unavailable")
    finally:
        lock.rollback()
        lock.close()
    after = d.client("deploy-bot").show(req["id"])
    assert after["status"] == "pending", "an approval that was not stored must not count"
    assert after["reviews"] == []
    expect_error(d.client("deploy-bot").claim(req["id"], req["digest"]), 409, "not_approved")
    # The store is back: the same approval now goes through.
    assert ok(d.client("bob").approve(req["id"]))["status"] == "approved"


def test_submission_that_cannot_be_stored_is_refused(start_daemon, tmp_path):
    d, db = locked_daemon(start_daemon, tmp_path)
    lock = hold_write_lock(db)
    try:
        expect_error(d.client("deploy-bot").submit_raw(), 503, "unavailable")
    finally:
        lock.rollback()
        lock.close()
    assert d.client("carol").list()["requests"] == [], "a refused submission left a request behind"


def test_claim_that_cannot_be_stored_does_not_run(start_daemon, tmp_path):
    d, db = locked_daemon(start_daemon, tmp_path)
    bot = d.client("deploy-bot")
    req = bot.submit()
    ok(d.client("bob").approve(req["id"]))
    lock = hold_write_lock(db)
    try:
        expect_error(bot.claim(req["id"], req["digest"]), 503, "unavailable")
    finally:
        lock.rollback()
        lock.close()
    assert bot.show(req["id"])["status"] == "approved", "an unrecorded claim must not count"
    assert ok(bot.claim(req["id"], req["digest"]))["status"] == "claimed"
    expect_error(bot.claim(req["id"], req["digest"]), 409, "already_claimed")


def test_a_damaged_audit_log_refuses_every_change(start_daemon):
    d = start_daemon(policy={"default": "allow"})
    bot = d.client("deploy-bot")
    first = bot.submit()
    bot.submit()
    assert d.stop() == 0
    store_sql(d.workdir, "DELETE FROM audit_events WHERE seq = 2")
    d.start()
    # No audit, no change: nothing new can be recorded on a log that does not hold together.
    expect_error(bot.submit_raw(), 503, "audit_damaged")
    expect_error(bot.claim(first["id"], first["digest"]), 503, "audit_damaged")
    assert bot.show(first["id"])["status"] == "approved", "a refused claim changed the request"
    # Reading and verifying still work, and the verification names the gap.
    v = ok(d.client("erin").get("/v1/audit/verify"))
    assert v["ok"] is False and v["first_bad_seq"] == 2, v
