"""One generation point: prefill (TTFT) and steady-state decode (TPOT) of a
:class:`~effplan.models.generative.GenerationCandidate` at one concurrency and prompt length,
timed with the same round loop and stop rule as inference points
(:func:`effplan.bench.timing.adaptive_time`) and read with the same probes
(:mod:`effplan.bench.probes`: memory baseline and peak, parameter bytes, dtype label, energy
window, reproducibility). The rules are described in :mod:`effplan.models.generative`.
torch is imported when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import FlopCountError, ValidationError
from ..models.generative import GenerationCandidate, cache_bytes, call_module, module_of
from ..records.samples import round_spread_rel
from . import probes
from .timing import LoadMonitor, adaptive_time

__all__ = ["measure_point", "count_generation_flops"]


def count_generation_flops(module: Any, fn: Callable[[Any], Any], x: Any) -> tuple[float, float, str, int]:
    """FLOPs of ``fn(x)`` on ``module`` (dispatch engine): ``(total or NaN, coverage, engine, operator calls)``."""
    from ..flops import count_flops

    fc = count_flops(call_module(module, fn), (x,), engine="dispatch")
    cov = float(fc.coverage)
    total = math.nan if (fc.total == 0 and cov < 1.0) else float(fc.total)
    return total, cov, str(fc.engine), int(fc.operator_calls)


def measure_point(cand: GenerationCandidate, bs: int, mode: str, dev: str, row: dict[str, Any],
                  opts: Mapping[str, Any], *, degraded: list[str],
                  report: Callable[[Any], Any] | None = None, isolated: bool = False) -> dict[Any, Any]:
    """Measure one point (its prompt length is ``row["prompt_tokens"]``), filling ``row`` in
    place; returns the prefill (TTFT) and decode (TPOT) timings by samples key. Called by
    :func:`effplan.bench.points.point_job`, in the candidate's worker process when isolated.
    ``opts`` as for :func:`effplan.bench.points.measure_point`, plus ``output_tokens`` and
    ``seed`` (of the random prompts)."""
    import torch

    policy, clock, energy = opts["policy"], opts["clock"], opts["energy"]
    energy_window_s, meter_factory = opts["energy_window_s"], opts["meter_factory"]
    known_hashes, prior, known_flops = opts.get("known_hashes"), opts.get("prior"), opts.get("known_flops")
    output_tokens, seed = opts["output_tokens"], opts["seed"]
    p, n_out = int(row["prompt_tokens"]), int(output_tokens)
    is_cuda = dev.startswith("cuda")
    sync = probes.synchronizer(dev)
    # as for inference points: the peak above the point's start (resident set, or CUDA allocated)
    baseline_mib, cuda_base = probes.memory_baseline(dev, row, isolated)

    gen = cand.build(dev)
    mod = module_of(gen)
    if mod is not None:
        row.update(_model_fact_columns(mod))
        row["dtype"] = probes.dtype_label(cand, mod)
        ctx_max = row.get("context_tokens")
        if ctx_max and p + n_out > int(ctx_max):
            raise ValidationError("prompt_tokens", f"prompt ({p}) + output ({n_out}) tokens = {p + n_out} exceed "
                                  f"the model's context of {int(ctx_max)} positions (max_position_embeddings); "
                                  "measure shorter prompts or outputs", where=f"measure({cand.name!r})")
    rng = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cand.vocab_size, (bs, p), generator=rng).to(dev)
    rewind = getattr(gen, "rewind", None)

    with torch.inference_mode():
        # ---- FLOPs: one prefill; one decode step in the middle of the response (first pass only)
        if known_flops is not None:
            row.update(known_flops)
        else:
            try:
                f_pre, cov1, eng, ops_pre = count_generation_flops(mod, gen.prefill, ids)
                ctx = torch.randint(0, cand.vocab_size, (bs, p + n_out // 2), generator=rng).to(dev)
                mid = gen.prefill(ctx)
                f_dec, cov2, _, ops_dec = count_generation_flops(mod, lambda t: gen.step(t, mid), ids[:, -1:])
                del mid
                row.update(flops_per_prompt_token=f_pre / (bs * p), flops_per_output_token=f_dec / bs,
                           operator_calls_prefill=ops_pre, operator_calls_decode=ops_dec,
                           flops_engine=eng, flops_coverage=min(cov1, cov2))
            except FlopCountError as exc:
                degraded.append(f"effplan.measure: FLOPs of {cand.name!r} could not be counted ({exc}); "
                                "flops_per_prompt_token and flops_per_output_token are NaN")

        # ---- TTFT: prefill of the whole batch
        def do_prefill() -> None:
            gen.prefill(ids)

        # one call per timed sample (min_sample_s = 0): TTFT and TPOT percentiles are those of
        # single prefills and single decode steps, not of blocks of them
        per_call = replace(policy, min_sample_s=0.0)
        # the rounds, stall and contention verdict of effplan.timing (CPU threads judged on CPU)
        threads = 0 if is_cuda else torch.get_num_threads()
        def on_round(r: int, spent: float, share: float = 0.0) -> None:
            if report is not None:  # prefill is the first half of the point, decode the second
                report(share + 0.5 * spent)

        t_pre = adaptive_time(do_prefill, per_call, clock=clock, synchronize=sync,
                                 load=LoadMonitor(), threads=threads, on_round=on_round,
                                 prior=(prior or {}).get((cand.name, dev, f"generation-prefill-p{p}", bs)))

        # ---- TPOT: steady-state decode, cycling through n_out steps from the prefilled cache
        cache0 = gen.prefill(ids)
        b0 = cache_bytes(cache0)
        state = {"cache": cache0, "i": 0, "tok": ids[:, -1:]}

        def do_step() -> None:
            if state["i"] >= n_out:
                state["cache"] = rewind(state["cache"], p) if rewind is not None else cache0
                state["i"] = 0
            logits, state["cache"] = gen.step(state["tok"], state["cache"])
            state["tok"] = logits.argmax(dim=-1, keepdim=True)
            state["i"] += 1

        do_step()
        b1 = cache_bytes(state["cache"])
        kv = (b1 - b0) / bs
        if not kv > 0:
            degraded.append(f"effplan.measure: the KV cache of {cand.name!r} did not grow by a decode "
                            "step (a preallocated cache?); kv_cache_bytes_per_token is NaN -- enter it")
            kv = math.nan
        t_dec = adaptive_time(do_step, per_call, clock=clock, synchronize=sync,
                                 load=LoadMonitor(), threads=threads,
                                 on_round=lambda r, spent: on_round(r, spent, 0.5),
                                 prior=(prior or {}).get((cand.name, dev, f"generation-decode-p{p}", bs)))
        reasons = (t_pre.stop_reason, t_dec.stop_reason)
        row.update(stable=t_pre.stable and t_dec.stable,
                   stop_reason=next((r for r in ("unstable", "time-budget") if r in reasons), "ci-met"),
                   rounds=min(t_pre.rounds, t_dec.rounds), background_load=t_dec.background_load,
                   background_load_before=t_pre.load_before,
                   timing_note="; ".join(f"{n}: {t.why}" for n, t in (("TTFT", t_pre), ("TPOT", t_dec))
                                         if t.why))

        ttft = t_pre.percentile_ms([50, 95])
        tpot = t_dec.percentile_ms([50, 95])
        dec_ms = np.asarray(t_dec.times_ms, dtype=float)
        row.update(ttft_p50_ms=float(ttft[0]), ttft_p95_ms=float(ttft[1]), tpot_p50_ms=float(tpot[0]),
                   tpot_p95_ms=float(tpot[1]), tpot_mean_ms=float(dec_ms.mean()) if dec_ms.size else math.nan,
                   kv_cache_bytes_per_token=float(kv),
                   prefill_tokens_per_s=bs * p / (float(ttft[0]) / 1e3) if ttft[0] > 0 else math.nan,
                   decode_tokens_per_s=bs / (float(tpot[0]) / 1e3) if tpot[0] > 0 else math.nan,
                   latency_ci_rel=float(np.nanmax([t_pre.ci_rel, t_dec.ci_rel]))
                   if not (math.isnan(t_pre.ci_rel) and math.isnan(t_dec.ci_rel)) else math.nan,
                   repeats=t_dec.repeats)
        spreads = [round_spread_rel(t.times_ms, np.asarray(t.sample_rounds)) for t in (t_pre, t_dec)]
        row["latency_round_spread_rel"] = (math.nan if all(math.isnan(v) for v in spreads)
                                           else float(np.nanmax(spreads)))

        # ---- energy: prefill, then decode, each for at least the energy window
        if energy:
            pre, calls_pre = probes.metered(do_prefill, t_pre.calls_per_sample, dev, energy_window_s,
                                            meter_factory, clock, sync)
            dec, calls_dec = probes.metered(do_step, t_dec.calls_per_sample, dev, energy_window_s,
                                            meter_factory, clock, sync)
            e_pre, d_pre, src = float(pre.energy_j), float(pre.duration_s), str(pre.source)
            e_dec, d_dec, src2 = float(dec.energy_j), float(dec.duration_s), str(dec.source)
            row.update(energy_per_prompt_token_j=e_pre / (calls_pre * bs * p),
                       energy_per_output_token_j=e_dec / (calls_dec * bs),
                       energy_j=e_pre + e_dec, energy_window_s=d_pre + d_dec,
                       avg_power_w=(e_pre + e_dec) / (d_pre + d_dec) if d_pre + d_dec > 0 else math.nan,
                       energy_source=src if src == src2 else f"{src}+{src2}")

    row["peak_memory_mib"] = probes.peak_memory_mib(dev, baseline_mib, cuda_base)
    # after the memory reading: hashing is not the point's own footprint
    probes.fill_reproducibility(row, cand, mod, policy, known_hashes)
    return {(cand.name, dev, f"generation-prefill-p{p}", bs): t_pre,
            (cand.name, dev, f"generation-decode-p{p}", bs): t_dec}


def _model_fact_columns(mod: Any) -> dict[str, Any]:
    """``params`` / ``param_bytes`` / ``active_params`` (each tensor once, MoE top-k) and the
    context / window columns of a module (:mod:`effplan.models.architecture`; its ``config`` when it has
    one, as transformers models do)."""
    from ..models.architecture import context_facts, count_parameters

    cfg = getattr(mod, "config", None)
    counts = count_parameters(mod, cfg)
    ctx = context_facts(cfg)
    return {"params": counts.params, "param_bytes": float(counts.param_bytes),
            "active_params": counts.active_params, "context_tokens": ctx.context_tokens,
            "kv_window_tokens": ctx.kv_window_tokens, "kv_window_layer_share": ctx.kv_window_layer_share,
            "hidden_size": ctx.hidden_size, "num_layers": ctx.num_layers}


