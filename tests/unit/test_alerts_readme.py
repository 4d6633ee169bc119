"""alerts/README.md names, under each group's heading, every metric that group's rules read."""

from __future__ import annotations

import re
from pathlib import Path

from sre.rules.loader import load_tree
from sre.rules.promql import selectors

ROOT = Path(__file__).parents[2]


def _sections(text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for block in re.split(r"^### ", text, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        names = set(re.findall(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", body))
        for group in re.findall(r"^([a-z0-9-]+)", heading.replace(", ", "\n"), flags=re.M):
            out[group] = names
    return out


def test_every_group_lists_the_metrics_it_assumes() -> None:
    tree = load_tree(ROOT / "alerts")
    recorded = tree.records()
    sections = _sections((ROOT / "alerts" / "README.md").read_text())
    missing = []
    for f in tree.files:
        for g in f.groups:
            listed = sections.get(g.name)
            assert listed is not None, f"alerts/README.md has no section for group {g.name}"
            for rule in g.rules:
                for sel in selectors(rule.expr):
                    name = sel.metric()
                    if name and name not in recorded and name not in listed:
                        missing.append(f"{g.name}: {name}")
    assert missing == []
