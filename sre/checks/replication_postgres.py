"""The PostgreSQL backend of the replication check: what the primary and each streaming replica
answer (one statement each), and how the answers become one verdict per replica.

Why lag in seconds is computed the way it is (an idle primary is not lag; equal LSNs on a cut
link are not "caught up"): docs/replication.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sre.adapters.postgres import Timed
from sre.checks.bounded import Probe, Task
from sre.checks.humanize import human_bytes, human_seconds
from sre.checks.replication_verdict import CHECK_POSTGRES, Verdict, apply_threshold, lag_message
from sre.errors import SreError
from sre.results import CheckResult

if TYPE_CHECKING:
    from sre.adapters.postgres import Timed
    from sre.config import PgNode, PostgresCluster

APPLICATION_NAME = "sre-replication"
HEARTBEAT_HISTORY = 64  # heartbeat write times kept in the row: 16 min of history at one check per 15 s

# One statement on the primary: its WAL position, every WAL sender and every physical slot.
# Byte lags are computed against one `pg_current_wal_lsn()` so they are consistent with each other.
PRIMARY_SQL = """
WITH cur AS (
    SELECT pg_is_in_recovery() AS in_recovery,
           CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END AS lsn
)
SELECT clock_timestamp(), cur.in_recovery, cur.lsn::text,
  (SELECT coalesce(json_agg(json_build_object(
       'application_name', r.application_name, 'pid', r.pid, 'state', r.state,
       'sync_state', r.sync_state, 'client_addr', host(r.client_addr),
       'sent_bytes', pg_wal_lsn_diff(cur.lsn, r.sent_lsn),
       'write_bytes', pg_wal_lsn_diff(cur.lsn, r.write_lsn),
       'flush_bytes', pg_wal_lsn_diff(cur.lsn, r.flush_lsn),
       'replay_bytes', pg_wal_lsn_diff(cur.lsn, r.replay_lsn),
       'write_lag', extract(epoch FROM r.write_lag),
       'flush_lag', extract(epoch FROM r.flush_lag),
       'replay_lag', extract(epoch FROM r.replay_lag),
       'reply_age', extract(epoch FROM clock_timestamp() - r.reply_time))), '[]'::json)
   FROM pg_stat_replication AS r),
  (SELECT coalesce(json_agg(json_build_object(
       'slot_name', s.slot_name, 'active', s.active, 'active_pid', s.active_pid,
       'wal_status', s.wal_status, 'retained_bytes', pg_wal_lsn_diff(cur.lsn, s.restart_lsn))), '[]'::json)
   FROM pg_replication_slots AS s WHERE s.slot_type = 'physical')
FROM cur
"""

# One statement on each replica: its positions, replay state and WAL receiver, and the receiver
# timeouts that bound how old `last_msg_receipt_time` gets on a healthy idle link.
REPLICA_SQL = """
SELECT clock_timestamp(), pg_is_in_recovery(),
       pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()),
       pg_last_xact_replay_timestamp(),
       CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END,
       w.status, extract(epoch FROM clock_timestamp() - w.last_msg_receipt_time), w.pid,
       extract(epoch FROM current_setting('wal_receiver_timeout')::interval),
       extract(epoch FROM current_setting('wal_receiver_status_interval')::interval),
       extract(epoch FROM w.last_msg_receipt_time - w.last_msg_send_time)
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS w ON true
"""


def parse_lsn(text: str | None) -> int | None:
    """'16/B374D848' -> a byte position."""
    if not text:
        return None
    hi, _, lo = text.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def format_lsn(pos: int | None) -> str | None:
    return None if pos is None else f"{pos >> 32:X}/{pos & 0xFFFFFFFF:X}"


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


# ---------------------------------------------------------------- what the nodes answer


@dataclass
class PrimaryView:
    now: datetime  # the primary's clock when it answered
    mono: float  # our monotonic clock at the same moment (midpoint of the round trip)
    in_recovery: bool
    current_lsn: int | None
    standbys: list[dict[str, Any]]
    slots: list[dict[str, Any]]
    heartbeat: list[datetime] | None = None  # write times still in the row, newest first
    heartbeat_error: str | None = None

    def clock_at(self, mono: float) -> datetime:
        """The primary's clock at another moment of ours: ages are measured on one clock, no skew."""
        return self.now + timedelta(seconds=mono - self.mono)


@dataclass
class ReplicaView:
    now: datetime
    mono: float
    in_recovery: bool
    receive_lsn: int | None
    replay_lsn: int | None
    unreplayed_bytes: int | None  # received but not yet applied
    replay_ts: datetime | None  # commit time (primary's clock) of the last applied transaction
    pause_state: str | None  # not paused | pause requested | paused
    receiver_status: str | None  # None: no WAL receiver running
    receiver_age: float | None  # seconds since the receiver last heard from the primary
    receiver_pid: int | None  # visible even without the privilege to see the rest
    receiver_timeout: float  # wal_receiver_timeout, seconds (0: disabled)
    status_interval: float  # wal_receiver_status_interval, seconds
    # The last message's trip from the primary (its send time, its clock) to the replica (receipt,
    # the replica's clock): the link's one-way delay, give or take the clocks' skew.
    transit: float | None = None
    heartbeat_at: datetime | None = None
    heartbeat_note: str | None = None
    # A second reading, taken only when the first found WAL received but not applied: a replica
    # caught in the instant between receiving and applying a commit is not lagging (see
    # `replay_age`), and one that really is stuck shows the same state twice.
    recheck: tuple[float, int, datetime | None] | None = None  # (mono, unreplayed_bytes, replay_ts)

    def replay_age(self, clock: Any) -> float | None:
        """Seconds since the last applied commit while WAL waits to be applied (None: nothing waits).

        The oldest unapplied commit is younger than the last applied one, so this bounds its age
        from above; taking the smaller of two readings removes the instant-of-arrival case."""
        readings = [(self.mono, self.unreplayed_bytes, self.replay_ts)]
        if self.recheck is not None:
            readings.append(self.recheck)
        ages: list[float] = []
        for mono, waiting, ts in readings:
            if not waiting:
                ages.append(0.0)
            elif ts is not None:
                ages.append(max(0.0, (clock(mono) - ts).total_seconds()))
        return min(ages) if ages and self.unreplayed_bytes else None


_heartbeat_ready: set[tuple[str, str]] = set()


def _heartbeat_table(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*name.split(".", 1))


def _write_heartbeat(db: Timed, cluster_name: str, table: str) -> list[datetime]:
    """Upsert this cluster's heartbeat row; the write times it now holds, newest first."""
    from psycopg import sql

    tbl = _heartbeat_table(table)
    key = (cluster_name, table)
    if key not in _heartbeat_ready:
        db.query(sql.SQL("CREATE TABLE IF NOT EXISTS {} (source text PRIMARY KEY, at timestamptz NOT NULL, "
                         "history timestamptz[] NOT NULL)").format(tbl))
        _heartbeat_ready.add(key)
    # One clock reading for both columns, so the replica's `at` is found exactly in `history`.
    rows = db.query(sql.SQL(
        "WITH t AS (SELECT clock_timestamp() AS ts) "
        "INSERT INTO {tbl} AS h (source, at, history) SELECT %s, ts, ARRAY[ts] FROM t "
        "ON CONFLICT (source) DO UPDATE SET at = excluded.at, "
        "history = (excluded.history || h.history)[1:{n}] RETURNING history"
    ).format(tbl=tbl, n=sql.Literal(HEARTBEAT_HISTORY)), [cluster_name])
    return list(rows[0][0])


def probe_primary(cluster_name: str, cluster: PostgresCluster) -> PrimaryView:
    """At most three statements on the primary: its state; with the heartbeat, one upsert (and, once
    per process, CREATE TABLE IF NOT EXISTS)."""
    with Timed(cluster.primary, cluster.connect_timeout, application_name=APPLICATION_NAME,
               dbname=cluster.database) as db:
        t0 = time.monotonic()
        row = db.query(PRIMARY_SQL)[0]
        view = PrimaryView(now=row[0], mono=(t0 + time.monotonic()) / 2, in_recovery=bool(row[1]),
                           current_lsn=parse_lsn(row[2]), standbys=list(row[3]), slots=list(row[4]))
        if cluster.heartbeat.enabled and not view.in_recovery:
            # After the state query: the heartbeat's own WAL must not count as lag in this check.
            try:
                view.heartbeat = _write_heartbeat(db, cluster_name, cluster.heartbeat.table)
            except Exception as exc:
                _heartbeat_ready.discard((cluster_name, cluster.heartbeat.table))
                view.heartbeat_error = str(exc) if isinstance(exc, SreError) else f"{exc.__class__.__name__}: {exc}"
        return view


def probe_replica(cluster_name: str, cluster: PostgresCluster, node: PgNode) -> ReplicaView:
    import psycopg
    from psycopg import sql


    with Timed(node, cluster.connect_timeout, application_name=APPLICATION_NAME, dbname=cluster.database) as db:
        t0 = time.monotonic()
        r = db.query(REPLICA_SQL)[0]
        view = ReplicaView(
            now=r[0], mono=(t0 + time.monotonic()) / 2, in_recovery=bool(r[1]), receive_lsn=parse_lsn(r[2]),
            replay_lsn=parse_lsn(r[3]), unreplayed_bytes=None if r[4] is None else int(r[4]), replay_ts=r[5],
            pause_state=r[6], receiver_status=r[7], receiver_age=_num(r[8]),
            receiver_pid=r[9], receiver_timeout=float(r[10] or 0), status_interval=float(r[11] or 0),
            transit=_num(r[12]),
        )
        if view.unreplayed_bytes:
            t0 = time.monotonic()
            again = db.query(REPLICA_SQL)[0]
            view.recheck = ((t0 + time.monotonic()) / 2, int(again[4] or 0), again[5])
        if cluster.heartbeat.enabled:
            try:
                rows = db.query(sql.SQL("SELECT at FROM {} WHERE source = %s").format(
                    _heartbeat_table(cluster.heartbeat.table)), [cluster_name])
            except psycopg.errors.UndefinedTable:
                view.heartbeat_note = "the heartbeat table has not reached the replica yet"
            else:
                if rows:
                    view.heartbeat_at = rows[0][0]
                else:
                    view.heartbeat_note = "no heartbeat row on the replica yet"
        return view


# ---------------------------------------------------------------- judging one replica


def _slot_for(node: PgNode, primary: PrimaryView, standby: dict[str, Any] | None) -> dict[str, Any] | None:
    wanted = node.slot or node.name
    for s in primary.slots:
        if s["slot_name"] == wanted:
            return s
    if standby is not None:
        for s in primary.slots:
            if s.get("active_pid") == standby.get("pid"):
                return s
    return None


def _heartbeat_lag(history: list[datetime], seen: datetime, now: datetime) -> tuple[float, bool]:
    """Age of the oldest heartbeat the replica has not applied (0 when it has the newest), and
    whether that is only a lower bound (the replica is behind all the history the row keeps)."""
    missing = [t for t in history if t > seen]
    if not missing:
        return 0.0, False
    oldest = min(missing)
    return max(0.0, (now - oldest).total_seconds()), len(missing) == len(history)


def judge_replica(cluster_name: str, cluster: PostgresCluster, node: PgNode, primary: Probe,
                  replica: Probe) -> CheckResult:
    """Turn what the primary and the replica answered into one result, in four parts: the
    primary's view of the link, the replica's view, lag in bytes, lag in seconds."""
    objectives = cluster.objectives
    verdict = Verdict()
    primary_view: PrimaryView | None = primary.value if primary.ok else None
    replica_view: ReplicaView | None = replica.value if replica.ok else None
    observed: dict[str, Any] = {"cluster": cluster_name, "replica": node.name, "region": node.region,
                                "primary": cluster.primary.name}
    link_down: list[str] = []  # why the link is judged cut, from either side

    standby = _judge_primary_side(cluster, node, primary, primary_view, observed, verdict, link_down)
    _judge_replica_side(cluster, node, replica, replica_view, standby, observed, verdict, link_down)
    connected = (not link_down and primary_view is not None and standby is not None
                 and standby["state"] == "streaming")
    observed["connected"] = connected if (primary_view is not None or replica_view is not None) else False
    lag_bytes = _lag_bytes(primary_view, replica_view, standby, observed)
    basis, lag_seconds = _lag_seconds(cluster, primary_view, replica_view, standby, link_down, lag_bytes,
                                      observed, verdict)

    if link_down:
        verdict.fail.append("replication link down: " + "; ".join(link_down))
    if lag_seconds is not None and basis != "upper_bound":
        apply_threshold(verdict, lag_seconds, objectives.lag_warn, objectives.lag_fail, "lag in seconds")
    apply_threshold(verdict, lag_bytes, objectives.lag_warn_bytes, objectives.lag_fail_bytes, "lag in bytes")
    if observed.get("replay_paused") and not verdict.fail and not verdict.warn:
        verdict.warn.append("replay paused")
    return CheckResult(check=CHECK_POSTGRES, target=f"{cluster_name}/{node.name}", status=verdict.status,
                       observed=observed,
                       message=lag_message(node.region, node.name, pg_lag_phrase(lag_bytes, lag_seconds, basis),
                                           verdict))


def _judge_primary_side(cluster: PostgresCluster, node: PgNode, primary: Probe, primary_view: PrimaryView | None,
                        observed: dict[str, Any], verdict: Verdict, link_down: list[str]) -> dict[str, Any] | None:
    """The primary's view: its WAL sender for this replica (returned: None when it has none), and
    the replica's slot."""
    app_name = node.application_name or node.name
    if primary_view is None:
        observed["primary_error"] = primary.error
        verdict.fail.append(f"cannot check from the primary ({primary.error})")
        return None
    if primary_view.in_recovery:
        verdict.fail.append(f"the configured primary {cluster.primary.name} is itself in recovery (out-of-date "
                            "config after a failover?)")
        return None
    standby = next((s for s in primary_view.standbys if s["application_name"] == app_name), None)
    observed["state"] = standby["state"] if standby else None
    observed["sync_state"] = standby["sync_state"] if standby else None
    if standby is None:
        link_down.append(f"the primary has no WAL sender for it (no '{app_name}' in pg_stat_replication)")
    else:
        for k in ("sent", "write", "flush", "replay"):
            behind = standby[f"{k}_bytes"]
            observed[f"{k}_lag_bytes"] = None if behind is None else max(0, int(behind))
        # NULL lag intervals on a live sender mean "nothing to wait for": caught up, not unknown.
        for k in ("write", "flush", "replay"):
            seconds = _num(standby[f"{k}_lag"])
            observed[f"{k}_lag_seconds"] = round(seconds, 3) if seconds is not None else 0.0
        observed["reply_age_seconds"] = _round(_num(standby["reply_age"]))
        if standby["state"] is None:
            verdict.warn.append(f"cannot read pg_stat_replication on {cluster.primary.name} "
                                "(grant the checking role pg_monitor)")
        elif standby["state"] != "streaming":
            verdict.warn.append(f"WAL sender state is {standby['state']}")
    slot = _slot_for(node, primary_view, standby)
    if slot is not None:
        observed["slot"] = slot["slot_name"]
        observed["slot_active"] = slot["active"]
        observed["slot_wal_status"] = slot["wal_status"]
        retained = slot["retained_bytes"]
        observed["slot_retained_bytes"] = None if retained is None else max(0, int(retained))
        if not slot["active"]:
            verdict.notes.append(f"slot {slot['slot_name']} inactive, retaining "
                                 f"{human_bytes(observed['slot_retained_bytes'])} of WAL")
        if slot["wal_status"] in ("unreserved", "lost"):
            verdict.fail.append(f"slot {slot['slot_name']} WAL is {slot['wal_status']}: the replica may need "
                                "rebuilding")
    return standby


def _judge_replica_side(cluster: PostgresCluster, node: PgNode, replica: Probe, replica_view: ReplicaView | None,
                        standby: dict[str, Any] | None, observed: dict[str, Any], verdict: Verdict,
                        link_down: list[str]) -> None:
    """The replica's view: recovery, replay, and whether its WAL receiver hears the primary; then
    whether the primary hears the replica's replies."""
    objectives = cluster.objectives
    if replica_view is None:
        observed["replica_error"] = replica.error
        verdict.fail.append(f"cannot reach the replica ({replica.error})")
    else:
        observed["in_recovery"] = replica_view.in_recovery
        observed["receive_lsn"] = format_lsn(replica_view.receive_lsn)
        observed["replay_lsn"] = format_lsn(replica_view.replay_lsn)
        observed["unreplayed_bytes"] = replica_view.unreplayed_bytes
        observed["receiver_status"] = replica_view.receiver_status
        observed["receiver_last_msg_age_seconds"] = _round(replica_view.receiver_age)
        observed["receiver_transit_seconds"] = (None if replica_view.transit is None
                                                else round(max(0.0, replica_view.transit), 4))
        observed["replay_paused"] = replica_view.pause_state in ("paused", "pause requested")
        observed["last_replay_at"] = replica_view.replay_ts.isoformat() if replica_view.replay_ts else None
        if not replica_view.in_recovery:
            verdict.fail.append("it is not in recovery: promoted, or a second primary")
        elif replica_view.receiver_status is None and replica_view.receiver_pid is not None:
            verdict.warn.append(f"cannot read pg_stat_wal_receiver on {node.name} (grant the checking role "
                                "pg_monitor)")
        elif replica_view.receiver_status is None:
            link_down.append("no WAL receiver is running on the replica")
        elif replica_view.receiver_status != "streaming":
            link_down.append(f"its WAL receiver is {replica_view.receiver_status}")
        else:
            # On an idle link the receiver pings after wal_receiver_timeout/2 of silence, so that
            # much quiet is normal: only longer is a cut link.
            stale = objectives.receiver_stale
            if replica_view.receiver_timeout > 0:
                stale = max(stale, replica_view.receiver_timeout / 2 + 1)
            if replica_view.receiver_age is not None and replica_view.receiver_age > stale:
                link_down.append(f"the replica heard nothing from the primary for "
                                 f"{human_seconds(replica_view.receiver_age)}")
        if observed["replay_paused"]:
            verdict.notes.append("replay paused")
    if standby is not None and standby.get("reply_age") is not None:
        interval = replica_view.status_interval if replica_view is not None else 0.0
        stale = max(objectives.receiver_stale, 2 * interval + 1) if interval > 0 else objectives.receiver_stale
        if float(standby["reply_age"]) > stale:
            link_down.append(f"the primary heard nothing from it for {human_seconds(float(standby['reply_age']))}")


def _lag_bytes(primary_view: PrimaryView | None, replica_view: ReplicaView | None, standby: dict[str, Any] | None,
               observed: dict[str, Any]) -> int | None:
    """Lag in bytes: the primary's position minus what the replica applied."""
    lag_bytes: int | None = None
    if primary_view is not None and primary_view.current_lsn is not None:
        if replica_view is not None and replica_view.replay_lsn is not None:
            lag_bytes = max(0, primary_view.current_lsn - replica_view.replay_lsn)
        elif standby is not None and standby["replay_bytes"] is not None:
            lag_bytes = max(0, int(standby["replay_bytes"]))
        elif observed.get("slot_retained_bytes") is not None:
            lag_bytes = observed["slot_retained_bytes"]
    observed["lag_bytes"] = lag_bytes
    return lag_bytes


def _lag_seconds(cluster: PostgresCluster, primary_view: PrimaryView | None, replica_view: ReplicaView | None,
                 standby: dict[str, Any] | None, link_down: list[str], lag_bytes: int | None,
                 observed: dict[str, Any], verdict: Verdict) -> tuple[str, float | None]:
    """Lag in seconds and its basis: each figure below is an age of unapplied changes; the largest wins.

    Ages are read on the primary's clock when it answered (commit timestamps are its clock too),
    so clock skew between hosts does not show up as lag; else on the replica's own clock."""
    clock: Any = None
    if replica_view is not None:
        answered = replica_view
        clock = primary_view.clock_at if primary_view is not None else (
            lambda mono: answered.now + timedelta(seconds=mono - answered.mono))
    now = clock(replica_view.mono) if replica_view is not None else None
    figures: dict[str, float] = {}
    if replica_view is not None and now is not None and replica_view.in_recovery:
        age = replica_view.replay_age(clock)
        if age is not None:
            figures["replay_timestamp"] = age
        elif link_down and lag_bytes and replica_view.replay_ts is not None:
            # The link is down, so both LSNs are frozen: an upper bound, clearly labelled.
            figures["upper_bound"] = max(0.0, (now - replica_view.replay_ts).total_seconds())
    if (standby is not None and standby["state"] == "streaming" and not link_down
            and (replica_view is None or lag_bytes)):
        # The primary's replay_lag is as old as the replica's last reply, and keeps its last value
        # for a moment after the replica caught up: used only when the replica cannot tell, or the
        # primary is ahead of what the replica received (a slow link, not slow replay).
        figures["primary_replay_lag"] = observed.get("replay_lag_seconds") or 0.0
    if cluster.heartbeat.enabled:
        if primary_view is not None and primary_view.heartbeat_error:
            observed["heartbeat_error"] = primary_view.heartbeat_error
            verdict.warn.append(f"heartbeat write failed ({primary_view.heartbeat_error})")
        if replica_view is not None and replica_view.heartbeat_note:
            verdict.notes.append(replica_view.heartbeat_note)
        if (primary_view is not None and primary_view.heartbeat and replica_view is not None
                and replica_view.heartbeat_at is not None and now is not None):
            heartbeat, lower_bound = _heartbeat_lag(primary_view.heartbeat, replica_view.heartbeat_at, now)
            observed["heartbeat_lag_seconds"] = round(heartbeat, 3)
            observed["heartbeat_lag_is_lower_bound"] = lower_bound
            figures["heartbeat"] = heartbeat
    lag_seconds: float | None
    if figures:
        basis, lag_seconds = max(figures.items(), key=lambda kv: kv[1])
        if lag_seconds == 0:
            basis = "caught_up"
    elif replica_view is not None and replica_view.in_recovery and not link_down:
        basis, lag_seconds = "caught_up", 0.0
    else:
        basis, lag_seconds = "unknown", None
    observed["lag_seconds"] = _round(lag_seconds)
    observed["lag_seconds_basis"] = basis
    return basis, lag_seconds


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def pg_lag_phrase(lag_bytes: int | None, lag_seconds: float | None, basis: str) -> str:
    if lag_bytes is None and lag_seconds is None:
        return "lag unknown"
    if not lag_bytes and not lag_seconds:
        return f"caught up ({human_bytes(lag_bytes)} / {human_seconds(lag_seconds)} behind)"
    secs = ("up to " if basis == "upper_bound" else "") + human_seconds(lag_seconds)
    return f"{human_bytes(lag_bytes)} / {secs} behind"


def judge_cluster(cluster_name: str, cluster: PostgresCluster, probes: dict[str, Probe]) -> list[CheckResult]:
    primary = probes[cluster.primary.name]
    return [judge_replica(cluster_name, cluster, node, primary, probes[node.name]) for node in cluster.replicas]


def tasks(cluster_name: str, cluster: PostgresCluster) -> list[Task[tuple[str, str, str]]]:
    """One task per node; each ends by its own deadline (connect, then answer, each within the timeout)."""
    budget = 2 * max(cluster.connect_timeout, 0.1) + 0.5
    out: list[Task[tuple[str, str, str]]] = [
        Task(("postgres", cluster_name, cluster.primary.name), partial(probe_primary, cluster_name, cluster), budget)]
    for node in cluster.replicas:
        out.append(Task(("postgres", cluster_name, node.name), partial(probe_replica, cluster_name, cluster, node),
                        budget))
    return out
