"""A drill that must not start does not; a drill that fails or is interrupted undoes what it did;
two drills never run at once. Each test has a PostgreSQL pair of its own."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sre.adapters.dns import Route53, route53_client
from sre.drills.failover import DrillRequest, FailoverDrill, run_drill
from sre.drills.history import get_from
from tests.cli import SRE, sre
from tests.drill_env import DrillEnv, EnvFactory, assert_topology, streaming, writable
from tests.fakes.kube import FakeKube

pytestmark = pytest.mark.slow

DRILL = ["drill", "failover", "--from", "us-east-1", "--to", "eu-west-1", "--execute"]


class Gate:
    """A health endpoint that answers the preflight at once and holds every later request until
    opened: a drill asking it is parked inside its verify step, after DNS and scaling."""

    def __init__(self) -> None:
        self.requests = 0
        self.opened = threading.Event()
        self.holding = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.requests += 1
                if gate.requests > 1:
                    gate.holding.set()
                    gate.opened.wait(60)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the drill was interrupted while waiting and hung up
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/healthz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.opened.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.close()


def start_cli_drill(env: DrillEnv, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([SRE, *DRILL, "-c", str(env.config_path), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_preflight_refuses_while_replay_is_paused_and_lag_exceeds_the_budget(drill_env: EnvFactory) -> None:
    env = drill_env(objectives={"lag_warn_bytes": "1KiB", "lag_fail_bytes": "64KiB"})
    env.west1.sql("SELECT pg_wal_replay_pause()")
    try:
        env.east1.sql("CREATE TABLE lagging AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 5000) g")
        r = sre(*DRILL, "-c", str(env.config_path), "-o", "json")
        assert r.returncode == 1, r.stderr
        rep = json.loads(r.stdout)
        assert rep["status"] == "refused"
        assert "replay is paused on west1" in rep["message"] and "over the lag budget" in rep["message"]
        refused = [p for p in rep["preflight"] if p["status"] == "fail"]
        assert [p["check"] for p in refused] == ["drill.preflight.replication"]
        # Nothing changed: no step ran after the preflight, the primary still writes, the record
        # still leads to it, the replica is still a replica, and no canary table was made.
        assert [e["step"] for e in rep["timeline"]] == ["preflight"]
        assert writable(env.east1) and env.dns_target() == env.target(env.east1)
        assert env.west1.sql("SELECT pg_is_in_recovery()") == [(True,)]
        assert env.east1.sql("SELECT to_regclass('sre_drill_canary')") == [(None,)]
        assert rep["undo"]["ran"] is False
    finally:
        env.west1.sql("SELECT pg_wal_replay_resume()")


def test_a_fault_in_the_dns_step_undoes_everything_before_it(drill_env: EnvFactory) -> None:
    env = drill_env()
    cfg = env.config()

    def break_dns(drill: FailoverDrill) -> None:
        # The drill's Route 53 calls now go to a zone that does not exist: the UPSERT fails for real.
        drill.dns = Route53(route53_client(cfg.aws), "no-such-zone.sandbox.")

    rep = run_drill(cfg, env.store(), DrillRequest("us-east-1", "eu-west-1", hooks={"before:dns": break_dns}))
    assert rep["status"] == "aborted"
    assert "step dns failed" in rep["message"] and "no hosted zone" in rep["message"]
    undo = rep["undo"]
    assert undo["undone"] == ["dns", "promote", "fence", "canary"]
    assert undo["not_undone"] == []
    # Everything is as before the drill: east1 takes writes (the canary's resumed through the
    # record), west1 is its standby again and streams, the record never moved.
    assert_topology(env, env.east1, env.west1)
    resumed = next(e for e in rep["timeline"] if e["step"] == "canary" and e["kind"] == "undo")
    assert resumed["status"] == "ok" and resumed["detail"]["writes_resumed"] is True
    row = get_from(env.store(), rep["id"])
    assert row is not None and row["status"] == "aborted" and "ABORTED" in row["markdown"]


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        yield fake


def test_sigint_during_the_drill_undoes_everything(drill_env: EnvFactory, gate: Gate, kube: FakeKube) -> None:
    kube.put({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "messaging"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}}}})
    env = drill_env(health_urls=[gate.url], kube_host=kube.url, deployments={"eu-west-1": {"messaging/api": 5}})
    proc = start_cli_drill(env, "-o", "json")
    try:
        assert gate.holding.wait(60), "the drill never reached its verify step"
        # Parked in verify: fenced, promoted, DNS switched. Now Ctrl-C.
        assert env.dns_target() == env.target(env.west1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    rep = json.loads(out)
    assert rep["status"] == "aborted" and rep["interrupted"] is True
    assert rep["undo"]["undone"] == ["scale", "dns", "promote", "fence", "canary"]
    assert rep["undo"]["not_undone"] == []
    assert [e["status"] for e in rep["timeline"] if e["step"] == "verify"] == ["interrupted"]
    assert_topology(env, env.east1, env.west1)
    row = get_from(env.store(), rep["id"])
    assert row is not None and row["status"] == "aborted"
    # The standby region was scaled up, then back to what it ran before.
    scales = [r.body["spec"]["replicas"] for r in kube.requests_to("PATCH", "/deployments/api/scale$")]
    assert scales == [5, 1]
    assert kube.deployment("messaging", "api")["spec"]["replicas"] == 1  # type: ignore[index]


def test_two_drills_at_once_the_second_refuses(drill_env: EnvFactory, gate: Gate) -> None:
    env = drill_env(health_urls=[gate.url])
    first = start_cli_drill(env)
    try:
        assert gate.holding.wait(60), "the first drill never reached its verify step"
        second = sre(*DRILL, "-c", str(env.config_path))
        assert second.returncode == 1
        assert "refused: drill 1 is running" in second.stderr and "Traceback" not in second.stderr
        gate.opened.set()
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out + err
    # The first drill finished as if alone; the second left a refused record and changed nothing.
    assert_topology(env, env.west1, env.east1)
    store = env.store()
    first_row, second_row = get_from(store, 1), get_from(store, 2)
    assert first_row is not None and first_row["status"] == "passed"
    assert second_row is not None and second_row["status"] == "refused"
    assert second_row["report"]["timeline"] == []
    assert streaming(env.west1, env.east1)
