"""Backup verification down to a real restore, and backup bucket posture.

Checks, each a CheckResult with its figures (docs/backups.md):

  backup.freshness     newest backup age against max_age (default: the cluster's RPO); WAL archive age
  backup.completeness  the listing is not empty; size not below min_size_ratio of the previous
                       backup; backup_manifest present for base backups
  backup.integrity     every byte hashed as it streams, against the recorded SHA-256;
                       pg_verifybackup for base backups
  backup.restore       the backup restored into a scratch PostgreSQL, sanity queries, row counts
                       against the source, the canary row; the scratch instance always dropped
  bucket.*             versioning, encryption, public_access, replication, object_lock

Freshness and completeness cost one paged listing; integrity and restore share one streamed
download of the newest backup. Scheduled: `backups.freshness` (with posture) hourly,
`backups.verify` (with the restore) daily.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from sre.adapters import s3 as s3a
from sre.adapters.s3 import S3Error
from sre.checks import pgbackrest, redis_rdb
from sre.checks import pitr as pitr_check
from sre.checks.backup_integrity import StreamDigest, integrity_result
from sre.checks.backup_layout import MANIFEST, Backup, Listing, list_backups, newest_wal, recorded_checksum
from sre.checks.backup_take import backup_config, take_backup
from sre.checks.basebackup import is_tar, materialize
from sre.checks.basebackup_pitr import BaseBackupSource, list_wal, start_segment
from sre.checks.bucket_posture import posture as bucket_posture
from sre.checks.humanize import human_bytes, human_seconds
from sre.checks.pg_client import cluster_of, source_dsn
from sre.checks.pitr import resolve_target
from sre.checks.restore import (
    Background,
    Interrupted,
    RestoreError,
    SanityReport,
    ScratchInstance,
    feed_pg_restore,
    interruptible,
    open_scratch,
    pg_restore_reason,
    sanity_checks,
    signals_held,
    verify_basebackup,
)
from sre.checks.wal import continuity
from sre.errors import SreError
from sre.results import CheckResult, JobOutcome, Status, guarded, worst
from sre.telemetry import get_logger

if TYPE_CHECKING:

    from sre.adapters.s3 import S3Client
    from sre.checks.pitr import Target
    from sre.config import BackupConfig, SreConfig
    from sre.results import JobContext, JobOutcome

__all__ = ["completeness", "freshness", "posture", "run_freshness_job", "run_verify_job",
           "set_freshness", "take_backup", "verify"]

log = get_logger("sre.checks.backups")

# The `cluster` label is the backup set's name (backups.<name>, by convention the cluster's
# name) or, for bucket posture, the set or buckets.<name> the bucket belongs to.
BACKUP_AGE = Gauge("sre_backup_age_seconds", "Age of the newest backup of each backup set.", ["cluster"])
VERIFY_SUCCESS = Gauge("sre_backup_verify_success",
                       "1 when the last run of a backup check passed (ok or warn), 0 when it failed.",
                       ["cluster", "check"])
RESTORE_DURATION = Gauge("sre_backup_restore_duration_seconds",
                         "Wall time of the last restore test (download, restore, sanity queries).", ["cluster"])
BACKUP_SIZE = Gauge("sre_backup_size_bytes", "Size of the newest backup of each backup set.", ["cluster"])
# The exporter convention: a timestamp, so the age is computed by the rule (time() - ...) and
# keeps growing between runs, instead of an age frozen at the last hourly check.
LAST_SUCCESS = Gauge("sre_backup_last_success_timestamp_seconds",
                     "Unix time the newest backup of each set completed.", ["set", "format"])
MAX_AGE = Gauge("sre_backup_max_age_seconds",
                "How old the newest backup of each set may be (max_age, default the RPO; 1 h for Redis snapshots).",
                ["set", "format"])
FRESHNESS_CHECKS = ("backup.freshness", "backup.snapshot_freshness")
PITR_LAG = Gauge("sre_backup_pitr_recovered_lag_seconds",
                 "Target time minus the point the last PITR test recovered to.", ["set"])
WAL_GAP = Gauge("sre_backup_wal_gap",
                "WAL segments missing between the newest backup's start and the archive's end (0: continuous).",
                ["set"])

Progress = Callable[[str, int, int | None], None]


def _never() -> bool:
    return False


# ---------------------------------------------------------------- freshness, completeness


def freshness(cfg: SreConfig, backup_name: str, *, s3: S3Client | None = None, listing: Listing | None = None,
              now: datetime | None = None) -> CheckResult:
    """Newest backup age against max_age (default: the RPO); the WAL archive's newest segment against the RPO."""
    bcfg = backup_config(cfg, backup_name)
    s3 = s3 or s3a.client(cfg.aws)
    listing = listing or list_backups(s3, bcfg)
    now = now or datetime.now(UTC)
    rpo = cluster_of(cfg, bcfg).objectives.rpo
    max_age = bcfg.max_age if bcfg.max_age is not None else rpo
    where = f"s3://{bcfg.bucket}/{bcfg.prefix}"
    observed: dict[str, Any] = {"max_age_seconds": max_age, "rpo_seconds": rpo, "backups": len(listing.backups)}
    problems: list[str] = []
    newest = listing.newest
    if newest is None:
        problems.append(f"no backup found under {where}")
    else:
        age = newest.age_seconds(now)
        observed.update(newest=newest.key, taken_at=newest.taken_at.isoformat(), time_source=newest.time_source,
                        age_seconds=round(age, 1))
        if age > max_age:
            problems.append(f"newest backup {newest.name} is {human_seconds(age)} old, older than the "
                            f"{'RPO' if bcfg.max_age is None else 'max_age'} of {human_seconds(max_age)}")
    if bcfg.wal_prefix:
        seg = newest_wal(s3, bcfg.bucket, bcfg.wal_prefix)
        if seg is None:
            problems.append(f"no WAL segment under s3://{bcfg.bucket}/{bcfg.wal_prefix}")
        else:
            wal_age = (now - seg.last_modified).total_seconds()
            observed.update(wal_newest=seg.key, wal_age_seconds=round(wal_age, 1))
            if wal_age > rpo:
                problems.append(f"newest WAL segment is {human_seconds(wal_age)} old, older than the RPO of {human_seconds(rpo)}")
    if problems:
        return CheckResult("backup.freshness", backup_name, "fail", observed, "; ".join(problems))
    assert newest is not None
    msg = f"newest backup {newest.name} is {human_seconds(observed['age_seconds'])} old (max {human_seconds(max_age)})"
    if "wal_age_seconds" in observed:
        msg += f"; newest WAL segment {human_seconds(observed['wal_age_seconds'])} old"
    return CheckResult("backup.freshness", backup_name, "ok", observed, msg)


def completeness(cfg: SreConfig, backup_name: str, *, s3: S3Client | None = None,
                 listing: Listing | None = None) -> CheckResult:
    """The listing is not empty, the newest backup is not much smaller than the previous, base backups have a manifest."""
    bcfg = backup_config(cfg, backup_name)
    listing = listing or list_backups(s3 or s3a.client(cfg.aws), bcfg)
    newest, previous = listing.newest, listing.previous
    observed: dict[str, Any] = {"backups": len(listing.backups), "objects_listed": listing.objects,
                                "objects_ignored": listing.ignored, "min_size_ratio": bcfg.min_size_ratio}
    if newest is None:
        return CheckResult("backup.completeness", backup_name, "fail", observed,
                           f"the listing of s3://{bcfg.bucket}/{bcfg.prefix} holds no backup "
                           f"({listing.objects} objects, none named like {bcfg.layout.key_template or 'the default'})")
    problems: list[str] = []
    observed.update(newest=newest.key, size=newest.size, objects=len(newest.objects))
    if newest.size == 0:
        problems.append(f"newest backup {newest.name} is empty (0 bytes)")
    if previous is not None:
        ratio = newest.size / previous.size if previous.size else 1.0
        observed.update(previous=previous.key, previous_size=previous.size, size_ratio=round(ratio, 4))
        if ratio < bcfg.min_size_ratio:
            problems.append(f"newest backup {newest.name} is {newest.size} bytes, {ratio:.0%} of the previous "
                            f"({previous.size} bytes); below min_size_ratio {bcfg.min_size_ratio:.0%}")
    if bcfg.format == "basebackup":
        has_manifest = newest.member(MANIFEST) is not None
        observed["manifest"] = has_manifest
        if not has_manifest:
            problems.append(f"backup_manifest missing from base backup {newest.name}")
        if is_tar(newest) and not any(m.startswith("base.tar") for m in newest.members()):
            problems.append(f"base.tar missing from base backup {newest.name}")
    if problems:
        return CheckResult("backup.completeness", backup_name, "fail", observed, "; ".join(problems))
    msg = f"{len(listing.backups)} backup(s); newest {newest.name} {human_bytes(newest.size)}"
    if previous is not None:
        msg += f" ({observed['size_ratio']:.0%} of the previous)"
    if bcfg.format == "basebackup":
        msg += ", manifest present"
    return CheckResult("backup.completeness", backup_name, "ok", observed, msg)


# ---------------------------------------------------------------- verify


def verify(cfg: SreConfig, backup_name: str, restore: bool = True, progress: Progress | None = None, *,
           cancelled: Callable[[], bool] = _never, s3: S3Client | None = None, pitr: bool = False,
           target: Target | None = None) -> list[CheckResult]:
    """Freshness, completeness, integrity and (with `restore`) the restore test of the newest backup.

    Sets with a WAL archive (pgbackrest) are restored to a point in time (`target`, default
    the set's pitr.target); `pitr` asks the same of every set and notes those that cannot.
    """
    bcfg = backup_config(cfg, backup_name)
    if bcfg.format == "pgbackrest":
        asked = restore and (bcfg.pitr.enabled or pitr or target is not None)
        out = pgbackrest.verify_set(cfg, backup_name, restore=asked, target=target, progress=progress)
        export(out, fmt=bcfg.format)
        return out
    if bcfg.format == "redis-rdb":
        out = redis_rdb.verify(cfg, backup_name, restore=restore, s3=s3)
        export(out, fmt=bcfg.format)
        return out
    s3 = s3 or s3a.client(cfg.aws)
    listing = list_backups(s3, bcfg)
    results = [freshness(cfg, backup_name, s3=s3, listing=listing),
               completeness(cfg, backup_name, s3=s3, listing=listing)]
    newest = listing.newest
    if newest is None:
        why = f"no backup under s3://{bcfg.bucket}/{bcfg.prefix}"
        results.append(CheckResult("backup.integrity", backup_name, "fail", {}, f"nothing to verify: {why}"))
        if restore:
            results.append(CheckResult("backup.restore", backup_name, "fail", {}, f"nothing to restore: {why}"))
    elif bcfg.format == "basebackup" and bcfg.wal_prefix and restore and (pitr or target is not None):
        results.extend(_verify_base_pitr(cfg, bcfg, backup_name, s3, newest,
                                         target or resolve_target(bcfg.pitr.target), progress))
    elif bcfg.format == "pg_dump":
        results.extend(_verify_dump(cfg, bcfg, backup_name, s3, newest, restore, progress, cancelled))
    else:
        results.extend(_verify_base(cfg, bcfg, backup_name, s3, newest, restore, progress, cancelled))
    if (pitr or target is not None) and restore and not (bcfg.format == "basebackup" and bcfg.wal_prefix):
        results.append(CheckResult(pitr_check.CHECK, backup_name, "warn", {"format": bcfg.format},
                                   f"format {bcfg.format} without a WAL archive: no point-in-time recovery to verify"))
    export(results, listing=listing, backup_name=backup_name, fmt=bcfg.format)
    return results


def _advance(progress: Progress | None, phase: str, total: int | None) -> Callable[[int], None]:
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(phase, done, total)

    return step


def _verify_dump(cfg: SreConfig, bcfg: BackupConfig, name: str, s3: S3Client, backup: Backup, restore: bool,
                 progress: Progress | None, cancelled: Callable[[], bool]) -> list[CheckResult]:
    url = f"s3://{bcfg.bucket}/{backup.key}"
    recorded, size_now = recorded_checksum(s3, bcfg, backup, backup.key)
    digest = StreamDigest(url, recorded, size_now)
    phase = "download and restore" if restore else "download"
    # Hashing happens on the read-ahead thread, beside the pipe writes of the main one.
    chunks = s3a.readahead(digest.tee(s3a.iter_object(s3, bcfg.bucket, backup.key),
                                      _advance(progress, phase, size_now)))
    problems: list[str] = []
    out: list[CheckResult] = []
    if restore:
        restore_result, download_error = _restore_dump(cfg, bcfg, name, chunks, url, size_now, progress, cancelled)
        if download_error:
            problems.append(download_error)
        out.append(restore_result)
    else:
        try:
            for _ in chunks:
                if cancelled():
                    raise Interrupted("cancelled")
        except S3Error as exc:
            problems.append(f"download failed: {exc}")
    return [integrity_result(name, [digest], problems), *out]


def _drain(chunks: Any) -> str | None:
    try:
        for _ in chunks:
            pass
    except S3Error as exc:
        return f"download failed: {exc}"
    return None


def _restore_dump(cfg: SreConfig, bcfg: BackupConfig, name: str, chunks: Any, url: str, size: int,
                  progress: Progress | None, cancelled: Callable[[], bool]) -> tuple[CheckResult, str | None]:
    cluster = cluster_of(cfg, bcfg)
    t0 = time.monotonic()
    observed: dict[str, Any] = {"object": url, "bytes": size, "database": cluster.database}
    reason: str | None = None
    download_error: str | None = None
    sanity: SanityReport | None = None
    with interruptible():
        scratch = None
        try:
            scratch = open_scratch(bcfg.restore, cluster.database)
            observed["scratch"] = "instance" if isinstance(scratch, ScratchInstance) else "database"
            scratch.init()
            if isinstance(scratch, ScratchInstance):
                scratch.start()
                scratch.create_database(cluster.database)
                observed["scratch_start_seconds"] = round(time.monotonic() - t0, 3)
            remaining = max(1.0, bcfg.restore.timeout - (time.monotonic() - t0))
            feed = feed_pg_restore(chunks, scratch.database_dsn(), pg_bin=bcfg.restore.pg_bin, timeout=remaining,
                                   cancelled=cancelled,
                                   workdir=scratch.root if isinstance(scratch, ScratchInstance) else None)
            observed["pg_restore_seconds"] = round(time.monotonic() - t0 - observed.get("scratch_start_seconds", 0), 3)
            reason = pg_restore_reason(feed, remaining)
            if reason is None:
                if progress is not None:
                    progress("sanity queries", 0, None)
                # The source is counted while the restored side is: both at the same moment, and
                # not competing with pg_restore for the CPU.
                source = Background(bcfg, lambda: source_dsn(cfg, bcfg))
                sanity = sanity_checks(scratch.database_dsn(), bcfg, source)
        except S3Error as exc:
            download_error = f"download failed: {exc}"
            reason = download_error
        except SreError as exc:
            reason = str(exc)
            download_error = _drain(chunks)
        finally:
            if scratch is not None:
                with signals_held():
                    scratch.drop()
    seconds = time.monotonic() - t0
    observed["seconds"] = round(seconds, 3)
    return _restore_result(name, url, reason, sanity, observed, seconds), download_error


def _restore_result(name: str, url: str, reason: str | None, sanity: SanityReport | None,
                    observed: dict[str, Any], seconds: float) -> CheckResult:
    if sanity is not None:
        observed.update(tables=sanity.tables, queries=sanity.queries, canary=sanity.canary)
        if sanity.restored_by:
            observed["restored_by"] = sanity.restored_by
    if reason is not None:
        return CheckResult("backup.restore", name, "fail", observed, f"restore of {url} failed: {reason}")
    assert sanity is not None
    if sanity.failures:
        return CheckResult("backup.restore", name, "fail", observed,
                           f"restored {url}, but: " + "; ".join(sanity.failures))
    parts = [f"restored {url} in {seconds:.1f}s"]
    if sanity.tables:
        parts.append("row counts match the source: " + ", ".join(
            f"{t} {v['restored']}" + (f"/{v['source']}" if "source" in v else "") for t, v in sanity.tables.items()))
    if sanity.queries:
        parts.append(f"{len(sanity.queries)} sanity quer{'y' if len(sanity.queries) == 1 else 'ies'} ok")
    if sanity.canary:
        parts.append("canary row present")
    status: Status = "ok"
    if sanity.warnings:
        status = "warn"
        parts.append("; ".join(sanity.warnings))
    return CheckResult("backup.restore", name, status, observed, "; ".join(parts))


def _verify_base(cfg: SreConfig, bcfg: BackupConfig, name: str, s3: S3Client, backup: Backup, restore: bool,
                 progress: Progress | None, cancelled: Callable[[], bool]) -> list[CheckResult]:
    cluster = cluster_of(cfg, bcfg)
    url = f"s3://{bcfg.bucket}/{backup.key}"
    t0 = time.monotonic()
    problems: list[str] = []
    warnings: list[str] = []
    extra: dict[str, Any] = {"pg_verifybackup": "not run"}
    digests: list[StreamDigest] = []
    observed: dict[str, Any] = {"object": url, "bytes": backup.size, "database": cluster.database,
                                "scratch": "instance"}
    reason: str | None = None
    sanity: SanityReport | None = None
    advance = _advance(progress, "download and restore" if restore else "download", backup.size)
    with interruptible():
        scratch: ScratchInstance | None = None
        tmp: Path | None = None
        try:
            if restore:
                scratch = ScratchInstance(bcfg.restore, cluster.database)
                dest = scratch.datadir
            else:
                bcfg.restore.scratch_dir.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix="sre-verify-", dir=bcfg.restore.scratch_dir))
                dest = tmp / "data"
            materialized = False
            try:
                digests = materialize(s3, bcfg, backup, dest, progress=advance, cancelled=cancelled)
                materialized = True
            except RestoreError as exc:
                digests = getattr(exc, "digests", [])
                problems.append(str(exc))
            except S3Error as exc:
                problems.append(f"download failed: {exc}")
            if materialized:
                if backup.member(MANIFEST) is None:
                    warnings.append("backup_manifest missing: pg_verifybackup cannot check the files "
                                    "(per-object checksums only)")
                    extra["pg_verifybackup"] = "skipped"
                else:
                    why = verify_basebackup(dest, bcfg.restore.pg_bin)
                    extra["pg_verifybackup"] = "ok" if why is None else "failed"
                    if why:
                        problems.append(why)
            if restore:
                assert scratch is not None
                if not materialized:
                    reason = "the backup could not be downloaded whole: " + (problems[-1] if problems else "?")
                else:
                    scratch.adopt()
                    scratch.start(timeout=bcfg.restore.timeout)
                    observed["start_seconds"] = round(scratch.started, 3)
                    if progress is not None:
                        progress("sanity queries", 0, None)
                    source = Background(bcfg, lambda: source_dsn(cfg, bcfg))
                    sanity = sanity_checks(scratch.dsn(cluster.database), bcfg, source)
        except SreError as exc:
            reason = str(exc)
        finally:
            with signals_held():
                if scratch is not None:
                    scratch.drop()
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
    out = [integrity_result(name, digests, problems, warnings, extra)]
    if restore:
        seconds = time.monotonic() - t0
        observed["seconds"] = round(seconds, 3)
        out.append(_restore_result(name, url, reason, sanity, observed, seconds))
    return out


def _verify_base_pitr(cfg: SreConfig, bcfg: BackupConfig, name: str, s3: S3Client, backup: Backup, target: Target,
                      progress: Progress | None) -> list[CheckResult]:
    """Integrity and WAL continuity of a base backup with a WAL archive, and a restore to `target`."""
    assert bcfg.wal_prefix is not None
    size = bcfg.pitr.wal_segment_size
    first = start_segment(s3, bcfg, backup)
    if first is None:
        return [CheckResult(pitr_check.CHECK, name, "fail", {"backup": backup.key},
                            f"{MANIFEST} missing from {backup.name}: its first WAL segment is unknown")]
    segments = list_wal(s3, bcfg.bucket, bcfg.wal_prefix)
    chain = pgbackrest.continuity_result(name, continuity(segments, first, segment_size=size), size)
    source = BaseBackupSource(s3, bcfg, backup, first, segments)
    restored = pitr_check.run(cfg, name, source, target, backup_started=backup.taken_at, progress=progress)
    if source.digests or source.problems:
        integrity = integrity_result(name, source.digests, source.problems,
                                     extra={"pg_verifybackup": source.verified})
    else:
        integrity = CheckResult("backup.integrity", name, "warn", {},
                                "not read: the point-in-time restore stopped before downloading the backup")
    return [integrity, chain, restored]


def set_freshness(cfg: SreConfig, name: str, *, s3: S3Client | None = None) -> CheckResult:
    """The freshness check of the set's own format: pgBackRest reads its stanza, the others their bucket."""
    bcfg = backup_config(cfg, name)
    if bcfg.format == "pgbackrest":
        return pgbackrest.freshness(cfg, name, pgbackrest.read_state(bcfg))
    s3 = s3 or s3a.client(cfg.aws)
    if bcfg.format == "redis-rdb":
        return redis_rdb.freshness(name, bcfg, list_backups(s3, bcfg).newest)
    return freshness(cfg, name, s3=s3)


# ---------------------------------------------------------------- posture, metrics, jobs


def posture(cfg: SreConfig, names: list[str] | None = None, s3: S3Client | None = None) -> list[CheckResult]:
    """Posture of the backup and media buckets: versioning, encryption, public access, replication, object lock."""
    results = bucket_posture(cfg, names, s3)
    export(results)
    return results


def export(results: list[CheckResult], *, listing: Listing | None = None, backup_name: str | None = None,
           fmt: str = "") -> None:
    """Set the sre_backup_* gauges from results (and the newest backup's size from a listing)."""
    for r in results:
        label = str(r.observed.get("set", r.target))
        VERIFY_SUCCESS.labels(label, r.check).set(0 if r.status == "fail" else 1)
        if r.check == "backup.freshness" and "age_seconds" in r.observed:
            BACKUP_AGE.labels(label).set(r.observed["age_seconds"])
        if r.check in FRESHNESS_CHECKS and r.observed.get("taken_at"):
            LAST_SUCCESS.labels(label, fmt).set(datetime.fromisoformat(r.observed["taken_at"]).timestamp())
        if r.check in FRESHNESS_CHECKS and "max_age_seconds" in r.observed:
            MAX_AGE.labels(label, fmt).set(r.observed["max_age_seconds"])
        if r.check == "backup.wal_continuity":
            WAL_GAP.labels(label).set(r.observed.get("missing_count", 0 if r.status != "fail" else 1))
        if r.check == "backup.pitr" and "lag_seconds" in r.observed:
            PITR_LAG.labels(label).set(r.observed["lag_seconds"])
        if r.check == "backup.restore" and "seconds" in r.observed:
            RESTORE_DURATION.labels(label).set(r.observed["seconds"])
    if listing is not None and backup_name is not None and listing.newest is not None:
        BACKUP_SIZE.labels(backup_name).set(listing.newest.size)


def _guarded(check: str, name: str, fn: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """A backup set whose bucket or database cannot be reached fails its checks; the others still run."""
    return guarded(check, name, fn, on_error=export)


def run_freshness_job(ctx: JobContext) -> JobOutcome:
    """Hourly: freshness and completeness of every backup set (one listing each), and bucket posture."""
    cfg = ctx.cfg
    results: list[CheckResult] = []
    s3 = s3a.client(cfg.aws) if cfg.backups or cfg.buckets else None

    def cheap(name: str) -> list[CheckResult]:
        bcfg = cfg.backups[name]
        if bcfg.format == "pgbackrest":
            found = pgbackrest.check_set(cfg, name)[0]
            export(found, fmt=bcfg.format)
            return found
        if bcfg.format == "redis-rdb":
            found = [set_freshness(cfg, name, s3=s3)]
            export(found, fmt=bcfg.format)
            return found
        listing = list_backups(s3, cfg.backups[name])
        out = [freshness(cfg, name, s3=s3, listing=listing), completeness(cfg, name, s3=s3, listing=listing)]
        export(out, listing=listing, backup_name=name, fmt=bcfg.format)
        return out

    for name in cfg.backups:
        results += _guarded("backup.freshness", name, lambda n=name: cheap(n))  # type: ignore[misc]
    if s3 is not None:
        results += _guarded("bucket.posture", "all", lambda: posture(cfg, s3=s3))
    return JobOutcome(status=worst([r.status for r in results]), summary=_summary(results), results=results)


def run_verify_job(ctx: JobContext) -> JobOutcome:
    """Daily: every backup set verified down to a restore (unless restore.enabled is off)."""
    cfg = ctx.cfg
    results: list[CheckResult] = []
    for name, bcfg in cfg.backups.items():
        try:
            if ctx.cancelled():
                raise Interrupted("cancelled")
            # A base backup with a WAL archive is restored to a point in time (pitr.enabled).
            results += _guarded("backup.integrity", name, lambda n=name, b=bcfg: verify(  # type: ignore[misc]
                cfg, n, restore=b.restore.enabled, cancelled=ctx.cancelled,
                pitr=b.pitr.enabled and b.format == "basebackup" and bool(b.wal_prefix)))
        except Interrupted:
            if not ctx.cancelled():
                raise
            # The service is stopping: the scratch instance is already gone; record, do not raise
            # a KeyboardInterrupt into the scheduler's thread.
            return JobOutcome(status="interrupted", summary={**_summary(results), "interrupted_at": name},
                              results=results)
    return JobOutcome(status=worst([r.status for r in results]), summary=_summary(results), results=results)


def _summary(results: list[CheckResult]) -> dict[str, Any]:
    failed = [f"{r.check} {r.target}: {r.message}" for r in results if r.status == "fail"]
    return {"checks": len(results), "failed": len(failed), "failures": failed[:20]}
