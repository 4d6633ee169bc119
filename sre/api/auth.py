"""Who may call what: each route belongs to one role, and each role accepts its own tokens.

Roles: `webhook` (Alertmanager), `read` (the /api/* reads), `metrics` (Prometheus), `operate`
(endpoints that change something). Tokens are secret references under `api.tokens.<role>`,
several per role so one can be rotated without a window of refusals; the webhook role also takes
`webhook.token` (bearer) or `webhook.username` + `webhook.password` (basic). Only /healthz and
/readyz are open. Comparisons run in constant time over every token of the role.

Protecting a router is one line, and `create_app` refuses to start with a route that has no role:

    router = APIRouter(prefix="/api", dependencies=[require(Role.read)])
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import fastapi.routing
from fastapi import Depends, HTTPException, Request

from sre.config import ConfigError
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.config import SecretRef, SreConfig

log = get_logger("sre.api.auth")

# Secrets are read again after this long, so a rotated Kubernetes Secret takes effect without a restart.
REREAD_SECONDS = 60.0
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
ROLE_KEY = "x-sre-role"  # openapi_extra of a route that checks its role itself (the webhook's hot path)


class Role(StrEnum):
    webhook = "webhook"
    read = "read"
    metrics = "metrics"
    operate = "operate"


@dataclass(frozen=True)
class _Source:
    key: str  # the config key, for errors
    ref: SecretRef
    basic_user: str | None = None  # set: basic credentials "user:password"; None: a bearer token


class Credentials:
    """Every role's accepted credentials: read (and checked for strength) at start, re-read every
    REREAD_SECONDS. A re-read that finds a missing, empty or short secret drops that one credential
    (logged, naming the key): a weak value is never accepted, the role's other tokens still are."""

    def __init__(self, cfg: SreConfig, *, insecure_webhook: bool = False) -> None:
        self.sources: dict[Role, list[_Source]] = {role: [] for role in Role}
        wh = cfg.webhook
        if wh is not None and wh.auth == "bearer" and wh.token is not None:
            self.sources[Role.webhook].append(_Source("webhook.token", wh.token))
        if wh is not None and wh.auth == "basic" and wh.password is not None:
            self.sources[Role.webhook].append(_Source("webhook.password", wh.password, wh.username or ""))
        for role in Role:
            for i, ref in enumerate(getattr(cfg.api.tokens, role.value)):
                self.sources[role].append(_Source(f"api.tokens.{role.value}[{i}]", ref))
        # With no webhook credentials at all, --insecure-webhook (never in production) admits anyone.
        self.open_webhook = insecure_webhook and not self.sources[Role.webhook]
        self.basic_webhook = wh is not None and wh.auth == "basic"
        self._bearer: dict[Role, tuple[bytes, ...]] = {}
        self._basic: dict[Role, tuple[bytes, ...]] = {}
        self._read_at = 0.0
        self._lock = threading.Lock()
        self._load(strict=True)

    def _load(self, *, strict: bool) -> None:
        """Resolve every source; strict (start-up): a ConfigError naming every bad key."""
        bearer: dict[Role, list[bytes]] = {role: [] for role in Role}
        basic: dict[Role, list[bytes]] = {role: [] for role in Role}
        problems: list[str] = []
        for role, sources in self.sources.items():
            for src in sources:
                try:
                    value = src.ref.resolve_credential(src.key).get_secret_value()
                except ConfigError as exc:
                    problems += exc.problems
                    continue
                if src.basic_user is None:
                    bearer[role].append(value.encode())
                else:
                    basic[role].append(f"{src.basic_user}:{value}".encode())
        if problems:
            if strict:
                raise ConfigError(problems)
            for p in problems:
                log.error("credential dropped until it is fixed: %s", p)
        self._bearer = {r: tuple(v) for r, v in bearer.items()}
        self._basic = {r: tuple(v) for r, v in basic.items()}
        self._read_at = time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._read_at > REREAD_SECONDS and self._lock.acquire(blocking=False):
            try:
                self._load(strict=False)
            finally:
                self._lock.release()

    def configured(self, role: Role) -> bool:
        return bool(self.sources[role])

    def challenge(self, role: Role) -> str:
        return 'Basic realm="sre"' if role is Role.webhook and self.basic_webhook else 'Bearer realm="sre"'

    def check(self, role: Role, header: str | None) -> bool:
        """True when the Authorization header carries one of `role`'s credentials."""
        if role is Role.webhook and self.open_webhook:
            return True
        if not header:
            return False
        self._fresh()
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer":
            given, accepted = value.encode(), self._bearer[role]
        elif scheme == "basic":
            try:
                given = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            accepted = self._basic[role]
        else:
            return False
        if not given:
            return False
        ok = False
        for expected in accepted:  # no early exit: the time taken does not say which token matched
            ok |= hmac.compare_digest(given, expected)
        return ok


def require(role: Role) -> Any:
    """The dependency that admits only `role`'s credentials (401 otherwise):
    `APIRouter(dependencies=[require(Role.read)])` or `@router.get(..., dependencies=[...])`."""

    async def check_role(request: Request) -> None:
        creds: Credentials = request.app.state.credentials
        if not creds.check(role, request.headers.get("authorization")):
            raise HTTPException(401, "missing or wrong credentials", headers={"WWW-Authenticate": creds.challenge(role)})

    check_role.sre_role = role  # type: ignore[attr-defined]
    return Depends(check_role)


@dataclass(frozen=True)
class ServedRoute:
    path: str
    methods: tuple[str, ...]
    role: Role | None


def _role_of(route: Any) -> Role | None:
    declared = (getattr(route, "openapi_extra", None) or {}).get(ROLE_KEY)
    if declared is not None:
        return Role(declared)
    for dep in getattr(route, "dependencies", None) or []:  # the router's and the route's own
        role: Role | None = getattr(getattr(dep, "dependency", None), "sre_role", None)
        if role is not None:
            return role
    return None


def served_routes(routes: Sequence[Any]) -> list[ServedRoute]:
    """Every route as the app serves it (prefixes and router dependencies applied), with its role.

    Recent FastAPI keeps an included router as one entry of `app.routes` and flattens it with
    `iter_route_contexts`; older releases list the flattened routes themselves."""
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    out = []
    for route in (flatten(routes) if flatten is not None else routes):
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path is None or not methods:  # websockets and mounts: none here
            continue
        out.append(ServedRoute(path, tuple(sorted(methods)), _role_of(route)))
    return out


def unprotected_routes(routes: Sequence[Any], public: frozenset[str] = PUBLIC_PATHS) -> list[str]:
    """Routes that would answer without credentials though not public: a programming error."""
    return [f"{list(r.methods)} {r.path}" for r in served_routes(routes) if r.path not in public and r.role is None]
