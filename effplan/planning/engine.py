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

from . import batching as _batching
from ..refdata import catalog as _cat
from . import queueing as _q
from ..errors import PlanWarning, UnknownHardwareError, ValidationError
from .inputs import InferenceWorkload, Prices, _match_map
from .stability import FLAG_COLUMNS, latency_sigma
from .result import _PCT
from ..units import J_PER_KWH, S_PER_DAY, S_PER_HOUR

def _load_for_check(wl: InferenceWorkload) -> tuple[float, float, float]:
    """(busiest peak items/s, peak items/s of the quietest month, quietest items/s).

    Batches fill slowest at the quietest time (lowest-traffic month, quietest hour); queues are
    longest at the busiest (highest-traffic month, busiest hour, ``peak_to_average``). The check
    adds the worst of each, so it holds all horizon long."""
    with np.errstate(over="ignore"):   # an overflowing growth is named later, by the engine
        g_first, g_last = 1.0, float(np.power(1.0 + wl.monthly_growth, wl.months - 1.0))
    avg = wl.requests_per_day * wl.items_per_request / S_PER_DAY
    hi = max(wl.daily_profile) if wl.daily_profile is not None else 1.0
    lo = min(wl.daily_profile) if wl.daily_profile is not None else 1.0
    g_min, g_max = min(g_first, g_last), max(g_first, g_last)
    return (avg * g_max * wl.peak_to_average * hi, avg * g_min * wl.peak_to_average * hi,
            avg * g_min * lo)


def _under_load(rows: pd.DataFrame, wl: InferenceWorkload) -> dict[str, np.ndarray]:
    """End-to-end p95 of every row at the workload's load (see :mod:`effplan.queueing`).

    Instances ``n = max(1, min_replicas, ceil(peak / (throughput x target_utilization)))``; each
    sees ``1/n`` of the traffic. Batch formation at the quietest rate per instance, in requests
    (a request of ``items_per_request`` items arrives whole); queueing at the busiest
    utilization per instance, ``peak / (n x throughput)`` (at most ``target_utilization``), with
    ``ca2 = 1 / batch-in-requests`` and ``cs2`` from the measured mean and p95 (normal tail:
    ``((p95 - mean) / (1.645 mean))^2``; 0 when the mean is unknown).
    """
    tput = rows["throughput_items_per_s"].to_numpy(float)
    b = rows["batch_size"].to_numpy(float)
    p95_s = rows["latency_p95_ms"].to_numpy(float) / 1e3
    mean_s = rows["latency_mean_ms"].to_numpy(float) / 1e3 if "latency_mean_ms" in rows else \
        np.full(len(rows), np.nan)
    busiest, quiet_peak, quiet = _load_for_check(wl)
    floor_n = max(1, wl.min_replicas)
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = tput * wl.target_utilization
        n_busy = np.maximum(np.ceil(busiest / cap - 1e-9), floor_n)
        n_quiet = np.maximum(np.ceil(quiet_peak / cap - 1e-9), floor_n)
        rho = np.minimum(busiest / (n_busy * tput), wl.target_utilization)
        b_req = np.ceil(b / wl.items_per_request - 1e-9)
        rate_req = quiet / n_quiet / wl.items_per_request
        cs2 = np.where(np.isfinite(mean_s) & (mean_s > 0),
                       ((p95_s - mean_s) / (1.645 * mean_s)) ** 2, 0.0)
        service_mean = np.where(np.isfinite(mean_s) & (mean_s > 0), mean_s, b / tput)
    wait = np.inf if wl.max_batch_wait_ms is None else wl.max_batch_wait_ms / 1e3
    r = _q.end_to_end_p95_s(np.where(np.isfinite(b_req), np.maximum(b_req, 1), 1), rate_req,
                            service_mean, p95_s, np.nan_to_num(rho), max_wait_s=wait,
                            cs2=np.nan_to_num(cs2))
    return {"e2e_ms": r["e2e_p95_s"] * 1e3, "fill_ms": r["fill_p95_s"] * 1e3,
            "queue_ms": r["queue_p95_s"] * 1e3, "fills": r["fills"]}


#: every column :func:`_choose_uncached` reads from the rows it is given
_CHOICE_COLUMNS: tuple[str, ...] = (
    "batch_size", "latency_p95_ms", "latency_mean_ms", "throughput_items_per_s", "energy_per_item_j",
    "energy_per_batch_j", "idle_power_w", "provenance", "energy_source", "projected_from", "efficiency",
    "efficiency_source", "projection_note", "latency_ci_rel") + _batching.INTERPOLATED_COLUMNS + FLAG_COLUMNS


def _choose_uncached(rows: pd.DataFrame, slo_ms: float | None, order: list[str],
                     wl: InferenceWorkload | None = None) -> pd.DataFrame:
    """Pick the operating point per candidate x hardware (see module docstring); flag
    infeasible ones.

    Candidates are the measured (or projected) batch sizes and the points interpolated between
    them (:func:`effplan.batching.interpolate_batches`). With a workload, the latency checked is
    the end-to-end p95 at its load (:func:`_under_load`), and a batch that cannot fill within
    ``max_batch_wait_ms`` is not used; without one (``wl=None``), the batch's own p95. Among
    the points that pass, the highest throughput wins (ties: the smaller batch).
    """
    keys = ["candidate", "hardware"]
    # only the columns the choice reads (a measurements frame has ~90): interpolating, sorting
    # and merging a narrow frame is what keeps a cold plan close to a re-plan
    rows = rows[[c for c in dict.fromkeys(keys + list(_CHOICE_COLUMNS)) if c in rows.columns]]
    rows = _batching.interpolate_batches(rows, keys)
    tput = rows["throughput_items_per_s"].to_numpy(float)
    lat = rows["latency_p95_ms"].to_numpy(float)
    usable = (rows["projection_note"].fillna("").to_numpy(str) == "") & np.isfinite(tput) \
        & (tput > 0) & np.isfinite(lat)
    if wl is not None:
        load = _under_load(rows, wl)
        e2e, fills = load["e2e_ms"], load["fills"]
        rows["batch_fill_p95_ms"] = load["fill_ms"]
        rows["queue_p95_ms"] = load["queue_ms"]
    else:
        e2e, fills = lat, np.ones(len(rows), dtype=bool)
        rows["batch_fill_p95_ms"] = np.nan
        rows["queue_p95_ms"] = np.nan
    rows["latency_e2e_p95_ms"] = np.where(usable, e2e, np.nan)
    ok = usable & fills & ((e2e <= slo_ms) if slo_ms is not None else True)
    rows["_negb"] = -rows["batch_size"].to_numpy(float)
    chosen = rows[ok].sort_values(keys + ["throughput_items_per_s", "_negb"], kind="mergesort") \
        .drop_duplicates(keys, keep="last")
    groups = rows.drop_duplicates(keys)[keys + ["provenance", "energy_source", "projected_from",
                                                 "efficiency", "efficiency_source"]]
    meas_rows = rows[usable & (rows["batch_source"] == "measured").to_numpy()]
    largest = meas_rows.groupby(keys, sort=False)["batch_size"].max().rename("_largest")
    ranked = rows[usable & fills].assign(_e=lambda d: d["latency_e2e_p95_ms"]) \
        .sort_values(keys + ["_e"], kind="mergesort").drop_duplicates(keys)
    best = ranked.set_index(keys)[["_e", "batch_size", "batch_fill_p95_ms", "queue_p95_ms",
                                   "latency_p95_ms"]].rename(columns=lambda c: f"_best{c}")
    any_usable = rows[usable].groupby(keys, sort=False)["batch_size"].min().rename("_min_b")
    first_note = rows[rows["projection_note"].fillna("") != ""].groupby(keys, sort=False)[
        "projection_note"].first().rename("_note")
    cols = keys + ["batch_size", "latency_p95_ms", "throughput_items_per_s", "energy_per_item_j",
                   "idle_power_w", "provenance", "energy_source", "projected_from", "efficiency",
                   "efficiency_source", "batch_source", "batch_neighbours", "latency_e2e_p95_ms",
                   "batch_fill_p95_ms", "queue_p95_ms", "latency_ci_rel"]
    cols += [c for c in FLAG_COLUMNS if c in chosen.columns]
    opt = groups[keys].merge(chosen[cols], on=keys, how="left")
    # groups without a chosen row take their labels from the first row
    for c in ("provenance", "energy_source", "projected_from", "efficiency", "efficiency_source"):
        opt[c] = opt[c].where(opt["batch_size"].notna(), groups[c].to_numpy())
    for extra in (best, largest, any_usable, first_note):
        opt = opt.merge(extra, left_on=keys, right_index=True, how="left")
    feasible = opt["batch_size"].notna().to_numpy()
    what = "end-to-end p95" if wl is not None else "p95"
    reason = np.full(len(opt), "", dtype=object)
    for i in np.flatnonzero(~feasible):
        if pd.notna(opt["_best_e"].iat[i]):
            extra = ""
            if wl is not None:
                extra = (f" = batch fill {opt['_bestbatch_fill_p95_ms'].iat[i]:.4g} + queue "
                         f"{opt['_bestqueue_p95_ms'].iat[i]:.4g} + service "
                         f"{opt['_bestlatency_p95_ms'].iat[i]:.4g} ms at batch "
                         f"{opt['_bestbatch_size'].iat[i]:g}")
            reason[i] = (f"no measured batch size, nor one interpolated between them, meets {what} "
                         f"<= {slo_ms:g} ms "
                         f"at this load (best {opt['_best_e'].iat[i]:.4g} ms{extra})")
        elif pd.notna(opt["_min_b"].iat[i]):
            reason[i] = ("no batch size fills within max_batch_wait_ms at the quietest load; "
                         "raise max_batch_wait_ms or measure a smaller batch")
        elif isinstance(opt["_note"].iat[i], str):
            reason[i] = opt["_note"].iat[i]
        else:
            reason[i] = "no usable measurement (throughput or latency missing)"
    note = np.full(len(opt), "", dtype=object)
    at_top = feasible & (opt["batch_size"].to_numpy(float) == opt["_largest"].to_numpy(float))
    for i in np.flatnonzero(at_top):
        b = opt["_largest"].iat[i]
        note[i] = (f"the largest measured batch ({b:g}) was chosen: measure batch "
                   f"{_batching.next_batch_to_measure(b)} to go further (never extrapolated)")
    opt["latency_p95_ms"] = np.where(feasible, opt["latency_p95_ms"], opt["_bestlatency_p95_ms"])
    opt["latency_e2e_p95_ms"] = np.where(feasible, opt["latency_e2e_p95_ms"], opt["_best_e"])
    opt["batch_source"] = opt["batch_source"].fillna("")
    opt["batch_neighbours"] = opt["batch_neighbours"].fillna("")
    opt["batch_note"] = note
    for c in FLAG_COLUMNS:   # an infeasible option has no row of its own: not flagged
        if c not in opt.columns:
            opt[c] = False if c == "timing_unstable" else np.nan
    opt["timing_unstable"] = opt["timing_unstable"].fillna(False).astype(bool)
    opt["feasible"] = feasible
    opt["infeasible_reason"] = reason
    opt["slo_met"] = feasible & (True if slo_ms is None else
                                 (opt["latency_e2e_p95_ms"].to_numpy(float) <= slo_ms))
    # stable order: candidates as first seen, hardware as first seen (measured, then targets)
    cand_rank = {c: i for i, c in enumerate(dict.fromkeys(order))}
    hw_rank = {h: i for i, h in enumerate(dict.fromkeys(rows["hardware"]))}
    opt["_cr"] = opt["candidate"].map(cand_rank)
    opt["_hr"] = opt["hardware"].map(hw_rank)
    opt = opt.sort_values(["_cr", "_hr"], kind="mergesort").reset_index(drop=True)
    return opt.drop(columns=[c for c in opt.columns if c.startswith("_")])


def _attach_prices(opt: pd.DataFrame, prices: Prices, cat: pd.DataFrame,
                   match: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Price per hour, capex and their sources per option (override > catalog > NaN).
    ``match``: :func:`_match_map` of (at least) the options' hardware on ``cat``, when the
    caller holds it (:meth:`PreparedMeasurements.catalog_match`)."""
    # catalog columns as plain lists, one position per name (names are unique in a catalog):
    # a few list look-ups per hardware instead of pandas scalar access
    pos = dict(zip(cat["name"].tolist(), range(len(cat))))
    ccol = {c: cat[c].tolist() for c in ("price_per_hour_usd", "price_source", "price_date",
                                         "capex_usd", "capex_source", "capex_date")}
    uniq = list(dict.fromkeys(opt["hardware"]))
    if match is None or any(hw not in match for hw in uniq):
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
            elif cname and pd.notna(ccol[col][pos[cname]]):
                i = pos[cname]
                rec += [float(ccol[col][i]), f"catalog: {ccol[src_col][i]} ({ccol[date_col][i]})"]
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


def _check_price_keys(prices: Prices, hardware: list[str], cat: pd.DataFrame,
                      match: Mapping[str, str] | None = None) -> None:
    """Every key of ``price_per_hour`` and ``capex_usd`` must name hardware of this plan: one of
    ``hardware`` (ignoring case), or a catalog name/alias of the catalog row one of them matches.
    Anything else (a typo, a substring such as 'my-l4-box', hardware not in the plan) raises
    :class:`~effplan.errors.UnknownHardwareError` listing the plan's hardware and the closest
    names -- a price is never silently dropped or applied to other hardware."""
    if not prices.price_per_hour and not prices.capex_usd:
        return   # no keys to check
    plan_keys = {h.strip().lower() for h in hardware}
    if match is None or any(hw not in match for hw in hardware):
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


def _demand(wl: InferenceWorkload, traffic: np.ndarray, growth: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(requests per month, items per month, peak items/s), each (M, S): the part of
    :func:`_engine` shared by every option (computed once when the options come in chunks)."""
    requests = _traffic(wl, traffic, growth)                    # (M, S)
    items = requests * wl.items_per_request
    peak = items * (wl.peak_to_average / (wl.hours_per_month * S_PER_HOUR))   # (M, S) items/s
    return requests, items, peak


def _engine(opt: dict[str, np.ndarray], wl: InferenceWorkload, pr: Prices,
            traffic: np.ndarray, growth: np.ndarray, pmult: np.ndarray,
            demand: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Monthly figures for K options x M months x S samples (arrays shaped (K, M, S)).

    ``opt`` holds per-option arrays (K,): capacity, throughput, energy_per_item_j, idle_power_w,
    price_per_hour, capex_per_month (NaN where infeasible or unknown); capacity, throughput,
    energy_per_item_j and idle_power_w may also be (K, S), one value per Monte Carlo sample.
    ``demand``: :func:`_demand` of the same workload and draws, when the caller already has it
    (a Monte Carlo plan runs the options in cache-sized chunks, see
    :func:`effplan.planning.inference._monte_carlo`); each option's figures depend only on its
    own arrays, so a chunk gives the same numbers as the whole.
    """
    def kms(a: np.ndarray) -> np.ndarray:
        return a[:, None, None] if a.ndim == 1 else a[:, None, :]

    requests, items, peak = _demand(wl, traffic, growth) if demand is None else demand
    hpm = wl.hours_per_month
    cap = kms(opt["capacity"])
    if wl.daily_profile is None:
        # a RELATIVE margin absorbs floating-point error (3.0000000001 -> 3) without ever
        # rounding a load above 0 down to 0 instances (an absolute 1e-9 did, for tiny loads)
        inst = np.multiply(peak[None], _CEIL_SHRINK / cap)   # one multiply: cheaper than divide
        np.ceil(inst, out=inst)
        # at least one instance wherever there are requests (also when the peak load underflows
        # to 0), and at least min_replicas: one maximum against the (M, S) floor
        # max(requests > 0, min_replicas) (same values as two)
        np.maximum(inst, np.maximum(requests > 0, wl.min_replicas), out=inst)
        inst_h = inst * hpm
    else:
        # autoscaling: one instance count per hour of the day; hours with the same weight share
        # one computation (<= 24 array operations, none per option, month or sample)
        weights, counts = np.unique(np.asarray(wl.daily_profile), return_counts=True)
        load = peak[None] / cap                                  # (K, M, S) instances at weight 1
        # floor of an hour with weight > 0: one instance where there is traffic (even if the load
        # underflows), and min_replicas -- one (M, S) maximum instead of two per hour and option
        busy_floor = np.maximum(requests > 0, wl.min_replicas)
        inst_h = np.zeros_like(load)
        i_h = np.empty_like(load)
        for wgt, n in zip(weights, counts):                     # ascending weights
            np.multiply(load, wgt * _CEIL_SHRINK, out=i_h)
            np.ceil(i_h, out=i_h)
            np.maximum(i_h, busy_floor if wgt > 0 else wl.min_replicas, out=i_h)
            if wgt == weights[-1]:
                inst = i_h.copy()                                # the busiest hour's count
            i_h *= hpm * n / 24.0
            inst_h += i_h
        peak = peak * weights[-1]
    # in place where possible: these (K, M, S) arrays dominate a Monte Carlo plan's time
    busy_s = np.multiply(items[None], kms(1.0 / opt["throughput"]))
    idle_s = inst_h * S_PER_HOUR
    idle_s -= busy_s
    np.maximum(idle_s, 0.0, out=idle_s)
    # idle power counted at most at the busy power (energy_per_item_j x throughput): a row with
    # idle above busy power (schema warns, naming it) would make more traffic cost less
    busy_w = opt["energy_per_item_j"] * opt["throughput"]
    idle_w = np.where(opt["idle_power_w"] > busy_w, busy_w, opt["idle_power_w"])
    energy_kwh = np.multiply(items[None], kms(opt["energy_per_item_j"]), out=busy_s)
    idle_s *= kms(idle_w)
    energy_kwh += idle_s
    energy_kwh *= pr.pue / J_PER_KWH
    if pr.mode == "cloud":
        cost = np.multiply(inst_h, opt["price_per_hour"][:, None, None] * pmult[None, None, :],
                           out=idle_s)
    else:
        cost = inst * opt["capex_per_month"][:, None, None] + energy_kwh * pr.electricity_price_per_kwh
        cost *= pmult[None, None, :]
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


def _workload_draws(rng: np.random.Generator, unc: Any, monthly_growth: float, samples: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monte Carlo multipliers of traffic and price and the monthly growth, (S,) each, drawn from
    ``rng`` in this order (triangular, mode 1 / the workload's growth; a missing range is exact).
    Shared by every workload kind, so the same seed gives the same draws."""
    tr = _tri(rng, *((unc.traffic[0], 1.0, unc.traffic[1]) if unc.traffic else (1, 1, 1)), samples)
    if unc.growth:
        lo, hi = unc.growth
        if not lo <= monthly_growth <= hi:
            raise ValidationError("growth", f"uncertainty range ({lo:g}, {hi:g}) must bracket the "
                                            f"workload's monthly_growth {monthly_growth:g}")
        gr = _tri(rng, lo, monthly_growth, hi, samples)
    else:
        gr = np.full(samples, monthly_growth)
    pm = _tri(rng, *((unc.price[0], 1.0, unc.price[1]) if unc.price else (1, 1, 1)), samples)
    return tr, gr, pm


def _tri_inv(u: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Triangular(lo, 1, hi) by inverse CDF of uniforms ``u`` (K, S); ``lo``/``hi`` per row (K,)
    -- one vectorised draw for options with different ranges; a row with lo == hi gives 1."""
    # left branch lo + sqrt(u width (1 - lo)) where u < (1 - lo) / width, else the right branch
    # hi - sqrt((1 - u) width (hi - 1)): each element computes only the square root of its own
    # branch; blocks of rows small enough for the CPU cache, in two reused buffers
    out = np.empty(u.shape)
    step = max(1, (1 << 15) // max(1, u.shape[1]))
    tmp = np.empty((min(step, len(u)), u.shape[1]))
    for i in range(0, len(u), step):
        ub, o, t = u[i:i + step], out[i:i + step], tmp[:len(u[i:i + step])]
        lb, hb = lo[i:i + step, None], hi[i:i + step, None]
        width = hb - lb
        with np.errstate(divide="ignore", invalid="ignore"):
            fc = np.where(width > 0, (1.0 - lb) / width, 0.0)
            right = ub >= fc
            np.multiply(ub, width, out=o)
            o *= 1.0 - lb
            np.subtract(1.0, ub, out=t)
            t *= width
            t *= hb - 1.0
            np.copyto(o, t, where=right)
            np.sqrt(o, out=o)
            np.subtract(hb, o, out=t)
            o += lb
            np.copyto(o, t, where=right)
        o[~(width[:, 0] > 0)] = 1.0
    return out


def _sample_multipliers(opt: pd.DataFrame, unc: Any, samples: int, seed: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(throughput multiplier, energy multiplier), each (K, S), for the options in ``opt``.

    Throughput: measurement spread (latency error ``1 + sigma * z``, z standard normal clipped
    to +/-3, sigma = ``ci / 1.96``, and for rows timed on a busy machine ``timing_spread_rel /
    1.2816`` so their P10-P90 spans +-X: :func:`effplan.planning.stability.latency_sigma`; the
    throughput is divided by it) times, for projected rows, the projection
    efficiency (triangular ``unc.efficiency``). Energy: triangular by ``energy_source``
    (``unc.energy``). Each from its own stream (``default_rng([seed, 2, i])``, drawn only when
    some option has a spread) so the traffic, growth and price draws are unchanged.
    """
    k = len(opt)
    ones = np.ones((k, 1))
    tput_m = ones
    if unc.measurement:
        nan = np.full(k, np.nan)
        ci = opt["latency_ci_rel"].to_numpy(float) if "latency_ci_rel" in opt else nan
        shaky = opt["timing_unstable"].to_numpy(bool) if "timing_unstable" in opt else np.zeros(k, bool)
        spread = opt["timing_spread_rel"].to_numpy(float) if "timing_spread_rel" in opt else nan
        sig = latency_sigma(ci, shaky, spread)
        if sig.any():
            z = np.random.default_rng([seed, 2, 0]).standard_normal((k, samples))
            tput_m = 1.0 / np.maximum(1.0 + sig[:, None] * np.clip(z, -3.0, 3.0), 0.05)
    if unc.efficiency is not None:
        proj = (opt["provenance"].to_numpy(str) == "projected")
        if proj.any():
            u = np.random.default_rng([seed, 2, 1]).random((k, samples))
            tput_m = tput_m * _tri_inv(u, np.where(proj, unc.efficiency[0], 1.0),
                                       np.where(proj, unc.efficiency[1], 1.0))
    en_m = ones
    if unc.energy:
        src = opt["energy_source"].to_numpy(str)
        lo = np.array([unc.energy.get(x, (1.0, 1.0))[0] for x in src], dtype=float)
        hi = np.array([unc.energy.get(x, (1.0, 1.0))[1] for x in src], dtype=float)
        if (hi > lo).any():
            u = np.random.default_rng([seed, 2, 2]).random((k, samples))
            en_m = _tri_inv(u, lo, hi)
    return np.broadcast_to(tput_m, (k, samples)), np.broadcast_to(en_m, (k, samples))


def _percentiles(x: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """P10/P50/P90 along the last axis -> (3, ...): numpy's default ("linear") percentiles.

    One ``np.sort`` along the samples and the two order statistics either side of each
    percentile, interpolated as ``np.percentile`` does (same values): sorting many short rows
    is several times faster than ``np.percentile``'s multi-``kth`` partition. Arrays holding
    NaN take ``np.percentile`` (NaN propagates per row as it does there). ``overwrite``: ``x``
    is scratch the caller no longer needs -- sorted in place, saving a copy."""
    if np.isnan(x).any():
        return np.percentile(x, _PCT, axis=-1, overwrite_input=overwrite)
    if overwrite:
        x.sort(axis=-1)
        s = x
    else:
        s = np.sort(x, axis=-1)
    n = x.shape[-1]
    out = np.empty((len(_PCT),) + x.shape[:-1])
    for j, q in enumerate(_PCT):
        pos = (n - 1) * (q / 100.0)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        t = pos - lo
        a, b = s[..., lo], s[..., hi]
        d = b - a
        out[j] = b - d * (1.0 - t) if t >= 0.5 else a + d * t
    return out
