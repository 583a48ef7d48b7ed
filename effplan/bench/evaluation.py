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

Confidence intervals: percentile bootstrap over examples with ``n_bootstrap`` resamples
(default 1000) at ``confidence`` (0.95); the resamples are drawn from ``seed`` once per
condition and shared by every candidate and metric (a paired bootstrap). ``n_bootstrap=0``
gives NaN intervals. The same seed gives the same frame.

Outputs: the model's output is taken as logits (``outputs="logits"``, softmax applied) or as
probabilities (``outputs="probs"``); an object with a ``.logits`` attribute (Hugging Face) is
unwrapped. Sequence outputs ``(batch, tokens, vocab)`` with labels ``(batch, tokens)`` are
flattened to one row per token (labels < 0 are ignored, the ``-100`` convention), which is how
perplexity of a language model is computed. The probabilities of every row are held in memory
(rows x classes, float64): for a large vocabulary evaluate a sample of the tokens.

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
from ..records.quality import (CLEAN, EVALUATION_COLUMNS, EVALUATION_REPRO_COLUMNS, Evaluation, Predictions,
                               noise_condition)

__all__ = ["evaluate", "DEFAULT_NOISE", "DEFAULT_METRICS", "DEFAULT_BOOTSTRAP"]

#: the two default Gaussian input-noise levels (standard deviation, input units)
DEFAULT_NOISE: tuple[float, ...] = (0.1, 0.3)
#: the metrics reported by default
DEFAULT_METRICS: tuple[str, ...] = ("accuracy", "ece", "nll", "brier")
DEFAULT_BOOTSTRAP = 1000


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
           outputs: str) -> tuple[np.ndarray, np.ndarray]:
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
    keep = labels >= 0
    out, labels = out[keep], labels[keep]
    p = torch.softmax(out, dim=1) if outputs == "logits" else out
    return p.numpy(), labels.numpy()


# ----------------------------------------------------------------------------- bootstrap

def _bootstrap_values(metric: _m.Metric, p: np.ndarray, y: np.ndarray, conf: np.ndarray,
                      corr: np.ndarray, idx: np.ndarray, n_bins: int) -> np.ndarray:
    if metric.name == "ece" and metric is _m.BUILTIN_METRICS["ece"]:
        return _m.ece_resampled(conf, corr, idx, n_bins)
    if metric.per_example is not None:
        terms = metric.per_example(p, y)
        vals = terms[idx].mean(axis=1)
        return metric.transform(vals) if metric.transform is not None else vals
    return np.array([float(metric.fn(p[r], y[r])) for r in idx])


def _resamples(rng: np.random.Generator, n: int, n_bootstrap: int) -> list[np.ndarray]:
    """Bootstrap index rows in chunks of at most ~4M indices (memory stays bounded)."""
    per = max(1, min(n_bootstrap, 4_000_000 // max(n, 1)))
    out, left = [], n_bootstrap
    while left > 0:
        k = min(per, left)
        out.append(rng.integers(0, n, size=(k, n)))
        left -= k
    return out


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


def evaluate(candidates: Any, data: Any, metrics: Sequence[Any] | Mapping[str, Any] = DEFAULT_METRICS,
             shifts: Mapping[str, Any] | None = None, noise: Sequence[float] = DEFAULT_NOISE,
             seed: int = 0, n_bootstrap: int = DEFAULT_BOOTSTRAP, *, confidence: float = 0.95,
             n_bins: int = _m.DEFAULT_ECE_BINS, batch_size: int = 256, device: Any = "cpu",
             outputs: str = "logits") -> Evaluation:
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
        ``()`` for none.
    seed: seeds the noise and the bootstrap. n_bootstrap: resamples for the CI (0: none).
    confidence: CI level. n_bins: ECE bins. batch_size: evaluation batch size.
    device: torch device (a candidate's own ``device`` wins, e.g. int8 pinned to CPU).
    outputs: ``"logits"`` (softmax applied) or ``"probs"``.
    """
    from .reproducibility import reproducibility_fields

    cands = _candidates(candidates)
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
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValidationError("seed", f"must be a non-negative integer, got {seed!r}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 0:
        raise ValidationError("n_bootstrap", f"must be a non-negative integer, got {n_bootstrap!r}")
    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise ValidationError("confidence", f"must be in (0, 1), got {confidence!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size", f"must be a positive integer, got {batch_size!r}")
    if outputs not in ("logits", "probs"):
        raise ValidationError("outputs", f"must be 'logits' or 'probs', got {outputs!r}")
    n_bins = _m.check_bins(n_bins)

    x, y = gather_xy(data, "data")
    conditions: list[tuple[str, Any, Any]] = [(CLEAN, x, y)]
    for k, sigma in enumerate(noise):
        conditions.append((noise_condition(float(sigma)), _add_noise(x, float(sigma), seed * 1009 + k + 1), y))
    for name, shifted in (shifts or {}).items():
        if not isinstance(name, str) or not name or "@" in name or name == CLEAN or name.startswith("noise-"):
            raise ValidationError("shifts", f"a shift name must be a non-empty string without '@', not "
                                  f"'clean' nor 'noise-...'; got {name!r}")
        sx, sy = gather_xy(shifted, f"shifts[{name!r}]")
        conditions.append((name, sx, sy))
    names = [c[0] for c in conditions]
    if len(set(names)) != len(names):
        raise ValidationError("noise", f"conditions must be distinct, got {names}")

    default_device = normalize_device(device, check_available=True)
    lo_q, hi_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    rows: list[dict[str, Any]] = []
    repro: dict[str, dict[str, Any]] = {}
    # one index matrix per condition, shared by every candidate and metric (paired bootstrap)
    boot: dict[str, list[np.ndarray]] = {}
    boot_values: dict[tuple[str, str, str], np.ndarray] = {}
    preds: dict[tuple[str, str], Predictions] = {}
    for cand in cands:
        dev = normalize_device(cand.device, check_available=True) if cand.device else default_device
        model = cand.build_model(dev)
        model.eval()
        repro[cand.name] = reproducibility_fields(model, seed=int(seed))
        for k, (cond, cx, cy) in enumerate(conditions):
            p, lab = _probs(model, cand, cx, cy, dev, batch_size, outputs)
            p, lab = _m.validate(p, lab, where=f"evaluate({cand.name!r}, {cond})")
            n = len(lab)
            if cond not in boot:
                rng = np.random.default_rng([int(seed), k])
                boot[cond] = _resamples(rng, n, int(n_bootstrap)) if n_bootstrap else []
            conf, corr = p.max(axis=1), _m.correct(p, lab)
            top = p.argmax(axis=1)
            preds[(cand.name, cond)] = Predictions(labels=lab.copy(), predicted=top, p_predicted=conf,
                                                   p_true=p[np.arange(n), lab])
            for metric in mlist:
                if metric.name == "ece" and metric is _m.BUILTIN_METRICS["ece"]:
                    value = _m.expected_calibration_error(p, lab, n_bins=n_bins)
                else:
                    value = float(metric.fn(p, lab))
                lo = hi = math.nan
                if boot[cond]:
                    vals = np.concatenate([_bootstrap_values(metric, p, lab, conf, corr, idx, n_bins)
                                           for idx in boot[cond]])
                    lo, hi = (float(v) for v in np.quantile(vals, [lo_q, hi_q]))
                    boot_values[(cand.name, metric.name, cond)] = vals
                rows.append({"candidate": cand.name, "metric": metric.name, "condition": cond,
                             "value": float(value), "ci_low": lo, "ci_high": hi, "n": float(n),
                             "provenance": "measured", "higher_is_better": bool(metric.higher_is_better),
                             **repro[cand.name]})
        del model
    frame = pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS) + list(EVALUATION_REPRO_COLUMNS))
    frame["higher_is_better"] = frame["higher_is_better"].astype(bool)
    settings = {"metrics": [m.name for m in mlist], "conditions": names,
                "noise": [float(s) for s in noise], "noise_kind": "gaussian, x + sigma * N(0, 1), not clipped",
                "seed": int(seed), "n_bootstrap": int(n_bootstrap), "confidence": confidence,
                "ece_bins": n_bins, "ece_binning": "top-label, equal-width, (b/n, (b+1)/n]",
                "outputs": outputs}
    return Evaluation(frame=frame, reproducibility=repro, settings=settings, bootstrap=boot_values,
                      predictions=preds)
