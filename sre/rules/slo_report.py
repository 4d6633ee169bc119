"""`sre slo report`: a PNG per SLO for the weekly review: the error budget burned down over the
SLO window, and the burn rate over each alert's long window against the factor it fires at.

Two range queries per SLO over its window (about 500 points each, whatever the window), drawn
with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sre.rules.slo import BUDGET_REMAINING, ERROR_RATIO, Slo
from sre.rules.slo_windows import seconds

if TYPE_CHECKING:
    from sre.adapters.prometheus import PrometheusClient

POINTS = 500


@dataclass
class ReportFile:
    slo: str
    path: Path
    points: int  # samples of the budget series drawn (0: no data in the window)

    def to_dict(self) -> dict[str, Any]:
        return {"slo": self.slo, "path": str(self.path), "points": self.points}


def _series(prom: PrometheusClient, expr: str, start: float, end: float, step: float) -> tuple[list[datetime],
                                                                                                list[float]]:
    result = prom.query_range(expr, start, end, step)
    if not result:
        return [], []
    values = result[0]["values"]
    return ([datetime.fromtimestamp(float(ts), UTC) for ts, _ in values], [float(v) for _, v in values])


def write_reports(prom: PrometheusClient, slos: list[Slo], out: Path, *, end: float | None = None,
                  min_budget: float | None = None) -> list[ReportFile]:
    """One `<slo>.png` per SLO under `out`."""
    import matplotlib  # at call time: matplotlib takes about a second to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    end = time.time() if end is None else end
    files = []
    for slo in slos:
        window_s = seconds(slo.window)
        start, step = end - window_s, max(window_s / POINTS, 60.0)
        sel = f'{{slo="{slo.name}"}}'
        budget = float(slo.budget)
        times, remaining = _series(prom, BUDGET_REMAINING + sel, start, end, step)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
        top.plot(times, [r * 100 for r in remaining], color="tab:blue", label="budget left")
        top.axhline(0, color="tab:red", linewidth=1, label="budget spent")
        if min_budget is not None:
            top.axhline(min_budget * 100, color="tab:orange", linestyle=":", label="deploy gate floor")
        top.set_ylabel(f"% of the {slo.window} budget left")
        top.set_title(f"{slo.name}: {slo.objective}% over {slo.window} ({slo.service})")
        top.legend(loc="lower left")
        top.grid(alpha=0.3)
        colours = iter(["tab:red", "tab:purple", "tab:orange", "tab:green", "tab:brown", "tab:pink"])
        for ba in slo.burn_alerts():
            for long, _, factor in ba.pairs:
                colour = next(colours, "tab:gray")
                btimes, ratios = _series(prom, f"{ERROR_RATIO}{long}{sel}", start, end, step)
                bottom.plot(btimes, [r / budget for r in ratios], color=colour, label=f"burn rate over {long}")
                bottom.axhline(float(factor), color=colour, linestyle="--",
                               label=f"{ba.kind} at {factor}x over {long}")
        bottom.set_yscale("symlog", linthresh=1)
        bottom.set_ylabel("burn rate (1 = the budget lasts the window)")
        bottom.legend(loc="upper left", fontsize="small", ncol=2)
        bottom.grid(alpha=0.3)
        fig.autofmt_xdate()
        fig.tight_layout()
        path = out / f"{slo.name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files.append(ReportFile(slo.name, path, len(remaining)))
    return files
