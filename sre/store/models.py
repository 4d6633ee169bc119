"""Every table module, imported together so Base.metadata is whole (migrations, tests)."""

from sre.store import (
    remediation,  # noqa: F401
    runs,  # noqa: F401
)
