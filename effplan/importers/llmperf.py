"""LLMPerf ``token_benchmark_ray.py --results-dir`` results (``*_summary.json``, with the
``*_individual_responses.json`` beside it when present).

Read against LLMPerf's code (ray-project/llmperf: ``token_benchmark_ray.py``
``get_token_throughput_latencies`` / ``metrics_summary`` / ``run_token_benchmark``,
``src/llmperf/common_metrics.py``, ``src/llmperf/utils.py`` ``LLMPerfResults`` /
``flatten_dict``, ``src/llmperf/ray_clients/openai_chat_completions_client.py``). What it holds:

* the summary is one FLAT object (``flatten_dict``, separator ``_``): ``version`` (the results
  format date, ``"2023-08-31"``, not a package version), ``num_concurrent_requests`` (threads,
  each sending its next request when the last returns: a closed loop), ``results_<metric>_
  quantiles_p25 ... p50 ... p90, p95, p99``, ``_mean``, ``_min``, ``_max``, ``_stddev`` for
  ``ttft_s``, ``inter_token_latency_s``, ``end_to_end_latency_s``, ``number_input_tokens``,
  ``number_output_tokens`` -- every time in **SECONDS** (x 1000 here) -- computed by pandas'
  ``quantile`` (linear) over the requests WITHOUT an ``error_code``;
  ``results_num_completed_requests``, ``results_number_errors``,
  ``results_num_completed_requests_per_min``, ``results_mean_output_throughput_token_per_s``.
* LLMPerf's ``inter_token_latency_s`` is, per request, ``sum(time_to_next_token) /
  tokens``, and the first entry of ``time_to_next_token`` IS the TTFT: it is ``end-to-end /
  tokens``, first token INCLUDED -- not vLLM's TPOT. With the individual responses
  (``ttft_s``, ``end_to_end_latency_s``, ``number_output_tokens``, ``error_code`` per request),
  TPOT is computed with vLLM's definition, ``(end_to_end - ttft) / (tokens - 1)``; without them
  the summary's ITL quantiles are used and the note says they include the first token.
* token counts are LLMPerf's Llama tokenizer's (``hf-internal-testing/llama-tokenizer``), not
  the served model's; the notes say so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ValidationError
from . import BenchmarkLevel, num, percentile, read_json_records

VLLM_DEFINITION = ("vLLM TPOT from LLMPerf's individual responses: per request (end_to_end - ttft) / "
                   "(output tokens - 1), first token excluded")
LLMPERF_DEFINITION = ("LLMPerf inter_token_latency_s: per request end_to_end / output tokens, FIRST TOKEN "
                      "INCLUDED (overstates the decode TPOT)")
_SUMMARY, _INDIVIDUAL = "_summary.json", "_individual_responses.json"


def _individual(path: Path) -> tuple[Path, list[dict[str, Any]]] | None:
    if not path.name.endswith(_SUMMARY):
        return None
    p = path.with_name(path.name[: -len(_SUMMARY)] + _INDIVIDUAL)
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError("path", f"{p} (LLMPerf's individual responses) cannot be read: {exc}") from None
    if not isinstance(data, list):
        raise ValidationError("path", f"{p} is not a list of LLMPerf responses")
    return p, data


def parse(path: Path, text: str) -> list[BenchmarkLevel]:
    """The run of an LLMPerf summary as one :class:`BenchmarkLevel` (module docstring)."""
    doc = read_json_records(path, text)[0]
    if isinstance(doc, list):
        raise ValidationError("path", f"{path} is LLMPerf's individual responses: import the *{_SUMMARY} "
                                      "beside it (the responses are read with it)")
    if not isinstance(doc, dict) or "results_ttft_s_quantiles_p50" not in doc:
        raise ValidationError("path", f"{path} is not an LLMPerf summary (no results_ttft_s_quantiles_p50)")
    notes: list[str] = ["token counts are LLMPerf's Llama tokenizer's (hf-internal-testing/llama-tokenizer), "
                        "not the served model's"]
    figs = {f"ttft_p{q}_ms": num(doc, f"results_ttft_s_quantiles_p{q}") * 1e3 for q in (50, 95)}
    completed = num(doc, "results_num_completed_requests")
    errors = num(doc, "results_number_errors")
    ind = _individual(path)
    if ind is not None:
        p, data = ind
        ok = [r for r in data if isinstance(r, dict) and r.get("error_code") is None]
        ttft = np.array([float(r["ttft_s"]) for r in ok])
        e2e = np.array([float(r["end_to_end_latency_s"]) for r in ok])
        n = np.array([float(r["number_output_tokens"]) for r in ok])
        m = n > 1
        tpot = (e2e[m] - ttft[m]) / (n[m] - 1) * 1e3
        figs.update({f"tpot_p{q}_ms": percentile(tpot, q) for q in (50, 95)})
        definition = VLLM_DEFINITION
        notes.append(f"TPOT from {p.name} ({int(m.sum())} requests without an error)")
        for q in (50, 95):   # the summary's TTFT quantiles are over the same requests
            mine = percentile(ttft, q) * 1e3
            if abs(mine - figs[f"ttft_p{q}_ms"]) > 1e-6 * max(1.0, mine):
                notes.append(f"TTFT p{q} {figs[f'ttft_p{q}_ms']:.6g} ms in the summary, {mine:.6g} ms from {p.name}")
    else:
        figs.update({f"tpot_p{q}_ms": num(doc, f"results_inter_token_latency_s_quantiles_p{q}") * 1e3
                     for q in (50, 95)})
        definition = LLMPERF_DEFINITION
        notes.append(f"no *{_INDIVIDUAL} beside the summary: TPOT is LLMPerf's inter-token latency, which "
                     "includes the first token (put the individual responses file beside it for the "
                     "per-request TPOT)")
    per_min = num(doc, "results_num_completed_requests_per_min")
    duration = completed / (per_min / 60.0) if per_min and math.isfinite(per_min) else math.nan
    out_mean = num(doc, "results_number_output_tokens_mean")
    c = num(doc, "num_concurrent_requests")
    return [BenchmarkLevel(
        label=f"num_concurrent_requests={int(c) if math.isfinite(c) else '?'}", concurrency=c,
        concurrency_source="stated", **figs, prompt_tokens_mean=num(doc, "results_number_input_tokens_mean"),
        output_tokens_mean=out_mean, tpot_definition=definition, requests_completed=completed,
        requests_failed=errors, duration_s=duration,
        output_tokens_total=out_mean * completed if math.isfinite(out_mean) else math.nan,
        output_tokens_per_s=num(doc, "results_mean_output_throughput_token_per_s"),
        tool_version=f"results format {doc['version']}" if doc.get("version") else "",
        model=str(doc.get("model") or ""), notes=tuple(notes))]
