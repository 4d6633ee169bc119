"""Maintenance windows: while one is open, remediation in its scope is paused (guard `paused`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sre.store.base import Base, UtcDateTime, utcnow
from sre.store.remediation import SHORT_TEXT_LEN


class MaintenanceWindow(Base):
    """A pause of remediation from starts_at to ends_at (or until resumed), for everything or one scope."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(SHORT_TEXT_LEN), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    # all | namespace | alert | cluster; value empty for all
    scope_kind: Mapped[str] = mapped_column(String(20), default="all")
    scope_value: Mapped[str] = mapped_column(String(SHORT_TEXT_LEN), default="")
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set when a person resumes before ends_at.
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(SHORT_TEXT_LEN))

    __table_args__ = (Index("ix_maintenance_windows_ends_at", "ends_at"),)
