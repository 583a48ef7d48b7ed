"""The confidence intervals effplan reports on quality figures, in one place.

* :func:`wilson_interval` / :func:`wilson_bounds` -- the Wilson score interval of a proportion
  (accuracy, a flip rate). Unlike a percentile bootstrap it never collapses to a zero width at
  0 or 1 (an accuracy of 100/100 gets ``[0.963, 1]``, not ``[1, 1]``), and its coverage stays
  near the nominal level for proportions near 0 or 1 (Brown, Cai & DasGupta 2001). With
  clustered rows (one example seen under several noise draws) pass the *effective* count:
  ``n_eff = n_examples`` and ``k_eff = share x n_examples``.
* :func:`percentile` -- the percentile bootstrap interval of resampled values (NLL, Brier,
  perplexity, user metrics).
* The ECE's interval is built in :mod:`effplan.calibration` (the binned ECE is biased upward,
  so its own bootstrap does not cover the true ECE).

``benchmarks/calibration.py`` measures the coverage of all of them on simulated populations.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

__all__ = ["z_value", "wilson_interval", "wilson_bounds", "percentile"]


def z_value(confidence: float) -> float:
    """Two-sided normal quantile: 1.96 at ``confidence = 0.95``."""
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def wilson_bounds(share: np.ndarray | float, n: np.ndarray | float,
                  confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval of proportions ``share`` out of ``n`` (NaN where n <= 0):
    ``centre = (p + z^2/2n) / (1 + z^2/n)``, ``half = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)``.
    The bounds are exactly 0 at ``p = 0`` and 1 at ``p = 1``."""
    p = np.asarray(share, dtype=float)
    m = np.asarray(n, dtype=float)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = 1 + z * z / m
        centre = (p + z * z / (2 * m)) / denom
        half = z / denom * np.sqrt(np.maximum(p * (1 - p), 0.0) / m + z * z / (4 * m * m))
        lo = np.where(p <= 0, 0.0, np.maximum(0.0, centre - half))
        hi = np.where(p >= 1, 1.0, np.minimum(1.0, centre + half))
    bad = ~(m > 0)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes out of ``n`` (``(nan, nan)`` for ``n = 0``)."""
    if n <= 0:
        return math.nan, math.nan
    lo, hi = wilson_bounds(k / n, n, confidence)
    return float(lo), float(hi)


def percentile(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of resampled ``values`` (NaN when there are none)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(v, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return float(lo), float(hi)
