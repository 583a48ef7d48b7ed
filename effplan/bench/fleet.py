"""Sweeps across a fleet on Ray: each point on a node with the hardware it asks for, one
measurement per MACHINE at a time, every timing pass streamed back into one results store on
the driver.

``effplan.measure(candidates, batch_sizes, executor="ray", ray_address=..., targets=[...])``
(or :func:`measure_on_ray`) runs the same measurement harness as the local executor
(:func:`effplan.measurement.measure`), but on the nodes of a Ray cluster. Ray is an optional
extra: ``pip install "effplan[ray]"`` (``ray[default]``: Ray Client and ``ray job submit`` need
it); it is imported only when a sweep asks for it. Slurm: :mod:`effplan.slurm`. Recipes (image,
``ray job submit``, KubeRay): ``deploy/README.md``.

What runs where
---------------
* **Driver** (your notebook, ``effplan measure --ray``, or the head under ``ray job submit``):
  connects, runs the preflight (:mod:`effplan.bench.fleet_check`: a round trip to every measuring
  node, versions, shared hosts; a failed one raises before anything is measured), submits one
  Ray task per (candidate x target) and appends every record it receives AT ONCE to the JSON
  Lines store at ``results_path`` (:mod:`effplan.bench.fleet_sink`). The results file lives on the
  DRIVER's disk only.
* **Workers** (one task per candidate x target, on a node that offers the target's
  resources): :mod:`effplan.bench.spool`: detect the node's hardware, resolve the candidate, then
  measure every batch size one after another with the local harness, in ONE worker process kept
  for the task (``point_timeout_s`` applies), each point under the machine's measurement lock.
  Every timing pass the harness saves (``provisional`` until the point's last pass, exactly as
  in a local store) is sent back as it is written (a Ray streaming generator), so a killed
  driver loses at most the passes in flight. A worker-side failure (the candidate cannot be
  resolved there, ...) arrives as text (``"ValidationError: ..."``), never as an exception
  object Ray cannot rebuild.

Targets
-------
A :class:`Target` names the hardware a point must run on, as Ray resources: ``num_gpus``
(``Target(num_gpus=1)``), an ``accelerator_type`` (``Target(accelerator_type="L4")``: Ray
detects NVIDIA GPU models and advertises them as ``accelerator_type:<model>``), or custom
resources that a team sets on its nodes (``Target(resources={"pool_a": 1})``). Strings are
parsed by :meth:`Target.parse` (``"L4"``, ``"gpu"``, ``"gpu:2"``, ``"cpu"``, ``"pool_a=1"``).
A target that no live node can satisfy gives error rows at once instead of a task that waits
forever.

No interference: one measurement per machine
--------------------------------------------
Every task asks for ``1`` unit of the custom resource ``effplan_node``
(:attr:`FleetOptions.node_resource`), and every node that may measure offers exactly one
unit of it, so Ray never places two effplan tasks on one Ray node::

    ray start --head --num-cpus=0                         # the head schedules, measures nothing
    ray start --address=HEAD:6379 --resources='{"effplan_node": 1}'     # every measuring node

One machine may still run several Ray nodes (raylets, KubeRay pods of one Kubernetes node, one
raylet per GPU): every point is therefore timed holding the machine's lock
(:mod:`effplan.bench.hostlock`, ``exclusive="host"``, the default), and the preflight refuses nodes
that share a host but not its lock file. ``FleetOptions(exclusive="gpu")`` makes each GPU its
own unit (a node may then offer one ``effplan_node`` per GPU): faster sweeps on multi-GPU boxes,
at the cost of points that share the host's CPUs and memory bandwidth. A local sweep
(``ray_address=None``) starts a one-node Ray instance on this machine with the resource set.
Other (non-effplan) Ray work on the same nodes is not excluded: keep measurement nodes for
measurement.

Threads: ``threads=None`` is the one rule of local sweeps (:mod:`effplan.bench.threads`: the cores
free throughout a short window, then capped by the point's work), so a point's figures do not
depend on the executor. The device is ``"cuda"`` for a target with GPUs (Ray sets
``CUDA_VISIBLE_DEVICES``) and ``"cpu"`` otherwise, unless ``device=`` names one.

Shipping candidates and effplan
-------------------------------
* :class:`~effplan.candidates.Candidate` objects (and
  :class:`~effplan.generation.GenerationCandidate` for ``mode="generation"``, whose points are
  one row per prompt length) are serialized by Ray with cloudpickle, so candidates defined in a
  notebook work, and so do those loaded from a ``file.py`` path (registered by value with Ray's
  own cloudpickle, :mod:`effplan.bench.fleet_candidates`). Functions defined in an importable module
  are pickled by reference: that module must be importable on the workers too.
* A string ``"package.module:attr"`` or ``"path/to/file.py:attr"`` is an import path. ``attr``
  is a Candidate, a sequence of Candidates, or a zero-argument callable returning either. It
  is resolved on the driver (for the names) and again on each worker; a relative ``file.py``
  path is taken from the worker's working directory: ship it with the JOB's runtime
  environment (``ray job submit --working-dir .``, ``FleetOptions(runtime_env={"working_dir":
  "."})``, ``effplan measure --ray ADDR --working-dir .``; Ray takes a local ``working_dir`` per
  job only).
* effplan (and torch) must be importable on every node: use the image of ``deploy/Dockerfile``
  (effplan is not on a package index, so ``{"pip": ["effplan[ray]"]}`` cannot work), or a
  job-level ``{"working_dir": ".", "py_modules": ["effplan"]}`` for a development checkout.

Connections
-----------
An already initialised Ray connection is used as it is; a sweep that names ANOTHER address is
refused (``ray.shutdown()`` first). Ray 2.60 turns token authentication on for a cluster a local
``ray.init()`` starts and writes ``~/.ray/auth_token``; a driver with that token cannot receive
the results of a cluster started without one: the preflight names this (see
``deploy/README.md``). A lost head (GCS) is noticed by the driver (a TCP connect to the GCS,
:attr:`FleetOptions.head_timeout_s`): the open points become error rows and
:class:`FleetLostError` is raised (the CLI prints "N points saved; re-run with --resume" and
exits 4) before Ray's core would stop the driver after 60 s. A lost WORKER node is noticed by
Ray's health checks (``health_check_period_ms`` x ``health_check_failure_threshold``, 30-45 s by
default).

Resume and interruption
-----------------------
Each record received (every pass, ok or error) is on disk before the next one is processed, so
stopping the driver (Ctrl-C, a closed notebook) loses at most the passes in flight; the tasks
still running are cancelled. Raw samples are written beside the results
(``effplan.store.append_samples``) as by the local executor. With ``resume=True`` (=
``"unfinished"``) a (candidate x target x mode x batch size) is skipped when the store already
holds a finished point for it (:mod:`effplan.bench.resume`): a record whose key
(:func:`effplan.store.point_key`) is finished and that was measured for that target
(``fleet_target``); error rows and provisional points are measured again, finished but unstable
ones only with ``resume="unstable"``. The host is not known before a task lands, so the target,
not the host, says which stored points a task would repeat. ``effplan.store.load`` keeps the
newest record of a point by default: two targets served by one host (e.g. simulated nodes) are
one point there; ``load(path, duplicates="all")`` shows every record.

Failures and retries
--------------------
* A candidate that raises (or runs out of memory in a way PyTorch reports) is recorded by the
  harness as ``status="error"`` on that point; the other points go on. Such errors are
  deterministic and are NOT retried.
* A system failure (the worker process crashes or is killed by Ray's memory monitor, the node
  is lost) is retried by Ray on a node offering the same target, at most
  :attr:`FleetOptions.max_retries` times (default 1, i.e. two attempts). Points already
  received are not written twice. When the attempts are spent, every point of the task not yet
  received becomes an error row naming the node (``fleet_node_id``, last node seen) and the
  reason (the Ray exception). The sweep goes on.
* A task left with no live node that offers its target (its node was lost and the retry has
  nowhere to go, or the cluster shrank) would wait for ever in Ray: the driver checks every
  few seconds while nothing arrives, cancels such tasks and writes their points as error rows
  ("no live node offers ... any more: node lost?").

Columns added to each stored row (beside the schema's and the ``hw_*`` identity; kept by
``Measurements.to_frame()``): ``fleet_target`` (target label), ``fleet_node_id``,
``fleet_node_ip``, ``fleet_start_unix_s`` / ``fleet_end_unix_s`` (wall clock of the point on the
worker, inside the machine lock).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..settings import FLEET_HEAD_TIMEOUT_S
from ..errors import EffplanError, EffplanWarning, ValidationError
# the homes of targets, candidates and the driver's sink; the names stay importable from here
from .fleet_candidates import _register_loaded_files, _Shipped, resolve_candidates
from .fleet_sink import _finish, _finished, _load_all, _sweep_args, _todo  # noqa: F401
from .fleet_targets import NODE_RESOURCE, Target, _feasible

if TYPE_CHECKING:
    from ..records.measurements import Measurements

__all__ = ["Target", "FleetOptions", "FleetLostError", "measure_on_ray", "resolve_candidates",
           "NODE_RESOURCE"]

#: How long the driver waits in one ``ray.wait`` before checking for interruption, s.
_POLL_S = 1.0
#: How often the driver checks that every waiting task still has a live node it can run on, s.
_RECHECK_S = 5.0

FLEET_FIELDS = ("fleet_target", "fleet_node_id", "fleet_node_ip", "fleet_start_unix_s",
                "fleet_end_unix_s")


# =============================================================================== ray import
def require_ray() -> Any:
    """Import Ray, or raise :class:`EffplanError` saying how to install it."""
    try:
        import ray  # noqa: PLC0415 - optional engine, imported lazily
    except ImportError as exc:
        raise EffplanError(f"executor='ray' needs Ray, which is not installed ({exc}): "
                           "pip install 'effplan[ray]'") from None
    return ray


@dataclass(frozen=True)
class FleetOptions:
    """How a Ray sweep is run (see the module docstring).

    Attributes
    ----------
    max_retries: Ray re-runs a task after a SYSTEM failure (worker crash, OOM kill, node lost)
        at most this many times; a candidate's exception is never retried.
    runtime_env: the JOB's Ray runtime environment (Ray accepts a local ``working_dir`` only
        per job), e.g. ``{"working_dir": ".", "py_modules": ["effplan"]}``; applied when effplan
        connects (``ray.init(runtime_env=...)``). Already connected, it must be the job's own
        (give it to your ``ray.init`` instead). Module objects in ``py_modules`` become their
        folders.
    node_resource: the per-node exclusive custom resource (each measuring node offers 1; with
        ``exclusive="gpu"``, one per GPU).
    exclusive: ``"host"`` (default): one measurement per MACHINE at a time, however many Ray
        nodes it runs; ``"gpu"``: one per GPU (see :mod:`effplan.bench.hostlock` for the trade-off).
    preflight: run :func:`effplan.bench.fleet_check.preflight` before the first point (default).
    head_timeout_s: the sweep ends with error rows when the head (GCS) cannot be reached for
        this long (:data:`effplan.defaults.FLEET_HEAD_TIMEOUT_S`).
    """

    max_retries: int = 1
    runtime_env: Mapping[str, Any] | None = None
    node_resource: str = NODE_RESOURCE
    exclusive: str = "host"
    preflight: bool = True
    head_timeout_s: float = FLEET_HEAD_TIMEOUT_S

    def __post_init__(self) -> None:
        from .hostlock import check_exclusive
        from ..records.schema import number

        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) \
                or self.max_retries < 0:
            raise ValidationError("max_retries", f"must be an integer >= 0, got {self.max_retries!r}",
                                  where="FleetOptions")
        if self.runtime_env is not None and not isinstance(self.runtime_env, Mapping):
            raise ValidationError("runtime_env", "must be a mapping (Ray runtime environment) or None",
                                  where="FleetOptions")
        if self.runtime_env is not None:
            object.__setattr__(self, "runtime_env", _job_runtime_env(self.runtime_env))
        if not isinstance(self.node_resource, str) or not self.node_resource:
            raise ValidationError("node_resource", "must be a non-empty resource name",
                                  where="FleetOptions")
        check_exclusive(self.exclusive)
        object.__setattr__(self, "head_timeout_s", number("head_timeout_s", self.head_timeout_s,
                                                          lo=0, lo_open=True))


def _job_runtime_env(env: Mapping[str, Any]) -> dict[str, Any]:
    """A runtime environment Ray accepts: module objects in ``py_modules`` -> their folders."""
    out = dict(env)
    mods = out.get("py_modules")
    if mods is not None:
        if isinstance(mods, str) or not isinstance(mods, Sequence):
            raise ValidationError("runtime_env", "py_modules must be a list of paths, URIs or "
                                  "modules", where="FleetOptions")
        out["py_modules"] = [str(Path(m.__file__).parent) if hasattr(m, "__file__") and
                             hasattr(m, "__path__") else m for m in mods]
    return out




# =============================================================================== the worker
def _fleet_task(shipped: _Shipped, batch_sizes: list[int], mode: str, device: str,
                measure_kwargs: dict[str, Any], exclusive: str = "host"):
    """One (candidate x target) task on a Ray node: the messages of
    :func:`effplan.bench.spool.stream_points` (every timing pass as it is saved)."""
    import ray

    from .spool import stream_points

    ctx = ray.get_runtime_context()
    node = {"fleet_node_id": ctx.get_node_id(), "fleet_node_ip": ray.util.get_node_ip_address()}
    kwargs = {k: v for k, v in measure_kwargs.items() if k != "_workers"}
    yield from stream_points(shipped.load, batch_sizes, mode, device, kwargs, node,
                             exclusive=exclusive)


# =============================================================================== the driver
class FleetLostError(EffplanError):
    """The Ray head (GCS) could not be reached: the sweep ended, its open points are error rows."""


def _connect(ray: Any, ray_address: str | None, opts: FleetOptions) -> str:
    """Connect (or check the connection there is); returns the address connected to."""
    if ray.is_initialized():
        current = _gcs_address(ray)
        wanted = str(ray_address or "")
        if wanted and wanted not in ("auto", "local") and not wanted.startswith("ray://") \
                and wanted.split("://")[-1] != current:
            raise ValidationError("ray_address", f"Ray is already connected to {current or 'a cluster'}"
                                  f", not {wanted!r}: call ray.shutdown() first to measure there")
        if opts.runtime_env is not None:
            job_env = dict(ray.get_runtime_context().runtime_env or {})
            if any(job_env.get(k) != v for k, v in opts.runtime_env.items()
                   if k not in ("working_dir", "py_modules")) or any(
                    k in opts.runtime_env and k not in job_env for k in ("working_dir", "py_modules")):
                raise ValidationError("runtime_env", "Ray is already connected, so the job's runtime "
                                      "environment is set: give it to your ray.init(runtime_env=...) "
                                      "(or ray job submit --runtime-env / --working-dir) instead of "
                                      "FleetOptions(runtime_env=...)")
        return current
    env = {"runtime_env": dict(opts.runtime_env)} if opts.runtime_env is not None else {}
    if ray_address in (None, "local"):
        # a one-node instance on this machine, offering the exclusive node unit itself
        ray.init(address="local", resources={opts.node_resource: 1}, include_dashboard=False,
                 log_to_driver=False, **env)
    else:
        ray.init(address=ray_address, log_to_driver=False, **env)
    return _gcs_address(ray)


def _gcs_address(ray: Any) -> str:
    try:
        return str(ray.get_runtime_context().gcs_address or "")
    except Exception:  # noqa: BLE001 - Ray Client has none: the head is not watched then
        return ""


def _nodes(ray: Any, opts: FleetOptions) -> list[dict[str, Any]]:
    node_resource = opts.node_resource
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    measuring = [n for n in nodes if n["Resources"].get(node_resource, 0) > 0]
    if not measuring:
        raise ValidationError("ray_address", f"no live node of the Ray cluster offers the "
                              f"per-node exclusive resource {node_resource!r}; start every node "
                              f"that may measure with ray start ... --resources='{{\"{node_resource}\""
                              ": 1}' (see effplan.fleet)")
    # exclusive="gpu": a node may offer one unit per GPU (each GPU its own measuring unit)
    shared = [n["NodeID"][:8] for n in measuring if n["Resources"][node_resource] != 1 and not (
        opts.exclusive == "gpu" and n["Resources"][node_resource] <= max(1, n["Resources"].get("GPU", 0)))]
    if shared:
        raise ValidationError("ray_address", f"node(s) {shared} offer {node_resource!r} != 1: two "
                              "measurements could share a node; start each node with exactly 1 "
                              "(with exclusive='gpu': at most one per GPU)")
    return measuring


def _reason(ray: Any, exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) and exc.cause else exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first}"[:500]


class _HeadWatch:
    """Whether the head (GCS) still answers: a TCP connect to its address, timed by the
    driver's clock. Without an address (Ray Client) the head is not watched."""

    def __init__(self, address: str, timeout_s: float) -> None:
        host, _, port = address.rpartition(":")
        self.where = (host, int(port)) if host and port.isdigit() else None
        self.timeout_s = timeout_s
        self.down_since: float | None = None
        self.checked = 0.0

    def lost(self) -> bool:
        import socket

        now = time.monotonic()
        if self.where is None or now - self.checked < 1.0:
            return self.down_since is not None and now - self.down_since >= self.timeout_s
        self.checked = now
        try:
            socket.create_connection(self.where, timeout=1.0).close()
            self.down_since = None
        except OSError:
            self.down_since = self.down_since or now
        return self.down_since is not None and now - self.down_since >= self.timeout_s


def _preflight(ray: Any, targets: list[Target], opts: FleetOptions, address: str) -> None:
    from .fleet_check import preflight

    check = preflight(ray, targets, node_resource=opts.node_resource, exclusive=opts.exclusive,
                      address=address)
    for msg in check.warnings:
        warnings.warn(f"effplan fleet preflight: {msg}", EffplanWarning, stacklevel=4)
    if not check.ok:
        raise EffplanError("effplan fleet preflight failed, nothing was measured:\n" + check.report())


def measure_on_ray(candidates: Any, batch_sizes: Sequence[int] = (1, 8, 32),
                   mode: str = "inference", device: str = "auto", *,
                   targets: Iterable[Target | str | Mapping[str, float]] | None = None,
                   ray_address: str | None = None, resume: bool | str = False,
                   results_path: str | os.PathLike | None = None, progress: bool = True,
                   fleet: FleetOptions | None = None, **measure_kwargs: Any) -> Measurements:
    """Measure every candidate x target x batch size on a Ray cluster; see the module docstring.

    Parameters
    ----------
    candidates: Candidates, import paths ``"module:attr"`` / ``"file.py:attr"``, or a mix.
    batch_sizes, mode: as :func:`effplan.measure`.
    device: ``"auto"`` = ``"cuda"`` for targets with GPUs, else ``"cpu"``; or a fixed device.
    targets: :class:`Target` objects, strings (:meth:`Target.parse`) or resource mappings;
        default one target ``"cpu"`` (any measuring node).
    ray_address: ``None``/``"local"`` (start a one-node Ray here), ``"auto"`` (the cluster this
        machine joined with ``ray start``) or ``"ray://HEAD:10001"`` (Ray Client). An already
        initialised Ray connection is used as it is (another explicit address is refused).
    resume: ``True`` / ``"unfinished"``: skip points already finished in ``results_path``
        (error rows and provisional points are measured again); ``"unstable"``: re-measure the
        finished-but-unstable ones too (:mod:`effplan.bench.resume`).
    results_path: the driver's JSON Lines store; every timing pass is appended as it arrives.
    progress: a ``tqdm.auto`` bar over all points, with the busy nodes as its postfix.
    fleet: :class:`FleetOptions` (retries, job runtime environment, exclusivity, preflight).
    measure_kwargs: passed to the harness on the workers (``timing``, ``time_budget_s``,
        ``energy``, ``threads``, ``idle_power_w``, ...).

    Returns :class:`effplan.measurement.Measurements` of every row of this sweep (resumed
    points are not repeated; load the store for the merged view). Raises
    :class:`FleetLostError` (after writing the open points as error rows) when the head is lost.
    """
    from ..records import store
    from .fleet_sink import Sink
    from .resume import resume_mode

    opts = fleet or FleetOptions()
    if not isinstance(opts, FleetOptions):
        raise ValidationError("fleet", f"expected FleetOptions or None, got {type(opts).__name__}")
    shipped, bss, target_list = _sweep_args(candidates, batch_sizes, mode, targets)
    how = resume_mode(resume)
    if how and results_path is None:
        raise ValidationError("resume", "resume=True needs results_path= (the store to resume from)")
    from .configs import build

    harness = build(**measure_kwargs)  # the harness's settings, checked here before Ray starts
    if harness.sweep.raise_errors:
        raise ValidationError("raise_errors", "not supported with executor='ray': failures are "
                              "error rows (see the 'error' column)")
    measure_kwargs.pop("raise_errors", None)

    if results_path is not None:  # writable, not a folder: checked before anything runs
        store.check_results_path(results_path)
    ray = require_ray()
    _register_loaded_files()
    address = _connect(ray, ray_address, opts)
    nodes = _nodes(ray, opts)
    if opts.preflight:
        _preflight(ray, target_list, opts, address)
    tasks = _todo(shipped, target_list, bss, mode, _finished(results_path, how) if how else set())
    sink = Sink(results_path, mode)
    _run(ray, tasks, sink, nodes, opts, mode, device, dict(measure_kwargs), progress,
         _HeadWatch(address, opts.head_timeout_s))
    return _finish(sink, results_path)


def _run(ray: Any, tasks: list[Any], sink: Any, nodes: list[dict[str, Any]], opts: FleetOptions,
         mode: str, device: str, measure_kwargs: dict[str, Any], progress: bool,
         head: _HeadWatch) -> None:
    """Submit the tasks and stream their messages into ``sink`` until every point is in."""
    from tqdm.auto import tqdm

    remote = ray.remote(_fleet_task)
    bar = tqdm(total=sum(len(t.remaining) for t in tasks), desc=f"effplan fleet ({mode})",
               disable=not progress, leave=True)
    running: dict[Any, Any] = {}
    busy: dict[str, str] = {}

    def show() -> None:
        bar.set_postfix_str(f"busy {len(busy)}/{len(nodes)} nodes: "
                            + ", ".join(f"{k}[{v}]" for k, v in sorted(busy.items())))

    def fail(task: Any, reason: str) -> None:
        bar.update(sink.fail(task, reason))
        busy.pop(task.node_label, None)

    try:
        for task in tasks:
            if not _feasible(task.target, nodes, opts.node_resource):
                need = task.target.required_resources(opts.node_resource)
                fail(task, f"no live node offers {need} (target {task.target.label!r}); start a node "
                     "with these resources")
                continue
            options = dict(task.target.ray_options(opts.node_resource),
                           max_retries=opts.max_retries, retry_exceptions=False)
            dev = task.target.device if str(device) == "auto" else str(device)
            gen = remote.options(**options).remote(task.shipped, list(task.remaining), mode, dev,
                                                   measure_kwargs, opts.exclusive)
            running[gen] = task
        pending = list(running)
        last_check = time.monotonic()
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=_POLL_S)
            if not ready and head.lost():
                reason = (f"the Ray head (GCS) at {':'.join(map(str, head.where))} did not answer for "
                          f"{opts.head_timeout_s:g} s: the sweep ended")
                for gen in pending:
                    fail(running[gen], reason)
                raise FleetLostError(reason)
            if not ready and head.down_since is None and time.monotonic() - last_check >= _RECHECK_S:
                # a node that left (lost, scaled down) can leave a task nowhere to run, or to
                # be retried on: Ray would wait for ever, effplan gives error rows instead
                last_check = time.monotonic()
                nodes_now = _ask_head(ray.nodes)  # None: the head did not answer (it is watched)
                if nodes_now is None:
                    continue
                live = [n for n in nodes_now if n.get("Alive")
                        and n["Resources"].get(opts.node_resource, 0) > 0]
                for gen in [g for g in pending if not _feasible(running[g].target, live,
                                                                opts.node_resource)]:
                    task = running[gen]
                    _cancel(ray, gen)
                    pending.remove(gen)
                    fail(task, f"no live node offers {task.target.required_resources(opts.node_resource)}"
                         f" (target {task.target.label!r}) any more: node lost?")
                show()
            for gen in ready:
                if _receive(ray, gen, running[gen], sink, bar, busy):
                    pending.append(gen)
                show()
    except BaseException as exc:  # Ctrl-C, a lost head, a store error: every pass is on disk
        if not isinstance(exc, FleetLostError):  # a lost head cannot cancel anything
            for gen in running:
                _cancel(ray, gen)
        raise
    finally:
        bar.close()


def _ask_head(call: Any, timeout_s: float = 5.0) -> Any:
    """``call()`` (a request to the head, e.g. ``ray.nodes``), or None when it does not return
    within ``timeout_s``: with the head gone Ray would block it until its core stops the
    process, so it runs in a daemon thread and the sweep loop goes on watching the head."""
    import threading

    out: list[Any] = []

    def ask() -> None:
        try:
            out.append(call())
        except Exception:  # noqa: BLE001 - no answer is what the caller handles
            pass

    thread = threading.Thread(target=ask, daemon=True, name="effplan-ask-head")
    thread.start()
    thread.join(timeout_s)
    return out[0] if out else None


def _cancel(ray: Any, gen: Any) -> None:
    try:
        ray.cancel(gen, force=True)
    except Exception:  # noqa: BLE001 - best effort: the task may have finished already
        pass


def _receive(ray: Any, gen: Any, task: Any, sink: Any, bar: Any, busy: dict[str, str]) -> bool:
    """Handle the next message of a task's stream; False when the stream has ended."""
    try:
        ref = next(gen)
    except StopIteration:
        busy.pop(task.node_label, None)
        if task.remaining:  # ended without its points: never silently
            bar.update(sink.fail(task, "the task ended without measuring these points"))
        return False
    try:
        msg = ray.get(ref)
    except ray.exceptions.RayError as exc:
        bar.update(sink.fail(task, _reason(ray, exc)))
        busy.pop(task.node_label, None)
        return False
    kind = msg.get("kind")
    busy.pop(task.node_label, None)  # a retried attempt may run on another node
    if kind == "start":
        sink.start(task, msg)
    elif kind == "records":
        sink.records(task, msg)
    elif kind == "point":
        if sink.point(task, msg):
            bar.update(1)
    elif kind == "error":
        bar.update(sink.fail(task, str(msg.get("error"))))
        return False
    if task.remaining:
        busy[task.node_label] = task.shipped.name
    return True
