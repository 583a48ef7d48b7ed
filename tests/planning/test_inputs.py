"""Planning inputs: workloads, prices, uncertainty and grid data validate themselves and name the bad field."""

from __future__ import annotations

import importlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from effplan.errors import ValidationError
from planning_data import NIGHT_DAY, meas, wl  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")


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


def test_prices_are_usd_only():
    # every money column is *_usd and the catalog prices are USD: another label would lie
    with pytest.raises(ValidationError) as e:
        P.Prices(currency="EUR")
    assert e.value.field == "currency" and "convert" in str(e.value) and "USD" in str(e.value)
    assert P.Prices(currency="usd").currency == "USD"
    assert P.Prices.from_dict(P.Prices().to_dict()).currency == "USD"


def test_items_per_epoch_and_the_old_key():
    tw = P.TrainingWorkload(runs_per_quarter=2, items_per_epoch=5000, epochs=3)
    assert tw.to_dict()["items_per_epoch"] == 5000 and "items_per_run" not in tw.to_dict()
    assert P.TrainingWorkload.from_dict(tw.to_dict()) == tw
    with pytest.warns(DeprecationWarning, match="items_per_epoch"):
        old = P.TrainingWorkload.from_dict({"runs_per_quarter": 2, "items_per_run": 5000, "epochs": 3})
    assert old == tw
    with pytest.raises(ValidationError) as e:
        P.TrainingWorkload.from_dict({"runs_per_quarter": 2, "items_per_run": 1, "items_per_epoch": 1})
    assert e.value.field == "items_per_run"
    with pytest.raises(ValidationError) as e:
        P.TrainingWorkload(runs_per_quarter=1, items_per_epoch=0)
    assert e.value.field == "items_per_epoch"


# ----------------------------------------------------------------------------- measurement frame (issue 9)
from effplan.errors import PlanWarning  # noqa: E402
from planning_data import PRICES  # noqa: E402


def _flag(df, bs, stable, reason, note=""):
    df = df.copy()
    if "stable" not in df:
        df["stable"], df["stop_reason"], df["timing_note"] = True, "ci-met", ""
    i = df.index[df["batch_size"] == bs]
    df.loc[i, "stable"], df.loc[i, "stop_reason"], df.loc[i, "timing_note"] = stable, reason, note
    return df


def test_strict_plan_refuses_unstable_rows_with_a_named_reason():
    df = _flag(meas(), 8, False, "unstable", "30% of samples are stalls")
    with pytest.warns(PlanWarning, match=r"1 measured row\(s\) are NOT stable and are refused "
                                         r"\(allow_unstable=False\): m on NVIDIA L4 \(inference, bs=8\)"):
        p = P.plan(df, wl(), prices=PRICES, allow_unstable=False)
    row = p.summary.iloc[0]
    # bs=8 is left out, so the operating point is interpolated between the stable neighbours
    # bs=1 (5 ms, 200/s) and bs=32 (80 ms, 1600/s), log-log: at bs=2 the p95 is
    # 5 x 2^(log 16 / log 32) = 5 x 2^0.8 ms and the throughput 200 x 2^(log 8 / log 32) = 200 x 2^0.6
    assert row["batch_neighbours"] == "1-32" and row["batch_source"] == "interpolated"
    assert row["batch_size"] == 2
    assert row["latency_p95_ms"] == pytest.approx(5 * 2 ** 0.8)
    assert row["throughput_items_per_s"] == pytest.approx(200 * 2 ** 0.6)
    assert p.inputs["allow_unstable"] is False
    assert not row["timing_unstable"] and row["stability_note"] == ""  # planned from stable rows only
    assert any("refused" in n for n in p.inputs["measurement_notes"])


def test_strict_plan_with_only_unstable_rows_is_infeasible_with_the_reason():
    df = meas()
    df["stable"], df["stop_reason"], df["timing_note"] = False, "unstable", "two modes (a x1600 gap)"
    with pytest.warns(PlanWarning, match="NOT stable"):
        p = P.plan(df, wl(), prices=PRICES, allow_unstable=False)
    row = p.summary.iloc[0]
    assert not row["feasible"] and np.isnan(row["cost_usd"])
    assert row["infeasible_reason"].startswith("measurement not stable (unstable: two modes (a x1600 gap))")
    assert "allow_unstable=False" in row["infeasible_reason"]


def test_unstable_rows_are_used_and_flagged_by_default():
    df = _flag(meas(), 8, False, "time-budget", "confidence target not met")
    with pytest.warns(PlanWarning, match="NOT stable: they are used and every figure planned from "
                                         "them is flagged"):
        p = P.plan(df, wl(), prices=PRICES)
    row = p.summary.iloc[0]
    assert (row["batch_size"], row["throughput_items_per_s"]) == (8, 1000.0)
    assert row["efficiency_source"].startswith("measured, NOT stable, used and flagged: "
                                               "measurement not stable (time-budget")
    assert row["timing_unstable"] and p.inputs["allow_unstable"] is True
    prep = P.prepare(df)
    assert prep.allow_unstable is True   # effplan.defaults.ALLOW_UNSTABLE
    with pytest.raises(ValidationError) as e:
        P.plan(prep, wl(), prices=PRICES, allow_unstable=False)
    assert e.value.field == "allow_unstable"


def test_two_hosts_with_the_same_hardware_name_both_reach_the_plan():
    a = meas().assign(hw_host_hash="host-a", hardware_id="id-a")
    b = meas().assign(hw_host_hash="host-b", hardware_id="id-b")
    # the case: 24,963/s measured on one host, 249,632/s on the other
    a.loc[a.batch_size == 8, "throughput_items_per_s"] = 24_963.0
    b.loc[b.batch_size == 8, "throughput_items_per_s"] = 249_632.0
    with pytest.warns(PlanWarning, match=r"3 measured point\(s\) come from several hosts") as rec:
        p = P.plan(pd.concat([a, b], ignore_index=True), wl(), prices=PRICES)
    row = p.summary.iloc[0]
    assert len(p.summary) == 1 and row["batch_size"] == 8
    assert row["throughput_items_per_s"] == (24_963.0 + 249_632.0) / 2  # median of two = mean
    assert any("throughput 2.496e+04-2.496e+05 items/s" in str(w.message) for w in rec)
    notes = p.inputs["measurement_notes"]
    assert any("m on NVIDIA L4 (inference, bs=8): median of 2 hosts" in n for n in notes)


def test_duplicate_points_keep_the_newest_and_warn():
    old = meas().assign(timestamp="2026-01-01T00:00:00+00:00")
    new = meas().assign(timestamp="2026-02-01T00:00:00+00:00")
    new.loc[new.batch_size == 8, "throughput_items_per_s"] = 1010.0
    df = pd.concat([new, old], ignore_index=True)  # the newest first in the table
    with pytest.warns(PlanWarning, match=r"3 duplicate measured point\(s\)"):
        p = P.plan(df, wl(), prices=PRICES)
    assert p.summary.iloc[0]["throughput_items_per_s"] == 1010.0


def test_not_stable_generation_rows_are_used_and_said_so(monkeypatch):
    import effplan.planning.planner as planner

    seen = {}

    def fake_plan_generation(df, *args):
        seen["rows"] = len(df)
        empty = pd.DataFrame()
        return empty, empty, empty

    monkeypatch.setattr(planner, "plan_generation", fake_plan_generation)
    rows = pd.DataFrame([dict(candidate="d", hardware="NVIDIA L4", mode="generation", batch_size=1,
                              prompt_tokens=p, ttft_p50_ms=5.0, ttft_p95_ms=6.0, tpot_p50_ms=1.0,
                              tpot_p95_ms=1.2, kv_cache_bytes_per_token=1024.0, param_bytes=1e6,
                              energy_per_prompt_token_j=0.01, energy_per_output_token_j=0.02,
                              idle_power_w=20.0, stable=s, stop_reason=r)
                         for p, s, r in ((128, True, "ci-met"), (512, False, "unstable"))])
    with pytest.warns(PlanWarning, match=r"1 measured row\(s\) are NOT stable: they are used.*"
                                         r"d on NVIDIA L4 \(generation, bs=1, prompt 512\)") as rec:
        P.plan(rows, generation=P.GenerationWorkload(requests_per_day=1000, prompt_tokens=128,
                                                     output_tokens=64), prices=PRICES)
    assert seen["rows"] == 2
    assert not any("left out" in str(w.message) or "refused" in str(w.message) for w in rec)
