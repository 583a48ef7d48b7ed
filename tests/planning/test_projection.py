"""Roofline projection to catalog hardware (custom two-GPU catalog with round numbers)."""

from __future__ import annotations

import importlib
import math

import pytest

from planning_data import meas, src_rows, tiny_catalog, wl  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")


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
