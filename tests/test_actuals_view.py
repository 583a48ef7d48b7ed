"""effplan.actuals_view: the figures draw the variance's own numbers; the dashboard tab."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.patches import Rectangle

import effplan
from effplan import actuals_view as V
from effplan import focus_samples as fs


@pytest.fixture(scope="module")
def act():
    s = fs.sample_paths()
    return effplan.actuals(s["plan"], [s["focus_usd"], s["focus_eur"]], fx={"EUR": fs.USD_PER_EUR})


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_shipped_sample_reads_back(act):
    assert act.start == "2026-10" and list(act.monthly_totals["month"]) == ["2026-10", "2026-11"]
    assert set(act.variance["option"]) == set(fs.SCENARIO.values())


def test_planned_vs_actual_draws_the_totals(act):
    fig = V.planned_vs_actual(act)
    months, quarters = fig.axes[0], fig.axes[1]
    h = [b.get_height() for b in _bars(months)]
    t = act.monthly_totals
    np.testing.assert_allclose(h, list(t["planned_cost_usd"]) + list(t["actual_cost_usd"]))
    hq = [b.get_height() for b in _bars(quarters)]
    np.testing.assert_allclose(hq, [act.quarterly_totals["planned_cost_usd"].iloc[0],
                                    act.quarterly_totals["actual_cost_usd"].iloc[0]])
    # the first quarter is only two months of the bill: marked partial
    assert "partial" in quarters.get_xticklabels()[0].get_text()


def test_waterfall_steps_are_the_volume_and_rate_split(act):
    ax = V.variance_waterfall(act).axes[0]
    bars = _bars(ax)[:2 * 3 + 2]
    w = [b.get_width() for b in bars]
    v = act.variance.groupby("option", sort=False)[["volume_variance_usd", "rate_variance_usd"]].sum()
    assert w[0] == pytest.approx(act.variance["planned_cost_usd"].sum())
    assert w[-1] == pytest.approx(act.variance["actual_cost_usd"].sum())
    np.testing.assert_allclose(w[1:-1], np.abs(v.to_numpy().ravel()))
    # each step starts where the one before ended: planned + every step = actual
    ends = [b.get_x() + (b.get_width() if s >= 0 else 0) for b, s in
            zip(bars[1:-1], v.to_numpy().ravel())]
    assert ends[-1] == pytest.approx(w[-1])


def test_band_chart_plots_each_options_percentages(act):
    ax = V.band_chart(act).axes[0]
    lines = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert len(lines) == 3
    got = sorted(tuple(np.round(ln.get_ydata(), 6)) for ln in lines)
    want = sorted(tuple(np.round(g["variance_pct"].to_numpy() * 100, 6))
                  for _, g in act.variance.groupby("option"))
    assert got == want


def test_reforecast_chart_and_tables(act):
    r = act.reforecast(samples=20)
    ax = V.reforecast_chart(r).axes[0]
    actual = [ln for ln in ax.lines if ln.get_label() == "actual"][0]
    np.testing.assert_allclose(actual.get_ydata(), act.monthly_totals["actual_cost_usd"])
    q = V.quarter_table(act)
    assert q["candidate"].iloc[-1] == "all billed options"
    u = V.unmapped_table(act)
    assert u["cost_usd"].sum() == pytest.approx(act.unmapped["cost_usd"].sum())


def test_dashboard_gets_a_budget_vs_actuals_tab(act):
    from effplan.widgets import BudgetDashboard

    d = BudgetDashboard(fs.sample_measurements(), samples=0, actuals=act,
                        inference=effplan.defaults.workload(
                            requests_per_day=12_000 * 86_400))
    assert d._tabs.titles == ("Options ranked", "Quality vs cost", "Budget vs actuals")
    assert act.sentence().split(":")[0] in d._actuals_html.value
    assert "data:image/png;base64," in d._actuals_html.value
    d._tabs.selected_index = 2
    d.set(monthly_growth=0.1)   # a re-plan while the actuals tab is open
    assert d.error == ""
