"""Training workloads: per-quarter training rows from measured, roofline-projected or
FLOPs-only throughput (formulas in the docstring of :mod:`effplan.planning`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..refdata import catalog as _cat
from ..refdata import reference as _ref
from .engine import _tri
from .inputs import HOURS_PER_MONTH, Prices, TrainingWorkload, Uncertainty, _match_map
from .projection import _with_projection
from .result import _PCT
from .stability import FLAG_COLUMNS, latency_sigma, option_notes
from ..units import G_PER_KG, J_PER_KWH, S_PER_DAY, S_PER_HOUR, TRAINING_FLOPS_PER_FORWARD

def _training_options(df: pd.DataFrame, candidates: list[str], hardware: list[str], targets: list[str],
                      cat: pd.DataFrame, tw: TrainingWorkload, eff_assumed: float) -> pd.DataFrame:
    """One row per candidate x hardware with training throughput/energy (measured, roofline
    projected, or FLOPs-only projected)."""
    rows = _with_projection(df, "training", targets, cat, eff_assumed)
    cols = ["candidate", "hardware", "batch_size", "throughput_items_per_s", "energy_per_item_j",
            "provenance", "energy_source", "efficiency_source", "projection_note",
            "utilization_low", "utilization_high", "latency_ci_rel", *FLAG_COLUMNS]
    have = pd.DataFrame(columns=cols)
    if not rows.empty:
        ok = (rows["projection_note"] == "") & (rows["throughput_items_per_s"] > 0) \
            & rows["energy_per_item_j"].notna()
        have = rows[ok].sort_values(["candidate", "hardware", "throughput_items_per_s"], kind="mergesort") \
            .drop_duplicates(["candidate", "hardware"], keep="last") \
            .assign(utilization_low=np.nan, utilization_high=np.nan)[cols]
    cidx = cat.set_index("name")
    match = _match_map(list(hardware), cat)
    trained = set(rows["candidate"]) if not rows.empty else set()
    inf = df[df["mode"] == "inference"]
    out = []
    have_keys = set(zip(have["candidate"], have["hardware"]))
    notes = {}
    if not rows.empty:
        for c, h, n in zip(rows["candidate"], rows["hardware"], rows["projection_note"]):
            if n:
                notes.setdefault((c, h), n)
    for c in candidates:
        flops_rows = inf[(inf["candidate"] == c) & inf["flops_per_item"].notna()]
        fpi = float(flops_rows["flops_per_item"].iloc[-1]) if not flops_rows.empty else np.nan
        dtype = str(flops_rows["dtype"].iloc[-1]) if not flops_rows.empty else ""
        params = float(flops_rows["params"].iloc[-1]) if not flops_rows.empty else np.nan
        if tw.assumed_mfu is not None:
            u_lo = u_mid = u_hi = tw.assumed_mfu
            u_src = f"entered MFU {tw.assumed_mfu:g}"
        else:
            lo_a, mid_a, hi_a, src_a = _ref.training_utilization_range(params)
            u_lo, u_mid, u_hi, u_src = float(lo_a[0]), float(mid_a[0]), float(hi_a[0]), str(src_a[0])
        for h in hardware:
            if (c, h) in have_keys:
                continue
            base = {"candidate": c, "hardware": h, "batch_size": np.nan, "throughput_items_per_s": np.nan,
                    "energy_per_item_j": np.nan, "provenance": "projected", "energy_source": "projected",
                    "efficiency_source": "", "projection_note": "", "utilization_low": np.nan,
                    "utilization_high": np.nan, "latency_ci_rel": np.nan, "timing_unstable": False,
                    "timing_spread_rel": np.nan, "background_load": np.nan}
            cname = match[h]
            if c in trained:
                base["projection_note"] = notes.get((c, h), f"no training measurement for {c} on {h}")
            elif not np.isfinite(fpi):
                base["projection_note"] = f"no training measurement and flops_per_item unknown for {c}"
            elif not cname:
                base["projection_note"] = f"no training measurement and {h} is not in the catalog"
            else:
                col = _cat.dtype_peak_column(dtype) or "peak_fp32_flops"
                peak = float(cidx.at[cname, col])
                if not np.isfinite(peak):
                    base["projection_note"] = f"no {col} for {cname} in the catalog"
                elif not np.isfinite(u_mid):
                    base["projection_note"] = (f"no training measurement for {c}, and its "
                                               "parameter count is unknown: no utilization range "
                                               "applies; measure a few training steps")
                else:
                    tp = peak * u_mid / (TRAINING_FLOPS_PER_FORWARD * fpi)
                    base.update(throughput_items_per_s=tp,
                                energy_per_item_j=float(cidx.at[cname, "rated_power_w"]) / tp,
                                utilization_low=u_lo, utilization_high=u_hi,
                                efficiency_source=(f"FLOPs only: utilization {u_mid:.3g} of "
                                                   f"{cname} {col} (range {u_lo:g}-{u_hi:g}; "
                                                   f"3 x forward FLOPs per item); {u_src}"))
            out.append(base)
    opt = pd.concat([have, pd.DataFrame(out, columns=cols)], ignore_index=True) if out else have.copy()
    cand_rank = {c: i for i, c in enumerate(candidates)}
    hw_rank = {h: i for i, h in enumerate(hardware)}
    opt = opt[opt["candidate"].isin(cand_rank) & opt["hardware"].isin(hw_rank)]
    opt = opt.assign(_cr=opt["candidate"].map(cand_rank), _hr=opt["hardware"].map(hw_rank)) \
        .sort_values(["_cr", "_hr"], kind="mergesort").drop(columns=["_cr", "_hr"]).reset_index(drop=True)
    return opt


def _training(opt: pd.DataFrame, tw: TrainingWorkload, pr: Prices, quarters: int, samples: int,
              seed: int, unc: Uncertainty, quality: Mapping[str, float]) -> pd.DataFrame:
    tput = opt["throughput_items_per_s"].to_numpy(float)
    feasible = np.isfinite(tput) & (tput > 0) & (opt["projection_note"].to_numpy(str) == "")
    tput = np.where(feasible, tput, np.nan)
    epi = opt["energy_per_item_j"].to_numpy(float)
    items = tw.items_per_epoch * tw.epochs
    wall_s = items / (tput * tw.devices_per_run * tw.scaling_efficiency)
    dev_h = tw.devices_per_run * wall_s / S_PER_HOUR
    energy_run = dev_h * S_PER_HOUR * epi * tput / J_PER_KWH * pr.pue
    if pr.mode == "cloud":
        cost_run = dev_h * opt["price_per_hour_usd"].to_numpy(float)
    else:
        cost_run = dev_h * opt["capex_usd"].to_numpy(float) / (pr.lifetime_months * HOURS_PER_MONTH) \
            + energy_run * pr.electricity_price_per_kwh
    K = len(opt)
    rep = lambda a: np.repeat(np.asarray(a), quarters)  # noqa: E731
    runs = tw.runs_per_quarter
    g = pr.grid_intensity_gco2_per_kwh / G_PER_KG
    out = {
        "candidate": rep(opt["candidate"]), "hardware": rep(opt["hardware"]),
        "catalog_name": rep(opt["catalog_name"]), "provenance": rep(opt["provenance"]),
        "energy_source": rep(opt["energy_source"]), "quarter": np.tile(np.arange(1, quarters + 1), K),
        "runs": np.full(K * quarters, runs), "items_per_epoch": np.full(K * quarters, tw.items_per_epoch),
        "epochs": np.full(K * quarters, tw.epochs), "devices_per_run": np.full(K * quarters, tw.devices_per_run),
        "batch_size": rep(opt["batch_size"].to_numpy(float)), "throughput_items_per_s": rep(tput),
        "wall_clock_days_per_run": rep(wall_s / S_PER_DAY), "device_hours_per_run": rep(dev_h),
        "device_hours": rep(dev_h * runs), "cost_per_run_usd": rep(cost_run), "cost_usd": rep(cost_run * runs),
        "energy_kwh": rep(energy_run * runs), "co2_kg": rep(energy_run * runs * g),
        "feasible": rep(feasible),
        "infeasible_reason": rep(np.where(feasible, "", opt["projection_note"].to_numpy(str)).astype(object)),
        "efficiency_source": rep(opt["efficiency_source"]),
        "quality": rep(opt["candidate"].map(quality).to_numpy(float)),
        **{c: rep(opt[c].to_numpy()) for c in FLAG_COLUMNS},
        "stability_note": rep(option_notes(opt)),
    }
    if samples > 0:
        rng = np.random.default_rng([seed, 1])
        pm = _tri(rng, *((unc.price[0], 1.0, unc.price[1]) if unc.price else (1, 1, 1)), samples)
        draws = np.asarray(out["cost_usd"])[:, None] * pm[None, :]
        # rows timed on a busy machine: the run time (and so the cost) is off by the latency
        # error, sigma = X / 1.2816 (stability.latency_sigma; stable rows: exact, as before)
        shaky = np.asarray(out["timing_unstable"], dtype=bool)
        if unc.measurement and shaky.any():
            sig = latency_sigma(np.zeros(len(shaky)), shaky, np.asarray(out["timing_spread_rel"], float))
            z = np.random.default_rng([seed, 1, 1]).standard_normal((len(opt), samples))
            draws = draws * np.maximum(1.0 + np.clip(np.repeat(z, quarters, axis=0), -3.0, 3.0)
                                       * sig[:, None], 0.05)
        pc = np.percentile(draws, _PCT, axis=-1)
        for j, q in enumerate(_PCT):
            out[f"cost_usd_p{q}"] = pc[j]
            out[f"energy_kwh_p{q}"] = out["energy_kwh"]
            out[f"co2_kg_p{q}"] = out["co2_kg"]
    return pd.DataFrame(out)

