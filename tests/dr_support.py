"""What the DR readiness tests share: adding sections to a drill env's sre.yaml, and a steady
write load on a primary."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import yaml

from sre.config import SreConfig
from sre.local.postgres import PgServer
from tests.drill_env import DrillEnv


def configure(env: DrillEnv, **sections: Any) -> SreConfig:
    """Add sections to the env's sre.yaml (the drill env writes the PostgreSQL pair and DNS)."""
    data = yaml.safe_load(env.config_path.read_text())
    data.update(sections)
    env.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return env.config()


@contextmanager
def writes(node: PgServer, every: float = 0.05) -> Iterator[None]:
    """A steady writer on the primary (one committed row per interval) while the block runs."""
    stop = threading.Event()
    node.sql("CREATE TABLE IF NOT EXISTS dr_load (n bigserial PRIMARY KEY, at timestamptz DEFAULT now())")

    def run() -> None:
        try:
            with psycopg.connect(node.dsn, autocommit=True) as conn:
                while not stop.is_set():
                    conn.execute("INSERT INTO dr_load DEFAULT VALUES")
                    stop.wait(every)
        except psycopg.OperationalError:
            pass  # the primary went away (an unplanned drill stops it): the load ends with it

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(10)
