"""Alertmanager's v2 API, the few calls the service needs: alerts (silenced ones included) and silences.

A thin `httpx` wrapper like the Prometheus one: no retries (a silence must not be created twice
by a retry of a request that did reach the server), a timeout from config, `UnreachableError`
(exit 2) when nothing answers and `AlertmanagerError` (exit 1) when Alertmanager refuses, with
its words. Times go out as RFC 3339 UTC with milliseconds, as Alertmanager writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from sre.errors import SreError, UnreachableError, UsageError

if TYPE_CHECKING:
    from sre.config import SreConfig


class AlertmanagerError(SreError):
    """Alertmanager answered, and refused (a bad silence, an unknown id)."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    """Alertmanager's times ('2024-05-01T10:00:00.123456789Z'); None for its zero time or nothing.
    Python 3.11 reads RFC 3339 with 'Z' and truncates nanoseconds to microseconds."""
    if not text or text.startswith("0001-"):
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    regex: bool = False
    equal: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "isRegex": self.regex, "isEqual": self.equal}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Matcher:
        return cls(str(d["name"]), str(d["value"]), bool(d.get("isRegex")), bool(d.get("isEqual", True)))

    def __str__(self) -> str:
        op = ("=~" if self.regex else "=") if self.equal else ("!~" if self.regex else "!=")
        return f'{self.name}{op}"{self.value}"'


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime | None
    ends_at: datetime | None
    created_by: str
    comment: str
    state: str  # active | pending | expired

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Silence:
        return cls(str(d["id"]), tuple(Matcher.from_dict(m) for m in d.get("matchers") or []),
                   parse_time(d.get("startsAt")), parse_time(d.get("endsAt")), str(d.get("createdBy") or ""),
                   str(d.get("comment") or ""), str((d.get("status") or {}).get("state") or ""))

    def matcher(self, name: str) -> Matcher | None:
        return next((m for m in self.matchers if m.name == name), None)


class AlertmanagerClient:
    def __init__(self, url: str, timeout: float = 10.0, *, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = client or httpx.Client(base_url=self.url, timeout=timeout)

    @classmethod
    def from_config(cls, config: SreConfig) -> AlertmanagerClient:
        ep = config.endpoints.alertmanager
        if ep is None:
            raise UsageError("endpoints.alertmanager is not set in the configuration",
                             hint="add endpoints: {alertmanager: {url: http://alertmanager:9093}} to sre.yaml")
        return cls(ep.url, min(ep.timeout, 10.0))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AlertmanagerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"Alertmanager at {self.url} is unreachable: {exc.__class__.__name__}") from None

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._request(method, path, **kwargs)
        if resp.status_code != 200:
            raise AlertmanagerError(f"Alertmanager {path}: {resp.status_code} {resp.text.strip()[:300]}",
                                    resp.status_code)
        try:
            return resp.json()
        except ValueError:
            raise AlertmanagerError(f"Alertmanager {path}: not JSON: {resp.text.strip()[:200]}") from None

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert Alertmanager holds that has not resolved: active, silenced and inhibited alike."""
        params = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}
        return list(self._json("GET", "/api/v2/alerts", params=params) or [])

    def silences(self) -> list[Silence]:
        return [Silence.from_dict(d) for d in self._json("GET", "/api/v2/silences") or []]

    def create_silence(self, matchers: list[Matcher], starts_at: datetime, ends_at: datetime, created_by: str,
                       comment: str) -> str:
        body = {"matchers": [m.to_dict() for m in matchers], "startsAt": rfc3339(starts_at),
                "endsAt": rfc3339(ends_at), "createdBy": created_by, "comment": comment}
        return str(self._json("POST", "/api/v2/silences", json=body)["silenceID"])

    def expire_silence(self, silence_id: str) -> bool:
        """Expire a silence; True when expired now, False when it was gone or had already expired."""
        resp = self._request("DELETE", f"/api/v2/silence/{silence_id}")
        if resp.status_code == 200:
            return True
        if resp.status_code in (404, 500) and ("not found" in resp.text or "already expired" in resp.text):
            return False
        raise AlertmanagerError(f"Alertmanager refused to expire silence {silence_id}: {resp.status_code} "
                                f"{resp.text.strip()[:200]}", resp.status_code)

    def push(self, alerts: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts: what `amtool alert add` does (tests, and alerts from outside Prometheus)."""
        resp = self._request("POST", "/api/v2/alerts", json=alerts)
        if resp.status_code != 200:
            raise AlertmanagerError(f"Alertmanager refused the alerts: {resp.status_code} {resp.text.strip()[:200]}",
                                    resp.status_code)
