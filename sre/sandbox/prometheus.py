"""Prometheus and Alertmanager of the sandbox, real binaries from the Debian packages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sre.local.procs import ManagedProcess, ProcessError, free_port, require_binary


def _http_ok(url: str, method: str = "GET", timeout: float = 2.0) -> bool:
    import urllib.request

    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return bool(resp.status == 200)


@dataclass
class Prometheus:
    root: Path
    port: int
    alertmanager_url: str | None = None
    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    process: ManagedProcess | None = field(default=None, repr=False)
    # job -> (targets, bearer token file): scrapes that need credentials, which file_sd cannot carry.
    authorized: dict[str, tuple[list[str], Path]] = field(default_factory=dict)
    # The Alertmanagers alerts go to, when set (set_alertmanagers); else alertmanager_url alone.
    alertmanagers: list[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.root / "prometheus.yml"

    @property
    def rules_dir(self) -> Path:
        return self.root / "rules"

    @property
    def targets_dir(self) -> Path:
        return self.root / "targets"

    @property
    def slow_targets_dir(self) -> Path:
        return self.targets_dir / "slow"

    @property
    def log_path(self) -> Path:
        return self.root / "prometheus.log"

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.evaluation_interval,
                       "scrape_timeout": "1s"},
            "rule_files": [str(self.rules_dir / "*.yaml"), str(self.rules_dir / "*.yml")],
            "scrape_configs": [
                {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}]},
                # Further jobs come from file_sd files: set_scrape_targets() writes one per job and
                # Prometheus picks it up without a reload.
                {"job_name": "file_sd", "file_sd_configs": [
                    {"files": [str(self.targets_dir / "*.json")], "refresh_interval": "1s"}]},
                # Targets that answer slowly when their server is down (postgres_exporter takes
                # about 1 s and queues the next request behind it): scraped every 3 s, so
                # scrapes never pile up and a down server still reads as pg_up 0.
                {"job_name": "file_sd_slow", "scrape_interval": "3s", "scrape_timeout": "2500ms",
                 "file_sd_configs": [{"files": [str(self.slow_targets_dir / "*.json")], "refresh_interval": "1s"}]},
            ],
        }
        for job, (targets, token_file) in sorted(self.authorized.items()):
            if targets:
                cfg["scrape_configs"].append({
                    "job_name": job, "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                    "static_configs": [{"targets": targets}]})
        ams = self.alertmanagers if self.alertmanagers is not None else (
            [self.alertmanager_url] if self.alertmanager_url else [])
        if ams:
            targets = [am.removeprefix("http://") for am in ams]
            cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": targets}]}]}
        return cfg

    def start(self) -> None:
        exe = require_binary("prometheus", "prometheus")
        for d in (self.root, self.rules_dir, self.targets_dir, self.slow_targets_dir, self.root / "data"):
            d.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.process = ManagedProcess(
            name="prometheus",
            cmd=[exe, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.root / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", f"--web.external-url={self.url}",
                 "--web.enable-lifecycle", "--rules.alert.resend-delay=1s", "--log.level=warn"],
            log_path=self.log_path,
        ).start()
        self.process.wait_ready(lambda: _http_ok(f"{self.url}/-/ready"))

    def set_scrape_targets(self, job: str, targets: list[str], labels: dict[str, str] | None = None,
                           metrics_path: str = "/metrics") -> Path:
        """Scrape `targets` (host:port) as job `job`, through file_sd (no reload needed)."""
        entry_labels = {"job": job, **(labels or {})}
        if metrics_path != "/metrics":
            entry_labels["__metrics_path__"] = metrics_path
        return self.set_target_groups(job, [{"targets": targets, "labels": entry_labels}])

    def set_target_groups(self, job: str, groups: list[dict[str, Any]], *, slow: bool = False) -> Path:
        """Write job `job`'s file_sd groups, replaced atomically (Prometheus may read it any time);
        `slow`: scraped every 3 s instead of every second."""
        path = (self.slow_targets_dir if slow else self.targets_dir) / f"{job}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.rename(path)
        return path

    def set_authorized_scrape(self, job: str, targets: list[str], token_file: Path) -> None:
        """Scrape `targets` as job `job` with the bearer token in `token_file` (as the service's
        /metrics needs); no targets removes the job. Rewrites the config and reloads."""
        self.authorized[job] = (targets, token_file)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        if self.process and self.process.alive():
            self.reload()

    def set_alertmanagers(self, urls: list[str] | None) -> None:
        """Send alerts to `urls` (none: to no Alertmanager; None: back to alertmanager_url alone).
        Rewrites the config and reloads."""
        self.alertmanagers = urls
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        if self.process and self.process.alive():
            self.reload()

    def reload(self) -> None:
        import urllib.error
        import urllib.request

        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        try:
            urllib.request.urlopen(req, timeout=10).close()
        except urllib.error.HTTPError as exc:
            raise ProcessError("prometheus", f"reload refused: {exc.read().decode(errors='replace').strip()}",
                               self.log_path) from None

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@dataclass
class Alertmanager:
    root: Path
    port: int
    webhook_url: str | None = None
    webhook_credentials_file: Path | None = None
    group_by: list[str] = field(default_factory=lambda: ["alertname", "namespace"])
    group_wait: str = "1s"
    inhibit_rules: list[dict[str, Any]] = field(default_factory=list)
    process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.root / "alertmanager.yml"

    @property
    def log_path(self) -> Path:
        return self.root / "alertmanager.log"

    def config(self) -> dict[str, Any]:
        receiver: dict[str, Any] = {"name": "sre"}
        if self.webhook_url:
            wh: dict[str, Any] = {"url": self.webhook_url, "send_resolved": True, "max_alerts": 0}
            if self.webhook_credentials_file:
                wh["http_config"] = {"authorization": {"type": "Bearer",
                                                       "credentials_file": str(self.webhook_credentials_file)}}
            receiver["webhook_configs"] = [wh]
        doc: dict[str, Any] = {
            "route": {"receiver": "sre", "group_by": self.group_by, "group_wait": self.group_wait,
                      "group_interval": "2s", "repeat_interval": "1h"},
            "receivers": [receiver],
        }
        if self.inhibit_rules:
            doc["inhibit_rules"] = self.inhibit_rules
        return doc

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def start(self) -> None:
        exe = require_binary("alertmanager", "prometheus-alertmanager")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.process = ManagedProcess(
            name="alertmanager",
            cmd=[exe, f"--config.file={self.config_path}", f"--storage.path={self.root / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", f"--web.external-url={self.url}",
                 # Empty: no gossip, so it neither binds :9094 nor waits for peers to settle.
                 "--cluster.listen-address=", "--log.level=warn"],
            log_path=self.log_path,
        ).start()
        self.process.wait_ready(lambda: _http_ok(f"{self.url}/-/ready"))

    def set_webhook(self, url: str, credentials_file: Path | None = None) -> None:
        """Point the default receiver at `url` and reload."""
        self.webhook_url, self.webhook_credentials_file = url, credentials_file
        self.write_config()
        if self.process and self.process.alive():
            import urllib.request

            urllib.request.urlopen(urllib.request.Request(f"{self.url}/-/reload", method="POST"), timeout=10).close()

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def new_prometheus(root: Path, alertmanager_url: str | None) -> Prometheus:
    return Prometheus(root=root, port=free_port(), alertmanager_url=alertmanager_url)


def new_alertmanager(root: Path) -> Alertmanager:
    return Alertmanager(root=root, port=free_port())
