"""The planning result: :class:`Plan` and the column lists of its frames (one description per column)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

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
    "slo_met": "True when latency_e2e_p95_ms <= slo_p95_ms (or no target)",
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

#: the stability flags of an option (summary, training and generation frames; the rule and
#: the figures: :mod:`effplan.planning.stability`)
STABILITY_COLUMNS: dict[str, str] = {
    "timing_unstable": "True when the option is planned from a measurement that is NOT stable "
                       "(timed on a busy machine): its figures are flagged",
    "timing_spread_rel": "flagged options: X, how far the latency -- and so the cost -- could be "
                         "off (the spread between the timing rounds; the CI of the median for rows "
                         "without it); the Monte Carlo band is widened by it (NaN: not flagged)",
    "background_load": "CPU cores' worth of work by other processes while the option's "
                       "measurement was timed (N; NaN: not recorded)",
    "stability_note": "flagged options: 'Timings were taken on a busy machine (background load N "
                      "cores); the cost could be X% off.' ('' when not flagged)",
}

SUMMARY_COLUMNS: dict[str, str] = {
    **{k: MONTHLY_COLUMNS[k] for k in ("candidate", "hardware", "catalog_name", "provenance",
                                        "energy_source", "feasible", "infeasible_reason",
                                        "batch_size", "latency_p95_ms", "slo_met",
                                        "throughput_items_per_s", "capacity_items_per_s",
                                        "price_per_hour_usd")},
    "latency_e2e_p95_ms": "end-to-end p95 at the workload's load: batch fill + queueing + "
                          "service (effplan.queueing); the figure the latency target is checked on",
    "batch_fill_p95_ms": "p95 time an item waits for its batch to fill (quietest load per instance)",
    "queue_p95_ms": "p95 queueing delay at target_utilization (Allen-Cunneen G/G/1)",
    "batch_source": "'measured' (or projected) batch size, or 'interpolated' between two measured",
    "batch_neighbours": "interpolated: the measured batch sizes either side ('4-16')",
    "batch_note": "e.g. 'measure batch N to go further' when the largest measured batch was chosen",
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
    **STABILITY_COLUMNS,
}
#: added to ``summary`` when a TrainingWorkload was given
SUMMARY_TRAINING_COLUMNS: dict[str, str] = {
    "training_device_hours": "training device-hours (GPU-hours) over the horizon",
    "training_cost_usd": "training cost over the horizon",
    "training_energy_kwh": "training energy over the horizon, kWh",
    "training_co2_kg": "training CO2 over the horizon, kg",
    "total_cost_usd": "inference + training cost over the horizon; NaN when a planned part has "
                      "no cost (see total_note)",
    "total_note": "why total_cost_usd is NaN: the part (inference / training) and its reason "
                  "('' when it is a number)",
}

TRAINING_COLUMNS: dict[str, str] = {
    **{k: MONTHLY_COLUMNS[k] for k in ("candidate", "hardware", "catalog_name", "provenance",
                                        "energy_source")},
    "quarter": "1-based quarter index",
    "runs": "training runs in the quarter",
    "items_per_epoch": "items per epoch",
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
    **STABILITY_COLUMNS,
}



#: name endings of the text columns of a plan's frames (how :meth:`Plan.from_csv` tells an
#: all-empty text column from a numeric one)
_TEXT_SUFFIXES = ("reason", "note", "source", "neighbours", "from", "name", "provenance",
                  "check", "constraint", "label", "candidate", "hardware")


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
        ``inputs.json`` into ``directory`` (created); return the paths. Text a spreadsheet would
        run as a formula (``=HYPERLINK(...)``) is written with a leading ``'``
        (:func:`effplan.safe.spreadsheet_frame`); :meth:`from_csv` gives the exact names back."""
        from ..safe import spreadsheet_frame

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, df in self.frames().items():
            p = d / f"{name}.csv"
            spreadsheet_frame(df).to_csv(p, index=False)  # a formula-like name stays text
            paths.append(p)
        p = d / "inputs.json"
        p.write_text(json.dumps(self.inputs, indent=2, sort_keys=True))
        paths.append(p)
        return paths

    @classmethod
    def from_csv(cls, directory: str | Path) -> Plan:
        """Read back what :meth:`to_csv` wrote (``effplan plan --out DIR``): the frames and
        ``inputs.json`` -- no pickle. Text columns come back as text (an empty reason as "", not
        NaN). A missing ``monthly.csv`` / ``summary.csv`` / ``inputs.json`` raises
        :class:`~effplan.errors.ValidationError` naming the file."""
        from ..errors import ValidationError
        from ..safe import unspreadsheet_frame

        d = Path(directory)
        if not d.is_dir():
            raise ValidationError("plan_dir", f"{d} is not a folder written by Plan.to_csv / "
                                              "effplan plan --out")
        frames: dict[str, pd.DataFrame | None] = {}
        for name in ("summary", "monthly", "quarterly", "training"):
            p = d / f"{name}.csv"
            if not p.is_file():
                if name in ("summary", "monthly"):
                    raise ValidationError("plan_dir", f"{p.name} missing in {d} (written by "
                                                      "Plan.to_csv / effplan plan --out)")
                frames[name] = None if name == "training" else pd.DataFrame()
                continue
            df = unspreadsheet_frame(pd.read_csv(p, dtype={"month_label": str, "quarter_label": str,
                                                           "calendar_quarter": str}))
            for c in df.columns:
                text = df[c].dtype == object or pd.api.types.is_string_dtype(df[c])
                # a text column with no value at all reads back as float NaN: by its name
                empty_text = df[c].isna().all() and c.endswith(_TEXT_SUFFIXES)
                if text or empty_text:
                    df[c] = df[c].astype(object).where(df[c].notna(), "")
            frames[name] = df
        p = d / "inputs.json"
        if not p.is_file():
            raise ValidationError("plan_dir", f"inputs.json missing in {d}")
        inputs = json.loads(p.read_text())
        return cls(monthly=frames["monthly"], quarterly=frames["quarterly"],
                   summary=frames["summary"], training=frames["training"], inputs=inputs)

    def to_excel(self, path: str | Path) -> Path:
        """One workbook: a sheet per table plus an ``inputs`` sheet (key, value as JSON)."""
        from ..safe import spreadsheet_frame

        p = Path(path)
        with pd.ExcelWriter(p) as xw:
            for name, df in self.frames().items():  # formula-like text stays text
                spreadsheet_frame(df, excel=True).to_excel(xw, sheet_name=name, index=False)
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
                     "training_cost_usd", "concurrency", "binding_constraint",
                     "cost_per_1m_output_tokens_usd", "energy_per_response_wh", "perplexity")

    def _repr_html_(self) -> str:
        cols = [c for c in self._REPR_COLUMNS if c in self.summary.columns]
        from ..safe import html_text

        return (f"<p>{html_text(repr(self))} &mdash; totals over the horizon; every column is in "
                "<code>.summary</code>, <code>.quarterly</code>, <code>.monthly</code></p>"
                + self.summary[cols].to_html(index=False, max_rows=30, float_format="{:,.4g}".format,
                                             na_rep="n/a"))

