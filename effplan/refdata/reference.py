"""Reference data for projections: per-operator overhead and published accelerator throughputs.

Two shipped tables, loaded through :mod:`importlib.resources`, each row with a ``source`` and a
``date`` column:

``effplan/data/kernel_overhead.csv``
    Per-operator launch + dispatch overhead of eager PyTorch per hardware family (``cuda``,
    ``cpu``), in microseconds, with a low-high range. Projected latency adds
    ``operators x overhead`` (operators from :attr:`effplan.flops.FlopCount.operator_calls`) to
    the roofline time: a GPU cannot run a forward pass faster than it can launch its kernels.
``effplan/data/training_utilization.csv``
    Model FLOPs utilization (achieved / peak FLOP/s) of training, as a low-high range by model
    size (parameters), with sources (PaLM's MFU table, Llama 3, nanoGPT, this project's own
    CPU runs). Used only where a candidate has no measured training step to calibrate from:
    :func:`training_utilization_range`.
``effplan/data/mlperf_inference.csv``
    Published MLPerf Inference (closed division) results per accelerator: ResNet-50 and
    BERT-99, offline and server scenarios, with round, submitter, system and the results file.
    Used as a ceiling: :func:`published_peak_share` is the best share of the accelerator's int8
    peak that a published, vendor-tuned result reached (``throughput x FLOPs per item / peak``,
    rows whose FLOPs per item are exact); a projection never assumes a higher share.
``effplan/data/scaling_laws.csv``
    Published compute-optimal scaling-law fits ``L(N, D) = E + A/N^alpha + B/D^beta`` (loss in
    nats per token, ``N`` parameters, ``D`` training tokens, ``C = 6ND`` FLOPs): Hoffmann et al.
    2022 (Chinchilla, Approach 3) and the Epoch AI replication's refit (Besiroglu et al. 2024),
    with the parameter and token ranges each was fitted on. Used by
    :func:`effplan.planning.compute_optimal` through :func:`scaling_law`.

Units are in column names (``overhead_us``, ``throughput_items_per_s``, ``flops_per_item``,
FLOPs = 2 x MACs). The loaders validate columns, numbers and the presence of source and date
and raise :class:`~effplan.errors.ValidationError` naming the bad field.
"""

from __future__ import annotations

import importlib.resources
import math
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ValidationError

__all__ = [
    "kernel_overhead",
    "mlperf_inference",
    "overhead_per_operator_s",
    "published_peak_share",
    "scaling_law",
    "scaling_laws",
    "training_utilization",
    "training_utilization_range",
]

KERNEL_OVERHEAD_COLUMNS = ("family", "framework", "overhead_us", "overhead_low_us",
                           "overhead_high_us", "source", "date", "notes")
MLPERF_COLUMNS = ("accelerator", "accelerators_in_system", "model", "model_class", "scenario",
                  "throughput_items_per_s", "precision", "flops_per_item", "flops_basis", "round",
                  "division", "submitter", "system", "source", "date", "notes")

TRAINING_UTILIZATION_COLUMNS = ("params_min", "params_max", "mfu_low", "mfu_high", "source",
                                "date", "notes")

SCALING_LAW_COLUMNS = ("fit", "E", "A", "B", "alpha", "beta", "loss_unit", "params_min", "params_max",
                       "tokens_min", "tokens_max", "source", "date", "notes")

#: catalog ``kind`` -> overhead family
_KIND_FAMILY = {"gpu": "cuda", "cpu": "cpu"}


def _shipped(name: str) -> Path:
    return Path(str(importlib.resources.files("effplan") / "data" / name))


def _load(path: str | PathLike | None, name: str, columns: tuple[str, ...],
          numeric: tuple[str, ...], where: str) -> pd.DataFrame:
    src = Path(path) if path is not None else _shipped(name)
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValidationError("columns", f"{src.name} lacks {missing}; expected {list(columns)}",
                              where=where)
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = df.index[values.isna() | (values < 0)].tolist()
        if bad:
            raise ValidationError(col, f"{src.name} row(s) {[b + 2 for b in bad]} need a "
                                  f"non-negative number, got {df.loc[bad[0], col]!r}", where=where)
        df[col] = values.astype(float)
    for col in ("source", "date"):
        empty = df.index[df[col].str.strip() == ""].tolist()
        if empty:
            raise ValidationError(col, f"{src.name} row(s) {[e + 2 for e in empty]} have no "
                                  f"{col}: every figure needs one", where=where)
    return df[list(columns)].reset_index(drop=True)


def kernel_overhead(path: str | PathLike | None = None) -> pd.DataFrame:
    """Per-operator overhead per hardware family (``overhead_us`` and its low/high range)."""
    df = _load(path, "kernel_overhead.csv", KERNEL_OVERHEAD_COLUMNS,
               ("overhead_us", "overhead_low_us", "overhead_high_us"), "kernel_overhead")
    bad = df.index[~((df["overhead_low_us"] <= df["overhead_us"])
                     & (df["overhead_us"] <= df["overhead_high_us"]))].tolist()
    if bad:
        raise ValidationError("overhead_us", f"row(s) {[b + 2 for b in bad]}: need "
                              "overhead_low_us <= overhead_us <= overhead_high_us",
                              where="kernel_overhead")
    return df


def mlperf_inference(path: str | PathLike | None = None) -> pd.DataFrame:
    """Published MLPerf Inference throughputs per accelerator (one row per result)."""
    df = _load(path, "mlperf_inference.csv", MLPERF_COLUMNS,
               ("accelerators_in_system", "throughput_items_per_s", "flops_per_item"),
               "mlperf_inference")
    bad = df.index[~df["flops_basis"].isin(["exact", "upper-bound"])].tolist()
    if bad:
        raise ValidationError("flops_basis", f"row(s) {[b + 2 for b in bad]}: must be 'exact' or "
                              "'upper-bound'", where="mlperf_inference")
    df["throughput_per_accelerator_items_per_s"] = (df["throughput_items_per_s"]
                                                    / df["accelerators_in_system"])
    return df


def overhead_per_operator_s(kind: str, table: pd.DataFrame | None = None
                            ) -> tuple[float, float, float, str]:
    """(central, low, high) per-operator overhead in seconds and its source, for a catalog
    ``kind`` (``"gpu"`` -> the ``cuda`` row, ``"cpu"`` -> ``cpu``)."""
    family = _KIND_FAMILY.get(str(kind).lower())
    if family is None:
        raise ValidationError("kind", f"must be one of {sorted(_KIND_FAMILY)}, got {kind!r}",
                              where="overhead_per_operator_s")
    tab = kernel_overhead() if table is None else table
    rows = tab[tab["family"] == family]
    if rows.empty:
        raise ValidationError("family", f"kernel_overhead.csv has no {family!r} row",
                              where="overhead_per_operator_s")
    r = rows.iloc[0]
    return (float(r["overhead_us"]) * 1e-6, float(r["overhead_low_us"]) * 1e-6,
            float(r["overhead_high_us"]) * 1e-6, f"{r['source']} ({r['date']})")


def published_peak_share(int8_peak_ops: pd.Series, table: pd.DataFrame | None = None
                         ) -> pd.DataFrame:
    """Best published share of each accelerator's int8 peak, as a ceiling for projections.

    ``int8_peak_ops``: catalog name -> dense int8 peak (ops/s). Returns one row per name with
    ``peak_share`` (max over the accelerator's rows with exact FLOPs per item of
    ``throughput_per_accelerator x flops_per_item / int8 peak``) and ``peak_share_source``. A
    GPU with no published row gets the highest share published for any catalog GPU, labelled so;
    NaN where the int8 peak is unknown.
    """
    tab = mlperf_inference() if table is None else table
    exact = tab[tab["flops_basis"] == "exact"]
    out = []
    for name, peak in int8_peak_ops.items():
        rows = exact[exact["accelerator"] == name]
        if rows.empty or not (isinstance(peak, (int, float)) and math.isfinite(peak) and peak > 0):
            out.append({"name": name, "peak_share": np.nan, "peak_share_source": ""})
            continue
        achieved = rows["throughput_per_accelerator_items_per_s"] * rows["flops_per_item"]
        best = rows.loc[achieved.idxmax()]
        out.append({"name": name, "peak_share": float(achieved.max() / peak),
                    "peak_share_source": f"{best['round']} {best['submitter']} {best['model']} "
                                         f"{best['scenario']} on {name}: {best['source']}"})
    res = pd.DataFrame(out, columns=["name", "peak_share", "peak_share_source"])
    known = res["peak_share"].dropna()
    if len(known):
        top = res.loc[known.idxmax()]
        fill = res["peak_share"].isna() & pd.Series(
            [isinstance(p, (int, float)) and math.isfinite(p) and p > 0
             for p in int8_peak_ops.values], index=res.index)
        res.loc[fill, "peak_share"] = top["peak_share"]
        res.loc[fill, "peak_share_source"] = (f"no published result for this accelerator; the "
                                              f"highest published share ({top['name']}) is used")
    return res.set_index("name")


def training_utilization(path: str | PathLike | None = None) -> pd.DataFrame:
    """Training MFU ranges by model size (``params_min <= params < params_max``)."""
    df = _load(path, "training_utilization.csv", TRAINING_UTILIZATION_COLUMNS,
               ("params_min", "params_max", "mfu_low", "mfu_high"), "training_utilization")
    bad = df.index[~((df["mfu_low"] > 0) & (df["mfu_low"] <= df["mfu_high"])
                     & (df["mfu_high"] <= 1) & (df["params_min"] < df["params_max"]))].tolist()
    if bad:
        raise ValidationError("mfu_low", f"row(s) {[b + 2 for b in bad]}: need 0 < mfu_low <= "
                              "mfu_high <= 1 and params_min < params_max",
                              where="training_utilization")
    return df.sort_values("params_min", ignore_index=True)


def training_utilization_range(params: object, table: pd.DataFrame | None = None
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(low, central, high, source) training MFU for each parameter count.

    ``central`` is the geometric mean of low and high (the ranges span up to an order of
    magnitude). Parameter counts outside every row, or unknown (NaN), get NaN and an empty
    source.
    """
    tab = training_utilization() if table is None else table
    p = np.atleast_1d(np.asarray(params, dtype=float))
    lo = np.full(p.shape, np.nan)
    hi = np.full(p.shape, np.nan)
    src = np.full(p.shape, "", dtype=object)
    for _, r in tab.iterrows():
        m = (p >= r["params_min"]) & (p < r["params_max"])
        lo[m], hi[m] = r["mfu_low"], r["mfu_high"]
        src[m] = (f"{r['mfu_low']:g}-{r['mfu_high']:g} MFU for "
                  f"{r['params_min']:.0e}-{r['params_max']:.0e} parameters: {r['source']} "
                  f"({r['date']})")
    return lo, np.sqrt(lo * hi), hi, src


def scaling_laws(path: str | PathLike | None = None) -> pd.DataFrame:
    """Published scaling-law fits, one row per ``fit`` name (``E, A, B, alpha, beta`` > 0, the
    exponents below 1, ``params_min < params_max``, ``tokens_min < tokens_max``, unique names)."""
    df = _load(path, "scaling_laws.csv", SCALING_LAW_COLUMNS,
               ("E", "A", "B", "alpha", "beta", "params_min", "params_max", "tokens_min", "tokens_max"),
               "scaling_laws")
    bad = df.index[~((df["A"] > 0) & (df["B"] > 0) & (df["alpha"] > 0) & (df["alpha"] < 1)
                     & (df["beta"] > 0) & (df["beta"] < 1) & (df["params_min"] < df["params_max"])
                     & (df["tokens_min"] < df["tokens_max"]))].tolist()
    if bad:
        raise ValidationError("alpha", f"row(s) {[b + 2 for b in bad]}: need A, B > 0, 0 < alpha, beta < 1, "
                              "params_min < params_max and tokens_min < tokens_max", where="scaling_laws")
    dup = df.index[df["fit"].str.strip().str.lower().duplicated()].tolist()
    if dup or (df["fit"].str.strip() == "").any():
        raise ValidationError("fit", f"row(s) {[d + 2 for d in dup] or 'with an empty name'}: every fit "
                              "needs a unique, non-empty name", where="scaling_laws")
    return df


def scaling_law(fit: str, table: pd.DataFrame | None = None) -> pd.Series:
    """The row of :func:`scaling_laws` named ``fit`` (ignoring case), or ValidationError('fit')
    listing the names there are."""
    tab = scaling_laws() if table is None else table
    hit = tab[tab["fit"].str.strip().str.lower() == str(fit).strip().lower()]
    if hit.empty:
        raise ValidationError("fit", f"{fit!r} is not a scaling-law fit; choose one of "
                              f"{tab['fit'].tolist()}", where="scaling_laws")
    return hit.iloc[0]
