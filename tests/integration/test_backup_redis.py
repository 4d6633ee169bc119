"""Redis RDB snapshot sets against the real redis-cli, redis-check-rdb and redis-server: a good
snapshot loads with the key count recorded when it was taken; a corrupted one fails
redis-check-rdb; a stale one fails freshness."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from sre.adapters import s3 as s3a
from sre.checks import redis_rdb
from sre.checks.backup_layout import list_backups
from sre.checks.backups import take_backup, verify
from sre.config import SreConfig, load_config
from sre.sandbox import Stack
from sre.sandbox.config import sandbox_config
from tests.integration.backup_support import by_check, flip_byte

pytestmark = pytest.mark.slow

KEYS = 500


@pytest.fixture
def redis_set(sandbox: Stack, tmp_path: Path) -> Iterator[SreConfig]:
    assert sandbox.redis is not None
    token = secrets.token_hex(4)
    data = sandbox_config(sandbox, tmp_path / "state")
    scratch = Path(f"/tmp/sre-rdb-test-{token}")
    scratch.mkdir()
    bucket = f"rdb-{token}"
    data["backups"] = {"cache": {"format": "redis-rdb", "redis": "cache", "bucket": bucket, "prefix": "redis/cache/",
                                 "restore": {"scratch_dir": str(scratch)}}}
    path = tmp_path / "sre.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    s3a.client(cfg.aws).create_bucket(Bucket=bucket)
    import redis

    client = redis.Redis.from_url(sandbox.redis.primary_url)
    client.eval(f"for i = 1, {KEYS} do redis.call('SET', ARGV[1] .. i, i) end", 0, f"rdbtest:{token}:")
    try:
        yield cfg
    finally:
        client.eval("for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end", 0,
                    f"rdbtest:{token}:*")
        client.close()
        shutil.rmtree(scratch, ignore_errors=True)


def test_a_snapshot_loads_with_the_key_count_recorded_at_snapshot_time(redis_set: SreConfig) -> None:
    taken = take_backup(redis_set, "cache")
    assert taken["key"].endswith(".rdb") and taken["keys"] >= KEYS
    results = by_check(verify(redis_set, "cache"))
    assert {c: r.status for c, r in results.items()} == {
        "backup.snapshot_freshness": "ok", "backup.integrity": "ok", "backup.rdb_check": "ok",
        "backup.restore": "ok"}, {c: r.message for c, r in results.items()}
    assert results["backup.restore"].observed["keys"] == taken["keys"]
    assert list(redis_set.backups["cache"].restore.scratch_dir.iterdir()) == []


def test_a_corrupted_snapshot_fails_redis_check_rdb(redis_set: SreConfig) -> None:
    taken = take_backup(redis_set, "cache")
    flip_byte(s3a.client(redis_set.aws), taken["bucket"], taken["key"], at=0.6)
    results = by_check(verify(redis_set, "cache"))
    assert results["backup.rdb_check"].status == "fail", results["backup.rdb_check"].message
    assert "redis-check-rdb rejects" in results["backup.rdb_check"].message, results["backup.rdb_check"].message
    assert results["backup.integrity"].status == "fail"
    assert results["backup.restore"].status == "fail"


def test_a_stale_snapshot_fails_freshness(redis_set: SreConfig) -> None:
    take_backup(redis_set, "cache")
    bcfg = redis_set.backups["cache"]
    newest = list_backups(s3a.client(redis_set.aws), bcfg).newest
    assert newest is not None
    late = newest.taken_at + timedelta(hours=2)
    result = redis_rdb.freshness("cache", bcfg, newest, now=late)
    assert result.status == "fail" and "older than the max_age of 60.0 min" in result.message, result.message
