"""The operator tables and the per-operator MAC formulas both FLOP engines apply.

Every formula takes shapes (plain ints) and returns ``(macs, elementwise)``; the conventions
(FLOPs = 2 x MACs, full attention, one elementwise op per output element) are stated once in
:mod:`effplan.flops`. :class:`Tally` accumulates the per-operator and per-module counts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch



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

