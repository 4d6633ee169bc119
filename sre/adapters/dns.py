"""DNS records the service switches (failover drills): a small provider interface, Route 53 first.

The interface is three calls, so another provider (Cloudflare holds the public domain) can fill it:
read a record, replace it (UPSERT), and wait until the change has reached every authoritative
server. A node's *target* is what the record holds when that node is primary, written the way
people write it: `10.0.1.5` (A record), `pg-use1.example.internal` (CNAME) or `host:port` (SRV,
"priority weight port host"), the last for servers that differ only by port, as in the sandbox.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sre.errors import UnreachableError

if TYPE_CHECKING:
    from sre.config import AwsConfig

Route53Client = Any  # boto3 clients are generated at runtime


class DnsError(UnreachableError):
    """The DNS provider refused or failed a call."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class DnsRecord:
    name: str  # fully qualified, with the trailing dot
    type: str  # A | AAAA | CNAME | SRV | TXT
    values: list[str] = field(default_factory=list)
    ttl: int = 30
    # Cloudflare only: a proxied record answers with the edge's addresses, and clients keep no TTL of its own.
    proxied: bool | None = None

    @property
    def value(self) -> str:
        return self.values[0] if self.values else ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "values": list(self.values), "ttl": self.ttl}


class DnsProvider(Protocol):
    zone: str

    def get_record(self, name: str, type: str | None = None) -> DnsRecord | None:
        """The record set `name` (of `type`, or the first address-like type found), or None."""
        ...

    def upsert_record(self, record: DnsRecord) -> str:
        """Create or replace the record set; returns the change id to wait on."""
        ...

    def wait_insync(self, change_id: str, timeout: float = 300.0) -> float:
        """Block until the change is served everywhere; returns the seconds waited."""
        ...


def fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def record_for_target(name: str, target: str, ttl: int) -> DnsRecord:
    """The record that makes `name` lead to `target` (see the module docstring for the forms)."""
    host, port = split_target(target)
    if port is not None:
        return DnsRecord(fqdn(name), "SRV", [f"0 0 {port} {host}"], ttl)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return DnsRecord(fqdn(name), "CNAME", [fqdn(host)], ttl)
    return DnsRecord(fqdn(name), "AAAA" if ip.version == 6 else "A", [host], ttl)


def target_of(record: DnsRecord) -> str:
    """The inverse of `record_for_target`: the target a record leads to."""
    value = record.value
    if record.type == "SRV":
        parts = value.split()
        if len(parts) != 4:
            raise DnsError(f"{record.name}: SRV value {value!r} is not 'priority weight port host'")
        host = parts[3].rstrip(".")
        return f"[{host}]:{parts[2]}" if ":" in host else f"{host}:{parts[2]}"
    return value.rstrip(".")


def normalize_target(target: str) -> str:
    """One spelling per target ('db.example.' and 'db.example' are the same), as `target_of` reads it."""
    return target_of(record_for_target("x.", target, 0))


def split_target(target: str) -> tuple[str, int | None]:
    """'host:port' -> (host, port); 'host' -> (host, None); '[v6]:port' too."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if target.count(":") == 1:
        host, _, port = target.partition(":")
        return host, int(port)
    return target, None


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


class Route53:
    """A hosted zone in Route 53 (or a server speaking its API, such as moto)."""

    def __init__(self, client: Route53Client, zone: str) -> None:
        self.client = client
        self.zone = fqdn(zone)
        self._zone_id: str | None = None
        self._last_status: tuple[str, str] | None = None  # the last UPSERT's (change id, status)

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = _error_code(exc)
            msg = exc.response.get("Error", {}).get("Message") or code
            raise DnsError(f"Route 53 {what}: {code}: {msg}", code) from None
        except BotoCoreError as exc:
            raise DnsError(f"Route 53 {what}: {exc}") from None

    def zone_id(self) -> str:
        if self._zone_id is None:
            found = self.find_zone()
            if found is None:
                raise DnsError(f"Route 53 has no hosted zone named {self.zone}", "NoSuchHostedZone")
            self._zone_id = found
        return self._zone_id

    def find_zone(self) -> str | None:
        resp = self._call("ListHostedZonesByName", self.client.list_hosted_zones_by_name,
                          DNSName=self.zone, MaxItems="10")
        for z in resp.get("HostedZones", []):
            if z["Name"] == self.zone:
                return str(z["Id"])
        return None

    def ensure_zone(self) -> str:
        """The zone's id, creating the zone when it does not exist (the sandbox)."""
        found = self.find_zone()
        if found is None:
            resp = self._call("CreateHostedZone", self.client.create_hosted_zone, Name=self.zone,
                              CallerReference=f"sre-{self.zone}-{time.time_ns()}")
            found = str(resp["HostedZone"]["Id"])
        self._zone_id = found
        return found

    def get_record(self, name: str, type: str | None = None) -> DnsRecord | None:
        name = fqdn(name)
        kwargs: dict[str, Any] = {"HostedZoneId": self.zone_id(), "StartRecordName": name, "MaxItems": "10"}
        if type:
            kwargs["StartRecordType"] = type
        resp = self._call("ListResourceRecordSets", self.client.list_resource_record_sets, **kwargs)
        for rrset in resp.get("ResourceRecordSets", []):
            if rrset["Name"] != name or (type and rrset["Type"] != type):
                continue
            if not type and rrset["Type"] not in ("A", "AAAA", "CNAME", "SRV"):
                continue
            return DnsRecord(name, rrset["Type"], [r["Value"] for r in rrset.get("ResourceRecords", [])],
                             int(rrset.get("TTL", 0)))
        return None

    def upsert_record(self, record: DnsRecord) -> str:
        batch = {"Comment": "sre", "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": fqdn(record.name), "Type": record.type, "TTL": record.ttl,
            "ResourceRecords": [{"Value": v} for v in record.values]}}]}
        resp = self._call("ChangeResourceRecordSets", self.client.change_resource_record_sets,
                          HostedZoneId=self.zone_id(), ChangeBatch=batch)
        info = resp["ChangeInfo"]
        self._last_status = (info["Id"], info["Status"])
        return str(info["Id"])

    def delete_record(self, record: DnsRecord) -> None:
        batch = {"Changes": [{"Action": "DELETE", "ResourceRecordSet": {
            "Name": fqdn(record.name), "Type": record.type, "TTL": record.ttl,
            "ResourceRecords": [{"Value": v} for v in record.values]}}]}
        self._call("ChangeResourceRecordSets", self.client.change_resource_record_sets,
                   HostedZoneId=self.zone_id(), ChangeBatch=batch)

    def wait_insync(self, change_id: str, timeout: float = 300.0) -> float:
        # Real Route 53 answers PENDING and reaches INSYNC within about a minute; poll gently.
        t0 = time.monotonic()
        if self._last_status == (change_id, "INSYNC"):
            return 0.0
        delay = 0.2
        while True:
            resp = self._call("GetChange", self.client.get_change, Id=change_id)
            if resp["ChangeInfo"]["Status"] == "INSYNC":
                return time.monotonic() - t0
            if time.monotonic() - t0 + delay > timeout:
                raise DnsError(f"Route 53 change {change_id} not INSYNC within {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def route53_client(aws: AwsConfig) -> Route53Client:
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {"region_name": aws.region}
    if aws.endpoint_url:
        kwargs["endpoint_url"] = aws.endpoint_url
    if aws.access_key_id is not None and aws.secret_access_key is not None:
        kwargs["aws_access_key_id"] = aws.access_key_id.resolve().get_secret_value()
        kwargs["aws_secret_access_key"] = aws.secret_access_key.resolve().get_secret_value()
    options = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=15)
    return boto3.session.Session().client("route53", config=options, **kwargs)
