"""The reproducibility columns of a record and the hashing rules for its settings (no torch).

:data:`REPRODUCIBILITY_COLUMNS` are the optional columns :func:`effplan.bench.reproducibility.reproducibility_fields`
fills; :func:`config_sha256` hashes a configuration and :func:`timing_policy_json` writes a timing
policy, both as :func:`canonical_json` (sorted keys), so that equal settings give equal strings on
every machine. The weights hash and the software versions, which need torch, are in
:mod:`effplan.bench.reproducibility`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError

__all__ = ["REPRODUCIBILITY_COLUMNS", "canonical_json", "config_sha256", "timing_policy_json"]

#: the columns :func:`reproducibility_fields` returns, in order, with their description
REPRODUCIBILITY_COLUMNS: dict[str, tuple[str, str]] = {
    "seed": ("int", "seed of the model / evaluation (NaN when unknown)"),
    "python_version": ("str", "Python version"),
    "numpy_version": ("str", "numpy version"),
    "effplan_version": ("str", "effplan version"),
    "weights_sha256": ("str", "sha256 of the candidate's state_dict (see effplan.reproducibility)"),
    "config_sha256": ("str", "sha256 of the candidate's configuration as canonical JSON, '' if none"),
    "timing_policy": ("str", "timing policy as canonical JSON (sorted keys), '' if none"),
}

def canonical_json(obj: Any) -> str:
    """``obj`` as JSON with sorted keys and no spaces (anything else as ``str``)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_sha256(config: Any) -> str:
    """sha256 (hex) of a configuration as canonical JSON; ``""`` for ``None``.

    ``config`` may be a mapping, a dataclass, or an object with ``to_dict()`` (a Hugging Face
    ``PretrainedConfig``, for example).
    """
    if config is None:
        return ""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    elif hasattr(config, "to_dict"):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise ValidationError("config", f"expected a mapping, dataclass or object with to_dict(), got "
                              f"{type(config).__name__}", where="config_sha256")
    return hashlib.sha256(canonical_json(dict(config)).encode()).hexdigest()


def timing_policy_json(policy: Any) -> str:
    """A timing policy (dataclass or mapping) as canonical JSON; ``""`` for ``None``."""
    if policy is None:
        return ""
    if dataclasses.is_dataclass(policy) and not isinstance(policy, type):
        policy = dataclasses.asdict(policy)
    if not isinstance(policy, Mapping):
        raise ValidationError("timing_policy", f"expected a TimingPolicy or a dict, got {type(policy).__name__}",
                              where="reproducibility_fields")
    return canonical_json(dict(policy))
