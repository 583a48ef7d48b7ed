"""What the figures and the dashboard DRAW, read back and checked against the plan's numbers:
a chart that doubled an instance count or a cost would fail here (issue 19)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import effplan

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handtyped import hand_measurements  # noqa: E402

PRICE = 2.0  # $/h of the hand-typed machine
WORKLOAD = effplan.InferenceWorkload(requests_per_day=20_000_000, months=6, slo_p95_ms=None)


@pytest.fixture(scope="module")
def plan():
    return effplan.plan(hand_measurements(), inference=WORKLOAD,
        prices=effplan.Prices(price_per_hour={"lab-cpu": PRICE}), samples=0)


def test_instances_figure_draws_the_plans_instances(plan):
    from effplan.views.figures import instances_over_time

    fig = instances_over_time(plan)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    for cand, g in plan.monthly.groupby("candidate", sort=False):
        line = next(ln for label, ln in lines.items() if label.startswith(str(cand)))
        drawn = np.asarray(line.get_ydata(), dtype=float)
        want = g.sort_values("month")["instances"].to_numpy(float)
        assert drawn.tolist() == want.tolist(), cand
    # hand-computed: 20M requests/day = 231.5/s (peak = average, no growth); small serves
    # 1000 items/s at batch 8 -> 700/s at 0.7 utilisation -> 1 instance; large 200 x 0.7 = 140/s
    # -> ceil(231.5 / 140) = 2 instances
    first = {c: g.sort_values("month")["instances"].iloc[0] for c, g in plan.monthly.groupby("candidate")}
    assert first == {"small": 1, "large": 2}


def test_cost_bars_draw_each_quarters_cost(plan):
    from effplan.views.figures import cost_per_quarter

    fig = cost_per_quarter(plan)
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches if p.get_height() > 0)
    want = sorted(round(v, 6) for v in plan.quarterly["cost_usd"].to_numpy(float))
    assert heights == want
    # hand-computed: a quarter of 3 x 730 h at $2/h: small 1 instance = $4,380, large 2 = $8,760
    assert sorted(set(heights)) == [4380.0, 8760.0]


def _bar_widths(markup: str) -> list[tuple[str, float]]:
    """(option name, bar width %) of each bar the dashboard's ranking chart draws."""
    names = re.findall(r'<div title="([^"]+)" style="flex:0 0 36%', markup)
    widths = [float(x) for x in re.findall(r'position:absolute;left:0;width:([0-9.]+)%', markup)]
    return list(zip(names, widths, strict=True))


def test_dashboard_bars_are_proportional_to_the_quarter_costs():
    from effplan.widgets import BudgetDashboard

    d = BudgetDashboard(hand_measurements(), inference=WORKLOAD,
                        prices=effplan.Prices(price_per_hour={"lab-cpu": PRICE}), samples=0)
    markup = "".join(c.value for c in _html_widgets(d.widget) if "position:absolute;left:0;width:" in c.value)
    bars = _bar_widths(markup)
    assert len(bars) == 2
    r = d.ranking.set_index(d.ranking["candidate"] + " @ " + d.ranking["hardware"])
    costs = {name: float(r.loc[name, "quarter_cost_usd"]) for name, _ in bars}
    top = max(costs.values())
    for name, width in bars:  # linear scale: width = 100 x cost / (1.05 x the largest cost)
        assert width == pytest.approx(100.0 * costs[name] / (1.05 * top), abs=0.01), name
    # hand-computed: $4,380 and $8,760 a quarter -> 100 x 4380 / (1.05 x 8760) = 47.62 %, 95.24 %
    assert dict(bars) == {"small @ lab-cpu": pytest.approx(47.62, abs=0.01),
                          "large @ lab-cpu": pytest.approx(95.24, abs=0.01)}


def test_dashboard_quality_svg_places_points_at_their_costs():
    from effplan.widgets import BudgetDashboard

    import ipywidgets as w

    d = BudgetDashboard(hand_measurements(), inference=WORKLOAD,
                        prices=effplan.Prices(price_per_hour={"lab-cpu": PRICE}), samples=0)
    tabs = [x for x in _widgets(d.widget) if isinstance(x, w.Tab)]
    tabs[0].selected_index = 1  # the user opens the quality tab: it is drawn then
    svg = "".join(c.value for c in _html_widgets(d.widget) if "effplan-quality-svg" in c.value)
    assert svg, "the quality chart is drawn"
    xs = [float(x) for x in re.findall(r'<circle[^>]* cx="([0-9.]+)"', svg)]
    assert len(xs) >= 2, svg[:500]
    s = d.plan.summary.set_index("candidate")
    cost = s["cost_per_1k_requests_usd"].astype(float)
    # large costs twice small per 1,000 requests (2 instances for the same traffic), and is drawn
    # further right
    assert cost["large"] == pytest.approx(2 * cost["small"])
    assert min(xs) < max(xs)


def _widgets(root):
    out, todo = [], [root]
    while todo:
        x = todo.pop()
        out.append(x)
        todo.extend(getattr(x, "children", ()) or ())
    return out


def _html_widgets(root):
    import ipywidgets as w

    return [x for x in _widgets(root) if isinstance(x, w.HTML)]
