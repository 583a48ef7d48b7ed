"""The built-in decoder family: KV-cache decode equals the full forward pass, FLOPs per output
token and per prompt token against the hand formula, real training (perplexity falls), seeded
determinism, int8, and the corpus that ships with Python."""

from __future__ import annotations

import math

import pytest
import torch

from effplan import decoders as D
from effplan.flops import count_flops
from effplan.generation import call_module, measure_generation
from effplan.records.samples import TimingPolicy

SMALL = D.DecoderConfig(d_model=32, heads=4, layers=2, context=128, train_context=32, train_steps=40,
                        batch=8)


def _untrained(cfg=SMALL, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return D._build(cfg).eval()


def test_cached_decode_matches_full_forward():
    m = _untrained()
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full = m(ids)  # (2, 12, 256)
        cache = m.prefill(ids[:, :8])
        torch.testing.assert_close(cache[-1], full[:, 7], rtol=1e-5, atol=1e-5)
        for i in range(8, 12):
            logits, cache = m.step(ids[:, i:i + 1], cache)
            torch.testing.assert_close(logits, full[:, i], rtol=1e-5, atol=1e-5)
    assert cache[0][0].shape == (2, SMALL.heads, 12, SMALL.d_model // SMALL.heads)


@pytest.mark.parametrize("context", [5, 40])
def test_decode_flops_per_output_token_match_the_hand_formula(context):
    m = _untrained()
    ids = torch.randint(0, 256, (3, context - 1), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cache = m.prefill(ids)
        fc = count_flops(call_module(m, lambda t: m.step(t, cache)), (ids[:, -1:],), engine="dispatch")
    # hand: L * (24 d^2 + 4 T d) + 2 d V, with d = 32, L = 2, V = 256, T = context
    d, L, T = 32, 2, context
    assert fc.total / 3 == L * (24 * d * d + 4 * T * d) + 2 * d * 256
    assert fc.total / 3 == D.decode_flops_per_token(SMALL, context)
    assert fc.coverage == 1.0


def test_prefill_flops_per_prompt_token_match_the_hand_formula():
    m = _untrained()
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fc = count_flops(call_module(m, m.prefill), (ids,), engine="dispatch")
    assert fc.total / 32 == pytest.approx(D.prefill_flops_per_token(SMALL, 16), rel=0, abs=1e-9)


def test_corpus_is_real_text_and_split():
    train, held = D.corpus_bytes()
    assert len(train) > 50_000 and len(held) > 3_000
    assert b"Return" in train and held not in train


def test_family_trains_for_real_and_is_deterministic():
    cands = D.decoder_candidates(seed=0, config=SMALL)
    assert [c.name for c in cands] == ["decoder-base", "decoder-slim", "decoder-student", "decoder-int8"]
    assert [c.tags for c in cands[:3]] == [("baseline",), ("slim",), ("distilled",)]
    # the int8 member is effplan.slim's torchao int8 dynamic variant of the baseline
    assert cands[3].tags == ("quantized", "recipe:int8-dynamic", "variant-of:decoder-base")
    ppl = {c.name: c.perplexity for c in cands}
    _, held = D.corpus_bytes()
    untrained = D.perplexity(_untrained(), D._tensor(held), SMALL.train_context)
    assert untrained > 150  # ~uniform over 256 bytes
    for name, p in ppl.items():
        assert 1 < p < untrained / 4, (name, p)
    assert abs(ppl["decoder-int8"] - ppl["decoder-base"]) / ppl["decoder-base"] < 0.05
    # weights are rebuilt identically (seeded), and the slim member really has half the layers
    a, b = cands[0].model_fn(), cands[0].model_fn()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert len(cands[1].model_fn().blocks) == 1 and len(a.blocks) == 2
    assert cands[3].device == "cpu" and cands[3].dtype == "qint8"
    q = cands[3].build("cpu")
    assert type(q.blocks[0].qkv.weight).__module__.startswith("torchao")
    assert D.perplexity(q, D._tensor(held), SMALL.train_context) == pytest.approx(ppl["decoder-int8"])
    assert D.perplexity(a, D._tensor(held), SMALL.train_context) == pytest.approx(ppl["decoder-base"])


def test_family_measures_end_to_end():
    cands = D.decoder_candidates(seed=0, config=SMALL)
    m = measure_generation([cands[0], cands[3]], batch_sizes=(2,), prompt_tokens=(8,), output_tokens=4,
                           device="cpu", timing=TimingPolicy(min_repeats=6, time_budget_s=0.05, warmup_s=0.0),
                           energy=False, progress=False, threads=1)
    df = m.to_frame().set_index("candidate")
    assert (df["status"] == "ok").all(), df["error"].tolist()
    # K and V: 2 x layers x d_model float32 per token, also for int8 (activations stay float)
    assert df["kv_cache_bytes_per_token"].tolist() == [2 * 2 * 32 * 4] * 2
    assert df.loc["decoder-base", "flops_per_output_token"] == D.decode_flops_per_token(SMALL, 8 + 2 + 1)
    assert df.loc["decoder-int8", "dtype"] == "qint8"
    assert df.loc["decoder-int8", "param_bytes"] < df.loc["decoder-base", "param_bytes"] / 2
    assert not math.isnan(df.loc["decoder-base", "perplexity"])


def test_config_validation():
    from effplan.errors import ValidationError

    with pytest.raises(ValidationError, match="heads"):
        D.DecoderConfig(d_model=30, heads=4)
    with pytest.raises(ValidationError, match="train_context"):
        D.DecoderConfig(context=16, train_context=32)
    m = _untrained()
    with pytest.raises(ValidationError, match="context"):
        m.prefill(torch.zeros(1, 129, dtype=torch.int64))
