"""The ``effplan`` command line: measure the built-in candidates, plan from results files, list
the hardware catalog. Everything here calls the same functions the notebooks call.

Examples::

    effplan measure --family digits --batch-sizes 1 8 32     # -> results/measurements.jsonl
    effplan plan results/ --hardware L4 "H100 SXM" --samples 500 --out plan/
    effplan plan results/ --requests-per-day 2e6 --format csv > summary.csv
    effplan catalog

Defaults (PUE, utilisation, peak-to-average, growth, horizon, latency target, the results
folder, the demo traffic) come from :mod:`effplan.defaults`, as in the notebooks and dashboard.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import defaults
from .errors import EffplanError


def _measure(args: argparse.Namespace) -> int:
    from . import examples
    from .measurement import measure

    if args.family == "digits":
        candidates = examples.digits_candidates(seed=args.seed)
    else:
        candidates = examples.transformer_candidates(seq_len=args.seq_len, seed=args.seed)
    if args.candidates:
        wanted = set(args.candidates)
        unknown = wanted - {c.name for c in candidates}
        if unknown:
            raise EffplanError(f"--candidates: unknown {sorted(unknown)}; "
                               f"known: {[c.name for c in candidates]}")
        candidates = [c for c in candidates if c.name in wanted]
    if args.out is None:
        args.out = defaults.results_file()
    m = measure(candidates, batch_sizes=tuple(args.batch_sizes), mode=args.mode,
                device=args.device, threads=args.threads, time_budget_s=args.time_budget_s,
                energy_window_s=args.energy_window_s, results_path=args.out,
                progress=not args.quiet)
    print(m.summary().to_string(index=False))
    print(f"\n{len(m.to_frame())} rows appended to {args.out}")
    return 0


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _plan(args: argparse.Namespace) -> int:
    from . import store
    from .catalog import load_catalog
    from .planning import InferenceWorkload, Prices, TrainingWorkload, plan

    frame = store.load(args.results)
    if args.requests_per_day is None:
        args.requests_per_day = defaults.demo_requests_per_day(
            frame, slo_p95_ms=args.slo_p95_ms or None, target_utilization=args.utilization,
            peak_to_average=args.peak_to_average, items_per_request=args.items_per_request)
        print(f"--requests-per-day not given: demo traffic {args.requests_per_day:,.0f}/day "
              f"(the baseline needs {defaults.DEMO_BASELINE_INSTANCES} instances at peak)",
              file=sys.stderr)
    inference = InferenceWorkload(
        requests_per_day=args.requests_per_day, monthly_growth=args.growth,
        items_per_request=args.items_per_request, peak_to_average=args.peak_to_average,
        slo_p95_ms=args.slo_p95_ms or None, target_utilization=args.utilization,
        months=args.months,
        daily_profile=args.daily_profile)
    training = None
    if args.training_runs_per_quarter:
        training = TrainingWorkload(runs_per_quarter=args.training_runs_per_quarter,
                                    items_per_epoch=args.training_items_per_epoch,
                                    epochs=args.training_epochs)
    prices = Prices(pue=args.pue, grid_region=args.grid_region)
    p = plan(frame, inference=inference, training=training, prices=prices,
             hardware=args.hardware or None, samples=args.samples, seed=args.seed,
             # the catalog plus a row for this machine, so results measured here are priced
             catalog=load_catalog(args.catalog, include_this_machine=True))
    if args.format == "table":  # the answer first: one choice, its savings vs the baseline
        from .planning.frames import baseline_candidate, headline

        print(headline(p, baseline=baseline_candidate(frame)).sentence() + "\n")
    _print_frame(p.summary, args.format, SUMMARY_COLUMNS)
    if args.out:
        written = p.to_csv(args.out)
        print("\nwrote " + ", ".join(str(w) for w in written))
    return 0


def _catalog(args: argparse.Namespace) -> int:
    from .catalog import load_catalog

    cat = load_catalog(args.path, include_this_machine=args.this_machine)
    # every column below is guaranteed by the catalog's validation
    cols = ["name", "kind", "peak_fp32_flops", "peak_fp16_flops", "memory_gb",
            "memory_bandwidth_gb_s", "rated_power_w", "price_per_hour_usd"]
    _print_frame(cat[cols], args.format, cols)
    return 0


#: ``plan``'s default table: what a reader needs, most important first (``text_table`` drops
#: columns from the right to fit the terminal; ``--format wide`` prints every column)
from .formatting import SUMMARY_COLUMNS  # noqa: E402 - one list for the CLI and notebooks

#: short headers of the default table (units stay visible)
HEADERS = {"cost_usd": "cost (horizon)", "cost_usd_p10": "P10", "cost_usd_p90": "P90",
           "price_source": "price from", "provenance": "timing", "instances_max": "max inst.",
           "energy_kwh": "energy", "co2_kg": "CO2 kg", "energy_source": "energy from",
           "latency_p95_ms": "p95 ms", "batch_size": "batch",
           "cost_per_1k_requests_usd": "$/1k req", "infeasible_reason": "why no cost",
           "memory_bandwidth_gb_s": "mem BW GB/s", "peak_fp32_flops": "fp32 FLOP/s",
           "peak_fp16_flops": "fp16 FLOP/s", "price_per_hour_usd": "$/hour",
           "rated_power_w": "power W", "memory_gb": "mem GB"}


def _print_frame(df, fmt: str, columns: list[str]) -> None:
    """Print ``df`` as ``table`` (width-aware, formatted), ``wide`` (every column, formatted),
    ``csv`` or ``json`` (records, raw numbers)."""
    from .formatting import format_frame, text_table

    if fmt == "csv":
        df.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(df.to_json(orient="records", indent=1))
    elif fmt == "wide":
        print(format_frame(df).to_string(index=False))
    else:
        print(text_table(df[[c for c in columns if c in df.columns]], headers=HEADERS))


FORMATS = ("table", "wide", "csv", "json")
FORMAT_HELP = ("table: readable summary fitted to the terminal (default); wide: every column; "
               "csv / json: machine-readable, raw numbers")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="effplan", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser("measure", help="measure the built-in candidates on this machine")
    m.add_argument("--family", choices=("digits", "transformer"), default="digits")
    m.add_argument("--candidates", nargs="*", help="only these candidate names")
    m.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32])
    m.add_argument("--mode", choices=("inference", "training"), default="inference")
    m.add_argument("--device", default="auto")
    m.add_argument("--threads", type=int, default=None, help="torch CPU threads (restored after)")
    m.add_argument("--time-budget-s", type=float, default=None, help="timing budget per point")
    m.add_argument("--energy-window-s", type=float, default=1.0)
    m.add_argument("--seq-len", type=int, default=128, help="transformer family only")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", type=Path, default=None,
                   help=f"results file (default: {defaults.RESULTS_FILENAME} in the shared results "
                        f"folder, see effplan.defaults.results_dir)")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=_measure)

    p = sub.add_parser("plan", help="project monthly/quarterly cost from results files")
    p.add_argument("results", nargs="+", help="JSON Lines results files, folders or globs")
    p.add_argument("--requests-per-day", type=float, default=None,
                   help="requests per day in month 1 (default: demo traffic at which the "
                        f"baseline needs {defaults.DEMO_BASELINE_INSTANCES} instances)")
    p.add_argument("--growth", type=float, default=defaults.MONTHLY_GROWTH,
                   help="monthly growth, e.g. 0.05")
    p.add_argument("--items-per-request", type=float, default=1)
    p.add_argument("--peak-to-average", type=float, default=defaults.PEAK_TO_AVERAGE)
    p.add_argument("--daily-profile", type=_floats, default=None, metavar="W0,...,W23",
                   help="24 comma-separated hourly load weights: instances follow the daily "
                        "curve (autoscaling) instead of being sized for the peak all month")
    p.add_argument("--slo-p95-ms", type=float, default=defaults.SLO_P95_MS,
                   help="p95 latency target, ms (0: none)")
    p.add_argument("--utilization", type=float, default=defaults.TARGET_UTILIZATION)
    p.add_argument("--months", type=int, default=defaults.MONTHS)
    p.add_argument("--hardware", nargs="*", default=[], help="catalog hardware to project to")
    p.add_argument("--pue", type=float, default=defaults.PUE)
    p.add_argument("--grid-region", default=defaults.GRID_REGION)
    p.add_argument("--catalog", default=None, help="your own hardware catalog CSV")
    p.add_argument("--training-runs-per-quarter", type=float, default=0)
    p.add_argument("--training-items-per-epoch", "--training-items-per-run", type=float, default=0,
                   dest="training_items_per_epoch",
                   help="training items per epoch (--training-items-per-run: its old name)")
    p.add_argument("--training-epochs", type=float, default=1)
    p.add_argument("--samples", type=int, default=0, help="Monte Carlo samples (P10/P50/P90)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="folder for monthly/quarterly/summary CSV")
    p.add_argument("--format", choices=FORMATS, default="table", help=FORMAT_HELP)
    p.set_defaults(func=_plan)

    c = sub.add_parser("catalog", help="print the hardware catalog")
    c.add_argument("--path", default=None, help="your own catalog CSV")
    c.add_argument("--this-machine", action="store_true", help="add the detected machine")
    c.add_argument("--format", choices=FORMATS, default="table", help=FORMAT_HELP)
    c.set_defaults(func=_catalog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EffplanError as exc:  # a clear message, not a traceback, for expected failures
        print(f"effplan {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
