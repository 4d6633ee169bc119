"""PostgreSQL connections that cannot hang: short connect timeouts and a client-side deadline.

A node that accepts TCP but never answers (a stopped process, a black-holed host) would block a
libpq call forever: `connect_timeout` bounds only the connection phase, and `statement_timeout`
is enforced by the server, which is the part that is not answering. `deadline()` closes the
socket from a timer thread instead, so the blocked call returns with an error on time.

Every function takes a `PgNode` from the config (its DSN is a secret reference, resolved here and
never logged) or a plain DSN string.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sre.errors import UnreachableError

if TYPE_CHECKING:
    import psycopg

    from sre.config import PgNode

# libpq (and psycopg, which enforces it client-side) treats connect_timeout below 2 s as 2 s.
MIN_CONNECT_TIMEOUT = 2


class DeadlineExceeded(UnreachableError):
    """A node accepted the connection but did not answer in time."""


def label(node: PgNode | str) -> str:
    """How a node is named in messages: its config name, never its DSN."""
    return "PostgreSQL" if isinstance(node, str) else node.name


def conninfo(node: PgNode | str, **overrides: Any) -> str:
    """The node's libpq conninfo (secret resolved) with `overrides` applied; keep it out of logs."""
    from psycopg.conninfo import make_conninfo

    dsn = node if isinstance(node, str) else node.dsn.resolve().get_secret_value()
    return make_conninfo(dsn, **{k: v for k, v in overrides.items() if v is not None})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def connect(
    node: PgNode | str,
    *,
    timeout: float = 3.0,
    dbname: str | None = None,
    statement_timeout: float | None = None,
    application_name: str = "sre",
    autocommit: bool = True,
    name: str | None = None,
) -> psycopg.Connection[tuple[Any, ...]]:
    """Open a connection or raise UnreachableError naming the node (never the DSN).

    `timeout` bounds the connection phase (libpq's floor is 2 s); `statement_timeout` makes the
    server cancel slow statements. Neither bounds a server that stops answering after connecting:
    wrap calls in `deadline()` for that.
    """
    import psycopg

    who = name or label(node)
    options = None
    if statement_timeout is not None:
        options = f"-c statement_timeout={max(1, int(statement_timeout * 1000))}"
    try:
        info = conninfo(node, dbname=dbname, application_name=application_name,
                        connect_timeout=max(MIN_CONNECT_TIMEOUT, math.ceil(timeout)), options=options)
    except psycopg.ProgrammingError:
        from sre.errors import UsageError

        raise UsageError(f"{who}: the PostgreSQL DSN in the config is not valid libpq syntax") from None
    try:
        return psycopg.connect(info, autocommit=autocommit)
    except psycopg.errors.ConnectionTimeout:
        raise UnreachableError(f"{who}: did not accept a connection within "
                               f"{max(MIN_CONNECT_TIMEOUT, math.ceil(timeout))}s") from None
    except psycopg.OperationalError as exc:
        raise UnreachableError(f"{who}: {_first_line(exc)}") from None


def _shutdown_socket(conn: psycopg.Connection[Any]) -> None:
    """Wake a call blocked on this connection: shut its socket down (a dup, so libpq keeps its fd)."""
    try:
        fd = os.dup(conn.fileno())
    except Exception:  # already closed: nothing is blocked on it
        return
    s = socket.socket(fileno=fd)
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        s.close()


@contextmanager
def deadline(conn: psycopg.Connection[Any], seconds: float, who: str = "PostgreSQL", *,
             budget: float | None = None) -> Iterator[None]:
    """Run the block with a client-side deadline: past it, the connection is cut and the block's
    error becomes DeadlineExceeded (naming `budget`, default `seconds`), and the connection is
    unusable. A lost connection becomes UnreachableError; other SQL errors pass through."""
    import psycopg

    fired = threading.Event()

    def expire() -> None:
        fired.set()
        _shutdown_socket(conn)

    timer = threading.Timer(max(0.0, seconds), expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except psycopg.Error as exc:
        if fired.is_set():
            raise DeadlineExceeded(f"{who}: did not answer within {budget or seconds:g}s") from None
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            # A lost connection or a statement the server cancelled (statement_timeout); SQL errors
            # (a missing table, a privilege) propagate unchanged for the caller to tell apart.
            raise UnreachableError(f"{who}: {_first_line(exc)}") from None
        raise
    finally:
        timer.cancel()


def query(conn: psycopg.Connection[Any], sql: Any, params: Sequence[Any] | dict[str, Any] | None = None,
          ) -> list[tuple[Any, ...]]:
    """Run one statement and return its rows (empty for statements without)."""
    cur = conn.execute(sql, params)
    return cur.fetchall() if cur.description else []


class Timed:
    """A short-lived connection whose every step is bounded: the connection must be up within
    `timeout`, and the statements run through `query()` must all be answered within `timeout`
    after that (client-side deadline, plus the same `statement_timeout` on the server)."""

    def __init__(self, node: PgNode | str, timeout: float, *, name: str | None = None, **connect_kwargs: Any) -> None:
        self.node = node
        self.who = name or label(node)
        self.timeout = timeout
        self.connect_kwargs = {"statement_timeout": timeout, **connect_kwargs}
        self.conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._end = 0.0

    def __enter__(self) -> Timed:
        self.conn = connect(self.node, timeout=self.timeout, name=self.who, **self.connect_kwargs)
        self._end = time.monotonic() + self.timeout
        return self

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def query(self, sql: Any, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """One statement under what is left of the budget."""
        assert self.conn is not None
        with deadline(self.conn, self.remaining(), self.who, budget=self.timeout):
            return query(self.conn, sql, params)

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # a cut connection may refuse a clean close; it is gone either way
                pass
