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
import functools
import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import pandas as pd
import torch
from torch import nn

from .errors import FlopCountError, UnsupportedOperatorWarning, ValidationError

__all__ = [
    "FlopCount",
    "count_flops",
    "ELEMENTWISE_OPS",
    "FLOP_FREE_OPS",
    "MATMUL_LIKE_OPS",
    "NO_KERNEL_OPS",
]

Engine = Literal["auto", "fvcore", "dispatch"]
Shape = tuple[int, ...]

_FLOPS_PER_MAC = 2
_TORCH_DIR = str(Path(torch.__file__).resolve().parent)


# --------------------------------------------------------------------------------------------
# Operator tables (base names: namespace, overload and in-place "_" stripped)
# --------------------------------------------------------------------------------------------

#: Operators known to cost no arithmetic: views, reshapes, indexing, copies, allocation,
#: concatenation, comparisons/selection, random-number generation, dropout in eval mode.
FLOP_FREE_OPS: frozenset[str] = frozenset({
    # views / reshapes / layout
    "view", "_unsafe_view", "reshape", "_reshape_alias", "flatten", "unflatten", "squeeze",
    "unsqueeze", "permute", "transpose", "t", "numpy_T", "expand", "expand_as", "as_strided",
    "alias", "contiguous", "view_as", "unfold", "movedim", "swapaxes", "narrow", "select",
    "slice", "split", "split_with_sizes", "chunk", "unbind", "unsafe_split", "tensor_split",
    "diagonal", "real", "imag", "view_as_real", "view_as_complex", "unsafe_chunk",
    "unsafe_split_with_sizes", "hsplit", "vsplit", "dsplit", "split_copy", "unbind_copy",
    "view_copy", "t_copy", "transpose_copy", "permute_copy", "expand_copy", "squeeze_copy",
    "unsqueeze_copy", "slice_copy", "select_copy", "as_strided_copy", "alias_copy",
    "detach_copy", "diagonal_copy", "narrow_copy", "mT", "mH", "adjoint", "align_as",
    "rename", "refine_names", "_pack_padded_sequence", "_pad_packed_sequence",
    # copies / casts / allocation
    "clone", "copy", "to", "_to_copy", "type_as", "detach", "lift_fresh", "lift_fresh_copy",
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros",
    "zeros_like", "ones", "ones_like", "full", "full_like", "new_full", "new_zeros", "new_ones",
    "fill", "zero", "scalar_tensor", "arange", "linspace", "resize", "set_", "_local_scalar_dense",
    "Int", "Float", "Bool", "ScalarImplicit", "size", "numel", "dim", "item", "tensor",
    # gather / scatter / concatenation / padding
    "cat", "concat", "stack", "hstack", "vstack", "index", "index_select", "index_put",
    "gather", "scatter", "masked_select", "masked_fill", "masked_scatter", "take", "embedding",
    "constant_pad_nd", "pad", "reflection_pad1d", "reflection_pad2d", "replication_pad1d",
    "replication_pad2d", "repeat", "repeat_interleave", "tile", "flip", "roll", "tril", "triu",
    "where", "nonzero", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
    # comparisons / logic / integer ops / selection
    "eq", "ne", "gt", "ge", "lt", "le", "logical_not", "logical_and", "logical_or",
    "bitwise_not", "bitwise_and", "bitwise_or", "__and__", "__or__", "__not__", "isnan",
    "isinf", "isfinite", "any", "all", "max", "min", "amax", "amin", "aminmax", "argmax", "argmin",
    "sort", "argsort", "histc", "bincount",
    "topk", "floor", "ceil", "round", "trunc", "sign", "floor_divide", "remainder",
    # random numbers (drawing them is not arithmetic on the data)
    "bernoulli", "rand", "randn", "rand_like", "randn_like", "randint", "normal", "uniform",
    # shape helpers
    "broadcast_tensors", "meshgrid", "one_hot",
})

#: Operators that launch no kernel: views and metadata queries (a subset of FLOP_FREE_OPS).
#: :attr:`FlopCount.operator_calls` counts every other operator call of the forward pass.
NO_KERNEL_OPS: frozenset[str] = frozenset({
    "view", "_unsafe_view", "reshape", "_reshape_alias", "flatten", "unflatten", "squeeze",
    "unsqueeze", "permute", "transpose", "t", "numpy_T", "expand", "expand_as", "as_strided",
    "alias", "view_as", "unfold", "movedim", "swapaxes", "narrow", "select", "slice", "split",
    "split_with_sizes", "chunk", "unbind", "unsafe_split", "unsafe_chunk", "tensor_split",
    "unsafe_split_with_sizes", "hsplit", "vsplit", "dsplit", "diagonal", "real", "imag",
    "view_as_real", "view_as_complex", "detach", "lift_fresh", "Int", "Float", "Bool",
    "ScalarImplicit", "size", "numel", "dim", "mT", "mH", "adjoint", "align_as", "rename",
    "refine_names", "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided",
    "broadcast_tensors",
})

#: Elementwise-ish operators: reported in ``FlopCount.elementwise`` as one per output element.
ELEMENTWISE_OPS: frozenset[str] = frozenset({
    "add", "sub", "rsub", "mul", "div", "true_divide", "neg", "abs", "reciprocal", "square",
    "pow", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin",
    "cos", "tan", "erf", "erfc", "erfinv", "addcmul", "addcdiv", "lerp", "clamp", "clamp_min",
    "clamp_max", "clip", "maximum", "minimum", "fmax", "fmin", "hypot", "atan2", "outer",
    # activations
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "gelu", "silu",
    "mish", "sigmoid", "tanh", "hardtanh", "hardsigmoid", "hardswish", "softplus",
    "softsign", "threshold", "logsigmoid", "glu",
    # softmax / normalisation
    "softmax", "_softmax", "_safe_softmax", "log_softmax", "_log_softmax", "layer_norm",
    "native_layer_norm", "rms_norm", "_fused_rms_norm", "batch_norm", "native_batch_norm",
    "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit_functional", "instance_norm", "group_norm", "native_group_norm",
    "local_response_norm", "normalize",
    # reductions (one per output element, see module docstring)
    "sum", "mean", "var", "std", "var_mean", "std_mean", "norm", "linalg_vector_norm",
    "logsumexp", "cumsum", "cumprod", "prod",
    # pooling / resampling
    "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d",
    "max_pool2d_with_indices", "max_pool3d_with_indices", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d", "_adaptive_avg_pool2d",
    "_adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d",
    "upsample_bilinear2d", "upsample_bicubic2d", "upsample_trilinear3d", "grid_sampler",
    "interpolate",
    # dropout in training mode (dropout in eval mode is flop-free, handled separately)
    "native_dropout", "native_dropout_backward",
})

#: Dropout-style operators whose cost depends on their ``train`` argument.
_DROPOUT_OPS: frozenset[str] = frozenset({
    "dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout",
})


def _base_name(qualified: str) -> str:
    """``"aten::add_"`` / ``"aten.add.Tensor"`` -> ``"add"``; ``"aten::__and__"`` kept."""
    name = qualified.split("::")[-1]
    if "::" not in qualified and name.startswith("aten."):
        name = name[len("aten."):]
    name = name.split(".")[0]
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name


# --------------------------------------------------------------------------------------------
# Formulas on shapes: each returns (macs, elementwise); both plain ints
# --------------------------------------------------------------------------------------------


def _prod(xs: Sequence[int]) -> int:
    return int(math.prod(int(x) for x in xs))


def _addmm_macs(a: Shape, b: Shape) -> int:
    """MACs of the product in addmm / baddbmm / addmv (``a @ b``; ``b`` may be a vector)."""
    return _prod(a[:-1]) * int(a[-1]) * (int(b[-1]) if len(b) > 1 else 1)


def _addbmm_macs(a: Shape, b: Shape) -> int:
    """MACs of addbmm's batched ``a @ b`` (summed over the batch): B x n x k x m."""
    return _prod(a) * int(b[-1])


def _qlinear_macs(x: Shape, out: Shape) -> int:
    """MACs of a (dynamic-)quantized linear from its input and output shapes (the packed weight
    has none): items x in_features x out_features."""
    return _prod(x) * int(out[-1])


def _matmul_macs(a: Shape, b: Shape, out: Shape) -> int:
    """Any (broadcast) matmul: one MAC per output element per contracted index."""
    return _prod(out) * int(a[-1])


def _linear_macs(x: Shape, w: Shape) -> int:
    """``x[..., in] @ w[out, in]^T``."""
    return _prod(x[:-1]) * int(w[0]) * int(w[-1]) if len(w) == 2 else _prod(x[:-1]) * int(w[0])


def _conv_macs(x: Shape, w: Shape, out: Shape, transposed: bool) -> int:
    """``batch * prod(weight) * prod(spatial)``.

    ``weight`` is ``[C_out, C_in/groups, *k]`` (``[C_in, C_out/groups, *k]`` when transposed), so
    grouped and depthwise convolutions are exact. The spatial extent is the output's for a normal
    convolution and the input's for a transposed one (each input pixel is scattered over the kernel).
    """
    n_spatial = len(w) - 2
    batch = 1 if len(x) == n_spatial + 1 else int(x[0])  # unbatched input [C, *spatial]
    spatial = (x if transposed else out)[len(x) - n_spatial:]
    return batch * _prod(w) * _prod(spatial)


def _sdpa_macs(q: Shape, k: Shape, v: Shape) -> tuple[int, int]:
    """Full ``Q K^T`` and ``A V``: ``prod(batch dims of q) * Lq * Lk * (E + Ev)``; softmax apart."""
    lead = _prod(q[:-2])
    lq, e = int(q[-2]), int(q[-1])
    lk, ev = int(k[-2]), int(v[-1])
    return lead * lq * lk * (e + ev), lead * lq * lk


def _native_mha_counts(q: Shape, k: Shape, embed_dim: int, num_heads: int,
                       has_qkv_bias: bool, has_proj_bias: bool) -> tuple[int, int]:
    """``aten::_native_multi_head_attention`` (the eval-mode fast path of nn.MultiheadAttention).

    In-projection ``Lq*E*E + 2*Lk*E*E``, attention ``2*Lq*Lk*E`` (all heads: H*d = E),
    out-projection ``Lq*E*E``, per batch element.
    """
    e = int(embed_dim)
    b = 1 if len(q) == 2 else int(q[0])
    lq, lk = int(q[-2]), int(k[-2])
    macs = b * (lq * e * e + 2 * lk * e * e + 2 * lq * lk * e + lq * e * e)
    ew = b * int(num_heads) * lq * lk  # softmax
    if has_qkv_bias:
        ew += b * (lq + 2 * lk) * e
    if has_proj_bias:
        ew += b * lq * e
    return macs, ew


def _encoder_layer_counts(src: Shape, num_heads: int, ffn_w1: Shape) -> tuple[int, int]:
    """``aten::_transformer_encoder_layer_fwd`` (eval-mode fast path of TransformerEncoderLayer).

    Per batch element with L tokens, width E, feed-forward width F:
    MACs = 3*L*E*E (qkv) + 2*L*L*E (attention) + L*E*E (out-proj) + 2*L*E*F (feed-forward).
    Elementwise = biases (3LE + LE + LF + LE) + softmax (H*L*L) + activation (LF)
    + residual adds (2LE) + layer norms (2LE) = L*(9E + 2F) + H*L*L.
    """
    b = 1 if len(src) == 2 else int(src[0])
    seq, e = int(src[-2]), int(src[-1])
    f = int(ffn_w1[0])
    macs = b * (4 * seq * e * e + 2 * seq * seq * e + 2 * seq * e * f)
    ew = b * (seq * (9 * e + 2 * f) + int(num_heads) * seq * seq)
    return macs, ew


#: Recurrent layers: gates per cell (G) and elementwise operations per hidden unit per step,
#: biases excluded (see :func:`_rnn_counts`). Keys are also cuDNN/oneDNN mode numbers.
_RNN_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
_RNN_MODE_GATES = {0: 1, 1: 1, 2: 4, 3: 3}  # RNN_RELU, RNN_TANH, LSTM, GRU
_RNN_CELL_EW = {4: 13, 3: 10, 1: 2}


def _rnn_counts(steps: int, weights: Sequence[Shape], gates: int, cells: int,
                has_bias: bool) -> tuple[int, int]:
    """nn.RNN / nn.GRU / nn.LSTM (any layers, directions, ``proj_size``, packed or padded).

    Every step of every layer and direction multiplies its input by ``W_ih`` and its hidden
    state by ``W_hh`` (and, for LSTM with ``proj_size``, the new hidden state by ``W_hr``), so
    MACs = ``steps * sum(numel of the 2-D weight matrices)``, with ``steps`` = time steps x
    batch (the elements of a packed sequence's data). The step at t=0 multiplies the (zero)
    initial state too: dense kernels do. Elementwise per hidden unit per step and cell
    (``cells`` = layers x directions; H = ``W_hh.shape[0] / G``): LSTM 13 (gate sum 4, gate
    activations 4, ``c' = f*c + i*g`` 3, ``tanh(c')`` 1, ``o*tanh(c')`` 1); GRU 10 (r,z sums 2,
    sigmoids 2, ``tanh(i_n + r*h_n)`` 3, ``h' = n + z*(h - n)`` 3); RNN 2 (sum, activation);
    plus the two bias adds, 2G, when the layer has biases.
    """
    mats = [w for w in weights if len(w) == 2]
    macs = steps * sum(_prod(w) for w in mats)
    hidden = int(mats[1][0]) // gates  # W_hh of the first cell: [G*H, H or proj_size]
    per_unit = _RNN_CELL_EW[gates] + (2 * gates if has_bias else 0)
    return macs, steps * cells * hidden * per_unit


def _bilinear_macs(n_items: int, w: Shape) -> int:
    """nn.Bilinear, ``y = x1^T A x2 + b`` with ``A`` of shape [O, I1, I2], as PyTorch computes
    it (``aten::_trilinear``): ``x1 @ A`` (N*O*I1*I2 MACs), then the product with ``x2``
    summed over I2 (N*O*I2 MACs). Total N*O*I2*(I1 + 1); the bias add is elementwise."""
    o, i1, i2 = (int(d) for d in w)
    return n_items * o * i2 * (i1 + 1)


def _trilinear_macs(shapes: Sequence[Shape], expands: Sequence[Sequence[int]],
                    sumdim: Sequence[int]) -> tuple[int, int]:
    """``aten::_trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim)``: each operand gets
    size-1 dims inserted at ``expandK``; the product of all three is summed over ``sumdim``.
    PyTorch multiplies ``i1 * i2`` first, summing the dims that ``i3`` lacks, then with ``i3``
    summing the rest: each step costs the product of the sizes of the dims involved when it
    sums something (MACs), else it is a broadcast multiply (elementwise)."""
    ndim = len(shapes[0]) + len(expands[0])
    full = []
    for shape, expand in zip(shapes, expands):
        dims, it = [], iter(shape)
        for d in range(ndim):
            dims.append(1 if d in expand else int(next(it)))
        full.append(dims)
    sizes = [max(f[d] for f in full) for d in range(ndim)]
    present = [{d for d in range(ndim) if d not in e} for e in expands]
    sum_first = {d for d in sumdim if d not in present[2]}
    first = present[0] | present[1]
    cost1 = _prod(sizes[d] for d in first)
    after1 = first - sum_first
    second = after1 | present[2]
    cost2 = _prod(sizes[d] for d in second)
    sum_second = set(sumdim) - sum_first
    macs = (cost1 if sum_first else 0) + (cost2 if sum_second else 0)
    ew = (0 if sum_first else cost1) + (0 if sum_second else cost2)
    return macs, ew


def _einsum_counts(equation: str, shapes: Sequence[Shape]) -> tuple[int, int]:
    """MACs of ``torch.einsum``, contracted pairwise in the order torch uses.

    Without opt_einsum torch contracts left to right; each pairwise step that sums over at least
    one shared index is a batched matmul costing ``prod(sizes of all indices involved)`` MACs.
    A step that sums over nothing (outer or Hadamard product) is a broadcast multiply and goes to
    elementwise. Indices present in one operand only are summed out first (a reduction, no MACs).
    """
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum {equation!r}: {len(terms)} terms for {len(shapes)} operands")
    # ellipsis: broadcast dims get private letters, aligned from the right
    max_free = max((len(s) - (len(t) - 3) for t, s in zip(terms, shapes) if "..." in t), default=0)
    ell = "".join(chr(0x100 + i) for i in range(max_free))
    expanded = []
    for t, s in zip(terms, shapes):
        if "..." in t:
            n_free = len(s) - (len(t) - 3)
            t = t.replace("...", ell[max_free - n_free:])
        expanded.append(t)
    letters = [c for t in expanded for c in t]
    if arrow:
        out = rhs.replace("...", ell)
    else:
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c.isalpha())) \
            + ell
    sizes: dict[str, int] = {}
    for t, s in zip(expanded, shapes):
        for c, n in zip(t, s):
            sizes[c] = max(sizes.get(c, 1), int(n))
    if len(expanded) == 1:
        return 0, _prod(sizes[c] for c in out) if out else 1
    ops: list[set[str]] = [set(t) for t in expanded]
    path = _einsum_path(eq, shapes, len(ops))
    macs = ew = 0
    for i, j in path:
        left, right = ops[i], ops[j]
        rest = [o for n, o in enumerate(ops) if n not in (i, j)]
        needed_later = set(out).union(*rest) if rest else set(out)
        left_kept = {c for c in left if c in right or c in needed_later}
        right_kept = {c for c in right if c in left or c in needed_later}
        union = left_kept | right_kept
        summed = (left_kept & right_kept) - needed_later
        cost = _prod(sizes[c] for c in union)
        if summed:
            macs += cost
        else:
            ew += cost
        ops = rest + [{c for c in union if c in needed_later}]
    return macs, ew


def _einsum_path(equation: str, shapes: Sequence[Shape], n_ops: int) -> list[tuple[int, int]]:
    """The contraction order torch.einsum uses: opt_einsum's path when enabled, else left to right."""
    backend = torch.backends.opt_einsum
    if n_ops > 2 and backend.is_available() and backend.enabled:
        import opt_einsum  # noqa: PLC0415 - only present when torch uses it

        path, _ = opt_einsum.contract_path(equation, *shapes, shapes=True,
                                           optimize=backend.strategy or "auto")
        return [tuple(sorted(p)) for p in path]  # type: ignore[misc]
    # left to right: operands 0 and 1 first; each result is appended at the end of the list,
    # so the running result is always the last operand and the next input is operand 0
    path = [(0, 1)]
    remaining = n_ops - 1
    while remaining >= 2:
        path.append((0, remaining - 1))
        remaining -= 1
    return path


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
# Accumulating counts (shared by both engines)
# --------------------------------------------------------------------------------------------


#: when one op is seen with several statuses, the most informative one is kept
_STATUS_RANK = {"flop-free": 0, "elementwise": 1, "counted": 2, "unsupported": 3}


class _Tally:
    """Per-operator calls/MACs/elementwise, and per-module MACs/elementwise."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.status: dict[str, str] = {}
        self.macs: Counter[str] = Counter()
        self.ew: Counter[str] = Counter()
        self.module_macs: Counter[str] = Counter()
        self.module_ew: Counter[str] = Counter()
        #: unsupported operators' MACs estimated from their shapes (dispatch engine): the weight
        #: of the FLOP-weighted coverage; None where the engine cannot see shapes (fvcore)
        self.uncounted_macs: Counter[str] = Counter()
        self.uncounted_known = True

    def record(self, op: str, status: str, macs: int, ew: int) -> None:
        self.calls[op] += 1
        # an op (e.g. aten::dropout) may be flop-free in one call and elementwise in another:
        # keep the most informative status
        if _STATUS_RANK[status] >= _STATUS_RANK.get(self.status.get(op, "flop-free"), 0):
            self.status[op] = status
        self.macs[op] += int(macs)
        self.ew[op] += int(ew)


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


# --------------------------------------------------------------------------------------------
# dispatch engine
# --------------------------------------------------------------------------------------------


def _shape(x: Any) -> Shape | None:
    return tuple(int(s) for s in x.shape) if isinstance(x, torch.Tensor) else None


def _first_tensor(x: Any) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for item in x:
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


def _out_numel(out: Any) -> int:
    t = _first_tensor(out)
    return int(t.numel()) if t is not None else 0


def _d_addmm_like(args: Sequence[Any], out: Any) -> tuple[int, int]:
    return _addmm_macs(_shape(args[1]), _shape(args[2])), _out_numel(out)


def _d_mm(args: Sequence[Any], out: Any) -> tuple[int, int]:
    return _matmul_macs(_shape(args[0]), _shape(args[1]), _shape(_first_tensor(out))), 0


def _d_weight_packed_mm(args: Sequence[Any], out: Any) -> tuple[int, int]:
    # _weight_int8pack_mm / _weight_int4pack_mm(x (..., K), packed weight, ...) -> (..., N):
    # the packed weight's shape is not (K, N), so the MACs come from x and the output
    x, o = _shape(args[0]), _shape(_first_tensor(out))
    return _prod(x) * (o[-1] if o else 0), 0


def _d_grouped_mm(args: Sequence[Any], out: Any) -> tuple[int, int]:
    # mixture-of-experts dispatch: aten::_grouped_mm(a, b, offs) and transformers'
    # grouped_mm_fallback(input, weight, offs). 2-D a (tokens, K) x 3-D b (experts, K, N) ->
    # (tokens, N): each token row meets ONE expert's (K, N), MACs = tokens x K x N = out x K;
    # the same for 3-D x 3-D (batched) and 3-D x 2-D; 2-D x 2-D (groups along K) gives
    # (groups, M, N) whose groups split K, MACs = M x N x K_total
    a, o = _shape(args[0]), _shape(_first_tensor(out))
    if not a or not o:
        return 0, 0
    b = _shape(args[1])
    if len(a) == 2 and b is not None and len(b) == 2 and len(o) == 3:
        return _prod(o[1:]) * a[-1], 0
    return _prod(o) * a[-1], 0


def _estimated_macs(args: Sequence[Any], out: Any) -> int:
    """MACs of an operator effplan does not count, estimated from its shapes for the FLOP-weighted
    coverage only (never added to ``total``): a matmul over its first input's last dimension when
    it takes two tensors of 2+ dimensions, else one per output element."""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    n_out = _out_numel(out)
    if len(tensors) >= 2 and tensors[0].dim() >= 2 and tensors[1].dim() >= 2:
        return n_out * int(tensors[0].shape[-1])
    return n_out


def _d_conv(args: Sequence[Any], out: Any) -> tuple[int, int]:
    # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    x, w = _shape(args[0]), _shape(args[1])
    transposed = bool(args[6]) if len(args) > 6 else False
    ew = _out_numel(out) if args[2] is not None else 0
    return _conv_macs(x, w, _shape(_first_tensor(out)), transposed), ew


def _d_sdpa(args: Sequence[Any], out: Any) -> tuple[int, int]:
    return _sdpa_macs(_shape(args[0]), _shape(args[1]), _shape(args[2]))


def _d_native_mha(args: Sequence[Any], out: Any) -> tuple[int, int]:
    return _native_mha_counts(_shape(args[0]), _shape(args[1]), args[3], args[4],
                              args[6] is not None, args[8] is not None)


def _d_encoder_layer(args: Sequence[Any], out: Any) -> tuple[int, int]:
    return _encoder_layer_counts(_shape(args[0]), args[2], _shape(args[14]))


def _d_mv(args: Sequence[Any], out: Any) -> tuple[int, int]:
    return _prod(_shape(args[0])), 0


def _d_qlinear(args: Sequence[Any], out: Any) -> tuple[int, int]:
    return _qlinear_macs(_shape(args[0]), _shape(_first_tensor(out))), 0


def _d_mkldnn_rnn_layer(args: Sequence[Any], out: Any) -> tuple[int, int]:
    # (input, w_ih, w_hh, b_ih, b_hh, hx, cx, reverse, batch_sizes, mode, hidden_size,
    #  num_layers, has_biases, ...): one layer, one direction
    steps = _prod(_shape(args[0])[:-1])
    return _rnn_counts(steps, [_shape(args[1]), _shape(args[2])], _RNN_MODE_GATES[int(args[9])],
                       1, bool(args[12]))


def _d_cudnn_rnn(args: Sequence[Any], out: Any) -> tuple[int, int]:
    # (input, weight[], weight_stride0, weight_buf, hx, cx, mode, hidden_size, proj_size,
    #  num_layers, batch_first, dropout, train, bidirectional, batch_sizes, dropout_state)
    steps = _prod(_shape(args[0])[:-1])
    weights = [_shape(w) for w in args[1]]
    cells = int(args[9]) * (2 if args[13] else 1)
    has_bias = any(len(w) == 1 for w in weights)
    return _rnn_counts(steps, weights, _RNN_MODE_GATES[int(args[6])], cells, has_bias)


def _d_trilinear(args: Sequence[Any], out: Any) -> tuple[int, int]:
    return _trilinear_macs([_shape(a) for a in args[:3]], args[3:6], args[6])


_DISPATCH_MATMUL: dict[str, Callable[[Sequence[Any], Any], tuple[int, int]]] = {
    "aten::mm": _d_mm,
    "aten::_int_mm": _d_mm,  # int8 x int8 -> int32 matmul (torchao int8 dynamic)
    "aten::_weight_int8pack_mm": _d_weight_packed_mm,
    "aten::_weight_int4pack_mm": _d_weight_packed_mm,
    "aten::_weight_int4pack_mm_for_cpu": _d_weight_packed_mm,
    "aten::bmm": _d_mm,
    "aten::addmm": _d_addmm_like,
    "aten::baddbmm": _d_addmm_like,
    "aten::addbmm": lambda a, o: (_addbmm_macs(_shape(a[1]), _shape(a[2])), _out_numel(o)),
    "aten::addmv": lambda a, o: (_prod(_shape(a[1])), _out_numel(o)),
    "aten::mv": _d_mv,
    "aten::dot": _d_mv,
    "aten::vdot": _d_mv,
    "aten::convolution": _d_conv,
    "aten::_convolution": _d_conv,
    "aten::_slow_conv2d_forward": lambda a, o: (_conv_macs(_shape(a[0]), _shape(a[1]),
                                                            _shape(_first_tensor(o)), False),
                                                 _out_numel(o) if a[3] is not None else 0),
    "aten::_scaled_dot_product_flash_attention_for_cpu": _d_sdpa,
    "aten::_scaled_dot_product_flash_attention": _d_sdpa,
    "aten::_scaled_dot_product_efficient_attention": _d_sdpa,
    "aten::_scaled_dot_product_cudnn_attention": _d_sdpa,
    "aten::_scaled_dot_product_fused_attention_overrideable": _d_sdpa,
    "aten::_native_multi_head_attention": _d_native_mha,
    "aten::mkldnn_rnn_layer": _d_mkldnn_rnn_layer,
    "aten::_cudnn_rnn": _d_cudnn_rnn,
    "aten::_trilinear": _d_trilinear,
    "aten::_transformer_encoder_layer_fwd": _d_encoder_layer,
    "aten::_grouped_mm": _d_grouped_mm,            # mixture-of-experts experts (transformers 5)
    "transformers::grouped_mm_fallback": _d_grouped_mm,
    "quantized::linear_dynamic": _d_qlinear,
    "quantized::linear_dynamic_fp16": _d_qlinear,
}

#: Qualified names of the operators whose MACs go into ``total`` (traced or dispatch-level names).
MATMUL_LIKE_OPS: frozenset[str] = frozenset(set(_FVCORE_MATMUL) | set(_DISPATCH_MATMUL))

# Dispatch-level housekeeping ops that only query metadata.
_DISPATCH_META = frozenset({"sym_size", "sym_stride", "sym_numel", "sym_storage_offset",
                            "stride", "storage_offset", "is_contiguous", "sym_is_contiguous",
                            "is_non_overlapping_and_dense", "is_strides_like_format", "layout",
                            "device", "_has_compatible_shallow_copy_type", "is_same_size",
                            "_nested_tensor_from_mask_left_aligned", "is_nonzero", "equal",
                            "_assert_async", "_assert_tensor_metadata", "record_stream"})


def _dispatch_counter_class() -> type:
    from torch.utils.flop_counter import FlopCounterMode  # noqa: PLC0415

    class _EffplanFlopCounter(FlopCounterMode):
        """FlopCounterMode that records every ATen call with effplan's classification."""

        def __init__(self) -> None:
            extra = {}
            for qualified in _DISPATCH_MATMUL:
                packet = _aten_packet(qualified)
                if packet is not None:
                    extra[packet] = _zero_formula  # in the registry: never decomposed
            super().__init__(display=False, custom_mapping=extra)
            self.tally = _Tally()
            self.unsupported: Counter[str] = Counter()

        def _count_flops(self, func_packet: Any, out: Any, args: Any, kwargs: Any) -> Any:
            qualified = getattr(func_packet, "_qualified_op_name", None) or str(func_packet)
            base = _base_name(qualified)
            if base in _DISPATCH_META:
                return out
            macs = ew = 0
            if qualified in _DISPATCH_MATMUL:
                status = "counted"
                macs, ew = _DISPATCH_MATMUL[qualified](list(args), out)
            elif base in _DROPOUT_OPS:
                train = bool(args[2]) if len(args) > 2 else bool(kwargs.get("train", False))
                p = float(args[1]) if len(args) > 1 else float(kwargs.get("p", 0.5))
                status = "elementwise" if train and p > 0 else "flop-free"
                ew = _out_numel(out) if status == "elementwise" else 0
            elif base in ELEMENTWISE_OPS:
                status, ew = "elementwise", _out_numel(out)
            elif base in FLOP_FREE_OPS:
                status = "flop-free"
            else:
                status = "unsupported"
                self.unsupported[qualified] += 1
                self.tally.uncounted_macs[qualified] += _estimated_macs(list(args), out)
            self.tally.record(qualified, status, macs, ew)
            if macs or ew:
                for parent in _with_name_ancestors(frozenset(self.mod_tracker.parents)):
                    self.tally.module_macs[parent] += macs
                    self.tally.module_ew[parent] += ew
            return out

    return _EffplanFlopCounter


@functools.lru_cache(maxsize=256)
def _with_name_ancestors(parents: frozenset[str]) -> frozenset[str]:
    """Add every dotted prefix (``a.b.c`` -> ``a``, ``a.b``), so that containers that are never
    called themselves (``nn.ModuleList``) include their children, as fvcore's owner mode does."""
    closure = set(parents)
    for name in parents:
        parts = name.split(".")
        closure.update(".".join(parts[:k]) for k in range(1, len(parts)))
    return frozenset(closure)


def _zero_formula(*args: Any, **kwargs: Any) -> int:
    return 0


def _aten_packet(qualified: str) -> Any:
    name = qualified.split("::", 1)[1]
    return getattr(torch.ops.aten, name, None)


def _count_with_dispatch(model: nn.Module, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> tuple[_Tally, dict[str, int]]:
    counter = _dispatch_counter_class()()
    with counter:
        model(*args, **kwargs)
    # ModuleTracker names modules "<RootClass>.child.grandchild"; map to named_modules() names
    root = type(model).__name__
    renamed_macs: Counter[str] = Counter()
    renamed_ew: Counter[str] = Counter()
    for name in set(counter.tally.module_macs) | set(counter.tally.module_ew):
        if name == "Global":
            continue
        if name == root:
            new = ""
        elif name.startswith(root + "."):
            new = name[len(root) + 1:]
        else:
            continue
        renamed_macs[new] += counter.tally.module_macs[name]
        renamed_ew[new] += counter.tally.module_ew[name]
    counter.tally.module_macs = renamed_macs
    counter.tally.module_ew = renamed_ew
    return counter.tally, dict(counter.unsupported)


def _flop_counter_mode_total(model: nn.Module, args: tuple[Any, ...],
                             kwargs: dict[str, Any]) -> int:
    """PyTorch's own count, with its own formula table (the cross-check)."""
    from torch.utils.flop_counter import FlopCounterMode  # noqa: PLC0415

    counter = FlopCounterMode(display=False)
    with counter:
        model(*args, **kwargs)
    return int(counter.get_total_flops())


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
