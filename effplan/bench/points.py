"""One point of a sweep: an inference or training point measured (:func:`measure_point`), the job
a worker runs for a point of either kind (:func:`point_job`), the worker pool a sweep measures
in, a point's empty row, its passes merged (:func:`next_pass`), provisional records, resume and
the samples file's records. Generation points are :mod:`effplan.bench.generation_points`; what
both kinds read around the timing is :mod:`effplan.bench.probes`. torch is imported when called.
"""

from __future__ import annotations

import gc
import math
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EffplanWarning, FlopCountError, MeasurementError, ValidationError
from ..models.candidates import QUANT_DTYPES, Candidate, call_model
from ..records.measurements import SampleKey
from ..records.samples import Timing, TimingPolicy, round_spread_rel
from ..records.schema import MEASUREMENT_COLUMNS, NO_ENERGY_SOURCE, SCHEMA_VERSION
from ..units import TRAINING_FLOPS_PER_FORWARD
from . import probes
from .timing import LoadMonitor, adaptive_time

__all__ = ["empty_row", "point_label", "sample_phase", "make_optimizer", "measure_point", "point_job", "worker_init", "worker_pool", "default_point_timeout_s", "samples_record", "next_pass", "provisional", "flops_of", "resume", "ENERGY_COLUMNS", "FLOPS_COLUMNS",
           "MAX_LIVE_WORKERS", "POINT_TIMEOUT_BASE_S", "POINT_TIMEOUT_FACTOR"]

#: Energy columns: measured in the first pass only, and carried to the point's final row.
ENERGY_COLUMNS = ("energy_j", "energy_window_s", "energy_per_item_j", "energy_per_batch_j",
                   "energy_above_idle_per_item_j", "avg_power_w", "energy_source", "energy_note",
                   "energy_per_prompt_token_j", "energy_per_output_token_j")
#: FLOP columns: counted in the first pass of a point only, and carried to its later passes.
FLOPS_COLUMNS = ("flops_per_item", "flops_engine", "flops_coverage", "operator_calls",
                  "flops_per_prompt_token", "flops_per_output_token", "operator_calls_prefill",
                  "operator_calls_decode")
#: Candidates whose workers are kept alive together (see :func:`measure`, "workers"): a sweep
#: measures its candidates in groups of this many, each candidate's worker alive for its group.
MAX_LIVE_WORKERS = 4
#: ``point_timeout_s`` default: ``POINT_TIMEOUT_BASE_S + POINT_TIMEOUT_FACTOR x phases x
#: (time_budget_s + energy_window_s)`` (see :func:`default_point_timeout_s`).
POINT_TIMEOUT_BASE_S = 120.0
POINT_TIMEOUT_FACTOR = 10.0


def empty_row(candidate: Any, mode: str, batch_size: int, device: str, hw: Mapping[str, Any],
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


def point_label(row: Mapping[str, Any]) -> str:
    """``"name bs=8"``, or ``"name c=4 prompt=128"`` for a generation point (warnings)."""
    if row.get("mode") == "generation":
        return f"{row['candidate']} c={row['batch_size']} prompt={row['prompt_tokens']}"
    return f"{row['candidate']} bs={row['batch_size']}"


def sample_phase(key: SampleKey) -> str:
    """``"prefill"`` / ``"decode"`` for a generation point's samples key, else ``""``."""
    mode = key[2]
    return mode.split("-")[1] if mode.startswith("generation-") else ""


def make_optimizer(spec: Any, params: list[Any], lr: float) -> Any:
    import torch

    if callable(spec) and not isinstance(spec, str):
        return spec(params)
    if spec == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if spec == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValidationError("optimizer", f"{spec!r} is not 'sgd', 'adam' or a callable(params)")


def measure_point(cand: Candidate, bs: int, mode: str, dev: str, row: dict[str, Any],
                  opts: Mapping[str, Any], *, degraded: list[str],
                  report: Callable[[Any], Any] | None = None, isolated: bool = False) -> dict[SampleKey, Timing]:
    """Measure one point, filling ``row`` in place; returns its raw timing by samples key;
    raises on failure. ``opts`` (the sweep's, see :meth:`effplan.bench.sweep._Sweep.run_point`):
    ``policy`` (:class:`TimingPolicy`), ``clock``, ``energy``, ``energy_window_s``,
    ``meter_factory``, ``optimizer``, ``lr``, and for a later pass ``known_hashes``, ``prior``
    (its timings so far) and ``known_flops`` (the FLOP columns of its earlier pass, not counted
    again)."""
    import torch

    policy: TimingPolicy = opts["policy"]
    clock, energy, energy_window_s = opts["clock"], opts["energy"], opts["energy_window_s"]
    meter_factory, optimizer, lr = opts["meter_factory"], opts.get("optimizer", "sgd"), opts.get("lr", 1e-3)
    known_hashes, prior, known_flops = opts.get("known_hashes"), opts.get("prior"), opts.get("known_flops")
    is_cuda = dev.startswith("cuda")
    sync = probes.synchronizer(dev)
    baseline_mib, cuda_base = probes.memory_baseline(dev, row, isolated)

    model = cand.build_model(dev)
    modes = [(m, m.training) for m in model.modules()]
    sweep_threads = torch.get_num_threads()
    try:
        inputs = cand.make_inputs(bs, dev)
        params, param_bytes = probes.param_stats(model)
        row.update(params=params, param_bytes=float(param_bytes), dtype=probes.dtype_label(cand, model))
        in_bytes = probes.tensor_bytes(inputs)

        # ---- FLOPs (forward, whole batch -> per item), counted in a point's first pass only
        model.eval()
        if known_flops is not None:
            row.update(known_flops)
        else:
            try:
                with torch.no_grad():
                    fc = probes.count_model_flops(model, inputs)
                coverage = float(fc.coverage)
                # nothing counted and operators missed: the FLOPs are unknown, not zero
                fpi = math.nan if (fc.total == 0 and coverage < 1.0) else float(fc.total) / bs
                row.update(flops_per_item=fpi, flops_engine=str(fc.engine), flops_coverage=coverage,
                           operator_calls=int(getattr(fc, "operator_calls", 0)) or math.nan)
            except FlopCountError as exc:
                degraded.append(f"effplan.measure: FLOPs of {cand.name!r} could not be counted ({exc}); "
                                "flops_per_item and utilization are NaN")
        if opts.get("auto_threads") and not is_cuda:  # small work does not pay for threads
            from .threads import threads_for_work

            work = row["flops_per_item"] * bs * (3.0 if mode == "training" else 1.0)
            torch.set_num_threads(threads_for_work(sweep_threads, work))
            row["threads"] = torch.get_num_threads()

        # ---- the workload of one call
        if mode == "inference":
            model.eval()
            ctx = torch.inference_mode
            with ctx():
                out_bytes = probes.tensor_bytes(call_model(model, inputs))

            def step() -> None:
                call_model(model, inputs)
        else:
            if probes.is_quantized_model(model) or cand.dtype in QUANT_DTYPES:
                raise MeasurementError(
                    f"{cand.name!r} is quantized ({row['dtype']}): quantized models cannot be "
                    "trained; measure its float baseline in training mode instead")
            trainable = [p for p in model.parameters() if p.requires_grad]
            if not trainable:
                raise MeasurementError(f"{cand.name!r} has no trainable parameters")
            model.train()
            opt = make_optimizer(optimizer, trainable, lr)
            targets = cand.make_targets(bs, dev)
            ctx = torch.enable_grad

            def step() -> None:
                opt.zero_grad(set_to_none=True)
                loss = cand.loss(call_model(model, inputs), targets)
                loss.backward()
                opt.step()

            with ctx(), torch.no_grad():
                out_bytes = probes.tensor_bytes(call_model(model, inputs))

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
                achieved = fpi * (TRAINING_FLOPS_PER_FORWARD if mode == "training" else 1.0) * thr
                row["achieved_flops_per_s"] = achieved
                peak = probes.peak_flops(row["hardware"], row["dtype"])
                row["peak_flops_per_s"] = peak
                row["utilization"] = achieved / peak if peak > 0 else math.nan

            # ---- energy
            if not energy:
                row["energy_note"] = "energy not measured (energy=False)"
            else:
                meter, calls = probes.metered(step, t.calls_per_sample, dev, energy_window_s, meter_factory,
                                              clock, sync)
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

        row["peak_memory_mib"] = probes.peak_memory_mib(dev, baseline_mib, cuda_base)
        # after the memory reading: hashing is not the point's own footprint
        probes.fill_reproducibility(row, cand, model, policy, known_hashes)
        return {(cand.name, dev, mode, bs): t}
    finally:
        for m, was_training in modes:
            m.training = was_training
        torch.set_num_threads(sweep_threads)


def point_job(cand: Any, bs: int, mode: str, dev: str, row: dict[str, Any],
               opts: Mapping[str, Any], isolated: bool, *, report: Callable[[Any], Any]) -> dict[str, Any]:
    """Measure one point (in the candidate's worker process when ``isolated``); returns the
    filled row, its raw :class:`Timing` s by samples key (two for a generation point: prefill and
    decode), degradation messages and (isolated) the warnings raised."""
    import torch

    degraded: list[str] = []
    caught: list[tuple[type, str]] = []
    if mode == "generation":
        from .generation_points import measure_point as measure
    else:
        measure = measure_point
    if isolated:
        # a worker measures one point after another: what the last point left behind is
        # released first, so this point's memory baseline is its own (see probes.release_memory)
        torch.set_num_threads(int(opts["threads"]))
        probes.release_memory(dev)
        try:
            with warnings.catch_warnings(record=True) as got:
                warnings.simplefilter("always")
                timings = measure(cand, bs, mode, dev, row, opts, degraded=degraded, report=report,
                                  isolated=True)
        finally:
            probes.release_memory(dev)  # an idle worker holds no model (CUDA: no cached blocks either)
        for w in got:
            caught.append((w.category, str(w.message)))
    else:
        timings = measure(cand, bs, mode, dev, row, opts, degraded=degraded, report=report, isolated=False)
    return {"row": row, "timings": timings, "degraded": degraded, "warnings": list(dict.fromkeys(caught))}


def worker_init(threads: int) -> None:
    """Runs once in each new worker process, BEFORE any point's memory baseline: imports what
    measuring imports lazily, sets the thread count and pays the runtime's one-time costs
    (:func:`probes.warm_runtime`), so that a point's peak memory is its own (model, inputs,
    activations), not fvcore's or pandas'."""
    import torch

    # imported now, not at the first point: their import is the runtime's, not the point's memory
    from .. import flops  # noqa: F401
    from ..devices import energy, hardware  # noqa: F401
    from ..refdata import catalog  # noqa: F401
    from . import reproducibility  # noqa: F401

    torch.set_num_threads(int(threads))
    probes.warm_runtime()
    # what exists now (torch, effplan, the candidate) lives as long as the worker: out of the
    # garbage collector's sight, so the collection before each point (probes.release_memory) scans
    # only what points created -- milliseconds instead of a quarter of a second
    gc.collect()
    gc.freeze()


def worker_pool(threads: int, *, reuse: bool = True) -> Any:
    """The :class:`effplan.worker.WorkerPool` a sweep measures in: one worker per candidate, at
    most :data:`MAX_LIVE_WORKERS` alive; ``reuse=False`` is a fresh worker per point per pass
    (the behaviour before worker reuse, kept for ``benchmarks/``)."""
    from .worker import WorkerPool

    return WorkerPool(MAX_LIVE_WORKERS, init=worker_init, init_args=(int(threads),), reuse=reuse)


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


def samples_record(row: Mapping[str, Any], hw: Mapping[str, Any], t: Timing,
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


def next_pass(first: dict[str, Any], ts: dict[SampleKey, Timing], new: dict[str, Any],
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
    for c in ENERGY_COLUMNS:
        new[c] = first[c]
    mem = [v for v in (first.get("peak_memory_mib"), new.get("peak_memory_mib"))
           if isinstance(v, float | int) and not math.isnan(v)]
    if mem:
        new["peak_memory_mib"] = float(max(mem))
    return new, ts2


def provisional(row: Mapping[str, Any], why: str) -> dict[str, Any]:
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


def flops_of(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The FLOP columns of a point's earlier pass (counted once per point), or None when that
    pass did not count them."""
    if row.get("status") != "ok" or not row.get("flops_engine"):
        return None
    return {c: row[c] for c in FLOPS_COLUMNS if c in row}


def resume(path: Path | None, points: list[tuple[Any, str, int, int | None]], mode: str,
            hardware: Mapping[str, Mapping[str, Any]],
            how: str = "unfinished") -> tuple[list[tuple[Any, str, int, int | None]], list[dict[str, Any]]]:
    """Points still to measure, and the stored rows of those already finished in ``path``
    (``how``: the resume mode, :mod:`effplan.bench.resume`)."""
    from ..records import store
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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
