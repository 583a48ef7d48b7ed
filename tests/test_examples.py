"""Built-in example candidates: the digits family trained for real, the transformer family."""

from __future__ import annotations

import time

import pytest
import torch

from effplan import examples
from effplan.models.candidates import Candidate
from effplan.errors import ValidationError


@pytest.fixture(scope="module")
def digits():
    """Train once for this module (a few seconds of CPU), checking global state is left alone."""
    examples._digits_family.cache_clear()
    rng = torch.get_rng_state()
    threads = torch.get_num_threads()
    cands = examples.digits_candidates(seed=0)
    assert torch.equal(torch.get_rng_state(), rng), "training advanced the global RNG"
    assert torch.get_num_threads() == threads and torch.is_grad_enabled()
    return cands


def test_family_members_and_tags(digits):
    assert [c.name for c in digits] == ["digits-mlp", "digits-mlp-slim", "digits-mlp-student",
                                        "digits-mlp-int8"]
    assert [c.tags for c in digits[:3]] == [("baseline",), ("slim",), ("distilled",)]
    # the int8 member is made by effplan.slim with torchao's int8 dynamic recipe
    assert digits[3].tags == ("quantized", "recipe:int8-dynamic", "variant-of:digits-mlp")
    assert all(isinstance(c, Candidate) and c.quality_metric == "accuracy" for c in digits)
    q = digits[3]
    assert (q.dtype, q.device, q.is_quantized) == ("qint8", "cpu", True)
    from effplan.slim import variant_info

    info = variant_info(q)
    assert (info.recipe, info.baseline, info.feasible) == ("int8-dynamic", "digits-mlp", True)


def test_accuracy_is_real_and_high(digits):
    acc = {c.name: c.quality for c in digits}
    assert acc["digits-mlp"] > 0.9
    assert acc["digits-mlp-slim"] > 0.9 and acc["digits-mlp-student"] > 0.9
    assert abs(acc["digits-mlp-int8"] - acc["digits-mlp"]) <= 0.02
    # quality is what the built models score on the held-out split (450 = 25% of 1,797 digits)
    fam = examples._digits_family(0)
    assert fam.x_test.shape == (450, 64) and fam.y_test.shape == (450,)
    for c in digits:
        model = c.build_model()
        with torch.inference_mode():
            pred = model(fam.x_test).argmax(1)
        assert (pred == fam.y_test).float().mean().item() == pytest.approx(c.quality)


def test_models_have_the_documented_shapes(digits):
    params = {c.name: sum(p.numel() for p in c.build_model().parameters()) for c in digits}
    assert params["digits-mlp"] == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert params["digits-mlp-slim"] == 64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
    assert params["digits-mlp-student"] == 64 * 64 + 64 + 64 * 10 + 10
    # torchao keeps the weights as parameters (int8 tensor subclasses): the same logical count
    assert params["digits-mlp-int8"] == params["digits-mlp"]
    q = digits[3].build_model()
    assert type(q[0]).__name__ == "Linear" and type(q[0].weight).__module__.startswith("torchao")
    from effplan.models.candidates import storage_tensors

    # int8 data (256 x 64 bytes) + float32 scale (256 x 4) + int8 zero point (256) of the first layer
    assert sum(t.numel() * t.element_size() for t in storage_tensors(q[0].weight)) == 256 * 64 + 256 * 4 + 256
    assert {str(t.dtype) for t in storage_tensors(q[0].weight)} == {"torch.int8", "torch.float32"}


def test_cached_fresh_models_and_inputs(digits):
    t0 = time.perf_counter()
    again = examples.digits_candidates(seed=0)
    assert time.perf_counter() - t0 < 1.0  # lru_cache: no retraining
    assert again[0].quality == digits[0].quality
    a, b = digits[0].build_model(), digits[0].build_model()
    assert a is not b and torch.equal(a[0].weight, b[0].weight)
    with torch.no_grad():
        a[0].weight.zero_()  # a model's weights are its own: the cached state is untouched
    assert not torch.equal(digits[0].build_model()[0].weight, a[0].weight)
    x = digits[0].make_inputs(500)
    assert x.shape == (500, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    fam = examples._digits_family(0)
    assert torch.equal(x[450:], fam.x_test[:50])  # cycled past the 450 held-out images
    y = digits[0].make_targets(3)
    assert torch.equal(y, fam.y_test[:3])


def test_transformer_family():
    small, base = examples.transformer_candidates(seq_len=16, vocab_size=100, num_classes=3)
    assert (small.name, base.name) == ("transformer-small", "transformer-base")
    assert small.quality is None and base.quality is None
    tokens = small.make_inputs(2)
    assert tokens.shape == (2, 16) and tokens.dtype == torch.int64 and int(tokens.max()) < 100
    ms, mb = small.build_model(), base.build_model()
    with torch.inference_mode():
        assert ms.eval()(tokens).shape == (2, 3)
    n_small = sum(p.numel() for p in ms.parameters())
    n_base = sum(p.numel() for p in mb.parameters())
    assert n_base > 3 * n_small
    assert any(isinstance(m, torch.nn.TransformerEncoder) for m in mb.modules())
    # seeded: two builds give the same weights
    assert torch.equal(ms.embed.weight, small.build_model().embed.weight)
    assert small.make_targets(4).shape == (4,)


def test_transformer_validation():
    with pytest.raises(ValidationError) as info:
        examples.transformer_candidates(seq_len=0)
    assert info.value.field == "seq_len"
