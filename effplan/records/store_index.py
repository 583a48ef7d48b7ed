"""The index beside a results file: what resume needs, without reading the records again.

``<results>.index`` (:func:`index_path`) is JSON Lines, written only by effplan, one entry per
record line of the results file plus a state line after each update:

* entry: ``[line, offset, length, valid, finished, provisional, candidate, host, hardware,
  mode, dtype, batch_size, prompt, resume_key]`` -- the record's line number, byte offset and
  length in the results file; ``valid`` (1: it passes the store's validator, so :func:`load`
  returns it); ``finished`` (status ok, stable, not provisional: :func:`completed_points`);
  ``provisional`` (as written); the seven parts of its :func:`~effplan.store.point_key` as
  written (``prompt`` -2 when not a generation row), and ``resume_key``: ``null``, or the key
  of the validated row where it differs (a batch size written as the text ``"8.0"``);
* state: ``["state", size, mtime_ns, next_offset, next_line, crc32]`` -- the results file as
  the index last saw it, where its next line starts, and the CRC-32 of its last record line.

An unreadable line has no entry (:func:`~effplan.store.load` still reports it by
``file:line``). :func:`entries` reads the index and brings it up to date: in step with the
file (same size and modification time) it is used as is; a file that only grew (another
writer appended; checked by the last record line's CRC-32) has just its new lines read and
indexed; anything else (a file rewritten, cut or edited in place) rebuilds the index from the
whole file. :func:`extend` is what :func:`~effplan.store.append` calls after it wrote: the
new entries come from the records themselves, so appending never reads the results again.
The index is derived data: deleting it is always safe (it is rebuilt on the next resume).
"""

from __future__ import annotations

import json
import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import store_keys as _keys
from .schema import normalize_measurements
from .store_read import STORE_REQUIRED_COLUMNS, _validate, read_chunks

__all__ = ["index_path", "entries", "extend", "build_entries", "INDEX_COLUMNS"]

#: Columns of an entry, in order.
INDEX_COLUMNS: tuple[str, ...] = ("line", "offset", "length", "valid", "finished", "provisional",
                                  "candidate", "host", "hardware", "mode", "dtype", "batch_size",
                                  "prompt", "resume_key")
_KEY_PARTS = ("candidate", "host", "hardware", "mode", "dtype", "batch_size", "prompt")


def index_path(results: str | os.PathLike) -> Path:
    """``<results>.index`` beside the results file (not matched by a ``*.jsonl`` glob)."""
    p = Path(results)
    return p.with_name(p.name + ".index")


def _crc(results: Path, offset: int, length: int) -> int:
    with open(results, "rb") as fh:
        fh.seek(offset)
        return zlib.crc32(fh.read(length))


def build_entries(frame: pd.DataFrame, lines: list[int], offsets: list[int], lengths: list[int]) -> list[list]:
    """Index entries of the raw records ``frame`` (``DataFrame.from_records`` of the parsed
    lines) found at ``lines`` / ``offsets`` / ``lengths``: validated and keyed column-wise,
    with the rules :func:`~effplan.store.load` and :func:`~effplan.store.completed_points` use."""
    n = len(frame)
    if n == 0:
        return []
    raw = _keys.key_columns(frame)
    prov = _keys.truthy(frame, "provisional")
    # every required column present: a record that lacks one is invalid, as it is in a whole file
    full = frame.assign(**{c: None for c in STORE_REQUIRED_COLUMNS if c not in frame.columns})
    problems = _validate(full, [f"row {i}" for i in range(n)])
    valid = np.ones(n, dtype=bool)
    valid[[p["row"] for p in problems]] = False
    finished = np.zeros(n, dtype=bool)
    resume: list[Any] = [None] * n
    rows = np.flatnonzero(valid)
    if len(rows):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            norm = normalize_measurements(full.iloc[rows].reset_index(drop=True),
                                          required=STORE_REQUIRED_COLUMNS, source="results")
        ok = _keys.per_value(norm["status"], lambda v: str(v or "ok") == "ok").astype(bool)
        finished[rows] = ok & _keys.truthy(norm, "stable") & ~_keys.truthy(norm, "provisional")
        nk = _keys.key_columns(norm)
        differs = np.zeros(len(rows), dtype=bool)
        for part in _KEY_PARTS:
            differs |= np.asarray(nk[part] != raw[part][rows], dtype=bool)
        for j in np.flatnonzero(differs).tolist():
            resume[int(rows[j])] = [nk[part][j] for part in _KEY_PARTS]
    cols = [lines, offsets, lengths, valid.astype(int).tolist(), finished.astype(int).tolist(),
            prov.astype(int).tolist()] + [raw[part].tolist() for part in _KEY_PARTS] + [resume]
    return [list(e) for e in zip(*cols)]


def _scan(results: Path, start: int, first_line: int) -> tuple[list[list], int, int]:
    """Entries of the lines of ``results`` from byte ``start`` (line ``first_line``), and where the
    next line starts after them (offset, line number)."""
    out: list[list] = []
    next_offset, next_line = start, first_line
    for chunk in read_chunks(results, lambda line, why: None, start=start, first_line=first_line):
        out += build_entries(chunk.frame, chunk.lines, chunk.offsets, chunk.lengths)
        next_offset, next_line = chunk.next_offset, chunk.next_line
    return out, next_offset, next_line


def _dumps(rows: list[list]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)


def _state(results: Path, next_offset: int, next_line: int, last: list | None) -> list:
    st = os.stat(results)
    crc = _crc(results, last[1], last[2]) if last is not None else 0
    # the size read up to: lines written after the scan are read by the next one
    return ["state", st.st_size, st.st_mtime_ns, next_offset, next_line, crc]


def _read_index(ip: Path) -> tuple[list[list], list | None]:
    """(entries, last state) of an index file; ([], None) when absent or unreadable."""
    try:
        text = ip.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return [], None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    try:
        rows = json.loads("[" + ",".join(lines) + "]")
    except ValueError:
        return [], None
    if len(rows) != len(lines) or not all(isinstance(r, list) for r in rows):
        return [], None
    ents = [r for r in rows if r and r[0] != "state"]
    states = [r for r in rows if r and r[0] == "state"]
    if (not states or rows[-1][0] != "state" or any(len(r) != len(INDEX_COLUMNS) for r in ents)
            or len(states[-1]) != 6):
        return [], None
    return ents, states[-1]


def _write(ip: Path, rows: list[list], *, mode: str) -> bool:
    try:
        with open(ip, mode, encoding="utf-8", newline="\n") as fh:
            fh.write(_dumps(rows))
            fh.flush()
            os.fsync(fh.fileno())
        return True
    except OSError:   # a read-only folder: the index is only a speed-up
        return False


def entries(results: str | os.PathLike, *, write: bool = True) -> pd.DataFrame:
    """The index entries of ``results`` (columns :data:`INDEX_COLUMNS`), brought up to date with
    the file first (see the module docstring); ``write=False`` never creates or changes the
    index file. An absent results file has none."""
    rp = Path(results)
    if not rp.exists():
        return pd.DataFrame(columns=list(INDEX_COLUMNS))
    ip = index_path(rp)
    ents, state = _read_index(ip)
    st = os.stat(rp)
    if state is not None and (state[1], state[2]) == (st.st_size, st.st_mtime_ns):
        pass                                              # in step: nothing to read
    elif (state is not None and st.st_size >= state[1]
          and (not ents or _crc(rp, ents[-1][1], ents[-1][2]) == state[5])):
        new, nxt_off, nxt_line = _scan(rp, state[3], state[4])   # grown: index the new lines only
        # the line the last state saw as cut off (no newline yet) may be whole now: scanned again
        ents = [e for e in ents if e[1] < state[3]] + new
        last = ents[-1] if ents else None
        if write:
            _write(ip, new + [_state(rp, nxt_off, nxt_line, last)], mode="a")
    else:
        ents, nxt_off, nxt_line = _scan(rp, 0, 1)          # rebuilt from the whole file
        if write:
            _write(ip, ents + [_state(rp, nxt_off, nxt_line, ents[-1] if ents else None)], mode="w")
    return pd.DataFrame(ents, columns=list(INDEX_COLUMNS))


def _last_state(ip: Path) -> list | None:
    """The last line of the index, when it is a state line (read from the end: the index is not
    read whole on an append)."""
    try:
        with open(ip, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            tail = fh.read()
    except OSError:
        return None
    lines = tail.rstrip(b"\n").split(b"\n")
    try:
        state = json.loads(lines[-1])
    except ValueError:
        return None
    return state if isinstance(state, list) and len(state) == 6 and state[0] == "state" else None


def extend(results: Path, before: os.stat_result | None, written: str, records_frame: pd.DataFrame) -> None:
    """After :func:`~effplan.store.append` wrote ``written`` (whole lines, one per row of
    ``records_frame``; a leading newline when it closed a cut-off line first) to ``results``:
    add their entries to the index, reading nothing of the results file. Only when the index
    was in step with the file just before the write (``before``: its stat then; None: the file
    was new); otherwise nothing is done here and the next :func:`entries` catches up by reading
    the new lines. When another writer appended at the same time, the state saved says so (no
    modification time), and the next :func:`entries` reads what it wrote."""
    ip = index_path(results)
    if before is None or before.st_size == 0:
        state: list | None = ["state", 0, None, 0, 1, 0]
        mode = "w"
    else:
        state = _last_state(ip) if ip.exists() else None
        if state is None or (state[1], state[2]) != (before.st_size, before.st_mtime_ns):
            return
        mode = "a"
    data = written.encode("utf-8")
    offset, line = state[3], state[4]
    if data.startswith(b"\n"):
        # a cut-off last line was closed first: it is one (unreadable) line of its own
        offset, line, data = before.st_size + 1, line + 1, data[1:]
    pieces = data.split(b"\n")[:-1]
    if not pieces:
        return
    lengths = [len(p) + 1 for p in pieces]
    offsets = (offset + np.concatenate([[0], np.cumsum(lengths)[:-1]])).astype(int).tolist()
    lines = list(range(line, line + len(pieces)))
    new = build_entries(records_frame, lines, offsets, lengths)
    end = offsets[-1] + lengths[-1]
    st = os.stat(results)
    mtime = st.st_mtime_ns if st.st_size == end else None    # None: another writer appended too
    crc = zlib.crc32(pieces[-1] + b"\n")
    _write(ip, new + [["state", end, mtime, end, line + len(pieces), crc]], mode=mode)
