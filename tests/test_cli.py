"""The ``effplan`` command line, end to end on typed-in results."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from effplan import store
from effplan.cli import main


@pytest.fixture
def results(tmp_path):
    # One candidate measured (typed in) on an "L4": batch 8 at 20 ms p95, 400 items/s.
    df = pd.DataFrame({
        "candidate": ["small"], "hardware": ["L4"], "mode": ["inference"], "batch_size": [8],
        "latency_p95_ms": [20.0], "throughput_items_per_s": [400.0],
        "energy_per_item_j": [0.1], "idle_power_w": [20.0],
    })
    path = tmp_path / "typed.jsonl"
    store.save_frame(df, path)
    return path


def test_plan_command_writes_hand_checkable_budget(results, tmp_path, capsys):
    out = tmp_path / "plan"
    rc = main(["plan", str(results), "--requests-per-day", "2592000", "--months", "3",
               "--slo-p95-ms", "50", "--utilization", "0.5", "--out", str(out)])
    assert rc == 0
    # 2,592,000 requests/day = 30 items/s; capacity = 400 x 0.5 = 200 items/s -> 1 instance;
    # 3 months x 730 h x 1 instance = 2190 instance-hours.
    monthly = pd.read_csv(out / "monthly.csv")
    assert monthly["instances"].tolist() == [1, 1, 1]
    assert monthly["instance_hours"].sum() == pytest.approx(2190.0)
    inputs = json.loads((out / "inputs.json").read_text())
    assert inputs["inference"]["requests_per_day"] == 2592000
    assert "small" in capsys.readouterr().out


def test_bad_input_is_a_clear_error_not_a_traceback(results, capsys):
    rc = main(["plan", str(results), "--requests-per-day", "-5"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "requests_per_day" in err and "Traceback" not in err


def test_plan_command_daily_profile_autoscales(results, tmp_path, capsys):
    out = tmp_path / "plan"
    profile = ",".join(["1"] * 12 + ["3"] * 12)
    rc = main(["plan", str(results), "--requests-per-day", "25920000", "--months", "1",
               "--utilization", "0.5", "--daily-profile", profile, "--out", str(out)])
    assert rc == 0
    # 300 items/s on average: quiet hours 150/s -> 1 instance, busy hours 450/s -> ceil(2.25) = 3;
    # (12 x 1 + 12 x 3) / 24 x 730 = 1460 instance-hours (sized for the peak: 3 x 730 = 2190)
    monthly = pd.read_csv(out / "monthly.csv")
    assert monthly["instances"].tolist() == [3]
    assert monthly["instance_hours"].tolist() == pytest.approx([1460.0])
    rc = main(["plan", str(results), "--requests-per-day", "100", "--daily-profile", "1,2"])
    assert rc == 2 and "daily_profile" in capsys.readouterr().err


def test_catalog_command_lists_hardware(capsys):
    assert main(["catalog"]) == 0
    text = capsys.readouterr().out
    assert "H100" in text and "L4" in text


@pytest.mark.slow
def test_measure_command_appends_results(tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    rc = main(["measure", "--candidates", "digits-mlp-student", "--batch-sizes", "1",
               "--time-budget-s", "0.2", "--energy-window-s", "0.5", "--threads", "1",
               "--out", str(out), "--quiet"])
    assert rc == 0
    df = store.load(out)
    assert df["candidate"].tolist() == ["digits-mlp-student"]
    assert df["status"].tolist() == ["ok"]
    assert df["latency_p50_ms"].iloc[0] > 0


def test_measure_ctrl_c_ends_with_one_line_and_resume_is_passed(tmp_path, capsys, monkeypatch):
    import effplan.measurement as measure_mod

    out = tmp_path / "m.jsonl"
    seen = {}

    def interrupted(candidates, **kwargs):
        seen.update(kwargs)
        store.append(kwargs["results_path"], [{"candidate": "a", "hardware": "x", "mode": "inference",
                                               "batch_size": b} for b in (1, 8)])
        raise KeyboardInterrupt

    monkeypatch.setattr(measure_mod, "measure", interrupted)
    rc = main(["measure", "--candidates", "digits-mlp-student", "--out", str(out), "--resume", "--quiet"])
    assert rc == 130 and seen["resume"] is True
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"2 points saved to {out}; re-run with --resume"]


@pytest.mark.parametrize("flag", ["--training-items-per-epoch", "--training-items-per-run"])
def test_plan_command_training_items_per_epoch(tmp_path, flag, capsys):
    # training typed in on the L4: 500 items/s. 1.8e6 items per epoch x 2 epochs = 3.6e6 items
    # -> 7200 s = 2 device-hours per run, one run per quarter (--training-items-per-run: old name)
    df = pd.DataFrame({
        "candidate": ["small"] * 2, "hardware": ["L4"] * 2, "mode": ["inference", "training"],
        "batch_size": [8, 32], "latency_p95_ms": [20.0, 70.0],
        "throughput_items_per_s": [400.0, 500.0], "energy_per_item_j": [0.1, 0.144],
        "idle_power_w": [20.0, 20.0],
    })
    path = tmp_path / "typed.jsonl"
    store.save_frame(df, path)
    out = tmp_path / "plan"
    rc = main(["plan", str(path), "--requests-per-day", "2592000", "--months", "3",
               "--training-runs-per-quarter", "1", flag, "1.8e6", "--training-epochs", "2",
               "--out", str(out)])
    assert rc == 0
    training = pd.read_csv(out / "training.csv")
    assert training["items_per_epoch"].tolist() == [1.8e6]
    assert training["device_hours"].tolist() == pytest.approx([2.0])
    summary = pd.read_csv(out / "summary.csv")
    assert summary["total_cost_usd"].iloc[0] == pytest.approx(
        summary["cost_usd"].iloc[0] + summary["training_cost_usd"].iloc[0])
