"""The range of a saving: P10-P90 of the DIFFERENCE between two options' first-quarter cost.

A saving is ``baseline cost - choice cost``. Its P10-P90 is not "baseline P10 - choice P90": the
two costs move together (the same traffic, growth and price draw raises both), so the range is
taken over the paired Monte Carlo draws the planner keeps (:attr:`effplan.planning.Plan.draws`):
``saving_s = baseline_s - choice_s`` for every sample ``s``, then numpy's linear P10 and P90 of
those differences -- the percentile rule of every other band in a plan. numpy only.

A plan without draws (``samples=0``, a generation plan, a plan read back from CSV) has no range:
NaN, never a guess.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["savings_band"]


def _row(draws: dict[str, Any], option: tuple[str, str]) -> np.ndarray | None:
    opts = draws.get("options") or []
    key = (str(option[0]), str(option[1]))
    try:
        i = opts.index(key)
    except ValueError:
        return None
    x = draws["first_quarter_cost_usd"][i]
    return None if not np.isfinite(x).all() else x


def savings_band(plan: Any, choice: tuple[str, str], baseline: tuple[str, str]
                 ) -> tuple[float, float]:
    """(P10, P90) of ``baseline - choice`` first-quarter cost over the plan's paired draws, USD
    (positive = a saving); (NaN, NaN) when the plan holds no draws for both options."""
    nan = (math.nan, math.nan)
    draws = getattr(plan, "draws", None) or {}
    if "first_quarter_cost_usd" not in draws or draws["first_quarter_cost_usd"] is None:
        return nan
    a, b = _row(draws, baseline), _row(draws, choice)
    if a is None or b is None:
        return nan
    lo, hi = np.percentile(a - b, (10, 90))
    return float(lo), float(hi)
