"""The confidence intervals effplan reports on quality figures, in one place.

* :func:`wilson_interval` / :func:`wilson_bounds` -- the Wilson score interval of a proportion
  (accuracy, a flip rate). Unlike a percentile bootstrap it never collapses to a zero width at
  0 or 1 (an accuracy of 100/100 gets ``[0.963, 1]``, not ``[1, 1]``), and its coverage stays
  near the nominal level for proportions near 0 or 1 (Brown, Cai & DasGupta 2001). With
  clustered rows (one example seen under several noise draws) pass the *effective* count:
  ``n_eff = n_examples`` and ``k_eff = share x n_examples``.
* :func:`percentile` -- the percentile bootstrap interval of resampled values (NLL, Brier,
  perplexity, user metrics).
* The ECE's interval is built in :mod:`effplan.records.calibration` (the binned ECE is biased upward,
  so its own bootstrap does not cover the true ECE).
* :func:`resamples` / :func:`bootstrap_values` / :func:`metric_interval` -- the shared bootstrap
  of :func:`effplan.evaluate` (one index matrix per condition; an example is resampled with all
  its noise draws) and the interval each metric gets.

``benchmarks/calibration.py`` measures the coverage of all of them on simulated populations.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from . import metrics as _m
from .calibration import ece_interval

__all__ = ["z_value", "wilson_interval", "wilson_bounds", "percentile", "resamples", "bootstrap_values",
           "metric_interval"]


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


def bootstrap_values(metric: _m.Metric, p: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    if metric.per_example is not None:
        terms = metric.per_example(p, y)
        vals = terms[idx].mean(axis=1)
        return metric.transform(vals) if metric.transform is not None else vals
    return np.array([float(metric.fn(p[r], y[r])) for r in idx])


def resamples(rng: np.random.Generator, n: int, n_bootstrap: int, draws: int = 1) -> list[np.ndarray]:
    """Bootstrap index rows in chunks of at most ~4M indices (memory stays bounded). With
    ``draws`` > 1 the rows are ``draws`` stacked copies of the ``n`` examples (one per noise
    draw) and an example is resampled with all its draws (a cluster bootstrap), so the interval
    holds the spread of the noise draws as well as of the examples."""
    per = max(1, min(n_bootstrap, 4_000_000 // max(n * draws, 1)))
    out, left = [], n_bootstrap
    while left > 0:
        k = min(per, left)
        idx = rng.integers(0, n, size=(k, n))
        if draws > 1:
            idx = np.concatenate([idx + d * n for d in range(draws)], axis=1)
        out.append(idx)
        left -= k
    return out


def metric_interval(metric: _m.Metric, p: np.ndarray, y: np.ndarray, resamples: list[np.ndarray],
              n_examples: int, n_bins: int, confidence: float) -> tuple[float, float, float, np.ndarray]:
    """``(value, ci_low, ci_high, the metric on each resample)`` of one metric on the rows given.

    * ``accuracy``: the Wilson score interval with the examples as the count (never a zero
      width at 0 or 1; :mod:`effplan.records.intervals`);
    * ``ece`` (debiased): :func:`effplan.records.calibration.ece_interval`;
    * ``ece_binned``: no interval (the plug-in ECE is biased upward and its bootstrap does not
      cover the true ECE: judge calibration on ``ece``);
    * every other metric: the percentile bootstrap.
    """
    builtin = _m.BUILTIN_METRICS.get(metric.name) is metric
    if builtin and metric.name == "ece":
        conf, corr = p.max(axis=1), _m.correct(p, y)
        return ece_interval(conf, corr, resamples, n_bins, confidence)
    if builtin and metric.name == "ece_binned":
        return _m.expected_calibration_error(p, y, n_bins=n_bins), math.nan, math.nan, np.zeros(0)
    value = float(metric.fn(p, y))
    vals = (np.concatenate([bootstrap_values(metric, p, y, idx) for idx in resamples])
            if resamples else np.zeros(0))
    if builtin and metric.name == "accuracy":
        if not resamples:
            return value, math.nan, math.nan, vals
        lo, hi = wilson_bounds(value, n_examples, confidence)
        return value, float(lo), float(hi), vals
    lo, hi = percentile(vals, confidence)
    return value, lo, hi, vals
