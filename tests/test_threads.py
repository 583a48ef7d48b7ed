"""The one thread rule (effplan.bench.threads), with a fake load probe: no timing, no real load."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from effplan.bench import threads as threads_mod
from effplan.bench import timing
from effplan.models.candidates import Candidate
from effplan.settings import MIN_FLOPS_PER_THREAD
from effplan.measurement import TimingPolicy, measure
from effplan.bench.threads import free_cores_over_window, sweep_threads, threads_for_work


def probe_of(loads):
    """A load probe returning ``loads`` one after another (cores of other processes' work)."""
    it = iter(loads)
    seen = []

    def probe(seconds):
        seen.append(seconds)
        return next(it)

    probe.seen = seen
    return probe


def test_a_machine_free_for_an_instant_is_judged_on_its_worst_sample():
    # a loaded 2-core machine that reads 0.3 cores busy for one instant: the old one-sample rule
    # (round(2 - 0.3) = 2) would time a tiny model on 2 threads beside another process
    assert timing.free_cores(0.3) == min(2, timing.usable_cores()) or timing.usable_cores() < 2
    probe = probe_of([1.9, 0.3, 1.8, 1.9, 1.7])
    assert free_cores_over_window(2, probe=probe, window_s=0.5, samples=5) == 1
    assert probe.seen == [0.1] * 5  # the window cut into 5 samples
    # free cores are rounded DOWN: 16 cores with 0.6 busy at worst -> 15, not 16
    assert free_cores_over_window(16, probe=probe_of([0.1, 0.6, 0.2]), samples=3) == 15
    # everything busy: still one thread
    assert free_cores_over_window(4, probe=probe_of([7.0] * 5)) == 1
    # unknown load (no psutil, too short a window): the cores as they are
    assert free_cores_over_window(8, probe=probe_of([math.nan] * 5)) == 8


def test_sweep_threads_caps_torch_threads_at_the_free_cores_and_keeps_a_given_count():
    quiet = probe_of([0.0] * 5)
    assert sweep_threads(torch_threads=8, cores=16, probe=quiet) == 8
    assert sweep_threads(torch_threads=8, cores=4, probe=probe_of([0.0, 1.2, 0.5, 0.1, 0.0])) == 2
    assert sweep_threads(3, torch_threads=8, cores=16, probe=probe_of([])) == 3  # given: as is


def test_small_work_gets_fewer_threads():
    assert MIN_FLOPS_PER_THREAD == 1e7
    assert threads_for_work(8, 64.0) == 1  # Linear(8, 4) at batch 1: 64 FLOPs
    assert threads_for_work(8, 5e7) == 5  # 10 MFLOP per thread
    assert threads_for_work(8, 1e9) == 8
    assert threads_for_work(8, math.nan) == 8  # FLOPs unknown: not capped
    assert threads_for_work(1, 1e12) == 1


def _policy():
    return TimingPolicy(min_repeats=6, max_repeats=6, warmup_calls=1, warmup_s=0.0, min_sample_s=0.0,
                        time_budget_s=1e6, min_rounds=1, samples_per_round=6, min_round_s=0.0)


@pytest.mark.filterwarnings("ignore:effplan.measure. 1 of 1 points are NOT stable")
@pytest.mark.parametrize("isolate", [False, True])
def test_measure_times_a_tiny_model_on_one_thread_unless_told(monkeypatch, isolate):
    # a quiet machine of 2 cores (fake probe): the sweep starts at 2 threads, and the tiny model
    # (Linear(4, 2): 16 FLOPs a call) is timed on 1; threads=2 given is used as it is
    monkeypatch.setattr(threads_mod, "_probe", lambda: probe_of([0.0] * 5))
    monkeypatch.setattr(timing, "usable_cores", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cand = Candidate("tiny", lambda: nn.Linear(4, 2), lambda bs: torch.ones(bs, 4))
        auto = measure(cand, batch_sizes=(1,), device="cpu", timing=_policy(), energy=False,
                       passes=1, retries=0, isolate=isolate, progress=False)
        given = measure(cand, batch_sizes=(1,), device="cpu", timing=_policy(), energy=False,
                        passes=1, retries=0, threads=2, isolate=isolate, progress=False)
        assert torch.get_num_threads() == 2  # restored after each point and each sweep
    finally:
        torch.set_num_threads(before)
    assert auto.rows[0]["status"] == "ok" and auto.rows[0]["flops_per_item"] == 16
    assert auto.rows[0]["threads"] == 1
    assert given.rows[0]["threads"] == 2
