"""Model facts from a module and its config: the ONE home for counting parameters, active
parameters, context and attention window, used by measurement (:mod:`effplan.measurement`,
:mod:`effplan.generation`) and by the importers (:mod:`effplan.importers.model_facts`).

Parameters, counted by storage
------------------------------
:func:`count_parameters` walks ``model.state_dict(keep_vars=True)`` and counts each tensor OBJECT
once: a tied input / output embedding (GPT-2, Qwen2.5-0.5B, Falcon-7B) is one ``Parameter``
listed under two keys, so it is counted once (``state_dict()`` without ``keep_vars`` detaches
each entry into a new tensor, which counted it twice: +31% for GPT-2). Packed quantized weights
(``torch.ao`` ``_packed_params``, torchao tensor subclasses) are state-dict entries that are not
``Parameter``s; they count by the bytes of the tensors that hold them
(:func:`effplan.models.candidates.storage_tensors`). Buffers (and ``.scale`` / ``.zero_point``) count in
``param_bytes`` but not in ``params``.

Active parameters (mixture of experts)
--------------------------------------
``active_params = params - expert_params x (1 - top_k / experts)``: per token, the router sends
each token to ``top_k`` of the ``experts`` routed experts, so only that share of the routed
experts' weights is used; everything else (attention, embeddings, router, shared experts) is
active. Routed expert weights are found by shape: transformers 5 stores each MoE layer's experts
as fused 3-D parameters whose first dimension is the number of experts (``gate_up_proj``,
``down_proj``), older layouts as a ``ModuleList`` named ``experts`` of that length. The number of
experts and top-k come from the config (``num_local_experts`` / ``num_experts`` /
``n_routed_experts``; ``num_experts_per_tok`` / ``moe_topk`` / ``top_k``). A dense model has
``active_params == params``.

Context and window
------------------
``context_tokens`` = ``max_position_embeddings`` (``n_positions`` for GPT-2 through its attribute
map). ``kv_window_tokens`` = ``sliding_window`` when the config enables it (``use_sliding_window``
not False), and ``kv_window_layer_share`` the share of layers that use it (``layer_types``:
``"sliding_attention"``; 1.0 when the config does not say, as in Mistral-7B-v0.1). The KV cache of
one sequence of ``L`` tokens then holds ``L - share x max(0, L - window)`` tokens' worth per
layer-average (:func:`kv_tokens_held`), which is what the memory check uses.

Building big models cheaply
---------------------------
:func:`build_on_meta` builds a transformers causal LM from its config on PyTorch's ``meta``
device (shapes only, no weight bytes): an 8B or 70B model's counts need no host RAM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["ParamCounts", "count_parameters", "moe_shape", "context_facts", "ContextFacts",
           "build_on_meta"]

_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
_TOPK_KEYS = ("num_experts_per_tok", "moe_topk", "top_k", "num_selected_experts")


@dataclass(frozen=True)
class ParamCounts:
    """Parameters of one module, each tensor once (units in the names)."""

    params: int
    param_bytes: int
    active_params: int
    expert_params: int = 0
    experts: int = 0
    top_k: int = 0


def moe_shape(config: Any) -> tuple[int, int]:
    """(routed experts, top-k) of a config; (0, 0) for a dense model or no config."""
    if config is None:
        return 0, 0
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    experts = next((int(v) for k in _EXPERT_KEYS if (v := getattr(text, k, None))), 0)
    top_k = next((int(v) for k in _TOPK_KEYS if (v := getattr(text, k, None))), 0)
    return (experts, top_k) if experts > 1 and top_k >= 1 else (0, 0)


def _expert_params(model: Any, experts: int) -> int:
    import torch

    seen: set[int] = set()
    total = 0
    for name, mod in model.named_modules():
        for p in mod.parameters(recurse=False):
            if id(p) in seen:
                continue
            if p.dim() == 3 and p.shape[0] == experts:      # fused experts (transformers 5)
                seen.add(id(p))
                total += p.numel()
        if name.rsplit(".", 1)[-1] == "experts" and isinstance(mod, torch.nn.ModuleList) \
                and len(mod) == experts:                    # one module per expert
            for p in mod.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
    return total


def count_parameters(model: Any, config: Any = None) -> ParamCounts:
    """:class:`ParamCounts` of ``model`` (see the module docstring); ``config`` defaults to
    ``model.config`` (transformers) and is only read for the experts / top-k."""
    import torch

    from .candidates import storage_tensors

    buffers = {name for name, _ in model.named_buffers()}
    seen: set[int] = set()
    params = 0
    nbytes = 0

    def walk(value: Any, is_buffer: bool) -> None:
        nonlocal params, nbytes
        if isinstance(value, torch.Tensor):
            if id(value) in seen:       # a tied weight: one Parameter under two keys
                return
            seen.add(id(value))
            # a tensor subclass (torchao int8 weights) costs the bytes of its inner tensors
            nbytes += sum(t.numel() * t.element_size() for t in storage_tensors(value))
            if not is_buffer:
                params += value.numel()
        elif isinstance(value, tuple | list):
            for v in value:
                walk(v, is_buffer)

    for key, value in model.state_dict(keep_vars=True).items():
        walk(value, key in buffers or key.endswith((".scale", ".zero_point")))
    cfg = config if config is not None else getattr(model, "config", None)
    experts, top_k = moe_shape(cfg)
    expert = _expert_params(model, experts) if experts else 0
    active = params - expert * (1.0 - top_k / experts) if experts else params
    return ParamCounts(params=int(params), param_bytes=int(nbytes), active_params=int(round(active)),
                       expert_params=int(expert), experts=experts, top_k=top_k)


@dataclass(frozen=True)
class ContextFacts:
    """Context length and attention window of a config (None / NaN = unknown or none)."""

    context_tokens: int | None = None
    kv_window_tokens: int | None = None
    kv_window_layer_share: float = math.nan
    hidden_size: int | None = None
    num_layers: int | None = None


def context_facts(config: Any) -> ContextFacts:
    """:class:`ContextFacts` from a transformers config (see the module docstring)."""
    if config is None:
        return ContextFacts()
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    ctx = getattr(text, "max_position_embeddings", None)
    window = getattr(text, "sliding_window", None)
    if getattr(text, "use_sliding_window", True) is False:
        window = None
    share = math.nan
    if window:
        types = getattr(text, "layer_types", None)
        share = (sum(t == "sliding_attention" for t in types) / len(types)) if types else 1.0
        if share == 0:
            window, share = None, math.nan
    hidden = getattr(text, "hidden_size", None)
    layers = getattr(text, "num_hidden_layers", None)
    return ContextFacts(context_tokens=int(ctx) if ctx else None,
                        kv_window_tokens=int(window) if window else None,
                        kv_window_layer_share=float(share),
                        hidden_size=int(hidden) if isinstance(hidden, int) else None,
                        num_layers=int(layers) if isinstance(layers, int) else None)


def build_on_meta(config: Any) -> Any:
    """A transformers causal LM built from ``config`` on the ``meta`` device (shapes only)."""
    import torch
    import transformers

    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(config)
