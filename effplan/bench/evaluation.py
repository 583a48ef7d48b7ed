"""Quality beside cost: evaluate candidates on held-out data, clean and under shift.

:func:`evaluate` runs every candidate on the held-out data you pass and reports several metrics
(:mod:`effplan.metrics`: accuracy, expected calibration error, negative log-likelihood, Brier
score, perplexity, or any :class:`~effplan.metrics.Metric` of your own) under several
conditions:

* ``clean``: the data as given;
* ``noise-<sigma>``: Gaussian input noise, ``x + sigma * N(0, 1)`` added to every floating
  input tensor as given (not clipped), at the two documented default levels
  :data:`DEFAULT_NOISE` = ``(0.1, 0.3)`` (in input units; the digits inputs are pixels scaled to
  ``[0, 1]``). The noise is drawn once per condition from ``seed`` and is identical for every
  candidate, so their numbers are paired;
* any shifted data set you pass by name (``shifts={"rotated": (x, y)}``).

The result is an :class:`Evaluation` whose tidy frame has one row per
candidate x metric x condition and the columns of :data:`EVALUATION_COLUMNS`:
``candidate, metric, condition, value, ci_low, ci_high, n, provenance, higher_is_better``, then
on every evaluated record the reproducibility columns :data:`EVALUATION_REPRO_COLUMNS` (seed,
versions, weights/config hashes of the model evaluated). ``provenance`` is ``measured`` for
evaluated rows and ``entered`` for hand-typed ones.

Confidence intervals (at ``confidence``, default 0.95; :mod:`effplan.records.intervals`): the
Wilson score interval for accuracy (never a zero width at 0 or 1), the bias-corrected bootstrap
of the debiased ECE (:mod:`effplan.records.calibration`; ``ece_binned``, the plug-in figure, has
none), the percentile bootstrap over examples for the others, with ``n_bootstrap`` resamples
(default 1000) drawn from ``seed`` once per condition and shared by every candidate and metric
(a paired bootstrap). Each noise level is drawn ``noise_draws`` times, each draw seeded from
``(seed, sigma, draw)`` alone; an example is resampled with all its draws, so the interval holds
the draw-to-draw spread. ``n_bootstrap=0`` gives NaN intervals. The same seed gives the same
frame; ``benchmarks/calibration.py`` measures the coverage.

Outputs (:mod:`effplan.bench.model_outputs`): ``outputs="auto"`` (default) reads rows that are
non-negative and sum to 1 as probabilities and anything else as logits (softmax applied), and
records the choice; a declared ``"logits"`` / ``"probs"`` the outputs contradict is a named error.
An object with a ``.logits`` attribute (Hugging Face) is unwrapped. Sequence outputs
``(batch, tokens, vocab)`` with labels ``(batch, tokens)`` are flattened to one row per token;
labels equal to ``ignore_index`` (``-100`` for padding) are skipped and any other label outside
``[0, classes)`` is a named error. The probabilities of every row are held in memory (rows x
classes, float64): for a large vocabulary evaluate a sample of the tokens.

A metric is named ``"<metric>"`` on clean data and ``"<metric>@<condition>"`` otherwise
(:func:`metric_key`) wherever one column per metric is needed (plan frames,
:func:`effplan.cheapest_meeting`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..devices.hardware import normalize_device
from ..errors import ValidationError
from ..models.candidates import Candidate, call_model, move_to, tensor_leaves
from ..models.data import gather_xy, map_tensors, slice_leaves
from ..records import metrics as _m
from ..records.intervals import bootstrap_values as _bootstrap_values  # noqa: F401  (benchmarks/evaluate.py)
from ..records.intervals import metric_interval as _interval
from ..records.intervals import resamples as _resamples
from ..records.quality import (CLEAN, EVALUATION_COLUMNS, EVALUATION_REPRO_COLUMNS, Evaluation, Predictions,
                               noise_condition)
from .model_outputs import check_labels, read_outputs

__all__ = ["evaluate", "score", "noise_seed", "data_sha256", "DEFAULT_NOISE", "DEFAULT_METRICS",
           "DEFAULT_BOOTSTRAP", "DEFAULT_NOISE_DRAWS", "OUTPUT_KINDS", "INTERVALS"]

#: the two default Gaussian input-noise levels (standard deviation, input units)
DEFAULT_NOISE: tuple[float, ...] = (0.1, 0.3)
#: the metrics reported by default (``ece`` is the debiased ECE)
DEFAULT_METRICS: tuple[str, ...] = ("accuracy", "ece", "nll", "brier")
DEFAULT_BOOTSTRAP = 1000
#: noise draws per level: the figure is over all of them (the draw-to-draw spread of one draw
#: was about half the interval's half-width on the digits data, enough to swap a ranking)
DEFAULT_NOISE_DRAWS = 2
#: how the outputs may be read (``auto``: probabilities when every row is >= 0 and sums to 1)
OUTPUT_KINDS = ("auto", "logits", "probs")
#: the interval of each metric (stored in ``Evaluation.settings``)
INTERVALS = {"accuracy": "Wilson score (examples as the count)",
             "ece": "debiased ECE: bias-corrected bootstrap (effplan.records.calibration)",
             "ece_binned": "none (biased upward; judge calibration on ece)",
             "other": "percentile bootstrap over examples (each with all its noise draws)"}


def noise_seed(seed: int, sigma: float, draw: int = 0) -> int:
    """The seed of noise draw ``draw`` at level ``sigma``: from ``(seed, sigma, draw)`` alone, so
    ``accuracy@noise-0.3`` is the same whatever other levels ``noise=`` lists, in any order."""
    key = int(round(float(sigma) * 1e9))   # sigma to 1e-9 input units
    return int(np.random.SeedSequence([int(seed), key, int(draw)]).generate_state(1, dtype=np.uint64)[0]
               % (2 ** 63 - 1))


def _add_noise(x: Any, sigma: float, seed: int) -> Any:
    import torch

    if not any(t.is_floating_point() for t in tensor_leaves(x)):
        raise ValidationError("noise", "Gaussian input noise needs floating inputs (these are "
                              "integer, e.g. token ids): pass noise=()")
    gen = torch.Generator().manual_seed(int(seed))

    def noisy(t: Any) -> Any:
        if not t.is_floating_point():
            return t
        return t + sigma * torch.randn(t.shape, generator=gen, dtype=torch.float32).to(t.dtype)

    return map_tensors(x, noisy)


def _probs(model: Any, candidate: Any, x: Any, y: Any, device: str, batch_size: int,
           outputs: str, ignore_index: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    import torch

    chunks = []
    n = int(y.shape[0])
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            out = call_model(model, move_to(slice_leaves(x, i, i + batch_size), device, candidate.dtype))
            if not isinstance(out, torch.Tensor) and hasattr(out, "logits"):
                out = out.logits
            if not isinstance(out, torch.Tensor):
                raise ValidationError("outputs", f"candidate {candidate.name!r} returned "
                                      f"{type(out).__name__}, not a tensor of logits/probabilities")
            chunks.append(out.detach().to("cpu", torch.float64))
    out = torch.cat(chunks)
    labels = y
    if out.ndim == 3 and labels.ndim == 2:          # (batch, tokens, vocab) sequence outputs
        out = out.reshape(-1, out.shape[-1])
        labels = labels.reshape(-1)
    if out.ndim != 2 or labels.ndim != 1 or out.shape[0] != labels.shape[0]:
        raise ValidationError("outputs", f"candidate {candidate.name!r}: outputs of shape "
                              f"{tuple(out.shape)} do not match labels of shape {tuple(y.shape)}")
    keep = check_labels(labels, int(out.shape[1]), candidate.name, ignore_index)
    out, labels = out[keep], labels[keep]
    p, how = read_outputs(out, outputs, candidate.name)
    return p.numpy(), labels.numpy(), how


# ----------------------------------------------------------------------------- bootstrap

# ----------------------------------------------------------------------------- evaluate

def _candidates(candidates: Any) -> list[Any]:
    if isinstance(candidates, Candidate):
        return [candidates]
    if isinstance(candidates, Mapping):  # name -> nn.Module
        out = []
        for name, model in candidates.items():
            out.append(Candidate(str(name), lambda m=model: m, lambda b: None))
        return out
    cands = list(candidates)
    if not cands or not all(isinstance(c, Candidate) for c in cands):
        raise ValidationError("candidates", "expected a Candidate, a list of Candidates or a mapping "
                              "name -> nn.Module")
    names = [c.name for c in cands]
    if len(set(names)) != len(names):
        raise ValidationError("candidates", f"candidate names must be unique, got {names}")
    return cands


def _check_args(metrics: Any, noise: Any, seed: Any, n_bootstrap: Any, confidence: Any, batch_size: Any,
                outputs: Any, noise_draws: Any, ignore_index: Any) -> tuple[list[_m.Metric], tuple[float, ...]]:
    if isinstance(metrics, Mapping):
        mlist = [_m.resolve_metric(v, name=k) for k, v in metrics.items()]
    elif isinstance(metrics, str | _m.Metric):
        mlist = [_m.resolve_metric(metrics)]
    else:
        mlist = [_m.resolve_metric(s) for s in metrics]
    if not mlist or len({m.name for m in mlist}) != len(mlist):
        raise ValidationError("metrics", f"give at least one metric, each once; got {[m.name for m in mlist]}")
    noise = tuple(noise or ())
    for s in noise:
        if isinstance(s, bool) or not isinstance(s, int | float) or not (s > 0 and math.isfinite(s)):
            raise ValidationError("noise", f"noise levels are positive standard deviations, got {s!r}")
    for name, v, lo in (("seed", seed, 0), ("n_bootstrap", n_bootstrap, 0), ("noise_draws", noise_draws, 1)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise ValidationError(name, f"must be an integer >= {lo}, got {v!r}")
    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise ValidationError("confidence", f"must be in (0, 1), got {confidence!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size", f"must be a positive integer, got {batch_size!r}")
    if outputs not in OUTPUT_KINDS:
        raise ValidationError("outputs", f"must be one of {OUTPUT_KINDS}, got {outputs!r}")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise ValidationError("ignore_index", f"must be an integer label to skip (e.g. -100) or None, "
                              f"got {ignore_index!r}")
    return mlist, tuple(float(s) for s in noise)


def data_sha256(x: Any, y: Any) -> str:
    """SHA-256 of the evaluated inputs (every tensor leaf, in order) and labels: the card's
    "which data" fingerprint."""
    import hashlib

    h = hashlib.sha256()
    for t in [*tensor_leaves(x), y]:
        a = t.detach().cpu().contiguous().numpy()
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _describe(conditions: list[tuple[str, list[Any], Any]], noise: tuple[float, ...], draws: int,
              description: str) -> dict[str, Any]:
    """What was evaluated: the data's description and hash, and what each condition is."""
    x, y = conditions[0][1][0], conditions[0][2]
    what = {CLEAN: "the held-out data as given"}
    for sigma in noise:
        what[noise_condition(sigma)] = (f"Gaussian input noise x + {sigma:g} * N(0, 1) on every floating input "
                                        f"(not clipped), {draws} draw(s) seeded from (seed, sigma, draw)")
    for name, xs, sy in conditions:
        if name not in what:
            what[name] = f"a shifted data set given by the user ({int(sy.shape[0])} rows, sha256 " \
                         f"{data_sha256(xs[0], sy)[:16]})"
    return {"data": {"description": description, "sha256": data_sha256(x, y), "rows": int(y.shape[0])},
            "condition_descriptions": what}


def _conditions(data: Any, shifts: Mapping[str, Any] | None, noise: tuple[float, ...],
                seed: int, draws: int) -> list[tuple[str, list[Any], Any]]:
    """``[(condition, [inputs of each draw], labels)]``: clean, each noise level (``draws``
    draws seeded from (seed, sigma, draw)), each shifted data set."""
    x, y = gather_xy(data, "data")
    conditions: list[tuple[str, list[Any], Any]] = [(CLEAN, [x], y)]
    for sigma in noise:
        conditions.append((noise_condition(sigma), [_add_noise(x, sigma, noise_seed(seed, sigma, d))
                                                    for d in range(draws)], y))
    for name, shifted in (shifts or {}).items():
        if not isinstance(name, str) or not name or "@" in name or name == CLEAN or name.startswith("noise-"):
            raise ValidationError("shifts", f"a shift name must be a non-empty string without '@', not "
                                  f"'clean' nor 'noise-...'; got {name!r}")
        sx, sy = gather_xy(shifted, f"shifts[{name!r}]")
        conditions.append((name, [sx], sy))
    names = [c[0] for c in conditions]
    if len(set(names)) != len(names):
        raise ValidationError("noise", f"conditions must be distinct, got {names}")
    return conditions


def evaluate(candidates: Any, data: Any, metrics: Sequence[Any] | Mapping[str, Any] = DEFAULT_METRICS,
             shifts: Mapping[str, Any] | None = None, noise: Sequence[float] = DEFAULT_NOISE,
             seed: int = 0, n_bootstrap: int = DEFAULT_BOOTSTRAP, *, confidence: float = 0.95,
             n_bins: int = _m.DEFAULT_ECE_BINS, batch_size: int = 256, device: Any = "cpu",
             outputs: str = "auto", noise_draws: int = DEFAULT_NOISE_DRAWS,
             ignore_index: int | None = None, data_description: str = "") -> Evaluation:
    """Evaluate each candidate on held-out ``data`` under each condition; see the module docstring.

    Parameters
    ----------
    candidates: a :class:`~effplan.Candidate`, a list of them, or a mapping name -> ``nn.Module``.
    data: held-out ``(inputs, labels)`` (tensors or arrays) or a DataLoader of such batches
        (gathered into memory once).
    metrics: built-in names (:data:`effplan.metrics.BUILTIN_METRICS`), :class:`~effplan.metrics.Metric`
        objects, or a mapping name -> ``(fn(probs, labels), higher_is_better)``.
    shifts: name -> shifted held-out data (same forms as ``data``), each one more condition.
    noise: Gaussian input-noise standard deviations (default :data:`DEFAULT_NOISE` = 0.1, 0.3);
        ``()`` for none. noise_draws: draws per level (default :data:`DEFAULT_NOISE_DRAWS`),
        each seeded from ``(seed, sigma, draw)`` alone; the figure is over all draws and its
        interval resamples examples with all their draws.
    seed: seeds the noise and the bootstrap. n_bootstrap: resamples for the CI (0: none).
    confidence: CI level. n_bins: ECE bins. batch_size: evaluation batch size (recorded: an
        int8 model's figures can depend on it).
    device: torch device (a candidate's own ``device`` wins, e.g. int8 pinned to CPU).
    outputs: ``"auto"`` (default: rows that are non-negative and sum to 1 are probabilities,
        anything else logits, softmax applied; recorded per candidate in
        ``settings["outputs_read_as"]``), ``"logits"`` or ``"probs"`` (a declaration that the
        outputs contradict is a named error).
    ignore_index: a label value to skip (``-100`` for padded sequence labels); without it a
        label outside ``[0, classes)`` is a named error.
    data_description: what the held-out data is (kept in ``settings["data"]`` beside its
        SHA-256, and shown on compute cards).
    """
    from .reproducibility import reproducibility_fields

    cands = _candidates(candidates)
    mlist, noise = _check_args(metrics, noise, seed, n_bootstrap, confidence, batch_size, outputs,
                               noise_draws, ignore_index)
    n_bins = _m.check_bins(n_bins)
    conditions = _conditions(data, shifts, noise, int(seed), int(noise_draws))
    default_device = normalize_device(device, check_available=True)
    rows: list[dict[str, Any]] = []
    repro: dict[str, dict[str, Any]] = {}
    # one index matrix per condition, shared by every candidate and metric (paired bootstrap)
    boot: dict[str, list[np.ndarray]] = {}
    boot_values: dict[tuple[str, str, str], np.ndarray] = {}
    preds: dict[tuple[str, str], Predictions] = {}
    read_as: dict[str, str] = {}
    devices: dict[str, str] = {}
    clipped: dict[str, dict[str, int]] = {}
    for cand in cands:
        dev = normalize_device(cand.device, check_available=True) if cand.device else default_device
        devices[cand.name] = str(dev)
        model = cand.build_model(dev)
        model.eval()
        repro[cand.name] = reproducibility_fields(model, seed=int(seed))
        for k, (cond, xs, cy) in enumerate(conditions):
            parts = []
            for cx in xs:
                p, lab, how = _probs(model, cand, cx, cy, dev, batch_size,
                                     read_as.get(cand.name, outputs), ignore_index)
                read_as.setdefault(cand.name, how)   # read the same way under every condition
                parts.append(_m.validate(p, lab, where=f"evaluate({cand.name!r}, {cond})"))
            p = np.concatenate([q for q, _ in parts])
            lab = np.concatenate([yy for _, yy in parts])
            n = len(parts[0][1])
            if cond not in boot:
                rng = np.random.default_rng([int(seed), k])
                boot[cond] = _resamples(rng, n, int(n_bootstrap), len(parts)) if n_bootstrap else []
            first = parts[0][0]
            preds[(cand.name, cond)] = Predictions(labels=parts[0][1].copy(), predicted=first.argmax(axis=1),
                                                   p_predicted=first.max(axis=1),
                                                   p_true=first[np.arange(n), parts[0][1]])
            clipped.setdefault(cand.name, {})[cond] = _m.clipped_rows(p, lab)
            for metric in mlist:
                value, lo, hi, vals = _interval(metric, p, lab, boot[cond], n, n_bins, confidence)
                if len(vals):
                    boot_values[(cand.name, metric.name, cond)] = vals
                rows.append({"candidate": cand.name, "metric": metric.name, "condition": cond,
                             "value": float(value), "ci_low": lo, "ci_high": hi, "n": float(n),
                             "provenance": "measured", "higher_is_better": bool(metric.higher_is_better),
                             **repro[cand.name]})
        del model
    frame = pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS) + list(EVALUATION_REPRO_COLUMNS))
    frame["higher_is_better"] = frame["higher_is_better"].astype(bool)
    settings = {"metrics": [m.name for m in mlist], "conditions": [c[0] for c in conditions],
                "noise": list(noise), "noise_kind": "gaussian, x + sigma * N(0, 1), not clipped",
                "noise_draws": int(noise_draws), "noise_seeding": "each draw from (seed, sigma, draw) alone",
                "seed": int(seed), "n_bootstrap": int(n_bootstrap), "confidence": confidence,
                "intervals": INTERVALS, "ece_bins": n_bins, "ece_binning": "top-label, equal-width, (b/n, (b+1)/n]",
                "outputs": outputs, "outputs_read_as": read_as, "ignore_index": ignore_index,
                "batch_size": int(batch_size), "device": devices,
                "nll_clip_eps": _m.NLL_EPS, "nll_clipped_rows": clipped,
                "brier": "multi-class sum over classes, in [0, 2] (2x sklearn's binary brier_score_loss; "
                         "that one is the metric 'brier_binary')",
                **_describe(conditions, noise, int(noise_draws), str(data_description or ""))}
    return Evaluation(frame=frame, reproducibility=repro, settings=settings, bootstrap=boot_values,
                      predictions=preds)


def score(probs: Any, labels: Any, metrics: Sequence[Any] = DEFAULT_METRICS, *, n_bootstrap: int = DEFAULT_BOOTSTRAP,
          seed: int = 0, confidence: float = 0.95, n_bins: int = _m.DEFAULT_ECE_BINS) -> pd.DataFrame:
    """The metrics of :func:`evaluate` with their intervals on probabilities you already have
    (N x classes rows summing to 1, integer labels): ``metric, value, ci_low, ci_high, n``.
    Same intervals and resampling as :func:`evaluate` (what ``benchmarks/calibration.py``
    measures the coverage of)."""
    p, y = _m.validate(probs, labels, where="score")
    mlist, _ = _check_args(metrics, (), seed, n_bootstrap, confidence, 1, "auto", 1, None)
    n_bins = _m.check_bins(n_bins)
    resamples = _resamples(np.random.default_rng([int(seed), 0]), len(y), int(n_bootstrap)) if n_bootstrap else []
    rows = []
    for metric in mlist:
        value, lo, hi, _vals = _interval(metric, p, y, resamples, len(y), n_bins, confidence)
        rows.append({"metric": metric.name, "value": float(value), "ci_low": lo, "ci_high": hi, "n": len(y)})
    return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high", "n"])
