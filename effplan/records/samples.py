"""Raw timing samples and the verdict on them: the record a timed point leaves.

:class:`Timing` keeps every raw sample with the round it came from, so a stored point can be
re-summarised later with other percentiles or another stop rule (:meth:`Timing.verdict`), as
torch's ``Measurement(raw_times)`` does. :class:`TimingPolicy` is the stop rule's settings;
:func:`verdict` applies it to per-call times:

* ``ci-met``: at least ``TimingPolicy.min_rounds`` rounds and ``min_repeats`` samples, the ~95%
  distribution-free confidence interval of the median is within ``target_ci_rel`` of it, the
  medians of the rounds agree with each other within ``round_agreement_rel``, and the sample set
  shows no stalls (see :func:`diagnose`). Only such a point is **stable**.
* ``time-budget``: ``time_budget_s`` (or ``max_repeats`` / ``max_rounds``) was spent first while
  the rounds agreed and no stall was seen: a usable but imprecise figure. Not stable.
* ``unstable``: the budget was spent while rounds disagreed, stalls / two modes were seen, or
  the point was **contended** (other processes' load left fewer free cores than it had
  threads). A descheduled thread, a noisy neighbour or a frequency change looks like this.

Stalls and bimodality (:func:`diagnose`), on per-call times ``x``:

* **stall share**: the share of samples above ``stall_factor`` x the 10th percentile of ``x``
  (``STALL_FACTOR = 3``). Above ``max_stall_share`` (5%) the tail percentiles describe the
  machine, not the model; at 50% the median itself is a stall.
* **two modes**: the sorted log-times have a gap wider than ``bimodal_gap`` (x1.5) with at least
  ``max_stall_share`` of the samples (and 3 samples) on each side: e.g. 0.03 ms or 48 ms, nothing between.

numpy only. Taking the samples -- warm-up, rounds, the background load -- is
:mod:`effplan.bench.timing`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = ["TimingPolicy", "Timing", "Diagnosis", "Verdict", "median_ci", "ci_rel", "diagnose", "verdict",
           "round_spread_rel", "STOP_REASONS", "STALL_FACTOR", "MIN_CI_SAMPLES"]

_Z95 = 1.959963984540054
#: Fewer samples than this have no 95% distribution-free interval for the median.
MIN_CI_SAMPLES = 6
#: A sample this many times the 10th percentile is a stall (the thread was descheduled, a page
#: fault, a frequency drop): noise on a quiet machine stays well under it.
STALL_FACTOR = 3.0
STOP_REASONS = ("ci-met", "time-budget", "unstable")


# =============================================================================== statistics
def median_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    1-based ranks ``lo = floor(n/2 - z*sqrt(n)/2)`` (at least 1) and ``hi = n - lo + 1``
    (normal approximation to the binomial). Returns ``(nan, nan)`` for fewer than 6 values (no
    95% interval exists).
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n < MIN_CI_SAMPLES:
        return (math.nan, math.nan)
    z = _Z95 if confidence == 0.95 else float(_norm_ppf(0.5 + confidence / 2))
    half = z * math.sqrt(n) / 2
    lo = max(int(math.floor(n / 2 - half)), 1)  # 1-based ranks
    hi = n - lo + 1  # symmetric upper rank
    return float(x[lo - 1]), float(x[hi - 1])


def _norm_ppf(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def ci_rel(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> float:
    """Relative half-width of the CI of the median (NaN below 6 values or a median <= 0)."""
    values = np.asarray(values, dtype=float)
    lo, hi = median_ci(values, confidence)
    med = float(np.median(values)) if values.size else math.nan
    if math.isnan(lo) or not med > 0:
        return math.nan
    return (hi - lo) / 2 / med


@dataclass(frozen=True)
class Diagnosis:
    """Shape of a sample set: ``stall_share`` (0..1), ``gap_ratio`` (widest gap between
    neighbouring sorted samples with enough samples on both sides, as a ratio; 1 = none) and
    whether that makes two modes (``bimodal``)."""

    stall_share: float
    gap_ratio: float
    bimodal: bool


def diagnose(times: Sequence[float] | np.ndarray, *, stall_factor: float = STALL_FACTOR,
             min_share: float = 0.05, bimodal_gap: float = 1.5) -> Diagnosis:
    """Stalls and two modes in per-call times (any unit); see the module docstring."""
    x = np.sort(np.asarray(times, dtype=float))
    x = x[np.isfinite(x) & (x > 0)]
    n = x.size
    if n < 2:
        return Diagnosis(0.0, 1.0, False)
    ref = float(np.percentile(x, 10))
    stall = float(np.mean(x > stall_factor * ref)) if ref > 0 else 0.0
    # at least this many samples on each side of the gap (3: one odd sample is not a mode)
    k = max(3, int(math.ceil(min_share * n)))
    gap = 1.0
    if n >= 2 * k:
        logs = np.log(x)
        gaps = np.diff(logs)[k - 1:n - k]  # gaps with >= k samples below and above
        if gaps.size:
            gap = float(math.exp(gaps.max()))
    return Diagnosis(stall_share=stall, gap_ratio=gap, bimodal=gap > bimodal_gap)


# =============================================================================== policy
@dataclass(frozen=True)
class TimingPolicy:
    """When to stop timing one point.

    Attributes
    ----------
    target_ci_rel: the ~95% CI of the median must be within this fraction of it (0.02 = 2%).
    time_budget_s: timed wall time per point after which timing stops even if not stable, s.
    min_repeats / max_repeats: bounds on the number of timed samples.
    min_rounds / max_rounds: a point is judged after ``min_rounds`` rounds; at most ``max_rounds``.
    samples_per_round / min_round_s: a round takes at least this many samples and lasts at least
        this long (so rounds are spread in time and the background load is resolved); it ends
        after ``time_budget_s / min_rounds`` at the latest, so ``min_rounds`` rounds fit the budget.
    round_agreement_rel: the 10th-90th percentile range of the rounds' medians must be within this
        fraction of the overall median.
    max_stall_share: more stalled samples than this (or two modes) make the point unstable.
    stall_factor: a sample above this multiple of the 10th percentile is a stall.
    max_contention: the point is contended -- not stable -- when other processes used more than
        ``usable cores - threads + max_contention`` cores while it was timed (its threads had to
        share cores with them).
    warmup_calls / warmup_s: warm-up lasts at least this many calls and this many seconds.
    min_sample_s: a timed sample lasts at least this long; shorter calls are grouped, s.
    max_calls_per_sample: upper bound on the grouping.
    confidence: confidence level of the interval (0.95).
    """

    target_ci_rel: float = 0.02
    time_budget_s: float = 2.0
    min_repeats: int = 10
    max_repeats: int = 100_000
    min_rounds: int = 3
    max_rounds: int = 50
    samples_per_round: int = 10
    min_round_s: float = 0.05
    round_agreement_rel: float = 0.05
    max_stall_share: float = 0.05
    stall_factor: float = STALL_FACTOR
    max_contention: float = 0.25
    warmup_calls: int = 3
    warmup_s: float = 0.02
    min_sample_s: float = 1e-3
    max_calls_per_sample: int = 10_000
    confidence: float = 0.95

    def __post_init__(self) -> None:
        checks = (("target_ci_rel", self.target_ci_rel > 0), ("time_budget_s", self.time_budget_s > 0),
                  ("min_repeats", self.min_repeats >= MIN_CI_SAMPLES),
                  ("max_repeats", self.max_repeats >= self.min_repeats),
                  ("min_rounds", self.min_rounds >= 1),
                  ("max_rounds", self.max_rounds >= self.min_rounds),
                  ("samples_per_round", self.samples_per_round >= 1),
                  ("min_round_s", self.min_round_s >= 0),
                  ("max_contention", self.max_contention >= 0),
                  ("round_agreement_rel", self.round_agreement_rel > 0),
                  ("max_stall_share", 0 <= self.max_stall_share < 1),
                  ("stall_factor", self.stall_factor > 1),
                  ("warmup_calls", self.warmup_calls >= 0), ("warmup_s", self.warmup_s >= 0),
                  ("min_sample_s", self.min_sample_s >= 0),
                  ("max_calls_per_sample", self.max_calls_per_sample >= 1),
                  ("confidence", 0 < self.confidence < 1))
        for name, ok in checks:
            if not ok:
                hint = f" (at least {MIN_CI_SAMPLES})" if name == "min_repeats" else ""
                raise ValidationError(name, f"invalid value {getattr(self, name)!r}{hint}",
                                      where="TimingPolicy")


@dataclass(frozen=True)
class Verdict:
    """The stop rule applied to a sample set: ``stable`` only when ``reason == "ci-met"``;
    ``why`` says in words what failed (empty when stable)."""

    reason: str
    ci_rel: float
    round_spread_rel: float
    diagnosis: Diagnosis
    why: str

    @property
    def stable(self) -> bool:
        return self.reason == "ci-met"


def round_spread_rel(per_call: np.ndarray, rounds: np.ndarray) -> float:
    """Spread of the rounds' medians over the median of all samples: the 10th-90th percentile
    range of the round medians (so it does not grow with the number of rounds the way
    max - min does); NaN with one round."""
    ids = np.unique(rounds)
    if ids.size < 2 or per_call.size == 0:
        return math.nan
    meds = np.array([np.median(per_call[rounds == r]) for r in ids])
    overall = float(np.median(per_call))
    lo, hi = np.percentile(meds, [10, 90])
    return float((hi - lo) / overall) if overall > 0 else math.nan


def verdict(per_call: Sequence[float] | np.ndarray, rounds: Sequence[int] | np.ndarray,
            policy: TimingPolicy, *, budget_spent: bool = True, load: float = math.nan,
            threads: int = 0, cores: int = 0) -> Verdict:
    """Apply the stop rule (module docstring) to per-call times and the round of each.

    ``load`` (cores of other processes' work while timing), ``threads`` (threads the workload
    ran on) and ``cores`` (usable cores) judge contention; unknown (NaN / 0) is not judged.
    With ``budget_spent=False`` a not-yet-stable set gets ``reason=""`` (keep timing).
    """
    x = np.asarray(per_call, dtype=float)
    r = np.asarray(rounds)
    rel = ci_rel(x, policy.confidence)
    spread = round_spread_rel(x, r)
    d = diagnose(x, stall_factor=policy.stall_factor, min_share=policy.max_stall_share)
    n_rounds = int(np.unique(r).size)
    problems = []
    if d.stall_share > policy.max_stall_share:
        problems.append(f"{d.stall_share:.0%} of samples are stalls (> {policy.stall_factor:g}x the "
                        "10th percentile)")
    if d.bimodal:
        problems.append(f"two modes (a x{d.gap_ratio:.1f} gap between sample clusters)")
    if threads > 0 and cores > 0 and load > cores - threads + policy.max_contention:
        problems.append(f"contended: other processes used {load:.2f} of {cores} usable cores while "
                        f"timing on {threads} thread(s)")
    if n_rounds >= 2 and not (spread <= policy.round_agreement_rel):
        problems.append(f"rounds disagree (medians spread {spread:.1%} > "
                        f"{policy.round_agreement_rel:.0%})")
    precise = (not math.isnan(rel) and rel <= policy.target_ci_rel and x.size >= policy.min_repeats
               and n_rounds >= policy.min_rounds)
    if precise and not problems:
        return Verdict("ci-met", rel, spread, d, "")
    if not budget_spent:
        return Verdict("", rel, spread, d, "; ".join(problems))
    if problems:
        return Verdict("unstable", rel, spread, d, "; ".join(problems))
    why = (f"confidence target not met in the time budget (CI +-{rel:.2%} > {policy.target_ci_rel * 100:.2g}%)"
           if not math.isnan(rel) else f"too few samples for a confidence interval ({x.size})")
    if n_rounds < policy.min_rounds:
        why += f"; {n_rounds} of {policy.min_rounds} rounds"
    return Verdict("time-budget", rel, spread, d, why)


@dataclass(frozen=True)
class Timing:
    """Raw timed samples of one point; statistics are computed on demand.

    ``sample_times_s[i]`` is the wall time of ``calls_per_sample`` consecutive calls, taken in
    round ``sample_rounds[i]``; per-call latencies are ``sample_times_s / calls_per_sample``.
    ``load_before`` / ``load_rounds`` / ``load_during`` are the background load (cores of other
    processes' work) over the warm-up, during each round (NaN for rounds too short to resolve)
    and over the whole timed phase.
    """

    sample_times_s: tuple[float, ...]
    calls_per_sample: int
    stop_reason: str  # one of STOP_REASONS
    elapsed_s: float  # timed phase only
    warmup_s: float
    warmup_calls: int
    confidence: float = 0.95
    sample_rounds: tuple[int, ...] = ()
    why: str = ""
    load_before: float = math.nan
    load_rounds: tuple[float, ...] = ()
    load_during: float = math.nan
    threads: int = 0
    cores: int = 0

    def __post_init__(self) -> None:
        if not self.sample_rounds:  # one round (e.g. samples typed in or from an older store)
            object.__setattr__(self, "sample_rounds", (0,) * len(self.sample_times_s))

    @property
    def times_ms(self) -> np.ndarray:
        """Per-call latency of every sample, ms."""
        return np.asarray(self.sample_times_s, dtype=float) * 1e3 / self.calls_per_sample

    def percentile_ms(self, q: float | Sequence[float]) -> Any:
        """Latency percentile(s) in ms (numpy's linear interpolation)."""
        return np.percentile(self.times_ms, q)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.times_ms))

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.times_ms))

    @property
    def ci_rel(self) -> float:
        """Relative half-width of the CI of the median (NaN below 6 samples)."""
        return ci_rel(self.times_ms, self.confidence)

    @property
    def repeats(self) -> int:
        """Number of timed calls (batches or training steps)."""
        return len(self.sample_times_s) * self.calls_per_sample

    @property
    def rounds(self) -> int:
        return int(np.unique(np.asarray(self.sample_rounds)).size) if self.sample_times_s else 0

    @property
    def stable(self) -> bool:
        return self.stop_reason == "ci-met"

    @property
    def background_load(self) -> float:
        """Background load over the timed phase, cores (else the rounds' mean, else the
        warm-up's; NaN when no interval was long enough to resolve)."""
        if not math.isnan(self.load_during):
            return float(self.load_during)
        vals = [v for v in self.load_rounds if not math.isnan(v)]
        return float(np.mean(vals)) if vals else self.load_before

    def diagnosis(self, policy: TimingPolicy | None = None) -> Diagnosis:
        p = policy or TimingPolicy()
        return diagnose(self.times_ms, stall_factor=p.stall_factor, min_share=p.max_stall_share)

    def verdict(self, policy: TimingPolicy | None = None) -> Verdict:
        """Re-judge the raw samples under another policy (another target, stall rule...)."""
        return verdict(self.times_ms, self.sample_rounds, policy or TimingPolicy(),
                       load=self.background_load, threads=self.threads, cores=self.cores)

    def meets_target(self, target_ci_rel: float) -> bool:
        rel = self.ci_rel
        return not math.isnan(rel) and rel <= target_ci_rel

    def to_record(self) -> dict[str, Any]:
        """JSON-safe dict of the raw samples (see :meth:`from_record`)."""
        nan = lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else v  # noqa: E731
        return {"sample_times_s": [float(v) for v in self.sample_times_s],
                "sample_rounds": [int(v) for v in self.sample_rounds],
                "calls_per_sample": int(self.calls_per_sample), "stop_reason": self.stop_reason,
                "elapsed_s": float(self.elapsed_s), "warmup_s": float(self.warmup_s),
                "warmup_calls": int(self.warmup_calls), "confidence": float(self.confidence),
                "why": self.why, "load_before": nan(float(self.load_before)),
                "load_rounds": [nan(float(v)) for v in self.load_rounds],
                "load_during": nan(float(self.load_during)), "threads": int(self.threads),
                "cores": int(self.cores)}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Timing:
        f = lambda v: math.nan if v is None else float(v)  # noqa: E731
        return cls(sample_times_s=tuple(float(v) for v in rec["sample_times_s"]),
                   calls_per_sample=int(rec["calls_per_sample"]), stop_reason=str(rec["stop_reason"]),
                   elapsed_s=float(rec.get("elapsed_s", math.nan)), warmup_s=float(rec.get("warmup_s", 0.0)),
                   warmup_calls=int(rec.get("warmup_calls", 0)),
                   confidence=float(rec.get("confidence", 0.95)),
                   sample_rounds=tuple(int(v) for v in rec.get("sample_rounds", ())),
                   why=str(rec.get("why", "")), load_before=f(rec.get("load_before")),
                   load_rounds=tuple(f(v) for v in rec.get("load_rounds", ())),
                   load_during=f(rec.get("load_during")), threads=int(rec.get("threads", 0)),
                   cores=int(rec.get("cores", 0)))
