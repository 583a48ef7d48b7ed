"""The hardware catalog: peak FLOP/s, memory, power, price and capex of hardware you may rent or buy.

The shipped table is ``effplan/data/hardware.csv`` (loaded through :mod:`importlib.resources`).
Every figure has a source and a date column next to it:

==========================================================  ===============================
figures                                                     source / date columns
==========================================================  ===============================
``peak_fp32_flops``, ``peak_tf32_flops``, ``peak_fp16_flops``,  ``specs_source``, ``specs_date``
``peak_int8_ops``, ``memory_gb``, ``memory_bandwidth_gb_s``
``rated_power_w``                                            ``power_source``, ``power_date``
``price_per_hour_usd``                                       ``price_source``, ``price_date``
``capex_usd``                                                ``capex_source``, ``capex_date``
==========================================================  ===============================

Conventions
-----------
* Peak figures are **dense** (no structured sparsity), per device (GPU rows) or per instance
  (CPU rows), in FLOP/s (``peak_int8_ops`` in integer ops/s). FLOPs = 2 x MACs.
* ``peak_fp16_flops`` is the fp16/bf16 tensor-core (matrix) peak; ``peak_fp32_flops`` the
  non-tensor fp32 peak; ``peak_tf32_flops`` the TF32 tensor-core peak.
* Prices are typical public on-demand prices per device-hour (a multi-GPU instance's price
  divided by its GPU count); they change often -- override them with :class:`effplan.Prices`.
* ``capex_usd`` is a rough purchase price per device for the on-premises mode.
* CPU rows are cloud instances; ``cores`` is their physical core count. The row named
  ``Generic CPU (per core)`` holds per-core figures used to estimate an unknown CPU.
* An empty cell means "unknown" (NaN), e.g. the int8 peak of a CPU without a published figure
  or TF32 on a T4 (not supported). Empty cells are allowed in the figure columns only; a figure
  that is present must be a non-negative number, and must have its source and date.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import math
import re
import warnings
from os import PathLike
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from ..errors import CatalogFallbackWarning, UnknownHardwareError, ValidationError
from ..records.schema import check_numbers

#: figure column -> (source column, date column)
FIGURE_SOURCES: dict[str, tuple[str, str]] = {
    "peak_fp32_flops": ("specs_source", "specs_date"),
    "peak_tf32_flops": ("specs_source", "specs_date"),
    "peak_fp16_flops": ("specs_source", "specs_date"),
    "peak_int8_ops": ("specs_source", "specs_date"),
    "memory_gb": ("specs_source", "specs_date"),
    "memory_bandwidth_gb_s": ("specs_source", "specs_date"),
    "rated_power_w": ("power_source", "power_date"),
    "price_per_hour_usd": ("price_source", "price_date"),
    "capex_usd": ("capex_source", "capex_date"),
}

#: Assumed share of rated power a device draws when idle, by kind. Used where idle power cannot
#: be measured: the ``estimated-tdp`` energy backend and projection to catalog hardware. Server
#: CPUs idle at roughly a quarter to a third of TDP, data-centre GPUs at roughly 10-20% of their
#: board power (vendor idle figures, e.g. H100 SXM ~70-100 W of 700 W) -- an assumption, labelled
#: as such wherever it is used.
IDLE_POWER_FRACTION: Mapping[str, float] = MappingProxyType({"gpu": 0.15, "cpu": 0.3})

#: figures that must be > 0 when present (a peak or bandwidth of 0 would make every row
#: "infeasible" for the wrong reason); the others must be >= 0
POSITIVE_COLUMNS: tuple[str, ...] = ("cores", "peak_fp32_flops", "peak_tf32_flops", "peak_fp16_flops",
                                     "peak_int8_ops", "memory_gb", "memory_bandwidth_gb_s")

#: numeric columns (NaN allowed = unknown), in file order
NUMERIC_COLUMNS: tuple[str, ...] = ("cores",) + tuple(FIGURE_SOURCES)

#: text columns that must be present (``aliases`` and ``notes`` may be empty)
TEXT_COLUMNS: tuple[str, ...] = (
    "name", "kind", "aliases", "specs_source", "specs_date", "power_source", "power_date",
    "price_source", "price_date", "capex_source", "capex_date", "notes",
)

CATALOG_COLUMNS: tuple[str, ...] = ("name", "kind", "aliases") + NUMERIC_COLUMNS + TEXT_COLUMNS[3:]

KINDS = ("gpu", "cpu")

#: bytes in one catalog ``memory_gb``: the vendors' "GB" of HBM are GiB (an H100 80GB holds
#: 81,559 MiB as nvidia-smi reports it, an A100 80GB 81,920 MiB), so memory checks use 2**30
MEMORY_GB_BYTES = 2 ** 30

#: name of the catalog row with per-core figures for an unknown CPU
GENERIC_CPU = "Generic CPU (per core)"

#: dtype (as torch spells it, or a family name) -> catalog peak column
DTYPE_PEAK_COLUMN: dict[str, str] = {
    "float32": "peak_fp32_flops", "fp32": "peak_fp32_flops", "float": "peak_fp32_flops",
    "torch.float32": "peak_fp32_flops", "": "peak_fp32_flops",
    "tf32": "peak_tf32_flops",
    "float16": "peak_fp16_flops", "fp16": "peak_fp16_flops", "half": "peak_fp16_flops",
    "bfloat16": "peak_fp16_flops", "bf16": "peak_fp16_flops",
    "torch.float16": "peak_fp16_flops", "torch.bfloat16": "peak_fp16_flops",
    "qint8": "peak_int8_ops", "int8": "peak_int8_ops", "quint8": "peak_int8_ops",
    "torch.qint8": "peak_int8_ops", "torch.int8": "peak_int8_ops",
    # torchao weight-only (effplan.slim): int8/int4 weights, matmuls in the activations' dtype
    # (float32 for int8-weight as slim makes it, bfloat16 for int4-weight)
    "int8-weight": "peak_fp32_flops", "int4-weight": "peak_fp16_flops",
    # serving dtypes projected by effplan.planning.serving_dtype: fp8 tensor cores run at the dense
    # int8 rate on Hopper / Ada / CDNA3 (datasheets); weight-only int8 / int4 matmuls run in 16-bit
    "fp8": "peak_int8_ops", "w8a16": "peak_fp16_flops",
    "w4a16": "peak_fp16_flops",
}

#: dtypes whose PyTorch kernels run only on some hardware kinds, with the reason. A projection of
#: such a row to another kind is infeasible (``dtype_runs_on``). Dynamic int8 quantization
#: (``torch.ao.quantization.quantize_dynamic``, dtype ``qint8``/``quint8``) has CPU kernels only
#: (fbgemm / qnnpack); fp8 uses the int8 column (equal on fp8 hardware; GPUs without fp8 are refused
#: by effplan.planning.serving_dtype).
DTYPE_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    **{d: (("cpu",), "PyTorch's dynamic int8 (qint8) kernels run only on CPU (fbgemm/qnnpack); "
                     "torchao's int8 dynamic runs on GPUs too, but with kernels unlike its CPU ones "
                     "(torchao's own A100 table: ~10x slower than bf16 on Llama-3-8B), so a CPU "
                     "measurement is never projected to a GPU: measure it there")
       for d in ("qint8", "quint8", "torch.qint8", "torch.quint8")},
    # torchao weight-only int8 (effplan.slim): CPU and GPU kernels differ (on a CPU the weight is
    # dequantized on every call); a CPU figure says nothing about a GPU
    "int8-weight": (("cpu",), "torchao's int8 weight-only kernels differ between CPU (dequantize + "
                              "float32 matmul per call) and GPU (fused; ~1.6x faster than bf16 in "
                              "torchao's A100 table): it is projected to CPUs only; measure it on "
                              "the GPU"),
    "int4-weight": (("gpu",), "torchao's int4 weight-only kernel (tinygemm) needs CUDA"),
}


def dtype_runs_on(dtype: str | None, kind: str) -> tuple[bool, str]:
    """Whether a model of ``dtype`` can run on hardware of ``kind`` (``"gpu"``/``"cpu"``), and
    why not ("" when it can)."""
    key = "" if dtype is None else str(dtype).strip().lower()
    rule = DTYPE_KINDS.get(key)
    if rule is None or str(kind).lower() in rule[0]:
        return True, ""
    return False, f"{dtype} cannot run on a {kind}: {rule[1]}"



def _shipped_path() -> Path:
    return Path(str(importlib.resources.files("effplan") / "data" / "hardware.csv"))


@functools.lru_cache(maxsize=8)
def _load_csv_cached(path: str, mtime: float) -> pd.DataFrame:
    return _validate(_read_csv(path), source=path)


def _read_csv(path: str) -> pd.DataFrame:
    """The catalog CSV as text cells; an empty, binary or unreadable file is a named error.

    A UTF-8 byte-order mark (as Windows editors write it) is accepted."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ValidationError("path", f"catalog file {path} is empty; it needs a header row with the "
                                      f"columns {', '.join(CATALOG_COLUMNS)}") from None
    except UnicodeDecodeError as exc:
        raise ValidationError("path", f"catalog file {path} is not UTF-8 text (byte {exc.start + 1}); "
                                      "give a CSV file") from None
    except pd.errors.ParserError as exc:
        raise ValidationError("path", f"catalog file {path} is not a readable CSV: {exc}") from None
    except OSError as exc:
        raise ValidationError("path", f"cannot read catalog file {path}: {exc.strerror or exc}") from None


def _validate(raw: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Check columns, numbers and sources; return a typed copy (numbers as float, NaN = unknown)."""
    missing = [c for c in CATALOG_COLUMNS if c not in raw.columns]
    if missing:
        raise ValidationError(missing[0], f"required column missing (missing: {', '.join(missing)})",
                              where=source)
    df = raw.copy()
    # row numbers in messages are 1-based data rows (the header is line 1 of a CSV file, so the
    # data row N is on line N + 1)
    for col in NUMERIC_COLUMNS:
        text = df[col].astype(object).where(df[col].notna(), "")
        text = text.map(lambda v: v.strip() if isinstance(v, str) else v)
        # the shared rules of effplan.schema: a number, finite, >= 0 (peaks, bandwidth, memory
        # and cores > 0); an empty cell means unknown
        problems = check_numbers(text, col, positive=col in POSITIVE_COLUMNS)
        if problems:
            i, message = problems[0]
            raise ValidationError(col, message, where=f"{source} row {i + 1}")
        empty = text.map(lambda v: v == "" or v is None or (isinstance(v, float) and math.isnan(v)))
        df[col] = pd.to_numeric(text.where(~empty, np.nan), errors="coerce").astype(float)
    for col in TEXT_COLUMNS:
        df[col] = df[col].fillna("").astype(str).str.strip()
    blank = df["name"] == ""
    if blank.any():
        i = int(np.flatnonzero(blank.to_numpy())[0])
        raise ValidationError("name", "empty hardware name", where=f"{source} row {i + 1}")
    dup = df["name"].str.lower().duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValidationError("name", f"duplicate hardware name {df['name'].iloc[i]!r}",
                              where=f"{source} row {i + 1}")
    seen: dict[str, int] = {}
    for pos, keys in enumerate(_row_keys(df["name"].tolist(), df["aliases"].tolist())):
        for key in keys:
            other = seen.setdefault(key.lower(), pos)
            if other != pos:
                raise ValidationError("aliases", f"{key!r} names both {df['name'].iloc[other]!r} and "
                                                 f"{df['name'].iloc[pos]!r}; a name or alias must be unique",
                                      where=f"{source} row {pos + 1}")
    badkind = ~df["kind"].isin(KINDS)
    if badkind.any():
        i = int(np.flatnonzero(badkind.to_numpy())[0])
        raise ValidationError("kind", f"{df['kind'].iloc[i]!r} is not one of {KINDS}",
                              where=f"{source} row {i + 1}")
    for fig, (src, date) in FIGURE_SOURCES.items():
        for need in (src, date):
            lacking = df[fig].notna() & (df[need] == "")
            if lacking.any():
                i = int(np.flatnonzero(lacking.to_numpy())[0])
                raise ValidationError(need, f"{fig} is given but {need} is empty (every figure needs "
                                            "a source and a date)", where=f"{source} row {i + 1}")
    return df[list(CATALOG_COLUMNS) + [c for c in df.columns if c not in CATALOG_COLUMNS]] \
        .reset_index(drop=True)


def validated_catalog(path: str | PathLike | pd.DataFrame | None = None) -> pd.DataFrame:
    """The validated catalog for ``path`` (as :func:`load_catalog`, without this machine's row).

    A CSV file is validated once per modification time (``lru_cache`` on path and mtime), so the
    frame may be shared with later calls: copy it before modifying it (:func:`load_catalog`
    does). A DataFrame is validated on every call; a caller that re-plans holds the result
    (``effplan.planning.PreparedMeasurements``) instead of asking again.
    """
    if path is None:
        p = _shipped_path()
        return _load_csv_cached(str(p), p.stat().st_mtime)
    if isinstance(path, pd.DataFrame):
        return _validate(path.astype(object).where(path.notna(), ""), source="catalog DataFrame")
    p = Path(path)
    if not p.exists():
        raise ValidationError("path", f"catalog file not found: {p}")
    return _load_csv_cached(str(p.resolve()), p.stat().st_mtime)


def load_catalog(path: str | PathLike | pd.DataFrame | None = None, *,
                 include_this_machine: bool = False) -> pd.DataFrame:
    """Load and validate the hardware catalog.

    Parameters
    ----------
    path:
        ``None`` for the shipped ``effplan/data/hardware.csv``; a CSV path or a DataFrame with the
        same columns (:data:`CATALOG_COLUMNS`) overrides it.
    include_this_machine:
        Add a row for the machine this runs on, named after
        ``effplan.hardware.detect_hardware().name``. Its figures come from the matching catalog
        row (``specs_source="detected: <row>"``) or, for an unknown CPU, from the generic per-core
        row times the detected physical core count (sources say ``generic per-core estimate``).

    Returns a new DataFrame (safe to modify). Numbers are floats; an empty cell is NaN (unknown).
    A missing column, a non-numeric or negative number, a figure without source/date raises
    :class:`ValidationError` naming the file, the 1-based data row and the column.
    """
    df = validated_catalog(path).copy()
    if include_this_machine:
        row = this_machine_row(df)
        if row is not None and not (df["name"].str.lower() == row["name"].lower()).any():
            df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
    return df


def _row_keys(names: list, aliases: list) -> list[list[str]]:
    """Per row: its name and its ``|``-separated aliases (stripped, non-empty)."""
    return [[str(nm).strip()] + [a.strip() for a in str(al or "").split("|") if a.strip()]
            for nm, al in zip(names, aliases)]


def _key_index(cat: pd.DataFrame) -> dict[str, int]:
    """lower-cased name or alias -> row position."""
    aliases = cat["aliases"].tolist() if "aliases" in cat.columns else [""] * len(cat)
    out: dict[str, int] = {}
    for pos, keys in enumerate(_row_keys(cat["name"].tolist(), aliases)):
        for key in keys:
            out.setdefault(key.lower(), pos)
    return out


def find_hardware(name: str, catalog: pd.DataFrame | None = None) -> pd.Series | None:
    """The catalog row whose name or alias (column ``aliases``, ``|``-separated) equals ``name``
    ignoring case and surrounding spaces, or ``None``.

    Nothing else matches: ``"t4g.xlarge"`` is not the T4 and ``"NVIDIA"`` is not the H100. A
    name that is not in the catalog is its own hardware (priced only by what the user gives);
    use :func:`resolve_hardware` where a catalog row is required, to get an error that lists
    the closest names. Add an alias to the catalog CSV to make another spelling match.
    """
    if name is None or (isinstance(name, float) and math.isnan(name)):
        return None
    cat = load_catalog() if catalog is None else catalog
    key = str(name).strip().lower()
    if not key or cat.empty:
        return None
    pos = _key_index(cat).get(key)
    return None if pos is None else cat.iloc[pos]


def closest_names(name: str, catalog: pd.DataFrame | None = None, n: int = 3) -> list[str]:
    """Up to ``n`` catalog names whose name or an alias is closest to ``name`` (:mod:`difflib`)."""
    cat = load_catalog() if catalog is None else catalog
    index = _key_index(cat)
    low = str(name).strip().lower()
    hits = difflib.get_close_matches(low, list(index), n=n * 3, cutoff=0.5)
    # a short query ("l4 gpu", "h100") may sit inside a longer key: also offer keys sharing a word
    words = [w for w in re.split(r"[^0-9a-z]+", low) if len(w) >= 2]
    hits += [k for k in index if any(w in re.split(r"[^0-9a-z]+", k) for w in words)]
    out: list[str] = []
    for k in hits:
        nm = str(cat["name"].iloc[index[k]])
        if nm not in out:
            out.append(nm)
    return out[:n]


def unknown_hardware_error(name: str, catalog: pd.DataFrame | None = None, *, field: str = "hardware",
                           what: str = "is not a catalog name or alias",
                           hint: str = "") -> UnknownHardwareError:
    """The error for a name that matches no catalog row: it lists the closest catalog names."""
    near = closest_names(name, catalog)
    guess = f"; did you mean {' or '.join(repr(x) for x in near)}?" if near else ""
    return UnknownHardwareError(field, f"{str(name)!r} {what}{guess}{hint}", suggestions=tuple(near))


def resolve_hardware(name: str, catalog: pd.DataFrame | None = None, *,
                     field: str = "hardware") -> pd.Series:
    """The catalog row for ``name`` (as :func:`find_hardware`), or :class:`UnknownHardwareError`
    naming ``field`` and listing the closest catalog names ("did you mean 'L4'?")."""
    row = find_hardware(name, catalog)
    if row is None:
        raise unknown_hardware_error(name, catalog, field=field,
                                     hint=" (names match exactly, ignoring case; add an alias to the "
                                          "catalog CSV for another spelling)")
    return row


#: vendor decorations removed from a DETECTED device name before it is looked up
_DETECTED_NOISE = (r"\((?:r|tm)\)", "\u00ae", "\u2122", r"\bcpu\s*@\s*[\d.]+\s*ghz",
                   r"\b\d+-core processor\b", r"\bprocessor\b", r"\([^)]*\)")


def match_detected(name: str, catalog: pd.DataFrame | None = None) -> pd.Series | None:
    """The catalog row for a device name as hardware detection reports it, or ``None``.

    Used only for THIS machine's row: vendor decorations (``(R)``, ``(TM)``, ``CPU @ 3.20GHz``,
    ``96-Core Processor``, a parenthesised suffix such as ``(PCIe)``) are removed, then the
    name must equal a catalog name or alias exactly (ignoring case): ``"AMD EPYC 9R14 96-Core
    Processor"`` finds the row aliased ``AMD EPYC 9R14``, a vague ``"AMD EPYC"`` finds nothing.
    """
    row = find_hardware(name, catalog)
    if row is not None or name is None:
        return row
    text = str(name).lower()
    for pattern in _DETECTED_NOISE:
        text = re.sub(pattern, " ", text)
    text = " ".join(text.split())
    return find_hardware(text, catalog) if text else None


def dtype_peak_column(dtype: str | None) -> str | None:
    """Catalog peak column for a dtype (``float32`` -> ``peak_fp32_flops``...), None if unknown."""
    key = "" if dtype is None else str(dtype).strip().lower()
    return DTYPE_PEAK_COLUMN.get(key)


def peak_flops_per_s(name: str, dtype: str = "float32", catalog: pd.DataFrame | None = None) -> float:
    """Dense catalog peak for ``name`` and the dtype family, FLOP/s (int8: ops/s); NaN if unknown.

    Families: ``float32`` -> fp32, ``tf32``, ``float16``/``bfloat16`` -> fp16, ``qint8``/``int8``
    -> int8. ``name`` is matched as :func:`match_detected` (a detected device name). An unknown
    hardware name or dtype, or an empty catalog cell, gives NaN.
    """
    col = dtype_peak_column(dtype)
    row = match_detected(name, catalog)
    if row is None or col is None:
        return float("nan")
    return float(row[col])


def rated_power_w(name: str, cores: int | None = None,
                  catalog: pd.DataFrame | None = None) -> tuple[float, str]:
    """Rated power of ``name`` in W and where the figure comes from.

    ``name`` is matched as :func:`match_detected` (a detected device name). A catalog match
    returns its ``rated_power_w`` and ``power_source`` (a CPU row scaled by
    ``cores`` / the row's ``cores`` when ``cores`` is given). An unknown name with
    ``cores`` given returns ``cores`` x the generic per-core figure, with a source string saying
    ``generic per-core estimate``. Otherwise ``(nan, "unknown")``.
    """
    cat = load_catalog() if catalog is None else catalog
    row = match_detected(name, cat)
    if row is not None and not math.isnan(float(row["rated_power_w"])):
        watts = float(row["rated_power_w"])
        src = f"catalog: {row['name']} ({row['power_source']}, {row['power_date']})"
        scale = _core_scale(row, cores)
        if scale != 1.0:
            return watts * scale, f"{src} scaled to {cores} of {int(row['cores'])} cores"
        return watts, src
    if cores is not None and cores > 0:
        gen = _generic_cpu(cat)
        if gen is not None:
            per_core = float(gen["rated_power_w"])
            return (cores * per_core,
                    f"generic per-core estimate: {cores} cores x {per_core:g} W ({gen['power_source']})")
    return float("nan"), "unknown"


#: figures of a CPU instance row that scale with its core count
_PER_CORE_FIGURES = ("peak_fp32_flops", "peak_tf32_flops", "peak_fp16_flops", "peak_int8_ops",
                     "memory_bandwidth_gb_s", "rated_power_w", "price_per_hour_usd", "capex_usd")


def _core_scale(row: pd.Series, cores: int | None) -> float:
    """cores / row cores for a CPU row with a known core count, else 1."""
    row_cores = float(row.get("cores", np.nan)) if "cores" in row else np.nan
    if row.get("kind") != "cpu" or not cores or not row_cores > 0:
        return 1.0
    return float(cores) / row_cores


def _generic_cpu(cat: pd.DataFrame) -> pd.Series | None:
    hit = cat[cat["name"] == GENERIC_CPU]
    return None if hit.empty else hit.iloc[0]


def this_machine_row(catalog: pd.DataFrame | None = None) -> dict | None:
    """A catalog row (dict) for the machine this runs on, or None when detection is unavailable.

    Uses ``effplan.hardware.detect_hardware()`` (imported lazily). A GPU or CPU that matches a
    catalog row copies that row's figures (sources prefixed ``detected:``); an unknown CPU gets
    the generic per-core figures times its physical core count (sources say
    ``generic per-core estimate``). Warns once with :class:`CatalogFallbackWarning` when detection
    is not available.
    """
    cat = load_catalog() if catalog is None else catalog
    try:
        from ..devices.hardware import detect_hardware  # lazy: hardware.py may import torch
        info = detect_hardware()
    except ImportError as exc:  # module or its optional dependency missing
        warnings.warn(f"cannot detect this machine ({exc}); no 'this machine' catalog row added. "
                      "Add a row to your catalog CSV instead.", CatalogFallbackWarning, stacklevel=2)
        return None
    name = str(getattr(info, "name", "") or "this machine")
    candidates = [name, str(getattr(info, "gpu_name", "") or ""), str(getattr(info, "cpu_model", "") or "")]
    cores = None
    for attr in ("cpu_cores_physical", "cpu_cores", "physical_cores", "cores"):
        v = getattr(info, attr, None)
        if isinstance(v, (int, float)) and v and v > 0:
            cores = int(v)
            break
    for cand in candidates:
        if not cand:
            continue
        row = match_detected(cand, cat)
        if row is not None and row["name"] != GENERIC_CPU:
            out = row.to_dict()
            note = f"this machine (detected as {row['name']})"
            scale = _core_scale(row, cores)
            if scale != 1.0:  # a CPU instance row of another size: per-core figures scale
                for col in _PER_CORE_FIGURES:
                    out[col] = float(out[col]) * scale
                out["cores"] = float(cores)
                note += f", figures scaled to {cores} of {int(row['cores'])} cores"
            out.update(name=name, aliases="|".join(a for a in {cand, row["name"]} if a != name),
                       specs_source=f"detected: {row['name']} ({row['specs_source']})",
                       notes=note)
            return out
    gen = _generic_cpu(cat)
    if gen is None or cores is None:
        warnings.warn(f"this machine ({name}) is not in the catalog and its core count or the generic "
                      "CPU row is unavailable; no 'this machine' row added", CatalogFallbackWarning,
                      stacklevel=2)
        return None
    out = {c: gen[c] for c in CATALOG_COLUMNS}
    for col in FIGURE_SOURCES:
        out[col] = float(gen[col]) * cores
    label = f"generic per-core estimate x {cores} cores"
    out.update(name=name, kind="cpu", aliases=str(getattr(info, "cpu_model", "") or ""), cores=float(cores),
               specs_source=f"detected; {label}", power_source=f"detected; {label}",
               price_source=f"detected; {label}", capex_source=f"detected; {label}",
               notes="this machine (unknown CPU: figures are generic per-core estimates)")
    return out
