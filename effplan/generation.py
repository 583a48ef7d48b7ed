"""Old import path of generation (kept so that existing imports keep working): the protocol,
:class:`GenerationCandidate` and the Hugging Face adapter live in :mod:`effplan.models.generative`,
one generation point in :mod:`effplan.bench.generation_points`, :func:`measure_generation` in
:mod:`effplan.measurement` and the notebook loader in :mod:`effplan.ui.notebook`."""

from typing import Any

from .measurement import measure_generation  # noqa: F401
from .models.generative import (SUMMARY_COLUMNS, GenerationCandidate, GenerativeModel, HFCausalLM,  # noqa: F401
                                as_generator, cache_bytes, call_module, hf_candidate, module_of)

__all__ = ["GenerativeModel", "GenerationCandidate", "HFCausalLM", "hf_candidate", "as_generator",
           "measure_generation", "cache_bytes", "notebook_measurements", "SUMMARY_COLUMNS"]


def __getattr__(name: str) -> Any:  # the notebook layer only when asked for (it imports IPython)
    if name in ("notebook_measurements", "QUICK_TRAIN_STEPS"):
        from .ui import notebook

        return getattr(notebook, "generation_measurements" if name == "notebook_measurements" else name)
    raise AttributeError(f"module 'effplan.generation' has no attribute {name!r}")
