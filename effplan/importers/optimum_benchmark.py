"""optimum-benchmark text-generation results: ``benchmark.json`` (config + report), or
``benchmark_report.json`` with its ``benchmark_config.json`` beside it.

Read against optimum-benchmark's code (huggingface/optimum-benchmark:
``optimum_benchmark/benchmark/report.py`` ``BenchmarkReport`` / ``TargetMeasurements``,
``benchmark/base.py`` and ``benchmark/config.py`` (``benchmark.json`` = ``{"config", "report"}``),
``trackers/latency.py`` ``Latency`` / ``PerTokenLatencySessionTrackerLogitsProcessor``,
``trackers/energy.py`` ``Energy``, ``scenarios/inference/scenario.py``). What it holds:

* report targets ``prefill``, ``decode``, ``per_token``, ``generate`` (and ``load_model``,
  ``first_generate``), each with ``latency`` (``unit "s"``: ``values``, ``count``, ``mean``,
  ``p50``, ``p90``, ``p95``, ``p99``, ``stdev``; ``np.percentile``), ``throughput``, ``energy``
  (``unit "kWh"``: ``cpu``, ``ram``, ``gpu``, ``total``, PER CALL: the tracked energy / calls),
  ``efficiency``, ``memory``.
* ``prefill``: one ``generate`` with one new token of the whole static batch (``input_shapes
  .batch_size`` x ``sequence_length``): every sequence's first token -- the TTFT here.
* ``per_token`` (pytorch / onnxruntime / openvino / ipex backends): the time between consecutive
  tokens within a generate call (the logits-processor events), i.e. one decode step of the batch
  -- effplan's TPOT, the first token excluded. Without it, ``decode`` (``generate - prefill``)
  per call over ``max_new_tokens - 1`` tokens gives the same per-step figure.
* energy: ``prefill.energy`` per prefill call over ``batch_size x sequence_length`` prompt
  tokens, ``decode.energy`` per call over ``batch_size x (max_new_tokens - 1)`` output tokens
  (the scenario's own volumes). Its tracker is codecarbon: ``gpu`` is read from the NVML energy
  counter (``nvml-counter``); on a CPU run ``cpu + ram`` (RAPL when readable, else codecarbon's
  TDP estimate -- the report does not say which, so it is labelled ``estimated-tdp``).
* ``config.scenario.input_shapes``, ``config.scenario.generate_kwargs`` (``max_new_tokens``,
  else the scenario default 100), ``config.backend`` (``model``, ``device``, ``torch_dtype``),
  ``config.environment.optimum_benchmark_version``.

Concurrency = the static ``batch_size`` (stated): sequences decoded together with
``model.generate``, NOT continuous batching -- the note says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from . import BenchmarkLevel, num, read_json_records, to_ms
from ..units import J_PER_KWH

KWH_J = J_PER_KWH
DEFAULT_MAX_NEW_TOKENS = 100   # TEXT_GENERATION_DEFAULT_KWARGS of the inference scenario
PER_TOKEN = "optimum-benchmark per_token: one decode step of the static batch (between consecutive tokens)"
DECODE = "optimum-benchmark decode latency / (max_new_tokens - 1): one decode step of the static batch"


def _doc(path: Path, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    doc = read_json_records(path, text)[0]
    if not isinstance(doc, dict):
        raise ValidationError("path", f"{path} is not an optimum-benchmark result")
    if "report" in doc and "config" in doc:
        return doc["config"], doc["report"]
    if "prefill" in doc or "decode" in doc:
        cfg_path = path.with_name("benchmark_config.json")
        if not cfg_path.is_file():
            raise ValidationError("path", f"{path} is a report without its config: import benchmark.json (config "
                                          "+ report), or put benchmark_config.json beside it")
        return json.loads(cfg_path.read_text(encoding="utf-8")), doc
    raise ValidationError("path", f"{path} is not an optimum-benchmark text-generation result (no report with "
                                  "prefill / decode)")


def _lat_ms(target: dict[str, Any] | None, stat: str, where: str) -> float:
    lat = (target or {}).get("latency")
    if not isinstance(lat, dict):
        return math.nan
    return to_ms(lat.get(stat), lat.get("unit", "s"), field_name=f"{where}.latency.unit")


def parse(path: Path, text: str) -> list[BenchmarkLevel]:
    """The run of an optimum-benchmark result as one :class:`BenchmarkLevel`."""
    config, report = _doc(path, text)
    scen = config.get("scenario") or {}
    backend = config.get("backend") or {}
    shapes = scen.get("input_shapes") or {}
    batch = num(shapes, "batch_size")
    seq = num(shapes, "sequence_length")
    gen_kw = scen.get("generate_kwargs") or {}
    new = num(gen_kw, "max_new_tokens")
    notes = ["static batching (model.generate of a fixed batch), not a serving engine's continuous batching"]
    if not math.isfinite(new):
        new = float(DEFAULT_MAX_NEW_TOKENS)
        notes.append(f"generate_kwargs has no max_new_tokens: the scenario default {DEFAULT_MAX_NEW_TOKENS} is used")
    if not math.isfinite(batch):
        raise ValidationError("input_shapes.batch_size", f"{path}: missing from the config")
    pre, dec, per = report.get("prefill"), report.get("decode"), report.get("per_token")
    figs = {"ttft_p50_ms": _lat_ms(pre, "p50", "prefill"), "ttft_p95_ms": _lat_ms(pre, "p95", "prefill")}
    if isinstance(per, dict) and isinstance(per.get("latency"), dict):
        figs.update(tpot_p50_ms=_lat_ms(per, "p50", "per_token"), tpot_p95_ms=_lat_ms(per, "p95", "per_token"))
        definition = PER_TOKEN
    else:
        steps = new - 1
        figs.update(tpot_p50_ms=_lat_ms(dec, "p50", "decode") / steps, tpot_p95_ms=_lat_ms(dec, "p95", "decode") / steps)
        definition = DECODE
        notes.append("no per_token latencies in the report: TPOT = decode latency percentile / (max_new_tokens - 1)")
    device = str(backend.get("device") or "")
    energy: dict[str, Any] = {}
    e_pre, e_dec = (pre or {}).get("energy"), (dec or {}).get("energy")
    if isinstance(e_pre, dict) and isinstance(e_dec, dict) and math.isfinite(seq):
        gpu = device.startswith("cuda") and num(e_dec, "gpu") > 0
        part = (lambda e: num(e, "gpu")) if gpu else (lambda e: num(e, "cpu") + num(e, "ram"))
        unit = str(e_dec.get("unit", "kWh"))
        if unit != "kWh":
            raise ValidationError("decode.energy.unit", f"{path}: expected 'kWh', got {unit!r}")
        energy = {"energy_per_prompt_token_j": part(e_pre) * KWH_J / (batch * seq),
                  "energy_per_output_token_j": part(e_dec) * KWH_J / (batch * (new - 1)),
                  "energy_source": "nvml-counter" if gpu else "estimated-tdp",
                  "energy_note": ("codecarbon GPU energy (NVML counter) per prefill / decode call over the "
                                  "scenario's prompt / decode tokens; codecarbon's cpu and ram figures left out"
                                  if gpu else "codecarbon cpu + ram energy (RAPL when readable, else a TDP "
                                  "estimate: the report does not say which), per prefill / decode call")}
    gen = report.get("generate") or {}
    gen_count = num((gen.get("latency") or {}), "count")
    gen_mean = num((gen.get("latency") or {}), "mean")
    env = config.get("environment") or {}
    return [BenchmarkLevel(
        label=f"batch_size={int(batch)}", concurrency=batch, concurrency_source="stated", **figs,
        prompt_tokens_mean=seq, output_tokens_mean=new, tpot_definition=definition,
        requests_completed=gen_count * batch if math.isfinite(gen_count) else math.nan, requests_failed=0.0,
        output_tokens_per_s=batch * new / gen_mean if gen_mean else math.nan,
        tool_version=str(env.get("optimum_benchmark_version") or ""), model=str(backend.get("model") or ""),
        dtype=str(backend.get("torch_dtype") or "").replace("torch.", ""), device=device, batching="static",
        notes=tuple(notes),
        **energy)]
