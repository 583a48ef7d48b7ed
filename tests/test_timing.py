"""The timing decision logic on synthetic samples: stalls, two modes, rounds that disagree, the
stop rule, background load arithmetic. No assert here depends on how fast this machine is."""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import cycle

import numpy as np
import pytest

from effplan.bench import timing
from effplan.records import samples
from effplan.errors import ValidationError
from effplan.bench.timing import LoadMonitor, adaptive_time, free_cores
from effplan.records.samples import Timing, TimingPolicy, diagnose, verdict


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _fn(clock, durations):
    it = iter(durations)

    def call():
        clock.t += next(it)
    return call


# ----------------------------------------------------------------------------- diagnose
def test_bimodal_set_from_the_issue_is_two_modes_with_stalls():
    # 0.03 ms per call, or 48 ms when a thread was descheduled (10% of calls)
    x = np.array([0.03] * 900 + [48.0] * 100)
    d = diagnose(x)
    assert d.stall_share == pytest.approx(0.10)
    assert d.bimodal and d.gap_ratio == pytest.approx(48.0 / 0.03)


def test_stall_dominated_set_looks_precise_but_is_unstable():
    # 60% stalls: the median IS a stall and its CI is tight -- the old rule called this stable
    x = np.array([0.03] * 400 + [48.0] * 600)
    assert samples.ci_rel(x) < 0.02
    v = verdict(x, np.repeat(np.arange(10), 100), TimingPolicy())
    assert v.reason == "unstable" and not v.stable
    assert "60% of samples are stalls" in v.why and "two modes" in v.why


def test_quiet_set_has_no_stalls_and_one_mode():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.01, 2000)
    d = diagnose(x)
    assert d.stall_share == 0.0 and not d.bimodal and d.gap_ratio < 1.1


def test_a_few_odd_samples_are_neither_a_mode_nor_too_many_stalls():
    x = np.array([1.0] * 997 + [50.0] * 3)  # 0.3% stalls, 3 samples < 5% on the slow side
    d = diagnose(x)
    assert d.stall_share == pytest.approx(0.003) and not d.bimodal
    v = verdict(x, np.repeat(np.arange(10), 100), TimingPolicy())
    assert v.reason == "ci-met" and v.stable and v.why == ""


def test_stall_share_threshold_is_the_policy_one():
    x = np.array([1.0] * 94 + [5.0] * 6)  # 6% stalls (> 3 x p10 = 3.0)
    pol = TimingPolicy(max_stall_share=0.05)
    assert diagnose(x).stall_share == pytest.approx(0.06)
    assert verdict(x, np.repeat(np.arange(5), 20), pol).reason == "unstable"
    loose = TimingPolicy(max_stall_share=0.10)
    assert "stalls" not in verdict(x, np.repeat(np.arange(5), 20), loose).why


# ----------------------------------------------------------------------------- verdict
def test_rounds_that_disagree_are_unstable():
    # round medians 1.0, 1.2, 1.0: 10th-90th percentile range 1.0 .. 1.16 -> 16% of the 1.0 median
    x = np.array([1.0] * 10 + [1.2] * 10 + [1.0] * 10)
    r = np.repeat([0, 1, 2], 10)
    assert samples.round_spread_rel(x, r) == pytest.approx(0.16)
    v = verdict(x, r, TimingPolicy())
    assert v.reason == "unstable" and "rounds disagree" in v.why
    assert not diagnose(x).bimodal  # a x1.2 step is no gap: only the rounds tell


def test_ci_met_needs_min_rounds_and_min_repeats():
    pol = TimingPolicy(min_rounds=3, min_repeats=10)
    x = np.ones(30)
    assert verdict(x, np.repeat([0, 1, 2], 10), pol).reason == "ci-met"
    two = verdict(x[:20], np.repeat([0, 1], 10), pol)
    assert two.reason == "time-budget" and "2 of 3 rounds" in two.why
    assert verdict(x[:20], np.repeat([0, 1], 10), pol, budget_spent=False).reason == ""


def test_a_contended_point_is_not_stable_however_clean_its_samples():
    x, r = np.ones(30), np.repeat([0, 1, 2], 10)
    pol = TimingPolicy()  # max_contention 0.25 core
    # 2 usable cores, 1 thread: up to 1.25 cores of other work leaves our thread its own core
    assert verdict(x, r, pol, load=1.2, threads=1, cores=2).reason == "ci-met"
    v = verdict(x, r, pol, load=1.9, threads=1, cores=2)
    assert v.reason == "unstable" and "contended: other processes used 1.90 of 2 usable cores" in v.why
    assert verdict(x, r, pol, load=0.5, threads=2, cores=2).reason == "unstable"  # 2 threads, 1.5 free
    assert verdict(x, r, pol, load=float("nan"), threads=2, cores=2).reason == "ci-met"  # unknown load


def test_rounds_last_min_round_s_so_they_are_spread_in_time():
    clock = FakeClock()
    pol = TimingPolicy(min_sample_s=0.0, warmup_calls=1, warmup_s=0.0, min_round_s=0.05)
    t = adaptive_time(_fn(clock, cycle([2.0**-10])), pol, clock=clock)
    # ~0.98 ms calls: 52 samples reach 0.05 s, so each of the 3 rounds has 52 samples, not 10
    assert t.stop_reason == "ci-met" and t.rounds == 3 and len(t.sample_times_s) == 3 * 52


def test_time_budget_when_steady_but_imprecise():
    x = np.tile(np.linspace(1.0, 1.5, 10), 3)  # no gap, no stall, rounds equal, CI ~ +-10%
    v = verdict(x, np.repeat([0, 1, 2], 10), TimingPolicy(target_ci_rel=0.02))
    assert v.reason == "time-budget" and "confidence target not met" in v.why


def test_stored_samples_can_be_rejudged_under_another_policy():
    x_s = tuple(np.tile(np.linspace(1.0, 1.5, 10), 3) * 1e-3)
    t = Timing(sample_times_s=x_s, calls_per_sample=1, stop_reason="time-budget", elapsed_s=0.04,
               warmup_s=0.0, warmup_calls=0, sample_rounds=tuple(np.repeat([0, 1, 2], 10)))
    back = Timing.from_record(t.to_record())
    assert back == t
    assert back.verdict(TimingPolicy(target_ci_rel=0.5)).reason == "ci-met"
    assert back.rounds == 3 and not back.stable


# ----------------------------------------------------------------------------- adaptive_time
def test_adaptive_time_flags_a_descheduled_thread():
    clock = FakeClock()
    pol = TimingPolicy(min_sample_s=0.0, warmup_calls=3, warmup_s=0.0, time_budget_s=2.0)
    # every 10th call is descheduled: 0.03 ms or 48 ms
    calls = cycle([3e-5] * 9 + [0.048])
    t = adaptive_time(_fn(clock, calls), pol, clock=clock)
    assert t.stop_reason == "unstable" and not t.stable
    assert "stalls" in t.why and "two modes" in t.why
    assert t.median_ms == pytest.approx(0.03)  # the median itself is right; the tail is not
    assert 2.0 <= t.elapsed_s < 2.0 + 0.048 + 1e-9


def test_adaptive_time_reports_progress_per_round():
    clock = FakeClock()
    seen = []
    pol = TimingPolicy(min_sample_s=0.0, warmup_calls=1, warmup_s=0.0, time_budget_s=1.0, min_round_s=0.0)
    t = adaptive_time(_fn(clock, cycle([2.0**-10])), pol, clock=clock,
                      on_round=lambda r, spent: seen.append((r, spent)))
    assert t.stop_reason == "ci-met"
    assert [r for r, _ in seen] == [0, 1, 2]
    assert [s for _, s in seen] == pytest.approx([10 * 2.0**-10, 20 * 2.0**-10, 30 * 2.0**-10])


def test_adaptive_time_records_load_per_round():
    class FakeLoad(LoadMonitor):
        def __init__(self):
            self.calls = 0

        def snapshot(self):
            return ("snap",)

        def since(self, snap):
            self.calls += 1
            return 2.0 if self.calls == 1 else 1.0  # before: 2 cores busy, rounds: 1

    clock = FakeClock()
    pol = TimingPolicy(min_sample_s=0.0, warmup_calls=1, warmup_s=0.0, min_round_s=0.0)
    t = adaptive_time(_fn(clock, cycle([2.0**-10])), pol, clock=clock, load=FakeLoad(), threads=1)
    # since() calls: warm-up, 3 rounds, then the whole timed phase
    assert t.load_before == 2.0 and t.load_rounds == (1.0, 1.0, 1.0) and t.load_during == 1.0
    assert t.background_load == 1.0


def test_policy_validation_names_the_field():
    for kwargs, name in (({"min_rounds": 0}, "min_rounds"), ({"max_rounds": 1, "min_rounds": 2}, "max_rounds"),
                         ({"max_stall_share": 1.0}, "max_stall_share"), ({"stall_factor": 1.0}, "stall_factor"),
                         ({"round_agreement_rel": 0}, "round_agreement_rel")):
        with pytest.raises(ValidationError) as info:
            TimingPolicy(**kwargs)
        assert info.value.field == name


# ----------------------------------------------------------------------------- load
def test_load_is_other_processes_cpu_time_over_wall_time():
    class Fixed(LoadMonitor):
        def snapshot(self):
            return (11.0, 112.5, 1.5)  # 1 s later: +2.5 s busy system-wide, +0.5 s our own

    assert Fixed().since((10.0, 110.0, 1.0)) == pytest.approx(2.0)
    assert math.isnan(Fixed().since((10.99, 110.0, 1.0)))  # 10 ms: below the tick resolution
    assert math.isnan(Fixed().since(None))


def test_free_cores_leaves_the_busy_ones(monkeypatch):
    monkeypatch.setattr(timing, "usable_cores", lambda: 4)
    assert free_cores(load=2.0) == 2
    assert free_cores(load=2.6) == 1
    assert free_cores(load=7.0) == 1  # never below one
    assert free_cores(load=float("nan")) == 4  # unknown load: all usable cores
    assert free_cores(load=0.0) == 4


def test_adaptive_time_flags_contention_from_the_load(monkeypatch):
    class Busy(LoadMonitor):
        def __init__(self):
            pass

        def snapshot(self):
            return ("snap",)

        def since(self, snap):
            return 1.9  # two CPU-bound neighbours on a 2-core machine

    monkeypatch.setattr(timing, "usable_cores", lambda: 2)
    clock = FakeClock()
    pol = TimingPolicy(min_sample_s=0.0, warmup_calls=1, warmup_s=0.0, min_round_s=0.0, time_budget_s=0.1)
    t = adaptive_time(_fn(clock, cycle([2.0**-10])), pol, clock=clock, load=Busy(), threads=1)
    assert t.stop_reason == "unstable" and "contended" in t.why
    assert (t.threads, t.cores, t.background_load) == (1, 2, 1.9)
    assert Timing.from_record(t.to_record()).verdict(pol).reason == "unstable"  # re-judged the same


# ----------------------------------------------------------------------------- later passes (prior=)
def _pass_policy() -> TimingPolicy:
    return TimingPolicy(min_sample_s=0.0, warmup_calls=1, warmup_s=0.0, min_round_s=0.0,
                        samples_per_round=10, min_repeats=10, time_budget_s=10.0)


def test_a_second_pass_continues_the_rounds_and_agrees():
    clock = FakeClock()
    pol = _pass_policy()
    first = adaptive_time(_fn(clock, cycle([1e-3])), pol, clock=clock)
    assert first.stop_reason == "ci-met" and first.rounds == 3 and len(first.sample_times_s) == 30
    clock.t += 60.0  # other points measured in between
    both = adaptive_time(_fn(clock, cycle([1e-3])), pol, clock=clock, prior=first)
    # at least one more round, numbered after the first pass's, judged on all 40 samples
    assert both.stop_reason == "ci-met" and both.rounds == 4
    assert both.sample_rounds == (0,) * 10 + (1,) * 10 + (2,) * 10 + (3,) * 10
    assert both.sample_times_s[:30] == first.sample_times_s
    assert both.calls_per_sample == first.calls_per_sample == 1
    assert both.elapsed_s == pytest.approx(first.elapsed_s + 10 * 1e-3)
    assert both.warmup_calls == 2


def test_a_second_pass_that_disagrees_makes_the_point_unstable():
    clock = FakeClock()
    pol = _pass_policy()
    first = adaptive_time(_fn(clock, cycle([1e-3])), pol, clock=clock)
    assert first.stable
    # later, the machine is busy: every call takes 1.5 ms. Rounds 3.. disagree with rounds 0-2
    # (two modes a x1.5 gap apart); with the budget spent the point is unstable, not averaged away
    later = adaptive_time(_fn(clock, cycle([1.5e-3])), replace(pol, time_budget_s=first.elapsed_s + 0.05),
                          clock=clock, prior=first)
    assert later.stop_reason == "unstable" and not later.stable
    assert "rounds disagree" in later.why or "two modes" in later.why
    assert later.rounds > first.rounds


def test_a_second_pass_keeps_the_first_pass_calls_per_sample():
    clock = FakeClock()
    pol = replace(_pass_policy(), min_sample_s=1e-3)
    first = adaptive_time(_fn(clock, cycle([1e-4])), pol, clock=clock)
    assert first.calls_per_sample == 10
    both = adaptive_time(_fn(clock, cycle([5e-4])), pol, clock=clock, prior=first)  # would size 2
    assert both.calls_per_sample == 10
