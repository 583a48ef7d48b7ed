"""The measurement harness, on tiny models with a fake clock: exact statistics, adaptive
stopping, failure rows, interruption, restored global state, training mode, the tidy frame."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace
from itertools import cycle

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import effplan
import importlib
from effplan.records import store
from effplan.models.candidates import Candidate
from effplan.errors import EffplanWarning, ValidationError
from effplan.records.measurements import Measurements
from effplan.records.samples import TimingPolicy, median_ci
from effplan.bench.timing import adaptive_time
from effplan.measurement import measure
from effplan.records.schema import MEASUREMENT_COLUMNS, PLAN_REQUIRED_COLUMNS
from fakes import FakeClock, FakeMeter  # noqa: E402

measure_mod = importlib.import_module("effplan.measurement")
probes = importlib.import_module("effplan.bench.probes")
points_mod = importlib.import_module("effplan.bench.points")
sweep_mod = importlib.import_module("effplan.bench.sweep")
configs_mod = importlib.import_module("effplan.bench.configs")

PEAK = 1e9  # stand-in catalog peak FLOP/s



class ClockedLinear(nn.Module):
    """Linear 4 -> 2 whose forward advances the fake clock by the next duration."""

    def __init__(self, clock: FakeClock, durations) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.clock = clock
        self.durations = iter(durations)

    def forward(self, x):
        self.clock.advance(next(self.durations))
        return self.fc(x)


class FakeFlops:
    def __init__(self, total):
        self.total, self.engine, self.coverage, self.params = total, "fake", 1.0, 10



@pytest.fixture
def fakes(monkeypatch):
    """Stand-ins for hardware, FLOPs (2 x MACs of the linear layers), catalog and idle power."""

    def count(model, inputs):
        bs = inputs.shape[0]
        macs = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
        return FakeFlops(2 * macs * bs)

    monkeypatch.setattr(probes, "hardware_facts", lambda dev: {"name": "Test CPU", "hardware_id": "hw1"})
    monkeypatch.setattr(probes, "count_model_flops", count)
    monkeypatch.setattr(probes, "peak_flops", lambda name, dtype: PEAK)
    monkeypatch.setattr(probes, "idle_power", lambda dev, s: 10.0)
    # in-process (the stand-ins above are patched into THIS process) and no 0.2 s load probe
    monkeypatch.setattr(configs_mod, "ISOLATE_DEFAULT", False)
    monkeypatch.setattr(configs_mod, "PASSES_DEFAULT", 1)  # exact fake-clock sequences: one pass
    monkeypatch.setattr(sweep_mod, "default_threads", lambda: 1)


def _exact_policy(n: int = 10, warmup: int = 2) -> TimingPolicy:
    return TimingPolicy(min_repeats=n, max_repeats=n, warmup_calls=warmup, warmup_s=0.0,
                        min_sample_s=0.0, time_budget_s=1e6, min_rounds=1, samples_per_round=n,
                        min_round_s=0.0)


def _tiny(name="tiny", **kw) -> Candidate:
    return Candidate(name, lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
                     lambda bs: torch.ones(bs, 4), **kw)


# ----------------------------------------------------------------------------- statistics
def test_median_ci_order_statistics():
    x = np.arange(1.0, 101.0)  # n = 100: ranks floor(50 - 9.8) = 40 and 100 - 40 + 1 = 61
    assert median_ci(x) == (40.0, 61.0)
    assert median_ci(np.arange(10.0)) == (0.0, 9.0)  # n = 10: ranks 1 and 10
    assert all(math.isnan(v) for v in median_ci([1.0, 2.0, 3.0]))


def test_exact_statistics_with_fake_clock(fakes):
    clock = FakeClock()
    ms = [k / 1000 for k in range(1, 11)]  # the 10 timed batches: 1..10 ms
    # 1 call to size the output, 2 warm-up calls, then the 10 timed ones
    cand = Candidate("lin", lambda: ClockedLinear(clock, [0.5] * 3 + ms), lambda bs: torch.ones(bs, 4))
    with pytest.warns(EffplanWarning, match="1 of 1 points are NOT stable: lin bs=4"):
        m = measure(cand, batch_sizes=(4,), device="cpu", timing=_exact_policy(), energy=False,
                    clock=clock, progress=False, retries=0)
    row = m.to_frame().iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["latency_p50_ms"] == pytest.approx(5.5)
    assert row["latency_mean_ms"] == pytest.approx(5.5)
    assert row["latency_p90_ms"] == pytest.approx(9.1)
    assert row["latency_p95_ms"] == pytest.approx(9.55)
    assert row["latency_p99_ms"] == pytest.approx(9.91)
    assert row["repeats"] == 10
    assert row["latency_ci_rel"] == pytest.approx((10 - 1) / 2 / 5.5)
    assert row["throughput_items_per_s"] == pytest.approx(4 / 0.0055)
    # FLOPs: 2 x (4 x 2) MACs per item; achieved = FLOPs/item x items/s; utilization vs peak
    assert row["flops_per_item"] == 16.0
    assert row["achieved_flops_per_s"] == pytest.approx(16 * 4 / 0.0055)
    assert row["utilization"] == pytest.approx(16 * 4 / 0.0055 / PEAK)
    # params 4*2 + 2 = 10 floats = 40 B; input 4x4 floats = 64 B and output 4x2 floats = 32 B
    assert (row["params"], row["param_bytes"]) == (10, 40.0)
    assert row["bytes_per_item"] == pytest.approx(40 / 4 + (64 + 32) / 4)
    assert (row["dtype"], row["hardware"], row["hardware_id"]) == ("float32", "Test CPU", "hw1")
    assert row["provenance"] == "measured" and row["energy_source"] == measure_mod.NO_ENERGY_SOURCE
    assert math.isnan(row["energy_per_item_j"])
    t = m.samples[("lin", "cpu", "inference", 4)]
    # 1..10 ms is no stable figure: half the samples are over 3x the 10th percentile (1.9 ms)
    assert t.calls_per_sample == 1 and t.stop_reason == "unstable" and not t.stable
    assert (row["stop_reason"], row["stable"], row["rounds"]) == ("unstable", False, 1)
    assert "50% of samples are stalls" in row["timing_note"]
    assert "1 point(s) NOT stable" in m._repr_html_() and m.summary()["stable"].tolist() == [False]
    np.testing.assert_allclose(t.times_ms, np.arange(1, 11))


def test_energy_window_and_per_item_division(fakes):
    clock = FakeClock()
    step = 1 / 64  # exact in binary: 0.5 s minimum window = 32 batches exactly
    cand = Candidate("lin", lambda: ClockedLinear(clock, cycle([step])), lambda bs: torch.ones(bs, 4))
    m = measure(cand, batch_sizes=(2,), device="cpu", timing=_exact_policy(), energy_window_s=0.1,
                clock=clock, energy_meter=lambda dev: FakeMeter(clock), progress=False)
    row = m.to_frame().iloc[0]
    assert row["energy_window_s"] == 0.5  # the meter's minimum window wins over 0.1 s
    assert row["energy_j"] == pytest.approx(25.0)  # 50 W x 0.5 s
    assert row["energy_per_item_j"] == pytest.approx(25.0 / (32 * 2))
    assert row["energy_per_batch_j"] == pytest.approx(25.0 / 32)
    assert row["energy_above_idle_per_item_j"] == pytest.approx((25.0 - 10.0 * 0.5) / 64)
    assert (row["idle_power_w"], row["avg_power_w"], row["energy_source"]) == (10.0, 50.0, "rapl")


# ----------------------------------------------------------------------------- adaptive stopping
def _fn(clock, durations):
    it = iter(durations)
    return lambda: clock.advance(next(it))


def test_adaptive_stops_early_when_stable():
    clock = FakeClock()
    pol = TimingPolicy(min_repeats=10, warmup_calls=3, warmup_s=0.0, min_sample_s=0.0, time_budget_s=5.0,
                       min_round_s=0.0)
    step = 2.0**-9  # exact in binary, so every sample is exactly equal
    t = adaptive_time(_fn(clock, cycle([step])), pol, clock=clock)
    assert t.stop_reason == "ci-met" and t.stable
    # judged after the 3rd round of 10 samples
    assert len(t.sample_times_s) == 30 and t.rounds == 3 and t.warmup_calls == 3
    assert t.sample_rounds == (0,) * 10 + (1,) * 10 + (2,) * 10
    assert t.ci_rel == 0.0 and t.median_ms == step * 1e3
    assert t.elapsed_s == 30 * step


def test_adaptive_two_modes_are_unstable_at_the_budget():
    clock = FakeClock()
    pol = TimingPolicy(min_repeats=10, warmup_calls=3, warmup_s=0.0, min_sample_s=0.0, time_budget_s=0.5)
    t = adaptive_time(_fn(clock, cycle([0.001, 0.003])), pol, clock=clock)
    assert t.stop_reason == "unstable" and not t.stable
    assert "two modes" in t.why
    assert t.ci_rel == pytest.approx(0.5)  # interval [1, 3] ms around a 2 ms median
    assert not t.meets_target(0.02)


def test_adaptive_imprecise_but_steady_stops_at_time_budget():
    clock = FakeClock()
    pol = TimingPolicy(min_repeats=10, warmup_calls=3, warmup_s=0.0, min_sample_s=0.0,
                       time_budget_s=0.5, target_ci_rel=1e-4, max_rounds=1000)
    # 1.00 .. 1.09 ms in even steps, each round the same: no stalls, no gap, rounds agree, CI
    # never within 0.01%
    t = adaptive_time(_fn(clock, cycle([1e-3 + k * 1e-5 for k in range(10)])), pol, clock=clock)
    assert t.stop_reason == "time-budget" and not t.stable
    assert 0.5 <= t.elapsed_s < 0.5 + 0.0015 + 1e-12
    assert "confidence target not met" in t.why


def test_short_calls_are_grouped_per_sample_and_divided():
    clock = FakeClock()
    pol = TimingPolicy(min_repeats=10, warmup_calls=3, warmup_s=0.0, min_sample_s=1e-3, time_budget_s=5.0)
    t = adaptive_time(_fn(clock, cycle([1e-5])), pol, clock=clock)
    assert t.calls_per_sample == 100
    assert t.median_ms == pytest.approx(0.01)
    assert t.repeats == 100 * len(t.sample_times_s)


def test_slow_call_warmup_does_not_exceed_budget():
    clock = FakeClock()
    pol = TimingPolicy(min_repeats=10, warmup_calls=3, warmup_s=0.0, time_budget_s=1.0)
    t = adaptive_time(_fn(clock, cycle([2.0])), pol, clock=clock)
    assert t.warmup_calls == 1 and len(t.sample_times_s) == 1
    assert t.stop_reason == "time-budget" and math.isnan(t.ci_rel)


def test_timing_policy_validation():
    with pytest.raises(ValidationError) as info:
        TimingPolicy(min_repeats=3)
    assert info.value.field == "min_repeats"
    with pytest.raises(ValidationError) as info:
        TimingPolicy(target_ci_rel=0)
    assert info.value.field == "target_ci_rel"


# ----------------------------------------------------------------------------- failures
def _boom():
    raise RuntimeError("cannot build")


def test_failures_are_rows_and_the_sweep_goes_on(fakes):
    def inputs(bs):
        if bs == 8:
            raise MemoryError("out of memory at bs=8")
        return torch.ones(bs, 4)

    cands = [Candidate("broken", _boom, lambda bs: torch.ones(bs, 4)),
             Candidate("picky", lambda: nn.Linear(4, 2), inputs), _tiny("fine")]
    with pytest.warns(EffplanWarning, match="4 of 9 points failed"):
        m = measure(cands, batch_sizes=(1, 8, 2), device="cpu", energy=False, time_budget_s=0.05,
                    progress=False)
    df = m.to_frame()
    assert list(df["candidate"]) == ["broken"] * 3 + ["picky"] * 3 + ["fine"] * 3
    assert list(df["status"]) == ["error"] * 3 + ["ok", "error", "ok"] + ["ok"] * 3
    assert df.loc[0, "error"] == "RuntimeError: cannot build"
    assert df.loc[4, "error"] == "MemoryError: out of memory at bs=8"
    assert (df.loc[df.status == "ok", "latency_p50_ms"] > 0).all()
    assert list(m.errors["batch_size"]) == [1, 8, 2, 8]


def test_raise_errors_reraises(fakes):
    with pytest.raises(RuntimeError, match="cannot build"):
        measure(Candidate("b", _boom, lambda bs: torch.ones(bs, 4)), batch_sizes=(1,), device="cpu",
                energy=False, progress=False, raise_errors=True)


def test_interruption_keeps_finished_rows_on_disk(fakes, tmp_path):
    def interrupt(bs):
        raise KeyboardInterrupt

    path = tmp_path / "results.jsonl"
    before = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt):
        measure([_tiny("first"), Candidate("second", lambda: nn.Linear(4, 2), interrupt)],
                batch_sizes=(1, 3), device="cpu", energy=False, time_budget_s=0.05, threads=1,
                results_path=path, progress=False)
    assert torch.get_num_threads() == before
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    recs = [r.get("row", r) for r in lines]
    assert [(r["candidate"], r["batch_size"]) for r in recs] == [("first", 1), ("first", 3)]
    back = Measurements.load(path).to_frame()
    assert list(back["batch_size"]) == [1, 3] and set(back["provenance"]) == {"measured"}


# ----------------------------------------------------------------------------- global state
def test_threads_grad_mode_and_model_modes_restored(fakes):
    shared = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))
    shared.train()
    shared[1].eval()  # a mixed state, restored exactly
    torch.set_num_threads(2)
    try:
        m = measure(Candidate("shared", lambda: shared, lambda bs: torch.ones(bs, 4)),
                    batch_sizes=(2,), device="cpu", threads=1, energy=False, time_budget_s=0.05,
                    progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(torch.get_num_threads())
    assert m.to_frame().loc[0, "threads"] == 1
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    assert shared.training is True and shared[0].training is True and shared[1].training is False


def test_boundary_validation(fakes):
    with pytest.raises(ValidationError) as info:
        measure([_tiny("a"), _tiny("a")], device="cpu", progress=False)
    assert info.value.field == "candidates"
    for kwargs, field in (({"batch_sizes": (0,)}, "batch_sizes"), ({"mode": "serving"}, "mode"),
                          ({"threads": 0}, "threads"), ({"energy_window_s": 0}, "energy_window_s"),
                          ({"optimizer": "lbfgs"}, "optimizer"), ({"device": "tpu:0"}, "device")):
        with pytest.raises(ValidationError) as info:
            measure(_tiny(), progress=False, **({"device": "cpu"} | kwargs))
        assert info.value.field == field


# ----------------------------------------------------------------------------- training
def test_training_mode_steps_the_optimizer(fakes):
    built = []
    opts = []

    def model_fn():
        built.append(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
        return built[-1]

    def adam(params):
        opts.append(torch.optim.Adam(params, lr=1e-2))
        return opts[-1]

    cand = Candidate("mlp", model_fn, lambda bs: torch.randn(bs, 4),
                     target_fn=lambda bs: torch.zeros(bs, dtype=torch.int64))
    m = measure(cand, batch_sizes=(4,), mode="training", device="cpu", energy=False,
                timing=_exact_policy(), optimizer=adam, progress=False)
    row = m.to_frame().iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["mode"] == "training" and row["repeats"] == 10 and row["latency_p50_ms"] > 0
    assert row["params"] == 4 * 8 + 8 + 8 * 3 + 3
    # 3 x forward FLOPs per item for forward + backward
    assert row["flops_per_item"] == 2 * (4 * 8 + 8 * 3)
    assert row["achieved_flops_per_s"] == pytest.approx(3 * row["flops_per_item"] * row["throughput_items_per_s"])
    assert opts[0].state  # Adam kept moments: real optimizer steps were taken
    assert torch.is_grad_enabled()


def test_training_sgd_changes_weights(fakes):
    built = []

    def model_fn():
        torch.manual_seed(0)
        built.append(nn.Linear(4, 2))
        return built[-1]

    torch.manual_seed(0)
    ref = nn.Linear(4, 2)  # the same initial weights
    m = measure(Candidate("lin", model_fn, lambda bs: torch.ones(bs, 4)), batch_sizes=(2,),
                mode="training", device="cpu", energy=False, time_budget_s=0.05, learning_rate=0.1,
                progress=False)
    assert m.to_frame().loc[0, "status"] == "ok"
    assert not torch.equal(built[0].weight, ref.weight)


def test_quantized_candidate_in_training_mode_is_an_error_row(fakes):
    from effplan.examples import _mlp, _quantize

    cand = Candidate("q", lambda: _quantize(_mlp((16,))), lambda bs: torch.ones(bs, 64),
                     tags=("quantized",))
    with pytest.warns(EffplanWarning, match="1 of 1 points failed"):
        m = measure(cand, batch_sizes=(2,), mode="training", device="cpu", energy=False, progress=False)
    row = m.to_frame().iloc[0]
    assert row["status"] == "error"
    assert "quantized" in row["error"] and "cannot be trained" in row["error"]
    assert row["dtype"] == "qint8" and row["params"] == 64 * 16 + 16 + 16 * 10 + 10


# ----------------------------------------------------------------------------- the frame
def test_to_frame_has_exactly_the_schema_columns(fakes):
    m = measure(_tiny(quality=0.9, tags=("baseline", "slim")), batch_sizes=(1, 2), device="cpu",
                energy=False, time_budget_s=0.05, progress=False)
    df = m.to_frame()
    assert list(df.columns) == list(MEASUREMENT_COLUMNS)
    assert len(df) == 2 and set(df["tags"]) == {"baseline,slim"} and set(df["quality"]) == {0.9}
    assert (df["throughput_items_per_s"] == df["batch_size"] / (df["latency_p50_ms"] / 1000)).all()
    s = m.summary()
    assert list(s["energy"]) == ["not measured"] * 2
    assert len(m.samples_frame()) == sum(len(t.sample_times_s) for t in m.samples.values())


def test_from_frame_accepts_hand_typed_rows():
    typed = pd.DataFrame({
        "candidate": ["vendor-model", "vendor-model"],
        "hardware": ["NVIDIA A100-SXM4-80GB"] * 2,
        "mode": ["inference", "inference"],
        "batch_size": [1, 32],
        "latency_p95_ms": [12.0, 40.0],
        "throughput_items_per_s": [90.0, 900.0],
        "energy_per_item_j": [2.5, 0.4],
        "idle_power_w": [60.0, 60.0],
    })
    m = Measurements.from_frame(typed)
    df = m.to_frame()
    assert list(df.columns) == list(MEASUREMENT_COLUMNS)
    assert set(df["provenance"]) == {"entered"} and set(df["energy_source"]) == {"entered"}
    assert list(df["latency_p95_ms"]) == [12.0, 40.0]
    assert math.isnan(df.loc[0, "latency_p50_ms"])
    with pytest.raises(ValidationError) as info:
        Measurements.from_frame(typed.drop(columns=["energy_per_item_j"]))
    assert info.value.field == "energy_per_item_j"
    with pytest.raises(ValidationError) as info:
        Measurements.from_frame(typed.assign(latency_p95_ms=[-1.0, 2.0]))
    assert info.value.field == "latency_p95_ms"


def test_effplan_measure_is_the_function_after_importing_the_module(fakes):
    import importlib

    importlib.import_module("effplan.measurement")
    assert effplan.measure is measure
    m = effplan.measure(_tiny(), batch_sizes=(1,), device="cpu", energy=False, time_budget_s=0.05,
                        progress=False)
    assert len(m) == 1


# ----------------------------------------------------------------------------- integration
def test_real_small_sweep_end_to_end(tmp_path):
    """Real hardware, FLOPs, energy, catalog and store modules: a small CPU sweep end to end."""
    path = tmp_path / "sweep.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)  # energy may be estimated on CI
        m = effplan.measure([_tiny("mlp", quality=0.5)], batch_sizes=(1, 4), device="cpu",
                            time_budget_s=0.2, energy_window_s=0.2, idle_s=0.2,
                            results_path=path, progress=False)
    df = m.to_frame()
    assert list(df.columns) == list(MEASUREMENT_COLUMNS)
    assert list(df["status"]) == ["ok", "ok"], list(df["error"])
    # Linear 4 -> 8 and 8 -> 2: 2 x (32 + 16) FLOPs per item
    assert list(df["flops_per_item"]) == [96.0, 96.0]
    assert (df["latency_p50_ms"] > 0).all() and (df["peak_memory_mib"] > 0).all()
    assert (df["energy_per_item_j"] > 0).all() and (df["energy_window_s"] > 0).all()
    assert set(df["energy_source"]) <= {"nvml-counter", "nvml-power", "rapl", "estimated-tdp"}
    assert df["hardware"].iloc[0] and df["hardware_id"].iloc[0]
    back = Measurements.load(path).to_frame()
    # a not-stable point is saved after its retry, so the file order may differ from the sweep's
    back = back.sort_values("batch_size", ignore_index=True)
    pd.testing.assert_series_equal(back["latency_p50_ms"], df["latency_p50_ms"])
    assert list(back["stable"]) == list(df["stable"])
    assert list(Measurements.from_frame(df).to_frame()["provenance"]) == ["measured"] * 2
    for col in PLAN_REQUIRED_COLUMNS:
        assert df[col].notna().all(), col


def test_repeated_warnings_are_emitted_once_per_sweep(fakes):
    class Noisy(nn.Linear):
        def forward(self, x):
            warnings.warn("degraded thing", EffplanWarning)
            return super().forward(x)

    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        measure(Candidate("noisy", lambda: Noisy(4, 2), lambda bs: torch.ones(bs, 4)),
                batch_sizes=(1, 2, 3), device="cpu", energy=False, timing=_exact_policy(),
                progress=False)
    assert [str(w.message) for w in got if "NOT stable" not in str(w.message)] == ["degraded thing"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_sweep_synchronizes_and_reports_cuda_memory():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        m = effplan.measure(_tiny("mlp"), batch_sizes=(1, 64), mode="training", device="cuda",
                            time_budget_s=0.2, energy_window_s=0.2, idle_s=0.2, progress=False)
    df = m.to_frame()
    assert list(df["status"]) == ["ok", "ok"], list(df["error"])
    assert set(df["device"]) == {"cuda:0"} and set(df["peak_memory_source"]) == {"cuda-max-allocated"}
    assert (df["peak_memory_mib"] > 0).all() and (df["energy_per_item_j"] > 0).all()


# ----------------------------------------------------------------------------- issue 9: trust
def _steady(clock, built, step=2.0**-10):
    """A candidate whose every call takes exactly ``step`` s on the fake clock (stable)."""
    def model_fn():
        built.append(1)
        return ClockedLinear(clock, cycle([step]))
    return model_fn


def test_resume_skips_exactly_the_finished_points(fakes, tmp_path):
    clock = FakeClock()
    path = tmp_path / "r.jsonl"
    built: list[int] = []
    cand = Candidate("lin", _steady(clock, built), lambda bs: torch.ones(bs, 4))
    first = measure(cand, batch_sizes=(1, 2), device="cpu", timing=_exact_policy(), energy=False,
                    clock=clock, results_path=path, progress=False)
    assert list(first.to_frame()["stable"]) == [True, True] and len(built) == 2
    built.clear()
    again = measure(cand, batch_sizes=(1, 2, 3, 4), device="cpu", timing=_exact_policy(), energy=False,
                    clock=clock, results_path=path, resume=True, progress=False)
    assert len(built) == 2  # only bs 3 and 4 were measured
    df = again.to_frame()
    assert sorted(df["batch_size"]) == [1, 2, 3, 4]
    assert sorted(again.samples) == [("lin", "cpu", "inference", 3), ("lin", "cpu", "inference", 4)]
    from effplan.records import store

    assert len(store.load(path)) == 4  # no duplicates appended
    built.clear()
    measure(cand, batch_sizes=(1, 2, 3, 4), device="cpu", timing=_exact_policy(), energy=False,
            clock=clock, results_path=path, resume=True, progress=False)
    assert built == []  # everything finished: nothing measured
    with pytest.raises(ValidationError) as info:
        measure(cand, device="cpu", resume=True, progress=False)
    assert info.value.field == "resume"


@pytest.mark.parametrize("how, redone", [(True, [2]), ("unfinished", [2]), ("unstable", [1, 2])])
def test_resume_measures_failed_points_again_and_unstable_ones_on_request(fakes, tmp_path, how, redone):
    from effplan.bench.resume import redo_counts
    from effplan.records import store

    path = tmp_path / "r.jsonl"
    base = dict(hardware="Test CPU", hardware_id="hw1", mode="inference", dtype="", device="cpu",
                latency_p50_ms=1.0, status="ok", timestamp="2026-01-01T00:00:00+00:00")
    store.append(path, [dict(base, candidate="lin", batch_size=1, stable=False, stop_reason="unstable"),
                        dict(base, candidate="lin", batch_size=2, status="error", error="boom"),
                        dict(base, candidate="lin", batch_size=3, stable=True, stop_reason="ci-met")])
    clock = FakeClock()
    built: list[int] = []
    cand = Candidate("lin", _steady(clock, built), lambda bs: torch.ones(bs, 4))
    mode = "unfinished" if how is True else how
    counts = redo_counts(path, mode)
    assert (counts.points, counts.finished, counts.unstable, counts.errors, counts.redo) == (
        3, 1, 1, 1, len(redone))
    m = measure(cand, batch_sizes=(1, 2, 3), device="cpu", timing=_exact_policy(), energy=False,
                clock=clock, results_path=path, resume=how, progress=False)
    # resume="unfinished" (and True): only the error row; "unstable": the unstable point too
    assert sorted(bs for (_, _, _, bs) in m.samples) == redone
    assert len(built) == len(redone) and len(m) == 3
    with pytest.raises(ValidationError, match="resume"):
        measure(cand, batch_sizes=(1,), device="cpu", results_path=path, resume="all", progress=False)


def test_a_point_that_cannot_be_saved_stays_in_memory(fakes, tmp_path, monkeypatch):
    clock = FakeClock()
    built: list[int] = []
    path = tmp_path / "r.jsonl"

    def full_disk(p, rows, hw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sweep_mod, "append_rows", full_disk)
    cand = Candidate("lin", _steady(clock, built), lambda bs: torch.ones(bs, 4))
    with pytest.warns(EffplanWarning, match="2 points could not be saved"):
        m = measure(cand, batch_sizes=(1, 2), device="cpu", timing=_exact_policy(), energy=False,
                    clock=clock, results_path=path, progress=False)
    df = m.to_frame()
    assert len(built) == 2 and list(df["status"]) == ["ok", "ok"]  # the sweep went on
    assert df["error"].str.contains("not saved to .*No space left on device").all()
    assert (df["latency_p50_ms"] == 2.0**-10 * 1e3).all()


def test_a_non_finite_figure_from_a_custom_meter_keeps_the_point(fakes, tmp_path):
    clock = FakeClock()

    class InfMeter(FakeMeter):
        def __exit__(self, *exc):
            super().__exit__(*exc)
            self.energy_j = float("inf")
            return False

    path = tmp_path / "r.jsonl"
    cand = Candidate("lin", _steady(clock, []), lambda bs: torch.ones(bs, 4))
    with pytest.warns(EffplanWarning, match="could not be saved"):
        other = Candidate("other", _steady(clock, []), lambda bs: torch.ones(bs, 4))
        m = measure([cand, other], batch_sizes=(1,), device="cpu", timing=_exact_policy(),
                    clock=clock, energy_meter=lambda dev: InfMeter(clock), results_path=path,
                    progress=False)
    df = m.to_frame()
    assert len(df) == 2 and math.isinf(df.loc[0, "energy_j"])
    assert "infinite value" in df.loc[0, "error"]


def test_results_path_and_candidate_fields_are_checked_before_measuring(fakes, tmp_path):
    built: list[int] = []
    cand = Candidate("lin", _steady(FakeClock(), built), lambda bs: torch.ones(bs, 4))
    with pytest.raises(ValidationError) as info:
        measure(cand, device="cpu", results_path=tmp_path, progress=False)  # a folder
    assert info.value.field == "results_path" and "is a folder" in str(info.value)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValidationError) as info:
        measure(cand, device="cpu", results_path=blocker / "r.jsonl", progress=False)
    assert info.value.field == "results_path"
    bad = Candidate("inf-quality", _steady(FakeClock(), built), lambda bs: torch.ones(bs, 4),
                    quality=float("inf"))
    with pytest.raises(ValidationError) as info:
        measure(bad, device="cpu", results_path=tmp_path / "r.jsonl", progress=False)
    assert info.value.field == "quality"
    assert built == []  # nothing was measured


def test_unstable_point_is_retried_after_the_sweep(fakes, tmp_path):
    clock = FakeClock()
    attempts = iter([cycle([1e-3, 1e-3, 50e-3]),  # first try: a third of calls stall
                     cycle([2.0**-10])])           # the retry: steady
    order: list[str] = []

    def flaky():
        order.append("flaky")
        return ClockedLinear(clock, next(attempts))

    def steady():
        order.append("steady")
        return ClockedLinear(clock, cycle([2.0**-10]))

    cands = [Candidate("flaky", flaky, lambda bs: torch.ones(bs, 4)),
             Candidate("steady", steady, lambda bs: torch.ones(bs, 4))]
    path = tmp_path / "r.jsonl"
    pol = replace(_exact_policy(30), samples_per_round=10, min_rounds=3)
    m = measure(cands, batch_sizes=(1,), device="cpu", timing=pol, energy=False, clock=clock,
                results_path=path, progress=False)
    assert order == ["flaky", "steady", "flaky"]  # retried after the other candidate
    df = m.to_frame()
    assert list(df["stable"]) == [True, True]
    from effplan.records import store

    # the unstable first try was saved at once, provisional, and the retry's record supersedes it
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["candidate"], r["provisional"], r["timing_pass"]) for r in recs] == [
        ("flaky", True, 1), ("steady", False, 1), ("flaky", False, 2)]
    assert recs[0]["stable"] is False and "a retry" in recs[0]["timing_note"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a superseded provisional record is not a duplicate
        assert list(store.load(path)["stable"]) == [True, True]


def test_not_shippable_candidate_is_measured_here_and_says_so(fakes):
    import threading

    lock = threading.Lock()
    clock = FakeClock()

    def model_fn():
        with lock:
            return ClockedLinear(clock, cycle([2.0**-10]))

    with pytest.warns(EffplanWarning, match="could not be shipped to a worker"):
        m = measure(Candidate("locked", model_fn, lambda bs: torch.ones(bs, 4)), batch_sizes=(1,),
                    device="cpu", timing=_exact_policy(), energy=False, clock=clock, isolate=True,
                    progress=False)
    row = m.to_frame().iloc[0]
    assert row["status"] == "ok" and row["isolation"].startswith("in-process: could not be shipped")
    assert "lock" in row["isolation"]


def test_generation_mode_refuses_inference_candidates_by_name():
    with pytest.raises(ValidationError) as info:
        measure(_tiny(), mode="generation", device="cpu", progress=False)
    assert info.value.field == "candidates" and "GenerationCandidate" in str(info.value)


def test_rows_carry_reproducibility_fields_weights_hashed_once_per_candidate(fakes, monkeypatch):
    from effplan import reproducibility

    hashed: list[str] = []
    real = reproducibility.weights_sha256
    monkeypatch.setattr(reproducibility, "weights_sha256", lambda m: hashed.append(1) or real(m))

    def seeded():
        torch.manual_seed(3)
        return nn.Linear(4, 2)

    cands = [Candidate("a", seeded, lambda bs: torch.ones(bs, 4)), _tiny("b")]
    m = measure(cands, batch_sizes=(1, 2, 4), device="cpu", timing=_exact_policy(), energy=False,
                progress=False, retries=0, isolate=False)
    df = m.to_frame()
    assert len(hashed) == 2  # six points, one hash per candidate
    assert df.loc[df["candidate"] == "a", "weights_sha256"].tolist() == [real(seeded())] * 3
    assert df.loc[df["candidate"] == "b", "weights_sha256"].nunique() == 1
    assert set(df["effplan_version"]) == {effplan.__version__}
    assert set(df["numpy_version"]) == {np.__version__}
    assert set(df["python_version"]) == {reproducibility.software_versions()["python_version"]}
    assert df["config_sha256"].tolist() == [""] * 6  # plain modules have no configuration
    assert set(df["timing_policy"]) == {reproducibility.timing_policy_json(_exact_policy())}
    assert df["seed"].isna().all()  # no seed declared: unknown, never a made-up 0


def test_a_declared_seed_is_recorded_and_a_bad_one_refused(fakes):
    m = measure(_tiny(seed=7), batch_sizes=(1,), device="cpu", timing=_exact_policy(), energy=False,
                progress=False, retries=0, isolate=False)
    assert m.to_frame()["seed"].tolist() == [7]
    with pytest.raises(ValidationError) as info:
        _tiny(seed="7")
    assert info.value.field == "seed"


def _two_pass_policy() -> TimingPolicy:
    # constant fake-clock calls: one round of 10 samples is stable, so each pass takes one round
    return TimingPolicy(min_repeats=10, max_repeats=1000, min_rounds=1, samples_per_round=10, min_round_s=0.0,
                        warmup_calls=2, warmup_s=0.0, min_sample_s=0.0, time_budget_s=1e6)


def test_passes_are_interleaved_across_the_sweep(fakes, tmp_path):
    clock = FakeClock()
    built: list[str] = []
    meters: list[str] = []

    def cand(name):
        def model_fn():
            built.append(name)
            return ClockedLinear(clock, iter(lambda: 1e-3, None))
        return Candidate(name, model_fn, lambda bs: torch.ones(bs, 4))

    path = tmp_path / "r.jsonl"
    m = measure([cand("a"), cand("b")], batch_sizes=(1, 2), device="cpu", timing=_two_pass_policy(),
                clock=clock, progress=False, passes=2, results_path=path,
                energy_meter=lambda dev: meters.append(dev) or FakeMeter(clock))
    # pass 1 of every point before pass 2 of any
    assert built == ["a", "a", "b", "b", "a", "a", "b", "b"]
    df = m.to_frame()
    assert df["rounds"].tolist() == [2] * 4 and df["repeats"].tolist() == [20] * 4
    assert df["stable"].tolist() == [True] * 4 and df["latency_p50_ms"].tolist() == pytest.approx([1.0] * 4)
    # energy in the first pass only, carried to the final row
    assert len(meters) == 4 and df["energy_source"].tolist() == ["rapl"] * 4
    # 50 W x the window: at least 1 s, ending on a whole 1 ms call
    assert (df["energy_window_s"] >= 1.0).all() and (df["energy_window_s"] < 1.0021).all()
    assert df["energy_j"].tolist() == pytest.approx((50.0 * df["energy_window_s"]).tolist())
    # one stored row per point; its raw samples hold both passes' rounds
    assert len(effplan.Measurements.load(path)) == 4
    stored = list(effplan.store.load_samples(path).values())
    assert all(t.sample_rounds == (0,) * 10 + (1,) * 10 for t in stored)


def test_a_failed_second_pass_keeps_the_first_pass_marked_not_stable(fakes):
    clock = FakeClock()
    builds = []

    def model_fn():
        builds.append(1)
        if len(builds) == 2:
            raise RuntimeError("gone on the second pass")
        return ClockedLinear(clock, iter(lambda: 1e-3, None))

    with pytest.warns(EffplanWarning, match="NOT stable"):
        m = measure(Candidate("x", model_fn, lambda bs: torch.ones(bs, 4)), batch_sizes=(1,), device="cpu",
                    timing=_two_pass_policy(), energy=False, clock=clock, progress=False, passes=2,
                    retries=0)
    r = m.to_frame().iloc[0]
    assert r["status"] == "ok" and not r["stable"] and r["stop_reason"] == "unstable"
    assert "timing pass 2 failed (RuntimeError: gone on the second pass)" in r["timing_note"]
    assert r["latency_p50_ms"] == pytest.approx(1.0) and r["rounds"] == 1


def test_passes_is_validated():
    with pytest.raises(ValidationError) as info:
        measure(_tiny(), passes=0, progress=False)
    assert info.value.field == "passes"


def test_background_load_before_the_point_is_on_the_row(fakes, monkeypatch):
    import dataclasses

    real = points_mod.adaptive_time
    monkeypatch.setattr(points_mod, "adaptive_time",
                        lambda *a, **kw: dataclasses.replace(real(*a, **kw), load_before=0.75, load_during=1.5))
    m = measure(_tiny(), batch_sizes=(1,), device="cpu", timing=_exact_policy(), energy=False,
                progress=False, retries=0, passes=1)
    r = m.to_frame().iloc[0]
    assert r["background_load_before"] == 0.75 and r["background_load"] == 1.5


def test_an_error_row_keeps_versions_and_seed_but_no_hash(fakes):
    def broken():
        raise RuntimeError("no model")

    with pytest.warns(EffplanWarning, match="1 of 1 points failed"):
        m = measure(Candidate("x", broken, lambda bs: torch.ones(bs, 4), seed=11), batch_sizes=(1,),
                    device="cpu", timing=_exact_policy(), energy=False, progress=False)
    r = m.to_frame().iloc[0]
    assert r["status"] == "error" and r["seed"] == 11 and r["effplan_version"] == effplan.__version__
    assert r["weights_sha256"] == "" and r["timing_policy"].startswith("{")


def test_interrupted_between_passes_saves_the_first_pass_not_stable(fakes, tmp_path):
    clock = FakeClock()
    builds: list[str] = []

    def cand(name):
        def model_fn():
            builds.append(name)
            if len(builds) == 3:  # pass 2 of the first point: Ctrl-C
                raise KeyboardInterrupt
            return ClockedLinear(clock, iter(lambda: 1e-3, None))
        return Candidate(name, model_fn, lambda bs: torch.ones(bs, 4))

    path = tmp_path / "r.jsonl"
    with pytest.raises(KeyboardInterrupt):
        measure([cand("a"), cand("b")], batch_sizes=(1,), device="cpu", timing=_two_pass_policy(),
                energy=False, clock=clock, progress=False, passes=2, results_path=path)
    df = effplan.Measurements.load(path).to_frame()
    assert sorted(df["candidate"]) == ["a", "b"] and df["status"].tolist() == ["ok", "ok"]
    # their rounds were never compared with a later pass: not stable, so resume measures them again
    assert not df["stable"].any() and set(df["stop_reason"]) == {"time-budget"}
    assert all("interrupted before its last timing pass" in n for n in df["timing_note"])


# ----------------------------------------------------------------------------- real workers
# (one worker per candidate, time limits, what survives a SIGKILL; budgets of a fraction of a s)
_MIB = 1 << 18  # float32 features per item: 1 MiB per item


def _quick_model():
    return nn.Linear(4, 2)


def _quick_inputs(bs):
    return torch.ones(bs, 4)


def _exits_at_bs2(bs):
    if bs == 2:
        import os

        os._exit(5)
    return torch.ones(bs, 4)


def _sleeps_forever():
    import time

    class Sleeps(nn.Linear):
        def forward(self, x):
            time.sleep(3600)

    return Sleeps(4, 2)


def _mib_model():
    return nn.Linear(_MIB, 1)  # 1 MiB of weights


def _mib_inputs(bs):
    return torch.ones(bs, _MIB)  # bs MiB


def _gone(pid) -> bool:
    import psutil

    try:
        return psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_default_point_timeout_is_derived_from_the_time_budget():
    # 120 s + 10 x phases x (time budget + energy window)
    assert measure_mod.default_point_timeout_s(2.0, 1.0) == 150.0
    assert measure_mod.default_point_timeout_s(2.0, 1.0, "generation") == 180.0
    assert measure_mod.default_point_timeout_s(0.3, 0.0) == 123.0
    with pytest.raises(ValidationError) as info:
        measure(_tiny(), point_timeout_s=0, progress=False)
    assert info.value.field == "point_timeout_s"


def test_an_in_process_point_over_its_time_limit_says_it_could_not_be_stopped(fakes):
    m = measure(_tiny(), batch_sizes=(1,), device="cpu", timing=_exact_policy(), energy=False,
                progress=False, retries=0, point_timeout_s=1e-6)
    r = m.to_frame().iloc[0]
    assert r["status"] == "ok" and r["isolation"] == "in-process: isolate=False; point_timeout_s cannot stop it"
    assert "longer than point_timeout_s=1e-06 s: a point measured in this process cannot be stopped" in r["timing_note"]


@pytest.mark.slow
def test_one_worker_per_candidate_and_a_crash_costs_one_point(tmp_path):
    path = tmp_path / "r.jsonl"
    cands = [Candidate("a", _quick_model, _quick_inputs), Candidate("b", _quick_model, _quick_inputs),
             Candidate("crashes", _quick_model, _exits_at_bs2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        m = measure(cands, batch_sizes=(1, 2, 4), device="cpu", energy=False, time_budget_s=0.05,
                    threads=1, passes=2, retries=1, results_path=path, progress=False)
    df = m.to_frame()
    assert df["status"].tolist() == ["ok"] * 7 + ["error", "ok"]
    assert "WorkerCrashed" in df.loc[7, "error"] and "code 5" in df.loc[7, "error"]
    recs = _records(path)
    pids = {c: {r["worker_pid"] for r in recs if r["candidate"] == c} for c in ("a", "b", "crashes")}
    # every pass (and retry) of a's 3 points in one worker, b's in another
    assert len(pids["a"]) == 1 and len(pids["b"]) == 1 and pids["a"] != pids["b"]
    # pass 1 of every point was on disk, provisional, before pass 2: 3 candidates x 3 batch sizes
    first = [r for r in recs if r["timing_pass"] == 1]
    assert len(first) == 9 and [r["provisional"] for r in first] == [True] * 7 + [False, True]
    # the crash ended the worker of bs=1 and 2; bs=4 and every later pass ran in a fresh one
    crash = [r for r in recs if r["candidate"] == "crashes"]
    by = {(r["batch_size"], r["timing_pass"]): r["worker_pid"] for r in crash}
    assert by[(1, 1)] == by[(2, 1)] != by[(4, 1)] == by[(1, 2)] == by[(4, 2)]
    assert all(_gone(p) for ps in pids.values() for p in ps)  # the sweep ended its workers
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # superseded provisional records are no duplicates
        back = store.load(path)
    assert len(back) == 9 and not back["provisional"].any()


@pytest.mark.slow
def test_memory_of_each_batch_size_is_its_own_in_a_reused_worker():
    # inputs of bs MiB and 1 MiB of weights, measured largest first in ONE worker: each point's
    # peak is its own (bs + 1 MiB, + a few MiB of activations and FLOP-counting traces), neither
    # the 64 MiB before it nor hidden by memory that point left for reuse
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        m = measure(Candidate("mib", _mib_model, _mib_inputs), batch_sizes=(64, 8, 1), device="cpu",
                    energy=False, time_budget_s=0.05, threads=1, retries=0, progress=False)
    df = m.to_frame()
    assert df["worker_pid"].nunique() == 1
    assert set(df["peak_memory_source"]) == {"worker-peak-rss-minus-baseline"}
    for bs, mib in zip(df["batch_size"], df["peak_memory_mib"]):
        assert bs + 1 <= mib < bs + 1 + 8, (bs, mib)


@pytest.mark.slow
def test_a_hanging_candidate_times_out_and_the_others_are_measured():
    cands = [Candidate("before", _quick_model, _quick_inputs), Candidate("hangs", _sleeps_forever, _quick_inputs),
             Candidate("after", _quick_model, _quick_inputs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        m = measure(cands, batch_sizes=(1,), device="cpu", energy=False, time_budget_s=0.05, threads=1,
                    retries=0, point_timeout_s=5, progress=False)
    df = m.to_frame().set_index("candidate")
    assert df["status"].to_dict() == {"before": "ok", "hangs": "error", "after": "ok"}
    assert df.loc["hangs", "error"].startswith("WorkerTimeout: timed out after 5 s; its worker process was killed")
    assert _gone(df.loc["hangs", "worker_pid"])
    assert (df.loc[["before", "after"], "latency_p50_ms"] > 0).all()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sigkill_mid_sweep_keeps_every_finished_pass_and_resume_completes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    script = str(repo / "tests" / "sweep_to_kill.py")
    path, marker = tmp_path / "r.jsonl", tmp_path / "hanging.pid"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, script, str(path), str(marker), "300"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not (marker.exists() and marker.read_text()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
    os.kill(proc.pid, signal.SIGKILL)  # the driver, while "hangs" hangs in its first point
    proc.wait(30)
    proc.stdout.close()
    hung = int(marker.read_text())
    for _ in range(150):  # the hung worker does not outlive its driver
        if _gone(hung):
            break
        time.sleep(0.2)
    assert _gone(hung)
    # every point that finished its (first) pass is on disk and loads: provisional, not stable
    recs = _records(path)
    assert [(r["candidate"], r["batch_size"], r["timing_pass"]) for r in recs] == [
        ("quick-a", 1, 1), ("quick-a", 2, 1), ("quick-b", 1, 1), ("quick-b", 2, 1)]
    back = store.load(path)
    assert len(back) == 4 and back["provisional"].all() and not back["stable"].any()
    assert set(back["status"]) == {"ok"} and (back["latency_p50_ms"] > 0).all()
    assert all("interrupted before its last timing pass" in n for n in back["timing_note"])
    with open(path, "ab") as fh:  # and a record cut off mid-write, as a kill during a write leaves
        fh.write(b'{"candidate": "quick-a", "hardware": "x", "mo')
    # resume: "hangs" now times out after 5 s per point; everything else is measured again
    done = subprocess.run([sys.executable, script, str(path), str(marker), "5", "resume"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    with pytest.warns(EffplanWarning) as got:
        back = store.load(path)
    messages = [str(w.message) for w in got]
    assert len(messages) == 1 and "r.jsonl:5: record: bad JSON" in messages[0]  # no duplicate warning
    assert sorted(zip(back["candidate"], back["batch_size"], back["status"])) == [
        ("hangs", 1, "error"), ("hangs", 2, "error"), ("quick-a", 1, "ok"), ("quick-a", 2, "ok"),
        ("quick-b", 1, "ok"), ("quick-b", 2, "ok")]
    assert not back["provisional"].any()
    assert back.loc[back.candidate == "hangs", "error"].str.contains("timed out after 5 s").all()
    assert (back.loc[back.status == "ok", "timing_pass"] >= 2).all()  # judged across both passes
    # the resumed records start on a fresh line: the cut-off record stays one bad line
    assert json.loads(path.read_text().splitlines()[5])["candidate"] == "quick-a"

