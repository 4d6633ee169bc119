"""A pg_basebackup in S3 turned back into a data directory, hashing every object on the way.

Tar format: base.tar[.gz] is extracted as it streams (tarfile's stream mode, nothing seeks),
pg_wal.tar[.gz] into pg_wal/, backup_manifest beside them. Plain format: the data directory's
files, one object each, fetched in parallel. Either way the result is a directory that
`pg_verifybackup` checks against the manifest and that PostgreSQL can start from.
"""

from __future__ import annotations

import re
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from sre.adapters import s3 as s3a
from sre.checks.backup_integrity import ChunkReader, StreamDigest
from sre.checks.backup_layout import MANIFEST, Backup, Recorded, recorded_checksum
from sre.checks.restore import Interrupted, RestoreError

if TYPE_CHECKING:
    from sre.adapters.s3 import S3Client
    from sre.config import BackupConfig

TAR_MEMBER = re.compile(r"^(?P<what>base|pg_wal|\d+)\.tar(?P<comp>\.gz)?$")
PLAIN_WORKERS = 8


def is_tar(backup: Backup) -> bool:
    return any(TAR_MEMBER.match(m) for m in backup.members())


def materialize(s3: S3Client, bcfg: BackupConfig, backup: Backup, dest: Path, *,
                progress: Callable[[int], None] | None = None,
                cancelled: Callable[[], bool] = lambda: False) -> list[StreamDigest]:
    """Download `backup` into `dest` (a data directory); the digests of the objects that carry a checksum."""
    dest.mkdir(parents=True, exist_ok=True)
    bucket = bcfg.bucket
    digests: list[StreamDigest] = []
    members = backup.members()
    if is_tar(backup):
        for name in members:
            m = TAR_MEMBER.match(name)
            if m is None:
                continue  # the manifest comes last; other files are the completeness check's business
            if m.group("what") not in ("base", "pg_wal"):
                raise RestoreError(f"{name}: base backups with tablespaces are not restored by the check")
            key = backup.key + name
            recorded, size = recorded_checksum(s3, bcfg, backup, key)
            digest = StreamDigest(f"s3://{bucket}/{key}", recorded, size)
            digests.append(digest)
            target = dest if m.group("what") == "base" else dest / "pg_wal"
            target.mkdir(parents=True, exist_ok=True)
            reader = ChunkReader(_cancellable(digest.tee(s3a.iter_object(s3, bucket, key), progress), cancelled))
            try:
                with tarfile.open(fileobj=reader, mode="r|*") as tar:
                    tar.extractall(target, filter="data")
            except (tarfile.TarError, EOFError, OSError) as exc:
                reader.drain()
                raise _TarBroken(f"{name} is not a readable tar archive: {exc}", digests) from None
            reader.drain()
        if MANIFEST in members:
            digests.append(_fetch(s3, bcfg, backup, MANIFEST, dest / MANIFEST, progress, cancelled, with_checksum=True))
        return digests
    # Plain format: the manifest lists every file with its own checksum and pg_verifybackup
    # checks them all, so one HEAD per file for recorded checksums would only add cost.
    lock = threading.Lock()

    def one(name: str) -> StreamDigest:
        path = dest / name
        if not path.resolve().is_relative_to(dest.resolve()):
            raise RestoreError(f"refusing object {name!r}: it points outside the data directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        return _fetch(s3, bcfg, backup, name, path, None, cancelled, with_checksum=(name == MANIFEST), lock=lock,
                      progress_locked=progress)

    with ThreadPoolExecutor(PLAIN_WORKERS) as pool:
        for d in pool.map(one, members):
            if d.recorded.source != "none":
                digests.append(d)
    return digests


class _TarBroken(RestoreError):
    def __init__(self, message: str, digests: list[StreamDigest]) -> None:
        super().__init__(message)
        self.digests = digests


def _cancellable(chunks: Iterable[bytes], cancelled: Callable[[], bool]) -> Iterator[bytes]:
    for chunk in chunks:
        if cancelled():
            raise Interrupted("cancelled")
        yield chunk


def _fetch(s3: S3Client, bcfg: BackupConfig, backup: Backup, name: str, path: Path,
           progress: Callable[[int], None] | None, cancelled: Callable[[], bool], *, with_checksum: bool,
           lock: threading.Lock | None = None, progress_locked: Callable[[int], None] | None = None) -> StreamDigest:
    key = backup.key + name
    obj = backup.member(name)
    if with_checksum:
        recorded, size = recorded_checksum(s3, bcfg, backup, key)
    else:
        recorded, size = Recorded("none"), (obj.size if obj else 0)
    digest = StreamDigest(f"s3://{bcfg.bucket}/{key}", recorded, size)
    with path.open("wb") as fh:
        for chunk in s3a.iter_object(s3, bcfg.bucket, key):
            if cancelled():
                raise Interrupted("cancelled")
            digest.update(chunk)
            fh.write(chunk)
            if progress is not None:
                progress(len(chunk))
            elif progress_locked is not None and lock is not None:
                with lock:
                    progress_locked(len(chunk))
    if obj is not None and size != obj.size:
        digest.size_now = size
    return digest
