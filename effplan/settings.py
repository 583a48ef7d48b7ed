"""The figures every layer starts from: the one home of effplan's defaults (no imports).

Change a figure here and ``effplan plan``, notebooks 02-04 and the dashboard all start from it.
:mod:`effplan.defaults` is the public face of these figures plus the planning objects built from
them (:func:`effplan.defaults.workload`, :func:`~effplan.defaults.prices`, ...), which live in
:mod:`effplan.planning.presets`. What each figure means is listed in :mod:`effplan.defaults`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = [
    "PUE", "TARGET_UTILIZATION", "PEAK_TO_AVERAGE", "MONTHLY_GROWTH", "MONTHS", "SLO_P95_MS",
    "GRID_REGION", "SAMPLES", "DEMO_BASELINE_INSTANCES", "ALLOW_UNSTABLE", "RESULTS_DIR_ENV", "RESULTS_FILENAME",
    "results_dir", "results_file", "GENERATION_REQUESTS_PER_DAY", "GENERATION_OUTPUT_TOKENS",
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


# --------------------------------------------------------------------------------------------
# Sweeps: the thread rule (effplan.bench.threads), fleets (effplan.bench.fleet, effplan.bench.slurm)
# --------------------------------------------------------------------------------------------
#: Each torch thread gets at least this much work per call (FLOPs, ~1 ms of one core), else the
#: point is timed with fewer threads (see effplan.bench.threads: small work does not pay for threads).
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
