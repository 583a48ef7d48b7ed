"""Pareto front (ties, lower-is-better) and cheapest_meeting on hand-made sets."""

import math

import numpy as np
import pandas as pd
import pytest

import effplan
from effplan.errors import ValidationError
from effplan.selection import pareto_front

POINTS = pd.DataFrame({
    "name": ["A", "B", "C", "D", "E", "F", "G"],
    "cost_usd": [1.0, 2.0, 2.0, 3.0, 1.0, np.nan, 4.0],
    "ece": [0.10, 0.05, 0.05, 0.07, 0.12, 0.01, 0.01],
})


def test_pareto_lower_is_better_keeps_ties_drops_nan():
    front = pareto_front(POINTS, cost="cost_usd", metric="ece", higher_is_better=False)
    # D is dominated by B (cheaper and lower ECE), E by A (same cost, higher ECE), F has no cost;
    # B and C are identical: both kept, in their original order
    assert list(front["name"]) == ["A", "B", "C", "G"]
    assert list(front.index) == [0, 1, 2, 6]


def test_pareto_higher_is_better_flips_the_answer():
    front = pareto_front(POINTS, cost="cost_usd", metric="ece", higher_is_better=True)
    assert list(front["name"]) == ["E"]          # cheapest AND highest value


def test_pareto_bad_column():
    with pytest.raises(ValidationError) as exc:
        pareto_front(POINTS, cost="cost", metric="ece")
    assert exc.value.field == "cost"


QUARTERLY = pd.DataFrame({
    "candidate": ["big", "slim", "int8", "tiny"],
    "hardware": ["L4", "L4", "cpu", "cpu"],
    "quarter": [1, 1, 1, 1],
    "cost_usd": [100.0, 60.0, 30.0, 10.0],
    "latency_p95_ms": [10.0, 8.0, 40.0, 90.0],
    "feasible": [True, True, True, False],
    "infeasible_reason": ["", "", "", "p95 above the SLO at every batch size"],
})
QUALITY = {"big": {"accuracy": 0.98, "ece": 0.02, "accuracy@noise-0.1": 0.96},
           "slim": {"accuracy": 0.97, "ece": 0.06, "accuracy@noise-0.1": 0.95},
           "int8": {"accuracy": 0.97, "ece": 0.02, "accuracy@noise-0.1": 0.90}}
BOUNDS = {"min": {"accuracy@noise-0.1": 0.95}, "max": {"ece": 0.05, "latency_p95_ms": 50}}


def test_exactly_one_qualifies_with_every_reason():
    sel = effplan.cheapest_meeting(QUARTERLY, quality=QUALITY, **BOUNDS)
    assert sel.found
    assert list(sel.chosen["candidate"]) == ["big"] and sel.chosen["cost_usd"].iloc[0] == 100.0
    assert sel.answer == "Q1: big on L4 at 100 USD"
    why = sel.options.set_index("candidate")["reason"]
    assert why["big"] == ""
    assert why["slim"] == "ece = 0.06 > max 0.05"
    assert why["int8"] == "accuracy@noise-0.1 = 0.9 < min 0.95"
    assert why["tiny"] == ("infeasible: p95 above the SLO at every batch size; accuracy@noise-0.1 unknown; "
                           "ece unknown; latency_p95_ms = 90 > max 50")
    assert sel.options["chosen"].sum() == 1 and sel.options["meets"].sum() == 1


def test_nothing_qualifies_is_an_answer_not_an_exception():
    sel = effplan.cheapest_meeting(QUARTERLY, min={"accuracy": 0.99}, quality=QUALITY)
    assert not sel.found and sel.chosen.empty
    assert sel.answer.startswith("Q1: nothing meets every bound (4 options rejected")
    assert (sel.options["reason"] != "").all() and not sel.options["meets"].any()


def test_per_quarter_cheapest_and_runner_up_reason():
    q = pd.concat([QUARTERLY.assign(quarter=1), QUARTERLY.assign(quarter=2)], ignore_index=True)
    q.loc[(q["quarter"] == 2) & (q["candidate"] == "slim"), "cost_usd"] = 200.0
    sel = effplan.cheapest_meeting(q, max={"latency_p95_ms": 50})
    assert list(zip(sel.chosen["quarter"], sel.chosen["candidate"], strict=True)) == [(1, "int8"), (2, "int8")]
    why = sel.options.set_index(["quarter", "candidate"])["reason"]
    assert why[(1, "slim")] == "meets every bound but costs 30 USD more than int8 on cpu"
    assert why[(2, "slim")] == "meets every bound but costs 170 USD more than int8 on cpu"


def test_missing_cost_and_bad_bounds():
    q = QUARTERLY.copy()
    q.loc[0, "cost_usd"] = math.nan
    sel = effplan.cheapest_meeting(q)
    assert sel.options.set_index("candidate").loc["big", "reason"] == "cost unknown (missing price)"
    assert sel.chosen["candidate"].tolist() == ["int8"]
    with pytest.raises(ValidationError) as exc:
        effplan.cheapest_meeting(QUARTERLY, min={"f1": 0.5})
    assert exc.value.field == "min"
    with pytest.raises(ValidationError) as exc:
        effplan.cheapest_meeting(QUARTERLY, max={"ece": "low"}, quality=QUALITY)
    assert exc.value.field == "max"


def test_on_a_real_plan_of_hand_typed_measurements():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from handtyped import hand_measurements

    plan = effplan.plan(hand_measurements(),
                        inference=effplan.InferenceWorkload(requests_per_day=10_000_000, months=6, slo_p95_ms=30),
                        prices=effplan.Prices(price_per_hour={"lab-cpu": 1.0}))
    # 115.7 items/s: small at batch 8 (p95 10 ms, 700 items/s usable) needs 1 instance; large only
    # meets 30 ms at batch 1 (60 x 0.7 = 42 items/s) and needs 3
    assert set(plan.quarterly.groupby("candidate")["instances"].max().items()) == {("small", 1), ("large", 3)}
    sel = effplan.cheapest_meeting(plan, min={"accuracy": 0.92},
                                   quality={"small": {"accuracy": 0.90}, "large": {"accuracy": 0.95}})
    assert list(sel.chosen["candidate"]) == ["large", "large"]         # two quarters
    assert (sel.options.loc[sel.options["candidate"] == "small", "reason"] == "accuracy = 0.9 < min 0.92").all()
    cheap = effplan.cheapest_meeting(plan)
    assert list(cheap.chosen["candidate"]) == ["small", "small"]
    assert (cheap.chosen["cost_usd"].to_numpy() <= sel.chosen["cost_usd"].to_numpy()).all()


def test_equal_cost_is_broken_by_energy_then_name():
    q = QUARTERLY.iloc[:3].assign(cost_usd=50.0, energy_kwh=[3.0, 2.0, 2.0])
    sel = effplan.cheapest_meeting(q)
    assert sel.chosen["candidate"].tolist() == ["int8"]          # 2 kWh, and "int8" < "slim"
    why = sel.options.set_index("candidate")["reason"]
    assert why["big"] == "meets every bound at the same cost as int8 on cpu, which uses less energy (2 vs 3 kWh)"
    assert why["slim"] == "meets every bound; ties with int8 on cpu on cost and energy (the first by name was chosen)"
