"""The vectorized engine: Monte Carlo percentiles and determinism."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

from effplan.errors import ValidationError
from planning_data import PRICES, meas, wl  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")


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
