"""JSON Lines results store: round trip, interrupted sweeps, merging machines, bad records."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from effplan.records import store
from effplan.errors import EffplanWarning, ValidationError
from effplan.records.schema import MEASUREMENT_COLUMNS, SCHEMA_VERSION, normalize_measurements


def _row(candidate="mlp", batch_size=8, hardware_id="hw-a", **extra):
    row = dict(candidate=candidate, hardware="AMD EPYC 7763", hardware_id=hardware_id, mode="inference",
               batch_size=batch_size, device="cpu", dtype="float32", threads=2, latency_p50_ms=1.25,
               latency_p95_ms=1.75, throughput_items_per_s=6400.0, energy_per_item_j=0.0125,
               idle_power_w=4.5, energy_source="rapl", provenance="measured", quality=np.nan,
               params=1234, status="ok")
    row.update(extra)
    return row


def test_round_trip_values_and_dtypes(tmp_path):
    df = normalize_measurements(pd.DataFrame([
        _row("a", 1), _row("b", 64, mode="training", quality=0.93, energy_source="estimated-tdp",
                           provenance="estimated", tags="small,fast"),
    ]))
    path = store.save_frame(df, tmp_path / "results.jsonl")
    back = store.load(path)
    assert list(back.columns) == list(MEASUREMENT_COLUMNS) + ["source_file"]
    assert (back["source_file"] == str(path)).all()
    pd.testing.assert_frame_equal(back.drop(columns="source_file"), df)
    assert back["batch_size"].tolist() == [1, 64]
    assert back["batch_size"].dtype == np.int64
    assert back["latency_p95_ms"].tolist() == [1.75, 1.75]
    assert np.isnan(back["quality"].iloc[0]) and back["quality"].iloc[1] == 0.93
    assert back.attrs["errors"] == []


def test_nan_written_as_null_and_every_record_versioned(tmp_path):
    path = tmp_path / "r.jsonl"
    store.append(path, [_row("a"), _row("b", energy_per_item_j=np.float64(0.5))])
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    recs = [json.loads(line) for line in lines]
    assert all(r["schema_version"] == SCHEMA_VERSION for r in recs)
    assert recs[0]["quality"] is None and "NaN" not in path.read_text()
    assert recs[1]["energy_per_item_j"] == 0.5


def test_append_adds_hardware_identity(tmp_path):
    path = tmp_path / "r.jsonl"
    hw = {"name": "NVIDIA H100 80GB HBM3", "hardware_id": "0123456789ab", "torch_version": "2.13.0",
          "host_hash": "feedbeef0000", "cpu_model": "AMD EPYC", "gpu_models": ["NVIDIA H100 80GB HBM3"],
          "gpu_count": 1, "driver_version": "550.54", "cuda_version": "12.4", "os": "Linux"}
    row = _row(hardware="", hardware_id="")
    assert store.append(path, pd.DataFrame([row]), hardware=hw) == 1
    rec = json.loads(path.read_text())
    assert rec["hardware"] == "NVIDIA H100 80GB HBM3"
    assert rec["hardware_id"] == "0123456789ab"
    assert rec["hw_host_hash"] == "feedbeef0000"
    assert rec["hw_gpu_models"] == ["NVIDIA H100 80GB HBM3"]
    back = store.load(path)
    assert back.loc[0, "hardware_id"] == "0123456789ab"
    assert back.loc[0, "hw_driver_version"] == "550.54"


def test_rows_appended_before_a_crash_survive(tmp_path):
    path = tmp_path / "sweep.jsonl"
    script = (
        "import os, sys\n"
        "from effplan import store\n"
        f"row = {_row(quality=None)!r}\n"
        "for bs in (1, 2, 4):\n"
        f"    row['batch_size'] = bs; store.append({str(path)!r}, row)\n"
        "os._exit(3)  # dies without any cleanup, as a killed kernel would\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(store.__file__).parents[1],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    back = store.load(path)
    assert back["batch_size"].tolist() == [1, 2, 4]


def test_truncated_last_line_is_reported_not_fatal_and_append_continues(tmp_path):
    path = tmp_path / "sweep.jsonl"
    store.append(path, _row(batch_size=1))
    store.append(path, _row(batch_size=2))
    with open(path, "a", encoding="utf-8") as fh:  # a write cut off mid-record
        fh.write('{"candidate": "mlp", "hardware": "AMD EP')
    with pytest.warns(EffplanWarning, match=r"sweep\.jsonl:3: record: bad JSON.*truncated"):
        back = store.load(path)
    assert back["batch_size"].tolist() == [1, 2]
    # the next append starts on a fresh line, so it is not glued onto the fragment
    store.append(path, _row(batch_size=4))
    with pytest.warns(EffplanWarning) as rec:
        back = store.load(path)
    assert len(rec) == 1
    assert back["batch_size"].tolist() == [1, 2, 4]
    assert [(e["line"], e["field"]) for e in back.attrs["errors"]] == [(3, "record")]


def test_merge_two_machines(tmp_path):
    a, b = tmp_path / "a" / "results.jsonl", tmp_path / "b" / "results.jsonl"
    store.append(a, [_row("mlp", 8, hardware_id="aaaa"), _row("cnn", 8, hardware_id="aaaa")])
    store.append(b, pd.DataFrame([_row("mlp", 8, hardware_id="bbbb", hardware="NVIDIA H100 80GB HBM3",
                                       device="cuda:0", energy_source="nvml-counter")]))
    merged = store.load(str(tmp_path / "*" / "results.jsonl"))
    assert len(merged) == 3
    assert merged.groupby("hardware_id").size().to_dict() == {"aaaa": 2, "bbbb": 1}
    assert sorted(set(merged["source_file"])) == [str(a), str(b)]
    assert merged.loc[merged.hardware_id == "bbbb", "energy_source"].item() == "nvml-counter"
    # a folder loads every *.jsonl inside it; the same file given twice is read once
    assert len(store.load([tmp_path / "a", a])) == 2


BAD_RECORDS = [
    ("{not json", "record", "bad JSON"),
    ("[1, 2, 3]", "record", "expected a JSON object, got list"),
    (json.dumps({k: v for k, v in _row().items() if k != "schema_version"} | {"quality": None}),
     "schema_version", "missing"),
    (json.dumps(_row(schema_version=2, quality=None)), "schema_version", "is 2"),
    (json.dumps(_row(batch_size="big", schema_version=1, quality=None)), "batch_size", "non-numeric value 'big'"),
    (json.dumps(_row(latency_p95_ms=-3.0, schema_version=1, quality=None)), "latency_p95_ms", "negative"),
    (json.dumps(_row(mode="serving", schema_version=1, quality=None)), "mode", "'serving' is not one of"),
    (json.dumps(_row(candidate=None, schema_version=1, quality=None)), "candidate", "missing value"),
    (json.dumps(_row(energy_source="guess", schema_version=1, quality=None)), "energy_source", "not one of"),
]


@pytest.mark.parametrize("line,field,message", BAD_RECORDS, ids=[b[1] + "-" + b[2][:12] for b in BAD_RECORDS])
def test_bad_record_names_file_and_line(tmp_path, line, field, message):
    path = tmp_path / "r.jsonl"
    store.append(path, _row(batch_size=1))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    store.append(path, _row(batch_size=3))

    with pytest.raises(ValidationError) as err:
        store.load(path, on_error="raise")
    assert err.value.where == f"{path}:2"
    assert err.value.field == field
    assert message in str(err.value)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = store.load(path)
    effplan_warnings = [w for w in caught if issubclass(w.category, EffplanWarning)]
    assert len(effplan_warnings) == 1
    assert f"{path}:2: {field}" in str(effplan_warnings[0].message)
    assert back["batch_size"].tolist() == [1, 3]
    assert back.attrs["errors"] == [{"file": str(path), "line": 2, "field": field,
                                     "message": back.attrs["errors"][0]["message"]}]
    assert message in back.attrs["errors"][0]["message"]


def test_one_warning_lists_every_bad_line_across_files(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps(_row(schema_version=1, quality=None)) + "\n{oops\n")
    b.write_text("42\n" + json.dumps(_row(mode="x", schema_version=1, quality=None)) + "\n")
    with pytest.warns(EffplanWarning) as rec:
        back = store.load([a, b])
    assert len(rec) == 1
    text = str(rec[0].message)
    for where in (f"{a}:2", f"{b}:1", f"{b}:2"):
        assert where in text
    assert len(back) == 1
    assert [(e["file"], e["line"]) for e in back.attrs["errors"]] == [(str(a), 2), (str(b), 1), (str(b), 2)]


def test_append_validates_and_writes_nothing_on_error(tmp_path):
    path = tmp_path / "r.jsonl"
    with pytest.raises(ValidationError, match="batch_size") as err:
        store.append(path, [_row(batch_size=1), _row(batch_size=-2)])
    assert err.value.where.endswith("row 1")
    assert not path.exists()
    with pytest.raises(ValidationError, match="latency_p95_ms: infinite"):
        store.append(path, _row(latency_p95_ms=float("inf")))
    with pytest.raises(ValidationError, match="schema_version"):
        store.append(path, _row(schema_version=99))


def test_load_errors(tmp_path):
    with pytest.raises(ValidationError, match="no results file matches"):
        store.load(tmp_path / "missing-*.jsonl")
    with pytest.raises(ValidationError, match="on_error"):
        store.load([], on_error="ignore")
    empty = store.load([])
    assert list(empty.columns) == list(MEASUREMENT_COLUMNS) + ["source_file"] and len(empty) == 0


def test_save_frame_of_typed_rows_marks_them_entered(tmp_path):
    typed = pd.DataFrame({"candidate": ["vendor-model"], "hardware": ["NVIDIA L4"], "mode": ["inference"],
                          "batch_size": [1], "latency_p95_ms": [12.0], "throughput_items_per_s": [80.0],
                          "energy_per_item_j": [0.9], "idle_power_w": [16.0]})
    path = store.save_frame(typed, tmp_path / "typed.jsonl")
    back = store.load(path)
    assert back.loc[0, "provenance"] == "entered" and back.loc[0, "energy_source"] == "entered"
    assert back.loc[0, "energy_per_item_j"] == 0.9
    # overwriting is atomic: no temp files are left behind
    store.save_frame(typed, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["typed.jsonl"]


# ----------------------------------------------------------------------------- issue 9
def _pt(candidate="mlp", batch_size=8, host="host-a", p50=1.0, ci=0.01, ts="2026-01-01T00:00:00+00:00",
        **extra):
    return _row(candidate, batch_size, hardware_id=f"id-{host}", hw_host_hash=host, latency_p50_ms=p50,
                latency_ci_rel=ci, timestamp=ts, **extra)


def test_point_key_is_candidate_host_hardware_mode_dtype_batch():
    assert store.point_key(_pt()) == ("mlp", "host-a", "AMD EPYC 7763", "inference", "float32", 8)
    no_host = {k: v for k, v in _pt().items() if k != "hw_host_hash"}
    assert store.point_key(no_host)[1] == "id-host-a"  # hardware_id stands in for the host


def test_completed_points_are_ok_and_stable_only(tmp_path):
    path = tmp_path / "r.jsonl"
    assert store.completed_points(path) == set()  # no file yet
    store.append(path, [_pt(batch_size=1, stable=True), _pt(batch_size=2, stable=False),
                        _pt(batch_size=4, stable=True, status="error", error="boom"),
                        _pt(batch_size=8)])  # stability unknown (older effplan)
    assert store.completed_points(path) == {("mlp", "host-a", "AMD EPYC 7763", "inference", "float32", 1)}


def test_duplicates_keep_the_newest_and_warn_with_the_count(tmp_path):
    path = tmp_path / "r.jsonl"
    store.append(path, [_pt(p50=1.00, ts="2026-01-02T00:00:00+00:00"),
                        _pt(p50=1.01, ts="2026-01-01T00:00:00+00:00"),  # older, written later
                        _pt(p50=1.005, ts="2026-01-01T12:00:00+00:00"),
                        _pt(batch_size=1)])
    with pytest.warns(EffplanWarning, match=r"2 duplicate measured point\(s\).*newest of each is kept \(2 rows\)") as rec:
        df = store.load(path)
    assert not any("CONFLICTING" in str(w.message) for w in rec)  # within +-1% of each other
    assert sorted(df["batch_size"]) == [1, 8]
    assert df.loc[df.batch_size == 8, "latency_p50_ms"].item() == 1.00
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(store.load(path, duplicates="all")) == 4


def test_duplicates_that_disagree_warn_louder(tmp_path):
    path = tmp_path / "r.jsonl"
    # 333 vs 338,988 items/s for the same point: 48 ms vs 0.047 ms, each +-1%
    store.append(path, [_pt(p50=48.0, ts="2026-01-01T00:00:00+00:00"),
                        _pt(p50=0.047, ts="2026-01-02T00:00:00+00:00")])
    with pytest.warns(EffplanWarning, match=r"CONFLICTING duplicates: 1 of the 1 .*48 ms vs kept 0.047 ms"):
        df = store.load(path)
    assert df["latency_p50_ms"].tolist() == [0.047]


def test_two_hosts_with_the_same_hardware_name_are_both_kept(tmp_path):
    path = tmp_path / "r.jsonl"
    store.append(path, [_pt(host="host-a", p50=1.0), _pt(host="host-b", p50=10.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not duplicates: no warning
        df = store.load(path)
    assert sorted(df["latency_p50_ms"]) == [1.0, 10.0]
    assert set(df["hardware"]) == {"AMD EPYC 7763"}


def test_raw_samples_round_trip_beside_the_results(tmp_path):
    from effplan.records.samples import Timing

    path = tmp_path / "r.jsonl"
    t = Timing(sample_times_s=(1e-3, 2e-3, 1.5e-3), calls_per_sample=2, stop_reason="time-budget",
               elapsed_s=0.0045, warmup_s=0.001, warmup_calls=3, sample_rounds=(0, 1, 1), load_before=0.5,
               load_rounds=(0.25, 0.75))
    rec = _pt()
    assert store.append_samples(path, [{**rec, **t.to_record()}]) == 1
    assert store.samples_path(path).name == "r.jsonl.samples"
    back = store.load_samples(path)
    assert back == {(store.point_key(rec), rec["timestamp"]): t}
    assert back[(store.point_key(rec), rec["timestamp"])].percentile_ms(50) == pytest.approx(0.75)


def test_results_path_checked_before_a_sweep(tmp_path):
    with pytest.raises(ValidationError) as info:
        store.check_results_path(tmp_path)
    assert info.value.field == "results_path" and "folder" in str(info.value)
    (tmp_path / "f").write_text("")
    with pytest.raises(ValidationError) as info:
        store.check_results_path(tmp_path / "f" / "r.jsonl")
    assert info.value.field == "results_path"
    ok = store.check_results_path(tmp_path / "new" / "r.jsonl")
    assert ok.parent.is_dir()


def test_legacy_memory_source_column_is_read_under_its_new_name(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({**{k: v for k, v in _row().items() if k != "quality"},
                                "memory_source": "process-peak-rss", "schema_version": SCHEMA_VERSION}) + "\n")
    df = store.load(path)
    assert df["peak_memory_source"].tolist() == ["process-peak-rss"] and "memory_source" not in df


def test_legacy_peak_memory_mb_is_read_as_mib(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({**{k: v for k, v in _row().items() if k != "quality"},
                                "peak_memory_mb": 12.5, "schema_version": SCHEMA_VERSION}) + "\n")
    df = store.load(path)
    assert df["peak_memory_mib"].tolist() == [12.5] and "peak_memory_mb" not in df


# --------------------------------------------------------------------------------------------
# Hostile lines (issue 10, cases 4, 6, 7 and 10): each is skipped with file:line and a reason,
# and the good rows around it still load.
# --------------------------------------------------------------------------------------------

def _good_line(batch_size):
    return json.dumps(_row(batch_size=batch_size, schema_version=SCHEMA_VERSION, quality=None))


HOSTILE_LINES = [
    ("deep-nesting", ("[" * 100_000 + "]" * 100_000).encode(), "nested deeper than"),
    ("deep-object", ('{"a":' * 5000 + "1" + "}" * 5000).encode(), "nested deeper than"),
    ("400-digit-batch", _good_line(1).replace('"batch_size": 1', '"batch_size": ' + "9" * 400).encode(),
     "batch_size: too large to be a number"),
    ("5000-digit-int", _good_line(1).replace('"batch_size": 1', '"batch_size": ' + "9" * 5000).encode(),
     "bad JSON"),
    ("float-overflow", _good_line(1).replace('"latency_p95_ms": 1.75', '"latency_p95_ms": 1e400').encode(),
     "out of range"),
    ("json-infinity", _good_line(1).replace('"latency_p95_ms": 1.75', '"latency_p95_ms": Infinity').encode(),
     "Infinity is not valid JSON"),
    ("json-neg-infinity", _good_line(1).replace('"energy_per_item_j": 0.0125',
                                                '"energy_per_item_j": -Infinity').encode(),
     "-Infinity is not valid JSON"),
    ("json-nan", _good_line(1).replace('"latency_p95_ms": 1.75', '"latency_p95_ms": NaN').encode(),
     "NaN is not valid JSON"),
    ("invalid-utf8", _good_line(1).replace("mlp", "ml\udcff", 1).encode("utf-8", "surrogateescape"),
     "not valid UTF-8"),
    ("int-above-2**53", _good_line(1).replace('"params": 1234', f'"params": {2 ** 53 + 1}').encode(),
     "params: integer 9007199254740993 is above 2**53"),
    ("bool-batch", _good_line(1).replace('"batch_size": 1', '"batch_size": true').encode(),
     "batch_size: non-numeric value True"),
    ("fractional-batch", _good_line(1).replace('"batch_size": 1', '"batch_size": 2.5').encode(),
     "batch_size: not a whole number"),
    ("blank-name", _good_line(1).replace('"candidate": "mlp"', '"candidate": "  "').encode(),
     "candidate: missing value"),
]


@pytest.mark.parametrize("line, reason", [h[1:] for h in HOSTILE_LINES], ids=[h[0] for h in HOSTILE_LINES])
def test_hostile_line_is_skipped_with_file_line_and_reason(tmp_path, line, reason):
    path = tmp_path / "r.jsonl"
    path.write_bytes(_good_line(1).encode() + b"\n" + line + b"\n" + _good_line(3).encode() + b"\n")
    with pytest.warns(EffplanWarning) as rec:
        back = store.load(path)
    assert back["batch_size"].tolist() == [1, 3]
    assert len(back.attrs["errors"]) == 1
    err = back.attrs["errors"][0]
    assert (err["file"], err["line"]) == (str(path), 2)
    assert reason in f"{err['field']}: {err['message']}"
    assert f"{path}:2" in str(rec[0].message)
    assert len(str(rec[0].message)) < 2000  # the reason does not echo a huge line
    with pytest.raises(ValidationError) as e:
        store.load(path, on_error="raise")
    assert e.value.where == f"{path}:2"


def test_byte_order_mark_and_crlf_load_every_row(tmp_path):
    # a Windows editor's UTF-8 BOM once dropped the first row (issue 10, case 6)
    path = tmp_path / "win.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (_good_line(1) + "\r\n" + _good_line(3) + "\r\n").encode())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = store.load(path)
    assert back["batch_size"].tolist() == [1, 3]
    assert back.attrs["errors"] == []
    assert back.loc[0, "candidate"] == "mlp"


def test_bom_in_the_middle_of_a_file_is_an_error_not_silent(tmp_path):
    path = tmp_path / "cat.jsonl"
    path.write_bytes((_good_line(1) + "\n").encode() + b"\xef\xbb\xbf" + (_good_line(3) + "\n").encode())
    with pytest.warns(EffplanWarning):
        back = store.load(path)
    assert back["batch_size"].tolist() == [1] and back.attrs["errors"][0]["line"] == 2


def test_integers_up_to_2_53_round_trip_exactly_and_larger_are_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    store.append(path, _row(params=2 ** 53, batch_size=1))
    assert store.load(path).loc[0, "params"] == 2 ** 53
    with pytest.raises(ValidationError, match=r"params: integer 9007199254740993 is above 2\*\*53"):
        store.append(path, _row(params=2 ** 53 + 1))
    with pytest.raises(ValidationError, match="batch_size"):
        store.append(path, _row(batch_size=True))
    assert len(path.read_text().splitlines()) == 1


def test_folder_inside_a_glob_is_a_named_error(tmp_path):
    (tmp_path / "sub.jsonl").mkdir()
    with pytest.raises(ValidationError, match="is a folder"):
        store.load(str(tmp_path / "*.jsonl"))


# ---- provisional records: one per finished timing pass (issue 18) ----

def test_a_provisional_record_superseded_by_its_later_pass_is_no_duplicate(tmp_path):
    path = tmp_path / "r.jsonl"
    # pass 1 of two points (provisional), then pass 2 of both: 48 ms vs 0.047 ms would be
    # CONFLICTING between two measurements, but a provisional record is never compared
    store.append(path, [_pt(batch_size=1, p50=48.0, provisional=True, timing_pass=1, stable=False),
                        _pt(batch_size=8, p50=1.0, provisional=True, timing_pass=1, stable=False),
                        _pt(batch_size=1, p50=0.047, provisional=False, timing_pass=2, stable=True),
                        _pt(batch_size=8, p50=1.01, provisional=False, timing_pass=2, stable=True)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = store.load(path)
    assert sorted(zip(df["batch_size"], df["latency_p50_ms"], df["timing_pass"])) == [(1, 0.047, 2), (8, 1.01, 2)]
    assert not df["provisional"].any() and df["stable"].all()
    assert store.completed_points(path) == {("mlp", "host-a", "AMD EPYC 7763", "inference", "float32", b)
                                            for b in (1, 8)}
    assert len(store.load(path, duplicates="all")) == 4


def test_the_newest_record_of_a_point_stays_even_when_provisional_and_is_not_finished(tmp_path):
    path = tmp_path / "r.jsonl"
    store.append(path, [_pt(batch_size=1, provisional=True, timing_pass=1, stable=False,
                            stop_reason="time-budget")])
    df = store.load(path)
    assert df["provisional"].tolist() == [True] and df["stable"].tolist() == [False]
    assert store.completed_points(path) == set()  # resume measures it again
    # an older FINISHED record that a newer one replaces is still a duplicate, and says so
    store.append(path, [_pt(batch_size=1, ts="2025-12-31T00:00:00+00:00", stable=True)])
    with pytest.warns(EffplanWarning, match=r"1 duplicate measured point\(s\)"):
        assert store.load(path)["provisional"].tolist() == [True]


def test_a_cut_off_samples_line_is_skipped_and_never_glued_to_the_next(tmp_path):
    from effplan.records.samples import Timing

    path = tmp_path / "r.jsonl"
    t = Timing(sample_times_s=(1e-3, 2e-3), calls_per_sample=1, stop_reason="time-budget", elapsed_s=0.003,
               warmup_s=0.0, warmup_calls=0)
    store.append_samples(path, [{**_pt(batch_size=1), **t.to_record()}])
    with open(store.samples_path(path), "a", encoding="utf-8") as fh:
        fh.write('{"candidate": "mlp", "sample_t')  # a write cut off by a kill
    store.append_samples(path, [{**_pt(batch_size=2), **t.to_record()}])
    lines = store.samples_path(path).read_text().splitlines()
    assert len(lines) == 3 and lines[1] == '{"candidate": "mlp", "sample_t'
    with pytest.warns(EffplanWarning, match="1 unreadable line"):
        back = store.load_samples(path)
    assert sorted(k[0][-1] for k in back) == [1, 2]


def test_samples_of_a_superseded_provisional_pass_are_left_out(tmp_path):
    from effplan.records.samples import Timing

    path = tmp_path / "r.jsonl"
    first = Timing(sample_times_s=(1e-3,) * 3, calls_per_sample=1, stop_reason="ci-met", elapsed_s=0.003,
                   warmup_s=0.0, warmup_calls=0, sample_rounds=(0, 0, 0))
    both = Timing(sample_times_s=(1e-3,) * 6, calls_per_sample=1, stop_reason="ci-met", elapsed_s=0.006,
                  warmup_s=0.0, warmup_calls=0, sample_rounds=(0, 0, 0, 1, 1, 1))
    store.append_samples(path, [{**_pt(ts="2026-01-01T00:00:00+00:00"), "provisional": True, **first.to_record()},
                                {**_pt(batch_size=1, ts="2026-01-01T00:00:00+00:00"), "provisional": True,
                                 **first.to_record()},
                                {**_pt(ts="2026-01-01T00:00:09+00:00"), "provisional": False, **both.to_record()}])
    back = store.load_samples(path)
    # bs=8: only its last pass (which holds the first pass's samples too); bs=1 was interrupted
    assert {(k[0][-1], k[1]): v.sample_rounds for k, v in back.items()} == {
        (8, "2026-01-01T00:00:09+00:00"): (0, 0, 0, 1, 1, 1), (1, "2026-01-01T00:00:00+00:00"): (0, 0, 0)}


def test_points_since_counts_the_points_a_sweep_appended_and_its_unfinished_ones(tmp_path):
    path = tmp_path / "r.jsonl"
    store.append(path, [_pt(batch_size=64)])  # from an earlier sweep
    before = len(path.read_text().splitlines())
    store.append(path, [_pt(batch_size=1, provisional=True), _pt(batch_size=2, provisional=True),
                        _pt(batch_size=1, provisional=False)])
    assert store.points_since(path, before) == (2, 1)  # bs 1 finished, bs 2 provisional
    assert store.points_since(path, 0) == (3, 1)
    assert store.points_since(tmp_path / "absent.jsonl", 0) == (0, 0)
