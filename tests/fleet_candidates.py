"""Tiny candidates that tests/test_fleet.py ships to Ray workers by import path
(``"tests/fleet_candidates.py:CANDIDATES"``): the workers load this file themselves."""

from __future__ import annotations

import torch
from torch import nn

from effplan.models.candidates import Candidate


def _inputs(batch_size: int) -> torch.Tensor:
    return torch.randn(batch_size, 8)


def _linear() -> nn.Module:
    return nn.Linear(8, 4)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


CANDIDATES = [Candidate("tiny-linear", _linear, _inputs), Candidate("tiny-mlp", _mlp, _inputs)]


def only_on_the_driver():
    """The candidates, on the driver only: a node (a Ray worker, which does not see the test's
    ``EFFPLAN_TEST_DRIVER`` variable) gets an effplan error while resolving them."""
    import os

    from effplan.errors import ValidationError

    if not os.environ.get("EFFPLAN_TEST_DRIVER"):
        raise ValidationError("candidates", "these candidates are built on the driver only")
    return CANDIDATES
