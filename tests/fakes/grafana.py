"""A fake of the part of Grafana's HTTP API that `sre dashboards` uses, on loopback.

A real threaded HTTP server that the real `grafana-client` talks to. It answers as Grafana's
HTTP API documentation describes (Folder/Dashboard Search, Folder and Dashboard APIs).

Versions modelled: Grafana 11.0 to 12.x, chosen per instance with `version=` (default 11.2.0).
Where the versions differ the fake follows the one asked for: up to 11.2 a dashboard title is
unique within its folder (and a save with `overwrite` lands in the dashboard holding the title);
from 11.3 titles need not be unique; nested folders go 8 levels deep before 12.0 and 4 from 12.0.
Each rule below cites the upstream file or document it follows (`grafana/grafana` paths).

- GET  /api/health            {commit, database, version} without credentials.
- GET  /api/search            query, tag (all must match), type (dash-db | dash-folder),
                              dashboardUIDs, folderUIDs, limit (default 1000, above 5000 -> 422,
                              invalid -> 1000), page (from 1; limit is the page size), sorted by
                              title only (sort=alpha-desc reverses). Folders at every
                              level are listed; a hit inside a folder carries folderId/folderUid/
                              folderTitle/folderUrl (for a nested folder: its parent).
- POST /api/folders           {uid, title, parentUid}; 409 when the uid, or the title under the
                              same parent, already exists; 404 when parentUid does not exist;
                              400 for the title "General" and beyond the nesting depth.
- PUT  /api/folders/:uid      {title, version, overwrite}; 404; 412 version-mismatch.
- POST /api/folders/:uid/move {parentUid} (empty: the root); 404.
- POST /api/dashboards/db     {dashboard, folderUid, folderId, overwrite, message}; 400 folder not
                              found / empty title / provisioned; 412 version-mismatch (an existing
                              uid without the current version) / name-exists (11.2 and older);
                              titles are trimmed; an update without folderUid or folderId moves the
                              dashboard to the root.
- GET  /api/dashboards/uid/:uid      {dashboard, meta}; 404
- DELETE /api/dashboards/uid/:uid    {title, message, id}; 404; 400 for a provisioned dashboard
- POST /api/annotations       {time, timeEnd, tags, text, dashboardUID, panelId} -> {message:
                              "Annotation added", id}; 400 "Failed to save annotation" for an
                              empty text (pkg/api/annotations.go PostAnnotation). An organization
                              annotation when no dashboard is named.
- GET  /api/annotations       from, to (epoch ms; an annotation is found when time <= to and
                              timeEnd >= from), tags (all must match unless matchAny=true),
                              limit (default 100), newest first (time descending).
- 401 without valid credentials (Bearer token or basic auth), 403 for a Viewer writing, and 403 for
  a write into a folder whose permissions deny it (`deny_folder`).

Not modelled: folder permissions beyond a per-folder deny, dashboard versions history, library
panels, the app-platform (`/apis/dashboard.grafana.app`) endpoints, alerting.

Faults can be queued (`fail_next`) to answer 429 with Retry-After or 5xx. Every request is
recorded (method, path, query, JSON body, time) for tests to assert on.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.server import LoopbackServer

DEFAULT_LIMIT = 1000
MAX_LIMIT = 5000  # pkg/api/search.go: a larger limit is answered 422
ROOT_FOLDER_NAME = "General"  # pkg/services/dashboards/models.go RootFolderName


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    status: int = 0


@dataclass
class Fault:
    method: str
    path_prefix: str
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    times: int


@dataclass
class _Folder:
    id: int
    uid: str
    title: str
    parent_uid: str | None
    version: int = 1
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)


@dataclass
class _Dashboard:
    id: int
    uid: str
    body: dict[str, Any]
    folder_uid: str | None
    version: int
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    message: str = ""

    @property
    def title(self) -> str:
        return str(self.body.get("title", ""))


class FakeGrafana(LoopbackServer):
    """Start with `FakeGrafana().start()`; `url`, `requests`, `stop()`."""

    def __init__(self, tokens: dict[str, str] | None = None, users: dict[tuple[str, str], str] | None = None,
                 *, version: str = "11.2.0") -> None:
        # token -> role; (user, password) -> role. Role: Admin | Editor | Viewer.
        self.tokens = dict(tokens if tokens is not None else {"test-token": "Editor"})
        self.users = dict(users if users is not None else {("admin", "admin"): "Admin"})
        self.version = version
        self.folders: dict[str, _Folder] = {}
        self.dashboards: dict[str, _Dashboard] = {}
        self.denied_folders: set[str] = set()  # folder uids whose permissions refuse every write
        self.provisioned: dict[str, str] = {}  # dashboard uid -> the provisioning file it came from
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.annotations: list[dict[str, Any]] = []
        self._next_id = 1
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ lifecycle

    thread_name = "fake-grafana"

    def handler(self) -> type[_Handler]:
        fake = self

        class Handler(_Handler):
            grafana = fake

        return Handler

    # ------------------------------------------------------------------ test helpers

    def fail_next(self, method: str, path_prefix: str, status: int, *, times: int = 1,
                  retry_after: str | None = None, message: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = {"message": message or {429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "error")}
        with self._lock:
            self.faults.append(Fault(method.upper(), path_prefix, status, headers, body, times))

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_to(self, method: str, path_prefix: str = "") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and r.path.startswith(path_prefix)]

    def dashboard(self, uid: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.dashboards[uid].body)

    def folder_of(self, uid: str) -> str | None:
        with self._lock:
            return self.dashboards[uid].folder_uid

    @property
    def _release(self) -> tuple[int, int]:
        major, minor = [*self.version.split("."), "0"][:2]
        return int(major), int(minor)

    @property
    def titles_unique(self) -> bool:
        # Up to 11.2 a dashboard's title is unique in its folder; 11.3 dropped the constraint
        # (grafana/grafana#90687, "Dashboards: Remove unique name constraints", 11.3 release notes).
        return self._release < (11, 3)

    @property
    def max_folder_depth(self) -> int:
        # pkg/services/folder/model.go MaxNestedFolderDepth = 8 through 11.x; from 12.0
        # pkg/setting [folder] max_nested_folder_depth defaults to 4.
        return 4 if self._release >= (12, 0) else 8

    def deny_folder(self, uid: str) -> None:
        """Folder permissions that refuse this fake's tokens every write in `uid` (viewing stays)."""
        with self._lock:
            self.denied_folders.add(uid)

    def provision(self, dashboard: dict[str, Any], folder_uid: str | None = None,
                  external_id: str = "/etc/grafana/provisioning/dashboards/sre/dashboard.json") -> None:
        """A dashboard loaded by Grafana's file provisioning (not through the API)."""
        with self._lock:
            body = copy.deepcopy(dashboard)
            record = _Dashboard(id=self._new_id(), uid=str(body["uid"]), body=body, folder_uid=folder_uid, version=1)
            body.update(id=record.id, version=1)
            self.dashboards[record.uid] = record
            self.provisioned[record.uid] = external_id

    def _depth(self, folder_uid: str | None) -> int:
        depth = 0
        while folder_uid is not None and folder_uid in self.folders:
            depth += 1
            folder_uid = self.folders[folder_uid].parent_uid
        return depth

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    # ------------------------------------------------------------------ search

    def search(self, q: dict[str, list[str]]) -> list[dict[str, Any]]:
        def first(name: str, default: str = "") -> str:
            return q.get(name, [default])[0]

        try:
            limit = int(first("limit", str(DEFAULT_LIMIT)))
            if limit <= 0:
                limit = DEFAULT_LIMIT
        except ValueError:
            limit = DEFAULT_LIMIT
        try:
            page = max(1, int(first("page", "1")))
        except ValueError:
            page = 1
        query = first("query").lower()
        tags = q.get("tag", [])
        kind = first("type")
        uids = set(q.get("dashboardUIDs", []))
        folder_uids = set(q.get("folderUIDs", []))

        hits: list[dict[str, Any]] = []
        with self._lock:
            if kind in ("", "dash-folder") and not tags and not uids:
                for f in self.folders.values():
                    if query and query not in f.title.lower():
                        continue
                    if folder_uids and (f.parent_uid or "general") not in folder_uids:
                        continue
                    hits.append(self._folder_hit(f))
            if kind in ("", "dash-db"):
                for d in self.dashboards.values():
                    dtags = d.body.get("tags") or []
                    if query and query not in d.title.lower():
                        continue
                    if any(t not in dtags for t in tags):
                        continue
                    if uids and d.uid not in uids:
                        continue
                    if folder_uids and (d.folder_uid or "general") not in folder_uids:
                        continue
                    hits.append(self._dashboard_hit(d))
        # Sorted by title only (pkg/services/search/sorting.go: alpha-asc, the default, and
        # alpha-desc are the sort options of OSS Grafana; others are Enterprise). Equal titles
        # come in the order they were made, not by uid.
        hits.sort(key=lambda h: (h["title"].lower(), h["id"]), reverse=first("sort") == "alpha-desc")
        return hits[(page - 1) * limit: page * limit]

    def _parent_fields(self, folder_uid: str | None) -> dict[str, Any]:
        if not folder_uid or folder_uid not in self.folders:
            return {}
        p = self.folders[folder_uid]
        return {"folderId": p.id, "folderUid": p.uid, "folderTitle": p.title,
                "folderUrl": f"/dashboards/f/{p.uid}/{_slug(p.title)}"}

    def _folder_hit(self, f: _Folder) -> dict[str, Any]:
        return {"id": f.id, "uid": f.uid, "orgId": 1, "title": f.title, "uri": f"db/{_slug(f.title)}",
                "url": f"/dashboards/f/{f.uid}/{_slug(f.title)}", "slug": "", "type": "dash-folder",
                "tags": [], "isStarred": False, "sortMeta": 0, **self._parent_fields(f.parent_uid)}

    def _dashboard_hit(self, d: _Dashboard) -> dict[str, Any]:
        return {"id": d.id, "uid": d.uid, "orgId": 1, "title": d.title, "uri": f"db/{_slug(d.title)}",
                "url": f"/d/{d.uid}/{_slug(d.title)}", "slug": "", "type": "dash-db",
                "tags": list(d.body.get("tags") or []), "isStarred": False, "sortMeta": 0,
                **self._parent_fields(d.folder_uid)}

    # ------------------------------------------------------------------ folders

    def create_folder(self, body: dict[str, Any]) -> tuple[int, Any]:
        title = str(body.get("title") or "").strip()
        uid = str(body.get("uid") or "") or f"f{self._next_id:09d}"
        parent = body.get("parentUid") or None
        if not title:
            return 400, {"message": "folder title cannot be empty"}
        # pkg/services/dashboards/service/dashboard_service.go: a folder may not take the root's
        # name, "General" (ErrDashboardFolderNameExists, 400), in any letter case.
        if title.lower() == ROOT_FOLDER_NAME.lower():
            return 400, {"message": "A folder with that name already exists"}
        if len(uid) > 40:
            return 400, {"message": "uid too long, max 40 characters"}
        with self._lock:
            if parent is not None and parent not in self.folders:
                return 404, {"message": "folder not found", "status": "not-found"}
            if parent is not None and parent in self.denied_folders:
                return 403, _ACCESS_DENIED_FOLDER
            # pkg/services/folder/model.go ErrMaximumDepthReached: 400 with a messageId.
            if self._depth(parent) + 1 > self.max_folder_depth:
                return 400, {"messageId": "folder.maximum-depth-reached", "message": "Maximum nested folder depth reached"}
            if uid in self.folders or uid in self.dashboards:
                return 409, {"message": "a folder with the same uid already exists"}
            if any(f.title == title and f.parent_uid == parent for f in self.folders.values()):
                return 409, {"message": "a folder or dashboard in the general folder with the same name already exists"}
            f = _Folder(id=self._new_id(), uid=uid, title=title, parent_uid=parent)
            self.folders[uid] = f
            return 200, self._folder_body(f)

    def update_folder(self, uid: str, body: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            f = self.folders.get(uid)
            if f is None:
                return 404, {"message": "folder not found", "status": "not-found"}
            if not body.get("overwrite") and body.get("version") not in (None, f.version):
                return 412, {"message": "The folder has been changed by someone else", "status": "version-mismatch"}
            if f.uid in self.denied_folders:
                return 403, _ACCESS_DENIED_FOLDER
            if body.get("title"):
                title = str(body["title"]).strip()
                if title.lower() == ROOT_FOLDER_NAME.lower():
                    return 400, {"message": "A folder with that name already exists"}
                f.title = title
            f.version += 1
            f.updated = _now()
            return 200, self._folder_body(f)

    def move_folder(self, uid: str, body: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            f = self.folders.get(uid)
            parent = body.get("parentUid") or None
            if f is None or (parent is not None and parent not in self.folders):
                return 404, {"message": "folder not found", "status": "not-found"}
            if uid in self.denied_folders or (parent is not None and parent in self.denied_folders):
                return 403, _ACCESS_DENIED_FOLDER
            chain = parent
            while chain is not None:  # a folder cannot move under itself or a descendant
                if chain == uid:
                    return 400, {"message": "cannot move a folder under itself"}
                chain = self.folders[chain].parent_uid
            if self._depth(parent) + self._height(uid) > self.max_folder_depth:
                return 400, {"messageId": "folder.maximum-depth-reached", "message": "Maximum nested folder depth reached"}
            f.parent_uid = parent
            f.version += 1
            f.updated = _now()
            return 200, self._folder_body(f)

    def _height(self, uid: str) -> int:
        """Levels of the subtree rooted at folder `uid` (1: no subfolders)."""
        children = [f.uid for f in self.folders.values() if f.parent_uid == uid]
        return 1 + max((self._height(c) for c in children), default=0)

    def _folder_body(self, f: _Folder) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": f.id, "uid": f.uid, "title": f.title, "url": f"/dashboards/f/{f.uid}/{_slug(f.title)}",
            "hasAcl": False, "canSave": True, "canEdit": True, "canAdmin": True, "canDelete": True,
            "createdBy": "admin", "created": f.created, "updatedBy": "admin", "updated": f.updated,
            "version": f.version,
        }
        if f.parent_uid:
            out["parentUid"] = f.parent_uid
            chain, cur = [], self.folders.get(f.parent_uid)
            while cur is not None:
                chain.append({"uid": cur.uid, "title": cur.title, "url": f"/dashboards/f/{cur.uid}/{_slug(cur.title)}"})
                cur = self.folders.get(cur.parent_uid) if cur.parent_uid else None
            out["parents"] = list(reversed(chain))
        return out

    # ------------------------------------------------------------------ dashboards

    def save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        dash = body.get("dashboard")
        if not isinstance(dash, dict):
            return 400, {"message": "bad request data"}
        dash = copy.deepcopy(dash)
        # pkg/services/dashboards/service/dashboard_service.go BuildSaveDashboardCommand: the
        # title is trimmed and written back into the stored JSON.
        title = str(dash.get("title") or "").strip()
        dash["title"] = title
        if not title:
            return 400, {"message": "Dashboard title cannot be empty", "status": "empty-name"}
        overwrite = bool(body.get("overwrite"))
        with self._lock:
            folder_uid: str | None = body.get("folderUid") or None
            folder_id = body.get("folderId")
            if folder_uid is None and folder_id:
                folder_uid = next((f.uid for f in self.folders.values() if f.id == folder_id), "?missing")
            if folder_uid is not None and folder_uid not in self.folders:
                return 400, {"message": "folder not found", "status": "not-found"}
            uid = dash.get("uid") or None
            existing = self.dashboards.get(uid) if uid else None
            if uid and uid in self.folders:
                return 400, {"message": "a folder with the same uid already exists"}
            if uid and len(uid) > 40:
                return 400, {"message": "uid too long, max 40 characters", "status": "bad-request"}
            # Folder permissions are checked for the folder the dashboard goes to and, on an
            # update, the one it is in (pkg/services/dashboards/service/dashboard_service.go
            # ErrDashboardUpdateAccessDenied, 403 "Access denied to save dashboard").
            if folder_uid in self.denied_folders or (existing is not None
                                                     and existing.folder_uid in self.denied_folders):
                return 403, {"message": "Access denied to save dashboard"}
            # pkg/services/dashboards/database/database.go getExistingDashboardByIDOrUIDForUpdate:
            # an existing uid without overwrite needs the current version; no version is not it.
            if existing is not None and not overwrite and dash.get("version") != existing.version:
                return 412, {"message": "The dashboard has been changed by someone else",
                             "status": "version-mismatch"}
            # ... getExistingDashboardByTitleAndFolder (11.2 and older): another dashboard of the
            # same title in the folder refuses the save, or with overwrite takes it: the body is
            # saved under that dashboard's id, uid and version, and the sent uid is ignored.
            same_title = next((d for d in self.dashboards.values()
                               if d.title.lower() == title.lower() and d.folder_uid == folder_uid
                               and d.uid != uid), None) if self.titles_unique else None
            if same_title is not None and not overwrite:
                return 412, {"message": "A dashboard with the same name in the folder already exists",
                             "status": "name-exists"}
            if same_title is not None:
                existing = same_title
            # pkg/services/dashboards/errors.go ErrDashboardCannotSaveProvisionedDashboard (400).
            if existing is not None and existing.uid in self.provisioned:
                return 400, {"message": "Cannot save provisioned dashboard"}
            if existing is None:
                uid = uid or f"d{self._next_id:09d}"
                record = _Dashboard(id=self._new_id(), uid=uid, body=dash, folder_uid=folder_uid, version=1)
            else:
                record = existing
                record.version += 1
                record.folder_uid = folder_uid  # no folderUid on an update: moved to the root
                record.updated = _now()
            dash["id"] = record.id
            dash["uid"] = record.uid
            dash["version"] = record.version
            record.body = dash
            record.message = str(body.get("message") or "")
            self.dashboards[record.uid] = record
            return 200, {"id": record.id, "uid": record.uid, "url": f"/d/{record.uid}/{_slug(title)}",
                         "status": "success", "version": record.version, "slug": _slug(title),
                         "folderUid": record.folder_uid or ""}

    def get_dashboard(self, uid: str) -> tuple[int, Any]:
        with self._lock:
            d = self.dashboards.get(uid)
            if d is None:
                return 404, {"message": "Dashboard not found"}
            provisioned_from = self.provisioned.get(d.uid, "")
            meta = {"type": "db", "canSave": True, "canEdit": True, "canAdmin": True, "canStar": True,
                    "canDelete": True, "slug": _slug(d.title), "url": f"/d/{d.uid}/{_slug(d.title)}",
                    "expires": "0001-01-01T00:00:00Z", "created": d.created, "updated": d.updated,
                    "updatedBy": "admin", "createdBy": "admin", "version": d.version, "hasAcl": False,
                    "isFolder": False, "folderId": 0, "folderUid": "", "folderTitle": "General",
                    "folderUrl": "", "provisioned": bool(provisioned_from),
                    "provisionedExternalId": provisioned_from}
            parent = self._parent_fields(d.folder_uid)
            meta.update(parent)
            return 200, {"dashboard": copy.deepcopy(d.body), "meta": meta}

    def delete_dashboard(self, uid: str) -> tuple[int, Any]:
        with self._lock:
            d = self.dashboards.get(uid)
            if d is None:
                return 404, {"message": "Dashboard not found"}
            if d.folder_uid in self.denied_folders:
                return 403, {"message": "Access denied to delete dashboard"}
            # pkg/services/dashboards/errors.go ErrDashboardCannotDeleteProvisionedDashboard (400).
            if uid in self.provisioned:
                return 400, {"message": "provisioned dashboard cannot be deleted"}
            del self.dashboards[uid]
            return 200, {"title": d.title, "message": f"Dashboard {d.title} deleted", "id": d.id}

    # ------------------------------------------------------------------ annotations

    def add_annotation(self, body: dict[str, Any]) -> tuple[int, Any]:
        text = body.get("text")
        if not isinstance(text, str) or text == "":  # pkg/api/annotations.go: text must not be empty
            return 400, {"message": "Failed to save annotation"}
        now_ms = int(time.time() * 1000)
        start = int(body.get("time") or now_ms)
        end = int(body.get("timeEnd") or start)
        with self._lock:
            item = {"id": self._new_id(), "alertId": 0, "dashboardId": 0, "dashboardUID": body.get("dashboardUID"),
                    "panelId": int(body.get("panelId") or 0), "userId": 1, "newState": "", "prevState": "",
                    "created": now_ms, "updated": now_ms, "time": start, "timeEnd": end, "text": text,
                    "tags": [str(t) for t in body.get("tags") or []], "login": "sre", "email": "",
                    "avatarUrl": "", "data": body.get("data") or {}}
            self.annotations.append(item)
        return 200, {"message": "Annotation added", "id": item["id"]}

    def find_annotations(self, q: dict[str, list[str]]) -> list[dict[str, Any]]:
        def num(name: str, default: int) -> int:
            value = (q.get(name) or [""])[0]
            return int(value) if value.lstrip("-").isdigit() else default

        tags = q.get("tags", [])
        match_any = (q.get("matchAny") or ["false"])[0] == "true"
        start, end, limit = num("from", 0), num("to", 0), num("limit", 100)
        with self._lock:
            found = []
            for a in self.annotations:
                if (end and a["time"] > end) or (start and a["timeEnd"] < start):
                    continue
                if tags and not (any if match_any else all)(t in a["tags"] for t in tags):
                    continue
                found.append(copy.deepcopy(a))
        found.sort(key=lambda a: a["time"], reverse=True)
        return found[:limit]

    # ------------------------------------------------------------------ dispatch

    def role(self, headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return self.tokens.get(auth[7:])
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
            return self.users.get((user, password))
        return None

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and path.startswith(fault.path_prefix):
                    fault.times -= 1
                    return fault.status, fault.body, fault.headers
        if method == "GET" and path == "/api/health":  # pkg/api/health.go: no credentials needed
            return 200, {"commit": "fake", "database": "ok", "version": self.version}, {}
        role = self.role(headers)
        if role is None:
            return 401, {"extra": None, "message": "Invalid API key", "messageId": "api-key.invalid",
                         "statusCode": 401, "traceID": ""}, {}
        if method != "GET" and role == "Viewer":  # the route's RBAC middleware (pkg/api/api.go authorize)
            return 403, {"accessErrorId": "ACE0000000001", "title": "Access denied",
                         "message": "You'll need additional permissions to perform this action."}, {}
        m = re.fullmatch(r"/api/dashboards/uid/([^/]+)", path)
        f = re.fullmatch(r"/api/folders/([^/]+)", path)
        mv = re.fullmatch(r"/api/folders/([^/]+)/move", path)
        if method == "GET" and path in ("/api/search", "/api/search/"):
            limit = (query.get("limit") or [""])[0]
            if limit.lstrip("-").isdigit() and int(limit) > MAX_LIMIT:  # pkg/api/search.go
                return 422, {"message": "Limit is above maximum allowed (5000), use page parameter to access hits "
                                        "beyond limit"}, {}
            return 200, self.search(query), {}
        if method == "POST" and path == "/api/folders":
            return (*self.create_folder(body or {}), {})
        if method == "PUT" and f:
            return (*self.update_folder(unquote(f.group(1)), body or {}), {})
        if method == "POST" and mv:
            return (*self.move_folder(unquote(mv.group(1)), body or {}), {})
        if method == "POST" and path == "/api/annotations":
            return (*self.add_annotation(body or {}), {})
        if method == "GET" and path == "/api/annotations":
            return 200, self.find_annotations(query), {}
        if method == "POST" and path == "/api/dashboards/db":
            return (*self.save_dashboard(body or {}), {})
        if method == "GET" and m:
            return (*self.get_dashboard(unquote(m.group(1))), {})
        if method == "DELETE" and m:
            return (*self.delete_dashboard(unquote(m.group(1))), {})
        return 404, {"message": "Not found"}, {}


# A folder's own permissions refuse in the folder service, after the route's RBAC check passed:
# no accessErrorId (pkg/api/folder.go ToFolderErrorResponse, dashboards.ErrFolderAccessDenied).
_ACCESS_DENIED_FOLDER = {"message": "Access denied"}


class _Handler(BaseHTTPRequestHandler):
    grafana: FakeGrafana
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = Recorded(method, split.path, query, body, headers, time.monotonic())
        with self.grafana._lock:
            self.grafana.requests.append(rec)
        if raw and body is None:
            status, payload, extra = 400, {"message": "bad request data"}, {}
        else:
            status, payload, extra = self.grafana.handle(method, split.path, query, body, headers)
        rec.status = status
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")
