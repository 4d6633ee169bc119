"""The Prometheus adapter's query path (prometheus-api-client on the adapter's own requests
session), fast, with `responses` in place of the server: refusals, gateway errors, timeouts."""

from __future__ import annotations

import pytest
import requests
import responses

from sre.adapters.prometheus import PrometheusClient, PrometheusError
from sre.errors import UnreachableError

URL = "https://prometheus.test"
QUERY = f"{URL}/api/v1/query"


def ok(result: object, kind: str = "vector") -> dict[str, object]:
    return {"status": "success", "data": {"resultType": kind, "result": result}}


@responses.activate
def test_vectors_and_scalars_and_the_session_verifies_tls() -> None:
    responses.get(QUERY, json=ok([{"metric": {"job": "api"}, "value": [1.0, "1"]}]))
    responses.get(QUERY, json=ok([1.0, "0"], "scalar"))
    with PrometheusClient(URL) as prom:
        assert prom.query("up")[0]["metric"] == {"job": "api"}
        assert prom.instant("vector(0) > 1 or on() vector(0)") == 0.0
        assert prom._session is not None and prom._session.verify is True
    assert [c.request.params["query"] for c in responses.calls] == ["up", "vector(0) > 1 or on() vector(0)"]


@responses.activate
def test_a_refused_query_is_one_prometheus_error_never_retried() -> None:
    responses.get(QUERY, status=400, json={"status": "error", "errorType": "bad_data", "error": "parse error"})
    with PrometheusClient(URL, retries=2) as prom, pytest.raises(PrometheusError, match=r"refused the query.*400"):
        prom.query("sum(")
    assert len(responses.calls) == 1


@responses.activate
def test_gateway_errors_are_retried_when_asked_then_reported() -> None:
    responses.get(QUERY, status=502)
    with PrometheusClient(URL, retries=2) as prom, pytest.raises(PrometheusError, match="502"):
        prom.query("up")
    assert len(responses.calls) == 3
    responses.reset()
    responses.get(QUERY, status=503)
    responses.get(QUERY, json=ok([]))
    with PrometheusClient(URL, retries=1) as prom:
        assert prom.query("up") == []
    assert len(responses.calls) == 2


@responses.activate
def test_a_timeout_is_unreachable() -> None:
    responses.get(QUERY, body=requests.exceptions.ReadTimeout("read timed out"))
    with PrometheusClient(URL) as prom, pytest.raises(UnreachableError, match="unreachable: ReadTimeout"):
        prom.query("up")
