"""Bucket posture against moto's S3: good buckets pass; each missing setting fails its own check."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from sre.checks.backups import posture
from tests.integration.backup_support import MakeEnv

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.integration.backup_fixtures"]

ASPECTS = {"bucket.versioning", "bucket.encryption", "bucket.public_access", "bucket.replication"}


def _statuses(results: list[Any], bucket: str) -> dict[str, str]:
    return {r.check: r.status for r in results if r.target == bucket}


def test_good_buckets_pass_every_posture_check(backup_env: MakeEnv) -> None:
    token = secrets.token_hex(4)
    env = backup_env(buckets={"media": {"name": f"media-{token}-use1", "replica_bucket": f"media-{token}-euw1"}})
    results = posture(env.cfg)
    buckets = {r.target for r in results}
    assert env.bucket in buckets and len(buckets) == 2
    for bucket in buckets:
        assert _statuses(results, bucket) == dict.fromkeys(ASPECTS, "ok"), [r.message for r in results]
    replication = next(r for r in results if r.check == "bucket.replication" and r.target == env.bucket)
    assert replication.observed["replica_region"] == "eu-west-1"
    assert REGISTRY.get_sample_value("sre_backup_verify_success",
                                     {"cluster": "media", "check": "bucket.encryption"}) == 1


def _versioning_off(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def _no_encryption(s3: Any, bucket: str) -> None:
    s3.delete_bucket_encryption(Bucket=bucket)


def _public_access(s3: Any, bucket: str) -> None:
    s3.delete_public_access_block(Bucket=bucket)


def _no_replication(s3: Any, bucket: str) -> None:
    s3.delete_bucket_replication(Bucket=bucket)


@pytest.mark.parametrize(("defect", "check", "reason"), [
    (_versioning_off, "bucket.versioning", "versioning is suspended"),
    (_no_encryption, "bucket.encryption", "no default encryption"),
    (_public_access, "bucket.public_access", "public access allowed"),
    (_no_replication, "bucket.replication", "no replication configured"),
], ids=["versioning-off", "no-encryption", "public-access", "no-replication"])
def test_each_defect_fails_its_own_check(backup_env: MakeEnv, defect: Callable[[Any, str], None], check: str,
                                         reason: str) -> None:
    env = backup_env()
    defect(env.s3, env.bucket)
    results = posture(env.cfg)
    statuses = _statuses(results, env.bucket)
    assert statuses[check] == "fail"
    assert {c for c, s in statuses.items() if s == "fail"} == {check}
    failed = next(r for r in results if r.check == check)
    assert reason in failed.message and env.bucket in failed.message
    assert REGISTRY.get_sample_value("sre_backup_verify_success", {"cluster": "main", "check": check}) == 0


def test_bare_bucket_fails_every_check_and_names_each_reason(backup_env: MakeEnv) -> None:
    env = backup_env(good_buckets=False, backup={"object_lock": True})
    results = {r.check: r for r in posture(env.cfg)}
    assert {c: r.status for c, r in results.items()} == dict.fromkeys(ASPECTS | {"bucket.object_lock"}, "fail")
    assert "versioning is off (never enabled)" in results["bucket.versioning"].message
    assert "no public access block configured" in results["bucket.public_access"].message
    assert "expected to" in results["bucket.replication"].message
    assert "object lock not enabled" in results["bucket.object_lock"].message


def test_partial_public_access_block_and_public_acl_are_named(backup_env: MakeEnv) -> None:
    env = backup_env()
    env.s3.put_public_access_block(Bucket=env.bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    env.s3.put_bucket_acl(Bucket=env.bucket, ACL="public-read")
    result = next(r for r in posture(env.cfg) if r.check == "bucket.public_access")
    assert result.status == "fail"
    assert "BlockPublicAcls, IgnorePublicAcls" in result.message
    assert "ACL grants READ to AllUsers" in result.message


def test_replication_to_the_wrong_bucket_or_region(backup_env: MakeEnv) -> None:
    env = backup_env()
    wrong = f"{env.bucket}-elsewhere"
    env.s3.create_bucket(Bucket=wrong)
    env.s3.put_bucket_versioning(Bucket=wrong, VersioningConfiguration={"Status": "Enabled"})
    conf = env.s3.get_bucket_replication(Bucket=env.bucket)["ReplicationConfiguration"]
    conf["Rules"][0]["Destination"]["Bucket"] = f"arn:aws:s3:::{wrong}"
    env.s3.put_bucket_replication(Bucket=env.bucket, ReplicationConfiguration=conf)
    result = next(r for r in posture(env.cfg) if r.check == "bucket.replication")
    assert result.status == "fail" and f"goes to {wrong}" in result.message

    env2 = backup_env(backup={"replica_bucket": wrong})  # replicated as configured, but within us-east-1
    result = next(r for r in posture(env2.cfg) if r.check == "bucket.replication" and r.target == env2.bucket)
    assert result.status == "fail" and "same region (us-east-1)" in result.message


def test_object_lock_when_required(backup_env: MakeEnv) -> None:
    env = backup_env(backup={"object_lock": True})  # ensure_buckets creates it with object lock
    result = next(r for r in posture(env.cfg) if r.check == "bucket.object_lock")
    assert result.status == "ok", result.message
