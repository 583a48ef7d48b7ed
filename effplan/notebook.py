"""Helpers the notebooks call, so that their cells stay thin and their logic is tested here.

* :func:`notebook_measurements` -- load a results file, or measure a quick digits sweep when
  there is none (notebooks 02-04 run standalone);
* :func:`prices_for` -- :class:`effplan.Prices` that also price the machine measured on;
* :func:`measured_vs_estimated` -- where every figure of a results frame comes from;
* :func:`show` -- display a Figure, a frame or a dict of them as static PNG / HTML that
  survives export to HTML (the notebooks' report mode);
* :func:`scenarios_side_by_side` -- pivot :func:`effplan.compare_scenarios` to one column per
  scenario;
* :func:`candidates_table`, :func:`trainable`, :func:`training_figure`.
"""

from __future__ import annotations

import html as _html
import io
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import EffplanWarning

__all__ = [
    "notebook_measurements",
    "measure_settings",
    "QUICK_SETTINGS",
    "prices_for",
    "measured_vs_estimated",
    "candidates_table",
    "trainable",
    "training_figure",
    "scenarios_side_by_side",
    "show",
]


def notebook_measurements(results_path: str | os.PathLike | Iterable[str | os.PathLike] | None,
                          *, batch_sizes: Sequence[int] = (1, 8, 32), quick: bool = True,
                          mode: str = "inference", save: bool = True,
                          progress: bool = False) -> Any:
    """Measurements for a notebook: load ``results_path`` when it exists, else measure.

    * ``results_path`` (a file, folder of ``*.jsonl``, glob, or a list of them) that exists:
      :meth:`Measurements.load` merges them (results of 01, or of several machines). Rows of
      other modes are kept; the planner picks what it needs.
    * Otherwise: the built-in digits family (:func:`effplan.examples.digits_candidates`) is
      measured in ``mode`` at ``batch_sizes`` on this machine; ``quick`` uses a short timing
      budget (a few seconds for the whole sweep). When ``save`` and ``results_path`` is a single
      path, the points are written there so the next notebook reuses them.

    ``measurements.attrs``-like provenance is in the frame itself (``provenance``,
    ``energy_source`` columns): nothing here turns an estimate into a measurement.
    """
    from . import examples
    from .measurement import Measurements, measure

    single: Path | None = None
    if results_path is not None:
        items = ([results_path] if isinstance(results_path, (str, os.PathLike))
                 else list(results_path))
        existing = [p for p in items if _has_results(p)]
        if existing:
            loaded = Measurements.load(existing)
            if any(r.get("mode") == mode for r in loaded.rows):
                return loaded
            warnings.warn(f"{', '.join(map(str, existing))} has no {mode!r} rows; measuring a "
                          f"quick digits sweep in {mode} mode instead", EffplanWarning,
                          stacklevel=2)
        if len(items) == 1 and not os.fspath(items[0]).endswith(os.sep):
            single = Path(items[0])
    kwargs = measure_settings(quick)
    candidates = examples.digits_candidates()
    if mode == "training":
        candidates = trainable(candidates)
    return measure(candidates, batch_sizes=list(batch_sizes), mode=mode, device="cpu",
                   progress=progress,
                   results_path=single if (save and single is not None) else None, **kwargs)


#: ``measure`` settings of a quick run (``quick=True`` in the notebooks): a short timing budget
#: per point, short energy and idle windows. Timing then stops well before the 2% confidence
#: target; ``latency_ci_rel`` on each row says how tight the median really is.
QUICK_SETTINGS: Mapping[str, float] = {"time_budget_s": 0.2, "energy_window_s": 0.2, "idle_s": 0.2}


def measure_settings(quick: bool) -> dict[str, Any]:
    """Keyword arguments for :func:`effplan.measure`: :data:`QUICK_SETTINGS` when ``quick``,
    else none (measure's defaults: until the median's 95% CI is within 2%, at most 2 s/point)."""
    return dict(QUICK_SETTINGS) if quick else {}


def prices_for(measurements: Any, price_per_hour: Mapping[str, float] | None = None,
               **prices_kwargs: Any) -> Any:
    """:class:`effplan.Prices` that also price the machine the notebook runs on.

    The shipped catalog has no row for an arbitrary workstation or server, so its cost would be
    NaN. For measured hardware without a price (in ``price_per_hour`` or the catalog) that is
    THIS machine, the price of ``load_catalog(include_this_machine=True)`` is used (a generic
    per-core estimate for an unknown CPU; its source is in the catalog row). Prices you give
    always win. Other keyword arguments go to ``Prices`` (``pue``, ``grid_region``, ...).
    """
    from . import catalog as cat_mod
    from .planning import Prices

    given = {str(k): float(v) for k, v in (price_per_hour or {}).items()}
    frame = measurements.to_frame() if hasattr(measurements, "to_frame") else measurements
    shipped = cat_mod.load_catalog()
    row = cat_mod.this_machine_row(shipped)
    for hw in dict.fromkeys(str(h) for h in frame["hardware"]):
        if hw in given:
            continue
        known = cat_mod.find_hardware(hw, shipped)
        if known is not None and known.get("price_per_hour_usd") == known.get("price_per_hour_usd"):
            continue  # the catalog prices it
        if row is not None and str(row.get("name")) == hw:
            price = row.get("price_per_hour_usd")
            if price is not None and price == price:
                given[hw] = float(price)
    return Prices(price_per_hour=given or None, **prices_kwargs)


def measured_vs_estimated(frame: Any) -> Any:
    """One row per candidate x hardware x mode saying where each figure comes from.

    ``timing`` is the rows' ``provenance`` (measured / estimated / projected / entered);
    ``energy`` is ``measured (<source>)`` for NVML/RAPL, ``ESTIMATED (rated power)`` for
    ``estimated-tdp``, else the source; ``flops`` is ``counted`` when every operator was
    counted, else ``lower bound (<coverage>% of operator calls counted)``; ``memory`` is the
    memory source; ``not_stable`` counts points measured ``stable=False`` (plan() leaves them
    out unless ``allow_unstable=True``). Failed points are listed with their error.
    """
    import numpy as np
    import pandas as pd

    from .schema import MEASURED_ENERGY_SOURCES, normalize_measurements

    df = frame.to_frame() if hasattr(frame, "to_frame") else frame
    df = normalize_measurements(df, required=("candidate", "hardware", "mode", "batch_size"))
    keys = ["candidate", "hardware", "mode"]
    g = df.groupby(keys, sort=False)

    def energy_label(s: pd.Series) -> str:
        src = ", ".join(sorted({str(v) for v in s if str(v)}))
        if not src:
            return "not measured"
        if set(src.split(", ")) <= set(MEASURED_ENERGY_SOURCES):
            return f"measured ({src})"
        if "estimated-tdp" in src:
            return "ESTIMATED (rated power x (idle share + utilization))"
        return src

    def flops_label(s: pd.Series) -> str:
        cov = pd.to_numeric(s, errors="coerce")
        if cov.isna().all():
            return "not counted"
        low = float(np.nanmin(cov.to_numpy()))
        return "counted" if low >= 1.0 else f"lower bound ({low:.0%} of operator calls counted)"

    out = g.agg(points=("batch_size", "size"),
                timing=("provenance", lambda s: ", ".join(sorted(set(map(str, s))))),
                energy=("energy_source", energy_label),
                flops=("flops_coverage", flops_label),
                memory=("peak_memory_source", lambda s: ", ".join(sorted({str(v) for v in s if str(v)}))),
                failed=("status", lambda s: int((s.astype(str) != "ok").sum())),
                # measured but not stable (stalls, two modes, rounds disagree): plan() leaves them out
                not_stable=("stable", lambda s: int((s.astype("boolean") == False).fillna(False).sum())),  # noqa: E712
                ).reset_index()
    errs = df[df["status"].astype(str) != "ok"].groupby(keys, sort=False)["error"].first()
    out["error"] = [errs.get(tuple(k), "") for k in out[keys].itertuples(index=False)]
    return out


def trainable(candidates: Iterable[Any]) -> list[Any]:
    """The candidates that can be trained: a (dynamic-)quantized model cannot, and measuring it
    in training mode would only give error rows."""
    return [c for c in candidates if not c.is_quantized]


def candidates_table(candidates: Iterable[Any]) -> Any:
    """name, tags, quality (with its metric), dtype and device of each :class:`Candidate`."""
    import pandas as pd

    return pd.DataFrame([{
        "candidate": c.name, "tags": ", ".join(c.tags), "quality": c.quality,
        "quality_metric": getattr(c, "quality_metric", None) or "",
        "dtype": c.dtype or "float32", "device": c.device or "(sweep device)"}
        for c in candidates])


def training_figure(plan: Any) -> Any:
    """Training over the horizon per candidate x hardware: device-hours and cost (bars).

    Rows that could not be projected (NaN) are left out and named in the title."""
    import numpy as np
    from matplotlib.figure import Figure

    tr = getattr(plan, "training", None)
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    if tr is None or tr.empty:
        ax1.text(0.5, 0.5, "no training workload", ha="center", va="center")
        return fig
    tot = tr.groupby(["candidate", "hardware", "provenance"], sort=False)[
        ["device_hours", "cost_usd"]].sum(min_count=1).reset_index()
    missing = tot[tot["cost_usd"].isna()]
    tot = tot[tot["cost_usd"].notna()]
    labels = [f"{c}\n{h}" + (" (projected)" if p == "projected" else "")
              for c, h, p in tot[["candidate", "hardware", "provenance"]].itertuples(index=False)]
    y = np.arange(len(tot))
    ax1.barh(y, tot["device_hours"], color="#4c72b0")
    ax1.set_yticks(y, labels, fontsize=7)
    ax1.set_xlabel("device-hours over the horizon")
    ax2.barh(y, tot["cost_usd"], color="#dd8452")
    ax2.set_yticks(y, [""] * len(y))
    ax2.set_xlabel("training cost over the horizon (USD)")
    for ax in (ax1, ax2):
        ax.invert_yaxis()
    title = "Training budget"
    if len(missing):
        title += f" (no cost for: {', '.join(sorted(set(missing['candidate'])))})"
    fig.suptitle(title, fontsize=10)
    return fig


#: column of :func:`effplan.compare_scenarios` -> title of its side-by-side table
SCENARIO_VALUES: Mapping[str, str] = {"cost_usd": "cost over the horizon (USD)",
                                      "co2_kg": "CO2 over the horizon (kg)"}


def scenarios_side_by_side(side: Any, values: Mapping[str, str] = SCENARIO_VALUES) -> dict[str, Any]:
    """One table per value column of :func:`effplan.compare_scenarios`' frame: a row per
    candidate x hardware (in plan order), a column per scenario (in the order given). A candidate
    that is infeasible in a scenario keeps its row with an empty (NaN) cell."""
    out = {}
    for col, title in values.items():
        t = side.pivot_table(index=["candidate", "hardware"], columns="scenario", values=col,
                             sort=False, dropna=False)
        t = t.reindex(columns=list(dict.fromkeys(side["scenario"])))
        t.columns.name = None
        out[title] = t.reset_index()
    return out


def _has_results(path: str | os.PathLike) -> bool:
    text = os.fspath(path)
    if os.path.isdir(text):
        return any(Path(text).glob("*.jsonl"))
    if os.path.isfile(text):
        return os.path.getsize(text) > 0
    import glob

    return bool(glob.glob(text, recursive=True))


def _png_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi or 100, bbox_inches="tight")
    return buf.getvalue()


def show(obj: Any, title: str | None = None) -> None:
    """Display ``obj`` as static output that survives export: a matplotlib Figure as an
    embedded PNG, a DataFrame/Styler as an HTML table, a dict/list as each of its items (dict
    keys as headings). Figures are closed afterwards only if they live in pyplot's registry."""
    from IPython.display import HTML, Image, display

    if title:
        display(HTML(f"<h4>{_html.escape(str(title))}</h4>"))
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            show(value, title=str(key).replace("_", " "))
        return
    if isinstance(obj, (list, tuple)):
        for value in obj:
            show(value)
        return
    if hasattr(obj, "savefig"):
        display(Image(data=_png_bytes(obj), format="png"))
        return
    if hasattr(obj, "to_html"):
        try:
            display(HTML(obj.to_html(index=False, na_rep="")))
        except TypeError:  # a pandas Styler takes no index/na_rep
            display(HTML(obj.to_html()))
        return
    display(obj)
