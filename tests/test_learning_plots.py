"""The learning-curve figure draws the fitted values, the runs and the prediction it claims."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import effplan
from effplan.errors import ValidationError
from effplan.examples import DIGITS_WIDTHS, _mlp, digits_eval_data, digits_train_data
from effplan.learning_plots import EXTRAPOLATED_LABEL, learning_curve_figure


@pytest.fixture(scope="module")
def curve():
    cand = effplan.Candidate("digits-mlp-student", lambda: _mlp(DIGITS_WIDTHS["digits-mlp-student"]),
                             lambda b: torch.zeros(b, 64))
    return effplan.learning_curve(cand, digits_train_data(), digits_eval_data(), fractions=(0.1, 0.3, 1.0),
                                  seeds=2, noise=(0.3,), metrics=("accuracy",), epochs=3, n_bootstrap=0,
                                  price_per_hour_usd=2.0)


def _lines(fig: Figure, color=None) -> list[Line2D]:
    ax = fig.axes[0]
    return [ln for ln in ax.get_lines() if ln.get_linestyle() in ("-", "--") and len(ln.get_xdata()) > 5]


def test_cost_axis_figure_plots_the_fit_and_the_prediction(curve):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = learning_curve_figure(curve)
    assert isinstance(fig, Figure) and plt.get_fignums() == before
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    per_item = curve.cost_per_item_usd
    lines = _lines(fig)
    assert len(lines) == 4                                  # 2 conditions x (measured range, extrapolated)
    for cond, (solid, dashed) in zip(curve.conditions, zip(lines[::2], lines[1::2]), strict=True):
        fit = curve.fit("accuracy", cond)
        for ln in (solid, dashed):
            items = np.asarray(ln.get_xdata(), float) / per_item
            assert np.asarray(ln.get_ydata(), float) == pytest.approx(fit.value(items) * 100, rel=1e-9)
        assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--"
        assert np.asarray(solid.get_xdata())[-1] == pytest.approx(1347 * per_item)
        assert np.asarray(dashed.get_xdata())[-1] == pytest.approx(2 * 1347 * per_item)
        p = fit.predict(2694)
        label = f"2x data: {p.value * 100:.1f}% [{p.low * 100:.1f}%, {p.high * 100:.1f}%]"
        assert label in [t.get_text() for t in ax.texts]
    # each run is a point at its own measured cost
    xs = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections if hasattr(c, "get_offsets")
                         and len(c.get_offsets()) == len(curve.runs)])
    assert sorted(xs) == pytest.approx(sorted(np.tile(curve.runs["cost_usd"].to_numpy(), 2)))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert EXTRAPOLATED_LABEL in legend and "clean" in legend and "noise-0.3" in legend
    assert "$2/h" in ax.get_xlabel()


def test_items_axis_and_bad_arguments(curve):
    fig = learning_curve_figure(curve, x="items", conditions=["clean"])
    solid = _lines(fig)[0]
    fit = curve.fit("accuracy", "clean")
    assert np.asarray(solid.get_ydata()) == pytest.approx(fit.value(np.asarray(solid.get_xdata())) * 100)
    with pytest.raises(ValidationError) as err:
        learning_curve_figure(curve, x="seconds")
    assert err.value.field == "x"
    with pytest.raises(ValidationError) as err:
        learning_curve_figure(curve, conditions=["noise-0.1"])
    assert err.value.field == "conditions"
    with pytest.raises(ValidationError):
        learning_curve_figure(curve.frame)
