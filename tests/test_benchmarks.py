"""The benchmarks in ``benchmarks/`` still run and still print their ratios (smallest settings).

These check that the scripts work, not how fast anything is: no timing is asserted, so a slow
machine cannot fail them. Each benchmark asserts its own correctness checks (e.g. plan's
vectorized numbers equal the per-row reference) and would exit non-zero if they broke.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: script -> (smallest arguments, a line its output must contain)
CASES = {
    "contention.py": (["--candidates", "digits-mlp", "--batch-sizes", "1", "--hogs", "1",
                       "--time-budget-s", "0.2", "--sweeps", "1"],
                      r"p50 under load / quiet: effplan median \d+\.\d+(.|\n)*sweep wall per point, quiet "
                      r".*new/old \d+\.\d+x, new/plain \d+\.\d+x"),
    "flops.py": ([], r"effplan == analytic on 9/9 models(.|\n)*\d+\.\d+x"),
    "measure.py": (["--batch-sizes", "1", "--rounds", "1", "--sweeps", "1", "--time-budget-s", "0.2"],
                   r"p50 ratio effplan/torch: median \d\.\d+(.|\n)*sweep wall per point .*new/old \d+\.\d+x, "
                   r"new/plain \d+\.\d+x"),
    "energy.py": (["--repeats", "3"], r"\d+(\.\d+)?x"),
    "plan.py": (["--repeats", "1"], r"autoscaled, Monte Carlo, 1000 samples .*\d+(\.\d+)?x(.|\n)*"
                                    r"cold plan / what-if re-plan = \d+\.\dx"),
    "scale.py": (["--rows", "300", "--repeats", "1", "--reference"],
                 r"300 .*\d\.\d\dx(.|\n)*9,600 .*\d+\.\dx"),
    "launch_overhead.py": (["--n", "200", "--layers", "4"], r"measured/floor=\d+\.\d+"),
    "projection.py": (["--quick"], r"published-figure check: (\d+)/\1 projections at or below"),
    "dashboard.py": (["--repeats", "2", "--samples", "20"], r"\d+(\.\d+)?x"),
    "calibration.py": (["--sims", "20", "--resamples", "50", "--sizes", "200"],
                       r"ece~0\.15 +200(.|\n)*lowest coverage: \d+\.\d%"),
    "evaluate.py": (["--examples", "200", "--resamples", "50", "--repeats", "1"], r"loop / effplan = \d+\.\dx"),
    "actuals.py": (["--rows", "20000", "--repeats", "1"], r"pandas / effplan = \d+\.\dx"),
    "learning_curve.py": (["--candidates", "digits-mlp-slim", "--seeds", "2"],
                          r"log-linear / power law = \d+\.\d+x"),
    "make_engine_samples.py": (["--check"], r"13/13 shipped samples match a fresh seeded run"),
    "generation.py": (["--concurrency", "1", "--prompt-tokens", "16", "--output-tokens", "4", "--rounds", "1",
                       "--train-steps", "5"], r"TPOT ratio effplan/plain: median \d+\.\d+x"),
}


def test_every_benchmark_is_covered():
    assert sorted(p.name for p in (REPO / "benchmarks").glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_and_prints_a_ratio(script):
    args, pattern = CASES[script]
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=280, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert re.search(pattern, proc.stdout), proc.stdout[-3000:]
