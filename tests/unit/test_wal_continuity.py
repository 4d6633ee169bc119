"""WAL segment arithmetic and archive continuity: gaps named, targets covered, timelines crossed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sre.checks.wal import ArchivedSegment, archived_name, continuity, name_of, parse

SIZE = 16 * 2**20
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def seg(tli: int, no: int, minute: int = 0) -> ArchivedSegment:
    return ArchivedSegment(name_of(tli, no, SIZE), T0 + timedelta(minutes=minute))


def test_names_step_the_log_part_after_ff() -> None:
    assert name_of(1, 0xFF, SIZE) == "0000000100000000000000FF"
    assert name_of(1, 0x100, SIZE) == "000000010000000100000000"
    assert parse("000000010000000100000000", SIZE) == (1, 0x100)
    assert name_of(2, 3, 64 * 2**20) == "000000020000000000000003"


def test_archive_file_names() -> None:
    assert archived_name("15-1/0000000100000000/000000010000000000000003-7eaf4ba16739a1ca4acfb51c7ead86bc8600f6ae"
                         ".lz4") == "000000010000000000000003"
    assert archived_name("wal/000000010000000000000003.gz") == "000000010000000000000003"
    assert archived_name("15-1/0000000100000000/000000010000000000000002.00000028.backup") is None
    assert archived_name("15-1/00000002.history") is None


def test_a_gap_in_the_middle_is_named() -> None:
    archive = [seg(1, n, n) for n in (2, 3, 5, 6)]
    report = continuity(archive, name_of(1, 2, SIZE), segment_size=SIZE)
    assert report.missing == ["000000010000000000000004"]
    assert report.end == "000000010000000000000006"


def test_a_gap_across_the_log_boundary() -> None:
    archive = [seg(1, n, 0) for n in (0xFE, 0xFF, 0x101)]
    assert continuity(archive, name_of(1, 0xFE, SIZE), segment_size=SIZE).missing == ["000000010000000100000000"]


def test_a_target_before_the_gap_does_not_need_it() -> None:
    archive = [seg(1, n, n) for n in (2, 3, 5, 6)]  # segment n archived at minute n
    before = continuity(archive, name_of(1, 2, SIZE), segment_size=SIZE, target=T0 + timedelta(minutes=2, seconds=30))
    assert before.covered and before.needed_missing == []
    assert [s.name for s in before.needed] == [name_of(1, 2, SIZE), name_of(1, 3, SIZE)]
    after = continuity(archive, name_of(1, 2, SIZE), segment_size=SIZE, target=T0 + timedelta(minutes=4, seconds=30))
    assert after.needed_missing == ["000000010000000000000004"]


def test_a_target_past_the_archive_is_not_covered() -> None:
    archive = [seg(1, n, n) for n in (2, 3)]
    report = continuity(archive, name_of(1, 2, SIZE), segment_size=SIZE, target=T0 + timedelta(minutes=9))
    assert not report.covered and report.needed_missing == []


def test_a_promotion_continues_on_the_next_timeline() -> None:
    archive = [seg(1, 2), seg(1, 3), seg(2, 4), seg(2, 5)]
    assert continuity(archive, name_of(1, 2, SIZE), segment_size=SIZE).missing == []
    report = continuity([seg(1, 2), seg(2, 4)], name_of(1, 2, SIZE), segment_size=SIZE)
    assert report.missing == ["000000010000000000000003"]


def test_an_empty_archive_misses_the_start() -> None:
    report = continuity([], "000000010000000000000002", segment_size=SIZE)
    assert report.missing == ["000000010000000000000002"] and report.end is None


def test_a_target_inside_the_last_segments_stamped_second_is_left_to_the_restore() -> None:
    # Archive times come in whole seconds: the last segment stamped 00:03:00 may have been
    # archived at 00:03:00.9, after a target at 00:03:00.3. Not refused up front.
    archive = [seg(1, n, n) for n in (2, 3)]
    inside = continuity(archive, name_of(1, 2, SIZE), segment_size=SIZE,
                        target=T0 + timedelta(minutes=3, milliseconds=300))
    assert inside.covered
    past = continuity(archive, name_of(1, 2, SIZE), segment_size=SIZE, target=T0 + timedelta(minutes=3, seconds=1))
    assert not past.covered
