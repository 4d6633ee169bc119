"""Opening the state store and applying its migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from sre.errors import UnreachableError
from sre.files import create_private

if TYPE_CHECKING:
    from sre.config import SreConfig

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; several replicas starting together take turns migrating.
_MIGRATION_LOCK = 0x5E_0001


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the API read while the worker writes; busy_timeout waits instead of failing.
    # FULL: a commit is fsynced before it returns (NORMAL in WAL mode may lose the last commits on
    # power loss), so an alert answered 200 is on disk; the inbox's group commit pays it once a batch.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Store:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            path = url.split("///", 1)[-1].split("?", 1)[0]
            if path and path != ":memory:":
                # Alerts, labels and audit: owner only (SQLite gives its WAL the database's mode).
                create_private(Path(path))
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10,
                          # application_name: remediation's PostgreSQL actions never touch these sessions.
                          connect_args={"connect_timeout": 5, "application_name": "sre-store"})
        self.engine: Engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:  # the URL may hold a password
        return f"Store({self.dialect})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on error."""
        s = self._sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
        except SQLAlchemyError as exc:
            raise UnreachableError(f"state store ({self.dialect}) failed to migrate: {exc.__class__.__name__}: "
                                   f"{str(exc.orig if hasattr(exc, 'orig') else exc).strip()}") from None

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(cfg: SreConfig, *, migrate: bool = True) -> Store:
    store = Store(cfg.state.resolved_url())
    if migrate:
        store.migrate()
    return store
