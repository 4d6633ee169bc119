"""Golden signals (traffic, errors, latency, saturation) of every service, side by side."""

from sre.provision.dashkit import Board, Context, Q, namespace, region

FOLDER = "Platform"
RATE = "$__rate_interval"
NS = 'region=~"$region", namespace=~"$namespace"'


def build(ctx: Context) -> dict:
    b = Board(
        ctx, uid="sre-platform-overview", title="Platform overview",
        description="Golden signals per service (scrape job) across regions: traffic, errors, latency, saturation; "
                    "endpoint probes. Drill down: Messaging API, WebSocket gateway, Kubernetes workloads.",
        tags=["platform", "golden-signals"],
        variables=[region("kube_pod_info"), namespace()],
    )
    req = f"http_request_duration_seconds_count{{{NS}}}"
    err = f'http_request_duration_seconds_count{{{NS}, status_code=~"5.."}}'
    bucket = f"http_request_duration_seconds_bucket{{{NS}}}"
    cont = f'{NS}, container!="", container!="POD"'
    b.row("Now")
    b.stat("HTTP requests/s", f"sum(rate({req}[{RATE}]))", unit="reqps")
    b.stat("HTTP 5xx ratio", f"sum(rate({err}[{RATE}])) / sum(rate({req}[{RATE}]))", unit="percentunit",
           alert="ApiHighErrorRatio", warn=0.01)
    b.stat("Open WebSocket connections", f"sum(ws_connections_open{{{NS}}})", runbook="WebsocketConnectionsDropped")
    b.stat("Endpoint probes up", 'avg(probe_success{job="blackbox"})', unit="percentunit",
           alert="EndpointProbeFailing")
    b.row("Traffic and errors")
    b.timeseries("Requests/s by service", Q(f"sum by (job) (rate({req}[{RATE}]))", "{{job}}"), unit="reqps")
    b.timeseries("5xx ratio by service",
                 Q(f"sum by (job) (rate({err}[{RATE}])) / sum by (job) (rate({req}[{RATE}]))", "{{job}}"),
                 unit="percentunit", alert="ApiHighErrorRatio", warn=0.01)
    b.row("Latency")
    b.timeseries("HTTP p99 by service",
                 Q(f"histogram_quantile(0.99, sum by (job, le) (rate({bucket}[{RATE}])))", "{{job}}"),
                 unit="s", alert="ApiLatencyP99High")
    b.timeseries("WebSocket delivery p99",
                 Q(f"histogram_quantile(0.99, sum by (le) (rate(ws_message_delivery_duration_seconds_bucket{{{NS}}}[{RATE}])))",
                   "delivery p99"), unit="s", alert="WebsocketDeliveryLatencyHigh")
    b.row("Saturation")
    b.timeseries("CPU used / limit by workload",
                 Q(f"sum by (namespace, container) (rate(container_cpu_usage_seconds_total{{{cont}}}[{RATE}])) "
                   f'/ sum by (namespace, container) (kube_pod_container_resource_limits{{{NS}, resource="cpu"}})',
                   "{{namespace}}/{{container}}"), unit="percentunit", threshold=0.9, runbook="ApiCpuSaturated")
    b.timeseries("Memory used / limit by workload",
                 Q(f"sum by (namespace, container) (container_memory_working_set_bytes{{{cont}}}) "
                   f'/ sum by (namespace, container) (kube_pod_container_resource_limits{{{NS}, resource="memory"}})',
                   "{{namespace}}/{{container}}"), unit="percentunit", threshold=0.9)
    b.timeseries("Replicas missing",
                 Q(f"sum by (namespace, deployment) (kube_deployment_spec_replicas{{{NS}}} - "
                   f"kube_deployment_status_replicas_available{{{NS}}})", "{{namespace}}/{{deployment}}"),
                 threshold=1, runbook="KubeDeploymentReplicasUnavailable")
    b.timeseries("Endpoint probes", Q('probe_success{job="blackbox"}', "{{instance}}"), unit="bool",
                 alert="EndpointProbeFailing", minimum=0, maximum=1)
    return b.build()
