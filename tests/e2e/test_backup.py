"""Backup and restore, as docs/deploy.md tells an operator to do them, for each store.

SQLite: `sqlite3 DB ".backup FILE"` while the daemon runs and writes. PostgreSQL:
`pg_dump -Fc` while it runs, `pg_restore` into a new, empty database. Then a new daemon
starts on the restored copy with the same signing key, and what the restore means is
checked as a user sees it:

- what was decided before the backup is there, exactly; the online backup is one
  consistent moment (every restored audit event is the original's event of that seq, and a
  request is restored exactly when its `request.submitted` event is);
- a grant claimed before the backup cannot be claimed again;
- what happened after the backup is gone: a request made then is unknown, a token issued
  then is refused, an approval given then must be given again;
- the audit log verifies (`signoff audit verify` with the pinned first key, and
  GET /v1/audit/verify), and the restored daemon signs on over it with the same key;
- a grant that was claimed only after the backup reads as approved again, so it is
  claimable again while its grant TTL lasts (docs/deploy.md says so and what to do); a
  restore started after the longest `ttl`/`grant_ttl` (here: the daemon's clock two hours
  ahead, under libfaketime) leaves nothing open: every such grant is refused and expired.
"""
import json
import os
import shutil
import subprocess
import threading

import pytest

from conftest import (CAST, expect_error, ok, run_cli, sample_action, wait_until)
from test_persistence import snapshot
from test_retention import FAKETIME_LIBS

SQLITE3 = shutil.which("sqlite3")
TOOL_TIMEOUT = 120  # seconds for one sqlite3, pg_dump or pg_restore run
LATER = "+2h"  # past the policy's ttl (30m) and grant_ttl (10m)
MAX_BACKGROUND = 400  # most submissions the background writer makes during a backup

def audit_section(tmp_path):
    """One signing key for every daemon of a test (the original and each restore), and a
    checkpoint every second so that the backup holds signed checkpoints."""
    return {"signing_key_file": str(tmp_path / "audit.key"), "checkpoint_interval": "1s"}


def approve_twice(d, rid):
    ok(d.client("bob").approve(rid))
    return ok(d.client("carol").approve(rid))


def wait_signed(d):
    """Wait until a checkpoint covers every event; the head's seq."""
    erin = d.client("erin")

    def signed():
        head = erin.audit_events()[-1]["seq"]
        cp = erin.get("/v1/audit/checkpoint")
        return head if cp.status_code == 200 and cp.json()["size"] >= head else None

    return wait_until(signed, timeout=30, what="a checkpoint over the whole log")


def verify(d, pubkey_file, cwd):
    """`signoff audit verify --json` with the pinned first key, and the server's own check."""
    r = run_cli(["audit", "verify", "--json", "--pubkey-file", str(pubkey_file)], d.url,
                CAST["erin"].token, cwd)
    assert r.returncode == 0, f"signoff audit verify failed:\n{r.stdout.decode()}{r.stderr.decode()}"
    report = json.loads(r.stdout)
    assert report["ok"] is True and report["checkpoints"] >= 1, report
    api = ok(d.client("erin").get("/v1/audit/verify"))
    assert api["ok"] is True, api
    return report


class Background:
    """Submissions that keep the daemon writing while a backup is taken."""

    def __init__(self, d):
        self.client = d.client("deploy-bot")
        self.stop_flag = threading.Event()
        self.ids = []
        self.errors = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        for i in range(MAX_BACKGROUND):
            if self.stop_flag.is_set():
                return
            try:
                r = self.client.submit_raw(sample_action(resource=f"deploy/busy-{i}"))
                if r.status_code == 201:
                    self.ids.append(r.json()["id"])
                else:
                    self.errors.append(f"{r.status_code} {r.text[:200]}")
            except Exception as e:  # noqa: BLE001 - reported by the test, not swallowed
                self.errors.append(repr(e))

    def __enter__(self):
        self.thread.start()
        # The backup starts once the daemon is busy with these writes.
        wait_until(lambda: len(self.ids) >= 3 or self.errors, timeout=30,
                   what="background submissions")
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the background writer did not stop"
        assert not self.errors, f"submissions failed during the backup: {self.errors[:3]}"


# --------------------------------------------------------------------------------------------
# The scenario, the same for each store.


def before_backup(d):
    """Requests in every state a restore must keep; returns them by name."""
    bot, bob = d.client("deploy-bot"), d.client("bob")
    reqs = {}
    reqs["approved"] = bot.submit(sample_action(resource="deploy/approved"))
    approve_twice(d, reqs["approved"]["id"])
    reqs["denied"] = bot.submit(sample_action(resource="deploy/denied"))
    ok(bob.deny(reqs["denied"]["id"], comment="not now"))
    reqs["claimed"] = bot.submit(sample_action(resource="deploy/claimed"))
    approve_twice(d, reqs["claimed"]["id"])
    ok(bot.claim(reqs["claimed"]["id"], reqs["claimed"]["digest"]))
    reqs["succeeded"] = bot.submit(sample_action(resource="deploy/succeeded"))
    approve_twice(d, reqs["succeeded"]["id"])
    ok(bot.claim(reqs["succeeded"]["id"], reqs["succeeded"]["digest"]))
    ok(bot.result(reqs["succeeded"]["id"], 0, detail="done"))
    reqs["half"] = bot.submit(sample_action(resource="deploy/half"))
    ok(bob.approve(reqs["half"]["id"]))
    # Approved before the backup, claimed only after it.
    reqs["late_claim"] = bot.submit(sample_action(resource="deploy/late-claim"))
    approve_twice(d, reqs["late_claim"]["id"])
    return reqs


def after_backup(d, reqs):
    """Changes the backup does not hold; returns what a restore loses."""
    bot, carol = d.client("deploy-bot"), d.client("carol")
    ok(bot.claim(reqs["late_claim"]["id"], reqs["late_claim"]["digest"]))
    assert ok(carol.approve(reqs["half"]["id"]))["status"] == "approved"
    lost = bot.submit(sample_action(resource="deploy/lost"))
    approve_twice(d, lost["id"])
    ok(bot.claim(lost["id"], lost["digest"]))
    token = ok(carol.post("/v1/tokens", {"principal": "dave"}), 201)["token"]
    assert ok(d.anonymous(token).get("/v1/whoami"))["id"] == "dave"
    return {"lost": lost, "token": token}


def run_original(start_daemon, tmp_path, store_url, take_backup):
    """The daemon before the disaster: requests, a backup taken while it writes, more
    changes, a clean stop. Returns what the checks need."""
    d = start_daemon(extra={"store": {"url": store_url}, "audit": audit_section(tmp_path)})
    erin = d.client("erin")
    pubkey = tmp_path / "first.pub"
    pubkey.write_text(ok(erin.get("/v1/audit/pubkey"))["first_public_key"] + "\n")
    reqs = before_backup(d)
    wait_signed(d)
    snaps = {name: snapshot(erin, r["id"]) for name, r in reqs.items()}
    with Background(d) as busy:
        backup = take_backup()
    lost = after_backup(d, reqs)
    events = erin.audit_events()
    assert d.stop() == 0, d.log_text()[-3000:]
    return {"reqs": reqs, "snaps": snaps, "busy": busy.ids, "events": events,
            "pubkey": pubkey, "backup": backup, **lost}


def start_restored(start_daemon, tmp_path, store_url, monkeypatch, fake=None):
    """A new daemon on a restored store with the same key; with `fake`, its clock is
    moved by that libfaketime offset."""
    extra = {"store": {"url": store_url}, "audit": audit_section(tmp_path)}
    if not fake:
        return start_daemon(extra=extra)
    lib = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
    if not lib:
        pytest.fail("libfaketime is needed (scripts/bootstrap installs faketime)")
    with monkeypatch.context() as m:  # only the daemon's process gets the faked clock
        m.setenv("LD_PRELOAD", lib)
        m.setenv("FAKETIME", fake)
        m.setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        m.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
        return start_daemon(extra=extra)


def check_restored(d, orig, cwd):
    """A restore right after the disaster: the backup's state, nothing later."""
    reqs = orig["reqs"]
    bot, bob, carol, erin = (d.client(n) for n in ["deploy-bot", "bob", "carol", "erin"])

    # The backup is one consistent moment: the restored log is a prefix of the original's,
    # event for event, followed by this daemon's start.
    events = erin.audit_events()
    started = [i for i, e in enumerate(events) if e["type"] == "daemon.started"]
    head = started[-1]  # events before the restored daemon's own start
    assert [e["seq"] for e in events] == list(range(events[0]["seq"], events[0]["seq"] + len(events)))
    assert events[:head] == orig["events"][:head], "the restored log is not a prefix of the original"
    assert head < len(orig["events"]), "the backup holds events written after it was taken"
    submitted = {e["request_id"] for e in events[:head] if e["type"] == "request.submitted"}
    for rid in orig["busy"]:
        r = bot.show_raw(rid)
        assert r.status_code in (200, 404), r.text
        assert (r.status_code == 200) == (rid in submitted), \
            f"{rid}: request and audit event disagree in the backup ({r.status_code})"

    # What was decided before the backup is there, exactly.
    for name in ["approved", "denied", "claimed", "succeeded", "half", "late_claim"]:
        assert snapshot(erin, reqs[name]["id"]) == orig["snaps"][name], f"{name} changed"

    # A grant claimed before the backup stays spent.
    for name in ["claimed", "succeeded"]:
        expect_error(bot.claim(reqs[name]["id"], reqs[name]["digest"]), 409, "already_claimed")

    # What happened after the backup is gone.
    expect_error(bot.show_raw(orig["lost"]["id"]), 404, "not_found")
    expect_error(bot.claim(orig["lost"]["id"], orig["lost"]["digest"]), 404, "not_found")
    expect_error(d.anonymous(orig["token"]).get("/v1/whoami"), 401, "unauthorized")
    # carol's approval after the backup is lost: the request waits for a second human again,
    # and she gives it again.
    half = bot.show(reqs["half"]["id"])
    assert half["status"] == "pending" and [r["reviewer"] for r in half["reviews"]] == ["bob"]
    expect_error(bob.approve(reqs["half"]["id"]), 409, "already_reviewed")
    assert ok(carol.approve(reqs["half"]["id"]))["status"] == "approved"
    # The claim made after the backup is lost too: within its grant TTL, the grant reads as
    # approved again (docs/deploy.md, "What a restore means").
    assert bot.show(reqs["late_claim"]["id"])["status"] == "approved"

    # The log verifies with the first key, and this daemon signs on with the same key.
    wait_signed(d)
    report = verify(d, orig["pubkey"], cwd)
    assert report["signed_size"] >= events[-1]["seq"], report
    assert ok(erin.get("/v1/audit/pubkey"))["first_public_key"] == orig["pubkey"].read_text().strip()


def check_restored_later(d, orig, cwd):
    """A restore started after the longest ttl and grant_ttl: nothing of the backup is open."""
    reqs = orig["reqs"]
    bot, carol, erin = (d.client(n) for n in ["deploy-bot", "carol", "erin"])
    for name in ["approved", "late_claim"]:
        expect_error(bot.claim(reqs[name]["id"], reqs[name]["digest"]), 409, "grant_expired")
    for name in ["claimed", "succeeded"]:
        expect_error(bot.claim(reqs[name]["id"], reqs[name]["digest"]), 409, "already_claimed")
    expect_error(carol.approve(reqs["half"]["id"]), 409, "not_pending")
    # Everything the backup left open, the busy requests it caught among them, expires.
    open_ids = [reqs[n]["id"] for n in ["approved", "late_claim", "half"]]
    open_ids += [rid for rid in orig["busy"] if bot.show_raw(rid).status_code == 200]

    def status(rid):
        return bot.show(rid)["status"]

    wait_until(lambda: all(status(rid) == "expired" for rid in open_ids), timeout=30,
               what="the sweeper to expire what the backup left open")
    expired = {e["request_id"] for e in erin.audit_events() if e["type"] == "request.expired"}
    assert set(open_ids) <= expired, "an expiry was not audited"
    wait_signed(d)
    verify(d, orig["pubkey"], cwd)


# --------------------------------------------------------------------------------------------
# SQLite


def sqlite_backup(db, out):
    r = subprocess.run([SQLITE3, str(db), f".backup '{out}'"], capture_output=True,
                       timeout=TOOL_TIMEOUT)
    assert r.returncode == 0 and out.exists(), r.stderr.decode()
    return out


def sqlite_restore(backup, target):
    """docs/deploy.md's restore: no stale -wal or -shm beside the file, then the backup."""
    for suffix in ("", "-wal", "-shm"):
        (target.parent / (target.name + suffix)).unlink(missing_ok=True)
    shutil.copyfile(backup, target)
    os.chmod(target, 0o600)
    return f"sqlite:{target}"


@pytest.mark.sqlite_only("backs up and restores the SQLite file itself")
@pytest.mark.skipif(not SQLITE3, reason="the sqlite3 command is needed (scripts/bootstrap test)")
def test_sqlite_online_backup_restores(start_daemon, tmp_path, monkeypatch):
    db = tmp_path / "signoff.db"
    orig = run_original(start_daemon, tmp_path, f"sqlite:{db}",
                        lambda: sqlite_backup(db, tmp_path / "backup.db"))

    restored = tmp_path / "restored"
    restored.mkdir()
    d = start_restored(start_daemon, tmp_path, sqlite_restore(orig["backup"], restored / "signoff.db"),
                       monkeypatch)
    check_restored(d, orig, tmp_path)
    assert d.stop() == 0

    later = tmp_path / "restored-later"
    later.mkdir()
    d = start_restored(start_daemon, tmp_path, sqlite_restore(orig["backup"], later / "signoff.db"),
                       monkeypatch, fake=LATER)
    check_restored_later(d, orig, tmp_path)


# --------------------------------------------------------------------------------------------
# PostgreSQL


def pg_tool(server, name, *args):
    """Run pg_dump or pg_restore of the server's installation, bounded, with no PG*
    variable of ours leaking in: every connection setting is in the URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    r = subprocess.run([os.path.join(server.bindir, name), *args], env=env, capture_output=True,
                       timeout=TOOL_TIMEOUT)
    assert r.returncode == 0, f"{name} exited {r.returncode}: {r.stderr.decode()[-2000:]}"


@pytest.fixture
def pg_databases(pg_server):
    """Factory: a new, empty database by name -> its URL; all dropped after the test."""
    made = []

    def factory(name):
        pg_server.drop_database(name)
        made.append(name)
        return pg_server.create_database(name)

    yield factory
    for name in made:
        pg_server.drop_database(name)


def test_postgres_dump_restores(pg_server, pg_databases, start_daemon, tmp_path, monkeypatch):
    dump = tmp_path / "signoff.dump"
    url = pg_databases("e2e_backup_original")
    orig = run_original(start_daemon, tmp_path, url,
                        lambda: pg_tool(pg_server, "pg_dump", "-Fc", "-f", str(dump), "-d", url)
                        or dump)

    restored = pg_databases("e2e_backup_restored")
    pg_tool(pg_server, "pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",
            "-d", restored, str(dump))
    d = start_restored(start_daemon, tmp_path, restored, monkeypatch)
    check_restored(d, orig, tmp_path)
    assert d.stop() == 0

    later = pg_databases("e2e_backup_restored_later")
    pg_tool(pg_server, "pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",
            "-d", later, str(dump))
    d = start_restored(start_daemon, tmp_path, later, monkeypatch, fake=LATER)
    check_restored_later(d, orig, tmp_path)
