"""Several quality bars in the dashboard (issue 21, item 4), computed by hand.

hand-typed measurements (tests/handtyped.py) at 1000 requests/s, utilisation 0.5, $2/h: small
needs 2 instances (Q1 = 2 x 730 h x 3 x $2 = $8,760), large (the baseline) 10 ($43,800).
Quality: small 0.96 clean / 0.93 under noise-0.1; large 0.97 / 0.955.
"""

from __future__ import annotations

import pandas as pd
import pytest

from effplan.planning import InferenceWorkload, Prices
from effplan.ui.dashboard import BudgetDashboard
from handtyped import hand_measurements

Q1_SMALL, Q1_LARGE = 2 * 730 * 3 * 2.0, 10 * 730 * 3 * 2.0


def _quality() -> pd.DataFrame:
    rows = []
    for cand, clean, noisy in (("small", 0.96, 0.93), ("large", 0.97, 0.955)):
        for cond, v in (("clean", clean), ("noise-0.1", noisy)):
            rows.append({"candidate": cand, "metric": "accuracy", "condition": cond, "value": v,
                         "ci_low": v - 0.01, "ci_high": v + 0.01, "n": 450, "provenance": "measured"})
    return pd.DataFrame(rows)


@pytest.fixture
def dash(tmp_path) -> BudgetDashboard:
    return BudgetDashboard(hand_measurements(),
                           inference=InferenceWorkload(requests_per_day=86_400_000.0, target_utilization=0.5),
                           prices=Prices(price_per_hour={"lab-cpu": 2.0}), samples=0, baseline="large",
                           export_dir=tmp_path / "exports", quality=_quality())


def _why(dash, cand):
    r = dash.ranking
    return str(r.loc[r["candidate"] == cand, "why_not"].iloc[0])


def test_a_clean_bar_alone_says_the_choice_fails_under_noise(dash):
    assert dash.set(metric="accuracy", condition="clean", min_quality=0.95)
    h = dash.headline
    assert (h.candidate, h.quarter_cost_usd) == ("small", pytest.approx(Q1_SMALL))
    assert h.savings_usd == pytest.approx(Q1_LARGE - Q1_SMALL)
    assert dash.shift_line == ("Under noise-0.1, small scores accuracy 0.93, below the bar of 0.95 that "
                               "the baseline large holds (0.955).")
    assert dash._headline_html.value.count('class="effplan-shift-gap"') == 1


def test_two_bars_change_the_headline(dash):
    assert dash.set(metric="accuracy", condition="clean", min_quality=0.95)
    assert dash.keep_bar()
    assert dash.controls["min_quality"].value == 0.0 and [b.label() for b in dash.bars] == [
        "accuracy >= 0.95 (clean)"]
    assert dash.headline.candidate == "small"           # the kept bar alone: small still passes
    assert dash.set(condition="noise-0.1", min_quality=0.95)
    h = dash.headline
    assert (h.candidate, h.quarter_cost_usd) == ("large", pytest.approx(Q1_LARGE))
    assert "accuracy (noise-0.1) 0.93 < 0.95" in _why(dash, "small")
    assert dash.shift_line == ""                          # the baseline itself is chosen
    assert dash.keep_bar() and len(dash.bars) == 2
    assert dash.headline.candidate == "large"
    assert "accuracy@noise-0.1 = 0.93 < min 0.95" in _why(dash, "small")
    assert "accuracy &gt;= 0.95 (noise-0.1)" in dash._headline_html.value
    # judged on the interval's lower end, the clean bar at 0.955: large's 0.96 passes, small's 0.95 not
    assert dash.set_bars([("accuracy", 0.955, "interval")])
    assert dash.headline.candidate == "large"
    assert "accuracy lower end = 0.95 < min 0.955" in _why(dash, "small")
    assert dash.set_bars([])
    assert dash.headline.candidate == "small"


def test_a_bad_bar_is_refused_with_the_field(dash):
    assert not dash.set_bars([("accuracy", "high")])
    assert "bars" in dash.error
