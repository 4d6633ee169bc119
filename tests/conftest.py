"""Shared fixtures: the sandbox (real servers, one per test session) and configs that describe it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sre.config import SreConfig, load_config
from sre.sandbox import Stack
from sre.sandbox.config import write_sandbox_config


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Stack]:
    """The whole local stack, started once per test session (about 1-2 s) and stopped at the end."""
    stack = Stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def sandbox_config_path(sandbox: Stack, tmp_path: Path) -> Path:
    """A fresh sre.yaml for the sandbox with its own state dir (SQLite) and secret files."""
    return write_sandbox_config(sandbox, tmp_path / "state")


@pytest.fixture
def sandbox_config(sandbox_config_path: Path) -> SreConfig:
    return load_config(sandbox_config_path)
