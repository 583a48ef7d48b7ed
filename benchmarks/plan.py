"""Time ``effplan.plan`` against a straightforward per-row pandas implementation of the same formulas.

Synthetic measurements: 20 candidates x 12 catalog hardware x 4 batch sizes; a 12-month plan,
deterministic and with 1,000 Monte Carlo samples, sized for the peak (baseline) and autoscaled along
a daily curve of 24 distinct hourly weights; the measurements are prepared once
(``effplan.planning.prepare``) as a what-if session holds them, and the "cold" row times a plan
from the raw table. The reference loops over candidate x hardware
x month rows in Python (numpy only across samples); both must give the same numbers (asserted).
Vectorized times: the fastest and the median of ``--repeats`` runs (the machine may be shared:
the load average is printed); per-row: the fastest of 1-2 runs.

    python benchmarks/plan.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import importlib  # noqa: E402

P = importlib.import_module("effplan.planning")  # the module (effplan.plan may be the function)
from effplan.refdata.catalog import GENERIC_CPU, load_catalog  # noqa: E402

N_CANDIDATES = 20
BATCHES = (1, 4, 16, 64)


def synthetic_measurements(seed: int = 0) -> pd.DataFrame:
    cat = load_catalog()
    hws = [n for n in cat["name"] if n != GENERIC_CPU][:12]
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(N_CANDIDATES):
        for h in hws:
            base = rng.uniform(50, 5000)
            for b in BATCHES:
                tput = base * b ** 0.6
                rows.append(dict(candidate=f"cand{i:02d}", hardware=h, mode="inference", batch_size=b,
                                 latency_p95_ms=b / tput * 1000 * 1.3, throughput_items_per_s=tput,
                                 energy_per_item_j=rng.uniform(0.01, 2.0), idle_power_w=rng.uniform(20, 120),
                                 quality=rng.uniform(0.8, 0.99), provenance="measured",
                                 energy_source="nvml-counter"))
    return pd.DataFrame(rows)


def reference(opt: pd.DataFrame, wl: P.InferenceWorkload, pr: P.Prices, samples: int, seed: int,
              unc: P.Uncertainty) -> pd.DataFrame:
    """Per-row implementation of the documented baseline (cloud mode), one operating point per
    candidate x hardware as the planner chose it (``opt``; the choice itself is tested in
    tests/planning). Monte Carlo: the same draws (traffic, price; then the per-option
    throughput and energy multipliers of ``_sample_multipliers``), looped row by row."""
    from effplan.planning.engine import _sample_multipliers

    cat = load_catalog().set_index("name")
    g = pr.grid_intensity_gco2_per_kwh
    feas = opt[opt["feasible"]]
    if samples:
        rng = np.random.default_rng(seed)
        tr = rng.triangular(unc.traffic[0], 1.0, unc.traffic[1], samples)
        gr = np.full(samples, wl.monthly_growth)
        pm = rng.triangular(unc.price[0], 1.0, unc.price[1], samples)
        tput_m, en_m = _sample_multipliers(feas, unc, samples, seed)
        k_of = {(c, h): k for k, (c, h) in enumerate(zip(feas["candidate"], feas["hardware"]))}
    out = []
    for _, best in opt.iterrows():
        cand, hw = best["candidate"], best["hardware"]
        price = float(cat.loc[hw, "price_per_hour_usd"])
        for m in range(wl.months):
            req = wl.requests_per_day * (1 + wl.monthly_growth) ** m * wl.hours_per_month / 24
            items = req * wl.items_per_request
            row = {"candidate": cand, "hardware": hw, "month": m}
            if not best["feasible"]:
                row.update(instances=np.nan, cost_usd=np.nan, energy_kwh=np.nan, co2_kg=np.nan)
                out.append(row)
                continue
            cap = best["throughput_items_per_s"] * wl.target_utilization
            peak = items / (wl.hours_per_month * 3600) * wl.peak_to_average
            if wl.daily_profile is None:
                inst = max(wl.min_replicas, math.ceil(peak / cap * (1 - 1e-9)))
                inst_h = inst * wl.hours_per_month
            else:  # autoscaling: hour by hour
                hourly = [max(wl.min_replicas, math.ceil(peak * w / cap * (1 - 1e-9))) for w in wl.daily_profile]
                inst = max(hourly)
                inst_h = sum(hourly) * wl.hours_per_month / 24
            idle_s = max(0.0, inst_h * 3600 - items / best["throughput_items_per_s"])
            # idle power counted at most at the busy power (as effplan.planning does)
            idle_w = min(best["idle_power_w"], best["energy_per_item_j"] * best["throughput_items_per_s"])
            kwh = (items * best["energy_per_item_j"] + idle_w * idle_s) / 3.6e6 * pr.pue
            row.update(instances=inst, cost_usd=inst_h * price, energy_kwh=kwh, co2_kg=kwh * g / 1000)
            if samples:
                k = k_of[(cand, hw)]
                tput_s = best["throughput_items_per_s"] * tput_m[k]
                cap_s = tput_s * wl.target_utilization
                req_s = wl.requests_per_day * tr * (1 + gr) ** m * wl.hours_per_month / 24
                items_s = req_s * wl.items_per_request
                peak_s = items_s / (wl.hours_per_month * 3600) * wl.peak_to_average
                if wl.daily_profile is None:
                    inst_h_s = np.maximum(wl.min_replicas, np.ceil(peak_s / cap_s * (1 - 1e-9))) * wl.hours_per_month
                else:
                    inst_h_s = sum(np.maximum(wl.min_replicas, np.ceil(peak_s * w / cap_s * (1 - 1e-9)))
                                   for w in wl.daily_profile) * wl.hours_per_month / 24
                cost_s = inst_h_s * price * pm
                idle_ss = np.maximum(0.0, inst_h_s * 3600 - items_s / tput_s)
                epi_s = best["energy_per_item_j"] * en_m[k]
                idle_w_s = np.minimum(best["idle_power_w"] * en_m[k], epi_s * tput_s)
                kwh_s = (items_s * epi_s + idle_w_s * idle_ss) / 3.6e6 * pr.pue
                for q in (10, 50, 90):
                    row[f"cost_usd_p{q}"] = np.percentile(cost_s, q)
                    row[f"energy_kwh_p{q}"] = np.percentile(kwh_s, q)
            out.append(row)
    return pd.DataFrame(out)


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """(min, median, last result) of ``repeats`` timed calls after one warm-up call."""
    fn()  # warm-up
    times = []
    res = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times)), res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    df = synthetic_measurements()
    wl = P.InferenceWorkload(5e6, monthly_growth=0.06, peak_to_average=2.5, slo_p95_ms=25, months=12)
    pr = P.Prices(pue=1.2, grid_region="eu")
    unc = P.Uncertainty(traffic=(0.7, 1.4), price=(0.9, 1.1))
    n_opts = df.groupby(["candidate", "hardware"]).ngroups
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"effplan.plan benchmark: {N_CANDIDATES} candidates x {n_opts // N_CANDIDATES} hardware x "
          f"{wl.months} months ({len(df)} measurement rows); {args.repeats} timed runs each, "
          f"load average {load:.2f} on {os.cpu_count()} CPUs\n")
    print(f"{'case':<40}{'vectorized ms':>15}{'(median)':>10}{'per-row ms':>14}{'ratio':>9}")
    # autoscaling along a daily curve: 24 distinct hourly weights (the slowest case)
    wl_auto = P.InferenceWorkload(5e6, monthly_growth=0.06, slo_p95_ms=25, months=12,
                                  daily_profile=[0.3 + 0.05 * h for h in range(24)])
    t_ref_det = math.nan
    # measurements prepared once (validation, projection, batch choice), as a what-if session holds
    # them; the cold row below times a plan from the raw table, preparation included
    prep = P.prepare(df)
    for w, samples in ((wl, 0), (wl, 1000), (wl_auto, 0), (wl_auto, 1000)):
        t_vec, med, p = timed(lambda: P.plan(prep, w, prices=pr, samples=samples, seed=0, uncertainty=unc),
                              args.repeats)
        opt = prep.choose(w)
        t_ref, _, ref = timed(lambda: reference(opt, w, pr, samples, 0, unc), 1 if samples else 2)
        mon = p.monthly.set_index(["candidate", "hardware", "month"])
        ref = ref.set_index(["candidate", "hardware", "month"]).loc[mon.index]
        cols = ["instances", "cost_usd", "energy_kwh", "co2_kg"]
        if samples:
            cols += [f"{m}_p{q}" for m in ("cost_usd", "energy_kwh") for q in (10, 50, 90)]
        for c in cols:
            np.testing.assert_allclose(mon[c].to_numpy(float), ref[c].to_numpy(float), rtol=1e-9,
                                       equal_nan=True, err_msg=c)
        if samples == 0 and w is wl:
            t_ref_det = t_ref
        label = "deterministic" if samples == 0 else f"Monte Carlo, {samples} samples"
        if w is wl_auto:
            label = "autoscaled, " + label
        print(f"{label:<40}{t_vec * 1e3:>15.1f}{med * 1e3:>10.1f}{t_ref * 1e3:>14.1f}{t_ref / t_vec:>8.1f}x")
    # a what-if: same measurements, another growth and price (the prepared measurements are reused)
    wl2 = P.InferenceWorkload(5e6, monthly_growth=0.10, peak_to_average=2.5, slo_p95_ms=25, months=12)
    t_wi, med, _ = timed(lambda: P.plan(prep, wl2, prices=P.Prices(pue=1.3)), args.repeats)
    print(f"{'what-if re-plan (determ.)':<40}{t_wi * 1e3:>15.1f}{med * 1e3:>10.1f}")

    def cold():  # first plan of a new measurements table: prepared afresh inside plan()
        return P.plan(df, wl2, prices=pr)

    t_cold, med, _ = timed(cold, args.repeats)
    print(f"{'first plan (cold, determ.)':<40}{t_cold * 1e3:>15.1f}{med * 1e3:>10.1f}"
          f"{t_ref_det * 1e3:>14.1f}{t_ref_det / t_cold:>8.1f}x")
    print(f"\ncold plan / what-if re-plan = {t_cold / t_wi:.1f}x (fastest runs; the cold plan validates, "
          "de-duplicates and prepares the table, and chooses the operating points)")
    print("results identical (rtol 1e-9): instances, cost, energy, CO2 (and P10/P50/P90)")


if __name__ == "__main__":
    main()
