"""The one home of the defaults that the CLI, the notebooks and the dashboard share.

Change a figure here and ``effplan plan``, notebooks 02-04 and
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

import math
import os
from pathlib import Path
from typing import Any

__all__ = [
    "PUE", "TARGET_UTILIZATION", "PEAK_TO_AVERAGE", "MONTHLY_GROWTH", "MONTHS", "SLO_P95_MS",
    "GRID_REGION", "SAMPLES", "DEMO_BASELINE_INSTANCES", "ALLOW_UNSTABLE", "RESULTS_DIR_ENV", "RESULTS_FILENAME",
    "results_dir", "results_file", "demo_requests_per_day", "workload", "prices",
    "GENERATION_REQUESTS_PER_DAY", "GENERATION_OUTPUT_TOKENS", "generation_workload",
    "start_month", "OPTION_TAG", "VARIANCE_BAND", "COST_COLUMN",
]

PUE: float = 1.2
TARGET_UTILIZATION: float = 0.6
PEAK_TO_AVERAGE: float = 2.0
MONTHLY_GROWTH: float = 0.05
MONTHS: int = 12
SLO_P95_MS: float = 50.0
GRID_REGION: str = "world"
SAMPLES: int = 200
#: not-stable measured rows are used and flagged (False: refused, a strict plan)
ALLOW_UNSTABLE: bool = True
#: instances the baseline candidate needs at the first month's peak under the demo traffic
DEMO_BASELINE_INSTANCES: int = 4
#: chat responses per day the generation dashboard starts from
GENERATION_REQUESTS_PER_DAY: float = 1_000_000.0
#: tokens generated per response the generation dashboard starts from
GENERATION_OUTPUT_TOKENS: int = 256
RESULTS_DIR_ENV = "EFFPLAN_RESULTS_DIR"
#: tag key that maps a billing row to an option: ``effplan-option = <candidate>@<hardware>``
OPTION_TAG: str = "effplan-option"
#: a variance beyond +/-12% of the planned cost leaves the band (FinOps "Run" forecasting maturity)
VARIANCE_BAND: float = 0.12
#: the FOCUS cost column the variance is computed on (EffectiveCost: amortised, the budget view)
COST_COLUMN: str = "EffectiveCost"
RESULTS_FILENAME = "measurements.jsonl"


def results_dir(start: str | os.PathLike | None = None) -> Path:
    """The results folder shared by the CLI and the notebooks (see the module docstring)."""
    env = os.environ.get(RESULTS_DIR_ENV, "").strip()
    if env:
        return Path(env)
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder / "results"
    return here / "results"


def results_file(start: str | os.PathLike | None = None) -> Path:
    """``results_dir() / "measurements.jsonl"``: where ``effplan measure`` and notebook 01 write
    and notebooks 02-04 read, unless given another path."""
    return results_dir(start) / RESULTS_FILENAME


def start_month(today: Any = None) -> str:
    """The calendar month after ``today`` (a date; default: today in UTC) as ``"YYYY-MM"``: the
    month a plan made now starts in."""
    import datetime as dt

    d = today if today is not None else dt.datetime.now(dt.timezone.utc).date()
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return f"{y:04d}-{m:02d}"


def workload(**overrides: Any) -> Any:
    """:class:`effplan.InferenceWorkload` with these defaults (``requests_per_day`` required)."""
    from .planning import InferenceWorkload

    kw = dict(monthly_growth=MONTHLY_GROWTH, peak_to_average=PEAK_TO_AVERAGE,
              slo_p95_ms=SLO_P95_MS, target_utilization=TARGET_UTILIZATION, months=MONTHS)
    kw.update(overrides)
    return InferenceWorkload(**kw)


def generation_workload(measurements: Any = None, **overrides: Any) -> Any:
    """:class:`effplan.GenerationWorkload` with these defaults; ``prompt_tokens`` is the largest
    prompt length of the ``mode="generation"`` rows of ``measurements`` (512 without them)."""
    from .planning import GenerationWorkload

    prompt = 512
    df = measurements.to_frame() if hasattr(measurements, "to_frame") else measurements
    if df is not None and {"mode", "prompt_tokens"} <= set(getattr(df, "columns", ())):
        import pandas as pd

        p = pd.to_numeric(df.loc[df["mode"].astype(str) == "generation", "prompt_tokens"],
                          errors="coerce").dropna()
        if len(p):
            prompt = int(p.max())
    kw = dict(requests_per_day=GENERATION_REQUESTS_PER_DAY, prompt_tokens=prompt,
              output_tokens=GENERATION_OUTPUT_TOKENS, monthly_growth=MONTHLY_GROWTH,
              peak_to_average=PEAK_TO_AVERAGE, target_utilization=TARGET_UTILIZATION,
              months=MONTHS)
    kw.update(overrides)
    return GenerationWorkload(**kw)


def prices(**overrides: Any) -> Any:
    """:class:`effplan.Prices` with these defaults (PUE, grid region)."""
    from .planning import Prices

    kw = dict(pue=PUE, grid_region=GRID_REGION)
    kw.update(overrides)
    return Prices(**kw)


def demo_requests_per_day(measurements: Any, *, slo_p95_ms: float | None = SLO_P95_MS,
                          target_utilization: float = TARGET_UTILIZATION,
                          peak_to_average: float = PEAK_TO_AVERAGE,
                          instances: int = DEMO_BASELINE_INSTANCES,
                          items_per_request: float = 1.0,
                          allow_unstable: bool | None = None) -> float:
    """Requests per day (2 significant figures) at which the ``baseline``-tagged candidate (else
    the slowest candidate) needs at least ``instances`` instances in the first month, on the
    hardware it was measured on, under the planner's own rules (batch choice against the
    end-to-end ``slo_p95_ms``: batch fill + queueing + batch latency).

    Rows are selected exactly as :func:`effplan.plan` selects them (validation, duplicates,
    several hosts, and the stability rule of ``allow_unstable``: None = :data:`ALLOW_UNSTABLE`,
    so not-stable rows are used, flagged; False refuses them).

    A first guess from the best throughput within the target is refined by planning the
    baseline alone at traffic levels a factor 2^(1/4) apart; the lowest level that needs
    ``instances`` (and is feasible) is returned. When the baseline misses the latency target at
    every level, the level is found without the target (the plan itself still applies it and
    shows the baseline as infeasible). Raises :class:`~effplan.errors.ValidationError` naming
    the real cause: no inference row, the baseline's rows refused (strict, not stable), or the
    planner's reason when no level up to 1,000x the guess is feasible (give
    ``requests_per_day`` yourself).
    """
    import warnings

    import numpy as np
    import pandas as pd

    from .errors import ValidationError
    from .planning import InferenceWorkload, Prices, plan, prepare
    from .schema import MEASUREMENT_COLUMNS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # plan() itself warns about these rows
        df = prepare(measurements, allow_unstable=allow_unstable).measurements
    rows = df[(df["mode"].astype(str) == "inference") & (df["provenance"].astype(str) != "projected")]
    tput = pd.to_numeric(rows["throughput_items_per_s"], errors="coerce")
    rows = rows.assign(_tput=tput)[np.isfinite(tput)]
    if rows.empty:
        raise ValidationError("measurements", "no inference row to scale the demo traffic to; "
                                              "give requests_per_day")
    usable = rows[rows["plan_note"].astype(str) == ""]
    tags = rows.groupby("candidate", sort=False)["tags"].first()
    base = [c for c in tags.index if "baseline" in [t.strip() for t in str(tags[c]).split(",")]]
    if base:
        cand = base[0]
    elif not usable.empty:
        cand = str(usable.groupby("candidate", sort=False)["_tput"].max().idxmin())
    else:
        cand = str(rows["candidate"].iloc[0])
    mine = usable[usable["candidate"] == cand]
    if mine.empty:
        why = str(rows.loc[rows["candidate"] == cand, "plan_note"].iloc[0])
        raise ValidationError("requests_per_day", f"the demo traffic is scaled to {cand}, whose "
                                                  f"inference rows are all refused: {why}; give "
                                                  "requests_per_day")
    hw = str(mine["hardware"].iloc[0])
    mine = mine[mine["hardware"].astype(str) == hw]
    guess = (instances * float(mine["_tput"].max()) * float(target_utilization)
             / float(peak_to_average) * 86_400.0 / float(items_per_request))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = prepare(mine[[c for c in MEASUREMENT_COLUMNS if c in mine.columns]],
                       allow_unstable=allow_unstable)
    why_not: list[str] = []

    def first_month_instances(rpd: float, slo: float | None) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = plan(prep, inference=InferenceWorkload(
                requests_per_day=rpd, items_per_request=items_per_request,
                peak_to_average=peak_to_average, slo_p95_ms=slo or None,
                target_utilization=target_utilization, months=1),
                prices=Prices(price_per_hour={hw: 1.0}))
        m = p.monthly
        if len(m) and bool(m["feasible"].iloc[0]):
            return float(m["instances"].iloc[0])
        why_not[:] = [str(m["infeasible_reason"].iloc[0]) if len(m) else "no plan row"]
        return float("nan")

    for target in ([slo_p95_ms, None] if slo_p95_ms else [None]):
        # the baseline misses the target at any traffic: size it without
        for k in range(-8, 41):  # 2^(-2) .. 2^10 times the guess, in steps of 2^(1/4)
            rpd = _two_sig(guess * 2.0 ** (k / 4))
            n = first_month_instances(rpd, target)
            if np.isfinite(n) and n >= instances:
                return rpd
    raise ValidationError("requests_per_day", f"no demo traffic found at which {cand} on {hw} "
                                              f"needs {instances} instances"
                                              + (f" ({why_not[0]})" if why_not else "")
                                              + "; give requests_per_day")


def _two_sig(x: float) -> float:
    """Round to 2 significant figures (a readable traffic figure)."""
    if x <= 0:
        return x
    digits = 10 ** (int(math.floor(math.log10(x))) - 1)
    return float(round(x / digits) * digits)


# --------------------------------------------------------------------------------------------
# Sweeps: the thread rule (effplan.threads), fleets (effplan.fleet, effplan.slurm)
# --------------------------------------------------------------------------------------------
#: Each torch thread gets at least this much work per call (FLOPs, ~1 ms of one core), else the
#: point is timed with fewer threads (see effplan.threads: small work does not pay for threads).
MIN_FLOPS_PER_THREAD = 1e7
#: The background load that decides the free cores is judged over this window (s), in this many
#: samples; the worst sample counts.
THREAD_PROBE_WINDOW_S = 0.5
THREAD_PROBE_SAMPLES = 5
#: ``effplan measure`` exits with status 4 when more than this share of its points failed (and
#: always when every point failed); ``--max-failed-share`` changes it.
MAX_FAILED_SHARE = 0.5
#: Folder of the per-host measurement lock (exclusive="host" / "gpu"); ``$EFFPLAN_LOCK_DIR``
#: overrides it. Every measuring process of one machine must see the same folder (on Kubernetes:
#: a hostPath volume, see deploy/kuberay-rayjob.yaml).
LOCK_DIR_ENV = "EFFPLAN_LOCK_DIR"
#: The machine a fleet node runs on, when the node cannot see it itself (a Kubernetes pod:
#: ``spec.nodeName`` through the downward API); else the hashed hostname is used.
HOST_ID_ENV = "EFFPLAN_HOST_ID"
#: A Ray sweep whose head (GCS) cannot be reached for this long ends with error rows for its
#: open points (Ray's own core would kill the driver after 60 s without them).
FLEET_HEAD_TIMEOUT_S = 15.0
#: How long the preflight waits for its round-trip task on every measuring node, s.
PREFLIGHT_TIMEOUT_S = 60.0
