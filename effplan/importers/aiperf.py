"""NVIDIA AIPerf ``profile_export_aiperf.json`` (one run per file; a sweep is several files).

Read against AIPerf's code (ai-dynamo/aiperf: ``aiperf/common/models/export_models.py``
``JsonExportData`` / ``JsonMetricResult``, ``aiperf/exporters/json_exporter.py``,
``aiperf/metrics/types/*`` and ``aiperf/metrics/metric_dicts.py``,
``aiperf/common/config/loadgen_config.py`` / ``user_config.py``) and
``docs/tutorials/working-with-profile-exports.md``. What the file holds:

* one object per metric tag with its display ``unit`` (``"ms"``, ``"sec"``, ``"ns"``, ``"us"``;
  ``"requests/sec"``, ``"tokens"``...) and ``avg``, ``p1`` ... ``p50``, ``p90``, ``p95``, ``p99``,
  ``min``, ``max``, ``std`` (``np.percentile`` over the requests; a statistic that is None is left
  out of the file). Units are read, never assumed.
* ``time_to_first_token``; ``inter_token_latency`` = ``(request_latency - ttft) /
  (output_sequence_length - 1)`` per request (vLLM's TPOT definition, first token excluded;
  requests with fewer than 2 output tokens have none); ``request_latency``;
  ``request_throughput`` (requests/sec); ``request_count`` / ``error_request_count`` (``avg``
  is the count; absent when there were no errors); ``input_sequence_length`` /
  ``output_sequence_length``; ``benchmark_duration`` (sec); ``total_osl``.
* ``input_config`` (the user config, unset fields left out): ``loadgen.concurrency`` (a closed
  loop at that concurrency), ``loadgen.request_rate`` (requests/s: the request-rate strategy is
  used whenever a rate is given, even with a concurrency). Neither: AIPerf runs concurrency 1.
* no AIPerf version in the file (``cli_command`` is quoted in the notes).

Concurrency: ``request_rate`` -> Little's law (``request_throughput x request_latency.avg``);
else ``concurrency`` (stated), else 1 (AIPerf's default, stated, with a note).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from . import BenchmarkLevel, littles_law, num, read_json_records, to_ms

TPOT_DEFINITION = ("AIPerf inter_token_latency: per request (request_latency - ttft) / (output tokens - 1), "
                   "first token excluded")


def _time(doc: dict[str, Any], tag: str, stat: str, where: str) -> float:
    m = doc.get(tag)
    if not isinstance(m, dict):
        return math.nan
    return to_ms(m.get(stat), m.get("unit", ""), field_name=f"{where}: {tag}.unit")


def parse(path: Path, text: str) -> list[BenchmarkLevel]:
    """The run of a ``profile_export_aiperf.json`` as one :class:`BenchmarkLevel`."""
    docs = read_json_records(path, text)
    doc = docs[0]
    where = path.name
    if not isinstance(doc, dict) or "time_to_first_token" not in doc or "request_count" not in doc:
        raise ValidationError("path", f"{path} is not an AIPerf profile_export_aiperf.json (no "
                                      "time_to_first_token / request_count; a streaming run writes them)")
    notes: list[str] = []
    figs = {}
    for key, tag in (("ttft", "time_to_first_token"), ("tpot", "inter_token_latency")):
        for q in (50, 95):
            v = _time(doc, tag, f"p{q}", where)
            if not math.isfinite(v):
                notes.append(f"{tag} p{q} is not in the file: unknown (never another percentile)")
            figs[f"{key}_p{q}_ms"] = v
    cfg = doc.get("input_config") or {}
    loadgen = cfg.get("loadgen") or {}
    completed = num(doc.get("request_count"), "avg")
    errors = num(doc.get("error_request_count"), "avg")
    if not math.isfinite(errors):
        errors = 0.0 if not doc.get("error_summary") else float(sum(int(e.get("count", 0))
                                                                     for e in doc["error_summary"]))
    throughput = num(doc.get("request_throughput"), "avg")
    rate = num(loadgen, "request_rate")
    littles = math.nan
    if math.isfinite(rate):
        w_ms = _time(doc, "request_latency", "avg", where)
        if not (math.isfinite(w_ms) and math.isfinite(throughput)):
            raise ValidationError(f"{where}: request_latency", "a request-rate run needs request_latency.avg and "
                                                               "request_throughput.avg for Little's law")
        littles = littles_law(throughput, w_ms / 1e3)
        c, source, label = littles, "littles-law", f"request_rate={rate:g}/s"
    elif math.isfinite(num(loadgen, "concurrency")):
        c, source, label = num(loadgen, "concurrency"), "stated", f"concurrency={int(num(loadgen, 'concurrency'))}"
    else:
        c, source, label = 1.0, "stated", "concurrency=1 (AIPerf's default)"
        notes.append("input_config gives neither concurrency nor request_rate: AIPerf's default, concurrency 1")
    dur_ms = _time(doc, "benchmark_duration", "avg", where)
    if cfg.get("cli_command"):
        notes.append(f"run: {cfg['cli_command']}")
    notes.append("AIPerf's export does not record its version")
    models = ((cfg.get("endpoint") or {}).get("model_names") or [""])
    return [BenchmarkLevel(
        label=label, concurrency=c, concurrency_source=source, **figs,
        prompt_tokens_mean=num(doc.get("input_sequence_length"), "avg"),
        output_tokens_mean=num(doc.get("output_sequence_length"), "avg"), tpot_definition=TPOT_DEFINITION,
        requests_completed=completed, requests_failed=errors, request_rate_per_s=rate,
        concurrency_littles_law=littles, duration_s=dur_ms / 1e3 if math.isfinite(dur_ms) else math.nan,
        output_tokens_total=num(doc.get("total_osl") or doc.get("total_output_tokens"), "avg"),
        output_tokens_per_s=num(doc.get("output_token_throughput"), "avg"), model=str(models[0]),
        notes=tuple(notes))]
