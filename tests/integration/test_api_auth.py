"""Who may call what: every route but the probes needs its role's token, walked from the route table.

A real app on a real SQLite store, through FastAPI's TestClient; `sre serve` and `sre config
validate --secrets` as subprocesses for what a person sees when a token is weak.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from sre.api import auth
from sre.api.app import create_app
from sre.api.auth import PUBLIC_PATHS, Credentials, Role, require, served_routes, unprotected_routes
from sre.config import ConfigError, SreConfig, load_config
from sre.store import open_store
from tests.cli import sre

TOKENS = {
    "webhook": ["webhook-token-0123456789abcdef"],
    "read": ["read-token-0123456789abcdef-one", "read-token-0123456789abcdef-two"],
    "metrics": ["metrics-token-0123456789abcdef"],
    "operate": ["operate-token-0123456789abcdef"],
}
WRONG = "not-a-token-of-any-role-0123456789"


def _write_config(tmp: Path, *, tokens: dict[str, list[str]] | None = None, **extra: Any) -> Path:
    secrets = tmp / "secrets"
    secrets.mkdir(exist_ok=True)
    refs: dict[str, list[dict[str, str]]] = {}
    for role, values in (TOKENS if tokens is None else tokens).items():
        refs[role] = []
        for i, value in enumerate(values):
            path = secrets / f"{role}-{i}"
            path.write_text(value + "\n")
            refs[role].append({"file": str(path)})
    data: dict[str, Any] = {"state": {"dir": str(tmp / "state")}, "api": {"tokens": refs, **extra.pop("api", {})},
                            "jobs": {}, **extra}
    path = tmp / "sre.yaml"
    path.write_text(json.dumps(data))
    return path


def _client(cfg: SreConfig, **kwargs: Any) -> Iterator[TestClient]:
    store = open_store(cfg)
    app = create_app(cfg, store, **kwargs)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    store.dispose()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(load_config(_write_config(tmp_path)))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _requests(app: FastAPI) -> list[tuple[str, str, Role | None]]:
    """(method, concrete path, role) for every route the app serves, path parameters filled with 1."""
    return [(method, re.sub(r"\{[^}]+\}", "1", route.path), route.role)
            for route in served_routes(app.routes) for method in route.methods]


def test_every_route_but_the_probes_refuses_missing_wrong_and_other_roles_tokens(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    walked = _requests(app)
    paths = {p for _, p, _ in walked}
    # The walk covers what exists today, and whatever is added later without a line here.
    assert {"/webhook/alertmanager", "/api/remediations", "/api/runs", "/api/drills", "/metrics"} <= paths
    for method, path, role in walked:
        if path in PUBLIC_PATHS:
            assert client.request(method, path).status_code in (200, 503), path
            continue
        assert role is not None, f"{method} {path} has no role"
        others = [t for r, ts in TOKENS.items() if r != role.value for t in ts]
        for headers in ({}, _bearer(""), {"Authorization": "Bearer"}, _bearer(WRONG), {"Authorization": WRONG},
                        *(_bearer(t) for t in others)):
            resp = client.request(method, path, headers=headers, json={})
            assert resp.status_code == 401, (method, path, headers, resp.status_code)
            assert resp.headers["www-authenticate"].startswith("Bearer")
            assert "Traceback" not in resp.text
        for token in TOKENS[role.value]:  # every token of the role, so rotation has no gap
            resp = client.request(method, path, headers=_bearer(token), json={})
            assert resp.status_code != 401, (method, path, resp.text)


def test_the_right_token_reads_data(client: TestClient) -> None:
    assert client.get("/api/remediations", headers=_bearer(TOKENS["read"][0])).json() == []
    metrics = client.get("/metrics", headers=_bearer(TOKENS["metrics"][0]))
    assert metrics.status_code == 200 and "sre_build_info" in metrics.text
    assert client.get("/healthz").json() == {"status": "ok"}

    from sre.jobs import JobContext, run_job
    from sre.results import CheckResult, JobOutcome

    app = client.app
    result = CheckResult("provision.alerts", "rules-dir /x", "warn", {"counts": {"create": 1}}, "1 change(s) not applied")
    run_job("alerts.reconcile", JobContext(app.state.cfg, app.state.store),  # type: ignore[attr-defined]
            fn=lambda _ctx: JobOutcome(status="warn", summary={"pending": ["create rule_file a.yaml"]}, results=[result]))
    (run,) = client.get("/api/runs", headers=_bearer(TOKENS["read"][0])).json()
    assert (run["kind"], run["status"], run["summary"]["pending"]) == ("alerts.reconcile", "warn", ["create rule_file a.yaml"])
    detail = client.get(f"/api/runs/{run['id']}", headers=_bearer(TOKENS["read"][0])).json()
    assert [(r["check"], r["status"], r["observed"]) for r in detail["results"]] == [
        ("provision.alerts", "warn", {"counts": {"create": 1}})]


def test_docs_and_schema_are_off_by_default_and_on_when_asked(client: TestClient, tmp_path: Path) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path, headers=_bearer(TOKENS["read"][0])).status_code == 404, path
    on = tmp_path / "on"
    on.mkdir()
    for c in _client(load_config(_write_config(on, api={"docs": True}))):
        assert c.get("/openapi.json").json()["info"]["title"] == "sre"
        assert c.get("/docs").status_code == 200
        # The schema says which role each route needs (the webhook declares its own).
        webhook_op = c.get("/openapi.json").json()["paths"]["/webhook/alertmanager"]["post"]
        assert webhook_op[auth.ROLE_KEY] == "webhook"
        # Every /api route describes what it returns, and every tag says what it groups.
        schema = c.get("/openapi.json").json()
        for path, ops in schema["paths"].items():
            if not path.startswith("/api/") or path.endswith((".png", ".md")):
                continue
            content = ops["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            assert "$ref" in content or "$ref" in content.get("items", {}), (path, content)
        tags = {t["name"]: t["description"] for t in schema["tags"]}
        used = {tag for ops in schema["paths"].values() for op in ops.values() for tag in op.get("tags", [])}
        assert used <= tags.keys() and all(tags.values())
        assert "RemediationDetail" in schema["components"]["schemas"]


def test_docs_are_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"api\.docs"):
        load_config(_write_config(tmp_path, environment="production", api={"docs": True}))


def test_a_rotated_token_file_takes_effect_and_a_weakened_one_is_dropped(client: TestClient, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    creds: Credentials = client.app.state.credentials  # type: ignore[attr-defined]
    monkeypatch.setattr(auth, "REREAD_SECONDS", 0.0)
    new = "read-token-rotated-0123456789abcdef"
    (tmp_path / "secrets" / "read-0").write_text(new + "\n")
    assert client.get("/api/runs", headers=_bearer(new)).status_code == 200
    assert client.get("/api/runs", headers=_bearer(TOKENS["read"][0])).status_code == 401
    # An emptied or short file is never accepted; the role's other token still works.
    (tmp_path / "secrets" / "read-0").write_text("\n")
    assert client.get("/api/runs", headers=_bearer("")).status_code == 401
    assert client.get("/api/runs", headers=_bearer(new)).status_code == 401
    assert client.get("/api/runs", headers=_bearer(TOKENS["read"][1])).status_code == 200
    assert creds.check(Role.read, "Bearer ") is False


@pytest.mark.parametrize("value", ["", "short-token"])
def test_an_empty_or_short_token_refuses_to_start(tmp_path: Path, value: str) -> None:
    tokens = {**TOKENS, "metrics": [value]}
    cfg = load_config(_write_config(tmp_path, tokens=tokens))
    with pytest.raises(ConfigError, match=r"api\.tokens\.metrics\[0\]"):
        create_app(cfg, open_store(cfg))
    if not value:
        return  # what a person sees is the same for both: shown once, through the real command
    path = tmp_path / "sre.yaml"
    served = sre("serve", "--config", str(path), "--port", "9")
    assert served.returncode == 2, served.stderr
    assert "api.tokens.metrics[0]" in served.stderr and "16 bytes" in served.stderr
    assert "Traceback" not in served.stderr
    checked = sre("config", "validate", "--config", str(path), "--secrets")
    assert checked.returncode == 2 and "api.tokens.metrics[0]" in checked.stderr
    assert value not in served.stderr + checked.stderr


def test_a_short_webhook_token_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "wh").write_text("tiny\n")
    cfg = load_config(_write_config(tmp_path, webhook={"auth": "bearer", "token": {"file": str(tmp_path / "wh")}}))
    with pytest.raises(ConfigError, match=r"webhook\.token"):
        create_app(cfg, open_store(cfg))


def test_a_route_without_a_role_is_found() -> None:
    app = FastAPI(openapi_url=None)
    open_router = APIRouter()
    guarded = APIRouter(dependencies=[require(Role.operate)])

    @open_router.get("/api/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    @guarded.post("/api/act")
    def act() -> dict[str, str]:
        return {}

    app.include_router(open_router)
    app.include_router(guarded)
    assert unprotected_routes(app.routes) == ["['GET'] /api/forgotten"]
