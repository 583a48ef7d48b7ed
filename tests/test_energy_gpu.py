"""EnergyMeter on a real NVIDIA GPU (skipped without CUDA + NVML). Prints what it saw."""

from __future__ import annotations

import math
import time

import pytest

pytestmark = pytest.mark.gpu


def _gpu_or_skip():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from effplan.devices import hardware
    from effplan.errors import EnergyBackendError

    try:
        hardware.nvml()
    except EnergyBackendError as exc:
        pytest.skip(f"NVML unavailable: {exc}")
    return torch


def _matmul_loop(torch, seconds: float) -> int:
    """Busy the GPU with bf16/fp32 matmuls for at least ``seconds``; returns iterations run."""
    a = torch.randn(4096, 4096, device="cuda")
    b = torch.randn(4096, 4096, device="cuda")
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(8):
            a @ b
        torch.cuda.synchronize()
        n += 8
    return n


def test_real_gpu_energy_counter_and_power_agree():
    torch = _gpu_or_skip()
    from effplan.devices.energy import EnergyMeter, measure_idle_power
    from effplan.devices.hardware import detect_hardware

    info = detect_hardware("cuda:0")
    limit = info.gpu_power_limit_w if math.isfinite(info.gpu_power_limit_w) else 1000.0
    _matmul_loop(torch, 0.3)  # warm up clocks and kernels

    idle = measure_idle_power("cuda:0", 0.5)
    auto = EnergyMeter("cuda:0")
    with auto:
        _matmul_loop(torch, 1.5)
    power = EnergyMeter("cuda:0", backend="nvml-power")
    with power:
        _matmul_loop(torch, 1.5)
    print(f"\n{info.name} driver {info.driver_version} limit {limit:.0f} W; idle {idle.power_w:.1f} W ({idle.source})")
    for m in (auto, power):
        print(f"  {m.source:13s} {m.energy_j:9.1f} J over {m.duration_s:.2f} s = {m.avg_power_w:6.1f} W "
              f"({m.provenance}; {m.reading.details.get('samples', '-')} samples)")
    for m in (auto, power):
        assert m.provenance == "measured"
        assert m.energy_j > 0
        assert 10.0 <= m.avg_power_w <= limit * 1.1
        assert m.duration_s >= 1.0
    assert power.reading.details["samples"] >= 10 * power.duration_s * 0.8  # >= ~10 Hz
    if auto.source == "nvml-counter":
        assert auto.avg_power_w == pytest.approx(power.avg_power_w, rel=0.25)


def test_real_gpu_meter_overhead_is_small():
    torch = _gpu_or_skip()
    from effplan.devices.energy import EnergyMeter

    EnergyMeter("cuda:0").start().stop()  # NVML init and handle are cached from here on
    t0 = time.perf_counter()
    for _ in range(20):
        with EnergyMeter("cuda:0"):
            pass
    per_use_ms = (time.perf_counter() - t0) / 20 * 1000
    print(f"\nEnergyMeter start+stop on cuda:0: {per_use_ms:.2f} ms per use")
    assert per_use_ms < 50
    del torch
