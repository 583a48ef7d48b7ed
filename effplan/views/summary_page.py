"""The one-page summary a manager forwards: the answer, what it assumes, the ranked options, the
cost over time, the quality bars and where each figure came from -- as one self-contained HTML
page (no script, no remote file: it reads offline and prints to ONE page) and as a PDF printed
from it by headless Chromium (Playwright; offline).

* :func:`summary_html` -- the page, from a :class:`~effplan.planning.Plan` (and the ranking /
  headline the caller already holds, e.g. the dashboard's);
* :func:`write_pdf` -- print an HTML page to a one-page PDF (A4 portrait, backgrounds kept);
* :func:`write_summary` -- both files, ``summary.html`` and ``summary.pdf`` (``make report``).

The numbers are the plan's own (:func:`effplan.planning.rank_options` and
:func:`~effplan.planning.headline`); nothing is recomputed here. Money is formatted for people
(:mod:`effplan.formatting`: 3 significant figures, ``$``, thousands separators).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..formatting import sig, usd
from ..safe import html_text

__all__ = ["summary_html", "write_pdf", "write_summary", "cost_chart_svg", "nice_ticks",
           "CHROMIUM"]

#: Debian's Chromium (the browser tests use it too); $EFFPLAN_CHROMIUM overrides it
CHROMIUM = os.environ.get("EFFPLAN_CHROMIUM", "/usr/bin/chromium")
#: rows of the ranked table on the page (the rest: "N more in the CSV")
TOP_ROWS = 6
_CSS = """
@page { size: A4; margin: 12mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10.5px; color: #111; margin: 0; }
.page { max-width: 190mm; margin: 0 auto; }
h1 { font-size: 15px; margin: 0 0 2px 0; }
.when { color: #555; font-size: 9.5px; margin-bottom: 8px; }
.answer { border: 1px solid #c9d7e8; background: #f5f9ff; border-radius: 5px; padding: 7px 10px; }
.answer .main { font-size: 14px; line-height: 1.35; }
.answer .assume { color: #333; margin-top: 4px; }
.note { color: #5c3d00; background: #fff4d6; border-left: 3px solid #e0a800; padding: 2px 6px;
        margin-top: 4px; }
h2 { font-size: 11.5px; margin: 10px 0 3px 0; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
td, th { padding: 2px 4px; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap;
         vertical-align: top; }
td.w, th.w { white-space: normal; overflow-wrap: anywhere; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; }
td.w { white-space: normal; }
tr.choice td { background: #fff3e0; font-weight: 600; }
tr.base td { background: #f2f2f2; }
.muted { color: #555; }
ul { margin: 2px 0 0 16px; padding: 0; }
li { margin: 1px 0; }
"""


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]`` (1, 2, 2.5, 5 x 10^k steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0 if math.isfinite(lo) else 1.0
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    out, v = [], start
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    if out[-1] < hi:
        out.append(round(v, 10))
    return out


def cost_chart_svg(quarterly: pd.DataFrame, options: Sequence[tuple[str, str, str]], *,
                   width: int = 700, height: int = 170) -> str:
    """A line chart (inline SVG) of the cost per quarter of ``options`` ((candidate, hardware,
    label) each), with the first option's P10-P90 band when the plan has one. Axis labels are
    money in people's format; quarters are labelled by their calendar label when there is one."""
    colors = ("#e65100", "#777777", "#1f77b4", "#2ca02c")
    label_col = "quarter_label" if "quarter_label" in quarterly.columns else "quarter"
    series = []
    for k, (cand, hw, label) in enumerate(options):
        q = quarterly[(quarterly["candidate"].astype(str) == cand)
                      & (quarterly["hardware"].astype(str) == hw)].sort_values("quarter")
        if q.empty or q["cost_usd"].isna().all():
            continue
        series.append((label, colors[k % len(colors)], q))
    if not series:
        return '<p class="muted">No option has a cost to chart.</p>'
    labels = [str(x) if label_col == "quarter_label" else f"Q{int(x)}"
              for x in series[0][2][label_col]]
    vals = np.concatenate([pd.to_numeric(q["cost_usd"], errors="coerce").to_numpy(float)
                           for _l, _c, q in series])
    band = None
    q0 = series[0][2]
    if {"cost_usd_p10", "cost_usd_p90"} <= set(q0.columns) and q0["cost_usd_p10"].notna().all():
        band = (q0["cost_usd_p10"].to_numpy(float), q0["cost_usd_p90"].to_numpy(float))
        vals = np.concatenate([vals, band[0], band[1]])
    ticks = nice_ticks(0.0, float(np.nanmax(vals)))
    top = ticks[-1] or 1.0
    left, right, top_pad, bottom = 62, 200, 8, 22
    pw, ph = width - left - right, height - top_pad - bottom
    n = len(labels)

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / n)

    def y(v: float) -> float:
        return top_pad + ph * (1 - v / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-size="10" font-family="DejaVu Sans, Arial">']
    for t in ticks:   # gridlines and money labels, never overlapping: 4-6 round values
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
                     'stroke="#e4e4e4"/>')
        parts.append(f'<text x="{left - 4}" y="{y(t) + 3:.1f}" text-anchor="end" fill="#444">'
                     f"{html_text(usd(t))}</text>")
    step = max(1, math.ceil(n / 8))
    for i, lab in enumerate(labels):
        if i % step == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{height - 6}" text-anchor="middle" '
                         f'fill="#444">{html_text(lab)}</text>')
    if band is not None:
        pts = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(band[1])]
        pts += [f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(band[0])))]
        parts.append(f'<polygon points="{" ".join(pts)}" fill="{series[0][1]}" fill-opacity="0.15" '
                     'class="effplan-band"/>')
    for k, (label, color, q) in enumerate(series):
        v = pd.to_numeric(q["cost_usd"], errors="coerce").to_numpy(float)
        pts = " ".join(f"{x(i):.1f},{y(c):.1f}" for i, c in enumerate(v) if math.isfinite(c))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2" '
                     f'data-option="{html_text(label)}"/>')
        parts.append(f'<text x="{left + pw + 8}" y="{top_pad + 12 + 14 * k}" fill="{color}">'
                     f"{html_text(label if len(label) <= 34 else label[:33] + '…')}</text>")
    if band is not None:
        parts.append(f'<text x="{left + pw + 8}" y="{top_pad + 12 + 14 * len(series)}" '
                     f'fill="#777">shaded: P10–P90</text>')
    parts.append("</svg>")
    return "".join(parts)


def _ranked_rows(r: pd.DataFrame, h: Any) -> str:
    quarter = html_text(str(r.attrs.get("quarter") or "Q1"))
    cols = ("<colgroup><col style='width:3%'><col style='width:18%'><col style='width:9%'>"
            "<col style='width:16%'><col style='width:14%'><col style='width:8%'>"
            "<col style='width:22%'><col style='width:10%'></colgroup>")
    head = (cols + "<tr><th class='l'>#</th><th class='l'>option</th>"
            f"<th class='w'>{quarter} cost</th><th>P10–P90</th><th class='w'>vs baseline</th>"
            "<th class='l w'>meets targets</th><th class='l w'>price from</th>"
            "<th class='l'>timing</th></tr>")
    rows = []
    for _i, row in r.head(TOP_ROWS).iterrows():
        choice = bool(h is not None and h.found and row["candidate"] == h.candidate
                      and row["hardware"] == h.hardware)
        cls = "choice" if choice else "base" if bool(row.get("is_baseline")) else ""
        vs = ("baseline" if bool(row.get("is_baseline")) else
              f"{usd(row['vs_baseline_usd'])} ({float(row['vs_baseline_rel']):+.0%})"
              if _finite(row.get("vs_baseline_usd")) else "–")
        band = (f"{usd(row['quarter_cost_usd_p10'])}–{usd(row['quarter_cost_usd_p90'])}"
                if _finite(row.get("quarter_cost_usd_p10")) else "–")
        price = str(row.get("price_source", "") or "")
        comp = str(row.get("comparable_instance", "") or "")
        short = price.split(" (")[0] if price.startswith("catalog estimate") else price
        price_cell = (f"<span title='{html_text(price)}'>"
                      + html_text(short if len(short) <= 52 else short[:51] + "…") + "</span>"
                      + (f"<br><span class='muted'>comparable: {html_text(comp)}</span>"
                         if comp else ""))
        timing = html_text(str(row.get("provenance", "")))
        if str(row.get("stability_note", "") or ""):
            timing += " ⚠ busy"
        meets = "yes" if bool(row["meets_targets"]) else f"no: {html_text(str(row['why_not']))}"
        rows.append(f"<tr class='{cls}'><td class='l'>{int(row['rank'])}</td>"
                    f"<td class='l w'>{html_text(str(row['candidate']))} @ "
                    f"{html_text(str(row['hardware']))}</td><td>{usd(row['quarter_cost_usd'])}</td>"
                    f"<td class='w'>{band}</td><td class='w'>{vs}</td><td class='l w'>{meets}</td>"
                    f"<td class='l w'>{price_cell}</td><td class='l'>{timing}</td></tr>")
    more = (f"<p class='muted'>{len(r) - TOP_ROWS} more option(s): every option is in the CSV "
            "download / the report.</p>" if len(r) > TOP_ROWS else "")
    return f"<table>{head}{''.join(rows)}</table>{more}"


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _quality_bars(h: Any, r: pd.DataFrame, bars: Mapping[str, str] | None) -> str:
    items = []
    for name, text in (bars or {}).items():
        items.append(f"<li><b>{html_text(str(name))}</b>: {html_text(str(text))}</li>")
    if h is not None and h.min_quality:
        op = "≥" if h.quality_higher_is_better else "≤"
        met = int(r["meets_targets"].sum())
        items.append(f"<li><b>{html_text(h.quality_label)} {op} {h.min_quality:g}</b>: "
                     f"{met} of {len(r)} option(s) meet every target</li>")
    if h is not None and h.found and _finite(h.quality):
        items.append(f"<li>the answer's {html_text(h.quality_label)}: {sig(h.quality)}"
                     + ("" if h.quality_higher_is_better else " (lower is better)") + "</li>")
    if not items:
        items.append("<li>no quality bar set: every option that meets the latency target "
                     "counts</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _sources(plan: Any, r: pd.DataFrame, h: Any) -> str:
    inputs = getattr(plan, "inputs", {}) or {}
    prices = inputs.get("prices") or {}
    timing = sorted({str(x) for x in r.get("provenance", pd.Series(dtype=str)) if str(x)})
    energy = sorted({str(x) for x in r.get("energy_source", pd.Series(dtype=str)) if str(x)})
    price = list(dict.fromkeys(str(x) for x in r.head(TOP_ROWS).get(
        "price_source", pd.Series(dtype=str)) if str(x)))
    items = [
        f"<li><b>timing</b>: {html_text(', '.join(timing) or 'unknown')} (measured = timed on "
        "the machine named; projected = roofline estimate for hardware not owned)</li>",
        f"<li><b>prices</b>: {html_text('; '.join(price) or 'unknown')}</li>",
        f"<li><b>energy</b>: {html_text(', '.join(energy) or 'unknown')} (estimated-tdp = from "
        "rated power, not metered); grid: "
        f"{html_text(str(prices.get('resolved_grid_source', '')))}; PUE "
        f"{html_text(str(prices.get('pue', '')))}</li>",
        f"<li><b>ranges</b>: P10–P90 of {int(inputs.get('samples') or 0)} Monte Carlo draws "
        f"(seed {inputs.get('seed', 0)}); the saving's range from the same paired draws</li>",
    ]
    return "<ul>" + "".join(items) + "</ul>"


def summary_html(plan: Any, *, baseline: str | None = None, min_quality: float | None = None,
                 ranking: pd.DataFrame | None = None, headline: Any = None,
                 traffic_note: str = "", quality_bars: Mapping[str, str] | None = None,
                 title: str = "What will it cost next quarter?",
                 generated: _dt.datetime | None = None) -> str:
    """The one-page summary as a standalone HTML document (see the module docstring)."""
    from ..planning.frames import headline as _headline
    from ..planning.frames import rank_options

    r = ranking if ranking is not None else rank_options(plan, baseline=baseline,
                                                         min_quality=min_quality)
    h = headline if headline is not None else _headline(plan, ranking=r, min_quality=min_quality,
                                                        traffic_note=traffic_note)
    when = (generated or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    if h.found:
        main = html_text(h.sentence().replace(" " + h.stability_note, "") if h.stability_note
                           else h.sentence())
        assume = html_text(h.assumptions())
        notes = "".join(f"<div class='note'>⚠ {html_text(n)}</div>" for n in h.notes())
    else:
        main, assume, notes = html_text(h.message), "", ""
    options, where = [], ""
    if h.found:
        same_hw = not h.baseline or str(h.baseline_hardware) == h.hardware
        at = (lambda hw: "") if same_hw else (lambda hw: f" @ {hw}")
        where = f" (on {h.hardware})" if same_hw else ""
        options.append((h.candidate, h.hardware, f"{h.candidate}{at(h.hardware)}"))
        if h.baseline and not h.keep_baseline:
            options.append((h.baseline, str(h.baseline_hardware),
                            f"baseline {h.baseline}{at(h.baseline_hardware)}"))
    chart = cost_chart_svg(plan.quarterly, options)
    from .. import __version__

    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html_text(title)}</title><style>{_CSS}</style></head><body>"
        "<div class='page effplan-summary'>"
        f"<h1>{html_text(title)}</h1><div class='when'>effplan {html_text(__version__)}, "
        f"{when}. Options are alternatives: their costs are never added up.</div>"
        f"<div class='answer'><div class='main effplan-summary-answer'>{main}</div>"
        f"<div class='assume effplan-summary-assumptions'>{assume}</div>{notes}</div>"
        f"<h2>Every option, ranked</h2>{_ranked_rows(r, h)}"
        f"<h2>Cost over time, per quarter{html_text(where)}</h2>{chart}"
        f"<h2>Quality bars</h2>{_quality_bars(h, r, quality_bars)}"
        f"<h2>Where each figure came from</h2>{_sources(plan, r, h)}"
        "</div></body></html>\n")


def write_pdf(html_path: str | os.PathLike, pdf_path: str | os.PathLike, *,
              chromium: str | None = None) -> Path:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium (Playwright, offline: the page
    loads nothing from the network). Raises :class:`~effplan.errors.EffplanError` saying what to
    install when Playwright or Chromium is missing."""
    from ..errors import EffplanError

    exe = chromium or CHROMIUM
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the dev extra has it
        raise EffplanError(f"the PDF needs Playwright (pip install playwright): {exc}") from None
    if not Path(exe).exists():
        raise EffplanError(f"the PDF needs Chromium at {exe} (apt-get install chromium, or set "
                           "EFFPLAN_CHROMIUM); the HTML summary prints to one page from any browser")
    src = Path(html_path).resolve()
    dest = Path(pdf_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.goto(src.as_uri())
            page.pdf(path=str(dest), format="A4", print_background=True,
                     prefer_css_page_size=True)
        finally:
            browser.close()
    return dest


def write_summary(plan: Any, out_dir: str | os.PathLike, *, stem: str = "summary",
                  pdf: bool = True, **kwargs: Any) -> tuple[Path, Path | None]:
    """``<stem>.html`` (and ``<stem>.pdf`` when ``pdf``) in ``out_dir``; ``kwargs`` go to
    :func:`summary_html`. Returns the paths (PDF None when not asked for)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = out / f"{stem}.html"
    page.write_text(summary_html(plan, **kwargs), encoding="utf-8")
    return page, (write_pdf(page, out / f"{stem}.pdf") if pdf else None)
