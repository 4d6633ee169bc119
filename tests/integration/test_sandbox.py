"""The sandbox: real servers that stream, deliver alerts, and leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sre.local.procs import port_open, wait_until
from sre.sandbox import Stack
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.slow


def test_replica_streams_from_primary(sandbox: Stack) -> None:
    assert sandbox.postgres
    table = f"t_{uuid.uuid4().hex[:8]}"
    sandbox.postgres.primary.sql(f"CREATE TABLE {table} (v text)")
    sandbox.postgres.primary.sql(f"INSERT INTO {table} VALUES ('written on the primary')")
    rows = wait_until(lambda: sandbox.postgres.replica.sql(f"SELECT v FROM {table}")  # type: ignore[union-attr]
                      , timeout=10, what="row on the replica")
    assert rows == [("written on the primary",)]
    assert sandbox.postgres.replica.sql("SELECT pg_is_in_recovery()") == [(True,)]


def test_redis_replica_follows_primary(sandbox: Stack) -> None:
    import redis

    assert sandbox.redis
    key = f"k-{uuid.uuid4().hex}"
    redis.Redis.from_url(sandbox.redis.primary_url).set(key, "v")
    replica = redis.Redis.from_url(sandbox.redis.replica_url)
    assert wait_until(lambda: replica.get(key) == b"v", timeout=10, what="key on the redis replica")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


def test_alertmanager_delivers_a_pushed_alert(sandbox: Stack, receiver: WebhookReceiver) -> None:
    assert sandbox.alertmanager
    sandbox.alertmanager.set_webhook(receiver.url)
    name = f"SandboxProbe{uuid.uuid4().hex[:6]}"
    httpx.post(f"{sandbox.alertmanager.url}/api/v2/alerts",
               json=[{"labels": {"alertname": name, "severity": "info"}}]).raise_for_status()
    payload = wait_until(lambda: next((p for p in receiver.payloads if p["groupLabels"].get("alertname") == name),
                                      None), timeout=20, what="alert delivered to the receiver")
    assert payload["version"] == "4" and payload["status"] == "firing"
    assert payload["alerts"][0]["labels"]["alertname"] == name


def test_stopping_leaves_no_process_and_no_port() -> None:
    stack = Stack.start({"postgres", "redis", "prometheus", "alertmanager", "moto"})
    pids = stack.pids()
    ports = [int(c["url"].rsplit(":", 1)[1].split("/")[0]) for c in stack.components()]
    root = stack.root
    assert len(pids) == 7
    stack.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not any(port_open(p) for p in ports)
    assert not root.exists()


def test_a_failed_start_stops_what_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """A part that cannot start (here: Prometheus's binary missing) leaves nothing running."""
    from sre.local.procs import ProcessError
    from sre.sandbox import prometheus as prom_mod

    started: list[Stack] = []
    real_start = Stack.start.__func__  # type: ignore[attr-defined]

    def fake_which(component: str, name: str, *dirs: str) -> str:
        if name == "prometheus":
            raise ProcessError(component, f"the binary {name!r} is not installed", hint="run scripts/bootstrap")
        return original(component, name, *dirs)

    original = prom_mod.require_binary
    monkeypatch.setattr(prom_mod, "require_binary", fake_which)
    before = {p for p in os.listdir("/proc") if p.isdigit()}
    with pytest.raises(ProcessError, match="prometheus: the binary 'prometheus' is not installed"):
        started.append(real_start(Stack, {"redis", "prometheus", "moto"}))

    def leftovers() -> set[str]:
        now = {p for p in os.listdir("/proc") if p.isdigit()} - before
        out = set()
        for pid in now:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmd = fh.read()
            except OSError:
                continue
            if b"redis-server" in cmd or b"moto.server" in cmd:
                out.add(pid)
        return out

    assert not leftovers()


# Starts one part from a short-lived thread (as Stack.start does), prints its PID, and blocks.
OWNER = textwrap.dedent("""
    import sys
    import threading
    from pathlib import Path
    from sre.local.procs import ManagedProcess

    parts = []
    starter = threading.Thread(target=lambda: parts.append(ManagedProcess(
        "sleeper", ["sleep", "300"], Path(sys.argv[1]), user="postgres").start()))
    starter.start()
    starter.join()
    print(parts[0].pid, flush=True)
    sys.stdin.readline()
""")


def _gone(pid: int) -> bool:
    """No such process, or only its exit status left for init to collect."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_part_dies_with_a_killed_owner(tmp_path: Path) -> None:
    """A test run killed without teardown leaves no server behind (PR_SET_PDEATHSIG)."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path / "sleeper.log")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pid = int(owner.stdout.readline())
    try:
        assert not _gone(pid)  # the starting thread has ended; the part lives on with its owner
        owner.kill()
        owner.wait(10)
        wait_until(lambda: _gone(pid), timeout=10, what=f"part {pid} gone after its owner was killed")
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
