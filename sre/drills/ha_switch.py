"""One switch of the primary through an HA layer (drills.ha.backend patroni or kubernetes).

Orchestrated, planned: the backend switches (Patroni `POST /switchover`), the drill then moves
the DNS record, scales and verifies as with the local backend.
Orchestrated, unplanned (Patroni): Patroni is held still (maintenance mode) so that it neither
restarts the lost PostgreSQL nor races the drill; the primary is lost (its fault command); the
drill asks for the failover (`POST /failover`); maintenance mode is cleared (also by the undo,
whatever stopped the drill). Patroni still waits for the lost leader's key to expire (`ttl`).
Observed: the drill only loses the primary and watches the HA layer recover; the write gap is
split into detection (until the HA layer no longer names the old primary), promotion (until the
new primary accepted its first write, as the split-brain probe saw it) and the path back (until
the application's canary wrote through DNS again). With nothing recovered within
`objectives.rto` x `drills.ha.stop_after`, the drill stops, restores the lost node and fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sre.drills.ha.base import writable_now
from sre.drills.ha.patroni import PatroniControl
from sre.drills.steps import NotUndone, Step

if TYPE_CHECKING:
    from sre.drills.context import Switch
    from sre.drills.failover import FailoverDrill
    from sre.drills.nodes import Member

Detail = dict[str, Any]


def plan(backend: str, kind: str, mode: str, old: Member, new: Member, record: str, scale: str,
         prefix: str) -> list[dict[str, str]]:
    """The steps of one switch, for the dry run and for the steps' titles."""
    via = {"patroni": "Patroni", "kubernetes": "the HA layer in Kubernetes"}.get(backend, backend)
    lose = {"patroni": f"lose {old.name}: its fault command stops Patroni and PostgreSQL as a lost machine would",
            "kubernetes": f"lose {old.name}: delete its pod (preconditions: uid, resourceVersion), or scale its "
                          "StatefulSet to zero"}.get(backend, f"lose {old.name}")
    restore = f"bring {old.name} back ({via} decides its role)"
    if kind == "observed":
        head = [{"step": prefix + "lose", "title": lose, "undo": restore},
                {"step": prefix + "recover", "title": f"watch {via} recover: detection (the old primary no longer "
                 f"leads), promotion ({new.name} accepts writes); stop at the RTO x stop_after", "undo": ""}]
    elif mode == "unplanned":
        head = [{"step": prefix + "hold", "title": "Patroni maintenance mode (PATCH /config pause): it neither "
                 "restarts the lost server nor races the drill", "undo": "clear maintenance mode"},
                {"step": prefix + "lose", "title": lose, "undo": restore},
                {"step": prefix + "failover", "title": f"POST /failover candidate={new.name} (waits for the lost "
                 "leader's key to expire: ttl)", "undo": f"switch back to {old.name} once it is back"},
                {"step": prefix + "release", "title": "clear maintenance mode", "undo": ""}]
    else:
        head = [{"step": prefix + "switchover", "title": f"POST /switchover leader={old.name} candidate={new.name}; "
                 f"wait until {new.name} accepts writes", "undo": f"switch back to {old.name}"}]
    return [*head,
            {"step": prefix + "dns", "title": f"UPSERT {record} -> {new.target} ({new.name}), wait INSYNC",
             "undo": f"UPSERT {record} back to its previous value, wait INSYNC"},
            {"step": prefix + "scale", "title": f"scale {new.region} deployments to production size: {scale}",
             "undo": "scale them back to their previous replicas"},
            {"step": prefix + "verify", "title": f"canary writes land on {new.name} through DNS; health endpoints "
             "answer", "undo": ""},
            {"step": prefix + "rejoin", "title": f"{via} rejoins {old.name} as a standby of {new.name}", "undo": ""}]


def steps(d: FailoverDrill, sw: Switch, phase: str, kind: str) -> list[Step]:
    p = "" if phase == "failover" else "failback."
    scale = ", ".join(f"{k}={v}" for k, v in d.context.deployments(sw.new.region).items()) or "nothing configured"
    info = {s["step"]: s for s in plan(d.ha.name, kind, sw.mode, sw.old, sw.new, d.record, scale, p)}

    def st(name: str, run: Callable[[], Detail | None], undo: Callable[[], Detail | None] | None = None) -> Step:
        return d.step(p + name, info[p + name]["title"], run, undo, info[p + name]["undo"], phase)

    tail = [st("dns", lambda: d.switch_dns(sw), lambda: d.undo_dns(sw)),
            st("scale", lambda: d.scale(sw), lambda: d.undo_scale(sw)),
            st("verify", lambda: verify(d, sw, kind))]
    if kind == "observed":
        return [st("lose", lambda: lose(d, sw), lambda: d.ha.restore(sw.old)),
                st("recover", lambda: recover(d, sw)), *tail]
    if sw.mode == "unplanned":
        return [st("hold", d.ha.hold, d.ha.release),
                st("lose", lambda: lose(d, sw), lambda: d.ha.restore(sw.old)),
                st("failover", lambda: failover(d, sw), lambda: undo_switch(d, sw)),
                st("release", d.ha.release), *tail]
    return [st("switchover", lambda: switchover(d, sw), lambda: undo_switch(d, sw)), *tail]


def rejoin_step(d: FailoverDrill, sw: Switch, phase: str) -> Step:
    name = "rejoin" if phase == "failover" else "failback.rejoin"
    via = "Patroni" if d.ha.name == "patroni" else "the HA layer"

    def run() -> Detail:
        out = d.ha.rejoin(sw.old, sw.new)
        st = d._wait_streaming(sw.new, sw.old, caught_up=True)
        return {**out, "state": st["state"], "lag_bytes": st["lag_bytes"]}

    return d.step(name, f"{via} rejoins {sw.old.name} as a standby of {sw.new.name}", run, phase=phase)


# --------------------------------------------------------------------------- the steps


def switchover(d: FailoverDrill, sw: Switch) -> Detail:
    sw.old_lsn = sw.old.current_lsn()
    sw.dns_before = d.dns.get_record(d.record)  # read now: the dns step then only writes
    sw.fenced_at = time.time()
    sw.promoted = True  # from here on the undo must look at who leads
    t0 = time.monotonic()
    out = d.ha.switchover(sw.old, sw.new)
    sw.promote_seconds = round(time.monotonic() - t0, 4)
    sw.replayed_lsn = sw.new.current_lsn()
    sw.lsn_gap_bytes = 0  # Patroni's switchover waits for the candidate to replay everything
    return out


def undo_switch(d: FailoverDrill, sw: Switch) -> Detail:
    if not sw.promoted:
        return {"switched": False}
    leader = d.ha.leader()
    if leader == sw.old.name:
        return {"leader": leader, "switched_back": False}
    if leader != sw.new.name:
        raise NotUndone(f"the HA layer names {leader or 'no leader'} as primary; switch back to {sw.old.name} by hand")
    d.ha.rejoin(sw.old, sw.new)
    return {"switched_back": True, **d.ha.switchover(sw.new, sw.old)}


def lose(d: FailoverDrill, sw: Switch) -> Detail:
    # The last position we can know of a server about to be lost; rows acknowledged after it are
    # still counted by the canary.
    sw.old_lsn = sw.old.current_lsn()
    out = d.ha.lose(sw.old)
    sw.fenced_at = time.time()
    return {**out, "last_known_lsn": sw.old_lsn}


def failover(d: FailoverDrill, sw: Switch) -> Detail:
    assert isinstance(d.ha, PatroniControl)
    sw.promoted = True
    t0 = time.monotonic()
    out = d.ha.failover(sw.new)
    sw.promote_seconds = round(time.monotonic() - t0, 4)
    return out


def recover(d: FailoverDrill, sw: Switch) -> Detail:
    """Watch the HA layer until a new primary accepts writes; the detection and election instants
    go to the switch's measurements."""
    assert sw.fenced_at is not None
    limit = d.objectives.rto * d.cfg.drills.ha.stop_after
    deadline = sw.fenced_at + limit
    poll = d.cfg.drills.ha.poll
    detected = elected = None
    leader: str | None = sw.old.name
    errors = 0
    while True:
        now = time.time()
        try:
            leader = d.ha.leader()
        except Exception:  # the HA layer may not answer while it is itself recovering
            errors += 1
        else:
            if leader != sw.old.name and detected is None:
                detected = now
            if leader is not None and leader != sw.old.name:
                elected = now
                break
        if now > deadline:
            raise TimeoutError(f"stop condition: the HA layer named no new primary within {limit:g}s "
                               f"(objectives.rto x drills.ha.stop_after); it still names {leader or 'nobody'}")
        time.sleep(poll)
    if leader != sw.new.name:
        raise RuntimeError(f"the HA layer promoted {leader}, not {sw.new.name}")
    sw.promoted = True
    while not writable_now(sw.new):
        if time.time() > deadline:
            raise TimeoutError(f"stop condition: {sw.new.name} leads but accepts no writes within {limit:g}s")
        time.sleep(poll)
    sw.ha = {"detected_ts": detected, "elected_ts": elected, "settings": _settings(d),
                         "read_errors": errors}
    sw.replayed_lsn = sw.new.current_lsn()
    return {"new_primary": leader, "detected_after_seconds": round((detected or elected) - sw.fenced_at, 4),
            "elected_after_seconds": round(elected - sw.fenced_at, 4)}




def _settings(d: FailoverDrill) -> dict[str, float]:
    try:
        return d.ha.settings()
    except Exception:
        return {}


def verify(d: FailoverDrill, sw: Switch, kind: str) -> Detail:
    """The drill's own verification, plus, for an observed switch, the write gap split into phases."""
    out = d.verify(sw)
    if kind == "observed":
        sw.measured.update(phases(d, sw))
        out.update({k: sw.measured[k] for k in ("detection_seconds", "promotion_seconds", "path_back_seconds")})
    return out


def phases(d: FailoverDrill, sw: Switch) -> Detail:
    """detection + promotion + path back = the write gap (RTO), from the same instants."""
    m = sw.measured
    ha = sw.ha
    last, first = m.get("last_ack_before"), m.get("first_ack_after")
    if not last or not first or ha.get("elected_ts") is None:
        return {"detection_seconds": None, "promotion_seconds": None, "path_back_seconds": None}
    start, end = last["ts"], first["ts"]
    detected = ha.get("detected_ts") or ha["elected_ts"]
    accepted = d.probe.first_accept(sw.new.name, sw.fenced_at or start) if d.probe is not None else None
    accepted = min(max(accepted or end, detected), end)
    return {"detection_seconds": round(detected - start, 4), "promotion_seconds": round(accepted - detected, 4),
            "path_back_seconds": round(end - accepted, 4),
            "phase_basis": "detection: last write before the fault until the HA layer no longer named the old "
                           "primary; promotion: until the new primary accepted the probe's first direct write; "
                           "path back: until the application's canary wrote through DNS again"}
