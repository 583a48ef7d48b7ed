"""A busy machine gives a flagged answer, never no answer (effplan.planning.stability).

Hand-typed rows marked ``stable=False`` with a known background load N and timing spread X:
the statement's words and figures, the rows' X, the plan's flags on every option that rests on
such a row (measured, interpolated, projected, training, generation), the Monte Carlo band
widened by exactly +-X (P10-P90 of a standard normal is +-1.2816 sigma), stable rows unchanged,
and the strict rule (``allow_unstable=False``) naming the real cause everywhere, the demo
traffic included.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import effplan
from effplan import defaults
from effplan.errors import ValidationError
from effplan.planning import stability as st
from planning_data import P, PRICES, meas, train_row, wl

#: every draw but the measurement one fixed: the band is the timing doubt alone
ONLY_TIMING = dict(traffic=None, price=None, growth=None, energy=None, efficiency=None)
STATEMENT = "Timings were taken on a busy machine (background load 1.5 cores); the cost could be 10% off."


def _busy(df: pd.DataFrame, load: float = 1.5, spread: float = 0.10, ci: float = 0.02) -> pd.DataFrame:
    return df.assign(stable=False, stop_reason="unstable", timing_note="contended (test)",
                     background_load=load, latency_round_spread_rel=spread, latency_ci_rel=ci)


def _quiet(df: pd.DataFrame, ci: float = 0.02) -> pd.DataFrame:
    return df.assign(stable=True, stop_reason="ci-met", timing_note="", background_load=0.1,
                     latency_round_spread_rel=0.01, latency_ci_rel=ci)


def _plan(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return P.plan(df, **kw)


# ----------------------------------------------------------------------------- the statement
def test_the_statement_and_its_figures():
    assert st.busy_sentence(1.5, 0.10) == STATEMENT
    # N to one decimal, X rounded UP to a whole percent (never said to be 0% off)
    assert st.busy_sentence(1.57, 0.1203) == ("Timings were taken on a busy machine (background "
                                              "load 1.6 cores); the cost could be 13% off.")
    assert st.busy_sentence(0.0, 0.001).endswith("the cost could be 1% off.")
    assert st.busy_sentence(2.0, 0.3, up_to=True).endswith("the cost could be up to 30% off.")
    assert st.busy_sentence(math.nan, math.nan) == (
        "Timings were taken on a busy machine (background load not recorded); how far the cost "
        "could be off was not measured (no timing spread stored).")
    assert st.spread_pct(0.0512) == "6%" and st.spread_pct(math.nan) == "?"


def test_a_rows_spread_is_its_round_spread_else_its_ci():
    df = pd.DataFrame({"latency_round_spread_rel": [0.08, np.nan, np.nan, -1.0, 0.01],
                       "latency_ci_rel": [0.03, 0.05, np.nan, 0.02, 9.7]})
    x = st.row_spread(df)
    # the spread between rounds wins, also when the CI of a bimodal median is far wider
    assert x[[0, 1, 3, 4]].tolist() == [0.08, 0.05, 0.02, 0.01] and np.isnan(x[2])
    # an older store has no round spread: the CI alone
    assert st.row_spread(df[["latency_ci_rel"]]).tolist()[:2] == [0.03, 0.05]


def test_latency_sigma_keeps_stable_rows_and_widens_flagged_ones():
    sig = st.latency_sigma(np.array([0.0196, 0.0196, np.nan]), np.array([False, True, True]),
                           np.array([np.nan, 0.10, 0.10]))
    assert sig.tolist() == pytest.approx([0.01, 0.10 / 1.2815515655446004, 0.10 / 1.2815515655446004])


# ----------------------------------------------------------------------------- the plan
def test_unstable_rows_give_the_same_figure_flagged():
    quiet = _plan(_quiet(meas()), inference=wl(), prices=PRICES)
    busy = _plan(_busy(meas()), inference=wl(), prices=PRICES)
    q, b = quiet.summary.iloc[0], busy.summary.iloc[0]
    assert (b["batch_size"], b["cost_usd"]) == (q["batch_size"], q["cost_usd"])  # an answer, not a wall
    assert b["feasible"] and b["timing_unstable"] and not q["timing_unstable"]
    assert (b["timing_spread_rel"], b["background_load"]) == (0.10, 1.5)
    assert b["stability_note"] == STATEMENT and q["stability_note"] == ""
    h = P.headline(busy, baseline="m")
    assert h.found and h.stability_note == STATEMENT and h.sentence().endswith(STATEMENT)
    assert P.headline(quiet, baseline="m").stability_note == ""
    r = P.rank_options(busy)
    assert r["stability_note"].tolist() == [STATEMENT] and r["timing_spread_rel"].tolist() == [0.10]


def test_the_band_is_widened_by_exactly_the_measured_spread():
    # 86.4e9 requests/day = 1e6/s, x2 peak = 2e6 items/s; no latency target: batch 32 (1600/s)
    # x 0.5 utilisation = 800/s per instance -> 2,500 instances, 730 h x $0.80 each, 3 months
    work = wl(requests_per_day=86.4e9, slo_p95_ms=None)
    base_q1 = 2500 * 730 * 0.80 * 3
    kw = dict(inference=work, prices=PRICES, samples=4000, seed=3, uncertainty=ONLY_TIMING)
    busy = _plan(_busy(meas()), **kw).quarterly.iloc[0]
    quiet = _plan(_quiet(meas()), **kw).quarterly.iloc[0]
    assert busy["cost_usd"] == pytest.approx(base_q1) and quiet["cost_usd"] == pytest.approx(base_q1)
    # flagged: latency error sigma = X / 1.2816 -> cost P10 / P90 = base x (1 -+ X), X = 10%
    # (4,000 draws: the sample quantile of z is within ~0.03 of 1.2816; 2,500 instances: the
    # ceiling adds < 0.04%)
    assert busy["cost_usd_p10"] == pytest.approx(0.90 * base_q1, rel=0.006)
    assert busy["cost_usd_p90"] == pytest.approx(1.10 * base_q1, rel=0.006)
    # stable: sigma = ci / 1.96 as before: P90 = base x (1 + 0.02 / 1.96 x 1.2816) = base x 1.0131
    assert quiet["cost_usd_p90"] == pytest.approx(base_q1 * (1 + 0.02 / 1.96 * 1.2816), rel=0.002)
    assert quiet["cost_usd_p10"] == pytest.approx(base_q1 * (1 - 0.02 / 1.96 * 1.2816), rel=0.002)


def test_stable_options_keep_their_band_beside_a_flagged_one():
    two = pd.concat([meas(), meas().assign(candidate="n")], ignore_index=True)
    kw = dict(inference=wl(requests_per_day=86.4e9, slo_p95_ms=None), prices=PRICES,
              samples=500, seed=1, uncertainty=ONLY_TIMING)
    before = _plan(_quiet(two), **kw).summary.set_index("candidate")
    mixed = _quiet(two)
    mixed.loc[mixed["candidate"] == "n"] = _busy(mixed[mixed["candidate"] == "n"])
    after = _plan(mixed, **kw).summary.set_index("candidate")
    cols = ["cost_usd", "cost_usd_p10", "cost_usd_p50", "cost_usd_p90"]
    assert after.loc["m", cols].tolist() == before.loc["m", cols].tolist()   # identical draws
    assert after.loc["n", "cost_usd_p90"] > before.loc["n", "cost_usd_p90"] * 1.05
    assert not after.loc["m", "timing_unstable"] and after.loc["n", "timing_unstable"]


def test_an_interpolated_point_takes_the_worse_neighbour():
    df = _busy(meas())
    df["latency_round_spread_rel"] = [0.05, 0.25, 0.02]
    df["background_load"] = [1.0, 1.8, 0.5]
    # a 50 ms end-to-end target: batch 4, interpolated between batch 1 and batch 8, is chosen
    p = _plan(df, inference=wl(slo_p95_ms=50), prices=PRICES)
    row = p.summary.iloc[0]
    assert row["batch_source"] == "interpolated" and row["batch_neighbours"] == "1-8"
    assert (row["timing_spread_rel"], row["background_load"]) == (0.25, 1.8)


def test_projected_hardware_is_flagged_like_its_source():
    df = _busy(meas().assign(flops_per_item=2e9, bytes_per_item=4e6, dtype="float32"))
    p = _plan(df, inference=wl(), prices=PRICES, hardware=["H100 SXM"])
    h100 = p.summary.set_index("hardware").loc["H100 SXM"]
    assert h100["provenance"] == "projected" and h100["feasible"]
    assert h100["timing_unstable"] and h100["stability_note"] == STATEMENT
    assert "calibrated on a measurement that is NOT stable" in h100["efficiency_source"]


def test_strict_plan_keeps_every_target_hardware_with_the_real_cause():
    # the case: `effplan plan ... --hardware L4 "H100 SXM"` listed only the CPU rows
    cpu = meas().assign(hardware="lab-cpu", flops_per_item=2e9, bytes_per_item=4e6, dtype="float32")
    p = _plan(_busy(cpu), inference=wl(), prices=P.Prices(price_per_hour={"lab-cpu": 0.5}),
              hardware=["L4", "H100 SXM"], allow_unstable=False)
    s = p.summary.set_index("hardware")
    assert sorted(s.index) == ["H100 SXM", "L4", "lab-cpu"] and not s["feasible"].any()
    assert s.loc["lab-cpu", "infeasible_reason"].startswith("measurement not stable (unstable: "
                                                            "contended (test))")
    for hw in ("L4", "H100 SXM"):
        assert s.loc[hw, "infeasible_reason"].startswith("not projected from lab-cpu: measurement "
                                                         "not stable (unstable")
    flagged = _plan(_busy(cpu), inference=wl(), prices=P.Prices(price_per_hour={"lab-cpu": 0.5}),
                    hardware=["L4", "H100 SXM"]).summary
    assert flagged["feasible"].all() and flagged["timing_unstable"].all()


# ----------------------------------------------------------------------------- every helper
def test_demo_traffic_uses_the_plans_row_rule_and_names_the_real_cause():
    df = _busy(meas().assign(tags="baseline"))
    assert defaults.demo_requests_per_day(df) == defaults.demo_requests_per_day(_quiet(df))
    with pytest.raises(ValidationError) as e:
        defaults.demo_requests_per_day(df, allow_unstable=False)
    assert e.value.field == "requests_per_day"
    assert "whose inference rows are all refused: measurement not stable (unstable" in str(e.value)
    assert "meets the latency target" not in str(e.value)


def test_training_is_flagged_and_its_band_widened():
    # 1e6 items / 500 items/s = 2,000 s = 0.556 device-hours x $0.80 = $0.444 per run, 4 runs
    rows = pd.concat([meas(), pd.DataFrame([train_row()])], ignore_index=True)
    tw = P.TrainingWorkload(runs_per_quarter=4, items_per_epoch=1e6, epochs=1, quarters=1)
    unc = dict(ONLY_TIMING)
    busy = _plan(_busy(rows, spread=0.2), training=tw, prices=PRICES, samples=4000, seed=2,
                 uncertainty=unc).training.iloc[0]
    quiet = _plan(_quiet(rows), training=tw, prices=PRICES, samples=4000, seed=2,
                  uncertainty=unc).training.iloc[0]
    cost = 4 * 1e6 / 500 / 3600 * 0.80
    assert busy["cost_usd"] == pytest.approx(cost) and quiet["cost_usd"] == pytest.approx(cost)
    assert busy["timing_unstable"] and busy["stability_note"].endswith("the cost could be 20% off.")
    assert busy["cost_usd_p10"] == pytest.approx(0.8 * cost, rel=0.01)
    assert busy["cost_usd_p90"] == pytest.approx(1.2 * cost, rel=0.01)
    assert quiet["cost_usd_p10"] == quiet["cost_usd_p90"] == pytest.approx(cost)   # as before
    strict = _plan(_busy(rows), training=tw, prices=PRICES, hardware=["A100 80GB"],
                   allow_unstable=False).training.set_index("hardware")
    assert strict.loc["A100 80GB", "infeasible_reason"].startswith(
        "not projected from NVIDIA L4: measurement not stable")


def _gen_rows() -> pd.DataFrame:
    return pd.DataFrame([{"candidate": "d", "hardware": "L4", "mode": "generation", "batch_size": c,
                          "prompt_tokens": 512, "ttft_p50_ms": 100.0 * c, "ttft_p95_ms": 120.0 * c,
                          "tpot_p50_ms": 10.0, "tpot_p95_ms": 12.0, "kv_cache_bytes_per_token": 1e4,
                          "param_bytes": 1e9, "energy_per_prompt_token_j": 0.001,
                          "energy_per_output_token_j": 0.1, "idle_power_w": 30.0}
                         for c in (1, 4)])


def test_generation_agrees_flagged_widened_or_refused():
    gw = P.GenerationWorkload(requests_per_day=1e9, prompt_tokens=500, output_tokens=100,
                              monthly_growth=0.0, months=3)
    prices = P.Prices(price_per_hour={"L4": 1.0})
    unc = P.GenerationUncertainty(prompt_tokens=None, output_tokens=None, **ONLY_TIMING)
    busy = _plan(_busy(_gen_rows()), generation=gw, prices=prices, samples=4000, seed=4,
                 uncertainty=unc)
    quiet = _plan(_quiet(_gen_rows()), generation=gw, prices=prices, samples=4000, seed=4,
                  uncertainty=unc)
    b, q = busy.summary.iloc[0], quiet.summary.iloc[0]
    assert b["cost_usd"] == pytest.approx(q["cost_usd"]) and b["concurrency"] == q["concurrency"] == 4
    assert b["stability_note"] == STATEMENT and q["stability_note"] == ""
    assert P.headline(busy).stability_note == STATEMENT
    # TTFT and TPOT scale together, so the rate and the instances (~1.3e5 here) follow the latency
    assert b["cost_usd_p10"] == pytest.approx(0.9 * b["cost_usd"], rel=0.006)
    assert b["cost_usd_p90"] == pytest.approx(1.1 * b["cost_usd"], rel=0.006)
    assert q["cost_usd_p10"] == q["cost_usd_p90"] == pytest.approx(q["cost_usd"])
    strict = _plan(_busy(_gen_rows()), generation=gw, prices=prices, hardware=["H100 SXM"],
                   allow_unstable=False).summary.set_index("hardware")
    assert not strict["feasible"].any()
    assert strict.loc["L4", "infeasible_reason"].startswith("measurement not stable (unstable")
    assert strict.loc["H100 SXM", "infeasible_reason"].startswith("not projected from L4: measurement "
                                                                  "not stable")


def test_only_the_baseline_unstable_flags_the_savings():
    two = pd.concat([_busy(meas().assign(candidate="base", tags="baseline")),
                     _quiet(meas().assign(candidate="small", tags="distilled",
                                          throughput_items_per_s=[400.0, 2000.0, 3200.0]))],
                    ignore_index=True)
    p = _plan(two, inference=wl(requests_per_day=8.64e8), prices=PRICES)
    h = P.headline(p, baseline="base")
    assert h.candidate == "small" and h.savings_usd > 0 and not h.timing_unstable
    assert h.stability_note == ("Timings of the baseline base were taken on a busy machine "
                                "(background load 1.5 cores); its cost, and so the savings, could "
                                "be 10% off.")
    assert h.sentence().endswith(h.stability_note)


def test_readme_example_default_is_the_flagged_answer():
    assert defaults.ALLOW_UNSTABLE is True
    p = _plan(_busy(meas()), inference=defaults.workload(requests_per_day=8.64e6), prices=PRICES)
    assert p.inputs["allow_unstable"] is True and p.summary["timing_unstable"].all()
    assert effplan.plan is P.plan
