"""The local sweep: every candidate x batch size (x prompt length) of :func:`effplan.measure`,
point by point, in passes, with retries, resume and every finished pass on disk at once.

:func:`run` checks the candidates and batch sizes (the one place), then measures the points
in groups of :data:`effplan.bench.points.MAX_LIVE_WORKERS` candidates, each candidate's worker
process alive for its group: pass 1 of every point of the group, then pass 2 of every point,
..., then the retries of its not-stable points (see :mod:`effplan.measurement` for the rules).
One point's timing pass is :func:`effplan.bench.points.point_job`. The Ray executor
(:mod:`effplan.bench.fleet`) runs this same sweep on each node.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import EffplanWarning, ValidationError
from ..devices.hardware import normalize_device
from ..models.candidates import Candidate
from ..records.measurements import Measurements, SampleKey
from ..records.samples import Timing, TimingPolicy
from ..records.schema import MEASUREMENT_COLUMNS, MODES
from . import points, probes
from . import configs
from .configs import SweepSettings, positive_ints

__all__ = ["run", "default_threads", "append_rows"]

#: the warnings after a sweep point at the code that called effplan.measure():
#: warn -> _Sweep.warn_after -> _Sweep.measure -> run -> effplan.measure -> the caller
_CALLER = 5


def default_threads() -> int:
    """torch CPU threads for a sweep: torch's current setting, capped at the cores free
    throughout a short window (:func:`effplan.bench.threads.sweep_threads`, the one thread rule
    of local and fleet sweeps); each point is capped again by its work
    (:func:`effplan.bench.threads.threads_for_work`)."""
    from .threads import sweep_threads

    return sweep_threads()


def append_rows(path: Path, rows: list[dict[str, Any]], hardware: Mapping[str, Any]) -> None:
    """Append point records to the results file (:func:`effplan.records.store.append`)."""
    from ..records import store

    store.append(path, rows, hardware=dict(hardware))


def _device(device: Any) -> str:
    """Where a sweep (or a candidate that names its own device) runs: the one device rule,
    checked to exist now (:func:`effplan.devices.hardware.normalize_device`)."""
    return normalize_device(device, check_available=True)


@dataclass(frozen=True)
class _Plan:
    """What :func:`run` checked: the candidates, batch sizes, prompt lengths and resolved settings."""

    candidates: list[Any]
    batch_sizes: list[int]
    mode: str
    prompts: list[int | None]
    gen_opts: dict[str, Any]
    policy: TimingPolicy
    point_timeout: float
    sweep_device: str
    isolate: bool
    retries: int
    passes: int
    path: Path | None


def _checked(candidates: Any, batch_sizes: Any, mode: str, device: Any, s: SweepSettings) -> _Plan:
    from ..records import store

    gen_opts: dict[str, Any] = {}
    if mode == "generation":
        from ..models.generative import GenerationCandidate

        cand_type: type = GenerationCandidate
        prompt_list, n_out, seed = s.generation.resolved()
        prompts: list[int | None] = list(prompt_list)
        gen_opts = {"output_tokens": n_out, "seed": seed}
    else:
        if s.generation.prompt_tokens is not None or s.generation.output_tokens is not None:
            raise ValidationError("prompt_tokens", f"prompt_tokens / output_tokens apply to mode='generation' "
                                  f"only, not mode={mode!r}")
        cand_type = Candidate
        prompts = [None]
    if isinstance(candidates, Candidate | cand_type) or not isinstance(candidates, Iterable):
        candidates = [candidates]
    candidates = list(candidates)
    if not candidates:
        raise ValidationError("candidates", "no candidates given")
    for i, c in enumerate(candidates):
        if not isinstance(c, cand_type):
            hint = ("" if mode != "generation" else " (mode='generation' measures GenerationCandidate: "
                    "see effplan.decoders.decoder_candidates or effplan.generation.hf_candidate)")
            raise ValidationError("candidates", f"item {i} is a {type(c).__name__}, not a "
                                  f"{cand_type.__name__}{hint}")
    names = [c.name for c in candidates]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationError("candidates", f"candidate names must be unique; repeated: {dupes}")
    bss = positive_ints("batch_sizes", batch_sizes)
    if mode not in MODES:
        raise ValidationError("mode", f"{mode!r} is not one of {MODES}")
    sw, en = s.sweep, s.energy
    policy = s.timing
    point_timeout = (points.default_point_timeout_s(policy.time_budget_s, en.window_s if en.measure else 0.0, mode)
                     if sw.point_timeout_s is None else float(sw.point_timeout_s))
    sweep_device = _device(device)
    path = Path(sw.results_path) if sw.results_path is not None else None
    if path is not None:  # before the first point: never measure into a file that cannot be written
        store.check_results_path(path)
    return _Plan(candidates=candidates, batch_sizes=bss, mode=mode, prompts=prompts, gen_opts=gen_opts,
                 policy=policy, point_timeout=point_timeout, sweep_device=sweep_device,
                 isolate=configs.ISOLATE_DEFAULT if sw.isolate is None else bool(sw.isolate),
                 retries=configs.RETRIES_DEFAULT if sw.retries is None else sw.retries,
                 passes=configs.PASSES_DEFAULT if sw.passes is None else sw.passes, path=path)


def run(candidates: Any, batch_sizes: Any, mode: str, device: Any, settings: SweepSettings,
        workers: Any = None) -> Measurements:
    """Measure every candidate at every batch size (x prompt length) on ``device`` under
    ``settings`` (:func:`effplan.bench.configs.build`); ``workers``: a
    :class:`effplan.bench.worker.WorkerPool` to measure in (a Ray task's), or ``"per-pass"`` (a
    fresh worker per point per pass, for ``benchmarks/``)."""
    plan = _checked(candidates, batch_sizes, mode, device, settings)
    return _Sweep(plan, settings, workers).measure()


class _Sweep:
    """One sweep's state: the rows, raw samples, hardware, idle power and what went wrong."""

    def __init__(self, plan: _Plan, settings: SweepSettings, workers: Any) -> None:
        from .worker import WorkerPool

        self.p, self.s = plan, settings
        self.meter_factory = settings.energy.meter or probes.default_meter
        self.workers = workers
        self.pool: Any = workers if isinstance(workers, WorkerPool) else None
        self.own_pool = self.pool is None
        self.rows: list[dict[str, Any]] = []
        self.samples: dict[SampleKey, Timing] = {}
        self.hardware: dict[str, dict[str, Any]] = {}
        self.idle: dict[str, float] = {}
        self.degraded: list[str] = []
        self.unsaved: list[str] = []
        self.shippable: dict[str, str] = {}
        self.hashes: dict[str, dict[str, str]] = {}
        self.bar: Any = None

    def device_of(self, cand: Any) -> str:
        return _device(cand.device) if cand.device else self.p.sweep_device

    # ------------------------------------------------------------------ saving
    def save(self, row: dict[str, Any], timings: Mapping[SampleKey, Timing], why_provisional: str = "") -> None:
        """Append the record of a point (a provisional one, that a later pass of this sweep
        supersedes, when ``why_provisional`` says why) and its raw samples."""
        from ..records import store

        path = self.p.path
        if path is None:
            return
        rec = points.provisional(row, why_provisional) if why_provisional else row
        hw = self.hardware[row["device"]]
        written = False  # the record is on disk: a later failure loses only its raw samples
        try:
            append_rows(path, [rec], hw)
            written = True
            if timings:
                store.append_samples(path, [points.samples_record(rec, hw, t, points.sample_phase(k))
                                            for k, t in timings.items()])
        except (OSError, ValidationError) as exc:  # the point stays in memory, with the reason
            msg = (f"record saved to {path}, its raw samples not saved to {store.samples_path(path)}: "
                   if written else f"not saved to {path}: ") + f"{type(exc).__name__}: {exc}"
            row["error"] = f"{row['error']}; {msg}" if row["error"] else msg
            label = points.point_label(row) + (" (raw samples only)" if written else "")
            if label not in self.unsaved:
                self.unsaved.append(label)

    # ------------------------------------------------------------------ the sweep
    def measure(self) -> Measurements:
        import torch

        prev_threads = torch.get_num_threads()
        # Warnings raised inside the sweep (energy fallback, unsupported operators) repeat for every
        # point; they are collected and re-emitted once each when the sweep ends (or is interrupted).
        caught = warnings.catch_warnings(record=True)
        recorded = caught.__enter__()
        warnings.simplefilter("always")
        try:
            todo = self.prepare()
            names = list(dict.fromkeys(c.name for c, _, _, _ in todo))
            size = self.pool.max_live if (self.pool is not None and self.pool.reuse) else max(1, len(names))
            for g in range(0, len(names), size):
                group = set(names[g:g + size])
                self.measure_group([pt for pt in todo if pt[0].name in group])
                if self.own_pool and self.pool is not None:
                    for name in group:
                        self.pool.discard(name)
        finally:
            if self.own_pool and self.pool is not None:
                self.pool.close()
            if self.bar is not None:
                self.bar.close()
            torch.set_num_threads(prev_threads)
            caught.__exit__(None, None, None)
            seen: set[tuple[type, str]] = set()
            for w in recorded:
                key = (w.category, str(w.message))
                if key not in seen:
                    seen.add(key)
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.warn_after()
        return Measurements(rows=tuple(self.rows), hardware=self.hardware, samples=self.samples)

    def prepare(self) -> list[tuple[Any, str, int, int | None]]:
        """Threads, hardware, the candidates' own fields checked, resume, idle power, which
        candidates can be shipped to a worker, the pool and the progress bar: the points to measure."""
        import torch
        from tqdm.auto import tqdm

        from ..records import store
        from .reproducibility import reproducibility_fields

        p, sw, en = self.p, self.s.sweep, self.s.energy
        self.threads = sw.threads if sw.threads is not None else default_threads()
        torch.set_num_threads(self.threads)
        for dev in dict.fromkeys(self.device_of(c) for c in p.candidates):
            self.hardware[dev] = probes.hardware_facts(dev)
        # non-measured fields (name, quality, tags...) are validated before anything is measured
        store.validate_rows([points.empty_row(c, p.mode, bs, self.device_of(c), self.hardware[self.device_of(c)],
                                              self.threads, math.nan, p.prompts[0], p.gen_opts.get("output_tokens"))
                             for c in p.candidates for bs in p.batch_sizes[:1]], where="measure()")
        todo = [(c, self.device_of(c), bs, pr) for c in p.candidates for bs in p.batch_sizes for pr in p.prompts]
        if sw.resume:
            todo, kept = points.resume(p.path, todo, p.mode, self.hardware, sw.resume)
            self.rows.extend(kept)
        for dev in dict.fromkeys(d for _, d, _, _ in todo):
            if not en.measure:
                self.idle[dev] = math.nan
            elif en.idle_power_w is not None:
                self.idle[dev] = float(en.idle_power_w)
            else:
                self.idle[dev] = probes.measure_idle(dev, en.idle_s, self.degraded)
        if p.isolate:
            from .worker import can_ship

            for c in dict.fromkeys(c for c, _, _, _ in todo):
                ok, why = can_ship((points.point_job, c, sw.clock, self.meter_factory, sw.optimizer))
                self.shippable[c.name] = "" if ok else why
                if not ok:
                    self.degraded.append(f"effplan.measure: candidate {c.name!r} could not be shipped to a "
                                         f"worker process ({why}); it was measured in this process "
                                         "('isolation' on its rows), where point_timeout_s cannot stop it: "
                                         "define its functions at module level or avoid capturing locks, "
                                         "files or generators")
            if self.pool is None:
                self.pool = points.worker_pool(self.threads, reuse=self.workers != "per-pass")
        self.bar = tqdm(total=len(todo) * p.passes, desc=f"effplan.measure ({p.mode})", disable=not sw.progress,
                        leave=True)
        self.opts = dict(policy=p.policy, clock=sw.clock, energy=en.measure, energy_window_s=en.window_s,
                         meter_factory=self.meter_factory, optimizer=sw.optimizer, lr=sw.learning_rate,
                         threads=self.threads, auto_threads=sw.threads is None, **p.gen_opts)
        self.sweep_repro = reproducibility_fields(None, timing_policy=p.policy)  # an error row keeps these
        return todo

    def run_point(self, cand: Any, dev: str, bs: int, prompt: int | None, timing_pass: int,
                  prior: Mapping[SampleKey, Timing] | None = None,
                  first: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[SampleKey, Timing]]:
        """Timing pass ``timing_pass`` of a point (``prior``: its timings so far, ``first``:
        its first pass's row); without a prior it is one pass with the whole budget (a retry,
        or ``passes=1``) unless ``timing_pass`` < ``passes``."""
        import torch

        from .worker import WorkerTimeout

        p, sw, bar = self.p, self.s.sweep, self.bar
        done = float(round(bar.n))
        bar.set_postfix_str(f"{cand.name} bs={bs}" + (f" prompt={prompt}" if prompt else ""))
        row = points.empty_row(cand, p.mode, bs, dev, self.hardware[dev], self.threads, self.idle[dev], prompt,
                               p.gen_opts.get("output_tokens"))
        seed = getattr(cand, "seed", None)
        row.update({**self.sweep_repro, "seed": math.nan if seed is None else seed})
        why = self.shippable.get(cand.name, "")
        in_worker = p.isolate and not why
        if in_worker:
            row["isolation"] = "worker"
        else:
            because = "isolate=False" if not p.isolate else f"could not be shipped to a worker ({why})"
            row["isolation"] = f"in-process: {because}; point_timeout_s cannot stop it"
        share = timing_pass / p.passes if timing_pass < p.passes else 1.0
        point_opts = {**self.opts, "known_hashes": self.hashes.get(cand.name), "prior": prior,
                      "known_flops": points.flops_of(first) if first is not None else None,
                      "energy": self.opts["energy"] and first is None,  # energy: in the first pass only
                      "policy": p.policy if share == 1.0 else
                      replace(p.policy, time_budget_s=p.policy.time_budget_s * share)}

        def moved(message: Any) -> None:  # progress from the point: the bar moves per round
            bar.n = round(done + 0.9 * float(message), 3)
            bar.refresh()

        timings: dict[SampleKey, Timing] = {}
        pid = math.nan
        t0 = time.monotonic()
        try:
            if in_worker:
                worker = self.pool.worker(cand.name, cand)
                pid = int(worker.pid)
                try:
                    out = worker.call(points.point_job, bs, p.mode, dev, row, point_opts, True,
                                      on_progress=moved, timeout_s=p.point_timeout)
                finally:
                    if not worker.alive or not self.pool.reuse:
                        self.pool.discard(cand.name)  # crashed or timed out: a fresh one next time
                for category, text in out["warnings"]:
                    warnings.warn(text, category)
            else:
                out = points.point_job(cand, bs, p.mode, dev, row, point_opts, False, report=moved)
            row, timings = out["row"], out["timings"]
            self.degraded.extend(out["degraded"])
            self.samples.update(timings)
            if row["weights_sha256"]:
                self.hashes.setdefault(cand.name, {k: row[k] for k in ("weights_sha256", "config_sha256")})
            took = time.monotonic() - t0
            if not in_worker and took > p.point_timeout:
                row["timing_note"] = "; ".join(x for x in (row["timing_note"], (
                    f"ran {took:.0f} s, longer than point_timeout_s={p.point_timeout:g} s: "
                    "a point measured in this process cannot be stopped")) if x)
        except WorkerTimeout as exc:
            if sw.raise_errors:
                raise
            row["status"] = "error"
            row["error"] = (f"{type(exc).__name__}: {exc} (point_timeout_s={p.point_timeout:g}; "
                            "give a larger one if the model is only slow)")
        except Exception as exc:  # recorded on the row, with its type and message
            if sw.raise_errors:
                raise
            row["status"] = "error"
            row["error"] = f"{type(exc).__name__}: {exc}"
            if dev.startswith("cuda") and not in_worker:
                torch.cuda.empty_cache()
        row["worker_pid"] = pid
        row["timing_pass"] = timing_pass
        row["provisional"] = False
        row["timestamp"] = points.now_iso()
        bar.n = round(done + 1, 3)
        bar.refresh()
        return row, timings

    @staticmethod
    def settled(row: Mapping[str, Any]) -> bool:
        return row["status"] != "ok" or row["stable"] is True

    def measure_group(self, gpoints: list[tuple[Any, str, int, int | None]]) -> None:
        """The points of one group of candidates: pass 1 of every point, then pass 2 of every
        point, ... (interleaved rounds), then the retries of the group's not-stable points."""
        passes, retries = self.p.passes, self.p.retries
        pending: list[tuple[dict[str, Any], dict[SampleKey, Timing]]] = []
        held: list[tuple[dict[str, Any], dict[SampleKey, Timing]]] = []  # not stable: retried

        def finish(row: dict[str, Any], ts: dict[SampleKey, Timing]) -> None:
            """A point after its last pass: saved for good, or (not stable, a retry to come)
            saved provisional and held."""
            if self.settled(row) or retries == 0:
                self.save(row, ts)
            else:
                self.save(row, ts, "provisional: not stable, measured again after the rest of the "
                          "sweep (a retry), whose record supersedes this one")
                held.append((row, ts))

        for cand, dev, bs, prompt in gpoints:
            row, ts = self.run_point(cand, dev, bs, prompt, 1)
            pending.append((row, ts))
            if passes == 1 or row["status"] != "ok" or not ts:
                finish(row, ts)  # no later pass: an error, or passes=1
            else:
                self.save(row, ts, f"provisional after timing pass 1 of {passes}: not judged across "
                          "passes yet; a later record of this point supersedes it, else the sweep was "
                          "interrupted before its last timing pass")
        for k in range(2, passes + 1):
            for i, (cand, dev, bs, prompt) in enumerate(gpoints):
                first, ts = pending[i]
                if first["status"] != "ok" or not ts:
                    continue
                new, ts2 = self.run_point(cand, dev, bs, prompt, k, ts, first)
                pending[i] = points.next_pass(first, ts, new, ts2, k)
                if k == passes:
                    finish(*pending[i])
                else:
                    self.save(*pending[i], f"provisional after timing pass {k} of {passes}: a later "
                              "record of this point supersedes it, else the sweep was interrupted "
                              "before its last timing pass")
        self.rows.extend(row for row, _ in pending)
        self.retry(held)

    def retry(self, held: list[tuple[dict[str, Any], dict[SampleKey, Timing]]]) -> None:
        """Not-stable points again, after the rest of the group (time apart), at most ``retries`` times."""
        p = self.p
        for attempt in range(1, p.retries + 1):
            again = [(j, r) for j, (r, _) in enumerate(held) if not self.settled(r)]
            if not again:
                break
            self.bar.total = self.bar.total + len(again)
            for j, old in again:
                cand = next(c for c in p.candidates if c.name == old["candidate"])
                prompt = int(old["prompt_tokens"]) if p.mode == "generation" else None
                # a fresh pass with the whole budget; FLOPs and energy are the first pass's
                new, ts = self.run_point(cand, old["device"], int(old["batch_size"]), prompt, p.passes + attempt,
                                         first=old)
                new, ts = points.next_pass(old, held[j][1], new, ts, p.passes + attempt)
                if new["timing_note"]:
                    new["timing_note"] += f" (after {attempt} retr{'y' if attempt == 1 else 'ies'})"
                self.rows[next(i for i, r in enumerate(self.rows) if r is old)] = new
                held[j] = (new, ts)
                if self.settled(new) or attempt == p.retries:
                    self.save(new, ts)
                else:
                    self.save(new, ts, "provisional: not stable, measured again (another retry), "
                              "whose record supersedes this one")

    def warn_after(self) -> None:
        """One warning each for failed, not-stable and unsaved points and each degradation."""
        rows, label = self.rows, points.point_label
        failed = [label(r) for r in rows if r["status"] != "ok"]
        if failed:
            kind = "generation " if self.p.mode == "generation" else ""
            warnings.warn(f"effplan.measure: {len(failed)} of {len(rows)} {kind}points failed ({', '.join(failed[:5])}"
                          f"{', ...' if len(failed) > 5 else ''}); see the 'status' and 'error' columns "
                          "(Measurements.errors)", EffplanWarning, stacklevel=_CALLER)
        shaky = [r for r in rows if r["status"] == "ok" and r["stable"] is not True]
        if shaky:
            named = "; ".join(f"{label(r)} ({r['stop_reason'] or 'unknown'}"
                              f"{': ' + r['timing_note'] if r['timing_note'] else ''})" for r in shaky[:6])
            warnings.warn(f"effplan.measure: {len(shaky)} of {len(rows)} points are NOT stable: {named}"
                          f"{'; ...' if len(shaky) > 6 else ''}. They are kept with stable=False and "
                          "plan() uses them and flags every figure planned from them (allow_unstable=False "
                          "refuses them). For firm figures: "
                          "close other programs (background_load shows how busy the machine was), use "
                          "fewer threads (threads=1), a longer time_budget_s, or re-measure them later "
                          "with resume='unstable' (effplan measure --resume unstable)", EffplanWarning, stacklevel=_CALLER)
        if self.unsaved:
            warnings.warn(f"effplan.measure: {len(self.unsaved)} points could not be saved to {self.p.path} "
                          f"({', '.join(self.unsaved[:5])}{', ...' if len(self.unsaved) > 5 else ''}); they are in "
                          "the returned Measurements (reason in 'error'): save them with "
                          "effplan.store.save_frame(m.to_frame(), another_path)", EffplanWarning,
                          stacklevel=_CALLER)
        for msg in dict.fromkeys(self.degraded):
            warnings.warn(msg, EffplanWarning, stacklevel=_CALLER)
