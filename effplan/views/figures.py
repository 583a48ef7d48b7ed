"""Matplotlib figures for plans and measurements, built without pyplot.

Every builder returns a :class:`matplotlib.figure.Figure` created with ``Figure()`` directly, so
nothing is registered with pyplot's global figure manager: a dashboard that redraws on every
slider move never leaks figures, and the functions are safe in scripts, notebooks and Voila.
(In a notebook a returned ``Figure`` is shown through its ``_repr_png_``-less path, so display it
with ``IPython.display.display(fig)`` or let it be the cell's last value.)

Each builder accepts an optional ``ax`` to draw into an existing Axes (the figure returned is
then ``ax.figure``).

Honesty conventions, shared by all plots
-----------------------------------------
* Rows whose timing ``provenance`` is ``projected`` (scaled to catalog hardware, not measured)
  are drawn hatched ``xx`` / dashed and listed in the legend as "projected".
* Rows whose ``provenance`` is ``estimated`` are hatched ``//`` / dotted, legend "estimated".
* For energy and CO2, the ``energy_source`` decides: ``estimated-tdp`` is labelled
  "estimated energy", ``projected`` is labelled "projected energy".
* Monte-Carlo percentiles (``cost_usd_p10`` / ``_p90`` ...) are drawn as P10–P90 error bars
  whenever the plan carries them.
"""

from __future__ import annotations

import functools

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

from ..errors import ValidationError
from ..planning.frames import fmt_quarter, pct_cols, quarter_order, select_rows
from ..records.schema import normalize_measurements

__all__ = [
    "pareto_front",
    "cost_ranking",
    "LiveCostRanking",
    "money_labels",
    "place_labels",
    "cost_per_quarter",
    "quality_vs_cost",
    "energy_and_co2",
    "instances_over_time",
    "latency_vs_batch",
    "energy_per_item",
    "throughput_vs_batch",
    "PROJECTED_LABEL",
    "ESTIMATED_LABEL",
    "ESTIMATED_ENERGY_LABEL",
    "PROJECTED_ENERGY_LABEL",
]

#: Legend texts. Tests and the dashboard look for these words.
PROJECTED_LABEL = "projected (scaled to catalog hardware, not measured)"
ESTIMATED_LABEL = "estimated (not measured)"
ESTIMATED_ENERGY_LABEL = "estimated energy (rated power x time, not metered)"
PROJECTED_ENERGY_LABEL = "projected energy (scaled, not metered)"

_HATCH = {"projected": "xx", "estimated": "//"}
_LINESTYLE = {"projected": "--", "estimated": ":"}
_ENERGY_HATCH = {"estimated-tdp": "//", "projected": "xx"}
_DEFAULT_FIGSIZE = (7.5, 4.0)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _literal_text(fn):
    """Every text a public plot function draws is shown as written: a candidate named ``"$$"`` or
    ``"a$b$c"`` is not read as matplotlib mathtext (which raised ValueError when the figure was
    drawn). No effplan label uses mathtext."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        fig = fn(*args, **kwargs)
        for text in fig.findobj(Text):
            text.set_parse_math(False)
        return fig
    return wrapper


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float] = _DEFAULT_FIGSIZE
                     ) -> tuple[Figure, Axes]:
    """A fresh pyplot-free Figure with one Axes, or the figure of the Axes given."""
    if ax is not None:
        if not isinstance(ax, Axes):
            raise ValidationError("ax", f"expected a matplotlib Axes, got {type(ax).__name__}")
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _frame(plan: Any, attr: str) -> pd.DataFrame:
    """``plan.<attr>`` (a Plan) or the DataFrame itself, validated to be a DataFrame."""
    df = plan if isinstance(plan, pd.DataFrame) else getattr(plan, attr, None)
    if not isinstance(df, pd.DataFrame):
        raise ValidationError("plan", f"expected a Plan (with .{attr}) or a DataFrame, "
                                      f"got {type(plan).__name__}")
    return df


def _require(df: pd.DataFrame, cols: Iterable[str], where: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValidationError(missing[0], f"column missing (missing: {', '.join(missing)})",
                              where=where)


def _series_key(df: pd.DataFrame) -> pd.Series:
    """Legend label per row: ``candidate`` alone when one hardware, else ``candidate @ hw``."""
    cand = df["candidate"].astype(str)
    if "hardware" in df.columns and df["hardware"].nunique() > 1:
        return cand + " @ " + df["hardware"].astype(str)
    return cand


def _provenance_of(group: pd.DataFrame, col: str = "provenance") -> str:
    """The least trustworthy provenance in a group (projected > estimated > measured/entered)."""
    if col not in group.columns:
        return "measured"
    vals = set(group[col].astype(str))
    for p in ("projected", "estimated"):
        if p in vals:
            return p
    return "measured" if "measured" in vals else "entered"


def _energy_quality_of(group: pd.DataFrame) -> str:
    """'projected' | 'estimated-tdp' | '' for a group's energy_source (least trustworthy)."""
    if "energy_source" not in group.columns:
        return ""
    vals = set(group["energy_source"].astype(str))
    for s in ("projected", "estimated-tdp"):
        if s in vals:
            return s
    return ""


def _provenance_handles(seen: set[str], *, kind: str = "patch") -> list[Any]:
    """Legend entries explaining hatching/line styles for the provenances actually drawn."""
    handles: list[Any] = []
    for prov, label in (("projected", PROJECTED_LABEL), ("estimated", ESTIMATED_LABEL)):
        if prov not in seen:
            continue
        if kind == "patch":
            handles.append(Patch(facecolor="white", edgecolor="0.3", hatch=_HATCH[prov], label=label))
        else:
            handles.append(Line2D([], [], color="0.3", linestyle=_LINESTYLE[prov], label=label))
    return handles


def _energy_handles(seen: set[str]) -> list[Any]:
    handles: list[Any] = []
    for src, label in (("estimated-tdp", ESTIMATED_ENERGY_LABEL), ("projected", PROJECTED_ENERGY_LABEL)):
        if src in seen:
            handles.append(Patch(facecolor="white", edgecolor="0.3", hatch=_ENERGY_HATCH[src],
                                 label=label))
    return handles


def legend_ncols(n_entries: int) -> int:
    """Columns of a legend placed under the axes (shared with the dashboard's fixed layout)."""
    return 3 if n_entries > 4 else max(1, min(n_entries, 2))


#: gap between the bottom of the axes and the top of a legend placed below it, points
LEGEND_GAP_PT = 20.0
LEGEND_GAP_WITH_XLABEL_PT = 34.0


def _legend_below(ax: Axes, handles: list[Any]) -> None:
    """Legend under the axes (never over the bars), a fixed distance in points below them, so a
    fixed-size figure can reserve room for it without a layout engine (see widgets)."""
    from matplotlib.transforms import ScaledTranslation

    gap = LEGEND_GAP_WITH_XLABEL_PT if ax.get_xlabel() else LEGEND_GAP_PT
    trans = ax.transAxes + ScaledTranslation(0, -gap / 72.0, ax.figure.dpi_scale_trans)
    ax.legend(handles=handles, fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, 0.0),
              bbox_transform=trans, ncols=legend_ncols(len(handles)), frameon=False)


def _colors(n: int) -> list[Any]:
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _grouped_bars(ax: Axes, df: pd.DataFrame, x_col: str, y_col: str, *, band: str | None,
                  hatch_by: str, also: Sequence[str] = ()
                  ) -> tuple[set[str], list[Any], list[tuple[np.ndarray, pd.DataFrame, Any]]]:
    """Grouped bars: one group per ``x_col`` value, one bar per series.

    ``hatch_by`` is 'provenance' or 'energy' (uses ``energy_source``). ``band`` is the base
    column name whose ``_p10``/``_p90`` give error bars, or None. Returns the styles seen, the
    legend handles and, per series, its bars' x positions, its per-x sums (``y_col`` and the
    ``also`` columns) and its colour, so that a caller can mark other figures on the same bars.
    """
    df = df.assign(_series=_series_key(df))
    xs = quarter_order(df[x_col])
    series = list(pd.unique(df["_series"]))
    colors = _colors(len(series))
    width = 0.8 / max(len(series), 1)
    pos = {x: i for i, x in enumerate(xs)}
    seen: set[str] = set()
    handles: list[Any] = []
    placed: list[tuple[np.ndarray, pd.DataFrame, Any]] = []
    pcols = pct_cols(df, band) if band else None
    for k, name in enumerate(series):
        g = df[df["_series"] == name]
        agg = {y_col: "sum", **{c: "sum" for c in also}}
        if pcols:
            agg.update({pcols[0]: "sum", pcols[1]: "sum"})
        # Sum duplicates (e.g. several rows of one series in a quarter); percentiles of sums are
        # not sums of percentiles, so the planner is expected to give one row per series and x.
        per_x = g.groupby(x_col, sort=False).agg(agg)
        xpos = np.array([pos[x] for x in per_x.index], dtype=float) - 0.4 + width * (k + 0.5)
        heights = per_x[y_col].to_numpy(dtype=float)
        if hatch_by == "energy":
            style = _energy_quality_of(g)
            hatch = _ENERGY_HATCH.get(style)
        else:
            style = _provenance_of(g)
            hatch = _HATCH.get(style)
        if style in _HATCH or style in _ENERGY_HATCH:
            seen.add(style)
        label = str(name)
        if not np.isfinite(heights).any():
            label += " (no figure: infeasible or unpriced)"
        bars = ax.bar(xpos, heights, width=width * 0.95, color=colors[k], hatch=hatch,
                      edgecolor="0.25" if hatch else colors[k], linewidth=0.6, label=label)
        handles.append(bars)
        placed.append((xpos, per_x, colors[k]))
        if pcols:
            lo = per_x[pcols[0]].to_numpy(dtype=float)
            hi = per_x[pcols[1]].to_numpy(dtype=float)
            yerr = np.vstack([np.clip(heights - lo, 0, None), np.clip(hi - heights, 0, None)])
            ok = np.isfinite(yerr).all(axis=0)
            if ok.any():
                ax.errorbar(xpos[ok], heights[ok], yerr=yerr[:, ok], fmt="none", ecolor="0.15",
                            elinewidth=1.0, capsize=3)
    ax.set_xticks(range(len(xs)), [fmt_quarter(x) for x in xs])
    return seen, handles, placed


class UniqueMoneyFormatter:
    """Tick labels in USD that never repeat: the decimals follow the tick spacing (``$1.5k $2k
    $2.5k``, not ``$2k $2k $2k``), large values scaled to ``k`` / ``M``. Works on linear and log
    axes (minor ticks on a log axis get no label). ``prefix`` "" for plain numbers."""

    def __new__(cls, prefix: str = "$"):  # a matplotlib Formatter subclass, built lazily
        from matplotlib.ticker import Formatter

        class _F(Formatter):
            def __init__(self, prefix: str) -> None:
                self.prefix = prefix

            def __call__(self, x: float, pos: int | None = None) -> str:
                labels = self.format_ticks(list(self.locs) or [x]) if self.locs is not None else []
                if pos is not None and 0 <= pos < len(labels):
                    return labels[pos]
                return money_labels([x], self.prefix)[0]

            def format_ticks(self, values: Any) -> list[str]:
                return money_labels(values, self.prefix)

        return _F(prefix)


def money_labels(values: Any, prefix: str = "$") -> list[str]:
    """Distinct labels for tick values (see :class:`UniqueMoneyFormatter`)."""
    vals = np.asarray(list(values), dtype=float)
    finite = vals[np.isfinite(vals)]
    if finite.size == 0:
        return ["" for _ in vals]
    big = float(np.max(np.abs(finite)))
    pos = np.abs(finite[finite != 0])
    if pos.size >= 2 and pos.max() / pos.min() >= 100:  # log-like spread: each value its own scale
        labels = [_money_one(v, prefix) if np.isfinite(v) else "" for v in vals]
        if len(set(labels)) == len(labels):
            return labels
    scale, suffix = ((1e9, "B") if big >= 1e9 else (1e6, "M") if big >= 1e6
                     else (1e3, "k") if big >= 1e4 else (1.0, ""))
    u = np.unique(finite / scale)
    diffs = np.diff(u)
    step = float(np.min(diffs)) if diffs.size else 0.0
    nz = np.abs(u[u != 0])
    # the fewest decimals that show every tick value to within 1% of the tick spacing (or of
    # the value itself for a lone tick): 2.5k steps need one decimal, $0.02 needs two
    tol = 0.01 * step if step > 0 else (0.01 * float(np.min(nz)) if nz.size else 0.5)
    dec = 0
    while dec < 12 and np.max(np.abs(np.round(u, dec) - u)) > tol:
        dec += 1
    for d in range(dec, dec + 12):
        labels = []
        for v in vals:
            if not np.isfinite(v):
                labels.append("")
                continue
            x = v / scale
            text = f"{abs(x):,.{d}f}"
            if float(x) == 0.0:
                labels.append(f"{prefix}0")
                continue
            labels.append(("-" if x < 0 and float(text.replace(",", "")) != 0 else "")
                          + f"{prefix}{text}{suffix}")
        if len(set(labels)) == len(labels):
            return labels
    return labels


def _money_one(v: float, prefix: str = "$") -> str:
    """One value, 3 significant figures, scaled: $1.5k, $20M, $0.0021."""
    from ..formatting import sig

    a = abs(v)
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            text = sig(a / scale).rstrip("0").rstrip(".") if "." in sig(a / scale) else sig(a / scale)
            return ("-" if v < 0 else "") + f"{prefix}{text}{suffix}"
    text = sig(a)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return ("-" if v < 0 else "") + f"{prefix}{text}"


def usd_formatter(ax: Axes, axis: str = "y") -> None:
    """Unique money tick labels on ``axis`` (and no minor-tick labels)."""
    from matplotlib.ticker import NullFormatter

    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_major_formatter(UniqueMoneyFormatter())
    a.set_minor_formatter(NullFormatter())


def auto_log(ax: Axes, values: Any, axis: str = "y", ratio: float = 1e3) -> bool:
    """A log scale when the positive ``values`` span more than ``ratio`` (e.g. costs over 5
    orders of magnitude): a linear axis would flatten the small ones to nothing."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size >= 2 and v.max() / v.min() > ratio:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
        return True
    return False


#: label of each cost column a chart can use as an axis
COST_AXIS_LABELS = {
    "cost_usd": "cost over the plan horizon (USD)",
    "first_quarter_cost_usd": "cost in the first quarter (USD)",
    "quarter_cost_usd": "cost in the first quarter (USD)",
    "cost_per_1k_requests_usd": "cost per 1,000 requests (USD)",
    "total_usd": "cost over the plan horizon (USD)",
}


def cost_axis_label(col: str, months: int | None = None) -> str:
    """What a cost axis shows, from the column plotted (never a fixed text)."""
    if col in ("cost_usd", "total_usd") and months:
        return f"cost over the {months}-month plan horizon (USD)"
    return COST_AXIS_LABELS.get(col, col.replace("_usd", " (USD)").replace("_", " "))


def _renderer(fig: Figure) -> Any:
    """The figure's renderer (an Agg canvas is attached to a pyplot-free Figure that has none)."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def place_labels(ax: Axes, xs: Any, ys: Any, labels: Sequence[str], *,
                 fontsize: Any = "x-small", avoid: Sequence[Any] = ()) -> list[Any]:
    """Annotate points without overprinting or clipping.

    Points at the same place get ONE label (names joined with ", "). Each label tries offsets
    around its point (right, left, above, below, then further out) and takes the first whose
    box, measured with the renderer, lies inside the axes and overlaps no label already placed
    (nor the extents in ``avoid``). A label that fits nowhere takes the least-overlapping spot.
    Returns the annotation artists."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    engine = fig.get_layout_engine()
    if engine is not None:  # final axes position first: boxes are measured in pixels
        engine.execute(fig)
    renderer = _renderer(fig)
    groups: dict[tuple[float, float], list[str]] = {}
    for x, y, lab in zip(np.asarray(xs, float), np.asarray(ys, float), labels):
        if np.isfinite(x) and np.isfinite(y):
            groups.setdefault((float(x), float(y)), []).append(str(lab))
    ax_box = ax.get_window_extent(renderer)
    placed: list[Any] = [b for b in avoid]
    out = []
    offsets = [(6, 3, "left", "bottom"), (6, -3, "left", "top"), (-6, 3, "right", "bottom"),
               (-6, -3, "right", "top"), (0, 8, "center", "bottom"), (0, -8, "center", "top")]
    offsets += [(dx, dy * k, ha, va) for k in (3, 5, 7) for dx, dy, ha, va in offsets[:4]]
    px_per_pt = fig.dpi / 72.0
    to_px = ax.transData
    for (x, y), names in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        text = ", ".join(dict.fromkeys(names))
        if len(text) > 60:  # many identical points: name a few, count the rest
            uniq = list(dict.fromkeys(names))
            text = ", ".join(uniq[:2]) + f" +{len(uniq) - 2} more"
        ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=offsets[0][:2],
                          ha="left", va="bottom", fontsize=fontsize, parse_math=False)
        # the text's size is measured once; each candidate spot is then plain arithmetic
        size = ann.get_window_extent(renderer)
        w_px, h_px = size.width, size.height
        px, py = to_px.transform((x, y))
        best, best_cost = None, None
        for dx, dy, ha, va in offsets:
            x0 = px + dx * px_per_pt - {"left": 0.0, "center": w_px / 2, "right": w_px}[ha]
            y0 = py + dy * px_per_pt - {"bottom": 0.0, "top": h_px}[va]
            bb = Bbox.from_bounds(x0, y0, w_px, h_px)
            outside = max(0.0, ax_box.x0 - bb.x0) + max(0.0, bb.x1 - ax_box.x1) \
                + max(0.0, ax_box.y0 - bb.y0) + max(0.0, bb.y1 - ax_box.y1)
            overlap = sum(max(0.0, min(bb.x1, o.x1) - max(bb.x0, o.x0) + 1)
                          * max(0.0, min(bb.y1, o.y1) - max(bb.y0, o.y0) + 1) for o in placed)
            cost = outside * 1e3 + overlap
            if best_cost is None or cost < best_cost:
                best, best_cost = (dx, dy, ha, va, bb), cost
            if cost == 0:
                break
        dx, dy, ha, va, bb = best
        ann.set_position((dx, dy))
        ann.set_ha(ha)
        ann.set_va(va)
        placed.append(bb)
        out.append(ann)
    return out


# --------------------------------------------------------------------------------------------
# Pareto
# --------------------------------------------------------------------------------------------
def pareto_front(df: pd.DataFrame, cost_col: str = "cost_usd",
                 quality_col: str = "quality", higher_is_better: bool = True) -> pd.DataFrame:
    """Rows of ``df`` not dominated in (lower ``cost_col``, better ``quality_col``: higher, or
    lower when ``higher_is_better`` is False, e.g. an error rate or a perplexity).

    The rule lives in :func:`effplan.selection.pareto_front` (ties kept, NaN left out, sorted by
    ascending cost); ``higher_is_better=False`` for ECE, NLL, latency and the like.
    """
    from ..planning.selection import pareto_front as _front

    _require(df, (cost_col, quality_col), "pareto_front")
    return _front(df, cost=cost_col, metric=quality_col, higher_is_better=higher_is_better)


# --------------------------------------------------------------------------------------------
# plan figures
# --------------------------------------------------------------------------------------------
@_literal_text
def cost_per_quarter(plan: Any, ax: Axes | None = None, *,
                     candidates: Sequence[str] | None = None,
                     hardware: Sequence[str] | None = None) -> Figure:
    """Grouped bars of ``cost_usd`` per quarter, one bar per candidate (x hardware).

    With a Monte-Carlo plan (``cost_usd_p10``/``_p90`` present) each bar carries a P10–P90
    error bar. Projected / estimated rows are hatched and named in the legend. ``candidates``
    and ``hardware`` filter the rows drawn. ``plan`` may also be a quarterly DataFrame.
    """
    df, fig, ax = _plan_rows(plan, "quarterly", ("candidate", "quarter", "cost_usd"), candidates, hardware, ax)
    if df.empty:
        return fig
    seen, handles, _ = _grouped_bars(ax, df, "quarter", "cost_usd", band="cost_usd",
                                     hatch_by="provenance")
    auto_log(ax, df["cost_usd"])
    usd_formatter(ax)
    ax.set_ylabel("cost per quarter (USD)")
    title = "Cost per quarter"
    if pct_cols(df, "cost_usd"):
        title += " (error bars: P10–P90)"
        handles = handles + [Line2D([], [], color="0.15", marker="|", linestyle="none",
                                    markersize=10, label="P10–P90 (Monte Carlo)")]
    ax.set_title(title, y=1.0, pad=6)
    _legend_below(ax, handles + _provenance_handles(seen))
    ax.grid(axis="y", alpha=0.3)
    return fig


QUALITY_COLUMNS = ("candidate", "metric", "condition", "value", "ci_low", "ci_high", "n",
                   "provenance", "higher_is_better")


def quality_points(summary: pd.DataFrame, quality: pd.DataFrame | None = None, *,
                   metric: str | None = None, condition: str | None = None
                   ) -> tuple[pd.DataFrame, str, bool]:
    """``summary`` with the quality to plot in ``_q`` (and ``_q_lo`` / ``_q_hi``), its axis label
    and whether higher is better.

    Without ``quality`` the summary's single ``quality`` column is used (higher is better). With
    a tidy quality frame (:data:`QUALITY_COLUMNS`: one row per candidate x metric x condition),
    the rows of ``metric`` (default: the first metric) and ``condition`` (default: the first
    condition of that metric) are joined by candidate, with their confidence interval."""
    if quality is None:
        _require(summary, ("quality",), "plan.summary")
        return (summary.assign(_q=pd.to_numeric(summary["quality"], errors="coerce"),
                               _q_lo=np.nan, _q_hi=np.nan), "quality", True)
    _require(quality, ("candidate", "metric", "value"), "quality")
    q = quality
    metrics = list(pd.unique(q["metric"].astype(str)))
    if metric is None:
        metric = metrics[0] if metrics else ""
    if metric not in metrics:
        raise ValidationError("metric", f"{metric!r} not in the quality frame; known: {metrics}")
    q = q[q["metric"].astype(str) == metric]
    label = metric
    if "condition" in q.columns:
        conds = list(pd.unique(q["condition"].astype(str)))
        if condition is None:
            condition = conds[0]
        if condition not in conds:
            raise ValidationError("condition", f"{condition!r} not measured for {metric!r}; "
                                               f"known: {conds}")
        q = q[q["condition"].astype(str) == condition]
        if condition and condition not in ("", "nan", "None"):
            label = f"{metric} ({condition})"
    hib = True
    if "higher_is_better" in q.columns and len(q):
        hib = bool(q["higher_is_better"].iloc[0])
    per = q.groupby(q["candidate"].astype(str), sort=False).agg(
        _q=("value", "first"),
        _q_lo=("ci_low", "first") if "ci_low" in q.columns else ("value", lambda s: np.nan),
        _q_hi=("ci_high", "first") if "ci_high" in q.columns else ("value", lambda s: np.nan))
    out = summary.drop(columns=[c for c in ("_q", "_q_lo", "_q_hi") if c in summary.columns])
    out = out.assign(_cand=out["candidate"].astype(str)).join(per, on="_cand").drop(columns="_cand")
    return out, label + ("" if hib else " (lower is better)"), hib


@_literal_text
def quality_vs_cost(plan: Any, ax: Axes | None = None, *, cost_col: str = "cost_usd",
                    quality_col: str = "quality",
                    highlight: Sequence[str] | None = None,
                    highlight_hardware: Sequence[str] | None = None,
                    quality: pd.DataFrame | None = None, metric: str | None = None,
                    condition: str | None = None,
                    candidates: Sequence[str] | None = None,
                    hardware: Sequence[str] | None = None,
                    higher_is_better: bool | None = None) -> Figure:
    """Scatter of quality against cost (``cost_col`` of ``plan.summary``: ``cost_usd`` over the
    horizon, or ``cost_per_1k_requests_usd``...; the x label says which), with the Pareto front
    (cheaper and better) drawn as a step line.

    ``quality_col`` may be any metric column joined into the plan (``"ece@noise-0.3"``);
    ``higher_is_better`` defaults to the metric's own direction (built-ins; else higher).

    Quality: the summary's ``quality_col`` or, with ``quality=`` a tidy quality frame (see
    :func:`quality_points`), ``metric`` under ``condition`` with its CI as error bars.
    Projected points are hollow, estimated ones half-filled; rows that miss the latency SLO or are
    infeasible are drawn as ``x``. Points at the same place share one label; labels are placed
    so that they neither overprint each other nor leave the axes. Rows without a quality or a
    cost are not placed; a note says how many. ``highlight`` rings candidates (restricted to
    ``highlight_hardware`` when given); ``candidates`` / ``hardware`` filter the rows.
    """
    df = select_rows(_frame(plan, "summary"), candidates, hardware)
    _require(df, ("candidate", cost_col), "plan.summary")
    if quality is None and quality_col != "quality":
        df = df.assign(quality=df[quality_col])
    df, ylabel, hib = quality_points(df, quality, metric=metric, condition=condition)
    if quality is None and quality_col != "quality":
        ylabel = quality_col
    fig, ax = _figure_and_axes(ax)
    df = df.assign(_series=_series_key(df))
    qual = pd.to_numeric(df["_q"], errors="coerce")
    cost = pd.to_numeric(df[cost_col], errors="coerce")
    no_quality = int(qual.isna().sum())
    no_cost = int((qual.notna() & cost.isna()).sum())
    pts = df[qual.notna() & cost.notna()]
    if pts.empty:
        _empty(ax, "nothing to place: no row has both a quality score (quality= on the "
                   "Candidate or a 'quality' column) and a cost")
        return fig
    x = pts[cost_col].to_numpy(float)
    y = pts["_q"].to_numpy(float)
    prov = (pts["provenance"].astype(str) if "provenance" in pts.columns
            else pd.Series("measured", index=pts.index)).to_numpy()
    ok = np.array([_truthy(a) and _truthy(b) for a, b in zip(
        pts["slo_met"] if "slo_met" in pts.columns else [True] * len(pts),
        pts["feasible"] if "feasible" in pts.columns else [True] * len(pts))], dtype=bool)
    bad_seen = bool((~ok).any())
    seen = {p for p in prov if p in _HATCH}
    lo, hi = pts["_q_lo"].to_numpy(float), pts["_q_hi"].to_numpy(float)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    if has_ci.any():
        ax.errorbar(x[has_ci], y[has_ci], yerr=np.vstack([np.clip(y - lo, 0, None),
                                                          np.clip(hi - y, 0, None)])[:, has_ci],
                    fmt="none", ecolor="0.5", elinewidth=0.8, capsize=2, zorder=2)
    # one scatter call per style (not per point): fewer artists, faster redraws
    if bad_seen:
        ax.scatter(x[~ok], y[~ok], marker="x", color="tab:red", s=50, zorder=3)
    face = np.array([{"projected": "none", "estimated": "lightsteelblue"}.get(p, "tab:blue")
                     for p in prov], dtype=object)
    for fc in dict.fromkeys(face[ok]):
        sel = ok & (face == fc)
        ax.scatter(x[sel], y[sel], marker="o", s=50, facecolors=fc, edgecolors="tab:blue",
                   linewidths=1.3, zorder=3)
    if highlight is not None:
        ring = pts["candidate"].astype(str).isin([str(h) for h in highlight]).to_numpy(copy=True)
        if highlight_hardware is not None and "hardware" in pts.columns:
            ring = ring & pts["hardware"].astype(str).isin([str(h) for h in highlight_hardware]).to_numpy()
        if ring.any():
            ax.scatter(x[ring], y[ring], marker="o", s=180, facecolors="none",
                       edgecolors="tab:orange", linewidths=2, zorder=2)
    if higher_is_better is None and quality is None:
        from ..records.quality import split_key
        from ..records.metrics import HIGHER_IS_BETTER

        hib = HIGHER_IS_BETTER.get(split_key(quality_col)[0], True)
    elif higher_is_better is not None:
        hib = bool(higher_is_better)
    if not hib and quality is None:
        ylabel = quality_col + " (lower is better)"
    front = pareto_front(pts, cost_col, "_q", higher_is_better=hib)
    if len(front) >= 1:
        ax.step(front[cost_col].to_numpy(float), front["_q"].to_numpy(float), where="post",
                color="tab:green", linewidth=1.5, zorder=1)
    handles: list[Any] = [
        Line2D([], [], color="tab:green", label="Pareto front (cheaper and better)"),
        Line2D([], [], marker="o", linestyle="none", markerfacecolor="tab:blue",
               markeredgecolor="tab:blue", label="measured / entered"),
    ]
    if "projected" in seen:
        handles.append(Line2D([], [], marker="o", linestyle="none", markerfacecolor="none",
                              markeredgecolor="tab:blue", label=PROJECTED_LABEL))
    if "estimated" in seen:
        handles.append(Line2D([], [], marker="o", linestyle="none", markerfacecolor="lightsteelblue",
                              markeredgecolor="tab:blue", label=ESTIMATED_LABEL))
    if bad_seen:
        handles.append(Line2D([], [], marker="x", linestyle="none", color="tab:red",
                              label="misses latency SLO / infeasible"))
    if not auto_log(ax, x, "x"):
        ax.margins(x=0.25, y=0.2)  # room for the point labels
        if np.nanmin(x) >= 0:  # a cost axis never shows negative money
            ax.set_xlim(left=0.0)
    else:
        ax.margins(x=0.1, y=0.2)
    usd_formatter(ax, "x")
    yv = y[np.isfinite(y)]
    if yv.size and np.ptp(yv) == 0:  # one value: a readable band around it, not 1e-16 ticks
        c = float(yv[0])
        ax.set_ylim(c - max(abs(c) * 0.01, 1e-3), c + max(abs(c) * 0.01, 1e-3))
    months = None
    if hasattr(plan, "inputs") and isinstance(getattr(plan, "inputs"), dict):
        months = plan.inputs.get("months")
    ax.set_xlabel(cost_axis_label(cost_col, months))
    ax.set_ylabel(ylabel)
    ax.set_title("Quality vs " + cost_axis_label(cost_col, months).split(" (")[0], y=1.0, pad=6)
    ax.grid(alpha=0.3)
    notes = []
    if no_quality:
        notes.append(f"{no_quality} row(s) without a quality score")
    if no_cost:
        notes.append(f"{no_cost} row(s) without a cost (infeasible or unpriced)")
    if notes:  # in the legend, so it can collide with nothing
        handles.append(Line2D([], [], linestyle="none", label="not shown: " + "; ".join(notes)))
    _legend_below(ax, handles)
    place_labels(ax, x, y, pts["_series"].astype(str).tolist())
    return fig


@_literal_text
def cost_ranking(ranking: Any, ax: Axes | None = None, *, cost_col: str = "cost_usd",
                 title: str | None = None, max_rows: int = 12) -> Figure:
    """Every option (candidate @ hardware) as one horizontal bar, cheapest on top, with its
    P10-P90 range when known. The chosen option (``is_choice``) is orange, the baseline
    (``is_baseline``) grey and named so; projected rows are hatched. Options without a cost
    (infeasible / unpriced) get no bar; they are counted in the legend. At most ``max_rows``
    bars (the cheapest), the rest counted. ``ranking`` is :func:`effplan.planning.rank_options`'
    frame (or a plan summary). Alternatives are never added up."""
    df = _frame(ranking, "summary")
    _require(df, ("candidate", cost_col), "ranking")
    fig, ax = _figure_and_axes(ax)
    live = LiveCostRanking(ax, cost_col=cost_col, title=title, max_rows=max_rows)
    live.update(df)
    return fig


class LiveCostRanking:
    """The artists of :func:`cost_ranking`, updated in place: a new ranking with the same number
    of bars changes bar widths, colours, error bars and texts; nothing is re-created, so a
    dashboard redraw costs one canvas draw."""

    def __init__(self, ax: Axes, *, cost_col: str = "cost_usd", title: str | None = None,
                 max_rows: int = 12) -> None:
        self.ax, self.cost_col, self.max_rows = ax, cost_col, max_rows
        self.title = title
        self._n = -1
        self._bars: Any = None
        self._err: Any = None
        self._value_texts: list[Any] = []
        self._legend_key: tuple = ()
        self.months: int | None = None

    def update(self, df: pd.DataFrame) -> None:
        ax, col = self.ax, self.cost_col
        cost = pd.to_numeric(df[col], errors="coerce")
        have = df[cost.notna()].copy()
        have["_c"] = cost[cost.notna()].astype(float)
        have = have.sort_values("_c", kind="stable")
        missing = int(cost.isna().sum())
        shown = have.head(self.max_rows)
        hidden = len(have) - len(shown)
        n = len(shown)
        labels = (shown["candidate"].astype(str)
                  + (" @ " + shown["hardware"].astype(str) if "hardware" in shown.columns else "")
                  ).tolist()
        flags = []
        for r in shown.itertuples(index=False):
            d = r._asdict()
            flags.append((bool(d.get("is_choice", False)), bool(d.get("is_baseline", False)),
                          str(d.get("provenance", "")) == "projected"))
        labels = [lab + (" (baseline)" if b else "") + (" ← chosen" if c else "")
                  for lab, (c, b, _p) in zip(labels, flags)]
        widths = shown["_c"].to_numpy(float)
        pc = pct_cols(shown, col)
        lo = shown[pc[0]].to_numpy(float) if pc else np.full(n, np.nan)
        hi = shown[pc[1]].to_numpy(float) if pc else np.full(n, np.nan)
        colors = ["tab:orange" if c else "0.6" if b else "tab:blue" for c, b, _ in flags]
        hatches = ["xx" if p else "" for _, _, p in flags]
        if n != self._n:
            self._build(n)
        y = np.arange(n)
        for bar, w_, c_, h_ in zip(self._bars, widths, colors, hatches):
            bar.set_width(w_)
            bar.set_facecolor(c_)
            bar.set_hatch(h_ or None)
            bar.set_edgecolor("0.25" if h_ else c_)
        segs = [np.array([[l_, yy], [h_, yy]]) for l_, h_, yy in zip(lo, hi, y)
                if np.isfinite(l_) and np.isfinite(h_)]
        self._err.set_segments(segs)
        ax.set_yticks(y, labels, fontsize="small")
        for t, v in zip(self._value_texts, widths):
            t.set_text(_money_one(v) if np.isfinite(v) else "")
            t.xy = (v, t.xy[1])
        top = np.nanmax(np.concatenate([widths, hi[np.isfinite(hi)]])) if n else 1.0
        log = n >= 2 and np.nanmin(widths) > 0 and top / np.nanmin(widths) > 1e3
        ax.set_autoscalex_on(False)
        if log:
            ax.set_xlim(np.nanmin(widths) / 2, top * 8)
            ax.set_xscale("log")
        else:
            ax.set_xscale("linear")
            ax.set_xlim(0, top * 1.3 if top > 0 else 1.0)
        usd_formatter(ax, "x")
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlabel(cost_axis_label(col, self.months))
        key = (pc is not None, missing, hidden, any(p for *_x, p in flags))
        if key != self._legend_key:
            handles: list[Any] = [Patch(color="tab:orange", label="chosen"),
                                  Patch(color="0.6", label="baseline")]
            if pc:
                handles.append(Line2D([], [], color="0.15", label="P10–P90 (Monte Carlo)"))
            if key[3]:
                handles.append(Patch(facecolor="white", edgecolor="0.3", hatch="xx",
                                     label="projected (not measured)"))
            if missing:
                handles.append(Patch(color="none", label=f"{missing} option(s) without a cost "
                                                           "(infeasible or unpriced)"))
            if hidden:
                handles.append(Patch(color="none", label=f"{hidden} more expensive option(s) "
                                                          "not shown"))
            _legend_below(ax, handles)
            self._legend_key = key

    def _build(self, n: int) -> None:
        from matplotlib.collections import LineCollection

        ax = self.ax
        ax.clear()
        self._n = n
        if n == 0:
            _empty(ax, "no option has a cost (all infeasible or unpriced)")
            self._bars, self._value_texts = [], []
            self._err = LineCollection([], colors="0.15", linewidths=1.2)
            ax.add_collection(self._err)
            return
        self._bars = list(ax.barh(np.arange(n), np.zeros(n), height=0.6))
        self._err = LineCollection([], colors="0.15", linewidths=1.2, zorder=3)
        ax.add_collection(self._err)
        self._value_texts = [ax.annotate("", (0, i), xytext=(4, 0), textcoords="offset points",
                                         va="center", ha="left", fontsize="x-small")
                             for i in range(n)]
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(self.title or "Every option, cheapest first (alternatives, not a sum)",
                     y=1.0, pad=6)
        self._legend_key = ()


@_literal_text
def energy_and_co2(plan: Any, ax: Axes | None = None, *,
                   candidates: Sequence[str] | None = None,
                   hardware: Sequence[str] | None = None) -> Figure:
    """Energy (kWh, bars, left axis) and CO2 (kg, diamonds, right axis) per quarter.

    Bars whose energy is not metered are hatched: ``estimated-tdp`` -> "estimated energy",
    ``projected`` -> "projected energy". P10–P90 error bars on the energy when present.
    """
    df, fig, ax = _plan_rows(plan, "quarterly", ("candidate", "quarter", "energy_kwh", "co2_kg"), candidates, hardware, ax)
    if df.empty:
        return fig
    seen, handles, placed = _grouped_bars(ax, df, "quarter", "energy_kwh", band="energy_kwh",
                                          hatch_by="energy", also=("co2_kg",))
    ax.set_ylabel("energy per quarter (kWh, facility: x PUE)")
    ax2 = ax.twinx()
    for xpos, per_x, color in placed:      # a CO2 diamond on each energy bar
        ax2.scatter(xpos, per_x["co2_kg"].to_numpy(float), marker="D", s=28, color=color,
                    edgecolors="black", linewidths=0.6, zorder=4)
    ax2.set_ylabel("CO2 per quarter (kg, diamonds)")
    ax2.set_ylim(bottom=0)
    ax.set_ylim(bottom=0)
    ax.set_title("Energy and CO2 per quarter", y=1.0, pad=6)
    handles = handles + [Line2D([], [], marker="D", linestyle="none", color="0.5",
                                markeredgecolor="black", label="CO2 (right axis)")]
    _legend_below(ax, handles + _energy_handles(seen))
    ax.grid(axis="y", alpha=0.3)
    return fig


@_literal_text
def instances_over_time(plan: Any, ax: Axes | None = None, *,
                        candidates: Sequence[str] | None = None,
                        hardware: Sequence[str] | None = None) -> Figure:
    """Replicas (instances) per month, one step line per candidate (x hardware).

    Projected rows are dashed, estimated dotted, and named in the legend.
    """
    df, fig, ax = _plan_rows(plan, "monthly", ("candidate", "month", "instances"), candidates, hardware, ax)
    if df.empty:
        return fig
    df = df.assign(_series=_series_key(df))
    series = list(pd.unique(df["_series"]))
    colors = _colors(len(series))
    seen: set[str] = set()
    months = quarter_order(df["month"])
    mpos = {m: i for i, m in enumerate(months)}
    for k, name in enumerate(series):
        g = df[df["_series"] == name]
        per = g.groupby("month", sort=False)["instances"].sum()
        x = np.array([mpos[m] for m in per.index], dtype=float)
        order = np.argsort(x)
        prov = _provenance_of(g)
        if prov in _LINESTYLE:
            seen.add(prov)
        ax.step(x[order], per.to_numpy(float)[order], where="mid", color=colors[k],
                linestyle=_LINESTYLE.get(prov, "-"), marker="o", markersize=3, label=str(name))
    labels = [str(m) for m in months]
    step = max(1, len(months) // 12)
    ax.set_xticks(range(0, len(months), step), labels[::step])
    ax.set_xlabel("month (0 = first month of the plan)")
    ax.set_ylabel("instances (replicas)")
    ax.set_ylim(bottom=0)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Instances over time", y=1.0, pad=6)
    handles, _ = ax.get_legend_handles_labels()
    _legend_below(ax, handles + _provenance_handles(seen, kind="line"))
    ax.grid(alpha=0.3)
    return fig


def _plan_rows(plan: Any, attr: str, required: Iterable[str], candidates: Sequence[str] | None,
               hardware: Sequence[str] | None, ax: Axes | None) -> tuple[pd.DataFrame, Figure, Axes]:
    """The selected rows of ``plan.<attr>`` (required columns checked) and the figure and axes to
    draw on. An empty selection comes back empty, with a note already drawn on the axes."""
    df = select_rows(_frame(plan, attr), candidates, hardware)
    _require(df, required, f"plan.{attr}")
    fig, ax = _figure_and_axes(ax)
    if df.empty:
        _empty(ax, "no rows to show (check the candidate / hardware selection)")
    return df, fig, ax


def _truthy(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True  # unknown (e.g. no SLO given) is not a miss
    return bool(v)


def _empty(ax: Axes, msg: str) -> None:
    ax.text(0.5, 0.5, msg, ha="center", va="center", transform=ax.transAxes, color="0.4",
            wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------------------------
# measurement figures
# --------------------------------------------------------------------------------------------
def _measurements(frame: pd.DataFrame, cols: tuple[str, ...], mode: str | None) -> pd.DataFrame:
    """Validated rows with ``status == 'ok'`` (and ``mode`` when given)."""
    df = normalize_measurements(frame, required=("candidate", "batch_size") + cols,
                                source="measurements")
    df = df[df["status"] == "ok"]
    if mode is not None:
        df = df[df["mode"] == mode]
    return df


def _lines_by_batch(ax: Axes, df: pd.DataFrame, y_col: str, *,
                    band_col: str | None = None) -> set[str]:
    df = df.assign(_series=_series_key(df))
    series = list(pd.unique(df["_series"]))
    colors = _colors(len(series))
    seen: set[str] = set()
    for k, name in enumerate(series):
        g = df[df["_series"] == name].sort_values("batch_size")
        prov = _provenance_of(g)
        if prov in _LINESTYLE:
            seen.add(prov)
        x = g["batch_size"].to_numpy(float)
        y = g[y_col].to_numpy(float)
        ax.plot(x, y, marker="o", markersize=4, color=colors[k],
                linestyle=_LINESTYLE.get(prov, "-"), label=str(name))
        if band_col is not None:
            b = g[band_col].to_numpy(float)
            ok = np.isfinite(b) & np.isfinite(y)
            if ok.any():
                ax.fill_between(x[ok], y[ok], b[ok], color=colors[k], alpha=0.15, linewidth=0)
    bs = df["batch_size"].to_numpy(float)
    if bs.size and np.nanmin(bs) > 0 and np.nanmax(bs) / np.nanmin(bs) >= 8:
        ax.set_xscale("log", base=2)
        ticks = np.unique(bs)
        ax.set_xticks(ticks, [f"{int(t)}" for t in ticks])
    return seen


@_literal_text
def latency_vs_batch(frame: pd.DataFrame, ax: Axes | None = None, *,
                     mode: str | None = "inference") -> Figure:
    """Batch latency against batch size: p50 line with a shaded band up to p95 (when p50 is
    known; otherwise the p95 line alone). Estimated/projected rows are dotted/dashed."""
    df = _measurements(frame, ("latency_p95_ms",), mode)
    fig, ax = _figure_and_axes(ax)
    if df.empty:
        _empty(ax, f"no {mode or ''} measurements")
        return fig
    has_p50 = df["latency_p50_ms"].notna().all()
    if has_p50:
        seen = _lines_by_batch(ax, df, "latency_p50_ms", band_col="latency_p95_ms")
        ax.set_ylabel("batch latency (ms): p50 line, band to p95")
    else:
        seen = _lines_by_batch(ax, df, "latency_p95_ms")
        ax.set_ylabel("batch latency p95 (ms)")
    _finish_batch_axes(ax, seen, "Latency vs batch size", mode)
    return fig


def _finish_batch_axes(ax: Axes, seen: set[str], title: str, mode: str | None) -> None:
    """x label, title, legend (series + provenance styles), y from 0 and grid of a per-batch plot."""
    ax.set_xlabel("batch size")
    ax.set_title(title + (f" ({mode})" if mode else ""), y=1.0, pad=6)
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + _provenance_handles(seen, kind="line"), fontsize="small")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


@_literal_text
def throughput_vs_batch(frame: pd.DataFrame, ax: Axes | None = None, *,
                        mode: str | None = "inference") -> Figure:
    """Throughput (items/s) against batch size, one line per candidate (x hardware)."""
    df = _measurements(frame, ("throughput_items_per_s",), mode)
    fig, ax = _figure_and_axes(ax)
    if df.empty:
        _empty(ax, f"no {mode or ''} measurements")
        return fig
    seen = _lines_by_batch(ax, df, "throughput_items_per_s")
    ax.set_ylabel("throughput (items/s)")
    _finish_batch_axes(ax, seen, "Throughput vs batch size", mode)
    return fig


@_literal_text
def energy_per_item(frame: pd.DataFrame, ax: Axes | None = None, *,
                    mode: str | None = "inference", batch_size: int | None = None) -> Figure:
    """Energy per item (J) per candidate x hardware at one batch size, labelled by source.

    Uses ``batch_size`` when given, else each series' largest measured batch. Each bar is
    labelled with its ``energy_source`` and batch size; non-metered sources are hatched and
    named in the legend ("estimated energy" / "projected energy"). When
    ``energy_above_idle_per_item_j`` is known, the share above idle is drawn as a darker inner bar.
    """
    df = _measurements(frame, ("energy_per_item_j",), mode)
    fig, ax = _figure_and_axes(ax)
    if batch_size is not None:
        df = df[df["batch_size"] == batch_size]
    if df.empty:
        _empty(ax, "no measurements" + (f" at batch size {batch_size}" if batch_size else ""))
        return fig
    df = df.assign(_series=_series_key(df))
    # one row per series: the requested batch or the largest
    rows = df.sort_values("batch_size").groupby("_series", sort=False).tail(1)
    rows = rows.set_index("_series").loc[list(pd.unique(df["_series"]))].reset_index()
    colors = _colors(len(rows))
    x = np.arange(len(rows))
    y = rows["energy_per_item_j"].to_numpy(float)
    hatches = [_ENERGY_HATCH.get(s) for s in rows["energy_source"].astype(str)]
    bars = ax.bar(x, y, color=colors, edgecolor="0.25", linewidth=0.6)
    for b, h in zip(bars, hatches):
        if h:
            b.set_hatch(h)
    above = rows["energy_above_idle_per_item_j"].to_numpy(float)
    if np.isfinite(above).any():
        ax.bar(x, np.where(np.isfinite(above), above, 0.0), width=0.4, color="black", alpha=0.35,
               label="above idle")
    labels = [f"{s}\nbatch {int(b)}" for s, b in zip(rows["energy_source"], rows["batch_size"])]
    ax.bar_label(bars, labels=labels, fontsize="x-small", padding=2)
    ax.set_xticks(x, rows["_series"].astype(str), rotation=20, ha="right")
    ax.set_ylabel("energy per item (J, idle included)")
    ax.set_title("Energy per item" + (f" ({mode})" if mode else ""), y=1.0, pad=6)
    ax.set_ylim(0, (np.nanmax(y) if np.isfinite(y).any() else 1.0) * 1.25 or 1.0)
    handles, _ = ax.get_legend_handles_labels()
    handles += _energy_handles(set(rows["energy_source"].astype(str)))
    if handles:
        ax.legend(handles=handles, fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig
