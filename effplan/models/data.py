"""Data as the models see it: ``(inputs, labels)`` pairs gathered into tensors, sliced and mapped.

:func:`gather_xy` turns held-out or training data -- a pair of tensors / arrays, or an iterable
of ``(inputs, labels)`` batches such as a DataLoader -- into one ``(x, y)`` pair of tensors
(``y`` integer class ids); inputs may be a tensor, a tuple / list or a dict of tensors (the
forms :class:`~effplan.models.candidates.Candidate` documents). :func:`map_tensors` applies a
function to every tensor of such a nest and :func:`slice_leaves` takes rows ``i:j`` of each.
torch is imported when called, never at import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..errors import ValidationError
from .candidates import tensor_leaves

__all__ = ["gather_xy", "map_tensors", "slice_leaves"]


def map_tensors(obj: Any, fn: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, Mapping):
        return {k: map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return type(obj)(map_tensors(v, fn) for v in obj)
    return obj


def _to_tensor(a: Any) -> Any:
    import torch

    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    if isinstance(a, Mapping):
        return {k: _to_tensor(v) for k, v in a.items()}
    if isinstance(a, tuple | list) and a and not isinstance(a[0], int | float):
        return type(a)(_to_tensor(v) for v in a)
    return torch.as_tensor(a)


def gather_xy(data: Any, name: str) -> tuple[Any, Any]:
    """``(x, y)`` from a pair of tensors/arrays, or an iterable of ``(x, y)`` batches (DataLoader)."""
    import torch

    if isinstance(data, tuple | list) and len(data) == 2 and not _is_batch_list(data):
        x, y = _to_tensor(data[0]), _to_tensor(data[1])
    elif isinstance(data, Iterable) and not isinstance(data, str | Mapping):
        xs, ys = [], []
        for i, batch in enumerate(data):
            if not (isinstance(batch, tuple | list) and len(batch) == 2):
                raise ValidationError(name, f"batch {i} is not an (inputs, labels) pair")
            xs.append(_to_tensor(batch[0]))
            ys.append(_to_tensor(batch[1]))
        if not xs:
            raise ValidationError(name, "the data loader gave no batches")
        x = _cat(xs)
        y = torch.cat(ys)
    else:
        raise ValidationError(name, "expected (inputs, labels) tensors or a DataLoader of (inputs, labels) "
                              f"batches, got {type(data).__name__}")
    leaves = tensor_leaves(x)
    if not leaves:
        raise ValidationError(name, "the inputs hold no tensor")
    n = {int(t.shape[0]) for t in leaves}
    if len(n) != 1 or n.pop() != int(y.shape[0]) or int(y.shape[0]) == 0:
        raise ValidationError(name, f"inputs and labels must share a non-empty first (batch) dimension; "
                              f"labels have {int(y.shape[0])} rows, inputs {[tuple(t.shape) for t in leaves]}")
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ValidationError(name, f"labels must be integer class ids, got {y.dtype}")
    return x, y.long()


def _is_batch_list(data: Any) -> bool:
    """``[(x, y), (x, y)]`` (two batches) rather than ``(x, y)``: both items are (x, y) pairs
    whose labels are tensors/arrays (in ``((x1, x2), y)`` the second item is the labels)."""
    def pair(item: Any) -> bool:
        return (isinstance(item, tuple | list) and len(item) == 2
                and hasattr(item[1], "shape") and not isinstance(item[0], int | float))
    return pair(data[0]) and pair(data[1])


def _cat(parts: list[Any]) -> Any:
    import torch

    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if isinstance(first, Mapping):
        return {k: _cat([p[k] for p in parts]) for k in first}
    return type(first)(_cat([p[i] for p in parts]) for i in range(len(first)))


def slice_leaves(obj: Any, i: int, j: int) -> Any:
    return map_tensors(obj, lambda t: t[i:j])
