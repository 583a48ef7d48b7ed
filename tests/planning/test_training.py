"""Training plans: hand-computed runs, FLOPs-only projection, and the inference + training total."""

from __future__ import annotations

import importlib
import math

import pytest

from planning_data import PRICES, meas, src_rows, tiny_catalog, wl  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")


def test_training_hand_computed():
    train = dict(candidate="m", hardware="NVIDIA L4", mode="training", batch_size=32,
                 latency_p95_ms=70.0, throughput_items_per_s=500.0, energy_per_item_j=0.144,
                 idle_power_w=20.0)
    tw = P.TrainingWorkload(runs_per_quarter=2, items_per_epoch=1.8e6, epochs=2, devices_per_run=2,
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
    # an entered MFU: TestGPU 1e12 FLOP/s x 0.4 / (3 x 1e9) = 133.33 items/s;
    # 1.2e6 items -> 9000 s = 2.5 h
    tw = P.TrainingWorkload(runs_per_quarter=1, items_per_epoch=1.2e6, quarters=2,
                            assumed_mfu=0.4)
    p = P.plan(src_rows(1e9, 1e6, 1000.0), training=tw, hardware=["TestGPU"], catalog=tiny_catalog())
    t = p.training.set_index(["hardware", "quarter"]).loc[("TestGPU", 1)]
    assert t["throughput_items_per_s"] == pytest.approx(400 / 3)
    assert t["device_hours"] == pytest.approx(2.5) and t["cost_usd"] == pytest.approx(2.5)
    assert t["energy_kwh"] == pytest.approx(0.25)             # 100 W x 2.5 h
    assert t["provenance"] == "projected" and "entered MFU 0.4" in t["efficiency_source"]
    assert len(p.training) == 4                                # 2 hardware x 2 quarters
    assert p.summary["training_cost_usd"].notna().all()


def test_total_is_nan_with_a_reason_when_the_training_part_has_no_cost():
    from planning_data import with_t4_inference

    tw = P.TrainingWorkload(runs_per_quarter=2, items_per_epoch=1.8e6, epochs=2, devices_per_run=2,
                            scaling_efficiency=0.9)
    p = P.plan(with_t4_inference(), wl(), training=tw, prices=PRICES)
    s = p.summary.set_index("hardware")
    # L4: both parts priced -> 7008 (inference, hand-computed) + 2 runs x 8000/3600 h x 0.80
    assert s.at["NVIDIA L4", "total_cost_usd"] == pytest.approx(7008 + 2 * 8000 / 3600 * 0.8)
    assert s.at["NVIDIA L4", "total_note"] == ""
    # T4: inference has a cost, training was never measured there -> the total is NaN, not inference
    assert s.at["T4", "cost_usd"] > 0 and math.isnan(s.at["T4", "training_cost_usd"])
    assert math.isnan(s.at["T4", "total_cost_usd"])
    assert s.at["T4", "total_note"] == "training: no training measurement for m on T4"


def test_total_note_names_the_inference_part_and_training_only_total():
    tw = P.TrainingWorkload(runs_per_quarter=1, items_per_epoch=1.8e6)
    p = P.plan(meas([dict(
        candidate="m", hardware="NVIDIA L4", mode="training", batch_size=32, latency_p95_ms=70.0,
        throughput_items_per_s=500.0, energy_per_item_j=0.144, idle_power_w=20.0)]),
        wl(slo_p95_ms=4), training=tw, prices=PRICES)
    s = p.summary.iloc[0]
    assert math.isnan(s["total_cost_usd"]) and s["total_note"].startswith("inference: no measured batch")
    # training only: the total is the training cost (3600 s at 500/s = 1 h x 0.80 per run, 4 quarters)
    p = P.plan(meas([dict(
        candidate="m", hardware="NVIDIA L4", mode="training", batch_size=32, latency_p95_ms=70.0,
        throughput_items_per_s=500.0, energy_per_item_j=0.144, idle_power_w=20.0)]),
        training=tw, prices=PRICES)
    assert p.summary["total_cost_usd"].iloc[0] == pytest.approx(4 * 0.8)


def test_flops_only_training_uses_a_model_size_range_never_a_single_40_percent():
    """500k parameters: the 0-1e7 row of training_utilization.csv, MFU 0.01-0.5, middle
    sqrt(0.01 x 0.5) = 0.07071. TestGPU 1e12 FLOP/s x 0.07071 / 3e9 = 23.57 items/s."""
    df = src_rows(1e9, 1e6, 1000.0).assign(params=500_000)
    tw = P.TrainingWorkload(runs_per_quarter=1, items_per_epoch=1.2e6, quarters=1)
    p = P.plan(df, training=tw, hardware=["TestGPU"], catalog=tiny_catalog())
    t = p.training.set_index("hardware").loc["TestGPU"]
    assert t["throughput_items_per_s"] == pytest.approx(1e12 * (0.01 * 0.5) ** 0.5 / 3e9)
    assert "range 0.01-0.5" in t["efficiency_source"] and "issue 11" in t["efficiency_source"]
    # without a parameter count no range applies: an honest infeasible row
    p = P.plan(src_rows(1e9, 1e6, 1000.0), training=tw, hardware=["TestGPU"],
               catalog=tiny_catalog())
    t = p.training.set_index("hardware").loc["TestGPU"]
    assert not t["feasible"] and "parameter count is unknown" in t["infeasible_reason"]
