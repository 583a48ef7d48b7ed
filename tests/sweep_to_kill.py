"""A sweep that tests/test_measurement.py kills with SIGKILL, then resumes (run as a script).

``python tests/sweep_to_kill.py RESULTS MARKER POINT_TIMEOUT_S [resume]``: two quick
candidates, then ``hangs``, whose forward never returns; it first writes its worker's pid to
MARKER. Batch sizes 1 and 2, two interleaved passes, time budgets of a fraction of a second.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import torch
from torch import nn

import effplan
from effplan.models.candidates import Candidate
from effplan.errors import EffplanWarning


class Hangs(nn.Module):
    """A linear layer whose forward writes this process's pid to ``marker`` and never returns."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.marker = marker

    def forward(self, x):
        with open(self.marker, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(3600)
        return self.fc(x)


def candidates(marker: str) -> list[Candidate]:
    def quick() -> nn.Module:
        return nn.Linear(4, 2)

    def inputs(bs: int) -> torch.Tensor:
        return torch.ones(bs, 4)

    return [Candidate("quick-a", quick, inputs), Candidate("quick-b", quick, inputs),
            Candidate("hangs", lambda: Hangs(marker), inputs)]


def main(results: str, marker: str, timeout_s: float, resume: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)  # a busy machine may flag points
        effplan.measure(candidates(marker), batch_sizes=(1, 2), device="cpu", energy=False,
                        time_budget_s=0.1, threads=1, passes=2, results_path=results, resume=resume,
                        point_timeout_s=timeout_s, progress=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "resume")
