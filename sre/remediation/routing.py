"""Which runbook an alert goes to: `runbooks/<alertname>.md`, read again when the directory changes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sre.remediation.runbook import scan_runbooks
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.remediation.runbook import Runbook

log = get_logger("sre.remediation.routing")

RUNBOOK_RESCAN = 10.0  # seconds between looks at the runbooks directory for changes


class Runbooks:
    """alertname -> Runbook, read again when a file in the directory changes (thread-safe)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._by_alert: dict[str, Runbook] = {}
        self._automated: frozenset[str] = frozenset()
        self._stamp: tuple[float, int] | None = None
        self._looked = 0.0
        self._lock = threading.Lock()

    def _current_stamp(self) -> tuple[float, int]:
        files = list(self.directory.glob("*.md")) if self.directory.is_dir() else []
        return (max((f.stat().st_mtime for f in files), default=0.0), len(files))

    def get(self, alertname: str) -> Runbook | None:
        self.refresh()
        return self._by_alert.get(alertname)

    def unrouted(self, alertname: str) -> str | None:
        """What becomes of a firing alert needing no decision (no_runbook, no_automation), else None."""
        self.refresh()
        if alertname in self._automated:
            return None
        return "no_automation" if alertname in self._by_alert else "no_runbook"

    def names(self) -> tuple[list[str], list[str]]:
        """(alerts whose runbook automates a fix, alerts whose runbook only documents)."""
        self.refresh()
        automated = sorted(n for n, rb in self._by_alert.items() if rb.remediation is not None)
        return automated, sorted(n for n, rb in self._by_alert.items() if rb.remediation is None)

    def refresh(self) -> None:
        now = time.monotonic()
        if self._stamp is not None and now - self._looked <= RUNBOOK_RESCAN:
            return
        with self._lock:
            if self._stamp is not None and now - self._looked <= RUNBOOK_RESCAN:
                return
            stamp = self._current_stamp()
            if stamp != self._stamp:
                by_alert, errors = scan_runbooks(self.directory)
                for e in errors:
                    log.error("runbook skipped: %s", e)
                self._by_alert = by_alert
                self._automated = frozenset(n for n, rb in by_alert.items() if rb.remediation is not None)
                log.info("loaded %d runbook(s) from %s", len(by_alert), self.directory)
            # Set last: a thread taking the fast path above must never see a view half loaded (the
            # webhook would store an automated alert as having no runbook).
            self._looked = now
            self._stamp = stamp


_shared: dict[Path, Runbooks] = {}
_shared_lock = threading.Lock()


def shared_runbooks(directory: Path) -> Runbooks:
    """One Runbooks per directory in the process: the webhook and the worker see the same view."""
    key = directory.resolve()
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Runbooks(directory)
        return _shared[key]
