"""Drill reports and the one-drill-at-a-time lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sre.store.base import Base, JsonDoc, UtcDateTime, utcnow


class DrillReport(Base):
    """One drill: a row from the moment it starts (status running), completed with its report."""

    __tablename__ = "drill_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(50), default="failover")
    cluster: Mapped[str] = mapped_column(String(100))
    from_region: Mapped[str] = mapped_column(String(50))
    to_region: Mapped[str] = mapped_column(String(50))
    mode: Mapped[str] = mapped_column(String(20))  # planned | unplanned
    failback: Mapped[bool] = mapped_column(Boolean, default=False)
    environment: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(20), default="manual")  # manual | schedule | api
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(200))
    host: Mapped[str | None] = mapped_column(String(200))
    # running | passed | failed (objective missed) | aborted (undone) | refused (preflight, lock)
    status: Mapped[str] = mapped_column(String(20), default="running")
    started: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished: Mapped[datetime | None] = mapped_column(UtcDateTime)
    rto_seconds: Mapped[float | None] = mapped_column(Float)
    rpo_rows: Mapped[int | None] = mapped_column(Integer)
    rpo_bytes: Mapped[int | None] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    markdown: Mapped[str] = mapped_column(Text, default="")
    png: Mapped[bytes | None] = mapped_column(LargeBinary)
    report_dir: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_drill_reports_cluster_started", "cluster", "started"),)


class DrillLock(Base):
    """At most one row per scope: holding it is the right to run a drill there."""

    __tablename__ = "drill_locks"

    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    drill_id: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    acquired: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires: Mapped[datetime] = mapped_column(UtcDateTime)
