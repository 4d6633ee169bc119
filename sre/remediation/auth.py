"""Who may post alerts: a bearer token or basic credentials from config, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sre.config import WebhookConfig

# Secrets are read again after this long, so a rotated Kubernetes Secret takes effect without a restart.
REREAD_SECONDS = 60.0


class WebhookAuth:
    """`check(header)` -> True when the Authorization header carries the configured credentials.

    With no credentials configured it refuses everything unless `insecure` (the service's
    --insecure-webhook flag) says to accept unauthenticated alerts.
    """

    def __init__(self, cfg: WebhookConfig | None, *, insecure: bool = False) -> None:
        self.cfg = cfg
        self.mode = cfg.auth if cfg is not None else "none"
        self.insecure = insecure
        self._expected: bytes | None = None
        self._read_at = 0.0

    @property
    def challenge(self) -> str:
        return 'Basic realm="sre"' if self.mode == "basic" else 'Bearer realm="sre"'

    def _credentials(self) -> bytes:
        now = time.monotonic()
        if self._expected is None or now - self._read_at > REREAD_SECONDS:
            assert self.cfg is not None
            if self.mode == "bearer":
                assert self.cfg.token is not None
                self._expected = self.cfg.token.resolve().get_secret_value().encode()
            else:
                assert self.cfg.password is not None and self.cfg.username is not None
                password = self.cfg.password.resolve().get_secret_value()
                self._expected = f"{self.cfg.username}:{password}".encode()
            self._read_at = now
        return self._expected

    def check(self, header: str | None) -> bool:
        if self.mode == "none":
            return self.insecure
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if self.mode == "bearer":
            if scheme != "bearer":
                return False
            given = value.encode()
        else:
            if scheme != "basic":
                return False
            try:
                given = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
        return hmac.compare_digest(given, self._credentials())
