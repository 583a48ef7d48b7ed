"""``effplan.measure(..., executor=...)``: the executors other than ``"local"``, ``"ray"``
(:mod:`effplan.bench.fleet`) and ``"slurm"`` (:mod:`effplan.bench.slurm`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ValidationError

if TYPE_CHECKING:
    from ..records.measurements import Measurements

__all__ = ["measure_with_executor"]


def measure_with_executor(candidates: Any, batch_sizes: Any, mode: str, device: str,
                          settings: Any) -> Measurements:
    """``effplan.measure(..., executor=...)`` for an executor other than ``"local"``: the driver
    settings (targets, results file, resume, progress) stay here, the harness's (timing, energy,
    generation, the rest of the sweep) go to the workers: ``"ray"``
    (:func:`effplan.bench.fleet.measure_on_ray`) or ``"slurm"``
    (:func:`effplan.bench.slurm.measure_on_slurm`, ``fleet=SlurmOptions(...)``).
    """
    from dataclasses import replace

    f = settings.fleet
    if f.executor not in ("ray", "slurm"):
        given = [k for k, v in (("targets", f.targets), ("ray_address", f.ray_address), ("fleet", f.options))
                 if v is not None]
        if f.executor == "local":
            raise ValidationError(given[0], f"{', '.join(given)} need executor='ray' or 'slurm'")
        raise ValidationError("executor", f"{f.executor!r} is not 'local', 'ray' or 'slurm'")
    sw = settings.sweep
    harness = dict(timing=settings.timing, energy=settings.energy, generation=settings.generation,
                   sweep=replace(sw, results_path=None, resume=False, progress=True))
    driver = dict(resume=sw.resume, results_path=sw.results_path, progress=sw.progress, fleet=f.options)
    if f.executor == "slurm":
        from .slurm import measure_on_slurm

        if f.ray_address is not None:
            raise ValidationError("ray_address", "needs executor='ray', not 'slurm'")
        return measure_on_slurm(candidates, batch_sizes, mode, device, targets=f.targets, **driver,
                                **harness)
    from .fleet import measure_on_ray

    return measure_on_ray(candidates, batch_sizes, mode, device, targets=f.targets,
                          ray_address=f.ray_address, **driver, **harness)
