"""A pg_basebackup in S3 plus its WAL archive in S3, restored to a point in time (sre.checks.pitr).

The base backup is laid down as the restore test does (streamed, hashed, pg_verifybackup); its
first WAL segment comes from `backup_manifest` (WAL-Ranges). The segments the target needs are
downloaded beside the data directory before the server starts (`.gz` ones decompressed), and
`restore_command` copies from there: the scratch server gets no S3 credentials and the archive
is read once, by the check, which already listed it.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sre.adapters import s3 as s3a
from sre.checks.backup_integrity import StreamDigest
from sre.checks.backup_layout import MANIFEST, Backup
from sre.checks.basebackup import materialize
from sre.checks.pitr import RecoveryScratch, Target, pg_time, quote
from sre.checks.restore import RestoreError, verify_basebackup
from sre.checks.wal import ArchivedSegment, Continuity, archived_name, name_of

if TYPE_CHECKING:
    from sre.adapters.s3 import S3Client
    from sre.config import BackupConfig


def list_wal(s3: S3Client, bucket: str, wal_prefix: str) -> list[ArchivedSegment]:
    """Every segment under the WAL prefix, dated by LastModified (one paged listing)."""
    out = []
    for obj in s3a.list_objects(s3, bucket, wal_prefix):
        name = archived_name(obj.key)
        if name is not None:
            out.append(ArchivedSegment(name, obj.last_modified, key=obj.key, size=obj.size))
    return out


def start_segment(s3: S3Client, bcfg: BackupConfig, backup: Backup) -> str | None:
    """The backup's first WAL segment, from backup_manifest's WAL-Ranges (None without a manifest)."""
    if backup.member(MANIFEST) is None:
        return None
    manifest: dict[str, Any] = json.loads(b"".join(s3a.iter_object(s3, bcfg.bucket, backup.key + MANIFEST)))
    ranges = manifest.get("WAL-Ranges") or []
    if not ranges:
        return None
    first = min(ranges, key=lambda r: int(r["Timeline"]))
    hi, lo = (int(x, 16) for x in first["Start-LSN"].split("/"))
    lsn = (hi << 32) | lo
    return name_of(int(first["Timeline"]), lsn // bcfg.pitr.wal_segment_size, bcfg.pitr.wal_segment_size)


@dataclass
class BaseBackupSource:
    s3: S3Client
    bcfg: BackupConfig
    backup: Backup
    first_segment: str
    segments: list[ArchivedSegment]
    digests: list[StreamDigest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    verified: str = "not run"  # pg_verifybackup: ok | failed | skipped | not run

    @property
    def what(self) -> str:
        return f"s3://{self.bcfg.bucket}/{self.backup.key}"

    @property
    def start_segment(self) -> str:
        return self.first_segment

    def restore(self, scratch: RecoveryScratch, target: Target, report: Continuity) -> None:
        try:
            self.digests = materialize(self.s3, self.bcfg, self.backup, scratch.datadir)
        except RestoreError as exc:
            self.digests = getattr(exc, "digests", [])
            self.problems.append(str(exc))
            raise
        if self.backup.member(MANIFEST) is not None:
            why = verify_basebackup(scratch.datadir, self.bcfg.restore.pg_bin)
            self.verified = "ok" if why is None else "failed"
            if why:
                self.problems.append(why)
                raise RestoreError(why)
        wal = scratch.root / "wal"
        wal.mkdir(exist_ok=True)
        for seg in report.needed:
            body = s3a.iter_object(self.s3, self.bcfg.bucket, seg.key)
            with (wal / seg.name).open("wb") as fh:
                if seg.key.endswith(".gz"):
                    fh.write(gzip.decompress(b"".join(body)))
                else:
                    for chunk in body:
                        fh.write(chunk)
        scratch.give(wal)
        copy = shutil.which("cp") or "/bin/cp"
        settings = {"restore_command": quote(f'{copy} "{wal}/%f" "%p"')}
        if target.at is not None:
            settings.update(recovery_target_time=quote(pg_time(target.at)), recovery_target_action="'promote'")
        scratch.prepare(settings, recovery_signal=True)

    def start(self, scratch: RecoveryScratch, timeout: float) -> None:
        scratch.start(timeout=timeout)
