"""One drill at a time: a row in the state store, shared by every process and replica using it.

The row is a lease: it names its holder (drill, host, pid) and expires unless the running drill
refreshes it (each step does). A holder that died is recognised at once when it ran on this host
(its pid is gone), otherwise when its lease expires, so a crashed drill never blocks the next
one for good, and two live drills never run together.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from sre.errors import CheckFailed
from sre.local.procs import pid_alive
from sre.store.base import utcnow
from sre.store.drills import DrillLock

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sre.store import Store

SCOPE = "failover"
LEASE = timedelta(minutes=15)


class DrillBusy(CheckFailed):
    """Another drill holds the lock."""



@dataclass
class Lease:
    store: Store
    drill_id: int
    scope: str = SCOPE

    def refresh(self) -> None:
        with self.store.session() as s:
            s.execute(update(DrillLock).where(DrillLock.scope == self.scope, DrillLock.drill_id == self.drill_id)
                      .values(expires=utcnow() + LEASE))

    def release(self) -> None:
        with self.store.session() as s:
            s.execute(delete(DrillLock).where(DrillLock.scope == self.scope, DrillLock.drill_id == self.drill_id))


def _stale(row: DrillLock, now: datetime) -> bool:
    if row.expires <= now:
        return True
    return row.host == socket.gethostname() and not pid_alive(row.pid)


def acquire(store: Store, drill_id: int, scope: str = SCOPE) -> Lease:
    """Take the lock for `drill_id` or raise DrillBusy naming the drill that holds it."""
    host, pid = socket.gethostname(), os.getpid()
    for _ in range(3):
        now = utcnow()
        try:
            with store.session() as s:
                s.add(DrillLock(scope=scope, drill_id=drill_id, host=host, pid=pid, acquired=now, expires=now + LEASE))
            return Lease(store, drill_id, scope)
        except IntegrityError:
            pass
        with store.session() as s:
            row = s.scalar(select(DrillLock).where(DrillLock.scope == scope))
            if row is None:
                continue  # released between our insert and this read: try again
            if not _stale(row, now):
                raise DrillBusy(
                    f"refused: drill {row.drill_id} is running (since {row.acquired:%Y-%m-%d %H:%M:%S} UTC, "
                    f"host {row.host}, pid {row.pid}); one drill at a time",
                    hint=f"wait for it, or see `sre drill show {row.drill_id}`")
            # Remove exactly the stale row we saw; a racing taker that removed it first wins.
            s.execute(delete(DrillLock).where(DrillLock.scope == scope, DrillLock.drill_id == row.drill_id,
                                              DrillLock.acquired == row.acquired))
    raise DrillBusy("refused: could not take the drill lock (another drill is starting)")


def holder(store: Store, scope: str = SCOPE) -> int | None:
    with store.session() as s:
        return holder_in(s, scope)


def holder_in(s: Session, scope: str = SCOPE) -> int | None:
    """The drill holding the lock, read in the caller's session (remediation's drill guard)."""
    row = s.scalar(select(DrillLock).where(DrillLock.scope == scope))
    return row.drill_id if row is not None and not _stale(row, utcnow()) else None
