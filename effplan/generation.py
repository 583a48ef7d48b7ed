"""Measure generative (autoregressive) models: prefill and decode with a KV cache.

``effplan.measure(candidates, mode="generation", prompt_tokens=(128, 512), output_tokens=64,
batch_sizes=(1, 4, 16))`` (or :func:`measure_generation`) gives one row per candidate x
hardware x concurrency (``batch_size`` = concurrent sequences) x prompt length, in the tidy
frame of :mod:`effplan.schema` with ``mode="generation"``.

The generation protocol
-----------------------
A model that can be measured here has two methods::

    cache = model.prefill(input_ids)           # input_ids: int64 (batch, prompt_tokens)
    logits, cache = model.step(token, cache)   # token: int64 (batch, 1); logits: (batch, vocab)

``prefill`` runs the whole prompt, up to and including the logits of the last position (the
first token is chosen from them), and returns an opaque cache. ``step`` decodes one token per
sequence with the cache. ``step`` must not change the cache it is given in place, OR the model
provides ``rewind(cache, tokens) -> cache`` that cuts a cache back to its first ``tokens``
positions (decode is timed in cycles of ``output_tokens`` steps from the same prefilled cache).
A protocol object that is not an ``nn.Module`` exposes its module as ``.module`` (for parameter
bytes, FLOPs, device and eval mode); without one those figures are NaN.

Adapters: :class:`HFCausalLM` wraps any Hugging Face ``transformers`` causal LM (built from a
config offline with :func:`hf_candidate`, or loaded from a local path); the built-in decoders of
:mod:`effplan.decoders` implement the protocol themselves.

How one point is measured
-------------------------
Prompts are seeded random token ids (the cost of a step does not depend on token values).

* **TTFT** (time to first token): one ``prefill`` of the whole batch, timed with
  :func:`effplan.measurement.adaptive_time` and the same :class:`TimingPolicy` as every other
  measurement (warm-up, adaptive sampling until the median's ~95% CI is within the target or the
  budget is spent). ``ttft_p50_ms`` / ``ttft_p95_ms``.
* **TPOT** (time per output token, per sequence): one decode ``step`` of the whole batch (each
  sequence gets one token), timed the same way, in steady state: after warm-up, with the KV
  cache in use, cycling through ``output_tokens`` steps from the prefilled cache (so the context
  runs from ``prompt_tokens + 1`` to ``prompt_tokens + output_tokens``, as in a real response).
  Unlike fixed-shape timing, every timed sample is ONE call (``min_sample_s`` is set to 0 for
  both phases), so ``ttft_p95_ms`` / ``tpot_p95_ms`` are tails of single prefills and single
  decode steps, not of blocks of calls (``time.perf_counter`` resolves well below the
  ~0.1 ms of the shortest step). Rewinding the cache every
  ``output_tokens`` steps is inside the timed loop; it costs nothing for caches that ``step``
  does not modify, and one cache truncation (no copy) for the HF adapter.
* ``prefill_tokens_per_s = batch * prompt_tokens / ttft_p50_s``;
  ``decode_tokens_per_s = batch / tpot_p50_s``.
* ``kv_cache_bytes_per_token``: bytes of tensors in the cache after one step minus after the
  prefill, divided by the batch (measured on the cache itself, so GQA, dtype and layout count).
* ``flops_per_prompt_token``: :func:`effplan.flops.count_flops` (dispatch engine) of one
  prefill divided by ``batch * prompt_tokens``. ``flops_per_output_token``: of one decode step
  whose cache holds ``prompt_tokens + output_tokens // 2`` tokens (attention grows linearly with
  context, so this is the middle of the response), divided by ``batch``.
  ``operator_calls_prefill`` / ``operator_calls_decode``: the same counts'
  :attr:`~effplan.flops.FlopCount.operator_calls` (one prefill of the batch, one decode step):
  the launch floor of projections to other hardware.
* **Energy**: prefill, then decode, run again inside an :class:`effplan.energy.EnergyMeter` for
  at least ``energy_window_s`` each; ``energy_per_prompt_token_j`` = prefill energy / prompt
  tokens processed, ``energy_per_output_token_j`` = decode energy / tokens generated (total
  energy, idle included, as ``energy_per_item_j``). ``energy_source`` says how it was got.
* **Peak memory** (``peak_memory_mib``): CUDA max allocated, else the peak resident set above
  the point's start, as for inference points (``peak_memory_source``).
* **Same rules as inference** (:func:`effplan.measure`): the points of a candidate in its one
  worker process by default, kept alive across concurrencies, prompt lengths, passes and retries
  (a crash or a time-out past ``point_timeout_s`` is an error row), each timing pass saved at
  once (``provisional`` until the last), FLOPs counted in a point's first pass only, not-stable
  points retried after the rest of the sweep,
  ``resume=True`` skips finished points (:func:`effplan.store.point_key` includes
  ``prompt_tokens``), raw prefill and decode samples saved beside the results
  (``phase`` = ``prefill`` / ``decode`` in the samples file), reproducibility columns filled.

Generation rows leave the fixed-shape columns (``latency_*_ms``, ``throughput_items_per_s``,
``flops_per_item``, ``energy_per_item_j``) empty: a generation row has no single "item".
``latency_ci_rel`` holds the larger of the TTFT and TPOT relative CI half-widths and
``repeats`` the number of timed decode steps.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import measurement as _m
from .candidates import _QUANT_DTYPES
from .errors import EffplanWarning, FlopCountError, ValidationError

__all__ = ["GenerativeModel", "GenerationCandidate", "HFCausalLM", "hf_candidate", "as_generator",
           "measure_generation", "cache_bytes", "notebook_measurements", "SUMMARY_COLUMNS"]

_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")

#: the generation columns people look at first (a compact view of a generation frame)
SUMMARY_COLUMNS = ["candidate", "tags", "perplexity", "batch_size", "prompt_tokens", "ttft_p50_ms",
                   "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms", "decode_tokens_per_s",
                   "kv_cache_bytes_per_token", "flops_per_output_token", "energy_per_output_token_j",
                   "energy_source", "provenance", "status"]


@runtime_checkable
class GenerativeModel(Protocol):
    """The generation protocol (see the module docstring)."""

    def prefill(self, input_ids: Any) -> Any: ...

    def step(self, token: Any, cache: Any) -> tuple[Any, Any]: ...


# ---------------------------------------------------------------------------------- adapters
class HFCausalLM:
    """A Hugging Face ``transformers`` causal LM as a :class:`GenerativeModel`.

    ``prefill`` keeps only the last position's logits (``logits_to_keep=1`` where the model
    supports it); the cache is ``(transformers cache, last logits)``; ``rewind`` truncates the
    transformers cache (``DynamicCache.crop``), which ``step`` extends in place.
    """

    def __init__(self, model: Any) -> None:
        self.module = model
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep = "logits_to_keep" in params

    @staticmethod
    def _cache_of(out: Any) -> Any:
        cache = getattr(out, "cache", None)
        return cache if cache is not None else out.past_key_values

    def prefill(self, input_ids: Any) -> Any:
        kw = {"logits_to_keep": 1} if self._keep else {}
        out = self.module(input_ids=input_ids, use_cache=True, **kw)
        cache = self._cache_of(out)
        # sliding-window layers (Mistral-7B-v0.1, Phi-3, Gemma-2/3) drop tokens past the window,
        # so they cannot be cut back (``rewind``) unless they keep them until the next crop
        # (transformers' past recording); the attention of a step still sees the window only
        if any(getattr(layer, "is_sliding", False) for layer in getattr(cache, "layers", ())) \
                and hasattr(cache, "activate_past_recording"):
            cache.activate_past_recording()
        return (cache, out.logits[:, -1])

    def step(self, token: Any, cache: Any) -> tuple[Any, Any]:
        out = self.module(input_ids=token.reshape(-1, 1), use_cache=True, **{self._cache_kw: cache[0]})
        logits = out.logits[:, -1]
        return logits, (self._cache_of(out), logits)

    def rewind(self, cache: Any, tokens: int) -> Any:
        kv = cache[0]
        extra = int(kv.get_seq_length()) - int(tokens)
        if extra > 0:
            kv.crop(-extra)
        return cache


def _is_hf_model(obj: Any) -> bool:
    return any(c.__module__.startswith("transformers.") and c.__name__ == "PreTrainedModel"
               for c in type(obj).__mro__)


def as_generator(obj: Any) -> Any:
    """``obj`` itself when it follows the protocol, an :class:`HFCausalLM` for a transformers
    model; otherwise :class:`ValidationError` saying what is missing."""
    if callable(getattr(obj, "prefill", None)) and callable(getattr(obj, "step", None)):
        return obj
    if _is_hf_model(obj):
        return HFCausalLM(obj)
    raise ValidationError("model_fn", f"returned a {type(obj).__name__}, which has no prefill(input_ids) "
                          "and step(token, cache) methods and is not a transformers causal LM; wrap it "
                          "(see effplan.generation's module docstring)")


def _module_of(gen: Any) -> Any:
    import torch

    if isinstance(gen, torch.nn.Module):
        return gen
    mod = getattr(gen, "module", None)
    return mod if isinstance(mod, torch.nn.Module) else None


@dataclass(frozen=True)
class GenerationCandidate:
    """One generative model to measure.

    name: unique name (the ``candidate`` column). model_fn: ``() -> model`` following the
    protocol, or a transformers causal LM; builds a fresh model per point. vocab_size: prompts
    are drawn from ``[0, vocab_size)``. perplexity: held-out perplexity (LOWER is better), or
    None. quality: a higher-is-better score, or None. dtype / device / tags: as
    :class:`effplan.Candidate` (a float dtype casts the module; ``"qint8"`` is a label). seed:
    the seed the weights came from, when known (the ``seed`` column), else None.
    """

    name: str
    model_fn: Callable[[], Any]
    vocab_size: int
    tags: tuple[str, ...] = field(default=(), kw_only=True)
    perplexity: float | None = field(default=None, kw_only=True)
    quality: float | None = field(default=None, kw_only=True)
    dtype: str | None = field(default=None, kw_only=True)
    device: str | None = field(default=None, kw_only=True)
    seed: int | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        where = f"GenerationCandidate({self.name!r})"
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValidationError("name", f"must be a non-empty string, got {self.name!r}", where=where)
        if not callable(self.model_fn):
            raise ValidationError("model_fn", "must be callable", where=where)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValidationError("seed", f"must be an integer or None, got {self.seed!r}", where=where)
        if not isinstance(self.vocab_size, int) or isinstance(self.vocab_size, bool) or self.vocab_size < 1:
            raise ValidationError("vocab_size", f"must be a positive integer, got {self.vocab_size!r}",
                                  where=where)
        tags = (self.tags,) if isinstance(self.tags, str) else tuple(self.tags)
        if not all(isinstance(t, str) and t and "," not in t for t in tags):
            raise ValidationError("tags", f"must be non-empty strings without ',', got {self.tags!r}",
                                  where=where)
        object.__setattr__(self, "tags", tags)
        for fname in ("perplexity", "quality"):
            v = getattr(self, fname)
            if v is not None:
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    raise ValidationError(fname, f"must be a number or None, got {v!r}", where=where) from None
                object.__setattr__(self, fname, None if v != v else v)
        if self.perplexity is not None and self.perplexity < 1:
            raise ValidationError("perplexity", f"must be >= 1, got {self.perplexity!r}", where=where)
        if self.dtype is not None:
            name = str(self.dtype).replace("torch.", "")
            if name not in _FLOAT_DTYPES + _QUANT_DTYPES:
                raise ValidationError("dtype", f"{self.dtype!r} is not a float dtype or 'qint8'", where=where)
            object.__setattr__(self, "dtype", name)
        if self.device is not None:
            object.__setattr__(self, "device", str(self.device))

    def build(self, device: Any = "cpu") -> Any:
        """``model_fn()`` as a protocol object, its module cast, moved to ``device``, in eval mode."""
        import torch

        gen = as_generator(self.model_fn())
        mod = _module_of(gen)
        if mod is not None:
            if self.dtype in _FLOAT_DTYPES:
                mod.to(dtype=getattr(torch, self.dtype))
            mod.to(device)
            mod.eval()
        return gen


def hf_candidate(name: str, config: Any = None, *, path: str | None = None, tags: Sequence[str] = (),
                 perplexity: float | None = None, dtype: str | None = None, device: str | None = None,
                 seed: int = 0) -> GenerationCandidate:
    """A transformers causal LM as a candidate: built from ``config`` (a ``PretrainedConfig``;
    random weights, seeded, nothing downloaded) or loaded from a local ``path``
    (``local_files_only=True``). Needs the ``llm`` extra: ``pip install effplan[llm]``."""
    if (config is None) == (path is None):
        raise ValidationError("config", "give exactly one of config= or path=", where=f"hf_candidate({name!r})")
    try:
        import transformers
    except ImportError:
        raise ValidationError("config", "transformers is not installed: pip install 'effplan[llm]'",
                              where=f"hf_candidate({name!r})") from None
    if config is None:
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)

    def model_fn() -> Any:
        import torch

        if path is not None:
            return transformers.AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        # built directly in the candidate's float dtype: an 8B model in bfloat16 needs 16 GB of
        # host RAM, not the 32 GB of an fp32 build cast afterwards (counts alone: model_facts,
        # on the meta device)
        kw = {"dtype": getattr(torch, dtype)} if dtype in _FLOAT_DTYPES else {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return transformers.AutoModelForCausalLM.from_config(config, **kw)

    return GenerationCandidate(name, model_fn, vocab_size=int(config.vocab_size), tags=tuple(tags),
                               perplexity=perplexity, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------- helpers
def cache_bytes(cache: Any) -> int:
    """Bytes of every tensor reachable from ``cache`` (tuples, lists, dicts, and the attributes of
    cache objects such as ``transformers``' ``DynamicCache``), each tensor counted once."""
    import torch

    seen: set[int] = set()
    total = 0

    def walk(obj: Any, depth: int) -> None:
        nonlocal total
        if depth > 6 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            total += obj.numel() * obj.element_size()
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v, depth + 1)
        elif isinstance(obj, tuple | list):
            for v in obj:
                walk(v, depth + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, torch.nn.Module | type):
            for v in vars(obj).values():
                walk(v, depth + 1)

    walk(cache, 0)
    return total


def _call_module(module: Any, fn: Callable[[Any], Any]) -> Any:
    """An ``nn.Module`` whose forward is ``fn`` (so the FLOP counter can count a protocol call)."""
    import torch

    class _Call(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if module is not None:
                self.inner = module

        def forward(self, x: Any) -> Any:
            return fn(x)

    return _Call()


def _count(module: Any, fn: Callable[[Any], Any], x: Any) -> tuple[float, float, str, int]:
    from .flops import count_flops

    fc = count_flops(_call_module(module, fn), (x,), engine="dispatch")
    cov = float(fc.coverage)
    total = math.nan if (fc.total == 0 and cov < 1.0) else float(fc.total)
    return total, cov, str(fc.engine), int(fc.operator_calls)


def _positive_ints(name: str, value: Any) -> list[int]:
    vals = [value] if isinstance(value, int | np.integer) else list(value) if value is not None else []
    if not vals or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in vals):
        raise ValidationError(name, f"must be positive integers, got {value!r}", where="measure(mode='generation')")
    return list(dict.fromkeys(int(v) for v in vals))


# ---------------------------------------------------------------------------------- the sweep
def measure_generation(candidates: GenerationCandidate | Sequence[GenerationCandidate],
                       batch_sizes: Sequence[int] = (1, 4, 16), prompt_tokens: Sequence[int] | int = (128, 512),
                       output_tokens: int = 64, device: str = "auto", *,
                       threads: int | None = None, timing: Any = None, energy: bool = True,
                       energy_window_s: float = 1.0, idle_s: float = 1.0, idle_power_w: float | None = None,
                       results_path: Any = None, resume: bool = False, isolate: bool | None = None,
                       retries: int | None = None, passes: int | None = None, progress: bool = True,
                       raise_errors: bool = False, clock: Callable[[], float] = time.perf_counter,
                       energy_meter: Callable[[str], Any] | None = None, seed: int = 0,
                       point_timeout_s: float | None = None) -> Any:
    """``effplan.measure(candidates, mode="generation", ...)``: every candidate x concurrency
    (``batch_sizes``) x prompt length, under the same rules as inference points (one worker
    process per candidate, retries of not-stable points, ``resume``, raw samples saved).
    ``seed`` seeds the random prompts. Returns :class:`effplan.measurement.Measurements`."""
    return _m.measure(candidates, batch_sizes=batch_sizes, mode="generation", device=device,
                      threads=threads, timing=timing, energy=energy, energy_window_s=energy_window_s,
                      idle_s=idle_s, idle_power_w=idle_power_w, results_path=results_path, resume=resume,
                      isolate=isolate, retries=retries, passes=passes, progress=progress,
                      raise_errors=raise_errors, clock=clock, energy_meter=energy_meter, prompt_tokens=prompt_tokens,
                      output_tokens=output_tokens, prompt_seed=seed, point_timeout_s=point_timeout_s)


def _measure_point(cand: GenerationCandidate, bs: int, mode: str, dev: str, row: dict[str, Any], *,
                   policy: Any, clock: Callable[[], float], energy: bool, energy_window_s: float,
                   meter_factory: Callable[[str], Any], degraded: list[str], output_tokens: int, seed: int,
                   report: Callable[[Any], Any] | None = None, isolated: bool = False,
                   known_hashes: Any = None, prior: Any = None, known_flops: Any = None,
                   **_: Any) -> dict[Any, Any]:
    """Measure one point (its prompt length is ``row["prompt_tokens"]``), filling ``row`` in
    place; returns the prefill (TTFT) and decode (TPOT) timings by samples key. Called by
    :func:`effplan.measurement._point_job`, in the candidate's worker process when isolated.
    ``known_flops``: the FLOP columns of this point's earlier pass (not counted again)."""
    import torch

    p, n_out = int(row["prompt_tokens"]), int(output_tokens)
    is_cuda = dev.startswith("cuda")
    sync = _m._synchronizer(dev)
    # as for inference points: the peak above the point's start (resident set, or CUDA allocated)
    baseline_mib, cuda_base = _m._memory_baseline(dev, row, isolated)

    gen = cand.build(dev)
    mod = _module_of(gen)
    if mod is not None:
        row.update(_model_fact_columns(mod))
        row["dtype"] = cand.dtype or _dtype_of(mod)
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
                f_pre, cov1, eng, ops_pre = _count(mod, gen.prefill, ids)
                ctx = torch.randint(0, cand.vocab_size, (bs, p + n_out // 2), generator=rng).to(dev)
                mid = gen.prefill(ctx)
                f_dec, cov2, _, ops_dec = _count(mod, lambda t: gen.step(t, mid), ids[:, -1:])
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

        t_pre = _m.adaptive_time(do_prefill, per_call, clock=clock, synchronize=sync,
                                 load=_m.LoadMonitor(), threads=threads, on_round=on_round,
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
        t_dec = _m.adaptive_time(do_step, per_call, clock=clock, synchronize=sync,
                                 load=_m.LoadMonitor(), threads=threads,
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
        spreads = [_m.round_spread_rel(t.times_ms, np.asarray(t.sample_rounds)) for t in (t_pre, t_dec)]
        row["latency_round_spread_rel"] = (math.nan if all(math.isnan(v) for v in spreads)
                                           else float(np.nanmax(spreads)))

        # ---- energy: prefill, then decode, each for at least the energy window
        if energy:
            e_pre, d_pre, calls_pre, src = _metered(do_prefill, t_pre.calls_per_sample, dev, energy_window_s,
                                                    meter_factory, clock, sync)
            e_dec, d_dec, calls_dec, src2 = _metered(do_step, t_dec.calls_per_sample, dev, energy_window_s,
                                                     meter_factory, clock, sync)
            row.update(energy_per_prompt_token_j=e_pre / (calls_pre * bs * p),
                       energy_per_output_token_j=e_dec / (calls_dec * bs),
                       energy_j=e_pre + e_dec, energy_window_s=d_pre + d_dec,
                       avg_power_w=(e_pre + e_dec) / (d_pre + d_dec) if d_pre + d_dec > 0 else math.nan,
                       energy_source=src if src == src2 else f"{src}+{src2}")

    row["peak_memory_mib"] = _m._peak_memory_mib(dev, baseline_mib, cuda_base)
    # after the memory reading: hashing is not the point's own footprint
    _m._reproducibility(row, cand, mod, policy, known_hashes)
    return {(cand.name, dev, f"generation-prefill-p{p}", bs): t_pre,
            (cand.name, dev, f"generation-decode-p{p}", bs): t_dec}


def _model_fact_columns(mod: Any) -> dict[str, Any]:
    """``params`` / ``param_bytes`` / ``active_params`` (each tensor once, MoE top-k) and the
    context / window columns of a module (:mod:`effplan.architecture`; its ``config`` when it has
    one, as transformers models do)."""
    from .architecture import context_facts, count_parameters

    cfg = getattr(mod, "config", None)
    counts = count_parameters(mod, cfg)
    ctx = context_facts(cfg)
    return {"params": counts.params, "param_bytes": float(counts.param_bytes),
            "active_params": counts.active_params, "context_tokens": ctx.context_tokens,
            "kv_window_tokens": ctx.kv_window_tokens, "kv_window_layer_share": ctx.kv_window_layer_share,
            "hidden_size": ctx.hidden_size, "num_layers": ctx.num_layers}


def _metered(fn: Callable[[], None], calls_per_sample: int, dev: str, window_s: float,
             meter_factory: Callable[[str], Any], clock: Callable[[], float],
             sync: Callable[[], Any] | None) -> tuple[float, float, int, str]:
    meter = meter_factory(dev)
    window = max(float(window_s), float(getattr(meter, "min_window_s", None) or 0.0))
    calls = 0
    with meter:
        e0 = clock()
        while True:
            for _ in range(calls_per_sample):
                fn()
            calls += calls_per_sample
            if sync is not None:
                sync()
            if clock() - e0 >= window:
                break
    return float(meter.energy_j), float(meter.duration_s), calls, str(meter.source)


def _dtype_of(mod: Any) -> str:
    from .slim import quantized_label

    label = quantized_label(mod)  # torch.ao quantized modules and torchao weights
    if label:
        return label
    for prm in mod.parameters():
        if prm.is_floating_point():
            return str(prm.dtype).replace("torch.", "")
    return "float32"


def with_perplexity(candidate: GenerationCandidate, perplexity: float | None) -> GenerationCandidate:
    """A copy with another held-out perplexity (e.g. on your own data)."""
    return replace(candidate, perplexity=perplexity)


#: decoder training steps of a quick notebook run (``quick=True``): fewer than the family's
#: default, so the notebook trains in seconds; the perplexities say how far training got.
QUICK_TRAIN_STEPS = 60


def notebook_measurements(results_path: str | None, *, quick: bool = True,
                          concurrency: Sequence[int] = (1, 8), prompt_tokens: Sequence[int] = (64, 256),
                          output_tokens: int = 16, save: bool = True, progress: bool = False) -> Any:
    """Generation measurements for a notebook: load ``results_path`` when it holds
    ``mode="generation"`` rows, else measure the built-in decoder family
    (:func:`effplan.decoders.decoder_candidates`) on this machine's CPU with one thread; ``quick``
    trains :data:`QUICK_TRAIN_STEPS` steps and uses :data:`effplan.notebook.QUICK_SETTINGS`
    timing. With ``save`` the points are appended to ``results_path`` for the next run."""
    import os

    from . import decoders
    from .measurement import Measurements
    from .notebook import measure_settings

    if results_path and os.path.exists(results_path):
        loaded = Measurements.load(results_path)
        if any(r.get("mode") == "generation" for r in loaded.rows):
            return loaded
        warnings.warn(f"{results_path} has no mode='generation' rows; measuring the built-in decoders "
                      "instead", EffplanWarning, stacklevel=2)
    cfg = replace(decoders.BASE_CONFIG, train_steps=QUICK_TRAIN_STEPS) if quick else decoders.BASE_CONFIG
    policy = replace(_m.TimingPolicy(), **{k: v for k, v in measure_settings(quick).items()
                                            if k == "time_budget_s"})
    settings = {k: v for k, v in measure_settings(quick).items() if k in ("energy_window_s", "idle_s", "passes")}
    return measure_generation(decoders.decoder_candidates(config=cfg), batch_sizes=list(concurrency),
                              prompt_tokens=list(prompt_tokens), output_tokens=output_tokens, device="cpu",
                              threads=1, timing=policy, progress=progress,
                              results_path=results_path if (save and results_path) else None, **settings)
