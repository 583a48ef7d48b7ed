"""Built-in decoder-only language models, trained for real in seconds on text that ships offline.

:func:`decoder_candidates` returns a small family of pure-PyTorch causal language models for
:func:`effplan.measure` with ``mode="generation"``:

* ``decoder-base`` (tag ``baseline``): :data:`BASE_CONFIG` layers of pre-norm attention + MLP.
* ``decoder-slim`` (``slim``): the same width with half the layers, trained the same way.
* ``decoder-student`` (``distilled``): the slim shape trained by knowledge distillation from the
  baseline (``T^2 * KL(softmax(s/T) || softmax(t/T))`` at ``T = 2`` mixed 50/50 with the
  next-token cross-entropy).
* ``decoder-int8`` (``quantized``): :func:`effplan.slim` of the baseline with the built-in int8
  recipe (:func:`effplan.examples.int8_recipe`: torchao ``int8-dynamic``, dtype label ``qint8``;
  the labelled legacy ``torch.ao.quantization.quantize_dynamic`` fallback without torchao), int8
  weights of every ``nn.Linear``; pinned to ``cpu``, where its perplexity was computed.

Text and tokens
---------------
The corpus is the docstrings of a fixed list of Python standard-library modules
(:data:`CORPUS_MODULES`), gathered with :mod:`inspect` from the running interpreter: nothing is
downloaded. Tokens are UTF-8 bytes (vocabulary 256), so no tokenizer is needed. Docstrings are
split into documents; every 10th document (a fixed, seeded-free rule) is held out. Held-out
**perplexity** (``exp`` of the mean next-byte cross-entropy over held-out windows) is each
member's quality figure: LOWER is better. The text depends on the Python version, so
perplexities are comparable within one interpreter version.

Training is seeded and deterministic on CPU (one thread, forked RNG; the caller's torch RNG,
thread count and grad mode are left as they were), takes seconds, and is done once per
(seed, config, steps) and process (``functools.lru_cache``; trained weights live in memory only).

The generation protocol (see :mod:`effplan.generation`)
--------------------------------------------------------
:class:`TinyDecoder` implements ``prefill(input_ids) -> cache`` and
``step(token, cache) -> (logits, cache)``. The cache is a tuple with one ``(k, v)`` pair per
layer, each ``(batch, heads, tokens, head_dim)``, and the last-position logits of the prefill.
``step`` never modifies a cache in place (it concatenates), so a cache can be reused.

FLOPs (2 x MACs, as :mod:`effplan.flops` counts them) of one decode step per sequence, with
``d = d_model``, ``L`` layers, ``V = 256`` and ``T`` tokens of context including the new one::

    L * (24 * d**2 + 4 * T * d) + 2 * d * V

(q, k, v and output projections ``8 d^2``, MLP ``d -> 4d -> d`` ``16 d^2``, attention
``QK^T`` and ``AV`` ``4 T d``, language-model head ``2 d V``). See :func:`decode_flops_per_token`.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from ..errors import ValidationError
from .examples import _int8_variant, _quantize, distillation_loss  # one int8 / KD recipe for every built-in family

__all__ = ["DecoderConfig", "BASE_CONFIG", "TinyDecoder", "decoder_candidates", "corpus_bytes",
           "decode_flops_per_token", "prefill_flops_per_token", "perplexity", "CORPUS_MODULES"]

VOCAB_SIZE = 256  # UTF-8 bytes
#: Standard-library modules whose docstrings form the corpus (present in every CPython >= 3.11).
CORPUS_MODULES = ("string", "textwrap", "json", "csv", "collections", "functools", "itertools",
                  "pathlib", "argparse", "dataclasses", "datetime", "statistics", "fractions",
                  "decimal", "heapq", "bisect", "calendar", "shutil", "logging", "random",
                  "difflib", "email.message", "urllib.parse", "contextlib", "enum", "typing",
                  "inspect", "zipfile", "tarfile", "configparser")
HELD_OUT_EVERY = 10  # every 10th document is held out
KD_TEMPERATURE = 2.0
KD_ALPHA = 0.5


@dataclass(frozen=True)
class DecoderConfig:
    """Shape and training of one decoder.

    d_model: width; heads: attention heads (``d_model % heads == 0``); layers: blocks;
    context: longest sequence (learned position embedding); train_steps / batch / lr: Adam
    training on random windows of ``context`` bytes.
    """

    d_model: int = 64
    heads: int = 4
    layers: int = 4
    context: int = 1024
    train_context: int = 64
    train_steps: int = 200
    batch: int = 16
    lr: float = 3e-3

    def __post_init__(self) -> None:
        for name in ("d_model", "heads", "layers", "context", "train_context", "train_steps", "batch"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValidationError(name, f"must be a positive integer, got {v!r}", where="DecoderConfig")
        if self.d_model % self.heads:
            raise ValidationError("heads", f"d_model={self.d_model} is not divisible by heads={self.heads}",
                                  where="DecoderConfig")
        if self.train_context > self.context:
            raise ValidationError("train_context", "must be <= context", where="DecoderConfig")
        if not self.lr > 0:
            raise ValidationError("lr", f"must be > 0, got {self.lr!r}", where="DecoderConfig")


BASE_CONFIG = DecoderConfig()


def decode_flops_per_token(cfg: DecoderConfig, context_tokens: int) -> int:
    """Hand formula: FLOPs (2 x MACs) of one decode step per sequence at ``context_tokens``
    tokens of context (the new token included)."""
    d, T = cfg.d_model, context_tokens
    return cfg.layers * (24 * d * d + 4 * T * d) + 2 * d * VOCAB_SIZE


def prefill_flops_per_token(cfg: DecoderConfig, prompt_tokens: int) -> float:
    """Hand formula: FLOPs per prompt token of a prefill of ``prompt_tokens`` tokens (dense
    attention over the full ``P x P`` score matrix, as the counter counts it; the LM head on the
    last position only)."""
    d, P = cfg.d_model, prompt_tokens
    return cfg.layers * (24 * d * d + 4 * P * d) + 2 * d * VOCAB_SIZE / P


# ----------------------------------------------------------------------------------- model
def _build(cfg: DecoderConfig) -> Any:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(cfg.d_model)
            self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
            self.proj = nn.Linear(cfg.d_model, cfg.d_model)
            self.ln2 = nn.LayerNorm(cfg.d_model)
            self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model)
            self.out = nn.Linear(4 * cfg.d_model, cfg.d_model)

        def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None
                    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
            b, n, d = x.shape
            h = cfg.heads
            q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
            if past is not None:
                k = torch.cat([past[0], k], dim=2)
                v = torch.cat([past[1], v], dim=2)
            # causal within a prefill; a one-token step attends to the whole cache
            a = F.scaled_dot_product_attention(q, k, v, is_causal=past is None and n > 1)
            x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
            x = x + self.out(F.gelu(self.fc(self.ln2(x))))
            return x, (k, v)

    class Decoder(TinyDecoder, nn.Module):
        def __init__(self) -> None:
            nn.Module.__init__(self)
            self.config = cfg
            self.embed = nn.Embedding(VOCAB_SIZE, cfg.d_model)
            self.pos = nn.Embedding(cfg.context, cfg.d_model)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.layers))
            self.ln_f = nn.LayerNorm(cfg.d_model)
            self.head = nn.Linear(cfg.d_model, VOCAB_SIZE, bias=False)

        def _run(self, ids: torch.Tensor, cache: tuple | None, last_only: bool) -> tuple:
            start = 0 if cache is None else cache[0][0].shape[2]
            if start + ids.shape[1] > cfg.context:
                raise ValidationError("input_ids", f"{start + ids.shape[1]} tokens exceed the "
                                      f"decoder's context of {cfg.context}", where="TinyDecoder")
            pos = torch.arange(start, start + ids.shape[1], device=ids.device)
            x = self.embed(ids) + self.pos(pos)
            new = []
            for i, blk in enumerate(self.blocks):
                x, kv = blk(x, None if cache is None else cache[i])
                new.append(kv)
            x = self.ln_f(x[:, -1:] if last_only else x)
            return self.head(x), tuple(new)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            """Logits of every position, ``(batch, tokens, 256)`` (training, perplexity)."""
            return self._run(input_ids, None, last_only=False)[0]

        def prefill(self, input_ids: torch.Tensor) -> tuple:
            logits, kv = self._run(input_ids, None, last_only=True)
            return kv + (logits[:, -1],)

        def step(self, token: torch.Tensor, cache: tuple) -> tuple[torch.Tensor, tuple]:
            logits, kv = self._run(token.reshape(-1, 1), cache[:-1], last_only=True)
            return logits[:, -1], kv + (logits[:, -1],)

    return Decoder()


class TinyDecoder:
    """Marker base of the built-in decoders (``nn.Module``s implementing the generation
    protocol: ``prefill(input_ids) -> cache``, ``step(token, cache) -> (logits, cache)``;
    ``forward(input_ids)`` gives the logits of every position)."""

    config: DecoderConfig


# ------------------------------------------------------------------------------------ data
def corpus_bytes() -> tuple[bytes, bytes]:
    """(train, held-out) UTF-8 bytes of the standard-library docstring corpus."""
    import importlib

    docs: list[str] = []
    seen: set[int] = set()
    for mod_name in CORPUS_MODULES:
        mod = importlib.import_module(mod_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            members = sorted(vars(mod).items())
        objs = [mod] + [obj for _, obj in members
                        if (inspect.isclass(obj) or inspect.isfunction(obj))
                        and getattr(obj, "__module__", None) == mod.__name__]
        for obj in objs:
            with warnings.catch_warnings():  # typing.io / typing.re announce their removal
                warnings.simplefilter("ignore", DeprecationWarning)
                doc = inspect.getdoc(obj)
            if doc and id(doc) not in seen and len(doc) > 40:
                seen.add(id(doc))
                docs.append(doc)
    train = "\n\n".join(d for i, d in enumerate(docs) if i % HELD_OUT_EVERY)
    held = "\n\n".join(d for i, d in enumerate(docs) if not i % HELD_OUT_EVERY)
    return train.encode("utf-8"), held.encode("utf-8")


def _tensor(data: bytes) -> Any:
    import torch

    return torch.frombuffer(bytearray(data), dtype=torch.uint8).to(torch.int64)


def perplexity(model: Any, data: Any, window: int = 64, max_windows: int = 256) -> float:
    """Held-out perplexity: ``exp`` of the mean next-byte cross-entropy over consecutive
    non-overlapping windows of ``window + 1`` bytes of ``data`` (a 1-D int64 tensor)."""
    import torch
    import torch.nn.functional as F

    n = min((len(data) - 1) // window, max_windows)
    if n < 1:
        raise ValidationError("data", f"needs more than {window} tokens", where="perplexity")
    x = torch.stack([data[i * window:(i + 1) * window] for i in range(n)])
    y = torch.stack([data[i * window + 1:(i + 1) * window + 1] for i in range(n)])
    with torch.inference_mode():
        losses = [F.cross_entropy(model(x[i:i + 32]).reshape(-1, VOCAB_SIZE), y[i:i + 32].reshape(-1),
                                  reduction="sum") for i in range(0, n, 32)]
    return float(math.exp(float(sum(losses)) / y.numel()))




@dataclass(frozen=True)
class _Family:
    configs: dict[str, DecoderConfig]
    state: dict[str, dict[str, Any]]
    perplexity: dict[str, float]


@lru_cache(maxsize=4)
def _family(seed: int, base: DecoderConfig) -> _Family:
    import torch
    import torch.nn.functional as F

    train_b, held_b = corpus_bytes()
    train, held = _tensor(train_b), _tensor(held_b)
    slim = replace(base, layers=max(1, base.layers // 2))
    w = base.train_context

    def fit(cfg: DecoderConfig, teacher: Any = None) -> Any:
        model = _build(cfg)
        gen = torch.Generator().manual_seed(seed + 1)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        model.train()
        for _ in range(cfg.train_steps):
            starts = torch.randint(0, len(train) - w - 1, (cfg.batch,), generator=gen)
            x = torch.stack([train[s:s + w] for s in starts.tolist()])
            y = torch.stack([train[s + 1:s + w + 1] for s in starts.tolist()])
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), y.reshape(-1))
            if teacher is not None:
                with torch.no_grad():
                    t = teacher(x)
                loss = distillation_loss(logits, t, loss, temperature=KD_TEMPERATURE, alpha=KD_ALPHA)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return model.eval()

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # small layers: more threads only wait on each other
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(seed)
            m_base = fit(base)
            torch.manual_seed(seed + 2)
            m_slim = fit(slim)
            torch.manual_seed(seed + 2)  # the student starts where the slim model started
            m_student = fit(slim, teacher=m_base)
        ppl = {"decoder-base": perplexity(m_base, held, w), "decoder-slim": perplexity(m_slim, held, w),
               "decoder-student": perplexity(m_student, held, w),
               "decoder-int8": perplexity(_quantize(copy.deepcopy(m_base)), held, w)}
    finally:
        torch.set_num_threads(threads)
    state = {name: {k: v.detach().clone() for k, v in m.state_dict().items()}
             for name, m in (("decoder-base", m_base), ("decoder-slim", m_slim),
                             ("decoder-student", m_student))}
    configs = {"decoder-base": base, "decoder-slim": slim, "decoder-student": slim, "decoder-int8": base}
    return _Family(configs=configs, state=state, perplexity=ppl)


def _model_fn(seed: int, base: DecoderConfig, name: str) -> Any:
    # the trained weights are bound by value (as the digits family does), so a worker process
    # that builds the model (effplan.measure isolates every point) does not retrain the family
    fam = _family(seed, base)
    cfg, state = fam.configs[name], fam.state[name]

    def model_fn() -> Any:
        model = _build(cfg)
        model.load_state_dict(state)
        model.eval()
        return model

    model_fn.__qualname__ = f"decoder_model_fn[{name}]"
    return model_fn


def decoder_candidates(seed: int = 0, config: DecoderConfig = BASE_CONFIG) -> list[Any]:
    """The trained decoder family as :class:`effplan.generation.GenerationCandidate` s, each with
    its real held-out ``perplexity`` (lower is better)."""
    from .generative import GenerationCandidate

    if not isinstance(config, DecoderConfig):
        raise ValidationError("config", f"must be a DecoderConfig, got {type(config).__name__}",
                              where="decoder_candidates")
    fam = _family(int(seed), config)
    specs = (("decoder-base", ("baseline",)), ("decoder-slim", ("slim",)),
             ("decoder-student", ("distilled",)))
    cands = [GenerationCandidate(name, _model_fn(int(seed), config, name), vocab_size=VOCAB_SIZE,
                                 tags=tags, perplexity=fam.perplexity[name], seed=int(seed))
             for name, tags in specs]
    return cands + [_int8_variant(cands[0], "decoder-int8", perplexity=fam.perplexity["decoder-int8"])]
