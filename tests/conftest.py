"""Shared pytest set-up: deterministic seeds, hardware caches cleared, output folder per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clear_hardware_caches():
    """Hardware probes are cached with lru_cache; tests must not see each other's answers."""
    yield
    import sys

    for modname in ("effplan.devices.hardware", "effplan.devices.energy", "effplan.refdata.catalog"):
        mod = sys.modules.get(modname)
        if mod is None:
            continue
        for obj in vars(mod).values():
            clear = getattr(obj, "cache_clear", None)
            if callable(clear):
                clear()


@pytest.fixture
def test_output(request) -> Path:
    """A folder kept after the run (screenshots, executed notebooks) under test-output/."""
    out = REPO / "test-output" / request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    out.mkdir(parents=True, exist_ok=True)
    return out
