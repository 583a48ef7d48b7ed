"""Choosing among candidates: the Pareto front and "the cheapest option that meets the bar".

* :func:`pareto_front` -- rows not dominated in (lower cost, better metric), for any metric,
  higher- or lower-is-better.
* :func:`cheapest_meeting` -- per quarter of a plan, the cheapest candidate x hardware whose
  figures meet every bound (``min={"accuracy@noise-0.1": 0.95}``,
  ``max={"ece": 0.05, "latency_p95_ms": 50}``), and for every other option the reason it was
  rejected. When nothing qualifies the answer says so (a :class:`Selection` with no choice and
  every reason), it does not raise.

A bound's key is a column of the plan's quarterly frame (``latency_p95_ms``, ``cost_usd``,
``co2_kg``, ``quality``, or a quality metric already joined into the plan) or a quality key
``"<metric>"`` / ``"<metric>@<condition>"`` (:func:`effplan.evaluation.metric_key`) looked up in
``quality`` (an :class:`~effplan.Evaluation`, its tidy frame, or hand-entered values).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError

def cheapest_first_key(cost: Any, energy: Any, candidate: Any, hardware: Any) -> tuple[float, float, str, str]:
    """THE tie rule of "the cheapest option meeting the targets", for :func:`cheapest_meeting` and
    :func:`effplan.planning.frames.rank_options` alike: lower cost first (unknown last), then
    less energy (unknown last), then the first by candidate name, then by hardware name."""
    def num(v: Any) -> float:
        try:
            f = float(v)
        except (TypeError, ValueError):
            return math.inf
        return f if math.isfinite(f) else math.inf

    return (num(cost), num(energy), str(candidate), str(hardware))


def pareto_front(frame: pd.DataFrame, cost: str = "cost_usd", metric: str = "quality",
                 higher_is_better: bool | None = None) -> pd.DataFrame:
    """Rows of ``frame`` not dominated in (lower ``cost``, better ``metric``).

    Better means higher when ``higher_is_better`` else lower. ``None`` (the default) takes the
    metric's own direction (:func:`effplan.records.directions.higher_is_better`: ``ece``, ``nll``,
    ``brier``, latency lower; ``accuracy``, ``quality`` higher). A row is
    dominated when another row costs no more AND is at least as good, and is strictly better in
    one of the two; identical points do not dominate each other (ties are all kept). Rows with
    NaN cost or metric are left out. The result keeps the index and columns and is sorted by
    ascending cost, then best metric first: the order to draw the front.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError("frame", f"expected a DataFrame, got {type(frame).__name__}",
                              where="pareto_front")
    for col, arg in ((cost, "cost"), (metric, "metric")):
        if col not in frame.columns:
            raise ValidationError(arg, f"column {col!r} not in the frame (columns: {list(frame.columns)})",
                                  where="pareto_front")
    if higher_is_better is None:
        from ..records.directions import higher_is_better as direction

        higher_is_better = direction(metric)
    else:
        from ..records.schema import parse_bool

        higher_is_better = bool(parse_bool(higher_is_better, "higher_is_better", where="pareto_front"))
    c_all = pd.to_numeric(frame[cost], errors="coerce").to_numpy(dtype=float)
    q_all = pd.to_numeric(frame[metric], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(c_all) & np.isfinite(q_all)
    c = c_all[ok]
    q = q_all[ok] if higher_is_better else -q_all[ok]   # "better" = larger from here on
    le = c[None, :] <= c[:, None]
    ge = q[None, :] >= q[:, None]
    strict = (c[None, :] < c[:, None]) | (q[None, :] > q[:, None])
    dominated = (le & ge & strict).any(axis=1)
    front = frame[ok][~dominated]
    order = np.lexsort((-q[~dominated], c[~dominated]))
    return front.iloc[order]


@dataclass(frozen=True, eq=False)
class Selection:
    """What :func:`cheapest_meeting` found.

    Attributes
    ----------
    chosen: one row per quarter that has a qualifying option (the cheapest one); empty when
        nothing qualifies anywhere.
    options: every candidate x hardware x quarter with the bound columns, ``meets``, ``chosen``
        and ``reason`` (why it was rejected; "" for the chosen one).
    bounds: ``{"min": {...}, "max": {...}}`` as given.
    answer: the answer in words, one line per quarter.
    """

    chosen: pd.DataFrame
    options: pd.DataFrame
    bounds: dict[str, dict[str, float]] = field(default_factory=dict)
    answer: str = ""

    @property
    def found(self) -> bool:
        """True when at least one quarter has a qualifying option."""
        return not self.chosen.empty

    def to_frame(self) -> pd.DataFrame:
        """A copy of ``options``."""
        return self.options.copy()

    def __repr__(self) -> str:
        return f"Selection({self.answer})"

    def _repr_html_(self) -> str:
        from ..safe import html_text

        return ("<pre>" + html_text(self.answer) + "</pre>"
                + self.options.to_html(index=False, float_format="{:,.4g}".format, na_rep="n/a"))


def _bounds(arg: str, bounds: Mapping[str, Any] | None) -> dict[str, float]:
    if bounds is None:
        return {}
    if not isinstance(bounds, Mapping):
        raise ValidationError(arg, f"expected a mapping key -> number, got {type(bounds).__name__}",
                              where="cheapest_meeting")
    out = {}
    for k, v in bounds.items():
        if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not math.isfinite(float(v)):
            raise ValidationError(arg, f"bound {k!r} must be a finite number, got {v!r}",
                                  where="cheapest_meeting")
        out[str(k)] = float(v)
    return out


def _options_frame(plan: Any) -> pd.DataFrame:
    if isinstance(plan, pd.DataFrame):
        df = plan
    elif hasattr(plan, "quarterly"):
        df = plan.quarterly
        if (df is None or df.empty) and getattr(plan, "training", None) is not None:
            df = plan.training
    else:
        raise ValidationError("plan", f"expected a Plan or its quarterly DataFrame, got {type(plan).__name__}",
                              where="cheapest_meeting")
    for col in ("candidate", "hardware", "cost_usd"):
        if col not in df.columns:
            raise ValidationError(col, "required column missing from the plan frame", where="cheapest_meeting")
    df = df.copy()
    if "quarter" not in df.columns:
        df["quarter"] = 1
    if "feasible" not in df.columns:
        df["feasible"] = True
    if "infeasible_reason" not in df.columns:
        df["infeasible_reason"] = ""
    return df.reset_index(drop=True)


def _fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.4g}"


def _check_directions(lo: Mapping[str, float], hi: Mapping[str, float], quality: Any) -> None:
    """A ``min=`` on a lower-is-better quality metric (or ``max=`` on a higher-is-better one) is
    a mistake the direction of the metric can see: refused, naming the argument."""
    from ..records import metrics as _m
    from ..records.quality import split_key

    for arg, bounds, want in (("min", lo, True), ("max", hi, False)):
        for key in bounds:
            metric = split_key(key)[0]
            if metric in _m.HIGHER_IS_BETTER and _m.HIGHER_IS_BETTER[metric] != want:
                other = "max" if want else "min"
                raise ValidationError(arg, f"{key} is {'lower' if want else 'higher'}-is-better: give its "
                                      f"bound in {other}= (or as a bar)", where="cheapest_meeting")


def cheapest_meeting(plan: Any, min: Mapping[str, float] | None = None,  # noqa: A002 - the API's words
                     max: Mapping[str, float] | None = None, quality: Any = None,  # noqa: A002
                     bars: Any = None) -> Selection:
    """The cheapest feasible candidate x hardware per quarter that meets every bound.

    Parameters
    ----------
    plan: a :class:`~effplan.Plan` (its ``quarterly`` frame; a training-only plan uses
        ``training``) or such a DataFrame.
    min: key -> lowest acceptable value (``{"accuracy@noise-0.1": 0.95}``).
    max: key -> highest acceptable value (``{"ece": 0.05, "latency_p95_ms": 50}``).
    quality: quality to join by candidate (Evaluation, tidy frame or
        ``{candidate: {key: value}}``); its keys win over plan columns of the same name.
    bars: quality bars (:mod:`effplan.records.bars`: ``[("accuracy", 0.96), ("accuracy@noise-0.1", 0.95),
        ("ece", 0.05)]`` or :class:`~effplan.records.bars.QualityBar` objects, optionally judged on the
        interval's end, ``on="interval"``), judged on ``quality``; each bar's direction is the
        metric's own. A ``min=`` on a lower-is-better metric (``ece``) is refused.

    An option is rejected when the plan marks it infeasible, its cost is unknown, a bound's
    value is unknown for it, or a bound is not met; the reasons are listed in ``options``.
    Among the options that meet every bound, the cheapest is chosen per quarter; on equal
    cost the one using less energy (``energy_kwh``), then the first by candidate and hardware
    name. An unknown key raises ``ValidationError('min'/'max')``.
    """
    lo, hi = _bounds("min", min), _bounds("max", max)
    _check_directions(lo, hi, quality)
    from ..records.bars import as_bars, judge

    bar_list = as_bars(bars)
    if bar_list and quality is None:
        raise ValidationError("bars", "quality bars need quality= (an Evaluation or its frame)",
                              where="cheapest_meeting")
    df = _options_frame(plan)
    if quality is not None:
        from ..records.quality import join_quality

        df = join_quality(df, quality)
    for arg, bounds in (("min", lo), ("max", hi)):
        unknown = [k for k in bounds if k not in df.columns]
        if unknown:
            raise ValidationError(arg, f"unknown key(s) {unknown}: not a plan column nor a quality metric "
                                  "(pass quality= an Evaluation, or use e.g. 'accuracy@noise-0.1')",
                                  where="cheapest_meeting")
    n = len(df)
    reasons: list[list[str]] = [[] for _ in range(n)]
    from ..records.schema import bool_mask

    feasible = bool_mask(df["feasible"], "feasible", where="cheapest_meeting")  # "False" is refused
    cost = pd.to_numeric(df["cost_usd"], errors="coerce").to_numpy(dtype=float)
    energy = (pd.to_numeric(df["energy_kwh"], errors="coerce").fillna(np.inf).to_numpy(dtype=float)
              if "energy_kwh" in df.columns else np.zeros(n))
    for i in range(n):
        if not feasible[i]:
            why = str(df["infeasible_reason"].iloc[i] or "").strip()
            reasons[i].append("infeasible" + (f": {why}" if why else ""))
        elif not math.isfinite(cost[i]):
            reasons[i].append("cost unknown (missing price)")
    for key, bound, sign, word in ([(k, v, 1, "min") for k, v in lo.items()]
                                   + [(k, v, -1, "max") for k, v in hi.items()]):
        vals = pd.to_numeric(df[key], errors="coerce").to_numpy(dtype=float)
        for i, v in enumerate(vals):
            if not math.isfinite(v):
                reasons[i].append(f"{key} unknown")
            elif sign * (v - bound) < 0:
                rel = "<" if sign > 0 else ">"
                reasons[i].append(f"{key} = {_fmt(v)} {rel} {word} {_fmt(bound)}")
    bar_cols: list[str] = []
    if bar_list:
        j = judge(quality, bar_list, list(dict.fromkeys(df["candidate"].astype(str))))
        for b, g in zip(bar_list, [j[j["bar"] == b.label()] for b in bar_list], strict=True):
            col = b.label()
            by = g.set_index("candidate")
            df[col] = df["candidate"].astype(str).map(by["figure"]).astype(float).to_numpy()
            bar_cols.append(col)
            why = df["candidate"].astype(str).map(by["reason"]).fillna(f"{b.key} unknown").to_numpy()
            for i, r in enumerate(why):
                if r:
                    reasons[i].append(str(r))
    meets = np.array([not r for r in reasons], dtype=bool)
    chosen = np.zeros(n, dtype=bool)
    lines: list[str] = []
    for quarter in sorted(df["quarter"].dropna().unique()):
        inq = (df["quarter"] == quarter).to_numpy()
        ok = np.flatnonzero(inq & meets)
        label = f"Q{int(quarter)}" if float(quarter).is_integer() else f"Q{quarter}"
        if not len(ok):
            lines.append(f"{label}: nothing meets every bound ({int(inq.sum())} options rejected; "
                         "see .options['reason'])")
            continue
        best = builtins.min(ok, key=lambda i: cheapest_first_key(cost[i], energy[i], df["candidate"].iloc[i],
                                                                 df["hardware"].iloc[i]))
        chosen[best] = True
        name, hw = df["candidate"].iloc[best], df["hardware"].iloc[best]
        for i in ok:
            if i == best:
                continue
            if cost[i] > cost[best]:
                reasons[i].append(f"meets every bound but costs {_fmt(cost[i] - cost[best])} USD more than "
                                  f"{name} on {hw}")
            elif energy[i] > energy[best]:
                a, b = _fmt(energy[best]), _fmt(energy[i])
                if a == b:  # differs past 4 significant digits: show enough to see it
                    a, b = f"{energy[best]:.8g}", f"{energy[i]:.8g}"
                reasons[i].append(f"meets every bound at the same cost as {name} on {hw}, which uses "
                                  f"less energy ({a} vs {b} kWh)")
            else:
                reasons[i].append(f"meets every bound; ties with {name} on {hw} on cost and energy "
                                  "(the first by name was chosen)")
        lines.append(f"{label}: {name} on {hw} at {_fmt(cost[best])} USD")
    cols = list(dict.fromkeys(["candidate", "hardware", "quarter", "cost_usd", *lo, *hi, *bar_cols]))
    options = df[cols].copy()
    options["meets"] = meets
    options["chosen"] = chosen
    options["reason"] = ["; ".join(r) for r in reasons]
    if "provenance" in df.columns:
        options["provenance"] = df["provenance"].to_numpy()
    options = options.sort_values(["quarter", "cost_usd", "candidate", "hardware"], kind="mergesort",
                                  na_position="last").reset_index(drop=True)
    picked = options[options["chosen"]].drop(columns=["meets", "chosen", "reason"]).reset_index(drop=True)
    if not lines:
        lines.append("nothing to choose from: the plan has no rows")
    return Selection(chosen=picked, options=options,
                     bounds={"min": lo, "max": hi, **({"bars": {b.label(): b.bound for b in bar_list}}
                                                     if bar_list else {})},
                     answer="\n".join(lines))
