"""A pgBackRest stanza as a backup set: its backups' age, its archive's continuity, its own verify.

Everything is read through pgBackRest itself (`info --output=json`, `repo-ls`, `verify`), so a
posix, S3 or any other repository type is read the same way, with the repository's own
credentials and encryption settings. Checks (docs/backups.md):

  backup.freshness       newest full/diff/incr backup against max_age (default: the RPO); the
                         archive's newest segment against the RPO
  backup.wal_continuity  every segment from the newest backup's first one to the archive's end;
                         a gap names the missing segment
  backup.repository      `pgbackrest verify` (checksums of backups and archive)
  backup.pitr            a restore to a target time, proven by the canary table (sre.checks.pitr)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sre.adapters.pgbackrest import PgBackRest, last_error
from sre.checks import pitr as pitr_check
from sre.checks.humanize import human_seconds
from sre.checks.pitr import Progress, RecoveryScratch, Target, pg_time, resolve_target
from sre.checks.wal import ArchivedSegment, Continuity, archived_name, continuity
from sre.results import CheckResult

if TYPE_CHECKING:
    from sre.config import BackupConfig, SreConfig

# pgBackRest's stanza status codes (info command): 0 ok, 1 missing stanza path, 2 no valid
# backups, 3 missing stanza data, 4 different cipher, 5 database mismatch, 6 backup/expire running...
STATUS_OK = 0


@dataclass
class RepoBackup:
    label: str
    type: str  # full | diff | incr
    started: datetime
    stopped: datetime
    archive_start: str
    archive_stop: str
    db_id: int
    size: int = 0
    error: bool = False

    def summary(self) -> dict[str, Any]:
        return {"label": self.label, "type": self.type, "started": self.started.isoformat(),
                "stopped": self.stopped.isoformat(), "archive_start": self.archive_start,
                "archive_stop": self.archive_stop, "size": self.size}


@dataclass
class RepoState:
    """One stanza as `pgbackrest info` describes it, and its archive as `repo-ls` lists it."""

    stanza: str
    status_code: int
    status_message: str
    backups: list[RepoBackup]  # oldest first, without those pgBackRest marks in error
    archive_ids: dict[int, str]  # database id -> archive id (e.g. 15-1)
    archive_range: dict[str, tuple[str | None, str | None]]  # archive id -> (min, max)
    segments: list[ArchivedSegment] = field(default_factory=list)

    @property
    def newest(self) -> RepoBackup | None:
        return self.backups[-1] if self.backups else None

    def newest_of(self, kind: str) -> RepoBackup | None:
        return next((b for b in reversed(self.backups) if b.type == kind), None)


def _when(ts: Any) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


def parse_info(entry: dict[str, Any]) -> RepoState:
    backups = []
    for b in entry.get("backup", []):
        backups.append(RepoBackup(
            label=b["label"], type=b.get("type", "full"), started=_when(b["timestamp"]["start"]),
            stopped=_when(b["timestamp"]["stop"]), archive_start=(b.get("archive") or {}).get("start") or "",
            archive_stop=(b.get("archive") or {}).get("stop") or "", db_id=int(b.get("database", {}).get("id", 1)),
            size=int((b.get("info") or {}).get("size", 0)), error=bool(b.get("error", False))))
    status = entry.get("status", {})
    archive_ids: dict[int, str] = {}
    ranges: dict[str, tuple[str | None, str | None]] = {}
    for a in entry.get("archive", []):
        archive_ids[int(a.get("database", {}).get("id", 1))] = a["id"]
        ranges[a["id"]] = (a.get("min"), a.get("max"))
    good = sorted((b for b in backups if not b.error), key=lambda b: b.stopped)
    return RepoState(entry.get("name", ""), int(status.get("code", -1)), str(status.get("message", "")), good,
                     archive_ids, ranges)


def read_state(bcfg: BackupConfig, *, segments: bool = True, tool: PgBackRest | None = None) -> RepoState:
    """`info` of the set's stanza, and (with `segments`) the archive of its newest backup's database."""
    assert bcfg.pgbackrest is not None
    tool = tool or PgBackRest(bcfg.pgbackrest)
    state = parse_info(tool.info())
    newest = state.newest
    if segments and newest is not None and newest.db_id in state.archive_ids:
        state.segments = list_segments(tool, state.archive_ids[newest.db_id])
    return state


def list_segments(tool: PgBackRest, archive_id: str) -> list[ArchivedSegment]:
    """Every WAL segment of one archive id, with its archive time (one recursive repo-ls)."""
    out = []
    for path, entry in tool.repo_ls(f"archive/{tool.cfg.stanza}/{archive_id}").items():
        if entry.get("type") != "file":
            continue
        name = archived_name(path)
        if name is None:
            continue
        at = _when(entry["time"]) if "time" in entry else None
        out.append(ArchivedSegment(name, at, key=path, size=int(entry.get("size", 0))))
    return out


def where(bcfg: BackupConfig) -> str:
    assert bcfg.pgbackrest is not None
    return f"pgBackRest stanza {bcfg.pgbackrest.stanza}"


def freshness(cfg: SreConfig, name: str, state: RepoState, *, now: datetime | None = None) -> CheckResult:
    """Newest backup (any type) against max_age (default: the RPO); newest archived segment against the RPO."""
    bcfg = cfg.backups[name]
    now = now or datetime.now(UTC)
    rpo = cfg.postgres.clusters[bcfg.cluster].objectives.rpo
    max_age = bcfg.max_age if bcfg.max_age is not None else rpo
    observed: dict[str, Any] = {"max_age_seconds": max_age, "rpo_seconds": rpo, "backups": len(state.backups),
                                "stanza_status": state.status_message}
    problems: list[str] = []
    if state.status_code != STATUS_OK:
        problems.append(f"{where(bcfg)}: {state.status_message} (status {state.status_code})")
    newest = state.newest
    if newest is None:
        problems.append(f"{where(bcfg)} holds no valid backup")
    else:
        age = (now - newest.stopped).total_seconds()
        observed.update(newest=newest.label, type=newest.type, taken_at=newest.stopped.isoformat(),
                        age_seconds=round(age, 1))
        for kind in ("full", "diff", "incr"):
            b = state.newest_of(kind)
            if b is not None:
                observed[f"newest_{kind}"] = b.label
        if age > max_age:
            problems.append(f"newest backup {newest.label} ({newest.type}) is {human_seconds(age)} old, older than the "
                            f"{'RPO' if bcfg.max_age is None else 'max_age'} of {human_seconds(max_age)}")
    dated = [s for s in state.segments if s.at is not None]
    if dated:
        last = max(dated, key=lambda s: (s.at, s.name))
        assert last.at is not None
        wal_age = (now - last.at).total_seconds()
        observed.update(wal_newest=last.name, wal_age_seconds=round(wal_age, 1))
        if wal_age > rpo:
            problems.append(f"newest archived WAL segment {last.name} is {human_seconds(wal_age)} old, older than "
                            f"the RPO of {human_seconds(rpo)}")
    elif newest is not None:
        problems.append(f"{where(bcfg)}: the archive holds no WAL segment")
    if problems:
        return CheckResult("backup.freshness", name, "fail", observed, "; ".join(problems))
    assert newest is not None
    msg = (f"newest backup {newest.label} ({newest.type}) is {human_seconds(observed['age_seconds'])} old "
           f"(max {human_seconds(max_age)}); newest WAL segment {human_seconds(observed['wal_age_seconds'])} old")
    return CheckResult("backup.freshness", name, "ok", observed, msg)


def continuity_result(name: str, report: Continuity | None, segment_size: int) -> CheckResult:
    """Every segment from the newest backup's first to the archive's end: a gap fails, named."""
    check = "backup.wal_continuity"
    if report is None:
        return CheckResult(check, name, "fail", {}, "no backup to start the WAL chain from")
    observed = report.observed()
    if report.missing:
        shown = ", ".join(report.missing[:5]) + (f" and {len(report.missing) - 5} more" if len(report.missing) > 5
                                                  else "")
        return CheckResult(check, name, "fail", observed,
                           f"WAL archive has a gap: segment {shown} missing between the newest backup's start "
                           f"{report.start} and the archive's end {report.end}")
    return CheckResult(check, name, "ok", observed,
                       f"{report.segments} segment(s) continuous from {report.start} to {report.end}")


def state_continuity(state: RepoState, segment_size: int) -> Continuity | None:
    newest = state.newest
    if newest is None or not newest.archive_start:
        return None
    return continuity(state.segments, newest.archive_start, segment_size=segment_size)


def repository_result(name: str, bcfg: BackupConfig, tool: PgBackRest | None = None) -> CheckResult:
    """`pgbackrest verify`: pgBackRest's own checks of checksums and archive (it never restores)."""
    assert bcfg.pgbackrest is not None
    tool = tool or PgBackRest(bcfg.pgbackrest)
    done = tool.verify()
    lines = [ln.strip() for ln in done.stdout.splitlines() if ln.strip()]
    observed: dict[str, Any] = {"exit_code": done.returncode, "output": lines[:20]}
    if done.returncode != 0:
        return CheckResult("backup.repository", name, "fail", observed, f"pgbackrest verify: {last_error(done)}")
    return CheckResult("backup.repository", name, "ok", observed, "pgbackrest verify passed")


def check_set(cfg: SreConfig, name: str, *, verify: bool = False,
              now: datetime | None = None) -> tuple[list[CheckResult], RepoState]:
    """Freshness and continuity of a pgBackRest set (one info, one repo-ls), and verify if asked."""
    bcfg = cfg.backups[name]
    assert bcfg.pgbackrest is not None
    tool = PgBackRest(bcfg.pgbackrest)
    state = read_state(bcfg, tool=tool)
    size = bcfg.pitr.wal_segment_size
    results = [freshness(cfg, name, state, now=now), continuity_result(name, state_continuity(state, size), size)]
    if verify and bcfg.pgbackrest.verify:
        results.append(repository_result(name, bcfg, tool))
    return results, state


# ---------------------------------------------------------------- point-in-time recovery


@dataclass
class PgBackRestSource:
    """A backup of the stanza and its archive, laid down by `pgbackrest restore` (sre.checks.pitr)."""

    tool: PgBackRest
    backup: RepoBackup
    segments: list[ArchivedSegment]

    @property
    def what(self) -> str:
        return f"pgBackRest backup {self.backup.label}"

    @property
    def start_segment(self) -> str:
        return self.backup.archive_start

    def restore(self, scratch: RecoveryScratch, target: Target, report: Continuity) -> None:
        scratch.make_datadir()
        args = [f"--set={self.backup.label}"]
        if target.at is None:
            args.append("--type=default")
        else:
            args += ["--type=time", f"--target={pg_time(target.at)}", "--target-action=promote"]
        self.tool.restore(scratch.datadir, *args)
        # pgBackRest wrote recovery.signal, restore_command and the target into postgresql.auto.conf.
        scratch.prepare({}, recovery_signal=False)

    def start(self, scratch: RecoveryScratch, timeout: float) -> None:
        scratch.start(timeout=timeout, env=self.tool.env())


def backup_for(state: RepoState, target: Target) -> RepoBackup | None:
    """The newest backup that ended before the target (the newest, for 'latest')."""
    if target.at is None:
        return state.newest
    at = target.at
    return next((b for b in reversed(state.backups) if b.stopped < at), None)


def pitr(cfg: SreConfig, name: str, state: RepoState, target: Target,
         progress: Progress | None = None) -> CheckResult:
    bcfg = cfg.backups[name]
    assert bcfg.pgbackrest is not None
    backup = backup_for(state, target)
    if backup is None:
        return CheckResult(pitr_check.CHECK, name, "fail", {"target": target.describe()},
                           f"{where(bcfg)} holds no backup that ended before {target.describe()}")
    source = PgBackRestSource(PgBackRest(bcfg.pgbackrest), backup, state.segments)
    return pitr_check.run(cfg, name, source, target, backup_started=backup.started, progress=progress)


def verify_set(cfg: SreConfig, name: str, *, restore: bool, target: Target | None = None,
               progress: Progress | None = None) -> list[CheckResult]:
    """Freshness, continuity, `pgbackrest verify`, and (with `restore`) a PITR to the target."""
    bcfg = cfg.backups[name]
    results, state = check_set(cfg, name, verify=True)
    if restore:
        results.append(pitr(cfg, name, state, target or resolve_target(bcfg.pitr.target), progress))
    return results
