"""Latency under load: batch formation, queueing delay and the end-to-end p95 the SLO is checked on.

numpy only, vectorized over any number of options. Times are in seconds unless a name says
``_ms``.

The model (one instance = one server that runs one batch at a time)
--------------------------------------------------------------------
Items arrive at an instance as a Poisson stream of rate ``lam`` items/s; a batch of ``B`` items
is dispatched when it is full, or when its first item has waited ``max_wait_s``.

* **Batch formation.** The item in position ``j`` of a batch (1 = first) waits for the
  ``B - j`` arrivals after it: a Gamma(``B - j``, ``lam``) time. Over all items of a batch the
  wait ``F`` satisfies ``P(F > t) = (1/B) * sum_{k=1}^{B-1} P(Gamma(k, lam) > t)
  = (1/B) * sum_{i=0}^{B-2} (B - 1 - i) * Poisson(i; lam * t)``; :func:`batch_fill_p95_s` solves
  ``P(F > t) = 0.05`` (exact for the model; bisection), capped at ``max_wait_s``. The mean fill
  time of a whole batch is ``(B - 1) / lam``; a batch that on average cannot fill within
  ``max_wait_s`` is not a usable operating point (it would run part-empty).
* **Queueing** (batches waiting for the instance). Allen-Cunneen's G/G/c approximation:
  ``Wq = (ca2 + cs2) / 2 * Wq(M/M/c)``, with ``Wq(M/M/c) = C(c, a) * S / (c * (1 - rho))``,
  ``C`` Erlang's C formula, ``a = c * rho`` the offered load, ``S`` the mean service time (the
  batch latency) and ``rho`` the utilization per server. Batches formed from ``B`` Poisson
  arrivals arrive as an Erlang-``B`` stream, ``ca2 = 1 / B``; ``cs2`` is the squared coefficient
  of variation of the service time (0 = deterministic). The tail uses the M/M/c shape with the
  Allen-Cunneen scale: ``P(Wq > t) = C * exp(-t * c * (1 - rho) / (S * (ca2 + cs2) / 2))``, so
  ``Wq_p95 = max(0, ln(C / 0.05)) * S * (ca2 + cs2) / 2 / (c * (1 - rho))``. For M/M/1
  (``ca2 = cs2 = 1``) mean and p95 are exact; for M/D/1 (``cs2 = 0``) the mean is exact
  (Pollaczek-Khinchine); otherwise both are approximations.
* **End to end.** ``p95 = fill_p95 + Wq_p95 + service_p95`` -- the sum of the three p95s, an upper
  bound on the p95 of the sum (the parts are not perfectly correlated), so the check is
  conservative.
"""

from __future__ import annotations

import numpy as np

__all__ = ["batch_fill_p95_s", "erlang_c", "queue_wait_s", "end_to_end_p95_s"]

_TAIL = 0.05  # p95


def _as(x: object) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _fill_tail(t: np.ndarray, b: np.ndarray, lam: np.ndarray, log_fact: np.ndarray) -> np.ndarray:
    """P(F > t) for batch sizes ``b`` at rates ``lam`` (1-D arrays of one length)."""
    x = lam * t                                           # Poisson mean
    n = int(b.max()) - 1                                  # i = 0 .. B-2 at most
    i = np.arange(max(n, 1), dtype=float)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = -x[:, None] + i * np.log(np.where(x > 0, x, 1.0))[:, None] - log_fact[None, :i.shape[1]]
    p = np.exp(logp)
    p = np.where(x[:, None] > 0, p, (i == 0).astype(float))
    weight = np.clip(b[:, None] - 1.0 - i, 0.0, None)    # (B - 1 - i) for i <= B-2, else 0
    return (weight * p).sum(axis=1) / b


def batch_fill_p95_s(batch_size: object, arrival_rate_per_s: object,
                     max_wait_s: object = np.inf) -> np.ndarray:
    """p95 over items of the time an item waits for its batch to fill (see module docstring).

    0 for ``batch_size == 1``; ``max_wait_s`` caps it; ``inf`` where the rate is 0 and the batch
    needs more than one item (it never fills without a cap).
    """
    b, lam = np.broadcast_arrays(_as(batch_size), _as(arrival_rate_per_s))
    cap = np.broadcast_to(_as(max_wait_s), b.shape)
    shape = b.shape
    b, lam, cap = b.ravel(), lam.ravel(), cap.ravel()
    out = np.zeros(b.shape)
    need = b > 1
    dead = need & ~(lam > 0)
    out[dead] = np.inf
    work = need & ~dead
    if work.any():
        # P(F > t) depends on B and lam * t only: solve once per distinct B for x = lam * t
        sizes, inv = np.unique(b[work], return_inverse=True)
        nmax = int(sizes.max())
        log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, max(nmax, 2))))])
        ones = np.ones(sizes.shape)
        # P(F > 0) = (B-1)/B >= 0.5 > 0.05; the tail at x = B + 10 sqrt(B) + 10 is < 0.05
        lo = np.zeros(sizes.shape)
        hi = sizes + 10.0 * np.sqrt(sizes) + 10.0
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            above = _fill_tail(mid, sizes, ones, log_fact) > _TAIL
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        out[work] = hi[inv.ravel()] / lam[work]
    return np.minimum(out, cap).reshape(shape)


def erlang_c(servers: object, utilization: object) -> np.ndarray:
    """Erlang's C: probability that an arrival waits in an M/M/c queue with ``servers`` = c and
    per-server ``utilization`` rho (< 1; 1 where rho >= 1)."""
    c, rho = np.broadcast_arrays(_as(servers), _as(utilization))
    a = c * rho
    cmax = int(np.nanmax(c)) if c.size else 1
    term = np.ones(c.shape)      # a^k / k!
    partial = np.zeros(c.shape)  # sum_{k < c} a^k / k!
    for k in range(cmax):
        partial += np.where(k < c, term, 0.0)
        term = np.where(k < c, term * a / (k + 1), term)
    # now term = a^c / c! for each element
    with np.errstate(divide="ignore", invalid="ignore"):
        top = term / (1.0 - rho)
        res = top / (partial + top)
    return np.where(rho >= 1.0, 1.0, np.where(rho <= 0.0, 0.0, res))


def queue_wait_s(service_mean_s: object, utilization: object, servers: object = 1,
                 ca2: object = 1.0, cs2: object = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(mean, p95) queueing delay before service, Allen-Cunneen G/G/c (module docstring).

    ``inf`` where ``utilization >= 1`` (the queue grows without bound).
    """
    s, rho, c, a2, s2 = np.broadcast_arrays(_as(service_mean_s), _as(utilization), _as(servers),
                                            _as(ca2), _as(cs2))
    pw = erlang_c(c, rho)
    scale = (a2 + s2) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        base = s / (c * (1.0 - rho))
        mean = scale * pw * base
        p95 = scale * base * np.log(np.where(pw > _TAIL, pw / _TAIL, 1.0))
    unstable = rho >= 1.0
    return np.where(unstable, np.inf, mean), np.where(unstable, np.inf, p95)


def end_to_end_p95_s(batch_size: object, arrival_rate_per_s: object, service_mean_s: object,
                     service_p95_s: object, utilization: object, *, max_wait_s: object = np.inf,
                     servers: object = 1, cs2: object = 0.0) -> dict[str, np.ndarray]:
    """Batch formation p95 + queueing p95 + service p95, and the parts (all in seconds).

    ``arrival_rate_per_s`` is the item rate one instance sees; ``utilization`` its busy share
    (item rate / throughput at this batch size). Returns ``fill_p95_s``, ``queue_p95_s``,
    ``queue_mean_s``, ``service_p95_s``, ``e2e_p95_s`` and ``fills`` (the mean fill time of a
    batch, ``(B - 1) / rate``, is within ``max_wait_s``).
    """
    b = _as(batch_size)
    lam = _as(arrival_rate_per_s)
    fill = batch_fill_p95_s(b, lam, max_wait_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_fill = np.where(b > 1, (b - 1.0) / lam, 0.0)
    fills = mean_fill <= _as(max_wait_s)
    q_mean, q_p95 = queue_wait_s(service_mean_s, utilization, servers, 1.0 / np.maximum(b, 1.0),
                                 cs2)
    sp95 = np.broadcast_to(_as(service_p95_s), np.broadcast(b, lam).shape)
    return {"fill_p95_s": fill, "queue_p95_s": q_p95, "queue_mean_s": q_mean,
            "service_p95_s": sp95, "e2e_p95_s": fill + q_p95 + sp95, "fills": fills}
