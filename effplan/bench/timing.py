"""Taking timing samples on a busy machine: warm-up, rounds, the background load.

:func:`adaptive_time` times a zero-argument callable in several separate **rounds** (as pyperf
runs several worker processes and ``torch.utils.benchmark.Timer.blocked_autorange`` uses blocks)
until the stop rule of :func:`effplan.records.samples.verdict` ends it (``ci-met``,
``time-budget`` or ``unstable``; the rule and the statistics are in :mod:`effplan.records.samples`,
with the raw-sample record :class:`~effplan.records.samples.Timing` it returns).

:class:`LoadMonitor` records the background load: CPU cores' worth of work done by OTHER
processes (system busy CPU time minus this process's own) over an interval; :func:`free_cores`
is the cores this process may use (:func:`effplan.devices.hardware.available_cpus`) minus that
load, for the default thread count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..devices.hardware import available_cpus
from ..records.samples import Timing, TimingPolicy, Verdict, verdict

__all__ = ["adaptive_time", "LoadMonitor", "free_cores", "usable_cores"]


# =============================================================================== load
def usable_cores() -> int:
    """CPU cores this process may run on (:func:`effplan.devices.hardware.available_cpus`)."""
    return available_cpus()


def _busy_s(t: Any) -> float:
    idle = getattr(t, "idle", 0.0) + getattr(t, "iowait", 0.0)
    total = sum(getattr(t, f) for f in t._fields if f not in ("guest", "guest_nice"))
    return total - idle


class LoadMonitor:
    """Background load: cores' worth of CPU time spent by OTHER processes over an interval.

    ``snap = mon.snapshot()`` ... ``mon.since(snap)`` -> cores (0 = quiet; 2.0 = two other
    CPU-bound processes). System busy time is from ``psutil.cpu_times()`` (all cores), this
    process's own from ``psutil.Process().cpu_times()`` (threads included). NaN over an interval
    too short to resolve (the kernel counts CPU time in ~10 ms ticks) or without psutil.
    """

    #: Shorter intervals than this are not resolved by the kernel's CPU-time ticks.
    MIN_INTERVAL_S = 0.05

    def __init__(self) -> None:
        try:
            import psutil

            self._psutil = psutil
            self._proc = psutil.Process()
        except Exception:  # psutil missing or no /proc: the load is reported as unknown (NaN)
            self._psutil = None

    def snapshot(self) -> tuple[float, float, float] | None:
        if self._psutil is None:
            return None
        own = self._proc.cpu_times()
        return (time.perf_counter(), _busy_s(self._psutil.cpu_times()), own.user + own.system)

    def since(self, snap: tuple[float, float, float] | None) -> float:
        now = self.snapshot()
        if snap is None or now is None:
            return math.nan
        wall = now[0] - snap[0]
        if wall < self.MIN_INTERVAL_S:
            return math.nan
        other = (now[1] - snap[1]) - (now[2] - snap[2])
        return max(0.0, other / wall)

    def sample(self, seconds: float = 0.2) -> float:
        """Background load over the next ``seconds`` (sleeps)."""
        snap = self.snapshot()
        time.sleep(seconds)
        return self.since(snap)


def free_cores(load: float | None = None, *, seconds: float = 0.2) -> int:
    """Usable cores minus the background load (rounded to the nearest core), at least 1."""
    if load is None:
        load = LoadMonitor().sample(seconds)
    cores = usable_cores()
    if load is None or math.isnan(load):
        return cores
    return int(max(1, min(cores, round(cores - load))))



def _noop(*_: Any) -> None:
    return None


def adaptive_time(fn: Callable[[], Any], policy: TimingPolicy | None = None, *,
                  clock: Callable[[], float] = time.perf_counter,
                  synchronize: Callable[[], Any] | None = None,
                  load: LoadMonitor | None = None,
                  on_round: Callable[[int, float], Any] | None = None,
                  threads: int = 0, prior: Timing | None = None) -> Timing:
    """Warm ``fn`` up, then time it in rounds until the stop rule (module docstring) ends it.

    ``prior``: the raw timing of an earlier pass over the same point (another process, minutes
    earlier, other points measured in between). This pass warms up again, keeps ``prior``'s
    ``calls_per_sample``, numbers its rounds after ``prior``'s, counts ``prior.elapsed_s``
    against ``time_budget_s``, takes at least one round, and judges the stop rule on ALL the
    samples (the rounds of both passes must agree). The result holds both passes' samples.

    ``clock()`` returns seconds; ``synchronize()`` (e.g. ``torch.cuda.synchronize``) is called
    before every clock read. ``load`` records the background load (none without it); with
    ``threads`` (the threads ``fn`` runs on) it also judges contention.
    ``on_round(round_index, budget_fraction_spent)`` is called after each round (progress).
    """
    p = policy or TimingPolicy()
    sync = synchronize or _noop
    report = on_round or _noop
    snap = load.snapshot() if load is not None else None

    # --- warm-up (also estimates the cost of one call)
    call_times: list[float] = []
    sync()
    w0 = clock()
    while len(call_times) < p.warmup_calls or (clock() - w0) < p.warmup_s:
        if call_times and clock() - w0 >= p.time_budget_s:
            break  # a very slow call: do not spend more than the budget warming up
        t0 = clock()
        fn()
        sync()
        call_times.append(clock() - t0)
    warm_s = clock() - w0
    load_before = load.since(snap) if load is not None else math.nan
    if prior is not None:
        return _continue(fn, p, prior, clock=clock, sync=sync, load=load, report=report, threads=threads,
                         warm_s=warm_s, warm_calls=len(call_times), load_before=load_before)
    if call_times:
        est = float(np.median(call_times[1:] if len(call_times) > 1 else call_times))
    else:
        sync()
        t0 = clock()
        fn()
        sync()
        est = clock() - t0
    if p.min_sample_s <= 0 or est >= p.min_sample_s:
        cps = 1
    elif est <= 0:
        cps = p.max_calls_per_sample
    else:
        cps = int(min(p.max_calls_per_sample, math.ceil(p.min_sample_s / est)))

    # --- rounds
    samples: list[float] = []
    rounds: list[int] = []
    load_rounds: list[float] = []
    round_cap_s = p.time_budget_s / p.min_rounds
    whole = load.snapshot() if load is not None else None
    cores = usable_cores() if load is not None else 0
    sync()
    start = clock()
    result: Verdict | None = None
    r = 0
    while True:
        snap = load.snapshot() if load is not None else None
        _one_round(fn, cps, p, r, samples, rounds, round_cap_s, clock=clock, sync=sync,
                   spent=lambda t: t - start)
        if load is not None:
            load_rounds.append(load.since(snap))
        now = clock()
        spent = (now - start >= p.time_budget_s or len(samples) >= p.max_repeats
                 or r + 1 >= p.max_rounds)
        report(r, min(1.0, (now - start) / p.time_budget_s))
        r += 1
        if r >= p.min_rounds or spent:
            so_far = load.since(whole) if load is not None else math.nan
            v = verdict(np.asarray(samples) / cps, rounds, p, budget_spent=spent, load=so_far,
                        threads=threads, cores=cores)
            if v.reason:
                result = v
                break
    return Timing(sample_times_s=tuple(samples), calls_per_sample=cps, stop_reason=result.reason,
                  elapsed_s=clock() - start, warmup_s=warm_s, warmup_calls=len(call_times),
                  confidence=p.confidence, sample_rounds=tuple(rounds), why=result.why,
                  load_before=load_before, load_rounds=tuple(load_rounds),
                  load_during=load.since(whole) if load is not None else math.nan,
                  threads=int(threads), cores=int(cores))


def _one_round(fn: Callable[[], Any], cps: int, p: TimingPolicy, r: int, samples: list[float],
               rounds: list[int], round_cap_s: float, *, clock: Callable[[], float],
               sync: Callable[[], Any], spent: Callable[[float], float]) -> None:
    """Time round ``r``: samples of ``cps`` calls each, appended to ``samples`` / ``rounds``, until
    the round has ``samples_per_round`` samples and lasts ``min_round_s``, or reaches its cap, the
    budget (``spent(t)``: timing seconds used at clock ``t``) or ``max_repeats``."""
    r0 = clock()
    taken = 0
    while True:
        t0 = clock()
        for _ in range(cps):
            fn()
        sync()
        t1 = clock()
        samples.append(t1 - t0)
        rounds.append(r)
        taken += 1
        if ((taken >= p.samples_per_round and t1 - r0 >= p.min_round_s) or t1 - r0 >= round_cap_s
                or spent(t1) >= p.time_budget_s or len(samples) >= p.max_repeats):
            return


def _weighted_load(a: float, wa: float, b: float, wb: float) -> float:
    vals = [(v, w) for v, w in ((a, wa), (b, wb)) if not math.isnan(v) and w > 0]
    if not vals:
        return math.nan
    return float(sum(v * w for v, w in vals) / sum(w for _, w in vals))


def _continue(fn: Callable[[], Any], p: TimingPolicy, prior: Timing, *, clock: Callable[[], float],
              sync: Callable[[], Any], load: LoadMonitor | None, report: Callable[[int, float], Any],
              threads: int, warm_s: float, warm_calls: int, load_before: float) -> Timing:
    """The rounds of a later pass after ``prior`` (see :func:`adaptive_time`)."""
    cps = prior.calls_per_sample
    samples = list(prior.sample_times_s)
    rounds = list(prior.sample_rounds)
    load_rounds = list(prior.load_rounds)
    r = (max(rounds) + 1) if rounds else 0
    first_r = r
    round_cap_s = p.time_budget_s / p.min_rounds
    whole = load.snapshot() if load is not None else None
    cores = usable_cores() if load is not None else (prior.cores or 0)
    sync()
    start = clock()

    def used() -> float:
        return prior.elapsed_s + (clock() - start)

    result: Verdict | None = None
    while True:
        snap = load.snapshot() if load is not None else None
        _one_round(fn, cps, p, r, samples, rounds, round_cap_s, clock=clock, sync=sync,
                   spent=lambda t: prior.elapsed_s + (t - start))
        if load is not None:
            load_rounds.append(load.since(snap))
        spent = used() >= p.time_budget_s or len(samples) >= p.max_repeats or r + 1 >= p.max_rounds
        report(r, min(1.0, used() / p.time_budget_s))
        r += 1
        here = load.since(whole) if load is not None else math.nan
        so_far = _weighted_load(prior.load_during, prior.elapsed_s, here, clock() - start)
        v = verdict(np.asarray(samples) / cps, rounds, p, budget_spent=spent, load=so_far,
                    threads=threads, cores=cores)
        if v.reason and r > first_r:
            result = v
            break
    elapsed = clock() - start
    here = load.since(whole) if load is not None else math.nan
    return Timing(sample_times_s=tuple(samples), calls_per_sample=cps, stop_reason=result.reason,
                  elapsed_s=prior.elapsed_s + elapsed, warmup_s=prior.warmup_s + warm_s,
                  warmup_calls=prior.warmup_calls + warm_calls, confidence=p.confidence,
                  sample_rounds=tuple(rounds), why=result.why,
                  load_before=prior.load_before if not math.isnan(prior.load_before) else load_before,
                  load_rounds=tuple(load_rounds),
                  load_during=_weighted_load(prior.load_during, prior.elapsed_s, here, elapsed),
                  threads=int(threads), cores=int(cores))
