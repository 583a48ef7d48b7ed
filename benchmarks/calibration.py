"""Coverage of effplan's quality intervals over simulated populations whose true values are known.

Each population: 10 classes; the top-class confidence ``c = 1 - 0.9 u``, ``u ~ Beta(1, 12)``
(mean confidence ~0.93, close to the digits models'); the other nine classes share ``1 - c``;
the top class is right with probability ``f(c) = c ** gamma``:

* ``calibrated``: gamma = 1 (true ECE 0);
* ``ece~0.05``: gamma = 1.85 (over-confident);
* ``ece~0.15``: gamma = 3.9;
* ``near-1`` (accuracy ~0.995): ``u ~ Beta(1, 180)``, gamma = 1, at n = 100 only (rare errors:
  the percentile bootstrap of NLL and Brier cannot see errors the sample does not hold).

True values (accuracy, ECE = E|f(c) - c|, NLL, Brier) are integrated on a fine grid of ``u``;
each of ``--sims`` data sets of ``n`` examples is scored with :func:`effplan.evaluation.score`
(``--resamples`` bootstrap resamples, 95%) and the table gives the share of intervals that
contain the true value. The aim is 90-97% for every metric. Run:

    python benchmarks/calibration.py [--sims 400] [--resamples 400] [--sizes 450 2000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from effplan.bench.evaluation import score  # noqa: E402

K = 10
POPULATIONS = {"calibrated": (12.0, 1.0), "ece~0.05": (12.0, 1.85), "ece~0.15": (12.0, 3.9)}
NEAR_ONE = ("near-1", (180.0, 1.0), 100)
METRICS = ("accuracy", "ece", "nll", "brier")


def truth(b: float, gamma: float, grid: int = 400_000) -> dict[str, float]:
    """Population values, integrated over u ~ Beta(1, b) on a midpoint grid."""
    u = (np.arange(grid) + 0.5) / grid
    w = b * (1 - u) ** (b - 1)
    w = w / w.sum()
    c = 1 - 0.9 * u
    f = c ** gamma
    q = (1 - c) / (K - 1)
    nll = -f * np.log(c) - (1 - f) * np.log(q)
    brier = f * ((1 - c) ** 2 + (K - 1) * q ** 2) + (1 - f) * (c ** 2 + (1 - q) ** 2 + (K - 2) * q ** 2)
    return {"accuracy": float(w @ f), "ece": float(w @ np.abs(f - c)), "nll": float(w @ nll),
            "brier": float(w @ brier)}


def draw(rng: np.random.Generator, n: int, b: float, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """n rows of probabilities and labels from the population."""
    c = 1 - 0.9 * rng.beta(1.0, b, n)
    top = rng.integers(0, K, n)
    p = np.repeat(((1 - c) / (K - 1))[:, None], K, axis=1)
    p[np.arange(n), top] = c
    right = rng.random(n) < c ** gamma
    other = (top + rng.integers(1, K, n)) % K          # uniform among the other nine
    return p, np.where(right, top, other)


def coverage(n: int, b: float, gamma: float, sims: int, resamples: int, seed: int) -> dict[str, float]:
    t = truth(b, gamma)
    rng = np.random.default_rng(seed)
    hits = {m: 0 for m in METRICS}
    for s in range(sims):
        p, y = draw(rng, n, b, gamma)
        f = score(p, y, METRICS, n_bootstrap=resamples, seed=s).set_index("metric")
        for m in METRICS:
            hits[m] += int(f.loc[m, "ci_low"] - 1e-12 <= t[m] <= f.loc[m, "ci_high"] + 1e-12)
    return {m: hits[m] / sims for m in METRICS} | {"true_" + m: t[m] for m in METRICS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=400)
    ap.add_argument("--resamples", type=int, default=400)
    ap.add_argument("--sizes", type=int, nargs="+", default=[450, 2000])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cases = [(name, bg, n) for name, bg in POPULATIONS.items() for n in args.sizes] + [NEAR_ONE]
    print(f"95% interval coverage over {args.sims} simulated data sets each ({args.resamples} resamples)")
    print(f"{'population':<11} {'n':>5} {'true ECE':>9} {'true acc':>9} " + " ".join(f"{m:>9}" for m in METRICS))
    worst = 1.0
    for name, (b, gamma), n in cases:
        cov = coverage(n, b, gamma, args.sims, args.resamples, args.seed)
        if name in POPULATIONS:   # near-1: NLL / Brier see no error in most samples (see above)
            worst = min(worst, *(cov[m] for m in METRICS))
        print(f"{name:<11} {n:>5} {cov['true_ece']:>9.4f} {cov['true_accuracy']:>9.4f} "
              + " ".join(f"{100 * cov[m]:>8.1f}%" for m in METRICS))
    print(f"lowest coverage: {100 * worst:.1f}% over the calibrated, ece~0.05 and ece~0.15 populations "
          "(aim: 90-97%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
