"""Backups and disaster recovery: backup age against the RPO, verification, restore time, drills."""

from sre.provision.dashkit import Board, Context, Q, Var

FOLDER = "Platform/Resilience"
RATE = "$__rate_interval"


def build(ctx: Context) -> dict:
    b = Board(
        ctx, uid="sre-backups-dr", title="Backups and DR",
        description="Backup freshness against the RPO, verification down to a real restore (backups.verify), "
                    "and failover drills with their measured RTO and RPO.",
        tags=["platform", "backups", "dr"], time_from="now-7d",
        variables=[Var("cluster", "Cluster", 'sre_backup_age_seconds{job="sre"}')],
    )
    c = 'job="sre", cluster=~"$cluster"'
    b.row("Backups")
    b.stat("Newest backup age", f"max(sre_backup_age_seconds{{{c}}})", unit="s", w=6,
           threshold=ctx.backup_max_age, runbook="BackupOlderThanRpo",
           description="Against the tightest max_age of sre.yaml (default: the cluster's RPO); the freshness "
                       "check decides per backup set.")
    b.stat("Checks failing", f"count(sre_backup_verify_success{{{c}}} == 0) or vector(0)", w=6,
           threshold=1, runbook="BackupVerificationFailing", graph=False)
    b.stat("Last restore took", f"max(sre_backup_restore_duration_seconds{{{c}}})", unit="s", w=6, graph=False)
    b.stat("Backup size", f"sum(sre_backup_size_bytes{{{c}}})", unit="bytes", w=6)
    b.timeseries("Backup age vs max age (RPO)", Q(f"max by (cluster) (sre_backup_age_seconds{{{c}}})", "{{cluster}}"),
                 unit="s", threshold=ctx.backup_max_age, runbook="BackupOlderThanRpo")
    b.timeseries("Verification by check", Q(f"min by (cluster, check) (sre_backup_verify_success{{{c}}})",
                                            "{{cluster}} {{check}}"),
                 unit="bool", alert="BackupVerificationFailing", minimum=0, maximum=1,
                 description="freshness, completeness, size, restore, sanity queries, row counts...")
    b.timeseries("Restore duration", Q(f"max by (cluster) (sre_backup_restore_duration_seconds{{{c}}})", "{{cluster}}"),
                 unit="s", description="Wall time of the last real restore of the newest backup.")
    b.timeseries("Backup size", Q(f"max by (cluster) (sre_backup_size_bytes{{{c}}})", "{{cluster}}"), unit="bytes",
                 description="A sudden drop is a truncated backup: the verify job fails below min_size_ratio.")
    b.row("Point-in-time recovery and snapshots")
    p = 'job="sre", set=~"$cluster"'
    b.stat("WAL segments missing", f"sum(sre_backup_wal_gap{{{p}}}) or vector(0)", w=6, alert="BackupWalGap",
           graph=False, description="Between each WAL-archived set's newest backup and its archive's end.")
    b.stat("PITR landed before target", f"max(sre_backup_pitr_recovered_lag_seconds{{{p}}})", unit="s", w=6,
           runbook="BackupPitrFailing", graph=False,
           description="Target minus the point the last PITR test recovered to (canary rows, replay timestamp).")
    b.stat("Newest backup (any set)", f"time() - min(sre_backup_last_success_timestamp_seconds{{{p}}})", unit="s",
           w=6, graph=False, description="Age of the stalest set's newest backup, from its completion timestamp.")
    b.stat("Newest Redis snapshot", f'time() - min(sre_backup_last_success_timestamp_seconds{{{p}, '
           f'format="redis-rdb"}})', unit="s", w=6, runbook="RedisSnapshotStale", graph=False)
    b.timeseries("Backup age vs max_age, per set",
                 Q(f"time() - max by (set) (sre_backup_last_success_timestamp_seconds{{{p}}})", "{{set}}"),
                 Q(f"max by (set) (sre_backup_max_age_seconds{{{p}}})", "max {{set}}"), unit="s",
                 runbook="RedisSnapshotStale",
                 description="From the completion timestamp: it keeps growing between checks.")
    b.timeseries("PITR: recovered point before the target",
                 Q(f"max by (set) (sre_backup_pitr_recovered_lag_seconds{{{p}}})", "{{set}}"), unit="s",
                 runbook="BackupPitrFailing")
    b.timeseries("WAL gap (segments missing)", Q(f"max by (set) (sre_backup_wal_gap{{{p}}})", "{{set}}"),
                 alert="BackupWalGap", minimum=0, w=24)
    b.row("Failover drills")
    d = 'job="sre", cluster=~"$cluster"'
    b.stat("Last drill RTO", f"max(sre_drill_last_rto_seconds{{{d}}})", unit="s", w=6, threshold=ctx.rto,
           graph=False, description="Canary write gap of the last drill, against the tightest RTO of sre.yaml.")
    b.stat("Last drill RPO", f"max(sre_drill_last_rpo_rows{{{d}}})", w=6, threshold=1, graph=False,
           description="Acknowledged canary rows the new primary lacked.")
    b.stat("Since last good drill", f"time() - max(sre_drill_last_success_timestamp_seconds{{{d}}})", unit="s", w=6,
           alert="FailoverDrillOverdue", graph=False)
    b.stat("Drills (30d)", 'sum(increase(sre_drill_runs_total{job="sre"}[30d]))', w=6, graph=False)
    b.timeseries("Drill RTO history", Q(f"max by (cluster) (sre_drill_last_rto_seconds{{{d}}})", "{{cluster}}"),
                 unit="s", threshold=ctx.rto)
    b.timeseries("Drill RPO history (rows lost)", Q(f"max by (cluster) (sre_drill_last_rpo_rows{{{d}}})", "{{cluster}}"),
                 threshold=1)
    b.timeseries("Drill outcomes", Q(f'sum by (outcome) (increase(sre_drill_runs_total{{job="sre"}}[{RATE}]))',
                                     "{{outcome}}"), stack=True, w=24, runbook="FailoverDrillFailed")
    b.row("DR readiness")
    r = 'job="sre"'
    b.stat("Pairs not ready", f"count(sre_dr_ready{{{r}}} == 0) or vector(0)", w=6, threshold=1,
           alert="DrNotReady", graph=False,
           description="Region pairs whose loss could not be recovered as promised: `sre dr status` names why.")
    b.stat("Worst RPO estimate", f"max(sre_dr_estimated_rpo_seconds{{{r}}})", unit="s", w=6, threshold=ctx.rpo,
           runbook="DrEstimateBeyondObjective",
           description="Data a loss of the source region would lose now, against the tightest RPO.")
    b.stat("Worst RTO estimate", f"max(sre_dr_estimated_rto_seconds{{{r}}})", unit="s", w=6, threshold=ctx.rto,
           runbook="DrEstimateBeyondObjective", graph=False,
           description="Last drills' write gap + DNS TTL and propagation + scaling + detection, against the RTO.")
    b.stat("Reasons", f"sum(sre_dr_reasons{{{r}}}) or vector(0)", w=6, threshold=1, graph=False)
    b.timeseries("Verdict by pair (1 ready, 0.5 degraded, 0 not ready)",
                 Q(f"min by (from, to) (sre_dr_ready{{{r}}})", "{{from}} -> {{to}}"), minimum=0, maximum=1,
                 alert="DrNotReady")
    b.timeseries("RPO estimate vs objective",
                 Q(f"max by (from, to, cluster) (sre_dr_estimated_rpo_seconds{{{r}}})",
                   "{{cluster}} {{from}} -> {{to}}"),
                 Q(f"max by (cluster) (sre_dr_rpo_objective_seconds{{{r}}})", "objective {{cluster}}"), unit="s",
                 runbook="DrEstimateBeyondObjective")
    b.timeseries("RTO estimate vs objective",
                 Q(f"max by (from, to) (sre_dr_estimated_rto_seconds{{{r}}})", "{{from}} -> {{to}}"),
                 Q(f"max by (from, to) (sre_dr_rto_objective_seconds{{{r}}})", "objective {{from}} -> {{to}}"),
                 unit="s", runbook="DrEstimateBeyondObjective")
    b.timeseries("Drill history: measured RTO",
                 Q(f"max by (cluster) (sre_drill_last_rto_seconds{{{d}}})", "{{cluster}}"), unit="s",
                 threshold=ctx.rto, description="Each drill's preflight estimate sits beside it in its report.")
    return b.build()
