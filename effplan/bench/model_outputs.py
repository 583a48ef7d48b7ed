"""How a model's outputs are read by :func:`effplan.evaluate`: probabilities or logits, and labels.

* ``outputs="auto"``: rows that are non-negative and sum to 1 (within
  :data:`effplan.metrics.ROW_SUM_ATOL`) are probabilities (a model ending in ``nn.Softmax``),
  anything else logits (softmax applied);
* a declared ``"logits"`` that looks like probabilities, or ``"probs"`` that does not, is a
  named error (a second softmax would wreck ECE, NLL and Brier while accuracy looks fine);
* a label outside ``[0, classes)`` is a named error unless it equals ``ignore_index``.
"""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from ..records import metrics as _m

__all__ = ["looks_like_probs", "read_outputs", "check_labels"]


def looks_like_probs(out: Any) -> bool:
    """Every row non-negative and summing to 1 (within :data:`effplan.metrics.ROW_SUM_ATOL`)."""
    import torch

    return bool(out.numel() and (out >= 0).all()
                and torch.allclose(out.sum(dim=1), torch.ones(out.shape[0], dtype=out.dtype),
                                   atol=_m.ROW_SUM_ATOL, rtol=0.0))


def read_outputs(out: Any, outputs: str, name: str) -> tuple[Any, str]:
    """``(probabilities, how they were read)``: ``"probs"`` or ``"logits"`` (softmax applied)."""
    import torch

    probs_like = looks_like_probs(out)
    if outputs == "auto":
        outputs = "probs" if probs_like else "logits"
    elif outputs == "logits" and probs_like:
        raise ValidationError("outputs", f"candidate {name!r}: outputs='logits' was declared but every row "
                              "is non-negative and sums to 1 -- these are probabilities (does the model "
                              "end in softmax?); a second softmax would wreck ECE, NLL and Brier. Pass "
                              "outputs='probs' or 'auto'")
    elif outputs == "probs" and not probs_like:
        raise ValidationError("outputs", f"candidate {name!r}: outputs='probs' was declared but the rows are "
                              "not probabilities (negative, or not summing to 1): these look like logits. "
                              "Pass outputs='logits' or 'auto'")
    return (torch.softmax(out, dim=1) if outputs == "logits" else out), outputs


def check_labels(labels: Any, k: int, name: str, ignore_index: int | None) -> Any:
    """Labels in ``[0, k)``; rows equal to ``ignore_index`` dropped (a mask); anything else is a
    named error."""
    keep = (labels != ignore_index) if ignore_index is not None else (labels == labels)
    bad = keep & ((labels < 0) | (labels >= k))
    if bool(bad.any()):
        i = int(bad.nonzero()[0][0])
        v = int(labels[i])
        hint = (" (sequence labels padded with -100? pass ignore_index=-100)" if v < 0 and ignore_index is None
                else "")
        raise ValidationError("labels", f"candidate {name!r}: label {v} at row {i} is outside [0, {k}){hint}")
    return keep
