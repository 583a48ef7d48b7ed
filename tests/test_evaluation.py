"""effplan.evaluate: tidy quality frame per candidate x metric x condition, seeded, bootstrap CI."""

import math

import numpy as np
import pandas as pd
import pytest

import effplan
from effplan.records import metrics
from effplan.errors import ValidationError
from effplan.records.quality import (EVALUATION_COLUMNS, EVALUATION_REPRO_COLUMNS, Evaluation,
                                     quality_frame, split_key)
from effplan.reproducibility import weights_sha256

torch = pytest.importorskip("torch")

#: stated tolerance: int8 dynamic quantization may cost at most 1 percentage point of clean accuracy
INT8_ACCURACY_TOLERANCE = 0.01


def _toy(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 4).eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=gen)
    y = torch.randint(0, 4, (40,), generator=gen)
    return model, x, y


@pytest.fixture(scope="module")
def digits():
    from effplan.examples import digits_candidates, digits_eval_data

    cands = digits_candidates()
    return cands, digits_eval_data(), effplan.evaluate(cands, digits_eval_data(), n_bootstrap=200)


def test_digits_frame_format_and_real_numbers(digits):
    cands, _, ev = digits
    f = ev.to_frame()
    assert list(f.columns) == list(EVALUATION_COLUMNS) + list(EVALUATION_REPRO_COLUMNS)
    assert list(EVALUATION_COLUMNS) == [
        "candidate", "metric", "condition", "value", "ci_low", "ci_high", "n", "provenance",
        "higher_is_better"]
    # reproducibility on every record: the weights hash of the model evaluated, the seed, versions
    for c in cands:
        rec = f[f["candidate"] == c.name]
        assert set(rec["weights_sha256"]) == {weights_sha256(c.build_model("cpu"))}
    assert set(f["seed"]) == {0} and set(f["effplan_version"]) == {effplan.__version__}
    assert len(f) == 4 * 4 * 3                         # candidates x metrics x conditions
    assert set(f["condition"]) == {"clean", "noise-0.1", "noise-0.3"}
    assert (f["provenance"] == "measured").all() and (f["n"] == 450).all()
    assert f.loc[f["metric"] == "accuracy", "higher_is_better"].all()
    assert not f.loc[f["metric"] != "accuracy", "higher_is_better"].any()
    # clean accuracy is the accuracy the family was scored with
    for c in cands:
        assert ev.value(c.name, "accuracy") == pytest.approx(c.quality)
    # CIs bracket the value
    assert ((f["ci_low"] <= f["value"] + 1e-12) & (f["value"] <= f["ci_high"] + 1e-12)).all()
    # noise at sigma=0.3 costs every member accuracy (observed: ~0.97 -> ~0.8)
    for c in cands:
        assert ev.value(c.name, "accuracy@noise-0.3") < ev.value(c.name, "accuracy") - 0.05


def test_int8_clean_accuracy_within_tolerance_of_baseline(digits):
    _, _, ev = digits
    base = ev.value("digits-mlp", "accuracy")
    assert abs(ev.value("digits-mlp-int8", "accuracy") - base) <= INT8_ACCURACY_TOLERANCE


def test_clean_values_match_the_metric_functions_by_hand(digits):
    cands, (x, y), ev = digits
    slim = cands[1].build_model()
    with torch.inference_mode():
        p = torch.softmax(slim(x).double(), dim=1).numpy()
    assert ev.value("digits-mlp-slim", "ece") == pytest.approx(metrics.debiased_calibration_error(p, y.numpy()))
    binned = effplan.evaluate(cands[1], (x, y), metrics=["ece_binned"], noise=(), n_bootstrap=0)
    assert binned.value("digits-mlp-slim", "ece_binned") == pytest.approx(
        metrics.expected_calibration_error(p, y.numpy()))
    # the debiased ECE is below the plug-in one (the plug-in's bias is removed)
    assert ev.value("digits-mlp-slim", "ece") < binned.value("digits-mlp-slim", "ece_binned")
    assert ev.value("digits-mlp-slim", "nll") == pytest.approx(metrics.negative_log_likelihood(p, y.numpy()))
    assert ev.value("digits-mlp-slim", "brier") == pytest.approx(metrics.brier_score(p, y.numpy()))


def test_seeded_and_noise_differs_by_seed():
    model, x, y = _toy()
    a = effplan.evaluate({"toy": model}, (x, y), n_bootstrap=50, seed=3)
    b = effplan.evaluate({"toy": model}, (x, y), n_bootstrap=50, seed=3)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    c = effplan.evaluate({"toy": model}, (x, y), n_bootstrap=50, seed=4)
    clean = a.frame["condition"] == "clean"
    np.testing.assert_allclose(a.frame.loc[clean, "value"], c.frame.loc[clean, "value"])
    assert not np.allclose(a.frame.loc[~clean, "value"], c.frame.loc[~clean, "value"])


def test_dataloader_shifts_user_metric_and_no_bootstrap():
    model, x, y = _toy()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=7)
    top2 = metrics.Metric("top2", lambda p, lab: float(np.mean(
        (np.argsort(-np.asarray(p), axis=1)[:, :2] == np.asarray(lab)[:, None]).any(1))), True)
    ev = effplan.evaluate({"toy": model}, loader, metrics=["accuracy", top2], noise=(),
                          shifts={"flipped": (-x, y)}, n_bootstrap=0)
    f = ev.frame
    assert set(f["condition"]) == {"clean", "flipped"} and set(f["metric"]) == {"accuracy", "top2"}
    assert f["ci_low"].isna().all()
    with torch.inference_mode():
        pred = model(-x).argmax(1)
    assert ev.value("toy", "accuracy@flipped") == pytest.approx(float((pred == y).float().mean()))
    assert ev.value("toy", "top2") >= ev.value("toy", "accuracy")


def test_user_metric_bootstrap_calls_fn():
    model, x, y = _toy()
    ev = effplan.evaluate({"toy": model}, (x, y), metrics={"acc2": (metrics.accuracy, True)},
                          noise=(), n_bootstrap=30)
    row = ev.frame.iloc[0]
    assert row["ci_low"] <= row["value"] <= row["ci_high"]


def test_perplexity_on_sequence_outputs():
    class LM(torch.nn.Module):
        def forward(self, tokens):   # uniform over a 5-token vocabulary
            return torch.zeros(tokens.shape[0], tokens.shape[1], 5)

    tokens = torch.zeros(3, 4, dtype=torch.long)
    labels = torch.tensor([[1, 2, 3, -100]] * 3)
    ev = effplan.evaluate({"lm": LM()}, (tokens, labels), metrics=["perplexity"], noise=(), n_bootstrap=0,
                          ignore_index=-100)
    assert ev.value("lm", "perplexity") == pytest.approx(5.0)
    assert ev.frame["n"].iloc[0] == 9           # -100 ignored, as asked
    with pytest.raises(ValidationError, match="ignore_index=-100") as exc:   # never silently dropped
        effplan.evaluate({"lm": LM()}, (tokens, labels), metrics=["perplexity"], noise=(), n_bootstrap=0)
    assert exc.value.field == "labels"
    with pytest.raises(ValidationError, match="noise"):
        effplan.evaluate({"lm": LM()}, (tokens, labels), metrics=["perplexity"])


@pytest.mark.parametrize("kwargs,field", [
    ({"metrics": ["f1"]}, "metrics"), ({"noise": (-0.1,)}, "noise"), ({"seed": -1}, "seed"),
    ({"shifts": {"clean": None}}, "shifts"), ({"n_bootstrap": 1.5}, "n_bootstrap"),
])
def test_bad_arguments_name_the_field(kwargs, field):
    model, x, y = _toy()
    with pytest.raises(ValidationError) as exc:
        effplan.evaluate({"toy": model}, (x, y), **kwargs)
    assert exc.value.field == field


def test_bad_data():
    model, x, y = _toy()
    with pytest.raises(ValidationError, match="data"):
        effplan.evaluate({"toy": model}, (x, y[:5]))
    with pytest.raises(ValidationError, match="labels must be integer"):
        effplan.evaluate({"toy": model}, (x, y.float()))


def test_save_load_round_trip(tmp_path):
    model, x, y = _toy()
    ev = effplan.evaluate({"toy": model}, (x, y), n_bootstrap=20)
    back = Evaluation.load(ev.save(tmp_path / "ev.json"))
    pd.testing.assert_frame_equal(back.frame, ev.frame)
    assert back.reproducibility == ev.reproducibility and len(ev.reproducibility["toy"]["weights_sha256"]) == 64
    assert back.settings == ev.settings


def test_hand_entered_quality_keeps_entered():
    f = quality_frame({"a": {"accuracy": 0.9, "ece@noise-0.1": 0.05}})
    assert list(f.columns) == list(EVALUATION_COLUMNS)
    assert (f["provenance"] == "entered").all() and f["n"].isna().all()
    assert f.set_index("metric").loc["ece", "condition"] == "noise-0.1"
    assert f.set_index("metric").loc["ece", "higher_is_better"] == False  # noqa: E712
    with pytest.raises(ValidationError, match="higher_is_better"):
        quality_frame({"a": {"f1": 0.5}})
    with pytest.raises(ValidationError, match="value"):
        quality_frame({"a": {"accuracy": "high"}})
    with pytest.raises(ValidationError, match=r"accuracy = 97.0 is outside its range \[0, 1\]"):
        quality_frame({"a": {"accuracy": 97.0}})          # a percentage typed as a share
    with pytest.raises(ValidationError, match="brier"):
        quality_frame({"a": {"brier": -0.1}})
    assert split_key("expected_calibration_error@noise-0.3") == ("ece_binned", "noise-0.3")
    assert split_key("debiased_calibration_error") == ("ece", "clean")
    assert math.isnan(f["ci_low"].iloc[0])


def test_versus_paired_bootstrap_and_overlap_after_load(tmp_path):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(4, 3, generator=gen)
    x = torch.randn(200, 3, generator=gen)
    y = (x @ w.T).argmax(1)
    good = torch.nn.Linear(3, 4, bias=False)
    bad = torch.nn.Linear(3, 4, bias=False)
    with torch.no_grad():
        good.weight.copy_(w * 20)           # right and confident
        bad.weight.copy_(-w)                # wrong on purpose
    ev = effplan.evaluate({"good": good, "bad": bad}, (x, y), metrics=["accuracy", "nll"], noise=(),
                          n_bootstrap=200)
    v = ev.versus("good").set_index("metric")
    assert (v["test"] == "paired bootstrap").all()
    assert v.loc["accuracy", "verdict"] == "worse" and v.loc["nll", "verdict"] == "worse"
    assert v.loc["accuracy", "change"] == pytest.approx(ev.value("bad", "accuracy") - ev.value("good", "accuracy"))
    assert v.loc["accuracy", "change_ci_high"] < 0
    back = Evaluation.load(ev.save(tmp_path / "e.json")).versus("bad").set_index("metric")
    assert (back["test"] == "interval overlap").all()
    assert back.loc["accuracy", "verdict"] == "better" and back.loc["nll", "verdict"] == "better"
    with pytest.raises(ValidationError, match="baseline"):
        ev.versus("nope")


def test_join_quality_by_candidate_keeps_rows_and_provenance():
    from effplan.records.quality import join_quality

    frame = pd.DataFrame({"candidate": ["a", "b", "a", "c"], "cost_usd": [1.0, 2.0, 3.0, 4.0]})
    q = pd.concat([quality_frame({"a": {"accuracy": 0.9, "ece@noise-0.3": 0.1}}),
                   quality_frame({"b": {"accuracy": 0.8}}).assign(provenance="measured")])
    out = join_quality(frame, q)
    assert list(out["cost_usd"]) == [1.0, 2.0, 3.0, 4.0]
    assert list(out["accuracy"].fillna(-1)) == [0.9, 0.8, 0.9, -1]
    assert out["ece@noise-0.3"].iloc[0] == 0.1 and math.isnan(out["ece@noise-0.3"].iloc[1])
    assert list(out["quality_provenance"]) == ["entered", "measured", "entered", ""]
    again = join_quality(out, {"a": {"accuracy": 0.5}})        # replaces, does not duplicate
    assert list(again.columns).count("accuracy") == 1 and again["accuracy"].iloc[0] == 0.5
    with pytest.raises(ValidationError, match="metric"):
        join_quality(frame, pd.DataFrame({"candidate": ["a"], "metric": ["latency_p95_ms"], "value": [1.0],
                                          "higher_is_better": [False]}))


def test_tuple_inputs_and_a_list_of_two_batches():
    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(3, 4), torch.nn.Linear(2, 4)

        def forward(self, x1, x2):
            return self.a(x1) + self.b(x2)

    torch.manual_seed(0)
    model = Two().eval()
    x1, x2, y = torch.randn(10, 3), torch.randn(10, 2), torch.randint(0, 4, (10,))
    whole = effplan.evaluate({"two": model}, ((x1, x2), y), noise=(0.1,), n_bootstrap=0)
    halves = [((x1[:5], x2[:5]), y[:5]), ((x1[5:], x2[5:]), y[5:])]
    split = effplan.evaluate({"two": model}, halves, noise=(0.1,), n_bootstrap=0)
    pd.testing.assert_frame_equal(whole.frame, split.frame)
    assert (whole.frame["n"] == 10).all()
