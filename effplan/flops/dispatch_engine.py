"""The dispatch engine: one run under a ``torch.utils.flop_counter.FlopCounterMode`` subclass that
sees every ATen operator and applies effplan's formulas (see :mod:`effplan.flops`)."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .formulas import (_DROPOUT_OPS, _RNN_MODE_GATES, ELEMENTWISE_OPS, FLOP_FREE_OPS, _addbmm_macs,
                       _addmm_macs, _base_name, _conv_macs, _encoder_layer_counts, _matmul_macs,
                       _native_mha_counts, _prod, _qlinear_macs, _rnn_counts, _sdpa_macs, _Tally,
                       _trilinear_macs, Shape)


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

