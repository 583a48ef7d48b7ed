"""Operating points between measured batch sizes: log-log, monotone interpolation, never beyond.

For each candidate x hardware (x any other key) with measured batch sizes ``b_1 < ... < b_n``,
:func:`interpolate_batches` adds rows at batch sizes strictly between two measured neighbours
``b_i < b < b_{i+1}``: the powers of two and the geometric midpoints in between (at most
``per_gap`` per gap). Each interpolated figure ``y`` is linear in ``log b`` on ``log y``
between the neighbours (a power law through the two measured points):
``log y(b) = log y_i + (log b - log b_i) / (log b_{i+1} - log b_i) * (log y_{i+1} - log y_i)``,
applied to latencies (``latency_*_ms``), ``throughput_items_per_s`` and
``energy_per_item_j``. Latencies are first made non-decreasing in batch size (cumulative max of
the measured values), so an interpolated latency never undercuts a smaller measured batch; each
interpolated figure lies between its two neighbours (monotone within each gap). Interpolated rows carry ``batch_source="interpolated"`` and
``batch_neighbours="b_i-b_{i+1}"``; measured rows ``"measured"`` and ``""``.

Columns named in ``worst`` (the stability flags, :mod:`effplan.planning.stability`) take the
worse of the two neighbours: the larger number, or True when either is True (an interpolated
point rests on both measurements).

There is no extrapolation: nothing is added below the smallest or above the largest measured
batch size. :func:`next_batch_to_measure` names the batch size to measure to go further
(twice the largest measured).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["interpolate_batches", "next_batch_to_measure", "INTERPOLATED_COLUMNS"]

#: columns interpolated log-log (others are copied from the lower neighbour)
INTERPOLATED_COLUMNS: tuple[str, ...] = (
    "latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
    "throughput_items_per_s", "energy_per_item_j",
)
_LATENCY = ("latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms",
            "latency_p99_ms")


def _grid(lo: int, hi: int, per_gap: int) -> list[int]:
    """Integer batch sizes strictly between lo and hi: powers of two, then geometric points."""
    pts = {2 ** k for k in range(int(np.log2(max(lo, 1))) + 1, int(np.log2(hi)) + 1)}
    n = max(per_gap, 1)
    pts.update(int(round(lo * (hi / lo) ** (j / (n + 1)))) for j in range(1, n + 1))
    return sorted(p for p in pts if lo < p < hi)[: max(per_gap * 2, 1)]


def interpolate_batches(rows: pd.DataFrame, keys: Sequence[str] = ("candidate", "hardware"),
                        per_gap: int = 4, *, columns: Sequence[str] = INTERPOLATED_COLUMNS,
                        latency_columns: Sequence[str] = _LATENCY,
                        required: Sequence[str] = ("throughput_items_per_s", "latency_p95_ms"),
                        worst: Sequence[str] = ("timing_unstable", "timing_spread_rel",
                                                "background_load")) -> pd.DataFrame:
    """``rows`` (measured or projected, one per key x batch size) plus interpolated rows.

    Adds ``batch_source`` and ``batch_neighbours`` columns. Rows whose ``required`` figures
    (throughput and p95 latency) are not positive finite numbers are kept as they are and never
    used as neighbours. ``columns`` are interpolated log-log and ``latency_columns`` (a subset)
    first made non-decreasing in batch size; the defaults are the inference columns, generation
    planning passes its TTFT / TPOT / per-token energy columns (batch size = concurrency).
    ``worst`` columns (present ones) take the worse of both neighbours (see the module docstring).
    """
    keys = list(keys)
    out = rows.copy()
    out["batch_source"] = "measured"
    out["batch_neighbours"] = ""
    if out.empty:
        return out
    good = np.isfinite(out["batch_size"].to_numpy(float))
    for c in required:
        v = out[c].to_numpy(float)
        good &= np.isfinite(v) & (v > 0)
    if "projection_note" in out.columns:
        good &= out["projection_note"].fillna("").to_numpy(str) == ""
    usable = out[good].drop_duplicates(keys + ["batch_size"], keep="last") \
        .sort_values(keys + ["batch_size"], kind="mergesort").reset_index(drop=True)
    if len(usable) < 2:
        return out
    cols = [c for c in columns if c in usable.columns]
    b = usable["batch_size"].to_numpy(float)
    grp = usable.groupby(keys, sort=False).ngroup().to_numpy()
    vals = {c: usable[c].to_numpy(float) for c in cols}
    # latency never falls with batch size: cumulative max within each group
    for c in latency_columns:
        if c in vals:
            v = pd.Series(vals[c]).groupby(grp).cummax().to_numpy()
            vals[c] = np.where(np.isfinite(vals[c]), v, vals[c])
    pair = np.flatnonzero(grp[:-1] == grp[1:])        # row j and j + 1: neighbours in one group
    lo_idx, pts = [], []
    grids: dict[tuple[int, int], list[int]] = {}   # one grid per distinct gap (few batch sizes repeat)
    for j, lo, hi in zip(pair.tolist(), b[pair].astype(int).tolist(), b[pair + 1].astype(int).tolist()):
        g = grids.get((lo, hi))
        if g is None:
            g = grids[(lo, hi)] = _grid(lo, hi, per_gap)
        lo_idx += [j] * len(g)
        pts += g
    if not pts:
        return out
    lo_idx = np.asarray(lo_idx)
    hi_idx = lo_idx + 1
    bb = np.asarray(pts, dtype=float)
    x = (np.log(bb) - np.log(b[lo_idx])) / (np.log(b[hi_idx]) - np.log(b[lo_idx]))
    block = usable.iloc[lo_idx].reset_index(drop=True)
    block["batch_size"] = bb.astype(usable["batch_size"].dtype) \
        if usable["batch_size"].dtype.kind in "iu" else bb
    with np.errstate(divide="ignore", invalid="ignore"):
        for c in cols:
            y0, y1 = vals[c][lo_idx], vals[c][hi_idx]
            okv = np.isfinite(y0) & np.isfinite(y1) & (y0 > 0) & (y1 > 0)
            block[c] = np.where(okv, np.exp(np.log(y0) + x * (np.log(y1) - np.log(y0))),
                                # 0 at both neighbours stays 0 (e.g. a prompt-token energy counted
                                # inside the output-token figure); anything else unknown is NaN
                                np.where((y0 == 0) & (y1 == 0), 0.0, np.nan))
    for c in worst:
        if c not in usable.columns:
            continue
        if usable[c].dtype.kind == "b":
            v = usable[c].to_numpy(bool)
            block[c] = v[lo_idx] | v[hi_idx]
        else:
            v = pd.to_numeric(usable[c], errors="coerce").to_numpy(float)
            with np.errstate(invalid="ignore"):
                block[c] = np.fmax(v[lo_idx], v[hi_idx])
    if "energy_per_batch_j" in block.columns and "energy_per_item_j" in block.columns:
        block["energy_per_batch_j"] = block["energy_per_item_j"] * block["batch_size"]
    block["batch_source"] = "interpolated"
    block["batch_neighbours"] = [f"{int(b[i])}-{int(b[i + 1])}" for i in lo_idx]
    res = pd.concat([out, block], ignore_index=True)
    # groups keep their first-seen order (candidates, then hardware as given); batch sizes ascend
    first = res.groupby(keys, sort=False).ngroup()
    order = np.lexsort((res["batch_size"].to_numpy(float), first.to_numpy()))
    return res.iloc[order].reset_index(drop=True)


def next_batch_to_measure(largest_measured: float) -> int:
    """The batch size to measure to go past the largest measured one (twice it)."""
    return int(2 * largest_measured)
