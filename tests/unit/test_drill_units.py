"""Drill parts without servers: the runner's undo order, measurement, DNS targets, the lock, the plan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sre.adapters.dns import DnsRecord, record_for_target, split_target, target_of
from sre.drills import measure
from sre.drills.canary import Ack
from sre.drills.steps import NotUndone, Runner, Step
from tests.cli import sre

# ---------------------------------------------------------------- runner


def test_runner_undoes_in_reverse_including_the_failed_step() -> None:
    done: list[str] = []

    def act(name: str, fail: bool = False) -> Step:
        def run() -> dict[str, str]:
            done.append(f"run {name}")
            if fail:
                raise RuntimeError(f"{name} broke")
            return {"did": name}

        def undo() -> None:
            done.append(f"undo {name}")

        return Step(name, f"do {name}", run, undo, f"undo {name}")

    runner = Runner()
    out = runner.run([act("a"), Step("b", "no undo", lambda: None), act("c", fail=True), act("d")])
    assert not out.completed and out.failed_step == "c" and "c broke" in (out.error or "")
    assert done == ["run a", "run c", "undo c", "undo a"]
    assert out.undone == ["c", "a"] and out.not_undone == []
    kinds = [(e.step, e.kind, e.status) for e in runner.timeline]
    assert kinds == [("a", "run", "ok"), ("b", "run", "ok"), ("c", "run", "failed"), ("c", "undo", "ok"),
                     ("a", "undo", "ok")]
    for e in runner.timeline:
        assert e.finished is not None and e.duration is not None and e.duration >= 0
        assert e.to_dict()["started"].endswith("Z")


def test_a_failing_undo_does_not_stop_the_others() -> None:
    order: list[str] = []

    def bad_undo() -> None:
        raise NotUndone("restore it by hand")

    steps = [Step("a", "a", lambda: None, lambda: order.append("a") or None),
             Step("b", "b", lambda: None, bad_undo),
             Step("c", "c", lambda: (_ for _ in ()).throw(RuntimeError("boom")))]
    out = Runner().run(steps)
    assert out.undone == ["a"]
    assert out.not_undone == [{"step": "b", "error": "restore it by hand"}]
    assert order == ["a"]


def test_keyboard_interrupt_in_a_step_is_an_interruption_that_undoes() -> None:
    undone: list[str] = []

    def interrupted() -> None:
        raise KeyboardInterrupt

    out = Runner().run([Step("a", "a", lambda: None, lambda: undone.append("a") or None),
                        Step("b", "b", interrupted)])
    assert out.interrupted and undone == ["a"]


def test_a_cancelled_job_stops_before_the_next_step() -> None:
    ran: list[str] = []
    flag = {"stop": False}

    def first() -> None:
        ran.append("a")
        flag["stop"] = True

    out = Runner(cancelled=lambda: flag["stop"]).run([Step("a", "a", first, lambda: ran.append("undo a") or None),
                                                      Step("b", "b", lambda: ran.append("b") or None)])
    assert out.interrupted and ran == ["a", "undo a"]


# ---------------------------------------------------------------- measurement


def acks(*spec: tuple[int, float, str]) -> list[Ack]:
    return [Ack(n, t, tgt) for n, t, tgt in spec]


def test_rto_is_the_gap_between_last_ack_before_and_first_ack_after() -> None:
    a = acks((1, 10.00, "old"), (2, 10.05, "old"), (3, 10.10, "old"), (5, 10.42, "new"), (6, 10.47, "new"))
    m = measure.rto(a, fenced_at=10.12, new_target="new")
    assert m["rto_seconds"] == pytest.approx(0.32)
    assert m["last_ack_before"]["n"] == 3 and m["first_ack_after"]["n"] == 5


def test_rpo_counts_acknowledged_rows_missing_and_their_span() -> None:
    before = acks((1, 1.0, "o"), (2, 1.05, "o"), (3, 1.10, "o"), (4, 1.15, "o"))
    assert measure.rpo(before, {1, 2, 3, 4})["rpo_rows"] == 0
    m = measure.rpo(before, {1, 2})
    assert m["rpo_rows"] == 2 and m["lost"] == [3, 4]
    assert m["rpo_seconds"] == pytest.approx(0.10)


# ---------------------------------------------------------------- DNS targets


@pytest.mark.parametrize(("target", "rtype", "value"), [
    ("127.0.0.1:5433", "SRV", "0 0 5433 127.0.0.1"),
    ("10.0.1.5", "A", "10.0.1.5"),
    ("pg-use1.example.internal", "CNAME", "pg-use1.example.internal."),
    ("[2001:db8::1]:5432", "SRV", "0 0 5432 2001:db8::1"),
])
def test_record_for_target_round_trips(target: str, rtype: str, value: str) -> None:
    rec = record_for_target("db.example.internal", target, 30)
    assert (rec.name, rec.type, rec.values) == ("db.example.internal.", rtype, [value])
    host, port = split_target(target)
    back = target_of(rec)
    assert split_target(back) == (host, port) or back == target


def test_target_of_refuses_a_malformed_srv() -> None:
    from sre.adapters.dns import DnsError

    with pytest.raises(DnsError):
        target_of(DnsRecord("db.x.", "SRV", ["garbage"]))


# ---------------------------------------------------------------- the lock


def test_one_drill_at_a_time_and_a_dead_holder_is_replaced(tmp_path: Path) -> None:
    from sqlalchemy import update

    from sre.drills import lock
    from sre.store import Store
    from sre.store.drills import DrillLock

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    first = lock.acquire(store, 1)
    with pytest.raises(lock.DrillBusy, match="drill 1 is running"):
        lock.acquire(store, 2)
    assert lock.holder(store) == 1
    # The holder's process dies without releasing: a pid that cannot exist on this host.
    with store.session() as s:
        s.execute(update(DrillLock).values(pid=2**22 + 12345))
    second = lock.acquire(store, 3)
    assert lock.holder(store) == 3
    first.release()  # releasing someone else's lease changes nothing
    assert lock.holder(store) == 3
    second.release()
    assert lock.holder(store) is None
    assert os.getpid() > 0


# ---------------------------------------------------------------- dry run and request checks (CLI)

CONFIG = """
environment: {env}
regions: [us-east-1, eu-west-1]
state: {{dir: {state}}}
postgres:
  clusters:
    main:
      primary: {{name: east1, region: us-east-1, dsn: {{env: NOPE_EAST1}}}}
      replicas: [{{name: west1, region: eu-west-1, dsn: {{env: NOPE_WEST1}}}}]
dns: {{zone: example.internal., records: {{db: db.example.internal.}},
      node_targets: {{east1: "10.0.0.1:5432", west1: "10.1.0.1:5432"}}}}
kubernetes:
  regions:
    eu-west-1: {{deployments: {{messaging/api: 6}}}}
"""


def write_config(tmp_path: Path, env: str = "staging") -> Path:
    p = tmp_path / "sre.yaml"
    p.write_text(CONFIG.format(env=env, state=tmp_path / "state"))
    return p


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    r = sre("drill", "failover", "--from", "us-east-1", "--to", "eu-west-1", "--failback", "-c", str(cfg),
            "-o", "json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    steps = [s["step"] for s in plan["steps"]]
    assert steps[:4] == ["preflight", "canary", "fence", "catchup"]
    assert "failback.promote" in steps and "failback.rejoin" in steps
    scale = next(s for s in plan["steps"] if s["step"] == "scale")
    assert "messaging/api=6" in scale["title"]
    assert plan["dry_run"] is True
    # Nothing was contacted (the DSN variables are not even set) and no state was written.
    assert not (tmp_path / "state").exists()
    human = sre("drill", "failover", "--from", "us-east-1", "--to", "eu-west-1", "-c", str(cfg))
    assert human.returncode == 0 and "nothing was touched" in human.stdout


def test_production_needs_yes_and_a_reason(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, env="production")
    r = sre("drill", "failover", "--from", "us-east-1", "--to", "eu-west-1", "--execute", "-c", str(cfg))
    assert r.returncode == 2
    assert "--yes" in r.stderr and "--reason" in r.stderr and "Traceback" not in r.stderr
    r = sre("drill", "failover", "--from", "us-east-1", "--to", "eu-west-1", "--execute", "--yes", "-c", str(cfg))
    assert r.returncode == 2


def test_bad_requests_exit_2_with_one_line(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    for args in (["--from", "us-east-1", "--to", "us-east-1"], ["--from", "us-east-1", "--to", "ap-south-1"],
                 ["--from", "us-east-1", "--to", "eu-west-1", "--cluster", "nope"]):
        r = sre("drill", "failover", *args, "-c", str(cfg))
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_list_and_show_on_an_empty_store(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    r = sre("drill", "list", "-c", str(cfg), "-o", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = sre("drill", "show", "7", "-c", str(cfg))
    assert r.returncode == 2 and "no drill 7" in r.stderr


def test_the_scheduled_drill_runs_in_staging_only(tmp_path: Path) -> None:
    from sre.config import load_config
    from sre.jobs import JOBS, effective_jobs
    from sre.results import JobContext
    from sre.store import Store

    assert JOBS["drill.failover"].func == "sre.drills.failover:run_job"
    scheduled = '\njobs: {drill.failover: {cron: "0 3 1 * *"}}\n'
    for env, expected in (("staging", True), ("production", False)):
        path = write_config(tmp_path, env=env)
        path.write_text(path.read_text() + scheduled)
        assert ("drill.failover" in effective_jobs(load_config(path, environ={}))) is expected
    cfg = load_config(write_config(tmp_path, env="production"), environ={})
    from sre.drills.failover import run_job

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    out = run_job(JobContext(cfg=cfg, store=store, trigger="schedule"))
    assert out.status == "fail" and "staging only" in out.summary["error"]


def test_the_api_lists_and_serves_drill_reports(tmp_path: Path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from sre.api.auth import Credentials
    from sre.api.routers import drills
    from sre.config import SreConfig
    from sre.store import Store
    from sre.store.drills import DrillReport

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    with store.session() as s:
        s.add(DrillReport(cluster="main", from_region="us-east-1", to_region="eu-west-1", mode="planned",
                          failback=True, environment="staging", status="passed", rto_seconds=0.31, rpo_rows=0,
                          report={"id": 1, "status": "passed"}, markdown="# Failover drill 1: PASSED\n",
                          png=b"\x89PNG\r\n\x1a\nfake"))
    token = "a-read-token-of-32-bytes-at-least"
    (tmp_path / "read-token").write_text(token)
    cfg = SreConfig.model_validate({"api": {"tokens": {"read": [{"file": str(tmp_path / "read-token")}]}}})
    app = FastAPI()
    app.state.store = store
    app.state.credentials = Credentials(cfg)
    app.include_router(drills.router)
    assert TestClient(app).get("/api/drills").status_code == 401
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    listed = client.get("/api/drills").json()
    assert [(d["id"], d["status"], d["rto_seconds"]) for d in listed] == [(1, "passed", 0.31)]
    one = client.get("/api/drills/1").json()
    assert one["report"] == {"id": 1, "status": "passed"} and "png" not in one
    md = client.get("/api/drills/1/report.md")
    assert md.status_code == 200 and md.text.startswith("# Failover drill 1") and "markdown" in md.headers["content-type"]
    png = client.get("/api/drills/1/timeline.png")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    assert client.get("/api/drills/9").status_code == 404
    assert client.get("/api/drills?status=failed").json() == []
