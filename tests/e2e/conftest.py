"""Fixtures for the black-box tests: a real signoffd on a free port in a temporary directory.

Everything here talks to the daemon only as a user would: a YAML file, a process, HTTP and
the `signoff` command. The few tests that attack the store itself (tampering, failing writes,
secrets at rest) reach it directly with store_rows, store_sql and store_holds: SQL on the
SQLite file, or psql on the daemon's PostgreSQL database.

SIGNOFF_BUILD selects the build directory (default: <repo>/build); the same suite runs
against an ASan+UBSan build, so every wait is bounded but generous and nothing asserts timing.

SIGNOFF_E2E_STORE selects the store backend of every daemon the suite starts: "sqlite" (the
default; sqlite:<workdir>/signoff.db) or "postgres" (a fresh database per daemon directory on
a PostgreSQL server the session starts on a loopback port and stops at its end; pgserver.py).
Tests marked sqlite_only are skipped under postgres.
"""

import atexit
import contextlib
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import warnings
from pathlib import Path

import pytest
import requests

import pgserver

REPO = Path(__file__).resolve().parent.parent.parent
BUILD = Path(os.environ.get("SIGNOFF_BUILD", REPO / "build"))
if not BUILD.is_absolute():
    BUILD = REPO / BUILD
SIGNOFFD = BUILD / "src" / "daemon" / "signoffd"
SIGNOFF = BUILD / "src" / "cli" / "signoff"

START_TIMEOUT = 20.0  # seconds to wait for "listening on"
STOP_TIMEOUT = 15.0  # seconds to wait after SIGTERM before SIGKILL
HTTP_TIMEOUT = 30.0  # seconds for any one HTTP call (long-polls pass their own)

LISTEN_RE = re.compile(rb"listening on http://127\.0\.0\.1:(\d+)")
REQUEST_ID_RE = re.compile(r"^req_[0-9A-HJKMNP-TV-Z]{26}$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # RFC 3339 UTC, ms


def parse_time(text):
    """Seconds since the epoch of an RFC 3339 UTC time with milliseconds."""
    import calendar
    assert isinstance(text, str) and TIME_RE.match(text), \
        f"not an RFC 3339 UTC time with milliseconds: {text!r}"
    base, ms = text[:-1].split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(ms) / 1000.0
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


# --------------------------------------------------------------------------------------------
# The store backend: SQLite files, or databases on a PostgreSQL server of the session's own.

STORE_BACKENDS = ("sqlite", "postgres")
STORE_BACKEND = os.environ.get("SIGNOFF_E2E_STORE") or "sqlite"
POSTGRES = STORE_BACKEND == "postgres"

_pg = None  # the session's PgServer, while the pg_server fixture holds it
_db_serial = itertools.count(1)
_store_databases = {}  # resolved daemon directory -> its database (under postgres)
_test_databases = None  # databases made while a test runs, dropped after it (None: outside)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test needs the SQLite store file itself; "
        "skipped with that reason under SIGNOFF_E2E_STORE=postgres")
    if STORE_BACKEND not in STORE_BACKENDS:
        raise pytest.UsageError(f"SIGNOFF_E2E_STORE={STORE_BACKEND!r}: "
                                f"not one of {', '.join(STORE_BACKENDS)}")
    if POSTGRES:
        ok_, why = pgserver.available()
        if not ok_:
            raise pytest.UsageError(f"SIGNOFF_E2E_STORE=postgres, but {why}")


def pytest_report_header(config):
    return f"store backend: {STORE_BACKEND} (SIGNOFF_E2E_STORE)"


def pytest_collection_modifyitems(config, items):
    if not POSTGRES:
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"SQLite store only: {reason}"))


def store_server():
    """The session's PgServer (under postgres, or once a test has asked for pg_server)."""
    if _pg is None:
        raise RuntimeError("no PostgreSQL server: only a test (through the pg_server fixture, "
                           "or SIGNOFF_E2E_STORE=postgres) can make a database")
    return _pg


def new_database(template=None):
    """A new database on the session's PostgreSQL server (a copy of `template` if given);
    returns its name. One made while a test runs is dropped after that test."""
    name = f"e2e_{next(_db_serial)}"
    store_server().create_database(name, template=template)
    if _test_databases is not None:
        _test_databases.append(name)
    return name


def store_database(workdir):
    """Under postgres: the name of the database of the daemon in `workdir` (made on first use;
    the same one for every config written for that directory, so restarts keep it)."""
    assert POSTGRES, "store_database is for SIGNOFF_E2E_STORE=postgres"
    key = str(Path(workdir).resolve())
    if key not in _store_databases:
        _store_databases[key] = new_database()
    return _store_databases[key]


def bind_store_database(workdir, name):
    """Under postgres: make `name` the database of the daemon in `workdir` (e.g. a copy)."""
    assert POSTGRES, "bind_store_database is for SIGNOFF_E2E_STORE=postgres"
    _store_databases[str(Path(workdir).resolve())] = name


def store_url(workdir):
    """store.url for a daemon in `workdir` on the selected backend."""
    if POSTGRES:
        return store_server().url(store_database(workdir))
    return f"sqlite:{workdir}/signoff.db"


def _sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        if "\0" in v:
            raise ValueError("a NUL cannot be in a PostgreSQL text value")
        return "'" + v.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(v).__name__}")


def _bind(query, args):
    """`query` with each ? replaced by the literal of the next argument (our queries have no ?
    inside quotes)."""
    parts = query.split("?")
    if len(parts) - 1 != len(args):
        raise ValueError(f"{len(parts) - 1} placeholders, {len(args)} arguments: {query}")
    out = [parts[0]]
    for a, rest in zip(args, parts[1:]):
        out += [_sql_literal(a), rest]
    return "".join(out)


def store_rows(workdir, query, *args):
    """The rows of `query` (SQL with ? placeholders) on the store of the daemon in `workdir`,
    as tuples of Python values, on either backend."""
    if not POSTGRES:
        import sqlite3
        conn = sqlite3.connect(str(Path(workdir) / "signoff.db"), timeout=10)
        try:
            return conn.execute(query, args).fetchall()
        finally:
            conn.close()
    out = store_server().psql(store_database(workdir),
                             f"SELECT coalesce(json_agg(q), '[]') FROM ({_bind(query, args)}) q")
    return [tuple(row.values()) for row in json.loads(out)]


def store_sql(workdir, *statements):
    """Run `statements` (SQL text, or (SQL with ? placeholders, args)) in one transaction on
    the store of the daemon in `workdir`, on either backend."""
    if not POSTGRES:
        import sqlite3
        conn = sqlite3.connect(str(Path(workdir) / "signoff.db"), isolation_level=None, timeout=10)
        try:
            conn.execute("BEGIN")
            for s in statements:
                conn.execute(*s) if isinstance(s, tuple) else conn.execute(s)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    text = ["BEGIN;"]
    for s in statements:
        text.append((_bind(s[0], s[1]) if isinstance(s, tuple) else s) + ";")
    text.append("COMMIT;")
    store_server().psql(store_database(workdir), "\n".join(text))


def store_holds(workdir, text):
    """Whether the store of the daemon in `workdir` holds `text` anywhere: under SQLite, the
    bytes of the database file and its journals (signoff.db*); under PostgreSQL, any live row
    of any table (pg_dump of its database), or the bytes of the database's files and of the
    server's write-ahead log after a checkpoint (dead row versions, the journal)."""
    if not POSTGRES:
        blobs = [p.read_bytes() for p in Path(workdir).glob("signoff.db*")]
        return any(text.encode() in b for b in blobs)
    pg, db = store_server(), store_database(workdir)
    if text in pg.dump(db):
        return True
    pg.psql("postgres", "CHECKPOINT")  # what is only in shared buffers reaches the files
    oid = pg.psql(db, "SELECT oid FROM pg_database WHERE datname = current_database()").strip()
    needle = text.encode()
    for d in (pg.data_dir / "base" / oid, pg.data_dir / "pg_wal"):
        for p in d.iterdir():
            try:
                if p.is_file() and needle in p.read_bytes():
                    return True
            except FileNotFoundError:  # a WAL segment recycled meanwhile
                pass
    return False


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A PostgreSQL server of the session's own on a loopback port (pgserver.PgServer),
    stopped and removed at the session's end; skipped where PostgreSQL is not installed."""
    global _pg
    ok_, why = pgserver.available()
    if not ok_:
        pytest.skip(why)
    server = pgserver.PgServer(tmp_path_factory.mktemp("pg") / "server")
    atexit.register(server.cleanup)  # also when the session ends without its teardown
    try:
        server.start()
    except BaseException:
        server.cleanup()
        raise
    _pg = server
    yield server
    _pg = None
    server.cleanup()


@pytest.fixture
def pg_database(pg_server):
    """The URL of a fresh, empty database on pg_server, dropped after the test."""
    name = f"e2e_{next(_db_serial)}"
    url = pg_server.create_database(name)
    yield url
    try:
        pg_server.drop_database(name)
    except pgserver.PgError as e:  # a test that stopped the server for good; it goes anyway
        warnings.warn(f"could not drop database {name}: {e}")


@pytest.fixture(scope="session", autouse=True)
def _store_backend(request):
    """Under postgres, the session's server is up before any daemon is configured."""
    if POSTGRES:
        request.getfixturevalue("pg_server")
    yield STORE_BACKEND


@pytest.fixture(autouse=True)
def _store_databases_of_the_test(_store_backend):
    """Under postgres, drops the databases made while the test ran (daemons are stopped by
    then: this fixture is set up before the test's others and torn down after them).
    Databases made by module- or session-scoped fixtures stay until the server goes."""
    global _test_databases
    if not POSTGRES:
        yield
        return
    _test_databases = made = []
    yield
    _test_databases = None
    for workdir in [w for w, n in _store_databases.items() if n in made]:
        del _store_databases[workdir]
    for name in made:
        try:
            store_server().drop_database(name)
        except pgserver.PgError as e:
            warnings.warn(f"could not drop database {name}: {e}")


# --------------------------------------------------------------------------------------------
# Canonical JSON and digests, computed independently of the daemon.


def canonical_text(v):
    """docs/audit-format.md's canonical JSON: sorted keys, no whitespace, UTF-8 as it is,
    reals as C's %.17g and zero as 0 (where Python's json.dumps would differ)."""
    if isinstance(v, dict):
        return "{" + ",".join(canonical_text(k) + ":" + canonical_text(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canonical_text(x) for x in v) + "]"
    if isinstance(v, float):
        return "0" if v == 0 else "%.17g" % v
    return json.dumps(v, ensure_ascii=False)


def canonical_json(obj):
    """The canonical JSON of `obj` as bytes (what digests and the audit chain hash)."""
    return canonical_text(obj).encode("utf-8")


def digest_of(action):
    return hashlib.sha256(canonical_json(action)).hexdigest()


def new_token():
    return "so_" + secrets.token_hex(32)


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# The cast. Tokens are fresh for every test session.


class Principal:
    def __init__(self, pid, kind, owner=None, groups=None):
        self.id = pid
        self.kind = kind
        self.owner = owner
        self.groups = list(groups or [])
        self.token = new_token()

    def config(self):
        entry = {"id": self.id, "kind": self.kind}
        if self.owner:
            entry["owner"] = self.owner
        if self.groups:
            entry["groups"] = self.groups
        entry["token_sha256"] = sha256_hex(self.token)
        return entry


CAST = {
    p.id: p
    for p in [
        Principal("deploy-bot", "agent", owner="alice"),
        Principal("report-bot", "agent", owner="carol"),
        # An agent that configuration put into the reviewers' and auditors' groups: it can see
        # every request, and must still never review one.
        Principal("ops-bot", "agent", groups=["sre", "auditors"]),
        Principal("ci", "service"),
        Principal("alice", "human", groups=["sre"]),
        Principal("bob", "human", groups=["sre"]),
        Principal("carol", "human", groups=["sre", "admins"]),
        Principal("dave", "human", groups=["dba"]),
        Principal("erin", "human", groups=["auditors"]),
    ]
}

DEFAULT_POLICY = {
    "default": "review",
    "approvers": {"group": "sre", "count": 2},
    "ttl": "30m",
    "grant_ttl": "10m",
}


# --------------------------------------------------------------------------------------------
# A small YAML writer (block mappings, flow lists of scalars), so configs need no PyYAML.

_YAML_SPECIAL = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if (
        re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", s)
        and s.lower() not in _YAML_SPECIAL
        and not re.fullmatch(r"[0-9.eE+-]+", s)
    ):
        return s
    return json.dumps(s)


def to_yaml(obj, indent=0):
    pad = "  " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict):
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 1))
            elif isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 1))
            elif isinstance(v, list):
                lines.append(f"{pad}{k}: [" + ", ".join(_yaml_scalar(x) for x in v) + "]")
            else:
                lines.append(f"{pad}{k}: {_yaml_scalar(v)}")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                sub = to_yaml(item, indent + 1).split("\n")
                first = sub[0].lstrip()
                lines.append(f"{pad}- {first}")
                lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}")
    else:
        lines.append(pad + _yaml_scalar(obj))
    return "\n".join(line for line in lines if line != "")


def make_config(workdir, policy=None, server=None, principals=None, extra=None):
    pol = dict(DEFAULT_POLICY)
    pol.update(policy or {})
    srv = {"listen": "127.0.0.1:0"}
    srv.update(server or {})
    cfg = {
        "server": srv,
        "store": {"url": store_url(workdir)},
        "audit": {"signing_key_file": f"{workdir}/audit.key"},
        "auth": {"admin_group": "admins", "auditor_group": "auditors"},
        "principals": [p.config() for p in (principals or CAST.values())],
        "policy": pol,
    }
    cfg.update(extra or {})
    return to_yaml(cfg) + "\n"


# --------------------------------------------------------------------------------------------
# HTTP helpers.


def error_of(resp, status, code=None):
    """Assert `resp` is an error with this status, in the documented JSON shape; return its code."""
    assert resp.status_code == status, (
        f"{resp.request.method} {resp.request.path_url}: expected {status} {code or ''}, "
        f"got {resp.status_code}: {resp.text[:500]}"
    )
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.text[:500]!r}")
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"bad error shape: {body}"
    err = body["error"]
    assert isinstance(err.get("code"), str) and err["code"], f"error without code: {body}"
    assert isinstance(err.get("message"), str), f"error without message: {body}"
    if code is not None:
        assert err["code"] == code, f"expected error code {code!r}, got {err['code']!r}: {body}"
    return err["code"]


def expect_error(resp, status, code):
    error_of(resp, status, code)


def expect_one_of(resp, *allowed):
    """Assert `resp` is an error matching one of the (status, code) pairs in `allowed`.

    Only for places where the contract leaves two documented refusals equally right, e.g. an
    action by a principal that may not even see the request (404 not_found) or may see it but
    is refused (403 ...)."""
    statuses = [st for st, _ in allowed]
    assert resp.status_code in statuses, (
        f"{resp.request.method} {resp.request.path_url}: expected one of {list(allowed)}, "
        f"got {resp.status_code}: {resp.text[:500]}")
    code = error_of(resp, resp.status_code)
    assert (resp.status_code, code) in allowed, f"expected one of {list(allowed)}, got {code}"


def ok(resp, status=200):
    assert resp.status_code == status, (
        f"{resp.request.method} {resp.request.path_url}: expected {status}, "
        f"got {resp.status_code}: {resp.text[:500]}"
    )
    return resp.json()


def wait_until(fn, timeout=20.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def sample_action(**overrides):
    action = {
        "kind": "shell",
        "command": ["kubectl", "rollout", "restart", "deploy/api"],
        "resource": "deploy/api",
        "environment": "production",
    }
    action.update(overrides)
    return action


class Client:
    """One principal's view of the API. Follows the daemon across restarts."""

    def __init__(self, daemon, token, name=None):
        self.daemon = daemon
        self.token = token
        self.name = name

    def headers(self, extra=None):
        h = {}
        if self.token is not None:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(extra or {})
        return h

    def request(self, method, path, json_body=None, data=None, headers=None, timeout=HTTP_TIMEOUT,
                params=None):
        h = self.headers(headers)
        if json_body is not None:
            data = json.dumps(json_body)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        return requests.request(method, self.daemon.url + path, data=data, headers=h,
                                timeout=timeout, params=params)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json_body=body, **kw)

    # Verbs -----------------------------------------------------------------------------------

    def submit_raw(self, action=None, intent="e2e test", **fields):
        body = {"action": action if action is not None else sample_action(), "intent": intent}
        body.update(fields)
        return self.post("/v1/requests", body)

    def submit(self, action=None, intent="e2e test", expect=201, **fields):
        return ok(self.submit_raw(action, intent, **fields), expect)

    def show_raw(self, rid, wait=None, timeout=HTTP_TIMEOUT):
        path = f"/v1/requests/{rid}"
        if wait is not None:
            path += f"?wait={wait}"
        return self.get(path, timeout=timeout)

    def show(self, rid):
        return ok(self.show_raw(rid))

    def review(self, rid, decision, comment=None):
        body = {"decision": decision}
        if comment is not None:
            body["comment"] = comment
        return self.post(f"/v1/requests/{rid}/reviews", body)

    def approve(self, rid, comment=None):
        return self.review(rid, "approve", comment)

    def deny(self, rid, comment=None):
        return self.review(rid, "deny", comment)

    def cancel(self, rid):
        return self.post(f"/v1/requests/{rid}/cancel", {})

    def claim(self, rid, digest):
        return self.post(f"/v1/requests/{rid}/claim", {"digest": digest})

    def result(self, rid, exit_code, detail=None):
        body = {"exit_code": exit_code}
        if detail is not None:
            body["detail"] = detail
        return self.post(f"/v1/requests/{rid}/result", body)

    def list(self, status=None, limit=None):
        params = {}
        if status:
            params["status"] = status
        if limit:
            params["limit"] = limit
        return ok(self.get("/v1/requests", params=params))

    def audit_events(self, limit=100):
        """Every audit event, following `next` page by page."""
        events, after = [], None
        for _ in range(10000):
            params = {"limit": limit}
            if after is not None:
                params["after"] = after
            page = ok(self.get("/v1/audit", params=params))
            events.extend(page["events"])
            nxt = page.get("next")
            if nxt is None or not page["events"]:
                return events
            assert after is None or nxt > after, f"audit paging does not advance: {after} -> {nxt}"
            after = nxt
        raise AssertionError("audit paging never ended")


# --------------------------------------------------------------------------------------------
# The daemon process.


class Daemon:
    def __init__(self, workdir, config_text):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "signoff.yaml"
        self.config_path.write_text(config_text)
        self.proc = None
        self.port = None
        self.incarnation = 0
        self.logs = []
        self._reader = None

    @property
    def url(self):
        assert self.port is not None, "daemon is not running"
        return f"http://127.0.0.1:{self.port}"

    def client(self, name):
        return Client(self, CAST[name].token, name)

    def anonymous(self, token=None):
        return Client(self, token)

    def start(self):
        if not SIGNOFFD.exists():
            pytest.fail(f"signoffd is not built: {SIGNOFFD} (set SIGNOFF_BUILD)")
        self.incarnation += 1
        log_path = self.workdir / f"signoffd-{self.incarnation}.stderr"
        out_path = self.workdir / f"signoffd-{self.incarnation}.stdout"
        self.logs.append(log_path)
        self.port = None
        found = threading.Event()
        port_box = []
        stdout = open(out_path, "wb")
        self.proc = subprocess.Popen(
            [str(SIGNOFFD), "-c", str(self.config_path)],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
        )
        stdout.close()

        def drain(pipe, path):
            with open(path, "wb") as log:
                for line in iter(pipe.readline, b""):
                    log.write(line)
                    log.flush()
                    if not found.is_set():
                        m = LISTEN_RE.search(line)
                        if m:
                            port_box.append(int(m.group(1)))
                            found.set()
            pipe.close()

        self._reader = threading.Thread(target=drain, args=(self.proc.stderr, log_path), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not found.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                pytest.fail(
                    f"signoffd exited with {self.proc.returncode} before listening:\n"
                    + self.log_text(self.incarnation)
                )
            if time.monotonic() > deadline:
                self._kill()
                pytest.fail(f"signoffd did not log 'listening on' within {START_TIMEOUT}s:\n"
                            + self.log_text(self.incarnation))
        self.port = port_box[0]
        return self

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        if self._reader:
            self._reader.join(5)

    def stop(self):
        """SIGTERM, wait, then SIGKILL. Returns the exit status (None if it had to be killed)."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()
            rc = None
        if self._reader:
            self._reader.join(5)
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        if self._reader:
            self._reader.join(5)
        self.port = None

    def restart(self):
        """kill -9, then start again on the same directory (same store, same key): the same
        configuration file, so the same SQLite file or PostgreSQL database."""
        self.kill9()
        return self.start()

    def log_text(self, incarnation=None):
        paths = self.logs if incarnation is None else [self.logs[incarnation - 1]]
        out = []
        for p in paths:
            try:
                out.append(p.read_text(errors="replace"))
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def sanitizer_reports(self):
        text = self.log_text()
        return [m for m in SANITIZER_MARKERS if m in text]


@pytest.fixture
def start_daemon(tmp_path):
    """Factory: start_daemon(policy={...}, server={...}) -> running Daemon, stopped at teardown."""
    daemons = []

    def factory(policy=None, server=None, principals=None, extra=None):
        workdir = tmp_path / f"daemon{len(daemons)}"
        workdir.mkdir()
        d = Daemon(workdir, make_config(workdir, policy, server, principals, extra))
        daemons.append(d)
        return d.start()

    yield factory
    problems = []
    for d in daemons:
        d.stop()
        reports = d.sanitizer_reports()
        if reports:
            problems.append(f"{d.workdir}: sanitizer reported {reports}:\n{d.log_text()[-4000:]}")
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def daemon(start_daemon):
    """A daemon with the default policy: review by 2 distinct humans of group sre."""
    return start_daemon()


def free_closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------------------------
# The CLI.


def cli_env(url, token):
    env = dict(os.environ)
    env.pop("SIGNOFF_URL", None)
    env.pop("SIGNOFF_TOKEN", None)
    if url is not None:
        env["SIGNOFF_URL"] = url
    if token is not None:
        env["SIGNOFF_TOKEN"] = token
    return env


def cli_path():
    if not SIGNOFF.exists():
        pytest.fail(f"signoff CLI is not built: {SIGNOFF} (set SIGNOFF_BUILD)")
    return str(SIGNOFF)


def spawn_cli(args, url, token, cwd):
    return subprocess.Popen(
        [cli_path()] + list(args),
        cwd=cwd,
        env=cli_env(url, token),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def make_cert(tmp_path):
    """A self-signed certificate for 127.0.0.1: (cert path, key path)."""
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed to make a test certificate")
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@contextlib.contextmanager
def https_daemon(tmp_path, policy=None):
    """A signoffd serving HTTPS with a fresh certificate: yields (base URL, cert path).
    Stopped at the end; a sanitizer report in its log fails the test."""
    cert, key = make_cert(tmp_path)
    cfg = tmp_path / "signoff.yaml"
    cfg.write_text(make_config(tmp_path, policy=policy,
                               server={"tls_cert_file": str(cert), "tls_key_file": str(key)}))
    proc = subprocess.Popen([str(SIGNOFFD), "-c", str(cfg)], cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    seen = b""
    try:
        port, deadline = None, time.monotonic() + START_TIMEOUT
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
            m = re.search(rb"listening on https://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
        assert port, f"no https listening line: {seen!r}"
        yield f"https://127.0.0.1:{port}", cert
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
        seen += proc.stderr.read()
        proc.stderr.close()
    reports = [m for m in SANITIZER_MARKERS if m.encode() in seen]
    assert not reports, f"sanitizer reported {reports}:\n{seen.decode(errors='replace')[-4000:]}"


def finish_process(proc, timeout, what):
    """Wait for `proc` to end, bounded: (returncode, stdout, stderr) as text. Past `timeout`
    it is killed and the test fails, quoting the end of its stderr."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=30)
        raise AssertionError(f"{what} did not finish within {timeout}s: "
                             f"{(err or b'').decode(errors='replace')[-2000:]}")
    return (proc.returncode, (out or b"").decode(errors="replace"),
            (err or b"").decode(errors="replace"))


def reap_process(proc):
    """Teardown: kill `proc` if it still runs, and close its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe:
            pipe.close()


def run_cli(args, url, token, cwd, timeout=60):
    return subprocess.run(
        [cli_path()] + list(args),
        cwd=cwd,
        env=cli_env(url, token),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
