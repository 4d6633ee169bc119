"""Redis RDB snapshots in S3 as a backup set (format: redis-rdb).

Layout: `<prefix><stamp>.rdb`, with user metadata `sha256` (of the file), `keys` (the primary's
key count, all databases, read just before the snapshot) and `taken-at`. Checks:

  backup.snapshot_freshness  the newest snapshot against max_age (default 1 h)
  backup.integrity           its SHA-256 as it streams from S3, against the recorded one
  backup.rdb_check           `redis-check-rdb` on the downloaded file
  backup.restore             loaded by a scratch `redis-server` on a free loopback port; its key
                             count against the one recorded at snapshot time (row_tolerance)

`sre backup take` for such a set runs `redis-cli --rdb` against the pair's primary (the password
in REDISCLI_AUTH, never on the command line) and uploads the file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sre.adapters import redis as redis_a
from sre.adapters import s3 as s3a
from sre.checks.backup_integrity import StreamDigest, integrity_result
from sre.checks.backup_layout import Layout, list_backups, recorded_checksum
from sre.checks.humanize import human_seconds
from sre.errors import UsageError
from sre.local.procs import ManagedProcess, free_port
from sre.results import CheckResult
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.adapters.s3 import S3Client
    from sre.checks.backup_layout import Backup
    from sre.config import BackupConfig, SreConfig

log = get_logger("sre.checks.redis_rdb")

DEFAULT_MAX_AGE = 3600.0
KEYS_METADATA = "keys"
SCRATCH_PREFIX = "sre-rdb-"


def max_age(bcfg: BackupConfig) -> float:
    return bcfg.max_age if bcfg.max_age is not None else DEFAULT_MAX_AGE


def key_count(info: dict[str, Any]) -> int:
    """Keys in every database, from INFO keyspace (db0: {keys: N, ...})."""
    return sum(int(v.get("keys", 0)) for k, v in info.items() if k.startswith("db") and isinstance(v, dict))


# ---------------------------------------------------------------- take


def take_snapshot(cfg: SreConfig, name: str, s3: S3Client | None = None) -> dict[str, Any]:
    """An RDB snapshot of the set's Redis primary, uploaded with its SHA-256 and key count."""
    from redis.connection import parse_url

    bcfg = cfg.backups[name]
    if bcfg.redis is None:
        raise UsageError(f"backups.{name}.redis: name the redis pair whose snapshots this set holds")
    node = cfg.redis.pairs[bcfg.redis].primary
    url = node.url.resolve().get_secret_value()
    params = parse_url(url)
    s3 = s3 or s3a.client(cfg.aws)
    taken = datetime.now(UTC).replace(microsecond=0)
    key = Layout(bcfg).key_for(taken)
    keys = key_count(redis_a.info(node, "keyspace"))
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as tmp:
        path = Path(tmp) / "dump.rdb"
        cmd = [shutil.which("redis-cli") or "redis-cli", "-h", str(params.get("host", "127.0.0.1")),
               "-p", str(params.get("port", 6379)), "--rdb", str(path)]
        if params.get("username"):
            cmd[1:1] = ["--user", str(params["username"])]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if params.get("password"):
            env["REDISCLI_AUTH"] = str(params["password"])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600, check=False)
        if proc.returncode != 0:
            raise UsageError(f"redis-cli --rdb failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        size = path.stat().st_size
        meta = {bcfg.layout.checksum_metadata: sha, "size": str(size), KEYS_METADATA: str(keys),
                bcfg.layout.taken_at_metadata: taken.isoformat().replace("+00:00", "Z"), "format": bcfg.format}
        with path.open("rb") as fh:
            s3a.upload_stream(s3, fh, bcfg.bucket, key, extra={"Metadata": meta, "ServerSideEncryption": bcfg.take.sse})
    return {"backup": name, "bucket": bcfg.bucket, "key": key, "size": size, "sha256": sha, "keys": keys,
            "format": bcfg.format, "taken_at": taken.isoformat(), "seconds": round(time.monotonic() - t0, 3)}


# ---------------------------------------------------------------- verify


def freshness(name: str, bcfg: BackupConfig, newest: Backup | None, now: datetime | None = None) -> CheckResult:
    limit = max_age(bcfg)
    observed: dict[str, Any] = {"max_age_seconds": limit}
    if newest is None:
        return CheckResult("backup.snapshot_freshness", name, "fail", observed,
                           f"no RDB snapshot under s3://{bcfg.bucket}/{bcfg.prefix}")
    age = newest.age_seconds(now)
    observed.update(newest=newest.key, taken_at=newest.taken_at.isoformat(), age_seconds=round(age, 1))
    if age > limit:
        return CheckResult("backup.snapshot_freshness", name, "fail", observed,
                           f"newest RDB snapshot {newest.name} is {human_seconds(age)} old, older than the max_age "
                           f"of {human_seconds(limit)}")
    return CheckResult("backup.snapshot_freshness", name, "ok", observed,
                       f"newest RDB snapshot {newest.name} is {human_seconds(age)} old (max {human_seconds(limit)})")


def verify(cfg: SreConfig, name: str, *, restore: bool = True, s3: S3Client | None = None) -> list[CheckResult]:
    """Freshness, integrity, redis-check-rdb and (with `restore`) a load into a scratch redis-server."""
    bcfg = cfg.backups[name]
    s3 = s3 or s3a.client(cfg.aws)
    newest = list_backups(s3, bcfg).newest
    results = [freshness(name, bcfg, newest)]
    if newest is None:
        return results
    url = f"s3://{bcfg.bucket}/{newest.key}"
    bcfg.restore.scratch_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-{secrets.token_hex(2)}-",
                                 dir=bcfg.restore.scratch_dir))
    try:
        path = work / "dump.rdb"
        recorded, size = recorded_checksum(s3, bcfg, newest, newest.key)
        digest = StreamDigest(url, recorded, size)
        with path.open("wb") as fh:
            for chunk in digest.tee(s3a.iter_object(s3, bcfg.bucket, newest.key)):
                fh.write(chunk)
        results.append(integrity_result(name, [digest]))
        results.append(rdb_check(name, path, url))
        if restore:
            meta = s3a.head(s3, bcfg.bucket, newest.key).metadata
            results.append(load(name, bcfg, path, url, meta.get(KEYS_METADATA)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def rdb_check(name: str, path: Path, url: str) -> CheckResult:
    """`redis-check-rdb FILE`: exit 0 and "RDB looks OK!" for a sound snapshot."""
    exe = shutil.which("redis-check-rdb") or "redis-check-rdb"
    try:
        proc = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=3600, check=False,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except OSError as exc:
        return CheckResult("backup.rdb_check", name, "fail", {}, f"cannot run redis-check-rdb: {exc.strerror}")
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    observed = {"exit_code": proc.returncode, "output": lines[-10:]}
    if proc.returncode != 0:
        why = next((ln for ln in lines if "--- RDB ERROR DETECTED ---" in ln or "error" in ln.lower()), None)
        detail = next((ln for ln in lines if ln.startswith("[additional info]") or "Unexpected" in ln
                       or "Invalid" in ln or "CRC" in ln or "checksum" in ln.lower()), why or (lines[-1] if lines else "?"))
        return CheckResult("backup.rdb_check", name, "fail", observed, f"redis-check-rdb rejects {url}: {detail}")
    return CheckResult("backup.rdb_check", name, "ok", observed, "redis-check-rdb: RDB looks OK")


def load(name: str, bcfg: BackupConfig, path: Path, url: str, recorded_keys: str | None) -> CheckResult:
    """The snapshot loaded by a scratch redis-server; its key count against the recorded one."""
    t0 = time.monotonic()
    port = free_port()
    server = ManagedProcess(
        name="scratch redis-server",
        cmd=[shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--dir", str(path.parent), "--dbfilename", path.name, "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
        log_path=path.parent / "redis.log")
    observed: dict[str, Any] = {"object": url}
    try:
        server.start()
        try:
            server.wait_ready(lambda: redis_a.call(f"redis://127.0.0.1:{port}", lambda c: c.ping(), timeout=1),
                              timeout=bcfg.restore.timeout)
        except Exception as exc:
            tail = (path.parent / "redis.log").read_text(errors="replace").strip().splitlines()[-1:]
            return CheckResult("backup.restore", name, "fail", observed,
                               f"the scratch redis-server did not load {url}: {exc} {' '.join(tail)}".strip())
        loaded = key_count(redis_a.info(f"redis://127.0.0.1:{port}", "keyspace"))
    finally:
        server.stop()
    seconds = time.monotonic() - t0
    observed.update(keys=loaded, seconds=round(seconds, 3))
    if recorded_keys is None or not recorded_keys.isdigit():
        return CheckResult("backup.restore", name, "warn", observed,
                           f"loaded {url} in {seconds:.1f}s: {loaded} keys; no key count recorded to compare with")
    expected = int(recorded_keys)
    observed["recorded_keys"] = expected
    if abs(loaded - expected) > bcfg.row_tolerance * expected:
        return CheckResult("backup.restore", name, "fail", observed,
                           f"loaded {url}: {loaded} keys, {expected} recorded at snapshot time "
                           f"(tolerance {bcfg.row_tolerance:.0%})")
    return CheckResult("backup.restore", name, "ok", observed,
                       f"loaded {url} in {seconds:.1f}s: {loaded} keys, {expected} recorded at snapshot time")
