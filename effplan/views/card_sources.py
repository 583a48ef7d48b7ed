"""The files a compute card is built from, read and validated: never a wrong number on a card.

* :func:`read_plan_folder` -- a folder written by ``Plan.to_csv``: every CSV must end with a
  newline and have as many fields on every line as its header (a truncated file fails both),
  the numeric columns must be numbers, ``feasible`` goes through the one boolean parser, and
  when a ``manifest.json`` is present (:func:`write_manifest`, written by
  :func:`effplan.cards.store_beside`) every file's SHA-256 must match it (an edited file is
  named). Any failure is a :class:`~effplan.errors.ValidationError` naming the file.
* :func:`read_quality_file` -- a stored :class:`~effplan.Evaluation` through the one quality
  validator (a value outside its own interval, an unknown direction... are named errors) and
  the manifest.
* :func:`carbon` -- the CO2 figures of a card (serving per 1,000 requests and training) with the
  grid region and intensity they used (this layer reads no grid table: the intensity comes from
  the plan, or from the caller).

A card built from files beside a results file (:func:`effplan.cards.cards_from_results`) turns
a refused or missing file into a line on the card ("Not used: ...") instead of a figure.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..safe import unspreadsheet_frame
from ..records.schema import parse_bool_column

__all__ = ["MANIFEST", "write_manifest", "check_manifest", "read_plan_folder", "read_quality_file",
           "carbon", "J_PER_KWH"]

#: the manifest file beside stored card inputs: file name -> SHA-256
MANIFEST = "manifest.json"
#: joules in a kilowatt-hour
J_PER_KWH = 3.6e6
#: columns of a stored summary.csv that must hold numbers where not empty
_SUMMARY_NUMBERS = ("batch_size", "latency_p95_ms", "cost_usd", "cost_per_1k_requests_usd", "energy_kwh",
                    "co2_kg", "requests", "instances_max")


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def write_manifest(folder: str | Path, files: Iterable[str | Path]) -> Path:
    """Write ``manifest.json`` in ``folder``: each file's name (relative to ``folder``) -> SHA-256."""
    d = Path(folder)
    entries = {}
    for f in files:
        p = Path(f)
        entries[str(p.resolve().relative_to(d.resolve()))] = _sha256(p)
    out = d / MANIFEST
    out.write_text(json.dumps({"sha256": dict(sorted(entries.items()))}, indent=2) + "\n")
    return out


def check_manifest(folder: str | Path, name: str) -> None:
    """When ``folder`` has a manifest listing ``name``, its SHA-256 must match (else a named error)."""
    d = Path(folder)
    m = d / MANIFEST
    if not m.is_file():
        return
    try:
        want = json.loads(m.read_text())["sha256"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValidationError("manifest", f"{m} cannot be read: {exc}") from None
    if name in want and _sha256(d / name) != want[name]:
        raise ValidationError(name, f"{d / name} was changed after it was stored (its SHA-256 differs "
                              f"from {m}); store it again (effplan.cards.store_beside)")


def _checked_csv(p: Path) -> pd.DataFrame:
    """A CSV that is whole: ends with a newline, every record has the header's field count."""
    text = p.read_text()
    if not text.endswith("\n"):
        raise ValidationError(p.name, f"{p} does not end with a newline: the file is truncated")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ValidationError(p.name, f"{p} is empty")
    width = len(rows[0])
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != width:
            raise ValidationError(p.name, f"{p} line {i} has {len(r)} fields, the header {width}: the file "
                                  "is truncated or edited")
    # names written spreadsheet-safe by Plan.to_csv (effplan.safe) come back exactly
    return unspreadsheet_frame(pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""]))


def read_plan_folder(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any]]:
    """``(summary, training, inputs)`` of a folder written by ``Plan.to_csv``, validated (module
    docstring)."""
    d = Path(folder)
    try:
        for name in ("summary.csv", "inputs.json", "training.csv"):
            if (d / name).is_file():
                check_manifest(d, name)
        summary = _checked_csv(d / "summary.csv")
        training = _checked_csv(d / "training.csv") if (d / "training.csv").is_file() else None
        inputs = json.loads((d / "inputs.json").read_text())
    except OSError as exc:
        raise ValidationError("plan", f"cannot read a stored plan from {d} (Plan.to_csv writes summary.csv "
                              f"and inputs.json): {exc}", where="compute_card") from None
    except json.JSONDecodeError as exc:
        raise ValidationError("inputs.json", f"{d / 'inputs.json'} is not valid JSON: {exc}",
                              where="compute_card") from None
    if not isinstance(inputs, Mapping):
        raise ValidationError("inputs.json", f"{d / 'inputs.json'} is not a JSON object", where="compute_card")
    for col in ("candidate", "hardware", "feasible"):
        if col not in summary.columns:
            raise ValidationError("summary.csv", f"column {col!r} missing from {d / 'summary.csv'}",
                                  where="compute_card")
    for col in _SUMMARY_NUMBERS:
        if col in summary.columns:
            raw = summary[col]
            num = pd.to_numeric(raw, errors="coerce")
            bad = num.isna() & raw.notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise ValidationError("summary.csv", f"{col} = {raw.iloc[i]!r} in row {i} is not a number",
                                      where="compute_card")
            summary[col] = num
    summary["feasible"] = parse_bool_column(summary["feasible"], "feasible", where=str(d / "summary.csv")) == 1.0
    return summary, training, dict(inputs)


def read_quality_file(path: str | Path) -> Any:
    """A stored :class:`~effplan.Evaluation`, through the one quality validator and the manifest."""
    from ..records.quality import Evaluation

    p = Path(path)
    check_manifest(p.parent, p.name)
    return Evaluation.load(p)


def _fnum(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def carbon(plan_row: Any, training: pd.DataFrame | None, inputs: Mapping[str, Any], candidate: str,
           point: Any, items_per_request: float, grid_gco2_per_kwh: float | None = None) -> dict[str, Any]:
    """The card's CO2: ``{"grid_region", "grid_gco2_per_kwh", "grid_source", "serving", "training"}``.

    With a plan: serving = the plan's ``co2_kg / requests x 1000`` (kg -> g, PUE and idle
    instances included, *projected*), at the plan's grid region and intensity; training = the
    plan's training CO2 per hardware over the horizon. Without one: serving = the measured
    point's energy per 1,000 requests x ``grid_gco2_per_kwh`` (given by the caller, *entered*) x
    :data:`effplan.settings.PUE`, *estimated*; without an intensity the card says CO2 needs one.
    Training CO2 is not known without a training plan (said so)."""
    from .. import settings

    prices = dict(inputs.get("prices") or {})
    if plan_row is not None and prices:
        region = str(prices.get("grid_region") or "")
        g = _fnum(prices.get("resolved_grid_gco2_per_kwh", prices.get("grid_gco2_per_kwh")))
        source = str(prices.get("resolved_grid_source", "") or ("entered" if g == g else ""))
        req = _fnum(plan_row.get("requests"))
        serving = {"value": _fnum(plan_row.get("co2_kg")) / req * 1000 * 1000 if req > 0 else None,
                   "unit": "g CO2 per 1,000 requests", "provenance": "projected",
                   "source": "plan: PUE and idle instances included"}
    else:
        g = _fnum(grid_gco2_per_kwh)
        region, source = ("entered", "entered") if g == g else ("", "")
        e = _fnum(point["energy_per_item_j"]) if point is not None else math.nan
        value = e * items_per_request * 1000 / J_PER_KWH * settings.PUE * g
        serving = {"value": value if math.isfinite(value) else None, "unit": "g CO2 per 1,000 requests",
                   "provenance": "estimated",
                   "source": (f"measured energy x {g:g} g/kWh x PUE {settings.PUE:g} (no plan given)" if g == g
                              else "no plan and no grid intensity given (compute_card(..., grid_gco2_per_kwh=))")}
    train: list[dict[str, Any]] = []
    if training is not None and not training.empty and "co2_kg" in training.columns:
        mine = training[training["candidate"].astype(str) == candidate]
        for hw, kg in pd.to_numeric(mine["co2_kg"], errors="coerce").groupby(mine["hardware"], sort=False).sum(
                min_count=1).items():
            train.append({"hardware": str(hw), "value": None if kg != kg else float(kg), "unit": "kg CO2 over the plan",
                          "provenance": "projected", "source": "plan.training"})
    if serving["value"] is not None and not math.isfinite(serving["value"]):
        serving["value"] = None
    return {"grid_region": region, "grid_gco2_per_kwh": None if g != g else float(g), "grid_source": source,
            "serving": serving, "training": train,
            "training_note": "" if train else "no training plan given: training CO2 not known"}
