"""Monte Carlo over the uncertain inputs: traffic, growth, price, and also measurement spread,
estimated energy and projection efficiency; ``uncertainty=`` as a plain dict."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from effplan.errors import ValidationError
from planning_data import PRICES, meas, wl  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")

EXACT = dict(traffic=None, price=None, measurement=False, energy=None, efficiency=None)


def test_plain_dict_equals_the_dataclass():
    a = P.plan(meas(), wl(), prices=PRICES, samples=200, seed=4,
               uncertainty={"traffic": (0.5, 1.5), "price": [0.9, 1.2]})
    b = P.plan(meas(), wl(), prices=PRICES, samples=200, seed=4,
               uncertainty=P.Uncertainty(traffic=(0.5, 1.5), price=(0.9, 1.2)))
    np.testing.assert_array_equal(a.summary["cost_usd_p90"], b.summary["cost_usd_p90"])
    with pytest.raises(ValidationError) as e:
        P.plan(meas(), wl(), prices=PRICES, samples=10, uncertainty={"trafic": (0.5, 1.5)})
    assert e.value.field == "trafic"
    with pytest.raises(ValidationError) as e:
        P.Uncertainty(energy={"estimated-tdp": (1.2, 1.5)})
    assert "bracket 1.0" in str(e.value)


def test_all_exact_gives_no_spread():
    p = P.plan(meas(), wl(), prices=PRICES, samples=300, seed=1, uncertainty=EXACT)
    s = p.summary.iloc[0]
    assert s["cost_usd_p10"] == s["cost_usd_p90"] == pytest.approx(s["cost_usd"])
    assert s["energy_kwh_p10"] == s["energy_kwh_p90"] == pytest.approx(s["energy_kwh"])


def test_estimated_tdp_energy_gets_the_wide_sourced_range():
    """Energy is proportional to the energy multiplier (work and idle both scale), so its
    percentiles are those of triangular(0.5, 1, 1.4): P10 = 0.5 + sqrt(0.1 x 0.9 x 0.5) = 0.7121,
    P50 = 0.5 + sqrt(0.5 x 0.45) = 0.9743, P90 = 1.4 - sqrt(0.1 x 0.9 x 0.4) = 1.2103."""
    df = meas().assign(energy_source="estimated-tdp")
    unc = dict(EXACT, energy=dict(P.Uncertainty().energy))
    p = P.plan(df, wl(), prices=PRICES, samples=20_000, seed=2, uncertainty=unc)
    s = p.summary.iloc[0]
    assert s["energy_kwh_p10"] / s["energy_kwh"] == pytest.approx(0.7121, rel=0.02)
    assert s["energy_kwh_p50"] / s["energy_kwh"] == pytest.approx(0.9743, rel=0.02)
    assert s["energy_kwh_p90"] / s["energy_kwh"] == pytest.approx(1.2103, rel=0.02)
    # measured (NVML) energy: +/-5% only
    p = P.plan(meas(), wl(), prices=PRICES, samples=5000, seed=2, uncertainty=unc)
    s = p.summary.iloc[0]
    assert 0.95 <= s["energy_kwh_p10"] / s["energy_kwh"] < 1 < s["energy_kwh_p90"] / s["energy_kwh"] <= 1.05


def test_measurement_spread_moves_instances_and_cost():
    """A 30% CI on latency: some samples need a 5th instance (capacity 500 x 1/(1 + err))."""
    df = meas().assign(latency_ci_rel=0.3)
    p = P.plan(df, wl(), prices=PRICES, samples=2000, seed=3, uncertainty=dict(EXACT, measurement=True))
    s = p.summary.iloc[0]
    assert s["cost_usd_p10"] <= s["cost_usd"] < s["cost_usd_p90"]
    exact = P.plan(df, wl(), prices=PRICES, samples=2000, seed=3, uncertainty=EXACT).summary.iloc[0]
    assert exact["cost_usd_p90"] == pytest.approx(exact["cost_usd"])


def test_projection_efficiency_is_drawn_for_projected_rows_only():
    df = meas().assign(flops_per_item=1e9, bytes_per_item=1e6, dtype="float32", params=1e6)
    unc = dict(EXACT, efficiency=(0.6, 1.15))
    p = P.plan(df, wl(slo_p95_ms=None), prices=P.Prices(price_per_hour={"L4": 0.8, "T4": 0.5}),
               hardware=["T4"], samples=2000, seed=5, uncertainty=unc)
    s = p.summary.set_index("hardware")
    assert s.at["T4", "cost_usd_p90"] > s.at["T4", "cost_usd_p10"]      # projected: spread
    assert s.at["NVIDIA L4", "cost_usd_p90"] == pytest.approx(s.at["NVIDIA L4", "cost_usd_p10"])
