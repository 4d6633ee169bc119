"""The local stack of real servers that `sre up` and the tests share (DESIGN.md)."""

from sre.sandbox.stack import ALL, Stack

__all__ = ["ALL", "Stack"]
