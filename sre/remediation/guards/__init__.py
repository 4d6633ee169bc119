"""Remediation guards: each one small class in its own file, answering "may this action run now?".

A guard reads the store and the config, never writes, and returns None (pass) or the sentence
saying why it stops the action; the engine records that sentence under the guard's name, and
`sre remediation replay` prints it without recording anything. A new guard is one new file and
one entry in ADMISSION or UNDER_LOCK below; nothing else changes.

The engine's order (replay follows the same):
  resolved, duplicate            about the alert itself (engine.py)
  ADMISSION                      cheap checks that take nothing: a stop here holds no lock
  breaker                        the global circuit breaker (may open it: breaker.py)
  lock                           takes the target's lock (engine.py)
  UNDER_LOCK                     checks of the target's history, consistent while the lock is held
"""

from __future__ import annotations

from sre.remediation.guards.allowlist import Allowlist
from sre.remediation.guards.base import Guard, Proposal
from sre.remediation.guards.cooldown import Cooldown
from sre.remediation.guards.drill import Drill
from sre.remediation.guards.max_per_day import MaxPerDay
from sre.remediation.guards.paused import Paused

__all__ = ["ADMISSION", "UNDER_LOCK", "Guard", "Proposal"]

# Checked before the breaker and the target lock, in order.
ADMISSION: tuple[Guard, ...] = (Allowlist(), Paused(), Drill())
# Checked while the target's lock is held, in order.
UNDER_LOCK: tuple[Guard, ...] = (Cooldown(), MaxPerDay())
