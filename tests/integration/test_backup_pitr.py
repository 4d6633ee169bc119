"""pgBackRest sets against the real pgBackRest and PostgreSQL: WAL gaps named, PITR to a target
proven by the canary rows, freshness, an S3 repository (moto behind stunnel), and a scratch
instance killed mid-restore removed by the next run.

One archived server and one full backup serve the module (a backup takes several seconds);
tests that damage the archive work on a copy of the repository.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from sre.checks import pgbackrest as pb
from sre.checks.backups import take_backup, verify
from sre.checks.pitr import Target
from sre.checks.pitr_canary import ensure_table, write_canary
from sre.config import SreConfig, load_config
from sre.drills.failover import DrillRequest, FailoverDrill
from sre.drills.preflight import run_preflight
from sre.local.postgres import chown_for_postgres
from sre.local.procs import wait_until
from sre.sandbox import Stack
from sre.sandbox.pgbackrest import PgBackRestSite, Stunnel, s3_options, start_site
from tests.cli import sre
from tests.drill_env import EnvFactory

pytestmark = pytest.mark.slow

CANARY = "sre_pitr_canary"
SEGMENTS = 5


@dataclass
class Archived:
    site: PgBackRestSite
    root: Path
    basebackup: dict[str, Any] = field(default_factory=dict)  # the backups.main entry of the base backup set
    rows: list[tuple[int, datetime]] = field(default_factory=list)  # rows[i] lives in segments[i]
    segments: list[str] = field(default_factory=list)

    def config(self, *, repo_path: str | None = None, aws: dict[str, Any] | None = None,
               **backup: Any) -> tuple[SreConfig, Path]:
        token = secrets.token_hex(3)
        scratch = self.root / f"scratch-{token}"
        scratch.mkdir(mode=0o755)
        secret = self.root / f"dsn-{token}"
        secret.write_text(self.site.server.dsn)
        data = {"postgres": {"clusters": {"main": {
                    "database": "postgres",
                    "primary": {"name": "east1", "region": "us-east-1", "dsn": {"file": str(secret)}}}}},
                "backups": {"main": {"cluster": "main", **self.site.backup_set(repo_path=repo_path),
                                     "restore": {"scratch_dir": str(scratch)}, **backup}}}
        if aws:
            data["aws"] = aws
        path = self.root / f"sre-{token}.yaml"
        path.write_text(yaml.safe_dump(data))
        return load_config(path), path

    def damaged_copy(self, segment: str) -> str:
        """A copy of the repository without `segment`; its path."""
        copy = self.root / f"repo-{secrets.token_hex(3)}"
        shutil.copytree(self.site.repo_path, copy)
        found = list(copy.glob(f"archive/*/*/*/{segment}-*"))
        assert len(found) == 1, found
        found[0].unlink()
        for path in [copy, *copy.rglob("*")]:
            chown_for_postgres(path)  # pgBackRest runs as postgres and refuses what it cannot read
        return str(copy)


def _after(at: datetime, seconds: float) -> None:
    """Wait until the clock has passed `at` + seconds (archive times are whole seconds)."""
    wait_until(lambda: datetime.now(UTC) >= at + timedelta(seconds=seconds), timeout=seconds + 5,
               what="the clock to move on", interval=0.05)


@pytest.fixture(scope="module")
def archived(sandbox: Stack) -> Iterator[Archived]:
    """The archived server, a pgBackRest full backup, and a pg_basebackup in S3 whose WAL a
    shipper uploads to S3 as it is archived (so each segment's LastModified is its archive time)."""
    assert sandbox.moto is not None
    root = Path(f"/tmp/sre-pitr-test-{secrets.token_hex(4)}")
    shipped = root / "shipped"
    site = start_site(root / "site", copy_to=shipped)
    env = Archived(site, root)
    bucket = f"pitr-{secrets.token_hex(4)}"
    aws = {"region": "us-east-1", "endpoint_url": sandbox.moto.url, "access_key_id": {"env": "SRE_TEST_AWS_KEY"},
           "secret_access_key": {"env": "SRE_TEST_AWS_KEY"}}
    os.environ["SRE_TEST_AWS_KEY"] = "sandbox"
    s3 = boto3.client("s3", endpoint_url=sandbox.moto.url, region_name="us-east-1", aws_access_key_id="sandbox",
                      aws_secret_access_key="sandbox")
    s3.create_bucket(Bucket=bucket)

    def ship() -> None:
        for path in sorted(shipped.iterdir()):
            key = f"postgres/main/wal/{path.name}"
            if "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=key):
                s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    stop = threading.Event()

    def keep_writing() -> None:
        tick = 0
        while not stop.wait(1.0):
            write_canary(site.server.dsn, CANARY)
            tick += 1
            if tick % 2 == 0:
                site.switch_wal()

    writer = threading.Thread(target=keep_writing, name="canary", daemon=True)
    try:
        dsn = site.server.dsn
        ensure_table(dsn, CANARY)
        write_canary(dsn, CANARY)
        site.backup()
        env.basebackup = {"format": "basebackup", "bucket": bucket, "prefix": "postgres/main/",
                          "wal_prefix": "postgres/main/wal/", "aws": aws}
        cfg, _ = env.config(**{k: v for k, v in env.basebackup.items() if k != "aws"}, aws=aws)
        take_backup(cfg, "main")
        # One canary row per segment, each segment archived well after its row and well before
        # the next row, so that a target between two rows needs exactly the segments up to the later.
        for _ in range(SEGMENTS):
            row = write_canary(dsn, CANARY)
            env.rows.append(row)
            _after(row[1], 1.2)
            env.segments.append(site.switch_wal())
            ship()
            _after(row[1], 2.6)
        # From here on, as in production: a canary row every second (the backups.canary job) and
        # a segment archived every two (archive_timeout), so any recent time lies between rows.
        writer.start()
        yield env
    finally:
        stop.set()
        if writer.is_alive():
            writer.join(30)
        site.stop()
        shutil.rmtree(root, ignore_errors=True)


def _statuses(results: list[Any]) -> dict[str, str]:
    return {r.check: r.status for r in results}


def test_a_continuous_archive_passes_and_a_deleted_middle_segment_is_named(archived: Archived) -> None:
    cfg, _ = archived.config()
    results, _state = pb.check_set(cfg, "main", verify=True)
    assert _statuses(results) == {"backup.freshness": "ok", "backup.wal_continuity": "ok",
                                  "backup.repository": "ok"}, [r.message for r in results]
    middle = archived.segments[2]
    cfg, _ = archived.config(repo_path=archived.damaged_copy(middle))
    results, _state = pb.check_set(cfg, "main", verify=True)
    gap = next(r for r in results if r.check == "backup.wal_continuity")
    assert gap.status == "fail" and middle in gap.message, gap.message
    assert gap.observed["missing"] == [middle]


def test_a_gap_after_the_backup_fails_a_later_target_and_passes_an_earlier_one(archived: Archived) -> None:
    gone = archived.segments[3]
    cfg, _ = archived.config(repo_path=archived.damaged_copy(gone))
    state = pb.read_state(cfg.backups["main"])
    later = pb.pitr(cfg, "main", state, Target("after the gap", archived.rows[3][1] + timedelta(seconds=0.3)))
    assert later.status == "fail" and gone in later.message, later.message
    assert "restore_seconds" not in later.observed  # refused before restoring anything
    earlier_at = archived.rows[1][1] + timedelta(seconds=0.3)
    earlier = pb.pitr(cfg, "main", state, Target("before the gap", earlier_at))
    assert earlier.status == "ok", earlier.message
    assert earlier.observed["canary"]["missing"] == 0 and earlier.observed["canary"]["after_target"] == 0
    assert datetime.fromisoformat(earlier.observed["recovered_at"]) == archived.rows[1][1]
    assert 0 <= earlier.observed["lag_seconds"] <= 1.0


def test_the_cli_names_the_gap_with_exit_1_and_refuses_a_bad_target_with_exit_2(archived: Archived) -> None:
    gone = archived.segments[3]
    _cfg, path = archived.config(repo_path=archived.damaged_copy(gone))
    later = (archived.rows[3][1] + timedelta(seconds=0.3)).isoformat()
    done = sre("backup", "verify", "--config", str(path), "--backup", "main", "--target", later, "--no-posture",
               "--no-record", "--output", "json")
    assert done.returncode == 1, done.stderr
    results = {r["check"]: r for r in json.loads(done.stdout)["results"]}
    assert results["backup.pitr"]["status"] == "fail" and gone in results["backup.pitr"]["message"]
    assert results["backup.wal_continuity"]["observed"]["missing"] == [gone]
    listed = sre("backup", "list", "--config", str(path), "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [b["type"] for b in json.loads(listed.stdout)["main"]["backups"]] == ["full"]
    bad = sre("backup", "verify", "--config", str(path), "--target", "yesterday-ish", "--no-record")
    assert bad.returncode == 2 and "latest-minus" in bad.stderr + bad.stdout and "Traceback" not in bad.stderr


def test_a_backup_older_than_the_rpo_fails_on_freshness(archived: Archived) -> None:
    cfg, _ = archived.config()
    state = pb.read_state(cfg.backups["main"])
    assert state.newest is not None
    late = state.newest.stopped + timedelta(seconds=cfg.postgres.clusters["main"].objectives.rpo + 60)
    result = pb.freshness(cfg, "main", state, now=late)
    assert result.status == "fail"
    assert f"newest backup {state.newest.label} (full)" in result.message and "older than the RPO" in result.message


# Runs a PITR in a child that stops once the scratch server has recovered, until killed.
CHILD = textwrap.dedent("""
    import sys
    from datetime import datetime
    from sre.config import load_config
    from sre.checks import pgbackrest as pb
    from sre.checks.pitr import Target

    def progress(phase, done, total):
        if phase == "proof":
            print("recovered", flush=True)
            sys.stdin.readline()

    cfg = load_config(sys.argv[1])
    state = pb.read_state(cfg.backups["main"])
    pb.pitr(cfg, "main", state, Target("t", datetime.fromisoformat(sys.argv[2])), progress)
""")


def test_a_killed_run_is_cleaned_by_the_next_which_recovers_to_30s_ago(archived: Archived) -> None:
    cfg, path = archived.config()
    scratch = cfg.backups["main"].restore.scratch_dir
    target_at = archived.rows[2][1] + timedelta(seconds=0.5)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), target_at.isoformat()], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "recovered", child.stderr.read() if child.stderr else ""
        child.kill()  # SIGKILL mid-restore: no finally, no atexit
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    leftovers = list(scratch.iterdir())
    assert len(leftovers) == 1
    # The scratch server gets its parent's death signal and may already be shutting down; if it is
    # still up, the next run must stop it too.
    pid_file = leftovers[0] / "data" / "postmaster.pid"
    try:
        postmaster: int | None = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        postmaster = None

    # The next run: a target 30 s in the past (after the backup, inside the archive).
    _after(archived.rows[0][1], 31)
    target = Target("latest-minus 30s", datetime.now(UTC) - timedelta(seconds=30))
    assert target.at is not None
    state = pb.read_state(cfg.backups["main"])
    result = pb.pitr(cfg, "main", state, target)
    assert result.status == "ok", result.message
    canary = result.observed["canary"]
    assert canary["missing"] == 0 and canary["after_target"] == 0 and canary["expected"] >= 2
    recovered = datetime.fromisoformat(result.observed["recovered_at"])
    assert target.at - timedelta(seconds=5) <= recovered <= target.at  # a row about every second, none after
    assert result.observed["restored_by"]["superuser"] is False  # checked as a read-only role
    assert list(scratch.iterdir()) == []
    if postmaster is not None:
        wait_until(lambda: not Path(f"/proc/{postmaster}").exists(), timeout=15, what="orphan scratch postgres gone")


def test_a_base_backup_with_its_wal_in_s3_takes_the_same_path(archived: Archived) -> None:
    spec = dict(archived.basebackup)
    aws = spec.pop("aws")
    cfg, _ = archived.config(aws=aws, **spec)
    target_at = archived.rows[1][1] + timedelta(seconds=0.3)
    results = {r.check: r for r in verify(cfg, "main", pitr=True, target=Target("t", target_at))}
    assert {c: r.status for c, r in results.items()} == {
        "backup.freshness": "ok", "backup.completeness": "ok", "backup.integrity": "ok",
        "backup.wal_continuity": "ok", "backup.pitr": "ok"}, {c: r.message for c, r in results.items()}
    assert datetime.fromisoformat(results["backup.pitr"].observed["recovered_at"]) == archived.rows[1][1]
    assert results["backup.integrity"].observed["pg_verifybackup"] == "ok"
    # The same gap rules: a segment gone from S3 fails a target after it, by name.
    gone = archived.segments[3]
    s3 = boto3.client("s3", endpoint_url=aws["endpoint_url"], region_name="us-east-1", aws_access_key_id="sandbox",
                      aws_secret_access_key="sandbox")
    s3.delete_object(Bucket=spec["bucket"], Key=f"{spec['wal_prefix']}{gone}")
    later = archived.rows[3][1] + timedelta(seconds=0.3)
    results = {r.check: r for r in verify(cfg, "main", pitr=True, target=Target("t", later))}
    assert results["backup.pitr"].status == "fail" and gone in results["backup.pitr"].message
    assert results["backup.wal_continuity"].status == "fail" and results["backup.wal_continuity"].observed[
        "missing"] == [gone]


def test_an_s3_repository_behind_stunnel_verifies_and_restores(archived: Archived, sandbox: Stack) -> None:
    assert sandbox.moto is not None
    bucket = f"pgbr-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=sandbox.moto.url, region_name="us-east-1", aws_access_key_id="sandbox",
                 aws_secret_access_key="sandbox").create_bucket(Bucket=bucket)
    root = archived.root / "s3"
    tunnel = Stunnel.start(root / "stunnel", sandbox.moto.port)
    try:
        site = start_site(root / "site", s3=s3_options(bucket, tunnel.port))
        try:
            ensure_table(site.server.dsn, CANARY)
            site.backup()
            row = write_canary(site.server.dsn, CANARY)
            _after(row[1], 1.5)
            site.switch_wal()  # a commit after the target, archived
            s3_env = Archived(site, root)
            cfg, _ = s3_env.config(pgbackrest={"stanza": site.stanza, "config": str(site.conf), "verify": False})
            results, state = pb.check_set(cfg, "main")
            assert _statuses(results) == {"backup.freshness": "ok", "backup.wal_continuity": "ok"}, \
                [r.message for r in results]
            restored = pb.pitr(cfg, "main", state, Target("row", row[1] + timedelta(seconds=1.2)))
            assert restored.status == "ok", restored.message
            assert restored.observed["canary"]["missing"] == 0
        finally:
            site.stop()
    finally:
        tunnel.stop()


def test_a_drill_preflight_checks_each_backup_set_by_its_own_format(archived: Archived, drill_env: EnvFactory,
                                                                      sandbox: Stack) -> None:
    """A pgBackRest set has no bucket: its freshness comes from its stanza, the pg_dump set's from S3."""
    assert sandbox.moto is not None
    bucket = f"drill-dump-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=sandbox.moto.url, region_name="us-east-1", aws_access_key_id="sandbox",
                 aws_secret_access_key="sandbox").create_bucket(Bucket=bucket)
    env = drill_env(objectives={"rpo": "1h"}, extra={"backups": {
        "main-pitr": {"cluster": "main", **archived.site.backup_set()},
        "main-dump": {"cluster": "main", "format": "pg_dump", "bucket": bucket, "prefix": "postgres/main/"}}})
    cfg = env.config()
    take_backup(cfg, "main-dump")
    drill = FailoverDrill(cfg, env.store(), DrillRequest("us-east-1", "eu-west-1"))
    checked = {r.target: r for r in run_preflight(drill) if r.check == "drill.preflight.backups"}
    assert {n: r.status for n, r in checked.items()} == {"main-pitr": "ok", "main-dump": "ok"}, checked
    assert "(full)" in checked["main-pitr"].message and "newest WAL segment" in checked["main-pitr"].message
