"""Sweeps on Slurm, the scheduler of research and HPC clusters, through ``submitit``.

``effplan.measure(candidates, batch_sizes, executor="slurm", results_path=...,
fleet=SlurmOptions(partition="gpu", gpus_per_task=1, time_limit_min=60))`` submits ONE job
array (``executor.map_array``): one array task per candidate, measuring every batch size of it
with the local harness on the node it lands on (one worker process for the candidate, as on
Ray). ``pip install "effplan[slurm]"``; ``submitit`` is imported only when a sweep asks for it.

* **Streaming.** Each array task writes its messages (:mod:`effplan.bench.spool`: every timing pass
  of every point as it is saved, provisional until the point's last pass) to a stream file in
  :attr:`SlurmOptions.folder`, which must be on a filesystem the driver and the nodes share (as
  Slurm's own log folder). The driver tails every stream and appends each record to ITS store
  at once (:mod:`effplan.bench.fleet_sink`, the same code as the Ray driver's): a killed driver loses
  at most the passes it had not read; a resumed sweep picks up the rest.
* **Error rows.** A candidate that raises is an error row (the harness); a task that cannot load
  its candidate sends the error as text; a job that fails, is cancelled or runs out of its time
  limit gives error rows for its unfinished points, naming the job and its state. The sweep goes
  on.
* **Resume.** As on Ray: ``resume=True`` / ``"unfinished"`` skips the points the store holds as
  finished for this target label (:attr:`SlurmOptions.name`, else the partition, else
  ``"slurm"``); ``"unstable"`` re-measures the finished-but-unstable ones too.
* **Exclusivity.** ``exclusive="host"`` (default) asks Slurm for whole nodes (``--exclusive``)
  and every point also holds the machine's measurement lock (:mod:`effplan.bench.hostlock`), so array
  tasks that share a node never time at once; ``exclusive="gpu"``: no ``--exclusive``, one lock
  per GPU the task holds.
* **No Slurm here.** ``cluster=None`` picks Slurm where ``sbatch`` exists, else submitit's
  local executor (array tasks are subprocesses of this machine: how CI tests this module);
  ``cluster="local"`` forces that, ``cluster="slurm"`` requires Slurm.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EffplanError, ValidationError

if TYPE_CHECKING:
    from ..records.measurements import Measurements

__all__ = ["SlurmOptions", "measure_on_slurm"]


@dataclass(frozen=True)
class SlurmOptions:
    """How a Slurm sweep is submitted (see the module docstring).

    Attributes
    ----------
    folder: submitit's folder (job scripts, logs, pickles) and the points' streams; shared by
        the driver and the nodes.
    partition: Slurm partition (``--partition``); None: the cluster's default.
    gpus_per_task: GPUs each array task holds (``--gpus-per-node``); 0: a CPU sweep.
    cpus_per_task, mem_gb: the task's CPUs and memory (None: the cluster's defaults).
    time_limit_min: each array task's time limit, minutes.
    array_parallelism: at most this many array tasks run at once.
    exclusive: ``"host"`` (whole nodes, one measurement per machine) or ``"gpu"``.
    cluster: None (Slurm if available, else local), ``"slurm"``, ``"local"`` or ``"debug"``.
    name: the target label stored in ``fleet_target`` (default: the partition, else "slurm").
    extra: further submitit parameters, e.g. ``{"slurm_account": "proj", "slurm_qos": "high"}``.
    poll_s: how often the driver reads the streams, s.
    """

    folder: str | os.PathLike = "effplan-slurm"
    partition: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    time_limit_min: int = 60
    array_parallelism: int = 16
    exclusive: str = "host"
    cluster: str | None = None
    name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    poll_s: float = 1.0

    def __post_init__(self) -> None:
        from .hostlock import check_exclusive
        from ..records.schema import number

        where = "SlurmOptions"
        for fname, lo in (("gpus_per_task", 0), ("time_limit_min", 1), ("array_parallelism", 1)):
            v = getattr(self, fname)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValidationError(fname, f"must be an integer >= {lo}, got {v!r}", where=where)
        if self.cpus_per_task is not None and (isinstance(self.cpus_per_task, bool) or not isinstance(
                self.cpus_per_task, int) or self.cpus_per_task < 1):
            raise ValidationError("cpus_per_task", f"must be an integer >= 1 or None, got "
                                  f"{self.cpus_per_task!r}", where=where)
        if self.mem_gb is not None:
            number("mem_gb", self.mem_gb, lo=0, lo_open=True)
        number("poll_s", self.poll_s, lo=0, lo_open=True)
        check_exclusive(self.exclusive)
        if self.cluster not in (None, "slurm", "local", "debug"):
            raise ValidationError("cluster", f"must be None, 'slurm', 'local' or 'debug', got "
                                  f"{self.cluster!r}", where=where)
        if not isinstance(self.extra, Mapping):
            raise ValidationError("extra", "must be a mapping of submitit parameters", where=where)

    @property
    def label(self) -> str:
        return self.name or self.partition or "slurm"

    def parameters(self, cluster: str) -> dict[str, Any]:
        """submitit's ``update_parameters`` keywords."""
        params: dict[str, Any] = {"timeout_min": int(self.time_limit_min), "tasks_per_node": 1,
                                  "nodes": 1, "name": "effplan-measure"}
        if self.gpus_per_task:
            params["gpus_per_node"] = int(self.gpus_per_task)
        if self.cpus_per_task:
            params["cpus_per_task"] = int(self.cpus_per_task)
        if self.mem_gb:
            params["mem_gb"] = float(self.mem_gb)
        if cluster == "slurm":
            params["slurm_array_parallelism"] = int(self.array_parallelism)
            if self.partition:
                params["slurm_partition"] = self.partition
            if self.exclusive == "host":
                params["slurm_exclusive"] = True
        params.update(self.extra)
        return params


def _require_submitit() -> Any:
    try:
        import submitit  # noqa: PLC0415 - optional, imported lazily
    except ImportError as exc:
        raise EffplanError(f"executor='slurm' needs submitit, which is not installed ({exc}): "
                           "pip install 'effplan[slurm]'") from None
    return submitit


def _slurm_task(shipped: Any, batch_sizes: list[int], mode: str, device: str,
                kwargs: dict[str, Any], exclusive: str, stream: str) -> int:
    """One array task on its node: every message of :func:`effplan.bench.spool.stream_points` as a
    line of ``stream`` (flushed and fsync'ed). Returns the number of messages."""
    from .spool import stream_points

    job = os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID", ""))
    task = os.environ.get("SLURM_ARRAY_TASK_ID", "")
    try:
        import submitit

        job = job or submitit.JobEnvironment().job_id
    except Exception:  # noqa: BLE001 - not in a submitit job (tests call this directly)
        job = job or f"pid{os.getpid()}"
    node = {"fleet_node_id": f"slurm:{job}{'_' + task if task and '_' not in job else ''}",
            "fleet_node_ip": socket.gethostname()}
    n = 0
    with open(stream, "a", encoding="utf-8") as fh:
        for msg in stream_points(shipped.load, batch_sizes, mode, device, kwargs, node,
                                 exclusive=exclusive):
            fh.write(json.dumps(msg, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            n += 1
    return n


def measure_on_slurm(candidates: Any, batch_sizes: Sequence[int] = (1, 8, 32),
                     mode: str = "inference", device: str = "auto", *, targets: Any = None,
                     resume: bool | str = False, results_path: str | os.PathLike | None = None,
                     progress: bool = True, fleet: SlurmOptions | None = None,
                     **measure_kwargs: Any) -> Measurements:
    """Measure every candidate x batch size as a Slurm job array; see the module docstring.

    ``candidates``, ``batch_sizes``, ``mode``, ``resume``, ``results_path``, ``progress`` and the
    harness's keywords are as for :func:`effplan.fleet.measure_on_ray`; ``fleet`` is a
    :class:`SlurmOptions`. ``device="auto"``: ``"cuda"`` with ``gpus_per_task``, else ``"cpu"``.
    """
    from ..records import store
    from .fleet_sink import Sink, _finish, _finished, _sweep_args, _todo
    from .fleet_targets import Target
    from .resume import resume_mode

    opts = fleet or SlurmOptions()
    if not isinstance(opts, SlurmOptions):
        raise ValidationError("fleet", f"executor='slurm' takes SlurmOptions, got {type(opts).__name__}")
    if targets is not None:
        raise ValidationError("targets", "targets are Ray resources: with executor='slurm' give "
                              "SlurmOptions(partition=..., gpus_per_task=...)")
    shipped, bss, target_list = _sweep_args(candidates, batch_sizes, mode,
                                            [Target(num_gpus=opts.gpus_per_task, name=opts.label)])
    how = resume_mode(resume)
    if how and results_path is None:
        raise ValidationError("resume", "resume=True needs results_path= (the store to resume from)")
    from .configs import build

    if build(**measure_kwargs).sweep.raise_errors:
        raise ValidationError("raise_errors", "not supported with executor='slurm': failures are "
                              "error rows (see the 'error' column)")
    measure_kwargs.pop("raise_errors", None)
    if results_path is not None:
        store.check_results_path(results_path)
    submitit = _require_submitit()
    from .fleet_candidates import _register_loaded_files

    _register_loaded_files()
    tasks = _todo(shipped, target_list, bss, mode, _finished(results_path, how) if how else set())
    sink = Sink(results_path, mode)
    if tasks:
        _run(submitit, tasks, sink, opts, mode, device, dict(measure_kwargs), progress)
    return _finish(sink, results_path)


def _run(submitit: Any, tasks: list[Any], sink: Any, opts: SlurmOptions, mode: str, device: str,
         kwargs: dict[str, Any], progress: bool) -> None:
    from tqdm.auto import tqdm

    from .spool import Tail

    folder = Path(opts.folder)
    cluster = opts.cluster
    if cluster is None:
        cluster = "slurm" if submitit.AutoExecutor.which() == "slurm" else "local"
    executor = submitit.AutoExecutor(folder=folder / "jobs", cluster=cluster)
    executor.update_parameters(**opts.parameters(cluster))
    streams = folder / "streams"
    streams.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    paths = [str(streams / f"{stamp}-{i}.jsonl") for i in range(len(tasks))]
    dev = ("cuda" if opts.gpus_per_task else "cpu") if str(device) == "auto" else str(device)
    jobs = executor.map_array(_slurm_task, [t.shipped for t in tasks], [list(t.remaining) for t in tasks],
                              [mode] * len(tasks), [dev] * len(tasks), [kwargs] * len(tasks),
                              [opts.exclusive] * len(tasks), paths)
    tails = [Tail(p) for p in paths]
    bar = tqdm(total=sum(len(t.remaining) for t in tasks), desc=f"effplan slurm ({mode})",
               disable=not progress, leave=True)
    open_ = set(range(len(tasks)))
    try:
        while open_:
            for i in sorted(open_):
                finished = jobs[i].done()  # before reading: every line written so far is read
                for msg in tails[i].read():
                    _handle(msg, tasks[i], sink, bar)
                if finished or not tasks[i].remaining:
                    if tasks[i].remaining:
                        bar.update(sink.fail(tasks[i], _job_failure(jobs[i])))
                    open_.discard(i)
            if open_:
                time.sleep(opts.poll_s)
    except BaseException:  # Ctrl-C or a store error: every pass read so far is on disk
        for job in jobs:
            try:
                job.cancel(check=False)
            except Exception:  # noqa: BLE001 - best effort
                pass
        raise
    finally:
        bar.close()


def _handle(msg: Mapping[str, Any], task: Any, sink: Any, bar: Any) -> None:
    kind = msg.get("kind")
    if kind == "start":
        sink.start(task, msg)
    elif kind == "records":
        sink.records(task, msg)
    elif kind == "point":
        if sink.point(task, msg):
            bar.update(1)
    elif kind == "error":
        bar.update(sink.fail(task, str(msg.get("error"))))


def _job_failure(job: Any) -> str:
    """Why a job ended without its points: its state and the first line of its error."""
    try:
        state = str(job.state)
    except Exception:  # noqa: BLE001 - the state may not be known any more
        state = "unknown"
    why = ""
    try:
        exc = job.exception()
        if exc is not None:
            lines = [x for x in str(exc).strip().splitlines() if x.strip()]
            why = f": {type(exc).__name__}: {lines[-1] if lines else ''}"[:400]
    except Exception as exc:  # noqa: BLE001 - reported as text
        why = f": {type(exc).__name__}: {exc}"[:400]
    return f"Slurm job {job.job_id} ended ({state}) without measuring this point{why}"
