"""`sre backup take|list|verify` as a person or CI runs them: exit codes, JSON, one-line errors."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.cli import sre
from tests.integration.backup_support import MakeEnv, flip_byte

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.integration.backup_fixtures"]


def test_take_list_verify_round_trip(backup_env: MakeEnv) -> None:
    env = backup_env()
    taken = sre("backup", "take", "--backup", "main", "--config", str(env.path), "--output", "json")
    assert taken.returncode == 0, taken.stderr
    key = json.loads(taken.stdout)["taken"][0]["key"]

    listed = sre("backup", "list", "--config", str(env.path), "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [b["key"] for b in json.loads(listed.stdout)["main"]["backups"]] == [key]

    verified = sre("backup", "verify", "--cluster", "main", "--config", str(env.path), "--output", "json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    checks = {(r["check"], r["target"]): r["status"] for r in report["results"]}
    assert checks[("backup.restore", "main")] == "ok"
    assert checks[("bucket.replication", env.bucket)] == "ok"
    assert env.scratch_leftovers() == []

    table = sre("backup", "verify", "--config", str(env.path), "--no-restore")
    assert table.returncode == 0, table.stdout
    assert "backup.integrity" in table.stdout and "backup.restore" not in table.stdout
    assert "all 7 checks passed" in table.stdout


def test_verify_exits_1_with_the_reason_per_check(backup_env: MakeEnv) -> None:
    env = backup_env()
    assert sre("backup", "take", "--config", str(env.path)).returncode == 0
    key = env.s3.list_objects_v2(Bucket=env.bucket, Prefix="postgres/main/")["Contents"][0]["Key"]
    flip_byte(env.s3, env.bucket, key)
    env.s3.delete_bucket_encryption(Bucket=env.bucket)
    res = sre("backup", "verify", "--config", str(env.path), "--output", "json", "--no-record")
    assert res.returncode == 1, res.stdout + res.stderr
    failed = {r["check"]: r["message"] for r in json.loads(res.stdout)["results"] if r["status"] == "fail"}
    assert "checksum mismatch" in failed["backup.integrity"]
    assert "no default encryption" in failed["bucket.encryption"]
    assert "Traceback" not in res.stderr


def test_unknown_backup_set_and_unreachable_s3_exit_2(backup_env: MakeEnv) -> None:
    env = backup_env()
    res = sre("backup", "verify", "--backup", "nope", "--config", str(env.path))
    assert res.returncode == 2 and "no backup set named 'nope'" in res.stderr
    res = sre("backup", "list", "--config", str(env.path),
              env={"SRE_AWS__ENDPOINT_URL": "http://127.0.0.1:9"})
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: S3 list") and "Traceback" not in res.stderr


def test_posture_of_one_media_bucket_on_demand(backup_env: MakeEnv) -> None:
    token = secrets.token_hex(4)
    media = f"media-{token}-use1"
    env = backup_env(buckets={"media": {"name": media, "replica_bucket": f"media-{token}-euw1"}})
    env.s3.delete_bucket_encryption(Bucket=media)
    res = sre("backup", "posture", "--bucket", "media", "--config", str(env.path), "--output", "json")
    assert res.returncode == 1, res.stdout + res.stderr
    results = json.loads(res.stdout)["results"]
    assert {r["target"] for r in results} == {media}, "only the bucket asked for"
    failed = {r["check"]: r["message"] for r in results if r["status"] == "fail"}
    assert list(failed) == ["bucket.encryption"] and "no default encryption" in failed["bucket.encryption"]

    backups_only = sre("backup", "posture", "--backup", "main", "--config", str(env.path), "--output", "json")
    assert backups_only.returncode == 0, backups_only.stdout
    assert {r["target"] for r in json.loads(backups_only.stdout)["results"]} == {env.bucket}
    unknown = sre("backup", "posture", "--bucket", "nope", "--config", str(env.path))
    assert unknown.returncode == 2 and "buckets.nope" in unknown.stderr
