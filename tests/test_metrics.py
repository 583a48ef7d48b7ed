"""Metrics checked by hand on small fixed arrays (incl. an empty bin and ties)."""

import math

import numpy as np
import pytest

from effplan.records import metrics
from effplan.errors import ValidationError

# Four rows, two classes. Row 2 is a tie (0.5, 0.5): argmax picks class 0, the label is 1.
PROBS = np.array([[0.9, 0.1],    # conf 0.9, predicted 0, label 0 -> correct
                  [0.6, 0.4],    # conf 0.6, predicted 0, label 1 -> wrong
                  [0.5, 0.5],    # conf 0.5, tie -> predicted 0, label 1 -> wrong
                  [0.2, 0.8]])   # conf 0.8, predicted 1, label 1 -> correct
LABELS = np.array([0, 1, 1, 1])


def test_accuracy_by_hand_tie_goes_to_lowest_index():
    assert metrics.accuracy(PROBS, LABELS) == pytest.approx(0.5)


def test_ece_by_hand_with_empty_bins():
    # 5 bins, edges 0, .2, .4, .6, .8, 1; bins 0 and 1 are empty.
    # bin (.4,.6]: rows 1,2 -> acc 0, conf .55 -> 2/4 * .55 = .275
    # bin (.6,.8]: row 3   -> acc 1, conf .8  -> 1/4 * .2  = .05
    # bin (.8,1]:  row 0   -> acc 1, conf .9  -> 1/4 * .1  = .025
    assert metrics.expected_calibration_error(PROBS, LABELS, n_bins=5) == pytest.approx(0.35)


def test_ece_right_closed_bins_at_an_edge():
    # confidence exactly 0.6 belongs to (0.4, 0.6], not (0.6, 0.8]: with 5 bins the two rows
    # share one bin: acc 0.5, conf 0.6 -> 0.1; split into two bins it would be 0.5*0.4+0.5*0.4=0.4
    p = np.array([[0.6, 0.4], [0.6, 0.4]])
    assert metrics.expected_calibration_error(p, [0, 1], n_bins=5) == pytest.approx(0.1)


def test_ece_default_15_bins_and_perfect_calibration():
    # confidence 1.0 is in the last of 15 bins: all correct -> 0, all wrong -> 1
    p = np.array([[1.0, 0.0]] * 3)
    assert metrics.expected_calibration_error(p, [0, 0, 0]) == 0.0
    assert metrics.expected_calibration_error(p, [1, 1, 1]) == pytest.approx(1.0)


def test_nll_by_hand_and_clip():
    want = -(math.log(0.9) + math.log(0.4) + math.log(0.5) + math.log(0.8)) / 4
    assert metrics.negative_log_likelihood(PROBS, LABELS) == pytest.approx(want)
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert metrics.negative_log_likelihood(p, [1, 0]) == pytest.approx((-math.log(1e-12) - math.log(0.5)) / 2)


def test_brier_by_hand():
    # rows: .01+.01, .36+.36, .25+.25, .04+.04 -> 1.32 / 4
    assert metrics.brier_score(PROBS, LABELS) == pytest.approx(0.33)
    three = np.full((1, 3), 1 / 3)
    assert metrics.brier_score(three, [2]) == pytest.approx(2 * (1 / 3) ** 2 + (2 / 3) ** 2)


def test_perplexity_is_exp_nll():
    p = np.array([[0.25, 0.25, 0.25, 0.25]] * 3)
    assert metrics.perplexity(p, [0, 1, 3]) == pytest.approx(4.0)


def test_accepts_lists_and_tensors():
    torch = pytest.importorskip("torch")
    assert metrics.brier_score(torch.tensor(PROBS), torch.tensor(LABELS)) == pytest.approx(0.33)
    assert metrics.accuracy(PROBS.tolist(), LABELS.tolist()) == pytest.approx(0.5)


@pytest.mark.parametrize("probs,labels,field", [
    (np.array([[2.0, -1.0]]), [0], "probs"),              # logits, not probabilities
    (np.array([[0.5, 0.6]]), [0], "probs"),               # row sums to 1.1
    (np.array([[np.nan, 1.0]]), [0], "probs"),
    (np.zeros((0, 2)), [], "probs"),
    (np.array([0.5, 0.5]), [0], "probs"),                 # 1-D
    (PROBS, [0, 1, 1], "labels"),                         # wrong length
    (PROBS, [0, 1, 2, 1], "labels"),                      # class 2 of 2
    (PROBS, [0.5, 1, 1, 1], "labels"),                    # not integers
])
def test_bad_input_names_the_field(probs, labels, field):
    with pytest.raises(ValidationError) as exc:
        metrics.brier_score(probs, labels)
    assert exc.value.field == field


def test_bad_bins():
    with pytest.raises(ValidationError, match="n_bins"):
        metrics.expected_calibration_error(PROBS, LABELS, n_bins=0)


def test_resampled_ece_matches_direct():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=50)
    y = rng.integers(0, 4, 50)
    idx = rng.integers(0, 50, (7, 50))
    got = metrics.ece_resampled(p.max(1), metrics.correct(p, y), idx, 15)
    want = [metrics.expected_calibration_error(p[i], y[i]) for i in idx]
    np.testing.assert_allclose(got, want)


def test_resolve_metric():
    assert metrics.resolve_metric("expected_calibration_error").name == "ece_binned"
    assert metrics.resolve_metric("debiased_calibration_error").name == "ece"
    m = metrics.resolve_metric((lambda p, y: 1.0, True), name="mine")
    assert m.higher_is_better and m.name == "mine"
    with pytest.raises(ValidationError, match="metrics"):
        metrics.resolve_metric("f1")
