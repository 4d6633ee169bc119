"""Loading the rules tree: `alerts/*.yaml` rule groups, `alerts/slos/*.yaml` SLO specs (tests,
`alerts/tests/*.yaml`, are read by sre.rules.unittests).

Loading parses every file once (libyaml when present) and never raises for bad content: each
problem becomes a `Finding` naming file, group and rule, so `sre alerts lint` can report them
all. SLO specs are expanded into their generated groups here, so every later step (lint, render,
test, apply) sees one list of rule files.
"""

from __future__ import annotations

from pathlib import Path

from sre.rules.slo_formats import load_slo_dir
from sre.rules.tree import (
    RULE_SUFFIXES,
    SPECIAL_DIRS,
    Finding,
    RuleFile,
    Tree,
    display_path,
    out_name,
    parse_groups,
    read_yaml,
)


def rule_sources(root: Path) -> list[Path]:
    """The hand-written rule files under `root` (not tests/, not slos/)."""
    out: list[Path] = []
    if not root.is_dir():
        return out
    for path in root.rglob("*"):
        if path.suffix not in RULE_SUFFIXES or not path.is_file():
            continue
        if path.relative_to(root).parts[0] in SPECIAL_DIRS:
            continue
        out.append(path)
    return sorted(out)


def load_tree(root: str | Path, *, slo_severity: dict[str, str] | None = None) -> Tree:
    """Read every rule file and SLO spec under `root` (tests are read by sre.rules.unittests).

    `slo_severity` maps the SLO alerts' kinds (page, ticket) to the severity label values they
    carry (config alerts.slo_severity; default: the same names).
    """
    root = Path(root)
    tree = Tree(root=root)
    if not root.is_dir():
        tree.findings.append(Finding("structure", display_path(root), "alerts directory not found"))
        return tree
    for path in rule_sources(root):
        rel = path.relative_to(root).as_posix()
        shown = display_path(path)
        data = read_yaml(path, shown, tree.findings)
        groups = parse_groups(data, shown, tree.findings)
        tree.files.append(RuleFile(rel, out_name(rel), groups))
    slo_dir = root / "slos"
    if slo_dir.is_dir():
        files, specs = load_slo_dir(root, slo_dir, tree.findings, severity=slo_severity)
        tree.files.extend(files)
        tree.slo_specs.extend(specs)
    names = [f.out_name for f in tree.files]
    for f in tree.files:
        if names.count(f.out_name) > 1:
            tree.findings.append(Finding("structure", display_path(root / f.source), f"renders to {f.out_name}, as another file does: "
                                                                  "rename one"))
    return tree
