"""The one validator (effplan.schema): the same row is good or bad in the store, the planner,
the catalog and the CLI (issue 10, cases 4, 5 and 10)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from effplan.records import store
from effplan.errors import DataWarning, ValidationError
from effplan.records.schema import (MAX_EXACT_INT, check_numbers, idle_above_busy_rows,
                                    normalize_measurements, row_problems)


def _row(**extra):
    row = dict(candidate="m", hardware="lab-cpu", mode="inference", batch_size=8, latency_p95_ms=10.0,
               throughput_items_per_s=800.0, energy_per_item_j=0.05, idle_power_w=10.0)
    row.update(extra)
    return row


# (change to a good row, field named, words in the message)
BAD_ROWS = [
    (dict(latency_p95_ms=float("inf")), "latency_p95_ms", "not a finite number"),
    (dict(energy_per_item_j=float("-inf")), "energy_per_item_j", "not a finite number"),
    (dict(throughput_items_per_s="inf"), "throughput_items_per_s", "not a finite number"),
    (dict(batch_size=True), "batch_size", "non-numeric value True"),
    (dict(batch_size=2.5), "batch_size", "not a whole number: 2.5"),
    (dict(batch_size=0), "batch_size", "must be > 0"),
    (dict(batch_size=2 ** 53 + 1), "batch_size", "above 2**53"),
    (dict(batch_size=10 ** 400), "batch_size", "too large to be a number: an integer of 401 digits"),
    (dict(energy_per_item_j=10 ** 400), "energy_per_item_j", "too large to be a number"),
    (dict(candidate=""), "candidate", "missing value"),
    (dict(candidate="   "), "candidate", "missing value"),
    (dict(hardware=""), "hardware", "missing value"),
    (dict(idle_power_w=-1.0), "idle_power_w", "negative value -1.0"),
    (dict(latency_p95_ms="fast"), "latency_p95_ms", "non-numeric value 'fast'"),
    (dict(mode="serving"), "mode", "not one of"),
    (dict(provenance="guessed"), "provenance", "not one of"),
    (dict(energy_source="guess"), "energy_source", "not one of"),
]


@pytest.mark.parametrize("change, field, message", BAD_ROWS, ids=[f"{b[1]}-{b[2][:14]}" for b in BAD_ROWS])
def test_planner_and_store_refuse_the_same_rows(tmp_path, change, field, message):
    df = pd.DataFrame([_row(), _row(**change)], dtype=object)
    with pytest.raises(ValidationError) as planner:
        normalize_measurements(df)
    assert planner.value.field == field and message in str(planner.value)
    assert "row 1" in str(planner.value)
    with pytest.raises(ValidationError) as stored:
        store.append(tmp_path / "r.jsonl", [_row(), _row(**change)])
    assert stored.value.field == field  # (an infinity is refused already by the JSON writer)
    assert not (tmp_path / "r.jsonl").exists()
    # the planner itself (effplan.plan) goes through the same validator
    from effplan.planning import InferenceWorkload, plan
    with pytest.raises(ValidationError) as planned:
        plan(df, inference=InferenceWorkload(requests_per_day=1000))
    assert planned.value.field == field


def test_good_rows_pass_and_types_are_kept():
    df = normalize_measurements(pd.DataFrame([_row(batch_size=1), _row(batch_size=MAX_EXACT_INT)]))
    assert df["batch_size"].dtype == np.int64
    assert df["batch_size"].tolist() == [1, 2 ** 53]


def test_error_rows_may_hold_nan_but_not_inf_or_blank_names():
    rows = [_row(), _row(status="error", latency_p95_ms=np.nan, error="OOM")]
    assert len(normalize_measurements(pd.DataFrame(rows))) == 2
    problems = row_problems(pd.DataFrame([_row(status="error", latency_p95_ms=float("inf"))]))
    assert problems[0]["field"] == "latency_p95_ms"
    problems = row_problems(pd.DataFrame([_row(status="error", candidate="")]))
    assert problems[0]["field"] == "candidate"


def test_row_problems_reports_every_bad_row_once():
    df = pd.DataFrame([_row(), _row(batch_size=0, latency_p95_ms=-1), _row(), _row(candidate="")],
                      dtype=object)
    problems = row_problems(df)
    assert [(p["row"], p["field"]) for p in problems] == [(1, "latency_p95_ms"), (3, "candidate")] or \
        [(p["row"], p["field"]) for p in problems] == [(1, "batch_size"), (3, "candidate")]
    assert [p["row"] for p in problems] == [1, 3]


def test_check_numbers_positive_and_empty_cells():
    s = pd.Series(["", "1", "0", "-2", "nan", "x"], dtype=object)
    got = dict(check_numbers(s, "peak", positive=True))
    assert set(got) == {2, 3, 5}
    assert "must be > 0" in got[2] and "non-numeric" in got[5]


def test_idle_power_above_busy_power_warns_naming_rows():
    # busy power = 0.05 J/item x 800 items/s = 40 W; row 1 idles at 60 W (issue 10, case 5)
    df = pd.DataFrame([_row(), _row(candidate="odd", idle_power_w=60.0), _row(idle_power_w=40.0),
                       _row(candidate="avg", avg_power_w=30.0, idle_power_w=35.0)])
    assert idle_above_busy_rows(df).tolist() == [1, 3]
    with pytest.warns(DataWarning) as rec:
        out = normalize_measurements(df)
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert "row 1 (odd on lab-cpu)" in msg and "row 3 (avg on lab-cpu)" in msg and "row 2" not in msg
    assert len(out) == 4  # kept, with the warning


def test_no_warning_for_consistent_rows():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalize_measurements(pd.DataFrame([_row(), _row(idle_power_w=40.0), _row(status="error",
                                                                                  idle_power_w=np.nan)]))


# ---- one scalar rule for arguments (issue 10, case 9) ----

@pytest.mark.parametrize("value, message", [("abc", "expected a number, got 'abc'"), (True, "expected a number"),
                                            (float("nan"), "finite"), (float("inf"), "finite"),
                                            (-1.0, "must be >= 0"), (10 ** 400, "too large")])
def test_number_rules(value, message):
    from effplan.records.schema import number
    with pytest.raises(ValidationError, match=message) as e:
        number("idle_power_w", value, lo=0)
    assert e.value.field == "idle_power_w"


def test_number_accepts_numeric_text_and_keeps_integers_exact():
    from effplan.records.schema import number
    assert number("x", " 2.5 ", lo=0) == 2.5
    assert number("n", 2 ** 53, integer=True) == 2 ** 53
    with pytest.raises(ValidationError, match="above 2\\*\\*53|too large"):
        number("n", 2 ** 53 + 1, integer=True)
    with pytest.raises(ValidationError, match="whole number"):
        number("n", 2.5, integer=True)


def _tiny():
    import torch
    from torch import nn

    from effplan.models.candidates import Candidate
    return Candidate("tiny", lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
                     lambda bs: torch.ones(bs, 4))


@pytest.mark.parametrize("kw, field", [(dict(idle_power_w="abc"), "idle_power_w"),
                                       (dict(idle_power_w=float("inf")), "idle_power_w"),
                                       (dict(energy_window_s="1s"), "energy_window_s"),
                                       (dict(idle_s=None), "idle_s")])
def test_measure_bad_argument_is_a_named_error(kw, field):
    from effplan.measurement import measure
    with pytest.raises(ValidationError) as e:  # was: ValueError/TypeError from float()/comparison
        measure(_tiny(), batch_sizes=(1,), device="cpu", progress=False, **kw)
    assert e.value.field == field


def test_sweep_without_energy_says_energy_was_not_measured():
    from effplan.measurement import measure
    from effplan.planning import InferenceWorkload, plan

    m = measure(_tiny(), batch_sizes=(2,), device="cpu", energy=False, time_budget_s=0.02, progress=False)
    with pytest.raises(ValidationError) as e:
        plan(m, inference=InferenceWorkload(requests_per_day=1000))
    assert e.value.field == "energy_per_item_j"
    assert "energy was not measured" in str(e.value) and "energy=True" in str(e.value)
