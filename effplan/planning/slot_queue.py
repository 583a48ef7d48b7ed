"""Waiting for a slot: the queueing term of a generation plan's TTFT (numpy only).

An instance serving at concurrency ``c`` has ``c`` slots; a request holds one for its whole
service, ``S = TTFT + N x TPOT`` (``TPOT`` the capacity figure: the mean decode step where
measured, :func:`capacity_tpot_ms`). Requests arrive as a Poisson stream; the plan provisions
instances so that each runs at most at ``target_utilization``, ``rho``. A request that finds
every slot busy waits: an M/G/c queue, for which :func:`effplan.queueing.queue_wait_s` (the
same module inference plans use) gives Allen-Cunneen's estimate with ``ca2 = 1`` (Poisson) and
``cs2 =`` :data:`SERVICE_CS2`. Its p95, ``Wq_p95 = max(0, ln(C(c, c rho) / 0.05)) x S x (1 +
cs2) / 2 / (c (1 - rho))``, is exact for M/M/c (``cs2 = 1``; ``C`` Erlang's C).

``ttft_e2e_p95_ms = ttft_p95_ms + Wq_p95`` (the sum of the two p95s, an upper bound on the p95 of
the sum, as :func:`effplan.queueing.end_to_end_p95_s`), and the TTFT target is checked on it.
"""

from __future__ import annotations

import numpy as np

from . import queueing as _q

__all__ = ["SERVICE_CS2", "slot_wait_ms", "capacity_tpot_ms"]

#: squared coefficient of variation of a request's service time. Response lengths vary about as
#: widely as an exponential distribution (cs2 = 1) in chat traffic, so M/M/c is assumed: the
#: conservative end (cs2 = 0, fixed lengths, halves the wait).
SERVICE_CS2 = 1.0


def slot_wait_ms(service_ms: object, concurrency: object, utilization: object,
                 cs2: float = SERVICE_CS2) -> tuple[np.ndarray, np.ndarray]:
    """(mean, p95) wait for one of ``concurrency`` slots, ms (see the module docstring)."""
    s = np.asarray(service_ms, dtype=float) / 1e3
    c = np.maximum(np.asarray(concurrency, dtype=float), 1.0)
    rho = np.asarray(utilization, dtype=float)
    mean, p95 = _q.queue_wait_s(np.nan_to_num(s), rho, np.nan_to_num(c, nan=1.0), 1.0, cs2)
    bad = ~np.isfinite(s)
    return np.where(bad, np.nan, mean * 1e3), np.where(bad, np.nan, p95 * 1e3)


def capacity_tpot_ms(tpot_p50_ms: object, tpot_mean_ms: object) -> np.ndarray:
    """The TPOT capacity is planned with: the mean decode step where known (serving engines
    report throughput as tokens over time, i.e. the mean), else the median."""
    p50 = np.asarray(tpot_p50_ms, dtype=float)
    mean = np.asarray(tpot_mean_ms, dtype=float)
    return np.where(np.isfinite(mean) & (mean > 0), mean, p50)
