"""Compute cards: every figure labelled, regenerated from stored results alone with identical text."""

import json

import pytest

import effplan
from effplan.records import store
from effplan.cards import compute_card, load_card, render_markdown, write_cards
from effplan.errors import ValidationError
from effplan.records.quality import Evaluation, quality_frame
from effplan.records.schema import PROVENANCES

from handtyped import hand_measurements


def _plan(frame):
    # no latency target: at 2.3 items/s a batch of 8 takes seconds to fill, so a 30 ms target
    # (end to end) would rule it out; the card's figures are checked at batch 8
    return effplan.plan(frame, inference=effplan.InferenceWorkload(requests_per_day=100_000, months=6,
                                                                   items_per_request=2),
                        prices=effplan.Prices(price_per_hour={"lab-cpu": 1.0}))


def _quality():
    f = quality_frame({"small": {"accuracy": 0.9, "ece": 0.04, "accuracy@noise-0.3": 0.7},
                       "large": {"accuracy": 0.95}})
    return Evaluation(frame=f, settings={"entered_by": "test"})


def _figures(data):
    for part in ("model", "training", "serving"):
        yield from data[part].values()


def test_card_figures_labelled_and_by_hand(tmp_path):
    frame = hand_measurements()
    plan = _plan(frame)
    card = compute_card("small", frame, plan=plan, quality=_quality(), out_dir=tmp_path)
    d = card.data
    assert all(f["provenance"] in PROVENANCES for f in _figures(d))
    assert all(q["provenance"] == "entered" for q in d["quality"])
    # operating point: the cheapest feasible plan option -> lab-cpu at batch 8 (highest throughput)
    row = plan.summary[plan.summary["candidate"] == "small"].iloc[0]
    assert d["operating_point"]["hardware"] == "lab-cpu" and d["operating_point"]["batch_size"] == 8
    assert d["serving"]["latency_p95_ms"]["value"] == 10.0
    assert d["serving"]["latency_p50_ms"]["value"] == 8.0
    # 0.5 J per item x 2 items per request x 1000 requests
    assert d["serving"]["energy_per_1k_requests_j"]["value"] == pytest.approx(1000.0)
    assert d["serving"]["energy_per_1k_requests_j"]["provenance"] == "entered"
    assert d["serving"]["cost_per_1k_requests_usd"]["value"] == pytest.approx(row["cost_per_1k_requests_usd"])
    assert d["serving"]["cost_per_1k_requests_usd"]["provenance"] == "projected"
    assert d["model"]["flops_per_item"]["value"] == 2e9
    assert d["plan_inputs"] == json.loads(json.dumps(plan.inputs))
    text = card.markdown
    assert text.startswith("---\nlibrary_name: pytorch\n") and "\n---\n\n# Compute card: small\n" in text
    assert "| accuracy | noise-0.3 | 0.7 | n/a | n/a | n/a | entered | higher |" in text
    assert card.markdown_path.read_text() == text
    assert "| timestamp | n/a |" in text          # no clock reading of its own; none stored here


def test_card_regenerates_from_stored_results_with_identical_text(tmp_path):
    frame = hand_measurements()
    plan = _plan(frame)
    ev = _quality()
    first = compute_card("small", frame, plan=plan, quality=ev, out_dir=tmp_path / "a")
    # store everything, then rebuild from the files alone
    store.append(tmp_path / "results.jsonl", frame)
    plan.to_csv(tmp_path / "plan")
    ev.save(tmp_path / "quality.json")
    again = compute_card("small", tmp_path / "results.jsonl", plan=tmp_path / "plan",
                         quality=Evaluation.load(tmp_path / "quality.json"), out_dir=tmp_path / "b")
    assert again.markdown == first.markdown
    assert again.json_path.read_bytes() == first.json_path.read_bytes()
    assert again.markdown_path.read_bytes() == first.markdown_path.read_bytes()
    assert load_card(first.json_path).markdown == first.markdown
    assert render_markdown(json.loads(first.json_path.read_text())) == first.markdown


def test_card_without_plan_or_quality_uses_the_fastest_point_and_entered_quality():
    card = compute_card("large", hand_measurements())
    d = card.data
    assert d["operating_point"]["batch_size"] == 8            # 200 items/s beats 60
    assert d["serving"]["cost_per_1k_requests_usd"]["value"] is None
    assert d["quality"] == [{"metric": "quality", "condition": "clean", "value": 0.95, "ci_low": None,
                             "ci_high": None, "n": None, "provenance": "entered", "higher_is_better": True}]
    assert "No plan was given." in card.markdown and card.markdown_path is None


def test_unknown_candidate_and_write_cards(tmp_path):
    with pytest.raises(ValidationError) as exc:
        compute_card("nope", hand_measurements())
    assert exc.value.field == "candidate_name"
    paths = write_cards(hand_measurements(), tmp_path)
    assert sorted(p.name for p in paths) == ["large.card.md", "small.card.md"]
    assert (tmp_path / "small.card.json").exists()


def test_report_cards_from_results_and_what_is_stored_beside(tmp_path):
    from effplan.cards import stored_beside, store_beside
    from effplan.report import ReportParams, report_cards

    frame = hand_measurements()
    results = tmp_path / "results" / "hand.jsonl"
    store.append(results, frame)
    plan = _plan(frame)
    written = store_beside(results, plan=plan, quality=_quality())
    q_path, p_dir = stored_beside(results)
    assert q_path in written and (p_dir / "summary.csv") in written
    params = ReportParams(defaults={"results_path": "results/hand.jsonl"}, base_dir=tmp_path)
    cards = report_cards(params, tmp_path / "reports")
    assert sorted(p.name for p in cards) == ["large.card.md", "small.card.md"]
    # the same card as one built from the objects in memory
    direct = compute_card("small", frame, plan=plan, quality=_quality())
    assert (tmp_path / "reports" / "small.card.md").read_text() == direct.markdown
    assert report_cards(ReportParams(defaults={"results_path": "missing.jsonl"}, base_dir=tmp_path),
                        tmp_path / "r2") == []


def test_training_compute_when_measured_and_planned():
    import pandas as pd

    frame = pd.concat([hand_measurements(), pd.DataFrame([{
        "candidate": "small", "hardware": "lab-cpu", "mode": "training", "batch_size": 32,
        "latency_p95_ms": 40.0, "throughput_items_per_s": 800.0, "energy_per_item_j": 0.2,
        "idle_power_w": 20.0, "flops_per_item": 2e9, "provenance": "entered", "energy_source": "entered"}])],
        ignore_index=True)
    plan = effplan.plan(frame, training=effplan.TrainingWorkload(runs_per_quarter=2, items_per_epoch=2_880_000,
                                                                 epochs=1, quarters=1),
                        prices=effplan.Prices(price_per_hour={"lab-cpu": 1.0}))
    t = compute_card("small", frame, plan=plan).data["training"]
    assert t["throughput_items_per_s"]["value"] == 800.0
    assert t["flops_per_item"] == {"value": 6e9, "unit": "FLOPs per item (3 x forward)",
                                   "provenance": "estimated", "source": "forward + backward ~ 3 x forward"}
    # 2 runs x 2,880,000 items / 800 items/s = 7,200 s = 2 device-hours
    assert t["plan_device_hours[lab-cpu]"]["value"] == pytest.approx(2.0)
    assert t["plan_device_hours[lab-cpu]"]["provenance"] == "projected"
    card = compute_card("small", frame, plan=plan)
    assert card.data["serving"]["cost_per_1k_requests_usd"]["source"] == \
        "the plan has no feasible inference option for it"


def test_card_of_a_measured_and_evaluated_candidate_shows_its_reproducibility(tmp_path):
    # the real path, end to end: measure() and evaluate() fill the fields, the card shows them
    import warnings

    import torch
    from torch import nn

    from effplan.reproducibility import software_versions, weights_sha256

    def model_fn():
        torch.manual_seed(5)
        return nn.Linear(4, 3)

    cand = effplan.Candidate("lin", model_fn, lambda bs: torch.ones(bs, 4), seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", effplan.EffplanWarning)  # a busy machine may flag the point
        m = effplan.measure(cand, batch_sizes=(2,), device="cpu", energy=False, time_budget_s=0.05,
                            retries=0, progress=False, isolate=False, results_path=tmp_path / "r.jsonl")
    x, y = torch.randn(20, 4), torch.arange(20) % 3
    ev = effplan.evaluate([cand], (x, y), n_bootstrap=0)
    card = compute_card("lin", effplan.Measurements.load(tmp_path / "r.jsonl"), quality=ev)
    repro = card.data["reproducibility"]
    want = weights_sha256(model_fn())
    assert repro["weights_sha256"] == want and repro["seed"] == 5
    assert repro["python_version"] == software_versions()["python_version"]
    assert repro["effplan_version"] == effplan.__version__ and repro["timing_policy"].startswith("{")
    assert card.data["evaluation_reproducibility"]["weights_sha256"] == want
    section = card.markdown.split("## Hardware, software and seeds")[1]
    for field in ("seed", "python_version", "numpy_version", "effplan_version", "weights_sha256",
                  "timing_policy"):
        line = next(ln for ln in section.splitlines() if ln.startswith(f"| {field} "))
        assert "n/a" not in line, line


def test_card_of_a_point_timed_on_a_busy_machine_says_so(tmp_path):
    frame = hand_measurements()
    frame["stable"] = False
    frame["stop_reason"], frame["timing_note"] = "unstable", "contended"
    frame["background_load"], frame["latency_round_spread_rel"] = 1.8, 0.07
    statement = ("Timings were taken on a busy machine (background load 1.8 cores); the cost could "
                 "be 7% off.")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = _plan(frame)
    for p in (plan, None):   # from the plan's flags, and from the measured point alone
        card = compute_card("small", frame, plan=p, out_dir=tmp_path)
        st = card.data["stability"]
        assert st == {"stable": False, "background_load_cores": 1.8, "timing_spread_rel": 0.07,
                      "note": statement}
        assert f"**Not stable:** {statement} Re-measure on a quiet machine" in card.markdown
        assert load_card(card.json_path).markdown == card.markdown
    plan.to_csv(tmp_path / "plan")   # a plan read back from its CSV folder gives the same card
    assert compute_card("small", frame, plan=tmp_path / "plan").data["stability"]["note"] == statement
    quiet = compute_card("small", hand_measurements().assign(stable=True), plan=None)
    assert quiet.data["stability"]["stable"] is True and "Not stable" not in quiet.markdown
