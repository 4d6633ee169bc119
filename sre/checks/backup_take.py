"""`sre backup take`: a backup of a configured cluster into its bucket, with SSE and a SHA-256.

pg_dump: `pg_dump -Fc` streams through a hashing reader into a multipart upload (memory: a few
parts, whatever the database size); the SHA-256 and size, known only at the end, go into a
`.sha256` sidecar written after the upload, which also marks the backup complete. If pg_dump
fails, the reader raises at end of stream and the multipart upload is aborted, so a failed
dump never leaves an object that looks like a backup.

basebackup: `pg_basebackup` into a local temporary directory (tar or plain), then each file
uploaded with its SHA-256 in metadata, backup_manifest last.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sre.adapters import s3 as s3a
from sre.checks.backup_layout import MANIFEST, SIDECAR_SUFFIX, Layout
from sre.checks.pg_client import child_env, cluster_of, pg_binary, source_node, split_dsn
from sre.checks.redis_rdb import take_snapshot
from sre.errors import SreError, UsageError
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.adapters.s3 import S3Client
    from sre.config import BackupConfig, SreConfig

log = get_logger("sre.checks.backup_take")


class TakeError(SreError):
    """The backup could not be taken: exit 1 with the reason."""

    exit_code = 1


def backup_config(cfg: SreConfig, name: str) -> BackupConfig:
    try:
        return cfg.backups[name]
    except KeyError:
        known = ", ".join(sorted(cfg.backups)) or "none"
        raise UsageError(f"no backup set named {name!r} under backups: (configured: {known})") from None


class HashingPipeReader(io.RawIOBase):
    """Reads a child's stdout, hashing it; at EOF raises if the child failed (aborting the upload)."""

    def __init__(self, proc: subprocess.Popen[bytes], errfile: IO[bytes], what: str,
                 progress: Callable[[int], None] | None = None) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.stream: Any = proc.stdout
        self.errfile = errfile
        self.what = what
        self.sha = hashlib.sha256()
        self.size = 0
        self.progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.stream.readinto(b)
        if n:
            view = memoryview(b)[:n]
            self.sha.update(view)
            self.size += n
            if self.progress is not None:
                self.progress(n)
            return n
        rc = self.proc.wait()
        if rc != 0:
            self.errfile.seek(0)
            err = [ln.strip() for ln in self.errfile.read(1 << 16).decode(errors="replace").splitlines() if ln.strip()]
            detail = err[-1].removeprefix(f"{self.what}: ") if err else f"exit code {rc}"
            raise TakeError(f"{self.what} failed: {detail}")
        return 0


def _sse_args(bcfg: BackupConfig) -> dict[str, Any]:
    args: dict[str, Any] = {"ServerSideEncryption": bcfg.take.sse}
    if bcfg.take.sse == "aws:kms" and bcfg.take.kms_key_id:
        args["SSEKMSKeyId"] = bcfg.take.kms_key_id
    return args


def take_backup(cfg: SreConfig, backup_name: str, progress: Callable[[int], None] | None = None,
                s3: S3Client | None = None) -> dict[str, Any]:
    """Take one backup of the set's cluster now; what was written (bucket, key, size, sha256, seconds)."""
    bcfg = backup_config(cfg, backup_name)
    if bcfg.format == "redis-rdb":
        return take_snapshot(cfg, backup_name, s3)
    if bcfg.format == "pgbackrest":
        raise UsageError(f"backups.{backup_name} is a pgBackRest stanza: pgBackRest takes its backups "
                         "(pgbackrest backup), sre verifies them")
    s3 = s3 or s3a.client(cfg.aws)
    taken = datetime.now(UTC).replace(microsecond=0)
    layout = Layout(bcfg)
    key = layout.key_for(taken)
    if s3a.exists(s3, bcfg.bucket, key + MANIFEST if layout.folder else key):
        raise TakeError(f"s3://{bcfg.bucket}/{key} already exists (one backup per {bcfg.layout.stamp_format} stamp)")
    t0 = time.monotonic()
    meta = {bcfg.layout.taken_at_metadata: taken.isoformat().replace("+00:00", "Z"), "cluster": bcfg.cluster,
            "format": bcfg.format, "source-node": source_node(cfg, bcfg).name}
    if bcfg.format == "pg_dump":
        out = _take_dump(cfg, bcfg, s3, key, meta, progress)
    else:
        out = _take_basebackup(cfg, bcfg, s3, key, meta, progress)
    out.update(backup=backup_name, bucket=bcfg.bucket, key=key, format=bcfg.format,
               taken_at=taken.isoformat(), seconds=round(time.monotonic() - t0, 3))
    log.info("backup %s taken: s3://%s/%s (%d bytes)", backup_name, bcfg.bucket, key, out["size"])
    return out


def _take_dump(cfg: SreConfig, bcfg: BackupConfig, s3: S3Client, key: str, meta: dict[str, str],
               progress: Callable[[int], None] | None) -> dict[str, Any]:
    cluster = cluster_of(cfg, bcfg)
    conninfo, env = split_dsn(source_node(cfg, bcfg).dsn.resolve().get_secret_value(), cluster.database)
    cmd = [pg_binary("pg_dump", bcfg.restore.pg_bin), "--format=custom", "--no-password", "--dbname", conninfo]
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errfile, env=child_env(env))
        reader = HashingPipeReader(proc, errfile, "pg_dump", progress)
        try:
            s3a.upload_stream(s3, reader, bcfg.bucket, key, part_size=bcfg.take.part_size,
                              extra={**_sse_args(bcfg), "Metadata": meta, "ChecksumAlgorithm": "SHA256",
                                     "ContentType": "application/octet-stream"})
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    digest = reader.sha.hexdigest()
    sidecar = f"{digest}  {Path(key).name}\n".encode()
    s3a.put_bytes(s3, bcfg.bucket, key + SIDECAR_SUFFIX, sidecar, ContentType="text/plain",
                  Metadata={**meta, "size": str(reader.size)}, **_sse_args(bcfg))
    return {"size": reader.size, "sha256": digest, "objects": 1}


def _take_basebackup(cfg: SreConfig, bcfg: BackupConfig, s3: S3Client, folder: str, meta: dict[str, str],
                     progress: Callable[[int], None] | None) -> dict[str, Any]:
    conninfo, env = split_dsn(source_node(cfg, bcfg).dsn.resolve().get_secret_value())
    tmp = Path(tempfile.mkdtemp(prefix="sre-basebackup-"))
    try:
        dest = tmp / "backup"
        fmt = "t" if bcfg.take.basebackup_format == "tar" else "p"
        cmd = [pg_binary("pg_basebackup", bcfg.restore.pg_bin), "--dbname", conninfo, "-D", str(dest), "-F", fmt,
               "-X", "stream", "--checkpoint=fast", "--no-password", "--no-sync"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(env), check=False, timeout=24 * 3600)
        if proc.returncode != 0:
            err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise TakeError("pg_basebackup failed: " + (err[-1].removeprefix("pg_basebackup: ") if err else
                                                        f"exit code {proc.returncode}"))
        files = sorted(p for p in dest.rglob("*") if p.is_file())
        manifest = dest / MANIFEST
        # The manifest last: a folder without it is an unfinished (or broken) backup.
        ordered = [p for p in files if p != manifest] + ([manifest] if manifest.exists() else [])

        def upload(path: Path) -> int:
            sha = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(block)
            size = path.stat().st_size
            key = folder + path.relative_to(dest).as_posix()
            extra = {**_sse_args(bcfg), "Metadata": {**meta, bcfg.layout.checksum_metadata: sha.hexdigest(),
                                                     "size": str(size)}}
            if size < bcfg.take.part_size:
                # Most files of a data directory are small: one PUT, no transfer manager.
                s3a.put_bytes(s3, bcfg.bucket, key, path.read_bytes(), **extra)
            else:
                with path.open("rb") as fh:
                    s3a.upload_stream(s3, fh, bcfg.bucket, key, part_size=bcfg.take.part_size, extra=extra)
            if progress is not None:
                progress(size)
            return size

        with ThreadPoolExecutor(8) as pool:
            total = sum(pool.map(upload, ordered[:-1]))
        total += upload(ordered[-1]) if ordered else 0
        return {"size": total, "objects": len(ordered)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

