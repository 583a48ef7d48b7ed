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
* :func:`generation_workload` -- the chat workload the dashboard starts from for generation rows:
  :data:`GENERATION_REQUESTS_PER_DAY` responses a day, the largest measured prompt length (so a
  measured prompt length at or above it exists), :data:`GENERATION_OUTPUT_TOKENS` tokens out, no
  TTFT / TPOT target, and the growth / peak / utilisation / horizon above.
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
    "GENERATION_REQUESTS_PER_DAY", "GENERATION_OUTPUT_TOKENS", "generation_workload",
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
#: chat responses per day the generation dashboard starts from
GENERATION_REQUESTS_PER_DAY: float = 1_000_000.0
#: tokens generated per response the generation dashboard starts from
GENERATION_OUTPUT_TOKENS: int = 256
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
                          items_per_request: float = 1.0, allow_unstable: bool = False) -> float:
    """Requests per day (2 significant figures) at which the ``baseline``-tagged candidate (else
    the slowest candidate) needs at least ``instances`` instances in the first month, on the
    hardware it was measured on, under the planner's own rules (batch choice against the
    end-to-end ``slo_p95_ms``: batch fill + queueing + batch latency).

    A first guess from the best throughput within the target is refined by planning the
    baseline alone at traffic levels a factor 2^(1/4) apart; the lowest level that needs
    ``instances`` (and is feasible) is returned. When the baseline misses the latency target at
    every level, the level is found without the target (the plan itself still applies it and
    shows the baseline as infeasible). ``allow_unstable``: size it on rows measured
    ``stable=False`` too (as ``plan(..., allow_unstable=True)`` would use them). Raises
    :class:`~effplan.errors.ValidationError` when no inference row qualifies or no level up to
    1,000x the guess is feasible (give ``requests_per_day`` yourself).
    """
    import warnings

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
    rows = df[ok]
    tput = pd.to_numeric(rows.get("throughput_items_per_s"), errors="coerce")
    rows = rows.assign(_tput=tput)[np.isfinite(tput)]
    if rows.empty:
        raise ValidationError("measurements", "no inference row to scale the demo traffic to; "
                                              "give requests_per_day")
    best = rows.groupby("candidate", sort=False)["_tput"].max()
    tags = rows.groupby("candidate", sort=False)["tags"].first() if "tags" in rows.columns else None
    base = [c for c in best.index
            if tags is not None and "baseline" in [t.strip() for t in str(tags[c]).split(",")]]
    cand = base[0] if base else str(best.idxmin())
    mine = rows[rows["candidate"] == cand]
    hw = str(mine["hardware"].iloc[0]) if "hardware" in mine.columns else None
    if hw is not None:
        mine = mine[mine["hardware"].astype(str) == hw]
    guess = (instances * float(mine["_tput"].max()) * float(target_utilization)
             / float(peak_to_average) * 86_400.0 / float(items_per_request))

    def first_month_instances(rpd: float) -> float:
        from .planning import InferenceWorkload, Prices, plan

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = plan(mine.drop(columns="_tput"),
                     inference=InferenceWorkload(
                         requests_per_day=rpd, items_per_request=items_per_request,
                         peak_to_average=peak_to_average, slo_p95_ms=slo_p95_ms or None,
                         target_utilization=target_utilization, months=1),
                     prices=Prices(price_per_hour={hw: 1.0} if hw else None),
                     allow_unstable=allow_unstable)
        m = p.monthly
        return float(m["instances"].iloc[0]) if len(m) and bool(m["feasible"].iloc[0]) \
            else float("nan")

    for target in ([slo_p95_ms, None] if slo_p95_ms else [None]):
        slo_p95_ms = target  # the baseline misses the target at any traffic: size it without
        for k in range(-8, 41):  # 2^(-2) .. 2^10 times the guess, in steps of 2^(1/4)
            rpd = _two_sig(guess * 2.0 ** (k / 4))
            n = first_month_instances(rpd)
            if np.isfinite(n) and n >= instances:
                return rpd
    raise ValidationError("requests_per_day", f"no demo traffic found at which {cand} meets the "
                                              "latency target; give requests_per_day")


def _two_sig(x: float) -> float:
    """Round to 2 significant figures (a readable traffic figure)."""
    if x <= 0:
        return x
    digits = 10 ** (int(math.floor(math.log10(x))) - 1)
    return float(round(x / digits) * digits)
