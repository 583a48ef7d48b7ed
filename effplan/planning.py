"""Project what candidates will cost, per month and per quarter: inference and training.

numpy/pandas only (never imports torch). Everything is vectorized over
candidates x hardware x months x Monte Carlo samples.

Baseline inference model (the default; every figure below is in the output frames)
---------------------------------------------------------------------------------
For month ``m`` (0-based; quarter Q1 = months 0-2, Q2 = months 3-5, ...):

* ``requests_m = requests_per_day * (1 + monthly_growth) ** m * hours_per_month / 24``;
  ``items_m = requests_m * items_per_request``.
* chosen batch size, per candidate x hardware: the **largest** measured batch size whose
  ``latency_p95_ms <= slo_p95_ms``; with no target, the batch size with the highest
  ``throughput_items_per_s`` (ties: the smaller batch). None meets the target -> the row is
  *infeasible*: ``feasible=False``, ``infeasible_reason`` says why, and instances, cost, energy
  and CO2 are NaN (never a silent zero).
* ``capacity_items_per_s = throughput_items_per_s(chosen batch) * target_utilization``;
  ``peak_items_per_s = items_m / (hours_per_month * 3600) * peak_to_average``;
  ``instances = max(min_replicas, ceil(peak_items_per_s / capacity_items_per_s))``, provisioned
  all month (the ratio is lowered by 1e-9 before the ceiling to absorb floating-point error).
* ``instance_hours = instances * hours_per_month``.
* cost, cloud mode: ``instance_hours * price_per_hour``; on-premises mode:
  ``instances * capex_usd / lifetime_months + energy_kwh * electricity_usd_per_kwh``.
* ``energy_kwh = (items * energy_per_item_j + idle_power_w * idle_s) / 3.6e6 * pue`` with
  ``idle_s = max(0, instance_hours * 3600 - items / throughput_items_per_s)``;
  ``co2_kg = energy_kwh * grid_gco2_per_kwh / 1000``.
* ``cost_per_1k_requests_usd = cost_usd / requests * 1000``.
* Optional autoscaling (``InferenceWorkload(daily_profile=[24 hourly weights])``; the default
  ``None`` is the baseline above, unchanged): the weights are normalised to mean 1 and hour ``h``
  of every day carries ``avg_items_per_s * w_h``; ``instances_h = max(min_replicas,
  ceil(avg_items_per_s * w_h * peak_to_average / capacity_items_per_s))`` (``peak_to_average`` is
  then the burst within an hour); ``instance_hours = sum_h instances_h * hours_per_month / 24``;
  ``instances`` is the busiest hour's count, ``instances_avg = instance_hours / hours_per_month``
  and ``peak_items_per_s = avg_items_per_s * max_h w_h * peak_to_average``. Cost, energy (idle
  time from these instance-hours) and CO2 follow from ``instance_hours`` as above. Scale-up is
  taken as instant; queueing delay is not modelled.
* Quarterly rows sum months (``instances`` is the quarter's peak month); a last, partial quarter
  says so in ``months_in_quarter``.

Projection to hardware you do not own (:func:`project`)
-------------------------------------------------------
Roofline time per item ``t_roof(hw) = max(flops / peak(hw, dtype), bytes / bandwidth(hw))``
(``flops = flops_per_item``, ``bytes = bytes_per_item``; training rows use 3x both; an unknown
``bytes_per_item`` drops the memory term). The efficiency measured locally,
``efficiency = t_roof(measured hw) / measured time per item`` (capped at 1), calibrates the target:
``t(target) = t_roof(target) / efficiency``. When the measured hardware is not in the catalog the
efficiency is :data:`ASSUMED_EFFICIENCY` (labelled ``assumed`` in ``efficiency_source``).
Projected energy per item ``= rated_power_w * t(target)``; projected idle power
``= IDLE_POWER_FRACTION[kind] * rated_power_w``. Latencies scale by ``t(target) / t(measured)``.
Every projected row has ``provenance="projected"`` and ``energy_source="projected"``.

Training (:class:`TrainingWorkload`)
------------------------------------
``throughput`` = measured training throughput (rows with ``mode="training"``, best batch size),
or, for a candidate with no training rows, ``peak(hw, dtype) * assumed_utilization /
(3 * flops_per_item)`` (labelled projected). Per run: ``items = items_per_run * epochs``;
``wall_clock_s = items / (throughput * devices_per_run * scaling_efficiency)``;
``device_hours = devices_per_run * wall_clock_s / 3600``;
``energy_kwh = device_hours * 3600 * energy_per_item_j * throughput / 3.6e6 * pue`` (each device
draws its measured average power for the whole run); cost = ``device_hours * price_per_hour``
(cloud) or ``device_hours * capex / (lifetime_months * 730) + energy_kwh * electricity price``
(on-prem). Per quarter: ``runs_per_quarter`` x per run.

Uncertainty (:class:`Uncertainty`, ``samples > 0``)
--------------------------------------------------
Each sample draws one traffic multiplier, one monthly growth rate and one price multiplier
(triangular distributions: low, base, high) held for the whole horizon; P10/P50/P90 are taken
across samples of each month, each quarter's sum and each horizon total (not sums of percentiles).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from . import catalog as _cat
from .errors import PlanWarning, ValidationError
from .schema import MEASUREMENT_COLUMNS, frame_fingerprint, normalize_measurements

__all__ = [
    "InferenceWorkload", "TrainingWorkload", "Prices", "Uncertainty", "Plan", "plan", "project",
    "compare_scenarios", "load_grid", "PlanWarning", "ASSUMED_EFFICIENCY", "IDLE_POWER_FRACTION",
    "MONTHLY_COLUMNS", "QUARTERLY_COLUMNS", "SUMMARY_COLUMNS", "TRAINING_COLUMNS",
]

#: efficiency (fraction of the roofline time achieved) assumed when the measured hardware is not
#: in the catalog, so the local run cannot calibrate it. A rough, deliberately modest default:
#: small models at small batch sizes often reach far less; pass ``assumed_efficiency=`` to change.
ASSUMED_EFFICIENCY = 0.4

#: idle power of projected hardware as a fraction of its rated power, by catalog ``kind``
#: (the same assumption the energy meter's estimate uses; see :mod:`effplan.catalog`).
IDLE_POWER_FRACTION: Mapping[str, float] = _cat.IDLE_POWER_FRACTION

#: hours per month used for training on-prem amortization and as the workload default
HOURS_PER_MONTH = 730.0

_PCT = (10, 50, 90)

#: column -> description, for every monthly row (``Plan.monthly``)
MONTHLY_COLUMNS: dict[str, str] = {
    "candidate": "candidate name",
    "hardware": "hardware name (as measured, or the catalog name for projected rows)",
    "catalog_name": "matching catalog row ('' when the hardware is not in the catalog)",
    "provenance": "measured | estimated | entered | projected (timing figures of the row)",
    "energy_source": "how energy per item was got (nvml-counter, rapl, estimated-tdp, projected...)",
    "month": "0-based month index from the start of the plan",
    "quarter": "1-based quarter index (Q1 = months 0-2)",
    "requests": "requests in the month",
    "items": "items in the month (requests x items_per_request)",
    "avg_items_per_s": "average load, items/s",
    "peak_items_per_s": "peak load, items/s (average x peak_to_average; with a daily_profile also "
                        "x the busiest hour's weight)",
    "batch_size": "chosen batch size (NaN when infeasible)",
    "latency_p95_ms": "p95 batch latency at the chosen batch (infeasible: the lowest p95 measured)",
    "slo_met": "True when latency_p95_ms <= slo_p95_ms (or no target)",
    "throughput_items_per_s": "throughput per instance at the chosen batch, items/s",
    "capacity_items_per_s": "throughput x target_utilization, items/s per instance",
    "instances": "instances provisioned all month (with a daily_profile: in the busiest hour)",
    "instance_hours": "instances x hours_per_month (with a daily_profile: summed hour by hour)",
    "instances_avg": "instance_hours / hours_per_month (equals instances without a daily_profile)",
    "price_per_hour_usd": "price per instance-hour used (cloud mode)",
    "cost_usd": "cost of the month",
    "energy_kwh": "facility energy of the month (PUE included), kWh",
    "co2_kg": "CO2 of the month, kg",
    "cost_per_1k_requests_usd": "cost_usd / requests x 1000",
    "feasible": "False when no measured batch size meets the latency target (or no usable data)",
    "infeasible_reason": "why the row is infeasible ('' when feasible)",
    "quality": "candidate quality score from the measurements (NaN if none)",
}
#: with samples > 0, monthly/quarterly/summary also hold these (P10/P50/P90 across samples)
PERCENTILE_COLUMNS: tuple[str, ...] = tuple(
    f"{m}_p{p}" for m in ("cost_usd", "energy_kwh", "co2_kg") for p in _PCT)

QUARTERLY_COLUMNS: dict[str, str] = {
    **{k: MONTHLY_COLUMNS[k] for k in ("candidate", "hardware", "catalog_name", "provenance",
                                        "energy_source")},
    "quarter": "1-based quarter index (Q1 = months 0-2)",
    "months_in_quarter": "months of the plan in this quarter (3 except a last partial quarter)",
    "requests": "requests in the quarter",
    "items": "items in the quarter",
    "instances": "peak instances in any month of the quarter",
    "instance_hours": "instance-hours in the quarter",
    "cost_usd": "cost of the quarter (sum of its months)",
    "energy_kwh": "energy of the quarter, kWh",
    "co2_kg": "CO2 of the quarter, kg",
    "cost_per_1k_requests_usd": "quarter cost / quarter requests x 1000",
    **{k: MONTHLY_COLUMNS[k] for k in ("batch_size", "latency_p95_ms", "slo_met", "feasible",
                                        "infeasible_reason", "quality")},
}

SUMMARY_COLUMNS: dict[str, str] = {
    **{k: MONTHLY_COLUMNS[k] for k in ("candidate", "hardware", "catalog_name", "provenance",
                                        "energy_source", "feasible", "infeasible_reason",
                                        "batch_size", "latency_p95_ms", "slo_met",
                                        "throughput_items_per_s", "capacity_items_per_s",
                                        "price_per_hour_usd")},
    "price_source": "where the price came from (override / catalog source / missing)",
    "instances_first_month": "instances in month 0",
    "instances_max": "most instances in any month",
    "requests": "requests over the horizon",
    "instance_hours": "instance-hours over the horizon",
    "cost_usd": "inference cost over the horizon",
    "first_quarter_cost_usd": "inference cost of Q1",
    "cost_per_1k_requests_usd": "horizon cost / horizon requests x 1000",
    "energy_kwh": "inference energy over the horizon, kWh",
    "co2_kg": "inference CO2 over the horizon, kg",
    "quality": "candidate quality score (NaN if none)",
    "efficiency": "projected rows: fraction of the roofline assumed achieved (NaN if measured)",
    "efficiency_source": "'measured', 'calibrated on <hw>' or 'assumed ...'",
    "projected_from": "projected rows: the measured hardware it was projected from",
}
#: added to ``summary`` when a TrainingWorkload was given
SUMMARY_TRAINING_COLUMNS: dict[str, str] = {
    "training_device_hours": "training device-hours (GPU-hours) over the horizon",
    "training_cost_usd": "training cost over the horizon",
    "training_energy_kwh": "training energy over the horizon, kWh",
    "training_co2_kg": "training CO2 over the horizon, kg",
    "total_cost_usd": "inference + training cost (a missing part counts as absent, NaN stays NaN)",
}

TRAINING_COLUMNS: dict[str, str] = {
    **{k: MONTHLY_COLUMNS[k] for k in ("candidate", "hardware", "catalog_name", "provenance",
                                        "energy_source")},
    "quarter": "1-based quarter index",
    "runs": "training runs in the quarter",
    "items_per_run": "items per epoch",
    "epochs": "epochs per run",
    "devices_per_run": "devices (GPUs/instances) per run",
    "batch_size": "training batch size used (highest throughput; NaN for FLOPs-only projections)",
    "throughput_items_per_s": "training throughput per device, items/s",
    "wall_clock_days_per_run": "wall-clock days per run",
    "device_hours_per_run": "device-hours (GPU-hours) per run",
    "device_hours": "device-hours in the quarter",
    "cost_per_run_usd": "cost of one run",
    "cost_usd": "training cost of the quarter",
    "energy_kwh": "training energy of the quarter (PUE included), kWh",
    "co2_kg": "training CO2 of the quarter, kg",
    "feasible": "False when no usable training figure exists for this hardware",
    "infeasible_reason": "why ('' when feasible)",
    "efficiency_source": "'measured', 'calibrated on <hw>', 'assumed ...'",
    "quality": "candidate quality score (NaN if none)",
}



# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------

def _num(field_name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False, integer: bool = False, where: str | None = None) -> float:
    """Validate one number: finite, in range; returns it as float (or int when ``integer``)."""
    if isinstance(value, bool) or value is None:
        raise ValidationError(field_name, f"expected a number, got {value!r}", where=where)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValidationError(field_name, f"expected a number, got {value!r}", where=where) from None
    if math.isnan(v) or math.isinf(v):
        raise ValidationError(field_name, f"must be a finite number, got {value!r}", where=where)
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValidationError(field_name, f"must be {'>' if lo_open else '>='} {lo:g}, got {v:g}",
                              where=where)
    if hi is not None and v > hi:
        raise ValidationError(field_name, f"must be <= {hi:g}, got {v:g}", where=where)
    if integer:
        if v != int(v):
            raise ValidationError(field_name, f"must be a whole number, got {v:g}", where=where)
        return int(v)
    return v


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _daily_profile(value: Any) -> tuple[float, ...]:
    """Validate 24 hourly load weights and normalise them to mean 1."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValidationError("daily_profile", f"expected 24 hourly weights, got {value!r}")
    vals = list(value)
    if len(vals) != 24:
        raise ValidationError("daily_profile", f"expected 24 hourly weights, got {len(vals)}")
    w = [_num(f"daily_profile[{h}]", v, lo=0) for h, v in enumerate(vals)]
    total = sum(w)
    if total <= 0:
        raise ValidationError("daily_profile", "at least one hourly weight must be > 0")
    return tuple(x * 24.0 / total for x in w)


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InferenceWorkload:
    """Inference traffic to serve. Frozen and validated (a bad field raises ValidationError naming it).

    Attributes
    ----------
    requests_per_day: requests per day in month 0 (>= 0).
    monthly_growth: compound growth per month (0.05 = +5%/month; > -1).
    items_per_request: items (e.g. images, sequences) per request (> 0).
    peak_to_average: peak load / average load (>= 1); capacity is sized for the peak.
    slo_p95_ms: p95 batch latency target in ms, or None for "no target" (> 0).
    target_utilization: share of measured throughput an instance may use, in (0, 1].
    min_replicas: instances kept even at zero traffic (whole number >= 0).
    hours_per_month: billed hours per month (> 0, <= 744; default 730 = 8760 / 12).
    months: planning horizon in months (whole number >= 1).
    daily_profile: optional 24 hourly load weights (hour 0 = midnight to 1 am, any unit; they
        are normalised to mean 1 and stored normalised). ``None`` (default) keeps the baseline:
        capacity for the peak, provisioned all month. Given, instances follow the daily curve
        hour by hour (autoscaling; see :func:`plan`), and ``peak_to_average`` then means the
        burst *within* an hour over that hour's mean (leave it at 1 when the curve already
        holds the peak).
    """

    requests_per_day: float
    monthly_growth: float = 0.0
    items_per_request: float = 1
    peak_to_average: float = 1.0
    slo_p95_ms: float | None = None
    target_utilization: float = 0.7
    min_replicas: int = 1
    hours_per_month: float = HOURS_PER_MONTH
    months: int = 12
    daily_profile: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _set(self, "requests_per_day", _num("requests_per_day", self.requests_per_day, lo=0))
        _set(self, "monthly_growth", _num("monthly_growth", self.monthly_growth, lo=-1, lo_open=True))
        _set(self, "items_per_request", _num("items_per_request", self.items_per_request, lo=0,
                                             lo_open=True))
        _set(self, "peak_to_average", _num("peak_to_average", self.peak_to_average, lo=1))
        if self.slo_p95_ms is not None:
            _set(self, "slo_p95_ms", _num("slo_p95_ms", self.slo_p95_ms, lo=0, lo_open=True))
        _set(self, "target_utilization", _num("target_utilization", self.target_utilization, lo=0,
                                              lo_open=True, hi=1))
        _set(self, "min_replicas", _num("min_replicas", self.min_replicas, lo=0, integer=True))
        _set(self, "hours_per_month", _num("hours_per_month", self.hours_per_month, lo=0,
                                           lo_open=True, hi=744))
        _set(self, "months", _num("months", self.months, lo=1, hi=600, integer=True))
        if self.daily_profile is not None:
            _set(self, "daily_profile", _daily_profile(self.daily_profile))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        d = dataclasses.asdict(self)
        if d["daily_profile"] is not None:
            d["daily_profile"] = list(d["daily_profile"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InferenceWorkload:
        """Inverse of :meth:`to_dict` (unknown keys raise ValidationError)."""
        return cls(**_known_fields(cls, d))

    def to_frame(self) -> pd.DataFrame:
        """One row with the fields (for display and export)."""
        return pd.DataFrame([self.to_dict()])


@dataclass(frozen=True)
class TrainingWorkload:
    """Training to run each quarter. Frozen and validated.

    Attributes
    ----------
    runs_per_quarter: training runs per quarter (>= 0).
    items_per_run: items per epoch (> 0).
    epochs: epochs per run (> 0).
    devices_per_run: devices (GPUs, or instances for CPU rows) per run (whole number >= 1).
    scaling_efficiency: multi-device throughput / (devices x single-device throughput), (0, 1].
    assumed_utilization: share of catalog peak assumed where only FLOPs are known, (0, 1].
    quarters: horizon in quarters; None = the inference horizon (ceil(months / 3)) or 4.
    """

    runs_per_quarter: float
    items_per_run: float
    epochs: float = 1
    devices_per_run: int = 1
    scaling_efficiency: float = 1.0
    assumed_utilization: float = 0.4
    quarters: int | None = None

    def __post_init__(self) -> None:
        _set(self, "runs_per_quarter", _num("runs_per_quarter", self.runs_per_quarter, lo=0))
        _set(self, "items_per_run", _num("items_per_run", self.items_per_run, lo=0, lo_open=True))
        _set(self, "epochs", _num("epochs", self.epochs, lo=0, lo_open=True))
        _set(self, "devices_per_run", _num("devices_per_run", self.devices_per_run, lo=1, integer=True))
        _set(self, "scaling_efficiency", _num("scaling_efficiency", self.scaling_efficiency, lo=0,
                                              lo_open=True, hi=1))
        _set(self, "assumed_utilization", _num("assumed_utilization", self.assumed_utilization, lo=0,
                                               lo_open=True, hi=1))
        if self.quarters is not None:
            _set(self, "quarters", _num("quarters", self.quarters, lo=1, hi=200, integer=True))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingWorkload:
        return cls(**_known_fields(cls, d))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


@functools.lru_cache(maxsize=1)
def _grid_cached() -> pd.DataFrame:
    path = Path(str(importlib.resources.files("effplan") / "data" / "grid.csv"))
    df = pd.read_csv(path, dtype={"region": str})
    for col in ("region", "name", "gco2_per_kwh", "source", "year"):
        if col not in df.columns:
            raise ValidationError(col, "required column missing", where=str(path))
    df["region"] = df["region"].str.strip().str.lower()
    return df


def load_grid() -> pd.DataFrame:
    """Regional grid carbon intensity (gCO2/kWh) and electricity prices, with sources and years
    (``effplan/data/grid.csv``: region, name, gco2_per_kwh, source, year, electricity_usd_per_kwh,
    electricity_source, electricity_year; an empty price = unknown)."""
    return _grid_cached().copy()


@functools.lru_cache(maxsize=64)
def _grid_row(region: str) -> pd.Series:
    grid = _grid_cached()
    key = str(region).strip().lower()
    hit = grid[(grid["region"] == key) | (grid["name"].str.lower() == key)]
    if hit.empty:
        raise ValidationError("grid_region", f"unknown region {region!r}; known: "
                                             f"{', '.join(grid['region'])} (or pass grid_gco2_per_kwh=<number>)")
    return hit.iloc[0]


@dataclass(frozen=True)
class Prices:
    """Prices, power overheads and grid carbon intensity. Frozen and validated.

    Attributes
    ----------
    price_per_hour: hardware name -> price per instance-hour (catalog name, alias or the
        measured hardware name). Missing names fall back to the catalog's
        ``price_per_hour_usd``; a name with no price anywhere gives NaN cost and a PlanWarning.
    pue: power usage effectiveness of the data centre (>= 1; 1.0 = count IT energy only).
    grid_gco2_per_kwh: grid carbon intensity in gCO2/kWh, or a region name; None = grid_region.
    grid_region: region in ``effplan/data/grid.csv`` (world, us, eu, france, germany, poland,
        sweden, uk, india, china) used when grid_gco2_per_kwh is None.
    electricity_usd_per_kwh: electricity price (on-premises mode); None = the region's price in
        grid.csv, else the US average (labelled so in ``electricity_source``).
    mode: ``"cloud"`` (pay per instance-hour) or ``"on-prem"`` (capex amortization + electricity).
    capex_usd: hardware name -> purchase price per instance (on-prem); missing -> catalog.
    lifetime_months: depreciation period of purchased hardware (on-prem), months.
    currency: label of every money figure. The catalog defaults are USD: with another currency
        give every price (hourly, capex, electricity) in it. Column names keep ``_usd``.
    """

    price_per_hour: Mapping[str, float] | None = None
    pue: float = 1.0
    grid_gco2_per_kwh: float | str | None = None
    grid_region: str = "world"
    electricity_usd_per_kwh: float | None = None
    mode: str = "cloud"
    capex_usd: Mapping[str, float] | None = None
    lifetime_months: float = 48
    currency: str = "USD"

    def __post_init__(self) -> None:
        for name in ("price_per_hour", "capex_usd"):
            raw = getattr(self, name)
            if raw is None:
                _set(self, name, MappingProxyType({}))
                continue
            if not isinstance(raw, Mapping):
                raise ValidationError(name, f"expected a mapping hardware name -> number, got "
                                            f"{type(raw).__name__}")
            _set(self, name, MappingProxyType({str(k): _num(f"{name}[{k!r}]", v, lo=0)
                                               for k, v in raw.items()}))
        _set(self, "pue", _num("pue", self.pue, lo=1, hi=10))
        if isinstance(self.grid_gco2_per_kwh, str):
            _grid_row(self.grid_gco2_per_kwh)  # validates the name
        elif self.grid_gco2_per_kwh is not None:
            _set(self, "grid_gco2_per_kwh", _num("grid_gco2_per_kwh", self.grid_gco2_per_kwh, lo=0))
        if not isinstance(self.grid_region, str):
            raise ValidationError("grid_region", f"expected a region name, got {self.grid_region!r}")
        _grid_row(self.grid_region)
        if self.electricity_usd_per_kwh is not None:
            _set(self, "electricity_usd_per_kwh",
                 _num("electricity_usd_per_kwh", self.electricity_usd_per_kwh, lo=0))
        if self.mode not in ("cloud", "on-prem"):
            raise ValidationError("mode", f"must be 'cloud' or 'on-prem', got {self.mode!r}")
        _set(self, "lifetime_months", _num("lifetime_months", self.lifetime_months, lo=0, lo_open=True))
        if not isinstance(self.currency, str) or not self.currency:
            raise ValidationError("currency", f"expected a label such as 'USD', got {self.currency!r}")

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.price_per_hour.items())), self.pue, self.grid_gco2_per_kwh,
                     self.grid_region, self.electricity_usd_per_kwh, self.mode,
                     tuple(sorted(self.capex_usd.items())), self.lifetime_months, self.currency))

    # resolved figures --------------------------------------------------------------------
    @property
    def grid_intensity_gco2_per_kwh(self) -> float:
        """The grid carbon intensity used, gCO2/kWh."""
        if isinstance(self.grid_gco2_per_kwh, (int, float)):
            return float(self.grid_gco2_per_kwh)
        region = self.grid_gco2_per_kwh if isinstance(self.grid_gco2_per_kwh, str) else self.grid_region
        return float(_grid_row(region)["gco2_per_kwh"])

    @property
    def grid_source(self) -> str:
        """Where the grid intensity comes from."""
        if isinstance(self.grid_gco2_per_kwh, (int, float)):
            return "entered"
        region = self.grid_gco2_per_kwh if isinstance(self.grid_gco2_per_kwh, str) else self.grid_region
        row = _grid_row(region)
        return f"{row['name']}: {row['source']} ({int(row['year'])})"

    @property
    def electricity_price_per_kwh(self) -> float:
        """Electricity price used in on-prem mode, per kWh."""
        return self._electricity()[0]

    @property
    def electricity_source(self) -> str:
        return self._electricity()[1]

    def _electricity(self) -> tuple[float, str]:
        if self.electricity_usd_per_kwh is not None:
            return float(self.electricity_usd_per_kwh), "entered"
        region = self.grid_gco2_per_kwh if isinstance(self.grid_gco2_per_kwh, str) else self.grid_region
        row = _grid_row(region)
        val = row.get("electricity_usd_per_kwh", np.nan)
        if pd.notna(val):
            return float(val), f"{row['name']}: {row['electricity_source']} ({int(row['electricity_year'])})"
        us = _grid_row("us")
        return (float(us["electricity_usd_per_kwh"]),
                f"no price for {row['name']}; US average used: {us['electricity_source']} "
                f"({int(us['electricity_year'])})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields plus the resolved grid/electricity figures and sources."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["price_per_hour"] = dict(self.price_per_hour)
        d["capex_usd"] = dict(self.capex_usd)
        d["resolved_grid_gco2_per_kwh"] = self.grid_intensity_gco2_per_kwh
        d["resolved_grid_source"] = self.grid_source
        d["resolved_electricity_per_kwh"] = self.electricity_price_per_kwh
        d["resolved_electricity_source"] = self.electricity_source
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Prices:
        """Inverse of :meth:`to_dict` (the ``resolved_*`` keys are ignored)."""
        return cls(**_known_fields(cls, {k: v for k, v in d.items() if not k.startswith("resolved_")}))


@dataclass(frozen=True)
class Uncertainty:
    """Ranges for Monte Carlo (triangular distributions: low, base, high).

    traffic: (low, high) multipliers of the workload's requests_per_day (base 1.0).
    growth: (low, high) monthly growth rates bracketing the workload's monthly_growth (absolute
        rates, e.g. (0.0, 0.08) around 0.04); None = growth is certain.
    price: (low, high) multipliers of every price (hourly, capex, electricity; base 1.0).
    """

    traffic: tuple[float, float] | None = (0.8, 1.2)
    growth: tuple[float, float] | None = None
    price: tuple[float, float] | None = (0.9, 1.1)

    def __post_init__(self) -> None:
        for name in ("traffic", "growth", "price"):
            val = getattr(self, name)
            if val is None:
                continue
            if not isinstance(val, (tuple, list)) or len(val) != 2:
                raise ValidationError(name, f"expected (low, high), got {val!r}")
            lo = _num(f"{name}[0]", val[0], lo=-1 if name == "growth" else 0, lo_open=True)
            hi = _num(f"{name}[1]", val[1])
            if hi < lo:
                raise ValidationError(name, f"low {lo:g} > high {hi:g}")
            if name != "growth" and not lo <= 1.0 <= hi:
                raise ValidationError(name, f"multipliers must bracket 1.0, got ({lo:g}, {hi:g})")
            _set(self, name, (lo, hi))

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if v is not None else None) for k, v in dataclasses.asdict(self).items()}


def _known_fields(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in d if k not in names]
    if unknown:
        raise ValidationError(unknown[0], f"unknown field for {cls.__name__} (known: {', '.join(sorted(names))})")
    return dict(d)


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Plan:
    """The projected budget. Frozen; the frames are copies you may modify.

    Attributes
    ----------
    monthly: one row per candidate x hardware x month; columns :data:`MONTHLY_COLUMNS`
        (+ :data:`PERCENTILE_COLUMNS` when sampled). Empty without an InferenceWorkload.
    quarterly: one row per candidate x hardware x quarter; :data:`QUARTERLY_COLUMNS` (+ percentiles).
    summary: one row per candidate x hardware; :data:`SUMMARY_COLUMNS` (+ percentiles of the
        horizon totals; + :data:`SUMMARY_TRAINING_COLUMNS` with training). Sorted: feasible first,
        then by cost.
    training: one row per candidate x hardware x quarter (:data:`TRAINING_COLUMNS`), or None.
    inputs: JSON-serialisable dict of everything used (workloads, prices with resolved sources,
        hardware, samples, seed, uncertainty, assumptions) -- enough to re-run the scenario.
    """

    monthly: pd.DataFrame
    quarterly: pd.DataFrame
    summary: pd.DataFrame
    training: pd.DataFrame | None
    inputs: dict[str, Any] = field(default_factory=dict)

    def frames(self) -> dict[str, pd.DataFrame]:
        """The result tables by name (training only when present)."""
        out = {"summary": self.summary, "monthly": self.monthly, "quarterly": self.quarterly}
        if self.training is not None:
            out["training"] = self.training
        return out

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``summary.csv``, ``monthly.csv``, ``quarterly.csv`` (``training.csv``) and
        ``inputs.json`` into ``directory`` (created); return the paths."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, df in self.frames().items():
            p = d / f"{name}.csv"
            df.to_csv(p, index=False)
            paths.append(p)
        p = d / "inputs.json"
        p.write_text(json.dumps(self.inputs, indent=2, sort_keys=True))
        paths.append(p)
        return paths

    def to_excel(self, path: str | Path) -> Path:
        """One workbook: a sheet per table plus an ``inputs`` sheet (key, value as JSON)."""
        p = Path(path)
        with pd.ExcelWriter(p) as xw:
            for name, df in self.frames().items():
                df.to_excel(xw, sheet_name=name, index=False)
            pd.DataFrame([{"key": k, "value": json.dumps(v, sort_keys=True)}
                          for k, v in self.inputs.items()]).to_excel(xw, sheet_name="inputs", index=False)
        return p

    def __repr__(self) -> str:
        n = len(self.summary)
        feas = int(self.summary["feasible"].sum()) if n else 0
        t = "" if self.training is None else f", training rows={len(self.training)}"
        return f"Plan({n} candidate x hardware options, {feas} feasible, months={self.inputs.get('months')}{t})"

    #: the summary columns a notebook shows for a Plan (all columns stay in ``summary``)
    _REPR_COLUMNS = ("candidate", "hardware", "provenance", "energy_source", "feasible",
                     "batch_size", "latency_p95_ms", "instances_max", "cost_usd",
                     "cost_per_1k_requests_usd", "energy_kwh", "co2_kg", "quality",
                     "training_cost_usd")

    def _repr_html_(self) -> str:
        cols = [c for c in self._REPR_COLUMNS if c in self.summary.columns]
        return (f"<p>{self!r} &mdash; totals over the horizon; every column is in "
                "<code>.summary</code>, <code>.quarterly</code>, <code>.monthly</code></p>"
                + self.summary[cols].to_html(index=False, max_rows=30, float_format="{:,.4g}".format,
                                             na_rep="n/a"))


# --------------------------------------------------------------------------------------------
# measurements and catalog
# --------------------------------------------------------------------------------------------

def _measurement_frame(measurements: Any) -> pd.DataFrame:
    """Tidy frame from a Measurements-like object (``to_frame()``) or a DataFrame; validated;
    rows with status 'error' dropped; duplicate candidate x hardware x mode x batch keep the last."""
    if hasattr(measurements, "to_frame") and not isinstance(measurements, pd.DataFrame):
        measurements = measurements.to_frame()
    if isinstance(measurements, pd.DataFrame):
        # a hand-typed table that mixes rows with and without provenance: empty = entered
        fill = {c: "entered" for c in ("provenance", "energy_source")
                if c in measurements.columns and measurements[c].isna().any()}
        if fill:
            measurements = measurements.fillna(fill)
    df = normalize_measurements(measurements)
    df = df[df["status"] == "ok"]
    df = df.drop_duplicates(["candidate", "hardware", "mode", "batch_size"], keep="last")
    return df.reset_index(drop=True)


def _catalog_frame(catalog: pd.DataFrame | str | Path | None) -> tuple[pd.DataFrame, tuple | None]:
    """The validated catalog (shared: never modified here) and a key for its content."""
    return _cat.validated_catalog(catalog)


_PREPARED: dict[tuple, tuple[pd.DataFrame, pd.DataFrame]] = {}


def _prepare(measurements: Any, targets: list[str], cat: pd.DataFrame, cat_key: tuple | None,
             eff_assumed: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validated measurements and inference rows with their projections.

    These depend only on the measurements, the catalog, the targets and the assumed efficiency,
    not on the workload or prices, so a what-if re-plan reuses them: they are memoized on a
    content hash of the inputs (a changed cell gives a new hash, so nothing stale is reused).
    The returned frames are shared: callers must not modify them in place.
    """
    raw = measurements.to_frame() if hasattr(measurements, "to_frame") and not isinstance(
        measurements, pd.DataFrame) else measurements
    key = None
    if isinstance(raw, pd.DataFrame) and cat_key is not None:
        fm = frame_fingerprint(raw)
        if fm is not None:
            key = (fm, cat_key, tuple(targets), eff_assumed)
            hit = _PREPARED.get(key)
            if hit is not None:
                return hit
    df = _measurement_frame(raw)
    if df.empty:
        raise ValidationError("measurements", "no usable rows (all missing or status 'error')")
    rows = _with_projection(df, "inference", targets, cat, eff_assumed)
    if key is not None:
        if len(_PREPARED) >= 8:
            _PREPARED.pop(next(iter(_PREPARED)))
        _PREPARED[key] = (df, rows)
    return df, rows


def _match_map(names: Iterable[str], cat: pd.DataFrame) -> dict[str, str]:
    """hardware name -> catalog name ('' when not in the catalog), each unique name looked up once."""
    out: dict[str, str] = {}
    for n in dict.fromkeys(names):
        row = _cat.find_hardware(n, cat)
        out[n] = "" if row is None or row["name"] == _cat.GENERIC_CPU else str(row["name"])
    return out


def _resolve_targets(hardware: Iterable[str] | str | None, cat: pd.DataFrame) -> list[str]:
    if hardware is None:
        return []
    if isinstance(hardware, str):
        hardware = [hardware]
    out = []
    for h in hardware:
        row = _cat.find_hardware(h, cat)
        if row is None or row["name"] == _cat.GENERIC_CPU:
            raise ValidationError("hardware", f"unknown hardware {h!r}; catalog names: "
                                              f"{', '.join(n for n in cat['name'] if n != _cat.GENERIC_CPU)}")
        if row["name"] not in out:
            out.append(str(row["name"]))
    return out


def _peak_array(cat_idx: pd.DataFrame, names: np.ndarray, dtypes: np.ndarray) -> np.ndarray:
    """Catalog peak for each (catalog name, dtype) pair; NaN when unknown."""
    out = np.full(len(names), np.nan)
    for i, (n, d) in enumerate(zip(names, dtypes)):
        if not n:
            continue
        col = _cat.dtype_peak_column(d)
        if col is not None:
            out[i] = cat_idx.at[n, col]
    return out


# --------------------------------------------------------------------------------------------
# projection
# --------------------------------------------------------------------------------------------

def project(measurements: Any, hardware: Iterable[str] | str, *,
            catalog: pd.DataFrame | str | Path | None = None,
            assumed_efficiency: float = ASSUMED_EFFICIENCY, skip_measured: bool = True) -> pd.DataFrame:
    """Project measured rows onto catalog hardware by the roofline (see the module docstring).

    Returns measurement-schema rows (one per candidate x mode x batch size x target) with
    ``provenance="projected"``, ``energy_source="projected"`` and extra columns
    ``projected_from`` (measured hardware), ``efficiency`` (fraction of the roofline),
    ``efficiency_source`` (``calibrated on <hw>`` or ``assumed <x>: <why>``) and
    ``projection_note`` (non-empty when the row could not be projected -- unknown FLOPs, no peak
    for the dtype, or the measured peak memory exceeds the target's memory; those rows have NaN
    throughput). Per candidate and mode one measured hardware is used: a calibrated one (in the
    catalog) first. ``skip_measured`` leaves out targets the candidate was measured on.
    """
    cat, _ = _catalog_frame(catalog)
    eff_assumed = _num("assumed_efficiency", assumed_efficiency, lo=0, lo_open=True, hi=1)
    df = _measurement_frame(measurements)
    targets = _resolve_targets(hardware, cat)
    return _project(df, targets, cat, eff_assumed, skip_measured)


def _project(df: pd.DataFrame, targets: list[str], cat: pd.DataFrame, eff_assumed: float,
             skip_measured: bool) -> pd.DataFrame:
    extra = ["projected_from", "efficiency", "efficiency_source", "projection_note"]
    if df.empty or not targets:
        return pd.DataFrame(columns=list(MEASUREMENT_COLUMNS) + extra)
    cidx = cat.set_index("name")
    match = _match_map(df["hardware"], cat)
    src = df.copy()
    src["_cat"] = src["hardware"].map(match)
    train = (src["mode"] == "training").to_numpy()
    mult = np.where(train, 3.0, 1.0)
    flops = src["flops_per_item"].to_numpy(float) * mult
    byts = src["bytes_per_item"].to_numpy(float) * mult
    t_meas = 1.0 / src["throughput_items_per_s"].to_numpy(float)
    dtypes = src["dtype"].to_numpy(str)
    peak_src = _peak_array(cidx, src["_cat"].to_numpy(str), dtypes)
    bw_src = np.array([cidx.at[n, "memory_bandwidth_gb_s"] if n else np.nan for n in src["_cat"]]) * 1e9
    mem_term = np.where(np.isfinite(byts), byts / bw_src, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_roof_src = np.fmax(flops / peak_src, np.where(np.isfinite(mem_term), mem_term, 0.0))
        eff_meas = t_roof_src / t_meas
    calibrated = np.isfinite(eff_meas) & (eff_meas > 0)
    eff = np.where(calibrated, np.minimum(eff_meas, 1.0), eff_assumed)
    srcname = src["hardware"].to_numpy(str)
    esrc = np.where(
        calibrated,
        np.where(eff_meas > 1.0,
                 np.char.add(np.char.add("calibrated on ", srcname.astype("U")),
                             " (clipped to 1.0: measured faster than the roofline; check peak/dtype)"),
                 np.char.add("calibrated on ", srcname.astype("U"))),
        np.where(src["_cat"].to_numpy(str) == "",
                 np.char.add(np.char.add(f"assumed {eff_assumed:g}: ", srcname.astype("U")),
                             " is not in the catalog"),
                 np.char.add(np.char.add(f"assumed {eff_assumed:g}: no catalog peak or FLOPs for ",
                                         srcname.astype("U")), "")))
    src["_eff"] = eff
    src["_esrc"] = esrc
    src["_calib"] = calibrated
    src["_t_meas"] = t_meas
    src["_flops"] = flops
    src["_bytes"] = byts
    # one measured hardware per candidate x mode: calibrated first, then most rows, then name
    g = src.groupby(["candidate", "mode", "hardware"], sort=False).agg(
        calib=("_calib", "mean"), n=("_calib", "size")).reset_index()
    g = g.sort_values(["candidate", "mode", "calib", "n", "hardware"],
                      ascending=[True, True, False, False, True], kind="mergesort")
    best = g.drop_duplicates(["candidate", "mode"])[["candidate", "mode", "hardware"]]
    src = src.merge(best, on=["candidate", "mode", "hardware"], how="inner")
    measured_on = set(zip(df["candidate"], df["mode"], df["hardware"].map(match)))
    frames = []
    for tgt in targets:
        part = src
        if skip_measured:
            keep = [(c, m, tgt) not in measured_on for c, m in zip(part["candidate"], part["mode"])]
            part = part[np.asarray(keep, dtype=bool)]
        if part.empty:
            continue
        part = part.copy()
        row = cidx.loc[tgt]
        peak_t = _peak_array(cidx, np.full(len(part), tgt, dtype=object), part["dtype"].to_numpy(str))
        bw_t = float(row["memory_bandwidth_gb_s"]) * 1e9
        rated = float(row["rated_power_w"])
        kind = str(row["kind"])
        f = part["_flops"].to_numpy(float)
        b = part["_bytes"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            mem_t = np.where(np.isfinite(b) & np.isfinite(bw_t), b / bw_t, 0.0)
            t_t = np.fmax(f / peak_t, mem_t) / part["_eff"].to_numpy(float)
        note = np.full(len(part), "", dtype=object)
        note[~np.isfinite(f) | (f <= 0)] = "cannot project: flops_per_item unknown"
        col_names = [(_cat.dtype_peak_column(d) or "unknown dtype") for d in part["dtype"]]
        nopeak = ~np.isfinite(peak_t) & (note == "")
        for i in np.flatnonzero(nopeak):
            note[i] = f"cannot project: no {col_names[i]} for {tgt} in the catalog"
        mem_gb = float(row["memory_gb"])
        need_mb = part["peak_memory_mb"].to_numpy(float)
        over = np.isfinite(need_mb) & np.isfinite(mem_gb) & (need_mb > mem_gb * 1024) & (note == "")
        for i in np.flatnonzero(over):
            note[i] = f"needs {need_mb[i]:.0f} MiB > {tgt} memory {mem_gb:g} GB"
        bad = note != ""
        t_t = np.where(bad, np.nan, t_t)
        factor = t_t / part["_t_meas"].to_numpy(float)
        out = part[list(MEASUREMENT_COLUMNS)].copy()
        out["projected_from"] = part["hardware"].to_numpy()
        out["hardware"] = tgt
        out["hardware_id"] = ""
        out["device"] = ""
        out["threads"] = np.nan
        for c in ("latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms"):
            out[c] = part[c].to_numpy(float) * factor
        out["latency_ci_rel"] = np.nan
        out["repeats"] = np.nan
        out["throughput_items_per_s"] = 1.0 / t_t
        out["peak_flops_per_s"] = peak_t
        out["achieved_flops_per_s"] = f / t_t
        out["utilization"] = f / t_t / peak_t
        idle = IDLE_POWER_FRACTION.get(kind, IDLE_POWER_FRACTION["gpu"]) * rated
        out["energy_per_item_j"] = rated * t_t
        out["energy_per_batch_j"] = rated * t_t * part["batch_size"].to_numpy(float)
        out["energy_above_idle_per_item_j"] = (rated - idle) * t_t
        out["avg_power_w"] = np.where(bad, np.nan, rated)
        out["idle_power_w"] = np.where(bad, np.nan, idle)
        out["energy_j"] = np.nan
        out["energy_window_s"] = np.nan
        out["energy_source"] = "projected"
        out["provenance"] = "projected"
        out["timestamp"] = ""
        out["efficiency"] = part["_eff"].to_numpy(float)
        out["efficiency_source"] = part["_esrc"].to_numpy()
        out["projection_note"] = note
        frames.append(out)
    if not frames:
        return pd.DataFrame(columns=list(MEASUREMENT_COLUMNS) + extra)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------------
# options: one row per candidate x hardware with the chosen batch
# --------------------------------------------------------------------------------------------

def _with_projection(df: pd.DataFrame, mode: str, targets: list[str], cat: pd.DataFrame,
                     eff_assumed: float) -> pd.DataFrame:
    """Measured rows of ``mode`` plus their projections to ``targets``, with projection columns."""
    meas = df[df["mode"] == mode].copy()
    meas["projected_from"] = ""
    meas["efficiency"] = np.nan
    meas["efficiency_source"] = np.where(meas["provenance"] == "projected", "entered as projected",
                                         "measured")
    meas["projection_note"] = ""
    proj = _project(meas[list(MEASUREMENT_COLUMNS)], targets, cat, eff_assumed, True)
    if proj.empty:
        return meas.reset_index(drop=True)
    return pd.concat([meas, proj], ignore_index=True)


_CHOSEN: dict[tuple, tuple[pd.DataFrame, pd.DataFrame]] = {}


def _choose(rows: pd.DataFrame, slo_ms: float | None, order: list[str]) -> pd.DataFrame:
    """:func:`_choose_uncached`, memoized for the shared prepared frames of :func:`_prepare`.

    A what-if that changes traffic, growth or prices keeps the latency target, so the chosen
    batches are reused. The cache holds a reference to ``rows`` (so its id cannot be reused by
    another frame) and hands out copies (callers add columns).
    """
    key = (id(rows), slo_ms, tuple(order))
    hit = _CHOSEN.get(key)
    if hit is None or hit[0] is not rows:
        if len(_CHOSEN) >= 16:
            _CHOSEN.pop(next(iter(_CHOSEN)))
        hit = (rows, _choose_uncached(rows, slo_ms, order))
        _CHOSEN[key] = hit
    return hit[1].copy()


def _choose_uncached(rows: pd.DataFrame, slo_ms: float | None, order: list[str]) -> pd.DataFrame:
    """Pick the batch per candidate x hardware (see module docstring); flag infeasible ones."""
    keys = ["candidate", "hardware"]
    rows = rows.copy()
    tput = rows["throughput_items_per_s"].to_numpy(float)
    lat = rows["latency_p95_ms"].to_numpy(float)
    usable = (rows["projection_note"].to_numpy(str) == "") & np.isfinite(tput) & (tput > 0) & np.isfinite(lat)
    ok = usable & ((lat <= slo_ms) if slo_ms is not None else True)
    rows["_usable"] = usable
    rows["_ok"] = ok
    if slo_ms is not None:
        sort_cols, asc = keys + ["batch_size"], [True, True, True]
    else:
        rows["_negb"] = -rows["batch_size"].to_numpy(float)
        sort_cols, asc = keys + ["throughput_items_per_s", "_negb"], [True, True, True, True]
    chosen = rows[ok].sort_values(sort_cols, ascending=asc, kind="mergesort").drop_duplicates(keys, keep="last")
    groups = rows.drop_duplicates(keys)[keys + ["provenance", "energy_source", "projected_from",
                                                 "efficiency", "efficiency_source"]]
    best_lat = rows[usable].groupby(keys, sort=False)["latency_p95_ms"].min().rename("_best_lat")
    first_note = rows[rows["projection_note"] != ""].groupby(keys, sort=False)["projection_note"].first() \
        .rename("_note")
    cols = keys + ["batch_size", "latency_p95_ms", "throughput_items_per_s", "energy_per_item_j",
                   "idle_power_w", "provenance", "energy_source", "projected_from", "efficiency",
                   "efficiency_source"]
    opt = groups[keys].merge(chosen[cols], on=keys, how="left")
    # groups without a chosen row take their labels from the first row
    for c in ("provenance", "energy_source", "projected_from", "efficiency", "efficiency_source"):
        opt[c] = opt[c].where(opt["batch_size"].notna(), groups[c].to_numpy())
    opt = opt.merge(best_lat, left_on=keys, right_index=True, how="left")
    opt = opt.merge(first_note, left_on=keys, right_index=True, how="left")
    feasible = opt["batch_size"].notna().to_numpy()
    reason = np.full(len(opt), "", dtype=object)
    for i in np.flatnonzero(~feasible):
        if pd.notna(opt["_best_lat"].iat[i]):
            reason[i] = (f"no measured batch size meets p95 <= {slo_ms:g} ms "
                         f"(best p95 {opt['_best_lat'].iat[i]:.4g} ms)")
        elif isinstance(opt["_note"].iat[i], str):
            reason[i] = opt["_note"].iat[i]
        else:
            reason[i] = "no usable measurement (throughput or latency missing)"
    opt["latency_p95_ms"] = np.where(feasible, opt["latency_p95_ms"], opt["_best_lat"])
    opt["feasible"] = feasible
    opt["infeasible_reason"] = reason
    opt["slo_met"] = feasible & (True if slo_ms is None else (opt["latency_p95_ms"].to_numpy(float) <= slo_ms))
    # stable order: candidates as first seen, hardware as first seen (measured, then targets)
    cand_rank = {c: i for i, c in enumerate(dict.fromkeys(order))}
    hw_rank = {h: i for i, h in enumerate(dict.fromkeys(rows["hardware"]))}
    opt["_cr"] = opt["candidate"].map(cand_rank)
    opt["_hr"] = opt["hardware"].map(hw_rank)
    opt = opt.sort_values(["_cr", "_hr"], kind="mergesort").reset_index(drop=True)
    return opt.drop(columns=["_best_lat", "_note", "_cr", "_hr"])


def _attach_prices(opt: pd.DataFrame, prices: Prices, cat: pd.DataFrame) -> pd.DataFrame:
    """Price per hour, capex and their sources per option (override > catalog > NaN)."""
    cidx = cat.set_index("name")
    uniq = list(dict.fromkeys(opt["hardware"]))
    match = _match_map(uniq, cat)
    over_h = _resolve_overrides(prices.price_per_hour, cat)
    over_c = _resolve_overrides(prices.capex_usd, cat)
    table: dict[str, tuple] = {}
    for hw in uniq:  # one lookup per distinct hardware, then mapped onto the options
        cname = match[hw]
        rec: list[Any] = [cname]
        for over, col, src_col, date_col in (
                (over_h, "price_per_hour_usd", "price_source", "price_date"),
                (over_c, "capex_usd", "capex_source", "capex_date")):
            if hw in over:
                rec += [over[hw], "entered"]
            elif cname and cname in over:
                rec += [over[cname], "entered"]
            elif cname and pd.notna(cidx.at[cname, col]):
                rec += [float(cidx.at[cname, col]),
                        f"catalog: {cidx.at[cname, src_col]} ({cidx.at[cname, date_col]})"]
            else:
                rec += [np.nan, "missing"]
        table[hw] = tuple(rec)
    recs = [table[hw] for hw in opt["hardware"]]
    out = opt.copy()
    for j, col in enumerate(("catalog_name", "price_per_hour_usd", "price_source", "capex_usd", "capex_source")):
        out[col] = [r[j] for r in recs]
    out["price_per_hour_usd"] = out["price_per_hour_usd"].astype(float)
    out["capex_usd"] = out["capex_usd"].astype(float)
    return out


def _resolve_overrides(over: Mapping[str, float], cat: pd.DataFrame) -> dict[str, float]:
    """User price keys, plus their catalog names as keys (so 'NVIDIA L4' also prices 'L4')."""
    out = dict(over)
    for k, v in over.items():
        row = _cat.find_hardware(k, cat)
        if row is not None and row["name"] not in over:
            out[str(row["name"])] = v
    return out


# --------------------------------------------------------------------------------------------
# the vectorized engine
# --------------------------------------------------------------------------------------------

def _traffic(wl: InferenceWorkload, traffic: np.ndarray, growth: np.ndarray) -> np.ndarray:
    """requests per month, shape (months, samples)."""
    m = np.arange(wl.months, dtype=float)[:, None]
    return wl.requests_per_day * traffic[None, :] * (1.0 + growth[None, :]) ** m * wl.hours_per_month / 24.0


def _engine(opt: dict[str, np.ndarray], wl: InferenceWorkload, pr: Prices,
            traffic: np.ndarray, growth: np.ndarray, pmult: np.ndarray) -> dict[str, np.ndarray]:
    """Monthly figures for K options x M months x S samples (arrays shaped (K, M, S)).

    ``opt`` holds per-option arrays (K,): capacity, throughput, energy_per_item_j, idle_power_w,
    price_per_hour, capex_per_month (NaN where infeasible or unknown).
    """
    requests = _traffic(wl, traffic, growth)                    # (M, S)
    items = requests * wl.items_per_request
    hpm = wl.hours_per_month
    peak = items * (wl.peak_to_average / (hpm * 3600.0))        # (M, S) items/s
    cap = opt["capacity"][:, None, None]
    if wl.daily_profile is None:
        inst = np.ceil(peak[None] / cap - 1e-9)
        np.maximum(inst, wl.min_replicas, out=inst)
        inst_h = inst * hpm
    else:
        # autoscaling: one instance count per hour of the day; hours with the same weight share
        # one computation (<= 24 array operations, none per option, month or sample)
        weights, counts = np.unique(np.asarray(wl.daily_profile), return_counts=True)
        load = peak[None] / cap                                  # (K, M, S) instances at weight 1
        inst_h = np.zeros_like(load)
        i_h = np.empty_like(load)
        for wgt, n in zip(weights, counts):                     # ascending weights
            np.multiply(load, wgt, out=i_h)
            i_h -= 1e-9
            np.ceil(i_h, out=i_h)
            np.maximum(i_h, wl.min_replicas, out=i_h)
            if wgt == weights[-1]:
                inst = i_h.copy()                                # the busiest hour's count
            i_h *= hpm * n / 24.0
            inst_h += i_h
        peak = peak * weights[-1]
    busy_s = items[None] / opt["throughput"][:, None, None]
    idle_s = inst_h * 3600.0 - busy_s
    np.maximum(idle_s, 0.0, out=idle_s)
    energy_j = items[None] * opt["energy_per_item_j"][:, None, None] + opt["idle_power_w"][:, None, None] * idle_s
    energy_kwh = energy_j * (pr.pue / 3.6e6)
    if pr.mode == "cloud":
        cost = inst_h * opt["price_per_hour"][:, None, None]
    else:
        cost = inst * opt["capex_per_month"][:, None, None] + energy_kwh * pr.electricity_price_per_kwh
    cost = cost * pmult[None, None, :]
    return {"requests": requests, "items": items, "peak": peak, "instances": inst,
            "instance_hours": inst_h, "cost": cost, "energy_kwh": energy_kwh}


def _quarter_sum(x: np.ndarray, months: int, how: str = "sum") -> np.ndarray:
    """Sum (or max) consecutive 3-month blocks along axis 1 of (K, M, ...) -> (K, Q, ...)."""
    q = -(-months // 3)
    pad = q * 3 - months
    if pad:
        widths = [(0, 0)] * x.ndim
        widths[1] = (0, pad)
        x = np.pad(x, widths, constant_values=0.0)
    x = x.reshape(x.shape[0], q, 3, *x.shape[2:])
    return x.max(axis=2) if how == "max" else x.sum(axis=2)


def _tri(rng: np.random.Generator, lo: float, mode: float, hi: float, n: int) -> np.ndarray:
    if hi <= lo:
        return np.full(n, mode)
    return rng.triangular(lo, mode, hi, size=n)


def _percentiles(x: np.ndarray) -> np.ndarray:
    """P10/P50/P90 along the last axis -> (3, ...)."""
    return np.percentile(x, _PCT, axis=-1)


def _inference(opt: pd.DataFrame, wl: InferenceWorkload, pr: Prices, samples: int, seed: int,
               unc: Uncertainty) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    K, M = len(opt), wl.months
    feasible = opt["feasible"].to_numpy(bool)
    tput = np.where(feasible, opt["throughput_items_per_s"].to_numpy(float), np.nan)
    arrs = {
        "capacity": tput * wl.target_utilization,
        "throughput": tput,
        "energy_per_item_j": opt["energy_per_item_j"].to_numpy(float),
        "idle_power_w": opt["idle_power_w"].to_numpy(float),
        "price_per_hour": opt["price_per_hour_usd"].to_numpy(float),
        "capex_per_month": opt["capex_usd"].to_numpy(float) / pr.lifetime_months,
    }
    base = _engine(arrs, wl, pr, np.ones(1), np.full(1, wl.monthly_growth), np.ones(1))
    inst = base["instances"][..., 0]
    inst_h = base["instance_hours"][..., 0]
    cost = base["cost"][..., 0]
    energy = base["energy_kwh"][..., 0]
    g = pr.grid_intensity_gco2_per_kwh / 1000.0
    co2 = energy * g
    requests = np.broadcast_to(base["requests"][:, 0], (K, M))
    items = np.broadcast_to(base["items"][:, 0], (K, M))
    with np.errstate(divide="ignore", invalid="ignore"):
        cpk = cost / requests * 1000.0

    pct_m: dict[str, np.ndarray] = {}
    pct_q: dict[str, np.ndarray] = {}
    pct_t: dict[str, np.ndarray] = {}
    if samples > 0:
        rng = np.random.default_rng(seed)
        tr = _tri(rng, *((unc.traffic[0], 1.0, unc.traffic[1]) if unc.traffic else (1, 1, 1)), samples)
        if unc.growth:
            lo, hi = unc.growth
            if not lo <= wl.monthly_growth <= hi:
                raise ValidationError("growth", f"uncertainty range ({lo:g}, {hi:g}) must bracket the "
                                                f"workload's monthly_growth {wl.monthly_growth:g}")
            gr = _tri(rng, lo, wl.monthly_growth, hi, samples)
        else:
            gr = np.full(samples, wl.monthly_growth)
        pm = _tri(rng, *((unc.price[0], 1.0, unc.price[1]) if unc.price else (1, 1, 1)), samples)
        fk = np.flatnonzero(feasible)
        sub = {k: v[fk] for k, v in arrs.items()}
        mc = _engine(sub, wl, pr, tr, gr, pm)
        for name, x in (("cost_usd", mc["cost"]), ("energy_kwh", mc["energy_kwh"])):
            full_m = np.full((3, K, M), np.nan)
            full_m[:, fk] = _percentiles(x)
            pct_m[name] = full_m
            qs = _quarter_sum(x, M)
            full_q = np.full((3, K, qs.shape[1]), np.nan)
            full_q[:, fk] = _percentiles(qs)
            pct_q[name] = full_q
            full_t = np.full((3, K), np.nan)
            full_t[:, fk] = _percentiles(x.sum(axis=1))
            pct_t[name] = full_t
        for d in (pct_m, pct_q, pct_t):
            d["co2_kg"] = d["energy_kwh"] * g   # CO2 is energy x a constant: same percentiles

    # ---------------- monthly frame
    rep = lambda col: np.repeat(opt[col].to_numpy(), M)  # noqa: E731
    month = np.tile(np.arange(M), K)
    monthly = {
        "candidate": rep("candidate"), "hardware": rep("hardware"), "catalog_name": rep("catalog_name"),
        "provenance": rep("provenance"), "energy_source": rep("energy_source"),
        "month": month, "quarter": month // 3 + 1,
        "requests": requests.ravel(), "items": items.ravel(),
        "avg_items_per_s": (items / (wl.hours_per_month * 3600.0)).ravel(),
        "peak_items_per_s": np.broadcast_to(base["peak"][:, 0], (K, M)).ravel(),
        "batch_size": rep("batch_size"), "latency_p95_ms": rep("latency_p95_ms"),
        "slo_met": rep("slo_met"), "throughput_items_per_s": np.repeat(tput, M),
        "capacity_items_per_s": np.repeat(arrs["capacity"], M),
        "instances": inst.ravel(), "instance_hours": inst_h.ravel(),
        "instances_avg": (inst_h / wl.hours_per_month).ravel(),
        "price_per_hour_usd": rep("price_per_hour_usd"),
        "cost_usd": cost.ravel(), "energy_kwh": energy.ravel(), "co2_kg": co2.ravel(),
        "cost_per_1k_requests_usd": cpk.ravel(),
        "feasible": rep("feasible"), "infeasible_reason": rep("infeasible_reason"),
        "quality": rep("quality"),
    }
    for name, p in pct_m.items():
        for j, q in enumerate(_PCT):
            monthly[f"{name}_p{q}"] = p[j].ravel()
    monthly_df = pd.DataFrame(monthly)

    # ---------------- quarterly frame
    Q = -(-M // 3)
    qrep = lambda col: np.repeat(opt[col].to_numpy(), Q)  # noqa: E731
    q_req = _quarter_sum(np.ascontiguousarray(requests), M)
    q_cost = _quarter_sum(cost, M)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_cpk = q_cost / q_req * 1000.0
    q_months = np.minimum(3, M - 3 * np.arange(Q))
    quarterly = {
        "candidate": qrep("candidate"), "hardware": qrep("hardware"), "catalog_name": qrep("catalog_name"),
        "provenance": qrep("provenance"), "energy_source": qrep("energy_source"),
        "quarter": np.tile(np.arange(1, Q + 1), K), "months_in_quarter": np.tile(q_months, K),
        "requests": q_req.ravel(), "items": _quarter_sum(np.ascontiguousarray(items), M).ravel(),
        "instances": _quarter_sum(inst, M, "max").ravel(),
        "instance_hours": _quarter_sum(inst_h, M).ravel(),
        "cost_usd": q_cost.ravel(), "energy_kwh": _quarter_sum(energy, M).ravel(),
        "co2_kg": _quarter_sum(co2, M).ravel(), "cost_per_1k_requests_usd": q_cpk.ravel(),
        "batch_size": qrep("batch_size"), "latency_p95_ms": qrep("latency_p95_ms"),
        "slo_met": qrep("slo_met"), "feasible": qrep("feasible"),
        "infeasible_reason": qrep("infeasible_reason"), "quality": qrep("quality"),
    }
    for name, p in pct_q.items():
        for j, q in enumerate(_PCT):
            quarterly[f"{name}_p{q}"] = p[j].ravel()
    quarterly_df = pd.DataFrame(quarterly)

    # ---------------- summary frame
    tot_req = requests.sum(axis=1)
    tot_cost = cost.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tot_cpk = tot_cost / tot_req * 1000.0
    summary = {c: opt[c].to_numpy() for c in (
        "candidate", "hardware", "catalog_name", "provenance", "energy_source", "feasible",
        "infeasible_reason", "batch_size", "latency_p95_ms", "slo_met")}
    summary.update({
        "throughput_items_per_s": tput, "capacity_items_per_s": arrs["capacity"],
        "price_per_hour_usd": opt["price_per_hour_usd"].to_numpy(float),
        "price_source": opt["price_source"].to_numpy() if pr.mode == "cloud" else
        np.char.add("on-prem capex: ", opt["capex_source"].to_numpy(str).astype("U")),
        "instances_first_month": inst[:, 0], "instances_max": inst.max(axis=1),
        "requests": tot_req, "instance_hours": inst_h.sum(axis=1), "cost_usd": tot_cost,
        "first_quarter_cost_usd": q_cost[:, 0], "cost_per_1k_requests_usd": tot_cpk,
        "energy_kwh": energy.sum(axis=1), "co2_kg": co2.sum(axis=1),
        "quality": opt["quality"].to_numpy(float), "efficiency": opt["efficiency"].to_numpy(float),
        "efficiency_source": opt["efficiency_source"].to_numpy(),
        "projected_from": opt["projected_from"].to_numpy(),
    })
    for name, p in pct_t.items():
        for j, q in enumerate(_PCT):
            summary[f"{name}_p{q}"] = p[j]
    summary_df = pd.DataFrame(summary)
    return monthly_df, quarterly_df, summary_df


def _training_options(df: pd.DataFrame, candidates: list[str], hardware: list[str], targets: list[str],
                      cat: pd.DataFrame, tw: TrainingWorkload, eff_assumed: float) -> pd.DataFrame:
    """One row per candidate x hardware with training throughput/energy (measured, roofline
    projected, or FLOPs-only projected)."""
    rows = _with_projection(df, "training", targets, cat, eff_assumed)
    cols = ["candidate", "hardware", "batch_size", "throughput_items_per_s", "energy_per_item_j",
            "provenance", "energy_source", "efficiency_source", "projection_note"]
    have = pd.DataFrame(columns=cols)
    if not rows.empty:
        ok = (rows["projection_note"] == "") & (rows["throughput_items_per_s"] > 0) \
            & rows["energy_per_item_j"].notna()
        have = rows[ok].sort_values(["candidate", "hardware", "throughput_items_per_s"], kind="mergesort") \
            .drop_duplicates(["candidate", "hardware"], keep="last")[cols]
    cidx = cat.set_index("name")
    match = _match_map(list(hardware), cat)
    trained = set(rows["candidate"]) if not rows.empty else set()
    inf = df[df["mode"] == "inference"]
    out = []
    have_keys = set(zip(have["candidate"], have["hardware"]))
    notes = {}
    if not rows.empty:
        for c, h, n in zip(rows["candidate"], rows["hardware"], rows["projection_note"]):
            if n:
                notes.setdefault((c, h), n)
    for c in candidates:
        flops_rows = inf[(inf["candidate"] == c) & inf["flops_per_item"].notna()]
        fpi = float(flops_rows["flops_per_item"].iloc[-1]) if not flops_rows.empty else np.nan
        dtype = str(flops_rows["dtype"].iloc[-1]) if not flops_rows.empty else ""
        for h in hardware:
            if (c, h) in have_keys:
                continue
            base = {"candidate": c, "hardware": h, "batch_size": np.nan, "throughput_items_per_s": np.nan,
                    "energy_per_item_j": np.nan, "provenance": "projected", "energy_source": "projected",
                    "efficiency_source": "", "projection_note": ""}
            cname = match[h]
            if c in trained:
                base["projection_note"] = notes.get((c, h), f"no training measurement for {c} on {h}")
            elif not np.isfinite(fpi):
                base["projection_note"] = f"no training measurement and flops_per_item unknown for {c}"
            elif not cname:
                base["projection_note"] = f"no training measurement and {h} is not in the catalog"
            else:
                col = _cat.dtype_peak_column(dtype) or "peak_fp32_flops"
                peak = float(cidx.at[cname, col])
                if not np.isfinite(peak):
                    base["projection_note"] = f"no {col} for {cname} in the catalog"
                else:
                    tp = peak * tw.assumed_utilization / (3.0 * fpi)
                    base.update(throughput_items_per_s=tp,
                                energy_per_item_j=float(cidx.at[cname, "rated_power_w"]) / tp,
                                efficiency_source=(f"assumed utilization {tw.assumed_utilization:g} of "
                                                   f"{cname} {col} (3 x forward FLOPs per item)"))
            out.append(base)
    opt = pd.concat([have, pd.DataFrame(out, columns=cols)], ignore_index=True) if out else have.copy()
    cand_rank = {c: i for i, c in enumerate(candidates)}
    hw_rank = {h: i for i, h in enumerate(hardware)}
    opt = opt[opt["candidate"].isin(cand_rank) & opt["hardware"].isin(hw_rank)]
    opt = opt.assign(_cr=opt["candidate"].map(cand_rank), _hr=opt["hardware"].map(hw_rank)) \
        .sort_values(["_cr", "_hr"], kind="mergesort").drop(columns=["_cr", "_hr"]).reset_index(drop=True)
    return opt


def _training(opt: pd.DataFrame, tw: TrainingWorkload, pr: Prices, quarters: int, samples: int,
              seed: int, unc: Uncertainty, quality: Mapping[str, float]) -> pd.DataFrame:
    tput = opt["throughput_items_per_s"].to_numpy(float)
    feasible = np.isfinite(tput) & (tput > 0) & (opt["projection_note"].to_numpy(str) == "")
    tput = np.where(feasible, tput, np.nan)
    epi = opt["energy_per_item_j"].to_numpy(float)
    items = tw.items_per_run * tw.epochs
    wall_s = items / (tput * tw.devices_per_run * tw.scaling_efficiency)
    dev_h = tw.devices_per_run * wall_s / 3600.0
    energy_run = dev_h * 3600.0 * epi * tput / 3.6e6 * pr.pue
    if pr.mode == "cloud":
        cost_run = dev_h * opt["price_per_hour_usd"].to_numpy(float)
    else:
        cost_run = dev_h * opt["capex_usd"].to_numpy(float) / (pr.lifetime_months * HOURS_PER_MONTH) \
            + energy_run * pr.electricity_price_per_kwh
    K = len(opt)
    rep = lambda a: np.repeat(np.asarray(a), quarters)  # noqa: E731
    runs = tw.runs_per_quarter
    g = pr.grid_intensity_gco2_per_kwh / 1000.0
    out = {
        "candidate": rep(opt["candidate"]), "hardware": rep(opt["hardware"]),
        "catalog_name": rep(opt["catalog_name"]), "provenance": rep(opt["provenance"]),
        "energy_source": rep(opt["energy_source"]), "quarter": np.tile(np.arange(1, quarters + 1), K),
        "runs": np.full(K * quarters, runs), "items_per_run": np.full(K * quarters, tw.items_per_run),
        "epochs": np.full(K * quarters, tw.epochs), "devices_per_run": np.full(K * quarters, tw.devices_per_run),
        "batch_size": rep(opt["batch_size"].to_numpy(float)), "throughput_items_per_s": rep(tput),
        "wall_clock_days_per_run": rep(wall_s / 86400.0), "device_hours_per_run": rep(dev_h),
        "device_hours": rep(dev_h * runs), "cost_per_run_usd": rep(cost_run), "cost_usd": rep(cost_run * runs),
        "energy_kwh": rep(energy_run * runs), "co2_kg": rep(energy_run * runs * g),
        "feasible": rep(feasible),
        "infeasible_reason": rep(np.where(feasible, "", opt["projection_note"].to_numpy(str)).astype(object)),
        "efficiency_source": rep(opt["efficiency_source"]),
        "quality": rep(opt["candidate"].map(quality).to_numpy(float)),
    }
    if samples > 0:
        rng = np.random.default_rng([seed, 1])
        pm = _tri(rng, *((unc.price[0], 1.0, unc.price[1]) if unc.price else (1, 1, 1)), samples)
        pc = np.percentile(np.asarray(out["cost_usd"])[:, None] * pm[None, :], _PCT, axis=-1)
        for j, q in enumerate(_PCT):
            out[f"cost_usd_p{q}"] = pc[j]
            out[f"energy_kwh_p{q}"] = out["energy_kwh"]
            out[f"co2_kg_p{q}"] = out["co2_kg"]
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------------

def plan(measurements: Any, inference: InferenceWorkload | None = None,
         training: TrainingWorkload | None = None, prices: Prices | None = None,
         hardware: Iterable[str] | str | None = None, samples: int = 0, seed: int = 0, *,
         uncertainty: Uncertainty | None = None, catalog: pd.DataFrame | str | Path | None = None,
         assumed_efficiency: float = ASSUMED_EFFICIENCY) -> Plan:
    """Project cost, energy and CO2 of every candidate on every hardware option.

    Parameters
    ----------
    measurements: a ``Measurements`` (anything with ``to_frame()``) or the tidy DataFrame
        (:mod:`effplan.schema`); validated by ``normalize_measurements``; rows with status
        ``error`` are ignored.
    inference / training: the workloads (at least one).
    prices: :class:`Prices` (default ``Prices()``: catalog prices, PUE 1.0, world-average grid).
    hardware: catalog names to project to (roofline, see :func:`project`) besides the hardware
        the candidates were measured on. An unknown name raises ValidationError('hardware').
    samples, seed: Monte Carlo samples (0 = deterministic only) and the RNG seed.
    uncertainty: ranges for the samples (default :class:`Uncertainty()`).
    catalog: a catalog DataFrame or CSV path (default: the shipped catalog); pass
        ``load_catalog(include_this_machine=True)`` to price the machine you measured on.
    assumed_efficiency: roofline efficiency used when the measured hardware is not in the catalog.

    Returns a :class:`Plan`; see the module docstring for every formula and :class:`Plan` for the
    columns. A candidate that cannot meet the latency target on some hardware is a flagged row
    (``feasible=False``, NaN cost), never an error.
    """
    if inference is None and training is None:
        raise ValidationError("inference", "give an InferenceWorkload and/or a TrainingWorkload")
    if inference is not None and not isinstance(inference, InferenceWorkload):
        raise ValidationError("inference", f"expected InferenceWorkload, got {type(inference).__name__}")
    if training is not None and not isinstance(training, TrainingWorkload):
        raise ValidationError("training", f"expected TrainingWorkload, got {type(training).__name__}")
    prices = Prices() if prices is None else prices
    if not isinstance(prices, Prices):
        raise ValidationError("prices", f"expected Prices, got {type(prices).__name__}")
    samples = _num("samples", samples, lo=0, hi=1_000_000, integer=True)
    seed = _num("seed", seed, lo=0, integer=True)
    unc = Uncertainty() if uncertainty is None else uncertainty
    eff_assumed = _num("assumed_efficiency", assumed_efficiency, lo=0, lo_open=True, hi=1)
    cat, cat_key = _catalog_frame(catalog)
    targets = _resolve_targets(hardware, cat)
    df, inf_rows = _prepare(measurements, targets, cat, cat_key, eff_assumed)
    candidates = list(dict.fromkeys(df["candidate"]))
    quality = df.groupby("candidate", sort=False)["quality"].last().to_dict()   # last non-NaN

    monthly = pd.DataFrame(columns=list(MONTHLY_COLUMNS))
    quarterly = pd.DataFrame(columns=list(QUARTERLY_COLUMNS))
    summary = pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    hw_all = list(dict.fromkeys(list(df["hardware"]) + targets))
    if inference is not None:
        rows = inf_rows
        if rows.empty:
            raise ValidationError("mode", "no mode='inference' rows in the measurements for the "
                                          "InferenceWorkload")
        opt = _choose(rows, inference.slo_p95_ms, candidates)
        opt["quality"] = opt["candidate"].map(quality).astype(float)
        opt = _attach_prices(opt, prices, cat)
        _warn_missing(opt, prices)
        monthly, quarterly, summary = _inference(opt, inference, prices, samples, seed, unc)
        hw_all = list(dict.fromkeys(list(opt["hardware"])))

    training_df = None
    if training is not None:
        quarters = training.quarters or (-(-inference.months // 3) if inference is not None else 4)
        topt = _training_options(df, candidates, hw_all, targets, cat, training, eff_assumed)
        topt = _attach_prices(topt, prices, cat)
        _warn_missing(topt[topt["projection_note"] == ""], prices)
        training_df = _training(topt, training, prices, quarters, samples, seed, unc, quality)
        sums = ["device_hours", "cost_usd", "energy_kwh", "co2_kg"]
        tot = training_df.groupby(["candidate", "hardware"], sort=False)[sums].sum(min_count=1) \
            .rename(columns=lambda c: f"training_{c}").reset_index()
        if inference is None:
            summary = topt[["candidate", "hardware", "catalog_name", "provenance", "energy_source",
                            "efficiency_source"]].copy()
            summary["feasible"] = training_df.groupby(["candidate", "hardware"], sort=False)[
                "feasible"].all().to_numpy()
            summary["quality"] = summary["candidate"].map(quality).astype(float)
            summary = summary.merge(tot, on=["candidate", "hardware"], how="left")
            summary["total_cost_usd"] = summary["training_cost_usd"]
        else:
            summary = summary.merge(tot, on=["candidate", "hardware"], how="left")
            summary["total_cost_usd"] = summary["cost_usd"] + summary["training_cost_usd"].where(
                summary["training_cost_usd"].notna() | ~summary["feasible"], 0.0)

    sort_col = "cost_usd" if inference is not None else "total_cost_usd"
    if not summary.empty:
        summary = summary.sort_values(["feasible", sort_col], ascending=[False, True], kind="mergesort",
                                      na_position="last").reset_index(drop=True)
    inputs = {
        "effplan_plan_version": 1,
        "inference": inference.to_dict() if inference is not None else None,
        "training": training.to_dict() if training is not None else None,
        "prices": prices.to_dict(),
        "hardware": targets,
        "samples": samples, "seed": seed,
        "uncertainty": unc.to_dict() if samples > 0 else None,
        "assumed_efficiency": eff_assumed,
        "idle_power_fraction": dict(IDLE_POWER_FRACTION),
        "months": inference.months if inference is not None else None,
        "catalog": "shipped" if catalog is None else (str(catalog) if not isinstance(catalog, pd.DataFrame)
                                                      else "DataFrame"),
    }
    return Plan(monthly=monthly, quarterly=quarterly, summary=summary, training=training_df, inputs=inputs)


def _warn_missing(opt: pd.DataFrame, prices: Prices) -> None:
    if prices.mode == "cloud":
        miss = opt.loc[opt["price_per_hour_usd"].isna(), "hardware"].unique()
        what = "price_per_hour"
    else:
        miss = opt.loc[opt["capex_usd"].isna(), "hardware"].unique()
        what = "capex_usd"
    if len(miss):
        names = ", ".join(repr(m) for m in miss)
        warnings.warn(f"no {what} for {names}: their cost is NaN. Pass Prices({what}={{{miss[0]!r}: ...}}) "
                      "or a catalog that lists them (for the machine you measured on: "
                      "catalog=effplan.load_catalog(include_this_machine=True))", PlanWarning, stacklevel=3)


def compare_scenarios(scenarios: Mapping[str, Any], measurements: Any, **plan_kwargs: Any) -> pd.DataFrame:
    """Plan each named scenario and stack the summaries side by side (first column ``scenario``).

    Each value is ``(InferenceWorkload, Prices)``, ``(InferenceWorkload, Prices, TrainingWorkload)``,
    a dict of :func:`plan` keyword arguments, or an already computed :class:`Plan`.
    ``plan_kwargs`` (e.g. ``hardware=``, ``samples=``) apply to every scenario unless a dict
    overrides them.
    """
    if not scenarios:
        raise ValidationError("scenarios", "give at least one named scenario")
    frames = []
    for name, sc in scenarios.items():
        if isinstance(sc, Plan):
            p = sc
        elif isinstance(sc, Mapping):
            p = plan(measurements, **{**plan_kwargs, **sc})
        elif isinstance(sc, (tuple, list)) and len(sc) in (2, 3):
            kw = dict(plan_kwargs, inference=sc[0], prices=sc[1])
            if len(sc) == 3:
                kw["training"] = sc[2]
            p = plan(measurements, **kw)
        else:
            raise ValidationError("scenarios", f"scenario {name!r}: expected (inference, prices[, training]), "
                                               "a dict of plan() arguments or a Plan")
        s = p.summary.copy()
        s.insert(0, "scenario", name)
        frames.append(s)
    return pd.concat(frames, ignore_index=True)
