"""The sre service itself (scrape job "sre"): scheduled jobs, the webhook, remediations, breaker.

Prometheus keeps the target's own `job` label, so the `job` label the service exports on
sre_job_* (the scheduled job's name) is stored as `exported_job` (honor_labels: false).
"""

from sre.provision.dashkit import Board, Context, Q, Var

FOLDER = "SRE"
RATE = "$__rate_interval"


def build(ctx: Context) -> dict:
    b = Board(
        ctx, uid="sre-service", title="SRE service",
        description="Jobs, Alertmanager webhook, remediations and circuit breaker of the sre service.",
        tags=["sre", "service"],
        variables=[Var("sre_job", "Job", query='label_values(sre_job_runs_total{job="sre"}, exported_job)')],
    )
    job = 'job="sre", exported_job=~"$sre_job"'
    b.row("Scheduler and jobs")
    b.stat("Up", 'sum(up{job="sre"})', w=4, threshold=1, below=True, runbook="SreDown", graph=False)
    b.stat("Scheduler leaders", 'sum(sre_scheduler_running{job="sre"})', w=4, threshold=1, below=True,
           runbook="SreSchedulerNotRunning", graph=False,
           description="Replicas running the scheduler: exactly one holds the leader lock.")
    b.stat("Job errors (1h)", f'sum(increase(sre_job_runs_total{{{job}, status="error"}}[1h])) or vector(0)',
           w=4, threshold=1, runbook="SreJobErrors")
    b.stat("Oldest last success", f"max(time() - sre_job_last_success_timestamp_seconds{{{job}}})", unit="s", w=4,
           runbook="SreJobStale")
    b.stat("Webhook alerts (1h)", 'sum(increase(sre_webhook_alerts_total{job="sre"}[1h]))', w=4)
    b.stat("Breaker", 'max(sre_remediation_breaker_open{job="sre"})', w=4, alert="SreRemediationBreakerOpen",
           graph=False, description="1: the circuit breaker is open and remediation waits for a person.")
    b.timeseries("Job runs by status", Q(f"sum by (exported_job, status) (rate(sre_job_runs_total{{{job}}}[{RATE}]))",
                                         "{{exported_job}} {{status}}"), unit="ops")
    b.timeseries("Job duration p95",
                 Q(f"histogram_quantile(0.95, sum by (exported_job, le) (rate(sre_job_duration_seconds_bucket{{{job}}}[{RATE}])))",
                   "{{exported_job}}"), unit="s")
    b.timeseries("Time since last success", Q(f"time() - sre_job_last_success_timestamp_seconds{{{job}}}",
                                              "{{exported_job}}"), unit="s", runbook="SreJobStale",
                 description="replicas.check pages after 5 minutes, backups.freshness after 3 hours.")
    b.timeseries("Job errors", Q(f'sum by (exported_job) (increase(sre_job_runs_total{{{job}, status="error"}}[{RATE}])) '
                                 "or vector(0)", "{{exported_job}}"), threshold=1, runbook="SreJobErrors")
    b.row("Alertmanager webhook")
    b.timeseries("Alerts received by status", Q(f'sum by (status) (rate(sre_webhook_alerts_total{{job="sre"}}[{RATE}]))',
                                                "{{status}}"), unit="ops")
    b.timeseries("Webhook latency",
                 Q(f'histogram_quantile(0.5, sum by (le) (rate(sre_webhook_request_duration_seconds_bucket{{job="sre"}}[{RATE}])))', "p50"),
                 Q(f'histogram_quantile(0.99, sum by (le) (rate(sre_webhook_request_duration_seconds_bucket{{job="sre"}}[{RATE}])))', "p99"),
                 unit="s")
    b.timeseries("Webhook non-2xx ratio",
                 Q(f'sum(rate(sre_webhook_request_duration_seconds_count{{job="sre", code!~"2.."}}[{RATE}])) '
                   f'/ sum(rate(sre_webhook_request_duration_seconds_count{{job="sre"}}[{RATE}]))', "non-2xx"),
                 unit="percentunit", alert="SreWebhookErrors")
    b.timeseries("Requests by code", Q(f'sum by (code) (rate(sre_webhook_request_duration_seconds_count{{job="sre"}}[{RATE}]))',
                                       "{{code}}"), unit="reqps", stack=True)
    b.row("Remediation")
    b.timeseries("Remediations by outcome",
                 Q(f'sum by (action, outcome) (increase(sre_remediations_total{{job="sre"}}[{RATE}]))', "{{action}} {{outcome}}"),
                 stack=True, runbook="SreRemediationFailing")
    b.timeseries("Circuit breaker", Q('max(sre_remediation_breaker_open{job="sre"})', "open"),
                 alert="SreRemediationBreakerOpen", minimum=0, maximum=1)
    return b.build()
