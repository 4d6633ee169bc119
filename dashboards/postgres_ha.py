"""PostgreSQL HA across regions: lag per replica (the sre replicas.check job), WAL rate, connections.

postgres_exporter and node-exporter targets carry `cluster` and `node` labels naming the sre.yaml
cluster and node (relabelled in the scrape config), the same names the sre_replication_* series use.
"""

from sre.provision.dashkit import Board, Context, Q, Var, region

FOLDER = "Platform/Databases"
RATE = "$__rate_interval"
MIB = 2**20


def build(ctx: Context) -> dict:
    b = Board(
        ctx, uid="sre-postgres-ha", title="PostgreSQL HA",
        description="Primary and cross-region replicas: replication lag and link (sre replicas.check), "
                    "WAL generation, connections, long transactions and disk (postgres_exporter, node-exporter).",
        tags=["platform", "postgres", "database"],
        variables=[region('sre_replication_lag_seconds{job="sre"}'),
                   Var("cluster", "Cluster", 'sre_replication_lag_seconds{job="sre", region=~"$region"}')],
    )
    rep = 'job="sre", cluster=~"$cluster", region=~"$region"'
    pg = 'cluster=~"$cluster"'
    b.row("Replication")
    b.stat("Replicas connected", f"sum(sre_replication_connected{{{rep}}})", w=6, graph=False)
    b.stat("Max lag", f"max(sre_replication_lag_seconds{{{rep}}})", unit="s", w=6, alert="ReplicaLagHigh", warn=10)
    b.stat("Max lag (bytes)", f"max(sre_replication_lag_bytes{{{rep}}})", unit="bytes", w=6,
           alert="ReplicaLagBytesHigh", warn=16 * MIB)
    b.stat("Checks failing", f"count(sre_replication_check_success{{{rep}}} == 0) or vector(0)", w=6,
           threshold=1, runbook="ReplicationCheckFailing", graph=False)
    b.timeseries("Lag per replica", Q(f"max by (cluster, replica, region) (sre_replication_lag_seconds{{{rep}}})",
                                      "{{cluster}}/{{replica}} ({{region}})"),
                 unit="s", alert="ReplicaLagHigh", warn=10)
    b.timeseries("Lag per replica (bytes)", Q(f"max by (cluster, replica, region) (sre_replication_lag_bytes{{{rep}}})",
                                              "{{cluster}}/{{replica}} ({{region}})"),
                 unit="bytes", alert="ReplicaLagBytesHigh", warn=16 * MIB)
    b.timeseries("Replica link", Q(f"min by (cluster, replica, region) (sre_replication_connected{{{rep}}})",
                                   "{{cluster}}/{{replica}}"),
                 unit="bool", alert="ReplicaDisconnected", minimum=0, maximum=1)
    b.timeseries("Check success", Q(f"min by (cluster, replica) (sre_replication_check_success{{{rep}}})",
                                    "{{cluster}}/{{replica}}"), unit="bool", alert="ReplicationCheckFailing",
                 minimum=0, maximum=1)
    b.row("Primary and nodes")
    b.timeseries("WAL generated",
                 Q(f"max by (cluster, node) (rate(pg_stat_replication_pg_current_wal_lsn_bytes{{{pg}}}[{RATE}]))",
                   "{{cluster}}/{{node}}"),
                 unit="Bps", description="Rate of the primary's current WAL position: bytes of WAL written per second.")
    b.timeseries("Connections used",
                 Q(f"sum by (cluster, node) (pg_stat_activity_count{{{pg}}}) / max by (cluster, node) "
                   f"(pg_settings_max_connections{{{pg}}})", "{{cluster}}/{{node}}"),
                 unit="percentunit", alert="PostgresConnectionsNearMax", maximum=1)
    b.timeseries("Connections by state", Q(f"sum by (node, state) (pg_stat_activity_count{{{pg}}})", "{{node}} {{state}}"),
                 stack=True)
    b.timeseries("Longest active transaction",
                 Q(f'max by (cluster, node, datname) (pg_stat_activity_max_tx_duration{{{pg}, state="active"}})',
                   "{{node}} {{datname}}"), unit="s", alert="PostgresLongRunningTransaction")
    b.timeseries("Transactions/s",
                 Q(f"sum by (node) (rate(pg_stat_database_xact_commit{{{pg}}}[{RATE}]))", "{{node}} commit"),
                 Q(f"sum by (node) (rate(pg_stat_database_xact_rollback{{{pg}}}[{RATE}]))", "{{node}} rollback"),
                 unit="ops")
    b.timeseries("Up and role", Q(f"pg_up{{{pg}}}", "{{node}} up"), Q(f"pg_replication_is_replica{{{pg}}}", "{{node}} replica"),
                 unit="bool", runbook="PostgresPrimaryDown", minimum=0, maximum=1)
    b.timeseries("Disk free",
                 Q(f'min by (cluster, node) (node_filesystem_avail_bytes{{{pg}, fstype!~"tmpfs|overlay|squashfs"}} '
                   f'/ node_filesystem_size_bytes{{{pg}, fstype!~"tmpfs|overlay|squashfs"}})', "{{cluster}}/{{node}}"),
                 unit="percentunit", threshold=0.1, below=True, runbook="NodeFilesystemAlmostFull", w=24)
    return b.build()
