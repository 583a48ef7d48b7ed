"""Calendar start months on workloads: month and quarter labels, validated; absent without one."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest

from effplan import defaults
from effplan.errors import ValidationError
from planning_data import PRICES, meas, wl  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")
C = importlib.import_module("effplan.planning.calendar")


def test_labels_follow_the_start_month():
    p = P.plan(meas(), wl(months=5, start="2026-10"), prices=PRICES)
    m = p.monthly
    assert m["month_label"].tolist() == ["2026-10", "2026-11", "2026-12", "2027-01", "2027-02"]
    assert m["calendar_quarter"].tolist() == ["2026-Q4"] * 3 + ["2027-Q1"] * 2
    assert p.quarterly["quarter_label"].tolist() == ["2026-Q4", "2027-Q1"]
    assert p.inputs["start"] == "2026-10" and p.inputs["inference"]["start"] == "2026-10"


def test_a_start_inside_a_quarter_labels_the_block_by_its_months():
    p = P.plan(meas(), wl(months=4, start="2026-11"), prices=PRICES)
    assert p.quarterly["quarter_label"].tolist() == ["2026-11..2027-01", "2027-02..2027-04"]
    assert p.monthly["calendar_quarter"].tolist() == ["2026-Q4", "2026-Q4", "2027-Q1", "2027-Q1"]


def test_without_a_start_the_frames_are_unchanged():
    p = P.plan(meas(), wl(), prices=PRICES)
    assert list(p.monthly.columns) == list(P.MONTHLY_COLUMNS)
    assert list(p.quarterly.columns) == list(P.QUARTERLY_COLUMNS)
    assert "start" not in p.inputs and p.inputs["inference"]["start"] is None


@pytest.mark.parametrize("bad", ["2026-13", "2026/10", "Oct 2026", 202610, "0999-01"])
def test_a_bad_start_is_named(bad):
    with pytest.raises(ValidationError, match="start"):
        wl(start=bad)
    with pytest.raises(ValidationError, match="start"):
        P.GenerationWorkload(requests_per_day=1, prompt_tokens=1, output_tokens=1, start=bad)


def test_start_forms_and_workloads_that_must_agree():
    assert wl(start="2026-1").start == "2026-01"
    assert wl(start=dt.date(2026, 10, 17)).start == "2026-10"
    assert P.TrainingWorkload(1, 100, start="2027-01").start == "2027-01"
    with pytest.raises(ValidationError, match="one start month"):
        P.plan(meas(), wl(start="2026-10"), P.TrainingWorkload(1, 100, start="2026-11"),
               prices=PRICES)
    assert P.InferenceWorkload.from_dict(wl(start="2026-10").to_dict()).start == "2026-10"


def test_default_start_is_the_month_after_today():
    assert defaults.start_month(dt.date(2026, 12, 31)) == "2027-01"
    assert defaults.start_month(dt.date(2026, 3, 1)) == "2026-04"
    assert C.parse_month(defaults.start_month()) == defaults.start_month()


def test_plan_reads_back_from_its_folder(tmp_path):
    p = P.plan(meas(), wl(months=3, start="2026-10"), prices=PRICES)
    p.to_csv(tmp_path)
    q = P.Plan.from_csv(tmp_path)
    assert q.inputs == p.inputs
    assert q.monthly["month_label"].tolist() == p.monthly["month_label"].tolist()
    assert q.monthly["cost_usd"].tolist() == p.monthly["cost_usd"].tolist()
    assert q.summary["infeasible_reason"].tolist() == [""]
    with pytest.raises(ValidationError, match="monthly.csv"):
        (tmp_path / "monthly.csv").unlink()
        P.Plan.from_csv(tmp_path)
