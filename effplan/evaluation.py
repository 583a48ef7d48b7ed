"""Old import path of :func:`effplan.evaluate` and the quality record (kept so that existing
imports keep working): the frame, its keys and its validator live in :mod:`effplan.records.quality`,
:func:`evaluate` in :mod:`effplan.bench.evaluation`."""

from .bench.evaluation import DEFAULT_BOOTSTRAP, DEFAULT_METRICS, DEFAULT_NOISE, evaluate  # noqa: F401
from .records.quality import (CLEAN, EVALUATION_COLUMNS, EVALUATION_REPRO_COLUMNS, METRIC_RANGES,  # noqa: F401
                              Evaluation, Predictions, join_quality, metric_key, noise_condition,
                              quality_frame, split_key, wide)

__all__ = ["evaluate", "Evaluation", "Predictions", "quality_frame", "join_quality", "metric_key", "split_key",
           "noise_condition", "wide", "CLEAN", "DEFAULT_NOISE", "DEFAULT_METRICS", "DEFAULT_BOOTSTRAP",
           "EVALUATION_COLUMNS", "EVALUATION_REPRO_COLUMNS", "METRIC_RANGES"]
