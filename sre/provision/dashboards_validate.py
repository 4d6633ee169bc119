"""Validation of dashboards as code, before anything reaches Grafana.

- every panel query and every query variable parses: all of them go into one temporary rule
  file, one recording rule each, checked by one `promtool check rules` run;
- every metric a query names comes from somewhere: an exporter listed in `alerts/README.md`, a
  recording rule in `alerts/`, or this service (its prometheus-client declarations in `sre/`);
- uids are unique and valid, no panel names a data source uid (the `datasource` variable only),
  and every alert a panel draws has a rule and a runbook when those trees are present;
- `live`: each query runs against a Prometheus; those that return nothing are reported.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sre.content import content_dir
from sre.errors import UnreachableError
from sre.provision.dashboards import Desired, Sources
from sre.provision.dashkit import read_rules
from sre.rules.live import expected_absence
from sre.rules.promql import PromQLSyntaxError, selectors
from sre.rules.promtool import promtool_path

# Metric names of the exporters the platform runs. Used only until alerts/README.md lists
# them: then that file is the one list (see exporter_metrics()).
EXPORTER_METRICS: dict[str, tuple[str, ...]] = {
    "kube-state-metrics": (
        "kube_deployment_spec_replicas", "kube_deployment_status_replicas", "kube_deployment_status_replicas_available",
        "kube_deployment_status_replicas_unavailable", "kube_pod_info", "kube_pod_status_phase",
        "kube_pod_container_status_restarts_total", "kube_pod_container_status_waiting_reason",
        "kube_pod_container_status_last_terminated_reason", "kube_pod_container_resource_requests",
        "kube_pod_container_resource_limits", "kube_node_status_condition",
        "kube_horizontalpodautoscaler_status_current_replicas", "kube_horizontalpodautoscaler_spec_max_replicas",
    ),
    "cadvisor": (
        "container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_cpu_cfs_periods_total",
        "container_cpu_cfs_throttled_periods_total", "container_network_receive_bytes_total",
        "container_network_transmit_bytes_total",
    ),
    "node-exporter": (
        "node_cpu_seconds_total", "node_load1", "node_load5", "node_load15", "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes", "node_memory_MemFree_bytes", "node_memory_Cached_bytes",
        "node_memory_Buffers_bytes", "node_memory_SwapTotal_bytes", "node_memory_SwapFree_bytes",
        "node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_time_seconds", "node_boot_time_seconds",
        "node_uname_info", "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
        "node_network_receive_errs_total", "node_network_transmit_errs_total", "node_disk_reads_completed_total",
        "node_disk_writes_completed_total", "node_disk_read_bytes_total", "node_disk_written_bytes_total",
        "node_disk_io_time_seconds_total",
    ),
    "postgres_exporter": (
        "pg_up", "pg_stat_database_numbackends", "pg_settings_max_connections", "pg_stat_database_xact_commit",
        "pg_stat_database_xact_rollback", "pg_stat_database_deadlocks", "pg_stat_activity_count",
        "pg_stat_replication_pg_current_wal_lsn_bytes", "pg_stat_activity_max_tx_duration", "pg_replication_is_replica",
    ),
    "redis_exporter": (
        "redis_up", "redis_connected_clients", "redis_memory_used_bytes", "redis_memory_max_bytes",
        "redis_commands_processed_total", "redis_keyspace_hits_total", "redis_keyspace_misses_total",
        "redis_evicted_keys_total", "redis_master_repl_offset", "redis_connected_slave_offset_bytes",
        "redis_connected_slaves", "redis_master_link_up",
    ),
    "blackbox_exporter": ("probe_success", "probe_duration_seconds", "probe_http_status_code"),
    "nestjs prom-client": (
        "http_request_duration_seconds_bucket", "http_request_duration_seconds_count",
        "http_request_duration_seconds_sum", "nodejs_eventloop_lag_p99_seconds",
    ),
    "websocket-gateway prom-client": (
        "ws_connections_open", "ws_disconnects_total", "ws_message_delivery_duration_seconds_bucket",
        "ws_message_delivery_duration_seconds_count", "ws_message_delivery_duration_seconds_sum",
    ),
    "prometheus": ("up",),
}

# The service's own metrics as the design fixes them; the declarations found in sre/ add to and
# refine this (a Histogram there means _bucket/_sum/_count).
SERVICE_METRICS: tuple[str, ...] = (
    "sre_job_runs_total", "sre_job_duration_seconds_bucket", "sre_job_duration_seconds_sum",
    "sre_job_duration_seconds_count", "sre_job_last_success_timestamp_seconds", "sre_scheduler_running",
    "sre_webhook_alerts_total", "sre_webhook_request_duration_seconds_bucket",
    "sre_webhook_request_duration_seconds_sum", "sre_webhook_request_duration_seconds_count",
    "sre_remediations_total", "sre_remediation_breaker_open", "sre_replication_lag_seconds",
    "sre_replication_lag_bytes", "sre_replication_connected", "sre_replication_check_success",
    "sre_backup_age_seconds", "sre_backup_verify_success", "sre_backup_restore_duration_seconds",
    "sre_backup_size_bytes", "sre_drill_last_rto_seconds", "sre_drill_last_rpo_rows",
    "sre_drill_last_success_timestamp_seconds", "sre_drill_runs_total",
)

_DECL = re.compile(r"\b(Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*['\"]([a-zA-Z_:][a-zA-Z0-9_:]*)['\"]")
_SUFFIXES = {
    "Counter": ("_total", "_created"), "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("", "_sum", "_count", "_created"), "Gauge": ("",), "Info": ("_info",), "Enum": ("",),
}


def service_metrics(package_dir: Path | None = None) -> set[str]:
    """Series names this service exposes: the fixed list plus what its code declares."""
    names = set(SERVICE_METRICS)
    root = package_dir or content_dir("sre")
    for path in root.rglob("*.py"):
        try:
            text = path.read_text()
        except OSError:
            continue
        for kind, name in _DECL.findall(text):
            base = name.removesuffix("_total") if kind == "Counter" else name
            names.update(base + s for s in _SUFFIXES[kind])
    return names


_README_METRIC = re.compile(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`")
# How alerts/README.md may name each exporter of EXPORTER_METRICS.
_ALIASES: dict[str, tuple[str, ...]] = {
    "kube-state-metrics": ("kube-state-metrics",), "cadvisor": ("cadvisor",),
    "node-exporter": ("node-exporter", "node_exporter"), "postgres_exporter": ("postgres_exporter", "postgres-exporter"),
    "redis_exporter": ("redis_exporter", "redis-exporter"), "blackbox_exporter": ("blackbox",),
    "nestjs prom-client": ("prom-client",), "websocket-gateway prom-client": ("prom-client",),
    "prometheus": ("prometheus",),
}


def exporter_metrics(alerts_dir: Path | None = None) -> tuple[set[str], str]:
    """Exporter metric names, and where the list came from.

    Once alerts/README.md exists it decides which exporters run: the metric names it quotes
    (`like_this`), plus the built-in names of each exporter it mentions.
    """
    readme = (alerts_dir or content_dir("alerts")) / "README.md"
    if not readme.is_file():
        return {m for names in EXPORTER_METRICS.values() for m in names}, "built-in exporter list"
    text = readme.read_text()
    names = {m for m in _README_METRIC.findall(text) if "_" in m}
    lowered = text.lower()
    for exporter, aliases in _ALIASES.items():
        if any(a in lowered for a in aliases):
            names.update(EXPORTER_METRICS[exporter])
    return names, "alerts/README.md"


# ---------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    dashboard: str  # uid
    where: str  # panel title / ref, or "variable <name>"
    expr: str


def _variable_query(v: dict[str, Any]) -> str:
    q = v.get("query")
    if isinstance(q, dict):
        q = q.get("query", "")
    return str(q or v.get("definition") or "")


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\(\s*(.+)\s*\)\s*$", re.S)


def _panels(panels: list[Any]) -> Iterator[dict[str, Any]]:
    for p in panels or []:
        if isinstance(p, dict):
            yield p
            yield from _panels(p.get("panels") or [])


def queries(d: Desired) -> list[Query]:
    out = []
    for p in _panels(d.body.get("panels") or []):
        for t in p.get("targets") or []:
            expr = t.get("expr") if isinstance(t, dict) else None
            if expr:
                out.append(Query(d.uid, f"panel {p.get('title', '?')!r} query {t.get('refId', '?')}", str(expr)))
    for v in (d.body.get("templating") or {}).get("list") or []:
        if not isinstance(v, dict) or v.get("type") != "query":
            continue
        q = _variable_query(v)
        m = _LABEL_VALUES.match(q) or _QUERY_RESULT.match(q)
        if m:
            out.append(Query(d.uid, f"variable {v.get('name')}", m.group(1)))
    return out


# ---------------------------------------------------------------- Grafana variables in PromQL

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VAR = re.compile(r"\$\{([a-zA-Z0-9_]+)(?::[^}]*)?\}|\$([a-zA-Z0-9_]+)|\[\[([a-zA-Z0-9_]+)\]\]")
_DURATION_VARS = {"__rate_interval", "__interval", "__range"}
_NUMBER_VARS = {"__range_s", "__range_ms", "__interval_ms"}


def _string_spans(expr: str) -> list[tuple[int, int]]:
    return [m.span() for m in _STRING.finditer(expr)]


def substitute(expr: str, duration: str = "5m", in_strings: str | None = None) -> str:
    """PromQL with Grafana's variables replaced: built-in intervals by `duration`, others by `1`
    outside strings and (if `in_strings` is given) by it inside strings."""
    spans = _string_spans(expr)

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        inside = any(a < m.start() < b for a, b in spans)
        if name in _DURATION_VARS:
            return duration
        if name in _NUMBER_VARS:
            return "300"
        if inside:
            return m.group(0) if in_strings is None else in_strings
        return "1"

    return _VAR.sub(repl, expr)


_EQ_WITH_VAR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(!=|=)(?!~)\s*"([^"]*\$[^"]*)"')


def for_live(expr: str, duration: str = "5m") -> str:
    """A query with every variable set to "all": `l="$v"` becomes `l=~".*"`."""
    expr = _EQ_WITH_VAR.sub(lambda m: f'{m.group(1)}{"=~" if m.group(2) == "=" else "!~"}"{m.group(3)}"', expr)
    return substitute(expr, duration, in_strings=".*")


# ---------------------------------------------------------------- metric names


def metric_names(expr: str) -> set[str]:
    """The metric names a panel query selects (Grafana variables substituted first)."""
    try:
        return {name for sel in selectors(substitute(expr)) if (name := sel.metric())}
    except PromQLSyntaxError:
        return set()  # promtool reports why it does not parse


# ---------------------------------------------------------------- checks


@dataclass
class Problem:
    dashboard: str
    where: str
    message: str
    level: str = "error"  # error | warn

    def to_dict(self) -> dict[str, str]:
        return {"dashboard": self.dashboard, "where": self.where, "level": self.level, "message": self.message}


@dataclass
class Report:
    dashboards: int = 0
    queries: int = 0
    problems: list[Problem] = field(default_factory=list)
    metric_sources: dict[str, str] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    def to_dict(self) -> dict[str, Any]:
        return {"dashboards": self.dashboards, "queries": self.queries, "ok": not self.errors,
                "metric_sources": self.metric_sources, "problems": [p.to_dict() for p in self.problems],
                **({"live": self.live} if self.live else {})}


def promtool_check(exprs: list[str]) -> dict[int, str]:
    """Parse errors by index, from one `promtool check rules` over a rule file of all of them."""
    if not exprs:
        return {}

    exe = promtool_path()
    doc = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="sre-dashboards-") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False, width=1 << 20)
        fh.flush()
        proc = subprocess.run([exe, "check", "rules", fh.name], capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode == 0:
        return {}
    errors: dict[int, str] = {}
    for line in (proc.stderr + proc.stdout).splitlines():
        m = re.search(r'"dashboard_query_(\d+)": (.*)$', line)
        if m:
            errors[int(m.group(1))] = m.group(2).strip()
    if not errors:
        errors[-1] = (proc.stderr or proc.stdout).strip().splitlines()[-1]
    return errors


def _datasource_problems(d: Desired) -> list[Problem]:
    out = []
    ds_vars = {str(v.get("name")) for v in (d.body.get("templating") or {}).get("list") or []
               if isinstance(v, dict) and v.get("type") == "datasource"}
    if not ds_vars:
        out.append(Problem(d.uid, "templating", "no datasource template variable"))

    def check(node: Any, where: str) -> None:
        ds = node.get("datasource") if isinstance(node, dict) else None
        if isinstance(ds, dict):
            uid = str(ds.get("uid") or "")
            if uid and not uid.startswith("$") and uid not in ("grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"):
                out.append(Problem(d.uid, where, f"hard-coded datasource uid {uid!r}: use ${{datasource}}"))
        elif isinstance(ds, str) and ds and not ds.startswith("$") and ds not in ("-- Grafana --", "-- Mixed --"):
            out.append(Problem(d.uid, where, f"hard-coded datasource {ds!r}: use ${{datasource}}"))

    for p in _panels(d.body.get("panels") or []):
        where = f"panel {p.get('title', '?')!r}"
        check(p, where)
        for t in p.get("targets") or []:
            check(t, where)
    for v in (d.body.get("templating") or {}).get("list") or []:
        check(v, f"variable {v.get('name') if isinstance(v, dict) else '?'}")
    return out


def _runbook_problems(d: Desired, alerts: set[str], runbooks_dir: Path) -> list[Problem]:
    out = []
    have_runbooks = runbooks_dir.is_dir() and any(runbooks_dir.glob("*.md"))
    for p in _panels(d.body.get("panels") or []):
        for link in p.get("links") or []:
            title = str(link.get("title", "")) if isinstance(link, dict) else ""
            if not title.startswith("Runbook: "):
                continue
            alert = title.removeprefix("Runbook: ")
            where = f"panel {p.get('title', '?')!r}"
            if alerts and alert not in alerts:
                out.append(Problem(d.uid, where, f"alert {alert} has no rule in alerts/", "warn"))
            if have_runbooks and not (runbooks_dir / f"{alert}.md").is_file():
                out.append(Problem(d.uid, where, f"runbook runbooks/{alert}.md does not exist", "warn"))
    return out


def validate(sources: Sources, *, alerts_dir: Path | None = None, runbooks_dir: Path | None = None,
             package_dir: Path | None = None) -> Report:

    alerts_dir = alerts_dir or content_dir("alerts")
    runbooks_dir = runbooks_dir or content_dir("runbooks")
    alert_rules, records, _ = read_rules(alerts_dir)
    exporters, exporter_source = exporter_metrics(alerts_dir)
    own = service_metrics(package_dir)
    report = Report(dashboards=len(sources.dashboards))
    report.metric_sources = {"exporters": exporter_source, "recording_rules": f"{len(records)} in alerts/",
                             "service": f"{len(own)} series names"}
    all_queries = [q for d in sources.dashboards for q in queries(d)]
    report.queries = len(all_queries)
    for d in sources.dashboards:
        report.problems += _datasource_problems(d)
        report.problems += _runbook_problems(d, set(alert_rules), runbooks_dir)
    for i, msg in sorted(promtool_check([substitute(q.expr) for q in all_queries]).items()):
        q = all_queries[i] if 0 <= i < len(all_queries) else None
        report.problems.append(Problem(q.dashboard if q else "?", q.where if q else "promtool", f"does not parse: {msg}"))
    for q in all_queries:
        for name in sorted(metric_names(q.expr)):
            if name not in exporters and name not in records and name not in own:
                report.problems.append(Problem(
                    q.dashboard, q.where, f"metric {name} comes from no listed exporter, recording rule or this service"))
    return report


# ---------------------------------------------------------------- live


def live_check(sources: Sources, prometheus_url: str, *, require_prefix: str = "sre_", timeout: float = 10.0,
               absent: dict[str, str] | None = None, require_all: bool = False) -> dict[str, Any]:
    """Run every query against Prometheus; list those that return nothing or fail.

    A query whose metrics all start with `require_prefix` must return data (this service's
    metrics exist wherever it runs); others may legitimately be empty where an exporter is not
    scraped, and are listed as such. With `require_all`, every query must return data. Either
    way, an empty query that reads a selector `absent` lists (alerts.live_absent) is listed
    apart with the reason, not required.
    """
    import httpx


    all_queries = [q for d in sources.dashboards for q in queries(d)]
    empty_required, empty_other, failed, expected = [], [], [], []
    try:
        with httpx.Client(base_url=prometheus_url.rstrip("/"), timeout=timeout) as http:
            for q in all_queries:
                resp = http.get("/api/v1/query", params={"query": for_live(q.expr)})
                item = {"dashboard": q.dashboard, "where": q.where, "expr": q.expr}
                if resp.status_code != 200:
                    failed.append({**item, "error": resp.json().get("error", resp.text[:200])})
                    continue
                data = resp.json().get("data", {})
                result = data.get("result")
                if result in (None, []):
                    names = metric_names(q.expr)
                    reason = _listed_absent(q.expr, absent or {})
                    if reason is not None:
                        expected.append({**item, "reason": reason})
                    elif require_all or (names and all(n.startswith(require_prefix) for n in names)):
                        empty_required.append(item)
                    else:
                        empty_other.append(item)
    except httpx.HTTPError as exc:
        raise UnreachableError(f"Prometheus at {prometheus_url} did not answer: {exc.__class__.__name__}") from None
    return {"prometheus": prometheus_url, "queries": len(all_queries), "failed": failed,
            "empty_required": empty_required, "empty_other": empty_other, "expected_empty": expected,
            "require_prefix": "" if require_all else require_prefix}


def _listed_absent(expr: str, absent: dict[str, str]) -> str | None:
    """The reason of the first selector of `expr` that alerts.live_absent lists, if any."""
    if not absent:
        return None
    try:
        sels = selectors(for_live(expr))
    except PromQLSyntaxError:
        return None
    return next((r for sel in sels if (r := expected_absence(sel.promql(), absent))), None)
