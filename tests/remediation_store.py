"""A state store on SQLite or on the sandbox's PostgreSQL, for tests of state-touching behaviour."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sre.store import Store
from sre.store.base import Base
from sre.store.db import Store as _Store

DIALECTS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql", marks=pytest.mark.slow)]


@contextmanager
def state_store(request: pytest.FixtureRequest, dialect: str, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store: a SQLite file under tmp_path, or a fresh database on the sandbox primary."""
    if dialect == "sqlite":
        store = _Store(f"sqlite:///{tmp_path / 'sre.db'}")
        store.migrate()
        try:
            yield store
        finally:
            store.dispose()
        return
    sandbox = request.getfixturevalue("sandbox")
    db = f"sre_test_{secrets.token_hex(4)}"
    sandbox.postgres.primary.sql(f"CREATE DATABASE {db}")
    store = _Store(sandbox.postgres.primary.url(database=db))
    try:
        store.migrate()
        yield store
    finally:
        store.dispose()
        sandbox.postgres.primary.sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def row_counts(store: Store) -> dict[str, int]:
    """Rows per table: a replay must leave every one unchanged."""
    with store.session() as s:
        return {t.name: int(s.scalar(select(func.count()).select_from(t)) or 0) for t in Base.metadata.sorted_tables}
