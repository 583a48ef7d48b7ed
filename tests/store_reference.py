"""THE PER-ROW REFERENCE: effplan.store as it was before issue 28 (records looped in Python),
kept unchanged so the tests can check that the column-wise store gives exactly its answers.

Measurement results on disk: JSON Lines, one record per measured point, safe to interrupt.

* :func:`append` writes rows (dicts or a DataFrame) as one JSON object per line, each carrying
  ``schema_version``; the file is flushed and fsync'ed after every append, so a sweep killed
  half-way keeps every point already measured. NaN is written as ``null``. No pickle.
* :func:`load` reads and merges many files (several machines: tell them apart by
  ``hardware_id``) into one frame with the columns of
  :data:`effplan.schema.MEASUREMENT_COLUMNS` plus ``source_file``. A bad record (bad JSON, JSON
  ``Infinity``/``NaN``, a number beyond a float, nesting deeper than :data:`MAX_JSON_DEPTH`,
  invalid UTF-8, not an object, wrong schema version, a value that fails
  :func:`effplan.schema.row_problems`) is reported with its ``file:line`` and reason, and the
  other records still load. A UTF-8 byte-order mark and CRLF line ends are accepted.
* :func:`save_frame` writes a whole frame atomically (e.g. hand-typed rows).
* Duplicates: :func:`point_key` is a point's identity (candidate, host, hardware, mode, dtype,
  batch size). :func:`load` keeps the newest record of each point and warns with the count,
  louder when duplicates disagree beyond their stated uncertainty (:func:`dedupe`); rows of
  two hosts with the same hardware name are different points and are all kept.
  :func:`completed_points` lists the finished points of a file, for ``measure(resume=True)``.
* Raw samples of each point go to a file beside the results (:func:`samples_path`,
  :func:`append_samples`, :func:`load_samples`), so a stored point can be re-summarised.
* :func:`check_results_path` and :func:`validate_rows` let a sweep fail BEFORE measuring.
"""

from __future__ import annotations

import glob
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effplan.errors import EffplanWarning, ValidationError
from effplan.schema import (
    MEASUREMENT_COLUMNS,
    SCHEMA_VERSION,
    normalize_measurements,
    row_problems,
)

__all__ = ["append", "load", "save_frame", "to_records", "STORE_REQUIRED_COLUMNS", "HARDWARE_FIELDS",
           "check_results_path", "validate_rows", "point_key", "completed_points", "dedupe", "points_since",
           "samples_path", "append_samples", "load_samples"]

#: Columns every stored record must have (others are filled with defaults on load).
STORE_REQUIRED_COLUMNS: tuple[str, ...] = ("candidate", "hardware", "mode", "batch_size")

#: Hardware identity fields written with each record when ``append(..., hardware=info)`` is given
#: (stored as ``hw_<field>``; ``hardware`` / ``hardware_id`` / ``torch_version`` fill the schema
#: columns when a row leaves them empty).
HARDWARE_FIELDS: tuple[str, ...] = ("host_hash", "cpu_model", "cpu_cores_physical", "cpu_cores_logical",
                                    "gpu_models", "gpu_count", "driver_version", "cuda_version", "os")

PathLike = str | os.PathLike


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def _jsonable(value: Any, column: str) -> Any:
    """A JSON-safe scalar: numpy -> Python, NaN/None/NA -> None; infinities refused."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return None
        if math.isinf(f):
            raise ValidationError(column, f"infinite value {f} cannot be stored (JSON has no infinity)")
        return f
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, column) for v in value]
    if isinstance(value, (int, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    raise ValidationError(column, f"value of type {type(value).__name__} cannot be stored as JSON")


def to_records(rows: Mapping[str, Any] | Iterable[Mapping[str, Any]] | pd.DataFrame,
               *, hardware: Any = None) -> list[dict[str, Any]]:
    """Rows -> JSON-safe records with ``schema_version`` (and hardware identity if given)."""
    if isinstance(rows, pd.DataFrame):
        raw = rows.to_dict(orient="records")
    elif isinstance(rows, Mapping):
        raw = [dict(rows)]
    else:
        raw = [dict(r) for r in rows]
    hw: dict[str, Any] = {}
    if hardware is not None:
        hw = hardware.to_dict() if hasattr(hardware, "to_dict") else dict(hardware)
    records = []
    for row in raw:
        rec = {str(k): _jsonable(v, str(k)) for k, v in row.items()}
        version = rec.get("schema_version")
        if version is None:
            rec["schema_version"] = SCHEMA_VERSION
        elif version != SCHEMA_VERSION:
            raise ValidationError("schema_version", f"row has version {version!r}; this effplan writes "
                                                    f"version {SCHEMA_VERSION}")
        if hw:
            for col, key in (("hardware", "name"), ("hardware_id", "hardware_id"),
                             ("torch_version", "torch_version")):
                if not rec.get(col) and hw.get(key):
                    rec[col] = _jsonable(hw[key], col)
            for key in HARDWARE_FIELDS:
                if key in hw:
                    rec.setdefault(f"hw_{key}", _jsonable(hw[key], key))
        records.append(rec)
    return records


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory; the data itself is already synced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _jsonl(records: list[dict[str, Any]], path: PathLike) -> str:
    """Validated records as JSON Lines text; the first bad field raises, naming ``path`` and row."""
    errors = _validate(pd.DataFrame.from_records(records), [f"row {i}" for i in range(len(records))])
    if errors:
        e = errors[0]
        raise ValidationError(e["field"], e["message"], where=f"{path} {e['where']}")
    return "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records)


def append(path: PathLike, rows: Mapping[str, Any] | Iterable[Mapping[str, Any]] | pd.DataFrame,
           *, hardware: Any = None) -> int:
    """Append rows to the JSON Lines results file ``path`` (created with its folder if needed).

    Every record is validated first (:class:`ValidationError` naming the field; nothing is
    written then), gets ``schema_version``, and, with ``hardware=`` (a
    :class:`~effplan.hardware.HardwareInfo` or its dict), the machine's identity fields. The
    file is flushed and fsync'ed before returning. If a previous run died mid-line, the
    partial line is closed first so it stays one (reported) bad record. Returns rows written.
    """
    records = to_records(rows, hardware=hardware)
    if not records:
        return 0
    _append_text(Path(path), _jsonl(records, path))
    return len(records)


def _append_text(p: Path, text: str) -> None:
    """Append whole JSON lines to ``p`` in one write, flushed and fsync'ed. A last line left
    without its newline by a write that was cut off (a process killed mid-write) is closed
    first, so it stays one bad (reported) line and is never glued to the next record."""
    p.parent.mkdir(parents=True, exist_ok=True)
    created = not p.exists()
    with open(p, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                text = "\n" + text
        fh.write(text.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    if created:
        _fsync_dir(p.parent)


def save_frame(df: pd.DataFrame, path: PathLike, *, hardware: Any = None) -> Path:
    """Write a whole frame to ``path`` as JSON Lines, replacing the file atomically.

    Validated like :func:`append`; typed-in rows without ``provenance`` are stored as
    ``entered``. Returns the path.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValidationError("frame", f"expected a pandas DataFrame, got {type(df).__name__}")
    text = _jsonl(to_records(df, hardware=hardware), path)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(p.parent)
    return p


# --------------------------------------------------------------------------------------------
# Validation (vectorised, per row, so one bad record does not stop the others)
# --------------------------------------------------------------------------------------------

def _validate(df: pd.DataFrame, where: list[str]) -> list[dict[str, Any]]:
    """Per-row problems of a frame of records: ``[{where, field, message}]`` (first per row).

    The rules are :func:`effplan.schema.row_problems` (the one validator), plus the schema
    version that every stored record carries.
    """
    return row_problems(df, where, required=STORE_REQUIRED_COLUMNS, schema_version=True)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def _expand(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if os.path.isdir(text):
            found = sorted(glob.glob(os.path.join(glob.escape(text), "*.jsonl")))
        elif os.path.exists(text):
            found = [text]
        else:
            found = sorted(glob.glob(text, recursive=True))
            if not found:
                raise ValidationError("paths", f"no results file matches {text!r}")
        files.extend(Path(f) for f in found)
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


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
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        truncated = " (truncated line: interrupted write?)" if not raw.endswith(b"\n") else ""
        return None, f"bad JSON: {exc.msg} at column {exc.colno}{truncated}"
    except (ValueError, RecursionError, OverflowError) as exc:  # constants, huge numbers, depth
        return None, f"bad JSON: {str(exc)[:200]}"
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}"
    return obj, None


def load(paths: PathLike | Iterable[PathLike], *, on_error: str = "warn",
         duplicates: str = "newest") -> pd.DataFrame:
    """Load and merge results files (paths, folders of ``*.jsonl`` or globs) into one frame.

    Columns: :data:`~effplan.schema.MEASUREMENT_COLUMNS` in order, then any extra fields
    (e.g. ``hw_*``), then ``source_file``. Bad records are reported by ``file:line``:
    ``on_error="warn"`` (default) issues ONE :class:`EffplanWarning` listing every bad record,
    returns the good rows and puts the bad ones in ``frame.attrs["errors"]`` (dicts with
    ``file``, ``line``, ``field``, ``message``); ``on_error="raise"`` raises
    :class:`ValidationError` with ``where="file:line"`` at the first bad record.

    ``duplicates="newest"`` (default) keeps the newest record of each point (:func:`point_key`)
    and warns with the count -- louder when duplicates disagree (:func:`dedupe`);
    ``duplicates="all"`` keeps every record.
    """
    if duplicates not in ("newest", "all"):
        raise ValidationError("duplicates", f"{duplicates!r} is not 'newest' or 'all'")
    if on_error not in ("warn", "raise"):
        raise ValidationError("on_error", f"{on_error!r} is not 'warn' or 'raise'")
    records: list[dict[str, Any]] = []
    where: list[str] = []
    origin: list[tuple[str, int]] = []
    errors: list[dict[str, Any]] = []

    def bad(file: str, line: int, field: str, message: str) -> None:
        if on_error == "raise":
            raise ValidationError(field, message, where=f"{file}:{line}")
        errors.append({"file": file, "line": line, "field": field, "message": message})

    for path in _expand(paths):
        name = str(path)
        try:
            fh = open(path, "rb")
        except IsADirectoryError:
            raise ValidationError("paths", f"{name} is a folder inside a folder; give its *.jsonl "
                                           "files or a glob") from None
        except OSError as exc:
            raise ValidationError("paths", f"cannot read {name}: {exc.strerror or exc}") from None
        with fh:
            for lineno, raw in enumerate(fh, start=1):
                obj, problem = _parse_line(raw, first=lineno == 1)
                if problem is not None:
                    bad(name, lineno, "record", problem)
                    continue
                if obj is None:  # blank line
                    continue
                records.append(obj)
                where.append(f"{name}:{lineno}")
                origin.append((name, lineno))
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(MEASUREMENT_COLUMNS))
    problems = _validate(frame, where)
    if problems:
        if on_error == "raise":
            p = problems[0]
            raise ValidationError(p["field"], p["message"], where=p["where"])
        bad_rows = set()
        index_of = {w: i for i, w in enumerate(where)}
        for p in problems:
            i = index_of[p["where"]]
            bad_rows.add(i)
            errors.append({"file": origin[i][0], "line": origin[i][1], "field": p["field"],
                           "message": p["message"]})
        keep = [i for i in range(len(records)) if i not in bad_rows]
        frame = frame.iloc[keep].reset_index(drop=True)
        origin = [origin[i] for i in keep]
    source_file = [o[0] for o in origin]
    frame = frame.drop(columns=[c for c in ("source_file",) if c in frame.columns])
    out = normalize_measurements(frame, required=STORE_REQUIRED_COLUMNS, source="results")
    out["source_file"] = pd.Series(source_file, dtype=object, index=out.index).astype(str)
    if errors:
        errors.sort(key=lambda e: (e["file"], e["line"]))
        listing = "\n".join(f"  {e['file']}:{e['line']}: {e['field']}: {e['message']}" for e in errors)
        warnings.warn(f"{len(errors)} bad record(s) skipped while loading results "
                      f"({len(out)} loaded):\n{listing}", EffplanWarning, stacklevel=2)
    if duplicates == "newest":
        out = dedupe(out)
    out.attrs["errors"] = errors
    return out


# --------------------------------------------------------------------------------------------
# Before a sweep, resume, duplicates and raw samples (issue 9)
# --------------------------------------------------------------------------------------------

def check_results_path(path: PathLike) -> Path:
    """Check BEFORE measuring that ``path`` can take results: not a folder, its folder exists
    (created if missing) and it can be opened for appending. :class:`ValidationError` naming
    ``results_path`` and what to do otherwise. Returns the path."""
    p = Path(path)
    if p.is_dir():
        raise ValidationError("results_path", f"{p} is a folder; give a file such as {p / 'results.jsonl'}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError("results_path", f"its folder {p.parent} cannot be created ({exc}); "
                              "choose a writable folder") from None
    try:
        with open(p, "ab"):
            pass
    except OSError as exc:
        raise ValidationError("results_path", f"{p} cannot be written ({exc.strerror or exc}); choose "
                              "a writable file") from None
    return p


def validate_rows(rows: Iterable[Mapping[str, Any]], *, where: str = "rows") -> None:
    """Raise :class:`ValidationError` (field named) if any row could not be stored -- the same
    check :func:`append` makes; ``measure`` runs it on the candidates' fields before measuring."""
    records = to_records(list(rows))
    if records:
        _jsonl(records, where)


def point_key(record: Mapping[str, Any]) -> tuple[str, str, str, str, str, int]:
    """Identity of a measured point: ``(candidate, host, hardware, mode, dtype, batch_size)``.

    ``host`` is the record's ``hw_host_hash`` (written by :func:`append` with ``hardware=``),
    else its ``hardware_id`` (itself host-specific), else ``""``. Two hosts with the same
    hardware name are two points; the same point measured twice is a duplicate. A
    ``mode="generation"`` point has a 7th element, its ``prompt_tokens``.
    """
    def text(key: str) -> str:
        v = record.get(key)
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)

    def whole(key: str) -> int:
        try:
            return int(record.get(key))
        except (TypeError, ValueError):
            return -1

    host = text("hw_host_hash") or text("hardware_id")
    key = (text("candidate"), host, text("hardware"), text("mode"), text("dtype"), whole("batch_size"))
    # a generation point is also its prompt length (one sweep measures several)
    return key + (whole("prompt_tokens"),) if key[3] == "generation" else key


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, (bool, np.bool_)) and bool(v))


def completed_points(path: PathLike) -> set[tuple[str, str, str, str, str, int]]:
    """:func:`point_key` of every finished point in the results file ``path``: status ``ok``,
    ``stable`` true and not ``provisional`` (an error, a not-stable point or one whose sweep
    stopped before its last timing pass is measured again on resume). An absent
    file has none. Bad records are skipped (and reported by :func:`load`)."""
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return set()
    frame = load(p, duplicates="all")
    done = set()
    for rec in frame.to_dict(orient="records"):
        if (str(rec.get("status") or "ok") == "ok" and _truthy(rec.get("stable"))
                and not _truthy(rec.get("provisional"))):
            done.add(point_key(rec))
    return done


def points_since(path: PathLike, lines: int) -> tuple[int, int]:
    """``(points, provisional)`` among the records of ``path`` after its first ``lines`` lines
    (what one sweep appended): distinct :func:`point_key` s, and how many of them have a
    ``provisional`` newest record there (their sweep stopped before their last timing pass).
    Unreadable lines are not counted."""
    newest: dict[tuple, bool] = {}
    try:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if lineno <= lines:
                    continue
                obj, problem = _parse_line(raw, first=lineno == 1)
                if obj is not None and problem is None:
                    newest[point_key(obj)] = _truthy(obj.get("provisional"))
    except OSError:
        return 0, 0
    return len(newest), sum(newest.values())


def _newest_first_order(frame: pd.DataFrame) -> np.ndarray:
    # empty or unparseable timestamps are NaT (then the file order decides)
    ts = pd.to_datetime(frame["timestamp"].astype(object), errors="coerce", utc=True, format="ISO8601")
    order = pd.DataFrame({"ts": ts, "pos": np.arange(len(frame))})
    # newest timestamp wins; equal or missing timestamps: the later record in the files wins
    return order.sort_values(["ts", "pos"], ascending=False, na_position="last", kind="mergesort")["pos"].to_numpy()


def dedupe(frame: pd.DataFrame, *, warn: bool = True) -> pd.DataFrame:
    """Keep the newest record of each :func:`point_key`; warn with the count. The warning is
    louder (``CONFLICTING``, the points named) when duplicates of a point disagree on
    ``latency_p50_ms`` by more than their stated uncertainty (``latency_ci_rel`` of each, 0 when
    not stated). Rows from different hosts are different points and are all kept.

    A ``provisional`` record (written after an earlier timing pass, see
    :func:`effplan.measure`) that a newer record of the same point supersedes is dropped
    silently: it is not a duplicate measurement but an unfinished one, and it is never compared
    with the record that completes it."""
    if len(frame) < 2:
        return frame
    keys = [point_key(r) for r in frame.to_dict(orient="records")]
    order = _newest_first_order(frame)
    prov = (frame["provisional"].to_numpy() if "provisional" in frame.columns
            else np.zeros(len(frame), dtype=object))
    seen: dict[tuple, int] = {}
    drop: list[int] = []
    superseded: list[int] = []
    for pos in order:
        k = keys[pos]
        if k not in seen:
            seen[k] = int(pos)
        elif _truthy(prov[pos]):
            superseded.append(int(pos))
        else:
            drop.append(int(pos))
    if not drop:
        return frame.drop(index=frame.index[sorted(superseded)]).reset_index(drop=True) if superseded else frame
    p50 = pd.to_numeric(frame["latency_p50_ms"], errors="coerce").to_numpy(float)
    ci = pd.to_numeric(frame["latency_ci_rel"], errors="coerce").fillna(0.0).to_numpy(float)
    conflicts: list[str] = []
    for pos in drop:
        keep = seen[keys[pos]]
        a, b = p50[keep], p50[pos]
        if np.isnan(a) or np.isnan(b):
            continue
        # the two intervals around each median must overlap
        if abs(a - b) > a * ci[keep] + b * ci[pos] + 1e-12 * max(a, b):
            c, host, hw, mode, dtype, bs = keys[pos][:6]
            conflicts.append(f"{c} on {hw} ({mode}, {dtype or '?'}, bs={bs}): {b:.4g} ms vs kept {a:.4g} ms")
    out = frame.drop(index=frame.index[sorted(drop + superseded)]).reset_index(drop=True)
    if warn:
        msg = (f"{len(drop)} duplicate measured point(s) in the results: the newest of each is kept "
               f"({len(out)} rows). Re-run sweeps with resume=True (effplan measure --resume) to "
               "avoid duplicates")
        if conflicts:
            listing = "; ".join(dict.fromkeys(conflicts))
            msg = (f"CONFLICTING duplicates: {len(conflicts)} of the {len(drop)} older duplicate(s) "
                   f"disagree with the kept point by more than their stated uncertainty -- the "
                   f"machine was not in the same state: {listing}. " + msg +
                   "; look at background_load and stable on those rows, and re-measure them quietly")
        warnings.warn(msg, EffplanWarning, stacklevel=3)
    return out


def samples_path(path: PathLike) -> Path:
    """The raw-samples file beside a results file: ``<results>.samples`` (JSON Lines; not
    matched by a ``*.jsonl`` glob, so loading a folder of results does not read it)."""
    p = Path(path)
    return p.with_name(p.name + ".samples")


def append_samples(path: PathLike, records: Iterable[Mapping[str, Any]]) -> int:
    """Append raw-sample records (point identity + :meth:`effplan.timing.Timing.to_record`) to
    :func:`samples_path` of the results file ``path``; flushed and fsync'ed. Returns lines written."""
    recs = [{str(k): _jsonable(v, str(k)) for k, v in r.items()} for r in records]
    if not recs:
        return 0
    _append_text(samples_path(path), "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n"
                                             for r in recs))
    return len(recs)


def load_samples(path: PathLike) -> dict[tuple, Any]:
    """Raw samples stored beside the results file ``path``: ``(point_key, timestamp)`` ->
    :class:`effplan.timing.Timing` (a generation point's two: ``(point_key, timestamp, phase)``,
    phase ``"prefill"`` / ``"decode"``) (re-summarise with ``timing.percentile_ms(...)`` or
    ``timing.verdict(other_policy)``). As :func:`load` does for records, the samples of a
    ``provisional`` record (an earlier timing pass) are left out when a later line of the same
    point follows: the later pass holds them too. Unreadable lines are skipped with one warning."""
    from effplan.timing import Timing

    sp = Path(path) if str(path).endswith(".samples") else samples_path(path)
    out: dict[tuple, Any] = {}
    if not sp.exists():
        return out
    bad = 0
    provisional: dict[tuple, tuple] = {}  # point (+ phase) -> key of its provisional samples so far
    with open(sp, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                point = (point_key(rec), str(rec.get("phase") or ""))
                key = (point_key(rec), str(rec.get("timestamp", "")))
                if rec.get("phase"):
                    key += (str(rec["phase"]),)
                timing = Timing.from_record(rec)
            except (ValueError, KeyError, TypeError):
                bad += 1
                continue
            earlier = provisional.pop(point, None)
            if earlier is not None and earlier != key:
                out.pop(earlier, None)  # superseded by this later pass
            out[key] = timing
            if rec.get("provisional") is True:
                provisional[point] = key
    if bad:
        warnings.warn(f"{bad} unreadable line(s) skipped in {sp}", EffplanWarning, stacklevel=2)
    return out
