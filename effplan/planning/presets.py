"""The planning objects the CLI, the notebooks and the dashboard start from, built from
:mod:`effplan.settings` (public as :func:`effplan.defaults.workload`, :func:`~effplan.defaults.prices`,
:func:`~effplan.defaults.generation_workload` and :func:`~effplan.defaults.demo_requests_per_day`).
"""

from __future__ import annotations

import math
from typing import Any

from ..settings import (DEMO_BASELINE_INSTANCES, GENERATION_OUTPUT_TOKENS, GENERATION_REQUESTS_PER_DAY, GRID_REGION,
                        MONTHLY_GROWTH, MONTHS, PEAK_TO_AVERAGE, PUE, SLO_P95_MS, TARGET_UTILIZATION)
from ..units import S_PER_DAY

__all__ = ["workload", "generation_workload", "prices", "demo_requests_per_day"]

def workload(**overrides: Any) -> Any:
    """:class:`effplan.InferenceWorkload` with these defaults (``requests_per_day`` required)."""
    from . import InferenceWorkload

    kw = dict(monthly_growth=MONTHLY_GROWTH, peak_to_average=PEAK_TO_AVERAGE,
              slo_p95_ms=SLO_P95_MS, target_utilization=TARGET_UTILIZATION, months=MONTHS)
    kw.update(overrides)
    return InferenceWorkload(**kw)


def generation_workload(measurements: Any = None, **overrides: Any) -> Any:
    """:class:`effplan.GenerationWorkload` with these defaults; ``prompt_tokens`` is the largest
    prompt length of the ``mode="generation"`` rows of ``measurements`` (512 without them)."""
    from . import GenerationWorkload

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
    from . import Prices

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
    several hosts, and the stability rule of ``allow_unstable``: None = :data:`effplan.defaults.ALLOW_UNSTABLE`,
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

    from ..errors import ValidationError
    from ..records.schema import MEASUREMENT_COLUMNS
    from . import InferenceWorkload, Prices, plan, prepare
    from .frames import baseline_candidate

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
    base = baseline_candidate(rows)  # the one baseline rule (the tag), as the dashboard and rank_options
    if base is not None:
        cand = base
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
             / float(peak_to_average) * S_PER_DAY / float(items_per_request))
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
