"""Metrics of the webhook receiver and of remediation (default registry, scraped at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

WEBHOOK_ALERTS = Counter(
    "sre_webhook_alerts_total",
    "Alerts received by the webhook: firing/resolved stored in the inbox, failed (storing failed, "
    "Alertmanager retries), truncated (dropped by Alertmanager's max_alerts before sending).",
    ["status"],
)
WEBHOOK_DURATION = Histogram(
    "sre_webhook_request_duration_seconds",
    "Time to answer a webhook request, by HTTP status code.",
    ["code"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REMEDIATIONS = Counter(
    "sre_remediations_total",
    "Remediation decisions by action and outcome (executed, dry_run, skipped, refused, failed, escalated, "
    "duplicate, verified, verify_failed).",
    ["action", "outcome"],
)
BREAKER_OPEN = Gauge(
    "sre_remediation_breaker_open",
    "1 while the remediation circuit breaker is open (every alert escalates until a person resets it).",
)

# Bound children: labels() costs a dict lookup and a lock on every call, the webhook path calls these a lot.
ALERTS_FIRING = WEBHOOK_ALERTS.labels("firing")
ALERTS_RESOLVED = WEBHOOK_ALERTS.labels("resolved")
ALERTS_FAILED = WEBHOOK_ALERTS.labels("failed")
ALERTS_TRUNCATED = WEBHOOK_ALERTS.labels("truncated")
DURATION_BY_CODE = {code: WEBHOOK_DURATION.labels(str(code)) for code in (200, 401, 413, 422, 503)}
PAUSED = Gauge(
    "sre_remediation_paused",
    "1 for each scope with an open maintenance window (all, namespace=X, alert=NAME, cluster=C): remediation "
    "there is paused.",
    ["scope"],
)
