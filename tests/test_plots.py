"""Plots: pyplot-free Figures, provenance labelling, P10–P90 bands and the Pareto front."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (only to check that nothing registers with it)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from effplan import plots  # noqa: E402
from effplan.errors import ValidationError  # noqa: E402
from effplan.planning import InferenceWorkload, Prices  # noqa: E402
from effplan.planning import plan as make_real_plan  # noqa: E402
from handtyped import hand_measurements  # noqa: E402


def make_plan(samples: int = 0, project_to: tuple[str, ...] = ()):
    """The real planner on the hand-typed rows: 1000 req/s, 50% utilization, $2/h."""
    return make_real_plan(
        hand_measurements(),
        inference=InferenceWorkload(requests_per_day=86_400_000, target_utilization=0.5),
        prices=Prices(price_per_hour={"lab-cpu": 2.0}, grid_gco2_per_kwh=400),
        hardware=list(project_to) or None, samples=samples, seed=0)


@pytest.fixture(autouse=True)
def _no_pyplot_figures():
    """Every test here must leave pyplot's figure registry empty."""
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plot function created a pyplot figure"


def _legend_texts(fig: Figure) -> list[str]:
    out = []
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    return out


def _render(fig: Figure) -> None:
    """Draw to a PNG in memory: catches errors that only show at draw time."""
    import io

    fig.savefig(io.BytesIO(), format="png", dpi=40)


# ------------------------------------------------------------------------------ Pareto
def test_pareto_front_hand_computed_points():
    pts = pd.DataFrame({
        "name": ["a", "b", "c", "d", "e", "f"],
        "cost_usd": [10.0, 20.0, 15.0, 30.0, 20.0, 5.0],
        "quality": [0.80, 0.90, 0.70, 0.95, 0.85, 0.60],
    })
    # a(10,.80) beats c(15,.70); b(20,.90) beats e(20,.85); f is cheapest; d is best.
    front = plots.pareto_front(pts, "cost_usd", "quality")
    assert list(front["name"]) == ["f", "a", "b", "d"]
    assert list(front.index) == [5, 0, 1, 3]  # original index kept, sorted by cost


def test_pareto_front_ties_nan_and_single_point():
    pts = pd.DataFrame({"cost_usd": [1.0, 1.0, 2.0, np.nan, 1.0],
                        "quality": [0.5, 0.5, 0.5, 0.99, np.nan]})
    front = plots.pareto_front(pts)
    # two identical points do not dominate each other; (2, .5) is dominated; NaNs dropped
    assert list(front.index) == [0, 1]
    one = plots.pareto_front(pts.iloc[[2]])
    assert list(one.index) == [2]
    with pytest.raises(ValidationError, match="quality"):
        plots.pareto_front(pts.drop(columns="quality"))


def test_pareto_front_same_cost_keeps_only_best_quality():
    pts = pd.DataFrame({"c": [3.0, 3.0, 4.0], "q": [0.7, 0.9, 0.95]})
    assert list(plots.pareto_front(pts, "c", "q").index) == [1, 2]


# ------------------------------------------------------------------------------ plan figures
@pytest.mark.parametrize("samples", [0, 64])
def test_plan_figures_build_for_deterministic_and_mc_plans(samples):
    plan = make_plan(samples=samples)
    for fn in (plots.cost_per_quarter, plots.quality_vs_cost, plots.energy_and_co2,
               plots.instances_over_time):
        fig = fn(plan)
        assert isinstance(fig, Figure)
        assert fig.axes, fn.__name__
        _render(fig)


def test_cost_per_quarter_bars_error_bands_and_values():
    plan = make_plan(samples=64)
    q = plan.quarterly
    fig = plots.cost_per_quarter(plan)
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches if p.get_height() > 0)
    assert heights == sorted(round(v, 6) for v in q["cost_usd"] if v > 0)
    assert any(isinstance(c, ErrorbarContainer) for c in ax.containers), "no P10–P90 bars"
    assert any("P10" in t for t in _legend_texts(fig)) or "P10" in ax.get_title()
    # deterministic plan: no error bars
    fig0 = plots.cost_per_quarter(make_plan(samples=0))
    assert not any(isinstance(c, ErrorbarContainer) for c in fig0.axes[0].containers)


def test_projected_rows_get_the_projected_label():
    plan = make_plan(samples=0, project_to=("A100 80GB",))
    assert (plan.quarterly["provenance"] == "projected").any()
    for fn in (plots.cost_per_quarter, plots.instances_over_time, plots.quality_vs_cost):
        texts = _legend_texts(fn(plan))
        assert any("projected" in t for t in texts), (fn.__name__, texts)
    energy_texts = _legend_texts(plots.energy_and_co2(plan))
    assert any("projected energy" in t or "estimated energy" in t for t in energy_texts)
    # the projected bars are hatched, the measured ones are not
    ax = plots.cost_per_quarter(plan).axes[0]
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert hatched and len(hatched) < len(ax.patches)


def test_plan_without_projection_has_no_projected_label():
    plan = make_plan(samples=0)
    assert not (plan.quarterly["provenance"] == "projected").any()
    assert not any("projected" in t for t in _legend_texts(plots.cost_per_quarter(plan)))


def test_quality_vs_cost_draws_pareto_line_through_front():
    plan = make_plan(samples=0)
    fig = plots.quality_vs_cost(plan)
    ax = fig.axes[0]
    front = plots.pareto_front(plan.summary, "cost_usd", "quality")
    line = [ln for ln in ax.get_lines() if ln.get_color() == "tab:green"]
    assert len(line) == 1
    xs = np.unique(line[0].get_xdata())
    np.testing.assert_allclose(np.sort(xs), np.sort(front["cost_usd"].to_numpy(float)))


def test_filters_and_ax_argument():
    plan = make_plan(samples=0)
    fig = Figure()
    ax = fig.add_subplot()
    out = plots.cost_per_quarter(plan, ax=ax, candidates=["small"])
    assert out is fig
    labels = [t for t in _legend_texts(fig)]
    assert "small" in labels and "large" not in labels
    empty = plots.cost_per_quarter(plan, candidates=["nope"])
    assert any("no rows" in t.get_text() for t in empty.axes[0].texts)
    with pytest.raises(ValidationError, match="plan"):
        plots.cost_per_quarter(object())


# ------------------------------------------------------------------------------ measurement figures
def test_measurement_figures_build_and_label_energy_source():
    m = hand_measurements()
    m.loc[m["candidate"] == "large", "energy_source"] = "estimated-tdp"
    for fn in (plots.latency_vs_batch, plots.throughput_vs_batch, plots.energy_per_item):
        fig = fn(m)
        assert isinstance(fig, Figure)
        _render(fig)
    fig = plots.energy_per_item(m)
    ax = fig.axes[0]
    bar_texts = [t.get_text() for t in ax.texts]
    assert any("estimated-tdp" in t for t in bar_texts)
    assert any("entered" in t for t in bar_texts)
    assert any("estimated energy" in t for t in _legend_texts(fig))
    # largest batch per candidate: small@8 -> 0.5 J, large@8 -> 1.25 J (hand-typed)
    heights = sorted(p.get_height() for p in ax.patches if p.get_width() > 0.5)
    assert heights == pytest.approx([0.5, 1.25])


def test_latency_vs_batch_plots_hand_values_and_marks_estimated_rows():
    m = hand_measurements()
    m.loc[m["candidate"] == "large", "provenance"] = "estimated"
    fig = plots.latency_vs_batch(m)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["small"].get_ydata(), [3.0, 8.0])  # p50 line
    np.testing.assert_allclose(lines["small"].get_xdata(), [1.0, 8.0])
    # band from p50 up to p95: the top of small's band is its p95 (4, 10)
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].max() == pytest.approx(10.0)
    assert lines["large"].get_linestyle() == ":"
    assert lines["small"].get_linestyle() == "-"
    assert any("estimated" in t for t in _legend_texts(fig))
    # without p50 the p95 line alone is drawn
    fig2 = plots.latency_vs_batch(m.drop(columns="latency_p50_ms"))
    lines2 = {ln.get_label(): ln for ln in fig2.axes[0].get_lines()}
    np.testing.assert_allclose(lines2["small"].get_ydata(), [4.0, 10.0])
    assert not fig2.axes[0].collections


def test_throughput_vs_batch_rejects_a_bad_frame():
    with pytest.raises(ValidationError, match="throughput_items_per_s"):
        plots.throughput_vs_batch(pd.DataFrame({"candidate": ["a"], "batch_size": [1]}))


# ------------------------------------------------------------------------------ readability
def _visible_texts(fig: Figure):
    """(kind, Text) of every text the renderer draws: titles, axis labels, tick labels in view,
    annotations, legend entries, figure texts."""
    out = []
    for t in dict.fromkeys([fig._suptitle] + list(fig.texts)):
        if t is not None and t.get_visible() and t.get_text().strip():
            out.append(("figure", t))
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for kind, t in (("title", ax.title), ("title", ax._left_title), ("title", ax._right_title),
                        ("xlabel", ax.xaxis.label), ("ylabel", ax.yaxis.label)):
            if t.get_visible() and t.get_text().strip():
                out.append((kind, t))
        for name, axis in (("xtick", ax.xaxis), ("ytick", ax.yaxis)):
            if not axis.get_visible():
                continue
            for tick in axis._update_ticks():
                for lab in (tick.label1, tick.label2):
                    if lab.get_visible() and lab.get_text().strip():
                        out.append((name, lab))
        for t in ax.texts:
            if t.get_visible() and t.get_text().strip():
                out.append(("annotation", t))
        leg = ax.get_legend()
        if leg is not None:
            out += [("legend", t) for t in leg.get_texts() if t.get_text().strip()]
    return out


def assert_readable(fig: Figure, name: str) -> None:
    """Unique tick labels on every axis; no two drawn texts overlap; nothing clipped by the
    figure edge. Extents come from the renderer after a real draw."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    fig.savefig(io.BytesIO(), format="png")  # runs the layout engine and a full draw
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible():
                continue
            labels = [t.label1.get_text() for t in axis._update_ticks()
                      if t.label1.get_visible() and t.label1.get_text().strip()]
            labels += [t.label2.get_text() for t in axis._update_ticks()
                       if t.label2.get_visible() and t.label2.get_text().strip()]
            assert len(labels) == len(set(labels)), f"{name}: repeated tick labels {labels}"
    texts = _visible_texts(fig)
    boxes = [(k, t.get_text(), t.get_window_extent(renderer)) for k, t in texts]
    fb = fig.bbox
    for k, text, b in boxes:
        assert b.x0 >= fb.x0 - 1 and b.x1 <= fb.x1 + 1 and b.y0 >= fb.y0 - 1 and b.y1 <= fb.y1 + 1, \
            f"{name}: {k} {text!r} clipped by the figure edge ({b} vs {fb})"
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (k1, t1, b1), (k2, t2, b2) = boxes[i], boxes[j]
            w = min(b1.x1, b2.x1) - max(b1.x0, b2.x0)
            h = min(b1.y1, b2.y1) - max(b1.y0, b2.y0)
            assert not (w > 1 and h > 1), f"{name}: {k1} {t1!r} overlaps {k2} {t2!r}"


def _edge_rows(kind: str) -> pd.DataFrame:
    """Measurements for the edge cases: one candidate; four identical candidates; four whose
    throughput (so cost at the demo traffic) spans 5 orders of magnitude."""
    if kind == "one":
        specs = [("only-model", 500.0, 0.9)]
    elif kind == "identical":
        specs = [(f"twin-{i}", 500.0, 0.9) for i in range(4)]
    else:
        specs = [("tiny", 1e5, 0.80), ("small", 1e4, 0.85), ("medium", 1e2, 0.9),
                 ("huge", 0.05, 0.95)]
    rows = []
    for name, tput, q in specs:
        for bs in (1, 8):
            rows.append(dict(candidate=name, hardware="lab-cpu", mode="inference", batch_size=bs,
                             latency_p50_ms=bs / tput * 800, latency_p95_ms=bs / tput * 1000,
                             throughput_items_per_s=tput, energy_per_item_j=50.0 / tput,
                             idle_power_w=20.0, flops_per_item=1e9, quality=q,
                             provenance="entered", energy_source="entered",
                             tags="baseline" if name in ("only-model", "twin-0", "huge") else ""))
    return pd.DataFrame(rows)


def _edge_plan(kind: str, samples: int = 0):
    # 86.4M requests/day = 1000 items/s: "huge" (0.05 item/s) needs 40,000+ instances, "tiny" one
    return make_real_plan(_edge_rows(kind),
                          inference=InferenceWorkload(requests_per_day=86_400_000,
                                                      target_utilization=0.5, months=12),
                          prices=Prices(price_per_hour={"lab-cpu": 2.0}, grid_gco2_per_kwh=400),
                          samples=samples, seed=0)


@pytest.mark.parametrize("kind", ["one", "identical", "five-orders"])
def test_every_chart_is_readable_on_edge_case_data(kind):
    from effplan.notebook import training_figure

    p = _edge_plan(kind, samples=50)
    if kind == "five-orders":
        c = p.summary["cost_usd"]
        assert c.max() / c.min() > 1e4  # the case really spans 5 orders of magnitude
    frame = _edge_rows(kind)
    figs = {
        "cost_per_quarter": plots.cost_per_quarter(p),
        "quality_vs_cost": plots.quality_vs_cost(p),
        "quality_vs_cost_per_1k": plots.quality_vs_cost(p, cost_col="cost_per_1k_requests_usd"),
        "energy_and_co2": plots.energy_and_co2(p),
        "instances_over_time": plots.instances_over_time(p),
        "cost_ranking": plots.cost_ranking(p.summary),
        "latency_vs_batch": plots.latency_vs_batch(frame),
        "throughput_vs_batch": plots.throughput_vs_batch(frame),
        "energy_per_item": plots.energy_per_item(frame),
    }
    tp = make_real_plan(frame.assign(mode="training"),
                        training=__import__("effplan").TrainingWorkload(
                            runs_per_quarter=2, items_per_epoch=1e6),
                        prices=Prices(price_per_hour={"lab-cpu": 2.0}))
    figs["training_figure"] = training_figure(tp)
    for name, fig in figs.items():
        assert_readable(fig, f"{kind}/{name}")


def test_money_ticks_never_repeat_and_axis_says_per_1000_requests():
    labels = plots.money_labels([1000, 1500, 2000, 2500])
    assert labels == ["$1,000", "$1,500", "$2,000", "$2,500"]
    assert plots.money_labels([15000, 17500, 20000]) == ["$15.0k", "$17.5k", "$20.0k"]
    assert len(set(plots.money_labels([0.0200, 0.0201, 0.0202]))) == 3
    assert plots.money_labels([0.02]) == ["$0.02"]
    # $0.00111 and $0.00556 per 1,000 requests: shown per million requests ($1.11, $5.56),
    # never as "$0.0000004"-like ticks
    fig = plots.quality_vs_cost(make_plan(), cost_col="cost_per_1k_requests_usd")
    assert fig.axes[0].get_xlabel() == "cost per million requests (USD)"
    xs = sorted(float(o.get_offsets()[i][0]) for o in fig.axes[0].collections
                if hasattr(o, "get_offsets") for i in range(len(o.get_offsets())))
    assert xs[0] == pytest.approx(1000 / 900) and xs[-1] == pytest.approx(1000 / 180)
    assert plots._readable_per("cost_per_1k_requests_usd", [0.02]) == ("", 1.0)
    assert plots._readable_per("cost_per_1k_requests_usd", [4e-7]) == ("billion requests", 1e6)
    fig = plots.quality_vs_cost(make_plan())
    assert fig.axes[0].get_xlabel() == "cost over the 12-month plan horizon (USD)"


def test_identical_points_share_one_label():
    p = _edge_plan("identical")
    fig = plots.quality_vs_cost(p)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["twin-0, twin-1, twin-2, twin-3"]


def test_quality_metric_and_condition_from_a_tidy_quality_frame():
    p = make_plan()
    q = pd.DataFrame({
        "candidate": ["small", "large", "small", "large", "small", "large"],
        "metric": ["accuracy", "accuracy", "accuracy", "accuracy", "error_rate", "error_rate"],
        "condition": ["clean", "clean", "noisy", "noisy", "clean", "clean"],
        "value": [0.90, 0.95, 0.70, 0.60, 0.10, 0.05],
        "ci_low": [0.88, 0.94, 0.65, 0.55, 0.08, 0.04],
        "ci_high": [0.92, 0.96, 0.75, 0.65, 0.12, 0.06],
        "n": 500, "provenance": "measured",
        "higher_is_better": [True, True, True, True, False, False],
    })
    fig = plots.quality_vs_cost(p, quality=q, metric="accuracy", condition="noisy")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "accuracy (noisy)"
    from matplotlib.collections import PathCollection

    ys = sorted(float(v) for c in ax.collections if isinstance(c, PathCollection)
                for v in np.asarray(c.get_offsets())[:, 1])
    assert ys == pytest.approx([0.60, 0.70])  # the noisy values, not the summary's quality
    # under noise the cheaper "small" model is also better: it alone is on the front
    s = p.summary.assign(acc=lambda d: d["candidate"].map({"small": 0.70, "large": 0.60}))
    assert plots.pareto_front(s, quality_col="acc")["candidate"].tolist() == ["small"]
    # lower is better: the front flips to prefer the lower error rate
    s = p.summary.assign(err=lambda d: d["candidate"].map({"small": 0.10, "large": 0.05}))
    front = plots.pareto_front(s, quality_col="err", higher_is_better=False)
    assert set(front["candidate"]) == {"small", "large"}
    fig = plots.quality_vs_cost(p, quality=q, metric="error_rate")
    assert fig.axes[0].get_ylabel() == "error_rate (clean) (lower is better)"
    with pytest.raises(ValidationError) as e:
        plots.quality_vs_cost(p, quality=q, metric="bleu")
    assert e.value.field == "metric"


@pytest.mark.parametrize("names", [("$$", "a$b$c"), ("$x^2$", r"\frac")])
def test_dollar_signs_in_names_are_drawn_literally_not_as_mathtext(names):
    # a candidate named "$$" once raised ValueError from matplotlib's mathtext parser when the
    # figure was drawn, and so when the dashboard was built (issue 10, case 9)
    import io

    df = hand_measurements()
    df["candidate"] = df["candidate"].map({"small": names[0], "large": names[1]})
    p = make_real_plan(df, inference=InferenceWorkload(requests_per_day=86_400),
                       prices=Prices(price_per_hour={"lab-cpu": 2.0}))
    figs = [plots.cost_per_quarter(p), plots.quality_vs_cost(p), plots.energy_and_co2(p),
            plots.instances_over_time(p), plots.latency_vs_batch(df), plots.throughput_vs_batch(df),
            plots.energy_per_item(df)]
    for fig in figs:
        fig.savefig(io.BytesIO(), format="png")  # draws every text: must not raise
    texts = [t.get_text() for t in figs[1].findobj(matplotlib.text.Text)]
    assert names[0] in texts and names[1] in texts  # shown as typed, not escaped or parsed
