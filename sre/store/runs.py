"""Job runs and check results: every job run is a row; every CheckResult is a row under it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sre.store.base import Base, JsonDoc, UtcDateTime, utcnow


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str | None] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(20), default="manual")  # schedule | manual | api
    started: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20), default="running")  # running|ok|warn|fail|error|interrupted
    summary: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    host: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_runs_kind_started", "kind", "started"),)


class CheckRow(Base):
    __tablename__ = "check_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    check: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(10))
    observed: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    message: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index("ix_check_results_check_target_at", "check", "target", "at"),)
