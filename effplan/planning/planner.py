"""The entry points: :func:`plan`, :func:`compare_scenarios`, and :class:`PreparedMeasurements`,
the work a what-if re-plan reuses (held explicitly by the caller, never in a module-level cache).

Formulas: the docstring of :mod:`effplan.planning`.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import PlanWarning, ValidationError
from .engine import _attach_prices, _check_price_keys, _choose_uncached, _warn_missing
from .calendar import add_calendar_columns
from .generation import GenerationUncertainty, GenerationWorkload, plan_generation, plan_notes
from .inference import _inference
from .inputs import (ASSUMED_EFFICIENCY, IDLE_POWER_FRACTION, InferenceWorkload, Prices,
                     TrainingWorkload, Uncertainty, _catalog_frame, _match_map, _measurement_frame,
                     _num, _resolve_targets)
from .projection import _with_projection
from .stability import resolve_allow_unstable
from .tensor_parallel import with_instances
from .result import MONTHLY_COLUMNS, QUARTERLY_COLUMNS, SUMMARY_COLUMNS, Plan
from .training import _training, _training_options


@dataclass(frozen=True, eq=False)
class PreparedMeasurements:
    """Measurements made ready for planning, once: everything that depends only on the
    measurements, the catalog, the projection targets and the assumed efficiency -- not on the
    workloads or prices.

    Build one with :func:`prepare` and pass it to :func:`plan` in place of the measurements for
    every what-if re-plan (``BudgetDashboard`` holds one): validation, roofline projection and
    the batch choice are not repeated. :func:`plan` given plain measurements builds a fresh one
    and drops it. Nothing is cached at module level: the caller owns this object and its lifetime.

    Frozen. The frames are shared by every plan made from it: never modify them in place (a
    changed measurement needs a new ``prepare``). The mutable parts are the private memos of the
    chosen operating points per latency target (:meth:`choose`) and of the catalog name per
    hardware name (:meth:`catalog_match`); each is a pure function of the frozen fields and its
    key, so it cannot go stale.

    Attributes
    ----------
    measurements: the validated tidy rows (status ``ok``; the newest of duplicate points; several
        hosts with the same hardware name combined by median; ``plan_note`` on refused not-stable
        rows, ``plan_mark`` on included ones -- see ``inputs._measurement_frame``).
    inference_rows: ``mode="inference"`` rows plus their projections to ``hardware``.
    catalog: the validated catalog used for projection, prices and hardware-name matching.
    hardware: catalog names projected to (besides the measured hardware).
    assumed_efficiency: roofline efficiency used where the measured hardware is not in the catalog.
    catalog_label: ``"shipped"``, the catalog path, or ``"DataFrame"`` (recorded in ``Plan.inputs``).
    candidates: candidate names in first-seen order.
    allow_unstable: whether measured rows with ``stable=False`` are used, flagged (True) or
        refused (False); see :mod:`effplan.planning.stability`.
    """

    measurements: pd.DataFrame
    inference_rows: pd.DataFrame
    catalog: pd.DataFrame
    hardware: tuple[str, ...]
    assumed_efficiency: float
    catalog_label: str
    candidates: tuple[str, ...]
    allow_unstable: bool = False
    _chosen: dict[Any, pd.DataFrame] = field(default_factory=dict, repr=False)
    _matches: dict[str, str] = field(default_factory=dict, repr=False)

    def catalog_match(self, names: Iterable[str]) -> dict[str, str]:
        """hardware name -> its catalog name in :attr:`catalog` ('' when not in it), for each of
        ``names`` (first-seen order). Memoised per name like :meth:`choose` (a pure function of
        the frozen catalog and the name): a re-plan skips the catalog look-ups."""
        names = list(dict.fromkeys(names))
        missing = [n for n in names if n not in self._matches]
        if missing:
            self._matches.update(_match_map(missing, self.catalog))
        return {n: self._matches[n] for n in names}

    def choose(self, target: InferenceWorkload | float | None) -> pd.DataFrame:
        """The operating point per candidate x hardware (a new copy each call: callers add
        columns). ``target``: an :class:`InferenceWorkload` (its ``slo_p95_ms`` is checked on the
        end-to-end p95 at its load), or a bare p95 target in ms / None (checked on the batch's
        own p95, no load)."""
        if isinstance(target, InferenceWorkload):
            wl = target
            key: Any = ("load", wl.slo_p95_ms, wl.requests_per_day, wl.monthly_growth,
                        wl.items_per_request, wl.peak_to_average, wl.target_utilization,
                        wl.min_replicas, wl.months, wl.daily_profile, wl.max_batch_wait_ms)
            slo = wl.slo_p95_ms
        else:
            wl, key, slo = None, target, target
        hit = self._chosen.get(key)
        if hit is None:
            hit = _choose_uncached(self.inference_rows, slo, list(self.candidates), wl)
            if len(self._chosen) >= 32:  # a what-if session: keep the memo bounded
                self._chosen.pop(next(iter(self._chosen)))
            self._chosen[key] = hit
        return hit.copy()

    def __repr__(self) -> str:
        return (f"PreparedMeasurements({len(self.measurements)} rows, {len(self.candidates)} "
                f"candidates, hardware={list(self.hardware)}, catalog={self.catalog_label!r})")


def prepare(measurements: Any, hardware: Iterable[str] | str | None = None, *,
            catalog: pd.DataFrame | str | Path | None = None,
            assumed_efficiency: float = ASSUMED_EFFICIENCY,
            allow_unstable: bool | None = None) -> PreparedMeasurements:
    """Validate ``measurements`` and project them to ``hardware`` once (see
    :class:`PreparedMeasurements`); the arguments mean what they mean for :func:`plan`."""
    if isinstance(measurements, PreparedMeasurements):
        raise ValidationError("measurements", "already prepared: pass it to plan() as it is")
    eff_assumed = _num("assumed_efficiency", assumed_efficiency, lo=0, lo_open=True, hi=1)
    # multi-GPU instances named in hardware (effplan/data/instances.csv) join the catalog
    cat = with_instances(_catalog_frame(catalog), hardware)
    targets = _resolve_targets(hardware, cat)
    allow_unstable = resolve_allow_unstable(allow_unstable)
    df = _measurement_frame(measurements, cat, allow_unstable=allow_unstable)
    if df.empty:
        raise ValidationError("measurements", "no usable rows (all missing or status 'error')")
    rows = _with_projection(df, "inference", targets, cat, eff_assumed)
    label = "shipped" if catalog is None else (str(catalog) if not isinstance(catalog, pd.DataFrame)
                                               else "DataFrame")
    return PreparedMeasurements(measurements=df, inference_rows=rows, catalog=cat,
                                hardware=tuple(targets), assumed_efficiency=eff_assumed,
                                catalog_label=label, candidates=tuple(dict.fromkeys(df["candidate"])),
                                allow_unstable=allow_unstable)


def total_cost_usd(summary: pd.DataFrame, training: pd.DataFrame | None,
                   with_inference: bool) -> tuple[np.ndarray, np.ndarray]:
    """The one definition of the inference + training total, per summary row.

    ``total_cost_usd = cost_usd + training_cost_usd`` (only the part that was planned when one
    workload is given). A planned part without a cost (infeasible, or no price) makes the total
    NaN -- never counted as 0 -- and ``total_note`` says which part and why ("" when the total is
    a number). Returns ``(total, note)`` aligned with ``summary``.
    """
    n = len(summary)
    total = np.zeros(n)
    notes: list[list[str]] = [[] for _ in range(n)]
    parts = []
    if with_inference:
        reason = summary["infeasible_reason"].astype(str).to_numpy()
        parts.append(("inference", summary["cost_usd"].to_numpy(float), reason))
    if training is not None:
        keys = ["candidate", "hardware"]
        why = training.assign(_r=training["infeasible_reason"].astype(str)).groupby(
            keys, sort=False)["_r"].agg(lambda r: next((x for x in r if x), ""))
        idx = pd.MultiIndex.from_arrays([summary["candidate"], summary["hardware"]])
        reason = why.reindex(idx).fillna("no training row for this candidate x hardware").to_numpy(str)
        parts.append(("training", summary["training_cost_usd"].to_numpy(float), reason))
    hw = summary["hardware"].astype(str).to_numpy()
    for name, cost, reason in parts:
        total = total + cost
        for i in np.flatnonzero(~np.isfinite(cost)):
            notes[i].append(f"{name}: {reason[i] or f'no price for {hw[i]}'}")
    return total, np.array(["; ".join(x) for x in notes], dtype=object)


def plan(measurements: Any, inference: InferenceWorkload | None = None,
         training: TrainingWorkload | None = None, prices: Prices | None = None,
         hardware: Iterable[str] | str | None = None, samples: int = 0, seed: int = 0, *,
         uncertainty: Uncertainty | Mapping[str, Any] | None = None,
         catalog: pd.DataFrame | str | Path | None = None,
         assumed_efficiency: float | None = None, quality: Any = None,
         generation: GenerationWorkload | None = None, allow_unstable: bool | None = None) -> Plan:
    """Project cost, energy and CO2 of every candidate on every hardware option.

    Parameters
    ----------
    measurements: a ``Measurements`` (anything with ``to_frame()``) or the tidy DataFrame
        (:mod:`effplan.schema`); validated by ``normalize_measurements``; rows with status
        ``error`` are ignored. Or a :class:`PreparedMeasurements` from :func:`prepare` (then
        ``hardware``, ``catalog`` and ``assumed_efficiency`` are the prepared ones; passing a
        different one raises ValidationError): what-if re-plans skip validation and projection.
    inference / training: the workloads (at least one).
    prices: :class:`Prices` (default ``Prices()``: catalog prices, PUE 1.0, world-average grid).
    hardware: catalog names to project to (roofline, see :func:`project`) besides the hardware
        the candidates were measured on. An unknown name raises ValidationError('hardware').
    samples, seed: Monte Carlo samples (0 = deterministic only) and the RNG seed.
    uncertainty: ranges for the samples: an :class:`Uncertainty` or a plain dict of its fields
        (default ``Uncertainty()``).
    catalog: a catalog DataFrame or CSV path (default: the shipped catalog); pass
        ``load_catalog(include_this_machine=True)`` to price the machine you measured on.
    assumed_efficiency: roofline efficiency used when the measured hardware is not in the catalog
        (None: :data:`ASSUMED_EFFICIENCY`, or the prepared one).
    quality: several quality metrics per candidate -- an :class:`~effplan.Evaluation`, its tidy
        frame, or hand-entered ``{candidate: {"accuracy": 0.97, "ece@noise-0.1": 0.05}}``
        (provenance ``entered``). Every frame of the plan gets one column per metric key
        (:func:`effplan.evaluation.join_quality`) and ``quality_provenance``; ``inputs["quality"]``
        holds the rows. A candidate in ``quality`` but not in the measurements gives a PlanWarning.
    generation: a :class:`GenerationWorkload` (LLM serving per token) planned from the
        ``mode="generation"`` rows, on its own (not with ``inference`` / ``training``); the
        frames are then :data:`~effplan.planning.generation.GENERATION_MONTHLY_COLUMNS` and its
        siblings, and ``uncertainty`` may be a :class:`GenerationUncertainty` (the default).
    allow_unstable: measured rows with ``stable=False`` (timed on a busy machine, see
        :mod:`effplan.timing`). ``None`` (default): :data:`effplan.defaults.ALLOW_UNSTABLE`
        (True), or the prepared setting. True: they are used and flagged -- every option planned
        from one has ``timing_unstable``, ``timing_spread_rel`` (*X*), ``background_load`` (*N*)
        and ``stability_note`` ("Timings were taken on a busy machine (background load N
        cores); the cost could be X% off."), its Monte Carlo band is widened by *X*, and one
        :class:`PlanWarning` names the rows (:mod:`effplan.planning.stability`). False (a strict
        plan): they are refused -- unusable, with the reason as ``infeasible_reason`` where a
        candidate x hardware (measured or projected) has nothing else. Rows of several hosts with
        the same hardware name are all used, combined by the median; duplicates keep the newest
        (both said in a warning and in ``Plan.inputs["measurement_notes"]``).

    Returns a :class:`Plan`; see the module docstring for every formula and :class:`Plan` for the
    columns. A candidate that cannot meet the latency target on some hardware is a flagged row
    (``feasible=False``, NaN cost), never an error.
    """
    if generation is not None:
        if not isinstance(generation, GenerationWorkload):
            raise ValidationError("generation", f"expected GenerationWorkload, got {type(generation).__name__}")
        if inference is not None or training is not None:
            raise ValidationError("generation", "plan a GenerationWorkload on its own: give it without "
                                                "inference= / training= (plan those in another call)")
    elif inference is None and training is None:
        raise ValidationError("inference", "give an InferenceWorkload and/or a TrainingWorkload "
                                           "(or generation=GenerationWorkload(...))")
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
    if not isinstance(unc, Uncertainty):   # a plain dict of the fields
        unc = (GenerationUncertainty if generation is not None else Uncertainty).from_dict(unc)
    quality_rows = None
    if quality is not None:
        from ..records.quality import quality_frame

        quality_rows = quality_frame(quality)   # validated before any work
    if isinstance(measurements, PreparedMeasurements):
        prep = measurements
        _check_prepared(prep, hardware, catalog, assumed_efficiency)
        if allow_unstable is not None and resolve_allow_unstable(allow_unstable) != prep.allow_unstable:
            raise ValidationError("allow_unstable", f"{allow_unstable!r} differs from the prepared "
                                                    f"{prep.allow_unstable}: prepare() again with it")
    else:
        prep = prepare(measurements, hardware, catalog=catalog,
                       assumed_efficiency=ASSUMED_EFFICIENCY if assumed_efficiency is None
                       else assumed_efficiency, allow_unstable=allow_unstable)
    eff_assumed, cat, targets = prep.assumed_efficiency, prep.catalog, list(prep.hardware)
    df, inf_rows = prep.measurements, prep.inference_rows
    if generation is not None:
        gunc = GenerationUncertainty() if uncertainty is None else unc
        _check_price_keys(prices, list(dict.fromkeys(list(df["hardware"]) + targets)), cat)
        monthly, quarterly, summary = plan_generation(df, generation, prices, cat, targets, samples,
                                                      seed, gunc, eff_assumed)
        ginputs = {
            "effplan_plan_version": 1, "generation": generation.to_dict(), "inference": None,
            "training": None, "prices": prices.to_dict(), "hardware": targets, "samples": samples,
            "seed": seed, "uncertainty": gunc.to_dict() if samples > 0 else None,
            "assumed_efficiency": eff_assumed, "idle_power_fraction": dict(IDLE_POWER_FRACTION),
            "months": generation.months, "catalog": prep.catalog_label,
            "notes": plan_notes(summary),
            "allow_unstable": prep.allow_unstable,
            "measurement_notes": list(df.attrs.get("measurement_notes", []))}
        if quality_rows is not None:
            monthly, quarterly, summary = _join_quality(quality_rows, list(prep.candidates), monthly,
                                                        quarterly, summary)
            ginputs["quality"] = json.loads(quality_rows.to_json(orient="records"))
        if generation.start is not None:   # calendar labels (effplan.planning.calendar)
            ginputs["start"] = generation.start
            monthly = add_calendar_columns(monthly, generation.start)
            quarterly = add_calendar_columns(quarterly, generation.start)
        return Plan(monthly=monthly, quarterly=quarterly, summary=summary, training=None, inputs=ginputs)
    candidates = list(prep.candidates)
    score = df.groupby("candidate", sort=False)["quality"].last().to_dict()   # last non-NaN

    monthly = pd.DataFrame(columns=list(MONTHLY_COLUMNS))
    quarterly = pd.DataFrame(columns=list(QUARTERLY_COLUMNS))
    summary = pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    hw_all = list(dict.fromkeys(list(df["hardware"]) + targets))
    _check_price_keys(prices, hw_all, cat, prep.catalog_match(hw_all))
    if inference is not None:
        rows = inf_rows
        if rows.empty:
            raise ValidationError("mode", "no mode='inference' rows in the measurements for the "
                                          "InferenceWorkload")
        opt = prep.choose(inference)
        opt["quality"] = opt["candidate"].map(score).astype(float)
        opt = _attach_prices(opt, prices, cat, prep.catalog_match(hw_all))
        _warn_missing(opt, prices)
        monthly, quarterly, summary = _inference(opt, inference, prices, samples, seed, unc)
        hw_all = list(dict.fromkeys(list(opt["hardware"])))

    training_df = None
    if training is not None:
        quarters = training.quarters or (-(-inference.months // 3) if inference is not None else 4)
        topt = _training_options(df, candidates, hw_all, targets, cat, training, eff_assumed)
        topt = _attach_prices(topt, prices, cat)
        _warn_missing(topt[topt["projection_note"] == ""], prices)
        training_df = _training(topt, training, prices, quarters, samples, seed, unc, score)
        sums = ["device_hours", "cost_usd", "energy_kwh", "co2_kg"]
        tot = training_df.groupby(["candidate", "hardware"], sort=False)[sums].sum(min_count=1) \
            .rename(columns=lambda c: f"training_{c}").reset_index()
        if inference is None:
            summary = topt[["candidate", "hardware", "catalog_name", "provenance", "energy_source",
                            "efficiency_source"]].copy()
            summary["feasible"] = training_df.groupby(["candidate", "hardware"], sort=False)[
                "feasible"].all().to_numpy()
            summary["quality"] = summary["candidate"].map(score).astype(float)
            summary = summary.merge(tot, on=["candidate", "hardware"], how="left")
        else:
            summary = summary.merge(tot, on=["candidate", "hardware"], how="left")
        summary["total_cost_usd"], summary["total_note"] = total_cost_usd(
            summary, training_df, inference is not None)

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
        "catalog": prep.catalog_label,
        "allow_unstable": prep.allow_unstable,
        "measurement_notes": list(df.attrs.get("measurement_notes", [])),
    }
    if quality_rows is not None:
        monthly, quarterly, summary, training_df = _join_quality(
            quality_rows, candidates, monthly, quarterly, summary, training_df)
        inputs["quality"] = json.loads(quality_rows.to_json(orient="records"))
    start = _plan_start(inference, training)
    if start is not None:   # calendar labels (effplan.planning.calendar); absent without a start
        inputs["start"] = start
        monthly, quarterly, training_df = (add_calendar_columns(f, start) if f is not None and len(f)
                                           else f for f in (monthly, quarterly, training_df))
    return Plan(monthly=monthly, quarterly=quarterly, summary=summary, training=training_df, inputs=inputs)


def _plan_start(inference: InferenceWorkload | None, training: TrainingWorkload | None) -> str | None:
    """The calendar month of month 0: the workloads' ``start`` (they must agree when both give one)."""
    starts = {w.start for w in (inference, training) if w is not None and w.start is not None}
    if len(starts) > 1:
        raise ValidationError("start", f"the InferenceWorkload starts {inference.start!r} but the "
                                       f"TrainingWorkload {training.start!r}: give one start month")
    return starts.pop() if starts else None


def _join_quality(rows: pd.DataFrame, candidates: list[str], *frames: pd.DataFrame | None) -> list[Any]:
    """Every plan frame with the quality metrics joined by candidate (one home:
    :func:`effplan.evaluation.join_quality`); a warning for quality of unknown candidates."""
    from ..records.quality import join_quality

    unknown = sorted(set(rows["candidate"]) - set(candidates))
    if unknown:
        warnings.warn(f"quality given for candidate(s) {unknown} that are not in the measurements "
                      f"(candidates: {candidates}); check the names", PlanWarning, stacklevel=3)
    return [None if f is None else join_quality(f, rows) for f in frames]


def _check_prepared(prep: PreparedMeasurements, hardware: Any, catalog: Any,
                    assumed_efficiency: float | None) -> None:
    """Arguments given with a PreparedMeasurements must not contradict it (it would be ignored)."""
    if catalog is not None:
        raise ValidationError("catalog", "the catalog is fixed in the PreparedMeasurements: pass "
                                         "it to prepare(), not to plan()")
    if hardware is not None:
        want = [hardware] if isinstance(hardware, str) else list(hardware)
        if _resolve_targets(want, prep.catalog) != list(prep.hardware):
            raise ValidationError("hardware", f"{want} differs from the prepared hardware "
                                              f"{list(prep.hardware)}: prepare() again with it")
    if assumed_efficiency is not None and not math.isclose(float(assumed_efficiency),
                                                           prep.assumed_efficiency):
        raise ValidationError("assumed_efficiency", f"{assumed_efficiency!r} differs from the "
                                                    f"prepared {prep.assumed_efficiency:g}: "
                                                    "prepare() again with it")


def compare_scenarios(scenarios: Mapping[str, Any], measurements: Any, **plan_kwargs: Any) -> pd.DataFrame:
    """Plan each named scenario and stack the summaries side by side (first column ``scenario``).

    Each value is ``(InferenceWorkload, Prices)``, ``(InferenceWorkload, Prices, TrainingWorkload)``,
    a dict of :func:`plan` keyword arguments, or an already computed :class:`Plan`.
    ``plan_kwargs`` (e.g. ``hardware=``, ``samples=``) apply to every scenario unless a dict
    overrides them. ``measurements`` may be a :class:`PreparedMeasurements` (from :func:`prepare`)
    so that the scenarios share one validation and projection.
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
