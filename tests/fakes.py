"""Swappable stand-ins shared by the measurement and generation tests: a clock that only moves
when the fake workload says so, and an energy meter at constant power on that clock."""

from __future__ import annotations


class FakeClock:
    """Seconds that only move when the fake workload says so."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeMeter:
    """An ``EnergyMeter``-like context manager: ``power_w`` x the fake clock's duration, source
    ``rapl``; ``min_window_s`` is the shortest window it resolves."""

    min_window_s = 0.5

    def __init__(self, clock: FakeClock, power_w: float = 50.0, min_window_s: float | None = None) -> None:
        self.clock, self.power_w, self.source = clock, power_w, "rapl"
        if min_window_s is not None:
            self.min_window_s = min_window_s

    def __enter__(self):
        self._t0 = self.clock()
        return self

    def __exit__(self, *exc):
        self.duration_s = self.clock() - self._t0
        self.energy_j = self.power_w * self.duration_s
        self.avg_power_w = self.power_w
        return False
