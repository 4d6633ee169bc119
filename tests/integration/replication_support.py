"""Helpers for the replica-check tests: private server pairs to break, configs that describe them,
freezing processes, and a steady writer."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from secrets import token_hex
from typing import Any, Protocol, TypeVar

from sre.config import SreConfig
from sre.local.postgres import PgServer, chown_for_postgres
from sre.local.procs import wait_until
from sre.results import CheckResult
from sre.sandbox.postgres import PgPair
from sre.sandbox.redis import RedisPair


class _Stoppable(Protocol):
    def stop(self) -> None: ...


T = TypeVar("T", bound=_Stoppable)


def private_root(prefix: str) -> Path:
    """A directory under /tmp the postgres OS user can reach (pytest's tmp_path is 0700 root)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    chown_for_postgres(root)
    return root


@contextlib.contextmanager
def _private(prefix: str, start: Callable[[Path], T]) -> Iterator[T]:
    root = private_root(prefix)
    try:
        pair = start(root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield pair
    finally:
        try:
            pair.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def private_pg_pair() -> Iterator[PgPair]:
    """A primary + streaming replica of our own, for tests that break replication."""
    with _private("sre-repl-pg-", lambda root: PgPair.start(root / "pg")) as pair:
        pair.wait_streaming()
        yield pair


@contextlib.contextmanager
def private_redis_pair() -> Iterator[RedisPair]:
    with _private("sre-repl-redis-", RedisPair.start) as pair:
        yield pair


def secret(directory: Path, name: str, value: str) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return {"file": str(path)}


def pg_cluster(secrets: Path, primary: tuple[str, str, str], replicas: list[tuple[str, str, str]],
               **extra: Any) -> dict[str, Any]:
    """A postgres.clusters entry; nodes are (name, region, dsn)."""
    def node(n: tuple[str, str, str]) -> dict[str, Any]:
        return {"name": n[0], "region": n[1], "dsn": secret(secrets, f"pg-{n[0]}-{token_hex(4)}", n[2])}

    return {"primary": node(primary), "replicas": [node(r) for r in replicas], **extra}


def pair_cluster(secrets: Path, pair: PgPair, **extra: Any) -> dict[str, Any]:
    p, r = pair.primary, pair.replica
    return pg_cluster(secrets, (p.name, p.region, p.dsn), [(r.name, r.region, r.dsn)], **extra)


def redis_pair_entry(secrets: Path, pair: RedisPair, replica_url: str | None = None, **extra: Any) -> dict[str, Any]:
    tag = pair.primary_port
    return {
        "primary": {"name": "primary", "region": "us-east-1",
                    "url": secret(secrets, f"redis-{tag}-primary", pair.primary_url)},
        "replicas": [{"name": "replica", "region": "eu-west-1",
                      "url": secret(secrets, f"redis-{tag}-replica", replica_url or pair.replica_url)}],
        **extra,
    }


def config(clusters: dict[str, Any] | None = None, pairs: dict[str, Any] | None = None) -> SreConfig:
    return SreConfig.model_validate({"postgres": {"clusters": clusters or {}}, "redis": {"pairs": pairs or {}}})


# ---------------------------------------------------------------- processes


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def server_pids(server: PgServer) -> list[int]:
    """The postmaster and every process it forked (backends call setsid, so a process-group
    signal would miss them)."""
    assert server.process is not None and server.process.pid is not None
    return [server.process.pid, *children(server.process.pid)]


@contextlib.contextmanager
def frozen(pids: list[int]) -> Iterator[None]:
    """SIGSTOP the processes for the block (a node that accepts TCP and never answers)."""
    stopped = []
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A port whose kernel completes the TCP handshake but where nothing ever answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    try:
        yield int(s.getsockname()[1])
    finally:
        s.close()


# ---------------------------------------------------------------- load and waits


class Writer:
    """Commits one row every `every` seconds on the primary: (id, ts = clock_timestamp())."""

    def __init__(self, server: PgServer, table: str = "load", every: float = 0.02) -> None:
        self.server, self.table, self.every = server, table, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None
        server.sql(f"CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, "
                   "ts timestamptz NOT NULL DEFAULT clock_timestamp(), pad text)")

    def _run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.server.dsn, autocommit=True) as conn:
                while not self._stop.is_set():
                    conn.execute(f"INSERT INTO {self.table} (pad) VALUES (repeat('x', 200))")
                    self._stop.wait(self.every)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.error is not None:
            raise self.error


def wait_streaming(pair: PgPair, timeout: float = 20.0) -> None:
    """The replica streams and has applied everything the primary has written."""
    pair.wait_streaming(timeout)
    lsn = pair.primary.sql("SELECT pg_current_wal_lsn()::text")[0][0]
    wait_until(lambda: pair.replica.sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])[0][0],
               timeout=timeout, what="replica caught up")


def check_until(check: Callable[[], CheckResult], wanted: Callable[[CheckResult], bool], *, timeout: float,
                what: str) -> CheckResult:
    """Run `check` until its result is `wanted` (or time out); that result."""
    last: list[CheckResult] = []

    def attempt() -> bool:
        last[:] = [check()]
        return wanted(last[0])

    wait_until(attempt, timeout=timeout, what=what)
    return last[0]
