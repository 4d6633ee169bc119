"""The Redis backend of the replication check: `INFO replication` on both sides of each pair.

Byte lag is the primary's `master_repl_offset` minus what the replica applied. The `lag=` field of
the primary's `slaveN` line is seconds since the replica's last acknowledgement, not data lag, so
it is reported as `ack_age_seconds` and used only to spot a silent replica. Redis has no lag in
seconds, so none is reported (the sre_replication_lag_seconds series is absent for Redis).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sre.adapters.redis import info
from sre.checks.bounded import Probe, Task
from sre.checks.humanize import human_bytes, human_seconds
from sre.checks.replication_verdict import CHECK_REDIS, Verdict, apply_threshold, lag_message
from sre.results import CheckResult

if TYPE_CHECKING:
    from sre.config import RedisNode, RedisPair


def probe(node: RedisNode, timeout: float) -> dict[str, Any]:
    return info(node, "replication", timeout=timeout)


def tasks(pair_name: str, pair: RedisPair) -> list[Task[tuple[str, str, str]]]:
    """One task per node; connect and reply are each bounded by `connect_timeout`."""
    budget = 2 * max(pair.connect_timeout, 0.1) + 0.5
    return [Task(("redis", pair_name, node.name), partial(probe, node, pair.connect_timeout), budget)
            for node in (pair.primary, *pair.replicas)]


def _port(node: RedisNode) -> int | None:
    try:
        return urlsplit(node.url.resolve().get_secret_value()).port or 6379
    except Exception:  # an unreadable secret shows up as the node's own probe error
        return None


def _replica_line(primary: dict[str, Any], node: RedisNode, only_one: bool) -> dict[str, Any] | None:
    """The primary's `slaveN` entry for this replica: matched on its port (the address it announces)."""
    lines = [v for k, v in primary.items() if k.startswith("slave") and isinstance(v, dict)]
    port = _port(node)
    for line in lines:
        if port is not None and int(line.get("port", -1)) == port:
            return line
    return lines[0] if only_one and len(lines) == 1 else None


def judge_replica(pair_name: str, pair: RedisPair, node: RedisNode, primary: Probe, replica: Probe) -> CheckResult:
    v = Verdict()
    pi: dict[str, Any] | None = primary.value if primary.ok else None
    ri: dict[str, Any] | None = replica.value if replica.ok else None
    o: dict[str, Any] = {"cluster": pair_name, "replica": node.name, "region": node.region,
                         "primary": pair.primary.name, "lag_seconds": None}
    link_down: list[str] = []

    line: dict[str, Any] | None = None
    if pi is None:
        o["primary_error"] = primary.error
        v.fail.append(f"cannot check from the primary ({primary.error})")
    elif pi.get("role") != "master":
        v.fail.append(f"the configured primary {pair.primary.name} is a {pi.get('role')}, not a master")
    else:
        o["primary_offset"] = pi.get("master_repl_offset")
        line = _replica_line(pi, node, only_one=len(pair.replicas) == 1)
        o["state"] = line.get("state") if line else None
        if line is None:
            link_down.append("the primary does not list it among its replicas")
        else:
            o["ack_offset"] = line.get("offset")
            o["ack_age_seconds"] = line.get("lag")
            if line.get("state") != "online":
                v.warn.append(f"state on the primary is {line.get('state')}")
            if ri is None and line.get("lag") is not None and float(line["lag"]) > pair.io_stale:
                link_down.append(f"the primary heard no acknowledgement for {human_seconds(float(line['lag']))}")

    if ri is None:
        o["replica_error"] = replica.error
        v.fail.append(f"cannot reach the replica ({replica.error})")
    else:
        o["role"] = ri.get("role")
        o["link_status"] = ri.get("master_link_status")
        o["last_io_seconds"] = ri.get("master_last_io_seconds_ago")
        o["sync_in_progress"] = bool(ri.get("master_sync_in_progress"))
        o["replica_offset"] = ri.get("slave_repl_offset")
        o["master_host"] = ri.get("master_host")
        o["master_port"] = ri.get("master_port")
        if ri.get("role") != "slave":
            v.fail.append(f"it is not a replica (role {ri.get('role')})")
        elif ri.get("master_link_status") != "up":
            down_for = ri.get("master_link_down_since_seconds")
            o["link_down_seconds"] = down_for
            link_down.append("master_link_status is " + str(ri.get("master_link_status"))
                             + (f" for {human_seconds(float(down_for))}" if down_for not in (None, -1) else ""))
        else:
            io = ri.get("master_last_io_seconds_ago")
            if io is not None and float(io) > pair.io_stale:
                link_down.append(f"the replica heard nothing from the primary for {human_seconds(float(io))}")
        if o["sync_in_progress"]:
            v.warn.append("full resynchronisation in progress")

    lag_bytes: int | None = None
    if pi is not None and pi.get("master_repl_offset") is not None:
        if ri is not None and ri.get("role") == "slave" and ri.get("slave_repl_offset") is not None:
            lag_bytes = max(0, int(pi["master_repl_offset"]) - int(ri["slave_repl_offset"]))
            o["lag_bytes_basis"] = "replica_offset"
        elif line is not None and line.get("offset") is not None:
            # The replica did not answer: what it last acknowledged is the best we know.
            lag_bytes = max(0, int(pi["master_repl_offset"]) - int(line["offset"]))
            o["lag_bytes_basis"] = "primary_ack"
    o["lag_bytes"] = lag_bytes
    o["connected"] = not link_down and ri is not None and line is not None and o.get("link_status") == "up"

    if link_down:
        v.fail.append("replication link down: " + "; ".join(link_down))
    apply_threshold(v, lag_bytes, pair.lag_warn_bytes, pair.lag_fail_bytes, "lag in bytes")
    lag = "lag unknown" if lag_bytes is None else "caught up (0 B behind)" if lag_bytes == 0 else (
        f"{human_bytes(lag_bytes)} behind")
    return CheckResult(check=CHECK_REDIS, target=f"{pair_name}/{node.name}", status=v.status, observed=o,
                       message=lag_message(node.region, node.name, lag, v))


def judge_pair(pair_name: str, pair: RedisPair, probes: dict[str, Probe]) -> list[CheckResult]:
    primary = probes[pair.primary.name]
    return [judge_replica(pair_name, pair, node, primary, probes[node.name]) for node in pair.replicas]
