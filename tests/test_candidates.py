"""Candidate: validation at the boundary, inputs, dtype casting, the documented training losses."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from effplan.models.candidates import Candidate, call_model, tensor_leaves
from effplan.errors import ValidationError


def _model() -> nn.Module:
    return nn.Linear(3, 2)


def _inputs(bs: int) -> torch.Tensor:
    return torch.ones(bs, 3)


def test_valid_candidate_normalises_fields():
    c = Candidate("m", _model, _inputs, tags=["baseline"], quality="0.75", dtype=torch.float16)
    assert c.tags == ("baseline",)
    assert c.quality == 0.75
    assert c.dtype == "float16"
    assert c.quality_metric == "accuracy"
    assert c.device is None and c.loss_fn is None and c.target_fn is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.name = "other"  # type: ignore[misc]


def test_keyword_only_options():
    with pytest.raises(TypeError):
        Candidate("m", _model, _inputs, ("baseline",))  # type: ignore[misc]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": 3}, "name"),
    ({"model_fn": "not callable"}, "model_fn"),
    ({"input_fn": None}, "input_fn"),
    ({"loss_fn": 1.0}, "loss_fn"),
    ({"target_fn": "y"}, "target_fn"),
    ({"tags": ("a,b",)}, "tags"),
    ({"tags": ("",)}, "tags"),
    ({"quality": "high"}, "quality"),
    ({"dtype": "float8"}, "dtype"),
    ({"quality_metric": ""}, "quality_metric"),
])
def test_validation_names_the_field(kwargs, field):
    args = {"name": "m", "model_fn": _model, "input_fn": _inputs} | kwargs
    with pytest.raises(ValidationError) as info:
        Candidate(args.pop("name"), args.pop("model_fn"), args.pop("input_fn"), **args)
    assert info.value.field == field
    assert field in str(info.value)


def test_nan_quality_means_unknown_and_string_tag_is_one_tag():
    c = Candidate("m", _model, _inputs, quality=float("nan"), tags="slim")
    assert c.quality is None
    assert c.tags == ("slim",)


def test_build_model_casts_float_dtype_and_rejects_non_modules():
    c = Candidate("m", _model, _inputs, dtype="float64")
    m = c.build_model("cpu")
    assert m.weight.dtype == torch.float64
    x = c.make_inputs(4)
    assert x.dtype == torch.float64 and x.shape == (4, 3)
    bad = Candidate("bad", lambda: "no module", _inputs)
    with pytest.raises(ValidationError) as info:
        bad.build_model()
    assert info.value.field == "model_fn"


def test_make_inputs_keeps_integer_tensors_and_nesting():
    c = Candidate("m", _model, lambda bs: {"ids": torch.arange(bs), "x": (torch.zeros(bs, 2),)},
                  dtype="bfloat16")
    inp = c.make_inputs(3)
    assert inp["ids"].dtype == torch.int64
    assert inp["x"][0].dtype == torch.bfloat16
    assert [t.shape[0] for t in tensor_leaves(inp)] == [3, 3]


def test_qint8_dtype_is_a_label_only():
    c = Candidate("q", _model, _inputs, dtype="int8")
    assert c.dtype == "int8" and c.is_quantized
    assert c.build_model().weight.dtype == torch.float32
    assert Candidate("q2", _model, _inputs, tags=("quantized",)).is_quantized


def test_call_model_conventions():
    class Two(nn.Module):
        def forward(self, a, b=0):
            return a + b

    m = Two()
    assert call_model(m, torch.tensor(1.0)).item() == 1.0
    assert call_model(m, (torch.tensor(1.0), torch.tensor(2.0))).item() == 3.0
    assert call_model(m, {"a": torch.tensor(1.0), "b": torch.tensor(5.0)}).item() == 6.0


def test_default_loss_without_targets_is_sum_of_output_means():
    c = Candidate("m", _model, _inputs)
    outputs = (torch.tensor([[1.0, 3.0]]), {"aux": torch.tensor([4.0, 8.0])}, torch.tensor([7]))
    # mean(1, 3) + mean(4, 8) = 2 + 6; the integer tensor is not a loss term
    assert c.loss(outputs, None).item() == pytest.approx(8.0)


def test_default_loss_with_targets_is_cross_entropy():
    c = Candidate("m", _model, _inputs, target_fn=lambda bs: torch.zeros(bs, dtype=torch.int64))
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    targets = c.make_targets(2)
    # row 0: -log(1/2); row 1: -log(e^2 / (e^2 + 1)) = log(1 + e^-2)
    expected = (torch.log(torch.tensor(2.0)) + torch.log1p(torch.exp(torch.tensor(-2.0)))) / 2
    assert c.loss(logits, targets).item() == pytest.approx(expected.item())
    assert Candidate("n", _model, _inputs).make_targets(2) is None


def test_custom_loss_fn_receives_outputs_and_targets():
    seen = {}

    def loss_fn(out, tgt):
        seen["args"] = (out, tgt)
        return out.sum() * 0 + 42.0

    c = Candidate("m", _model, _inputs, loss_fn=loss_fn, target_fn=lambda bs: torch.ones(bs))
    out = torch.zeros(2, 2)
    assert c.loss(out, c.make_targets(2)).item() == 42.0
    assert seen["args"][0] is out and seen["args"][1].tolist() == [1.0, 1.0]


def test_with_quality_returns_a_copy():
    c = Candidate("m", _model, _inputs)
    d = c.with_quality(0.5, "f1")
    assert (d.quality, d.quality_metric, c.quality) == (0.5, "f1", None)
