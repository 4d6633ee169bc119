"""Every table module, imported together so Base.metadata is whole (migrations, tests)."""

from sre.store import (
    annotations,  # noqa: F401
    drills,  # noqa: F401
    leader,  # noqa: F401
    maintenance,  # noqa: F401
    remediation,  # noqa: F401
    runs,  # noqa: F401
)
