"""The FastAPI app factory. Routers get the service's parts from `request.app.state`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sre import __version__
from sre.api.auth import PUBLIC_PATHS, Credentials, Role, unprotected_routes
from sre.api.models import TAGS
from sre.api.routers import drills, health, metrics, remediations, runs, webhook
from sre.telemetry import BUILD_INFO, get_logger

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.scheduler import JobScheduler
    from sre.store import Store

log = get_logger("sre.api")


def create_app(cfg: SreConfig, store: Store, scheduler: JobScheduler | None = None, *,
               insecure_webhook: bool = False, extra_lifespan: list[Any] | None = None) -> FastAPI:
    """Build the app. `extra_lifespan`: objects with start()/stop() run with the app (workers)."""
    parts = list(extra_lifespan or [])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.draining = False
        if scheduler is not None:
            scheduler.start()
        for p in parts:
            p.start()
        try:
            yield
        finally:
            # Drain: /readyz says not ready first, so a load balancer stops sending work. The
            # scheduler goes first: it hands leadership over once its running jobs finish.
            app.state.draining = True
            if scheduler is not None:
                scheduler.stop(wait=True)
            for p in reversed(parts):
                p.stop()

    # The schema and its pages list every route and parameter: off unless asked for (api.docs).
    docs = cfg.api.docs
    app = FastAPI(title="sre", version=__version__, lifespan=lifespan, openapi_tags=TAGS,
                  description="Observability and SRE automation service: webhook, inbox and remediations, runs, "
                              "drills, health and metrics.",
                  openapi_url="/openapi.json" if docs else None, docs_url="/docs" if docs else None,
                  redoc_url="/redoc" if docs else None)
    app.state.cfg = cfg
    app.state.credentials = Credentials(cfg, insecure_webhook=insecure_webhook)
    app.state.store = store
    app.state.scheduler = scheduler
    app.state.insecure_webhook = insecure_webhook
    app.state.draining = False
    BUILD_INFO.labels(__version__).set(1)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never a stack trace to a client; the log has it.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)


    # The webhook first: it is the hot path of an alert storm, and each route tried before the
    # one that matches costs a few microseconds per request.
    for module in (webhook, remediations, drills, health, metrics, runs):
        app.include_router(module.router)
    public = PUBLIC_PATHS | ({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"} if docs else set())
    unprotected = unprotected_routes(app.routes, frozenset(public))
    if unprotected:  # a route added without require(role): refuse to serve it open
        raise RuntimeError(f"routes without a role (sre.api.auth.require): {', '.join(unprotected)}")
    for role in Role:
        if role is not Role.operate and not app.state.credentials.configured(role) and not (
                role is Role.webhook and app.state.credentials.open_webhook):
            log.warning("no credentials for role %s (api.tokens.%s): its routes answer 401 to everyone", role, role)
    return app
