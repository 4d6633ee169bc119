"""The WebSocket gateway (scrape job "websocket-gateway"): connections, delivery latency, memory."""

from sre.provision.dashkit import Board, Context, Q, namespace, region

FOLDER = "Services"
RATE = "$__rate_interval"
SEL = 'job="websocket-gateway", region=~"$region", namespace=~"$namespace"'
CONT = 'region=~"$region", namespace=~"$namespace", container="websocket-gateway"'


def build(ctx: Context) -> dict:
    b = Board(
        ctx, uid="sre-websocket-gateway", title="WebSocket gateway",
        description="Open connections, server-side disconnects, message delivery latency and the memory that "
                    "remediation watches (rolling restart above its alert).",
        tags=["platform", "websocket"],
        variables=[region('ws_connections_open{job="websocket-gateway"}'),
                   namespace('ws_connections_open{job="websocket-gateway", region=~"$region"}')],
    )
    delivery = f"ws_message_delivery_duration_seconds_bucket{{{SEL}}}"
    b.row("Connections")
    b.stat("Open connections", f"sum(ws_connections_open{{{SEL}}})", runbook="WebsocketConnectionsDropped")
    b.stat("Delivery p99", f"histogram_quantile(0.99, sum by (le) (rate({delivery}[{RATE}])))", unit="s",
           alert="WebsocketDeliveryLatencyHigh")
    b.stat("Server-side disconnects", f'sum(rate(ws_disconnects_total{{{SEL}, reason!="client_close"}}[{RATE}])) '
                                      f"/ sum(ws_connections_open{{{SEL}}})",
           unit="percentunit", alert="WebsocketDisconnectRateHigh")
    b.stat("Memory / limit (max pod)",
           f"max(container_memory_working_set_bytes{{{CONT}}} / on (namespace, pod, container) "
           f'kube_pod_container_resource_limits{{{CONT}, resource="memory"}})',
           unit="percentunit", alert="WebsocketGatewayMemoryHigh", warn=0.8)
    b.timeseries("Open connections by pod", Q(f"sum by (pod) (ws_connections_open{{{SEL}}})", "{{pod}}"),
                 stack=True, runbook="WebsocketConnectionsDropped",
                 description="A drop by half within 15 minutes pages (WebsocketConnectionsDropped).")
    b.timeseries("Disconnects by reason", Q(f"sum by (reason) (rate(ws_disconnects_total{{{SEL}}}[{RATE}]))",
                                            "{{reason}}"), unit="ops", stack=True)
    b.timeseries("Server-side disconnect rate",
                 Q(f'sum by (namespace) (rate(ws_disconnects_total{{{SEL}, reason!="client_close"}}[{RATE}])) '
                   f"/ sum by (namespace) (ws_connections_open{{{SEL}}})", "{{namespace}}"),
                 unit="percentunit", alert="WebsocketDisconnectRateHigh")
    b.row("Delivery")
    b.timeseries("Delivery latency",
                 Q(f"histogram_quantile(0.5, sum by (le) (rate({delivery}[{RATE}])))", "p50"),
                 Q(f"histogram_quantile(0.99, sum by (le) (rate({delivery}[{RATE}])))", "p99"),
                 unit="s", alert="WebsocketDeliveryLatencyHigh")
    b.timeseries("Messages delivered/s",
                 Q(f"sum by (namespace) (rate(ws_message_delivery_duration_seconds_count{{{SEL}}}[{RATE}]))",
                   "{{namespace}}"), unit="ops")
    b.row("Pods")
    b.timeseries("Memory / limit by pod",
                 Q(f"max by (pod) (container_memory_working_set_bytes{{{CONT}}} / on (namespace, pod, container) "
                   f'kube_pod_container_resource_limits{{{CONT}, resource="memory"}})', "{{pod}}"),
                 unit="percentunit", alert="WebsocketGatewayMemoryHigh", warn=0.8, w=8,
                 description="Remediation restarts the deployment when the alert fires (runbook).")
    b.timeseries("CPU by pod", Q(f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{CONT}}}[{RATE}]))", "{{pod}}"),
                 unit="cores", w=8)
    b.timeseries("Replicas available / desired",
                 Q('sum(kube_deployment_status_replicas_available{region=~"$region", namespace=~"$namespace", '
                   'deployment="websocket-gateway"})', "available"),
                 Q('sum(kube_deployment_spec_replicas{region=~"$region", namespace=~"$namespace", '
                   'deployment="websocket-gateway"})', "desired"), w=8, runbook="KubeDeploymentReplicasUnavailable")
    return b.build()
