"""Compute cards: what one candidate costs and gives up, in Markdown and JSON, from stored results.

:func:`compute_card` gathers, for one candidate:

* parameters; FLOPs per item (with the counting engine and coverage); training throughput and
  compute when training was measured;
* latency p50/p95 at the operating point (with a plan: the batch size and hardware of the
  candidate's cheapest feasible plan option; without one: the measured inference point with the
  highest throughput);
* energy per 1,000 requests with its source; cost per 1,000 requests (from the plan);
* the quality metrics per condition (:func:`effplan.evaluate`, or entered values);
* with a failure-mode catalog (:func:`effplan.failure_modes.failure_modes`), what the candidate
  gets wrong that the baseline got right, per condition: flips with their interval, the classes
  that lost most, the first flipped examples;
* hardware and software versions, seeds and weight hashes;
* the exact inputs of the plan;
* whether the timing it quotes was stable: for a point timed on a busy machine the card says so
  with the one statement of :mod:`effplan.planning.stability` ("Timings were taken on a busy
  machine (background load N cores); the cost could be X% off.").

Every figure carries its provenance: ``measured``, ``estimated``, ``projected`` or ``entered``.

Determinism: the card holds no clock reading of its own (only the stored ``timestamp`` of the
measurement it quotes); the JSON keeps a fixed key order and the Markdown is rendered from the
JSON alone (:func:`render_markdown`),
so :func:`load_card` on a stored ``.card.json`` gives the same text, and the same stored
measurements / evaluation / plan give the same card on any machine.

Energy per 1,000 requests at the operating point = ``energy_per_item_j x items_per_request x
1000`` (items_per_request from the plan's workload, else 1), the point's total energy (idle
included) as measured; the plan's figure (``energy_kwh / requests x 1000``, PUE and idle
instances included) is given beside it as ``projected``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ValidationError
from ..safe import (MAX_STEM_CHARS, code_fence, file_stem, markdown_text, name_hash, path_inside)
from .card_sources import carbon as _carbon

CARD_VERSION = 1
_POINT_KEYS = ("mode", "hardware", "batch_size", "latency_p50_ms", "latency_p95_ms",
               "throughput_items_per_s", "energy_per_item_j", "energy_source", "provenance")
_ROW_REPRO = ("hardware", "hardware_id", "device", "dtype", "threads", "torch_version", "seed",
              "python_version", "numpy_version", "effplan_version", "weights_sha256", "config_sha256",
              "timing_policy", "timestamp")


@dataclass(frozen=True)
class ComputeCard:
    """A rendered card: ``markdown`` text, the ``data`` it was rendered from (JSON-ready), and the
    files written (``markdown_path``, ``json_path``; ``None`` when not written)."""

    candidate: str
    markdown: str
    data: dict[str, Any] = field(repr=False)
    markdown_path: Path | None = None
    json_path: Path | None = None

    def _repr_markdown_(self) -> str:
        return self.markdown

    def to_html(self) -> str:
        """The card as an HTML page (:func:`effplan.views.card_render.render_html`, the same page
        ``compute_card`` writes as ``.card.html``): every text is escaped there, and every name
        in the Markdown is already literal text (:func:`effplan.safe.markdown_text`)."""
        from .card_render import render_html

        return render_html(self.markdown, f"Compute card: {self.candidate}")

    def _repr_html_(self) -> str:
        return self.to_html()


# ----------------------------------------------------------------------------- helpers

def _clean(v: Any) -> Any:
    """JSON-ready scalar: numpy -> Python, NaN -> None."""
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    return v


def _figure(value: Any, unit: str, provenance: str, source: str = "") -> dict[str, Any]:
    return {"value": _clean(value), "unit": unit, "provenance": provenance, "source": source}


def _fnum(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _measurement_frame(measurements: Any) -> pd.DataFrame:
    from ..records.schema import normalize_measurements

    if isinstance(measurements, str | Path) or (isinstance(measurements, Iterable)
                                                and not isinstance(measurements, pd.DataFrame | Mapping)
                                                and not hasattr(measurements, "to_frame")):
        from ..records import store

        df = store.load(measurements, on_error="raise")
    elif hasattr(measurements, "to_frame") and not isinstance(measurements, pd.DataFrame):
        df = measurements.to_frame()
    elif isinstance(measurements, pd.DataFrame):
        df = measurements
    else:
        raise ValidationError("measurements", "expected Measurements, a DataFrame or results file path(s), "
                              f"got {type(measurements).__name__}", where="compute_card")
    return normalize_measurements(df, required=("candidate", "hardware", "mode", "batch_size"),
                                  source="compute_card")


def _plan_parts(plan: Any) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, Any]]:
    """(summary, training, inputs) from a Plan or a folder written by ``Plan.to_csv``."""
    if plan is None:
        return None, None, {}
    if isinstance(plan, str | Path):   # validated: a truncated or edited file is a named error
        from .card_sources import read_plan_folder

        return read_plan_folder(plan)
    if not hasattr(plan, "summary"):
        raise ValidationError("plan", f"expected a Plan or a folder written by Plan.to_csv, got "
                              f"{type(plan).__name__}", where="compute_card")
    return plan.summary, plan.training, dict(plan.inputs)


def _energy_provenance(source: str) -> str:
    from ..records.schema import MEASURED_ENERGY_SOURCES

    if source in MEASURED_ENERGY_SOURCES:
        return "measured"
    if source in ("entered", "projected"):
        return source
    return "estimated"


# ----------------------------------------------------------------------------- gather

def card_data(candidate_name: str, measurements: Any, plan: Any = None, quality: Any = None,
              failure_modes: Any = None, *, intended_use: str = "", limitations: str = "",
              not_used: list[str] | None = None, grid_gco2_per_kwh: float | None = None) -> dict[str, Any]:
    """The card's content as a JSON-ready dict (what :func:`render_markdown` renders)."""
    if not isinstance(candidate_name, str) or not candidate_name:
        raise ValidationError("candidate_name", f"must be a non-empty string, got {candidate_name!r}",
                              where="compute_card")
    df = _measurement_frame(measurements)
    rows = df[(df["candidate"] == candidate_name) & (df["status"] == "ok")]
    if rows.empty:
        known = sorted(set(df["candidate"]))
        raise ValidationError("candidate_name", f"no successful measurement rows for {candidate_name!r}; "
                              f"candidates in the measurements: {known}", where="compute_card")
    inf = rows[rows["mode"] == "inference"]
    trn = rows[rows["mode"] == "training"]
    summary, training, inputs = _plan_parts(plan)

    # ---- operating point
    op: dict[str, Any] = {}
    plan_row = None
    if summary is not None and not summary.empty and inputs.get("inference") and "cost_usd" in summary.columns:
        mine = summary[summary["candidate"] == candidate_name]
        from ..records.schema import bool_mask

        feas = mine[bool_mask(mine["feasible"], "feasible", where="plan summary")] if not mine.empty else mine
        if not feas.empty:
            plan_row = feas.sort_values("cost_usd", kind="mergesort").iloc[0]
    point = None
    if plan_row is not None:
        hw, bs = str(plan_row["hardware"]), _fnum(plan_row["batch_size"])
        hit = inf[(inf["hardware"] == hw) & (inf["batch_size"].astype(float) == bs)]
        point = hit.iloc[-1] if not hit.empty else None
        op = {"chosen_by": "the candidate's cheapest feasible plan option", "hardware": hw,
              "batch_size": _clean(bs), "provenance": str(plan_row.get("provenance", "projected"))}
    elif not inf.empty:
        point = inf.sort_values(["throughput_items_per_s", "batch_size"], ascending=[False, True],
                                kind="mergesort").iloc[0]
        op = {"chosen_by": "the measured inference point with the highest throughput ("
                           + ("no plan given" if summary is None else
                              "the plan has no feasible inference option for it") + ")",
              "hardware": str(point["hardware"]), "batch_size": _clean(int(point["batch_size"])),
              "provenance": str(point["provenance"])}
    ref = point if point is not None else rows.iloc[-1]
    prov = str(ref["provenance"])

    # ---- model size and compute
    model = {
        "params": _figure(ref["params"], "parameters", prov, "counted on the built model"),
        "param_bytes": _figure(ref["param_bytes"], "bytes", prov, "parameters and buffers"),
        "flops_per_item": _figure(ref["flops_per_item"], "FLOPs (2 x MACs) per item, forward", prov,
                                  f"engine {ref['flops_engine'] or 'n/a'}"),
        "flops_coverage": _figure(ref["flops_coverage"], "share of operator calls counted", prov, ""),
    }
    train: dict[str, Any] = {}
    if not trn.empty:
        t = trn.sort_values("throughput_items_per_s", ascending=False, kind="mergesort").iloc[0]
        tp = str(t["provenance"])
        train = {
            "batch_size": _figure(int(t["batch_size"]), "items per step", tp),
            "throughput_items_per_s": _figure(t["throughput_items_per_s"], "items/s", tp, str(t["hardware"])),
            "flops_per_item": _figure(3 * _fnum(t["flops_per_item"]), "FLOPs per item (3 x forward)",
                                      "estimated", "forward + backward ~ 3 x forward"),
            "energy_per_item_j": _figure(t["energy_per_item_j"], "J per item",
                                         _energy_provenance(str(t["energy_source"])), str(t["energy_source"])),
        }
    if training is not None and not training.empty:
        mine = training[training["candidate"] == candidate_name]
        if not mine.empty:
            hours = pd.to_numeric(mine.groupby("hardware", sort=False)["device_hours"].sum(min_count=1),
                                  errors="coerce")
            for hw, h in hours.items():
                train[f"plan_device_hours[{hw}]"] = _figure(h, "device-hours over the plan", "projected",
                                                            "plan.training")

    # ---- latency, energy and cost at the operating point
    items_per_request = 1.0
    if inputs.get("inference"):
        items_per_request = _fnum(inputs["inference"].get("items_per_request", 1.0))
    serving: dict[str, Any] = {}
    # ---- timing stability of the operating point (the plan's flags when it was planned, since
    # they cover interpolation neighbours and projections; else the measured point's own row)
    stability = _stability(plan_row if plan_row is not None else point)
    if point is not None:
        pp = str(point["provenance"])
        if stability.get("stable") is False:   # the figure is quoted, never as a firm "measured"
            pp = f"{pp}, not stable"
        src = str(point["energy_source"])
        serving["latency_p50_ms"] = _figure(point["latency_p50_ms"], "ms per batch", pp, str(point["hardware"]))
        serving["latency_p95_ms"] = _figure(point["latency_p95_ms"], "ms per batch", pp, str(point["hardware"]))
        serving["throughput_items_per_s"] = _figure(point["throughput_items_per_s"], "items/s", pp)
        serving["energy_per_1k_requests_j"] = _figure(
            _fnum(point["energy_per_item_j"]) * items_per_request * 1000, "J per 1,000 requests",
            _energy_provenance(src), f"{src}; {items_per_request:g} item(s) per request; idle included")
    elif plan_row is not None:
        serving["latency_p95_ms"] = _figure(plan_row["latency_p95_ms"], "ms per batch",
                                            str(plan_row.get("provenance", "projected")), op.get("hardware", ""))
    if plan_row is not None:
        req = _fnum(plan_row.get("requests"))
        serving["plan_energy_per_1k_requests_kwh"] = _figure(
            _fnum(plan_row.get("energy_kwh")) / req * 1000 if req > 0 else math.nan,
            "kWh per 1,000 requests", "projected", "plan: PUE and idle instances included")
        serving["cost_per_1k_requests_usd"] = _figure(plan_row.get("cost_per_1k_requests_usd"),
                                                      "USD per 1,000 requests", "projected",
                                                      str(plan_row.get("price_source", "")))
    else:
        serving["cost_per_1k_requests_usd"] = _figure(
            None, "USD per 1,000 requests", "projected",
            "no plan given" if summary is None else "the plan has no feasible inference option for it")

    # ---- quality
    qual: list[dict[str, Any]] = []
    repro_eval: dict[str, Any] = {}
    if quality is not None:
        from ..records.quality import Evaluation, quality_frame

        qf = quality_frame(quality)
        qf = qf[qf["candidate"] == candidate_name]
        for r in qf.to_dict(orient="records"):
            qual.append({k: _clean(r[k]) for k in ("metric", "condition", "value", "ci_low", "ci_high", "n",
                                                   "provenance", "higher_is_better")})
        if isinstance(quality, Evaluation):
            repro_eval = {k: _clean(v) for k, v in quality.reproducibility.get(candidate_name, {}).items()}
            repro_eval["evaluation_settings"] = json.dumps(quality.settings, sort_keys=True)
    evaluated, verdicts, vs = _evaluated(quality, candidate_name, df)
    if not qual:
        qv = pd.to_numeric(rows["quality"], errors="coerce").dropna()
        if len(qv):
            qual.append({"metric": "quality", "condition": "clean", "value": _clean(qv.iloc[-1]),
                         "ci_low": None, "ci_high": None, "n": None, "provenance": "entered",
                         "higher_is_better": True})

    # ---- reproducibility
    repro = {k: _clean(ref[k]) for k in _ROW_REPRO if k in ref.index}
    repro = {k: ("" if v is None else v) for k, v in repro.items()}

    points = []
    for r in rows.sort_values(["mode", "hardware", "batch_size"], kind="mergesort").to_dict(orient="records"):
        points.append({k: _clean(r[k]) for k in _POINT_KEYS})
    co2 = _carbon(plan_row, training, inputs, candidate_name, point, items_per_request, grid_gco2_per_kwh)
    return {"effplan_card_version": CARD_VERSION, "candidate": candidate_name,
            "intended_use": str(intended_use or ""), "limitations": str(limitations or ""),
            "not_used": list(not_used or []), "carbon": co2, "evaluated": evaluated,
            "verdicts": verdicts, "verdict_baseline": vs,
            "tags": str(ref["tags"]), "operating_point": op, "model": model, "training": train,
            "serving": serving, "stability": stability, "quality": qual, "reproducibility": repro,
            "evaluation_reproducibility": repro_eval, "measured_points": points,
            "failure_modes": failure_modes.for_card(candidate_name) if failure_modes is not None else {},
            # sorted keys: a Plan in memory and one read back from inputs.json give the same card
            "plan_inputs": json.loads(json.dumps(inputs, sort_keys=True, default=str))}


def _evaluated(quality: Any, candidate: str, measurements: pd.DataFrame
               ) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """(what was evaluated, verdicts against the baseline, the baseline) from an Evaluation."""
    from ..planning.frames import baseline_candidate
    from ..records.quality import Evaluation

    if not isinstance(quality, Evaluation):
        return {}, [], ""
    st = quality.settings
    d = dict(st.get("data") or {})
    evaluated = {"description": d.get("description", ""), "sha256": d.get("sha256", ""), "rows": d.get("rows"),
                 "conditions": dict(st.get("condition_descriptions") or {})}
    base = baseline_candidate(measurements)
    if not base or base == candidate or base not in set(quality.frame["candidate"]):
        return evaluated, [], base or ""
    v = quality.versus(base)
    v = v[v["candidate"] == candidate]
    return evaluated, [{k: _clean(r[k]) for k in ("metric", "condition", "value", "baseline_value", "change",
                                                  "verdict", "test")} for r in v.to_dict(orient="records")], base


def _stability(row: Any) -> dict[str, Any]:
    """``{"stable", "background_load_cores", "timing_spread_rel", "note"}`` of a plan summary row
    (``timing_unstable`` ...) or a measured row (``stable``, ``latency_*``); {} without one."""
    from ..planning import stability as st

    if row is None:
        return {}
    if "timing_unstable" in row.index:
        flagged = st.is_flagged(row["timing_unstable"])
        load, spread = _fnum(row.get("background_load")), _fnum(row.get("timing_spread_rel"))
    else:
        one = pd.DataFrame([row.to_dict()])
        flagged = bool(st.not_stable(one)[0])
        load, spread = _fnum(row.get("background_load")), float(st.row_spread(one)[0])
        stable_v = row.get("stable")
        if not flagged and (stable_v is None or _clean(stable_v) is None or str(stable_v) == ""):
            return {"stable": None, "background_load_cores": _clean(load), "timing_spread_rel": None,
                    "note": ""}
    note = st.busy_sentence(load, spread) if flagged else ""
    return {"stable": not flagged, "background_load_cores": _clean(load),
            "timing_spread_rel": _clean(spread) if flagged else None, "note": note}


# ----------------------------------------------------------------------------- render

def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "n/a"
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4g}"
    return markdown_text(v)  # text from data: literal, one line, no markup


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return out


def _figure_rows(figs: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    return [[k, f["value"], f["unit"], f["provenance"], f["source"] or ""] for k, f in figs.items()]


def render_markdown(data: Mapping[str, Any]) -> str:
    """The card's Markdown from its JSON dict alone (deterministic)."""
    if not isinstance(data, Mapping) or data.get("effplan_card_version") != CARD_VERSION:
        raise ValidationError("effplan_card_version", f"not a version-{CARD_VERSION} compute card",
                              where="render_markdown")
    from .card_render import hf_metadata

    name = markdown_text(data["candidate"])
    lines = [hf_metadata(data), "", f"# Compute card: {name}", ""]
    if data.get("tags"):
        lines += [f"Tags: {markdown_text(data['tags'])}", ""]
    lines += ["Every figure says how it was got: *measured* on the machine named below, *estimated* "
              "(e.g. energy from rated power), *projected* (by the plan, or to other hardware) or "
              "*entered* by hand.", ""]
    op = data.get("operating_point") or {}
    lines += ["## Operating point", ""]
    note = (data.get("stability") or {}).get("note")
    if op:
        lines += [f"Batch size {_fmt(op.get('batch_size'))} on {_fmt(op.get('hardware'))} "
                  f"({_fmt(op.get('provenance'))}), chosen as {_fmt(op.get('chosen_by'))}.", ""]
        if note:
            lines += [f"**Not stable:** {note} Re-measure on a quiet machine for firm figures.", ""]
        elif (data.get("stability") or {}).get("stable") is True:
            lines += ["Timings: not flagged as unstable.", ""]
    else:
        lines += ["No inference point was measured.", ""]
    head = ["figure", "value", "unit", "provenance", "source"]
    lines += ["## Model size and compute", ""] + _table(head, _figure_rows(data["model"])) + [""]
    if data.get("training"):
        lines += ["## Training compute", ""] + _table(head, _figure_rows(data["training"])) + [""]
    lines += ["## Latency, energy and cost at the operating point", ""]
    lines += _table(head, _figure_rows(data["serving"])) + [""]
    lines += ["## Quality", ""]
    if data.get("quality"):
        lines += _table(["metric", "condition", "value", "CI low", "CI high", "n", "provenance",
                         "better"],
                        [[q["metric"], q["condition"], q["value"], q["ci_low"], q["ci_high"], q["n"],
                          q["provenance"], "higher" if q["higher_is_better"] else "lower"]
                         for q in data["quality"]]) + [""]
    else:
        lines += ["No quality figure was given.", ""]
    lines += _failure_lines(data.get("failure_modes") or {})
    from .card_render import extra_sections

    lines += extra_sections(data)
    lines += ["## Measured points", ""]
    lines += _table(["mode", "hardware", "batch", "p50 ms", "p95 ms", "items/s", "J/item", "energy source",
                     "provenance"], [[p.get(k) for k in _POINT_KEYS] for p in data["measured_points"]]) + [""]
    lines += ["## Hardware, software and seeds", ""]
    repro = dict(data.get("reproducibility") or {})
    lines += _table(["field", "value"], [[k, v if v != "" else "n/a"] for k, v in repro.items()]) + [""]
    ev = data.get("evaluation_reproducibility") or {}
    if ev:
        lines += ["Quality evaluation:", ""]
        lines += _table(["field", "value"], [[k, v if v != "" else "n/a"] for k, v in ev.items()]) + [""]
    lines += ["## Plan inputs", ""]
    if data.get("plan_inputs"):
        lines += code_fence(json.dumps(data["plan_inputs"], indent=2, sort_keys=True), "json") + [""]
    else:
        lines += ["No plan was given.", ""]
    return "\n".join(lines)


def _failure_lines(fm: Mapping[str, Any]) -> list[str]:
    """The card's failure-mode section ([] without a catalog for this candidate)."""
    if not fm:
        return []
    pct = f"{100 * float(fm['confidence']):g}%"
    lines = [f"## Failure modes against the baseline ({markdown_text(fm['baseline'])})", "",
             "Flips: examples the baseline gets right and this candidate gets wrong (rate of all "
             f"examples, {pct} Wilson interval); fixes: the other way round.", ""]

    def share(v: Any) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    lines += _table(["condition", "n", "flips", "flip rate", f"{pct} CI", "fixes", "accuracy change",
                     "worst classes"],
                    [[c["condition"], c["n"], c["flips"], share(c["flip_rate"]),
                      f"{share(c['flip_ci_low'])}-{share(c['flip_ci_high'])}", c["fixes"],
                      f"{100 * c['accuracy_change']:+.1f} pts" if c["accuracy_change"] is not None else "n/a",
                      ", ".join(f"{w['class']} ({100 * w['change']:+.1f} pts, n={w['n']})"
                                for w in c["worst_classes"]) or "none"]
                     for c in fm["conditions"]]) + [""]
    if fm.get("examples"):
        lines += ["Flipped examples to look at first (the candidate most confident in its wrong answer):", ""]
        lines += _table(["condition", "index", "label", "baseline p(label)", "predicted", "p(predicted)"],
                        [[e["condition"], e["index"], e["label"], e["baseline_p_true"], e["variant_predicted"],
                          e["variant_p_predicted"]] for e in fm["examples"]]) + [""]
    return lines


def _card_paths(out_dir: Path, candidate: str) -> tuple[Path, Path]:
    """``<stem>.card.md`` / ``.card.json`` in ``out_dir`` for ``candidate``: the stem of
    :func:`effplan.safe.file_stem` (a clean name as itself, else its slug + a hash of the exact
    name, at most 80 characters), never outside ``out_dir``. A card there that belongs to
    ANOTHER candidate (a name crafted to collide) is never overwritten: a longer hash is tried,
    then :class:`ValidationError`."""
    longer = f"{file_stem(candidate, max_chars=MAX_STEM_CHARS - 21)}-{name_hash(candidate, 20)}"
    for stem in (file_stem(candidate), longer):
        md, js = path_inside(out_dir, f"{stem}.card.md"), path_inside(out_dir, f"{stem}.card.json")
        if _owner(js) in (None, candidate) and (_owner(js) is not None or not md.exists()):
            return md, js
    raise ValidationError("candidate", f"{candidate!r}: its card files {md.name} / {js.name} in "
                                       f"{out_dir} belong to another candidate; choose another out_dir",
                          where="compute_card")


def _owner(json_path: Path) -> str | None:
    """The candidate of the card stored at ``json_path`` (None: no such file; "" unreadable)."""
    if not json_path.exists():
        return None
    try:
        return str(json.loads(json_path.read_text(encoding="utf-8")).get("candidate", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def compute_card(candidate_name: str, measurements: Any, plan: Any = None, quality: Any = None,
                 out_dir: str | Path | None = None, failure_modes: Any = None, *,
                 intended_use: str = "", limitations: str = "",
                 not_used: list[str] | None = None, grid_gco2_per_kwh: float | None = None) -> ComputeCard:
    """The compute card of one candidate; writes ``<out_dir>/<name>.card.md`` and ``.card.json``
    (``<name>``: the name itself when it is a short clean slug, else its slug and a hash of the
    exact name: ``a/b`` and ``a b`` get two cards; see :func:`_card_paths`). Every name is
    literal text in the Markdown (:func:`effplan.safe.markdown_text`).

    Parameters
    ----------
    candidate_name: the ``candidate`` value in the measurements.
    measurements: ``Measurements``, the tidy DataFrame, or results file path(s) (JSON Lines).
    plan: a :class:`~effplan.Plan` or a folder written by ``Plan.to_csv`` (optional).
    quality: an :class:`~effplan.Evaluation`, its tidy frame or hand-entered values (optional;
        without it the measurements' ``quality`` column is shown, as entered).
    out_dir: where to write the two files (nothing written when ``None``).
    failure_modes: a :class:`~effplan.failure_modes.FailureModes` catalog (optional): its summary
        for this candidate is shown (nothing for the baseline itself).
    intended_use, limitations: the author's words (the card says when they are not filled in).
    not_used: lines saying which stored inputs were refused or missing (shown on the card).
    grid_gco2_per_kwh: the grid intensity for the serving CO2 when no plan is given (a plan
        brings its own region and intensity).

    Also written: ``<name>.card.html`` (:func:`effplan.views.card_render.render_html`, fits the page)
    and the Markdown starts with Hugging Face YAML metadata (``co2_eq_emissions``, metrics).
    """
    # the card is rendered from its JSON form, exactly what load_card reads back
    stored = json.dumps(card_data(candidate_name, measurements, plan=plan, quality=quality,
                                  failure_modes=failure_modes, intended_use=intended_use,
                                  limitations=limitations, not_used=not_used,
                                  grid_gco2_per_kwh=grid_gco2_per_kwh), indent=2) + "\n"
    data = json.loads(stored)
    text = render_markdown(data)
    md_path = json_path = None
    if out_dir is not None:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        md_path, json_path = _card_paths(d, str(candidate_name))
        md_path.write_text(text, encoding="utf-8")
        json_path.write_text(stored, encoding="utf-8")
        from .card_render import render_html

        md_path.with_name(md_path.name[:-len(".md")] + ".html").write_text(
            render_html(text, f"Compute card: {candidate_name}"), encoding="utf-8")
    return ComputeCard(candidate=candidate_name, markdown=text, data=data, markdown_path=md_path,
                       json_path=json_path)


def load_card(path: str | Path) -> ComputeCard:
    """Re-render a card from its stored ``.card.json`` (no re-measurement)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError("path", f"cannot read a compute card from {p}: {exc}") from None
    try:
        text = render_markdown(data)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        missing = exc.args[0] if isinstance(exc, KeyError) and exc.args else type(exc).__name__
        raise ValidationError("path", f"{p} is not a whole compute card: {missing!r} is missing or malformed "
                              "(write it again with compute_card)") from None
    return ComputeCard(candidate=str(data.get("candidate", "")), markdown=text, data=data, json_path=p)


def write_cards(measurements: Any, out_dir: str | Path, *, plan: Any = None, quality: Any = None,
                failure_modes: Any = None, not_used: list[str] | None = None) -> list[Path]:
    """A card (Markdown + JSON + HTML) per candidate with successful rows; returns the Markdown paths."""
    df = _measurement_frame(measurements)
    names = list(dict.fromkeys(df.loc[df["status"] == "ok", "candidate"]))
    return [compute_card(n, df, plan=plan, quality=quality, out_dir=out_dir,
                         failure_modes=failure_modes, not_used=not_used).markdown_path for n in names]


# ----------------------------------------------------------------------------- beside a results file
def stored_beside(results_path: str | Path) -> tuple[Path, Path]:
    """Where the quality evaluation and the plan of a results file are kept for its cards:
    ``<stem>.quality.json`` (:meth:`Evaluation.save`) and the folder ``<stem>.plan/``
    (``Plan.to_csv``), both beside ``results_path`` (and ``<stem>.failure_modes.json``, a
    failure-mode catalog, see :func:`store_beside`)."""
    p = Path(results_path)
    return p.with_name(p.stem + ".quality.json"), p.with_name(p.stem + ".plan")


def _failure_modes_beside(results_path: str | Path) -> Path:
    p = Path(results_path)
    return p.with_name(p.stem + ".failure_modes.json")


def store_beside(results_path: str | Path, *, plan: Any = None, quality: Any = None,
                 failure_modes: Any = None) -> list[Path]:
    """Save ``quality`` (an Evaluation), ``plan`` and ``failure_modes`` (a
    :class:`~effplan.failure_modes.FailureModes`) beside ``results_path`` (see
    :func:`stored_beside`) so that :func:`cards_from_results` can build cards later."""
    q_path, p_dir = stored_beside(results_path)
    written = []
    if failure_modes is not None:
        written.append(failure_modes.save(_failure_modes_beside(results_path)))
    if quality is not None:
        from ..records.quality import Evaluation

        if not isinstance(quality, Evaluation):
            raise ValidationError("quality", f"expected an Evaluation, got {type(quality).__name__}",
                                  where="store_beside")
        written.append(quality.save(q_path))
    if plan is not None:
        written += plan.to_csv(p_dir)
    from .card_sources import write_manifest

    if plan is not None:      # SHA-256 of each stored file: an edited one is refused later
        write_manifest(p_dir, [w for w in written if Path(w).parent == p_dir])
    beside = [w for w in written if Path(w).parent == Path(results_path).parent]
    if beside:
        write_manifest(Path(results_path).parent, beside)
    return written


def cards_from_results(results_path: str | Path, out_dir: str | Path) -> list[Path]:
    """A card per candidate of a results file, with the quality and plan stored beside it
    (when present); ``[]`` when the results file does not exist. Nothing is re-measured."""
    results = Path(results_path)
    if not results.is_file():
        return []
    from ..refdata.failure_modes import FailureModes

    from .card_sources import read_plan_folder, read_quality_file

    q_path, p_dir = stored_beside(results)
    not_used: list[str] = []
    quality = None
    if q_path.is_file():
        try:
            quality = read_quality_file(q_path)
        except ValidationError as exc:   # an edited or truncated file: a line, never its numbers
            not_used.append(f"the quality evaluation {q_path.name}: {exc}")
    else:
        not_used.append(f"no quality evaluation ({q_path.name} is missing): the measurements' own quality "
                        "column, if any, is shown as entered")
    plan = None
    if (p_dir / "summary.csv").is_file():
        try:
            read_plan_folder(p_dir)
            plan = p_dir
        except ValidationError as exc:
            not_used.append(f"the stored plan {p_dir.name}/: {exc}")
    else:
        not_used.append(f"no stored plan ({p_dir.name}/summary.csv is missing): no cost, projected energy "
                        "or training figures")
    fm_path = _failure_modes_beside(results)
    fm = FailureModes.load(fm_path) if fm_path.is_file() else None
    return write_cards(results, out_dir, plan=plan, quality=quality, failure_modes=fm, not_used=not_used)
