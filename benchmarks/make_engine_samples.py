"""Generate the shipped engine-benchmark samples (``effplan/data/engine_samples/``), seeded.

Each sample is written in its tool's real result format (the field names and definitions of the
tool's own code; see each ``effplan.importers.<tool>`` docstring) from ONE simulated server: a
Llama-3.1-8B-shaped model served in bfloat16 on an H100 SXM with continuous batching. Nothing
is typed in by hand; the same seed gives byte-identical files, and ``--check`` verifies that the
shipped files are exactly what this script writes.

The simulated server (per request, times in seconds)
---------------------------------------------------
* prefill of a ``P``-token prompt: ``t_pre(P) = 3 ms + 0.03 ms x P`` (compute-bound);
* one decode step with ``c`` sequences in flight: ``t_step(c) = 6.2 ms + 0.055 ms x c``
  (weights + KV cache read per step);
* TTFT = ``(t_pre(P) x (1 + X) + U x t_step(c)) x LogNormal(0, 0.08)``, ``X ~ Exp`` with mean
  ``0.9 (c - 1) t_pre / (t_pre + N t_step)`` (waiting behind other requests' prefills), ``U ~
  U(0, 1)`` for ``c > 1`` (the decode step in progress);
* each streamed chunk after the first: ``t_step(c) x Gamma(50) / 50`` plus, with probability
  ``min(0.9, 0.8 (c - 1) / N)``, a chunked-prefill stall of ``0.4 t_pre x U(0.5, 1.5)``; so the
  pooled inter-token latencies have a heavier tail than the per-request TPOT (their mean);
* a closed loop at concurrency ``c`` keeps ``c`` requests in flight (at most the number of
  prompts); an open loop (request rate ``r``) draws Poisson arrivals as ``vllm bench serve``
  does (exponential gaps, rescaled to ``n / r`` s) and serves them at the concurrency ``c`` with
  ``c = r x W(c)`` (Little's law, solved by iteration);
* a few requests fail (``errors`` set, no tokens); GPU power ``300 W + 350 W x (1 - exp(-c /
  16))``, so energy = power x duration.

Usage::

    python benchmarks/make_engine_samples.py            # (re)write effplan/data/engine_samples/
    python benchmarks/make_engine_samples.py --check    # the shipped files equal a fresh run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "effplan" / "data" / "engine_samples"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SEED = 2024


# --------------------------------------------------------------------------------- the server
def t_pre(p: np.ndarray | float) -> np.ndarray | float:
    return 3e-3 + 0.03e-3 * np.asarray(p, dtype=float)


def t_step(c: float) -> float:
    return 6.2e-3 + 0.055e-3 * c


def _requests(rng: np.random.Generator, n: int, c: float, input_len: int, output_len: int,
              failed: int, range_ratio: float) -> dict[str, np.ndarray | list]:
    """Per-request figures at concurrency ``c`` (see the module docstring)."""
    lo, hi = int(input_len * (1 - range_ratio)), int(input_len * (1 + range_ratio))
    inp = rng.integers(lo, hi + 1, size=n) if range_ratio > 0 else np.full(n, input_len)
    N = output_len
    pre = t_pre(inp)
    step = t_step(c)
    wait_mean = 0.9 * (c - 1) * pre / (pre + N * step)
    ttft = (pre * (1 + rng.exponential(1.0, n) * wait_mean) + (rng.uniform(0, 1, n) * step if c > 1 else 0.0)) \
        * rng.lognormal(0.0, 0.08, n)
    p_stall = min(0.9, 0.8 * (c - 1) / N)
    itls = []
    for i in range(n):
        chunk = step * rng.gamma(50.0, 1 / 50.0, N - 1)
        stall = rng.uniform(0, 1, N - 1) < p_stall
        chunk = chunk + stall * 0.4 * pre[i] * rng.uniform(0.5, 1.5, N - 1)
        itls.append(chunk)
    bad = np.zeros(n, bool)
    if failed:
        bad[rng.choice(n, size=failed, replace=False)] = True
    return {"inp": inp, "ttft": ttft, "itls": itls, "bad": bad}


def _schedule_closed(reqs: dict, c: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Start times and latencies of a closed loop of ``c`` slots (requests in order)."""
    n = len(reqs["ttft"])
    lat = np.where(reqs["bad"], 0.0, reqs["ttft"] + np.array([x.sum() for x in reqs["itls"]]))
    slots = np.zeros(max(1, c))
    start = np.zeros(n)
    for i in range(n):
        k = int(np.argmin(slots))
        start[i] = slots[k]
        slots[k] += lat[i] if not reqs["bad"][i] else 0.005   # a failed request returns quickly
    return start, lat, float(slots.max())


def _open_concurrency(rate: float, input_len: int, output_len: int) -> float:
    """c = rate x W(c): the concurrency an open loop at ``rate`` settles at (fixed point)."""
    c = 1.0
    for _ in range(200):
        pre = t_pre(input_len)
        w = pre * (1 + 0.9 * (c - 1) * pre / (pre + output_len * t_step(c))) + (output_len - 1) * t_step(c)
        c = max(1.0, rate * w)
    return c


def _power_w(c: float) -> float:
    return 300.0 + 350.0 * (1.0 - math.exp(-c / 16.0))


# ------------------------------------------------------------------------------------- vLLM
def _vllm_stats(result: dict, name: str, values: list[float], percentiles: tuple[float, ...]) -> None:
    """mean/median/std/p<N> of ``values`` (s) in ms, as vllm bench serve's process_one_metric."""
    v = values or [0.0]
    result[f"mean_{name}_ms"] = float(np.mean(v)) * 1000
    result[f"median_{name}_ms"] = float(np.median(v)) * 1000
    result[f"std_{name}_ms"] = float(np.std(v)) * 1000
    for p in percentiles:
        word = str(int(p)) if int(p) == p else str(p)
        result[f"p{word}_{name}_ms"] = float(np.percentile(v, p)) * 1000


def vllm_run(*, max_concurrency: int | None = None, request_rate: float = math.inf, num_prompts: int = 200,
             input_len: int = 1024, output_len: int = 256, seed: int = SEED, percentiles: tuple[float, ...] = (99,),
             detailed: bool = False, failed: int = 0, energy: bool = True, range_ratio: float = 0.0,
             percentile_metrics: tuple[str, ...] = ("ttft", "tpot", "itl")) -> dict:
    """One ``vllm bench serve --save-result`` result (``--save-detailed`` with ``detailed``)."""
    rng = np.random.default_rng(seed)
    if math.isinf(request_rate):
        c_sim = min(max_concurrency or num_prompts, num_prompts)
    else:
        c_sim = _open_concurrency(request_rate, input_len, output_len)
        if max_concurrency:
            c_sim = min(c_sim, max_concurrency)
    reqs = _requests(rng, num_prompts, c_sim, input_len, output_len, failed, range_ratio)
    if math.isinf(request_rate):
        start, lat, duration = _schedule_closed(reqs, int(c_sim))
    else:
        gaps = rng.exponential(1.0 / request_rate, num_prompts)
        arr = np.cumsum(gaps)
        arr = arr * (num_prompts / request_rate) / arr[-1]       # vLLM rescales to n / rate
        start = np.concatenate([[0.0], arr[:-1]])
        lat = np.where(reqs["bad"], 0.0, reqs["ttft"] + np.array([x.sum() for x in reqs["itls"]]))
        duration = float(np.max(start + np.where(reqs["bad"], 0.005, lat)))
    ok = ~reqs["bad"]
    out_lens = np.where(ok, output_len, 0)
    ttfts = np.where(ok, reqs["ttft"], 0.0)
    itls = [x.tolist() if o else [] for x, o in zip(reqs["itls"], ok)]
    tpots = [float((lat[i] - ttfts[i]) / (out_lens[i] - 1)) for i in range(num_prompts) if ok[i] and out_lens[i] > 1]
    completed = int(ok.sum())
    total_in = int(reqs["inp"][ok].sum())
    total_out = int(out_lens.sum())
    result: dict = {
        "date": "20250601-120000", "endpoint_type": "openai", "backend": "openai", "label": None,
        "model_id": MODEL, "tokenizer_id": MODEL, "num_prompts": num_prompts,
        "request_rate": "inf" if math.isinf(request_rate) else request_rate, "burstiness": 1.0,
        "max_concurrency": max_concurrency,
        "duration": duration, "completed": completed, "failed": int(num_prompts - completed),
        "total_input_tokens": total_in, "total_output_tokens": total_out,
        "request_throughput": completed / duration, "request_goodput": None,
        "output_throughput": total_out / duration, "total_token_throughput": (total_in + total_out) / duration,
        "input_lens": reqs["inp"].astype(int).tolist(), "output_lens": out_lens.astype(int).tolist(),
        "ttfts": ttfts.tolist(), "itls": itls, "latencies": lat.tolist(), "start_times": start.tolist(),
        "queue_times": [0.0] * num_prompts, "generated_texts": [""] * num_prompts,
        "errors": ["" if o else "Service Unavailable" for o in ok],
        "max_output_tokens_per_s": 0.0, "max_concurrent_requests": int(min(c_sim, num_prompts)), "rtfx": 0.0,
    }
    # peak output tokens/s in 1-second buckets and peak concurrency, as calculate_metrics does
    tok_times = np.concatenate([start[i] + ttfts[i] + np.concatenate([[0.0], np.cumsum(reqs["itls"][i])])
                                for i in range(num_prompts) if ok[i]])
    result["max_output_tokens_per_s"] = float(np.bincount(tok_times.astype(int)).max())
    if energy:
        e = _power_w(c_sim) * duration
        result.update({"energy_gpu_ids": [0], "gpu_energy_j": e, "gpu_energy_duration_s": duration,
                       "gpu_avg_power_w": e / duration, "gpu_energy_per_output_token_j": e / total_out})
    ok_ttft = [float(t) for t, o in zip(ttfts, ok) if o]
    pooled_itl = [float(v) for x, o in zip(itls, ok) if o for v in x]
    series = {"ttft": ok_ttft, "tpot": tpots, "itl": pooled_itl,
              "e2el": [float(v) for v, o in zip(lat, ok) if o]}
    for name in percentile_metrics:
        _vllm_stats(result, name, series[name], percentiles)
    if not detailed:   # what vllm bench serve drops without --save-detailed (latencies stay)
        for key in ("input_lens", "output_lens", "start_times", "ttfts", "itls", "generated_texts", "errors"):
            result.pop(key)
    return result


def vllm_sweep_text(runs: list[dict]) -> str:
    """Runs as ``--append-result`` writes them: one JSON object each, a newline before each next."""
    return "\n".join(json.dumps(r) for r in runs)


SWEEP_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64, 128)


def vllm_concurrency_sweep(concurrencies: tuple[int, ...] = SWEEP_CONCURRENCY, **kw) -> list[dict]:
    """A ``--max-concurrency`` sweep, each level seeded by its concurrency (so any single level can be
    regenerated alone, as vllm bench sweep serve_sla's probes are)."""
    seed = kw.pop("seed", SEED)
    return [vllm_run(max_concurrency=c, seed=seed + c, **kw) for c in concurrencies]


# -------------------------------------------------------------------------------- GuideLLM
def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) / w.sum()
    return float(v[min(np.searchsorted(cdf, q, side="left"), len(v) - 1)])


def _guidellm_dist(values: list[float] | np.ndarray, weights: np.ndarray | None = None) -> dict:
    """A GuideLLM DistributionSummary (weighted when ``weights``; the p-keys of its Percentiles)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        zero = {k: 0.0 for k in ("p001", "p01", "p05", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "p999")}
        return {"mean": 0.0, "median": 0.0, "mode": 0.0, "variance": 0.0, "std_dev": 0.0, "min": 0.0, "max": 0.0,
                "count": 0, "total_sum": 0.0, "percentiles": zero, "pdf": None}
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=float)
    mean = float(np.average(v, weights=w))
    var = float(np.average((v - mean) ** 2, weights=w))
    qs = {"p001": 0.001, "p01": 0.01, "p05": 0.05, "p10": 0.1, "p25": 0.25, "p50": 0.5, "p75": 0.75,
          "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}
    pct = {k: _weighted_percentile(v, w, q) for k, q in qs.items()}
    return {"mean": mean, "median": pct["p50"], "mode": pct["p50"], "variance": var, "std_dev": math.sqrt(var),
            "min": float(v.min()), "max": float(v.max()), "count": int(v.size),
            "total_sum": float((v * w).sum()), "percentiles": pct, "pdf": None}


def _status(successful: dict, incomplete: dict, errored: dict, total: dict) -> dict:
    return {"successful": successful, "errored": errored, "incomplete": incomplete, "total": total}


def guidellm_report(*, seed: int = SEED, input_len: int = 512, output_len: int = 128, duration_s: float = 60.0,
                    strategies: tuple[tuple[str, float], ...] = (("synchronous", 1), ("concurrent", 8),
                                                                 ("concurrent", 32), ("constant", 6.0),
                                                                 ("constant", 12.0))) -> dict:
    """A ``guidellm benchmark --output-path benchmarks.json`` report (schema version 2)."""
    rng = np.random.default_rng(seed)
    benches = []
    t0 = 1748779200.0
    for i, (kind, value) in enumerate(strategies):
        if kind == "constant":
            c = _open_concurrency(value, input_len, output_len)
            strategy = {"type_": "constant", "rate": value, "max_concurrency": None, "rampup_duration": 0.0}
        else:
            c = float(value)
            strategy = ({"type_": "synchronous", "max_concurrency": 1} if kind == "synchronous" else
                        {"type_": "concurrent", "streams": int(value), "rampup_duration": 0.0,
                         "max_concurrency": int(value)})
        pre, step = float(t_pre(input_len)), t_step(c)
        w = pre + (output_len - 1) * step
        n = int(duration_s * c / w)
        errored = max(0, int(round(0.004 * n)))
        reqs = _requests(rng, n + errored, c, input_len, output_len, errored, 0.1)
        ok = ~reqs["bad"]
        lat = reqs["ttft"][ok] + np.array([x.sum() for x, o in zip(reqs["itls"], ok) if o])
        ttft_ms = reqs["ttft"][ok] * 1e3
        itl_ms = (lat - reqs["ttft"][ok]) / (output_len - 1) * 1e3       # (last - first) / (out - 1)
        tpot_ms = lat / output_len * 1e3                                    # (last - start) / out
        incomplete = int(min(c, max(1, round(c * 0.6))))                    # cut off at the end
        cut_ttft = reqs["ttft"][:incomplete] * 1e3
        prompt = reqs["inp"][ok].astype(float)
        empty = _guidellm_dist([])
        start = t0 + i * (duration_s + 5)
        met = {
            "request_totals": {"successful": int(ok.sum()), "incomplete": incomplete, "errored": errored,
                               "total": int(ok.sum()) + incomplete + errored},
            "requests_per_second": _status(_guidellm_dist([ok.sum() / duration_s]), empty, empty,
                                           _guidellm_dist([ok.sum() / duration_s])),
            "request_concurrency": _status(_guidellm_dist([c]), empty, empty, _guidellm_dist([c])),
            "request_latency": _status(_guidellm_dist(lat), empty, _guidellm_dist([0.0] * errored), _guidellm_dist(lat)),
            "prompt_token_count": _status(_guidellm_dist(prompt), _guidellm_dist(reqs["inp"][:incomplete]), empty,
                                          _guidellm_dist(prompt)),
            "output_token_count": _status(_guidellm_dist([output_len] * int(ok.sum())), empty, empty,
                                          _guidellm_dist([output_len] * int(ok.sum()))),
            "time_to_first_token_ms": _status(_guidellm_dist(ttft_ms), _guidellm_dist(cut_ttft), empty,
                                              _guidellm_dist(np.concatenate([ttft_ms, cut_ttft]))),
            "time_per_output_token_ms": _status(_guidellm_dist(tpot_ms, np.full(len(tpot_ms), output_len)), empty,
                                                empty, _guidellm_dist(tpot_ms, np.full(len(tpot_ms), output_len))),
            "inter_token_latency_ms": _status(_guidellm_dist(itl_ms, np.full(len(itl_ms), output_len - 1)), empty,
                                              empty, _guidellm_dist(itl_ms, np.full(len(itl_ms), output_len - 1))),
            "output_tokens_per_second": _status(_guidellm_dist([ok.sum() * output_len / duration_s]), empty, empty,
                                                _guidellm_dist([ok.sum() * output_len / duration_s])),
        }
        benches.append({
            "type_": "generative_benchmark",
            "config": {"id_": hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()[:32], "run_id": "sample-run",
                       "run_index": i, "strategy": strategy,
                       "constraints": {"max_duration": {"max_duration": duration_s}}, "sample_size": 0,
                       "prefer_response_metrics": True, "profile": {"type_": "sweep"},
                       "requests": {"data": [f"prompt_tokens={input_len},output_tokens={output_len}"]},
                       "backend": {"type_": "openai_http", "target": "http://localhost:8000", "model": MODEL},
                       "environment": {}},
            "scheduler_metrics": {"start_time": start, "request_start_time": start, "measure_start_time": start,
                                  "measure_end_time": start + duration_s, "request_end_time": start + duration_s,
                                  "end_time": start + duration_s,
                                  "requests_made": met["request_totals"]},
            "metrics": met,
            "requests": {"successful": [], "incomplete": [], "errored": [], "total": None},
            "start_time": start, "end_time": start + duration_s, "duration": duration_s,
            "warmup_duration": 0.0, "cooldown_duration": 0.0,
        })
    return {"metadata": {"version": 2, "guidellm_version": "0.4.0", "python_version": "3.11.9",
                         "platform": "Linux-6.8.0-x86_64-with-glibc2.39"},
            "config": {"target": "http://localhost:8000", "profile": "sweep", "model": MODEL},
            "benchmarks": benches}


# ---------------------------------------------------------------------------------- AIPerf
def _aiperf_metric(values: np.ndarray, unit: str) -> dict:
    v = np.asarray(values, dtype=float)
    p = np.percentile(v, [1, 5, 10, 25, 50, 75, 90, 95, 99])
    keys = ("p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99")
    return {"unit": unit, "avg": float(v.mean()), **{k: float(x) for k, x in zip(keys, p)},
            "min": float(v.min()), "max": float(v.max()), "std": float(v.std())}


def aiperf_export(concurrency: int, *, seed: int = SEED, input_len: int = 512, output_len: int = 128,
                  request_count: int = 200, errors: int = 1) -> dict:
    """An ``aiperf profile --concurrency N`` ``profile_export_aiperf.json`` (display units)."""
    rng = np.random.default_rng(seed + 1000 + concurrency)
    reqs = _requests(rng, request_count, concurrency, input_len, output_len, errors, 0.05)
    start, lat, duration = _schedule_closed(reqs, concurrency)
    ok = ~reqs["bad"]
    ttft = reqs["ttft"][ok]
    itl = (lat[ok] - ttft) / (output_len - 1)                   # (latency - ttft) / (osl - 1)
    n_ok = int(ok.sum())
    second = np.array([x[0] for x, o in zip(reqs["itls"], ok) if o])
    out = {
        "request_throughput": {"unit": "requests/sec", "avg": n_ok / duration},
        "request_latency": _aiperf_metric(lat[ok] * 1e3, "ms"),
        "request_count": {"unit": "requests", "avg": n_ok},
        "time_to_first_token": _aiperf_metric(ttft * 1e3, "ms"),
        "time_to_second_token": _aiperf_metric(second * 1e3, "ms"),
        "inter_token_latency": _aiperf_metric(itl * 1e3, "ms"),
        "output_token_throughput": {"unit": "tokens/sec", "avg": n_ok * output_len / duration},
        "output_token_throughput_per_user": _aiperf_metric(1.0 / itl, "tokens/sec/user"),
        "output_sequence_length": _aiperf_metric(np.full(n_ok, output_len), "tokens"),
        "input_sequence_length": _aiperf_metric(reqs["inp"][ok], "tokens"),
        "benchmark_duration": {"unit": "sec", "avg": duration},
        "total_output_tokens": {"unit": "tokens", "avg": n_ok * output_len},
        "total_isl": {"unit": "tokens", "avg": int(reqs["inp"][ok].sum())},
        "total_osl": {"unit": "tokens", "avg": n_ok * output_len},
    }
    if errors:
        out["error_request_count"] = {"unit": "requests", "avg": errors}
    out["input_config"] = {
        "endpoint": {"model_names": [MODEL], "type": "chat", "streaming": True, "url": "localhost:8000"},
        "input": {"prompt": {"input_tokens": {"mean": input_len, "stddev": 0}},
                  "output_tokens": {"mean": output_len}},
        "loadgen": {"concurrency": concurrency, "request_count": request_count},
        "cli_command": f"aiperf profile --model {MODEL} --streaming --concurrency {concurrency} "
                       f"--request-count {request_count} --synthetic-input-tokens-mean {input_len} "
                       f"--output-tokens-mean {output_len}",
    }
    out["was_cancelled"] = False
    out["error_summary"] = ([{"error_details": {"code": 503, "type": "ServiceUnavailable",
                                                "message": "Service Unavailable"}, "count": errors}]
                            if errors else [])
    out["start_time"] = "2025-06-01T12:00:00"
    out["end_time"] = f"2025-06-01T12:{int(duration // 60):02d}:{int(duration % 60):02d}"
    return out


# --------------------------------------------------------------------------------- LLMPerf
def llmperf_run(concurrency: int, *, seed: int = SEED, input_len: int = 550, output_len: int = 150,
                requests: int = 100, errors: int = 0) -> tuple[dict, list[dict]]:
    """``token_benchmark_ray.py --results-dir``: (``*_summary.json``, ``*_individual_responses.json``)."""
    import pandas as pd

    rng = np.random.default_rng(seed + 2000 + concurrency)
    reqs = _requests(rng, requests, concurrency, input_len, output_len, errors, 0.25)
    start, lat, duration = _schedule_closed(reqs, concurrency)
    individual = []
    for i in range(requests):
        bad = bool(reqs["bad"][i])
        n_out = 0 if bad else output_len
        e2e = 0.0 if bad else float(lat[i])
        ttft = 0.0 if bad else float(reqs["ttft"][i])
        individual.append({
            "error_code": 503 if bad else None, "error_msg": "Service Unavailable" if bad else "",
            # LLMPerf: sum(time_to_next_token) (its first entry IS the ttft) / tokens
            "inter_token_latency_s": (e2e / n_out) if n_out else 0,
            "ttft_s": ttft, "end_to_end_latency_s": e2e,
            "request_output_throughput_token_per_s": (n_out / e2e) if e2e else 0,
            "number_total_tokens": int(reqs["inp"][i]) + n_out, "number_output_tokens": n_out,
            "number_input_tokens": int(reqs["inp"][i])})
    df = pd.DataFrame(individual)
    good = df[df["error_code"].isna()]
    res: dict = {}
    for key in ("inter_token_latency_s", "ttft_s", "end_to_end_latency_s", "request_output_throughput_token_per_s",
                "number_input_tokens", "number_output_tokens"):
        s = good[key].astype(float)
        q = s.quantile([0.25, 0.5, 0.75, 0.9, 0.95, 0.99]).to_dict()
        res[key] = {"quantiles": {f"p{int(k * 100)}": float(v) for k, v in q.items()}, "mean": float(s.mean()),
                    "min": float(s.min()), "max": float(s.max()), "stddev": float(s.std())}
    res.update({"num_requests_started": requests, "error_rate": errors / requests, "number_errors": errors,
                "error_code_frequency": str({503: errors} if errors else {}),
                "mean_output_throughput_token_per_s": float(good["number_output_tokens"].sum() / duration),
                "num_completed_requests": int(len(good)),
                "num_completed_requests_per_min": float(len(good) / duration * 60)})
    name = f"{MODEL.replace('/', '-').replace('.', '-')}_{input_len}_{output_len}_summary"
    summary = {"version": "2023-08-31", "name": name, "model": MODEL, "mean_input_tokens": input_len,
               "stddev_input_tokens": 150, "mean_output_tokens": output_len, "stddev_output_tokens": 0,
               "num_concurrent_requests": concurrency}
    flat: dict = {}
    for k, v in res.items():   # LLMPerf's flatten_dict, sep "_"
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if isinstance(v2, dict):
                    flat.update({f"results_{k}_{k2}_{k3}": v3 for k3, v3 in v2.items()})
                else:
                    flat[f"results_{k}_{k2}"] = v2
        else:
            flat[f"results_{k}"] = v
    summary.update(flat)
    summary["timestamp"] = 1748779200 + concurrency
    return summary, individual


# ----------------------------------------------------------------------- optimum-benchmark
def _ob_latency(values: np.ndarray) -> dict:
    v = [float(x) for x in values]
    return {"unit": "s", "values": v, "count": len(v), "total": float(sum(v)), "mean": float(np.mean(v)),
            "p50": float(np.percentile(v, 50)), "p90": float(np.percentile(v, 90)),
            "p95": float(np.percentile(v, 95)), "p99": float(np.percentile(v, 99)),
            "stdev": float(np.std(v)) if len(v) > 1 else 0, "stdev_": float(np.std(v) / abs(np.mean(v)) * 100)}


def optimum_benchmark(*, seed: int = SEED, batch_size: int = 8, sequence_length: int = 256,
                      new_tokens: int = 64, iterations: int = 10) -> dict:
    """``optimum-benchmark`` ``benchmark.json`` (config + report) of a pytorch text-generation run
    with energy tracking (codecarbon: kWh per call)."""
    rng = np.random.default_rng(seed + 3000)
    pre = float(t_pre(sequence_length * batch_size)) * 1.1            # static batch: one prefill for all
    prefill = pre * rng.lognormal(0, 0.03, iterations)
    steps = t_step(batch_size) * 1.25 * rng.gamma(80.0, 1 / 80.0, (iterations, new_tokens - 1))  # HF generate
    per_token = steps.ravel()
    decode = steps.sum(axis=1)
    generate = prefill + decode
    power = _power_w(batch_size) * 0.9
    kwh = lambda s: power * s / 3.6e6  # noqa: E731
    energy = lambda s: {"unit": "kWh", "cpu": kwh(s) * 0.12, "ram": kwh(s) * 0.02, "gpu": kwh(s),  # noqa: E731
                        "total": kwh(s) * 1.14}
    return {
        "config": {
            "name": "pytorch_llama_text_generation",
            "backend": {"name": "pytorch", "version": "2.5.1", "_target_": "optimum_benchmark.backends.pytorch.backend.PyTorchBackend",
                        "task": "text-generation", "library": "transformers", "model_type": "llama", "model": MODEL,
                        "processor": MODEL, "device": "cuda", "device_ids": "0", "seed": 42,
                        "torch_dtype": "bfloat16", "no_weights": True},
            "scenario": {"name": "inference", "_target_": "optimum_benchmark.scenarios.inference.scenario.InferenceScenario",
                         "iterations": iterations, "duration": 10, "warmup_runs": 10,
                         "input_shapes": {"batch_size": batch_size, "sequence_length": sequence_length},
                         "new_tokens": None, "memory": True, "latency": True, "energy": True,
                         "forward_kwargs": {}, "generate_kwargs": {"max_new_tokens": new_tokens,
                                                                   "min_new_tokens": new_tokens}},
            "launcher": {"name": "process", "_target_": "optimum_benchmark.launchers.process.launcher.ProcessLauncher",
                         "device_isolation": True, "device_isolation_action": "error", "start_method": "spawn"},
            "environment": {"cpu": " Intel(R) Xeon(R) Platinum 8480+", "cpu_count": 224, "cpu_ram_mb": 2164154.0,
                            "system": "Linux", "machine": "x86_64", "python_version": "3.11.9",
                            "gpu": ["NVIDIA H100 80GB HBM3"], "gpu_count": 1, "gpu_vram_mb": 85520809984,
                            "optimum_benchmark_version": "0.6.0", "transformers_version": "4.47.0"},
            "print_report": False, "log_report": True},
        "report": {
            "load_model": {"memory": None, "latency": _ob_latency([8.2]), "throughput": None, "energy": None,
                           "efficiency": None},
            "first_generate": {"memory": None, "latency": _ob_latency([generate[0] * 1.8]), "throughput": None,
                               "energy": None, "efficiency": None},
            "generate": {"memory": None, "latency": _ob_latency(generate),
                         "throughput": {"unit": "samples/s", "value": batch_size / float(np.mean(generate))},
                         "energy": energy(float(np.mean(generate))),
                         "efficiency": {"unit": "samples/kWh", "value": batch_size / kwh(float(np.mean(generate)))}},
            "prefill": {"memory": {"unit": "MB", "max_ram": 1903.1, "max_global_vram": 18411.5,
                                   "max_process_vram": 17633.9, "max_reserved": 16883.7, "max_allocated": 16342.1},
                        "latency": _ob_latency(prefill),
                        "throughput": {"unit": "samples/s", "value": batch_size / float(np.mean(prefill))},
                        "energy": energy(float(np.mean(prefill))),
                        "efficiency": {"unit": "samples/kWh", "value": batch_size / kwh(float(np.mean(prefill)))}},
            "decode": {"memory": {"unit": "MB", "max_ram": 1903.4, "max_global_vram": 18620.8,
                                  "max_process_vram": 17843.1, "max_reserved": 17092.8, "max_allocated": 16480.4},
                       "latency": _ob_latency(decode),
                       "throughput": {"unit": "tokens/s", "value": batch_size * (new_tokens - 1) / float(np.mean(decode))},
                       "energy": energy(float(np.mean(decode))),
                       "efficiency": {"unit": "tokens/kWh",
                                      "value": batch_size * (new_tokens - 1) / kwh(float(np.mean(decode)))}},
            "per_token": {"memory": None, "latency": _ob_latency(per_token), "throughput": None, "energy": None,
                          "efficiency": None},
        },
    }


# ------------------------------------------------------------------------------- the files
#: Llama-3.1-8B's architecture (its public config.json: sizes only), to plan the samples with
#: model facts (effplan.import_benchmark(..., config=...)). No weights.
LLAMA_31_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "head_dim": 128, "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "hidden_act": "silu",
    "attention_bias": False, "mlp_bias": False, "bos_token_id": 128000, "eos_token_id": 128009,
}


def sample_files() -> dict[str, str]:
    """File name -> exact text of every shipped sample."""
    files = {"vllm_bench_serve_sweep.jsonl": vllm_sweep_text(vllm_concurrency_sweep(
        percentiles=(50, 95, 99), num_prompts=240, output_len=256, failed=1)),
        "guidellm_benchmarks.json": json.dumps(guidellm_report()),
        "optimum_benchmark_benchmark.json": json.dumps(optimum_benchmark(), indent=4),
        "llama-3.1-8b_config.json": json.dumps(LLAMA_31_8B_CONFIG, indent=2) + "\n"}
    for c in (1, 8, 32):
        files[f"aiperf_concurrency{c}_profile_export_aiperf.json"] = json.dumps(aiperf_export(c), indent=2)
        summary, individual = llmperf_run(c, errors=1 if c == 32 else 0)
        files[f"llmperf_concurrency{c}_summary.json"] = json.dumps(summary, indent=4)
        files[f"llmperf_concurrency{c}_individual_responses.json"] = json.dumps(individual, indent=4)
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help="folder to write the samples into")
    ap.add_argument("--check", action="store_true", help="compare the files in --out with a fresh run")
    args = ap.parse_args(argv)
    files = sample_files()
    if args.check:
        same = [n for n, t in files.items() if (args.out / n).is_file() and (args.out / n).read_text() == t]
        for n in sorted(set(files) - set(same)):
            print(f"DIFFERS or missing: {args.out / n}")
        print(f"{len(same)}/{len(files)} shipped samples match a fresh seeded run")
        return 0 if len(same) == len(files) else 1
    args.out.mkdir(parents=True, exist_ok=True)
    for n, t in files.items():
        (args.out / n).write_text(t)
    print(f"wrote {len(files)} samples to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
