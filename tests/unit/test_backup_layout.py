"""Backup naming, grouping and checksum arithmetic: no servers needed."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest

from sre.adapters.s3 import CompositeSha256, ObjectInfo
from sre.checks.backup_integrity import ChunkReader, StreamDigest, integrity_result
from sre.checks.backup_layout import Layout, Recorded
from sre.checks.pg_client import child_env, split_dsn
from sre.config import BackupConfig

T0 = datetime(2025, 3, 1, 4, 0, tzinfo=UTC)


def obj(key: str, size: int = 100, when: datetime = T0) -> ObjectInfo:
    return ObjectInfo(key, size, when)


def test_default_dump_layout_round_trips_and_pairs_sidecars() -> None:
    layout = Layout(BackupConfig(cluster="main", bucket="b", prefix="pg/main/"))
    key = layout.key_for(T0)
    assert key == "pg/main/20250301T040000Z.dump"
    older = layout.key_for(T0 - timedelta(days=1))
    backups, ignored = layout.group([obj(older, 90), obj(key), obj(key + ".sha256", 80), obj("pg/main/notes.txt"),
                                     obj("pg/main/wal/000000010000000000000001")])
    assert [b.key for b in backups] == [older, key]
    assert backups[1].taken_at == T0 and backups[1].time_source == "key"
    assert backups[1].sidecars == {key: key + ".sha256"}
    assert backups[1].size == 100  # the sidecar is not part of the backup's size
    assert ignored == 2


def test_folder_layout_groups_members_and_custom_template() -> None:
    bcfg = BackupConfig(cluster="main", bucket="b", prefix="base/", format="basebackup",
                        layout={"key_template": "{cluster}-{stamp}/", "stamp_format": "%Y-%m-%d_%H%M"})  # type: ignore[arg-type]
    layout = Layout(bcfg)
    folder = layout.key_for(T0)
    assert folder == "base/main-2025-03-01_0400/"
    backups, _ = layout.group([obj(folder + "base.tar", 1000), obj(folder + "pg_wal.tar", 16),
                               obj(folder + "backup_manifest", 5), obj("base/other-2025-03-01_0400/base.tar")])
    assert len(backups) == 1
    b = backups[0]
    assert b.folder and b.size == 1021 and sorted(b.members()) == ["backup_manifest", "base.tar", "pg_wal.tar"]
    assert b.member("backup_manifest") is not None


def test_unparseable_stamp_falls_back_to_last_modified() -> None:
    layout = Layout(BackupConfig(cluster="main", bucket="b", prefix=""))
    late = T0 + timedelta(hours=5)
    backups, _ = layout.group([obj("nightly.dump", when=late)])
    assert backups[0].taken_at == late and backups[0].time_source == "last_modified"


def test_unknown_template_field_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        Layout(BackupConfig(cluster="c", bucket="b", layout={"key_template": "{host}/{stamp}.dump"}))  # type: ignore[arg-type]


def test_composite_checksum_matches_s3_arithmetic() -> None:
    data = bytes(range(256)) * 100
    sizes = [10_000, 10_000, len(data) - 20_000]
    expected = base64.b64encode(hashlib.sha256(b"".join(
        hashlib.sha256(data[a:a + n]).digest() for a, n in ((0, 10_000), (10_000, 10_000), (20_000, sizes[2])))
    ).digest()).decode()
    c = CompositeSha256(sizes)
    for i in range(0, len(data), 777):  # chunk boundaries that do not line up with parts
        c.update(data[i:i + 777])
    assert c.b64() == expected


def test_stream_digest_names_truncation_mismatch_and_agreement() -> None:
    data = b"backup bytes" * 1000
    good = hashlib.sha256(data).hexdigest()
    ok = StreamDigest("s3://b/k", Recorded("sidecar", sha256_hex=good, size=len(data)), len(data))
    ok.update(data)
    assert ok.problem() is None

    cut = StreamDigest("s3://b/k", Recorded("sidecar", sha256_hex=good, size=len(data)), len(data) // 2)
    cut.update(data[: len(data) // 2])
    assert (cut.problem() or "").startswith("truncated: s3://b/k is 6000 bytes, the .sha256 sidecar records 12000")

    flipped = bytearray(data)
    flipped[5] ^= 1
    bad = StreamDigest("s3://b/k", Recorded("metadata", sha256_hex=good), len(data))
    bad.update(bytes(flipped))
    assert "checksum mismatch" in (bad.problem() or "") and "object metadata" in (bad.problem() or "")

    none = StreamDigest("s3://b/k", Recorded("none"), len(data))
    none.update(data)
    result = integrity_result("main", [none])
    assert result.status == "warn" and "no checksum recorded" in result.message


def test_chunk_reader_reads_across_chunks_and_drains() -> None:
    seen: list[bytes] = []

    def chunks():  # type: ignore[no-untyped-def]
        for c in (b"abc", b"defg", b"hij"):
            seen.append(c)
            yield c

    r = ChunkReader(chunks())
    assert r.read(5) == b"abc"  # raw semantics: at most one chunk per read
    assert io.BufferedReader(r, buffer_size=2).read(3) == b"def"
    r.drain()
    assert seen == [b"abc", b"defg", b"hij"]


def test_dsn_password_goes_to_the_environment_not_the_command_line() -> None:
    conninfo, env = split_dsn("postgresql://app:s3cr3t@db.example:5433/postgres", "messaging")
    assert "s3cr3t" not in conninfo
    assert "dbname=messaging" in conninfo and "port=5433" in conninfo
    assert env == {"PGPASSWORD": "s3cr3t"}


def test_postgresql_tools_inherit_no_secret_of_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRE_STATE__URL", "postgresql://sre:state-secret@db/sre")
    monkeypatch.setenv("PG_EAST1_DSN", "postgresql://app:dsn-secret@east1/app")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = child_env({"PGPASSWORD": "this-one"})
    assert env["PGPASSWORD"] == "this-one" and env["PATH"] == "/usr/bin:/bin"
    assert not {"SRE_STATE__URL", "PG_EAST1_DSN", "AWS_SECRET_ACCESS_KEY"} & set(env)
