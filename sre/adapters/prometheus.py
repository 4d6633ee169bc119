"""Prometheus's HTTP API, the few calls the service needs: reload, rules, series, instant queries.

A thin `httpx` wrapper: no retries (the callers decide; a reload must not be sent twice), a
timeout from config, and one clear error per failure: `UnreachableError` (exit 2) when nothing
answers, `PrometheusError` (exit 1) when Prometheus answers with a refusal, carrying its words.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx

from sre.errors import SreError, UnreachableError, UsageError

if TYPE_CHECKING:
    from sre.config import SreConfig


class PrometheusError(SreError):
    """Prometheus answered, and refused (a failed reload, a bad query)."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PrometheusClient:
    def __init__(self, url: str, timeout: float = 10.0, *, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.requests = 0  # made so far, for plans and benchmarks
        self._http = client or httpx.Client(base_url=self.url, timeout=timeout)

    @classmethod
    def from_config(cls, config: SreConfig) -> PrometheusClient:
        ep = config.endpoints.prometheus
        if ep is None:
            raise UsageError("endpoints.prometheus is not set in the configuration",
                             hint="add endpoints: {prometheus: {url: http://prometheus:9090}} to sre.yaml")
        return cls(ep.url, ep.timeout)

    def close(self) -> None:
        self._http.close()

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

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's vector result (a scalar comes back as one sample without labels)."""
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._api("POST", "/api/v1/query", data=params)
        result = data.get("result")
        if data.get("resultType") == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result or [])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query's matrix: per series, `metric` and `values` ([ts, "value"] pairs)."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:.3f}"}
        data = self._api("POST", "/api/v1/query_range", data=params)
        return list(data.get("result") or [])

    def alerts(self) -> list[dict[str, Any]]:
        data = self._api("GET", "/api/v1/alerts")
        return list(data.get("alerts") or [])
