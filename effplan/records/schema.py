"""The tidy measurements table: the one contract between measuring and planning.

One row per candidate x hardware x mode x batch size (x prompt length for ``mode="generation"``,
whose ``batch_size`` is the number of concurrent sequences and whose figures are the
``ttft_*``/``tpot_*``/per-token columns, see :mod:`effplan.generation`). Every column's unit is
in its name.
``effplan.measure`` produces it, ``effplan.store`` writes/reads it, ``effplan.plan`` consumes it,
and a user may type rows in by hand (``provenance="entered"``).

Conventions
-----------
* FLOPs = 2 x multiply-accumulates (see :mod:`effplan.flops`).
* Latency columns are the wall time of ONE batch: a forward pass for ``mode="inference"``, a
  forward + backward + optimizer step for ``mode="training"``.
* ``throughput_items_per_s = batch_size / (latency_p50_ms / 1000)``.
* ``energy_per_item_j`` is TOTAL energy (idle included) divided by the items actually run;
  ``idle_power_w`` is measured (or estimated) before the run and reported apart.
* ``provenance`` is ``measured`` | ``estimated`` | ``projected`` | ``entered`` for the row's
  timing figures; ``energy_source`` says how energy was got (``nvml-counter``, ``nvml-power``,
  ``rapl``, ``estimated-tdp``, ``entered``, ``projected``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import ValidationError
from .reproducibility import REPRODUCIBILITY_COLUMNS

SCHEMA_VERSION = 1

#: column -> (dtype kind, description). Order is the column order of ``Measurements.to_frame()``.
MEASUREMENT_COLUMNS: dict[str, tuple[str, str]] = {
    "candidate": ("str", "candidate name"),
    "hardware": ("str", "hardware name (catalog name where known, else the detected model)"),
    "hardware_id": ("str", "stable id of the machine measured on (hash of host + devices)"),
    "mode": ("str", "'inference', 'training' or 'generation'"),
    "batch_size": ("int", "items per batch"),
    "device": ("str", "torch device measured on, e.g. 'cpu', 'cuda:0'"),
    "dtype": ("str", "parameter dtype, e.g. 'float32', 'qint8'"),
    "threads": ("int", "torch CPU threads used during the measurement"),
    "latency_mean_ms": ("float", "mean batch latency, ms"),
    "latency_p50_ms": ("float", "median batch latency, ms"),
    "latency_p90_ms": ("float", "90th percentile batch latency, ms"),
    "latency_p95_ms": ("float", "95th percentile batch latency, ms"),
    "latency_p99_ms": ("float", "99th percentile batch latency, ms"),
    "latency_ci_rel": ("float", "relative half-width of the ~95% CI of the median"),
    "latency_round_spread_rel": ("float", "spread of the timing rounds' medians: their 10th-90th "
                                          "percentile range over the median of all samples "
                                          "(effplan.timing.round_spread_rel; NaN with one round)"),
    "repeats": ("int", "number of timed batches"),
    "rounds": ("int", "separate timing rounds the samples came from"),
    "stable": ("bool", "True only when the rounds agree, no stalls were seen and the CI target was "
                       "met; False = timed on a busy machine: plan() uses the row and flags every "
                       "figure planned from it (allow_unstable=False refuses it); empty = unknown "
                       "(typed in, or stored by an older effplan)"),
    "stop_reason": ("str", "why timing stopped: ci-met | time-budget | unstable (empty if unknown)"),
    "timing_note": ("str", "what made the point not stable (stalls, two modes, rounds disagree...)"),
    "background_load": ("float", "CPU cores' worth of work by OTHER processes while timing (0 = quiet)"),
    "background_load_before": ("float", "the same, measured before timing (over the warm-up)"),
    "throughput_items_per_s": ("float", "items per second at this batch size"),
    "peak_memory_mib": ("float", "peak memory of the point, MiB (2**20 bytes); what it covers: "
                                 "peak_memory_source"),
    "peak_memory_source": ("str", "what the peak memory is: 'cuda-max-allocated' (torch.cuda.max_memory_"
                                  "allocated, reset per point, minus what was allocated at its "
                                  "start), 'worker-peak-rss-minus-baseline' (peak resident set of the "
                                  "point's worker process, reset per point, minus its resident set at "
                                  "the point's start, after imports and the earlier points' memory "
                                  "was released), 'process-peak-rss-minus-baseline' (the same, measured "
                                  "in this process), 'process-peak-rss' (the whole process's peak, "
                                  "reset per point: generation points) or 'process-peak-rss-lifetime' "
                                  "(whole-process high-water mark: no per-point reset possible)"),
    "params": ("int", "number of parameters"),
    "param_bytes": ("float", "bytes of parameters and buffers"),
    "bytes_per_item": ("float", "bytes moved per item: param_bytes / batch_size + input/output bytes"),
    "flops_per_item": ("float", "forward FLOPs per item (2 x MACs)"),
    "flops_engine": ("str", "'fvcore' or 'dispatch'"),
    "flops_coverage": ("float", "share of the FLOPs counted (FLOP-weighted: uncounted operators weighed by their shapes; 1.0 = all)"),
    "operator_calls": ("int", "operator calls that launch work in one forward pass of the batch "
                              "(FlopCount.operator_calls); the launch floor of projections"),
    "achieved_flops_per_s": ("float", "FLOPs per second achieved (training: 3 x forward)"),
    "peak_flops_per_s": ("float", "catalog peak FLOP/s for this hardware and dtype, NaN if unknown"),
    "utilization": ("float", "achieved / peak FLOP/s, NaN if peak unknown"),
    "energy_j": ("float", "total energy over the measured energy window, J"),
    "energy_window_s": ("float", "length of the energy window, s"),
    "energy_per_item_j": ("float", "total energy per item, J (idle included)"),
    "energy_per_batch_j": ("float", "total energy per batch (training: per step), J"),
    "energy_above_idle_per_item_j": ("float", "energy per item above idle power, J"),
    "avg_power_w": ("float", "average power over the energy window, W"),
    "idle_power_w": ("float", "idle power measured (or estimated) before the run, W"),
    "energy_source": ("str", "nvml-counter | nvml-power | rapl | estimated-tdp | entered | projected "
                             "| none (energy not measured)"),
    "energy_note": ("str", "why energy fell back to a lower-fidelity source, if it did"),
    "provenance": ("str", "measured | estimated | projected | entered"),
    "quality": ("float", "candidate quality score (e.g. held-out accuracy), NaN if none"),
    # ---- mode="generation" only (see effplan.generation); batch_size = concurrent sequences
    "prompt_tokens": ("int", "generation: prompt length, tokens"),
    "output_tokens": ("int", "generation: output tokens per response measured"),
    "ttft_p50_ms": ("float", "generation: median time to first token (prefill of the batch), ms"),
    "ttft_p95_ms": ("float", "generation: 95th percentile time to first token, ms"),
    "tpot_p50_ms": ("float", "generation: median time per output token per sequence (decode step), ms"),
    "tpot_p95_ms": ("float", "generation: 95th percentile time per output token, ms"),
    "prefill_tokens_per_s": ("float", "generation: prompt tokens per second in prefill"),
    "decode_tokens_per_s": ("float", "generation: output tokens per second in decode (all sequences)"),
    "kv_cache_bytes_per_token": ("float", "generation: KV-cache bytes per token of context per sequence"),
    "flops_per_prompt_token": ("float", "generation: prefill FLOPs per prompt token (2 x MACs)"),
    "flops_per_output_token": ("float", "generation: decode-step FLOPs per output token (2 x MACs)"),
    "operator_calls_prefill": ("int", "generation: operator calls that launch work in one prefill of the "
                                      "batch (FlopCount.operator_calls); the TTFT launch floor of projections"),
    "operator_calls_decode": ("int", "generation: operator calls that launch work in one decode step of the "
                                     "batch; the TPOT launch floor of projections"),
    "energy_per_prompt_token_j": ("float", "generation: total energy per prompt token, J"),
    "energy_per_output_token_j": ("float", "generation: total energy per output token, J"),
    "perplexity": ("float", "generation: held-out perplexity (lower is better), NaN if none"),
    "tags": ("str", "comma-separated candidate tags"),
    "isolation": ("str", "'worker' (the candidate's worker process) or 'in-process: <why>'"),
    "worker_pid": ("int", "process id of the worker that measured the row (the points of one "
                          "candidate share one worker unless a crash or time-out replaced it); "
                          "empty in-process"),
    "timing_pass": ("int", "the timing pass of the point this record ends with: 1..passes, then "
                           "passes + n for its n-th retry"),
    "provisional": ("bool", "True: written after an earlier pass, superseded by a later record of "
                            "the same point (store.load drops it silently then); the newest record "
                            "of a point being provisional means its sweep stopped before the end: "
                            "stable=False, and resume measures it again"),
    "status": ("str", "'ok' or 'error'"),
    "error": ("str", "error message when status == 'error'"),
    "timestamp": ("str", "ISO-8601 UTC time the point finished"),
    "torch_version": ("str", "torch version"),
    # optional: seed, Python/numpy/effplan versions, weights/config hashes, timing policy
    # (effplan.reproducibility.reproducibility_fields returns them as one flat dict)
    **REPRODUCIBILITY_COLUMNS,
    # optional: rows imported from a serving engine's own benchmark (effplan.importers)
    **{
        "source_tool": ("str", "imported rows: the benchmark tool that measured the row (vllm, guidellm, "
                               "aiperf, llmperf, optimum-benchmark); empty for rows effplan measured"),
        "source_tool_version": ("str", "imported rows: the tool's version as its file records it (empty "
                                       "when the file does not say)"),
        "benchmark_file": ("str", "imported rows: name of the result file the row came from"),
        "benchmark_sha256": ("str", "imported rows: sha256 of the result file's bytes"),
        "benchmark_label": ("str", "imported rows: which run of the file (e.g. 'max_concurrency=16', "
                                   "'rate=4/s')"),
        "requests_completed": ("int", "imported rows: requests that completed (the percentiles are theirs)"),
        "requests_failed": ("int", "imported rows: failed / errored requests, left out of the percentiles"),
        "requests_incomplete": ("int", "imported rows: requests cut off unfinished (GuideLLM), left out of "
                                       "the percentiles"),
        "request_rate_per_s": ("float", "imported rows: the configured request rate of an open-loop run, "
                                        "requests/s (empty: closed loop at a fixed concurrency)"),
        "concurrency_source": ("str", "imported rows: 'stated' (batch_size is the run's fixed concurrency) "
                                      "or 'littles-law' (a request-rate run: batch_size = round(request "
                                      "throughput x mean end-to-end latency), exact value in "
                                      "concurrency_littles_law)"),
        "concurrency_littles_law": ("float", "imported request-rate rows: requests in flight by Little's "
                                             "law, L = completed requests/s x mean end-to-end latency s"),
        "prompt_tokens_mean": ("float", "imported rows: mean prompt tokens per completed request "
                                        "(prompt_tokens is it rounded, or the value given)"),
        "output_tokens_mean": ("float", "imported rows: mean output tokens per completed request"),
        "tpot_definition": ("str", "imported rows: how the tool defines the TPOT percentiles used"),
        "batching": ("str", "generation: 'continuous' (a serving engine: TTFT is one request's prefill "
                            "and wait) or 'static' (the batch prefills together, as effplan measures; "
                            "empty = static)"),
        "context_tokens": ("int", "generation: the model's context length (max positions), when known"),
        "active_params": ("int", "parameters used per token: params less the routed experts a token "
                                 "does not visit (mixture of experts: top-k of the experts); = params "
                                 "for a dense model"),
        "kv_window_tokens": ("int", "generation: sliding attention window, tokens (the KV cache of the "
                                    "windowed layers holds at most this many); empty: no window"),
        "kv_window_layer_share": ("float", "generation: share of layers that use the window (1.0 = all)"),
        "hidden_size": ("int", "generation: the model's hidden size (the all-reduce message of tensor "
                               "parallelism is tokens x hidden_size)"),
        "num_layers": ("int", "generation: the model's decoder layers (2 tensor-parallel all-reduces each)"),
        "tpot_mean_ms": ("float", "generation: mean time per output token (the mean of the timed decode "
                                  "steps); the capacity of a plan uses it, as serving engines report "
                                  "throughput"),
        "model_facts_source": ("str", "where param_bytes / kv_cache_bytes_per_token came from (a config, "
                                      "entered, or empty: unknown -> memory not checked)"),
        "notes": ("str", "what a reader must know about the row's figures (how a percentile was got, "
                         "what is missing and how to get it), '; '-separated"),
    },
    "schema_version": ("int", "version of this schema"),
}

#: What the planner needs at minimum (a hand-typed table may hold only these).
PLAN_REQUIRED_COLUMNS: tuple[str, ...] = (
    "candidate",
    "hardware",
    "mode",
    "batch_size",
    "latency_p95_ms",
    "throughput_items_per_s",
    "energy_per_item_j",
    "idle_power_w",
)

PROVENANCES = ("measured", "estimated", "projected", "entered")
ENERGY_SOURCES = ("nvml-counter", "nvml-power", "rapl", "estimated-tdp", "entered", "projected", "none")
#: ``energy_source`` of a row whose energy was not measured (``energy=False`` or an error row)
NO_ENERGY_SOURCE = "none"
MEASURED_ENERGY_SOURCES = ("nvml-counter", "nvml-power", "rapl")
MODES = ("inference", "training", "generation")
#: ``stop_reason`` values (see :mod:`effplan.timing`); only ``ci-met`` is stable.
STOP_REASONS = ("ci-met", "time-budget", "unstable")

#: What the generation planner needs from a ``mode="generation"`` row (these replace
#: :data:`PLAN_REQUIRED_COLUMNS` for such rows: a generation row has no fixed-shape latency).
#: ``param_bytes`` and ``kv_cache_bytes_per_token`` (the model facts) are optional: without them
#: the KV-cache memory fit is not checked, and the plan says so (``memory_check``).
GENERATION_REQUIRED_COLUMNS: tuple[str, ...] = (
    "candidate", "hardware", "mode", "batch_size", "prompt_tokens", "ttft_p50_ms", "ttft_p95_ms",
    "tpot_p50_ms", "tpot_p95_ms", "energy_per_prompt_token_j", "energy_per_output_token_j",
    "idle_power_w",
)

_DEFAULTS: Mapping[str, object] = {
    "hardware_id": "",
    "device": "",
    "dtype": "",
    "peak_memory_source": "",
    "flops_engine": "",
    "tags": "",
    "status": "ok",
    "error": "",
    "timestamp": "",
    "torch_version": "",
    "schema_version": SCHEMA_VERSION,
}


#: Columns renamed since they were first written: old name -> current name (read on load).
LEGACY_COLUMN_NAMES: Mapping[str, str] = {"memory_source": "peak_memory_source",
                                          "peak_memory_mb": "peak_memory_mib"}


def rename_legacy_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with columns of :data:`LEGACY_COLUMN_NAMES` under their current names (a current
    column, when both are present, wins)."""
    old = {o: n for o, n in LEGACY_COLUMN_NAMES.items() if o in df.columns and n not in df.columns}
    drop = [o for o, n in LEGACY_COLUMN_NAMES.items() if o in df.columns and n in df.columns]
    return df.rename(columns=old).drop(columns=drop) if (old or drop) else df


#: Largest integer a float64 (and so a JSON reader that goes through float) keeps exact. Integer
#: columns refuse larger values rather than round them silently.
MAX_EXACT_INT = 2 ** 53

#: Columns naming what a row is about: never blank, in any row (error rows included).
IDENTITY_COLUMNS: tuple[str, ...] = ("candidate", "hardware", "mode", "batch_size")

#: Energy figures the planner needs; missing because energy was not measured gets its own message.
ENERGY_COLUMNS: tuple[str, ...] = ("energy_per_item_j", "idle_power_w")

#: Columns whose value must be > 0 (a batch of 0 items has no latency or throughput).
POSITIVE_COLUMNS: tuple[str, ...] = ("batch_size",)

#: Allowed values of the enumerated text columns (an empty cell is allowed where optional).
ENUM_COLUMNS: dict[str, tuple[tuple[str, ...], bool]] = {
    "mode": (MODES, False),
    "provenance": (PROVENANCES, True),
    "energy_source": (ENERGY_SOURCES, True),
    "status": (("ok", "error"), True),
}


def _show(value: object) -> str:
    """repr of a value as the user wrote it (numpy scalars shown as Python ones; long ones cut)."""
    v = value.item() if isinstance(value, np.generic) else value
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 10 ** 30:
        return f"an integer of {len(str(abs(v)))} digits"
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _numbers(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, not_a_number, too_big_for_exact_int)`` of a column, never raising.

    ``values`` is float64 (NaN where empty or not a number). Booleans are not numbers (``True``
    is not a batch size of 1). A Python integer too large for a float is reported in
    ``not_a_number`` with value NaN; ``too_big_for_exact_int`` marks integers above
    :data:`MAX_EXACT_INT` that a float would round.
    """
    if raw.dtype.kind in "fiu":
        arr = raw.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            big = np.abs(arr) > MAX_EXACT_INT
        if raw.dtype.kind in "iu":  # int64 values above 2**53 are exact here but not as float
            ints = raw.to_numpy()
            big = (ints > MAX_EXACT_INT) | (ints < -MAX_EXACT_INT)
        return arr, np.zeros(len(raw), dtype=bool), big
    if raw.dtype.kind == "b":
        n = len(raw)
        return np.full(n, np.nan), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    n = len(raw)
    arr = np.full(n, np.nan)
    nonnum = np.zeros(n, dtype=bool)
    big = np.zeros(n, dtype=bool)
    for i, v in enumerate(raw.tolist()):
        if v is None or v is pd.NA or v is pd.NaT:
            continue
        if isinstance(v, (bool, np.bool_)):
            nonnum[i] = True
            continue
        if isinstance(v, (int, np.integer)):
            iv = int(v)
            if abs(iv) > MAX_EXACT_INT:
                big[i] = True
            try:
                arr[i] = float(iv)
            except OverflowError:
                nonnum[i] = True
            continue
        if isinstance(v, (float, np.floating)):
            arr[i] = float(v)
            continue
        if isinstance(v, str):
            t = v.strip()
            if t == "":
                continue
            try:
                f = float(t)
            except ValueError:
                nonnum[i] = True
                continue
            arr[i] = f
            continue
        nonnum[i] = True
    with np.errstate(invalid="ignore"):
        big |= np.abs(arr) > MAX_EXACT_INT
    return arr, nonnum, big


def number(field: str, value: object, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, integer: bool = False, where: str | None = None) -> float:
    """Validate ONE number with the rules of :func:`check_numbers` (the same everywhere: the
    planner's workloads and prices, ``measure()``'s arguments, the CLI and the dashboard).

    Not a bool, not text that is not a number, finite, within ``[lo, hi]`` (``lo_open``: ``> lo``),
    and with ``integer=True`` a whole number no larger than :data:`MAX_EXACT_INT` (returned as
    int). Returns the float (or int); raises :class:`ValidationError` naming ``field``.
    """
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise ValidationError(field, f"expected a number, got {_show(value)}", where=where)
    if isinstance(value, (int, np.integer)) and abs(int(value)) > MAX_EXACT_INT and \
            (integer or abs(int(value)) > 10 ** 308):
        raise ValidationError(field, f"{_show(value)} is too large (at most 2**53 for a whole "
                                     "number)", where=where)
    try:
        v = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(field, f"expected a number, got {_show(value)}", where=where) from None
    if math.isnan(v) or math.isinf(v):
        raise ValidationError(field, f"must be a finite number, got {_show(value)}", where=where)
    low = lo is not None and (v <= lo if lo_open else v < lo)
    if low or (hi is not None and v > hi):
        # the whole allowed range, not only the bound crossed ("must be >= 1 and <= 600")
        rng = " and ".join(([f"{'>' if lo_open else '>='} {lo:g}"] if lo is not None else [])
                           + ([f"<= {hi:g}"] if hi is not None else []))
        raise ValidationError(field, f"must be {rng}, got {v:g}", where=where)
    if integer:
        if v != math.floor(v):
            raise ValidationError(field, f"must be a whole number, got {v:g}", where=where)
        if abs(v) > MAX_EXACT_INT:
            raise ValidationError(field, f"{v:g} is above 2**53 and cannot be kept exact", where=where)
        return int(v)
    return v


def check_numbers(raw: pd.Series, field: str, *, kind: str = "float", positive: bool = False,
                  check: np.ndarray | None = None) -> list[tuple[int, str]]:
    """Problems of one numeric column as ``[(row position, message)]``, first problem per row.

    The rules every effplan boundary shares: a number (not text, not a bool), finite, >= 0
    (``positive=True``: > 0), and for ``kind="int"`` a whole number no larger than
    :data:`MAX_EXACT_INT`. An empty cell is no problem here (required columns are checked by
    the caller). ``check`` (bool mask) limits the sign check to some rows (e.g. rows that are
    not ``status="error"``); every other rule applies to every row.
    """
    arr, nonnum, big = _numbers(raw)
    found: dict[int, str] = {}

    def flag(mask: np.ndarray, message_for) -> None:
        for i in np.flatnonzero(mask):
            found.setdefault(int(i), message_for(int(i)))

    values = raw.to_numpy(dtype=object)  # for messages only
    flag(nonnum, lambda i: (f"too large to be a number: {_show(values[i])}"
                            if isinstance(values[i], (int, np.integer)) and not isinstance(values[i], bool)
                            else f"non-numeric value {_show(values[i])}"))
    flag(np.isinf(arr), lambda i: f"not a finite number: {_show(values[i])}")
    sign_rows = np.ones(len(arr), dtype=bool) if check is None else np.asarray(check, dtype=bool)
    with np.errstate(invalid="ignore"):
        if positive:
            flag((arr <= 0) & sign_rows, lambda i: f"must be > 0, got {_show(values[i])}")
        else:
            flag((arr < 0) & sign_rows, lambda i: f"negative value {_show(values[i])}")
    if kind == "int":
        flag(big, lambda i: f"integer {_show(values[i])} is above 2**53 and cannot be kept exact")
        with np.errstate(invalid="ignore"):
            frac = np.isfinite(arr) & (arr != np.floor(arr))
        flag(frac, lambda i: f"not a whole number: {_show(values[i])}")
    return sorted(found.items())


def _blank(values: pd.Series) -> np.ndarray:
    """Mask of missing or whitespace-only cells (looked for among the distinct values first: fast
    for the few names a results table repeats)."""
    missing = values.isna().to_numpy()
    if values.dtype.kind in "fiub":
        return missing
    try:
        uniq = pd.unique(values[~missing].to_numpy(dtype=object))
    except TypeError:  # unhashable cells (a list): they are not blank
        uniq = [u for u in values[~missing].to_numpy(dtype=object) if isinstance(u, str)]
    empty = [u for u in uniq if isinstance(u, str) and not u.strip()]
    if not empty:
        return missing
    return missing | np.array([isinstance(v, str) and not v.strip() for v in values.to_numpy(dtype=object)],
                              dtype=bool)


def _row_note(df: pd.DataFrame, i: int) -> str:
    """``"; the row's notes: ..."`` when row ``i`` has ``notes`` (an imported row saying why a
    figure is missing and how to get it), else ``""``."""
    if "notes" not in df.columns:
        return ""
    note = df["notes"].iloc[i]
    return f"; the row's notes: {note}" if isinstance(note, str) and note.strip() else ""


def _required_rows(df: pd.DataFrame, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Required column -> mask of the rows that need it. With the planner's default
    :data:`PLAN_REQUIRED_COLUMNS`, rows with ``mode="generation"`` need
    :data:`GENERATION_REQUIRED_COLUMNS` instead (a generation row has no fixed-shape latency);
    any other ``required`` applies to every row."""
    n = len(df)
    gen = (df["mode"].astype(str).to_numpy() == "generation") if "mode" in df.columns else np.zeros(n, bool)
    if required != PLAN_REQUIRED_COLUMNS or not gen.any():
        return {c: np.ones(n, bool) for c in required}
    need = {c: ~gen for c in required} if (~gen).any() else {}
    for c in GENERATION_REQUIRED_COLUMNS:
        need[c] = need.get(c, np.zeros(n, bool)) | gen
    return need


def row_problems(df: pd.DataFrame, where: list[str] | None = None, *,
                 required: tuple[str, ...] = PLAN_REQUIRED_COLUMNS,
                 schema_version: bool = False) -> list[dict[str, object]]:
    """Every row's first problem, as ``[{"row", "where", "field", "message"}]`` in row order.

    THE validator of measurement rows: the store (writing and loading), the planner, the CLI and
    the dashboard all reach it (through :func:`normalize_measurements` or directly), so a row
    is good or bad the same way everywhere. Rules:

    * :data:`IDENTITY_COLUMNS` are never blank; other ``required`` columns are not missing in
      rows with ``status == "ok"`` (``mode="generation"`` rows: :data:`GENERATION_REQUIRED_COLUMNS`
      in place of the default :data:`PLAN_REQUIRED_COLUMNS`);
    * every numeric column of :data:`MEASUREMENT_COLUMNS` holds finite numbers (not text, not
      bools), >= 0 in ok rows; ``batch_size`` > 0; integer columns whole and <= 2**53;
    * ``mode``, ``provenance``, ``energy_source`` and ``status`` take their allowed values;
    * with ``schema_version=True`` (stored records) the version is present and this one.

    ``where`` labels rows in messages (default ``"row i"``). Columns absent from ``df`` are not
    checked here (a missing required column is one error for the whole frame: see
    :func:`normalize_measurements`).
    """
    n = len(df)
    where = where if where is not None else [f"row {i}" for i in range(n)]
    problems: dict[int, tuple[str, str]] = {}

    def flag(mask: np.ndarray, field: str, message_for) -> None:
        for i in np.flatnonzero(mask):
            problems.setdefault(int(i), (field, message_for(int(i))))

    if schema_version:
        if "schema_version" not in df.columns:
            flag(np.ones(n, dtype=bool), "schema_version", lambda i: "missing")
        else:
            version = df["schema_version"]
            vnum, _, _ = _numbers(version)
            flag(version.isna().to_numpy(), "schema_version", lambda i: "missing")
            flag((version.notna().to_numpy() & (vnum != SCHEMA_VERSION)), "schema_version",
                 lambda i: f"is {_show(version.iloc[i])}; this effplan reads version {SCHEMA_VERSION}")
    status = (df["status"] if "status" in df.columns else pd.Series(["ok"] * n, index=df.index, dtype=object))
    ok = (status.isna() | (status.astype(str) == "ok")).to_numpy()
    no_energy = (df["energy_source"].astype(str) == "none").to_numpy() if "energy_source" in df.columns \
        else np.zeros(n, dtype=bool)
    for name, rows in _required_rows(df, required).items():
        if name not in df.columns:
            continue
        values = df[name]
        blank = _blank(values) & rows
        if name in ENERGY_COLUMNS:
            flag(blank & ok & no_energy, name, lambda i: (
                "energy was not measured for this row (energy_source='none': the sweep ran with "
                "energy=False), so it cannot be planned. Measure again with energy=True, or type "
                "energy_per_item_j and idle_power_w in (provenance='entered')"))
        flag(blank & (ok | (name in IDENTITY_COLUMNS)), name,
             lambda i: "missing value in a required column" + _row_note(df, i))
    for name, (kind, _) in MEASUREMENT_COLUMNS.items():
        if kind not in ("int", "float") or name not in df.columns:
            continue
        for i, message in check_numbers(df[name], name, kind=kind, positive=name in POSITIVE_COLUMNS,
                                        check=ok):
            problems.setdefault(i, (name, message))
    for name, (kind, _) in MEASUREMENT_COLUMNS.items():
        if kind == "bool" and name in df.columns:
            flag(np.isin(np.arange(n), bad_bool_rows(df[name])), name,
                 lambda i, values=df[name]: f"{_show(values.iloc[i])} is not a boolean: use true/false, "
                                            "yes/no or 1/0")
    for name, (allowed, optional) in ENUM_COLUMNS.items():
        if name not in df.columns:
            continue
        values = df[name]
        present = ~_blank(values) if optional else values.notna().to_numpy()
        bad = present & ~values.isin(allowed).to_numpy()
        flag(bad, name, lambda i, values=values, allowed=allowed:
             f"{_show(values.iloc[i])} is not one of {allowed}")
    return [{"row": i, "where": where[i], "field": f, "message": m} for i, (f, m) in sorted(problems.items())]


def idle_above_busy_rows(df: pd.DataFrame) -> np.ndarray:
    """Positions of ok rows whose idle power exceeds the power while busy.

    Busy power is ``avg_power_w`` where given, else ``energy_per_item_j x
    throughput_items_per_s`` (total energy per item times items per second). Such a row would
    make serving MORE traffic look cheaper (idle time costs more than busy time).
    """
    if "idle_power_w" not in df.columns:
        return np.zeros(0, dtype=int)
    idle, _, _ = _numbers(df["idle_power_w"])
    busy = np.full(len(df), np.nan)
    if "avg_power_w" in df.columns:
        busy = _numbers(df["avg_power_w"])[0]
    if "energy_per_item_j" in df.columns and "throughput_items_per_s" in df.columns:
        with np.errstate(over="ignore", invalid="ignore"):
            derived = _numbers(df["energy_per_item_j"])[0] * _numbers(df["throughput_items_per_s"])[0]
        busy = np.where(np.isnan(busy), derived, busy)
    ok = (df["status"].isna() | (df["status"].astype(str) == "ok")).to_numpy() if "status" in df.columns \
        else np.ones(len(df), dtype=bool)
    with np.errstate(invalid="ignore"):
        # a relative tolerance: a measured idle equal to busy power is not an error
        return np.flatnonzero(ok & (idle > busy * (1 + 1e-9)))


def warn_idle_above_busy(df: pd.DataFrame, *, source: str = "measurements") -> np.ndarray:
    """One :class:`~effplan.errors.DataWarning` naming the rows where idle power > busy power
    (see :func:`idle_above_busy_rows`); returns their positions."""
    rows = idle_above_busy_rows(df)
    if len(rows):
        import warnings

        from ..errors import DataWarning

        names = [f"row {int(i)} ({df['candidate'].iloc[i] if 'candidate' in df.columns else '?'} on "
                 f"{df['hardware'].iloc[i] if 'hardware' in df.columns else '?'})" for i in rows[:10]]
        more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        warnings.warn(f"{source}: idle_power_w is above the busy power (avg_power_w, or "
                      f"energy_per_item_j x throughput_items_per_s) in {', '.join(names)}{more}. Idle "
                      "power is measured before the run and should not exceed it: re-measure idle "
                      "power or fix the row. The planner caps their idle power at the busy power so "
                      "that more traffic never costs less.", DataWarning, stacklevel=3)
    return rows


def normalize_measurements(df: pd.DataFrame, *, required: tuple[str, ...] = PLAN_REQUIRED_COLUMNS,
                           source: str = "measurements") -> pd.DataFrame:
    """Validate a measurements frame and return it with every schema column present.

    Missing optional columns are filled (NaN for numbers, sensible strings otherwise). A row
    with no ``provenance`` or ``energy_source`` (column absent or cell empty) was typed in by
    hand: both become ``"entered"``. A missing required column, or any row that breaks the rules
    of :func:`row_problems` (non-numeric, infinite, negative, fractional or bool batch size,
    blank name, unknown ``mode``...), raises :class:`ValidationError` naming the column and the
    first bad row. Rows with ``status == "error"`` may hold NaN figures. Rows whose idle power
    is above their busy power are kept, with one :class:`~effplan.errors.DataWarning` naming them.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValidationError("measurements", f"expected a pandas DataFrame, got {type(df).__name__}")
    df = rename_legacy_columns(df)
    n = len(df)
    needed = tuple(_required_rows(df, required))  # generation rows need their own columns
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValidationError(missing[0], f"required column missing (missing: {', '.join(missing)})",
                              where=source)
    problems = row_problems(df, [f"{source} row {i}" for i in range(len(df))], required=required)
    if problems:
        p = problems[0]
        raise ValidationError(str(p["field"]), str(p["message"]), where=str(p["where"]))
    cols: dict[str, object] = {}
    for col, (kind, _) in MEASUREMENT_COLUMNS.items():
        if col not in df.columns:
            if col in ("provenance", "energy_source"):
                cols[col] = np.full(n, "entered", dtype=object)
            elif kind == "str":
                cols[col] = np.full(n, _DEFAULTS.get(col, ""), dtype=object)
            elif col in _DEFAULTS:
                cols[col] = np.full(n, _DEFAULTS[col])
            else:
                cols[col] = np.full(n, np.nan)
            continue
        raw = df[col]
        if kind == "str":
            fill = "entered" if col in ("provenance", "energy_source") else _DEFAULTS.get(col, "")
            vals = raw.astype(object).where(raw.notna(), fill).astype(str)
            if col in ("provenance", "energy_source"):
                vals = vals.where(vals.str.strip() != "", fill)
            cols[col] = vals.to_numpy(dtype=object)
            continue
        if kind == "bool":
            cols[col] = _bool_values(raw)
            continue
        arr = _numbers(raw)[0]
        cols[col] = arr.astype(np.int64) if kind == "int" and not np.isnan(arr).any() else arr
    out = _bool_columns(pd.DataFrame(cols))
    for col in df.columns:
        if col not in MEASUREMENT_COLUMNS:
            out[col] = df[col].to_numpy()
    warn_idle_above_busy(out, source=source)
    return out


#: the words the one boolean parser reads (case and surrounding spaces ignored)
TRUE_WORDS: tuple[str, ...] = ("true", "1", "yes")
FALSE_WORDS: tuple[str, ...] = ("false", "0", "no")


def _bool_or_bad(v: object) -> float | None:
    """1.0 / 0.0 for a readable boolean, NaN for empty (unknown), None for anything else."""
    if v is None or v is pd.NA or v is pd.NaT:
        return math.nan
    if isinstance(v, (bool, np.bool_)):
        return float(bool(v))
    if isinstance(v, (int, float, np.integer, np.floating)):
        if isinstance(v, (float, np.floating)) and math.isnan(float(v)):
            return math.nan
        return float(v) if v in (0, 1) else None
    if isinstance(v, str):
        word = v.strip().lower()
        if word == "" or word in ("nan", "none", "<na>"):
            return math.nan
        if word in TRUE_WORDS:
            return 1.0
        if word in FALSE_WORDS:
            return 0.0
    return None


def parse_bool(value: object, field: str, *, where: str | None = None,
               allow_none: bool = False) -> bool | None:
    """THE boolean parser: ``True``/``False``, ``1``/``0`` and the words true/false, yes/no, 1/0
    (any case, spaces ignored) -> ``bool``. Anything else raises :class:`ValidationError` naming
    ``field`` (``"False"`` is never truthy). ``None`` / empty is returned as ``None`` with
    ``allow_none`` (an unknown), else refused."""
    out = _bool_or_bad(value)
    if out is None or (math.isnan(out) and not allow_none):
        raise ValidationError(field, f"{_show(value)} is not a boolean: use true/false, yes/no or 1/0",
                              where=where)
    return None if math.isnan(out) else bool(out)


def parse_bool_column(raw: object, field: str, *, where: str | None = None) -> np.ndarray:
    """A column of booleans as 1.0 / 0.0 / NaN (empty: unknown) through :func:`parse_bool`'s
    rules; a cell it cannot read raises :class:`ValidationError` naming ``field`` and the row."""
    values = raw.tolist() if hasattr(raw, "tolist") else list(raw)  # type: ignore[attr-defined]
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        b = _bool_or_bad(v)
        if b is None:
            raise ValidationError(field, f"{_show(v)} is not a boolean: use true/false, yes/no or 1/0",
                                  where=f"{where + ' ' if where else ''}row {i}")
        out[i] = b
    return out


def bool_mask(raw: object, field: str, *, where: str | None = None, unknown: bool = False) -> np.ndarray:
    """:func:`parse_bool_column` as a ``bool`` array, an empty cell read as ``unknown``."""
    vals = parse_bool_column(raw, field, where=where)
    return np.where(np.isnan(vals), bool(unknown), vals == 1.0)


def bad_bool_rows(raw: pd.Series) -> np.ndarray:
    """Positions of cells :func:`parse_bool` cannot read (empty cells are unknown, not bad)."""
    return np.array([i for i, v in enumerate(raw.tolist()) if _bool_or_bad(v) is None], dtype=int)


def _bool_values(raw: pd.Series) -> np.ndarray:
    """A ``bool`` column's cells as 1.0 / 0.0 / NaN (unknown), read by :func:`parse_bool`'s rules
    (:func:`row_problems` has already refused any other cell)."""
    out = np.full(len(raw), np.nan)
    for i, v in enumerate(raw.tolist()):
        b = _bool_or_bad(v)
        out[i] = math.nan if b is None else b
    return out


def _bool_columns(out: pd.DataFrame) -> pd.DataFrame:
    """Columns of kind ``bool`` as pandas' nullable boolean (missing = unknown, never False)."""
    for col, (kind, _) in MEASUREMENT_COLUMNS.items():
        if kind == "bool" and col in out.columns:
            vals = pd.to_numeric(out[col], errors="coerce")
            out[col] = pd.array([pd.NA if v != v else bool(v) for v in vals], dtype="boolean")
    return out
