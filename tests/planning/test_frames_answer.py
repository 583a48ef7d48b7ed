"""The answer read off a plan: every option ranked against the baseline, the one choice and its
savings, and the only sum (portfolio mode). Budgets hand-computed from typed-in rows."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handtyped import hand_measurements  # noqa: E402

from effplan.planning import (InferenceWorkload, Prices, baseline_candidate, headline,  # noqa: E402
                              plan, portfolio_total, rank_options)

HOURS = 730.0


def _plan(samples: int = 0, slo=None, rpd: float = 86_400_000.0):
    # 1000 items/s, peak = average, 50% utilization, $2/h. No latency target: batch 8.
    # small: 1000 x 0.5 = 500/s -> 2 instances -> Q1 = 3 x 2 x 730 x 2 = $8,760
    # large:  200 x 0.5 = 100/s -> 10 instances -> Q1 = $43,800
    m = hand_measurements().assign(tags=["distilled", "distilled", "baseline", "baseline"])
    return m, plan(m, inference=InferenceWorkload(requests_per_day=rpd, target_utilization=0.5,
                                                  slo_p95_ms=slo),
                   prices=Prices(price_per_hour={"lab-cpu": 2.0}), samples=samples, seed=0)


def test_baseline_candidate_reads_the_tag():
    m, _ = _plan()
    assert baseline_candidate(m) == "large"
    assert baseline_candidate(m.drop(columns="tags")) is None
    assert baseline_candidate(m.assign(tags="slim, baseline ,x")) == "small"  # first in order


def test_rank_options_hand_computed_and_vs_baseline():
    _, p = _plan()
    r = rank_options(p, baseline="large")
    assert list(r["candidate"]) == ["small", "large"] and list(r["rank"]) == [1, 2]
    assert list(r["quarter_cost_usd"]) == pytest.approx([3 * 2 * HOURS * 2, 3 * 10 * HOURS * 2])
    assert list(r["vs_baseline_usd"]) == pytest.approx([8_760.0 - 43_800.0, 0.0])
    assert r["vs_baseline_pct"].iloc[0] == pytest.approx(-0.8)
    assert list(r["is_baseline"]) == [False, True]
    assert r["meets_targets"].all() and set(r["why_not"]) == {""}
    assert {"price_source", "energy_source", "provenance"} <= set(r.columns)
    assert r.attrs["quarter"] == "Q1" and r.attrs["baseline_quarter_cost_usd"] == pytest.approx(43_800)


def test_headline_is_the_cheapest_option_meeting_the_targets():
    _, p = _plan()
    h = headline(p, baseline="large")
    assert (h.candidate, h.hardware) == ("small", "lab-cpu")
    assert h.quarter_cost_usd == pytest.approx(8_760.0)
    assert h.horizon_cost_usd == pytest.approx(4 * 8_760.0)
    assert h.savings_usd == pytest.approx(35_040.0) and h.savings_pct == pytest.approx(0.8)
    assert h.sentence() == ("Run small on lab-cpu: $8,760 in Q1, saves $35,040 (80%) against "
                            "the baseline large on lab-cpu.")
    # a minimum quality the cheap model misses: the baseline is the answer, saving nothing
    h = headline(p, baseline="large", min_quality=0.93)
    assert h.candidate == "large" and h.savings_usd == 0.0
    r = rank_options(p, baseline="large", min_quality=0.93)
    assert r.set_index("candidate").at["small", "why_not"] == "quality 0.9 < 0.93"
    h = headline(p, baseline="large", min_quality=0.99)
    assert not h.found and math.isnan(h.quarter_cost_usd) and "No option meets" in h.message


def test_latency_target_makes_options_infeasible_never_zero():
    # 12 ms end to end: small only at batch 1 (fill + queue + p95 = 11.2 ms; 300 x 0.5 = 150/s
    # -> 7 instances); large: no batch qualifies (best 57 ms)
    _, p = _plan(slo=12.0)
    r = rank_options(p, baseline="large").set_index("candidate")
    assert r.at["small", "quarter_cost_usd"] == pytest.approx(3 * 7 * HOURS * 2)
    assert math.isnan(r.at["large", "quarter_cost_usd"]) and not r.at["large", "meets_targets"]
    h = headline(p, baseline="large")
    assert h.candidate == "small" and math.isnan(h.savings_usd)
    assert "baseline large has no cost" in h.message


def test_monte_carlo_band_of_the_first_quarter():
    _, p = _plan(samples=64)
    h = headline(p, baseline="large")
    q = p.quarterly.set_index(["candidate", "quarter"])
    first = p.quarterly["quarter"].iloc[0]
    assert h.quarter_cost_usd_p10 == pytest.approx(q.at[("small", first), "cost_usd_p10"])
    assert h.quarter_cost_usd_p90 == pytest.approx(q.at[("small", first), "cost_usd_p90"])
    assert "P10-P90" in h.sentence()


def test_portfolio_is_the_only_sum_and_says_so():
    _, p = _plan()
    r = rank_options(p, baseline="large")
    port = portfolio_total(r, ["small", "large"])
    assert port["quarter_cost_usd"] == pytest.approx(8_760.0 + 43_800.0)
    assert "SUM" in port["definition"]
    port = portfolio_total(rank_options(p, baseline="large", min_quality=0.93), ["small", "large"])
    assert port["missing"] == ["small"] and port["quarter_cost_usd"] == pytest.approx(43_800.0)
    assert isinstance(r, pd.DataFrame)
