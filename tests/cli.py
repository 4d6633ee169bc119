"""Running the real `sre` command in a subprocess, as a person or CI would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRE = str(Path(sys.executable).with_name("sre"))


def sre(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "SRE_CONFIG"}
    full_env.update(env or {})
    return subprocess.run([SRE, *args], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd,
                          check=False)
