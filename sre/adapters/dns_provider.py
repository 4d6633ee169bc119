"""The DNS provider `dns.provider` names: Route 53 (sre.adapters.dns) or Cloudflare
(sre.adapters.dns_cloudflare), both behind `DnsProvider`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sre.adapters.dns import DnsProvider, Route53, route53_client
from sre.errors import UsageError

if TYPE_CHECKING:
    from sre.config import SreConfig


def provider(cfg: SreConfig) -> DnsProvider:
    """The DNS provider `cfg.dns` names."""
    if cfg.dns is None:
        raise UsageError("no dns section in the configuration", hint="add dns: {provider: route53, zone: ...}")
    if cfg.dns.provider == "route53":
        return Route53(route53_client(cfg.aws), cfg.dns.zone)
    if cfg.dns.provider == "cloudflare":
        from sre.adapters import dns_cloudflare  # the SDK loads only for a Cloudflare configuration

        return dns_cloudflare.Cloudflare(dns_cloudflare.client(cfg.dns), cfg.dns.zone, cfg.dns.zone_id)
    raise UsageError(f"dns.provider {cfg.dns.provider!r} is not implemented")
