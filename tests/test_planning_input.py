"""Bad input never silently changes a budget: the planner's part of issue 10.

Each test feeds exactly one input from the issue's list and expects a named effplan error or
the correct value (hand-computed)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from effplan.errors import PlanWarning, UnknownHardwareError, ValidationError
from effplan.planning import InferenceWorkload, Prices, TrainingWorkload, plan

HOURS = 730.0


def meas(hardware="L4", **extra) -> pd.DataFrame:
    # batch 8: p95 20 ms, 1000 items/s; 0.5 J/item -> busy power 500 W; idle 20 W
    row = dict(candidate="m", hardware=hardware, mode="inference", batch_size=8, latency_p95_ms=20.0,
               throughput_items_per_s=1000.0, energy_per_item_j=0.5, idle_power_w=20.0,
               provenance="measured", energy_source="nvml-counter")
    row.update(extra)
    return pd.DataFrame([row])


def wl(**kw) -> InferenceWorkload:
    base = dict(requests_per_day=86_400_000, target_utilization=0.5, months=3)
    base.update(kw)
    return InferenceWorkload(**base)


# ---- case 2: substrings are not catalog hardware -------------------------------------------

@pytest.mark.parametrize("name", ["t4g.xlarge", "cpu-pool4", "NVIDIA", "Azure NC A100 v4"])
def test_measured_name_that_only_contains_a_catalog_name_is_its_own_hardware(name):
    with pytest.warns(PlanWarning, match="no price_per_hour"):
        p = plan(meas(hardware=name), wl())
    s = p.summary.iloc[0]
    assert s["hardware"] == name and s["catalog_name"] == ""
    assert math.isnan(s["price_per_hour_usd"]) and math.isnan(s["cost_usd"])  # never T4/L4/H100's price
    # priced only by what the user gives
    p = plan(meas(hardware=name), wl(), prices=Prices(price_per_hour={name: 0.25}))
    # 1000 items/s / (1000 x 0.5 capacity) = 2 instances x 3 months x 730 h x $0.25
    assert p.summary.iloc[0]["cost_usd"] == pytest.approx(2 * 3 * HOURS * 0.25)


@pytest.mark.parametrize("target, near", [("NVIDIA", None), ("Azure NC A100 v4", "A100"), ("l4x", "L4"),
                                          ("t4g.xlarge", "c7g")])
def test_projection_target_must_be_a_catalog_name(target, near):
    with pytest.raises(UnknownHardwareError) as e:
        plan(meas(), wl(), hardware=[target])
    assert e.value.field == "hardware" and repr(target) in str(e.value)
    if near:
        assert any(near in s for s in e.value.suggestions)
        assert "did you mean" in str(e.value)


@pytest.mark.parametrize("key", ["my-l4-box", "g6-box"])
def test_price_key_matching_no_hardware_in_the_plan_is_an_error(key):
    # once: "my-l4-box" silently set the L4 price; "g6-box" was silently ignored (case 3)
    with pytest.raises(UnknownHardwareError) as e:
        plan(meas(), wl(), prices=Prices(price_per_hour={key: 0.10}))
    assert e.value.field == "price_per_hour" and repr(key) in str(e.value)
    assert "'L4'" in str(e.value)  # the hardware of the plan is offered


def test_price_key_in_catalog_but_not_in_the_plan_is_an_error():
    with pytest.raises(UnknownHardwareError, match="T4"):
        plan(meas(), wl(), prices=Prices(price_per_hour={"T4": 0.10}))


@pytest.mark.parametrize("key", ["L4", "l4", " L4 ", "NVIDIA L4"])
def test_price_key_resolves_exactly_ignoring_case_or_by_alias(key):
    p = plan(meas(), wl(), prices=Prices(price_per_hour={key: 0.10}))
    # 86.4e6/day = 1000 items/s; capacity 1000 x 0.5 = 500 -> 2 instances; 3 months x 730 h x $0.10
    assert p.summary.iloc[0]["cost_usd"] == pytest.approx(2 * 3 * HOURS * 0.10)
    assert p.summary.iloc[0]["price_source"] == "entered"


def test_capex_keys_follow_the_same_rule():
    with pytest.raises(UnknownHardwareError) as e:
        plan(meas(), wl(), prices=Prices(mode="on-prem", capex_usd={"my-l4-box": 100.0}))
    assert e.value.field == "capex_usd"


def test_l4_and_L4_are_one_hardware():
    df = pd.concat([meas(hardware="l4"), meas(hardware="L4", batch_size=16, latency_p95_ms=30.0,
                                              throughput_items_per_s=1500.0)], ignore_index=True)
    p = plan(df, wl(), hardware=["L4"])
    assert p.summary["hardware"].tolist() == ["L4"]
    assert p.summary.iloc[0]["batch_size"] == 16  # both rows are one hardware's measurements


# ---- case 4: every budget figure finite --------------------------------------------------

def test_zero_traffic_gives_nan_per_request_cost_with_a_reason_not_inf():
    with pytest.warns(PlanWarning, match="no requests"):
        p = plan(meas(), wl(requests_per_day=0))
    for frame in (p.monthly, p.quarterly, p.summary):
        cpk = frame["cost_per_1k_requests_usd"].to_numpy(float)
        assert np.isnan(cpk).all() and not np.isinf(cpk).any()
    # min_replicas=1 still costs its instance: 1 x 3 x 730 x $0.80 (catalog L4)
    assert p.summary.iloc[0]["cost_usd"] == pytest.approx(3 * HOURS * 0.80)


def test_huge_energy_is_an_error_naming_the_input():
    with pytest.raises(ValidationError) as e:
        plan(meas(energy_per_item_j=1e308), wl())
    assert e.value.field == "energy_per_item_j" and "m on L4" in str(e.value)


def test_growth_that_overflows_is_an_error_naming_the_input():
    with pytest.raises(ValidationError) as e:
        plan(meas(), wl(monthly_growth=10, months=600))
    assert e.value.field == "monthly_growth"


def test_huge_price_overflow_is_an_error_naming_the_input():
    with pytest.raises(ValidationError) as e:
        plan(meas(), wl(), prices=Prices(price_per_hour={"L4": 1e306}))
    assert e.value.field == "price_per_hour"


# ---- case 5: on-prem cost never falls as traffic rises ---------------------------------

def test_on_prem_cost_is_monotone_when_idle_power_is_above_busy_power():
    # busy power = 0.01 J/item x 1000 items/s = 10 W < idle 300 W (a row the schema warns about)
    with pytest.warns(Warning):
        df = meas(energy_per_item_j=0.01, idle_power_w=300.0)
        pr = Prices(mode="on-prem", capex_usd={"L4": 4800}, electricity_usd_per_kwh=0.2)
        costs = [plan(df, wl(requests_per_day=r, min_replicas=1), prices=pr).summary.iloc[0]["cost_usd"]
                 for r in (0, 1e6, 2e7, 4.32e7)]
    assert all(b >= a for a, b in zip(costs, costs[1:])), costs


# ---- case 8: scale to zero -----------------------------------------------------------------

def test_tiny_traffic_with_min_replicas_zero_still_gets_an_instance():
    # 122 requests/month on an instance serving 1e6 items/s: the load is 9e-11 of one
    # instance, below the old 1e-9 rounding margin, which gave 0 instances and cost 0
    fast = meas(throughput_items_per_s=1e6, energy_per_item_j=1e-4)
    p = plan(fast, wl(requests_per_day=122 * 24 / HOURS, min_replicas=0))
    assert p.monthly["requests"].iloc[0] == pytest.approx(122)
    assert (p.monthly["instances"] == 1).all()
    assert p.summary.iloc[0]["cost_usd"] == pytest.approx(3 * HOURS * 0.80)
    with pytest.warns(PlanWarning, match="no requests"):
        p = plan(fast, wl(requests_per_day=0, min_replicas=0))
    assert (p.monthly["instances"] == 0).all() and (p.monthly["cost_usd"] == 0).all()


def test_tiny_traffic_autoscaled_still_gets_an_instance():
    fast = meas(throughput_items_per_s=1e6, energy_per_item_j=1e-4)
    p = plan(fast, wl(requests_per_day=4, min_replicas=0, daily_profile=[1] * 12 + [3] * 12))
    assert (p.monthly["instances"] == 1).all()


# ---- case 9: named errors ------------------------------------------------------------------

@pytest.mark.parametrize("cls, d, field", [
    (InferenceWorkload, {}, "requests_per_day"),
    (InferenceWorkload, {"months": 3}, "requests_per_day"),
    (InferenceWorkload, {"requests_per_day": "lots"}, "requests_per_day"),
    (InferenceWorkload, {"requests_per_day": 1, "min_replicas": True}, "min_replicas"),
    (InferenceWorkload, {"requests_per_day": 1, "bogus": 1}, "bogus"),
    (TrainingWorkload, {}, "runs_per_quarter"),
    (Prices, {"pue": "1,5"}, "pue"),
])
def test_from_dict_bad_input_is_a_named_error(cls, d, field):
    with pytest.raises(ValidationError) as e:  # was TypeError for {}
        cls.from_dict(d)
    assert e.value.field == field


def test_from_dict_of_something_else_is_a_named_error():
    with pytest.raises(ValidationError):
        InferenceWorkload.from_dict([("requests_per_day", 1)])


# ---- case 10: the planner applies the store's rules --------------------------------------

@pytest.mark.parametrize("change, field", [(dict(latency_p95_ms=float("inf")), "latency_p95_ms"),
                                           (dict(batch_size=True), "batch_size"),
                                           (dict(batch_size=8.5), "batch_size"),
                                           (dict(candidate=""), "candidate"),
                                           (dict(hardware=" "), "hardware")])
def test_planner_refuses_rows_the_store_refuses(change, field):
    with pytest.raises(ValidationError) as e:
        plan(meas(**change).astype(object), wl())
    assert e.value.field == field


def test_zero_catalog_peak_is_refused_not_a_misleading_infeasible_row():
    from effplan.refdata import catalog as C
    raw = pd.read_csv(C._shipped_path(), dtype=str, keep_default_na=False)
    raw.loc[raw["name"] == "T4", "peak_fp32_flops"] = "0"
    with pytest.raises(ValidationError) as e:
        plan(meas(), wl(), hardware=["T4"], catalog=raw)
    assert e.value.field == "peak_fp32_flops"
