"""Point-in-time recovery, verified: a backup plus its WAL restored to a target time, and proven.

One path for every format with a WAL archive (pgBackRest, pg_basebackup + WAL in S3):

1. The target: an ISO time, `latest`, or `latest-minus <duration>`.
2. The WAL a restore to it needs, from the chosen backup's first segment to the first segment
   archived after the target (sre.checks.wal): a gap there fails before anything is restored,
   naming the segment.
3. The backup restored into a private scratch instance (sre.checks.restore's, always removed,
   leftovers of killed runs reaped by the next) with recovery settings: the target, promote at
   the target, `hot_standby=off`, so the first connection that succeeds is to the promoted server.
4. The proof: the canary table the backups.canary job writes on the primary every few seconds
   (seq, at). Every row written up to the target must be in the restore, and none written after
   it; the newest restored row and `pg_last_xact_replay_timestamp()` say which point was reached.
5. The restore test's sanity queries, row counts and canary query, as for a plain restore.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sre.checks.humanize import human_seconds
from sre.checks.pg_client import cluster_of, connect, pg_binary, source_dsn
from sre.checks.restore import (
    EMPTY_DIRS,
    RESTORE_ROLE,
    SCRATCH_SETTINGS,
    Background,
    RestoreError,
    SanityReport,
    ScratchInstance,
    interruptible,
    sanity_checks,
    signals_held,
)
from sre.checks.wal import ArchivedSegment, Continuity, continuity
from sre.config import parse_duration
from sre.errors import SreError, UsageError
from sre.local.postgres import PgServer, chown_for_postgres, pg_user
from sre.local.procs import ManagedProcess
from sre.results import CheckResult, Status
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.config import SreConfig

log = get_logger("sre.checks.pitr")

CHECK = "backup.pitr"
# Recovery reads WAL through restore_command: a scratch setting that blanks it would stop replay.
RECOVERY_KEEPS = ("restore_command", "hot_standby")
_LATEST_MINUS = re.compile(r"^latest\s*-\s*minus\s*[ =]?\s*(?P<d>.+)$|^latest-minus\s*[ =]?\s*(?P<d2>.+)$")


@dataclass
class Target:
    spec: str
    at: datetime | None  # None: the archive's end ("latest")

    def describe(self) -> str:
        return "the end of the archive" if self.at is None else self.at.isoformat(timespec="milliseconds")


def resolve_target(spec: str, now: datetime | None = None) -> Target:
    """'latest', 'latest-minus 5m' or an ISO time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    text = spec.strip()
    if text == "latest":
        return Target(spec, None)
    m = _LATEST_MINUS.match(text)
    if m is not None:
        try:
            seconds = parse_duration((m.group("d") or m.group("d2")).strip())
        except ValueError:
            raise UsageError(f"--target {spec!r}: expected latest-minus <duration>, e.g. latest-minus 5m") from None
        return Target(spec, now - timedelta(seconds=seconds))
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--target {spec!r}: expected an ISO time, 'latest' or 'latest-minus <duration>'") from None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if at > now:
        raise UsageError(f"--target {spec!r} is in the future")
    return Target(spec, at)


def pg_time(at: datetime) -> str:
    """A time as recovery_target_time (and pgBackRest's --target) read it."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


# ---------------------------------------------------------------- the scratch instance in recovery


class RecoveryScratch(ScratchInstance):
    """A scratch instance started from a restored data directory in targeted recovery."""

    def prepare(self, settings: dict[str, str], *, recovery_signal: bool) -> None:
        """Make the restored directory ours and private, with the scratch settings and `settings`."""
        for sub in EMPTY_DIRS:
            (self.datadir / sub).mkdir(parents=True, exist_ok=True)
        for stale in ("standby.signal", "postmaster.pid"):
            (self.datadir / stale).unlink(missing_ok=True)
        if recovery_signal:
            (self.datadir / "recovery.signal").write_text("")
        with (self.datadir / "postgresql.auto.conf").open("a") as fh:
            fh.write("\n# scratch instance of the point-in-time recovery test\n")
            for k, v in SCRATCH_SETTINGS.items():
                if k not in RECOVERY_KEEPS:
                    fh.write(f"{k} = {v}\n")
            fh.write("hot_standby = off\n")
            for k, v in settings.items():
                fh.write(f"{k} = {v}\n")
        for path in [self.datadir, *self.datadir.rglob("*")]:
            chown_for_postgres(path)
            if path.is_dir():
                path.chmod(0o700)

    def start(self, timeout: float = 60.0, env: dict[str, str] | None = None) -> None:
        """Start recovery; ready once promoted (hot_standby is off, so no connection before that).

        `env` reaches the server's restore_command (a repository's credentials), and only it.
        """
        self.server = PgServer("restore-scratch", "scratch", self.datadir, self.port, self.root / "postgres.log")
        self.server.process = ManagedProcess(
            name="scratch postgresql", cmd=[pg_binary("postgres", self.restore.pg_bin), *self.server.server_options()],
            log_path=self.server.log_path, user=pg_user(), cwd=self.root,
            env=env or None, stop_signal=signal.SIGINT).start()
        t = time.monotonic()
        try:
            self.server.process.wait_ready(self.server.ready, timeout)
        except SreError as exc:
            raise RestoreError(f"the scratch PostgreSQL did not finish recovery: {exc}{self._log_tail()}") from None
        self.started = time.monotonic() - t

    def give(self, directory: Path) -> None:
        """Hand a directory the check filled (and its files) to the server's OS user."""
        for path in [directory, *directory.rglob("*")]:
            chown_for_postgres(path)

    def make_datadir(self) -> None:
        self.datadir.mkdir(mode=0o700, exist_ok=True)
        chown_for_postgres(self.datadir)


def read_only_role(scratch: RecoveryScratch, database: str) -> str:
    """A DSN of the restored database as RESTORE_ROLE, which may read everything and nothing more.

    The sanity queries come from the config and run on restored data: not as a superuser."""
    from psycopg import sql

    with connect(scratch.dsn("postgres")) as conn:
        role = sql.Identifier(RESTORE_ROLE)
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                             "NOBYPASSRLS").format(role))
        conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(role))
    return scratch.dsn(database, RESTORE_ROLE)


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class PitrSource(Protocol):
    """What a format brings to the shared path: the chosen backup, its WAL, and how to lay them down."""

    segments: list[ArchivedSegment]  # the archive, with archive times

    @property
    def what(self) -> str:
        """The backup restored, as the result names it."""
    @property
    def start_segment(self) -> str:
        """The backup's first WAL segment."""
    def restore(self, scratch: RecoveryScratch, target: Target, report: Continuity) -> None:
        """Fill scratch.datadir and write its recovery settings (RecoveryScratch.prepare)."""

    def start(self, scratch: RecoveryScratch, timeout: float) -> None:
        """Start the recovery (with whatever environment its restore_command needs)."""

# ---------------------------------------------------------------- the canary


@dataclass
class CanaryProof:
    target: datetime | None
    recovered_at: datetime | None = None  # newest canary row restored
    replay_at: datetime | None = None  # pg_last_xact_replay_timestamp()
    expected: int = 0  # source rows up to the target (less the boundary)
    restored: int = 0
    missing: list[tuple[int, datetime]] = field(default_factory=list)
    after: list[tuple[int, datetime]] = field(default_factory=list)
    problem: str | None = None

    def observed(self) -> dict[str, Any]:
        return {"expected": self.expected, "restored": self.restored, "missing": len(self.missing),
                "after_target": len(self.after),
                "first_missing": [s for s, _ in self.missing[:5]], "first_after": [s for s, _ in self.after[:5]]}


def _table(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*name.split("."))


def _rows(dsn: str, table: str, since: datetime) -> dict[int, datetime]:
    from psycopg import sql

    with connect(dsn) as conn:
        cur = conn.execute(sql.SQL("SELECT seq, at FROM {} WHERE at >= %s").format(_table(table)), [since])
        return {int(seq): at for seq, at in cur.fetchall()}


def prove(restored_dsn: str, source: str, table: str, target: Target, since: datetime,
          boundary: float) -> CanaryProof:
    """Canary rows since `since`: all of the source's up to the target restored, none after it."""
    import psycopg

    proof = CanaryProof(target.at)
    try:
        with connect(restored_dsn) as conn:
            row = conn.execute("SELECT pg_last_xact_replay_timestamp()").fetchone()
            proof.replay_at = row[0] if row else None
        restored = _rows(restored_dsn, table, since)
    except psycopg.Error as exc:
        proof.problem = f"canary table {table} unreadable in the restore: {str(exc).strip().splitlines()[0]}"
        return proof
    try:
        upstream = _rows(source, table, since)
    except psycopg.Error as exc:
        proof.problem = f"canary table {table} unreadable on the source: {str(exc).strip().splitlines()[0]}"
        return proof
    proof.restored = len(restored)
    if restored:
        proof.recovered_at = max(restored.values())
    limit = target.at if target.at is not None else (proof.replay_at or proof.recovered_at)
    if limit is None:
        proof.expected = 0
        return proof
    if target.at is not None:
        proof.after = sorted((s, at) for s, at in restored.items() if at > target.at)
    # The boundary is for rows begun before a time target and committed after it; with no
    # target, the limit is itself a commit time.
    edge = limit - timedelta(seconds=boundary if target.at is not None else 0)
    expected = {s: at for s, at in upstream.items() if at <= edge}
    proof.expected = len(expected)
    proof.missing = sorted((s, at) for s, at in expected.items() if s not in restored)
    return proof


# ---------------------------------------------------------------- the shared path


Progress = Callable[[str, int, int | None], None]


def run(cfg: SreConfig, name: str, source: PitrSource, target: Target, *, backup_started: datetime,
        progress: Progress | None = None) -> CheckResult:
    """Restore `source` to `target` in a scratch instance, prove it, drop the instance."""
    bcfg = cfg.backups[name]
    cluster = cluster_of(cfg, bcfg)
    t0 = time.monotonic()
    report = continuity(source.segments, source.start_segment, segment_size=bcfg.pitr.wal_segment_size,
                        target=target.at)
    observed: dict[str, Any] = {"target": target.describe(), "target_spec": target.spec, "backup": source.what,
                                "needed_segments": len(report.needed), "archive_end": report.end,
                                "archive_end_at": report.end_at.isoformat() if report.end_at else None}
    if report.needed_missing:
        return CheckResult(CHECK, name, "fail", {**observed, "missing": report.needed_missing[:20]},
                           f"a restore to {target.describe()} needs WAL segment {report.needed_missing[0]}, "
                           f"missing from the archive" + _more(report.needed_missing))
    if not report.covered:
        return CheckResult(CHECK, name, "fail", observed,
                           f"the archive ends at {report.end} (archived "
                           f"{report.end_at.isoformat() if report.end_at else '?'}), before the target "
                           f"{target.describe()}: no restore can reach it")
    reason: str | None = None
    proof: CanaryProof | None = None
    sanity: SanityReport | None = None
    with interruptible():
        scratch: RecoveryScratch | None = None
        try:
            scratch = RecoveryScratch(bcfg.restore, cluster.database)
            if progress is not None:
                progress("restore", 0, None)
            source.restore(scratch, target, report)
            observed["restore_seconds"] = round(time.monotonic() - t0, 3)
            if progress is not None:
                progress("recovery", 0, None)
            t1 = time.monotonic()
            source.start(scratch, max(1.0, bcfg.restore.timeout - (time.monotonic() - t0)))
            observed["recovery_seconds"] = round(time.monotonic() - t1, 3)
            if progress is not None:
                progress("proof", 0, None)
            src = source_dsn(cfg, bcfg)
            since = backup_started - timedelta(minutes=1)
            reader = read_only_role(scratch, cluster.database)
            proof = prove(reader, src, bcfg.pitr.canary_table, target, since,
                          bcfg.pitr.boundary)
            figures = Background(bcfg, lambda: src)
            sanity = sanity_checks(reader, bcfg, figures)
            observed["proof_seconds"] = round(time.monotonic() - t1 - observed["recovery_seconds"], 3)
        except SreError as exc:
            reason = str(exc)
        finally:
            if scratch is not None:
                t2 = time.monotonic()
                with signals_held():
                    scratch.drop()
                observed["drop_seconds"] = round(time.monotonic() - t2, 3)
    seconds = time.monotonic() - t0
    observed["seconds"] = round(seconds, 3)
    return _result(name, source, target, reason, proof, sanity, observed)


def _more(items: list[str]) -> str:
    return f" (and {len(items) - 1} more: {', '.join(items[1:4])}{'...' if len(items) > 4 else ''})" if len(
        items) > 1 else ""


def _result(name: str, source: PitrSource, target: Target, reason: str | None, proof: CanaryProof | None,
            sanity: SanityReport | None, observed: dict[str, Any]) -> CheckResult:
    if reason is not None:
        return CheckResult(CHECK, name, "fail", observed,
                           f"restore of {source.what} to {target.describe()} failed: {reason}")
    assert proof is not None and sanity is not None
    observed["canary"] = proof.observed()
    observed["recovered_at"] = proof.recovered_at.isoformat() if proof.recovered_at else None
    observed["replay_at"] = proof.replay_at.isoformat() if proof.replay_at else None
    point = proof.replay_at or proof.recovered_at
    reference = target.at or datetime.now(UTC)
    if point is not None:
        # The point this run proved restorable, under the key DR readiness reads (sre.dr.gather).
        observed["recovered_point"] = point.isoformat()
        observed["lag_seconds"] = round((reference - point).total_seconds(), 3)
    observed.update(tables=sanity.tables, queries=sanity.queries, restored_by=sanity.restored_by)
    failures: list[str] = []
    warnings: list[str] = []
    if proof.problem:
        failures.append(proof.problem)
    if proof.after:
        seq, at = proof.after[0]
        failures.append(f"{len(proof.after)} canary row(s) written after the target were restored "
                        f"(first: seq {seq} at {at.isoformat()})")
    if proof.missing:
        seq, at = proof.missing[0]
        failures.append(f"{len(proof.missing)} canary row(s) written before the target are missing "
                        f"(first: seq {seq} at {at.isoformat()})")
    if not proof.problem and proof.expected == 0:
        warnings.append("no canary row was written between the backup and the target: nothing proves the "
                        "point reached (is the backups.canary job running?)")
    failures += sanity.failures
    warnings += sanity.warnings
    status: Status = "fail" if failures else "warn" if warnings else "ok"
    head = f"restored {source.what} to {target.describe()}"
    if point is not None:
        head += f": recovered to {point.isoformat(timespec='milliseconds')}"
        if "lag_seconds" in observed:
            head += f", {human_seconds(abs(observed['lag_seconds']))} before the target" if target.at else (
                f", {human_seconds(abs(observed['lag_seconds']))} ago")
    if failures:
        return CheckResult(CHECK, name, status, observed, head + "; but: " + "; ".join(failures))
    parts = [head, f"all {proof.expected} canary row(s) up to the target present, none after it"]
    if sanity.tables:
        parts.append("row counts match the source")
    parts += warnings
    return CheckResult(CHECK, name, status, observed, "; ".join(parts))

