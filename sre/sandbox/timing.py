"""Test-time timings: the shipped rules and runbooks, made to act in seconds in the sandbox.

The shipped files are never edited. What is shortened is said here, once, and applied to the
rendered copies loaded into the sandbox's Prometheus (and to a copy of the runbooks the sandbox's
service reads): every alert's `for:`, and named literals of named alerts (a threshold that is a
duration, an `offset`). A literal that is not found fails loudly, so a change to a shipped rule
cannot silently leave a test watching a rule that no longer exists in that form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre.hashing import content_hash
from sre.rules.render import RenderedFile


@dataclass(frozen=True)
class Timing:
    for_: str | None = "0s"  # every alert's `for:` (None: as shipped)
    rules: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # alert -> {literal: replacement}
    runbooks: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # alert -> {literal: replacement}


# The sandbox's fault tests and the closed-loop benchmark: thresholds that are durations (300 s of
# idle transaction, 60 s of lag, 300 s since a job's last success) become a few seconds; the
# connection-drop comparison looks 10 s back instead of 15 m. Ratios, byte counts of Redis
# memory and certificate lifetimes stay as shipped: the faults reach them for real.
SANDBOX = Timing(
    for_="0s",
    rules={
        "PostgresIdleInTransaction": {"> 300": "> 2"},
        "PostgresLongRunningTransaction": {"> 300": "> 2"},
        "ReplicaLagHigh": {"> 60": "> 2"},
        "ReplicaLagBytesHigh": {"> 64 * 1024 * 1024": "> 1024"},
        "SreJobStale": {'exported_job="replicas.check"} > 300': 'exported_job="replicas.check"} > 4'},
        "WebsocketConnectionsDropped": {"offset 15m": "offset 10s"},
        # The p99 over 10 s: a fixed latency leaves the window (and the alert resolves) in seconds.
        "WebsocketDeliveryLatencyHigh": {"[5m]": "[10s]"},
        # "No Alertmanager for the last 5 minutes" becomes the last 5 seconds.
        "PrometheusNotConnectedToAlertmanagers": {"[5m]": "[5s]"},
    },
    runbooks={
        "PostgresIdleInTransaction": {"idle_for: 5m": "idle_for: 2s", "< 300": "< 2", "within: 3m": "within: 30s"},
        "PostgresLongRunningTransaction": {"older_than: 5m": "older_than: 2s", "< 300": "< 2",
                                           "within: 3m": "within: 30s"},
        # Its target (a node) is the idle-transaction runbook's too: no cooldown between them here.
        "PostgresConnectionsNearMax": {"idle_for: 10m": "idle_for: 2s", "cooldown: 15m": "cooldown: 0s",
                                       "within: 5m": "within: 30s"},
        "BackupOlderThanRpo": {"within: 75m": "within: 20s"},
        "ApiEventLoopLagHigh": {"within: 15m": "within: 30s"},
        "WebsocketDeliveryLatencyHigh": {"[5m]": "[10s]", "within: 20m": "within: 30s"},
        "BackupVerificationFailing": {"within: 1h": "within: 4s"},
        # Both rerun replicas.check, whose link faults come and go several times in one test run:
        # no cooldown and no daily cap between them here.
        "ReplicationCheckFailing": {"within: 5m": "within: 60s", "cooldown: 15m": "cooldown: 0s",
                                    "max_per_day: 4": "max_per_day: 50"},
        # Verified by a success in the last 4 s (the rule's threshold here), not in the last 30 minutes.
        "SreJobStale": {"< 1800": "< 4", "within: 30m": "within: 60s", "cooldown: 1h": "cooldown: 0s",
                        "max_per_day: 3": "max_per_day: 50"},
    },
)


def _replace_all(text: str, changes: Mapping[str, str], where: str) -> str:
    for old, new in changes.items():
        if old not in text:
            raise ValueError(f"{where}: {old!r} not found (the shipped text changed; update sre/sandbox/timing.py)")
        text = text.replace(old, new)
    return text


def fast_rule_files(files: list[RenderedFile], timing: Timing) -> list[RenderedFile]:
    """Copies of the rendered files with `timing` applied (content hashes recomputed)."""
    pending = dict(timing.rules)
    out = []
    for f in files:
        groups = []
        for group in f.data["groups"]:
            rules: list[dict[str, Any]] = []
            for rule in group.get("rules") or []:
                rule = dict(rule)
                name = rule.get("alert")
                if name is not None:
                    if timing.for_ is not None:
                        rule["for"] = timing.for_
                    if name in pending:
                        rule["expr"] = _replace_all(str(rule["expr"]), pending.pop(name), f"rule {name}")
                rules.append(rule)
            groups.append({**group, "rules": rules})
        data = {"groups": groups}
        out.append(RenderedFile(f.name, f.source, data, content_hash(data)))
    if pending:
        raise ValueError(f"no such alert in the rules: {sorted(pending)}")
    return out


def fast_runbooks(src: Path, dst: Path, timing: Timing) -> Path:
    """A copy of the runbooks directory `src` in `dst`, with `timing.runbooks` applied."""
    dst.mkdir(parents=True, exist_ok=True)
    pending = dict(timing.runbooks)
    for path in sorted(src.iterdir()):
        if path.is_dir():
            continue
        text = path.read_text()
        match = re.search(r"^alert:\s*(\S+)", text, re.M)
        name = match.group(1) if match else None
        if name in pending:
            text = _replace_all(text, pending.pop(name), f"runbook {path.name}")
        (dst / path.name).write_text(text)
    if pending:
        raise ValueError(f"no runbook for: {sorted(pending)}")
    return dst
