"""The result of a sweep: :class:`Measurements` -- the measured rows, the hardware they ran on and
the raw timing of every point.

``Measurements.to_frame()`` is the tidy frame of :mod:`effplan.records.schema` that the planner
consumes; :meth:`Measurements.from_frame` and :meth:`Measurements.load` build one from a frame
(measured, loaded or typed in by hand) or from the JSON Lines results files of
:mod:`effplan.records.store`. numpy / pandas only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .samples import Timing
from .schema import MEASURED_ENERGY_SOURCES, MEASUREMENT_COLUMNS, PLAN_REQUIRED_COLUMNS, normalize_measurements

__all__ = ["Measurements", "SampleKey"]

#: the key of a point's raw timing in :attr:`Measurements.samples`: (candidate, device, mode, batch size);
#: a generation point has two, mode ``generation-prefill-p<prompt>`` / ``generation-decode-p<prompt>``
SampleKey = tuple[str, str, str, int]


@dataclass(frozen=True)
class Measurements:
    """Result of :func:`measure` (or of figures typed in by hand, see :meth:`from_frame`).

    Attributes
    ----------
    rows: one dict per candidate x hardware x mode x batch size, keys = schema columns.
    hardware: device string -> ``HardwareInfo.to_dict()`` of the hardware measured on.
    samples: ``(candidate, device, mode, batch_size)`` -> raw :class:`Timing` of that point.
    """

    rows: tuple[Mapping[str, Any], ...]
    hardware: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    samples: Mapping[SampleKey, Timing] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The tidy frame: the columns of ``effplan.schema.MEASUREMENT_COLUMNS``, then the
        fleet and hardware-identity columns (``fleet_*``, ``hw_*``) that rows carry (a fleet
        sweep's: where and on which machine each point was measured)."""
        extra = list(dict.fromkeys(k for r in self.rows for k in r
                                   if k.startswith(("fleet_", "hw_")) and k not in MEASUREMENT_COLUMNS))
        df = pd.DataFrame(list(self.rows), columns=list(MEASUREMENT_COLUMNS) + extra)
        # Types only: no relabelling (normalize_measurements would call an empty energy_source
        # "entered", which a measured row with energy=False is not).
        for col, (kind, _) in MEASUREMENT_COLUMNS.items():
            if kind == "str":
                df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
                continue
            if kind == "bool":  # nullable: missing means unknown, never False
                df[col] = pd.array([v if isinstance(v, (bool, np.bool_)) else pd.NA for v in df[col]],
                                   dtype="boolean")
                continue
            vals = pd.to_numeric(df[col], errors="coerce").astype(float)
            df[col] = vals.astype(np.int64) if kind == "int" and vals.notna().all() else vals
        return df

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *,
                   required: tuple[str, ...] = PLAN_REQUIRED_COLUMNS) -> Measurements:
        """Measurements from a frame (measured, loaded, or typed in by hand).

        Validated with :func:`effplan.schema.normalize_measurements`: the planner's required
        columns must be present; rows without ``provenance`` become ``"entered"``.
        """
        norm = normalize_measurements(df, required=required, source="from_frame")
        rows = tuple(norm[list(MEASUREMENT_COLUMNS)].to_dict(orient="records"))
        hardware = {str(r["device"] or r["hardware"]): {"name": str(r["hardware"]),
                                                        "hardware_id": str(r["hardware_id"])}
                    for r in rows}
        return cls(rows=rows, hardware=hardware, samples={})

    @classmethod
    def load(cls, paths: str | os.PathLike | Iterable[str | os.PathLike]) -> Measurements:
        """Measurements from JSON Lines result files written with ``results_path``.

        Only identity columns are required here (a sweep run with ``energy=False`` loads too);
        the planner checks its own required columns when it consumes the frame.
        """
        from . import store

        return cls.from_frame(store.load(paths), required=store.STORE_REQUIRED_COLUMNS)

    def summary(self) -> pd.DataFrame:
        """A compact view for notebooks: one row per point, the figures people look at first.

        ``energy`` says ``measured`` or ``ESTIMATED`` (rated power, not a measurement);
        ``stable`` False marks latency figures not to trust (``stop_reason`` says why).
        """
        df = self.to_frame()
        cols = ["candidate", "tags", "quality", "mode", "batch_size", "device", "latency_p50_ms",
                "latency_p95_ms", "throughput_items_per_s", "stable", "stop_reason", "background_load",
                "peak_memory_mib", "flops_per_item", "energy_per_item_j", "avg_power_w",
                "energy_source", "status", "error"]
        out = df[cols].copy()
        src = out["energy_source"].astype(str)
        out.insert(out.columns.get_loc("energy_source"), "energy",
                   np.where(src.isin(MEASURED_ENERGY_SOURCES), "measured",
                            np.where(src == "estimated-tdp", "ESTIMATED",
                                     np.where(src.isin(("", "none")), "not measured", src))))
        return out

    def samples_frame(self) -> pd.DataFrame:
        """Raw per-call latencies, long form (plot-friendly): one row per timed sample."""
        parts = []
        for (cand, dev, mode, bs), t in self.samples.items():
            ms = t.times_ms
            parts.append(pd.DataFrame({"candidate": cand, "device": dev, "mode": mode,
                                       "batch_size": bs, "sample": np.arange(ms.size),
                                       "latency_ms": ms, "calls_per_sample": t.calls_per_sample}))
        if not parts:
            return pd.DataFrame(columns=["candidate", "device", "mode", "batch_size", "sample",
                                         "latency_ms", "calls_per_sample"])
        return pd.concat(parts, ignore_index=True)

    @property
    def errors(self) -> pd.DataFrame:
        """The rows that failed, with their error messages."""
        df = self.to_frame()
        return df.loc[df["status"] != "ok", ["candidate", "mode", "batch_size", "device", "error"]]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        n_err = sum(1 for r in self.rows if r.get("status") != "ok")
        cands = sorted({str(r.get("candidate")) for r in self.rows})
        return (f"Measurements({len(self.rows)} rows, {n_err} errors, candidates={cands}, "
                f"hardware={sorted({str(r.get('hardware')) for r in self.rows})})")

    def _repr_html_(self) -> str:
        note = ""
        if any(r.get("energy_source") == "estimated-tdp" for r in self.rows):
            note = ("<p><b>Energy is ESTIMATED</b> from rated power (energy_source="
                    "'estimated-tdp'), not measured.</p>")
        shaky = [r for r in self.rows if r.get("status") == "ok" and r.get("stable") is False]
        if shaky:
            note += (f"<p><b>{len(shaky)} point(s) NOT stable</b> (stable=False: stalls, two modes or "
                     "rounds that disagree, see stop_reason / background_load); plan() uses them and "
                     "flags every figure planned from them (allow_unstable=False refuses them).</p>")
        from ..safe import html_text

        return f"<p>{html_text(repr(self))}</p>{note}" + self.summary().to_html(index=False, na_rep="")
