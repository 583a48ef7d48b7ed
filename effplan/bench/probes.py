"""What both point kinds (inference / training points and generation points) read around their
timing, one copy each: the device's clock sync, parameter and tensor bytes, the dtype label,
memory (a per-point baseline and the peak above it, MiB), the energy window, idle power,
hardware facts, FLOPs, peak FLOP/s from the catalog, the reproducibility fields, and the worker's
one-time warm-up. torch is imported when called, never at import.

The lookups of other layers (:func:`hardware_facts`, :func:`count_model_flops`,
:func:`peak_flops`, :func:`idle_power`, :func:`default_meter`) are one function each, so a test
can swap them.
"""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import FlopCountError
from ..models.candidates import Candidate, storage_tensors, tensor_leaves
from ..records.samples import TimingPolicy
from ..units import BYTES_PER_MIB, KIB_PER_MIB
from .worker import rss_mib

__all__ = ["synchronizer", "tensor_bytes", "param_stats", "is_quantized_model", "dtype_label", "reset_peak_rss", "peak_rss_mib", "default_meter", "idle_power", "hardware_facts", "count_model_flops", "peak_flops", "release_memory", "fill_reproducibility", "warm_runtime", "measure_idle", "memory_baseline", "peak_memory_mib", "metered"]


def synchronizer(device: str) -> Callable[[], Any] | None:
    if device.startswith("cuda"):
        import torch

        return lambda: torch.cuda.synchronize(device)
    return None


def tensor_bytes(obj: Any) -> int:
    return int(sum(t.numel() * t.element_size() for t in tensor_leaves(obj)))


def param_stats(model: Any) -> tuple[int, int]:
    """(parameter count, bytes of parameters + buffers), packed quantized weights included, each
    tensor once (a tied weight once): :func:`effplan.models.architecture.count_parameters`."""
    from ..models.architecture import count_parameters

    counts = count_parameters(model)
    return counts.params, counts.param_bytes


def is_quantized_model(model: Any) -> bool:
    from ..models.slimming import quantized_label

    return quantized_label(model) is not None


def dtype_label(candidate: Candidate, model: Any) -> str:
    from ..models.slimming import quantized_label

    if candidate.dtype:
        return candidate.dtype
    label = quantized_label(model)  # torch.ao quantized modules, torchao int8/int4 weights
    if label:
        return label
    for p in model.parameters():
        if p.is_floating_point():
            return str(p.dtype).replace("torch.", "")
    return "float32"


def reset_peak_rss() -> bool:
    """Reset Linux's per-process peak RSS (VmHWM); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / KIB_PER_MIB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / BYTES_PER_MIB if sys.platform == "darwin" else peak / KIB_PER_MIB  # bytes on macOS, KiB else


def default_meter(device: str) -> Any:
    from ..devices.energy import EnergyMeter

    return EnergyMeter(device=device)


def idle_power(device: str, seconds: float) -> float:
    from ..devices.energy import measure_idle_power

    return float(measure_idle_power(device, seconds).power_w)


def hardware_facts(device: str) -> dict[str, Any]:
    from ..devices.hardware import detect_hardware

    return dict(detect_hardware(device).to_dict())


def count_model_flops(model: Any, inputs: Any) -> Any:
    from ..flops import count_flops

    return count_flops(model, inputs)


def peak_flops(hardware_name: str, dtype: str) -> float:
    from ..refdata.catalog import peak_flops_per_s

    return float(peak_flops_per_s(hardware_name, dtype))


def release_memory(dev: str) -> None:
    """Give back what earlier points of this worker left: garbage collected, CUDA's cached blocks
    emptied, and glibc's free heap returned to the OS (``malloc_trim``), so that the resident set
    a point starts from -- its memory baseline -- is not the previous batch size's leftovers
    (which would otherwise be reused without raising the peak: a footprint too small)."""
    gc.collect()
    if dev.startswith("cuda"):
        import torch

        torch.cuda.synchronize(dev)
        torch.cuda.empty_cache()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass


def fill_reproducibility(row: dict[str, Any], cand: Any, model: Any, policy: TimingPolicy,
                     known: Mapping[str, str] | None) -> None:
    """Fill the reproducibility columns (:func:`effplan.reproducibility.reproducibility_fields`):
    the weights are hashed only when ``known`` (the candidate's hashes from an earlier point of
    the sweep) is None."""
    from .reproducibility import reproducibility_fields

    seed = getattr(cand, "seed", None)  # a candidate that declares the seed its weights came from
    fields = reproducibility_fields(None if known else model, seed=seed if isinstance(seed, int) else None,
                                    timing_policy=policy)
    if known:
        fields.update(known)
    fields["seed"] = math.nan if fields["seed"] is None else fields["seed"]
    row.update(fields)


def warm_runtime() -> None:
    """One-time costs of a fresh worker, paid BEFORE the point's memory baseline: torch's first
    operations and autograd, FLOP counting's tracing machinery, the catalog. Without this a
    64 x 10 linear layer showed ~60 MiB of "peak memory" that was the runtime's, not its own."""
    import torch

    tiny = torch.nn.Linear(2, 2)
    x = torch.ones(1, 2)
    tiny(x).sum().backward()
    with torch.no_grad():
        try:
            count_model_flops(tiny, x)
        except FlopCountError:  # only a warm-up: a failure here is reported at the point itself
            pass
    try:
        peak_flops("", "float32")
    except Exception:  # the catalog lookup of an empty name may refuse it; loading is the point
        pass


def measure_idle(device: str, seconds: float, degraded: list[str]) -> float:
    try:
        return idle_power(device, seconds)
    except Exception as exc:  # the reason is reported in the warning; the sweep goes on
        degraded.append(f"effplan.measure: idle power on {device} could not be measured "
                        f"({type(exc).__name__}: {exc}); idle_power_w is NaN -- pass idle_power_w= "
                        "to give it")
        return math.nan


def memory_baseline(dev: str, row: dict[str, Any], isolated: bool) -> tuple[float, float]:
    """Start of a point's memory reading: ``(resident set MiB, CUDA bytes allocated)`` now (NaN
    where not used), the peak reset, and ``peak_memory_source`` set on ``row``.

    CUDA: the peak allocated is reset and what is allocated now is the baseline. CPU (Linux):
    the peak resident set (``VmHWM``) is reset through ``/proc/self/clear_refs`` and the resident
    set now is the baseline. Elsewhere the process's lifetime peak, labelled so."""
    import torch

    if dev.startswith("cuda"):
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        row["peak_memory_source"] = "cuda-max-allocated"
        return math.nan, float(torch.cuda.memory_allocated(dev))
    if reset_peak_rss():
        # the peak resident set since here, minus the resident set here: the point's own
        # footprint (the model, its inputs, activations; plus FLOP counting's tracing)
        row["peak_memory_source"] = ("worker-peak-rss-minus-baseline" if isolated
                                     else "process-peak-rss-minus-baseline")
        return rss_mib("VmRSS"), math.nan
    row["peak_memory_source"] = "process-peak-rss-lifetime"
    return math.nan, math.nan


def peak_memory_mib(dev: str, baseline_mib: float, cuda_base: float) -> float:
    """The point's peak memory above its baseline (:func:`memory_baseline`), MiB."""
    if dev.startswith("cuda"):
        import torch

        return max(0.0, torch.cuda.max_memory_allocated(dev) - cuda_base) / BYTES_PER_MIB
    if not math.isnan(baseline_mib):
        return max(0.0, rss_mib("VmHWM") - baseline_mib)
    return peak_rss_mib()


def metered(fn: Callable[[], None], calls_per_sample: int, dev: str, window_s: float,
            meter_factory: Callable[[str], Any], clock: Callable[[], float],
            sync: Callable[[], Any] | None) -> tuple[Any, int]:
    """The energy-window probe of both point kinds: run ``fn`` in blocks of ``calls_per_sample``
    inside ``meter_factory(dev)`` for at least ``window_s`` (and the meter's own minimum window,
    ``min_window_s``, where it has one); returns the meter (``energy_j``, ``duration_s``,
    ``avg_power_w``, ``source``...) and the calls run."""
    meter = meter_factory(dev)
    window = max(float(window_s), float(getattr(meter, "min_window_s", None) or 0.0))
    calls = 0
    with meter:
        e0 = clock()
        while True:
            for _ in range(calls_per_sample):
                fn()
            calls += calls_per_sample
            if sync is not None:
                sync()
            if clock() - e0 >= window:
                break
    return meter, calls
