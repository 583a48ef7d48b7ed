"""plan(), compare_scenarios(), export and PreparedMeasurements (re-plans without hidden caches)."""

from __future__ import annotations

import importlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from effplan.errors import ValidationError
from planning_data import PRICES, meas, wl  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")


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


def test_no_torch_import():
    import subprocess
    import sys

    code = ("import sys, importlib; importlib.import_module('effplan.planning'); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    from pathlib import Path
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P.plan(meas(), wl(), prices=PRICES)   # a fully priced plan raises no warning


def _module_state() -> dict[str, int]:
    """Sizes of every module-level container in effplan's planning path (a cache would grow)."""
    import sys

    out = {}
    for name, mod in list(sys.modules.items()):
        if not (name.startswith("effplan.planning") or name in ("effplan.refdata.catalog", "effplan.records.schema")):
            continue
        for attr, val in vars(mod).items():
            if isinstance(val, (dict, list, set)):
                out[f"{name}.{attr}"] = len(val)
    return out


def test_plan_keeps_no_hidden_state_and_prepared_plans_are_identical():
    from planning_data import with_t4_inference

    P.plan(meas(), wl(), prices=PRICES)
    before = _module_state()
    tw = P.TrainingWorkload(runs_per_quarter=1, items_per_epoch=1e6)
    kw = dict(training=tw, prices=PRICES, samples=50, seed=2)
    for df in (with_t4_inference(), meas()):
        plain = P.plan(df, wl(monthly_growth=0.05), hardware=["H100 SXM"], **kw)
        prep = P.prepare(df, ["H100 SXM"])
        again = P.plan(prep, wl(monthly_growth=0.05), **kw)
        for name, frame in plain.frames().items():
            pd.testing.assert_frame_equal(frame, again.frames()[name], obj=name)
        assert again.inputs == plain.inputs
        # a re-plan with another target reuses the prepared frames and matches a fresh plan
        slo = P.plan(prep, wl(slo_p95_ms=10), prices=PRICES)
        pd.testing.assert_frame_equal(slo.summary, P.plan(df, wl(slo_p95_ms=10), prices=PRICES,
                                                          hardware="H100 SXM").summary)
    assert _module_state() == before


def test_prepared_measurements_refuse_contradicting_arguments():
    prep = P.prepare(meas(), "T4", assumed_efficiency=0.3)
    assert prep.hardware == ("T4",) and prep.assumed_efficiency == 0.3
    assert "1 candidates" in repr(prep)
    assert P.plan(prep, wl(), hardware=["T4"], assumed_efficiency=0.3).inputs["hardware"] == ["T4"]
    for kw, field in ((dict(hardware=["L4"]), "hardware"), (dict(catalog=None, assumed_efficiency=0.4),
                                                            "assumed_efficiency")):
        with pytest.raises(ValidationError) as e:
            P.plan(prep, wl(), **kw)
        assert e.value.field == field and "prepare" in str(e.value)
    with pytest.raises(ValidationError) as e:
        P.plan(prep, wl(), catalog="x.csv")
    assert e.value.field == "catalog"
    with pytest.raises(ValidationError):
        P.prepare(prep)
    a = prep.choose(25)
    a["batch_size"] = -1                      # callers get a copy: the prepared choice is intact
    assert (prep.choose(25)["batch_size"] != -1).all()
    # T4 has no projection (no FLOPs in meas()): NaN batch, an infeasible row
    assert np.array_equal(prep.choose(25)["batch_size"].to_numpy(float), [8.0, np.nan], equal_nan=True)
