"""docs/configuration.md's key reference is generated from the model: it must be current."""

from __future__ import annotations

from pathlib import Path

from sre.config_docs import render_reference

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_key_reference_is_current() -> None:
    text = DOC.read_text()
    assert render_reference() in text, "docs/configuration.md is stale: run scripts/config-docs"


def test_reference_names_every_section() -> None:
    reference = render_reference()
    for key in ("postgres.clusters.<name>.replicas[].dsn", "backups.<name>.bucket", "webhook.token",
                "remediation.breaker.max_actions", "dns.zone", "jobs.<name>.cron"):
        assert f"`{key}`" in reference, key
