"""Grafana's HTTP API through `grafana-client` 3.11 (requests-based; see docs/decisions/grafana-client-3.md).

The wrapper adds what the provisioning needs and the client lacks: search paging, nested folder
creation (`parentUid`), retries of 429 and 5xx with backoff that honours `Retry-After`, a count
of the requests made, and one client per thread so that applies can run a bounded number of
requests at once. Bad credentials and a server that keeps failing become `UnreachableError`
(exit 2) with one clear line; a refusal of one object (403 from folder permissions included)
is a `GrafanaError` for that object, so the rest of an apply goes on.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from sre.errors import SreError, UnreachableError
from sre.telemetry import get_logger

if TYPE_CHECKING:
    import requests
    from grafana_client import GrafanaApi

    from sre.config import GrafanaEndpoint

log = get_logger("sre.adapters.grafana")
T = TypeVar("T")

SEARCH_PAGE_MAX = 5000  # the largest `limit` Grafana's search accepts
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def _get(path: str, api: GrafanaApi) -> Any:
    return api.client.GET(path)


class GrafanaError(SreError):
    """Grafana refused one request (after retries): exit 1 for the object, the run goes on."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class GrafanaForbidden(GrafanaError):
    """403 for one object: per-folder permissions deny the account this write."""


@dataclass
class RetryPolicy:
    attempts: int = 5  # tries in all, the first included
    base: float = 0.5  # seconds before the first retry without Retry-After; doubles each time
    cap: float = 30.0  # longest single wait, Retry-After included
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        # Full jitter: concurrent workers hit by the same 429 do not come back in lockstep.
        return min(self.cap, self.base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class RequestLog:
    """Requests sent (retries included), for plans and benchmarks to report their cost."""

    count: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, method: str) -> None:
        with self.lock:
            self.count += 1
            self.by_method[method] = self.by_method.get(method, 0) + 1


class Grafana:
    """One Grafana organisation, as the endpoint config names it."""

    def __init__(self, url: str, *, token: str | None = None, basic: tuple[str, str] | None = None,
                 org_id: int | None = None, timeout: float = 10.0, retry: RetryPolicy | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UnreachableError(f"endpoints.grafana.url {url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self._parts = parts
        self._auth: Any = token if token is not None else basic
        self._org_id = org_id
        self._timeout = timeout
        self.retry = retry or RetryPolicy()
        self.requests = RequestLog()
        self._local = threading.local()

    @classmethod
    def from_config(cls, endpoint: GrafanaEndpoint | None, retry: RetryPolicy | None = None) -> Grafana:
        if endpoint is None:
            raise UnreachableError("no Grafana configured", hint="set endpoints.grafana.url (and a token) in sre.yaml")
        token = endpoint.token.resolve().get_secret_value() if endpoint.token else None
        basic = None
        if token is None and endpoint.username is not None:
            if endpoint.password is None:
                raise UnreachableError("endpoints.grafana.username needs a password: {env: ...} or {file: ...}")
            basic = (endpoint.username, endpoint.password.resolve().get_secret_value())
        return cls(endpoint.url, token=token, basic=basic, org_id=endpoint.org_id,
                   timeout=endpoint.timeout, retry=retry)

    # ------------------------------------------------------------------ client per thread

    def _api(self) -> GrafanaApi:
        api: GrafanaApi | None = getattr(self._local, "api", None)
        if api is None:
            from grafana_client import GrafanaApi

            prefix = self._parts.path.strip("/")
            api = GrafanaApi(
                auth=self._auth, host=self._parts.hostname, port=self._parts.port,
                url_path_prefix=f"{prefix}/" if prefix else "", protocol=self._parts.scheme,
                timeout=self._timeout, organization_id=self._org_id,
            )
            # The client's exceptions keep the body, not the headers: a hook keeps the last
            # response of this thread so a 429's Retry-After can be honoured.
            api.client.s.hooks["response"].append(self._on_response)
            self._local.api = api
        return api

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests.add(response.request.method or "?")
        self._local.last = response

    def _call(self, what: str, fn: Callable[[GrafanaApi], T], *, per_object: bool = True) -> T:
        """Run one request with retries; map failures to errors a person can act on."""
        import requests
        from grafana_client.client import GrafanaException

        api = self._api()
        attempt = 0
        while True:
            attempt += 1
            self._local.last = None
            try:
                return fn(api)
            except GrafanaException as exc:
                status = exc.status_code
                if status in RETRY_STATUSES and attempt < self.retry.attempts:
                    last = getattr(self._local, "last", None)
                    after = parse_retry_after(last.headers.get("Retry-After") if last is not None else None)
                    wait = self.retry.delay(attempt, after)
                    log.warning("grafana %s: %s, retry %d/%d in %.1fs", what, status, attempt,
                                self.retry.attempts - 1, wait)
                    self.retry.sleep(wait)
                    continue
                raise self._error(what, status, exc.response, per_object=per_object) from None
            except requests.exceptions.RequestException as exc:
                if attempt < self.retry.attempts and isinstance(
                    exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
                ):
                    self.retry.sleep(self.retry.delay(attempt, None))
                    continue
                raise UnreachableError(f"Grafana at {self.url} did not answer: {exc.__class__.__name__}",
                                       hint="check endpoints.grafana.url and that Grafana is up") from None

    def _error(self, what: str, status: int, body: Any, *, per_object: bool = True) -> SreError:
        message = body.get("message") if isinstance(body, dict) else (str(body)[:200] if body else "")
        if status == 401:
            return UnreachableError(
                f"Grafana at {self.url} refused the credentials (401 {message or 'Unauthorized'})",
                hint="check endpoints.grafana.token (a service account token) or username/password",
            )
        if status == 403 and per_object and not (isinstance(body, dict) and body.get("accessErrorId")):
            # The route's RBAC check (a body with accessErrorId) refuses the role everywhere: exit 2.
            # Without it the refusal came from one folder's permissions: this object's failure.
            return GrafanaForbidden(f"{what}: 403 {message or 'Access denied'}", status=403, body=body)
        if status == 403:
            return UnreachableError(
                f"Grafana at {self.url} denied {what} (403 {message or 'Access denied'})",
                hint="the service account needs the Editor role (dashboards:write, folders:create)",
            )
        if status in RETRY_STATUSES:
            return UnreachableError(f"Grafana at {self.url}: {what} still failing after "
                                    f"{self.retry.attempts} tries ({status} {message})")
        status_word = body.get("status") if isinstance(body, dict) else None
        detail = f"{message} ({status_word})" if status_word else message
        return GrafanaError(f"{what}: {status} {detail}".rstrip(), status=status, body=body)

    # ------------------------------------------------------------------ endpoints used

    def search_pages(self, *, page_size: int = SEARCH_PAGE_MAX, **params: str | list[str]) -> Iterator[list[dict[str, Any]]]:
        """GET /api/search page by page (page numbering starts at 1), until a short page."""
        page_size = max(1, min(page_size, SEARCH_PAGE_MAX))
        page = 1
        while True:
            path = "/search?" + urlencode({**params, "limit": page_size, "page": page}, doseq=True)
            hits: list[dict[str, Any]] = self._call("search", partial(_get, path), per_object=False)
            yield hits
            if len(hits) < page_size:
                return
            page += 1

    def search_all(self, *, page_size: int = SEARCH_PAGE_MAX, **params: str | list[str]) -> list[dict[str, Any]]:
        return [hit for page in self.search_pages(page_size=page_size, **params) for hit in page]

    def server_version(self) -> str | None:
        """Grafana's version from GET /api/health (no credentials needed); None when it does not say."""
        try:
            health: Any = self._call("health", partial(_get, "/health"), per_object=False)
        except GrafanaError:
            return None
        version = health.get("version") if isinstance(health, dict) else None
        return str(version) if version else None

    def get_dashboard(self, uid: str) -> dict[str, Any]:
        """{"dashboard": {...}, "meta": {...}} as Grafana stores it."""
        result: dict[str, Any] = self._call(
            f"get dashboard {uid}", lambda api: api.dashboard.get_dashboard(quote(uid, safe="")))
        return result

    def save_dashboard(self, dashboard: dict[str, Any], folder_uid: str, *, overwrite: bool,
                       message: str = "") -> dict[str, Any]:
        # folderUid always, folderId never: Grafana 12 ignores folderId, and without either a
        # dashboard is moved to the root level on update.
        payload = {"dashboard": dashboard, "folderUid": folder_uid, "overwrite": overwrite, "message": message}
        result: dict[str, Any] = self._call(
            f"save dashboard {dashboard.get('uid')}", lambda api: api.client.POST("/dashboards/db", json=payload))
        return result

    def add_annotation(self, *, time_ms: int, time_end_ms: int | None, tags: list[str], text: str) -> int:
        """POST /api/annotations: an organization annotation (no dashboard), shown wherever a dashboard
        queries its tags; a region when time_end_ms is given. Returns its id."""
        result: dict[str, Any] = self._call(
            "add annotation", lambda api: api.annotations.add_annotation(
                time_from=time_ms, time_to=time_end_ms, tags=tags, text=text), per_object=False)
        return int(result["id"])

    def delete_dashboard(self, uid: str) -> None:
        self._call(f"delete dashboard {uid}", lambda api: api.dashboard.delete_dashboard(quote(uid, safe="")))

    def create_folder(self, uid: str, title: str, parent_uid: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"uid": uid, "title": title}
        if parent_uid:
            body["parentUid"] = parent_uid
        result: dict[str, Any] = self._call(f"create folder {uid}", lambda api: api.client.POST("/folders", json=body))
        return result

    def rename_folder(self, uid: str, title: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            f"rename folder {uid}", lambda api: api.folder.update_folder(quote(uid, safe=""), title=title, overwrite=True))
        return result

    def move_folder(self, uid: str, parent_uid: str | None) -> dict[str, Any]:
        """POST /api/folders/:uid/move (nested folders); no parent: to the root."""
        body = {"parentUid": parent_uid or ""}
        result: dict[str, Any] = self._call(
            f"move folder {uid}", lambda api: api.client.POST(f"/folders/{quote(uid, safe='')}/move", json=body))
        return result
