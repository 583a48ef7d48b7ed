"""Point identity, column-wise: what :func:`effplan.store.point_key` is for one record, for a
whole frame at once.

:func:`point_codes` gives every row an integer that is equal for two rows exactly when their
:func:`~effplan.store.point_key` tuples are equal; :func:`key_tuples` turns chosen rows back
into those tuples (for messages and for ``completed_points``). The per-value rules are the
record-wise ones (``text``: missing -> ``""``, else ``str(value)``; ``whole``: ``int(value)``,
-1 when that fails), applied once per DISTINCT value of a column (``pandas.factorize``), never
once per row: a results table repeats a few names, hosts and batch sizes many times.

:func:`truthy` is the store's "is this cell the boolean True" (a real bool only: ``1`` and
``"true"`` are not), column-wise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["point_codes", "key_columns", "key_tuples", "truthy", "per_value", "text_value", "whole_value"]


def text_value(v: Any) -> str:
    """The text of one key field (``point_key``'s rule): missing (None, NaN) -> ``""``."""
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)


def whole_value(v: Any) -> int:
    """The whole number of one key field (``point_key``'s rule): ``int(v)``, -1 when it fails."""
    try:
        return int(v)
    except (TypeError, ValueError):
        return -1


def per_value(values: pd.Series | np.ndarray, fn: Callable[[Any], Any], dtype: Any = object) -> np.ndarray:
    """``fn`` of every cell, computed once per distinct value (missing cells: ``fn(None)`` for
    None, ``fn(nan)`` for the other missing markers). Unhashable cells (a list) fall back to one
    call per cell."""
    arr = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    n = len(arr)
    try:
        codes, uniq = pd.factorize(arr, use_na_sentinel=True)
    except TypeError:
        return np.array([fn(v) for v in arr], dtype=dtype) if n else np.empty(0, dtype=dtype)
    # numbers of different types hash alike (True == 1 == 1.0) but str() differently: with more
    # than one numeric type among the distinct values, decide cell by cell
    numeric = {type(u) for u in uniq if isinstance(u, (int, float, complex, np.number, np.bool_))}
    if len(numeric) > 1:
        return np.array([fn(v) for v in arr], dtype=dtype) if n else np.empty(0, dtype=dtype)
    mapped = np.empty(len(uniq) + 2, dtype=dtype)
    mapped[:len(uniq)] = [fn(u) for u in uniq] if len(uniq) else []
    mapped[len(uniq)] = fn(None)
    mapped[len(uniq) + 1] = fn(float("nan"))
    missing = codes < 0
    if missing.any():
        is_none = np.equal(arr, None)
        codes = np.where(missing, np.where(is_none, len(uniq), len(uniq) + 1), codes)
    return mapped[codes]


def _factor(values: np.ndarray) -> np.ndarray:
    return pd.factorize(values, use_na_sentinel=False)[0].astype(np.int64)


def key_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The seven parts of :func:`~effplan.store.point_key` for every row: ``candidate``,
    ``host`` (``hw_host_hash``, else ``hardware_id``, else ``""``), ``hardware``, ``mode``,
    ``dtype`` (object arrays of str), ``batch_size`` and ``prompt`` (int64; ``prompt`` is -2 for
    a row whose mode is not ``"generation"``, whose key has no 7th element)."""
    n = len(frame)

    def text(col: str) -> np.ndarray:
        if col not in frame.columns:
            return np.full(n, "", dtype=object)
        return per_value(frame[col], text_value)

    def whole(col: str) -> np.ndarray:
        if col not in frame.columns:
            return np.full(n, -1, dtype=np.int64)
        return per_value(frame[col], whole_value).astype(np.int64)

    host_hash, hardware_id = text("hw_host_hash"), text("hardware_id")
    host = np.where(host_hash != "", host_hash, hardware_id).astype(object)
    mode = text("mode")
    prompt = np.where(mode == "generation", whole("prompt_tokens"), -2)
    return {"candidate": text("candidate"), "host": host, "hardware": text("hardware"), "mode": mode,
            "dtype": text("dtype"), "batch_size": whole("batch_size"), "prompt": prompt.astype(np.int64)}


def point_codes(frame: pd.DataFrame, columns: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """One int64 per row, equal for two rows exactly when their ``point_key`` s are equal
    (numbered in order of first appearance: 0, 1, 2, ...)."""
    cols = key_columns(frame) if columns is None else columns
    n = len(frame) if columns is None else len(next(iter(cols.values())))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    code = np.zeros(n, dtype=np.int64)
    for part in cols.values():
        c = _factor(part)
        code = _factor(code * (int(c.max()) + 1) + c)   # stays below rows x distinct values
    return code


def key_tuples(columns: dict[str, np.ndarray], rows: np.ndarray | list[int]) -> list[tuple]:
    """``point_key`` tuples of the rows at positions ``rows`` (Python str and int, 6 elements,
    7 for generation rows)."""
    idx = np.asarray(rows, dtype=np.int64)
    parts = [columns[k][idx].tolist() for k in ("candidate", "host", "hardware", "mode", "dtype",
                                                 "batch_size", "prompt")]
    return [t[:6] + (t[6],) if t[3] == "generation" else t[:6] for t in zip(*parts)]


def truthy(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Mask of cells that are the boolean True (a Python or numpy bool; a nullable boolean's
    missing cells are not); False everywhere when the column is absent."""
    n = len(frame)
    if col not in frame.columns:
        return np.zeros(n, dtype=bool)
    s = frame[col]
    if isinstance(s.dtype, pd.BooleanDtype):
        return s.fillna(False).to_numpy(dtype=bool)
    if s.dtype.kind == "b":
        return s.to_numpy(dtype=bool)
    if s.dtype.kind in "iufcmM" or pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        return np.zeros(n, dtype=bool)   # numbers and text are never the boolean True
    return np.fromiter((v is True or (isinstance(v, np.bool_) and bool(v)) for v in s.to_numpy(dtype=object)),
                       dtype=bool, count=n)
