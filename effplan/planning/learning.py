"""What the next 2x of data or compute buys, and how far that can be trusted.

numpy / pandas / scipy only (never torch). Three parts:

Learning curves (:func:`fit_learning_curve` -> :class:`CurveFit`)
-----------------------------------------------------------------
A saturating power law in the training-set size ``n`` (items):

* higher is better (accuracy): ``score(n) = a - b * n^(-c)``;
* lower is better (loss, NLL, ECE): ``loss(n) = a + b * n^(-c)`` (``a`` is then the ``e`` of the
  literature: the loss with unlimited data),

with ``b >= 0`` and ``c`` in [:data:`EXPONENT_MIN`, :data:`EXPONENT_MAX`], so more data never makes
the fitted curve worse. ``a`` may be bounded (``limit=``: an accuracy never exceeds 1, a loss is
never below 0). The fit is least squares over every run (each seed's score at each size): for a
fixed ``c`` the model is linear in ``a`` and ``b`` (closed form, constraints applied); ``c`` is chosen
on a log-spaced grid of :data:`EXPONENT_GRID` values and refined by a bounded 1-D search
(``scipy.optimize.minimize_scalar``) between the grid neighbours. At least 3 distinct sizes are
needed (3 parameters).

Intervals come from the seeds: a bootstrap that resamples, at every size, that size's runs with
replacement (``n_bootstrap`` resamples, default 1000, seeded), refitting each resample on the grid;
the interval of a prediction is the percentile interval of the resampled predictions at
``confidence`` (0.95). With one run per size there is nothing to resample: intervals are NaN and
``notes`` says so. The resampled parameters are kept (``bootstrap_params``).

How far a prediction is trusted (:meth:`CurveFit.predict`): ``ratio = n / largest size measured``;
up to :data:`SPECULATIVE_RATIO` (4x) it is an extrapolation, beyond it the prediction is labelled
``speculative``; beyond :data:`REFUSED_RATIO` (16x) it is refused with
:class:`~effplan.errors.ExtrapolationError`.

Generalization under shift (:func:`fit_generalization` -> :class:`GeneralizationFit`)
-----------------------------------------------------------------------------------
The same fit for the clean scores and for one condition's scores (input noise, a shifted data
set), on the SAME bootstrap resamples (each run was evaluated under both, so the two curves are
paired), and the gap ``gap(n) = clean(n) - shifted(n)`` (higher is better; ``shifted - clean`` for
lower is better: positive = worse under the condition). :meth:`GeneralizationFit.sentence` answers
"do smaller training sets cost us later in generalization?" in one line: "at 2x data (2,694 items)
the clean accuracy rises 0.6 points [0.3, 0.9] and the noise-0.3 gap narrows from 4.1 to 3.2
points [2.5, 3.9]" -- both from the fitted curves at the largest size measured and at ``factor``
times it; accuracies in percentage points.

Compute-optimal plans (:func:`compute_optimal` -> :class:`ComputePlan`)
----------------------------------------------------------------------
A published fit ``L(N, D) = E + A/N^alpha + B/D^beta`` (loss in nats per token; ``N`` parameters,
``D`` training tokens, compute ``C = 6 N D`` FLOPs), from ``effplan/data/scaling_laws.csv``
(:func:`effplan.reference.scaling_laws`: Hoffmann et al. 2022 Approach 3, and the Epoch AI
replication's refit, Besiroglu et al. 2024). Minimising ``L`` subject to ``C = 6ND``:

* ``G = (alpha * A / (beta * B))^(1 / (alpha + beta))``;
* ``N_opt = G * (C / 6)^(beta / (alpha + beta))``; ``D_opt = C / (6 * N_opt)``;
* ``loss = E + A / N_opt^alpha + B / D_opt^beta``.

A budget in dollars becomes FLOPs through catalog hardware: ``gpu_hours = budget_usd /
price_per_hour_usd``; ``C = gpu_hours * 3600 * peak(dtype) * MFU``. The MFU is entered (``mfu=``)
or sourced: the model-size range of ``effplan/data/training_utilization.csv``
(:func:`effplan.reference.training_utilization_range`), its geometric middle as the figure and its
low / high ends as the range of FLOPs (and so of ``N``, ``D``, loss). The range depends on ``N``,
which depends on ``C``: the size bucket is found by iterating (at most 8 times; a budget on a
bucket's edge takes the lower MFU, and ``notes`` says so). Given FLOPs and hardware instead,
``gpu_hours = C / (3600 * peak * MFU)`` and ``cost_usd = gpu_hours * price``. ``devices =
ceil(gpu_hours / (months * HOURS_PER_MONTH))`` finish the run within ``months`` (the published
MFUs are whole-cluster figures, so parallel efficiency is in them).

Serving cost of the model on the same hardware: the model is described as a generation row
(bf16 weights ``2 N`` bytes, ``2 N`` FLOPs per prompt and per output token, a KV cache of ``2 *
layers * d_model * 2`` bytes per token for a Chinchilla-shaped model, ``d_model = 102.4 *
layers`` and ``N = 12 * layers * d_model^2`` -- Chinchilla 70B has 80 layers of width 8192,
Hoffmann et al. Table 4 -- unless ``kv_cache_bytes_per_token=`` is given) at concurrencies
:data:`SERVING_CONCURRENCY`, projected onto the hardware by effplan's generation roofline
(:func:`effplan.planning.project_generation`: prefill compute-bound, decode memory-bound, at
:data:`~effplan.planning.ASSUMED_EFFICIENCY` of the roofline since nothing was measured; no launch
floor, so optimistic) and planned by :func:`effplan.plan` with a
:class:`~effplan.GenerationWorkload` (default: :func:`effplan.defaults.generation_workload`,
512 prompt and 256 output tokens, no latency targets): the largest concurrency whose weights and
KV cache fit 90% of the device memory. The cost per 1M output tokens is that of a fully used
instance at the workload's target utilisation: ``price_per_hour / (capacity_requests_per_s *
3600 * output_tokens) * 1e6``. A model whose weights do not fit one device is served on the
smallest multi-GPU instance of that GPU in ``effplan/data/instances.csv`` that holds them (tensor
parallel over its GPUs, with the all-reduce term of :mod:`effplan.planning.tensor_parallel`; the
note names the instance and the cost is the instance's); where no instance holds them it is not
costed: NaN with the reason. ``trade_off`` repeats this for models
``param_multipliers`` times ``N_opt`` trained on the same compute (``D = C / (6 N)``): a smaller
model trained longer reaches a slightly higher loss and costs less to serve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..refdata import catalog as _cat
from ..refdata import reference as _ref
from ..errors import ExtrapolationError, ValidationError
from ..records.schema import number as _number
from .inputs import ASSUMED_EFFICIENCY, HOURS_PER_MONTH
from ..safe import html_text

__all__ = [
    "CurveFit", "CurvePrediction", "GeneralizationFit", "ComputePlan", "fit_learning_curve",
    "fit_generalization", "compute_optimal", "optimal_split", "SPECULATIVE_RATIO", "REFUSED_RATIO",
    "SERVING_CONCURRENCY",
]

#: beyond this many times the largest size measured a prediction is labelled speculative
SPECULATIVE_RATIO = 4.0
#: beyond this many times the largest size measured a prediction is refused
REFUSED_RATIO = 16.0
#: bounds and grid of the power-law exponent ``c``
EXPONENT_MIN, EXPONENT_MAX, EXPONENT_GRID = 0.01, 4.0, 240
DEFAULT_BOOTSTRAP = 1000
#: concurrencies (sequences decoded together) at which a compute-optimal model is costed for serving
SERVING_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: Chinchilla's shape (Hoffmann et al. 2022, Table 4: 80 layers, d_model 8192): d_model / layers
CHINCHILLA_WIDTH_PER_LAYER = 8192 / 80
#: bytes per parameter (and per KV-cache value) by dtype
_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
#: the name of the stand-in hardware a described (not measured) model is projected from
_DESCRIBED = "described model (not measured)"


# =============================================================================== learning curves
def _floats(name: str, values: Any, *, positive: bool = False) -> np.ndarray:
    if isinstance(values, (str, bytes, Mapping)) or np.ndim(values) != 1:
        raise ValidationError(name, f"expected a 1-D sequence of numbers, got {values!r}")
    out = np.array([_number(f"{name}[{i}]", v, lo=0 if positive else None, lo_open=positive)
                    for i, v in enumerate(values)], dtype=float)
    return out


def _check_sizes_scores(sizes: Any, scores: Any, name: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    n = _floats("sizes", sizes, positive=True)
    y = _floats(name, scores)
    if len(n) != len(y):
        raise ValidationError(name, f"{len(y)} values for {len(n)} sizes: give one per run")
    if len(np.unique(n)) < 3:
        raise ValidationError("sizes", f"a saturating power law has 3 parameters: measure at least 3 "
                              f"distinct sizes, got {sorted(set(n.tolist()))}")
    return n, y


def _resample_weights(n: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
    """(R, len(n)) counts: at every distinct size, that size's runs resampled with replacement."""
    rng = np.random.default_rng([int(seed), 27])
    w = np.zeros((n_bootstrap, len(n)))
    for size in np.unique(n):
        idx = np.flatnonzero(n == size)
        draws = rng.integers(0, len(idx), size=(n_bootstrap, len(idx)))
        for j, col in enumerate(idx):
            w[:, col] = (draws == j).sum(axis=1)
    return w


def _solve(Sw: np.ndarray, Sy: np.ndarray, Syy: np.ndarray, Sx: np.ndarray, Sxx: np.ndarray, Sxy: np.ndarray,
           s: float, limit: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The constrained least-squares ``a``, ``k`` of ``y = a + k x`` (``s * k >= 0``: more data never
    makes it worse; ``a`` on the allowed side of ``limit``) and the weighted SSE, from the sums."""
    with np.errstate(divide="ignore", invalid="ignore"):
        det = Sw * Sxx - Sx * Sx
        k = np.where(det > 0, (Sw * Sxy - Sx * Sy) / det, 0.0)
        a = (Sy - k * Sx) / Sw
        flat = s * k < 0                      # more data would make it worse: the flat fit instead
        k = np.where(flat, 0.0, k)
        a = np.where(flat, Sy / Sw, a)
        if limit is not None:
            over = (a > limit) if s < 0 else (a < limit)
            k_lim = np.where(Sxx > 0, (Sxy - limit * Sx) / Sxx, 0.0)
            k_lim = np.where(s * k_lim < 0, 0.0, k_lim)
            a = np.where(over, limit, a)
            k = np.where(over, k_lim, k)
    sse = Syy - 2 * a * Sy - 2 * k * Sxy + a * a * Sw + 2 * a * k * Sx + k * k * Sxx
    return a, k, sse


def _linear(W: np.ndarray, X: np.ndarray, y: np.ndarray, s: float, limit: float | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For weights W (R, n) and designs X (G, n) = (n / n_ref)^(-c), one per grid exponent:
    ``a``, ``k`` and SSE of every resample at every exponent, each (R, G)."""
    return _solve(W.sum(axis=1)[:, None], (W @ y)[:, None], (W @ (y * y))[:, None], W @ X.T, W @ (X * X).T,
                  W @ (X * y).T, s, limit)


def _linear_rows(W: np.ndarray, X: np.ndarray, y: np.ndarray, s: float, limit: float | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_linear` with one design per resample (X (R, n) paired with W (R, n)): (R,) each."""
    return _solve(W.sum(axis=1), W @ y, W @ (y * y), (W * X).sum(axis=1), (W * X * X).sum(axis=1),
                  (W * X * y).sum(axis=1), s, limit)


def _fit_core(n: np.ndarray, y: np.ndarray, higher_is_better: bool, limit: float | None,
              W: np.ndarray) -> tuple[tuple[float, float, float], np.ndarray]:
    """((a, b, c) of the fit to all runs, (R, 3) of the resamples W); b in the units of n."""
    from scipy.optimize import minimize_scalar

    s = -1.0 if higher_is_better else 1.0
    n_ref = float(n.max())
    u = n / n_ref
    grid = np.geomspace(EXPONENT_MIN, EXPONENT_MAX, EXPONENT_GRID)
    X = u[None, :] ** (-grid[:, None])
    ones = np.ones((1, len(n)))
    a0, k0, sse0 = _linear(ones, X, y, s, limit)
    g = int(np.argmin(sse0[0]))

    def sse_at(c: float) -> float:
        return float(_linear(ones, u[None, :] ** (-c), y, s, limit)[2][0, 0])

    lo, hi = grid[max(0, g - 1)], grid[min(len(grid) - 1, g + 1)]
    res = minimize_scalar(sse_at, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
    c = float(res.x) if res.fun <= sse0[0, g] else float(grid[g])
    a, k, _ = _linear(ones, u[None, :] ** (-c), y, s, limit)
    point = (float(a[0, 0]), abs(float(k[0, 0])) * n_ref ** c, c)
    if W.size == 0:
        return point, np.empty((0, 3))
    _, _, SSE = _linear(W, X, y, s, limit)
    j = np.argmin(SSE, axis=1)
    # refine each resample's exponent between its grid neighbours: the vertex of the parabola
    # through the three SSE values (in log c), then its own a and k at that exponent
    rows = np.arange(len(W))
    jm, jp = np.clip(j - 1, 0, len(grid) - 1), np.clip(j + 1, 0, len(grid) - 1)
    s0, s1, s2 = SSE[rows, jm], SSE[rows, j], SSE[rows, jp]
    curv = s0 - 2 * s1 + s2
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where((curv > 0) & (jm != j) & (jp != j), 0.5 * (s0 - s2) / curv, 0.0)
    step = math.log(grid[1] / grid[0])
    cb = np.exp(np.log(grid[j]) + np.clip(delta, -1.0, 1.0) * step)
    Ab, Kb, _ = _linear_rows(W, u[None, :] ** (-cb[:, None]), y, s, limit)
    boot = np.column_stack([Ab, np.abs(Kb) * n_ref ** cb, cb])
    return point, boot


def _curve(n: Any, a: Any, b: Any, c: Any, higher_is_better: bool) -> np.ndarray:
    """``a -/+ b * n^(-c)``, broadcast, computed as ``exp(log b - c log n)`` (b may be large)."""
    s = -1.0 if higher_is_better else 1.0
    n = np.asarray(n, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore"):
        term = np.where(b > 0, np.exp(np.log(np.where(b > 0, b, 1.0)) - np.asarray(c) * np.log(n)), 0.0)
    return np.asarray(a) + s * term


@dataclass(frozen=True)
class CurvePrediction:
    """One prediction of a fitted curve: ``value`` and its bootstrap interval ``[low, high]`` at
    ``confidence``; ``ratio_to_largest`` = n / largest size measured; ``speculative`` beyond
    :data:`SPECULATIVE_RATIO`; ``note`` says how far the prediction reaches."""

    n: float
    value: float
    low: float
    high: float
    confidence: float
    ratio_to_largest: float
    speculative: bool
    note: str

    def __str__(self) -> str:
        band = (f" [{self.low:.4g}, {self.high:.4g}]" if math.isfinite(self.low) else " (no interval)")
        return f"{self.value:.4g}{band} at n={self.n:,.0f} ({self.note})"


def _reach(n: float, largest: float, smallest: float) -> tuple[float, bool, str]:
    ratio = n / largest
    if ratio > REFUSED_RATIO:
        raise ExtrapolationError("n", f"{n:,.0f} is {ratio:.3g}x the largest size measured "
                                 f"({largest:,.0f}); predictions beyond {REFUSED_RATIO:g}x are refused: "
                                 "measure a larger size", ratio=ratio)
    if ratio > SPECULATIVE_RATIO:
        return ratio, True, (f"speculative: {ratio:.3g}x the largest size measured (beyond "
                             f"{SPECULATIVE_RATIO:g}x)")
    if ratio > 1:
        return ratio, False, f"extrapolated: {ratio:.3g}x the largest size measured"
    if n < smallest:
        return ratio, False, "extrapolated below the smallest size measured"
    return ratio, False, "within the sizes measured"


@dataclass(frozen=True, eq=False)
class CurveFit:
    """A fitted saturating power law (see the module docstring).

    ``asymptote`` (a), ``scale`` (b, for ``n`` in items) and ``exponent`` (c): ``score = a - b *
    n^(-c)`` (``higher_is_better``) or ``loss = a + b * n^(-c)``. ``sizes`` / ``scores``: the runs it
    was fitted on; ``bootstrap_params``: (R, 3) the resampled (a, b, c); ``rmse``: root mean square
    residual of the runs; ``notes``: what limits the fit (one run per size, a flat fit...).
    """

    asymptote: float
    scale: float
    exponent: float
    higher_is_better: bool
    sizes: tuple[float, ...]
    scores: tuple[float, ...]
    rmse: float
    confidence: float = 0.95
    limit: float | None = None
    metric: str = ""
    condition: str = "clean"
    seed: int = 0
    bootstrap_params: np.ndarray = field(default_factory=lambda: np.empty((0, 3)), repr=False)
    notes: tuple[str, ...] = ()

    @property
    def largest_size(self) -> float:
        return max(self.sizes)

    @property
    def smallest_size(self) -> float:
        return min(self.sizes)

    @property
    def poor_fit(self) -> bool:
        """True when the curve misses a measured size's mean by more than 3 standard errors."""
        return any(note.startswith("poor fit") for note in self.notes)

    @property
    def formula(self) -> str:
        sign = "-" if self.higher_is_better else "+"
        name = self.metric or ("score" if self.higher_is_better else "loss")
        return f"{name} = {self.asymptote:.4g} {sign} {self.scale:.4g} * n^-{self.exponent:.3g}"

    def value(self, n: Any) -> np.ndarray:
        """The fitted curve at ``n`` (array; no reach check: see :meth:`predict`)."""
        return _curve(n, self.asymptote, self.scale, self.exponent, self.higher_is_better)

    def _samples(self, n: Any) -> np.ndarray:
        """(R, len(n)) the resampled curves at ``n``."""
        bp = self.bootstrap_params
        n = np.atleast_1d(np.asarray(n, dtype=float))
        return _curve(n[None, :], bp[:, :1], bp[:, 1:2], bp[:, 2:3], self.higher_is_better)

    def _band(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if samples.shape[0] == 0:
            nan = np.full(samples.shape[1], np.nan)
            return nan, nan
        q = (1 - self.confidence) / 2
        lo, hi = np.quantile(samples, [q, 1 - q], axis=0)
        return lo, hi

    def predict(self, n: float) -> CurvePrediction:
        """The curve at ``n`` items with its interval. Beyond 4x the largest size measured it is
        labelled speculative; beyond 16x it raises :class:`~effplan.errors.ExtrapolationError`."""
        n = _number("n", n, lo=0, lo_open=True)
        ratio, spec, note = _reach(n, self.largest_size, self.smallest_size)
        lo, hi = self._band(self._samples([n]))
        return CurvePrediction(n=float(n), value=float(self.value(n)), low=float(lo[0]), high=float(hi[0]),
                               confidence=self.confidence, ratio_to_largest=ratio, speculative=spec, note=note)

    def curve(self, n: Any) -> pd.DataFrame:
        """The curve at many sizes: ``n, value, low, high, ratio_to_largest, speculative`` (refuses
        sizes beyond 16x as :meth:`predict` does)."""
        ns = _floats("n", np.atleast_1d(n), positive=True)
        reach = [_reach(float(v), self.largest_size, self.smallest_size) for v in ns]
        lo, hi = self._band(self._samples(ns))
        return pd.DataFrame({"n": ns, "value": self.value(ns), "low": lo, "high": hi,
                             "ratio_to_largest": [r[0] for r in reach],
                             "speculative": [r[1] for r in reach]})

    def parameters(self) -> pd.DataFrame:
        """``parameter, value, low, high``: a, b, c with their bootstrap intervals."""
        lo, hi = self._band(self.bootstrap_params) if len(self.bootstrap_params) else (
            np.full(3, np.nan), np.full(3, np.nan))
        return pd.DataFrame({"parameter": ["asymptote", "scale", "exponent"],
                             "value": [self.asymptote, self.scale, self.exponent], "low": lo, "high": hi})

    def to_dict(self) -> dict[str, Any]:
        return {"asymptote": self.asymptote, "scale": self.scale, "exponent": self.exponent,
                "higher_is_better": self.higher_is_better, "metric": self.metric,
                "condition": self.condition, "sizes": list(self.sizes), "scores": list(self.scores),
                "rmse": self.rmse, "confidence": self.confidence, "limit": self.limit, "seed": self.seed,
                "n_bootstrap": int(len(self.bootstrap_params)), "formula": self.formula,
                "notes": list(self.notes)}


#: a fit is poor when the runs' mean at some size is this many standard errors from the curve
LACK_OF_FIT_SE = 3.0


def _lack_of_fit(n: np.ndarray, y: np.ndarray, resid: np.ndarray) -> str:
    """A note when the curve misses the runs' mean at some size by more than
    :data:`LACK_OF_FIT_SE` standard errors (the pooled spread of the seeds around their size's
    mean / sqrt(runs at that size)); "" otherwise, or with one run per size (nothing to judge by)."""
    sizes = np.unique(n)
    dof = len(n) - len(sizes)
    if dof <= 0:
        return ""
    within = sum(float(((y[n == v] - y[n == v].mean()) ** 2).sum()) for v in sizes)
    sd = math.sqrt(within / dof)
    worst, where = 0.0, None
    for v in sizes:
        m = n == v
        se = sd / math.sqrt(int(m.sum()))
        z = abs(float(resid[m].mean())) / se if se > 0 else (math.inf if abs(float(resid[m].mean())) > 1e-12 else 0)
        if z > worst:
            worst, where = z, v
    if worst <= LACK_OF_FIT_SE:
        return ""
    m = n == where
    return (f"poor fit: at {where:,.0f} items the runs average {float(y[m].mean()):.4g} but the curve gives "
            f"{float(y[m].mean() - resid[m].mean()):.4g} ({worst:.3g} standard errors): the scores do not "
            "follow a saturating power law here (they may fall with more data), so do not trust its "
            "extrapolation")


def _make_fit(n: np.ndarray, y: np.ndarray, *, higher_is_better: bool, limit: float | None, W: np.ndarray,
              confidence: float, metric: str, condition: str, seed: int) -> CurveFit:
    (a, b, c), boot = _fit_core(n, y, higher_is_better, limit, W)
    resid = y - _curve(n, a, b, c, higher_is_better)
    notes = []
    if W.size == 0:
        notes.append("one run per size: no interval (train several seeds per size)")
    if b == 0:
        notes.append("flat: the scores do not improve with more data, so the fit is their mean")
    if c >= EXPONENT_MAX * 0.999:
        notes.append(f"the exponent reached its bound {EXPONENT_MAX:g}: the curve is already saturated")
    if limit is not None and a == limit:
        notes.append(f"the asymptote reached its bound {limit:g}")
    poor = _lack_of_fit(n, y, resid)
    if poor:
        notes.append(poor)
    return CurveFit(asymptote=a, scale=b, exponent=c, higher_is_better=bool(higher_is_better),
                    sizes=tuple(n.tolist()), scores=tuple(y.tolist()), rmse=float(np.sqrt(np.mean(resid ** 2))),
                    confidence=confidence, limit=limit, metric=metric, condition=condition, seed=int(seed),
                    bootstrap_params=boot, notes=tuple(notes))


def _options(higher_is_better: Any, limit: Any, n_bootstrap: Any, confidence: Any, seed: Any
             ) -> tuple[bool, float | None, int, float, int]:
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise ValidationError("higher_is_better", f"must be True or False, got {higher_is_better!r}")
    lim = None if limit is None else _number("limit", limit)
    nb = int(_number("n_bootstrap", n_bootstrap, lo=0, integer=True))
    conf = _number("confidence", confidence, lo=0, lo_open=True, hi=0.999)
    sd = int(_number("seed", seed, lo=0, integer=True))
    return bool(higher_is_better), lim, nb, conf, sd


def fit_learning_curve(sizes: Sequence[float], scores: Sequence[float], *, higher_is_better: bool = True,
                       limit: float | None = None, n_bootstrap: int = DEFAULT_BOOTSTRAP,
                       confidence: float = 0.95, seed: int = 0, metric: str = "",
                       condition: str = "clean") -> CurveFit:
    """Fit a saturating power law to scores measured at training-set sizes (see the module docstring).

    ``sizes``: items trained on, one per run (repeat a size for each seed); ``scores``: the metric of
    each run. ``higher_is_better``: accuracy-like (True) or loss-like (False). ``limit``: bound of the
    asymptote (an accuracy never exceeds 1, a loss is never below 0). ``n_bootstrap``, ``confidence``,
    ``seed``: the seed bootstrap of the intervals. ``metric`` / ``condition``: labels.
    """
    hib, lim, nb, conf, sd = _options(higher_is_better, limit, n_bootstrap, confidence, seed)
    n, y = _check_sizes_scores(sizes, scores)
    reps = max(int((n == v).sum()) for v in np.unique(n))
    W = _resample_weights(n, nb, sd) if (nb and reps > 1) else np.empty((0, len(n)))
    return _make_fit(n, y, higher_is_better=hib, limit=lim, W=W, confidence=conf, metric=metric,
                     condition=condition, seed=sd)


@dataclass(frozen=True)
class _Change:
    """The clean curve and the gap at the largest size measured and at ``factor`` times it."""

    n_now: float
    n_then: float
    clean_now: float
    clean_then: float
    rise: tuple[float, float, float]
    gap_now: tuple[float, float, float]
    gap_then: tuple[float, float, float]
    speculative: bool
    note: str


@dataclass(frozen=True, eq=False)
class GeneralizationFit:
    """The clean curve, one condition's curve, fitted on the same bootstrap resamples, and the
    gap between them (positive = worse under the condition). See the module docstring."""

    clean: CurveFit
    shifted: CurveFit
    condition: str
    metric: str
    points: bool

    @property
    def higher_is_better(self) -> bool:
        return self.clean.higher_is_better

    def _gap_samples(self, n: Any) -> np.ndarray:
        s = 1.0 if self.higher_is_better else -1.0
        return s * (self.clean._samples(n) - self.shifted._samples(n))

    def gap_value(self, n: Any) -> np.ndarray:
        s = 1.0 if self.higher_is_better else -1.0
        return s * (self.clean.value(n) - self.shifted.value(n))

    def gap(self, n: float) -> CurvePrediction:
        """The gap (clean minus the condition, worse-positive) at ``n`` with its paired interval."""
        n = _number("n", n, lo=0, lo_open=True)
        ratio, spec, note = _reach(n, self.clean.largest_size, self.clean.smallest_size)
        lo, hi = self.clean._band(self._gap_samples([n]))
        return CurvePrediction(n=float(n), value=float(self.gap_value(n)), low=float(lo[0]), high=float(hi[0]),
                               confidence=self.clean.confidence, ratio_to_largest=ratio, speculative=spec,
                               note=note)

    def frame(self, n: Any) -> pd.DataFrame:
        """``n, clean, clean_low, clean_high, shifted, shifted_low, shifted_high, gap, gap_low, gap_high``."""
        c, sh = self.clean.curve(n), self.shifted.curve(n)
        glo, ghi = self.clean._band(self._gap_samples(c["n"].to_numpy()))
        return pd.DataFrame({"n": c["n"], "clean": c["value"], "clean_low": c["low"], "clean_high": c["high"],
                             "shifted": sh["value"], "shifted_low": sh["low"], "shifted_high": sh["high"],
                             "gap": self.gap_value(c["n"].to_numpy()), "gap_low": glo, "gap_high": ghi,
                             "speculative": c["speculative"]})

    def change(self, factor: float = 2.0) -> _Change:
        """The clean rise and the gap from the largest size measured to ``factor`` times it."""
        factor = _number("factor", factor, lo=1, lo_open=True)
        n0 = self.clean.largest_size
        n1 = n0 * factor
        _, spec, note = _reach(n1, n0, self.clean.smallest_size)
        s = 1.0 if self.higher_is_better else -1.0
        rise_b = s * (self.clean._samples([n1]) - self.clean._samples([n0]))[:, 0]
        rise = float(s * (self.clean.value(n1) - self.clean.value(n0)))
        q = (1 - self.clean.confidence) / 2

        def band(x: np.ndarray) -> tuple[float, float]:
            return (float(np.quantile(x, q)), float(np.quantile(x, 1 - q))) if len(x) else (math.nan, math.nan)

        g0, g1 = self.gap(n0), self.gap(n1)
        return _Change(n_now=n0, n_then=n1, clean_now=float(self.clean.value(n0)),
                       clean_then=float(self.clean.value(n1)), rise=(rise, *band(rise_b)),
                       gap_now=(g0.value, g0.low, g0.high), gap_then=(g1.value, g1.low, g1.high),
                       speculative=spec, note=note)

    def _repr_html_(self) -> str:
        return f"<p><b>{html_text(self.sentence())}</b></p>"

    def sentence(self, factor: float = 2.0) -> str:
        """One line: what ``factor`` x the data does to the clean metric and to the gap."""
        ch = self.change(factor)
        k, unit = (100.0, " points") if self.points else (1.0, "")
        fmt = (lambda v: f"{v * k:.1f}") if self.points else (lambda v: f"{v:.3g}")  # noqa: E731

        def interval(lo: float, hi: float) -> str:
            return f" [{fmt(lo)}, {fmt(hi)}]" if math.isfinite(lo) else " (no interval: one seed)"

        r, rlo, rhi = ch.rise
        better = "rises" if self.higher_is_better else "falls"
        clean = (f"the clean {self.metric} {better} {fmt(abs(r))}{unit}{interval(rlo, rhi) if r >= 0 else ''}"
                 if fmt(abs(r)) != fmt(0.0) else f"the clean {self.metric} stays at {fmt(ch.clean_now)}")
        if r < 0:  # cannot happen with b >= 0, but never say "rises" for a fall
            clean = f"the clean {self.metric} changes by {fmt(r)}{unit}{interval(rlo, rhi)}"
        g0, (g1, glo, ghi) = ch.gap_now[0], ch.gap_then
        if fmt(g0) == fmt(g1):
            gap = f"the {self.condition} gap stays at {fmt(g0)}{unit}"
        else:
            verb = "narrows" if abs(g1) < abs(g0) else "widens"
            gap = f"the {self.condition} gap {verb} from {fmt(g0)} to {fmt(g1)}{unit}{interval(glo, ghi)}"
        head = "speculative: " if ch.speculative else ""
        poor = [f.condition for f in (self.clean, self.shifted) if f.poor_fit]
        tail = (f" (the {' and '.join(poor)} curve{'s' if len(poor) > 1 else ''} fit{'' if len(poor) > 1 else 's'} "
                "the runs poorly: a rough guide only)" if poor else "")
        return f"{head}at {factor:g}x data ({ch.n_then:,.0f} items) {clean} and {gap}{tail}"


def fit_generalization(sizes: Sequence[float], clean_scores: Sequence[float], shifted_scores: Sequence[float],
                       *, condition: str, higher_is_better: bool = True, metric: str = "accuracy",
                       limit: float | None = None, points: bool | None = None,
                       n_bootstrap: int = DEFAULT_BOOTSTRAP, confidence: float = 0.95,
                       seed: int = 0) -> GeneralizationFit:
    """Fit the clean and one condition's curves on the same resamples (``clean_scores[i]`` and
    ``shifted_scores[i]`` are the same run) and their gap. ``points``: report in percentage points
    (default: for accuracy)."""
    hib, lim, nb, conf, sd = _options(higher_is_better, limit, n_bootstrap, confidence, seed)
    n, yc = _check_sizes_scores(sizes, clean_scores, "clean_scores")
    _, ys = _check_sizes_scores(sizes, shifted_scores, "shifted_scores")
    if not isinstance(condition, str) or not condition:
        raise ValidationError("condition", f"name the condition, got {condition!r}")
    reps = max(int((n == v).sum()) for v in np.unique(n))
    W = _resample_weights(n, nb, sd) if (nb and reps > 1) else np.empty((0, len(n)))
    kw = dict(higher_is_better=hib, limit=lim, W=W, confidence=conf, metric=metric, seed=sd)
    return GeneralizationFit(clean=_make_fit(n, yc, condition="clean", **kw),
                             shifted=_make_fit(n, ys, condition=condition, **kw), condition=condition,
                             metric=metric, points=(metric == "accuracy") if points is None else bool(points))


# ========================================================================= compute-optimal plans
def optimal_split(flops: Any, law: Mapping[str, float] | pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N_opt, D_opt, loss) for compute ``flops`` (C = 6ND) under ``law`` (E, A, B, alpha, beta)."""
    C = np.asarray(flops, dtype=float)
    E, A, B = float(law["E"]), float(law["A"]), float(law["B"])
    al, be = float(law["alpha"]), float(law["beta"])
    G = (al * A / (be * B)) ** (1.0 / (al + be))
    N = G * (C / 6.0) ** (be / (al + be))
    D = C / (6.0 * N)
    return N, D, E + A / N ** al + B / D ** be


def _loss(N: Any, D: Any, law: Mapping[str, float] | pd.Series) -> np.ndarray:
    return float(law["E"]) + float(law["A"]) / np.asarray(N, float) ** float(law["alpha"]) \
        + float(law["B"]) / np.asarray(D, float) ** float(law["beta"])


def _count(v: float) -> str:
    """Parameters and tokens as ML papers write them: 32.2B, 2.98T, 124M."""
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def _kv_bytes_per_token(params: float, bytes_per_value: int) -> float:
    """K and V of every layer, per token, for a Chinchilla-shaped model of ``params`` parameters."""
    layers = (params / (12.0 * CHINCHILLA_WIDTH_PER_LAYER ** 2)) ** (1.0 / 3.0)
    return 2.0 * layers * (CHINCHILLA_WIDTH_PER_LAYER * layers) * bytes_per_value


@dataclass(frozen=True, eq=False)
class ComputePlan:
    """A compute-optimal training plan and what its model costs to serve (see the module docstring).

    Figures of the central MFU, with ``_low`` / ``_high`` at the ends of the MFU range (a budget
    fixes the dollars, so FLOPs, parameters, tokens and loss move; FLOPs given fix the compute, so
    GPU-hours and cost move). Money in USD; ``loss_nats`` in nats per token of the fit's corpus.
    ``trade_off``: models ``param_multiplier`` x ``params`` trained on the same compute, their loss
    and serving cost. ``notes``: what limits the figures.
    """

    fit: str
    fit_source: str
    flops: float
    flops_low: float
    flops_high: float
    flops_source: str
    params: float
    params_low: float
    params_high: float
    tokens: float
    tokens_low: float
    tokens_high: float
    loss_nats: float
    loss_low_nats: float
    loss_high_nats: float
    hardware: str | None = None
    dtype: str = "bfloat16"
    months: float = 3.0
    price_per_hour_usd: float = math.nan
    price_source: str = ""
    mfu: float = math.nan
    mfu_low: float = math.nan
    mfu_high: float = math.nan
    mfu_source: str = ""
    gpu_hours: float = math.nan
    gpu_hours_low: float = math.nan
    gpu_hours_high: float = math.nan
    cost_usd: float = math.nan
    cost_low_usd: float = math.nan
    cost_high_usd: float = math.nan
    devices: float = math.nan
    wall_clock_days: float = math.nan
    serving_cost_per_1m_output_tokens_usd: float = math.nan
    serving_energy_per_response_wh: float = math.nan
    serving_concurrency: float = math.nan
    serving_binding_constraint: str = ""
    serving_note: str = ""
    trade_off: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    notes: tuple[str, ...] = ()

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    def to_frame(self) -> pd.DataFrame:
        """The scalar figures as one row (``trade_off`` apart)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("trade_off", "notes")}
        d["tokens_per_param"] = self.tokens_per_param
        d["notes"] = "; ".join(self.notes)
        return pd.DataFrame([d])

    def sentence(self) -> str:
        """The plan in one or two sentences."""
        from ..formatting import sig, usd

        head = f"{self.flops:.3g} FLOPs"
        if self.hardware and math.isfinite(self.gpu_hours):
            spread = (f" ({self.flops_low:.2g}-{self.flops_high:.2g} over MFU {self.mfu_low:g}-{self.mfu_high:g})"
                      if self.flops_low != self.flops_high else "")
            head = (f"{usd(self.cost_usd)} on {self.hardware} ({sig(self.gpu_hours)} GPU-hours at "
                    f"{usd(self.price_per_hour_usd)}/h; {self.devices:,.0f} GPUs for {self.months:g} months) "
                    f"buys {self.flops:.3g} FLOPs at {self.mfu:.2g} MFU{spread}")
        text = (f"{head}: the compute-optimal model ({self.fit}) has {_count(self.params)} parameters "
                f"trained on {_count(self.tokens)} tokens ({self.tokens_per_param:.3g} per parameter), "
                f"predicted loss {self.loss_nats:.3f} nats/token")
        if math.isfinite(self.serving_cost_per_1m_output_tokens_usd):
            text += (f"; serving it on {self.hardware} costs "
                     f"{usd(self.serving_cost_per_1m_output_tokens_usd)} per 1M output tokens (projected)")
        elif self.hardware and self.serving_note:
            text += f"; serving it on {self.hardware} is {self.serving_note}"
        t = self.trade_off
        if len(t) and (t["param_multiplier"] == 0.5).any():
            r = t[t["param_multiplier"] == 0.5].iloc[0]
            text += f". Half the parameters trained on twice the tokens: loss {r['loss_nats']:.3f}"
            cost = r.get("serving_cost_per_1m_output_tokens_usd", math.nan)
            if math.isfinite(cost):
                text += f", {usd(cost)} per 1M output tokens"
        return text + "."

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html_text(n)}</li>" for n in (
            f"scaling law: {self.fit_source}", f"price: {self.price_source}" if self.price_source else "",
            f"MFU: {self.mfu_source}" if self.mfu_source else "",
            f"serving: {self.serving_note}" if self.serving_note else "", *self.notes) if n)
        return f"<p><b>{html_text(self.sentence())}</b></p><ul style='font-size:smaller'>{items}</ul>"


def _hardware_row(hardware: str, cat: pd.DataFrame, dtype: str) -> tuple[pd.Series, float, float, str]:
    row = _cat.resolve_hardware(hardware, cat)
    col = _cat.dtype_peak_column(dtype)
    peak = float(row[col]) if col else math.nan
    if not (math.isfinite(peak) and peak > 0):
        raise ValidationError("hardware", f"{row['name']!r} has no {col} in the catalog: it cannot be "
                              f"planned for {dtype} training")
    price = float(row["price_per_hour_usd"])
    src = f"{row['price_source']} ({row['price_date']})" if math.isfinite(price) else ""
    return row, peak, price, src


def _mfu_for(params: float, mfu: float | None) -> tuple[float, float, float, str]:
    if mfu is not None:
        return mfu, mfu, mfu, f"entered MFU {mfu:g}"
    lo, mid, hi, src = _ref.training_utilization_range(params)
    return float(lo[0]), float(mid[0]), float(hi[0]), str(src[0])


def _serve(models: list[tuple[str, float]], hw: str, cat: pd.DataFrame, dtype: str, wl: Any,
           kv_bytes: float | None, efficiency: float) -> pd.DataFrame:
    """:func:`_serve_on` ``hw``; a model whose weights do not fit one ``hw`` is served on the
    smallest multi-GPU instance of that GPU that holds them (effplan/data/instances.csv, tensor
    parallel), and its note says so; none holds them: not costed, as before."""
    from .tensor_parallel import instance_catalog_rows, load_instances

    out = _serve_on(models, hw, cat, dtype, wl, kv_bytes, efficiency)
    row = _cat.resolve_hardware(hw, cat)
    one = wl.memory_fraction * float(row["memory_gb"]) * _cat.MEMORY_GB_BYTES
    inst = load_instances()
    inst = inst[inst["gpu"] == row["name"]].sort_values(["gpu_count", "price_per_hour_usd"], kind="mergesort")
    for i, (name, n_params) in enumerate(models):
        need = n_params * _BYTES[dtype]
        fits = inst[inst["gpu_count"] * one >= need]
        if need <= one or fits.empty:
            continue
        pick = fits.iloc[0]
        cat2 = pd.concat([cat, instance_catalog_rows(cat, names=[pick["name"]])], ignore_index=True)
        r = _serve_on([(name, n_params)], str(pick["name"]), cat2, dtype, wl, kv_bytes, efficiency).iloc[0]
        r["note"] = (f"served on {pick['name']} ({int(pick['gpu_count'])} x {row['name']}, tensor parallel "
                     f"{int(pick['gpu_count'])}; its weights do not fit one {row['name']}): " + str(r["note"]))
        out.iloc[i] = r
    return out


def _serve_on(models: list[tuple[str, float]], hw: str, cat: pd.DataFrame, dtype: str, wl: Any,
              kv_bytes: float | None, efficiency: float) -> pd.DataFrame:
    """Per described model: cost per 1M output tokens, energy per response, concurrency, binding
    constraint and a note, through effplan's generation projection and planner."""
    import warnings

    from ..errors import PlanWarning
    from ..records.schema import normalize_measurements
    from .generation import project_generation
    from .planner import plan

    bpp = _BYTES[dtype]
    rows = []
    for name, n_params in models:
        kv = kv_bytes if kv_bytes is not None else _kv_bytes_per_token(n_params, bpp)
        layers = (n_params / (12.0 * CHINCHILLA_WIDTH_PER_LAYER ** 2)) ** (1.0 / 3.0)   # Chinchilla shape
        for c in SERVING_CONCURRENCY:
            rows.append({"candidate": name, "hardware": _DESCRIBED, "mode": "generation", "batch_size": c,
                         "prompt_tokens": wl.prompt_tokens, "output_tokens": wl.output_tokens,
                         # placeholders: nothing was measured; the projection computes every timing
                         # from the roofline at the assumed efficiency (p95 = p50)
                         "ttft_p50_ms": 1.0, "ttft_p95_ms": 1.0, "tpot_p50_ms": 1.0, "tpot_p95_ms": 1.0,
                         "kv_cache_bytes_per_token": kv, "param_bytes": n_params * bpp,
                         "params": float(round(n_params)), "flops_per_prompt_token": 2.0 * n_params,
                         "flops_per_output_token": 2.0 * n_params, "energy_per_prompt_token_j": 0.0,
                         "energy_per_output_token_j": 0.0, "idle_power_w": 0.0, "dtype": dtype,
                         "provenance": "entered", "energy_source": "entered",
                         "hidden_size": round(CHINCHILLA_WIDTH_PER_LAYER * layers), "num_layers": max(1, round(layers))})
    described = normalize_measurements(pd.DataFrame(rows), source="compute_optimal")
    projected = project_generation(described, [hw], cat, efficiency)
    # the projection's own account of its efficiency (the assumed share, the published cap of the
    # prefill on a GPU, the missing launch floor); the stand-in hardware is not measured hardware
    eff_src = dict(zip(projected["candidate"], projected["efficiency_source"].astype(str)))
    out = []
    if projected.empty:
        return pd.DataFrame([{"candidate": n, "cost": math.nan, "energy_wh": math.nan, "concurrency": math.nan,
                              "binding": "", "note": f"cannot be projected onto {hw}"} for n, _ in models])
    with warnings.catch_warnings():
        # the described rows carry no energy of their own; the projection gives them rated power x time
        warnings.simplefilter("ignore", PlanWarning)
        p = plan(projected.drop(columns=["projected_from", "efficiency", "efficiency_source",
                                         "projection_note"], errors="ignore"),
                 generation=wl, catalog=cat)
    s = p.summary.set_index("candidate")
    mem_gb = float(_cat.resolve_hardware(hw, cat)["memory_gb"])
    for name, n_params in models:
        r = s.loc[name]
        if bool(r["feasible"]):
            cost = float(r["price_per_hour_usd"]) / (float(r["capacity_requests_per_s"]) * 3600.0
                                                     * wl.output_tokens) * 1e6
            how = eff_src.get(name, "").replace("(measured hardware not in the catalog)",
                                                 "(nothing measured: a model described by its size)")
            note = (f"projected by effplan's generation roofline: {how}; concurrency {r['concurrency']:g} ({r['binding_constraint']} binds) at "
                    f"{wl.prompt_tokens} prompt + {wl.output_tokens} output tokens, an instance used at "
                    f"{wl.target_utilization:g}")
            out.append({"candidate": name, "cost": cost, "energy_wh": float(r["energy_per_response_wh"]),
                        "concurrency": float(r["concurrency"]), "binding": str(r["binding_constraint"]),
                        "note": note})
        else:
            weights_gb = n_params * bpp / 1e9
            why = (f"its {weights_gb:,.0f} GB of {dtype} weights do not fit {wl.memory_fraction:g} of one "
                   f"{hw}'s {mem_gb:g} GB: serving needs tensor parallelism over several devices, which "
                   "this estimate does not plan" if weights_gb > wl.memory_fraction * mem_gb
                   else str(r["infeasible_reason"]))
            out.append({"candidate": name, "cost": math.nan, "energy_wh": math.nan, "concurrency": math.nan,
                        "binding": str(r["binding_constraint"]), "note": f"not costed: {why}"})
    return pd.DataFrame(out)


def compute_optimal(*, flops: float | None = None, budget_usd: float | None = None,
                    hardware: str | None = None, months: float = 3, fit: str = "chinchilla-approach3",
                    mfu: float | None = None, dtype: str = "bfloat16", catalog: Any = None,
                    serving: Any = None, kv_cache_bytes_per_token: float | None = None,
                    serving_efficiency: float = ASSUMED_EFFICIENCY,
                    param_multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0)) -> ComputePlan:
    """The compute-optimal model for a compute budget, and what it costs to train and to serve.

    Give ``flops`` (training compute) or ``budget_usd`` (dollars over ``months``, turned into FLOPs on
    ``hardware``). ``hardware``: a catalog name (price, peak of ``dtype``; required with
    ``budget_usd``; with ``flops`` it adds GPU-hours, cost and serving). ``fit``: a row of
    ``effplan/data/scaling_laws.csv`` (``chinchilla-approach3``, ``epoch-replication``). ``mfu``: an
    entered model FLOPs utilisation (default: the sourced model-size range). ``serving``: the
    :class:`~effplan.GenerationWorkload` the serving cost is taken at (default
    :func:`effplan.defaults.generation_workload`). ``kv_cache_bytes_per_token``: the architecture's
    KV cache (default: a Chinchilla-shaped model). Formulas: the module docstring.
    """
    if (flops is None) == (budget_usd is None):
        raise ValidationError("flops", "give exactly one of flops= (training FLOPs) or budget_usd= (dollars)",
                              where="compute_optimal")
    months = _number("months", months, lo=0, lo_open=True, hi=600, where="compute_optimal")
    if dtype not in _BYTES:
        raise ValidationError("dtype", f"must be one of {sorted(_BYTES)}, got {dtype!r}", where="compute_optimal")
    if mfu is not None:
        mfu = _number("mfu", mfu, lo=0, lo_open=True, hi=1, where="compute_optimal")
    serving_efficiency = _number("serving_efficiency", serving_efficiency, lo=0, lo_open=True, hi=1,
                                 where="compute_optimal")
    if kv_cache_bytes_per_token is not None:
        kv_cache_bytes_per_token = _number("kv_cache_bytes_per_token", kv_cache_bytes_per_token, lo=0,
                                           lo_open=True, where="compute_optimal")
    mults = [_number(f"param_multipliers[{i}]", m, lo=0, lo_open=True) for i, m in enumerate(param_multipliers)]
    law = _ref.scaling_law(fit)
    fit_source = f"{law['source']} ({law['date']})"
    cat = _cat.load_catalog(catalog)
    notes: list[str] = []
    hw_row = None
    if hardware is not None:
        hw_row, peak, price, price_src = _hardware_row(hardware, cat, dtype)
        hw_name = str(hw_row["name"])
    elif budget_usd is not None:
        raise ValidationError("hardware", "a dollar budget needs catalog hardware to price it (e.g. "
                              "hardware='H100 SXM')", where="compute_optimal")
    else:
        hw_name, peak, price, price_src = None, math.nan, math.nan, ""

    if budget_usd is not None:
        budget = _number("budget_usd", budget_usd, lo=0, lo_open=True, where="compute_optimal")
        if not (math.isfinite(price) and price > 0):
            raise ValidationError("hardware", f"{hw_name!r} has no price per hour in the catalog: give flops= "
                                  "instead, or a catalog with its price", where="compute_optimal")
        gpu_hours = budget / price
        per_mfu = gpu_hours * 3600.0 * peak      # FLOPs per unit of MFU
        n_guess, history = 1e10, []
        for _ in range(8):
            lo, mid, hi, msrc = _mfu_for(n_guess, mfu)
            if not math.isfinite(mid):
                raise ValidationError("mfu", f"no sourced MFU range for a {n_guess:.3g}-parameter model: "
                                      "give mfu=", where="compute_optimal")
            n_new = float(optimal_split(per_mfu * mid, law)[0])
            if _mfu_for(n_new, mfu)[1] == mid:   # the model lands in the size range its MFU came from
                break
            history.append((mid, n_guess))
            n_guess = n_new
        else:  # on the edge of two size ranges: the lower MFU (the smaller plan), said so
            lo, mid, hi, msrc = _mfu_for(min(history[-2:])[1], mfu)
            notes.append("the budget sits on the edge of two MFU size ranges of training_utilization.csv: "
                         "the lower MFU is used")
        C, C_lo, C_hi = per_mfu * mid, per_mfu * lo, per_mfu * hi
        flops_src = f"{budget:,.0f} USD on {hw_name} at {price:g} USD/h x peak {peak:.4g} FLOP/s x MFU"
        gh = (gpu_hours, gpu_hours, gpu_hours)
        cost = (budget, budget, budget)
    else:
        C = C_lo = C_hi = _number("flops", flops, lo=0, lo_open=True, where="compute_optimal")
        flops_src = "entered"
        lo = mid = hi = math.nan
        msrc = ""
        gh = cost = (math.nan, math.nan, math.nan)
        if hw_row is not None:
            lo, mid, hi, msrc = _mfu_for(float(optimal_split(C, law)[0]), mfu)
            if not math.isfinite(mid):
                raise ValidationError("mfu", "no sourced MFU range for this model size: give mfu=",
                                      where="compute_optimal")
            gh = (C / (3600.0 * peak * mid), C / (3600.0 * peak * hi), C / (3600.0 * peak * lo))
            cost = tuple(h * price for h in gh)
            if not math.isfinite(price):
                notes.append(f"{hw_name} has no catalog price: no cost")

    N, D, L = (float(v) for v in optimal_split(C, law))
    N_lo, D_lo, L_lo = (float(v) for v in optimal_split(C_lo, law))
    N_hi, D_hi, L_hi = (float(v) for v in optimal_split(C_hi, law))
    if not (law["params_min"] <= N <= law["params_max"] and law["tokens_min"] <= D <= law["tokens_max"]):
        notes.append(f"extrapolated: the {fit} fit was made on {law['params_min']:.2g}-{law['params_max']:.2g} "
                     f"parameters and {law['tokens_min']:.2g}-{law['tokens_max']:.2g} tokens; this plan has "
                     f"{N:.3g} parameters and {D:.3g} tokens")
    devices = wall_days = math.nan
    if math.isfinite(gh[0]):
        devices = float(math.ceil(gh[0] / (months * HOURS_PER_MONTH) - 1e-9))
        wall_days = gh[0] / devices / 24.0

    trade = pd.DataFrame({"param_multiplier": mults})
    trade["params"] = [m * N for m in mults]
    trade["tokens"] = C / (6.0 * trade["params"])
    trade["tokens_per_param"] = trade["tokens"] / trade["params"]
    trade["loss_nats"] = _loss(trade["params"], trade["tokens"], law)
    trade["loss_change_nats"] = trade["loss_nats"] - L
    serve = dict(cost=math.nan, energy_wh=math.nan, concurrency=math.nan, binding="", note="")
    if hw_name is not None:
        from . import presets as _defaults

        wl = serving if serving is not None else _defaults.generation_workload(prompt_tokens=512)
        names = [(f"{m:g}x N_opt", m * N) for m in mults]
        if 1.0 not in mults:
            names.append(("1x N_opt", N))
        sv = _serve(names, hw_name, cat, dtype, wl, kv_cache_bytes_per_token, serving_efficiency).set_index("candidate")
        trade["serving_cost_per_1m_output_tokens_usd"] = [float(sv.at[n, "cost"]) for n, _ in names[:len(mults)]]
        trade["serving_concurrency"] = [float(sv.at[n, "concurrency"]) for n, _ in names[:len(mults)]]
        trade["serving_binding_constraint"] = [str(sv.at[n, "binding"]) for n, _ in names[:len(mults)]]
        trade["serving_note"] = [str(sv.at[n, "note"]) for n, _ in names[:len(mults)]]
        trade = trade[["param_multiplier", "params", "tokens", "loss_nats", "loss_change_nats",
                       "serving_cost_per_1m_output_tokens_usd", "serving_concurrency",
                       "serving_binding_constraint", "tokens_per_param", "serving_note"]]
        opt = sv.loc["1x N_opt"]
        serve = dict(cost=float(opt["cost"]), energy_wh=float(opt["energy_wh"]),
                     concurrency=float(opt["concurrency"]), binding=str(opt["binding"]), note=str(opt["note"]))
        if kv_cache_bytes_per_token is None and math.isfinite(serve["cost"]):
            serve["note"] += (f"; KV cache {_kv_bytes_per_token(N, _BYTES[dtype]) / 1e6:.3g} MB per token of a "
                              "Chinchilla-shaped model (multi-head attention; pass kv_cache_bytes_per_token= "
                              "for your architecture)")
    else:
        notes.append("no hardware: no GPU-hours, cost or serving cost (give hardware=)")
    return ComputePlan(
        fit=str(law["fit"]), fit_source=fit_source, flops=C, flops_low=C_lo, flops_high=C_hi,
        flops_source=flops_src, params=N, params_low=N_lo, params_high=N_hi, tokens=D, tokens_low=D_lo,
        tokens_high=D_hi, loss_nats=L, loss_low_nats=min(L_lo, L_hi), loss_high_nats=max(L_lo, L_hi),
        hardware=hw_name, dtype=dtype, months=months, price_per_hour_usd=price, price_source=price_src,
        mfu=mid, mfu_low=lo, mfu_high=hi, mfu_source=msrc, gpu_hours=gh[0], gpu_hours_low=gh[1],
        gpu_hours_high=gh[2], cost_usd=cost[0], cost_low_usd=cost[1], cost_high_usd=cost[2], devices=devices,
        wall_clock_days=wall_days, serving_cost_per_1m_output_tokens_usd=serve["cost"],
        serving_energy_per_response_wh=serve["energy_wh"], serving_concurrency=serve["concurrency"],
        serving_binding_constraint=serve["binding"], serving_note=serve["note"], trade_off=trade,
        notes=tuple(notes))
