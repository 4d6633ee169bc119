"""Service level objectives from alerts/slos: error budget left, SLI, burn rates against the alerts.

Built from the recording rules `sre alerts` generates for each spec (slo:sli_error:ratio_rate<w>,
slo:objective:ratio, slo:error_budget:remaining_ratio), one row per SLO, so a new spec file
adds its row on the next render.
"""

from sre.provision.dashkit import Board, Context, Q, Var

FOLDER = "Platform"
FAST, SLOW = 14.4, 6.0  # page: burn rates over 1h and 6h of a 30d SLO (overview panel only)
TICKET = 3.0  # ticket: burn rate over 1d of a 30d SLO


def build(ctx: Context) -> dict:
    b = Board(
        ctx, uid="sre-slos", title="SLOs",
        description="Error budget remaining and burn rates of every SLO in alerts/slos. A burn rate of 1 spends "
                    "the budget exactly over the SLO window; the fast-burn alert pages at 14.4 over 1h.",
        tags=["platform", "slo"], time_from="now-7d",
        variables=[Var("service", "Service", "slo:objective:ratio")],
    )
    svc = 'service=~"$service"'
    b.row("All objectives")
    b.timeseries("Error budget remaining", Q(f"slo:error_budget:remaining_ratio{{{svc}}}", "{{slo}}"),
                 unit="percentunit", threshold=0, warn=0.25, below=True, maximum=1)
    b.timeseries("Burn rate over 1h",
                 Q(f"slo:sli_error:ratio_rate1h{{{svc}}} / on (slo) (1 - slo:objective:ratio{{{svc}}})",
                   "{{slo}}"), threshold=FAST, warn=SLOW)
    for slo in sorted(ctx.slos, key=lambda s: s["name"]):
        name, window = slo["name"], slo["window"]
        sel = f'slo="{name}"'
        b.row(f"{name}: {slo['objective']:g}% over {window}")
        b.stat("Error budget remaining", f"slo:error_budget:remaining_ratio{{{sel}}}", unit="percentunit", w=6,
               threshold=0, warn=0.25, below=True, description=slo["description"])
        b.stat(f"SLI over {window}", f"1 - slo:sli_error:ratio_rate{window}{{{sel}}}", unit="percentunit", w=6,
               threshold=slo["objective"] / 100, below=True, graph=False)
        b.timeseries("Burn rate (page)",
                     Q(f"slo:sli_error:ratio_rate1h{{{sel}}} / {slo['budget']:g}", "1h"),
                     Q(f"slo:sli_error:ratio_rate6h{{{sel}}} / {slo['budget']:g}", "6h"),
                     Q(f"slo:sli_error:ratio_rate5m{{{sel}}} / {slo['budget']:g}", "5m (confirms)"),
                     threshold=slo["factors"].get("page", FAST), warn=SLOW,
                     runbook=f"{slo['alert_prefix']}FastBurn", w=6, h=6)
        b.timeseries("Burn rate (ticket)",
                     Q(f"slo:sli_error:ratio_rate1d{{{sel}}} / {slo['budget']:g}", "1d"),
                     Q(f"slo:sli_error:ratio_rate3d{{{sel}}} / {slo['budget']:g}", "3d"),
                     threshold=slo["factors"].get("ticket", TICKET), warn=1,
                     runbook=f"{slo['alert_prefix']}SlowBurn", w=6, h=6)
    return b.build()
