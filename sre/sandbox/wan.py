"""A WAN between the sandbox's two regions: a delaying TCP proxy.

On loopback replication is instant, so an unplanned drill loses nothing and every estimate
looks perfect. Each `WanLink` listens on a free port and forwards to one server, holding every
chunk of bytes for half the round trip (plus optional jitter) in each direction, in order,
optionally at a capped bandwidth. The sandbox points the replicas' replication connections
through it (`Wan.attach`), so WAL reaches the other "region" one way-delay late, as it would
between us-east-1 and eu-west-1 (about 75 ms round trip).

One asyncio loop in a daemon thread serves every link of a `Wan`; stopping it closes the
listeners and every connection. `tc netem` would be closer to a real network but needs network
namespaces and CAP_NET_ADMIN, which the machines this runs on do not all grant.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sre.sandbox.procs import SandboxError, wait_until

if TYPE_CHECKING:
    from sre.sandbox.postgres import PgServer
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
    port: int = 0
    connections: int = 0
    bytes_forwarded: int = 0
    bytes_dropped: int = 0
    server: asyncio.base_events.Server | None = field(default=None, repr=False)


class _Pipe:
    """One direction of one connection: read, hold until due, write, in order."""

    def __init__(self, settings: WanSettings, link: WanLink, from_server: bool) -> None:
        self.settings = settings
        self.link = link
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
            self.link.bytes_dropped += sum(len(d) for _, d in self.queue)
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
                    self.link.bytes_forwarded += len(data)
                    await writer.drain()
                self.ready.clear()
        except (ConnectionError, OSError):
            writer.close()


class Wan:
    """The links of one sandbox, served by one event loop thread."""

    def __init__(self, settings: WanSettings | None = None) -> None:
        self.settings = settings or WanSettings()
        self.links: dict[str, WanLink] = {}
        self._writers: list[asyncio.StreamWriter] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sandbox-wan", daemon=True)
        self._thread.start()

    def link(self, name: str, target_port: int) -> WanLink:
        """Listen on a free loopback port forwarding to `target_port` across the WAN."""
        link = WanLink(name, target_port)
        future = asyncio.run_coroutine_threadsafe(self._listen(link), self.loop)
        try:
            future.result(timeout=10)
        except Exception as exc:
            raise SandboxError("wan", f"{name}: cannot listen: {exc}") from None
        self.links[name] = link
        return link

    async def _listen(self, link: WanLink) -> None:
        async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            link.connections += 1
            try:
                server_r, server_w = await asyncio.open_connection("127.0.0.1", link.target_port)
            except OSError:
                client_w.close()
                return
            up, down = _Pipe(self.settings, link, False), _Pipe(self.settings, link, True)
            self._writers += [client_w, server_w]
            try:
                await asyncio.gather(up.read(client_r), up.write(server_w), down.read(server_r),
                                     down.write(client_w), return_exceptions=True)
            finally:
                for w in (client_w, server_w):
                    w.transport.abort()
                    self._writers.remove(w)

        link.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        link.port = link.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            # Aborting every connection ends its pipes, so each task finishes on its own; tasks
            # left cancelled with unread exceptions would be reported from the garbage collector
            # at any later moment, in whatever thread it runs.
            for link in self.links.values():
                if link.server is not None:
                    link.server.close()
            for w in list(self._writers):
                w.transport.abort()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            _, pending = await asyncio.wait(others, timeout=2) if others else (set(), set())
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.loop.close()

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


def attach(stack: Stack, settings: WanSettings) -> Wan:
    """The sandbox's hook: both replication links through one WAN."""
    wan = Wan(settings)
    try:
        if stack.postgres is not None:
            attach_postgres(wan, stack.postgres.primary.port, stack.postgres.replica)
        if stack.redis is not None:
            attach_redis(wan, stack.redis)
    except BaseException:
        wan.stop()
        raise
    return wan
