"""Matplotlib figures of learning curves (:class:`effplan.LearningCurve`), built without pyplot as
:mod:`effplan.plots` builds its own (a fresh ``Figure()``, nothing registered with pyplot).

:func:`learning_curve_figure` draws one metric against the training cost (or the items trained
on): every run as a small point, the mean per fraction as a larger one, the fitted saturating
power law of each condition (solid over the sizes measured, dashed where it extrapolates, with its
seed-bootstrap band) and the prediction at ``factor`` x the largest size measured as an error bar
with its interval, labelled "extrapolated (not measured)". The top axis reads the same positions
in training items. The cost of a run grows linearly with its data at a fixed recipe
(:attr:`LearningCurve.cost_per_item_usd`), which places the fitted curve and the prediction on
the cost axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..errors import ValidationError
from .figures import UniqueMoneyFormatter, _colors, _figure_and_axes, _legend_below, _literal_text

__all__ = ["learning_curve_figure", "EXTRAPOLATED_LABEL"]

#: legend text of the extrapolated part of a fitted curve and of the prediction
EXTRAPOLATED_LABEL = "extrapolated (fit, not measured)"


@_literal_text
def learning_curve_figure(curve: Any, metric: str = "accuracy", *, conditions: Sequence[str] | None = None,
                          x: str = "cost_usd", factor: float = 2.0, n_bootstrap: int = 1000,
                          ax: Axes | None = None) -> Figure:
    """``metric`` of each run against its training cost (``x="cost_usd"``) or items (``x="items"``),
    per condition, with the fitted curves and the prediction at ``factor`` x the data (see the module
    docstring). ``conditions``: which (default: every condition of the curve)."""
    if not all(hasattr(curve, a) for a in ("conditions", "frame", "runs")):  # an effplan.LearningCurve
        raise ValidationError("curve", f"expected an effplan.LearningCurve, got {type(curve).__name__}")
    if x not in ("cost_usd", "items"):
        raise ValidationError("x", f"must be 'cost_usd' or 'items', got {x!r}")
    conds = list(curve.conditions if conditions is None else conditions)
    unknown = [c for c in conds if c not in curve.conditions]
    if not conds or unknown:
        raise ValidationError("conditions", f"choose among {curve.conditions}, got {list(conds)}")
    if x == "cost_usd" and not np.isfinite(curve.cost_per_item_usd):
        raise ValidationError("x", f"the runs have no cost ({curve.cost_source}): plot x='items'")
    fig, ax = _figure_and_axes(ax, (7.5, 4.6))
    to_x = (lambda n: curve.cost_at(n)) if x == "cost_usd" else (lambda n: np.asarray(n, float))  # noqa: E731
    pct = metric == "accuracy"
    k = 100.0 if pct else 1.0
    handles: list[Any] = []
    sizes = sorted(set(curve.runs["items"]))
    n_max = float(max(sizes))
    for color, cond in zip(_colors(len(conds)), conds, strict=True):
        fit = curve.fit(metric, cond, n_bootstrap=n_bootstrap)
        r = curve._scores(metric, cond)
        run_x = r["cost_usd"].to_numpy(float) if x == "cost_usd" else r["items"].to_numpy(float)
        ax.scatter(run_x, r["value"] * k, s=10, color=color, alpha=0.35, linewidths=0, zorder=3)
        means = r.groupby("items", sort=True)["value"].mean()
        ax.plot(to_x(means.index.to_numpy(float)), means.to_numpy() * k, "o", color=color, ms=5, zorder=4)
        inside = np.geomspace(min(sizes), n_max, 60)
        beyond = np.geomspace(n_max, n_max * factor, 20)
        for ns, style in ((inside, "-"), (beyond, "--")):
            c = fit.curve(ns)
            ax.plot(to_x(ns), c["value"] * k, style, color=color, lw=1.5, zorder=2)
            if c["low"].notna().all():
                ax.fill_between(to_x(ns), c["low"] * k, c["high"] * k, color=color, alpha=0.12, lw=0)
        p = fit.predict(n_max * factor)
        px = float(to_x(p.n))
        if np.isfinite(p.low):
            ax.errorbar([px], [p.value * k], yerr=[[(p.value - p.low) * k], [(p.high - p.value) * k]],
                        fmt="D", color=color, mfc="white", ms=6, capsize=4, zorder=5)
        else:
            ax.plot([px], [p.value * k], "D", color=color, mfc="white", ms=6, zorder=5)
        fmt = (lambda v: f"{v * k:.1f}%") if pct else (lambda v: f"{v:.3g}")  # noqa: E731
        band = f" [{fmt(p.low)}, {fmt(p.high)}]" if np.isfinite(p.low) else ""
        band += " (poor fit)" if fit.poor_fit else ""
        ax.annotate(f"{factor:g}x data: {fmt(p.value)}{band}", (px, p.value * k), xytext=(8, 0),
                    textcoords="offset points", va="center", fontsize="x-small", color=color)
        handles.append(Line2D([], [], color=color, marker="o", lw=1.5, label=cond))
    handles += [Line2D([], [], color="0.3", ls="--", marker="D", mfc="white", label=EXTRAPOLATED_LABEL),
                Patch(color="0.3", alpha=0.15, label="95% interval over seeds (bootstrap)")]
    ax.set_xscale("log")
    hi = float(to_x(n_max * factor))
    lo = float(min(np.min(to_x(np.asarray(sizes, float))), np.nanmin(curve.runs[x].to_numpy(float))))
    ax.set_xlim(lo / 1.4, hi * 3.0)      # room for the prediction's label on the right
    # ticks where the sizes are (measured, and the prediction): the axis spans a decade or two,
    # so a log locator would leave one or two labels
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    tick_items = np.array([*sizes, n_max * factor], dtype=float)
    ax.xaxis.set_major_locator(FixedLocator(to_x(tick_items)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelsize="x-small")
    if x == "cost_usd":
        ax.xaxis.set_major_formatter(UniqueMoneyFormatter())
        per_item = curve.cost_per_item_usd
        top = ax.secondary_xaxis("top", functions=(lambda c: np.asarray(c) / per_item,
                                                   lambda n: np.asarray(n) * per_item))
        top.xaxis.set_major_locator(FixedLocator(tick_items))
        top.xaxis.set_minor_locator(NullLocator())
        top.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
        top.tick_params(labelsize="x-small")
        top.set_xlabel("training items (the last one: the prediction)", fontsize="small")
        ax.set_xlabel(f"training cost per run (USD; {curve.hardware} at ${curve.price_per_hour_usd:g}/h x "
                      "measured time)", fontsize="small")
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
        ax.set_xlabel("training items (the last one: the prediction)", fontsize="small")
    ax.set_ylabel(f"{metric} (%)" if pct else metric, fontsize="small")
    ax.set_title(f"{curve.candidate}: {metric} against training {'cost' if x == 'cost_usd' else 'data'}, "
                 f"{len(curve.settings['seeds'])} seeds per size", fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    _legend_below(ax, handles)
    return fig
