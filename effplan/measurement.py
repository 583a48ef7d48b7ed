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
   sweeps, :mod:`effplan.bench.threads`: cores free throughout a short window, then each point
   capped by its work so that small models are timed on one thread).
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

from collections.abc import Sequence
from typing import Any

from .bench import configs
from .bench.configs import (GENERATION_OUTPUT_TOKENS, GENERATION_PROMPT_TOKENS, ISOLATE_DEFAULT,  # noqa: F401
                            PASSES_DEFAULT, RETRIES_DEFAULT, EnergyConfig, FleetConfig, GenerationConfig,
                            SweepConfig)
from .bench.points import (MAX_LIVE_WORKERS, POINT_TIMEOUT_BASE_S, POINT_TIMEOUT_FACTOR,  # noqa: F401
                           default_point_timeout_s)
from .bench.sweep import default_threads
from .bench.timing import adaptive_time
from .models.candidates import Candidate
from .records.measurements import Measurements
from .records.samples import Timing, TimingPolicy, median_ci
from .records.schema import NO_ENERGY_SOURCE  # noqa: F401

__all__ = ["measure", "measure_generation", "Measurements", "Timing", "TimingPolicy", "EnergyConfig",
           "SweepConfig", "GenerationConfig", "FleetConfig", "adaptive_time", "median_ci", "default_threads",
           "default_point_timeout_s"]


def measure(candidates: Candidate | Sequence[Candidate], batch_sizes: Sequence[int] = (1, 8, 32),
            mode: str = "inference", device: str = "auto", *,
            timing: TimingPolicy | None = None, energy: bool | EnergyConfig = True,
            sweep: SweepConfig | None = None, generation: GenerationConfig | None = None,
            fleet: Any = None, _workers: Any = None, **shortcuts: Any) -> Measurements:
    """Measure every candidate at every batch size on ``device``; see the module docstring.

    ``mode="generation"`` measures :class:`effplan.generation.GenerationCandidate` s at every
    concurrency (``batch_sizes``) x ``prompt_tokens`` with ``output_tokens`` per response:
    prefill and decode with a KV cache, TTFT/TPOT percentiles (see :mod:`effplan.generation`).

    The settings come as small frozen configs that check themselves (:mod:`effplan.bench.configs`):
    ``timing`` (:class:`TimingPolicy`), ``energy`` (:class:`EnergyConfig`, or ``True`` / ``False``
    as before), ``sweep`` (:class:`SweepConfig`), ``generation`` (:class:`GenerationConfig`) and
    ``fleet`` (:class:`FleetConfig`, or an :class:`effplan.fleet.FleetOptions` as before). Every
    keyword below that is not one of them is a shortcut for one of their fields
    (:data:`effplan.bench.configs.SHORTCUTS`); a shortcut and its field both given, and
    different, is a :class:`~effplan.errors.ValidationError` naming the keyword.

    Parameters
    ----------
    candidates: one :class:`Candidate` or a sequence of them (unique names).
    batch_sizes: positive batch sizes (items per batch).
    mode: ``"inference"`` (forward under ``inference_mode``) or ``"training"`` (forward +
        backward + optimizer step per batch).
    device: ``"auto"`` (first CUDA device, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        A candidate with its own ``device`` is measured there.
    threads: torch CPU threads during the sweep (default :func:`default_threads`: torch's
        setting capped at the cores free throughout a short window, then each point capped by
        its work, :mod:`effplan.bench.threads`); restored after. Recorded on each row.
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
        hardware, mode, dtype and batch size; see :mod:`effplan.bench.resume`); their stored rows
        are returned with the rest. ``True`` / ``"unfinished"``: error rows, provisional and
        missing points are measured again, finished-but-unstable ones are kept; ``"unstable"``:
        those are measured again too.
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
        cluster, one task per candidate x target, every pass streamed into ``results_path`` (see
        :mod:`effplan.fleet`; ``pip install 'effplan[ray]'``); ``executor="slurm"`` as a Slurm
        job array, ``fleet=SlurmOptions(...)`` (:mod:`effplan.bench.slurm`; ``effplan[slurm]``).
        The default ``"local"`` needs neither.
    """
    settings = configs.build(timing, energy, sweep, generation, fleet, **shortcuts)
    if settings.fleet.remote:
        from .bench.executors import measure_with_executor

        return measure_with_executor(candidates, batch_sizes, mode, device, settings)
    from .bench import sweep as sweep_mod

    return sweep_mod.run(candidates, batch_sizes, mode, device, settings, workers=_workers)


def measure_generation(candidates: Any, batch_sizes: Sequence[int] = (1, 4, 16),
                       prompt_tokens: Sequence[int] | int = (128, 512), output_tokens: int = 64,
                       device: str = "auto", *, seed: int = 0, **settings: Any) -> Measurements:
    """``effplan.measure(candidates, mode="generation", ...)``: every
    :class:`~effplan.models.generative.GenerationCandidate` x concurrency (``batch_sizes``) x
    prompt length, under the same rules as inference points (one worker process per candidate,
    retries of not-stable points, ``resume``, raw samples saved). ``seed`` seeds the random
    prompts; ``settings`` are :func:`measure`'s (``timing=``, ``energy=``, ``sweep=`` and their
    shortcuts ``threads=``, ``results_path=``...)."""
    return measure(candidates, batch_sizes=batch_sizes, mode="generation", device=device,
                   generation=GenerationConfig(prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                                               prompt_seed=seed), **settings)
