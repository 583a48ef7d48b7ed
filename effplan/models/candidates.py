"""A candidate model: how to build it, how to feed it, and how good it is.

A :class:`Candidate` is a recipe, not a model: ``model_fn()`` builds a fresh ``nn.Module`` and
``input_fn(batch_size)`` makes ONE batch of inputs. :func:`effplan.measure` calls both once per
measured point (candidate x batch size), so a point that crashes cannot leave a half-trained or
half-moved model behind for the next one.

Conventions
-----------
* Inputs: ``input_fn(batch_size)`` returns a tensor (called as ``model(x)``), a tuple/list of
  tensors (``model(*xs)``) or a dict of tensors (``model(**kw)``). Its first dimension is the
  batch dimension.
* ``dtype``: ``None`` means "whatever ``model_fn`` built" (reported as the dtype of its first
  floating parameter, or ``qint8`` for a quantized model). A floating dtype (``"float16"``,
  ``"bfloat16"``, ``"float32"``, ``"float64"``, or the ``torch.dtype``) casts the model and every
  floating input tensor to it. ``"qint8"``/``"int8"`` is a label only: ``model_fn`` must return
  the quantized model itself.
* ``device``: ``None`` means the device of the sweep; set it to pin a candidate (e.g. a dynamic
  int8 model, which PyTorch only runs on CPU, is pinned to ``"cpu"``).
* Training loss (``mode="training"``): ``loss_fn(outputs, targets) -> scalar tensor``, where
  ``targets = target_fn(batch_size)`` or ``None`` when no ``target_fn`` is given. Defaults:
  with a ``target_fn``, cross-entropy of the outputs (logits) against the targets; without one,
  the sum over the output tensors of their mean (a cost-faithful stand-in: it back-propagates
  through every output element, which is what the timing needs, not a meaningful objective).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
#: quantized dtype labels: ``qint8`` dynamic int8 (int8 weights, activations quantized per call:
#: torch.ao ``quantize_dynamic`` or torchao ``Int8DynamicActivationInt8WeightConfig``), ``int8``
#: static int8, ``int8-weight`` / ``int4-weight`` torchao weight-only (the matmuls run in the
#: activations' float dtype). See :mod:`effplan.slim` and ``effplan.catalog.DTYPE_KINDS``.
QUANT_DTYPES = ("qint8", "int8", "quint8", "int8-weight", "int4-weight")


def dtype_name(dtype: Any, where: str | None = None) -> str | None:
    """The one dtype rule of both candidate kinds: ``None``, a torch dtype or a name (``"fp16"``,
    ``"bf16"``, ``"half"``... accepted as aliases) -> its canonical name in :data:`FLOAT_DTYPES` or
    :data:`QUANT_DTYPES`; anything else is a ValidationError naming ``dtype``."""
    if dtype is None:
        return None
    name = str(dtype)
    if name.startswith("torch."):
        name = name[len("torch."):]
    aliases = {"half": "float16", "float": "float32", "double": "float64", "fp16": "float16",
               "bf16": "bfloat16", "fp32": "float32"}
    name = aliases.get(name, name)
    if name not in FLOAT_DTYPES + QUANT_DTYPES:
        raise ValidationError("dtype", f"{dtype!r} is not one of {FLOAT_DTYPES + QUANT_DTYPES}", where=where)
    return name


@dataclass(frozen=True)
class Candidate:
    """One model to measure.

    Parameters
    ----------
    name:
        Unique, non-empty name; it is the ``candidate`` column of the measurements frame.
    model_fn:
        ``model_fn() -> nn.Module``; should build a FRESH model on each call (training mode
        updates its weights).
    input_fn:
        ``input_fn(batch_size: int)`` -> the inputs of one batch (tensor, tuple/list or dict).
    tags:
        Free labels, e.g. ``("baseline",)``, ``("slim",)``, ``("distilled",)``, ``("quantized",)``.
    quality:
        Quality score of the candidate (higher is better), e.g. held-out accuracy in [0, 1];
        ``None`` when unknown. Lets cost be set against quality in the plan.
    quality_metric:
        What ``quality`` is (``"accuracy"`` by default).
    dtype, device:
        See the module docstring.
    loss_fn, target_fn:
        Training-mode loss; see the module docstring.
    seed:
        The seed the weights came from (training or initialisation), when known; recorded as
        ``seed`` on measurement rows (:mod:`effplan.reproducibility`). ``None`` = unknown.
    """

    name: str
    model_fn: Callable[[], Any]
    input_fn: Callable[[int], Any]
    tags: tuple[str, ...] = field(default=(), kw_only=True)
    quality: float | None = field(default=None, kw_only=True)
    dtype: str | None = field(default=None, kw_only=True)
    device: str | None = field(default=None, kw_only=True)
    quality_metric: str = field(default="accuracy", kw_only=True)
    loss_fn: Callable[[Any, Any], Any] | None = field(default=None, kw_only=True)
    target_fn: Callable[[int], Any] | None = field(default=None, kw_only=True)
    seed: int | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        where = f"Candidate({self.name!r})" if isinstance(self.name, str) else "Candidate"
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValidationError("name", f"must be a non-empty string, got {self.name!r}",
                                  where="Candidate")
        for fname in ("model_fn", "input_fn"):
            if not callable(getattr(self, fname)):
                raise ValidationError(fname, f"must be callable, got {type(getattr(self, fname)).__name__}",
                                      where=where)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValidationError("seed", f"must be an integer or None, got {self.seed!r}", where=where)
        for fname in ("loss_fn", "target_fn"):
            value = getattr(self, fname)
            if value is not None and not callable(value):
                raise ValidationError(fname, f"must be callable or None, got {type(value).__name__}",
                                      where=where)
        tags = self.tags
        if isinstance(tags, str):
            tags = (tags,)
        if not isinstance(tags, Sequence | set | frozenset) or not all(isinstance(t, str) and t for t in tags):
            raise ValidationError("tags", f"must be a sequence of non-empty strings, got {self.tags!r}",
                                  where=where)
        if any("," in t for t in tags):
            raise ValidationError("tags", "a tag may not contain ',' (tags are stored comma-separated)",
                                  where=where)
        object.__setattr__(self, "tags", tuple(tags))
        if self.quality is not None:
            try:
                q = float(self.quality)
            except (TypeError, ValueError):
                raise ValidationError("quality", f"must be a number or None, got {self.quality!r}",
                                      where=where) from None
            if q != q:  # NaN means unknown
                q = None
            object.__setattr__(self, "quality", q)
        try:
            object.__setattr__(self, "dtype", dtype_name(self.dtype))
        except ValidationError as exc:
            raise ValidationError("dtype", str(exc).split(": ", 1)[-1], where=where) from None
        if self.device is not None:
            object.__setattr__(self, "device", str(self.device))
        if not isinstance(self.quality_metric, str) or not self.quality_metric:
            raise ValidationError("quality_metric", "must be a non-empty string", where=where)

    # ------------------------------------------------------------------ building blocks
    @property
    def is_quantized(self) -> bool:
        """True when the candidate is declared quantized (dtype or ``"quantized"`` tag)."""
        return self.dtype in QUANT_DTYPES or "quantized" in self.tags

    def build_model(self, device: Any = "cpu") -> Any:
        """``model_fn()`` moved to ``device`` (and cast to ``dtype`` when it is a float dtype)."""
        import torch

        model = self.model_fn()
        if not isinstance(model, torch.nn.Module):
            raise ValidationError("model_fn", f"must return a torch.nn.Module, got {type(model).__name__}",
                                  where=f"Candidate({self.name!r})")
        if self.dtype in FLOAT_DTYPES:
            model = model.to(dtype=getattr(torch, self.dtype))
        return model.to(device)

    def make_inputs(self, batch_size: int, device: Any = "cpu") -> Any:
        """``input_fn(batch_size)`` with every tensor moved to ``device`` (floats cast to ``dtype``)."""
        return move_to(self.input_fn(int(batch_size)), device, self.dtype)

    def make_targets(self, batch_size: int, device: Any = "cpu") -> Any:
        """``target_fn(batch_size)`` moved to ``device``; ``None`` without a ``target_fn``."""
        if self.target_fn is None:
            return None
        return move_to(self.target_fn(int(batch_size)), device, None)

    def loss(self, outputs: Any, targets: Any) -> Any:
        """The training loss (scalar tensor) of one batch; see the module docstring."""
        import torch
        import torch.nn.functional as F

        if self.loss_fn is not None:
            return self.loss_fn(outputs, targets)
        if targets is not None:
            if not isinstance(outputs, torch.Tensor):
                raise ValidationError("loss_fn", "outputs are not a single logits tensor: pass loss_fn "
                                      "to train with targets", where=f"Candidate({self.name!r})")
            return F.cross_entropy(outputs.float(), targets)
        leaves = [t for t in tensor_leaves(outputs) if t.is_floating_point()]
        if not leaves:
            raise ValidationError("loss_fn", "the model returned no floating tensor to back-propagate "
                                  "from: pass loss_fn", where=f"Candidate({self.name!r})")
        return sum(t.float().mean() for t in leaves)

    def with_quality(self, quality: float | None, metric: str | None = None) -> Candidate:
        """A copy with another quality score (e.g. after evaluating it on your own data)."""
        from dataclasses import replace

        return replace(self, quality=quality, quality_metric=metric or self.quality_metric)


def tensor_leaves(obj: Any) -> list[Any]:
    """Every tensor in a tensor / tuple / list / dict nest, in order."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        return [t for v in obj.values() for t in tensor_leaves(v)]
    if isinstance(obj, tuple | list):
        return [t for v in obj for t in tensor_leaves(v)]
    return []


def storage_tensors(t: Any) -> list[Any]:
    """The plain tensors that hold ``t``'s data: ``[t]`` for an ordinary tensor; for a wrapper
    tensor subclass (torchao's ``Int8Tensor``: int8 ``qdata`` + ``scale`` + ``zero_point``) its
    inner tensors (``__tensor_flatten__``), recursively. Their bytes are what the weight costs."""
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    if not is_traceable_wrapper_subclass(t):
        return [t]
    names, _ = t.__tensor_flatten__()
    return [p for n in names if getattr(t, n, None) is not None for p in storage_tensors(getattr(t, n))]


def call_model(model: Any, inputs: Any) -> Any:
    """Call ``model`` the way :class:`Candidate` documents: tensor, ``*tuple`` or ``**dict``."""
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, tuple | list):
        return model(*inputs)
    return model(inputs)


def move_to(obj: Any, device: Any, dtype: str | None) -> Any:
    """``obj`` (a tensor or a nest of them) on ``device``; floating tensors cast to ``dtype`` when it is a
    float dtype name."""
    import torch

    if isinstance(obj, torch.Tensor):
        if dtype in FLOAT_DTYPES and obj.is_floating_point():
            return obj.to(device=device, dtype=getattr(torch, dtype))
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: move_to(v, device, dtype) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return type(obj)(move_to(v, device, dtype) for v in obj)
    return obj
