"""The application simulator's exposition and control, without a server."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sre.sandbox.appsim import BUCKETS, Simulator


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_api_histogram_has_prom_client_shape_and_follows_the_control() -> None:
    clock = Clock()
    sim = Simulator(clock=clock)
    sim.update({"api": {"request_rate": 30, "latency_seconds": 0.3, "status_ratios": {"500": 0.2}}})
    clock.now = 10.0
    samples = _samples(sim.api_metrics())
    counts = {dict(k[1])["status_code"]: v for k, v in samples.items() if k[0] == "http_request_duration_seconds_count"
              and dict(k[1])["route"] == "/messages"}
    assert counts == {"200": 80, "500": 20, "401": 0, "429": 0}  # codes the rules select on exist at 0
    labels = dict(next(k[1] for k in samples if k[0] == "http_request_duration_seconds_bucket"))
    assert set(labels) == {"le", "method", "route", "status_code"}
    les = sorted({float(dict(k[1])["le"]) for k in samples if k[0] == "http_request_duration_seconds_bucket"})
    assert les == [*BUCKETS, float("inf")]
    key = ("http_request_duration_seconds_bucket",
           tuple(sorted({"le": "0.25", "method": "POST", "route": "/messages", "status_code": "500"}.items())))
    assert samples[key] == 0  # 0.3 s is above the 0.25 bucket
    assert samples[(key[0], tuple(sorted({**dict(key[1]), "le": "0.5"}.items())))] == 20


def test_gateway_churn_counts_server_side_disconnects_only_from_when_it_is_set() -> None:
    clock = Clock()
    sim = Simulator(clock=clock)
    clock.now = 5.0
    sim.update({"gateway": {"churn_rate": 10, "connections": 400}})
    clock.now = 7.0
    samples = _samples(sim.gateway_metrics())
    assert samples[("ws_disconnects_total", (("reason", "ping_timeout"),))] == 20
    assert samples[("ws_disconnects_total", (("reason", "client_close"),))] == 7
    assert samples[("ws_connections_open", ())] == 400


@pytest.mark.parametrize("change", [{"nope": {}}, {"api": {"latency": 1}}, {"api": {"request_rate": -1}},
                                    {"api": {"status_ratios": {"500": 0.7, "503": 0.7}}},
                                    {"api": {"status_ratios": {"5xx": 0.1}}}, {"tls": {"cert_days": 0}}])
def test_a_bad_setting_is_refused_and_changes_nothing(change: dict[str, object]) -> None:
    sim = Simulator()
    before = sim.get()
    with pytest.raises(ValueError):
        sim.update(change)
    assert sim.get() == before
