"""Plan generative (LLM) serving per token: TTFT and TPOT targets, a KV-cache memory limit.

``effplan.plan(measurements, generation=GenerationWorkload(...), prices=...)`` uses the rows with
``mode="generation"`` (measured by :mod:`effplan.generation`, projected, or typed in by hand with
``provenance="entered"``): ``batch_size`` is the concurrency ``c`` (sequences decoded together)
and ``prompt_tokens`` the measured prompt length. numpy/pandas only.

The documented baseline (a hand calculation matches it; ``tests/planning/test_generation.py``)
--------------------------------------------------------------------------------------------
Per candidate x hardware option, with ``P = prompt_tokens``, ``N = output_tokens`` of the workload:

* The measured prompt length used is the **nearest at or above** ``P`` (none: infeasible, "measure
  a prompt length >= P"). Concurrency ``c`` is feasible when all hold:
  ``ttft_p95_ms(c) + slot_wait_p95_ms(c) <= slo_ttft_p95_ms`` (waiting for one of the ``c`` slots
  at ``target_utilization``, M/G/c: :mod:`effplan.planning.slot_queue`);
  ``tpot_p95_ms(c) <= slo_tpot_p95_ms`` (a target of None
  is no constraint); ``param_bytes + c * (P + N) * kv_cache_bytes_per_token <= memory_fraction *
  memory`` (memory = the catalog's ``memory_gb`` in GiB, ``memory_gb * 2**30`` bytes: the vendors'
  HBM "GB" are GiB, an H100 80GB holds 81,559 MiB; ``memory_fraction`` 0.9); with
  ``kv_window_tokens`` on the rows, ``P + N`` is capped at the window on the windowed share of
  layers (:func:`effplan.planning.kv_window.kv_tokens_held`). A workload whose ``P + N`` exceeds the
  rows' ``context_tokens`` is infeasible (``binding_constraint="context"``, the reason names it). Hardware
  whose memory the catalog does not know is not memory-checked, and ``memory_check`` says so; so are
  rows without model facts (``param_bytes`` / ``kv_cache_bytes_per_token`` NaN, e.g. a serving
  engine's benchmark imported without ``config=``): ``memory_check`` = "not checked: no model facts
  ...", a :class:`PlanWarning`, and ``Plan.inputs["notes"]`` say so (NaN bytes never "fit").
* Between measured concurrencies ``c_i < c < c_{i+1}`` (at that prompt length) the rules of
  :mod:`effplan.batching` apply (:func:`~effplan.batching.interpolate_batches` with the columns
  below): at its grid of integer points (powers of two and geometric points, at most 4 per gap)
  ``ttft_p50/p95_ms``, ``tpot_p50/p95_ms`` and the per-token energies are interpolated log-log,
  ``log y(c) = log y_i + log(c / c_i) / log(c_{i+1} / c_i) * (log y_{i+1} - log y_i)``, the four
  latencies first made non-decreasing in ``c`` (cumulative max of the measured values). Such a
  point carries ``concurrency_source="interpolated"`` and ``concurrency_neighbours="c_i-c_{i+1}"``
  (measured, entered or projected points ``"measured"`` and ``""``). Never extrapolated: nothing
  below the smallest or above the largest measured ``c``.
* The **largest feasible** ``c`` (measured or interpolated) is chosen. ``binding_constraint`` names
  what stops a larger one: the constraints (``ttft``, ``tpot``, ``memory``, joined by ``+``) that
  the next larger point violates, or ``max-measured`` when the chosen ``c`` is the largest measured
  (a larger one was not measured, so nothing is claimed about it; ``concurrency_note`` says
  "measure concurrency 2c to go further"). No feasible ``c``: the option is
  infeasible (``feasible=False``, NaN cost, energy, CO2; never a silent zero) and
  ``binding_constraint`` names what the smallest measured ``c`` violates.
* ``concurrency_source``: ``measured`` (or ``littles-law`` for a measured row whose own
  ``concurrency_source`` is ``littles-law``: an imported request-rate run, see
  :mod:`effplan.importers`), or ``interpolated``.
* Requests per second per instance: ``rate = c / ((ttft_p50_ms(c) + N * tpot(c)) / 1000)`` with
  ``tpot`` the capacity figure, ``tpot_mean_ms`` where measured (the mean of the timed decode
  steps, as serving engines report throughput), else ``tpot_p50_ms`` (``tpot_capacity_ms``).
* Month ``m`` (0-based): ``peak = requests_per_day * (1 + monthly_growth)**m / 86400 *
  peak_to_average``; ``instances = max(min_replicas, ceil(peak / (rate * target_utilization)))``
  (the ratio is lowered by 1e-9 before the ceiling to absorb floating-point error);
  ``instance_hours = instances * hours_per_month``; cloud ``cost = instance_hours *
  price_per_hour``; on-premises ``cost = instances * capex / lifetime_months + energy_kwh *
  electricity price``.
* ``requests = requests_per_day * (1 + monthly_growth)**m * hours_per_month / 24``;
  ``energy_per_request_j = P * energy_per_prompt_token_j + N * energy_per_output_token_j``;
  ``idle_s = max(0, instance_hours * 3600 - requests / rate)``;
  ``energy_kwh = (requests * energy_per_request_j + idle_power_w * idle_s) / 3.6e6 * pue``;
  ``co2_kg = energy_kwh * grid_gco2_per_kwh / 1000``.
* ``cost_per_1m_output_tokens_usd = cost_usd / (requests * N) * 1e6``;
  ``energy_per_response_wh = energy_per_request_j / 3600`` (device energy of one response while
  serving; idle time and PUE are in ``energy_kwh``, not here).
* Quarterly rows sum months (``instances`` is the quarter's peak month).

Projection to catalog hardware (``hardware=[...]``)
--------------------------------------------------
Each measured generation row is projected by a roofline with two phases, for a batch of ``c``
sequences, a prompt of ``P_row`` tokens and the middle of the response
``T = P_row + output_tokens_row / 2`` tokens of context (``P_row`` when ``output_tokens`` is
unknown):

* prefill (compute-bound): ``roof_pre = max(c * P_row * flops_per_prompt_token / peak,
  (param_bytes + c * P_row * kv) / bandwidth)`` (weights read, KV cache written); for a row with
  ``batching="continuous"`` (a serving engine's benchmark, :mod:`effplan.importers`) ``c`` is 1
  here: its TTFT is one request's prefill (plus waiting, which the calibration absorbs), not a
  prefill of the whole batch;
* decode step (memory-bound): ``roof_dec = max(c * flops_per_output_token / peak,
  (param_bytes + c * T * kv) / bandwidth)`` -- the weights and the KV cache are read per step;
* the per-kernel launch floor, calibrated on the source (:mod:`effplan.planning.launch_floor`):
  ``launch(src) = min(calls * overhead(src kind), measured - roof(src))`` (at most the measured time
  above the source's physical floor; half the measured time where the source is not in the
  catalog) and ``launch(target) = launch(src) * overhead(target kind) / overhead(src kind)``
  (operator calls of one prefill of the batch / one decode step, recorded by
  :mod:`effplan.generation` from :attr:`effplan.flops.FlopCount.operator_calls`; ``overhead`` the
  ``cuda`` / ``cpu`` row of ``effplan/data/kernel_overhead.csv``). Rows without the counts
  (typed in by hand) get no floor, and ``efficiency_source`` says "no launch floor: operator calls
  unknown ... optimistic" -- never silently;
* calibrated by the local measurement: per phase ``efficiency =
  roof(measured hw) / (measured p50 - launch(src))``, capped at 1 (so every projection stays at or
  above the target's physical floor); a target at least as good as the source on peak, bandwidth
  and per-operator overhead is never slower than the measurement (``min(TTFT, measured)``); or :data:`ASSUMED_EFFICIENCY` when the measured
  hardware is not in the catalog (``efficiency_source`` says which). On a GPU target the prefill
  efficiency is also capped at the best published MLPerf share of its peak
  (:func:`effplan.reference.published_peak_share`, labelled); the decode, memory-bound, is not
  (the share is one of compute peak). ``TTFT(target) = roof_pre(target) / efficiency_pre +
  launch_pre(target)``; ``TPOT(target) = roof_dec(target) / efficiency_dec + launch_dec(target)``;
* TTFT / TPOT p50 are ``t_pre = TTFT(target)`` / ``t_dec = TPOT(target)``; p95 keep the measured
  p95/p50 ratio; energy per
  prompt token ``= rated_power_w * t_pre / (c * P_row)``, per output token
  ``= rated_power_w * t_dec / c``; idle power ``= IDLE_POWER_FRACTION[kind] * rated_power_w``.
* The memory-fit check above uses the target's memory. Rows are ``provenance="projected"``.

Monte Carlo (``samples > 0``, :class:`GenerationUncertainty`)
-----------------------------------------------------------
Each sample draws a traffic multiplier, a monthly growth rate, a price multiplier, and prompt and
output length multipliers (triangular: low, 1, high), held for the horizon. The concurrency chosen
at the base lengths is kept; in a sample ``ttft_p50`` scales with the sampled prompt length
(prefill is linear in it to first order), ``rate`` and ``energy_per_request_j`` use the sampled
lengths. An option planned from a row that is NOT stable (timed on a busy machine, flagged:
:mod:`effplan.planning.stability`) also draws a latency multiplier per sample, applied to TTFT
and TPOT, ``1 + sigma * z`` (z standard normal clipped at +-3, sigma = ``timing_spread_rel /
1.2816``, so its P10-P90 spans +-X); stable options draw none (exact, as before). P10/P50/P90 of
cost, energy and CO2 are taken across samples.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import batching as _batching
from . import launch_floor as _lf
from ..refdata import catalog as _cat
from ..refdata import reference as _ref
from ..errors import PlanWarning, ValidationError
from .engine import _attach_prices, _percentiles, _quarter_sum, _tri, _workload_draws
from .calendar import parse_month
from .inputs import (ASSUMED_EFFICIENCY, HOURS_PER_MONTH, IDLE_POWER_FRACTION, Prices, Uncertainty,
                     _known_fields, _match_map, _measurement_frame, _num, _set)
from .result import _PCT, STABILITY_COLUMNS
from .energy_boundary import ENERGY_LEVEL_COLUMNS, add_energy_levels
from .serving_dtype import serving_refusal
from .slot_queue import capacity_tpot_ms, slot_wait_ms
from .stability import FLAG_COLUMNS, latency_sigma, option_notes
from ..units import G_PER_KG, J_PER_KWH, J_PER_WH, S_PER_DAY, S_PER_HOUR

__all__ = ["GenerationWorkload", "GenerationUncertainty", "plan_generation", "project_generation",
           "memory_fit", "token_economics", "GENERATION_MONTHLY_COLUMNS", "GENERATION_QUARTERLY_COLUMNS",
           "GENERATION_SUMMARY_COLUMNS", "MEMORY_FRACTION"]

MEMORY_FRACTION = 0.9
#: ``memory_check`` of an option whose rows carry no ``param_bytes`` / ``kv_cache_bytes_per_token``
NO_MODEL_FACTS = ("not checked: no model facts (param_bytes / kv_cache_bytes_per_token unknown; import "
                  "the benchmark with config=<the model's config> or type them in)")
CONSTRAINTS = ("ttft", "tpot", "memory")
#: figures interpolated log-log between measured concurrencies (the first four: latencies, made
#: non-decreasing in concurrency first), by :func:`effplan.batching.interpolate_batches`
_INTERPOLATED = ("ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms", "energy_per_prompt_token_j",
                 "energy_per_output_token_j")

GENERATION_MONTHLY_COLUMNS: dict[str, str] = {
    "candidate": "candidate name",
    "hardware": "hardware name (as measured, or the catalog name for projected rows)",
    "catalog_name": "matching catalog row ('' when the hardware is not in the catalog)",
    "provenance": "measured | estimated | entered | projected (timing figures of the row)",
    "energy_source": "how the per-token energy was got",
    "month": "0-based month index",
    "quarter": "1-based quarter index (Q1 = months 0-2)",
    "requests": "requests (responses) in the month",
    "output_tokens": "output tokens in the month (requests x output_tokens)",
    "avg_requests_per_s": "average load, requests/s",
    "peak_requests_per_s": "peak load, requests/s (average x peak_to_average)",
    "concurrency": "chosen concurrency c: sequences decoded together per instance (NaN: infeasible)",
    "concurrency_source": "'measured' (or entered/projected) concurrency, or 'interpolated' between two "
                          "measured ones",
    "concurrency_neighbours": "interpolated: the measured concurrencies either side ('16-32'); '' otherwise",
    "prompt_tokens_measured": "measured prompt length used (nearest at or above the workload's)",
    "ttft_p95_ms": "p95 time to first token at the chosen concurrency, ms",
    "tpot_p95_ms": "p95 time per output token at the chosen concurrency, ms",
    "memory_needed_gb": "param_bytes + c x KV tokens held x kv_cache_bytes_per_token, GB (1e9 bytes); KV "
                        "tokens held = P + N, capped at kv_window_tokens on windowed layers",
    "memory_needed_gib": "the same in GiB (2**30 bytes), the unit GPU memory is sold in",
    "memory_limit_gb": "memory_fraction x device memory, GB (NaN: unknown, not checked)",
    "memory_limit_gib": "the same in GiB (2**30 bytes)",
    "slot_wait_p95_ms": "p95 wait for a free slot at the planned utilization (M/G/c, "
                        "effplan.planning.slot_queue), ms",
    "ttft_e2e_p95_ms": "ttft_p95_ms + slot_wait_p95_ms: the TTFT the target is checked on, ms",
    "tpot_capacity_ms": "TPOT the capacity uses: the mean decode step where measured, else the median, ms",
    "requests_per_s_per_instance": "c / ((ttft_p50_ms + N x tpot_capacity_ms) / 1000)",
    "capacity_requests_per_s": "requests_per_s_per_instance x target_utilization",
    "instances": "instances provisioned all month",
    "instance_hours": "instances x hours_per_month",
    "price_per_hour_usd": "price per instance-hour used (cloud mode)",
    "cost_usd": "cost of the month",
    "energy_kwh": "energy of the month: device (accelerator) energy serving + idle, x PUE; no host CPU/DRAM "
                  "(energy_kwh_with_host has it), kWh",
    "energy_kwh_with_host": "energy_kwh with the host CPU/DRAM share added (GPU options: x (1 + 25/58)), kWh",
    "energy_boundary": "what the energy figures hold (accelerator only / + host / + PUE), per figure",
    "co2_kg": "CO2 of the month, kg",
    "cost_per_1m_output_tokens_usd": "cost_usd / output tokens x 1e6",
    "energy_per_response_wh": "P x energy_per_prompt_token_j + N x energy_per_output_token_j, Wh: the "
                              "serving device only (accelerator only on a GPU; see energy_boundary)",
    "binding_constraint": "what stops a larger concurrency: ttft | tpot | memory (joined by '+') | "
                          "max-measured; context: prompt + output exceed the model's context",
    "feasible": "False when no measured concurrency meets every constraint",
    "infeasible_reason": "why the row is infeasible ('' when feasible)",
    "perplexity": "held-out perplexity of the candidate (lower is better; NaN if none)",
    "quality": "candidate quality score (NaN if none)",
}
_QUARTER_SUMS = ("requests", "output_tokens", "instance_hours", "cost_usd", "energy_kwh", "co2_kg")
GENERATION_QUARTERLY_COLUMNS: dict[str, str] = {
    **{k: GENERATION_MONTHLY_COLUMNS[k] for k in ("candidate", "hardware", "catalog_name", "provenance",
                                                   "energy_source", "quarter")},
    "months_in_quarter": "months of the plan in this quarter (3 except a last partial quarter)",
    **{k: GENERATION_MONTHLY_COLUMNS[k].replace("month", "quarter") for k in _QUARTER_SUMS},
    "instances": "peak instances in any month of the quarter",
    "cost_per_1m_output_tokens_usd": "quarter cost / quarter output tokens x 1e6",
    **{k: GENERATION_MONTHLY_COLUMNS[k] for k in ("concurrency", "energy_per_response_wh",
                                                   "binding_constraint", "feasible", "infeasible_reason",
                                                   "perplexity", "quality")},
}
GENERATION_SUMMARY_COLUMNS: dict[str, str] = {
    **{k: GENERATION_MONTHLY_COLUMNS[k] for k in (
        "candidate", "hardware", "catalog_name", "provenance", "energy_source", "feasible",
        "infeasible_reason", "concurrency", "concurrency_source", "concurrency_neighbours",
        "binding_constraint", "prompt_tokens_measured",
        "ttft_p95_ms", "slot_wait_p95_ms", "ttft_e2e_p95_ms", "tpot_p95_ms", "tpot_capacity_ms",
        "memory_needed_gb", "memory_needed_gib", "memory_limit_gb", "memory_limit_gib",
        "requests_per_s_per_instance", "capacity_requests_per_s", "price_per_hour_usd")},
    "tensor_parallel": "GPUs the model is split over (tensor parallelism): the instance's GPU count, 1 for "
                       "one GPU (effplan.planning.tensor_parallel)",
    "tp_gpu": "the GPU of a multi-GPU instance (the catalog name itself for one GPU)",
    "concurrency_note": "'measure concurrency N to go further' when the largest measured one was chosen",
    "memory_check": "'checked' or why memory was not checked",
    "price_source": "where the price came from",
    "instances_first_month": "instances in month 0",
    "instances_max": "most instances in any month",
    "requests": "requests over the horizon",
    "output_tokens": "output tokens over the horizon",
    "instance_hours": "instance-hours over the horizon",
    "cost_usd": "cost over the horizon",
    "first_quarter_cost_usd": "cost of Q1",
    "cost_per_1m_output_tokens_usd": "horizon cost / horizon output tokens x 1e6",
    "energy_kwh": "energy over the horizon, kWh",
    "co2_kg": "CO2 over the horizon, kg",
    "energy_per_response_wh": GENERATION_MONTHLY_COLUMNS["energy_per_response_wh"],
    "perplexity": GENERATION_MONTHLY_COLUMNS["perplexity"],
    "quality": GENERATION_MONTHLY_COLUMNS["quality"],
    "efficiency": "projected rows: fraction of the roofline assumed achieved, prefill / decode mean",
    "efficiency_source": "'measured', 'calibrated on <hw>' or 'assumed ...'",
    "projected_from": "projected rows: the measured hardware it was projected from",
    **STABILITY_COLUMNS,
    **ENERGY_LEVEL_COLUMNS,
}


# ------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class GenerationWorkload:
    """Generative traffic to serve. Frozen and validated (a bad field raises ValidationError).

    requests_per_day: responses per day in month 0. prompt_tokens / output_tokens: tokens per
    request in and out. slo_ttft_p95_ms / slo_tpot_p95_ms: p95 targets, ms (None: no target).
    monthly_growth, peak_to_average, target_utilization, min_replicas, months, hours_per_month:
    as :class:`effplan.InferenceWorkload`. memory_fraction: share of device memory that weights and
    KV cache may use (0.9). start: optional calendar month of month 0, "YYYY-MM" (as
    :class:`effplan.InferenceWorkload`).
    """

    requests_per_day: float
    prompt_tokens: int
    output_tokens: int
    slo_ttft_p95_ms: float | None = None
    slo_tpot_p95_ms: float | None = None
    monthly_growth: float = 0.0
    peak_to_average: float = 1.0
    target_utilization: float = 0.7
    min_replicas: int = 1
    months: int = 12
    hours_per_month: float = HOURS_PER_MONTH
    memory_fraction: float = MEMORY_FRACTION
    start: str | None = None

    def __post_init__(self) -> None:
        w = "GenerationWorkload"
        _set(self, "requests_per_day", _num("requests_per_day", self.requests_per_day, lo=0, where=w))
        _set(self, "prompt_tokens", _num("prompt_tokens", self.prompt_tokens, lo=1, integer=True, where=w))
        _set(self, "output_tokens", _num("output_tokens", self.output_tokens, lo=1, integer=True, where=w))
        for name in ("slo_ttft_p95_ms", "slo_tpot_p95_ms"):
            if getattr(self, name) is not None:
                _set(self, name, _num(name, getattr(self, name), lo=0, lo_open=True, where=w))
        _set(self, "monthly_growth", _num("monthly_growth", self.monthly_growth, lo=-1, lo_open=True, where=w))
        _set(self, "peak_to_average", _num("peak_to_average", self.peak_to_average, lo=1, where=w))
        _set(self, "target_utilization", _num("target_utilization", self.target_utilization, lo=0,
                                              lo_open=True, hi=1, where=w))
        _set(self, "min_replicas", _num("min_replicas", self.min_replicas, lo=0, integer=True, where=w))
        _set(self, "months", _num("months", self.months, lo=1, hi=600, integer=True, where=w))
        _set(self, "hours_per_month", _num("hours_per_month", self.hours_per_month, lo=0, lo_open=True,
                                           hi=744, where=w))
        _set(self, "memory_fraction", _num("memory_fraction", self.memory_fraction, lo=0, lo_open=True,
                                           hi=1, where=w))
        if self.start is not None:
            _set(self, "start", parse_month(self.start, "start", where=w))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GenerationWorkload:
        return cls(**_known_fields(cls, d))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


@dataclass(frozen=True)
class GenerationUncertainty(Uncertainty):
    """:class:`effplan.Uncertainty` plus (low, high) multipliers of the prompt and output lengths
    (triangular around 1.0; None = certain)."""

    prompt_tokens: tuple[float, float] | None = (0.75, 1.25)
    output_tokens: tuple[float, float] | None = (0.5, 1.5)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("prompt_tokens", "output_tokens"):
            val = getattr(self, name)
            if val is None:
                continue
            if not isinstance(val, tuple | list) or len(val) != 2:
                raise ValidationError(name, f"expected (low, high) multipliers, got {val!r}",
                                      where="GenerationUncertainty")
            lo = _num(f"{name}[0]", val[0], lo=0, lo_open=True)
            hi = _num(f"{name}[1]", val[1])
            if not lo <= 1.0 <= hi:
                raise ValidationError(name, f"multipliers must bracket 1.0, got ({lo:g}, {hi:g})",
                                      where="GenerationUncertainty")
            _set(self, name, (lo, hi))


# ----------------------------------------------------------------------------------- projection
def _roof(flops: np.ndarray, nbytes: np.ndarray, peak: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """max(flops / peak, bytes / bandwidth), each term dropped when unknown (NaN when both are)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.fmax(flops / peak, nbytes / bw)
    return np.where(np.isfinite(t) & (t > 0), t, np.nan)


def project_generation(rows: pd.DataFrame, targets: list[str], cat: pd.DataFrame,
                       assumed_efficiency: float = ASSUMED_EFFICIENCY) -> pd.DataFrame:
    """Generation rows (measured or entered) projected onto catalog ``targets`` (see the module
    docstring). Returns schema rows with ``provenance="projected"`` plus ``projected_from``,
    ``efficiency`` and ``efficiency_source`` (which names the launch floor, or says it is missing);
    rows with too little data to project are left out."""
    if not targets or rows.empty:
        return rows.iloc[0:0].assign(projected_from="", efficiency=np.nan, efficiency_source="")
    cidx = cat.set_index("name")
    match = _match_map(rows["hardware"], cat)
    src_cat = rows["hardware"].map(match).to_numpy(str)

    def spec(names: np.ndarray, dtypes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        peak = np.full(len(names), np.nan)
        bw = np.full(len(names), np.nan)
        for i, (n, d) in enumerate(zip(names, dtypes, strict=True)):
            if n:
                col = _cat.dtype_peak_column(d)
                peak[i] = float(cidx.at[n, col]) if col is not None else np.nan
                bw[i] = float(cidx.at[n, "memory_bandwidth_gb_s"]) * 1e9
        return peak, bw

    def col(name: str) -> np.ndarray:
        return rows[name].to_numpy(float) if name in rows.columns else np.full(len(rows), np.nan)

    c = rows["batch_size"].to_numpy(float)
    P = rows["prompt_tokens"].to_numpy(float)
    n_out = col("output_tokens")
    T = P + np.where(np.isnan(n_out), 0.0, n_out / 2.0)
    pb = rows["param_bytes"].to_numpy(float)
    kv = rows["kv_cache_bytes_per_token"].to_numpy(float)
    sdt, serving, spb = _serving_columns(rows, pb)
    # a continuous-batching row's TTFT is ONE request's prefill (plus its wait), not the batch's
    batching = rows["batching"].astype(str).to_numpy() if "batching" in rows.columns else np.full(len(rows), "")
    c_pre = np.where(batching == "continuous", 1.0, c)
    f_pre = c_pre * P * rows["flops_per_prompt_token"].to_numpy(float)
    f_dec = c * rows["flops_per_output_token"].to_numpy(float)
    b_pre = pb + c_pre * P * kv
    b_dec = pb + c * T * kv
    # operator calls of one prefill of the batch / one decode step (the launch floor)
    ops_pre, ops_dec = col("operator_calls_prefill"), col("operator_calls_decode")
    ops_known = np.isfinite(ops_pre) & np.isfinite(ops_dec)
    overhead = _ref.kernel_overhead()
    ovh = {k: _ref.overhead_per_operator_s(k, overhead)[0] for k in ("gpu", "cpu")}
    device = rows["device"].astype(str).to_numpy() if "device" in rows.columns else np.full(len(rows), "")
    src_kind = np.array([("gpu" if d.startswith("cuda") else "cpu") if d else
                         (str(cidx.at[n, "kind"]) if n else "cpu") for d, n in zip(device, src_cat)])
    ovh_src = np.where(src_kind == "gpu", ovh["gpu"], ovh["cpu"])
    dtypes = rows["dtype"].to_numpy(str)
    peak0, bw0 = spec(src_cat, dtypes)
    t_pre_meas = rows["ttft_p50_ms"].to_numpy(float) / 1e3
    t_dec_meas = rows["tpot_p50_ms"].to_numpy(float) / 1e3
    # the source's launch share: at most the measured time above its physical floor
    # (effplan.planning.launch_floor), half of it where the source's roofline is unknown
    roof_pre_src, roof_dec_src = _roof(f_pre, b_pre, peak0, bw0), _roof(f_dec, b_dec, peak0, bw0)
    launch_pre_src = np.where(ops_known, _lf.source_launch_s(ops_pre, ovh_src, t_pre_meas, roof_pre_src), 0.0)
    launch_dec_src = np.where(ops_known, _lf.source_launch_s(ops_dec, ovh_src, t_dec_meas, roof_dec_src), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        eff_pre = np.minimum(1.0, roof_pre_src / (t_pre_meas - launch_pre_src))
        eff_dec = np.minimum(1.0, roof_dec_src / (t_dec_meas - launch_dec_src))
    calibrated = np.isfinite(eff_pre) & np.isfinite(eff_dec) & (eff_pre > 0) & (eff_dec > 0)
    eff_pre = np.where(calibrated, eff_pre, assumed_efficiency)
    eff_dec = np.where(calibrated, eff_dec, assumed_efficiency)
    eff_src = np.where(calibrated, np.char.add("calibrated on ", rows["hardware"].to_numpy(str)),
                       f"assumed {assumed_efficiency:g} (measured hardware not in the catalog)").astype(object)
    gpu_targets = [t for t in targets if str(cidx.at[t, "kind"]) == "gpu"]
    ceiling = _ref.published_peak_share(cidx.loc[gpu_targets, "peak_int8_ops"].astype(float)) \
        if gpu_targets else pd.DataFrame(columns=["peak_share", "peak_share_source"])
    parts = []
    for t in targets:
        keep = (src_cat != t) | serving   # a serving-dtype copy is projected to its own hardware too
        if not keep.any():
            continue
        kind = str(cidx.at[t, "kind"])
        e_pre, e_dec, esrc = eff_pre, eff_dec, eff_src
        share = float(ceiling.at[t, "peak_share"]) if t in ceiling.index else np.nan
        if np.isfinite(share):  # a share of compute peak: it caps the prefill (compute-bound) only
            capped = e_pre > share
            e_pre = np.minimum(e_pre, share)
            esrc = np.where(capped, esrc + f"; prefill capped at {share:.3g} of peak, the best published "
                            f"share ({ceiling.at[t, 'peak_share_source']})", esrc)
        ovh_t = ovh.get(kind, ovh["gpu"])
        esrc = np.where(ops_known,
                        esrc + "; + launch floor calibrated on the source (operator calls x overhead, at "
                               "most the measured time above the source's roofline), scaled to "
                               f"{ovh_t * 1e6:g} us per call ({'cuda' if kind == 'gpu' else 'cpu'} row of "
                               "kernel_overhead.csv)",
                        esrc + "; no launch floor: operator calls unknown (operator_calls_prefill / "
                               "operator_calls_decode not recorded), so this projection is optimistic")
        if "flops_note" in rows.columns:   # FLOPs not fully counted (effplan.planning.flop_coverage)
            fnote = rows["flops_note"].fillna("").astype(str).to_numpy(object)
            esrc = np.where(fnote != "", esrc + "; " + fnote, esrc)
        # served in another dtype (effplan.planning.serving_dtype): the target's bytes and peak are its
        peak_t, bw_t = spec(np.full(len(rows), t), np.where(serving, sdt, dtypes))
        bt_pre, bt_dec = np.where(serving, spb + (b_pre - pb), b_pre), np.where(serving, spb + (b_dec - pb), b_dec)
        tp = _roof(f_pre, bt_pre, peak_t, bw_t) / e_pre + _lf.target_launch_s(launch_pre_src, ovh_src, ovh_t)
        td = _roof(f_dec, bt_dec, peak_t, bw_t) / e_dec + _lf.target_launch_s(launch_dec_src, ovh_src, ovh_t)
        esrc = np.where(serving, esrc + "; served as " + sdt.astype(object) + ": a PROJECTION (weights at "
                        "serving_param_bytes, the dtype's catalog peak, KV at the row's width; not measured)", esrc)
        # hardware better on every catalog figure is never slower than the measurement itself
        with np.errstate(invalid="ignore"):
            better = calibrated & (peak_t >= peak0) & (bw_t >= bw0) & (ovh_t <= ovh_src)
        tp = _lf.never_slower(tp, t_pre_meas, better)
        td = _lf.never_slower(td, t_dec_meas, better)
        # tensor parallelism (effplan.planning.tensor_parallel): all-reduces on top of the roofline
        tp, td, esrc = _tp_terms(cidx, t, rows, c_pre * P, c, tp, td, esrc)
        # a dtype whose kernels do not run on this kind of hardware (dynamic int8 on a GPU): the
        # rows stay, with no figures and the reason, so the option is infeasible and says why
        why = np.array([_cat.dtype_runs_on(d, kind)[1] or serving_refusal(sd, cidx.loc[t].rename(t))
                        for d, sd in zip(dtypes, sdt, strict=True)], dtype=object)
        cannot = keep & (why != "")
        if cannot.any():
            no = rows[cannot].copy()
            no[["ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms"]] = np.nan
            no["projected_from"], no["hardware"] = no["hardware"], t
            no["provenance"], no["energy_source"] = "projected", "projected"
            no["efficiency"], no["efficiency_source"] = np.nan, ""
            no["projection_note"] = [f"infeasible on {t}: {w}" for w in why[cannot]]
            parts.append(no)
        keep &= (why == "") & np.isfinite(tp) & np.isfinite(td)
        if not keep.any():
            continue
        rated = float(cidx.at[t, "rated_power_w"])
        out = rows.copy()
        ttft50, tpot50 = out["ttft_p50_ms"].to_numpy(float), out["tpot_p50_ms"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ttft_p95_ms"] = out["ttft_p95_ms"].to_numpy(float) * (tp * 1e3 / ttft50)
            out["tpot_p95_ms"] = out["tpot_p95_ms"].to_numpy(float) * (td * 1e3 / tpot50)
        out["ttft_p50_ms"] = tp * 1e3
        out["tpot_p50_ms"] = td * 1e3
        out["prefill_tokens_per_s"] = c * P / tp
        out["decode_tokens_per_s"] = c / td
        out["energy_per_prompt_token_j"] = rated * tp / (c * P)
        out["energy_per_output_token_j"] = rated * td / c
        out["idle_power_w"] = IDLE_POWER_FRACTION.get(kind, 0.0) * rated
        out["projected_from"] = out["hardware"]
        out["hardware"] = t
        out["provenance"] = "projected"
        out["energy_source"] = "projected"
        out["efficiency"] = (e_pre + e_dec) / 2.0
        out["efficiency_source"] = esrc
        out["dtype"] = np.where(serving, sdt, dtypes)
        out["param_bytes"] = np.where(serving, spb, pb)
        out["projection_note"] = ""
        parts.append(out[keep])
    if not parts:
        return rows.iloc[0:0].assign(projected_from="", efficiency=np.nan, efficiency_source="")
    return pd.concat(parts, ignore_index=True)


def _serving_columns(rows: pd.DataFrame, pb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(serving dtype, whether one is set, its weight bytes) per row (effplan.planning.serving_dtype)."""
    sdt = rows["serving_dtype"].fillna("").astype(str).to_numpy() if "serving_dtype" in rows else \
        np.full(len(rows), "")
    spb = rows["serving_param_bytes"].to_numpy(float) if "serving_param_bytes" in rows else pb
    return sdt, sdt != "", spb


def _tp_terms(cidx: pd.DataFrame, t: str, rows: pd.DataFrame, tok_pre: np.ndarray, tok_dec: np.ndarray,
              tp: np.ndarray, td: np.ndarray, esrc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prefill / decode times of target ``t`` plus its tensor-parallel all-reduces (0 on one GPU)."""
    deg = float(cidx.at[t, "tensor_parallel"]) if "tensor_parallel" in cidx.columns else np.nan
    if not np.isfinite(deg) or deg <= 1:
        return tp, td, esrc
    from .tensor_parallel import activation_bytes, allreduce_s

    def col(name: str) -> np.ndarray:
        return pd.to_numeric(rows[name], errors="coerce").to_numpy(float) if name in rows else \
            np.full(len(rows), np.nan)

    link = [float(cidx.at[t, k]) for k in ("interconnect_gb_s", "interconnect_efficiency", "allreduce_latency_us")]
    hid, lay = col("hidden_size"), col("num_layers")
    act = activation_bytes(rows["dtype"].to_numpy(str))
    ar_pre = allreduce_s(deg, tok_pre, hid, act, lay, *link)
    ar_dec = allreduce_s(deg, tok_dec, hid, act, lay, *link)
    known = np.isfinite(ar_pre) & np.isfinite(ar_dec)
    esrc = np.where(known, esrc + f"; tensor parallel {deg:g}: weights and KV split over {deg:g} GPUs, + 2 "
                    f"all-reduces per layer over {cidx.at[t, 'interconnect']} ({link[0]:g} GB/s x {link[1]:g}, "
                    f"{link[2]:g} us each)",
                    esrc + f"; tensor parallel {deg:g}: NO all-reduce term (hidden_size / num_layers not on the "
                           "row), so this projection is optimistic")
    return tp + np.where(known, ar_pre, 0.0), td + np.where(known, ar_dec, 0.0), esrc


def _tp_columns(opt: pd.DataFrame, cat: pd.DataFrame, wl: GenerationWorkload) -> pd.DataFrame:
    """``tensor_parallel`` (GPUs the model is split over: 1 unless a multi-GPU instance) and
    ``tp_gpu`` per option; a memory-bound infeasible option on one GPU says which instances fit."""
    from .tensor_parallel import weights_fit_hint

    cidx = cat.set_index("name")
    names = opt["catalog_name"].astype(str)
    has = "tensor_parallel" in cidx.columns
    opt["tensor_parallel"] = [float(cidx.at[n, "tensor_parallel"]) if n and has and
                              pd.notna(cidx.at[n, "tensor_parallel"]) else 1.0 for n in names]
    opt["tp_gpu"] = [str(cidx.at[n, "tp_gpu"]) if n and "tp_gpu" in cidx.columns and
                     pd.notna(cidx.at[n, "tp_gpu"]) else n for n in names]
    mem = (~opt["feasible"].astype(bool)) & opt["binding_constraint"].astype(str).str.contains("memory") \
        & (opt["tensor_parallel"] <= 1)
    if mem.any() and "param_bytes" in opt.columns:
        opt.loc[mem, "infeasible_reason"] = [
            r + weights_fit_hint(float(b), n, wl.memory_fraction, cat)
            for r, b, n in zip(opt.loc[mem, "infeasible_reason"], opt.loc[mem, "param_bytes"], names[mem])]
    return opt


def _unprojected(gen: pd.DataFrame, allrows: pd.DataFrame, targets: list[str]) -> list[str]:
    """``"cand to T"`` for each candidate x target with measured rows elsewhere but no projected row."""
    out = []
    done = set(zip(allrows.loc[allrows["provenance"] == "projected", "candidate"],
                   allrows.loc[allrows["provenance"] == "projected", "hardware"]))
    for cand, g in gen.groupby("candidate", sort=False):
        for t in targets:
            if (cand, t) not in done and (g["hardware"] != t).any():
                out.append(f"{cand} to {t}")
    return out


def _kv_tokens(rows: pd.DataFrame, tokens: float) -> np.ndarray:
    """Tokens' worth of KV cache one sequence of ``tokens`` holds per row: capped at
    ``kv_window_tokens`` on the windowed share of layers (:func:`effplan.planning.kv_window.kv_tokens_held`)."""
    from .kv_window import kv_tokens_held

    def col(name: str) -> np.ndarray:
        return pd.to_numeric(rows[name], errors="coerce").to_numpy(float) if name in rows else \
            np.full(len(rows), np.nan)

    return kv_tokens_held(np.full(len(rows), float(tokens)), col("kv_window_tokens"), col("kv_window_layer_share"))


def _mark_low_coverage(gen: pd.DataFrame) -> pd.DataFrame:
    """Rows with FLOPs less than 99% counted: marked in ``efficiency_source`` (so every option and
    projection planned from them says so) and one :class:`PlanWarning` (effplan.planning.flop_coverage)."""
    from .flop_coverage import coverage_mark, low_coverage

    low = low_coverage(gen)
    if not low.any():
        return gen
    gen = gen.copy()
    cov = gen["flops_coverage"].astype(float).to_numpy()
    marks = np.array([coverage_mark(c) if lo else "" for c, lo in zip(cov, low, strict=True)], dtype=object)
    src = gen["efficiency_source"].astype(str).to_numpy(object)
    gen["efficiency_source"] = np.where(low, src + "; " + marks, src)
    gen["flops_note"] = marks
    names = sorted(set(gen.loc[low, "candidate"].astype(str)))
    warnings.warn(f"effplan.plan: the FLOPs of {', '.join(map(repr, names))} are not fully counted "
                  f"(flops_coverage as low as {np.nanmin(cov[low]):.0%}): their FLOP figures are lower "
                  "bounds, so compute-bound projections from them are too fast (efficiency_source says "
                  "so); see FlopCount.unsupported", PlanWarning, stacklevel=4)
    return gen


def plan_notes(summary: pd.DataFrame) -> list[str]:
    """What a reader of a generation plan must know that the figures do not show: options whose
    memory was not checked (``memory_check``), one line each."""
    if "memory_check" not in summary.columns:
        return []
    s = summary[summary["memory_check"].astype(str) != "checked"]
    notes = [f"{c} on {h}: memory {m}" for c, h, m in zip(s["candidate"], s["hardware"], s["memory_check"])]
    if "efficiency_source" in summary.columns:
        low = summary["efficiency_source"].astype(str).str.contains("flops_coverage <", regex=False)
        notes += [f"{c} on {h}: FLOPs not fully counted (lower bounds; compute-bound figures optimistic)"
                  for c, h in zip(summary.loc[low, "candidate"], summary.loc[low, "hardware"])]
    return notes


# --------------------------------------------------------------------------------------- options
def _options(rows: pd.DataFrame, wl: GenerationWorkload, cat: pd.DataFrame) -> pd.DataFrame:
    """One option per candidate x hardware: the chosen concurrency and its figures."""
    cidx = cat.set_index("name")
    match = _match_map(rows["hardware"], cat)
    P, N = wl.prompt_tokens, wl.output_tokens
    out = []
    for (cand, hw), g in rows.groupby(["candidate", "hardware"], sort=False):
        cname = match[hw]
        mem_gb = float(cidx.at[cname, "memory_gb"]) if cname and pd.notna(cidx.at[cname, "memory_gb"]) else np.nan
        limit = wl.memory_fraction * mem_gb * _cat.MEMORY_GB_BYTES   # vendors' HBM "GB" are GiB
        rec: dict[str, Any] = {"candidate": cand, "hardware": hw, "catalog_name": cname,
                               "provenance": g["provenance"].iloc[-1], "energy_source": g["energy_source"].iloc[-1],
                               "memory_limit_gb": limit / 1e9, "memory_limit_gib": limit / 2**30,
                               "memory_check": "checked" if np.isfinite(limit) else
                               f"not checked: the memory of {hw!r} is not in the catalog",
                               "projected_from": g["projected_from"].iloc[-1] if "projected_from" in g else "",
                               "efficiency": g["efficiency"].iloc[-1] if "efficiency" in g else np.nan,
                               "efficiency_source": g["efficiency_source"].iloc[-1]
                               if "efficiency_source" in g else "measured",
                               "perplexity": g["perplexity"].dropna().iloc[-1] if g["perplexity"].notna().any()
                               else np.nan,
                               "quality": g["quality"].dropna().iloc[-1] if g["quality"].notna().any() else np.nan,
                               "param_bytes": float(pd.to_numeric(g["param_bytes"], errors="coerce").iloc[-1])
                               if "param_bytes" in g else np.nan}
        notes = g["projection_note"].fillna("").astype(str) if "projection_note" in g else None
        if notes is not None and (notes != "").all():   # e.g. dynamic int8 projected to a GPU
            rec.update(feasible=False, binding_constraint="", infeasible_reason=notes.iloc[0])
            out.append(rec)
            continue
        if notes is not None:   # rows refused (strict: not stable) are not used
            g = g[(notes == "").to_numpy()]
        at_or_above = g.loc[g["prompt_tokens"] >= P, "prompt_tokens"]
        if at_or_above.empty:
            rec.update(feasible=False, binding_constraint="",
                       infeasible_reason=f"no measured prompt length >= {P} (measured: "
                                         f"{sorted(int(x) for x in g['prompt_tokens'].unique())}); "
                                         "measure one at or above the workload's prompt_tokens")
            out.append(rec)
            continue
        ctx_max = pd.to_numeric(g["context_tokens"], errors="coerce").min() if "context_tokens" in g else np.nan
        if np.isfinite(ctx_max) and P + N > ctx_max:
            rec.update(feasible=False, binding_constraint="context",
                       infeasible_reason=f"prompt + output ({P} + {N} = {P + N} tokens) exceed the model's "
                                         f"context of {int(ctx_max)} tokens (context_tokens, the model's "
                                         "max positions)")
            out.append(rec)
            continue
        p_row = float(at_or_above.min())
        s = g[g["prompt_tokens"] == p_row].sort_values("batch_size", kind="mergesort")
        s = s.drop_duplicates("batch_size", keep="last")
        c_max = float(s["batch_size"].max())
        # concurrencies between measured neighbours: log-log, monotone, never beyond (batching)
        extra = ("tpot_mean_ms",) if "tpot_mean_ms" in s and s["tpot_mean_ms"].notna().all() else ()
        s = _batching.interpolate_batches(s, ["candidate", "hardware"], columns=_INTERPOLATED + extra,
                                          latency_columns=_INTERPOLATED[:4],
                                          required=("ttft_p95_ms", "tpot_p95_ms"))
        s = s.sort_values("batch_size", kind="mergesort").reset_index(drop=True)
        c = s["batch_size"].to_numpy(float)
        pbytes, kvb = s["param_bytes"].to_numpy(float), s["kv_cache_bytes_per_token"].to_numpy(float)
        need = pbytes + c * _kv_tokens(s, P + N) * kvb
        if np.isfinite(limit) and not (np.isfinite(pbytes) & np.isfinite(kvb)).all():
            # rows without model facts (e.g. imported from a serving engine's benchmark without
            # config=): NaN bytes never "fit" silently -- the check is skipped and said so
            rec["memory_check"] = NO_MODEL_FACTS
        # waiting for a slot at the planned utilization (effplan.planning.slot_queue): TTFT p95 + wait p95
        tpot_cap = capacity_tpot_ms(s["tpot_p50_ms"].to_numpy(float),
                                    s["tpot_mean_ms"].to_numpy(float) if "tpot_mean_ms" in s else np.nan)
        wait95 = slot_wait_ms(s["ttft_p50_ms"].to_numpy(float) + N * tpot_cap, c, wl.target_utilization)[1]
        ttft_e2e = s["ttft_p95_ms"].to_numpy(float) + wait95
        bad = {
            "ttft": ttft_e2e > wl.slo_ttft_p95_ms if wl.slo_ttft_p95_ms else
            np.zeros(len(s), bool),
            "tpot": s["tpot_p95_ms"].to_numpy(float) > wl.slo_tpot_p95_ms if wl.slo_tpot_p95_ms else
            np.zeros(len(s), bool),
            "memory": need > limit if rec["memory_check"] == "checked" else np.zeros(len(s), bool),
        }
        ok = ~(bad["ttft"] | bad["tpot"] | bad["memory"])

        def violated(i: int) -> str:
            return "+".join(k for k in CONSTRAINTS if bad[k][i])

        rec["prompt_tokens_measured"] = p_row
        if not ok.any():
            why = violated(0)
            rec.update(feasible=False, binding_constraint=why, ttft_p95_ms=float(s["ttft_p95_ms"].iloc[0]),
                       tpot_p95_ms=float(s["tpot_p95_ms"].iloc[0]), memory_needed_gb=need[0] / 1e9,
                       memory_needed_gib=need[0] / 2**30, ttft_e2e_p95_ms=float(ttft_e2e[0]),
                       slot_wait_p95_ms=float(wait95[0]),
                       infeasible_reason=f"even the smallest measured concurrency ({int(c[0])}) violates "
                                         f"{why} at prompt length {int(p_row)}")
            out.append(rec)
            continue
        i = int(np.flatnonzero(ok)[-1])
        r = s.iloc[i]
        rec.update(provenance=r["provenance"], energy_source=r["energy_source"])  # the chosen row's labels
        rec.update({c: r[c] for c in FLAG_COLUMNS if c in r.index})
        if "efficiency_source" in s:
            rec.update(efficiency=r["efficiency"], efficiency_source=r["efficiency_source"])
        rec.update(feasible=True, infeasible_reason="", concurrency=c[i],
                   concurrency_source=("littles-law" if r["batch_source"] == "measured"
                                       and str(r.get("concurrency_source", "")) == "littles-law"
                                       else r["batch_source"]),
                   concurrency_neighbours=r["batch_neighbours"],
                   concurrency_note="" if c[i] < c_max else
                   f"the largest measured concurrency ({c_max:g}) was chosen: measure concurrency "
                   f"{_batching.next_batch_to_measure(c_max)} to go further (never extrapolated)",
                   binding_constraint=violated(i + 1) if i + 1 < len(s) else "max-measured",
                   ttft_p50_ms=float(r["ttft_p50_ms"]), ttft_p95_ms=float(r["ttft_p95_ms"]),
                   tpot_p50_ms=float(r["tpot_p50_ms"]), tpot_p95_ms=float(r["tpot_p95_ms"]),
                   tpot_capacity_ms=float(tpot_cap[i]), slot_wait_p95_ms=float(wait95[i]),
                   ttft_e2e_p95_ms=float(ttft_e2e[i]), memory_needed_gb=need[i] / 1e9,
                   memory_needed_gib=need[i] / 2**30,
                   energy_per_prompt_token_j=float(r["energy_per_prompt_token_j"]),
                   energy_per_output_token_j=float(r["energy_per_output_token_j"]),
                   idle_power_w=float(r["idle_power_w"]))
        out.append(rec)
    opt = pd.DataFrame(out)
    for col in FLAG_COLUMNS:   # infeasible options have no chosen row: not flagged
        if col not in opt:
            opt[col] = np.nan
    opt["timing_unstable"] = opt["timing_unstable"].fillna(False).astype(bool)
    for col in ("concurrency_source", "concurrency_neighbours", "concurrency_note"):
        opt[col] = opt[col].fillna("") if col in opt else ""
    for col in ("concurrency", "prompt_tokens_measured", "ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms",
                "tpot_p95_ms", "tpot_capacity_ms", "slot_wait_p95_ms", "ttft_e2e_p95_ms",
                "memory_needed_gb", "memory_needed_gib", "energy_per_prompt_token_j",
                "energy_per_output_token_j", "idle_power_w"):
        if col not in opt:
            opt[col] = np.nan
        opt[col] = opt[col].astype(float)
    return opt


# ---------------------------------------------------------------------------------------- engine
def _engine(a: Mapping[str, np.ndarray], wl: GenerationWorkload, pr: Prices, traffic: np.ndarray,
            growth: np.ndarray, pmult: np.ndarray, plen: np.ndarray, olen: np.ndarray,
            lat: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Monthly figures for K options x M months x S samples (arrays (K, M, S)); ``lat`` (K, S):
    latency multipliers of TTFT and TPOT per option and sample (None: exact)."""
    m = np.arange(wl.months, dtype=float)[:, None]
    daily = wl.requests_per_day * traffic[None, :] * (1.0 + growth[None, :]) ** m     # (M, S)
    requests = daily * wl.hours_per_month / 24.0
    peak = daily / S_PER_DAY * wl.peak_to_average
    P = wl.prompt_tokens * plen[None, None, :]                                        # (1, 1, S)
    N = wl.output_tokens * olen[None, None, :]
    ttft = a["ttft_p50_ms"][:, None, None] * plen[None, None, :]
    tpot = a["tpot_capacity_ms"][:, None, None]   # the mean step where measured (slot_queue)
    if lat is not None:
        ttft = ttft * lat[:, None, :]
        tpot = tpot * lat[:, None, :]
    rate = a["concurrency"][:, None, None] / ((ttft + N * tpot) / 1000.0)
    inst = np.ceil(peak[None] / (rate * wl.target_utilization) - 1e-9)
    np.maximum(inst, wl.min_replicas, out=inst)
    inst_h = inst * wl.hours_per_month
    epr = P * a["energy_per_prompt_token_j"][:, None, None] + N * a["energy_per_output_token_j"][:, None, None]
    idle_s = np.maximum(inst_h * S_PER_HOUR - requests[None] / rate, 0.0)
    energy_kwh = (requests[None] * epr + a["idle_power_w"][:, None, None] * idle_s) / J_PER_KWH * pr.pue
    if pr.mode == "cloud":
        cost = inst_h * a["price_per_hour"][:, None, None]
    else:
        cost = inst * a["capex_per_month"][:, None, None] + energy_kwh * pr.electricity_price_per_kwh
    cost = cost * pmult[None, None, :]
    return {"requests": requests, "peak": peak, "rate": rate, "instances": inst, "instance_hours": inst_h,
            "cost": cost, "energy_kwh": energy_kwh, "output_tokens": requests[None] * N, "epr": epr}


def _samples(unc: Uncertainty, wl: GenerationWorkload, samples: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    tr, gr, pm = _workload_draws(rng, unc, wl.monthly_growth, samples)
    tri = lambda rngs: _tri(rng, rngs[0], 1.0, rngs[1], samples) if rngs else np.ones(samples)  # noqa: E731
    pl = tri(getattr(unc, "prompt_tokens", None))
    ol = tri(getattr(unc, "output_tokens", None))
    return tr, gr, pm, pl, ol


def plan_generation(rows: pd.DataFrame, wl: GenerationWorkload, pr: Prices, cat: pd.DataFrame,
                    targets: list[str], samples: int = 0, seed: int = 0, unc: Uncertainty | None = None,
                    assumed_efficiency: float = ASSUMED_EFFICIENCY
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(monthly, quarterly, summary) frames of a generation plan from validated schema ``rows``
    (any mode; the ``mode="generation"`` ones are used). See the module docstring."""
    gen = rows[rows["mode"] == "generation"]
    if gen.empty:
        raise ValidationError("mode", "no mode='generation' rows in the measurements for the "
                                      "GenerationWorkload: measure with effplan.measure(..., "
                                      "mode='generation') or type rows in by hand")
    gen = gen.drop_duplicates(["candidate", "hardware", "batch_size", "prompt_tokens"], keep="last")
    gen = gen.assign(projected_from="", efficiency=np.nan, efficiency_source=np.where(
        gen["provenance"] == "measured", "measured", gen["provenance"]))
    # the stability rule (effplan.planning.stability): rows used although not stable are marked
    # in efficiency_source; rows refused (strict) are unusable with the reason, here and on
    # every target projected from them
    mark = gen["plan_mark"].astype(str).to_numpy() if "plan_mark" in gen else np.full(len(gen), "")
    gen["efficiency_source"] = np.where(mark != "", np.char.add("measured, ", mark.astype("U")),
                                        gen["efficiency_source"].to_numpy(str))
    refused = gen["plan_note"].astype(str).to_numpy() if "plan_note" in gen else np.full(len(gen), "")
    gen["projection_note"] = refused
    gen = _mark_low_coverage(gen)
    proj = project_generation(gen.drop(columns=["projected_from", "efficiency", "efficiency_source",
                                                "projection_note"]), targets, cat, assumed_efficiency)
    if len(proj) and "plan_note" in proj:
        note = proj["plan_note"].astype(str)
        src = proj["projected_from"].astype(str)
        proj["projection_note"] = np.where((note != "") & (proj["projection_note"].astype(str) == ""),
                                           "not projected from " + src + ": " + note,
                                           proj["projection_note"].astype(str))
    if len(proj) and "timing_unstable" in proj:
        shaky = proj["timing_unstable"].fillna(False).to_numpy(bool)
        proj["efficiency_source"] = np.where(
            shaky, proj["efficiency_source"].astype(str) + "; calibrated on a measurement that is "
            "NOT stable (timed on a busy machine): flagged", proj["efficiency_source"].astype(str))
    own = gen["serving_dtype"].fillna("").astype(str) == "" if "serving_dtype" in gen else slice(None)
    allrows = pd.concat([gen[own], proj], ignore_index=True)   # serving-dtype copies exist only projected
    opt = _tp_columns(_attach_prices(_options(allrows, wl, cat), pr, cat), cat, wl)
    no_facts = opt.loc[opt["memory_check"] == NO_MODEL_FACTS, "candidate"].unique()
    if len(no_facts):
        warnings.warn(f"effplan.plan: no model facts for {', '.join(map(repr, no_facts))} (param_bytes / "
                      "kv_cache_bytes_per_token unknown): the KV-cache memory fit is NOT checked for them "
                      "(memory_check says so). Import the benchmark with config=<the model's config>, or "
                      "type the two columns in", PlanWarning, stacklevel=3)
    missing = _unprojected(gen, allrows, targets)
    if missing:
        warnings.warn("effplan.plan: could not project " + "; ".join(missing) + ": the rows lack the "
                      "figures a roofline needs (param_bytes and flops_per_prompt_token / "
                      "flops_per_output_token, with a dtype). Import the benchmark with config=<the "
                      "model's config>, or measure on that hardware", PlanWarning, stacklevel=3)
    unchecked = opt.loc[opt["memory_check"].str.startswith("not checked: the memory"), "hardware"].unique()
    if len(unchecked):
        warnings.warn(f"effplan.plan: the memory of {', '.join(map(repr, unchecked))} is not in the catalog, "
                      "so the KV-cache memory fit is NOT checked there (memory_check says so); pass a "
                      "catalog with memory_gb for it", PlanWarning, stacklevel=3)
    if pr.mode == "cloud":
        miss = opt.loc[opt["price_per_hour_usd"].isna() & opt["feasible"], "hardware"].unique()
        if len(miss):
            warnings.warn(f"effplan.plan: no price per hour for {', '.join(map(repr, miss))}: their cost "
                          "is NaN; pass Prices(price_per_hour={...})", PlanWarning, stacklevel=3)
    K, M = len(opt), wl.months
    feasible = opt["feasible"].to_numpy(bool)
    arrs = {k: np.where(feasible, opt[k].to_numpy(float), np.nan) for k in (
        "concurrency", "ttft_p50_ms", "tpot_capacity_ms", "energy_per_prompt_token_j",
        "energy_per_output_token_j", "idle_power_w")}
    arrs["price_per_hour"] = opt["price_per_hour_usd"].to_numpy(float)
    arrs["capex_per_month"] = opt["capex_usd"].to_numpy(float) / pr.lifetime_months
    one = np.ones(1)
    base = _engine(arrs, wl, pr, one, np.full(1, wl.monthly_growth), one, one, one)
    sq = {k: v[..., 0] for k, v in base.items()}
    requests = np.broadcast_to(sq["requests"], (K, M))
    out_tok = np.broadcast_to(sq["output_tokens"], (K, M))
    cost, energy, inst, inst_h = sq["cost"], sq["energy_kwh"], sq["instances"], sq["instance_hours"]
    g = pr.grid_intensity_gco2_per_kwh / G_PER_KG
    co2 = energy * g
    rate = base["rate"][:, 0, 0]
    epr = base["epr"][:, 0, 0]

    pct_m: dict[str, np.ndarray] = {}
    pct_q: dict[str, np.ndarray] = {}
    pct_t: dict[str, np.ndarray] = {}
    if samples > 0:
        draws = _samples(unc or GenerationUncertainty(), wl, samples, seed)
        fk = np.flatnonzero(feasible)
        lat = None
        shaky = opt["timing_unstable"].to_numpy(bool)[fk]
        if getattr(unc or GenerationUncertainty(), "measurement", True) and shaky.any():
            # options timed on a busy machine: TTFT and TPOT off by the latency error, sigma =
            # X / 1.2816 (stability.latency_sigma); stable options exact, as before
            sig = latency_sigma(np.zeros(len(fk)), shaky, opt["timing_spread_rel"].to_numpy(float)[fk])
            z = np.random.default_rng([seed, 3]).standard_normal((len(fk), samples))
            lat = np.maximum(1.0 + np.clip(z, -3.0, 3.0) * sig[:, None], 0.05)
        mc = _engine({k: v[fk] for k, v in arrs.items()}, wl, pr, *draws, lat=lat)
        for name, x in (("cost_usd", mc["cost"]), ("energy_kwh", mc["energy_kwh"])):
            for d, val, shape in ((pct_m, x, (3, K, M)), (pct_q, _quarter_sum(x, M), None),
                                  (pct_t, x.sum(axis=1), (3, K))):
                pc = _percentiles(val)
                full = np.full(shape or (3, K, pc.shape[-1]), np.nan)
                full[:, fk] = pc
                d[name] = full
        for d in (pct_m, pct_q, pct_t):
            d["co2_kg"] = d["energy_kwh"] * g

    with np.errstate(divide="ignore", invalid="ignore"):
        cpm = cost / out_tok * 1e6
    rep = lambda col: np.repeat(opt[col].to_numpy(), M)  # noqa: E731
    month = np.tile(np.arange(M), K)
    wh = epr / J_PER_WH
    monthly = {
        "candidate": rep("candidate"), "hardware": rep("hardware"), "catalog_name": rep("catalog_name"),
        "provenance": rep("provenance"), "energy_source": rep("energy_source"),
        "month": month, "quarter": month // 3 + 1, "requests": requests.ravel(), "output_tokens": out_tok.ravel(),
        "avg_requests_per_s": (requests / (wl.hours_per_month * S_PER_HOUR)).ravel(),
        "peak_requests_per_s": np.broadcast_to(sq["peak"], (K, M)).ravel(),
        "concurrency": rep("concurrency"), "concurrency_source": rep("concurrency_source"),
        "concurrency_neighbours": rep("concurrency_neighbours"),
        "prompt_tokens_measured": rep("prompt_tokens_measured"),
        "ttft_p95_ms": rep("ttft_p95_ms"), "tpot_p95_ms": rep("tpot_p95_ms"),
        "memory_needed_gb": rep("memory_needed_gb"), "memory_limit_gb": rep("memory_limit_gb"),
        "requests_per_s_per_instance": np.repeat(rate, M),
        "capacity_requests_per_s": np.repeat(rate * wl.target_utilization, M),
        "instances": inst.ravel(), "instance_hours": inst_h.ravel(),
        "price_per_hour_usd": rep("price_per_hour_usd"), "cost_usd": cost.ravel(),
        "energy_kwh": energy.ravel(), "co2_kg": co2.ravel(), "cost_per_1m_output_tokens_usd": cpm.ravel(),
        "energy_per_response_wh": np.repeat(wh, M), "binding_constraint": rep("binding_constraint"),
        "feasible": rep("feasible"), "infeasible_reason": rep("infeasible_reason"),
        "perplexity": rep("perplexity"), "quality": rep("quality"),
    }
    for name, p in pct_m.items():
        for j, q in enumerate(_PCT):
            monthly[f"{name}_p{q}"] = p[j].ravel()

    Q = -(-M // 3)
    qrep = lambda col: np.repeat(opt[col].to_numpy(), Q)  # noqa: E731
    qs = {k: _quarter_sum(np.ascontiguousarray(v), M) for k, v in (
        ("requests", requests), ("output_tokens", out_tok), ("instance_hours", inst_h), ("cost_usd", cost),
        ("energy_kwh", energy), ("co2_kg", co2))}
    with np.errstate(divide="ignore", invalid="ignore"):
        q_cpm = qs["cost_usd"] / qs["output_tokens"] * 1e6
    quarterly = {
        "candidate": qrep("candidate"), "hardware": qrep("hardware"), "catalog_name": qrep("catalog_name"),
        "provenance": qrep("provenance"), "energy_source": qrep("energy_source"),
        "quarter": np.tile(np.arange(1, Q + 1), K),
        "months_in_quarter": np.tile(np.minimum(3, M - 3 * np.arange(Q)), K),
        **{k: v.ravel() for k, v in qs.items()},
        "instances": _quarter_sum(inst, M, "max").ravel(), "cost_per_1m_output_tokens_usd": q_cpm.ravel(),
        "concurrency": qrep("concurrency"), "energy_per_response_wh": np.repeat(wh, Q),
        "binding_constraint": qrep("binding_constraint"), "feasible": qrep("feasible"),
        "infeasible_reason": qrep("infeasible_reason"), "perplexity": qrep("perplexity"),
        "quality": qrep("quality"),
    }
    for name, p in pct_q.items():
        for j, q in enumerate(_PCT):
            quarterly[f"{name}_p{q}"] = p[j].ravel()

    tot_cost = cost.sum(axis=1)
    tot_tok = out_tok.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tot_cpm = tot_cost / tot_tok * 1e6
    summary = {c: opt[c].to_numpy() for c in (
        "candidate", "hardware", "catalog_name", "provenance", "energy_source", "feasible",
        "infeasible_reason", "concurrency", "concurrency_source", "concurrency_neighbours",
        "binding_constraint", "prompt_tokens_measured", "ttft_p95_ms", "slot_wait_p95_ms", "ttft_e2e_p95_ms",
        "tpot_p95_ms", "tpot_capacity_ms", "memory_needed_gb", "memory_needed_gib", "memory_limit_gb",
        "memory_limit_gib")}
    summary.update({
        "requests_per_s_per_instance": rate, "capacity_requests_per_s": rate * wl.target_utilization,
        "price_per_hour_usd": opt["price_per_hour_usd"].to_numpy(float),
        "tensor_parallel": opt["tensor_parallel"].to_numpy(float), "tp_gpu": opt["tp_gpu"].to_numpy(),
        "memory_check": opt["memory_check"].to_numpy(), "concurrency_note": opt["concurrency_note"].to_numpy(),
        "price_source": opt["price_source"].to_numpy() if pr.mode == "cloud" else
        np.char.add("on-prem capex: ", opt["capex_source"].to_numpy(str).astype("U")),
        "instances_first_month": inst[:, 0], "instances_max": inst.max(axis=1),
        "requests": requests.sum(axis=1), "output_tokens": tot_tok, "instance_hours": inst_h.sum(axis=1),
        "cost_usd": tot_cost, "first_quarter_cost_usd": qs["cost_usd"][:, 0],
        "cost_per_1m_output_tokens_usd": tot_cpm, "energy_kwh": energy.sum(axis=1), "co2_kg": co2.sum(axis=1),
        "energy_per_response_wh": wh, "perplexity": opt["perplexity"].to_numpy(float),
        "quality": opt["quality"].to_numpy(float), "efficiency": opt["efficiency"].to_numpy(float),
        "efficiency_source": opt["efficiency_source"].to_numpy(), "projected_from": opt["projected_from"].to_numpy(),
        **{c: opt[c].to_numpy() for c in FLAG_COLUMNS}, "stability_note": option_notes(opt),
    })
    for name, p in pct_t.items():
        for j, q in enumerate(_PCT):
            summary[f"{name}_p{q}"] = p[j]
    summary["energy_per_output_token_j"] = opt["energy_per_output_token_j"].to_numpy(float)
    summary_df = pd.DataFrame(summary).sort_values(["feasible", "cost_usd"], ascending=[False, True],
                                                   kind="mergesort", na_position="last").reset_index(drop=True)
    # which energy each figure holds, and the levels side by side (effplan.planning.energy_boundary)
    summary_df, monthly_df, quarterly_df = add_energy_levels(summary_df, pd.DataFrame(monthly),
                                                             pd.DataFrame(quarterly), cat, pr.pue)
    return monthly_df, quarterly_df, summary_df


# ------------------------------------------------------------------------------- notebook views
def memory_fit(measurements: Any, hardware: Iterable[str], prompt_tokens: int, output_tokens: int, *,
               memory_fraction: float = MEMORY_FRACTION, catalog: Any = None) -> pd.DataFrame:
    """Where the KV cache makes memory bind: per candidate x catalog hardware, the largest
    concurrency whose weights + KV cache fit, ``floor((memory_fraction * memory_gb * 1e9 -
    param_bytes) / ((prompt_tokens + output_tokens) * kv_cache_bytes_per_token))`` (0 when the
    weights alone do not fit), from each candidate's measured (or entered) generation rows."""
    df = _measurement_frame(measurements)
    cols = [c for c in ("param_bytes", "kv_cache_bytes_per_token", "kv_window_tokens", "kv_window_layer_share")
            if c in df.columns]
    gen = df[df["mode"] == "generation"].groupby("candidate", sort=False)[cols].last()
    if gen.empty:
        raise ValidationError("mode", "no mode='generation' rows to read the KV-cache size from")
    cat = _cat.load_catalog(catalog)
    ctx = int(prompt_tokens) + int(output_tokens)
    rows = []
    for hw in hardware:
        row = _cat.find_hardware(hw, cat)
        if row is None:
            raise ValidationError("hardware", f"unknown hardware {hw!r}")
        limit = memory_fraction * float(row["memory_gb"]) * _cat.MEMORY_GB_BYTES
        for cand, r in gen.iterrows():
            per_seq = float(_kv_tokens(pd.DataFrame([r]), ctx)[0]) * r["kv_cache_bytes_per_token"]
            c = max(0.0, math.floor((limit - r["param_bytes"]) / per_seq)) if per_seq > 0 else np.nan
            rows.append({"candidate": cand, "hardware": str(row["name"]), "param_gb": r["param_bytes"] / 1e9,
                         "kv_cache_mb_per_sequence": per_seq / 1e6, "context_tokens": ctx,
                         "memory_limit_gb": limit / 1e9, "max_concurrency_memory": c})
    return pd.DataFrame(rows)


def token_economics(plan: Any, baseline: str) -> pd.DataFrame:
    """Per feasible candidate x hardware of a generation plan: cost per 1M output tokens, energy per
    response, perplexity, and each as a ratio to ``baseline`` on the same hardware."""
    s = plan.summary
    if "cost_per_1m_output_tokens_usd" not in s.columns:
        raise ValidationError("plan", "not a generation plan (no cost_per_1m_output_tokens_usd)")
    cols = ["candidate", "hardware", "provenance", "concurrency", "binding_constraint",
            "cost_per_1m_output_tokens_usd", "energy_per_response_wh", "perplexity"]
    out = s.loc[s["feasible"].astype(bool), cols].copy()
    base = out[out["candidate"] == baseline].set_index("hardware")
    if base.empty:
        raise ValidationError("baseline", f"{baseline!r} has no feasible option in the plan")
    for col, name in (("cost_per_1m_output_tokens_usd", "cost_vs_baseline"),
                      ("energy_per_response_wh", "energy_vs_baseline"), ("perplexity", "perplexity_vs_baseline")):
        out[name] = out[col] / out["hardware"].map(base[col])
    return out.reset_index(drop=True)
