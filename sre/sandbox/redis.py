"""Redis 7 primary + replica of the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sre.local.procs import ManagedProcess, free_port, require_binary


def _ping(port: int) -> bool:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


@dataclass
class RedisPair:
    root: Path
    primary_port: int
    replica_port: int
    primary: ManagedProcess | None = field(default=None, repr=False)
    replica: ManagedProcess | None = field(default=None, repr=False)

    @property
    def primary_url(self) -> str:
        return f"redis://127.0.0.1:{self.primary_port}/0"

    @property
    def replica_url(self) -> str:
        return f"redis://127.0.0.1:{self.replica_port}/0"

    def _proc(self, name: str, port: int, extra: list[str]) -> ManagedProcess:
        exe = require_binary("redis", "redis-server")
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        return ManagedProcess(
            name=f"redis {name}",
            cmd=[exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d), "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--repl-diskless-sync-delay", "0",
                 "--enable-debug-command", "local",
                 # A cache's limits, as production runs it (the memory rules divide by maxmemory).
                 "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru", *extra],
            log_path=self.root / f"{name}.log",
        )

    @classmethod
    def start(cls, root: Path) -> RedisPair:
        pair = cls(root, free_port(), free_port())
        try:
            pair.primary = pair._proc("primary", pair.primary_port, []).start()
            pair.primary.wait_ready(lambda: _ping(pair.primary_port))
            pair.start_replica()
        except BaseException:
            pair.stop()
            raise
        return pair

    def start_replica(self) -> None:
        self.replica = self._proc("replica", self.replica_port,
                                  ["--replicaof", "127.0.0.1", str(self.primary_port)]).start()
        self.replica.wait_ready(lambda: _ping(self.replica_port))

    def stop(self) -> None:
        for p in (self.replica, self.primary):
            if p is not None:
                p.stop()
