"""etcd and two Patroni-managed PostgreSQL nodes (one per "region"): `sre up --ha patroni`.

Patroni owns its PostgreSQL: it initialises the leader, clones the replica, writes the server
settings, and restarts, demotes, rewinds and promotes as its HA loop decides. The sandbox only
starts etcd and one Patroni per node (as the `postgres` OS user), on free loopback ports, and
stops them by PID. A node's Patroni and PostgreSQL can also be killed and started again from
another process (`python -m sre.sandbox.patroni kill|start NODE_DIR`): that is the fault an
observed drill injects and the restore it runs; the PIDs go through files in the node's
directory, so whatever started last is what the sandbox stops.

Timings: the sandbox default keeps Patroni's own `loop_wait` (10 s) and `retry_timeout` (10 s)
but a `ttl` of 20 s, so that a lost leader is replaced in about 20-30 s as in production; tests
pass shorter ones (ttl 10, loop_wait 2, retry_timeout 3). docs/decisions/drill-ha-backends.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sre.local.postgres import PG_BIN, PgServer, chown_for_postgres
from sre.local.procs import ManagedProcess, ProcessError, free_port, pid_alive, require_binary, wait_until
from sre.sandbox.postgres import PgPair

SCOPE = "sre-sandbox"
PID_FILE = "patroni.pid"
CONFIG_FILE = "patroni.yml"


@dataclass(frozen=True)
class HaTimings:
    """Patroni's dynamic settings that decide how long a lost leader takes to replace."""

    ttl: int = 20
    loop_wait: int = 10
    retry_timeout: int = 10

    def to_dict(self) -> dict[str, int]:
        return {"ttl": self.ttl, "loop_wait": self.loop_wait, "retry_timeout": self.retry_timeout}


FAST = HaTimings(ttl=10, loop_wait=2, retry_timeout=3)


@dataclass
class Etcd:
    root: Path
    client_port: int
    peer_port: int
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def start(self) -> None:
        exe = require_binary("etcd", "etcd")
        self.root.mkdir(parents=True, exist_ok=True)
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.process = ManagedProcess(
            "etcd", [exe, "--name", "e1", "--data-dir", str(self.root / "data"),
                     "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                     "--initial-cluster", f"e1={peer}", "--log-level", "warn"],
            self.root / "etcd.log").start()

        def healthy() -> bool:
            import httpx

            return httpx.get(f"{self.url}/health", timeout=1).json().get("health") == "true"

        self.process.wait_ready(healthy, timeout=20)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class PatroniNode:
    """One Patroni and the PostgreSQL it manages; `pg` is that server as the sandbox sees it."""

    pg: PgServer
    dir: Path
    rest_port: int
    process: ManagedProcess | None = None

    @property
    def name(self) -> str:
        return self.pg.name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def config_path(self) -> Path:
        return self.dir / CONFIG_FILE

    def write_config(self, etcd: Etcd, auth: tuple[str, str], timings: HaTimings) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        chown_for_postgres(self.dir)
        pg = self.pg
        conf: dict[str, Any] = {
            "scope": SCOPE, "name": pg.name,
            "log": {"level": "WARNING"},
            "restapi": {"listen": f"127.0.0.1:{self.rest_port}", "connect_address": f"127.0.0.1:{self.rest_port}",
                        "authentication": {"username": auth[0], "password": auth[1]}},
            "etcd3": {"hosts": f"127.0.0.1:{etcd.client_port}"},
            "bootstrap": {
                "dcs": {**timings.to_dict(), "maximum_lag_on_failover": 1048576,
                        "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": {
                            "wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                            "max_wal_senders": 10, "max_replication_slots": 10, "wal_keep_size": "256MB",
                            "max_connections": 100, "wal_sender_timeout": "10s", "wal_receiver_timeout": "10s",
                            "wal_receiver_status_interval": "1s"}}},
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "no-sync"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{pg.port}", "connect_address": f"127.0.0.1:{pg.port}",
                "data_dir": str(pg.datadir), "bin_dir": PG_BIN, "pgpass": str(self.dir / "pgpass"),
                "authentication": {"superuser": {"username": "postgres", "password": "sandbox"},
                                   "replication": {"username": "postgres", "password": "sandbox"}},
                # Outside the data directory: pg_rewind copies the source's files and fails on a socket.
                "parameters": {"unix_socket_directories": str(self.dir), "fsync": "off",
                               "shared_buffers": "64MB", "log_min_messages": "warning"},
                "pg_hba": ["local all all trust", "host replication all 127.0.0.1/32 trust",
                           "host all all 127.0.0.1/32 trust"],
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False},
        }
        self.config_path.write_text(yaml.safe_dump(conf, sort_keys=False))
        chown_for_postgres(self.config_path)

    def start(self) -> None:
        self.process = ManagedProcess(f"patroni {self.name}", [require_binary("patroni", "patroni"),
                                                                str(self.config_path)],
                                      self.pg.log_path, user="postgres" if os.geteuid() == 0 else None,
                                      cwd=self.dir).start()
        assert self.process.pid is not None
        (self.dir / PID_FILE).write_text(f"{self.process.pid}\n")

    def role(self) -> str | None:
        """What this node's Patroni says it is (primary, replica, ...), None when it does not answer."""
        import httpx

        try:
            return str(httpx.get(f"{self.url}/patroni", timeout=1).json().get("role"))
        except (httpx.HTTPError, ValueError):
            return None

    def stop(self) -> None:
        """Stop whatever runs for this node now: Patroni (it stops its PostgreSQL), then leftovers."""
        if self.process is not None:
            self.process.stop(timeout=30)
        kill_node(self.dir, signal.SIGTERM, timeout=30)
        self.pg.stop()  # a postmaster orphaned by a killed Patroni, by its postmaster.pid


@dataclass
class PatroniPair(PgPair):
    """etcd plus east1 (the first leader, us-east-1) and west1 (eu-west-1), each under Patroni."""

    etcd: Etcd | None = None
    nodes: list[PatroniNode] = field(default_factory=list)
    auth: tuple[str, str] = ("sre", "")
    timings: HaTimings = field(default_factory=HaTimings)

    @classmethod
    def start_ha(cls, root: Path, timings: HaTimings | None = None) -> PatroniPair:
        require_binary("patroni", "patroni")
        require_binary("postgresql", "postgres", PG_BIN)
        root.mkdir(parents=True, exist_ok=True)
        chown_for_postgres(root)
        servers = [PgServer(name, region, root / name / "data", free_port(), root / f"{name}.log")
                   for name, region in (("east1", "us-east-1"), ("west1", "eu-west-1"))]
        pair = cls(root, servers[0], servers[1], etcd=Etcd(root / "etcd", free_port(), free_port()),
                   auth=("sre", secrets.token_urlsafe(24)), timings=timings or HaTimings())
        pair.nodes = [PatroniNode(s, root / s.name, free_port()) for s in servers]
        try:
            assert pair.etcd is not None
            pair.etcd.start()
            for node in pair.nodes:
                node.write_config(pair.etcd, pair.auth, pair.timings)
            leader, replica = pair.nodes
            leader.start()
            assert leader.process is not None
            leader.process.wait_ready(lambda: leader.role() == "master" and leader.pg.ready(), timeout=60)
            replica.start()
            assert replica.process is not None
            replica.process.wait_ready(lambda: replica.role() == "replica" and replica.pg.ready(), timeout=60)
            pair.wait_streaming(timeout=30)
        except BaseException:
            pair.stop()
            raise
        return pair

    def components(self) -> list[dict[str, Any]]:
        """etcd and each Patroni (REST API), for `sre up`'s table."""
        out = []
        if self.etcd is not None and self.etcd.process is not None:
            out.append({"component": "etcd (Patroni's DCS)", "url": self.etcd.url, "pid": self.etcd.process.pid,
                        "log": str(self.etcd.root / "etcd.log")})
        for n in self.nodes:
            out.append({"component": f"patroni {n.name} (REST API)", "url": n.url,
                        "pid": _read_pid(n.dir / PID_FILE), "log": str(n.pg.log_path)})
        return out

    def node(self, name: str) -> PatroniNode:
        return next(n for n in self.nodes if n.name == name)

    def leader(self) -> PatroniNode | None:
        found = [n for n in self.nodes if n.role() == "master"]
        return found[0] if len(found) == 1 else None

    def wait_streaming(self, timeout: float = 10.0) -> None:
        """Whoever leads now has every other node streaming from it."""

        def streaming() -> bool:
            leader = self.leader()
            if leader is None:
                return False
            names = {r[0] for r in leader.pg.sql(
                "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")}
            return names >= {n.name for n in self.nodes if n is not leader}

        wait_until(streaming, timeout=timeout, what="Patroni replicas streaming from the leader")

    def stop(self) -> None:
        errors = []
        for node in reversed(self.nodes):
            try:
                node.stop()
            except Exception as exc:  # stop the others even if one misbehaves
                errors.append(f"{node.name}: {exc}")
        if self.etcd is not None:
            self.etcd.stop()
        if errors:
            raise ProcessError("patroni", "; ".join(errors))


# --------------------------------------------------------------------------- kill / start from outside


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _ours(pid: int, word: bytes) -> bool:
    """A PID from a file may belong to another program by now: check its command line."""
    try:
        return word in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def kill_node(node_dir: Path, sig: int = signal.SIGKILL, timeout: float = 15.0) -> list[int]:
    """Signal this node's Patroni and its PostgreSQL's whole process group (postmaster and backends,
    which Patroni starts in a session of their own), as a lost machine would lose them."""
    hit: list[int] = []
    patroni = _read_pid(node_dir / PID_FILE)
    if patroni is not None and pid_alive(patroni) and _ours(patroni, b"patroni"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(patroni, sig)
            hit.append(patroni)
    if sig == signal.SIGKILL:
        postmaster = _read_pid(node_dir / "data" / "postmaster.pid")
        if postmaster is not None and pid_alive(postmaster) and _ours(postmaster, b"postgres"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(postmaster), sig)
                hit.append(postmaster)
    for pid in hit:
        with contextlib.suppress(TimeoutError):
            wait_until(lambda pid=pid: not pid_alive(pid) or _zombie(pid), timeout=timeout,  # type: ignore[misc]
                       what=f"pid {pid} to exit")
    return hit


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def start_detached(node_dir: Path) -> int:
    """Start this node's Patroni again, detached from the caller (a drill's restore command); its
    PID goes to the node's PID file, where the sandbox finds it to stop it."""
    cmd = [require_binary("patroni", "patroni"), str(node_dir / CONFIG_FILE)]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *cmd]
    log = (node_dir.parent / f"{node_dir.name}.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=node_dir,
                            start_new_session=True)
    (node_dir / PID_FILE).write_text(f"{proc.pid}\n")
    return proc.pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sre.sandbox.patroni",
                                     description="Kill or start one sandbox Patroni node (drill fault and restore).")
    parser.add_argument("action", choices=("kill", "start"))
    parser.add_argument("node_dir", type=Path)
    args = parser.parse_args(argv)
    if not (args.node_dir / CONFIG_FILE).exists():
        print(f"{args.node_dir}: no {CONFIG_FILE} here", file=sys.stderr)
        return 2
    if args.action == "kill":
        print("killed " + " ".join(str(p) for p in kill_node(args.node_dir)))
    else:
        print(f"started patroni pid {start_detached(args.node_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
