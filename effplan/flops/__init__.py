"""FLOP counting you can trust: fvcore's tracer plus a dispatch-level fallback, with the gaps shown.

:func:`count_flops` -> :class:`FlopCount` (FLOPs = 2 x MACs, elementwise work apart, unsupported
operators listed, never counted as 0). The conventions are stated once, in
:mod:`effplan.flops.count`; the operator tables and per-operator formulas live in
:mod:`~effplan.flops.formulas`, the two engines in :mod:`~effplan.flops.fvcore_engine` and
:mod:`~effplan.flops.dispatch_engine`. torch is imported with this package (it counts torch models).
"""

from .count import MATMUL_LIKE_OPS, FlopCount, count_flops
from .formulas import ELEMENTWISE_OPS, FLOP_FREE_OPS, NO_KERNEL_OPS

__all__ = ["FlopCount", "count_flops", "ELEMENTWISE_OPS", "FLOP_FREE_OPS", "MATMUL_LIKE_OPS", "NO_KERNEL_OPS"]
