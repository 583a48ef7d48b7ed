"""Calendar labels of a plan: the month its month 0 falls in (``start="2026-10"``), month labels
"YYYY-MM" and calendar-quarter labels "2026-Q4". numpy/pandas only.

A plan's quarters are consecutive 3-month blocks from its start (Q1 = months 0-2). With a start
month, each plan month ``m`` is the calendar month ``start + m``:

* ``month_label``: ``"YYYY-MM"`` of that month;
* ``calendar_quarter``: the calendar quarter that month falls in (``"2026-Q4"`` for Oct-Dec);
* ``quarter_label``: the label of the plan's 3-month block -- the calendar quarter when the
  start is a quarter's first month (January, April, July or October), else the months it spans,
  ``"2026-11..2027-01"`` (the block is then not a calendar quarter, and its label never claims
  it is one).

Without a start the plan keeps its relative labels (month 0.., Q1..) and these columns are absent.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError

__all__ = ["parse_month", "month_number", "month_label", "month_labels", "calendar_quarter",
           "plan_quarter_labels", "add_calendar_columns", "CALENDAR_COLUMNS"]

_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")

#: columns added to the plan frames when the workload has a ``start`` month
CALENDAR_COLUMNS: dict[str, str] = {
    "month_label": "calendar month of the row, 'YYYY-MM' (workload start + month)",
    "calendar_quarter": "calendar quarter the month falls in, e.g. '2026-Q4'",
    "quarter_label": "label of the plan's 3-month block: the calendar quarter ('2026-Q4') when the "
                     "start is a quarter's first month, else the months it spans "
                     "('2026-11..2027-01')",
}


def parse_month(value: Any, field: str = "start", *, where: str | None = None) -> str:
    """A calendar month as ``"YYYY-MM"``: from ``"2026-10"`` (or ``"2026-1"``), a
    :class:`datetime.date` / ``datetime`` / ``pandas.Timestamp`` (its month). Anything else, or a
    month outside 1..12 or a year outside 1900..9999, raises :class:`ValidationError` naming
    ``field``."""
    if isinstance(value, (_dt.date, pd.Timestamp)) and not isinstance(value, bool):
        y, m = int(value.year), int(value.month)
    elif isinstance(value, str):
        hit = _MONTH.match(value)
        if not hit:
            raise ValidationError(field, f"expected a calendar month 'YYYY-MM' such as '2026-10', "
                                         f"got {value!r}", where=where)
        y, m = int(hit.group(1)), int(hit.group(2))
    else:
        raise ValidationError(field, f"expected a calendar month 'YYYY-MM' such as '2026-10', got "
                                     f"{type(value).__name__} {value!r}", where=where)
    if not 1 <= m <= 12:
        raise ValidationError(field, f"month {m} of {value!r} is not 1..12", where=where)
    if not 1900 <= y <= 9999:
        raise ValidationError(field, f"year {y} of {value!r} is not 1900..9999", where=where)
    return f"{y:04d}-{m:02d}"


def month_number(start: str) -> int:
    """``year * 12 + (month - 1)`` of a ``"YYYY-MM"`` month: consecutive months differ by 1."""
    y, m = parse_month(start).split("-")
    return int(y) * 12 + int(m) - 1


def month_label(number: int) -> str:
    """Inverse of :func:`month_number`."""
    return f"{int(number) // 12:04d}-{int(number) % 12 + 1:02d}"


def month_labels(start: str, months: Any) -> np.ndarray:
    """``"YYYY-MM"`` of plan months ``months`` (ints, 0 = ``start``)."""
    base = month_number(start)
    nums = base + np.asarray(months, dtype=int)
    return np.array([month_label(n) for n in nums.ravel()], dtype=object).reshape(nums.shape)


def calendar_quarter(number: int) -> str:
    """The calendar quarter, ``"2026-Q4"``, of a :func:`month_number`."""
    return f"{int(number) // 12:04d}-Q{(int(number) % 12) // 3 + 1}"


def plan_quarter_labels(start: str, quarters: Any) -> np.ndarray:
    """Labels of plan quarters ``quarters`` (1-based 3-month blocks from ``start``); see the
    module docstring."""
    base = month_number(start)
    q = np.asarray(quarters, dtype=int)
    aligned = base % 3 == 0
    out = []
    for k in q.ravel():
        first = base + 3 * (int(k) - 1)
        out.append(calendar_quarter(first) if aligned
                   else f"{month_label(first)}..{month_label(first + 2)}")
    return np.array(out, dtype=object).reshape(q.shape)


def add_calendar_columns(frame: pd.DataFrame | None, start: str | None) -> pd.DataFrame | None:
    """``frame`` with :data:`CALENDAR_COLUMNS` added from its ``month`` (monthly frames) and
    ``quarter`` (monthly and quarterly frames) columns; unchanged without a ``start``."""
    if frame is None or start is None:
        return frame
    out = frame.copy()
    if "month" in out.columns:
        m = pd.to_numeric(out["month"], errors="coerce").fillna(0).astype(int).to_numpy()
        nums = month_number(start) + m
        out["month_label"] = [month_label(n) for n in nums]
        out["calendar_quarter"] = [calendar_quarter(n) for n in nums]
    if "quarter" in out.columns:
        q = pd.to_numeric(out["quarter"], errors="coerce").fillna(1).astype(int).to_numpy()
        labels = {k: plan_quarter_labels(start, [k])[0] for k in np.unique(q)}
        out["quarter_label"] = [labels[k] for k in q]
    return out
