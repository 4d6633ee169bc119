"""A PostgreSQL server this process runs itself: started as the postgres OS user, stopped by PID."""

from __future__ import annotations

import os
import pwd
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre.local.procs import ManagedProcess, require_binary, wait_until

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_USER = "postgres"


def pg_user() -> str | None:
    """The OS user PostgreSQL binaries run as: postgres when we are root (they refuse root)."""
    return PG_USER if os.geteuid() == 0 else None


def chown_for_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam(PG_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


@dataclass
class PgServer:
    """One PostgreSQL server this process starts and stops itself (by PID), on loopback."""

    name: str
    region: str
    datadir: Path
    port: int
    log_path: Path
    process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=3"

    def url(self, driver: str = "postgresql+psycopg", database: str = "postgres") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 20.0) -> None:
        require_binary("postgresql", "postgres", PG_BIN)
        self.process = ManagedProcess(
            name=f"postgresql {self.name}",
            cmd=[f"{PG_BIN}/postgres", *self.server_options()],
            log_path=self.log_path,
            user=pg_user(),
            # SIGINT is PostgreSQL's "fast" shutdown: no waiting for clients to leave.
            stop_signal=signal.SIGINT,
        ).start()
        self.process.wait_ready(self.ready, timeout)

    @property
    def socket_dir(self) -> Path:
        # Outside the data directory: pg_rewind copies every file of the source's data directory
        # and fails on a socket there ("could not open file .s.PGSQL.N").
        return self.datadir.parent

    def server_options(self) -> list[str]:
        """The `postgres` options this node runs with (also what `pg_ctl start -o` needs)."""
        return ["-D", str(self.datadir), "-p", str(self.port), "-k", str(self.socket_dir)]

    def ready(self) -> bool:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=1) as conn:
            conn.execute("SELECT 1")
        return True

    def stop(self, mode: str = "fast") -> None:
        """fast: clean shutdown; immediate: crash-like (SIGQUIT), as a region loss would be."""
        if self.process is not None:
            if mode == "immediate":
                self.process.stop_signal = signal.SIGQUIT
            self.process.stop(timeout=15)
            self.process.stop_signal = signal.SIGINT
        self._stop_restarted(signal.SIGQUIT if mode == "immediate" else signal.SIGINT)

    def _stop_restarted(self, sig: int, timeout: float = 15.0) -> None:
        """Stop a postmaster restarted outside this object (a drill's `pg_ctl start`), by the PID
        in postmaster.pid, so that no server outlives the sandbox."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if self.process is not None and pid == self.process.pid:
            return

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

        try:  # a stale file's PID may belong to another program by now
            if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return
        except OSError:
            return
        if gone():
            return
        os.kill(pid, sig)
        try:
            wait_until(gone, timeout=timeout, what=f"postgresql {self.name} (pid {pid}) to stop")
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)

    def running(self) -> bool:
        return self.process is not None and self.process.alive()

    def sql(self, query: str, params: Sequence[Any] | None = None, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement in autocommit and return its rows (empty for statements without)."""
        import psycopg

        dsn = self.dsn.replace("dbname=postgres", f"dbname={database}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []
