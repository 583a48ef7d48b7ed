"""Roofline projection to catalog hardware (custom two-GPU catalog with round numbers)."""

from __future__ import annotations

import importlib
import math

import pandas as pd
import pytest

from effplan.refdata.catalog import load_catalog

from planning_data import meas, src_rows, tiny_catalog, wl  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")


def test_projection_compute_bound_hand_computed():
    # source roofline: max(1e9/2e12 = 0.5 ms, 1e6/400e9 = 2.5 us) = 0.5 ms; measured 1 ms -> eff 0.5
    # target roofline: max(1e9/1e12 = 1 ms, 1e6/100e9 = 10 us) = 1 ms -> 1 / 0.5 = 2 ms per item
    pr = P.project(src_rows(1e9, 1e6, 1000.0), ["TestGPU"], catalog=tiny_catalog())
    r = pr.iloc[0]
    assert r["hardware"] == "TestGPU" and r["projected_from"] == "SrcGPU"
    assert r["provenance"] == "projected" and r["energy_source"] == "projected"
    assert r["efficiency"] == pytest.approx(0.5)
    assert r["efficiency_source"].startswith("calibrated on SrcGPU;")
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


def test_launch_floor_hand_computed():
    """10 operator calls per batch of 1; the cuda row of kernel_overhead.csv: 20 us per call.
    Source: launch share min(10 x 20 us, 0.5 x 1 ms) = 200 us; roofline 0.5 ms ->
    efficiency 0.5 / (1 - 0.2) = 0.625. Target: roofline 1 ms / 0.625 + 200 us = 1.8 ms."""
    from effplan.refdata.reference import overhead_per_operator_s

    assert overhead_per_operator_s("gpu")[0] == pytest.approx(20e-6)
    df = src_rows(1e9, 1e6, 1000.0).assign(operator_calls=10)
    r = P.project(df, ["TestGPU"], catalog=tiny_catalog()).iloc[0]
    assert r["efficiency"] == pytest.approx(0.5 / 0.8)
    assert 1 / r["throughput_items_per_s"] == pytest.approx(1e-3 * 0.8 / 0.5 + 200e-6)
    assert "launch floor" in r["efficiency_source"] and "kernel_overhead.csv" in r["efficiency_source"]


def test_launch_floor_bounds_a_tiny_model_on_a_fast_gpu():
    """The issue's case: a student model at batch 16 projected at 0.3 us per batch on an H100.
    With 40 operator calls per forward the floor is 40 x 20 us = 800 us per batch."""
    df = src_rows(2e5, 1e3, 16 / 18e-6, hardware="AWS c7i.4xlarge").assign(
        batch_size=16, operator_calls=40, device="cpu")
    r = P.project(df, ["H100 SXM"]).iloc[0]
    per_batch_s = 16 / r["throughput_items_per_s"]
    assert per_batch_s >= 40 * 20e-6


def test_dynamic_int8_is_never_projected_to_a_gpu():
    df = src_rows(1e9, 1e6, 1000.0, hardware="AWS c7i.4xlarge").assign(dtype="qint8",
                                                                         device="cpu")
    pr = P.project(df, ["H100 SXM", "AWS c7g.4xlarge"]).set_index("hardware")
    assert "infeasible on H100 SXM" in pr.at["H100 SXM", "projection_note"]
    assert "only on CPU" in pr.at["H100 SXM", "projection_note"]
    assert math.isnan(pr.at["H100 SXM", "throughput_items_per_s"])
    assert "only on CPU" not in pr.at["AWS c7g.4xlarge", "projection_note"]  # a CPU may run it
    p = P.plan(df, P.InferenceWorkload(1000, months=3), hardware=["H100 SXM"])
    s = p.summary.set_index("hardware").loc["H100 SXM"]
    assert not s["feasible"] and "qint8" in s["infeasible_reason"]


def test_projection_is_capped_by_the_best_published_share_of_peak():
    """A source that reaches its full roofline (efficiency 1) is capped on an H100 SXM at the
    best MLPerf share of its int8 peak: 88,714.3 x 8.18e9 / 1.9788e15 = 0.3667."""
    df = src_rows(1e9, 1e6, 2000.0)  # SrcGPU roofline 0.5 ms = measured: efficiency 1.0
    cat = tiny_catalog()
    raw = pd.concat([cat, load_catalog().loc[lambda c: c["name"] == "H100 SXM"]],
                    ignore_index=True)
    r = P.project(df, ["H100 SXM"], catalog=raw).iloc[0]
    assert r["efficiency"] == pytest.approx(88714.3 * 8.18e9 / 1.9788e15)
    assert "MLPerf Inference v4.0" in r["efficiency_source"]


def _resnet50_rows(dtype: str) -> pd.DataFrame:
    """ResNet-50 at batch 32 measured on a catalog CPU: 8.18e9 FLOPs per image, 100 images/s,
    about 180 operator calls per forward (the dispatch count of torchvision's resnet50)."""
    return pd.DataFrame([dict(candidate="resnet50", hardware="AWS c7i.4xlarge", mode="inference",
                              batch_size=32, latency_p95_ms=340.0, throughput_items_per_s=100.0,
                              energy_per_item_j=1.0, idle_power_w=50.0, flops_per_item=8.18e9,
                              bytes_per_item=3.2e6, dtype=dtype, device="cpu",
                              operator_calls=180)])


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_projections_never_exceed_the_best_published_mlperf_figure(dtype):
    from effplan.refdata.reference import mlperf_inference

    best = mlperf_inference().query("model == 'resnet50'").groupby("accelerator")[
        "throughput_per_accelerator_items_per_s"].max()
    pr = P.project(_resnet50_rows(dtype), list(best.index)).set_index("hardware")
    for acc, published in best.items():
        projected = pr.at[acc, "throughput_items_per_s"]
        assert 0 < projected <= published, (acc, dtype, projected, published)
