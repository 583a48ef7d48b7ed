"""The defaults that the CLI, the notebooks and the dashboard share (their public face).

The figures are defined once, in :mod:`effplan.settings` (the bottom layer, so that planning can
read them); the planning objects built from them in :mod:`effplan.planning.presets`. Change a
figure in :mod:`effplan.settings` and ``effplan plan``, notebooks 02-04 and
:class:`effplan.widgets.BudgetDashboard` all start from it, so the same inputs give the same cost
everywhere. (The planning dataclasses keep their own neutral defaults, e.g. ``Prices(pue=1.0)``
counts IT energy only; these are the *planning assumptions* a user starts from.)

* :data:`PUE` 1.2 -- data-centre power usage effectiveness (a typical modern cloud facility).
* :data:`TARGET_UTILIZATION` 0.6 -- share of an instance's measured throughput we plan to use.
* :data:`PEAK_TO_AVERAGE` 2.0 -- capacity is sized for a peak twice the daily average.
* :data:`MONTHLY_GROWTH` 0.05, :data:`MONTHS` 12, :data:`SLO_P95_MS` 50 ms,
  :data:`GRID_REGION` "world", :data:`SAMPLES` 200 Monte-Carlo draws for the P10-P90 band.
* :func:`results_dir` -- ONE results folder: ``$EFFPLAN_RESULTS_DIR``, else ``results/`` at the
  root of the project the command runs in (the nearest folder above the working directory that
  holds ``pyproject.toml``; notebooks run in ``notebooks/`` and find the same folder), else
  ``./results``. :func:`results_file` is ``results_dir() / "measurements.jsonl"``.
* :func:`demo_requests_per_day` -- the demo traffic: the level at which the candidate tagged
  ``baseline`` needs :data:`DEMO_BASELINE_INSTANCES` instances at the first month's peak on the
  hardware it was measured on. The built-in digits models serve hundreds of thousands of items
  per second on one CPU, so any fixed "realistic" traffic fits every candidate on one instance
  and they all cost the same; scaled traffic makes the candidates differ on any machine.
* :data:`ALLOW_UNSTABLE` True -- measured rows that are NOT stable (timed on a busy machine:
  a laptop, a Binder pod, a CI runner) are used and every figure planned from them is flagged,
  with its Monte Carlo band widened by the measured spread
  (:mod:`effplan.planning.stability`). ``plan(..., allow_unstable=False)`` and the CLI's
  ``--strict-stability`` refuse them instead. ``plan()``, ``prepare()``,
  :func:`demo_requests_per_day`, the notebooks, the dashboard, ``make report`` and the CLI all
  read this one default.
* :func:`generation_workload` -- the chat workload the dashboard starts from for generation rows:
  :data:`GENERATION_REQUESTS_PER_DAY` responses a day, the largest measured prompt length (so a
  measured prompt length at or above it exists), :data:`GENERATION_OUTPUT_TOKENS` tokens out, no
  TTFT / TPOT target, and the growth / peak / utilisation / horizon above.
* :func:`start_month` -- the calendar month a new plan starts in: the month after today (UTC),
  ``"YYYY-MM"``. The CLI, notebooks and dashboard use it; the workload dataclasses keep
  ``start=None`` (relative months) unless given one.
* Budget vs actuals (:func:`effplan.actuals`): :data:`OPTION_TAG` ``"effplan-option"`` -- the
  tag key whose value ``"<candidate>@<hardware>"`` maps a billing row to an option;
  :data:`VARIANCE_BAND` 0.12 -- a month or quarter whose actual cost is more than 12% away from
  the plan is flagged (the FinOps Foundation's forecasting capability calls a forecast within
  12% of actual spend "Run" maturity); :data:`COST_COLUMN` ``"EffectiveCost"`` -- the budget
  view (amortised) of a FOCUS export.
"""

from __future__ import annotations

from .planning.presets import demo_requests_per_day, generation_workload, prices, workload
from .settings import (ALLOW_UNSTABLE, COST_COLUMN, DEMO_BASELINE_INSTANCES, GENERATION_OUTPUT_TOKENS,
                       GENERATION_REQUESTS_PER_DAY, GRID_REGION, MONTHLY_GROWTH, MONTHS, OPTION_TAG,
                       PEAK_TO_AVERAGE, PUE, RESULTS_DIR_ENV, RESULTS_FILENAME, SAMPLES, SLO_P95_MS,
                       TARGET_UTILIZATION, VARIANCE_BAND, results_dir, results_file, start_month)

__all__ = [
    "PUE", "TARGET_UTILIZATION", "PEAK_TO_AVERAGE", "MONTHLY_GROWTH", "MONTHS", "SLO_P95_MS",
    "GRID_REGION", "SAMPLES", "DEMO_BASELINE_INSTANCES", "ALLOW_UNSTABLE", "RESULTS_DIR_ENV", "RESULTS_FILENAME",
    "results_dir", "results_file", "demo_requests_per_day", "workload", "prices",
    "GENERATION_REQUESTS_PER_DAY", "GENERATION_OUTPUT_TOKENS", "generation_workload",
    "start_month", "OPTION_TAG", "VARIANCE_BAND", "COST_COLUMN",
]
