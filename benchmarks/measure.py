"""effplan's adaptive timing against ``torch.utils.benchmark``, point by point and as a sweep.

Run: ``.venv/bin/python benchmarks/measure.py [--threads N] [--batch-sizes 1,32] [--rounds R]
[--sweeps S] [--time-budget-s B]``

1. **Timing alone**, for each built-in digits candidate x batch size, on the same model, inputs
   and thread count, both under ``torch.inference_mode()``:

   * effplan: :func:`effplan.measurement.adaptive_time` with the default :class:`TimingPolicy`
     (the timing phase of ``effplan.measure``: warm-up, then rounds of samples until the ~95% CI
     of the median is within 2%, the rounds agree and no stalls are seen, 2 s budget; no load
     monitor here, so contention is not judged);
   * torch: ``Timer("model(x)").adaptive_autorange()`` (its defaults: IQR/median < 0.1,
     ``max_run_time=10`` s).

   Reported: the ratio of the medians (agreement) and the wall time each took to reach its
   figure (call to return, warm-up included). The two are interleaved ``--rounds`` times and the
   medians of the rounds reported, so slow drift of a shared machine affects both alike.
2. **The whole sweep** (:func:`sweep_walls`): the same points measured three ways in this run,
   ``--sweeps`` times in rotating order, and the median wall time per point of each printed
   with their ratios:

   * ``effplan.measure(..., energy=False)`` as it is: one worker process per candidate kept
     alive across its batch sizes, passes and retries; two interleaved passes, stall and
     contention checks, one retry of not-stable points, default thread count;
   * the same with a fresh worker process per point per pass (how effplan measured before
     workers were reused; a private switch kept for this comparison);
   * a plain loop: the model built once per candidate, then
     ``Timer("model(x)").blocked_autorange()`` (0.2 s per point) per batch size.

   The aim: effplan's sweep within 2x the plain loop's wall time on a quiet machine, with its
   stability checks kept. How busy the machine was is printed beside it (the median
   ``background_load`` of effplan's rows: cores of other processes' work while timing).
3. The energy meter's start+stop overhead on this device (median of 50).
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

import effplan  # noqa: E402
from effplan.errors import EffplanWarning  # noqa: E402
from effplan.examples import digits_candidates  # noqa: E402
from effplan.records.samples import TimingPolicy
from effplan.bench.timing import adaptive_time  # noqa: E402


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


def _noop(report):
    return None


def _sweep_effplan(cands, bss, budget, threads, workers):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)  # the stable flags are read from the rows
        t0 = time.perf_counter()
        m = effplan.measure(cands, batch_sizes=bss, device="cpu", energy=False, time_budget_s=budget,
                            threads=threads, progress=False, _workers=workers)
        wall = time.perf_counter() - t0
    ok = [r for r in m.rows if r["status"] == "ok"]
    loads = [r["background_load"] for r in ok if r["background_load"] == r["background_load"]]
    return wall, sum(r["stable"] is True for r in ok), loads


def _sweep_plain(cands, bss, threads):
    t0 = time.perf_counter()
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for cand in cands:
            model = cand.build_model("cpu").eval()
            for bs in bss:
                x = cand.make_inputs(bs)
                timer = tb.Timer("model(x)", globals={"model": model, "x": x}, num_threads=threads)
                with torch.inference_mode():
                    timer.blocked_autorange()
    finally:
        torch.set_num_threads(prev)
    return time.perf_counter() - t0


def sweep_walls(cands, bss, *, budget: float | None = None, threads: int | None = None,
                sweeps: int = 1) -> dict:
    """Wall time per point of one sweep over ``cands`` x ``bss``, three ways in this run (see the
    module docstring): ``new`` (effplan, one worker per candidate), ``old`` (a worker per point
    per pass), ``plain`` (a ``blocked_autorange`` loop); medians over ``sweeps`` repetitions in
    rotating order. Also the stable points of each effplan sweep, the threads and the
    background load: the median of the effplan rows' ``background_load`` (cores of other
    processes' work while each point was timed, as its worker measured it)."""
    from effplan.measurement import default_threads
    from effplan.worker import run_isolated

    threads = threads or default_threads()
    n = len(cands) * len(bss)
    run_isolated(_noop)  # the forkserver starts once per process: not part of any one sweep
    walls = {"new": [], "old": [], "plain": []}
    stable = {"new": [], "old": []}
    loads: list[float] = []
    kinds = ["new", "old", "plain"]
    for i in range(sweeps):
        for kind in kinds[i % 3:] + kinds[:i % 3]:
            if kind == "plain":
                walls["plain"].append(_sweep_plain(cands, bss, threads) / n)
                continue
            wall, ok, row_loads = _sweep_effplan(cands, bss, budget, threads,
                                                 None if kind == "new" else "per-pass")
            walls[kind].append(wall / n)
            stable[kind].append(ok)
            loads += row_loads
    med = {k: statistics.median(v) for k, v in walls.items()}
    return {"points": n, "threads": threads, "load": statistics.median(loads) if loads else float("nan"), **med,
            "stable_new": statistics.median(stable["new"]), "stable_old": statistics.median(stable["old"])}


def sweep_line(w: dict, label: str = "") -> str:
    """The printed comparison of :func:`sweep_walls`."""
    return (f"sweep wall per point{label} ({w['points']} points, {w['threads']} thread(s), median "
            f"background load while timing {w['load']:.2f} cores): effplan {w['new']:.3f} s (one worker per candidate; "
            f"{w['stable_new']:g}/{w['points']} stable), {w['old']:.3f} s (a worker per point per pass, "
            f"as before; {w['stable_old']:g} stable), plain blocked_autorange loop {w['plain']:.3f} s; "
            f"new/old {w['new'] / w['old']:.2f}x, new/plain {w['new'] / w['plain']:.2f}x (aim <= 2x on a "
            f"quiet machine), old/plain {w['old'] / w['plain']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-sizes", default="1,32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sweeps", type=int, default=3, help="repetitions of the sweep comparison")
    ap.add_argument("--time-budget-s", type=float, default=None,
                    help="effplan's time budget per point in the sweeps (default: the policy's, 2 s)")
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

    # ---- the whole sweep: effplan against its old per-pass workers and a plain loop
    w = sweep_walls(digits_candidates(), bss, budget=args.time_budget_s, threads=args.threads,
                    sweeps=args.sweeps)
    print(sweep_line(w))

    # ---- energy meter overhead
    from effplan.devices.energy import EnergyMeter

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
