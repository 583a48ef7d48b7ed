"""Project what candidates will cost, per month and per quarter: inference and training.

numpy/pandas only (never imports torch). Everything is vectorized over
candidates x hardware x months x Monte Carlo samples.

Baseline inference model (the default; every figure below is in the output frames)
---------------------------------------------------------------------------------
For month ``m`` (0-based; quarter Q1 = months 0-2, Q2 = months 3-5, ...):

* ``requests_m = requests_per_day * (1 + monthly_growth) ** m * hours_per_month / 24``;
  ``items_m = requests_m * items_per_request``.
* operating point, per candidate x hardware: among the measured batch sizes and the points
  interpolated between measured neighbours (:mod:`effplan.batching`: log-log, monotone,
  ``batch_source``/``batch_neighbours``; never extrapolated, ``batch_note`` says "measure batch
  N to go further"), the highest ``throughput_items_per_s`` (ties: the smaller batch) whose
  **end-to-end** p95 meets ``slo_p95_ms``: ``latency_e2e_p95_ms = batch_fill_p95_ms +
  queue_p95_ms + latency_p95_ms`` (:mod:`effplan.queueing`): batch formation at the quietest
  per-instance rate (capped by ``max_batch_wait_ms``; a batch that cannot fill on average within
  it is not used), Allen-Cunneen queueing at the busiest per-instance utilization (at most
  ``target_utilization``), plus the batch's own p95. Without a target: the highest throughput
  among batches that fill. None qualifies -> the row is *infeasible*: ``feasible=False``,
  ``infeasible_reason`` says why (fill + queue + service at the best point), and instances,
  cost, energy and CO2 are NaN (never a silent zero).
* ``capacity_items_per_s = throughput_items_per_s(chosen batch) * target_utilization``;
  ``peak_items_per_s = items_m / (hours_per_month * 3600) * peak_to_average``;
  ``instances = max(min_replicas, ceil(peak_items_per_s / capacity_items_per_s))``, provisioned
  all month (the ratio is multiplied by ``1 - 1e-9`` before the ceiling to absorb floating-point
  error: a relative margin, so any traffic above 0 gets at least one instance).
* ``instance_hours = instances * hours_per_month``.
* cost, cloud mode: ``instance_hours * price_per_hour``; on-premises mode:
  ``instances * capex_usd / lifetime_months + energy_kwh * electricity_usd_per_kwh``.
* ``energy_kwh = (items * energy_per_item_j + idle_w * idle_s) / 3.6e6 * pue`` with
  ``idle_s = max(0, instance_hours * 3600 - items / throughput_items_per_s)`` and ``idle_w =
  min(idle_power_w, energy_per_item_j * throughput_items_per_s)`` (idle power counted at most at
  the busy power, so more traffic never costs less; :mod:`effplan.schema` warns about, and names,
  rows whose idle power is above their busy power);
  ``co2_kg = energy_kwh * grid_gco2_per_kwh / 1000``.
* ``cost_per_1k_requests_usd = cost_usd / requests * 1000``; NaN (never inf) when there are no
  requests, with a PlanWarning saying so.
* Every figure is finite: an input that would overflow a float (e.g. ``energy_per_item_j=1e308``,
  growth 10 over 600 months) raises ValidationError naming it.
* Hardware names: a measured name is catalog hardware only when it equals a catalog name or
  alias ignoring case (names differing only in case are one hardware); anything else is its own
  hardware, priced only by ``Prices``. ``plan(hardware=[...])`` and every ``Prices`` key must
  name hardware exactly (ignoring case): an unknown target, or a price key matching no hardware
  of the plan, raises :class:`~effplan.errors.UnknownHardwareError` with the closest names.
* Optional autoscaling (``InferenceWorkload(daily_profile=[24 hourly weights])``; the default
  ``None`` is the baseline above, unchanged): the weights are normalised to mean 1 and hour ``h``
  of every day carries ``avg_items_per_s * w_h``; ``instances_h = max(min_replicas,
  ceil(avg_items_per_s * w_h * peak_to_average / capacity_items_per_s))`` (``peak_to_average`` is
  then the burst within an hour); ``instance_hours = sum_h instances_h * hours_per_month / 24``;
  ``instances`` is the busiest hour's count, ``instances_avg = instance_hours / hours_per_month``
  and ``peak_items_per_s = avg_items_per_s * max_h w_h * peak_to_average``. Cost, energy (idle
  time from these instance-hours) and CO2 follow from ``instance_hours`` as above. Scale-up is
  taken as instant.
* Quarterly rows sum months (``instances`` is the quarter's peak month); a last, partial quarter
  says so in ``months_in_quarter``.

Projection to hardware you do not own (:func:`project`)
-------------------------------------------------------
Roofline time per item ``t_roof(hw) = max(flops / peak(hw, dtype), bytes / bandwidth(hw))``
(``flops = flops_per_item``, ``bytes = bytes_per_item``; training rows use 3x both, and 3x the
operator calls; an unknown ``bytes_per_item`` drops the memory term). Launch floor per item
``launch(hw) = operator_calls / batch_size x overhead(kind)`` (``effplan/data/kernel_overhead.csv``,
:func:`effplan.reference.overhead_per_operator_s`; an unknown ``operator_calls`` drops it and
``efficiency_source`` says the projection is then optimistic). The efficiency measured locally,
``efficiency = t_roof(measured hw) / (measured time per item - launch(measured hw))`` (the launch
share counted at most half the measured time; capped at 1), calibrates the target:
``t(target) = t_roof(target) / min(efficiency, ceiling) + launch(target)``, where ``ceiling`` (GPU
targets) is the best share of int8 peak a published MLPerf Inference result reached on that
accelerator (:func:`effplan.reference.published_peak_share`). When the measured hardware is not
in the catalog the efficiency is :data:`ASSUMED_EFFICIENCY` (labelled ``assumed`` in
``efficiency_source``). A dtype the target kind cannot run (``effplan.catalog.dtype_runs_on``:
dynamic int8 on a GPU) makes the row infeasible with the reason.
Projected energy per item ``= rated_power_w * t(target)``; projected idle power
``= IDLE_POWER_FRACTION[kind] * rated_power_w``. Latencies scale by ``t(target) / t(measured)``.
Every projected row has ``provenance="projected"`` and ``energy_source="projected"``.

Training (:class:`TrainingWorkload`)
------------------------------------
``throughput`` = measured training throughput (rows with ``mode="training"``, best batch size),
or, for a candidate with no training rows, ``peak(hw, dtype) * utilization / (3 *
flops_per_item)`` (labelled projected), ``utilization`` the geometric middle of the
model-size range of ``effplan/data/training_utilization.csv`` (or an entered
``assumed_mfu``); no parameter count -> infeasible with the reason. Per run: ``items = items_per_epoch * epochs``;
``wall_clock_s = items / (throughput * devices_per_run * scaling_efficiency)``;
``device_hours = devices_per_run * wall_clock_s / 3600``;
``energy_kwh = device_hours * 3600 * energy_per_item_j * throughput / 3.6e6 * pue`` (each device
draws its measured average power for the whole run); cost = ``device_hours * price_per_hour``
(cloud) or ``device_hours * capex / (lifetime_months * 730) + energy_kwh * electricity price``
(on-prem). Per quarter: ``runs_per_quarter`` x per run.

Inference + training total (``summary.total_cost_usd``, defined once in
:func:`~effplan.planning.planner.total_cost_usd`; the dashboard's budget table reads it)
-------------------------------------------------------------------------------------------
``total_cost_usd = cost_usd + training_cost_usd`` over the horizon, for each workload planned.
A planned part without a cost (infeasible, or no price) makes the total NaN -- it is never
counted as 0 -- and ``total_note`` names the part and the reason.

Uncertainty (:class:`Uncertainty`, ``samples > 0``)
--------------------------------------------------
Each sample draws one traffic multiplier, one monthly growth rate and one price multiplier
(triangular distributions: low, base, high) held for the whole horizon, and per option a
throughput multiplier (measurement spread from ``latency_ci_rel``; an option timed on a busy
machine from its ``timing_spread_rel`` X, so its P10-P90 spans +-X, see
:mod:`effplan.planning.stability`; projected rows also the projection efficiency) and an energy multiplier by ``energy_source`` (wide for
``estimated-tdp``/``projected``, sourced in :data:`~effplan.planning.inputs.DEFAULT_ENERGY_SPREAD`).
The operating point is not re-chosen per sample. P10/P50/P90 are taken across samples of each
month, each quarter's sum and each horizon total (not sums of percentiles). ``uncertainty=``
also takes a plain dict of :class:`Uncertainty` fields.

A busy machine (:mod:`effplan.planning.stability`)
-------------------------------------------------
Rows measured ``stable=False`` are used and flagged by default (``allow_unstable=None`` ->
:data:`effplan.defaults.ALLOW_UNSTABLE`): every option planned from one carries
``timing_unstable``, ``timing_spread_rel`` (X), ``background_load`` (N) and ``stability_note``
("Timings were taken on a busy machine (background load N cores); the cost could be X% off."),
its base figures unchanged. ``allow_unstable=False`` refuses them: a candidate x hardware with
only such rows -- measured, or projected from them -- is infeasible with the reason.

Quality (``plan(..., quality=...)``)
-----------------------------------
The ``quality`` column is the candidate's own score from the measurements. Several metrics per
candidate (an ``Evaluation`` or hand-entered values, :mod:`effplan.evaluation`) are joined by
candidate into every frame: one column per metric key (``accuracy``, ``ece@noise-0.3``) and
``quality_provenance`` (``measured`` / ``entered``); they do not change any cost figure.

Money
-----
Every money column is in US dollars (``_usd``): the catalog prices are USD, and ``Prices`` takes
its overrides in USD (``Prices(currency=...)`` accepts only ``"USD"``).

Re-planning (:class:`PreparedMeasurements`)
-------------------------------------------
Validation, roofline projection and the batch choice depend only on the measurements, catalog,
targets and assumed efficiency. ``prep = prepare(measurements, hardware=...)`` does them once;
``plan(prep, inference=..., prices=...)`` reuses them (the dashboard holds one). ``plan`` given
plain measurements prepares them afresh; nothing is cached at module level.

Generation (LLM serving per token, :class:`GenerationWorkload`)
--------------------------------------------------------------
``plan(measurements, generation=GenerationWorkload(...))`` plans ``mode="generation"`` rows:
TTFT/TPOT targets, a KV-cache memory limit, cost per 1M output tokens, energy per response; the
documented baseline, projection and Monte Carlo are in :mod:`effplan.planning.generation`.
Concurrency between measured points follows the batch rules above (:mod:`effplan.batching`:
TTFT, TPOT and per-token energy interpolated log-log, monotone, ``concurrency_source`` /
``concurrency_neighbours``; never past the largest measured, ``concurrency_note`` says "measure
concurrency N to go further"). Projection to catalog GPUs is the roofline above per phase plus
the same launch floor: ``TTFT = max(c * P * flops_per_prompt_token / peak, (param_bytes + c * P *
kv) / bandwidth) / efficiency_pre + operator_calls_prefill * overhead`` and ``TPOT = max(c *
flops_per_output_token / peak, (param_bytes + c * T * kv) / bandwidth) / efficiency_dec +
operator_calls_decode * overhead`` (``T`` = the context in the middle of the response), each
efficiency calibrated on the local measurement with its launch share removed; rows without
operator counts get no floor and ``efficiency_source`` says so.

Learning curves and compute-optimal plans (:mod:`effplan.planning.learning`)
--------------------------------------------------------------------------
``fit_learning_curve`` (a saturating power law in the training-set size, seed-bootstrap
intervals, labelled speculative beyond 4x the largest size measured, refused beyond 16x),
``fit_generalization`` (the clean and a shifted curve on the same resamples, and their gap) and
``compute_optimal`` (``N_opt = G (C/6)^(beta/(alpha+beta))``, ``D_opt = C / (6 N_opt)`` from the
published fits of ``effplan/data/scaling_laws.csv``; dollars -> GPU-hours -> FLOPs at a sourced
MFU; the serving cost of that model by the generation projection). Every formula is in that
module's docstring.

Layout (one job per file, imported bottom-up)
---------------------------------------------
``inputs`` (workloads, prices, uncertainty, grid, validation, frames, name matching, constants)
and ``result`` (``Plan``, column lists) at the ground; ``engine`` (operating point, prices,
vectorized months x samples) and ``projection`` (roofline) above them; ``inference`` and
``training``, ``generation`` (one workload kind each); ``planner`` (``plan``, ``compare_scenarios``,
``PreparedMeasurements``) on top; ``frames`` (``budget_table``) reads a ``Plan``.
"""


from __future__ import annotations

from ..errors import PlanWarning
from .actuals import Actuals, actuals
from .frames import Headline, baseline_candidate, budget_table, headline, portfolio_total, rank_options
from .generation import (GenerationUncertainty, GenerationWorkload, memory_fit, project_generation,
                         token_economics)
from .inputs import (ASSUMED_EFFICIENCY, HOURS_PER_MONTH, IDLE_POWER_FRACTION, InferenceWorkload,
                     Prices, TrainingWorkload, Uncertainty, load_grid)
from .planner import PreparedMeasurements, compare_scenarios, plan, prepare, total_cost_usd
from .projection import project
from .result import (MONTHLY_COLUMNS, PERCENTILE_COLUMNS, QUARTERLY_COLUMNS, SUMMARY_COLUMNS,
                     SUMMARY_TRAINING_COLUMNS, TRAINING_COLUMNS, Plan)

__all__ = [
    "InferenceWorkload", "TrainingWorkload", "GenerationWorkload", "GenerationUncertainty", "Prices",
    "Uncertainty", "Plan", "plan", "project", "project_generation", "memory_fit", "token_economics",
    "prepare", "PreparedMeasurements", "compare_scenarios", "budget_table", "total_cost_usd",
    "load_grid", "PlanWarning", "ASSUMED_EFFICIENCY", "IDLE_POWER_FRACTION", "HOURS_PER_MONTH",
    "MONTHLY_COLUMNS", "QUARTERLY_COLUMNS", "SUMMARY_COLUMNS", "SUMMARY_TRAINING_COLUMNS",
    "PERCENTILE_COLUMNS", "TRAINING_COLUMNS",
    "rank_options", "headline", "Headline", "baseline_candidate", "portfolio_total",
    "actuals", "Actuals",
    "fit_learning_curve", "fit_generalization", "compute_optimal", "CurveFit", "CurvePrediction",
    "GeneralizationFit", "ComputePlan",
]

#: learning curves and compute-optimal plans (:mod:`effplan.planning.learning`), imported on first
#: use (they bring scipy)
_LAZY = {name: "learning" for name in ("fit_learning_curve", "fit_generalization", "compute_optimal",
                                       "CurveFit", "CurvePrediction", "GeneralizationFit", "ComputePlan")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'effplan.planning' has no attribute {name!r}")
