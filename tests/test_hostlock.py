"""The machine's measurement lock (effplan.bench.hostlock) and the spool reader (effplan.bench.spool)."""

from __future__ import annotations

import threading

import pytest

from effplan.errors import ValidationError
from effplan.bench.hostlock import lock_files, measurement_lock
from effplan.bench.spool import Tail, describe


def test_lock_files_per_host_or_per_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFPLAN_LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,GPU-ab/cd")
    assert lock_files("host", uses_gpu=True) == [tmp_path / "effplan-measure-host.lock"]
    assert lock_files("gpu", uses_gpu=True) == [tmp_path / "effplan-measure-gpu-3.lock",
                                                tmp_path / "effplan-measure-gpu-GPU-ab_cd.lock"]
    # a point without a GPU takes the host lock, whatever the mode
    assert lock_files("gpu", uses_gpu=False) == [tmp_path / "effplan-measure-host.lock"]
    with pytest.raises(ValidationError, match="exclusive"):
        lock_files("node")


def test_a_second_holder_waits_until_the_first_lets_go(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFPLAN_LOCK_DIR", str(tmp_path))
    order = []
    inside = threading.Event()

    def second():
        with measurement_lock("host"):  # another open file: flock makes it wait
            order.append("second")

    with measurement_lock("host") as waited:
        assert waited >= 0
        t = threading.Thread(target=second)
        t.start()
        inside.set()
        t.join(timeout=0.5)
        assert t.is_alive() and order == []  # still waiting: the lock is held
        order.append("first done")
    t.join(timeout=30)
    assert order == ["first done", "second"]


def test_tail_returns_complete_lines_once(tmp_path):
    path = tmp_path / "s.jsonl"
    tail = Tail(path)
    assert tail.read() == []  # no file yet
    path.write_bytes(b'{"a": 1}\n{"b": ')
    assert tail.read() == [{"a": 1}]  # the partial line waits for its newline
    with open(path, "ab") as fh:
        fh.write(b'2}\nnot json\n{"c": 3}\n')
    assert tail.read() == [{"b": 2}, {"c": 3}]
    assert tail.read() == []


def test_describe_keeps_type_and_first_line():
    assert describe(ValidationError("candidates", "no such thing\nmore")) == \
        "ValidationError: candidates: no such thing"
