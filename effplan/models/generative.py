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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .candidates import FLOAT_DTYPES, dtype_name
from ..errors import ValidationError

__all__ = ["GenerativeModel", "GenerationCandidate", "HFCausalLM", "hf_candidate", "as_generator",
           "cache_bytes", "call_module", "module_of", "SUMMARY_COLUMNS"]

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


def module_of(gen: Any) -> Any:
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
        object.__setattr__(self, "dtype", dtype_name(self.dtype, where))  # the rule Candidate follows
        if self.device is not None:
            object.__setattr__(self, "device", str(self.device))

    def build(self, device: Any = "cpu") -> Any:
        """``model_fn()`` as a protocol object, its module cast, moved to ``device``, in eval mode."""
        import torch

        gen = as_generator(self.model_fn())
        mod = module_of(gen)
        if mod is not None:
            if self.dtype in FLOAT_DTYPES:
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
        kw = {"dtype": getattr(torch, dtype)} if dtype in FLOAT_DTYPES else {}
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


def call_module(module: Any, fn: Callable[[Any], Any]) -> Any:
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
