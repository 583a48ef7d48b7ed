"""GuideLLM reports (``guidellm benchmark ... --output-path benchmarks.json``; report schema 2).

Read against GuideLLM's code (vllm-project/guidellm: ``benchmark/schemas/report.py``
``GenerativeBenchmarksReport``, ``benchmark/schemas/benchmark.py`` ``GenerativeBenchmark``,
``benchmark/schemas/metrics.py`` ``GenerativeMetrics.compile``, ``schemas/request_stats.py``,
``schemas/statistics.py`` ``StatusDistributionSummary`` / ``Percentiles``,
``scheduler/strategies.py``) and ``docs/guides/metrics.md``. What a report holds:

* ``metadata.guidellm_version``; ``benchmarks``: one entry per benchmark of the run (a sweep:
  synchronous, throughput, then constant rates; or one per ``--rate``).
* ``benchmarks[i].config.strategy``: ``type_`` ``synchronous`` (one request at a time),
  ``concurrent`` (``streams`` in flight), ``throughput`` (as fast as possible, up to
  ``max_concurrency`` when set), ``constant`` / ``poisson`` (open loop at ``rate`` requests/s).
* ``benchmarks[i].metrics.<metric>`` is a ``StatusDistributionSummary``: ``successful``,
  ``incomplete``, ``errored`` and ``total`` distributions, each with ``mean``, ``median``,
  ``percentiles`` (``p001`` ... ``p50`` ... ``p90``, ``p95``, ``p99``, ``p999``) -- only
  ``successful`` is used here; ``metrics.request_totals`` counts the three groups.
* ``time_to_first_token_ms`` (ms). ``inter_token_latency_ms`` = ``(last token - first token) /
  (output tokens - 1)`` per request -- vLLM's TPOT definition (first token excluded) -- but its
  distribution is WEIGHTED by each request's output tokens - 1, so its percentiles are of decode
  tokens, not of requests. ``time_per_output_token_ms`` (GuideLLM's "TPOT") INCLUDES the first
  token, ``(last token - request start) / output tokens``, and is not used.
* ``request_latency`` in SECONDS (end - start); ``prompt_token_count`` / ``output_token_count``;
  ``duration`` (s) of the measured window.

Concurrency: ``synchronous`` 1, ``concurrent`` its streams, ``throughput`` with a
``max_concurrency`` that cap (stated). ``constant``, ``poisson`` and an uncapped ``throughput``
are open loop: Little's law with ``lambda = successful requests / duration`` and ``W`` =
``request_latency.successful.mean`` (GuideLLM's own measured ``request_concurrency`` mean is
quoted in the notes beside it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from . import BenchmarkLevel, littles_law, num, read_json_records

TPOT_DEFINITION = ("GuideLLM inter_token_latency_ms: per request (last token - first token) / (output tokens - 1), "
                   "first token excluded; percentiles weighted by each request's decode tokens")


def _succ(metrics: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    m = metrics.get(name)
    if not isinstance(m, dict) or not isinstance(m.get("successful"), dict):
        raise ValidationError(f"{where}: metrics.{name}", "missing (not a GuideLLM generative benchmark report?)")
    return m["successful"]


def _pct(dist: dict[str, Any], key: str) -> float:
    return num(dist.get("percentiles"), key)


def _level(b: dict[str, Any], version: str, where: str) -> BenchmarkLevel:
    cfg = b.get("config") if isinstance(b.get("config"), dict) else b.get("args", {})
    strategy = (cfg or {}).get("strategy") or {}
    kind = str(strategy.get("type_") or strategy.get("type") or "")
    metrics = b.get("metrics")
    if not isinstance(metrics, dict):
        raise ValidationError(f"{where}: metrics", "missing (not a GuideLLM generative benchmark report?)")
    ttft = _succ(metrics, "time_to_first_token_ms", where)
    itl = _succ(metrics, "inter_token_latency_ms", where)
    totals = metrics.get("request_totals") or {}
    completed = num(totals, "successful")
    duration = num(b, "duration")
    if not math.isfinite(duration):
        sm = b.get("scheduler_metrics") or {}
        duration = num(sm, "measure_end_time") - num(sm, "measure_start_time")
    notes: list[str] = []
    rate = num(strategy, "rate")
    littles = math.nan
    cap = strategy.get("max_concurrency")
    if kind == "synchronous":
        c, source, label = 1.0, "stated", "synchronous"
    elif kind == "concurrent":
        c, source, label = float(strategy["streams"]), "stated", f"concurrent@{strategy['streams']}"
    elif kind == "throughput" and cap:
        c, source, label = float(cap), "stated", f"throughput@{cap}"
    elif kind in ("constant", "poisson", "throughput"):
        w = num(_succ(metrics, "request_latency", where), "mean")          # seconds
        if not (math.isfinite(w) and math.isfinite(duration) and duration > 0 and completed > 0):
            raise ValidationError(f"{where}: request_latency", "an open-loop benchmark needs the mean latency, "
                                                               "the successful count and the duration")
        littles = littles_law(completed / duration, w)
        c, source = littles, "littles-law"
        label = f"{kind}@{rate:g}/s" if math.isfinite(rate) else f"{kind}@unlimited"
        conc = (metrics.get("request_concurrency") or {}).get("successful") or {}
        if math.isfinite(num(conc, "mean")):
            notes.append(f"GuideLLM's own measured request concurrency (mean) is {num(conc, 'mean'):.4g}")
    else:
        raise ValidationError(f"{where}: config.strategy.type_", f"unknown scheduling strategy {kind!r}")
    inc = num(totals, "incomplete")
    if inc:
        notes.append(f"{int(inc)} incomplete request(s) (cut off at the end of the run) left out")
    notes.append("TPOT percentiles are GuideLLM's token-weighted inter-token latency (not per request)")
    out_mean = num(_succ(metrics, "output_token_count", where), "mean")
    return BenchmarkLevel(
        label=label, concurrency=c, concurrency_source=source,
        ttft_p50_ms=_pct(ttft, "p50"), ttft_p95_ms=_pct(ttft, "p95"),
        tpot_p50_ms=_pct(itl, "p50"), tpot_p95_ms=_pct(itl, "p95"),
        prompt_tokens_mean=num(_succ(metrics, "prompt_token_count", where), "mean"), output_tokens_mean=out_mean,
        tpot_definition=TPOT_DEFINITION, requests_completed=completed, requests_failed=num(totals, "errored"),
        requests_incomplete=inc, request_rate_per_s=rate, concurrency_littles_law=littles, duration_s=duration,
        output_tokens_total=out_mean * completed if math.isfinite(out_mean) else math.nan,
        tool_version=version, model=str(((cfg or {}).get("backend") or {}).get("model") or ""),
        notes=tuple(notes))


def parse(path: Path, text: str) -> list[BenchmarkLevel]:
    """Every benchmark of a GuideLLM report as a :class:`BenchmarkLevel` (module docstring)."""
    docs = read_json_records(path, text)
    doc = docs[0]
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise ValidationError("path", f"{path} is not a GuideLLM report (no 'benchmarks' list; save it with "
                                      "--output-path benchmarks.json)")
    version = str((doc.get("metadata") or {}).get("guidellm_version") or "")
    return [_level(b, version, f"{path.name} benchmark {i}") for i, b in enumerate(doc["benchmarks"])]
