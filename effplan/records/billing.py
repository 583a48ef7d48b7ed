"""Read cloud bills in the FinOps Foundation's FOCUS format (FinOps Open Cost and Usage
Specification, versions 1.0-1.3): CSV, Parquet, a folder of them (Hive-partitioned folders such
as ``year=2026/month=10/`` too) or a DataFrame.

Only the columns the budget-vs-actuals reconciliation needs are read (:data:`FOCUS_COLUMNS`,
each described as the specification defines it), and each is validated against the spec:

* required: ``ChargeCategory`` (one of Usage, Purchase, Tax, Credit, Adjustment; not null),
  ``ChargePeriodStart`` / ``ChargePeriodEnd`` (ISO 8601 date/time in UTC; the end is the
  *exclusive* bound and must not be before the start), ``BilledCost`` and ``EffectiveCost``
  (decimals, not null), ``BillingCurrency`` (not null), ``ServiceCategory`` (one of the spec's
  values, not null);
* optional: ``ConsumedQuantity`` / ``ConsumedUnit`` (instance-hours), ``Tags`` (a JSON object,
  or a Parquet map / struct), ``ResourceId``, ``SkuId`` (``mapping=`` of untagged rows),
  ``ServiceName``, ``ChargeDescription`` (shown in the unmapped rows).

A missing required column, a value outside the allowed ones, a null where the spec forbids it,
an unreadable date: :class:`~effplan.errors.ValidationError` naming the column (and the file).
Money in another currency than USD without an ``fx`` rate for it:
:class:`~effplan.errors.CurrencyError` (a ValidationError naming ``BillingCurrency``).

Speed: pyarrow reads the files (multi-threaded CSV parser, Parquet column projection) and every
text column is dictionary-encoded, so dates, tags, currencies and units are parsed once per
*distinct* value, never per row; the rest is numpy. ``pip install "effplan[actuals]"`` brings
pyarrow; without it :func:`load_billing` raises one error saying so.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import CurrencyError, DataWarning, EffplanError, ValidationError
from .schema import number as _number

__all__ = ["FOCUS_COLUMNS", "REQUIRED_COLUMNS", "CHARGE_CATEGORIES", "SERVICE_CATEGORIES",
           "COMPUTE_CATEGORIES", "HOUR_UNITS", "Billing", "load_billing", "read_billing",
           "billing_files", "parse_fx", "option_key"]

#: the FOCUS columns read, with their meaning in the specification (FOCUS_Spec,
#: specification/columns/*.md); the first :data:`REQUIRED_COLUMNS` must be present
FOCUS_COLUMNS: dict[str, str] = {
    "ChargeCategory": "highest-level classification of a charge by how it is billed: Usage, "
                      "Purchase, Tax, Credit or Adjustment (not null)",
    "ChargePeriodStart": "inclusive start of the charge period, ISO 8601 in UTC "
                         "('2026-10-01T00:00:00Z'); rows are bucketed by its calendar month",
    "ChargePeriodEnd": "exclusive end of the charge period, ISO 8601 in UTC",
    "BilledCost": "the charge as invoiced (cash basis: a reserved instance's upfront fee counts "
                  "in full on its Purchase row, usage it covers has BilledCost 0)",
    "EffectiveCost": "the amortised cost (budget view): the Purchase row of a commitment is 0 "
                     "and its fee is spread over the usage it covers",
    "BillingCurrency": "currency the charge was billed in (ISO 4217, e.g. USD, EUR)",
    "ServiceCategory": "highest-level classification of the service (Compute, AI and Machine "
                       "Learning, Storage, ...)",
    "ConsumedQuantity": "volume consumed, in ConsumedUnit (null on non-Usage rows)",
    "ConsumedUnit": "unit of ConsumedQuantity ('Hours', 'GB-Hours', ...)",
    "Tags": "the finalized tags of the resource: a JSON object (key -> value)",
    "ResourceId": "provider's identifier of the resource",
    "SkuId": "provider's identifier of the SKU",
    "ServiceName": "display name of the service",
    "ChargeDescription": "provider's description of the charge",
}
REQUIRED_COLUMNS: tuple[str, ...] = ("ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd",
                                     "BilledCost", "EffectiveCost", "BillingCurrency",
                                     "ServiceCategory")
_TEXT = ("ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd", "BillingCurrency",
         "ServiceCategory", "ConsumedUnit", "Tags", "ResourceId", "SkuId", "ServiceName",
         "ChargeDescription")
_NUMERIC = ("BilledCost", "EffectiveCost", "ConsumedQuantity")

#: ChargeCategory's allowed values (FOCUS 1.0-1.3)
CHARGE_CATEGORIES: tuple[str, ...] = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
#: ServiceCategory's allowed values (FOCUS 1.0-1.3)
SERVICE_CATEGORIES: tuple[str, ...] = (
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
    "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
    "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security",
    "Storage", "Web", "Other")
#: the service categories a plan's instances are billed under
COMPUTE_CATEGORIES: tuple[str, ...] = ("Compute", "AI and Machine Learning")
#: ConsumedUnit values (compared lower-cased, spaces trimmed) that are instance-hours: the spec's
#: time unit "Hour" and the spellings providers export. A composite unit such as "GB-Hours" or
#: "Normalized Hour" is never one.
HOUR_UNITS: frozenset[str] = frozenset({
    "hour", "hours", "hr", "hrs", "h", "1 hour", "instance-hour", "instance-hours",
    "instance hour", "instance hours", "instance/hour", "vm-hour", "vm-hours", "node-hour",
    "node-hours"})

_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


def _pyarrow() -> Any:
    try:
        import pyarrow as pa  # noqa: F401
        import pyarrow.compute  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the actuals extra is installed in CI
        raise EffplanError("reading FOCUS billing exports needs pyarrow: pip install "
                           "'effplan[actuals]'") from exc
    return pa


# ------------------------------------------------------------------------------------ reading
def billing_files(source: str | os.PathLike) -> list[Path]:
    """The FOCUS files of ``source``: the file itself, or every ``*.csv``, ``*.csv.gz``,
    ``*.parquet`` / ``*.pq`` under a folder (recursively: Hive-partitioned folders such as
    ``billing_period=2026-10/`` are walked; hidden files, manifests and plan folders -- a folder
    with an ``inputs.json`` -- are skipped), sorted."""
    p = Path(source)
    if p.is_file():
        return [p]
    if p.is_dir():
        # a plan folder inside (effplan plan --out: its inputs.json beside the CSVs) is not billing
        plans = {f.parent for f in p.rglob("inputs.json")}
        out = [f for f in sorted(p.rglob("*")) if f.is_file()
               and f.name.lower().endswith(_SUFFIXES) and f.parent not in plans
               and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts)]
        if not out:
            raise ValidationError("billing", f"{p} holds no FOCUS file (*.csv, *.csv.gz, "
                                             "*.parquet)")
        return out
    raise ValidationError("billing", f"{p}: no such file or folder")


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        line = fh.readline()
    if not line.strip():
        raise ValidationError("billing", "empty file (no header line)", where=str(path))
    return next(csv.reader(io.StringIO(line)))


def _read_one(path: Path) -> Any:
    """One file as a pyarrow Table of the FOCUS columns it has (text dictionary-encoded)."""
    pa = _pyarrow()
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        present = [c for c in FOCUS_COLUMNS if c in pq.ParquetFile(path).schema_arrow.names]
        return pq.read_table(path, columns=present)
    import pyarrow.csv as pcsv

    header = [h.strip() for h in _csv_header(path)]
    present = [c for c in FOCUS_COLUMNS if c in header]
    dict_t = pa.dictionary(pa.int32(), pa.string())
    types = {c: (dict_t if c in _TEXT else pa.float64()) for c in present}
    conv = pcsv.ConvertOptions(include_columns=present, column_types=types,
                               null_values=["", "null", "NULL", "None", "NaN"],
                               strings_can_be_null=True)
    try:
        # 1 MiB blocks: parsed in parallel, one dictionary per block (decoded once each)
        return pcsv.read_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 20),
                             convert_options=conv)
    except pa.ArrowInvalid as exc:   # a number column with text, a ragged row: say where
        col = next((c for c in present if f"'{c}'" in str(exc) or c in str(exc)), "billing")
        raise ValidationError(col, f"not a valid FOCUS CSV: {exc}", where=str(path)) from None


def _from_frame(df: pd.DataFrame) -> Any:
    pa = _pyarrow()
    present = [c for c in FOCUS_COLUMNS if c in df.columns]
    sub = df[present].copy()
    if "Tags" in sub.columns and sub["Tags"].map(lambda v: isinstance(v, Mapping)).any():
        sub["Tags"] = sub["Tags"].map(lambda v: json.dumps(v) if isinstance(v, Mapping) else v)
    for c in _NUMERIC:
        if c in sub.columns:
            try:
                sub[c] = pd.to_numeric(sub[c]).astype(float)
            except (TypeError, ValueError) as exc:
                raise ValidationError(c, f"not a number: {exc}", where="DataFrame") from None
    for c in _TEXT:
        if c in sub.columns and not (pd.api.types.is_datetime64_any_dtype(sub[c])):
            sub[c] = sub[c].astype(object).where(sub[c].notna(), None)
            sub[c] = sub[c].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return pa.Table.from_pandas(sub, preserve_index=False)


def read_billing(billing: Any) -> list[tuple[str, Any]]:
    """``(where, pyarrow Table)`` per file (or DataFrame) of ``billing``: a path (file or folder,
    see :func:`billing_files`), a DataFrame, a pyarrow Table, or a list of any of these."""
    pa = _pyarrow()
    items = billing if isinstance(billing, (list, tuple)) else [billing]
    if not items:
        raise ValidationError("billing", "no billing data given")
    out: list[tuple[str, Any]] = []
    for item in items:
        if isinstance(item, pd.DataFrame):
            out.append(("DataFrame", _from_frame(item)))
        elif isinstance(item, pa.Table):
            present = [c for c in FOCUS_COLUMNS if c in item.column_names]
            out.append(("Table", item.select(present)))
        elif isinstance(item, (str, os.PathLike)):
            out.extend((str(f), _read_one(f)) for f in billing_files(item))
        else:
            raise ValidationError("billing", f"expected a FOCUS file, folder, DataFrame or pyarrow "
                                             f"Table, got {type(item).__name__}")
    return out


# ------------------------------------------------------------------------------- decoding
def _decode(col: Any, fn: Callable[[list[Any]], np.ndarray], dtype: Any, null: Any) -> np.ndarray:
    """``fn`` of the DISTINCT values of a pyarrow column, spread back to every row through the
    dictionary indices (nulls get ``null``): text is parsed once per distinct value."""
    import pyarrow.compute as pc

    out = np.empty(len(col), dtype=dtype)
    pos = 0
    memo: tuple[Any, np.ndarray] | None = None
    for chunk in col.chunks:
        if not _is_dict(chunk.type):
            chunk = pc.dictionary_encode(chunk)
        dictionary = chunk.dictionary
        if memo is not None and memo[0].equals(dictionary):
            vals = memo[1]
        else:
            vals = np.empty(len(dictionary) + 1, dtype=dtype)
            if len(dictionary):
                vals[:-1] = fn(dictionary.to_pylist())
            vals[-1] = null
            memo = (dictionary, vals)
        idx = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
        out[pos:pos + len(chunk)] = vals[idx]
        pos += len(chunk)
    return out


def _is_dict(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_dictionary(t)


def _numbers(col: Any, name: str, where: str, nullable: bool) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)
            or pa.types.is_decimal(col.type) or pa.types.is_null(col.type)):
        try:
            col = pc.cast(col, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValidationError(name, f"not a decimal number: {exc}", where=where) from None
    arr = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype(float, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        nulls = np.isnan(arr)
        if not nullable and nulls.any():
            raise ValidationError(name, f"{int(nulls.sum()):,} row(s) are null (first: row "
                                        f"{int(np.flatnonzero(nulls)[0]) + 1}); FOCUS requires a "
                                        "value on every row", where=where)
        if (bad & ~nulls).any():
            raise ValidationError(name, "infinite value(s) (first: row "
                                        f"{int(np.flatnonzero(bad & ~nulls)[0]) + 1})", where=where)
    return arr


def _timestamps_ns(col: Any, name: str, where: str) -> np.ndarray:
    """int64 nanoseconds since 1970 UTC of an ISO 8601 text column (or a timestamp column);
    null or unreadable values raise ValidationError naming the column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        ts = pc.cast(col, pa.timestamp("ns", tz="UTC")) if pa.types.is_date(col.type) else col
        if getattr(ts.type, "unit", "ns") != "ns":
            ts = pc.cast(ts, pa.timestamp("ns", tz=ts.type.tz))
        vals = pc.cast(ts, pa.int64()).to_numpy(zero_copy_only=False)
        if ts.null_count:
            raise ValidationError(name, f"{ts.null_count:,} null value(s); FOCUS requires a "
                                        "date/time on every row", where=where)
        return np.asarray(vals, dtype=np.int64)

    def parse(values: list[Any]) -> np.ndarray:
        s = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601",
                           errors="coerce")
        if s.isna().any():
            bad = values[int(np.flatnonzero(s.isna().to_numpy())[0])]
            raise ValidationError(name, f"{bad!r} is not an ISO 8601 date/time "
                                        "('2026-10-01T00:00:00Z')", where=where)
        return s.to_numpy(dtype="datetime64[ns]").astype(np.int64)

    out = _decode(col, parse, np.int64, np.iinfo(np.int64).min)
    if (out == np.iinfo(np.int64).min).any():
        n = int((out == np.iinfo(np.int64).min).sum())
        raise ValidationError(name, f"{n:,} null value(s); FOCUS requires a date/time on every "
                                    "row", where=where)
    return out


def _allowed(col: Any, name: str, allowed: Sequence[str], where: str) -> np.ndarray:
    """Index into ``allowed`` per row (case and surrounding spaces ignored); a value outside
    them or a null raises ValidationError naming the column and the value."""
    lookup = {a.lower(): i for i, a in enumerate(allowed)}

    def codes(values: list[Any]) -> np.ndarray:
        out = np.empty(len(values), dtype=np.int16)
        for i, v in enumerate(values):
            k = lookup.get(str(v).strip().lower())
            if k is None:
                raise ValidationError(name, f"{v!r} is not a FOCUS {name} (allowed: "
                                            f"{', '.join(allowed)})", where=where)
            out[i] = k
        return out

    out = _decode(col, codes, np.int16, -1)
    if (out < 0).any():
        raise ValidationError(name, f"{int((out < 0).sum()):,} null value(s) (first: row "
                                    f"{int(np.flatnonzero(out < 0)[0]) + 1}); FOCUS requires one "
                                    "on every row", where=where)
    return out


def _dictionary_codes(col: Any) -> tuple[np.ndarray, list[Any]]:
    """(code per row into the distinct values, -1 for null; the distinct values)."""
    import pyarrow.compute as pc

    chunks = []
    values: list[Any] = []
    index: dict[Any, int] = {}
    for chunk in col.chunks:
        if not _is_dict(chunk.type):
            chunk = pc.dictionary_encode(chunk)
        local = chunk.dictionary.to_pylist()
        remap = np.empty(len(local) + 1, dtype=np.int32)
        for i, v in enumerate(local):
            if v not in index:
                index[v] = len(values)
                values.append(v)
            remap[i] = index[v]
        remap[-1] = -1
        chunks.append(remap[pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)])
    codes = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int32)
    return codes, values


def _tag_values(col: Any, key: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(code per row into the distinct values of tag ``key`` (-1: no such tag), those values,
    rows whose Tags are not a JSON object). Text Tags are parsed once per distinct string;
    Parquet map or struct Tags are looked up with pyarrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type.value_type if _is_dict(col.type) else col.type
    bad = np.zeros(len(col), dtype=bool)
    if pa.types.is_map(t):
        col = pc.map_lookup(col, key, "first")
    elif pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        if key not in names:
            return np.full(len(col), -1, dtype=np.int32), [], bad
        col = pc.struct_field(col, key)
    else:
        values: list[str] = []
        index: dict[str, int] = {}
        BAD = -2

        def lookup(texts: list[Any]) -> np.ndarray:
            out = np.empty(len(texts), dtype=np.int32)
            for i, text in enumerate(texts):
                try:
                    obj = json.loads(text) if isinstance(text, str) else text
                except ValueError:
                    out[i] = BAD
                    continue
                if not isinstance(obj, Mapping):
                    out[i] = BAD
                    continue
                v = obj.get(key)
                if not isinstance(v, str) or not v.strip():
                    out[i] = -1   # no such tag (or a valueless tag: true)
                    continue
                v = v.strip()
                if v not in index:
                    index[v] = len(values)
                    values.append(v)
                out[i] = index[v]
            return out

        codes = _decode(col, lookup, np.int32, -1)
        bad = codes == BAD
        codes[bad] = -1
        return codes, values, bad
    codes, raw = _dictionary_codes(col)
    vals = [v.strip() if isinstance(v, str) else "" for v in raw]
    keep = np.array([bool(v) for v in vals] + [False])
    codes = np.where(keep[codes], codes, -1).astype(np.int32)
    return codes, vals, bad


def parse_fx(fx: Mapping[str, Any] | None) -> dict[str, float]:
    """``{"EUR": 1.08}`` -- US dollars per one unit of each currency -- validated (a number > 0
    each; codes upper-cased; USD, if given, must be 1)."""
    if fx is None:
        return {}
    if not isinstance(fx, Mapping):
        raise ValidationError("fx", f"expected {{currency: US dollars per unit}}, e.g. "
                                    f"{{'EUR': 1.08}}, got {type(fx).__name__}")
    out = {}
    for k, v in fx.items():
        code = str(k).strip().upper()
        out[code] = _number(f"fx[{k!r}]", v, lo=0, lo_open=True)
    if out.get("USD", 1.0) != 1.0:
        raise ValidationError("fx", f"fx['USD'] must be 1 (money is in US dollars), got {out['USD']}")
    return out


# ------------------------------------------------------------------------------ the bill
@dataclass(frozen=True, eq=False)
class Billing:
    """A FOCUS bill decoded into one numpy array per figure (one element per billing row, all
    files in order). Frozen; build it with :func:`load_billing`.

    Attributes
    ----------
    rows: number of billing rows.
    start_ns / end_ns: ChargePeriodStart / ChargePeriodEnd, int64 nanoseconds since 1970 UTC.
    month: calendar month of ChargePeriodStart (UTC) as ``year * 12 + month - 1``
        (:func:`effplan.planning.calendar.month_number`).
    category: index into :data:`CHARGE_CATEGORIES`; ``service``: index into
        :data:`SERVICE_CATEGORIES`; ``compute``: ServiceCategory is Compute or AI and Machine Learning.
    hours: instance-hours of the row: ConsumedQuantity where the row is Usage and ConsumedUnit is
        one of :data:`HOUR_UNITS`, else 0 (never GB-Hours).
    billed_usd / effective_usd: BilledCost / EffectiveCost converted to USD (x the ``fx`` rate of
        the row's BillingCurrency; USD rows x 1).
    currency: per-row index into ``currencies``; ``currency_table``: one row per currency with
        the rate used, its source and the totals before and after conversion (the conversion,
        shown).
    tag_code / tag_values: per-row index into the distinct values of ``option_tag`` (-1: the row
        has no such tag); ``tags_bad``: rows whose Tags is not a JSON object (they count as
        untagged, and a DataWarning says how many).
    resource_code / resources, sku_code / skus: the same for ResourceId and SkuId (-1: null).
    sources: ``(where, first row, row count)`` per file or frame read.
    tables: the pyarrow Tables read (for the row listings of unmapped spend).
    """

    rows: int
    start_ns: np.ndarray
    end_ns: np.ndarray
    month: np.ndarray
    category: np.ndarray
    service: np.ndarray
    compute: np.ndarray
    hours: np.ndarray
    billed_usd: np.ndarray
    effective_usd: np.ndarray
    currency: np.ndarray
    currencies: tuple[str, ...]
    currency_table: pd.DataFrame
    tag_code: np.ndarray
    tag_values: tuple[str, ...]
    tags_bad: np.ndarray
    resource_code: np.ndarray
    resources: tuple[str, ...]
    sku_code: np.ndarray
    skus: tuple[str, ...]
    option_tag: str
    sources: tuple[tuple[str, int, int], ...]
    tables: tuple[Any, ...] = field(repr=False)

    def cost_usd(self, column: str) -> np.ndarray:
        """``BilledCost`` or ``EffectiveCost`` of every row, in USD."""
        if column == "BilledCost":
            return self.billed_usd
        if column == "EffectiveCost":
            return self.effective_usd
        raise ValidationError("cost_column", f"{column!r}: give 'EffectiveCost' (budget view, "
                                             "amortised) or 'BilledCost' (invoice view)")

    def frame(self, mask: np.ndarray, columns: Sequence[str] = (
            "ChargePeriodStart", "ChargeCategory", "ServiceCategory", "ServiceName", "ResourceId",
            "SkuId", "ConsumedQuantity", "ConsumedUnit", "BillingCurrency", "BilledCost",
            "EffectiveCost", "ChargeDescription", "Tags")) -> pd.DataFrame:
        """The billing rows where ``mask`` is True as a DataFrame (the FOCUS columns present,
        as text and numbers), in row order, with ``row`` (1-based over all files) and ``file``."""
        import pyarrow as pa

        parts = []
        for (where, first, n), table in zip(self.sources, self.tables):
            m = mask[first:first + n]
            if not m.any():
                continue
            cols = [c for c in columns if c in table.column_names]
            sub = table.select(cols).filter(pa.array(m))
            df = sub.to_pandas()
            for c in df.columns:
                if isinstance(df[c].dtype, pd.CategoricalDtype):
                    df[c] = df[c].astype(object)
            df.insert(0, "row", first + 1 + np.flatnonzero(m))
            df.insert(1, "file", where)
            parts.append(df)
        if not parts:
            return pd.DataFrame(columns=["row", "file", *columns])
        return pd.concat(parts, ignore_index=True)


def load_billing(billing: Any, *, option_tag: str = "effplan-option",
                 fx: Mapping[str, Any] | None = None) -> Billing:
    """Read and validate a FOCUS bill (see the module docstring): a file, a folder (Hive
    partitions too), a DataFrame, a pyarrow Table, or a list of them; ``option_tag`` is the tag
    key read from ``Tags``; ``fx`` the US dollars per unit of every non-USD BillingCurrency."""
    if not isinstance(option_tag, str) or not option_tag.strip():
        raise ValidationError("option_tag", f"expected a tag key such as 'effplan-option', got "
                                            f"{option_tag!r}")
    rates = parse_fx(fx)
    parts = read_billing(billing)
    per: dict[str, list[np.ndarray]] = {k: [] for k in (
        "start", "end", "category", "service", "qty", "unit_hours", "billed", "effective",
        "currency", "tag", "bad", "resource", "sku")}
    currencies: list[str] = []
    cur_index: dict[str, int] = {}
    tag_values: list[str] = []
    tag_index: dict[str, int] = {}
    res_values: list[Any] = []
    res_index: dict[Any, int] = {}
    sku_values: list[Any] = []
    sku_index: dict[Any, int] = {}
    sources = []
    first = 0

    def remap(codes: np.ndarray, local: list[Any], values: list[Any], index: dict[Any, int]
              ) -> np.ndarray:
        """Codes into this file's distinct values -> codes into the distinct values of all files."""
        table = np.empty(len(local) + 1, dtype=np.int32)
        for i, v in enumerate(local):
            k = index.get(v)
            if k is None:
                k = index[v] = len(values)
                values.append(v)
            table[i] = k
        table[-1] = -1
        return table[codes]

    for where, table in parts:
        table = table.unify_dictionaries() if table.num_rows else table
        missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
        if missing:
            hint = (" (a FOCUS 0.5 export names it ChargeType: export FOCUS 1.0 or later)"
                    if missing[0] == "ChargeCategory" and "ChargeType" in table.column_names else "")
            raise ValidationError(missing[0], f"required FOCUS column missing (missing: "
                                              f"{', '.join(missing)}){hint}", where=where)
        n = table.num_rows
        sources.append((where, first, n))
        first += n
        col = table.column
        per["start"].append(_timestamps_ns(col("ChargePeriodStart"), "ChargePeriodStart", where))
        per["end"].append(_timestamps_ns(col("ChargePeriodEnd"), "ChargePeriodEnd", where))
        per["category"].append(_allowed(col("ChargeCategory"), "ChargeCategory",
                                        CHARGE_CATEGORIES, where))
        per["service"].append(_allowed(col("ServiceCategory"), "ServiceCategory",
                                       SERVICE_CATEGORIES, where))
        per["billed"].append(_numbers(col("BilledCost"), "BilledCost", where, nullable=False))
        per["effective"].append(_numbers(col("EffectiveCost"), "EffectiveCost", where,
                                         nullable=False))
        if "ConsumedQuantity" in table.column_names and "ConsumedUnit" in table.column_names:
            per["qty"].append(np.nan_to_num(_numbers(col("ConsumedQuantity"), "ConsumedQuantity",
                                                     where, nullable=True)))
            per["unit_hours"].append(_decode(
                col("ConsumedUnit"),
                lambda vs: np.array([str(v).strip().lower() in HOUR_UNITS for v in vs]), bool,
                False))
        else:
            per["qty"].append(np.zeros(n))
            per["unit_hours"].append(np.zeros(n, dtype=bool))
        codes, local = _dictionary_codes(col("BillingCurrency"))
        if (codes < 0).any():
            raise ValidationError("BillingCurrency", f"{int((codes < 0).sum()):,} null value(s); "
                                                     "FOCUS requires one on every row", where=where)
        local = [str(v).strip().upper() for v in local]
        per["currency"].append(remap(codes, local, currencies, cur_index))
        if "Tags" in table.column_names:
            tcodes, tlocal, bad = _tag_values(col("Tags"), option_tag)
            per["tag"].append(remap(tcodes, tlocal, tag_values, tag_index))
            per["bad"].append(bad)
        else:
            per["tag"].append(np.full(n, -1, dtype=np.int32))
            per["bad"].append(np.zeros(n, dtype=bool))
        for name, values, index in (("ResourceId", res_values, res_index),
                                    ("SkuId", sku_values, sku_index)):
            key = "resource" if name == "ResourceId" else "sku"
            if name in table.column_names:
                c, loc = _dictionary_codes(col(name))
                per[key].append(remap(c, [str(v) for v in loc], values, index))
            else:
                per[key].append(np.full(n, -1, dtype=np.int32))

    cat = lambda k: np.concatenate(per[k]) if per[k] else np.empty(0)  # noqa: E731
    start, end = cat("start").astype(np.int64), cat("end").astype(np.int64)
    before = end < start
    if before.any():
        i = int(np.flatnonzero(before)[0])
        where = next(w for w, f, n in sources if f <= i < f + n)
        raise ValidationError("ChargePeriodEnd", f"{int(before.sum()):,} row(s) end before they "
                                                 f"start (first: row {i + 1}); ChargePeriodEnd is "
                                                 "the exclusive end of the charge period",
                              where=where)
    category = cat("category").astype(np.int16)
    service = cat("service").astype(np.int16)
    currency = cat("currency").astype(np.int32)
    unknown = [c for c in currencies if c != "USD" and c not in rates]
    if unknown:
        counts = {c: int((currency == currencies.index(c)).sum()) for c in unknown}
        raise CurrencyError("BillingCurrency", "; ".join(
            f"{counts[c]:,} row(s) are billed in {c}" for c in unknown)
            + f" and fx gives no rate for {', '.join(unknown)}: effplan plans in US dollars; pass "
            + "fx={" + ", ".join(f"'{c}': <US dollars per 1 {c}>" for c in unknown) + "}"
            + (" (effplan actuals --fx " + " ".join(f"{c}=RATE" for c in unknown) + ")"))
    rate = np.array([1.0 if c == "USD" else rates[c] for c in currencies] or [1.0])
    row_rate = rate[currency] if len(currency) else np.empty(0)
    billed, effective = cat("billed").astype(float), cat("effective").astype(float)
    month = start.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64) + 1970 * 12
    hours = np.where((category == CHARGE_CATEGORIES.index("Usage")) & cat("unit_hours").astype(bool),
                     cat("qty").astype(float), 0.0)
    compute_ix = [SERVICE_CATEGORIES.index(c) for c in COMPUTE_CATEGORIES]
    cur_rows = []
    for i, c in enumerate(currencies):
        m = currency == i
        cur_rows.append({"currency": c, "rows": int(m.sum()), "usd_per_unit": float(rate[i]),
                         "rate_source": "USD" if c == "USD" else "fx argument",
                         "billed_cost": float(billed[m].sum()),
                         "effective_cost": float(effective[m].sum()),
                         "billed_cost_usd": float((billed[m] * rate[i]).sum()),
                         "effective_cost_usd": float((effective[m] * rate[i]).sum())})
    bad = cat("bad").astype(bool)
    if bad.any():
        warnings.warn(f"{int(bad.sum()):,} billing row(s) have Tags that are not a JSON object: they "
                      f"are read as untagged (see Actuals.unmapped)", DataWarning, stacklevel=2)
    return Billing(
        rows=int(len(start)), start_ns=start, end_ns=end, month=month, category=category,
        service=service, compute=np.isin(service, compute_ix), hours=hours,
        billed_usd=billed * row_rate, effective_usd=effective * row_rate, currency=currency,
        currencies=tuple(currencies), currency_table=pd.DataFrame(cur_rows, columns=[
            "currency", "rows", "usd_per_unit", "rate_source", "billed_cost", "effective_cost",
            "billed_cost_usd", "effective_cost_usd"]),
        tag_code=cat("tag").astype(np.int32), tag_values=tuple(tag_values), tags_bad=bad,
        resource_code=cat("resource").astype(np.int32), resources=tuple(res_values),
        sku_code=cat("sku").astype(np.int32), skus=tuple(sku_values), option_tag=option_tag,
        sources=tuple(sources), tables=tuple(t for _, t in parts))


def option_key(text: str) -> str:
    """The form an option name is matched in: lower case, ``@`` as ``_``, every run of other
    characters than letters, digits and ``_`` as one ``-``. GCP labels and Kubernetes label
    values allow neither ``@``, spaces nor capitals, so ``digits-mlp_h100-sxm`` there names the
    option ``digits-mlp@H100 SXM`` as well."""
    s = str(text).strip().lower().replace("@", "_")
    return re.sub(r"[^a-z0-9_]+", "-", s).strip("-")
