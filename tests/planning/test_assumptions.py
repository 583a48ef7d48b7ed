"""The headline's assumption line, its calendar quarter, the P10-P90 of the saving and the "keep the
baseline" case -- all from hand-typed rows whose budget is computed by hand (tests/handtyped.py)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handtyped import hand_measurements  # noqa: E402

from effplan.planning import InferenceWorkload, Prices, Uncertainty, headline, plan, rank_options  # noqa: E402
from effplan.planning.assumptions import count_words, quarter_span  # noqa: E402
from effplan.planning.savings import savings_band  # noqa: E402

HOURS = 730.0


def _plan(m=None, samples: int = 0, unc=None, **wl):
    # small: 1000 items/s x 0.5 -> 2 instances -> Q1 = 3 x 2 x 730 x $2 = $8,760
    # large:  200 items/s x 0.5 -> 10 instances -> Q1 = $43,800 (no growth, peak = average)
    m = hand_measurements().assign(tags=["", "", "baseline", "baseline"]) if m is None else m
    kw = dict(requests_per_day=86_400_000.0, target_utilization=0.5, slo_p95_ms=None)
    kw.update(wl)
    return plan(m, inference=InferenceWorkload(**kw), prices=Prices(price_per_hour={"lab-cpu": 2.0}),
                samples=samples, seed=0, uncertainty=unc)


def test_quarter_span_and_count_words():
    assert quarter_span("2027-Q1") == "Jan–Mar 2027"
    assert quarter_span("2026-Q4") == "Oct–Dec 2026"
    assert quarter_span("2026-11..2027-01") == "Nov 2026–Jan 2027"
    assert quarter_span("2027-02..2027-04") == "Feb–Apr 2027"
    assert quarter_span("Q1") == ""
    assert count_words(4e10) == "40 billion" and count_words(1.905e11) == "190.5 billion"
    assert count_words(86_400_000) == "86.4 million" and count_words(12_345) == "12,345"


def test_assumption_line_by_hand_with_a_calendar_start():
    p = _plan(start="2027-01", monthly_growth=0.05, peak_to_average=2.0)
    h = headline(p, baseline="large", traffic_note="demo traffic")
    assert h.quarter == "2027-Q1"
    assert h.assumptions() == (
        "Assumes 86.4 million requests/day in 2027-01 (demo traffic), growing 5%/month, "
        "peak 2× the average, 50% utilisation, no latency target; price: entered; "
        "2027-Q1 = Jan–Mar 2027.")
    assert h.sentence().startswith("Run small on lab-cpu: $") and " in 2027-Q1, saves $" in h.sentence()
    # the ranking's quarter column is the calendar quarter too
    assert rank_options(p, baseline="large").attrs["quarter"] == "2027-Q1"


def test_assumption_line_says_a_block_that_is_not_a_calendar_quarter_and_the_target():
    p = _plan(start="2026-11", slo_p95_ms=200.0, monthly_growth=0.0)
    h = headline(p, baseline="large")
    assert h.quarter == "2026-11..2027-01"
    assert h.assumptions() == (
        "Assumes 86.4 million requests/day in 2026-11, flat, 50% utilisation, p95 ≤ 200 ms; "
        "price: entered; 2026-11..2027-01 = Nov 2026–Jan 2027.")


def test_keep_the_baseline_when_no_option_is_cheaper():
    # both candidates at the large model's speed: every option costs the same $43,800
    m = hand_measurements().assign(tags=["", "", "baseline", "baseline"],
                                   throughput_items_per_s=[60.0, 200.0, 60.0, 200.0])
    p = _plan(m)
    r = rank_options(p, baseline="large")
    assert r["quarter_cost_usd"].tolist() == pytest.approx([3 * 10 * HOURS * 2] * 2)
    h = headline(p, ranking=r)
    assert h.keep_baseline and (h.candidate, h.hardware) == ("large", "lab-cpu")
    assert h.savings_usd == 0.0
    assert h.sentence() == ("Keep the baseline large on lab-cpu: no option that meets the targets "
                            "is cheaper ($43,800 in Q1).")
    # a cheaper option exists: it is the answer, not the baseline
    h2 = headline(_plan(), baseline="large")
    assert not h2.keep_baseline and h2.sentence().startswith("Run small on lab-cpu: $8,760 in Q1")


def test_savings_band_is_the_p10_p90_of_the_paired_difference():
    # only the price varies (x 0.9..1.1, one draw for every option): each draw's saving is
    # 35,040 x its price multiplier, so the saving's P10 / P90 are 0.8 x the baseline's
    unc = Uncertainty(traffic=None, price=(0.9, 1.1), measurement=False, energy=None,
                      efficiency=None)
    p = _plan(samples=200, unc=unc)
    h = headline(p, baseline="large")
    q = p.quarterly[p.quarterly["quarter"] == 1].set_index("candidate")
    assert h.savings_usd == pytest.approx(35_040.0)
    assert h.savings_usd_p10 == pytest.approx(0.8 * q.at["large", "cost_usd_p10"])
    assert h.savings_usd_p90 == pytest.approx(0.8 * q.at["large", "cost_usd_p90"])
    # not the naive "baseline P10 - choice P90", which ignores that both move together
    naive = q.at["large", "cost_usd_p10"] - q.at["small", "cost_usd_p90"]
    assert h.savings_usd_p10 > naive + 100
    assert "; P10-P90 $" in h.sentence()
    # no spread at all: the band is the saving itself
    exact = _plan(samples=50, unc=Uncertainty(traffic=None, price=None, measurement=False,
                                              energy=None, efficiency=None))
    assert savings_band(exact, ("small", "lab-cpu"), ("large", "lab-cpu")) == pytest.approx(
        (35_040.0, 35_040.0))
    # no draws (samples=0, or a plan read back from CSV): no range, never a guess
    assert all(math.isnan(v) for v in savings_band(_plan(), ("small", "lab-cpu"), ("large", "lab-cpu")))
    assert np.isnan(headline(_plan(), baseline="large").savings_usd_p10)


def test_no_option_names_each_reason_once_with_its_options():
    # a 1 ms target: no batch of either candidate meets it (p95 4 ms at best, plus queueing)
    h = headline(_plan(slo_p95_ms=1.0), baseline="large")
    assert not h.found
    reasons = h.message[len("No option meets the targets ("):-2].split("; ")
    assert len(reasons) == len(set(r.split(":")[0] for r in reasons))   # each reason once
    assert "small @ lab-cpu" in h.message and "large @ lab-cpu" in h.message
