"""Fail closed: when the store cannot record a change, nothing changes and nothing runs."""
import sqlite3

from conftest import expect_error, ok


def locked_daemon(start_daemon, tmp_path):
    db = tmp_path / "locked.db"
    d = start_daemon(policy={"approvers": {"group": "sre", "count": 1}},
                     extra={"store": {"url": f"sqlite:{db}?busy_timeout_ms=300"}})
    return d, db


def hold_write_lock(db):
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
    db = sqlite3.connect(str(d.workdir / "signoff.db"))
    db.execute("DELETE FROM audit_events WHERE seq = 2")
    db.commit()
    db.close()
    d.start()
    # No audit, no change: nothing new can be recorded on a log that does not hold together.
    expect_error(bot.submit_raw(), 503, "audit_damaged")
    expect_error(bot.claim(first["id"], first["digest"]), 503, "audit_damaged")
    assert bot.show(first["id"])["status"] == "approved", "a refused claim changed the request"
    # Reading and verifying still work, and the verification names the gap.
    v = ok(d.client("erin").get("/v1/audit/verify"))
    assert v["ok"] is False and v["first_bad_seq"] == 2, v
