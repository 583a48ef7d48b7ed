"""Quality figures you can trust (issue 21): outputs read for what they are, intervals that
cover, noise draws that do not depend on the other levels, one boolean parser, directions."""

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import effplan
from effplan.records import metrics
from effplan.errors import ValidationError
from effplan.bench.evaluation import score
from effplan.records.quality import quality_frame
from effplan.planning.selection import pareto_front

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent / "planning"))   # planning_data, the planner's test rows


def _data(n=120, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen)
    y = (x @ torch.randn(4, 3, generator=gen).T).argmax(1)
    return x, y


def _twins():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 4)
    soft = torch.nn.Sequential(lin, torch.nn.Softmax(dim=1))
    return lin.eval(), soft.eval()


def test_a_softmax_output_model_scores_as_its_logits_twin():
    x, y = _data()
    lin, soft = _twins()
    ev = effplan.evaluate({"logits": lin, "probs": soft}, (x, y), metrics=["ece", "nll", "brier", "accuracy"],
                          noise=(0.1,), n_bootstrap=50)
    for key in ("ece", "nll", "brier", "nll@noise-0.1"):
        # the softmax layer runs in float32, the logits' softmax in float64: equal to float32 precision
        assert ev.value("probs", key) == pytest.approx(ev.value("logits", key), rel=1e-6, abs=1e-9)
    assert ev.settings["outputs_read_as"] == {"logits": "logits", "probs": "probs"}
    # by hand: NLL of the logits twin is the mean -log softmax at the label
    with torch.inference_mode():
        by_hand = float(torch.nn.functional.cross_entropy(lin(x).double(), y))
    assert ev.value("logits", "nll") == pytest.approx(by_hand, rel=1e-12)


def test_a_declared_output_kind_the_outputs_contradict_is_a_named_error():
    x, y = _data()
    lin, soft = _twins()
    with pytest.raises(ValidationError, match="probabilities") as exc:
        effplan.evaluate({"probs": soft}, (x, y), outputs="logits", noise=(), n_bootstrap=0)
    assert exc.value.field == "outputs"
    with pytest.raises(ValidationError, match="logits") as exc:
        effplan.evaluate({"logits": lin}, (x, y), outputs="probs", noise=(), n_bootstrap=0)
    assert exc.value.field == "outputs"
    with pytest.raises(ValidationError) as exc:
        effplan.evaluate({"logits": lin}, (x, y), outputs="softmax")
    assert exc.value.field == "outputs"


def test_bad_labels_are_named_unless_ignore_index():
    x, y = _data(20)
    lin, _ = _twins()
    for bad in (-1, 4):
        yy = y.clone()
        yy[3] = bad
        with pytest.raises(ValidationError, match=f"label {bad} at row 3") as exc:
            effplan.evaluate({"m": lin}, (x, yy), noise=(), n_bootstrap=0)
        assert exc.value.field == "labels"
    yy = y.clone()
    yy[3] = -1
    ev = effplan.evaluate({"m": lin}, (x, yy), noise=(), n_bootstrap=0, ignore_index=-1)
    assert (ev.frame["n"] == 19).all()


def test_noise_draw_depends_on_seed_and_sigma_only():
    x, y = _data(300)
    lin, _ = _twins()
    cand = {"m": lin}
    a = effplan.evaluate(cand, (x, y), metrics=["accuracy", "nll"], noise=(0.1, 0.3), n_bootstrap=20)
    b = effplan.evaluate(cand, (x, y), metrics=["accuracy", "nll"], noise=(0.3,), n_bootstrap=20)
    c = effplan.evaluate(cand, (x, y), metrics=["accuracy", "nll"], noise=(0.3, 0.1), n_bootstrap=20)
    for key in ("accuracy@noise-0.3", "nll@noise-0.3"):
        assert b.value("m", key) == a.value("m", key) == c.value("m", key)
    assert a.value("m", "nll@noise-0.3") != a.value("m", "nll@noise-0.1")
    assert a.settings["noise_draws"] == 2


def test_noise_interval_holds_the_draws_and_one_draw_differs():
    x, y = _data(200)
    lin, _ = _twins()
    four = effplan.evaluate({"m": lin}, (x, y), metrics=["accuracy", "nll"], noise=(0.5,), n_bootstrap=100,
                            noise_draws=4)
    one = effplan.evaluate({"m": lin}, (x, y), metrics=["accuracy", "nll"], noise=(0.5,), n_bootstrap=100,
                           noise_draws=1)
    # the 4-draw figure is the mean over draws; its first draw is the 1-draw figure
    with torch.inference_mode():
        from effplan.bench.evaluation import _add_noise, noise_seed

        accs = [float((lin(_add_noise(x, 0.5, noise_seed(0, 0.5, d))).argmax(1) == y).float().mean())
                for d in range(4)]
    assert four.value("m", "accuracy@noise-0.5") == pytest.approx(np.mean(accs))
    assert one.value("m", "accuracy@noise-0.5") == pytest.approx(accs[0])
    assert (four.frame["n"] == 200).all()   # examples, not examples x draws


def test_settings_state_the_conventions():
    x, y = _data(30)
    lin, _ = _twins()
    ev = effplan.evaluate({"m": lin}, (x, y), noise=(), n_bootstrap=0, batch_size=7)
    s = ev.settings
    assert s["batch_size"] == 7 and s["device"] == {"m": "cpu"}
    assert s["nll_clipped_rows"] == {"m": {"clean": 0}} and s["nll_clip_eps"] == 1e-12
    assert "brier_binary" in s["brier"]


def test_binary_brier_is_sklearns_and_half_the_multiclass_one():
    p = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    y = np.array([1, 1, 0])
    # by hand, sklearn's brier_score_loss: mean (p1 - y)^2 = (0.04 + 0.36 + 0.25) / 3
    assert metrics.binary_brier_score(p, y) == pytest.approx(0.65 / 3)
    assert metrics.brier_score(p, y) == pytest.approx(2 * 0.65 / 3)
    with pytest.raises(ValidationError):
        metrics.binary_brier_score(np.full((2, 3), 1 / 3), np.array([0, 1]))


def test_accuracy_interval_near_one_is_wilson_never_zero_width():
    p = np.tile([0.99, 0.01], (100, 1))
    y = np.zeros(100, dtype=int)
    f = score(p, y, ["accuracy"], n_bootstrap=50).set_index("metric")
    # Wilson at 100/100, z = 1.959964: lower = 1 / (1 + z^2/100) = 0.96301
    assert f.loc["accuracy", "ci_low"] == pytest.approx(1 / (1 + 1.959964 ** 2 / 100), rel=1e-6)
    assert f.loc["accuracy", "ci_high"] == 1.0


def test_debiased_ece_by_hand_and_zero_for_a_noise_sized_gap():
    # one bin (confidence 0.9 -> bin 13 of 15): 10 rows, 8 right: S = 8 - 9 = -1, V = 10 * 0.09 = 0.9
    p = np.tile([0.9, 0.1], (10, 1))
    y = np.array([0] * 8 + [1] * 2)
    assert metrics.expected_calibration_error(p, y) == pytest.approx(0.1)
    assert metrics.debiased_calibration_error(p, y) == pytest.approx(math.sqrt(1 - 0.9) / 10)
    y9 = np.array([0] * 9 + [1])          # S = 0: calibrated within noise
    assert metrics.debiased_calibration_error(p, y9) == 0.0


@pytest.mark.slow
def test_ece_interval_covers_a_calibrated_and_a_miscalibrated_population():
    """Small but able to fail: the plug-in bootstrap covered 0% of these."""
    rng = np.random.default_rng(0)
    hits = {"calibrated": 0, "over": 0}
    sims = 60
    for name, gamma, true in (("calibrated", 1.0, 0.0), ("over", 3.0, None)):
        u = (np.arange(200_000) + 0.5) / 200_000
        w = 12 * (1 - u) ** 11
        w /= w.sum()
        c_grid = 1 - 0.9 * u
        true = float(w @ np.abs(c_grid ** gamma - c_grid))
        for s in range(sims):
            c = 1 - 0.9 * rng.beta(1, 12, 400)
            p = np.stack([c, 1 - c], axis=1)
            y = np.where(rng.random(400) < c ** gamma, 0, 1)
            f = score(p, y, ["ece", "accuracy"], n_bootstrap=200, seed=s).set_index("metric")
            hits[name] += int(f.loc["ece", "ci_low"] <= true <= f.loc["ece", "ci_high"])
    assert hits["calibrated"] / sims >= 0.85
    assert hits["over"] / sims >= 0.85


def test_pareto_on_ece_with_default_arguments():
    f = pd.DataFrame({"candidate": ["a", "b", "c"], "cost_usd": [1.0, 2.0, 3.0], "ece": [0.02, 0.10, 0.01]})
    assert list(pareto_front(f, metric="ece")["candidate"]) == ["a", "c"]   # b is worse and dearer
    f["accuracy"] = [0.9, 0.95, 0.8]
    assert list(pareto_front(f, metric="accuracy")["candidate"]) == ["a", "b"]
    with pytest.raises(ValidationError):
        pareto_front(f.assign(mystery=1.0), metric="mystery")


def _plan_frame(feasible):
    return pd.DataFrame({"candidate": ["cheap", "dear"], "hardware": ["cpu", "cpu"], "quarter": [1, 1],
                         "cost_usd": [1.0, 5.0], "feasible": feasible})


def test_false_strings_are_read_as_false_and_other_words_refused():
    sel = effplan.cheapest_meeting(_plan_frame(["False", "True"]))
    assert list(sel.chosen["candidate"]) == ["dear"]
    assert list(effplan.cheapest_meeting(_plan_frame(["no", "yes"])).chosen["candidate"]) == ["dear"]
    with pytest.raises(ValidationError) as exc:
        effplan.cheapest_meeting(_plan_frame(["maybe", "True"]))
    assert exc.value.field == "feasible"
    from effplan.planning.stability import resolve_allow_unstable
    from effplan.records.schema import parse_bool

    assert resolve_allow_unstable("False") is False and resolve_allow_unstable("yes") is True
    with pytest.raises(ValidationError) as exc:
        resolve_allow_unstable("sometimes")
    assert exc.value.field == "allow_unstable"
    assert parse_bool(" NO ", "stable") is False and parse_bool(1, "stable") is True
    with pytest.raises(ValidationError):
        parse_bool(2, "stable")


def test_stable_no_is_false_and_garbage_is_a_named_row_error():
    from effplan.records.schema import normalize_measurements

    from planning_data import meas

    df = meas()
    df["stable"] = "no"
    out = normalize_measurements(df)
    assert out["stable"].iloc[0] == False  # noqa: E712  (a nullable boolean: False, not unknown)
    df["stable"] = "perhaps"
    with pytest.raises(ValidationError) as exc:
        normalize_measurements(df)
    assert exc.value.field == "stable"


def test_allow_unstable_false_string_refuses_unstable_rows():
    from planning_data import PRICES, meas, wl

    df = meas().assign(stable=False, background_load=1.5)
    with pytest.warns(Warning):
        strict = effplan.plan(df, wl(), prices=PRICES, allow_unstable="False")
    assert not strict.summary["feasible"].any()


def test_an_edited_quality_value_outside_its_interval_is_refused():
    with pytest.raises(ValidationError, match="outside its own interval") as exc:
        quality_frame(pd.DataFrame({"candidate": ["a"], "metric": ["accuracy"], "value": [0.99],
                                    "ci_low": [0.90], "ci_high": [0.95]}))
    assert exc.value.field == "value"
    with pytest.raises(ValidationError, match="lower-is-better"):
        quality_frame(pd.DataFrame({"candidate": ["a"], "metric": ["ece"], "value": [0.1],
                                    "higher_is_better": ["True"]}))


def test_cheapest_meeting_bars_and_directions():
    q = quality_frame(pd.DataFrame({
        "candidate": ["cheap", "cheap", "dear", "dear"], "metric": ["accuracy"] * 4,
        "condition": ["clean", "noise-0.1"] * 2, "value": [0.97, 0.94, 0.975, 0.965],
        "ci_low": [0.96, 0.92, 0.965, 0.955], "ci_high": [0.98, 0.96, 0.985, 0.975]}))
    plan = _plan_frame([True, True])
    assert list(effplan.cheapest_meeting(plan, bars=[("accuracy", 0.96)], quality=q).chosen["candidate"]) == ["cheap"]
    sel = effplan.cheapest_meeting(plan, bars=[("accuracy", 0.96), ("accuracy@noise-0.1", 0.95)], quality=q)
    assert list(sel.chosen["candidate"]) == ["dear"]
    why = sel.options.set_index("candidate").loc["cheap", "reason"]
    assert "accuracy@noise-0.1 = 0.94 < min 0.95" in why
    # judged on the interval's lower end: dear's clean lower end 0.965 < 0.97
    sel = effplan.cheapest_meeting(plan, bars=[("accuracy", 0.97, "interval")], quality=q)
    assert not sel.found
    with pytest.raises(ValidationError) as exc:
        effplan.cheapest_meeting(plan, min={"ece": 0.05}, quality={"cheap": {"ece": 0.01}})
    assert exc.value.field == "min"
