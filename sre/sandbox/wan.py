"""A WAN between the sandbox's two regions: a delaying TCP proxy.

On loopback replication is instant, so an unplanned drill loses nothing and every estimate
looks perfect. Each `WanLink` listens on a free port and forwards to one server, holding every
chunk of bytes for half the round trip (plus optional jitter) in each direction, in order,
optionally at a capped bandwidth. The sandbox points the replicas' replication connections
through it (`Wan.attach`), so WAL reaches the other "region" one way-delay late, as it would
between us-east-1 and eu-west-1 (about 75 ms round trip).

Each link is a small process of its own (`python -m sre.sandbox.wan`), started and stopped by
PID like every other part of the sandbox. `tc netem` would be closer to a real network but needs network
namespaces and CAP_NET_ADMIN, which the machines this runs on do not all grant.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sre.local.procs import ManagedProcess, ProcessError, free_port, port_open, wait_until

if TYPE_CHECKING:
    from sre.local.postgres import PgServer
    from sre.sandbox.redis import RedisPair
    from sre.sandbox.stack import Stack

CHUNK = 64 * 1024


@dataclass
class WanSettings:
    rtt: float = 0.075  # seconds, round trip
    jitter: float = 0.0  # seconds, added to each chunk's one-way delay (uniform 0..jitter), order kept
    bandwidth: float | None = None  # bytes per second, per direction of each connection
    # A server that goes away takes its undelivered bytes with it, as a lost region would: the
    # WAL still on the way to the replica when the primary dies never arrives.
    drop_in_flight: bool = False


@dataclass
class WanLink:
    name: str
    target_port: int
    port: int
    process: ManagedProcess | None = field(default=None, repr=False)


class _Pipe:
    """One direction of one connection: read, hold until due, write, in order."""

    def __init__(self, settings: WanSettings, from_server: bool) -> None:
        self.settings = settings
        self.from_server = from_server
        self.queue: deque[tuple[float, bytes]] = deque()
        self.ready = asyncio.Event()
        self.last_due = 0.0

    def due(self, size: int) -> float:
        s = self.settings
        delay = s.rtt / 2 + (random.uniform(0, s.jitter) if s.jitter else 0.0)
        due = max(time.monotonic() + delay, self.last_due)
        if s.bandwidth:
            due = max(due, self.last_due + size / s.bandwidth)
        self.last_due = due
        return due

    async def read(self, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(CHUNK):
                self.queue.append((self.due(len(data)), data))
                self.ready.set()
        except (ConnectionError, OSError):
            pass
        if self.from_server and self.settings.drop_in_flight:
            self.queue.clear()
        self.queue.append((self.due(0), b""))  # end of stream, delivered after the data
        self.ready.set()

    async def write(self, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self.ready.wait()
                while self.queue:
                    due, data = self.queue[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    self.queue.popleft()
                    if not data:
                        writer.close()
                        return
                    writer.write(data)
                    await writer.drain()
                self.ready.clear()
        except (ConnectionError, OSError):
            writer.close()


async def serve(port: int, target_port: int, settings: WanSettings) -> None:
    """Forward 127.0.0.1:`port` to 127.0.0.1:`target_port` across the WAN, until cancelled."""
    async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_w.close()
            return
        up, down = _Pipe(settings, False), _Pipe(settings, True)
        try:
            await asyncio.gather(up.read(client_r), up.write(server_w), down.read(server_r), down.write(client_w),
                                 return_exceptions=True)
        finally:
            client_w.transport.abort()
            server_w.transport.abort()

    server = await asyncio.start_server(accept, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


class Wan:
    """The links of one sandbox: one proxy process per link, each stopped by its PID.

    Processes of their own, not threads of the caller: a proxy sharing the interpreter with a
    drill's canary and a write load waits for the GIL, and its delay stops being the WAN's."""

    def __init__(self, settings: WanSettings | None = None, root: Path | None = None) -> None:
        self.settings = settings or WanSettings()
        self.root = root or Path(tempfile.mkdtemp(prefix="sre-wan-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.links: dict[str, WanLink] = {}

    def link(self, name: str, target_port: int) -> WanLink:
        """Listen on a free loopback port forwarding to `target_port` across the WAN."""
        s = self.settings
        port = free_port()
        cmd = [sys.executable, "-m", "sre.sandbox.wan", "--port", str(port), "--target", str(target_port),
               "--rtt", str(s.rtt), "--jitter", str(s.jitter)]
        if s.bandwidth:
            cmd += ["--bandwidth", str(s.bandwidth)]
        if s.drop_in_flight:
            cmd.append("--drop-in-flight")
        proc = ManagedProcess(name=f"wan {name}", cmd=cmd, log_path=self.root / f"{name}.log").start()
        link = WanLink(name, target_port, port, proc)
        self.links[name] = link
        proc.wait_ready(lambda: port_open(port), timeout=20)
        return link

    def stop(self) -> None:
        errors = []
        for link in self.links.values():
            if link.process is not None:
                try:
                    link.process.stop(timeout=10)
                except Exception as exc:  # stop the other links even if one misbehaves
                    errors.append(f"{link.name}: {exc}")
        if errors:
            raise ProcessError("wan", "; ".join(errors))

    def describe(self) -> str:
        s = self.settings
        extra = (f", jitter {s.jitter * 1000:.0f} ms" if s.jitter else "") + (
            f", {s.bandwidth / 1e6:.1f} MB/s" if s.bandwidth else "")
        return f"WAN {s.rtt * 1000:.0f} ms round trip{extra}: " + ", ".join(
            f"{n} 127.0.0.1:{link.port} -> :{link.target_port}" for n, link in self.links.items())


def attach_postgres(wan: Wan, primary_port: int, replica: PgServer, timeout: float = 30.0) -> WanLink:
    """Route `replica`'s replication connection through a new link to the primary, and wait
    until it streams through it (primary_conninfo is reloadable since PostgreSQL 13)."""
    link = wan.link(f"postgres-replication-{replica.name}", primary_port)
    conninfo = str(replica.sql("SHOW primary_conninfo")[0][0])
    rewritten = re.sub(r"\bport=\d+", f"port={link.port}", conninfo)
    if rewritten == conninfo:
        rewritten = f"{conninfo} port={link.port}"
    quoted = rewritten.replace("'", "''")  # ALTER SYSTEM takes no bind parameters
    replica.sql(f"ALTER SYSTEM SET primary_conninfo = '{quoted}'")
    replica.sql("SELECT pg_reload_conf()")
    wait_until(lambda: replica.sql("SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming' AND "
                                   "sender_port = %s", [link.port]),
               timeout=timeout, what=f"{replica.name} streaming through the WAN link")
    return link


def attach_redis(wan: Wan, pair: RedisPair) -> WanLink:
    """Point the Redis replica at its primary through a new link (REPLICAOF, a partial resync)."""
    import redis

    link = wan.link("redis-replication", pair.primary_port)
    client = redis.Redis(host="127.0.0.1", port=pair.replica_port, socket_timeout=5)
    try:
        client.execute_command("REPLICAOF", "127.0.0.1", str(link.port))
        wait_until(lambda: client.info("replication").get("master_link_status") == "up", timeout=30,
                   what="the Redis replica linked through the WAN")
    finally:
        client.close()
    return link


def client_link(node: str) -> str:
    return f"postgres-clients-{node}"


def attach(stack: Stack, settings: WanSettings) -> Wan:
    """The sandbox's hook: both replication links through one WAN, and the application's path to
    the other region's database (the application runs beside the primary, in us-east-1)."""
    wan = Wan(settings, stack.root / "wan")
    try:
        if stack.postgres is not None:
            attach_postgres(wan, stack.postgres.primary.port, stack.postgres.replica)
            wan.link(client_link(stack.postgres.replica.name), stack.postgres.replica.port)
        if stack.redis is not None:
            attach_redis(wan, stack.redis)
    except BaseException:
        wan.stop()
        raise
    return wan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A delaying TCP proxy (one WAN link of the sandbox).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--rtt", type=float, default=0.075)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--bandwidth", type=float, default=None)
    parser.add_argument("--drop-in-flight", action="store_true")
    args = parser.parse_args(argv)
    settings = WanSettings(args.rtt, args.jitter, args.bandwidth, args.drop_in_flight)
    try:
        asyncio.run(serve(args.port, args.target, settings))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
