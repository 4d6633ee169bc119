"""The service's own state (SQLAlchemy 2): SQLite by default, PostgreSQL for several replicas.

Each domain keeps its tables in its own module here (runs.py, checks.py, ...), all on one
`Base`; the schema is owned by Alembic migrations under migrations/versions, applied on start.
"""

from sre.store.db import Store, open_store

__all__ = ["Store", "open_store"]
