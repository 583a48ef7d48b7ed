"""One measurement per machine: a lock every fleet point holds while it is timed.

Ray's exclusive ``effplan_node`` resource keeps two effplan tasks off one Ray node, but one
machine may run several Ray nodes (two raylets on one host, several KubeRay worker pods on one
Kubernetes node, one raylet per GPU) and a Slurm node may run several array tasks. Points timed
at the same time on one machine share its CPUs, memory bandwidth and PCIe, and both timings are
worthless (p50s inflated 40-300x were seen). So every fleet point (Ray and Slurm alike) is timed
while holding an exclusive ``flock`` on a file in the machine's lock folder
(:data:`effplan.defaults.LOCK_DIR_ENV` ``$EFFPLAN_LOCK_DIR``, else the system's temporary folder):

* ``exclusive="host"`` (default): one lock per machine, ``effplan-measure-host.lock``: one point
  at a time on the machine, whatever its Ray nodes or GPUs.
* ``exclusive="gpu"``: one lock per GPU the point holds (``effplan-measure-gpu-<id>.lock``, ``id``
  from ``CUDA_VISIBLE_DEVICES``, which Ray and Slurm set per task), so a box with several GPUs
  measures one point per GPU at a time. Trade-off: the points still share the host's CPUs,
  memory bandwidth and PCIe, so small, CPU-bound or input-heavy models read slower than they
  would alone; use it for GPU-bound models on boxes whose GPUs each have their own CPU cores.
  A point without a GPU takes the host lock.

The lock is a kernel ``flock``: released when its holder exits or is killed (no stale locks), and
it works between containers only when they see the same file (on Kubernetes mount one
``hostPath`` folder into every pod of a node; see ``deploy/kuberay-rayjob.yaml``). The
preflight (:mod:`effplan.bench.fleet_check`) compares the lock files of nodes that share a host.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..settings import LOCK_DIR_ENV
from ..errors import ValidationError

__all__ = ["EXCLUSIVE_MODES", "check_exclusive", "lock_dir", "lock_files", "measurement_lock",
           "lock_identity"]

EXCLUSIVE_MODES = ("host", "gpu")


def check_exclusive(value: str) -> str:
    """``value`` if it is one of :data:`EXCLUSIVE_MODES`, else :class:`ValidationError`."""
    if value not in EXCLUSIVE_MODES:
        raise ValidationError("exclusive", f"must be 'host' (one measurement per machine) or 'gpu' "
                              f"(one per GPU), got {value!r}")
    return value


def lock_dir() -> Path:
    """The machine's lock folder: ``$EFFPLAN_LOCK_DIR``, else the temporary folder."""
    return Path(os.environ.get(LOCK_DIR_ENV) or tempfile.gettempdir())


def _gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return [x.strip() for x in visible.split(",") if x.strip() and x.strip() != "-1"]


def lock_files(exclusive: str = "host", *, uses_gpu: bool = False) -> list[Path]:
    """The lock files a point takes (sorted, so that two holders never wait on each other)."""
    check_exclusive(exclusive)
    folder = lock_dir()
    ids = _gpu_ids() if exclusive == "gpu" and uses_gpu else []
    if not ids:
        return [folder / "effplan-measure-host.lock"]
    safe = ["".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in i) for i in ids]
    return sorted(folder / f"effplan-measure-gpu-{s}.lock" for s in safe)


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as exc:
        raise ValidationError("exclusive", f"cannot open the measurement lock {path} ({exc}); set "
                              f"${LOCK_DIR_ENV} to a folder every measuring process of this machine "
                              "can write") from None
    try:
        os.chmod(path, 0o666)  # another user's sweep on this machine must be able to take it too
    except OSError:
        pass
    return fd


@contextlib.contextmanager
def measurement_lock(exclusive: str = "host", *, uses_gpu: bool = False) -> Iterator[float]:
    """Hold this machine's measurement lock(s) (waiting for them); yields the seconds waited."""
    import fcntl

    fds: list[int] = []
    t0 = time.monotonic()
    try:
        for path in lock_files(exclusive, uses_gpu=uses_gpu):
            fd = _open(path)
            fds.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield time.monotonic() - t0
    finally:
        for fd in reversed(fds):
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def lock_identity(exclusive: str = "host") -> tuple[int, int]:
    """``(st_dev, st_ino)`` of the host lock file: two processes that see the same pair share
    the lock (the preflight compares nodes of one host with it)."""
    path = lock_files(exclusive)[0]
    fd = _open(path)
    try:
        st = os.fstat(fd)
        return int(st.st_dev), int(st.st_ino)
    finally:
        os.close(fd)
