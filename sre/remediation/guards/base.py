"""The guard interface: a Proposal in, None or the reason to stop out (see sre.remediation.guards)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sre.config import SreConfig
    from sre.remediation.actions import Action
    from sre.remediation.runbook import Guards


@dataclass(frozen=True)
class Proposal:
    """One action the engine is about to take, as every guard sees it."""

    cfg: SreConfig
    alertname: str
    labels: dict[str, str]
    action: Action
    params: Any
    target: str
    guards: Guards
    dry: bool  # a dry run: counted only against other dry runs
    now: datetime

    @property
    def scope(self) -> dict[str, str]:
        return self.action.scope(self.params)


class Guard:
    name: ClassVar[str]

    def check(self, s: Session, p: Proposal) -> str | None:
        """Why the action must not run now, or None."""
        raise NotImplementedError
