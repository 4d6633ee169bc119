"""What to change when an observed drill misses its RTO: which HA setting dominates the write gap,
and values that would meet the objective (pure functions, no I/O).

Patroni replaces a lost leader once its leader key has expired (`ttl` after the last refresh)
and a replica's next HA loop (`loop_wait`) took the key; `retry_timeout` bounds how long a DCS or
PostgreSQL call may hang before the leader demotes itself. Patroni requires
`loop_wait + 2 * retry_timeout <= ttl`. The worst-case detection is `ttl + loop_wait`; promotion
and the path back to writes are measured, and tuning does not shorten them.
"""

from __future__ import annotations

import math
from typing import Any

MARGIN = 1.0  # seconds kept free within the objective for scheduling noise


def patroni(measured: dict[str, Any], settings: dict[str, float], rto_objective: float) -> dict[str, Any] | None:
    """A recommendation for a missed RTO, or None when the objective was met or nothing was measured."""
    gap = measured.get("rto_seconds")
    detection = measured.get("detection_seconds")
    if gap is None or detection is None or gap <= rto_objective or not settings:
        return None
    ttl, loop_wait, retry = settings["ttl"], settings["loop_wait"], settings["retry_timeout"]
    rest = (measured.get("promotion_seconds") or 0.0) + (measured.get("path_back_seconds") or 0.0)
    dominant = "ttl" if ttl >= loop_wait else "loop_wait"
    budget = rto_objective - rest - MARGIN  # what detection may take: ttl + loop_wait at worst
    out: dict[str, Any] = {
        "dominant": dominant, "current": {"ttl": ttl, "loop_wait": loop_wait, "retry_timeout": retry},
        "detection_seconds": detection, "other_seconds": round(rest, 3),
        "why": f"detection took {detection:.1f} s of the {gap:.1f} s write gap; it lasts up to ttl + loop_wait "
               f"({ttl:g} + {loop_wait:g} s), and {dominant} is the larger part",
    }
    # Smallest settings Patroni accepts: loop_wait >= 1, retry_timeout >= 1 (so ttl >= 3).
    if budget < 4:
        out["suggested"] = None
        out["message"] = (f"no Patroni setting meets RTO {rto_objective:g} s: promotion and the path back already "
                          f"take {rest:.1f} s; shorten those (connection pool retry, DNS TTL) or relax the objective")
        return out
    new_loop = max(1, min(int(loop_wait), math.floor(budget / 5)))
    new_ttl = max(new_loop + 2, math.floor(budget - new_loop))
    new_retry = max(1, min(int(retry), math.floor((new_ttl - new_loop) / 2)))
    out["suggested"] = {"ttl": new_ttl, "loop_wait": new_loop, "retry_timeout": new_retry}
    out["message"] = (f"set ttl: {new_ttl}, loop_wait: {new_loop}, retry_timeout: {new_retry} "
                      f"(patronictl edit-config): detection then lasts at most {new_ttl + new_loop} s, "
                      f"within RTO {rto_objective:g} s with {rest:.1f} s of promotion and path back; shorter "
                      "timeouts also demote a leader sooner on a slow DCS")
    return out
