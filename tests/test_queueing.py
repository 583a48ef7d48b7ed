"""Queueing and batch-formation formulas against closed forms (worked by hand in comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from effplan.queueing import batch_fill_p95_s, end_to_end_p95_s, erlang_c, queue_wait_s


def test_mm1_mean_and_p95_exact():
    """M/M/1, rho = 0.5, S = 10 ms: Wq = rho S / (1 - rho) = 10 ms;
    P(Wq > t) = rho exp(-(mu - lam) t), mu - lam = 50/s -> p95 = ln(0.5/0.05) / 50 = 46.05 ms."""
    mean, p95 = queue_wait_s(0.010, 0.5, 1, ca2=1.0, cs2=1.0)
    assert float(mean) == pytest.approx(0.010)
    assert float(p95) == pytest.approx(math.log(10) / 50)


def test_md1_mean_is_pollaczek_khinchine():
    """M/D/1, rho = 0.5, S = 10 ms: Wq = rho S / (2 (1 - rho)) = 5 ms."""
    mean, _ = queue_wait_s(0.010, 0.5, 1, ca2=1.0, cs2=0.0)
    assert float(mean) == pytest.approx(0.005)
    # rho = 0.8: 0.8 * 10 / (2 * 0.2) = 20 ms
    assert float(queue_wait_s(0.010, 0.8, 1, 1.0, 0.0)[0]) == pytest.approx(0.020)


def test_md1_mean_matches_a_simulation():
    """Lindley recursion W_{n+1} = max(0, W_n + S - A_{n+1}), 200k customers, fixed seed."""
    rng = np.random.default_rng(1)
    s, rho = 1.0, 0.7
    a = rng.exponential(s / rho, 200_000)
    w = np.empty_like(a)
    w[0] = 0.0
    for n in range(1, len(a)):
        w[n] = max(0.0, w[n - 1] + s - a[n])
    assert w[1000:].mean() == pytest.approx(float(queue_wait_s(s, rho, 1, 1.0, 0.0)[0]), rel=0.05)


def test_erlang_c_by_hand():
    """c = 2, rho = 0.5 -> a = 1: (a^2/2!)/(1 - rho) = 1; sum_{k<2} a^k/k! = 2 -> C = 1/3.
    c = 1: C = rho."""
    assert float(erlang_c(2, 0.5)) == pytest.approx(1 / 3)
    assert erlang_c([1, 1], [0.3, 0.9]) == pytest.approx([0.3, 0.9])
    # M/M/2, S = 1: Wq = C S / (c (1 - rho)) = (1/3) / 1
    assert float(queue_wait_s(1.0, 0.5, 2, 1.0, 1.0)[0]) == pytest.approx(1 / 3)


def test_overloaded_queue_is_infinite():
    mean, p95 = queue_wait_s(1.0, 1.0)
    assert np.isinf(mean) and np.isinf(p95)


def test_batch_fill_p95_by_hand():
    """B = 1: 0. B = 2: half the items wait Exp(lam), P(F > t) = exp(-lam t) / 2 = 0.05 ->
    t = ln(10) / lam."""
    assert float(batch_fill_p95_s(1, 5.0)) == 0.0
    assert float(batch_fill_p95_s(2, 4.0)) == pytest.approx(math.log(10) / 4.0, rel=1e-6)
    # B = 3: P(F > t) = (1/3) [2 e^{-x} + x e^{-x}] with x = lam t; check the root
    t = float(batch_fill_p95_s(3, 1.0))
    assert (2 + t) * math.exp(-t) / 3 == pytest.approx(0.05, rel=1e-6)
    # the cap, and a batch that can never fill
    assert float(batch_fill_p95_s(8, 1.0, max_wait_s=0.5)) == 0.5
    assert np.isinf(batch_fill_p95_s(8, 0.0))


def test_batch_fill_p95_matches_simulation():
    rng = np.random.default_rng(0)
    for b in (4, 16):
        t = np.cumsum(rng.exponential(1.0, b * 50_000)).reshape(-1, b)
        sim = np.percentile((t[:, -1:] - t).ravel(), 95)
        assert float(batch_fill_p95_s(b, 1.0)) == pytest.approx(sim, rel=0.03)


def test_end_to_end_sums_parts_and_flags_unfillable():
    r = end_to_end_p95_s([1, 64], [100.0, 100.0], [0.002, 0.02], [0.003, 0.03], [0.5, 0.5],
                         max_wait_s=0.1)
    assert r["e2e_p95_s"] == pytest.approx(r["fill_p95_s"] + r["queue_p95_s"] + r["service_p95_s"])
    # batch 64 at 100 items/s needs 0.63 s on average to fill: more than the 0.1 s cap
    assert list(r["fills"]) == [True, False]
    assert r["fill_p95_s"][0] == 0.0
