"""Property tests (hypothesis) on the loaders and the planner (issue 10).

* a store round trip equals what was written;
* a results file of arbitrary bytes never raises anything but effplan's documented errors, and
  the good lines in it always load;
* planner: costs finite and >= 0; more traffic never costs less (cloud and on-premises);
  instances >= min_replicas and > 0 when traffic > 0; only documented exceptions.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from effplan.records import store
from effplan.errors import EffplanError, EffplanWarning
from effplan.records.schema import MAX_EXACT_INT, MEASUREMENT_COLUMNS, normalize_measurements

# derandomize: CI explores the same examples every run (no flaky discoveries); the cases hypothesis
# found while this was written are pinned below with @example
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12) \
    .filter(lambda s: s.strip() != "")
finite = st.floats(min_value=0.0, max_value=1e300, allow_nan=False, allow_infinity=False)


@st.composite
def rows(draw):
    # status "ok" rows; idle power kept <= busy power (a higher one is accepted with a warning)
    throughput = draw(st.floats(min_value=1e-3, max_value=1e9))
    energy = draw(st.floats(min_value=1e-6, max_value=1e6))
    return {
        "candidate": draw(names), "hardware": draw(names),
        "mode": draw(st.sampled_from(["inference", "training"])),
        "batch_size": draw(st.integers(min_value=1, max_value=MAX_EXACT_INT)),
        "latency_p95_ms": draw(finite), "throughput_items_per_s": throughput,
        "energy_per_item_j": energy,
        "idle_power_w": draw(st.floats(min_value=0.0, max_value=1.0)) * energy * throughput,
        "params": draw(st.one_of(st.none(), st.integers(min_value=0, max_value=MAX_EXACT_INT))),
        "quality": draw(st.one_of(st.none(), st.floats(min_value=0, max_value=1))),
        "tags": draw(st.text(max_size=8)),
        "provenance": draw(st.sampled_from(["measured", "estimated", "projected", "entered"])),
    }


@SETTINGS
@given(st.lists(rows(), min_size=1, max_size=5))
def test_store_round_trip_equals_what_was_written(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("rt") / "r.jsonl"
    written = normalize_measurements(pd.DataFrame(data))
    store.save_frame(written, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, nothing suspicious
        # every record back, duplicates included (the default keeps the newest of a point)
        back = store.load(path, duplicates="all")
    pd.testing.assert_frame_equal(back.drop(columns="source_file"), written)
    assert back["batch_size"].tolist() == [r["batch_size"] for r in data]  # exact, even near 2**53


GOOD = json.dumps({"candidate": "m", "hardware": "h", "mode": "inference", "batch_size": 4,
                   "latency_p95_ms": 2.0, "throughput_items_per_s": 100.0, "energy_per_item_j": 0.5,
                   "idle_power_w": 5.0, "schema_version": 1}).encode()

hostile_line = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"[" * 5000, b'{"a":' * 3000, b"Infinity", b"NaN", b"\xef\xbb\xbf" + GOOD, b"1e400",
                     b"9" * 5000, b"null", b"{}", b'{"batch_size": true}']),
    st.builds(lambda k, v: GOOD.replace(b'"batch_size": 4', b'"batch_size": ' + v) if k else
              GOOD.replace(b'"latency_p95_ms": 2.0', b'"latency_p95_ms": ' + v),
              st.booleans(), st.sampled_from([b"1e400", b"-1", b"2.5", b"true", b"Infinity", b"NaN",
                                              b"9" * 400, b'"x"', b"null", b"[1]", b"{}",
                                              str(2 ** 53 + 1).encode()])),
)


@SETTINGS
@given(st.lists(hostile_line, min_size=1, max_size=4), st.booleans())
def test_loader_never_raises_and_good_rows_always_load(tmp_path_factory, lines, crlf):
    path = tmp_path_factory.mktemp("hostile") / "r.jsonl"
    end = b"\r\n" if crlf else b"\n"
    body = [GOOD] + [ln.replace(b"\n", b" ").replace(b"\r", b" ") for ln in lines] + [GOOD]
    path.write_bytes(end.join(body) + end)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        try:
            back = store.load(path, duplicates="all")  # the two GOOD lines are one point
        except EffplanError:  # documented; but a good first and last line must never be lost
            pytest.fail("load(on_error='warn') raised for a file with good rows")
    good = back[(back["candidate"] == "m") & (back["hardware"] == "h")]
    assert len(good) >= 2
    assert list(back.columns)[:len(MEASUREMENT_COLUMNS)] == list(MEASUREMENT_COLUMNS)
    numeric = [c for c, (k, _) in MEASUREMENT_COLUMNS.items() if k in ("int", "float")]
    values = back[numeric].to_numpy(dtype=float)
    assert not np.isinf(values).any()
    assert (np.nan_to_num(values, nan=0.0) >= 0).all()
    with pytest.raises(EffplanError) if len(back.attrs["errors"]) else _nothing():
        store.load(path, on_error="raise")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --------------------------------------------------------------------------------------------
# the planner
# --------------------------------------------------------------------------------------------

@st.composite
def plan_inputs(draw):
    throughput = draw(st.floats(min_value=1e-3, max_value=1e7))
    energy = draw(st.floats(min_value=0.0, max_value=1e4))
    row = dict(candidate="m", hardware="lab", mode="inference", batch_size=draw(st.integers(1, 4096)),
               latency_p95_ms=draw(st.floats(min_value=0.0, max_value=1e5)),
               throughput_items_per_s=throughput, energy_per_item_j=energy,
               # idle power anywhere, even above busy power (accepted with a warning)
               idle_power_w=draw(st.floats(min_value=0.0, max_value=2000.0)))
    workload = dict(
        requests_per_day=draw(st.floats(min_value=0.0, max_value=1e12)),
        monthly_growth=draw(st.floats(min_value=-0.5, max_value=0.5)),
        items_per_request=draw(st.floats(min_value=0.01, max_value=100.0)),
        peak_to_average=draw(st.floats(min_value=1.0, max_value=10.0)),
        target_utilization=draw(st.floats(min_value=0.01, max_value=1.0)),
        min_replicas=draw(st.integers(0, 5)), months=draw(st.integers(1, 24)),
        daily_profile=draw(st.one_of(st.none(), st.lists(st.floats(min_value=0.0, max_value=10.0),
                                                         min_size=24, max_size=24)
                                     .filter(lambda w: sum(w) > 0))))
    prices = dict(mode=draw(st.sampled_from(["cloud", "on-prem"])),
                  price=draw(st.floats(min_value=0.0, max_value=100.0)),
                  capex=draw(st.floats(min_value=0.0, max_value=1e5)),
                  electricity=draw(st.floats(min_value=0.0, max_value=1.0)))
    return row, workload, prices


def _plan(row, workload, prices, requests_per_day=None):
    from effplan.planning import InferenceWorkload, Prices, plan

    wl = dict(workload)
    if requests_per_day is not None:
        wl["requests_per_day"] = requests_per_day
    pr = Prices(mode=prices["mode"], price_per_hour={"lab": prices["price"]}, capex_usd={"lab": prices["capex"]},
                electricity_usd_per_kwh=prices["electricity"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        return plan(pd.DataFrame([row]), inference=InferenceWorkload(**wl), prices=pr)


_ROW = dict(candidate="m", hardware="lab", mode="inference", batch_size=1, latency_p95_ms=0.0,
            throughput_items_per_s=1042500.0, energy_per_item_j=0.0, idle_power_w=0.0)
_WL = dict(requests_per_day=2.2250738585e-313, monthly_growth=0.0, items_per_request=1.0,
           peak_to_average=1.0, target_utilization=1.0, min_replicas=0, months=1, daily_profile=None)
_PR = dict(mode="cloud", price=1.0, capex=0.0, electricity=0.0)


@SETTINGS
@given(plan_inputs())
# found by hypothesis: a load that underflows to 0 gave 0 instances; a per-request cost that
# overflowed to inf
@example((_ROW, _WL, _PR))
@example((dict(_ROW, throughput_items_per_s=1.0), dict(_WL, requests_per_day=1.1125369292536007e-308), _PR))
# the peak load (items/s) underflows to 0 while requests per month stay > 0: still 1 instance
@example((dict(_ROW, throughput_items_per_s=1.0), dict(_WL, requests_per_day=5e-324),
          dict(_PR, price=0.0)))
@example((dict(_ROW, idle_power_w=300.0, energy_per_item_j=1e-3), dict(_WL, requests_per_day=4.0),
          dict(_PR, mode="on-prem", capex=1000.0, electricity=0.2)))
def test_plan_figures_finite_non_negative_and_instances_cover_traffic(args):
    row, workload, prices = args
    try:
        p = _plan(row, workload, prices)
    except EffplanError:  # documented (e.g. an overflow named by its input)
        return
    m = p.monthly
    if not m["feasible"].iloc[0]:
        assert m["cost_usd"].isna().all()
        return
    for col in ("cost_usd", "energy_kwh", "co2_kg", "instances", "instance_hours", "requests"):
        v = m[col].to_numpy(float)
        assert np.isfinite(v).all() and (v >= 0).all(), col
    for frame in (m, p.quarterly, p.summary):
        assert not np.isinf(frame["cost_per_1k_requests_usd"].to_numpy(float)).any()
    inst = m["instances"].to_numpy(float)
    assert (inst >= workload["min_replicas"]).all()
    assert (inst[m["requests"].to_numpy(float) > 0] >= 1).all()


@SETTINGS
@given(plan_inputs(), st.floats(min_value=1.0, max_value=1e3))
def test_more_traffic_never_costs_less_cloud_and_on_prem(args, factor):
    row, workload, prices = args
    low = workload["requests_per_day"]
    try:
        a = _plan(row, workload, prices)
        b = _plan(row, workload, prices, requests_per_day=low * factor)
    except EffplanError:
        return
    ca, cb = a.monthly["cost_usd"].to_numpy(float), b.monthly["cost_usd"].to_numpy(float)
    if np.isnan(ca).all():
        return
    assert (cb >= ca * (1 - 1e-9) - 1e-9).all(), (ca, cb)


@SETTINGS
@given(st.fixed_dictionaries({
    "requests_per_day": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                                  st.integers(), st.booleans(), st.none()),
    "monthly_growth": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 20)),
    "months": st.one_of(st.integers(-2, 700), st.floats(allow_nan=True), st.text(max_size=3)),
    "min_replicas": st.one_of(st.integers(-2, 5), st.floats(), st.booleans()),
}), st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10 ** 400)))
def test_only_documented_exceptions(workload, energy):
    from effplan.planning import InferenceWorkload, plan

    row = dict(candidate="m", hardware="L4", mode="inference", batch_size=8, latency_p95_ms=20.0,
               throughput_items_per_s=1000.0, energy_per_item_j=energy, idle_power_w=20.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            p = plan(pd.DataFrame([row], dtype=object), inference=InferenceWorkload(**workload))
        except EffplanError:
            return
    v = p.monthly[["cost_usd", "energy_kwh", "instances"]].to_numpy(float)
    assert not np.isinf(v).any()
