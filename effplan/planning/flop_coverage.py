"""Rows whose FLOP count is incomplete: ``flops_coverage`` (FLOP-weighted, :mod:`effplan.flops`)
below :data:`MIN_FLOPS_COVERAGE`. Their FLOPs per token are lower bounds, so a compute-bound
projection from them (prefill, large batches) is too fast; ``plan()`` uses them, marks them and
warns once (numpy/pandas only)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["MIN_FLOPS_COVERAGE", "low_coverage", "coverage_mark"]

#: below this share of FLOPs counted, a row's FLOP figures are marked as lower bounds
MIN_FLOPS_COVERAGE = 0.99


def low_coverage(rows: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the rows with a known ``flops_coverage`` below :data:`MIN_FLOPS_COVERAGE`."""
    if "flops_coverage" not in rows.columns:
        return np.zeros(len(rows), dtype=bool)
    cov = pd.to_numeric(rows["flops_coverage"], errors="coerce").to_numpy(float)
    return np.isfinite(cov) & (cov < MIN_FLOPS_COVERAGE)


def coverage_mark(coverage: float) -> str:
    """The mark a row with this coverage carries (in ``efficiency_source``)."""
    return (f"FLOPs only {coverage:.0%} counted (flops_coverage < {MIN_FLOPS_COVERAGE:g}): the FLOP "
            "figures are lower bounds and compute-bound projections too fast; count the missing "
            "operators (FlopCount.unsupported) or enter the FLOPs")
