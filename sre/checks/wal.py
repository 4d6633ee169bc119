"""WAL segment names and the continuity of an archive, whatever stores it (pgBackRest, S3).

A segment is named `TTTTTTTTXXXXXXXXYYYYYYYY`: timeline, then the segment number split in a
"log" and a "seg" part; with 16 MiB segments the seg part runs 00..FF before the log part
steps. A restore from a backup replays every segment from the backup's first one to the one
holding the target, so one missing name in that range is the whole answer: which segment.

The archive time of a segment (the repository file's time, or S3's LastModified) bounds the
WAL inside it: every record of a segment was written before the segment was archived. The
segments a restore to time T needs therefore end with the first one archived after T.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

SEGMENT = re.compile(r"^(?P<tli>[0-9A-F]{8})(?P<log>[0-9A-F]{8})(?P<seg>[0-9A-F]{8})$")
# pgBackRest: <segment>-<sha1>[.gz|.lz4|.zst|.bz2]; plain archives: <segment>[.gz|.zst|...]
# pgBackRest and S3 stamp archived segments in whole seconds: a segment stamped in the target's
# own second may have been archived after it. The restore itself proves whether it reached.
ARCHIVE_TIME_RESOLUTION = timedelta(seconds=1)

ARCHIVED = re.compile(r"(?:^|/)(?P<name>[0-9A-F]{24})(?:-[0-9a-f]{40})?(?:\.(?:gz|lz4|zst|bz2|xz))?$")


def per_log(segment_size: int) -> int:
    return 0x100000000 // segment_size


def parse(name: str, segment_size: int) -> tuple[int, int]:
    """(timeline, segment number) of a segment name."""
    m = SEGMENT.match(name)
    if m is None:
        raise ValueError(f"not a WAL segment name: {name!r}")
    return int(m.group("tli"), 16), int(m.group("log"), 16) * per_log(segment_size) + int(m.group("seg"), 16)


def name_of(timeline: int, segno: int, segment_size: int) -> str:
    n = per_log(segment_size)
    return f"{timeline:08X}{segno // n:08X}{segno % n:08X}"


def archived_name(key: str) -> str | None:
    """The segment an archive file holds (None for history, .backup and .partial files)."""
    m = ARCHIVED.search(key)
    return m.group("name") if m else None


@dataclass
class ArchivedSegment:
    name: str
    at: datetime | None  # when it was archived
    key: str = ""  # where it is (repository path or S3 key)
    size: int = 0


@dataclass
class Continuity:
    """What an archive holds from a backup's first segment on."""

    start: str
    end: str | None  # the newest segment present on the backup's timeline or a later one
    end_at: datetime | None
    missing: list[str] = field(default_factory=list)  # every gap between start and end
    needed: list[ArchivedSegment] = field(default_factory=list)  # what a restore to the target replays
    needed_missing: list[str] = field(default_factory=list)  # gaps a restore to the target would hit
    covered: bool = True  # a segment archived after the target exists (always, without a target)
    segments: int = 0

    def observed(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "end_archived_at": self.end_at.isoformat() if self.end_at else None,
                "segments": self.segments, "missing": self.missing[:20], "missing_count": len(self.missing)}


def continuity(archive: Iterable[ArchivedSegment], start: str, *, segment_size: int,
               target: datetime | None = None) -> Continuity:
    """Gaps from `start` to the archive's end, and those a restore to `target` would hit.

    Segments of later timelines count for the same segment number (a promotion continues the
    numbering on a new timeline); a segment number absent from every timeline is a gap.
    """
    start_tli, start_no = parse(start, segment_size)
    best: dict[int, ArchivedSegment] = {}
    best_tli: dict[int, int] = {}
    for seg in archive:
        try:
            tli, no = parse(seg.name, segment_size)
        except ValueError:
            continue
        if tli < start_tli or no < start_no:
            continue
        if no not in best or tli > best_tli[no]:
            best[no], best_tli[no] = seg, tli
    out = Continuity(start=start, end=None, end_at=None, covered=target is None, segments=len(best))
    if not best:
        out.missing = [start]
        out.needed_missing = [start]
        return out
    last = max(best)
    out.end, out.end_at = best[last].name, best[last].at
    reached = False  # the first segment archived after the target is behind us
    for no in range(start_no, last + 1):
        found = best.get(no)
        if found is None:
            # A gap is named on the timeline of the segment before it (the one replay would ask for).
            gap = name_of(best_tli.get(no - 1, start_tli), no, segment_size)
            out.missing.append(gap)
            if not reached:
                out.needed_missing.append(gap)
            continue
        if not reached:
            out.needed.append(found)
            if target is not None and found.at is not None and found.at > target:
                reached = True
    out.covered = target is None or reached or (
        out.end_at is not None and out.end_at + ARCHIVE_TIME_RESOLUTION > target)
    return out
