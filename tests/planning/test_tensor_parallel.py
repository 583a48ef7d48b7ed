"""Multi-GPU instances and tensor parallelism (effplan.planning.tensor_parallel): the instance
table, the all-reduce term against the hand formula, and Llama-3-70B (a transformers LlamaConfig
counted on the meta device) planned on 1x / 2x / 4x / 8x H100 by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import effplan
from effplan.catalog import MEMORY_GB_BYTES, load_catalog
from effplan.errors import ValidationError
from effplan.planning import GenerationWorkload, Prices
from effplan.planning import tensor_parallel as tp

H100_BW = 3350e9
H100_FP16 = 9.894e14
NVLINK, NVLINK_EFF, LAT = 450e9, 0.82, 6e-6
C, P_TOK, N_OUT = 8, 512, 128


def test_instance_table_is_sourced_and_scaled():
    inst = tp.load_instances()
    assert {"AWS p5.48xlarge", "AWS p4d.24xlarge", "GCP a3-highgpu-4g", "AWS g6.12xlarge"} <= set(inst["name"])
    assert (inst["price_source"].str.len() > 0).all() and (inst["price_date"].str.len() > 0).all()
    assert set(inst["price_kind"]) <= {"published", "derived"}
    # a derived price says so in its source
    derived = inst[inst["price_kind"] == "derived"]
    assert derived["price_source"].str.startswith("derived:").all()
    cat = load_catalog()
    rows = tp.instance_catalog_rows(cat, names=["p5.48xlarge"])
    assert len(rows) == 1
    r = rows.iloc[0]
    assert r["name"] == "AWS p5.48xlarge" and r["tensor_parallel"] == 8 and r["tp_gpu"] == "H100 SXM"
    assert r["memory_gb"] == 640 and r["memory_bandwidth_gb_s"] == 8 * 3350 and r["rated_power_w"] == 8 * 700
    assert r["price_per_hour_usd"] == pytest.approx(55.04)
    assert r["price_source"].startswith("published:")
    # the 2g/4g/8g A3 prices are n x the 1g figure
    a3 = inst.set_index("name")["price_per_hour_usd"]
    for n in (2, 4, 8):
        assert a3[f"GCP a3-highgpu-{n}g"] == pytest.approx(n * a3["GCP a3-highgpu-1g"])


def test_instance_table_rejects_bad_rows():
    bad = tp.load_instances().astype(str)
    bad.loc[0, "gpu_count"] = "0"
    with pytest.raises(ValidationError, match="gpu_count"):
        tp.load_instances(bad)
    bad = tp.load_instances().astype(str)
    bad.loc[0, "price_kind"] = "guessed"
    with pytest.raises(ValidationError, match="price_kind"):
        tp.load_instances(bad)


def test_allreduce_term_by_hand():
    # 4 GPUs, 8 tokens, hidden 8192, bf16, 80 layers: 160 x (6 us + 1.5 x 8 x 8192 x 2 / (450e9 x 0.82))
    by_hand = 160 * (6e-6 + 2 * 3 / 4 * 8 * 8192 * 2 / (450e9 * 0.82))
    got = tp.allreduce_s(4, 8, 8192, 2.0, 80, 450, 0.82, 6)
    assert float(got) == pytest.approx(by_hand, rel=1e-12)
    assert float(tp.allreduce_s(1, 8, 8192, 2.0, 80, 450, 0.82, 6)) == 0.0
    assert tp.activation_bytes(np.array(["float32", "bfloat16", "fp8"])).tolist() == [4.0, 2.0, 2.0]


@pytest.fixture(scope="module")
def llama70b():
    transformers = pytest.importorskip("transformers")
    from effplan.importers.model_facts import model_facts

    cfg = transformers.LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                                   num_attention_heads=64, num_key_value_heads=8, vocab_size=128256,
                                   max_position_embeddings=8192, tie_word_embeddings=False, dtype="bfloat16")
    return model_facts(cfg)


def test_llama70b_counted_on_meta_by_hand(llama70b):
    layer = 2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672 + 2 * 8192
    params = 80 * layer + 2 * 128256 * 8192 + 8192
    assert llama70b.params == params == 70_553_706_496
    assert llama70b.param_bytes == 2 * params
    assert llama70b.kv_cache_bytes_per_token == 2 * 80 * 8 * 128 * 2
    assert (llama70b.hidden_size, llama70b.num_layers) == (8192, 80)


def _row_70b(facts) -> pd.DataFrame:
    cols = facts.columns(prompt_tokens=P_TOK, output_tokens=N_OUT)
    T = P_TOK + N_OUT / 2
    # typed-in source on one H100 at an efficiency of 0.8 of its roofline (decode) and 0.5 (prefill)
    roof_dec = max(C * cols["flops_per_output_token"] / H100_FP16,
                   (facts.param_bytes + C * T * facts.kv_cache_bytes_per_token) / H100_BW)
    roof_pre = max(C * P_TOK * cols["flops_per_prompt_token"] / H100_FP16,
                   (facts.param_bytes + C * P_TOK * facts.kv_cache_bytes_per_token) / H100_BW)
    row = {"candidate": "llama-3-70b", "hardware": "H100 SXM", "mode": "generation", "batch_size": C,
           "prompt_tokens": P_TOK, "output_tokens": N_OUT, "dtype": "bfloat16",
           "ttft_p50_ms": roof_pre / 0.5 * 1e3, "ttft_p95_ms": roof_pre / 0.5 * 1e3,
           "tpot_p50_ms": roof_dec / 0.8 * 1e3, "tpot_p95_ms": roof_dec / 0.8 * 1e3,
           "energy_per_prompt_token_j": 0.01, "energy_per_output_token_j": 1.0, "idle_power_w": 100.0, **cols}
    return pd.DataFrame([row])


def test_llama70b_planned_on_tp_instances_by_hand(llama70b):
    rows = _row_70b(llama70b)
    wl = GenerationWorkload(requests_per_day=10_000, prompt_tokens=P_TOK, output_tokens=N_OUT, months=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = effplan.plan(rows, generation=wl, prices=Prices(pue=1.0),
                            hardware=["GCP a3-highgpu-2g", "GCP a3-highgpu-4g", "AWS p5.48xlarge"])
    s = plan.summary.set_index("hardware")
    # one H100: the weights (131.4 GiB) exceed 0.9 x 80 GiB -- infeasible, naming memory and the fix
    one = s.loc["H100 SXM"]
    assert not one["feasible"] and one["binding_constraint"] == "memory"
    assert "memory" in one["infeasible_reason"] and "tensor parallelism over >= 2 GPUs" in one["infeasible_reason"]
    assert "AWS p5.48xlarge" in one["infeasible_reason"]
    T = P_TOK + N_OUT / 2
    kv = llama70b.kv_cache_bytes_per_token
    for name, n in (("GCP a3-highgpu-2g", 2), ("GCP a3-highgpu-4g", 4), ("AWS p5.48xlarge", 8)):
        r = s.loc[name]
        assert r["feasible"], (name, r["infeasible_reason"])
        assert r["tensor_parallel"] == n and r["tp_gpu"] == "H100 SXM"
        # memory: weights + KV over n GPUs' memory
        assert r["memory_limit_gib"] == pytest.approx(0.9 * 80 * n)
        need = llama70b.param_bytes + C * (P_TOK + N_OUT) * kv
        assert r["memory_needed_gib"] == pytest.approx(need / 2**30)
        # TPOT by hand: the HBM floor of each GPU's share / 0.8 + 160 all-reduces of c x hidden bf16
        floor = (llama70b.param_bytes + C * T * kv) / n / H100_BW
        ar = 160 * (LAT + 2 * (n - 1) / n * C * 8192 * 2 / (NVLINK * NVLINK_EFF))
        assert r["tpot_p95_ms"] == pytest.approx((floor / 0.8 + ar) * 1e3, rel=1e-9)
        assert floor * 1e3 < r["tpot_p95_ms"] < (floor / 0.8 + 160 * (LAT + 2 * C * 8192 * 2 / (NVLINK * NVLINK_EFF))) * 1e3
        assert "tensor parallel" in r["efficiency_source"]
    # more GPUs, less time per token (the HBM share shrinks faster than the all-reduces grow here)
    assert s.loc["AWS p5.48xlarge", "tpot_p95_ms"] < s.loc["GCP a3-highgpu-4g", "tpot_p95_ms"] \
        < s.loc["GCP a3-highgpu-2g", "tpot_p95_ms"]
    choice = tp.tp_choice(plan).set_index("gpu").loc["H100 SXM"]
    assert choice["smallest_tp"] == 2 and choice["smallest_tp_option"] == "GCP a3-highgpu-2g"
    feas = plan.summary[plan.summary["feasible"]]
    assert choice["cheapest_option"] == feas.sort_values("cost_usd").iloc[0]["hardware"]


def test_tp_without_model_shape_says_optimistic(llama70b):
    rows = _row_70b(llama70b).drop(columns=["hidden_size", "num_layers"])
    wl = GenerationWorkload(requests_per_day=10_000, prompt_tokens=P_TOK, output_tokens=N_OUT, months=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = effplan.plan(rows, generation=wl, prices=Prices(pue=1.0), hardware=["GCP a3-highgpu-4g"])
    r = plan.summary.set_index("hardware").loc["GCP a3-highgpu-4g"]
    assert "NO all-reduce term" in r["efficiency_source"]
    floor = (llama70b.param_bytes + C * (P_TOK + N_OUT / 2) * llama70b.kv_cache_bytes_per_token) / 4 / H100_BW
    assert r["tpot_p95_ms"] == pytest.approx(floor / 0.8 * 1e3, rel=1e-9)


def test_unknown_instance_is_still_an_error():
    rows = pd.DataFrame([{"candidate": "m", "hardware": "L4", "mode": "generation", "batch_size": 1,
                          "prompt_tokens": 8, "ttft_p50_ms": 1, "ttft_p95_ms": 1, "tpot_p50_ms": 1,
                          "tpot_p95_ms": 1, "kv_cache_bytes_per_token": 1, "param_bytes": 1}])
    with pytest.raises(ValidationError, match="hardware"):
        effplan.plan(rows, generation=GenerationWorkload(requests_per_day=1, prompt_tokens=8, output_tokens=1),
                     hardware=["AWS p9.96xlarge"])
    assert math.isfinite(MEMORY_GB_BYTES)


def test_llama70b_served_in_fp8_and_int4_by_hand(llama70b):
    from effplan.planning.serving_dtype import serve_as

    rows = _row_70b(llama70b)
    both = pd.concat([rows, serve_as(rows, "fp8"), serve_as(rows, "w4a16")], ignore_index=True)
    wl = GenerationWorkload(requests_per_day=10_000, prompt_tokens=P_TOK, output_tokens=N_OUT, months=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = effplan.plan(both, generation=wl, prices=Prices(pue=1.0), hardware=["H100 SXM", "A100 80GB"])
    s = plan.summary.set_index(["candidate", "hardware"])
    T = P_TOK + N_OUT / 2
    kv = llama70b.kv_cache_bytes_per_token
    # fp8 weights (1 byte each, 65.7 GiB) fit ONE H100; TPOT = the HBM roofline of those bytes / 0.8
    fp8 = s.loc[("llama-3-70b [fp8]", "H100 SXM")]
    assert fp8["feasible"], fp8["infeasible_reason"]
    assert fp8["memory_needed_gib"] == pytest.approx((llama70b.params + C * (P_TOK + N_OUT) * kv) / 2**30)
    assert fp8["tpot_p95_ms"] == pytest.approx((llama70b.params + C * T * kv) / H100_BW / 0.8 * 1e3, rel=1e-9)
    assert "served as fp8: a PROJECTION" in fp8["efficiency_source"] and fp8["provenance"] == "projected"
    # the A100 has no fp8 tensor cores: infeasible, saying so
    a100 = s.loc[("llama-3-70b [fp8]", "A100 80GB")]
    assert not a100["feasible"] and "no fp8 tensor cores" in a100["infeasible_reason"]
    # int4 weights (0.53125 bytes each with group-128 scales) fit an A100 80GB
    w4 = s.loc[("llama-3-70b [w4a16]", "A100 80GB")]
    assert w4["feasible"]
    assert w4["memory_needed_gib"] == pytest.approx((llama70b.params * 0.53125 + C * (P_TOK + N_OUT) * kv) / 2**30)
    # the copies are never planned as measured rows of their source
    assert ("llama-3-70b [fp8]", "H100 SXM") in s.index and s.loc[("llama-3-70b [fp8]", "H100 SXM"), "provenance"] == "projected"
