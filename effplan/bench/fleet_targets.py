"""Targets of a Ray sweep: the hardware a point must run on, as Ray resources (see
:mod:`effplan.fleet`), and whether a node offers them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError

__all__ = ["NODE_RESOURCE", "Target"]

#: The per-node exclusive custom resource every effplan task asks one unit of.
NODE_RESOURCE = "effplan_node"
#: Amount Ray itself asks for an ``accelerator_type`` (it advertises 1 per node).
_ACCEL_AMOUNT = 0.001


@dataclass(frozen=True)
class Target:
    """The hardware a point must run on, as Ray resources.

    Attributes
    ----------
    num_gpus: GPUs the task holds (``1`` for "any node with a GPU").
    accelerator_type: a GPU model Ray advertises, e.g. ``"L4"``, ``"H100"``, ``"A100"``
        (implies ``num_gpus=1`` when ``num_gpus`` is 0).
    resources: custom resources set on nodes with ``ray start --resources``, e.g.
        ``{"pool_a": 1}``.
    num_cpus: CPU slots the task reserves (default 1; the node is exclusive anyway).
    name: label stored in ``fleet_target`` (default: derived from the fields above).
    """

    num_gpus: float = 0
    accelerator_type: str | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    num_cpus: float = 1
    name: str | None = None

    def __post_init__(self) -> None:
        where = "Target"
        for fname in ("num_gpus", "num_cpus"):
            value = getattr(self, fname)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValidationError(fname, f"must be a number >= 0, got {value!r}", where=where)
        if self.accelerator_type is not None:
            if not isinstance(self.accelerator_type, str) or not self.accelerator_type.strip():
                raise ValidationError("accelerator_type", f"must be a non-empty string such as 'L4', "
                                      f"got {self.accelerator_type!r}", where=where)
            if self.num_gpus == 0:
                object.__setattr__(self, "num_gpus", 1)
        if not isinstance(self.resources, Mapping):
            raise ValidationError("resources", f"must be a mapping name -> amount, got "
                                  f"{type(self.resources).__name__}", where=where)
        res = {}
        for key, amount in self.resources.items():
            if not isinstance(key, str) or not key or key in ("CPU", "GPU", NODE_RESOURCE):
                raise ValidationError("resources", f"{key!r} is not a custom resource name (use "
                                      "num_cpus/num_gpus for CPU/GPU)", where=where)
            if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount > 0:
                raise ValidationError("resources", f"amount of {key!r} must be > 0, got {amount!r}",
                                      where=where)
            res[key] = float(amount)
        object.__setattr__(self, "resources", dict(sorted(res.items())))
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise ValidationError("name", f"must be a non-empty string or None, got {self.name!r}",
                                  where=where)

    @property
    def label(self) -> str:
        """What ``fleet_target`` holds: ``name``, else ``"L4"``, ``"gpu:2"``, ``"pool_a"``, ``"cpu"``."""
        if self.name:
            return self.name
        parts = []
        if self.accelerator_type:
            parts.append(self.accelerator_type if self.num_gpus == 1
                         else f"{self.accelerator_type}:{_num(self.num_gpus)}")
        elif self.num_gpus:
            parts.append("gpu" if self.num_gpus == 1 else f"gpu:{_num(self.num_gpus)}")
        parts += [k if v == 1 else f"{k}={_num(v)}" for k, v in self.resources.items()]
        return "+".join(parts) or "cpu"

    @property
    def device(self) -> str:
        """The torch device a task of this target measures on by default."""
        return "cuda" if self.num_gpus > 0 else "cpu"

    def required_resources(self, node_resource: str = NODE_RESOURCE) -> dict[str, float]:
        """Every Ray resource one task of this target holds (the exclusive node unit included)."""
        need: dict[str, float] = {node_resource: 1.0}
        if self.num_cpus:
            need["CPU"] = float(self.num_cpus)
        if self.num_gpus:
            need["GPU"] = float(self.num_gpus)
        if self.accelerator_type:
            need[f"accelerator_type:{self.accelerator_type}"] = _ACCEL_AMOUNT
        need.update(self.resources)
        return need

    def ray_options(self, node_resource: str = NODE_RESOURCE) -> dict[str, Any]:
        """Keyword arguments of ``remote_fn.options(...)`` for one task of this target."""
        opts: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus,
                                "resources": {node_resource: 1, **self.resources}}
        if self.accelerator_type:
            opts["accelerator_type"] = self.accelerator_type
        return opts

    @classmethod
    def parse(cls, text: str) -> Target:
        """A target from a short string (the CLI's ``--target``).

        ``"cpu"`` (any measuring node), ``"gpu"`` / ``"gpu:N"`` (N GPUs of any model),
        ``"NAME=AMOUNT"`` (custom resource, several joined with ``+``), anything else an
        accelerator type (``"L4"``, ``"H100"``; ``"H100:2"`` for two).
        """
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("target", f"expected a target such as 'L4', 'gpu' or 'pool_a=1', "
                                  f"got {text!r}")
        text = text.strip()
        if text.lower() == "cpu":
            return cls()
        if "=" in text:
            res = {}
            for part in text.split("+"):
                key, _, amount = part.partition("=")
                try:
                    res[key.strip()] = float(amount) if amount.strip() else 1.0
                except ValueError:
                    raise ValidationError("target", f"{part!r}: amount is not a number "
                                          "(write NAME=AMOUNT, e.g. pool_a=1)") from None
            return cls(resources=res)
        name, _, count = text.partition(":")
        try:
            gpus = float(count) if count else 1.0
        except ValueError:
            raise ValidationError("target", f"{text!r}: GPU count after ':' is not a number") from None
        if name.lower() == "gpu":
            return cls(num_gpus=gpus)
        return cls(accelerator_type=name, num_gpus=gpus)

    @classmethod
    def of(cls, spec: Target | str | Mapping[str, float]) -> Target:
        """Coerce a :class:`Target`, a string (:meth:`parse`) or a custom-resource mapping."""
        if isinstance(spec, Target):
            return spec
        if isinstance(spec, str):
            return cls.parse(spec)
        if isinstance(spec, Mapping):
            return cls(resources=dict(spec))
        raise ValidationError("targets", f"expected a Target, a string or a mapping of resources, "
                              f"got {type(spec).__name__}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _feasible(target: Target, nodes: list[dict[str, Any]], node_resource: str) -> bool:
    need = target.required_resources(node_resource)
    return any(all(n["Resources"].get(k, 0) >= v for k, v in need.items()) for n in nodes)
