"""The settings of a sweep, as small frozen dataclasses that check themselves.

:func:`effplan.measure` takes them (``timing=``, ``energy=``, ``sweep=``, ``generation=``,
``fleet=``) and keeps its older keywords as shortcuts for their fields (:data:`SHORTCUTS`):
``measure(c, passes=1)`` is ``measure(c, sweep=SweepConfig(passes=1))``. A shortcut and the
field it stands for, both given and different, is a :class:`~effplan.errors.ValidationError`
naming the keyword. :func:`build` is the one place this is resolved (the local sweep and each
Ray task use it); :func:`positive_ints` is the one rule for batch sizes, concurrencies and
prompt lengths (Python or numpy integers, no bools, each > 0; repeats dropped, order kept).

* :class:`~effplan.records.samples.TimingPolicy` -- when a point's timing stops (shortcuts
  ``target_ci_rel``, ``time_budget_s``).
* :class:`EnergyConfig` -- ``measure`` (the old ``energy=True/False``), ``window_s``
  (``energy_window_s``), ``idle_s``, ``idle_power_w``, ``meter`` (``energy_meter``).
* :class:`SweepConfig` -- threads, results file, resume, isolation, retries, passes, the point
  time limit, progress bar, errors raised, the clock and the training optimizer.
* :class:`GenerationConfig` -- ``mode="generation"``: prompt lengths, output tokens, prompt seed.
* :class:`FleetConfig` -- ``executor`` (``"local"`` | ``"ray"``), ``targets``, ``ray_address``,
  ``options`` (:class:`effplan.fleet.FleetOptions`, the old ``fleet=`` keyword).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from ..errors import ValidationError
from ..records.samples import TimingPolicy
from ..records.schema import number

__all__ = ["EnergyConfig", "SweepConfig", "GenerationConfig", "FleetConfig", "SweepSettings", "TimingPolicy",
           "SHORTCUTS", "build", "positive_ints", "ISOLATE_DEFAULT", "RETRIES_DEFAULT", "PASSES_DEFAULT",
           "GENERATION_PROMPT_TOKENS", "GENERATION_OUTPUT_TOKENS"]

#: Measure each point in its own worker process (see :mod:`effplan.bench.worker`) unless told not to.
ISOLATE_DEFAULT = True
#: Not-stable points are measured again, after the other points, at most this many times.
RETRIES_DEFAULT = 1
#: Each point is timed in this many passes, interleaved across the sweep: pass k of every point
#: before pass k + 1 of any (see :func:`effplan.measure`, ``passes``).
PASSES_DEFAULT = 2
#: ``mode="generation"`` defaults: prompt lengths and output tokens per response.
GENERATION_PROMPT_TOKENS = (128, 512)
GENERATION_OUTPUT_TOKENS = 64


def positive_ints(name: str, value: Any, where: str = "measure()") -> list[int]:
    """``value`` (one integer or a sequence) as a list of distinct positive ints, in order.
    Python and numpy integers are accepted (locally and on Ray alike); bools, floats, text and
    values <= 0 are refused with a :class:`ValidationError` naming ``name``."""
    vals = [value] if isinstance(value, int | np.integer) else list(value) if value is not None else []
    if not vals or not all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) and v > 0
                           for v in vals):
        raise ValidationError(name, f"must be positive integers, got {value!r}", where=where)
    return list(dict.fromkeys(int(v) for v in vals))


def _whole(name: str, value: Any, lo: int) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < lo:
        raise ValidationError(name, f"must be a whole number >= {lo}, got {value!r}")


@dataclass(frozen=True)
class EnergyConfig:
    """How energy is measured: ``measure=False`` skips it (energy columns NaN); ``window_s``:
    the minimum energy window per point, s; ``idle_s``: how long idle power is measured per
    device before the sweep, s; ``idle_power_w``: use this idle power instead; ``meter``: an
    ``EnergyMeter``-like factory ``meter(device)`` (tests, custom meters)."""

    measure: bool = True
    window_s: float = 1.0
    idle_s: float = 1.0
    idle_power_w: float | None = None
    meter: Callable[[str], Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.measure, bool | np.bool_):
            raise ValidationError("energy", f"must be True, False or an EnergyConfig, got {self.measure!r}")
        object.__setattr__(self, "window_s", number("energy_window_s", self.window_s, lo=0, lo_open=True))
        object.__setattr__(self, "idle_s", number("idle_s", self.idle_s, lo=0, lo_open=True))
        if self.idle_power_w is not None:
            object.__setattr__(self, "idle_power_w", number("idle_power_w", self.idle_power_w, lo=0))
        if self.meter is not None and not callable(self.meter):
            raise ValidationError("energy_meter", f"must be callable(device), got {self.meter!r}")


@dataclass(frozen=True)
class SweepConfig:
    """How the sweep runs (see :func:`effplan.measure` for each field): ``None`` fields take the
    module defaults (:data:`ISOLATE_DEFAULT`, :data:`RETRIES_DEFAULT`, :data:`PASSES_DEFAULT`,
    :func:`effplan.bench.sweep.default_threads`, :func:`effplan.bench.points.default_point_timeout_s`)."""

    threads: int | None = None
    results_path: str | os.PathLike | None = None
    resume: bool | str = False
    isolate: bool | None = None
    retries: int | None = None
    passes: int | None = None
    point_timeout_s: float | None = None
    progress: bool = True
    raise_errors: bool = False
    clock: Callable[[], float] = time.perf_counter
    optimizer: str | Callable[[list[Any]], Any] = "sgd"
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        if self.threads is not None:
            _whole("threads", self.threads, 1)
        if self.retries is not None:
            _whole("retries", self.retries, 0)
        if self.passes is not None:
            _whole("passes", self.passes, 1)
        if self.point_timeout_s is not None:
            object.__setattr__(self, "point_timeout_s",
                               number("point_timeout_s", self.point_timeout_s, lo=0, lo_open=True))
        from .resume import resume_mode

        object.__setattr__(self, "resume", resume_mode(self.resume) or False)  # True -> "unfinished"
        if self.resume and self.results_path is None:
            raise ValidationError("resume", "resume=True needs results_path= (the file to resume)")
        if not (isinstance(self.optimizer, str) and self.optimizer in ("sgd", "adam")) and not callable(self.optimizer):
            raise ValidationError("optimizer", f"{self.optimizer!r} is not 'sgd', 'adam' or a callable(params)")
        if not callable(self.clock):
            raise ValidationError("clock", f"must be a callable returning seconds, got {self.clock!r}")


@dataclass(frozen=True)
class GenerationConfig:
    """``mode="generation"``: ``prompt_tokens`` (default :data:`GENERATION_PROMPT_TOKENS`),
    ``output_tokens`` per response (default :data:`GENERATION_OUTPUT_TOKENS`), ``prompt_seed``
    (the seed the random prompts are drawn from)."""

    prompt_tokens: int | Sequence[int] | None = None
    output_tokens: int | None = None
    prompt_seed: int = 0

    def __post_init__(self) -> None:
        if self.prompt_tokens is not None:
            object.__setattr__(self, "prompt_tokens", tuple(positive_ints(
                "prompt_tokens", self.prompt_tokens, "measure(mode='generation')")))
        if self.output_tokens is not None:
            n = positive_ints("output_tokens", self.output_tokens, "measure(mode='generation')")
            if len(n) != 1:
                raise ValidationError("output_tokens", f"must be one positive integer, got {self.output_tokens!r}")
            object.__setattr__(self, "output_tokens", n[0])
        if not isinstance(self.prompt_seed, int | np.integer) or isinstance(self.prompt_seed, bool):
            raise ValidationError("prompt_seed", f"must be an integer, got {self.prompt_seed!r}")

    @property
    def given(self) -> bool:
        """True when any field differs from its default (a generation setting was given)."""
        return self != GenerationConfig()

    def resolved(self) -> tuple[list[int], int, int]:
        """``(prompt lengths, output tokens, prompt seed)`` with the defaults filled in."""
        prompts = list(self.prompt_tokens) if self.prompt_tokens is not None else list(GENERATION_PROMPT_TOKENS)
        out = self.output_tokens if self.output_tokens is not None else GENERATION_OUTPUT_TOKENS
        return prompts, int(out), int(self.prompt_seed)


@dataclass(frozen=True)
class FleetConfig:
    """Where the sweep runs: ``executor="local"`` (this machine), ``"ray"`` (a Ray cluster,
    :mod:`effplan.fleet`) with ``targets``, ``ray_address`` and ``options``
    (:class:`effplan.fleet.FleetOptions`), or ``"slurm"`` (:mod:`effplan.bench.slurm`, ``options``
    a :class:`~effplan.bench.slurm.SlurmOptions`)."""

    executor: str = "local"
    targets: Sequence[Any] | None = None
    ray_address: str | None = None
    options: Any = None

    @property
    def remote(self) -> bool:
        """True when anything asks for another executor than this machine."""
        return (self.executor != "local" or self.targets is not None or self.ray_address is not None
                or self.options is not None)


@dataclass(frozen=True)
class SweepSettings:
    """The five settings of one sweep, resolved from configs and shortcuts by :func:`build`."""

    timing: TimingPolicy = field(default_factory=TimingPolicy)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)


#: keyword of :func:`effplan.measure` -> (config, field) it is a shortcut for
SHORTCUTS: dict[str, tuple[str, str]] = {
    "target_ci_rel": ("timing", "target_ci_rel"), "time_budget_s": ("timing", "time_budget_s"),
    "energy_window_s": ("energy", "window_s"), "idle_s": ("energy", "idle_s"),
    "idle_power_w": ("energy", "idle_power_w"), "energy_meter": ("energy", "meter"),
    **{k: ("sweep", k) for k in ("threads", "results_path", "resume", "isolate", "retries", "passes",
                                 "point_timeout_s", "progress", "raise_errors", "clock", "optimizer",
                                 "learning_rate")},
    "prompt_tokens": ("generation", "prompt_tokens"), "output_tokens": ("generation", "output_tokens"),
    "prompt_seed": ("generation", "prompt_seed"),
    "executor": ("fleet", "executor"), "targets": ("fleet", "targets"), "ray_address": ("fleet", "ray_address"),
}
_TYPES = {"timing": TimingPolicy, "energy": EnergyConfig, "sweep": SweepConfig, "generation": GenerationConfig,
          "fleet": FleetConfig}


#: shortcuts whose ``None`` meant "not given" in measure()'s old signature (the CLI passes its
#: unset options as None), although their field has a number as default
_NONE_IS_UNSET = frozenset({"target_ci_rel", "time_budget_s"})


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    except Exception:  # arrays and the like: only the very same object counts as the same
        return a is b


def build(timing: Any = None, energy: Any = True, sweep: Any = None, generation: Any = None,
          fleet: Any = None, **shortcuts: Any) -> SweepSettings:
    """The settings of a sweep from configs (``None``: defaults; ``energy`` may be a bool, as
    before; ``fleet`` a :class:`FleetConfig` or, as before, :class:`effplan.fleet.FleetOptions`)
    and shortcut keywords (:data:`SHORTCUTS`; ``None`` means not given where it is the field's default). A keyword that is
    neither, or a shortcut that contradicts a field set in its config, is a ValidationError."""
    unknown = sorted(set(shortcuts) - set(SHORTCUTS))
    if unknown:
        raise ValidationError(unknown[0], f"unknown keyword of effplan.measure(); the settings are "
                              f"{sorted(SHORTCUTS)} or the configs timing=, energy=, sweep=, generation=, fleet=")
    given: dict[str, Any] = {"timing": timing, "sweep": sweep, "generation": generation}
    if isinstance(energy, EnergyConfig) or energy is None:
        given["energy"] = energy
    else:
        given["energy"] = EnergyConfig(measure=energy)
    if fleet is None or isinstance(fleet, FleetConfig):
        given["fleet"] = fleet
    else:  # FleetOptions, as the old fleet= keyword
        given["fleet"] = FleetConfig(options=fleet)
    for name, value in given.items():
        if value is not None and not isinstance(value, _TYPES[name]):
            raise ValidationError(name, f"expected a {_TYPES[name].__name__}, got {type(value).__name__}")
    changes: dict[str, dict[str, Any]] = {k: {} for k in _TYPES}
    for key, value in shortcuts.items():
        cfg_name, fld = SHORTCUTS[key]
        if value is None and (key in _NONE_IS_UNSET or _field_default(_TYPES[cfg_name], fld) is None):
            continue  # None is "not given" where None is the field's default (idle_s=None is refused)
        cfg = given[cfg_name]
        if cfg is not None:
            mine = getattr(cfg, fld)
            if not _same(mine, _field_default(_TYPES[cfg_name], fld)) and not _same(mine, value):
                raise ValidationError(key, f"given twice, and differently: {key}={value!r} but "
                                      f"{cfg_name}={type(cfg).__name__}({fld}={mine!r}); give one of them")
        changes[cfg_name][fld] = value
    out = {}
    for name, typ in _TYPES.items():
        base = given[name] if given[name] is not None else typ()
        out[name] = replace(base, **changes[name]) if changes[name] else base
    return SweepSettings(**out)


def _field_default(typ: type, name: str) -> Any:
    f = next(f for f in fields(typ) if f.name == name)
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]

