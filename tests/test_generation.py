"""Generation measurement on a protocol model with a fake clock: exact TTFT/TPOT, tokens/s,
KV-cache bytes, per-token FLOPs and energy, the steady-state decode cycle, rewind, the frame,
hand-typed rows, and the transformers adapter (built from a config, offline)."""

from __future__ import annotations

import importlib
import json
import math

import pandas as pd
import pytest
import torch
from torch import nn

import effplan
from effplan.errors import ValidationError
from effplan.generation import GenerationCandidate, as_generator, cache_bytes, measure_generation
from effplan.records.measurements import Measurements
from effplan.records.samples import TimingPolicy
from effplan.records.schema import GENERATION_REQUIRED_COLUMNS, MEASUREMENT_COLUMNS
from fakes import FakeClock, FakeMeter  # noqa: E402

measure_mod = importlib.import_module("effplan.measurement")
probes = importlib.import_module("effplan.bench.probes")
points_mod = importlib.import_module("effplan.bench.points")
sweep_mod = importlib.import_module("effplan.bench.sweep")
configs_mod = importlib.import_module("effplan.bench.configs")

V, H = 10, 8  # vocabulary, hidden width of the fake model
PREFILL_S, STEP_S = 0.020, 0.002




class ProtocolLM(nn.Module):
    """prefill: embed, keep 4 floats per token as the cache, logits of the last position.
    step: one token, appends 4 floats (16 bytes) per sequence. Advances the fake clock."""

    def __init__(self, clock: FakeClock, contexts: list[int], in_place: bool = False) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, H)
        self.lin = nn.Linear(H, V, bias=False)
        self.clock, self.contexts, self.in_place = clock, contexts, in_place

    def prefill(self, ids):
        self.clock.advance(PREFILL_S)
        h = self.emb(ids)
        return [h[..., :4].float().clone()]

    def step(self, tok, cache):
        self.clock.advance(STEP_S)
        self.contexts.append(cache[0].shape[1])
        h = self.emb(tok.reshape(-1, 1))
        logits = self.lin(h[:, -1])
        new = torch.cat([cache[0], h[..., :4].float()], dim=1)
        if self.in_place:
            cache[0] = new
            return logits, cache
        return logits, [new]


class RewindLM(ProtocolLM):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, in_place=True, **kw)
        self.rewinds = 0

    def rewind(self, cache, tokens):
        self.rewinds += 1
        cache[0] = cache[0][:, :tokens]
        return cache


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setattr(probes, "hardware_facts", lambda dev: {"name": "Test CPU", "hardware_id": "hw1"})
    monkeypatch.setattr(configs_mod, "PASSES_DEFAULT", 1)  # exact fake-clock sequences: one pass
    clock = FakeClock()
    return clock


def _policy(n: int = 10) -> TimingPolicy:
    return TimingPolicy(min_repeats=n, max_repeats=n, warmup_calls=2, warmup_s=0.0, min_sample_s=0.0,
                        time_budget_s=1e6)


def _run(clock, model_cls=ProtocolLM, bs=(2,), prompts=(6,), n_out=4, energy=True, **kw):
    contexts: list[int] = []
    models: list = []

    def model_fn():
        m = model_cls(clock, contexts)
        models.append(m)
        return m

    cand = GenerationCandidate("fake-lm", model_fn, vocab_size=V, tags=("baseline",), perplexity=12.5)
    # the fake clock and the recorded contexts live in this process: no worker, no retries
    kw.setdefault("isolate", False)
    kw.setdefault("retries", 0)
    m = measure_generation(cand, batch_sizes=bs, prompt_tokens=prompts, output_tokens=n_out, device="cpu",
                           timing=_policy(), energy=energy, energy_window_s=0.1, idle_power_w=5.0,
                           progress=False, clock=clock, energy_meter=lambda dev: FakeMeter(clock, min_window_s=0.0), **kw)
    return m, contexts, models


def test_exact_ttft_tpot_tokens_per_s_kv_flops_energy(env):
    m, contexts, _ = _run(env)
    df = m.to_frame()
    assert list(df.columns) == list(MEASUREMENT_COLUMNS)
    r = df.iloc[0]
    assert (r["mode"], r["batch_size"], r["prompt_tokens"], r["output_tokens"]) == ("generation", 2, 6, 4)
    assert r["status"] == "ok", r["error"]
    assert r["ttft_p50_ms"] == pytest.approx(20.0) and r["ttft_p95_ms"] == pytest.approx(20.0)
    assert r["tpot_p50_ms"] == pytest.approx(2.0) and r["tpot_p95_ms"] == pytest.approx(2.0)
    assert r["prefill_tokens_per_s"] == pytest.approx(2 * 6 / 0.020)
    assert r["decode_tokens_per_s"] == pytest.approx(2 / 0.002)
    assert r["kv_cache_bytes_per_token"] == 16.0  # 4 float32 per token per sequence
    # prefill: the LM head is not run in prefill of this fake -> 0 matmul FLOPs; step: 2*H*V
    assert r["flops_per_prompt_token"] == 0.0
    assert r["flops_per_output_token"] == 2 * H * V
    # energy: 50 W; prefill 20 ms per call of 12 tokens, decode 2 ms per step of 2 tokens
    assert r["energy_per_prompt_token_j"] == pytest.approx(50 * 0.020 / 12)
    assert r["energy_per_output_token_j"] == pytest.approx(50 * 0.002 / 2)
    assert r["energy_source"] == "rapl" and r["provenance"] == "measured"
    assert r["perplexity"] == 12.5 and r["param_bytes"] == (V * H + H * V) * 4
    # generation rows leave the fixed-shape columns empty rather than guessing an "item"
    assert math.isnan(r["latency_p50_ms"]) and math.isnan(r["energy_per_item_j"])
    assert len(m.samples) == 2


def test_decode_cycles_through_the_response_in_steady_state(env):
    _, contexts, _ = _run(env, n_out=4)
    # contexts seen by step(): FLOP count at prompt + n_out // 2 = 8, then cycles 6, 7, 8, 9, 6, ...
    timed = contexts[1:]
    assert timed[:9] == [6, 7, 8, 9, 6, 7, 8, 9, 6]
    assert set(timed) == {6, 7, 8, 9}


def test_in_place_cache_is_rewound(env):
    _, contexts, models = _run(env, model_cls=RewindLM, n_out=3, energy=False)
    assert set(contexts[1:]) == {6, 7, 8}
    assert models[0].rewinds > 0


def test_several_points_and_results_file(env, tmp_path):
    path = tmp_path / "gen.jsonl"
    m, _, _ = _run(env, bs=(1, 3), prompts=(4, 8), results_path=path)
    df = m.to_frame()
    assert sorted(zip(df["batch_size"], df["prompt_tokens"], strict=True)) == [(1, 4), (1, 8), (3, 4), (3, 8)]
    back = Measurements.load(path).to_frame()
    assert len(back) == 4 and set(back["mode"]) == {"generation"}
    assert back["ttft_p50_ms"].tolist() == pytest.approx([20.0] * 4)


def test_failures_become_error_rows(env):
    def bad():
        raise RuntimeError("boom")

    cand = GenerationCandidate("bad", bad, vocab_size=V)
    with pytest.warns(effplan.EffplanWarning, match="1 of 1 generation points failed"):
        m = measure_generation(cand, batch_sizes=1, prompt_tokens=4, output_tokens=2, device="cpu",
                               timing=_policy(), energy=False, progress=False, clock=env, isolate=False,
                               retries=0)
    r = m.to_frame().iloc[0]
    assert r["status"] == "error" and "boom" in r["error"]


def test_measure_delegates_and_validates(env):
    contexts: list[int] = []
    cand = GenerationCandidate("fake-lm", lambda: ProtocolLM(env, contexts), vocab_size=V)
    m = effplan.measure(cand, mode="generation", prompt_tokens=5, output_tokens=2, batch_sizes=(1,),
                        device="cpu", timing=_policy(), energy=False, progress=False, clock=env,
                        isolate=False, retries=0)
    assert m.to_frame()["prompt_tokens"].tolist() == [5]
    with pytest.raises(ValidationError, match="prompt_tokens"):
        effplan.measure(cand, mode="inference", prompt_tokens=5)
    with pytest.raises(ValidationError, match="output_tokens"):
        measure_generation(cand, prompt_tokens=4, output_tokens=0)
    with pytest.raises(ValidationError, match="GenerationCandidate"):
        measure_generation([object()], prompt_tokens=4, output_tokens=2)
    with pytest.raises(ValidationError, match="prefill"):
        as_generator(nn.Linear(2, 2))
    with pytest.raises(ValidationError, match="perplexity"):
        GenerationCandidate("x", lambda: None, vocab_size=3, perplexity=0.5)


def test_cache_bytes_walks_nested_objects():
    class Obj:
        def __init__(self):
            self.layers = [torch.zeros(2, 3), (torch.zeros(4, dtype=torch.float64),)]

    t = torch.zeros(5, dtype=torch.int8)
    assert cache_bytes((Obj(), {"a": t, "b": t})) == 2 * 3 * 4 + 4 * 8 + 5


def test_hand_typed_generation_rows_validate():
    rows = pd.DataFrame([{"candidate": "vllm-8b", "hardware": "L4", "mode": "generation", "batch_size": 8,
                          "prompt_tokens": 512, "ttft_p50_ms": 80, "ttft_p95_ms": 120, "tpot_p50_ms": 20,
                          "tpot_p95_ms": 25, "kv_cache_bytes_per_token": 131072, "param_bytes": 16e9,
                          "energy_per_prompt_token_j": 0.01, "energy_per_output_token_j": 0.3,
                          "idle_power_w": 20}])
    m = Measurements.from_frame(rows)
    r = m.to_frame().iloc[0]
    assert r["provenance"] == "entered" and r["tpot_p95_ms"] == 25
    with pytest.raises(ValidationError, match="tpot_p95_ms"):
        Measurements.from_frame(rows.drop(columns=["tpot_p95_ms"]))
    assert set(GENERATION_REQUIRED_COLUMNS) <= set(MEASUREMENT_COLUMNS)


def test_transformers_causal_lm_from_config_offline():
    transformers = pytest.importorskip("transformers")
    from effplan.generation import hf_candidate

    cfg = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=100,
                                   max_position_embeddings=64)
    cand = hf_candidate("llama-tiny", cfg)
    m = measure_generation(cand, batch_sizes=2, prompt_tokens=8, output_tokens=4, device="cpu",
                           timing=TimingPolicy(min_repeats=6, time_budget_s=0.05, warmup_s=0.0),
                           energy=False, progress=False, threads=1)
    r = m.to_frame().iloc[0]
    assert r["status"] == "ok", r["error"]
    # GQA: k and v of 2 kv heads x 8 dims x 2 layers, float32
    assert r["kv_cache_bytes_per_token"] == 2 * 2 * 2 * 8 * 4
    # decode step at context 8 + 4 // 2 + 1 = 11: projections q,o 32x32, k,v 32x16, MLP 3 x 32x64,
    # attention 4 heads x 11 x (8 + 8), LM head 32 x 100 (MACs; FLOPs = 2x)
    d, kv, ff, T = 32, 16, 64, 11
    per_layer = 2 * (2 * d * d + 2 * d * kv + 3 * d * ff + 4 * T * 16)
    assert r["flops_per_output_token"] == 2 * per_layer + 2 * d * 100
    assert r["ttft_p50_ms"] > 0 and r["tpot_p50_ms"] > 0


def test_mixed_frames_check_each_row_against_its_own_mode():
    inf = {"candidate": "clf", "hardware": "L4", "mode": "inference", "batch_size": 8, "latency_p95_ms": 5,
           "throughput_items_per_s": 100, "energy_per_item_j": 1.0, "idle_power_w": 20}
    gen = {"candidate": "llm", "hardware": "L4", "mode": "generation", "batch_size": 4, "prompt_tokens": 128,
           "ttft_p50_ms": 50, "ttft_p95_ms": 60, "tpot_p50_ms": 10, "tpot_p95_ms": 12,
           "kv_cache_bytes_per_token": 1e4, "param_bytes": 1e9, "energy_per_prompt_token_j": 0.01,
           "energy_per_output_token_j": 0.1, "idle_power_w": 20}
    df = Measurements.from_frame(pd.DataFrame([inf, gen])).to_frame()
    assert df["mode"].tolist() == ["inference", "generation"]
    assert math.isnan(df["ttft_p50_ms"].iloc[0]) and math.isnan(df["latency_p95_ms"].iloc[1])
    with pytest.raises(ValidationError, match="ttft_p95_ms"):
        Measurements.from_frame(pd.DataFrame([inf, {**gen, "ttft_p95_ms": None}]))
    with pytest.raises(ValidationError, match="latency_p95_ms"):
        Measurements.from_frame(pd.DataFrame([{**inf, "latency_p95_ms": None}, gen]))


def test_transformers_model_loaded_from_a_local_path(tmp_path):
    transformers = pytest.importorskip("transformers")
    from effplan.generation import hf_candidate

    cfg = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=64)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(tmp_path / "tiny-gpt2")
    cand = hf_candidate("tiny-gpt2", path=str(tmp_path / "tiny-gpt2"))
    assert cand.vocab_size == 64
    m = measure_generation(cand, batch_sizes=1, prompt_tokens=8, output_tokens=2, device="cpu",
                           timing=TimingPolicy(min_repeats=6, time_budget_s=0.05, warmup_s=0.0),
                           energy=False, progress=False, threads=1)
    r = m.to_frame().iloc[0]
    assert r["status"] == "ok", r["error"]
    assert r["kv_cache_bytes_per_token"] == 2 * 1 * 32 * 4  # k and v, 1 layer, 32 wide, float32
    with pytest.raises(ValidationError, match="exactly one"):
        hf_candidate("x")


def test_operator_calls_of_prefill_and_decode_are_recorded(env):
    """The launch floor of projections: operator calls of one prefill of the batch and of one
    decode step, as effplan.flops counts them on the same calls."""
    from effplan.flops import count_flops

    m, _, models = _run(env)
    r = m.to_frame().iloc[0]
    lm = models[-1]
    ids = torch.zeros((2, 6), dtype=torch.long)
    from effplan.generation import call_module
    want_pre = count_flops(call_module(lm, lm.prefill), (ids,), engine="dispatch").operator_calls
    mid = lm.prefill(torch.zeros((2, 8), dtype=torch.long))
    want_dec = count_flops(call_module(lm, lambda t: lm.step(t, mid)), (ids[:, -1:],),
                           engine="dispatch").operator_calls
    assert want_pre > 0 and want_dec > want_pre     # the step also runs the LM head and a concat
    assert r["operator_calls_prefill"] == want_pre and r["operator_calls_decode"] == want_dec


# ---------------------------------------------------------------- same rules as inference points
def _stable_policy() -> TimingPolicy:
    # with the fake clock every sample is identical: the CI is 0 and one round of 10 is stable
    return TimingPolicy(min_repeats=10, max_repeats=1000, min_rounds=1, samples_per_round=10,
                        min_round_s=0.0, warmup_calls=2, warmup_s=0.0, min_sample_s=0.0, time_budget_s=1e6)


def _counting_candidate(clock, built: list[int]) -> GenerationCandidate:
    def model_fn():
        built.append(1)
        torch.manual_seed(0)
        return ProtocolLM(clock, [])

    return GenerationCandidate("fake-lm", model_fn, vocab_size=V)


def test_resume_skips_exactly_the_finished_generation_points(env, tmp_path):
    path = tmp_path / "gen.jsonl"
    built: list[int] = []
    cand = _counting_candidate(env, built)
    kw = dict(batch_sizes=(1,), output_tokens=2, device="cpu", timing=_stable_policy(), energy=False,
              progress=False, clock=env, isolate=False, results_path=path)
    first = measure_generation(cand, prompt_tokens=(4,), **kw)
    assert first.to_frame()["stable"].tolist() == [True] and len(built) == 1
    again = measure_generation(cand, prompt_tokens=(4, 8), resume=True, **kw)
    assert len(built) == 2  # only prompt 8 was measured
    df = again.to_frame()
    assert sorted(df["prompt_tokens"].tolist()) == [4, 8]
    assert len(Measurements.load(path).to_frame()) == 2
    # raw prefill and decode samples of both points are beside the results
    phases = sorted(k[2] for k in effplan.store.load_samples(path))
    assert phases == ["decode", "decode", "prefill", "prefill"]
    # the CLI no longer refuses --resume for generation (measure() itself resumes)


def test_not_stable_generation_point_is_retried_after_the_sweep(env):
    built: list[int] = []
    cand = _counting_candidate(env, built)
    with pytest.warns(effplan.EffplanWarning, match="NOT stable"):
        m = measure_generation(cand, batch_sizes=(1,), prompt_tokens=(4,), output_tokens=2, device="cpu",
                               timing=_policy(), energy=False, progress=False, clock=env, isolate=False,
                               retries=2)
    r = m.to_frame().iloc[0]
    assert len(built) == 3 and r["stop_reason"] == "time-budget"  # first try + 2 retries
    assert "(after 2 retries)" in r["timing_note"]


def test_generation_rows_carry_reproducibility_fields_hashed_once_per_candidate(env, monkeypatch):
    from effplan import reproducibility

    hashed: list[int] = []
    real = reproducibility.weights_sha256
    monkeypatch.setattr(reproducibility, "weights_sha256", lambda m: hashed.append(1) or real(m))
    built: list[int] = []
    m = measure_generation(_counting_candidate(env, built), batch_sizes=(1, 2), prompt_tokens=(4,),
                           output_tokens=2, device="cpu", timing=_stable_policy(), energy=False,
                           progress=False, clock=env, isolate=False)
    df = m.to_frame()
    torch.manual_seed(0)
    expected = real(ProtocolLM(env, []))
    assert df["weights_sha256"].tolist() == [expected, expected]
    assert len(hashed) == 1 and len(built) == 2  # two points, one hash
    assert set(df["python_version"]) == {effplan.reproducibility.software_versions()["python_version"]}
    assert set(df["effplan_version"]) == {effplan.__version__}
    assert '"target_ci_rel":0.02' in df.loc[0, "timing_policy"]
    assert df["seed"].isna().all()  # the candidate declares no seed: unknown, not 0


class _NoClock:
    def advance(self, s: float) -> None:
        return None


@pytest.mark.slow
def test_real_generation_point_in_a_worker_completes_and_labels_itself(tmp_path):
    import warnings

    cand = GenerationCandidate("real-lm", lambda: ProtocolLM(_NoClock(), []), vocab_size=V)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", effplan.EffplanWarning)  # a busy CI machine may flag it
        m = effplan.measure(cand, mode="generation", batch_sizes=(2, 1), prompt_tokens=(6, 3), output_tokens=3,
                            device="cpu", time_budget_s=0.1, energy=False, threads=1, retries=0,
                            progress=False, results_path=tmp_path / "g.jsonl")
    df = m.to_frame()
    r = df.iloc[0]
    assert (df["status"] == "ok").all(), df["error"].tolist()
    assert r["isolation"] == "worker" and r["peak_memory_source"] == "worker-peak-rss-minus-baseline"
    assert r["ttft_p50_ms"] > 0 and r["tpot_p50_ms"] > 0 and r["kv_cache_bytes_per_token"] == 16
    assert len(r["weights_sha256"]) == 64 and r["stop_reason"] in ("ci-met", "time-budget", "unstable")
    # every concurrency x prompt length, both passes, in the candidate's one worker
    recs = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert len(recs) == 8 and len({rec["worker_pid"] for rec in recs}) == 1
    assert [rec["timing_pass"] for rec in recs] == [1] * 4 + [2] * 4
    # FLOPs counted in the first pass, carried to the second
    assert df["flops_per_output_token"].notna().all() and (df["timing_pass"] == 2).all()


def test_generation_worker_crash_is_an_error_row():
    import os

    cand = GenerationCandidate("exits", lambda: os._exit(7), vocab_size=V)
    with pytest.warns(effplan.EffplanWarning, match="1 of 1 generation points failed"):
        m = measure_generation(cand, batch_sizes=1, prompt_tokens=4, output_tokens=2, device="cpu",
                               energy=False, progress=False, retries=0, threads=1)
    r = m.to_frame().iloc[0]
    assert r["status"] == "error" and "WorkerCrashed" in r["error"] and r["isolation"] == "worker"
