"""A PostgreSQL server of the tests' own, on a loopback port, for the black-box tests.

    server = PgServer(workdir)
    server.start()                      # initdb on the first start; same port ever after
    url = server.create_database("t1")  # postgresql://signoff@127.0.0.1:PORT/t1
    server.psql("t1", "SELECT 1")       # '1\\n'
    server.kill9(); server.start()      # a crash, then the same server again
    server.cleanup()                    # stopped, whatever state it is in; directories gone

The server trusts every connection from 127.0.0.1 as the superuser `signoff` (no password)
and listens nowhere else; its Unix socket is in its own directory. fsync is off: the tests
crash signoffd, never the machine. The write-ahead log is kept small (max_wal_size), so that
a test can read all of it. Every wait is bounded (the constants below); a wait that
runs out raises PgError naming what did not happen, with the end of the server's log.

initdb refuses to run as root: as root, initdb, pg_ctl and the server run as `nobody`, and the
data directory is made under /tmp when `nobody` could not reach `workdir`. PG_BINDIR overrides
where the binaries are looked for (default Debian's /usr/lib/postgresql/15/bin, else the
newest /usr/lib/postgresql/*/bin).
"""

import glob
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"
SERVER_TOOLS = ("initdb", "pg_ctl", "postgres", "psql")
SUPERUSER = "signoff"
SERVER_USER = "nobody"  # who runs the server when the tests run as root

START_TIMEOUT = 30  # seconds pg_ctl waits for the server to start or to stop
COMMAND_TIMEOUT = 90  # seconds any one initdb, pg_ctl, psql or pg_dump may take
EXIT_TIMEOUT = 30  # seconds to wait for the server's processes to go after SIGKILL
PORT_TRIES = 10  # free ports tried on the first start
# Below Linux's ephemeral range (32768..60999), so an outgoing connection never takes the port
# while the server is down between a stop and a start.
PORT_RANGE = (20000, 32000)
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes with the NUL; ".s.PGSQL.NNNNN" included

DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# libpq reads these when a command line does not say; every command must see only this server.
_PG_ENV = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
           "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGSSLMODE", "PGAPPNAME",
           "PGCONNECT_TIMEOUT", "PGDATA", "PGTZ", "PGCLIENTENCODING")


class PgError(RuntimeError):
    """A server command failed or a bounded wait ran out."""


def bindir():
    """Where initdb, pg_ctl, postgres and psql are looked for."""
    if os.environ.get("PG_BINDIR"):
        return os.environ["PG_BINDIR"]
    if _has_tools(DEFAULT_BINDIR):
        return DEFAULT_BINDIR
    found = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if _has_tools(d)]
    found.sort(key=lambda d: int(re.sub(r"\D", "", d.split("/")[-2]) or 0))
    return found[-1] if found else DEFAULT_BINDIR


def _has_tools(d):
    return all(os.access(os.path.join(d, t), os.X_OK) for t in SERVER_TOOLS)


def available():
    """(True, what) when a server can be run here; (False, why not) otherwise."""
    d = bindir()
    missing = [t for t in SERVER_TOOLS if not os.access(os.path.join(d, t), os.X_OK)]
    if missing:
        return False, (f"PostgreSQL is not installed: no {', '.join(missing)} in {d} "
                       "('scripts/bootstrap test' installs it; PG_BINDIR says where else to look)")
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            return False, "running as root, and no runuser to run PostgreSQL as another user"
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return False, f"running as root, and no user {SERVER_USER!r} to run PostgreSQL as"
    return True, f"PostgreSQL in {d}"


def _clean_env():
    env = {k: v for k, v in os.environ.items() if k not in _PG_ENV}
    env["LC_ALL"] = "C"
    return env


def _process_state(pid):
    """'R', 'S', 'Z', ... for a live or zombie process; None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def _alive(pid):
    state = _process_state(pid)
    return state is not None and state not in ("Z", "X")


def _children(pid):
    """The pids whose parent is `pid`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _reachable_by(path, uid):
    """Whether user `uid` (not root, in no group that matters) can reach `path`."""
    p = Path(path).resolve()
    for d in [p] + list(p.parents):
        try:
            st = os.stat(d)
        except FileNotFoundError:
            continue
        if st.st_uid != uid and not st.st_mode & 0o001:
            return False
    return True


class PgServer:
    """One PostgreSQL server in `workdir` (created when missing; a directory for this server
    alone). Not started until start(). cleanup() always stops it and removes what it made.
    durable=True keeps PostgreSQL's fsync, synchronous_commit and full_page_writes (benchmarks)."""

    def __init__(self, workdir, durable=False):
        self.workdir = Path(workdir).resolve()
        self.durable = durable
        self.bindir = bindir()
        self.port = None  # chosen on the first start, kept across restarts
        self.dir = None  # holds data/, run/ (socket, server.log) and the command logs
        self._made_workdir = False
        self._private_dir = False  # self.dir is a temporary directory outside workdir
        self._as_user = None
        if os.geteuid() == 0:
            self._as_user = pwd.getpwnam(SERVER_USER)

    # Paths -----------------------------------------------------------------------------------

    @property
    def data_dir(self):
        return self.dir / "data"

    @property
    def run_dir(self):
        return self.dir / "run"

    @property
    def log_path(self):
        return self.run_dir / "server.log"

    def log_text(self, tail=4000):
        """The end of the server's log ('' before the first start)."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except (FileNotFoundError, TypeError):
            return ""

    # Commands --------------------------------------------------------------------------------

    def _tool(self, name):
        return os.path.join(self.bindir, name)

    def _as_server(self, argv):
        if self._as_user:
            return ["runuser", "-u", self._as_user.pw_name, "--"] + argv
        return argv

    def _run(self, argv, what, input_text=None, timeout=COMMAND_TIMEOUT, check=True):
        """Run one command, bounded; (returncode, stdout, stderr)."""
        try:
            proc = subprocess.run(argv, cwd=self.dir, env=_clean_env(), input=input_text,
                                  stdin=None if input_text is not None else subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PgError(f"{what}: did not finish within {timeout}s\n{self.log_text()}")
        if check and proc.returncode != 0:
            raise PgError(f"{what}: exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return proc.returncode, proc.stdout, proc.stderr

    def _pg_ctl(self, args, what, check=True):
        # pg_ctl's own output goes to a file: a pipe could be inherited by the postmaster and
        # keep the call waiting for the server to end.
        out_path = self.dir / "pg_ctl.out"
        with open(out_path, "w") as out:
            argv = self._as_server([self._tool("pg_ctl"), "-D", str(self.data_dir)] + args)
            try:
                rc = subprocess.run(argv, cwd=self.dir, env=_clean_env(), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    timeout=START_TIMEOUT + 30).returncode
            except subprocess.TimeoutExpired:
                rc = None
        text = out_path.read_text(errors="replace")
        if check and rc != 0:
            raise PgError(f"{what}: pg_ctl {'timed out' if rc is None else f'exited {rc}'}: "
                          f"{text.strip()}\n--- server log ---\n{self.log_text()}")
        return rc, text

    # Life cycle ------------------------------------------------------------------------------

    def _make_dirs(self):
        if not self.workdir.exists():
            self.workdir.mkdir(parents=True)
            self._made_workdir = True
        socket_path = self.workdir / "run" / f".s.PGSQL.{PORT_RANGE[1]}"
        if (self._as_user and not _reachable_by(self.workdir, self._as_user.pw_uid)) or \
                len(str(socket_path)) > SOCKET_PATH_MAX:
            self.dir = Path(tempfile.mkdtemp(prefix="so-pg.", dir="/tmp"))
            self._private_dir = True
        else:
            self.dir = self.workdir
        os.chmod(self.dir, 0o755)  # the server's user must reach data/ and run/ inside
        self.data_dir.mkdir(mode=0o700)
        self.run_dir.mkdir(mode=0o755)
        if self._as_user:
            for d in (self.data_dir, self.run_dir):
                os.chown(d, self._as_user.pw_uid, self._as_user.pw_gid)

    def _initdb(self):
        ok, why = available()
        if not ok:
            raise PgError(why)
        self._make_dirs()
        self._run(self._as_server([self._tool("initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                                   "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync",
                                   "--no-instructions"]),
                  "initdb")

    def _postmaster_pid(self):
        """The pid in postmaster.pid, or None."""
        if self.dir is None:
            return None
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (FileNotFoundError, ValueError):
            return None

    def running(self):
        pid = self._postmaster_pid()
        return pid is not None and _alive(pid)

    def _try_start(self, port):
        """(started, what pg_ctl and the server's log said during this attempt)."""
        try:
            seen = self.log_path.stat().st_size
        except FileNotFoundError:
            seen = 0
        opts = (f"-p {port} -c listen_addresses=127.0.0.1 -k {self.run_dir} "
                + ("" if self.durable else
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off ")
                + "-c max_connections=200 -c max_wal_size=128MB -c min_wal_size=32MB")
        rc, text = self._pg_ctl(["-l", str(self.log_path), "-w", "-t", str(START_TIMEOUT),
                                 "-o", opts, "start"], "start", check=False)
        try:
            with open(self.log_path, "rb") as f:
                f.seek(seen)
                text += f.read().decode(errors="replace")
        except FileNotFoundError:
            pass
        return rc == 0, text

    def start(self):
        """Start the server (initdb first, the first time). The port chosen on the first start
        is kept: a start after stop(), restart() or kill9() listens where it did before."""
        if self.dir is None:
            self._initdb()
        if self.running():
            return self
        self._remove_stale_pid_file()
        if self.port is not None:
            # Right after kill9() the old processes may still hold the shared memory for a
            # moment ("... is still in use"); try again, bounded.
            deadline = time.monotonic() + EXIT_TIMEOUT
            while True:
                ok, text = self._try_start(self.port)
                if ok:
                    return self
                if self.running():  # up after pg_ctl gave up waiting: do not leak it
                    self.kill9()
                if time.monotonic() > deadline or "in use" not in text:
                    raise PgError(f"the server did not start again on 127.0.0.1:{self.port}:\n"
                                  f"{text.strip()[-4000:]}")
                time.sleep(0.5)
        rng = random.SystemRandom()
        tried = []
        for _ in range(PORT_TRIES * 3):
            if len(tried) == PORT_TRIES:
                break
            port = rng.randint(*PORT_RANGE)
            if not self._port_free(port):
                continue
            tried.append(port)
            ok, text = self._try_start(port)
            if ok:
                self.port = port
                return self
            if self.running():
                self.kill9()
            if "already in use" not in text:  # not a port clash: another try will not help
                raise PgError(f"the server did not start on 127.0.0.1:{port}:\n"
                              f"{text.strip()[-4000:]}")
        raise PgError(f"the server did not start on any of the ports {tried}, all in use")

    @staticmethod
    def _port_free(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def _remove_stale_pid_file(self):
        # A postmaster killed with SIGKILL leaves postmaster.pid and its socket's lock file
        # behind. The server clears them itself unless the pid in them still names a process:
        # a zombie nobody reaped (a container's init may not), or a process that took the pid
        # since. This server's postmaster is gone, so files naming a dead pid are stale.
        if self.dir is None:
            return
        for lock in [self.data_dir / "postmaster.pid"] + list(self.run_dir.glob(".s.PGSQL.*.lock")):
            try:
                pid = int(lock.read_text().split("\n", 1)[0])
            except (FileNotFoundError, ValueError):
                continue
            if not _alive(pid):
                lock.unlink(missing_ok=True)

    def stop(self, mode="fast"):
        """Stop the server: mode "smart", "fast" or "immediate" (pg_ctl -m). Bounded: a server
        that does not stop within START_TIMEOUT is killed."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"stop mode {mode!r}: not smart, fast or immediate")
        if not self.running():
            return
        rc, _ = self._pg_ctl(["-m", mode, "-w", "-t", str(START_TIMEOUT), "stop"], "stop",
                             check=False)
        if rc != 0 or self.running():
            self.kill9()

    def restart(self):
        """stop() (fast), then start() on the same port."""
        self.stop()
        return self.start()

    def kill9(self):
        """SIGKILL the postmaster, as a crash would; then wait, bounded, until all of its
        processes are gone (killing any that linger), so that start() works again."""
        pid = self._postmaster_pid()
        if pid is None or not _alive(pid):
            return
        children = _children(pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + EXIT_TIMEOUT
        # Backends notice the postmaster's death and exit by themselves; give them a moment,
        # then end the stragglers (this server's own processes, by pid).
        grace = time.monotonic() + 5
        while True:
            left = [p for p in [pid] + children if _alive(p)]
            if not left:
                break
            if time.monotonic() > grace:
                for p in left:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if time.monotonic() > deadline:
                raise PgError(f"processes {left} of the killed server did not exit "
                              f"within {EXIT_TIMEOUT}s")
            time.sleep(0.05)
        self._remove_stale_pid_file()

    def cleanup(self):
        """Stop the server whatever its state, and remove its directories. Safe to call twice."""
        try:
            if self.running():
                self.stop("immediate")
        finally:
            if self.running():
                self.kill9()
            if self.dir is not None and self._private_dir:
                shutil.rmtree(self.dir, ignore_errors=True)
            if self._made_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            elif self.dir is not None and not self._private_dir:
                for name in ("data", "run", "pg_ctl.out"):
                    p = self.dir / name
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # Databases -------------------------------------------------------------------------------

    def url(self, dbname):
        """The URL signoffd's store.url takes for `dbname` on this server."""
        if self.port is None:
            raise PgError("the server has not been started: no port yet")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    @staticmethod
    def _check_name(name):
        if not DB_NAME_RE.match(name or ""):
            raise ValueError(f"database name {name!r}: not [a-z_][a-z0-9_]*, at most 63")

    def create_database(self, name, template=None):
        """A new, empty database (or a copy of `template`, which nothing may be connected to);
        returns its URL."""
        self._check_name(name)
        sql = f'CREATE DATABASE "{name}"'
        if template is not None:
            self._check_name(template)
            sql += f' TEMPLATE "{template}"'
        self.psql("postgres", sql)
        return self.url(name)

    def drop_database(self, name):
        """Drop `name` if it exists, ending any connection to it."""
        self._check_name(name)
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _conn_args(self, dbname):
        if self.port is None:
            raise PgError("the server has not been started: no port yet")
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", dbname]

    def psql(self, dbname, sql, timeout=COMMAND_TIMEOUT):
        """Run `sql` (one or more statements, each on its own; the first error stops it and
        raises PgError) in `dbname` as the superuser; returns psql's output: rows only,
        unaligned, fields separated by '|', one row a line."""
        _, out, _ = self._run([self._tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               *self._conn_args(dbname), "-f", "-"],
                              f"psql {dbname}", input_text=sql, timeout=timeout)
        return out

    def psql_process(self, dbname):
        """An interactive psql on `dbname` (stdin, stdout and stderr pipes, text), for a test
        that must hold a session open (a lock, a transaction). The caller ends it."""
        return subprocess.Popen([self._tool("psql"), "-X", "-q", "-A", "-t", "-v",
                                 "ON_ERROR_STOP=1", *self._conn_args(dbname)],
                                cwd=self.dir, env=_clean_env(), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                bufsize=1)

    def dump(self, dbname, timeout=COMMAND_TIMEOUT):
        """pg_dump of `dbname`: every table's definition and live rows, as SQL text."""
        _, out, _ = self._run([self._tool("pg_dump"), "--no-owner", *self._conn_args(dbname)],
                              f"pg_dump {dbname}", timeout=timeout)
        return out
