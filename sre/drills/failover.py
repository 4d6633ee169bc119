"""The cross-region failover drill: preflight, canary, fence, catch up, promote, DNS, scale, verify,
and optionally fail back the same way. Every step that changes something has an undo; the runner
undoes in reverse on failure or interruption (sre.drills.steps), and the report (sre.drills.report)
proves RTO and RPO from the canary's acknowledged writes.

The switch, for a planned drill from A (primary) to B (streaming standby):
  fence A (read-only default, reload, end client sessions) -> wait until B replayed A's final LSN
  -> pg_promote(B) + CHECKPOINT -> UPSERT the DNS record to B, wait INSYNC -> scale B's region
  -> verify writes land on B through DNS -> rejoin A as B's standby (pg_rewind, new slot).
Unplanned: A is stopped immediately instead (a lost region), B promotes with what it received.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sre.adapters import dns
from sre.adapters.dns import record_for_target, target_of
from sre.adapters.dns_provider import provider as dns_provider
from sre.adapters.kube_scale import get_replicas, set_replicas
from sre.drills import alerting, ha_switch, lock, measure, report
from sre.drills.canary import Canary, canary_dsn
from sre.drills.context import DrillContext, DrillRecord, DrillRequest, Switch
from sre.drills.ha import backend as ha_backend
from sre.drills.nodes import Member, in_region, members, pick_cluster
from sre.drills.preflight import run_preflight
from sre.drills.splitbrain import SplitBrainProbe, create_table, probe_dsn
from sre.drills.steps import Event, Interrupted, NotUndone, Outcome, Runner, Step, deferred_signals, interruptible
from sre.errors import CheckFailed, UsageError
from sre.results import JobOutcome
from sre.telemetry import get_logger, log_fields

if TYPE_CHECKING:
    from sre.adapters.dns import DnsProvider
    from sre.config import SreConfig
    from sre.drills.canary import Canary
    from sre.drills.splitbrain import SplitBrainProbe
    from sre.results import CheckResult, JobContext, JobOutcome
    from sre.store import Store

log = get_logger("sre.drills.failover")

MODES = ("planned", "unplanned")
KINDS = ("orchestrated", "observed")  # the drill switches, or only injects the fault and watches
CANARY_WARMUP_ACKS = 5
VERIFY_ACKS = 3
VERIFY_TIMEOUT = 30.0
STREAM_TIMEOUT = 60.0
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

class PreflightRefused(CheckFailed):
    """A preflight check refused the drill; nothing was changed."""


def validate(cfg: SreConfig, req: DrillRequest, *, execute: bool, yes: bool) -> None:
    """Refuse a request that is wrong before anything is contacted (exit 2)."""
    if req.mode not in MODES:
        raise UsageError(f"--mode must be planned or unplanned, not {req.mode!r}")
    if req.kind not in KINDS:
        raise UsageError(f"the kind of drill must be orchestrated or observed, not {req.kind!r}")
    if req.kind == "observed" and req.mode != "unplanned":
        raise UsageError("an observed drill loses the primary: it is unplanned by nature (--mode unplanned)")
    backend = cfg.drills.ha.backend
    if req.kind == "observed" and backend == "local":
        raise UsageError("an observed drill needs an HA layer that recovers on its own: set drills.ha.backend "
                         "(patroni or kubernetes)")
    if req.kind == "orchestrated" and backend == "kubernetes":
        raise UsageError("the kubernetes backend only loses pods: run an observed drill (--observe)")
    if req.from_region == req.to_region:
        raise UsageError("--from and --to name the same region")
    for r in (req.from_region, req.to_region):
        if r not in cfg.regions:
            raise UsageError(f"unknown region {r!r} (regions: {', '.join(cfg.regions)})")
    if cfg.dns is None:
        raise UsageError("a failover drill switches a DNS record: the configuration has no dns section")
    if cfg.drills.record not in cfg.dns.records:
        raise UsageError(f"drills.record {cfg.drills.record!r} is not a key of dns.records "
                         f"({', '.join(cfg.dns.records) or 'none'})")
    if not _IDENT.match(cfg.drills.canary_table):
        raise UsageError(f"drills.canary_table {cfg.drills.canary_table!r} is not a plain lower-case SQL name")
    cluster = pick_cluster(cfg, req.cluster)
    ms = members(cfg, cluster)
    for m in (in_region(ms, req.from_region, cluster), in_region(ms, req.to_region, cluster)):
        if not m.target:
            raise UsageError(f"dns.node_targets has no entry for {m.name}: the drill cannot point the record at it")
    if (req.stop_on or cfg.drills.alerts.stop_on) and not alerting.active(cfg):
        raise UsageError("stop conditions are read from Alertmanager: set endpoints.alertmanager "
                         "(and leave drills.alerts.enabled on)")
    if execute and cfg.environment == "production" and not (yes and req.reason):
        raise UsageError("a drill against production needs --yes and --reason \"why\" (recorded in the report)")


# --------------------------------------------------------------------------- the plan


def _switch_plan(old: Member, new: Member, mode: str, record: str, deployments: dict[str, int],
                 prefix: str) -> list[dict[str, str]]:
    fence = (f"stop {old.name} immediately (pg_ctl -m immediate), as a region loss would"
             if mode == "unplanned" else
             f"fence {old.name}: default_transaction_read_only=on, reload, end client sessions")
    unfence = (f"start {old.name} again (it is still the primary)" if mode == "unplanned"
               else f"{old.name} back to read-write (reset default_transaction_read_only, reload)")
    catchup = (f"wait until {new.name} replayed all WAL it received (LSN gap recorded)" if mode == "unplanned"
               else f"wait until {new.name} replayed {old.name}'s final LSN")
    scale = (", ".join(f"{k}={v}" for k, v in deployments.items()) or "nothing configured")
    return [
        {"step": prefix + "fence", "title": fence, "undo": unfence},
        {"step": prefix + "catchup", "title": catchup, "undo": ""},
        {"step": prefix + "promote", "title": f"pg_promote(wait => true) on {new.name}, then CHECKPOINT",
         "undo": f"rewind {new.name} from {old.name} and re-attach it as standby (new slot)"},
        {"step": prefix + "dns", "title": f"UPSERT {record} -> {new.target} ({new.name}), wait INSYNC",
         "undo": f"UPSERT {record} back to its previous value, wait INSYNC"},
        {"step": prefix + "scale", "title": f"scale {new.region} deployments to production size: {scale}",
         "undo": "scale them back to their previous replicas"},
        {"step": prefix + "verify", "title": f"canary writes land on {new.name} through DNS; health endpoints answer",
         "undo": ""},
        {"step": prefix + "rejoin", "title": f"rejoin {old.name} as standby of {new.name} (pg_rewind, new slot "
         f"{old.slot})", "undo": ""},
    ]


def _opening_steps(cfg: SreConfig, src: Member, dst: Member, record: str) -> dict[str, dict[str, str]]:
    """The preflight and canary steps, as a drill runs them and the dry run prints them."""
    return {
        "preflight": {"phase": "failover", "step": "preflight", "undo": "",
                      "title": f"preflight checks (read-only): {src.name} is primary; {dst.name} streams from it "
                               f"within the lag budget, replay not paused; backups fresh; {dst.region} deployments "
                               f"exist; {record} leads to {src.name}"},
        "canary": {"phase": "failover", "step": "canary", "undo": "wait until canary writes resume, then stop it",
                   "title": f"start the canary writer: a row every {cfg.drills.canary_interval * 1000:.0f} ms into "
                            f"{cfg.drills.canary_table} through {record}"},
    }


def plan(cfg: SreConfig, req: DrillRequest) -> dict[str, Any]:
    """What --execute would do, from the configuration alone (nothing is contacted)."""
    validate(cfg, req, execute=False, yes=False)
    assert cfg.dns is not None
    cluster = pick_cluster(cfg, req.cluster)
    ms = members(cfg, cluster)
    src, dst = in_region(ms, req.from_region, cluster), in_region(ms, req.to_region, cluster)
    record = cfg.dns.records[cfg.drills.record]
    kube = cfg.kubernetes.regions
    exp = alerting.expectations(cfg, cluster, req.mode, req.stop_on)
    silence, hold = alerting.plan_steps(cfg, exp)
    opening = _opening_steps(cfg, src, dst, record)
    steps = [opening["preflight"], *silence, opening["canary"]]
    backend = cfg.drills.ha.backend

    def switch_plan(old: Member, new: Member, mode: str, kind: str, prefix: str) -> list[dict[str, str]]:
        deps = kube[new.region].deployments if new.region in kube else {}
        if backend == "local":
            return _switch_plan(old, new, mode, record, deps, prefix)
        scale = ", ".join(f"{k}={v}" for k, v in deps.items()) or "nothing configured"
        return ha_switch.plan(backend, kind, mode, old, new, record, scale, prefix)

    failover = [{"phase": "failover", **s} for s in switch_plan(src, dst, req.mode, req.kind, "")]
    steps += failover[:-1] + hold + failover[-1:]
    if req.failback:
        steps += [{"phase": "failback", **s} for s in switch_plan(dst, src, "planned", "orchestrated", "failback.")]
    notes = []
    for m, why in ((src, "unplanned mode and --failback"), (dst, "undoing a promotion and --failback")):
        if backend == "local" and m.ctl is None:
            notes.append(f"no drills.nodes.{m.name}: {why} need it (pg_ctl/pg_rewind beside its data directory)")
    if not alerting.active(cfg):
        notes.append("no endpoints.alertmanager (or drills.alerts.enabled is off): alerts are neither silenced "
                     "nor graded, and the remediation worker is told of the drill only through the state store")
    objectives = cfg.postgres.clusters[cluster].objectives
    return {"dry_run": True, "cluster": cluster, "environment": cfg.environment, "mode": req.mode,
            "kind": req.kind, "backend": backend,
            "failback": req.failback, "from": {"region": src.region, "node": src.name, "target": src.target},
            "to": {"region": dst.region, "node": dst.name, "target": dst.target}, "record": record,
            "objectives": {"rto_seconds": objectives.rto, "rpo_seconds": objectives.rpo},
            "alerting": exp.to_dict(), "steps": steps, "notes": notes}


# --------------------------------------------------------------------------- the drill


class FailoverDrill:
    def __init__(self, cfg: SreConfig, store: Store, req: DrillRequest, *,
                 on_event: Callable[[Event], None] | None = None, cancelled: Callable[[], bool] | None = None) -> None:

        validate(cfg, req, execute=True, yes=True)
        assert cfg.dns is not None
        self.cfg = cfg
        self.store = store
        self.req = req
        self.cluster = pick_cluster(cfg, req.cluster)
        self.objectives = cfg.postgres.clusters[self.cluster].objectives
        ms = members(cfg, self.cluster)
        self.src = in_region(ms, req.from_region, self.cluster)
        self.dst = in_region(ms, req.to_region, self.cluster)
        self.record = cfg.dns.records[cfg.drills.record]
        self.dns: DnsProvider = dns_provider(cfg)
        self.ha = ha_backend(cfg, self.cluster, ms)
        # What preflight reads, and the report with what happened (sre.drills.context).
        self.context = DrillContext(cfg=cfg, store=store, req=req, cluster=self.cluster, src=self.src, dst=self.dst,
                                    record=self.record, dns=self.dns, ha=self.ha)
        self.probe: SplitBrainProbe | None = None
        self.on_event = on_event
        self._external_cancel = cancelled or (lambda: False)
        self.runner = Runner(self._event, self._cancelled)
        self.drill_id = 0
        self.started = time.time()
        # Without an Alertmanager nothing is silenced or graded: no need to read the rules tree.
        self.expectations = (alerting.expectations(cfg, self.cluster, req.mode, req.stop_on) if alerting.active(cfg)
                             else alerting.Expectations(self.cluster, req.mode, [], [], list(req.stop_on)))
        self.alerting = alerting.DrillAlerting.for_drill(
            cfg, self.expectations, started=self.started, actor=req.actor,
            summary=f"failover of {self.cluster} {self.src.name} ({req.from_region}) -> {self.dst.name} "
                    f"({req.to_region}), {req.mode}")
        self.preflight_results: list[CheckResult] = []
        self.estimate: dict[str, Any] | None = None  # readiness estimate taken in preflight (sre.dr)
        self.canary: Canary | None = None
        self.switches: list[Switch] = []
        self.outcomes: dict[str, Outcome] = {}
        self.notes: list[str] = []
        self._lease: Any = None
        self._last_refresh = time.monotonic()

    # ------------------------------------------------------------------ plumbing

    def _cancelled(self) -> bool:
        """Asked by the runner before each step: a stop-condition alert raises StopCondition here."""
        if self.alerting is not None:
            self.alerting.raise_if_stopped()
        if self.probe is not None and self.probe.split_brain():
            raise alerting.StopCondition(self.probe.section()["message"])
        return self._external_cancel()

    def _event(self, ev: Event) -> None:
        now = time.monotonic()
        if self._lease is not None and now - self._last_refresh > 30:
            self._last_refresh = now
            self._lease.refresh()
        if ev.status != "running":
            # Progress is visible (`sre drill show`, the API) while the drill runs.
            from sre.drills.report import persist_progress

            persist_progress(self.store, self.drill_id, self.runner.timeline)
        if self.on_event is not None:
            self.on_event(ev)

    def _hooked(self, name: str, fn: Callable[[], dict[str, Any] | None]) -> Callable[[], dict[str, Any] | None]:
        def run() -> dict[str, Any] | None:
            if f"before:{name}" in self.req.hooks:
                self.req.hooks[f"before:{name}"](self)
            out = fn()
            if f"after:{name}" in self.req.hooks:
                self.req.hooks[f"after:{name}"](self)
            return out

        return run

    def step(self, name: str, title: str, run: Callable[[], dict[str, Any] | None],
             undo: Callable[[], dict[str, Any] | None] | None = None, undo_title: str = "",
             phase: str = "failover") -> Step:
        return Step(name, title, self._hooked(name, run), undo, undo_title, phase)

    # ------------------------------------------------------------------ preflight

    def preflight(self) -> dict[str, Any]:
        self.preflight_results = run_preflight(self.context)
        self.estimate = next((r.observed for r in self.preflight_results if r.check == "drill.preflight.readiness"),
                             None)
        if self.alerting is not None:
            self.preflight_results += self.alerting.preflight()
        failed = [r for r in self.preflight_results if r.status == "fail"]
        if failed:
            raise PreflightRefused("preflight refused the drill: " + "; ".join(
                f"{r.check.removeprefix('drill.preflight.')} ({r.target}): {r.message}" for r in failed))
        return {"checks": len(self.preflight_results),
                "warnings": [r.message for r in self.preflight_results if r.status == "warn"]}

    # ------------------------------------------------------------------ canary

    def _resolver(self) -> Callable[[], tuple[str, str]]:
        from psycopg.conninfo import conninfo_to_dict


        ref = self.cfg.drills.app_dsn or self.src.node.dsn
        base = conninfo_to_dict(ref.resolve().get_secret_value())
        if self.cfg.drills.resolve == "system":
            fixed = canary_dsn(base, None, None)
            return lambda: (fixed, "dns")
        provider = dns_provider(self.cfg)  # its own client: the canary runs in its own thread
        record = self.record

        def resolve() -> tuple[str, str]:
            rec = provider.get_record(record)
            if rec is None:
                raise dns.DnsError(f"{record}: no such record")
            target = dns.target_of(rec)
            host, port = dns.split_target(target)
            return canary_dsn(base, host, port), target

        return resolve

    def start_canary(self) -> dict[str, Any]:
        self.canary = Canary(self._resolver(), self.cfg.drills.canary_table, self.drill_id,
                             self.cfg.drills.canary_interval)
        self.canary.prepare()
        self.start_probe()
        self.canary.start()
        self.canary.wait_for(lambda acks: len(acks) >= CANARY_WARMUP_ACKS, 10.0,
                             f"{CANARY_WARMUP_ACKS} acknowledged writes")
        return {"table": self.cfg.drills.canary_table, "interval_seconds": self.cfg.drills.canary_interval}

    def start_probe(self) -> None:
        """The split-brain probe: a write straight to every node, each on its own interval."""
        nodes = {m.name: m for m in (self.src, self.dst)}
        create_table(probe_dsn(self.src.node.dsn.resolve().get_secret_value()))

        def dsn_of(m: Member) -> Callable[[], str]:
            return lambda: probe_dsn(m.node.dsn.resolve().get_secret_value())

        self.probe = SplitBrainProbe({n: dsn_of(m) for n, m in nodes.items()}, self.drill_id,
                                     self.cfg.drills.ha.probe_interval)
        self.probe.start()

    def undo_canary(self) -> dict[str, Any]:
        """Prove the application path writes again (through the restored record), then stop."""
        assert self.canary is not None
        t0 = time.time()
        try:
            acks = self.canary.wait_for(lambda a: bool(a) and a[-1].at > t0, 15.0, "a write after the undo")
        except TimeoutError as exc:
            self.canary.stop()
            raise NotUndone(f"application writes did not resume through {self.record}: {exc}") from None
        self.canary.stop()
        return {"writes_resumed": True, "ack": measure.ack_dict(acks[-1])}

    # ------------------------------------------------------------------ one switch

    def switch_steps(self, sw: Switch, phase: str) -> list[Step]:
        if self.ha.name != "local":
            return ha_switch.steps(self, sw, phase, self.req.kind if phase == "failover" else "orchestrated")
        p = "" if phase == "failover" else "failback."
        plan = {s["step"]: s for s in _switch_plan(sw.old, sw.new, sw.mode, self.record,
                                                   self.context.deployments(sw.new.region), p)}

        def st(name: str, run: Callable[[], dict[str, Any] | None],
               undo: Callable[[], dict[str, Any] | None] | None = None) -> Step:
            info = plan[p + name]
            return self.step(p + name, info["title"], run, undo, info["undo"], phase)

        return [
            st("fence", lambda: self.fence(sw), lambda: self.undo_fence(sw)),
            st("catchup", lambda: self.catchup(sw)),
            st("promote", lambda: self.promote(sw), lambda: self.undo_promote(sw)),
            st("dns", lambda: self.switch_dns(sw), lambda: self.undo_dns(sw)),
            st("scale", lambda: self.scale(sw), lambda: self.undo_scale(sw)),
            st("verify", lambda: self.verify(sw)),
        ]

    def fence(self, sw: Switch) -> dict[str, Any]:
        if sw.mode == "unplanned":
            sw.old.control("an unplanned drill")
            # The last position we can know of a server about to be lost; rows acknowledged after
            # it are still counted by the canary.
            sw.old_lsn = sw.old.current_lsn()
            out = self.ha.lose(sw.old)
            sw.fenced_at = time.time()
            return {**out, "last_known_lsn": sw.old_lsn}
        ended = sw.old.fence()
        sw.fenced_at = time.time()
        return {"read_only": True, "sessions_ended": ended}

    def undo_fence(self, sw: Switch) -> dict[str, Any]:
        if sw.mode == "unplanned":
            return self.ha.restore(sw.old)
        if sw.old.in_recovery():
            raise NotUndone(f"{sw.old.name} is a standby now; it was not made read-write")
        if not sw.old.unfence():
            raise NotUndone(f"{sw.old.name} still refuses writes (default_transaction_read_only is on)")
        return {"read_write": True}

    def catchup(self, sw: Switch) -> dict[str, Any]:
        t0 = time.monotonic()
        deadline = t0 + self.cfg.drills.catchup_timeout
        new = sw.new
        while True:
            if sw.mode == "unplanned":
                row = new.sql("SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text")[0]
                received, replayed = row
                if received is None or new.lsn_diff(received, replayed) <= 0:
                    sw.replayed_lsn = replayed
                    break
            else:
                final = sw.old.current_lsn()
                replayed = new.replay_lsn()
                if replayed is not None and new.lsn_diff(final, replayed) <= 0:
                    sw.old_lsn, sw.replayed_lsn = final, replayed
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{new.name} did not replay {sw.old.name}'s WAL within "
                                   f"{self.cfg.drills.catchup_timeout:.0f}s (replayed {replayed})")
            time.sleep(0.005)
        gap = 0
        if sw.old_lsn and sw.replayed_lsn:
            gap = max(0, new.lsn_diff(sw.old_lsn, sw.replayed_lsn))
        sw.lsn_gap_bytes = gap
        return {"old_primary_lsn": sw.old_lsn, "replayed_lsn": sw.replayed_lsn, "lsn_gap_bytes": gap,
                "waited_seconds": round(time.monotonic() - t0, 4)}

    def promote(self, sw: Switch) -> dict[str, Any]:
        t0 = time.monotonic()
        sw.promoted = True  # from here on the undo must check, whatever happens below
        sw.new.promote()
        sw.promote_seconds = round(time.monotonic() - t0, 4)
        return {"promoted": sw.new.name, "promote_and_checkpoint_seconds": sw.promote_seconds}

    def undo_promote(self, sw: Switch) -> dict[str, Any]:
        if not sw.promoted or sw.new.in_recovery():
            return {"promoted": False}
        sw.new.control("re-attaching the promoted node as a standby")
        if sw.mode == "unplanned":
            sw.old.control("restarting the stopped primary").start()
        out = sw.new.rejoin(sw.old)
        self._wait_streaming(sw.old, sw.new)
        return {"standby_again": sw.new.name, "upstream": sw.old.name, **out}

    def switch_dns(self, sw: Switch) -> dict[str, Any]:
        assert self.cfg.dns is not None and sw.new.target is not None
        if sw.dns_before is None:  # an HA switch reads it before the switch: one call less inside the gap
            sw.dns_before = self.dns.get_record(self.record)
        rec = record_for_target(self.record, sw.new.target, self.cfg.dns.ttl)
        change = self.dns.upsert_record(rec)
        sw.dns_changed = True
        sw.dns_insync_seconds = round(self.dns.wait_insync(change), 4)
        return {"record": self.record, "before": target_of(sw.dns_before) if sw.dns_before else None,
                "after": sw.new.target, "type": rec.type, "change": change,
                "insync_seconds": sw.dns_insync_seconds}

    def undo_dns(self, sw: Switch) -> dict[str, Any]:
        if not sw.dns_changed:
            return {"changed": False}
        assert self.cfg.dns is not None and sw.old.target is not None
        rec = sw.dns_before or record_for_target(self.record, sw.old.target, self.cfg.dns.ttl)
        change = self.dns.upsert_record(rec)
        waited = self.dns.wait_insync(change)
        return {"record": self.record, "restored": target_of(rec), "insync_seconds": round(waited, 4)}

    # ------------------------------------------------------------------ Kubernetes

    def scale(self, sw: Switch) -> dict[str, Any]:
        wanted = self.context.deployments(sw.new.region)
        done = {}
        for ref, size in wanted.items():
            before = get_replicas(self.cfg, sw.new.region, ref)
            sw.scaled[ref] = before
            if before != size:
                set_replicas(self.cfg, sw.new.region, ref, size)
            done[ref] = {"before": before, "after": size}
        return {"region": sw.new.region, "deployments": done}

    def undo_scale(self, sw: Switch) -> dict[str, Any]:
        restored = {}
        for ref, before in sw.scaled.items():
            set_replicas(self.cfg, sw.new.region, ref, before)
            restored[ref] = before
        return {"region": sw.new.region, "restored": restored}

    # ------------------------------------------------------------------ verify and measure

    def verify(self, sw: Switch) -> dict[str, Any]:
        assert self.canary is not None and sw.fenced_at is not None
        fenced = sw.fenced_at
        new_target = sw.new.target if self.cfg.drills.resolve == "route53" else None
        acks = self.canary.wait_for(
            lambda a: sum(1 for x in a if x.at > fenced and (new_target is None or x.target == new_target))
            >= VERIFY_ACKS, VERIFY_TIMEOUT, f"{VERIFY_ACKS} writes on {sw.new.name} through {self.record}")
        if not sw.new.writable():
            raise RuntimeError(f"{sw.new.name} does not accept writes after the switch")
        sw.measured = measure.rto(acks, fenced, new_target)
        first = sw.measured["first_ack_after"]
        # Writes acknowledged before the switch, since the previous switch: all must be on the new primary.
        since = self.switches[-2].measured["first_ack_after"]["ts"] if len(self.switches) > 1 else 0.0
        before = [a for a in acks if since <= a.at < first["ts"]]
        after = [a.n for a in acks if a.at >= first["ts"]][:VERIFY_ACKS]
        table = self.cfg.drills.canary_table
        present = {r[0] for r in sw.new.sql(
            f"SELECT n FROM {table} WHERE drill_id = %s AND n = ANY(%s)",
            [self.drill_id, [a.n for a in before] + after])}
        missing_after = [n for n in after if n not in present]
        if missing_after:
            raise RuntimeError(f"canary rows {missing_after} acknowledged after the switch are not on {sw.new.name}")
        sw.measured.update(measure.rpo(before, present))
        health = self.context.check_health()
        bad = {u: r for u, r in health.items() if not r.startswith("2")}
        if bad:
            raise RuntimeError("health endpoints failed: " + ", ".join(f"{u} -> {r}" for u, r in bad.items()))
        return {"writes_on": sw.new.name, "rto_seconds": sw.measured["rto_seconds"],
                "rpo_rows": sw.measured["rpo_rows"], "health": health}

    def _wait_streaming(self, primary: Member, standby: Member, caught_up: bool = False) -> dict[str, Any]:
        deadline = time.monotonic() + STREAM_TIMEOUT
        while True:
            st = primary.upstream_streaming(standby)
            if st and st["state"] == "streaming" and (not caught_up or (st["lag_bytes"] or 0) <= 0):
                return st
            if time.monotonic() > deadline:
                raise TimeoutError(f"{standby.name} is not streaming from {primary.name} after {STREAM_TIMEOUT:.0f}s "
                                   f"(state: {st['state'] if st else 'not connected'})")
            time.sleep(0.05)

    def rejoin_step(self, sw: Switch, phase: str) -> Step:
        if self.ha.name != "local":
            return ha_switch.rejoin_step(self, sw, phase)
        prefix = "" if phase == "failover" else "failback."
        name = prefix + "rejoin"
        title = next(s["title"] for s in _switch_plan(sw.old, sw.new, sw.mode, self.record, {}, prefix)
                     if s["step"] == name)

        def run() -> dict[str, Any]:
            out = self.ha.rejoin(sw.old, sw.new)
            st = self._wait_streaming(sw.new, sw.old, caught_up=True)
            return {**out, "state": st["state"], "lag_bytes": st["lag_bytes"]}

        return self.step(name, title, run, phase=phase)

    # ------------------------------------------------------------------ the whole drill

    def execute(self) -> dict[str, Any]:
        """Run the drill; returns the report (also stored, written to files and exported as metrics)."""
        self.drill_id = report.create_row(self.store, self.context)
        if self.alerting is not None:
            self.alerting.drill_id = self.drill_id
        try:
            self._lease = lock.acquire(self.store, self.drill_id)
        except lock.DrillBusy as exc:
            report.finish(self.to_record(), status="refused", message=str(exc))
            raise
        log.info("drill %d: %s -> %s (%s) started", self.drill_id, self.src.name, self.dst.name, self.req.mode,
                 extra=log_fields(drill_id=self.drill_id, cluster=self.cluster))
        status, message = "aborted", "stopped by an unexpected error; see the timeline for what ran"
        signalled = False
        try:
            with interruptible():
                status, message = self._phases()
        except KeyboardInterrupt:
            signalled = True
            message = "interrupted between steps; see the timeline for what ran and what was undone"
            self.outcomes["interrupted"] = Outcome(False, None, "interrupted", True)
        finally:
            with deferred_signals():
                if self.canary is not None and self.canary.running:
                    self.canary.stop()
                if self.probe is not None and self.probe.running:
                    self.probe.stop()
                self._clear_hold()
                if self.alerting is not None:
                    fault = self.switches[0].fenced_at if self.switches else None
                    self.alerting.finish(fault, interrupted=signalled or self.interrupted_by_signal())
                try:
                    result = report.finish(self.to_record(), status=status, message=message)
                finally:
                    self._lease.release()
        return result

    def to_record(self) -> DrillRecord:
        """The drill as its report sees it, now."""
        return DrillRecord(self.context, self.drill_id, self.started, self.preflight_results, self.estimate,
                           self.switches, self.outcomes, self.notes, self.runner.timeline, self.canary, self.alerting,
                           self.probe)

    def _clear_hold(self) -> None:
        """Maintenance mode never outlives a drill: the undo clears it; this is the net under the undo."""
        if not self.ha.holding:
            return
        try:
            self.notes.append(f"maintenance mode was still set at the end: cleared ({self.ha.release()})")
        except Exception as exc:
            self.notes.append(f"could not check or clear the HA layer's maintenance mode: {exc}")

    def _phases(self) -> tuple[str, str]:
        opening = _opening_steps(self.cfg, self.src, self.dst, self.record)
        pre = self.runner.run([self.step("preflight", opening["preflight"]["title"], self.preflight)])
        self.outcomes["preflight"] = pre
        if not pre.completed:
            if pre.interrupted:
                return "aborted", "interrupted during preflight; nothing was changed"
            return "refused", f"{pre.error}; nothing was changed"
        fo = Switch("failover", self.src, self.dst, self.req.mode)
        self.switches.append(fo)
        steps = self.alerting_steps(fo)[:1]
        steps += [self.step("canary", opening["canary"]["title"], self.start_canary, self.undo_canary,
                            opening["canary"]["undo"])]
        steps += self.switch_steps(fo, "failover") + self.alerting_steps(fo)[1:]
        out = self.runner.run(steps)
        self.outcomes["failover"] = out
        if not out.completed:
            return "aborted", self._abort_message("failover", out)
        if self.ha.name == "local" and self.src.ctl is None:
            self.notes.append(f"{self.src.name} was left {'stopped' if fo.mode == 'unplanned' else 'fenced'}: "
                              f"rebuild it as a standby of {self.dst.name} (no drills.nodes.{self.src.name})")
            return "completed", "failed over; the old primary was not rejoined"
        rj = self.runner.run([self.rejoin_step(fo, "failover")])
        self.outcomes["rejoin"] = rj
        if not rj.completed:
            return "failed", f"failed over, but {self.src.name} could not rejoin as a standby: {rj.error}"
        if not self.req.failback:
            self.notes.append(f"{self.dst.name} is the primary now and {self.src.name} its standby: "
                              f"update postgres.clusters.{self.cluster}.primary in the config, or fail back")
            return "completed", "failed over"
        fb = Switch("failback", self.dst, self.src, "planned")
        self.switches.append(fb)
        out = self.runner.run(self.switch_steps(fb, "failback"))
        self.outcomes["failback"] = out
        if not out.completed:
            return "aborted", self._abort_message("failback", out) + f" (left failed over to {self.dst.name})"
        rj = self.runner.run([self.rejoin_step(fb, "failback")])
        self.outcomes["failback.rejoin"] = rj
        if not rj.completed:
            return "failed", f"failed back, but {self.dst.name} could not rejoin as a standby: {rj.error}"
        return "completed", "failed over and back; original topology restored"

    def alerting_steps(self, fo: Switch) -> list[Step]:
        """[silence the expected alerts (before the fault), hold the fault until they fired (after verify)]."""
        al = self.alerting
        if al is None:
            return []
        silence, hold = alerting.plan_steps(self.cfg, self.expectations)
        steps = [self.step("silence", silence[0]["title"], al.silence,
                           lambda: al.unsilence(settle=not self.interrupted_by_signal()), silence[0]["undo"])]
        if hold:
            steps.append(self.step("alerts", hold[0]["title"], lambda: al.hold(fo.fenced_at or time.time())))
        return steps

    def interrupted_by_signal(self) -> bool:
        """Ctrl-C, SIGTERM or a cancelled job (not a stop condition): silences go at once, unsettled."""
        runs = [e for e in self.runner.timeline if e.kind == "run"]
        return bool(runs) and runs[-1].status == "interrupted" and self.stop_reason() is None

    def stop_reason(self) -> str | None:
        if self.probe is not None and self.probe.split_brain():
            return str(self.probe.section()["message"])
        stop = self.alerting.stopped_by if self.alerting is not None else None
        return stop["why"] if stop else None

    def _abort_message(self, phase: str, out: Outcome) -> str:
        why = ("stopped: " + (self.stop_reason() or "") if out.interrupted and self.stop_reason() else
               "interrupted" if out.interrupted else f"step {out.failed_step} failed: {out.error}")
        undone = "everything before it was undone" if not out.not_undone else \
            "NOT undone: " + "; ".join(f"{x['step']}: {x['error']}" for x in out.not_undone)
        return f"{phase} {why}; {undone}"


def run_drill(cfg: SreConfig, store: Store, req: DrillRequest, *,
              on_event: Callable[[Event], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> dict[str, Any]:
    return FailoverDrill(cfg, store, req, on_event=on_event, cancelled=cancelled).execute()


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


# --------------------------------------------------------------------------- scheduled job


def run_job(ctx: JobContext) -> JobOutcome:
    """The scheduled drill (staging only): planned, from the live primary's region, with failback."""
    cfg = ctx.cfg
    if cfg.environment != "staging":
        return JobOutcome("fail", {"error": f"scheduled drills run in staging only, not {cfg.environment}"})
    cluster = pick_cluster(cfg, None)
    ms = members(cfg, cluster)
    live = [m for m in ms if m.reachable() and not m.in_recovery()]
    if len(live) != 1:
        return JobOutcome("fail", {"error": f"cluster {cluster}: expected one live primary, found "
                                            f"{[m.name for m in live]}"})
    others = [m for m in ms if m is not live[0]]
    if not others:
        return JobOutcome("fail", {"error": f"cluster {cluster} has no replica to fail over to"})
    req = DrillRequest(live[0].region, others[0].region, cluster, "planned", failback=True,
                       reason="scheduled drill", trigger="schedule", actor="scheduler")
    try:
        rep = run_drill(cfg, ctx.store, req, cancelled=ctx.cancelled)
    except CheckFailed as exc:
        return JobOutcome("fail", {"error": str(exc)})
    except Interrupted:
        return JobOutcome("fail", {"error": "interrupted"})
    status = "ok" if rep["status"] == "passed" else "fail"
    return JobOutcome(status, {"drill_id": rep["id"], "drill_status": rep["status"],
                               "rto_seconds": rep.get("rto_seconds"), "rpo_rows": rep.get("rpo_rows")})
