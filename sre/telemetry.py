"""The service's own telemetry: prometheus-client metrics and logging.

Logs are ECS JSON lines (ecs-logging) when stderr is not a TTY, so a shipper needs no parsing
(the `logs-sre-*` template maps these fields), and readable lines on a TTY. Metrics live on the
default prometheus-client registry; each domain module declares the metrics it owns.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from sre.redaction import redact, register

JOB_RUNS = Counter("sre_job_runs_total", "Scheduled or manual job runs by outcome.", ["job", "status"])
JOB_DURATION = Histogram(
    "sre_job_duration_seconds", "Wall time of job runs.", ["job"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
JOB_LAST_SUCCESS = Gauge(
    "sre_job_last_success_timestamp_seconds", "Unix time of the last successful run of each job.", ["job"]
)
SCHEDULER_RUNNING = Gauge("sre_scheduler_running", "1 while this process runs the scheduler (holds leadership).")
BUILD_INFO = Gauge("sre_build_info", "Always 1; labels carry the version.", ["version"])

SERVICE_NAME = "sre"
_configured = False


class _Redacting(logging.Formatter):
    """Masks registered secrets in the finished line: message, exception text, traceback and
    `extra=` fields alike (a filter sees only the message; a secret in an exception got through)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def register_secret(value: str) -> None:
    """Values registered here are masked in every log line (`SecretRef.resolve` registers each)."""
    register(value)


def setup_logging(level: str | int | None = None, json_lines: bool | None = None) -> None:
    """Configure the root logger once: ECS JSON off a TTY, plain lines on one."""
    global _configured
    level = level or os.environ.get("SRE_LOG_LEVEL", "INFO")
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    inner: logging.Formatter
    if json_lines:
        import ecs_logging

        inner = ecs_logging.StdlibFormatter(
            exclude_fields=["process", "log.original"],
            extra={"service": {"name": SERVICE_NAME, "type": "sre"}, "event": {"dataset": "sre"}},
        )
    else:
        inner = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    handler.setFormatter(_Redacting(inner))
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_sre", False):
            root.removeHandler(h)
    handler._sre = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "apscheduler", "botocore", "urllib3", "kubernetes", "elastic_transport", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def log_fields(**fields: Any) -> dict[str, Any]:
    """`extra=` for structured fields: sre.* in ECS output (mapped by elk's logs-sre template)."""
    return {"sre": {k: v for k, v in fields.items() if v is not None}}
