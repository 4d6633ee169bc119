"""The readiness verdict and estimates from tables of facts (sre.dr.estimate, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sre.config import SreConfig
from sre.dr.estimate import assess, compare_estimates
from sre.dr.facts import DnsFact, DrillFact, Facts, RecoveryPoint
from sre.results import CheckResult

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
SECRET = {"env": "UNUSED"}


def config(**over: Any) -> SreConfig:
    data: dict[str, Any] = {
        "regions": ["us-east-1", "eu-west-1"],
        "postgres": {"clusters": {"main": {
            "primary": {"name": "east1", "region": "us-east-1", "dsn": SECRET},
            "replicas": [{"name": "west1", "region": "eu-west-1", "dsn": SECRET}],
            "objectives": {"rpo": "5m", "rto": "5m"}}}},
        "backups": {"main": {"cluster": "main", "bucket": "b", "max_age": "1d"}},
        "dns": {"zone": "example.", "records": {"db": "db.example."}, "ttl": 30,
                "node_targets": {"east1": "10.0.0.1", "west1": "10.1.0.1"}},
        "kubernetes": {"regions": {"eu-west-1": {"deployments": {"messaging/api": 4}}}},
        "dr": {"startup": {"messaging/api": "45s"}},
    }
    for key, value in over.items():
        data[key] = value
    return SreConfig.model_validate(data)


def replica(status: str = "ok", *, lag: float | None = 0.0, lag_bytes: int | None = 0, connected: bool = True,
            message: str = "caught up", **extra: Any) -> CheckResult:
    observed = {"cluster": "main", "replica": "west1", "region": "eu-west-1", "primary": "east1",
                "in_recovery": True, "connected": connected, "lag_seconds": lag, "lag_bytes": lag_bytes,
                "lag_seconds_basis": "replay_timestamp", **extra}
    return CheckResult("replication.postgres", "main/west1", status, observed, message)  # type: ignore[arg-type]


def drill(id: int, *, status: str = "passed", rto: float | None = 1.0, dns: float | None = 0.2,
          days_ago: float = 1, **kw: Any) -> DrillFact:
    return DrillFact(id, "us-east-1", "eu-west-1", status, NOW - timedelta(days=days_ago), rto, dns, **kw)


def facts(**over: Any) -> Facts:
    base: dict[str, Any] = dict(
        now=NOW, replication=[replica()], replication_basis="live",
        recovery_points=[RecoveryPoint("main", "main", NOW - timedelta(hours=2), "backup verified by restore",
                                       "backup.restore")],
        drills=[drill(3, rto=1.2, dns=0.2), drill(2, rto=0.9, dns=0.1, days_ago=5), drill(1, rto=3.0, dns=0.0,
                                                                                          days_ago=9)],
        dns=DnsFact("db.example.", ["10.0.0.1"], "10.0.0.1", 30),
        deployments={"eu-west-1": {"messaging/api": 4}},
        detection_seconds=120.0, detection_basis="PostgresPrimaryDown for: 60 s + 60 s")
    base.update(over)
    return Facts(**base)


def reasons(pr: Any) -> list[tuple[str, str]]:
    return [(r.severity, r.what) for r in pr.reasons]


def test_healthy_is_ready_with_rto_from_the_drill_history() -> None:
    pr = assess(config(), facts(), "us-east-1", "eu-west-1")
    assert pr.verdict == "ready", pr.reasons
    assert pr.rpo[0].seconds == 0.0 and pr.rpo[0].basis == "replica"
    # Median of the write gaps with each drill's own DNS wait taken out: 1.0, 0.8, 3.0 -> 1.0.
    assert pr.rto.terms["write_gap"] == 1.0
    assert pr.rto.terms["dns_propagation"] == 0.2  # the newest drill's measurement
    assert pr.rto.terms["dns_ttl"] == 30 and pr.rto.terms["scale"] == 0.0 and pr.rto.terms["detection"] == 120
    assert pr.rto.seconds == pytest.approx(151.2)
    assert pr.rto.drill_comparable == pytest.approx(1.2)
    assert pr.rto.drills == [3, 2, 1]


def test_no_drill_is_not_ready_and_invents_no_rto() -> None:
    pr = assess(config(), facts(drills=[]), "us-east-1", "eu-west-1")
    assert pr.verdict == "not_ready"
    assert ("not_ready", "drills") in reasons(pr)
    assert "no drill" in pr.reasons[0].message and "sre drill failover" in pr.reasons[0].fix
    assert pr.rto.seconds is None and pr.rto.terms["write_gap"] is None


def test_old_or_failed_drills() -> None:
    old = assess(config(), facts(drills=[drill(1, days_ago=40)]), "us-east-1", "eu-west-1")
    assert old.verdict == "not_ready" and "in the last 30.0 d" in old.reasons[0].message
    assert old.rto.seconds is not None  # measured, only old: shown with the reason
    failed = assess(config(), facts(drills=[drill(2, status="failed"), drill(1)]), "us-east-1", "eu-west-1")
    assert reasons(failed) == [("degraded", "drills")] and "drill 2" in failed.reasons[0].message


@pytest.mark.parametrize(("status", "connected", "verdict"), [
    ("warn", True, "degraded"), ("fail", True, "not_ready"), ("fail", False, "not_ready")])
def test_replication_states(status: str, connected: bool, verdict: str) -> None:
    pr = assess(config(), facts(replication=[replica(status, lag=12.5, lag_bytes=4096, connected=connected,
                                                     message="12 s behind")]), "us-east-1", "eu-west-1")
    assert pr.verdict == verdict
    assert reasons(pr)[0] == (verdict, "replication")
    if connected:
        assert pr.rpo[0].seconds == 12.5 and pr.rpo[0].bytes == 4096 and pr.rpo[0].link == "up"
    if status == "fail":
        assert ("under the budget" if connected else "reconnect or rebuild") in pr.reasons[0].fix


def test_unusable_replica_falls_back_to_the_newest_verified_backup() -> None:
    points = [RecoveryPoint("main", "main", NOW - timedelta(hours=5), "backup verified by restore", "backup.restore"),
              RecoveryPoint("main", "main", NOW - timedelta(minutes=3), "PITR point", "backup.pitr")]
    pr = assess(config(), facts(replication=[replica("fail", connected=False, message="link down")],
                                recovery_points=points), "us-east-1", "eu-west-1")
    rpo = pr.rpo[0]
    assert rpo.basis == "backup" and rpo.seconds == 180.0 and "PITR point" in rpo.detail and rpo.link == "down"
    none = assess(config(), facts(replication=[replica("fail", connected=False)], recovery_points=[]),
                  "us-east-1", "eu-west-1")
    assert none.rpo[0].seconds is None and ("not_ready", "backups") in reasons(none)


def test_backup_outside_its_max_age_and_rpo_beyond_objective() -> None:
    stale = [RecoveryPoint("main", "main", NOW - timedelta(days=2), "backup verified by checksum", "backup.integrity")]
    pr = assess(config(), facts(recovery_points=stale), "us-east-1", "eu-west-1")
    assert reasons(pr) == [("degraded", "backups")]
    beyond = assess(config(), facts(replication=[replica("fail", connected=False)], recovery_points=stale),
                    "us-east-1", "eu-west-1")
    assert ("degraded", "objectives") in reasons(beyond)


@pytest.mark.parametrize(("seen", "verdict", "scale"), [
    ({"messaging/api": 0}, "not_ready", 45.0), ({"messaging/api": 1}, "ready", 45.0),
    ({"messaging/api": "ApiException: 403"}, "degraded", 45.0), ({"messaging/api": 4}, "ready", 0.0)])
def test_target_deployments(seen: dict[str, Any], verdict: str, scale: float) -> None:
    pr = assess(config(), facts(deployments={"eu-west-1": seen}), "us-east-1", "eu-west-1")
    assert pr.verdict == verdict and pr.rto.terms["scale"] == scale


def test_below_the_minimum_replicas() -> None:
    cfg = config(dr={"min_replicas": 2})
    pr = assess(cfg, facts(deployments={"eu-west-1": {"messaging/api": 1}}), "us-east-1", "eu-west-1")
    assert reasons(pr) == [("degraded", "kubernetes")] and "below the minimum of 2" in pr.reasons[0].message


def test_dns_record_missing_or_elsewhere_and_proxied() -> None:
    missing = assess(config(), facts(dns=DnsFact("db.example.")), "us-east-1", "eu-west-1")
    assert reasons(missing) == [("not_ready", "dns")]
    elsewhere = assess(config(), facts(dns=DnsFact("db.example.", ["10.9.9.9"], "10.9.9.9", 30)),
                       "us-east-1", "eu-west-1")
    assert reasons(elsewhere) == [("degraded", "dns")] and "10.9.9.9" in elsewhere.reasons[0].message
    proxied = assess(config(), facts(dns=DnsFact("db.example.", ["10.0.0.1"], "10.0.0.1", 1, True)),
                     "us-east-1", "eu-west-1")
    assert proxied.rto.terms["dns_ttl"] == 0.0 and any("proxied" in n for n in proxied.rto.notes)


def test_rto_beyond_objective_names_the_largest_term() -> None:
    cfg = config(postgres={"clusters": {"main": {
        "primary": {"name": "east1", "region": "us-east-1", "dsn": SECRET},
        "replicas": [{"name": "west1", "region": "eu-west-1", "dsn": SECRET}],
        "objectives": {"rpo": "5m", "rto": "60s"}}}})
    pr = assess(cfg, facts(), "us-east-1", "eu-west-1")
    assert reasons(pr) == [("degraded", "objectives")]
    assert "largest term: detection" in pr.reasons[0].message and "for:" in pr.reasons[0].fix


def test_bucket_without_replication() -> None:
    bad = CheckResult("bucket.replication", "media-use1", "fail", {}, "no replication configuration")
    pr = assess(config(), facts(buckets=[bad]), "us-east-1", "eu-west-1")
    assert reasons(pr) == [("degraded", "buckets")] and "media-use1" in pr.reasons[0].fix


def test_a_region_without_the_primary_risks_nothing() -> None:
    pr = assess(config(), facts(), "eu-west-1", "us-east-1")
    assert pr.rpo[0].basis == "nothing_at_risk" and pr.rpo[0].seconds == 0.0


def test_estimates_compared_with_measurements() -> None:
    d = drill(4, rto=1.5, estimate={"rto_comparable_seconds": 1.2, "rpo_seconds": 0.0}, measured_rpo_seconds=0.0)
    rows = compare_estimates([d, drill(3)])
    assert rows == [{"drill": 4, "status": "passed", "mode": "planned", "estimated_rto_seconds": 1.2,
                     "measured_rto_seconds": 1.5, "rto_difference_seconds": 0.3, "estimated_rpo_seconds": 0.0,
                     "measured_rpo_seconds": 0.0, "rpo_difference_seconds": 0.0}]


def test_pairs_and_the_cli_frame(tmp_path: Any) -> None:
    from sre.dr.readiness import pairs
    from sre.errors import UsageError
    from tests.cli import sre

    cfg = config()
    assert pairs(cfg) == [("us-east-1", "eu-west-1")]  # only the source holding a primary
    assert pairs(cfg, "eu-west-1", "us-east-1") == [("eu-west-1", "us-east-1")]  # asked for: judged
    with pytest.raises(UsageError, match="unknown region"):
        pairs(cfg, "ap-south-1")
    with pytest.raises(UsageError, match="same region"):
        pairs(cfg, "us-east-1", "us-east-1")
    path = tmp_path / "sre.yaml"
    path.write_text("regions: [us-east-1, eu-west-1]\n")
    out = sre("dr", "status", "-c", str(path), "--from", "mars-1")
    assert out.returncode == 2 and out.stderr.startswith("error: --from: unknown region") and "Traceback" not in out.stderr
    empty = sre("dr", "status", "-c", str(path))
    assert empty.returncode == 2 and "nothing to judge" in empty.stderr and "hint:" in empty.stderr


@pytest.mark.parametrize(("basis", "lag", "lag_bytes", "expected"), [
    ("primary_replay_lag", 0.2, 900, 0.1),  # the primary's round trip: the one-way transit is at risk
    ("caught_up", 0.0, 900, 0.1),  # primary ahead, its lag figures not sampled yet
    ("caught_up", 0.0, 0, 0.0),  # nothing on the way: nothing at risk
    ("replay_timestamp", 3.0, 900, 3.0),  # received but not applied: the replay lag stands
])
def test_distant_replica_rpo_is_the_wal_on_the_way(basis: str, lag: float, lag_bytes: int, expected: float) -> None:
    r = replica(lag=lag, lag_bytes=lag_bytes, lag_seconds_basis=basis, receiver_transit_seconds=0.1)
    pr = assess(config(), facts(replication=[r]), "us-east-1", "eu-west-1")
    assert pr.rpo[0].seconds == expected
