"""The fvcore engine: ``torch.jit.trace`` through fvcore's ``FlopCountAnalysis`` with effplan's
handles set (see :mod:`effplan.flops`)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .formulas import (_DROPOUT_OPS, _RNN_GATES, _TORCH_DIR, ELEMENTWISE_OPS, FLOP_FREE_OPS,
                       _addbmm_macs, _addmm_macs, _base_name, _bilinear_macs, _conv_macs,
                       _einsum_counts, _encoder_layer_counts, _linear_macs, _matmul_macs,
                       _native_mha_counts, _prod, _qlinear_macs, _rnn_counts, _sdpa_macs, _Tally,
                       Shape)


class _ShapeUnknown(RuntimeError):
    """The tracer did not record a complete shape; the count cannot be trusted."""


# --------------------------------------------------------------------------------------------
# fvcore engine
# --------------------------------------------------------------------------------------------


def _jit_shape(value: Any) -> Shape | None:
    """Shape of a traced value, ``None`` for a None argument; raises if a tensor shape is unknown."""
    typ = value.type()
    if typ.kind() == "NoneType":
        return None
    if value.isCompleteTensor():
        return tuple(int(s) for s in typ.sizes())
    raise _ShapeUnknown(f"traced value {value.debugName()} of type {typ} has no complete shape")


def _jit_const(value: Any) -> Any:
    return value.toIValue()


def _jit_out_numel(outputs: Sequence[Any], inputs: Sequence[Any]) -> int:
    for v in list(outputs[:1]) + list(inputs[:1]):
        if v.isCompleteTensor():
            return _prod(v.type().sizes())
    raise _ShapeUnknown("elementwise operator without a complete output shape")


def _fv_linear(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
    x, w, out = _jit_shape(inputs[0]), _jit_shape(inputs[1]), _jit_shape(outputs[0])
    ew = _prod(out) if len(inputs) > 2 and _jit_shape(inputs[2]) is not None else 0
    return _linear_macs(x, w), ew


def _fv_addmm_like(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
    # addmm/baddbmm/addbmm/addmv(self, a, b, beta, alpha): the add of `self` is elementwise
    a, b, out = _jit_shape(inputs[1]), _jit_shape(inputs[2]), _jit_shape(outputs[0])
    return _addmm_macs(a, b), _prod(out)


def _fv_matmul(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
    a, b, out = _jit_shape(inputs[0]), _jit_shape(inputs[1]), _jit_shape(outputs[0])
    return _matmul_macs(a, b, out), 0


def _fv_conv(transposed_index: int | None, transposed_const: bool = False) -> Callable:
    def handle(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
        x, w, out = _jit_shape(inputs[0]), _jit_shape(inputs[1]), _jit_shape(outputs[0])
        transposed = (bool(_jit_const(inputs[transposed_index])) if transposed_index is not None
                      else transposed_const)
        ew = _prod(out) if _jit_shape(inputs[2]) is not None else 0
        return _conv_macs(x, w, out, transposed), ew
    return handle


def _fv_einsum(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
    equation = _jit_const(inputs[0])
    shapes = [_jit_shape(v) for v in inputs[1].node().inputs()]
    return _einsum_counts(equation, shapes)


def _fv_sdpa(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
    q, k, v = (_jit_shape(t) for t in inputs[:3])
    return _sdpa_macs(q, k, v)


def _fv_native_mha(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
    # (query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight, proj_bias, ...)
    q, k = _jit_shape(inputs[0]), _jit_shape(inputs[1])
    return _native_mha_counts(q, k, _jit_const(inputs[3]), _jit_const(inputs[4]),
                              _jit_shape(inputs[6]) is not None, _jit_shape(inputs[8]) is not None)


def _fv_encoder_layer(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
    # (src, embed_dim, num_heads, qkv_w, qkv_b, proj_w, proj_b, use_gelu, norm_first, eps,
    #  norm_w1, norm_b1, norm_w2, norm_b2, ffn_w1, ffn_b1, ffn_w2, ffn_b2, mask, mask_type)
    return _encoder_layer_counts(_jit_shape(inputs[0]), _jit_const(inputs[2]),
                                 _jit_shape(inputs[14]))


def _fv_qlinear(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
    # quantized::linear_dynamic(X, packed_W, reduce_range): W is packed (no shape in the graph),
    # but MACs = items x in_features x out_features follow from the input and output shapes.
    return _qlinear_macs(_jit_shape(inputs[0]), _jit_shape(outputs[0])), 0


def _fv_mv(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
    a = _jit_shape(inputs[0])
    return _prod(a), 0


def _fv_rnn(gates: int) -> Callable:
    def handle(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
        # .input overload: (input, hx, params, has_biases, num_layers, dropout, train,
        # bidirectional, batch_first); .data (packed): (data, batch_sizes, hx, params, ...)
        first = 2 if inputs[3].type().kind() == "BoolType" else 3
        steps = _prod(_jit_shape(inputs[0])[:-1])  # time x batch, or packed elements
        weights = [_jit_shape(v) for v in inputs[first].node().inputs()]
        cells = int(_jit_const(inputs[first + 2])) * (2 if _jit_const(inputs[first + 5]) else 1)
        return _rnn_counts(steps, weights, gates, cells, bool(_jit_const(inputs[first + 1])))
    return handle


def _fv_bilinear(inputs: Sequence[Any], outputs: Sequence[Any]) -> tuple[int, int]:
    # bilinear(input1, input2, weight, bias)
    x1, w, out = _jit_shape(inputs[0]), _jit_shape(inputs[2]), _jit_shape(outputs[0])
    ew = _prod(out) if _jit_shape(inputs[3]) is not None else 0
    return _bilinear_macs(_prod(x1[:-1]), w), ew


_FVCORE_MATMUL: dict[str, Callable[[Sequence[Any], Sequence[Any]], tuple[int, int]]] = {
    "aten::linear": _fv_linear,
    "aten::addmm": _fv_addmm_like,
    "aten::baddbmm": _fv_addmm_like,
    "aten::addbmm": lambda i, o: (_addbmm_macs(_jit_shape(i[1]), _jit_shape(i[2])),
                                  _prod(_jit_shape(o[0]))),
    "aten::addmv": lambda i, o: (_prod(_jit_shape(i[1])), _prod(_jit_shape(o[0]))),
    "aten::mm": _fv_matmul,
    "aten::bmm": _fv_matmul,
    "aten::matmul": _fv_matmul,
    "aten::mv": _fv_mv,
    "aten::dot": _fv_mv,
    "aten::vdot": _fv_mv,
    "aten::einsum": _fv_einsum,
    "aten::_convolution": _fv_conv(6),
    "aten::convolution": _fv_conv(6),
    "aten::conv1d": _fv_conv(None, False),
    "aten::conv2d": _fv_conv(None, False),
    "aten::conv3d": _fv_conv(None, False),
    "aten::conv_transpose1d": _fv_conv(None, True),
    "aten::conv_transpose2d": _fv_conv(None, True),
    "aten::conv_transpose3d": _fv_conv(None, True),
    "aten::_convolution_mode": _fv_conv(None, False),  # padding="same" / "valid"
    "aten::lstm": _fv_rnn(_RNN_GATES["lstm"]),
    "aten::gru": _fv_rnn(_RNN_GATES["gru"]),
    "aten::rnn_tanh": _fv_rnn(_RNN_GATES["rnn_tanh"]),
    "aten::rnn_relu": _fv_rnn(_RNN_GATES["rnn_relu"]),
    "aten::bilinear": _fv_bilinear,
    "aten::scaled_dot_product_attention": _fv_sdpa,
    "aten::_native_multi_head_attention": _fv_native_mha,
    "aten::_transformer_encoder_layer_fwd": _fv_encoder_layer,
    "quantized::linear_dynamic": _fv_qlinear,
    "quantized::linear_dynamic_fp16": _fv_qlinear,
}



def _fvcore_classify(kind: str, inputs: Sequence[Any],
                     outputs: Sequence[Any]) -> tuple[str, int, int]:
    """(status, macs, elementwise) of one traced node."""
    if kind in _FVCORE_MATMUL:
        macs, ew = _FVCORE_MATMUL[kind](inputs, outputs)
        return "counted", macs, ew
    base = _base_name(kind)
    if base in _DROPOUT_OPS:
        # aten::dropout(input, p, train)
        p, train = _jit_const(inputs[1]), _jit_const(inputs[2])
        if train and p > 0:
            return "elementwise", 0, _jit_out_numel(outputs, inputs)
        return "flop-free", 0, 0
    if base in ELEMENTWISE_OPS:
        return "elementwise", 0, _jit_out_numel(outputs, inputs)
    if base in FLOP_FREE_OPS:
        return "flop-free", 0, 0
    raise KeyError(kind)


def _fvcore_known_kinds(extra: set[str]) -> set[str]:
    """Qualified kinds effplan classifies: matmul-like ones, ``aten::<name>`` and ``aten::<name>_``
    for every elementwise / FLOP-free / dropout name, and fvcore's ignored ops."""
    names = ELEMENTWISE_OPS | FLOP_FREE_OPS | _DROPOUT_OPS
    kinds = set(_FVCORE_MATMUL)
    kinds.update(f"aten::{n}" for n in names)
    kinds.update(f"aten::{n}_" for n in names if not n.endswith("_"))
    kinds.update(k for k in extra if _base_name(k) in names)
    return kinds


@contextlib.contextmanager
def _quiet_fvcore() -> Iterator[None]:
    """Silence fvcore's per-operator log lines (effplan emits one warning of its own)."""
    loggers = [logging.getLogger(n) for n in ("fvcore.nn.jit_analysis", "fvcore")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _count_with_fvcore(model: nn.Module, args: tuple[Any, ...]) -> tuple[_Tally, dict[str, int]]:
    """Returns the tally and unsupported op -> calls. Raises with the reason if tracing fails."""
    with warnings.catch_warnings():
        # fvcore's import scripts a few helpers; torch deprecates torch.jit.script
        warnings.simplefilter("ignore", DeprecationWarning)
        from fvcore.nn import FlopCountAnalysis  # noqa: PLC0415 - heavy, optional
        from fvcore.nn.jit_analysis import _IGNORED_OPS  # noqa: PLC0415

    tally = _Tally()
    tally.uncounted_known = False   # fvcore gives no shapes for the operators it does not count

    def make_handle(kind: str) -> Callable[[Sequence[Any], Sequence[Any]], Counter[str]]:
        def handle(inputs: Sequence[Any], outputs: Sequence[Any]) -> Counter[str]:
            status, macs, ew = _fvcore_classify(kind, list(inputs), list(outputs))
            tally.record(kind, status, macs, ew)
            return Counter({f"macs|{kind}": macs, f"ew|{kind}": ew})
        return handle

    analysis = FlopCountAnalysis(model, args)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("all")
    # Every operator effplan knows gets an effplan handle -- also fvcore's ignored ops (relu,
    # clamp are elementwise to us) and the ones fvcore would put into its total (batch_norm,
    # layer_norm, pooling, upsampling); whatever is left is reported by fvcore as unsupported.
    analysis.clear_op_handles()
    analysis.set_op_handle(**{k: make_handle(k) for k in _fvcore_known_kinds(set(_IGNORED_OPS))})
    with warnings.catch_warnings(record=True) as caught, _quiet_fvcore():
        warnings.simplefilter("always")
        by_mod = analysis.by_module_and_operator()  # traces once, then runs the handles
        unsupported = dict(analysis.unsupported_ops(""))
    # A value of a tensor turned into a Python bool/number in the model's own code means control
    # flow may depend on the data: the dispatcher, which runs the model for real, is used instead.
    # (Shape-only warnings such as "Iterating over a tensor" are exact for these inputs; the same
    # warnings raised inside torch itself, e.g. by nn.MultiheadAttention, are checks, not branches.)
    data_dependent = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)
                      and str(w.message).startswith("Converting a tensor to a Python")
                      and not str(Path(w.filename).resolve()).startswith(_TORCH_DIR)]
    if data_dependent:
        w = data_dependent[0]
        raise _TraceUnreliable(
            f"the model's own code made the trace input-dependent "
            f"({Path(w.filename).name}:{w.lineno}: {str(w.message).splitlines()[0]})")
    for op, n in unsupported.items():
        tally.calls[op] += n
        tally.status[op] = "unsupported"
    for mod_name, counter in by_mod.items():
        for key, value in counter.items():
            kind, _, _op = key.partition("|")
            if kind == "macs":
                tally.module_macs[mod_name] += int(value)
            elif kind == "ew":
                tally.module_ew[mod_name] += int(value)
    return tally, unsupported


class _TraceUnreliable(RuntimeError):
    """jit.trace ran but its graph would depend on the example inputs."""

