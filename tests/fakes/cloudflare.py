"""A fake of the part of Cloudflare's v4 API that the DNS provider uses, on loopback.

A real threaded HTTP server that the official `cloudflare` SDK talks to (`base_url` pointed at it).
It answers as Cloudflare's API documentation describes:

- Every answer is the v4 envelope: `{"success", "errors": [{"code", "message"}], "messages",
  "result"}`, plus `result_info` `{page, per_page, count, total_count, total_pages}` on lists.
- 401 `{"code": 10000, "message": "Authentication error"}` without `Authorization: Bearer <token>`.
- GET  /zones                          name (exact), page, per_page (default 20, max 50).
- GET  /zones/:zone/dns_records        name / name.exact, type, page, per_page (default 100,
                                       max 5000000 is the API's; this fake keeps 100 so paging is real).
- GET  /zones/:zone/dns_records/:id    404 code 81044 "Record does not exist." for an unknown id.
- POST /zones/:zone/dns_records        {name, type, content | data, ttl, proxied}
- PUT  /zones/:zone/dns_records/:id    the same (an overwrite: fields left out take defaults).
- Unknown zone: 404 code 1001 "Invalid zone identifier" (7003 for a malformed path is not modelled).
- Names are stored without a trailing dot and lower-cased; `ttl` 1 means automatic, otherwise
  30..86400; a proxied record answers `ttl` 1 (automatic). SRV records are written with
  `data: {priority, weight, port, target}`, need a `_service._proto.` name, and read back with
  `content` "weight port target" beside `priority`.

Faults are queued with `fail_next(status, times, retry_after)`: a 429 carries `Retry-After` and
code 971 "Please wait and consider throttling your request speed". Every request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.server import LoopbackServer


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    at: float = field(default_factory=time.time)


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeCloudflare(LoopbackServer):
    thread_name = "fake-cloudflare"
    RECORDS_PAGE = 100
    ZONES_PAGE = 20

    def __init__(self, token: str = "cf-test-token") -> None:
        self.token = token
        self.zones: dict[str, dict[str, Any]] = {}  # id -> zone
        self.records: dict[str, dict[str, dict[str, Any]]] = {}  # zone id -> record id -> record
        self.requests: list[Request] = []
        self._faults: list[tuple[int, float | None]] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ test helpers

    def add_zone(self, name: str) -> str:
        zid = uuid.uuid4().hex
        self.zones[zid] = {"id": zid, "name": name.rstrip(".").lower(), "status": "active", "paused": False,
                           "type": "full", "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"]}
        self.records[zid] = {}
        return zid

    def put_record(self, zone_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._write(zone_id, None, body)

    def fail_next(self, status: int = 429, times: int = 1, retry_after: float | None = 0.1) -> None:
        self._faults += [(status, retry_after)] * times

    def find(self, zone_id: str, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records[zone_id].values() if r["name"] == name.rstrip(".").lower()]

    def requests_to(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    # ------------------------------------------------------------------ the API

    def _zone(self, zid: str) -> dict[str, Any]:
        if zid not in self.zones:
            raise ApiError(404, 1001, "Invalid zone identifier")
        return self.zones[zid]

    def _write(self, zid: str, rid: str | None, body: dict[str, Any]) -> dict[str, Any]:
        zone = self._zone(zid)
        if not isinstance(body, dict) or not body.get("name") or not body.get("type"):
            raise ApiError(400, 9000, "DNS name is invalid.")
        name = str(body["name"]).rstrip(".").lower()
        if name != zone["name"] and not name.endswith("." + zone["name"]):
            raise ApiError(400, 9000, "DNS name is invalid.")
        rtype = str(body["type"])
        ttl = int(body.get("ttl", 1))
        if ttl != 1 and not 30 <= ttl <= 86400:
            raise ApiError(400, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.")
        proxied = bool(body.get("proxied", False))
        if proxied and rtype not in ("A", "AAAA", "CNAME"):
            raise ApiError(400, 9004, "This record type cannot be proxied.")
        record: dict[str, Any] = {"name": name, "type": rtype, "proxied": proxied, "proxiable": rtype in (
            "A", "AAAA", "CNAME"), "ttl": 1 if proxied else ttl, "zone_id": zid, "zone_name": zone["name"],
            "comment": body.get("comment"), "tags": body.get("tags") or [], "settings": {}, "meta": {}}
        if rtype == "SRV":
            data = body.get("data") or {}
            if not re.match(r"^_[a-z0-9-]+\._(tcp|udp|tls)\.", name):
                raise ApiError(400, 9100, "SRV record name must be _service._proto.name")
            try:
                prio, weight, port = int(data["priority"]), int(data["weight"]), int(data["port"])
                target = str(data["target"]).rstrip(".")
            except (KeyError, TypeError, ValueError):
                raise ApiError(400, 9101, "SRV record data is invalid.") from None
            record.update(data={"priority": prio, "weight": weight, "port": port, "target": target},
                          priority=prio, content=f"{weight} {port} {target}")
        else:
            if not body.get("content"):
                raise ApiError(400, 9005, "Content for A record is invalid.")
            record["content"] = str(body["content"]).rstrip(".") if rtype == "CNAME" else str(body["content"])
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        records = self.records[zid]
        if rid is None:
            rid = uuid.uuid4().hex
            record["created_on"] = now
        else:
            if rid not in records:
                raise ApiError(404, 81044, "Record does not exist.")
            record["created_on"] = records[rid]["created_on"]
        for other in records.values():
            if other["id"] != rid and other["name"] == name and "CNAME" in (rtype, other["type"]):
                raise ApiError(400, 81053, "An A, AAAA, or CNAME record with that host already exists.")
        record.update(id=rid, modified_on=now)
        records[rid] = record
        return dict(record)

    def _list(self, items: list[dict[str, Any]], query: dict[str, list[str]], default: int,
              biggest: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
        try:
            page = max(1, int(query.get("page", ["1"])[0]))
            per_page = min(biggest, max(1, int(query.get("per_page", [str(default)])[0])))
        except ValueError:
            raise ApiError(400, 1004, "DNS Validation Error") from None
        total = len(items)
        chunk = items[(page - 1) * per_page: page * per_page]
        pages = (total + per_page - 1) // per_page
        return chunk, {"page": page, "per_page": per_page, "count": len(chunk), "total_count": total,
                       "total_pages": pages}

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[Any, dict[str, int] | None]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["client"]:
            parts = parts[2:]  # tolerate a /client/v4 prefix in base_url
        if parts == ["zones"] and method == "GET":
            zones = sorted(self.zones.values(), key=lambda z: z["name"])
            if "name" in query:
                zones = [z for z in zones if z["name"] == query["name"][0].rstrip(".").lower()]
            return self._list(zones, query, self.ZONES_PAGE, 50)
        if len(parts) >= 3 and parts[0] == "zones" and parts[2] == "dns_records":
            zid = parts[1]
            self._zone(zid)
            records = self.records[zid]
            if len(parts) == 3 and method == "GET":
                items = sorted(records.values(), key=lambda r: (r["type"], r["name"], r["created_on"]))
                name = (query.get("name.exact") or query.get("name") or [None])[0]
                if name:
                    items = [r for r in items if r["name"] == name.rstrip(".").lower()]
                if "type" in query:
                    items = [r for r in items if r["type"] == query["type"][0]]
                return self._list(items, query, self.RECORDS_PAGE, self.RECORDS_PAGE)
            if len(parts) == 3 and method == "POST":
                return self._write(zid, None, body), None
            if len(parts) == 4:
                rid = parts[3]
                if method == "GET":
                    if rid not in records:
                        raise ApiError(404, 81044, "Record does not exist.")
                    return dict(records[rid]), None
                if method == "PUT":
                    return self._write(zid, rid, body), None
                if method == "DELETE":
                    if records.pop(rid, None) is None:
                        raise ApiError(404, 81044, "Record does not exist.")
                    return {"id": rid}, None
        raise ApiError(404, 7000, "No route for that URI")

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
                self._answer(status, {"success": False, "errors": [{"code": code, "message": message}],
                                      "messages": [], "result": None}, headers)

            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                query = parse_qs(url.query)
                with fake._lock:
                    fake.requests.append(Request(self.command, url.path, query, body))
                    fault = fake._faults.pop(0) if fake._faults else None
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._error(401, 10000, "Authentication error")
                    return
                if fault is not None:
                    status, retry_after = fault
                    if status == 429:
                        self._error(429, 971, "Please wait and consider throttling your request speed",
                                    {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None)
                    else:
                        self._error(status, 10001, "Internal server error")
                    return
                try:
                    with fake._lock:
                        result, info = fake.route(self.command, url.path, query, body)
                except ApiError as exc:
                    self._error(exc.status, exc.code, exc.message)
                    return
                doc: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
                if info is not None:
                    doc["result_info"] = info
                self._answer(200, doc)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        return Handler
