"""Inference plans: hand-computed budgets, infeasibility, autoscaling, properties."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planning_data import NIGHT_DAY, PRICES, meas, wl  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")

_settings = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_hand_computed_month():
    p = P.plan(meas(), wl(), prices=PRICES)
    m0 = p.monthly.iloc[0]
    # requests/month = 86.4e6 * 730 / 24 = 2.628e9; average load = 1000 items/s, peak = 2000
    assert m0["requests"] == pytest.approx(2.628e9)
    assert m0["avg_items_per_s"] == pytest.approx(1000)
    assert m0["peak_items_per_s"] == pytest.approx(2000)
    # largest batch with p95 <= 25 ms is 8 (20 ms); capacity = 1000 * 0.5 = 500 items/s
    assert m0["batch_size"] == 8 and m0["latency_p95_ms"] == 20 and m0["slo_met"]
    assert m0["capacity_items_per_s"] == 500
    # instances = ceil(2000 / 500) = 4; instance-hours = 4 * 730 = 2920; cost = 2920 * 0.80
    assert m0["instances"] == 4 and m0["instance_hours"] == 2920
    assert m0["cost_usd"] == pytest.approx(2336.0)
    # energy: items 2.628e9 * 0.5 J = 1.314e9 J; busy 2.628e6 s of 10.512e6 instance-s;
    # idle 7.884e6 s * 20 W = 1.5768e8 J; total 1.47168e9 J / 3.6e6 = 408.8 kWh
    assert m0["energy_kwh"] == pytest.approx(408.8)
    assert m0["co2_kg"] == pytest.approx(40.88)          # 408.8 kWh * 100 g / 1000
    assert m0["cost_per_1k_requests_usd"] == pytest.approx(2336 / 2.628e6)
    assert m0["provenance"] == "measured" and m0["feasible"] and m0["quality"] == 0.91
    q1 = p.quarterly.iloc[0]
    assert q1["quarter"] == 1 and q1["months_in_quarter"] == 3
    assert q1["cost_usd"] == pytest.approx(3 * 2336) and q1["energy_kwh"] == pytest.approx(3 * 408.8)
    s = p.summary.iloc[0]
    assert s["cost_usd"] == pytest.approx(7008) and s["first_quarter_cost_usd"] == pytest.approx(7008)
    assert s["instances_first_month"] == 4 and s["price_source"] == "entered"


def test_pue_growth_no_slo_and_on_prem():
    # PUE 1.5 -> 408.8 * 1.5 = 613.2 kWh
    p = P.plan(meas(), wl(), prices=P.Prices(price_per_hour={"L4": 0.8}, pue=1.5, grid_gco2_per_kwh=100))
    assert p.monthly["energy_kwh"].iloc[0] == pytest.approx(613.2)
    # growth 10%: month 1 average 1100 items/s, peak 2200 -> ceil(4.4) = 5 instances
    p = P.plan(meas(), wl(monthly_growth=0.10, months=2), prices=PRICES)
    assert p.monthly["instances"].tolist() == [4, 5]
    assert p.monthly["requests"].iloc[1] == pytest.approx(2.628e9 * 1.1)
    # no SLO: the highest-throughput batch (32, 1600/s) -> capacity 800 -> ceil(2000/800) = 3
    p = P.plan(meas(), wl(slo_p95_ms=None), prices=PRICES)
    assert p.monthly["batch_size"].iloc[0] == 32 and p.monthly["instances"].iloc[0] == 3
    # on-prem: capex 4800 / 48 months = 100 per instance-month; 4 * 100 + 408.8 kWh * 0.2
    pr = P.Prices(mode="on-prem", capex_usd={"NVIDIA L4": 4800}, lifetime_months=48,
                  electricity_usd_per_kwh=0.2, grid_gco2_per_kwh=100)
    p = P.plan(meas(), wl(), prices=pr)
    assert p.monthly["cost_usd"].iloc[0] == pytest.approx(400 + 408.8 * 0.2)


def test_min_replicas_and_partial_quarter():
    p = P.plan(meas(), wl(requests_per_day=1000, min_replicas=2, months=4), prices=PRICES)
    assert (p.monthly["instances"] == 2).all()
    assert p.quarterly["months_in_quarter"].tolist() == [3, 1]
    assert p.quarterly["cost_usd"].tolist() == pytest.approx([3 * 2 * 730 * 0.8, 2 * 730 * 0.8])


def test_infeasible_target_is_flagged_not_zero():
    p = P.plan(meas(), wl(slo_p95_ms=4), prices=PRICES)
    s = p.summary.iloc[0]
    assert not s["feasible"] and not s["slo_met"]
    assert "4 ms" in s["infeasible_reason"] and s["latency_p95_ms"] == 5.0   # best p95 shown
    assert math.isnan(s["cost_usd"]) and math.isnan(s["energy_kwh"]) and math.isnan(s["batch_size"])
    assert p.monthly["cost_usd"].isna().all() and p.monthly["instances"].isna().all()


def test_zero_growth_gives_flat_months():
    p = P.plan(meas(), wl(months=12), prices=PRICES)
    for col in ("requests", "instances", "cost_usd", "energy_kwh", "co2_kg"):
        assert p.monthly[col].nunique() == 1, col


def test_error_rows_ignored_and_missing_price_warns():
    bad = dict(candidate="m", hardware="NVIDIA L4", mode="inference", batch_size=64,
               latency_p95_ms=1.0, throughput_items_per_s=1e9, energy_per_item_j=0.0,
               idle_power_w=0.0, status="error", error="OOM", provenance="measured")
    p = P.plan(meas([bad]), wl(), prices=PRICES)
    assert p.monthly["batch_size"].iloc[0] == 8
    df = meas()
    df["hardware"] = "My Laptop CPU"
    with pytest.warns(P.PlanWarning, match="My Laptop CPU"):
        p = P.plan(df, wl())
    assert p.summary["cost_usd"].isna().all() and p.summary["price_source"].iloc[0] == "missing"
    assert p.summary["energy_kwh"].notna().all()


def test_daily_profile_hand_computed():
    p = P.plan(meas(), wl(peak_to_average=1.0, daily_profile=NIGHT_DAY), prices=PRICES)
    m0 = p.monthly.iloc[0]
    # average 1000 items/s; quiet hours 500/s -> ceil(500 / 500) = 1 instance,
    # busy hours 1500/s -> ceil(1500 / 500) = 3; instance-hours = (12 * 1 + 12 * 3) / 24 * 730 = 1460
    assert m0["instances"] == 3 and m0["instance_hours"] == pytest.approx(1460)
    assert m0["instances_avg"] == pytest.approx(2.0) and m0["peak_items_per_s"] == pytest.approx(1500)
    assert m0["cost_usd"] == pytest.approx(1460 * 0.80)
    # energy: 1.314e9 J of work + idle (1460 * 3600 - 2.628e6 s) * 20 W = 5.256e7 J -> 379.6 kWh
    assert m0["energy_kwh"] == pytest.approx(379.6) and m0["co2_kg"] == pytest.approx(37.96)
    assert p.quarterly["instance_hours"].iloc[0] == pytest.approx(3 * 1460)
    # min_replicas floors the quiet hours: (12 * 2 + 12 * 3) / 24 * 730 = 1825
    p = P.plan(meas(), wl(peak_to_average=1.0, min_replicas=2, daily_profile=NIGHT_DAY), prices=PRICES)
    assert p.monthly["instance_hours"].iloc[0] == pytest.approx(1825)
    # peak_to_average is then a burst within the hour: busy 1500 * 1.2 = 1800/s -> 4; quiet 600/s -> 2
    p = P.plan(meas(), wl(peak_to_average=1.2, daily_profile=NIGHT_DAY), prices=PRICES)
    assert p.monthly["instance_hours"].iloc[0] == pytest.approx((12 * 2 + 12 * 4) / 24 * 730)


def test_flat_daily_profile_equals_baseline_and_baseline_has_no_autoscaling():
    base = P.plan(meas(), wl(monthly_growth=0.1), prices=PRICES, samples=200, seed=3,
                  uncertainty=P.Uncertainty(traffic=(0.5, 2.0)))
    flat = P.plan(meas(), wl(monthly_growth=0.1, daily_profile=[7.0] * 24), prices=PRICES, samples=200,
                  seed=3, uncertainty=P.Uncertainty(traffic=(0.5, 2.0)))
    pd.testing.assert_frame_equal(base.monthly, flat.monthly)
    pd.testing.assert_frame_equal(base.summary, flat.summary)
    assert (base.monthly["instances_avg"] == base.monthly["instances"]).all()


def test_daily_profile_with_uncertainty_and_infeasible_rows():
    unc = P.Uncertainty(traffic=(0.5, 2.0), price=(0.8, 1.2))
    p = P.plan(meas(), wl(daily_profile=NIGHT_DAY), prices=PRICES, samples=300, seed=1, uncertainty=unc)
    m = p.monthly
    assert (m["cost_usd_p10"] <= m["cost_usd_p50"]).all() and (m["cost_usd_p10"] < m["cost_usd_p90"]).all()
    # autoscaling never costs more than provisioning the busiest hour all month
    fixed = P.plan(meas(), wl(peak_to_average=2.0 * 1.5), prices=PRICES, samples=300, seed=1, uncertainty=unc)
    assert (m["cost_usd_p90"] <= fixed.monthly["cost_usd_p90"] + 1e-9).all()
    bad = P.plan(meas(), wl(slo_p95_ms=4, daily_profile=NIGHT_DAY), prices=PRICES)
    assert bad.monthly["instance_hours"].isna().all() and bad.monthly["cost_usd"].isna().all()


def _total(p: P.Plan) -> float:
    return float(p.summary["cost_usd"].sum())


@_settings
@given(rpd=st.floats(1e3, 1e9), growth=st.floats(0, 0.3), price=st.floats(0.01, 50),
       bump=st.floats(1.0, 3.0))
def test_cost_never_falls_when_traffic_growth_or_price_rise(rpd, growth, price, bump):
    w = P.InferenceWorkload(rpd, monthly_growth=growth, slo_p95_ms=25, months=6)
    pr = P.Prices(price_per_hour={"L4": price})
    base = _total(P.plan(meas(), w, prices=pr))
    more_traffic = P.InferenceWorkload(rpd * bump, monthly_growth=growth, slo_p95_ms=25, months=6)
    more_growth = P.InferenceWorkload(rpd, monthly_growth=growth * bump + 0.001, slo_p95_ms=25, months=6)
    assert _total(P.plan(meas(), more_traffic, prices=pr)) >= base
    assert _total(P.plan(meas(), more_growth, prices=pr)) >= base
    assert _total(P.plan(meas(), w, prices=P.Prices(price_per_hour={"L4": price * bump}))) >= base


@_settings
@given(rpd=st.floats(1e3, 1e9), pue=st.floats(1.0, 3.0), grid=st.floats(0, 1000),
       growth=st.floats(0, 0.2), months=st.integers(1, 14))
def test_energy_linear_in_pue_co2_linear_in_grid_quarters_sum_months(rpd, pue, grid, growth, months):
    w = P.InferenceWorkload(rpd, monthly_growth=growth, slo_p95_ms=25, months=months)
    one = P.plan(meas(), w, prices=P.Prices(price_per_hour={"L4": 1}, pue=1.0, grid_gco2_per_kwh=1.0))
    p = P.plan(meas(), w, prices=P.Prices(price_per_hour={"L4": 1}, pue=pue, grid_gco2_per_kwh=grid))
    np.testing.assert_allclose(p.monthly["energy_kwh"], one.monthly["energy_kwh"] * pue, rtol=1e-12)
    np.testing.assert_allclose(p.monthly["co2_kg"], one.monthly["energy_kwh"] * pue * grid / 1000,
                               rtol=1e-12, atol=1e-12)
    q = p.monthly.groupby(["candidate", "hardware", "quarter"], sort=False)[
        ["requests", "instance_hours", "cost_usd", "energy_kwh", "co2_kg"]].sum().reset_index()
    for col in ("requests", "instance_hours", "cost_usd", "energy_kwh", "co2_kg"):
        np.testing.assert_allclose(p.quarterly[col], q[col], rtol=1e-12)
    assert p.summary["cost_usd"].iloc[0] == pytest.approx(p.monthly["cost_usd"].sum(), rel=1e-12)
