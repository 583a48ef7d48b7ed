"""The projection engine: hand-computed budgets, infeasibility, projection, training, properties."""

from __future__ import annotations

import importlib
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from effplan import catalog as C
from effplan.errors import ValidationError

P = importlib.import_module("effplan.planning")

# ------------------------------------------------------------------------------------------
# fixtures: one candidate "m" measured on an L4 at three batch sizes
# ------------------------------------------------------------------------------------------


def meas(extra: list[dict] | None = None) -> pd.DataFrame:
    rows = [
        # batch, p95 ms, throughput items/s
        dict(batch_size=1, latency_p95_ms=5.0, throughput_items_per_s=200.0),
        dict(batch_size=8, latency_p95_ms=20.0, throughput_items_per_s=1000.0),
        dict(batch_size=32, latency_p95_ms=80.0, throughput_items_per_s=1600.0),
    ]
    for r in rows:
        r.update(candidate="m", hardware="NVIDIA L4", mode="inference", energy_per_item_j=0.5,
                 idle_power_w=20.0, provenance="measured", energy_source="nvml-counter", quality=0.91)
    return pd.DataFrame(rows + (extra or []))


PRICES = P.Prices(price_per_hour={"L4": 0.80}, grid_gco2_per_kwh=100)


def wl(**kw) -> P.InferenceWorkload:
    base = dict(requests_per_day=86_400_000, peak_to_average=2.0, slo_p95_ms=25,
                target_utilization=0.5, months=3)
    base.update(kw)
    return P.InferenceWorkload(**base)


# ------------------------------------------------------------------------------------------
# hand-computed budgets
# ------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------
# bad inputs name the field
# ------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------
# optional autoscaling along a daily curve (baseline unchanged without it)
# ------------------------------------------------------------------------------------------

NIGHT_DAY = [1.0] * 12 + [3.0] * 12          # normalised to 0.5 (12 h) and 1.5 (12 h)


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


@pytest.mark.parametrize("profile, field", [
    ([1.0] * 23, "daily_profile"),
    ("flat", "daily_profile"),
    ([0.0] * 24, "daily_profile"),
    ([1.0] * 3 + [-1.0] + [1.0] * 20, "daily_profile[3]"),
    ([1.0] * 5 + [float("nan")] + [1.0] * 18, "daily_profile[5]"),
])
def test_bad_daily_profile_names_field(profile, field):
    with pytest.raises(ValidationError) as e:
        wl(daily_profile=profile)
    assert e.value.field == field


def test_daily_profile_round_trips_through_json():
    w = wl(daily_profile=NIGHT_DAY)
    assert w.daily_profile == tuple([0.5] * 12 + [1.5] * 12)
    back = P.InferenceWorkload.from_dict(json.loads(json.dumps(w.to_dict())))
    assert back == w and hash(back) == hash(w)


@pytest.mark.parametrize("kw, field", [
    (dict(requests_per_day=-1), "requests_per_day"),
    (dict(requests_per_day=float("nan")), "requests_per_day"),
    (dict(target_utilization=0), "target_utilization"),
    (dict(target_utilization=1.2), "target_utilization"),
    (dict(monthly_growth=float("nan")), "monthly_growth"),
    (dict(peak_to_average=0.5), "peak_to_average"),
    (dict(min_replicas=1.5), "min_replicas"),
    (dict(months=0), "months"),
    (dict(slo_p95_ms=-3), "slo_p95_ms"),
])
def test_bad_workload_names_field(kw, field):
    with pytest.raises(ValidationError) as e:
        wl(**kw)
    assert e.value.field == field and field in str(e.value)


def test_bad_prices_and_plan_arguments_name_field():
    with pytest.raises(ValidationError, match=r"price_per_hour\['L4'\]"):
        P.Prices(price_per_hour={"L4": float("nan")})
    with pytest.raises(ValidationError, match="pue"):
        P.Prices(pue=0.9)
    with pytest.raises(ValidationError, match="grid_region"):
        P.Prices(grid_region="atlantis")
    with pytest.raises(ValidationError, match="mode"):
        P.Prices(mode="leased")
    with pytest.raises(ValidationError) as e:
        P.plan(meas(), wl(), hardware=["Quantum Toaster"])
    assert e.value.field == "hardware" and "Quantum Toaster" in str(e.value)
    with pytest.raises(ValidationError) as e:
        P.plan(meas().drop(columns=["latency_p95_ms"]), wl())
    assert e.value.field == "latency_p95_ms"
    with pytest.raises(ValidationError, match="scaling_efficiency"):
        P.TrainingWorkload(1, 100, scaling_efficiency=1.5)
    with pytest.raises(ValidationError, match="inference"):
        P.plan(meas())


def test_grid_regions_have_sources():
    grid = P.load_grid()
    assert {"world", "us", "eu", "france", "poland", "sweden"} <= set(grid["region"])
    assert grid["source"].str.len().gt(0).all() and grid["year"].notna().all()
    pr = P.Prices(grid_region="france")
    assert pr.grid_intensity_gco2_per_kwh == float(grid.set_index("region").at["france", "gco2_per_kwh"])
    assert "Ember" in pr.grid_source
    assert P.Prices(grid_gco2_per_kwh="poland").grid_intensity_gco2_per_kwh > 500
    assert "US average" in P.Prices(grid_region="eu").electricity_source


# ------------------------------------------------------------------------------------------
# projection (custom two-GPU catalog with round numbers)
# ------------------------------------------------------------------------------------------


def tiny_catalog() -> pd.DataFrame:
    raw = pd.read_csv(C._shipped_path(), dtype=str, keep_default_na=False)
    base = raw[raw["name"] == "L4"].iloc[0].to_dict()
    rows = []
    for name, peak, bw, watts, price in (("SrcGPU", "2e12", "400", "200", "2.0"),
                                         ("TestGPU", "1e12", "100", "100", "1.0")):
        r = dict(base, name=name, aliases="", peak_fp32_flops=peak, memory_bandwidth_gb_s=bw,
                 rated_power_w=watts, price_per_hour_usd=price, capex_usd="1000", memory_gb="16")
        rows.append(r)
    rows.append(raw[raw["name"] == C.GENERIC_CPU].iloc[0].to_dict())
    return C.load_catalog(pd.DataFrame(rows))


def src_rows(flops: float, byts: float, tput: float, hardware: str = "SrcGPU") -> pd.DataFrame:
    return pd.DataFrame([dict(candidate="c", hardware=hardware, mode="inference", batch_size=1,
                              latency_p95_ms=1.2, throughput_items_per_s=tput, energy_per_item_j=0.2,
                              idle_power_w=30.0, flops_per_item=flops, bytes_per_item=byts,
                              dtype="float32")])


def test_projection_compute_bound_hand_computed():
    # source roofline: max(1e9/2e12 = 0.5 ms, 1e6/400e9 = 2.5 us) = 0.5 ms; measured 1 ms -> eff 0.5
    # target roofline: max(1e9/1e12 = 1 ms, 1e6/100e9 = 10 us) = 1 ms -> 1 / 0.5 = 2 ms per item
    pr = P.project(src_rows(1e9, 1e6, 1000.0), ["TestGPU"], catalog=tiny_catalog())
    r = pr.iloc[0]
    assert r["hardware"] == "TestGPU" and r["projected_from"] == "SrcGPU"
    assert r["provenance"] == "projected" and r["energy_source"] == "projected"
    assert r["efficiency"] == pytest.approx(0.5) and r["efficiency_source"] == "calibrated on SrcGPU"
    assert r["throughput_items_per_s"] == pytest.approx(500)
    assert r["latency_p95_ms"] == pytest.approx(2.4)            # 1.2 ms x (2 ms / 1 ms)
    assert r["energy_per_item_j"] == pytest.approx(0.2)         # 100 W x 2 ms
    assert r["idle_power_w"] == pytest.approx(15)               # 0.15 x 100 W


def test_projection_memory_bound_hand_computed():
    # source: max(1e6/2e12 = 0.5 us, 1e8/400e9 = 0.25 ms) = 0.25 ms; measured 0.5 ms -> eff 0.5
    # target: max(1e6/1e12 = 1 us, 1e8/100e9 = 1 ms) = 1 ms -> 2 ms per item
    r = P.project(src_rows(1e6, 1e8, 2000.0), ["TestGPU"], catalog=tiny_catalog()).iloc[0]
    assert r["throughput_items_per_s"] == pytest.approx(500)
    assert r["efficiency"] == pytest.approx(0.5)


def test_projection_uncalibrated_uses_assumed_efficiency_and_plan_labels_rows():
    cat = tiny_catalog()
    r = P.project(src_rows(1e9, 1e6, 1000.0, hardware="My Laptop"), ["TestGPU"], catalog=cat).iloc[0]
    assert r["efficiency"] == P.ASSUMED_EFFICIENCY
    assert r["efficiency_source"].startswith("assumed") and "My Laptop" in r["efficiency_source"]
    assert r["throughput_items_per_s"] == pytest.approx(1 / (1e-3 / P.ASSUMED_EFFICIENCY))
    p = P.plan(src_rows(1e9, 1e6, 1000.0), P.InferenceWorkload(86_400, months=3), hardware=["TestGPU"],
               catalog=cat)
    by_hw = p.summary.set_index("hardware")
    assert by_hw.at["TestGPU", "provenance"] == "projected"
    assert by_hw.at["TestGPU", "energy_source"] == "projected"
    assert by_hw.at["SrcGPU", "provenance"] == "entered"
    assert (p.monthly.loc[p.monthly["hardware"] == "TestGPU", "provenance"] == "projected").all()


def test_projection_without_flops_is_an_infeasible_row():
    df = src_rows(float("nan"), float("nan"), 1000.0)
    p = P.plan(df, P.InferenceWorkload(1000, months=3), hardware=["TestGPU"], catalog=tiny_catalog())
    s = p.summary.set_index("hardware").loc["TestGPU"]
    assert not s["feasible"] and "flops_per_item unknown" in s["infeasible_reason"]
    assert math.isnan(s["cost_usd"])


def test_projection_to_shipped_catalog_runs():
    df = meas()
    df["flops_per_item"] = 2e9
    df["bytes_per_item"] = 4e6
    df["dtype"] = "float32"
    p = P.plan(df, wl(), hardware=["H100 SXM", "T4", "AWS c7i.4xlarge"])
    assert set(p.summary["hardware"]) == {"NVIDIA L4", "H100 SXM", "T4", "AWS c7i.4xlarge"}
    assert (p.summary.loc[p.summary["hardware"] != "NVIDIA L4", "provenance"] == "projected").all()


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------


def test_training_hand_computed():
    train = dict(candidate="m", hardware="NVIDIA L4", mode="training", batch_size=32,
                 latency_p95_ms=70.0, throughput_items_per_s=500.0, energy_per_item_j=0.144,
                 idle_power_w=20.0)
    tw = P.TrainingWorkload(runs_per_quarter=2, items_per_run=1.8e6, epochs=2, devices_per_run=2,
                            scaling_efficiency=0.9)
    p = P.plan(meas([train]), wl(), training=tw, prices=PRICES)
    t = p.training.iloc[0]
    # items 3.6e6 at 500 x 2 x 0.9 = 900 items/s -> 4000 s; device-hours 2 x 4000 / 3600
    assert t["wall_clock_days_per_run"] == pytest.approx(4000 / 86400)
    assert t["device_hours_per_run"] == pytest.approx(8000 / 3600)
    assert t["cost_per_run_usd"] == pytest.approx(8000 / 3600 * 0.8)
    # each device draws 0.144 J x 500/s = 72 W for 4000 s: 2 x 288 kJ = 0.16 kWh per run
    assert t["energy_kwh"] == pytest.approx(2 * 0.16)
    assert t["cost_usd"] == pytest.approx(2 * 8000 / 3600 * 0.8)
    assert t["co2_kg"] == pytest.approx(0.032)
    assert len(p.training) == 1                  # 3 months -> one quarter
    assert p.summary["training_cost_usd"].iloc[0] == pytest.approx(t["cost_usd"])
    assert p.summary["total_cost_usd"].iloc[0] == pytest.approx(7008 + t["cost_usd"])


def test_training_from_flops_only_is_projected():
    # TestGPU: 1e12 FLOP/s x 0.4 / (3 x 1e9) = 133.33 items/s; 1.2e6 items -> 9000 s = 2.5 h
    tw = P.TrainingWorkload(runs_per_quarter=1, items_per_run=1.2e6, quarters=2)
    p = P.plan(src_rows(1e9, 1e6, 1000.0), training=tw, hardware=["TestGPU"], catalog=tiny_catalog())
    t = p.training.set_index(["hardware", "quarter"]).loc[("TestGPU", 1)]
    assert t["throughput_items_per_s"] == pytest.approx(400 / 3)
    assert t["device_hours"] == pytest.approx(2.5) and t["cost_usd"] == pytest.approx(2.5)
    assert t["energy_kwh"] == pytest.approx(0.25)             # 100 W x 2.5 h
    assert t["provenance"] == "projected" and "assumed utilization 0.4" in t["efficiency_source"]
    assert len(p.training) == 4                                # 2 hardware x 2 quarters
    assert p.summary["training_cost_usd"].notna().all()


# ------------------------------------------------------------------------------------------
# Monte Carlo, scenarios, export
# ------------------------------------------------------------------------------------------


def test_monte_carlo_percentiles_and_determinism():
    unc = P.Uncertainty(traffic=(0.5, 2.0), growth=(0.0, 0.1), price=(0.8, 1.2))
    a = P.plan(meas(), wl(monthly_growth=0.05), prices=PRICES, samples=500, seed=1, uncertainty=unc)
    b = P.plan(meas(), wl(monthly_growth=0.05), prices=PRICES, samples=500, seed=1, uncertainty=unc)
    pd.testing.assert_frame_equal(a.monthly, b.monthly)
    m = a.monthly
    assert (m["cost_usd_p10"] <= m["cost_usd_p50"]).all() and (m["cost_usd_p50"] <= m["cost_usd_p90"]).all()
    assert (m["cost_usd_p10"] < m["cost_usd_p90"]).all()
    assert np.allclose(m["co2_kg_p50"], m["energy_kwh_p50"] * 100 / 1000)
    assert {"cost_usd_p10", "energy_kwh_p90", "co2_kg_p50"} <= set(a.quarterly.columns) & set(a.summary.columns)
    with pytest.raises(ValidationError, match="growth"):
        P.plan(meas(), wl(monthly_growth=0.2), samples=10, uncertainty=unc)


def test_compare_scenarios_and_export(tmp_path):
    df = compare = P.compare_scenarios(
        {"base": (wl(), PRICES), "aggressive": (wl(monthly_growth=0.3), PRICES)}, meas())
    assert compare["scenario"].tolist() == ["base", "aggressive"]
    assert df.loc[1, "cost_usd"] > df.loc[0, "cost_usd"]
    p = P.plan(meas(), wl(), prices=PRICES)
    paths = p.to_csv(tmp_path / "out")
    assert {x.name for x in paths} == {"summary.csv", "monthly.csv", "quarterly.csv", "inputs.json"}
    inputs = json.loads((tmp_path / "out" / "inputs.json").read_text())
    assert P.InferenceWorkload.from_dict(inputs["inference"]) == wl()
    assert P.Prices.from_dict(inputs["prices"]) == PRICES
    assert inputs["prices"]["resolved_grid_gco2_per_kwh"] == 100
    p.to_excel(tmp_path / "plan.xlsx")
    assert set(pd.read_excel(tmp_path / "plan.xlsx", sheet_name=None)) == {
        "summary", "monthly", "quarterly", "inputs"}
    assert list(p.monthly.columns) == list(P.MONTHLY_COLUMNS)
    assert list(p.quarterly.columns) == list(P.QUARTERLY_COLUMNS)
    assert list(p.summary.columns) == list(P.SUMMARY_COLUMNS)


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------

_settings = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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


def test_no_torch_import():
    import subprocess
    import sys

    code = ("import sys, importlib; importlib.import_module('effplan.planning'); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    from pathlib import Path
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P.plan(meas(), wl(), prices=PRICES)   # a fully priced plan raises no warning
