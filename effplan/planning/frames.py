"""Tables read off a :class:`~effplan.planning.Plan` for people: the quarterly budget table
(:func:`budget_table`, shown by the dashboard and the notebooks) and the row selection and quarter
helpers the plots share. numpy/pandas only: it formats, the arithmetic stays in the planner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["budget_table"]


def budget_table(plan: Any, candidates: Sequence[str] | None = None,
                 hardware: Sequence[str] | None = None) -> pd.DataFrame:
    """The quarterly budget: one row per selected candidate x hardware, in ``plan.summary``
    order (feasible first, then cheapest).

    Columns: ``candidate``, ``hardware``, ``provenance``, ``batch_size``, ``latency_p95_ms``,
    ``slo_met``, ``instances_max``, one inference-cost column per quarter (``Q1``, ``Q2`` ..,
    USD), ``inference_usd`` (horizon), with Monte Carlo ``inference_usd_p10`` / ``_p90`` (the
    plan's percentiles of each row's horizon total), with training ``training_usd``, then
    ``total_usd`` (the plan's ``total_cost_usd``: inference + training, NaN when a part has no
    cost), ``energy_kwh``, ``co2_kg`` (inference, horizon) and
    ``note`` (why a row has no cost). Costs stay NaN where the plan has none (never 0).

    ``attrs``: ``quarters``, ``total_usd`` (sum of ``total_usd`` over rows that have one),
    ``rows_in_total``, ``excluded`` (rows left out, with the reason), ``training_usd`` and,
    with Monte Carlo, ``total_usd_p10``/``_p90`` (sums of the rows' inference percentiles).
    """
    s = _select(plan.summary, candidates, hardware)
    q = _select(plan.quarterly, candidates, hardware)
    keys = ["candidate", "hardware"]
    quarters = _quarter_order(plan.quarterly["quarter"]) if len(plan.quarterly) else []
    labels = [_fmt_quarter(x) for x in quarters]
    out = s[keys + [c for c in ("provenance", "batch_size", "latency_p95_ms", "slo_met",
                                "instances_max") if c in s.columns]].copy()
    if not q.empty:
        wide = q.set_index(keys + ["quarter"])["cost_usd"].unstack("quarter")
        wide = wide.reindex(columns=quarters)
        wide.columns = labels
        out = out.join(wide, on=keys)
    out["inference_usd"] = s["cost_usd"].astype(float)
    band = _pct_cols(s, "cost_usd")
    if band:
        out["inference_usd_p10"] = s[band[0]].astype(float)
        out["inference_usd_p90"] = s[band[1]].astype(float)
    has_training = "training_cost_usd" in s.columns
    if has_training:  # the plan's one definition of the total (planner.total_cost_usd)
        out["training_usd"] = s["training_cost_usd"].astype(float)
        out["total_usd"] = s["total_cost_usd"].astype(float)
    else:
        out["total_usd"] = out["inference_usd"]
    out["energy_kwh"] = s["energy_kwh"].astype(float)
    out["co2_kg"] = s["co2_kg"].astype(float)
    if "total_note" in s.columns:
        reason = s["total_note"].astype(str)
    else:
        reason = s["infeasible_reason"].astype(str) if "infeasible_reason" in s.columns else ""
    out["note"] = np.where(out["total_usd"].isna(),
                           np.where(pd.Series(reason, index=s.index).str.len() > 0,
                                    reason, "no price for this hardware"), "")
    out = out.reset_index(drop=True)
    ok = out["total_usd"].notna()
    out.attrs["quarters"] = len(quarters)
    out.attrs["total_usd"] = float(out.loc[ok, "total_usd"].sum()) if ok.any() else float("nan")
    out.attrs["rows_in_total"] = int(ok.sum())
    out.attrs["excluded"] = [f"{r.candidate} @ {r.hardware}: {r.note}"
                             for r in out[~ok].itertuples()]
    out.attrs["training_usd"] = (float(out.loc[ok, "training_usd"].fillna(0).sum())
                                 if has_training else 0.0)
    if band and ok.any():
        out.attrs["total_usd_p10"] = float(out.loc[ok, "inference_usd_p10"].sum())
        out.attrs["total_usd_p90"] = float(out.loc[ok, "inference_usd_p90"].sum())
    return out


def _select(df: pd.DataFrame, candidates: Sequence[str] | None,
            hardware: Sequence[str] | None) -> pd.DataFrame:
    if candidates is not None:
        df = df[df["candidate"].astype(str).isin([str(c) for c in candidates])]
    if hardware is not None and "hardware" in df.columns:
        hw = [hardware] if isinstance(hardware, str) else list(hardware)
        df = df[df["hardware"].astype(str).isin([str(h) for h in hw])]
    return df


def _quarter_order(values: pd.Series) -> list[Any]:
    """Quarters in chronological order whatever their type (1, 2.. or 'Q1', '2025Q3')."""
    uniq = list(pd.unique(values))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def _pct_cols(df: pd.DataFrame, base: str) -> tuple[str, str] | None:
    lo, hi = f"{base}_p10", f"{base}_p90"
    if lo in df.columns and hi in df.columns and df[[lo, hi]].notna().any().any():
        return lo, hi
    return None


def _fmt_quarter(q: Any) -> str:
    if isinstance(q, (int, np.integer)):
        return f"Q{int(q)}"
    if isinstance(q, (float, np.floating)) and float(q).is_integer():
        return f"Q{int(q)}"
    return str(q)
