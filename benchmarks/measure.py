"""effplan's adaptive timing against ``torch.utils.benchmark``'s ``adaptive_autorange``.

Run: ``.venv/bin/python benchmarks/measure.py [--threads N] [--batch-sizes 1,32] [--rounds R]``

For each built-in digits candidate x batch size, on the same model, inputs and thread count,
both under ``torch.inference_mode()``:

* effplan: :func:`effplan.measurement.adaptive_time` with the default :class:`TimingPolicy`
  (the timing phase of ``effplan.measure``: warm-up, then rounds of samples until the ~95% CI of
  the median is within 2%, the rounds agree and no stalls are seen, 2 s budget; no load
  monitor here, so contention is not judged);
* torch: ``Timer("model(x)").adaptive_autorange()`` (its defaults: IQR/median < 0.1,
  ``max_run_time=10`` s).

Reported: the ratio of the medians (agreement) and the wall time each took to reach its figure
(call to return, warm-up included). The two are interleaved ``--rounds`` times and the medians
of the rounds reported, so slow drift of a shared machine affects both alike. Then the energy
meter's start+stop overhead on this device (median of 50).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.utils.benchmark as tb  # noqa: E402

from effplan.errors import EffplanWarning  # noqa: E402
from effplan.examples import digits_candidates  # noqa: E402
from effplan.measurement import TimingPolicy, adaptive_time  # noqa: E402


def _effplan(model, x, policy):
    t0 = time.perf_counter()
    with torch.inference_mode():
        t = adaptive_time(lambda: model(x), policy)
    return t.median_ms, time.perf_counter() - t0, t


def _torch(model, x, threads):
    t0 = time.perf_counter()
    timer = tb.Timer("model(x)", globals={"model": model, "x": x}, num_threads=threads)
    with torch.inference_mode():
        m = timer.adaptive_autorange()
    return m.median * 1e3, time.perf_counter() - t0, m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-sizes", default="1,32")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    bss = [int(b) for b in args.batch_sizes.split(",")]
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    policy = TimingPolicy()
    rows = []
    try:
        for cand in digits_candidates():
            model = cand.build_model("cpu").eval()
            for bs in bss:
                x = cand.make_inputs(bs)
                ours, theirs = [], []
                for _ in range(args.rounds):
                    ours.append(_effplan(model, x, policy))
                    theirs.append(_torch(model, x, args.threads))
                e_med = statistics.median(o[0] for o in ours)
                e_wall = statistics.median(o[1] for o in ours)
                t_med = statistics.median(t[0] for t in theirs)
                t_wall = statistics.median(t[1] for t in theirs)
                stable = sum(o[2].stable for o in ours)  # ci-met: rounds agree, no stalls, CI met
                rows.append((cand.name, bs, e_med * 1e3, t_med * 1e3, e_med / t_med,
                             statistics.median(o[2].ci_rel for o in ours) * 100,
                             f"{stable}/{args.rounds}", e_wall, t_wall, e_wall / t_wall))
    finally:
        torch.set_num_threads(prev_threads)

    head = ("candidate", "batch", "effplan p50 us", "torch p50 us", "p50 ratio", "CI %",
            "stable", "effplan wall s", "torch wall s", "wall ratio")
    fmt = "{:<20} {:>5} {:>14.2f} {:>12.2f} {:>9.3f} {:>6.2f} {:>6} {:>14.3f} {:>12.3f} {:>10.2f}"
    print(f"torch {torch.__version__}, threads={args.threads}, rounds={args.rounds} "
          f"(medians over rounds); effplan policy: CI target {policy.target_ci_rel:.0%}, "
          f"budget {policy.time_budget_s} s")
    print("{:<20} {:>5} {:>14} {:>12} {:>9} {:>6} {:>6} {:>14} {:>12} {:>10}".format(*head))
    for r in rows:
        print(fmt.format(*r))
    ratios = [r[4] for r in rows]
    walls = [r[9] for r in rows]
    print(f"p50 ratio effplan/torch: median {statistics.median(ratios):.3f}, "
          f"range {min(ratios):.3f}-{max(ratios):.3f}; wall ratio median {statistics.median(walls):.2f}")

    # ---- energy meter overhead
    from effplan.energy import EnergyMeter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        meter = EnergyMeter("cpu")
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            meter.start()
            meter.stop()
            times.append(time.perf_counter() - t0)
        created = []
        for _ in range(20):
            t0 = time.perf_counter()
            with EnergyMeter("cpu"):
                pass
            created.append(time.perf_counter() - t0)
    print(f"EnergyMeter(cpu) [{meter.source}] start+stop overhead: median "
          f"{statistics.median(times) * 1e3:.3f} ms (n=50); construct+enter+exit median "
          f"{statistics.median(created) * 1e3:.3f} ms (n=20)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
