"""`sre backup take|list|verify|posture`: backups of the PostgreSQL clusters, verified down to a restore,
and the posture of their buckets and of the media buckets."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import EXIT_FAILED, ConfigOpt, Output, OutputOpt, console, emit, load, plain, status_style, table
from sre.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sre.config import SreConfig
    from sre.results import CheckResult

app = typer.Typer(no_args_is_help=True)

BackupOpt = Annotated[str | None, typer.Option("--backup", "-b", help="A backup set (backups.<name>); default: all.",
                                               show_default=False)]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", help="The backup sets of this PostgreSQL cluster.",
                                                show_default=False)]


def _select(cfg: SreConfig, backup: str | None, cluster: str | None) -> list[str]:
    if backup is not None:
        if backup not in cfg.backups:
            raise UsageError(f"no backup set named {backup!r} (configured: {', '.join(sorted(cfg.backups)) or 'none'})")
        return [backup]
    names = [n for n, b in cfg.backups.items() if cluster is None or b.cluster == cluster]
    if not names:
        raise UsageError("no backup set configured" + (f" for cluster {cluster!r}" if cluster else "")
                         + " (sre.yaml backups:)")
    return names


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, str, int, int | None], None]]:
    """A Rich progress bar on stderr (bytes for download and restore); silent off a terminal."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    con = console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=con, transient=False,
                   disable=not (enabled and con.is_terminal))
    tasks: dict[tuple[str, str], Any] = {}

    def update(name: str, phase: str, done: int, total: int | None) -> None:
        key = (name, phase)
        if key not in tasks:
            for other in [k for k in tasks if k[0] == name]:
                bar.stop_task(tasks[other])
            tasks[key] = bar.add_task(f"{name}: {phase}", total=total)
        bar.update(tasks[key], completed=done, total=total)

    with bar:
        yield update


def _show_results(output: Output, results: list[CheckResult], title: str) -> None:
    failed = [r for r in results if r.status == "fail"]
    data = {"ok": not failed, "failed": len(failed), "results": [r.to_dict() for r in results]}

    def show(c):  # type: ignore[no-untyped-def]
        c.print(table(title, ["check", "target", "status", "reason / figures"],
                      [[r.check, r.target, status_style(r.status), r.message] for r in results]))
        if failed:
            c.print(f"[red]{len(failed)} check(s) failed[/]: " + plain(", ".join(f"{r.check} {r.target}" for r in failed)))
        else:
            c.print(f"[green]all {len(results)} checks passed[/]")

    emit(output, data, show)


@app.command()
def take(
    backup: BackupOpt = None,
    cluster: ClusterOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """pg_dump (or pg_basebackup) of a configured cluster, streamed to S3 with SSE and its SHA-256 recorded."""
    from sre.checks.backups import take_backup

    cfg = load(config)
    names = _select(cfg, backup, cluster)
    if backup is None:
        # pgBackRest takes its own backups (pgbackrest backup); sre verifies them.
        names = [n for n in names if cfg.backups[n].format != "pgbackrest"]
    taken = []
    with _progress(output is Output.table) as update:
        for name in names:
            taken.append(take_backup(cfg, name, progress=_bytes(update, name, "upload")))

    def show(c):  # type: ignore[no-untyped-def]
        c.print(table("backups taken", ["backup", "object", "size", "sha256", "seconds"],
                      [[t["backup"], f"s3://{t['bucket']}/{t['key']}", t["size"], t.get("sha256", "(per object)"),
                        t["seconds"]] for t in taken]))

    emit(output, {"taken": taken}, show)


def _bytes(update: Callable[[str, str, int, int | None], None], name: str, phase: str) -> Callable[[int], None]:
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        update(name, phase, done, None)

    return step


@app.command("list")
def list_(
    backup: BackupOpt = None,
    cluster: ClusterOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """The backups in each set's bucket, newest last, with time, age and size (one paged listing each)."""
    from sre.adapters import s3 as s3a
    from sre.checks.backup_layout import list_backups
    from sre.checks.humanize import human_seconds

    cfg = load(config)
    s3 = s3a.client(cfg.aws)
    data: dict[str, Any] = {}
    rows = []
    for name in _select(cfg, backup, cluster):
        bcfg = cfg.backups[name]
        if bcfg.format == "pgbackrest":
            data[name], found = _pgbackrest_listing(bcfg)
            rows += [[name, *row] for row in found]
            continue
        listing = list_backups(s3, bcfg)
        data[name] = {"bucket": bcfg.bucket, "prefix": bcfg.prefix, "objects_listed": listing.objects,
                      "backups": [{**b.summary(), "age_seconds": round(b.age_seconds(), 1)} for b in listing.backups]}
        for b in listing.backups:
            rows.append([name, b.name, b.taken_at.strftime("%Y-%m-%d %H:%M:%SZ"), human_seconds(b.age_seconds()), b.size,
                         len(b.objects), f"s3://{bcfg.bucket}/{b.key}"])

    def show(c):  # type: ignore[no-untyped-def]
        c.print(table("backups", ["set", "backup", "taken (UTC)", "age", "bytes", "objects", "where"], rows))
        if not rows:
            c.print("no backups found")

    emit(output, data, show)


def _pgbackrest_listing(bcfg: Any) -> tuple[dict[str, Any], list[list[Any]]]:
    """A stanza's backups from `pgbackrest info` (no bucket listing: the repository is pgBackRest's)."""
    from sre.checks.humanize import human_seconds
    from sre.checks.pgbackrest import read_state

    state = read_state(bcfg, segments=False)
    now = datetime.now(UTC)
    backups = [{**b.summary(), "age_seconds": round((now - b.stopped).total_seconds(), 1)} for b in state.backups]
    rows = [[f"{b.label} ({b.type})", b.stopped.strftime("%Y-%m-%d %H:%M:%SZ"),
             human_seconds((now - b.stopped).total_seconds()), b.size, "-", f"pgbackrest stanza {state.stanza}"]
            for b in state.backups]
    return {"stanza": state.stanza, "status": state.status_message, "backups": backups}, rows


def _phases(update: Callable[[str, str, int, int | None], None], name: str) -> Callable[[str, int, int | None], None]:
    def step(phase: str, done: int, total: int | None) -> None:
        update(name, phase, done, total)

    return step


@app.command()
def verify(
    backup: BackupOpt = None,
    cluster: ClusterOpt = None,
    no_restore: Annotated[bool, typer.Option("--no-restore", help="Skip the restore test (integrity still reads "
                                             "every byte).")] = False,
    no_posture: Annotated[bool, typer.Option("--no-posture", help="Skip the bucket posture checks.")] = False,
    pitr: Annotated[bool, typer.Option("--pitr", help="Restore to a point in time (sets with a WAL archive) and "
                                       "prove it with the canary table.")] = False,
    target: Annotated[str | None, typer.Option("--target", help="PITR target: an ISO time, 'latest' or "
                                               "'latest-minus 5m' (default: the set's pitr.target); implies --pitr.",
                                               show_default=False)] = None,
    record: Annotated[bool, typer.Option("--record/--no-record", help="Keep the results in the state store.")] = True,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Freshness, completeness, integrity, a restore test into a scratch PostgreSQL, and bucket posture.

    Exit 1 when any check fails, with the reason per check."""
    from sre.checks.backups import posture
    from sre.checks.backups import verify as run_verify
    from sre.checks.pitr import resolve_target

    cfg = load(config)
    names = _select(cfg, backup, cluster)
    goal = resolve_target(target) if target is not None else None
    if no_restore and (pitr or goal is not None):
        raise UsageError("--pitr/--target restore to a point in time: they cannot go with --no-restore")
    results: list[CheckResult] = []
    with _progress(True) as update:
        for name in names:
            results += run_verify(cfg, name, restore=not no_restore, progress=_phases(update, name),
                                  pitr=pitr or goal is not None, target=goal)
    if not no_posture:
        # Every bucket (media too) when no set is named; else only the named sets' buckets.
        results += posture(cfg, names if backup or cluster else None)
    if record:
        from sre.jobs import record_run

        record_run(cfg, "backups.verify", results)
    _show_results(output, results, "backup verification")
    if any(r.status == "fail" for r in results):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def posture(
    bucket: Annotated[list[str] | None, typer.Option(
        "--bucket", help="A media bucket entry (buckets.<name>); repeatable.", show_default=False)] = None,
    backup: Annotated[list[str] | None, typer.Option(
        "--backup", "-b", help="The bucket of a backup set (backups.<name>); repeatable.", show_default=False)] = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Bucket posture now (versioning, encryption, public access, replication, object lock): every
    configured bucket, or those named. Reads only. Exit 1 when a check fails."""
    from sre.adapters import s3 as s3a
    from sre.checks.bucket_posture import check_bucket, targets

    cfg = load(config)
    unknown = [f"buckets.{n}" for n in bucket or [] if n not in cfg.buckets]
    unknown += [f"backups.{n}" for n in backup or [] if n not in cfg.backups]
    if unknown:
        raise UsageError(f"no such entry: {', '.join(unknown)}", hint=f"buckets: {', '.join(sorted(cfg.buckets)) or '-'}; "
                         f"backups: {', '.join(sorted(cfg.backups)) or '-'}")
    chosen = targets(cfg)
    if bucket or backup:
        wanted = {cfg.buckets[n].name for n in bucket or []} | {cfg.backups[n].bucket for n in backup or []}
        chosen = [t for t in chosen if t.bucket in wanted]
    s3 = s3a.client(cfg.aws)
    results = [r for t in chosen for r in check_bucket(s3, t)]
    _show_results(output, results, "bucket posture")
    if any(r.status == "fail" for r in results):
        raise typer.Exit(EXIT_FAILED)
