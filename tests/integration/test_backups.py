"""Backup checks against moto's S3 and the sandbox PostgreSQL: a good dump passes everything,
and each defect fails its own check with a reason that names it."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from sre.adapters import s3 as s3a
from sre.checks.backup_layout import Layout, list_backups
from sre.checks.backups import completeness, freshness, take_backup, verify
from sre.sandbox import Stack
from tests.integration.backup_support import (
    TABLES,
    MakeEnv,
    by_check,
    create_source,
    drop_source,
    flip_byte,
    truncate,
)

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.integration.backup_fixtures"]


def test_good_backup_passes_every_check_and_row_counts_match(backup_env: MakeEnv, sandbox: Stack,
                                                             backup_source: str) -> None:
    env = backup_env()
    taken = take_backup(env.cfg, "main")
    assert taken["key"].startswith("postgres/main/") and taken["key"].endswith(".dump")
    head = env.s3.head_object(Bucket=env.bucket, Key=taken["key"])
    assert head["ServerSideEncryption"] == "AES256"
    sidecar = env.s3.get_object(Bucket=env.bucket, Key=taken["key"] + ".sha256")["Body"].read().decode()
    assert sidecar.split()[0] == taken["sha256"]

    results = by_check(verify(env.cfg, "main", restore=True))
    assert {c: r.status for c, r in results.items()} == {
        "backup.freshness": "ok", "backup.completeness": "ok", "backup.integrity": "ok", "backup.restore": "ok"}
    restore = results["backup.restore"]
    assert sandbox.postgres
    for table in TABLES:
        source = sandbox.postgres.primary.sql(f"SELECT count(*) FROM {table}", database=backup_source)[0][0]
        assert restore.observed["tables"][table] == {"restored": source, "source": source}
    assert restore.observed["canary"] is True
    # Restored and read by an unprivileged role: every table it made is its own.
    assert restore.observed["restored_by"] == {"role": "sre_restore", "superuser": False,
                                               "table_owners": ["sre_restore"]}
    assert results["backup.integrity"].observed["objects"][0]["recorded_in"] == "sidecar"
    # Exported for Prometheus.
    assert REGISTRY.get_sample_value("sre_backup_verify_success", {"cluster": "main", "check": "backup.restore"}) == 1
    assert REGISTRY.get_sample_value("sre_backup_size_bytes", {"cluster": "main"}) == taken["size"]
    assert REGISTRY.get_sample_value("sre_backup_restore_duration_seconds", {"cluster": "main"}) > 0
    assert env.scratch_leftovers() == [] and env.processes_in_scratch() == []


def test_flipped_byte_fails_integrity(backup_env: MakeEnv) -> None:
    env = backup_env()
    taken = take_backup(env.cfg, "main")
    flip_byte(env.s3, env.bucket, taken["key"])
    results = by_check(verify(env.cfg, "main", restore=True))
    integrity = results["backup.integrity"]
    assert integrity.status == "fail"
    assert "checksum mismatch" in integrity.message and taken["key"] in integrity.message
    assert results["backup.freshness"].status == "ok" and results["backup.completeness"].status == "ok"
    # The scratch instance is gone after a failed run as after a good one.
    assert env.scratch_leftovers() == [] and env.processes_in_scratch() == []


def test_truncated_object_fails_integrity_and_restore(backup_env: MakeEnv) -> None:
    env = backup_env()
    taken = take_backup(env.cfg, "main")
    truncate(env.s3, env.bucket, taken["key"])
    results = by_check(verify(env.cfg, "main", restore=True))
    assert results["backup.integrity"].status == "fail"
    assert "truncated" in results["backup.integrity"].message
    assert results["backup.restore"].status == "fail"
    assert "pg_restore failed" in results["backup.restore"].message
    assert env.scratch_leftovers() == [] and env.processes_in_scratch() == []


def test_backup_older_than_rpo_fails_freshness(backup_env: MakeEnv) -> None:
    env = backup_env(objectives={"rpo": "5m"})
    taken = take_backup(env.cfg, "main")
    # The same backup as if taken two hours ago: named by its stamp, as the layout says.
    old_key = Layout(env.backup).key_for(datetime.now(UTC) - timedelta(hours=2))
    for suffix in ("", ".sha256"):
        env.s3.copy_object(Bucket=env.bucket, Key=old_key + suffix,
                           CopySource={"Bucket": env.bucket, "Key": taken["key"] + suffix})
        env.s3.delete_object(Bucket=env.bucket, Key=taken["key"] + suffix)
    result = freshness(env.cfg, "main")
    assert result.status == "fail"
    assert "older than the RPO of 5.0 min" in result.message
    assert 7100 < result.observed["age_seconds"] < 7300
    assert REGISTRY.get_sample_value("sre_backup_age_seconds", {"cluster": "main"}) is not None
    # And with the backup's own max_age (a daily dump under a WAL-based RPO), the same age passes.
    env2 = backup_env(backup={"max_age": "1d"})
    take_backup(env2.cfg, "main")
    assert freshness(env2.cfg, "main").status == "ok"


def test_wal_archive_age_is_part_of_freshness(backup_env: MakeEnv) -> None:
    env = backup_env(backup={"wal_prefix": "postgres/main/wal/", "max_age": "1d"})
    take_backup(env.cfg, "main")
    missing = freshness(env.cfg, "main")
    assert missing.status == "fail" and "no WAL segment" in missing.message
    for seg in ("000000010000000000000001", "000000010000000000000002"):
        env.s3.put_object(Bucket=env.bucket, Key=f"postgres/main/wal/0000000100000000/{seg}", Body=b"w" * 64)
    result = freshness(env.cfg, "main")
    assert result.status == "ok", result.message
    assert result.observed["wal_newest"].endswith("000000010000000000000002")
    # WAL segments under the backup prefix are not counted as backups.
    assert completeness(env.cfg, "main").observed["backups"] == 1


def test_dump_missing_a_table_fails_the_sanity_query(backup_env: MakeEnv, sandbox: Stack) -> None:
    source = create_source(sandbox, drop_table="messaging.messages")
    try:
        env = backup_env(database=source, backup={
            "tables": ["messaging.users"], "canary": None,
            "sanity": [{"name": "messages present", "sql": "SELECT count(*) FROM messaging.messages"}]})
        take_backup(env.cfg, "main")
        results = by_check(verify(env.cfg, "main", restore=True))
    finally:
        drop_source(sandbox, source)
    restore = results["backup.restore"]
    assert restore.status == "fail"
    assert "sanity query 'messages present' failed" in restore.message
    assert 'relation "messaging.messages" does not exist' in restore.message
    assert results["backup.integrity"].status == "ok"
    assert env.scratch_leftovers() == [] and env.processes_in_scratch() == []


def test_smaller_than_a_fraction_of_the_previous_fails_completeness(backup_env: MakeEnv) -> None:
    env = backup_env(backup={"min_size_ratio": 0.5})
    taken = take_backup(env.cfg, "main")
    older = Layout(env.backup).key_for(datetime.now(UTC) - timedelta(hours=1))
    env.s3.put_object(Bucket=env.bucket, Key=older, Body=b"\0" * (taken["size"] * 4))
    result = completeness(env.cfg, "main")
    assert result.status == "fail"
    assert "below min_size_ratio 50%" in result.message
    assert result.observed["size_ratio"] == pytest.approx(0.25, abs=0.01)


def test_empty_listing_fails_completeness(backup_env: MakeEnv) -> None:
    env = backup_env()
    env.s3.put_object(Bucket=env.bucket, Key="postgres/main/README", Body=b"not a backup")
    results = by_check(verify(env.cfg, "main", restore=True))
    assert results["backup.completeness"].status == "fail"
    assert "holds no backup" in results["backup.completeness"].message
    assert results["backup.freshness"].status == "fail" and "no backup found" in results["backup.freshness"].message
    assert results["backup.restore"].status == "fail"


def test_s3_checksums_are_recomputed_when_the_tool_recorded_none(backup_env: MakeEnv) -> None:
    """Backups written by another tool: no sidecar, no metadata, only S3's own SHA-256 (whole or per part)."""
    env = backup_env(backup={"min_size_ratio": 0.0})
    layout = Layout(env.backup)
    small = layout.key_for(datetime.now(UTC) - timedelta(minutes=1))
    env.s3.put_object(Bucket=env.bucket, Key=small, Body=b"single part", ChecksumAlgorithm="SHA256")
    result = by_check(verify(env.cfg, "main", restore=False))["backup.integrity"]
    assert result.status == "ok", result.message
    assert result.observed["objects"][0]["recorded_in"] == "s3"

    big = layout.key_for(datetime.now(UTC))
    body = bytes(range(256)) * (48 * 1024) + b"tail"  # 12 MiB + 4 bytes: parts of 5, 5 and 2 MiB
    env.s3.upload_fileobj(io.BytesIO(body), env.bucket, big, ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                          Config=s3a.transfer_config(5 << 20))
    result = by_check(verify(env.cfg, "main", restore=False))["backup.integrity"]
    assert result.status == "ok", result.message
    assert result.observed["objects"][0]["recorded_in"] == "s3-composite"

    plain = layout.key_for(datetime.now(UTC) + timedelta(minutes=1))
    env.s3.put_object(Bucket=env.bucket, Key=plain, Body=b"no checksum anywhere")
    unchecked = by_check(verify(env.cfg, "main", restore=False))["backup.integrity"]
    if unchecked.observed["objects"][0]["recorded_in"] == "none":  # moto records CRC32, not SHA-256, by default
        assert unchecked.status == "warn" and "no checksum recorded" in unchecked.message


def test_thousands_of_objects_list_in_pages(backup_env: MakeEnv) -> None:
    env = backup_env(backup={"max_age": "30d", "min_size_ratio": 0.0})
    layout = Layout(env.backup)
    start = datetime.now(UTC) - timedelta(days=3)
    keys = [layout.key_for(start + timedelta(minutes=i)) for i in range(2100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: env.s3.put_object(Bucket=env.bucket, Key=k, Body=b"x" * 10), keys))
    s3 = s3a.client(env.cfg.aws)
    calls: list[dict[str, object]] = []
    s3.meta.events.register("provide-client-params.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params)))
    listing = list_backups(s3, env.backup)
    assert len(listing.backups) == 2100
    assert len(calls) == 3  # 1000 + 1000 + 100
    assert calls[1]["ContinuationToken"]
    assert listing.newest is not None and listing.newest.key == keys[-1]
    assert freshness(env.cfg, "main", s3=s3, listing=listing).status == "ok"


def test_jobs_store_their_results(backup_env: MakeEnv) -> None:
    from sre.jobs import run_job
    from sre.results import JobContext
    from sre.store import open_store
    from sre.store.runs import CheckRow, Run

    env = backup_env()
    take_backup(env.cfg, "main")
    store = open_store(env.cfg)
    try:
        hourly = run_job("backups.freshness", JobContext(env.cfg, store, trigger="schedule"))
        daily = run_job("backups.verify", JobContext(env.cfg, store, trigger="schedule"))
        with store.session() as s:
            rows = {(r.check, r.status) for r in s.query(CheckRow).all()}
            runs = {r.kind: r.status for r in s.query(Run).all()}
    finally:
        store.dispose()
    assert hourly.status == "ok" and daily.status == "ok", (hourly.summary, daily.summary)
    assert runs == {"backups.freshness": "ok", "backups.verify": "ok"}
    assert {("backup.freshness", "ok"), ("backup.completeness", "ok"), ("bucket.replication", "ok"),
            ("backup.integrity", "ok"), ("backup.restore", "ok")} <= rows


def test_failed_dump_leaves_no_object(backup_env: MakeEnv) -> None:
    from sre.checks.backup_take import TakeError

    env = backup_env(database="no_such_database")
    with pytest.raises(TakeError, match=r'pg_dump failed: .*database "no_such_database" does not exist'):
        take_backup(env.cfg, "main")
    assert env.s3.list_objects_v2(Bucket=env.bucket).get("KeyCount") == 0
    uploads = env.s3.list_multipart_uploads(Bucket=env.bucket).get("Uploads", [])
    assert uploads == []
