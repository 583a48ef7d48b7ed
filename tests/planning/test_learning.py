"""Learning-curve fits and compute-optimal plans (effplan.planning.learning), by hand.

Synthetic power laws with known parameters (recovered, predicted, bounded), the generalization
sentence from two known curves, and compute_optimal against the closed form of Hoffmann et al.
2022 written out here, with dollars -> GPU-hours -> FLOPs through the catalog by hand.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from effplan.refdata import reference
from effplan.refdata.catalog import find_hardware
from effplan.errors import ExtrapolationError, ValidationError
from effplan.planning import (GenerationWorkload, compute_optimal, fit_generalization,
                              fit_learning_curve)

REPO = Path(__file__).resolve().parents[2]
SIZES = np.array([100, 200, 400, 800, 1600, 3200], dtype=float)


def _runs(fn, sizes=SIZES, seeds=3, sd=0.0, seed=0):
    """(sizes repeated per seed, fn(size) + N(0, sd) per run)."""
    rng = np.random.default_rng(seed)
    n = np.repeat(sizes, seeds)
    return n, fn(n) + rng.normal(0.0, sd, len(n))


# ----------------------------------------------------------------------------- the fit
def test_recovers_a_synthetic_power_law_within_2_percent_and_its_2x_prediction_within_1_percent():
    a, b, c = 0.95, 2.0, 0.5
    truth = lambda n: a - b * n ** -c  # noqa: E731
    n, y = _runs(truth, sd=2e-4)
    fit = fit_learning_curve(n, y, higher_is_better=True)
    assert fit.asymptote == pytest.approx(a, rel=0.02)
    assert fit.scale == pytest.approx(b, rel=0.02)
    assert fit.exponent == pytest.approx(c, rel=0.02)
    p = fit.predict(2 * 3200)
    assert p.value == pytest.approx(truth(6400.0), rel=0.01)
    assert p.low <= p.value <= p.high and p.high - p.low < 0.001
    assert not p.speculative and p.ratio_to_largest == 2.0 and "extrapolated" in p.note


def test_recovers_a_loss_curve_lower_is_better():
    e, b, c = 0.1, 3.0, 0.4
    truth = lambda n: e + b * n ** -c  # noqa: E731
    n, y = _runs(truth, sd=2e-4, seed=1)
    fit = fit_learning_curve(n, y, higher_is_better=False, limit=0.0)
    assert (fit.asymptote, fit.scale, fit.exponent) == pytest.approx((e, b, c), rel=0.02)
    assert fit.predict(6400).value == pytest.approx(truth(6400.0), rel=0.01)
    assert fit.formula.startswith("loss = 0.1") and " + 3" in fit.formula


def test_exact_data_is_fitted_exactly():
    n, y = _runs(lambda n: 0.9 - 1.5 * n ** -0.7, seeds=1)
    fit = fit_learning_curve(n, y, n_bootstrap=0)
    assert (fit.asymptote, fit.scale, fit.exponent) == pytest.approx((0.9, 1.5, 0.7), rel=1e-5)
    assert fit.rmse < 1e-7


def test_intervals_widen_with_distance():
    n, y = _runs(lambda n: 0.95 - 2.0 * n ** -0.5, sd=0.004, seed=3)
    fit = fit_learning_curve(n, y)
    widths = [(p.high - p.low) for p in (fit.predict(3200 * k) for k in (1, 2, 4, 8, 16))]
    assert all(w > 0 for w in widths)
    assert widths == sorted(widths) and len(set(widths)) == len(widths), widths
    frame = fit.curve([3200, 6400, 12800])
    assert list(frame.columns) == ["n", "value", "low", "high", "ratio_to_largest", "speculative"]
    assert frame["high"].sub(frame["low"]).is_monotonic_increasing


def test_beyond_4x_is_speculative_and_beyond_16x_refused():
    n, y = _runs(lambda n: 0.95 - 2.0 * n ** -0.5, sd=0.002)
    fit = fit_learning_curve(n, y)
    assert not fit.predict(4 * 3200).speculative
    p = fit.predict(5 * 3200)
    assert p.speculative and p.note.startswith("speculative: 5x")
    assert fit.predict(16 * 3200).speculative          # 16x itself is still answered
    with pytest.raises(ExtrapolationError, match=r"16x are refused") as err:
        fit.predict(16 * 3200 + 1)
    assert err.value.field == "n" and err.value.ratio > 16
    assert isinstance(err.value, ValidationError)
    with pytest.raises(ExtrapolationError):
        fit.curve([3200, 20 * 3200])
    assert fit.predict(50).note == "extrapolated below the smallest size measured"


def test_one_run_per_size_has_no_interval_and_says_so():
    n, y = _runs(lambda n: 0.9 - n ** -0.5, seeds=1)
    fit = fit_learning_curve(n, y)
    p = fit.predict(6400)
    assert math.isnan(p.low) and math.isnan(p.high)
    assert any("one run per size" in note for note in fit.notes)


def test_more_data_never_lowers_the_fitted_score():
    rng = np.random.default_rng(7)
    ns = np.geomspace(10, 16 * 3200, 200)
    for trial in range(20):
        y = rng.uniform(0.5, 1.0, len(SIZES) * 2)          # no trend at all, or a falling one
        if trial % 2:
            y = np.sort(y)[::-1]
        fit = fit_learning_curve(np.repeat(SIZES, 2), y, limit=1.0, n_bootstrap=50)
        v = fit.value(ns)
        assert np.all(np.diff(v) >= -1e-12)
        assert fit.asymptote <= 1.0
        loss = fit_learning_curve(np.repeat(SIZES, 2), y, higher_is_better=False, n_bootstrap=50)
        assert np.all(np.diff(loss.value(ns)) <= 1e-12)


def test_a_falling_metric_gets_the_flat_fit_and_a_poor_fit_note():
    n = np.repeat(SIZES, 3)
    y = np.repeat([0.80, 0.82, 0.81, 0.79, 0.76, 0.72], 3) + np.tile([0.002, 0.0, -0.002], 6)
    fit = fit_learning_curve(n, y)
    assert fit.poor_fit
    note = next(x for x in fit.notes if x.startswith("poor fit"))
    assert "do not trust its extrapolation" in note


@pytest.mark.parametrize("kwargs, field", [
    ({"sizes": [100, 200], "scores": [0.5, 0.6]}, "sizes"),
    ({"sizes": [100, 200, 400], "scores": [0.5, 0.6]}, "scores"),
    ({"sizes": [100, -1, 400], "scores": [0.5, 0.6, 0.7]}, "sizes[1]"),
    ({"sizes": [100, 200, 400], "scores": [0.5, float("nan"), 0.7]}, "scores[1]"),
    ({"sizes": [100, 200, 400], "scores": [0.5, 0.6, 0.7], "higher_is_better": "yes"}, "higher_is_better"),
    ({"sizes": [100, 200, 400], "scores": [0.5, 0.6, 0.7], "n_bootstrap": -1}, "n_bootstrap"),
])
def test_bad_input_names_the_field(kwargs, field):
    with pytest.raises(ValidationError) as err:
        fit_learning_curve(**kwargs)
    assert err.value.field == field


# ----------------------------------------------------------------------------- generalization
def test_generalization_sentence_from_two_known_curves():
    # clean = 0.98 - 2 n^-0.5, under the condition 0.90 - 4 n^-0.5; three seeds per size at
    # +0.001, 0, -0.001 (the means are exact, so the fits are the curves themselves)
    sizes = np.repeat([100.0, 200.0, 400.0, 800.0], 3)
    off = np.tile([0.001, 0.0, -0.001], 4)
    clean = 0.98 - 2 * sizes ** -0.5 + off
    noisy = 0.90 - 4 * sizes ** -0.5 - off
    g = fit_generalization(sizes, clean, noisy, condition="noise-0.3")
    assert (g.clean.asymptote, g.clean.scale, g.clean.exponent) == pytest.approx((0.98, 2.0, 0.5), rel=1e-4)
    # by hand: rise = 2 (800^-0.5 - 1600^-0.5) = 0.020711 -> 2.1 points; gap(n) = 0.08 + 2 n^-0.5:
    # 0.150711 at 800 (15.1 points), 0.13 at 1600 (13.0 points)
    ch = g.change(2.0)
    assert ch.rise[0] == pytest.approx(2 * (800 ** -0.5 - 1600 ** -0.5), rel=1e-4)
    assert ch.gap_now[0] == pytest.approx(0.08 + 2 * 800 ** -0.5, rel=1e-4)
    assert ch.gap_then[0] == pytest.approx(0.13, rel=1e-4)
    assert ch.rise[1] <= ch.rise[0] <= ch.rise[2]
    s = g.sentence()
    assert s.startswith("at 2x data (1,600 items) the clean accuracy rises 2.1 points [")
    assert "and the noise-0.3 gap narrows from 15.1 to 13.0 points [" in s
    lo, hi = (float(v) for v in s.rsplit("[", 1)[1].rstrip("]").split(", "))
    assert lo <= 13.0 <= hi
    assert g.gap(1600).value == pytest.approx(0.13, rel=1e-4)
    assert "speculative" in g.sentence(5.0)


def test_generalization_gap_is_worse_positive_for_a_loss():
    sizes = np.repeat([100.0, 200.0, 400.0, 800.0], 2)
    off = np.tile([0.001, -0.001], 4)
    clean = 0.1 + 2 * sizes ** -0.5 + off
    noisy = 0.3 + 2 * sizes ** -0.5 + off
    g = fit_generalization(sizes, clean, noisy, condition="rotated", higher_is_better=False, metric="nll")
    assert g.gap(800).value == pytest.approx(0.2, rel=1e-3)
    assert "the rotated gap stays at 0.2" in g.sentence()
    assert "the clean nll falls" in g.sentence()


# ----------------------------------------------------------------------------- compute-optimal
def test_compute_optimal_5_76e23_equals_the_hand_computation():
    # Hoffmann et al. 2022, Approach 3: E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28
    E, A, B, alpha, beta = 1.69, 406.4, 410.7, 0.34, 0.28
    C = 5.76e23
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))      # (138.176 / 114.996)^(1/0.62) = 1.344711
    N = G * (C / 6) ** (beta / (alpha + beta))                # 1.344711 x (9.6e22)^0.451613 = 32.2e9
    D = C / (6 * N)
    L = E + A / N ** alpha + B / D ** beta
    assert G == pytest.approx(1.344711, rel=1e-6)
    assert N == pytest.approx(3.218986e10, rel=1e-6) and D == pytest.approx(2.982306e12, rel=1e-6)
    plan = compute_optimal(flops=5.76e23)
    assert plan.params == pytest.approx(N, rel=1e-12)
    assert plan.tokens == pytest.approx(D, rel=1e-12)
    assert plan.loss_nats == pytest.approx(L, rel=1e-12)
    assert 6 * plan.params * plan.tokens == pytest.approx(C, rel=1e-12)
    assert plan.fit == "chinchilla-approach3" and "arXiv:2203.15556" in plan.fit_source
    assert math.isnan(plan.cost_usd) and any("no hardware" in n for n in plan.notes)
    # 32B parameters is beyond the 70M-16B runs the fit was made on: labelled
    assert any(n.startswith("extrapolated: the chinchilla-approach3 fit") for n in plan.notes)


def test_the_epoch_refit_is_the_second_row():
    E, A, B, alpha, beta = 1.8172, 482.01, 2085.43, 0.3478, 0.3658
    C = 1e22
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    N = G * (C / 6) ** (beta / (alpha + beta))
    plan = compute_optimal(flops=C, fit="epoch-replication")
    assert plan.params == pytest.approx(N, rel=1e-12)
    assert plan.tokens_per_param == pytest.approx(C / (6 * N * N), rel=1e-12)
    assert 18 < plan.tokens_per_param < 22            # "about 20 tokens per parameter"
    assert "arXiv:2404.10102" in plan.fit_source


def test_dollars_to_flops_through_the_catalog_by_hand():
    h100 = find_hardware("H100 SXM")
    assert (h100["price_per_hour_usd"], h100["peak_fp16_flops"]) == (12.29, 9.894e14)
    # entered MFU 0.4: $1M / $12.29 per hour = 81,366.97 GPU-hours; x 3600 s x 9.894e14 x 0.4
    gpu_hours = 1e6 / 12.29
    flops = gpu_hours * 3600 * 9.894e14 * 0.4
    plan = compute_optimal(budget_usd=1e6, hardware="H100 SXM", mfu=0.4)
    assert plan.gpu_hours == pytest.approx(81366.965, rel=1e-8)
    assert plan.flops == pytest.approx(flops, rel=1e-12) == pytest.approx(1.159264e23, rel=1e-6)
    assert plan.flops_low == plan.flops_high == plan.flops and plan.mfu_source == "entered MFU 0.4"
    assert plan.devices == math.ceil(gpu_hours / (3 * 730))  # 38 GPUs finish within 3 months
    assert plan.wall_clock_days == pytest.approx(gpu_hours / 38 / 24)
    assert plan.cost_usd == 1e6
    # sourced MFU: the plan lands in 1e9-1e11 parameters, MFU 0.2-0.45, geometric middle 0.3
    sourced = compute_optimal(budget_usd=1e6, hardware="H100 SXM")
    assert 1e9 <= sourced.params < 1e11
    assert (sourced.mfu_low, sourced.mfu, sourced.mfu_high) == pytest.approx((0.2, math.sqrt(0.2 * 0.45), 0.45))
    assert sourced.flops == pytest.approx(gpu_hours * 3600 * 9.894e14 * math.sqrt(0.09), rel=1e-12)
    assert sourced.flops_low == pytest.approx(gpu_hours * 3600 * 9.894e14 * 0.2, rel=1e-12)
    assert sourced.flops_high == pytest.approx(gpu_hours * 3600 * 9.894e14 * 0.45, rel=1e-12)
    assert sourced.params_low < sourced.params < sourced.params_high
    assert sourced.loss_low_nats < sourced.loss_nats < sourced.loss_high_nats
    assert "PaLM" in sourced.mfu_source
    assert sourced.sentence().startswith("$1,000,000 on H100 SXM (81,400 GPU-hours at $12.3/h; 38 GPUs for 3 months)")


def test_flops_on_hardware_give_gpu_hours_and_cost_by_hand():
    plan = compute_optimal(flops=1e21, hardware="A100 80GB", mfu=0.25)
    a100 = find_hardware("A100 80GB")
    hours = 1e21 / (3600 * float(a100["peak_fp16_flops"]) * 0.25)
    assert plan.gpu_hours == pytest.approx(hours, rel=1e-12)
    assert plan.cost_usd == pytest.approx(hours * float(a100["price_per_hour_usd"]), rel=1e-12)


def test_serving_cost_by_hand_where_memory_binds_at_a_measured_concurrency():
    # a 1e22-FLOP Chinchilla model (N ~ 6.6e9) in bf16 on one H100 SXM (80 GB, 3350 GB/s, 9.894e14
    # FLOP/s, $12.29/h); a KV cache chosen so that 70 sequences of 512 + 256 tokens fill 90% of the
    # memory: c = 64 fits, the next concurrency the planner looks at (73, between 64 and 128) does not
    C = 1e22
    plan0 = compute_optimal(flops=C)
    N = plan0.params
    pb = 2 * N
    kv = (0.9 * 80 * 2**30 - pb) / (70 * (512 + 256))
    wl = GenerationWorkload(requests_per_day=1e6, prompt_tokens=512, output_tokens=256, target_utilization=0.6)
    plan = compute_optimal(flops=C, hardware="H100 SXM", mfu=0.3, serving=wl, kv_cache_bytes_per_token=kv)
    assert plan.serving_concurrency == 64 and plan.serving_binding_constraint == "memory"
    c, P, n_out, eff, peak, bw = 64, 512, 256, 0.4, 9.894e14, 3350e9
    # on a GPU the prefill efficiency is capped at the best published MLPerf share of int8 peak:
    # H100 SXM ResNet-50 offline, 88,714.3 images/s x 8.18e9 FLOPs / 1.9788e15 = 0.3667 < 0.4
    share = 88714.3 * 8.18e9 / 1.9788e15
    ttft_s = max(c * P * 2 * N / peak, (pb + c * P * kv) / bw) / min(eff, share)  # prefill
    tpot_s = max(c * 2 * N / peak, (pb + c * (P + n_out / 2) * kv) / bw) / eff  # decode (memory-bound)
    rate = c / (ttft_s + n_out * tpot_s)                                       # requests/s per instance
    cost = 12.29 / (rate * 0.6 * 3600 * n_out) * 1e6
    assert plan.serving_cost_per_1m_output_tokens_usd == pytest.approx(cost, rel=1e-9)
    assert "assumed 0.4 (nothing measured" in plan.serving_note and "optimistic" in plan.serving_note
    assert "prefill capped at 0.367" in plan.serving_note


def test_a_smaller_model_trained_longer_costs_less_to_serve():
    plan = compute_optimal(flops=5.76e23, hardware="H100 SXM")
    t = plan.trade_off.set_index("param_multiplier")
    assert t.loc[1.0, "loss_change_nats"] == 0.0
    assert (t.drop(index=1.0)["loss_change_nats"] > 0).all()        # the optimum is the lowest loss
    assert (t["tokens"] * t["params"] * 6).tolist() == pytest.approx([5.76e23] * 4)
    assert t.loc[0.5, "serving_cost_per_1m_output_tokens_usd"] < t.loc[1.0, "serving_cost_per_1m_output_tokens_usd"]
    # 2 x 32B parameters = 129 GB of bf16 weights: more than 0.9 x one 80 GiB GPU, so it is served
    # on the smallest H100 instance that holds it (2 GPUs, tensor parallel), and the note says so
    assert math.isfinite(t.loc[2.0, "serving_cost_per_1m_output_tokens_usd"])
    assert t.loc[2.0, "serving_cost_per_1m_output_tokens_usd"] > t.loc[1.0, "serving_cost_per_1m_output_tokens_usd"]
    note = t.loc[2.0, "serving_note"]
    assert "served on GCP a3-highgpu-2g (2 x H100 SXM, tensor parallel 2" in note and "all-reduces" in note


@pytest.mark.parametrize("kwargs, field", [
    ({}, "flops"),
    ({"flops": 1e21, "budget_usd": 1e3}, "flops"),
    ({"budget_usd": 1e3}, "hardware"),
    ({"flops": -1.0}, "flops"),
    ({"flops": 1e21, "fit": "kaplan"}, "fit"),
    ({"flops": 1e21, "hardware": "H100 SXM", "mfu": 1.5}, "mfu"),
    ({"flops": 1e21, "dtype": "int4"}, "dtype"),
    ({"budget_usd": 1e3, "hardware": "H1000"}, "hardware"),
])
def test_compute_optimal_bad_input_names_the_field(kwargs, field):
    with pytest.raises(ValidationError) as err:
        compute_optimal(**kwargs)
    assert err.value.field == field


def test_scaling_laws_table_is_sourced_and_validated(tmp_path):
    tab = reference.scaling_laws()
    assert tab["fit"].tolist() == ["chinchilla-approach3", "epoch-replication"]
    assert (tab["source"].str.len() > 20).all() and (tab["date"] != "").all()
    row = reference.scaling_law("chinchilla-approach3")
    assert (row["E"], row["A"], row["B"], row["alpha"], row["beta"]) == (1.69, 406.4, 410.7, 0.34, 0.28)
    bad = tab.copy()
    bad.loc[1, "beta"] = 1.5
    path = tmp_path / "laws.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ValidationError, match="alpha"):
        reference.scaling_laws(path)
    bad = tab.copy()
    bad.loc[1, "source"] = ""
    bad.to_csv(path, index=False)
    with pytest.raises(ValidationError) as err:
        reference.scaling_laws(path)
    assert err.value.field == "source"
    with pytest.raises(ValidationError, match="epoch-replication"):
        reference.scaling_law("chinchilla")


def test_planning_learning_does_not_import_torch():
    code = ("import sys, effplan.planning as p\n"
            "p.compute_optimal(flops=1e21, hardware='H100 SXM'); p.fit_learning_curve([1, 2, 4], [0.1, 0.2, 0.25])\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_plan_frame_has_every_field():
    plan = compute_optimal(budget_usd=5e4, hardware="L4")
    f = plan.to_frame()
    assert len(f) == 1 and {"params", "tokens", "loss_nats", "gpu_hours", "devices", "mfu",
                            "serving_cost_per_1m_output_tokens_usd", "tokens_per_param"} <= set(f.columns)
    assert isinstance(plan.trade_off, pd.DataFrame) and len(plan.trade_off) == 4
    html = plan._repr_html_()
    assert plan.sentence().split(":")[0].replace("$", "") in html.replace("$", "")
    assert "training_utilization" in html or "PaLM" in html
