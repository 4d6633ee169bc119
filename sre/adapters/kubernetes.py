"""The Kubernetes API through the official `kubernetes` client: one place builds the client.

`api_client(cfg)` reads `kubernetes:` of sre.yaml: an API server URL and a bearer token
(`host` + `token`: tests, proxies), or a kubeconfig and the context of a region
(`kubeconfig` + `regions.<region>.context`), or, with neither, the in-cluster service account.
Everything that talks to Kubernetes (PrometheusRule provisioning, remediation actions, drills)
builds its API objects on that client, so credentials are handled once.

Errors become `UnreachableError` (exit 2) with the API's own reason (RBAC's 403 Status names
the user, verb, resource and namespace: `KubeForbidden`); `KubeApiError` carries the HTTP status,
reason and details for callers that handle 404, 409 or 422 themselves (`not_served` tells a
resource the server does not serve, such as a CRD not installed, from an object that is missing).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sre.config import KubernetesConfig
from sre.errors import SreError, UnreachableError, UsageError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from sre.config import KubernetesConfig, SreConfig

APPLY_PATCH = "application/apply-patch+yaml"


class KubeApiError(SreError):
    """The API server answered with an error status (exit 1: the object, not the connection)."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None, reason: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.details = details or {}

    @property
    def not_served(self) -> bool:
        """404 for the resource itself (no name in the details): the API server does not serve it."""
        return self.status == 404 and not self.details.get("name")


class KubeForbidden(UnreachableError):
    """403 from RBAC: the account may not do this (exit 2: its Role needs the verb)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint="the ServiceAccount's Role needs this verb (deploy/helm/sre: rbac.yaml)")
        self.status = 403


def regions(cfg: SreConfig) -> list[str | None]:
    """The clusters to act on: one per region with a context, or the single `host`."""
    k = cfg.kubernetes
    if k.host:
        return [None]
    named: list[str | None] = [r for r, reg in k.regions.items() if reg.context]
    return named or [None]


def api_client(cfg: SreConfig | KubernetesConfig, region: str | None = None) -> ApiClient:
    """A configured `kubernetes.client.ApiClient` for `region` (or the only cluster)."""
    from kubernetes import client
    from kubernetes import config as kconfig
    from kubernetes.config.config_exception import ConfigException


    k = cfg if isinstance(cfg, KubernetesConfig) else cfg.kubernetes
    if k.host:
        conf = client.Configuration()
        conf.host = k.host.rstrip("/")
        if k.token is not None:
            conf.api_key = {"authorization": k.token.resolve().get_secret_value()}
            conf.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(conf)
    context = None
    if region is not None:
        reg = k.regions.get(region)
        if reg is None:
            raise UsageError(f"kubernetes.regions has no region {region!r} (known: {', '.join(sorted(k.regions))})")
        context = reg.context
    try:
        if k.kubeconfig is None and context is None:
            conf = client.Configuration()
            kconfig.load_incluster_config(client_configuration=conf)
            return client.ApiClient(conf)
        return kconfig.new_client_from_config(config_file=str(k.kubeconfig) if k.kubeconfig else None,
                                              context=context)
    except ConfigException as exc:
        raise UsageError(f"kubernetes: {exc}",
                         hint="set kubernetes.kubeconfig (and regions.<region>.context) or kubernetes.host + token") \
            from None


def describe(api: ApiClient) -> str:
    return str(api.configuration.host)


@contextmanager
def errors(what: str, api: ApiClient | None = None) -> Iterator[None]:
    """Turn the client's exceptions into one clear line: unreachable (exit 2) or refused (exit 1)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    where = f" at {describe(api)}" if api is not None else ""
    try:
        yield
    except ApiException as exc:
        reason, message, details = _status_reason(exc)
        if exc.status == 403:
            raise KubeForbidden(f"Kubernetes API{where} refused {what}: 403 {message}") from None
        if exc.status == 401:
            raise UnreachableError(f"Kubernetes API{where} refused {what}: {exc.status} {message}") from None
        raise KubeApiError(f"{what}: {exc.status} {message}", exc.status, reason, details) from None
    except HTTPError as exc:
        raise UnreachableError(f"Kubernetes API{where} is unreachable ({what}): {exc}") from None


def _status_reason(exc: Any) -> tuple[str | None, str, dict[str, Any]]:
    """(reason, message, details) from a Status body, or the HTTP reason phrase."""
    import json

    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    if isinstance(body, dict) and body.get("kind") == "Status":
        details: dict[str, Any] = body["details"] if isinstance(body.get("details"), dict) else {}
        return body.get("reason"), str(body.get("message") or exc.reason), details
    return None, str(exc.reason or ""), {}
