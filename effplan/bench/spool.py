"""The node side of a fleet task (Ray or Slurm): measure a candidate's points one after another
under the machine's measurement lock, and stream every timing pass back as it is saved.

On the node, each batch size is measured by the local harness (:func:`effplan.measurement.measure`)
in ONE worker process kept for the task, with ``results_path`` a spool file in a private
temporary folder: the harness appends every timing pass of every point there at once
(``provisional`` records until a point's last pass, exactly as a local sweep does). A reader
(:class:`Tail`) picks up each complete line as soon as it is written and the task sends it to
the driver, which appends it to its own store. So the driver's store holds each pass, with the
same provisional semantics as a local store, and a driver killed mid-sweep loses at most the
passes in flight.

:func:`stream_points` yields the task's messages (JSON-safe dicts, the same for Ray and Slurm):

* ``{"kind": "start", "hardware", "host_id", "fleet_node_id", "fleet_node_ip"}`` first;
* ``{"kind": "records", "records": [...], "samples": [...]}``: new store records (each with
  ``fleet_node_id`` / ``fleet_node_ip`` and the wall clock of its point so far,
  ``fleet_start_unix_s`` / ``fleet_end_unix_s``) and raw-sample lines;
* ``{"kind": "point", "batch_size", "start", "end", "waited_s", "warnings"}`` after a batch
  size's last record (all of its records were sent before it);
* ``{"kind": "error", "error": "Type: message"}`` when the task cannot go on (the candidate
  cannot be resolved on this node, ...): never an exception object, so it always arrives
  readable.
"""

from __future__ import annotations

import json
import math
import os
import queue
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import EffplanWarning

__all__ = ["Tail", "describe", "host_id", "run_points", "stream_points", "POLL_S"]

#: How often the node looks for new records while a point is measured, s.
POLL_S = 0.5


def describe(exc: BaseException) -> str:
    """``"Type: first line of the message"`` (what an error row says), at most 500 characters."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:500]


def host_id() -> str:
    """The machine this process runs on: ``$EFFPLAN_HOST_ID`` (a Kubernetes pod is told its
    node's name), else the hashed hostname (:attr:`effplan.hardware.HardwareInfo.host_hash`)."""
    from ..settings import HOST_ID_ENV
    from ..devices.hardware import _sha

    given = os.environ.get(HOST_ID_ENV, "").strip()
    return given or _sha(socket.gethostname())


class Tail:
    """New complete JSON lines of a file that another writer appends to (a partial last line
    is kept until its newline arrives; an unreadable line is skipped)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.offset = 0
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        out = []
        for raw in lines:
            if raw.strip():
                try:
                    out.append(json.loads(raw))
                except ValueError:
                    continue
        return out


def run_points(cand: Any, batch_sizes: list[int], mode: str, device: str,
               kwargs: Mapping[str, Any], spool: Path, *, exclusive: str = "host",
               on_start: Callable[[int, float], Any] = lambda bs, t: None,
               on_point: Callable[[dict[str, Any]], Any] = lambda msg: None) -> None:
    """Measure ``cand`` at each batch size, one after another, each under the machine's
    measurement lock (:func:`effplan.bench.hostlock.measurement_lock`), every pass saved to
    ``spool`` by the local sweep (:func:`effplan.bench.sweep.run`). ``kwargs``: the harness's
    settings (``timing``, ``energy``, ``sweep``, ``generation`` configs or their shortcuts). One
    worker process serves all of them (a crash or time-out replaces it)."""
    from dataclasses import replace

    from . import configs, points, sweep
    from .hostlock import measurement_lock
    from .threads import sweep_threads

    settings = configs.build(**{k: v for k, v in kwargs.items() if k != "_workers"})
    # the driver keeps the results file and decides what to resume; here: the node's spool
    settings = replace(settings, sweep=replace(settings.sweep, results_path=spool, resume=False,
                                               progress=False))
    isolate = settings.sweep.isolate if settings.sweep.isolate is not None else configs.ISOLATE_DEFAULT
    pool = points.worker_pool(sweep_threads(settings.sweep.threads)) if isolate else None
    try:
        for bs in batch_sizes:
            with measurement_lock(exclusive, uses_gpu=str(device).startswith("cuda")) as waited:
                start = time.time()
                on_start(bs, start)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    m = sweep.run([cand], [bs], mode, device, settings, workers=pool)
                end = time.time()
                # still holding the lock: a record's recorded end is never after the next
                # point on this machine started
                on_point({"kind": "point", "batch_size": bs, "start": start, "end": end,
                          "waited_s": float(waited),
                          "warnings": sorted({str(w.message) for w in caught
                                              if issubclass(w.category, EffplanWarning)
                                              and "points failed" not in str(w.message)})})
            rows = list(m.rows)
            idle = float(rows[0].get("idle_power_w", math.nan)) if rows else math.nan
            if settings.energy.idle_power_w is None and not math.isnan(idle):  # once per task
                settings = replace(settings, energy=replace(settings.energy, idle_power_w=idle))
    finally:
        if pool is not None:
            pool.close()


def stream_points(load: Callable[[], Any], batch_sizes: list[int], mode: str, device: str,
                  kwargs: Mapping[str, Any], node: Mapping[str, Any], *, exclusive: str = "host",
                  poll_s: float = POLL_S) -> Iterator[dict[str, Any]]:
    """The messages of one fleet task (see the module docstring). ``load()`` returns the
    candidate (resolved here, on the node); ``node``: ``fleet_node_id`` / ``fleet_node_ip``."""
    from ..devices.hardware import detect_hardware
    from ..records.store import samples_path

    try:
        hw = detect_hardware(device).to_dict()
    except Exception as exc:  # noqa: BLE001 - sent as text: the driver writes the error rows
        yield {"kind": "error", "error": f"hardware detection failed: {describe(exc)}", **node}
        return
    yield {"kind": "start", "hardware": hw, "host_id": host_id(), **node}
    try:
        cand = load()
    except Exception as exc:  # noqa: BLE001 - an effplan error raised here arrives as its text
        yield {"kind": "error", "error": describe(exc), **node}
        return
    with tempfile.TemporaryDirectory(prefix="effplan-spool-") as tmp:
        spool = Path(tmp) / "points.jsonl"
        events: queue.Queue = queue.Queue()
        starts: dict[int, float] = {}
        ends: dict[int, float] = {}

        def ended(msg: dict[str, Any]) -> None:
            ends[int(msg["batch_size"])] = float(msg["end"])
            events.put(msg)

        def work() -> None:
            try:
                run_points(cand, batch_sizes, mode, device, kwargs, spool, exclusive=exclusive,
                           on_start=lambda bs, t: starts.__setitem__(bs, t), on_point=ended)
            except BaseException as exc:  # noqa: BLE001 - reported as text, the task ends
                events.put({"kind": "error", "error": describe(exc)})
            finally:
                events.put(None)

        records, samples = Tail(spool), Tail(samples_path(spool))

        def flush() -> dict[str, Any] | None:
            recs, samps = records.read(), samples.read()
            if not recs and not samps:
                return None
            now = time.time()
            for rec in recs:
                bs = int(rec.get("batch_size") or 0)
                # a record read before its point ended: the time it was read (earlier than the
                # point's end, and the point's machine lock was still held then)
                rec.update(fleet_start_unix_s=starts.get(bs, math.nan),
                           fleet_end_unix_s=ends.get(bs, now), **node)
            return {"kind": "records", "records": recs, "samples": samps, **node}

        thread = threading.Thread(target=work, name="effplan-fleet-points", daemon=True)
        thread.start()
        while True:
            try:
                event = events.get(timeout=poll_s)
            except queue.Empty:
                event = False
            batch = flush()  # before the point's end: its records always come first
            if batch is not None:
                yield batch
            if event is None:
                break
            if event:
                yield {**event, **node}
        thread.join(timeout=5)
