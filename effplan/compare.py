"""One call from a baseline to a decision: make the slim variants, measure them, evaluate them
clean and under shift, plan their cost, and say what each gives up against the baseline.

``effplan.compare(baseline, recipes=..., data=(x_heldout, y_heldout), batch_sizes=(1, 8, 32))``
is the documented glue of :func:`effplan.slim` + :func:`effplan.evaluate` +
:func:`effplan.measure` + :func:`effplan.plan` + :func:`effplan.failure_modes.failure_modes`:

1. the variants: :func:`effplan.slim` of ``baseline`` (``train_data`` feeds ``distill``), or the
   ``variants`` you give; the baseline is tagged ``baseline`` if it is not;
2. quality: each candidate evaluated on the HELD-OUT ``data`` (clean, Gaussian input noise for
   floating inputs, your ``shifts``), the same noise and bootstrap resamples for all (paired),
   one candidate at a time so that one that fails is an error row, not a lost comparison. The
   clean accuracy (perplexity for a generative model) becomes each candidate's ``quality``, so
   the measured rows (and the results file) carry it;
3. cost: every feasible candidate measured (``mode="generation"`` for generative ones) and
   planned on the machine it was measured on (priced with ``load_catalog(include_this_machine=True)``)
   under ``workload`` (default: the demo traffic of :func:`effplan.defaults.demo_requests_per_day`,
   or :func:`effplan.defaults.generation_workload`);
4. the failure-mode catalog of every variant against the baseline.

The result is a :class:`Comparison`: ``table`` holds ONE ranked row per candidate (the baseline
included, marked), options that meet the targets first, cheapest next quarter first; variants
that could not be made, measured or planned are ranked last with the reason in ``why``. Per row:

* ``speed_x`` = baseline latency p50 / variant latency p50 at the reference batch (the largest
  batch size the baseline was measured at; for generation: TPOT p50 at the largest concurrency
  and prompt length); above 1 is faster;
* ``weights_mib`` (parameters and buffers as stored, measured) and ``memory_x`` = variant /
  baseline weights; ``peak_memory_mib`` of the reference point;
* the quality metrics per condition, and ``quality_change`` of the primary metric (clean
  accuracy, or perplexity) with its paired-bootstrap interval and verdict
  (:meth:`effplan.Evaluation.versus`);
* ``flips`` / ``flip_rate`` on clean data and the worst condition;
* ``quarter_cost_usd`` (next quarter), ``cost_change_usd`` and ``cost_change_pct`` against the
  baseline (:func:`effplan.planning.rank_options`).

:meth:`Comparison.vs_baseline` gives the same as one line per variant.
"""

from __future__ import annotations

import math
import sys
import types
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .errors import EffplanWarning, ValidationError

__all__ = ["compare", "Comparison", "TABLE_COLUMNS"]

TABLE_COLUMNS = ["rank", "candidate", "recipe", "status", "why", "dtype", "reference_batch",
                 "latency_p50_ms", "latency_p95_ms", "stable", "speed_x", "weights_mib", "memory_x",
                 "peak_memory_mib", "quality_metric", "quality", "quality_change", "quality_change_ci_low",
                 "quality_change_ci_high", "quality_verdict", "flips", "flip_rate", "flip_ci_low",
                 "flip_ci_high", "worst_condition", "worst_condition_flips", "quarter_cost_usd",
                 "cost_change_usd", "cost_change_pct", "meets_targets", "is_baseline"]


@dataclass(frozen=True, eq=False)
class Comparison:
    """What :func:`compare` found. ``table``: one ranked row per candidate (:data:`TABLE_COLUMNS`
    then one column per quality metric key); ``candidates``: the baseline and the variants as
    measured (with their quality); ``measurements``, ``evaluation``, ``plan``, ``failure_modes``:
    the underlying results (``plan`` is ``None`` when nothing could be planned, with the reason
    in ``notes``); ``notes``: what degraded."""

    baseline: str
    table: pd.DataFrame
    candidates: tuple[Any, ...]
    measurements: Any
    evaluation: Any
    plan: Any
    failure_modes: Any
    notes: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """A copy of the ranked table."""
        return self.table.copy()

    def vs_baseline(self) -> list[str]:
        """One line per variant: speed, memory, quality change with its interval, cost change."""
        out = []
        for r in self.table.to_dict(orient="records"):
            if r["is_baseline"]:
                continue
            if r["status"] in ("infeasible", "error"):
                out.append(f"{r['candidate']}: {r['status']} -- {r['why']}")
                continue
            parts = [f"{_x(r['speed_x'])} the baseline's speed", f"weights {_x(r['memory_x'])}"]
            if np.isfinite(r["quality_change"]):
                ci = ""
                if np.isfinite(r["quality_change_ci_low"]):
                    ci = f" [{r['quality_change_ci_low']:+.3g}, {r['quality_change_ci_high']:+.3g}]"
                parts.append(f"{r['quality_metric']} {r['quality_change']:+.3g}{ci} ({r['quality_verdict']})")
            if np.isfinite(r["cost_change_usd"]):
                parts.append(f"cost {_usd(r['cost_change_usd'])} per quarter ({r['cost_change_pct']:+.0%})")
            elif r["why"]:
                parts.append(f"cost: {r['why']}")
            out.append(f"{r['candidate']}: " + ", ".join(parts))
        return out

    def vs_baseline_table(self) -> pd.DataFrame:
        """:meth:`vs_baseline` as a table: ``candidate``, ``versus_baseline``."""
        pairs = [line.split(": ", 1) for line in self.vs_baseline()]
        return pd.DataFrame(pairs, columns=["candidate", "versus_baseline"])

    def team_table(self) -> pd.DataFrame:
        """The table a team reads: per candidate (ranked) latency, speed, memory, quality clean
        and under each condition, calibration (ECE), the change of the primary metric with its
        interval, flips, next quarter's cost and its change against the baseline, and why a
        row is not an option (units in the column names)."""
        t = self.table
        generation = self.settings.get("mode") == "generation"
        primary = self.settings.get("primary_metric", "accuracy")
        lat = "tpot_p50_ms" if generation else "latency_p50_ms"
        cond_cols = [c for c in t.columns[len(TABLE_COLUMNS):]
                     if c.split("@")[0] == primary or c == "ece"]
        out = pd.DataFrame({"candidate": t["candidate"], "recipe": t["recipe"], "status": t["status"],
                            lat: t["latency_p50_ms"], "stable": t["stable"], "speed_x": t["speed_x"],
                            "weights_mib": t["weights_mib"],
                            "peak_memory_mib": t["peak_memory_mib"]})
        for c in cond_cols:
            out[c] = t[c]
        out[f"{primary}_change"] = t["quality_change"]
        out[f"{primary}_change_95ci"] = [
            "" if not np.isfinite(lo) else f"[{lo:+.3g}, {hi:+.3g}]"
            for lo, hi in zip(t["quality_change_ci_low"], t["quality_change_ci_high"], strict=True)]
        out["flips_clean"] = ["" if not np.isfinite(f) else f"{int(f)} ({100 * r:.1f}%)"
                              for f, r in zip(t["flips"], t["flip_rate"], strict=True)]
        out["quarter_cost_usd"] = t["quarter_cost_usd"]
        out["cost_change_usd"] = t["cost_change_usd"]
        out["cost_change_pct"] = t["cost_change_pct"]
        out["why"] = t["why"]
        return out

    def figure(self) -> Any:
        """The trade-offs: the primary metric, clean and under the harshest condition (one row
        each), against latency, weights and next quarter's cost, one point per candidate, the
        baseline in black. A matplotlib ``Figure`` (no pyplot state)."""
        return tradeoff_figure(self)

    def __repr__(self) -> str:
        return f"Comparison(baseline={self.baseline!r}, {len(self.table) - 1} variants)"

    def _repr_html_(self) -> str:
        from .safe import html_text

        items = "".join(f"<li>{html_text(line)}</li>" for line in self.vs_baseline())
        return (f"<p>{html_text(repr(self))}</p><ul>{items}</ul>"
                + self.table.to_html(index=False, float_format="{:.4g}".format, na_rep=""))


def tradeoff_figure(comparison: Comparison) -> Any:
    """See :meth:`Comparison.figure`: one column per cost axis (latency, weights, next quarter's
    cost), one row per condition (clean, and the harshest other condition), one labelled point
    per candidate, the baseline in black."""
    from matplotlib.figure import Figure

    from .views.figures import place_labels

    t = comparison.table
    primary = comparison.settings.get("primary_metric", "accuracy")
    others = [c for c in t.columns[len(TABLE_COLUMNS):] if c.startswith(f"{primary}@")]
    rows = [(primary, "clean")] + ([(others[-1], others[-1].split("@", 1)[1])] if others else [])
    generation = comparison.settings.get("mode") == "generation"
    batch = comparison.settings.get("reference", {}).get("batch_size", "?")
    panels = [("latency_p50_ms", "TPOT p50, ms per token" if generation else f"latency p50 at batch {batch}, ms"),
              ("weights_mib", "weights as stored, MiB"), ("quarter_cost_usd", "cost next quarter, USD")]
    fig = Figure(figsize=(12, 3.2 * len(rows)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), 3, squeeze=False))
    shown = t[np.isfinite(pd.to_numeric(t["quality"], errors="coerce"))]
    for i, (qcol, cond) in enumerate(rows):
        for j, (col, label) in enumerate(panels):
            ax = axes[i, j]
            pts = shown[np.isfinite(shown[col].astype(float)) & np.isfinite(shown[qcol].astype(float))]
            if pts.empty:
                ax.text(0.5, 0.5, "no figures", ha="center", va="center", transform=ax.transAxes)
            for r in pts.to_dict(orient="records"):
                ax.plot([r[col]], [r[qcol]], "o", ms=7, color="black" if r["is_baseline"] else "tab:blue")
            ax.margins(x=0.15, y=0.2)
            ax.grid(alpha=0.3, which="both")
            xs = pts[col].astype(float)
            if len(xs) and xs.min() > 0 and xs.max() / xs.min() > 4:  # spread over an order of magnitude
                from matplotlib.ticker import LogLocator, NullFormatter

                decades = float(np.log10(xs.max() / xs.min()))
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades < 1.5 else
                                                      (1.0, 3.0) if decades < 2.5 else (1.0,)))
                ax.xaxis.set_minor_formatter(NullFormatter())
            if col == "quarter_cost_usd":
                ax.xaxis.set_major_formatter(lambda v, _: f"${v:,.0f}")
            elif ax.get_xscale() == "log":
                ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
            if i == len(rows) - 1:
                ax.set_xlabel(label)
            if j == 0:
                ax.set_ylabel(f"{primary}, {cond}" + (" (lower is better)" if primary == "perplexity" else ""))
            place_labels(ax, pts[col].astype(float), pts[qcol].astype(float), list(pts["recipe"]))
    fig.suptitle(f"{comparison.baseline} (black) and its slim variants: quality against speed, memory and cost",
                 fontsize=10)
    return fig


def _x(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:.2f}x"


def _usd(v: float) -> str:
    return f"{'+' if v >= 0 else '-'}${abs(v):,.0f}"


# ----------------------------------------------------------------------------- pieces
def _as_eval_candidate(c: Any) -> Any:
    """A Candidate view of a GenerationCandidate, for :func:`effplan.evaluate` (its forward gives
    the logits of every position)."""
    from .models.candidates import Candidate
    from .models.generative import GenerationCandidate

    if not isinstance(c, GenerationCandidate):
        return c
    return Candidate(c.name, c.model_fn, _no_inputs, tags=c.tags, dtype=c.dtype, device=c.device, seed=c.seed)


def _no_inputs(batch_size: int) -> None:
    return None


def _merge(parts: list[Any]) -> Any:
    from .records.quality import Evaluation

    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    repro, boot, preds = {}, {}, {}
    for p in parts:
        repro.update(p.reproducibility)
        boot.update(p.bootstrap)
        preds.update(p.predictions)
    return Evaluation(frame=frame, reproducibility=repro, settings=dict(parts[0].settings), bootstrap=boot,
                      predictions=preds)


def _plan_quality(evaluation: Any) -> pd.DataFrame:
    """The evaluation's rows for the plan, without those whose key is a measurement column: a
    generative model's clean ``perplexity`` is already on its measured rows (its quality)."""
    from .records.quality import metric_key
    from .records.schema import MEASUREMENT_COLUMNS

    f = evaluation.frame
    keys = [metric_key(m, c) for m, c in zip(f["metric"], f["condition"], strict=True)]
    return f[[k not in MEASUREMENT_COLUMNS for k in keys]].reset_index(drop=True)


def _floating_inputs(data: Any) -> bool:
    from .models.candidates import tensor_leaves
    from .models.data import gather_xy

    x, _ = gather_xy(data, "data")
    return any(t.is_floating_point() for t in tensor_leaves(x))


def _with_quality(c: Any, evaluation: Any, generation: bool) -> Any:
    f = evaluation.frame
    clean = f[(f["candidate"] == c.name) & (f["condition"] == "clean")].set_index("metric")["value"]
    if generation:
        if "perplexity" in clean.index and np.isfinite(clean["perplexity"]) and clean["perplexity"] >= 1:
            return replace(c, perplexity=float(clean["perplexity"]))
        return c
    if "accuracy" in clean.index and getattr(c, "quality_metric", "accuracy") == "accuracy":
        return replace(c, quality=float(clean["accuracy"]))
    return c


def _reference(frame: pd.DataFrame, baseline: str, generation: bool) -> dict[str, Any]:
    ok = frame[(frame["status"] == "ok") & (frame["candidate"] == baseline)]
    if ok.empty:
        return {}
    ref = {"batch_size": int(pd.to_numeric(ok["batch_size"]).max())}
    if generation:
        ref["prompt_tokens"] = int(pd.to_numeric(ok["prompt_tokens"]).max())
    return ref


def _point(frame: pd.DataFrame, name: str, ref: Mapping[str, Any]) -> pd.Series | None:
    rows = frame[(frame["candidate"] == name) & (frame["status"] == "ok")]
    for k, v in ref.items():
        rows = rows[pd.to_numeric(rows[k]) == v]
    return None if rows.empty else rows.iloc[-1]


# ----------------------------------------------------------------------------- compare
def compare(baseline: Any, recipes: Sequence[str] | str | None = None, *, data: Any,
            batch_sizes: Sequence[int] = (1, 8, 32), train_data: Any = None, variants: Sequence[Any] | None = None,
            shifts: Mapping[str, Any] | None = None, noise: Sequence[float] | None = None,
            metrics: Sequence[Any] | None = None, workload: Any = None, prices: Any = None,
            device: Any = "cpu", results_path: Any = None, measure_options: Mapping[str, Any] | None = None,
            seed: int = 0, n_bootstrap: int = 1000, confidence: float = 0.95, max_examples: int = 20,
            allow_unstable: bool | None = None, progress: bool = False) -> Comparison:
    """Slim ``baseline``, then measure, evaluate and plan every variant; see the module docstring.

    Parameters
    ----------
    baseline: a :class:`~effplan.Candidate` or :class:`~effplan.GenerationCandidate`.
    recipes: for :func:`effplan.slim` (default :data:`effplan.slim.DEFAULT_RECIPES`); ignored
        when ``variants`` is given.
    data: HELD-OUT ``(inputs, labels)`` for the quality evaluation (a generative model: token
        windows and their next tokens, ``(batch, tokens)`` each).
    batch_sizes: batch sizes (concurrencies, for generation) to measure.
    train_data: training data for the ``distill`` recipe (never the held-out data).
    variants: candidates to compare instead of making them with slim (e.g. ``slim(...)`` output
        plus your own).
    shifts, noise, metrics, seed, n_bootstrap, confidence: as :func:`effplan.evaluate`
        (``noise`` default: its two levels for floating inputs, none for token ids; ``metrics``
        default: accuracy, ECE, NLL, Brier -- perplexity and accuracy for a generative model).
    workload: an :class:`~effplan.InferenceWorkload` / :class:`~effplan.GenerationWorkload`
        (default: see the module docstring). prices: :class:`~effplan.Prices` (default
        :func:`effplan.defaults.prices`).
    device, results_path, measure_options: for :func:`effplan.measure` (``measure_options``:
        any of its other keyword arguments, e.g. ``time_budget_s``, ``prompt_tokens``).
    max_examples: flipped examples kept per variant x condition in the catalog.
    allow_unstable: the stability rule of :func:`effplan.plan` (None: the shared default
        :data:`effplan.defaults.ALLOW_UNSTABLE`: points that are not stable are used and every
        figure planned from them is flagged; the table's ``stable`` column says which); False
        refuses them, and such a variant shows why.
    """
    from . import defaults
    from .models.candidates import Candidate
    from .planning.stability import resolve_allow_unstable
    from .refdata.catalog import load_catalog
    from .bench.evaluation import DEFAULT_METRICS, DEFAULT_NOISE, evaluate
    from .refdata.failure_modes import failure_modes
    from .models.generative import GenerationCandidate
    from .measurement import measure
    from .planning import plan as make_plan
    from .planning.frames import rank_options
    from .models.slimming import DEFAULT_RECIPES, infeasible, slim, variant_info

    if not isinstance(baseline, Candidate | GenerationCandidate):
        raise ValidationError("baseline", f"expected a Candidate or GenerationCandidate, got {type(baseline).__name__}",
                              where="compare")
    generation = isinstance(baseline, GenerationCandidate)
    notes: list[str] = []
    if "baseline" not in baseline.tags:
        baseline = replace(baseline, tags=("baseline",) + tuple(baseline.tags))
    if variants is None:
        variants = slim(baseline, DEFAULT_RECIPES if recipes is None else recipes, data=train_data,
                        device=baseline.device or device)
    variants = list(variants)
    names = [baseline.name] + [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValidationError("variants", f"candidate names must be unique, got {names}", where="compare")
    status: dict[str, tuple[str, str]] = {n: ("infeasible", why) for n, why in infeasible(variants).items()}
    todo = [baseline] + [v for v in variants if v.name not in status]

    # ---- quality, one candidate at a time (same seed: the same noise and resamples, paired)
    if metrics is None:
        metrics = ("perplexity", "accuracy") if generation else DEFAULT_METRICS
    if noise is None:
        noise = DEFAULT_NOISE if _floating_inputs(data) else ()
    parts = []
    for c in todo:
        try:
            parts.append(evaluate(_as_eval_candidate(c), data, metrics=metrics, shifts=shifts, noise=noise,
                                  seed=seed, n_bootstrap=n_bootstrap, confidence=confidence,
                                  device=c.device or device))
        except Exception as exc:  # one candidate's failure is its row, the comparison goes on
            if c is baseline:
                raise
            status[c.name] = ("error", f"evaluation failed: {type(exc).__name__}: {exc}")
    evaluation = _merge(parts)
    todo = [_with_quality(c, evaluation, generation) for c in todo if c.name not in status]

    # ---- cost: measure, then plan on the measured machine
    opts = dict(measure_options or {})
    mode = "generation" if generation else "inference"
    m = measure(todo, batch_sizes=batch_sizes, mode=mode, device=device, results_path=results_path,
                progress=progress, **opts)
    frame = m.to_frame()
    for name, rows in frame.groupby("candidate", sort=False):
        if (rows["status"] != "ok").all() and name not in status:
            status[name] = ("error", "measurement failed: " + str(rows["error"].iloc[0]))
    base_rows = frame[(frame["candidate"] == baseline.name) & (frame["status"] == "ok")]
    plan = None
    ranked = pd.DataFrame()
    if base_rows.empty:
        notes.append("the baseline could not be measured: no cost comparison")
    else:
        hardware = str(base_rows["hardware"].iloc[0])
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if workload is None:
                    workload = (defaults.generation_workload(frame) if generation else
                                defaults.workload(requests_per_day=defaults.demo_requests_per_day(
                                    frame, allow_unstable=allow_unstable)))
                kind = "generation" if generation else "inference"
                plan = make_plan(frame, **{kind: workload}, prices=prices or defaults.prices(),
                                 catalog=load_catalog(include_this_machine=True), quality=_plan_quality(evaluation),
                                 allow_unstable=allow_unstable)
            notes += list(dict.fromkeys(str(w.message) for w in caught))
            ranked = rank_options(plan, baseline=baseline.name, hardware=[hardware])
        except ValidationError as exc:
            notes.append(f"no plan: {exc}")
            plan = None

    # ---- failure modes
    fm = failure_modes(evaluation, baseline.name, confidence=confidence, max_examples=max_examples)
    summary = fm.summary()

    # ---- the table
    ref = _reference(frame, baseline.name, generation)
    lat = ("tpot_p50_ms", "tpot_p95_ms") if generation else ("latency_p50_ms", "latency_p95_ms")
    bpoint = _point(frame, baseline.name, ref) if ref else None
    primary = "perplexity" if generation else "accuracy"
    versus = evaluation.versus(baseline.name)
    versus = versus[(versus["metric"] == primary) & (versus["condition"] == "clean")].set_index("candidate")
    wide = evaluation.wide().set_index("candidate")
    rk = ranked.set_index("candidate") if not ranked.empty else pd.DataFrame()
    rows = []
    for c in [baseline] + variants:
        info = variant_info(c)
        r: dict[str, Any] = {k: math.nan for k in TABLE_COLUMNS}
        r.update(stable=None, candidate=c.name, recipe=info.recipe if info else ("baseline" if c is baseline else ""),
                 dtype=c.dtype or "", is_baseline=c is baseline, quality_metric=primary, why="",
                 quality_verdict="", worst_condition="", meets_targets=False, status="ok")
        st = status.get(c.name)
        if st:
            r["status"], r["why"] = st
        p = _point(frame, c.name, ref) if ref else None
        if p is not None:
            r.update(reference_batch=float(ref["batch_size"]), latency_p50_ms=float(p[lat[0]]),
                     latency_p95_ms=float(p[lat[1]]), weights_mib=float(p["param_bytes"]) / 2**20,
                     peak_memory_mib=float(p["peak_memory_mib"]), dtype=str(p["dtype"]) or r["dtype"],
                     stable=bool(p["stable"]) if pd.notna(p["stable"]) else False)
            if bpoint is not None:
                r["speed_x"] = float(bpoint[lat[0]]) / float(p[lat[0]])
                r["memory_x"] = float(p["param_bytes"]) / float(bpoint["param_bytes"])
        if c.name in wide.index:
            for k, v in wide.loc[c.name].items():
                r[k] = float(v)
            r["quality"] = float(wide.loc[c.name].get(primary, math.nan))
        if c is baseline and c.name in wide.index:
            r.update(quality_change=0.0, quality_verdict="baseline")
        elif c.name in versus.index:
            v = versus.loc[c.name]
            r.update(quality_change=float(v["change"]), quality_change_ci_low=float(v["change_ci_low"]),
                     quality_change_ci_high=float(v["change_ci_high"]), quality_verdict=str(v["verdict"]))
        fr = summary[summary["variant"] == c.name]
        if not fr.empty:
            clean = fr[fr["condition"] == "clean"]
            if not clean.empty:
                cr = clean.iloc[0]
                r.update(flips=float(cr["flips"]), flip_rate=float(cr["flip_rate"]),
                         flip_ci_low=float(cr["flip_ci_low"]), flip_ci_high=float(cr["flip_ci_high"]))
            r.update(worst_condition=str(fr.iloc[0]["condition"]), worst_condition_flips=float(fr.iloc[0]["flips"]))
        if c.name in rk.index:
            o = rk.loc[c.name]
            o = o.iloc[0] if isinstance(o, pd.DataFrame) else o
            r.update(quarter_cost_usd=float(o["quarter_cost_usd"]), meets_targets=bool(o["meets_targets"]),
                     cost_change_usd=float(o["vs_baseline_usd"]), cost_change_pct=float(o["vs_baseline_pct"]))
            if not r["why"] and str(o["why_not"]):
                r["why"] = str(o["why_not"])
                r["status"] = "misses targets"
        elif r["status"] == "ok":
            r["status"] = "not planned"
            r["why"] = (next((n for n in notes if n.startswith("no plan")), "") if plan is None
                        else "no plan option on the measured hardware")
        rows.append(r)
    table = pd.DataFrame(rows)
    extra = [k for k in wide.columns if k not in TABLE_COLUMNS]
    table = table[TABLE_COLUMNS + extra]
    order = {"ok": 0, "misses targets": 1, "not planned": 2, "error": 3, "infeasible": 4}
    table["_s"] = table["status"].map(order).fillna(5)
    table["_c"] = pd.to_numeric(table["quarter_cost_usd"], errors="coerce").fillna(np.inf)
    table = table.sort_values(["_s", "_c", "candidate"], kind="mergesort").drop(columns=["_s", "_c"])
    table["rank"] = np.arange(1, len(table) + 1)
    table = table.reset_index(drop=True)
    if any(s in ("error",) for s, _ in status.values()):
        warnings.warn("effplan.compare: " + "; ".join(f"{n}: {w}" for n, (s, w) in status.items() if s == "error"),
                      EffplanWarning, stacklevel=2)
    settings = {"recipes": [variant_info(v).recipe for v in variants if variant_info(v)], "mode": mode,
                "batch_sizes": list(batch_sizes), "reference": ref, "primary_metric": primary,
                "noise": list(noise), "seed": seed, "allow_unstable": resolve_allow_unstable(allow_unstable)}
    return Comparison(baseline=baseline.name, table=table, candidates=tuple(todo), measurements=m,
                      evaluation=evaluation, plan=plan, failure_modes=fm, notes=tuple(notes), settings=settings)


class _CallableModule(types.ModuleType):
    """``effplan.compare`` is both this module and the function :func:`compare` (see
    :mod:`effplan.slim`, which does the same)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Comparison:
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
