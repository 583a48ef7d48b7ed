"""effplan.compare: one ranked row per variant, the "vs baseline" figures against hand values and
against the evaluation / failure-mode catalog they come from, and failures kept as rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import effplan
from effplan.models.candidates import Candidate
from effplan.compare import TABLE_COLUMNS, Comparison

# short, labelled timing: the test checks the bookkeeping, not how fast anything is
QUICK = dict(energy_window_s=0.02, idle_s=0.02, time_budget_s=0.02, passes=1, retries=0, isolate=False)


def _mlp_candidate(name: str = "mlp") -> Candidate:
    def model_fn():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))

    def inputs(batch_size):
        return torch.randn(batch_size, 16, generator=torch.Generator().manual_seed(1))

    return Candidate(name, model_fn, inputs)  # not tagged: compare tags it "baseline"


def _heldout():
    """64 examples labelled by the baseline itself, then 16 labels moved on by one class: the
    baseline is right on 48 of 64."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(64, 16, generator=gen)
    with torch.no_grad():
        y = _mlp_candidate().model_fn()(x).argmax(1)
    y[:16] = (y[:16] + 1) % 4
    return x, y


@pytest.fixture(scope="module")
def comparison():
    return effplan.compare(_mlp_candidate(), ["int8-weight", "bf16", "prune-30", "layers-half"], data=_heldout(),
                           batch_sizes=(1, 4), measure_options=QUICK, allow_unstable=True, n_bootstrap=200)


@pytest.mark.slow
def test_one_ranked_row_per_variant(comparison):
    t = comparison.table
    assert isinstance(comparison, Comparison)
    assert list(t.columns[:len(TABLE_COLUMNS)]) == TABLE_COLUMNS
    assert sorted(t["candidate"]) == ["mlp", "mlp-bf16", "mlp-int8-weight", "mlp-layers-half", "mlp-prune-30"]
    assert t["rank"].tolist() == [1, 2, 3, 4, 5]
    last = t.iloc[-1]
    assert (last["candidate"], last["status"]) == ("mlp-layers-half", "infeasible")
    assert "no stack of repeated blocks" in last["why"]
    planned = t[t["status"] == "ok"]
    assert len(planned) >= 1
    costs = planned["quarter_cost_usd"].tolist()
    assert costs == sorted(costs) and all(math.isfinite(c) for c in costs)  # cheapest next quarter first
    base = t[t["is_baseline"]].iloc[0]
    assert base["candidate"] == "mlp" and base["recipe"] == "baseline"
    assert (base["speed_x"], base["memory_x"], base["quality_change"]) == (1.0, 1.0, 0.0)
    if math.isfinite(base["quarter_cost_usd"]):
        assert base["cost_change_usd"] == 0.0
    lines = comparison.vs_baseline()
    assert len(lines) == 4 and lines[-1].startswith("mlp-layers-half: infeasible -- no stack")


@pytest.mark.slow
def test_vs_baseline_figures_by_hand_and_from_their_sources(comparison):
    t = comparison.table.set_index("candidate")
    # weights as stored, measured: bf16 halves every parameter; int8 weight-only keeps 2004 bytes
    # of Linear weights (see test_slim) + 68 float32 biases, of 6656 + 272; prune-30 keeps 972 of
    # 1732 float32 parameters
    assert t.loc["mlp-bf16", "memory_x"] == 0.5
    assert t.loc["mlp-int8-weight", "memory_x"] == pytest.approx((2004 + 272) / (6656 + 272))
    assert t.loc["mlp-prune-30", "memory_x"] == pytest.approx(972 / 1732)
    assert t.loc["mlp", "weights_mib"] == pytest.approx((6656 + 272) / 2**20)
    assert t.loc["mlp-int8-weight", "dtype"] == "int8-weight" and t.loc["mlp-bf16", "dtype"] == "bfloat16"
    ev, fm = comparison.evaluation, comparison.failure_modes
    assert ev.value("mlp", "accuracy") == 48 / 64
    rows = comparison.measurements.to_frame()
    for name in ("mlp", "mlp-bf16", "mlp-int8-weight", "mlp-prune-30"):
        assert t.loc[name, "accuracy"] == ev.value(name, "accuracy") == t.loc[name, "quality"]
        assert t.loc[name, "ece@noise-0.3"] == ev.value(name, "ece@noise-0.3")
        # the measured rows carry the evaluated accuracy as their quality (for notebooks 02-04)
        assert set(rows.loc[rows["candidate"] == name, "quality"]) == {ev.value(name, "accuracy")}
        p = rows[(rows["candidate"] == name) & (rows["batch_size"] == 4)].iloc[0]
        b = rows[(rows["candidate"] == "mlp") & (rows["batch_size"] == 4)].iloc[0]
        assert t.loc[name, "speed_x"] == pytest.approx(b["latency_p50_ms"] / p["latency_p50_ms"])
        assert t.loc[name, "reference_batch"] == 4
    vs = ev.versus("mlp").set_index(["candidate", "metric", "condition"])
    for name in ("mlp-bf16", "mlp-int8-weight", "mlp-prune-30"):
        v = vs.loc[(name, "accuracy", "clean")]
        assert t.loc[name, "quality_change"] == v["change"]
        assert (t.loc[name, "quality_change_ci_low"], t.loc[name, "quality_change_ci_high"]) == (
            v["change_ci_low"], v["change_ci_high"])
        f = fm.flips[(fm.flips["variant"] == name) & (fm.flips["condition"] == "clean")].iloc[0]
        assert (t.loc[name, "flips"], t.loc[name, "flip_rate"]) == (f["flips"], f["flip_rate"])
        # accuracy change = (fixes - flips) / n, example by example
        assert v["change"] == pytest.approx((f["fixes"] - f["flips"]) / 64)
    planned = t[np.isfinite(t["quarter_cost_usd"].astype(float))]
    base_cost = t.loc["mlp", "quarter_cost_usd"]
    if math.isfinite(base_cost):
        for name, r in planned.iterrows():
            assert r["cost_change_usd"] == pytest.approx(r["quarter_cost_usd"] - base_cost)
            assert r["cost_change_pct"] == pytest.approx(r["cost_change_usd"] / base_cost)
    assert set(fm.flips["condition"]) == {"clean", "noise-0.1", "noise-0.3"}


def test_a_variant_that_fails_is_an_error_row_and_the_rest_goes_on():
    def broken():
        class Broken(nn.Module):
            def forward(self, x):
                raise RuntimeError("no kernel for this")

        return Broken()

    good = effplan.slim(_mlp_candidate(), ["bf16"], device="cpu")
    bad = Candidate("mlp-broken", broken, lambda b: torch.ones(b, 16))
    with pytest.warns(effplan.EffplanWarning, match="mlp-broken: evaluation failed"):
        c = effplan.compare(_mlp_candidate(), data=_heldout(), variants=good + [bad], batch_sizes=(2,),
                            measure_options=QUICK, allow_unstable=True, n_bootstrap=0)
    t = c.table.set_index("candidate")
    assert t.loc["mlp-broken", "status"] == "error"
    assert "RuntimeError: no kernel for this" in t.loc["mlp-broken", "why"]
    assert t.loc["mlp-broken", "rank"] == len(t)
    assert t.loc["mlp-bf16", "status"] in ("ok", "misses targets")
    assert [x.name for x in c.candidates] == ["mlp", "mlp-bf16"]


@pytest.mark.slow
def test_a_generative_baseline_is_compared_per_token():
    """A tiny untrained decoder: TPOT is the latency, perplexity the quality (lower is better)."""
    from effplan.decoders import DecoderConfig, VOCAB_SIZE, _build
    from effplan.generation import GenerationCandidate

    cfg = DecoderConfig(d_model=16, heads=2, layers=2, context=32, train_context=8)

    def model_fn():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return _build(cfg).eval()

    base = GenerationCandidate("dec", model_fn, vocab_size=VOCAB_SIZE)
    ids = torch.randint(0, VOCAB_SIZE, (8, 9), generator=torch.Generator().manual_seed(0))
    c = effplan.compare(base, ["int8-dynamic", "layers-half"], data=(ids[:, :-1], ids[:, 1:]), batch_sizes=(1,),
                        measure_options=dict(QUICK, prompt_tokens=(4,), output_tokens=2), allow_unstable=True,
                        n_bootstrap=0)
    t = c.table.set_index("candidate")
    assert sorted(t.index) == ["dec", "dec-int8-dynamic", "dec-layers-half"]
    assert set(t["quality_metric"]) == {"perplexity"}
    assert t.loc["dec", "perplexity"] == c.evaluation.value("dec", "perplexity")
    assert t.loc["dec-int8-dynamic", "dtype"] == "qint8"
    rows = c.measurements.to_frame().set_index("candidate")
    assert t.loc["dec-layers-half", "latency_p50_ms"] == rows.loc["dec-layers-half", "tpot_p50_ms"]
    assert set(c.failure_modes.flips["condition"]) == {"clean"}  # token ids: no input noise
    assert c.plan is not None and math.isfinite(t.loc["dec", "quarter_cost_usd"])  # planned per token
    # the evaluated perplexity is each candidate's quality on its measured rows
    assert rows.loc["dec-layers-half", "perplexity"] == c.evaluation.value("dec-layers-half", "perplexity")
    assert c.failure_modes.flips["n"].tolist() == [64, 64]       # 8 windows x 8 next tokens


@pytest.mark.slow
def test_the_readme_slim_example_runs():
    """The README's "Slim variants" example, as written (digits, distillation included)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("### Slim variants", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - our own README
    c = ns["c"]
    assert len(c.team_table()) == 1 + 7 and len(c.vs_baseline()) == 7
    t = c.table.set_index("candidate")
    assert t.loc["digits-mlp-layers-half", "status"] == "infeasible"
    assert t.loc["digits-mlp-distill", "recipe"] == "distill"
