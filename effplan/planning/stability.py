"""Plans from timings taken on a busy machine: one rule, one set of figures, one statement.

A measured row is ``stable=False`` when its timing rounds disagreed, it saw stalls or two modes,
or other processes left it fewer free cores than it had threads (:mod:`effplan.timing`). On a
laptop, a Binder pod or a CI runner that is the normal state, so a plan never stops there:

**The rule** (:func:`resolve_allow_unstable`; the same for :func:`effplan.plan`,
:func:`effplan.planning.prepare`, :func:`effplan.defaults.demo_requests_per_day`, inference,
training and generation, the dashboard, the notebooks, ``make report`` and the CLI):

* default (``allow_unstable=None`` -> :data:`effplan.defaults.ALLOW_UNSTABLE`, True): such rows
  are **used and flagged**: every option whose figures rest on one says so, and its Monte Carlo
  band is widened by the measured spread;
* ``allow_unstable=False`` (a strict plan; CLI ``--strict-stability``): they are refused, and
  every option that had only such rows -- on the measured hardware and on every hardware
  projected from it -- is infeasible with the named reason ("measurement not stable (...)").

**The figures** of a flagged row (:func:`row_spread`), kept on every row, option and summary:

* ``background_load`` *N*: CPU cores' worth of work by other processes while it was timed (as
  measured, :class:`effplan.timing.LoadMonitor`);
* ``timing_spread_rel`` *X*: how far its latency could be off -- the measured spread between
  its timing rounds (``latency_round_spread_rel``: the 10th-90th percentile range of the rounds'
  medians over the median of all samples, :func:`effplan.timing.round_spread_rel`). Rows without
  it (one round, or stored by an older effplan) fall back to the relative half-width of the
  ~95% CI of the median (``latency_ci_rel``). The round spread comes first because it is
  empirical: under contention the samples are not independent (stalls come in bursts), and
  the order-statistics CI of a median sitting between two modes spans both of them. NaN when
  neither was recorded (typed-in rows): the statement then says so instead of inventing a
  figure.

An option (candidate x hardware) is flagged when the row it is planned from is: its chosen
batch size (or concurrency), both measured neighbours of an interpolated one, and for projected
hardware the measured rows it was projected from. Its *N* and *X* are the largest of those
rows'. The cost of an option is proportional to its latency (instances = peak load / throughput),
so *X* is also how far its cost could be off.

**The Monte Carlo band** (``samples > 0``, :func:`latency_sigma`): a stable row's latency error
is normal with sigma = ``latency_ci_rel / 1.96`` (unchanged); a flagged row's has sigma = ``X /
1.2816`` (the 90th percentile of a standard normal), so that the P10-P90 of its latency draws
spans exactly +-X: the band shows the doubt (never narrower than its CI alone would make it:
the larger of the two sigmas). Draws are clipped at +-3 sigma, as before.

**The statement** (:func:`busy_sentence`), the same words wherever a figure appears (headline,
ranking, notebooks, reports, CLI, compute cards, warnings): "Timings were taken on a busy
machine (background load 1.6 cores); the cost could be 12% off."
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..formatting import spread_pct  # X as the statement writes it (one home: formatting)

__all__ = ["resolve_allow_unstable", "row_spread", "latency_sigma", "busy_sentence", "option_note",
           "option_notes", "headline_note", "spread_pct", "flag_columns", "is_flagged", "worst",
           "FLAG_COLUMNS", "Z90"]

#: 90th percentile of the standard normal: a flagged row's latency sigma is X / Z90, so the
#: P10-P90 of its draws is +-X
Z90 = 1.2815515655446004
#: a 95% CI half-width in sigmas, as the planner has always used it (a stable row's latency
#: sigma is ci / 1.96)
Z95 = 1.96

#: per-row / per-option flag columns the planner carries (see the module docstring)
FLAG_COLUMNS = ("timing_unstable", "timing_spread_rel", "background_load")


def resolve_allow_unstable(allow_unstable: bool | None) -> bool:
    """The rule's one switch: ``None`` -> :data:`effplan.defaults.ALLOW_UNSTABLE`."""
    from ..records.schema import parse_bool

    if allow_unstable is None:
        from .. import settings as defaults

        return bool(parse_bool(defaults.ALLOW_UNSTABLE, "ALLOW_UNSTABLE"))
    return bool(parse_bool(allow_unstable, "allow_unstable"))  # "False" is refused, not truthy


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(float)


def not_stable(df: pd.DataFrame) -> np.ndarray:
    """Rows measured ``stable=False`` (unknown / empty ``stable`` is not flagged)."""
    if "stable" not in df.columns or df.empty:
        return np.zeros(len(df), dtype=bool)
    return (df["stable"].astype("boolean") == False).fillna(False).to_numpy(bool)  # noqa: E712


def row_spread(df: pd.DataFrame) -> np.ndarray:
    """*X* of every row: ``latency_round_spread_rel`` where it is a finite number >= 0, else
    ``latency_ci_rel`` (same rule), else NaN (see the module docstring)."""
    rounds, ci = _col(df, "latency_round_spread_rel"), _col(df, "latency_ci_rel")
    ok = lambda x: np.isfinite(x) & (x >= 0)  # noqa: E731
    return np.where(ok(rounds), rounds, np.where(ok(ci), ci, np.nan))


def flag_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with :data:`FLAG_COLUMNS` for measured rows: ``timing_unstable`` (``stable`` is
    False), ``timing_spread_rel`` (*X*, NaN for rows not flagged) and ``background_load``
    (*N*, as measured; NaN when not recorded)."""
    bad = not_stable(df)
    return df.assign(timing_unstable=bad,
                     timing_spread_rel=np.where(bad, row_spread(df), np.nan),
                     background_load=_col(df, "background_load"))


def latency_sigma(ci_rel: np.ndarray, unstable: np.ndarray, spread_rel: np.ndarray) -> np.ndarray:
    """Sigma of the relative latency error of each option in Monte Carlo: ``ci / 1.96`` (stable
    rows, as before; 0 without a CI), and for flagged rows with a measured *X* ``X / 1.2816``
    (the larger of the two)."""
    ci = np.asarray(ci_rel, dtype=float)
    sig = np.where(np.isfinite(ci) & (ci > 0), ci / Z95, 0.0)
    x = np.asarray(spread_rel, dtype=float)
    wide = np.asarray(unstable, dtype=bool) & np.isfinite(x) & (x > 0)
    return np.where(wide, np.maximum(sig, np.where(wide, x, 0.0) / Z90), sig)


def _cores(n: float) -> str:
    return f"background load {n:.1f} cores" if math.isfinite(n) else "background load not recorded"


def busy_sentence(load: float, spread: float, subject: str = "the cost", *,
                  up_to: bool = False) -> str:
    """The one statement: ``"Timings were taken on a busy machine (background load 1.6
    cores); the cost could be 12% off."`` -- *N* to one decimal, *X* rounded UP to a whole
    percent (at least 1%); an unknown *X* says it was not measured. ``up_to``: "could be up to
    12% off" (the largest of several rows)."""
    load = float(load) if load is not None else math.nan
    spread = float(spread) if spread is not None else math.nan
    if math.isfinite(spread):
        tail = f"{subject} could be {'up to ' if up_to else ''}{spread_pct(spread)} off."
    else:
        tail = f"how far {subject} could be off was not measured (no timing spread stored)."
    return f"Timings were taken on a busy machine ({_cores(load)}); {tail}"


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def is_flagged(v: Any) -> bool:
    """A ``timing_unstable`` value read back from anywhere (bool, numpy bool, "True" in a CSV)."""
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1")
    try:
        return bool(v) and not (isinstance(v, float) and math.isnan(v))
    except (TypeError, ValueError):
        return False


def _get(row: Any, key: str, default: Any = None) -> Any:
    if hasattr(row, "get"):
        return row.get(key, default)
    return getattr(row, key, default)


def option_note(row: Any) -> str:
    """The statement for one option (a summary / ranking row, or a dict), "" when it is not
    flagged."""
    if row is None or not is_flagged(_get(row, "timing_unstable", False)):
        return ""
    return busy_sentence(_num(_get(row, "background_load")), _num(_get(row, "timing_spread_rel")))


def option_notes(frame: pd.DataFrame) -> np.ndarray:
    """:func:`option_note` of every row of a frame with :data:`FLAG_COLUMNS` ("" without them)."""
    if frame.empty or "timing_unstable" not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    bad = frame["timing_unstable"].map(is_flagged).to_numpy(bool)
    n, x = _col(frame, "background_load"), _col(frame, "timing_spread_rel")
    return np.array([busy_sentence(n[i], x[i]) if bad[i] else "" for i in range(len(frame))],
                    dtype=object)


def headline_note(choice: Any, baseline: Any = None, baseline_name: str | None = None) -> str:
    """The statement under a headline: the chosen option's, then the baseline option's when the
    baseline is another option (its cost makes the savings): "Timings of the baseline X were
    taken on a busy machine (...); its cost, and so the savings, could be 9% off." "" when
    neither is flagged."""
    parts = [option_note(choice)]
    same = choice is not None and baseline is not None and all(
        str(_get(choice, k, "")) == str(_get(baseline, k, "")) for k in ("candidate", "hardware"))
    if baseline is not None and not same and is_flagged(_get(baseline, "timing_unstable", False)):
        name = baseline_name or str(_get(baseline, "candidate", ""))
        s = busy_sentence(_num(_get(baseline, "background_load")),
                          _num(_get(baseline, "timing_spread_rel")),
                          subject="its cost, and so the savings,")
        parts.append(s.replace("Timings", f"Timings of the baseline {name}", 1))
    return " ".join(p for p in parts if p)


def worst(values: Iterable[Any]) -> tuple[float, float]:
    """(largest *N*, largest *X*) over flagged rows given as ``(load, spread)`` pairs (NaN
    when none is known)."""
    n = x = math.nan
    for load, spread in values:
        if math.isfinite(_num(load)):
            n = _num(load) if not math.isfinite(n) else max(n, _num(load))
        if math.isfinite(_num(spread)):
            x = _num(spread) if not math.isfinite(x) else max(x, _num(spread))
    return n, x
