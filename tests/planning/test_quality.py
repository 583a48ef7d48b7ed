"""plan(quality=...): several quality metrics per candidate joined into every plan frame."""

from __future__ import annotations

import importlib
import json
import warnings

import pandas as pd
import pytest

from effplan.errors import PlanWarning, ValidationError
from effplan.records.quality import Evaluation, quality_frame
from planning_data import PRICES, meas, train_row, wl  # noqa: E402 (tests/planning is on sys.path)

P = importlib.import_module("effplan.planning")


def _two():
    m2 = meas().assign(candidate="n", quality=0.8)
    return pd.concat([meas(), m2], ignore_index=True)


def test_entered_quality_joins_every_frame_with_provenance():
    q = {"m": {"accuracy": 0.91, "ece@noise-0.3": 0.12}, "n": {"accuracy": 0.8}}
    p = P.plan(pd.concat([_two(), pd.DataFrame([train_row()])], ignore_index=True), wl(),
               P.TrainingWorkload(runs_per_quarter=1, items_per_epoch=1e6, epochs=1), prices=PRICES,
               quality=q)
    for name, frame in p.frames().items():
        assert {"accuracy", "ece@noise-0.3", "quality_provenance"} <= set(frame.columns), name
        by = frame.drop_duplicates("candidate").set_index("candidate")
        assert by.loc["m", "accuracy"] == 0.91 and by.loc["m", "ece@noise-0.3"] == 0.12
        assert by.loc["m", "quality_provenance"] == "entered"
        if "n" in by.index:
            assert by.loc["n", "accuracy"] == 0.8 and pd.isna(by.loc["n", "ece@noise-0.3"])
    # the scalar quality column is still the measurements' own
    assert set(p.summary["quality"]) == {0.91, 0.8}
    rows = json.loads(json.dumps(p.inputs["quality"]))
    assert {(r["candidate"], r["metric"], r["condition"], r["provenance"]) for r in rows} == {
        ("m", "accuracy", "clean", "entered"), ("m", "ece", "noise-0.3", "entered"),
        ("n", "accuracy", "clean", "entered")}


def test_measured_evaluation_keeps_measured_and_mixes_with_entered():
    f = pd.concat([quality_frame({"m": {"accuracy": 0.9}}).assign(provenance="measured"),
                   quality_frame({"m": {"brier": 0.1}})], ignore_index=True)
    p = P.plan(meas(), wl(), prices=PRICES, quality=Evaluation(frame=f))
    assert set(p.summary["quality_provenance"]) == {"entered+measured"}
    assert p.quarterly["brier"].eq(0.1).all()


def test_without_quality_nothing_changes_and_bad_quality_is_named():
    base = P.plan(meas(), wl(), prices=PRICES)
    assert "quality_provenance" not in base.summary.columns and "quality" not in base.inputs
    with pytest.raises(ValidationError) as exc:
        P.plan(meas(), wl(), prices=PRICES, quality={"m": {"f1": 0.5}})
    assert exc.value.field == "higher_is_better"
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        P.plan(meas(), wl(), prices=PRICES, quality={"typo": {"accuracy": 0.5}})
    assert any(issubclass(w.category, PlanWarning) and "typo" in str(w.message) for w in got)


def test_cheapest_meeting_reads_joined_columns():
    import effplan

    p = P.plan(_two(), wl(), prices=PRICES, quality={"m": {"ece": 0.02}, "n": {"ece": 0.09}})
    sel = effplan.cheapest_meeting(p, max={"ece": 0.05})
    assert set(sel.chosen["candidate"]) == {"m"}
    assert set(sel.options.loc[sel.options["candidate"] == "n", "reason"]) == {"ece = 0.09 > max 0.05"}
