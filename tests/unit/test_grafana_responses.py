"""The Grafana adapter's error paths, fast, with `responses` in place of the HTTP server: 429 with
Retry-After, runs of 5xx, timeouts. `responses` drives the session's urllib3 Retry (is_retry and
increment) without sleeping; the waits themselves are covered against the fake Grafana
(tests/integration/test_grafana.py)."""

from __future__ import annotations

import pytest
import requests
import responses

from sre.adapters.grafana import Grafana, GrafanaError, RetryPolicy
from sre.errors import UnreachableError

URL = "http://grafana.test"


def grafana(attempts: int = 3) -> Grafana:
    return Grafana(URL, token="t0ken", retry=RetryPolicy(attempts=attempts, base=0.01))


@responses.activate
def test_a_429_with_retry_after_is_retried_and_counted() -> None:
    responses.get(f"{URL}/api/search", status=429, headers={"Retry-After": "1"}, json={"message": "slow down"})
    responses.get(f"{URL}/api/search", json=[])
    g = grafana()
    assert list(g.search_pages()) == [[]]
    assert [c.response.status_code for c in responses.calls] == [429, 200]
    assert g.requests.count == 2


@responses.activate
def test_a_run_of_5xx_on_a_read_ends_in_one_clear_error() -> None:
    responses.get(f"{URL}/api/search", status=502, json={"message": "bad gateway"})
    g = grafana(attempts=3)
    with pytest.raises(UnreachableError, match=r"search still failing after 3 tries \(502 bad gateway\)"):
        list(g.search_pages())
    assert len(responses.calls) == 3 and g.requests.count == 3


@responses.activate
def test_a_post_is_retried_on_429_and_never_on_5xx() -> None:
    responses.post(f"{URL}/api/folders", status=429, json={"message": "Too Many Requests"})
    responses.post(f"{URL}/api/folders", json={"uid": "a", "title": "A"})
    assert grafana().create_folder("a", "A")["uid"] == "a"
    assert len(responses.calls) == 2

    responses.reset()
    responses.post(f"{URL}/api/folders", status=503, json={"message": "Service Unavailable"})
    with pytest.raises(GrafanaError, match="create folder b: 503 Service Unavailable"):
        grafana().create_folder("b", "B")
    assert len(responses.calls) == 1, "a POST that may have been done is never sent twice"


@responses.activate
def test_a_post_whose_answer_timed_out_is_not_sent_again() -> None:
    responses.post(f"{URL}/api/folders", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(UnreachableError, match="did not answer: ReadTimeout"):
        grafana().create_folder("c", "C")
    assert len(responses.calls) == 1


@responses.activate
def test_401_is_not_retried() -> None:
    responses.get(f"{URL}/api/search", status=401, json={"message": "invalid API key"})
    with pytest.raises(UnreachableError, match="refused the credentials"):
        list(grafana().search_pages())
    assert len(responses.calls) == 1
