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


# ------------------------------------------------------------------------------ generation plans
def _generation_plan():
    """Entered generation rows on an L4 (24 GB), prompt 1024: c -> (ttft_p50, ttft_p95,
    tpot_p50, tpot_p95) ms. 'big' (the baseline) has twice the TTFT; both fit c = 32 in memory
    (16e9 + c x 1200 x 131072 <= 0.9 x 24e9), not c = 64."""
    from effplan.planning import GenerationWorkload

    fig = {8: (200, 250, 20, 25), 16: (400, 500, 25, 30), 32: (800, 1000, 35, 40),
           64: (1600, 1900, 60, 70)}
    rows = [{"candidate": cand, "hardware": "L4", "mode": "generation", "batch_size": c,
             "prompt_tokens": 1024, "ttft_p50_ms": t50 * k, "ttft_p95_ms": t95 * k,
             "tpot_p50_ms": d50, "tpot_p95_ms": d95, "kv_cache_bytes_per_token": 131072.0,
             # 16 GB of weights + what the L4's 24 GiB hold beyond 24e9 bytes (at 90%): memory binds
             # where it did when the memory check counted 1e9-byte GB (c = 32)
             "param_bytes": 16e9 + 0.9 * 24 * (2**30 - 1e9), "energy_per_prompt_token_j": 0.002,
             "energy_per_output_token_j": 0.5, "idle_power_w": 30.0, "tags": tags,
             "perplexity": ppl}
            for cand, k, tags, ppl in (("small", 1, "", 12.0), ("big", 2, "baseline", 9.0))
            for c, (t50, t95, d50, d95) in fig.items()]
    wl = GenerationWorkload(requests_per_day=1_000_000, prompt_tokens=1000, output_tokens=200,
                            slo_ttft_p95_ms=2000, slo_tpot_p95_ms=100, monthly_growth=0.1,
                            peak_to_average=2.0, target_utilization=0.5, months=3)
    return pd.DataFrame(rows), plan(pd.DataFrame(rows), generation=wl,
                                    prices=Prices(price_per_hour={"L4": 1.0}))


def test_generation_plan_headline_and_savings_hand_computed():
    # rate = 32 / ((ttft_p50 + 200 x 35) / 1000); instances = ceil(1e6 x 1.1^m / 86400 x 2 /
    # (rate x 0.5)): small (800 ms) 12, 13, 14; big (1600 ms) 13, 14, 16; $1/h x 730 h
    m, p = _generation_plan()
    r = rank_options(p, baseline=baseline_candidate(m))
    assert r.attrs["workload"] == "generation" and r.attrs["quality_label"] == "perplexity"
    assert list(r["candidate"]) == ["small", "big"]
    assert r["quarter_cost_usd"].tolist() == pytest.approx([39 * HOURS, 43 * HOURS])
    assert r["vs_baseline_usd"].tolist() == pytest.approx([-4 * HOURS, 0.0])
    h = headline(p, baseline="big")
    assert (h.candidate, h.workload, h.concurrency, h.binding_constraint) == (
        "small", "generation", 32.0, "memory")
    assert h.savings_usd == pytest.approx(4 * HOURS)
    assert h.savings_pct == pytest.approx(4 / 43)
    assert (h.slo_ttft_p95_ms, h.slo_tpot_p95_ms) == (2000, 100)


def test_generation_quality_bar_is_a_maximum_on_perplexity():
    _m, p = _generation_plan()
    h = headline(p, baseline="big", min_quality=10.0)   # perplexity <= 10: small (12) fails
    assert (h.candidate, h.quality, h.quality_higher_is_better) == ("big", 9.0, False)
    r = rank_options(p, baseline="big", min_quality=10.0)
    assert r.set_index("candidate").loc["small", "why_not"] == "perplexity 12 > 10 (lower is better)"
    # a chosen metric from elsewhere (candidate -> value), higher is better
    h = headline(p, baseline="big", min_quality=0.5, ranking=rank_options(
        p, baseline="big", min_quality=0.5, quality_values={"small": 0.6, "big": 0.4},
        quality_label="accuracy", higher_is_better=True))
    assert (h.candidate, h.quality_label, h.quality) == ("small", "accuracy", 0.6)
