"""Serving dtypes a team may switch to without measuring them first: ``fp8`` (W8A8 on fp8 tensor
cores) and weight-only ``w8a16`` / ``w4a16`` (int8 / int4 weights, 16-bit matmuls) -- PROJECTIONS,
labelled so on every row.

:func:`serve_as` copies a candidate's generation rows as ``"<candidate> [<dtype>]"`` with
``serving_dtype`` and ``serving_param_bytes = params x weight bytes`` (:data:`SERVING_DTYPES`). A
plan projects them (``effplan.plan(..., hardware=[...])``; the source hardware itself too): the
source row is calibrated in ITS dtype as always, and on the target the roofline uses the serving
dtype's bytes and peak (``effplan.catalog.DTYPE_PEAK_COLUMN``: ``fp8`` -> the catalog's dense int8
figure, equal to the fp8 tensor-core peak on Hopper, Ada and CDNA3 -- H100 1,979 TFLOP/s, L4 242.5,
L40S 733, MI300X 2,615 -- and ``w8a16`` / ``w4a16`` -> the 16-bit peak). The KV cache stays at the
row's width. ``fp8`` on a GPU without fp8 tensor cores (A100, A10G, T4) is infeasible with the
reason. The copied rows are never planned as measured: they exist only projected.

Limits, said in ``efficiency_source``: all weights are counted at the serving width (embeddings and
the LM head often stay 16-bit, so memory is slightly low); dequantization cost and accuracy are not
modelled -- measure the quantized model (effplan.slim) before committing to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError

__all__ = ["SERVING_DTYPES", "FP8_GPUS", "serve_as", "serving_refusal"]

#: serving dtype -> bytes per weight (int4: 0.5 + a 16-bit scale and zero per group of 128)
SERVING_DTYPES: Mapping[str, float] = MappingProxyType({"fp8": 1.0, "w8a16": 1.0, "w4a16": 0.5 + 4 / 128})
#: catalog GPUs with fp8 tensor cores (Hopper, Ada Lovelace, CDNA3; vendor datasheets)
FP8_GPUS: frozenset[str] = frozenset({"H100 SXM", "H200", "L40S", "L4", "MI300X"})


def serving_refusal(dtype: str, target: pd.Series) -> str:
    """Why ``target`` (a catalog row) cannot serve ``dtype`` ('' when it can)."""
    if str(dtype) != "fp8":
        return ""
    own = str(target["name"]) if "name" in target.index else str(target.name)
    gpu = str(target.get("tp_gpu", "") or "") if "tp_gpu" in target.index else ""
    name = gpu if gpu and gpu != "nan" else own
    if str(target["kind"]) != "gpu" or name not in FP8_GPUS:
        return (f"fp8 cannot be served on {own}: it has no fp8 tensor cores (fp8 needs Hopper, "
                f"Ada or CDNA3: {', '.join(sorted(FP8_GPUS))})")
    return ""


def serve_as(measurements: Any, dtype: str, candidates: list[str] | None = None) -> pd.DataFrame:
    """Generation rows of ``measurements`` (a frame or a MeasurementSet) copied as served in
    ``dtype`` (one of :data:`SERVING_DTYPES`); concatenate them with the measurements and plan with
    ``hardware=[...]``. Needs ``params`` (or ``param_bytes`` and a 16/32-bit ``dtype``) on the rows."""
    from .inputs import _measurement_frame

    if dtype not in SERVING_DTYPES:
        raise ValidationError("dtype", f"{dtype!r} is not a serving dtype ({', '.join(SERVING_DTYPES)})")
    df = _measurement_frame(measurements)
    gen = df[df["mode"] == "generation"]
    if candidates is not None:
        gen = gen[gen["candidate"].isin(candidates)]
    if gen.empty:
        raise ValidationError("measurements", "no mode='generation' rows to serve in another dtype")
    out = gen.copy()
    params = pd.to_numeric(out["params"], errors="coerce").to_numpy(float) if "params" in out else \
        np.full(len(out), np.nan)
    width = out["dtype"].astype(str).str.lower().map({"float32": 4.0, "bfloat16": 2.0, "float16": 2.0})
    params = np.where(np.isfinite(params), params, out["param_bytes"].to_numpy(float) / width.to_numpy(float))
    if not np.isfinite(params).all():
        raise ValidationError("params", "unknown on some rows: give params (or param_bytes with a 16/32-bit "
                                        "dtype) to serve them in another dtype")
    out["serving_param_bytes"] = params * SERVING_DTYPES[dtype]
    out["serving_dtype"] = dtype
    out["candidate"] = out["candidate"].astype(str) + f" [{dtype}]"
    return out.reset_index(drop=True)
