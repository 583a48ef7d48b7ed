"""measure()'s settings as self-checking configs, and the one home of the rules its copies
disagreed on: integer types, candidate dtypes, devices, the cheapest option's tie rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from effplan.bench import configs
from effplan.bench.configs import EnergyConfig, GenerationConfig, SweepConfig, build, positive_ints
from effplan.errors import ValidationError
from effplan.records.samples import TimingPolicy


# ------------------------------------------------------------------ configs and shortcuts
def test_shortcuts_fill_their_config_fields():
    s = build(passes=3, time_budget_s=0.5, energy=False, idle_s=2.0, prompt_tokens=[64, 64, 8])
    assert s.sweep.passes == 3 and s.timing.time_budget_s == 0.5
    assert s.energy.measure is False and s.energy.idle_s == 2.0
    assert s.generation.prompt_tokens == (64, 8)          # repeats dropped, order kept
    assert s.timing.target_ci_rel == TimingPolicy().target_ci_rel  # untouched fields keep their default
    assert not s.fleet.remote


def test_a_shortcut_and_its_config_field_both_given_differently_is_a_named_error():
    with pytest.raises(ValidationError) as info:
        build(sweep=SweepConfig(passes=2), passes=3)
    assert info.value.field == "passes" and "given twice" in str(info.value)
    with pytest.raises(ValidationError) as info:
        build(timing=TimingPolicy(time_budget_s=1.0), time_budget_s=0.5)
    assert info.value.field == "time_budget_s"
    with pytest.raises(ValidationError) as info:
        build(energy=EnergyConfig(window_s=2.0), energy_window_s=3.0)
    assert info.value.field == "energy_window_s"
    # the same value twice is no conflict; a field left at its default takes the shortcut
    assert build(sweep=SweepConfig(passes=2), passes=2).sweep.passes == 2
    assert build(sweep=SweepConfig(retries=0), passes=4).sweep == SweepConfig(retries=0, passes=4)


def test_configs_check_themselves_and_name_the_field():
    for make, field in [(lambda: SweepConfig(passes=0), "passes"), (lambda: SweepConfig(retries=-1), "retries"),
                        (lambda: SweepConfig(threads=True), "threads"), (lambda: EnergyConfig(idle_s=0), "idle_s"),
                        (lambda: EnergyConfig(window_s="1s"), "energy_window_s"),
                        (lambda: SweepConfig(resume=True), "resume"),
                        (lambda: GenerationConfig(output_tokens=[8, 16]), "output_tokens"),
                        (lambda: build(idle_s=None), "idle_s"), (lambda: build(bogus=1), "bogus"),
                        (lambda: build(sweep=EnergyConfig()), "sweep")]:
        with pytest.raises(ValidationError) as info:
            make()
        assert info.value.field == field


def test_measure_refuses_a_contradicting_shortcut_before_measuring():
    from effplan import measure

    with pytest.raises(ValidationError) as info:
        measure([], sweep=SweepConfig(passes=1), passes=2)
    assert info.value.field == "passes"


# ------------------------------------------------------------------ integer types: one rule
def test_numpy_integers_are_batch_sizes_and_bools_are_not():
    assert positive_ints("batch_sizes", [np.int64(8), 1, np.int32(8)]) == [8, 1]
    assert positive_ints("batch_sizes", np.int64(4)) == [4]
    for bad in ([True], [0], [2.0], [], None, ["8"], [np.bool_(True)]):
        with pytest.raises(ValidationError) as info:
            positive_ints("batch_sizes", bad)
        assert info.value.field == "batch_sizes"


def test_ray_takes_numpy_batch_sizes_as_the_local_sweep_does(monkeypatch):
    """measure_on_ray checks batch sizes with the local rule: np.int64 passes (and only then is
    Ray needed), 0 is refused, before Ray is touched."""
    from effplan.bench import fleet
    from effplan.models.candidates import Candidate

    class NoRay(Exception):
        pass

    def no_ray():
        raise NoRay

    monkeypatch.setattr(fleet, "require_ray", no_ray)
    cand = Candidate("c", lambda: None, lambda bs: None)
    with pytest.raises(NoRay):
        fleet.measure_on_ray([cand], [np.int64(2), np.int64(4)], targets=["cpu"], progress=False)
    with pytest.raises(ValidationError) as info:
        fleet.measure_on_ray([cand], [np.int64(0)], targets=["cpu"], progress=False)
    assert info.value.field == "batch_sizes"


# ------------------------------------------------------------------ candidate dtypes: one rule
@pytest.mark.parametrize("given, canonical", [("fp16", "float16"), ("bf16", "bfloat16"), ("half", "float16"),
                                              ("float32", "float32"), ("qint8", "qint8"), (None, None)])
def test_both_candidate_kinds_read_a_dtype_the_same_way(given, canonical):
    from effplan.models.candidates import Candidate
    from effplan.models.generative import GenerationCandidate

    a = Candidate("a", lambda: None, lambda bs: None, dtype=given)
    g = GenerationCandidate("g", lambda: None, vocab_size=8, dtype=given)
    assert a.dtype == g.dtype == canonical


def test_both_candidate_kinds_refuse_an_unknown_dtype_naming_it():
    from effplan.models.candidates import Candidate
    from effplan.models.generative import GenerationCandidate

    for make in (lambda: Candidate("a", lambda: None, lambda bs: None, dtype="int3"),
                 lambda: GenerationCandidate("g", lambda: None, vocab_size=8, dtype="int3")):
        with pytest.raises(ValidationError) as info:
            make()
        assert info.value.field == "dtype" and "int3" in str(info.value)


# ------------------------------------------------------------------ devices: one rule
def test_the_five_device_inputs_the_two_old_rules_disagreed_on(monkeypatch):
    import torch

    from effplan.devices.hardware import normalize_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert normalize_device(" CPU ") == "cpu"                    # spaces and case ignored
    assert normalize_device("cuda:1") == "cuda:1"                # a name, normalised
    for bad in ("mps", "meta"):                                  # refused, with the reason
        with pytest.raises(ValidationError) as info:
            normalize_device(bad)
        assert info.value.field == "device" and "not supported" in str(info.value)
    for name in ("cuda", "cuda:1"):                              # to run on, it must exist now
        with pytest.raises(ValidationError) as info:
            normalize_device(name, check_available=True)
        assert info.value.field == "device" and "CUDA is not available" in str(info.value)


def test_measure_refuses_mps_at_once_naming_the_device():
    import torch

    from effplan import Candidate, measure

    cand = Candidate("tiny", lambda: torch.nn.Linear(2, 2), lambda bs: torch.ones(bs, 2))
    with pytest.raises(ValidationError) as info:
        measure(cand, batch_sizes=(1,), device="mps", progress=False)
    assert info.value.field == "device"


# ------------------------------------------------------------------ the cheapest option: one tie rule
def test_rank_options_and_cheapest_meeting_break_a_tie_the_same_way():
    """Two candidates that cost the same and use the same energy: both pick the first by name,
    whatever their order in the measurements (the old rank_options kept the frame's order)."""
    import sys
    from pathlib import Path

    import effplan
    from effplan.planning.frames import rank_options

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from handtyped import hand_measurements

    rows = hand_measurements()
    small = rows[rows["candidate"] == "small"]
    twins = pd.concat([small.assign(candidate="zeta"), small.assign(candidate="alpha")], ignore_index=True)
    p = effplan.plan(twins, inference=effplan.InferenceWorkload(requests_per_day=5e6, months=3),
                     prices=effplan.Prices(price_per_hour={"lab-cpu": 1.0}), samples=0)
    ranked = rank_options(p)
    chosen = effplan.cheapest_meeting(p).chosen
    q1 = chosen[chosen["quarter"] == chosen["quarter"].min()]
    assert ranked["candidate"].iloc[0] == q1["candidate"].iloc[0] == "alpha"
    assert ranked["quarter_cost_usd"].iloc[0] == ranked["quarter_cost_usd"].iloc[1]  # a real tie


def test_tie_key_orders_cost_then_energy_then_names():
    from effplan.planning.selection import cheapest_first_key

    keys = [cheapest_first_key(2.0, 1.0, "a", "x"), cheapest_first_key(1.0, 5.0, "z", "x"),
            cheapest_first_key(1.0, 4.0, "z", "x"), cheapest_first_key(1.0, 4.0, "b", "y"),
            cheapest_first_key(float("nan"), 0.0, "a", "a"), cheapest_first_key(1.0, None, "a", "a")]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    assert order == [3, 2, 1, 5, 0, 4]


def test_the_defaults_behind_the_shortcuts_have_one_home():
    import effplan.measurement as front

    assert front.PASSES_DEFAULT == configs.PASSES_DEFAULT == 2
    assert front.RETRIES_DEFAULT == configs.RETRIES_DEFAULT == 1 and front.ISOLATE_DEFAULT is True


def test_an_unset_timing_shortcut_is_not_given():
    # the CLI passes --time-budget-s / unset options as None: the policy's defaults stay
    from effplan.bench import configs

    s = configs.build(time_budget_s=None, target_ci_rel=None)
    assert (s.timing.time_budget_s, s.timing.target_ci_rel) == (2.0, 0.02)
    assert configs.build(time_budget_s=0.5).timing.time_budget_s == 0.5
