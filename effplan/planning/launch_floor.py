"""The launch floor of a generation projection, calibrated on the source measurement (numpy only).

A row measured by effplan carries its operator calls per prefill / decode step
(``operator_calls_prefill`` / ``operator_calls_decode``). Charging each call the catalog's
per-operator overhead (``effplan/data/kernel_overhead.csv``: 20 us per eager CUDA call) can
exceed the whole measured time: Llama-3-8B's 1,653 calls per decode step would cost 33 ms, while
an A100 decodes the step in 12 ms (eager launches overlap the GPU's work; CUDA graphs remove
most of them). So the floor is calibrated:

* on the source: ``launch_src = min(calls x overhead_src, max(0, t_measured - roof_src))`` -- the
  launches can explain at most the measured time above the source's physical floor ``roof_src``
  (bytes read / HBM bandwidth, FLOPs / peak: the roofline at efficiency 1); where the source's
  roofline is unknown (hardware not in the catalog), at most half the measured time;
* on the target: ``launch_t = launch_src x overhead_t / overhead_src`` -- the same calls at the
  target's per-operator cost (the ``cuda`` or ``cpu`` row), so never more than the source's
  share scaled by the two devices' overheads;
* the roofline part keeps its calibrated efficiency ``eff = roof_src / (t_measured - launch_src)``
  (at most 1), and ``t_target = roof_t / eff + launch_t``;
* a target that beats the source on every catalog figure (peak, bandwidth, per-operator
  overhead) is never slower than the source: ``t_target = min(t_target, t_measured)`` there;
* every projection stays at or above the target's physical floor ``roof_t`` (``eff <= 1``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["source_launch_s", "target_launch_s", "never_slower"]


def source_launch_s(calls: np.ndarray, overhead_src_s: np.ndarray, measured_s: np.ndarray,
                    roof_src_s: np.ndarray) -> np.ndarray:
    """Launch time on the source (see the module docstring); 0 where the calls are unknown."""
    calls = np.asarray(calls, dtype=float)
    measured = np.asarray(measured_s, dtype=float)
    roof = np.asarray(roof_src_s, dtype=float)
    explainable = np.where(np.isfinite(roof), np.maximum(0.0, measured - roof), 0.5 * measured)
    out = np.minimum(calls * np.asarray(overhead_src_s, dtype=float), explainable)
    return np.where(np.isfinite(calls), out, 0.0)


def target_launch_s(launch_src_s: np.ndarray, overhead_src_s: np.ndarray, overhead_t_s: float) -> np.ndarray:
    """The source's launch time at the target's per-operator overhead."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(launch_src_s, dtype=float) * (float(overhead_t_s) / np.asarray(overhead_src_s, dtype=float))


def never_slower(t_target_s: np.ndarray, measured_s: np.ndarray, dominates: np.ndarray) -> np.ndarray:
    """``min(t_target, t_measured)`` where the target beats the source on every catalog figure."""
    t = np.asarray(t_target_s, dtype=float)
    return np.where(np.asarray(dominates, dtype=bool), np.fmin(t, np.asarray(measured_s, dtype=float)), t)
