"""What a person sees of budget vs actuals (:class:`effplan.planning.actuals.Actuals`): matplotlib
Figures built without pyplot state (as :mod:`effplan.plots`), HTML tables through
:mod:`effplan.formatting`, and the dashboard tab's markup.

* :func:`planned_vs_actual` -- planned vs actual per month and per calendar quarter, every
  billed option added up (they all ran), with the +/-12% band around the plan;
* :func:`variance_waterfall` -- planned -> volume and rate per option -> actual;
* :func:`band_chart` -- each option's variance per month against the band;
* :func:`reforecast_chart` -- actual months, the re-forecast with its P10-P90 band, the plan;
* :func:`variance_table`, :func:`quarter_table`, :func:`unmapped_table` -- frames for people;
* :func:`dashboard_html` -- the "Budget vs actuals" tab of :class:`effplan.widgets.BudgetDashboard`.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Text

from ..safe import html_text

__all__ = ["planned_vs_actual", "variance_waterfall", "band_chart", "reforecast_chart",
           "variance_table", "quarter_table", "unmapped_table", "dashboard_html"]

_PLAN, _ACT, _OUT, _UP, _DOWN = "#9aa5b1", "#4c72b0", "#c44e52", "#dd8452", "#55a868"


def _literal(fig: Figure) -> Figure:
    for t in fig.findobj(Text):   # option names are shown as written, never as mathtext
        t.set_parse_math(False)
    return fig


def _usd_axis(ax: Any, axis: str = "y") -> None:
    from ..formatting import usd

    from matplotlib.ticker import FuncFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(FuncFormatter(lambda v, _: usd(v)))


def _empty(text: str) -> Figure:
    fig = Figure(figsize=(8, 1.6), layout="constrained")
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.set_axis_off()
    return fig


def planned_vs_actual(a: Any) -> Figure:
    """Two panels -- per month and per calendar quarter: planned (grey) and actual (blue; red
    outside the band) cost of every billed option added up, the band drawn around the plan.
    Months or quarters the bill does not cover completely are marked "partial"."""
    if a.monthly_totals.empty:
        return _empty("no billing row maps to an option of the plan")
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [max(2, len(a.monthly_totals)),
                                                            max(1, len(a.quarterly_totals))]})
    for ax, t, key, title in ((axes[0], a.monthly_totals, "month", "per month"),
                              (axes[1], a.quarterly_totals, "quarter", "per calendar quarter")):
        x = np.arange(len(t))
        plan, act = t["planned_cost_usd"].to_numpy(float), t["actual_cost_usd"].to_numpy(float)
        ax.bar(x - 0.2, plan, 0.4, color=_PLAN, label="planned")
        colors = [_OUT if o else _ACT for o in t["outside_band"]]
        ax.bar(x + 0.2, act, 0.4, color=colors, label="actual")
        ax.errorbar(x - 0.2, plan, yerr=plan * a.band, fmt="none", ecolor="#333", capsize=6, lw=1)
        labels = [f"{k}\n(partial)" if not c else str(k) for k, c in zip(t[key], t["complete"])]
        ax.set_xticks(x, labels)
        for xi, p, v in zip(x, plan, act):
            if p:
                ax.annotate(f"{(v - p) / p:+.0%}", (xi + 0.2, v), ha="center", va="bottom",
                            fontsize=8, xytext=(0, 2), textcoords="offset points")
        ax.set_title(title, fontsize=10)
        _usd_axis(ax)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(0, max(plan.max() * (1 + a.band), act.max()) * 1.15)
    axes[0].legend(handles=[Patch(color=_PLAN, label="planned"),
                            Patch(color=_ACT, label=f"actual, within ±{a.band:.0%}"),
                            Patch(color=_OUT, label=f"actual, outside ±{a.band:.0%}")],
                   fontsize=8, loc="upper left")
    fig.suptitle(f"Planned vs actual, every billed option added up ({a.cost_view}); "
                 f"whiskers: the ±{a.band:.0%} band", fontsize=10)
    return _literal(fig)


def variance_waterfall(a: Any, quarter: str | None = None) -> Figure:
    """Planned cost -> each option's volume and rate variance -> actual cost, as a waterfall
    (increases orange, decreases green); one calendar quarter, or every month of the bill."""
    v = a.variance if quarter is None else a.variance[a.variance["quarter"] == quarter]
    if v.empty:
        return _empty("no variance to split")
    g = v.groupby(["candidate", "hardware"], sort=False)[["volume_variance_usd",
                                                          "rate_variance_usd"]].sum()
    steps = [("planned", float(v["planned_cost_usd"].sum()), "total")]
    for (c, h), r in g.iterrows():
        steps.append((f"{c} @ {h}\nvolume", float(r["volume_variance_usd"]), "step"))
        steps.append((f"{c} @ {h}\nrate", float(r["rate_variance_usd"]), "step"))
    steps.append(("actual", float(v["actual_cost_usd"].sum()), "total"))
    # horizontal: one row per step, top to bottom, so long option names never collide
    fig = Figure(figsize=(9, 1.2 + 0.42 * len(steps)), layout="constrained")
    ax = fig.add_subplot()
    level = 0.0
    top = max(max(abs(x[1]) for x in steps if x[2] == "total"), 1.0)
    for i, (label, value, kind) in enumerate(steps):
        if kind == "total":
            ax.barh(i, value, 0.6, color=_PLAN if label == "planned" else _ACT)
            ax.annotate(_fmt(value), (value, i), va="center", fontsize=8, xytext=(3, 0),
                        textcoords="offset points")
            level = value
            continue
        left = level if value >= 0 else level + value
        ax.barh(i, abs(value), 0.6, left=left, color=_UP if value >= 0 else _DOWN)
        ax.annotate(("+" if value >= 0 else "") + _fmt(value), (left + abs(value), i),
                    va="center", fontsize=8, xytext=(3, 0), textcoords="offset points")
        ax.plot([level + value] * 2, [i + 0.3, i + 0.7], color="#666", lw=0.8)
        level += value
    ax.set_yticks(range(len(steps)), [s[0].replace("\n", " ") for s in steps], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.25)
    _usd_axis(ax, "x")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=[Patch(color=_UP, label="adds cost"), Patch(color=_DOWN, label="saves")],
              fontsize=8, loc="center left")
    span = "the bill's months" if quarter is None else quarter
    ax.set_title(f"Variance split, {span}: volume = (actual - planned hours) x planned rate,\n"
                 "rate = (actual - planned rate) x actual hours", fontsize=9)
    return _literal(fig)


def _fmt(v: float) -> str:
    from ..formatting import usd

    return usd(v)


def band_chart(a: Any) -> Figure:
    """Each option's variance per month (per cent of plan) against the shaded band."""
    v = a.variance
    if v.empty:
        return _empty("no variance")
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.add_subplot()
    months = list(dict.fromkeys(v["month"]))
    x = {m: i for i, m in enumerate(months)}
    ax.axhspan(-a.band * 100, a.band * 100, color="#55a868", alpha=0.15,
               label=f"±{a.band:.0%} band")
    ax.axhline(0, color="#666", lw=0.8)
    for (c, h), g in v.groupby(["candidate", "hardware"], sort=False):
        pct = g["variance_pct"].to_numpy(float) * 100
        xs = [x[m] for m in g["month"]]
        ax.plot(xs, pct, marker="o", label=f"{c} @ {h}")
        for xi, p, out in zip(xs, pct, g["outside_band"]):
            if out:
                ax.annotate(f"{p:+.0f}%", (xi, p), fontsize=7, xytext=(4, 0),
                            textcoords="offset points", va="center")
    ax.set_xticks(range(len(months)), months)
    ax.set_ylabel("variance, % of plan")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("Variance per option and month against the band", fontsize=10)
    return _literal(fig)


def reforecast_chart(reforecast: Any) -> Figure:
    """The re-forecast (every billed option added up): actual months solid, re-planned months
    dashed with their P10-P90 band, the original plan grey."""
    m = reforecast.monthly
    g = m.groupby(["month", "month_label"], sort=True)
    cost = g["cost_usd"].sum()
    plan = g["planned_cost_usd"].sum()
    actual = g["source"].agg(lambda s: (s == "actual").all())
    labels = [k[1] for k in cost.index]
    x = np.arange(len(labels))
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(x, plan.to_numpy(), color=_PLAN, lw=2, label="original plan")
    a_mask = actual.to_numpy()
    ax.plot(x[a_mask], cost.to_numpy()[a_mask], color=_ACT, lw=2.5, marker="o", label="actual")
    fut = ~a_mask
    if fut.any():
        first = max(0, int(np.flatnonzero(fut)[0]) - 1)
        xs = x[first:]
        ax.plot(xs, cost.to_numpy()[first:], color=_ACT, lw=2, ls="--", label="re-forecast")
        if "cost_usd_p10" in m.columns:
            lo = g["cost_usd_p10"].sum().to_numpy()
            hi = g["cost_usd_p90"].sum().to_numpy()
            ax.fill_between(x[fut], lo[fut], hi[fut], color=_ACT, alpha=0.15,
                            label="re-forecast P10-P90 (sum of the options' bands)")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
    _usd_axis(ax)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Re-forecast: elapsed months are the bill, the rest re-planned from the observed "
                 "rate, volume and growth", fontsize=10)
    return _literal(fig)


_SHOW = ["month", "candidate", "hardware", "planned_cost_usd", "actual_cost_usd", "variance_usd",
         "variance_pct", "volume_variance_usd", "rate_variance_usd", "outside_band",
         "planned_instance_hours", "actual_instance_hours", "tax_cost_usd", "credit_cost_usd",
         "billed_cost_usd", "effective_cost_usd", "note"]


def variance_table(a: Any) -> pd.DataFrame:
    """The variance per option and month, the columns a reader needs, band as yes/no."""
    return a.variance[[c for c in _SHOW if c in a.variance.columns]].rename(
        columns={"billed_cost_usd": "billed_usd (invoice view)",
                 "effective_cost_usd": "effective_usd (budget view)"})


def quarter_table(a: Any) -> pd.DataFrame:
    """Per option and calendar quarter, then every option added up (``candidate`` "all")."""
    cols = ["quarter", "candidate", "hardware", "months", "complete", "planned_cost_usd",
            "actual_cost_usd", "variance_usd", "variance_pct", "volume_variance_usd",
            "rate_variance_usd", "outside_band"]
    tot = a.quarterly_totals.assign(candidate="all billed options", hardware="")
    return pd.concat([a.quarters, tot], ignore_index=True)[cols]


def unmapped_table(a: Any) -> pd.DataFrame:
    """Unmapped compute/AI spend summed by reason, resource and SKU (the rows are in
    ``Actuals.unmapped``)."""
    u = a.unmapped
    if u.empty:
        return pd.DataFrame({"reason": ["every compute and AI row maps to an option"]})
    keys = [c for c in ("reason", "ServiceCategory", "ResourceId", "SkuId") if c in u.columns]
    return u.groupby(keys, sort=False, dropna=False).agg(
        rows=("cost_usd", "size"), first_month=("month", "min"), last_month=("month", "max"),
        cost_usd=("cost_usd", "sum")).reset_index().sort_values("cost_usd", ascending=False)


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def dashboard_html(a: Any) -> str:
    """The dashboard's "Budget vs actuals" tab: the sentence, the charts (PNG), the tables."""
    from ..formatting import styled

    imgs = "".join(f'<img alt="{html_text(t)}" style="max-width:100%" '
                   f'src="data:image/png;base64,{_png(f)}"/>'
                   for t, f in (("planned vs actual", planned_vs_actual(a)),
                                ("variance waterfall", variance_waterfall(a)),
                                ("band", band_chart(a))))
    notes = "".join(f"<li>{html_text(n)}</li>" for n in a.notes)
    return (f'<div class="effplan-actuals"><p><b>{html_text(a.sentence())}</b></p>'
            f"{imgs}<h4>Per option and month</h4>"
            f'<div style="overflow-x:auto">{styled(variance_table(a)).to_html()}</div>'
            f"<h4>Unmapped compute spend</h4>"
            f'<div style="overflow-x:auto">{styled(unmapped_table(a)).to_html()}</div>'
            f"<ul>{notes}</ul></div>")
