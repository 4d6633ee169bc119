"""Fixtures shared by several integration test modules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sre.sandbox import Stack
from tests.drill_env import DrillEnv, EnvFactory, start_drill_env


@pytest.fixture
def drill_env(sandbox: Stack) -> Iterator[EnvFactory]:
    """Makes drill environments (an own PostgreSQL pair and Route 53 zone each); stops them after."""
    envs: list[DrillEnv] = []

    def make(**kwargs: Any) -> DrillEnv:
        env = start_drill_env(sandbox, **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.stop()
