"""Failure-mode catalog: where a slimmed model goes wrong that its baseline got right.

:func:`failure_modes(evaluation, baseline)` compares every other candidate of an
:class:`~effplan.Evaluation` with ``baseline``, example by example, under every condition the
evaluation has (``clean``, ``noise-<sigma>``, named shifts), from the per-example
:class:`~effplan.evaluation.Predictions` that :func:`effplan.evaluate` keeps in memory:

* **flips**: examples the baseline classifies correctly and the variant does not. ``flips``
  (count), ``flip_rate = flips / n`` (a share of all ``n`` examples) with its Wilson score
  interval at ``confidence`` (95% by default; z from the normal quantile), and
  ``flip_share_of_baseline_right = flips / (examples the baseline gets right)``;
* **fixes**: the reverse (baseline wrong, variant right), so ``accuracy_change = (fixes -
  flips) / n`` is the variant's accuracy minus the baseline's;
* **per class**: for each true class, its ``n``, both accuracies and the change (variant minus
  baseline), worst (most negative) first; ``worst_class`` on the flips row is the class that
  lost most (``""`` when no class lost anything);
* **examples**: the flipped examples, the ones to look at first at the top: ordered by how
  confident the variant is in its wrong answer (``variant_p_predicted``, descending), then by
  the baseline's probability of the true class (descending), then by index.

Everything is numpy/pandas on the stored outcomes (no model runs here), so it is exact and
testable by hand. The catalog saves as JSON (:meth:`FailureModes.save`; no pickle);
:meth:`FailureModes.for_card` is the summary a compute card shows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..records.intervals import wilson_interval  # the one interval helper (re-exported here)

__all__ = ["failure_modes", "FailureModes", "wilson_interval", "FLIP_COLUMNS", "CLASS_COLUMNS",
           "EXAMPLE_COLUMNS"]

FLIP_COLUMNS = ["variant", "condition", "n", "baseline_right", "flips", "flip_rate", "flip_ci_low",
                "flip_ci_high", "flip_share_of_baseline_right", "fixes", "fix_rate", "baseline_accuracy",
                "variant_accuracy", "accuracy_change", "worst_class", "worst_class_n",
                "worst_class_change"]
CLASS_COLUMNS = ["variant", "condition", "class", "n", "baseline_accuracy", "variant_accuracy", "change",
                 "flips"]
EXAMPLE_COLUMNS = ["variant", "condition", "index", "label", "baseline_predicted", "baseline_p_true",
                   "variant_predicted", "variant_p_predicted", "variant_p_true"]


@dataclass(frozen=True, eq=False)
class FailureModes:
    """The catalog: ``flips`` (one row per variant x condition, :data:`FLIP_COLUMNS`),
    ``per_class`` (:data:`CLASS_COLUMNS`, worst class first), ``examples`` (the flipped
    examples, worst first, at most ``max_examples`` per variant x condition,
    :data:`EXAMPLE_COLUMNS`), the ``baseline`` and the ``confidence`` of the intervals."""

    baseline: str
    flips: pd.DataFrame
    per_class: pd.DataFrame
    examples: pd.DataFrame
    confidence: float = 0.95
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """One row per variant x condition, the condition with the most flips first."""
        f = self.flips.copy()
        order = {v: i for i, v in enumerate(dict.fromkeys(f["variant"]))}
        f["_o"] = f["variant"].map(order)
        f = f.sort_values(["_o", "flips", "condition"], ascending=[True, False, True], kind="mergesort")
        return f.drop(columns="_o").reset_index(drop=True)

    def lines(self) -> list[str]:
        """One sentence per variant: its worst condition (most flips), with the interval and the
        class that lost most there."""
        out = []
        for variant, rows in self.summary().groupby("variant", sort=False):
            r = rows.iloc[0]
            pct = 100 * self.confidence
            text = (f"{variant}: under {r['condition']}, {int(r['flips'])} of {int(r['n'])} examples the "
                    f"baseline gets right are wrong ({_pct(r['flip_rate'])}, {pct:g}% CI "
                    f"{_pct(r['flip_ci_low'])}-{_pct(r['flip_ci_high'])}); {int(r['fixes'])} go the other way")
            if isinstance(r["worst_class"], str) and r["worst_class"] != "" and r["worst_class_change"] < 0:
                text += (f"; worst class {r['worst_class']} ({100 * r['worst_class_change']:+.1f} points "
                         f"on {int(r['worst_class_n'])} examples)")
            out.append(text)
        return out

    def lines_table(self) -> pd.DataFrame:
        """:meth:`lines` as a table: ``variant``, ``worst_condition`` (the sentence)."""
        pairs = [line.split(": ", 1) for line in self.lines()]
        return pd.DataFrame(pairs, columns=["variant", "worst_condition"])

    def for_card(self, variant: str, *, classes: int = 3, examples: int = 5) -> dict[str, Any]:
        """JSON-ready summary of one variant for its compute card ({} when it is not here)."""
        rows = self.summary()
        rows = rows[rows["variant"] == variant]
        if rows.empty:
            return {}
        pc = self.per_class[self.per_class["variant"] == variant]
        ex = self.examples[self.examples["variant"] == variant]
        conditions = []
        for r in rows.to_dict(orient="records"):
            worst = pc[(pc["condition"] == r["condition"]) & (pc["change"] < 0)].head(classes)
            conditions.append({**{k: _json(r[k]) for k in FLIP_COLUMNS if k != "variant"},
                               "worst_classes": [{k: _json(v) for k, v in w.items() if k not in ("variant", "condition")}
                                                 for w in worst.to_dict(orient="records")]})
        first = ex.head(examples)
        return {"baseline": self.baseline, "confidence": self.confidence, "conditions": conditions,
                "examples": [{k: _json(v) for k, v in e.items() if k != "variant"}
                             for e in first.to_dict(orient="records")]}

    # ----------------------------------------------------------- storage (JSON, no pickle)
    def to_dict(self) -> dict[str, Any]:
        def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: _json(v) for k, v in r.items()} for r in df.to_dict(orient="records")]

        return {"effplan_failure_modes_version": 1, "baseline": self.baseline, "confidence": self.confidence,
                "settings": self.settings, "flips": rows(self.flips), "per_class": rows(self.per_class),
                "examples": rows(self.examples)}

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return p

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FailureModes:
        if not isinstance(d, Mapping) or d.get("effplan_failure_modes_version") != 1:
            raise ValidationError("effplan_failure_modes_version", "not a stored failure-mode catalog",
                                  where="FailureModes")

        def frame(key: str, cols: list[str]) -> pd.DataFrame:
            return pd.DataFrame(list(d.get(key) or []), columns=cols).fillna(value=np.nan)

        return cls(baseline=str(d["baseline"]), flips=frame("flips", FLIP_COLUMNS),
                   per_class=frame("per_class", CLASS_COLUMNS), examples=frame("examples", EXAMPLE_COLUMNS),
                   confidence=float(d.get("confidence", 0.95)), settings=dict(d.get("settings") or {}))

    @classmethod
    def load(cls, path: str | Path) -> FailureModes:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError("path", f"cannot read a failure-mode catalog from {path}: {exc}") from None
        return cls.from_dict(d)

    def __repr__(self) -> str:
        return (f"FailureModes(baseline={self.baseline!r}, {self.flips['variant'].nunique()} variants x "
                f"{self.flips['condition'].nunique()} conditions)")

    def _repr_html_(self) -> str:
        from ..safe import html_text

        items = "".join(f"<li>{html_text(line)}</li>" for line in self.lines())
        return f"<p>{html_text(repr(self))}</p><ul>{items}</ul>" + self.summary().to_html(index=False, float_format="{:.4g}".format)


def _json(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.1f}%"


def failure_modes(evaluation: Any, baseline: str, *, candidates: Sequence[str] | None = None,
                  confidence: float = 0.95, max_examples: int = 20) -> FailureModes:
    """The failure-mode catalog of every candidate of ``evaluation`` against ``baseline`` (or of
    ``candidates`` only); see the module docstring. Needs the per-example predictions of
    :func:`effplan.evaluate` (an :class:`~effplan.Evaluation` loaded from JSON has none)."""
    preds = getattr(evaluation, "predictions", None)
    if not preds:
        raise ValidationError("evaluation", "has no per-example predictions (an Evaluation from effplan.evaluate "
                              "keeps them in memory; a loaded one does not): evaluate again", where="failure_modes")
    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise ValidationError("confidence", f"must be in (0, 1), got {confidence!r}", where="failure_modes")
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 0:
        raise ValidationError("max_examples", f"must be a non-negative integer, got {max_examples!r}",
                              where="failure_modes")
    names = list(dict.fromkeys(c for c, _ in preds))
    if baseline not in names:
        raise ValidationError("baseline", f"{baseline!r} has no predictions; evaluated: {names}", where="failure_modes")
    variants = [c for c in (candidates if candidates is not None else names) if c != baseline]
    missing = [c for c in variants if c not in names]
    if missing:
        raise ValidationError("candidates", f"{missing} have no predictions; evaluated: {names}", where="failure_modes")
    conditions = list(dict.fromkeys(cond for c, cond in preds if c == baseline))
    flips, per_class, examples = [], [], []
    for v in variants:
        for cond in conditions:
            b, p = preds.get((baseline, cond)), preds.get((v, cond))
            if p is None:
                continue
            if len(b.labels) != len(p.labels) or not np.array_equal(b.labels, p.labels):
                raise ValidationError("evaluation", f"{v!r} and {baseline!r} were not evaluated on the same "
                                      f"examples under {cond!r}", where="failure_modes")
            y = np.asarray(b.labels)
            b_ok = np.asarray(b.predicted) == y
            v_ok = np.asarray(p.predicted) == y
            flip = b_ok & ~v_ok
            fix = ~b_ok & v_ok
            n, k = len(y), int(flip.sum())
            lo, hi = wilson_interval(k, n, confidence)
            cls_rows = []
            for c in np.unique(y):
                m = y == c
                ba, va = float(b_ok[m].mean()), float(v_ok[m].mean())
                cls_rows.append({"variant": v, "condition": cond, "class": _json(c), "n": int(m.sum()),
                                 "baseline_accuracy": ba, "variant_accuracy": va, "change": va - ba,
                                 "flips": int(flip[m].sum())})
            cls_rows.sort(key=lambda r: (r["change"], -r["flips"], r["class"]))
            per_class += cls_rows
            worst = cls_rows[0] if cls_rows and cls_rows[0]["change"] < 0 else None  # none lost: no worst class
            flips.append({"variant": v, "condition": cond, "n": n, "baseline_right": int(b_ok.sum()),
                          "flips": k, "flip_rate": k / n, "flip_ci_low": lo, "flip_ci_high": hi,
                          "flip_share_of_baseline_right": k / int(b_ok.sum()) if b_ok.any() else math.nan,
                          "fixes": int(fix.sum()), "fix_rate": float(fix.sum()) / n,
                          "baseline_accuracy": float(b_ok.mean()), "variant_accuracy": float(v_ok.mean()),
                          "accuracy_change": float(v_ok.mean() - b_ok.mean()),
                          "worst_class": "" if worst is None else str(worst["class"]),
                          "worst_class_n": math.nan if worst is None else worst["n"],
                          "worst_class_change": math.nan if worst is None else worst["change"]})
            idx = np.flatnonzero(flip)
            if len(idx) and max_examples:
                order = np.lexsort((idx, -np.asarray(b.p_true)[idx], -np.asarray(p.p_predicted)[idx]))
                for i in idx[order][:max_examples]:
                    examples.append({"variant": v, "condition": cond, "index": int(i), "label": _json(y[i]),
                                     "baseline_predicted": _json(b.predicted[i]),
                                     "baseline_p_true": float(b.p_true[i]),
                                     "variant_predicted": _json(p.predicted[i]),
                                     "variant_p_predicted": float(p.p_predicted[i]),
                                     "variant_p_true": float(p.p_true[i])})
    return FailureModes(baseline=baseline, flips=pd.DataFrame(flips, columns=FLIP_COLUMNS),
                        per_class=pd.DataFrame(per_class, columns=CLASS_COLUMNS),
                        examples=pd.DataFrame(examples, columns=EXAMPLE_COLUMNS), confidence=confidence,
                        settings={"conditions": conditions, "max_examples": max_examples,
                                  "interval": "Wilson score"})
