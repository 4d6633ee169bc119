"""Runbook front matter: loaded for the remediation worker, refused with file and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from sre.remediation.runbook import (
    RunbookError,
    TemplateError,
    load_runbook,
    load_runbooks,
    render_template,
)

ROOT = Path(__file__).parents[2]


def _write(tmp_path: Path, name: str, front: str, body: str = "# Title\n") -> Path:
    p = tmp_path / f"{name}.md"
    p.write_text(f"---\n{front}---\n{body}")
    return p


def test_every_shipped_runbook_loads_and_automation_is_where_it_is_safe() -> None:
    books = load_runbooks(ROOT / "runbooks")
    assert len(books) >= 40
    automated = {name: rb.remediation.action for name, rb in books.items() if rb.remediation is not None
                 and rb.remediation.action != "notify"}
    assert automated == {"WebsocketGatewayMemoryHigh": "kubernetes.rollout_restart",
                         "PostgresLongRunningTransaction": "postgres.cancel_long_queries",
                         "PostgresIdleInTransaction": "postgres.terminate_idle_in_transaction",
                         "PostgresConnectionsNearMax": "postgres.terminate_idle_in_transaction",
                         "ApiCpuSaturated": "kubernetes.scale", "ApiEventLoopLagHigh": "kubernetes.scale",
                         "WebsocketDeliveryLatencyHigh": "kubernetes.scale",
                         "BackupOlderThanRpo": "backup.take", "SreJobStale": "job.run",
                         "ReplicationCheckFailing": "job.run", "BackupVerificationFailing": "job.run"}
    # Every one of them says why it is safe (lint checks the section and the runbook tests).
    assert all("## Why this is safe to automate" in books[name].body for name in automated)
    ws = books["WebsocketGatewayMemoryHigh"].remediation
    assert ws is not None and ws.guards.only_namespaces == ["messaging"] and ws.guards.cooldown == 1800
    done = ws.render({"namespace": "messaging", "deployment": "websocket-gateway", "severity": "ticket"})
    assert done.target == {"namespace": "messaging", "deployment": "websocket-gateway"}
    assert done.verify_query is not None and 'namespace="messaging"' in done.verify_query
    assert done.verify_within == 600
    assert books["WebsocketGatewayMemoryHigh"].title == "WebsocketGatewayMemoryHigh"


def test_templates_fail_loudly_on_a_missing_label() -> None:
    assert render_template("{{ labels.a }}-{{annotations.b}}", {"a": "x"}, {"b": "y"}) == "x-y"
    with pytest.raises(TemplateError, match="no label 'pod'"):
        render_template("{{ labels.pod }}", {"namespace": "messaging"})


@pytest.mark.parametrize(("front", "expected"), [
    ("alert: A\nseverity: warning\n", "severity: Input should be 'page', 'ticket' or 'info'"),
    ("alert: A\nseverity: page\nextra: 1\n", "extra: unknown key"),
    ("alert: A\nseverity: page\nremediation:\n  action: kubernetes.reboot_node\n",
     "remediation.action: unknown action 'kubernetes.reboot_node'"),
    ("alert: A\nseverity: page\nremediation:\n  action: kubernetes.rollout_restart\n"
     "  target: {namespace: messaging}\n  guards: {only_namespaces: [messaging]}\n  verify: {query: up}\n",
     "remediation: target of kubernetes.rollout_restart needs deployment"),
    ("alert: A\nseverity: page\nremediation:\n  action: kubernetes.delete_pod\n"
     "  target: {namespace: messaging, pod: '{{ labels.pod }}'}\n  verify: {query: up}\n",
     "needs guards.only_namespaces"),
    ("alert: A\nseverity: page\nremediation:\n  action: postgres.cancel_long_queries\n"
     "  target: {cluster: main, node: east1}\n  guards: {only_clusters: [main]}\n",
     "changes a system: give verify"),
    ("alert: A\nseverity: page\nremediation:\n  action: notify\n  params: {message: '{{ alert.name }}'}\n",
     "only labels.<name> and annotations.<name> are known"),
    ("alert: A\nseverity: page\nremediation:\n  action: notify\n  guards: {max_per_day: 0}\n",
     "remediation.guards.max_per_day: Input should be greater than or equal to 1"),
    ("alert: [A\n", "line 3: not valid YAML"),
])
def test_bad_front_matter_names_file_key_and_expectation(tmp_path: Path, front: str, expected: str) -> None:
    path = _write(tmp_path, "A", front)
    with pytest.raises(RunbookError) as exc:
        load_runbook(path)
    assert str(exc.value).startswith(f"{path}: ")
    assert any(expected in p for p in exc.value.problems), exc.value.problems


def test_load_runbooks_reports_every_bad_file(tmp_path: Path) -> None:
    _write(tmp_path, "Good", "alert: Good\nseverity: info\n")
    _write(tmp_path, "Bad", "alert: Bad\nseverity: loud\n")
    _write(tmp_path, "Wrong", "alert: Other\nseverity: info\n")
    (tmp_path / "README.md").write_text("# not a runbook\n")
    with pytest.raises(RunbookError) as exc:
        load_runbooks(tmp_path)
    message = str(exc.value)
    assert "2 bad runbook(s)" in message and "Bad.md: severity" in message and "rename it to Other.md" in message
