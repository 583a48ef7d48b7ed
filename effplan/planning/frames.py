"""Tables read off a :class:`~effplan.planning.Plan` for people: the quarterly budget table
(:func:`budget_table`), the answer -- every option ranked with its cost against the baseline
(:func:`rank_options`) and the one choice with its savings (:func:`headline`; portfolio sums only
in :func:`portfolio_total`) -- shown by the dashboard, the notebooks and the CLI, and the row
selection and quarter helpers the plots share. numpy/pandas only: it formats, the arithmetic stays in the planner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from .stability import headline_note, is_flagged, option_notes
from ..records.schema import bool_mask

__all__ = ["budget_table", "rank_options", "headline", "Headline", "baseline_candidate",
           "portfolio_total", "BASELINE_TAG"]


def budget_table(plan: Any, candidates: Sequence[str] | None = None,
                 hardware: Sequence[str] | None = None) -> pd.DataFrame:
    """The quarterly budget: one row per selected candidate x hardware, in ``plan.summary``
    order (feasible first, then cheapest).

    Columns: ``candidate``, ``hardware``, ``provenance``, ``price_source``, ``energy_source``
    (where the cost's price and the energy figure came from), ``batch_size``, ``latency_p95_ms``,
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
    s = select_rows(plan.summary, candidates, hardware)
    q = select_rows(plan.quarterly, candidates, hardware)
    keys = ["candidate", "hardware"]
    quarters = quarter_order(plan.quarterly["quarter"]) if len(plan.quarterly) else []
    labels = [fmt_quarter(x) for x in quarters]
    out = s[keys + [c for c in ("provenance", "price_source", "energy_source", "batch_size",
                                "latency_p95_ms", "slo_met",
                                "instances_max") if c in s.columns]].copy()
    if not q.empty:
        wide = q.set_index(keys + ["quarter"])["cost_usd"].unstack("quarter")
        wide = wide.reindex(columns=quarters)
        wide.columns = labels
        out = out.join(wide, on=keys)
    out["inference_usd"] = s["cost_usd"].astype(float)
    band = pct_cols(s, "cost_usd")
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


def select_rows(df: pd.DataFrame, candidates: Sequence[str] | None,
                hardware: Sequence[str] | None) -> pd.DataFrame:
    """The rows of these ``candidates`` on this ``hardware`` (``None``: all of them)."""
    if candidates is not None:
        df = df[df["candidate"].astype(str).isin([str(c) for c in candidates])]
    if hardware is not None and "hardware" in df.columns:
        hw = [hardware] if isinstance(hardware, str) else list(hardware)
        df = df[df["hardware"].astype(str).isin([str(h) for h in hw])]
    return df


def quarter_order(values: pd.Series) -> list[Any]:
    """Quarters in chronological order whatever their type (1, 2.. or 'Q1', '2025Q3')."""
    uniq = list(pd.unique(values))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def pct_cols(df: pd.DataFrame, base: str) -> tuple[str, str] | None:
    """The ``<base>_p10`` / ``<base>_p90`` band columns of ``df`` when it has them (not all NaN)."""
    lo, hi = f"{base}_p10", f"{base}_p90"
    if lo in df.columns and hi in df.columns and df[[lo, hi]].notna().any().any():
        return lo, hi
    return None


def fmt_quarter(q: Any) -> str:
    """A quarter as shown: ``3`` -> ``"Q3"``, a label as it is."""
    if isinstance(q, (int, np.integer)):
        return f"Q{int(q)}"
    if isinstance(q, (float, np.floating)) and float(q).is_integer():
        return f"Q{int(q)}"
    return str(q)


# ------------------------------------------------------------------------------ the answer
#: tag that marks the candidate every saving is measured against
BASELINE_TAG = "baseline"


def baseline_candidate(measurements: Any) -> str | None:
    """The candidate tagged ``baseline`` in a measurements frame (``tags`` column, comma-
    separated), or None. Several tagged: the first in the frame's order."""
    df = measurements.to_frame() if hasattr(measurements, "to_frame") else measurements
    if df is None or "tags" not in getattr(df, "columns", ()):
        return None
    for cand, tags in zip(df["candidate"].astype(str), df["tags"].fillna("").astype(str)):
        if BASELINE_TAG in [t.strip() for t in tags.split(",")]:
            return cand
    return None


def is_generation_plan(plan: Any) -> bool:
    """True for a plan of a :class:`~effplan.planning.GenerationWorkload` (per-token serving)."""
    inputs = getattr(plan, "inputs", None) or {}
    return bool(inputs.get("generation")) or (
        "cost_per_1m_output_tokens_usd" in getattr(plan, "summary", pd.DataFrame()).columns)


def rank_options(plan: Any, *, baseline: str | None = None, min_quality: float | None = None,
                 candidates: Sequence[str] | None = None,
                 hardware: Sequence[str] | None = None,
                 quality_values: Mapping[str, float] | None = None,
                 quality_label: str | None = None,
                 higher_is_better: bool | None = None, quality_failures: Mapping[str, str] | None = None
                 ) -> pd.DataFrame:
    """Every option (candidate x hardware) of ``plan``, ranked: those that meet the targets
    first, cheapest first. Options are ALTERNATIVES: nothing here adds them up.

    The quarterly figure is the first quarter of the plan ("next quarter"): ``quarter_cost_usd``
    with its Monte-Carlo ``quarter_cost_usd_p10`` / ``_p90`` when the plan has samples.
    ``cost_usd`` (+ ``_p10``/``_p90``) is the whole horizon.

    Targets: feasible (a batch size meets the p95 latency target -- for a generation plan a
    concurrency meets the TTFT / TPOT targets and fits memory -- and the hardware has a price),
    ``slo_met``, and the quality bar ``min_quality`` when given: ``quality >= min_quality`` for a
    higher-is-better metric, ``quality <= min_quality`` (a maximum) for a lower-is-better one.

    Quality: the summary's ``quality`` column (higher is better); for a generation plan its
    ``perplexity`` (lower is better). ``quality_values`` (candidate -> value, e.g. one metric x
    condition of an evaluation) replaces it, with ``quality_label`` and ``higher_is_better``
    (default True) describing it; ``quality_failures`` (:func:`effplan.records.bars.failures`) adds
    several bars at once. ``why_not`` says which target an
    option misses ("" when it meets them all); ``meets_targets`` is the boolean.

    Baseline: the cheapest option of the ``baseline`` candidate (the one tagged ``baseline``,
    see :func:`baseline_candidate`) that has a cost -- meeting the targets when it can.
    ``vs_baseline_usd`` = option's quarter cost - baseline's (negative = a saving),
    ``vs_baseline_pct`` = that / baseline's quarter cost (a fraction). NaN without a baseline.

    Also carried, so every cost shows where it came from: ``price_source``, ``provenance``
    (timing), ``energy_source``, ``energy_kwh``, ``co2_kg``, ``latency_p95_ms``,
    ``instances_max``, ``quality``, and the stability flags (``timing_unstable``,
    ``timing_spread_rel``, ``background_load``, ``stability_note``: "Timings were taken on a busy
    machine ...", :mod:`effplan.planning.stability`). Flagged options are ranked like the others
    (a flagged answer, never no answer). ``is_baseline`` marks the baseline row, ``rank`` counts
    from 1.
    ``attrs``: ``baseline`` (candidate), ``baseline_hardware``, ``baseline_quarter_cost_usd``,
    ``quarter`` (label of the quarter costed), ``months``, ``min_quality``, ``slo_p95_ms``.
    """
    s = select_rows(plan.summary, candidates, hardware).copy()
    q = select_rows(plan.quarterly, candidates, hardware)
    keys = ["candidate", "hardware"]
    if "stability_note" not in s.columns:   # a plan stored by an older effplan, or typed in
        s["stability_note"] = option_notes(s)
    quarters = quarter_order(plan.quarterly["quarter"]) if len(plan.quarterly) else []
    first = quarters[0] if quarters else None
    cols = keys + [c for c in ("cost_usd", "cost_usd_p10", "cost_usd_p90") if c in q.columns]
    q1 = q[q["quarter"] == first][cols].rename(columns={
        "cost_usd": "quarter_cost_usd", "cost_usd_p10": "quarter_cost_usd_p10",
        "cost_usd_p90": "quarter_cost_usd_p90"}) if first is not None else pd.DataFrame(columns=keys)
    out = s.merge(q1, on=keys, how="left")
    for c in ("quarter_cost_usd_p10", "quarter_cost_usd_p90", "cost_usd_p10", "cost_usd_p90"):
        if c not in out.columns:
            out[c] = np.nan
    cost = pd.to_numeric(out["quarter_cost_usd"], errors="coerce")
    feasible = pd.Series(bool_mask(out.get("feasible", pd.Series(True, index=out.index)), "feasible"), index=out.index)
    slo = (out["slo_met"].map(lambda v: True if v is None or (isinstance(v, float) and np.isnan(v))
                              else bool(v)) if "slo_met" in out.columns
           else pd.Series(True, index=out.index))
    generation = is_generation_plan(plan)
    if quality_values is not None:
        qual = pd.to_numeric(out["candidate"].astype(str).map(
            {str(k): v for k, v in dict(quality_values).items()}), errors="coerce")
        label = quality_label or "quality"
        hib = True if higher_is_better is None else bool(higher_is_better)
    elif generation and "perplexity" in out.columns:
        qual = pd.to_numeric(out["perplexity"], errors="coerce")
        label, hib = quality_label or "perplexity", (False if higher_is_better is None
                                                     else bool(higher_is_better))
    else:
        qual = pd.to_numeric(out["quality"], errors="coerce") if "quality" in out.columns \
            else pd.Series(np.nan, index=out.index)
        label = quality_label or "quality"
        hib = True if higher_is_better is None else bool(higher_is_better)
    out["quality"] = qual
    reason = out["infeasible_reason"].astype(str).replace({"nan": "", "None": ""}) \
        if "infeasible_reason" in out.columns else pd.Series("", index=out.index)
    why = np.where(~feasible, np.where(reason.str.len() > 0, reason, "infeasible"), "")
    why = np.where((why == "") & ~slo.astype(bool), "misses the p95 latency target", why)
    why = np.where((why == "") & cost.isna(), "no price for this hardware", why)
    if min_quality is not None:
        low = ~(qual >= float(min_quality)) if hib else ~(qual <= float(min_quality))
        text = np.where(qual.isna(), f"no {label} score",
                        f"{label} " + qual.map(lambda v: f"{v:.3g}")
                        + (f" < {min_quality:g}" if hib else f" > {min_quality:g} (lower is better)"))
        why = np.where((why == "") & low, text, why)
    out["why_not"] = _with_bar_reasons(why, out["candidate"], quality_failures)
    out["meets_targets"] = out["why_not"] == ""
    # options meeting the targets first, then THE tie rule of cheapest_meeting (one rule): the
    # quarter's cost, then energy, then candidate and hardware names
    from .selection import cheapest_first_key

    energy = q[q["quarter"] == first].set_index(keys)["energy_kwh"] if (
        first is not None and "energy_kwh" in q.columns) else pd.Series(dtype=float)
    e = [energy.get((c, h), np.nan) if len(energy) else np.nan
         for c, h in zip(out["candidate"], out["hardware"], strict=True)]
    order = sorted(range(len(out)), key=lambda i: (not bool(out["meets_targets"].iloc[i]),
                                                   *cheapest_first_key(cost.iloc[i], e[i], out["candidate"].iloc[i],
                                                                       out["hardware"].iloc[i])))
    out = out.iloc[order].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    base_row = None
    if baseline is not None:
        b = out[(out["candidate"].astype(str) == str(baseline))
                & pd.to_numeric(out["quarter_cost_usd"], errors="coerce").notna()]
        if len(b):
            bm = b[b["meets_targets"]]
            base_row = (bm if len(bm) else b).iloc[0]
    out["is_baseline"] = False
    if base_row is not None:
        bc = float(base_row["quarter_cost_usd"])
        out.loc[(out["candidate"] == base_row["candidate"])
                & (out["hardware"] == base_row["hardware"]), "is_baseline"] = True
        out["vs_baseline_usd"] = pd.to_numeric(out["quarter_cost_usd"], errors="coerce") - bc
        out["vs_baseline_pct"] = out["vs_baseline_usd"] / bc if bc else np.nan
    else:
        out["vs_baseline_usd"] = np.nan
        out["vs_baseline_pct"] = np.nan
    first_cols = ["rank", "candidate", "hardware", "quarter_cost_usd", "quarter_cost_usd_p10",
                  "quarter_cost_usd_p90", "vs_baseline_usd", "vs_baseline_pct", "meets_targets",
                  "why_not", "cost_usd", "cost_usd_p10", "cost_usd_p90", "price_source",
                  "provenance", "latency_p95_ms", "concurrency", "binding_constraint",
                  "cost_per_1m_output_tokens_usd", "energy_per_response_wh", "instances_max",
                  "quality", "energy_kwh", "energy_source", "co2_kg", "stability_note",
                  "timing_spread_rel", "background_load", "is_baseline"]
    out = out[[c for c in first_cols if c in out.columns]
              + [c for c in out.columns if c not in first_cols]]
    inputs = getattr(plan, "inputs", {}) or {}
    inf = inputs.get("inference") or {}
    out.attrs.update({
        "baseline": None if base_row is None else str(base_row["candidate"]),
        "baseline_wanted": baseline,
        "baseline_hardware": None if base_row is None else str(base_row["hardware"]),
        "baseline_quarter_cost_usd": (float("nan") if base_row is None
                                      else float(base_row["quarter_cost_usd"])),
        "quarter": fmt_quarter(first) if first is not None else "",
        "months": inputs.get("months", inf.get("months") if isinstance(inf, dict) else None),
        "min_quality": min_quality,
        "slo_p95_ms": inf.get("slo_p95_ms") if isinstance(inf, dict) else None,
        "workload": "generation" if generation else "inference",
        "quality_label": label, "higher_is_better": hib,
    })
    gen = inputs.get("generation") or {}
    if isinstance(gen, dict) and gen:
        out.attrs.update({"months": gen.get("months", out.attrs["months"]),
                          "slo_ttft_p95_ms": gen.get("slo_ttft_p95_ms"),
                          "slo_tpot_p95_ms": gen.get("slo_tpot_p95_ms")})
    return out


def _with_bar_reasons(why: np.ndarray, candidates: pd.Series, failures: Mapping[str, str] | None) -> np.ndarray:
    """``why`` with each candidate's kept-bar reason (candidate -> "" when it meets every bar) where
    no earlier target failed; unchanged without bars."""
    if failures is None:
        return why
    bar_why = candidates.astype(str).map(dict(failures)).fillna("no quality figures").to_numpy()
    return np.where((why == "") & (bar_why != ""), bar_why, why)


@dataclass(frozen=True)
class Headline:
    """The one answer: which candidate, on which hardware, and what it saves.

    ``candidate`` / ``hardware`` are empty and ``quarter_cost_usd`` NaN when no option meets
    the targets (``message`` says why). Money is USD for the first quarter of the plan
    (``quarter``), with the Monte-Carlo P10-P90 when the plan has samples; ``horizon_cost_usd``
    covers all ``months``. ``savings_usd`` = baseline - choice for that quarter (positive = a
    saving), ``savings_pct`` a fraction of the baseline's cost; NaN without a baseline.

    ``stability_note``: "" when the choice and the baseline were timed on a quiet machine, else
    the statement of :mod:`effplan.planning.stability` for each of them ("Timings were taken
    on a busy machine (background load N cores); the cost could be X% off."); ``timing_unstable``
    / ``timing_spread_rel`` / ``background_load`` are the choice's own flags."""

    candidate: str
    hardware: str
    quarter: str
    quarter_cost_usd: float
    quarter_cost_usd_p10: float
    quarter_cost_usd_p90: float
    horizon_cost_usd: float
    months: int | None
    baseline: str | None
    baseline_hardware: str | None
    baseline_quarter_cost_usd: float
    savings_usd: float
    savings_pct: float
    provenance: str
    price_source: str
    energy_source: str
    latency_p95_ms: float
    quality: float
    min_quality: float | None
    slo_p95_ms: float | None
    options: int
    options_meeting_targets: int
    message: str
    workload: str = "inference"
    quality_label: str = "quality"
    quality_higher_is_better: bool = True
    slo_ttft_p95_ms: float | None = None
    slo_tpot_p95_ms: float | None = None
    cost_per_1m_output_tokens_usd: float = float("nan")
    energy_per_response_wh: float = float("nan")
    concurrency: float = float("nan")
    binding_constraint: str = ""
    stability_note: str = ""
    timing_unstable: bool = False
    timing_spread_rel: float = float("nan")
    background_load: float = float("nan")

    @property
    def found(self) -> bool:
        return bool(self.candidate)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def sentence(self) -> str:
        """The answer in one sentence (plain text)."""
        if not self.found:
            return self.message
        s = (f"Run {self.candidate} on {self.hardware}: ${self.quarter_cost_usd:,.0f} in "
             f"{self.quarter}")
        if np.isfinite(self.quarter_cost_usd_p10) and np.isfinite(self.quarter_cost_usd_p90):
            s += f" (P10-P90 ${self.quarter_cost_usd_p10:,.0f}-${self.quarter_cost_usd_p90:,.0f})"
        if self.baseline and np.isfinite(self.savings_usd):
            verb = "saves" if self.savings_usd >= 0 else "costs"
            s += (f", {verb} ${abs(self.savings_usd):,.0f} ({abs(self.savings_pct):.0%}) "
                  f"{'against' if self.savings_usd >= 0 else 'more than'} the baseline "
                  f"{self.baseline} on {self.baseline_hardware}")
        return s + "." + (f" {self.stability_note}" if self.stability_note else "")


def headline(plan: Any, *, baseline: str | None = None, min_quality: float | None = None,
             candidates: Sequence[str] | None = None, hardware: Sequence[str] | None = None,
             ranking: pd.DataFrame | None = None) -> Headline:
    """The cheapest option (candidate x hardware) that meets the targets -- the p95 latency
    target of the plan's workload and, when given, ``min_quality`` -- with its first-quarter
    cost and its savings against the ``baseline`` candidate (see :func:`rank_options`, whose
    frame can be passed as ``ranking`` to avoid recomputing it)."""
    r = ranking if ranking is not None else rank_options(
        plan, baseline=baseline, min_quality=min_quality, candidates=candidates,
        hardware=hardware)
    a = r.attrs
    ok = r[r["meets_targets"]] if len(r) else r
    nan = float("nan")

    def f(row: Any, col: str) -> float:
        try:
            return float(row[col])
        except (KeyError, TypeError, ValueError):
            return nan

    extra: dict[str, Any] = {
        "workload": a.get("workload", "inference"),
        "quality_label": a.get("quality_label", "quality"),
        "quality_higher_is_better": bool(a.get("higher_is_better", True)),
        "slo_ttft_p95_ms": a.get("slo_ttft_p95_ms"), "slo_tpot_p95_ms": a.get("slo_tpot_p95_ms")}
    if len(ok) == 0:
        why = "; ".join(dict.fromkeys(r["why_not"].astype(str))) if len(r) else "no options"
        return Headline("", "", a.get("quarter", ""), nan, nan, nan, nan, a.get("months"),
                        a.get("baseline"), a.get("baseline_hardware"),
                        a.get("baseline_quarter_cost_usd", nan), nan, nan, "", "", "", nan, nan,
                        min_quality, a.get("slo_p95_ms"), len(r), 0,
                        f"No option meets the targets ({why}).", **extra)
    row = ok.iloc[0]
    base_rows = r[r["is_baseline"]] if "is_baseline" in r.columns else r.iloc[0:0]
    note = headline_note(row, base_rows.iloc[0] if len(base_rows) else None, a.get("baseline"))
    base = a.get("baseline_quarter_cost_usd", nan)
    cost = f(row, "quarter_cost_usd")
    sav = base - cost if base == base else nan
    msg = ""
    if a.get("baseline") is None:
        msg = ("no candidate tagged 'baseline' among these options: savings not computed"
               if a.get("baseline_wanted") is None else
               f"baseline {a.get('baseline_wanted')} has no cost here: savings not computed")
    check = str(row.get("memory_check", "checked") or "checked")
    if check != "checked":   # e.g. imported rows without model facts: say it under the answer
        msg = "; ".join(m for m in (msg, f"memory {check}") if m)
    return Headline(
        candidate=str(row["candidate"]), hardware=str(row["hardware"]),
        quarter=a.get("quarter", ""), quarter_cost_usd=cost,
        quarter_cost_usd_p10=f(row, "quarter_cost_usd_p10"),
        quarter_cost_usd_p90=f(row, "quarter_cost_usd_p90"),
        horizon_cost_usd=f(row, "cost_usd"), months=a.get("months"),
        baseline=a.get("baseline"), baseline_hardware=a.get("baseline_hardware"),
        baseline_quarter_cost_usd=base, savings_usd=sav,
        savings_pct=sav / base if base == base and base else nan,
        provenance=str(row.get("provenance", "")), price_source=str(row.get("price_source", "")),
        energy_source=str(row.get("energy_source", "")),
        latency_p95_ms=f(row, "latency_p95_ms"), quality=f(row, "quality"),
        min_quality=min_quality, slo_p95_ms=a.get("slo_p95_ms"), options=len(r),
        options_meeting_targets=int(r["meets_targets"].sum()), message=msg,
        cost_per_1m_output_tokens_usd=f(row, "cost_per_1m_output_tokens_usd"),
        energy_per_response_wh=f(row, "energy_per_response_wh"),
        concurrency=f(row, "concurrency"),
        binding_constraint=str(row.get("binding_constraint", "") or ""),
        stability_note=note, timing_unstable=is_flagged(row.get("timing_unstable", False)),
        timing_spread_rel=f(row, "timing_spread_rel"), background_load=f(row, "background_load"),
        **extra)


def portfolio_total(ranking: pd.DataFrame, candidates: Sequence[str]) -> dict[str, Any]:
    """Portfolio mode: the named candidates run SIDE BY SIDE (not alternatives), each on its
    cheapest option that meets the targets; returns ``{"rows": [...], "quarter_cost_usd": sum,
    "missing": [candidates with no such option]}``. The only place effplan adds options up."""
    rows, missing = [], []
    for c in candidates:
        g = ranking[(ranking["candidate"].astype(str) == str(c)) & ranking["meets_targets"]]
        if len(g):
            rows.append(g.iloc[0])
        else:
            missing.append(str(c))
    total = float(sum(float(r["quarter_cost_usd"]) for r in rows)) if rows else float("nan")
    horizon = float(sum(float(r["cost_usd"]) for r in rows)) if rows else float("nan")
    return {"rows": [(str(r["candidate"]), str(r["hardware"]), float(r["quarter_cost_usd"]))
                     for r in rows],
            "quarter_cost_usd": total, "horizon_cost_usd": horizon, "missing": missing,
            "definition": "SUM of the selected models run side by side, each on its cheapest "
                          "option meeting the targets"}
