"""Scheduled-job slots: which interval or cron slot each job last ran, so replicas never run one twice.

One row per job. A claim moves `slot_ms` forward only (a conditional upsert), so a slot is
claimed once in total, whichever replica asks, and never after a later slot. With a PostgreSQL
store the leader claims through the connection that holds the leader lock: a leader whose
connection is gone cannot claim at all.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sre.store.base import Base, UtcDateTime, utcnow


class JobSlot(Base):
    __tablename__ = "job_slots"

    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    slot_ms: Mapped[int] = mapped_column(BigInteger)  # start of the slot, ms since the epoch (UTC)
    holder: Mapped[str] = mapped_column(String(200))  # the replica that claimed it
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# ON CONFLICT ... DO UPDATE ... WHERE: PostgreSQL 9.5+, SQLite 3.24+. Zero rows changed = not claimed.
CLAIM_SQL = text(
    "INSERT INTO job_slots (job, slot_ms, holder, claimed_at) VALUES (:job, :slot_ms, :holder, :claimed_at) "
    "ON CONFLICT (job) DO UPDATE SET slot_ms = excluded.slot_ms, holder = excluded.holder, "
    "claimed_at = excluded.claimed_at WHERE job_slots.slot_ms < excluded.slot_ms"
)
