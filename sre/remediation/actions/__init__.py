"""Remediation actions: each a parameter schema, a dry-run description and an execution through an adapter.

An action never decides whether it should run (the guards do, before it is called); it checks
only what makes its own request safe (a pod owned by a controller, a replica count within bounds,
never the service's own database connections) and refuses with `ActionRefused` otherwise.
Actions are named here by import path, so the registry costs nothing to import.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.store import Store


class ActionError(Exception):
    """The action was attempted and failed: the remediation fails and escalates."""


class ActionRefused(ActionError):
    """The action saw that its request would be unsafe and did not send it."""


class Params(BaseModel):
    """Base of every action's parameters: the runbook's rendered target and params, merged."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class ActionContext:
    cfg: SreConfig
    remediation_id: int
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    # How long the alert stays silenced (action plus verification window), for alertmanager.silence.
    silence_seconds: float = 3600.0
    # The state store, for actions that record what they run (job.run).
    store: Store | None = None


class Action:
    name: ClassVar[str]
    params_model: ClassVar[type[Params]]
    # Kubernetes actions run as dry runs when no cluster is configured (the sandbox has none).
    kubernetes: ClassVar[bool] = False
    # The target is the alert itself (notify, silence): the engine keys it by alert name and fingerprint.
    per_alert: ClassVar[bool] = False

    def parse(self, values: dict[str, Any]) -> Params:
        return self.params_model.model_validate(values)

    def target(self, p: Any) -> str:
        """The thing acted on, as one key: cooldown, daily cap and lock are per target."""
        raise NotImplementedError

    def scope(self, p: Any) -> dict[str, str]:
        """What the allowlist guards check: namespace (Kubernetes) or cluster (PostgreSQL)."""
        return {}

    def check_target(self, p: Any, cfg: SreConfig) -> str | None:
        """Why the target is not one this service knows (the inventory), or None. Asked before
        any guard: an alert naming an unknown target is refused, never a failed action."""
        return None

    def describe(self, p: Any) -> str:
        """What the action would do, in one line: the dry-run result."""
        raise NotImplementedError

    def run(self, p: Any, ctx: ActionContext) -> dict[str, Any]:
        """Do it; return what was done (stored in the audit). Raise ActionError on failure."""
        raise NotImplementedError


ACTIONS: dict[str, str] = {
    "kubernetes.rollout_restart": "sre.remediation.actions.kubernetes:RolloutRestart",
    "kubernetes.scale": "sre.remediation.actions.kubernetes:Scale",
    "kubernetes.delete_pod": "sre.remediation.actions.kubernetes:DeletePod",
    "postgres.cancel_long_queries": "sre.remediation.actions.postgres:CancelLongQueries",
    "postgres.terminate_idle_in_transaction": "sre.remediation.actions.postgres:TerminateIdleInTransaction",
    "alertmanager.silence": "sre.remediation.actions.alertmanager:Silence",
    "notify": "sre.remediation.actions.notify:Notify",
    "job.run": "sre.remediation.actions.jobs:RunJob",
    "backup.take": "sre.remediation.actions.backup:TakeBackup",
}


def get_action(name: str) -> Action:
    try:
        ref = ACTIONS[name]
    except KeyError:
        raise ActionError(f"unknown action {name!r}") from None
    module, _, cls = ref.partition(":")
    action: Action = getattr(importlib.import_module(module), cls)()
    return action
