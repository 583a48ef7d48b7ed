"""Compute-card renderings beside the Markdown: Hugging Face metadata and a page-fitting HTML.

* :func:`hf_metadata` -- the YAML front matter of a Hugging Face model card
  (``co2_eq_emissions`` in grams with its source, region and hardware; ``model-index`` with
  the quality metrics per condition), written as JSON-style scalars (valid YAML, no YAML
  library needed).
* :func:`render_html` -- the card's Markdown as one self-contained HTML page that fits the
  window: text wraps, wide tables scroll inside their own box, nothing runs off the page.
  Every piece of text goes through :func:`escape`, i.e. the one escaping helper
  :func:`effplan.safe.html_text`.
* :func:`extra_sections` -- the Markdown sections for CO2, what was evaluated, verdicts against
  the baseline, intended use and limitations, and inputs not used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..safe import html_text

__all__ = ["escape", "hf_metadata", "render_html", "extra_sections"]


def escape(text: Any) -> str:
    """HTML-escape ``text`` (quotes included) through the one escaping helper,
    :func:`effplan.safe.html_text`."""
    return html_text(text)


def _y(v: Any) -> str:
    """A YAML scalar: JSON's spelling (strings quoted, null, numbers) is valid YAML. ``<``, ``>``
    and ``&`` are written as ``\\u`` escapes (the same text to a YAML reader), so that no
    Markdown renderer that shows the front matter can meet markup in it."""
    return json.dumps(v).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def hf_metadata(data: Mapping[str, Any]) -> str:
    """The ``---``-fenced YAML front matter (module docstring)."""
    lines = ["---", "library_name: pytorch", "tags:", "  - effplan", "  - compute-card"]
    co2 = data.get("carbon") or {}
    serving = (co2.get("serving") or {}).get("value")
    train = [t["value"] for t in co2.get("training") or [] if t.get("value") is not None]
    if train or serving is not None:
        lines.append("co2_eq_emissions:")
        if train:
            lines += [f"  emissions: {_y(round(sum(train) * 1000, 6))}",
                      f"  source: {_y('effplan plan: training CO2 over the plan horizon (projected)')}",
                      f"  training_type: {_y('pre-training')}"]
        else:
            lines += ["  emissions: null",
                      f"  source: {_y(f'training CO2 not known (no training plan); serving: {serving:.4g} g per 1,000 requests')}"]
        lines += [f"  geographical_location: {_y(co2.get('grid_region') or 'unknown')}",
                  f"  hardware_used: {_y((data.get('operating_point') or {}).get('hardware') or 'unknown')}"]
    quality = [q for q in data.get("quality") or [] if q.get("value") is not None]
    if quality:
        lines += ["model-index:", f"  - name: {_y(data['candidate'])}", "    results:", "      - task:",
                  f"          type: {_y('classification')}", "        dataset:",
                  f"          name: {_y(((data.get('evaluated') or {}).get('description')) or 'held-out data')}",
                  f"          type: {_y('custom')}", "        metrics:"]
        for q in quality:
            lines += [f"          - type: {_y(q['metric'])}", f"            value: {_y(q['value'])}",
                      f"            name: {_y(q['metric'] + ' (' + q['condition'] + ')')}"]
    lines.append("---")
    return "\n".join(lines)


def _f(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def extra_sections(data: Mapping[str, Any]) -> list[str]:
    """Markdown: intended use and limitations, CO2, what was evaluated, verdicts, inputs not used."""
    out: list[str] = []
    notes = data.get("not_used") or []
    if notes:
        out += ["## Inputs not used", ""] + [f"- **Not used:** {n}" for n in notes] + [""]
    out += ["## Intended use", "", data.get("intended_use") or "*Not filled in by the author.*", "",
            "## Limitations", "", data.get("limitations") or "*Not filled in by the author.*", ""]
    co2 = data.get("carbon") or {}
    if co2:
        g = co2.get("grid_gco2_per_kwh")
        out += ["## CO2", "", f"Grid region **{co2.get('grid_region') or 'unknown'}**, intensity "
                f"**{_f(g)} gCO2/kWh** ({co2.get('grid_source') or 'n/a'}).", "",
                "| figure | value | unit | provenance | source |", "|---|---|---|---|---|"]
        s = co2.get("serving") or {}
        out.append(f"| serving | {_f(s.get('value'))} | {s.get('unit', '')} | {s.get('provenance', '')} | "
                   f"{s.get('source', '')} |")
        for t in co2.get("training") or []:
            out.append(f"| training on {t['hardware']} | {_f(t.get('value'))} | {t['unit']} | {t['provenance']} | "
                       f"{t['source']} |")
        out.append("")
        if co2.get("training_note"):
            out += [co2["training_note"] + ".", ""]
    ev = data.get("evaluated") or {}
    if ev:
        out += ["## What was evaluated", "", f"Data: {ev.get('description') or '*no description given*'} "
                f"({_f(ev.get('rows'))} rows, SHA-256 `{ev.get('sha256') or 'n/a'}`).", ""]
        for cond, what in (ev.get("conditions") or {}).items():
            out.append(f"- `{cond}`: {what}")
        out.append("")
    verdicts = data.get("verdicts") or []
    if verdicts:
        out += [f"## Against the baseline ({data.get('verdict_baseline')})", "",
                "| metric | condition | value | baseline | change | verdict | test |", "|---|---|---|---|---|---|---|"]
        out += [f"| {v['metric']} | {v['condition']} | {_f(v['value'])} | {_f(v['baseline_value'])} | "
                f"{_f(v['change'])} | {v['verdict']} | {v['test']} |" for v in verdicts] + [""]
    return out


_CSS = ("body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:60rem;"
        "padding:1rem;line-height:1.45;color:#1b1b1b;overflow-wrap:break-word}"
        ".tbl{overflow-x:auto;max-width:100%;margin:0 0 1rem}"
        "table{border-collapse:collapse;font-size:0.9em}th,td{border:1px solid #ccd;padding:3px 6px;"
        "text-align:left;vertical-align:top;overflow-wrap:normal}th{background:#eef2f8}"
        "pre{white-space:pre-wrap;background:#f6f6f6;padding:0.5rem;max-width:100%;overflow-x:auto}"
        "code{background:#f3f3f3;word-break:break-all}h1{font-size:1.6em}h2{font-size:1.2em;"
        "border-bottom:1px solid #dde;padding-bottom:2px}")


def _inline(text: str) -> str:
    """Escape, then the Markdown inline forms the card uses: **bold**, *italic*, `code`."""
    t = escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
    return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", t)


def render_html(markdown: str, title: str) -> str:
    """The card's Markdown (as :func:`effplan.cards.render_markdown` writes it) as an HTML page."""
    body: list[str] = []
    lines = markdown.split("\n")
    i = 0
    if lines and lines[0] == "---" and "---" in lines[1:]:   # the YAML metadata: folded, as code
        end = lines.index("---", 1)
        body.append("<details><summary>Hugging Face metadata (YAML)</summary><pre>"
                    + escape("\n".join(lines[1:end])) + "</pre></details>")
        i = end + 1
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            body.append("<pre>" + escape("\n".join(lines[i + 1:j])) + "</pre>")
            i = j + 1
            continue
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split(" | ")])
                i += 1
            head, rest = rows[0], [r for r in rows[1:] if not re.fullmatch(r"[-|]+", "".join(r))]
            body.append('<div class="tbl"><table><tr>' + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rest)
                        + "</table></div>")
            continue
        if line.startswith("# "):
            body.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            body.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
