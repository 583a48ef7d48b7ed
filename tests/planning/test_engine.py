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


def _several(huge: tuple[str, ...] = ()) -> pd.DataFrame:
    """Six candidates (throughput scaled per candidate); those in ``huge`` have an energy per item
    whose monthly product items x energy is ~1e308 at base traffic: finite deterministically,
    overflowing in the Monte Carlo samples with traffic above ~1.8x."""
    frames = []
    for i in range(6):
        c = f"m{i}"
        d = meas().assign(candidate=c)
        d["throughput_items_per_s"] *= 1 + i / 3
        if c in huge:
            d["energy_per_item_j"] = 3.8e298
        frames.append(d)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("months,profile", [(3, None), (4, None), (4, [0.0, 0.5, 1.0, 0.5] * 6)])
def test_monte_carlo_chunks_give_the_numbers_of_one_pass(monkeypatch, months, profile):
    """The Monte Carlo runs the options through the engine in cache-sized chunks: one option per
    chunk and all options in one chunk give identical frames (percentiles, quarter sums of a
    partial last quarter, the horizon), with sampled energy and measurement spread."""
    inf = importlib.import_module("effplan.planning.inference")
    df = _several()
    df["latency_ci_rel"] = 0.05
    df.loc[df["candidate"] == "m3", "energy_source"] = "estimated-tdp"
    unc = P.Uncertainty(traffic=(0.5, 2.0), growth=(0.0, 0.1), price=(0.8, 1.2))
    w = wl(monthly_growth=0.05, months=months, daily_profile=profile)
    plans = []
    for elements in (1, 1 << 40):
        monkeypatch.setattr(inf, "_CHUNK_ELEMENTS", elements)
        plans.append(P.plan(df, w, prices=PRICES, samples=300, seed=4, uncertainty=unc))
    a, b = plans
    assert a.monthly["cost_usd_p50"].notna().all() and len(a.summary) == 6
    for x, y in ((a.monthly, b.monthly), (a.quarterly, b.quarterly), (a.summary, b.summary)):
        pd.testing.assert_frame_equal(x, y, check_exact=True)


def test_monte_carlo_overflow_names_the_first_option_whatever_the_chunks(monkeypatch):
    """m2 and m4 overflow only in the samples: the error names m2 (the first), chunked or not."""
    inf = importlib.import_module("effplan.planning.inference")
    df = _several(huge=("m2", "m4"))
    unc = P.Uncertainty(traffic=(0.5, 2.0))
    P.plan(df, wl(), prices=PRICES)   # deterministic: finite
    for elements in (1, 1 << 40):
        monkeypatch.setattr(inf, "_CHUNK_ELEMENTS", elements)
        with pytest.raises(ValidationError) as e:
            P.plan(df, wl(), prices=PRICES, samples=200, seed=0, uncertainty=unc)
        assert e.value.field == "energy_per_item_j"
        assert "m2 on NVIDIA L4 (Monte Carlo sample)" in str(e.value)
