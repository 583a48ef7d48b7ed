"""Time one what-if dashboard update (slider -> re-plan -> redraw) against a full redraw.

Problem: 4 candidates x 4 batch sizes measured on one CPU box, projected to 2 catalog GPUs
(4 candidates x 3 hardware = 12 options), a 12-month plan with 200 Monte-Carlo samples: the
size of the shipped example notebook.

Measured in the same run, each the median of ``--repeats`` updates after warm-up:

* ``dashboard``: ``BudgetDashboard`` driven through its real ``observe`` callback (the traffic
  slider moves): re-plan from the prepared measurements, rank the options, the headline, the
  ranked table, the ranking chart (HTML bars, updated in place: the browser draws them) and the
  download links. This is what a slider change costs with the default tab open.
* ``dashboard, quality tab open``: the same with the "quality vs cost" tab visible (an SVG
  scatter with the Pareto front and placed labels, rebuilt on every change).
* ``dashboard, view change``: a candidate-selection change (no re-plan).
* ``full redraw`` (how the previous dashboard worked, with today's chart code): the same
  re-plan, then the budget table and BOTH charts (cost per quarter, quality vs cost) redrawn from scratch into fresh pyplot-free
  Figures with constrained layout and encoded as PNG.
* ``pyplot, fresh figures``: the same with ``plt.subplots`` / ``plt.close`` per chart, as a
  notebook callback usually does (without the close every update leaks figures: counted).
* ``generation dashboard``: a generation (LLM serving) dashboard over entered rows (4 candidates
  x 4 concurrencies x 2 prompt lengths on an L4, the same Monte-Carlo samples) driven through
  the prompt-tokens slider, against ``effplan.plan`` from the raw frame (validation and
  projection every time, no prepared measurements) for the same workloads.

The target (issue 14) is a slider change in at most 150 ms on the development machine.

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
from effplan.planning.frames import budget_table, headline, rank_options  # noqa: E402
from effplan.widgets import BudgetDashboard  # noqa: E402

CANDIDATES = {  # name: (items/s at batch 1, forward FLOPs per item, quality)
    "mlp-small": (4000.0, 2.0e6, 0.91),
    "mlp-large": (1500.0, 2.0e7, 0.94),
    "cnn": (600.0, 1.2e8, 0.96),
    "transformer": (150.0, 1.0e9, 0.975),
}
BATCHES = (1, 8, 32, 128)
PROJECT_TO = ["T4", "A100 80GB"]
TARGET_MS = 150.0


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
                             energy_source="entered",
                             tags="baseline" if name == "transformer" else ""))
    return pd.DataFrame(rows)


def generation_measurements() -> pd.DataFrame:
    """Entered generation rows: per candidate, TTFT / TPOT p50 and p95 at 4 concurrencies and
    2 prompt lengths on an L4 (a team's vLLM figures, typed in)."""
    rows = []
    for k, name in enumerate(CANDIDATES):
        scale = 1.0 + k  # larger candidates: slower per token
        for c in (1, 4, 16, 64):
            for p in (512, 2048):
                ttft = scale * p * 0.05 * (1 + c / 16)
                tpot = scale * 8.0 * (1 + c / 32)
                rows.append(dict(candidate=name, hardware="L4", mode="generation", batch_size=c,
                                 prompt_tokens=p, ttft_p50_ms=ttft, ttft_p95_ms=ttft * 1.2,
                                 tpot_p50_ms=tpot, tpot_p95_ms=tpot * 1.2,
                                 kv_cache_bytes_per_token=16384.0 * scale,
                                 param_bytes=1e9 * scale, energy_per_prompt_token_j=0.001 * scale,
                                 energy_per_output_token_j=0.2 * scale, idle_power_w=30.0,
                                 perplexity=20.0 / scale, provenance="entered",
                                 energy_source="entered",
                                 tags="baseline" if name == "transformer" else ""))
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
    slider = dash.controls["requests_per_day"]
    values = np.geomspace(2e6, 2e7, 7)
    n_rows = len(dash.plan.summary)
    n_hw = dash.plan.summary["hardware"].nunique()

    def drive(n: int) -> tuple[list[float], list[float], list[float], list[float]]:
        for v in values[:2]:  # warm-up
            slider.value = float(v * 1.0001)
        upd, pln, drw, num = [], [], [], []
        for i in range(n):
            slider.value = float(values[i % len(values)] * (1 + 1e-3 * (i + 1)))  # a new value
            assert dash.error == "", dash.error
            upd.append(dash.last_update_ms)
            pln.append(dash.last_plan_ms)
            drw.append(dash.last_draw_ms)
            num.append(dash.last_numbers_ms)
        return upd, pln, drw, num

    # ---- the dashboard: the real callback path, default tab (ranking) open
    upd, pln, drw, num = drive(args.repeats)
    assert dash.headline is not None and dash.headline.found
    # ... with the matplotlib quality tab open
    dash._tabs.selected_index = 1
    q_upd, q_pln, q_drw, _ = drive(args.repeats)
    dash._tabs.selected_index = 0
    view = []
    sel = dash.controls["candidates"]
    options = list(sel.options)
    for i in range(args.repeats):
        sel.value = tuple(options[: 1 + i % len(options)]) if i % 2 else tuple(options)
        view.append(dash.last_update_ms)
    sel.value = tuple(options)

    # ---- the alternatives: the same re-plan, drawn the old way
    prepared = planning.prepare(m, PROJECT_TO)  # what the dashboard holds for its re-plans

    def replan(v: float):
        w = planning.InferenceWorkload(**{**wl.to_dict(), "requests_per_day": v})
        return planning.plan(prepared, inference=w, prices=pr, samples=args.samples, seed=0)

    cands, hw = dash.selection()

    def full_redraw(p) -> None:
        """The previous dashboard: budget table + both charts from scratch, PNG-encoded."""
        budget_table(p, cands, hw)
        rank_options(p, baseline="transformer")
        for fig in (plots.cost_per_quarter(p, candidates=cands, hardware=hw),
                    plots.quality_vs_cost(p, highlight=cands)):
            fig.set_dpi(96)
            fig.set_size_inches(7.5, 3.8)
            fig.savefig(io.BytesIO(), format="png", dpi=96)

    def pyplot_fresh(p, close: bool = True) -> None:
        budget_table(p, cands, hw)
        for draw in (lambda ax: plots.cost_per_quarter(p, ax=ax, candidates=cands, hardware=hw),
                     lambda ax: plots.quality_vs_cost(p, ax=ax, highlight=cands)):
            fig, ax = plt.subplots(figsize=(7.5, 3.8), dpi=96, layout="constrained")
            draw(ax)
            fig.savefig(io.BytesIO(), format="png", dpi=96)
            if close:
                plt.close(fig)

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

    fr_tot, fr_p, fr_d = timed(full_redraw)
    py_tot, py_p, py_d = timed(pyplot_fresh)
    assert plt.get_fignums() == [], "pyplot figures left open"
    for v in values[:5]:  # the same loop without plt.close: what an un-careful callback leaks
        pyplot_fresh(replan(float(v)), close=False)
    leaked = len(plt.get_fignums())
    plt.close("all")

    # the headline the dashboard shows is the plan's answer for the slider's value
    h = headline(dash.plan, baseline="transformer")
    assert h.candidate == dash.headline.candidate
    assert h.quarter_cost_usd == dash.headline.quarter_cost_usd

    # ---- generation: the prompt-length slider re-plans a GenerationWorkload
    gm = generation_measurements()
    gwl = planning.GenerationWorkload(requests_per_day=2e6, prompt_tokens=400, output_tokens=200,
                                      slo_ttft_p95_ms=2000, slo_tpot_p95_ms=60,
                                      monthly_growth=0.05, peak_to_average=2.0,
                                      target_utilization=0.6, months=12)
    gpr = planning.Prices(price_per_hour={"L4": 0.8})
    gdash = BudgetDashboard(gm, generation=gwl, prices=gpr, samples=args.samples, seed=0,
                            export_dir="/tmp/effplan-bench")
    pslider = gdash.controls["prompt_tokens"]
    prompts = [300, 450, 500, 1000, 1500, 2000, 256]
    for v in prompts[:2]:
        pslider.value = v + 1
    g_upd = []
    for i in range(args.repeats):
        pslider.value = prompts[i % len(prompts)] + 2 + i
        assert gdash.error == "", gdash.error
        g_upd.append(gdash.last_update_ms)
    assert gdash.headline is not None and gdash.headline.workload == "generation"
    g_raw = []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        w = planning.GenerationWorkload(**{**gwl.to_dict(),
                                           "prompt_tokens": prompts[i % len(prompts)] + 2 + i})
        gp = planning.plan(gm, generation=w, prices=gpr, samples=args.samples, seed=0)
        headline(gp, baseline="transformer")
        g_raw.append(time.perf_counter() - t0)

    d_tot = statistics.median(upd)
    print(f"effplan dashboard update: {len(CANDIDATES)} candidates x {n_hw} hardware "
          f"({n_rows} options), {wl.months} months, {args.samples} Monte-Carlo samples; "
          f"median of {args.repeats} updates")
    print(f"{'variant':<44}{'total ms':>10}{'plan ms':>10}{'draw ms':>10}")
    rows = [
        ("dashboard (slider -> re-plan + redraw)", d_tot, statistics.median(pln),
         statistics.median(drw)),
        ("dashboard, quality tab open", statistics.median(q_upd),
         statistics.median(q_pln), statistics.median(q_drw)),
        ("dashboard, view change (no re-plan)", statistics.median(view), 0.0,
         statistics.median(view)),
        ("full redraw, both charts (matplotlib)", _median_ms(fr_tot), _median_ms(fr_p),
         _median_ms(fr_d)),
        ("pyplot, fresh figures each update", _median_ms(py_tot), _median_ms(py_p),
         _median_ms(py_d)),
        ("generation dashboard (prompt slider)", statistics.median(g_upd), float("nan"),
         float("nan")),
        ("generation: plan from raw rows + headline", _median_ms(g_raw), _median_ms(g_raw), 0.0),
    ]
    for name, t, p, d in rows:
        print(f"{name:<44}{t:>10.1f}{p:>10.1f}{d:>10.1f}")
    print(f"speed-up of a slider change vs the full redraw: {_median_ms(fr_tot) / d_tot:.2f}x "
          f"(draw alone: {_median_ms(fr_d) / statistics.median(drw):.2f}x)")
    print(f"speed-up vs pyplot fresh figures: {_median_ms(py_tot) / d_tot:.2f}x")
    print(f"generation dashboard ({len(gdash.ranking)} options): a prompt-slider change "
          f"{statistics.median(g_upd):.0f} ms, re-plan + redraw, vs a plan from the raw rows "
          f"and its headline (no drawing) {_median_ms(g_raw):.0f} ms: "
          f"{_median_ms(g_raw) / statistics.median(g_upd):.2f}x")
    print(f"target {TARGET_MS:.0f} ms per slider change: "
          f"{'met' if d_tot <= TARGET_MS else 'NOT met'} ({d_tot:.0f} ms; quality tab open: "
          f"{statistics.median(q_upd):.0f} ms)")
    print(f"dashboard: headline and table on the page after {statistics.median(num):.1f} ms "
          f"(median)")
    print(f"pyplot figures left open after 5 updates without plt.close: {leaked} "
          f"(dashboard: {len(plt.get_fignums())})")


if __name__ == "__main__":
    main()
