"""Time ``effplan.actuals`` (read a FOCUS CSV export and reconcile it with a plan) against a plain
``pandas.read_csv`` + ``groupby`` of the same file.

The export is generated (:mod:`effplan.focus_samples`: hourly rows per instance for a quarter,
the fleet scaled to about ``--rows`` rows) and written as one CSV with every FOCUS 1.0 column the
generator writes. effplan reads it (pyarrow), validates the columns it needs, maps every row to
an option by its tag, buckets months, and builds the variance, the unmapped rows and the
excluded summary. The pandas reference reads the whole file and sums EffectiveCost by Tags and
month -- less work (no validation, no tag parsing, no mapping) -- and both must agree on the
bill's total (asserted). Times: the fastest and the median of ``--repeats`` runs each (the
machine may be shared: the load average is printed).

    python benchmarks/actuals.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import effplan  # noqa: E402
from effplan import focus_samples as fs  # noqa: E402


def write_export(rows: int, out: Path) -> tuple[object, Path, int]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    plan = fs.sample_plan()
    one = len(fs.focus_export(plan, months=3, fleet=1)["focus_usd"])
    two = len(fs.focus_export(plan, months=3, fleet=2)["focus_usd"])
    fleet = max(1, math.ceil((rows - (2 * one - two)) / (two - one)))   # rows grow linearly
    df = fs.focus_export(plan, months=3, fleet=fleet)["focus_usd"]
    path = out / "focus.csv"
    table = pa.Table.from_pandas(df, preserve_index=False)
    pcsv.write_csv(table, path)
    import pyarrow.parquet as pq

    pq.write_table(table, out / "focus.parquet")
    return plan, path, len(df)


def pandas_reference(path: Path) -> float:
    df = pd.read_csv(path)
    month = df["ChargePeriodStart"].str[:7]
    g = df.groupby([df["Tags"], month])["EffectiveCost"].sum()
    return float(g.sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plan, path, n = write_export(args.rows, Path(tmp))
        size_mb = path.stat().st_size / 1e6
        print(f"FOCUS export: {n:,} rows, {size_mb:,.0f} MB CSV; load average "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        t_eff, t_pd = [], []
        total = ref = float("nan")
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            a = effplan.actuals(plan, path, start=fs.SAMPLE_START)
            t_eff.append(time.perf_counter() - t0)
            total = a.bill_total_usd
            t0 = time.perf_counter()
            ref = pandas_reference(path)
            t_pd.append(time.perf_counter() - t0)
        t_pq = []
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            b = effplan.actuals(plan, path.with_suffix(".parquet"), start=fs.SAMPLE_START)
            t_pq.append(time.perf_counter() - t0)
        assert np.isclose(b.bill_total_usd, ref, rtol=1e-9)
        counted = float(a.variance["actual_cost_usd"].sum() + a.excluded["cost_usd"].sum())
        assert np.isclose(total, ref, rtol=1e-9), (total, ref)
        assert np.isclose(counted, ref, rtol=1e-9), (counted, ref)
        print(f"effplan.actuals (read + validate + reconcile): fastest {min(t_eff):.2f} s, median "
              f"{statistics.median(t_eff):.2f} s")
        print(f"effplan.actuals on the same rows as Parquet:   fastest {min(t_pq):.2f} s, median "
              f"{statistics.median(t_pq):.2f} s")
        print(f"pandas.read_csv + groupby (read + sum only):   fastest {min(t_pd):.2f} s, median "
              f"{statistics.median(t_pd):.2f} s")
        print(f"bill total ${total:,.2f} (both agree); variance rows {len(a.variance)}, unmapped "
              f"rows {len(a.unmapped):,}")
        print(f"pandas / effplan = {min(t_pd) / min(t_eff):.1f}x (fastest runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
