"""effplan: measure candidate PyTorch models on your hardware and project what they will cost.

The public API is re-exported here lazily (PEP 562), so that ``import effplan`` stays cheap and
the planning half (numpy/pandas only) never pays for importing torch or touching a GPU.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # FLOP counting
    "count_flops": "flops",
    "FlopCount": "flops",
    # candidates and measurement
    "Candidate": "models.candidates",
    "measure": "measurement",
    "Measurements": "measurement",
    "GenerationCandidate": "models.generative",
    "EnergyMeter": "devices.energy",
    "detect_hardware": "devices.hardware",
    "HardwareInfo": "devices.hardware",
    # planning
    "load_catalog": "refdata.catalog",
    "find_hardware": "refdata.catalog",
    "peak_flops_per_s": "refdata.catalog",
    "rated_power_w": "refdata.catalog",
    "InferenceWorkload": "planning",
    "TrainingWorkload": "planning",
    "GenerationWorkload": "planning",
    "GenerationUncertainty": "planning",
    "Prices": "planning",
    "Uncertainty": "planning",
    "plan": "planning",
    "Plan": "planning",
    "project": "planning",
    "compare_scenarios": "planning",
    # budget vs actuals (a FOCUS bill against the plan)
    "actuals": "planning",
    "Actuals": "planning",
    # serving engines' own benchmarks (vLLM, GuideLLM, AIPerf, LLMPerf, optimum-benchmark)
    "import_benchmark": "importers",
    # quality beside cost
    "evaluate": "bench.evaluation",
    "Evaluation": "bench.evaluation",
    "cheapest_meeting": "planning.selection",
    "compute_card": "views.cards",
    # learning curves with their price
    "learning_curve": "learning_curves",
    "LearningCurve": "learning_curves",
    # errors
    "EffplanError": "errors",
    "EffplanWarning": "errors",
    "ValidationError": "errors",
}

# effplan.slim and effplan.compare are modules that can be called as their function
# (effplan.slim(candidate), effplan.compare(baseline, data=...)): see effplan/models/slimming.py.
_SUBMODULES = ("slim", "compare", "failure_modes", "examples", "generation", "decoders", "store", "widgets",
               "schema", "catalog", "flops", "energy", "measurement", "planning", "hardware", "candidates",
               "plots", "report", "notebook", "cli", "errors", "metrics", "evaluation", "selection", "cards",
               "reproducibility", "defaults", "formatting", "fleet", "billing", "focus_samples",
               "actuals_view", "learning_curves", "learning_plots", "importers", "reference", "queueing",
               "batching", "timing", "worker",
               # the layers (docs/ARCHITECTURE.md)
               "records", "refdata", "devices", "flops", "models", "bench", "views", "ui")

__all__ = sorted(_EXPORTS) + ["slim", "compare", "examples", "generation", "decoders", "store", "plots",
                               "widgets", "notebook", "metrics", "learning_plots", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'effplan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
