"""Operating point: interpolation between measured batch sizes, latency under load, the cap on
batch formation (hand-computed where possible)."""

from __future__ import annotations

import importlib
import math

import pandas as pd
import pytest

from effplan.errors import ValidationError

P = importlib.import_module("effplan.planning")


def _issue_rows() -> pd.DataFrame:
    """The issue's case: batch 1, 4, 16 measured; p95 0.1, 0.3, 0.9 ms; 101k items/s at batch 4
    and 190k at 16 (items/s = batch / mean latency)."""
    return pd.DataFrame([dict(candidate="c", hardware="NVIDIA L4", mode="inference",
                              batch_size=b, latency_p95_ms=p95, throughput_items_per_s=t,
                              energy_per_item_j=1e-4, idle_power_w=20.0)
                         for b, p95, t in ((1, 0.1, 12_000.0), (4, 0.3, 101_000.0),
                                           (16, 0.9, 190_000.0))])


def test_interpolated_batch_meets_a_target_between_measured_points():
    """Target 0.49 ms on the batch's own p95. Between 4 and 16 the interpolated p95 is
    0.3 x 3^(log(b/4) / log 4); it stays <= 0.49 ms while log(0.49/0.3) / log 3 = 0.4465 >=
    log(b/4) / log 4, i.e. b <= 4 x 4^0.4465 = 7.43. Batch 8 (p95 sqrt(0.3 x 0.9) = 0.52 ms) is
    too slow; the chosen point is an interpolated batch in (4, 7.43], faster than batch 4."""
    prep = P.prepare(_issue_rows())
    opt = prep.choose(0.49).iloc[0]
    assert opt["batch_source"] == "interpolated" and opt["batch_neighbours"] == "4-16"
    b = opt["batch_size"]
    assert 4 < b <= 7.43
    x = math.log(b / 4) / math.log(4)
    assert opt["latency_p95_ms"] == pytest.approx(0.3 * 3 ** x)
    assert opt["throughput_items_per_s"] == pytest.approx(101_000 * (190_000 / 101_000) ** x)
    assert opt["throughput_items_per_s"] > 101_000  # better than the measured batch 4


def test_largest_measured_batch_says_measure_further():
    opt = P.prepare(_issue_rows()).choose(5.0).iloc[0]
    assert opt["batch_size"] == 16 and opt["batch_source"] == "measured"
    assert "measure batch 32 to go further" in opt["batch_note"]


def test_batches_that_never_fill_are_not_chosen():
    """The issue's case: 1.16 requests/s (100,224 a day). Batch 256 would take
    255 / 1.16 = 220 s on average to fill; end to end the target of 100 ms leaves batch 1."""
    rows = pd.DataFrame([dict(candidate="c", hardware="NVIDIA L4", mode="inference",
                              batch_size=b, latency_p95_ms=p95, throughput_items_per_s=t,
                              energy_per_item_j=1e-3, idle_power_w=20.0)
                         for b, p95, t in ((1, 2.0, 600.0), (256, 60.0, 8000.0))])
    w = P.InferenceWorkload(requests_per_day=1.16 * 86_400, slo_p95_ms=100, months=1)
    p = P.plan(rows, w, prices=P.Prices(price_per_hour={"L4": 1.0}))
    s = p.summary.iloc[0]
    assert s["batch_size"] == 1 and s["feasible"] and s["slo_met"]
    assert s["batch_fill_p95_ms"] == 0.0
    assert s["latency_e2e_p95_ms"] <= 100
    # on the batch's own p95 (no load) batch 256 would have been chosen
    assert P.prepare(rows).choose(100).iloc[0]["batch_size"] == 256


def test_max_batch_wait_caps_formation_and_drops_unfillable_batches():
    """1,000 items/s on one instance: batch 8 fills in 7 / 1000 = 7 ms on average. With
    max_batch_wait_ms = 5 it does not fill in time and is dropped; with 50 ms its fill p95
    (9.03 ms: (1/8) sum_{i<7} (7 - i) Poisson(i; 1000 t) = 0.05) is kept; with 8 ms it is
    capped at 8 ms."""
    rows = pd.DataFrame([dict(candidate="c", hardware="NVIDIA L4", mode="inference",
                              batch_size=b, latency_p95_ms=p95, throughput_items_per_s=t,
                              energy_per_item_j=1e-3, idle_power_w=20.0)
                         for b, p95, t in ((1, 0.2, 5000.0), (8, 0.5, 20000.0))])
    base = dict(requests_per_day=1000 * 86_400, target_utilization=0.9, months=1)
    prep = P.prepare(rows)
    short = prep.choose(P.InferenceWorkload(**base, max_batch_wait_ms=5)).iloc[0]
    assert short["batch_size"] < 8
    long_ = prep.choose(P.InferenceWorkload(**base, max_batch_wait_ms=50)).iloc[0]
    assert long_["batch_size"] == 8
    x = 1000 * long_["batch_fill_p95_ms"] / 1e3   # Poisson mean at the p95
    tail = sum((7 - i) * math.exp(-x) * x ** i / math.factorial(i) for i in range(7)) / 8
    assert tail == pytest.approx(0.05, rel=1e-6) and long_["batch_fill_p95_ms"] == pytest.approx(
        9.03, abs=0.01)
    capped = prep.choose(P.InferenceWorkload(**base, max_batch_wait_ms=8)).iloc[0]
    assert capped["batch_size"] == 8 and capped["batch_fill_p95_ms"] == 8.0
    with pytest.raises(ValidationError) as e:
        P.InferenceWorkload(1000, max_batch_wait_ms=-1)
    assert e.value.field == "max_batch_wait_ms"
    assert P.InferenceWorkload.from_dict(P.InferenceWorkload(10, max_batch_wait_ms=3).to_dict()) \
        .max_batch_wait_ms == 3
