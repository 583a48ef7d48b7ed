"""Planning inputs: workloads, prices, uncertainty, grid data, number validation, the
measurement and catalog frames planning reads, hardware-name matching and the constants.

numpy/pandas only. Every dataclass here is frozen and validates itself: a bad field raises
:class:`~effplan.errors.ValidationError` naming it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ..refdata import catalog as _cat
from ..errors import PlanWarning, ValidationError
from ..records.schema import normalize_measurements
from ..records.schema import number as schema_number
from .calendar import parse_month
from .stability import busy_sentence, flag_columns, resolve_allow_unstable, worst

#: efficiency (fraction of the roofline time achieved) assumed when the measured hardware is not
#: in the catalog, so the local run cannot calibrate it. A rough, deliberately modest default:
#: small models at small batch sizes often reach far less; pass ``assumed_efficiency=`` to change.
ASSUMED_EFFICIENCY = 0.4

#: idle power of projected hardware as a fraction of its rated power, by catalog ``kind``
#: (the same assumption the energy meter's estimate uses; see :mod:`effplan.catalog`).
IDLE_POWER_FRACTION: Mapping[str, float] = _cat.IDLE_POWER_FRACTION

#: hours per month used for training on-prem amortization and as the workload default
HOURS_PER_MONTH = 730.0


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------

def _num(field_name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False, integer: bool = False, where: str | None = None) -> float:
    """Validate one number with the shared rules of :func:`effplan.schema.number` (not a bool or
    text, finite, in range, whole when ``integer``); returns it as float (or int)."""
    return schema_number(field_name, value, lo=lo, hi=hi, lo_open=lo_open, integer=integer, where=where)


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
    slo_p95_ms: end-to-end p95 latency target in ms (batch formation + queueing + service, see
        :mod:`effplan.queueing`), or None for "no target" (> 0).
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
    max_batch_wait_ms: the longest a batch waits to fill before it is dispatched (a dynamic
        batcher's timeout), ms; caps the batch-formation time. ``None`` (default): no timeout. A
        batch size that on average cannot fill within it is not used.
    start: optional calendar month of month 0, ``"YYYY-MM"`` (e.g. ``"2026-10"``). Given, the
        plan's frames also carry calendar labels (``month_label`` "2026-10", ``quarter_label``
        "2026-Q4", see :mod:`effplan.planning.calendar`) and a bill can be read against it
        (:func:`effplan.actuals`). ``None`` (default): relative labels only (month 0, Q1).
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
    max_batch_wait_ms: float | None = None
    start: str | None = None

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
        if self.max_batch_wait_ms is not None:
            _set(self, "max_batch_wait_ms", _num("max_batch_wait_ms", self.max_batch_wait_ms,
                                                 lo=0))
        if self.start is not None:
            _set(self, "start", parse_month(self.start, "start", where="InferenceWorkload"))

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
    items_per_epoch: items in one epoch, i.e. one pass over the training data (> 0). Until
        0.1 this was called ``items_per_run``; :meth:`from_dict` still reads that key, with a
        DeprecationWarning.
    epochs: epochs per run (> 0).
    devices_per_run: devices (GPUs, or instances for CPU rows) per run (whole number >= 1).
    scaling_efficiency: multi-device throughput / (devices x single-device throughput), (0, 1].
    assumed_mfu: model FLOPs utilization (MFU): the share of catalog peak FLOP/s a training
        step reaches, used where only FLOPs are known, (0, 1]. ``None`` (default): a model-size-dependent range from
        ``effplan/data/training_utilization.csv`` (sourced), its geometric middle as the figure
        and the range drawn in Monte Carlo -- never a single 40%.
    quarters: horizon in quarters; None = the inference horizon (ceil(months / 3)) or 4.
    start: optional calendar month of the first quarter's first month, ``"YYYY-MM"`` (as
        :class:`InferenceWorkload`; with both workloads the two must agree).
    """

    runs_per_quarter: float
    items_per_epoch: float
    epochs: float = 1
    devices_per_run: int = 1
    scaling_efficiency: float = 1.0
    assumed_mfu: float | None = None
    quarters: int | None = None
    start: str | None = None

    def __post_init__(self) -> None:
        _set(self, "runs_per_quarter", _num("runs_per_quarter", self.runs_per_quarter, lo=0))
        _set(self, "items_per_epoch", _num("items_per_epoch", self.items_per_epoch, lo=0, lo_open=True))
        _set(self, "epochs", _num("epochs", self.epochs, lo=0, lo_open=True))
        _set(self, "devices_per_run", _num("devices_per_run", self.devices_per_run, lo=1, integer=True))
        _set(self, "scaling_efficiency", _num("scaling_efficiency", self.scaling_efficiency, lo=0,
                                              lo_open=True, hi=1))
        if self.assumed_mfu is not None:
            _set(self, "assumed_mfu", _num("assumed_mfu", self.assumed_mfu,
                                                   lo=0, lo_open=True, hi=1))
        if self.quarters is not None:
            _set(self, "quarters", _num("quarters", self.quarters, lo=1, hi=200, integer=True))
        if self.start is not None:
            _set(self, "start", parse_month(self.start, "start", where="TrainingWorkload"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingWorkload:
        """Inverse of :meth:`to_dict`; the old key ``items_per_run`` (it always meant items per
        epoch) is read as ``items_per_epoch`` with a DeprecationWarning."""
        if "items_per_run" in d:
            if "items_per_epoch" in d:
                raise ValidationError("items_per_run", "give items_per_epoch only (items_per_run is "
                                                       "its old name)")
            warnings.warn("TrainingWorkload: 'items_per_run' is renamed 'items_per_epoch' (it is "
                          "the items in one epoch); rename the key", DeprecationWarning, stacklevel=2)
            d = {("items_per_epoch" if k == "items_per_run" else k): v for k, v in d.items()}
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
    price_per_hour: hardware name -> price in USD per instance-hour: a hardware name of the plan,
        or the catalog name or alias of one, matched exactly ignoring case (a key matching no
        hardware of the plan raises UnknownHardwareError when planning). Missing names fall back
        to the catalog's ``price_per_hour_usd``; a name with no price anywhere gives NaN cost and
        a PlanWarning.
    pue: power usage effectiveness of the data centre (>= 1; 1.0 = count IT energy only).
    grid_gco2_per_kwh: grid carbon intensity in gCO2/kWh, or a region name; None = grid_region.
    grid_region: region in ``effplan/data/grid.csv`` (world, us, eu, france, germany, poland,
        sweden, uk, india, china) used when grid_gco2_per_kwh is None.
    electricity_usd_per_kwh: electricity price (on-premises mode); None = the region's price in
        grid.csv, else the US average (labelled so in ``electricity_source``).
    mode: ``"cloud"`` (pay per instance-hour) or ``"on-prem"`` (capex amortization + electricity).
    capex_usd: hardware name -> purchase price per instance in USD (on-prem); missing -> catalog.
    lifetime_months: depreciation period of purchased hardware (on-prem), months.
    currency: ``"USD"`` only. Every money figure and column is in US dollars (``_usd``) and the
        catalog's prices are USD, so another label would be a lie; convert your prices to USD
        first (another currency raises ValidationError).
    price_sources: key of ``price_per_hour`` -> where that price came from, shown as the option's
        ``price_source`` (default ``"entered"``: typed in by a person). E.g. this machine priced
        from the catalog's generic per-core row: ``"catalog estimate: generic CPU per core-hour,
        $0.045 x 2 cores (2024-06)"`` (:func:`effplan.notebook.prices_for`).
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
    price_sources: Mapping[str, str] | None = None

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
        if not isinstance(self.currency, str) or self.currency.strip().upper() != "USD":
            raise ValidationError("currency", f"{self.currency!r}: effplan plans in US dollars only "
                                              "(every money column is _usd and catalog prices are "
                                              "USD); convert your prices to USD and pass them in USD")
        _set(self, "currency", "USD")
        src = self.price_sources if self.price_sources is not None else {}
        if not isinstance(src, Mapping):
            raise ValidationError("price_sources", f"expected a mapping hardware name -> text, got "
                                                   f"{type(src).__name__}")
        _set(self, "price_sources", MappingProxyType({str(k): str(v) for k, v in src.items()}))

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.price_per_hour.items())), self.pue, self.grid_gco2_per_kwh,
                     self.grid_region, self.electricity_usd_per_kwh, self.mode,
                     tuple(sorted(self.capex_usd.items())), self.lifetime_months, self.currency,
                    tuple(sorted(self.price_sources.items()))))

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
        d["price_sources"] = dict(self.price_sources)
        d["resolved_grid_gco2_per_kwh"] = self.grid_intensity_gco2_per_kwh
        d["resolved_grid_source"] = self.grid_source
        d["resolved_electricity_per_kwh"] = self.electricity_price_per_kwh
        d["resolved_electricity_source"] = self.electricity_source
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Prices:
        """Inverse of :meth:`to_dict` (the ``resolved_*`` keys are ignored)."""
        return cls(**_known_fields(cls, {k: v for k, v in d.items() if not k.startswith("resolved_")}))


#: Default energy-per-item spread by ``energy_source`` (multipliers, triangular around 1).
#: ``estimated-tdp`` and ``projected`` figures are rated power x time: TDP is a maximum that real
#: workloads rarely reach (devsustainability.com, "How useful is GPU manufacturer TDP for
#: estimating AI workload energy?"), while CPUs under turbo can draw more than TDP (Anandtech,
#: "Why Intel processors draw more power than expected: TDP and turbo"; a 95 W-TDP i7-8700K drew
#: 134 W more loaded than idle, utcc.utoronto.ca/~cks TDPAndPowerDraw): 0.5-1.4. NVML power
#: readings are accurate to about +/-5% (NVML API reference, nvmlDeviceGetPowerUsage). Sources not
#: listed (rapl, entered) are taken as exact.
DEFAULT_ENERGY_SPREAD: Mapping[str, tuple[float, float]] = MappingProxyType({
    "estimated-tdp": (0.5, 1.4), "projected": (0.5, 1.4),
    "nvml-counter": (0.95, 1.05), "nvml-power": (0.95, 1.05),
})

#: Default spread of a projected row's throughput (multiplier, triangular around 1): projections
#: tend to be optimistic (issue 11: calibrated training projections came in 17% fast; roofline
#: projections to GPUs were far too fast before the launch floor), so the range is skewed low.
DEFAULT_EFFICIENCY_SPREAD: tuple[float, float] = (0.6, 1.15)


@dataclass(frozen=True)
class Uncertainty:
    """Ranges for Monte Carlo (triangular distributions: low, base, high). ``plan`` also takes
    a plain dict of these fields (``uncertainty={"traffic": (0.5, 1.5)}``).

    traffic: (low, high) multipliers of the workload's requests_per_day (base 1.0).
    growth: (low, high) monthly growth rates bracketing the workload's monthly_growth (absolute
        rates, e.g. (0.0, 0.08) around 0.04); None = growth is certain.
    price: (low, high) multipliers of every price (hourly, capex, electricity; base 1.0).
    measurement: draw each option's throughput from its measured spread: the relative half-width
        of the ~95% CI of the median (``latency_ci_rel``), as a normal error on latency
        (sigma = ci / 1.96, clipped to +/-3 sigma); rows without a CI are taken as exact.
    energy: energy-per-item (and idle power) multipliers by ``energy_source``:
        :data:`DEFAULT_ENERGY_SPREAD` (wide for ``estimated-tdp`` and ``projected``, sourced);
        None = exact.
    efficiency: throughput multipliers of projected rows (the projection's own error); FLOPs-only
        training rows use their utilization range instead. None = exact.
    """

    traffic: tuple[float, float] | None = (0.8, 1.2)
    growth: tuple[float, float] | None = None
    price: tuple[float, float] | None = (0.9, 1.1)
    measurement: bool = True
    energy: Mapping[str, tuple[float, float]] | None = field(
        default_factory=lambda: dict(DEFAULT_ENERGY_SPREAD))
    efficiency: tuple[float, float] | None = DEFAULT_EFFICIENCY_SPREAD

    def __post_init__(self) -> None:
        for name in ("traffic", "growth", "price", "efficiency"):
            val = getattr(self, name)
            if val is None:
                continue
            _set(self, name, _range(name, val, growth=name == "growth"))
        if not isinstance(self.measurement, bool):
            raise ValidationError("measurement", f"expected True or False, got {self.measurement!r}")
        if self.energy is not None:
            if not isinstance(self.energy, Mapping):
                raise ValidationError("energy", "expected {energy_source: (low, high)} or None, "
                                                f"got {self.energy!r}")
            _set(self, "energy", MappingProxyType(
                {str(k): _range(f"energy[{k!r}]", v) for k, v in self.energy.items()}))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "energy":
                d[f.name] = None if v is None else {k: list(r) for k, r in v.items()}
            elif isinstance(v, tuple):
                d[f.name] = list(v)
            else:
                d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Uncertainty:
        """From a plain dict of the fields (unknown keys raise ValidationError naming them)."""
        if not isinstance(d, Mapping):
            raise ValidationError("uncertainty", f"expected Uncertainty or a dict, got "
                                                 f"{type(d).__name__}")
        return cls(**_known_fields(cls, d))


def _range(name: str, val: Any, growth: bool = False) -> tuple[float, float]:
    if not isinstance(val, (tuple, list)) or len(val) != 2:
        raise ValidationError(name, f"expected (low, high), got {val!r}")
    lo = _num(f"{name}[0]", val[0], lo=-1 if growth else 0, lo_open=True)
    hi = _num(f"{name}[1]", val[1])
    if hi < lo:
        raise ValidationError(name, f"low {lo:g} > high {hi:g}")
    if not growth and not lo <= 1.0 <= hi:
        raise ValidationError(name, f"multipliers must bracket 1.0, got ({lo:g}, {hi:g})")
    return (lo, hi)


def _known_fields(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``d`` for ``cls(**...)``: a mapping, no unknown key, every required field."""
    if not isinstance(d, Mapping):
        raise ValidationError(cls.__name__, f"from_dict expects a mapping of field -> value, got "
                                            f"{type(d).__name__}")
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    unknown = [k for k in d if k not in names]
    if unknown:
        raise ValidationError(str(unknown[0]), f"unknown field for {cls.__name__} (known: "
                                               f"{', '.join(sorted(names))})")
    required = [f.name for f in fields if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and f.init]
    missing = [n for n in required if n not in d]
    if missing:
        raise ValidationError(missing[0], f"required field missing for {cls.__name__} (required: "
                                          f"{', '.join(required)})")
    return dict(d)


# --------------------------------------------------------------------------------------------
# measurements and catalog
# --------------------------------------------------------------------------------------------

def _canonical_hardware(names: pd.Series, cat: pd.DataFrame | None) -> pd.Series:
    """One spelling per hardware name that differs only in case or surrounding spaces ("l4" and
    "L4" are one hardware): the catalog name when it is one, else the first spelling seen."""
    canon: dict[str, str] = {}
    cat_names = {} if cat is None else {str(n).lower(): str(n) for n in cat["name"]}
    for n in dict.fromkeys(names.astype(str)):
        key = n.strip().lower()
        canon.setdefault(key, cat_names.get(key, n.strip()))
    # one lookup per distinct spelling, mapped onto the rows (no per-row Python)
    return names.astype(str).map({n: canon[n.strip().lower()] for n in dict.fromkeys(names.astype(str))})


def _measurement_frame(measurements: Any, cat: pd.DataFrame | None = None,
                       allow_unstable: bool | None = None) -> pd.DataFrame:
    """Tidy frame from a Measurements-like object (``to_frame()``) or a DataFrame; validated;
    rows with status 'error' dropped (a candidate left with no row is named in a
    :class:`PlanWarning` with its error); hardware names differing only in case made one
    (:func:`_canonical_hardware`); then, with a :class:`PlanWarning` for each that applies:

    * duplicates of a point (:func:`effplan.store.point_key`: candidate, host, hardware, mode,
      dtype, batch size, and prompt length for generation rows) keep the newest
      (:func:`effplan.store.dedupe`);
    * rows of several hosts with the same hardware name are combined per candidate x hardware x
      mode x batch size (x prompt length): every figure is the median over the hosts
      (:func:`_combine_hosts`); none is dropped, and the spread is in the warning and
      ``attrs["measurement_notes"]``;
    * the rule of :mod:`effplan.planning.stability` (``allow_unstable``; None = the default of
      :data:`effplan.defaults.ALLOW_UNSTABLE`): every row gets the flag columns
      (``timing_unstable``, ``timing_spread_rel``, ``background_load``); rows measured
      ``stable=False`` get ``plan_mark`` (used, flagged; it reaches ``efficiency_source``) or,
      strict, ``plan_note`` (refused with the reason: a candidate x hardware with only such rows
      is infeasible with it, on projected hardware too).
    """
    from ..records.store import dedupe

    if hasattr(measurements, "to_frame") and not isinstance(measurements, pd.DataFrame):
        measurements = measurements.to_frame()
    if isinstance(measurements, pd.DataFrame):
        # a hand-typed table that mixes rows with and without provenance: empty = entered
        fill = {c: "entered" for c in ("provenance", "energy_source")
                if c in measurements.columns and measurements[c].isna().any()}
        if fill:
            measurements = measurements.fillna(fill)
    df = normalize_measurements(measurements)
    notes: list[str] = []
    # a candidate with no usable row at all (a crash, an infeasible slim recipe) is named, never
    # dropped without a word
    ok_names = set(df.loc[df["status"] == "ok", "candidate"])
    gone = {str(c): str(e) for c, e in zip(df.loc[df["status"] != "ok", "candidate"],
                                            df.loc[df["status"] != "ok", "error"]) if c not in ok_names}
    if gone:
        msg = ("left out, no row measured without an error: "
               + "; ".join(f"{c} ({e.splitlines()[0] if e else 'error'})" for c, e in gone.items()))
        notes.append(msg)
        warnings.warn(f"plan(): {msg}", PlanWarning, stacklevel=4)
    df = df[df["status"] == "ok"]
    df = df.assign(hardware=_canonical_hardware(df["hardware"], cat)).reset_index(drop=True)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        df = dedupe(df)
    for w in got:  # re-issued as the planner's own warning, and kept with the plan's inputs
        notes.append(str(w.message))
        warnings.warn(f"plan(): {w.message}", PlanWarning, stacklevel=4)
    df, combined = _combine_hosts(df)
    notes.extend(combined)
    df = _mark_unstable(df, resolve_allow_unstable(allow_unstable), notes)
    df = df.reset_index(drop=True)
    df.attrs["measurement_notes"] = notes
    return df


#: What one point is, across hosts (generation rows also by prompt length; -1 = not generation).
_HOST_KEYS = ["candidate", "hardware", "mode", "batch_size", "_prompt"]


def _combine_hosts(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per candidate x hardware x mode x batch size: where several hosts (after
    de-duplication, so: several hosts) measured it, each numeric figure is the median of theirs
    (``hardware_id`` lists them joined by '+'; ``stable`` is False if any host's was). Returns
    the frame and one note per combined point with the throughput and p95 spread."""
    if df.empty:
        return df, []
    prompt = df["prompt_tokens"] if "prompt_tokens" in df.columns else pd.Series(np.nan, index=df.index)
    df = df.assign(_prompt=pd.to_numeric(prompt, errors="coerce").fillna(-1).to_numpy())
    size = df.groupby(_HOST_KEYS, sort=False)["candidate"].transform("size").to_numpy()
    if not (size > 1).any():
        return df.drop(columns="_prompt"), []
    from ..records.schema import MEASUREMENT_COLUMNS

    multi = df[size > 1]
    g = multi.groupby(_HOST_KEYS, sort=False)
    first = g.first()
    num = [c for c, (kind, _) in MEASUREMENT_COLUMNS.items()
           if kind in ("float", "int") and c not in _HOST_KEYS and c in df.columns]
    med = g[num].median()
    combined = first.copy()
    combined[num] = med[num]
    combined["hardware_id"] = g["hardware_id"].agg(lambda s: "+".join(dict.fromkeys(map(str, s))))
    if "stable" in df.columns:
        # False if any host's was; else unknown if any host's was; else True (column-wise)
        st = multi["stable"].astype("boolean")
        gb = [multi[k] for k in _HOST_KEYS]
        any_false = (st == False).fillna(False).groupby(gb, sort=False).any().to_numpy(bool)  # noqa: E712
        any_na = st.isna().groupby(gb, sort=False).any().to_numpy(bool)
        combined["stable"] = pd.array(np.where(any_false, False, np.where(any_na, None, True)).tolist(),
                                      dtype="boolean")
    tput = g["throughput_items_per_s"].agg(["min", "max", "size"])
    p95 = g["latency_p95_ms"].agg(["min", "max"])
    # the groups of tput, p95 and combined come in one order (one groupby): read them side by side
    notes = [f"{c} on {hw} ({mode}, bs={int(bs)}{'' if pt < 0 else f', prompt {int(pt)}'}): median "
             f"of {int(size)} hosts with the same hardware name; throughput "
             f"{lo:.4g}-{hi:.4g} items/s (median {med:.4g}), p95 {p_lo:.4g}-{p_hi:.4g} ms"
             for (c, hw, mode, bs, pt), lo, hi, size, med, p_lo, p_hi in zip(
                 tput.index, tput["min"].to_numpy(float), tput["max"].to_numpy(float),
                 tput["size"].to_numpy(), combined["throughput_items_per_s"].to_numpy(float),
                 p95["min"].to_numpy(float), p95["max"].to_numpy(float))]
    warnings.warn(f"plan(): {len(notes)} measured point(s) come from several hosts with the same "
                  "hardware name; every host's row is used, combined by the median (spread shown): "
                  + "; ".join(notes[:6]) + ("; ..." if len(notes) > 6 else "") + ". A wide spread "
                  "means the hosts differ (load, clocks, setup): check background_load and stable",
                  PlanWarning, stacklevel=5)
    out = pd.concat([df[size == 1], combined.reset_index()[df.columns]], ignore_index=True)
    # back in the order the points were first seen
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(*(df[k] for k in _HOST_KEYS))))}
    rank = [order[k] for k in zip(*(out[k] for k in _HOST_KEYS))]
    out = out.iloc[np.argsort(rank, kind="mergesort")].reset_index(drop=True)
    return out.drop(columns="_prompt"), notes


def _mark_unstable(df: pd.DataFrame, allow_unstable: bool, notes: list[str]) -> pd.DataFrame:
    """The rule of :mod:`effplan.planning.stability` on rows measured ``stable=False`` (every
    mode): the flag columns (``timing_unstable``, ``timing_spread_rel``, ``background_load``)
    on every row, then ``plan_mark`` (used, flagged: the default) or ``plan_note`` (refused with
    the reason: ``allow_unstable=False``); one :class:`PlanWarning` naming them, with the
    statement."""
    df = flag_columns(df.copy())
    df["plan_note"] = ""
    df["plan_mark"] = ""
    bad = df["timing_unstable"].to_numpy(bool)
    if df.empty or not bad.any():
        return df
    idx = np.flatnonzero(bad)
    # the reasons and names of the flagged rows only (keyed by row position)
    sub = df.iloc[idx]
    why = dict(zip(idx.tolist(), [f"measurement not stable ({r or 'unknown'}{': ' + n if n else ''})"
                                  for r, n in zip(sub["stop_reason"].astype(str), sub["timing_note"].astype(str))]))
    prompt = (pd.to_numeric(sub["prompt_tokens"], errors="coerce").to_numpy(float)
              if "prompt_tokens" in df.columns else np.full(len(sub), np.nan))
    names = dict(zip(idx.tolist(), [
        f"{c} on {h} ({m}, bs={int(b)}{f', prompt {int(p)}' if m == 'generation' and p == p else ''})"
        for c, h, m, b, p in zip(sub["candidate"], sub["hardware"], sub["mode"], sub["batch_size"], prompt)]))
    listed = "; ".join(f"{names[i]}: {why[i]}" for i in idx[:6])
    more = "; ..." if bad.sum() > 6 else ""
    n, x = worst(zip(df["background_load"].to_numpy(float)[idx], df["timing_spread_rel"].to_numpy(float)[idx]))
    statement = busy_sentence(n, x, up_to=len(idx) > 1)
    if allow_unstable:
        df.loc[bad, "plan_mark"] = [f"NOT stable, used and flagged: {why[i]}" for i in idx]
        msg = (f"plan(): {int(bad.sum())} measured row(s) are NOT stable: they are used and every "
               f"figure planned from them is flagged. {statement} Rows: {listed}{more}. For firm "
               "figures re-measure them on a quiet machine (measure(..., resume='unstable')); "
               "plan(..., allow_unstable=False) refuses them")
    else:
        df.loc[bad, "plan_note"] = [f"{why[i]}: re-measure on a quiet machine (effplan measure "
                                    "--resume unstable), or drop allow_unstable=False / --strict-stability "
                                    "to use it, flagged"
                                    for i in idx]
        msg = (f"plan(): {int(bad.sum())} measured row(s) are NOT stable and are refused "
               f"(allow_unstable=False): {listed}{more}. Re-measure them on a quiet machine "
               "(measure(..., resume='unstable') re-measures exactly those), or leave allow_unstable "
               "at its default to use them, flagged")
    notes.append(msg)
    warnings.warn(msg, PlanWarning, stacklevel=4)
    return df


def _catalog_frame(catalog: pd.DataFrame | str | Path | None) -> pd.DataFrame:
    """The validated catalog (shared with the catalog's file cache: never modified here)."""
    return _cat.validated_catalog(catalog)


def _match_map(names: Iterable[str], cat: pd.DataFrame) -> dict[str, str]:
    """hardware name -> catalog name ('' when not in the catalog), each unique name looked up once."""
    out: dict[str, str] = {}
    for n in dict.fromkeys(names):
        row = _cat.find_hardware(n, cat)
        out[n] = "" if row is None or row["name"] == _cat.GENERIC_CPU else str(row["name"])
    return out


def _resolve_targets(hardware: Iterable[str] | str | None, cat: pd.DataFrame) -> list[str]:
    """Catalog names to project to: each name must equal a catalog name or alias (ignoring
    case); anything else raises :class:`~effplan.errors.UnknownHardwareError` listing the closest
    catalog names ("did you mean 'L4'?")."""
    if hardware is None:
        return []
    if isinstance(hardware, str):
        hardware = [hardware]
    out = []
    for h in hardware:
        row = _cat.find_hardware(h, cat)
        if row is None or row["name"] == _cat.GENERIC_CPU:
            raise _cat.unknown_hardware_error(
                h, cat, field="hardware", what="is not catalog hardware to project to",
                hint=" (names match a catalog name or alias exactly, ignoring case; catalog: "
                     f"{', '.join(n for n in cat['name'] if n != _cat.GENERIC_CPU)})")
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

