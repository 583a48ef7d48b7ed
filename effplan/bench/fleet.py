"""Sweeps across a fleet on Ray: each point on a node with the hardware it asks for, one
measurement per node at a time, streamed back into one results store on the driver.

``effplan.measure(candidates, batch_sizes, executor="ray", ray_address=..., targets=[...])``
(or :func:`measure_on_ray`) runs the same measurement harness as the local executor
(:func:`effplan.measurement.measure`), but on the nodes of a Ray cluster. Ray is an optional
extra: ``pip install "effplan[ray]"``; it is imported only when a sweep asks for it.

What runs where
---------------
* **Driver** (your notebook or ``effplan measure --ray``): resolves candidates and targets,
  submits one Ray task per (candidate x target), receives each finished point with
  ``ray.wait`` as it arrives, and appends it at once to the JSON Lines store at
  ``results_path`` (:func:`effplan.store.append`, fsync'ed), with the worker's hardware
  identity (``hw_*`` fields). The results file lives on the DRIVER's disk only.
* **Workers** (one task per candidate x target, on a node that offers the target's
  resources): detect the node's hardware, then measure every batch size of the candidate one
  after another with the local harness, in ONE worker process kept alive for the task (as the
  local executor keeps one per candidate; a crash or time-out replaces it, ``point_timeout_s``
  applies), yielding each point back as soon as it is finished (a Ray streaming generator),
  with the node id and the wall-clock start/end of the point. A point's passes run on the
  node, so the driver's store receives each point once, after its last pass.

Targets
-------
A :class:`Target` names the hardware a point must run on, as Ray resources: ``num_gpus``
(``Target(num_gpus=1)``), an ``accelerator_type`` (``Target(accelerator_type="L4")``: Ray
detects NVIDIA GPU models and advertises them as ``accelerator_type:<model>``), or custom
resources that a team sets on its nodes (``Target(resources={"pool_a": 1})``). Strings are
parsed by :meth:`Target.parse` (``"L4"``, ``"gpu"``, ``"gpu:2"``, ``"cpu"``, ``"pool_a=1"``).
A target that no live node can satisfy gives error rows at once instead of a task that waits
forever.

No interference: one exclusive resource per node
------------------------------------------------
Every task also asks for ``1`` unit of the custom resource ``effplan_node``
(:attr:`FleetOptions.node_resource`), and every node that may measure offers exactly one
unit of it. Ray therefore never places two effplan measurements on one node at the same time:
they would share its CPUs, memory bandwidth and GPU, and both timings would be worthless.
Nodes must be started with it::

    ray start --head --num-cpus=0                         # the head schedules, measures nothing
    ray start --address=HEAD:6379 --resources='{"effplan_node": 1}'     # every measuring node

(a GPU node's ``accelerator_type:<model>`` resource is detected by Ray; add your own custom
resources to the same JSON). A local sweep (``ray_address=None``) starts a one-node Ray
instance on this machine with the resource set. A cluster without the resource, or a node
offering more than one unit, is refused with an error that says how to start the nodes.
Other (non-effplan) Ray work on the same nodes is not excluded: keep measurement nodes for
measurement.

Inside a task the node is the task's alone, so by default the harness uses every CPU the
worker process may run on (``threads=None`` means :func:`effplan.hardware.available_cpus`,
not Ray's ``OMP_NUM_THREADS=1`` for one-CPU tasks). The device is ``"cuda"`` for a target with
GPUs (Ray sets ``CUDA_VISIBLE_DEVICES``) and ``"cpu"`` otherwise, unless ``device=`` names one.

Shipping candidates and effplan
-------------------------------
* :class:`~effplan.candidates.Candidate` objects (and
  :class:`~effplan.generation.GenerationCandidate` for ``mode="generation"``, whose points are
  one row per prompt length) are serialized by Ray with cloudpickle, so
  candidates defined in a notebook work. Functions defined in an importable module are pickled
  by reference: that module must be importable on the workers too.
* A string ``"package.module:attr"`` or ``"path/to/file.py:attr"`` is an import path. ``attr``
  is a Candidate, a sequence of Candidates, or a zero-argument callable returning either. It
  is resolved on the driver (for the names) and again on each worker; a relative ``file.py``
  path is taken from the worker's working directory (ship it with ``working_dir``).
* effplan (and torch) must be importable on every node: install them there, or let Ray do it
  with a runtime environment, ``FleetOptions(runtime_env={"pip": ["effplan[ray]"]})`` or
  ``{"working_dir": ".", "py_modules": [effplan]}`` for a development checkout. The runtime
  environment is given per task (``.options(runtime_env=...)``).

Resume and interruption
-----------------------
Each point received (ok or error) is on disk before the next one is processed, so stopping
the driver (Ctrl-C, a closed notebook) loses no finished point; the tasks still running are
cancelled (a point half-measured on a worker is lost and measured again on resume). Raw
samples are written beside the results (``effplan.store.append_samples``) as by the local
executor, for points that are one row. With ``resume=True`` a (candidate x target x mode x
batch size) is skipped when the store already holds a finished point for it: a row whose key
(:func:`effplan.store.point_key`: candidate, host, hardware, mode, dtype, batch size) is among
:func:`effplan.store.completed_points` (status ok and stable) and that was measured for that
target (``fleet_target``). Error rows and not-stable points are not finished: a resumed sweep
measures them again. The host is not known before a task lands, so the target, not the host,
says which stored points a task would repeat. ``effplan.store.load`` keeps the newest record of
a point by default: two targets served by one host (e.g. simulated nodes) are one point there;
``load(path, duplicates="all")`` shows every record.

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

Columns added to each stored row (beside the schema's and the ``hw_*`` identity):
``fleet_target`` (target label), ``fleet_node_id``, ``fleet_node_ip``,
``fleet_start_unix_s`` / ``fleet_end_unix_s`` (wall clock of the point on the worker).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EffplanError, EffplanWarning, ValidationError
from .configs import build, positive_ints

if TYPE_CHECKING:
    from ..records.measurements import Measurements

__all__ = ["Target", "FleetOptions", "measure_on_ray", "measure_with_executor", "resolve_candidates",
           "NODE_RESOURCE"]

#: The per-node exclusive custom resource every effplan task asks one unit of.
NODE_RESOURCE = "effplan_node"
#: Amount Ray itself asks for an ``accelerator_type`` (it advertises 1 per node).
_ACCEL_AMOUNT = 0.001
#: How long the driver waits in one ``ray.wait`` before checking for interruption, s.
_POLL_S = 1.0
#: How often the driver checks that every waiting task still has a live node it can run on, s.
_RECHECK_S = 5.0

# =============================================================================== ray import
def require_ray() -> Any:
    """Import Ray, or raise :class:`EffplanError` saying how to install it."""
    try:
        import ray  # noqa: PLC0415 - optional engine, imported lazily
    except ImportError as exc:
        raise EffplanError(f"executor='ray' needs Ray, which is not installed ({exc}): "
                           "pip install 'effplan[ray]'") from None
    return ray


# =============================================================================== targets
@dataclass(frozen=True)
class Target:
    """The hardware a point must run on, as Ray resources.

    Attributes
    ----------
    num_gpus: GPUs the task holds (``1`` for "any node with a GPU").
    accelerator_type: a GPU model Ray advertises, e.g. ``"L4"``, ``"H100"``, ``"A100"``
        (implies ``num_gpus=1`` when ``num_gpus`` is 0).
    resources: custom resources set on nodes with ``ray start --resources``, e.g.
        ``{"pool_a": 1}``.
    num_cpus: CPU slots the task reserves (default 1; the node is exclusive anyway).
    name: label stored in ``fleet_target`` (default: derived from the fields above).
    """

    num_gpus: float = 0
    accelerator_type: str | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    num_cpus: float = 1
    name: str | None = None

    def __post_init__(self) -> None:
        where = "Target"
        for fname in ("num_gpus", "num_cpus"):
            value = getattr(self, fname)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValidationError(fname, f"must be a number >= 0, got {value!r}", where=where)
        if self.accelerator_type is not None:
            if not isinstance(self.accelerator_type, str) or not self.accelerator_type.strip():
                raise ValidationError("accelerator_type", f"must be a non-empty string such as 'L4', "
                                      f"got {self.accelerator_type!r}", where=where)
            if self.num_gpus == 0:
                object.__setattr__(self, "num_gpus", 1)
        if not isinstance(self.resources, Mapping):
            raise ValidationError("resources", f"must be a mapping name -> amount, got "
                                  f"{type(self.resources).__name__}", where=where)
        res = {}
        for key, amount in self.resources.items():
            if not isinstance(key, str) or not key or key in ("CPU", "GPU", NODE_RESOURCE):
                raise ValidationError("resources", f"{key!r} is not a custom resource name (use "
                                      "num_cpus/num_gpus for CPU/GPU)", where=where)
            if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount > 0:
                raise ValidationError("resources", f"amount of {key!r} must be > 0, got {amount!r}",
                                      where=where)
            res[key] = float(amount)
        object.__setattr__(self, "resources", dict(sorted(res.items())))
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise ValidationError("name", f"must be a non-empty string or None, got {self.name!r}",
                                  where=where)

    @property
    def label(self) -> str:
        """What ``fleet_target`` holds: ``name``, else ``"L4"``, ``"gpu:2"``, ``"pool_a"``, ``"cpu"``."""
        if self.name:
            return self.name
        parts = []
        if self.accelerator_type:
            parts.append(self.accelerator_type if self.num_gpus == 1
                         else f"{self.accelerator_type}:{_num(self.num_gpus)}")
        elif self.num_gpus:
            parts.append("gpu" if self.num_gpus == 1 else f"gpu:{_num(self.num_gpus)}")
        parts += [k if v == 1 else f"{k}={_num(v)}" for k, v in self.resources.items()]
        return "+".join(parts) or "cpu"

    @property
    def device(self) -> str:
        """The torch device a task of this target measures on by default."""
        return "cuda" if self.num_gpus > 0 else "cpu"

    def required_resources(self, node_resource: str = NODE_RESOURCE) -> dict[str, float]:
        """Every Ray resource one task of this target holds (the exclusive node unit included)."""
        need: dict[str, float] = {node_resource: 1.0}
        if self.num_cpus:
            need["CPU"] = float(self.num_cpus)
        if self.num_gpus:
            need["GPU"] = float(self.num_gpus)
        if self.accelerator_type:
            need[f"accelerator_type:{self.accelerator_type}"] = _ACCEL_AMOUNT
        need.update(self.resources)
        return need

    def ray_options(self, node_resource: str = NODE_RESOURCE) -> dict[str, Any]:
        """Keyword arguments of ``remote_fn.options(...)`` for one task of this target."""
        opts: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus,
                                "resources": {node_resource: 1, **self.resources}}
        if self.accelerator_type:
            opts["accelerator_type"] = self.accelerator_type
        return opts

    @classmethod
    def parse(cls, text: str) -> Target:
        """A target from a short string (the CLI's ``--target``).

        ``"cpu"`` (any measuring node), ``"gpu"`` / ``"gpu:N"`` (N GPUs of any model),
        ``"NAME=AMOUNT"`` (custom resource, several joined with ``+``), anything else an
        accelerator type (``"L4"``, ``"H100"``; ``"H100:2"`` for two).
        """
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("target", f"expected a target such as 'L4', 'gpu' or 'pool_a=1', "
                                  f"got {text!r}")
        text = text.strip()
        if text.lower() == "cpu":
            return cls()
        if "=" in text:
            res = {}
            for part in text.split("+"):
                key, _, amount = part.partition("=")
                try:
                    res[key.strip()] = float(amount) if amount.strip() else 1.0
                except ValueError:
                    raise ValidationError("target", f"{part!r}: amount is not a number "
                                          "(write NAME=AMOUNT, e.g. pool_a=1)") from None
            return cls(resources=res)
        name, _, count = text.partition(":")
        try:
            gpus = float(count) if count else 1.0
        except ValueError:
            raise ValidationError("target", f"{text!r}: GPU count after ':' is not a number") from None
        if name.lower() == "gpu":
            return cls(num_gpus=gpus)
        return cls(accelerator_type=name, num_gpus=gpus)

    @classmethod
    def of(cls, spec: Target | str | Mapping[str, float]) -> Target:
        """Coerce a :class:`Target`, a string (:meth:`parse`) or a custom-resource mapping."""
        if isinstance(spec, Target):
            return spec
        if isinstance(spec, str):
            return cls.parse(spec)
        if isinstance(spec, Mapping):
            return cls(resources=dict(spec))
        raise ValidationError("targets", f"expected a Target, a string or a mapping of resources, "
                              f"got {type(spec).__name__}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class FleetOptions:
    """How a Ray sweep is run (see the module docstring).

    Attributes
    ----------
    max_retries: Ray re-runs a task after a SYSTEM failure (worker crash, OOM kill, node lost)
        at most this many times; a candidate's exception is never retried.
    runtime_env: Ray runtime environment of every task, e.g. ``{"pip": ["effplan[ray]"]}``.
    node_resource: the per-node exclusive custom resource (each measuring node offers 1).
    """

    max_retries: int = 1
    runtime_env: Mapping[str, Any] | None = None
    node_resource: str = NODE_RESOURCE

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) \
                or self.max_retries < 0:
            raise ValidationError("max_retries", f"must be an integer >= 0, got {self.max_retries!r}",
                                  where="FleetOptions")
        if self.runtime_env is not None and not isinstance(self.runtime_env, Mapping):
            raise ValidationError("runtime_env", "must be a mapping (Ray runtime environment) or None",
                                  where="FleetOptions")
        if not isinstance(self.node_resource, str) or not self.node_resource:
            raise ValidationError("node_resource", "must be a non-empty resource name",
                                  where="FleetOptions")


# =============================================================================== candidates
def _load_attr(spec: str) -> Any:
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValidationError("candidates", f"{spec!r} is not an import path: write "
                              "'package.module:attr' or 'path/to/file.py:attr'")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ValidationError("candidates", f"{spec!r}: no file {target!r} (relative to "
                                  f"{os.getcwd()}); ship it with the runtime_env working_dir")
        modname = f"_effplan_fleet_{abs(hash(str(path.resolve()))):x}"
        module = sys.modules.get(modname)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[modname] = module
            try:
                loader_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[modname]
                raise
            try:  # its functions are importable nowhere else: ship them by value if asked to
                import cloudpickle  # noqa: PLC0415 - comes with Ray

                cloudpickle.register_pickle_by_value(module)
            except ImportError:
                pass
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ValidationError("candidates", f"{spec!r}: cannot import {target!r} ({exc}); "
                                  "install it on this machine and the workers") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValidationError("candidates", f"{spec!r}: module {target!r} has no {attr!r}") from None


def _candidate_types() -> tuple[type, ...]:
    """What ``measure`` takes: :class:`~effplan.candidates.Candidate` and, for
    ``mode="generation"``, :class:`~effplan.generation.GenerationCandidate`."""
    from ..models.candidates import Candidate

    try:
        from ..models.generative import GenerationCandidate
    except ImportError:  # an effplan without generation mode
        return (Candidate,)
    return (Candidate, GenerationCandidate)


def resolve_candidates(spec: str) -> list[Any]:
    """The candidates an import path names (``module:attr`` or ``file.py:attr``)."""
    kinds = _candidate_types()
    value = _load_attr(spec)
    if callable(value) and not isinstance(value, kinds):
        value = value()
    items = [value] if isinstance(value, kinds) else list(value) if isinstance(
        value, Sequence | tuple) else None
    if items is None or not items or not all(isinstance(c, kinds) for c in items):
        raise ValidationError("candidates", f"{spec!r} must name a Candidate, a sequence of "
                              "Candidates or a callable returning them")
    return items


@dataclass(frozen=True)
class _Shipped:
    """What a task receives: a Candidate (cloudpickled by Ray) or an import path and a name."""

    name: str
    dtype: str | None
    candidate: Any = None
    spec: str | None = None

    def load(self) -> Any:
        if self.candidate is not None:
            return self.candidate
        for cand in resolve_candidates(self.spec):
            if cand.name == self.name:
                return cand
        raise ValidationError("candidates", f"{self.spec!r} on this worker has no candidate "
                              f"named {self.name!r}")


def _ship(candidates: Any) -> list[_Shipped]:
    kinds = _candidate_types()
    if isinstance(candidates, kinds + (str,)):
        candidates = [candidates]
    shipped: list[_Shipped] = []
    for i, item in enumerate(list(candidates)):
        if isinstance(item, kinds):
            shipped.append(_Shipped(item.name, item.dtype, candidate=item))
        elif isinstance(item, str):
            shipped += [_Shipped(c.name, c.dtype, spec=item) for c in resolve_candidates(item)]
        else:
            raise ValidationError("candidates", f"item {i} is a {type(item).__name__}, not a "
                                  "Candidate or an import path 'module:attr'")
    if not shipped:
        raise ValidationError("candidates", "no candidates given")
    names = [s.name for s in shipped]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationError("candidates", f"candidate names must be unique; repeated: {dupes}")
    return shipped


# =============================================================================== resume keys
def _load_all(path: str | os.PathLike) -> Any:
    """Every record of ``path``, duplicates of a point included (two targets may share a host)."""
    from ..records import store

    return store.load(path, duplicates="all")


def _finished(path: str | os.PathLike) -> set[tuple[str, str, str, int, str]]:
    """(candidate, target label, mode, batch size, dtype) of the finished fleet points in ``path``:
    rows measured for a target whose :func:`effplan.store.point_key` is among
    :func:`effplan.store.completed_points` (status ok and stable)."""
    from ..records import store

    if not Path(path).exists():
        return set()
    completed = store.completed_points(path)
    frame = _load_all(path)
    if "fleet_target" not in frame.columns:
        return set()
    done = set()
    for rec in frame.to_dict(orient="records"):
        target = rec.get("fleet_target")
        if isinstance(target, str) and target and store.point_key(rec) in completed:
            done.add((str(rec["candidate"]), target, str(rec["mode"]), int(rec["batch_size"]),
                      str(rec.get("dtype") or "")))
    return done


# =============================================================================== the worker
def _fleet_task(shipped: _Shipped, batch_sizes: list[int], mode: str, device: str,
                target_label: str, measure_kwargs: dict[str, Any]):
    """One (candidate x target) task: yields a start record, then one record per point."""
    import ray

    from ..devices.hardware import available_cpus, detect_hardware
    from . import configs, points

    ctx = ray.get_runtime_context()
    node = {"fleet_node_id": ctx.get_node_id(), "fleet_node_ip": ray.util.get_node_ip_address()}
    hw = detect_hardware(device).to_dict()
    yield {"kind": "start", "hardware": hw, **node}
    cand = shipped.load()
    kwargs = dict(measure_kwargs)
    kwargs.pop("_workers", None)
    settings = configs.build(**kwargs)
    # the node is this task's alone (see the module docstring); the driver keeps the results file
    sweep_cfg = replace(settings.sweep, threads=settings.sweep.threads or available_cpus(), progress=False,
                        results_path=None, resume=False)
    settings = replace(settings, sweep=sweep_cfg)
    # one worker process for the candidate, kept alive across its batch sizes and passes, as
    # the local executor does (a crash or time-out replaces it for the next point)
    pool = points.worker_pool(int(sweep_cfg.threads))
    try:
        yield from _fleet_points(cand, batch_sizes, mode, device, target_label, settings, pool, hw, node)
    finally:
        pool.close()


def _fleet_points(cand: Any, batch_sizes: list[int], mode: str, device: str, target_label: str,
                  settings: Any, pool: Any, hw: Mapping[str, Any], node: Mapping[str, Any]):
    """The point records of one fleet task, each measured with the task's worker ``pool`` by the
    local sweep (:func:`effplan.bench.sweep.run`)."""
    from . import sweep

    for bs in batch_sizes:
        start = time.time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = sweep.run([cand], [bs], mode, device, settings, workers=pool)
        end = time.time()
        # one row per batch size; mode="generation" gives one per prompt length
        rows = [dict(r, fleet_target=target_label, fleet_start_unix_s=start, fleet_end_unix_s=end,
                     **node) for r in m.rows]
        idle = float(rows[0].get("idle_power_w", math.nan))
        if settings.energy.idle_power_w is None and not math.isnan(idle):
            settings = replace(settings, energy=replace(settings.energy, idle_power_w=idle))  # once per task
        point_hw = m.hardware.get(rows[0]["device"], hw)
        # raw samples go with a point that is one row (which row a sample belongs to is
        # otherwise the harness's business)
        timings = ([next(iter(m.samples.values()))] if len(rows) == 1 and len(m.samples) == 1
                   else [None] * len(rows))
        yield {"kind": "point", "batch_size": bs, "rows": rows, "timings": timings,
               "hardware": dict(point_hw),
               "warnings": sorted({str(w.message) for w in caught
                                   if issubclass(w.category, EffplanWarning)
                                   and "points failed" not in str(w.message)}), **node}


# =============================================================================== the driver
@dataclass
class _Task:
    shipped: _Shipped
    target: Target
    remaining: list[int]
    node_id: str = ""
    node_ip: str = ""
    hardware: Mapping[str, Any] = field(default_factory=dict)


def _node_label(task: _Task) -> str:
    return f"{task.node_ip}/{task.node_id[:6]}" if task.node_id else "?"


def _connect(ray: Any, ray_address: str | None, opts: FleetOptions) -> None:
    if ray.is_initialized():
        return  # an existing connection (e.g. ray.init(...) in the notebook) is used as is
    if ray_address in (None, "local"):
        # a one-node instance on this machine, offering the exclusive node unit itself
        ray.init(address="local", resources={opts.node_resource: 1}, include_dashboard=False,
                 log_to_driver=False)
    else:
        ray.init(address=ray_address, log_to_driver=False)


def _nodes(ray: Any, node_resource: str) -> list[dict[str, Any]]:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    measuring = [n for n in nodes if n["Resources"].get(node_resource, 0) > 0]
    if not measuring:
        raise ValidationError("ray_address", f"no live node of the Ray cluster offers the "
                              f"per-node exclusive resource {node_resource!r}; start every node "
                              f"that may measure with ray start ... --resources='{{\"{node_resource}\""
                              ": 1}' (see effplan.fleet)")
    shared = [n["NodeID"][:8] for n in measuring if n["Resources"][node_resource] != 1]
    if shared:
        raise ValidationError("ray_address", f"node(s) {shared} offer {node_resource!r} != 1: two "
                              "measurements could share a node; start each node with exactly 1")
    return measuring


def _feasible(target: Target, nodes: list[dict[str, Any]], node_resource: str) -> bool:
    need = target.required_resources(node_resource)
    return any(all(n["Resources"].get(k, 0) >= v for k, v in need.items()) for n in nodes)


def _error_row(task: _Task, bs: int, mode: str, reason: str) -> dict[str, Any]:
    from ..records.schema import SCHEMA_VERSION

    hw = task.hardware
    where = f"node {_node_label(task)}" if task.node_id else "no node"
    return {"candidate": task.shipped.name, "hardware": str(hw.get("name") or "unknown"),
            "hardware_id": str(hw.get("hardware_id") or ""), "mode": mode, "batch_size": int(bs),
            "device": str(hw.get("device") or ""), "dtype": task.shipped.dtype or "",
            "provenance": "measured", "energy_source": "none", "status": "error",
            "error": f"{where}: {reason}", "schema_version": SCHEMA_VERSION,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "fleet_target": task.target.label, "fleet_node_id": task.node_id,
            "fleet_node_ip": task.node_ip, "fleet_start_unix_s": math.nan,
            "fleet_end_unix_s": math.nan}


def _reason(ray: Any, exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) and exc.cause else exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first}"[:500]


def _save_samples(path: str | os.PathLike, row: Mapping[str, Any], hw: Mapping[str, Any],
                  timing: Any) -> None:
    """The point's raw samples beside the results file (``effplan.store.append_samples``), in
    the record the local executor writes."""
    from ..records import store
    from .points import samples_record

    if timing is not None:
        store.append_samples(path, [samples_record(row, hw, timing)])


def measure_on_ray(candidates: Any, batch_sizes: Sequence[int] = (1, 8, 32),
                   mode: str = "inference", device: str = "auto", *,
                   targets: Iterable[Target | str | Mapping[str, float]] | None = None,
                   ray_address: str | None = None, resume: bool = False,
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
        initialised Ray connection is used as it is.
    resume: skip points already finished in ``results_path`` (needs ``results_path``).
    results_path: the driver's JSON Lines store; each point is appended as it arrives.
    progress: a ``tqdm.auto`` bar over all points, with the busy nodes as its postfix.
    fleet: :class:`FleetOptions` (retries, runtime environment, node resource).
    measure_kwargs: passed to the harness on the workers (``timing``, ``time_budget_s``,
        ``energy``, ``threads``, ``idle_power_w``, ...).

    Returns :class:`effplan.measurement.Measurements` of every row of this sweep (resumed
    points are not repeated; load the store for the merged view).
    """
    from ..records import store
    from ..records.measurements import Measurements
    from ..records.schema import MODES

    opts = fleet or FleetOptions()
    if not isinstance(opts, FleetOptions):
        raise ValidationError("fleet", f"expected FleetOptions or None, got {type(opts).__name__}")
    shipped = _ship(candidates)
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
    if resume and results_path is None:
        raise ValidationError("resume", "resume=True needs results_path= (the store to resume from)")
    harness = build(**measure_kwargs)  # the harness's settings, checked here before Ray starts
    if harness.sweep.raise_errors:
        raise ValidationError("raise_errors", "not supported with executor='ray': failures are "
                              "error rows (see the 'error' column)")
    measure_kwargs.pop("raise_errors", None)

    if results_path is not None:  # writable, not a folder: checked before anything runs
        store.check_results_path(results_path)
    ray = require_ray()
    _connect(ray, ray_address, opts)
    nodes = _nodes(ray, opts.node_resource)
    done = _finished(results_path) if resume else set()

    rows: list[dict[str, Any]] = []
    hardware: dict[str, dict[str, Any]] = {}
    samples: dict[tuple[str, str, str, int], Any] = {}
    messages: list[str] = []

    unsaved: list[str] = []

    def record(row: dict[str, Any], hw: Mapping[str, Any] | None, timing: Any = None) -> None:
        rows.append(row)
        if results_path is None:
            return
        try:
            store.append(results_path, [row], hardware=dict(hw) if hw else None)
            _save_samples(results_path, row, hw or {}, timing)
        except (OSError, ValidationError) as exc:  # as the local executor: kept, with the reason
            msg = f"not saved to {results_path}: {type(exc).__name__}: {exc}"
            row["error"] = f"{row['error']}; {msg}" if row.get("error") else msg
            unsaved.append(f"{row['candidate']} bs={row['batch_size']} on {row['fleet_target']}")

    tasks: list[_Task] = []
    for s in shipped:
        for t in target_list:
            # a candidate without a fixed dtype matches a finished point of any dtype label
            todo = [b for b in bss if not any(k[:4] == (s.name, t.label, mode, b)
                                              and (s.dtype is None or k[4] == s.dtype) for k in done)]
            if todo:
                tasks.append(_Task(s, t, todo))
    remote = ray.remote(_fleet_task)
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(len(t.remaining) for t in tasks), desc=f"effplan fleet ({mode})",
               disable=not progress, leave=True)
    running: dict[Any, _Task] = {}
    busy: dict[str, str] = {}

    def show() -> None:
        bar.set_postfix_str(f"busy {len(busy)}/{len(nodes)} nodes: "
                            + ", ".join(f"{k}[{v}]" for k, v in sorted(busy.items())))

    try:
        for task in tasks:
            if not _feasible(task.target, nodes, opts.node_resource):
                need = task.target.required_resources(opts.node_resource)
                for bs in task.remaining:
                    record(_error_row(task, bs, mode, f"no live node offers {need} (target "
                                      f"{task.target.label!r}); start a node with these resources"),
                           None)
                    bar.update(1)
                continue
            options = dict(task.target.ray_options(opts.node_resource),
                           max_retries=opts.max_retries, retry_exceptions=False)
            if opts.runtime_env is not None:
                options["runtime_env"] = dict(opts.runtime_env)
            dev = task.target.device if str(device) == "auto" else str(device)
            gen = remote.options(**options).remote(task.shipped, list(task.remaining), mode, dev,
                                                   task.target.label, dict(measure_kwargs))
            running[gen] = task
        pending = list(running)
        last_check = time.monotonic()
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=_POLL_S)
            if not ready and time.monotonic() - last_check >= _RECHECK_S:
                # a node that left (lost, scaled down) can leave a task nowhere to run, or to
                # be retried on: Ray would wait for ever, effplan gives error rows instead
                last_check = time.monotonic()
                live = [n for n in ray.nodes() if n.get("Alive")
                        and n["Resources"].get(opts.node_resource, 0) > 0]
                for gen in [g for g in pending if not _feasible(running[g].target, live,
                                                                opts.node_resource)]:
                    task = running[gen]
                    try:
                        ray.cancel(gen, force=True)
                    except Exception:  # noqa: BLE001 - best effort; its points become error rows
                        pass
                    pending.remove(gen)
                    for bs in list(task.remaining):
                        record(_error_row(task, bs, mode, "no live node offers "
                                          f"{task.target.required_resources(opts.node_resource)} "
                                          f"(target {task.target.label!r}) any more: node lost?"),
                               task.hardware)
                        bar.update(1)
                    task.remaining.clear()
                    busy.pop(_node_label(task), None)
                show()
            for gen in ready:
                task = running[gen]
                try:
                    ref = next(gen)
                except StopIteration:
                    busy.pop(_node_label(task), None)
                    show()
                    continue
                try:
                    msg = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    reason = _reason(ray, exc)
                    for bs in list(task.remaining):
                        record(_error_row(task, bs, mode, reason), task.hardware)
                        bar.update(1)
                    task.remaining.clear()
                    busy.pop(_node_label(task), None)
                    show()
                    continue
                pending.append(gen)
                busy.pop(_node_label(task), None)  # a retried attempt may run on another node
                task.node_id, task.node_ip = msg["fleet_node_id"], msg["fleet_node_ip"]
                busy[_node_label(task)] = task.shipped.name
                if msg["kind"] == "start":
                    task.hardware = msg["hardware"]
                    show()
                    continue
                hw, bs = msg["hardware"], int(msg["batch_size"])
                if bs not in task.remaining:  # re-sent by a retried attempt: already stored
                    continue
                task.remaining.remove(bs)
                for row, timing in zip(msg["rows"], msg["timings"]):
                    record(row, hw, timing)
                    key = f"{row['device']}@{task.node_id[:8]}"
                    hardware[key] = dict(hw)
                    if timing is not None:
                        samples[(row["candidate"], key, mode, bs)] = timing
                messages += msg.get("warnings", [])
                if not task.remaining:
                    busy.pop(_node_label(task), None)
                bar.update(1)
                show()
    except BaseException:  # Ctrl-C or a store error: every received point is already on disk
        for gen in running:
            try:
                ray.cancel(gen, force=True)
            except Exception:  # noqa: BLE001 - best effort: the task may have finished already
                pass
        raise
    finally:
        bar.close()

    for msg in dict.fromkeys(messages):
        warnings.warn(f"effplan fleet (on a worker): {msg}", EffplanWarning, stacklevel=3)
    failed = [f"{r['candidate']} bs={r['batch_size']} on {r['fleet_target']}" for r in rows
              if r.get("status") != "ok"]
    if failed:
        warnings.warn(f"effplan.measure (ray): {len(failed)} of {len(rows)} points failed "
                      f"({', '.join(failed[:5])}{', ...' if len(failed) > 5 else ''}); see the "
                      "'status' and 'error' columns (Measurements.errors)", EffplanWarning,
                      stacklevel=3)
    if unsaved:
        warnings.warn(f"effplan.measure (ray): {len(unsaved)} points could not be saved to "
                      f"{results_path} ({', '.join(unsaved[:5])}{', ...' if len(unsaved) > 5 else ''});"
                      " they are in the returned Measurements (reason in 'error'): save them with "
                      "effplan.store.save_frame(m.to_frame(), another_path)", EffplanWarning,
                      stacklevel=3)
    return Measurements(rows=tuple(rows), hardware=hardware, samples=samples)


#: Parameters of :func:`effplan.measure` that the driver handles; the rest go to the workers.
def measure_with_executor(candidates: Any, batch_sizes: Any, mode: str, device: str, settings: Any) -> Measurements:
    """``effplan.measure(..., executor=...)`` for an executor other than ``"local"``: the driver
    settings (targets, results file, resume, progress) stay here, the harness's (timing, energy,
    generation, the rest of the sweep) go to the workers.
    """
    f = settings.fleet
    if f.executor != "ray":
        given = [k for k, v in (("targets", f.targets), ("ray_address", f.ray_address), ("fleet", f.options))
                 if v is not None]
        if f.executor == "local":
            raise ValidationError(given[0], f"{', '.join(given)} need executor='ray'")
        raise ValidationError("executor", f"{f.executor!r} is not 'local' or 'ray'")
    sw = settings.sweep
    harness = dict(timing=settings.timing, energy=settings.energy, generation=settings.generation,
                   sweep=replace(sw, results_path=None, resume=False, progress=True))
    return measure_on_ray(candidates, batch_sizes, mode, device, targets=f.targets, ray_address=f.ray_address,
                          resume=sw.resume, results_path=sw.results_path, progress=sw.progress, fleet=f.options,
                          **harness)
