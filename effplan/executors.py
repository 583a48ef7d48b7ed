"""``effplan.measure(..., executor=...)``: the executors other than ``"local"``, ``"ray"``
(:mod:`effplan.fleet`) and ``"slurm"`` (:mod:`effplan.slurm`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ValidationError

if TYPE_CHECKING:
    from .measurement import Measurements

__all__ = ["measure_with_executor"]


#: Parameters of :func:`effplan.measure` that the driver handles; the rest go to the workers.
_DRIVER_PARAMS = ("candidates", "batch_sizes", "mode", "device", "results_path", "progress",
                  "executor", "targets", "ray_address", "resume", "fleet")


def measure_with_executor(**params: Any) -> Measurements:
    """``effplan.measure(..., executor=...)`` for an executor other than ``"local"``:
    ``"ray"`` (:func:`measure_on_ray`) or ``"slurm"`` (:func:`effplan.slurm.measure_on_slurm`).

    ``params`` are all of :func:`effplan.measure`'s parameters; those the harness takes
    (``timing``, ``energy``, ``threads``, ...) are passed on to it on the workers.
    """
    executor = params.get("executor")
    if executor not in ("ray", "slurm"):
        given = [k for k in ("targets", "ray_address", "fleet") if params.get(k) is not None]
        if executor == "local":
            raise ValidationError(given[0], f"{', '.join(given)} need executor='ray' or 'slurm'")
        raise ValidationError("executor", f"{executor!r} is not 'local', 'ray' or 'slurm'")
    driver = {k: params[k] for k in _DRIVER_PARAMS if k in params and k != "executor"}
    harness = {k: v for k, v in params.items() if k not in _DRIVER_PARAMS}
    if executor == "slurm":
        from .slurm import measure_on_slurm

        if driver.pop("ray_address", None) is not None:
            raise ValidationError("ray_address", "needs executor='ray', not 'slurm'")
        return measure_on_slurm(**driver, **harness)
    from .fleet import measure_on_ray

    return measure_on_ray(**driver, **harness)
