"""The alerting around a drill: what must fire, silences so nobody is paged, a watch on
Alertmanager (stop conditions, what fired), and each expected alert's detection time graded
against the bound its own rule allows.

A drill is an outage of known shape, so it can prove the alerting as well as the switch:
  - `expectations()`: from the drill's mode and cluster, the alerts that must fire and those that
    may (defaults below, from the shipped rules; `drills.alerts` overrides per mode), and the
    stop conditions (`drills.alerts.stop_on`, `--stop-on`).
  - before the fault, one Alertmanager silence scoped to the cluster and the expected and may-fire
    alerts (comment "sre drill #<id> by <who>", ending at the drill's deadline); every other alert
    pages as usual and the report lists it. The remediation worker reads the same silences
    (sre.remediation.guards.drill) and keeps its hands off the cluster.
  - a watcher thread reads Alertmanager every `poll` seconds (silenced alerts included): what
    fired, and whether a stop condition did; the runner then stops the drill and undoes it.
  - after the switch, the drill holds the fault (the old primary still down or fenced) until every
    expected alert fired or its bound passed, so a rule with a `for:` longer than the switch can
    still be seen to fire.
  - the grade: for each expected alert, when it started firing (Prometheus's `ALERTS` samples and
    Alertmanager's `startsAt`) relative to the fault, against `for:` + evaluation interval +
    `drills.alerts.margin`, both read from the rules Prometheus is running.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sre.adapters.alertmanager import AlertmanagerClient, Matcher, parse_time
from sre.adapters.prometheus import PrometheusClient
from sre.content import alerts_dir
from sre.drills.steps import Interrupted, iso
from sre.errors import SreError, UsageError
from sre.results import CheckResult
from sre.rules.loader import load_tree
from sre.rules.promql import duration_seconds
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.adapters.prometheus import PrometheusClient
    from sre.config import SreConfig

log = get_logger("sre.drills.alerting")

# What a failover of a PostgreSQL cluster makes fire, by mode. An unplanned drill loses the
# primary (pg_up == 0 on it) and the replica its upstream; a planned one fences and switches in
# seconds, so nothing has to fire, though the replication alerts may.
DEFAULT_EXPECTED: dict[str, tuple[str, ...]] = {
    "unplanned": ("PostgresPrimaryDown", "ReplicaDisconnected"),
    "planned": (),
}
DEFAULT_MAY_FIRE: tuple[str, ...] = ("PostgresPrimaryDown", "ReplicaDisconnected", "ReplicaLagHigh",
                                     "ReplicaLagBytesHigh", "ReplicationCheckFailing")
SCOPE_LABEL = "cluster"
COMMENT_PREFIX = "sre drill #"
_COMMENT = re.compile(r"^sre drill #(\d+)\b")
DEFAULT_EVALUATION = 60.0  # Prometheus's default evaluation_interval, when the rule's group is not known
HOLD_POLL = 0.25


def drill_id_of(comment: str) -> int | None:
    """The drill that made a silence, from its comment ("sre drill #12 by ..."); None if no drill did."""
    m = _COMMENT.match(comment)
    return int(m.group(1)) if m else None


class StopCondition(Interrupted):
    """A stop-condition alert fired (or the drill ran past its deadline): undo and report why."""


# --------------------------------------------------------------------------- what should fire


@dataclass
class Expectations:
    cluster: str
    mode: str
    expected: list[str]
    may_fire: list[str]
    stop_on: list[str]
    notes: list[str] = field(default_factory=list)

    def silenced(self) -> list[str]:
        return self.expected + [n for n in self.may_fire if n not in self.expected]

    def classify(self, labels: dict[str, str]) -> str:
        """expected | may_fire | stop | unexpected: how the drill counts an alert with these labels."""
        name = labels.get("alertname", "")
        if name in self.stop_on:
            return "stop"
        if labels.get(SCOPE_LABEL) == self.cluster:
            if name in self.expected:
                return "expected"
            if name in self.may_fire:
                return "may_fire"
        return "unexpected"

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "mode": self.mode, "expected": self.expected, "may_fire": self.may_fire,
                "stop_on": self.stop_on, "notes": self.notes}


def known_alerts(cfg: SreConfig) -> set[str] | None:
    """Alert names of the rules tree (shipped, or alerts.source_dir); None when it cannot be read."""
    try:
        tree = load_tree(alerts_dir(cfg))
    except Exception:
        log.warning("drill: cannot read the rules tree; expected alerts are not checked against it", exc_info=True)
        return None
    names = {r.name for r in tree.alerts()}
    return names or None


def expectations(cfg: SreConfig, cluster: str, mode: str, stop_on: list[str] | tuple[str, ...] = ()) -> Expectations:
    """The drill's alert expectations; UsageError for a configured name no rule defines."""
    conf = cfg.drills.alerts
    names = known_alerts(cfg)
    notes: list[str] = []

    def pick(kind: str, override: list[str] | None, default: tuple[str, ...]) -> list[str]:
        if override is None:
            missing = [n for n in default if names is not None and n not in names]
            if missing:
                notes.append(f"no rule defines {', '.join(missing)}: not {kind.replace('_', '-')} here")
            return [n for n in default if n not in missing]
        unknown = [n for n in override if names is not None and n not in names]
        if unknown:
            raise UsageError(f"drills.alerts.{kind}.{mode}: no alert rule named {', '.join(unknown)}",
                             hint="names come from the rules tree (sre alerts render)")
        return list(dict.fromkeys(override))

    expected = pick("expected", getattr(conf.expected, mode), DEFAULT_EXPECTED[mode])
    may_fire = [n for n in pick("may_fire", getattr(conf.may_fire, mode), DEFAULT_MAY_FIRE) if n not in expected]
    stops = list(dict.fromkeys([*conf.stop_on, *stop_on]))
    unknown = [n for n in stops if names is not None and n not in names]
    if unknown:
        raise UsageError(f"stop condition: no alert rule named {', '.join(unknown)}",
                         hint="drills.alerts.stop_on and --stop-on name alerts of the rules tree")
    both = [n for n in stops if n in expected or n in may_fire]
    if both:
        raise UsageError(f"{', '.join(both)}: a stop condition cannot also be expected or allowed to fire")
    return Expectations(cluster, mode, expected, may_fire, stops, notes)


def active(cfg: SreConfig) -> bool:
    """A drill silences, watches and grades alerts only with an Alertmanager to ask."""
    return cfg.drills.alerts.enabled and cfg.endpoints.alertmanager is not None


def plan_steps(cfg: SreConfig, exp: Expectations) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The dry run's lines for the silence step (before the canary) and the hold (after verify)."""
    if not active(cfg):
        return [], []
    stops = f"; stop and undo if {', '.join(exp.stop_on)} fires" if exp.stop_on else ""
    silence = [{"phase": "failover", "step": "silence", "undo": "remove the silences once their alerts resolved",
                "title": f"silence {', '.join(exp.silenced()) or 'nothing'} for {SCOPE_LABEL}={exp.cluster} until "
                         f"the deadline ({cfg.drills.alerts.deadline:g}s); watch Alertmanager{stops}"}]
    hold = [{"phase": "failover", "step": "alerts", "undo": "",
             "title": f"hold the fault until {', '.join(exp.expected)} fire for {exp.cluster} (each within for: "
                      f"+ evaluation interval + {cfg.drills.alerts.margin:g}s)"}] if exp.expected else []
    return silence, hold


# --------------------------------------------------------------------------- bounds from the rules


@dataclass
class RuleBound:
    alertname: str
    loaded: bool | None  # in the rules Prometheus runs; None: Prometheus not asked
    for_seconds: float
    interval_seconds: float
    margin_seconds: float

    @property
    def bound_seconds(self) -> float:
        return self.for_seconds + self.interval_seconds + self.margin_seconds


def _tree_bounds(cfg: SreConfig) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    tree = load_tree(alerts_dir(cfg))
    for f in tree.files:
        for g in f.groups:
            interval = g.raw.get("interval")
            every = duration_seconds(str(interval)) if interval else DEFAULT_EVALUATION
            for r in g.rules:
                if r.kind == "alert" and r.name not in out:
                    out[r.name] = (duration_seconds(r.for_) if r.for_ else 0.0, every)
    return out


def rule_bounds(cfg: SreConfig, prom: PrometheusClient | None, names: list[str]) -> dict[str, RuleBound]:
    """`for:` and evaluation interval of each alert, as Prometheus runs it (else as the tree says)."""
    margin = cfg.drills.alerts.margin
    live: dict[str, tuple[float, float]] | None = None
    if prom is not None:
        try:
            live = {}
            for g in prom.rule_groups():
                for r in g.get("rules") or []:
                    if r.get("type") == "alerting" and r["name"] not in live:
                        live[r["name"]] = (float(r.get("duration") or 0), float(g.get("interval") or DEFAULT_EVALUATION))
        except SreError as exc:
            log.warning("drill: cannot read Prometheus's rules: %s", exc)
            live = None
    tree = _tree_bounds(cfg)
    out: dict[str, RuleBound] = {}
    for n in names:
        if live is not None and n in live:
            out[n] = RuleBound(n, True, *live[n], margin)
        else:
            for_s, every = tree.get(n, (0.0, DEFAULT_EVALUATION))
            out[n] = RuleBound(n, False if live is not None else None, for_s, every, margin)
    return out


# --------------------------------------------------------------------------- the watch


@dataclass
class Seen:
    """One alert as Alertmanager showed it during the drill."""

    fingerprint: str
    labels: dict[str, str]
    starts_at: float
    first_seen: float
    last_seen: float
    silenced_by: list[str]
    state: str  # active (it pages) | suppressed (silenced or inhibited)
    present: bool = True  # in Alertmanager's latest answer


class AlertWatch:
    """Reads Alertmanager every `poll` seconds in its own thread; what it saw stays for the report."""

    def __init__(self, client: AlertmanagerClient, exp: Expectations, since: float, poll: float,
                 deadline: float) -> None:
        self.client = client
        self.exp = exp
        self.since = since
        self.poll = poll
        self.deadline = deadline
        self.seen: dict[str, Seen] = {}
        self.stopped_by: dict[str, Any] | None = None
        self.errors = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read_once(self) -> None:
        now = time.time()
        try:
            alerts = self.client.alerts()
        except SreError as exc:
            self.errors += 1
            self.last_error = str(exc)
            log.warning("drill: reading Alertmanager failed: %s", exc)
            return
        with self._lock:
            for earlier in self.seen.values():
                earlier.present = False
            for a in alerts:
                labels = {str(k): str(v) for k, v in (a.get("labels") or {}).items()}
                starts = parse_time(a.get("startsAt"))
                status = a.get("status") or {}
                fp = str(a.get("fingerprint") or sorted(labels.items()))
                key = f"{fp}@{a.get('startsAt')}"
                row = self.seen.get(key)
                if row is None:
                    row = self.seen[key] = Seen(fp, labels, starts.timestamp() if starts else now, now, now,
                                                list(status.get("silencedBy") or []), str(status.get("state") or ""))
                row.last_seen = now
                row.present = True
                if status.get("silencedBy"):
                    row.silenced_by = list(status["silencedBy"])
                row.state = str(status.get("state") or row.state)
                if self.stopped_by is None and self.exp.classify(labels) == "stop":
                    self.stopped_by = {"alertname": labels.get("alertname"), "labels": labels,
                                       "at": iso(now), "at_ts": now,
                                       "why": f"stop condition {labels.get('alertname')} fired"}
            if self.stopped_by is None and now > self.deadline:
                self.stopped_by = {"alertname": None, "labels": {}, "at": iso(now), "at_ts": now,
                                   "why": f"the drill ran past its deadline ({iso(self.deadline)})"}

    def snapshot(self) -> list[Seen]:
        with self._lock:
            return list(self.seen.values())

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.read_once()
            self._stop.wait(self.poll)

    def start(self) -> None:
        self.read_once()
        self._thread = threading.Thread(target=self._loop, name="sre-drill-alert-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self.client.close()


# --------------------------------------------------------------------------- firing intervals from ALERTS


@dataclass
class Firing:
    labels: dict[str, str]
    start: float
    end: float | None  # None: still firing when read
    source: str  # prometheus | alertmanager


def _intervals(values: list[list[Any]], gap: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for ts_raw, _ in values:
        ts = float(ts_raw)
        if out and ts - out[-1][1] <= gap:
            out[-1] = (out[-1][0], ts)
        else:
            out.append((ts, ts))
    return out


def alerts_series(prom: PrometheusClient, start: float, end: float,
                  intervals: dict[str, float]) -> list[Firing]:
    """Every firing interval Prometheus recorded in ALERTS between start and end (raw samples, one per
    evaluation, through a range selector: exact evaluation times, not a query_range grid)."""
    def labels_of(row: dict[str, Any]) -> dict[str, str]:
        return {k: v for k, v in (row.get("metric") or {}).items() if k not in ("__name__", "alertstate")}

    window = max(1, int(end - start) + 2)
    rows = prom.query(f'ALERTS{{alertstate="firing"}}[{window}s]', at=end)
    # Firing now: a resolved alert's series ends with a stale marker, so it is gone from an instant query.
    now = {tuple(sorted(labels_of(r).items())) for r in prom.query('ALERTS{alertstate="firing"}', at=end)}
    out: list[Firing] = []
    for row in rows:
        labels = labels_of(row)
        every = intervals.get(labels.get("alertname", ""), DEFAULT_EVALUATION)
        spans = _intervals(row.get("values") or [], max(3 * every, 5.0))
        for i, (a, b) in enumerate(spans):
            still = i == len(spans) - 1 and tuple(sorted(labels.items())) in now
            out.append(Firing(labels, a, None if still else b, "prometheus"))
    return out


# --------------------------------------------------------------------------- the drill's part


@dataclass
class SilenceRecord:
    id: str
    matchers: list[str]
    ends_at: str
    created_ts: float
    removed_ts: float | None = None
    removed: str | None = None  # expired | already gone | failed: ...

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "matchers": self.matchers, "ends_at": self.ends_at, "created": iso(self.created_ts),
                "removed": iso(self.removed_ts) if self.removed_ts else None, "removal": self.removed}


class DrillAlerting:
    """One drill's alerting: silences, the watch, the hold after the switch, the grade."""

    def __init__(self, cfg: SreConfig, exp: Expectations, *, started: float, actor: str | None,
                 summary: str) -> None:
        self.cfg = cfg
        self.exp = exp
        self.conf = cfg.drills.alerts
        self.started = started
        self.deadline = started + self.conf.deadline
        self.actor = actor
        self.summary = summary
        self.drill_id = 0
        self.silences: list[SilenceRecord] = []
        self.watch: AlertWatch | None = None
        self.bounds: dict[str, RuleBound] = {}
        self.hold_detail: dict[str, Any] = {}
        self.graded: dict[str, Any] | None = None
        self.settle_note: str | None = None

    @classmethod
    def for_drill(cls, cfg: SreConfig, exp: Expectations, *, started: float, actor: str | None,
                  summary: str) -> DrillAlerting | None:
        """None when the drill has no Alertmanager to work with (or drills.alerts.enabled is off)."""
        if not active(cfg):
            return None
        return cls(cfg, exp, started=started, actor=actor, summary=summary)

    def _client(self) -> AlertmanagerClient:
        return AlertmanagerClient.from_config(self.cfg)

    def _prometheus(self) -> PrometheusClient | None:
        return PrometheusClient.from_config(self.cfg) if self.cfg.endpoints.prometheus is not None else None

    @property
    def stopped_by(self) -> dict[str, Any] | None:
        return self.watch.stopped_by if self.watch is not None else None

    def raise_if_stopped(self) -> None:
        stop = self.stopped_by
        if stop is not None:
            raise StopCondition(stop["why"])

    # ------------------------------------------------------------------ preflight

    def preflight(self) -> list[CheckResult]:
        """Alertmanager answers; no stop condition fires already (a drill would stop at once, as
        FIS refuses to start with an alarm raised); the expected alerts' rules are loaded."""
        problems: list[str] = []
        warnings: list[str] = []
        observed: dict[str, Any] = {"expected": self.exp.expected, "stop_on": self.exp.stop_on}
        try:
            with self._client() as am:
                firing = am.alerts()
        except SreError as exc:
            problems.append(f"{exc}: the drill could not silence its alerts, and would page")
            firing = []
        stops = sorted({a["labels"]["alertname"] for a in firing
                        if self.exp.classify(a.get("labels") or {}) == "stop"})
        if stops:
            problems.append(f"stop condition already firing: {', '.join(stops)}")
        prom = self._prometheus()
        if prom is None:
            warnings.append("no endpoints.prometheus: bounds come from the rules tree, ALERTS is not read")
        else:
            with prom:
                self.bounds = rule_bounds(self.cfg, prom, self.exp.expected)
            missing = [n for n, b in self.bounds.items() if b.loaded is False]
            if missing:
                warnings.append(f"Prometheus runs no rule for {', '.join(missing)}: it cannot fire")
            observed["bounds_seconds"] = {n: b.bound_seconds for n, b in self.bounds.items()}
        status = "fail" if problems else "warn" if warnings else "ok"
        ok = (f"{len(self.exp.expected)} alert(s) expected, {len(self.exp.silenced())} silenced for "
              f"{self.exp.cluster}, {len(self.exp.stop_on)} stop condition(s)")
        return [CheckResult("drill.preflight.alerting", self.exp.cluster, status, observed,  # type: ignore[arg-type]
                            "; ".join(problems or warnings or [ok]))]

    # ------------------------------------------------------------------ silences

    def silence(self) -> dict[str, Any]:
        """Before the fault: one silence for the cluster's expected and may-fire alerts, and the watch."""
        names = self.exp.silenced()
        now = datetime.now(UTC)
        ends = datetime.fromtimestamp(self.deadline, UTC)
        if names:
            matchers = [Matcher("alertname", "|".join(names), regex=True), Matcher(SCOPE_LABEL, self.exp.cluster)]
            comment = (f"{COMMENT_PREFIX}{self.drill_id} by {self.actor or 'unknown'}: {self.summary}; "
                       f"expected: {', '.join(self.exp.expected) or 'none'}")
            with self._client() as am:
                sid = am.create_silence(matchers, now, ends, self.actor or "sre", comment)
            self.silences.append(SilenceRecord(sid, [str(m) for m in matchers], iso(self.deadline), time.time()))
        self.watch = AlertWatch(self._client(), self.exp, self.started, self.conf.poll, self.deadline)
        self.watch.start()
        return {"silences": [s.id for s in self.silences], "alerts": names, SCOPE_LABEL: self.exp.cluster,
                "until": iso(self.deadline), "stop_on": self.exp.stop_on}

    def unsilence(self, *, settle: bool = True) -> dict[str, Any]:
        """Remove the silences (idempotent). With `settle`, first wait (up to drills.alerts.settle)
        until the alerts they hold have resolved, so that removing them pages nobody."""
        live = [s for s in self.silences if s.removed_ts is None]
        if not live:
            return {"removed": []}
        still: list[str] = []
        if settle and self.watch is not None:
            still = self._settle()
        removed, failed = [], []
        for s in live:
            try:
                with self._client() as am:
                    s.removed = "expired" if am.expire_silence(s.id) else "already gone"
                s.removed_ts = time.time()
                removed.append(s.id)
            except SreError as exc:
                s.removed = f"failed: {exc}"
                failed.append(f"{s.id}: {exc}")
        if still:
            self.settle_note = (f"still firing when the silences were removed (they page now): {', '.join(still)}")
        elif not settle:
            self.settle_note = "silences removed at once (the drill was interrupted); alerts still firing page now"
        if failed:
            from sre.drills.steps import NotUndone

            raise NotUndone("could not remove drill silences " + "; ".join(failed)
                            + ": expire them in Alertmanager (amtool silence expire ID)")
        return {"removed": removed, "still_firing": still}

    def _settle(self) -> list[str]:
        """Wait until the silenced alerts of the cluster are quiet, in Alertmanager and in Prometheus
        (pending ones too: a condition the last step caused may not have fired yet), for two
        evaluation intervals in a row (at least 5 s); what is still busy at `settle` is returned."""
        deadline = time.monotonic() + self.conf.settle
        names = self.exp.silenced()
        prom = self._prometheus()
        try:
            # Rules Prometheus does not run cannot be pending: their (default) interval does not count.
            intervals = [b.interval_seconds for b in rule_bounds(self.cfg, prom, names).values() if b.loaded is not False]
            quiet_for = max(2 * max(intervals, default=DEFAULT_EVALUATION), 5.0)
            quiet_since: float | None = None
            while True:
                busy = self._busy(names, prom)
                now = time.monotonic()
                quiet_since = None if busy else (quiet_since or now)
                if quiet_since is not None and now - quiet_since >= quiet_for:
                    return []
                if now > deadline:
                    return busy
                time.sleep(min(self.conf.poll, 1.0))
        finally:
            if prom is not None:
                prom.close()

    def _busy(self, names: list[str], prom: PrometheusClient | None) -> list[str]:
        def mine(labels: dict[str, str]) -> bool:
            return labels.get("alertname") in names and labels.get(SCOPE_LABEL) == self.exp.cluster

        try:
            with self._client() as am:
                labels = [a.get("labels") or {} for a in am.alerts()]
            if prom is not None:
                labels += [a.get("labels") or {} for a in prom.alerts()]
        except SreError as exc:
            return [f"unknown ({exc})"]
        return sorted({f"{x['alertname']}{{{SCOPE_LABEL}={self.exp.cluster}}}" for x in labels if mine(x)})

    # ------------------------------------------------------------------ the hold after the switch

    def hold(self, fault_at: float) -> dict[str, Any]:
        """Keep the fault until every expected alert fired, or its bound since the fault passed."""
        if not self.bounds:
            prom = self._prometheus()
            try:
                self.bounds = rule_bounds(self.cfg, prom, self.exp.expected)
            finally:
                if prom is not None:
                    prom.close()
        # A rule Prometheus does not run cannot fire: no point holding the fault for it.
        cannot = [n for n in self.exp.expected if self.bounds[n].loaded is False]
        wanted = [n for n in self.exp.expected if n not in cannot]
        until = fault_at + max((self.bounds[n].bound_seconds for n in wanted), default=0.0)
        while True:
            self.raise_if_stopped()
            fired = self._fired_since(fault_at)
            waiting = [n for n in wanted if n not in fired]
            if not waiting or time.time() >= until:
                break
            time.sleep(HOLD_POLL)
        self.hold_detail = {"fired": {n: round(t - fault_at, 3) for n, t in fired.items()},
                            "not_fired": waiting, "cannot_fire": cannot,
                            "held_seconds": round(time.time() - fault_at, 3)}
        return self.hold_detail

    def _fired_since(self, fault_at: float) -> dict[str, float]:
        """Expected alert name -> when Alertmanager says it started firing, since the fault."""
        out: dict[str, float] = {}
        if self.watch is None:
            return out
        for s in self.watch.snapshot():
            if self.exp.classify(s.labels) == "expected" and s.starts_at >= fault_at:
                name = s.labels["alertname"]
                out[name] = min(out.get(name, s.starts_at), s.starts_at)
        return out

    # ------------------------------------------------------------------ the grade

    def finish(self, fault_at: float | None, *, interrupted: bool) -> None:
        """After the drill: settle and remove the silences, stop the watch, grade."""
        if self.watch is None:
            self.graded = {"verdict": "not_checked", "message": "the drill ended before it silenced anything"}
            return
        try:
            self.unsilence(settle=not interrupted)
        except SreError as exc:
            log.error("drill %d: %s", self.drill_id, exc)
        except Exception as exc:  # NotUndone: listed in the section; never lose the report over it
            log.error("drill %d: %s", self.drill_id, exc)
        if self.watch is not None:
            self.watch.read_once()
            self.watch.stop()
        try:
            self.graded = self.grade(fault_at)
        except Exception as exc:
            log.exception("drill %d: grading the alerting failed", self.drill_id)
            self.graded = {"verdict": "not_checked", "message": f"grading failed: {exc.__class__.__name__}: {exc}"}

    def grade(self, fault_at: float | None) -> dict[str, Any]:
        end = time.time()
        seen = self.watch.snapshot() if self.watch is not None else []
        prom = self._prometheus()
        firings: list[Firing] = []
        notes: list[str] = []
        try:
            if prom is not None:
                names = sorted(set(self.exp.expected) | {s.labels.get("alertname", "") for s in seen})
                every_rule = rule_bounds(self.cfg, prom, names)
                self.bounds = {n: every_rule[n] for n in self.exp.expected}
                every = {n: b.interval_seconds for n, b in every_rule.items()}
                try:
                    firings = alerts_series(prom, self.started, end, every)
                except SreError as exc:
                    notes.append(f"ALERTS not read from Prometheus: {exc}")
        finally:
            if prom is not None:
                prom.close()
        if not self.bounds:
            self.bounds = rule_bounds(self.cfg, None, self.exp.expected)
        # Alertmanager's view: alerts that started during the drill (older ones were there before it).
        for s in seen:
            if s.starts_at >= self.started - 1:
                firings.append(Firing(s.labels, s.starts_at, None if s.present else s.last_seen, "alertmanager"))
        states = {tuple(sorted(s.labels.items())): s for s in seen}
        fired = _merge(firings, self.started)
        # Alerts already firing when the drill started are not its doing: counted, not listed.
        before = sorted({f.labels.get("alertname", "?") for f in fired if f.start < self.started - 1})
        if before:
            notes.append(f"already firing when the drill started (not graded, not listed): {', '.join(before)}")
        rows: list[dict[str, Any]] = []
        for f in (f for f in fired if f.start >= self.started - 1):
            key = tuple(sorted(f.labels.items()))
            am = states.get(key)
            rows.append({"alertname": f.labels.get("alertname"), "labels": f.labels,
                         "class": self.exp.classify(f.labels), "fired_at": iso(f.start), "fired_ts": f.start,
                         "resolved_ts": f.end, "source": f.source,
                         "silenced": bool(am and am.silenced_by), "paged": bool(am and not am.silenced_by
                                                                             and am.state == "active")})
        expected: list[dict[str, Any]] = []
        for name in self.exp.expected:
            b = self.bounds[name]
            first = min((r for r in rows if r["class"] == "expected" and r["alertname"] == name
                         and fault_at is not None and r["fired_ts"] >= fault_at - 0.001),
                        key=lambda r: r["fired_ts"], default=None)
            detection = None if first is None or fault_at is None else round(first["fired_ts"] - fault_at, 3)
            ok = detection is not None and detection <= b.bound_seconds
            why = ("fired within its bound" if ok else
                   f"fired {detection:g}s after the fault, over its bound" if detection is not None else
                   "Prometheus runs no rule for it: it cannot fire" if b.loaded is False else
                   "the fault never happened" if fault_at is None else "never fired")
            expected.append({"alertname": name, SCOPE_LABEL: self.exp.cluster,
                             "fired_at": first["fired_at"] if first else None,
                             "fired_ts": first["fired_ts"] if first else None,
                             "labels": first["labels"] if first else {},
                             "detection_seconds": detection, "bound_seconds": round(b.bound_seconds, 3),
                             "for_seconds": b.for_seconds, "interval_seconds": b.interval_seconds,
                             "margin_seconds": b.margin_seconds, "rule_loaded": b.loaded, "pass": ok,
                             "verdict": why})
        unexpected = [r for r in rows if r["class"] == "unexpected"]
        if fault_at is None:
            verdict, message = "not_checked", "the drill stopped before its fault: nothing to detect"
        elif not expected:
            verdict, message = "pass", "no alert was expected"
        elif all(e["pass"] for e in expected):
            verdict, message = "pass", "every expected alert fired within its bound"
        else:
            late = [f"{e['alertname']} ({e['verdict']})" for e in expected if not e["pass"]]
            verdict, message = "fail", "not detected in time: " + ", ".join(late)
        if self.watch is not None and self.watch.errors:
            notes.append(f"Alertmanager could not be read {self.watch.errors} time(s): {self.watch.last_error}")
        if self.settle_note:
            notes.append(self.settle_note)
        return {"verdict": verdict, "message": message,
                "fault_at": iso(fault_at) if fault_at else None, "fault_ts": fault_at,
                "expected": expected, "fired": rows, "unexpected": unexpected, "notes": notes}

    def section(self) -> dict[str, Any]:
        """The report's `alerting` part."""
        graded = self.graded or {"verdict": "not_checked", "message": "not graded"}
        return {"checked": graded["verdict"] != "not_checked", **self.exp.to_dict(), **graded,
                "notes": self.exp.notes + list(graded.get("notes") or []),
                "silences": [s.to_dict() for s in self.silences], "stopped_by": self.stopped_by,
                "hold": self.hold_detail}


def _merge(firings: list[Firing], since: float) -> list[Firing]:
    """One interval per label set and start: Prometheus's and Alertmanager's readings of the same
    alert agree on the start (Alertmanager's startsAt is the evaluation that fired it)."""
    by_key: dict[tuple[tuple[str, str], ...], list[Firing]] = {}
    for f in sorted(firings, key=lambda f: (f.source != "prometheus", f.start)):
        if (f.end if f.end is not None else time.time()) < since:
            continue
        labels = {k: v for k, v in f.labels.items()}
        key = tuple(sorted(labels.items()))
        same = by_key.setdefault(key, [])
        match = next((g for g in same if abs(g.start - f.start) <= 2.0 or
                      (g.start <= f.start <= (g.end if g.end is not None else f.start))), None)
        if match is None:
            same.append(Firing(labels, f.start, f.end, f.source))
        else:
            match.start = min(match.start, f.start)
            if match.end is not None and (f.end is None or f.end > match.end):
                match.end = f.end
    return sorted((f for fs in by_key.values() for f in fs), key=lambda f: f.start)


def not_configured(reason: str) -> dict[str, Any]:
    return {"checked": False, "verdict": "not_checked", "message": reason, "expected": [], "fired": [],
            "unexpected": [], "silences": [], "stopped_by": None, "notes": []}

