"""What the DR readiness tests share: adding sections to a drill env's sre.yaml, and a steady
write load on a primary."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from sre.config import SreConfig
from sre.local.postgres import PgServer
from sre.local.procs import ManagedProcess
from tests.drill_env import DrillEnv


def configure(env: DrillEnv, **sections: Any) -> SreConfig:
    """Add sections to the env's sre.yaml (the drill env writes the PostgreSQL pair and DNS)."""
    data = yaml.safe_load(env.config_path.read_text())
    data.update(sections)
    env.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return env.config()


# The writer is a process of its own: a thread here would share the GIL with the drill under test,
# and a stall of the writer longer than the WAN's transit lets the replica catch up at the moment
# the drill samples its estimate.
_WRITER = """
import sys, time, psycopg
dsn, every = sys.argv[1], float(sys.argv[2])
try:
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            conn.execute("INSERT INTO dr_load DEFAULT VALUES")
            time.sleep(every)  # the load's pace, not a wait for anything
except psycopg.OperationalError:
    pass  # the primary went away (an unplanned drill stops it): the load ends with it
"""


@contextmanager
def writes(node: PgServer, every: float = 0.05) -> Iterator[None]:
    """A steady writer on the primary (one committed row per interval) while the block runs."""
    node.sql("CREATE TABLE IF NOT EXISTS dr_load (n bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
    with tempfile.TemporaryDirectory(prefix="sre-dr-load-") as tmp:
        writer = ManagedProcess(name="dr-load", cmd=[sys.executable, "-c", _WRITER, node.dsn, str(every)],
                                log_path=Path(tmp) / "writer.log").start()
        try:
            yield
        finally:
            writer.stop(timeout=10)
