"""The restore test's scratch PostgreSQL: gone after success, failure and interrupt; and base
backups (tar and plain) verified with pg_verifybackup and started for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sre.checks.backups import completeness, take_backup, verify
from sre.checks.restore import reap_stale
from sre.local.procs import wait_until
from sre.sandbox import Stack
from tests.integration.backup_support import (
    TABLES,
    BackupEnv,
    MakeEnv,
    by_check,
)

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.integration.backup_fixtures"]

# Verifies in a child process that stops inside the restore (the scratch server up, pg_restore
# reading) until its parent acts: a signal, or a line on stdin to go on.
CHILD = textwrap.dedent("""
    import sys
    from sre.config import load_config
    from sre.checks.backups import verify

    held = False
    def progress(phase, done, total):
        global held
        if phase == "download and restore" and not held:
            held = True
            print("restoring", flush=True)
            sys.stdin.readline()

    results = verify(load_config(sys.argv[1]), "main", restore=True, progress=progress)
    print("finished", [r.status for r in results], flush=True)
""")


def _child(env: BackupEnv) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(env.path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path.cwd())
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "restoring", (line, proc.stderr.read() if proc.stderr else "")
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_scratch_instance_is_gone_after_an_interrupt(backup_env: MakeEnv, sig: signal.Signals) -> None:
    env = backup_env()
    take_backup(env.cfg, "main")
    proc = _child(env)
    try:
        # Mid-restore: the scratch server and pg_restore run, under this test's scratch dir.
        assert len(env.scratch_leftovers()) == 1
        postgres = wait_until(env.processes_in_scratch, timeout=10, what="scratch postgres running")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "finished" not in out
    assert "Interrupt" in err or "KeyboardInterrupt" in err
    assert env.scratch_leftovers() == []
    assert env.processes_in_scratch() == []
    for pid in postgres:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_run_killed_outright_is_cleaned_up_by_the_next(backup_env: MakeEnv) -> None:
    env = backup_env()
    take_backup(env.cfg, "main")
    proc = _child(env)
    try:
        wait_until(env.processes_in_scratch, timeout=10, what="scratch postgres running")
        proc.kill()  # SIGKILL: no finally, no atexit
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(env.scratch_leftovers()) == 1  # left behind, postgres still running in its own session
    reaped = reap_stale(env.scratch_dir)
    assert len(reaped) == 1
    wait_until(lambda: not env.processes_in_scratch(), timeout=15, what="orphan scratch postgres gone")
    assert env.scratch_leftovers() == []
    # And the next verification runs normally.
    assert by_check(verify(env.cfg, "main"))["backup.restore"].status == "ok"


def test_the_same_child_finishes_when_let_go(backup_env: MakeEnv) -> None:
    env = backup_env()
    take_backup(env.cfg, "main")
    proc = _child(env)
    out, err = proc.communicate("go\n", timeout=120)
    assert proc.returncode == 0, err
    assert "finished ['ok', 'ok', 'ok', 'ok']" in out
    assert env.scratch_leftovers() == [] and env.processes_in_scratch() == []


@pytest.mark.parametrize("fmt", ["tar", "plain"])
def test_good_base_backup_is_verified_and_started(backup_env: MakeEnv, sandbox: Stack, backup_source: str,
                                                  fmt: str) -> None:
    env = backup_env(backup={"format": "basebackup", "take": {"basebackup_format": fmt}})
    taken = take_backup(env.cfg, "main")
    assert taken["key"].endswith("/")
    listing = env.s3.list_objects_v2(Bucket=env.bucket, Prefix=taken["key"])
    names = {o["Key"][len(taken["key"]):] for o in listing.get("Contents", [])}
    assert "backup_manifest" in names
    if fmt == "tar":
        assert {"base.tar", "pg_wal.tar"} <= names
    else:
        assert "PG_VERSION" in names
    results = by_check(verify(env.cfg, "main"))
    assert {c: r.status for c, r in results.items()} == {
        "backup.freshness": "ok", "backup.completeness": "ok", "backup.integrity": "ok", "backup.restore": "ok"}, \
        {c: r.message for c, r in results.items()}
    assert results["backup.integrity"].observed["pg_verifybackup"] == "ok"
    assert sandbox.postgres
    for table in TABLES:
        source = sandbox.postgres.primary.sql(f"SELECT count(*) FROM {table}", database=backup_source)[0][0]
        assert results["backup.restore"].observed["tables"][table]["restored"] == source
    assert env.scratch_leftovers() == [] and env.processes_in_scratch() == []


def test_base_backup_without_manifest_fails_completeness(backup_env: MakeEnv) -> None:
    env = backup_env(backup={"format": "basebackup"})
    taken = take_backup(env.cfg, "main")
    env.s3.delete_object(Bucket=env.bucket, Key=taken["key"] + "backup_manifest")
    result = completeness(env.cfg, "main")
    assert result.status == "fail"
    assert "backup_manifest missing" in result.message
    results = by_check(verify(env.cfg, "main", restore=False))
    assert results["backup.completeness"].status == "fail"
    assert results["backup.integrity"].status == "warn"
    assert "pg_verifybackup cannot check" in results["backup.integrity"].message
    assert env.scratch_leftovers() == []


def test_base_backup_with_a_flipped_byte_fails_pg_verifybackup(backup_env: MakeEnv) -> None:
    from tests.integration.backup_support import flip_byte

    env = backup_env(backup={"format": "basebackup", "take": {"basebackup_format": "plain"}})
    taken = take_backup(env.cfg, "main")
    flip_byte(env.s3, env.bucket, taken["key"] + "global/pg_control", at=0.01)
    results = by_check(verify(env.cfg, "main", restore=False))
    integrity = results["backup.integrity"]
    assert integrity.status == "fail"
    assert "pg_verifybackup" in integrity.message and "global/pg_control" in integrity.message
    assert env.scratch_leftovers() == []


def test_service_shutdown_interrupts_the_daily_job_cleanly(backup_env: MakeEnv) -> None:
    from sre.checks.backups import run_verify_job
    from sre.results import JobContext
    from sre.store import open_store

    env = backup_env()
    take_backup(env.cfg, "main")
    calls = 0

    def cancelled() -> bool:  # the shutdown arrives once the restore has started
        nonlocal calls
        calls += 1
        return calls > 1

    store = open_store(env.cfg)
    try:
        outcome = run_verify_job(JobContext(env.cfg, store, trigger="schedule", cancelled=cancelled))
    finally:
        store.dispose()
    assert outcome.status == "interrupted" and outcome.summary["interrupted_at"] == "main"
    assert calls >= 2
    assert env.scratch_leftovers() == [] and env.processes_in_scratch() == []
