"""effplan.slim on a small MLP and a tiny transformer: byte and parameter counts by hand, output
tolerances stated, infeasible recipes with their reasons, torchao's absence simulated, and the
variants' round trip through a worker process.

The models: ``mlp`` is 16 -> 32 -> 32 -> 4 (ReLU); ``tiny`` is an ``nn.TransformerEncoder`` of
4 pre-norm layers, d_model 16, 2 heads, feed-forward 40, over an embedding of 50 tokens and a
3-class head. Both are built seeded, so two builds are identical.
"""

from __future__ import annotations

import math
import sys
import warnings

import pytest
import torch
from torch import nn

import effplan
from effplan import slim as S
from effplan.models.candidates import Candidate, storage_tensors
from effplan.errors import InfeasibleRecipeError, SlimWarning, ValidationError


# ----------------------------------------------------------------------------- the models
def _mlp_candidate(name: str = "mlp") -> Candidate:
    def model_fn():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))

    def inputs(batch_size):
        return torch.randn(batch_size, 16, generator=torch.Generator().manual_seed(1))

    return Candidate(name, model_fn, inputs, tags=("baseline",))


def _tiny_candidate(name: str = "tiny") -> Candidate:
    def model_fn():
        class Tiny(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(50, 16)
                layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=40, dropout=0.0, batch_first=True,
                                                   norm_first=True)
                self.encoder = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
                self.head = nn.Linear(16, 3)

            def forward(self, tokens):
                return self.head(self.encoder(self.embed(tokens)).mean(dim=1))

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return Tiny().eval()

    def inputs(batch_size):
        return torch.randint(0, 50, (batch_size, 6), generator=torch.Generator().manual_seed(2))

    return Candidate(name, model_fn, inputs, tags=("baseline",))


def _by_recipe(variants):
    return {S.variant_info(v).recipe: v for v in variants}


def _out(c, x=None):
    model = c.build_model("cpu").eval()
    x = c.make_inputs(8) if x is None else x
    with torch.inference_mode():
        return model(x).float()


@pytest.fixture(scope="module")
def mlp_variants():
    return _by_recipe(S.slim(_mlp_candidate(), device="cpu"))


@pytest.fixture(scope="module")
def tiny_variants():
    return _by_recipe(S.slim(_tiny_candidate(), device="cpu"))


def _linear_bytes_fp32(model):
    return sum(m.weight.numel() * 4 for m in model.modules() if type(m) is nn.Linear)


def _linear_bytes(model):
    return sum(t.numel() * t.element_size() for m in model.modules() if type(m) is nn.Linear
               for t in storage_tensors(m.weight))


# ----------------------------------------------------------------------------- naming and tags
def test_variants_are_named_tagged_and_in_order(mlp_variants):
    names = [v.name for v in mlp_variants.values()]
    assert names == ["mlp-int8-dynamic", "mlp-int8-weight", "mlp-bf16", "mlp-fp16", "mlp-prune-30", "mlp-layers-half"]
    v = mlp_variants["int8-weight"]
    assert v.tags == ("quantized", "recipe:int8-weight", "variant-of:mlp")  # never "baseline"
    assert (v.dtype, v.quality) == ("int8-weight", None)
    assert mlp_variants["int8-dynamic"].dtype == "qint8"
    assert mlp_variants["bf16"].dtype == "bfloat16" and mlp_variants["fp16"].dtype == "float16"
    assert mlp_variants["prune-30"].tags[0] == "pruned" and mlp_variants["prune-30"].dtype is None
    info = S.variant_info(v)
    assert (info.recipe, info.baseline, info.feasible, info.reason) == ("int8-weight", "mlp", True, "")
    assert S.variant_info(_mlp_candidate()) is None


def test_unknown_or_repeated_recipe_is_a_named_error():
    with pytest.raises(ValidationError, match="recipes.*unknown recipe 'int3'"):
        S.slim(_mlp_candidate(), ["int3"])
    with pytest.raises(ValidationError, match="recipes"):
        S.slim(_mlp_candidate(), ["bf16", "bf16"])
    with pytest.raises(ValidationError, match="recipes"):
        S.slim(_mlp_candidate(), ["prune-100"])
    assert S.recipe_spec("prune-45").prune_fraction == 0.45


# ----------------------------------------------------------------------------- int8 bytes by hand
def test_int8_weight_only_bytes_by_hand(mlp_variants):
    """Per Linear (out x in): int8 data out*in bytes + a float32 scale and an int8 zero point per
    output channel (5 bytes), against 4*out*in in float32:
    32x16: 512 + 160 = 672 of 2048; 32x32: 1024 + 160 = 1184 of 4096; 4x32: 128 + 20 = 148 of 512.
    Together 2004 of 6656 bytes = 0.301, between a half and a quarter."""
    base = _mlp_candidate().build_model()
    for recipe in ("int8-weight", "int8-dynamic"):
        q = mlp_variants[recipe].build_model()
        assert _linear_bytes_fp32(base) == 6656
        per_layer = [sum(t.numel() * t.element_size() for t in storage_tensors(m.weight))
                     for m in q.modules() if type(m) is nn.Linear]
        assert per_layer == [672, 1184, 148]
        assert _linear_bytes(q) == 2004
        assert 0.25 <= _linear_bytes(q) / _linear_bytes_fp32(base) <= 0.5
        # biases stay float32: 32 + 32 + 4 floats; the whole model as stored
        assert S.weight_bytes(q) == 2004 + 4 * (32 + 32 + 4)
        assert S.weight_bytes(base) == 6656 + 4 * 68


@pytest.mark.filterwarnings("ignore:effplan.measure")  # short timing: not stable, and that is fine here
def test_measurement_labels_and_bytes_of_torchao_variants(mlp_variants):
    """measure() gives the int8 labels (the planner's device rules key on them), the bytes as
    stored, the logical parameter count, and counts the int8 matmuls (2 x MACs per item)."""
    rows = effplan.measure([mlp_variants["int8-dynamic"], mlp_variants["int8-weight"]], batch_sizes=(2,),
                           device="cpu", energy=False, time_budget_s=0.02, isolate=False, passes=1, retries=0,
                           progress=False).to_frame().set_index("candidate")
    assert (rows["status"] == "ok").all(), rows["error"].tolist()
    assert rows.loc["mlp-int8-dynamic", "dtype"] == "qint8"
    assert rows.loc["mlp-int8-weight", "dtype"] == "int8-weight"
    assert (rows["param_bytes"] == 2004 + 4 * 68).all()
    assert (rows["params"] == 16 * 32 + 32 + 32 * 32 + 32 + 32 * 4 + 4).all()
    assert (rows["flops_per_item"] == 2 * (16 * 32 + 32 * 32 + 32 * 4)).all()
    # a model quantized by hand with torchao (no declared dtype) gets the same labels
    m = _mlp_candidate().model_fn()
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    quantize_(m, Int8WeightOnlyConfig(set_inductor_config=False))
    assert S.quantized_label(m) == "int8-weight"
    assert S.quantized_label(mlp_variants["int8-dynamic"].build_model()) == "qint8"
    assert S.quantized_label(_mlp_candidate().build_model()) is None


def test_torchao_int8_rows_are_never_projected_to_a_gpu():
    from effplan.refdata.catalog import dtype_runs_on

    for d in ("qint8", "int8-weight"):
        assert dtype_runs_on(d, "cpu") == (True, "")
        runs, why = dtype_runs_on(d, "gpu")
        assert not runs and "measure it" in why and "GPU" in why
    assert not dtype_runs_on("int4-weight", "cpu")[0] and dtype_runs_on("int4-weight", "gpu")[0]


# ----------------------------------------------------------------------------- pruning by hand
def test_prune_30_removes_30_percent_of_channels_by_l1(mlp_variants):
    """round(0.3 x 32) = 10 of 32 output channels go from each hidden Linear (22 kept), and the
    next layer loses the matching inputs. Parameters: 16x22+22 + 22x22+22 + 22x4+4 = 972 against
    16x32+32 + 32x32+32 + 32x4+4 = 1732 (760 fewer)."""
    base = _mlp_candidate().build_model()
    pruned = mlp_variants["prune-30"].build_model()
    shapes = [tuple(m.weight.shape) for m in pruned.modules() if isinstance(m, nn.Linear)]
    assert shapes == [(22, 16), (22, 22), (4, 22)]
    n_base = sum(p.numel() for p in base.parameters())
    n_pruned = sum(p.numel() for p in pruned.parameters())
    assert (n_base, n_pruned, n_base - n_pruned) == (1732, 972, 760)
    # the kept channels of layer 0 are the 22 largest L1 row norms, in their original order
    norms = base[0].weight.abs().sum(dim=1)
    kept = sorted(torch.argsort(norms, descending=True)[:22].tolist())
    assert torch.equal(pruned[0].weight, base[0].weight[kept])
    assert torch.equal(pruned[0].bias, base[0].bias[kept])
    kept1 = sorted(torch.argsort(base[2].weight.abs().sum(dim=1), descending=True)[:22].tolist())
    assert torch.equal(pruned[2].weight, base[2].weight[kept1][:, kept])  # rows and columns removed
    assert torch.equal(pruned[4].weight, base[4].weight[:, kept1])        # the output layer keeps its 4 rows
    assert S.weight_bytes(pruned) == 4 * 972
    # outputs equal those of the baseline with the same channels zeroed (to 1e-5): the shrink is exact
    masked = S._mask(_mlp_candidate().build_model(), mlp_variants["prune-30"].model_fn.plan["pairs"], 0.3)
    x = _mlp_candidate().make_inputs(8)
    with torch.inference_mode():
        assert torch.allclose(pruned(x), masked(x), atol=1e-5)


def test_prune_30_on_the_transformer_shrinks_the_feed_forward_only(tiny_variants):
    """Each layer's linear1 (16 -> 40) loses round(0.3 x 40) = 12 outputs, linear2 (40 -> 16) the
    12 inputs: 12 x 16 + 12 (linear1 rows and biases) + 16 x 12 (linear2 columns) = 396 fewer
    parameters per layer, 1584 over 4 layers. Attention and the head are left alone."""
    base = _tiny_candidate().build_model()
    pruned = tiny_variants["prune-30"].build_model()
    assert [tuple(lay.linear1.weight.shape) for lay in pruned.encoder.layers] == [(28, 16)] * 4
    assert [tuple(lay.linear2.weight.shape) for lay in pruned.encoder.layers] == [(16, 28)] * 4
    n = sum(p.numel() for p in base.parameters()) - sum(p.numel() for p in pruned.parameters())
    assert n == 4 * 396
    assert tiny_variants["prune-30"].model_fn.plan["pairs"] == [
        (f"encoder.layers.{i}.linear1", f"encoder.layers.{i}.linear2") for i in range(4)]


# ----------------------------------------------------------------------------- layers-half
def test_layers_half_halves_the_blocks_and_runs_the_kept_ones(tiny_variants):
    half = tiny_variants["layers-half"].build_model()
    base = _tiny_candidate().build_model()
    assert len(base.encoder.layers) == 4 and len(half.encoder.layers) == 2
    assert half.encoder.num_layers == 2
    # blocks 0 and 2 are kept, unchanged: the output is exactly that of running those two
    for k, i in enumerate((0, 2)):
        for a, b in zip(half.encoder.layers[k].parameters(), base.encoder.layers[i].parameters(), strict=True):
            assert torch.equal(a, b)
    x = _tiny_candidate().make_inputs(4)
    with torch.inference_mode():
        h = base.embed(x)
        for i in (0, 2):
            h = base.encoder.layers[i](h)
        expected = base.head(h.mean(dim=1))
        assert torch.allclose(half(x), expected, atol=1e-6)


def test_layers_half_finds_a_hugging_face_style_module_list():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.layer_idx = 0

        def forward(self, x):
            return x + torch.relu(self.fc(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(Block() for _ in range(5))
            for i, b in enumerate(self.layers):
                b.layer_idx = i

        def forward(self, x):
            for b in self.layers:
                x = b(x)
            return x

    assert S.find_stack(Net()) == "layers"
    model, notes = S._drop_layers(Net(), "layers")
    assert len(model.layers) == 3 and [b.layer_idx for b in model.layers] == [0, 1, 2]
    assert notes == ["layers: 5 -> 3 blocks (kept 0, 2, 4)"]
    assert S.find_stack(_mlp_candidate().model_fn()) is None


# ----------------------------------------------------------------------------- outputs within tolerance
def test_every_variant_runs_and_stays_close_to_the_baseline(mlp_variants, tiny_variants):
    """Stated tolerances, relative to the largest baseline output |y|max on a fixed batch of 8:
    int8 (weights per channel, dynamic activations) 5%; bf16 (8-bit mantissa) 3%; fp16 0.5%.
    prune-30 and layers-half remove computation: they are checked exactly against the masked /
    kept-layers models above, and here only to run and keep the output shape."""
    tol = {"int8-dynamic": 0.05, "int8-weight": 0.05, "bf16": 0.03, "fp16": 0.005}
    for base, variants in ((_mlp_candidate(), mlp_variants), (_tiny_candidate(), tiny_variants)):
        ref = _out(base)
        scale = float(ref.abs().max())
        for recipe, v in variants.items():
            if not S.variant_info(v).feasible:
                continue
            y = _out(v)
            assert y.shape == ref.shape and torch.isfinite(y).all(), (base.name, recipe)
            if recipe in tol:
                assert float((y - ref).abs().max()) <= tol[recipe] * scale, (base.name, recipe)
            info = S.variant_info(v)
            assert math.isfinite(info.check_max_abs_diff)  # slim ran it on its own check batch


def test_fp16_on_cpu_runs_and_says_it_is_measured_not_assumed(mlp_variants):
    info = S.variant_info(mlp_variants["fp16"])
    assert info.feasible and any("fp16 on a CPU" in n and "measured" in n for n in info.notes)


# ----------------------------------------------------------------------------- infeasible recipes
def test_recipes_that_do_not_apply_are_infeasible_with_the_reason(mlp_variants):
    v = mlp_variants["layers-half"]
    info = S.variant_info(v)
    assert not info.feasible and "no stack of repeated blocks" in info.reason
    assert "infeasible" in v.tags
    assert S.infeasible(mlp_variants.values()) == {"mlp-layers-half": info.reason}
    assert [c.name for c in S.feasible(mlp_variants.values())] == [
        "mlp-int8-dynamic", "mlp-int8-weight", "mlp-bf16", "mlp-fp16", "mlp-prune-30"]
    with pytest.raises(InfeasibleRecipeError, match="no stack of repeated blocks"):
        v.build_model()
    more = _by_recipe(S.slim(_mlp_candidate(), ["int4-weight", "distill"], device="cpu"))
    assert "need a CUDA device" in S.variant_info(more["int4-weight"]).reason
    assert "distill needs training data" in S.variant_info(more["distill"]).reason

    def conv_only():
        return nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten())

    conv = Candidate("conv", conv_only, lambda b: torch.ones(b, 1, 8))
    out = _by_recipe(S.slim(conv, ["int8-weight", "prune-30"], device="cpu"))
    assert S.variant_info(out["int8-weight"]).reason == "the model has no nn.Linear layer to quantize"
    assert "nothing to prune" in S.variant_info(out["prune-30"]).reason


def test_an_infeasible_variant_is_an_error_row_with_the_reason_in_measure(mlp_variants):
    with pytest.warns(effplan.EffplanWarning, match="1 of 1 points failed"):
        m = effplan.measure(mlp_variants["layers-half"], batch_sizes=(2,), device="cpu", energy=False,
                            isolate=False, progress=False)
    row = m.to_frame().iloc[0]
    assert row["status"] == "error" and "InfeasibleRecipeError" in row["error"]
    assert "no stack of repeated blocks" in row["error"] and "infeasible" in row["tags"]


def test_plan_names_a_variant_that_has_only_error_rows(mlp_variants):
    import pandas as pd

    from handtyped import hand_measurements

    frame = hand_measurements()
    bad = frame.iloc[[0]].assign(candidate="mlp-layers-half", status="error",
                                 error="InfeasibleRecipeError: recipe 'layers-half' on 'mlp' is infeasible: no stack")
    with pytest.warns(effplan.errors.PlanWarning, match=r"left out, no row measured without an error: "
                      r"mlp-layers-half \(InfeasibleRecipeError: recipe 'layers-half'"):
        p = effplan.plan(pd.concat([frame, bad], ignore_index=True),
                         inference=effplan.InferenceWorkload(requests_per_day=1000, months=3),
                         prices=effplan.Prices(price_per_hour={"lab-cpu": 1.0}))
    assert "mlp-layers-half" not in set(p.summary["candidate"])


def test_without_torchao_one_warning_and_the_int8_recipes_are_infeasible(monkeypatch):
    """Simulated absence: ``import torchao`` fails (None in sys.modules)."""
    from effplan import examples

    mp = monkeypatch.context()
    mp.__enter__().setitem(sys.modules, "torchao", None)
    S.torchao_status.cache_clear()
    examples._warn_legacy.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = _by_recipe(S.slim(_mlp_candidate(), ["int8-dynamic", "int8-weight", "bf16"], device="cpu"))
        slim_warnings = [w for w in caught if issubclass(w.category, SlimWarning)]
        assert len(slim_warnings) == 1
        assert "pip install 'effplan[slim]'" in str(slim_warnings[0].message)
        for recipe in ("int8-dynamic", "int8-weight"):
            info = S.variant_info(out[recipe])
            assert not info.feasible and "torchao is not installed" in info.reason
        assert S.variant_info(out["bf16"]).feasible
        # the built-in families fall back to the labelled legacy recipe, with one warning
        with pytest.warns(SlimWarning, match="LEGACY fallback"):
            assert examples.int8_recipe() == "int8-dynamic-legacy"
        legacy = S.slim(_mlp_candidate(), ["int8-dynamic-legacy"], device="cpu")[0]
        assert legacy.dtype == "qint8" and S.variant_info(legacy).feasible
        assert any("deprecated" in n for n in S.variant_info(legacy).notes)
        assert "quantized" in type(legacy.build_model()[0]).__module__
    finally:
        mp.__exit__(None, None, None)
        S.torchao_status.cache_clear()
        examples._warn_legacy.cache_clear()
    assert S.torchao_status().available


def test_torchao_import_messages_are_captured_not_printed(capfd):
    S.torchao_status.cache_clear()
    status = S.torchao_status()
    out, err = capfd.readouterr()
    assert status.available and status.version
    assert "Failed to load" not in out + err and "register_constant" not in out + err
    assert isinstance(status.import_notes, tuple)  # kept (what they are is in the module docstring)


# ----------------------------------------------------------------------------- distillation
def test_distill_trains_a_half_width_student_with_the_builtin_loss(monkeypatch):
    calls = []
    real = S.distillation_loss

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(S, "distillation_loss", counting)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(64, 16, generator=gen)
    y = torch.randint(0, 4, (64,), generator=gen)
    cfg = S.DistillConfig(epochs=3, batch_size=16)
    v = S.slim(_mlp_candidate(), ["distill"], data=(x, y), device="cpu", distill=cfg)[0]
    info = S.variant_info(v)
    assert info.feasible and v.name == "mlp-distill" and v.tags[0] == "distilled"
    assert "student: prune-50" in info.notes
    assert len(calls) == 3 * 4 and calls[0] == {"temperature": 4.0, "alpha": 0.5}
    student = v.build_model()
    assert [tuple(m.weight.shape) for m in student if isinstance(m, nn.Linear)] == [(16, 16), (16, 16), (4, 16)]
    # trained: its weights are not the pruned baseline's any more, and two builds agree
    pruned = S._prune(_mlp_candidate().build_model(), v.model_fn.plan["structure"]["pairs"], 0.5)[0]
    assert not torch.equal(student[0].weight, pruned[0].weight)
    assert torch.equal(student[0].weight, v.build_model()[0].weight)


# ----------------------------------------------------------------------------- worker round trip
@pytest.mark.slow
def test_variants_survive_the_worker_round_trip(mlp_variants, tiny_variants):
    from effplan.worker import can_ship, run_isolated

    def _build_and_run(cands, report=None):  # shipped by value, as a notebook closure is
        out = {}
        for c in cands:
            model = c.build_model("cpu").eval()
            with torch.inference_mode():
                out[c.name] = model(c.make_inputs(3)).float()
        return out

    cands = S.feasible(list(mlp_variants.values()) + list(tiny_variants.values()))
    assert all(can_ship(c)[0] for c in cands)
    there = run_isolated(_build_and_run, cands)
    here = _build_and_run(cands)
    assert set(there) == set(here) == {c.name for c in cands}
    for name in here:
        assert torch.equal(there[name], here[name]), name
