"""PostgreSQL 15 primary + streaming replica, the sandbox's two "regions"."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre.sandbox.procs import ManagedProcess, SandboxError, free_port, require_binary, run

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_USER = "postgres"

# Port and socket dir go on the command line, never in postgresql.conf: pg_basebackup and
# pg_rewind copy the config files, and both nodes would want the same port (REAL_PARTS.md).
PRIMARY_CONF = """
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
hot_standby = on
wal_log_hints = on
fsync = off
full_page_writes = on
max_connections = 100
wal_receiver_status_interval = '1s'
wal_sender_timeout = '10s'
wal_receiver_timeout = '10s'
shared_buffers = '64MB'
log_min_messages = warning
log_line_prefix = '%m [%p] %a '
"""


def _pg_user() -> str | None:
    return PG_USER if os.geteuid() == 0 else None


def chown_for_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam(PG_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


@dataclass
class PgServer:
    """One PostgreSQL node of the sandbox."""

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
            user=_pg_user(),
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
        from sre.sandbox.procs import wait_until

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


@dataclass
class PgPair:
    """Primary ("east1", us-east-1) streaming to a replica ("west1", eu-west-1) through slot west1."""

    root: Path
    primary: PgServer
    replica: PgServer

    @classmethod
    def start(cls, root: Path) -> PgPair:
        for tool in ("initdb", "postgres", "pg_basebackup"):
            require_binary("postgresql", tool, PG_BIN)
        root.mkdir(parents=True, exist_ok=True)
        chown_for_postgres(root)
        primary = PgServer("east1", "us-east-1", root / "east1", free_port(), root / "east1.log")
        replica = PgServer("west1", "eu-west-1", root / "west1", free_port(), root / "west1.log")
        pair = cls(root, primary, replica)
        try:
            pair._init_primary()
            primary.start()
            pair.base_backup(replica, slot="west1")
            replica.start()
        except BaseException:
            pair.stop()
            raise
        return pair

    def run_pg(self, cmd: list[str], timeout: float = 60) -> str:
        """Run a PostgreSQL binary (by bare name) as the postgres OS user; its stdout."""
        exe = cmd[0] if "/" in cmd[0] else f"{PG_BIN}/{cmd[0]}"
        return run([exe, *cmd[1:]], user=_pg_user(), timeout=timeout, component="postgresql",
                   cwd=self.root).stdout

    def _init_primary(self) -> None:
        d = self.primary.datadir
        self.run_pg(["initdb", "-D", str(d), "-U", PG_USER, "-A", "trust", "--no-sync", "-E", "UTF8",
                     "--locale=C"])
        with (d / "postgresql.conf").open("a") as fh:
            fh.write(PRIMARY_CONF)
        with (d / "pg_hba.conf").open("a") as fh:
            fh.write("host replication all 127.0.0.1/32 trust\n")

    def base_backup(self, target: PgServer, slot: str, source: PgServer | None = None) -> None:
        """Clone `source` (default: primary) into `target` as a streaming replica using `slot`."""
        source = source or self.primary
        if target.datadir.exists():
            shutil.rmtree(target.datadir)
        conninfo = f"host=127.0.0.1 port={source.port} user=postgres application_name={target.name}"
        self.run_pg(["pg_basebackup", "-d", conninfo, "-D", str(target.datadir), "-R", "-X", "stream",
                     "-c", "fast", "-C", "-S", slot, "--no-sync"])

    def wait_streaming(self, timeout: float = 10.0) -> None:
        from sre.sandbox.procs import wait_until

        wait_until(lambda: self.primary.sql(
            "SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'",
            [self.replica.name]), timeout=timeout, what="replica streaming")

    def stop(self) -> None:
        errors = []
        for node in (self.replica, self.primary):
            try:
                node.stop()
            except Exception as exc:  # stop the other node even if one misbehaves
                errors.append(f"{node.name}: {exc}")
        if errors:
            raise SandboxError("postgresql", "; ".join(errors))
