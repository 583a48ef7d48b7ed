"""Old import path of the timing harness and its record (kept so that existing imports keep
working): taking samples lives in :mod:`effplan.bench.timing`, the raw-sample record and the stop
rule in :mod:`effplan.records.samples`."""

from .bench.timing import LoadMonitor, adaptive_time, free_cores, usable_cores  # noqa: F401
from .records.samples import (STALL_FACTOR, STOP_REASONS, Diagnosis, Timing, TimingPolicy, Verdict,  # noqa: F401
                              ci_rel, diagnose, median_ci, round_spread_rel, verdict)

__all__ = ["TimingPolicy", "Timing", "Diagnosis", "Verdict", "adaptive_time", "median_ci", "diagnose",
           "verdict", "LoadMonitor", "free_cores", "usable_cores", "STOP_REASONS", "STALL_FACTOR",
           "ci_rel", "round_spread_rel"]
