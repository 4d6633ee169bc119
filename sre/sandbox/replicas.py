"""Several `sre serve` processes on loopback sharing one PostgreSQL state database of the sandbox:
the multi-replica deployment, for real, for the tests and bench/leader_failover.py."""

from __future__ import annotations

import contextlib
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sre.jobs import JOBS
from sre.local.procs import ManagedProcess, free_port, wait_until
from sre.sandbox.config import sandbox_config

if TYPE_CHECKING:
    from sre.local.postgres import PgServer
    from sre.sandbox.stack import Stack


@dataclass
class Member:
    """One replica: its name (SRE_REPLICA_ID), port and process."""

    name: str
    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.alive()

    def readyz(self) -> dict[str, Any] | None:
        """The /readyz body with its HTTP status under "http", or None when the replica does not answer."""
        import httpx

        if not self.alive():
            return None
        try:
            r = httpx.get(f"{self.url}/readyz", timeout=1)
        except httpx.HTTPError:
            return None
        return {**r.json(), "http": r.status_code}

    def is_leader(self) -> bool:
        body = self.readyz()
        return bool(body and body.get("leader"))


@dataclass
class Replicas:
    """`n` replicas of the service and the database they share."""

    root: Path
    primary: PgServer
    database: str
    config_path: Path
    members: list[Member] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.primary.url(database=self.database)

    @classmethod
    def start(cls, stack: Stack, root: Path, n: int = 3, *, jobs: dict[str, Any] | None = None,
              leader: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
              timeout: float = 60.0) -> Replicas:
        """Create a fresh database, write one sre.yaml for all, start the replicas, wait for each."""

        assert stack.postgres is not None, "replicas need the sandbox's PostgreSQL"
        primary = stack.postgres.primary
        database = f"sre_replicas_{secrets.token_hex(4)}"
        primary.sql(f'CREATE DATABASE "{database}"')
        root.mkdir(parents=True, exist_ok=True)
        cfg = sandbox_config(stack, root)
        cfg["state"]["url"] = primary.url(database=database)
        # Only the jobs asked for: the rest are switched off so the runs table holds just those.
        cfg["jobs"] = {name: {"every": 3600, "enabled": False} for name in JOBS}
        cfg["jobs"].update(jobs or {})
        if leader:
            cfg["leader"] = leader
        cfg.update(extra or {})
        config_path = root / "sre.yaml"
        config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        reps = cls(root=root, primary=primary, database=database, config_path=config_path)
        try:
            for i in range(1, n + 1):
                reps.add(f"r{i}")
            for m in reps.members:
                reps.wait_ready(m, timeout)
        except BaseException:
            reps.stop()
            raise
        return reps

    def add(self, name: str) -> Member:
        """Start one more replica (not waiting for it)."""
        port = free_port()
        proc = ManagedProcess(
            name=f"sre serve {name}",
            cmd=[sys.executable, "-m", "sre", "serve", "--config", str(self.config_path), "--port", str(port)],
            log_path=self.root / f"{name}.log",
            env={"SRE_REPLICA_ID": name, "SRE_LOG_LEVEL": "INFO"},
        ).start()
        member = Member(name=name, port=port, process=proc)
        self.members.append(member)
        return member

    def wait_ready(self, member: Member, timeout: float = 60.0) -> None:
        """Until /readyz answers 200; a replica that exits first raises ProcessError naming its log."""
        def ready() -> bool:
            body = member.readyz()
            return bool(body and body["http"] == 200)

        member.process.wait_ready(ready, timeout)

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def leaders(self) -> list[Member]:
        return [m for m in self.members if m.is_leader()]

    def wait_leader(self, timeout: float = 30.0, *, other_than: str | None = None) -> Member:
        """The one replica reporting leader=true (never two at once), other than `other_than`."""
        def one() -> Member | None:
            found = self.leaders()
            assert len(found) <= 1, f"two leaders at once: {[m.name for m in found]}"
            if found and found[0].name != other_than:
                return found[0]
            return None

        leader = wait_until(one, timeout=timeout, interval=0.05, what="one leader")
        assert leader is not None
        return leader

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.primary.sql(query, params, database=self.database)

    def runs(self, kind: str) -> list[dict[str, Any]]:
        """Scheduled runs of `kind`, oldest first: replica, slot, status, started."""
        rows = self.sql("SELECT host, summary->>'slot', status, started FROM runs "
                        "WHERE kind = %s AND trigger = 'schedule' ORDER BY id", [kind])
        return [{"host": h, "slot": s, "status": st, "started": t} for h, s, st, t in rows]

    def wait_runs(self, kind: str, count: int, timeout: float, **where: Any) -> list[dict[str, Any]]:
        """Wait until `count` scheduled runs of `kind` match `where` (e.g. host="r2")."""
        def enough() -> list[dict[str, Any]] | None:
            rows = [r for r in self.runs(kind) if all(r.get(k) == v for k, v in where.items())]
            return rows if len(rows) >= count else None

        rows = wait_until(enough, timeout=timeout, interval=0.1, what=f"{count} runs of {kind} {where or ''}")
        assert rows is not None
        return rows

    def kill(self, member: Member) -> float:
        """SIGKILL `member`; returns the monotonic time of the kill."""
        t = time.monotonic()
        member.process.kill(signal.SIGKILL)
        assert member.process.proc is not None
        member.process.proc.wait(10)
        return t

    def stop(self) -> None:
        """Stop every replica by PID (SIGTERM, then SIGKILL) and drop the database."""
        for m in self.members:
            with contextlib.suppress(Exception):
                m.process.stop(timeout=20)
        self.members.clear()
        with contextlib.suppress(Exception):
            self.primary.sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
