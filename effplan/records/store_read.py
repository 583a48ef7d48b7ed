"""Reading a JSON Lines results file fast, in bounded memory, with the store's exact rules.

:func:`read_chunks` reads the file in blocks of about :data:`CHUNK_BYTES` and yields, per
block, the records parsed from its lines (Python ``dict`` s), their line numbers, and their
byte offsets and lengths (for the index beside the file, :mod:`effplan.records.store_index`). A line
the store would refuse is reported through ``bad(line, reason)`` with the reason
:func:`_parse_line` gives it, and the other lines still load.

Why it is fast and still exact: the store's rules (no JSON ``NaN``/``Infinity``, no number
beyond a float, nesting at most :data:`effplan.store.MAX_JSON_DEPTH`, strict UTF-8, a
byte-order mark on line 1 only, objects only) are enforced by ``json.loads`` hooks that cost a
Python call per number. Here a line goes through plain ``json.loads`` (C only) when cheap text
screens show that those rules cannot bite (no ``NaN``/``Infinity`` text, few brackets); any
line that a screen flags, that fails, that is not an object, or whose record holds an infinity
(a number beyond a float, found column-wise in the block's frame) is handed to
``_parse_line`` itself, so its answer and message are exactly the store's. Long loads show a progress bar (``tqdm.auto``) from :data:`PROGRESS_MIN_BYTES`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .schema import row_problems

__all__ = ["Chunk", "read_chunks", "progress_bar", "CHUNK_BYTES", "PROGRESS_MIN_BYTES", "MAX_JSON_DEPTH",
           "STORE_REQUIRED_COLUMNS"]

#: Columns every stored record must have (others are filled with defaults on load).
STORE_REQUIRED_COLUMNS: tuple[str, ...] = ("candidate", "hardware", "mode", "batch_size")


def _validate(df: pd.DataFrame, where: Any) -> list[dict[str, Any]]:
    """Per-row problems of a frame of records: ``[{where, field, message}]`` (first per row).

    The rules are :func:`effplan.records.schema.row_problems` (the one validator), plus the schema
    version that every stored record carries. ``where[i]`` labels row ``i``.
    """
    return row_problems(df, where, required=STORE_REQUIRED_COLUMNS, schema_version=True)


#: JSON nesting depth above which a line is skipped unread (a results record is flat, with at
#: most a list of GPU names inside: depth 2). Checked before parsing so that a hostile line
#: cannot exhaust the interpreter's recursion limit.
MAX_JSON_DEPTH = 32


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (JSON has no infinity or NaN; write null)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]!r} is out of range (larger than a float can hold)")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: a key given twice is a reason to skip the
    line (which value was meant is unknown), never "the last one wins" in silence."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _v in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {twice[:60]!r} appears twice in one record")
    return obj


#: A JSON key token: a closing quote, optional white space, a colon. Every key of a line matches
#: once (a string value holding ``":`` matches too), so a flat record whose count equals its
#: number of keys has no key given twice; any other line goes through :func:`_parse_line`.
_KEY_TOKEN = re.compile(r'"\s*:')


def _depth(text: str) -> int:
    """Largest bracket nesting depth of a JSON text (brackets inside strings ignored)."""
    depth = best = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > best:
                best = depth
        elif ch in "]}":
            depth -= 1
    return best


def _parse_line(raw: bytes, *, first: bool) -> tuple[dict[str, Any] | None, str | None]:
    """One line of a results file -> ``(record, None)``, ``(None, None)`` for a blank line, or
    ``(None, reason)`` for a line to skip. Never raises: a UTF-8 byte-order mark on the first line
    and CRLF line ends are accepted; invalid UTF-8, JSON ``Infinity``/``NaN``, numbers beyond a
    float, nesting deeper than :data:`MAX_JSON_DEPTH` and anything but a JSON object are reasons."""
    if first and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 (byte {exc.start + 1}: {raw[exc.start:exc.start + 1]!r})"
    if not text:
        return None, None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        return None, f"nested deeper than {MAX_JSON_DEPTH} levels (a results record is flat)"
    try:
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                         object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        truncated = " (truncated line: interrupted write?)" if not raw.endswith(b"\n") else ""
        return None, f"bad JSON: {exc.msg} at column {exc.colno}{truncated}"
    except (ValueError, RecursionError, OverflowError) as exc:  # constants, huge numbers, depth
        return None, f"bad JSON: {str(exc)[:200]}"
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}"
    return obj, None



#: Bytes read per block (a block's records live as Python dicts until they become a frame:
#: about 3x the block's size).
CHUNK_BYTES = 32 * 2 ** 20

#: Loads of at least this many bytes (all files together) show a progress bar.
PROGRESS_MIN_BYTES = 64 * 2 ** 20



@dataclass
class Chunk:
    """One block of a file: its good records (``frame``: ``DataFrame.from_records`` of them) and,
    for each, line number, byte offset, length;
    ``next_offset`` / ``next_line``: where the line after the block's last complete
    (newline-ended) line starts, and its number."""
    records: list[dict[str, Any]]
    lines: list[int]
    offsets: list[int]
    lengths: list[int]
    next_offset: int = 0
    next_line: int = 1
    frame: pd.DataFrame | None = None


def progress_bar(total_bytes: int, desc: str, enabled: bool | None = None):
    """A ``tqdm.auto`` bar over bytes, shown when ``enabled`` (None: when ``total_bytes`` is at
    least :data:`PROGRESS_MIN_BYTES`); a do-nothing stand-in otherwise."""
    show = total_bytes >= PROGRESS_MIN_BYTES if enabled is None else bool(enabled)
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _has_inf(v: Any) -> bool:
    if type(v) is float:
        return v in (_INF, -_INF)
    if type(v) is list:
        return any(_has_inf(x) for x in v)
    if type(v) is dict:
        return any(_has_inf(x) for x in v.values())
    return False


_INF = float("inf")


def _drop_overflows(out: Chunk, segs: list[bytes], closed: bool, first: int, bad: Callable) -> None:
    """Build the block's frame; a record holding an infinity (only a number too large for a
    float parses to one: ``NaN``/``Infinity`` text never reaches plain ``json.loads``) is
    handed to ``_parse_line`` for its exact reason and left out. Column-wise for number columns;
    cell by cell only in the few object columns (lists, mixed types)."""
    frame = pd.DataFrame.from_records(out.records) if out.records else pd.DataFrame()
    hit = np.zeros(len(frame), dtype=bool)
    for col in frame.columns:
        s = frame[col]
        if s.dtype.kind == "f":
            hit |= np.isinf(s.to_numpy())
        elif s.dtype == object:
            vals = s.to_numpy()
            where = np.flatnonzero(~pd.isna(vals))   # all-null columns (absent figures): nothing to look at
            if len(where):
                hit[where] |= np.fromiter((_has_inf(v) for v in vals[where]), dtype=bool, count=len(where))
    if hit.any():
        for i in np.flatnonzero(hit).tolist():
            j = out.lines[i] - first
            raw = segs[j] + b"\n" if (closed or j < len(segs) - 1) else segs[j]
            _, problem = _parse_line(raw, first=out.lines[i] == 1)
            bad(out.lines[i], problem or "bad JSON: a number is out of range")
        keep = np.flatnonzero(~hit)
        # built again from the records kept: their types alone decide the columns' dtypes
        kept = [out.records[i] for i in keep.tolist()]
        frame = pd.DataFrame.from_records(kept) if kept else pd.DataFrame()
        for name in ("lines", "offsets", "lengths"):
            setattr(out, name, [getattr(out, name)[i] for i in keep.tolist()])
    out.frame = frame
    out.records = []


def read_chunks(path: Path, bad: Callable[[int, str], None], *, start: int = 0, first_line: int = 1,
                bar: Any = None, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """The records of ``path`` from byte ``start`` (its line number: ``first_line``), block by
    block. ``bad(line, reason)`` is called for each line the store refuses (blank lines are
    skipped silently). ``bar.update(bytes)`` is called as blocks are read."""
    loads, keys = json.loads, _KEY_TOKEN.findall
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(start)
        offset, lineno, rest = start, first_line, b""
        while True:
            block = fh.read(chunk_bytes)
            if bar is not None:
                bar.update(len(block))
            data = rest + block
            if not data:
                return
            at_end = not block or fh.tell() >= size
            cut = len(data) if at_end else data.rfind(b"\n") + 1
            if cut == 0:            # one line longer than a block: read on
                rest = data
                continue
            body, rest = data[:cut], data[cut:]
            segs = body.split(b"\n")
            closed = body.endswith(b"\n")
            if closed:
                segs.pop()          # the empty piece after the last newline
            screen = b"NaN" in body or b"Infinity" in body
            out = Chunk([], [], [], [])
            first_line_of_block = lineno
            last = len(segs) - 1
            for i, raw in enumerate(segs):
                n = len(raw) + (1 if (closed or i < last) else 0)
                obj = None
                try:
                    text = raw.decode("utf-8")
                    if not (screen and ("NaN" in text or "Infinity" in text)) \
                            and text.count("{") + text.count("[") <= MAX_JSON_DEPTH:
                        obj = loads(text)
                        if type(obj) is dict and len(keys(text)) != len(obj):
                            obj = None          # a key twice, or a nested object: exact parser
                except (ValueError, RecursionError):
                    obj = None
                if type(obj) is not dict:
                    whole = raw + b"\n" if (closed or i < last) else raw
                    obj, problem = _parse_line(whole, first=lineno == 1)
                    if problem is not None:
                        bad(lineno, problem)
                if obj is not None:
                    out.records.append(obj)
                    out.lines.append(lineno)
                    out.offsets.append(offset)
                    out.lengths.append(n)
                offset += n
                lineno += 1
            out.next_offset, out.next_line = (offset, lineno) if closed else (offset - n, lineno - 1)
            _drop_overflows(out, segs, closed, first_line_of_block, bad)
            yield out
            if at_end and not rest:
                return
