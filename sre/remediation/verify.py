"""Verification: does the runbook's PromQL hold now? Asked through the Prometheus adapter (prometheus-api-client).

A query holds when it returns at least one sample (written like an alert expression, but for the
healthy condition: `max(memory) < 0.9` returns a sample once memory is below 90%); a scalar holds
when it is not zero. The worker polls until it holds or the runbook's window ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sre.adapters.prometheus import PrometheusClient
from sre.errors import SreError

if TYPE_CHECKING:
    from sre.config import SreConfig


class VerifyError(Exception):
    """Prometheus could not answer the query (unreachable, or refused it)."""


def holds(cfg: SreConfig, query: str) -> bool:
    """Whether the query returns a sample (a scalar: not zero), asked through the Prometheus adapter."""
    if cfg.endpoints.prometheus is None:
        raise VerifyError("no Prometheus configured (endpoints.prometheus)")
    # One quick retry: the worker polls again soon anyway, and must not stall on a down Prometheus.
    with PrometheusClient.from_config(cfg, retries=1) as prom:
        try:
            result = prom.instant(query)
        except SreError as exc:
            raise VerifyError(str(exc)) from None
    if isinstance(result, float):
        return result != 0.0
    return bool(result)


def poll_interval(window: float) -> float:
    """Ten looks per window, between 0.2 s (short test windows) and 15 s."""
    return max(0.2, min(15.0, window / 10))
