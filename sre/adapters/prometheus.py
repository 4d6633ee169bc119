"""Prometheus's HTTP API, the one door to it: reload, rules, series, alerts, and PromQL queries.

Queries (instant and range: SLO status, drills, remediation verification and graphs) go through
prometheus-api-client, the project's PromQL client, on a `requests` session this class owns
(TLS verified, closed by `close()`); the lifecycle and metadata calls it lacks go through `httpx`.
No retries unless the caller asks (`retries=`: idempotent queries only; a reload must never be
sent twice), a timeout from config, and one clear error per failure: `UnreachableError` (exit 2)
when nothing answers, `PrometheusError` (exit 1) when Prometheus answers with a refusal,
carrying its words.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from sre.errors import SreError, UnreachableError, UsageError

if TYPE_CHECKING:
    import requests
    from prometheus_api_client import PrometheusConnect

    from sre.config import SreConfig


class PrometheusError(SreError):
    """Prometheus answered, and refused (a failed reload, a bad query)."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PrometheusClient:
    def __init__(self, url: str, timeout: float = 10.0, *, client: httpx.Client | None = None,
                 retries: int = 0) -> None:
        self.url = url.rstrip("/")
        self.requests = 0  # made so far, for plans and benchmarks
        self.timeout, self.retries = timeout, retries
        self._http = client or httpx.Client(base_url=self.url, timeout=timeout)
        self._session: requests.Session | None = None
        self._promql: PrometheusConnect | None = None

    @classmethod
    def from_config(cls, config: SreConfig, *, retries: int = 0) -> PrometheusClient:
        ep = config.endpoints.prometheus
        if ep is None:
            raise UsageError("endpoints.prometheus is not set in the configuration",
                             hint="add endpoints: {prometheus: {url: http://prometheus:9090}} to sre.yaml")
        return cls(ep.url, ep.timeout, retries=retries)

    def close(self) -> None:
        self._http.close()
        if self._session is not None:
            self._session.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transport

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.requests += 1
        try:
            return self._http.request(method, path, **kwargs)
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise UnreachableError(f"Prometheus at {self.url} is unreachable: {exc or exc.__class__.__name__}") \
                from None

    def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._request(method, path, **kwargs)
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
            err = body.get("error") if isinstance(body, dict) else None
            raise PrometheusError(f"Prometheus {path}: {resp.status_code} {err or resp.text.strip()[:300]}",
                                  resp.status_code)
        return body.get("data")

    # ------------------------------------------------------------ calls

    def ready(self) -> bool:
        try:
            return self._request("GET", "/-/ready").status_code == 200
        except UnreachableError:
            return False

    def reload(self) -> None:
        """POST /-/reload; PrometheusError with Prometheus's reason if it refuses the new config."""
        resp = self._request("POST", "/-/reload")
        if resp.status_code == 200:
            return
        if resp.status_code == 403:
            raise PrometheusError("Prometheus refused /-/reload: the lifecycle API is off "
                                  "(start it with --web.enable-lifecycle)", 403)
        raise PrometheusError(f"Prometheus refused the reload: {resp.text.strip() or resp.status_code}",
                              resp.status_code)

    def rule_groups(self) -> list[dict[str, Any]]:
        data = self._api("GET", "/api/v1/rules")
        return list(data.get("groups") or [])

    def series(self, match: list[str], *, start: float | None = None, end: float | None = None) -> list[dict[str, str]]:
        """Series matching any of `match` between start and end (default: the last hour)."""
        end = time.time() if end is None else end
        start = end - 3600 if start is None else start
        params = [("match[]", m) for m in match] + [("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
        return list(self._api("GET", "/api/v1/series", params=params) or [])

    # ------------------------------------------------------------ PromQL, through prometheus-api-client

    def _connect(self) -> PrometheusConnect:
        if self._promql is None:
            import requests
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            self._session = requests.Session()  # verify=True: requests checks the server's certificate
            # Queries are reads: retried (when asked) on a gateway's 502-504, never on a refusal.
            retry = Retry(total=self.retries, connect=self.retries, read=self.retries, status=self.retries,
                          backoff_factor=0.2, status_forcelist=[502, 503, 504], allowed_methods=["GET"],
                          raise_on_status=False)
            self._promql = PrometheusConnect(url=self.url, session=self._session, retry=retry,
                                             timeout=max(1, round(self.timeout)))
        return self._promql

    def _promql_call(self, what: str, call: Any) -> Any:
        from prometheus_api_client import PrometheusApiClientException
        from requests import RequestException

        self.requests += 1
        try:
            return call(self._connect())
        except PrometheusApiClientException as exc:
            raise PrometheusError(f"Prometheus refused the {what}: {str(exc)[:300]}") from None
        except RequestException as exc:
            raise UnreachableError(f"Prometheus at {self.url} is unreachable: {exc.__class__.__name__}") from None

    def instant(self, expr: str, at: float | None = None) -> float | list[dict[str, Any]]:
        """An instant query's result as Prometheus types it: a scalar's value, else the vector's samples."""
        params = {"time": f"{at:.3f}"} if at is not None else None
        result: Any = self._promql_call("query", lambda prom: prom.custom_query(expr, params=params))
        if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
            return float(result[1])  # a scalar: [time, "value"]
        return list(result or [])

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's vector result (a scalar comes back as one sample without labels)."""
        result = self.instant(expr, at)
        if isinstance(result, float):
            return [{"metric": {}, "value": [at if at is not None else time.time(), str(result)]}]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query's matrix: per series, `metric` and `values` ([ts, "value"] pairs)."""
        def call(prom: PrometheusConnect) -> Any:
            return prom.custom_query_range(expr, start_time=datetime.fromtimestamp(start, UTC),
                                           end_time=datetime.fromtimestamp(end, UTC), step=f"{step:.3f}")

        return list(self._promql_call("range query", call) or [])

    def alerts(self) -> list[dict[str, Any]]:
        data = self._api("GET", "/api/v1/alerts")
        return list(data.get("alerts") or [])
