"""Grafana's HTTP API through `grafana-client` 3.11 (requests-based; see docs/decisions/grafana-client-3.md).

The wrapper adds what the provisioning needs and the client lacks: search paging, nested folder
creation (`parentUid`), retries by urllib3's `Retry` on the client's session (idempotent methods
on 429 and 5xx and on read errors; a POST only on 429, which Grafana answers before doing any
work, so a folder created by a POST whose answer timed out is never created twice), backoff with
jitter that honours `Retry-After` up to a cap, a count of the requests made, and one client per
thread so that applies can run a bounded number of requests at once. Bad credentials and a server that keeps failing become `UnreachableError`
(exit 2) with one clear line; a refusal of one object (403 from folder permissions included)
is a `GrafanaError` for that object, so the rest of an apply goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from urllib3.util.retry import Retry

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


IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass
class RetryPolicy:
    attempts: int = 5  # tries in all, the first included
    base: float = 0.5  # seconds before the first retry without Retry-After; doubles each time
    cap: float = 30.0  # longest single wait, Retry-After included

    def retry(self, on_retry: Callable[[str | None], None] | None = None) -> CappedRetry:
        """The urllib3 `Retry` this policy means, for the session's adapter."""
        n = self.attempts - 1
        return CappedRetry(
            total=n, connect=n, read=n, status=n, other=0, allowed_methods=IDEMPOTENT,
            status_forcelist=RETRY_STATUSES, backoff_factor=self.base, backoff_max=self.cap,
            backoff_jitter=self.base, respect_retry_after_header=True, raise_on_status=False,
            raise_on_redirect=False, cap=self.cap, on_retry=on_retry)


class CappedRetry(Retry):
    """urllib3's Retry with Retry-After capped (a server asking for an hour must not stall an apply),
    a POST retried on 429 alone, and a callback per retry (the request count includes retries)."""

    def __init__(self, *args: Any, cap: float = 30.0, on_retry: Callable[[str | None], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cap, self.on_retry = cap, on_retry

    def new(self, **kwargs: Any) -> CappedRetry:
        fresh = super().new(**kwargs)
        assert isinstance(fresh, CappedRetry)
        fresh.cap, fresh.on_retry = self.cap, self.on_retry
        return fresh

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, self.cap)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # 429 is a refusal before any work (Grafana's rate limiter): safe to send again, whatever the method.
        return super().is_retry("GET" if status_code == 429 else method, status_code, has_retry_after)

    def increment(self, method: str | None = None, url: str | None = None, *args: Any, **kwargs: Any) -> CappedRetry:
        fresh = super().increment(method, url, *args, **kwargs)  # raises when the retries are spent
        assert isinstance(fresh, CappedRetry)
        if self.on_retry is not None:
            self.on_retry(method)  # another try will be sent: it counts
        return fresh


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
            from requests.adapters import HTTPAdapter

            adapter = HTTPAdapter(max_retries=self.retry.retry(self._on_retry))
            api.client.s.mount("http://", adapter)
            api.client.s.mount("https://", adapter)
            api.client.s.hooks["response"].append(self._on_response)
            self._local.api = api
        return api

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests.add(response.request.method or "?")

    def _on_retry(self, method: str | None) -> None:
        self.requests.add(method or "?")  # a retry goes out: the hook above sees only the last answer
        self._local.retries = getattr(self._local, "retries", 0) + 1

    def _call(self, what: str, fn: Callable[[GrafanaApi], T], *, per_object: bool = True) -> T:
        """Run one request (retried by the session's Retry); map failures to errors a person can act on."""
        import requests
        from grafana_client.client import GrafanaException

        self._local.retries = 0
        try:
            return fn(self._api())
        except GrafanaException as exc:
            raise self._error(what, exc.status_code, exc.response, per_object=per_object) from None
        except requests.exceptions.RequestException as exc:
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
        tries = 1 + getattr(self._local, "retries", 0)
        if status in RETRY_STATUSES and tries > 1:
            return UnreachableError(f"Grafana at {self.url}: {what} still failing after {tries} tries ({status} {message})")
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
