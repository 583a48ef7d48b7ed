"""Candidates of a fleet sweep (Ray, Slurm): Candidate objects, shipped by value, or import
paths ``"package.module:attr"`` / ``"path/to/file.py:attr"`` resolved on the driver (for the
names) and again on each node.

A module loaded from a ``file.py`` path is importable nowhere else, so its functions (and the
Candidates defined in it, passed as objects) are pickled BY VALUE, registered with the standalone
``cloudpickle`` and with Ray's bundled ``ray.cloudpickle`` (which keeps its own registry: without
it every point of such a candidate failed with ``No module named '_effplan_fleet_...'``). Its
module name is a stable hash of the file's absolute path.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ValidationError

__all__ = ["resolve_candidates"]


def _load_attr(spec: str) -> Any:
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValidationError("candidates", f"{spec!r} is not an import path: write "
                              "'package.module:attr' or 'path/to/file.py:attr'")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ValidationError("candidates", f"{spec!r}: no file {target!r} (relative to "
                                  f"{os.getcwd()}); ship it with the runtime_env working_dir")
        import hashlib

        modname = "_effplan_fleet_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        module = sys.modules.get(modname)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[modname] = module
            try:
                loader_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[modname]
                raise
            _register_by_value(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ValidationError("candidates", f"{spec!r}: cannot import {target!r} ({exc}); "
                                  "install it on this machine and the workers") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValidationError("candidates", f"{spec!r}: module {target!r} has no {attr!r}") from None


def _register_by_value(module: Any) -> None:
    """A module loaded from a file is importable nowhere else: its functions (and the
    Candidates defined in it) are shipped by value, by the standalone ``cloudpickle`` (Slurm,
    worker processes) and by Ray's bundled copy (which keeps its own registry) alike."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    if "ray" in sys.modules:
        try:
            from ray import cloudpickle as ray_cloudpickle

            ray_cloudpickle.register_pickle_by_value(module)
        except (ImportError, AttributeError):
            pass


def _register_loaded_files() -> None:
    """Register every module loaded from a ``file.py`` path so far with Ray's cloudpickle too
    (it may have been loaded before Ray was imported)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("_effplan_fleet_") and module is not None:
            _register_by_value(module)


def _candidate_types() -> tuple[type, ...]:
    """What ``measure`` takes: :class:`~effplan.candidates.Candidate` and, for
    ``mode="generation"``, :class:`~effplan.generation.GenerationCandidate`."""
    from ..models.candidates import Candidate

    try:
        from ..models.generative import GenerationCandidate
    except ImportError:  # an effplan without generation mode
        return (Candidate,)
    return (Candidate, GenerationCandidate)


def resolve_candidates(spec: str) -> list[Any]:
    """The candidates an import path names (``module:attr`` or ``file.py:attr``)."""
    kinds = _candidate_types()
    value = _load_attr(spec)
    if callable(value) and not isinstance(value, kinds):
        value = value()
    items = [value] if isinstance(value, kinds) else list(value) if isinstance(
        value, Sequence | tuple) else None
    if items is None or not items or not all(isinstance(c, kinds) for c in items):
        raise ValidationError("candidates", f"{spec!r} must name a Candidate, a sequence of "
                              "Candidates or a callable returning them")
    return items


@dataclass(frozen=True)
class _Shipped:
    """What a task receives: a Candidate (cloudpickled by Ray) or an import path and a name."""

    name: str
    dtype: str | None
    candidate: Any = None
    spec: str | None = None

    def load(self) -> Any:
        if self.candidate is not None:
            return self.candidate
        for cand in resolve_candidates(self.spec):
            if cand.name == self.name:
                return cand
        raise ValidationError("candidates", f"{self.spec!r} on this worker has no candidate "
                              f"named {self.name!r}")


def _ship(candidates: Any) -> list[_Shipped]:
    kinds = _candidate_types()
    if isinstance(candidates, kinds + (str,)):
        candidates = [candidates]
    shipped: list[_Shipped] = []
    for i, item in enumerate(list(candidates)):
        if isinstance(item, kinds):
            shipped.append(_Shipped(item.name, item.dtype, candidate=item))
        elif isinstance(item, str):
            shipped += [_Shipped(c.name, c.dtype, spec=item) for c in resolve_candidates(item)]
        else:
            raise ValidationError("candidates", f"item {i} is a {type(item).__name__}, not a "
                                  "Candidate or an import path 'module:attr'")
    if not shipped:
        raise ValidationError("candidates", "no candidates given")
    names = [s.name for s in shipped]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationError("candidates", f"candidate names must be unique; repeated: {dupes}")
    return shipped
