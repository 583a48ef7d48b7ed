"""The what-if budget dashboard: ``BudgetDashboard(measurements, ...)``.

One object, usable in JupyterLab, classic notebooks and Voila, built on ipywidgets 8::

    from effplan.widgets import BudgetDashboard
    dash = BudgetDashboard(measurements, inference=effplan.InferenceWorkload(2e6))
    dash            # last value of a cell: shows the dashboard

Design
------
* Sliders use ``continuous_update=False`` and text inputs fire on Enter / leaving the field, so
  one gesture is one re-plan.
* The measurements are prepared once (:func:`effplan.planning.prepare`, held as ``prepared``);
  a workload or price change re-plans from them (:func:`effplan.plan`) and redraws; a change of the
  candidate selection or of the hardware shown only redraws (the plan already has every row).
* Charts are drawn into two long-lived ``matplotlib.figure.Figure`` objects (never pyplot: no
  figure leaks however many updates) and shown as PNG ``widgets.Image`` of fixed size. PNG
  images work the same in JupyterLab, Voila and in HTML exported with the widget state.
* Invalid input (utilization 0, a price that is not a number, ...) never raises out of a
  callback: the message is shown in the dashboard (``dash.error``) and the last good plan stays.
* ``dash.last_update_ms`` (split into ``last_plan_ms`` and ``last_draw_ms``) is the time of the
  last callback, shown in the footer; ``benchmarks/dashboard.py`` measures it.

Totals
------
``dash.total_usd`` (shown in ``<span class="effplan-total" data-total-usd="...">``) is the
inference cost over the WHOLE plan horizon (every month of ``InferenceWorkload.months``, i.e. the
sum of all quarter columns of the table) plus the training cost over the same horizon, summed
over the rows of the table: the selected candidates on the selected hardware. Each row's total
is the plan's ``total_cost_usd`` (one definition, :func:`effplan.planning.total_cost_usd`).
Rows without a cost (infeasible: no batch size meets the latency target; no price; or a
training part without a cost) are left out and listed next to the total, never counted as 0. Select the candidate(s) you will deploy to read it as a
budget; with several selected it is the cost of running all of them.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html
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

from . import planning as pm
from .planning.frames import budget_table
from . import plots
from .errors import EffplanError, EffplanWarning, ValidationError

__all__ = ["BudgetDashboard", "budget_table", "parse_price", "ALL_HARDWARE", "TOTAL_DEFINITION"]

log = logging.getLogger(__name__)

#: Dropdown entry that shows every hardware in the plan at once.
ALL_HARDWARE = "(all hardware)"

_FIG_SIZE_IN = (7.5, 3.8)
_DPI = 96
_IMG_LAYOUT = {"width": f"{int(_FIG_SIZE_IN[0] * _DPI)}px", "height": f"{int(_FIG_SIZE_IN[1] * _DPI)}px"}

# Controls that only change what is shown (no re-plan needed).
_VIEW_CONTROLS = ("hardware", "candidates")


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
            name, sep, val = part.partition("=")
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


class BudgetDashboard:
    """Sliders and dropdowns for a quarterly inference budget, with live table and charts.

    Parameters
    ----------
    measurements:
        The tidy measurements frame (:mod:`effplan.schema`) or anything with ``to_frame()``.
    inference, training, prices, hardware, samples, seed, catalog:
        Passed to :func:`effplan.plan` (``catalog=load_catalog(include_this_machine=True)``
        prices the machine you measured on). ``inference`` and ``prices`` give the starting values
        of the controls (defaults: ``InferenceWorkload(requests_per_day=100_000)`` and
        ``Prices()``); ``hardware`` lists catalog hardware to project to besides the measured.
    export_dir:
        Folder for :meth:`export` (created on first export).

    Attributes for code and tests: ``controls`` (name -> widget), ``plan`` (current
    :class:`~effplan.planning.Plan`), ``prepared`` (the
    :class:`~effplan.planning.PreparedMeasurements` every re-plan reuses), ``table`` (the budget
    table shown, see :func:`effplan.planning.budget_table`),
    ``total_usd`` (see the module docstring), ``error`` (validation message shown, ``""`` when
    none), ``warnings`` (plan warnings shown, e.g. a missing price), ``last_update_ms`` /
    ``last_plan_ms`` / ``last_draw_ms``, ``widget`` (the top-level Box).

    The price box applies to the hardware selected in the dropdown (empty = catalog price);
    ``name=price; name2=price`` sets several at once.
    """

    def __init__(self, measurements: Any, *, inference: Any = None, training: Any = None,
                 prices: Any = None, hardware: Any = None, samples: int = 200, seed: int = 0,
                 catalog: Any = None, export_dir: str | Path = "exports") -> None:
        import ipywidgets as w

        if hasattr(measurements, "to_frame") and not isinstance(measurements, pd.DataFrame):
            measurements = measurements.to_frame()
        if not isinstance(measurements, pd.DataFrame):
            raise ValidationError("measurements", "expected a DataFrame or Measurements, got "
                                                  f"{type(measurements).__name__}")
        self.measurements = measurements
        self._inference0 = inference if inference is not None else pm.InferenceWorkload(
            requests_per_day=100_000)
        self._training = training
        self._prices0 = prices if prices is not None else pm.Prices()
        self._hardware_arg = hardware
        self.samples = int(samples)
        self.seed = int(seed)
        self.catalog = catalog
        self.export_dir = Path(export_dir)
        #: the measurements prepared once (:class:`effplan.planning.PreparedMeasurements`) and
        #: passed to every re-plan; built by the first plan
        self.prepared: Any = None
        self._prepare_warnings: list[str] = []

        self.table: pd.DataFrame = pd.DataFrame()
        self.total_usd: float = float("nan")
        self.error: str = ""
        self.warnings: list[str] = []
        self.last_update_ms = float("nan")
        self.last_numbers_ms = float("nan")
        self.last_plan_ms = float("nan")
        self.last_draw_ms = float("nan")
        self._hold = False
        # Resolved starting figures: a slider left at its start keeps the caller's setting
        # (e.g. a grid region, with its source) instead of turning it into an "entered" number.
        self._grid0 = float(self._prices0.grid_intensity_gco2_per_kwh)
        self._elec0 = float(self._prices0.electricity_price_per_kwh)

        # The first plan must succeed: a bad starting workload is the caller's error, raise it.
        self._inference = self._inference0
        self._prices = self._prices0
        self.plan: Any = self._make_plan(self._inference0, self._prices0)

        self._figs = {name: _new_figure() for name in ("cost", "quality")}
        self.controls: dict[str, Any] = self._build_controls(w)
        self._total_html = w.HTML()
        self._total_html.add_class("effplan-total-box")
        self._error_html = w.HTML()
        self._error_html.add_class("effplan-error")
        self._warning_html = w.HTML()
        self._warning_html.add_class("effplan-warning")
        self._table_html = w.HTML(layout=w.Layout(width="100%", overflow="auto"))
        self._table_html.add_class("effplan-table")
        self._status_html = w.HTML()
        self._status_html.add_class("effplan-status")
        self._images = {name: w.Image(format="png", layout=w.Layout(**_IMG_LAYOUT,
                                                                    object_fit="contain"))
                        for name in self._figs}
        for name, img in self._images.items():
            img.add_class(f"effplan-chart-{name}")
        self.widget = self._build_layout(w)
        for name, ctl in self.controls.items():
            if name == "export":
                ctl.on_click(self._on_export_click)
            else:
                ctl.observe(self._on_change, names="value")
        self._sync_price_box()
        self._show_warnings()
        self._redraw_timed(plan_ms=0.0)

    # ------------------------------------------------------------------ construction
    def _build_controls(self, w: Any) -> dict[str, Any]:
        inf, pr = self._inference0, self._prices0
        rpd = float(inf.requests_per_day)
        lo = min(1, math.floor(math.log10(max(rpd, 1.0))))
        hi = max(10, math.ceil(math.log10(max(rpd, 1.0))))
        slo = inf.slo_p95_ms
        c: dict[str, Any] = {
            "requests_per_day": w.FloatLogSlider(
                value=max(rpd, 10.0 ** lo), base=10, min=lo, max=hi, step=0.01,
                description="Requests / day", readout_format=".3s", continuous_update=False),
            "monthly_growth": w.FloatSlider(
                value=float(inf.monthly_growth), min=min(-0.2, inf.monthly_growth),
                max=max(0.5, inf.monthly_growth), step=0.01,
                description="Growth / month", readout_format=".0%", continuous_update=False),
            "peak_to_average": w.FloatSlider(
                value=float(inf.peak_to_average), min=1.0, max=max(5.0, float(inf.peak_to_average)),
                step=0.1, description="Peak / average", continuous_update=False),
            "months": w.IntSlider(
                value=int(inf.months), min=1, max=max(36, int(inf.months)), step=1,
                description="Horizon (months)", continuous_update=False),
            "slo_p95_ms": w.FloatText(
                value=float(slo) if slo else 0.0, description="p95 target (ms)",
                tooltip="p95 batch latency target; 0 = no target", continuous_update=False),
            "target_utilization": w.FloatSlider(
                value=float(inf.target_utilization), min=0.0, max=1.0, step=0.05,
                description="Target utilization", readout_format=".0%", continuous_update=False),
            "price_per_hour": w.Text(
                value="", placeholder="catalog price", description="Price $/instance-h",
                continuous_update=False),
            "electricity_usd_per_kwh": w.BoundedFloatText(
                value=self._elec0, min=0.0, max=10.0, step=0.01,
                description="Electricity $/kWh", continuous_update=False,
                disabled=pr.mode != "on-prem"),
            "pue": w.FloatSlider(
                value=float(pr.pue), min=1.0, max=max(2.5, float(pr.pue)), step=0.05,
                description="PUE", continuous_update=False),
            "grid_gco2_per_kwh": w.FloatSlider(
                value=self._grid0, min=0.0, max=max(1000.0, self._grid0), step=5,
                description="Grid gCO2/kWh", readout_format=".0f", continuous_update=False),
        }
        hw_opts = self._hardware_options(self.plan)
        c["hardware"] = w.Dropdown(options=hw_opts, value=self._default_hardware(self.plan, hw_opts),
                                   description="Hardware")
        cands = self._candidate_options(self.plan)
        c["candidates"] = w.SelectMultiple(options=cands, value=tuple(cands),
                                           rows=min(6, max(3, len(cands))), description="Candidates")
        c["export"] = w.Button(description="Export scenario (CSV + JSON)", icon="download",
                               tooltip="Write the budget rows (CSV) and the inputs (JSON) to "
                                       f"{self.export_dir}/")
        style = {"description_width": "150px"}
        for name, ctl in c.items():
            ctl.add_class(f"effplan-{name}")
            ctl.layout = w.Layout(width="330px")
            if name != "export":
                ctl.style = style
        if pr.mode != "on-prem":
            c["electricity_usd_per_kwh"].tooltip = "used in on-prem mode only (Prices(mode='on-prem'))"
        return c

    def _build_layout(self, w: Any) -> Any:
        c = self.controls

        def section(title: str) -> Any:
            return w.HTML(f"<b>{html.escape(title)}</b>")

        left = w.VBox([
            section("Traffic"), c["requests_per_day"], c["monthly_growth"], c["peak_to_average"],
            c["months"],
            section("Service"), c["slo_p95_ms"], c["target_utilization"], c["hardware"],
            c["candidates"],
            section("Prices and carbon"), c["price_per_hour"], c["electricity_usd_per_kwh"],
            c["pue"], c["grid_gco2_per_kwh"],
            c["export"],
        ], layout=w.Layout(width="345px", flex="0 0 345px"))
        right = w.VBox([self._total_html, self._error_html, self._warning_html, self._table_html,
                        self._images["cost"], self._images["quality"], self._status_html],
                       layout=w.Layout(flex="1 1 0%", min_width="0", overflow="auto"))
        box = w.HBox([left, right], layout=w.Layout(width="100%", align_items="flex-start"))
        box.add_class("effplan-dashboard")
        return box

    @staticmethod
    def _hardware_options(plan: Any) -> list[str]:
        hws = [str(h) for h in pd.unique(plan.summary["hardware"].astype(str))]
        hws = [h for h in pd.unique(plan.quarterly["hardware"].astype(str))] or hws
        return hws + ([ALL_HARDWARE] if len(hws) > 1 else [])

    @staticmethod
    def _default_hardware(plan: Any, options: Sequence[str]) -> str:
        """First hardware that was measured/entered (not projected), else the first option."""
        q = plan.quarterly
        own = q.loc[q["provenance"].astype(str) != "projected", "hardware"]
        return str(own.iloc[0]) if len(own) else str(options[0])

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
            new_plan = pm.plan(self.prepared, inference=inference, training=self._training,
                               prices=prices, samples=self.samples, seed=self.seed)
        self.warnings = list(dict.fromkeys(
            self._prepare_warnings
            + [str(wm.message) for wm in caught if issubclass(wm.category, EffplanWarning)]))
        for wm in caught:  # anything not ours goes on to the usual handlers
            if not issubclass(wm.category, EffplanWarning):
                warnings.warn_explicit(wm.message, wm.category, wm.filename, wm.lineno)
        return new_plan

    def _read_inputs(self) -> tuple[Any, Any]:
        """Workload and prices (with the price overrides) from the controls.

        Raises :class:`ValidationError` naming the field for bad input; the dataclasses validate
        the rest (their ValidationError names the field too).
        """
        c = self.controls
        util = float(c["target_utilization"].value)
        if not 0.0 < util <= 1.0:
            raise ValidationError("target_utilization",
                                  f"{util:g} must be in (0, 1]: the share of each replica's "
                                  "measured throughput you plan to use")
        slo = float(c["slo_p95_ms"].value)
        if not math.isfinite(slo) or slo < 0:
            raise ValidationError("slo_p95_ms", f"{slo:g} must be >= 0 (0 = no latency target)")
        inference = dataclasses.replace(
            self._inference0, requests_per_day=float(c["requests_per_day"].value),
            monthly_growth=float(c["monthly_growth"].value),
            peak_to_average=float(c["peak_to_average"].value),
            slo_p95_ms=slo if slo > 0 else None, target_utilization=util,
            months=int(c["months"].value))
        overrides = self._overrides_from_box(c["price_per_hour"].value)
        grid = float(c["grid_gco2_per_kwh"].value)
        elec = float(c["electricity_usd_per_kwh"].value)
        prices = dataclasses.replace(
            self._prices0, price_per_hour=overrides, pue=float(c["pue"].value),
            grid_gco2_per_kwh=self._prices0.grid_gco2_per_kwh if grid == self._grid0 else grid,
            electricity_usd_per_kwh=(self._prices0.electricity_usd_per_kwh if elec == self._elec0
                                     else elec))
        return inference, prices

    def _overrides_from_box(self, text: str) -> dict[str, float]:
        """Price overrides after applying the price box to the selected hardware."""
        parsed = parse_price(text)
        out = dict(self._prices.price_per_hour)
        if isinstance(parsed, dict):
            out.update(parsed)
            return out
        hw = self.controls["hardware"].value
        targets = (self._hardware_options(self.plan)[:-1] if hw == ALL_HARDWARE else [hw])
        for h in targets:
            if parsed is None:
                out.pop(h, None)
            else:
                out[h] = parsed
        return out

    # ------------------------------------------------------------------ callbacks
    def _on_change(self, change: Mapping[str, Any]) -> None:
        if self._hold:
            return
        owner = change.get("owner") if isinstance(change, Mapping) else getattr(change, "owner", None)
        if owner is self.controls["hardware"]:
            self._sync_price_box()
        view_only = any(owner is self.controls[n] for n in _VIEW_CONTROLS)
        self.update(replan=not view_only)

    def _on_export_click(self, _button: Any) -> None:
        try:
            csv_path, json_path = self.export()
        except (OSError, EffplanError, ValueError) as exc:
            self._set_error(f"export failed: {exc}")
            return
        self._status_html.value = (f"<span>exported <code>{html.escape(str(csv_path))}</code> and "
                                   f"<code>{html.escape(str(json_path))}</code></span>")

    def update(self, *, replan: bool = True) -> bool:
        """Re-plan (when ``replan``) and redraw from the controls; True when it succeeded.

        Never raises for bad input: a :class:`ValidationError` (or any ``ValueError`` from the
        planner) is shown in the dashboard and the last good plan stays on screen. An unexpected
        error is shown with its type and logged with its traceback.
        """
        t0 = time.perf_counter()
        plan_ms = 0.0
        try:
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
            self._set_error(str(exc))
        except Exception as exc:  # shown to the user with its type; the traceback goes to the log
            log.exception("effplan dashboard update failed")
            self._set_error(f"internal error ({type(exc).__name__}): {exc}")
        self.last_update_ms = (time.perf_counter() - t0) * 1e3
        return False

    def set(self, **values: Any) -> bool:
        """Set several controls with one re-plan, e.g. ``dash.set(pue=1.3, months=24)``.

        Returns what :meth:`update` returns (False when the input was rejected; see ``error``).
        """
        unknown = [k for k in values if k not in self.controls or k == "export"]
        if unknown:
            raise ValidationError(unknown[0], f"no such control; known: "
                                              f"{sorted(k for k in self.controls if k != 'export')}")
        self._hold = True
        try:
            for k, v in values.items():
                self.controls[k].value = tuple(v) if k == "candidates" else v
            if "hardware" in values and "price_per_hour" not in values:
                self._sync_price_box()
        finally:
            self._hold = False
        return self.update(replan=bool(set(values) - set(_VIEW_CONTROLS)))

    def _sync_options(self) -> None:
        """Keep the hardware / candidate options in step with the plan's rows."""
        c = self.controls
        self._hold = True
        try:
            hw = self._hardware_options(self.plan)
            if list(c["hardware"].options) != hw:
                cur = c["hardware"].value
                c["hardware"].options = hw
                c["hardware"].value = cur if cur in hw else self._default_hardware(self.plan, hw)
            cands = self._candidate_options(self.plan)
            if list(c["candidates"].options) != cands:
                cur = [x for x in c["candidates"].value if x in cands]
                c["candidates"].options = cands
                c["candidates"].value = tuple(cur or cands)
        finally:
            self._hold = False

    def _sync_price_box(self) -> None:
        """Show the selected hardware's override (empty = catalog price, shown as placeholder)."""
        box = self.controls["price_per_hour"]
        hw = self.controls["hardware"].value
        self._hold = True
        try:
            if hw == ALL_HARDWARE:
                vals = {self._prices.price_per_hour.get(h) for h in self._hardware_options(self.plan)[:-1]}
                box.value = _fmt_price_text(vals.pop()) if len(vals) == 1 and None not in vals else ""
                box.placeholder = "per-hardware prices"
            else:
                ov = self._prices.price_per_hour.get(hw)
                box.value = "" if ov is None else _fmt_price_text(ov)
                s = self.plan.summary
                used = s.loc[s["hardware"].astype(str) == hw, "price_per_hour_usd"]
                used = pd.to_numeric(used, errors="coerce").dropna()
                box.placeholder = (f"catalog: {used.iloc[0]:g}" if len(used) and ov is None
                                   else "no catalog price: type one")
        finally:
            self._hold = False

    def _set_error(self, message: str) -> None:
        self.error = message
        self._error_html.value = (
            "" if not message else
            '<div class="effplan-error-message" style="color:#a40000;background:#fff0f0;'
            'border:1px solid #e0b4b4;padding:4px 8px;border-radius:3px">'
            f"<b>Input not applied:</b> {html.escape(message)}<br>"
            "<small>Showing the last valid plan.</small></div>")

    def _show_warnings(self) -> None:
        self._warning_html.value = "".join(
            '<div class="effplan-warning-message" style="color:#7a5b00;background:#fffbe6;'
            'border:1px solid #e6d38a;padding:2px 8px;margin:2px 0;border-radius:3px">'
            f"{html.escape(msg)}</div>" for msg in dict.fromkeys(self.warnings))

    # ------------------------------------------------------------------ drawing
    def selection(self) -> tuple[list[str], list[str] | None]:
        """(selected candidates, [selected hardware] or None for all hardware)."""
        cands = [str(x) for x in self.controls["candidates"].value]
        hw = self.controls["hardware"].value
        return cands, (None if hw == ALL_HARDWARE else [str(hw)])

    def _redraw_timed(self, *, plan_ms: float, t0: float | None = None) -> None:
        t0 = time.perf_counter() if t0 is None else t0
        t_draw = time.perf_counter()
        # Numbers first: the table and total reach the page as soon as their values are set,
        # before the (slower) charts are rendered.
        self._redraw_numbers()
        self.last_numbers_ms = (time.perf_counter() - t0) * 1e3
        self._redraw_charts()
        t1 = time.perf_counter()
        self.last_plan_ms = plan_ms
        self.last_draw_ms = (t1 - t_draw) * 1e3
        self.last_update_ms = (t1 - t0) * 1e3
        self._status_html.value = (
            f'<small style="color:#666">updated in {self.last_update_ms:.0f} ms '
            f"(plan {self.last_plan_ms:.0f} ms, table and total after {self.last_numbers_ms:.0f} ms, "
            f"draw {self.last_draw_ms:.0f} ms); "
            f"{self.samples} Monte-Carlo samples, seed {self.seed}</small>")

    def _redraw_numbers(self) -> None:
        cands, hw = self.selection()
        self.table = budget_table(self.plan, cands, hw)
        self.total_usd = float(self.table.attrs["total_usd"])
        self._table_html.value = _table_html(self.table)
        self._total_html.value = self._total_markup(hw)

    def _redraw_charts(self) -> None:
        cands, hw = self.selection()
        charts = {
            "cost": (lambda ax: plots.cost_per_quarter(self.plan, ax=ax, candidates=cands, hardware=hw),
                     True),
            "quality": (lambda ax: plots.quality_vs_cost(self.plan, ax=ax, highlight=cands,
                                                         highlight_hardware=hw), False),
        }
        for key, (draw, legend_below) in charts.items():
            fig = self._figs[key]          # the same Figure every time: nothing piles up
            fig.clear()
            ax = fig.add_subplot()
            draw(ax)
            _fixed_margins(fig, ax, legend_below=legend_below)
            self._images[key].value = _png(fig)

    def _total_markup(self, hw: list[str] | None) -> str:
        a = self.table.attrs
        months = int(self._inference.months)
        total = self.total_usd
        shown = "n/a" if not math.isfinite(total) else f"${total:,.0f}"
        where = "all hardware" if hw is None else html.escape(hw[0])
        band = ""
        lo, hi = a.get("total_usd_p10"), a.get("total_usd_p90")
        if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
            band = (f' <span style="color:#555">(inference P10–P90 ${lo:,.0f} – ${hi:,.0f})'
                    "</span>")
        parts = [f"sum over {a['rows_in_total']} selected candidate row(s) on {where}"]
        if a.get("training_usd"):
            parts.append(f"incl. training ${a['training_usd']:,.0f}")
        excluded = a.get("excluded", [])
        warn = ""
        if excluded:
            warn = ('<div style="color:#a40000;font-size:0.9em">not in the total (no cost): '
                    + html.escape("; ".join(excluded)) + "</div>")
        return (f'<div style="font-size:1.25em">Budget, {months} months '
                f"({a['quarters']} quarters): "
                f'<span class="effplan-total" data-total-usd="{total:.2f}"><b>{shown}</b></span>'
                f"{band}</div>"
                f'<div style="color:#555;font-size:0.9em">{"; ".join(parts)}</div>{warn}')

    # ------------------------------------------------------------------ outputs
    def static_report(self) -> tuple[pd.DataFrame, dict[str, Any]]:
        """(budget table, {name: Figure}) for a report without a kernel (e.g. papermill +
        nbconvert). The figures are fresh pyplot-free Figures owned by the caller:
        ``cost_per_quarter``, ``quality_vs_cost``, ``energy_and_co2``, ``instances_over_time``."""
        cands, hw = self.selection()
        figs = {
            "cost_per_quarter": plots.cost_per_quarter(self.plan, candidates=cands, hardware=hw),
            "quality_vs_cost": plots.quality_vs_cost(self.plan, highlight=cands,
                                                  highlight_hardware=hw),
            "energy_and_co2": plots.energy_and_co2(self.plan, candidates=cands, hardware=hw),
            "instances_over_time": plots.instances_over_time(self.plan, candidates=cands,
                                                             hardware=hw),
        }
        table = self.table.copy()
        table.attrs = dict(self.table.attrs)
        return table, figs

    def inputs(self) -> dict[str, Any]:
        """The current scenario as a JSON-able dict (what :meth:`export` writes)."""
        cands, hw = self.selection()
        a = self.table.attrs
        return {
            "effplan_scenario_version": 1,
            "exported_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "plan_inputs": _jsonable(self.plan.inputs),
            "selection": {"candidates": cands, "hardware": hw if hw is not None else "all"},
            "total_usd": None if not math.isfinite(self.total_usd) else round(self.total_usd, 2),
            "total_definition": TOTAL_DEFINITION,
            "total_excludes": list(a.get("excluded", [])),
            "months": int(self._inference.months),
        }

    def export(self, directory: str | Path | None = None) -> tuple[Path, Path]:
        """Write the scenario: CSV = the plan's quarterly rows of the selection (every column,
        machine-readable), JSON = :meth:`inputs`. Returns ``(csv_path, json_path)``; names are
        ``effplan_scenario_<local time>[_n].csv/.json`` and never overwrite."""
        out = Path(directory) if directory is not None else self.export_dir
        out.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        stem, n = f"effplan_scenario_{stamp}", 1
        while (out / f"{stem}.csv").exists() or (out / f"{stem}.json").exists():
            n += 1
            stem = f"effplan_scenario_{stamp}_{n}"
        cands, hw = self.selection()
        rows = plots._select(self.plan.quarterly, cands, hw)
        csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
        rows.to_csv(csv_path, index=False)
        json_path.write_text(json.dumps(self.inputs(), indent=2, sort_keys=True) + "\n",
                             encoding="utf-8")
        return csv_path, json_path

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return (f"BudgetDashboard(total_usd={self.total_usd:,.2f}, rows={len(self.table)}, "
                f"error={self.error!r})")


TOTAL_DEFINITION = ("inference cost over the whole plan horizon (all months) plus training cost "
                    "over the same horizon, summed over the selected candidate x hardware rows; "
                    "rows without a cost (infeasible or unpriced) are excluded and listed")


# ------------------------------------------------------------------------------ helpers
def _fmt_usd(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return html.escape(str(v))
    return "–" if not math.isfinite(f) else f"${f:,.0f}"


def _fmt_num(fmt: str) -> Any:
    def f(v: Any) -> str:
        try:
            x = float(v)
        except (TypeError, ValueError):
            return html.escape(str(v))
        return "–" if not math.isfinite(x) else format(x, fmt)

    return f


def _fmt_bool(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return "yes" if bool(v) else "NO"


_HEADERS = {"batch_size": "batch", "latency_p95_ms": "p95 ms", "slo_met": "meets SLO",
            "instances_max": "max inst.", "inference_usd": "inference", "inference_usd_p10": "P10",
            "inference_usd_p90": "P90", "training_usd": "training", "total_usd": "total",
            "energy_kwh": "kWh", "co2_kg": "CO2 kg"}


def _table_html(table: pd.DataFrame) -> str:
    if table.empty:
        return ("<p><i>No rows: select at least one candidate that has rows on this "
                "hardware.</i></p>")
    df = table.rename(columns=_HEADERS)
    money = [c for c in df.columns if c.startswith("Q") or c in
             ("inference", "P10", "P90", "training", "total")]
    fmt: dict[str, Any] = {c: _fmt_usd for c in money}
    fmt.update({"batch": _fmt_num(".0f"), "p95 ms": _fmt_num(",.1f"), "max inst.": _fmt_num(",.0f"),
                "kWh": _fmt_num(",.0f"), "CO2 kg": _fmt_num(",.0f"), "meets SLO": _fmt_bool})
    if not (df["note"].astype(str) != "").any():
        df = df.drop(columns="note")
    if "training" not in df.columns:
        df = df.drop(columns="inference")  # equal to the total without training
    # the money first (visible without scrolling on a narrow screen), then the service figures
    first = ["candidate", "hardware", "provenance", "total", "P10", "P90", "training", "inference"]
    first = [c for c in first if c in df.columns]
    quarters = [c for c in df.columns if c.startswith("Q")]
    df = df[first + quarters + [c for c in df.columns if c not in first and c not in quarters]]
    body = df.to_html(index=False, formatters=fmt, escape=True, border=0,
                      classes="effplan-budget", na_rep="–")
    style = ("<style>.effplan-budget{border-collapse:collapse;font-size:0.85em}"
             ".effplan-budget th,.effplan-budget td{padding:2px 6px;text-align:right;"
             "border-bottom:1px solid #ddd;white-space:nowrap}"
             ".effplan-budget td:nth-child(-n+3),.effplan-budget th:nth-child(-n+3)"
             "{text-align:left}</style>")
    note = ""
    if (table["provenance"].astype(str) == "projected").any():
        note = ('<div style="font-size:0.85em;color:#555">rows marked <i>projected</i> are '
                "scaled to catalog hardware (roofline), not measured.</div>")
    if "inference_usd_p10" in table.columns:
        note += ('<div style="font-size:0.85em;color:#555">total: cost over the horizon. '
                 "P10 / P90: Monte-Carlo range of each row's inference cost over the horizon (traffic, growth and price "
                 "uncertainty).</div>")
    return f'{style}<div style="overflow-x:auto;max-width:100%">{body}</div>{note}'


def _new_figure() -> Any:
    # No layout engine: constrained layout re-measures every text on every draw and doubles the
    # redraw time; the dashboard's figures have a fixed size, so fixed margins do (see below).
    from matplotlib.figure import Figure

    return Figure(figsize=_FIG_SIZE_IN, dpi=_DPI)


def _fixed_margins(fig: Any, ax: Any, *, legend_below: bool) -> None:
    """Margins in points for a fixed-size figure: room for the title, the y tick labels and
    label, and below either the x tick labels + label or a legend of known row count."""
    h_pt = fig.get_figheight() * 72.0
    w_pt = fig.get_figwidth() * 72.0
    leg = ax.get_legend()
    if legend_below and leg is not None:
        n = len(leg.get_texts())
        rows = math.ceil(n / plots.legend_ncols(n))
        gap = plots.LEGEND_GAP_WITH_XLABEL_PT if ax.get_xlabel() else plots.LEGEND_GAP_PT
        bottom_pt = gap + rows * 10.5 + 6.0
    else:
        bottom_pt = 36.0
    fig.subplots_adjust(left=62.0 / w_pt, right=1 - 12.0 / w_pt, top=1 - 22.0 / h_pt,
                        bottom=min(0.6, bottom_pt / h_pt))


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # compress_level 1: a few % larger file, noticeably less CPU per redraw than the default 6
    fig.savefig(buf, format="png", dpi=_DPI, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def _fmt_price_text(v: Any) -> str:
    try:
        return f"{float(v):g}"
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
