"""Node control behind one interface: how a drill switches, loses, restores and rejoins a primary.

One abstract class, one backend per file (as Patroni's `dcs/`): `local` (pg_ctl/pg_rewind beside
the data directory; the drill itself fences, promotes and rewinds), `patroni` (Patroni's REST API;
Patroni switches and rejoins), `kubernetes` (the primary's pod is lost through the Kubernetes API;
the HA layer inside the cluster recovers). Every operation returns a detail dict that says what
it did, for the drill's timeline.

The patroni backend performs a planned switch itself (`switchover`); the local backend does not:
the drill runs its own fence, catch-up and promotion steps over SQL. The patroni and kubernetes
backends lose a primary and let the HA layer recover (`lose`, `leader`, `restore`); which drill
each backend serves is checked before anything is contacted (`sre.drills.failover.validate`).
"""

from __future__ import annotations

import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from sre.drills.steps import NotUndone
from sre.errors import UnreachableError, UsageError

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.drills.nodes import Member

Detail = dict[str, Any]


class HaError(UnreachableError):
    """The HA layer refused or did not answer."""


class NodeControl(ABC):
    name: ClassVar[str]

    def __init__(self, cfg: SreConfig, cluster: str, members: list[Member]) -> None:
        self.cfg = cfg
        self.cluster = cluster
        self.members = {m.name: m for m in members}

    # ------------------------------------------------------------------ state

    @abstractmethod
    def leader(self) -> str | None:
        """The node the HA layer names as the primary now; None while there is none."""

    def settings(self) -> dict[str, float]:
        """The HA layer's timing settings that bound detection (Patroni: ttl, loop_wait, retry_timeout)."""
        return {}

    def problems(self, *, mode: str, kind: str, failback: bool, src: Member, dst: Member) -> tuple[list[str], list[str]]:
        """(problems that refuse the drill, warnings) for this request, read-only."""
        return [], []

    # ------------------------------------------------------------------ orchestrated

    def switchover(self, old: Member, new: Member) -> Detail:
        raise UsageError(f"the {self.name} backend does not switch the primary itself")

    # ------------------------------------------------------------------ faults

    @abstractmethod
    def lose(self, node: Member) -> Detail:
        """Lose `node` as a region loss would (crash-like, no clean shutdown)."""

    @abstractmethod
    def restore(self, node: Member) -> Detail:
        """Bring a lost node back (the HA layer decides its role)."""

    @abstractmethod
    def rejoin(self, old: Member, new: Member) -> Detail:
        """Make `old` a standby of `new` (or wait until the HA layer has)."""

    # ------------------------------------------------------------------ maintenance

    holding = False  # this drill set maintenance mode and has not cleared it yet

    def hold(self) -> Detail:
        """Keep the HA layer from acting on its own (Patroni: maintenance mode)."""
        raise UsageError(f"the {self.name} backend has no maintenance mode")

    def release(self) -> Detail:
        return {}


def run_command(argv: Sequence[str], what: str, timeout: float = 120) -> Detail:
    """Run a configured fault or restore command; its output goes to the timeline, trimmed."""
    if not argv:
        raise NotUndone(f"{what}: no command configured")
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise HaError(f"{what}: {argv[0]} did not finish within {timeout:.0f}s") from None
    except OSError as exc:
        raise HaError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    out = (proc.stdout + proc.stderr).strip().splitlines()
    if proc.returncode != 0:
        raise HaError(f"{what}: {argv[0]} exited {proc.returncode}: {' | '.join(out[-3:])}")
    return {"command": argv[0], "output": " | ".join(out[-2:])}


def writable_now(node: Member) -> bool:
    """A new session on `node` may write; False while it refuses connections (on its way up or down)."""
    try:
        return node.writable()
    except Exception:
        return False


def wait_promoted(node: Member, timeout: float, give_up: Callable[[], None] = lambda: None) -> float:
    """Block until `node` leaves recovery; seconds waited. One session polled every 5 ms (a session
    survives its server's promotion), so the moment is not blurred by connecting on every poll.
    `give_up` may raise to end the wait early (the request that promotes it failed)."""
    import psycopg

    t0 = time.monotonic()
    dsn = node.node.dsn.resolve().get_secret_value()
    conn: psycopg.Connection[Any] | None = None
    try:
        while True:
            try:
                if conn is None:
                    conn = psycopg.connect(dsn, autocommit=True, connect_timeout=2, application_name="sre-drill")
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and not row[0]:
                    return time.monotonic() - t0
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
            give_up()
            if time.monotonic() - t0 > timeout:
                raise HaError(f"{node.name} is still in recovery {timeout:.0f}s later")
            time.sleep(0.005)
    finally:
        if conn is not None:
            conn.close()
