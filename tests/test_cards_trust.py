"""Cards a reader can use (issue 21, item 5): built from validated stored files, CO2 with its
grid, the timing status, the author's fields, Hugging Face metadata and a page-fitting HTML."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

import effplan
from effplan import store
from effplan.views.cards import cards_from_results, compute_card, load_card, store_beside, stored_beside
from effplan.errors import ValidationError
from effplan.records.quality import Evaluation, quality_frame

from handtyped import hand_measurements

sys.path.insert(0, str(Path(__file__).parent / "planning"))   # planning_data: a training row
GRID = 100.0   # gCO2/kWh, entered


def _plan(frame, **kw):
    return effplan.plan(frame, inference=effplan.InferenceWorkload(requests_per_day=100_000, months=6,
                                                                   items_per_request=2, **kw),
                        prices=effplan.Prices(price_per_hour={"lab-cpu": 1.0}, grid_gco2_per_kwh=GRID))


def _quality():
    f = quality_frame(pd.DataFrame({"candidate": ["small", "large"], "metric": ["accuracy"] * 2,
                                    "value": [0.9, 0.95], "ci_low": [0.88, 0.93], "ci_high": [0.92, 0.97],
                                    "provenance": "measured"}))
    return Evaluation(frame=f, settings={"data": {"description": "hand-typed", "sha256": "ab" * 32, "rows": 500},
                                         "condition_descriptions": {"clean": "the held-out data as given"}})


def _stored(tmp_path):
    frame = hand_measurements().assign(tags=["", "", "baseline", "baseline"])
    results = tmp_path / "hand.jsonl"
    store.append(results, frame)
    plan = _plan(frame)
    store_beside(results, plan=plan, quality=_quality())
    return results, plan


def _card(tmp_path, results, name="small"):
    cards_from_results(results, tmp_path / "cards")
    return load_card(tmp_path / "cards" / f"{name}.card.json")


def test_a_truncated_summary_never_gives_a_number(tmp_path):
    results, plan = _stored(tmp_path)
    summary = stored_beside(results)[1] / "summary.csv"
    text = summary.read_text()
    summary.write_text(text[: len(text) - 25])             # cut inside the last row
    with pytest.raises(ValidationError) as exc:
        compute_card("small", results, plan=summary.parent)
    assert exc.value.field == "summary.csv"
    card = _card(tmp_path, results)
    assert card.data["serving"]["cost_per_1k_requests_usd"]["value"] is None
    assert any("summary.csv" in n for n in card.data["not_used"])
    assert "**Not used:** the stored plan" in card.markdown
    # cut at a line end: the row is whole but one is gone -> the manifest's SHA-256 names the file
    summary.write_text(text.split("\n", 1)[0] + "\n" + text.split("\n")[1] + "\n")
    with pytest.raises(ValidationError, match="changed after it was stored"):
        compute_card("small", results, plan=summary.parent)
    # an edited number with the fields intact (8.07e-07 -> 8.07): the same
    summary.write_text(text.replace("e-0", "0", 1) if "e-0" in text else text.replace(",0.", ",9.", 1))
    with pytest.raises(ValidationError, match="changed after it was stored"):
        compute_card("small", results, plan=summary.parent)


def test_an_edited_or_missing_quality_file_is_a_line_not_a_figure(tmp_path):
    results, _plan_ = _stored(tmp_path)
    q_path = stored_beside(results)[0]
    d = json.loads(q_path.read_text())
    d["rows"][0]["value"] = 0.99                         # outside its own [0.88, 0.92]
    q_path.write_text(json.dumps(d))
    card = _card(tmp_path, results)
    # no figure from the refused file: only the measurements' own quality column, labelled entered
    assert [(q["metric"], q["provenance"]) for q in card.data["quality"]] == [("quality", "entered")]
    assert any("changed after it was stored" in n for n in card.data["not_used"])     # the manifest
    (q_path.parent / "manifest.json").unlink()                                          # without it:
    card = _card(tmp_path, results)
    assert any("outside its own interval" in n for n in card.data["not_used"])        # the validator
    q_path.unlink()
    card = _card(tmp_path, results)
    assert any("quality.json is missing" in n for n in card.data["not_used"])
    assert all(q["provenance"] != "entered" or q["metric"] == "quality" for q in card.data["quality"])


def test_malformed_card_json_is_a_named_error(tmp_path):
    results, _ = _stored(tmp_path)
    card = _card(tmp_path, results)
    d = dict(card.data)
    del d["serving"]
    bad = tmp_path / "bad.card.json"
    bad.write_text(json.dumps(d))
    with pytest.raises(ValidationError, match="serving") as exc:
        load_card(bad)
    assert exc.value.field == "path"


def test_co2_serving_and_training_by_hand_with_the_grid(tmp_path):
    frame = hand_measurements()
    plan = _plan(frame)
    card = compute_card("small", frame, plan=plan)
    row = plan.summary[plan.summary["candidate"] == "small"].iloc[0]
    c = card.data["carbon"]
    assert c["grid_gco2_per_kwh"] == GRID
    assert c["serving"]["value"] == pytest.approx(row["co2_kg"] / row["requests"] * 1e6)
    assert c["serving"]["value"] == pytest.approx(row["energy_kwh"] * GRID / row["requests"] * 1000)
    assert "gCO2/kWh" in card.markdown and "training CO2 not known" in card.markdown
    # without a plan: 0.5 J/item x 1 item/request x 1000 / 3.6e6 kWh x PUE 1.2 x 480 g/kWh (given)
    alone = compute_card("small", frame, grid_gco2_per_kwh=480.0).data["carbon"]
    assert alone["serving"]["value"] == pytest.approx(0.5 * 1000 / 3.6e6 * 1.2 * 480.0)
    assert alone["serving"]["provenance"] == "estimated" and alone["grid_gco2_per_kwh"] == 480.0
    none = compute_card("small", frame).data["carbon"]        # no plan, no intensity: said, not guessed
    assert none["serving"]["value"] is None and "grid_gco2_per_kwh" in none["serving"]["source"]


def test_training_co2_goes_into_the_hugging_face_metadata():
    from planning_data import train_row

    rows = pd.concat([hand_measurements(), pd.DataFrame([{**train_row(), "candidate": "small",
                                                          "hardware": "lab-cpu"}])], ignore_index=True)
    plan = effplan.plan(rows, inference=effplan.InferenceWorkload(requests_per_day=100_000, months=6),
                        training=effplan.TrainingWorkload(items_per_epoch=1e6, epochs=1, runs_per_quarter=1),
                        prices=effplan.Prices(price_per_hour={"lab-cpu": 1.0}, grid_gco2_per_kwh=GRID))
    card = compute_card("small", rows, plan=plan)
    t = card.data["carbon"]["training"]
    mine = plan.training[plan.training["candidate"] == "small"]
    assert t[0]["value"] == pytest.approx(float(mine["co2_kg"].sum()))
    assert f"  emissions: {json.dumps(round(float(mine['co2_kg'].sum()) * 1000, 6))}" in card.markdown


def test_verdicts_evaluated_data_author_fields_and_html(tmp_path):
    frame = hand_measurements().assign(tags=["", "", "baseline", "baseline"])
    card = compute_card("small", frame, plan=_plan(frame), quality=_quality(), out_dir=tmp_path,
                        intended_use="Digit triage <b>only</b>", limitations="")
    d = card.data
    assert d["verdict_baseline"] == "large"
    v = d["verdicts"][0]
    assert (v["metric"], v["verdict"], v["test"]) == ("accuracy", "worse", "interval overlap")  # 0.92 < 0.93
    assert d["evaluated"]["sha256"] == "ab" * 32 and "hand-typed" in card.markdown
    assert "*Not filled in by the author.*" in card.markdown
    assert "model-index:" in card.markdown and '          - type: "accuracy"' in card.markdown
    html = (tmp_path / "small.card.html").read_text()
    assert "Digit triage &lt;b&gt;only&lt;/b&gt;" in html and "<b>only</b>" not in html
    assert 'name="viewport"' in html and 'class="tbl"' in html and "max-width:60rem" in html


def test_no_feasible_option_is_not_called_no_plan(tmp_path):
    frame = hand_measurements()
    plan = _plan(frame, slo_p95_ms=0.001)                  # nothing meets a 1 us target
    d = compute_card("small", frame, plan=plan).data
    assert "the plan has no feasible inference option for it" in d["operating_point"]["chosen_by"]
    assert "no plan given" not in json.dumps(d["operating_point"])


def test_an_unstable_timing_is_not_quoted_as_plain_measured():
    frame = hand_measurements().assign(provenance="measured", energy_source="estimated-tdp", stable=False,
                                       background_load=1.5)
    d = compute_card("small", frame).data
    assert d["stability"]["stable"] is False
    assert d["serving"]["latency_p95_ms"]["provenance"] == "measured, not stable"
