"""The cloud instance a finance reader can order in place of a machine they cannot: for an option
priced on THIS machine (a workstation, the VM that was measured), the nearest catalog instance and
its price, shown beside the row ("comparable: AWS c7i.4xlarge, 8 cores, $0.714/h").

* a CPU: the catalog CPU instance (a row with ``cores`` and a price, not the generic per-core row,
  not this machine) whose core count is nearest on a log scale (2 cores -> 8 before 16; a tie
  -> the cheaper);
* a GPU that the catalog knows (detected as ``L4``): that catalog row itself (its price is a
  cloud instance's price per GPU).

Only the shipped (or given) catalog is read; an option on hardware the catalog does not describe
and that is not this machine gets no comparable (its specs are unknown). Also the true label of a
price estimated from the generic per-core row (:func:`generic_price_label`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["comparable_instance", "nearest_cpu_instance", "generic_price_label", "is_this_machine"]


def generic_price_label(per_core_usd: float, cores: int, date: str = "") -> str:
    """The price source of a CPU priced from the catalog's generic per-core row:
    ``"catalog estimate: generic CPU per core-hour, $0.045 x 2 cores"`` (the planner adds the
    catalog row's date)."""
    return (f"catalog estimate: generic CPU per core-hour, ${float(per_core_usd):.3g} x "
            f"{int(cores)} cores")


def is_this_machine(row: Mapping[str, Any] | None) -> bool:
    """A catalog row made by :func:`effplan.catalog.this_machine_row`."""
    return row is not None and str(row.get("notes", "") or "").startswith("this machine")


def nearest_cpu_instance(cores: float, catalog: pd.DataFrame) -> Mapping[str, Any] | None:
    """The catalog CPU instance whose core count is nearest to ``cores`` (log scale; a tie: the
    cheaper), or None."""
    from .catalog import GENERIC_CPU

    if not (isinstance(cores, (int, float)) and math.isfinite(float(cores)) and cores > 0):
        return None
    cpu = catalog[(catalog["kind"].astype(str) == "cpu") & (catalog["name"] != GENERIC_CPU)]
    cpu = cpu[pd.to_numeric(cpu["cores"], errors="coerce").gt(0)
              & pd.to_numeric(cpu["price_per_hour_usd"], errors="coerce").notna()]
    cpu = cpu[[not is_this_machine(r) for r in cpu.to_dict("records")]]
    if cpu.empty:
        return None
    dist = (pd.to_numeric(cpu["cores"]).map(math.log) - math.log(float(cores))).abs().round(9)
    best = cpu.assign(_d=dist).sort_values(["_d", "price_per_hour_usd"], kind="stable")
    return best.iloc[0].drop(labels="_d").to_dict()


def _text(row: Mapping[str, Any]) -> str:
    cores = row.get("cores")
    size = (f", {float(cores):.0f} cores" if str(row.get("kind")) == "cpu" and cores == cores
            and cores is not None else "")
    return f"{row['name']}{size}, ${float(row['price_per_hour_usd']):.3g}/h"


def comparable_instance(hardware: str, catalog: pd.DataFrame) -> str:
    """The comparable catalog instance of ``hardware`` as text (see the module docstring), "" when
    ``hardware`` is a catalog instance itself or its specs are unknown."""
    from .catalog import find_hardware, match_detected, this_machine_row

    row = find_hardware(hardware, catalog)
    if row is not None and not is_this_machine(row):
        return ""   # a catalog instance: it can be ordered as it is
    if row is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # no detection here: nothing to compare
            tm = this_machine_row(catalog)
        if tm is None or str(tm.get("name")) != str(hardware):
            return ""
        row = tm
    if str(row.get("kind")) == "gpu":
        for alias in [str(row.get("name"))] + str(row.get("aliases", "") or "").split("|"):
            hit = match_detected(alias, catalog) if alias else None
            if hit is not None and not is_this_machine(hit) and hit["price_per_hour_usd"] == \
                    hit["price_per_hour_usd"]:
                return _text(hit)
        return ""
    near = nearest_cpu_instance(float(row.get("cores") or float("nan")), catalog)
    return _text(near) if near is not None else ""
