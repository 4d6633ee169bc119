"""The PostgreSQL operations a drill performs on one node, over SQL and (when configured) beside
its data directory. Roles are read from the servers, never assumed from the config: after a drill
without failback the config's `primary` is the standby."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sre.adapters.dns import normalize_target
from sre.adapters.postgres import Timed
from sre.drills.steps import NotUndone
from sre.errors import UsageError
from sre.local.pgctl import PgCtl

if TYPE_CHECKING:
    from sre.config import PgNode, SreConfig

SQL_TIMEOUT = 10.0


@dataclass
class Member:
    name: str
    region: str
    node: PgNode
    ctl: PgCtl | None
    target: str | None  # what the DNS record holds while this node is primary

    # ------------------------------------------------------------------ SQL

    def sql(self, query: str, params: Any = None, timeout: float = SQL_TIMEOUT) -> list[tuple[Any, ...]]:
        with Timed(self.node, timeout, name=self.name, application_name="sre-drill") as t:
            return t.query(query, params)

    def one(self, query: str, params: Any = None, timeout: float = SQL_TIMEOUT) -> Any:
        rows = self.sql(query, params, timeout)
        return rows[0][0] if rows else None

    def in_recovery(self) -> bool:
        return bool(self.one("SELECT pg_is_in_recovery()"))

    def reachable(self) -> bool:
        try:
            self.one("SELECT 1", timeout=3)
            return True
        except Exception:
            return False

    def params(self) -> dict[str, str | int]:
        """libpq parameters of this node (secret resolved: for pg_rewind's environment and the
        standby's primary_conninfo, never for logs)."""
        from psycopg.conninfo import conninfo_to_dict

        raw = conninfo_to_dict(self.node.dsn.resolve().get_secret_value())
        return {k: v for k, v in raw.items() if v is not None and k not in ("connect_timeout", "application_name")}

    # ------------------------------------------------------------------ fencing

    def fence(self) -> int:
        """Make the primary refuse writes: read-only default for every session, and end the client
        sessions that are open now (they reconnect and are refused). Returns sessions ended."""
        self.sql("ALTER SYSTEM SET default_transaction_read_only = on")
        self.sql("SELECT pg_reload_conf()")
        rows = self.sql(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return int(rows[0][0]) if rows else 0

    def unfence(self) -> bool:
        """Undo `fence` on a running primary; True when it accepts writes again."""
        self.sql("ALTER SYSTEM RESET default_transaction_read_only")
        self.sql("SELECT pg_reload_conf()")
        return self.one("SHOW default_transaction_read_only") == "off"

    def writable(self) -> bool:
        """A new session here may write: not in recovery, not read-only by default."""
        rows = self.sql("SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')")
        return bool(rows) and not rows[0][0] and rows[0][1] == "off"

    # ------------------------------------------------------------------ WAL positions

    def current_lsn(self) -> str:
        return str(self.one("SELECT pg_current_wal_lsn()"))

    def replay_lsn(self) -> str | None:
        v = self.one("SELECT pg_last_wal_replay_lsn()")
        return None if v is None else str(v)

    def lsn_diff(self, a: str, b: str | None) -> int:
        """Bytes from b to a (a - b), computed by the server."""
        if b is None:
            return int(self.one("SELECT pg_wal_lsn_diff(%s::pg_lsn, '0/0'::pg_lsn)", [a]))
        return int(self.one("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", [a, b]))

    def replay_paused(self) -> bool:
        return self.one("SELECT pg_get_wal_replay_pause_state()") != "not paused"

    def upstream_streaming(self, standby: Member) -> dict[str, Any] | None:
        """This primary's view of `standby` (pg_stat_replication), or None when not connected."""
        rows = self.sql(
            "SELECT state, sent_lsn::text, replay_lsn::text, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), "
            "extract(epoch FROM replay_lag) FROM pg_stat_replication WHERE application_name = %s",
            [standby.application_name])
        if not rows:
            return None
        state, sent, replay, lag_bytes, lag_s = rows[0]
        return {"state": state, "sent_lsn": sent, "replay_lsn": replay,
                "lag_bytes": int(lag_bytes) if lag_bytes is not None else None,
                "replay_lag_seconds": float(lag_s) if lag_s is not None else 0.0}

    # ------------------------------------------------------------------ promotion

    def promote(self, wait_seconds: int = 60) -> None:
        if not self.one("SELECT pg_promote(wait => true, wait_seconds => %s)", [wait_seconds],
                        timeout=wait_seconds + 5):
            raise RuntimeError(f"{self.name}: pg_promote did not finish within {wait_seconds}s")
        # pg_rewind reads the timeline from the control file: without a checkpoint it would find
        # "no rewind required" and the old primary would loop on "new timeline forked off".
        self.sql("CHECKPOINT", timeout=120)

    def fresh_slot(self, slot: str) -> None:
        """A new physical slot (an inactive leftover of the same name is dropped first)."""
        self.sql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                 "WHERE slot_name = %s AND NOT active", [slot])
        if not self.sql("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [slot]):
            self.sql("SELECT pg_create_physical_replication_slot(%s, true)", [slot])

    # ------------------------------------------------------------------ server control

    def control(self, why: str) -> PgCtl:
        if self.ctl is None:
            raise NotUndone(f"{self.name}: {why} needs drills.nodes.{self.name} (its data directory on this "
                            "machine) for pg_ctl/pg_rewind")
        return self.ctl

    def rejoin(self, upstream: Member, *, stop_mode: str = "fast") -> dict[str, Any]:
        """Make this node a standby of `upstream`: stop, pg_rewind from it, a new slot on it
        (named after this node), standby settings, start."""
        ctl = self.control("rejoining as a standby")
        ctl.stop(stop_mode)
        upstream.fresh_slot(self.slot)
        out = ctl.rewind(upstream.params())
        conn = {k: v for k, v in upstream.params().items() if k != "dbname"}
        conn["application_name"] = self.application_name
        ctl.write_standby(conn, slot=self.slot)
        ctl.start()
        return {"pg_rewind": "no rewind required" if "no rewind required" in out else "rewound",
                "slot": f"{self.slot} on {upstream.name}"}

    @property
    def application_name(self) -> str:
        """How a primary's pg_stat_replication names this node as a standby."""
        return self.node.application_name or self.name

    @property
    def slot(self) -> str:
        return self.node.slot or self.name


def members(cfg: SreConfig, cluster: str) -> list[Member]:
    cl = cfg.postgres.clusters[cluster]
    targets = cfg.dns.node_targets if cfg.dns else {}
    out = []
    for n in cl.nodes():
        ctl_cfg = cfg.drills.nodes.get(n.name)
        target = targets.get(n.name)
        out.append(Member(n.name, n.region, n, PgCtl(n.name, ctl_cfg) if ctl_cfg else None,
                          normalize_target(target) if target else None))
    return out


def pick_cluster(cfg: SreConfig, name: str | None) -> str:
    name = name or cfg.drills.cluster
    if name is None:
        if not cfg.postgres.clusters:
            raise UsageError("no PostgreSQL cluster is configured (postgres.clusters)")
        if len(cfg.postgres.clusters) != 1:
            raise UsageError("several PostgreSQL clusters are configured: name one with --cluster "
                             f"({', '.join(sorted(cfg.postgres.clusters)) or 'none configured'})")
        name = next(iter(cfg.postgres.clusters))
    if name not in cfg.postgres.clusters:
        raise UsageError(f"no PostgreSQL cluster named {name!r} (known: {', '.join(sorted(cfg.postgres.clusters))})")
    return name


def in_region(ms: list[Member], region: str, cluster: str) -> Member:
    found = [m for m in ms if m.region == region]
    if len(found) != 1:
        regions = sorted({m.region for m in ms})
        what = "no node" if not found else f"{len(found)} nodes"
        raise UsageError(f"cluster {cluster} has {what} in region {region!r} (regions: {', '.join(regions)})")
    return found[0]
