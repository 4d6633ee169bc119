"""The values that must never be written anywhere: every resolved secret is registered here.

A module of its own, with no imports, so the config layer registers each secret the moment it
resolves one (`SecretRef.resolve`) without pulling logging or metrics into every CLI start-up.
"""

from __future__ import annotations

import json

MASK = "***"
# Shorter values would mask ordinary words (the sandbox's AWS key is "sandbox"); tokens the
# service checks are refused under 16 bytes, and real keys, passwords and DSNs are longer.
MIN_REDACTED = 8

_secrets: set[str] = set()
_forms: list[str] = []  # each secret and its JSON-escaped form, longest first


def register(value: str) -> None:
    """Mask `value` in every log line from now on."""
    if len(value) < MIN_REDACTED or value in _secrets:
        return
    _secrets.add(value)
    forms = set(_forms) | {value, json.dumps(value)[1:-1]}
    _forms[:] = sorted(forms, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every registered secret (raw or JSON-escaped) replaced by ***."""
    for form in _forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def registered() -> int:
    return len(_secrets)
