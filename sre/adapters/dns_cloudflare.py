"""Cloudflare DNS behind the three-call provider interface of `sre.adapters.dns`, through the
official `cloudflare` SDK (4.x, httpx).

The SDK retries 408/409/429/5xx itself, honouring Retry-After (up to 60 s), `max_retries` times.
Cloudflare has no change id and no INSYNC status: a change is served by its edge within seconds,
so "the change id" is the record id and `wait_insync` polls the record until the API reads back
what was written. A proxied record keeps its proxied flag through an upsert (clients of a
proxied record see Cloudflare's edge, not the target, and hold no TTL of the record's own).
SRV records are written with `data` and read back as "priority weight port target", as
`sre.adapters.dns` spells them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sre.adapters.dns import DnsError, DnsRecord, fqdn, target_of

if TYPE_CHECKING:
    from cloudflare import Cloudflare as CloudflareClient

    from sre.config import DnsConfig

ADDRESS_TYPES = ("A", "AAAA", "CNAME", "SRV")


def client(dns: DnsConfig) -> CloudflareClient:
    # Imported here: the SDK is large and only a Cloudflare configuration needs it.
    import cloudflare

    if dns.api_token is None:
        raise DnsError("dns.api_token is required for the cloudflare provider")
    kwargs: dict[str, Any] = {"api_token": dns.api_token.resolve().get_secret_value(),
                              "max_retries": dns.max_retries, "timeout": dns.timeout}
    if dns.api_url:
        kwargs["base_url"] = dns.api_url
    return cloudflare.Cloudflare(**kwargs)


def _message(exc: Exception) -> tuple[str, str | None]:
    body = getattr(exc, "body", None)
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        first = errors[0]
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors), str(first.get("code"))
    status = getattr(exc, "status_code", None)
    return (f"HTTP {status}: {exc}" if status else str(exc)), None


def _more(page: Any) -> bool:
    info = page.result_info
    total = getattr(info, "total_pages", None) if info is not None else None
    if total is not None and info.page is not None:
        return bool(info.page < total)
    return bool(page.has_next_page())


class Cloudflare:
    """A Cloudflare zone, by name or id."""

    def __init__(self, sdk: CloudflareClient, zone: str, zone_id: str | None = None) -> None:
        self.sdk = sdk
        self.zone = fqdn(zone)
        self._zone_id = zone_id
        self._written: dict[str, DnsRecord] = {}

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import cloudflare  # already loaded by client(); the exception classes live there

        try:
            return fn(*args, **kwargs)
        except cloudflare.APIStatusError as exc:
            msg, code = _message(exc)
            raise DnsError(f"Cloudflare {what}: {msg}", code) from None
        except cloudflare.APIError as exc:
            raise DnsError(f"Cloudflare {what}: {exc.__class__.__name__}: {exc}") from None

    def zone_id(self) -> str:
        if self._zone_id is None:
            name = self.zone.rstrip(".")
            for z in self._call("list zones", self.sdk.zones.list, name=name):
                if z.name == name:
                    self._zone_id = z.id
                    break
            else:
                raise DnsError(f"Cloudflare has no zone named {name} for this token", "1001")
        return self._zone_id

    def _records(self, name: str, type: str | None = None) -> list[Any]:
        kwargs: dict[str, Any] = {"zone_id": self.zone_id(), "name": {"exact": name.rstrip(".")}}
        if type:
            kwargs["type"] = type
        # The SDK's own iterator asks for one page more, until one comes back empty;
        # result_info.total_pages saves that request.
        page = self._call("list records", self.sdk.dns.records.list, **kwargs)
        out = list(page.result or [])
        while page.result and _more(page):
            page = self._call("list records", page.get_next_page)
            out += page.result or []
        return out

    def _to_record(self, r: Any) -> DnsRecord:
        if r.type == "SRV":
            data = r.data
            value = f"{int(data.priority)} {int(data.weight)} {int(data.port)} {data.target}"
        elif r.type == "CNAME":
            value = fqdn(str(r.content))
        else:
            value = str(r.content)
        return DnsRecord(fqdn(r.name), r.type, [value], int(r.ttl), bool(getattr(r, "proxied", False)))

    def _find(self, name: str, type: str | None) -> Any | None:
        for r in self._records(name, type):
            if (type and r.type == type) or (not type and r.type in ADDRESS_TYPES):
                return r
        return None

    def get_record(self, name: str, type: str | None = None) -> DnsRecord | None:
        found = self._find(name, type)
        return self._to_record(found) if found is not None else None

    def _body(self, record: DnsRecord, proxied: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"name": record.name.rstrip("."), "type": record.type,
                                "ttl": 1 if proxied else record.ttl}
        if record.type == "SRV":
            prio, weight, port, target = record.value.split()
            body["data"] = {"priority": int(prio), "weight": int(weight), "port": int(port),
                            "target": target.rstrip(".")}
        else:
            body["content"] = record.value.rstrip(".") if record.type == "CNAME" else record.value
            body["proxied"] = proxied
        return body

    def upsert_record(self, record: DnsRecord) -> str:
        existing = self._find(record.name, None)
        proxied = bool(record.proxied) if record.proxied is not None else bool(
            getattr(existing, "proxied", False) if existing is not None else False)
        body = self._body(record, proxied and record.type in ("A", "AAAA", "CNAME"))
        zid = self.zone_id()
        if existing is None:
            out = self._call("create record", self.sdk.dns.records.create, zone_id=zid, **body)
        else:
            out = self._call("update record", self.sdk.dns.records.update, existing.id, zone_id=zid, **body)
        rid = str(out.id)
        self._written[rid] = DnsRecord(fqdn(record.name), record.type, list(record.values), record.ttl, proxied)
        return rid

    def wait_insync(self, change_id: str, timeout: float = 300.0) -> float:
        """Poll the record until the API reads back what `upsert_record` wrote."""
        t0 = time.monotonic()
        want = self._written.get(change_id)
        delay = 0.1
        while True:
            r = self._call("get record", self.sdk.dns.records.get, change_id, zone_id=self.zone_id())
            if r is not None and (want is None or target_of(self._to_record(r)) == target_of(want)):
                return time.monotonic() - t0
            if time.monotonic() - t0 + delay > timeout:
                raise DnsError(f"Cloudflare record {change_id} does not read back as written within {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def delete_record(self, record: DnsRecord) -> None:
        found = self._find(record.name, record.type)
        if found is not None:
            self._call("delete record", self.sdk.dns.records.delete, found.id, zone_id=self.zone_id())
