"""Which way is better, for every metric and plan column: one answer for the Pareto front,
:func:`effplan.cheapest_meeting`, the quality bars, the dashboard and the cards.

* a quality metric (``accuracy``, ``ece@noise-0.1``...): its built-in direction
  (:data:`effplan.metrics.HIGHER_IS_BETTER`), else the ``higher_is_better`` of its rows in the
  quality frame given;
* plan columns: ``quality``, ``throughput*``, ``capacity*``, ``efficiency`` higher;
  costs, latencies, energy, CO2, instances, memory, ``perplexity`` lower.

Anything else is a :class:`~effplan.errors.ValidationError` asking for the direction.
"""

from __future__ import annotations

from typing import Any

from . import metrics as _m
from ..errors import ValidationError
from .quality import quality_frame, split_key

__all__ = ["higher_is_better"]

_HIGHER_PREFIXES = ("quality", "throughput", "capacity", "efficiency", "tokens_per_s")
_LOWER_PREFIXES = ("cost", "latency", "energy", "co2", "instance", "memory", "ttft", "tpot", "price",
                   "perplexity", "queue", "batch_fill")


def higher_is_better(key: str, quality: Any = None) -> bool:
    """True when larger values of ``key`` are better (module docstring)."""
    metric, _cond = split_key(str(key))
    if metric in _m.HIGHER_IS_BETTER:
        return bool(_m.HIGHER_IS_BETTER[metric])
    if quality is not None:
        q = quality_frame(quality)
        hit = q.loc[q["metric"] == metric, "higher_is_better"]
        if len(hit):
            return bool(hit.iloc[0])
    k = str(key).lower()
    if k.startswith(_HIGHER_PREFIXES):
        return True
    if k.startswith(_LOWER_PREFIXES) or k.endswith(("_usd", "_ms", "_kwh", "_kg", "_j", "_wh")):
        return False
    raise ValidationError("metric", f"the direction of {key!r} is not known: pass higher_is_better=True/False")
