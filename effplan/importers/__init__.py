"""Import the serving engines' own benchmarks as measured generation rows.

``effplan.import_benchmark(path, tool, candidate=..., hardware=...)`` reads a result file of
``vllm bench serve`` (``--save-result``), GuideLLM, NVIDIA AIPerf (``profile_export_aiperf.json``),
LLMPerf (``*_summary.json``) or optimum-benchmark (``benchmark.json``) and returns one row per
concurrency level (or request rate) in the file, in the tidy frame of :mod:`effplan.schema`
(``mode="generation"``, ``provenance="measured"``), ready for ``effplan.plan(rows,
generation=GenerationWorkload(...))`` and for :func:`effplan.store.append`. The CLI:
``effplan import TOOL FILE... --candidate NAME --hardware NAME [--config HF_CONFIG]``.

One row per level
-----------------
* ``batch_size`` = the run's concurrency: the fixed concurrency the tool held (vLLM
  ``max_concurrency`` with an infinite request rate, GuideLLM ``concurrent@N`` / ``synchronous``,
  AIPerf ``--concurrency``, LLMPerf ``num_concurrent_requests``, optimum-benchmark's static
  ``batch_size``), ``concurrency_source="stated"``. In request-rate mode (open loop) it is
  derived by **Little's law**, ``L = completed requests/s x mean end-to-end latency s``, rounded
  to a whole number >= 1 (``concurrency_source="littles-law"``, the exact L in
  ``concurrency_littles_law``, the configured rate in ``request_rate_per_s``).
* ``prompt_tokens`` = the mean prompt tokens of the completed requests, rounded (or
  ``prompt_tokens=`` when given; the exact mean in ``prompt_tokens_mean``); ``output_tokens`` the
  same for the output.
* ``ttft_p50_ms`` / ``ttft_p95_ms`` / ``tpot_p50_ms`` / ``tpot_p95_ms`` in milliseconds, units
  converted exactly (seconds x 1000; AIPerf's stated unit honoured).

Percentiles are never substituted
---------------------------------
A percentile is taken from the file when the file states it, or computed from the file's
per-request arrays with the tool's own definitions (``numpy.percentile``, linear, as vLLM, AIPerf
and LLMPerf compute theirs). When neither gives it, it is NaN and ``notes`` says how to get it
(vLLM: ``--metric-percentiles 50,95,99`` or ``--save-detailed``); it is NEVER the p99, the p90
or the mean. ``plan()`` then refuses the row with an error naming ``ttft_p95_ms`` / ``tpot_p95_ms``
and quoting that note. Failed, errored and incomplete requests are counted on the row
(``requests_failed``, ``requests_incomplete``) and left out of the percentiles (vLLM keeps them
in its arrays with ``ttft`` 0 and output length 0: they are removed first). ``tpot_definition``
says which TPOT the row carries.

Model facts (``config=``)
-------------------------
With ``config=`` (a ``transformers`` config, a local ``config.json`` or folder, or a dict of
explicit ``param_bytes`` / ``kv_cache_bytes_per_token`` / ``context_tokens``) the rows carry the
exact weight and KV-cache bytes (:func:`effplan.importers.model_facts.model_facts`: counted on the
``meta`` device, tied embeddings once; KV bytes per token = 2 x layers x KV heads x head dim x
dtype bytes) and FLOPs per token, so the plan checks the memory fit and projects to other catalog
GPUs. Without them the plan still works: ``memory_check`` = "not checked: no model facts ..." on
the option, under the headline (``Headline.message``) and in ``Plan.inputs["notes"]``, and the
rows are not projected (a warning says so).

Energy
------
The file's energy when it has it (vLLM's NVML counter, ``gpu_energy_per_output_token_j``;
optimum-benchmark's codecarbon prefill / decode energies), labelled with its source. Otherwise it
is **estimated** from the catalog's rated power: ``energy_per_output_token_j = rated_power_w x
benchmark duration s / output tokens`` (the whole run at rated power, prefill included, an upper
bound) and ``energy_per_prompt_token_j = 0`` (counted inside the output figure),
``energy_source="estimated-tdp"``. Idle power is never in these files: it is the catalog's
``IDLE_POWER_FRACTION x rated_power_w``, said in ``energy_note``. A hardware name the catalog does
not know (your own) keeps measured energy, but cannot get an estimate: importing a file without
energy for it is an error that says what to do.

Provenance columns: ``source_tool``, ``source_tool_version`` (empty when the file does not record
it: vLLM and AIPerf files do not), ``benchmark_file``, ``benchmark_sha256`` (of the file's bytes),
``benchmark_label``; ``hardware_id`` is ``"import:<first 16 hex of the sha256>"`` (a stand-in for
the machine: importing the same file twice keeps one copy of each point on load, two files are two
"hosts").

Which field names and definitions each tool module follows is in its docstring
(:mod:`effplan.importers.vllm`, :mod:`~effplan.importers.guidellm`, :mod:`~effplan.importers.aiperf`,
:mod:`~effplan.importers.llmperf`, :mod:`~effplan.importers.optimum_benchmark`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataWarning, ValidationError

__all__ = ["import_benchmark", "BenchmarkLevel", "TOOLS", "sample_path", "SAMPLE_FILES", "SUMMARY_COLUMNS",
           "read_json_records", "percentile", "to_ms", "littles_law"]

#: tool name -> module of effplan.importers that parses its files
TOOLS: Mapping[str, str] = {"vllm": "vllm", "guidellm": "guidellm", "aiperf": "aiperf", "llmperf": "llmperf",
                            "optimum-benchmark": "optimum_benchmark"}

#: the columns of imported rows people look at first (the CLI's table, notebook 05)
SUMMARY_COLUMNS = ["candidate", "hardware", "benchmark_label", "batch_size", "concurrency_source", "prompt_tokens",
                   "output_tokens", "ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms", "requests_failed",
                   "energy_per_output_token_j", "energy_source", "param_bytes", "kv_cache_bytes_per_token"]

#: the shipped sample result files (made by benchmarks/make_engine_samples.py), per tool
SAMPLE_FILES: Mapping[str, tuple[str, ...]] = {
    "vllm": ("vllm_bench_serve_sweep.jsonl",),
    "guidellm": ("guidellm_benchmarks.json",),
    "aiperf": ("aiperf_concurrency1_profile_export_aiperf.json",
               "aiperf_concurrency8_profile_export_aiperf.json",
               "aiperf_concurrency32_profile_export_aiperf.json"),
    "llmperf": ("llmperf_concurrency1_summary.json", "llmperf_concurrency8_summary.json",
                "llmperf_concurrency32_summary.json"),
    "optimum-benchmark": ("optimum_benchmark_benchmark.json",),
}


def sample_path(name: str) -> Path:
    """Path of a shipped sample in ``effplan/data/engine_samples/`` (a file name, or a tool name
    for its first sample file)."""
    file = SAMPLE_FILES[name][0] if name in SAMPLE_FILES else name
    path = Path(str(resources.files("effplan") / "data" / "engine_samples" / file))
    if not path.exists():
        raise ValidationError("name", f"no shipped engine sample {name!r}; tools: {sorted(SAMPLE_FILES)}")
    return path


# ----------------------------------------------------------------------------------- one level
@dataclass(frozen=True)
class BenchmarkLevel:
    """The figures of one concurrency level (or request rate) of a benchmark file, as the tool
    module read them, in effplan's units (ms, s, J, tokens). NaN = not in the file."""

    label: str
    concurrency: float
    concurrency_source: str            # "stated" | "littles-law"
    ttft_p50_ms: float
    ttft_p95_ms: float
    tpot_p50_ms: float
    tpot_p95_ms: float
    prompt_tokens_mean: float
    output_tokens_mean: float
    tpot_definition: str
    requests_completed: float = math.nan
    requests_failed: float = math.nan
    requests_incomplete: float = math.nan
    request_rate_per_s: float = math.nan
    concurrency_littles_law: float = math.nan
    duration_s: float = math.nan
    output_tokens_total: float = math.nan
    output_tokens_per_s: float = math.nan
    energy_per_prompt_token_j: float = math.nan
    energy_per_output_token_j: float = math.nan
    avg_power_w: float = math.nan
    energy_source: str = ""
    energy_note: str = ""
    tool_version: str = ""
    model: str = ""
    dtype: str = ""
    device: str = ""
    batching: str = "continuous"       # "continuous" (a serving engine) | "static" (model.generate)
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not (isinstance(self.concurrency, (int, float)) and math.isfinite(self.concurrency)
                and self.concurrency > 0):
            raise ValidationError("concurrency", f"{self.label}: no concurrency could be read or derived "
                                                 f"(got {self.concurrency!r})")


# --------------------------------------------------------------------------------- shared helpers
_TIME_UNITS_TO_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "sec": 1e3, "seconds": 1e3}


def to_ms(value: Any, unit: str, *, field_name: str = "value") -> float:
    """``value`` in ``unit`` (ns, us, ms, s / sec) as milliseconds; NaN for None. An unknown unit
    is an error naming the field (a unit is never guessed)."""
    if value is None:
        return math.nan
    factor = _TIME_UNITS_TO_MS.get(str(unit).strip().lower())
    if factor is None:
        raise ValidationError(field_name, f"unknown time unit {unit!r} (known: {sorted(_TIME_UNITS_TO_MS)})")
    return float(value) * factor


def percentile(values: Any, q: float) -> float:
    """``numpy.percentile(values, q)`` (linear interpolation: vLLM's, AIPerf's and pandas'
    definition), NaN for no values."""
    arr = np.asarray(values, dtype=float)
    return float(np.percentile(arr, q)) if arr.size else math.nan


def littles_law(requests_per_s: float, mean_latency_s: float) -> float:
    """Requests in flight ``L = lambda x W`` (completed requests/s x mean end-to-end latency s)."""
    return float(requests_per_s) * float(mean_latency_s)


def num(d: Mapping[str, Any] | None, key: str) -> float:
    """``d[key]`` as a float, NaN when absent, None or not a number."""
    if not isinstance(d, Mapping):
        return math.nan
    v = d.get(key)
    if isinstance(v, bool) or v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def read_json_records(path: Path, text: str) -> list[Any]:
    """Every JSON value in ``text``: one document, a JSON list (serve_sla's ``summary.json``),
    or several documents one after another (``vllm bench serve --append-result`` writes each run
    as a JSON object after a newline). A file that is not JSON is an error naming it."""
    text = text.lstrip("\ufeff")
    dec = json.JSONDecoder()
    out: list[Any] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            break
        try:
            value, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ValidationError("path", f"{path} is not a JSON result file ({exc.msg} at line {exc.lineno}, "
                                          f"column {exc.colno})") from None
        out.append(value)
    if not out:
        raise ValidationError("path", f"{path} is empty")
    return out


# ------------------------------------------------------------------------------------ the rows
def _catalog_row(hardware: str, catalog: Any) -> pd.Series | None:
    from ..refdata import catalog as _cat

    return _cat.find_hardware(hardware, _cat.load_catalog(catalog))


def _energy(level: BenchmarkLevel, hardware: str, hw_row: pd.Series | None) -> dict[str, Any]:
    """Energy columns of a row: the file's when it has them, else estimated from rated power."""
    from ..refdata.catalog import IDLE_POWER_FRACTION

    rated = float(hw_row["rated_power_w"]) if hw_row is not None and pd.notna(hw_row["rated_power_w"]) else math.nan
    kind = str(hw_row["kind"]) if hw_row is not None else ""
    if math.isfinite(rated):
        idle = IDLE_POWER_FRACTION.get(kind, 0.0) * rated
        idle_note = (f"idle power estimated: {IDLE_POWER_FRACTION.get(kind, 0.0):.0%} of the catalog's rated "
                     f"{rated:g} W for {hw_row['name']} (benchmark files do not measure idle power)")
    else:
        idle = math.nan
        idle_note = (f"idle power unknown: {hardware!r} is not in the catalog (pass a catalog name, or "
                     "catalog= with a row for it, or type idle_power_w in)")
    if math.isfinite(level.energy_per_output_token_j):
        return {"energy_per_prompt_token_j": level.energy_per_prompt_token_j,
                "energy_per_output_token_j": level.energy_per_output_token_j,
                "energy_source": level.energy_source, "avg_power_w": level.avg_power_w,
                "idle_power_w": idle, "energy_note": "; ".join(x for x in (level.energy_note, idle_note) if x)}
    if not math.isfinite(rated):
        raise ValidationError("hardware", f"{hardware!r} is not in the catalog and {level.label} holds no "
                                          "energy figure: energy cannot be estimated without a rated power. "
                                          "Use the catalog's name for the GPU (`effplan catalog` lists them), "
                                          "or pass catalog= / --catalog with a row for your hardware")
    if math.isfinite(level.duration_s) and math.isfinite(level.output_tokens_total) and level.output_tokens_total > 0:
        e_out = rated * level.duration_s / level.output_tokens_total
        how = (f"rated {rated:g} W x benchmark duration {level.duration_s:.6g} s / "
               f"{level.output_tokens_total:.0f} output tokens")
    elif math.isfinite(level.output_tokens_per_s) and level.output_tokens_per_s > 0:
        e_out = rated / level.output_tokens_per_s
        how = f"rated {rated:g} W / {level.output_tokens_per_s:.6g} output tokens/s"
    else:
        raise ValidationError("energy_per_output_token_j", f"{level.label}: no energy in the file and no "
                                                           "duration or output throughput to estimate it from")
    return {"energy_per_prompt_token_j": 0.0, "energy_per_output_token_j": e_out,
            "energy_source": "estimated-tdp", "avg_power_w": rated, "idle_power_w": idle,
            "energy_note": (f"ESTIMATED, not measured: the file has no energy; {how} (the whole run at rated "
                            "power, an upper bound; prefill is inside the output-token figure, so "
                            "energy_per_prompt_token_j = 0); " + idle_note)}


def _row(level: BenchmarkLevel, *, tool: str, candidate: str, hardware: str, source: Path, sha: str,
         prompt_tokens: int | None, facts: Any, hw_row: pd.Series | None, stamp: str) -> dict[str, Any]:
    from .. import __version__
    from ..records.schema import SCHEMA_VERSION

    c = max(1, int(round(level.concurrency)))
    p_tok = int(prompt_tokens) if prompt_tokens is not None else (
        int(round(level.prompt_tokens_mean)) if math.isfinite(level.prompt_tokens_mean) else None)
    if p_tok is None or p_tok < 1:
        raise ValidationError("prompt_tokens", f"{source.name} ({level.label}) holds no prompt token counts: "
                                               "pass prompt_tokens= (--prompt-tokens) with the prompt length "
                                               "the benchmark used")
    n_out = int(round(level.output_tokens_mean)) if math.isfinite(level.output_tokens_mean) else None
    notes = list(level.notes)
    if prompt_tokens is not None and math.isfinite(level.prompt_tokens_mean) \
            and abs(level.prompt_tokens_mean - prompt_tokens) > 0.5:
        notes.append(f"prompt_tokens={prompt_tokens} given; the file's mean is {level.prompt_tokens_mean:.6g}")
    if level.concurrency_source == "littles-law":
        notes.append(f"concurrency {c} derived by Little's law from an open-loop run "
                     f"(L = {level.concurrency_littles_law:.4g} requests in flight), not a fixed concurrency")
    row: dict[str, Any] = {
        "candidate": candidate, "hardware": hardware, "hardware_id": f"import:{sha[:16]}",
        "mode": "generation", "batch_size": c, "device": level.device, "dtype": level.dtype,
        "prompt_tokens": p_tok, "output_tokens": n_out,
        "ttft_p50_ms": level.ttft_p50_ms, "ttft_p95_ms": level.ttft_p95_ms,
        "tpot_p50_ms": level.tpot_p50_ms, "tpot_p95_ms": level.tpot_p95_ms,
        "provenance": "measured", "status": "ok", "error": "", "timestamp": stamp,
        "source_tool": tool, "source_tool_version": level.tool_version, "benchmark_file": source.name,
        "benchmark_sha256": sha, "benchmark_label": level.label,
        "requests_completed": level.requests_completed, "requests_failed": level.requests_failed,
        "requests_incomplete": level.requests_incomplete, "request_rate_per_s": level.request_rate_per_s,
        "concurrency_source": level.concurrency_source,
        "concurrency_littles_law": level.concurrency_littles_law,
        "prompt_tokens_mean": level.prompt_tokens_mean, "output_tokens_mean": level.output_tokens_mean,
        "tpot_definition": level.tpot_definition, "batching": level.batching, "effplan_version": __version__,
        "schema_version": SCHEMA_VERSION,
    }
    with np.errstate(divide="ignore", invalid="ignore"):   # the schema's definitions, per sequence batch
        row["prefill_tokens_per_s"] = c * p_tok / (level.ttft_p50_ms / 1e3) if level.ttft_p50_ms > 0 else math.nan
        row["decode_tokens_per_s"] = c / (level.tpot_p50_ms / 1e3) if level.tpot_p50_ms > 0 else math.nan
    row.update(_energy(level, hardware, hw_row))
    if not math.isfinite(row["idle_power_w"]):   # a figure plan() needs: say why it is missing
        notes.append(row["energy_note"].rsplit("; ", 1)[-1])
    if facts is not None:
        row.update(facts.columns(prompt_tokens=p_tok, output_tokens=n_out))
        if not row.get("dtype"):
            row["dtype"] = facts.dtype
        if facts.context_tokens and n_out is not None and p_tok + n_out > facts.context_tokens:
            notes.append(f"prompt + output ({p_tok + n_out}) exceeds the model's context ({facts.context_tokens})")
        notes.extend(facts.notes)
    else:
        row["model_facts_source"] = ""
    if level.model:
        notes.append(f"model in the file: {level.model}")
    row["notes"] = "; ".join(dict.fromkeys(n for n in notes if n))
    return row


def _typed(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a frame with every schema column, typed as :meth:`effplan.Measurements.to_frame`."""
    from ..records.schema import MEASUREMENT_COLUMNS

    df = pd.DataFrame(rows, columns=list(MEASUREMENT_COLUMNS))
    for col, (kind, _) in MEASUREMENT_COLUMNS.items():
        if kind == "str":
            df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
        elif kind == "bool":
            df[col] = pd.array([v if isinstance(v, (bool, np.bool_)) else pd.NA for v in df[col]], dtype="boolean")
        else:
            vals = pd.to_numeric(df[col], errors="coerce").astype(float)
            df[col] = vals.astype(np.int64) if kind == "int" and vals.notna().all() else vals
    return df


def import_benchmark(path: str | Path | Sequence[str | Path], tool: str, *, candidate: str, hardware: str,
                     prompt_tokens: int | None = None, config: Any = None,
                     catalog: Any = None) -> pd.DataFrame:
    """Rows of effplan's measurement table from a serving engine's own benchmark file(s).

    ``tool``: ``"vllm"``, ``"guidellm"``, ``"aiperf"``, ``"llmperf"`` or ``"optimum-benchmark"``.
    ``path``: one result file or several (a sweep saved one file per level). ``candidate`` names
    the model in the plan, ``hardware`` the GPU it ran on (a catalog name, or your own).
    ``prompt_tokens`` overrides the file's mean prompt length. ``config``: the model's facts (see
    the module docstring); ``catalog``: a catalog for rated power and memory (default: the
    shipped one). Returns a DataFrame with the columns of
    :data:`effplan.schema.MEASUREMENT_COLUMNS`, validated by the one validator (the rules
    :func:`effplan.store.append` applies); a bad file or field raises
    :class:`~effplan.errors.ValidationError` naming it. One :class:`~effplan.errors.DataWarning`
    names rows whose p50/p95 could not be read (NaN, with a note saying how to get them).
    """
    from ..records import store
    from ..records.schema import number

    if tool not in TOOLS:
        raise ValidationError("tool", f"unknown tool {tool!r}; one of {list(TOOLS)}")
    for name, val in (("candidate", candidate), ("hardware", hardware)):
        if not isinstance(val, str) or not val.strip():
            raise ValidationError(name, f"must be a non-empty name, got {val!r}")
    if prompt_tokens is not None:
        prompt_tokens = int(number("prompt_tokens", prompt_tokens, lo=1, integer=True))
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    if not paths:
        raise ValidationError("path", "no result file given")
    facts = None
    if config is not None:
        from .model_facts import model_facts

        facts = model_facts(config)
    module = importlib.import_module(f".{TOOLS[tool]}", __name__)
    hw_row = _catalog_row(hardware, catalog)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows: list[dict[str, Any]] = []
    for p in paths:
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise ValidationError("path", f"{p} cannot be read ({exc.strerror or exc})") from None
        sha = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("path", f"{p} is not UTF-8 text (a JSON result file is)") from None
        levels = module.parse(p, text)
        if not levels:
            raise ValidationError("path", f"{p} holds no benchmark runs that {tool} writes")
        rows += [_row(lv, tool=tool, candidate=candidate.strip(), hardware=hardware.strip(), source=p, sha=sha,
                      prompt_tokens=prompt_tokens, facts=facts, hw_row=hw_row, stamp=stamp) for lv in levels]
    _note_duplicates(rows)
    store.validate_rows(rows, where=f"{tool} import")
    missing = [f"{r['benchmark_label']} ({r['benchmark_file']})" for r in rows
               if any(not math.isfinite(float(r[k])) for k in ("ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms",
                                                               "tpot_p95_ms"))]
    if missing:
        warnings.warn(f"import_benchmark: {len(missing)} row(s) lack a TTFT/TPOT p50 or p95 that the file "
                      f"neither states nor lets effplan compute: {', '.join(missing[:6])}"
                      f"{' ...' if len(missing) > 6 else ''}. They are NaN (never another percentile); "
                      "each row's notes say how to get them. plan() refuses such rows", DataWarning,
                      stacklevel=2)
    return _typed(rows)


def _note_duplicates(rows: list[dict[str, Any]]) -> None:
    """Two levels landing on the same (concurrency, prompt length): the planner keeps the last;
    say so on both rows."""
    seen: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        seen.setdefault((r["batch_size"], r["prompt_tokens"]), []).append(i)
    for (c, p), idx in seen.items():
        if len(idx) > 1:
            labels = ", ".join(str(rows[i]["benchmark_label"]) for i in idx)
            for i in idx:
                extra = f"{len(idx)} runs at concurrency {c}, prompt {p} ({labels}): the planner uses the last"
                rows[i]["notes"] = "; ".join(x for x in (rows[i]["notes"], extra) if x)

