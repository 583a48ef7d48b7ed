"""A candidate whose model takes 100 s to build (tests/test_fleet.py's lost-head test): it marks
the file ``$EFFPLAN_TEST_MARK`` when it starts, so the test knows a point is in flight."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from effplan.candidates import Candidate


def _slow() -> nn.Module:
    Path(os.environ["EFFPLAN_TEST_MARK"]).write_text("started")
    time.sleep(100)
    return nn.Linear(4, 2)


CANDIDATES = [Candidate("slow", _slow, lambda bs: torch.ones(bs, 4))]
