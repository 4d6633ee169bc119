"""`sre up` as a person runs it: ready, answering, and gone without a trace on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sre.local.procs import free_port, wait_until

pytestmark = pytest.mark.slow
SRE = str(Path(sys.executable).with_name("sre"))


def test_sre_up_runs_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "up.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([SRE, "up", "--port", str(port), "--state-dir", str(tmp_path / "state")],
                                stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
                   timeout=180, interval=0.2, what="sre up answering /healthz")
        text = log.read_text()
        assert "postgresql primary" in text and "alertmanager" in text and "Ctrl-C" in text
        pids = [int(p) for p in re.findall(r"│\s*(\d+)\s*│", text)]
        assert len(pids) >= 7, text
        assert (tmp_path / "state" / "sre.yaml").exists()
        # The primary archives with pgBackRest and a restore to a point in time was proven at start.
        assert "stunnel (pgBackRest S3" in text  # the table wraps long cells at the terminal's width
        assert re.search(r"backup main-pitr: pgBackRest stanza main .*all checks pass", text, re.S), text[-3000:]
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "no process left behind" in log.read_text()
