"""Quality metrics on plain arrays: accuracy, calibration (ECE), NLL, Brier score, perplexity.

Every function takes ``probs`` (N x K, each row a probability distribution over K classes,
rows summing to 1 within ``1e-4``) and ``labels`` (N integers in ``[0, K)``) as numpy arrays,
lists or CPU tensors, and returns a Python float. Bad input raises
:class:`effplan.errors.ValidationError` naming ``probs`` or ``labels``.

Conventions (stated once, here)
-------------------------------
* **Predicted class** = ``argmax`` of the row; on a tie the lowest class index wins (numpy's
  ``argmax``). **Confidence** = the row's maximum probability (ties do not change it).
* **Accuracy** = share of rows whose predicted class equals the label. Higher is better.
* **Expected calibration error** (top-label, equal-width bins): ``n_bins`` bins with edges
  ``numpy.linspace(0, 1, n_bins + 1)``; bin ``b`` holds the rows whose confidence lies in
  ``(edge_b, edge_b+1]`` (bin 0 also holds confidence 0). Then
  ``ECE = sum_b (n_b / N) * |accuracy_b - mean confidence_b|`` and an empty bin adds 0.
  Equivalently ``ECE = (1/N) * sum_b |sum(correct in b) - sum(confidence in b)|``. Lower is better.
* **Negative log-likelihood** = mean over rows of ``-ln p[label]`` (natural log, nats), with
  ``p`` clipped below at ``eps = 1e-12`` so a zero probability on the true class gives
  ``-ln(1e-12) ~= 27.6`` instead of infinity (:func:`effplan.evaluate` counts the clipped rows in
  its ``settings["nll_clipped_rows"]``). Lower is better.
* **Debiased ECE** (``ece`` in :func:`effplan.evaluate`; the plug-in binned figure above is
  ``ece_binned``, the number torchmetrics' ``MulticlassCalibrationError`` gives):
  ``(1/N) sum_b sqrt(max(S_b^2 - V_b, 0))``, ``S_b = sum(correct) - sum(confidence)``,
  ``V_b = sum c(1-c)`` per bin (:func:`debiased_calibration_error`, :mod:`effplan.records.calibration`).
  The binned ECE is biased upward: a calibrated model shows ~0.012 on 450 examples.
* **Brier score** (multi-class) = mean over rows of ``sum_k (p_k - onehot(label)_k)^2``; it lies
  in ``[0, 2]``. Lower is better. For two classes this is TWICE scikit-learn's
  ``brier_score_loss`` (which scores the positive class only): that convention is the metric
  ``brier_binary`` = mean ``(p_1 - y)^2`` in ``[0, 1]`` (:func:`binary_brier_score`).
* **Perplexity** = ``exp(NLL)`` over tokens: for a language model pass one row per predicted
  token (N tokens x vocabulary). Lower is better.

:class:`Metric` wraps a user function ``fn(probs, labels) -> float`` with its direction, so that
:func:`effplan.evaluate` can report any metric beside the built-in ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = ["Metric", "BUILTIN_METRICS", "resolve_metric", "accuracy", "expected_calibration_error",
           "debiased_calibration_error", "negative_log_likelihood", "brier_score", "binary_brier_score",
           "perplexity", "clipped_rows"]

#: default number of equal-width confidence bins of the ECE
DEFAULT_ECE_BINS = 15
#: lower clip of probabilities in the NLL (and perplexity)
NLL_EPS = 1e-12
#: tolerance on a probability row summing to 1
ROW_SUM_ATOL = 1e-4


def _as_array(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def validate(probs: Any, labels: Any, *, where: str = "metrics") -> tuple[np.ndarray, np.ndarray]:
    """``(probs, labels)`` as float64 (N, K) and int64 (N,) arrays, or :class:`ValidationError`."""
    p = _as_array(probs)
    y = _as_array(labels)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValidationError("probs", f"expected a non-empty N x classes array, got shape {p.shape}",
                              where=where)
    if not np.issubdtype(p.dtype, np.number) or np.issubdtype(p.dtype, np.complexfloating):
        raise ValidationError("probs", f"expected real numbers, got dtype {p.dtype}", where=where)
    p = p.astype(np.float64)
    if not np.isfinite(p).all():
        raise ValidationError("probs", f"non-finite value in row {int(np.flatnonzero(~np.isfinite(p).all(1))[0])}",
                              where=where)
    if (p < 0).any() or (p > 1).any():
        row = int(np.flatnonzero(((p < 0) | (p > 1)).any(1))[0])
        raise ValidationError("probs", f"values must lie in [0, 1] (row {row}); pass probabilities, "
                              "not logits (apply softmax first)", where=where)
    sums = p.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_ATOL
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ValidationError("probs", f"row {row} sums to {sums[row]:.6g}, not 1; pass probabilities "
                              "(softmax of the logits)", where=where)
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise ValidationError("labels", f"expected {p.shape[0]} labels (one per row of probs), got "
                              f"shape {y.shape}", where=where)
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise ValidationError("labels", f"expected integer class ids, got dtype {y.dtype}", where=where)
    y = y.astype(np.int64)
    bad = (y < 0) | (y >= p.shape[1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError("labels", f"label {int(y[i])} at row {i} is outside [0, {p.shape[1]})",
                              where=where)
    return p, y


def check_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValidationError("n_bins", f"must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each confidence: ``b`` such that ``edge_b < c <= edge_b+1`` (0 -> bin 0)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.digitize(confidence, edges[1:-1], right=True)


# ------------------------------------------------------------------------ per-example pieces
def correct(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1.0 where the predicted class (argmax, lowest index on ties) equals the label."""
    return (np.argmax(p, axis=1) == y).astype(np.float64)


def nll_terms(p: np.ndarray, y: np.ndarray, eps: float = NLL_EPS) -> np.ndarray:
    """``-ln(max(p[label], eps))`` per row."""
    return -np.log(np.maximum(p[np.arange(len(y)), y], eps))


def brier_terms(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``sum_k (p_k - onehot_k)^2`` per row."""
    sq = np.square(p).sum(axis=1)
    return sq - 2.0 * p[np.arange(len(y)), y] + 1.0


def ece_resampled(confidence: np.ndarray, correct_: np.ndarray, idx: np.ndarray, n_bins: int) -> np.ndarray:
    """ECE of each resample ``idx[r]`` (rows of indices into the N examples), vectorized."""
    idx = np.atleast_2d(idx)
    r, n = idx.shape
    bins = bin_index(confidence, n_bins)[idx] + n_bins * np.arange(r)[:, None]
    flat = bins.ravel()
    s_conf = np.bincount(flat, weights=confidence[idx].ravel(), minlength=r * n_bins)
    s_corr = np.bincount(flat, weights=correct_[idx].ravel(), minlength=r * n_bins)
    return np.abs(s_corr - s_conf).reshape(r, n_bins).sum(axis=1) / n


def bin_sums(confidence: np.ndarray, correct: np.ndarray, idx: np.ndarray,
             n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per resample (row of ``idx``) and bin: sum of confidence, of correct, of c(1-c)."""
    idx = np.atleast_2d(idx)
    r, _n = idx.shape
    bins = (bin_index(confidence, n_bins)[idx] + n_bins * np.arange(r)[:, None]).ravel()
    size = r * n_bins

    def s(w: np.ndarray) -> np.ndarray:
        return np.bincount(bins, weights=w[idx].ravel(), minlength=size).reshape(r, n_bins)

    return s(confidence), s(correct), s(confidence * (1.0 - confidence))


def binned_from_sums(s_conf: np.ndarray, s_corr: np.ndarray, n: int) -> np.ndarray:
    """The plug-in binned ECE of each resample."""
    return np.abs(s_corr - s_conf).sum(axis=1) / n


def debiased_from_sums(s_conf: np.ndarray, s_corr: np.ndarray, s_var: np.ndarray, n: int) -> np.ndarray:
    """The debiased ECE of each resample (:func:`debiased_calibration_error`)."""
    gap = s_corr - s_conf
    return np.sqrt(np.maximum(gap * gap - s_var, 0.0)).sum(axis=1) / n


def debiased_calibration_error(probs: Any, labels: Any, n_bins: int = DEFAULT_ECE_BINS) -> float:
    """Debiased top-label ECE with ``n_bins`` equal-width bins (the bins of
    :func:`expected_calibration_error`): ``(1/N) sum_b sqrt(max(S_b^2 - V_b, 0))`` with
    ``S_b = sum(correct) - sum(confidence)`` and ``V_b = sum c(1-c)`` over bin ``b``. 0 for a bin
    whose gap is within its sampling noise; see :mod:`effplan.records.calibration` for its interval."""
    p, y = validate(probs, labels, where="debiased_calibration_error")
    n_bins = check_bins(n_bins)
    idx = np.arange(len(y))[None, :]
    sc, sk, sv = bin_sums(p.max(axis=1), correct(p, y), idx, n_bins)
    return float(debiased_from_sums(sc, sk, sv, len(y))[0])



# ------------------------------------------------------------------------ public metrics
def accuracy(probs: Any, labels: Any) -> float:
    """Share of rows whose argmax (lowest index on ties) equals the label; see module docstring."""
    p, y = validate(probs, labels, where="accuracy")
    return float(correct(p, y).mean())


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = DEFAULT_ECE_BINS) -> float:
    """Top-label ECE with ``n_bins`` equal-width confidence bins (default 15).

    Bin ``b`` holds confidences in ``(b/n_bins, (b+1)/n_bins]`` (confidence 0 in bin 0); empty bins
    add 0. ``ECE = sum_b (n_b/N) |acc_b - conf_b|``. See the module docstring.
    """
    p, y = validate(probs, labels, where="expected_calibration_error")
    n_bins = check_bins(n_bins)
    idx = np.arange(len(y))[None, :]
    return float(ece_resampled(p.max(axis=1), correct(p, y), idx, n_bins)[0])


def negative_log_likelihood(probs: Any, labels: Any, eps: float = NLL_EPS) -> float:
    """Mean ``-ln p[label]`` in nats, ``p`` clipped below at ``eps`` (default 1e-12)."""
    p, y = validate(probs, labels, where="negative_log_likelihood")
    if not (isinstance(eps, int | float) and 0 < eps < 1):
        raise ValidationError("eps", f"must be in (0, 1), got {eps!r}")
    return float(nll_terms(p, y, eps).mean())


def brier_score(probs: Any, labels: Any) -> float:
    """Multi-class Brier score: mean ``sum_k (p_k - onehot_k)^2``, in [0, 2]."""
    p, y = validate(probs, labels, where="brier_score")
    return float(brier_terms(p, y).mean())


def clipped_rows(p: np.ndarray, y: np.ndarray, eps: float = NLL_EPS) -> int:
    """Rows whose probability of the label is below ``eps`` (their NLL term is clipped)."""
    return int((p[np.arange(len(y)), y] < eps).sum())


def binary_brier_terms(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(p_1 - y)^2`` per row of a two-class problem (scikit-learn's ``brier_score_loss``)."""
    if p.shape[1] != 2:
        raise ValidationError("metrics", f"brier_binary needs two classes, got {p.shape[1]}; use 'brier'")
    return np.square(p[:, 1] - (y == 1))


def binary_brier_score(probs: Any, labels: Any) -> float:
    """scikit-learn's binary Brier score ``mean (p_1 - y)^2``, in [0, 1]: half of :func:`brier_score`
    on two classes."""
    p, y = validate(probs, labels, where="binary_brier_score")
    return float(binary_brier_terms(p, y).mean())


def perplexity(probs: Any, labels: Any, eps: float = NLL_EPS) -> float:
    """``exp(negative_log_likelihood)``: one row per predicted token (tokens x vocabulary)."""
    p, y = validate(probs, labels, where="perplexity")
    return float(math.exp(nll_terms(p, y, eps).mean()))


# ------------------------------------------------------------------------ metric registry
@dataclass(frozen=True)
class Metric:
    """A named metric ``fn(probs, labels) -> float`` and its direction.

    ``per_example`` (optional) returns one value per row whose mean is the metric; ``transform``
    (optional) maps that mean to the metric (perplexity: ``exp``). Both let the bootstrap of
    :func:`effplan.evaluate` run vectorized; without them ``fn`` is called once per resample.
    """

    name: str
    fn: Callable[[Any, Any], float]
    higher_is_better: bool
    per_example: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    transform: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "@" in self.name:
            raise ValidationError("metrics", f"a metric name must be a non-empty string without '@', "
                                  f"got {self.name!r}")
        if not callable(self.fn):
            raise ValidationError("metrics", f"metric {self.name!r}: fn must be callable")
        if not isinstance(self.higher_is_better, bool | np.bool_):
            raise ValidationError("metrics", f"metric {self.name!r}: higher_is_better must be True/False")


#: the built-in metrics by name (``ece`` is the debiased ECE, ``ece_binned`` the plug-in one; both
#: use the default 15 bins)
BUILTIN_METRICS: dict[str, Metric] = {
    "accuracy": Metric("accuracy", accuracy, True, per_example=correct),
    "ece": Metric("ece", debiased_calibration_error, False),
    "ece_binned": Metric("ece_binned", expected_calibration_error, False),
    "nll": Metric("nll", negative_log_likelihood, False, per_example=nll_terms),
    "brier": Metric("brier", brier_score, False, per_example=brier_terms),
    "brier_binary": Metric("brier_binary", binary_brier_score, False, per_example=binary_brier_terms),
    "perplexity": Metric("perplexity", perplexity, False, per_example=nll_terms, transform=np.exp),
}
#: long names accepted for the built-ins
ALIASES = {"debiased_calibration_error": "ece", "expected_calibration_error": "ece_binned",
           "negative_log_likelihood": "nll", "brier_score": "brier", "binary_brier_score": "brier_binary",
           "acc": "accuracy"}
#: direction of the built-ins by name
HIGHER_IS_BETTER = {name: m.higher_is_better for name, m in BUILTIN_METRICS.items()}


def resolve_metric(spec: Any, name: str | None = None) -> Metric:
    """A :class:`Metric` from a built-in name, a :class:`Metric`, or ``(fn, higher_is_better)``."""
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str):
        key = ALIASES.get(spec, spec)
        if key not in BUILTIN_METRICS:
            raise ValidationError("metrics", f"unknown metric {spec!r}; built-ins are "
                                  f"{sorted(BUILTIN_METRICS)}, or pass Metric(name, fn, higher_is_better)")
        return BUILTIN_METRICS[key]
    if isinstance(spec, tuple) and len(spec) == 2 and callable(spec[0]) and name:
        return Metric(name, spec[0], bool(spec[1]))
    raise ValidationError("metrics", f"cannot use {spec!r} as a metric: give a built-in name "
                          f"({sorted(BUILTIN_METRICS)}), a Metric, or name -> (fn, higher_is_better)")
