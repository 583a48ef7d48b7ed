"""Worker processes: results and progress come back, a crash is an error (row), never the end of
the test process; the real isolated path completes and labels itself."""

from __future__ import annotations

import ctypes
import os
import threading
import warnings

import pytest
import torch
from torch import nn

import effplan
from effplan.models.candidates import Candidate
from effplan.errors import EffplanWarning, MeasurementError
from effplan.records.samples import STOP_REASONS
from effplan.worker import (Worker, WorkerCrashed, WorkerPool, WorkerTimeout, can_ship, run_isolated,
                            start_method)


def test_start_method_is_never_plain_fork():
    assert start_method() in ("forkserver", "spawn")


def test_result_and_progress_come_back_from_a_notebook_style_closure():
    factor = 7  # captured by the lambda: shipped with cloudpickle, not by reference

    def job(x, report):
        report(0.5)
        report(1.0)
        return (lambda y: y * factor)(x), os.getpid()

    seen = []
    (value, pid) = run_isolated(job, 6, on_progress=seen.append)
    assert value == 42 and pid != os.getpid()
    assert seen == [0.5, 1.0]


def test_os_exit_is_a_worker_crash_and_this_process_lives():
    with pytest.raises(WorkerCrashed, match="exited with code 3"):
        run_isolated(lambda report: os._exit(3))


def test_segfault_is_a_worker_crash():
    with pytest.raises(WorkerCrashed, match="SIGSEGV"):
        run_isolated(lambda report: ctypes.string_at(0))


def test_exceptions_are_reraised_here():
    def oom(report):
        raise MemoryError("CUDA out of memory. Tried to allocate 80 GiB")

    with pytest.raises(MemoryError, match="Tried to allocate"):
        run_isolated(oom)

    class Unpicklable(Exception):
        def __reduce__(self):
            raise TypeError("no")

    def odd(report):
        raise Unpicklable("odd failure")

    with pytest.raises(MeasurementError, match="Unpicklable: odd failure"):
        run_isolated(odd)


def test_can_ship_names_the_reason():
    assert can_ship(lambda: 1) == (True, "")
    lock = threading.Lock()
    ok, why = can_ship(lambda: lock)
    assert not ok and "lock" in why


# ----------------------------------------------------------------------------- through measure()
def _tiny(name="tiny", model_fn=None):
    return Candidate(name, model_fn or (lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))),
                     lambda bs: torch.ones(bs, 4))


def _crash_exit():
    os._exit(9)


def _crash_oom():
    raise MemoryError("out of memory building the model")


def test_crashing_candidates_are_error_rows_and_the_sweep_goes_on():
    cands = [_tiny("exits", lambda: _crash_exit()), _tiny("oom", lambda: _crash_oom()), _tiny("fine")]
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        m = effplan.measure(cands, batch_sizes=(1,), device="cpu", energy=False, time_budget_s=0.05,
                            threads=1, retries=0, progress=False, isolate=True)
    df = m.to_frame()
    assert list(df["status"]) == ["error", "error", "ok"]
    assert "WorkerCrashed" in df.loc[0, "error"] and "code 9" in df.loc[0, "error"]
    assert df.loc[1, "error"] == "MemoryError: out of memory building the model"
    assert list(df["isolation"]) == ["worker"] * 3
    assert any("2 of 3 points failed" in str(w.message) for w in got)


def test_real_isolated_point_completes_and_labels_itself(tmp_path):
    path = tmp_path / "r.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)  # a busy CI machine may flag the point
        m = effplan.measure(_tiny(), batch_sizes=(2,), device="cpu", energy=False, time_budget_s=0.2,
                            retries=0, results_path=path, progress=False)
    row = m.to_frame().iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["isolation"] == "worker" and row["threads"] >= 1
    assert row["stop_reason"] in STOP_REASONS
    assert bool(row["stable"]) == (row["stop_reason"] == "ci-met")
    assert row["rounds"] >= 1 and row["latency_p50_ms"] > 0
    assert row["background_load"] >= 0 or row["background_load"] != row["background_load"]  # NaN
    # the point's own footprint, not the ~400 MiB Python+torch process
    assert row["peak_memory_source"] == "worker-peak-rss-minus-baseline"
    assert 0 <= row["peak_memory_mib"] < 200
    assert row["energy_note"] == "energy not measured (energy=False)"
    # raw samples came back from the worker and were stored beside the results
    t = m.samples[("tiny", "cpu", "inference", 2)]
    assert len(t.sample_times_s) == len(t.sample_rounds) >= 1
    from effplan.records import store

    [back] = store.load_samples(path).values()
    assert (back.sample_times_s, back.sample_rounds, back.stop_reason) == (
        t.sample_times_s, t.sample_rounds, t.stop_reason)


def test_peak_memory_is_the_points_own_footprint():
    # 4096 x 6400 float32 weights = 100 MiB; a 64 x 10 layer = 2.5 KiB
    big = Candidate("big", lambda: nn.Linear(4096, 6400), lambda bs: torch.ones(bs, 4096))
    small = Candidate("small", lambda: nn.Linear(64, 10), lambda bs: torch.ones(bs, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        m = effplan.measure([big, small], batch_sizes=(1,), device="cpu", energy=False,
                            time_budget_s=0.05, retries=0, threads=1, progress=False)
    mem = dict(zip(m.to_frame()["candidate"], m.to_frame()["peak_memory_mib"]))
    assert 100 <= mem["big"] < 140  # the weights (+ bias, input, output), not the ~400 MiB process
    assert 0 <= mem["small"] < 20   # torch's and the FLOP counter's start-up are in the baseline


# ----------------------------------------------------------------------------- reused workers
def _pid_and(bound, x, report):
    return os.getpid(), bound["name"], x * 2


def _hang(report):
    import time

    report(os.getpid())
    time.sleep(3600)


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_one_worker_runs_many_jobs_with_its_bound_objects_shipped_once():
    with Worker({"name": "cand"}) as w:
        got = [w.call(_pid_and, x) for x in (1, 2, 3)]
        assert [g[1:] for g in got] == [("cand", 2), ("cand", 4), ("cand", 6)]
        assert {g[0] for g in got} == {w.pid} and w.pid != os.getpid() and w.calls == 3
        # an exception is re-raised here and the worker takes the next job
        with pytest.raises(MemoryError, match="too big"):
            w.call(lambda bound, report: (_ for _ in ()).throw(MemoryError("too big")))
        assert w.alive and w.call(_pid_and, 5)[0] == w.pid


def test_a_job_over_its_time_limit_is_stopped_and_its_worker_killed():
    seen = []
    w = Worker()
    with pytest.raises(WorkerTimeout, match=r"^timed out after 0\.5 s; its worker process was killed"):
        w.call(_hang, on_progress=seen.append, timeout_s=0.5)
    assert seen == [w.pid] and not w.alive and _gone(w.pid)
    with pytest.raises(WorkerCrashed, match="not running"):
        w.call(_pid_and, 1)


def test_pool_keeps_one_worker_per_key_replaces_a_dead_one_and_bounds_the_live_ones():
    with WorkerPool(2) as pool:
        (pid_a, _, _), pa = pool.call("a", ({"name": "a"},), _pid_and, 1)
        (pid_a2, name, _), _ = pool.call("a", ({"name": "a"},), _pid_and, 2)
        assert pid_a == pid_a2 == pa and name == "a" and pool.started == 1
        with pytest.raises(WorkerCrashed, match="exited with code 7"):
            pool.call("a", ({"name": "a"},), lambda bound, report: os._exit(7))
        (pid_a3, _, _), _ = pool.call("a", ({"name": "a"},), _pid_and, 3)
        assert pid_a3 != pid_a and pool.started == 2  # a fresh worker after the crash
        pool.call("b", ({"name": "b"},), _pid_and, 1)
        assert pool.live == 2
        (pid_c, _, _), _ = pool.call("c", ({"name": "c"},), _pid_and, 1)
        assert pool.live == 2 and pool.started == 4 and _gone(pid_a3)  # "a", least recently used, ended
    assert _gone(pid_c)


def test_a_fresh_worker_per_call_without_reuse():
    with WorkerPool(2, reuse=False) as pool:
        pids = {pool.call("a", ({"name": "a"},), _pid_and, x)[1] for x in (1, 2)}
        assert len(pids) == 2 and pool.started == 2 and pool.live == 0
