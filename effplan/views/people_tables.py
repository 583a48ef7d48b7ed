"""Tables fitted for people: a wide frame (a plan summary, the quarter table, a rejected-options
table) becomes a narrow view of the columns a reader needs first, renamed in words, with the
provenance kept visible -- the timing column says ``measured ⚠ busy ±12%`` for a figure planned
from timings taken on a busy machine -- and every column stays one click away (the caller folds
the full frame into an "all columns" block). pandas only; formatting is :mod:`effplan.formatting`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["people_view", "HEADERS", "MAX_COLUMNS"]

#: at most this many columns in the narrow view (about 1,200 px of formatted numbers)
MAX_COLUMNS = 9

#: column -> header in words (units kept)
HEADERS = {
    "candidate": "candidate", "hardware": "hardware", "quarter_label": "quarter",
    "month_label": "month", "quarter_cost_usd": "next-quarter cost",
    "quarter_cost_usd_p10": "P10", "quarter_cost_usd_p90": "P90",
    "vs_baseline_usd": "vs baseline", "vs_baseline_rel": "vs baseline %",
    "cost_usd": "cost", "cost_usd_p10": "cost P10", "cost_usd_p90": "cost P90",
    "inference_usd": "inference (horizon)", "inference_usd_p10": "P10", "inference_usd_p90": "P90",
    "training_usd": "training", "total_usd": "total", "price_source": "price from",
    "provenance": "timing", "energy_kwh": "energy", "energy_source": "energy from",
    "co2_kg": "CO2 kg", "instances_max": "max instances", "instances": "instances",
    "latency_p95_ms": "p95 ms", "batch_size": "batch", "meets_targets": "meets targets",
    "why_not": "why not", "infeasible_reason": "why no cost", "note": "note",
    "cost_per_1k_requests_usd": "$ / 1k requests",
    "cost_per_1m_output_tokens_usd": "$ / 1M output tokens", "quality": "quality",
    "concurrency": "concurrency", "binding_constraint": "limited by", "slo_met": "meets p95",
    "device_hours": "device-hours", "throughput_items_per_s": "items/s", "rejected_because": "why not",
}

#: the columns a reader needs first, in this order (others follow only while there is room)
_FIRST = ("candidate", "hardware", "quarter_label", "month_label", "quarter", "month",
          "quarter_cost_usd", "quarter_cost_usd_p10", "quarter_cost_usd_p90", "vs_baseline_usd",
          "meets_targets", "why_not", "rejected_because")
_MONEY_LAST = ("inference_usd", "total_usd", "cost_usd", "cost_usd_p10", "cost_usd_p90",
               "cost_per_1k_requests_usd", "cost_per_1m_output_tokens_usd")
_THEN = ("provenance", "price_source", "latency_p95_ms", "instances_max", "energy_kwh", "co2_kg",
         "quality", "note", "infeasible_reason")
#: raw flags and internals a reader never needs in the narrow view
_NEVER = ("is_baseline", "rank", "feasible", "timing_unstable", "timing_spread_rel",
          "background_load", "stability_note", "catalog_name", "efficiency", "efficiency_source",
          "projected_from", "batch_neighbours", "batch_source", "months_in_quarter")


def _timing(df: pd.DataFrame) -> pd.Series:
    """``provenance``, with the busy-machine mark where the row is flagged."""
    from ..formatting import spread_pct
    from ..planning.stability import is_flagged

    prov = df["provenance"].astype(str)
    if "timing_unstable" not in df.columns:
        return prov
    bad = df["timing_unstable"].map(is_flagged)
    spread = (df["timing_spread_rel"] if "timing_spread_rel" in df.columns
              else pd.Series(float("nan"), index=df.index))
    return prov.where(~bad, prov + " ⚠ busy ±" + spread.map(spread_pct))


def people_view(df: pd.DataFrame, max_columns: int = MAX_COLUMNS) -> tuple[pd.DataFrame, list[str]]:
    """(the narrow view as formatted text, the columns left out of it). A frame already narrow
    enough keeps every column (formatted, renamed, the timing mark added)."""
    out = df.copy()
    if "provenance" in out.columns:
        out["provenance"] = _timing(out)
    quarters = [c for c in out.columns if isinstance(c, str) and len(c) >= 2 and c[0] == "Q"
                and c[1:].isdigit()]
    order = [c for c in _FIRST if c in out.columns] + quarters[:4]
    order += [c for c in _MONEY_LAST if c in out.columns and c not in order][:2]
    order += [c for c in _THEN if c in out.columns and c not in order]
    order += [c for c in out.columns if c not in order and c not in _NEVER
              and c not in quarters and not str(c).endswith(("_p10", "_p50", "_p90"))]
    if len(df.columns) <= max_columns:
        keep = list(df.columns)
    else:
        keep = order[:max_columns]
        # a column of notes that says nothing is no use
        keep = [c for c in keep if not (out[c].dtype == object and out[c].astype(str).eq("").all())]
    left_out = [str(c) for c in df.columns if c not in keep]
    from ..formatting import format_frame

    # formatted by the real names (money, kWh, per cent), then renamed in words; a True/False
    # reads yes/no
    text = format_frame(out[keep])
    for c in text.columns:
        if text[c].dtype == object:
            text[c] = [("yes" if v else "no") if isinstance(v, bool) else v for v in text[c]]
    view = text.rename(columns={c: HEADERS.get(str(c), str(c).replace("_", " "))
                                for c in keep if c not in quarters})
    return view, left_out


def is_wide(df: Any, max_columns: int = MAX_COLUMNS) -> bool:
    """More columns than a page holds."""
    return isinstance(df, pd.DataFrame) and len(df.columns) > max_columns
