"""The driver side of a fleet sweep (Ray and Slurm alike): what a task's messages
(:mod:`effplan.spool`) become in the driver's results store and in the returned Measurements.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError

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
    from .schema import MEASUREMENT_COLUMNS

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
        from . import store

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
        from . import store

        if self.path is None or not lines:
            return
        try:
            store.append_samples(self.path, lines)
        except (OSError, ValidationError):  # the records say whether they were saved
            pass

    # ------------------------------------------------------------------ messages
    def start(self, task: FleetTask, msg: Mapping[str, Any]) -> None:
        task.node_id, task.node_ip = str(msg.get("fleet_node_id", "")), str(msg.get("fleet_node_ip", ""))
        task.host_id = str(msg.get("host_id", ""))
        task.hardware = dict(msg.get("hardware") or {})

    def records(self, task: FleetTask, msg: Mapping[str, Any]) -> None:
        from . import store

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
        from .timing import Timing

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
    from .schema import SCHEMA_VERSION

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
