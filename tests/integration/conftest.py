"""Fixtures shared by several integration test modules."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sre.sandbox import Stack
from sre.store import Store
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


@pytest.fixture
def pg_store(sandbox: Stack) -> Iterator[Store]:
    """A state store in a fresh database of the sandbox PostgreSQL, dropped after the test."""
    assert sandbox.postgres
    name = f"sre_state_{uuid.uuid4().hex[:8]}"
    sandbox.postgres.primary.sql(f"CREATE DATABASE {name}")
    store = Store(sandbox.postgres.primary.url(database=name))
    yield store
    store.dispose()
    sandbox.postgres.primary.sql(f"DROP DATABASE {name} WITH (FORCE)")
