"""PostgreSQL 15 primary + streaming replica, the sandbox's two "regions"."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sre.local.postgres import PG_BIN, PG_USER, PgServer, chown_for_postgres, pg_user
from sre.local.procs import ProcessError, free_port, require_binary, run, wait_until

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
        return run([exe, *cmd[1:]], user=pg_user(), timeout=timeout, component="postgresql",
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
            raise ProcessError("postgresql", "; ".join(errors))
