"""Annotations waiting for Grafana: written first, sent when Grafana answers (sre.annotate)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from sre.store.base import Base, JsonDoc, UtcDateTime, utcnow
from sre.store.remediation import SHORT_TEXT_LEN


class AnnotationRow(Base):
    __tablename__ = "annotation_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))  # remediation | drill | apply | deploy
    time_ms: Mapped[int] = mapped_column(BigInteger)  # epoch milliseconds, as Grafana takes them
    time_end_ms: Mapped[int | None] = mapped_column(BigInteger)
    tags: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    text: Mapped[str] = mapped_column(Text, default="")
    # A sender claims a row before its request, so two senders never post it twice.
    claimed_by: Mapped[str | None] = mapped_column(String(SHORT_TEXT_LEN))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    grafana_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_annotation_outbox_pending", "id", sqlite_where=sql_text("sent_at IS NULL"),
              postgresql_where=sql_text("sent_at IS NULL")),
    )

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "time_ms": self.time_ms, "time_end_ms": self.time_end_ms,
                "tags": self.tags, "text": self.text, "attempts": self.attempts, "sent": self.sent_at is not None}
