"""The response models of the `/api` routes, so that /openapi.json describes what each returns.

Times are ISO 8601 strings in UTC, as the CLI prints them. Models that carry a document another
part writes (a drill report, a job's summary) keep it as an object; `extra="allow"` keeps any
field a newer writer adds rather than dropping it from the answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Tag descriptions for /openapi.json (and the docs pages when api.docs is on).
TAGS: list[dict[str, Any]] = [
    {"name": "webhook", "description": "Alertmanager's webhook: every alert is stored in the inbox before the "
                                       "answer (role `webhook`)."},
    {"name": "remediation", "description": "The alert inbox, every remediation decision with its timeline, the "
                                           "circuit breaker and maintenance windows (role `read`)."},
    {"name": "runs", "description": "Job runs (checks, reconciles, drills) with their results (role `read`)."},
    {"name": "drills", "description": "Failover drill reports: JSON, Markdown and the timeline chart (role `read`)."},
    {"name": "metrics", "description": "Prometheus exposition of the service's metrics (role `metrics`)."},
    {"name": "health", "description": "Liveness and readiness probes (no credentials)."},
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class CheckOut(_Out):
    check: str = Field(description="e.g. replication.postgres, provision.alerts")
    target: str
    status: str = Field(description="ok, warn or fail")
    observed: dict[str, Any] | None = None
    message: str | None = None
    at: str


class RunOut(_Out):
    id: int
    kind: str = Field(description="The job's name, e.g. replicas.check")
    target: str | None = None
    trigger: str = Field(description="schedule, manual, api, ...")
    status: str = Field(description="running, ok, warn, fail, error or interrupted")
    started: str | None = None
    finished: str | None = None
    summary: dict[str, Any] | None = None
    host: str | None = Field(None, description="The replica that ran it.")


class RunDetail(RunOut):
    results: list[CheckOut] = Field(default_factory=list)


class RemediationEventOut(_Out):
    at: str | None
    kind: str = Field(description="decided, silenced, executed, dry_run, failed, verified, escalated, ...")
    message: str
    data: Any = None


class RemediationOut(_Out):
    id: int
    created_at: str | None
    alertname: str
    fingerprint: str
    starts_at: str | None
    labels: dict[str, Any]
    runbook: str | None
    action: str | None
    target: Any = None
    params: Any = None
    dry_run: bool | None = None
    outcome: str = Field(description="executed, dry_run, skipped, refused, failed or escalated")
    guard: str | None = Field(None, description="The guard that stopped it, if one did.")
    reason: str | None = None
    state: str
    result: Any = None
    silence_id: str | None = None
    verify_query: str | None = None
    verify_deadline: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    verified_at: str | None = None
    resolved_at: str | None = None
    host: str | None = None
    action_seconds: float | None = None


class RemediationDetail(RemediationOut):
    events: list[RemediationEventOut] = Field(default_factory=list)


class BreakerOut(_Out):
    open: bool
    opened_at: str | None
    reason: str | None
    reset_at: str | None
    reset_by: str | None
    actions_in_window: int
    failures_in_window: int


class WindowOut(_Out):
    id: str = Field(description="A number for a stored window, config:<name> for a recurring one.")
    scope: Any
    starts_at: str
    ends_at: str
    ended_at: str | None
    reason: str | None
    created_by: str | None
    open: bool
    recurring: bool


class DrillOut(_Out):
    id: int
    kind: str
    cluster: str | None
    from_region: str | None
    to_region: str | None
    mode: str | None
    failback: bool | None
    environment: str | None
    trigger: str | None
    reason: str | None
    actor: str | None
    status: str
    started: str | None
    finished: str | None
    rto_seconds: int | float | None
    rpo_rows: int | float | None
    rpo_bytes: int | float | None


class DrillDetail(DrillOut):
    report: dict[str, Any] | None = Field(None, description="The full report once the drill finished; its "
                                                            "progress so far while it runs.")


class Healthz(BaseModel):
    status: str = Field(description="Always ok: the process answers.")
