"""Projection to hardware you do not own: the roofline plus a per-operator launch floor,
calibrated by the local measurement and capped by published results (:func:`project`; formulas
in the docstring of :mod:`effplan.planning`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..refdata import catalog as _cat
from ..refdata import reference as _ref
from ..records.schema import MEASUREMENT_COLUMNS
from .inputs import (ASSUMED_EFFICIENCY, IDLE_POWER_FRACTION, _catalog_frame, _match_map,
                     _measurement_frame, _num, _peak_array, _resolve_targets)
from .stability import FLAG_COLUMNS
from ..units import TRAINING_FLOPS_PER_FORWARD

#: columns of the measured rows a projection carries over besides the schema's: the stability
#: flags (a projection calibrated on a not-stable row is flagged like it) and its mark
_CARRIED = tuple(c for c in (*FLAG_COLUMNS, "plan_mark") if c not in MEASUREMENT_COLUMNS)

def project(measurements: Any, hardware: Iterable[str] | str, *,
            catalog: pd.DataFrame | str | Path | None = None,
            assumed_efficiency: float = ASSUMED_EFFICIENCY, skip_measured: bool = True) -> pd.DataFrame:
    """Project measured rows onto catalog hardware by the roofline (see the module docstring).

    Returns measurement-schema rows (one per candidate x mode x batch size x target) with
    ``provenance="projected"``, ``energy_source="projected"`` and extra columns
    ``projected_from`` (measured hardware), ``efficiency`` (fraction of the roofline),
    ``efficiency_source`` (``calibrated on <hw>`` or ``assumed <x>: <why>``) and
    ``projection_note`` (non-empty when the row could not be projected -- unknown FLOPs, no peak
    for the dtype, or the measured peak memory exceeds the target's memory; those rows have NaN
    throughput), and the stability flags of the row it was calibrated on
    (:mod:`effplan.planning.stability`). Per candidate and mode one measured hardware is used: a calibrated one (in the
    catalog) first. ``skip_measured`` leaves out targets the candidate was measured on.
    """
    cat = _catalog_frame(catalog)
    eff_assumed = _num("assumed_efficiency", assumed_efficiency, lo=0, lo_open=True, hi=1)
    df = _measurement_frame(measurements, cat)
    targets = _resolve_targets(hardware, cat)
    return _project(df, targets, cat, eff_assumed, skip_measured)


def _project(df: pd.DataFrame, targets: list[str], cat: pd.DataFrame, eff_assumed: float,
             skip_measured: bool) -> pd.DataFrame:
    extra = ["projected_from", "efficiency", "efficiency_source", "projection_note"]
    carried = [c for c in _CARRIED if c in df.columns]
    if "plan_note" in df.columns:  # never project from a refused (not stable) measurement
        df = df[df["plan_note"].astype(str) == ""]
    if df.empty or not targets:
        return pd.DataFrame(columns=list(MEASUREMENT_COLUMNS) + carried + extra)
    cidx = cat.set_index("name")
    match = _match_map(df["hardware"], cat)
    src = df.copy()
    src["_cat"] = src["hardware"].map(match)
    train = (src["mode"] == "training").to_numpy()
    mult = np.where(train, TRAINING_FLOPS_PER_FORWARD, 1.0)
    flops = src["flops_per_item"].to_numpy(float) * mult
    byts = src["bytes_per_item"].to_numpy(float) * mult
    t_meas = 1.0 / src["throughput_items_per_s"].to_numpy(float)
    batch = src["batch_size"].to_numpy(float)
    # operator calls per item (training: forward + backward ~ 3x the forward's operators)
    ops_item = src["operator_calls"].to_numpy(float) * mult / batch
    overhead = _ref.kernel_overhead()
    ovh = {k: _ref.overhead_per_operator_s(k, overhead) for k in ("gpu", "cpu")}
    src_kind = np.array([("gpu" if str(d).startswith("cuda") else "cpu") if str(d) else
                         (str(cidx.at[n, "kind"]) if n else "cpu")
                         for d, n in zip(src["device"].astype(str), src["_cat"])])
    ovh_src = np.where(src_kind == "gpu", ovh["gpu"][0], ovh["cpu"][0])
    # the local launch/dispatch share: at most half of the measured time (the rest is compute)
    launch_src = np.where(np.isfinite(ops_item), np.minimum(ops_item * ovh_src, 0.5 * t_meas), 0.0)
    dtypes = src["dtype"].to_numpy(str)
    peak_src = _peak_array(cidx, src["_cat"].to_numpy(str), dtypes)
    bw_src = np.array([cidx.at[n, "memory_bandwidth_gb_s"] if n else np.nan for n in src["_cat"]]) * 1e9
    mem_term = np.where(np.isfinite(byts), byts / bw_src, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_roof_src = np.fmax(flops / peak_src, np.where(np.isfinite(mem_term), mem_term, 0.0))
        eff_meas = t_roof_src / (t_meas - launch_src)
    calibrated = np.isfinite(eff_meas) & (eff_meas > 0)
    eff = np.where(calibrated, np.minimum(eff_meas, 1.0), eff_assumed)
    srcname = src["hardware"].to_numpy(str)
    esrc = np.where(
        calibrated,
        np.where(eff_meas > 1.0,
                 np.char.add(np.char.add("calibrated on ", srcname.astype("U")),
                             " (clipped to 1.0: measured faster than the roofline; check peak/dtype)"),
                 np.char.add("calibrated on ", srcname.astype("U"))),
        np.where(src["_cat"].to_numpy(str) == "",
                 np.char.add(np.char.add(f"assumed {eff_assumed:g}: ", srcname.astype("U")),
                             " is not in the catalog"),
                 np.char.add(np.char.add(f"assumed {eff_assumed:g}: no catalog peak or FLOPs for ",
                                         srcname.astype("U")), "")))
    src["_eff"] = eff
    src["_esrc"] = esrc
    src["_calib"] = calibrated
    src["_t_meas"] = t_meas
    src["_flops"] = flops
    src["_bytes"] = byts
    src["_ops_item"] = ops_item
    # one measured hardware per candidate x mode: calibrated first, then most rows, then name
    g = src.groupby(["candidate", "mode", "hardware"], sort=False).agg(
        calib=("_calib", "mean"), n=("_calib", "size")).reset_index()
    g = g.sort_values(["candidate", "mode", "calib", "n", "hardware"],
                      ascending=[True, True, False, False, True], kind="mergesort")
    best = g.drop_duplicates(["candidate", "mode"])[["candidate", "mode", "hardware"]]
    src = src.merge(best, on=["candidate", "mode", "hardware"], how="inner")
    measured_on = set(zip(df["candidate"], df["mode"], df["hardware"].map(match)))
    gpu_targets = [t for t in targets if str(cidx.at[t, "kind"]) == "gpu"]
    ceiling = _ref.published_peak_share(cidx.loc[gpu_targets, "peak_int8_ops"].astype(float)) \
        if gpu_targets else pd.DataFrame(columns=["peak_share", "peak_share_source"])
    frames = []
    for tgt in targets:
        part = src
        if skip_measured:
            keep = [(c, m, tgt) not in measured_on for c, m in zip(part["candidate"], part["mode"])]
            part = part[np.asarray(keep, dtype=bool)]
        if part.empty:
            continue
        part = part.copy()
        row = cidx.loc[tgt]
        peak_t = _peak_array(cidx, np.full(len(part), tgt, dtype=object), part["dtype"].to_numpy(str))
        bw_t = float(row["memory_bandwidth_gb_s"]) * 1e9
        rated = float(row["rated_power_w"])
        kind = str(row["kind"])
        f = part["_flops"].to_numpy(float)
        b = part["_bytes"].to_numpy(float)
        eff_t = part["_eff"].to_numpy(float)
        esrc_t = part["_esrc"].to_numpy(str).astype(object)
        share = float(ceiling.at[tgt, "peak_share"]) if tgt in ceiling.index else np.nan
        if np.isfinite(share):
            capped = eff_t > share
            eff_t = np.where(capped, share, eff_t)
            esrc_t = np.where(capped, esrc_t + f"; capped at {share:.3g} of peak, the best "
                              f"published share ({ceiling.at[tgt, 'peak_share_source']})", esrc_t)
        ops_t = part["_ops_item"].to_numpy(float)
        launch_t = np.where(np.isfinite(ops_t), ops_t * ovh[kind][0], 0.0)
        esrc_t = np.where(np.isfinite(ops_t),
                          esrc_t + f"; + operator calls x {ovh[kind][0] * 1e6:g} us launch floor "
                                   f"({'cuda' if kind == 'gpu' else 'cpu'} row of kernel_overhead.csv)",
                          esrc_t + "; launch floor not applied: operator_calls unknown (a lower "
                                   "bound on time is missing, so this projection is optimistic)")
        with np.errstate(divide="ignore", invalid="ignore"):
            mem_t = np.where(np.isfinite(b) & np.isfinite(bw_t), b / bw_t, 0.0)
            t_t = np.fmax(f / peak_t, mem_t) / eff_t + launch_t
        note = np.full(len(part), "", dtype=object)
        for i, d in enumerate(part["dtype"].to_numpy(str)):
            runs, why = _cat.dtype_runs_on(d, kind)
            if not runs:
                note[i] = f"infeasible on {tgt}: {why}"
        note[(~np.isfinite(f) | (f <= 0)) & (note == "")] = "cannot project: flops_per_item unknown"
        col_names = [(_cat.dtype_peak_column(d) or "unknown dtype") for d in part["dtype"]]
        nopeak = ~np.isfinite(peak_t) & (note == "")
        for i in np.flatnonzero(nopeak):
            note[i] = f"cannot project: no {col_names[i]} for {tgt} in the catalog"
        mem_gb = float(row["memory_gb"])
        need_mib = part["peak_memory_mib"].to_numpy(float)
        over = np.isfinite(need_mib) & np.isfinite(mem_gb) & (need_mib > mem_gb * 1024) & (note == "")
        for i in np.flatnonzero(over):
            note[i] = f"needs {need_mib[i]:.0f} MiB > {tgt} memory {mem_gb:g} GB"
        bad = note != ""
        t_t = np.where(bad, np.nan, t_t)
        factor = t_t / part["_t_meas"].to_numpy(float)
        out = part[list(MEASUREMENT_COLUMNS) + carried].copy()
        out["projected_from"] = part["hardware"].to_numpy()
        out["hardware"] = tgt
        out["hardware_id"] = ""
        out["device"] = ""
        out["threads"] = np.nan
        for c in ("latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms"):
            out[c] = part[c].to_numpy(float) * factor
        out["latency_ci_rel"] = np.nan
        out["latency_round_spread_rel"] = np.nan   # no timing of its own: the flags carry the spread
        if "timing_unstable" in out.columns:
            shaky = out["timing_unstable"].to_numpy(bool)
            esrc_t = np.where(shaky, esrc_t + "; calibrated on a measurement that is NOT stable "
                              "(timed on a busy machine): flagged", esrc_t)
        out["repeats"] = np.nan
        out["throughput_items_per_s"] = 1.0 / t_t
        out["peak_flops_per_s"] = peak_t
        out["achieved_flops_per_s"] = f / t_t
        out["utilization"] = f / t_t / peak_t
        idle = IDLE_POWER_FRACTION.get(kind, IDLE_POWER_FRACTION["gpu"]) * rated
        out["energy_per_item_j"] = rated * t_t
        out["energy_per_batch_j"] = rated * t_t * part["batch_size"].to_numpy(float)
        out["energy_above_idle_per_item_j"] = (rated - idle) * t_t
        out["avg_power_w"] = np.where(bad, np.nan, rated)
        out["idle_power_w"] = np.where(bad, np.nan, idle)
        out["energy_j"] = np.nan
        out["energy_window_s"] = np.nan
        out["energy_source"] = "projected"
        out["provenance"] = "projected"
        out["timestamp"] = ""
        out["efficiency"] = eff_t
        out["efficiency_source"] = esrc_t
        out["projection_note"] = note
        frames.append(out)
    if not frames:
        return pd.DataFrame(columns=list(MEASUREMENT_COLUMNS) + carried + extra)
    return pd.concat(frames, ignore_index=True)



def _with_projection(df: pd.DataFrame, mode: str, targets: list[str], cat: pd.DataFrame,
                     eff_assumed: float) -> pd.DataFrame:
    """Measured rows of ``mode`` plus their projections to ``targets``, with projection columns."""
    meas = df[df["mode"] == mode].copy()
    meas["projected_from"] = ""
    meas["efficiency"] = np.nan
    meas["efficiency_source"] = np.where(meas["provenance"] == "projected", "entered as projected",
                                         "measured")
    meas["projection_note"] = ""
    # rows refused by the measurement frame (not stable) are unusable, with the reason; rows
    # included although not stable carry the mark into efficiency_source
    if "plan_note" in meas.columns:
        meas["projection_note"] = meas["plan_note"].astype(str).to_numpy()
    if "plan_mark" in meas.columns:
        mark = meas["plan_mark"].astype(str).to_numpy()
        meas["efficiency_source"] = np.where(mark != "", "measured, " + mark.astype(object),
                                             meas["efficiency_source"].to_numpy(object))
    keep = list(MEASUREMENT_COLUMNS) + [c for c in _CARRIED if c in meas.columns]
    proj = _project(meas.loc[meas["projection_note"] == "", keep], targets, cat, eff_assumed, True)
    refused = _refused_projections(meas, proj, targets, cat)
    parts = [x for x in (proj, refused) if not x.empty]
    if not parts:
        return meas.reset_index(drop=True)
    parts.insert(0, meas)
    return pd.concat(parts, ignore_index=True)


def _refused_projections(meas: pd.DataFrame, proj: pd.DataFrame, targets: list[str],
                         cat: pd.DataFrame) -> pd.DataFrame:
    """A strict plan (``allow_unstable=False``) refuses not-stable rows: the points they would
    have been projected to on each target appear as unusable rows with the reason, so a target
    hardware never silently vanishes from the plan (only its points with no usable measurement;
    a point projected from a usable row is left as it is)."""
    if not targets or "plan_note" not in meas.columns:
        return meas.iloc[0:0]
    ref = meas[meas["plan_note"].astype(str) != ""]
    if ref.empty:
        return meas.iloc[0:0]
    match = _match_map(meas["hardware"], cat)
    measured_on = set(zip(meas["candidate"], meas["mode"], meas["hardware"].map(match)))
    have = set(zip(proj["candidate"], proj["mode"], proj["batch_size"].astype(float), proj["hardware"])) \
        if not proj.empty else set()
    frames = []
    for tgt in targets:
        keep = [(c, m, tgt) not in measured_on and (c, m, float(b), tgt) not in have
                for c, m, b in zip(ref["candidate"], ref["mode"], ref["batch_size"])]
        part = ref[np.asarray(keep, dtype=bool)].drop_duplicates(["candidate", "mode", "batch_size"])
        if part.empty:
            continue
        part = part.copy()
        part["projected_from"] = part["hardware"].to_numpy()
        part["projection_note"] = [f"not projected from {h}: {n}" for h, n in
                                   zip(part["hardware"], part["plan_note"].astype(str))]
        part["hardware"] = tgt
        part["hardware_id"] = ""
        part["device"] = ""
        for c in ("latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms",
                  "latency_p99_ms", "throughput_items_per_s", "energy_per_item_j", "idle_power_w",
                  "efficiency"):
            part[c] = np.nan
        part["provenance"] = "projected"
        part["energy_source"] = "projected"
        part["efficiency_source"] = ""
        frames.append(part)
    return pd.concat(frames, ignore_index=True) if frames else meas.iloc[0:0]
