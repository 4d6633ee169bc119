"""Kubernetes workloads of the platform: replicas, restarts, pods by phase, resources, HPA, nodes."""

from sre.provision.dashkit import Board, Context, Q, Var, namespace, region

FOLDER = "Platform"
RATE = "$__rate_interval"


def build(ctx: Context) -> dict:
    b = Board(
        ctx, uid="sre-k8s-workloads", title="Kubernetes workloads",
        description="Deployments and pods (kube-state-metrics v2, cAdvisor) per region and namespace.",
        tags=["platform", "kubernetes"],
        variables=[
            region("kube_pod_info"), namespace(),
            Var("deployment", "Deployment", 'kube_deployment_spec_replicas{region=~"$region", namespace=~"$namespace"}'),
        ],
    )
    ns = 'region=~"$region", namespace=~"$namespace"'
    dep = f'{ns}, deployment=~"$deployment"'
    cont = f'{ns}, container!="", container!="POD"'
    b.row("Deployments")
    b.stat("Replicas missing", f"sum(kube_deployment_spec_replicas{{{dep}}} - kube_deployment_status_replicas_available{{{dep}}})",
           w=6, threshold=1, runbook="KubeDeploymentReplicasUnavailable")
    b.stat("Crash-looping containers", f'sum(kube_pod_container_status_waiting_reason{{{ns}, reason="CrashLoopBackOff"}})',
           w=6, alert="KubePodCrashLooping")
    b.stat("Pods not running", f'sum(kube_pod_status_phase{{{ns}, phase=~"Pending|Failed|Unknown"}})', w=6)
    b.stat("Nodes ready", 'min(kube_node_status_condition{condition="Ready", status="true"})', w=6,
           alert="KubeNodeNotReady", graph=False)
    b.timeseries("Replicas available / desired",
                 Q(f"sum by (namespace, deployment) (kube_deployment_status_replicas_available{{{dep}}}) "
                   f"/ sum by (namespace, deployment) (kube_deployment_spec_replicas{{{dep}}})", "{{namespace}}/{{deployment}}"),
                 unit="percentunit", maximum=1, threshold=1, below=True, runbook="KubeDeploymentReplicasUnavailable")
    b.timeseries("Restarts by container",
                 Q(f"sum by (namespace, pod, container) (increase(kube_pod_container_status_restarts_total{{{ns}}}[{RATE}]))",
                   "{{pod}}/{{container}}"))
    b.timeseries("Pods by phase", Q(f"sum by (phase) (kube_pod_status_phase{{{ns}}})", "{{phase}}"), stack=True)
    b.timeseries("Containers waiting by reason",
                 Q(f"sum by (reason) (kube_pod_container_status_waiting_reason{{{ns}}})", "{{reason}}"),
                 alert="KubePodCrashLooping", description="CrashLoopBackOff pages after 15 minutes; ImagePullBackOff, ...")
    b.row("Resources")
    b.timeseries("CPU used / requested",
                 Q(f"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{{{cont}}}[{RATE}])) "
                   f'/ sum by (namespace, pod) (kube_pod_container_resource_requests{{{ns}, resource="cpu"}})',
                   "{{pod}}"), unit="percentunit")
    b.timeseries("Memory used / limit",
                 Q(f"sum by (namespace, pod) (container_memory_working_set_bytes{{{cont}}}) "
                   f'/ sum by (namespace, pod) (kube_pod_container_resource_limits{{{ns}, resource="memory"}})',
                   "{{pod}}"), unit="percentunit", threshold=0.9, warn=0.8)
    b.timeseries("CPU throttled",
                 Q(f"sum by (namespace, pod) (rate(container_cpu_cfs_throttled_periods_total{{{cont}}}[{RATE}])) "
                   f"/ sum by (namespace, pod) (rate(container_cpu_cfs_periods_total{{{cont}}}[{RATE}]))", "{{pod}}"),
                 unit="percentunit")
    b.timeseries("OOM kills",
                 Q(f'sum by (namespace, pod) (kube_pod_container_status_last_terminated_reason{{{ns}, reason="OOMKilled"}})',
                   "{{pod}}"))
    b.row("Autoscaling and nodes")
    b.timeseries("HPA replicas vs max",
                 Q(f"sum by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{{{ns}}})",
                   "{{horizontalpodautoscaler}} current"),
                 Q(f"sum by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{{{ns}}})",
                   "{{horizontalpodautoscaler}} max"), runbook="KubeHpaMaxedOut")
    b.timeseries("Nodes ready", Q('kube_node_status_condition{condition="Ready", status="true"}', "{{node}}"),
                 unit="bool", alert="KubeNodeNotReady", minimum=0, maximum=1)
    return b.build()
