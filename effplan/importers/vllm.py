"""``vllm bench serve --save-result`` files (also the older ``benchmarks/benchmark_serving.py``).

Read against vLLM's own code (``vllm/benchmarks/serve.py``: ``calculate_metrics``, ``benchmark``,
``main_async``, ``add_cli_args``; ``vllm/benchmarks/lib/energy.py``: ``GpuEnergyMeter``;
``vllm/benchmarks/sweep/serve_sla.py``: the SLA search). What a result holds:

* one JSON object per run; ``--append-result`` appends each run after a newline (one file, a
  sweep); ``vllm bench sweep`` writes a JSON list of runs (``summary.json``). All three are read.
* ``max_concurrency`` (``--max-concurrency``; ``None`` when unset), ``request_rate`` (a number,
  or the string ``"inf"``), ``num_prompts``, ``duration`` (s), ``completed``, ``failed``,
  ``total_input_tokens`` / ``total_output_tokens`` (of the completed requests),
  ``request_throughput`` (completed / duration, requests/s), ``output_throughput`` (tokens/s).
* per metric in ``--percentile-metrics`` (default ``ttft,tpot,itl``): ``mean_/median_/std_<m>_ms``
  and ``p<N>_<m>_ms`` for each N of ``--metric-percentiles`` -- whose **default is "99"**: a plain
  file has p99 and the median, and NO p95. All in milliseconds (``np.percentile`` x 1000).
* ``latencies`` (s) is kept in every file; with ``--save-detailed`` also ``ttfts`` (s),
  ``itls`` (s, a list per request), ``input_lens``, ``output_lens``, ``errors``, for EVERY request
  -- failed ones included, with ``ttft`` 0, latency 0 and output length 0 (``RequestFuncOutput``
  defaults; ``calculate_metrics`` appends 0 to the output lengths of failed requests). A request
  is failed here when its ``errors`` entry is non-empty or its output length is 0; they are
  counted and removed before any percentile (the summary's own figures exclude them too).
* vLLM's **TPOT** is per request: ``(latency - ttft) / (output_len - 1)``, the first token
  excluded, only for requests with more than one output token; its **ITL** is per streamed chunk,
  pooled over requests -- a different distribution (its p95 sits well above the per-request
  TPOT's), so ITL is never used as TPOT. Without ``latencies``, ``ttft + sum(itl)`` is the same
  latency (both end at the last chunk).
* energy, when measured (``GpuEnergyMeter.get_results``): ``gpu_energy_j`` (NVML
  ``nvmlDeviceGetTotalEnergyConsumption`` delta summed over ``energy_gpu_ids``),
  ``gpu_energy_duration_s``, ``gpu_avg_power_w``, ``gpu_energy_per_output_token_j`` (energy /
  output tokens). How ``serve.py`` merges these keys was not in the stored ``serve.py``; the key
  names are ``get_results``'s.
* no vLLM version: only what ``--metadata KEY=VALUE`` added (``vllm_version`` / ``version`` are
  read when present).

Concurrency: ``max_concurrency`` with an infinite request rate is a closed loop at that
concurrency (``stated``; more than ``num_prompts`` cannot be in flight, so it is capped there). A
finite ``request_rate`` (with or without a ``max_concurrency`` cap), or neither set (every prompt
sent at once), is an open-loop run: Little's law, ``request_throughput x mean end-to-end latency``
(``mean_e2el_ms`` when stated, else the mean of the completed requests' ``latencies``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ValidationError
from . import BenchmarkLevel, littles_law, num, percentile, read_json_records

TPOT_DEFINITION = ("vLLM TPOT: per request (latency - ttft) / (output tokens - 1), first token excluded; "
                   "requests with one output token left out")
_SIGNATURE = ("request_throughput", "completed")
_HOW = "re-run vllm bench serve with --metric-percentiles 50,95,99 (or --save-detailed)"


def _records(path: Path, text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for value in read_json_records(path, text):
        for rec in (value if isinstance(value, list) else [value]):
            if not isinstance(rec, dict) or not any(k in rec for k in _SIGNATURE):
                raise ValidationError("path", f"{path} is not a vllm bench serve result: a run has none of "
                                              f"{list(_SIGNATURE)} (save it with --save-result)")
            out.append(rec)
    return out


def _arrays(rec: dict[str, Any], where: str) -> dict[str, np.ndarray] | None:
    """The per-request arrays of a --save-detailed file (None without them)."""
    if "ttfts" not in rec or "output_lens" not in rec:
        return None
    n = len(rec["ttfts"])
    a: dict[str, Any] = {"ttft": np.asarray(rec["ttfts"], dtype=float),
                         "out": np.asarray(rec["output_lens"], dtype=float)}
    for key, name in (("latencies", "lat"), ("input_lens", "inp")):
        if key in rec:
            a[name] = np.asarray(rec[key], dtype=float)
    if "itls" in rec:
        a["itl_sum"] = np.asarray([sum(x) if isinstance(x, list) else float("nan") for x in rec["itls"]], dtype=float)
    errors = rec.get("errors")
    a["err"] = np.asarray([bool(e) for e in errors]) if isinstance(errors, list) else np.zeros(n, bool)
    for name, arr in a.items():
        if len(arr) != n:
            raise ValidationError(f"{where}: {name}", f"has {len(arr)} entries for {n} requests in ttfts")
    if "lat" not in a and "itl_sum" not in a:
        return None
    a["ok"] = ~a["err"] & (a["out"] > 0)
    return a


def _stated(rec: dict[str, Any], metric: str, q: float) -> float:
    if q == 50 and "median_" + metric + "_ms" in rec:
        return num(rec, f"median_{metric}_ms")
    word = str(int(q)) if int(q) == q else str(q)
    return num(rec, f"p{word}_{metric}_ms")


def _level(rec: dict[str, Any], where: str) -> BenchmarkLevel:
    notes: list[str] = []
    a = _arrays(rec, where)
    values: dict[str, np.ndarray] = {}
    failed = num(rec, "failed")
    if a is not None:
        ok = a["ok"]
        values["ttft"] = a["ttft"][ok] * 1e3
        m = ok & (a["out"] > 1)
        dec = (a["lat"] - a["ttft"]) if "lat" in a else a["itl_sum"]
        values["tpot"] = dec[m] / (a["out"][m] - 1) * 1e3
        if math.isfinite(failed) and int(failed) != int((~ok).sum()):
            notes.append(f"the file says {int(failed)} failed; the per-request arrays hold {int((~ok).sum())}")
        failed = float((~ok).sum())
    completed = num(rec, "completed")
    if completed == 0 or (a is not None and not a["ok"].any()):
        raise ValidationError("completed", f"{where}: no request completed ({int(failed) if math.isfinite(failed) else '?'} "
                                           "failed): there is nothing to import from this run")
    if not math.isfinite(failed) and math.isfinite(num(rec, "num_prompts")) and math.isfinite(completed):
        failed = num(rec, "num_prompts") - completed
        notes.append("failed = num_prompts - completed (the file has no 'failed' count)")
    figs: dict[str, float] = {}
    for metric in ("ttft", "tpot"):
        for q in (50, 95):
            v = _stated(rec, metric, q)
            if not math.isfinite(v) and metric in values and values[metric].size:
                v = percentile(values[metric], q)
                notes.append(f"{metric.upper()} p{q} computed from the per-request arrays "
                             f"({values[metric].size} completed requests; the file does not state it)")
            elif not math.isfinite(v):
                stated = sorted((k[1:].split("_")[0] for k in rec if re.fullmatch(rf"p[0-9.]+_{metric}_ms", k)),
                                key=float)
                have = f"it states p{', p'.join(stated)}" if stated else "it states none"
                extra = " (its ITL is per chunk, pooled: not a TPOT)" if metric == "tpot" and "p95_itl_ms" in rec else ""
                notes.append(f"{metric.upper()} p{q} unknown: not in the file ({have}; --metric-percentiles "
                             f"defaults to \"99\") and no per-request arrays{extra}: {_HOW}")
            figs[f"{metric}_p{q}_ms"] = v
    # the summary against the arrays: the same definition (failed requests out) must agree
    if a is not None:
        for key in rec:
            mt = re.fullmatch(r"(p([0-9.]+)|median|mean)_(ttft|tpot)_ms", key)
            if not mt or not values[mt.group(3)].size:
                continue
            arr = values[mt.group(3)]
            mine = float(np.mean(arr)) if mt.group(1) == "mean" else percentile(
                arr, 50.0 if mt.group(1) == "median" else float(mt.group(2)))
            if abs(mine - float(rec[key])) > 1e-6 * max(1.0, abs(float(rec[key]))):
                notes.append(f"{key} = {float(rec[key]):.6g} in the summary, {mine:.6g} from the per-request "
                             "arrays with failed requests removed")
    rate_raw = rec.get("request_rate")
    rate = math.inf if rate_raw in (None, "inf", "Infinity") else float(rate_raw)
    mc = rec.get("max_concurrency")
    prompts = num(rec, "num_prompts")
    throughput = num(rec, "request_throughput")
    littles = math.nan
    if math.isinf(rate) and mc:
        concurrency, source, label = float(mc), "stated", f"max_concurrency={mc}"
        if math.isfinite(prompts) and mc > prompts:
            concurrency = prompts
            notes.append(f"max_concurrency {mc} > num_prompts {int(prompts)}: at most {int(prompts)} in flight")
    else:
        w = num(rec, "mean_e2el_ms") / 1e3
        if not math.isfinite(w):
            if a is not None and "lat" in a:
                w = float(np.mean(a["lat"][a["ok"]]))
            elif isinstance(rec.get("latencies"), list):
                lat = np.asarray(rec["latencies"], dtype=float)
                lat = lat[lat > 0]   # failed requests keep latency 0
                w = float(np.mean(lat)) if lat.size else math.nan
        if not (math.isfinite(w) and math.isfinite(throughput)):
            raise ValidationError("max_concurrency", f"{where}: a request-rate run without a mean end-to-end "
                                                     "latency (mean_e2el_ms or latencies): its concurrency "
                                                     "cannot be derived; re-run with --percentile-metrics "
                                                     "ttft,tpot,itl,e2el or a fixed --max-concurrency")
        littles = littles_law(throughput, w)
        concurrency, source = littles, "littles-law"
        label = (f"request_rate={rate_raw}/s" if math.isfinite(rate) else "request_rate=inf (all at once)") + \
            (f", max_concurrency={mc}" if mc else "")
        if rec.get("ramp_up_strategy"):
            notes.append(f"ramp-up run ({rec['ramp_up_strategy']}): the rate changed during the run")
    n_ok = completed if math.isfinite(completed) else (float(a["ok"].sum()) if a is not None else math.nan)
    p_mean = num(rec, "total_input_tokens") / n_ok if n_ok else math.nan
    o_mean = num(rec, "total_output_tokens") / n_ok if n_ok else math.nan
    if a is not None and "inp" in a and not math.isfinite(p_mean):
        p_mean = float(np.mean(a["inp"][a["ok"]]))
    e_out = num(rec, "gpu_energy_per_output_token_j")
    energy: dict[str, Any] = {}
    if math.isfinite(e_out):
        gpus = rec.get("energy_gpu_ids") or []
        energy = {"energy_per_output_token_j": e_out, "energy_per_prompt_token_j": 0.0,
                  "energy_source": "nvml-counter", "avg_power_w": num(rec, "gpu_avg_power_w"),
                  "energy_note": (f"measured by vLLM: NVML total-energy counter, {num(rec, 'gpu_energy_j'):.6g} J "
                                  f"over {num(rec, 'gpu_energy_duration_s'):.6g} s on GPU(s) {gpus}, per output "
                                  "token (gpu_energy_per_output_token_j); prefill energy is inside it, so "
                                  "energy_per_prompt_token_j = 0")}
        if len(gpus) > 1:
            notes.append(f"energy summed over {len(gpus)} GPUs: one instance is {len(gpus)} GPUs")
    version = str(rec.get("vllm_version") or rec.get("version") or "")
    if not version:
        notes.append("vllm bench serve does not record its version (add --metadata vllm_version=X)")
    return BenchmarkLevel(
        label=label, concurrency=concurrency, concurrency_source=source,
        ttft_p50_ms=figs["ttft_p50_ms"], ttft_p95_ms=figs["ttft_p95_ms"],
        tpot_p50_ms=figs["tpot_p50_ms"], tpot_p95_ms=figs["tpot_p95_ms"],
        prompt_tokens_mean=p_mean, output_tokens_mean=o_mean, tpot_definition=TPOT_DEFINITION,
        requests_completed=n_ok, requests_failed=failed, requests_incomplete=math.nan,
        request_rate_per_s=rate if math.isfinite(rate) else math.nan, concurrency_littles_law=littles,
        duration_s=num(rec, "duration"), output_tokens_total=num(rec, "total_output_tokens"),
        output_tokens_per_s=num(rec, "output_throughput"), tool_version=version,
        model=str(rec.get("model_id") or ""), notes=tuple(notes), **energy)


def parse(path: Path, text: str) -> list[BenchmarkLevel]:
    """Every run of a vLLM result file as a :class:`BenchmarkLevel` (see the module docstring)."""
    recs = _records(path, text)
    return [_level(r, f"{path.name} run {i}") for i, r in enumerate(recs)]
