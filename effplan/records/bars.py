"""Quality bars: several at once, each judged on the figure or on its interval.

A :class:`QualityBar` is a bound on one quality key (``"accuracy"``, ``"accuracy@noise-0.1"``,
``"ece"``): a minimum for a higher-is-better metric, a maximum for a lower-is-better one (the
direction comes from :mod:`effplan.records.directions`, never from a flag). ``on="interval"`` judges
the interval's end instead of the figure: the lower end ``>=`` a minimum, the upper end ``<=``
a maximum ("the figure is above the bar with 95% confidence").

:func:`judge` scores every candidate of a quality frame against a set of bars;
:func:`shift_gaps` finds the conditions a chosen candidate fails that the baseline passes (the
same threshold as a bar, under another condition): the one line the dashboard's headline adds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .directions import higher_is_better
from ..errors import ValidationError
from .quality import metric_key, quality_frame, split_key
from .schema import number, parse_bool

__all__ = ["QualityBar", "as_bars", "judge", "failures", "shift_gaps", "gap_line", "shift_table", "JUDGED_ON"]

#: what a bar may be judged on
JUDGED_ON = ("value", "interval")


@dataclass(frozen=True)
class QualityBar:
    """``key`` (a quality key), ``bound``, ``on`` (``"value"`` or ``"interval"``) and the metric's
    direction (filled from :func:`effplan.records.directions.higher_is_better` when None)."""

    key: str
    bound: float
    on: str = "value"
    higher_is_better: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key.strip():
            raise ValidationError("bars", f"a bar's key must be a metric key such as 'accuracy@noise-0.1', "
                                  f"got {self.key!r}")
        object.__setattr__(self, "bound", float(number("bars", self.bound, where=f"bar {self.key!r}")))
        if self.on not in JUDGED_ON:
            raise ValidationError("bars", f"bar {self.key!r}: on must be one of {JUDGED_ON}, got {self.on!r}")
        hib = self.higher_is_better
        hib = higher_is_better(self.key) if hib is None else parse_bool(hib, "higher_is_better")
        object.__setattr__(self, "higher_is_better", bool(hib))

    @property
    def metric(self) -> str:
        return split_key(self.key)[0]

    @property
    def condition(self) -> str:
        return split_key(self.key)[1]

    @property
    def kind(self) -> str:
        """``"min"`` or ``"max"``."""
        return "min" if self.higher_is_better else "max"

    def label(self) -> str:
        """``accuracy >= 0.96 (clean)``; ``ece <= 0.05 (noise-0.1, upper end)``."""
        rel = ">=" if self.higher_is_better else "<="
        end = "" if self.on == "value" else (", lower end" if self.higher_is_better else ", upper end")
        return f"{self.metric} {rel} {self.bound:g} ({self.condition}{end})"

    def figure(self, value: float, ci_low: float, ci_high: float) -> float:
        """The number the bar judges: the value, or the interval's relevant end."""
        if self.on == "value":
            return float(value)
        return float(ci_low if self.higher_is_better else ci_high)

    def passes(self, figure: float) -> bool:
        return figure >= self.bound if self.higher_is_better else figure <= self.bound


def as_bars(spec: Any) -> list[QualityBar]:
    """Bars from ``QualityBar`` objects, ``(key, bound[, on])`` tuples, dicts with those fields
    or a mapping ``{key: bound}``; ``None`` -> []."""
    if spec is None:
        return []
    if isinstance(spec, QualityBar):
        return [spec]
    if isinstance(spec, Mapping) and not {"key", "bound"} <= set(spec):
        return [QualityBar(str(k), v) for k, v in spec.items()]
    if isinstance(spec, Mapping):
        spec = [spec]
    if not isinstance(spec, Iterable) or isinstance(spec, str):
        raise ValidationError("bars", f"expected bars (QualityBar, (key, bound) pairs or {{key: bound}}), "
                              f"got {type(spec).__name__}")
    out = []
    for b in spec:
        if isinstance(b, QualityBar):
            out.append(b)
        elif isinstance(b, Mapping):
            out.append(QualityBar(**{k: b[k] for k in ("key", "bound", "on", "higher_is_better") if k in b}))
        elif isinstance(b, tuple | list) and len(b) in (2, 3):
            out.append(QualityBar(*b))
        else:
            raise ValidationError("bars", f"cannot read {b!r} as a bar: give (key, bound) or (key, bound, on)")
    keys = [(b.key, b.on) for b in out]
    if len(set(keys)) != len(keys):
        raise ValidationError("bars", f"each key once per judging mode, got {keys}")
    return out


def judge(quality: Any, bars: Any, candidates: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per candidate x bar: ``candidate, bar, key, value, ci_low, ci_high, figure,
    passes, reason`` (``passes`` is False with reason "... unknown" when the candidate has no
    figure for the key, or no interval for a bar judged on it)."""
    bl = as_bars(bars)
    q = quality_frame(quality)
    keys = [metric_key(m, c) for m, c in zip(q["metric"], q["condition"], strict=True)]
    q = q.assign(key=keys).set_index(["candidate", "key"])
    names = list(dict.fromkeys(q.index.get_level_values(0))) if candidates is None else [str(c) for c in candidates]
    rows = []
    for cand in names:
        for b in bl:
            key = metric_key(b.metric, b.condition)
            if (cand, key) in q.index:
                r = q.loc[(cand, key)]
                v, lo, hi = float(r["value"]), float(r["ci_low"]), float(r["ci_high"])
            else:
                v = lo = hi = math.nan
            fig = b.figure(v, lo, hi)
            what = key if b.on == "value" else f"{key} {'lower' if b.higher_is_better else 'upper'} end"
            if not math.isfinite(fig):
                ok, why = False, f"{what} unknown"
            else:
                ok = bool(b.passes(fig))
                rel = "<" if b.higher_is_better else ">"
                why = "" if ok else f"{what} = {fig:.4g} {rel} {b.kind} {b.bound:g}"
            rows.append({"candidate": cand, "bar": b.label(), "key": key, "value": v, "ci_low": lo,
                         "ci_high": hi, "figure": fig, "passes": ok, "reason": why})
    return pd.DataFrame(rows, columns=["candidate", "bar", "key", "value", "ci_low", "ci_high", "figure",
                                       "passes", "reason"])


def failures(quality: Any, bars: Any, candidates: Iterable[str] | None = None) -> dict[str, str]:
    """candidate -> "" when it meets every bar, else the reasons joined with "; "."""
    j = judge(quality, bars, candidates)
    out: dict[str, str] = {}
    for cand, g in j.groupby("candidate", sort=False):
        out[str(cand)] = "; ".join(r for r in g["reason"] if r)
    return out


def shift_gaps(quality: Any, bars: Any, chosen: str, baseline: str | None) -> list[dict[str, Any]]:
    """Conditions the ``chosen`` candidate fails and the ``baseline`` passes, at the threshold of
    each bar, under each evaluated condition the bars do not already judge. Each item:
    ``{"key", "condition", "bar", "chosen_value", "baseline_value"}``, worst gap first."""
    if not baseline or chosen == baseline:
        return []
    bl = as_bars(bars)
    q = quality_frame(quality)
    judged = {metric_key(b.metric, b.condition) for b in bl}
    out = []
    for b in bl:
        for cond in pd.unique(q.loc[q["metric"] == b.metric, "condition"]):
            key = metric_key(b.metric, str(cond))
            if key in judged:
                continue
            probe = QualityBar(key, b.bound, b.on, b.higher_is_better)
            j = judge(q, [probe], [chosen, baseline]).set_index("candidate")
            if not j.loc[chosen, "passes"] and j.loc[baseline, "passes"] and np.isfinite(j.loc[chosen, "figure"]):
                out.append({"key": key, "condition": str(cond), "bar": probe.label(),
                            "chosen_value": float(j.loc[chosen, "figure"]),
                            "baseline_value": float(j.loc[baseline, "figure"]),
                            "gap": abs(float(j.loc[chosen, "figure"]) - b.bound)})
    return sorted(out, key=lambda d: -d["gap"])


def gap_line(gaps: list[dict[str, Any]], chosen: str, baseline: str) -> str:
    """The headline's one line: "Under noise-0.1, digits-mlp-student scores accuracy 0.951, below
    the bar of 0.96 that the baseline digits-mlp holds (0.967)." ("" without gaps)."""
    if not gaps:
        return ""
    g = gaps[0]
    metric = g["key"].partition("@")[0]
    rel = "below" if ">=" in g["bar"] else "above"
    more = f" (and {len(gaps) - 1} more condition{'s' if len(gaps) > 2 else ''})" if len(gaps) > 1 else ""
    bound = g["bar"].split(" ")[2]
    return (f"Under {g['condition']}, {chosen} scores {metric} {g['chosen_value']:.3g}, {rel} the bar of "
            f"{bound} that the baseline {baseline} holds ({g['baseline_value']:.3g}){more}.")


def shift_table(quality: Any, bars: Any, baseline: str | None) -> pd.DataFrame:
    """One row per candidate that meets every bar but fails, at a bar's threshold, a condition
    the ``baseline`` passes: ``candidate, meets_bars, fails_under, line`` (empty frame when none:
    the case a clean bar alone would hide)."""
    q = quality_frame(quality)
    ok = failures(q, bars)
    rows = []
    for cand, why in ok.items():
        if why or cand == baseline:
            continue
        gaps = shift_gaps(q, bars, cand, baseline)
        if gaps:
            rows.append({"candidate": cand, "meets_bars": ", ".join(b.label() for b in as_bars(bars)),
                         "fails_under": ", ".join(g["condition"] for g in gaps),
                         "line": gap_line(gaps, cand, str(baseline))})
    return pd.DataFrame(rows, columns=["candidate", "meets_bars", "fails_under", "line"])
