"""`sre alerts lint` + render over a generated tree of 2,000 rules, against bare `promtool check
rules` on the same rendered files, in the same run.

The tree: 20 rule files x 10 groups x 10 rules (8 alerts and 2 recording rules per group, with
selectors, `for:`, severity, summary and description), one runbook per alert (1,600 Markdown
files with front matter), and one promtool test file per rule file listing a firing and a quiet
case for every alert. Lint loads the tree, renders it (SLO specs expanded, runbook_url added),
runs promtool on the rendered files and makes its own checks (labels, annotations, runbooks,
tests, selectors) meanwhile. It is measured as the library call the CLI makes, after imports;
`sre alerts lint` as a process, and `sre alerts render` to a directory, are shown too.

Goal: lint (render included) within 1.5x the time of bare promtool on the same files.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sre.lint import lint
from sre.rules import promtool
from sre.rules.loader import load_tree
from sre.rules.render import render_files

FILES, GROUPS, ALERTS, RECORDS = 20, 10, 8, 2
RUNS = 11
GOAL = 1.5
BASE_URL = "https://runbooks.example.com"


def generate(root: Path) -> int:
    alerts_dir, runbooks = root / "alerts", root / "runbooks"
    (alerts_dir / "tests").mkdir(parents=True)
    runbooks.mkdir()
    n = 0
    for f in range(FILES):
        lines = ["groups:"]
        tests = [f"rule_files: [../svc{f:02d}.yaml]", "tests:", "  - interval: 1m", "    input_series: []",
                 "    alert_rule_test:"]
        for g in range(GROUPS):
            lines += [f"  - name: svc{f:02d}-g{g}", "    rules:"]
            svc = f"svc{f:02d}g{g}"
            for r in range(RECORDS):
                lines += [f"      - record: job:{svc}_requests:rate{r}m",
                          f'        expr: sum by (job) (rate(http_requests_total{{job="{svc}", code=~"5.."}}[{r + 1}m]))']
                n += 1
            for a in range(ALERTS):
                name = f"Svc{f:02d}G{g}Alert{a}"
                sev = "page" if a % 4 == 0 else "ticket"
                lines += [
                    f"      - alert: {name}",
                    "        expr: |",
                    f'          sum by (job, instance) (rate(http_requests_total{{job="{svc}", code=~"5.."}}[5m]))',
                    f'            / sum by (job, instance) (rate(http_requests_total{{job="{svc}"}}[5m])) > 0.0{a + 1}',
                    "        for: 5m",
                    "        labels:",
                    f"          severity: {sev}",
                    "        annotations:",
                    f'          summary: "{svc} on {{{{ $labels.instance }}}} fails {{{{ $value | humanizePercentage }}}}"',
                    f'          description: "More than {a + 1}% of requests to {svc} failed for 5 minutes."',
                ]
                tests += [f"      - {{eval_time: 10m, alertname: {name}, exp_alerts: []}}"]
                tests += [f"      - {{eval_time: 20m, alertname: {name}, exp_alerts: "
                          f"[{{exp_labels: {{severity: {sev}, job: {svc}, instance: 'a:1'}}}}]}}"]
                (runbooks / f"{name}.md").write_text(
                    f"---\nalert: {name}\nseverity: {sev}\n---\n# {name}\n\n## What it means\n\n"
                    f"Errors on {svc}.\n\n## Diagnose\n\n`rate(http_requests_total{{job=\"{svc}\"}}[5m])`\n")
                n += 1
        (alerts_dir / f"svc{f:02d}.yaml").write_text("\n".join(lines) + "\n")
        (alerts_dir / "tests" / f"svc{f:02d}.yaml").write_text("\n".join(tests) + "\n")
    return n


def ours(root: Path) -> float:
    t0 = time.perf_counter()
    report = lint(root / "alerts", root / "runbooks", BASE_URL)
    elapsed = time.perf_counter() - t0
    if report.findings:
        raise SystemExit(f"the generated tree should lint clean: {report.findings[:3]}")
    return elapsed


def render_to(root: Path, out: Path) -> float:
    t0 = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    for f in render_files(load_tree(root / "alerts"), BASE_URL):
        (out / f.name).write_text(f.text())
    return time.perf_counter() - t0


def bare(paths: list[Path]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([promtool.promtool_path(), "check", "rules", *map(str, paths)], capture_output=True,
                          check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"promtool rejected the generated files: {proc.stderr[:300]!r}")
    return elapsed


def cli(root: Path) -> float:
    exe = Path(sys.executable).with_name("sre")
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), "alerts", "lint", "--alerts-dir", str(root / "alerts"), "--runbooks-dir",
                           str(root / "runbooks")], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "SRE_ALERTS__RUNBOOK_BASE_URL": BASE_URL})
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sre alerts lint failed: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    return elapsed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sre-bench-alerts-") as tmp:
        root = Path(tmp)
        n_rules = generate(root)
        out = root / "rendered"
        t_render = statistics.median(render_to(root, out) for _ in range(3))
        ours(root)  # warm: file cache, promtool binary in memory
        paths = sorted(out.glob("*.yaml"))
        t_ours, t_bare = [], []
        for _ in range(RUNS):  # interleaved, so load on the shared machine hits both alike
            t_bare.append(bare(paths))
            t_ours.append(ours(root))
        t_cli = statistics.median(cli(root) for _ in range(3))
        t_pass = statistics.median(_timed_pass() for _ in range(3))
    m_ours, m_bare = statistics.median(t_ours), statistics.median(t_bare)
    # Each lint run follows its own promtool run: the ratio of a pair sees the same machine load
    # (others share these 2 cores); the median of the pairs is the figure.
    ratio = statistics.median(o / b for o, b in zip(t_ours, t_bare, strict=True))
    print(f"tree: {n_rules} rules ({FILES * GROUPS * ALERTS} alerts, {FILES * GROUPS * RECORDS} recording rules) "
          f"in {FILES} files, {FILES * GROUPS * ALERTS} runbooks, {2 * FILES * GROUPS * ALERTS} test cases")
    print(f"bare promtool check rules (median of {RUNS}): {m_bare * 1000:.0f} ms "
          f"(min {min(t_bare) * 1000:.0f}, max {max(t_bare) * 1000:.0f})")
    print(f"sre alerts lint, in process (median of {RUNS}): {m_ours * 1000:.0f} ms "
          f"(min {min(t_ours) * 1000:.0f}, max {max(t_ours) * 1000:.0f})")
    print(f"render to a directory as YAML, in process (median of 3): {t_render * 1000:.0f} ms")
    print(f"`sre alerts lint` as a process (median of 3): {t_cli * 1000:.0f} ms "
          f"(python -c pass: {t_pass * 1000:.0f} ms)")
    ok = ratio < GOAL
    pairs = [o / b for o, b in zip(t_ours, t_bare, strict=True)]
    print(f"ratio of medians: {m_ours / m_bare:.2f}x; paired ratios from {min(pairs):.2f}x to {max(pairs):.2f}x")
    print(f"goal: lint (render included) < {GOAL}x bare promtool (median of paired ratios): {ratio:.2f}x "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


def _timed_pass() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=False)
    return time.perf_counter() - t0


if __name__ == "__main__":
    raise SystemExit(main())
