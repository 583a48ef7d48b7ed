"""Slim variants of a model, made by effplan itself: quantized, half-precision, pruned,
layer-dropped and distilled copies of ONE baseline candidate.

:func:`slim(candidate, recipes=DEFAULT_RECIPES, data=None)` returns one candidate per recipe,
named ``<name>-<recipe>``. Each is an ordinary :class:`~effplan.Candidate` (or
:class:`~effplan.GenerationCandidate`, for a generative baseline) that :func:`effplan.measure`,
:func:`effplan.evaluate` and :func:`effplan.plan` take as they are:

* **built lazily**: its ``model_fn`` (a :class:`VariantBuilder`) builds the baseline with the
  baseline's own ``model_fn`` and then applies the recipe, in the worker process that measures
  it, so isolation (cloudpickle), ``resume`` and crash rows keep working. Only distillation
  trains here, once (the student's weights then travel with the candidate by value, so every
  measured point measures the same student);
* **tagged** with what it is: its kind (``quantized``, ``half-precision``, ``pruned``, ``slim``,
  ``distilled``), ``recipe:<recipe>`` and ``variant-of:<baseline>`` (the ``tags`` column of
  every measured row keeps them);
* **infeasible with the reason** when the recipe cannot run on the device or does not apply to
  the model (``layers-half`` on an MLP, ``int4-weight`` on a CPU, the int8 recipes without
  torchao): such a candidate is still returned, tagged ``infeasible``; :func:`variant_info`
  gives the reason, and building it raises :class:`~effplan.errors.InfeasibleRecipeError` with
  the reason, so :func:`effplan.measure` makes an error row that says why. Nothing is dropped
  silently.

Recipes (:data:`RECIPES`)
-------------------------
``int8-dynamic``  torchao ``Int8DynamicActivationInt8WeightConfig``: int8 weights (per output
                  channel) and int8 activations quantized per call, int8 matmuls. dtype label
                  ``qint8`` (the label of dynamic int8 everywhere in effplan).
``int8-weight``   torchao ``Int8WeightOnlyConfig``: int8 weights (per output channel), the
                  matmul in the activations' float dtype. dtype label ``int8-weight``.
``int4-weight``   torchao ``Int4WeightOnlyConfig`` (tile-packed for the tinygemm kernel), bf16
                  activations: only where the device has the kernel (CUDA); dtype ``int4-weight``.
``int8-dynamic-legacy``  the old ``torch.ao.quantization.quantize_dynamic`` (deprecated by
                  PyTorch, removal announced): a labelled fallback only, while torch ships it.
``bf16``, ``fp16`` casts of the model and its floating inputs (``Candidate.dtype``). fp16 on a
                  CPU runs (PyTorch has CPU half kernels) but is usually SLOWER than fp32 there:
                  it is measured, not assumed; the variant's notes say so.
``prune-<pct>``   structured L1 pruning (``prune-30``: 30%): in every Linear whose outputs feed
                  only the next Linear through an activation with f(0) = 0 (MLP hidden layers,
                  transformer feed-forward blocks), the ``round(pct/100 x out)`` output channels
                  with the smallest L1 weight norm are REMOVED, with the matching input columns
                  of the next Linear: the weights really shrink (not a mask). Which layer pairs
                  qualify is checked here: the shrunk model must give the same outputs as the
                  baseline with those channels zeroed (masked), else the pair is left alone.
                  Other Linear layers (the output layer, attention projections) are kept.
``layers-half``   for a stack of repeated blocks (``nn.TransformerEncoder``/``Decoder``, or the
                  largest ``nn.ModuleList`` / ``nn.Sequential`` of >= 2 blocks of one class, as in
                  Hugging Face models): every other block is dropped (blocks 0, 2, 4, ... kept),
                  no retraining; ``layer_idx`` attributes and ``num_layers`` /
                  ``num_hidden_layers`` are renumbered.
``distill``       (needs ``data=(inputs, labels)``, training data): a student made by
                  ``layers-half`` (a stack) or else ``prune-50``, initialised from the baseline's
                  kept weights and trained against it with the SAME loss as the built-in
                  students (:func:`distillation_loss`, temperature and mix of
                  :class:`DistillConfig`).

torchao is optional (``pip install "effplan[slim]"``) and imported lazily, once, by
:func:`torchao_status`. On a CPU-only torch its import logs that its GPU-only kernel libraries
(mxfp8, CUTLASS) cannot be loaded and torch warns about a pytree registration: those messages
are captured at that boundary (kept in ``torchao_status().import_notes``, logged at DEBUG on the
``effplan.slim`` logger) instead of reaching notebook output. Without torchao, :func:`slim`
warns once (:class:`~effplan.errors.SlimWarning`) and the torchao recipes are infeasible with
that reason.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InfeasibleRecipeError, SlimWarning, ValidationError

__all__ = ["slim", "DEFAULT_RECIPES", "RECIPES", "Recipe", "VariantInfo", "VariantBuilder",
           "DistillConfig", "variant_info", "feasible", "infeasible", "torchao_status", "TorchaoStatus",
           "quantized_label", "weight_bytes", "find_stack", "prunable_pairs", "apply_recipe", "describe",
           "recipe_spec", "distillation_loss"]

_log = logging.getLogger(__name__)

DEFAULT_RECIPES: tuple[str, ...] = ("int8-dynamic", "int8-weight", "bf16", "fp16", "prune-30", "layers-half")

TAG_INFEASIBLE = "infeasible"
TAG_RECIPE = "recipe:"
TAG_VARIANT_OF = "variant-of:"


@dataclass(frozen=True)
class Recipe:
    """One way to slim a model. ``tag``: the variant's kind tag; ``dtype``: the dtype label of
    the variant (``None``: the baseline's); ``what``: what it does, in one line."""

    name: str
    tag: str
    dtype: str | None
    what: str
    needs_torchao: bool = False
    needs_data: bool = False
    prune_fraction: float | None = None


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("int8-dynamic", "quantized", "qint8",
           "torchao int8 dynamic: int8 weights per output channel, activations quantized per call, "
           "int8 matmuls", needs_torchao=True),
    Recipe("int8-weight", "quantized", "int8-weight",
           "torchao int8 weight-only: int8 weights per output channel, float matmuls", needs_torchao=True),
    Recipe("int4-weight", "quantized", "int4-weight",
           "torchao int4 weight-only (groups of 128 or fewer, tinygemm tile packing), bf16 activations",
           needs_torchao=True),
    Recipe("int8-dynamic-legacy", "quantized", "qint8",
           "LEGACY fallback: torch.ao.quantization.quantize_dynamic (deprecated by PyTorch, removal "
           "announced), int8 weights, activations quantized per call, CPU kernels only"),
    Recipe("bf16", "half-precision", "bfloat16", "cast to bfloat16 (weights and floating inputs)"),
    Recipe("fp16", "half-precision", "float16", "cast to float16 (weights and floating inputs)"),
    Recipe("layers-half", "slim", None, "every other block of the transformer stack dropped, no retraining"),
    Recipe("distill", "distilled", None,
           "a student (layers-half, else prune-50) initialised from the baseline and distilled from it "
           "(effplan.slim.distillation_loss)", needs_data=True),
)}


def distillation_loss(logits: Any, teacher_logits: Any, hard_loss: Any, *, temperature: float,
                      alpha: float) -> Any:
    """Knowledge distillation (Hinton et al. 2015): ``alpha x T^2 x KL(softmax(teacher / T) ||
    softmax(student / T)) + (1 - alpha) x hard_loss``, for logits of shape (..., classes), the KL
    averaged over every leading position ("batchmean" of the flattened rows). Used by every
    built-in student (digits and decoders)."""
    import torch.nn.functional as F

    c = logits.shape[-1]
    kd = F.kl_div(F.log_softmax(logits / temperature, -1).reshape(-1, c),
                  F.softmax(teacher_logits / temperature, -1).reshape(-1, c),
                  reduction="batchmean") * temperature ** 2
    return alpha * kd + (1 - alpha) * hard_loss


def recipe_spec(name: str) -> Recipe:
    """The :class:`Recipe` named ``name``; ``prune-<pct>`` for any whole percentage 1-99."""
    if not isinstance(name, str):
        raise ValidationError("recipes", f"a recipe is a name, got {name!r}", where="slim")
    if name in RECIPES:
        return RECIPES[name]
    if name.startswith("prune-"):
        pct = name[len("prune-"):]
        if pct.isdigit() and 1 <= int(pct) <= 99 and str(int(pct)) == pct:
            return Recipe(name, "pruned", None,
                          f"structured L1 pruning: {pct}% of the output channels of each hidden Linear "
                          "removed (the weights shrink; not a mask)", prune_fraction=int(pct) / 100)
    known = ", ".join(list(RECIPES) + ["prune-<pct>"])
    raise ValidationError("recipes", f"unknown recipe {name!r}; known: {known}", where="slim")


@dataclass(frozen=True)
class DistillConfig:
    """How the ``distill`` recipe trains its student: Adam at ``lr`` for ``epochs`` passes over
    the training data in shuffled batches of ``batch_size`` (seeded by ``seed``), with the loss of
    :func:`distillation_loss` at ``temperature`` and ``alpha`` (the digits
    family's figures by default: T = 4, alpha = 0.5)."""

    epochs: int = 25
    batch_size: int = 64
    lr: float = 3e-3
    temperature: float = 4.0
    alpha: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValidationError(name, f"must be a positive integer, got {v!r}", where="DistillConfig")
        for name in ("lr", "temperature"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValidationError(name, f"must be a positive number, got {v!r}", where="DistillConfig")
        if not (isinstance(self.alpha, int | float) and 0 <= self.alpha <= 1):
            raise ValidationError("alpha", f"must be in [0, 1], got {self.alpha!r}", where="DistillConfig")


@dataclass(frozen=True)
class VariantInfo:
    """What a variant is: its ``recipe``, the ``baseline`` it was made from, ``feasible`` and,
    when not, the ``reason``; ``notes``: what was done (layers pruned, blocks kept, torchao
    messages, the fp16-on-CPU caveat); ``check_max_abs_diff``: the largest absolute difference
    between its outputs and the baseline's on a check batch (NaN when not checked)."""

    recipe: str
    baseline: str
    feasible: bool
    reason: str = ""
    notes: tuple[str, ...] = ()
    what: str = ""
    check_max_abs_diff: float = math.nan


# =============================================================================== torchao
@dataclass(frozen=True)
class TorchaoStatus:
    """``available``; ``version``; ``reason`` it is not ("" when it is); ``import_notes``: the
    log lines and warnings its import emitted (captured, see the module docstring)."""

    available: bool
    version: str
    reason: str
    import_notes: tuple[str, ...] = ()


class _Keep(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.sink.append(f"{record.name}: {record.getMessage()}")


@contextlib.contextmanager
def _captured(loggers: Sequence[str] = ("torchao", "torch.utils._pytree", "torch._dynamo")) -> Any:
    """Collect (instead of print) what torchao logs and warns while this block runs."""
    notes: list[str] = []
    handler = _Keep(notes)
    saved = []
    for name in loggers:
        lg = logging.getLogger(name)
        saved.append((lg, lg.propagate, lg.level))
        lg.addHandler(handler)
        lg.propagate = False
        if lg.level == logging.NOTSET or lg.level > logging.INFO:
            lg.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield notes
        notes.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    finally:
        for lg, propagate, level in saved:
            lg.removeHandler(handler)
            lg.propagate = propagate
            lg.setLevel(level)


@functools.lru_cache(maxsize=1)
def torchao_status() -> TorchaoStatus:
    """Import torchao once (messages captured); whether it is there and why not.
    (Cached: an import happens once per process anyway; tests clear it to simulate absence.)"""
    with _captured() as notes:
        try:
            import torchao
            import torchao.quantization  # noqa: F401  (the configs used here)
        except ImportError as exc:
            return TorchaoStatus(False, "", f"torchao is not installed ({exc}): pip install 'effplan[slim]'")
        except Exception as exc:  # a broken install: the reason is kept, the recipes are infeasible
            return TorchaoStatus(False, "", f"torchao failed to import ({type(exc).__name__}: {exc})")
    for n in notes:
        _log.debug("torchao import: %s", n)
    return TorchaoStatus(True, str(getattr(torchao, "__version__", "")), "", tuple(notes))


# =============================================================================== inspection
def quantized_label(model: Any) -> str | None:
    """The dtype label of a quantized model, read from its modules and weights (no import of
    torchao): ``qint8`` for torch.ao quantized modules and torchao int8 weights with dynamic
    activation quantization, ``int8-weight`` / ``int4-weight`` for torchao weight-only int8 /
    int4; ``None`` for a model that is not quantized."""
    label = None
    for m in model.modules():
        if ".quantized" in type(m).__module__:
            return "qint8"
        for p in m.parameters(recurse=False):
            kind = type(p)
            if not kind.__module__.startswith("torchao"):
                continue
            name = kind.__name__
            if name.startswith("Int4"):
                label = label or "int4-weight"
            elif name.startswith("Int8") or "AffineQuantized" in name:
                if getattr(p, "act_quant_kwargs", None) is not None:
                    return "qint8"
                label = label or "int8-weight"
    return label


def weight_bytes(model: Any) -> int:
    """Bytes of a model's parameters and buffers as stored: int8 data, scales and zero points of
    quantized weights counted as they are (:func:`effplan.candidates.storage_tensors`)."""
    from .candidates import storage_tensors

    seen: set[int] = set()
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) in seen:
            continue
        seen.add(id(t))
        total += sum(s.numel() * s.element_size() for s in storage_tensors(t))
    return int(total)


def _zero_preserving() -> tuple[type, ...]:
    from torch import nn

    return (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU,
            nn.Mish, nn.Hardswish, nn.Hardtanh, nn.Softsign, nn.Tanhshrink, nn.Dropout, nn.Identity)


def _plain_linear(m: Any) -> bool:
    from torch import nn

    return type(m) is nn.Linear


def prunable_pairs(model: Any) -> list[tuple[str, str]]:
    """Candidate (producer, consumer) Linear pairs for structured pruning, by module name:
    in an ``nn.Sequential``, a Linear followed (through modules with f(0) = 0: ReLU, GELU, SiLU,
    Tanh, Dropout, ...) by a Linear that takes its outputs; in any other module, two Linear
    children ``a: d -> h``, ``b: h -> d`` with ``h > d`` (an expand-and-contract MLP such as
    ``nn.TransformerEncoderLayer``'s linear1/linear2). :func:`slim` keeps only the pairs whose
    shrinking equals masking on a check batch."""
    from torch import nn

    pairs: list[tuple[str, str]] = []
    used_a: set[str] = set()
    used_b: set[str] = set()
    keep = _zero_preserving()
    for prefix, mod in model.named_modules():
        join = (lambda n: f"{prefix}.{n}" if prefix else n)  # noqa: E731
        children = list(mod.named_children())
        if isinstance(mod, nn.Sequential):
            for i, (na, a) in enumerate(children):
                if not _plain_linear(a):
                    continue
                j = i + 1
                while j < len(children) and isinstance(children[j][1], keep):
                    j += 1
                if j < len(children) and _plain_linear(children[j][1]) \
                        and children[j][1].in_features == a.out_features:
                    pa, pb = join(na), join(children[j][0])
                    if pa not in used_a and pb not in used_b:
                        pairs.append((pa, pb))
                        used_a.add(pa)
                        used_b.add(pb)
            continue
        lin = [(n, c) for n, c in children if _plain_linear(c)]
        for na, a in lin:
            if a.out_features <= a.in_features:  # expand first (d -> h, h > d), then contract
                continue
            for nb, b in lin:
                if nb == na or b.in_features != a.out_features or b.out_features != a.in_features:
                    continue
                pa, pb = join(na), join(nb)
                if pa not in used_a and pb not in used_b:
                    pairs.append((pa, pb))
                    used_a.add(pa)
                    used_b.add(pb)
                    break
    return pairs


def find_stack(model: Any) -> str | None:
    """Dotted name of the model's stack of repeated blocks (see ``layers-half``), or ``None``.
    ``nn.TransformerEncoder`` / ``nn.TransformerDecoder``: their ``layers``; else the
    ``nn.ModuleList`` or ``nn.Sequential`` of >= 2 children of one class, each with children of its
    own (a block, not a single layer), holding the most parameters."""
    from torch import nn

    for name, mod in model.named_modules():
        if isinstance(mod, nn.TransformerEncoder | nn.TransformerDecoder) and len(mod.layers) >= 2:
            return f"{name}.layers" if name else "layers"
    best, best_params = None, -1
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.ModuleList | nn.Sequential) or len(mod) < 2 or not name:
            continue
        kids = list(mod.children())
        if len({type(k) for k in kids}) != 1 or not any(True for _ in kids[0].children()):
            continue
        n = sum(p.numel() for p in mod.parameters())
        if n > best_params:
            best, best_params = name, n
    return best


def _get(model: Any, name: str) -> Any:
    return model.get_submodule(name) if name else model


def _set(model: Any, name: str, value: Any) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(_get(model, parent), leaf, value)


# =============================================================================== recipes
def _torchao_configs(name: str) -> Any:
    from torchao.quantization import (Int4WeightOnlyConfig, Int8DynamicActivationInt8WeightConfig,
                                      Int8WeightOnlyConfig)

    if name == "int8-dynamic":
        return Int8DynamicActivationInt8WeightConfig(set_inductor_config=False)
    if name == "int8-weight":
        return Int8WeightOnlyConfig(set_inductor_config=False)
    return Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d",
                                set_inductor_config=False)


def _quantizable(module: Any, fqn: str = "") -> bool:
    # nn.MultiheadAttention's out_proj (NonDynamicallyQuantizableLinear) is read as a raw
    # weight by the attention kernel: left in float, as torch.ao's quantize_dynamic does
    return _plain_linear(module)


def _int4_ok(module: Any, fqn: str = "") -> bool:
    return _plain_linear(module) and module.in_features % 128 == 0 and module.out_features % 8 == 0


def _quantize(name: str, model: Any, device: str | None) -> Any:
    if name == "int8-dynamic-legacy":
        import torch
        from torch import nn

        if not hasattr(torch, "ao") or not hasattr(torch.ao.quantization, "quantize_dynamic"):
            raise InfeasibleRecipeError("this torch no longer ships torch.ao.quantization.quantize_dynamic")
        with warnings.catch_warnings():
            # deprecated in favour of torchao: this recipe IS the labelled fallback, so the
            # notice is not repeated on every build
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
            return torch.ao.quantization.quantize_dynamic(model.eval(), {nn.Linear}, dtype=torch.qint8)
    status = torchao_status()
    if not status.available:
        raise InfeasibleRecipeError(status.reason)
    from torchao.quantization import quantize_

    model = model.eval()
    if name == "int4-weight":
        import torch

        model = model.to(device=device, dtype=torch.bfloat16)
    with _captured():
        quantize_(model, _torchao_configs(name), filter_fn=_int4_ok if name == "int4-weight" else _quantizable)
    if name == "int4-weight" and not callable(getattr(model, "prefill", None)):
        model = _Bf16Inputs(model)
    return model


def _bf16_inputs_class() -> type:
    import torch
    from torch import nn

    class Bf16Inputs(nn.Module):
        """int4 weight-only runs on bf16 activations: floating inputs are cast to bf16 on the way
        in (a generative model's token ids need no cast)."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            def cast(v: Any) -> Any:
                return v.to(torch.bfloat16) if isinstance(v, torch.Tensor) and v.is_floating_point() else v

            return self.inner(*(cast(a) for a in args), **{k: cast(v) for k, v in kwargs.items()})

    return Bf16Inputs


def _Bf16Inputs(inner: Any) -> Any:  # noqa: N802  (a class made on first use: torch is imported lazily)
    return _bf16_inputs_class()(inner)


def _prune(model: Any, pairs: Sequence[tuple[str, str]], fraction: float) -> tuple[Any, list[str]]:
    """Remove the ``round(fraction x out)`` output channels of smallest L1 norm from each
    producer (and the matching inputs of its consumer); returns the model and what was done."""
    import torch
    from torch import nn

    keep: dict[str, Any] = {}
    notes = []
    for a, _ in pairs:
        w = _get(model, a).weight.detach()
        out = w.shape[0]
        removed = min(out - 1, math.floor(fraction * out + 0.5))
        score = w.abs().sum(dim=1).float()
        order = sorted(range(out), key=lambda i: (-float(score[i]), i))  # largest L1 first, ties by index
        keep[a] = torch.tensor(sorted(order[:out - removed]), dtype=torch.long)
        notes.append(f"{a}: {out} -> {out - removed} output channels")
    consumer_of = {b: a for a, b in pairs}
    for name in dict.fromkeys([n for p in pairs for n in p]):
        old = _get(model, name)
        rows = keep.get(name)
        cols = keep.get(consumer_of[name]) if name in consumer_of else None
        w = old.weight.detach()
        if rows is not None:
            w = w[rows]
        if cols is not None:
            w = w[:, cols]
        new = nn.Linear(w.shape[1], w.shape[0], bias=old.bias is not None, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            new.weight.copy_(w)
            if old.bias is not None:
                new.bias.copy_(old.bias.detach()[rows] if rows is not None else old.bias.detach())
        new.train(old.training)
        _set(model, name, new)
    return model, notes


def _mask(model: Any, pairs: Sequence[tuple[str, str]], fraction: float) -> Any:
    """The same channels as :func:`_prune`, zeroed in place instead of removed (the check)."""
    import torch

    for a, _ in pairs:
        lin = _get(model, a)
        w = lin.weight.detach()
        out = w.shape[0]
        removed = min(out - 1, math.floor(fraction * out + 0.5))
        score = w.abs().sum(dim=1).float()
        order = sorted(range(out), key=lambda i: (-float(score[i]), i))
        drop = torch.tensor(sorted(order[out - removed:]), dtype=torch.long)
        with torch.no_grad():
            lin.weight[drop] = 0
            if lin.bias is not None:
                lin.bias[drop] = 0
    return model


def _drop_layers(model: Any, stack: str) -> tuple[Any, list[str]]:
    from torch import nn

    blocks = _get(model, stack)
    n = len(blocks)
    kept = list(range(0, n, 2))
    cls = nn.ModuleList if isinstance(blocks, nn.ModuleList) else nn.Sequential
    new = cls([blocks[i] for i in kept])
    _set(model, stack, new)
    for new_idx, blk in enumerate(new):
        for m in blk.modules():
            if isinstance(getattr(m, "layer_idx", None), int) and not isinstance(m.layer_idx, bool):
                m.layer_idx = new_idx
    parent = _get(model, stack.rpartition(".")[0])
    if isinstance(getattr(parent, "num_layers", None), int):
        parent.num_layers = len(kept)
    for m in model.modules():
        cfg = getattr(m, "config", None)
        for attr in ("num_hidden_layers", "n_layer", "num_layers"):
            if cfg is not None and not isinstance(cfg, tuple) and getattr(cfg, attr, None) == n:
                with contextlib.suppress(AttributeError, TypeError, ValueError):
                    setattr(cfg, attr, len(kept))  # a frozen config (the built-in decoders) stays
    return model, [f"{stack}: {n} -> {len(kept)} blocks (kept {', '.join(map(str, kept))})"]


def apply_recipe(name: str, model: Any, plan: Mapping[str, Any] | None = None, *,
                 device: str | None = None) -> Any:
    """Apply recipe ``name`` to ``model`` (in place where possible) and return the result.
    ``plan`` holds what :func:`slim` decided for this model (``pairs`` to prune, the ``stack``,
    a distilled student's ``state`` and its ``structure``). Casts (``bf16``/``fp16``) return the
    model unchanged: :class:`~effplan.Candidate` casts it and its inputs by its ``dtype``."""
    spec = recipe_spec(name)
    plan = dict(plan or {})
    if spec.needs_torchao or name == "int8-dynamic-legacy":
        return _quantize(name, model, device)
    if spec.prune_fraction is not None:
        return _prune(model, plan["pairs"], spec.prune_fraction)[0]
    if name == "layers-half":
        return _drop_layers(model, plan["stack"])[0]
    if name == "distill":
        student = _structure(model, plan["structure"])
        student.load_state_dict(plan["state"])
        return student.eval()
    return model


def _structure(model: Any, structure: Mapping[str, Any]) -> Any:
    if structure["kind"] == "layers-half":
        return _drop_layers(model, structure["stack"])[0]
    return _prune(model, structure["pairs"], structure["fraction"])[0]


# =============================================================================== variants
class VariantBuilder:
    """The ``model_fn`` of a variant: ``base_fn()`` (the baseline's own ``model_fn``), then the
    recipe. Cloudpickles with the baseline's ``model_fn``; ``info`` is its :class:`VariantInfo`."""

    def __init__(self, base_fn: Callable[[], Any], recipe: str, info: VariantInfo,
                 plan: Mapping[str, Any] | None = None, device: str | None = None,
                 base_dtype: str | None = None) -> None:
        self.base_fn = base_fn
        self.recipe = recipe
        self.info = info
        self.plan = dict(plan or {})
        self.device = device
        self.base_dtype = base_dtype  # a float dtype the baseline is cast to, applied before the recipe

    def __call__(self) -> Any:
        import torch

        from .candidates import FLOAT_DTYPES

        if not self.info.feasible:
            raise InfeasibleRecipeError(f"recipe {self.recipe!r} on {self.info.baseline!r} is infeasible: "
                                        f"{self.info.reason}")
        model = self.base_fn()
        if self.base_dtype in FLOAT_DTYPES and isinstance(model, torch.nn.Module):
            model = model.to(dtype=getattr(torch, self.base_dtype))
        return apply_recipe(self.recipe, model, self.plan, device=self.device)

    def __repr__(self) -> str:
        return f"VariantBuilder({self.info.baseline!r} + {self.recipe!r})"


def variant_info(candidate: Any) -> VariantInfo | None:
    """The :class:`VariantInfo` of a candidate made by :func:`slim`; ``None`` for any other."""
    fn = getattr(candidate, "model_fn", None)
    return fn.info if isinstance(fn, VariantBuilder) else None


def feasible(candidates: Iterable[Any]) -> list[Any]:
    """The candidates that are not infeasible slim variants (every other candidate is kept)."""
    return [c for c in candidates if (variant_info(c) is None or variant_info(c).feasible)]


def infeasible(candidates: Iterable[Any]) -> dict[str, str]:
    """name -> reason of every infeasible slim variant among ``candidates``."""
    out = {}
    for c in candidates:
        info = variant_info(c)
        if info is not None and not info.feasible:
            out[c.name] = info.reason
    return out


def describe(candidates: Iterable[Any]) -> Any:
    """A table of slim variants: candidate, recipe, dtype, feasible, what the recipe does, why
    it is infeasible ("" when it is not) and what was done (notes)."""
    import pandas as pd

    rows = []
    for c in candidates:
        info = variant_info(c)
        rows.append({"candidate": c.name, "recipe": info.recipe if info else "",
                     "dtype": c.dtype or "", "feasible": True if info is None else info.feasible,
                     "what": info.what if info else "", "why_not": info.reason if info else "",
                     "notes": "; ".join(info.notes) if info else ""})
    return pd.DataFrame(rows, columns=["candidate", "recipe", "dtype", "feasible", "what", "why_not", "notes"])


def _is_generation(candidate: Any) -> bool:
    from .generative import GenerationCandidate

    return isinstance(candidate, GenerationCandidate)


def _resolve(device: Any) -> str:
    from ..devices.hardware import normalize_device

    return normalize_device(device, check_available=True)


def _check_inputs(candidate: Any, device: str) -> Any:
    import torch

    if _is_generation(candidate):
        gen = torch.Generator().manual_seed(0)
        return torch.randint(0, candidate.vocab_size, (2, 8), generator=gen).to(device)
    return candidate.make_inputs(2, device)


def _forward(candidate: Any, model: Any, inputs: Any) -> Any:
    """Outputs of one check forward: a classifier's outputs, or a generative model's logits of
    a prefill and one decode step (both through the protocol)."""
    import torch

    from .candidates import call_model, tensor_leaves

    with torch.inference_mode():
        if _is_generation(candidate):
            from .generative import as_generator

            gen = as_generator(model)
            cache = gen.prefill(inputs)
            logits, _ = gen.step(inputs[:, -1:], cache)
            return [logits.float()]
        return [t.float() for t in tensor_leaves(call_model(model, inputs)) if t.is_floating_point()]


def _build_for(candidate: Any, model_fn: Callable[[], Any], device: str) -> Any:
    """``model_fn()`` cast and moved as ``candidate`` builds it (eval mode)."""
    import torch

    from .candidates import FLOAT_DTYPES

    model = model_fn()
    if candidate.dtype in FLOAT_DTYPES and isinstance(model, torch.nn.Module):
        model = model.to(dtype=getattr(torch, candidate.dtype))
    if isinstance(model, torch.nn.Module):
        model = model.to(device).eval()
    return model


def _max_diff(a: list[Any], b: list[Any]) -> float:
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        raise InfeasibleRecipeError("the variant's outputs do not have the baseline's shapes")
    return max((float((x.cpu() - y.cpu()).abs().max()) for x, y in zip(a, b, strict=True)), default=0.0)


def _verified_pairs(candidate: Any, base_fn: Callable[[], Any], pairs: list[tuple[str, str]],
                    fraction: float, device: str, inputs: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """The pairs whose removal equals masking (same outputs within float rounding)."""
    def same(use: list[tuple[str, str]]) -> bool:
        try:
            masked = _forward(candidate, _mask(_build_for(candidate, base_fn, device), use, fraction), inputs)
            shrunk = _forward(candidate, _prune(_build_for(candidate, base_fn, device), use, fraction)[0], inputs)
            scale = max((float(t.abs().max()) for t in masked), default=1.0) or 1.0
            return _max_diff(masked, shrunk) <= 1e-4 * scale + 1e-6
        except Exception:  # a pair that breaks the model when shrunk is simply not prunable
            return False

    if pairs and same(pairs):
        return pairs, []
    good = [p for p in pairs if same([p])]
    skipped = [f"{a} -> {b}: shrinking it is not the same as masking it (its outputs are used "
               "elsewhere or through an op with f(0) != 0); left alone" for a, b in pairs if (a, b) not in good]
    return good, skipped


def _train_student(candidate: Any, teacher: Any, student: Any, data: Any, cfg: DistillConfig,
                   device: str) -> tuple[dict[str, Any], list[str]]:
    import torch
    import torch.nn.functional as F

    from .candidates import call_model
    from .data import gather_xy

    x, y = gather_xy(data, "data")
    n = int(y.shape[0])

    def take(obj: Any, idx: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return obj[idx].to(device)
        if isinstance(obj, Mapping):
            return {k: take(v, idx) for k, v in obj.items()}
        if isinstance(obj, tuple | list):
            return type(obj)(take(v, idx) for v in obj)
        return obj

    def logits_of(model: Any, xb: Any) -> Any:
        out = call_model(model, xb)
        return out.logits if not isinstance(out, torch.Tensor) and hasattr(out, "logits") else out

    teacher.eval()
    student.train()
    opt = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=cfg.lr)
    steps = 0
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        for _ in range(cfg.epochs):
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                xb, yb = take(x, idx), y[idx].to(device)
                logits = logits_of(student, xb)
                with torch.no_grad():
                    t_logits = logits_of(teacher, xb)
                c = logits.shape[-1]
                hard = F.cross_entropy(logits.float().reshape(-1, c), yb.reshape(-1), ignore_index=-100)
                loss = distillation_loss(logits.float(), t_logits.float(), hard,
                                         temperature=cfg.temperature, alpha=cfg.alpha)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
    student.eval()
    state = {k: v.detach().to("cpu").clone() for k, v in student.state_dict().items()}
    return state, [f"distilled for {cfg.epochs} epochs ({steps} steps of {cfg.batch_size}) on {n} training "
                   f"examples: T = {cfg.temperature:g}, alpha = {cfg.alpha:g}, Adam lr {cfg.lr:g}"]


def _plan(spec: Recipe, candidate: Any, base_model: Any, device: str, inputs: Any, data: Any,
          cfg: DistillConfig) -> tuple[str, dict[str, Any], list[str]]:
    """(reason it is infeasible or "", the plan for :func:`apply_recipe`, notes)."""
    import torch

    name = spec.name
    if not isinstance(base_model, torch.nn.Module):
        return (f"the baseline's model_fn returns a {type(base_model).__name__}, not an nn.Module: "
                "slim recipes change a module's layers"), {}, []
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if spec.needs_torchao:
        status = torchao_status()
        if not status.available:
            return status.reason, {}, []
        if name == "int4-weight":
            if kind != "cuda":
                return ("torchao's int4 weight-only kernels need a CUDA device (tinygemm tile packing; "
                        f"its other int4 packings need the mslk package or an XPU/NPU); this device is {device}"), {}, []
            if not any(_int4_ok(m) for m in base_model.modules()):
                return "no Linear layer with in_features divisible by 128 and out_features by 8 (int4 groups)", {}, []
        if not any(_quantizable(m) for m in base_model.modules()):
            return "the model has no nn.Linear layer to quantize", {}, []
        return "", {}, []
    if name == "int8-dynamic-legacy":
        if kind != "cpu":
            return "torch.ao's dynamic int8 kernels (fbgemm/qnnpack) run only on CPU", {}, []
        if not any(_plain_linear(m) for m in base_model.modules()):
            return "the model has no nn.Linear layer to quantize", {}, []
        return "", {}, ["legacy fallback: torch.ao.quantization.quantize_dynamic is deprecated by PyTorch "
                        "(removal announced); torchao's int8-dynamic is the supported recipe"]
    if name in ("bf16", "fp16"):
        notes = []
        if name == "fp16" and kind == "cpu":
            notes.append("fp16 on a CPU: runs through PyTorch's CPU half kernels, which are usually slower "
                         "than float32 (few CPUs have native fp16 matmuls): measured here, not assumed")
        if not any(p.is_floating_point() for p in base_model.parameters()):
            return "the model has no floating-point weights to cast", {}, []
        return "", {}, notes
    if spec.prune_fraction is not None:
        pairs = prunable_pairs(base_model)
        if not pairs:
            return ("no Linear layer whose outputs feed only the next Linear (through an activation with "
                    "f(0) = 0): nothing to prune structurally"), {}, []
        good, skipped = _verified_pairs(candidate, candidate.model_fn, pairs, spec.prune_fraction, device, inputs)
        if not good:
            return "no Linear pair could be shrunk without changing more than the masked channels", {}, skipped
        return "", {"pairs": good}, skipped
    if name == "layers-half":
        stack = find_stack(base_model)
        if stack is None:
            return (f"no stack of repeated blocks in {type(base_model).__name__} (nn.TransformerEncoder, or an "
                    "nn.ModuleList / nn.Sequential of >= 2 blocks of one class): layers-half applies to "
                    "transformer stacks"), {}, []
        return "", {"stack": stack}, []
    if name == "distill":
        if data is None:
            return "distill needs training data: pass data=(inputs, labels) (never the held-out data)", {}, []
        stack = find_stack(base_model)
        if stack is not None:
            structure: dict[str, Any] = {"kind": "layers-half", "stack": stack}
        else:
            pairs = prunable_pairs(base_model)
            good, _ = _verified_pairs(candidate, candidate.model_fn, pairs, 0.5, device, inputs) if pairs else ([], [])
            if not good:
                return ("no student structure: the model has neither a stack of blocks (layers-half) nor "
                        "prunable Linear pairs (prune-50)"), {}, []
            structure = {"kind": "prune-50", "pairs": good, "fraction": 0.5}
        teacher = _build_for(candidate, candidate.model_fn, device)
        student = _structure(_build_for(candidate, candidate.model_fn, device), structure)
        state, notes = _train_student(candidate, teacher, student, data, cfg, device)
        return "", {"structure": structure, "state": state}, [f"student: {structure['kind']}"] + notes
    return f"recipe {name!r} has no implementation", {}, []


def _variant(candidate: Any, spec: Recipe, info: VariantInfo, plan: Mapping[str, Any], device: str | None,
             pin: str | None) -> Any:
    tags = tuple(t for t in candidate.tags if t != "baseline")
    tags = tuple(dict.fromkeys((spec.tag,) + tuple(t for t in tags if t != spec.tag)
                               + (f"{TAG_RECIPE}{spec.name}", f"{TAG_VARIANT_OF}{candidate.name}")
                               + (() if info.feasible else (TAG_INFEASIBLE,))))
    builder = VariantBuilder(candidate.model_fn, spec.name, info, plan, device, candidate.dtype)
    kw: dict[str, Any] = dict(name=f"{candidate.name}-{spec.name}", model_fn=builder, tags=tags,
                              dtype=spec.dtype or candidate.dtype, quality=None)
    if pin is not None:
        kw["device"] = pin
    if _is_generation(candidate):
        kw["perplexity"] = None
    return replace(candidate, **kw)


def slim(candidate: Any, recipes: Sequence[str] | str = DEFAULT_RECIPES, *, data: Any = None,
         device: Any = None, check: bool = True, distill: DistillConfig | None = None) -> list[Any]:
    """One variant of ``candidate`` per recipe (see the module docstring), in the order given.

    Parameters
    ----------
    candidate: the baseline, an :class:`~effplan.Candidate` or
        :class:`~effplan.GenerationCandidate` whose ``model_fn`` returns an ``nn.Module``.
    recipes: recipe names (:data:`RECIPES`, ``prune-<pct>``); default :data:`DEFAULT_RECIPES`.
    data: TRAINING data ``(inputs, labels)`` (tensors or a DataLoader of such batches) for the
        ``distill`` recipe; without it ``distill`` is infeasible with that reason.
    device: where the variants will run (decides e.g. ``int4-weight``); default the baseline's
        ``device``, else ``"auto"`` (the first GPU if any, as :func:`effplan.measure`).
    check: build each variant here once and run it on a check batch of 2 (a recipe that fails
        becomes infeasible with the error as its reason; ``VariantInfo.check_max_abs_diff``
        gives its largest output difference from the baseline).
    distill: :class:`DistillConfig` of the ``distill`` recipe.

    The baseline is built here (to see which recipes apply) and, with ``check``, each variant
    once; ``distill`` trains here. Every other build happens where the variant is measured.
    """
    from .candidates import Candidate
    from .generative import GenerationCandidate

    if not isinstance(candidate, Candidate | GenerationCandidate):
        raise ValidationError("candidate", f"expected a Candidate or GenerationCandidate, got "
                              f"{type(candidate).__name__}", where="slim")
    names = (recipes,) if isinstance(recipes, str) else tuple(recipes)
    if not names:
        raise ValidationError("recipes", "give at least one recipe", where="slim")
    if len(set(names)) != len(names):
        raise ValidationError("recipes", f"each recipe once, got {list(names)}", where="slim")
    specs = [recipe_spec(n) for n in names]
    cfg = distill if distill is not None else DistillConfig()
    if not isinstance(cfg, DistillConfig):
        raise ValidationError("distill", f"expected a DistillConfig, got {type(cfg).__name__}", where="slim")
    dev = _resolve(candidate.device or device)
    if any(s.needs_torchao for s in specs) and not torchao_status().available:
        warnings.warn(f"effplan.slim: {torchao_status().reason}; the torchao recipes "
                      f"({', '.join(s.name for s in specs if s.needs_torchao)}) are infeasible",
                      SlimWarning, stacklevel=2)
    import torch

    # building models here (layer initialisation) must not move the caller's random streams
    with torch.random.fork_rng(devices=[dev] if dev.startswith("cuda") else []):
        return _slim(candidate, specs, data, dev, check, cfg)


def _slim(candidate: Any, specs: list[Recipe], data: Any, dev: str, check: bool, cfg: DistillConfig) -> list[Any]:
    base_model = _build_for(candidate, candidate.model_fn, dev)
    inputs = _check_inputs(candidate, dev)
    base_out = None
    if check:
        try:
            base_out = _forward(candidate, base_model, inputs)
        except Exception as exc:  # the baseline itself must run: that is the caller's error
            raise ValidationError("candidate", f"the baseline {candidate.name!r} fails on a check batch of 2: "
                                  f"{type(exc).__name__}: {exc}", where="slim") from exc
    out = []
    for spec in specs:
        try:
            reason, plan, notes = _plan(spec, candidate, base_model, dev, inputs, data, cfg)
        except InfeasibleRecipeError as exc:
            reason, plan, notes = str(exc), {}, []
        except ValidationError:  # bad input (e.g. distillation data): the caller's to fix
            raise
        except Exception as exc:  # the recipe breaks on this model: infeasible, with the error
            reason, plan, notes = f"{type(exc).__name__}: {exc}", {}, []
        pin = dev if spec.name == "int4-weight" else None
        info = VariantInfo(spec.name, candidate.name, not reason, reason, tuple(notes), spec.what)
        variant = _variant(candidate, spec, info, plan, dev, pin)
        if info.feasible and check:
            try:
                with _captured() as caught:
                    built = _build_for(variant, variant.model_fn, dev)
                    diff = _max_diff(base_out, _forward(variant, built, _check_inputs(variant, dev)))
                info = replace(info, check_max_abs_diff=diff,
                               notes=info.notes + tuple(f"while building: {c}" for c in dict.fromkeys(caught)))
                del built
            except Exception as exc:  # the recipe does not run here: infeasible, with the error
                info = replace(info, feasible=False, reason=f"fails on a check batch on {dev}: "
                               f"{type(exc).__name__}: {exc}")
            variant = _variant(candidate, spec, info, plan, dev, pin)
        out.append(variant)
    return out


class _CallableModule(types.ModuleType):
    """``effplan.slim`` is both this module (``effplan.slim.RECIPES``, ``variant_info``...) and
    the function :func:`slim`: ``effplan.slim(candidate)`` calls it. (A submodule and a function
    of the same name cannot otherwise live side by side on the package: importing the module
    would replace the function.)"""

    def __call__(self, *args: Any, **kwargs: Any) -> list[Any]:
        return slim(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
