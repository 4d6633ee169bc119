"""The drill's alerting without servers: expectations from the rules tree and config, the dry-run
plan, the rendering override of `for:`, firing intervals, the report's section and gauge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from sre.adapters.alertmanager import Silence, parse_time
from sre.config import load_config
from sre.drills import alerting_report
from sre.drills.alerting import Expectations, Firing, _intervals, _merge, drill_id_of, expectations
from sre.errors import UsageError
from sre.rules.loader import load_tree
from sre.rules.render import render_files
from sre.store import Store
from sre.store.drills import DrillReport
from tests.cli import sre
from tests.unit.test_drill_units import write_config

ROOT = Path(__file__).parents[2]


def _cfg(tmp_path: Path, **alerts: object) -> Path:
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["endpoints"] = {"alertmanager": {"url": "http://127.0.0.1:9"}}
    data["drills"] = {"alerts": alerts}
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_come_from_the_mode_and_the_shipped_rules(tmp_path: Path) -> None:
    cfg = load_config(_cfg(tmp_path))
    unplanned = expectations(cfg, "main", "unplanned")
    assert unplanned.expected == ["PostgresPrimaryDown", "ReplicaDisconnected"]
    assert "ReplicaLagHigh" in unplanned.may_fire and "ReplicaDisconnected" not in unplanned.may_fire
    planned = expectations(cfg, "main", "planned", ["ApiAvailabilityFastBurn"])
    assert planned.expected == [] and "ReplicaDisconnected" in planned.may_fire
    assert planned.stop_on == ["ApiAvailabilityFastBurn"]
    assert planned.silenced() == planned.may_fire
    assert planned.classify({"alertname": "ReplicaDisconnected", "cluster": "main"}) == "may_fire"
    assert planned.classify({"alertname": "ReplicaDisconnected", "cluster": "other"}) == "unexpected"
    assert planned.classify({"alertname": "ApiAvailabilityFastBurn"}) == "stop"


def test_config_overrides_per_mode_and_refuses_unknown_names(tmp_path: Path) -> None:
    cfg = load_config(_cfg(tmp_path, expected={"planned": ["ReplicaLagHigh"]}, stop_on=["ApiLatencyFastBurn"]))
    exp = expectations(cfg, "main", "planned")
    assert exp.expected == ["ReplicaLagHigh"] and "ReplicaLagHigh" not in exp.may_fire
    assert exp.stop_on == ["ApiLatencyFastBurn"]
    for alerts, words in (({"expected": {"planned": ["ReplicaLagHihg"]}}, "no alert rule named ReplicaLagHihg"),
                          ({"stop_on": ["NoSuchBurn"]}, "no alert rule named NoSuchBurn"),
                          ({"stop_on": ["ReplicaLagHigh"]}, "cannot also be expected or allowed to fire")):
        with pytest.raises(UsageError, match=words):
            expectations(load_config(_cfg(tmp_path, **alerts)), "main", "planned")


def test_the_dry_run_shows_the_silence_the_hold_and_the_expectations(tmp_path: Path) -> None:
    path = _cfg(tmp_path, stop_on=["ApiAvailabilityFastBurn"])
    r = sre("drill", "failover", "--from", "us-east-1", "--to", "eu-west-1", "--mode", "unplanned", "--failback",
            "-c", str(path), "-o", "json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    steps = [s["step"] for s in plan["steps"]]
    assert steps[:3] == ["preflight", "silence", "canary"]
    assert steps[steps.index("verify"):steps.index("rejoin") + 1] == ["verify", "alerts", "rejoin"]
    assert steps.count("alerts") == 1
    assert plan["alerting"]["expected"] == ["PostgresPrimaryDown", "ReplicaDisconnected"]
    assert "stop and undo if ApiAvailabilityFastBurn fires" in plan["steps"][1]["title"]
    bad = sre("drill", "failover", "--from", "us-east-1", "--to", "eu-west-1", "--stop-on", "Nope", "-c", str(path))
    assert bad.returncode == 2 and "no alert rule named Nope" in bad.stderr and "Traceback" not in bad.stderr
    human = sre("drill", "failover", "--from", "us-east-1", "--to", "eu-west-1", "-c", str(write_config(tmp_path)))
    assert human.returncode == 0 and "alerts are neither silenced nor graded" in " ".join(human.stdout.split())


def test_for_cap_shortens_only_longer_fors_when_rendering() -> None:
    tree = load_tree(ROOT / "alerts")
    plain = {f.name: f for f in render_files(tree, "https://rb")}
    capped = {f.name: f for f in render_files(tree, "https://rb", for_cap=90)}
    rules = {r["alert"]: r for g in capped["replication.yaml"].data["groups"] for r in g["rules"]}
    assert rules["ReplicaDisconnected"]["for"] == "1m"  # 60 s: within the cap, as written
    assert rules["ReplicaLagBytesHigh"]["for"] == "90000ms"
    assert capped["replication.yaml"].hash != plain["replication.yaml"].hash
    shipped = yaml.safe_load((ROOT / "alerts" / "replication.yaml").read_text())
    assert {r["alert"]: r["for"] for r in shipped["groups"][0]["rules"]}["ReplicaLagBytesHigh"] == "5m"


def test_firing_intervals_and_merging_two_sources() -> None:
    assert _intervals([[10, "1"], [11, "1"], [12, "1"], [30, "1"], [31, "1"]], 5.0) == [(10, 12), (30, 31)]
    labels = {"alertname": "ReplicaDisconnected", "cluster": "main"}
    merged = _merge([Firing(labels, 100.0, 120.0, "prometheus"), Firing(labels, 100.4, None, "alertmanager"),
                     Firing(labels, 50.0, 60.0, "prometheus"), Firing(labels, 200.0, None, "prometheus")], 90.0)
    assert [(f.start, f.end, f.source) for f in merged] == [(100.0, None, "prometheus"), (200.0, None, "prometheus")]


def test_silences_and_times_as_alertmanager_writes_them() -> None:
    sil = Silence.from_dict({"id": "s1", "matchers": [{"name": "cluster", "value": "main", "isRegex": False,
                                                       "isEqual": True}],
                             "startsAt": "2024-05-01T10:00:00.123456789Z", "endsAt": "2024-05-01T11:00:00Z",
                             "createdBy": "alice@host", "comment": "sre drill #12 by alice@host: failover",
                             "status": {"state": "active"}})
    assert drill_id_of(sil.comment) == 12 and drill_id_of("sre remediation #3: x") is None
    assert str(sil.matcher("cluster")) == 'cluster="main"' and sil.state == "active"
    assert sil.starts_at is not None and sil.starts_at.microsecond == 123456
    assert parse_time("0001-01-01T00:00:00Z") is None


def test_the_report_section_and_the_gauge() -> None:
    exp = Expectations("main", "unplanned", ["ReplicaDisconnected"], [], [])
    section = {"checked": True, **exp.to_dict(), "verdict": "fail", "message": "not detected in time: X",
               "fault_ts": 100.0, "stopped_by": None, "notes": ["a note"], "silences": [],
               "expected": [{"alertname": "ReplicaDisconnected", "fired_at": "t", "fired_ts": 103.0,
                             "detection_seconds": 3.0, "bound_seconds": 66.0, "for_seconds": 60.0,
                             "interval_seconds": 1.0, "margin_seconds": 5.0, "pass": True,
                             "verdict": "fired within its bound"},
                            {"alertname": "PostgresPrimaryDown", "fired_at": None, "fired_ts": None,
                             "detection_seconds": None, "bound_seconds": 66.0, "for_seconds": 60.0,
                             "interval_seconds": 1.0, "margin_seconds": 5.0, "pass": False,
                             "verdict": "never fired"}],
               "fired": [{"alertname": "Surprise", "labels": {"alertname": "Surprise", "cluster": "main"},
                          "class": "unexpected", "fired_at": "t2", "fired_ts": 104.0, "resolved_ts": None,
                          "paged": True}]}
    section["unexpected"] = section["fired"]
    md = "\n".join(alerting_report.markdown(section))
    assert "**FAIL**: not detected in time: X" in md
    assert "| ReplicaDisconnected (main) | t | 3 s | 66 s (60 + 1 + 5) | PASS: fired within its bound |" in md
    assert "| PostgresPrimaryDown (main) | - | - | 66 s (60 + 1 + 5) | FAIL: never fired |" in md
    assert "- **Surprise** {cluster=main} fired t2 (+4.0 s from the fault)" in md and "> a note" in md
    alerting_report.export("unit", {"alerting": section})
    assert REGISTRY.get_sample_value("sre_drill_alert_detection_seconds",
                                     {"cluster": "unit", "alertname": "ReplicaDisconnected"}) == 3.0
    assert REGISTRY.get_sample_value("sre_drill_alert_detection_seconds",
                                     {"cluster": "unit", "alertname": "PostgresPrimaryDown"}) is None


def test_the_service_sets_the_gauge_from_the_latest_graded_drill_in_the_store(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'sre.db'}")
    store.migrate()

    def report(detection: float | None, checked: bool = True) -> dict[str, object]:
        return {"alerting": {"checked": checked, "expected": [
            {"alertname": "ReplicaDisconnected", "detection_seconds": detection}]}}

    with store.session() as s:
        for rep in (report(9.0), report(4.5), report(None, checked=False)):
            s.add(DrillReport(cluster="synced", from_region="a", to_region="b", mode="unplanned", environment="dev",
                              status="passed", finished=datetime.now(UTC), report=rep, markdown=""))
    with store.session() as s:
        alerting_report.sync_metrics(s)
    assert REGISTRY.get_sample_value("sre_drill_alert_detection_seconds",
                                     {"cluster": "synced", "alertname": "ReplicaDisconnected"}) == 4.5
    store.dispose()
