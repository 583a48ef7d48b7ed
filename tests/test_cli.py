"""The ``effplan`` command line, end to end on typed-in results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from effplan.records import store
from effplan.cli import main
from effplan.errors import EffplanWarning


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
               "--slo-p95-ms", "400", "--utilization", "0.5", "--out", str(out)])
    assert rc == 0
    # 2,592,000 requests/day = 30 items/s: a batch of 8 takes 9.03 / 30 s = 301 ms to fill at p95,
    # + 20 ms service (+ a little queueing): the end-to-end target is 400 ms.
    # Capacity = 400 x 0.5 = 200 items/s -> 1 instance;
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
               "--utilization", "0.5", "--daily-profile", profile, "--out", str(out),
               "--peak-to-average", "1", "--growth", "0", "--slo-p95-ms", "0"])
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


# ------------------------------------------------------------------------------ output formats
def test_default_table_is_formatted_and_fits_the_width(results, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    rc = main(["plan", str(results), "--requests-per-day", "2592000", "--months", "3",
               "--slo-p95-ms", "0", "--utilization", "0.5"])
    assert rc == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert max(len(ln) for ln in lines[:-1]) <= 100
    # L4 catalog price x 2190 instance-hours, shown as money with 3 significant figures
    from effplan.refdata.catalog import find_hardware, load_catalog
    price = float(find_hardware("L4", load_catalog())["price_per_hour_usd"])
    from effplan.formatting import usd
    assert usd(2190 * price) in out
    assert "cost (horizon)" in out and "price from" in out
    assert "--format wide" in lines[-1]  # names what it left out


def test_csv_and_json_formats_are_machine_readable(results, capsys):
    import io

    rc = main(["plan", str(results), "--requests-per-day", "2592000", "--months", "3",
               "--utilization", "0.5", "--pue", "1.0", "--slo-p95-ms", "0", "--format", "csv"])
    assert rc == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df["instance_hours"].tolist() == pytest.approx([2190.0])
    assert "price_source" in df.columns and "energy_source" in df.columns
    rc = main(["plan", str(results), "--requests-per-day", "2592000", "--months", "3",
               "--utilization", "0.5", "--slo-p95-ms", "0", "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["candidate"] == "small" and rows[0]["instance_hours"] == pytest.approx(2190.0)


def test_plan_defaults_come_from_effplan_defaults(results, tmp_path, capsys):
    from effplan import defaults

    out = tmp_path / "plan"
    assert main(["plan", str(results), "--requests-per-day", "1000", "--out", str(out)]) == 0
    inputs = json.loads((out / "inputs.json").read_text())
    assert inputs["prices"]["pue"] == defaults.PUE == 1.2
    assert inputs["inference"]["target_utilization"] == defaults.TARGET_UTILIZATION == 0.6
    assert inputs["inference"]["peak_to_average"] == defaults.PEAK_TO_AVERAGE == 2.0


def test_plan_without_traffic_uses_demo_traffic_where_instances_exceed_one(results, capsys):
    # demo: the baseline (here the only candidate, 400 items/s at batch 8) sized at 4 instances:
    # first guess 4 x 400 x 0.6 / 2.0 x 86,400 = 41,472,000/day, refined with the planner (end-to-
    # end latency target): the lowest level 2^(1/4) apart that needs 4 instances
    assert main(["plan", str(results), "--format", "json", "--months", "1",
                 "--growth", "0", "--slo-p95-ms", "0"]) == 0
    cap = capsys.readouterr()
    assert "demo traffic" in cap.err
    rows = json.loads(cap.out)
    assert rows[0]["instances_max"] >= 4 and rows[0]["feasible"]


def test_catalog_prints_memory_bandwidth(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert "mem BW GB/s" in out and "3,350" in out  # H100 SXM: 3,350 GB/s
    assert main(["catalog", "--format", "csv"]) == 0
    import io
    cat = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert cat.loc[cat["name"] == "H100 SXM", "memory_bandwidth_gb_s"].item() == 3350


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
    assert rc == 130 and seen["resume"] == "unfinished"
    err = capsys.readouterr().err.strip().splitlines()
    # before it starts, a resumed sweep says how many stored points it will redo (none here)
    assert err == [f"resume (unfinished): {out} holds 0 point(s); 0 will be measured again (0 error "
                   "row(s), 0 provisional (stopped before their last timing pass)); points not in "
                   "the file yet are measured too", "",
                   f"2 points saved to {out}; re-run with --resume"]


# ---- named errors instead of tracebacks (issue 10, cases 6, 7 and 9) ----

@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"\x00\xff\xfe\x89PNG\x00", "not UTF-8"),
                                              (None, "cannot read catalog file")],
                         ids=["empty", "binary", "directory"])
def test_catalog_path_unreadable_is_a_named_error(tmp_path, capsys, content, message):
    p = tmp_path / "hw.csv"
    if content is None:
        p.mkdir()
    else:
        p.write_bytes(content)
    rc = main(["catalog", "--path", str(p)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "path:" in err and message in err and "Traceback" not in err


def test_plan_out_existing_file_is_a_named_error(results, tmp_path, capsys):
    out = tmp_path / "plan.csv"
    out.write_text("keep me\n")
    rc = main(["plan", str(results), "--requests-per-day", "1000", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--out" in err and "existing file" in err and "Traceback" not in err
    assert out.read_text() == "keep me\n"


def _with_bad_lines(results):
    with open(results, "ab") as fh:
        fh.write(b'{"candidate": "x", "latency_p95_ms": Infinity}\n' + b"[" * 50_000 + b"\n")
    return results


def test_plan_warns_loudly_when_records_are_skipped(results, tmp_path, capsys):
    _with_bad_lines(results)
    with pytest.warns(EffplanWarning, match=r"typed.jsonl:2: record: bad JSON: Infinity"):
        rc = main(["plan", str(results), "--requests-per-day", "2592000"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "WARNING: 2 bad record(s) were SKIPPED" in err and "--strict" in err


def test_plan_strict_exits_non_zero_when_records_are_skipped(results, capsys):
    _with_bad_lines(results)
    with pytest.warns(EffplanWarning):
        rc = main(["plan", str(results), "--requests-per-day", "2592000", "--strict"])
    err = capsys.readouterr().err
    assert rc == 3
    assert "2 bad record(s) skipped" in err and "typed.jsonl:2" in err and "Traceback" not in err


def test_plan_with_bom_file_keeps_first_row_and_exits_zero(tmp_path, capsys):
    path = tmp_path / "win.jsonl"
    rec = {"candidate": "small", "hardware": "L4", "mode": "inference", "batch_size": 8,
           "latency_p95_ms": 20.0, "throughput_items_per_s": 400.0, "energy_per_item_j": 0.1,
           "idle_power_w": 20.0, "schema_version": 1}
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(rec) + "\r\n").encode())
    rc = main(["plan", str(path), "--requests-per-day", "2592000", "--strict"])
    assert rc == 0 and "small" in capsys.readouterr().out


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
               "--slo-p95-ms", "0", "--out", str(out)])
    assert rc == 0
    training = pd.read_csv(out / "training.csv")
    assert training["items_per_epoch"].tolist() == [1.8e6]
    assert training["device_hours"].tolist() == pytest.approx([2.0])
    summary = pd.read_csv(out / "summary.csv")
    assert summary["total_cost_usd"].iloc[0] == pytest.approx(
        summary["cost_usd"].iloc[0] + summary["training_cost_usd"].iloc[0])


def test_table_format_starts_with_the_answer(tmp_path, capsys):
    # two candidates typed in on the L4; "big" is the baseline. 2,592,000 req/day = 30 items/s,
    # peak 60/s at the default peak-to-average 2: small (400/s x 0.6) 1 instance, big (40/s x 0.6)
    # 3 instances -> small saves 2 of 3 instance-quarters (67%)
    df = pd.DataFrame({
        "candidate": ["small", "big"], "hardware": ["L4", "L4"], "mode": ["inference"] * 2,
        "batch_size": [8, 8], "latency_p95_ms": [20.0, 40.0],
        "throughput_items_per_s": [400.0, 40.0], "energy_per_item_j": [0.1, 1.0],
        "idle_power_w": [20.0, 20.0], "tags": ["distilled", "baseline"],
    })
    path = tmp_path / "two.jsonl"
    store.save_frame(df, path)
    assert main(["plan", str(path), "--requests-per-day", "2592000", "--growth", "0",
                 "--slo-p95-ms", "0"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("Run small on L4: $") and "(67%) against the baseline big on L4" in first


def test_plan_unknown_hardware_target_says_did_you_mean(results, capsys):
    # "NVIDIA" once silently became the H100 SXM (issue 10, case 2)
    rc = main(["plan", str(results), "--requests-per-day", "1000", "--hardware", "l4x"])
    err = capsys.readouterr().err
    assert rc == 2 and "hardware: 'l4x'" in err and "did you mean 'L4'" in err and "Traceback" not in err


@pytest.fixture
def generation_results(tmp_path):
    # Typed in from a serving benchmark on an L4: concurrency 4 and 8 at a 512-token prompt.
    df = pd.DataFrame({
        "candidate": ["chat"] * 2, "hardware": ["L4"] * 2, "mode": ["generation"] * 2, "batch_size": [4, 8],
        "prompt_tokens": [512] * 2, "ttft_p50_ms": [100.0, 200.0], "ttft_p95_ms": [120.0, 240.0],
        "tpot_p50_ms": [20.0, 30.0], "tpot_p95_ms": [25.0, 40.0], "kv_cache_bytes_per_token": [1e5] * 2,
        "param_bytes": [2e9] * 2, "energy_per_prompt_token_j": [0.01] * 2,
        "energy_per_output_token_j": [0.2] * 2, "idle_power_w": [20.0] * 2,
    })
    path = tmp_path / "gen.jsonl"
    store.save_frame(df, path)
    return path


def test_plan_command_generation_workload(generation_results, tmp_path, capsys):
    out = tmp_path / "plan"
    rc = main(["plan", str(generation_results), "--requests-per-day", "86400", "--months", "1",
               "--prompt-tokens", "500", "--output-tokens", "100", "--slo-tpot-p95-ms", "30",
               "--utilization", "1.0", "--peak-to-average", "1", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    # TPOT p95 40 ms > 30 at c = 8; between 4 and 8 the concurrencies 5, 6, 7 are interpolated
    # log-log (effplan.batching): at 5, x = log2(5/4), TPOT p95 = 25 x 1.6^x = 29.08 ms <= 30, at 6
    # 25 x 1.6^log2(1.5) = 32.91 > 30 -> c = 5 (before interpolation: the measured c = 4);
    # TTFT p50 = 100 x 2^x = 125 ms, TPOT p50 = 20 x 1.5^x = 22.789 ms,
    # rate = 5 / ((125 + 100 x 22.789) / 1000) = 2.080 req/s;
    # 86,400/day = 1 req/s -> 1 instance, 730 instance-hours at the L4's catalog price
    monthly = pd.read_csv(out / "monthly.csv")
    assert monthly["concurrency"].tolist() == [5] and monthly["binding_constraint"].tolist() == ["tpot"]
    assert monthly["concurrency_source"].tolist() == ["interpolated"]
    x = math.log2(5 / 4)
    assert monthly["tpot_p95_ms"].iloc[0] == pytest.approx(25 * 1.6 ** x)
    assert monthly["instances"].tolist() == [1]
    assert monthly["requests_per_s_per_instance"].iloc[0] == pytest.approx(5 / ((125 + 100 * 20 * 1.5 ** x) / 1000))
    assert json.loads((out / "inputs.json").read_text())["generation"]["prompt_tokens"] == 500
    assert "chat" in capsys.readouterr().out
    rc = main(["plan", str(generation_results), "--requests-per-day", "10", "--prompt-tokens", "500"])
    assert rc == 2 and "--output-tokens" in capsys.readouterr().err


@pytest.mark.slow
def test_measure_command_generation(tmp_path, capsys):
    out = tmp_path / "g.jsonl"
    rc = main(["measure", "--mode", "generation", "--candidates", "decoder-slim", "--batch-sizes", "2",
               "--prompt-tokens", "16", "--output-tokens", "4", "--time-budget-s", "0.1",
               "--energy-window-s", "0.1", "--threads", "1", "--out", str(out), "--quiet"])
    assert rc == 0
    df = store.load(out)
    assert df["candidate"].tolist() == ["decoder-slim"] and df["status"].tolist() == ["ok"]
    assert df["tpot_p50_ms"].iloc[0] > 0 and df["prompt_tokens"].iloc[0] == 16
    assert main(["measure", "--family", "decoder", "--mode", "inference"]) == 2


def test_measure_command_generation_resume_is_passed_on_not_refused(tmp_path, monkeypatch, capsys):
    import effplan.measurement as measurement

    seen = {}

    def fake_measure(candidates, **kw):
        seen.update(kw)
        return measurement.Measurements(rows=())

    monkeypatch.setattr(measurement, "measure", fake_measure)
    import effplan.decoders as decoders
    from effplan.generation import GenerationCandidate

    monkeypatch.setattr(decoders, "decoder_candidates",  # no training: only the CLI is under test
                        lambda seed=0: [GenerationCandidate("decoder-slim", lambda: None, vocab_size=8)])
    out = tmp_path / "g.jsonl"
    rc = main(["measure", "--mode", "generation", "--candidates", "decoder-slim", "--batch-sizes", "2",
               "--prompt-tokens", "16", "--output-tokens", "4", "--out", str(out), "--resume", "--quiet"])
    assert rc == 0
    assert seen["resume"] == "unfinished" and seen["mode"] == "generation" and str(seen["results_path"]) == str(out)


def test_actuals_command_prints_the_variance_and_names_a_missing_fx(tmp_path, capsys):
    from effplan import focus_samples as fs

    paths = fs.write_sample(tmp_path / "s", months=2)
    rc = main(["actuals", str(paths["plan"]), str(paths["focus_usd"]), str(paths["focus_eur"]),
               "--fx", "EUR=1.08", "--start", "2026-10", "--reforecast", "--samples", "20",
               "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Per option and month" in out and "2026-10" in out and "digits-mlp-student" in out
    assert "Re-forecast per quarter" in out and "2027-Q1" in out
    v = pd.read_csv(tmp_path / "out" / "variance.csv")
    assert len(v) == 6 and (tmp_path / "out" / "reforecast" / "monthly.csv").is_file()
    rc = main(["actuals", str(paths["plan"]), str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and "EUR" in err and "--fx EUR=RATE" in err


def test_plan_command_writes_a_start_month(results, tmp_path):
    import effplan

    rc = main(["plan", str(results), "--requests-per-day", "1e6", "--months", "3",
               "--start", "2026-10", "--out", str(tmp_path / "plan")])
    assert rc == 0
    p = effplan.Plan.from_csv(tmp_path / "plan")
    assert p.inputs["start"] == "2026-10"
    assert p.monthly["month_label"].tolist()[:3] == ["2026-10", "2026-11", "2026-12"]


@pytest.fixture
def busy_results(tmp_path):
    """The demo's baseline typed in as timed on a busy machine (stable=False, 1.6 cores of other
    work, rounds 12% apart), on a CPU that is not in the catalog, with FLOPs to project it."""
    df = pd.DataFrame({
        "candidate": ["base", "base"], "hardware": ["lab-cpu"] * 2, "mode": ["inference"] * 2,
        "batch_size": [1, 8], "latency_p95_ms": [2.0, 6.0], "latency_p50_ms": [1.5, 5.0],
        "throughput_items_per_s": [600.0, 1600.0], "energy_per_item_j": [0.01, 0.005],
        "idle_power_w": [20.0] * 2, "flops_per_item": [2e8] * 2, "bytes_per_item": [1e6] * 2,
        "dtype": ["float32"] * 2, "tags": ["baseline"] * 2, "stable": [False] * 2,
        "stop_reason": ["unstable"] * 2, "timing_note": ["contended"] * 2,
        "background_load": [1.6, 1.6], "latency_round_spread_rel": [0.12, 0.12],
        "latency_ci_rel": [0.03, 0.03],
    })
    path = tmp_path / "busy.jsonl"
    store.save_frame(df, path)
    return path


STATEMENT = ("Timings were taken on a busy machine (background load 1.6 cores); the cost could be "
             "12% off.")


def test_plan_with_unstable_rows_gives_a_flagged_answer_on_every_hardware(busy_results, capsys,
                                                                          monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.warns(EffplanWarning, match="NOT stable"):
        rc = main(["plan", str(busy_results), "--hardware", "L4", "H100 SXM"])
    assert rc == 0
    out = capsys.readouterr().out
    answer, _, rest = out.partition("\n\n")
    first = " ".join(answer.split("Assumes ")[0].split())   # the sentence, unwrapped
    # the only candidate is the baseline: nothing is cheaper, so it is kept
    assert first.startswith("Keep the baseline base on ") and first.endswith(STATEMENT) and "$" in first
    table = [ln.split() for ln in rest.splitlines() if ln.split()[:1] == ["base"]]
    assert sorted(r[1] for r in table) == ["H100", "L4", "lab-cpu"]   # never only the CPU rows
    assert all(r[2 if r[1] == "L4" else 3].startswith("$") for r in table if r[1] != "lab-cpu")
    assert "FLAGGED: 3 of 3 option(s) are planned from timings that are NOT stable." in out
    assert "base @ L4 ±12%" in out and "base @ H100 SXM ±12%" in out


def test_strict_stability_names_the_real_cause(busy_results, capsys):
    with pytest.warns(EffplanWarning):
        rc = main(["plan", str(busy_results), "--hardware", "L4", "--strict-stability"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "whose inference rows are all refused: measurement not stable (unstable: contended)" in err
    assert "meets the latency target" not in err
    with pytest.warns(EffplanWarning):
        rc = main(["plan", str(busy_results), "--hardware", "L4", "--strict-stability",
                   "--requests-per-day", "1e8", "--format", "csv"])
    assert rc == 0
    df = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    s = df.set_index("hardware")
    assert sorted(s.index) == ["L4", "lab-cpu"] and not s["feasible"].any()  # L4 listed, not dropped
    assert s.loc["L4", "infeasible_reason"].startswith("not projected from lab-cpu: measurement not "
                                                       "stable (unstable: contended)")


def test_measure_point_timeout_is_passed_and_ctrl_c_counts_unfinished_points(tmp_path, capsys, monkeypatch):
    import effplan.measurement as measure_mod

    out = tmp_path / "m.jsonl"
    store.append(out, [{"candidate": "old", "hardware": "x", "mode": "inference", "batch_size": 1}])
    seen = {}

    def interrupted(candidates, **kwargs):
        seen.update(kwargs)
        # pass 1 of bs 1 and 8 on disk (provisional), then pass 2 of bs 1, then Ctrl-C
        rec = {"candidate": "a", "hardware": "x", "mode": "inference"}
        store.append(kwargs["results_path"], [dict(rec, batch_size=1, provisional=True),
                                              dict(rec, batch_size=8, provisional=True),
                                              dict(rec, batch_size=1, provisional=False)])
        raise KeyboardInterrupt

    monkeypatch.setattr(measure_mod, "measure", interrupted)
    rc = main(["measure", "--candidates", "digits-mlp", "--out", str(out), "--point-timeout-s", "30",
               "--quiet"])
    assert rc == 130 and seen["point_timeout_s"] == 30.0 and seen["resume"] is False
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"2 points saved to {out} (1 of them provisional: stopped before their last timing "
                   "pass); re-run with --resume"]
    import effplan.decoders as decoders
    from effplan.generation import GenerationCandidate

    monkeypatch.setattr(decoders, "decoder_candidates",  # no training: only the CLI is under test
                        lambda seed=0: [GenerationCandidate("decoder-slim", lambda: None, vocab_size=8)])
    rc = main(["measure", "--mode", "generation", "--family", "decoder", "--out", str(out), "--quiet"])
    assert rc == 130 and seen["point_timeout_s"] is None and seen["mode"] == "generation"


# ---- loud failure, resume modes, your own candidates (issue 29) ----
def _fake_measure(rows):
    import effplan.measurement as measure_mod

    def fake(candidates, **kwargs):
        fake.seen = (candidates, kwargs)
        return measure_mod.Measurements(rows=tuple(rows))

    return fake


def _rows(statuses):
    return [{"candidate": f"c{i}", "batch_size": 1, "status": s, "mode": "inference",
             "error": "" if s == "ok" else f"RuntimeError: boom {i}"} for i, s in enumerate(statuses)]


@pytest.mark.parametrize("statuses, share, rc", [
    (["error"] * 3, 0.5, 4),            # every point failed: always non-zero
    (["error"] * 3, 1.0, 4),
    (["ok", "error", "error"], 0.5, 4),  # 2 of 3 > 50%
    (["ok", "ok", "error"], 0.5, 0),     # 1 of 3 <= 50%
    (["ok", "error", "error"], 0.7, 0),  # the share is the user's
    (["ok"], 0.5, 0)])
def test_measure_exits_4_with_one_line_when_too_many_points_failed(tmp_path, capsys, monkeypatch,
                                                                   statuses, share, rc):
    import effplan.measurement as measure_mod

    monkeypatch.setattr(measure_mod, "measure", _fake_measure(_rows(statuses)))
    got = main(["measure", "--candidates", "digits-mlp-student", "--out", str(tmp_path / "m.jsonl"),
                "--quiet", "--max-failed-share", str(share)])
    err = capsys.readouterr().err
    assert got == rc
    if rc:
        failed = statuses.count("error")
        assert (f"effplan measure: FAILED: {failed} of {len(statuses)} points failed (more than "
                f"{share:.0%} allowed, --max-failed-share); first: c1" in err
                or f"first: c0 bs=1: RuntimeError: boom 0" in err)
    else:
        assert "FAILED" not in err


def test_measure_resume_modes_say_how_many_points_they_redo(tmp_path, capsys, monkeypatch):
    import effplan.measurement as measure_mod

    out = tmp_path / "m.jsonl"
    base = dict(hardware="x", hardware_id="h", mode="inference", status="ok", latency_p50_ms=1.0)
    store.append(out, [dict(base, candidate="a", batch_size=1, stable=True),
                       dict(base, candidate="a", batch_size=2, stable=False),
                       dict(base, candidate="a", batch_size=4, stable=False),
                       dict(base, candidate="a", batch_size=8, status="error", error="boom"),
                       dict(base, candidate="a", batch_size=16, stable=False, provisional=True)])
    fake = _fake_measure(_rows(["ok"]))
    monkeypatch.setattr(measure_mod, "measure", fake)
    assert main(["measure", "--candidates", "digits-mlp-student", "--out", str(out), "--resume",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert fake.seen[1]["resume"] == "unfinished"
    assert (f"resume (unfinished): {out} holds 5 point(s); 2 will be measured again (1 error row(s), "
            "1 provisional (stopped before their last timing pass)); 2 finished but not stable are "
            "kept (--resume unstable re-measures them)") in err
    assert main(["measure", "--candidates", "digits-mlp-student", "--out", str(out), "--resume",
                 "unstable", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert fake.seen[1]["resume"] == "unstable"
    assert f"resume (unstable): {out} holds 5 point(s); 4 will be measured again (1 error row(s), " in err


def test_measure_candidates_from_a_file(tmp_path, capsys, monkeypatch):
    import effplan.measurement as measure_mod

    spec = f"{Path(__file__).resolve().parent / 'fleet_candidates.py'}:CANDIDATES"
    fake = _fake_measure(_rows(["ok"]))
    monkeypatch.setattr(measure_mod, "measure", fake)
    assert main(["measure", "--candidates-from", spec, "--out", str(tmp_path / "m.jsonl"), "--quiet"]) == 0
    assert [c.name for c in fake.seen[0]] == ["tiny-linear", "tiny-mlp"]  # resolved here
    assert main(["measure", "--candidates-from", spec, "--ray", "auto", "--working-dir", str(tmp_path),
                 "--out", str(tmp_path / "m.jsonl"), "--quiet"]) == 0
    cands, kw = fake.seen
    assert cands == [spec]  # on a fleet each node resolves the path itself
    assert kw["executor"] == "ray" and kw["fleet"].runtime_env == {"working_dir": str(tmp_path)}
    assert main(["measure", "--candidates-from", spec, "--slurm", "--partition", "gpu",
                 "--gpus-per-task", "1", "--out", str(tmp_path / "m.jsonl"), "--quiet"]) == 0
    cands, kw = fake.seen
    assert kw["executor"] == "slurm" and kw["fleet"].partition == "gpu" and kw["fleet"].gpus_per_task == 1
    assert main(["measure", "--slurm", "--ray", "--out", str(tmp_path / "m.jsonl"), "--quiet"]) == 2
    assert "choose one executor" in capsys.readouterr().err
