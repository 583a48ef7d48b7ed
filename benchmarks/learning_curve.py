"""Does the learning-curve fit predict the next 2x of data? Held-out check against a naive fit.

For each built-in digits candidate, ``effplan.learning_curve`` trains on nested fractions 0.1,
0.25, 0.5 and 1.0 of the digits training split (several seeds each). The saturating power law
(:func:`effplan.planning.fit_learning_curve`) is fitted on the first three fractions only and
predicts the fourth (2x the largest size it saw); the measured score there (mean over seeds) is
compared with the prediction, its 95% seed-bootstrap interval and the error. The naive
alternative, in the same run on the same runs: a log-linear fit ``score = p + q log(n)`` (least
squares), which never saturates.

    python benchmarks/learning_curve.py [--candidates digits-mlp digits-mlp-slim] [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import effplan  # noqa: E402
from effplan.examples import digits_candidates, digits_eval_data, digits_train_data  # noqa: E402
from effplan.planning import fit_learning_curve  # noqa: E402

TARGETS = (("accuracy", "clean"), ("accuracy", "noise-0.1"), ("nll", "clean"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidates", nargs="+", default=["digits-mlp", "digits-mlp-slim", "digits-mlp-student"])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    cands = {c.name: c for c in digits_candidates()}
    train, held_out = digits_train_data(), digits_eval_data()
    rows = []
    for name in args.candidates:
        curve = effplan.learning_curve(cands[name], train, held_out, seeds=args.seeds, noise=(0.1,),
                                       n_bootstrap=200)
        f = curve.frame
        last = f["fraction"].max()
        for metric, cond in TARGETS:
            r = f[(f["metric"] == metric) & (f["condition"] == cond)]
            fit_rows, test = r[r["fraction"] < last], r[r["fraction"] == last]
            n_fit, y_fit = fit_rows["items"].to_numpy(float), fit_rows["value"].to_numpy(float)
            higher = bool(r["higher_is_better"].iloc[0])
            limit = 1.0 if metric == "accuracy" else 0.0
            fit = fit_learning_curve(n_fit, y_fit, higher_is_better=higher, limit=limit, metric=metric,
                                     condition=cond)
            n_test = float(test["items"].iloc[0])
            pred = fit.predict(n_test)
            q, p = np.polyfit(np.log(n_fit), y_fit, 1)
            naive = p + q * np.log(n_test)
            measured = float(test["value"].mean())
            rows.append(dict(candidate=name, metric=metric, condition=cond, n_fit_max=n_fit.max(), n_test=n_test,
                             measured=measured, pred=pred.value, low=pred.low, high=pred.high,
                             inside=pred.low <= measured <= pred.high, err=pred.value - measured,
                             naive=naive, naive_err=naive - measured))
    scale = {"accuracy": 100.0, "nll": 1.0}
    unit = {"accuracy": "pts", "nll": "nats"}
    print("fit on fractions 0.1-0.5, predict fraction 1.0 (2x the largest size fitted); "
          "accuracy in points, nll in nats; measured = mean over seeds")
    print(f"{'candidate':<20}{'metric@condition':<22}{'measured':>9}{'power law [95%]':>26}{'error':>8}"
          f"{'in?':>5}{'log-linear':>11}{'error':>8}")
    for r in rows:
        k, d = scale[r["metric"]], (2 if r["metric"] == "accuracy" else 3)
        band = f"{r['pred'] * k:.{d}f} [{r['low'] * k:.{d}f}, {r['high'] * k:.{d}f}]"
        print(f"{r['candidate']:<20}{r['metric'] + '@' + r['condition']:<22}{r['measured'] * k:>9.{d}f}"
              f"{band:>26}{r['err'] * k:>+8.{d}f}{'yes' if r['inside'] else 'no':>5}{r['naive'] * k:>11.{d}f}"
              f"{r['naive_err'] * k:>+8.{d}f}")
    for metric in dict.fromkeys(r["metric"] for r in rows):
        sel = [r for r in rows if r["metric"] == metric]
        k = scale[metric]
        pl = float(np.median([abs(r["err"]) for r in sel])) * k
        nv = float(np.median([abs(r["naive_err"]) for r in sel])) * k
        inside = sum(r["inside"] for r in sel)
        print(f"{metric}: median |error| power law {pl:.3f} {unit[metric]}, log-linear {nv:.3f} {unit[metric]} "
              f"(log-linear / power law = {nv / pl:.2f}x); measured inside the power law's interval "
              f"{inside}/{len(sel)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
