"""A busy machine on demand: CPU-bound processes beside a test (the normal state of a laptop, a
Binder pod or a CI runner). Used by the busy-machine notebook and browser tests."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def cpu_hogs(n: int = 2) -> Iterator[list[subprocess.Popen]]:
    """``n`` processes running ``while 1: pass`` for the duration of the block (killed after,
    by their own ids)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
             for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=30)
