"""Planning inputs: workloads, prices, uncertainty and grid data validate themselves and name the bad field."""

from __future__ import annotations

import importlib
import json
import warnings

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
