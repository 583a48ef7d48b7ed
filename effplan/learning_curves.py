"""Learning curves with their price: what a model scores when trained on less (or more) data, and
what each training run cost.

``effplan.learning_curve(candidate, train_data, eval_data)`` (this module is named
``learning_curves``, not after the function, for the reason of ``measurement`` / ``measure``: see
docs/ARCHITECTURE.md) trains ``candidate`` on nested subsets
of ``train_data`` (``fractions`` of it), once per seed, and scores every run on ``eval_data`` with
:func:`effplan.evaluate` -- clean, under Gaussian input noise and on any shifted data sets -- and
records each run's measured training time and its cost. The result, :class:`LearningCurve`, holds a
tidy frame (:data:`LEARNING_CURVE_COLUMNS`), the runs (:data:`RUN_COLUMNS`), and fits the curves
(:func:`effplan.planning.fit_learning_curve`, :func:`effplan.planning.fit_generalization`).

How a run is made
-----------------
* Subsets are nested: per seed one ordering of the training items is drawn
  (``numpy.random.default_rng([seed, 11])``), stratified by label when the labels are one integer
  per item (inside each class a random order; classes interleaved by rank / class size, so every
  prefix holds each class in proportion); the subset of fraction ``f`` is the first
  ``max(1, round(f * n))`` items. A larger fraction contains every smaller one.
* The model is ``candidate.build_model()`` under ``torch.manual_seed(seed)`` (the global torch RNG
  is restored afterwards); with ``reinit=True`` (default) every submodule's ``reset_parameters``
  (or ``_reset_parameters``) is called, so a candidate whose ``model_fn`` loads trained weights
  (the built-in digits family) starts from a fresh seeded initialisation. A module that owns
  parameters and cannot reset them raises ``ValidationError('reinit')``: pass ``reinit=False`` with
  a ``model_fn`` that builds untrained weights.
* Training is the built-in digits recipe, :func:`effplan.examples.train_model` (Adam, mini-batches,
  a fixed number of epochs, the candidate's own loss): the same recipe at every fraction, so the
  cost of a run grows with its data. Its wall time (``time.perf_counter`` around the training loop,
  model building and evaluation excluded) is the run's measured ``train_s``; ``background_load``
  is the other processes' CPU use over it (cores, :class:`effplan.timing.LoadMonitor`), so a busy
  machine shows. One torch thread by default (``threads=1``), as the digits family trains.
* ``cost_usd = train_s / 3600 x price per hour`` of the hardware it ran on: this machine's row of
  :func:`effplan.load_catalog` (``include_this_machine=True``: a generic per-core estimate for an
  unknown CPU, labelled so), a catalog ``hardware=`` name, or an entered ``price_per_hour_usd``;
  ``LearningCurve.cost_source`` says which. NaN (never 0) without a price.
* Every run is evaluated with the same ``eval_seed``: the same noise draws and the same bootstrap
  resamples for every run (paired), 95% percentile-bootstrap intervals (``ci_low`` / ``ci_high``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import ValidationError
from .records.schema import number as _number

__all__ = ["learning_curve", "LearningCurve", "LEARNING_CURVE_COLUMNS", "RUN_COLUMNS"]

#: the tidy frame: column -> description (exact order)
LEARNING_CURVE_COLUMNS: dict[str, str] = {
    "fraction": "share of the training data the run was trained on",
    "items": "training items of the run (nested: a larger fraction contains every smaller one)",
    "seed": "seed of the run (subset order, initialisation, shuffling)",
    "condition": "'clean', 'noise-<sigma>' or a shifted data set's name (effplan.evaluate)",
    "metric": "metric name (accuracy, nll, ...)",
    "value": "the metric of the run's model on the held-out data under the condition",
    "ci_low": "lower end of the 95% bootstrap interval over held-out examples",
    "ci_high": "upper end of that interval",
    "train_s": "measured wall time of the run's training loop, s",
    "cost_usd": "train_s / 3600 x price per hour of the hardware (cost_source); NaN without a price",
    "higher_is_better": "True for accuracy-like metrics",
}
#: one row per training run
RUN_COLUMNS: dict[str, str] = {
    "fraction": LEARNING_CURVE_COLUMNS["fraction"],
    "items": LEARNING_CURVE_COLUMNS["items"],
    "seed": LEARNING_CURVE_COLUMNS["seed"],
    "epochs": "passes over the run's subset",
    "steps": "optimizer steps of the run",
    "train_s": LEARNING_CURVE_COLUMNS["train_s"],
    "train_items_per_s": "items x epochs / train_s",
    "background_load": "other processes' CPU use during the run, cores (NaN: unknown)",
    "cost_usd": LEARNING_CURVE_COLUMNS["cost_usd"],
}


def _as_tensor(a: Any, name: str) -> Any:
    import torch

    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    if isinstance(a, Mapping):
        return {k: _as_tensor(v, f"{name}[{k!r}]") for k, v in a.items()}
    if isinstance(a, tuple | list):
        return type(a)(_as_tensor(v, f"{name}[{i}]") for i, v in enumerate(a))
    raise ValidationError(name, f"expected a tensor or an array, got {type(a).__name__}")


def _pair(data: Any, name: str) -> tuple[Any, Any]:
    if not (isinstance(data, tuple | list) and len(data) == 2):
        raise ValidationError(name, "expected (inputs, labels): tensors or numpy arrays")
    x, y = _as_tensor(data[0], name), _as_tensor(data[1], name)
    from .models.candidates import tensor_leaves

    n = len(y)
    if n == 0 or any(len(t) != n for t in tensor_leaves(x)):
        raise ValidationError(name, f"inputs and labels need the same, non-zero number of items "
                              f"(labels: {n})")
    return x, y


def _nested_order(y: Any, seed: int) -> np.ndarray:
    """One ordering of the items; stratified by label when ``y`` holds one integer per item."""
    rng = np.random.default_rng([int(seed), 11])
    lab = y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)
    n = len(lab)
    if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
        return rng.permutation(n)
    key = np.empty(n)
    for c in np.unique(lab):
        idx = np.flatnonzero(lab == c)
        # rank inside the class (random order), spread over [0, 1): class c's k-th item sits at
        # (k + u) / n_c, so a prefix of the sorted keys holds every class in proportion
        key[idx[rng.permutation(len(idx))]] = (np.arange(len(idx)) + rng.random(len(idx))) / len(idx)
    return np.argsort(key, kind="stable")


def _reinit(model: Any) -> None:
    """Fresh (seeded) weights for every submodule that owns parameters."""
    unresettable = []
    for name, m in model.named_modules():
        reset = getattr(m, "reset_parameters", None) or getattr(m, "_reset_parameters", None)
        if callable(reset):
            reset()
        elif any(True for _ in m.parameters(recurse=False)):
            unresettable.append(name or type(m).__name__)
    if unresettable:
        raise ValidationError("reinit", f"module(s) {unresettable} own parameters but have no "
                              "reset_parameters(): pass reinit=False with a model_fn that builds "
                              "untrained weights")


def _price(hardware: str | None, price_per_hour_usd: float | None) -> tuple[str, float, str]:
    """(hardware name, USD per hour, source)."""
    from .refdata import catalog as _cat

    if price_per_hour_usd is not None:
        p = _number("price_per_hour_usd", price_per_hour_usd, lo=0, where="learning_curve")
        return hardware or "this machine", p, "entered"
    if hardware is not None:
        row = _cat.resolve_hardware(hardware, field="hardware")
        p = float(row["price_per_hour_usd"])
        src = f"catalog: {row['price_source']} ({row['price_date']})" if math.isfinite(p) else "no catalog price"
        return str(row["name"]), p, src
    row = _cat.this_machine_row()
    if row is None:
        return "this machine", math.nan, "this machine is not in the catalog: no price (give price_per_hour_usd=)"
    p = float(row.get("price_per_hour_usd", math.nan))
    return str(row["name"]), p, f"this machine, {row.get('price_source', '')}"


@dataclass(frozen=True, eq=False)
class LearningCurve:
    """Scores and cost of one candidate trained on nested fractions of its data (see the module
    docstring). ``frame``: :data:`LEARNING_CURVE_COLUMNS`; ``runs``: :data:`RUN_COLUMNS`;
    ``hardware`` / ``price_per_hour_usd`` / ``cost_source``: how ``cost_usd`` was priced;
    ``settings``: the inputs; ``notes``: what limits the figures."""

    candidate: str
    frame: pd.DataFrame
    runs: pd.DataFrame
    hardware: str
    price_per_hour_usd: float
    cost_source: str
    settings: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    @property
    def conditions(self) -> list[str]:
        return list(dict.fromkeys(self.frame["condition"]))

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(self.frame["metric"]))

    @property
    def train_items(self) -> int:
        """Items of the whole training set (fraction 1.0)."""
        return int(self.settings["train_items"])

    def _scores(self, metric: str, condition: str) -> pd.DataFrame:
        f = self.frame
        rows = f[(f["metric"] == metric) & (f["condition"] == condition)].sort_values(["items", "seed"])
        if rows.empty:
            raise ValidationError("metric", f"no {metric!r} under {condition!r}; the curve has metrics "
                                  f"{self.metrics} and conditions {self.conditions}", where="LearningCurve")
        return rows

    def _limit(self, metric: str, higher: bool) -> float | None:
        from .records.quality import METRIC_RANGES

        lo, hi = METRIC_RANGES.get(metric, (-np.inf, np.inf))
        bound = hi if higher else lo
        return float(bound) if math.isfinite(bound) else None

    def fit(self, metric: str = "accuracy", condition: str = "clean", *, n_bootstrap: int = 1000,
            seed: int = 0) -> Any:
        """:func:`effplan.planning.fit_learning_curve` of ``metric`` under ``condition`` against the
        items trained on (every seed a run; the asymptote bounded by the metric's range)."""
        from .planning.learning import fit_learning_curve

        r = self._scores(metric, condition)
        higher = bool(r["higher_is_better"].iloc[0])
        return fit_learning_curve(r["items"].to_numpy(float), r["value"].to_numpy(float), higher_is_better=higher,
                                  limit=self._limit(metric, higher), n_bootstrap=n_bootstrap, seed=seed,
                                  metric=metric, condition=condition)

    def generalization(self, metric: str = "accuracy", condition: str | None = None, *,
                       n_bootstrap: int = 1000, seed: int = 0) -> Any:
        """:func:`effplan.planning.fit_generalization`: the clean curve and ``condition``'s (default:
        the last condition evaluated, e.g. the strongest noise), paired run by run."""
        from .planning.learning import fit_generalization

        others = [c for c in self.conditions if c != "clean"]
        if condition is None:
            if not others:
                raise ValidationError("condition", "the curve has no condition besides 'clean'",
                                      where="LearningCurve")
            condition = others[-1]
        clean, shifted = self._scores(metric, "clean"), self._scores(metric, condition)
        higher = bool(clean["higher_is_better"].iloc[0])
        return fit_generalization(clean["items"].to_numpy(float), clean["value"].to_numpy(float),
                                  shifted["value"].to_numpy(float), condition=condition, higher_is_better=higher,
                                  metric=metric, limit=self._limit(metric, higher), n_bootstrap=n_bootstrap,
                                  seed=seed)

    def predictions(self, factor: float = 2.0, metric: str = "accuracy", *, n_bootstrap: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
        """Per condition: the runs' mean at the whole training set, the fitted curve there and at
        ``factor`` x the data with its interval, the fitted gain, the training cost of such a run
        (linear in the data, :meth:`cost_at`) and the fit's notes."""
        n0 = float(self.train_items)
        out = []
        for cond in self.conditions:
            fit = self.fit(metric, cond, n_bootstrap=n_bootstrap, seed=seed)
            p = fit.predict(factor * n0)
            runs = self._scores(metric, cond)
            out.append({"condition": cond, "items_measured": n0,
                        "measured": float(runs.loc[runs["items"] == runs["items"].max(), "value"].mean()),
                        "fitted": float(fit.value(n0)), "items": p.n, "predicted": p.value, "low": p.low,
                        "high": p.high, "gain": p.value - float(fit.value(n0)),
                        "run_cost_usd": float(self.cost_at(p.n)), "speculative": p.speculative,
                        "note": "; ".join([p.note, *fit.notes])})
        return pd.DataFrame(out)

    @property
    def cost_per_item_usd(self) -> float:
        """Training cost per item of data at this recipe: least squares through the origin of the
        runs' ``cost_usd`` on ``items`` (``sum(cost x items) / sum(items^2)``)."""
        r = self.runs
        return float((r["cost_usd"] * r["items"]).sum() / (r["items"] ** 2).sum())

    @property
    def seconds_per_item(self) -> float:
        """Training wall time per item of data, fitted as :attr:`cost_per_item_usd`."""
        r = self.runs
        return float((r["train_s"] * r["items"]).sum() / (r["items"] ** 2).sum())

    def cost_at(self, items: Any) -> np.ndarray:
        """Training cost of a run on ``items`` at this recipe and hardware: ``items x
        cost_per_item_usd`` (linear in the data, as the measured runs are; an extrapolation beyond
        them)."""
        return np.asarray(items, dtype=float) * self.cost_per_item_usd

    def training_workload(self, items: float, *, runs_per_quarter: float = 1.0, **kw: Any) -> Any:
        """:class:`effplan.TrainingWorkload` of a run on ``items`` with this curve's recipe
        (``epochs``), for :func:`effplan.plan` (``training=``)."""
        from .planning import TrainingWorkload

        return TrainingWorkload(runs_per_quarter=runs_per_quarter, items_per_epoch=float(items),
                                epochs=self.settings["epochs"], **kw)

    def __repr__(self) -> str:
        return (f"LearningCurve({self.candidate!r}: {len(self.runs)} runs, fractions "
                f"{sorted(set(self.runs['fraction']))}, {len(self.conditions)} conditions, "
                f"{self.runs['train_s'].sum():.3g} s of training)")


def learning_curve(candidate: Any, train_data: Any, eval_data: Any, *,
                   fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0), seeds: int | Sequence[int] = 3,
                   shifts: Mapping[str, Any] | None = None, noise: Sequence[float] | None = None,
                   metrics: Sequence[str] = ("accuracy", "nll"), epochs: int | None = None,
                   batch_size: int | None = None, learning_rate: float | None = None, reinit: bool = True,
                   hardware: str | None = None, price_per_hour_usd: float | None = None,
                   eval_seed: int = 0, n_bootstrap: int = 1000, threads: int = 1,
                   device: str = "cpu") -> LearningCurve:
    """Train ``candidate`` on nested ``fractions`` of ``train_data`` with each seed, evaluate every
    run on ``eval_data`` and price its training time (see the module docstring).

    ``train_data`` / ``eval_data``: ``(inputs, labels)`` tensors or arrays. ``seeds``: how many
    (0, 1, ...) or which. ``shifts`` / ``noise`` / ``metrics`` / ``eval_seed`` / ``n_bootstrap``: as
    :func:`effplan.evaluate` (``noise=None``: its default levels, ``()``: none). ``epochs``,
    ``batch_size``, ``learning_rate``: the recipe (default: the digits family's). ``hardware`` /
    ``price_per_hour_usd``: what a training hour costs (default: this machine in the catalog).
    """
    import torch

    from .models import examples as _ex
    from .models.candidates import Candidate
    from .bench.evaluation import DEFAULT_NOISE, evaluate
    from .bench.timing import LoadMonitor

    if not isinstance(candidate, Candidate):
        raise ValidationError("candidate", f"expected an effplan.Candidate, got {type(candidate).__name__}")
    if candidate.is_quantized:
        raise ValidationError("candidate", f"{candidate.name!r} is quantized ({candidate.dtype or 'tag'}): "
                              "it cannot be trained; take the learning curve of its float model")
    fr = [_number(f"fractions[{i}]", f, lo=0, lo_open=True, hi=1) for i, f in enumerate(fractions)]
    if not fr or sorted(set(fr)) != fr:
        raise ValidationError("fractions", f"give increasing, distinct fractions in (0, 1], got {list(fractions)}")
    if isinstance(seeds, bool):
        raise ValidationError("seeds", f"a count or a list of seeds, got {seeds!r}")
    seed_list = (list(range(int(_number("seeds", seeds, lo=1, integer=True)))) if not isinstance(seeds, Sequence)
                 else [int(_number(f"seeds[{i}]", s, lo=0, integer=True)) for i, s in enumerate(seeds)])
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise ValidationError("seeds", f"give at least one seed, each once, got {seeds!r}")
    ep = int(_number("epochs", _ex.EPOCHS if epochs is None else epochs, lo=1, integer=True))
    bs = int(_number("batch_size", _ex.BATCH_SIZE if batch_size is None else batch_size, lo=1, integer=True))
    lr = _number("learning_rate", _ex.LEARNING_RATE if learning_rate is None else learning_rate, lo=0, lo_open=True)
    th = int(_number("threads", threads, lo=1, integer=True))
    x, y = _pair(train_data, "train_data")
    eval_pair = _pair(eval_data, "eval_data")
    n = len(y)
    hw, price, price_src = _price(hardware, price_per_hour_usd)
    cost_source = (f"measured training time x {price:g} USD/h on {hw} ({price_src})" if math.isfinite(price)
                   else f"no price for {hw}: {price_src}")
    noise = DEFAULT_NOISE if noise is None else tuple(noise)
    monitor = LoadMonitor()
    runs, rows = [], []
    threads_before = torch.get_num_threads()
    try:
        torch.set_num_threads(th)
        for seed in seed_list:
            order = torch.as_tensor(_nested_order(y, seed))
            for f in fr:
                k = max(1, int(round(f * n)))
                idx = order[:k]
                xs, ys = _ex.take_rows(x, idx), y[idx]
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    model = candidate.build_model(device)
                    if reinit:
                        _reinit(model)
                xs, ys = _to(xs, device), ys.to(device)
                with torch.enable_grad():
                    snap = monitor.snapshot()
                    t0 = time.perf_counter()
                    _ex.train_model(model, xs, ys, shuffle_seed=seed + 1, epochs=ep, batch_size=bs,
                                    learning_rate=lr, loss_fn=candidate.loss)
                    train_s = time.perf_counter() - t0
                    load = monitor.since(snap)
                ev = evaluate({candidate.name: model}, eval_pair, metrics=list(metrics), shifts=shifts,
                              noise=noise, seed=eval_seed, n_bootstrap=n_bootstrap, device=device)
                cost = train_s / 3600.0 * price
                runs.append({"fraction": f, "items": k, "seed": seed, "epochs": ep, "steps": ep * math.ceil(k / bs),
                             "train_s": train_s, "train_items_per_s": k * ep / train_s, "background_load": load,
                             "cost_usd": cost})
                for r in ev.frame.to_dict(orient="records"):
                    rows.append({"fraction": f, "items": k, "seed": seed, "condition": r["condition"],
                                 "metric": r["metric"], "value": r["value"], "ci_low": r["ci_low"],
                                 "ci_high": r["ci_high"], "train_s": train_s, "cost_usd": cost,
                                 "higher_is_better": bool(r["higher_is_better"])})
                del model
    finally:
        torch.set_num_threads(threads_before)
    frame = pd.DataFrame(rows, columns=list(LEARNING_CURVE_COLUMNS))
    run_frame = pd.DataFrame(runs, columns=list(RUN_COLUMNS))
    notes = []
    if len(seed_list) == 1:
        notes.append("one seed: the fits have no interval (give seeds=3 or more)")
    busy = run_frame["background_load"].dropna()
    if len(busy) and float(busy.max()) >= 0.5:
        notes.append(f"the machine was busy during some runs (up to {busy.max():.2g} cores of other "
                     "processes): their train_s and cost are inflated")
    settings = {"fractions": fr, "seeds": seed_list, "epochs": ep, "batch_size": bs, "learning_rate": lr,
                "optimizer": "adam", "reinit": bool(reinit), "threads": th, "device": str(device),
                "eval_seed": int(eval_seed), "n_bootstrap": int(n_bootstrap), "noise": [float(s) for s in noise],
                "shifts": sorted(shifts or {}), "metrics": list(metrics), "train_items": n,
                "eval_items": len(eval_pair[1])}
    return LearningCurve(candidate=candidate.name, frame=frame, runs=run_frame, hardware=hw,
                         price_per_hour_usd=price, cost_source=cost_source, settings=settings,
                         notes=tuple(notes))


def _to(obj: Any, device: str) -> Any:
    """A tensor, or a tuple / list / dict of tensors, on ``device``."""
    if isinstance(obj, Mapping):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return type(obj)(_to(v, device) for v in obj)
    return obj.to(device)
