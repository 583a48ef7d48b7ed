"""The failure-mode catalog against a hand computation on small fixed data sets, from hand-typed
predictions and from a real effplan.evaluate of two hand-weighted models; the compute card
shows it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import effplan
from effplan.cards import cards_from_results, compute_card, store_beside
from effplan.errors import ValidationError
from effplan.records.quality import Evaluation, Predictions
from effplan.failure_modes import FailureModes, failure_modes, wilson_interval

from handtyped import hand_measurements

# ten examples: labels, and what each model predicts (with its confidence)
Y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
BASE = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 0])     # right on 0,1,2,4,5,6,7,8 (8 of 10)
VAR = np.array([0, 1, 0, 1, 1, 0, 2, 2, 2, 2])      # right on 0,2,4,7,8,9 (6 of 10)
# flips (baseline right, variant wrong): 1, 5, 6; fixes (the reverse): 9; both wrong: 3
VAR_P = np.array([.9, .6, .8, .5, .7, .9, .6, .8, .9, .7])   # variant's confidence in its answer
BASE_P_TRUE = np.array([.9, .7, .8, .2, .9, .8, .95, .9, .8, .1])


def _eval(base=BASE, var=VAR, conditions=("clean",)):
    preds = {}
    for cond in conditions:
        preds[("large", cond)] = Predictions(Y, base, np.full(10, 0.8), BASE_P_TRUE)
        preds[("small", cond)] = Predictions(Y, var, VAR_P, np.where(var == Y, VAR_P, 0.1))
    return Evaluation(frame=pd.DataFrame(), predictions=preds)


def test_flip_set_and_per_class_changes_by_hand():
    fm = failure_modes(_eval(), "large")
    r = fm.flips.iloc[0]
    assert (r["variant"], r["condition"], r["n"], r["baseline_right"]) == ("small", "clean", 10, 8)
    assert (r["flips"], r["fixes"]) == (3, 1)
    assert r["flip_rate"] == 0.3 and r["fix_rate"] == 0.1 and r["flip_share_of_baseline_right"] == 3 / 8
    assert (r["baseline_accuracy"], r["variant_accuracy"]) == (0.8, 0.6)
    assert r["accuracy_change"] == pytest.approx((1 - 3) / 10)
    # Wilson 95% for 3/10 by hand: z = 1.959964, centre (0.3 + z^2/20) / (1 + z^2/10),
    # half z / (1 + z^2/10) * sqrt(0.3 * 0.7 / 10 + z^2 / 400)
    z = 1.959964
    centre = (0.3 + z * z / 20) / (1 + z * z / 10)
    half = z / (1 + z * z / 10) * math.sqrt(0.021 + z * z / 400)
    assert (r["flip_ci_low"], r["flip_ci_high"]) == pytest.approx((centre - half, centre + half), abs=1e-6)
    assert (r["flip_ci_low"], r["flip_ci_high"]) == pytest.approx((0.1078, 0.6032), abs=1e-4)
    # per class (worst first): 1: 3/3 -> 1/3 (2 flips); 0: 3/4 -> 2/4 (1 flip); 2: 2/3 -> 3/3
    pc = fm.per_class
    assert pc["class"].tolist() == [1, 0, 2]
    assert pc["n"].tolist() == [3, 4, 3] and pc["flips"].tolist() == [2, 1, 0]
    assert pc["change"].tolist() == pytest.approx([1 / 3 - 1, 0.5 - 0.75, 1 - 2 / 3])
    assert (r["worst_class"], r["worst_class_n"]) == ("1", 3)
    # the examples to look at first: the variant most confident in its wrong answer (5: 0.9), then
    # on a tie (1 and 6: 0.6) the one the baseline was surest of (6: 0.95 before 1: 0.7)
    assert fm.examples["index"].tolist() == [5, 6, 1]
    assert fm.examples.iloc[0][["label", "baseline_predicted", "variant_predicted"]].tolist() == [1, 1, 0]


def test_no_flips_gives_zero_and_an_interval_from_zero():
    fm = failure_modes(_eval(var=BASE), "large")
    r = fm.flips.iloc[0]
    assert (r["flips"], r["fixes"], r["accuracy_change"]) == (0, 0, 0.0)
    assert r["worst_class"] == "" and math.isnan(r["worst_class_change"])  # no class lost anything
    lo, hi = wilson_interval(0, 10)
    # at 0 of n the Wilson interval is [0, z^2 / (n + z^2)] = [0, 3.8415 / 13.8415]
    assert (r["flip_ci_low"], r["flip_ci_high"]) == (lo, hi) == (0.0, pytest.approx(1.959964 ** 2 / (10 + 1.959964 ** 2)))
    assert fm.examples.empty


def test_summary_lines_json_round_trip_and_errors(tmp_path):
    fm = failure_modes(_eval(conditions=("clean", "noise-0.1")), "large", max_examples=2)
    assert len(fm.summary()) == 2 and len(fm.examples) == 4   # 2 kept per condition
    (line,) = fm.lines()
    assert line.startswith("small: under clean, 3 of 10 examples the baseline gets right are wrong (30.0%")
    assert "worst class 1 (-66.7 points on 3 examples)" in line
    again = FailureModes.load(fm.save(tmp_path / "fm.json"))
    pd.testing.assert_frame_equal(again.flips, fm.flips, check_dtype=False)
    assert again.examples["index"].tolist() == fm.examples["index"].tolist()
    with pytest.raises(ValidationError, match="baseline"):
        failure_modes(_eval(), "nobody")
    with pytest.raises(ValidationError, match="predictions"):
        failure_modes(Evaluation(frame=pd.DataFrame()), "large")


def test_from_a_real_evaluation_of_two_hand_weighted_models():
    """logits = x (model a) and x + [0, 0.5] (model b) on six points.
    Clean: a is right on 0-4, b on 0, 3, 4 -> flips 1 and 2; class 0 falls from 3/3 to 1/3.
    Scaled by 2 (a shift): a unchanged, b right on 0, 2, 3, 4 -> one flip (1)."""
    x = torch.tensor([[2, 0], [1, .8], [.3, 0], [0, 1], [0, 2], [1, .2]])
    y = torch.tensor([0, 0, 0, 1, 1, 1])

    def linear(bias):
        m = nn.Linear(2, 2)
        with torch.no_grad():
            m.weight.copy_(torch.eye(2))
            m.bias.copy_(torch.tensor(bias))
        return m

    ev = effplan.evaluate({"a": linear([0.0, 0.0]), "b": linear([0.0, 0.5])}, (x, y), noise=(),
                          shifts={"scaled": (2 * x, y)}, n_bootstrap=0)
    fm = failure_modes(ev, "a")
    f = fm.flips.set_index("condition")
    assert f.loc["clean", "flips"] == 2 and f.loc["clean", "fixes"] == 0
    assert f.loc["scaled", "flips"] == 1
    assert sorted(fm.examples[fm.examples["condition"] == "clean"]["index"]) == [1, 2]
    pc = fm.per_class[fm.per_class["condition"] == "clean"].set_index("class")
    assert pc.loc[0, "change"] == pytest.approx(1 / 3 - 1) and pc.loc[1, "change"] == 0
    assert ev.value("b", "accuracy") - ev.value("a", "accuracy") == pytest.approx(f.loc["clean", "accuracy_change"])


def test_compute_card_shows_the_failure_modes(tmp_path):
    frame = hand_measurements()
    fm = failure_modes(_eval(), "large")
    card = compute_card("small", frame, failure_modes=fm)
    text = card.markdown
    assert "## Failure modes against the baseline (large)" in text
    assert "| clean | 10 | 3 | 30.0% | 10.8%-60.3% | 1 | -20.0 pts | 1 (-66.7 pts, n=3), 0 (-25.0 pts, n=4) |" in text
    assert card.data["failure_modes"]["examples"][0]["index"] == 5
    assert "Failure modes" not in compute_card("large", frame, failure_modes=fm).markdown
    # stored beside a results file, the cards made later show it again
    results = tmp_path / "r.jsonl"
    effplan.store.append(results, frame.to_dict(orient="records"))
    store_beside(results, failure_modes=fm)
    md = {p.name: p.read_text() for p in cards_from_results(results, tmp_path / "cards")}
    assert "## Failure modes against the baseline (large)" in md["small.card.md"]
