"""Time effplan.evaluate's vectorized bootstrap against the obvious loop (one metric call per resample).

Synthetic predictions: N examples x 10 classes (Dirichlet probabilities, labels drawn from them);
B bootstrap resamples of the four default metrics (accuracy, ECE with 15 bins, NLL, Brier). The
loop calls the public ``effplan.metrics`` functions on each resample; effplan computes every
resample at once (per-example terms indexed by the resample matrix; ECE by bin sums). Both must
give the same numbers (asserted).

    python benchmarks/evaluate.py [--examples 2000] [--resamples 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from effplan.records import metrics  # noqa: E402
from effplan.bench.evaluation import _bootstrap_values, _resamples  # noqa: E402

NAMES = ("accuracy", "ece", "nll", "brier")
PUBLIC = {"accuracy": metrics.accuracy, "ece": metrics.expected_calibration_error,
          "nll": metrics.negative_log_likelihood, "brier": metrics.brier_score}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(10, 0.3), size=args.examples)
    y = np.array([rng.choice(10, p=row) for row in p])
    idx = np.concatenate(_resamples(np.random.default_rng(1), args.examples, args.resamples))
    conf, corr = p.max(axis=1), metrics.correct(p, y)

    def vectorized() -> dict[str, np.ndarray]:
        return {n: (metrics.ece_resampled(conf, corr, idx, 15) if n == "ece"   # the plug-in binned ECE
                    else _bootstrap_values(metrics.BUILTIN_METRICS[n], p, y, idx)) for n in NAMES}

    def loop() -> dict[str, np.ndarray]:
        return {n: np.array([PUBLIC[n](p[r], y[r]) for r in idx]) for n in NAMES}

    def best(fn) -> tuple[float, dict[str, np.ndarray]]:
        times, out = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_vec, v = best(vectorized)
    t_loop, ref = best(loop)
    for n in NAMES:
        np.testing.assert_allclose(v[n], ref[n], rtol=1e-9, atol=1e-12, err_msg=n)
    print(f"bootstrap of {len(NAMES)} metrics, {args.examples} examples x {args.resamples} resamples "
          f"(best of {args.repeats}):")
    print(f"  effplan vectorized   {t_vec * 1e3:9.1f} ms")
    print(f"  per-resample loop    {t_loop * 1e3:9.1f} ms")
    print(f"  same numbers; loop / effplan = {t_loop / t_vec:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
