"""The helpers the notebooks call (effplan.notebook), tested without a kernel."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from effplan import notebook, store
from effplan.catalog import this_machine_row


def _frame(**over):
    base = {
        "candidate": ["a", "a", "b"], "hardware": ["L4", "L4", "L4"],
        "mode": ["inference"] * 3, "batch_size": [1, 8, 1],
        "latency_p95_ms": [2.0, 5.0, 1.0], "throughput_items_per_s": [500.0, 1600.0, 900.0],
        "energy_per_item_j": [0.1, 0.05, 0.08], "idle_power_w": [20.0] * 3,
        "energy_source": ["nvml-counter", "nvml-counter", "estimated-tdp"],
        "provenance": ["measured"] * 3, "flops_coverage": [1.0, 1.0, 0.5],
        "status": ["ok"] * 3,
    }
    base.update(over)
    return pd.DataFrame(base)


def test_measured_vs_estimated_labels_every_source():
    out = notebook.measured_vs_estimated(_frame()).set_index("candidate")
    assert out.loc["a", "energy"] == "measured (nvml-counter)"
    assert out.loc["b", "energy"].startswith("ESTIMATED")
    assert out.loc["a", "flops"] == "counted"
    assert out.loc["b", "flops"] == "lower bound (50% of operator calls counted)"
    assert out.loc["a", "points"] == 2 and out.loc["a", "failed"] == 0


def test_prices_for_prices_this_machine_and_keeps_given_prices():
    row = this_machine_row()
    frame = _frame(hardware=[row["name"]] * 3)
    prices = notebook.prices_for(frame)
    assert prices.price_per_hour[row["name"]] == pytest.approx(row["price_per_hour_usd"])
    given = notebook.prices_for(frame, {row["name"]: 1.25}, pue=1.3)
    assert given.price_per_hour[row["name"]] == 1.25 and given.pue == 1.3
    # catalog hardware keeps its catalog price: nothing to add
    assert notebook.prices_for(_frame()).price_per_hour in (None, {})


def test_notebook_measurements_loads_an_existing_results_file(tmp_path):
    path = tmp_path / "r.jsonl"
    store.save_frame(_frame(), path)
    m = notebook.notebook_measurements(path)
    assert sorted(m.to_frame()["candidate"]) == ["a", "a", "b"]


def test_show_renders_figures_as_png_and_frames_as_tables(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    notebook.show({"a figure": fig, "a table": pd.DataFrame({"x": [1]})})
    kinds = [type(o).__name__ for o in shown]
    assert kinds == ["HTML", "Image", "HTML", "HTML"]
    assert shown[1].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table" in shown[3].data


def test_quick_settings_and_trainable():
    assert notebook.measure_settings(False) == {}
    assert notebook.measure_settings(True)["time_budget_s"] > 0

    class C:
        def __init__(self, q):
            self.is_quantized = q

    a, b = C(False), C(True)
    assert notebook.trainable([a, b]) == [a]


def test_scenarios_side_by_side_pivots_in_given_order_and_keeps_infeasible_rows():
    import effplan

    meas = _frame()
    # end-to-end p95 (fill + queue + service): "b" at batch 1 needs 2.77 ms, "a" at least 6.6 ms
    wl = effplan.InferenceWorkload(86_400_000, slo_p95_ms=3.0, target_utilization=0.5, months=1)
    prices = effplan.Prices(price_per_hour={"L4": 1.0}, grid_gco2_per_kwh=100)
    side = effplan.compare_scenarios(
        {"tight": (wl, prices), "loose": (effplan.InferenceWorkload(86_400_000, target_utilization=0.5,
                                                                    months=1), prices)}, meas)
    tables = notebook.scenarios_side_by_side(side)
    cost = tables["cost over the horizon (USD)"].set_index(["candidate", "hardware"])
    assert list(cost.columns) == ["tight", "loose"]
    # 1000 items/s. "a" misses 3 ms end to end at every batch (best 6.6 ms): empty cell, row kept.
    # "b" at batch 1 (1 ms): capacity 450/s -> 3 instances x 730 h x $1 = 2190.
    assert pd.isna(cost.loc[("a", "L4"), "tight"])
    assert cost.loc[("b", "L4"), "tight"] == pytest.approx(2190)
    # no target: "a" uses batch 8 (1600/s -> 800/s usable) -> 2 instances -> 1460
    assert cost.loc[("a", "L4"), "loose"] == pytest.approx(1460)
    assert "CO2 over the horizon (kg)" in tables
