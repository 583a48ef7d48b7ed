"""effplan.learning_curve: nested training runs of a candidate, evaluated clean and under noise,
each with its measured training time and cost; the fits and the figure read from it."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import effplan
from effplan.models.candidates import Candidate
from effplan.errors import ValidationError
from effplan.examples import digits_candidates, digits_eval_data, digits_train_data
from effplan.learning_curves import LEARNING_CURVE_COLUMNS, RUN_COLUMNS, LearningCurve, _nested_order

REPO = Path(__file__).resolve().parents[1]


def _digits(name: str = "digits-mlp-slim") -> Candidate:
    """A digits MLP of the built-in family's shape, untrained (learning_curve re-initialises the
    weights anyway; the trained family itself is used by the slow default curve below)."""
    from effplan.examples import DIGITS_WIDTHS, _mlp

    if name == "digits-mlp-int8":
        return {c.name: c for c in digits_candidates()}[name]
    return Candidate(name, lambda: _mlp(DIGITS_WIDTHS[name]), lambda b: torch.zeros(b, 64))


@pytest.fixture(scope="module")
def digits_curve() -> LearningCurve:
    """The default digits learning curve: 4 fractions x 3 seeds, clean and two noise levels."""
    cand = {c.name: c for c in digits_candidates()}["digits-mlp"]   # trained weights, re-initialised
    return effplan.learning_curve(cand, digits_train_data(), digits_eval_data())


@pytest.mark.slow
def test_digits_learning_curve_holds_cost_and_conditions(digits_curve):
    c = digits_curve
    f = c.frame
    assert list(f.columns) == list(LEARNING_CURVE_COLUMNS)
    assert list(c.runs.columns) == list(RUN_COLUMNS)
    assert c.conditions == ["clean", "noise-0.1", "noise-0.3"] and c.metrics == ["accuracy", "nll"]
    # 1,347 training items: round(0.1 x 1347) = 135, 337, 674, 1347; 3 seeds each
    assert sorted(set(c.runs["items"])) == [135, 337, 674, 1347]
    assert len(c.runs) == 12 and len(f) == 12 * 3 * 2
    assert (c.runs["train_s"] > 0).all() and np.isfinite(c.runs["train_s"]).all()
    assert c.runs["cost_usd"].tolist() == pytest.approx((c.runs["train_s"] / 3600 * c.price_per_hour_usd).tolist())
    assert (c.runs["cost_usd"] > 0).all() and c.cost_source.startswith("measured training time x")
    assert (f["ci_low"] <= f["value"]).all() and (f["value"] <= f["ci_high"]).all()
    assert c.runs["steps"].tolist()[:4] == [25 * math.ceil(k / 64) for k in (135, 337, 674, 1347)]
    # the larger the subset, the more it costs at the same recipe
    per_size = c.runs.groupby("items")["train_s"].median()
    assert per_size.iloc[-1] > per_size.iloc[0]
    assert c.cost_at(2694) == pytest.approx(2694 * c.cost_per_item_usd)


@pytest.mark.slow
def test_more_data_never_lowers_the_fitted_clean_accuracy(digits_curve):
    fit = digits_curve.fit("accuracy", "clean")
    ns = np.geomspace(10, 16 * 1347, 300)
    v = fit.value(ns)
    assert np.all(np.diff(v) >= 0) and v[-1] <= 1.0
    p = fit.predict(2 * 1347)
    assert p.low <= p.value <= p.high and not p.speculative
    # the fit follows the measured means (a real curve, not a constant)
    means = digits_curve.frame.query("metric == 'accuracy' and condition == 'clean'").groupby("items")["value"].mean()
    assert fit.value(means.index.to_numpy(float)) == pytest.approx(means.to_numpy(), abs=0.02)
    assert means.iloc[-1] > means.iloc[0] + 0.02
    pred = digits_curve.predictions(2.0).set_index("condition")
    assert list(pred.index) == ["clean", "noise-0.1", "noise-0.3"]
    assert (pred.loc["clean", "predicted"], pred.loc["clean", "low"]) == pytest.approx((p.value, p.low))
    assert pred.loc["clean", "gain"] == pytest.approx(p.value - float(fit.value(1347)))
    assert pred.loc["clean", "run_cost_usd"] == pytest.approx(2694 * digits_curve.cost_per_item_usd)
    assert pred.loc["clean", "measured"] == pytest.approx(means.iloc[-1])
    nll = digits_curve.fit("nll", "clean")
    assert not nll.higher_is_better and np.all(np.diff(nll.value(ns)) <= 0)


@pytest.mark.slow
def test_the_generalization_sentence_reads_the_fits(digits_curve):
    g = digits_curve.generalization("accuracy", "noise-0.1")
    ch = g.change(2.0)
    s = g.sentence()
    assert s.startswith("at 2x data (2,694 items) the clean accuracy rises ")
    assert f"{ch.rise[0] * 100:.1f} points" in s and "noise-0.1 gap" in s
    assert f"from {ch.gap_now[0] * 100:.1f} to {ch.gap_then[0] * 100:.1f} points" in s
    assert digits_curve.generalization().condition == "noise-0.3"   # default: the last condition


def test_subsets_are_nested_and_stratified():
    y = torch.tensor(np.repeat(np.arange(10), [30, 10, 20, 40, 10, 10, 30, 20, 20, 10]))
    order = _nested_order(y, seed=4)
    assert sorted(order.tolist()) == list(range(len(y)))
    counts = np.bincount(y.numpy(), minlength=10)
    for k in (20, 50, 100, 150):
        got = np.bincount(y.numpy()[order[:k]], minlength=10)
        assert np.all(np.abs(got - counts * k / len(y)) <= 1.0 + 1e-9), (k, got)
    assert not np.array_equal(order, _nested_order(y, seed=5))
    floats = _nested_order(torch.rand(50), seed=0)          # not labels: a plain permutation
    assert sorted(floats.tolist()) == list(range(50))


def test_small_curve_prices_an_entered_rate_and_keeps_shifts():
    x, y = digits_train_data()
    xe, ye = digits_eval_data()
    rotated = (xe.reshape(-1, 8, 8).transpose(1, 2).reshape(-1, 64).contiguous(), ye)
    c = effplan.learning_curve(_digits(), (x, y), (xe, ye), fractions=(0.2, 0.5, 1.0), seeds=[3, 8], noise=(),
                               shifts={"transposed": rotated}, metrics=("accuracy",), epochs=2,
                               n_bootstrap=0, price_per_hour_usd=3.6)
    assert c.conditions == ["clean", "transposed"]
    assert c.runs["cost_usd"].tolist() == pytest.approx((c.runs["train_s"] / 1000).tolist())
    assert c.cost_source.startswith("measured training time x 3.6 USD/h") and "entered" in c.cost_source
    assert sorted(set(c.runs["seed"])) == [3, 8] and c.frame["ci_low"].isna().all()
    tw = c.training_workload(1347, runs_per_quarter=4)
    assert (tw.items_per_epoch, tw.epochs, tw.runs_per_quarter) == (1347.0, 2.0, 4.0)
    # the global torch RNG and thread count are left as they were
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    effplan.learning_curve(_digits(), (x, y), (xe, ye), fractions=(0.2, 0.5, 1.0), seeds=1, noise=(),
                           metrics=("accuracy",), epochs=1, n_bootstrap=0, price_per_hour_usd=1.0)
    assert torch.rand(1) == before and torch.get_num_threads() == threads


def test_the_same_seed_trains_the_same_model():
    x, y = digits_train_data()
    kw = dict(fractions=(0.2, 0.5, 1.0), seeds=1, noise=(), metrics=("accuracy",), epochs=2, n_bootstrap=0,
              price_per_hour_usd=1.0)
    a = effplan.learning_curve(_digits(), (x, y), digits_eval_data(), **kw)
    b = effplan.learning_curve(_digits(), (x, y), digits_eval_data(), **kw)
    assert a.frame["value"].tolist() == b.frame["value"].tolist()


def test_quantized_candidates_and_unresettable_modules_are_refused():
    data = digits_train_data()
    with pytest.raises(ValidationError, match="cannot be trained") as err:
        effplan.learning_curve(_digits("digits-mlp-int8"), data, digits_eval_data())
    assert err.value.field == "candidate"

    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(64))
            self.head = nn.Linear(64, 10)

        def forward(self, x):
            return self.head(x * self.w)

    cand = Candidate("scaled", Scale, lambda b: torch.zeros(b, 64))
    with pytest.raises(ValidationError, match="reset_parameters") as err:
        effplan.learning_curve(cand, data, digits_eval_data(), fractions=(0.3, 0.6, 1.0), seeds=1)
    assert err.value.field == "reinit"
    c = effplan.learning_curve(cand, data, digits_eval_data(), fractions=(0.3, 0.6, 1.0), seeds=1, reinit=False,
                               epochs=1, noise=(), metrics=("accuracy",), n_bootstrap=0, price_per_hour_usd=1.0)
    assert len(c.runs) == 3


@pytest.mark.parametrize("kwargs, field", [
    ({"fractions": (0.5, 0.25)}, "fractions"),
    ({"fractions": (0.1, 1.5)}, "fractions[1]"),
    ({"seeds": 0}, "seeds"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"epochs": 0}, "epochs"),
    ({"price_per_hour_usd": -1.0}, "price_per_hour_usd"),
    ({"hardware": "H1000"}, "hardware"),
])
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as err:
        effplan.learning_curve(_digits(), digits_train_data(), digits_eval_data(), **kwargs)
    assert err.value.field == field


def test_bad_data_is_refused():
    x, y = digits_train_data()
    with pytest.raises(ValidationError) as err:
        effplan.learning_curve(_digits(), (x, y[:10]), digits_eval_data())
    assert err.value.field == "train_data"
    with pytest.raises(ValidationError) as err:
        effplan.learning_curve(_digits(), x, digits_eval_data())
    assert err.value.field == "train_data"


@pytest.mark.slow
def test_effplan_learning_curve_stays_the_function_whatever_was_imported_first():
    # the module is named learning_curves, not after the function: importing it (first, in a fresh
    # interpreter) must not rebind effplan.learning_curve (docs/ARCHITECTURE.md, measurement/measure)
    code = ("import torch, effplan.learning_curves as m, effplan\n"
            "cand = effplan.Candidate('lin', lambda: torch.nn.Linear(4, 3), lambda b: torch.zeros(b, 4))\n"
            "x, y = torch.randn(60, 4), torch.arange(60) % 3\n"
            "lc = effplan.learning_curve(cand, (x, y), (x, y), fractions=(0.3, 0.6, 1.0), seeds=1, epochs=1,\n"
            "    noise=(), metrics=('accuracy',), n_bootstrap=0, price_per_hour_usd=1.0)\n"
            "assert isinstance(lc, m.LearningCurve) and effplan.LearningCurve is m.LearningCurve\n"
            "assert effplan.learning_curve is m.learning_curve\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env, timeout=240)
    assert effplan.learning_curve.__module__ == "effplan.learning_curves"
