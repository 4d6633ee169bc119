"""moto's server: a real HTTP server speaking the S3 and Route 53 APIs."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from sre.local.procs import ManagedProcess, free_port


def _ready(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as resp:
        return bool(resp.status == 200)


@dataclass
class Moto:
    root: Path
    port: int
    process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, root: Path) -> Moto:
        m = cls(root, free_port())
        root.mkdir(parents=True, exist_ok=True)
        # A process of its own (not ThreadedMotoServer) so it is stopped by PID like every part.
        m.process = ManagedProcess(
            name="moto",
            cmd=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(m.port)],
            log_path=root / "moto.log",
            env={"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"},
        ).start()
        m.process.wait_ready(lambda: _ready(m.url), timeout=30)
        return m

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"),
                               timeout=5).close()

    def stop(self) -> None:
        if self.process:
            self.process.stop()
