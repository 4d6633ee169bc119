"""The restore test: a backup streamed into a scratch PostgreSQL, checked, and always dropped.

The scratch instance is private to the check: `initdb` in a fresh directory under
`restore.scratch_dir` (owned by the postgres OS user when we run as root), a free loopback
port, settings that trade durability for speed (it is thrown away), and its own session so a
terminal's Ctrl-C reaches the check, which then stops it, not the server directly. It is
removed in a `finally` with SIGINT/SIGTERM held off until the removal is done, by an `atexit`
hook as a second net, and directories left by a process killed with SIGKILL are reaped by
the next run.

A pg_dump archive goes from S3 to `pg_restore` through a pipe, one chunk at a time; the same
chunks feed the integrity hash, so one download serves both checks and memory stays flat.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sre.checks.pg_client import child_env, connect, pg_binary, split_dsn, with_dbname
from sre.errors import SreError
from sre.local import signals
from sre.local.postgres import PgServer, chown_for_postgres, pg_user
from sre.local.procs import free_port, pid_alive, run, wait_until
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.config import BackupConfig, BackupRestore

log = get_logger("sre.checks.restore")

SCRATCH_PREFIX = "sre-restore-"
# The unprivileged role a dump is restored and checked as, in the scratch instance.
RESTORE_ROLE = "sre_restore"
# Settings for a server whose data is discarded: no fsync, minimal WAL (COPY into a table
# created in the same transaction then skips WAL altogether), no archiving or replication.
SCRATCH_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "archive_mode": "off",
    "max_wal_size": "'4GB'",
    "primary_conninfo": "''",
    "restore_command": "''",
    "hot_standby": "off",
    "shared_preload_libraries": "''",
    "log_min_messages": "warning",
    "logging_collector": "off",
}
# Directories PostgreSQL needs that a file-by-file copy of a data directory loses (they are empty).
EMPTY_DIRS = ("pg_commit_ts", "pg_dynshmem", "pg_logical/mappings", "pg_logical/snapshots", "pg_notify",
              "pg_replslot", "pg_serial", "pg_snapshots", "pg_stat", "pg_stat_tmp", "pg_subtrans",
              "pg_tblspc", "pg_twophase", "pg_wal/archive_status")

Progress = Callable[[str, int, int | None], None]  # (phase, bytes done, bytes in all)


class RestoreError(SreError):
    """The restore could not be done; the message is the reason the check reports."""

    exit_code = 1


class Interrupted(KeyboardInterrupt):
    """SIGTERM, or the service shutting down, while a restore runs."""


# ---------------------------------------------------------------- signals


def _interrupted(signum: int) -> Interrupted:
    return Interrupted(f"signal {signal.Signals(signum).name}")


def interruptible() -> contextlib.AbstractContextManager[None]:
    """SIGTERM raises like SIGINT does, so the scratch instance's `finally` runs on either."""
    return signals.interruptible(_interrupted)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Teardown runs to its end: SIGINT/SIGTERM arriving meanwhile are noted and raised after."""
    got: list[int] = []
    try:
        with signals.deferred() as got:
            yield
    finally:
        if got:
            raise _interrupted(got[0])


# ---------------------------------------------------------------- scratch servers

_LIVE: set[Scratch] = set()
_LIVE_LOCK = threading.Lock()


def _drop_all_live() -> None:
    for s in list(_LIVE):
        with contextlib.suppress(Exception):
            s.drop()


atexit.register(_drop_all_live)


class Scratch:
    """Where a restore goes; `drop()` removes every trace and may be called more than once."""

    database: str = "postgres"

    def database_dsn(self) -> str:
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError

    def _track(self) -> None:
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _untrack(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        with signals_held():
            self.drop()


class ScratchInstance(Scratch):
    """A private PostgreSQL in a temporary directory: initdb'd fresh, or a restored data directory."""

    def __init__(self, restore: BackupRestore, database: str = "postgres") -> None:
        self.restore = restore
        self.database = database
        self.server: Any = None
        self.started = 0.0
        self.user = "postgres"
        restore.scratch_dir.mkdir(parents=True, exist_ok=True)
        reap_stale(restore.scratch_dir)
        # The owner's PID in the name lets a later run tell a live restore from a leftover.
        self.root = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=restore.scratch_dir))
        self._track()
        try:
            self.root.chmod(0o700)
            chown_for_postgres(self.root)
        except BaseException:
            self.drop()
            raise
        self.datadir = self.root / "data"
        self.port = free_port()

    def _run_as_postgres(self, cmd: list[str], timeout: float = 120) -> None:
        run(cmd, user=pg_user(), timeout=timeout, component="scratch postgresql",
            cwd=self.root)

    def init(self) -> None:
        self._run_as_postgres([pg_binary("initdb", self.restore.pg_bin), "-D", str(self.datadir), "-U", "postgres",
                               "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"])
        self._configure()

    def adopt(self) -> None:
        """Make a restored base backup startable here: ours, private, a primary, this port only."""
        for sub in EMPTY_DIRS:
            (self.datadir / sub).mkdir(parents=True, exist_ok=True)
        for signal_file in ("standby.signal", "recovery.signal", "postmaster.pid"):
            (self.datadir / signal_file).unlink(missing_ok=True)
        for path in [self.datadir, *self.datadir.rglob("*")]:
            chown_for_postgres(path)
            if path.is_dir():
                path.chmod(0o700)
        self._configure()

    def _configure(self) -> None:
        # postgresql.auto.conf is read last: these win over whatever the source had.
        with (self.datadir / "postgresql.auto.conf").open("a") as fh:
            fh.write("\n# scratch instance of the restore test\n")
            for k, v in SCRATCH_SETTINGS.items():
                fh.write(f"{k} = {v}\n")

    def start(self, timeout: float = 60.0) -> None:
        self.server = PgServer("restore-scratch", "scratch", self.datadir, self.port, self.root / "postgres.log")
        t = time.monotonic()
        try:
            self.server.start(timeout=timeout)
        except SreError as exc:
            raise RestoreError(f"the scratch PostgreSQL did not start: {exc}{self._log_tail()}") from None
        self.started = time.monotonic() - t

    def _log_tail(self) -> str:
        try:
            lines = (self.root / "postgres.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        interesting = [ln for ln in lines if any(w in ln for w in ("FATAL", "PANIC", "ERROR"))] or lines
        return f" ({interesting[-1].strip()})" if interesting else ""

    def create_database(self, name: str) -> None:
        """The database a dump goes into, owned by RESTORE_ROLE, which then restores and checks it.

        A dump is data from outside: what it makes the server run (functions, triggers, default
        expressions, index expressions) runs without superuser rights."""
        from psycopg import sql

        role = sql.Identifier(RESTORE_ROLE)
        with connect(self.dsn("postgres")) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                                 "NOBYPASSRLS").format(role))
            if name == "postgres":
                conn.execute(sql.SQL("ALTER DATABASE postgres OWNER TO {}").format(role))
            else:
                create = sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), role)
                # FILE_COPY copies template1's few files; the default (WAL_LOG, 15+) writes every block as WAL.
                if conn.info.server_version >= 150000:
                    create = sql.SQL("{} STRATEGY = FILE_COPY").format(create)
                conn.execute(create)
        self.user = RESTORE_ROLE

    def dsn(self, database: str, user: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={user} dbname={database} connect_timeout=5"

    def database_dsn(self) -> str:
        """As the unprivileged restore role once create_database made it; the superuser before."""
        return self.dsn(self.database, self.user)

    def drop(self) -> None:
        try:
            if self.server is not None:
                # Crash-stop: the data is discarded, so there is nothing to flush.
                self.server.stop(mode="immediate")
                self.server = None
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self._untrack()


class ScratchDatabase(Scratch):
    """A throwaway database on a configured scratch server."""

    def __init__(self, restore: BackupRestore) -> None:
        assert restore.scratch_dsn is not None
        self.server_dsn = restore.scratch_dsn.resolve().get_secret_value()
        self.database = f"sre_restore_{os.getpid()}_{secrets.token_hex(4)}"
        self.created = False
        self.started = 0.0

    def init(self) -> None:
        from psycopg import sql

        with connect(self.server_dsn) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        self.created = True
        self._track()

    def database_dsn(self) -> str:
        return with_dbname(self.server_dsn, self.database)

    def drop(self) -> None:
        if not self.created:
            return
        from psycopg import sql

        try:
            with connect(self.server_dsn) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database)))
            self.created = False
        finally:
            self._untrack()


def reap_stale(scratch_dir: Path) -> list[Path]:
    """Remove scratch instances whose owning process is gone (it was killed without cleanup)."""
    reaped: list[Path] = []
    try:
        candidates = list(scratch_dir.glob(f"{SCRATCH_PREFIX}*"))
    except OSError:
        return reaped
    for root in candidates:
        m = re.match(rf"{SCRATCH_PREFIX}(\d+)-", root.name)
        if m is None or pid_alive(int(m.group(1))):
            continue
        pidfile = root / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().splitlines()[0])
            if _is_postgres_of(pid, root / "data"):
                os.kill(pid, signal.SIGQUIT)
                _wait_gone(pid, 10)
        shutil.rmtree(root, ignore_errors=True)
        reaped.append(root)
        log.warning("removed a scratch PostgreSQL left by process %s: %s", m.group(1), root)
    return reaped



def _is_postgres_of(pid: int, datadir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(arg.decode(errors="replace") == str(datadir) for arg in cmdline)


def _wait_gone(pid: int, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not pid_alive(pid), timeout=timeout, what=f"process {pid} gone")


def open_scratch(restore: BackupRestore, database: str) -> ScratchInstance | ScratchDatabase:
    return ScratchDatabase(restore) if restore.scratch_dsn is not None else ScratchInstance(restore, database)


# ---------------------------------------------------------------- pg_restore through a pipe


@dataclass
class FeedResult:
    returncode: int | None
    stderr: str
    fed: int  # bytes pg_restore took before it finished or failed
    timed_out: bool = False


def feed_pg_restore(chunks: Iterable[bytes], dsn: str, *, pg_bin: Path | None, timeout: float,
                    cancelled: Callable[[], bool] = lambda: False, workdir: Path | None = None) -> FeedResult:
    """Pipe `chunks` (a pg_dump -Fc archive) into pg_restore; drain the rest if it stops early.

    Draining keeps the caller's hash whole: integrity is decided on every byte even when the
    restore fails half-way.
    """
    conninfo, env = split_dsn(dsn)
    cmd = [pg_binary("pg_restore", pg_bin), "--dbname", conninfo, "--no-owner", "--no-privileges",
           "--single-transaction"]
    with tempfile.TemporaryFile(dir=workdir) as errfile:
        rc, fed, timed_out = _feed(chunks, cmd, env, errfile, timeout, cancelled)
        errfile.seek(0)
        stderr = errfile.read(1 << 16).decode(errors="replace")
    return FeedResult(rc, stderr, fed, timed_out)


def _feed(chunks: Iterable[bytes], cmd: list[str], env: dict[str, str], errfile: IO[bytes], timeout: float,
          cancelled: Callable[[], bool]) -> tuple[int | None, int, bool]:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errfile,
                            env=child_env(env))
    timed_out = threading.Event()

    def on_deadline() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    watchdog = threading.Timer(timeout, on_deadline)
    watchdog.daemon = True
    watchdog.start()
    assert proc.stdin is not None
    with contextlib.suppress(OSError, AttributeError):
        # A 1 MiB pipe (Linux default 64 KiB): each chunk goes across in one or two wakeups.
        fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
    fed = 0
    alive = True
    try:
        for chunk in chunks:
            if alive:
                try:
                    proc.stdin.write(chunk)
                    fed += len(chunk)
                except (BrokenPipeError, ValueError):
                    alive = False
            if cancelled():
                raise Interrupted("cancelled")
        with contextlib.suppress(BrokenPipeError, ValueError):
            proc.stdin.close()
        rc = proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            proc.stdin.close()
    return rc, fed, timed_out.is_set()


def pg_restore_reason(res: FeedResult, timeout: float) -> str | None:
    """None when pg_restore succeeded, else the reason in one line."""
    if res.timed_out:
        return f"pg_restore did not finish within {timeout:.0f}s (restore.timeout)"
    if res.returncode == 0:
        return None
    lines = [ln.strip() for ln in res.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()] or lines
    detail = errors[0] if errors else f"exit code {res.returncode}"
    return f"pg_restore failed: {detail.removeprefix('pg_restore: ')}"


# ---------------------------------------------------------------- sanity


@dataclass
class SanityReport:
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    queries: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    canary: bool | None = None
    restored_by: dict[str, Any] = field(default_factory=dict)


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*name.split("."))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def _scalar(conn: Any, query: Any) -> Any:
    row = conn.execute(query).fetchone()
    return None if row is None else row[0]


@dataclass
class SourceFigures:
    """What the restore is compared with, read from the source while the restore runs."""

    counts: dict[str, int] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # sanity query name -> scalar on the source
    errors: dict[str, str] = field(default_factory=dict)  # table or query name -> why it has no figure
    unreachable: str | None = None


def source_figures(backup: BackupConfig, source_dsn: Callable[[], str]) -> SourceFigures:
    """Row counts of `tables` and the values of comparing sanity queries, on the source."""
    import psycopg
    from psycopg import sql

    figs = SourceFigures()
    compared = [q for q in backup.sanity if q.expect in ("equal_source", "within_tolerance")]
    if not backup.tables and not compared:
        return figs
    try:
        conn = connect(source_dsn())
    except SreError as exc:
        figs.unreachable = str(exc)
        return figs
    with conn:
        for table in backup.tables:
            try:
                figs.counts[table] = int(_scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(_ident(table))))
            except psycopg.Error as exc:
                figs.errors[table] = _first_line(exc)
        for q in compared:
            try:
                figs.values[q.name] = _scalar(conn, q.sql)
            except psycopg.Error as exc:
                figs.errors[q.name] = _first_line(exc)
    return figs


class Background:
    """`source_figures` in a thread, so counting the source overlaps the restore."""

    def __init__(self, backup: BackupConfig, source_dsn: Callable[[], str]) -> None:
        self._result: SourceFigures | None = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._result = source_figures(backup, source_dsn)
            except BaseException as exc:  # handed to the caller of result()
                self._error = exc

        self._thread = threading.Thread(target=run, name="restore-source-figures", daemon=True)
        self._thread.start()

    def result(self) -> SourceFigures:
        self._thread.join()
        if self._error is not None:
            return SourceFigures(unreachable=f"{self._error.__class__.__name__}: {self._error}")
        assert self._result is not None
        return self._result


def sanity_checks(restored_dsn: str, backup: BackupConfig, figures: SourceFigures | Background) -> SanityReport:
    """Run backups.<name>.sanity, compare `tables` row counts with the source, look for the canary row.

    `figures` may still be being read (a Background): it is waited for only when first needed.
    """
    import psycopg
    from psycopg import sql

    rep = SanityReport()
    resolved: list[SourceFigures] = []

    def src() -> SourceFigures:
        if not resolved:
            resolved.append(figures.result() if isinstance(figures, Background) else figures)
        return resolved[0]

    def no_source(name: str) -> str | None:
        source = src()
        if source.unreachable:
            return source.unreachable
        return f"on the source: {source.errors[name]}" if name in source.errors else None

    with connect(restored_dsn) as conn:
        # Who restored and reads it, as the server says: the report shows it was not a superuser.
        user, superuser, owners = conn.execute(
            "SELECT current_user::text, rolsuper, array(SELECT DISTINCT tableowner::text FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1) "
            "FROM pg_roles WHERE rolname = current_user").fetchone()
        rep.restored_by = {"role": user, "superuser": bool(superuser), "table_owners": list(owners)}
        for q in backup.sanity:
            try:
                value = _scalar(conn, q.sql) if q.expect != "rows" else len(conn.execute(q.sql).fetchall())
            except psycopg.Error as exc:
                rep.failures.append(f"sanity query {q.name!r} failed: {_first_line(exc)}")
                rep.queries[q.name] = {"error": _first_line(exc)}
                continue
            entry: dict[str, Any] = {"value": value}
            problem = None
            if q.expect == "nonzero" and not value:
                problem = f"returned {value!r}, expected nonzero"
            elif q.expect == "zero" and value not in (0, None):
                problem = f"returned {value!r}, expected zero"
            elif q.expect == "rows" and not value:
                problem = "returned no rows"
            elif q.expect in ("equal_source", "within_tolerance"):
                why = no_source(q.name)
                if why is not None:
                    rep.warnings.append(f"sanity query {q.name!r} not compared: {why}")
                else:
                    expected = src().values.get(q.name)
                    entry["source"] = expected
                    if q.expect == "equal_source" and value != expected:
                        problem = f"returned {value!r}, the source {expected!r}"
                    elif q.expect == "within_tolerance" and not _within(value, expected, q.tolerance):
                        problem = f"returned {value!r}, the source {expected!r} (tolerance {q.tolerance:.0%})"
            if problem:
                rep.failures.append(f"sanity query {q.name!r} {problem}")
                entry["problem"] = problem
            rep.queries[q.name] = entry
        for table in backup.tables:
            try:
                restored = int(_scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(_ident(table))))
            except psycopg.Error as exc:
                rep.failures.append(f"table {table} missing from the restore: {_first_line(exc)}")
                rep.tables[table] = {"error": _first_line(exc)}
                continue
            entry = {"restored": restored}
            why = no_source(table)
            if why is not None:
                rep.warnings.append(f"row count of {table} not compared: {why}")
            else:
                expected = src().counts[table]
                entry["source"] = expected
                if not _within(restored, expected, backup.row_tolerance):
                    rep.failures.append(f"table {table} has {restored} rows restored, {expected} in the "
                                        f"source (tolerance {backup.row_tolerance:.0%})")
            rep.tables[table] = entry
        if backup.canary:
            try:
                rep.canary = bool(conn.execute(backup.canary).fetchall())
            except psycopg.Error as exc:
                rep.canary = False
                rep.failures.append(f"canary query failed: {_first_line(exc)}")
            else:
                if not rep.canary:
                    rep.failures.append("canary row missing from the restore")
    return rep


def _within(value: Any, expected: Any, tolerance: float) -> bool:
    try:
        v, e = float(value), float(expected)
    except (TypeError, ValueError):
        return bool(value == expected)
    return abs(v - e) <= tolerance * abs(e)


# ---------------------------------------------------------------- base backups


def verify_basebackup(datadir: Path, pg_bin: Path | None) -> str | None:
    """pg_verifybackup on a restored data directory: None when it passes, else its first complaint."""
    proc = subprocess.run([pg_binary("pg_verifybackup", pg_bin), str(datadir)], capture_output=True, text=True,
                          check=False, timeout=3600)
    if proc.returncode == 0:
        return None
    lines = [ln.strip().removeprefix("pg_verifybackup: ") for ln in (proc.stderr or proc.stdout).splitlines()
             if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error")] or lines
    return "pg_verifybackup: " + (errors[0] if errors else f"exit code {proc.returncode}")
