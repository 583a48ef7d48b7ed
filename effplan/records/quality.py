"""The quality record: the tidy evaluation frame, its metric keys and its one validator.

One row per candidate x metric x condition with the columns of :data:`EVALUATION_COLUMNS`
(``candidate, metric, condition, value, ci_low, ci_high, n, provenance, higher_is_better``),
then on evaluated rows the reproducibility columns :data:`EVALUATION_REPRO_COLUMNS`.
``provenance`` is ``measured`` for evaluated rows (:func:`effplan.evaluate`) and ``entered`` for
hand-typed ones. Conditions: ``clean``, ``noise-<sigma>`` (:func:`noise_condition`) or the
name of a shifted data set.

A metric is named ``"<metric>"`` on clean data and ``"<metric>@<condition>"`` otherwise
(:func:`metric_key`, :func:`split_key`) wherever one column per metric is needed (plan frames,
:func:`effplan.cheapest_meeting`). :func:`quality_frame` is the one validator of quality
(an :class:`Evaluation`, a tidy frame or hand-entered values); :func:`join_quality` joins it
to measurement or plan rows. numpy / pandas only: :func:`effplan.evaluate`
(:mod:`effplan.bench.evaluation`) is what runs the models.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from . import metrics as _m
from .schema import parse_bool

__all__ = ["CLEAN", "EVALUATION_COLUMNS", "EVALUATION_REPRO_COLUMNS", "METRIC_RANGES", "Evaluation",
           "Predictions", "noise_condition", "metric_key", "split_key", "wide", "join_quality",
           "quality_frame"]

#: the condition of the data as given
CLEAN = "clean"

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
        from ..safe import html_text

        return f"<p>{html_text(repr(self))}</p>" + self.wide().to_html(index=False, float_format="{:.4g}".format,
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
