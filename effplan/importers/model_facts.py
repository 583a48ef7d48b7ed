"""Model facts for imported rows: weight bytes, KV-cache bytes per token, context, FLOPs per token.

:func:`model_facts` takes what a team has beside its benchmark file:

* a ``transformers`` config object (``PretrainedConfig``), a local ``config.json`` or a folder
  holding one -- the parameters are COUNTED on PyTorch's ``meta`` device (``with
  torch.device("meta"): AutoModelForCausalLM.from_config(config)``: shapes only, no weight bytes
  allocated, an 8B model in about a second), each parameter once (``model.parameters()`` yields a
  tied input / output embedding once, where ``state_dict()`` lists it twice);
* or a dict of explicit figures: ``param_bytes``, ``kv_cache_bytes_per_token`` and optionally
  ``context_tokens``, ``params``, ``dtype``, ``flops_per_prompt_token``,
  ``flops_per_output_token`` (``model_facts_source="entered"``). A dict with ``model_type`` is a
  ``transformers`` config dict.

Formulas (a hand count matches them: ``tests/test_importers.py``):

* ``param_bytes = params x dtype bytes``; the dtype is the config's (``dtype`` / ``torch_dtype``);
  a float32 or unset config dtype is served in 16-bit by vLLM's ``--dtype auto``, so bfloat16 (2
  bytes) is used and the note says so (give ``{"dtype": ...}`` in a dict to change it).
* ``kv_cache_bytes_per_token = 2 x layers x KV heads x head_dim x dtype bytes`` (keys and values;
  KV heads = ``num_key_value_heads``, else the attention heads; head_dim = ``head_dim``, else
  hidden size / heads).
* ``context_tokens`` = ``max_position_embeddings``.
* FLOPs (2 x MACs, effplan's convention): ``W`` = weights of matmul-like layers (every parameter
  of 2+ dimensions outside ``nn.Embedding``; the LM head counted even when tied, since it is a
  matmul), ``W_head`` = the output embedding's. Decode at context ``T``: ``2 W + 4 x layers x
  heads x head_dim x T`` (the full ``QK^T`` and ``AV`` products). Prefill per prompt token at
  prompt length ``P``: ``2 (W - W_head) + 2 W_head / P + 4 x layers x heads x head_dim x P``
  (logits of the last position only, as serving engines and effplan's HF adapter compute). Rows
  get the decode figure at the middle of the response, ``T = P + output_tokens / 2``, as
  :mod:`effplan.generation` measures it.

Mixture of experts: ``params`` / ``param_bytes`` hold every expert (they are all in memory);
``active_params`` and the FLOPs only the top-k routed experts a token runs
(:func:`effplan.models.architecture.count_parameters`). A sliding window travels on the rows
(``kv_window_tokens``, ``kv_window_layer_share``) and caps the KV in the memory check. Known
limit, said in the notes: multi-head latent attention (``kv_lora_rank``) caches less than the
plain formula.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError

__all__ = ["ModelFacts", "model_facts", "DTYPE_BYTES"]

#: bytes per element of the dtypes a served model uses
DTYPE_BYTES: Mapping[str, int] = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1,
                                  "float8_e5m2": 1, "fp8": 1, "int8": 1}

_EXPLICIT = ("param_bytes", "kv_cache_bytes_per_token", "context_tokens", "params", "dtype",
             "flops_per_prompt_token", "flops_per_output_token")


@dataclass(frozen=True)
class ModelFacts:
    """What the rows need to know about the model (units in the names; NaN = unknown)."""

    param_bytes: float
    kv_cache_bytes_per_token: float
    source: str
    params: float = math.nan
    context_tokens: int | None = None
    dtype: str = ""
    matmul_params: float = math.nan
    head_params: float = math.nan
    attention_flops_per_context_token: float = math.nan   # 4 x layers x heads x head_dim
    flops_per_prompt_token_fixed: float = math.nan        # entered figures (no formula)
    flops_per_output_token_fixed: float = math.nan
    config_sha256: str = ""
    notes: tuple[str, ...] = field(default=())
    active_params: float = math.nan
    kv_window_tokens: int | None = None
    kv_window_layer_share: float = math.nan
    hidden_size: int | None = None
    num_layers: int | None = None

    def flops_per_prompt_token(self, prompt_tokens: int) -> float:
        """Prefill FLOPs per prompt token at prompt length ``prompt_tokens`` (see the module)."""
        if math.isfinite(self.flops_per_prompt_token_fixed):
            return self.flops_per_prompt_token_fixed
        P = float(prompt_tokens)
        return (2.0 * (self.matmul_params - self.head_params) + 2.0 * self.head_params / P
                + self.attention_flops_per_context_token * P)

    def flops_per_output_token(self, context_tokens: float) -> float:
        """Decode FLOPs per output token with ``context_tokens`` of context."""
        if math.isfinite(self.flops_per_output_token_fixed):
            return self.flops_per_output_token_fixed
        return 2.0 * self.matmul_params + self.attention_flops_per_context_token * float(context_tokens)

    def columns(self, *, prompt_tokens: int, output_tokens: int | None) -> dict[str, Any]:
        """The schema columns of a row at this prompt / output length."""
        T = prompt_tokens + (output_tokens or 0) / 2.0
        return {"params": self.params, "param_bytes": self.param_bytes,
                "kv_cache_bytes_per_token": self.kv_cache_bytes_per_token,
                "context_tokens": self.context_tokens, "active_params": self.active_params,
                "kv_window_tokens": self.kv_window_tokens, "kv_window_layer_share": self.kv_window_layer_share,
                "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "flops_per_prompt_token": self.flops_per_prompt_token(prompt_tokens),
                "flops_per_output_token": self.flops_per_output_token(T),
                "model_facts_source": self.source, "config_sha256": self.config_sha256}


def _dtype_name(value: Any) -> str:
    return "" if value is None else str(value).replace("torch.", "").strip().lower()


def _dtype_bytes(name: str, where: str) -> int:
    if name not in DTYPE_BYTES:
        raise ValidationError("dtype", f"unknown dtype {name!r} ({where}); known: {sorted(DTYPE_BYTES)}")
    return DTYPE_BYTES[name]


def model_facts(config: Any) -> ModelFacts:
    """:class:`ModelFacts` from a transformers config, a local config path, or a dict (see the
    module docstring). A config that cannot be read is a :class:`ValidationError` naming ``config``."""
    if isinstance(config, ModelFacts):
        return config
    if isinstance(config, Mapping):
        if "model_type" not in config:
            return _explicit(config)
        return _from_hf(_hf_config_from_dict(dict(config)))
    if isinstance(config, (str, Path)):
        p = Path(config)
        f = p / "config.json" if p.is_dir() else p
        try:
            d = json.loads(f.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValidationError("config", f"{f} cannot be read ({exc.strerror or exc}); give a local "
                                            "config.json, its folder, or a dict") from None
        except json.JSONDecodeError as exc:
            raise ValidationError("config", f"{f} is not JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(d, dict):
            raise ValidationError("config", f"{f} holds a {type(d).__name__}, not a config object")
        return model_facts(d)
    if hasattr(config, "to_dict") and hasattr(config, "model_type"):
        return _from_hf(config)
    raise ValidationError("config", f"expected a transformers config, a path to config.json or a dict, got "
                                    f"{type(config).__name__}")


def _explicit(d: Mapping[str, Any]) -> ModelFacts:
    from ..records.schema import number

    unknown = sorted(set(d) - set(_EXPLICIT))
    if unknown:
        raise ValidationError("config", f"unknown key(s) {unknown} in the model facts dict; give "
                                        f"{list(_EXPLICIT)} (or a transformers config dict with model_type)")
    for k in ("param_bytes", "kv_cache_bytes_per_token"):
        if k not in d:
            raise ValidationError("config", f"the model facts dict needs {k!r} (with param_bytes and "
                                            "kv_cache_bytes_per_token the memory fit is checked)")
    val = {k: number(k, d[k], lo=0, where="config") for k in ("param_bytes", "kv_cache_bytes_per_token")}
    ctx = int(number("context_tokens", d["context_tokens"], lo=1, integer=True, where="config")) \
        if d.get("context_tokens") is not None else None
    opt = {k: number(k, d[k], lo=0, where="config") if d.get(k) is not None else math.nan
           for k in ("params", "flops_per_prompt_token", "flops_per_output_token")}
    dtype = _dtype_name(d.get("dtype"))
    if dtype:
        _dtype_bytes(dtype, "config")
    from ..records.reproducibility import config_sha256

    return ModelFacts(param_bytes=val["param_bytes"], kv_cache_bytes_per_token=val["kv_cache_bytes_per_token"],
                      source="entered", params=opt["params"], context_tokens=ctx, dtype=dtype,
                      flops_per_prompt_token_fixed=opt["flops_per_prompt_token"],
                      flops_per_output_token_fixed=opt["flops_per_output_token"],
                      config_sha256=config_sha256(dict(d)))


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ValidationError("config", "reading a model config needs transformers (pip install "
                                        "'effplan[llm]'); or give a dict with param_bytes and "
                                        "kv_cache_bytes_per_token") from None
    return transformers


def _hf_config_from_dict(d: dict[str, Any]) -> Any:
    transformers = _transformers()
    d = dict(d)
    model_type = d.pop("model_type")
    try:
        return transformers.AutoConfig.for_model(model_type, **d)
    except (ValueError, KeyError) as exc:
        raise ValidationError("config", f"transformers cannot build a config for model_type {model_type!r} "
                                        f"({exc})") from None


@contextlib.contextmanager
def _quiet_transformers():
    """Library chatter kept off the user's screen while only shapes are built, restored afterwards:
    transformers' config / init notices (deprecations, token-id checks), and the log lines that
    optional packages it imports on first use print (torchao's "Failed to load" of GPU kernels,
    torch's pytree deprecation) -- none of them concerns a parameter count."""
    import logging
    import warnings

    transformers = _transformers()
    log = transformers.logging
    before = log.get_verbosity()
    disabled = logging.root.manager.disable
    log.set_verbosity_error()
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)
        log.set_verbosity(before)


def _from_hf(cfg: Any) -> ModelFacts:
    transformers = _transformers()
    import torch

    from ..records.reproducibility import config_sha256

    notes: list[str] = []
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    with _quiet_transformers():   # transformers 5 warns when the old torch_dtype name is read
        dtype = _dtype_name(getattr(text, "dtype", None) or getattr(text, "torch_dtype", None)
                            or getattr(cfg, "dtype", None) or getattr(cfg, "torch_dtype", None))
    if dtype in ("", "float32", "auto"):
        notes.append(f"config dtype {dtype or 'unset'}: weights and KV cache counted in bfloat16 (2 bytes), "
                     "as vLLM's --dtype auto serves float32 checkpoints in 16-bit; give a dict with dtype "
                     "to change it")
        dtype = "bfloat16"
    nbytes = _dtype_bytes(dtype, f"the config of {type(cfg).__name__}")
    try:
        with _quiet_transformers(), torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(cfg)
    except (ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise ValidationError("config", f"transformers could not build {type(cfg).__name__} on the meta "
                                        f"device to count its parameters ({type(exc).__name__}: {exc}); give "
                                        "a dict with param_bytes and kv_cache_bytes_per_token") from None
    from ..models.architecture import context_facts, count_parameters

    counts = count_parameters(model, cfg)                         # the one home: a tied weight once
    params = counts.params
    # matmul weights: per module (no de-duplication ACROSS modules), so a tied LM head is counted
    # as the Linear it is, while the Embedding holding the same tensor (a lookup) is skipped
    matmul = 0
    for mod in model.modules():
        if isinstance(mod, torch.nn.Embedding):
            continue
        matmul += sum(p.numel() for p in mod.parameters(recurse=False) if p.dim() >= 2)
    # mixture of experts: a token runs top-k of the routed experts, so only that share of their
    # weights enters the FLOPs (the weight BYTES are all of them)
    if counts.experts:
        matmul -= counts.expert_params * (1.0 - counts.top_k / counts.experts)
    head = model.get_output_embeddings()
    head_params = head.weight.numel() if head is not None and getattr(head, "weight", None) is not None else 0
    layers = int(text.num_hidden_layers)
    heads = int(text.num_attention_heads)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(text, "head_dim", None) or int(text.hidden_size) // heads)
    kv = 2.0 * layers * kv_heads * head_dim * nbytes
    ctx = getattr(text, "max_position_embeddings", None)
    ctxf = context_facts(cfg)
    if counts.experts:
        notes.append(f"mixture of experts: {counts.experts} routed experts, top-{counts.top_k} per token; "
                     f"FLOPs count the active path ({counts.active_params:.4g} of {params:.4g} parameters)")
    if ctxf.kv_window_tokens:
        notes.append(f"sliding window of {ctxf.kv_window_tokens} tokens on {ctxf.kv_window_layer_share:.0%} of "
                     "the layers: the memory check caps their KV at the window")
    if getattr(text, "kv_lora_rank", None):
        notes.append("multi-head latent attention: the plain KV formula overstates the cache")
    name = type(cfg).__name__
    return ModelFacts(param_bytes=float(params * nbytes), kv_cache_bytes_per_token=kv,
                      source=f"transformers {name} (counted on the meta device, {dtype})", params=float(params),
                      context_tokens=int(ctx) if ctx else None, dtype=dtype, matmul_params=float(matmul),
                      head_params=float(head_params),
                      attention_flops_per_context_token=4.0 * layers * heads * head_dim,
                      config_sha256=config_sha256(cfg), notes=tuple(notes),
                      active_params=float(counts.active_params), kv_window_tokens=ctxf.kv_window_tokens,
                      kv_window_layer_share=ctxf.kv_window_layer_share, hidden_size=ctxf.hidden_size,
                      num_layers=ctxf.num_layers)
