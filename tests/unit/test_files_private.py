"""Secret files and the SQLite state: created 0600 in a 0700 directory, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sre.files import write_private
from sre.store import Store
from sre.store.remediation import BreakerRow


@pytest.fixture
def open_umask() -> Iterator[None]:
    # umask 0: a file created with the default mode and chmod-ed later would show 0666 here.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_secret_file_is_0600_in_a_0700_directory(tmp_path: Path, open_umask: None) -> None:
    path = write_private(tmp_path / "secrets" / "read-token", "x" * 32 + "\n")
    assert (_mode(path), _mode(path.parent)) == (0o600, 0o700)
    write_private(path, "y" * 32 + "\n")  # replaced, still private, no temporary file left
    assert _mode(path) == 0o600 and path.read_text() == "y" * 32 + "\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["read-token"]


def test_the_sqlite_state_and_its_wal_are_0600_in_a_0700_directory(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / "state" / "sre.db"
    store = Store(f"sqlite:///{db}")
    store.migrate()
    with store.session() as s:
        s.merge(BreakerRow(id=1, open=False, reason=""))
    try:
        assert _mode(db.parent) == 0o700
        files = [p for p in db.parent.iterdir() if p.name.startswith("sre.db")]
        assert {p.name for p in files} >= {"sre.db", "sre.db-wal"}
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        store.dispose()
