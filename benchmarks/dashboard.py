"""Time one what-if dashboard callback (re-plan + redraw) against the obvious alternatives.

Problem: 4 candidates x 4 batch sizes measured on one CPU box, projected to 2 catalog GPUs
(4 candidates x 3 hardware), a 12-month plan with 200 Monte-Carlo samples: the size of the
shipped example notebook.

Measured in the same run, each the median of ``--repeats`` updates after warm-up:

* ``dashboard``: ``BudgetDashboard`` driven through its real ``observe`` callback (the traffic
  slider is moved): re-plan with ``effplan.plan``, rebuild the budget table and HTML, redraw the
  two charts into long-lived pyplot-free Figures with fixed margins and encode PNGs.
* ``dashboard, view change``: a candidate-selection change (no re-plan: redraw only).
* ``pyplot, fresh figures``: the same re-plan, then what a notebook cell usually does:
  ``plt.subplots(layout="constrained")`` for each chart, the same ``effplan.plots`` drawing,
  ``savefig`` to PNG, ``plt.close``. Without the close every update leaks a figure (counted).
* ``fresh Figure, constrained``: ``effplan.plots`` builders standalone (new pyplot-free Figure
  with constrained layout per call): isolates the layout engine's cost from pyplot's.

    .venv/bin/python benchmarks/dashboard.py [--repeats 15] [--samples 200]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from effplan import planning, plots  # noqa: E402
from effplan.widgets import BudgetDashboard  # noqa: E402

CANDIDATES = {  # name: (items/s at batch 1, forward FLOPs per item, quality)
    "mlp-small": (4000.0, 2.0e6, 0.91),
    "mlp-large": (1500.0, 2.0e7, 0.94),
    "cnn": (600.0, 1.2e8, 0.96),
    "transformer": (150.0, 1.0e9, 0.975),
}
BATCHES = (1, 8, 32, 128)
PROJECT_TO = ["T4", "A100 80GB"]


def measurements() -> pd.DataFrame:
    rows = []
    for name, (tput1, flops, quality) in CANDIDATES.items():
        for b in BATCHES:
            tput = tput1 * b ** 0.55
            lat_ms = b / tput * 1000.0
            rows.append(dict(candidate=name, hardware="bench-cpu", mode="inference", batch_size=b,
                             latency_p50_ms=lat_ms, latency_p95_ms=lat_ms * 1.25,
                             throughput_items_per_s=tput, energy_per_item_j=60.0 / tput,
                             idle_power_w=25.0, flops_per_item=flops, bytes_per_item=4.0e5,
                             dtype="float32", quality=quality, provenance="entered",
                             energy_source="entered"))
    return pd.DataFrame(rows)


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args()

    import matplotlib.pyplot as plt

    m = measurements()
    wl = planning.InferenceWorkload(requests_per_day=5e6, monthly_growth=0.05,
                                    peak_to_average=2.0, target_utilization=0.6, months=12)
    pr = planning.Prices(price_per_hour={"bench-cpu": 0.68})
    dash = BudgetDashboard(m, inference=wl, prices=pr, hardware=PROJECT_TO,
                           samples=args.samples, seed=0, export_dir="/tmp/effplan-bench")
    dash.controls["hardware"].value = "bench-cpu"
    slider = dash.controls["requests_per_day"]
    values = np.geomspace(2e6, 2e7, 7)
    n_rows = len(dash.plan.summary)
    n_hw = dash.plan.summary["hardware"].nunique()

    # ---- dashboard: the real callback path
    for v in values[:3]:  # warm-up
        slider.value = float(v)
    upd, pln, drw, num = [], [], [], []
    for i in range(args.repeats):
        slider.value = float(values[i % len(values)] * (1 + 1e-3 * i))  # always a new value
        assert dash.error == "", dash.error
        upd.append(dash.last_update_ms)
        pln.append(dash.last_plan_ms)
        drw.append(dash.last_draw_ms)
        num.append(dash.last_numbers_ms)
    view = []
    sel = dash.controls["candidates"]
    options = list(sel.options)
    for i in range(args.repeats):
        sel.value = tuple(options[: 1 + i % len(options)]) if i % 2 else tuple(options)
        view.append(dash.last_update_ms)

    # ---- alternatives: same plan call, different drawing
    prepared = planning.prepare(m, PROJECT_TO)  # what the dashboard holds for its re-plans

    def replan(v: float):
        w = planning.InferenceWorkload(**{**wl.to_dict(), "requests_per_day": v})
        return planning.plan(prepared, inference=w, prices=pr, samples=args.samples, seed=0)

    cands, hw = dash.selection()

    def pyplot_fresh(p, close: bool = True) -> None:
        for draw in (lambda ax: plots.cost_per_quarter(p, ax=ax, candidates=cands, hardware=hw),
                     lambda ax: plots.quality_vs_cost(p, ax=ax, highlight=cands)):
            fig, ax = plt.subplots(figsize=(7.5, 3.8), dpi=96, layout="constrained")
            draw(ax)
            fig.savefig(io.BytesIO(), format="png", dpi=96)
            if close:
                plt.close(fig)

    def figure_constrained(p) -> None:
        for fig in (plots.cost_per_quarter(p, candidates=cands, hardware=hw),
                    plots.quality_vs_cost(p, highlight=cands)):
            fig.set_dpi(96)
            fig.set_size_inches(7.5, 3.8)
            fig.savefig(io.BytesIO(), format="png", dpi=96)

    def timed(draw) -> tuple[list[float], list[float], list[float]]:
        for v in values[:2]:
            draw(replan(float(v)))
        tot, tp, td = [], [], []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            p = replan(float(values[i % len(values)] * (1 + 1e-3 * i)))
            t1 = time.perf_counter()
            draw(p)
            t2 = time.perf_counter()
            tot.append(t2 - t0)
            tp.append(t1 - t0)
            td.append(t2 - t1)
        return tot, tp, td

    py_tot, py_p, py_d = timed(pyplot_fresh)
    fc_tot, fc_p, fc_d = timed(figure_constrained)
    assert plt.get_fignums() == [], "pyplot figures left open"
    # the same loop without plt.close: what an un-careful notebook callback leaks
    for v in values[:5]:
        pyplot_fresh(replan(float(v)), close=False)
    leaked = len(plt.get_fignums())
    plt.close("all")

    d_tot, d_plan, d_draw = statistics.median(upd), statistics.median(pln), statistics.median(drw)
    print(f"effplan dashboard callback: {len(CANDIDATES)} candidates x {n_hw} hardware "
          f"({n_rows} rows), {wl.months} months, {args.samples} Monte-Carlo samples; "
          f"median of {args.repeats} updates")
    print(f"{'variant':<38}{'total ms':>10}{'plan ms':>10}{'draw ms':>10}")
    rows = [
        ("dashboard (slider -> re-plan + redraw)", d_tot, d_plan, d_draw),
        ("dashboard, view change (redraw only)", statistics.median(view), 0.0,
         statistics.median(view)),
        ("pyplot, fresh figures each update", _median_ms(py_tot), _median_ms(py_p),
         _median_ms(py_d)),
        ("fresh Figure, constrained layout", _median_ms(fc_tot), _median_ms(fc_p),
         _median_ms(fc_d)),
    ]
    for name, t, p, d in rows:
        print(f"{name:<38}{t:>10.1f}{p:>10.1f}{d:>10.1f}")
    print(f"speed-up of the dashboard callback vs pyplot fresh figures: "
          f"{_median_ms(py_tot) / d_tot:.2f}x (draw alone: {_median_ms(py_d) / d_draw:.2f}x)")
    print(f"speed-up vs fresh pyplot-free Figures with constrained layout: "
          f"{_median_ms(fc_tot) / d_tot:.2f}x")
    print(f"dashboard: table and total on the page after {statistics.median(num):.1f} ms "
          f"(median; the charts follow)")
    print(f"pyplot figures left open after 5 updates without plt.close: {leaked} "
          f"(dashboard: {len(plt.get_fignums())})")


if __name__ == "__main__":
    main()
