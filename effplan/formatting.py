"""Numbers for people: 3 significant figures, thousands separators, money as $, energy in kWh
or MWh. One home for the formats the CLI, the notebooks' tables and the dashboard share.

* :func:`sig` -- ``743.695971 -> "744"``, ``11720270.0 -> "11,700,000"``, ``0.0002345 -> "0.000235"``;
* :func:`usd` -- ``"$11,700,000"``, ``"-$1.23"``; :func:`kwh` -- ``"744 kWh"`` or ``"11.7 MWh"``;
* :func:`styled` -- a pandas ``Styler`` applying them by column name (``*_usd`` / ``cost*`` money,
  ``*_kwh`` energy, ``*_pct`` per cent), index hidden;
* :func:`text_table` -- a plain-text table that fits a terminal width, dropping the columns
  listed last first (and saying which it dropped).

Missing values (NaN, None) print as an en dash, never as 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["SUMMARY_COLUMNS", "sig", "si", "usd", "kwh", "pct", "spread_pct", "column_formatter", "format_frame", "styled", "text_table",
           "MISSING"]

MISSING = "–"

#: the columns of a plan summary a person reads first, most important first (the CLI's default
#: table and the notebooks' summary; every cost comes with where its price came from, every
#: energy figure with its source)
SUMMARY_COLUMNS = ["candidate", "hardware", "cost_usd", "cost_usd_p10", "cost_usd_p90",
                   "price_source", "energy_kwh", "energy_source", "provenance", "instances_max",
                   "co2_kg", "latency_p95_ms", "batch_size", "cost_per_1k_requests_usd",
                   "quality", "infeasible_reason"]



def yes_no(v: Any) -> str:
    """A boolean cell for people: "yes" / "no", "" where unknown (``pd.NA``, None, NaN)."""
    if v is None or (isinstance(v, float) and v != v):
        return ""
    try:
        return "yes" if v else "no"
    except TypeError:       # pd.NA: its truth is unknown
        return ""

def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _round_sig(x: float, n: int) -> tuple[float, int]:
    """x rounded to n significant figures and the decimals needed to print them."""
    if x == 0:
        return 0.0, 0
    mag = int(math.floor(math.log10(abs(x))))
    dec = n - 1 - mag
    r = round(x, dec)
    if r != 0 and int(math.floor(math.log10(abs(r)))) > mag:  # 999.6 -> 1000: one digit fewer
        dec -= 1
    return r, max(0, dec)


def sig(v: Any, n: int = 3) -> str:
    """``v`` to ``n`` significant figures with thousands separators (an integer of more digits is
    rounded: 11,720,270 -> 11,700,000). Text is returned as is; NaN/None -> en dash."""
    f = _num(v)
    if f is None:
        return MISSING if v is None or isinstance(v, (float, int)) or _is_nan(v) else str(v)
    r, dec = _round_sig(f, n)
    return f"{r:,.{dec}f}"


def _is_nan(v: Any) -> bool:
    try:
        return v != v  # noqa: PLR0124
    except Exception:  # noqa: BLE001 - arrays and odd objects are not NaN
        return False


def usd(v: Any, n: int = 3) -> str:
    """Money: ``$`` + :func:`sig`; negative as ``-$12.3``."""
    f = _num(v)
    if f is None:
        return sig(v, n)
    s = sig(abs(f), n)
    return f"-${s}" if f < 0 else f"${s}"


def kwh(v: Any, n: int = 3) -> str:
    """Energy given in kWh: ``744 kWh`` below 1,000 kWh, else ``11.7 MWh``."""
    f = _num(v)
    if f is None:
        return sig(v, n)
    if abs(f) >= 1000:
        return f"{sig(f / 1000, n)} MWh"
    return f"{sig(f, n)} kWh"


def wh(v: Any, n: int = 3) -> str:
    """Small energies given in Wh with a readable prefix: 3.18e-5 -> ``31.8 µWh``, 0.0021 ->
    ``2.10 mWh``, 5.2 -> ``5.20 Wh``, 1200 -> ``1.20 kWh``."""
    f = _num(v)
    if f is None:
        return sig(v, n)
    for scale, unit in ((1e3, "kWh"), (1.0, "Wh"), (1e-3, "mWh")):
        if abs(f) >= scale:
            return f"{sig(f / scale, n)} {unit}"
    return f"{sig(f / 1e-6, n)} µWh"


def pct(v: Any, n: int = 3) -> str:
    """A fraction as per cent: 0.253 -> ``25.3%``."""
    f = _num(v)
    if f is None:
        return sig(v, n)
    return f"{sig(100 * f, n)}%"


def spread_pct(v: Any) -> str:
    """How far a figure timed on a busy machine could be off (``timing_spread_rel``, a
    fraction), as the busy-machine statement writes it: a whole percent rounded UP, at least 1%
    (a flagged figure is never said to be 0% off): 0.1203 -> ``13%``; "?" when not measured."""
    f = _num(v)
    if f is None:
        return "?"
    return f"{max(1, int(math.ceil(100.0 * f - 1e-9)))}%"


def si(v: Any, n: int = 3) -> str:
    """Large counts with an SI prefix: 6.7e13 -> ``67.0 T``, 2.5e9 -> ``2.50 G``."""
    f = _num(v)
    if f is None:
        return sig(v, n)
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(f) >= scale:
            return f"{sig(f / scale, n)} {prefix}"
    return sig(f, n)


def column_formatter(name: str) -> Callable[[Any], str] | None:
    """The formatter for a column, from its name (units live in names, see the schema)."""
    low = name.lower()
    if "flops" in low or low.endswith("_bytes") or low.endswith("items") \
            or low in ("requests", "items"):
        return si
    if low.endswith("_pct") or low.startswith("savings_pct") or low.endswith("(%)"):
        return pct
    if low == "timing_spread_rel":
        return lambda v: MISSING if _num(v) is None else f"±{spread_pct(v)}"
    if low.endswith("_rel"):   # a fraction (vs_baseline_rel -0.75): shown as per cent
        return pct
    if low.endswith("_usd") or "_usd_" in low or low.startswith(("cost", "savings_usd")) \
            or low in ("total", "inference", "training", "p10", "p90", "vs baseline") \
            or (low.startswith("q") and low[1:].isdigit()):
        return usd
    if low.endswith("_kwh") or "_kwh_" in low:
        return kwh
    if low.endswith("_wh"):
        return wh
    if low in ("batch_size", "instances", "instances_max", "instances_first_month", "months",
               "month", "quarter", "n", "rank"):
        # a label such as month "2026-10" or quarter "2026-Q4" stays as written
        return lambda v: (v if isinstance(v, str) and _num(v) is None else
                          MISSING if _num(v) is None else f"{_num(v):,.0f}")
    return None


def format_frame(df: Any, columns: Sequence[str] | None = None) -> Any:
    """A copy of ``df`` with every known numeric column turned into text (see
    :func:`column_formatter`; other float columns get :func:`sig`)."""
    import pandas as pd

    out = df.copy()
    for c in (columns if columns is not None else out.columns):
        f = column_formatter(str(c))
        if f is None and pd.api.types.is_float_dtype(out[c]):
            f = sig
        if f is None and pd.api.types.is_bool_dtype(out[c]):
            f = yes_no
        if f is not None:
            out[c] = [f(v) for v in out[c]]
    return out


def styled(df: Any, caption: str | None = None) -> Any:
    """A pandas Styler: formats by column name (:func:`column_formatter`, else 3 s.f. for
    floats), index hidden, numbers right-aligned, no wrapping. Every cell, column header and the
    caption are HTML-escaped (:func:`effplan.safe.html_text`): names from data show as text."""
    import pandas as pd

    from .safe import html_text

    fmt: dict[str, Callable[[Any], str]] = {}
    for c in df.columns:
        f = column_formatter(str(c))
        if f is None and pd.api.types.is_float_dtype(df[c]):
            f = sig
        if f is None and pd.api.types.is_bool_dtype(df[c]):
            f = yes_no  # never a raw True/False
        # every cell is escaped AFTER formatting: a name from a results file is text, never markup
        fmt[c] = (lambda v, f=f: html_text(f(v))) if f is not None else html_text
    st = df.style.format(fmt, na_rep=MISSING).hide(axis="index")
    st = st.format_index(html_text, axis="columns")
    st = st.set_table_styles([
        {"selector": "td, th", "props": "padding: 2px 8px; white-space: nowrap;"},
        {"selector": "td", "props": "text-align: right;"},
        {"selector": "th", "props": "text-align: left;"},
    ])
    if caption:
        st = st.set_caption(html_text(caption))
    return st


def text_table(df: Any, width: int | None = None, *, keep: int = 2,
               headers: dict[str, str] | None = None, max_text: int = 20) -> str:
    """``df`` as formatted, aligned plain text no wider than ``width`` (default: the
    terminal's). Columns are dropped from the right, never the first ``keep``; a last line names
    the ones dropped (``--format wide`` shows everything). ``headers`` renames columns for
    display (after formatting by their real names); text longer than ``max_text`` is cut with an
    ellipsis."""
    import shutil

    import pandas as pd

    if width is None:
        width = shutil.get_terminal_size((120, 24)).columns
    text = format_frame(df)
    for c in text.columns:
        if not pd.api.types.is_numeric_dtype(text[c]):
            text[c] = [x if not isinstance(x, str) or len(x) <= max_text else x[:max_text - 1] + "…"
                       for x in text[c]]
    if headers:
        text = text.rename(columns=headers)
    cols = list(text.columns)
    dropped: list[str] = []

    def render(cs: list[str]) -> str:
        return text[cs].to_string(index=False)

    out = render(cols)
    while len(cols) > keep and max(len(x) for x in out.splitlines()) > width:
        dropped.insert(0, cols.pop())
        out = render(cols)
    if dropped:
        out += f"\n({len(dropped)} column(s) not shown for width: {', '.join(dropped)}; " \
               "--format wide shows all)"
    return out
