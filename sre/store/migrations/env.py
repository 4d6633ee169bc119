"""Alembic environment: always run with a connection handed in by Store.migrate()."""

from __future__ import annotations

from alembic import context

import sre.store.models  # noqa: F401  (every table module, so metadata is whole)
from sre.store.base import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
