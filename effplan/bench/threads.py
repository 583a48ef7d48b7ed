"""The one thread rule of a sweep: how many torch CPU threads a point is timed with when the
caller does not say (``measure(threads=None)``), on this machine and on every fleet node alike.

Two observations decide it:

* **A machine that looks free for an instant is not free.** One 0.2 s load sample on a loaded
  2-core machine can read 0.4 cores busy and round to "2 free"; the point then runs 2 intra-op
  threads beside another CPU-bound process, and every parallel region waits for a descheduled
  thread: tiny models ran 100-400x slower (13 ms instead of 0.03 ms). So the background load is
  judged over a short window of several samples, its WORST sample counts, and free cores are
  rounded DOWN (``floor(cores - load)``, at least 1).
* **Small work does not pay for threads.** An intra-op parallel region costs microseconds to
  start and join; a model whose call is a few thousand FLOPs only loses by it, and any other
  load makes that loss huge. ``torch.utils.benchmark.Timer`` times with ``num_threads=1`` by
  default for this reason (single-threaded figures are the stable ones), and pyperf leaves
  threads alone but insists on an otherwise idle, isolated CPU. effplan keeps several threads
  for models big enough to use them, but gives each thread at least
  :data:`effplan.defaults.MIN_FLOPS_PER_THREAD` (10 MFLOP, about a millisecond of one core) of
  work per call: ``threads <= flops_per_call // MIN_FLOPS_PER_THREAD`` (at least 1).

:func:`sweep_threads` is the sweep's starting count (torch's setting capped by the free cores);
:func:`threads_for_work` caps it per point once the point's FLOPs are counted. A ``threads=N``
given by the caller is used as it is. Each row records the count it was timed with
(``threads``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..settings import MIN_FLOPS_PER_THREAD, THREAD_PROBE_SAMPLES, THREAD_PROBE_WINDOW_S

__all__ = ["free_cores_over_window", "sweep_threads", "threads_for_work"]


def _probe() -> Callable[[float], float]:
    from .timing import LoadMonitor

    return LoadMonitor().sample


def free_cores_over_window(cores: int | None = None, *, probe: Callable[[float], float] | None = None,
                           window_s: float = THREAD_PROBE_WINDOW_S,
                           samples: int = THREAD_PROBE_SAMPLES) -> int:
    """Cores free throughout a short window: ``floor(cores - worst load sample)``, at least 1.

    ``probe(seconds)`` returns the background load (cores of other processes' work) over the
    next ``seconds`` (default :meth:`effplan.timing.LoadMonitor.sample`); the window is cut
    into ``samples`` such samples. Unknown load (NaN everywhere, no psutil) leaves ``cores``.
    """
    if cores is None:
        from .timing import usable_cores

        cores = usable_cores()
    probe = probe or _probe()
    loads = [probe(window_s / samples) for _ in range(max(1, samples))]
    known = [x for x in loads if x is not None and not math.isnan(x)]
    if not known:
        return max(1, int(cores))
    return int(max(1, min(cores, math.floor(cores - max(known) + 1e-9))))


def sweep_threads(requested: int | None = None, *, torch_threads: int | None = None,
                  cores: int | None = None, probe: Callable[[float], float] | None = None) -> int:
    """The sweep's thread count: ``requested`` when given, else torch's setting
    (``torch.get_num_threads()``) capped at :func:`free_cores_over_window`."""
    if requested is not None:
        return int(requested)
    if torch_threads is None:
        import torch

        torch_threads = torch.get_num_threads()
    return max(1, min(int(torch_threads), free_cores_over_window(cores, probe=probe)))


def threads_for_work(threads: int, flops_per_call: float) -> int:
    """``threads`` capped so that each thread gets at least ``MIN_FLOPS_PER_THREAD`` FLOPs of
    one call; unknown FLOPs (NaN) leave ``threads`` as it is."""
    if flops_per_call is None or not math.isfinite(flops_per_call) or flops_per_call < 0:
        return max(1, int(threads))
    return int(max(1, min(int(threads), flops_per_call // MIN_FLOPS_PER_THREAD)))
