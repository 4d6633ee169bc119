"""Where backups live in a bucket, how they are named, and when each was taken.

Default layout under the configured prefix (docs/backups.md):

    <prefix><stamp>.dump           a pg_dump -Fc archive (one object)
    <prefix><stamp>.dump.sha256    its SHA-256 in `sha256sum` format, written after the upload
    <prefix><stamp>/...            a pg_basebackup: base.tar[.gz], pg_wal.tar[.gz], backup_manifest
                                   (tar format) or the data directory's files (plain format)

`<stamp>` is the UTC time taken (`%Y%m%dT%H%M%SZ`), so key order is time order and the age of
a backup is known from the listing alone. Other tools' layouts are described with
`layout.key_template` / `stamp_format`, or their time is read from metadata or LastModified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sre.adapters import s3 as s3a

if TYPE_CHECKING:
    from sre.adapters.s3 import ObjectInfo, S3Client
    from sre.config import BackupConfig

SIDECAR_SUFFIX = ".sha256"
MANIFEST = "backup_manifest"
DEFAULT_TEMPLATES = {"pg_dump": "{stamp}.dump", "basebackup": "{stamp}/", "redis-rdb": "{stamp}.rdb"}
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass
class Backup:
    """One backup: a single object (pg_dump) or the objects under one folder (base backup)."""

    name: str  # the stamp, or what the key template captured
    key: str  # the object key (pg_dump) or the folder prefix ending in / (base backup)
    format: str  # pg_dump | basebackup
    taken_at: datetime
    time_source: str  # key | metadata | last_modified
    objects: list[ObjectInfo] = field(default_factory=list)
    sidecars: dict[str, str] = field(default_factory=dict)  # object key -> its .sha256 sidecar key

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def folder(self) -> bool:
        return self.key.endswith("/")

    def member(self, name: str) -> ObjectInfo | None:
        for o in self.objects:
            if o.key == self.key + name:
                return o
        return None

    def members(self) -> list[str]:
        return [o.key[len(self.key):] for o in self.objects] if self.folder else [self.key]

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.taken_at).total_seconds()

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "format": self.format, "taken_at": self.taken_at.isoformat(),
                "time_source": self.time_source, "size": self.size, "objects": len(self.objects)}


class Layout:
    """The naming of one backup set, from `backups.<name>.layout`."""

    def __init__(self, backup: BackupConfig) -> None:
        self.backup = backup
        self.prefix = backup.prefix
        self.format = backup.format
        lay = backup.layout
        template = lay.key_template or DEFAULT_TEMPLATES.get(backup.format, "{stamp}/")
        self.template = template
        self.stamp_format = lay.stamp_format
        self.folder = template.endswith("/")
        pattern = ""
        for literal, fieldname, _spec, _conv in _format_fields(template):
            pattern += re.escape(literal)
            if fieldname == "stamp":
                pattern += r"(?P<stamp>[^/]+?)"
            elif fieldname == "cluster":
                pattern += re.escape(backup.cluster)
            elif fieldname is not None:
                raise ValueError(f"layout.key_template: unknown field {{{fieldname}}} (known: stamp, cluster)")
        self.regex = re.compile("^" + pattern + ("(?P<member>.+)$" if self.folder else "$"))

    def key_for(self, when: datetime) -> str:
        stamp = when.astimezone(UTC).strftime(self.stamp_format)
        return self.prefix + self.template.format(stamp=stamp, cluster=self.backup.cluster)

    def parse_stamp(self, stamp: str) -> datetime | None:
        try:
            parsed = datetime.strptime(stamp, self.stamp_format)
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

    def group(self, objects: list[ObjectInfo]) -> tuple[list[Backup], int]:
        """Backups (oldest first) among listed objects, and how many objects matched no backup."""
        found: dict[str, Backup] = {}
        sidecars: dict[str, str] = {}
        ignored = 0
        for obj in objects:
            rel = obj.key[len(self.prefix):] if obj.key.startswith(self.prefix) else None
            if rel is None:
                ignored += 1
                continue
            if not self.folder and rel.endswith(SIDECAR_SUFFIX):
                sidecars[obj.key[: -len(SIDECAR_SUFFIX)]] = obj.key
                continue
            m = self.regex.match(rel)
            if m is None:
                ignored += 1
                continue
            if self.folder and m.group("member").endswith(SIDECAR_SUFFIX):
                sidecars[obj.key[: -len(SIDECAR_SUFFIX)]] = obj.key
                continue
            stamp = m.group("stamp")
            key = obj.key[: len(obj.key) - len(m.group("member"))] if self.folder else obj.key
            b = found.get(key)
            if b is None:
                when = self.parse_stamp(stamp)
                b = Backup(name=stamp, key=key, format=self.format,
                           taken_at=when or obj.last_modified.astimezone(UTC),
                           time_source="key" if when else "last_modified")
                found[key] = b
            b.objects.append(obj)
            if b.time_source == "last_modified":
                b.taken_at = max(b.taken_at, obj.last_modified.astimezone(UTC))
        for b in found.values():
            b.sidecars = {o.key: sidecars[o.key] for o in b.objects if o.key in sidecars}
        return sorted(found.values(), key=lambda b: (b.taken_at, b.key)), ignored


def _format_fields(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    import string

    return list(string.Formatter().parse(template))


@dataclass
class Listing:
    """The backups of one set, oldest first, with what the listing cost."""

    backups: list[Backup]
    objects: int
    ignored: int
    bucket: str
    prefix: str

    @property
    def newest(self) -> Backup | None:
        return self.backups[-1] if self.backups else None

    @property
    def previous(self) -> Backup | None:
        return self.backups[-2] if len(self.backups) > 1 else None


def list_backups(s3: S3Client, backup: BackupConfig) -> Listing:
    """Every backup of the set, read from one paged listing of the prefix.

    Time comes from the key's stamp (free); with `time_from: metadata` the two newest are
    re-dated from their metadata (two HEADs, whatever the size of the archive).
    """
    layout = Layout(backup)
    objects = list(_listing(s3, backup))
    backups, ignored = layout.group(objects)
    mode = backup.layout.time_from
    if mode == "last_modified":
        for b in backups:
            b.taken_at = max(o.last_modified for o in b.objects).astimezone(UTC)
            b.time_source = "last_modified"
        backups.sort(key=lambda b: (b.taken_at, b.key))
    elif mode == "metadata" and backups:
        for b in backups[-2:]:
            probe = b.member(MANIFEST) or b.objects[0]
            meta = s3a.head(s3, backup.bucket, probe.key).metadata
            when = _parse_iso(meta.get(backup.layout.taken_at_metadata.lower()))
            if when is not None:
                b.taken_at, b.time_source = when, "metadata"
        backups.sort(key=lambda b: (b.taken_at, b.key))
    return Listing(backups, len(objects), ignored, backup.bucket, backup.prefix)


def _listing(s3: S3Client, backup: BackupConfig) -> list[ObjectInfo]:
    wal = backup.wal_prefix
    out = []
    for obj in s3a.list_objects(s3, backup.bucket, backup.prefix):
        if wal and obj.key.startswith(wal):
            continue  # a WAL archive under the backup prefix is not a backup
        out.append(obj)
    return out


def _parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def newest_wal(s3: S3Client, bucket: str, wal_prefix: str) -> ObjectInfo | None:
    """The newest object of a WAL archive.

    Archivers nest segments in folders named in increasing order (pgBackRest:
    <version>/<16 hex>/...; WAL-G: wal_005/...), and segment names grow with time, so the
    walk descends into the greatest folder at each level and lists only the last one in full.
    """
    prefix = wal_prefix
    for _ in range(8):
        folders: list[str] = []
        paginator = s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
                folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        except Exception as exc:
            raise s3a.wrap(exc, f"list s3://{bucket}/{prefix}") from None
        if not folders:
            break
        prefix = max(folders)
    newest: ObjectInfo | None = None
    for obj in s3a.list_objects(s3, bucket, prefix):
        if newest is None or obj.last_modified >= newest.last_modified:
            newest = obj
    return newest


@dataclass
class Recorded:
    """The checksum recorded with one object, and where it was found."""

    source: str  # metadata | sidecar | s3 | s3-composite | none
    sha256_hex: str | None = None
    s3_b64: str | None = None
    size: int | None = None  # the size recorded alongside, when there is one
    part_sizes: list[int] = field(default_factory=list)

    def describe(self) -> str:
        return {"metadata": "object metadata", "sidecar": ".sha256 sidecar", "s3": "S3 checksum",
                "s3-composite": "S3 composite checksum", "none": "nothing"}[self.source]


def recorded_checksum(s3: S3Client, backup_cfg: BackupConfig, backup: Backup, key: str) -> tuple[Recorded, int]:
    """The checksum recorded for `key` (metadata, then sidecar, then S3's), and the object's size now."""
    bucket = backup_cfg.bucket
    head = s3a.head(s3, bucket, key)
    meta_key = backup_cfg.layout.checksum_metadata.lower()
    value = head.metadata.get(meta_key, "").strip()
    if _SHA256_HEX.match(value):
        size = head.metadata.get("size")
        return Recorded("metadata", sha256_hex=value.lower(), size=int(size) if size and size.isdigit() else None), head.size
    sidecar = backup.sidecars.get(key)
    if sidecar is not None:
        text = s3a.read_text(s3, bucket, sidecar).strip()
        first = text.split()[0] if text else ""
        if _SHA256_HEX.match(first):
            side_meta = s3a.head(s3, bucket, sidecar).metadata
            size = side_meta.get("size")
            return Recorded("sidecar", sha256_hex=first.lower(),
                            size=int(size) if size and size.isdigit() else None), head.size
    if head.checksum_sha256:
        if head.composite:
            return Recorded("s3-composite", s3_b64=head.checksum_sha256,
                            part_sizes=s3a.part_sizes(s3, bucket, key, head.parts_count)), head.size
        return Recorded("s3", s3_b64=head.checksum_sha256), head.size
    return Recorded("none"), head.size
