"""The driver side of a fleet sweep (Ray and Slurm alike): what a task's messages
(:mod:`effplan.bench.spool`) become in the driver's results store and in the returned Measurements.

* ``records``: every record is appended to the store AT ONCE (``store.append``, fsync'ed) with
  its ``fleet_target``; a provisional record (a pass that a later one supersedes) too, so the
  store's provisional semantics are exactly a local sweep's. Raw-sample lines go beside it.
* ``point``: the batch size is done; its final (not provisional) records are the sweep's rows.
* A task that fails (``error`` message, a Ray or Slurm failure, a lost node or head) gives one
  error row per point it had not finished, naming the node and the reason.

Records of a batch size that is already done (sent again by a retried attempt) are dropped, so
a retry never writes a point twice nor makes a finished point provisional again.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EffplanWarning, ValidationError
from .fleet_candidates import _Shipped, _ship
from .fleet_targets import Target

if TYPE_CHECKING:
    from ..records.measurements import Measurements

__all__ = ["FleetTask", "Sink"]


@dataclass
class FleetTask:
    """One candidate x target of a sweep, as the driver tracks it."""

    shipped: Any  # effplan.fleet._Shipped
    target: Any  # effplan.fleet.Target
    remaining: list[int]
    node_id: str = ""
    node_ip: str = ""
    host_id: str = ""
    hardware: Mapping[str, Any] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    final: dict[int, dict[tuple, dict[str, Any]]] = field(default_factory=dict)
    samples: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def node_label(self) -> str:
        if not self.node_id:
            return "?"
        short = self.node_id if self.node_id.startswith("slurm:") else self.node_id[:6]
        return f"{self.node_ip}/{short}"


def _row(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record as a Measurements row: the schema's missing values (NaN, ""), every
    other field (``hw_*``, ``fleet_*``) kept."""
    from ..records.schema import MEASUREMENT_COLUMNS

    row = dict(rec)
    for col, (kind, _) in MEASUREMENT_COLUMNS.items():
        if row.get(col) is None:
            row[col] = "" if kind == "str" else math.nan
    return row


class Sink:
    """Appends a sweep's records to ``results_path`` as they arrive and collects its rows."""

    def __init__(self, results_path: str | os.PathLike | None, mode: str) -> None:
        self.path = results_path
        self.mode = mode
        self.rows: list[dict[str, Any]] = []
        self.unsaved: list[str] = []
        self.hardware: dict[str, dict[str, Any]] = {}
        self.samples: dict[tuple[str, str, str, int], Any] = {}
        self.messages: list[str] = []

    # ------------------------------------------------------------------ writing
    def _append(self, rec: dict[str, Any], hw: Mapping[str, Any] | None = None) -> None:
        from ..records import store

        if self.path is None:
            return
        try:
            store.append(self.path, [rec], hardware=dict(hw) if hw else None)
        except (OSError, ValidationError) as exc:  # as the local executor: kept, with the reason
            msg = f"not saved to {self.path}: {type(exc).__name__}: {exc}"
            rec["error"] = f"{rec['error']}; {msg}" if rec.get("error") else msg
            label = f"{rec['candidate']} bs={rec['batch_size']} on {rec.get('fleet_target', '?')}"
            if label not in self.unsaved:
                self.unsaved.append(label)

    def _append_samples(self, lines: list[dict[str, Any]]) -> None:
        from ..records import store

        if self.path is None or not lines:
            return
        try:
            store.append_samples(self.path, lines)
        except (OSError, ValidationError) as exc:  # the records are on disk: only samples lost
            label = (f"raw samples of {len(lines)} pass(es) (raw samples only: "
                     f"{type(exc).__name__}: {exc})")
            if label not in self.unsaved:
                self.unsaved.append(label)

    # ------------------------------------------------------------------ messages
    def start(self, task: FleetTask, msg: Mapping[str, Any]) -> None:
        task.node_id, task.node_ip = str(msg.get("fleet_node_id", "")), str(msg.get("fleet_node_ip", ""))
        task.host_id = str(msg.get("host_id", ""))
        task.hardware = dict(msg.get("hardware") or {})

    def records(self, task: FleetTask, msg: Mapping[str, Any]) -> None:
        from ..records import store

        for rec in msg.get("records", []):
            bs = int(rec.get("batch_size") or 0)
            if bs in task.done or bs not in task.remaining:
                continue  # sent again by a retried attempt: already stored
            rec = dict(rec, fleet_target=task.target.label)
            self._append(rec)
            if rec.get("provisional") is not True:
                task.final.setdefault(bs, {})[store.point_key(rec)] = rec
        lines = [s for s in msg.get("samples", []) if int(s.get("batch_size") or 0) not in task.done]
        self._append_samples(lines)
        for s in lines:
            if not s.get("phase"):
                task.samples[int(s.get("batch_size") or 0)] = s

    def point(self, task: FleetTask, msg: Mapping[str, Any]) -> bool:
        """A batch size is done; False when it was done already (a retried attempt)."""
        from ..records.samples import Timing

        bs = int(msg["batch_size"])
        if bs in task.done or bs not in task.remaining:
            return False
        task.remaining.remove(bs)
        task.done.add(bs)
        rows = [_row(r) for r in task.final.pop(bs, {}).values()]
        key = f"{task.hardware.get('device') or (rows[0]['device'] if rows else '')}@{task.node_id[:8]}"
        self.hardware[key] = dict(task.hardware)
        self.rows.extend(rows)
        line = task.samples.pop(bs, None)
        if len(rows) == 1 and line is not None:
            try:
                self.samples[(rows[0]["candidate"], key, self.mode, bs)] = Timing.from_record(line)
            except (KeyError, TypeError, ValueError):
                pass
        self.messages += list(msg.get("warnings", []))
        return True

    def fail(self, task: FleetTask, reason: str) -> int:
        """Every point ``task`` had not finished becomes an error row; returns how many."""
        n = 0
        for bs in list(task.remaining):
            row = _error_row(task, bs, self.mode, reason)
            self._append(row, task.hardware or None)
            self.rows.append(row)
            n += 1
        task.remaining.clear()
        return n


def _error_row(task: FleetTask, bs: int, mode: str, reason: str) -> dict[str, Any]:
    from ..records.schema import SCHEMA_VERSION

    hw = task.hardware
    where = f"node {task.node_label}" if task.node_id else "no node"
    return {"candidate": task.shipped.name, "hardware": str(hw.get("name") or "unknown"),
            "hardware_id": str(hw.get("hardware_id") or ""), "mode": mode, "batch_size": int(bs),
            "device": str(hw.get("device") or ""), "dtype": task.shipped.dtype or "",
            "provenance": "measured", "energy_source": "none", "status": "error",
            "error": f"{where}: {reason}", "schema_version": SCHEMA_VERSION,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "fleet_target": task.target.label, "fleet_node_id": task.node_id,
            "fleet_node_ip": task.node_ip, "fleet_start_unix_s": math.nan,
            "fleet_end_unix_s": math.nan}


# ------------------------------------------------------------------ the sweep around the sink
def _sweep_args(candidates: Any, batch_sizes: Any, mode: str,
                targets: Any) -> tuple[list[_Shipped], list[int], list[Target]]:
    """The validated candidates, batch sizes and targets of a fleet sweep (local rules)."""
    from ..records.schema import MODES

    shipped = _ship(candidates)
    from .configs import positive_ints

    # the rules of the local sweep: positive integer batch sizes (numpy integers too), a known mode
    bss = positive_ints("batch_sizes", batch_sizes)
    if mode not in MODES:
        raise ValidationError("mode", f"{mode!r} is not one of {MODES}")
    if targets is None or isinstance(targets, str | Target | Mapping):
        targets = ["cpu"] if targets is None else [targets]
    target_list = [Target.of(t) for t in targets]
    if not target_list:
        raise ValidationError("targets", "no targets given")
    labels = [t.label for t in target_list]
    if len(set(labels)) != len(labels):
        raise ValidationError("targets", f"target labels must be unique, got {labels}; give "
                              "Target(name=...) to tell them apart")
    return shipped, bss, target_list


def _load_all(path: str | os.PathLike) -> Any:
    """Every record of ``path``, duplicates of a point included (two targets may share a host)."""
    from ..records import store
    return store.load(path, duplicates="all")


def _finished(path: str | os.PathLike, how: str = "unfinished") -> set[tuple[str, str, str, int, str]]:
    """(candidate, target label, mode, batch size, dtype) of the finished fleet points in ``path``:
    rows measured for a target whose :func:`effplan.store.point_key` is among the points
    ``how`` (a resume mode, :mod:`effplan.bench.resume`) counts as finished."""
    from .resume import finished_points

    if not Path(path).exists():
        return set()
    completed = finished_points(path, how)
    frame = _load_all(path)
    if "fleet_target" not in frame.columns:
        return set()
    from ..records import store

    done = set()
    for rec in frame.to_dict(orient="records"):
        target = rec.get("fleet_target")
        if isinstance(target, str) and target and store.point_key(rec) in completed:
            done.add((str(rec["candidate"]), target, str(rec["mode"]), int(rec["batch_size"]),
                      str(rec.get("dtype") or "")))
    return done


def _todo(shipped: list[_Shipped], targets: list[Target], bss: list[int], mode: str,
          done: set[tuple[str, str, str, int, str]]) -> list[Any]:
    """One :class:`effplan.bench.fleet_sink.FleetTask` per candidate x target with points to measure."""
    from .fleet_sink import FleetTask

    tasks = []
    for s in shipped:
        for t in targets:
            # a candidate without a fixed dtype matches a finished point of any dtype label
            todo = [b for b in bss if not any(k[:4] == (s.name, t.label, mode, b)
                                              and (s.dtype is None or k[4] == s.dtype) for k in done)]
            if todo:
                tasks.append(FleetTask(s, t, todo))
    return tasks


def _finish(sink: Any, results_path: Any) -> Measurements:
    from ..records.measurements import Measurements

    for msg in dict.fromkeys(sink.messages):
        warnings.warn(f"effplan fleet (on a worker): {msg}", EffplanWarning, stacklevel=4)
    rows = sink.rows
    failed = [f"{r['candidate']} bs={r['batch_size']} on {r.get('fleet_target', '?')}" for r in rows
              if r.get("status") != "ok"]
    if failed:
        warnings.warn(f"effplan.measure (fleet): {len(failed)} of {len(rows)} points failed "
                      f"({', '.join(failed[:5])}{', ...' if len(failed) > 5 else ''}); see the "
                      "'status' and 'error' columns (Measurements.errors)", EffplanWarning,
                      stacklevel=4)
    if sink.unsaved:
        unsaved = sink.unsaved
        warnings.warn(f"effplan.measure (fleet): {len(unsaved)} points could not be saved to "
                      f"{results_path} ({', '.join(unsaved[:5])}{', ...' if len(unsaved) > 5 else ''});"
                      " they are in the returned Measurements (reason in 'error'): save them with "
                      "effplan.store.save_frame(m.to_frame(), another_path)", EffplanWarning,
                      stacklevel=4)
    return Measurements(rows=tuple(rows), hardware=sink.hardware, samples=sink.samples)
