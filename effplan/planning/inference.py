"""Inference workloads: monthly, quarterly and summary frames from the chosen operating points
(formulas in the docstring of :mod:`effplan.planning`)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import PlanWarning, ValidationError
from .engine import _demand, _engine, _percentiles, _quarter_sum, _sample_multipliers, _workload_draws
from .inputs import InferenceWorkload, Prices, Uncertainty
from .result import _PCT
from .stability import FLAG_COLUMNS, option_notes
from ..units import G_PER_KG, S_PER_HOUR

def _per_1k(cost: np.ndarray, requests: np.ndarray) -> np.ndarray:
    """cost per 1000 requests; NaN (never inf) where there are no requests. A quotient that
    overflows (a vanishing but non-zero traffic) is a ValidationError naming requests_per_day."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.where(requests > 0, cost / np.where(requests > 0, requests, 1.0) * 1000.0, np.nan)
    if np.isinf(out).any():
        raise ValidationError("requests_per_day", "cost_per_1k_requests_usd overflows a float: the "
                                                  "traffic is vanishingly small (but not 0); give 0 "
                                                  "or a realistic requests_per_day")
    return out


def _check_finite(res: dict[str, np.ndarray], opt: pd.DataFrame, feasible: np.ndarray,
                  wl: InferenceWorkload, pr: Prices, note: str = "") -> None:
    """Every figure of a feasible option is finite -- each month and the sum over the horizon --
    or a ValidationError names the input that overflowed it (a float holds at most ~1.8e308):
    never an inf in a budget. ``res`` holds (M, S) traffic and (K, M, S) per-option arrays."""
    _check_traffic(res["requests"], res["items"], wl, note)
    if not feasible.any():
        return
    first = _first_overflow({k: np.asarray(res[k]) if feasible.all() else np.asarray(res[k])[feasible]
                             for k in _OPTION_FIGURES})
    _raise_overflow(first, opt[feasible] if not feasible.all() else opt, pr, note)


def _check_traffic(requests: np.ndarray, items: np.ndarray, wl: InferenceWorkload, note: str = "") -> None:
    """The (M, S) requests and items per month, and their sums over the horizon, are finite."""
    for key, x, field in (("requests", requests, None), ("items", items, "items_per_request")):
        x = np.asarray(x)
        if np.isinf(x).any() or np.isinf(x.sum(axis=0)).any():
            if field is None:
                field = "monthly_growth" if wl.monthly_growth > 0 and wl.months > 1 else "requests_per_day"
            raise ValidationError(field, f"{key} over {wl.months} months overflow a float "
                                         f"(requests_per_day={wl.requests_per_day:g}, monthly_growth="
                                         f"{wl.monthly_growth:g}, items_per_request="
                                         f"{wl.items_per_request:g}){note}: lower {field}")


#: the per-option (K, M, S) figures checked for overflow, in the order their errors are raised
_OPTION_FIGURES = ("instances", "instance_hours", "energy_kwh", "cost")


def _first_overflow(res: Mapping[str, np.ndarray],
                    month_sums: Mapping[str, np.ndarray] | None = None) -> dict[str, int]:
    """For each of :data:`_OPTION_FIGURES` with an inf in some option's month or in its sum over
    the months: the first such option (row index into ``res``). Keys without one are absent.
    ``month_sums``: ``res[key].sum(axis=1)`` for keys the caller has already summed."""
    out: dict[str, int] = {}
    for key in _OPTION_FIGURES:
        x = res[key]
        msum = month_sums[key] if month_sums and key in month_sums else x.sum(axis=1)
        if np.isfinite(msum).all():
            continue   # fast path: an inf (or NaN) month would make its sum inf or NaN
        rows = np.isinf(x).any(axis=(1, 2)) | np.isinf(msum).any(axis=1)
        if rows.any():
            out[key] = int(np.flatnonzero(rows)[0])
    return out


def _raise_overflow(first: Mapping[str, int], opt: pd.DataFrame, pr: Prices, note: str = "") -> None:
    """The ValidationError for the first figure (in :data:`_OPTION_FIGURES` order) that
    :func:`_first_overflow` found overflowing, naming the option (a row of ``opt``)."""
    small = "the throughput is too small for this traffic"
    for key, field, hint in (("instances", "throughput_items_per_s", small),
                             ("instance_hours", "throughput_items_per_s", small),
                             ("energy_kwh", "energy_per_item_j", "the energy per item is too large"),
                             ("cost", "price_per_hour" if pr.mode == "cloud" else "capex_usd",
                              "the price is too large")):
        if key in first:
            i = first[key]
            label = f"{opt['candidate'].iat[i]} on {opt['hardware'].iat[i]}"
            raise ValidationError(field, f"{key} overflows a float for {label}{note}: {hint}",
                                  where=label)


#: float64 elements of one option chunk's (k, M, S) array in a Monte Carlo plan (~0.5 MiB): the
#: dozen passes of :func:`_engine` and the sorts of :func:`_percentiles` then run in the CPU
#: cache instead of streaming (K, M, S) arrays of tens of MiB through memory
_CHUNK_ELEMENTS = 1 << 16


#: per-option arrays of :func:`_engine` drawn per sample, and the multiplier each is scaled by
_SAMPLED = {"throughput": "throughput", "capacity": "throughput", "energy_per_item_j": "energy",
            "idle_power_w": "energy"}


def _monte_carlo(sub: Mapping[str, np.ndarray], mult: Mapping[str, np.ndarray], fk: np.ndarray,
                 opt: pd.DataFrame, wl: InferenceWorkload, pr: Prices, tr: np.ndarray,
                 gr: np.ndarray, pm: np.ndarray
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """P10/P50/P90 of cost and energy -- monthly (3, K, M), quarterly (3, K, Q) and over the
    horizon (3, K) -- for the feasible options ``fk`` (rows of ``opt``) whose per-option arrays
    are ``sub`` (k,) and whose (k, S) throughput and energy multipliers are ``mult``
    (:func:`_sample_multipliers`; applied chunk by chunk, see :data:`_SAMPLED`); NaN for the
    other options.

    The options go through :func:`_engine` in chunks of about :data:`_CHUNK_ELEMENTS` per
    (k, M, S) array, and each chunk's percentiles are taken before the next is computed: every
    figure of an option depends only on that option (and the shared draws), and the percentiles,
    quarter sums and overflow checks are per option, so the numbers are those of one
    whole-array pass -- with a fraction of the memory traffic. An overflow is raised after the
    last chunk, for the first figure and option a whole-array check would name."""
    K, M, S = len(opt), wl.months, len(tr)
    Q = -(-M // 3)
    note = " (Monte Carlo sample)"
    with np.errstate(over="ignore", invalid="ignore"):
        demand = _demand(wl, tr, gr)
    _check_traffic(demand[0], demand[1], wl, note)
    out_m = {n: np.full((3, K, M), np.nan) for n in ("cost_usd", "energy_kwh")}
    out_q = {n: np.full((3, K, Q), np.nan) for n in ("cost_usd", "energy_kwh")}
    out_t = {n: np.full((3, K), np.nan) for n in ("cost_usd", "energy_kwh")}
    first: dict[str, int] = {}
    step = max(1, _CHUNK_ELEMENTS // max(1, M * S))
    # months, quarter sums and the horizon sum of cost and energy side by side: one sort per
    # chunk, in one buffer reused by every chunk
    buf = np.empty((2, min(step, len(fk)), M + Q + 1, S))
    for i in range(0, len(fk), step):
        part = {k: v[i:i + step] if k not in _SAMPLED else
                v[i:i + step, None] * mult[_SAMPLED[k]][i:i + step] for k, v in sub.items()}
        rows = fk[i:i + step]
        with np.errstate(over="ignore", invalid="ignore"):
            mc = _engine(part, wl, pr, tr, gr, pm, demand=demand)
            stack = buf[:, :len(rows)]
            for j, key in enumerate(("cost", "energy_kwh")):
                x = mc[key]
                stack[j, :, :M] = x
                if M % 3 == 0:
                    x.reshape(len(rows), Q, 3, S).sum(axis=2, out=stack[j, :, M:M + Q])
                else:
                    stack[j, :, M:M + Q] = _quarter_sum(x, M)
                x.sum(axis=1, out=stack[j, :, M + Q])
            sums = {"cost": stack[0, :, M + Q], "energy_kwh": stack[1, :, M + Q]}
            for key, r in _first_overflow(mc, sums).items():
                first.setdefault(key, i + r)   # chunks in order: the first chunk's is the first
            pc = _percentiles(stack, overwrite=True)           # (3, 2, k, M + Q + 1)
            for j, name in enumerate(("cost_usd", "energy_kwh")):
                out_m[name][:, rows] = pc[:, j, :, :M]
                out_q[name][:, rows] = pc[:, j, :, M:M + Q]
                out_t[name][:, rows] = pc[:, j, :, M + Q]
    _raise_overflow(first, opt.iloc[fk], pr, note)
    return out_m, out_q, out_t


def _inference(opt: pd.DataFrame, wl: InferenceWorkload, pr: Prices, samples: int, seed: int,
               unc: Uncertainty) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    K, M = len(opt), wl.months
    feasible = opt["feasible"].to_numpy(bool)
    tput = np.where(feasible, opt["throughput_items_per_s"].to_numpy(float), np.nan)
    arrs = {
        "capacity": tput * wl.target_utilization,
        "throughput": tput,
        "energy_per_item_j": opt["energy_per_item_j"].to_numpy(float),
        "idle_power_w": opt["idle_power_w"].to_numpy(float),
        "price_per_hour": opt["price_per_hour_usd"].to_numpy(float),
        "capex_per_month": opt["capex_usd"].to_numpy(float) / pr.lifetime_months,
    }
    with np.errstate(over="ignore", invalid="ignore"):
        base = _engine(arrs, wl, pr, np.ones(1), np.full(1, wl.monthly_growth), np.ones(1))
    _check_finite(base, opt, feasible, wl, pr)
    inst = base["instances"][..., 0]
    inst_h = base["instance_hours"][..., 0]
    cost = base["cost"][..., 0]
    energy = base["energy_kwh"][..., 0]
    g = pr.grid_intensity_gco2_per_kwh / G_PER_KG
    co2 = energy * g
    requests = np.broadcast_to(base["requests"][:, 0], (K, M))
    items = np.broadcast_to(base["items"][:, 0], (K, M))
    cpk = _per_1k(cost, requests)
    if not (requests > 0).all():
        warnings.warn("requests_per_day is 0: there are no requests to divide by, so "
                      "cost_per_1k_requests_usd is NaN (the cost of min_replicas is still counted "
                      "in cost_usd)", PlanWarning, stacklevel=4)

    pct_m: dict[str, np.ndarray] = {}
    pct_q: dict[str, np.ndarray] = {}
    pct_t: dict[str, np.ndarray] = {}
    if samples > 0:
        rng = np.random.default_rng(seed)
        tr, gr, pm = _workload_draws(rng, unc, wl.monthly_growth, samples)
        fk = np.flatnonzero(feasible)
        sub = {k: v[fk] for k, v in arrs.items()}
        mult = dict(zip(("throughput", "energy"), _sample_multipliers(opt.iloc[fk], unc, samples, seed)))
        pct_m, pct_q, pct_t = _monte_carlo(sub, mult, fk, opt, wl, pr, tr, gr, pm)
        for d in (pct_m, pct_q, pct_t):
            d["co2_kg"] = d["energy_kwh"] * g   # CO2 is energy x a constant: same percentiles

    # ---------------- monthly frame
    rep = lambda col: np.repeat(opt[col].to_numpy(), M)  # noqa: E731
    month = np.tile(np.arange(M), K)
    monthly = {
        "candidate": rep("candidate"), "hardware": rep("hardware"), "catalog_name": rep("catalog_name"),
        "provenance": rep("provenance"), "energy_source": rep("energy_source"),
        "month": month, "quarter": month // 3 + 1,
        "requests": requests.ravel(), "items": items.ravel(),
        "avg_items_per_s": (items / (wl.hours_per_month * S_PER_HOUR)).ravel(),
        "peak_items_per_s": np.broadcast_to(base["peak"][:, 0], (K, M)).ravel(),
        "batch_size": rep("batch_size"), "latency_p95_ms": rep("latency_p95_ms"),
        "slo_met": rep("slo_met"), "throughput_items_per_s": np.repeat(tput, M),
        "capacity_items_per_s": np.repeat(arrs["capacity"], M),
        "instances": inst.ravel(), "instance_hours": inst_h.ravel(),
        "instances_avg": (inst_h / wl.hours_per_month).ravel(),
        "price_per_hour_usd": rep("price_per_hour_usd"),
        "cost_usd": cost.ravel(), "energy_kwh": energy.ravel(), "co2_kg": co2.ravel(),
        "cost_per_1k_requests_usd": cpk.ravel(),
        "feasible": rep("feasible"), "infeasible_reason": rep("infeasible_reason"),
        "quality": rep("quality"),
    }
    for name, p in pct_m.items():
        for j, q in enumerate(_PCT):
            monthly[f"{name}_p{q}"] = p[j].ravel()
    monthly_df = pd.DataFrame(monthly)

    # ---------------- quarterly frame
    Q = -(-M // 3)
    qrep = lambda col: np.repeat(opt[col].to_numpy(), Q)  # noqa: E731
    q_req = _quarter_sum(np.ascontiguousarray(requests), M)
    q_cost = _quarter_sum(cost, M)
    q_cpk = _per_1k(q_cost, q_req)
    q_months = np.minimum(3, M - 3 * np.arange(Q))
    quarterly = {
        "candidate": qrep("candidate"), "hardware": qrep("hardware"), "catalog_name": qrep("catalog_name"),
        "provenance": qrep("provenance"), "energy_source": qrep("energy_source"),
        "quarter": np.tile(np.arange(1, Q + 1), K), "months_in_quarter": np.tile(q_months, K),
        "requests": q_req.ravel(), "items": _quarter_sum(np.ascontiguousarray(items), M).ravel(),
        "instances": _quarter_sum(inst, M, "max").ravel(),
        "instance_hours": _quarter_sum(inst_h, M).ravel(),
        "cost_usd": q_cost.ravel(), "energy_kwh": _quarter_sum(energy, M).ravel(),
        "co2_kg": _quarter_sum(co2, M).ravel(), "cost_per_1k_requests_usd": q_cpk.ravel(),
        "batch_size": qrep("batch_size"), "latency_p95_ms": qrep("latency_p95_ms"),
        "slo_met": qrep("slo_met"), "feasible": qrep("feasible"),
        "infeasible_reason": qrep("infeasible_reason"), "quality": qrep("quality"),
    }
    for name, p in pct_q.items():
        for j, q in enumerate(_PCT):
            quarterly[f"{name}_p{q}"] = p[j].ravel()
    quarterly_df = pd.DataFrame(quarterly)

    # ---------------- summary frame
    tot_req = requests.sum(axis=1)
    tot_cost = cost.sum(axis=1)
    tot_cpk = _per_1k(tot_cost, tot_req)
    summary = {c: opt[c].to_numpy() for c in (
        "candidate", "hardware", "catalog_name", "provenance", "energy_source", "feasible",
        "infeasible_reason", "batch_size", "latency_p95_ms", "slo_met")}
    summary.update({
        "throughput_items_per_s": tput, "capacity_items_per_s": arrs["capacity"],
        "price_per_hour_usd": opt["price_per_hour_usd"].to_numpy(float),
        **{c: opt[c].to_numpy() for c in ("latency_e2e_p95_ms", "batch_fill_p95_ms",
                                          "queue_p95_ms", "batch_source", "batch_neighbours",
                                          "batch_note")},
        "price_source": opt["price_source"].to_numpy() if pr.mode == "cloud" else
        np.char.add("on-prem capex: ", opt["capex_source"].to_numpy(str).astype("U")),
        "instances_first_month": inst[:, 0], "instances_max": inst.max(axis=1),
        "requests": tot_req, "instance_hours": inst_h.sum(axis=1), "cost_usd": tot_cost,
        "first_quarter_cost_usd": q_cost[:, 0], "cost_per_1k_requests_usd": tot_cpk,
        "energy_kwh": energy.sum(axis=1), "co2_kg": co2.sum(axis=1),
        "quality": opt["quality"].to_numpy(float), "efficiency": opt["efficiency"].to_numpy(float),
        "efficiency_source": opt["efficiency_source"].to_numpy(),
        "projected_from": opt["projected_from"].to_numpy(),
        **{c: opt[c].to_numpy() for c in FLAG_COLUMNS},
        "stability_note": option_notes(opt),
    })
    for name, p in pct_t.items():
        for j, q in enumerate(_PCT):
            summary[f"{name}_p{q}"] = p[j]
    summary_df = pd.DataFrame(summary)
    return monthly_df, quarterly_df, summary_df
