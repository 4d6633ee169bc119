"""The NestJS messaging API (scrape job "api"): traffic, errors and latency by route, pods, event loop."""

from sre.provision.dashkit import Board, Context, Q, namespace, region

FOLDER = "Services"
RATE = "$__rate_interval"
SEL = 'job="api", region=~"$region", namespace=~"$namespace"'
PODS = 'region=~"$region", namespace=~"$namespace", container="api"'


def build(ctx: Context) -> dict:
    b = Board(
        ctx, uid="sre-api", title="Messaging API",
        description="NestJS API (prom-client http_request_duration_seconds): traffic, errors and latency by route. "
                    "Objectives: SLOs dashboard.",
        tags=["platform", "api"],
        variables=[region('http_request_duration_seconds_count{job="api"}'),
                   namespace('http_request_duration_seconds_count{job="api", region=~"$region"}')],
    )
    req = f"http_request_duration_seconds_count{{{SEL}}}"
    err = f'http_request_duration_seconds_count{{{SEL}, status_code=~"5.."}}'
    bucket = f"http_request_duration_seconds_bucket{{{SEL}}}"
    b.row("Requests")
    b.stat("Requests/s", f"sum(rate({req}[{RATE}]))", unit="reqps")
    b.stat("5xx ratio", f"sum(rate({err}[{RATE}])) / sum(rate({req}[{RATE}]))", unit="percentunit",
           alert="ApiHighErrorRatio", warn=0.01)
    b.stat("p95 latency", f"histogram_quantile(0.95, sum by (le) (rate({bucket}[{RATE}])))", unit="s")
    b.stat("p99 latency", f"histogram_quantile(0.99, sum by (le) (rate({bucket}[{RATE}])))", unit="s",
           alert="ApiLatencyP99High")
    b.timeseries("Requests/s by route", Q(f"sum by (method, route) (rate({req}[{RATE}]))", "{{method}} {{route}}"),
                 unit="reqps")
    b.timeseries("Responses by status", Q(f"sum by (status_code) (rate({req}[{RATE}]))", "{{status_code}}"),
                 unit="reqps", stack=True)
    b.timeseries("5xx ratio", Q(f"sum by (namespace) (rate({err}[{RATE}])) / sum by (namespace) (rate({req}[{RATE}]))",
                                "{{namespace}}"), unit="percentunit", alert="ApiHighErrorRatio", warn=0.01)
    b.timeseries("5xx ratio by route",
                 Q(f"sum by (route) (rate({err}[{RATE}])) / sum by (route) (rate({req}[{RATE}]))", "{{route}}"),
                 unit="percentunit")
    b.row("Latency")
    b.timeseries("Latency percentiles",
                 Q(f"histogram_quantile(0.5, sum by (le) (rate({bucket}[{RATE}])))", "p50"),
                 Q(f"histogram_quantile(0.95, sum by (le) (rate({bucket}[{RATE}])))", "p95"),
                 Q(f"histogram_quantile(0.99, sum by (le) (rate({bucket}[{RATE}])))", "p99"),
                 unit="s", alert="ApiLatencyP99High")
    b.timeseries("Slowest routes (p99)",
                 Q(f"topk(10, histogram_quantile(0.99, sum by (route, le) (rate({bucket}[{RATE}]))))", "{{route}}"),
                 unit="s")
    b.row("Pods")
    b.timeseries("CPU used / limit",
                 Q(f"sum by (namespace) (rate(container_cpu_usage_seconds_total{{{PODS}}}[{RATE}])) / sum by (namespace) "
                   f'(kube_pod_container_resource_limits{{{PODS}, resource="cpu"}})', "{{namespace}}"),
                 unit="percentunit", alert="ApiCpuSaturated", w=8)
    b.timeseries("Event loop lag p99", Q(f'max by (pod) (nodejs_eventloop_lag_p99_seconds{{{SEL}}})', "{{pod}}"),
                 unit="s", alert="ApiEventLoopLagHigh", w=8)
    b.timeseries("Memory by pod", Q(f"sum by (pod) (container_memory_working_set_bytes{{{PODS}}})", "{{pod}}"),
                 unit="bytes", w=8)
    return b.build()
