"""Webhook storm: alerts per second `sre serve` accepts into its inbox, against a bare endpoint.

`wrk` (a C load generator: a Python one on the same two cores would measure itself) posts
Alertmanager v4 bodies, 100 alerts per request ("grouped") and 1 per request ("single"), to:
  - bare: FastAPI + uvicorn, one endpoint that only parses the same JSON with the same pydantic
    model and answers 200 (no auth, no storage): the baseline, measured in the same run;
  - sre serve with the SQLite store (WAL), and with the PostgreSQL store (the sandbox primary,
    a database created for the run).
Every server runs one uvicorn worker, as `sre serve` does. After each run the inbox is counted:
every alert answered 200 must be in it.

Also, in this process: the cost of `PRAGMA synchronous=FULL` (what the SQLite store runs, so an
answered alert survives a power loss) against NORMAL, per group commit of 100 alerts through the
inbox writer (informational; FULL's fsync is paid once per batch).

Goals: grouped >= 30,000 alerts/s with p99 < 100 ms; single >= 1,000 requests/s with p99 < 50 ms;
each at least 0.5 of the bare endpoint's rate. Exit 1 when a goal is missed.

    .venv/bin/python bench/webhook_storm.py [--duration 8] [--stores sqlite,postgres]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "wrk" / "webhook_post.lua"
PYTHON = sys.executable
TOKEN = "bench-webhook-token-0123456789abcdef"
GROUP_SIZE = 100
GOAL_GROUPED_ALERTS = 30_000.0
GOAL_GROUPED_P99_MS = 100.0
GOAL_SINGLE_RPS = 1_000.0
GOAL_SINGLE_P99_MS = 50.0
GOAL_RATIO = 0.5
# Concurrent connections per mode: Alertmanager sends one request per group at a time, many
# groups at once; these keep the CPU busy without queueing far past the latency goals.
CONNECTIONS = {"grouped": 8, "single": 16}


# ---------------------------------------------------------------- the baseline server

def serve_bare(port: int, raw: bool) -> None:
    """The baselines: parse with the same pydantic model, answer 200, nothing else.

    bare: the FastAPI way, the model as the body parameter (FastAPI reads the JSON, pydantic
    validates it); bare-raw: the body bytes given to pydantic's own JSON parser, as the service does.
    """
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    from sre.remediation.payload import WebhookPayload

    app = FastAPI()

    if raw:
        @app.post("/webhook/alertmanager")
        async def receive_raw(request: Request) -> Response:
            payload = WebhookPayload.model_validate_json(await request.body())
            return JSONResponse({"status": "ok", "alerts": len(payload.alerts)})
    else:
        @app.post("/webhook/alertmanager")
        async def receive(payload: WebhookPayload) -> dict[str, Any]:
            return {"status": "ok", "alerts": len(payload.alerts)}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


# ---------------------------------------------------------------- payloads

def alert(n: int, status: str = "firing") -> dict[str, Any]:
    pod = f"ws-gateway-7d9f8b6c5-{n:06d}"
    return {
        "status": status,
        "labels": {"alertname": "BenchWebsocketGatewayMemoryHigh", "namespace": "messaging",
                   "deployment": "ws-gateway", "pod": pod, "container": "gateway", "severity": "warning",
                   "job": "kubelet", "instance": f"10.0.{n % 250}.{n % 200}:10250", "region": "us-east-1"},
        "annotations": {"summary": f"Pod {pod} uses 92% of its memory limit",
                        "runbook_url": "https://github.com/example/sre/blob/main/runbooks/BenchAlert.md"},
        "startsAt": "2024-05-01T10:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=container_memory_working_set_bytes",
        "fingerprint": f"{n:016x}",
    }


def body(first: int, count: int) -> str:
    alerts = [alert(first + i) for i in range(count)]
    return json.dumps({
        "receiver": "sre", "status": "firing", "alerts": alerts,
        "groupLabels": {"alertname": "BenchWebsocketGatewayMemoryHigh", "namespace": "messaging"},
        "commonLabels": {"alertname": "BenchWebsocketGatewayMemoryHigh", "namespace": "messaging"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "version": "4",
        "groupKey": '{}:{alertname="BenchWebsocketGatewayMemoryHigh", namespace="messaging"}',
        "truncatedAlerts": 0,
    }, separators=(",", ":"))


def write_bodies(path: Path, per_request: int, distinct: int = 200) -> Path:
    path.write_text("\n".join(body(i * per_request, per_request) for i in range(distinct)) + "\n")
    return path


# ---------------------------------------------------------------- processes

def free_port() -> int:
    from sre.local.procs import free_port as fp

    return fp()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering; log: {log}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"server at {url} not healthy within {timeout:.0f}s; log: {log}")


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    store_url: str | None = None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_bare(workdir: Path, raw: bool = False) -> Server:
    port = free_port()
    name = "bare-raw" if raw else "bare"
    log = workdir / f"{name}.log"
    proc = subprocess.Popen([PYTHON, __file__, "--serve-raw" if raw else "--serve-bare", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    server = Server(name, f"http://127.0.0.1:{port}", proc)
    wait_healthy(server.url, proc, log)
    return server


def start_service(workdir: Path, name: str, state_url: str | None) -> Server:
    import yaml

    port = free_port()
    state_dir = workdir / f"state-{name}"
    state_dir.mkdir()
    token_file = workdir / "token"
    token_file.write_text(TOKEN + "\n")
    cfg: dict[str, Any] = {"environment": "dev", "state": {"dir": str(state_dir)},
                           "webhook": {"auth": "bearer", "token": {"file": str(token_file)}}}
    if state_url:
        cfg["state"]["url"] = state_url
    cfg_path = workdir / f"sre-{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    log = workdir / f"serve-{name}.log"
    proc = subprocess.Popen([str(Path(PYTHON).parent / "sre"), "serve", "--config", str(cfg_path),
                             "--port", str(port)], stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    server = Server(name, f"http://127.0.0.1:{port}", proc,
                    store_url=state_url or f"sqlite:///{state_dir / 'sre.db'}")
    wait_healthy(server.url, proc, log)
    return server


def inbox_count(store_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM alert_inbox")).scalar_one())
    finally:
        engine.dispose()


# ---------------------------------------------------------------- load

def run_wrk(url: str, bodies: Path, seconds: float, connections: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(LUA), f"{url}/webhook/alertmanager", "--", str(bodies), f"Bearer {TOKEN}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in reversed(out.splitlines()) if ln.startswith("{"))
    stats: dict[str, Any] = json.loads(line)
    return stats


@dataclass
class Figure:
    server: str
    mode: str
    requests: int
    answered: int
    seconds: float
    p50_ms: float
    p99_ms: float
    per_request: int
    inbox: int | None = None

    @property
    def rps(self) -> float:
        return self.answered / self.seconds

    @property
    def alerts_per_s(self) -> float:
        return self.answered * self.per_request / self.seconds


def measure(server: Server, mode: str, bodies: Path, per_request: int, seconds: float) -> Figure:
    before = inbox_count(server.store_url) if server.store_url else 0
    run_wrk(server.url, bodies, 1, CONNECTIONS[mode])  # warm-up: connections, caches, pools
    warm = (inbox_count(server.store_url) - before) if server.store_url else 0
    stats = run_wrk(server.url, bodies, seconds, CONNECTIONS[mode])
    errors = sum(int(stats[k]) for k in ("errors_status", "errors_connect", "errors_read", "errors_write",
                                         "errors_timeout"))
    fig = Figure(server.name, mode, stats["requests"], stats["requests"] - errors, stats["duration_us"] / 1e6,
                 stats["p50_us"] / 1000, stats["p99_us"] / 1000, per_request)
    if server.store_url:
        fig.inbox = inbox_count(server.store_url) - before - warm
    return fig


def sqlite_commit_cost(workdir: Path, groups: int = 300) -> dict[str, float]:
    """Milliseconds per group commit of GROUP_SIZE alerts, synchronous FULL and NORMAL, one at a time."""
    from sqlalchemy import event

    from sre.remediation.inbox import InboxWriter
    from sre.remediation.payload import WebhookPayload
    from sre.store import Store

    def normal(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")  # runs after the store's own pragmas

    payloads = [WebhookPayload.model_validate_json(body(i * GROUP_SIZE, GROUP_SIZE)) for i in range(groups)]
    out: dict[str, float] = {}
    for mode in ("FULL", "NORMAL", "FULL again"):
        name = "sync-" + mode.replace(" ", "-") + ".db"
        store = Store(f"sqlite:///{workdir / name}")
        if mode == "NORMAL":
            event.listen(store.engine, "connect", normal)
        store.migrate()
        writer = InboxWriter(store, idle_exit=1.0)
        writer.write_sync(payloads[0])  # warm: the writer thread and its connection
        t0 = time.perf_counter()
        for p in payloads[1:]:
            writer.write_sync(p)
        out[mode] = (time.perf_counter() - t0) / (groups - 1) * 1000
        with store.engine.connect() as conn:
            got = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        assert got == (1 if mode == "NORMAL" else 2), (mode, got)  # the writer's pool shares these settings
        store.dispose()
    return out


# ---------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds of load per case (default 8)")
    ap.add_argument("--stores", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    ap.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--serve-raw", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_bare or args.serve_raw:
        serve_bare(args.serve_bare or args.serve_raw, raw=bool(args.serve_raw))
        return 0
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="sre-bench-webhook-"))
    grouped = write_bodies(workdir / "grouped.jsonl", GROUP_SIZE)
    single = write_bodies(workdir / "single.jsonl", 1, distinct=2000)
    modes = [("grouped", grouped, GROUP_SIZE), ("single", single, 1)]
    figures: list[Figure] = []
    stack = None
    sync_cost: dict[str, float] = {}
    try:
        if "sqlite" in stores:
            sync_cost = sqlite_commit_cost(workdir)
        for raw in (False, True):
            bare = start_bare(workdir, raw)
            try:
                for mode, bodies, per in modes:
                    figures.append(measure(bare, mode, bodies, per, args.duration))
            finally:
                bare.stop()
        for store in stores:
            state_url = None
            if store == "postgres":
                from sre.sandbox import Stack

                stack = Stack.start({"postgres"})
                db = f"sre_bench_{os.getpid()}"
                stack.postgres.primary.sql(f"CREATE DATABASE {db}")  # type: ignore[union-attr]
                state_url = stack.postgres.primary.url(database=db)  # type: ignore[union-attr]
            service = start_service(workdir, store, state_url)
            try:
                for mode, bodies, per in modes:
                    figures.append(measure(service, mode, bodies, per, args.duration))
            finally:
                service.stop()
    finally:
        if stack is not None:
            stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return report(figures, stores, sync_cost)


def report(figures: list[Figure], stores: list[str], sync_cost: dict[str, float] | None = None) -> int:
    base = {f.mode: f for f in figures if f.server == "bare"}
    print(f"{'server':<10}{'mode':<9}{'req/s':>9}{'alerts/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'ratio':>7}{'vs raw':>9}{'answered':>10}{'in inbox':>10}")
    missed: list[str] = []
    raw = {f.mode: f for f in figures if f.server == "bare-raw"}
    for f in figures:
        ratio = f.alerts_per_s / base[f.mode].alerts_per_s
        inbox = "" if f.inbox is None else str(f.inbox)
        strict = f.alerts_per_s / raw[f.mode].alerts_per_s if f.mode in raw else float("nan")
        print(f"{f.server:<10}{f.mode:<9}{f.rps:>9.0f}{f.alerts_per_s:>11.0f}{f.p50_ms:>9.1f}{f.p99_ms:>9.1f}"
              f"{ratio:>7.2f}{strict:>9.2f}{f.answered * f.per_request:>10}{inbox:>10}")
        if f.server.startswith("bare"):
            continue
        tag = f"{f.server}/{f.mode}"
        if f.requests != f.answered:
            missed.append(f"{tag}: {f.requests - f.answered} request(s) failed")
        if f.inbox is not None and f.inbox < f.answered * f.per_request:
            missed.append(f"{tag}: {f.answered * f.per_request - f.inbox} answered alert(s) missing from the inbox")
        if ratio < GOAL_RATIO:
            missed.append(f"{tag}: ratio {ratio:.2f} < {GOAL_RATIO}")
        if f.mode == "grouped" and (f.alerts_per_s < GOAL_GROUPED_ALERTS or f.p99_ms >= GOAL_GROUPED_P99_MS):
            missed.append(f"{tag}: {f.alerts_per_s:.0f} alerts/s, p99 {f.p99_ms:.1f} ms")
        if f.mode == "single" and (f.rps < GOAL_SINGLE_RPS or f.p99_ms >= GOAL_SINGLE_P99_MS):
            missed.append(f"{tag}: {f.rps:.0f} req/s, p99 {f.p99_ms:.1f} ms")
    if sync_cost:
        full = (sync_cost["FULL"] + sync_cost["FULL again"]) / 2
        print(f"SQLite group commit of {GROUP_SIZE} alerts: synchronous=FULL {full:.2f} ms "
              f"({sync_cost['FULL']:.2f}, {sync_cost['FULL again']:.2f}), NORMAL {sync_cost['NORMAL']:.2f} ms: "
              f"FULL costs {full / sync_cost['NORMAL']:.2f}x")
    for m in missed:
        print(f"MISSED {m}")
    print(f"goal: grouped >= {GOAL_GROUPED_ALERTS:,.0f} alerts/s p99 < {GOAL_GROUPED_P99_MS:.0f} ms; single >= "
          f"{GOAL_SINGLE_RPS:,.0f} req/s p99 < {GOAL_SINGLE_P99_MS:.0f} ms; ratio to bare >= {GOAL_RATIO} "
          f"({', '.join(stores)}); every answered alert in the inbox: {'met' if not missed else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
