"""The exceptions the CLI turns into one clear line and an exit code (no traceback)."""

from __future__ import annotations


class SreError(Exception):
    """An expected failure a person can act on. `exit_code` follows the CLI's convention."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(SreError):
    """Bad input or configuration: exit 2."""

    exit_code = 2


class UnreachableError(SreError):
    """An outside system did not answer (or refused our credentials): exit 2."""

    exit_code = 2


class CheckFailed(SreError):
    """A check failed or a plan has changes where asked: exit 1."""

    exit_code = 1
