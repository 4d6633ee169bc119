"""Verification: does the runbook's PromQL hold now? Asked through prometheus-api-client.

A query holds when it returns at least one sample (written like an alert expression, but for the
healthy condition: `max(memory) < 0.9` returns a sample once memory is below 90%); a scalar holds
when it is not zero. The worker polls until it holds or the runbook's window ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_api_client import PrometheusConnect

    from sre.config import SreConfig

QUERY_TIMEOUT = 10


class VerifyError(Exception):
    """Prometheus could not answer the query (unreachable, or refused it)."""


@contextmanager
def prometheus(cfg: SreConfig, *, retries: int | None = None) -> Iterator[PrometheusConnect]:
    """A prometheus-api-client connection (its own retries unless `retries` is given); its refusals
    and outages raised as `VerifyError`."""
    from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
    from requests import RequestException
    from urllib3.util.retry import Retry

    ep = cfg.endpoints.prometheus
    if ep is None:
        raise VerifyError("no Prometheus configured (endpoints.prometheus)")
    kwargs: dict[str, Any] = {}
    if retries is not None:
        kwargs["retry"] = Retry(total=retries, backoff_factor=0.2, status_forcelist=[502, 503, 504],
                                allowed_methods=["GET"])
    prom = PrometheusConnect(url=ep.url, disable_ssl=True, timeout=int(min(ep.timeout, QUERY_TIMEOUT)), **kwargs)
    try:
        yield prom
    except PrometheusApiClientException as exc:
        raise VerifyError(f"Prometheus refused the query: {str(exc)[:300]}") from None
    except RequestException as exc:
        raise VerifyError(f"Prometheus at {ep.url} is unreachable: {exc.__class__.__name__}") from None
    finally:
        prom._session.close()


def holds(cfg: SreConfig, query: str) -> bool:
    # One quick retry: the worker polls again soon anyway, and must not stall on a down Prometheus.
    with prometheus(cfg, retries=1) as prom:
        result: Any = prom.custom_query(query)
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return float(result[1]) != 0.0  # a scalar: [time, "value"]
    return bool(result)


def poll_interval(window: float) -> float:
    """Ten looks per window, between 0.2 s (short test windows) and 15 s."""
    return max(0.2, min(15.0, window / 10))
