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
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

__all__ = [
    "PUE", "TARGET_UTILIZATION", "PEAK_TO_AVERAGE", "MONTHLY_GROWTH", "MONTHS", "SLO_P95_MS",
    "GRID_REGION", "SAMPLES", "DEMO_BASELINE_INSTANCES", "RESULTS_DIR_ENV", "RESULTS_FILENAME",
    "results_dir", "results_file", "demo_requests_per_day", "workload", "prices",
]

PUE: float = 1.2
TARGET_UTILIZATION: float = 0.6
PEAK_TO_AVERAGE: float = 2.0
MONTHLY_GROWTH: float = 0.05
MONTHS: int = 12
SLO_P95_MS: float = 50.0
GRID_REGION: str = "world"
SAMPLES: int = 200
#: instances the baseline candidate needs at the first month's peak under the demo traffic
DEMO_BASELINE_INSTANCES: int = 4
RESULTS_DIR_ENV = "EFFPLAN_RESULTS_DIR"
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


def workload(**overrides: Any) -> Any:
    """:class:`effplan.InferenceWorkload` with these defaults (``requests_per_day`` required)."""
    from .planning import InferenceWorkload

    kw = dict(monthly_growth=MONTHLY_GROWTH, peak_to_average=PEAK_TO_AVERAGE,
              slo_p95_ms=SLO_P95_MS, target_utilization=TARGET_UTILIZATION, months=MONTHS)
    kw.update(overrides)
    return InferenceWorkload(**kw)


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
                          items_per_request: float = 1.0) -> float:
    """Requests per day at which the ``baseline``-tagged candidate (else the slowest candidate)
    needs ``instances`` instances at peak on its measured hardware, rounded down to 2 significant
    figures (so it reads as a round number and stays just within ``instances``).

    Uses the same rule as the planner: the highest-throughput inference batch size whose
    ``latency_p95_ms`` meets ``slo_p95_ms``. Raises :class:`~effplan.errors.ValidationError`
    when no inference row qualifies (nothing to scale the demo to).
    """
    import numpy as np
    import pandas as pd

    from .errors import ValidationError

    df = measurements.to_frame() if hasattr(measurements, "to_frame") else measurements
    df = pd.DataFrame(df)
    ok = pd.Series(True, index=df.index)
    if "status" in df.columns:
        ok &= df["status"].astype(str).isin(["ok", "", "nan"])
    if "mode" in df.columns:
        ok &= df["mode"].astype(str) == "inference"
    if "provenance" in df.columns:
        ok &= df["provenance"].astype(str) != "projected"
    if slo_p95_ms:
        ok &= pd.to_numeric(df["latency_p95_ms"], errors="coerce") <= float(slo_p95_ms)
    df = df[ok]
    tput = pd.to_numeric(df.get("throughput_items_per_s"), errors="coerce")
    df = df.assign(_tput=tput)[np.isfinite(tput)]
    if df.empty:
        raise ValidationError("measurements", "no inference row meets the latency target; "
                                              "demo traffic cannot be scaled (give requests_per_day)")
    best = df.groupby("candidate", sort=False)["_tput"].max()
    tags = df.groupby("candidate", sort=False)["tags"].first() if "tags" in df.columns else None
    base = [c for c in best.index
            if tags is not None and "baseline" in [t.strip() for t in str(tags[c]).split(",")]]
    tput_base = float(best[base[0]]) if base else float(best.min())
    peak_items_s = instances * tput_base * float(target_utilization)
    per_day = peak_items_s / float(peak_to_average) * 86_400.0 / float(items_per_request)
    digits = 10 ** max(0, int(math.floor(math.log10(per_day))) - 1)
    return float(math.floor(per_day / digits) * digits)
