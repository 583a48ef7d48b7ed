"""Interpolation between measured batch sizes (log-log, monotone, never extrapolated)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from effplan.batching import interpolate_batches, next_batch_to_measure


def _rows():
    # batch 1, 4, 16: p95 0.1, 0.2, 0.8 ms; throughput 10k, 20k, 20k items/s
    return pd.DataFrame({
        "candidate": ["a"] * 3, "hardware": ["cpu"] * 3, "batch_size": [1, 4, 16],
        "latency_p95_ms": [0.1, 0.2, 0.8], "latency_mean_ms": [0.09, 0.18, 0.7],
        "throughput_items_per_s": [10_000.0, 20_000.0, 20_000.0],
        "energy_per_item_j": [1e-3, 5e-4, 5e-4], "provenance": ["measured"] * 3,
    })


def test_batch_8_is_the_geometric_mean_of_its_neighbours():
    """log 8 is halfway between log 4 and log 16: y(8) = sqrt(y(4) * y(16)).
    p95: sqrt(0.2 * 0.8) = 0.4 ms; throughput sqrt(20k * 20k) = 20k."""
    r = interpolate_batches(_rows()).set_index("batch_size")
    assert r.loc[8, "latency_p95_ms"] == pytest.approx(0.4)
    assert r.loc[8, "throughput_items_per_s"] == pytest.approx(20_000.0)
    assert r.loc[8, "batch_source"] == "interpolated" and r.loc[8, "batch_neighbours"] == "4-16"
    # batch 2 between 1 and 4: x = log2 / log4 = 0.5 -> sqrt(0.1 * 0.2), sqrt(10k * 20k)
    assert r.loc[2, "latency_p95_ms"] == pytest.approx(math.sqrt(0.02))
    assert r.loc[2, "throughput_items_per_s"] == pytest.approx(math.sqrt(2e8))
    assert r.loc[4, "batch_source"] == "measured" and r.loc[4, "batch_neighbours"] == ""
    assert r.loc[8, "provenance"] == "measured"  # timing provenance of the neighbours is kept


def test_never_extrapolates():
    r = interpolate_batches(_rows())
    assert r["batch_size"].min() == 1 and r["batch_size"].max() == 16
    assert next_batch_to_measure(16) == 32


def test_monotone_latency_even_with_noisy_measurements():
    rows = _rows()
    rows.loc[2, "latency_p95_ms"] = 0.15  # batch 16 measured faster than batch 4 (noise)
    r = interpolate_batches(rows)
    interp = r[r["batch_source"] == "interpolated"]
    # 4-16: latency made non-decreasing (cummax 0.2, 0.2): never below batch 4's 0.2 ms
    upper = interp[interp["batch_neighbours"] == "4-16"]["latency_p95_ms"]
    assert len(upper) and list(upper) == pytest.approx([0.2] * len(upper))
    lower = interp[interp["batch_neighbours"] == "1-4"]["latency_p95_ms"]
    assert ((lower > 0.1) & (lower < 0.2)).all() and lower.is_monotonic_increasing


def test_unusable_rows_are_kept_but_not_neighbours():
    rows = _rows()
    rows.loc[1, "throughput_items_per_s"] = float("nan")
    r = interpolate_batches(rows)
    assert len(r[r["batch_source"] == "measured"]) == 3
    # only 1 and 16 remain as neighbours
    assert set(r.loc[r["batch_source"] == "interpolated", "batch_neighbours"]) == {"1-16"}


def test_single_point_adds_nothing():
    r = interpolate_batches(_rows().iloc[:1])
    assert len(r) == 1 and r["batch_source"].iloc[0] == "measured"


def test_stability_flags_take_the_worse_neighbour():
    """An interpolated point rests on both measurements: it is flagged when either is, with
    the larger spread X and background load N of the two (effplan.planning.stability)."""
    rows = _rows().assign(timing_unstable=[False, True, False],
                          timing_spread_rel=[float("nan"), 0.12, float("nan")],
                          background_load=[0.2, 1.7, 0.4])
    r = interpolate_batches(rows).set_index("batch_size")
    assert r.loc[2, "timing_unstable"] and r.loc[8, "timing_unstable"]   # 1-4 and 4-16 touch batch 4
    assert r.loc[2, "timing_spread_rel"] == 0.12 and r.loc[8, "timing_spread_rel"] == 0.12
    assert (r.loc[2, "background_load"], r.loc[8, "background_load"]) == (1.7, 1.7)
    quiet = interpolate_batches(rows.assign(timing_unstable=False, background_load=[0.2, 0.3, 0.4]))
    mid = quiet.set_index("batch_size").loc[8]
    assert not mid["timing_unstable"] and mid["background_load"] == 0.4
