"""Built-in example candidates, trained and scored on real data that ships with scikit-learn.

:func:`digits_candidates` trains a small model family on scikit-learn's ``load_digits``
(1,797 8x8 handwritten digits, bundled with the package: nothing is downloaded) and scores each
member on a held-out, seeded, stratified 25% split:

* ``digits-mlp`` (tag ``baseline``): 64 -> 256 -> 256 -> 10 MLP.
* ``digits-mlp-slim`` (``slim``): the same shape at half width, 64 -> 128 -> 128 -> 10.
* ``digits-mlp-student`` (``distilled``): 64 -> 64 -> 10, trained by knowledge distillation
  from the baseline (Hinton et al.: ``T^2 * KL(softmax(s/T) || softmax(t/T))`` at temperature
  ``T = 4`` mixed 50/50 with cross-entropy on the labels).
* ``digits-mlp-int8`` (``quantized``): :func:`effplan.slim` of the baseline with torchao's int8
  dynamic recipe (``int8-dynamic``: int8 weights of every ``nn.Linear``, activations quantized
  per call; dtype label ``qint8``), tagged ``recipe:int8-dynamic`` and ``variant-of:digits-mlp``.
  Without torchao it is the labelled legacy fallback ``int8-dynamic-legacy``
  (``torch.ao.quantization.quantize_dynamic``, deprecated by PyTorch) with one warning
  (:func:`int8_recipe`). Pinned to ``cpu``, where its accuracy was computed.

``quality`` is the real held-out accuracy of each member; :func:`digits_eval_data` returns that
held-out split for :func:`effplan.evaluate` (calibration, noise robustness) and
:func:`digits_train_data` the training split (for :func:`effplan.learning_curve`); the training
recipe is :func:`train_model`. Training takes a few seconds of CPU
once per seed and process (``functools.lru_cache``); trained weights live in memory only. The
global torch RNG, thread count and grad mode are left as they were.

:func:`transformer_candidates` is an untrained pure-PyTorch transformer text-classifier family
(``nn.TransformerEncoder``) at two sizes, for sequence workloads; its ``quality`` is ``None``.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .candidates import Candidate
from .slimming import distillation_loss  # noqa: F401 - the KD loss of every built-in student (its home: slimming)

DIGITS_FEATURES = 64
DIGITS_CLASSES = 10
#: Hidden widths of the digits family (the student is the small distilled one).
DIGITS_WIDTHS = {"digits-mlp": (256, 256), "digits-mlp-slim": (128, 128), "digits-mlp-student": (64,)}
KD_TEMPERATURE = 4.0
KD_ALPHA = 0.5
#: how the built-in families are trained: epochs, batch size, Adam learning rate
EPOCHS = 25
BATCH_SIZE = 64
LEARNING_RATE = 3e-3


def _mlp(hidden: tuple[int, ...]) -> Any:
    from torch import nn

    layers: list[nn.Module] = []
    width = DIGITS_FEATURES
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, DIGITS_CLASSES))
    return nn.Sequential(*layers)


def int8_recipe() -> str:
    """The slim recipe of the built-in int8 candidates (digits and decoders): ``int8-dynamic``
    (torchao) when torchao is installed, else the labelled legacy fallback
    ``int8-dynamic-legacy`` (``torch.ao.quantization.quantize_dynamic``, deprecated by PyTorch)
    with one :class:`~effplan.errors.SlimWarning` per process."""
    from .slimming import torchao_status

    status = torchao_status()
    if status.available:
        return "int8-dynamic"
    _warn_legacy(status.reason)
    return "int8-dynamic-legacy"


@lru_cache(maxsize=1)
def _warn_legacy(reason: str) -> None:
    from ..errors import SlimWarning

    warnings.warn(f"effplan.examples: {reason}; the built-in int8 candidates use the LEGACY fallback "
                  "torch.ao.quantization.quantize_dynamic (deprecated by PyTorch, removal announced)",
                  SlimWarning, stacklevel=3)


def _quantize(model: Any) -> Any:
    """``model`` (in place where the recipe allows) after the built-in int8 recipe."""
    from .slimming import apply_recipe

    return apply_recipe(int8_recipe(), model)


@dataclass(frozen=True)
class _DigitsFamily:
    """Trained weights (in memory) and held-out data of one seed."""

    state: dict[str, dict[str, Any]]
    accuracy: dict[str, float]
    x_test: Any  # float32 tensor (n, 64), pixel values scaled to [0, 1]
    y_test: Any  # int64 tensor (n,)


def _accuracy(model: Any, x: Any, y: Any) -> float:
    import torch

    with torch.inference_mode():
        return float((model(x).argmax(dim=1) == y).float().mean().item())


def take_rows(obj: Any, idx: Any) -> Any:
    """Rows ``idx`` of a tensor, or of every tensor in a tuple / list / dict of them."""
    if isinstance(obj, dict):
        return {k: take_rows(v, idx) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return type(obj)(take_rows(v, idx) for v in obj)
    return obj[idx]


def train_model(model: Any, x: Any, y: Any, *, shuffle_seed: int, epochs: int = EPOCHS,
                batch_size: int = BATCH_SIZE, learning_rate: float = LEARNING_RATE, loss_fn: Any = None,
                teacher: Any = None) -> Any:
    """The training recipe of the built-in digits family: ``epochs`` passes of Adam
    (``learning_rate``) over shuffled mini-batches of ``batch_size`` (the order drawn from
    ``shuffle_seed``), loss ``loss_fn(outputs, targets)`` (default cross-entropy of the logits) and,
    with a ``teacher``, knowledge distillation on top (:func:`distillation_loss`). ``x`` is a tensor
    or a tuple / dict of tensors (first dimension = items), ``y`` a tensor. Returns the model in eval
    mode. Used by :func:`digits_candidates` and :func:`effplan.learning_curve`."""
    import torch
    import torch.nn.functional as F

    from .candidates import call_model

    loss_fn = F.cross_entropy if loss_fn is None else loss_fn
    gen = torch.Generator().manual_seed(int(shuffle_seed))
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    n = len(y)
    for _ in range(int(epochs)):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            xb = take_rows(x, idx)
            logits = call_model(model, xb)
            loss = loss_fn(logits, y[idx])
            if teacher is not None:
                with torch.no_grad():
                    t_logits = call_model(teacher, xb)
                loss = distillation_loss(logits, t_logits, loss, temperature=KD_TEMPERATURE,
                                         alpha=KD_ALPHA)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def _digits_split(seed: int) -> tuple[Any, Any, Any, Any]:
    """(x_train, y_train, x_test, y_test) of ``seed``: a stratified 75/25 split of load_digits,
    pixels scaled to [0, 1] (float32), labels int64."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=0.25, random_state=seed, stratify=data.target)
    return (torch.tensor(x_tr / 16.0, dtype=torch.float32), torch.tensor(y_tr, dtype=torch.int64),
            torch.tensor(x_te / 16.0, dtype=torch.float32), torch.tensor(y_te, dtype=torch.int64))


@lru_cache(maxsize=4)
def _digits_baseline(seed: int) -> tuple[dict[str, Any], Any]:
    """The baseline's trained weights and the torch RNG state after training it (the family
    trains the others from there, so training the baseline alone gives the same weights)."""
    import torch

    x_train, y_train, _x, _y = _digits_split(seed)
    threads = torch.get_num_threads()
    try:
        # One thread: these layers are too small to gain from more, and on a busy machine
        # OpenMP threads waiting on each other make training many times slower.
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(seed)
            model = train_model(_mlp(DIGITS_WIDTHS["digits-mlp"]), x_train, y_train, shuffle_seed=seed + 1)
            rng = torch.get_rng_state()
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, rng


@lru_cache(maxsize=4)
def _digits_family(seed: int) -> _DigitsFamily:
    import torch

    x_train, y_train, x_test, y_test = _digits_split(seed)

    def train(model: Any, teacher: Any = None) -> Any:
        return train_model(model, x_train, y_train, shuffle_seed=seed + 1, teacher=teacher)

    state: dict[str, dict[str, Any]] = {}
    accuracy: dict[str, float] = {}
    base_state, rng = _digits_baseline(seed)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)   # as in _digits_baseline
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            baseline = _mlp(DIGITS_WIDTHS["digits-mlp"])   # built first: its init draws no more
            baseline.load_state_dict(base_state)
            torch.set_rng_state(rng)   # where training the baseline left it
            slim = train(_mlp(DIGITS_WIDTHS["digits-mlp-slim"]))
            student = train(_mlp(DIGITS_WIDTHS["digits-mlp-student"]), teacher=baseline)
    finally:
        torch.set_num_threads(threads)
    for name, model in (("digits-mlp", baseline), ("digits-mlp-slim", slim),
                        ("digits-mlp-student", student)):
        state[name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        accuracy[name] = _accuracy(model, x_test, y_test)
    accuracy["digits-mlp-int8"] = _accuracy(_quantize(copy.deepcopy(baseline)), x_test, y_test)
    return _DigitsFamily(state=state, accuracy=accuracy, x_test=x_test, y_test=y_test)


def _digits_model_fn(fam: _DigitsFamily, name: str) -> Any:
    # the trained weights travel WITH the function (a worker process gets them by value and does
    # not train the family again)
    def model_fn() -> Any:
        model = _mlp(DIGITS_WIDTHS[name])
        model.load_state_dict(fam.state[name])
        model.eval()
        return model

    model_fn.__qualname__ = f"digits_model_fn[{name}]"
    return model_fn


def digits_baseline(seed: int = 0) -> Candidate:
    """The baseline of :func:`digits_candidates` alone (``digits-mlp``, tagged ``baseline``), with
    the same weights, without training the rest of the family (notebook 01 slims it)."""
    from functools import partial

    state, _rng = _digits_baseline(int(seed))
    _x_train, _y_train, x_test, y_test = _digits_split(int(seed))
    fam = _DigitsFamily(state={"digits-mlp": state}, accuracy={}, x_test=x_test, y_test=y_test)
    model = _digits_model_fn(fam, "digits-mlp")
    return Candidate("digits-mlp", model, partial(_digits_batch, x_test), tags=("baseline",),
                     quality=_accuracy(model(), x_test, y_test), quality_metric="accuracy",
                     target_fn=partial(_digits_batch, y_test), seed=int(seed))


def _digits_batch(data: Any, batch_size: int) -> Any:
    import torch

    idx = torch.arange(batch_size) % len(data)
    return data[idx].clone()


def digits_candidates(seed: int = 0) -> list[Candidate]:
    """The trained digits family (baseline, slim, distilled student, int8) with real accuracy.

    Inputs of a batch are held-out digit images, cycled when ``batch_size`` exceeds the 450
    held-out images; training-mode targets are their labels (cross-entropy loss).
    """
    from functools import partial

    fam = _digits_family(int(seed))
    # the held-out tensors are bound by value, so a worker process needs no retraining
    x_fn = partial(_digits_batch, fam.x_test)
    y_fn = partial(_digits_batch, fam.y_test)
    specs = (("digits-mlp", ("baseline",)), ("digits-mlp-slim", ("slim",)),
             ("digits-mlp-student", ("distilled",)))
    cands = [Candidate(name, _digits_model_fn(fam, name), x_fn, tags=tags, quality=fam.accuracy[name],
                       quality_metric="accuracy", target_fn=y_fn, seed=int(seed))
             for name, tags in specs]
    return cands + [_int8_variant(cands[0], "digits-mlp-int8", quality=fam.accuracy["digits-mlp-int8"])]


def _int8_variant(baseline: Any, name: str, **values: Any) -> Any:
    """The built-in int8 member: :func:`effplan.slim` of the baseline with :func:`int8_recipe`,
    named ``name``, pinned to the CPU (where its quality was computed; the legacy fallback has CPU
    kernels only), with its quality figure."""
    from dataclasses import replace

    from .slimming import slim

    variant = slim(baseline, [int8_recipe()], device="cpu", check=False)[0]
    return replace(variant, name=name, device="cpu", **values)


def digits_eval_data(seed: int = 0) -> tuple[Any, Any]:
    """The held-out digits split of ``seed`` as ``(x, y)``: float32 (450, 64) pixels in [0, 1]
    and int64 (450,) labels -- the data :func:`digits_candidates` were scored on, never trained
    on. Pass it to :func:`effplan.evaluate`. Copies: changing them changes nothing here.
    """
    _, _, x, y = _digits_split(int(seed))   # the same split the family holds, without training it
    return x, y


def digits_train_data(seed: int = 0) -> tuple[Any, Any]:
    """The digits training split of ``seed`` as ``(x, y)``: float32 (1347, 64) pixels in [0, 1] and
    int64 (1347,) labels -- what :func:`digits_candidates` were trained on, disjoint from
    :func:`digits_eval_data` (never evaluate on it). For :func:`effplan.learning_curve` and
    ``effplan.slim(baseline, ["distill"], data=digits_train_data())``."""
    x, y, _, _ = _digits_split(int(seed))
    return x, y


# --------------------------------------------------------------------------- transformers
#: (d_model, layers, heads, feed-forward width) of the two transformer sizes.
TRANSFORMER_SIZES = {"transformer-small": (128, 2, 4, 512), "transformer-base": (256, 4, 8, 1024)}


def _transformer_classifier(vocab_size: int, seq_len: int, num_classes: int, d_model: int,
                            layers: int, heads: int, ff: int) -> Any:
    import torch
    from torch import nn

    class TransformerClassifier(nn.Module):
        """Token ids (batch, seq_len) -> class logits (batch, num_classes); mean-pooled encoder."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab_size, d_model)
            self.pos = nn.Parameter(torch.zeros(1, seq_len, d_model))
            layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=ff, dropout=0.1,
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, num_classes)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            h = self.embed(tokens) * math.sqrt(d_model) + self.pos[:, : tokens.shape[1]]
            return self.head(self.norm(self.encoder(h)).mean(dim=1))

    return TransformerClassifier()


def transformer_candidates(seq_len: int = 128, *, vocab_size: int = 8000, num_classes: int = 2,
                           seed: int = 0) -> list[Candidate]:
    """An untrained transformer text classifier at two sizes (``quality=None``).

    Inputs are seeded random token ids of shape ``(batch_size, seq_len)`` (int64); training-mode
    targets are seeded random class ids. The model is built with a fixed seed, so two calls of
    ``model_fn`` give identical weights.
    """
    import torch

    from ..errors import ValidationError

    for field_name, value in (("seq_len", seq_len), ("vocab_size", vocab_size),
                              ("num_classes", num_classes)):
        if not isinstance(value, int) or value < 1:
            raise ValidationError(field_name, f"must be a positive integer, got {value!r}",
                                  where="transformer_candidates")

    def tokens(batch_size: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.randint(0, vocab_size, (batch_size, seq_len), generator=gen)

    def labels(batch_size: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed + 1)
        return torch.randint(0, num_classes, (batch_size,), generator=gen)

    def model_fn_for(size: str) -> Any:
        def model_fn() -> Any:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return _transformer_classifier(vocab_size, seq_len, num_classes,
                                               *TRANSFORMER_SIZES[size])
        return model_fn

    return [Candidate(size, model_fn_for(size), tokens, tags=(tag,), quality=None,
                      target_fn=labels)
            for size, tag in (("transformer-small", "slim"), ("transformer-base", "baseline"))]
