"""Content hashes: 12 hex characters of SHA-256 over an object's canonical JSON (sorted keys, no
whitespace), so the same object always hashes the same. Rendered rules, dashboards and every
provisioned object carry one; a plan with nothing changed compares hashes and needs no GETs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

HASH_LEN = 12


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(obj: Any) -> str:
    """12 hex characters of SHA-256 over the canonical JSON of `obj`."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:HASH_LEN]
