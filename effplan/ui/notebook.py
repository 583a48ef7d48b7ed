"""Helpers the notebooks call, so that their cells stay thin and their logic is tested here.

* :func:`notebook_measurements` -- load a results file, or measure a quick digits sweep when
  there is none (notebooks 02-04 run standalone); :func:`generation_measurements` the same
  for generation rows and the built-in decoders (notebook 05);
* :func:`prices_for` -- :class:`effplan.Prices` that also price the machine measured on;
* :func:`measured_vs_estimated` -- where every figure of a results frame comes from;
* :func:`show` -- display a Figure, a frame or a dict of them as static PNG / HTML that
  survives export to HTML (the notebooks' report mode);
* :func:`scenarios_side_by_side` -- pivot :func:`effplan.compare_scenarios` to one column per
  scenario;
* :func:`candidates_table`, :func:`trainable`, :func:`untrainable`, :func:`training_rows`,
  :func:`training_figure`, :func:`training_answer` (training views leave out models that cannot
  be trained, with why);
* :func:`report_mode` -- the static copy only where no kernel will run (papermill, nbconvert),
  never under a live JupyterLab or Voila kernel;
* :func:`setup` -- warnings reach the reader as one short note each (no stderr block, no paths);
* :func:`table` -- a formatted Styler (3 s.f., $, kWh/MWh); long tables collapsed.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import EffplanWarning
from ..models.candidates import QUANT_DTYPES
from ..safe import html_text

__all__ = [
    "notebook_measurements",
    "generation_measurements",
    "QUICK_TRAIN_STEPS",
    "measure_settings",
    "QUICK_SETTINGS",
    "QUICK_RECIPES",
    "QUICK_BATCH_SIZES",
    "sweep_choice",
    "stored_quality",
    "prices_for",
    "measured_vs_estimated",
    "candidates_table",
    "trainable",
    "untrainable",
    "reasons_frame",
    "training_rows",
    "training_answer",
    "report_mode",
    "workload_and_prices",
    "generation_workload",
    "answer",
    "summary_view",
    "setup",
    "table",
    "note",
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
    from .. import defaults
    from ..models import examples
    from ..records.measurements import Measurements
    from ..measurement import measure

    if results_path is None or (isinstance(results_path, str) and not results_path.strip()):
        results_path = defaults.results_file()  # the one results folder (CLI and notebooks)
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
#: target; ``latency_ci_rel`` on each row says how tight the median really is. One timing pass
#: (``passes=1``): the rounds of a point run back to back, not interleaved across the sweep
#: (a second pass would double the worker start-ups of a notebook run).
#: notebook 01 in quick mode (its default): three recipes (a quantized, a pruned and a distilled
#: variant: each kind of trade-off once) and two batch sizes, so it runs well under a minute on a
#: laptop CPU; ``quick=False`` (or naming them) makes every default recipe at three batch sizes
QUICK_RECIPES: tuple[str, ...] = ("int8-dynamic", "prune-30", "distill")
QUICK_BATCH_SIZES: tuple[int, ...] = (1, 32)
FULL_RECIPES: tuple[str, ...] = ("int8-dynamic", "int8-weight", "bf16", "fp16", "prune-30", "layers-half",
                                 "distill")
FULL_BATCH_SIZES: tuple[int, ...] = (1, 8, 32)


def sweep_choice(quick: bool, recipes: Sequence[str] = (), batch_sizes: Sequence[int] = ()
                 ) -> tuple[list[str], list[int]]:
    """``(recipes, batch_sizes)`` of notebook 01: the ones named, else the quick or full defaults."""
    r = list(recipes) or list(QUICK_RECIPES if quick else FULL_RECIPES)
    b = [int(x) for x in batch_sizes] or list(QUICK_BATCH_SIZES if quick else FULL_BATCH_SIZES)
    return r, b


def stored_quality(results_path: str | os.PathLike | None, evaluate: bool = True) -> Any:
    """The quality stored beside ``results_path`` by notebook 01 (:func:`effplan.cards.store_beside`,
    validated), else -- with ``evaluate`` -- the built-in digits family evaluated here; None
    otherwise. The dashboard then judges the candidates that were measured."""
    from .. import defaults
    from ..bench.evaluation import evaluate as run_evaluation
    from ..models import examples
    from ..views.card_sources import read_quality_file
    from ..views.cards import stored_beside

    path = Path(results_path) if results_path and str(results_path).strip() else defaults.results_file()
    q_path = stored_beside(path)[0] if path.suffix == ".jsonl" else None
    if q_path is not None and q_path.is_file():
        return read_quality_file(q_path)
    if evaluate:
        return run_evaluation(examples.digits_candidates(), examples.digits_eval_data())
    return None


QUICK_SETTINGS: Mapping[str, float] = {"time_budget_s": 0.2, "energy_window_s": 0.2, "idle_s": 0.2,
                                       "passes": 1}


#: decoder training steps of a quick notebook run (``quick=True``): fewer than the family's
#: default, so the notebook trains in seconds; the perplexities say how far training got.
QUICK_TRAIN_STEPS = 60


def generation_measurements(results_path: str | None, *, quick: bool = True,
                            concurrency: Sequence[int] = (1, 8), prompt_tokens: Sequence[int] = (64, 256),
                            output_tokens: int = 16, save: bool = True, progress: bool = False) -> Any:
    """Generation measurements for a notebook (notebook 05; also ``effplan.generation.notebook_measurements``): load ``results_path`` when it holds
    ``mode="generation"`` rows, else measure the built-in decoder family
    (:func:`effplan.decoders.decoder_candidates`) on this machine's CPU with one thread; ``quick``
    trains :data:`QUICK_TRAIN_STEPS` steps and uses :data:`QUICK_SETTINGS`
    timing. With ``save`` the points are appended to ``results_path`` for the next run."""
    from dataclasses import replace

    from ..measurement import measure_generation
    from ..models import decoders
    from ..records.measurements import Measurements
    from ..records.samples import TimingPolicy

    if results_path and os.path.exists(results_path):
        loaded = Measurements.load(results_path)
        if any(r.get("mode") == "generation" for r in loaded.rows):
            return loaded
        warnings.warn(f"{results_path} has no mode='generation' rows; measuring the built-in decoders "
                      "instead", EffplanWarning, stacklevel=2)
    cfg = replace(decoders.BASE_CONFIG, train_steps=QUICK_TRAIN_STEPS) if quick else decoders.BASE_CONFIG
    policy = replace(TimingPolicy(), **{k: v for k, v in measure_settings(quick).items()
                                            if k == "time_budget_s"})
    settings = {k: v for k, v in measure_settings(quick).items() if k in ("energy_window_s", "idle_s", "passes")}
    return measure_generation(decoders.decoder_candidates(config=cfg), batch_sizes=list(concurrency),
                              prompt_tokens=list(prompt_tokens), output_tokens=output_tokens, device="cpu",
                              threads=1, timing=policy, progress=progress,
                              results_path=results_path if (save and results_path) else None, **settings)


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
    from ..refdata import catalog as cat_mod
    from ..planning import Prices

    given = {str(k): float(v) for k, v in (price_per_hour or {}).items()}
    frame = measurements.to_frame() if hasattr(measurements, "to_frame") else measurements
    shipped = cat_mod.load_catalog()
    row = cat_mod.this_machine_row(shipped)
    said: dict[str, str] = {}
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
                src = str(row.get("price_source", ""))   # its true label, never "entered"
                said[hw] = (f"{src if src.startswith('catalog estimate') else 'catalog: ' + src}"
                            f" ({row.get('price_date', '')})")
    return Prices(price_per_hour=given or None, price_sources=said or None, **prices_kwargs)


def workload_and_prices(measurements: Any, *, requests_per_day: float = 0.0,
                        price_per_hour: Mapping[str, float] | None = None,
                        **settings: Any) -> tuple[Any, Any]:
    """(:class:`effplan.InferenceWorkload`, :class:`effplan.Prices`) for a notebook, from
    :mod:`effplan.defaults` plus the notebook's parameters.

    ``requests_per_day`` 0 means the demo traffic (:func:`effplan.defaults.demo_requests_per_day`:
    the baseline needs several instances, so the candidates differ). ``settings`` are
    ``monthly_growth``, ``peak_to_average``, ``slo_p95_ms`` (0: no target),
    ``target_utilization``, ``months``, ``start`` ("YYYY-MM"; "" = next month, as everywhere)
    (workload) and ``pue``, ``grid_region`` (prices); prices also cover this machine
    (:func:`prices_for`)."""
    from .. import defaults

    price_keys = {"pue", "grid_region", "grid_gco2_per_kwh", "electricity_usd_per_kwh", "mode"}
    wl_kw = {k: v for k, v in settings.items() if k not in price_keys}
    pr_kw = {"pue": defaults.PUE, "grid_region": defaults.GRID_REGION,
             **{k: v for k, v in settings.items() if k in price_keys}}
    if "slo_p95_ms" in wl_kw and not wl_kw["slo_p95_ms"]:
        wl_kw["slo_p95_ms"] = None
    if not wl_kw.get("start", "x"):   # "" (a notebook parameter): next month, the shared default
        wl_kw.pop("start")
    if not requests_per_day:
        demo_kw = {k: wl_kw[k] for k in ("slo_p95_ms", "target_utilization", "peak_to_average")
                   if k in wl_kw}
        requests_per_day = defaults.demo_requests_per_day(measurements, **demo_kw)
    return (defaults.workload(requests_per_day=float(requests_per_day), **wl_kw),
            prices_for(measurements, price_per_hour, **pr_kw))


def generation_workload(measurements: Any, *, start: str = "", **settings: Any) -> Any:
    """:class:`effplan.GenerationWorkload` for a notebook: :func:`effplan.defaults.generation_workload`
    (utilisation, growth, peak, horizon, next month's start: the same as the dashboard and the
    CLI) with the notebook's parameters; a TTFT / TPOT target of 0 means none, ``start`` ""
    next month."""
    from .. import defaults

    for key in ("slo_ttft_p95_ms", "slo_tpot_p95_ms"):
        if key in settings and not settings[key]:
            settings[key] = None
    if start:
        settings["start"] = start
    return defaults.generation_workload(measurements, **settings)


def answer(plan: Any, measurements: Any = None, *, min_quality: float | None = None,
           baseline: str | None = None, bars: bool = True, demo_traffic: bool = False) -> Any:
    """The answer as HTML for a notebook or report: the headline (one choice, its next-quarter
    cost, its savings against the baseline, and the line of what it assumes) and every option
    ranked (never summed), with where each price, timing and energy figure came from. The
    baseline is the candidate tagged ``baseline`` in ``measurements`` unless named;
    ``demo_traffic``: the traffic is the demo traffic (said in the assumption line)."""
    from IPython.display import HTML

    from ..planning.frames import baseline_candidate, headline, rank_options
    from .dashboard import _headline_markup, _ranking_html, _ranking_bars_html

    if baseline is None and measurements is not None:
        baseline = baseline_candidate(measurements)
    r = rank_options(plan, baseline=baseline, min_quality=min_quality)
    h = headline(plan, ranking=r, min_quality=min_quality,
                 traffic_note="demo traffic" if demo_traffic else "")
    return HTML(_headline_markup(h, None, r) + _ranking_html(r, fold=False)
                + (_ranking_bars_html(r, h) if bars else ""))


def summary_view(summary: Any) -> Any:
    """The columns of a plan summary a person reads (:data:`effplan.formatting.SUMMARY_COLUMNS`),
    plus ``timing_spread_rel`` (shown "±X%") when some option was timed on a busy machine."""
    from ..formatting import SUMMARY_COLUMNS

    cols = [c for c in SUMMARY_COLUMNS if c in summary.columns]
    if "timing_spread_rel" in summary.columns and summary["timing_spread_rel"].notna().any():
        cols.insert(cols.index("provenance") + 1 if "provenance" in cols else len(cols),
                    "timing_spread_rel")
    return summary[cols]


def measured_vs_estimated(frame: Any) -> Any:
    """One row per candidate x hardware x mode saying where each figure comes from.

    ``timing`` is the rows' ``provenance`` (measured / estimated / projected / entered);
    ``energy`` is ``measured (<source>)`` for NVML/RAPL, ``ESTIMATED (rated power)`` for
    ``estimated-tdp``, else the source; ``flops`` is ``counted`` when every operator was
    counted, else ``lower bound (<coverage>% of operator calls counted)``; ``memory`` is the
    memory source; ``not_stable`` counts points measured ``stable=False`` (plan() uses them and
    flags every figure planned from them; ``allow_unstable=False`` refuses them). Failed points
    are listed with their error.
    """
    import numpy as np
    import pandas as pd

    from ..records.schema import MEASURED_ENERGY_SOURCES, normalize_measurements

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
                # measured but not stable (stalls, two modes, rounds disagree): plan() flags them
                not_stable=("stable", lambda s: int((s.astype("boolean") == False).fillna(False).sum())),  # noqa: E712
                ).reset_index()
    errs = df[df["status"].astype(str) != "ok"].groupby(keys, sort=False)["error"].first()
    out["error"] = [errs.get(tuple(k), "") for k in out[keys].itertuples(index=False)]
    return out


def machines(frame: Any) -> Any:
    """One row per hardware name x machine that measured it: where a merged results store (a
    fleet sweep, or files copied from several machines) came from.

    A machine is the rows' ``hardware_id`` (a hash of host and devices; the raw host name is
    never stored). Several machines under one hardware name stay apart here and in the store;
    ``plan()`` combines them per hardware name by the median and says so in a warning and in
    ``Plan.inputs["measurement_notes"]``. Columns: hardware, machine, points, candidates, ok,
    not_stable, and ``plan_uses`` ("median of N machines" or "this machine").
    """
    import pandas as pd

    from ..records.schema import normalize_measurements

    df = frame.to_frame() if hasattr(frame, "to_frame") else frame
    df = normalize_measurements(df, required=("candidate", "hardware", "mode", "batch_size"))
    machine = df["hardware_id"].astype(str).replace("", "(unknown)") if "hardware_id" in df \
        else pd.Series("(unknown)", index=df.index)
    stable = df["stable"].astype("boolean") if "stable" in df else pd.Series(pd.NA, index=df.index, dtype="boolean")
    df = df.assign(_machine=machine, _ok=df["status"].astype(str) == "ok",
                   _not_stable=(stable == False).fillna(False))  # noqa: E712
    out = df.groupby(["hardware", "_machine"], sort=False).agg(
        points=("batch_size", "size"), candidates=("candidate", "nunique"),
        ok=("_ok", "sum"), not_stable=("_not_stable", "sum")).reset_index() \
        .rename(columns={"_machine": "machine"})
    n = out.groupby("hardware")["machine"].transform("size")
    out["plan_uses"] = ["this machine" if k == 1 else f"median of {k} machines" for k in n]
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


#: dtypes whose weights cannot be trained (dynamic / static quantization)
#: dtype labels a model cannot be trained in: the quantized dtypes (one list) and torch.ao's qint32
UNTRAINABLE_DTYPES = (*QUANT_DTYPES, "qint32")


def untrainable(measurements: Any) -> dict[str, str]:
    """candidate -> why it cannot be trained, from a measurements frame: quantized weights
    (``dtype`` qint8/int8) or only failed training points."""
    df = measurements.to_frame() if hasattr(measurements, "to_frame") else measurements
    out: dict[str, str] = {}
    if df is None or len(df) == 0:
        return out
    for cand, g in df.groupby(df["candidate"].astype(str), sort=False):
        dtypes = set(g["dtype"].astype(str)) if "dtype" in g.columns else set()
        q = sorted(dtypes & set(UNTRAINABLE_DTYPES))
        if q:
            out[cand] = (f"quantized weights ({q[0]}) cannot be trained: train the float model, "
                         "then quantize it")
            continue
        if "mode" in g.columns and "status" in g.columns:
            t = g[g["mode"].astype(str) == "training"]
            if len(t) and not (t["status"].astype(str) == "ok").any():
                err = str(t["error"].iloc[0]) if "error" in t.columns else ""
                out[cand] = "every training measurement failed" + (f": {err[:80]}" if err else "")
    return out


def training_rows(plan: Any, measurements: Any) -> tuple[Any, dict[str, str]]:
    """``plan.training`` without the candidates that cannot be trained, and those left out
    (candidate -> reason). A training view must never rank an int8 model as the cheapest."""
    tr = getattr(plan, "training", None)
    excluded = untrainable(measurements)
    if tr is None or tr.empty:
        return tr, excluded
    keep = ~tr["candidate"].astype(str).isin(list(excluded))
    return tr[keep].reset_index(drop=True), {k: v for k, v in excluded.items()
                                             if k in set(tr["candidate"].astype(str))}


def reasons_frame(reasons: Mapping[str, str]) -> Any:
    """candidate -> reason as a two-column table (e.g. the models left out of training)."""
    import pandas as pd

    return pd.DataFrame({"candidate": list(reasons), "why": list(reasons.values())})


def training_figure(plan: Any, measurements: Any = None) -> Any:
    """Training over the horizon per candidate x hardware: device-hours and cost (bars), one
    row each, cheapest first. Candidates that cannot be trained (see :func:`untrainable`, needs
    ``measurements``) and rows without a cost are left out and named under the title. The
    figure grows with the number of rows, so labels never overlap."""
    import numpy as np
    from matplotlib.figure import Figure

    tr = getattr(plan, "training", None)
    excluded: dict[str, str] = {}
    if measurements is not None:
        tr, excluded = training_rows(plan, measurements)
    if tr is None or tr.empty:
        fig = Figure(figsize=(9, 2.0), layout="constrained")
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no training workload", ha="center", va="center")
        ax.set_axis_off()
        return fig
    from ..planning.stability import busy_sentence, is_flagged, worst

    tot = tr.groupby(["candidate", "hardware", "provenance"], sort=False)[
        ["device_hours", "cost_usd"]].sum(min_count=1).reset_index()
    missing = tot[tot["cost_usd"].isna()]
    tot = tot[tot["cost_usd"].notna()].sort_values("cost_usd", kind="stable")
    labels = [f"{c} @ {h}" + (" (projected)" if p == "projected" else "")
              for c, h, p in tot[["candidate", "hardware", "provenance"]].itertuples(index=False)]
    fig = Figure(figsize=(9, 1.6 + 0.32 * max(len(tot), 1)), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(tot))
    ax1.barh(y, tot["device_hours"], color="#4c72b0")
    ax1.set_yticks(y, labels, fontsize="small")
    ax1.set_xlabel("device-hours over the horizon")
    ax2.barh(y, tot["cost_usd"], color="#dd8452")
    ax2.tick_params(axis="y", labelleft=False)
    ax2.set_xlabel("training cost over the horizon (USD)")
    from ..views.figures import auto_log, usd_formatter

    logs = [auto_log(ax1, tot["device_hours"], "x"), auto_log(ax2, tot["cost_usd"], "x")]
    usd_formatter(ax2, "x")
    for ax, log in zip((ax1, ax2), logs):
        ax.invert_yaxis() if not ax.yaxis_inverted() else None
        ax.grid(axis="x", alpha=0.3)
        if not log:
            ax.xaxis.get_major_locator().set_params(nbins=5)
    if any(logs):  # bars spanning orders of magnitude: a log axis, said in the label
        for ax, log in zip((ax1, ax2), logs):
            if log:
                ax.set_xlabel(ax.get_xlabel() + " (log scale)")
    lines = ["Training budget over the horizon, cheapest first"]
    shaky = tr[tr["timing_unstable"].map(is_flagged)] if "timing_unstable" in tr.columns else tr.iloc[0:0]
    if len(shaky):  # the one statement (effplan.planning.stability), for the flagged rows
        n, x = worst(zip(shaky["background_load"], shaky["timing_spread_rel"]))
        lines.append("⚠ " + busy_sentence(n, x, up_to=shaky["candidate"].nunique() > 1))
    if excluded:
        lines.append("left out, cannot be trained: " + "; ".join(
            f"{c} ({r.split(':')[0]})" for c, r in excluded.items()))
    if len(missing):
        lines.append("no cost for: " + ", ".join(sorted(set(missing["candidate"]))))
    fig.suptitle("\n".join(lines), fontsize=9)
    return fig


def training_answer(plan: Any, measurements: Any = None) -> Any:
    """The training answer as HTML: the cheapest trainable candidate x hardware over the horizon
    (device-hours, wall-clock per run, cost with its P10-P90 and where it came from), and the
    statement of :mod:`effplan.planning.stability` when its throughput was timed on a busy
    machine. Candidates that cannot be trained are left out (:func:`training_rows`)."""
    import math

    from IPython.display import HTML

    from ..formatting import sig, usd
    from ..planning.stability import busy_sentence, is_flagged, option_note, worst
    from .dashboard import _BUSY_STYLE

    tr, _left = training_rows(plan, measurements) if measurements is not None else (plan.training, {})
    if tr is None or tr.empty:
        return HTML("<p><i>No training workload was planned.</i></p>")
    keys = ["candidate", "hardware"]
    sums = {"cost_usd": "sum", "device_hours": "sum"}
    band = [c for c in ("cost_usd_p10", "cost_usd_p90") if c in tr.columns]
    g = tr.groupby(keys, sort=False)
    tot = g[list(sums) + band].sum(min_count=1)
    first = g.first()
    tot = tot[tot["cost_usd"].notna()].sort_values("cost_usd", kind="stable")
    if tot.empty:
        why = "; ".join(dict.fromkeys(tr["infeasible_reason"].astype(str)))
        return HTML(f'<div class="effplan-training-answer"><b>No training option has a cost</b>: '
                    f"{html_text(why)}</div>")
    (cand, hw), row = next(iter(tot.iterrows()))
    info = first.loc[(cand, hw)]
    rng = ""
    if band and all(math.isfinite(float(row[c])) for c in band):
        rng = f" (P10–P90 {usd(row['cost_usd_p10'])} – {usd(row['cost_usd_p90'])})"
    quarters = int(tr["quarter"].nunique())
    note = option_note(info)
    busy = (f'<div class="effplan-busy-note" style="{_BUSY_STYLE};margin-top:4px"><b>&#x26A0;</b> '
            f"{html_text(note)} Re-measure on a quiet machine for firm figures.</div>" if note else "")
    others = first[first["timing_unstable"].map(is_flagged).to_numpy(bool)] \
        if "timing_unstable" in first.columns else first.iloc[0:0]
    others = others[[k != (cand, hw) for k in others.index]]
    if len(others):  # the options below the answer that were timed on a busy machine, too
        n, x = worst(zip(others["background_load"], others["timing_spread_rel"]))
        names = ", ".join(dict.fromkeys(str(c) for c, _h in others.index))
        busy += (f'<div class="effplan-busy-note" style="{_BUSY_STYLE};margin-top:4px;font-size:0.85em">'
                 f"<b>&#x26A0;</b> {len(others)} other option(s) ({html_text(names)}): "
                 f"{html_text(busy_sentence(n, x, up_to=len(others) > 1))}</div>")
    return HTML(
        '<div class="effplan-training-answer" style="border:1px solid #c9d7e8;background:#f5f9ff;'
        'border-radius:6px;padding:8px 12px;margin:0 0 8px 0">'
        f'<div style="font-size:1.3em">Train <b>{html_text(str(cand))}</b> on '
        f"<b>{html_text(str(hw))}</b>: <b>{usd(row['cost_usd'])}</b> over {quarters} "
        f"quarter(s){rng}</div>"
        f'<div style="color:#555;font-size:0.85em">{sig(row["device_hours"])} device-hours; '
        f"{sig(info['wall_clock_days_per_run'])} days per run; timing "
        f"{html_text(str(info['provenance']))}; energy {html_text(str(info['energy_source']))}"
        f"; the cheapest of {len(tot)} priced option(s)</div>{busy}</div>")


#: column of :func:`effplan.compare_scenarios` -> title of its side-by-side table
SCENARIO_VALUES: Mapping[str, str] = {"cost_usd": "cost over the horizon (USD)",
                                      "co2_kg": "CO2 over the horizon (kg)"}


def scenarios_side_by_side(side: Any, values: Mapping[str, str] = SCENARIO_VALUES) -> dict[str, Any]:
    """One table per value column of :func:`effplan.compare_scenarios`' frame: a row per
    candidate x hardware (in plan order), where its price (cost table) or its energy figure (CO2
    table) came from, then a column per scenario (in the order given). A candidate that is
    infeasible in a scenario keeps its row with an empty (NaN) cell."""
    out = {}
    #: the source shown beside each value: where the price / the energy figure came from
    source = {"cost_usd": ("price_source", "price from"),
              "co2_kg": ("energy_source", "energy from")}
    for col, title in values.items():
        t = side.pivot_table(index=["candidate", "hardware"], columns="scenario", values=col,
                             sort=False, dropna=False)
        t = t.reindex(columns=list(dict.fromkeys(side["scenario"])))
        t.columns.name = None
        t = t.reset_index()
        src, label = source.get(col, (None, None))
        if src and src in side.columns:
            per = side.groupby(["candidate", "hardware"], sort=False)[src].agg(
                lambda v: "; ".join(dict.fromkeys(str(x) for x in v if str(x))))
            t.insert(2, label, [per.get((c, h), "") for c, h in
                                zip(t["candidate"], t["hardware"])])
        out[title] = t
    return out


def report_mode(report: bool | str | None = None) -> bool:
    """Whether a notebook should render its static report copy.

    ``report`` True/False or "yes"/"no" (a papermill parameter) wins. ``None`` or ``"auto"``
    (notebook 04's default) means:
    only when no live front end is attached -- a kernel started by JupyterLab / Jupyter Server
    (``JPY_SESSION_NAME`` in its environment) or by Voila (``VOILA_*``) is live: the dashboard
    is there, a second, static total under it would go stale on the first slider move. Papermill
    and nbconvert start kernels without either, so their runs get the static copy."""
    if isinstance(report, str):
        word = report.strip().lower()
        report = None if word in ("", "auto") else word in ("1", "true", "yes", "on")
    if report is not None:
        return bool(report)
    env = os.environ
    live = "JPY_SESSION_NAME" in env or any(k.startswith("VOILA_") for k in env)
    return not live


_NOTED: set[str] = set()


def _note_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: Any = None) -> None:
    """``warnings.showwarning`` for notebooks: one short note per distinct message, as HTML
    output; no file path, no line number, no stderr block."""
    text = str(message).strip()
    if text in _NOTED:
        return
    _NOTED.add(text)
    try:
        from IPython.display import HTML, display
    except ImportError:  # pragma: no cover - outside IPython: the usual one-liner
        print(f"note: {text}")
        return
    kind = "note" if issubclass(category, EffplanWarning) else category.__name__
    from .dashboard import _first_sentence

    first, rest = _first_sentence(text)
    more = (f'<details style="display:inline"><summary>more</summary>{html_text(rest)}'
            "</details>" if rest else "")
    display(HTML('<div class="effplan-note" style="color:#6b5500;background:#fffbe6;'
                 'border-left:3px solid #e6c84a;padding:2px 8px;margin:2px 0;font-size:0.9em">'
                 f"<b>{html_text(kind)}:</b> {html_text(first)} {more}</div>"))


def setup(debug: bool = False) -> None:
    """Call once at the top of a notebook: warnings become one short note each (see
    :func:`_note_warning`); ``debug=True`` keeps Python's usual warning output."""
    if debug:
        return
    _NOTED.clear()
    warnings.showwarning = _note_warning
    warnings.filterwarnings("default", category=EffplanWarning)


#: tables longer than this are shown collapsed (a <details> block with the first rows visible)
COLLAPSE_ROWS = 15


def table(df: Any, caption: str | None = None, *, collapse_rows: int = COLLAPSE_ROWS) -> Any:
    """HTML of ``df`` for people: :func:`effplan.formatting.styled` (3 s.f., $, kWh/MWh, no
    index); longer than ``collapse_rows`` it is folded into a ``<details>`` block whose summary
    says how many rows it holds (the summary tables come first in the notebooks)."""
    from IPython.display import HTML

    from ..formatting import styled

    from ..views.people_tables import is_wide, people_view

    # a table wider than the page: the columns a reader needs first, renamed in words, with the
    # timing (and its busy mark) kept; every column folded below ("all columns")
    full = f'<div class="effplan-table" style="overflow-x:auto">{styled(df).to_html()}</div>'
    if is_wide(df):
        view, left_out = people_view(df)
        body = (f'<div class="effplan-table effplan-people" style="overflow-x:auto">'
                f"{styled(view).to_html()}</div>"
                f'<details class="effplan-all-columns"><summary>all {len(df.columns)} columns '
                f"({len(left_out)} more: {html_text(', '.join(left_out[:6]))}"
                f"{'…' if len(left_out) > 6 else ''})</summary>{full}</details>")
    else:
        body = full
    head = f"<b>{html_text(caption)}</b> " if caption else ""
    if len(df) > collapse_rows:
        return HTML(f'<details class="effplan-collapsed"><summary>{head}({len(df):,} rows: click '
                    f"to show)</summary>{body}</details>")
    return HTML((f"<div>{head}</div>" if head else "") + body)


def note(text: str) -> Any:
    """A short paragraph of text for a report (HTML, escaped)."""
    from IPython.display import HTML

    return HTML(f"<p>{html_text(str(text))}</p>")


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
        display(HTML(f"<h4>{html_text(str(title))}</h4>"))
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
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        display(table(obj))
        return
    if hasattr(obj, "to_html"):  # a Styler, a Plan...
        try:
            display(HTML(obj.to_html()))
        except TypeError:
            display(obj)
        return
    display(obj)
