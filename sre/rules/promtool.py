"""promtool, the judge of rule syntax and unit tests: one process per call, never one per rule.

`start_check()` returns at once, so lint runs its own checks while promtool works on the other
core; `PromtoolRun.wait()` collects the result. Its messages are mapped back from the rendered
file to the source under `alerts/`, with group, rule and promtool's own words.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sre.errors import UsageError
from sre.rules.tree import Finding

PROMTOOL_ENV = "SRE_PROMTOOL"
_RULE_MSG = re.compile(r'^(?:\d+:\d+: )?group "(?P<group>[^"]*)", rule (?P<index>\d+), "(?P<name>[^"]*)": (?P<msg>.*)$',
                       re.S)


def promtool_path() -> str:
    exe = os.environ.get(PROMTOOL_ENV) or shutil.which("promtool")
    if not exe:
        raise UsageError("promtool not found on PATH",
                         hint=f"install the Debian package prometheus (scripts/bootstrap) or set {PROMTOOL_ENV}")
    return exe


@dataclass
class PromtoolRun:
    proc: subprocess.Popen[str]

    def wait(self, timeout: float = 300) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def start(args: list[str], cwd: Path | None = None) -> PromtoolRun:
    proc = subprocess.Popen([promtool_path(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd)
    return PromtoolRun(proc)


def start_check(paths: list[Path]) -> PromtoolRun:
    return start(["check", "rules", *[str(p) for p in paths]])


def error_lines(stderr: str, paths: list[Path]) -> list[tuple[Path, str]]:
    """(file, message) for each error promtool printed; continuation lines join their message."""
    by_prefix = sorted(((f"{p}: ", p) for p in paths), key=lambda x: -len(x[0]))
    out: list[tuple[Path, str]] = []
    for line in stderr.splitlines():
        if not line.strip() or line.strip() == "FAILED:":
            continue
        for prefix, path in by_prefix:
            if line.startswith(prefix):
                out.append((path, line[len(prefix):]))
                break
        else:
            if out:
                out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
            else:
                out.append((Path("?"), line.strip()))
    seen: set[tuple[Path, str]] = set()
    return [e for e in out if not (e in seen or seen.add(e))]  # type: ignore[func-returns-value]


def check_findings(stderr: str, sources: dict[Path, str]) -> list[Finding]:
    """promtool check-rules errors as findings on the source files (`sources`: rendered path -> source)."""
    findings = []
    for path, msg in error_lines(stderr, list(sources)):
        source = sources.get(path, str(path))
        m = _RULE_MSG.match(msg)
        if m:
            findings.append(Finding("promtool", source, m.group("msg"), m.group("group"), m.group("name")))
        else:
            findings.append(Finding("promtool", source, msg))
    return findings
