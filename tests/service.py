"""Running `sre serve` as a real process for tests, stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from sre.local.procs import free_port, wait_until

SRE = str(Path(sys.executable).with_name("sre"))


class ServiceProcess:
    def __init__(self, config: Path, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.config, self.port, self.proc, self.log = config, port, proc, log
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = 30) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"sre serve exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200

        wait_until(up, timeout=timeout, what="sre serve answering /healthz")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout)


@contextmanager
def running_service(config: Path, *extra: str, port: int | None = None,
                    env: dict[str, str] | None = None) -> Iterator[ServiceProcess]:
    port = port or free_port()
    log = config.parent / f"serve-{port}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([SRE, "serve", "--config", str(config), "--port", str(port), *extra],
                                stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    svc = ServiceProcess(config, port, proc, log)
    try:
        svc.wait_ready()
        yield svc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
