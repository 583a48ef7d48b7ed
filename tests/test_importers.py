"""Importing the serving engines' own benchmarks (effplan.importers): every figure against a value
computed here with numpy from the generated file itself, each trap of the formats (p99-only
summaries, seconds vs ms, vLLM's per-request TPOT, failed requests kept in the arrays with ttft 0,
request-rate runs), the model facts by hand count, the rows through plan() with and without a
config, agreement with ``vllm bench sweep serve_sla``, and the CLI round trip.

The files are made by ``benchmarks/make_engine_samples.py`` (seeded), in each tool's format."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import effplan
from effplan.records import store
from effplan.errors import DataWarning, PlanWarning, ValidationError
from effplan.importers import SAMPLE_FILES, import_benchmark, sample_path
from effplan.importers.model_facts import model_facts
from effplan.planning import GenerationWorkload, Prices
from effplan.planning.frames import headline
from effplan.planning.generation import NO_MODEL_FACTS
from effplan.records.schema import normalize_measurements, row_problems

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_engine_samples", REPO / "benchmarks" / "make_engine_samples.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

H100_RATED_W, GPU_IDLE = 700.0, 0.15     # catalog rated power of the H100 SXM, effplan's GPU idle share
PRICES = Prices(price_per_hour={"H100 SXM": 10.0}, pue=1.0, grid_gco2_per_kwh=400)


def _write(tmp_path: Path, name: str, obj) -> Path:
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def _vllm(tmp_path: Path, name: str = "run.json", **kw) -> tuple[Path, dict]:
    run = gen.vllm_run(**kw)
    return _write(tmp_path, name, run), run


def _import(path, tool="vllm", **kw) -> pd.DataFrame:
    kw.setdefault("candidate", "llama-8b")
    kw.setdefault("hardware", "H100 SXM")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return import_benchmark(path, tool, **kw)


def _ok(run: dict) -> np.ndarray:
    return np.array([e == "" for e in run["errors"]]) & (np.asarray(run["output_lens"]) > 0)


def _tpot_s(run: dict) -> np.ndarray:
    """vLLM's per-request TPOT written out: (latency - ttft) / (output_len - 1), completed requests."""
    ok = _ok(run)
    lat, ttft, out = (np.asarray(run[k], dtype=float) for k in ("latencies", "ttfts", "output_lens"))
    m = ok & (out > 1)
    return (lat[m] - ttft[m]) / (out[m] - 1)


# ------------------------------------------------------------------------------------------ vLLM
def test_vllm_p99_only_summary_p95_comes_from_the_arrays_never_the_p99(tmp_path):
    path, run = _vllm(tmp_path, max_concurrency=16, num_prompts=120, output_len=64, percentiles=(99,),
                      detailed=True, failed=3)
    assert "p95_ttft_ms" not in run and "p99_ttft_ms" in run   # vLLM's default --metric-percentiles "99"
    r = _import(path).iloc[0]
    ok = _ok(run)
    ttft_ms = np.asarray(run["ttfts"])[ok] * 1000
    tpot_ms = _tpot_s(run) * 1000
    assert r["ttft_p95_ms"] == pytest.approx(np.percentile(ttft_ms, 95), rel=1e-12)
    assert r["tpot_p95_ms"] == pytest.approx(np.percentile(tpot_ms, 95), rel=1e-12)
    assert r["ttft_p95_ms"] != pytest.approx(run["p99_ttft_ms"], rel=1e-3)      # never the p99
    assert r["tpot_p95_ms"] != pytest.approx(run["p99_tpot_ms"], rel=1e-3)
    assert r["ttft_p95_ms"] != pytest.approx(run["mean_ttft_ms"], rel=1e-3)     # nor the mean
    assert r["ttft_p50_ms"] == run["median_ttft_ms"] and r["tpot_p50_ms"] == run["median_tpot_ms"]
    assert "TTFT p95 computed from the per-request arrays" in r["notes"]
    # the arrays, failed requests removed, reproduce vLLM's own p99 and mean: no disagreement noted
    assert "in the summary" not in r["notes"]
    assert r["batch_size"] == 16 and r["concurrency_source"] == "stated"
    assert r["requests_failed"] == 3 and r["requests_completed"] == 117
    assert r["tpot_definition"].startswith("vLLM TPOT: per request")


def test_vllm_without_arrays_p95_is_nan_with_a_note_and_plan_names_it(tmp_path):
    path, run = _vllm(tmp_path, max_concurrency=8, num_prompts=60, output_len=32, percentiles=(99,))
    assert "ttfts" not in run and "latencies" in run     # a plain --save-result file
    with pytest.warns(DataWarning, match="never another percentile"):
        rows = import_benchmark(path, "vllm", candidate="m", hardware="H100 SXM")
    r = rows.iloc[0]
    assert math.isnan(r["ttft_p95_ms"]) and math.isnan(r["tpot_p95_ms"])
    assert r["ttft_p50_ms"] == run["median_ttft_ms"]
    assert "--metric-percentiles 50,95,99" in r["notes"] and "--save-detailed" in r["notes"]
    assert "it states p99" in r["notes"]
    with pytest.raises(ValidationError, match=r"ttft_p95_ms.*missing value.*metric-percentiles 50,95,99"):
        effplan.plan(rows, generation=GenerationWorkload(requests_per_day=1e5, prompt_tokens=500, output_tokens=32),
                     prices=PRICES)


def test_vllm_failed_requests_are_counted_and_left_out_of_the_percentiles(tmp_path):
    path, run = _vllm(tmp_path, max_concurrency=4, num_prompts=80, output_len=16, percentiles=(50,),
                      detailed=True, failed=6)
    ttfts = np.asarray(run["ttfts"])
    assert (ttfts == 0).sum() == 6 and run["failed"] == 6        # vLLM keeps them, with ttft 0
    r = _import(path).iloc[0]
    ok = _ok(run)
    assert r["requests_failed"] == 6 and r["requests_completed"] == 74
    naive = np.percentile(ttfts * 1000, 95)                      # zeros left in: pulled down
    assert r["ttft_p95_ms"] == pytest.approx(np.percentile(ttfts[ok] * 1000, 95), rel=1e-12)
    assert r["ttft_p95_ms"] != pytest.approx(naive, rel=1e-6)
    assert r["prompt_tokens"] == 1024 and r["output_tokens"] == 16


def test_vllm_tpot_is_per_request_not_the_pooled_itl(tmp_path):
    path, run = _vllm(tmp_path, max_concurrency=32, num_prompts=100, output_len=64, percentiles=(95,),
                      detailed=True)
    r = _import(path).iloc[0]
    itl_p95 = run["p95_itl_ms"]                                  # per chunk, pooled over requests
    assert r["tpot_p95_ms"] == pytest.approx(run["p95_tpot_ms"], rel=1e-12)
    assert r["tpot_p95_ms"] == pytest.approx(np.percentile(_tpot_s(run) * 1000, 95), rel=1e-12)
    assert itl_p95 > 1.1 * r["tpot_p95_ms"]                     # a different distribution
    pooled = [v for x, o in zip(run["itls"], _ok(run)) if o for v in x]
    assert itl_p95 == pytest.approx(np.percentile(pooled, 95) * 1000, rel=1e-12)


def test_vllm_append_result_file_and_a_json_list_give_the_same_rows(tmp_path):
    runs = gen.vllm_concurrency_sweep((1, 4, 16), num_prompts=40, output_len=16, percentiles=(50, 95))
    a = _import(_write(tmp_path, "append.json", gen.vllm_sweep_text(runs)))
    b = _import(_write(tmp_path, "summary.json", json.dumps(runs, indent=4)))
    assert a["batch_size"].tolist() == [1, 4, 16] == b["batch_size"].tolist()
    for col in ("ttft_p95_ms", "tpot_p95_ms", "ttft_p50_ms", "tpot_p50_ms"):
        assert a[col].tolist() == b[col].tolist() == [r[col.replace("ttft_p", "p").replace(
            "tpot_p", "p").replace("_ms", "") + "_" + col.split("_")[0] + "_ms"] for r in runs]
    assert a["benchmark_sha256"].iloc[0] != b["benchmark_sha256"].iloc[0]   # two files, two hashes
    assert a["hardware_id"].iloc[0] == "import:" + a["benchmark_sha256"].iloc[0][:16]


def test_vllm_energy_is_the_nvml_figure_verbatim(tmp_path):
    path, run = _vllm(tmp_path, max_concurrency=8, num_prompts=40, output_len=16, percentiles=(50, 95))
    r = _import(path).iloc[0]
    assert r["energy_source"] == "nvml-counter"
    assert r["energy_per_output_token_j"] == run["gpu_energy_per_output_token_j"]
    assert r["energy_per_prompt_token_j"] == 0.0 and "prefill energy is inside it" in r["energy_note"]
    assert r["idle_power_w"] == pytest.approx(GPU_IDLE * H100_RATED_W) and "idle power estimated" in r["energy_note"]
    assert r["avg_power_w"] == pytest.approx(run["gpu_avg_power_w"])


def test_request_rate_sweep_is_labelled_with_its_littles_law_concurrency(tmp_path):
    runs = [gen.vllm_run(request_rate=rate, num_prompts=150, output_len=32, percentiles=(50, 95), detailed=True,
                         seed=rate) for rate in (2, 8, 20)]
    rows = _import(_write(tmp_path, "rates.json", gen.vllm_sweep_text(runs)))
    assert (rows["concurrency_source"] == "littles-law").all()
    assert rows["request_rate_per_s"].tolist() == [2, 8, 20]
    for (_, r), run in zip(rows.iterrows(), runs):
        ok = _ok(run)
        L = run["request_throughput"] * np.mean(np.asarray(run["latencies"])[ok])   # lambda x W, by hand
        assert r["concurrency_littles_law"] == pytest.approx(L, rel=1e-12)
        assert r["batch_size"] == max(1, round(L))
        assert "Little's law" in r["notes"] and r["benchmark_label"].startswith("request_rate=")
    assert rows["batch_size"].is_monotonic_increasing and rows["batch_size"].iloc[0] < rows["batch_size"].iloc[-1]
    # planned: no targets -> the largest measured concurrency, and the plan keeps its label
    with pytest.warns(PlanWarning, match="no model facts"):
        p = effplan.plan(rows, generation=GenerationWorkload(requests_per_day=1e5, prompt_tokens=1000,
                                                             output_tokens=32), prices=PRICES)
    s = p.summary.iloc[0]
    assert s["concurrency"] == rows["batch_size"].max() and s["concurrency_source"] == "littles-law"


# --------------------------------------------------------------------------------------- LLMPerf
def test_llmperf_seconds_are_converted_to_ms_and_tpot_excludes_the_first_token(tmp_path):
    summary, individual = gen.llmperf_run(8, requests=60, output_len=40, errors=2)
    for name, obj in (("m_550_40_summary.json", summary), ("m_550_40_individual_responses.json", individual)):
        _write(tmp_path, name, obj)
    r = _import(tmp_path / "m_550_40_summary.json", "llmperf").iloc[0]
    assert r["ttft_p95_ms"] == pytest.approx(summary["results_ttft_s_quantiles_p95"] * 1000, rel=1e-12)
    assert r["ttft_p50_ms"] == pytest.approx(summary["results_ttft_s_quantiles_p50"] * 1000, rel=1e-12)
    ok = [x for x in individual if x["error_code"] is None]
    tpot = [(x["end_to_end_latency_s"] - x["ttft_s"]) / (x["number_output_tokens"] - 1) * 1000 for x in ok]
    assert r["tpot_p95_ms"] == pytest.approx(np.percentile(tpot, 95), rel=1e-12)
    assert r["requests_failed"] == 2 and r["requests_completed"] == 58 and r["batch_size"] == 8
    assert r["tpot_definition"].startswith("vLLM TPOT from LLMPerf")
    # the summary alone: LLMPerf's own inter-token latency, in ms, and said to include the first token
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "m_550_40_summary.json", alone / "m_550_40_summary.json")
    r2 = _import(alone / "m_550_40_summary.json", "llmperf").iloc[0]
    assert r2["tpot_p95_ms"] == pytest.approx(summary["results_inter_token_latency_s_quantiles_p95"] * 1000,
                                              rel=1e-12)
    assert "FIRST TOKEN INCLUDED" in r2["tpot_definition"] and "includes the first token" in r2["notes"]
    assert r2["tpot_p95_ms"] > r["tpot_p95_ms"]                  # the TTFT spread over the tokens
    with pytest.raises(ValidationError, match="individual responses"):
        _import(tmp_path / "m_550_40_individual_responses.json", "llmperf")


# ------------------------------------------------------------------------------ GuideLLM, AIPerf
def test_guidellm_stated_p95_counts_and_strategies(tmp_path):
    doc = gen.guidellm_report(duration_s=20.0)
    rows = _import(_write(tmp_path, "benchmarks.json", doc), "guidellm")
    assert rows["benchmark_label"].tolist() == ["synchronous", "concurrent@8", "concurrent@32", "constant@6/s",
                                                "constant@12/s"]
    for (_, r), b in zip(rows.iterrows(), doc["benchmarks"]):
        m = b["metrics"]
        assert r["ttft_p95_ms"] == m["time_to_first_token_ms"]["successful"]["percentiles"]["p95"]
        assert r["ttft_p50_ms"] == m["time_to_first_token_ms"]["successful"]["percentiles"]["p50"]
        assert r["tpot_p95_ms"] == m["inter_token_latency_ms"]["successful"]["percentiles"]["p95"]
        assert r["tpot_p95_ms"] != m["time_per_output_token_ms"]["successful"]["percentiles"]["p95"]
        assert r["requests_incomplete"] == m["request_totals"]["incomplete"] > 0
        assert r["requests_failed"] == m["request_totals"]["errored"]
        assert r["source_tool_version"] == "0.4.0"
    assert rows["batch_size"].tolist()[:3] == [1, 8, 32] and (rows["concurrency_source"][:3] == "stated").all()
    for i in (3, 4):
        b = doc["benchmarks"][i]
        L = b["metrics"]["request_totals"]["successful"] / b["duration"] * \
            b["metrics"]["request_latency"]["successful"]["mean"]      # seconds
        assert rows["concurrency_littles_law"].iloc[i] == pytest.approx(L, rel=1e-12)
        assert rows["concurrency_source"].iloc[i] == "littles-law" and rows["request_rate_per_s"].iloc[i] == \
            b["config"]["strategy"]["rate"]


def test_aiperf_stated_p95_and_its_units(tmp_path):
    doc = gen.aiperf_export(8, request_count=60)
    r = _import(_write(tmp_path, "profile_export_aiperf.json", doc), "aiperf").iloc[0]
    assert r["ttft_p95_ms"] == doc["time_to_first_token"]["p95"] and r["tpot_p95_ms"] == doc["inter_token_latency"]["p95"]
    assert r["batch_size"] == 8 and r["requests_failed"] == 1 and r["requests_completed"] == 59
    # the same figures in seconds: the stated unit is honoured, converted exactly
    sec = json.loads(json.dumps(doc))
    sec["time_to_first_token"] = {k: (v / 1000 if isinstance(v, float) else v)
                                  for k, v in doc["time_to_first_token"].items()} | {"unit": "sec"}
    r2 = _import(_write(tmp_path, "sec.json", sec), "aiperf").iloc[0]
    assert r2["ttft_p95_ms"] == pytest.approx(doc["time_to_first_token"]["p95"], rel=1e-12)
    bad = json.loads(json.dumps(doc))
    bad["inter_token_latency"]["unit"] = "fortnights"
    with pytest.raises(ValidationError, match="inter_token_latency.unit.*unknown time unit 'fortnights'"):
        _import(_write(tmp_path, "bad.json", bad), "aiperf")
    # a request-rate run: Little's law from request_throughput x request_latency.avg (ms)
    rate = json.loads(json.dumps(doc))
    rate["input_config"]["loadgen"] = {"request_rate": 5.0, "request_count": 60}
    r3 = _import(_write(tmp_path, "rate.json", rate), "aiperf").iloc[0]
    L = doc["request_throughput"]["avg"] * doc["request_latency"]["avg"] / 1000
    assert r3["concurrency_source"] == "littles-law" and r3["concurrency_littles_law"] == pytest.approx(L)
    # no p95 in the file (AIPerf leaves None statistics out): NaN, never the p99
    nop95 = json.loads(json.dumps(doc))
    del nop95["time_to_first_token"]["p95"]
    r4 = _import(_write(tmp_path, "nop95.json", nop95), "aiperf").iloc[0]
    assert math.isnan(r4["ttft_p95_ms"]) and "time_to_first_token p95 is not in the file" in r4["notes"]


def test_no_energy_is_estimated_from_rated_power_and_labelled(tmp_path):
    doc = gen.aiperf_export(1, request_count=30)
    path = _write(tmp_path, "a.json", doc)
    r = _import(path, "aiperf").iloc[0]
    assert r["energy_source"] == "estimated-tdp" and r["energy_note"].startswith("ESTIMATED, not measured")
    assert r["energy_per_output_token_j"] == pytest.approx(
        H100_RATED_W * doc["benchmark_duration"]["avg"] / doc["total_osl"]["avg"], rel=1e-12)
    assert r["energy_per_prompt_token_j"] == 0.0
    with pytest.raises(ValidationError, match="'my-gpu' is not in the catalog.*holds no energy"):
        _import(path, "aiperf", hardware="my-gpu")
    # your own hardware with measured energy: kept; idle power unknown, and plan() says which field and why
    vpath, _ = _vllm(tmp_path, max_concurrency=2, num_prompts=20, output_len=8, percentiles=(50, 95))
    rows = _import(vpath, hardware="my-gpu")
    assert rows["energy_source"].iloc[0] == "nvml-counter" and math.isnan(rows["idle_power_w"].iloc[0])
    with pytest.raises(ValidationError, match=r"idle_power_w.*idle power unknown: 'my-gpu' is not in the catalog"):
        effplan.plan(rows, generation=GenerationWorkload(requests_per_day=1e5, prompt_tokens=1000, output_tokens=8),
                     prices=Prices(price_per_hour={"my-gpu": 2.0}))


def test_optimum_benchmark_prefill_per_token_and_energy(tmp_path):
    doc = gen.optimum_benchmark(iterations=4)
    r = _import(_write(tmp_path, "benchmark.json", doc), "optimum-benchmark").iloc[0]
    rep, shapes = doc["report"], doc["config"]["scenario"]["input_shapes"]
    assert r["ttft_p95_ms"] == pytest.approx(rep["prefill"]["latency"]["p95"] * 1000, rel=1e-12)   # s -> ms
    assert r["tpot_p95_ms"] == pytest.approx(rep["per_token"]["latency"]["p95"] * 1000, rel=1e-12)
    assert r["batch_size"] == shapes["batch_size"] == 8 and r["batching"] == "static"
    assert r["energy_per_prompt_token_j"] == pytest.approx(
        rep["prefill"]["energy"]["gpu"] * 3.6e6 / (8 * shapes["sequence_length"]), rel=1e-12)
    assert r["energy_per_output_token_j"] == pytest.approx(rep["decode"]["energy"]["gpu"] * 3.6e6 / (8 * 63), rel=1e-12)
    assert r["energy_source"] == "nvml-counter" and r["dtype"] == "bfloat16" and r["source_tool_version"] == "0.6.0"
    del doc["report"]["per_token"]
    r2 = _import(_write(tmp_path, "noper.json", doc), "optimum-benchmark").iloc[0]
    assert r2["tpot_p95_ms"] == pytest.approx(rep["decode"]["latency"]["p95"] / 63 * 1000, rel=1e-12)
    with pytest.raises(ValidationError, match="report without its config"):
        _import(_write(tmp_path, "benchmark_report.json", doc["report"]), "optimum-benchmark")


def test_every_shipped_sample_imports_and_passes_the_validator():
    for tool, files in SAMPLE_FILES.items():
        rows = _import([sample_path(f) for f in files], tool)
        assert len(rows) >= 1 and (rows["source_tool"] == tool).all() and (rows["mode"] == "generation").all()
        assert row_problems(rows) == []
        store.validate_rows(rows.to_dict(orient="records"))
        normalize_measurements(rows)          # what plan() applies: every figure present
        assert rows["ttft_p95_ms"].notna().all() and rows["tpot_p95_ms"].notna().all()


def test_shipped_samples_are_exactly_what_the_seeded_script_writes():
    files = gen.sample_files()
    shipped = REPO / "effplan" / "data" / "engine_samples"
    assert sorted(files) == sorted(p.name for p in shipped.iterdir())
    for name, text in files.items():
        assert (shipped / name).read_text() == text, name


def test_bad_input_gets_a_named_error(tmp_path):
    with pytest.raises(ValidationError, match="tool.*unknown tool 'tgi'"):
        import_benchmark(sample_path("vllm"), "tgi", candidate="m", hardware="H100 SXM")
    with pytest.raises(ValidationError, match="not a JSON result file"):
        _import(_write(tmp_path, "x.json", "{not json"))
    with pytest.raises(ValidationError, match="is not a vllm bench serve result"):
        _import(sample_path("guidellm"))
    with pytest.raises(ValidationError, match="is not a GuideLLM report"):
        _import(sample_path("vllm"), "guidellm")
    with pytest.raises(ValidationError, match="candidate"):
        import_benchmark(sample_path("vllm"), "vllm", candidate=" ", hardware="H100 SXM")
    with pytest.raises(ValidationError, match="cannot be read"):
        _import(tmp_path / "missing.json")
    run = gen.vllm_run(max_concurrency=2, num_prompts=10, output_len=8, percentiles=(50, 95))
    run.update(completed=0, failed=10)
    with pytest.raises(ValidationError, match="completed.*no request completed \\(10 failed\\)"):
        _import(_write(tmp_path, "allfailed.json", run))


def test_importing_rows_does_not_import_torch():
    code = ("import sys, effplan\n"
            "rows = effplan.import_benchmark(effplan.importers.sample_path('vllm'), 'vllm', candidate='m', "
            "hardware='H100 SXM')\n"
            "assert len(rows) == 8 and 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# ---------------------------------------------------------------------------------- model facts
def _llama_hand(h, inter, layers, heads, kv_heads, vocab, tied=False):
    """Llama parameters by hand: embeddings, per layer q/k/v/o + gate/up/down + 2 RMSNorms, final norm."""
    d = h // heads
    per_layer = h * h + 2 * h * kv_heads * d + h * h + 3 * h * inter + 2 * h
    return vocab * h * (1 if tied else 2) + layers * per_layer + h


@pytest.mark.slow   # imports transformers and builds an 8B model on the meta device (seconds)
def test_model_facts_by_hand_llama_gpt2_tied_and_the_shipped_8b_config(tmp_path):
    pytest.importorskip("transformers")
    from transformers import GPT2Config, LlamaConfig

    tiny = LlamaConfig(hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=8,
                       num_key_value_heads=2, vocab_size=500, max_position_embeddings=256, dtype="float16",
                       tie_word_embeddings=False)
    f = model_facts(tiny)
    assert f.params == _llama_hand(64, 160, 3, 8, 2, 500) == 187_328
    assert f.param_bytes == 2 * f.params and f.dtype == "float16"
    assert f.kv_cache_bytes_per_token == 2 * 3 * 2 * 8 * 2 == 192          # 2 x layers x kv heads x head dim x 2 B
    assert f.context_tokens == 256
    # FLOPs: 2 x matmul weights (LM head included) + 4 x layers x heads x head_dim x context
    matmul = f.params - 500 * 64 - 3 * 2 * 64 - 64                          # minus the input embedding and norms
    assert f.flops_per_output_token(100) == 2 * matmul + 4 * 3 * 8 * 8 * 100
    assert f.flops_per_prompt_token(50) == pytest.approx(2 * (matmul - 500 * 64) + 2 * 500 * 64 / 50 + 4 * 3 * 8 * 8 * 50)
    # GPT-2 with tied embeddings: counted ONCE (state_dict lists the tied weight twice: 236,288)
    g = model_facts(GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=128))
    block = 4 * 64 + (64 * 192 + 192) + (64 * 64 + 64) + (64 * 256 + 256) + (256 * 64 + 64)
    assert g.params == 1000 * 64 + 128 * 64 + 2 * block + 2 * 64 == 172_288
    assert g.kv_cache_bytes_per_token == 2 * 2 * 4 * 16 * 2 and "bfloat16 (2 bytes)" in g.notes[0]
    # the shipped Llama-3.1-8B config.json: the published 8,030,261,248 parameters
    big = model_facts(sample_path("llama-3.1-8b_config.json"))
    assert big.params == _llama_hand(4096, 14336, 32, 32, 8, 128256) == 8_030_261_248
    assert big.param_bytes == 2 * 8_030_261_248 and big.kv_cache_bytes_per_token == 131_072
    assert big.context_tokens == 131_072 and big.dtype == "bfloat16"
    (tmp_path / "model").mkdir()                               # a model folder holding config.json
    shutil.copy(sample_path("llama-3.1-8b_config.json"), tmp_path / "model" / "config.json")
    assert model_facts(tmp_path / "model").params == 8_030_261_248


def test_model_facts_from_a_dict_a_folder_and_bad_ones(tmp_path):
    f = model_facts({"param_bytes": 16e9, "kv_cache_bytes_per_token": 131072, "context_tokens": 8192})
    assert (f.param_bytes, f.kv_cache_bytes_per_token, f.context_tokens, f.source) == (16e9, 131072, 8192, "entered")
    with pytest.raises(ValidationError, match="unknown key.*'layers'"):
        model_facts({"param_bytes": 1, "kv_cache_bytes_per_token": 1, "layers": 3})
    with pytest.raises(ValidationError, match="needs 'kv_cache_bytes_per_token'"):
        model_facts({"param_bytes": 1})
    with pytest.raises(ValidationError, match="param_bytes.*must be >= 0"):
        model_facts({"param_bytes": -1, "kv_cache_bytes_per_token": 1})
    with pytest.raises(ValidationError, match="cannot be read"):
        model_facts(tmp_path / "nope")
    with pytest.raises(ValidationError, match="expected a transformers config"):
        model_facts(42)


# ---------------------------------------------------------------------------------- planning
def _sweep_rows(tmp_path, **kw) -> pd.DataFrame:
    runs = gen.vllm_concurrency_sweep((8, 16, 32, 64), num_prompts=80, output_len=64, percentiles=(50, 95))
    return _import(_write(tmp_path, "sweep.jsonl", gen.vllm_sweep_text(runs)), **kw), runs


def test_imported_rows_plan_without_model_facts_memory_not_checked(tmp_path):
    rows, runs = _sweep_rows(tmp_path)
    assert rows["param_bytes"].isna().all()
    wl = GenerationWorkload(requests_per_day=1e6, prompt_tokens=1000, output_tokens=64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = effplan.plan(rows, generation=wl, prices=PRICES, hardware=["H200"])
    said = " | ".join(str(w.message) for w in caught if issubclass(w.category, PlanWarning))
    assert "no model facts for 'llama-8b'" in said and "could not project llama-8b to H200" in said
    s = p.summary.set_index("hardware")
    assert "H200" not in s.index                             # nothing to project from: said in a warning
    h100 = s.loc["H100 SXM"]
    assert h100["memory_check"] == NO_MODEL_FACTS and math.isnan(h100["memory_needed_gb"])
    assert h100["concurrency"] == 64 and h100["binding_constraint"] == "max-measured"
    assert p.inputs["notes"] == [f"llama-8b on H100 SXM: memory {NO_MODEL_FACTS}"]
    assert f"memory {NO_MODEL_FACTS}" in headline(p).message
    # interpolated concurrencies keep a 0 prompt-token energy at 0: the energy stays a number
    assert np.isfinite(p.summary["energy_kwh"]).all()
    # priced as measured: rate = c / (ttft_p50 + N x tpot_p50), by hand
    r64 = rows[rows["batch_size"] == 64].iloc[0]
    rate = 64 / ((r64["ttft_p50_ms"] + 64 * r64["tpot_p50_ms"]) / 1000)
    assert h100["requests_per_s_per_instance"] == pytest.approx(rate, rel=1e-12)
    assert h100["energy_per_response_wh"] == pytest.approx(64 * runs[-1]["gpu_energy_per_output_token_j"] / 3600)


def test_imported_rows_plan_with_config_memory_checked_by_hand_and_projected(tmp_path):
    kv = 131072 * 8.0                                   # a KV cache large enough for memory to bind
    rows, runs = _sweep_rows(tmp_path, config={"param_bytes": 16.06e9, "kv_cache_bytes_per_token": kv,
                                               "context_tokens": 131072})
    wl = GenerationWorkload(requests_per_day=1e6, prompt_tokens=1000, output_tokens=250)
    p = effplan.plan(rows, generation=wl, prices=PRICES)
    s = p.summary.iloc[0]
    # 16.06e9 + c x 1250 x kv <= 0.9 x 80e9 -> c <= 42.7: the grid point 42 fits, 48 does not
    assert (0.9 * 80e9 - 16.06e9) / (1250 * kv) == pytest.approx(42.68, abs=0.01)
    assert s["memory_check"] == "checked" and s["concurrency"] == 42 and s["binding_constraint"] == "memory"
    assert s["memory_needed_gb"] == pytest.approx((16.06e9 + 42 * 1250 * kv) / 1e9)
    assert s["concurrency_source"] == "interpolated" and s["concurrency_neighbours"] == "32-64"
    assert p.inputs["notes"] == [] and "memory" not in headline(p).message


@pytest.mark.slow   # imports transformers and builds an 8B model on the meta device (seconds)
def test_imported_rows_with_a_transformers_config_are_projected(tmp_path):
    pytest.importorskip("transformers")
    rows8b, _ = _sweep_rows(tmp_path, config=sample_path("llama-3.1-8b_config.json"))
    assert (rows8b["param_bytes"] == 2 * 8_030_261_248).all() and (rows8b["kv_cache_bytes_per_token"] == 131_072).all()
    assert (rows8b["model_facts_source"].str.startswith("transformers LlamaConfig")).all()
    p8 = effplan.plan(rows8b, generation=GenerationWorkload(requests_per_day=1e6, prompt_tokens=1000,
                                                            output_tokens=64, slo_tpot_p95_ms=20),
                      prices=Prices(price_per_hour={"H100 SXM": 10.0, "H200": 10.0}), hardware=["H200"])
    s8 = p8.summary.set_index("hardware")
    assert s8.loc["H200", "provenance"] == "projected" and s8.loc["H200", "memory_check"] == "checked"
    assert "no launch floor: operator calls unknown" in s8.loc["H200", "efficiency_source"]
    # same compute peak, more bandwidth (4.8 vs 3.35 TB/s): decode is faster, so the TPOT target
    # admits at least the H100's concurrency
    assert s8.loc["H100 SXM", "binding_constraint"] == "tpot" and s8.loc["H200", "tpot_p95_ms"] <= 20
    assert s8.loc["H200", "concurrency"] >= s8.loc["H100 SXM", "concurrency"]


# -------------------------------------------------------------- agreement with vLLM's SLA sweep
def _serve_sla(run, criteria, lo=1, hi=65536):
    """The search of ``vllm bench sweep serve_sla --sla-variable max_concurrency``
    (vllm/benchmarks/sweep/serve_sla.py ``solve_sla`` / ``SLAHistory``), written out: the margin
    of a run is max over criteria of (metric - target) (``SLALessThanOrEqualTo``); probe the
    largest value, then the smallest, then the integer part of the first root of a PCHIP through
    the (value, margin) history (one more when already probed), until the smallest failing and
    the largest passing values are adjacent; the answer is the largest passing value."""
    from scipy.interpolate import PchipInterpolator

    history: dict[int, float] = {}
    passing = lambda: max((v for v, m in history.items() if m <= 0), default=lo)  # noqa: E731
    failing = lambda: min((v for v, m in history.items() if m > 0), default=hi)   # noqa: E731
    while failing() - passing() > 1:
        if not history:
            val = hi
        elif len(history) == 1:
            val = lo
        else:
            xs, ys = zip(*sorted(history.items()))
            val = int(next(iter(PchipInterpolator(xs, ys, extrapolate=False).solve())))
            val += val in history
        clamped = max(lo, min(val, hi))
        result = run(clamped)
        history[clamped] = max(result[k] - t for k, t in criteria.items())
        if clamped != val:
            break
    return passing()


@pytest.mark.parametrize("ttft_ms,tpot_ms", [(100, 12), (60, 30), (1000, 9), (75, 100)])
def test_plan_picks_the_concurrency_vllm_serve_sla_picks_within_one_measured_step(tmp_path, ttft_ms, tpot_ms):
    kw = {"percentiles": (50, 95, 99), "num_prompts": 200, "output_len": 128, "input_len": 1024}

    def run(c: int) -> dict:           # one `vllm bench serve --max-concurrency c` of the same server
        return gen.vllm_run(max_concurrency=c, seed=gen.SEED + c, **kw)

    c_sla = _serve_sla(run, {"p95_ttft_ms": ttft_ms, "p95_tpot_ms": tpot_ms})
    grid = gen.SWEEP_CONCURRENCY
    rows = _import(_write(tmp_path, "sweep.jsonl", gen.vllm_sweep_text([run(c) for c in grid])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)      # no model facts: memory not checked
        # vLLM's --sla answers a closed-loop question (c requests always in flight, none waiting);
        # at a low utilization the wait for a slot vanishes (Erlang's C < 5% at c >= 4), so the
        # plan answers the same question (at 70% the slot wait dominates TTFT: slot_queue)
        p = effplan.plan(rows, generation=GenerationWorkload(
            requests_per_day=1e6, prompt_tokens=1024, output_tokens=128, slo_ttft_p95_ms=ttft_ms,
            slo_tpot_p95_ms=tpot_ms, target_utilization=0.1), prices=PRICES)
    c_plan = float(p.summary["concurrency"].iloc[0])
    i = max(k for k, c in enumerate(grid) if c <= c_sla)   # the measured step holding vLLM's answer
    assert grid[i] <= c_plan < grid[i + 1], (c_sla, c_plan)
    assert abs(c_plan - c_sla) < grid[i + 1] - grid[i]


# ----------------------------------------------------------------------------------------- CLI
def test_cli_import_round_trip_then_plan(tmp_path, capsys):
    from effplan.cli import main

    out = tmp_path / "results" / "m.jsonl"
    src = sample_path("vllm")
    assert main(["import", "vllm", str(src), "--candidate", "llama-8b", "--hardware", "H100 SXM",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "8 vllm rows (llama-8b on H100 SXM) appended to" in printed and "max_concurrency=128" in printed
    loaded = store.load(out)
    direct = _import(src)
    assert len(loaded) == 8 and loaded.attrs.get("errors", []) == []
    for col in ("batch_size", "ttft_p95_ms", "tpot_p95_ms", "ttft_p50_ms", "energy_per_output_token_j",
                "requests_failed", "benchmark_sha256", "concurrency_source", "notes"):
        assert loaded[col].tolist() == direct[col].tolist(), col
    with pytest.warns(PlanWarning, match="no model facts"):
        assert main(["plan", str(out), "--prompt-tokens", "1000", "--output-tokens", "200", "--requests-per-day",
                     "1e6", "--slo-ttft-p95-ms", "100", "--slo-tpot-p95-ms", "12"]) == 0
    assert "llama-8b" in capsys.readouterr().out
    assert main(["import", "vllm", str(src), "--candidate", "x", "--hardware", "nope-gpu", "--out",
                 str(tmp_path / "n.jsonl")]) == 0          # measured energy: your own hardware is fine
    assert main(["import", "aiperf", str(sample_path("aiperf")), "--candidate", "x", "--hardware", "nope-gpu",
                 "--out", str(tmp_path / "n.jsonl")]) == 2
    assert "is not in the catalog" in capsys.readouterr().err
