"""The what-if dashboard: ``BudgetDashboard(measurements, ...)`` answers "which candidate, on
which hardware, and what does it save".

One object, usable in JupyterLab, classic notebooks and Voila, built on ipywidgets 8::

    from effplan.widgets import BudgetDashboard
    dash = BudgetDashboard(measurements)   # demo traffic and effplan.defaults when not given
    dash                                   # last value of a cell: shows the dashboard

What it shows, top to bottom
----------------------------
* **The headline** (``dash.headline``, :class:`effplan.planning.Headline`): ONE choice -- the
  cheapest candidate x hardware that meets the p95 latency target and, when set, the minimum
  quality -- with its cost for the next quarter (P10-P90 with Monte Carlo) and its savings
  against the candidate tagged ``baseline``, in dollars and per cent. Markup:
  ``<div class="effplan-headline" data-quarter-cost-usd=... data-savings-usd=...>``.
* **Every option ranked** (``dash.ranking``, :func:`effplan.planning.rank_options`), with a
  "vs baseline" column and where each price, timing and energy figure came from. Options are
  alternatives: they are never added up. Only **portfolio mode** (a checkbox: "I run the
  selected models side by side") shows a total, labelled as a sum.
* **Quality metrics**: with ``quality=`` (an :class:`effplan.Evaluation` or its tidy frame),
  *Metric* and *Condition* dropdowns choose what the quality chart plots and what the quality
  bar judges (``dash.quality_choice()``): a minimum for a higher-is-better metric, a maximum for
  a lower-is-better one (ECE, NLL, Brier, perplexity). A view change: no re-plan.
* **Generation workloads** (``generation=GenerationWorkload(...)``, or measurements with
  ``mode="generation"`` rows and no ``inference=``: ``dash.generation_mode``): prompt and output
  token sliders and TTFT / TPOT p95 targets (0 = none) replace the p95 latency target; every
  change re-plans with ``effplan.plan(prepared, generation=...)``. The table shows concurrency,
  the binding constraint, cost per 1M output tokens, energy per response (Wh) and perplexity
  (lower is better; the quality bar is then a maximum); the quality chart plots cost per 1M
  output tokens.
* Two charts in tabs (the options ranked; quality vs cost per 1,000 requests), the quarter-by-
  quarter table (on demand), and the **export**: "Download CSV" / "Download JSON" are links
  whose content is embedded in the page (``data:`` URLs), so the browser downloads them in
  JupyterLab, Voila and Binder alike, with no file served from the kernel's disk;
  "Save on the server" also writes them under ``export_dir`` where that is possible.

Design
------
* Sliders use ``continuous_update=False`` and text boxes fire on Enter / leaving the field, so
  one gesture is one re-plan. Every number is a slider beside a box that holds the exact value
  planned (the traffic slider is logarithmic and wide). A slider's range is presentation only:
  what is valid is decided by the planner's own validation (the workload and price dataclasses
  through :func:`effplan.schema.number`). A valid value outside the range -- typed, given to
  :meth:`BudgetDashboard.set` or at construction -- widens it; an invalid one is refused with the
  field and the allowed range named. Nothing is clamped.
* The measurements are prepared once (``dash.prepared``) and every re-plan reuses them.
* The live charts are HTML/SVG drawn by the browser (the options as bars, quality vs cost per
  1,000 requests as a scatter with the Pareto front): a change rewrites a few kB of markup
  instead of re-rendering matplotlib figures, they reflow with the page, and long names are
  cut or placed so that nothing overprints. Only the visible tab is rebuilt (the other when it
  is opened). ``benchmarks/dashboard.py`` measures a slider change against the previous full
  matplotlib redraw. Reports (no browser at hand) get matplotlib figures from
  :meth:`static_report`.
* Invalid input never raises out of a callback: the message is shown (``dash.error``) and the
  last good plan stays. Plan warnings are shown as one short note. Timings
  (``last_update_ms``...) are shown only with ``debug=True``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as _dt
import functools
import io
import json
import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import defaults
from .. import planning as pm
from ..views import figures as plots
from ..errors import EffplanError, EffplanWarning, ValidationError
from ..formatting import kwh, sig, usd, wh
from ..planning.stability import busy_sentence, is_flagged, spread_pct, worst
from ..safe import spreadsheet_frame
from ..planning.frames import (Headline, baseline_candidate, budget_table, headline,
                              is_generation_plan, portfolio_total, rank_options, select_rows)
from ..records.schema import number as _number
from ..records.column_units import CSV_FLOAT_FORMAT, units_of
from ..safe import html_text

__all__ = ["BudgetDashboard", "budget_table", "parse_price", "ALL_HARDWARE"]

log = logging.getLogger(__name__)

#: Dropdown entry that shows every hardware in the plan at once.
ALL_HARDWARE = "(all hardware)"

#: ranking rows shown before the rest is folded away
_TABLE_ROWS = 8

# Controls that only change what is shown (no re-plan needed).
#: controls that are buttons (not values ``set()`` can give)
_BUTTONS = ("save", "keep_bar", "clear_bars")
_VIEW_CONTROLS = ("hardware", "candidates", "min_quality", "portfolio", "quarters", "metric",
                  "condition")

#: How the page marks the control whose input was refused (with the message above the options).
_REFUSED_CSS = (".effplan-refused input,.effplan-refused select,.effplan-refused textarea"
                "{border-color:#a40000!important;background:#fff0f0!important;"
                "box-shadow:0 0 0 1px #a40000}")

#: The numbers drawn as a slider ``name`` beside a box ``name_text`` holding the exact value
#: planned; generation mode adds the token lengths. The sliders' ranges are presentation only.
_NUMBERS = ("requests_per_day", "monthly_growth", "peak_to_average", "months",
            "target_utilization", "pue", "grid_gco2_per_kwh")
_GEN_NUMBERS = ("prompt_tokens", "output_tokens")


def parse_price(text: str) -> float | dict[str, float] | None:
    """Parse the price box.

    ``""`` -> None (catalog price); ``"2.5"``, ``"$2.50"``, ``"2.5 USD"`` -> a float in USD per
    instance-hour (for the hardware selected in the dashboard); ``"lab-cpu=2.5; T4=0.53"`` ->
    a mapping hardware name -> price (names are resolved by the planner: exactly, ignoring
    case, or through a catalog alias).

    One rule for the decimal mark: **a point, and no thousands separator**. A comma is refused
    with a message (``"2,5"`` could be 2.5 or 25, ``"1,200"`` 1.2 or 1200: effplan never guesses
    a 10x or 1000x error). Raises :class:`ValidationError` (field ``price_per_hour``) for a
    comma, anything that is not a number, or a negative / non-finite price.
    """
    s = str(text).strip()
    if s == "":
        return None
    if "=" in s:
        out: dict[str, float] = {}
        for part in s.replace("\n", ";").split(";"):
            if not part.strip():
                continue
            name, sep, val = part.rpartition("=")  # a name may hold "=", a price never does
            if not sep or not name.strip():
                raise ValidationError("price_per_hour", f"{part.strip()!r}: write name=price, "
                                                        "separated by ';'")
            v = _one_price(val, text)
            if v is None:
                raise ValidationError("price_per_hour", f"{part.strip()!r}: price missing")
            out[name.strip()] = v
        return out
    return _one_price(s, text)


def _one_price(s: str, text: str) -> float | None:
    s = s.strip().replace("$", "").replace("USD", "").strip()
    if s == "":
        return None
    if "," in s:
        raise ValidationError("price_per_hour",
                              f"{s!r} is ambiguous: a comma may be a decimal mark or a thousands "
                              "separator. Type the price with a decimal point and no separators "
                              "(e.g. 2.5 or 1200)")
    try:
        value = float(s)
    except ValueError:
        raise ValidationError("price_per_hour",
                              f"{text!r} is not a number; type USD per instance-hour "
                              "(e.g. 2.5) or leave empty for the catalog price") from None
    if not math.isfinite(value) or value < 0:
        raise ValidationError("price_per_hour", f"{text!r} must be a finite number >= 0")
    return value


def _price_text(value: Any) -> str:
    """What :meth:`BudgetDashboard.set` puts in the price box for ``price_per_hour=``: text as
    it is, a number (USD per instance-hour of the selected hardware), a mapping name -> price,
    or None (the catalog price)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "; ".join(f"{k}={_fmt_price_text(v)}" for k, v in value.items())
    if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
        return _fmt_price_text(value)
    raise ValidationError("price_per_hour", "expected text ('2.5', 'T4=0.53; L4=0.8'), a number "
                                            "or a mapping hardware name -> USD per instance-hour, "
                                            f"got {type(value).__name__}")


@functools.cache  # one subclass per slider class (a type, not data)
def _widening(cls: type) -> type:
    """``cls`` (an ipywidgets slider) whose value is never clamped to ``[min, max]``: a value
    outside widens the range to hold it exactly (on a logarithmic slider, to whole decades).

    The range is presentation only (where a drag can go). Whether a value is valid is the
    planner's decision, checked by the dashboard before a value reaches the slider; a value
    that is not a finite number (or not > 0 on a log scale) raises ``TraitError``.
    """
    import traitlets

    log_scale = hasattr(cls, "base")  # FloatLogSlider: min / max are exponents of base

    class Widening(cls):  # type: ignore[misc, valid-type]
        @traitlets.validate("value")
        def _validate_value(self, proposal: Any) -> Any:
            v = proposal["value"]
            if not math.isfinite(v):
                raise traitlets.TraitError(f"{self.description or 'slider'}: expected a finite "
                                           f"number, got {v!r}")
            if log_scale:
                if v <= 0:
                    raise traitlets.TraitError(f"a logarithmic slider cannot show {v!r}: type "
                                               "it in the box beside the slider")
                lg = math.log10(v) if self.base == 10 else math.log(v, self.base)
                if lg < self.min:
                    self.min = math.floor(lg)
                if lg > self.max:
                    self.max = math.ceil(lg)
            else:
                if v < self.min:
                    self.min = v
                if v > self.max:
                    self.max = v
            return v

    Widening.__name__ = Widening.__qualname__ = f"Widening{cls.__name__}"
    return Widening


class BudgetDashboard:
    """Controls for a quarterly inference budget, with the answer, the ranked options, charts
    and a browser download of the scenario.

    Parameters
    ----------
    measurements:
        The tidy measurements frame (:mod:`effplan.schema`) or anything with ``to_frame()``.
        The candidate tagged ``baseline`` (``tags`` column) is what savings are measured against
        (``baseline=`` names another).
    inference, training, prices, hardware, samples, seed, catalog:
        Passed to :func:`effplan.plan`. ``inference`` defaults to :mod:`effplan.defaults` with the
        demo traffic (:func:`effplan.defaults.demo_requests_per_day`: the baseline needs several
        instances, so the candidates really differ); ``prices`` to ``defaults.prices()``.
    min_quality:
        Starting minimum quality for the headline (None / 0: no minimum).
    quality, metric, condition:
        Optional tidy quality frame (one row per candidate x metric x condition, see
        :func:`effplan.plots.quality_points`) or an :class:`effplan.Evaluation`, and the metric /
        condition to start on (default: the first metric, condition ``clean``); the dashboard
        then has Metric / Condition dropdowns. Without it the measurements' single ``quality``
        column is used (``perplexity`` for a generation plan). A frame naming none of the
        measured candidates is not used (a note says so).
    generation:
        A :class:`effplan.planning.GenerationWorkload` to start from (LLM serving per token);
        default when the measurements have ``mode="generation"`` rows and no ``inference`` is
        given: :func:`effplan.defaults.generation_workload`. Not with ``inference``.
    export_dir:
        Folder for :meth:`export` / "Save on the server" (created on first save).
    debug:
        Show the timing line under the charts (developers; managers do not need it).
    actuals:
        An :class:`effplan.planning.actuals.Actuals` (``effplan.actuals(plan, bill)``): a third
        chart tab, "Budget vs actuals", shows it (:func:`effplan.actuals_view.dashboard_html`;
        the bill does not change with the controls).
    demo_traffic:
        ``inference`` holds the demo traffic (notebook 04 with ``requests_per_day = 0``): the
        headline's assumption line says so while the traffic is unchanged.

    Attributes for code and tests: ``controls`` (name -> widget; each number has a slider
    ``name`` and a box ``name_text`` holding the exact value planned), ``plan``, ``prepared``,
    ``headline``, ``ranking``, ``portfolio`` (dict, or None outside portfolio mode), ``table``
    (quarter-by-quarter rows of the selection, :func:`effplan.planning.budget_table`), ``error``,
    ``warnings``, ``last_update_ms`` / ``last_plan_ms`` / ``last_draw_ms``, ``widget``.
    """

    def __init__(self, measurements: Any, *, inference: Any = None, training: Any = None,
                 prices: Any = None, hardware: Any = None, samples: int = defaults.SAMPLES,
                 seed: int = 0, catalog: Any = None, baseline: str | None = None,
                 min_quality: float | None = None, export_dir: str | Path = "exports",
                 quality: Any = None, metric: str | None = None,
                 condition: str | None = None, generation: Any = None,
                 debug: bool = False, actuals: Any = None, bars: Any = None,
                 demo_traffic: bool = False) -> None:
        import ipywidgets as w

        if hasattr(measurements, "to_frame") and not isinstance(measurements, pd.DataFrame):
            measurements = measurements.to_frame()
        if not isinstance(measurements, pd.DataFrame):
            raise ValidationError("measurements", "expected a DataFrame or Measurements, got "
                                                  f"{type(measurements).__name__}")
        self.measurements = measurements
        has_gen = "mode" in measurements.columns and bool(
            (measurements["mode"].astype(str) == "generation").any())
        #: True: the dashboard plans a GenerationWorkload (per-token LLM serving)
        self.generation_mode = generation is not None or (inference is None and has_gen)
        if self.generation_mode:
            if inference is not None:
                raise ValidationError("generation", "give either inference= or generation=: a "
                                                    "generation workload is planned on its own")
            inference = (generation if generation is not None
                         else defaults.generation_workload(measurements))
            training = None
        elif inference is None:
            inference = defaults.workload(requests_per_day=defaults.demo_requests_per_day(
                measurements))
            #: the demo traffic (said in the assumption line while the traffic is unchanged)
            self.demo_requests_per_day = float(inference.requests_per_day)
        elif demo_traffic:   # the caller scaled the traffic (notebook 04, requests_per_day = 0)
            self.demo_requests_per_day = float(inference.requests_per_day)
        self._inference0 = inference
        self._training = training
        self._prices0 = prices if prices is not None else defaults.prices()
        self._hardware_arg = hardware
        self.samples = int(samples)
        self.seed = int(seed)
        self.catalog = catalog
        self.export_dir = Path(export_dir)
        self.debug = bool(debug)
        #: optional tidy quality frame (candidate, metric, condition, value, ci_low, ci_high, n,
        #: provenance, higher_is_better) and the metric / condition the quality chart plots
        if quality is not None and not isinstance(quality, pd.DataFrame):
            quality = getattr(quality, "frame", quality)  # an effplan.Evaluation
        if quality is not None:
            if not isinstance(quality, pd.DataFrame):
                raise ValidationError("quality", "expected a tidy quality frame or an "
                                                 f"Evaluation, got {type(quality).__name__}")
            metric, condition = _metric_condition(quality, metric, condition)
        self._quality_note = ""
        if quality is not None and not set(quality["candidate"].astype(str)) & set(
                measurements["candidate"].astype(str)):
            # e.g. the built-in digits evaluation beside someone else's measurements: a chart of
            # NaN would say nothing; the measurements' own quality column is used, and said so
            self._quality_note = ("the quality frame names none of the measured candidates ("
                                  + ", ".join(sorted(set(quality["candidate"].astype(str)))[:4])
                                  + "): the metric selector is off and the measurements' "
                                  "quality column is used")
            quality, metric, condition = None, None, None
        self.quality, self.metric, self.condition = quality, metric, condition
        #: quality bars kept beside the selected one (:mod:`effplan.records.bars`), e.g. accuracy >= 0.96
        #: clean AND >= 0.95 under noise-0.1; the headline picks options meeting all of them
        if bars and quality is None and not self._quality_note:
            raise ValidationError("bars", "quality bars need quality= (an Evaluation or its frame)")
        self.bars: list[Any] = self._checked_bars(bars) if quality is not None else []
        #: the headline's line when the choice fails a condition the baseline passes ("" if none)
        self.shift_line = ""
        self.baseline = baseline if baseline is not None else baseline_candidate(measurements)
        self.prepared: Any = None
        self._prepare_warnings: list[str] = []

        self.table: pd.DataFrame = pd.DataFrame()
        self.ranking: pd.DataFrame = pd.DataFrame()
        self.headline: Headline | None = None
        self.portfolio: dict[str, Any] | None = None
        self.error: str = ""
        self._error_field: str | None = None  # the field ``error`` names, when it names one
        self.warnings: list[str] = []
        self.last_update_ms = float("nan")
        self.last_numbers_ms = float("nan")
        self.last_plan_ms = float("nan")
        self.last_draw_ms = float("nan")
        self._hold = False
        #: the numbers with a slider and an exact box; the latency targets (0 = none)
        self._numbers = _NUMBERS + (_GEN_NUMBERS if self.generation_mode else ())
        self._slo_names = (("slo_ttft_p95_ms", "slo_tpot_p95_ms") if self.generation_mode
                           else ("slo_p95_ms",))
        self._grid0 = float(self._prices0.grid_intensity_gco2_per_kwh)
        self._elec0 = float(self._prices0.electricity_price_per_kwh)

        self._inference = self._inference0
        self._prices = self._prices0
        self.plan: Any = self._make_plan(self._inference0, self._prices0)

        self._stale = {"ranking": True, "quality": True}
        self.controls: dict[str, Any] = self._build_controls(w, min_quality)
        self._headline_html = w.HTML(layout=w.Layout(width="100%"))
        self._headline_html.add_class("effplan-headline-box")
        self._error_html = w.HTML()
        self._error_html.add_class("effplan-error")
        self._warning_html = w.HTML()
        self._warning_html.add_class("effplan-warning")
        self._table_html = w.HTML(layout=w.Layout(width="100%", overflow="auto"))
        self._table_html.add_class("effplan-table")
        self._quarters_html = w.HTML(layout=w.Layout(width="100%", overflow="auto"))
        self._quarters_html.add_class("effplan-quarters")
        self._download_html = w.HTML()
        self._download_html.add_class("effplan-downloads")
        self._status_html = w.HTML()
        self._status_html.add_class("effplan-status")
        self._bars_html = w.HTML(layout=w.Layout(width="100%"))
        self._bars_html.add_class("effplan-chart-ranking")
        self._quality_html = w.HTML(layout=w.Layout(width="100%"))
        self._quality_html.add_class("effplan-chart-quality")
        self._tabs = w.Tab(children=[self._bars_html, self._quality_html],
                           layout=w.Layout(width="100%"))
        self._tabs.titles = ("Options ranked", "Quality vs cost")
        #: the Actuals shown in the "Budget vs actuals" tab (None: no such tab)
        self.actuals = actuals
        if actuals is not None:
            from ..views.actuals import dashboard_html

            self._actuals_html = w.HTML(value=dashboard_html(actuals), layout=w.Layout(width="100%"))
            self._actuals_html.add_class("effplan-chart-actuals")
            self._tabs.children = (*self._tabs.children, self._actuals_html)
            self._tabs.titles = ("Options ranked", "Quality vs cost", "Budget vs actuals")
        self._tabs.add_class("effplan-charts")
        self._tabs.observe(self._on_tab, names="selected_index")
        #: what the boxes plan, in a manager's words beside them ("+5% / month", "60%",
        #: "40 billion"); the boxes keep the exact number planned (never clamped or rounded)
        self._readouts = {n: w.HTML(layout=w.Layout(flex="0 0 auto", margin="0 0 0 6px"))
                          for n in _READOUTS}
        for n, r in self._readouts.items():
            r.add_class(f"effplan-{n.replace('_', '-')}-readout")
        self.widget = self._build_layout(w)
        for name, ctl in self.controls.items():
            if name == "save":
                ctl.on_click(self._on_save_click)
            elif name.endswith("_text"):
                ctl.observe(self._on_typed, names="value")
            else:
                ctl.observe(self._on_change, names="value")
        self._sync_price_box()
        self._label_quality_box()
        self._show_warnings()
        self._redraw_timed(plan_ms=0.0)

    # ------------------------------------------------------------------ construction
    def _build_controls(self, w: Any, min_quality: float | None) -> dict[str, Any]:
        inf, pr = self._inference0, self._prices0
        rpd = float(inf.requests_per_day)
        slo = getattr(inf, "slo_p95_ms", None)
        lg = math.log10(max(rpd, 1.0))
        lo, hi = math.floor(lg) - 2, math.ceil(lg) + 2  # four decades around the start
        wide = {"width": "calc(100% - 6px)"}
        # sliders whose range holds any value given (widened, never clamped); each range
        # below also holds the starting value, which the planner has already accepted
        log_slider, slider = _widening(w.FloatLogSlider), _widening(w.FloatSlider)
        int_slider = _widening(w.IntSlider)
        g, p, m = float(inf.monthly_growth), float(inf.peak_to_average), int(inf.months)
        pue, util = float(pr.pue), float(inf.target_utilization)
        c: dict[str, Any] = {
            "requests_per_day": log_slider(
                # 0 requests/day is a valid plan but has no place on a log scale: the box holds it
                value=rpd if rpd > 0 else 10.0 ** lo, base=10, min=lo, max=hi, step=0.02,
                readout=False, description="", continuous_update=False,
                tooltip="requests per day in the first month (log scale: 4 decades)",
                layout=w.Layout(width="100%")),
            "requests_per_day_text": w.FloatText(
                value=rpd, description="", continuous_update=False,
                tooltip="type an exact number of requests per day and press Enter",
                layout=w.Layout(width="130px", flex="0 0 130px")),
            "monthly_growth": slider(
                value=g, min=min(-0.2, g), max=max(0.5, g), step=0.01, readout=False,
                description="Growth / month", continuous_update=False),
            "peak_to_average": slider(
                value=p, min=min(1.0, p), max=max(5.0, p), step=0.1, readout=False,
                description="Peak / average", continuous_update=False),
            "months": int_slider(
                value=m, min=min(3, m), max=max(36, m), step=3, readout=False,
                description="Horizon (months)", continuous_update=False),
            "min_quality": w.FloatText(
                value=float(min_quality or 0.0), description="Min quality",
                tooltip="the headline only picks candidates at least this good; 0 = no bar",
                continuous_update=False),
            "target_utilization": slider(
                value=util, min=min(0.0, util), max=max(1.0, util), step=0.05, readout=False,
                description="Target utilization", continuous_update=False),
            "price_per_hour": w.Text(
                value="", placeholder="catalog price", description="Price $/instance-h",
                continuous_update=False),
            "electricity_usd_per_kwh": w.FloatText(
                value=self._elec0, step=0.01,
                description="Electricity $/kWh", continuous_update=False,
                disabled=pr.mode != "on-prem"),
            "pue": slider(
                value=pue, min=min(1.0, pue), max=max(2.5, pue), step=0.05, readout=False,
                description="PUE", continuous_update=False),
            "grid_gco2_per_kwh": slider(
                value=self._grid0, min=min(0.0, self._grid0), max=max(1000.0, self._grid0),
                step=5, readout=False, description="Grid gCO2/kWh", continuous_update=False),
        }
        if self.generation_mode:
            p0, n0 = int(inf.prompt_tokens), int(inf.output_tokens)
            c["prompt_tokens"] = int_slider(
                value=p0, min=1, max=max(4096, 4 * p0), step=1, description="Prompt tokens",
                continuous_update=False, readout=False,
                tooltip="tokens in per request; the plan uses the measured prompt length at or "
                        "above it")
            c["output_tokens"] = int_slider(
                value=n0, min=1, max=max(2048, 4 * n0), step=1, description="Output tokens",
                continuous_update=False, readout=False, tooltip="tokens generated per response")
            for name, label, what in (("slo_ttft_p95_ms", "TTFT p95 (ms)", "time to first token"),
                                      ("slo_tpot_p95_ms", "TPOT p95 (ms)",
                                       "time per output token")):
                v = getattr(inf, name)
                c[name] = w.FloatText(value=float(v) if v else 0.0, description=label,
                                      tooltip=f"p95 {what} target; 0 = no target",
                                      continuous_update=False)
        else:
            c["slo_p95_ms"] = w.FloatText(
                value=float(slo) if slo else 0.0, description="p95 target (ms)",
                tooltip="p95 batch latency target; 0 = no target", continuous_update=False)
        if self.quality is not None:
            metrics = [str(m) for m in pd.unique(self.quality["metric"].astype(str))]
            c["metric"] = w.Dropdown(options=metrics, value=self.metric, description="Metric")
            c["condition"] = w.Dropdown(options=self._conditions(self.metric),
                                        value=self.condition, description="Condition")
            c["keep_bar"] = w.Button(description="Keep this bar", icon="plus",
                                     tooltip="keep the metric, condition and bar above as one of "
                                             "several bars; then choose another")
            c["clear_bars"] = w.Button(description="Clear kept bars", icon="times")
            c["keep_bar"].layout = c["clear_bars"].layout = w.Layout(width="auto")
            c["keep_bar"].on_click(lambda _b: self.keep_bar())
            c["clear_bars"].on_click(lambda _b: self.set_bars([]))
            self._bars_list_html = w.HTML(self._bars_markup())
        hw_opts = self._hardware_options(self.plan)
        c["hardware"] = w.Dropdown(options=hw_opts, value=hw_opts[-1] if len(hw_opts) > 1
                                   else hw_opts[0], description="Hardware")
        cands = self._candidate_options(self.plan)
        c["candidates"] = w.SelectMultiple(options=cands, value=tuple(cands),
                                           rows=min(6, max(3, len(cands))),
                                           description="Candidates")
        c["portfolio"] = w.Checkbox(value=False, indent=False,
                                    description="Portfolio: run the selected models side by side",
                                    tooltip="show the SUM of the selected candidates, each on its "
                                            "cheapest option (only if you really run them all)")
        c["quarters"] = w.ToggleButton(value=False, description="Quarter by quarter",
                                       icon="table", tooltip="show every option's cost per "
                                                             "quarter (a long table)")
        c["save"] = w.Button(description="Save on the server", icon="save",
                             tooltip=f"also write the CSV and JSON to {self.export_dir}/ on the "
                                     "machine running the kernel")
        # the exact value of each number, typed (Enter) or moved with its slider; unbounded:
        # the planner's validation decides, and the slider widens to a valid value outside it
        hints = {"monthly_growth": "a fraction: 0.05 = +5% a month",
                 "target_utilization": "a fraction of measured throughput: 0.6 = 60%",
                 "months": "whole months", "peak_to_average": "peak load / average load (>= 1)"}
        for name in self._numbers[1:]:
            c[f"{name}_text"] = w.FloatText(
                value=float(c[name].value), description="", continuous_update=False,
                tooltip=f"type an exact value and press Enter ({hints[name]})" if name in hints
                else "type an exact value and press Enter")
        style = {"description_width": "130px"}
        for name, ctl in c.items():
            ctl.add_class(f"effplan-{name.replace('_text', '-text')}"
                          if name.endswith("_text") else f"effplan-{name}")
            if name in ("requests_per_day", "requests_per_day_text"):
                pass
            elif name in self._numbers:  # the slider of a slider + box row
                ctl.layout = w.Layout(flex="1 1 auto", width="auto", min_width="0")
            elif name.endswith("_text"):
                ctl.layout = w.Layout(flex="0 0 84px", width="84px")
            else:
                ctl.layout = w.Layout(**wide)
            if name not in ("save", "portfolio", "quarters", "requests_per_day", "keep_bar", "clear_bars") \
                    and not name.endswith("_text"):
                ctl.style = style
        c["requests_per_day"].style = {"description_width": "0px"}
        return c

    def _build_layout(self, w: Any) -> Any:
        c = self.controls

        def section(title: str) -> Any:
            return w.HTML(f'<b style="display:block;margin-top:6px">{html_text(title)}</b>')

        def number(name: str) -> Any:  # the slider, and the box with the exact value planned
            extra = [self._readouts[name]] if name in self._readouts else []
            return w.HBox([c[name], c[f"{name}_text"], *extra],
                          layout=w.Layout(width="calc(100% - 6px)", align_items="center"))

        # the traffic slider gets the column's whole width (no description beside it); its
        # label and the box for an exact number sit on the row above
        traffic = w.VBox([
            w.HBox([w.HTML('<span style="display:inline-block;width:130px;text-align:right;'
                           'padding-right:8px">Requests / day</span>'),
                    c["requests_per_day_text"], self._readouts["requests_per_day"],
                    w.HTML('<span style="font-size:0.8em;color:#666;padding-left:6px">type an '
                           "exact number, Enter</span>")],
                   layout=w.Layout(align_items="center")),
            c["requests_per_day"]], layout=w.Layout(width="100%"))
        elec_note = w.HTML(
            '<div class="effplan-disabled-note" style="font-size:0.8em;color:#666;'
            'margin:-2px 0 4px 136px">used in on-prem mode only (Prices(mode="on-prem")); '
            "cloud prices include power</div>" if c["electricity_usd_per_kwh"].disabled else "")
        gen = ([section("Generation"), number("prompt_tokens"), number("output_tokens")]
               if self.generation_mode else [])
        slos = ([c["slo_ttft_p95_ms"], c["slo_tpot_p95_ms"]] if self.generation_mode
                else [c["slo_p95_ms"]])
        qual = [c["metric"], c["condition"]] if "metric" in c else []
        keep = ([w.HBox([c["keep_bar"], c["clear_bars"]]), self._bars_list_html]
                if "keep_bar" in c else [])
        left = w.VBox([
            section("Traffic"), traffic, number("monthly_growth"), number("peak_to_average"),
            number("months"), *gen, section("Targets"), *slos, *qual, c["min_quality"], *keep,
            number("target_utilization"),
            section("Options considered"), c["hardware"], c["candidates"], c["portfolio"],
            section("Prices and carbon"), c["price_per_hour"], c["electricity_usd_per_kwh"],
            elec_note, number("pue"), number("grid_gco2_per_kwh"),
        ], layout=w.Layout(flex="1 1 320px", min_width="300px", max_width="460px",
                           overflow="hidden", padding="0 4px 0 0"))
        left.add_class("effplan-controls")
        right = w.VBox([self._tabs,
                        w.HBox([self._download_html, c["save"], c["quarters"]],
                               layout=w.Layout(align_items="center", flex_flow="row wrap")),
                        self._quarters_html, self._status_html],
                       layout=w.Layout(flex="3 1 420px", min_width="0", overflow="hidden"))
        right.add_class("effplan-results")
        body = w.Box([left, right], layout=w.Layout(display="flex", flex_flow="row wrap",
                                                    width="100%", align_items="flex-start",
                                                    grid_gap="12px"))
        c["save"].layout = w.Layout(width="auto")
        c["quarters"].layout = w.Layout(width="auto", margin="0 0 0 6px")
        # the answer and the ranked options use the full width; controls and charts below
        box = w.VBox([self._headline_html, self._error_html, self._warning_html,
                      self._table_html, body], layout=w.Layout(width="100%"))
        box.add_class("effplan-dashboard")
        return box

    @staticmethod
    def _hardware_options(plan: Any) -> list[str]:
        hws = [str(h) for h in pd.unique(plan.summary["hardware"].astype(str))]
        hws = [str(h) for h in pd.unique(plan.quarterly["hardware"].astype(str))] or hws
        return hws + ([ALL_HARDWARE] if len(hws) > 1 else [])

    @staticmethod
    def _candidate_options(plan: Any) -> list[str]:
        return [str(cn) for cn in pd.unique(plan.quarterly["candidate"].astype(str))]

    # ------------------------------------------------------------------ planning
    def _make_plan(self, inference: Any, prices: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EffplanWarning)
            if self.prepared is None:  # once: validation and projection do not depend on controls
                self.prepared = pm.prepare(self.measurements, self._hardware_arg,
                                           catalog=self.catalog)
                self._prepare_warnings = [str(wm.message) for wm in caught
                                          if issubclass(wm.category, EffplanWarning)]
            if self.generation_mode:
                new_plan = pm.plan(self.prepared, generation=inference, prices=prices,
                                   samples=self.samples, seed=self.seed)
            else:
                new_plan = pm.plan(self.prepared, inference=inference, training=self._training,
                                   prices=prices, samples=self.samples, seed=self.seed)
        self.warnings = list(dict.fromkeys(
            ([self._quality_note] if getattr(self, "_quality_note", "") else [])
            + self._prepare_warnings
            + [str(wm.message) for wm in caught if issubclass(wm.category, EffplanWarning)]))
        for wm in caught:  # anything not ours goes on to the usual handlers
            if not issubclass(wm.category, EffplanWarning):
                warnings.warn_explicit(wm.message, wm.category, wm.filename, wm.lineno)
        return new_plan

    def _raw(self) -> dict[str, Any]:
        """Every input as the page shows it: the exact number in each box beside a slider (the
        sliders mirror the boxes), the targets, the quality bar, the price and electricity boxes
        and the hardware selected (the price box applies to it)."""
        c = self.controls
        out: dict[str, Any] = {n: c[f"{n}_text"].value for n in self._numbers}
        for n in (*self._slo_names, "min_quality", "price_per_hour", "electricity_usd_per_kwh",
                  "hardware"):
            out[n] = c[n].value
        return out

    def _read_inputs(self, raw: Mapping[str, Any] | None = None) -> tuple[Any, Any]:
        """Workload and prices (with the price overrides) from the controls, or from ``raw``
        (:meth:`_raw`'s keys: what :meth:`set` would show).

        What is valid is decided here by the planner's own validation and nowhere else (not by
        a slider's range): each value must be a number (:func:`effplan.schema.number`), and the
        workload and price dataclasses check its range; a :class:`ValidationError` names the
        field and the allowed range.
        """
        raw = self._raw() if raw is None else raw
        num = {n: _number(n, raw[n]) for n in self._numbers}
        slos: dict[str, Any] = {}
        for name in self._slo_names:
            slo = _number(name, raw[name])
            if slo < 0:  # the box's own convention: 0 = no target
                raise ValidationError(name, f"must be >= 0 (0 = no latency target), got {slo:g}")
            slos[name] = slo if slo > 0 else None
        if self.generation_mode:
            slos.update(prompt_tokens=num["prompt_tokens"], output_tokens=num["output_tokens"])
        inference = dataclasses.replace(
            self._inference0, requests_per_day=num["requests_per_day"],
            monthly_growth=num["monthly_growth"], peak_to_average=num["peak_to_average"],
            target_utilization=num["target_utilization"], months=num["months"], **slos)
        overrides = self._overrides_from_box(raw["price_per_hour"], raw["hardware"])
        grid = num["grid_gco2_per_kwh"]
        elec = _number("electricity_usd_per_kwh", raw["electricity_usd_per_kwh"])
        prices = dataclasses.replace(
            self._prices0, price_per_hour=overrides, pue=num["pue"],
            grid_gco2_per_kwh=self._prices0.grid_gco2_per_kwh if grid == self._grid0 else grid,
            electricity_usd_per_kwh=(self._prices0.electricity_usd_per_kwh if elec == self._elec0
                                     else elec))
        return inference, prices

    def _min_quality(self, raw: Mapping[str, Any] | None = None) -> float | None:
        """The quality bar: a minimum for a higher-is-better metric, a maximum for a lower-is-
        better one (perplexity, ECE, NLL...); None when the box holds 0."""
        v = _number("min_quality", self.controls["min_quality"].value if raw is None
                    else raw["min_quality"])
        if v < 0:
            raise ValidationError("min_quality", f"must be >= 0 (0 = no quality bar), got {v:g}")
        return v if v > 0 else None

    def _conditions(self, metric: str | None) -> list[str]:
        q = self.quality
        q = q[q["metric"].astype(str) == str(metric)]
        return ([str(x) for x in pd.unique(q["condition"].astype(str))]
                if "condition" in q.columns else [""])

    def quality_choice(self) -> tuple[dict[str, float] | None, str, bool]:
        """(candidate -> value, label, higher is better) of the quality the headline judges:
        the selected metric x condition of the quality frame; without one, None (the plan's
        own column: ``quality``, or ``perplexity`` for a generation plan)."""
        if self.quality is None:
            gen = self.generation_mode
            return None, "perplexity" if gen else "quality", not gen
        cands = pd.DataFrame({"candidate": self._candidate_options(self.plan)})
        df, _label, hib = plots.quality_points(cands, self.quality, metric=self.metric,
                                               condition=self.condition)
        label = str(self.metric) + (f" ({self.condition})" if self.condition
                                    and self.condition not in ("nan", "None") else "")
        return dict(zip(df["candidate"].astype(str), df["_q"].astype(float))), label, hib

    # ------------------------------------------------------------------ several quality bars
    def _checked_bars(self, bars: Any) -> list[Any]:
        from ..records.bars import as_bars

        out = as_bars(bars)
        if out and self.quality is None:
            raise ValidationError("bars", "quality bars need quality= (an Evaluation or its frame)")
        return out

    def _current_bar(self, mq: float | None = None) -> Any:
        """The selected metric x condition with the bar in the box, as a QualityBar (None when
        the box holds 0 = no bar, or there is no quality frame)."""
        from ..records.bars import QualityBar
        from ..records.quality import metric_key

        mq = self._min_quality() if mq is None else mq
        if self.quality is None or not mq:
            return None
        _v, _label, hib = self.quality_choice()
        return QualityBar(metric_key(str(self.metric), str(self.condition)), float(mq),
                          higher_is_better=hib)

    def keep_bar(self) -> bool:
        """Keep the selected metric x condition and the bar in the box as one more bar (the box
        is then free for the next one); False when the box holds no bar."""
        bar = self._current_bar()
        if bar is None:
            return False
        kept = [b for b in self.bars if (b.key, b.on) != (bar.key, bar.on)] + [bar]
        return self.set_bars(kept, clear_box=True)

    def set_bars(self, bars: Any, *, clear_box: bool = False) -> bool:
        """Replace the kept bars (``[("accuracy", 0.96), ("accuracy@noise-0.1", 0.95)]``,
        :mod:`effplan.records.bars`) and re-rank; a bar that cannot be read is refused with the field
        named in ``error`` (False returned, nothing changed)."""
        try:
            self.bars = self._checked_bars(bars)
        except ValidationError as exc:
            self._set_error(str(exc), exc.field)
            return False
        if clear_box:
            with self._quiet():
                self.controls["min_quality"].value = 0.0
        if hasattr(self, "_bars_list_html"):
            self._bars_list_html.value = self._bars_markup()
        return self.update(replan=False)

    def _bars_markup(self) -> str:
        if not self.bars:
            return ('<div style="font-size:0.8em;color:#666;margin-left:136px">no bar kept: the '
                    "headline judges the one above</div>")
        items = "".join(f"<li>{html_text(b.label())}</li>" for b in self.bars)
        return (f'<div class="effplan-bars" style="font-size:0.85em;margin-left:120px">Kept bars '
                f"(all must be met):<ul style=\"margin:2px 0\">{items}</ul></div>")

    def _bar_failures(self) -> dict[str, str] | None:
        """candidate -> why it misses a kept bar ("" when it meets them all); None without bars."""
        if not self.bars or self.quality is None:
            return None
        from ..records.bars import failures

        return failures(self.quality, self.bars, self._candidate_options(self.plan))

    def _shift_line(self, mq: float | None) -> str:
        """The headline's line when the chosen option fails, at a bar's threshold, a condition
        that the baseline passes (:func:`effplan.records.bars.shift_gaps`)."""
        h = self.headline
        if self.quality is None or h is None or not h.found or not h.baseline:
            return ""
        from ..records.bars import gap_line, shift_gaps

        current = self._current_bar(mq)
        bars = [*self.bars, *([current] if current is not None else [])]
        if not bars:
            return ""
        return gap_line(shift_gaps(self.quality, bars, h.candidate, h.baseline), h.candidate, h.baseline)

    def _label_quality_box(self) -> None:
        _v, label, hib = self.quality_choice()
        box = self.controls["min_quality"]
        box.description = f"{'Min' if hib else 'Max'} {label}"[:24]
        box.tooltip = (f"the headline only picks candidates with {label} "
                       f"{'at least' if hib else 'at most'} this (0 = no bar)"
                       + ("" if hib else "; lower is better"))

    def _overrides_from_box(self, text: str, hw: str | None = None) -> dict[str, float]:
        """Price overrides after applying the price box to ``hw`` (default: the selected
        hardware)."""
        parsed = parse_price(text)
        out = dict(self._prices.price_per_hour)
        if isinstance(parsed, dict):
            out.update(parsed)
            return out
        hw = self.controls["hardware"].value if hw is None else hw
        targets = (self._hardware_options(self.plan)[:-1] if hw == ALL_HARDWARE else [hw])
        for h in targets:
            if parsed is None:
                out.pop(h, None)
            else:
                out[h] = parsed
        return out

    # ------------------------------------------------------------------ callbacks
    def _name_of(self, owner: Any) -> str | None:
        return next((n for n, ctl in self.controls.items() if ctl is owner), None)

    def _on_change(self, change: Mapping[str, Any]) -> None:
        if self._hold:
            return
        owner = change.get("owner") if isinstance(change, Mapping) else getattr(change, "owner", None)
        name = self._name_of(owner)
        if name in self._numbers:  # a slider moved: its box shows the exact value planned
            v = self.controls[name].value
            if name == "requests_per_day":
                # a dragged value is snapped to 4 significant figures (readable, and planned)
                v = _snap4(float(v))
                self._set_quietly(self.controls[name], v)
            self._set_quietly(self.controls[f"{name}_text"], v)
        if name == "hardware":
            self._sync_price_box()
        if name == "metric":
            self.metric = str(self.controls["metric"].value)
            conds = self._conditions(self.metric)
            self._set_quietly_options(self.controls["condition"], conds,
                                      self.condition if self.condition in conds else conds[0])
            self.condition = str(self.controls["condition"].value)
            self._label_quality_box()
        if name == "condition":
            self.condition = str(self.controls["condition"].value)
            self._label_quality_box()
        self.update(replan=name not in _VIEW_CONTROLS)

    def _on_typed(self, change: Mapping[str, Any]) -> None:
        """An exact number typed in the box beside a slider (Enter): planned as typed when the
        planner accepts it (the slider then moves there, widening its range when needed);
        otherwise refused with the field named, the slider left where the last plan is."""
        if self._hold:
            return
        owner = change.get("owner") if isinstance(change, Mapping) else getattr(change, "owner", None)
        name = str(self._name_of(owner))[:-len("_text")]
        if self.update(replan=True):
            self._show_on_slider(name, self.controls[f"{name}_text"].value)

    def _show_on_slider(self, name: str, value: float) -> None:
        """Move ``name``'s slider to ``value`` quietly (its range widens to hold it). A log
        slider cannot show 0 requests/day: it rests at its left end and the box holds the 0."""
        sl = self.controls[name]
        with self._quiet():
            sl.value = value if not (name == "requests_per_day" and value <= 0) else 10.0 ** sl.min

    @contextlib.contextmanager
    def _quiet(self) -> Any:
        """Change controls without their callbacks firing (nests)."""
        held, self._hold = self._hold, True
        try:
            yield
        finally:
            self._hold = held

    def _set_quietly_options(self, ctl: Any, options: list[str], value: Any) -> None:
        with self._quiet():
            ctl.options = options
            ctl.value = value

    def _set_quietly(self, ctl: Any, value: Any) -> None:
        with self._quiet():
            ctl.value = value

    def _on_tab(self, change: Mapping[str, Any]) -> None:
        name = ("ranking", "quality", "actuals")[int(self._tabs.selected_index or 0)]
        if self._stale.get(name):   # the actuals tab is drawn once, never stale
            self._draw_chart(name)

    def _on_save_click(self, _button: Any) -> None:
        try:
            csv_path, json_path = self.export()
        except (OSError, EffplanError, ValueError) as exc:
            self._set_error(f"saving on the server failed: {exc}")
            return
        self._status_html.value = (f"<small>saved <code>{html_text(str(csv_path))}</code> and "
                                   f"<code>{html_text(json_path.name)}</code> on the server"
                                   "</small>")

    def update(self, *, replan: bool = True) -> bool:
        """Re-plan (when ``replan``) and redraw from the controls; True when it succeeded.

        Never raises for bad input: a :class:`ValidationError` (or any ``ValueError`` from the
        planner) is shown in the dashboard and the last good plan stays on screen. An unexpected
        error is shown with its type and logged with its traceback.
        """
        t0 = time.perf_counter()
        plan_ms = 0.0
        try:
            self._min_quality()  # first: a refused quality bar leaves the last plan in place
            if replan:
                inference, prices = self._read_inputs()
                new_plan = self._make_plan(inference, prices)
                plan_ms = (time.perf_counter() - t0) * 1e3
                self.plan, self._inference, self._prices = new_plan, inference, prices
                self._sync_options()
                self._sync_price_box()
                self._show_warnings()
            self._set_error("")
            self._redraw_timed(plan_ms=plan_ms, t0=t0)
            return True
        except (EffplanError, ValueError) as exc:
            self._set_error(str(exc), getattr(exc, "field", None))
        except Exception as exc:  # shown to the user with its type; the traceback goes to the log
            log.exception("effplan dashboard update failed")
            self._set_error(f"internal error ({type(exc).__name__}): {exc}")
        self.last_update_ms = (time.perf_counter() - t0) * 1e3
        return False

    def set(self, **values: Any) -> bool:
        """Set several controls with one re-plan, e.g. ``dash.set(pue=1.3, months=24)``.

        Each value is checked first by the planner's own validation (:meth:`_read_inputs`),
        never by a widget's range. A valid value is applied exactly: a number outside its
        slider's range widens the slider, and the plan shown is ``effplan.plan`` with that
        value; True is returned. Anything else is refused: an invalid number, a ``hardware``
        or ``candidates`` name that is not an option (the valid names are listed), an unknown
        metric, or inputs the planner then rejects (e.g. a price for hardware not in the plan).
        Then nothing changes -- every control and the plan stay as they were -- ``error`` holds
        the message naming the field (and the allowed range), the page shows it, and False is
        returned. Numbers may also be given by their box's name (``months_text=``). A control
        name that does not exist raises :class:`ValidationError` (a mistake in code).
        """
        import traitlets

        unknown = [k for k in values if k not in self.controls or k in _BUTTONS]
        if unknown:
            raise ValidationError(unknown[0], f"no such control; known: "
                                              f"{sorted(k for k in self.controls if k not in _BUTTONS)}")
        values = {(k[:-len("_text")] if k.endswith("_text") else k): v for k, v in values.items()}
        try:
            staged = self._stage(values)
        except ValidationError as exc:
            self._set_error(str(exc), exc.field)
            return False
        before = self._snapshot()
        try:
            self._apply(staged)
        except traitlets.TraitError as exc:  # a value no check above foresaw: refused, named
            self._restore(before)
            self._set_error(f"{', '.join(staged)}: {exc}")
            return False
        if "metric" in staged:
            self._label_quality_box()
        if self.update(replan=bool(set(staged) - set(_VIEW_CONTROLS))):
            return True
        message, field = self.error, self._error_field  # e.g. the planner refused a price key
        self._restore(before)  # back to what is planned
        self._set_error(message, field)
        return False

    def _stage(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The values :meth:`set` will give the controls, after every check; raises
        :class:`ValidationError` naming the field for the first one refused."""
        c = self.controls
        raw = self._raw()
        out: dict[str, Any] = {}
        if "hardware" in values:
            hw, opts = values["hardware"], [str(o) for o in c["hardware"].options]
            if not isinstance(hw, str) or hw not in opts:
                raise ValidationError("hardware", f"{hw!r} is not an option here; choose one "
                                                  f"of: {', '.join(opts)}")
            out["hardware"] = raw["hardware"] = hw
            if "price_per_hour" not in values:  # the box then shows that hardware's price
                raw["price_per_hour"] = self._price_box(hw)[0]
        if "candidates" in values:
            v, opts = values["candidates"], [str(o) for o in c["candidates"].options]
            try:
                names = (v,) if isinstance(v, str) else tuple(v)
            except TypeError:
                raise ValidationError("candidates", f"expected a list of candidate names, got "
                                                    f"{v!r}; choose from: {', '.join(opts)}"
                                      ) from None
            bad = [n for n in names if not isinstance(n, str) or n not in opts]
            if bad:
                raise ValidationError("candidates", f"{bad[0]!r} is not a candidate of this plan; "
                                                    f"choose from: {', '.join(opts)}")
            out["candidates"] = names
        for name in ("portfolio", "quarters"):
            if name in values:
                if not isinstance(values[name], (bool, np.bool_)):
                    raise ValidationError(name, f"expected True or False, got {values[name]!r}")
                out[name] = bool(values[name])
        if "metric" in values or "condition" in values:
            out["metric"], out["condition"] = _metric_condition(
                self.quality, values.get("metric", self.metric),
                values.get("condition", None if "metric" in values else self.condition))
        if "price_per_hour" in values:
            out["price_per_hour"] = raw["price_per_hour"] = _price_text(values["price_per_hour"])
        for name in (*self._numbers, *self._slo_names, "min_quality", "electricity_usd_per_kwh"):
            if name in values:
                out[name] = raw[name] = _number(name, values[name])
        self._read_inputs(raw)  # the planner's dataclasses decide what is valid
        self._min_quality(raw)
        for name in ("months", *_GEN_NUMBERS):  # whole numbers (checked above)
            if name in out:
                out[name] = int(out[name])
        return out

    def _apply(self, staged: Mapping[str, Any]) -> None:
        """Give the controls the values :meth:`_stage` checked, with no callback firing."""
        c = self.controls
        with self._quiet():
            if "hardware" in staged:
                c["hardware"].value = staged["hardware"]
                if "price_per_hour" not in staged:
                    self._sync_price_box()
            if "metric" in staged:
                c["metric"].value = staged["metric"]
                c["condition"].options = self._conditions(staged["metric"])
                c["condition"].value = staged["condition"]
                self.metric, self.condition = staged["metric"], staged["condition"]
            for name, v in staged.items():
                if name in self._numbers:
                    c[f"{name}_text"].value = v
                    self._show_on_slider(name, v)
                elif name not in ("hardware", "metric", "condition"):
                    c[name].value = v

    def _snapshot(self) -> tuple[dict[str, dict[str, Any]], Any, Any]:
        """Every control's state (options, range, placeholder, value) and the quality choice."""
        keys = ("options", "min", "max", "placeholder", "value")
        state = {n: {k: getattr(ctl, k) for k in keys if hasattr(ctl, k)}
                 for n, ctl in self.controls.items() if n != "save"}
        return state, self.metric, self.condition

    def _restore(self, snapshot: tuple[dict[str, dict[str, Any]], Any, Any]) -> None:
        """Put the controls back as :meth:`_snapshot` found them (quietly)."""
        state, self.metric, self.condition = snapshot
        with self._quiet():
            for name, st in state.items():
                ctl = self.controls[name]
                if "options" in st and tuple(ctl.options) != tuple(st["options"]):
                    ctl.options = st["options"]
                if "min" in st:  # a range that holds both values first, then the old one
                    ctl.min, ctl.max = min(ctl.min, st["min"]), max(ctl.max, st["max"])
                    ctl.value = st["value"]
                    ctl.min, ctl.max = st["min"], st["max"]
                elif ctl.value != st["value"]:
                    ctl.value = st["value"]
                if "placeholder" in st:
                    ctl.placeholder = st["placeholder"]
        if "metric" in self.controls:
            self._label_quality_box()

    def _sync_options(self) -> None:
        """Keep the hardware / candidate options in step with the plan's rows."""
        c = self.controls
        with self._quiet():
            hw = self._hardware_options(self.plan)
            if list(c["hardware"].options) != hw:
                cur = c["hardware"].value
                c["hardware"].options = hw
                c["hardware"].value = cur if cur in hw else hw[-1]
            cands = self._candidate_options(self.plan)
            if list(c["candidates"].options) != cands:
                cur = [x for x in c["candidates"].value if x in cands]
                c["candidates"].options = cands
                c["candidates"].value = tuple(cur or cands)

    def _sync_price_box(self) -> None:
        """Show the selected hardware's override (empty = catalog price, shown as placeholder)."""
        box = self.controls["price_per_hour"]
        with self._quiet():
            box.value, box.placeholder = self._price_box(self.controls["hardware"].value)

    def _price_box(self, hw: str) -> tuple[str, str]:
        """(text, placeholder) of the price box for hardware ``hw``: its override, as text that
        parses back to the same prices."""
        if hw == ALL_HARDWARE:
            return ("; ".join(f"{k}={_fmt_price_text(v)}"
                              for k, v in self._prices.price_per_hour.items()),
                    "catalog prices (name=price; name2=price)")
        ov = self._prices.price_per_hour.get(hw)
        s = self.plan.summary
        used = s.loc[s["hardware"].astype(str) == hw, "price_per_hour_usd"]
        used = pd.to_numeric(used, errors="coerce").dropna()
        return ("" if ov is None else _fmt_price_text(ov),
                f"catalog: {used.iloc[0]:g}" if len(used) and ov is None
                else "no catalog price: type one")

    def _set_error(self, message: str, field: str | None = None) -> None:
        """Show ``message`` above the options (empty: clear it); the control of ``field`` (the
        box of a number) is outlined too, so that a refused input is found further down."""
        self.error, self._error_field = message, (field if message else None)
        self._error_html.value = (
            "" if not message else
            f"<style>{_REFUSED_CSS}</style>"
            '<div class="effplan-error-message" style="color:#a40000;background:#fff0f0;'
            'border:1px solid #e0b4b4;padding:4px 8px;border-radius:3px">'
            f"<b>Input not applied:</b> {html_text(message)}<br>"
            "<small>Showing the last valid plan.</small></div>")
        target = f"{field}_text" if f"{field}_text" in self.controls else field
        for name, ctl in self.controls.items():
            if message and name == target:
                ctl.add_class("effplan-refused")
            else:
                ctl.remove_class("effplan-refused")

    def _show_warnings(self) -> None:
        msgs = list(dict.fromkeys(self.warnings))
        if not msgs:
            self._warning_html.value = ""
            return
        first, rest = _first_sentence(msgs[0])
        hidden = ([rest] if rest else []) + msgs[1:]
        more = ""
        if hidden:
            label = "more" if len(msgs) == 1 else f"+{len(msgs) - 1} more"
            more = (f'<details style="display:inline"><summary>{label}</summary>'
                    + "".join(f"<div>{html_text(m)}</div>" for m in hidden) + "</details>")
        first = html_text(first)
        self._warning_html.value = (
            '<div class="effplan-warning-message" style="color:#6b5500;background:#fffbe6;'
            'border-left:3px solid #e6c84a;padding:2px 8px;margin:2px 0;font-size:0.85em">'
            f"<b>Note:</b> {first} {more}</div>")

    # ------------------------------------------------------------------ drawing
    def selection(self) -> tuple[list[str], list[str] | None]:
        """(selected candidates, [selected hardware] or None for all hardware)."""
        cands = [str(x) for x in self.controls["candidates"].value]
        hw = self.controls["hardware"].value
        return cands, (None if hw == ALL_HARDWARE else [str(hw)])

    def _redraw_timed(self, *, plan_ms: float, t0: float | None = None) -> None:
        t0 = time.perf_counter() if t0 is None else t0
        t_draw = time.perf_counter()
        self._redraw_numbers()  # the answer and the table reach the page before the charts
        self.last_numbers_ms = (time.perf_counter() - t0) * 1e3
        self._stale = {"ranking": True, "quality": True}
        self._draw_chart(("ranking", "quality", "ranking")[int(self._tabs.selected_index or 0)])
        t1 = time.perf_counter()
        self.last_plan_ms = plan_ms
        self.last_draw_ms = (t1 - t_draw) * 1e3
        self.last_update_ms = (t1 - t0) * 1e3
        self._status_html.value = "" if not self.debug else (
            f'<small style="color:#666">updated in {self.last_update_ms:.0f} ms '
            f"(plan {self.last_plan_ms:.0f} ms, numbers after {self.last_numbers_ms:.0f} ms, "
            f"draw {self.last_draw_ms:.0f} ms); {self.samples} Monte-Carlo samples, "
            f"seed {self.seed}</small>")

    def _redraw_numbers(self) -> None:
        cands, hw = self.selection()
        mq = self._min_quality()
        qv, qlabel, hib = self.quality_choice()
        self.ranking = rank_options(self.plan, baseline=self.baseline, min_quality=mq,
                                    candidates=cands, hardware=hw, quality_values=qv,
                                    quality_label=qlabel, higher_is_better=hib,
                                    quality_failures=self._bar_failures())
        demo = getattr(self, "demo_requests_per_day", None)
        self.headline = headline(self.plan, ranking=self.ranking, min_quality=mq, traffic_note=(
            "demo traffic" if demo is not None and demo == float(self._inference.requests_per_day)
            else ""))
        self.shift_line = self._shift_line(mq)
        self.portfolio = (portfolio_total(self.ranking, cands)
                          if self.controls["portfolio"].value else None)
        self.table = budget_table(self.plan, cands, hw)
        self._headline_html.value = _headline_markup(
            self.headline, self.portfolio, self.ranking,
            requests_per_day=float(self._inference.requests_per_day),
            bars=[b.label() for b in self.bars], shift_line=self.shift_line)
        self._table_html.value = _ranking_html(self.ranking)
        self._quarters_html.value = (_quarters_html(self.table)
                                     if self.controls["quarters"].value else "")
        self._download_html.value = self._download_links()
        for name, readout in self._readouts.items():   # the numbers planned, as people say them
            readout.value = _readout(name, getattr(self._inference, name, float("nan")))

    def _draw_chart(self, name: str) -> None:
        """Both charts are HTML/SVG drawn by the browser (they reflow with the page and cost a
        few ms); only the visible tab is rebuilt, the other when it is opened."""
        if name == "ranking":
            self._bars_html.value = _ranking_bars_html(self.ranking, self.headline)
        else:
            cands, hw = self.selection()
            self._quality_html.value = _quality_svg(
                select_rows(self.plan.summary, cands, hw), self.headline,
                cost_col=self._cost_per_unit_col(), quality=self._quality_frame(),
                metric=self.metric if self.quality is not None else "perplexity",
                condition=self.condition if self.quality is not None else "")
        self._stale[name] = False

    def _cost_per_unit_col(self) -> str:
        return ("cost_per_1m_output_tokens_usd" if is_generation_plan(self.plan)
                else "cost_per_1k_requests_usd")

    def _quality_frame(self) -> pd.DataFrame | None:
        """The quality frame the chart plots: the one given, or for a generation plan without
        one, the plan's perplexity per candidate (lower is better, as its rows say)."""
        if self.quality is not None or not self.generation_mode:
            return self.quality
        s = self.plan.summary.drop_duplicates("candidate")
        return pd.DataFrame({"candidate": s["candidate"].astype(str), "metric": "perplexity",
                             "condition": "", "value": pd.to_numeric(s["perplexity"],
                                                                     errors="coerce"),
                             "higher_is_better": False})

    def quality_figure(self) -> Any:
        """The quality-vs-cost chart as a matplotlib Figure (PNG for reports)."""
        cands, hw = self.selection()
        h = self.headline
        gen_only = self.quality is None and self.generation_mode
        return plots.quality_vs_cost(self.plan, cost_col=self._cost_per_unit_col(),
                                     candidates=cands, hardware=hw, quality=self._quality_frame(),
                                     metric="perplexity" if gen_only else self.metric,
                                     condition="" if gen_only else self.condition,
                                     highlight=[h.candidate] if h else None,
                                     highlight_hardware=[h.hardware] if h else None)

    def _download_links(self) -> str:
        """Two links that download the scenario from the page itself (``data:`` URLs)."""
        csv_text, json_text = self.export_payload()
        stem = "effplan_scenario_" + _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        btn = ("display:inline-block;padding:4px 10px;margin:4px 6px 4px 0;border:1px solid "
               "#888;border-radius:3px;background:#f3f3f3;color:#111;text-decoration:none")
        out = []
        from ..views.summary_page import summary_html

        # the one-page summary (answer, assumptions, ranked options, cost over time, quality
        # bars, sources): a standalone page that prints to one page (the PDF of make report)
        page = summary_html(self.plan, ranking=self.ranking, headline=self.headline)
        for kind, text, mime, what in (
                ("csv", csv_text, "text/csv", "CSV"),
                ("json", json_text, "application/json", "JSON"),
                ("html", page, "text/html", "one-page summary")):
            b64 = base64.b64encode(text.encode("utf-8")).decode("ascii")
            name = f"{stem}_summary.html" if kind == "html" else f"{stem}.{kind}"
            out.append(f'<a class="effplan-download effplan-download-{kind}" style="{btn}" '
                       f'download="{name}" href="data:{mime};charset=utf-8;base64,{b64}">'
                       f"&#x2B07; Download {what}</a>")
        return "".join(out)

    # ------------------------------------------------------------------ outputs
    def static_report(self) -> tuple[pd.DataFrame, dict[str, Any]]:
        """(ranking, {name: Figure}) for a report without a kernel (papermill + nbconvert).
        The per-quarter charts show only the chosen option and the baseline option (two bars,
        not every candidate on every hardware). The figures are fresh pyplot-free Figures owned
        by the caller."""
        cands, hw = self.selection()
        h = self.headline
        pairs = {(h.candidate, h.hardware)} if h and h.found else set()
        if h and h.baseline:
            pairs.add((h.baseline, str(h.baseline_hardware)))

        def rows(df: pd.DataFrame) -> pd.DataFrame:
            if not pairs:
                return select_rows(df, cands, hw)
            key = list(zip(df["candidate"].astype(str), df["hardware"].astype(str)))
            return df[[k in pairs for k in key]]

        what = "the choice and the baseline" if len(pairs) == 2 else "the choice"
        figs = {
            "every option, ranked": plots.cost_ranking(self.ranking.assign(
                is_choice=lambda d: (d["candidate"] == (h.candidate if h else None))
                & (d["hardware"] == (h.hardware if h else None))), cost_col="quarter_cost_usd"),
            f"quality vs cost{_PER_UNIT.get(self._cost_per_unit_col(), '')}":
                self.quality_figure(),
            f"cost per quarter: {what}": plots.cost_per_quarter(rows(self.plan.quarterly)),
            f"energy and CO2: {what}": plots.energy_and_co2(rows(self.plan.quarterly)),
            f"instances over time: {what}": plots.instances_over_time(rows(self.plan.monthly)),
        }
        ranking = self.ranking.copy()
        ranking.attrs = dict(self.ranking.attrs)
        return ranking, figs

    def headline_html(self) -> str:
        """The headline card as HTML (for a static report)."""
        return _headline_markup(self.headline, self.portfolio, self.ranking)

    def inputs(self) -> dict[str, Any]:
        """The current scenario as a JSON-able dict (what the JSON download holds)."""
        cands, hw = self.selection()
        return {
            "effplan_scenario_version": 2,
            "exported_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "plan_inputs": _jsonable(self.plan.inputs),
            "selection": {"candidates": cands, "hardware": hw if hw is not None else "all",
                          "min_quality": self._min_quality(), "baseline": self.baseline,
                          "quality_metric": self.quality_choice()[1],
                          "quality_higher_is_better": self.quality_choice()[2]},
            "headline": _jsonable(self.headline.to_dict()) if self.headline else None,
            "headline_sentence": self.headline.sentence() if self.headline else "",
            "portfolio": _jsonable(self.portfolio),
            "months": int(self._inference.months),
            "note": "options are alternatives; costs are never summed except in 'portfolio'",
            # the unit of every column of the CSV download (units live in the names)
            "csv_units": units_of(self.ranking.columns),
        }

    def export_payload(self) -> tuple[str, str]:
        """(CSV text, JSON text) of the scenario: CSV = every option ranked (raw numbers, with
        price / timing / energy sources), JSON = :meth:`inputs`."""
        buf = io.StringIO()
        spreadsheet_frame(self.ranking).to_csv(buf, index=False,  # formulas shown as text,
                                               float_format=CSV_FLOAT_FORMAT)  # no float noise
        return buf.getvalue(), json.dumps(self.inputs(), indent=2, sort_keys=True) + "\n"

    def export(self, directory: str | Path | None = None) -> tuple[Path, Path]:
        """Write :meth:`export_payload` to ``directory`` (default ``export_dir``) as
        ``effplan_scenario_<local time>[_n].csv/.json`` (never overwriting). Returns the paths."""
        out = Path(directory) if directory is not None else self.export_dir
        out.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        stem, n = f"effplan_scenario_{stamp}", 1
        while (out / f"{stem}.csv").exists() or (out / f"{stem}.json").exists():
            n += 1
            stem = f"effplan_scenario_{stamp}_{n}"
        csv_text, json_text = self.export_payload()
        csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
        csv_path.write_text(csv_text, encoding="utf-8")
        json_path.write_text(json_text, encoding="utf-8")
        return csv_path, json_path

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        h = self.headline
        what = h.sentence() if h else "no plan"
        return f"BudgetDashboard({what!r}, options={len(self.ranking)}, error={self.error!r})"


#: numbers whose box gets a readout in a manager's words (the box holds the raw number planned)
_READOUTS = ("requests_per_day", "monthly_growth", "target_utilization")


def _readout(name: str, value: Any) -> str:
    """``monthly_growth`` 0.05 -> "+5% / month", ``target_utilization`` 0.6 -> "60%",
    ``requests_per_day`` 1.905e11 -> "190.5 billion / day" (what the plan uses, as people say it)."""
    from ..planning.assumptions import count_words

    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(v):
        return ""
    if name == "monthly_growth":
        text = f"{100 * v:+.3g}% / month"
    elif name == "target_utilization":
        text = f"{100 * v:.3g}% of capacity"
    else:
        text = f"= {count_words(v)} / day"
    return f'<span style="font-size:0.85em;color:#333;white-space:nowrap">{html_text(text)}</span>'


def _metric_condition(quality: pd.DataFrame, metric: str | None,
                      condition: str | None) -> tuple[str, str]:
    """The metric (default: the first) and condition (default: ``clean`` when measured, else
    the first) of a tidy quality frame; an unknown one raises ValidationError naming it."""
    for col in ("candidate", "metric", "value"):
        if col not in quality.columns:
            raise ValidationError("quality", f"the quality frame has no {col!r} column; pass "
                                             "effplan.evaluate(...) or its .frame")
    metrics = [str(m) for m in pd.unique(quality["metric"].astype(str))]
    if not metrics:
        raise ValidationError("quality", "the quality frame has no rows")
    metric = metrics[0] if metric is None else str(metric)
    if metric not in metrics:
        raise ValidationError("metric", f"{metric!r} not in the quality frame; known: {metrics}")
    if "condition" not in quality.columns:
        return metric, ""
    conds = [str(x) for x in pd.unique(
        quality.loc[quality["metric"].astype(str) == metric, "condition"].astype(str))]
    if condition is None:
        condition = "clean" if "clean" in conds else conds[0]
    if str(condition) not in conds:
        raise ValidationError("condition", f"{condition!r} not measured for {metric!r}; "
                                           f"known: {conds}")
    return metric, str(condition)


# ------------------------------------------------------------------------------ markup
_MUTED = "color:#555"


def _first_sentence(text: str, limit: int = 160) -> tuple[str, str]:
    """(the first sentence, the rest) of a message, so that a note stays one short line."""
    t = " ".join(str(text).split())
    for sep in (". ", "; "):
        i = t.find(sep)
        if 0 < i < limit:
            return t[:i + 1], t[i + 2:]
    return (t, "") if len(t) <= limit else (t[:limit - 1] + "…", t)


def _source_words(provenance: str, energy_source: str, price_source: str | None) -> str:
    """Where the figures came from; ``price_source`` None: said elsewhere (the assumption line)."""
    timing = {"measured": "measured", "entered": "entered by hand",
              "projected": "projected (roofline, not measured)",
              "estimated": "estimated"}.get(provenance, provenance or "unknown")
    energy = {"estimated-tdp": "estimated from rated power (not metered)",
              "projected": "projected (not metered)", "entered": "entered by hand"}.get(
        energy_source, f"measured ({energy_source})" if energy_source else "unknown")
    price = "" if price_source is None else f"price: {html_text(price_source or 'unknown')}; "
    return f"timing {html_text(timing)}; {price}energy {html_text(energy)}"


def _headline_markup(h: Headline | None, portfolio: dict[str, Any] | None,
                     ranking: pd.DataFrame, requests_per_day: float | None = None,
                     bars: Sequence[str] = (), shift_line: str = "") -> str:
    if h is None:
        return ""
    box = ("border:1px solid #c9d7e8;background:#f5f9ff;border-radius:6px;padding:8px 12px;"
           "margin:0 0 8px 0;white-space:normal")
    targets = []
    if h.slo_p95_ms:
        targets.append(f"p95 ≤ {h.slo_p95_ms:g} ms")
    if h.slo_ttft_p95_ms:
        targets.append(f"TTFT p95 ≤ {h.slo_ttft_p95_ms:g} ms")
    if h.slo_tpot_p95_ms:
        targets.append(f"TPOT p95 ≤ {h.slo_tpot_p95_ms:g} ms")
    if h.min_quality:
        targets.append(f"{h.quality_label} {'≥' if h.quality_higher_is_better else '≤'} "
                       f"{h.min_quality:g}")
    targets += list(bars)   # the kept quality bars (effplan.records.bars)
    if h.workload == "generation":   # imported rows without model facts: the fit is not checked
        targets.append("memory NOT checked (no model facts)" if "memory not checked" in (h.message or "")
                       else "the KV cache fits memory")
    tgt = " and ".join(targets) if targets else "no latency or quality target"
    if not h.found:
        return (f'<div class="effplan-headline" data-found="false" style="{box}">'
                f'<div style="font-size:1.3em;color:#a40000"><b>{html_text(h.message)}</b></div>'
                f'<div style="{_MUTED}">Relax the targets ({html_text(tgt)}) or add hardware.'
                "</div></div>")
    band = ""
    if math.isfinite(h.quarter_cost_usd_p10) and math.isfinite(h.quarter_cost_usd_p90):
        band = (f' <span style="{_MUTED};font-size:0.7em">P10–P90 '
                f"{usd(h.quarter_cost_usd_p10)} – {usd(h.quarter_cost_usd_p90)}</span>")
    saving_band = ""
    if math.isfinite(h.savings_usd_p10) and math.isfinite(h.savings_usd_p90):
        lo, hi = sorted((abs(h.savings_usd_p10), abs(h.savings_usd_p90))) if (
            h.savings_usd_p10 >= 0) == (h.savings_usd_p90 >= 0) else (h.savings_usd_p10, h.savings_usd_p90)
        saving_band = (f' <span class="effplan-savings-band" data-savings-usd-p10="{h.savings_usd_p10:.2f}" '
                       f'data-savings-usd-p90="{h.savings_usd_p90:.2f}" style="{_MUTED};font-size:0.75em">'
                       f"P10–P90 of the saving {usd(lo)} – {usd(hi)}</span>")
    if h.keep_baseline:
        savings = ('<div class="effplan-savings effplan-keep-baseline" data-savings-usd="0.00" '
                   'style="font-size:1.2em;color:#1a7f37"><b>Keep the baseline</b>: no option '
                   "that meets the targets is cheaper</div>")
    elif h.baseline and math.isfinite(h.savings_usd):
        good = h.savings_usd >= 0
        verb = "saves" if good else "costs"
        color = "#1a7f37" if good else "#a40000"
        base_is_choice = h.baseline == h.candidate and h.baseline_hardware == h.hardware
        savings = (f'<div class="effplan-savings" data-savings-usd="{h.savings_usd:.2f}" '
                   f'data-savings-pct="{h.savings_rel:.6f}" style="font-size:1.2em;color:{color}">'
                   + ("the baseline itself is the cheapest option that meets the targets"
                      if base_is_choice else
                      f"<b>{verb} {usd(abs(h.savings_usd))} ({abs(h.savings_rel):.0%})</b> per "
                      f"quarter {'against' if good else 'more than'} the baseline "
                      f"<b>{html_text(h.baseline)}</b> on {html_text(str(h.baseline_hardware))}"
                      f" ({usd(h.baseline_quarter_cost_usd)}){saving_band}") + "</div>")
    else:
        savings = (f'<div class="effplan-savings" data-savings-usd="" style="{_MUTED}">'
                   f"{html_text(h.message or 'no baseline: savings not computed')}</div>")
    quality = (f"; {html_text(h.quality_label)} {sig(h.quality)}"
               + ("" if h.quality_higher_is_better else " (lower is better)")
               if math.isfinite(h.quality) else "")
    verb = "Keep" if h.keep_baseline else "Run"
    main = (f'<div style="font-size:1.5em;line-height:1.3">{verb} <b>{html_text(h.candidate)}</b> '
            f"on <b>{html_text(h.hardware)}</b>: "
            f'<span class="effplan-headline-cost" data-quarter-cost-usd="{h.quarter_cost_usd:.2f}">'
            f"<b>{usd(h.quarter_cost_usd)}</b></span> in {html_text(h.quarter)}{band}</div>")
    lead = (f'<div style="{_MUTED};font-size:0.9em">Recommended: the cheapest of '
            f"{h.options_meeting_targets} option(s) (of {h.options}) that meet "
            f"{html_text(tgt)}</div>")
    assumptions = (f'<div class="effplan-assumptions" style="{_MUTED};font-size:0.85em;'
                   f'line-height:1.35;margin-top:2px">{html_text(h.assumptions())}</div>')
    if h.workload == "generation":
        service = (f"{usd(h.cost_per_1m_output_tokens_usd)} per 1M output tokens; "
                   f"{wh(h.energy_per_response_wh)} per response; concurrency "
                   f"{_int(h.concurrency)} (limited by {html_text(h.binding_constraint)})"
                   f"{quality}")
    else:
        service = f"p95 {sig(h.latency_p95_ms)} ms{quality}"
    detail = (f'<div style="{_MUTED};font-size:0.8em">{service}; '
              f"{h.months or ''}-month horizon {usd(h.horizon_cost_usd)}; "
              f"{_source_words(h.provenance, h.energy_source, None)}</div>")
    busy = ""
    if h.stability_note:  # timed on a busy machine: the one statement, beside the figure it qualifies
        busy = (f'<div class="effplan-busy-note" data-timing-spread-rel="{h.timing_spread_rel:.6g}" '
                f'data-background-load="{h.background_load:.6g}" style="{_BUSY_STYLE};margin-top:6px">'
                f"<b>&#x26A0;</b> {html_text(h.stability_note)} Re-measure on a quiet machine for "
                "firm figures.</div>")
    port = ""
    if portfolio is not None:
        rows = "; ".join(f"{html_text(c)} on {html_text(hw)} {usd(v)}"
                         for c, hw, v in portfolio["rows"])
        miss = (f"; not placed (no option meets the targets): "
                f"{html_text(', '.join(portfolio['missing']))}" if portfolio["missing"] else "")
        port = (f'<div class="effplan-portfolio" data-portfolio-usd="'
                f'{portfolio["quarter_cost_usd"]:.2f}" style="margin-top:4px;padding-top:4px;'
                f'border-top:1px dashed #c9d7e8">Portfolio: <b>SUM of {len(portfolio["rows"])} '
                f"models run side by side: {usd(portfolio['quarter_cost_usd'])}</b> in "
                f"{html_text(h.quarter)} <span style=\"{_MUTED};font-size:0.85em\">({rows}{miss})"
                "</span></div>")
    rpd = "" if requests_per_day is None else f' data-requests-per-day="{requests_per_day:.6g}"'
    return (f'<div class="effplan-headline" data-found="true" '
            f'data-candidate="{html_text(h.candidate)}" data-hardware="{html_text(h.hardware)}" '
            f'data-quarter-cost-usd="{h.quarter_cost_usd:.2f}"{rpd} style="{box}">'
            f"{lead}{main}{savings}{assumptions}{detail}{busy}{_shift_markup(shift_line)}{port}</div>")


def _shift_markup(line: str) -> str:
    """The one line saying the choice fails a condition the baseline passes ("" without one)."""
    if not line:
        return ""
    return (f'<div class="effplan-shift-gap" style="{_BUSY_STYLE};margin-top:6px">'
            f"<b>&#x26A0;</b> {html_text(line)}</div>")


_BUSY_STYLE = ("color:#5c3d00;background:#fff4d6;border-left:3px solid #e0a800;padding:3px 8px;"
               "white-space:normal")


def _worst_statement(r: pd.DataFrame) -> str:
    """The statement for the flagged options of a ranking: the largest N and X among them."""
    bad = r["timing_unstable"].map(is_flagged) if "timing_unstable" in r.columns else \
        pd.Series(False, index=r.index)
    sub = r[bad.to_numpy(bool)]
    n, x = worst(zip(sub.get("background_load", pd.Series(dtype=float)),
                     sub.get("timing_spread_rel", pd.Series(dtype=float))))
    return busy_sentence(n, x, up_to=len(sub) > 1)


_TABLE_STYLE = (
    "<style>.effplan-rank{border-collapse:collapse;font-size:0.82em}"
    ".effplan-rank th,.effplan-rank td{padding:2px 6px;text-align:right;"
    "border-bottom:1px solid #ddd;white-space:nowrap}"
    ".effplan-rank td.l,.effplan-rank th.l{text-align:left}"
    ".effplan-rank td.w{white-space:normal;min-width:90px;max-width:170px}"
    ".effplan-rank tr.choice td{background:#fff3e0;font-weight:600}"
    ".effplan-rank tr.base td{background:#f2f2f2}"
    ".effplan-rank tr.miss td{color:#888}</style>")


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _int(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    return f"{f:,.0f}" if math.isfinite(f) else "–"


def _ranking_html(r: pd.DataFrame, fold: bool = True) -> str:
    """The ranked options as a compact HTML table: money first, then the service figures and
    where every number came from. The first rows are shown, the rest folded away."""
    if r.empty:
        return ("<p><i>No options: select at least one candidate that has rows on this "
                "hardware.</i></p>")
    quarter = r.attrs.get("quarter") or "Q1"
    gen = r.attrs.get("workload") == "generation"
    qlabel = str(r.attrs.get("quality_label") or "quality")
    qhead = qlabel + ("" if r.attrs.get("higher_is_better", True) else " ↓")
    if gen:  # per-token serving: what limits concurrency, and the per-token economics
        heads = [("#", "l"), ("option", "l"), (f"{quarter} cost", ""), ("P10–P90", ""),
                 ("vs baseline", ""), ("meets targets", "l w"), ("price from", "l"),
                 ("timing", "l"), ("concurrency", ""), ("binds", "l"), ("$ / 1M out tok", ""),
                 ("energy / response", ""), ("energy from", "l"), (qhead, "")]
    else:
        heads = [("#", "l"), ("option", "l"), (f"{quarter} cost", ""), ("P10–P90", ""),
                 ("vs baseline", ""), ("meets targets", "l w"), ("price from", "l"),
                 ("timing", "l"), ("p95 ms", ""), ("max inst.", ""), ("energy", ""),
                 ("energy from", "l"), ("CO2 kg", ""), (qhead, "")]
    has_band = r["quarter_cost_usd_p10"].notna().any()
    if not has_band:
        heads = [h for h in heads if h[0] != "P10–P90"]
    busy = (r["stability_note"].fillna("").astype(str) if "stability_note" in r.columns
            else pd.Series("", index=r.index))

    def cells(row: Any) -> list[str]:
        vs = ""
        if math.isfinite(float(row["vs_baseline_usd"])):
            vs = ("baseline" if row["is_baseline"] else
                  f"{usd(row['vs_baseline_usd'])} ({float(row['vs_baseline_rel']):+.0%})")
        band = (f"{usd(row['quarter_cost_usd_p10'])}–{usd(row['quarter_cost_usd_p90'])}"
                if math.isfinite(float(row["quarter_cost_usd_p10"])) else "–")
        price = str(row.get("price_source", "") or "")
        if price.startswith("catalog estimate"):   # the estimate says so; its figures on hover
            short = "catalog estimate"
        else:
            short = price if len(price) <= 24 else price[:23] + "…"  # the full text on hover
        comp = str(row.get("comparable_instance", "") or "")
        out = [str(int(row["rank"])), f"{html_text(str(row['candidate']))} @ "
                                      f"{html_text(str(row['hardware']))}",
               usd(row["quarter_cost_usd"])]
        if has_band:
            out.append(band)
        out += [vs, "yes" if row["meets_targets"] else f"no: {html_text(str(row['why_not']))}",
                f'<span title="{html_text(price)}">{html_text(short)}</span>'
                + (f'<br><span class="effplan-comparable" style="{_MUTED};font-size:0.9em" '
                   f'title="the nearest catalog cloud instance">≈ {html_text(comp)}</span>'
                   if comp else ""),
                html_text(str(row.get("provenance", "")))
                + (f' <span class="effplan-busy-flag" title="{html_text(busy[row.name])}">&#x26A0; '
                   f"busy ±{spread_pct(row.get('timing_spread_rel'))}</span>" if busy[row.name] else "")]
        if gen:
            cpm = row.get("cost_per_1m_output_tokens_usd")
            out += [_int(row.get("concurrency")),
                    html_text(str(row.get("binding_constraint", "") or "")),
                    "–" if not _finite(cpm) else f"${float(cpm):,.4g}",
                    wh(row.get("energy_per_response_wh")),
                    html_text(str(row.get("energy_source", ""))), sig(row.get("quality"))]
        else:
            out += [sig(row.get("latency_p95_ms")), _int(row.get("instances_max")),
                    kwh(row.get("energy_kwh")), html_text(str(row.get("energy_source", ""))),
                    sig(row.get("co2_kg")), sig(row.get("quality"))]
        return out

    def tr(row: Any, choice: bool) -> str:
        cls = "choice" if choice else "base" if row["is_baseline"] else (
            "miss" if not row["meets_targets"] else "")
        tds = "".join(f'<td class="{a}">{v}</td>' for (_h, a), v in zip(heads, cells(row)))
        return f'<tr class="{cls}">{tds}</tr>'

    head = "<tr>" + "".join(f'<th class="{a}">{html_text(h)}</th>' for h, a in heads) + "</tr>"
    first_ok = r.index[r["meets_targets"]].min() if r["meets_targets"].any() else None
    rows = [tr(row, i == first_ok) for i, row in r.iterrows()]
    n_top = _TABLE_ROWS if fold else len(rows)
    top = "".join(rows[:n_top])
    rest = ""
    if len(rows) > n_top:
        rest = (f'<details class="effplan-more"><summary>{len(rows) - _TABLE_ROWS} more option(s)'
                f'</summary><table class="effplan-rank">{head}{"".join(rows[_TABLE_ROWS:])}'
                "</table></details>")
    note = (f'<div style="{_MUTED};font-size:0.8em;white-space:normal">Options are alternatives (never added up). '
            f"{html_text(quarter)} cost: the first quarter of the plan"
            + ("; P10–P90: Monte-Carlo range (traffic, growth, price"
               + (", timing doubt" if (busy != "").any() else "") + ")" if has_band else "")
            + "; vs baseline: difference to the baseline's cost in the same quarter.</div>")
    if (busy != "").any():
        note += (f'<div class="effplan-busy-note" style="{_BUSY_STYLE};font-size:0.8em">'
                 f"<b>&#x26A0; busy</b>: {int((busy != '').sum())} of {len(r)} option(s) are planned "
                 f"from timings that are not stable. {html_text(_worst_statement(r))}</div>")
    return (f'{_TABLE_STYLE}<div style="overflow-x:auto;max-width:100%">'
            f'<table class="effplan-rank">{head}{top}</table>{rest}</div>{note}')


def _ranking_bars_html(r: pd.DataFrame, h: Headline | None, max_rows: int = 10) -> str:
    """Every option as a horizontal bar, cheapest first (HTML/CSS, drawn by the browser: long
    names are cut with an ellipsis and never overprint; the chart reflows with the page). The
    chosen option is orange, the baseline grey, projected rows hatched; P10-P90 as a whisker.
    Costs spanning more than 1,000x use a log scale (said under the chart)."""
    cost = pd.to_numeric(r.get("quarter_cost_usd"), errors="coerce") if len(r) else pd.Series(dtype=float)
    have = r[cost.notna()].assign(cq=cost[cost.notna()]).sort_values("cq", kind="stable")
    if have.empty:
        return '<p><i>No option has a cost (all infeasible or unpriced).</i></p>'
    shown = have.head(max_rows)
    hi_col = shown["quarter_cost_usd_p90"] if "quarter_cost_usd_p90" in shown else shown["cq"]
    top = float(np.nanmax(np.r_[shown["cq"].to_numpy(float), pd.to_numeric(hi_col, errors="coerce").to_numpy(float)]))
    low = float(shown["cq"].min())
    log = low > 0 and top / low > 1e3
    lo_ref = low / 2 if log else 0.0

    def pos(v: Any) -> float:
        try:
            x = float(v)
        except (TypeError, ValueError):
            return float("nan")
        if not math.isfinite(x) or top <= 0:
            return float("nan")
        if log:
            return 100.0 * max(0.0, math.log10(max(x, lo_ref) / lo_ref)) / math.log10(top * 1.05 / lo_ref)
        return 100.0 * x / (top * 1.05)

    rows = []
    for row in shown.itertuples(index=False):
        d = row._asdict()
        choice = bool(h and h.found and d["candidate"] == h.candidate and d["hardware"] == h.hardware)
        base = bool(d.get("is_baseline"))
        color = "#f28e2b" if choice else "#9e9e9e" if base else "#4e79a7"
        fill = color
        if str(d.get("provenance")) == "projected":
            fill = (f"repeating-linear-gradient(45deg,{color} 0 5px,#ffffff 5px 7px)")
        name = f"{d['candidate']} @ {d['hardware']}"
        tag = (" ← chosen" if choice else " baseline" if base else "") + (
            " ⚠" if is_flagged(d.get("timing_unstable")) else "")
        w_ = pos(d["cq"])
        p10, p90 = pos(d.get("quarter_cost_usd_p10")), pos(d.get("quarter_cost_usd_p90"))
        whisker = ""
        if math.isfinite(p10) and math.isfinite(p90):
            whisker = (f'<div style="position:absolute;left:{p10:.2f}%;width:{max(p90 - p10, 0.3):.2f}%;'
                       'top:50%;height:0;border-top:1.5px solid #222"></div>')
        rows.append(
            '<div style="display:flex;align-items:center;margin:3px 0">'
            f'<div title="{html_text(name)}" style="flex:0 0 36%;max-width:260px;'
            'overflow:hidden;text-overflow:ellipsis;white-space:nowrap;text-align:right;'
            f'padding-right:6px;font-size:0.85em{";font-weight:600" if choice else ""}">'
            f"{html_text(name)}</div>"
            '<div style="flex:1 1 auto;position:relative;height:16px;min-width:60px">'
            f'<div style="position:absolute;left:0;width:{w_:.2f}%;top:1px;bottom:1px;'
            f'background:{fill};border:1px solid {color}"></div>{whisker}'
            f'<span style="position:absolute;left:calc({min(max(w_, p90 if math.isfinite(p90) else 0), 78):.2f}% + 4px);'
            f'top:0;font-size:0.75em;line-height:16px;white-space:nowrap;'
            f'background:rgba(255,255,255,0.85){";font-weight:600" if choice else ""}">'
            f"{usd(d['cq'])}{html_text(tag)}</span></div></div>")
    missing = int(cost.isna().sum())
    notes = ["orange: chosen", "grey: baseline", "hatched: projected (not measured)"]
    if "timing_unstable" in shown.columns and shown["timing_unstable"].map(is_flagged).any():
        notes.append("⚠: timed on a busy machine (see the note above)")
    if have["quarter_cost_usd_p10"].notna().any():
        notes.append("whisker: P10–P90")
    if log:
        notes.append("log scale (costs span more than 1,000×)")
    if len(have) > max_rows:
        notes.append(f"{len(have) - max_rows} more expensive option(s) in the table")
    if missing:
        notes.append(f"{missing} option(s) without a cost (see the table)")
    quarter = html_text(r.attrs.get("quarter") or "Q1")
    return (f'<div class="effplan-bars" data-log="{str(log).lower()}" style="padding:4px 0">'
            f'<div style="font-weight:600;margin-bottom:2px">Cost in {quarter} per option, '
            "cheapest first (alternatives, not a sum)</div>"
            + "".join(rows)
            + f'<div style="{_MUTED};font-size:0.78em;margin-top:4px;white-space:normal">'
            f'{"; ".join(notes)}</div></div>')


_SVG_W, _SVG_H = 600, 320
#: the unit of the quality chart's cost axis, from the column plotted
_PER_UNIT = {"cost_per_1k_requests_usd": " per 1,000 requests",
             "cost_per_1m_output_tokens_usd": " per 1M output tokens"}
_SVG_M = {"l": 64, "r": 16, "t": 26, "b": 46}
_CHAR_PX = 6.0   # average width of a character at the labels' 11 px font (for placement)


def _quality_svg(summary: pd.DataFrame, h: Headline | None, *,
                 cost_col: str = "cost_per_1k_requests_usd", quality: pd.DataFrame | None = None,
                 metric: str | None = None, condition: str | None = None) -> str:
    """Quality against cost per 1,000 requests as inline SVG (drawn by the browser, scales
    with the page), with the Pareto front, the chosen option ringed and point labels placed
    so that they do not overprint (same rule as :func:`effplan.plots.place_labels`, with
    text widths estimated from the character count). Projected points are hollow."""
    if (quality is None and "quality" not in summary.columns) or cost_col not in summary.columns:
        return "<p><i>No quality scores: nothing to place.</i></p>"
    # the summary's single quality column, or metric / condition of a tidy quality frame
    df, ylabel, hib = plots.quality_points(summary, quality, metric=metric, condition=condition)
    x = pd.to_numeric(df[cost_col], errors="coerce").to_numpy(float)
    y = pd.to_numeric(df["_q"], errors="coerce").to_numpy(float)
    ok = np.isfinite(x) & np.isfinite(y)
    missing = int((~ok).sum())
    df, x, y = df[ok], x[ok], y[ok]
    if len(df) == 0:
        return "<p><i>No option has both a quality score and a cost.</i></p>"
    W, H, M = _SVG_W, _SVG_H, _SVG_M
    pw, ph = W - M["l"] - M["r"], H - M["t"] - M["b"]
    pos = x[x > 0]
    log = pos.size >= 2 and pos.max() / pos.min() > 1e3 and (x > 0).all()
    if log:
        lo, hi = np.log10(x.min()) - 0.2, np.log10(x.max()) + 0.2
        fx = lambda v: M["l"] + pw * (np.log10(v) - lo) / (hi - lo)  # noqa: E731
        ticks = 10.0 ** np.arange(np.ceil(lo), np.floor(hi) + 1)
    else:
        span = float(x.max() - 0.0) or (abs(float(x.max())) or 1.0)
        lo, hi = 0.0, float(x.max()) + 0.25 * span
        fx = lambda v: M["l"] + pw * (v - lo) / (hi - lo)  # noqa: E731
        from matplotlib.ticker import MaxNLocator

        ticks = np.array([t for t in MaxNLocator(5).tick_values(lo, hi) if lo <= t <= hi])
    ylo, yhi = float(y.min()), float(y.max())
    pad = (yhi - ylo) * 0.15 or max(abs(yhi) * 0.01, 1e-3)
    ylo, yhi = ylo - pad, yhi + pad
    fy = lambda v: M["t"] + ph * (1 - (v - ylo) / (yhi - ylo))  # noqa: E731
    from matplotlib.ticker import MaxNLocator

    yt = [t for t in MaxNLocator(5).tick_values(ylo, yhi) if ylo <= t <= yhi]
    parts = [f'<svg class="effplan-quality-svg" viewBox="0 0 {W} {H}" width="100%" '
             f'style="max-width:{W}px;font-family:sans-serif;font-size:11px" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<rect x="{M["l"]}" y="{M["t"]}" width="{pw}" height="{ph}" fill="none" '
             'stroke="#888"/>']
    for t, lab in zip(ticks, plots.money_labels(ticks)):
        X = fx(t)
        parts.append(f'<line x1="{X:.1f}" x2="{X:.1f}" y1="{M["t"]}" y2="{M["t"] + ph}" '
                     'stroke="#eee"/>')
        parts.append(f'<text x="{X:.1f}" y="{M["t"] + ph + 14}" text-anchor="middle">'
                     f"{html_text(lab)}</text>")
    ylabels = [sig(v) for v in yt]
    if len(set(ylabels)) < len(ylabels):
        ylabels = [f"{v:.4g}" for v in yt]
    for t, lab in zip(yt, ylabels):
        Y = fy(t)
        parts.append(f'<line x1="{M["l"]}" x2="{M["l"] + pw}" y1="{Y:.1f}" y2="{Y:.1f}" '
                     'stroke="#eee"/>')
        parts.append(f'<text x="{M["l"] - 6}" y="{Y + 4:.1f}" text-anchor="end">'
                     f"{html_text(lab)}</text>")
    xlabel = plots.cost_axis_label(cost_col) + (" — log scale" if log else "")
    parts.append(f'<text x="{M["l"] + pw / 2:.0f}" y="{H - 8}" text-anchor="middle">'
                 f"{html_text(xlabel)}</text>")
    parts.append(f'<text transform="translate(14,{M["t"] + ph / 2:.0f}) rotate(-90)" '
                 f'text-anchor="middle">{html_text(ylabel)}</text>')
    better = "up" if hib else "down"
    per = _PER_UNIT.get(cost_col, "")
    parts.append(f'<text x="{M["l"]}" y="16" font-weight="bold" font-size="12px">'
                 f"{html_text(ylabel.replace(' (lower is better)', ''))} vs cost{per} "
                 f"({better} and to the left is better)</text>")
    front = plots.pareto_front(df.assign(_x=x, _y=y), "_x", "_y", higher_is_better=hib)
    if len(front):
        pts, prev = [], None
        for fxv, fyv in zip(front["_x"], front["_y"]):
            X, Y = fx(fxv), fy(fyv)
            if prev is not None:
                pts.append(f"{X:.1f},{prev:.1f}")
            pts.append(f"{X:.1f},{Y:.1f}")
            prev = Y
        parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#59a14f" '
                     'stroke-width="1.5"/>')
    boxes: list[tuple[float, float, float, float]] = []
    groups: dict[tuple[float, float], list[str]] = {}
    for r, xv, yv in zip(df.itertuples(index=False), x, y):
        d = r._asdict()
        X, Y = fx(xv), fy(yv)
        choice = bool(h and h.found and d["candidate"] == h.candidate
                      and d["hardware"] == h.hardware)
        hollow = str(d.get("provenance")) == "projected"
        ok_slo = d.get("slo_met") is not False and d.get("feasible") is not False
        color = "#4e79a7" if ok_slo else "#e15759"
        tip = html_text(f"{d['candidate']} @ {d['hardware']}: {usd(xv)}{per}, "
                          f"{ylabel} {sig(yv)}")
        parts.append(f'<circle cx="{X:.1f}" cy="{Y:.1f}" r="5" stroke="{color}" '
                     f'stroke-width="1.5" fill="{"white" if hollow else color}">'
                     f"<title>{tip}</title></circle>")
        if choice:
            parts.append(f'<circle cx="{X:.1f}" cy="{Y:.1f}" r="10" stroke="#f28e2b" '
                         'stroke-width="2.5" fill="none"/>')
        groups.setdefault((round(X, 1), round(Y, 1)), []).append(
            f"{d['candidate']} @ {d['hardware']}")
        boxes.append((X - 5, Y - 5, X + 5, Y + 5))
    offsets = [(8, -4, "start"), (8, 12, "start"), (-8, -4, "end"), (-8, 12, "end"),
               (0, -10, "middle"), (0, 20, "middle")]
    offsets += [(dx, dy * k, a) for k in (2, 3, 4) for dx, dy, a in offsets[:4]]
    unlabelled: list[str] = []
    for (X, Y), names in sorted(groups.items()):
        uniq = list(dict.fromkeys(names))
        text = ", ".join(uniq)
        if len(text) > 60 and len(uniq) > 2:
            text = ", ".join(uniq[:2]) + f" +{len(uniq) - 2} more"
        w_ = _CHAR_PX * len(text)
        best = None
        for dx, dy, anchor in offsets:
            x0 = X + dx - {"start": 0.0, "middle": w_ / 2, "end": w_}[anchor]
            y1 = Y + dy
            bb = (x0, y1 - 11, x0 + w_, y1 + 3)
            inside = (bb[0] >= M["l"] and bb[2] <= M["l"] + pw and bb[1] >= M["t"]
                      and bb[3] <= M["t"] + ph)
            if inside and not any(min(bb[2], o[2]) > max(bb[0], o[0])
                                  and min(bb[3], o[3]) > max(bb[1], o[1]) for o in boxes):
                best = (x0, y1, bb)
                break
        if best is None:  # no free spot: no label rather than an overprinted one
            unlabelled.append(text)
            continue
        x0, y1, bb = best
        boxes.append(bb)
        parts.append(f'<text x="{x0:.1f}" y="{y1:.1f}" font-size="11px">{html_text(text)}'
                     "</text>")
    parts.append("</svg>")
    notes = ["green: Pareto front (cheaper and better)", "hollow: projected (not measured)",
             "orange ring: chosen", "red: misses the latency target"]
    if unlabelled:
        notes.append("too crowded to label (hover a point for its name): "
                     + "; ".join(html_text(u) for u in unlabelled))
    if missing:
        notes.append(f"{missing} option(s) without a cost or a quality score not shown")
    return ('<div class="effplan-quality">' + "".join(parts)
            + f'<div style="{_MUTED};font-size:0.78em;white-space:normal">{"; ".join(notes)}'
            "</div></div>")


def _quarters_html(table: pd.DataFrame) -> str:
    """The quarter-by-quarter rows, folded away (details on demand)."""
    if table.empty:
        return ""
    from ..formatting import styled

    from ..views.people_tables import people_view

    cols = [c for c in table.columns if c not in ("note",) or table["note"].astype(str).ne("").any()]
    view, left_out = people_view(table[cols])   # fitted: timing (busy mark) kept, words for names
    body = styled(view).to_html()
    full = styled(table[cols]).to_html()
    return ('<details class="effplan-quarters" open><summary>Quarter by quarter, every option '
            f"({len(table)} rows)</summary>"
            f'<div style="overflow-x:auto;max-width:100%;font-size:0.8em">{body}</div>'
            + (f'<details class="effplan-all-columns"><summary>all {len(cols)} columns</summary>'
               f'<div style="overflow-x:auto;max-width:100%;font-size:0.8em">{full}</div></details>'
               if left_out else "") + "</details>")


def _snap4(v: float) -> float:
    """``v`` rounded to 4 significant figures (9,549,925.86 -> 9,550,000)."""
    if not math.isfinite(v) or v <= 0:
        return v
    step = 10.0 ** (math.floor(math.log10(v)) - 3)
    return float(round(v / step) * step)


def _fmt_price_text(v: Any) -> str:
    """A price as text that parses back to the same number (``2``, ``3.5``, ``1234.567``)."""
    try:
        return f"{float(v):.15g}"
    except (TypeError, ValueError):
        return str(v)


def _jsonable(obj: Any) -> Any:
    """Dataclasses, mappings, numpy scalars made JSON-safe (NaN/inf -> None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
