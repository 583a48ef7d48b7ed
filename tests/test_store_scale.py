"""The column-wise store (issue 28) gives exactly the answers of the per-row store it replaced
(``tests/store_reference.py``, kept unchanged): on hand-made files with newest-wins, several
hosts, CONFLICTING duplicates, superseded provisional records and torn lines; block by block
(a tiny block size, so files span many blocks); and through the index beside the file
(in step, grown by another writer, rewritten, cut). Nothing here is timed: speed is shown by
``benchmarks/scale.py``."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import store_reference as ref
from effplan.records import store, store_index, store_keys, store_read

TS = "2026-01-0{}T00:00:00+00:00"


def _pt(candidate="mlp", batch_size=8, host="host-a", p50=1.0, ci=0.01, day=1, **extra):
    row = {"candidate": candidate, "hardware": "AMD EPYC 7763", "hardware_id": f"id-{host}",
           "hw_host_hash": host, "mode": "inference", "batch_size": batch_size, "dtype": "float32",
           "latency_p50_ms": p50, "latency_p95_ms": p50 * 1.2, "latency_ci_rel": ci,
           "throughput_items_per_s": batch_size / p50 * 1e3, "timestamp": TS.format(day),
           "stable": True}
    row.update(extra)
    return row


def _hand_made(tmp_path: Path) -> Path:
    """Every case at once: newest wins (an older record written later), two hosts with one
    hardware name, a CONFLICTING duplicate, a provisional pass superseded by its last pass,
    a newest record that is provisional, an error row, a generation point per prompt length,
    a torn line closed by the next append, a bad value and a blank line."""
    path = tmp_path / "r.jsonl"
    store.append(path, [_pt(p50=1.00, day=2), _pt(p50=1.01, day=1), _pt(p50=1.005, day=1)])
    store.append(path, [_pt(host="host-b", p50=5.0), _pt(batch_size=1, p50=48.0, day=1),
                        _pt(batch_size=1, p50=0.047, day=3)])
    store.append(path, [_pt(batch_size=2, provisional=True, timing_pass=1, day=1),
                        _pt(batch_size=2, timing_pass=2, day=2),
                        _pt(batch_size=4, provisional=True, day=1, stable=False)])
    with open(path, "ab") as fh:   # a sweep killed mid-line
        fh.write(b'{"candidate": "mlp", "hardware": "AMD')
    store.append(path, [_pt(batch_size=16, status="error", error="boom", stable=None),
                        _pt(candidate="gen", mode="generation", prompt_tokens=32, ttft_p50_ms=3.0),
                        _pt(candidate="gen", mode="generation", prompt_tokens=64, ttft_p50_ms=5.0),
                        _pt(batch_size=32, stable=None)])
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n" + json.dumps(dict(_pt(batch_size=64), latency_p50_ms="fast", schema_version=1)) + "\n")
    store.append(path, [_pt(candidate="other", batch_size=64, day=4)])
    return path


def _both(fn_new, fn_old):
    with warnings.catch_warnings(record=True) as w_new:
        warnings.simplefilter("always")
        new = fn_new()
    with warnings.catch_warnings(record=True) as w_old:
        warnings.simplefilter("always")
        old = fn_old()
    return new, old, [str(w.message) for w in w_new], [str(w.message) for w in w_old]


@pytest.mark.parametrize("chunk", [store_read.CHUNK_BYTES, 200])
def test_load_dedupe_and_resume_give_the_per_row_answers_on_a_hand_made_file(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(store_read, "CHUNK_BYTES", chunk)
    monkeypatch.setitem(store_read.read_chunks.__kwdefaults__, "chunk_bytes", chunk)
    path = _hand_made(tmp_path)
    said = {}
    for dup in ("newest", "all"):
        new, old, w_new, w_old = _both(lambda: store.load(path, duplicates=dup),
                                       lambda: ref.load(path, duplicates=dup))
        pd.testing.assert_frame_equal(new, old)
        assert new.attrs["errors"] == old.attrs["errors"]
        assert w_new == w_old
        said[dup] = "\n".join(w_new)
    # the warnings say what the hand-made file holds
    text = said["newest"]
    assert "CONFLICTING duplicates: 1 of the 3 older duplicate(s)" in text
    assert "48 ms vs kept 0.047 ms" in text
    assert "r.jsonl:10: record: bad JSON" in text and "(truncated line" not in text   # closed by the append
    assert "r.jsonl:16: latency_p50_ms: non-numeric value 'fast'" in text
    assert store.completed_points(path) == ref.completed_points(path)
    assert store.completed_points(path) == {
        ("mlp", "host-a", "AMD EPYC 7763", "inference", "float32", b) for b in (8, 1, 2)} | {
        ("mlp", "host-b", "AMD EPYC 7763", "inference", "float32", 8),
        ("gen", "host-a", "AMD EPYC 7763", "generation", "float32", 8, 32),
        ("gen", "host-a", "AMD EPYC 7763", "generation", "float32", 8, 64),
        ("other", "host-a", "AMD EPYC 7763", "inference", "float32", 64)}
    for lines in (0, 3, 9, 10, 14, 99):
        assert store.points_since(path, lines) == ref.points_since(path, lines)


def test_a_torn_last_line_is_reported_by_file_line_as_before(tmp_path):
    path = tmp_path / "r.jsonl"
    store.append(path, [_pt(batch_size=1), _pt(batch_size=2)])
    with open(path, "ab") as fh:
        fh.write(b'{"candidate": "mlp", "batch')
    new, old, w_new, w_old = _both(lambda: store.load(path), lambda: ref.load(path))
    pd.testing.assert_frame_equal(new, old)
    assert w_new == w_old and f"{path}:3: record: bad JSON" in w_new[0] and "truncated line" in w_new[0]
    with pytest.raises(store.ValidationError) as got:
        store.load(path, on_error="raise")
    assert got.value.where == f"{path}:3"
    assert store.completed_points(path) == ref.completed_points(path)


HOSTILE = [b'{"candidate": "a", "x": NaN}', b'{"candidate": "a", "x": -Infinity}',
           b'{"candidate": "a", "x": 1e400}', b'{"candidate": "a", "x": [1.5e999]}',
           b'{"candidate": "a", "x": ' + b"9" * 400 + b'.0}', b'[1, 2]', b'"text"', b"\xff\xfe{}",
           b'{"candidate": "a"}, {"candidate": "b"}', b"\xef\xbb\xbf" + json.dumps(_pt()).encode(),
           b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", b"   ", b"\t{\"candidate\": 1}\r",
           json.dumps(dict(_pt(), timing_note="NaN and Infinity in words")).encode(), b'{"x": 1e308}']


def test_every_hostile_line_gets_the_per_row_answer(tmp_path):
    path = tmp_path / "r.jsonl"
    good = json.dumps(dict(_pt(), schema_version=1)).encode()
    path.write_bytes(b"\n".join([good] + HOSTILE + [good]) + b"\n")
    new, old, w_new, w_old = _both(lambda: store.load(path, duplicates="all"),
                                   lambda: ref.load(path, duplicates="all"))
    pd.testing.assert_frame_equal(new, old)
    assert new.attrs["errors"] == old.attrs["errors"] and w_new == w_old
    reasons = {e["line"]: e["message"] for e in new.attrs["errors"]}
    assert "JSON has no infinity or NaN" in reasons[2] and "out of range" in reasons[4]
    assert "out of range" in reasons[5] and "out of range" in reasons[6]
    assert "nested deeper than 32" in reasons[12]
    assert 11 not in reasons or reasons[11] != ""   # a BOM on line 11 is an error, not silent


def test_the_index_follows_the_file(tmp_path):
    path = tmp_path / "r.jsonl"
    store.append(path, [_pt(batch_size=1), _pt(batch_size=2, stable=False)])
    ip = store_index.index_path(path)
    assert ip.exists()                        # a new file gets its index at once
    store.append(path, [_pt(batch_size=4)])   # kept in step from the records: nothing re-read
    ents = store_index.entries(path)
    assert ents["line"].tolist() == [1, 2, 3] and ents["finished"].tolist() == [1, 0, 1]
    first = path.read_bytes().split(b"\n")[2]
    assert ents["offset"].iloc[2] == path.read_bytes().index(first) and ents["length"].iloc[2] == len(first) + 1
    # another writer appends without the index: only the new lines are read
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(dict(_pt(batch_size=8), schema_version=1)) + "\n")
    assert store.completed_points(path) == ref.completed_points(path)
    assert len(store_index.entries(path)) == 4
    # rewritten (save_frame) or cut by hand: rebuilt from the whole file
    store.save_frame(store.load(path).iloc[:2].drop(columns="source_file"), path)
    assert not ip.exists() and store.completed_points(path) == ref.completed_points(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert store.completed_points(path) == ref.completed_points(path)
    # a corrupt index is rebuilt, never trusted
    ip.write_text("[1, 2\n", encoding="utf-8")
    assert store.completed_points(path) == ref.completed_points(path)


def test_an_append_after_a_torn_line_keeps_the_index_line_numbers(tmp_path):
    path = tmp_path / "r.jsonl"
    store.append(path, [_pt(batch_size=1)])
    with open(path, "ab") as fh:
        fh.write(b'{"cand')
    store.append(path, [_pt(batch_size=2)])   # closes the torn line (line 2) first
    store.append(path, [_pt(batch_size=4)])
    ents = store_index.entries(path)
    assert ents["line"].tolist() == [1, 3, 4]
    lines = path.read_bytes().split(b"\n")
    for line, off, n in zip(ents["line"], ents["offset"], ents["length"]):
        assert path.read_bytes()[off:off + n] == lines[line - 1] + b"\n"
    assert store.completed_points(path) == ref.completed_points(path)
    assert store.points_since(path, 1) == ref.points_since(path, 1) == (2, 0)


def test_point_codes_equal_exactly_when_point_keys_are_equal():
    frame = pd.DataFrame({"candidate": ["a", "a", "a", "b", None, "a"],
                          "hw_host_hash": ["h", None, "", "h", "h", "h"],
                          "hardware_id": ["x", "h", "h", "x", "x", "x"],
                          "hardware": ["L4"] * 6, "mode": ["inference"] * 5 + ["generation"],
                          "dtype": [None] * 6, "batch_size": [8, 8, 8.0, 8, 8, 8],
                          "prompt_tokens": [1, 2, 3, 4, 5, 6]})
    keys = [ref.point_key(r) for r in frame.to_dict(orient="records")]
    codes = store_keys.point_codes(frame)
    for i in range(len(frame)):
        for j in range(len(frame)):
            assert (codes[i] == codes[j]) == (keys[i] == keys[j])
    assert store_keys.key_tuples(store_keys.key_columns(frame), np.arange(6)) == keys


# ----------------------------------------------------------------------------- properties
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@st.composite
def records(draw):
    rec = _pt(candidate=draw(st.sampled_from(["a", "b"])), batch_size=draw(st.sampled_from([1, 2])),
              host=draw(st.sampled_from(["h1", "h2", ""])), p50=draw(st.sampled_from([1.0, 1.001, 9.0])),
              ci=draw(st.sampled_from([0.0, 0.01])), day=draw(st.integers(1, 3)),
              stable=draw(st.sampled_from([True, False, None])))
    if draw(st.booleans()):
        rec["provisional"] = draw(st.booleans())
    if draw(st.integers(0, 5)) == 0:
        rec["status"], rec["error"] = "error", "boom"
    return rec


@SETTINGS
@given(st.lists(st.lists(records(), min_size=1, max_size=4), min_size=1, max_size=4),
       st.sets(st.integers(0, 3), max_size=2))
def test_property_dedupe_resume_and_conflicts_match_the_per_row_store(tmp_path_factory, batches, torn):
    path = tmp_path_factory.mktemp("p") / "r.jsonl"
    for i, batch in enumerate(batches):
        store.append(path, batch)
        if i in torn:
            with open(path, "ab") as fh:
                fh.write(b'{"candidate": "a", "hard')
    for dup in ("newest", "all"):
        new, old, w_new, w_old = _both(lambda: store.load(path, duplicates=dup),
                                       lambda: ref.load(path, duplicates=dup))
        pd.testing.assert_frame_equal(new, old)
        assert w_new == w_old
    assert store.completed_points(path) == ref.completed_points(path)
    n_lines = len(path.read_bytes().split(b"\n"))
    for lines in (0, n_lines // 2):
        assert store.points_since(path, lines) == ref.points_since(path, lines)
    frame = ref.load(path, duplicates="all")
    new, old, w_new, w_old = _both(lambda: store.dedupe(frame), lambda: ref.dedupe(frame))
    pd.testing.assert_frame_equal(new, old)
    assert w_new == w_old


def test_progress_is_shown_on_long_loads_only(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    store.append(path, [_pt()])
    store.load(path)
    assert capsys.readouterr().err == ""           # a small file: no bar
    store.load(path, progress=True)
    assert "loading results" in capsys.readouterr().err
    assert store_read.PROGRESS_MIN_BYTES == 64 * 2 ** 20 and os.path.getsize(path) < store_read.PROGRESS_MIN_BYTES
