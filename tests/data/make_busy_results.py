"""Make the two shipped results files the busy-machine notebook tests run on.

    PYTHONPATH=. python tests/data/make_busy_results.py      # ~2-3 min on a 2-core machine

A REAL quick measurement of the built-in digits family (notebook 01's quick settings:
``effplan.notebook.QUICK_SETTINGS``; inference at batch 1, 8 and 32, training at batch 32 for
the trainable candidates), taken twice on this machine:

* busy: with two CPU-bound processes (``python -c 'while 1: pass'``) running beside it;
* quiet: without them.

Then only the ``stable`` flags (and the ``stop_reason`` / ``timing_note`` that go with them)
are edited -- every figure is as measured:

* ``busy_all.jsonl``: the busy run, every row ``stable=False`` (a row that came out stable
  anyway gets ``stop_reason="unstable"`` and a ``timing_note`` saying it was set here);
* ``busy_baseline.jsonl``: the baseline's (``digits-mlp``) rows of the busy run, ``stable=False``
  as above, and the other candidates' rows of the quiet run, ``stable=True``
  (``stop_reason="ci-met"``, no ``timing_note``): the case of a baseline measured while the
  machine was busy and the rest re-measured later.

``background_load``, ``latency_round_spread_rel`` and ``latency_ci_rel`` stay as measured: they
are the N and X of the busy-machine statement the tests check.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SET_HERE = "stable=False set by tests/data/make_busy_results.py (measured beside two CPU hogs)"


def _sweep():
    import effplan
    from effplan.examples import digits_candidates
    from effplan.notebook import QUICK_SETTINGS, trainable

    cands = digits_candidates()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inf = effplan.measure(cands, batch_sizes=(1, 8, 32), mode="inference", device="cpu",
                              progress=False, **QUICK_SETTINGS).to_frame()
        trn = effplan.measure(trainable(cands), batch_sizes=(32,), mode="training", device="cpu",
                              progress=False, **QUICK_SETTINGS).to_frame()
    return pd.concat([inf, trn], ignore_index=True)


def _unstable(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    was = df["stable"].astype("boolean").fillna(False).to_numpy(bool)
    df.loc[was, "stop_reason"] = "unstable"
    df.loc[was, "timing_note"] = SET_HERE
    df["stable"] = False
    return df


def main() -> None:
    from effplan.records import store

    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(2)]
    try:
        busy = _sweep()
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    quiet = _sweep()
    base = "digits-mlp"
    for name, df in (("busy_all.jsonl", _unstable(busy)),
                     ("busy_baseline.jsonl", pd.concat([
                         _unstable(busy[busy["candidate"] == base]),
                         quiet[quiet["candidate"] != base].assign(stable=True, stop_reason="ci-met",
                                                                 timing_note="")],
                         ignore_index=True))):
        path = HERE / name
        path.unlink(missing_ok=True)
        store.save_frame(df, path)
        print(f"{path}: {len(df)} rows, {int((~df['stable'].astype(bool)).sum())} not stable, "
              f"background load {df['background_load'].min():.2f}-{df['background_load'].max():.2f}")


if __name__ == "__main__":
    main()
