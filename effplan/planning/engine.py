"""The engine: operating-point choice (batch per candidate x hardware), prices attached, and the
vectorized month x sample computation with quarter sums and percentiles.

Formulas: the docstring of :mod:`effplan.planning`.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .. import catalog as _cat
from ..errors import PlanWarning, UnknownHardwareError
from .inputs import InferenceWorkload, Prices, _match_map
from .result import _PCT

def _choose_uncached(rows: pd.DataFrame, slo_ms: float | None, order: list[str]) -> pd.DataFrame:
    """Pick the batch per candidate x hardware (see module docstring); flag infeasible ones."""
    keys = ["candidate", "hardware"]
    rows = rows.copy()
    tput = rows["throughput_items_per_s"].to_numpy(float)
    lat = rows["latency_p95_ms"].to_numpy(float)
    usable = (rows["projection_note"].to_numpy(str) == "") & np.isfinite(tput) & (tput > 0) & np.isfinite(lat)
    ok = usable & ((lat <= slo_ms) if slo_ms is not None else True)
    rows["_usable"] = usable
    rows["_ok"] = ok
    if slo_ms is not None:
        sort_cols, asc = keys + ["batch_size"], [True, True, True]
    else:
        rows["_negb"] = -rows["batch_size"].to_numpy(float)
        sort_cols, asc = keys + ["throughput_items_per_s", "_negb"], [True, True, True, True]
    chosen = rows[ok].sort_values(sort_cols, ascending=asc, kind="mergesort").drop_duplicates(keys, keep="last")
    groups = rows.drop_duplicates(keys)[keys + ["provenance", "energy_source", "projected_from",
                                                 "efficiency", "efficiency_source"]]
    best_lat = rows[usable].groupby(keys, sort=False)["latency_p95_ms"].min().rename("_best_lat")
    first_note = rows[rows["projection_note"] != ""].groupby(keys, sort=False)["projection_note"].first() \
        .rename("_note")
    cols = keys + ["batch_size", "latency_p95_ms", "throughput_items_per_s", "energy_per_item_j",
                   "idle_power_w", "provenance", "energy_source", "projected_from", "efficiency",
                   "efficiency_source"]
    opt = groups[keys].merge(chosen[cols], on=keys, how="left")
    # groups without a chosen row take their labels from the first row
    for c in ("provenance", "energy_source", "projected_from", "efficiency", "efficiency_source"):
        opt[c] = opt[c].where(opt["batch_size"].notna(), groups[c].to_numpy())
    opt = opt.merge(best_lat, left_on=keys, right_index=True, how="left")
    opt = opt.merge(first_note, left_on=keys, right_index=True, how="left")
    feasible = opt["batch_size"].notna().to_numpy()
    reason = np.full(len(opt), "", dtype=object)
    for i in np.flatnonzero(~feasible):
        if pd.notna(opt["_best_lat"].iat[i]):
            reason[i] = (f"no measured batch size meets p95 <= {slo_ms:g} ms "
                         f"(best p95 {opt['_best_lat'].iat[i]:.4g} ms)")
        elif isinstance(opt["_note"].iat[i], str):
            reason[i] = opt["_note"].iat[i]
        else:
            reason[i] = "no usable measurement (throughput or latency missing)"
    opt["latency_p95_ms"] = np.where(feasible, opt["latency_p95_ms"], opt["_best_lat"])
    opt["feasible"] = feasible
    opt["infeasible_reason"] = reason
    opt["slo_met"] = feasible & (True if slo_ms is None else (opt["latency_p95_ms"].to_numpy(float) <= slo_ms))
    # stable order: candidates as first seen, hardware as first seen (measured, then targets)
    cand_rank = {c: i for i, c in enumerate(dict.fromkeys(order))}
    hw_rank = {h: i for i, h in enumerate(dict.fromkeys(rows["hardware"]))}
    opt["_cr"] = opt["candidate"].map(cand_rank)
    opt["_hr"] = opt["hardware"].map(hw_rank)
    opt = opt.sort_values(["_cr", "_hr"], kind="mergesort").reset_index(drop=True)
    return opt.drop(columns=["_best_lat", "_note", "_cr", "_hr"])


def _attach_prices(opt: pd.DataFrame, prices: Prices, cat: pd.DataFrame) -> pd.DataFrame:
    """Price per hour, capex and their sources per option (override > catalog > NaN)."""
    cidx = cat.set_index("name")
    uniq = list(dict.fromkeys(opt["hardware"]))
    match = _match_map(uniq, cat)
    over_h = _resolve_overrides(prices.price_per_hour, cat)
    over_c = _resolve_overrides(prices.capex_usd, cat)
    table: dict[str, tuple] = {}
    for hw in uniq:  # one lookup per distinct hardware, then mapped onto the options
        cname = match[hw]
        rec: list[Any] = [cname]
        for over, col, src_col, date_col in (
                (over_h, "price_per_hour_usd", "price_source", "price_date"),
                (over_c, "capex_usd", "capex_source", "capex_date")):
            if hw.strip().lower() in over:
                rec += [over[hw.strip().lower()], "entered"]
            elif cname and cname.lower() in over:
                rec += [over[cname.lower()], "entered"]
            elif cname and pd.notna(cidx.at[cname, col]):
                rec += [float(cidx.at[cname, col]),
                        f"catalog: {cidx.at[cname, src_col]} ({cidx.at[cname, date_col]})"]
            else:
                rec += [np.nan, "missing"]
        table[hw] = tuple(rec)
    recs = [table[hw] for hw in opt["hardware"]]
    out = opt.copy()
    for j, col in enumerate(("catalog_name", "price_per_hour_usd", "price_source", "capex_usd", "capex_source")):
        out[col] = [r[j] for r in recs]
    out["price_per_hour_usd"] = out["price_per_hour_usd"].astype(float)
    out["capex_usd"] = out["capex_usd"].astype(float)
    return out


def _resolve_overrides(over: Mapping[str, float], cat: pd.DataFrame) -> dict[str, float]:
    """User price keys by lower-cased name, plus the catalog name of a key that is a catalog name
    or alias (so 'NVIDIA L4' also prices the measured 'L4'). Exact names only, ignoring case:
    :func:`_check_price_keys` has already refused keys that match nothing in the plan."""
    out: dict[str, float] = {}
    for k, v in over.items():
        out[str(k).strip().lower()] = v
    for k, v in over.items():
        row = _cat.find_hardware(k, cat)
        if row is not None:
            out.setdefault(str(row["name"]).lower(), v)
    return out


def _check_price_keys(prices: Prices, hardware: list[str], cat: pd.DataFrame) -> None:
    """Every key of ``price_per_hour`` and ``capex_usd`` must name hardware of this plan: one of
    ``hardware`` (ignoring case), or a catalog name/alias of the catalog row one of them matches.
    Anything else (a typo, a substring such as 'my-l4-box', hardware not in the plan) raises
    :class:`~effplan.errors.UnknownHardwareError` listing the plan's hardware and the closest
    names -- a price is never silently dropped or applied to other hardware."""
    plan_keys = {h.strip().lower() for h in hardware}
    match = _match_map(hardware, cat)
    plan_catalog = {c for c in match.values() if c}
    for field_name in ("price_per_hour", "capex_usd"):
        for k in getattr(prices, field_name):
            if str(k).strip().lower() in plan_keys:
                continue
            row = _cat.find_hardware(k, cat)
            if row is not None and str(row["name"]) in plan_catalog:
                continue
            near = difflib.get_close_matches(str(k), list(hardware), n=3, cutoff=0.3)
            near += [n for n in _cat.closest_names(k, cat) if n in plan_catalog and n not in near]
            guess = f"; did you mean {' or '.join(repr(x) for x in near)}?" if near else ""
            where = ("is catalog hardware, but not in this plan" if row is not None
                     else "matches no hardware in this plan")
            raise UnknownHardwareError(
                field_name, f"key {str(k)!r} {where} (plan hardware: "
                            f"{', '.join(repr(h) for h in hardware)}){guess}. Keys match a hardware "
                            "name of the plan or its catalog name/alias exactly, ignoring case; "
                            "add the hardware with plan(hardware=[...]) to price a catalog GPU",
                suggestions=tuple(near))


def _warn_missing(opt: pd.DataFrame, prices: Prices) -> None:
    if prices.mode == "cloud":
        miss = opt.loc[opt["price_per_hour_usd"].isna(), "hardware"].unique()
        what = "price_per_hour"
    else:
        miss = opt.loc[opt["capex_usd"].isna(), "hardware"].unique()
        what = "capex_usd"
    if len(miss):
        names = ", ".join(repr(m) for m in miss)
        warnings.warn(f"no {what} for {names}: their cost is NaN. Pass Prices({what}={{{miss[0]!r}: ...}}) "
                      "or a catalog that lists them (for the machine you measured on: "
                      "catalog=effplan.load_catalog(include_this_machine=True))", PlanWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------
# the vectorized engine
# --------------------------------------------------------------------------------------------

#: instances = ceil(load x (1 - 1e-9)): a relative margin for floating-point error in the ratio
_CEIL_SHRINK = 1.0 - 1e-9


def _traffic(wl: InferenceWorkload, traffic: np.ndarray, growth: np.ndarray) -> np.ndarray:
    """requests per month, shape (months, samples)."""
    m = np.arange(wl.months, dtype=float)[:, None]
    return wl.requests_per_day * traffic[None, :] * (1.0 + growth[None, :]) ** m * wl.hours_per_month / 24.0


def _engine(opt: dict[str, np.ndarray], wl: InferenceWorkload, pr: Prices,
            traffic: np.ndarray, growth: np.ndarray, pmult: np.ndarray) -> dict[str, np.ndarray]:
    """Monthly figures for K options x M months x S samples (arrays shaped (K, M, S)).

    ``opt`` holds per-option arrays (K,): capacity, throughput, energy_per_item_j, idle_power_w,
    price_per_hour, capex_per_month (NaN where infeasible or unknown).
    """
    requests = _traffic(wl, traffic, growth)                    # (M, S)
    items = requests * wl.items_per_request
    hpm = wl.hours_per_month
    peak = items * (wl.peak_to_average / (hpm * 3600.0))        # (M, S) items/s
    cap = opt["capacity"][:, None, None]
    if wl.daily_profile is None:
        # a RELATIVE margin absorbs floating-point error (3.0000000001 -> 3) without ever
        # rounding a load above 0 down to 0 instances (an absolute 1e-9 did, for tiny loads)
        inst = np.ceil(peak[None] / cap * _CEIL_SHRINK)
        np.maximum(inst, peak[None] > 0, out=inst)  # a load that underflows to 0 still needs one
        np.maximum(inst, wl.min_replicas, out=inst)
        inst_h = inst * hpm
    else:
        # autoscaling: one instance count per hour of the day; hours with the same weight share
        # one computation (<= 24 array operations, none per option, month or sample)
        weights, counts = np.unique(np.asarray(wl.daily_profile), return_counts=True)
        load = peak[None] / cap                                  # (K, M, S) instances at weight 1
        busy = np.broadcast_to(peak[None] > 0, load.shape)       # traffic > 0 (even if load underflows)
        inst_h = np.zeros_like(load)
        i_h = np.empty_like(load)
        for wgt, n in zip(weights, counts):                     # ascending weights
            np.multiply(load, wgt * _CEIL_SHRINK, out=i_h)
            np.ceil(i_h, out=i_h)
            if wgt > 0:
                np.maximum(i_h, busy, out=i_h)
            np.maximum(i_h, wl.min_replicas, out=i_h)
            if wgt == weights[-1]:
                inst = i_h.copy()                                # the busiest hour's count
            i_h *= hpm * n / 24.0
            inst_h += i_h
        peak = peak * weights[-1]
    busy_s = items[None] / opt["throughput"][:, None, None]
    idle_s = inst_h * 3600.0 - busy_s
    np.maximum(idle_s, 0.0, out=idle_s)
    # idle power counted at most at the busy power (energy_per_item_j x throughput): a row with
    # idle above busy power (schema warns, naming it) would make more traffic cost less
    busy_w = opt["energy_per_item_j"] * opt["throughput"]
    idle_w = np.where(opt["idle_power_w"] > busy_w, busy_w, opt["idle_power_w"])
    energy_j = items[None] * opt["energy_per_item_j"][:, None, None] + idle_w[:, None, None] * idle_s
    energy_kwh = energy_j * (pr.pue / 3.6e6)
    if pr.mode == "cloud":
        cost = inst_h * opt["price_per_hour"][:, None, None]
    else:
        cost = inst * opt["capex_per_month"][:, None, None] + energy_kwh * pr.electricity_price_per_kwh
    cost = cost * pmult[None, None, :]
    return {"requests": requests, "items": items, "peak": peak, "instances": inst,
            "instance_hours": inst_h, "cost": cost, "energy_kwh": energy_kwh}


def _quarter_sum(x: np.ndarray, months: int, how: str = "sum") -> np.ndarray:
    """Sum (or max) consecutive 3-month blocks along axis 1 of (K, M, ...) -> (K, Q, ...)."""
    q = -(-months // 3)
    pad = q * 3 - months
    if pad:
        widths = [(0, 0)] * x.ndim
        widths[1] = (0, pad)
        x = np.pad(x, widths, constant_values=0.0)
    x = x.reshape(x.shape[0], q, 3, *x.shape[2:])
    return x.max(axis=2) if how == "max" else x.sum(axis=2)


def _tri(rng: np.random.Generator, lo: float, mode: float, hi: float, n: int) -> np.ndarray:
    if hi <= lo:
        return np.full(n, mode)
    return rng.triangular(lo, mode, hi, size=n)


def _percentiles(x: np.ndarray) -> np.ndarray:
    """P10/P50/P90 along the last axis -> (3, ...)."""
    return np.percentile(x, _PCT, axis=-1)
