"""budget_table: the quarterly budget a person reads, with the plan's one inference + training total."""

from __future__ import annotations

import importlib
import math

import pytest

from planning_data import PRICES, wl, with_t4_inference  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")


def test_budget_table_takes_the_plans_total_and_lists_what_it_leaves_out():
    tw = P.TrainingWorkload(runs_per_quarter=2, items_per_epoch=1.8e6, epochs=2, devices_per_run=2,
                            scaling_efficiency=0.9)
    p = P.plan(with_t4_inference(), wl(), training=tw, prices=PRICES)
    t = P.budget_table(p).set_index("hardware")
    training_l4 = 2 * 8000 / 3600 * 0.8                      # see test_training_hand_computed
    assert t.at["NVIDIA L4", "Q1"] == pytest.approx(7008)     # 3 months x 2336 (hand-computed)
    assert t.at["NVIDIA L4", "total_usd"] == pytest.approx(7008 + training_l4)
    assert math.isnan(t.at["T4", "total_usd"]) and t.at["T4", "inference_usd"] > 0
    assert t.at["T4", "note"] == "training: no training measurement for m on T4"
    a = P.budget_table(p).attrs
    assert a["total_usd"] == pytest.approx(7008 + training_l4) and a["rows_in_total"] == 1
    assert a["excluded"] == ["m @ T4: training: no training measurement for m on T4"]
    assert a["training_usd"] == pytest.approx(training_l4)


def test_budget_table_without_training_keeps_the_infeasible_reason():
    p = P.plan(with_t4_inference(), wl(slo_p95_ms=4), prices=PRICES)
    t = P.budget_table(p, ["m"], ["T4"])
    assert len(t) == 1 and math.isnan(t["total_usd"].iloc[0])
    assert "no measured batch size meets p95 <= 4 ms" in t["note"].iloc[0]
    assert math.isnan(t.attrs["total_usd"]) and t.attrs["rows_in_total"] == 0
