"""Integrity: every byte of a backup hashed as it streams, against the checksum recorded with it.

The recorded checksum is, in order of preference, a hex SHA-256 in the object's metadata, a
`.sha256` sidecar (sha256sum format; its own metadata may hold the size), or S3's own
ChecksumSHA256 (full-object, or composite over the parts of a multipart upload).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from sre.adapters.s3 import CompositeSha256, sha256_b64
from sre.results import CheckResult, Status

if TYPE_CHECKING:
    from sre.checks.backup_layout import Recorded

CHECK = "backup.integrity"


class StreamDigest:
    """The SHA-256 (and S3 composite checksum, when that is what was recorded) of one object."""

    def __init__(self, url: str, recorded: Recorded, size_now: int) -> None:
        self.url = url
        self.recorded = recorded
        self.size_now = size_now
        self.sha = hashlib.sha256()
        self.composite = CompositeSha256(recorded.part_sizes) if recorded.source == "s3-composite" else None
        self.read = 0

    def update(self, chunk: bytes) -> None:
        self.sha.update(chunk)
        if self.composite is not None:
            self.composite.update(chunk)
        self.read += len(chunk)

    def tee(self, chunks: Iterable[bytes], progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
        for chunk in chunks:
            self.update(chunk)
            if progress is not None:
                progress(len(chunk))
            yield chunk

    def problem(self) -> str | None:
        """Why this object fails integrity, or None."""
        rec = self.recorded
        where = rec.describe()
        if self.read != self.size_now:
            return f"read {self.read} of {self.size_now} bytes of {self.url}: the download was cut short"
        if rec.size is not None and self.size_now != rec.size:
            if self.size_now < rec.size:
                return f"truncated: {self.url} is {self.size_now} bytes, the {where} records {rec.size}"
            return f"size mismatch: {self.url} is {self.size_now} bytes, the {where} records {rec.size}"
        if rec.sha256_hex is not None:
            got = self.sha.hexdigest()
            if got != rec.sha256_hex:
                return (f"checksum mismatch: SHA-256 of {self.url} is {got[:16]}…, "
                        f"the {where} records {rec.sha256_hex[:16]}…")
        elif rec.s3_b64 is not None:
            got = self.composite.b64() if self.composite is not None else sha256_b64(self.sha.digest())
            if got != rec.s3_b64:
                return f"checksum mismatch: SHA-256 of {self.url} is {got}, the {where} is {rec.s3_b64}"
        return None

    def observed(self) -> dict[str, Any]:
        return {"object": self.url, "bytes": self.read, "sha256": self.sha.hexdigest(),
                "recorded_in": self.recorded.source,
                "recorded_sha256": self.recorded.sha256_hex or self.recorded.s3_b64}


def integrity_result(target: str, digests: list[StreamDigest], problems: list[str] | None = None,
                     warnings: list[str] | None = None, extra: dict[str, Any] | None = None) -> CheckResult:
    """One result over every object of a backup (and any problem found another way, e.g. pg_verifybackup)."""
    found = [p for d in digests if (p := d.problem())] + list(problems or [])
    unchecked = [d.url for d in digests if d.recorded.source == "none"]
    observed: dict[str, Any] = {"objects": [d.observed() for d in digests], **(extra or {})}
    observed["bytes"] = sum(d.read for d in digests)
    status: Status
    if found:
        status, message = "fail", "; ".join(found)
    elif warnings:
        status, message = "warn", "; ".join(warnings)
    elif unchecked and observed.get("pg_verifybackup") != "ok":
        status = "warn"
        message = (f"no checksum recorded for {', '.join(unchecked)} (metadata, .sha256 sidecar or S3 checksum): "
                   "content read in full but not compared")
    else:
        status = "ok"
        checked = [d for d in digests if d.recorded.source != "none"]
        parts = []
        if checked:
            sources = sorted({d.recorded.describe() for d in checked})
            parts.append(f"SHA-256 of {len(checked)} object(s) matches the {', '.join(sources)}")
        if observed.get("pg_verifybackup") == "ok":
            parts.append("pg_verifybackup passed")
        message = "; ".join(parts) or "read in full"
    return CheckResult(CHECK, target, status, observed, message)


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of chunks (tarfile's stream mode reads from it)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def drain(self) -> None:
        """Read what is left, so every byte passes through the hash."""
        self._buf = b""
        for _ in self._it:
            pass
