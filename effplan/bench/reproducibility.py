"""Reproducibility fields of a measurement or evaluation record, as one flat dict of columns.

:func:`reproducibility_fields` is the one place these are computed. It returns exactly
:data:`REPRODUCIBILITY_COLUMNS` (all optional columns of :data:`effplan.schema.MEASUREMENT_COLUMNS`):

========================  =====================================================================
``seed``                  the seed the model / evaluation used (``None`` when unknown)
``python_version``        ``platform.python_version()``, e.g. ``"3.11.9"``
``torch_version``         ``torch.__version__`` ("" when torch is not installed)
``numpy_version``         ``numpy.__version__``
``effplan_version``       ``effplan.__version__``
``weights_sha256``        :func:`weights_sha256` of the model's ``state_dict`` ("" without a model)
``config_sha256``         :func:`config_sha256` of the model's configuration ("" without one)
``timing_policy``         the timing policy as canonical JSON (sorted keys), "" without one
========================  =====================================================================

Hardware identity is already on every measurement row (``hardware``, ``hardware_id``,
``threads``; see :mod:`effplan.hardware`) and is not repeated here.

Hashes are stable across processes and machines for the same weights: tensors are hashed in
``state_dict`` key order (sorted), each as its key, dtype, shape and raw bytes (quantized tensors
as their integer representation plus scale/zero-point), so identical weights give identical
hashes and any changed weight changes the hash.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from ..records.reproducibility import (REPRODUCIBILITY_COLUMNS, canonical_json, config_sha256,  # noqa: F401
                                       timing_policy_json)


def _update_tensor(h: Any, key: str, t: Any) -> None:
    import torch

    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    if is_traceable_wrapper_subclass(t):  # torchao int8/int4 weights: hash what they hold
        names, ctx = t.__tensor_flatten__()
        h.update(f"{key}|{type(t).__name__}|{tuple(t.shape)}|{ctx!r}".encode())
        for n in names:
            if getattr(t, n, None) is not None:
                _update_tensor(h, f"{key}.{n}", getattr(t, n))
        return
    t = t.detach().cpu()
    if t.is_quantized:
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|{t.qscheme()}".encode())
        if t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            h.update(f"|{t.q_scale()!r}|{t.q_zero_point()!r}".encode())
        else:
            _update_tensor(h, key + ".scales", t.q_per_channel_scales())
            _update_tensor(h, key + ".zero_points", t.q_per_channel_zero_points())
        t = t.int_repr()
    else:
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}".encode())
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: hash the raw 16-bit words
        t = t.view(torch.int16)
    h.update(memoryview(t.numpy()).cast("B"))  # no copy of the weights


def _update(h: Any, key: str, value: Any) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        _update_tensor(h, key, value)
    elif isinstance(value, tuple | list):
        for i, v in enumerate(value):
            _update(h, f"{key}[{i}]", v)
    elif isinstance(value, Mapping):
        for k in sorted(value, key=str):
            _update(h, f"{key}.{k}", value[k])
    else:  # torch.dtype, numbers, strings in quantized modules' state
        h.update(f"{key}|{value!r}".encode())


def weights_sha256(model: Any) -> str:
    """sha256 (hex) of ``model.state_dict()`` (or of a state dict given directly).

    Keys are hashed in sorted order, each with dtype, shape and raw bytes; packed quantized
    weights (tuples inside ``state_dict``) are walked. Identical weights -> identical hash.
    """
    state = model.state_dict() if hasattr(model, "state_dict") else model
    if not isinstance(state, Mapping):
        raise ValidationError("model", f"expected an nn.Module or a state dict, got {type(model).__name__}",
                              where="weights_sha256")
    h = hashlib.sha256()
    for key in sorted(state, key=str):
        _update(h, str(key), state[key])
    return h.hexdigest()


def software_versions() -> dict[str, str]:
    """Python, torch, numpy and effplan versions (torch only if importable; "" otherwise)."""
    import numpy

    from .. import __version__

    torch_version = ""
    if "torch" in sys.modules:
        torch_version = str(sys.modules["torch"].__version__)
    else:
        from importlib import metadata

        try:
            torch_version = metadata.version("torch")
        except metadata.PackageNotFoundError:
            pass
    return {"python_version": platform.python_version(), "torch_version": torch_version,
            "numpy_version": numpy.__version__, "effplan_version": __version__}


def reproducibility_fields(model: Any = None, *, seed: int | None = None, config: Any = None,
                           timing_policy: Any = None) -> dict[str, Any]:
    """The flat dict of reproducibility columns of one record.

    Parameters
    ----------
    model: the built ``nn.Module`` (or its state dict) whose weights are hashed; ``None`` -> "".
    seed: the seed used (``None`` when unknown).
    config: the model's configuration (mapping / dataclass / ``to_dict()``), hashed when given;
        when ``None``, ``model.config`` is used if the model has one.
    timing_policy: a ``TimingPolicy`` (or dict) used for the timing, stored as canonical JSON.

    Returns :data:`REPRODUCIBILITY_COLUMNS` plus ``torch_version`` (already a schema column):
    ``{"seed", "python_version", "torch_version", "numpy_version", "effplan_version",
    "weights_sha256", "config_sha256", "timing_policy"}``.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        try:
            import numpy as np

            if not isinstance(seed, np.integer):
                raise TypeError
            seed = int(seed)
        except TypeError:
            raise ValidationError("seed", f"must be an integer or None, got {seed!r}",
                                  where="reproducibility_fields") from None
    if config is None and model is not None:
        config = getattr(model, "config", None)
    versions = software_versions()
    return {
        "seed": seed,
        "python_version": versions["python_version"],
        "torch_version": versions["torch_version"],
        "numpy_version": versions["numpy_version"],
        "effplan_version": versions["effplan_version"],
        "weights_sha256": "" if model is None else weights_sha256(model),
        "config_sha256": config_sha256(config),
        "timing_policy": timing_policy_json(timing_policy),
    }
