"""The line under a headline that says what the answer assumes: the traffic (and whether it is the
demo traffic), its growth, the peak, the utilisation planned, the latency target, where the price
came from and when, and the calendar months of the quarter costed ("2027-Q1 = Jan-Mar 2027").

:func:`assumption_line` reads only a :class:`~effplan.planning.frames.Headline` (which copies
these figures from the plan's inputs), so the CLI, the notebooks, the dashboard and the one-page
summary print the same words. :func:`headline_notes` are the statements kept under it: the
busy-machine note (:mod:`effplan.planning.stability`) and "memory NOT checked (no model facts)"
for imported generation rows. Plain text; callers escape it for HTML.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["assumption_line", "headline_notes", "quarter_span", "count_words"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CAL_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_BLOCK = re.compile(r"^(\d{4})-(\d{2})\.\.(\d{4})-(\d{2})$")


def quarter_span(label: str) -> str:
    """The months a quarter label covers: ``"2027-Q1"`` -> ``"Jan–Mar 2027"``,
    ``"2026-11..2027-01"`` -> ``"Nov 2026–Jan 2027"``; ``""`` for a relative label ("Q1")."""
    text = str(label or "").strip()
    hit = _CAL_QUARTER.match(text)
    if hit:
        y, q = int(hit.group(1)), int(hit.group(2))
        return f"{_MONTHS[3 * q - 3]}–{_MONTHS[3 * q - 1]} {y}"
    hit = _BLOCK.match(text)
    if hit:
        y0, m0, y1, m1 = (int(g) for g in hit.groups())
        if y0 == y1:
            return f"{_MONTHS[m0 - 1]}–{_MONTHS[m1 - 1]} {y0}"
        return f"{_MONTHS[m0 - 1]} {y0}–{_MONTHS[m1 - 1]} {y1}"
    return ""


def count_words(x: Any) -> str:
    """A large count for a sentence: 4e10 -> ``"40 billion"``, 1.905e11 -> ``"190.5 billion"``,
    2.5e6 -> ``"2.5 million"``, 12,345 -> ``"12,345"``; NaN -> ``"?"``."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return "?"
    if not math.isfinite(f):
        return "?"
    for scale, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if abs(f) >= scale:
            v = f / scale
            return f"{v:,.1f}".rstrip("0").rstrip(".") + f" {word}"
    return f"{f:,.0f}"


def _pct(x: Any) -> str:
    f = float(x)
    return f"{100 * f:.3g}%"


def assumption_line(h: Any) -> str:
    """One line of what the headline ``h`` assumes (see the module docstring)."""
    parts = []
    unit = "responses" if h.workload == "generation" else "requests"
    if _finite(h.requests_per_day):
        traffic = f"{count_words(h.requests_per_day)} {unit}/day"
        if h.start:
            traffic += f" in {h.start}"
        if h.traffic_note:
            traffic += f" ({h.traffic_note})"
        if _finite(h.monthly_growth):
            g = float(h.monthly_growth)
            traffic += (f", growing {_pct(g)}/month" if g > 0 else
                        ", flat" if g == 0 else f", shrinking {_pct(-g)}/month")
        parts.append(traffic)
    if h.workload == "generation" and _finite(h.prompt_tokens) and _finite(h.output_tokens):
        parts.append(f"{float(h.prompt_tokens):,.0f} tokens in, {float(h.output_tokens):,.0f} out")
    if _finite(h.peak_to_average) and float(h.peak_to_average) != 1.0:
        parts.append(f"peak {float(h.peak_to_average):g}× the average")
    if _finite(h.target_utilization):
        parts.append(f"{_pct(h.target_utilization)} utilisation")
    targets = []
    if h.slo_p95_ms:
        targets.append(f"p95 ≤ {h.slo_p95_ms:g} ms")
    if h.slo_ttft_p95_ms:
        targets.append(f"TTFT p95 ≤ {h.slo_ttft_p95_ms:g} ms")
    if h.slo_tpot_p95_ms:
        targets.append(f"TPOT p95 ≤ {h.slo_tpot_p95_ms:g} ms")
    parts.append(" and ".join(targets) if targets else "no latency target")
    line = ", ".join(parts)
    if h.price_source:
        line += f"; price: {h.price_source}"
        if h.price_comparable:
            line += f" (comparable: {h.price_comparable})"
    span = quarter_span(h.quarter)
    if span:
        line += f"; {h.quarter} = {span}"
    elif h.quarter:
        line += f"; {h.quarter} = the plan's first 3 months"
    return "Assumes " + line + "."


def headline_notes(h: Any) -> list[str]:
    """The statements kept under the assumption line: the busy-machine note and the memory note
    (each "" -> left out)."""
    out = []
    if h.stability_note:
        out.append(h.stability_note)
    if "memory not checked" in (h.message or ""):
        out.append("Memory NOT checked (no model facts): give the model's config to check that "
                   "the KV cache fits.")
    return out


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
