"""Every table module, imported together so Base.metadata is whole (migrations, tests)."""

from sre.store import runs  # noqa: F401
