"""Multi-GPU instances and tensor parallelism in generation plans.

``effplan/data/instances.csv`` lists real cloud SKUs with 1-8 GPUs of one catalog GPU
(``gpu``, ``gpu_count``), their interconnect and their price per instance-hour, every figure with
its source and date; ``price_kind`` says ``published`` (the cloud's list price) or ``derived``
(e.g. 4 x a one-GPU shape's price, or 8 x a published per-GPU-hour figure; ``price_source`` says
how). Naming such an instance in ``effplan.plan(..., hardware=[...])`` adds it to the plan's
catalog (:func:`with_instances`) as one row whose figures are the instance's:

* ``memory_gb``, ``memory_bandwidth_gb_s``, the peaks and ``rated_power_w`` = ``gpu_count`` x the
  GPU's, ``capex_usd`` = ``gpu_count`` x the GPU's; ``price_per_hour_usd`` = the instance's;
* ``tensor_parallel`` = ``gpu_count`` (the TP degree): the weights and the KV cache are split
  across the GPUs, so each GPU reads ``1/tp`` of the bytes of a step at its own HBM bandwidth --
  the roofline of the aggregate figures above is exactly that per-GPU share;
* an all-reduce term per step (Megatron-style TP: 2 all-reduces per layer, after attention and
  after the MLP), added after the roofline like the launch floor::

      t_ar = 2 x layers x (latency + 2 (tp - 1) / tp x tokens x hidden x act_bytes
                                      / (interconnect_gb_s x 1e9 x interconnect_efficiency))

  (a ring all-reduce moves ``2 (tp-1)/tp`` of the message per GPU each way; ``tokens`` = ``c`` per
  decode step, ``c_pre x P`` for a prefill; ``act_bytes`` = 2 for 16-bit activations, 4 for
  float32; ``interconnect_gb_s`` one way per GPU, e.g. NVLink 4: 450 GB/s; efficiency 0.82 = NCCL's
  measured ring bus bandwidth on H100 over the line rate; latency ~6 us per small all-reduce).
  ``hidden_size`` and ``num_layers`` travel on the rows (from the model's config); a row without
  them gets no all-reduce term, and ``efficiency_source`` says the projection is optimistic.

The source's calibrated efficiency applies to the roofline part; a better target is never slower
than the source on that part, and the all-reduce term comes on top (so an 8-GPU instance can be
slower per token than one GPU for a small model -- it is). Known limits, said here and in the
docs: the KV heads are assumed to split evenly (``tp`` <= KV heads; beyond that real engines
replicate KV); no pipeline parallelism; one instance = one model replica.

:func:`tp_choice` reads a plan: per candidate and GPU model, the smallest TP degree that is
feasible (fits memory and meets the targets) and the cheapest feasible one.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError

__all__ = ["INSTANCE_COLUMNS", "load_instances", "instance_catalog_rows", "with_instances", "allreduce_s",
           "activation_bytes", "tp_choice", "weights_fit_hint"]

INSTANCE_COLUMNS: tuple[str, ...] = (
    "name", "aliases", "gpu", "gpu_count", "interconnect", "interconnect_gb_s", "interconnect_efficiency",
    "allreduce_latency_us", "interconnect_source", "interconnect_date", "price_per_hour_usd", "price_kind",
    "price_source", "price_url", "price_date", "notes")
PRICE_KINDS = ("published", "derived")
#: catalog columns multiplied by the GPU count for an instance row
_SCALED = ("peak_fp32_flops", "peak_tf32_flops", "peak_fp16_flops", "peak_int8_ops", "memory_gb",
           "memory_bandwidth_gb_s", "rated_power_w", "capex_usd")


def _shipped() -> Path:
    return Path(str(importlib.resources.files("effplan") / "data" / "instances.csv"))


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    return _validate(raw, path)


def _validate(raw: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [c for c in INSTANCE_COLUMNS if c not in raw.columns]
    if missing:
        raise ValidationError(missing[0], f"column missing from the instance table (needs {', '.join(INSTANCE_COLUMNS)})",
                              where=where)
    df = raw[list(INSTANCE_COLUMNS)].copy()
    for i, r in df.iterrows():
        at = f"{where} row {i + 1}"
        for col in ("name", "gpu", "price_source", "price_date", "interconnect_source"):
            if not str(r[col]).strip():
                raise ValidationError(col, "empty (every instance needs a name, its GPU and sourced, dated "
                                           "figures)", where=at)
        if str(r["price_kind"]) not in PRICE_KINDS:
            raise ValidationError("price_kind", f"{r['price_kind']!r} is not one of {PRICE_KINDS}", where=at)
        try:
            n = int(r["gpu_count"])
        except ValueError:
            raise ValidationError("gpu_count", f"{r['gpu_count']!r} is not a whole number", where=at) from None
        if n < 1:
            raise ValidationError("gpu_count", f"must be >= 1, got {n}", where=at)
        for col in ("interconnect_gb_s", "interconnect_efficiency", "allreduce_latency_us", "price_per_hour_usd"):
            s = str(r[col]).strip()
            if not s:
                if n > 1 and col != "price_per_hour_usd":
                    raise ValidationError(col, f"empty for a {n}-GPU instance (the all-reduce term needs it)",
                                          where=at)
                continue
            try:
                v = float(s)
            except ValueError:
                raise ValidationError(col, f"{s!r} is not a number", where=at) from None
            if not math.isfinite(v) or v < 0 or (col == "interconnect_efficiency" and not 0 < v <= 1):
                raise ValidationError(col, f"{v:g} is out of range", where=at)
    for col in ("interconnect_gb_s", "interconnect_efficiency", "allreduce_latency_us", "price_per_hour_usd"):
        df[col] = pd.to_numeric(df[col].replace("", np.nan), errors="coerce").astype(float)
    df["gpu_count"] = df["gpu_count"].astype(int)
    return df.reset_index(drop=True)


def load_instances(path: str | Path | pd.DataFrame | None = None) -> pd.DataFrame:
    """The validated instance table (a new copy): the shipped ``effplan/data/instances.csv``, a
    CSV path or a DataFrame with :data:`INSTANCE_COLUMNS`. A bad cell raises ValidationError
    naming the row and the column."""
    if isinstance(path, pd.DataFrame):
        return _validate(path.astype(str).replace("nan", ""), "instances DataFrame")
    p = Path(path) if path is not None else _shipped()
    return _read(str(p.resolve()), p.stat().st_mtime).copy()


def instance_catalog_rows(cat: pd.DataFrame, instances: pd.DataFrame | None = None,
                          names: Iterable[str] | None = None) -> pd.DataFrame:
    """Catalog rows for ``instances`` (all, or those named in ``names``, by name or alias,
    ignoring case): the GPU's figures x ``gpu_count``, the instance's price, and the extra columns
    ``tensor_parallel``, ``tp_gpu``, ``interconnect``, ``interconnect_gb_s``,
    ``interconnect_efficiency``, ``allreduce_latency_us``, ``price_kind``."""
    from ..refdata import catalog as _cat

    inst = load_instances() if instances is None else instances
    if names is not None:
        want = {str(n).strip().lower() for n in names}
        keys = [{inst.at[i, "name"].lower(), *(a.strip().lower() for a in inst.at[i, "aliases"].split("|") if a.strip())}
                for i in inst.index]
        inst = inst[[bool(k & want) for k in keys]]
    rows = []
    for _, r in inst.iterrows():
        gpu = _cat.find_hardware(r["gpu"], cat)
        if gpu is None:
            raise ValidationError("gpu", f"instance {r['name']!r}: GPU {r['gpu']!r} is not in the catalog")
        n = int(r["gpu_count"])
        row = gpu.copy()
        for col in _SCALED:
            row[col] = float(gpu[col]) * n
        row["name"], row["aliases"], row["kind"] = r["name"], r["aliases"], "gpu"
        row["price_per_hour_usd"] = float(r["price_per_hour_usd"])
        row["price_source"] = f"{r['price_kind']}: {r['price_source']} ({r['price_url']})"
        row["price_date"] = r["price_date"]
        for src in ("specs_source", "power_source", "capex_source"):
            row[src] = f"derived: {n} x {gpu['name']} ({gpu[src]})"
        row["notes"] = f"{n} x {gpu['name']}, tensor parallel {n} over {r['interconnect']}; {r['notes']}"
        row["tensor_parallel"] = float(n)
        row["tp_gpu"] = str(gpu["name"])
        row["interconnect"] = r["interconnect"]
        row["interconnect_gb_s"] = r["interconnect_gb_s"]
        row["interconnect_efficiency"] = r["interconnect_efficiency"]
        row["allreduce_latency_us"] = r["allreduce_latency_us"]
        row["interconnect_source"] = r["interconnect_source"]
        row["price_kind"] = r["price_kind"]
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True) if rows else cat.iloc[0:0].copy()


def with_instances(cat: pd.DataFrame, hardware: Iterable[str] | str | None) -> pd.DataFrame:
    """``cat`` plus the catalog rows of the instances named in ``hardware`` that ``cat`` does not
    already hold (unchanged when none is named)."""
    from ..refdata import catalog as _cat

    if hardware is None:
        return cat
    names = [hardware] if isinstance(hardware, str) else list(hardware)
    wanted = [h for h in names if _cat.find_hardware(h, cat) is None]
    if not wanted:
        return cat
    extra = instance_catalog_rows(cat, names=wanted)
    if extra.empty:
        return cat
    return pd.concat([cat, extra], ignore_index=True)


def activation_bytes(dtypes: np.ndarray) -> np.ndarray:
    """Bytes per activation element all-reduced: 4 for float32 rows, else 2 (16-bit activations,
    as fp8 and weight-only quantized serving also all-reduce in bf16)."""
    d = np.char.lower(np.asarray(dtypes, dtype=str))
    return np.where(np.isin(d, ("float32", "fp32", "float", "torch.float32", "")), 4.0, 2.0)


def allreduce_s(tp: Any, tokens: Any, hidden: Any, act_bytes: Any, layers: Any, link_gb_s: Any,
                efficiency: Any, latency_us: Any) -> np.ndarray:
    """Seconds of tensor-parallel all-reduces in one step (numpy-broadcast; see the module):
    ``2 x layers x (latency + 2 (tp-1)/tp x tokens x hidden x act_bytes / (link x efficiency))``;
    0 where ``tp <= 1``; NaN where a figure is unknown."""
    tp = np.asarray(tp, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ring = 2.0 * (tp - 1.0) / tp * np.asarray(tokens, float) * np.asarray(hidden, float) \
            * np.asarray(act_bytes, float) / (np.asarray(link_gb_s, float) * 1e9 * np.asarray(efficiency, float))
        t = 2.0 * np.asarray(layers, float) * (np.asarray(latency_us, float) * 1e-6 + ring)
    return np.where(tp > 1, t, 0.0)


def weights_fit_hint(param_bytes: float, gpu: str, memory_fraction: float, cat: pd.DataFrame,
                     instances: pd.DataFrame | None = None) -> str:
    """'' when the weights fit one ``gpu``; else which instance sizes of that GPU hold them."""
    from ..refdata import catalog as _cat

    row = _cat.find_hardware(gpu, cat)
    if row is None or not math.isfinite(param_bytes) or not math.isfinite(float(row["memory_gb"])):
        return ""
    one = memory_fraction * float(row["memory_gb"]) * _cat.MEMORY_GB_BYTES
    if param_bytes <= one:
        return ""
    inst = load_instances() if instances is None else instances
    same = inst[inst["gpu"] == row["name"]]
    need = math.ceil(param_bytes / one)
    fits = sorted({int(n) for n in same["gpu_count"] if int(n) >= need})
    names = ", ".join(same.loc[same["gpu_count"] >= need, "name"])
    return (f"; the weights alone ({param_bytes / 2**30:.1f} GiB) exceed {memory_fraction:g} x one {row['name']} "
            f"({one / 2**30:.1f} GiB): tensor parallelism over >= {need} GPUs needed"
            + (f" (instances: {names}; TP {', '.join(map(str, fits))})" if names else ""))


def tp_choice(plan: Any) -> pd.DataFrame:
    """Per candidate x GPU model of a generation plan: ``smallest_tp_option`` (the feasible option
    with the fewest GPUs: the smallest TP degree that fits memory and meets the targets) and
    ``cheapest_option`` (the feasible one of least cost), with their TP degree and cost."""
    s = plan.summary if hasattr(plan, "summary") else plan
    if "tensor_parallel" not in s.columns:
        raise ValidationError("plan", "not a generation plan (no tensor_parallel column)")
    f = s[s["feasible"].astype(bool)].copy()
    f["gpu"] = f["tp_gpu"].where(f["tp_gpu"].astype(str) != "", f["catalog_name"]).astype(str)
    out = []
    for (cand, gpu), g in f.groupby(["candidate", "gpu"], sort=False):
        small = g.sort_values(["tensor_parallel", "cost_usd"], kind="mergesort").iloc[0]
        cheap = g.sort_values(["cost_usd", "tensor_parallel"], kind="mergesort").iloc[0]
        out.append({"candidate": cand, "gpu": gpu, "smallest_tp_option": small["hardware"],
                    "smallest_tp": small["tensor_parallel"], "smallest_tp_cost_usd": small["cost_usd"],
                    "cheapest_option": cheap["hardware"], "cheapest_tp": cheap["tensor_parallel"],
                    "cheapest_cost_usd": cheap["cost_usd"]})
    return pd.DataFrame(out, columns=["candidate", "gpu", "smallest_tp_option", "smallest_tp",
                                      "smallest_tp_cost_usd", "cheapest_option", "cheapest_tp",
                                      "cheapest_cost_usd"])
