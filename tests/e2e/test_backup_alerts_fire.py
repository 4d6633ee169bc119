"""BackupWalGap and BackupPitrFailing, fired by a real fault: a WAL segment lost from a pgBackRest
repository, found by `sre serve`'s backups.verify job, whose metrics the session sandbox's
Prometheus scrapes and judges with the shipped backup rules at the test-time timings
(sre.sandbox.timing.SANDBOX); the alerts seen in the sandbox's Alertmanager.

The archived server is this module's own (a posix repository: nothing to wait for on an S3 path);
what the test adds to the shared Prometheus (a scrape job, a rule file) is removed at the end.
tests/e2e/test_alerts_fire.py fires the other alerts (docs/alerts.md lists which and why).
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from sre.checks.pitr_canary import ensure_table, write_canary
from sre.config import load_config
from sre.content import alerts_dir
from sre.local.postgres import chown_for_postgres
from sre.local.procs import wait_until
from sre.provision.prometheus import desired_files
from sre.sandbox import Stack
from sre.sandbox.config import write_sandbox_config
from sre.sandbox.pgbackrest import PgBackRestSite, start_site
from sre.sandbox.timing import SANDBOX, fast_rule_files
from tests.alert_loop import AlertWatch
from tests.service import running_service

pytestmark = pytest.mark.slow

CANARY = "sre_pitr_canary"
# Jobs of the sandbox's config this test does not need, off (a disabled job still names a trigger).
OFF = ("replicas.check", "backups.freshness", "backups.canary", "dr.readiness", "state.prune")


@pytest.fixture
def site() -> Iterator[PgBackRestSite]:
    root = Path(f"/tmp/sre-gap-test-{secrets.token_hex(4)}")
    archived = start_site(root / "site")
    try:
        yield archived
    finally:
        archived.stop()
        shutil.rmtree(root, ignore_errors=True)


def _lose_a_segment(site: PgBackRestSite) -> tuple[str, datetime]:
    """A full backup, then three segments archived with a canary row in each, then the middle one
    deleted from the repository. The missing segment, and a time after it."""
    dsn = site.server.dsn
    ensure_table(dsn, CANARY)
    write_canary(dsn, CANARY)
    site.backup()
    segments = []
    for _ in range(3):
        write_canary(dsn, CANARY)
        segments.append(site.switch_wal())
    gone = segments[1]
    [path] = Path(site.repo_path).glob(f"archive/*/*/*/{gone}-*")
    path.unlink()
    return gone, datetime.now(UTC)


def _config(sandbox: Stack, state: Path, site: PgBackRestSite, target: datetime) -> Path:
    """The sandbox's sre.yaml, its cluster and backups replaced by the archived server and its stanza;
    backups.verify every 3 s, restoring to `target`."""
    path = write_sandbox_config(sandbox, state)
    data = yaml.safe_load(path.read_text())
    scratch = site.root / "scratch"
    scratch.mkdir(mode=0o755)
    chown_for_postgres(scratch)
    dsn = state / "secrets" / "pg-archived-dsn"
    dsn.write_text(site.server.dsn)
    dsn.chmod(0o600)
    data["postgres"] = {"clusters": {"main": {
        "database": "postgres", "primary": {"name": "east1", "region": "us-east-1", "dsn": {"file": str(dsn)}},
        "objectives": {"rpo": "1h"}}}}
    data["backups"] = {"main": {"cluster": "main", **site.backup_set(), "max_age": "1d",
                                "restore": {"scratch_dir": str(scratch)},
                                "pitr": {"target": target.isoformat()}}}
    data["jobs"] = {"backups.verify": {"every": "3s"}, **{name: {"every": "1h", "enabled": False} for name in OFF}}
    for key in ("drills", "dns"):
        data.pop(key, None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_segment_lost_from_the_archive_pages_through_prometheus(sandbox: Stack, site: PgBackRestSite,
                                                                  tmp_path: Path) -> None:
    prometheus, alertmanager = sandbox.prometheus, sandbox.alertmanager
    assert prometheus is not None and alertmanager is not None
    gone, after_gap = _lose_a_segment(site)
    cfg_path = _config(sandbox, tmp_path / "state", site, after_gap)
    cfg = load_config(cfg_path)
    # The shipped backup rules, at the sandbox's timings, beside whatever the shared Prometheus has.
    [backups] = [f for f in fast_rule_files(desired_files(alerts_dir(cfg), cfg.alerts.runbook_base_url), SANDBOX)
                 if Path(f.name).stem == "backups"]
    rules = prometheus.rules_dir / f"fault-backups-{secrets.token_hex(3)}.yaml"
    watch = AlertWatch(alertmanager.url).start()
    since = time.time()
    try:
        rules.write_text(yaml.safe_dump(backups.data, sort_keys=False))
        prometheus.reload()
        with running_service(cfg_path) as service:
            prometheus.set_authorized_scrape("sre", [f"127.0.0.1:{service.port}"],
                                             Path(str(cfg.api.tokens.metrics[0].file)))
            expected = [("BackupWalGap", {"set": "main"}), ("BackupPitrFailing", {"cluster": "main"})]
            try:
                wait_until(lambda: all(watch.seen(name, since, **labels) for name, labels in expected),
                           timeout=60, interval=0.2, what="BackupWalGap and BackupPitrFailing in Alertmanager")
            except TimeoutError:
                seen = sorted({name for (name, _), t in watch.first.items() if t >= since})
                pytest.fail(f"not in Alertmanager: {expected}; seen since the fault: {seen}; "
                            f"service log: {service.log.read_text()[-1500:]}")
            # The job's run names the segment that is gone, for the chain and for the recovery.
            token = Path(str(cfg.api.tokens.read[0].file)).read_text().strip()
            runs = httpx.get(f"{service.url}/api/runs", params={"kind": "backups.verify"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
            failures = [f for r in runs if r["status"] == "fail" for f in r["summary"].get("failures", [])]
            for check in ("backup.wal_continuity", "backup.pitr"):
                assert any(f.startswith(check) and gone in f for f in failures), (check, failures)
    finally:
        watch.stop()
        prometheus.set_authorized_scrape("sre", [], Path("/dev/null"))
        rules.unlink(missing_ok=True)
        prometheus.reload()
