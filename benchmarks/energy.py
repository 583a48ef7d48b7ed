"""Start+stop overhead of effplan's EnergyMeter vs the alternatives, measured in one run.

Run: ``.venv/bin/python benchmarks/energy.py [--repeats N]``

For every backend available here (estimated-tdp always; RAPL if readable; NVML counter and
power sampling if a GPU is there) it times, median of N:

* ``empty``: constructing the meter, entering and leaving it around an empty block;
* ``around 50 ms``: the same around ~50 ms of CPU work, minus the work's own time.

and compares, in the same run, with CodeCarbon's ``OfflineEmissionsTracker`` (if installed) and a
naive psutil sampling thread (the obvious hand-written alternative: sleep-polling at 10 Hz).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from effplan.devices.energy import EnergyMeter, RaplBackend  # noqa: E402
from effplan.errors import EffplanError, EnergyBackendError  # noqa: E402

WORK_S = 0.05
#: Overhead does not depend on the rated power; a fixed figure keeps the catalog out of the timing.
RATED_W = 100.0


def spin(seconds: float) -> float:
    """Busy-wait ``seconds`` on the CPU; returns the time actually spent."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pass
    return time.perf_counter() - t0


class NaivePsutilSampler:
    """What one writes by hand: a thread polling psutil every 100 ms with time.sleep."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._running = False
        self._proc = psutil.Process()

    def _run(self) -> None:
        while self._running:
            self.samples.append(self._proc.cpu_percent(interval=None))
            time.sleep(self.interval_s)

    def __enter__(self):
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()  # waits out the current sleep
        return False


def time_context(make: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median ms around an empty block, median ms overhead around WORK_S of work)."""
    empty, around = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with make():
            pass
        empty.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with make():
            worked = spin(WORK_S)
        around.append(time.perf_counter() - t0 - worked)
    return statistics.median(empty) * 1e3, statistics.median(around) * 1e3


def time_codecarbon(repeats: int) -> tuple[float, float] | None:
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError:
        print("codecarbon not installed: pip install codecarbon to compare")
        return None
    import logging

    logging.getLogger("codecarbon").setLevel(logging.ERROR)

    class Tracker:
        def __enter__(self):
            self.t = OfflineEmissionsTracker(country_iso_code="USA", save_to_file=False, log_level="error")
            self.t.start()
            return self

        def __exit__(self, *exc):
            self.t.stop()
            return False

    return time_context(Tracker, repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # the fallback warning is expected on machines without RAPL/NVML

    rows: list[tuple[str, float, float]] = []
    auto = EnergyMeter("auto", rated_power_w=RATED_W)
    device = auto.device
    # warm up: NVML init, hardware detection, psutil process handle are cached after this
    with auto:
        spin(0.01)
    rows.append((f"effplan auto ({auto.source}, {device})",
                 *time_context(lambda: EnergyMeter(device, rated_power_w=RATED_W), args.repeats)))
    rows.append(("effplan estimated-tdp (cpu)", *time_context(
        lambda: EnergyMeter("cpu", backend="estimated-tdp", rated_power_w=RATED_W), args.repeats)))
    try:
        RaplBackend()
        rows.append(("effplan rapl (cpu)", *time_context(lambda: EnergyMeter("cpu", backend="rapl"), args.repeats)))
    except EnergyBackendError as exc:
        print(f"rapl not available here: {exc}")
    if device.startswith("cuda"):
        for name in ("nvml-counter", "nvml-power"):
            try:
                EnergyMeter(device, backend=name)
            except EffplanError as exc:
                print(f"{name} not available here: {exc}")
                continue
            rows.append((f"effplan {name} ({device})",
                         *time_context(lambda name=name: EnergyMeter(device, backend=name), args.repeats)))
    else:
        print("nvml not available here (no CUDA device): NVML backends not timed")
    base_empty, base_around = rows[0][1], rows[0][2]

    naive = time_context(NaivePsutilSampler, max(5, args.repeats // 3))
    rows.append(("naive psutil thread (10 Hz, sleep)", *naive))
    cc = time_codecarbon(max(3, args.repeats // 10))
    if cc is not None:
        rows.append(("codecarbon OfflineEmissionsTracker", *cc))

    print(f"\nEnergyMeter start+stop overhead, median of {args.repeats} "
          f"(alternatives fewer), work = {WORK_S * 1e3:.0f} ms spin; python {sys.version.split()[0]}")
    print(f"{'method':44s} {'empty ms':>10s} {'around 50 ms: overhead ms':>26s} {'x effplan auto':>15s}")
    for name, empty_ms, around_ms in rows:
        ratio = around_ms / base_around if base_around > 0 else float("nan")
        print(f"{name:44s} {empty_ms:10.3f} {around_ms:26.3f} {ratio:15.1f}")
    naive_ratio = naive[1] / max(base_around, 1e-9)
    print(f"\nnaive psutil thread / effplan auto overhead around 50 ms of work: {naive_ratio:.0f}x")
    if cc is not None:
        print(f"codecarbon / effplan auto overhead around 50 ms of work: {cc[1] / max(base_around, 1e-9):.0f}x")


if __name__ == "__main__":
    main()
