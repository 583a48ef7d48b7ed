"""The ``effplan`` command line: measure the built-in candidates, plan from results files, list
the hardware catalog. Everything here calls the same functions the notebooks call.

Examples::

    effplan measure --family digits --batch-sizes 1 8 32     # -> results/measurements.jsonl
    effplan measure --ray auto --target L4 --target H100 --out results/fleet.jsonl
    effplan fleet check auto --target L4                       # the Ray preflight
    effplan measure --slurm --partition gpu --gpus-per-task 1 --candidates-from my_models.py:CANDIDATES
    effplan plan results/ --hardware L4 "H100 SXM" --samples 500 --out plan/
    effplan plan results/ --requests-per-day 2e6 --format csv > summary.csv
    effplan measure --mode generation --batch-sizes 1 4 16 --prompt-tokens 128 512 \\
        --output-tokens 64 --out results/generation.jsonl
    effplan plan results/generation.jsonl --requests-per-day 5e5 --prompt-tokens 500 \\
        --output-tokens 200 --slo-ttft-p95-ms 500 --slo-tpot-p95-ms 50 --hardware L4 "H100 SXM"
    effplan catalog
    effplan plan results/ --start 2026-10 --out plan/
    effplan actuals plan/ billing/ --start 2026-10 --fx EUR=1.08     # budget vs the FOCUS bill
    effplan import vllm results/vllm-*.json --candidate llama-8b --hardware "H100 SXM" \
        --config path/to/config.json --out results/measurements.jsonl

Defaults (PUE, utilisation, peak-to-average, growth, horizon, latency target, the results
folder, the demo traffic) come from :mod:`effplan.defaults`, as in the notebooks and dashboard.

Results timed on a busy machine (rows ``stable=False``) give a flagged answer: the headline and a
line under the table say "Timings were taken on a busy machine (background load N cores); the
cost could be X% off." (:mod:`effplan.planning.stability`); ``plan --strict-stability`` refuses
such rows instead (every option planned only from them is infeasible with the reason).

Exit status: 0 on success, 2 for bad input (a named effplan error, no traceback), 3 when
``plan --strict`` found bad results records (without ``--strict`` they are skipped with a loud
warning listing each ``file:line`` and reason), 4 when ``measure`` saw every point fail or more
than ``--max-failed-share`` of them (one line says so), or lost its fleet's head, 1 when
``fleet check`` found a problem, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import defaults, settings
from .errors import EffplanError, SkippedRecordsError, ValidationError
from .safe import TerminalStream, spreadsheet_frame, terminal_text


def _measure(args: argparse.Namespace) -> int:
    if args.target and args.ray is None:
        raise EffplanError("--target needs --ray (targets are Ray resources)")
    if args.ray is not None and args.slurm:
        raise EffplanError("--ray and --slurm: choose one executor")
    from .models import examples
    from .measurement import measure

    if args.out is None:
        args.out = defaults.results_file()
    if args.mode == "generation" or args.family == "decoder":
        return _measure_generation(args)
    if args.candidates_from:
        candidates = list(args.candidates_from)  # import paths, resolved by measure (and on nodes)
    elif args.family == "digits":
        candidates = examples.digits_candidates(seed=args.seed)
    else:
        candidates = examples.transformer_candidates(seq_len=args.seq_len, seed=args.seed)
    if args.candidates and not args.candidates_from:
        wanted = set(args.candidates)
        unknown = wanted - {c.name for c in candidates}
        if unknown:
            raise EffplanError(f"--candidates: unknown {sorted(unknown)}; "
                               f"known: {[c.name for c in candidates]}")
        candidates = [c for c in candidates if c.name in wanted]
    if args.candidates_from and not _fleet(args):  # the local executor takes Candidate objects
        from .bench.fleet_candidates import resolve_candidates

        candidates = [c for spec in args.candidates_from for c in resolve_candidates(spec)]
    before = _count_lines(args.out)
    _say_resume(args)
    try:
        m = measure(candidates, batch_sizes=tuple(args.batch_sizes), mode=args.mode,
                    device=args.device, threads=args.threads, time_budget_s=args.time_budget_s,
                    energy_window_s=args.energy_window_s, results_path=args.out,
                    resume=args.resume or False, progress=not args.quiet,
                    point_timeout_s=args.point_timeout_s, **_fleet(args))
    except KeyboardInterrupt:
        return _interrupted(args.out, before)
    except EffplanError as exc:
        from .bench.fleet import FleetLostError

        if not isinstance(exc, FleetLostError):
            raise
        print(f"effplan measure: error: {exc}", file=sys.stderr)
        _interrupted(args.out, before)
        args.hard_exit = True  # see main(): Ray would hold the exit until its own 60 s timeout
        return 4
    if not m.rows:  # a resumed fleet sweep with nothing left (its stored rows are not repeated)
        print(f"nothing to measure: every point asked for is already finished in {args.out}")
        return 0
    from .formatting import text_table

    # fitted to the terminal (the first columns kept; the rest named under it); every column
    # is in the results file
    cols = ["candidate", "batch_size", "latency_p95_ms", "throughput_items_per_s", "stable",
            "peak_memory_mib", "energy_per_item_j", "energy", "quality", "status", "error"]
    print(text_table(m.summary()[cols], keep=3, headers={**HEADERS, "throughput_items_per_s":
                                                          "items/s", "peak_memory_mib": "mem MiB",
                                                          "energy_per_item_j": "J/item"}))
    print()
    print(_appended(args.out, before, len(m.to_frame())))
    return _failed_status(m, args.max_failed_share)


def _say_resume(args: argparse.Namespace) -> None:
    """Before a resumed sweep starts: how many stored points it will measure again."""
    if args.resume:
        from .bench.resume import redo_counts

        print(redo_counts(args.out, args.resume).sentence(), file=sys.stderr)


def _failed_status(m, max_share: float) -> int:
    """4 (and one line saying so) when every point failed or more than ``max_share`` did."""
    rows = [r for r in m.rows]
    failed = [r for r in rows if r.get("status") != "ok"]
    if not rows or not failed or (len(failed) < len(rows) and len(failed) / len(rows) <= max_share):
        return 0
    first = failed[0]
    why = str(first.get("error") or "").splitlines()[0][:200] if first.get("error") else "no reason"
    print(f"effplan measure: FAILED: {len(failed)} of {len(rows)} points failed (more than "
          f"{max_share:.0%} allowed, --max-failed-share); first: {first.get('candidate')} "
          f"bs={first.get('batch_size')}: {why}", file=sys.stderr)
    return 4


def _appended(path: Path, before: int, rows: int) -> str:
    """The last line of ``measure``: how many points THIS run wrote (counted in the file, after
    its first ``before`` lines), and how many of the rows shown were already there (--resume)."""
    from .store import points_since

    saved, _provisional = points_since(path, before)
    reused = max(0, rows - saved)
    return (f"\n{saved} point(s) appended to {path}"
            + (f"; {reused} row(s) shown were already there (--resume)" if reused else ""))


def _fleet(args: argparse.Namespace) -> dict:
    """``measure`` keywords of ``--ray [ADDRESS]`` / ``--target`` or ``--slurm`` (none for a
    local sweep)."""
    if getattr(args, "slurm", False):
        from .bench.slurm import SlurmOptions

        return {"executor": "slurm", "fleet": SlurmOptions(
            folder=args.slurm_folder, partition=args.partition, gpus_per_task=args.gpus_per_task,
            time_limit_min=args.time_limit_min, exclusive=args.exclusive, cluster=args.slurm_cluster)}
    if args.ray is None:
        return {}
    kw = {"executor": "ray", "targets": args.target or None,
          "ray_address": None if args.ray == "local" else args.ray}
    if args.exclusive != "host" or args.working_dir is not None:
        from .bench.fleet import FleetOptions

        env = {"working_dir": str(args.working_dir)} if args.working_dir is not None else None
        kw["fleet"] = FleetOptions(exclusive=args.exclusive, runtime_env=env)
    return kw


def _fleet_check(args: argparse.Namespace) -> int:
    """``effplan fleet check [ADDRESS]``: the preflight of a Ray sweep, printed."""
    from .bench.fleet import FleetOptions, _connect, require_ray
    from .bench.fleet_check import preflight

    ray = require_ray()
    address = _connect(ray, None if args.address == "local" else args.address, FleetOptions())
    check = preflight(ray, args.target or ["cpu"], exclusive=args.exclusive,
                      timeout_s=args.timeout_s, address=address)
    print(check.report())
    return 0 if check.ok else 1


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0


def _interrupted(path: Path, before: int) -> int:
    """Ctrl-C: one line saying how many points this run saved (a point is on disk after each of
    its timing passes; those whose last pass did not run are provisional) and how to go on."""
    from .records.store import points_since

    saved, provisional = points_since(path, before)
    unfinished = (f" ({provisional} of them provisional: stopped before their last timing pass)"
                  if provisional else "")
    print(f"\n{saved} points saved to {path}{unfinished}; re-run with --resume", file=sys.stderr)
    return 130


def _measure_generation(args: argparse.Namespace) -> int:
    from .models.decoders import decoder_candidates
    from .measurement import measure

    if args.mode != "generation" or args.family not in ("digits", "decoder"):
        raise EffplanError("--family decoder and --mode generation go together (the decoder family "
                           "is measured by generation)")
    candidates = decoder_candidates(seed=args.seed)
    if args.candidates:
        unknown = set(args.candidates) - {c.name for c in candidates}
        if unknown:
            raise EffplanError(f"--candidates: unknown {sorted(unknown)}; "
                               f"known: {[c.name for c in candidates]}")
        candidates = [c for c in candidates if c.name in set(args.candidates)]
    before = _count_lines(args.out)
    _say_resume(args)
    try:
        m = measure(candidates, batch_sizes=tuple(args.batch_sizes), mode="generation",
                    prompt_tokens=tuple(args.prompt_tokens), output_tokens=args.output_tokens,
                    device=args.device, threads=args.threads, time_budget_s=args.time_budget_s,
                    energy_window_s=args.energy_window_s, results_path=args.out,
                    resume=args.resume or False, progress=not args.quiet,
                    point_timeout_s=args.point_timeout_s, **_fleet(args))
    except KeyboardInterrupt:
        return _interrupted(args.out, before)
    cols = ["candidate", "batch_size", "prompt_tokens", "ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms",
            "tpot_p95_ms", "decode_tokens_per_s", "kv_cache_bytes_per_token",
            "energy_per_output_token_j", "energy_source", "perplexity", "status"]
    print(m.to_frame()[cols].to_string(index=False))
    print(_appended(args.out, before, len(m)))
    return _failed_status(m, args.max_failed_share)


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def inference_workload(args: argparse.Namespace, frame: Any) -> Any:
    """The :class:`~effplan.InferenceWorkload` ``effplan plan`` plans (the arguments' defaults
    are :mod:`effplan.defaults`, as the notebooks' and the dashboard's); without
    ``--requests-per-day`` the demo traffic of ``frame``, stored back into ``args``."""
    from .planning import InferenceWorkload

    if args.requests_per_day is None:
        args.requests_per_day = defaults.demo_requests_per_day(
            frame, slo_p95_ms=args.slo_p95_ms or None, target_utilization=args.utilization,
            peak_to_average=args.peak_to_average, items_per_request=args.items_per_request,
            allow_unstable=_allow_unstable(args))
    return InferenceWorkload(
        requests_per_day=args.requests_per_day, monthly_growth=args.growth,
        items_per_request=args.items_per_request, peak_to_average=args.peak_to_average,
        slo_p95_ms=args.slo_p95_ms or None, target_utilization=args.utilization,
        months=args.months, daily_profile=args.daily_profile,
        max_batch_wait_ms=args.max_batch_wait_ms, start=args.start)


def generation_workload(args: argparse.Namespace) -> Any:
    """The :class:`~effplan.GenerationWorkload` of ``effplan plan --prompt-tokens ...``."""
    from .planning import GenerationWorkload

    return GenerationWorkload(
        requests_per_day=args.requests_per_day, prompt_tokens=args.prompt_tokens,
        output_tokens=args.output_tokens, slo_ttft_p95_ms=args.slo_ttft_p95_ms,
        slo_tpot_p95_ms=args.slo_tpot_p95_ms, monthly_growth=args.growth,
        peak_to_average=args.peak_to_average, target_utilization=args.utilization, months=args.months,
        memory_fraction=args.memory_fraction, start=args.start)


def _plan(args: argparse.Namespace) -> int:
    from .records import store
    from .refdata.catalog import load_catalog
    from .planning import Prices, TrainingWorkload, plan

    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValidationError("--out", f"{args.out} is an existing file; --out names a FOLDER that "
                                       "summary.csv, monthly.csv, quarterly.csv and inputs.json are "
                                       "written into (give a new or existing folder)")
    frame = store.load(args.results)
    skipped = frame.attrs.get("errors", [])
    if skipped:
        # store.load has listed every skipped record (file:line: field: reason) as a warning
        if args.strict:
            raise SkippedRecordsError(
                f"{len(skipped)} bad record(s) skipped while loading the results (first: "
                f"{skipped[0]['file']}:{skipped[0]['line']}: {skipped[0]['field']}: "
                f"{skipped[0]['message']}); fix or remove them, or drop --strict to plan without them")
        print(f"effplan plan: WARNING: {len(skipped)} bad record(s) were SKIPPED (listed above); "
              f"this plan uses only the {len(frame)} loaded row(s). Pass --strict to fail instead.",
              file=sys.stderr)
    if args.prompt_tokens is not None or args.output_tokens is not None:
        return _plan_generation(args, frame)
    demo = args.requests_per_day is None
    inference = inference_workload(args, frame)
    if demo:
        print(f"--requests-per-day not given: demo traffic {args.requests_per_day:,.0f}/day "
              f"(the baseline needs {defaults.DEMO_BASELINE_INSTANCES} instances at peak)",
              file=sys.stderr)
    training = None
    if args.training_runs_per_quarter:
        training = TrainingWorkload(runs_per_quarter=args.training_runs_per_quarter,
                                    items_per_epoch=args.training_items_per_epoch,
                                    epochs=args.training_epochs)
    prices = Prices(pue=args.pue, grid_region=args.grid_region)
    p = plan(frame, inference=inference, training=training, prices=prices,
             hardware=args.hardware or None, samples=args.samples, seed=args.seed,
             # the catalog plus a row for this machine, so results measured here are priced
             catalog=load_catalog(args.catalog, include_this_machine=True),
             allow_unstable=_allow_unstable(args))
    if args.format == "table":  # the answer first: one choice, its savings vs the baseline
        from .planning.frames import baseline_candidate, headline

        h = headline(p, baseline=baseline_candidate(frame), traffic_note="demo traffic" if demo else "")
        import shutil
        import textwrap

        width = shutil.get_terminal_size((120, 24)).columns
        # the answer, what it assumes (traffic, growth, utilisation, target, price source and
        # date, the quarter's months), then any note; wrapped to the terminal
        lines = [h.sentence(), h.assumptions()] + [
            f"Note: {n}" for n in h.notes()[1 if h.stability_note else 0:]]   # busy: in the sentence
        print("\n".join(textwrap.fill(ln, width=max(40, width)) for ln in lines) + "\n")
    _print_frame(p.summary, args.format, SUMMARY_COLUMNS)
    if args.format in ("table", "wide"):
        _print_flagged(p.summary)
    if args.out:
        written = p.to_csv(args.out)
        print("\nwrote " + ", ".join(str(w) for w in written))
    return 0


def _plan_generation(args: argparse.Namespace, frame) -> int:
    from .refdata.catalog import load_catalog
    from .planning import Prices, plan

    if args.prompt_tokens is None or args.output_tokens is None:
        raise EffplanError("--prompt-tokens and --output-tokens go together (a generation plan)")
    if args.training_runs_per_quarter:
        raise EffplanError("a generation plan (--prompt-tokens) is made on its own: drop --training-*")
    if args.requests_per_day is None:
        raise EffplanError("--requests-per-day: give the traffic of a generation plan "
                           "(the demo traffic covers inference plans only)")
    workload = generation_workload(args)
    p = plan(frame, generation=workload, prices=Prices(pue=args.pue, grid_region=args.grid_region),
             hardware=args.hardware or None, samples=args.samples, seed=args.seed,
             catalog=load_catalog(args.catalog, include_this_machine=True),
             allow_unstable=_allow_unstable(args))
    cols = ["candidate", "hardware", "provenance", "feasible", "concurrency", "binding_constraint",
            "instances_max", "cost_usd", "cost_per_1m_output_tokens_usd", "energy_per_response_wh",
            "energy_kwh", "co2_kg", "perplexity", "infeasible_reason"]
    print(p.summary[cols].to_string(index=False))
    _print_flagged(p.summary)
    if args.out:
        written = p.to_csv(args.out)
        print("\nwrote " + ", ".join(str(w) for w in written))
    return 0


def _pairs(text: str) -> tuple[str, str]:
    key, sep, value = text.rpartition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


#: the variance table's columns, most important first (``text_table`` drops from the right)
ACTUALS_COLUMNS = ["month", "candidate", "hardware", "planned_cost_usd", "actual_cost_usd",
                   "variance_usd", "variance_pct", "volume_variance_usd", "rate_variance_usd",
                   "outside_band", "planned_instance_hours", "actual_instance_hours",
                   "tax_cost_usd", "credit_cost_usd", "billed_cost_usd", "effective_cost_usd",
                   "note"]
ACTUALS_HEADERS = {"planned_cost_usd": "planned", "actual_cost_usd": "actual",
                   "variance_usd": "variance", "variance_pct": "var %",
                   "volume_variance_usd": "volume", "rate_variance_usd": "rate",
                   "outside_band": "outside band", "planned_instance_hours": "plan h",
                   "actual_instance_hours": "actual h", "tax_cost_usd": "tax",
                   "credit_cost_usd": "credit", "billed_cost_usd": "billed (invoice)",
                   "effective_cost_usd": "effective (budget)"}


def _actuals(args: argparse.Namespace) -> int:
    from .planning import actuals

    fx = {}
    for key, value in args.fx or []:
        try:
            fx[key] = float(value)
        except ValueError:
            raise ValidationError("--fx", f"{key}={value!r}: the rate must be a number (US dollars "
                                          f"per 1 {key})") from None
    a = actuals(args.plan_dir, args.billing, start=args.start, option_tag=args.option_tag,
                cost_column=args.cost_column, fx=fx or None,
                mapping=dict(args.map) if args.map else None)
    if args.format in ("csv", "json"):
        _print_frame(a.variance, args.format, list(a.variance.columns))
    else:
        from .formatting import text_table

        print(a.sentence() + "\n")
        print(f"Per option and month ({a.cost_view}; band ±{a.band:.0%}):")
        print(text_table(a.variance[ACTUALS_COLUMNS] if args.format == "table" else a.variance,
                         headers=ACTUALS_HEADERS, keep=3))
        q = a.quarters[["quarter", "candidate", "hardware", "months", "planned_cost_usd",
                        "actual_cost_usd", "variance_usd", "variance_pct", "volume_variance_usd",
                        "rate_variance_usd", "outside_band"]]
        print("\nPer calendar quarter:")
        print(text_table(q, headers=ACTUALS_HEADERS, keep=3))
        if len(a.currency) > 1 or (len(a.currency) and a.currency["currency"].iloc[0] != "USD"):
            print("\nCurrencies (converted at the fx rates given):")
            print(text_table(a.currency))
        if len(a.unmapped):
            um = a.unmapped.groupby(["reason", "ServiceCategory"], sort=False).agg(
                rows=("cost_usd", "size"), cost_usd=("cost_usd", "sum")).reset_index()
            print(f"\nUnmapped compute/AI spend ({len(a.unmapped):,} rows, no option claims them):")
            print(text_table(um, keep=2, max_text=60))
        for n in a.notes:
            print(f"note: {n}")
    if args.reforecast:
        r = a.reforecast(samples=args.samples)
        cols = [c for c in ("quarter_label", "candidate", "hardware", "months_actual", "cost_usd",
                            "cost_usd_p10", "cost_usd_p90", "planned_cost_usd")
                if c in r.quarterly.columns]
        print("\nRe-forecast per quarter (elapsed months are the actuals):")
        print(text_table(r.quarterly[cols], keep=3) if args.format not in ("csv", "json")
              else spreadsheet_frame(r.quarterly[cols]).to_csv(index=False))
    if args.out:
        written = a.to_csv(args.out)
        if args.reforecast:
            written += r.to_csv(Path(args.out) / "reforecast")
        print("\nwrote " + ", ".join(str(w) for w in written))
    return 0


def _import(args: argparse.Namespace) -> int:
    """``effplan import TOOL FILE...``: a serving engine's own benchmark as measured generation rows,
    appended to ``--out`` through :func:`effplan.store.append` (see :mod:`effplan.importers`)."""
    import warnings

    from .records import store
    from .refdata.catalog import load_catalog
    from .importers import SUMMARY_COLUMNS, import_benchmark

    if args.out is None:
        args.out = defaults.results_file()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = import_benchmark(args.files, args.tool, candidate=args.candidate, hardware=args.hardware,
                                prompt_tokens=args.prompt_tokens, config=args.config,
                                catalog=load_catalog(args.catalog) if args.catalog else None)
    for w in caught:
        print(f"effplan import: WARNING: {w.message}", file=sys.stderr)
    written = store.append(args.out, rows)
    cols = SUMMARY_COLUMNS[2:]   # candidate and hardware are in the last line
    _print_frame(rows[cols], "wide" if args.format == "table" else args.format, cols)
    if args.format == "table":
        notes = dict.fromkeys(n for text in rows["notes"] for n in str(text).split("; ") if n)
        for n in notes:
            print(f"  note: {n}")
        print(f"\n{written} {args.tool} rows ({args.candidate} on {args.hardware}) appended to {args.out}; "
              f"plan them with: effplan plan {args.out} --prompt-tokens N --output-tokens N "
              "--requests-per-day R")
    return 0


def _allow_unstable(args: argparse.Namespace) -> bool | None:
    """``--strict-stability``: refuse not-stable rows (False); else the shared default (None)."""
    return False if getattr(args, "strict_stability", False) else None


def _print_flagged(summary) -> None:
    """Under the table: which options were planned from timings taken on a busy machine, with
    the statement (their N and X are the columns background_load and timing_spread_rel)."""
    from .planning.stability import busy_sentence, is_flagged, spread_pct, worst

    if "timing_unstable" not in summary.columns:
        return
    bad = summary[summary["timing_unstable"].map(is_flagged).to_numpy(bool)]
    if bad.empty:
        return
    n, x = worst(zip(bad["background_load"], bad["timing_spread_rel"]))
    each = ", ".join(f"{c} @ {h} ±{spread_pct(v)}" for c, h, v in
                     zip(bad["candidate"], bad["hardware"], bad["timing_spread_rel"]))
    print(f"\nFLAGGED: {len(bad)} of {len(summary)} option(s) are planned from timings that are NOT "
          f"stable. {busy_sentence(n, x, up_to=len(bad) > 1)} Per option: {each}. For firm "
          "figures re-measure on a quiet machine (effplan measure --resume); --strict-stability "
          "refuses such rows.")


def _catalog(args: argparse.Namespace) -> int:
    from .refdata.catalog import load_catalog

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

    if fmt == "csv":  # formula-like text written as text (effplan.safe.spreadsheet_frame)
        from .records.column_units import CSV_FLOAT_FORMAT

        spreadsheet_frame(df).to_csv(sys.stdout, index=False, float_format=CSV_FLOAT_FORMAT)   # no float noise
    elif fmt == "json":
        print(df.to_json(orient="records", indent=1))
    elif fmt == "wide":
        print(format_frame(_one_line(df)).to_string(index=False))
    else:
        print(text_table(_one_line(df[[c for c in columns if c in df.columns]]), headers=HEADERS))


def _one_line(df):  # noqa: ANN001, ANN202
    """Text cells on one line each: a newline inside a name is shown as ``\\n`` (a table row
    stays a row); other control characters as visible escapes (:func:`effplan.safe.terminal_text`)."""
    import pandas as pd

    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = [terminal_text(v, newlines=False) if isinstance(v, str) else v for v in out[c]]
    return out


FORMATS = ("table", "wide", "csv", "json")
FORMAT_HELP = ("table: readable summary fitted to the terminal (default); wide: every column; "
               "csv / json: machine-readable, raw numbers")


def _add_measure_parser(sub) -> None:
    """``effplan measure``: its options (local, Ray and Slurm sweeps)."""
    m = sub.add_parser("measure", help="measure the built-in candidates on this machine")
    m.add_argument("--family", choices=("digits", "transformer", "decoder"), default="digits",
                   help="decoder: the built-in language models, measured with --mode generation")
    m.add_argument("--candidates", nargs="*", help="only these candidate names")
    m.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32])
    m.add_argument("--mode", choices=("inference", "training", "generation"), default="inference",
                   help="generation: prefill + decode with a KV cache (batch sizes = concurrency)")
    m.add_argument("--prompt-tokens", nargs="+", type=int, default=[128, 512],
                   help="generation: prompt lengths")
    m.add_argument("--output-tokens", type=int, default=64, help="generation: output tokens")
    m.add_argument("--device", default="auto")
    m.add_argument("--threads", type=int, default=None, help="torch CPU threads (restored after)")
    m.add_argument("--time-budget-s", type=float, default=None, help="timing budget per point")
    m.add_argument("--energy-window-s", type=float, default=1.0)
    m.add_argument("--point-timeout-s", type=float, default=None, metavar="SECONDS",
                   help="wall-clock limit of one timing pass of a point; a point over it becomes an "
                        "error row 'timed out after N s' and its worker is killed (default: 120 s "
                        "+ 10 x (time budget + energy window), doubled phases for generation)")
    m.add_argument("--seq-len", type=int, default=128, help="transformer family only")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", type=Path, default=None,
                   help=f"results file (default: {defaults.RESULTS_FILENAME} in the shared results "
                        f"folder, see effplan.defaults.results_dir)")
    m.add_argument("--resume", nargs="?", const="unfinished", default=None,
                   choices=("unfinished", "unstable"),
                   help="skip the points already finished in --out (same candidate, host, hardware, "
                        "mode, dtype, batch size). unfinished (default): measure error rows and "
                        "provisional points again; unstable: finished-but-unstable points too. "
                        "Says how many it will redo before it starts")
    m.add_argument("--candidates-from", action="append", default=[], metavar="FILE.py:ATTR",
                   help="measure YOUR candidates: an import path 'file.py:attr' or 'module:attr' "
                        "naming a Candidate, a list of them or a function returning them "
                        "(repeatable; on a fleet each node imports it: ship the file with "
                        "--working-dir or ray job submit --working-dir)")
    m.add_argument("--max-failed-share", type=float, default=settings.MAX_FAILED_SHARE,
                   metavar="SHARE", help="exit with status 4 when more than this share of the points "
                                         "failed (always when every point failed)")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="measure on a Ray cluster (effplan[ray]): 'auto', 'ray://HEAD:10001', "
                        "or no ADDRESS for a one-node Ray here; see effplan.fleet")
    m.add_argument("--target", action="append", default=[], metavar="TARGET",
                   help="with --ray, repeatable: 'L4', 'H100', 'gpu', 'cpu' or 'RESOURCE=N'")
    m.add_argument("--exclusive", choices=("host", "gpu"), default="host",
                   help="fleet: one measurement per machine at a time (host, default) or per GPU")
    m.add_argument("--working-dir", type=Path, default=None, metavar="DIR",
                   help="with --ray: the job's runtime environment working_dir (shipped to every "
                        "node; relative --candidates-from paths are read from it)")
    m.add_argument("--slurm", action="store_true",
                   help="measure as a Slurm job array through submitit (effplan[slurm]); without "
                        "Slurm, submitit's local executor runs the array here")
    m.add_argument("--partition", default=None, help="--slurm: the partition")
    m.add_argument("--gpus-per-task", type=int, default=0, help="--slurm: GPUs per array task")
    m.add_argument("--time-limit-min", type=int, default=60, help="--slurm: time limit per array task")
    m.add_argument("--slurm-folder", type=Path, default=Path("effplan-slurm"),
                   help="--slurm: submitit's folder and the points' streams (a shared filesystem)")
    m.add_argument("--slurm-cluster", choices=("slurm", "local", "debug"), default=None,
                   help="--slurm: force submitit's executor (default: Slurm if available, else local)")
    m.set_defaults(func=_measure)


def _add_fleet_parser(sub) -> None:
    """``effplan fleet check``: the Ray preflight."""
    f = sub.add_parser("fleet", help="fleet tools: 'effplan fleet check [ADDRESS]' (Ray preflight)")
    fsub = f.add_subparsers(dest="fleet_command", required=True)
    fc = fsub.add_parser("check", help="connect to a Ray cluster, make a round trip to every measuring "
                                       "node, list them per target, warn about versions and shared hosts")
    fc.add_argument("address", nargs="?", default="auto",
                    help="'auto' (default: the cluster this machine joined), HOST:PORT, ray://HEAD:10001 "
                         "or 'local'")
    fc.add_argument("--target", action="append", default=[], metavar="TARGET",
                    help="targets to list the measuring nodes of (repeatable; default: cpu)")
    fc.add_argument("--exclusive", choices=("host", "gpu"), default="host")
    fc.add_argument("--timeout-s", type=float, default=settings.PREFLIGHT_TIMEOUT_S,
                    help="how long to wait for every node's reply")
    fc.set_defaults(func=_fleet_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="effplan", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    _add_measure_parser(sub)
    _add_fleet_parser(sub)

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
                   help="end-to-end p95 target, ms: batch fill + queueing + batch latency "
                        "(0: none)")
    p.add_argument("--max-batch-wait-ms", type=float, default=None,
                   help="longest a batch waits to fill before it is dispatched, ms")
    p.add_argument("--prompt-tokens", type=int, default=None,
                   help="generation plan (LLM serving): prompt tokens per request; needs --output-tokens")
    p.add_argument("--output-tokens", type=int, default=None, help="generation plan: output tokens per response")
    p.add_argument("--slo-ttft-p95-ms", type=float, default=None, help="generation: p95 time-to-first-token target")
    p.add_argument("--slo-tpot-p95-ms", type=float, default=None, help="generation: p95 time-per-output-token target")
    p.add_argument("--memory-fraction", type=float, default=0.9,
                   help="generation: share of device memory for weights + KV cache")
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
    p.add_argument("--start", default=defaults.start_month(), metavar="YYYY-MM",
                   help="calendar month of month 1: the frames get calendar labels (2026-10, "
                        "2026-Q4) and the plan can be compared with a bill (effplan actuals); "
                        f"default: next month ({defaults.start_month()})")
    p.add_argument("--out", type=Path, default=None, help="folder for monthly/quarterly/summary CSV")
    p.add_argument("--format", choices=FORMATS, default="table", help=FORMAT_HELP)
    p.add_argument("--strict", action="store_true",
                   help="exit with status 3 when any results record is bad and skipped (default: "
                        "plan with the good rows and print a loud warning)")
    p.add_argument("--strict-stability", action="store_true",
                   help="refuse rows measured stable=False (timed on a busy machine): options "
                        "planned only from them are infeasible with the reason (default: use them "
                        "and flag every figure: 'the cost could be X%% off')")
    p.set_defaults(func=_plan)

    a = sub.add_parser("actuals", help="compare a plan with its FOCUS bill: variance per option "
                                       "and month (volume / rate), unmapped spend, re-forecast")
    a.add_argument("plan_dir", type=Path, help="the folder effplan plan --out wrote")
    a.add_argument("billing", nargs="+", help="FOCUS CSV / Parquet files or folders (Hive too)")
    a.add_argument("--start", default=None, metavar="YYYY-MM",
                   help="calendar month of the plan's month 1 (default: the plan's own)")
    a.add_argument("--option-tag", default=defaults.OPTION_TAG,
                   help="tag key whose value is <candidate>@<hardware>")
    a.add_argument("--cost-column", choices=("EffectiveCost", "BilledCost"),
                   default=defaults.COST_COLUMN,
                   help="EffectiveCost: budget view, amortised (default); BilledCost: invoice view")
    a.add_argument("--fx", type=_pairs, action="append", metavar="CUR=RATE",
                   help="US dollars per 1 unit of a billing currency, e.g. EUR=1.08 (repeatable)")
    a.add_argument("--map", type=_pairs, action="append", metavar="PREFIX=OPTION",
                   help="untagged rows: a ResourceId prefix or SkuId -> <candidate>@<hardware>")
    a.add_argument("--reforecast", action="store_true",
                   help="also print the re-forecast per quarter (actuals + re-planned months)")
    a.add_argument("--samples", type=int, default=defaults.SAMPLES,
                   help="Monte Carlo samples of the re-forecast")
    a.add_argument("--out", type=Path, default=None, help="folder for the variance CSV files")
    a.add_argument("--format", choices=FORMATS, default="table", help=FORMAT_HELP)
    a.set_defaults(func=_actuals)
    from .importers import TOOLS

    i = sub.add_parser("import", help="import a serving engine's own benchmark (vllm, guidellm, aiperf, "
                                      "llmperf, optimum-benchmark) as measured generation rows")
    i.add_argument("tool", choices=list(TOOLS))
    i.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="result files (vllm: --save-result JSON / --append-result; guidellm: benchmarks.json; "
                        "aiperf: profile_export_aiperf.json; llmperf: *_summary.json; optimum-benchmark: "
                        "benchmark.json)")
    i.add_argument("--candidate", required=True, help="name of the model in the plan")
    i.add_argument("--hardware", required=True, help="the GPU it ran on: a catalog name (effplan catalog) or yours")
    i.add_argument("--config", default=None, metavar="HF_CONFIG",
                   help="the model's config.json or its folder: exact weight and KV-cache bytes (memory "
                        "checked, projection to other GPUs); without it memory is not checked")
    i.add_argument("--prompt-tokens", type=int, default=None,
                   help="prompt length, when the file does not record it (default: the file's mean)")
    i.add_argument("--catalog", default=None, help="your own hardware catalog CSV (rated power, memory)")
    i.add_argument("--out", type=Path, default=None,
                   help=f"results file to append to (default: {defaults.RESULTS_FILENAME} in the shared "
                        "results folder)")
    i.add_argument("--format", choices=FORMATS, default="table", help=FORMAT_HELP)
    i.set_defaults(func=_import)

    c = sub.add_parser("catalog", help="print the hardware catalog")
    c.add_argument("--path", default=None, help="your own catalog CSV")
    c.add_argument("--this-machine", action="store_true", help="add the detected machine")
    c.add_argument("--format", choices=FORMATS, default="table", help=FORMAT_HELP)
    c.set_defaults(func=_catalog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # names from a results file reach the terminal as text: a control character (an ANSI escape,
    # a carriage return, a bidirectional override) is printed as a visible \x1b, never obeyed
    out, err, fmt = sys.stdout, sys.stderr, warnings.formatwarning
    sys.stdout, sys.stderr = TerminalStream(out), TerminalStream(err, keep="\r")  # tqdm redraws with \r
    warnings.formatwarning = _format_warning
    try:
        rc = _run(args)
    finally:
        sys.stdout, sys.stderr, warnings.formatwarning = out, err, fmt
    if argv is None and getattr(args, "hard_exit", False):
        # the command line after a lost Ray head: every point is on disk and the line is
        # printed; Ray's shutdown at exit would wait for the dead head and then have its core
        # kill the process (status 1), so leave now with this status
        sys.stdout.flush()
        sys.stderr.flush()
        import os

        os._exit(rc)
    return rc


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """A warning as the CLI prints it: its category and text (through
    :func:`effplan.safe.terminal_text`: a carriage return in a name is shown, not obeyed)."""
    return f"{category.__name__}: {terminal_text(message)}\n"


def _run(args: argparse.Namespace) -> int:
    def error(text: str) -> None:
        print(f"effplan {args.command}: error: {terminal_text(text)}", file=sys.stderr)

    try:
        return args.func(args)
    except SkippedRecordsError as exc:  # --strict: its own status, so scripts can tell it apart
        error(str(exc))
        return 3
    except EffplanError as exc:  # a clear message, not a traceback, for expected failures
        error(str(exc))
        return 2
    except OSError as exc:  # a file that cannot be read or written: name it, no traceback
        where = f"{exc.filename} " if getattr(exc, "filename", None) else ""
        error(f"{where}{exc.strerror or exc}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
