"""FLOP counting you can trust: fvcore's tracer plus a dispatch-level fallback, with the gaps shown.

Conventions
-----------
* **FLOPs = 2 x multiply-accumulates (MACs)** of the matmul-like operators: ``linear``,
  ``addmm``, ``mm``, ``matmul``, ``bmm``, ``baddbmm``, ``addbmm``, ``mv``, ``dot``, ``einsum``,
  convolutions (1d/2d/3d, grouped, depthwise, transposed), ``scaled_dot_product_attention``,
  the fused ``nn.MultiheadAttention`` kernel (``aten::_native_multi_head_attention``) and the
  fused ``nn.TransformerEncoderLayer`` kernel (``aten::_transformer_encoder_layer_fwd``).
  fvcore counts one FLOP per MAC; effplan converts, so ``total == 2 * macs`` always.
* **Attention** (``scaled_dot_product_attention`` and the fused kernels) counts the *full*
  ``Q K^T`` and ``A V`` products, ``B*H*Lq*Lk*(E + Ev)`` MACs, also with a causal or padding
  mask. This is what dense kernels compute (and what ``torch.utils.flop_counter`` counts); a
  causal-aware kernel skips about half of it, so for such kernels treat the attention part as
  an upper bound.
* **Elementwise work is not in ``total``.** Bias adds, activations, softmax, normalisation,
  residual adds, pooling, dropout in training mode ... are reported apart in
  :attr:`FlopCount.elementwise`, counted as **one per output element** of each such operator
  (the bias add of ``linear``/``conv``/``addmm``/``baddbmm`` is one per output element too;
  a fused attention kernel contributes its softmax, ``B*H*Lq*Lk``; the fused encoder layer
  contributes its biases, softmax, activation, residual adds and layer norms). How fine the
  elementwise count is depends on the engine (the tracer sees ``layer_norm``, the dispatcher
  sees ``native_layer_norm``; dropout appears differently), so compare ``elementwise`` only
  within one engine. ``total`` does not depend on the engine.
* **FLOP-free operators** (views, reshapes, indexing, copies, concatenation, comparisons,
  dropout in eval mode, random-number generation, ...) are known to cost nothing and are
  listed as ``flop-free``. Every other operator is ``unsupported``: it is listed in
  :attr:`FlopCount.unsupported`, lowers :attr:`FlopCount.coverage`, and one
  :class:`~effplan.errors.UnsupportedOperatorWarning` names it. Its FLOPs are missing from
  ``total`` (which is then a lower bound); they are never guessed.

Engines
-------
``engine="fvcore"`` traces the model with ``torch.jit.trace`` through fvcore's
``FlopCountAnalysis`` with effplan's handles set. ``engine="dispatch"`` runs the model once under
a ``torch.utils.flop_counter.FlopCounterMode`` subclass that sees every ATen operator at the
dispatch level and applies effplan's formulas (PyTorch's own table counts CPU
``scaled_dot_product_attention`` and the fused encoder layer as zero). ``engine="auto"`` (the
default) uses fvcore when the inputs are positional tensors and the model traces cleanly, and the
dispatcher for dict inputs, keyword arguments, data-dependent control flow (a ``TracerWarning``
raised from the model's own code), compiled models and anything the tracer cannot handle. When
fvcore leaves operators uncounted (a traced composite such as ``aten::tensordot``), ``"auto"``
also runs the dispatcher and keeps its count when that has the higher
:attr:`FlopCount.coverage` and either leaves nothing uncounted or counts more MACs. The
engine used and the reason for a fallback are recorded on the result.

Recurrent layers and bilinear
-----------------------------
``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (any number of layers, bi-directional, ``proj_size``,
packed sequences) count the gates' matmuls: MACs = time steps x batch x the elements of every
2-D weight matrix (``W_ih``, ``W_hh``, ``W_hr``) of every layer and direction; gate
nonlinearities, the cell update and the bias adds are elementwise (see ``_rnn_counts``). Cells
(``LSTMCell``, ``GRUCell``) run as ``linear`` + elementwise operators and are counted as such.
``nn.Bilinear`` counts what PyTorch's ``_trilinear`` computes: N*O*I2*(I1+1) MACs.

Counting runs under ``torch.no_grad()`` in the model's current train/eval mode, forks the RNG
(the caller's random stream is not advanced), and restores every module's training flag and
hook dictionaries afterwards, whatever happens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..errors import FlopCountError, UnsupportedOperatorWarning, ValidationError
from .formulas import _FLOPS_PER_MAC, NO_KERNEL_OPS, _base_name, _Tally, Engine
from .fvcore_engine import _FVCORE_MATMUL, _count_with_fvcore
from .dispatch_engine import _DISPATCH_MATMUL, _count_with_dispatch, _flop_counter_mode_total


#: Qualified names of the operators whose MACs go into ``total`` (traced or dispatch-level names).
MATMUL_LIKE_OPS: frozenset[str] = frozenset(set(_FVCORE_MATMUL) | set(_DISPATCH_MATMUL))


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FlopCount:
    """Forward-pass FLOPs of one model on one set of inputs.

    Attributes:
        total: FLOPs of the matmul-like operators, **2 x MACs** (int). Excludes ``elementwise``.
        macs: multiply-accumulates of the matmul-like operators (``total == 2 * macs``).
        elementwise: elementwise operations (bias adds, activations, softmax, normalisation,
            residual adds, pooling), one per output element; NOT included in ``total``.
        params: number of parameters of the model (shared parameters counted once).
        by_module: one row per module (``""`` is the whole model), inclusive of its submodules:
            ``module``, ``type``, ``flops``, ``macs``, ``elementwise``, ``params``.
        by_operator: one row per operator: ``operator``, ``status`` (``counted`` |
            ``elementwise`` | ``flop-free`` | ``unsupported``), ``counted`` (bool: its cost is in
            ``total`` or ``elementwise``), ``calls``, ``flops``, ``macs``, ``elementwise``.
        unsupported: operator name -> number of calls, for operators neither counted nor known
            to be FLOP-free. Their cost is missing from ``total``.
        coverage: share of the FLOPs accounted for, FLOP-weighted: counted MACs / (counted MACs
            + the unsupported operators' MACs estimated from their shapes, a matmul over the first
            input's last dimension when they take two matrices, else one per output element;
            dispatch engine). Under fvcore, which gives no shapes for unsupported operators, the
            share of operator calls. 1.0 when nothing was unsupported.
        call_coverage: share of operator calls whose cost is accounted for (counted, elementwise
            or flop-free).
        engine: ``"fvcore"`` (jit trace) or ``"dispatch"`` (PyTorch dispatch level).
        fallback_reason: why ``engine="auto"`` did not use fvcore (``None`` if it did, or if
            the engine was forced).
        check_total: FLOPs reported by ``torch.utils.flop_counter.FlopCounterMode`` with its own
            formula table (``count_flops(..., check=True)``), else ``None``.
        check_diff: ``total - check_total`` (``None`` without ``check``). Non-zero where PyTorch's
            table lacks an operator (CPU attention, fused encoder layers).
        operator_calls: operator calls of one forward pass that launch work (every call except
            the views and metadata queries in :data:`NO_KERNEL_OPS`): the number of kernel
            launches and framework dispatches that a per-operator overhead applies to. The
            dispatch engine sees the operators that actually run; under fvcore a fused traced
            operator (``aten::lstm``) is one call, so the figure is then a lower bound.
    """

    total: int
    macs: int
    elementwise: int
    params: int
    by_module: pd.DataFrame = field(repr=False)
    by_operator: pd.DataFrame = field(repr=False)
    unsupported: Mapping[str, int]
    coverage: float
    engine: str
    fallback_reason: str | None = None
    check_total: int | None = None
    check_diff: int | None = None
    operator_calls: int = 0
    call_coverage: float = 1.0

    @property
    def flops(self) -> int:
        """Alias of :attr:`total` (FLOPs = 2 x MACs)."""
        return self.total

    @property
    def gflops(self) -> float:
        """:attr:`total` in units of 1e9 FLOPs."""
        return self.total / 1e9

    def flops_per_item(self, batch_size: int) -> float:
        """FLOPs per item when the counted inputs held ``batch_size`` items."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValidationError("batch_size", f"must be a positive int, got {batch_size!r}",
                                  where="FlopCount.flops_per_item")
        return self.total / batch_size

    def to_frame(self) -> pd.DataFrame:
        """One-row summary (units in column names)."""
        return pd.DataFrame([{
            "engine": self.engine,
            "flops": self.total,
            "macs": self.macs,
            "gflops": self.gflops,
            "elementwise_ops": self.elementwise,
            "params": self.params,
            "coverage": self.coverage,
            "unsupported_ops": ", ".join(f"{k} x{v}" for k, v in self.unsupported.items()),
            "check_flops": self.check_total,
            "check_diff_flops": self.check_diff,
            "operator_calls": self.operator_calls,
            "fallback_reason": self.fallback_reason,
        }])

    def __str__(self) -> str:
        gaps = (f", unsupported: {', '.join(self.unsupported)}" if self.unsupported else "")
        return (f"FlopCount({self.total:,} FLOPs = 2 x {self.macs:,} MACs, elementwise "
                f"{self.elementwise:,}, params {self.params:,}, engine={self.engine}, "
                f"coverage {self.coverage:.1%}{gaps})")



# --------------------------------------------------------------------------------------------
# count_flops
# --------------------------------------------------------------------------------------------


def _normalise_inputs(inputs: Any, kwargs: Mapping[str, Any] | None,
                      ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    extra = dict(kwargs or {})
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ValidationError("kwargs", f"must be a mapping of argument name to value, got "
                              f"{type(kwargs).__name__}", where="count_flops")
    if isinstance(inputs, torch.Tensor):
        args: tuple[Any, ...] = (inputs,)
    elif isinstance(inputs, Mapping):
        clash = set(inputs) & set(extra)
        if clash:
            raise ValidationError("kwargs", f"given both in inputs and kwargs: {sorted(clash)}",
                                  where="count_flops")
        return (), {**dict(inputs), **extra}
    elif isinstance(inputs, (tuple, list)):
        args = tuple(inputs)
    elif inputs is None:
        args = ()
    else:
        raise ValidationError("inputs", "must be a tensor, a tuple/list of positional arguments "
                              f"or a dict of keyword arguments, got {type(inputs).__name__}",
                              where="count_flops")
    return args, extra


def _rng_devices(args: tuple[Any, ...], kwargs: dict[str, Any], model: nn.Module) -> list[int]:
    devices = set()
    tensors = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)]
    tensors += list(model.parameters())[:1]
    for t in tensors:
        if t.device.type == "cuda" and t.device.index is not None:
            devices.add(t.device.index)
    return sorted(devices)


@contextlib.contextmanager
def _model_preserved(model: nn.Module, devices: list[int]) -> Iterator[None]:
    """Restore training flags and hook dicts, fork the RNG, disable autograd."""
    modules = list(model.modules())
    training = [m.training for m in modules]
    hook_attrs = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                  "_backward_pre_hooks", "_forward_hooks_with_kwargs",
                  "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called")
    hooks = [{a: dict(getattr(m, a)) for a in hook_attrs if hasattr(m, a)} for m in modules]
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            yield
    finally:
        for m, flag, saved in zip(modules, training, hooks):
            m.training = flag
            for attr, content in saved.items():
                current = getattr(m, attr)
                for key in [k for k in current if k not in content]:
                    del current[key]


def _is_compiled(model: nn.Module) -> bool:
    return hasattr(model, "_orig_mod") and type(model).__name__ == "OptimizedModule"


def _fvcore_unsuitable(model: nn.Module, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> str | None:
    if kwargs:
        return "keyword/dict inputs cannot be traced by torch.jit.trace"
    if not args:
        return "no positional inputs to trace"
    if not all(isinstance(a, torch.Tensor) for a in args):
        return "non-tensor positional inputs cannot be traced by torch.jit.trace"
    if isinstance(model, torch.jit.ScriptModule):
        return "TorchScript modules are counted at the dispatch level"
    return None


def _build(model: nn.Module, tally: _Tally, unsupported: Mapping[str, int], engine: str,
           fallback_reason: str | None) -> FlopCount:
    # per-operator table
    rows = []
    for op, calls in tally.calls.items():
        status = tally.status[op]
        rows.append({
            "operator": op,
            "status": status,
            "counted": status in ("counted", "elementwise"),
            "calls": int(calls),
            "flops": _FLOPS_PER_MAC * int(tally.macs[op]),
            "macs": int(tally.macs[op]),
            "elementwise": int(tally.ew[op]),
        })
    by_operator = pd.DataFrame(rows, columns=["operator", "status", "counted", "calls", "flops",
                                              "macs", "elementwise"])
    by_operator = by_operator.sort_values(["flops", "elementwise", "calls", "operator"],
                                          ascending=[False, False, False, True],
                                          ignore_index=True)
    by_operator = by_operator.astype({"counted": bool, "calls": "int64", "flops": "int64",
                                      "macs": "int64", "elementwise": "int64"})
    # per-module table (inclusive of submodules), in named_modules() order
    mod_rows = []
    for name, module in model.named_modules():
        macs = int(tally.module_macs.get(name, 0))
        mod_rows.append({
            "module": name,
            "type": type(module).__name__,
            "flops": _FLOPS_PER_MAC * macs,
            "macs": macs,
            "elementwise": int(tally.module_ew.get(name, 0)),
            "params": int(sum(p.numel() for p in module.parameters())),
        })
    by_module = pd.DataFrame(mod_rows, columns=["module", "type", "flops", "macs", "elementwise",
                                                "params"])
    macs_total = int(sum(tally.macs.values()))
    total_calls = int(sum(tally.calls.values()))
    unsupported_calls = int(sum(unsupported.values()))
    call_coverage = 1.0 if total_calls == 0 else (total_calls - unsupported_calls) / total_calls
    # FLOP-weighted: the counted MACs against the counted + the uncounted operators' MACs
    # estimated from their shapes (dispatch engine); the call share where shapes are unknown
    est = int(sum(tally.uncounted_macs.values()))
    if not unsupported_calls:
        coverage = 1.0
    elif tally.uncounted_known and macs_total + est > 0:
        coverage = macs_total / (macs_total + est)
    else:
        coverage = call_coverage
    launching = int(sum(n for op, n in tally.calls.items()
                        if _base_name(op) not in NO_KERNEL_OPS))
    return FlopCount(
        total=_FLOPS_PER_MAC * macs_total,
        macs=macs_total,
        elementwise=int(sum(tally.ew.values())),
        params=int(sum(p.numel() for p in model.parameters())),
        by_module=by_module,
        by_operator=by_operator,
        unsupported=MappingProxyType(dict(sorted(unsupported.items()))),
        coverage=float(coverage),
        engine=engine,
        fallback_reason=fallback_reason,
        operator_calls=launching,
        call_coverage=float(call_coverage),
    )


def count_flops(
    model: nn.Module,
    inputs: Any = None,
    *,
    kwargs: Mapping[str, Any] | None = None,
    engine: Engine = "auto",
    check: bool = False,
    warn: bool = True,
) -> FlopCount:
    """Count the forward-pass FLOPs of ``model(*inputs, **kwargs)``.

    FLOPs = 2 x multiply-accumulates of matmul-like operators (see the module docstring for the
    full convention: attention counts the full ``QK^T`` and ``AV`` products even when masked;
    elementwise work is reported apart in ``elementwise``, one per output element).

    Args:
        model: the module; counted in its current train/eval mode, which is left unchanged.
        inputs: a tensor, a tuple/list of positional arguments, or a dict of keyword arguments.
        kwargs: extra keyword arguments for ``model.forward``.
        engine: ``"auto"`` (fvcore when the model traces cleanly and counts everything the
            dispatcher counts, else the dispatch level),
            ``"fvcore"`` or ``"dispatch"`` to force one.
        check: also run ``torch.utils.flop_counter.FlopCounterMode`` with PyTorch's own table and
            fill ``check_total`` / ``check_diff``.
        warn: emit one :class:`~effplan.errors.UnsupportedOperatorWarning` naming operators that
            could not be counted.

    Returns:
        A :class:`FlopCount`.

    Raises:
        ValidationError: bad ``inputs``, ``kwargs`` or ``engine``.
        FlopCountError: no engine could count the model (the message says why and what to do).
    """
    if not isinstance(model, nn.Module):
        raise ValidationError("model", f"must be a torch.nn.Module, got {type(model).__name__}",
                              where="count_flops")
    if engine not in ("auto", "fvcore", "dispatch"):
        raise ValidationError("engine", f"must be 'auto', 'fvcore' or 'dispatch', got {engine!r}",
                              where="count_flops")
    args, kw = _normalise_inputs(inputs, kwargs)
    target = model._orig_mod if _is_compiled(model) else model  # the compiled model's own math
    devices = _rng_devices(args, kw, target)

    tally: _Tally | None = None
    unsupported: dict[str, int] = {}
    used = engine
    fallback_reason: str | None = None
    fvcore_error: str | None = None

    if engine in ("auto", "fvcore"):
        why_not = "compiled models (torch.compile) cannot be traced" if _is_compiled(model) \
            else _fvcore_unsuitable(target, args, kw)
        if why_not is not None:
            if engine == "fvcore":
                raise FlopCountError(f"engine='fvcore' cannot count this model: {why_not}. "
                                     "Use engine='dispatch' (or 'auto').")
            fallback_reason = why_not
        else:
            try:
                with _model_preserved(target, devices):
                    tally, unsupported = _count_with_fvcore(target, args)
                used = "fvcore"
            except ImportError as err:
                fvcore_error = f"fvcore is not installed ({err})"
            except Exception as err:  # noqa: BLE001 - tracing fails in many ways; reason is kept
                fvcore_error = f"torch.jit.trace/fvcore failed: {type(err).__name__}: " \
                               f"{str(err).splitlines()[0] if str(err) else ''}"
            if tally is None:
                if engine == "fvcore":
                    raise FlopCountError(f"engine='fvcore' cannot count this model: {fvcore_error}."
                                         " Use engine='dispatch' (or 'auto').")
                fallback_reason = fvcore_error

    if tally is None:
        try:
            with _model_preserved(target, devices):
                tally, unsupported = _count_with_dispatch(target, args, kw)
            used = "dispatch"
        except Exception as err:  # noqa: BLE001 - translated at this boundary, reason kept
            earlier = f" (fvcore was not usable: {fallback_reason})" if fallback_reason else ""
            raise FlopCountError(
                f"could not count FLOPs of {type(model).__name__}: running it under "
                f"torch.utils.flop_counter.FlopCounterMode failed with {type(err).__name__}: "
                f"{err}{earlier}. Check that model(*inputs, **kwargs) runs on these inputs "
                "outside count_flops, and that inputs are on the model's device.") from err

    result = _build(target, tally, unsupported, used,
                    fallback_reason if engine == "auto" else None)
    if engine == "auto" and used == "fvcore" and result.unsupported:
        # fvcore sees some operators only as one traced call (aten::tensordot, ...) that the
        # dispatcher sees decomposed into operators it counts: keep the better-covered count
        try:
            with _model_preserved(target, devices):
                d_tally, d_unsupported = _count_with_dispatch(target, args, kw)
        except Exception as err:  # noqa: BLE001 - fvcore's count stands; the reason is logged
            logging.getLogger(__name__).info("dispatch engine not usable for comparison: %s",
                                             err)
        else:
            dispatched = _build(target, d_tally, d_unsupported, "dispatch", None)
            # call shares differ between engines (the dispatcher sees finer operators), so the
            # dispatch count wins only when it closes the gap or finds MACs fvcore missed
            better = dispatched.coverage > result.coverage and (
                not dispatched.unsupported or dispatched.macs > result.macs)
            if better:
                reason = (f"fvcore left {', '.join(result.unsupported)} uncounted (coverage "
                          f"{result.coverage:.1%}); the dispatch engine covers "
                          f"{dispatched.coverage:.1%}")
                result = dataclasses.replace(dispatched, fallback_reason=reason)

    if check:
        try:
            with _model_preserved(target, devices):
                check_total = _flop_counter_mode_total(target, args, kw)
        except Exception as err:  # noqa: BLE001 - translated, reason kept
            raise FlopCountError(f"check=True: FlopCounterMode failed with "
                                 f"{type(err).__name__}: {err}") from err
        result = dataclasses.replace(result, check_total=check_total,
                                     check_diff=result.total - check_total)

    if warn and result.unsupported:
        listed = ", ".join(f"{op} x{n}" for op, n in result.unsupported.items())
        warnings.warn(
            f"count_flops({type(model).__name__}, engine={result.engine}): {len(result.unsupported)}"
            f" operator(s) not counted: {listed}; coverage {result.coverage:.1%} of operator calls."
            " Their FLOPs are missing, so total is a lower bound. Express them with supported "
            "operators or add their cost by hand (see FlopCount.by_operator).",
            UnsupportedOperatorWarning, stacklevel=2)
    return result
