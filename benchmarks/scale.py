"""How effplan's store and planner grow with the work: results files of 10k / 100k / 1M rows,
and the first (cold) plan against the what-if re-plan and the per-row reference.

Table 1, per file size (full measurement records, ~2.9 KB a line, as ``effplan.measure``
writes them: 50 candidates x 40 hardware x 4 batch sizes x 7 hosts, re-measured, so later rows
repeat points): seconds and peak memory (each step in a fresh process: its peak RSS) of
``pandas.read_json(lines=True)``, of ``effplan.store.load`` (validation, duplicates, the
newest kept) and their ratio; ``completed_points`` (resume) the first time (it builds the
index beside the file) and then (it reads the index only); with ``--reference``, the store
before issue 28 (``tests/store_reference.py``: per-row Python) up to 100k rows.

Table 2: ``effplan.plan`` on the synthetic measurements of ``benchmarks/plan.py`` (20 and 200
candidates x 12 hardware x 4 batch sizes: 960 and 9,600 rows), deterministic: the cold plan
(a fresh measurements table: validation, preparation and the operating-point choice included),
the what-if re-plan (prepared measurements reused) and the per-row reference of plan.py; then
the plan of the 1M-row file loaded (time and peak memory in a fresh process).

Times are the fastest of ``--repeats`` runs for the plans, one run for the big loads; the load
average is printed (the machine may be shared).

    python benchmarks/scale.py [--rows 10000,100000,1000000] [--repeats 5] [--reference]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _base_record() -> dict:
    with open(ROOT / "tests" / "data" / "busy_all.jsonl", encoding="utf-8") as fh:
        return json.loads(fh.readline())


def write_results(path: Path, n: int, seed: int = 0) -> None:
    """``n`` full records: 8,000 distinct points a week, so later rows re-measure earlier points."""
    base = _base_record()
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        buf = []
        for i in range(n):
            r = dict(base)
            r["candidate"] = f"cand{i % 50:02d}"
            r["hardware"] = f"hw{(i // 50) % 40:02d}"
            r["batch_size"] = (1, 4, 16, 64)[(i // 2000) % 4]
            r["hardware_id"] = f"host{(i // 8000) % 7}"
            p50 = rng.uniform(0.1, 10)
            r["latency_p50_ms"] = p50
            r["latency_p95_ms"] = p50 * 1.3
            r["throughput_items_per_s"] = r["batch_size"] / p50 * 1000
            week = i // 56000
            r["timestamp"] = f"2026-{1 + week // 4 % 12:02d}-{1 + 7 * (week % 4):02d}T{(i // 100) % 24:02d}:00:00+00:00"
            r["stable"] = i % 3 != 0
            buf.append(json.dumps(r) + "\n")
            if len(buf) >= 10000:
                fh.writelines(buf)
                buf = []
        fh.writelines(buf)


# ---- steps, each run in a fresh process (peak memory is the process's high-water mark) -------

def _step(name: str, path: str) -> object:
    warnings.simplefilter("ignore")
    if name == "read_json":
        import pandas as pd
        return len(pd.read_json(path, lines=True))
    if name == "load":
        from effplan.records import store
        return len(store.load(path, progress=False))
    if name == "reference":
        import store_reference
        return len(store_reference.load(path))
    if name == "completed":
        from effplan.records import store
        return len(store.completed_points(path))
    if name == "plan":
        import importlib

        from effplan.records import store
        P = importlib.import_module("effplan.planning")
        frame = store.load(path, progress=False)
        wl = P.InferenceWorkload(5e6, monthly_growth=0.05, slo_p95_ms=50, months=12)
        return len(P.plan(frame, wl).monthly)
    raise ValueError(name)


def _child(name: str, path: str, q) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import importlib

    import pandas  # noqa: F401  (imports are not timed)

    import effplan.records.store  # noqa: F401
    importlib.import_module("effplan.planning")
    if name == "reference":
        import store_reference  # noqa: F401
    t0 = time.perf_counter()
    out = _step(name, path)
    dt = time.perf_counter() - t0
    q.put((dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, out))


def run_step(name: str, path: Path) -> tuple[float, float, object]:
    """(seconds, peak RSS MiB, result) of one step in a fresh process."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(name, str(path), q))
    p.start()
    res = q.get()
    p.join()
    return res


def table_load(rows: list[int], reference: bool, folder: Path, read_json_up_to: int) -> None:
    print(f"{'rows':>9}{'file MiB':>10}{'read_json s':>13}{'(MiB)':>8}{'store.load s':>14}{'(MiB)':>8}"
          f"{'ratio':>7}{'resume 1st s':>14}{'resume s':>10}{'per-row load s':>16}{'ratio':>7}")
    for n in rows:
        path = folder / f"results_{n}.jsonl"
        write_results(path, n)
        mib = path.stat().st_size / 2 ** 20
        # pandas.read_json holds every record as Python objects: ~22 KB a row at its peak
        t_rj, m_rj, _ = run_step("read_json", path) if n <= read_json_up_to else (math.nan, math.nan, None)
        t_ld, m_ld, kept = run_step("load", path)
        t_c1, _, _ = run_step("completed", path)      # builds the index beside the file
        t_c2, _, _ = run_step("completed", path)      # reads the index only
        ref = ""
        if reference and n <= 100_000:
            t_ref, _, _ = run_step("reference", path)
            ref = f"{t_ref:>16.2f}{t_ref / t_ld:>6.1f}x"
        print(f"{n:>9,}{mib:>10.0f}{t_rj:>13.2f}{m_rj:>8.0f}{t_ld:>14.2f}{m_ld:>8.0f}{t_ld / t_rj:>6.2f}x"
              f"{t_c1:>14.2f}{t_c2:>10.2f}{ref}")
        if n == max(rows):
            t_pl, m_pl, months = run_step("plan", path)
            print(f"\nload + plan of the {n:,}-row file ({kept} points kept after duplicates): "
                  f"{t_pl:.1f} s, peak {m_pl:.0f} MiB")
        for f in (path, path.with_name(path.name + ".index")):
            f.unlink(missing_ok=True)


def _fastest(fn, repeats: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def table_plan(repeats: int) -> None:
    import importlib

    import plan as bench_plan

    P = importlib.import_module("effplan.planning")
    warnings.simplefilter("ignore")
    print(f"\n{'rows':>7}{'cold plan ms':>14}{'re-plan ms':>12}{'cold/re-plan':>14}{'per-row ms':>12}"
          f"{'per-row/cold':>14}")
    pr = P.Prices(pue=1.2, grid_region="eu")
    wl = P.InferenceWorkload(5e6, monthly_growth=0.10, peak_to_average=2.5, slo_p95_ms=25, months=12)
    for n_cand in (20, 200):
        bench_plan.N_CANDIDATES = n_cand
        df = bench_plan.synthetic_measurements()
        prep = P.prepare(df)
        t_cold = _fastest(lambda: P.plan(df, wl, prices=pr), repeats)
        t_re = _fastest(lambda: P.plan(prep, wl, prices=pr), repeats)
        opt = prep.choose(wl)
        t_ref = _fastest(lambda: bench_plan.reference(opt, wl, pr, 0, 0, P.Uncertainty()), 1)
        print(f"{len(df):>7,}{t_cold * 1e3:>14.1f}{t_re * 1e3:>12.1f}{t_cold / t_re:>13.1f}x"
              f"{t_ref * 1e3:>12.1f}{t_ref / t_cold:>13.1f}x")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="10000,100000,1000000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--reference", action="store_true", help="also time the per-row store (<= 100k rows)")
    ap.add_argument("--no-load", action="store_true", help="only the plan table")
    ap.add_argument("--read-json-up-to", type=int, default=1_000_000,
                    help="skip pandas.read_json above this many rows (it needs ~22 KB a row)")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"effplan scale benchmark; load average {load:.2f} on {os.cpu_count()} CPUs\n")
    if not args.no_load:
        with tempfile.TemporaryDirectory() as tmp:
            table_load([int(x) for x in args.rows.split(",")], args.reference, Path(tmp),
                       args.read_json_up_to)
    table_plan(args.repeats)


if __name__ == "__main__":
    main()
