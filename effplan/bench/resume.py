"""Resume modes of a sweep: which stored points a resumed sweep measures again.

A GPU hour is expensive, so a resumed sweep re-measures only what is NOT finished:

* ``resume="unfinished"`` (and ``resume=True``, the same): error rows, provisional records (a
  sweep stopped before the point's last timing pass) and points not in the file. A point whose
  last pass finished but is NOT stable (timed on a busy machine) is kept: it is flagged
  everywhere it is used, and re-measuring it on the same busy machine would likely repeat it.
* ``resume="unstable"``: the above, plus the finished points that are not stable (when the
  machine is quiet now, or the cluster has changed).
* ``resume=False`` (default of ``measure``): nothing is skipped.

The rule of "finished" is :func:`effplan.store.completed_points` (``stable_only`` for
``"unstable"``); :func:`redo_counts` says, before a sweep starts, how many stored points it will
measure again (the CLI prints it).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EffplanWarning, ValidationError

__all__ = ["RESUME_MODES", "resume_mode", "finished_points", "RedoCounts", "redo_counts"]

RESUME_MODES = ("unfinished", "unstable")


def resume_mode(value: Any) -> str | None:
    """``None`` (no resume), ``"unfinished"`` or ``"unstable"`` from a ``resume=`` argument:
    ``False`` / ``None``, ``True`` (= ``"unfinished"``) or one of :data:`RESUME_MODES`."""
    if value is None or value is False:
        return None
    if value is True:
        return "unfinished"
    if isinstance(value, str) and value in RESUME_MODES:
        return value
    raise ValidationError("resume", f"must be False, True, 'unfinished' or 'unstable', got {value!r}")


def finished_points(path: str | os.PathLike | None, mode: str | None) -> set[tuple]:
    """:func:`effplan.store.point_key` of the points a sweep resumed in ``mode`` skips."""
    from ..records import store

    if mode is None or path is None:
        return set()
    return store.completed_points(path, stable_only=mode == "unstable")


@dataclass(frozen=True)
class RedoCounts:
    """The stored points of a results file by what a resumed sweep does with them (newest
    record of each point): ``finished`` and stable, ``unstable`` (finished, not stable),
    ``errors``, ``provisional``; ``redo`` of them are measured again in ``mode``."""

    mode: str
    path: str
    points: int
    finished: int
    unstable: int
    errors: int
    provisional: int

    @property
    def redo(self) -> int:
        return self.errors + self.provisional + (self.unstable if self.mode == "unstable" else 0)

    def sentence(self) -> str:
        """One line for the terminal, before the sweep starts."""
        parts = [f"{self.errors} error row(s)", f"{self.provisional} provisional (stopped before "
                 "their last timing pass)"]
        if self.mode == "unstable":
            parts.append(f"{self.unstable} finished but not stable")
        kept = (f"; {self.unstable} finished but not stable are kept (--resume unstable re-measures "
                "them)" if self.mode == "unfinished" and self.unstable else "")
        return (f"resume ({self.mode}): {self.path} holds {self.points} point(s); {self.redo} will be "
                f"measured again ({', '.join(parts)}){kept}; points not in the file yet are measured "
                "too")


def redo_counts(path: str | os.PathLike, mode: str) -> RedoCounts:
    """What resuming ``path`` in ``mode`` measures again (an absent file: nothing)."""
    from ..records import store

    p = Path(path)
    counts = {"finished": 0, "unstable": 0, "errors": 0, "provisional": 0}
    if p.exists() and p.stat().st_size > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EffplanWarning)
            frame = store.load(p)  # the newest record of each point
        for rec in frame.to_dict(orient="records"):
            if str(rec.get("status") or "ok") != "ok":
                counts["errors"] += 1
            elif store._truthy(rec.get("provisional")):
                counts["provisional"] += 1
            elif store._truthy(rec.get("stable")):
                counts["finished"] += 1
            else:
                counts["unstable"] += 1
    return RedoCounts(mode=mode, path=str(path), points=sum(counts.values()), **counts)
