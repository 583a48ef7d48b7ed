"""The unit of a column, read off its name (units live in names: ``cost_usd``, ``latency_p95_ms``,
``vs_baseline_rel``), for exports that travel without effplan: the dashboard's JSON download
carries ``{column: unit}`` for every column of its CSV, and the CSV writes numbers without float
noise (:data:`CSV_FLOAT_FORMAT`: 12 significant digits, so ``197.10000000000002`` is ``197.1``).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["column_unit", "units_of", "CSV_FLOAT_FORMAT"]

#: numbers in CSV exports: 12 significant digits (no float noise; far below any figure's doubt)
CSV_FLOAT_FORMAT = "%.12g"

_SUFFIXES = (
    ("_usd", "USD"), ("_usd_p10", "USD"), ("_usd_p50", "USD"), ("_usd_p90", "USD"),
    ("_rel", "fraction (-0.75 = 75% less; 0.12 = 12%)"), ("_pct", "fraction (0.12 = 12%)"),
    ("_ms", "milliseconds"), ("_s", "seconds"), ("_kwh", "kWh"), ("_kwh_p10", "kWh"),
    ("_kwh_p90", "kWh"), ("_wh", "Wh"), ("_j", "joules"), ("_w", "watts"), ("_kg", "kg CO2"),
    ("_kg_p10", "kg CO2"), ("_kg_p90", "kg CO2"), ("_gb", "GB (1e9 bytes)"), ("_mib", "MiB"),
    ("_per_s", "per second"), ("_flops", "FLOP"), ("_bytes", "bytes"),
)
_NAMED = {"requests": "requests", "items": "items", "instances_max": "instances",
          "instances": "instances", "batch_size": "items per batch", "rank": "rank (1 = best)",
          "concurrency": "sequences decoded together", "background_load": "CPU cores",
          "months": "months", "quarter": "plan quarter (1 = first 3 months)"}


def column_unit(name: str) -> str:
    """The unit of column ``name`` ("" for text and flags)."""
    low = str(name).lower()
    if low in _NAMED:
        return _NAMED[low]
    for suffix, unit in sorted(_SUFFIXES, key=lambda x: -len(x[0])):
        if low.endswith(suffix) or f"{suffix}_" in low and low.rsplit("_", 1)[-1] in ("p10", "p50", "p90"):
            return unit
    return ""


def units_of(columns: Iterable[str]) -> dict[str, str]:
    """``{column: unit}`` for the columns that have one."""
    return {str(c): u for c in columns if (u := column_unit(str(c)))}
