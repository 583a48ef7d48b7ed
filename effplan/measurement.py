"""Measure candidates on this machine: latency percentiles, throughput, memory, FLOPs, energy.

``effplan.measure(candidates, batch_sizes=(1, 8, 32), mode="inference")`` sweeps every
candidate x batch size and returns :class:`Measurements`, whose ``to_frame()`` is the tidy
frame of :mod:`effplan.schema` that the planner consumes.

How one point (candidate x batch size) is measured
---------------------------------------------------
0. **Isolation, one worker per candidate**: by default every point of a candidate runs in that
   candidate's worker process (:mod:`effplan.worker`: forkserver/spawn, the candidate shipped
   once with cloudpickle, so notebook lambdas work), kept alive across its batch sizes, passes
   and retries (and a generation candidate's concurrencies and prompt lengths). The runtime's
   one-time costs (imports, torch's first operations, FLOP counting's tracing, a CUDA context)
   are paid once per worker, before any point's memory baseline. A crash, ``os._exit``,
   segfault or out-of-memory kill becomes an error row; the kernel lives on, and the
   candidate's next point gets a fresh worker (``worker_pid`` on each row says which process
   measured it). A candidate that cannot be shipped is measured in this process and
   ``isolation`` says why. ``mode="generation"`` points (:mod:`effplan.generation`) follow the
   same rules: worker, retries, resume (a point is also its ``prompt_tokens``), raw samples.
   Threads: ``threads`` (default :func:`default_threads`: the one rule of local and fleet
   sweeps, :mod:`effplan.threads`: cores free throughout a short window, then each point capped
   by its work so that small models are timed on one thread).
   **Time limit** (``point_timeout_s``, default :func:`default_point_timeout_s`: 120 s + 10 x
   (``time_budget_s`` + ``energy_window_s``), the parenthesis doubled for generation): a
   timing pass of a point that runs longer (a forward that never returns) is stopped, its
   worker killed, and the point becomes an error row "timed out after N s"; the sweep goes on
   (the candidate's other points get a fresh worker, each with its own limit). A point measured
   IN THIS PROCESS (``isolate=False``, or a candidate that cannot be shipped) cannot be stopped:
   its ``isolation`` says so, and one that ran over the limit says so in ``timing_note``.
1. A fresh model is built with ``model_fn()``, one batch with ``input_fn(batch_size)``; the same
   batch is reused for every call. FLOPs are counted once on it (:func:`effplan.flops.count_flops`).
2. **Warm-up** for at least ``TimingPolicy.warmup_calls`` calls and ``warmup_s`` seconds; the
   warm-up calls also give a first estimate of the cost of one call.
3. **Timing in rounds** (:func:`effplan.timing.adaptive_time`): when one call is shorter than
   ``min_sample_s``, several calls are timed together as one sample and divided (percentiles
   then describe blocks of calls: tail latency of sub-millisecond calls is understated, and
   ``Timing.calls_per_sample`` says so). Samples are taken in separate rounds until the point
   is **stable** -- the ~95% confidence interval of the median within ``target_ci_rel``, the
   rounds' medians agreeing, no stalls or two modes -- or ``time_budget_s`` is spent
   (``stop_reason`` ``ci-met`` | ``time-budget`` | ``unstable``, ``stable``, ``rounds``,
   ``timing_note`` on the row). ``background_load`` is the CPU work of other processes while
   timing, ``background_load_before`` the same over the warm-up before it.
   **Interleaved passes** (``passes``, default :data:`PASSES_DEFAULT` = 2): the rounds of a
   point are split over passes -- pass 1 of every point of the sweep, then pass 2 of every
   point. Each pass builds the model again and warms it up again, in the candidate's worker,
   and continues the point's rounds after the earlier ones (same ``calls_per_sample``,
   ``prior=`` of :func:`effplan.timing.adaptive_time`); pass k may spend ``k / passes`` of
   ``time_budget_s`` in all and takes at least one round, and stability is judged on the rounds
   of all passes, so rounds taken with other candidates measured in between must agree. A pass
   that fails keeps the earlier passes' figures with ``stable=False`` and the reason. FLOPs and
   energy are measured in the first pass only. Not-stable points are then measured again after
   the other points (``retries``: one pass with the whole budget), and one warning names those still not
   stable.
   **Workers and interleaving, the trade-off**: interleaving needs every candidate's worker
   alive between its passes; each idle worker holds its runtime (~80 MiB of its own memory for
   the digits family on CPU; on a GPU also a CUDA context, some 300-500 MiB of device memory --
   cached model memory is released after every point). So a sweep measures its candidates in
   groups of :data:`MAX_LIVE_WORKERS` (4): the passes are interleaved across all the points of
   a group, retries follow the group, and the group's workers are ended before the next group
   starts. Up to 4 candidates (the built-in families) this is the whole sweep; beyond, rounds
   are interleaved within groups of 4 candidates. One worker per point per pass (the design
   before) interleaved across the whole sweep but started a process, imported and warmed up
   the runtime (and, on a GPU, created a CUDA context) for every pass of every point.
   On CUDA the device is synchronized before every clock read. Inference runs under
   ``torch.inference_mode()``. Training runs ``zero_grad`` + forward + loss + backward +
   ``optimizer.step()`` per call.
4. **Energy**: the workload is run again inside an :class:`effplan.energy.EnergyMeter` for at
   least ``energy_window_s`` (and at least the meter's own minimum window); energy is divided
   by the items actually run. Idle power is measured once per device before the sweep.
   ``energy_source`` on the row says how energy was got: ``estimated-tdp`` is an ESTIMATE from
   rated power, not a measurement (``Measurements.summary()`` marks it); ``energy_note`` says
   why a better source was not used.
5. **Peak memory** (``peak_memory_source`` says which), with a baseline per point: before each
   point the worker releases what earlier points left (garbage collected, CUDA's cached blocks
   emptied, glibc's free heap returned to the OS with ``malloc_trim``), so a batch size's
   footprint is neither inflated nor hidden by the batch size measured before it in the same
   worker. On CUDA ``torch.cuda.max_memory_allocated`` (reset per point) minus what was
   allocated at the point's start. On CPU the peak resident set (Linux ``VmHWM``, reset per
   point through ``/proc/self/clear_refs``) minus the resident set at the start of the point
   (after imports; objects captured by the candidate's functions count as baseline): the
   point's own footprint (model, inputs, activations, FLOP-counting traces in the first pass);
   the row keeps the larger of its passes. Where the reset is not possible (non-Linux,
   restricted ``/proc``) it is the whole process's lifetime high-water mark,
   ``process-peak-rss-lifetime``.

A failure at one point (exception, out of memory, a quantized model asked to train, a crashed
or timed-out worker) becomes a row with ``status="error"`` and the message; the sweep goes on.
With ``results_path`` (checked before the first point; the candidates' own fields are validated
too), **every finished timing pass is on disk at once**: after each pass of each point (and
each retry) its record is appended to the JSON Lines file (one complete line, flushed and
fsync'ed) and its raw samples beside it (:func:`effplan.store.samples_path`). A record that a
later pass of the same sweep will supersede is ``provisional=True`` (and ``stable=False``: its
rounds are not yet judged across passes); ``timing_pass`` says which pass it ends with.
:func:`effplan.store.load` keeps the newest record of each point and drops a superseded
provisional one silently. So a sweep killed at any moment (SIGKILL, an OOM kill, a closed
laptop) loses at most the pass in flight, and ``resume=True`` measures the provisional and
missing points again and completes the sweep, with no duplicate rows after loading. A point
that cannot be saved stays in the returned :class:`Measurements` with the reason in
``error``. Global state is restored afterwards: torch's CPU thread count, grad mode, and the
train/eval flags of the models.

Reproducibility (:mod:`effplan.reproducibility`): every row carries ``seed`` (the candidate's
declared ``seed``, NaN when it declares none), Python / torch / numpy / effplan versions,
``timing_policy`` (JSON) and ``weights_sha256`` / ``config_sha256``. The weights are hashed once
per candidate, on its first measured point (after the point's memory reading), and the hash is
reused for its other points: ``model_fn`` is expected to build the same weights every call
(seed it, or load trained weights), as the built-in families do. Error rows carry the versions,
seed and timing policy, without the hashes.

``bytes_per_item`` (for roofline projection) is the simple estimate
``param_bytes / batch_size + (input bytes + output bytes) / batch_size``: weights are read once
per batch, activations in and out once per item; intermediate activations are ignored.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .candidates import _QUANT_DTYPES, Candidate, call_model, storage_tensors, tensor_leaves
from .errors import EffplanWarning, FlopCountError, MeasurementError, ValidationError
from .schema import (MEASURED_ENERGY_SOURCES, MEASUREMENT_COLUMNS, MODES,
                     PLAN_REQUIRED_COLUMNS, SCHEMA_VERSION, normalize_measurements)
from .worker import rss_mib as _rss_mib
from .timing import (LoadMonitor, Timing, TimingPolicy, adaptive_time, free_cores,  # noqa: F401
                     median_ci)
from .schema import number as schema_number
from .timing import round_spread_rel  # the spread between timing rounds, kept on each row

__all__ = ["measure", "Measurements", "Timing", "TimingPolicy", "adaptive_time", "median_ci",
           "default_threads", "default_point_timeout_s"]

#: Measure each point in its own worker process (see :mod:`effplan.worker`) unless told not to.
ISOLATE_DEFAULT = True
#: Not-stable points are measured again, after the other points, at most this many times.
RETRIES_DEFAULT = 1
#: Each point is timed in this many passes, interleaved across the sweep: pass k of every point
#: before pass k + 1 of any (see :func:`measure`, ``passes``).
PASSES_DEFAULT = 2
#: Energy columns: measured in the first pass only, and carried to the point's final row.
_ENERGY_COLUMNS = ("energy_j", "energy_window_s", "energy_per_item_j", "energy_per_batch_j",
                   "energy_above_idle_per_item_j", "avg_power_w", "energy_source", "energy_note",
                   "energy_per_prompt_token_j", "energy_per_output_token_j")
#: FLOP columns: counted in the first pass of a point only, and carried to its later passes.
_FLOPS_COLUMNS = ("flops_per_item", "flops_engine", "flops_coverage", "operator_calls",
                  "flops_per_prompt_token", "flops_per_output_token", "operator_calls_prefill",
                  "operator_calls_decode")
#: Candidates whose workers are kept alive together (see :func:`measure`, "workers"): a sweep
#: measures its candidates in groups of this many, each candidate's worker alive for its group.
MAX_LIVE_WORKERS = 4
#: ``point_timeout_s`` default: ``POINT_TIMEOUT_BASE_S + POINT_TIMEOUT_FACTOR x phases x
#: (time_budget_s + energy_window_s)`` (see :func:`default_point_timeout_s`).
POINT_TIMEOUT_BASE_S = 120.0
POINT_TIMEOUT_FACTOR = 10.0
#: ``mode="generation"`` defaults: prompt lengths and output tokens per response.
GENERATION_PROMPT_TOKENS = (128, 512)
GENERATION_OUTPUT_TOKENS = 64

# =============================================================================== results
#: ``energy_source`` of a row whose energy was not measured (``energy=False`` or an error row).
NO_ENERGY_SOURCE = "none"
SampleKey = tuple[str, str, str, int]  # (candidate, device, mode, batch_size)


@dataclass(frozen=True)
class Measurements:
    """Result of :func:`measure` (or of figures typed in by hand, see :meth:`from_frame`).

    Attributes
    ----------
    rows: one dict per candidate x hardware x mode x batch size, keys = schema columns.
    hardware: device string -> ``HardwareInfo.to_dict()`` of the hardware measured on.
    samples: ``(candidate, device, mode, batch_size)`` -> raw :class:`Timing` of that point.
    """

    rows: tuple[Mapping[str, Any], ...]
    hardware: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    samples: Mapping[SampleKey, Timing] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The tidy frame: the columns of ``effplan.schema.MEASUREMENT_COLUMNS``, then the
        fleet and hardware-identity columns (``fleet_*``, ``hw_*``) that rows carry (a fleet
        sweep's: where and on which machine each point was measured)."""
        extra = list(dict.fromkeys(k for r in self.rows for k in r
                                   if k.startswith(("fleet_", "hw_")) and k not in MEASUREMENT_COLUMNS))
        df = pd.DataFrame(list(self.rows), columns=list(MEASUREMENT_COLUMNS) + extra)
        # Types only: no relabelling (normalize_measurements would call an empty energy_source
        # "entered", which a measured row with energy=False is not).
        for col, (kind, _) in MEASUREMENT_COLUMNS.items():
            if kind == "str":
                df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
                continue
            if kind == "bool":  # nullable: missing means unknown, never False
                df[col] = pd.array([v if isinstance(v, (bool, np.bool_)) else pd.NA for v in df[col]],
                                   dtype="boolean")
                continue
            vals = pd.to_numeric(df[col], errors="coerce").astype(float)
            df[col] = vals.astype(np.int64) if kind == "int" and vals.notna().all() else vals
        return df

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *,
                   required: tuple[str, ...] = PLAN_REQUIRED_COLUMNS) -> Measurements:
        """Measurements from a frame (measured, loaded, or typed in by hand).

        Validated with :func:`effplan.schema.normalize_measurements`: the planner's required
        columns must be present; rows without ``provenance`` become ``"entered"``.
        """
        norm = normalize_measurements(df, required=required, source="from_frame")
        rows = tuple(norm[list(MEASUREMENT_COLUMNS)].to_dict(orient="records"))
        hardware = {str(r["device"] or r["hardware"]): {"name": str(r["hardware"]),
                                                        "hardware_id": str(r["hardware_id"])}
                    for r in rows}
        return cls(rows=rows, hardware=hardware, samples={})

    @classmethod
    def load(cls, paths: str | os.PathLike | Iterable[str | os.PathLike]) -> Measurements:
        """Measurements from JSON Lines result files written with ``results_path``.

        Only identity columns are required here (a sweep run with ``energy=False`` loads too);
        the planner checks its own required columns when it consumes the frame.
        """
        from . import store

        return cls.from_frame(store.load(paths), required=store.STORE_REQUIRED_COLUMNS)

    def summary(self) -> pd.DataFrame:
        """A compact view for notebooks: one row per point, the figures people look at first.

        ``energy`` says ``measured`` or ``ESTIMATED`` (rated power, not a measurement);
        ``stable`` False marks latency figures not to trust (``stop_reason`` says why).
        """
        df = self.to_frame()
        cols = ["candidate", "tags", "quality", "mode", "batch_size", "device", "latency_p50_ms",
                "latency_p95_ms", "throughput_items_per_s", "stable", "stop_reason", "background_load",
                "peak_memory_mib", "flops_per_item", "energy_per_item_j", "avg_power_w",
                "energy_source", "status", "error"]
        out = df[cols].copy()
        src = out["energy_source"].astype(str)
        out.insert(out.columns.get_loc("energy_source"), "energy",
                   np.where(src.isin(MEASURED_ENERGY_SOURCES), "measured",
                            np.where(src == "estimated-tdp", "ESTIMATED",
                                     np.where(src.isin(("", "none")), "not measured", src))))
        return out

    def samples_frame(self) -> pd.DataFrame:
        """Raw per-call latencies, long form (plot-friendly): one row per timed sample."""
        parts = []
        for (cand, dev, mode, bs), t in self.samples.items():
            ms = t.times_ms
            parts.append(pd.DataFrame({"candidate": cand, "device": dev, "mode": mode,
                                       "batch_size": bs, "sample": np.arange(ms.size),
                                       "latency_ms": ms, "calls_per_sample": t.calls_per_sample}))
        if not parts:
            return pd.DataFrame(columns=["candidate", "device", "mode", "batch_size", "sample",
                                         "latency_ms", "calls_per_sample"])
        return pd.concat(parts, ignore_index=True)

    @property
    def errors(self) -> pd.DataFrame:
        """The rows that failed, with their error messages."""
        df = self.to_frame()
        return df.loc[df["status"] != "ok", ["candidate", "mode", "batch_size", "device", "error"]]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        n_err = sum(1 for r in self.rows if r.get("status") != "ok")
        cands = sorted({str(r.get("candidate")) for r in self.rows})
        return (f"Measurements({len(self.rows)} rows, {n_err} errors, candidates={cands}, "
                f"hardware={sorted({str(r.get('hardware')) for r in self.rows})})")

    def _repr_html_(self) -> str:
        note = ""
        if any(r.get("energy_source") == "estimated-tdp" for r in self.rows):
            note = ("<p><b>Energy is ESTIMATED</b> from rated power (energy_source="
                    "'estimated-tdp'), not measured.</p>")
        shaky = [r for r in self.rows if r.get("status") == "ok" and r.get("stable") is False]
        if shaky:
            note += (f"<p><b>{len(shaky)} point(s) NOT stable</b> (stable=False: stalls, two modes or "
                     "rounds that disagree, see stop_reason / background_load); plan() uses them and "
                     "flags every figure planned from them (allow_unstable=False refuses them).</p>")
        return f"<p>{self!r}</p>{note}" + self.summary().to_html(index=False, na_rep="")


# =============================================================================== helpers
def _resolve_device(device: Any) -> str:
    import torch

    if device is None or str(device) == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(str(device))
    except (RuntimeError, TypeError) as exc:
        raise ValidationError("device", f"not a torch device: {device!r} ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValidationError("device", f"{device!r} asked for but CUDA is not available; "
                                  "pass device='cpu' or 'auto'")
        return f"cuda:{dev.index if dev.index is not None else torch.cuda.current_device()}"
    return str(dev)


def _synchronizer(device: str) -> Callable[[], Any] | None:
    if device.startswith("cuda"):
        import torch

        return lambda: torch.cuda.synchronize(device)
    return None


def _tensor_bytes(obj: Any) -> int:
    return int(sum(t.numel() * t.element_size() for t in tensor_leaves(obj)))


def _param_stats(model: Any) -> tuple[int, int]:
    """(parameter count, bytes of parameters + buffers), packed quantized weights included."""
    import torch

    buffers = {name for name, _ in model.named_buffers()}
    params = 0
    nbytes = 0

    def walk(value: Any, is_buffer: bool) -> None:
        nonlocal params, nbytes
        if isinstance(value, torch.Tensor):
            # a tensor subclass (torchao int8 weights) costs the bytes of its inner tensors
            nbytes += sum(t.numel() * t.element_size() for t in storage_tensors(value))
            if not is_buffer:
                params += value.numel()
        elif isinstance(value, tuple | list):
            for v in value:
                walk(v, is_buffer)

    for key, value in model.state_dict().items():
        walk(value, key in buffers or key.endswith((".scale", ".zero_point")))
    return params, nbytes


def _is_quantized_model(model: Any) -> bool:
    from .slim import quantized_label

    return quantized_label(model) is not None


def _dtype_label(candidate: Candidate, model: Any) -> str:
    from .slim import quantized_label

    if candidate.dtype:
        return candidate.dtype
    label = quantized_label(model)  # torch.ao quantized modules, torchao int8/int4 weights
    if label:
        return label
    for p in model.parameters():
        if p.is_floating_point():
            return str(p.dtype).replace("torch.", "")
    return "float32"


def _reset_peak_rss() -> bool:
    """Reset Linux's per-process peak RSS (VmHWM); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB else


def _make_optimizer(spec: Any, params: list[Any], lr: float) -> Any:
    import torch

    if callable(spec) and not isinstance(spec, str):
        return spec(params)
    if spec == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if spec == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValidationError("optimizer", f"{spec!r} is not 'sgd', 'adam' or a callable(params)")


# ---- the other effplan modules, looked up through one function each (swappable in tests)
def _default_meter(device: str) -> Any:
    from .energy import EnergyMeter

    return EnergyMeter(device=device)


def _idle_power(device: str, seconds: float) -> float:
    from .energy import measure_idle_power

    return float(measure_idle_power(device, seconds).power_w)


def _hardware(device: str) -> dict[str, Any]:
    from .hardware import detect_hardware

    return dict(detect_hardware(device).to_dict())


def _count_flops(model: Any, inputs: Any) -> Any:
    from .flops import count_flops

    return count_flops(model, inputs)


def _peak_flops(hardware_name: str, dtype: str) -> float:
    from .catalog import peak_flops_per_s

    return float(peak_flops_per_s(hardware_name, dtype))


def _append(path: Path, rows: list[dict[str, Any]], hardware: Mapping[str, Any]) -> None:
    from . import store

    store.append(path, rows, hardware=dict(hardware))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _empty_row(candidate: Any, mode: str, batch_size: int, device: str, hw: Mapping[str, Any],
               threads: int, idle_w: float, prompt_tokens: int | None = None,
               output_tokens: int | None = None) -> dict[str, Any]:
    import torch

    row: dict[str, Any] = {}
    for col, (kind, _) in MEASUREMENT_COLUMNS.items():
        row[col] = math.nan if kind in ("float", "int", "bool") else ""
    row.update(candidate=candidate.name, hardware=str(hw.get("name", device)),
               hardware_id=str(hw.get("hardware_id", "")), mode=mode, batch_size=int(batch_size),
               device=device, dtype=candidate.dtype or "", threads=int(threads),
               idle_power_w=idle_w, provenance="measured", energy_source=NO_ENERGY_SOURCE,
               quality=math.nan if candidate.quality is None else float(candidate.quality),
               tags=",".join(candidate.tags), status="ok", error="",
               torch_version=torch.__version__, schema_version=SCHEMA_VERSION)
    if mode == "generation":
        ppl = getattr(candidate, "perplexity", None)
        row.update(prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                   perplexity=math.nan if ppl is None else float(ppl))
    return row


def _point_label(row: Mapping[str, Any]) -> str:
    """``"name bs=8"``, or ``"name c=4 prompt=128"`` for a generation point (warnings)."""
    if row.get("mode") == "generation":
        return f"{row['candidate']} c={row['batch_size']} prompt={row['prompt_tokens']}"
    return f"{row['candidate']} bs={row['batch_size']}"


def _phase(key: SampleKey) -> str:
    """``"prefill"`` / ``"decode"`` for a generation point's samples key, else ``""``."""
    mode = key[2]
    return mode.split("-")[1] if mode.startswith("generation-") else ""


# =============================================================================== the sweep
def default_threads() -> int:
    """torch CPU threads for a sweep: torch's current setting, capped at the cores free
    throughout a short window (:func:`effplan.threads.sweep_threads`, the one thread rule of
    local and fleet sweeps); each point is capped again by its work
    (:func:`effplan.threads.threads_for_work`)."""
    from .threads import sweep_threads

    return sweep_threads()


def measure(candidates: Candidate | Sequence[Candidate], batch_sizes: Sequence[int] = (1, 8, 32),
            mode: str = "inference", device: str = "auto", *,
            threads: int | None = None,
            target_ci_rel: float | None = None,
            time_budget_s: float | None = None,
            timing: TimingPolicy | None = None,
            energy: bool = True,
            energy_window_s: float = 1.0,
            idle_s: float = 1.0,
            idle_power_w: float | None = None,
            optimizer: str | Callable[[list[Any]], Any] = "sgd",
            learning_rate: float = 1e-3,
            results_path: str | os.PathLike | None = None,
            resume: bool | str = False,
            isolate: bool | None = None,
            retries: int | None = None,
            passes: int | None = None,
            progress: bool = True,
            raise_errors: bool = False,
            clock: Callable[[], float] = time.perf_counter,
            energy_meter: Callable[[str], Any] | None = None,
            prompt_tokens: int | Sequence[int] | None = None,
            output_tokens: int | None = None,
            prompt_seed: int = 0,
            point_timeout_s: float | None = None,
            executor: str = "local", targets: Sequence[Any] | None = None,
            ray_address: str | None = None, fleet: Any = None, _workers: Any = None) -> Measurements:
    """Measure every candidate at every batch size on ``device``; see the module docstring.

    ``mode="generation"`` measures :class:`effplan.generation.GenerationCandidate` s at every
    concurrency (``batch_sizes``) x ``prompt_tokens`` with ``output_tokens`` per response:
    prefill and decode with a KV cache, TTFT/TPOT percentiles (see :mod:`effplan.generation`).

    Parameters
    ----------
    candidates: one :class:`Candidate` or a sequence of them (unique names).
    batch_sizes: positive batch sizes (items per batch).
    mode: ``"inference"`` (forward under ``inference_mode``) or ``"training"`` (forward +
        backward + optimizer step per batch).
    device: ``"auto"`` (first CUDA device, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        A candidate with its own ``device`` is measured there.
    threads: torch CPU threads during the sweep (default :func:`default_threads`: torch's
        setting capped at the cores free now); restored after. Recorded on each row.
    target_ci_rel, time_budget_s: shortcuts for the same fields of ``timing``
        (default 2% and 2 s per point).
    timing: the full :class:`TimingPolicy` (rounds, stall rule...).
    energy: measure energy (default). ``False`` skips it: energy columns NaN and
        ``energy_source`` = :data:`NO_ENERGY_SOURCE`.
    energy_window_s: minimum length of the energy window per point, s (raised to the meter's own
        minimum where it has one).
    idle_s: how long idle power is measured per device before the sweep, s.
    idle_power_w: use this idle power (W) instead of measuring it.
    optimizer, learning_rate: training mode: ``"sgd"``, ``"adam"`` or ``callable(params)``.
    results_path: JSON Lines file; checked before the first point (writable, not a folder),
        each finished timing pass of each point is appended (``effplan.store.append``;
        ``provisional`` while a later pass is to come) and its raw samples to
        ``effplan.store.samples_path(results_path)``. A point that cannot be saved stays in the
        returned :class:`Measurements`, with the reason in ``error``; the sweep goes on.
    resume: skip the points already finished in ``results_path`` (same candidate, host,
        hardware, mode, dtype and batch size; see :mod:`effplan.resume`); their stored rows are
        returned with the rest. ``True`` / ``"unfinished"``: error rows, provisional and missing
        points are measured again, finished-but-unstable ones are kept; ``"unstable"``: those
        are measured again too.
    isolate: measure each candidate's points in its own worker process (default
        :data:`ISOLATE_DEFAULT`): a crash or a hang is an error row, peak memory is the point's
        own. A candidate that cannot be shipped to a worker is measured here, and ``isolation``
        on its rows says why.
    retries: not-stable points are measured again after the other points (of their group of
        candidates), at most this many times (default :data:`RETRIES_DEFAULT`); the last
        attempt is kept (one that fails keeps the earlier figures, not stable, with the reason).
    passes: each point is timed in this many passes (default :data:`PASSES_DEFAULT`),
        interleaved: pass 1 of every point, then pass 2 of every point, ... (within groups of
        :data:`MAX_LIVE_WORKERS` candidates, see the module docstring). Each pass builds and
        warms up the model again, in the candidate's worker, and continues the point's rounds
        (:func:`effplan.timing.adaptive_time` ``prior=``): pass k may use ``k / passes`` of
        ``time_budget_s`` in all, takes at least one round, and the stop rule is judged on the
        samples of all passes so far -- rounds with other points measured in between must
        agree. FLOPs and energy are measured in the first pass only. Each pass's record is
        saved at once (``provisional`` until the last). ``passes=1``: the rounds of a point run
        back to back.
    point_timeout_s: wall-clock limit of one timing pass of a point in its worker, s (default
        :func:`default_point_timeout_s`: ``120 + 10 x phases x (time_budget_s +
        energy_window_s)``, phases = 2 for generation, else 1; 150 s with the defaults). Over
        it the point is an error row "timed out after N s", its worker is killed and the sweep
        goes on. Starting a worker has its own limit (:data:`effplan.worker.START_TIMEOUT_S`).
        Points measured in this process (``isolate=False``, unshippable candidates) cannot be
        stopped; their rows say so.
    progress: show a ``tqdm.auto`` progress bar (notebook-aware); it moves with each round.
    raise_errors: re-raise a point's exception instead of recording it on the row.
    clock, energy_meter: swappable clock (seconds) and ``energy_meter(device)`` factory
        returning an ``EnergyMeter``-like context manager (tests, custom meters).
    prompt_tokens, output_tokens, prompt_seed: ``mode="generation"`` only: prompt lengths
        (default :data:`GENERATION_PROMPT_TOKENS`), output tokens per response (default
        :data:`GENERATION_OUTPUT_TOKENS`) and the seed the random prompts are drawn from.
    executor, targets, ray_address, fleet: ``executor="ray"`` runs the sweep on a Ray
        cluster, one task per candidate x target, streamed into ``results_path`` (see
        :mod:`effplan.fleet`; ``pip install 'effplan[ray]'``). The default ``"local"`` needs no Ray.
    """
    if executor != "local" or targets is not None or ray_address is not None or fleet is not None:
        params = dict(locals())  # every parameter above, before anything else is bound
        from .executors import measure_with_executor

        return measure_with_executor(**params)
    import torch

    from . import store

    gen_opts: dict[str, Any] = {}
    if mode == "generation":
        from .generation import GenerationCandidate, _positive_ints

        cand_type: type = GenerationCandidate
        prompts: list[int | None] = list(_positive_ints(
            "prompt_tokens", GENERATION_PROMPT_TOKENS if prompt_tokens is None else prompt_tokens))
        n_out = _positive_ints("output_tokens", GENERATION_OUTPUT_TOKENS if output_tokens is None
                               else output_tokens)
        if len(n_out) != 1:
            raise ValidationError("output_tokens", f"must be one positive integer, got {output_tokens!r}")
        gen_opts = {"output_tokens": n_out[0], "seed": int(prompt_seed)}
    else:
        if prompt_tokens is not None or output_tokens is not None:
            raise ValidationError("prompt_tokens", f"prompt_tokens / output_tokens apply to mode='generation' "
                                  f"only, not mode={mode!r}")
        cand_type = Candidate
        prompts = [None]
    # ---- validate at the boundary
    if isinstance(candidates, Candidate | cand_type) or not isinstance(candidates, Iterable):
        candidates = [candidates]
    candidates = list(candidates)
    if not candidates:
        raise ValidationError("candidates", "no candidates given")
    for i, c in enumerate(candidates):
        if not isinstance(c, cand_type):
            hint = ("" if mode != "generation" else " (mode='generation' measures GenerationCandidate: "
                    "see effplan.decoders.decoder_candidates or effplan.generation.hf_candidate)")
            raise ValidationError("candidates", f"item {i} is a {type(c).__name__}, not a "
                                  f"{cand_type.__name__}{hint}")
    names = [c.name for c in candidates]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationError("candidates", f"candidate names must be unique; repeated: {dupes}")
    if isinstance(batch_sizes, int):
        batch_sizes = (batch_sizes,)
    bss = list(batch_sizes)
    if not bss or not all(isinstance(b, int | np.integer) and not isinstance(b, bool) and b > 0
                          for b in bss):
        raise ValidationError("batch_sizes", f"must be positive integers, got {batch_sizes!r}")
    bss = list(dict.fromkeys(int(b) for b in bss))
    if mode not in MODES:
        raise ValidationError("mode", f"{mode!r} is not one of {MODES}")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ValidationError("threads", f"must be a positive integer or None, got {threads!r}")
    # the shared scalar rules of effplan.schema: a number (not text or a bool), finite, in range
    energy_window_s = schema_number("energy_window_s", energy_window_s, lo=0, lo_open=True)
    idle_s = schema_number("idle_s", idle_s, lo=0, lo_open=True)
    if idle_power_w is not None:
        idle_power_w = schema_number("idle_power_w", idle_power_w, lo=0)
    if not (isinstance(optimizer, str) and optimizer in ("sgd", "adam")) and not callable(optimizer):
        raise ValidationError("optimizer", f"{optimizer!r} is not 'sgd', 'adam' or a callable(params)")
    retries = RETRIES_DEFAULT if retries is None else retries
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValidationError("retries", f"must be a whole number >= 0, got {retries!r}")
    passes = PASSES_DEFAULT if passes is None else passes
    if not isinstance(passes, int) or isinstance(passes, bool) or passes < 1:
        raise ValidationError("passes", f"must be a whole number >= 1, got {passes!r}")
    from .resume import resume_mode

    resume = resume_mode(resume)
    if resume and results_path is None:
        raise ValidationError("resume", "resume=True needs results_path= (the file to resume)")
    isolate = ISOLATE_DEFAULT if isolate is None else bool(isolate)
    policy = timing or TimingPolicy()
    overrides = {k: v for k, v in (("target_ci_rel", target_ci_rel), ("time_budget_s", time_budget_s))
                 if v is not None}
    if overrides:
        policy = replace(policy, **overrides)
    point_timeout = (default_point_timeout_s(policy.time_budget_s, energy_window_s if energy else 0.0, mode)
                     if point_timeout_s is None else
                     schema_number("point_timeout_s", point_timeout_s, lo=0, lo_open=True))
    sweep_device = _resolve_device(device)
    devices = list(dict.fromkeys(_resolve_device(c.device) if c.device else sweep_device
                                 for c in candidates))
    meter_factory = energy_meter or _default_meter
    path = Path(results_path) if results_path is not None else None
    if path is not None:  # before the first point: never measure into a file that cannot be written
        store.check_results_path(path)

    from tqdm.auto import tqdm

    from .worker import WorkerPool, WorkerTimeout

    prev_threads = torch.get_num_threads()
    rows: list[dict[str, Any]] = []
    samples: dict[SampleKey, Timing] = {}
    hardware: dict[str, dict[str, Any]] = {}
    idle: dict[str, float] = {}
    degraded: list[str] = []
    unsaved: list[str] = []
    bar = None
    pool: WorkerPool | None = _workers if isinstance(_workers, WorkerPool) else None
    own_pool = pool is None
    # Warnings raised inside the sweep (energy fallback, unsupported operators) repeat for every
    # point; they are collected and re-emitted once each when the sweep ends (or is interrupted).
    caught = warnings.catch_warnings(record=True)
    recorded = caught.__enter__()
    warnings.simplefilter("always")

    def save(row: dict[str, Any], timings: Mapping[SampleKey, Timing], why_provisional: str = "") -> None:
        """Append the record of a point (a provisional one, that a later pass of this sweep
        supersedes, when ``why_provisional`` says why) and its raw samples."""
        if path is None:
            return
        rec = _provisional(row, why_provisional) if why_provisional else row
        try:
            _append(path, [rec], hardware[row["device"]])
            if timings:
                store.append_samples(path, [_samples_record(rec, hardware[row["device"]], t, _phase(k))
                                            for k, t in timings.items()])
        except (OSError, ValidationError) as exc:  # the point stays in memory, with the reason
            msg = f"not saved to {path}: {type(exc).__name__}: {exc}"
            row["error"] = f"{row['error']}; {msg}" if row["error"] else msg
            label = _point_label(row)
            if label not in unsaved:
                unsaved.append(label)

    try:
        used_threads = threads if threads is not None else default_threads()
        torch.set_num_threads(used_threads)
        for dev in devices:
            hardware[dev] = _hardware(dev)
        # non-measured fields (name, quality, tags...) are validated before anything is measured
        store.validate_rows([_empty_row(c, mode, bs, dev, hardware[dev], used_threads, math.nan,
                                        prompts[0], gen_opts.get("output_tokens"))
                             for c in candidates for bs in bss[:1]
                             for dev in [_resolve_device(c.device) if c.device else sweep_device]],
                            where="measure()")
        points = [(c, _resolve_device(c.device) if c.device else sweep_device, bs, p)
                  for c in candidates for bs in bss for p in prompts]
        if resume:
            points, kept = _resume(path, points, mode, hardware, resume)
            rows.extend(kept)
        for dev in dict.fromkeys(d for _, d, _, _ in points):
            if not energy:
                idle[dev] = math.nan
            elif idle_power_w is not None:
                idle[dev] = float(idle_power_w)
            else:
                idle[dev] = _measure_idle(dev, idle_s, degraded)
        shippable: dict[str, str] = {}
        if isolate:
            from .worker import can_ship

            for c in dict.fromkeys(c for c, _, _, _ in points):
                ok, why = can_ship((_point_job, c, clock, meter_factory, optimizer))
                shippable[c.name] = "" if ok else why
                if not ok:
                    degraded.append(f"effplan.measure: candidate {c.name!r} could not be shipped to a "
                                    f"worker process ({why}); it was measured in this process "
                                    "('isolation' on its rows), where point_timeout_s cannot stop it: "
                                    "define its functions at module level or avoid capturing locks, "
                                    "files or generators")
            if pool is None:
                pool = _worker_pool(used_threads, reuse=_workers != "per-pass")
        bar = tqdm(total=len(points) * passes, desc=f"effplan.measure ({mode})", disable=not progress,
                   leave=True)
        opts = dict(policy=policy, clock=clock, energy=energy, energy_window_s=energy_window_s,
                    meter_factory=meter_factory, optimizer=optimizer, lr=learning_rate,
                    threads=used_threads, auto_threads=threads is None, **gen_opts)
        # weights and configuration are hashed once per candidate, on its first measured point
        hashes: dict[str, dict[str, str]] = {}
        from .reproducibility import reproducibility_fields

        sweep_repro = reproducibility_fields(None, timing_policy=policy)  # an error row keeps these

        def run(cand: Any, dev: str, bs: int, prompt: int | None, timing_pass: int,
                prior: Mapping[SampleKey, Timing] | None = None,
                first: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[SampleKey, Timing]]:
            """Timing pass ``timing_pass`` of a point (``prior``: its timings so far, ``first``:
            its first pass's row); without a prior it is one pass with the whole budget (a retry,
            or ``passes=1``) unless ``timing_pass`` < ``passes``."""
            done = float(round(bar.n))
            bar.set_postfix_str(f"{cand.name} bs={bs}" + (f" prompt={prompt}" if prompt else ""))
            row = _empty_row(cand, mode, bs, dev, hardware[dev], used_threads, idle[dev], prompt,
                             gen_opts.get("output_tokens"))
            seed = getattr(cand, "seed", None)
            row.update({**sweep_repro, "seed": math.nan if seed is None else seed})
            why = shippable.get(cand.name, "")
            in_worker = isolate and not why
            if in_worker:
                row["isolation"] = "worker"
            else:
                because = "isolate=False" if not isolate else f"could not be shipped to a worker ({why})"
                row["isolation"] = f"in-process: {because}; point_timeout_s cannot stop it"
            share = timing_pass / passes if timing_pass < passes else 1.0
            point_opts = {**opts, "known_hashes": hashes.get(cand.name), "prior": prior,
                          "known_flops": _flops_of(first) if first is not None else None,
                          "energy": energy and first is None,  # energy: in the first pass only
                          "policy": policy if share == 1.0 else
                          replace(policy, time_budget_s=policy.time_budget_s * share)}

            def moved(message: Any) -> None:  # progress from the point: the bar moves per round
                bar.n = round(done + 0.9 * float(message), 3)
                bar.refresh()

            timings: dict[SampleKey, Timing] = {}
            pid = math.nan
            t0 = time.monotonic()
            try:
                if in_worker:
                    worker = pool.worker(cand.name, cand)
                    pid = int(worker.pid)
                    try:
                        out = worker.call(_point_job, bs, mode, dev, row, point_opts, True,
                                          on_progress=moved, timeout_s=point_timeout)
                    finally:
                        if not worker.alive or not pool.reuse:
                            pool.discard(cand.name)  # crashed or timed out: a fresh one next time
                    for category, text in out["warnings"]:
                        warnings.warn(text, category)
                else:
                    out = _point_job(cand, bs, mode, dev, row, point_opts, False, report=moved)
                row, timings = out["row"], out["timings"]
                degraded.extend(out["degraded"])
                samples.update(timings)
                if row["weights_sha256"]:
                    hashes.setdefault(cand.name, {k: row[k] for k in ("weights_sha256", "config_sha256")})
                took = time.monotonic() - t0
                if not in_worker and took > point_timeout:
                    row["timing_note"] = "; ".join(x for x in (row["timing_note"], (
                        f"ran {took:.0f} s, longer than point_timeout_s={point_timeout:g} s: "
                        "a point measured in this process cannot be stopped")) if x)
            except WorkerTimeout as exc:
                if raise_errors:
                    raise
                row["status"] = "error"
                row["error"] = (f"{type(exc).__name__}: {exc} (point_timeout_s={point_timeout:g}; "
                                "give a larger one if the model is only slow)")
            except Exception as exc:  # recorded on the row, with its type and message
                if raise_errors:
                    raise
                row["status"] = "error"
                row["error"] = f"{type(exc).__name__}: {exc}"
                if dev.startswith("cuda") and not in_worker:
                    torch.cuda.empty_cache()
            row["worker_pid"] = pid
            row["timing_pass"] = timing_pass
            row["provisional"] = False
            row["timestamp"] = _now_iso()
            bar.n = round(done + 1, 3)
            bar.refresh()
            return row, timings

        def settled(row: Mapping[str, Any]) -> bool:
            return row["status"] != "ok" or row["stable"] is True

        # ---- candidates in groups of at most pool.max_live, each candidate's worker kept alive
        # while its group is measured; within a group: pass 1 of every point, then pass 2 of
        # every point, ... (interleaved rounds), then the retries of the group's points
        names = list(dict.fromkeys(c.name for c, _, _, _ in points))
        size = pool.max_live if (pool is not None and pool.reuse) else max(1, len(names))
        for g in range(0, len(names), size):
            group = set(names[g:g + size])
            gpoints = [p for p in points if p[0].name in group]
            pending: list[tuple[dict[str, Any], dict[SampleKey, Timing]]] = []
            held: list[tuple[dict[str, Any], dict[SampleKey, Timing]]] = []  # not stable: retried

            def finish(row: dict[str, Any], ts: dict[SampleKey, Timing]) -> None:
                """A point after its last pass: saved for good, or (not stable, a retry to come)
                saved provisional and held."""
                if settled(row) or retries == 0:
                    save(row, ts)
                else:
                    save(row, ts, "provisional: not stable, measured again after the rest of the "
                         "sweep (a retry), whose record supersedes this one")
                    held.append((row, ts))

            for cand, dev, bs, prompt in gpoints:
                row, ts = run(cand, dev, bs, prompt, 1)
                pending.append((row, ts))
                if passes == 1 or row["status"] != "ok" or not ts:
                    finish(row, ts)  # no later pass: an error, or passes=1
                else:
                    save(row, ts, f"provisional after timing pass 1 of {passes}: not judged across "
                         "passes yet; a later record of this point supersedes it, else the sweep was "
                         "interrupted before its last timing pass")
            for k in range(2, passes + 1):
                for i, (cand, dev, bs, prompt) in enumerate(gpoints):
                    first, ts = pending[i]
                    if first["status"] != "ok" or not ts:
                        continue
                    new, ts2 = run(cand, dev, bs, prompt, k, ts, first)
                    pending[i] = _next_pass(first, ts, new, ts2, k)
                    if k == passes:
                        finish(*pending[i])
                    else:
                        save(*pending[i], f"provisional after timing pass {k} of {passes}: a later "
                             "record of this point supersedes it, else the sweep was interrupted "
                             "before its last timing pass")
            rows.extend(row for row, _ in pending)
            # ---- retries: not-stable points again, after the rest of the group (time apart)
            for attempt in range(1, retries + 1):
                again = [(j, r) for j, (r, _) in enumerate(held) if not settled(r)]
                if not again:
                    break
                bar.total = bar.total + len(again)
                for j, old in again:
                    cand = next(c for c in candidates if c.name == old["candidate"])
                    prompt = int(old["prompt_tokens"]) if mode == "generation" else None
                    # a fresh pass with the whole budget; FLOPs and energy are the first pass's
                    new, ts = run(cand, old["device"], int(old["batch_size"]), prompt, passes + attempt,
                                  first=old)
                    new, ts = _next_pass(old, held[j][1], new, ts, passes + attempt)
                    if new["timing_note"]:
                        new["timing_note"] += f" (after {attempt} retr{'y' if attempt == 1 else 'ies'})"
                    rows[next(i for i, r in enumerate(rows) if r is old)] = new
                    held[j] = (new, ts)
                    if settled(new) or attempt == retries:
                        save(new, ts)
                    else:
                        save(new, ts, "provisional: not stable, measured again (another retry), "
                             "whose record supersedes this one")
            if own_pool and pool is not None:
                for name in group:
                    pool.discard(name)
    finally:
        if own_pool and pool is not None:
            pool.close()
        if bar is not None:
            bar.close()
        torch.set_num_threads(prev_threads)
        caught.__exit__(None, None, None)
        seen: set[tuple[type, str]] = set()
        for w in recorded:
            key = (w.category, str(w.message))
            if key not in seen:
                seen.add(key)
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    failed = [_point_label(r) for r in rows if r["status"] != "ok"]
    if failed:
        kind = "generation " if mode == "generation" else ""
        warnings.warn(f"effplan.measure: {len(failed)} of {len(rows)} {kind}points failed ({', '.join(failed[:5])}"
                      f"{', ...' if len(failed) > 5 else ''}); see the 'status' and 'error' columns "
                      "(Measurements.errors)", EffplanWarning, stacklevel=2)
    shaky = [r for r in rows if r["status"] == "ok" and r["stable"] is not True]
    if shaky:
        named = "; ".join(f"{_point_label(r)} ({r['stop_reason'] or 'unknown'}"
                          f"{': ' + r['timing_note'] if r['timing_note'] else ''})" for r in shaky[:6])
        warnings.warn(f"effplan.measure: {len(shaky)} of {len(rows)} points are NOT stable: {named}"
                      f"{'; ...' if len(shaky) > 6 else ''}. They are kept with stable=False and "
                      "plan() uses them and flags every figure planned from them (allow_unstable=False "
                      "refuses them). For firm figures: "
                      "close other programs (background_load shows how busy the machine was), use "
                      "fewer threads (threads=1), a longer time_budget_s, or re-measure them later "
                      "with resume='unstable' (effplan measure --resume unstable)", EffplanWarning, stacklevel=2)
    if unsaved:
        warnings.warn(f"effplan.measure: {len(unsaved)} points could not be saved to {path} "
                      f"({', '.join(unsaved[:5])}{', ...' if len(unsaved) > 5 else ''}); they are in "
                      "the returned Measurements (reason in 'error'): save them with "
                      "effplan.store.save_frame(m.to_frame(), another_path)", EffplanWarning, stacklevel=2)
    for msg in dict.fromkeys(degraded):
        warnings.warn(msg, EffplanWarning, stacklevel=2)
    return Measurements(rows=tuple(rows), hardware=hardware, samples=samples)


def _next_pass(first: dict[str, Any], ts: dict[SampleKey, Timing], new: dict[str, Any],
               ts2: dict[SampleKey, Timing], k: int) -> tuple[dict[str, Any], dict[SampleKey, Timing]]:
    """A point after timing pass ``k`` (or a retry): the new row (timing of all passes so far)
    with the first pass's energy and the larger peak memory of the two; if pass ``k`` failed,
    the earlier row, NOT stable, saying so."""
    if new["status"] != "ok":
        kept = dict(first)
        kept.update(stable=False, stop_reason="unstable", timing_pass=new["timing_pass"],
                    timestamp=new["timestamp"],
                    timing_note="; ".join(x for x in (first["timing_note"], f"timing pass {k} failed "
                                                      f"({new['error']}): figures from the earlier pass(es)")
                                          if x))
        return kept, ts
    for c in _ENERGY_COLUMNS:
        new[c] = first[c]
    mem = [v for v in (first.get("peak_memory_mib"), new.get("peak_memory_mib"))
           if isinstance(v, float | int) and not math.isnan(v)]
    if mem:
        new["peak_memory_mib"] = float(max(mem))
    return new, ts2


def _provisional(row: Mapping[str, Any], why: str) -> dict[str, Any]:
    """The record of a point that a later pass of the same sweep will supersede: marked
    ``provisional``, NOT stable (its rounds are not judged across passes yet; a ``ci-met`` within
    the pass becomes ``time-budget``) and ``why`` added to its note, so that a sweep killed here
    leaves a flagged row that ``resume`` measures again."""
    rec = dict(row, provisional=True)
    if rec["status"] == "ok":
        if rec["stable"] is True or rec["stop_reason"] == "ci-met":
            rec["stop_reason"] = "time-budget"
        rec["stable"] = False
    rec["timing_note"] = "; ".join(x for x in (rec["timing_note"], why) if x)
    return rec


def _flops_of(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The FLOP columns of a point's earlier pass (counted once per point), or None when that
    pass did not count them."""
    if row.get("status") != "ok" or not row.get("flops_engine"):
        return None
    return {c: row[c] for c in _FLOPS_COLUMNS if c in row}


def _resume(path: Path | None, points: list[tuple[Any, str, int, int | None]], mode: str,
            hardware: Mapping[str, Mapping[str, Any]],
            how: str = "unfinished") -> tuple[list[tuple[Any, str, int, int | None]], list[dict[str, Any]]]:
    """Points still to measure, and the stored rows of those already finished in ``path``
    (``how``: the resume mode, :mod:`effplan.resume`)."""
    from . import store
    from .resume import finished_points

    done = finished_points(path, how)
    if not done:
        return points, []
    # a candidate that does not declare its dtype matches a stored point of any dtype
    any_dtype = {k[:4] + k[5:] for k in done}
    todo, skipped = [], set()
    for cand, dev, bs, prompt in points:
        probe = {"candidate": cand.name, "hardware": hardware[dev].get("name", dev),
                 "hardware_id": hardware[dev].get("hardware_id", ""),
                 "hw_host_hash": hardware[dev].get("host_hash", ""), "mode": mode,
                 "dtype": cand.dtype or "", "batch_size": bs, "prompt_tokens": prompt}
        key = store.point_key(probe)
        if key in done or (not cand.dtype and key[:4] + key[5:] in any_dtype):
            skipped.add(key if cand.dtype else key[:4] + key[5:])
        else:
            todo.append((cand, dev, bs, prompt))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)  # duplicates are expected in a resumed file
        stored = store.load(path)
    kept = []
    for rec in stored.to_dict(orient="records"):
        key = store.point_key(rec)
        if key in skipped or key[:4] + key[5:] in skipped:
            kept.append({c: rec.get(c) for c in MEASUREMENT_COLUMNS})
    return todo, kept


def _samples_record(row: Mapping[str, Any], hw: Mapping[str, Any], t: Timing,
                    phase: str = "") -> dict[str, Any]:
    """One line of the samples file: the point's identity (as :func:`store.point_key` reads it)
    and its raw timing; a generation point has two, ``phase`` ``"prefill"`` (TTFT) and
    ``"decode"`` (TPOT)."""
    ident = {k: row[k] for k in ("candidate", "hardware", "hardware_id", "mode", "dtype", "batch_size",
                                 "device", "timestamp")}
    ident.update(timing_pass=row.get("timing_pass"), provisional=row.get("provisional") is True)
    ident["hw_host_hash"] = hw.get("host_hash", "")
    if row.get("mode") == "generation":
        ident.update(prompt_tokens=row["prompt_tokens"], phase=phase)
    return {**ident, **t.to_record()}


def _point_job(cand: Any, bs: int, mode: str, dev: str, row: dict[str, Any],
               opts: Mapping[str, Any], isolated: bool, *, report: Callable[[Any], Any]) -> dict[str, Any]:
    """Measure one point (in the candidate's worker process when ``isolated``); returns the
    filled row, its raw :class:`Timing` s by samples key (two for a generation point: prefill and
    decode), degradation messages and (isolated) the warnings raised."""
    import torch

    degraded: list[str] = []
    caught: list[tuple[type, str]] = []
    kwargs = {k: v for k, v in opts.items() if k != "threads"}
    if mode == "generation":
        from .generation import _measure_point as measure_point
    else:
        measure_point = _measure_point
        kwargs = {k: v for k, v in kwargs.items() if k not in ("output_tokens", "seed")}
    if mode == "generation":
        kwargs.pop("auto_threads", None)  # generation points keep the sweep's count
    if isolated:
        # a worker measures one point after another: what the last point left behind is
        # released first, so this point's memory baseline is its own (see _release_memory)
        torch.set_num_threads(int(opts["threads"]))
        _release_memory(dev)
        try:
            with warnings.catch_warnings(record=True) as got:
                warnings.simplefilter("always")
                timings = measure_point(cand, bs, mode, dev, row, degraded=degraded, report=report,
                                        isolated=True, **kwargs)
        finally:
            _release_memory(dev)  # an idle worker holds no model (CUDA: no cached blocks either)
        for w in got:
            caught.append((w.category, str(w.message)))
    else:
        timings = measure_point(cand, bs, mode, dev, row, degraded=degraded, report=report,
                                isolated=False, **kwargs)
    return {"row": row, "timings": timings, "degraded": degraded, "warnings": list(dict.fromkeys(caught))}


def _worker_init(threads: int) -> None:
    """Runs once in each new worker process, BEFORE any point's memory baseline: imports what
    measuring imports lazily, sets the thread count and pays the runtime's one-time costs
    (:func:`_warm_runtime`), so that a point's peak memory is its own (model, inputs,
    activations), not fvcore's or pandas'."""
    import torch

    from . import catalog, energy, flops, hardware, reproducibility  # noqa: F401

    torch.set_num_threads(int(threads))
    _warm_runtime()
    # what exists now (torch, effplan, the candidate) lives as long as the worker: out of the
    # garbage collector's sight, so the collection before each point (_release_memory) scans
    # only what points created -- milliseconds instead of a quarter of a second
    gc.collect()
    gc.freeze()


def _worker_pool(threads: int, *, reuse: bool = True) -> Any:
    """The :class:`effplan.worker.WorkerPool` a sweep measures in: one worker per candidate, at
    most :data:`MAX_LIVE_WORKERS` alive; ``reuse=False`` is a fresh worker per point per pass
    (the behaviour before worker reuse, kept for ``benchmarks/``)."""
    from .worker import WorkerPool

    return WorkerPool(MAX_LIVE_WORKERS, init=_worker_init, init_args=(int(threads),), reuse=reuse)


def _release_memory(dev: str) -> None:
    """Give back what earlier points of this worker left: garbage collected, CUDA's cached blocks
    emptied, and glibc's free heap returned to the OS (``malloc_trim``), so that the resident set
    a point starts from -- its memory baseline -- is not the previous batch size's leftovers
    (which would otherwise be reused without raising the peak: a footprint too small)."""
    gc.collect()
    if dev.startswith("cuda"):
        import torch

        torch.cuda.synchronize(dev)
        torch.cuda.empty_cache()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass


def default_point_timeout_s(time_budget_s: float, energy_window_s: float = 0.0,
                            mode: str = "inference") -> float:
    """The wall-clock limit of one timing pass of a point when ``point_timeout_s`` is not given:

    ``POINT_TIMEOUT_BASE_S + POINT_TIMEOUT_FACTOR x phases x (time_budget_s + energy_window_s)``

    = 120 s + 10 x phases x (budget + energy window), ``phases`` = 2 for ``mode="generation"``
    (prefill and decode are each timed and metered), else 1. The defaults (2 s budget, 1 s energy
    window) give 150 s per inference point and 180 s per generation point; the 120 s base covers
    building the model, FLOP counting, warm-up and a first CUDA call. Generous on purpose: it
    exists to stop a point that never returns, not a slow one."""
    phases = 2 if mode == "generation" else 1
    return POINT_TIMEOUT_BASE_S + POINT_TIMEOUT_FACTOR * phases * (float(time_budget_s) + float(energy_window_s))


def _reproducibility(row: dict[str, Any], cand: Any, model: Any, policy: TimingPolicy,
                     known: Mapping[str, str] | None) -> None:
    """Fill the reproducibility columns (:func:`effplan.reproducibility.reproducibility_fields`):
    the weights are hashed only when ``known`` (the candidate's hashes from an earlier point of
    the sweep) is None."""
    from .reproducibility import reproducibility_fields

    seed = getattr(cand, "seed", None)  # a candidate that declares the seed its weights came from
    fields = reproducibility_fields(None if known else model, seed=seed if isinstance(seed, int) else None,
                                    timing_policy=policy)
    if known:
        fields.update(known)
    fields["seed"] = math.nan if fields["seed"] is None else fields["seed"]
    row.update(fields)


def _warm_runtime() -> None:
    """One-time costs of a fresh worker, paid BEFORE the point's memory baseline: torch's first
    operations and autograd, FLOP counting's tracing machinery, the catalog. Without this a
    64 x 10 linear layer showed ~60 MiB of "peak memory" that was the runtime's, not its own."""
    import torch

    tiny = torch.nn.Linear(2, 2)
    x = torch.ones(1, 2)
    tiny(x).sum().backward()
    with torch.no_grad():
        try:
            _count_flops(tiny, x)
        except FlopCountError:  # only a warm-up: a failure here is reported at the point itself
            pass
    try:
        _peak_flops("", "float32")
    except Exception:  # the catalog lookup of an empty name may refuse it; loading is the point
        pass


def _measure_idle(device: str, seconds: float, degraded: list[str]) -> float:
    try:
        return _idle_power(device, seconds)
    except Exception as exc:  # the reason is reported in the warning; the sweep goes on
        degraded.append(f"effplan.measure: idle power on {device} could not be measured "
                        f"({type(exc).__name__}: {exc}); idle_power_w is NaN -- pass idle_power_w= "
                        "to give it")
        return math.nan


def _memory_baseline(dev: str, row: dict[str, Any], isolated: bool) -> tuple[float, float]:
    """Start of a point's memory reading: ``(resident set MiB, CUDA bytes allocated)`` now (NaN
    where not used), the peak reset, and ``peak_memory_source`` set on ``row``.

    CUDA: the peak allocated is reset and what is allocated now is the baseline. CPU (Linux):
    the peak resident set (``VmHWM``) is reset through ``/proc/self/clear_refs`` and the resident
    set now is the baseline. Elsewhere the process's lifetime peak, labelled so."""
    import torch

    if dev.startswith("cuda"):
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        row["peak_memory_source"] = "cuda-max-allocated"
        return math.nan, float(torch.cuda.memory_allocated(dev))
    if _reset_peak_rss():
        # the peak resident set since here, minus the resident set here: the point's own
        # footprint (the model, its inputs, activations; plus FLOP counting's tracing)
        row["peak_memory_source"] = ("worker-peak-rss-minus-baseline" if isolated
                                     else "process-peak-rss-minus-baseline")
        return _rss_mib("VmRSS"), math.nan
    row["peak_memory_source"] = "process-peak-rss-lifetime"
    return math.nan, math.nan


def _peak_memory_mib(dev: str, baseline_mib: float, cuda_base: float) -> float:
    """The point's peak memory above its baseline (:func:`_memory_baseline`), MiB."""
    if dev.startswith("cuda"):
        import torch

        return max(0.0, torch.cuda.max_memory_allocated(dev) - cuda_base) / 2**20
    if not math.isnan(baseline_mib):
        return max(0.0, _rss_mib("VmHWM") - baseline_mib)
    return _peak_rss_mb()


def _measure_point(cand: Candidate, bs: int, mode: str, dev: str, row: dict[str, Any], *,
                   policy: TimingPolicy, clock: Callable[[], float], energy: bool,
                   energy_window_s: float, meter_factory: Callable[[str], Any], optimizer: Any,
                   lr: float, degraded: list[str], report: Callable[[Any], Any] | None = None,
                   isolated: bool = False,
                   known_hashes: Mapping[str, str] | None = None,
                   prior: Mapping[SampleKey, Timing] | None = None,
                   known_flops: Mapping[str, Any] | None = None,
                   auto_threads: bool = False) -> dict[SampleKey, Timing]:
    """Measure one point, filling ``row`` in place; returns its raw timing by samples key;
    raises on failure. ``known_flops``: the FLOP columns of this point's earlier pass (not
    counted again). ``auto_threads``: the thread count was not given, so it is capped by the
    point's work (:func:`effplan.threads.threads_for_work`) and restored after."""
    import torch

    is_cuda = dev.startswith("cuda")
    sync = _synchronizer(dev)
    baseline_mib, cuda_base = _memory_baseline(dev, row, isolated)

    model = cand.build_model(dev)
    modes = [(m, m.training) for m in model.modules()]
    sweep_threads = torch.get_num_threads()
    try:
        inputs = cand.make_inputs(bs, dev)
        params, param_bytes = _param_stats(model)
        row.update(params=params, param_bytes=float(param_bytes), dtype=_dtype_label(cand, model))
        in_bytes = _tensor_bytes(inputs)

        # ---- FLOPs (forward, whole batch -> per item), counted in a point's first pass only
        model.eval()
        if known_flops is not None:
            row.update(known_flops)
        else:
            try:
                with torch.no_grad():
                    fc = _count_flops(model, inputs)
                coverage = float(fc.coverage)
                # nothing counted and operators missed: the FLOPs are unknown, not zero
                fpi = math.nan if (fc.total == 0 and coverage < 1.0) else float(fc.total) / bs
                row.update(flops_per_item=fpi, flops_engine=str(fc.engine), flops_coverage=coverage,
                           operator_calls=int(getattr(fc, "operator_calls", 0)) or math.nan)
            except FlopCountError as exc:
                degraded.append(f"effplan.measure: FLOPs of {cand.name!r} could not be counted ({exc}); "
                                "flops_per_item and utilization are NaN")

        if auto_threads and not is_cuda:  # small work does not pay for threads (effplan.threads)
            from .threads import threads_for_work

            work = row["flops_per_item"] * bs * (3.0 if mode == "training" else 1.0)
            torch.set_num_threads(threads_for_work(sweep_threads, work))
            row["threads"] = torch.get_num_threads()

        # ---- the workload of one call
        if mode == "inference":
            model.eval()
            ctx = torch.inference_mode
            with ctx():
                out_bytes = _tensor_bytes(call_model(model, inputs))

            def step() -> None:
                call_model(model, inputs)
        else:
            if _is_quantized_model(model) or cand.dtype in _QUANT_DTYPES:
                raise MeasurementError(
                    f"{cand.name!r} is quantized ({row['dtype']}): quantized models cannot be "
                    "trained; measure its float baseline in training mode instead")
            trainable = [p for p in model.parameters() if p.requires_grad]
            if not trainable:
                raise MeasurementError(f"{cand.name!r} has no trainable parameters")
            model.train()
            opt = _make_optimizer(optimizer, trainable, lr)
            targets = cand.make_targets(bs, dev)
            ctx = torch.enable_grad

            def step() -> None:
                opt.zero_grad(set_to_none=True)
                loss = cand.loss(call_model(model, inputs), targets)
                loss.backward()
                opt.step()

            with ctx(), torch.no_grad():
                out_bytes = _tensor_bytes(call_model(model, inputs))

        def on_round(r: int, spent: float) -> None:
            if report is not None:
                report(spent)

        with ctx():
            # contention is judged on the CPU threads a CPU workload runs on
            t = adaptive_time(step, policy, clock=clock, synchronize=sync, load=LoadMonitor(),
                              on_round=on_round, threads=0 if is_cuda else torch.get_num_threads(),
                              prior=(prior or {}).get((cand.name, dev, mode, bs)))
            lat = t.percentile_ms([50, 90, 95, 99])
            p50 = float(lat[0])
            thr = bs / (p50 / 1e3) if p50 > 0 else math.nan
            row.update(latency_mean_ms=t.mean_ms, latency_p50_ms=p50, latency_p90_ms=float(lat[1]),
                       latency_p95_ms=float(lat[2]), latency_p99_ms=float(lat[3]),
                       latency_ci_rel=t.ci_rel, repeats=t.repeats, throughput_items_per_s=thr,
                       bytes_per_item=param_bytes / bs + (in_bytes + out_bytes) / bs,
                       rounds=t.rounds, stable=t.stable, stop_reason=t.stop_reason,
                       timing_note=t.why, background_load=t.background_load,
                       background_load_before=t.load_before)
            row["latency_round_spread_rel"] = round_spread_rel(t.times_ms, np.asarray(t.sample_rounds))
            fpi = row["flops_per_item"]
            if not math.isnan(fpi):
                achieved = fpi * (3.0 if mode == "training" else 1.0) * thr
                row["achieved_flops_per_s"] = achieved
                peak = _peak_flops(row["hardware"], row["dtype"])
                row["peak_flops_per_s"] = peak
                row["utilization"] = achieved / peak if peak > 0 else math.nan

            # ---- energy
            if not energy:
                row["energy_note"] = "energy not measured (energy=False)"
            else:
                meter = meter_factory(dev)
                # the shortest window the meter's source resolves (stand-in meters may lack one)
                meter_min_s = float(getattr(meter, "min_window_s", None) or 0.0)
                window = max(float(energy_window_s), meter_min_s)
                calls = 0
                with meter:
                    e0 = clock()
                    while True:
                        for _ in range(t.calls_per_sample):
                            step()
                        calls += t.calls_per_sample
                        if sync is not None:
                            sync()
                        if clock() - e0 >= window:
                            break
                items = calls * bs
                energy_j = float(meter.energy_j)
                duration = float(meter.duration_s)
                idle_w = row["idle_power_w"]
                above = (energy_j - idle_w * duration) if not math.isnan(idle_w) else math.nan
                row.update(energy_j=energy_j, energy_window_s=duration,
                           energy_per_item_j=energy_j / items, energy_per_batch_j=energy_j / calls,
                           # clamped at 0: noise can put a tiny workload's total under idle
                           energy_above_idle_per_item_j=max(0.0, above) / items
                           if not math.isnan(above) else math.nan,
                           avg_power_w=float(meter.avg_power_w), energy_source=str(meter.source),
                           energy_note=str(getattr(meter, "fallback_reason", "") or ""))

        row["peak_memory_mib"] = _peak_memory_mib(dev, baseline_mib, cuda_base)
        # after the memory reading: hashing is not the point's own footprint
        _reproducibility(row, cand, model, policy, known_hashes)
        return {(cand.name, dev, mode, bs): t}
    finally:
        for m, was_training in modes:
            m.training = was_training
        torch.set_num_threads(sweep_threads)
