"""Measurement results on disk: JSON Lines, one record per measured point, safe to interrupt.

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
  :func:`completed_points` lists the finished points of a file, for ``measure(resume=True)``,
  from the index beside it (:mod:`effplan.records.store_index`: ``append`` keeps it, so resume never
  reads the records again). Loading, validation, duplicates and conflicts work column-wise
  (:mod:`effplan.records.store_keys`, :mod:`effplan.records.store_read`); the answers are those of the per-row
  store they replaced (``tests/store_reference.py``).
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

from ..errors import EffplanWarning, ValidationError
from . import store_index as _index
from . import store_keys as _keys
from . import store_read as _read
# the reading rules live with the reader (effplan.records.store_read); their names stay here too
from .store_read import MAX_JSON_DEPTH, STORE_REQUIRED_COLUMNS, _parse_line, _validate  # noqa: F401
from .schema import MEASUREMENT_COLUMNS, SCHEMA_VERSION, normalize_measurements, row_problems

__all__ = ["append", "load", "save_frame", "to_records", "STORE_REQUIRED_COLUMNS", "HARDWARE_FIELDS",
           "check_results_path", "validate_rows", "point_key", "completed_points", "finished_points", "dedupe",
           "points_since",
           "samples_path", "append_samples", "load_samples"]

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
    p = Path(path)
    before = os.stat(p) if p.is_file() else None
    written = _append_text(p, _jsonl(records, path))
    _index.extend(p, before, written, pd.DataFrame.from_records(records))  # the index, if kept
    return len(records)


def _append_text(p: Path, text: str) -> str:
    """Append whole JSON lines to ``p`` in one write, flushed and fsync'ed. A last line left
    without its newline by a write that was cut off (a process killed mid-write) is closed
    first, so it stays one bad (reported) line and is never glued to the next record. Returns
    the text written."""
    if p.is_dir():
        raise ValidationError("path", f"{p} is a folder; give a results file such as "
                                      f"{p / 'results.jsonl'}")
    p.parent.mkdir(parents=True, exist_ok=True)
    created = not p.exists()
    with open(p, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        start = fh.tell()
        if start > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                text = "\n" + text
        try:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        except OSError:  # a full disk: none of these lines is kept, not even a part of one
            _truncate(fh, start)
            raise
    if created:
        _fsync_dir(p.parent)
    return text


def _truncate(fh: Any, size: int) -> None:
    """Cut ``fh`` back to ``size`` bytes after a failed write (best effort: the disk may refuse
    even that, then the cut-off line is reported as one bad record when loaded)."""
    try:
        fh.truncate(size)
        os.fsync(fh.fileno())
    except OSError:
        pass


def save_frame(df: pd.DataFrame, path: PathLike, *, hardware: Any = None) -> Path:
    """Write a whole frame to ``path`` as JSON Lines, replacing the file atomically.

    Validated like :func:`append`; typed-in rows without ``provenance`` are stored as
    ``entered``. Written through a symbolic link, the file it points to is replaced (the
    link stays). Returns the path.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValidationError("frame", f"expected a pandas DataFrame, got {type(df).__name__}")
    text = _jsonl(to_records(df, hardware=hardware), path)
    p = Path(path)
    if p.is_symlink():  # replace the file the link points to, never the link itself
        p = Path(os.path.realpath(p))
    if p.is_dir():
        raise ValidationError("path", f"{path} is a folder; give a file name such as "
                                      f"{p / 'measurements.jsonl'}")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        _index.index_path(p).unlink(missing_ok=True)   # a rewritten file: its index is rebuilt
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(p.parent)
    return p


# --------------------------------------------------------------------------------------------
# Validation (vectorised, per row, so one bad record does not stop the others)
# --------------------------------------------------------------------------------------------

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
        try:
            key = f.resolve(strict=False)
        except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before 3.13)
            raise ValidationError("paths", f"{f} cannot be resolved ({exc}): a symbolic link "
                                           "that points to itself? give the real file") from None
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


class _Where:
    """``file:line`` of row ``i``, made only for the rows a message names."""

    def __init__(self, names: np.ndarray, lines: np.ndarray) -> None:
        self.names, self.lines = names, lines

    def __getitem__(self, i: int) -> str:
        return f"{self.names[i]}:{self.lines[i]}"


def _read_frames(files: list[Path], bad: Any, progress: bool | None
                 ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Every record of ``files`` as one raw frame (block by block, :mod:`effplan.records.store_read`),
    with each row's file name and line number; unreadable lines go to ``bad``."""
    sizes = []
    for path in files:
        name = str(path)
        try:
            with open(path, "rb"):
                pass
            sizes.append(os.path.getsize(path))
        except IsADirectoryError:
            raise ValidationError("paths", f"{name} is a folder inside a folder; give its *.jsonl "
                                           "files or a glob") from None
        except RuntimeError as exc:  # a symlink loop met while opening
            raise ValidationError("paths", f"cannot read {name}: {exc}") from None
        except OSError as exc:
            raise ValidationError("paths", f"cannot read {name}: {exc.strerror or exc}") from None
    bar = _read.progress_bar(sum(sizes), "loading results", progress)
    frames, names, lines = [], [], []
    try:
        for path in files:
            name = str(path)
            for chunk in _read.read_chunks(path, lambda line, why, name=name: bad(name, line, "record", why),
                                           bar=bar):
                if len(chunk.lines):
                    frames.append(chunk.frame)
                    names.append(np.full(len(chunk.lines), name, dtype=object))
                    lines.append(np.asarray(chunk.lines, dtype=np.int64))
    finally:
        bar.close()
    if not frames:
        return (pd.DataFrame(columns=list(MEASUREMENT_COLUMNS)), np.zeros(0, dtype=object),
                np.zeros(0, dtype=np.int64))
    # one block: exactly DataFrame.from_records of every record; several: their concatenation
    # with each object column's type inferred again, as from_records would have
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True).infer_objects()
    return frame, np.concatenate(names), np.concatenate(lines)


def load(paths: PathLike | Iterable[PathLike], *, on_error: str = "warn",
         duplicates: str = "newest", progress: bool | None = None) -> pd.DataFrame:
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

    Files are read block by block (:mod:`effplan.records.store_read`); ``progress`` shows a progress
    bar (None: for loads of at least :data:`effplan.store_read.PROGRESS_MIN_BYTES`).
    """
    if duplicates not in ("newest", "all"):
        raise ValidationError("duplicates", f"{duplicates!r} is not 'newest' or 'all'")
    if on_error not in ("warn", "raise"):
        raise ValidationError("on_error", f"{on_error!r} is not 'warn' or 'raise'")
    errors: list[dict[str, Any]] = []

    def bad(file: str, line: int, field: str, message: str) -> None:
        if on_error == "raise":
            raise ValidationError(field, message, where=f"{file}:{line}")
        errors.append({"file": file, "line": line, "field": field, "message": message})

    files = _expand(paths)
    frame, names, lines = _read_frames(files, bad, progress)
    problems = _validate(frame, _Where(names, lines))
    if problems:
        if on_error == "raise":
            p = problems[0]
            raise ValidationError(p["field"], p["message"], where=p["where"])
        rows = np.fromiter((p["row"] for p in problems), dtype=np.int64, count=len(problems))
        errors.extend({"file": names[r], "line": int(lines[r]), "field": p["field"], "message": p["message"]}
                      for r, p in zip(rows.tolist(), problems))
        keep = np.ones(len(frame), dtype=bool)
        keep[rows] = False
        frame = frame.iloc[np.flatnonzero(keep)].reset_index(drop=True)
        names, lines = names[keep], lines[keep]
    frame = frame.drop(columns=[c for c in ("source_file",) if c in frame.columns])
    out = normalize_measurements(frame, required=STORE_REQUIRED_COLUMNS, source="results")
    out["source_file"] = pd.Series(names, dtype=object, index=out.index).astype(str)
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


def completed_points(path: PathLike, *, stable_only: bool = True) -> set[tuple[str, str, str, str, str, int]]:
    """:func:`point_key` of every finished point in the results file ``path``: status ``ok``,
    ``stable`` true and not ``provisional`` (an error, a not-stable point or one whose sweep
    stopped before its last timing pass is measured again on resume). With
    ``stable_only=False`` a finished point that is not stable counts as finished too
    (``resume="unfinished"``, :mod:`effplan.bench.resume`). An absent
    file has none. Bad records are skipped (and reported by :func:`load`)."""
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return set()
    if not stable_only:  # the index keeps "finished" (stable) only: column-wise over the records
        return finished_points(load(p, duplicates="all"), stable_only=False)
    ents = _index.entries(p)          # the index beside the file, brought up to date first
    done = ents[(ents["valid"] == 1) & (ents["finished"] == 1)]
    return _entry_keys(done)


def _entry_keys(ents: pd.DataFrame) -> set[tuple]:
    """The distinct :func:`point_key` s of index entries (a validated row's own key where it
    differs from the written one)."""
    parts = ("candidate", "host", "hardware", "mode", "dtype", "batch_size", "prompt")
    if ents.empty:
        return set()
    uniq = ents.drop_duplicates(list(parts) + ["resume_key"])
    cols = {k: uniq[k].to_numpy(dtype=object if k not in ("batch_size", "prompt") else np.int64)
            for k in parts}
    keys = _keys.key_tuples(cols, np.arange(len(uniq)))
    for j, rk in enumerate(uniq["resume_key"].tolist()):
        if rk is not None and rk == rk:
            keys[j] = _keys.key_tuples({k: np.asarray([v], dtype=object) for k, v in zip(parts, rk)}, [0])[0]
    return set(keys)


def finished_points(frame: pd.DataFrame, *, stable_only: bool = True) -> set[tuple]:
    """:func:`point_key` of every finished row of ``frame`` (status ``ok``, ``stable`` true, not
    ``provisional``; ``stable_only=False``: stable or not), column-wise: the rule of
    :func:`completed_points`."""
    if frame.empty:
        return set()
    ok = (_keys.per_value(frame["status"], lambda v: str(v or "ok") == "ok").astype(bool)
          if "status" in frame.columns else np.ones(len(frame), dtype=bool))
    stable = _keys.truthy(frame, "stable") if stable_only else np.ones(len(frame), dtype=bool)
    done = ok & stable & ~_keys.truthy(frame, "provisional")
    rows = np.flatnonzero(done)
    if not len(rows):
        return set()
    kcols = _keys.key_columns(frame.iloc[rows])
    codes = _keys.point_codes(frame.iloc[rows], kcols)
    firsts = np.flatnonzero(~pd.Series(codes).duplicated().to_numpy())
    return set(_keys.key_tuples(kcols, firsts))


def points_since(path: PathLike, lines: int) -> tuple[int, int]:
    """``(points, provisional)`` among the records of ``path`` after its first ``lines`` lines
    (what one sweep appended): distinct :func:`point_key` s, and how many of them have a
    ``provisional`` newest record there (their sweep stopped before their last timing pass).
    Unreadable lines are not counted."""
    p = Path(path)
    if not p.exists():
        return 0, 0
    try:
        ents = _index.entries(p)
    except OSError:
        return 0, 0
    after = ents[ents["line"] > lines]
    if after.empty:
        return 0, 0
    parts = ["candidate", "host", "hardware", "mode", "dtype", "batch_size", "prompt"]
    newest = after.drop_duplicates(parts, keep="last")   # the written key, as the records hold it
    return len(newest), int(newest["provisional"].sum())


def _newest_first_order(frame: pd.DataFrame) -> np.ndarray:
    # empty or unparseable timestamps are NaT (then the file order decides)
    ts = pd.to_datetime(frame["timestamp"].astype(object), errors="coerce", utc=True, format="ISO8601")
    order = pd.DataFrame({"ts": ts, "pos": np.arange(len(frame))})
    # newest timestamp wins; equal or missing timestamps: the later record in the files wins
    return order.sort_values(["ts", "pos"], ascending=False, na_position="last", kind="mergesort")["pos"].to_numpy()


def _without(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``frame`` without the rows at ``positions``, renumbered from 0."""
    keep = np.ones(len(frame), dtype=bool)
    keep[np.asarray(positions, dtype=np.int64)] = False
    return frame.iloc[np.flatnonzero(keep)].reset_index(drop=True)


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
    # column-wise (effplan.store_keys): one code per point, newest first, the first of each code kept
    kcols = _keys.key_columns(frame)
    codes = _keys.point_codes(frame, kcols)
    order = _newest_first_order(frame)
    ordered = codes[order]
    first = ~pd.Series(ordered).duplicated().to_numpy()
    winner = np.empty(int(codes.max()) + 1, dtype=np.int64)
    winner[ordered[first]] = order[first]
    later = order[~first]                                   # newest first, as the loop met them
    prov = _keys.truthy(frame, "provisional")[later]
    drop, superseded = later[~prov], later[prov]
    if not len(drop):
        return _without(frame, superseded) if len(superseded) else frame
    p50 = pd.to_numeric(frame["latency_p50_ms"], errors="coerce").to_numpy(float)
    ci = pd.to_numeric(frame["latency_ci_rel"], errors="coerce").fillna(0.0).to_numpy(float)
    keep = winner[codes[drop]]
    a, b = p50[keep], p50[drop]
    with np.errstate(invalid="ignore"):
        # the two intervals around each median must overlap
        clash = ~(np.isnan(a) | np.isnan(b)) & (np.abs(a - b) > a * ci[keep] + b * ci[drop]
                                                 + 1e-12 * np.fmax(a, b))
    conflicts: list[str] = []
    for pos, k in zip(drop[clash].tolist(), _keys.key_tuples(kcols, drop[clash])):
        c, host, hw, mode, dtype, bs = k[:6]
        conflicts.append(f"{c} on {hw} ({mode}, {dtype or '?'}, bs={bs}): {p50[pos]:.4g} ms vs kept "
                         f"{p50[winner[codes[pos]]]:.4g} ms")
    out = _without(frame, np.concatenate([drop, superseded]))
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
    from .samples import Timing

    sp = Path(path) if str(path).endswith(".samples") else samples_path(path)
    out: dict[tuple, Any] = {}
    if not sp.exists():
        return out
    bad: list[str] = []
    provisional: dict[tuple, tuple] = {}  # point (+ phase) -> key of its provisional samples so far
    with open(sp, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    bad.append(f"line {lineno}: expected a JSON object, got {type(rec).__name__}")
                    continue
                point = (point_key(rec), str(rec.get("phase") or ""))
                key = (point_key(rec), str(rec.get("timestamp", "")))
                if rec.get("phase"):
                    key += (str(rec["phase"]),)
                timing = Timing.from_record(rec)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                bad.append(f"line {lineno}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            earlier = provisional.pop(point, None)
            if earlier is not None and earlier != key:
                out.pop(earlier, None)  # superseded by this later pass
            out[key] = timing
            if rec.get("provisional") is True:
                provisional[point] = key
    if bad:
        listing = "; ".join(bad[:10]) + ("; ..." if len(bad) > 10 else "")
        warnings.warn(f"{len(bad)} unreadable line(s) skipped in {sp} ({listing})", EffplanWarning,
                      stacklevel=2)
    return out
