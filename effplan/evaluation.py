"""Quality beside cost: evaluate candidates on held-out data, clean and under shift.

:func:`evaluate` runs every candidate on the held-out data you pass and reports several metrics
(:mod:`effplan.metrics`: accuracy, expected calibration error, negative log-likelihood, Brier
score, perplexity, or any :class:`~effplan.metrics.Metric` of your own) under several
conditions:

* ``clean``: the data as given;
* ``noise-<sigma>``: Gaussian input noise, ``x + sigma * N(0, 1)`` added to every floating
  input tensor as given (not clipped), at the two documented default levels
  :data:`DEFAULT_NOISE` = ``(0.1, 0.3)`` (in input units; the digits inputs are pixels scaled to
  ``[0, 1]``). The noise is drawn once per condition from ``seed`` and is identical for every
  candidate, so their numbers are paired;
* any shifted data set you pass by name (``shifts={"rotated": (x, y)}``).

The result is an :class:`Evaluation` whose tidy frame has one row per
candidate x metric x condition and the columns of :data:`EVALUATION_COLUMNS`:
``candidate, metric, condition, value, ci_low, ci_high, n, provenance, higher_is_better``, then
on every evaluated record the reproducibility columns :data:`EVALUATION_REPRO_COLUMNS` (seed,
versions, weights/config hashes of the model evaluated). ``provenance`` is ``measured`` for
evaluated rows and ``entered`` for hand-typed ones.

Confidence intervals: percentile bootstrap over examples with ``n_bootstrap`` resamples
(default 1000) at ``confidence`` (0.95); the resamples are drawn from ``seed`` once per
condition and shared by every candidate and metric (a paired bootstrap). ``n_bootstrap=0``
gives NaN intervals. The same seed gives the same frame.

Outputs: the model's output is taken as logits (``outputs="logits"``, softmax applied) or as
probabilities (``outputs="probs"``); an object with a ``.logits`` attribute (Hugging Face) is
unwrapped. Sequence outputs ``(batch, tokens, vocab)`` with labels ``(batch, tokens)`` are
flattened to one row per token (labels < 0 are ignored, the ``-100`` convention), which is how
perplexity of a language model is computed. The probabilities of every row are held in memory
(rows x classes, float64): for a large vocabulary evaluate a sample of the tokens.

A metric is named ``"<metric>"`` on clean data and ``"<metric>@<condition>"`` otherwise
(:func:`metric_key`) wherever one column per metric is needed (plan frames,
:func:`effplan.cheapest_meeting`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import metrics as _m
from .errors import ValidationError
from .intervals import bootstrap_values as _bootstrap_values  # noqa: F401  (benchmarks/evaluate.py)
from .intervals import metric_interval as _interval
from .intervals import resamples as _resamples
from .model_outputs import check_labels, read_outputs
from .schema import parse_bool

#: the two default Gaussian input-noise levels (standard deviation, input units)
DEFAULT_NOISE: tuple[float, ...] = (0.1, 0.3)
#: the metrics reported by default
DEFAULT_METRICS: tuple[str, ...] = ("accuracy", "ece", "nll", "brier")
DEFAULT_BOOTSTRAP = 1000
#: noise draws per level: the figure is over all of them (the draw-to-draw spread of one draw
#: was about half the interval's half-width on the digits data, enough to swap a ranking)
DEFAULT_NOISE_DRAWS = 2
#: how the outputs may be read (``auto``: probabilities when every row is >= 0 and sums to 1)
OUTPUT_KINDS = ("auto", "logits", "probs")
CLEAN = "clean"
#: the interval of each metric (stored in ``Evaluation.settings``)
INTERVALS = {"accuracy": "Wilson score (examples as the count)",
             "ece": "debiased ECE: bias-corrected bootstrap (effplan.calibration)",
             "ece_binned": "none (biased upward; judge calibration on ece)",
             "other": "percentile bootstrap over examples (each with all its noise draws)"}

#: the tidy evaluation frame: column -> description (exact order)
EVALUATION_COLUMNS: dict[str, str] = {
    "candidate": "candidate name",
    "metric": "metric name (accuracy, ece, nll, brier, perplexity or a user metric)",
    "condition": "'clean', 'noise-<sigma>' or the name of a shifted data set",
    "value": "the metric on all n examples",
    "ci_low": "lower end of the bootstrap confidence interval (NaN without bootstrap / entered)",
    "ci_high": "upper end of the bootstrap confidence interval",
    "n": "number of examples (tokens for sequence outputs) evaluated; NaN when entered",
    "provenance": "'measured' (evaluated here) or 'entered' (typed in by hand)",
    "higher_is_better": "True for accuracy-like metrics, False for ece/nll/brier/perplexity",
}

#: reproducibility columns that :func:`evaluate` adds to every record, after
#: :data:`EVALUATION_COLUMNS` (:func:`effplan.reproducibility.reproducibility_fields`: seed,
#: Python / torch / numpy / effplan versions, weights and configuration hashes; ``timing_policy``
#: is "" here). Hand-entered quality has none of them.
EVALUATION_REPRO_COLUMNS = ("seed", "python_version", "torch_version", "numpy_version", "effplan_version",
                            "weights_sha256", "config_sha256", "timing_policy")

# ----------------------------------------------------------------------------- keys


def noise_condition(sigma: float) -> str:
    """Condition name of Gaussian noise ``sigma``: ``noise-0.1``."""
    return f"noise-{sigma:g}"


def metric_key(metric: str, condition: str = CLEAN) -> str:
    """``"accuracy"`` for clean data, ``"accuracy@noise-0.1"`` otherwise."""
    return metric if condition == CLEAN else f"{metric}@{condition}"


def split_key(key: str) -> tuple[str, str]:
    """Inverse of :func:`metric_key`: ``"ece@noise-0.3" -> ("ece", "noise-0.3")``."""
    metric, _, condition = str(key).partition("@")
    return _m.ALIASES.get(metric, metric), condition or CLEAN


# ----------------------------------------------------------------------------- result

@dataclass(frozen=True, eq=False)
class Predictions:
    """Per-example outcome of one candidate under one condition (rows in evaluation order; for
    sequence outputs one row per kept token): ``labels``, ``predicted`` (top class, ties to the
    lowest index), ``p_predicted`` (its probability) and ``p_true`` (the label's probability)."""

    labels: np.ndarray
    predicted: np.ndarray
    p_predicted: np.ndarray
    p_true: np.ndarray


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Quality of each candidate per metric and condition.

    Attributes
    ----------
    frame: the tidy frame (:data:`EVALUATION_COLUMNS`), sorted by candidate order, metric,
        condition as evaluated. ``to_frame()`` returns a copy.
    reproducibility: candidate -> :func:`effplan.reproducibility.reproducibility_fields`
        (weights hash, seed, versions) of the model evaluated.
    settings: the inputs (metrics, conditions, noise levels, seed, n_bootstrap, confidence,
        n_bins) -- JSON-serialisable.
    """

    frame: pd.DataFrame
    reproducibility: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    #: (candidate, metric, condition) -> the metric on each shared bootstrap resample (in memory
    #: only; not saved). Lets :meth:`versus` test differences paired, resample by resample.
    bootstrap: Mapping[tuple[str, str, str], np.ndarray] = field(default_factory=dict, repr=False)
    #: (candidate, condition) -> :class:`Predictions`, one entry per evaluated example (in memory
    #: only; not saved). What :mod:`effplan.failure_modes` compares example by example.
    predictions: Mapping[tuple[str, str], Predictions] = field(default_factory=dict, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """A copy of the tidy frame."""
        return self.frame.copy()

    def value(self, candidate: str, metric: str, condition: str = CLEAN) -> float:
        """One value; ``metric`` may be a key such as ``"accuracy@noise-0.3"``."""
        if "@" in metric:
            metric, condition = split_key(metric)
        f = self.frame
        hit = f[(f["candidate"] == candidate) & (f["metric"] == metric) & (f["condition"] == condition)]
        if hit.empty:
            raise ValidationError("metric", f"no value for candidate {candidate!r}, metric {metric!r}, "
                                  f"condition {condition!r}", where="Evaluation")
        return float(hit["value"].iloc[0])

    def wide(self) -> pd.DataFrame:
        """One row per candidate, one column per :func:`metric_key` (clean first)."""
        return wide(self.frame)

    def join(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (measurements or plan rows) with these metrics joined by candidate
        (:func:`join_quality`)."""
        return join_quality(frame, self)

    def versus(self, baseline: str) -> pd.DataFrame:
        """What each other candidate gives up (or gains) against ``baseline``, per metric and condition.

        Columns: ``candidate, metric, condition, value, baseline_value, change`` (value minus
        baseline), ``change_ci_low``, ``change_ci_high``, ``verdict``, ``test``.

        With the bootstrap values of :func:`evaluate` in memory the test is **paired**: the
        change is computed on each shared resample and its percentile interval (at the
        evaluation's confidence) gives the verdict -- ``worse`` / ``better`` when the whole
        interval lies on the worse / better side of 0 (with the metric's direction), else
        ``no clear change``. For a loaded or entered evaluation (no resamples) the test is
        ``interval overlap``: ``worse`` / ``better`` only when the two intervals do not overlap
        (more conservative); ``no interval`` when an interval is missing.
        """
        f = self.frame
        if baseline not in set(f["candidate"]):
            raise ValidationError("baseline", f"{baseline!r} is not an evaluated candidate "
                                  f"({sorted(set(f['candidate']))})", where="Evaluation.versus")
        conf = float(self.settings.get("confidence", 0.95))
        q = [(1 - conf) / 2, 1 - (1 - conf) / 2]
        base = f[f["candidate"] == baseline][["metric", "condition", "value", "ci_low", "ci_high"]]
        m = f[f["candidate"] != baseline].merge(base, on=["metric", "condition"], suffixes=("", "_base"))
        rows = []
        for r in m.to_dict(orient="records"):
            sign = 1.0 if r["higher_is_better"] else -1.0
            a = self.bootstrap.get((r["candidate"], r["metric"], r["condition"]))
            b = self.bootstrap.get((baseline, r["metric"], r["condition"]))
            lo = hi = math.nan
            if a is not None and b is not None and len(a) == len(b) and len(a):
                lo, hi = (float(v) for v in np.quantile(np.asarray(a) - np.asarray(b), q))
                test = "paired bootstrap"
                good, bad = (lo > 0, hi < 0) if sign > 0 else (hi < 0, lo > 0)
                verdict = "better" if good else "worse" if bad else "no clear change"
            else:
                test = "interval overlap"
                if any(math.isnan(float(r[k])) for k in ("ci_low", "ci_high", "ci_low_base", "ci_high_base")):
                    verdict = "no interval"
                else:
                    above, below = r["ci_low"] > r["ci_high_base"], r["ci_high"] < r["ci_low_base"]
                    good, bad = (above, below) if sign > 0 else (below, above)
                    verdict = "better" if good else "worse" if bad else "no clear change"
            rows.append({"candidate": r["candidate"], "metric": r["metric"], "condition": r["condition"],
                         "value": r["value"], "baseline_value": r["value_base"],
                         "change": r["value"] - r["value_base"], "change_ci_low": lo, "change_ci_high": hi,
                         "verdict": verdict, "test": test})
        return pd.DataFrame(rows, columns=["candidate", "metric", "condition", "value", "baseline_value",
                                           "change", "change_ci_low", "change_ci_high", "verdict", "test"])

    # ----------------------------------------------------------- storage (JSON, no pickle)
    def to_dict(self) -> dict[str, Any]:
        return {"effplan_evaluation_version": 1,
                "rows": [{k: _json_value(v) for k, v in r.items()}
                         for r in self.frame.to_dict(orient="records")],
                "reproducibility": self.reproducibility, "settings": self.settings}

    def save(self, path: str | Path) -> Path:
        """Write the evaluation as JSON (sorted keys; NaN as null)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return p

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evaluation:
        if not isinstance(d, Mapping) or "rows" not in d:
            raise ValidationError("rows", "not a stored Evaluation (no 'rows')", where="Evaluation")
        keys = {k for r in d["rows"] for k in r if k not in EVALUATION_COLUMNS}  # stored with sorted keys
        extra = [c for c in EVALUATION_REPRO_COLUMNS if c in keys] + sorted(keys - set(EVALUATION_REPRO_COLUMNS))
        frame = quality_frame(pd.DataFrame(list(d["rows"]), columns=list(EVALUATION_COLUMNS) + extra))
        return cls(frame=frame, reproducibility=dict(d.get("reproducibility") or {}),
                   settings=dict(d.get("settings") or {}))

    @classmethod
    def load(cls, path: str | Path) -> Evaluation:
        """Read what :meth:`save` wrote."""
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError("path", f"cannot read an Evaluation from {path}: {exc}") from None
        return cls.from_dict(d)

    def __repr__(self) -> str:
        f = self.frame
        return (f"Evaluation({f['candidate'].nunique()} candidates x {f['metric'].nunique()} metrics x "
                f"{f['condition'].nunique()} conditions, {len(f)} rows)")

    def _repr_html_(self) -> str:
        return f"<p>{self!r}</p>" + self.wide().to_html(index=False, float_format="{:.4g}".format,
                                                        na_rep="n/a")


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def wide(frame: pd.DataFrame) -> pd.DataFrame:
    """Tidy quality frame -> one row per candidate, one column per :func:`metric_key`."""
    f = quality_frame(frame)
    if f.empty:
        return pd.DataFrame(columns=["candidate"])
    keys = [metric_key(m, c) for m, c in zip(f["metric"], f["condition"], strict=True)]
    f = f.assign(key=keys)
    out = f.pivot_table(index="candidate", columns="key", values="value", aggfunc="last", sort=False)
    order = list(dict.fromkeys(keys))
    out = out.reindex(index=list(dict.fromkeys(f["candidate"])), columns=order)
    out.columns.name = None
    return out.reset_index()


def join_quality(frame: pd.DataFrame, quality: Any, *, on: str = "candidate") -> pd.DataFrame:
    """``frame`` (measurements or plan rows) with the quality metrics joined by candidate.

    One column per :func:`metric_key` (``accuracy``, ``ece@noise-0.3``...) holding that
    candidate's value (NaN where it has none), plus ``quality_provenance``: the provenances of the
    candidate's quality rows (``measured``, ``entered`` or ``entered+measured``; ``""`` when none).
    Row order and every other column are kept; a same-named column from an earlier join is
    replaced. A metric key that is a measurement column (``latency_p95_ms``...) raises
    ``ValidationError('metric')``.
    """
    from .schema import MEASUREMENT_COLUMNS

    if not isinstance(frame, pd.DataFrame):
        raise ValidationError("frame", f"expected a DataFrame, got {type(frame).__name__}", where="join_quality")
    if on not in frame.columns:
        raise ValidationError(on, "column missing: quality is joined by candidate", where="join_quality")
    q = quality_frame(quality)
    w = wide(q)
    keys = [c for c in w.columns if c != "candidate"]
    clash = [k for k in keys if k in MEASUREMENT_COLUMNS]
    if clash:
        raise ValidationError("metric", f"quality metric name(s) {clash} clash with measurement columns; "
                              "rename the metric", where="join_quality")
    prov = q.groupby("candidate", sort=False)["provenance"].agg(lambda s: "+".join(sorted(set(s))))
    out = frame.drop(columns=[c for c in [*keys, "quality_provenance"] if c in frame.columns])
    names = out[on].astype(str)
    lookup = w.set_index("candidate")
    for k in keys:
        out[k] = names.map(lookup[k]).astype(float).to_numpy()
    out["quality_provenance"] = names.map(prov).fillna("").astype(str).to_numpy()
    return out


# ----------------------------------------------------------------------------- validation

#: the range of each built-in metric (an entered value outside it is refused)
_RANGES = {"accuracy": (0.0, 1.0), "ece": (0.0, 1.0), "ece_binned": (0.0, 1.0), "nll": (0.0, np.inf),
           "brier": (0.0, 2.0), "brier_binary": (0.0, 1.0), "perplexity": (1.0, np.inf)}
#: public name of the same ranges (a learning-curve fit bounds its asymptote by them)
METRIC_RANGES = _RANGES

def quality_frame(quality: Any) -> pd.DataFrame:
    """The one validator of quality: an :class:`Evaluation`, a tidy frame or hand-entered values
    -> the tidy frame (:data:`EVALUATION_COLUMNS`).

    Hand-entered forms: ``{"cand": {"accuracy": 0.97, "ece@noise-0.1": 0.05}}`` or a tidy
    frame with at least ``candidate, metric, value``. Missing ``condition`` -> ``clean``, missing
    ``provenance`` -> ``entered``, missing ``higher_is_better`` -> the built-in direction (a
    user metric without it raises ``ValidationError('higher_is_better')``), missing ``ci_*``/``n`` ->
    NaN.
    """
    if isinstance(quality, Evaluation):
        return quality.frame.copy()
    if isinstance(quality, Mapping):
        rows = []
        for cand, vals in quality.items():
            if not isinstance(vals, Mapping):
                raise ValidationError("quality", f"candidate {cand!r}: expected a mapping of metric -> "
                                      f"value, got {type(vals).__name__}")
            for key, value in vals.items():
                metric, condition = split_key(key)
                rows.append({"candidate": cand, "metric": metric, "condition": condition, "value": value})
        quality = pd.DataFrame(rows, columns=["candidate", "metric", "condition", "value"])
    if not isinstance(quality, pd.DataFrame):
        raise ValidationError("quality", "expected an Evaluation, a tidy DataFrame or "
                              f"{{candidate: {{metric: value}}}}, got {type(quality).__name__}")
    df = quality.copy()
    for col in ("candidate", "metric", "value"):
        if col not in df.columns:
            raise ValidationError(col, "required column missing from the quality frame")
    n = len(df)
    if "condition" not in df.columns:
        df["condition"] = CLEAN
    df["condition"] = df["condition"].where(df["condition"].notna(), CLEAN).astype(str)
    df["candidate"] = df["candidate"].astype(str)
    df["metric"] = df["metric"].astype(str).map(lambda m: _m.ALIASES.get(m, m))
    if "provenance" not in df.columns:
        df["provenance"] = "entered"
    df["provenance"] = df["provenance"].where(df["provenance"].notna() & (df["provenance"].astype(str) != ""),
                                              "entered").astype(str)
    bad = ~df["provenance"].isin(("measured", "estimated", "projected", "entered"))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationError("provenance", f"{df['provenance'].iloc[i]!r} is not measured/estimated/"
                              "projected/entered", where=f"quality row {i}")
    for col in ("value", "ci_low", "ci_high", "n"):
        if col not in df.columns:
            df[col] = np.nan
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce").astype(float)
        badnum = num.isna() & raw.notna()
        if badnum.any():
            i = int(np.flatnonzero(badnum.to_numpy())[0])
            raise ValidationError(col, f"non-numeric value {raw.iloc[i]!r}", where=f"quality row {i}")
        df[col] = num
    if df["value"].isna().any():
        i = int(np.flatnonzero(df["value"].isna().to_numpy())[0])
        raise ValidationError("value", "missing value", where=f"quality row {i}")
    lo = df["metric"].map(lambda m: _RANGES.get(m, (-np.inf, np.inf))[0]).to_numpy(float)
    hi = df["metric"].map(lambda m: _RANGES.get(m, (-np.inf, np.inf))[1]).to_numpy(float)
    v = df["value"].to_numpy(float)
    out_of_range = ~np.isfinite(v) | (v < lo) | (v > hi)
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range)[0])
        raise ValidationError("value", f"{df['metric'].iloc[i]} = {float(v[i])!r} is outside its range "
                              f"[{lo[i]:g}, {hi[i]:g}]", where=f"quality row {i}")
    ci_lo, ci_hi = df["ci_low"].to_numpy(float), df["ci_high"].to_numpy(float)
    tol = 1e-9 * np.maximum(1.0, np.abs(v))
    with np.errstate(invalid="ignore"):
        outside = (ci_lo > v + tol) | (ci_hi < v - tol) | (ci_lo > ci_hi + tol)
    if outside.any():   # an edited or truncated file: the figure and its interval disagree
        i = int(np.flatnonzero(outside)[0])
        raise ValidationError("value", f"{df['metric'].iloc[i]} = {float(v[i])!r} lies outside its own "
                              f"interval [{ci_lo[i]!r}, {ci_hi[i]!r}]", where=f"quality row {i}")
    if "higher_is_better" not in df.columns:
        df["higher_is_better"] = None
    hib = []
    for i, (metric, h) in enumerate(zip(df["metric"], df["higher_is_better"], strict=True)):
        given = parse_bool(h, "higher_is_better", where=f"quality row {i}", allow_none=True)
        if given is None:
            if metric not in _m.HIGHER_IS_BETTER:
                raise ValidationError("higher_is_better", f"metric {metric!r} is not built in: give "
                                      "higher_is_better (True/False) for it", where=f"quality row {i}")
            given = _m.HIGHER_IS_BETTER[metric]
        elif metric in _m.HIGHER_IS_BETTER and given != _m.HIGHER_IS_BETTER[metric]:
            raise ValidationError("higher_is_better", f"{metric} is {'higher' if _m.HIGHER_IS_BETTER[metric] else 'lower'}"
                                  f"-is-better, the row says {h!r}", where=f"quality row {i}")
        hib.append(bool(given))
    df["higher_is_better"] = np.array(hib, dtype=bool) if n else np.array([], dtype=bool)
    dup = df.duplicated(["candidate", "metric", "condition"], keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValidationError("metric", f"candidate {df['candidate'].iloc[i]!r} has metric "
                              f"{df['metric'].iloc[i]!r} under {df['condition'].iloc[i]!r} twice",
                              where=f"quality row {i}")
    extra = [c for c in df.columns if c not in EVALUATION_COLUMNS]
    return df[list(EVALUATION_COLUMNS) + extra].reset_index(drop=True)


# ----------------------------------------------------------------------------- data handling

def _leaves_apply(obj: Any, fn: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, Mapping):
        return {k: _leaves_apply(v, fn) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return type(obj)(_leaves_apply(v, fn) for v in obj)
    return obj


def _to_tensor(a: Any) -> Any:
    import torch

    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    if isinstance(a, Mapping):
        return {k: _to_tensor(v) for k, v in a.items()}
    if isinstance(a, tuple | list) and a and not isinstance(a[0], int | float):
        return type(a)(_to_tensor(v) for v in a)
    return torch.as_tensor(a)


def _gather(data: Any, name: str) -> tuple[Any, Any]:
    """``(x, y)`` from a pair of tensors/arrays, or an iterable of ``(x, y)`` batches (DataLoader)."""
    import torch

    from .candidates import tensor_leaves

    if isinstance(data, tuple | list) and len(data) == 2 and not _is_batch_list(data):
        x, y = _to_tensor(data[0]), _to_tensor(data[1])
    elif isinstance(data, Iterable) and not isinstance(data, str | Mapping):
        xs, ys = [], []
        for i, batch in enumerate(data):
            if not (isinstance(batch, tuple | list) and len(batch) == 2):
                raise ValidationError(name, f"batch {i} is not an (inputs, labels) pair")
            xs.append(_to_tensor(batch[0]))
            ys.append(_to_tensor(batch[1]))
        if not xs:
            raise ValidationError(name, "the data loader gave no batches")
        x = _cat(xs)
        y = torch.cat(ys)
    else:
        raise ValidationError(name, "expected (inputs, labels) tensors or a DataLoader of (inputs, labels) "
                              f"batches, got {type(data).__name__}")
    leaves = tensor_leaves(x)
    if not leaves:
        raise ValidationError(name, "the inputs hold no tensor")
    n = {int(t.shape[0]) for t in leaves}
    if len(n) != 1 or n.pop() != int(y.shape[0]) or int(y.shape[0]) == 0:
        raise ValidationError(name, f"inputs and labels must share a non-empty first (batch) dimension; "
                              f"labels have {int(y.shape[0])} rows, inputs {[tuple(t.shape) for t in leaves]}")
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ValidationError(name, f"labels must be integer class ids, got {y.dtype}")
    return x, y.long()


def _is_batch_list(data: Any) -> bool:
    """``[(x, y), (x, y)]`` (two batches) rather than ``(x, y)``: both items are (x, y) pairs
    whose labels are tensors/arrays (in ``((x1, x2), y)`` the second item is the labels)."""
    def pair(item: Any) -> bool:
        return (isinstance(item, tuple | list) and len(item) == 2
                and hasattr(item[1], "shape") and not isinstance(item[0], int | float))
    return pair(data[0]) and pair(data[1])


def _cat(parts: list[Any]) -> Any:
    import torch

    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if isinstance(first, Mapping):
        return {k: _cat([p[k] for p in parts]) for k in first}
    return type(first)(_cat([p[i] for p in parts]) for i in range(len(first)))


def _slice(obj: Any, i: int, j: int) -> Any:
    return _leaves_apply(obj, lambda t: t[i:j])


def noise_seed(seed: int, sigma: float, draw: int = 0) -> int:
    """The seed of noise draw ``draw`` at level ``sigma``: from ``(seed, sigma, draw)`` alone, so
    ``accuracy@noise-0.3`` is the same whatever other levels ``noise=`` lists, in any order."""
    key = int(round(float(sigma) * 1e9))   # sigma to 1e-9 input units
    return int(np.random.SeedSequence([int(seed), key, int(draw)]).generate_state(1, dtype=np.uint64)[0]
               % (2 ** 63 - 1))


def _add_noise(x: Any, sigma: float, seed: int) -> Any:
    import torch

    from .candidates import tensor_leaves

    if not any(t.is_floating_point() for t in tensor_leaves(x)):
        raise ValidationError("noise", "Gaussian input noise needs floating inputs (these are "
                              "integer, e.g. token ids): pass noise=()")
    gen = torch.Generator().manual_seed(int(seed))

    def noisy(t: Any) -> Any:
        if not t.is_floating_point():
            return t
        return t + sigma * torch.randn(t.shape, generator=gen, dtype=torch.float32).to(t.dtype)

    return _leaves_apply(x, noisy)


def _probs(model: Any, candidate: Any, x: Any, y: Any, device: str, batch_size: int,
           outputs: str, ignore_index: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    import torch

    from .candidates import _move, call_model

    chunks = []
    n = int(y.shape[0])
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            out = call_model(model, _move(_slice(x, i, i + batch_size), device, candidate.dtype))
            if not isinstance(out, torch.Tensor) and hasattr(out, "logits"):
                out = out.logits
            if not isinstance(out, torch.Tensor):
                raise ValidationError("outputs", f"candidate {candidate.name!r} returned "
                                      f"{type(out).__name__}, not a tensor of logits/probabilities")
            chunks.append(out.detach().to("cpu", torch.float64))
    out = torch.cat(chunks)
    labels = y
    if out.ndim == 3 and labels.ndim == 2:          # (batch, tokens, vocab) sequence outputs
        out = out.reshape(-1, out.shape[-1])
        labels = labels.reshape(-1)
    if out.ndim != 2 or labels.ndim != 1 or out.shape[0] != labels.shape[0]:
        raise ValidationError("outputs", f"candidate {candidate.name!r}: outputs of shape "
                              f"{tuple(out.shape)} do not match labels of shape {tuple(y.shape)}")
    keep = check_labels(labels, int(out.shape[1]), candidate.name, ignore_index)
    out, labels = out[keep], labels[keep]
    p, how = read_outputs(out, outputs, candidate.name)
    return p.numpy(), labels.numpy(), how


# ----------------------------------------------------------------------------- bootstrap

# ----------------------------------------------------------------------------- evaluate

def _candidates(candidates: Any) -> list[Any]:
    from .candidates import Candidate

    if isinstance(candidates, Candidate):
        return [candidates]
    if isinstance(candidates, Mapping):  # name -> nn.Module
        out = []
        for name, model in candidates.items():
            out.append(Candidate(str(name), lambda m=model: m, lambda b: None))
        return out
    cands = list(candidates)
    if not cands or not all(isinstance(c, Candidate) for c in cands):
        raise ValidationError("candidates", "expected a Candidate, a list of Candidates or a mapping "
                              "name -> nn.Module")
    names = [c.name for c in cands]
    if len(set(names)) != len(names):
        raise ValidationError("candidates", f"candidate names must be unique, got {names}")
    return cands


def _check_args(metrics: Any, noise: Any, seed: Any, n_bootstrap: Any, confidence: Any, batch_size: Any,
                outputs: Any, noise_draws: Any, ignore_index: Any) -> tuple[list[_m.Metric], tuple[float, ...]]:
    if isinstance(metrics, Mapping):
        mlist = [_m.resolve_metric(v, name=k) for k, v in metrics.items()]
    elif isinstance(metrics, str | _m.Metric):
        mlist = [_m.resolve_metric(metrics)]
    else:
        mlist = [_m.resolve_metric(s) for s in metrics]
    if not mlist or len({m.name for m in mlist}) != len(mlist):
        raise ValidationError("metrics", f"give at least one metric, each once; got {[m.name for m in mlist]}")
    noise = tuple(noise or ())
    for s in noise:
        if isinstance(s, bool) or not isinstance(s, int | float) or not (s > 0 and math.isfinite(s)):
            raise ValidationError("noise", f"noise levels are positive standard deviations, got {s!r}")
    for name, v, lo in (("seed", seed, 0), ("n_bootstrap", n_bootstrap, 0), ("noise_draws", noise_draws, 1)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise ValidationError(name, f"must be an integer >= {lo}, got {v!r}")
    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise ValidationError("confidence", f"must be in (0, 1), got {confidence!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size", f"must be a positive integer, got {batch_size!r}")
    if outputs not in OUTPUT_KINDS:
        raise ValidationError("outputs", f"must be one of {OUTPUT_KINDS}, got {outputs!r}")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise ValidationError("ignore_index", f"must be an integer label to skip (e.g. -100) or None, "
                              f"got {ignore_index!r}")
    return mlist, tuple(float(s) for s in noise)


def data_sha256(x: Any, y: Any) -> str:
    """SHA-256 of the evaluated inputs (every tensor leaf, in order) and labels: the card's
    "which data" fingerprint."""
    import hashlib

    from .candidates import tensor_leaves

    h = hashlib.sha256()
    for t in [*tensor_leaves(x), y]:
        a = t.detach().cpu().contiguous().numpy()
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _describe(conditions: list[tuple[str, list[Any], Any]], noise: tuple[float, ...], draws: int,
              description: str) -> dict[str, Any]:
    """What was evaluated: the data's description and hash, and what each condition is."""
    x, y = conditions[0][1][0], conditions[0][2]
    what = {CLEAN: "the held-out data as given"}
    for sigma in noise:
        what[noise_condition(sigma)] = (f"Gaussian input noise x + {sigma:g} * N(0, 1) on every floating input "
                                        f"(not clipped), {draws} draw(s) seeded from (seed, sigma, draw)")
    for name, xs, sy in conditions:
        if name not in what:
            what[name] = f"a shifted data set given by the user ({int(sy.shape[0])} rows, sha256 " \
                         f"{data_sha256(xs[0], sy)[:16]})"
    return {"data": {"description": description, "sha256": data_sha256(x, y), "rows": int(y.shape[0])},
            "condition_descriptions": what}


def _conditions(data: Any, shifts: Mapping[str, Any] | None, noise: tuple[float, ...],
                seed: int, draws: int) -> list[tuple[str, list[Any], Any]]:
    """``[(condition, [inputs of each draw], labels)]``: clean, each noise level (``draws``
    draws seeded from (seed, sigma, draw)), each shifted data set."""
    x, y = _gather(data, "data")
    conditions: list[tuple[str, list[Any], Any]] = [(CLEAN, [x], y)]
    for sigma in noise:
        conditions.append((noise_condition(sigma), [_add_noise(x, sigma, noise_seed(seed, sigma, d))
                                                    for d in range(draws)], y))
    for name, shifted in (shifts or {}).items():
        if not isinstance(name, str) or not name or "@" in name or name == CLEAN or name.startswith("noise-"):
            raise ValidationError("shifts", f"a shift name must be a non-empty string without '@', not "
                                  f"'clean' nor 'noise-...'; got {name!r}")
        sx, sy = _gather(shifted, f"shifts[{name!r}]")
        conditions.append((name, [sx], sy))
    names = [c[0] for c in conditions]
    if len(set(names)) != len(names):
        raise ValidationError("noise", f"conditions must be distinct, got {names}")
    return conditions


def evaluate(candidates: Any, data: Any, metrics: Sequence[Any] | Mapping[str, Any] = DEFAULT_METRICS,
             shifts: Mapping[str, Any] | None = None, noise: Sequence[float] = DEFAULT_NOISE,
             seed: int = 0, n_bootstrap: int = DEFAULT_BOOTSTRAP, *, confidence: float = 0.95,
             n_bins: int = _m.DEFAULT_ECE_BINS, batch_size: int = 256, device: Any = "cpu",
             outputs: str = "auto", noise_draws: int = DEFAULT_NOISE_DRAWS,
             ignore_index: int | None = None, data_description: str = "") -> Evaluation:
    """Evaluate each candidate on held-out ``data`` under each condition; see the module docstring.

    Parameters
    ----------
    candidates: a :class:`~effplan.Candidate`, a list of them, or a mapping name -> ``nn.Module``.
    data: held-out ``(inputs, labels)`` (tensors or arrays) or a DataLoader of such batches
        (gathered into memory once).
    metrics: built-in names (:data:`effplan.metrics.BUILTIN_METRICS`), :class:`~effplan.metrics.Metric`
        objects, or a mapping name -> ``(fn(probs, labels), higher_is_better)``.
    shifts: name -> shifted held-out data (same forms as ``data``), each one more condition.
    noise: Gaussian input-noise standard deviations (default :data:`DEFAULT_NOISE` = 0.1, 0.3);
        ``()`` for none. noise_draws: draws per level (default :data:`DEFAULT_NOISE_DRAWS`),
        each seeded from ``(seed, sigma, draw)`` alone; the figure is over all draws and its
        interval resamples examples with all their draws.
    seed: seeds the noise and the bootstrap. n_bootstrap: resamples for the CI (0: none).
    confidence: CI level. n_bins: ECE bins. batch_size: evaluation batch size (recorded: an
        int8 model's figures can depend on it).
    device: torch device (a candidate's own ``device`` wins, e.g. int8 pinned to CPU).
    outputs: ``"auto"`` (default: rows that are non-negative and sum to 1 are probabilities,
        anything else logits, softmax applied; recorded per candidate in
        ``settings["outputs_read_as"]``), ``"logits"`` or ``"probs"`` (a declaration that the
        outputs contradict is a named error).
    ignore_index: a label value to skip (``-100`` for padded sequence labels); without it a
        label outside ``[0, classes)`` is a named error.
    data_description: what the held-out data is (kept in ``settings["data"]`` beside its
        SHA-256, and shown on compute cards).
    """
    from .measurement import _resolve_device
    from .reproducibility import reproducibility_fields

    cands = _candidates(candidates)
    mlist, noise = _check_args(metrics, noise, seed, n_bootstrap, confidence, batch_size, outputs,
                               noise_draws, ignore_index)
    n_bins = _m._check_bins(n_bins)
    conditions = _conditions(data, shifts, noise, int(seed), int(noise_draws))
    default_device = _resolve_device(device)
    rows: list[dict[str, Any]] = []
    repro: dict[str, dict[str, Any]] = {}
    # one index matrix per condition, shared by every candidate and metric (paired bootstrap)
    boot: dict[str, list[np.ndarray]] = {}
    boot_values: dict[tuple[str, str, str], np.ndarray] = {}
    preds: dict[tuple[str, str], Predictions] = {}
    read_as: dict[str, str] = {}
    devices: dict[str, str] = {}
    clipped: dict[str, dict[str, int]] = {}
    for cand in cands:
        dev = _resolve_device(cand.device) if cand.device else default_device
        devices[cand.name] = str(dev)
        model = cand.build_model(dev)
        model.eval()
        repro[cand.name] = reproducibility_fields(model, seed=int(seed))
        for k, (cond, xs, cy) in enumerate(conditions):
            parts = []
            for cx in xs:
                p, lab, how = _probs(model, cand, cx, cy, dev, batch_size,
                                     read_as.get(cand.name, outputs), ignore_index)
                read_as.setdefault(cand.name, how)   # read the same way under every condition
                parts.append(_m.validate(p, lab, where=f"evaluate({cand.name!r}, {cond})"))
            p = np.concatenate([q for q, _ in parts])
            lab = np.concatenate([yy for _, yy in parts])
            n = len(parts[0][1])
            if cond not in boot:
                rng = np.random.default_rng([int(seed), k])
                boot[cond] = _resamples(rng, n, int(n_bootstrap), len(parts)) if n_bootstrap else []
            first = parts[0][0]
            preds[(cand.name, cond)] = Predictions(labels=parts[0][1].copy(), predicted=first.argmax(axis=1),
                                                   p_predicted=first.max(axis=1),
                                                   p_true=first[np.arange(n), parts[0][1]])
            clipped.setdefault(cand.name, {})[cond] = _m.clipped_rows(p, lab)
            for metric in mlist:
                value, lo, hi, vals = _interval(metric, p, lab, boot[cond], n, n_bins, confidence)
                if len(vals):
                    boot_values[(cand.name, metric.name, cond)] = vals
                rows.append({"candidate": cand.name, "metric": metric.name, "condition": cond,
                             "value": float(value), "ci_low": lo, "ci_high": hi, "n": float(n),
                             "provenance": "measured", "higher_is_better": bool(metric.higher_is_better),
                             **repro[cand.name]})
        del model
    frame = pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS) + list(EVALUATION_REPRO_COLUMNS))
    frame["higher_is_better"] = frame["higher_is_better"].astype(bool)
    settings = {"metrics": [m.name for m in mlist], "conditions": [c[0] for c in conditions],
                "noise": list(noise), "noise_kind": "gaussian, x + sigma * N(0, 1), not clipped",
                "noise_draws": int(noise_draws), "noise_seeding": "each draw from (seed, sigma, draw) alone",
                "seed": int(seed), "n_bootstrap": int(n_bootstrap), "confidence": confidence,
                "intervals": INTERVALS, "ece_bins": n_bins, "ece_binning": "top-label, equal-width, (b/n, (b+1)/n]",
                "outputs": outputs, "outputs_read_as": read_as, "ignore_index": ignore_index,
                "batch_size": int(batch_size), "device": devices,
                "nll_clip_eps": _m.NLL_EPS, "nll_clipped_rows": clipped,
                "brier": "multi-class sum over classes, in [0, 2] (2x sklearn's binary brier_score_loss; "
                         "that one is the metric 'brier_binary')",
                **_describe(conditions, noise, int(noise_draws), str(data_description or ""))}
    return Evaluation(frame=frame, reproducibility=repro, settings=settings, bootstrap=boot_values,
                      predictions=preds)


def score(probs: Any, labels: Any, metrics: Sequence[Any] = DEFAULT_METRICS, *, n_bootstrap: int = DEFAULT_BOOTSTRAP,
          seed: int = 0, confidence: float = 0.95, n_bins: int = _m.DEFAULT_ECE_BINS) -> pd.DataFrame:
    """The metrics of :func:`evaluate` with their intervals on probabilities you already have
    (N x classes rows summing to 1, integer labels): ``metric, value, ci_low, ci_high, n``.
    Same intervals and resampling as :func:`evaluate` (what ``benchmarks/calibration.py``
    measures the coverage of)."""
    p, y = _m.validate(probs, labels, where="score")
    mlist, _ = _check_args(metrics, (), seed, n_bootstrap, confidence, 1, "auto", 1, None)
    n_bins = _m._check_bins(n_bins)
    resamples = _resamples(np.random.default_rng([int(seed), 0]), len(y), int(n_bootstrap)) if n_bootstrap else []
    rows = []
    for metric in mlist:
        value, lo, hi, _vals = _interval(metric, p, y, resamples, len(y), n_bins, confidence)
        rows.append({"metric": metric.name, "value": float(value), "ci_low": lo, "ci_high": hi, "n": len(y)})
    return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high", "n"])
