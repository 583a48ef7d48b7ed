"""The tidy measurements table: the one contract between measuring and planning.

One row per candidate x hardware x mode x batch size. Every column's unit is in its name.
``effplan.measure`` produces it, ``effplan.store`` writes/reads it, ``effplan.plan`` consumes it,
and a user may type rows in by hand (``provenance="entered"``).

Conventions
-----------
* FLOPs = 2 x multiply-accumulates (see :mod:`effplan.flops`).
* Latency columns are the wall time of ONE batch: a forward pass for ``mode="inference"``, a
  forward + backward + optimizer step for ``mode="training"``.
* ``throughput_items_per_s = batch_size / (latency_p50_ms / 1000)``.
* ``energy_per_item_j`` is TOTAL energy (idle included) divided by the items actually run;
  ``idle_power_w`` is measured (or estimated) before the run and reported apart.
* ``provenance`` is ``measured`` | ``estimated`` | ``projected`` | ``entered`` for the row's
  timing figures; ``energy_source`` says how energy was got (``nvml-counter``, ``nvml-power``,
  ``rapl``, ``estimated-tdp``, ``entered``, ``projected``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .errors import ValidationError

SCHEMA_VERSION = 1

#: column -> (dtype kind, description). Order is the column order of ``Measurements.to_frame()``.
MEASUREMENT_COLUMNS: dict[str, tuple[str, str]] = {
    "candidate": ("str", "candidate name"),
    "hardware": ("str", "hardware name (catalog name where known, else the detected model)"),
    "hardware_id": ("str", "stable id of the machine measured on (hash of host + devices)"),
    "mode": ("str", "'inference' or 'training'"),
    "batch_size": ("int", "items per batch"),
    "device": ("str", "torch device measured on, e.g. 'cpu', 'cuda:0'"),
    "dtype": ("str", "parameter dtype, e.g. 'float32', 'qint8'"),
    "threads": ("int", "torch CPU threads used during the measurement"),
    "latency_mean_ms": ("float", "mean batch latency, ms"),
    "latency_p50_ms": ("float", "median batch latency, ms"),
    "latency_p90_ms": ("float", "90th percentile batch latency, ms"),
    "latency_p95_ms": ("float", "95th percentile batch latency, ms"),
    "latency_p99_ms": ("float", "99th percentile batch latency, ms"),
    "latency_ci_rel": ("float", "relative half-width of the ~95% CI of the median"),
    "repeats": ("int", "number of timed batches"),
    "rounds": ("int", "separate timing rounds the samples came from"),
    "stable": ("bool", "True only when the rounds agree, no stalls were seen and the CI target was "
                       "met; False = do not trust the latency figures (plan() leaves the row out); "
                       "empty = unknown (typed in, or stored by an older effplan)"),
    "stop_reason": ("str", "why timing stopped: ci-met | time-budget | unstable (empty if unknown)"),
    "timing_note": ("str", "what made the point not stable (stalls, two modes, rounds disagree...)"),
    "background_load": ("float", "CPU cores' worth of work by OTHER processes while timing (0 = quiet)"),
    "throughput_items_per_s": ("float", "items per second at this batch size"),
    "peak_memory_mib": ("float", "peak memory of the point, MiB (2**20 bytes); what it covers: "
                                 "peak_memory_source"),
    "peak_memory_source": ("str", "what the peak memory is: 'cuda-max-allocated' (torch.cuda.max_memory_"
                                  "allocated, reset per point), 'worker-peak-rss-minus-baseline' (peak "
                                  "resident set of the point's worker process minus its resident set "
                                  "after imports), 'process-peak-rss-minus-baseline' (the same, measured "
                                  "in this process) or 'process-peak-rss-lifetime' (whole-process "
                                  "high-water mark: no per-point reset possible)"),
    "params": ("int", "number of parameters"),
    "param_bytes": ("float", "bytes of parameters and buffers"),
    "bytes_per_item": ("float", "bytes moved per item: param_bytes / batch_size + input/output bytes"),
    "flops_per_item": ("float", "forward FLOPs per item (2 x MACs)"),
    "flops_engine": ("str", "'fvcore' or 'dispatch'"),
    "flops_coverage": ("float", "share of operator calls counted (1.0 = all)"),
    "achieved_flops_per_s": ("float", "FLOPs per second achieved (training: 3 x forward)"),
    "peak_flops_per_s": ("float", "catalog peak FLOP/s for this hardware and dtype, NaN if unknown"),
    "utilization": ("float", "achieved / peak FLOP/s, NaN if peak unknown"),
    "energy_j": ("float", "total energy over the measured energy window, J"),
    "energy_window_s": ("float", "length of the energy window, s"),
    "energy_per_item_j": ("float", "total energy per item, J (idle included)"),
    "energy_per_batch_j": ("float", "total energy per batch (training: per step), J"),
    "energy_above_idle_per_item_j": ("float", "energy per item above idle power, J"),
    "avg_power_w": ("float", "average power over the energy window, W"),
    "idle_power_w": ("float", "idle power measured (or estimated) before the run, W"),
    "energy_source": ("str", "nvml-counter | nvml-power | rapl | estimated-tdp | entered | projected "
                             "| none (energy not measured)"),
    "energy_note": ("str", "why energy fell back to a lower-fidelity source, if it did"),
    "provenance": ("str", "measured | estimated | projected | entered"),
    "quality": ("float", "candidate quality score (e.g. held-out accuracy), NaN if none"),
    "tags": ("str", "comma-separated candidate tags"),
    "isolation": ("str", "'worker' (own worker process) or 'in-process: <why>'"),
    "status": ("str", "'ok' or 'error'"),
    "error": ("str", "error message when status == 'error'"),
    "timestamp": ("str", "ISO-8601 UTC time the point finished"),
    "torch_version": ("str", "torch version"),
    "schema_version": ("int", "version of this schema"),
}

#: What the planner needs at minimum (a hand-typed table may hold only these).
PLAN_REQUIRED_COLUMNS: tuple[str, ...] = (
    "candidate",
    "hardware",
    "mode",
    "batch_size",
    "latency_p95_ms",
    "throughput_items_per_s",
    "energy_per_item_j",
    "idle_power_w",
)

PROVENANCES = ("measured", "estimated", "projected", "entered")
ENERGY_SOURCES = ("nvml-counter", "nvml-power", "rapl", "estimated-tdp", "entered", "projected", "none")
MEASURED_ENERGY_SOURCES = ("nvml-counter", "nvml-power", "rapl")
MODES = ("inference", "training")
#: ``stop_reason`` values (see :mod:`effplan.timing`); only ``ci-met`` is stable.
STOP_REASONS = ("ci-met", "time-budget", "unstable")

_DEFAULTS: Mapping[str, object] = {
    "hardware_id": "",
    "device": "",
    "dtype": "",
    "peak_memory_source": "",
    "flops_engine": "",
    "tags": "",
    "status": "ok",
    "error": "",
    "timestamp": "",
    "torch_version": "",
    "schema_version": SCHEMA_VERSION,
}


#: Columns renamed since they were first written: old name -> current name (read on load).
LEGACY_COLUMN_NAMES: Mapping[str, str] = {"memory_source": "peak_memory_source",
                                          "peak_memory_mb": "peak_memory_mib"}


def rename_legacy_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with columns of :data:`LEGACY_COLUMN_NAMES` under their current names (a current
    column, when both are present, wins)."""
    old = {o: n for o, n in LEGACY_COLUMN_NAMES.items() if o in df.columns and n not in df.columns}
    drop = [o for o, n in LEGACY_COLUMN_NAMES.items() if o in df.columns and n in df.columns]
    return df.rename(columns=old).drop(columns=drop) if (old or drop) else df


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def normalize_measurements(df: pd.DataFrame, *, required: tuple[str, ...] = PLAN_REQUIRED_COLUMNS,
                           source: str = "measurements") -> pd.DataFrame:
    """Validate a measurements frame and return it with every schema column present.

    Missing optional columns are filled (NaN for numbers, sensible strings otherwise). A row
    with no ``provenance`` or ``energy_source`` (column absent or cell empty) was typed in by
    hand: both become ``"entered"``. A missing required column, a non-numeric or negative
    number, an unknown ``mode`` or ``provenance`` raises :class:`ValidationError` naming the
    column and the first bad row. Rows with ``status == "error"`` may hold NaN figures.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValidationError("measurements", f"expected a pandas DataFrame, got {type(df).__name__}")
    df = rename_legacy_columns(df)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValidationError(missing[0], f"required column missing (missing: {', '.join(missing)})",
                              where=source)
    n = len(df)
    cols: dict[str, object] = {}
    status = (df["status"].fillna("ok").astype(str).to_numpy() if "status" in df.columns
              else np.full(n, "ok", dtype=object))
    ok = status == "ok"
    for col, (kind, _) in MEASUREMENT_COLUMNS.items():
        if col not in df.columns:
            if col in ("provenance", "energy_source"):
                cols[col] = np.full(n, "entered", dtype=object)
            elif kind == "str":
                cols[col] = np.full(n, _DEFAULTS.get(col, ""), dtype=object)
            elif col in _DEFAULTS:
                cols[col] = np.full(n, _DEFAULTS[col])
            else:
                cols[col] = np.full(n, np.nan)
            continue
        raw = df[col]
        if kind == "str":
            fill = "entered" if col in ("provenance", "energy_source") else _DEFAULTS.get(col, "")
            vals = raw.astype(object).where(raw.notna(), fill).astype(str)
            if col in ("provenance", "energy_source"):
                vals = vals.where(vals.str.strip() != "", fill)
            cols[col] = vals.to_numpy(dtype=object)
            continue
        vals = pd.to_numeric(raw, errors="coerce")
        arr = vals.to_numpy(dtype=float, na_value=np.nan)
        bad = np.isnan(arr) & raw.notna().to_numpy() & ok
        if bad.any():
            i = _first_bad(bad)
            raise ValidationError(col, f"non-numeric value {raw.iloc[i]!r}", where=f"{source} row {i}")
        with np.errstate(invalid="ignore"):
            neg = (arr < 0) & ok
        if neg.any():
            i = _first_bad(neg)
            raise ValidationError(col, f"negative value {arr[i]!r}", where=f"{source} row {i}")
        if col in required and (np.isnan(arr) & ok).any():
            i = _first_bad(np.isnan(arr) & ok)
            raise ValidationError(col, "missing value in a required column", where=f"{source} row {i}")
        cols[col] = arr.astype(np.int64) if kind == "int" and not np.isnan(arr).any() else arr
    for col, allowed in (("mode", MODES), ("provenance", PROVENANCES)):
        bad = ~np.isin(cols[col], allowed)
        if bad.any():
            i = _first_bad(bad)
            raise ValidationError(col, f"{cols[col][i]!r} is not one of {allowed}",
                                  where=f"{source} row {i}")
    out = _bool_columns(pd.DataFrame(cols))
    for col in df.columns:
        if col not in MEASUREMENT_COLUMNS:
            out[col] = df[col].to_numpy()
    return out


def _bool_columns(out: pd.DataFrame) -> pd.DataFrame:
    """Columns of kind ``bool`` as pandas' nullable boolean (missing = unknown, never False)."""
    for col, (kind, _) in MEASUREMENT_COLUMNS.items():
        if kind == "bool" and col in out.columns:
            vals = pd.to_numeric(out[col], errors="coerce")
            out[col] = pd.array([pd.NA if v != v else bool(v) for v in vals], dtype="boolean")
    return out
