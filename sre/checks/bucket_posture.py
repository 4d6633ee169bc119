"""Bucket posture: the settings a backup or media bucket must have, each a result of its own.

versioning enabled; default encryption AES256 or aws:kms; public access blocked (all four
public access block settings, no ACL grant to everyone, no public policy); replication to the
other region's bucket; object lock when the config requires it. Reads only: nothing is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sre.adapters import s3 as s3a
from sre.adapters.s3 import S3Error
from sre.results import CheckResult

if TYPE_CHECKING:
    from sre.adapters.s3 import S3Client
    from sre.config import SreConfig

GOOD_SSE = ("AES256", "aws:kms", "aws:kms:dsse")
PAB_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers",
                   "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")


@dataclass
class BucketTarget:
    label: str  # backups.<name> or buckets.<name>: the `cluster` label of the metrics
    bucket: str
    replica_bucket: str | None = None
    object_lock: bool = False


def targets(cfg: SreConfig, names: list[str] | None = None) -> list[BucketTarget]:
    """Every bucket the config names once (backup sets first, then buckets:), optionally only some sets."""
    out: dict[str, BucketTarget] = {}
    for name, b in cfg.backups.items():
        if (names is not None and name not in names) or not b.bucket:
            continue  # a pgBackRest repository names its bucket in its own options
        t = out.setdefault(b.bucket, BucketTarget(name, b.bucket, b.replica_bucket, b.object_lock))
        t.object_lock = t.object_lock or b.object_lock
        t.replica_bucket = t.replica_bucket or b.replica_bucket
    if names is None:
        for name, bc in cfg.buckets.items():
            t = out.setdefault(bc.name, BucketTarget(name, bc.name, bc.replica_bucket, bc.object_lock))
            t.object_lock = t.object_lock or bc.object_lock
            t.replica_bucket = t.replica_bucket or bc.replica_bucket
    return list(out.values())


def _result(check: str, t: BucketTarget, ok: bool, message: str, **observed: Any) -> CheckResult:
    return CheckResult(f"bucket.{check}", t.bucket, "ok" if ok else "fail", {"set": t.label, **observed}, message)


def check_bucket(s3: S3Client, t: BucketTarget) -> list[CheckResult]:
    checks = ["versioning", "encryption", "public_access", "replication"] + (["object_lock"] if t.object_lock else [])
    try:
        present = s3a.bucket_exists(s3, t.bucket)
    except S3Error as exc:
        return [_result(c, t, False, f"cannot read bucket {t.bucket}: {exc}") for c in checks]
    if not present:
        return [_result(c, t, False, f"bucket {t.bucket} does not exist") for c in checks]
    out = []
    for c, fn in (("versioning", _versioning), ("encryption", _encryption), ("public_access", _public_access),
                  ("replication", _replication), ("object_lock", _object_lock)):
        if c not in checks:
            continue
        try:
            out.append(fn(s3, t))
        except S3Error as exc:
            out.append(_result(c, t, False, f"cannot read the {c.replace('_', ' ')} of {t.bucket}: {exc}"))
    return out


def _versioning(s3: S3Client, t: BucketTarget) -> CheckResult:
    conf = s3a.bucket_config(s3, "get_bucket_versioning", t.bucket) or {}
    status = conf.get("Status")
    if status == "Enabled":
        return _result("versioning", t, True, "versioning enabled", status=status, mfa_delete=conf.get("MFADelete"))
    what = "suspended" if status == "Suspended" else "off (never enabled)"
    return _result("versioning", t, False, f"versioning is {what} on {t.bucket}: an overwrite or delete "
                   "destroys the only copy", status=status or "Off")


def _encryption(s3: S3Client, t: BucketTarget) -> CheckResult:
    algo = s3a.default_encryption(s3, t.bucket)
    if algo is None:
        return _result("encryption", t, False, f"no default encryption on {t.bucket}", algorithm=None)
    if algo not in GOOD_SSE:
        return _result("encryption", t, False, f"default encryption of {t.bucket} is {algo}, not AES256 or aws:kms",
                       algorithm=algo)
    return _result("encryption", t, True, f"default encryption {algo}", algorithm=algo)


def _public_access(s3: S3Client, t: BucketTarget) -> CheckResult:
    problems: list[str] = []
    pab = (s3a.bucket_config(s3, "get_public_access_block", t.bucket) or {}).get("PublicAccessBlockConfiguration")
    if pab is None:
        problems.append("no public access block configured")
        off = list(PAB_KEYS)
    else:
        off = [k for k in PAB_KEYS if not pab.get(k)]
        if off:
            problems.append(f"public access block settings off: {', '.join(off)}")
    acl = s3a.bucket_config(s3, "get_bucket_acl", t.bucket) or {}
    public_grants = sorted({f"{g.get('Permission')} to {g['Grantee']['URI'].rsplit('/', 1)[-1]}"
                            for g in acl.get("Grants", []) if g.get("Grantee", {}).get("URI") in PUBLIC_GRANTEES})
    if public_grants:
        problems.append(f"ACL grants {', '.join(public_grants)}")
    policy = s3a.bucket_config(s3, "get_bucket_policy_status", t.bucket) or {}
    if policy.get("PolicyStatus", {}).get("IsPublic"):
        problems.append("the bucket policy is public")
    observed = {"block_off": off, "public_grants": public_grants}
    if problems:
        return _result("public_access", t, False, f"public access allowed on {t.bucket}: {'; '.join(problems)}",
                       **observed)
    return _result("public_access", t, True, "public access blocked", **observed)


def _region(s3: S3Client, bucket: str) -> str:
    conf = s3a.bucket_config(s3, "get_bucket_location", bucket) or {}
    return str(conf.get("LocationConstraint") or "us-east-1")  # S3 answers null for us-east-1


def _replication(s3: S3Client, t: BucketTarget) -> CheckResult:
    conf = (s3a.bucket_config(s3, "get_bucket_replication", t.bucket) or {}).get("ReplicationConfiguration")
    rules = [r for r in (conf or {}).get("Rules", []) if r.get("Status") == "Enabled"]
    destinations = sorted({str(r.get("Destination", {}).get("Bucket", "")).removeprefix("arn:aws:s3:::")
                           for r in rules})
    observed: dict[str, Any] = {"destinations": destinations, "expected": t.replica_bucket}
    if not rules:
        why = "no replication configured" if conf is None else "replication rules are all disabled"
        dest = f" (expected to {t.replica_bucket})" if t.replica_bucket else ""
        return _result("replication", t, False, f"{why} on {t.bucket}{dest}", **observed)
    if t.replica_bucket is None:
        return _result("replication", t, True, f"replicates to {', '.join(destinations)} "
                       "(no replica_bucket in the config to compare with)", **observed)
    if t.replica_bucket not in destinations:
        return _result("replication", t, False, f"replication of {t.bucket} goes to {', '.join(destinations)}, "
                       f"not to {t.replica_bucket}", **observed)
    if not s3a.bucket_exists(s3, t.replica_bucket):
        return _result("replication", t, False, f"replica bucket {t.replica_bucket} does not exist", **observed)
    replica_versioning = (s3a.bucket_config(s3, "get_bucket_versioning", t.replica_bucket) or {}).get("Status")
    if replica_versioning != "Enabled":
        return _result("replication", t, False, f"replica bucket {t.replica_bucket} has versioning off "
                       "(replication needs it on both sides)", **observed)
    src_region, dst_region = _region(s3, t.bucket), _region(s3, t.replica_bucket)
    observed.update(source_region=src_region, replica_region=dst_region)
    if src_region == dst_region:
        return _result("replication", t, False, f"replica bucket {t.replica_bucket} is in the same region "
                       f"({src_region}) as {t.bucket}", **observed)
    return _result("replication", t, True, f"replicates to {t.replica_bucket} ({dst_region})", **observed)


def _object_lock(s3: S3Client, t: BucketTarget) -> CheckResult:
    conf = (s3a.bucket_config(s3, "get_object_lock_configuration", t.bucket) or {}).get("ObjectLockConfiguration")
    enabled = (conf or {}).get("ObjectLockEnabled") == "Enabled"
    retention = (conf or {}).get("Rule", {}).get("DefaultRetention")
    if not enabled:
        return _result("object_lock", t, False, f"object lock not enabled on {t.bucket} (required by the config)",
                       enabled=False)
    return _result("object_lock", t, True, "object lock enabled" + (f", default retention {retention}" if retention
                                                                     else ""), enabled=True, retention=retention)


def posture(cfg: SreConfig, names: list[str] | None = None, s3: S3Client | None = None) -> list[CheckResult]:
    """Posture of every configured bucket (or of the buckets of the named backup sets)."""
    s3 = s3 or s3a.client(cfg.aws)
    out: list[CheckResult] = []
    for t in targets(cfg, names):
        out.extend(check_bucket(s3, t))
    return out
