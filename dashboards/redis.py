"""Redis primary and replicas (redis_exporter, one target per instance): memory, hits, replication."""

from sre.provision.dashkit import Board, Context, Q, Var, region

FOLDER = "Platform/Databases"
RATE = "$__rate_interval"
MIB = 2**20


def build(ctx: Context) -> dict:
    b = Board(
        ctx, uid="sre-redis", title="Redis",
        description="Redis cache: availability, memory against maxmemory, hit ratio, evictions, replication "
                    "(offset lag from the exporter, link and lag from the sre replicas.check job).",
        tags=["platform", "redis", "database"],
        variables=[region("redis_up"), Var("instance", "Instance", 'redis_up{region=~"$region"}')],
    )
    sel = 'region=~"$region", instance=~"$instance"'
    b.row("Health")
    b.stat("Up", f"min(redis_up{{{sel}}})", w=6, threshold=1, below=True, graph=False)
    b.stat("Clients", f"sum(redis_connected_clients{{{sel}}})", w=6)
    b.stat("Memory used (max instance)", f"max(redis_memory_used_bytes{{{sel}}} / (redis_memory_max_bytes{{{sel}}} > 0))",
           unit="percentunit", w=6, threshold=0.9, warn=0.8, runbook="RedisMemoryNearMax")
    b.stat("Hit ratio", f"sum(rate(redis_keyspace_hits_total{{{sel}}}[{RATE}])) / "
                        f"(sum(rate(redis_keyspace_hits_total{{{sel}}}[{RATE}])) + sum(rate(redis_keyspace_misses_total{{{sel}}}[{RATE}])))",
           unit="percentunit", w=6)
    b.row("Load")
    b.timeseries("Commands/s", Q(f"sum by (instance) (rate(redis_commands_processed_total{{{sel}}}[{RATE}]))", "{{instance}}"),
                 unit="ops")
    b.timeseries("Memory used / maxmemory",
                 Q(f"redis_memory_used_bytes{{{sel}}} / (redis_memory_max_bytes{{{sel}}} > 0)", "{{instance}}"),
                 unit="percentunit", threshold=0.9, warn=0.8, runbook="RedisMemoryNearMax")
    b.timeseries("Evicted keys/s", Q(f"sum by (instance) (rate(redis_evicted_keys_total{{{sel}}}[{RATE}]))", "{{instance}}"),
                 unit="ops", alert="RedisEvictions")
    b.timeseries("Connected clients", Q(f"redis_connected_clients{{{sel}}}", "{{instance}}"))
    b.row("Replication")
    b.timeseries("Replica offset lag (exporter)",
                 Q(f"redis_master_repl_offset{{{sel}}} - on (instance) group_right redis_connected_slave_offset_bytes{{{sel}}}",
                   "{{instance}} -> {{slave_ip}}:{{slave_port}}"), unit="bytes")
    b.timeseries("Replica lag (sre check)",
                 Q('max by (cluster, replica) (sre_replication_lag_bytes{job="sre", cluster=~".*", replica=~".*"} '
                   'and on (cluster) (sre_replication_connected{job="sre"}))', "{{cluster}}/{{replica}}"),
                 unit="bytes", threshold=16 * MIB, warn=1 * MIB, runbook="ReplicaLagBytesHigh",
                 description="Pairs of the redis section of sre.yaml, measured by the replicas.check job.")
    b.timeseries("Replica link up", Q(f"redis_master_link_up{{{sel}}}", "{{instance}}"), unit="bool",
                 alert="RedisReplicaLinkDown", minimum=0, maximum=1)
    b.timeseries("Replicas connected", Q(f"redis_connected_slaves{{{sel}}}", "{{instance}}"), threshold=1, below=True)
    return b.build()
