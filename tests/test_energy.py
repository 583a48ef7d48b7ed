"""EnergyMeter logic on CPU: estimate arithmetic, RAPL on a fake sysfs tree, NVML via a stand-in."""

from __future__ import annotations

import sys
import threading
import time
import types
import warnings
from types import SimpleNamespace

import pytest

from effplan.devices import energy, hardware
from effplan.refdata import catalog
from effplan.devices.energy import (EnergyMeter, EnergyReading, EstimatedTdpBackend,
                                    NvmlPowerBackend, integrate_trapezoid, measure_idle_power)
from effplan.errors import EffplanError, EnergyBackendError, EnergyFallbackWarning, ValidationError


# ----------------------------------------------------------------------------- helpers
def fake_clock(*values):
    """A clock returning the given values in order (fails loudly if called too often)."""
    it = iter(values)
    return lambda: next(it)


class FakeNVMLError(Exception):
    def __init__(self, value):
        super().__init__(f"NVML error code {value}")
        self.value = value


class FakePynvml(types.ModuleType):
    """Small stand-in for ``pynvml``: per GPU a name, UUID, energy-counter and power readings.

    ``energy_mj`` is a list consumed one read at a time (``None`` = counter not supported,
    ``"fail"`` entry = an NVML error on that read); ``power_mw`` a callable of the read number.
    """

    NVMLError = FakeNVMLError
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_FUNCTION_NOT_FOUND = 13
    NVML_ERROR_UNKNOWN = 999

    def __init__(self, gpus, init_error=None):
        super().__init__("pynvml")
        self.gpus = gpus
        self.init_error = init_error
        self.init_calls = 0
        self.power_reads = 0

    def nvmlInit(self):
        self.init_calls += 1
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        if i >= len(self.gpus):
            raise FakeNVMLError(2)
        return i

    def nvmlDeviceGetName(self, h):
        return self.gpus[h]["name"]

    def nvmlDeviceGetUUID(self, h):
        return self.gpus[h]["uuid"]

    def nvmlSystemGetDriverVersion(self):
        return "550.54.15"

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return 700_000

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        seq = self.gpus[h].get("energy_mj")
        if seq is None:
            raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        value = seq.pop(0)
        if value == "fail":
            raise FakeNVMLError(self.NVML_ERROR_UNKNOWN)
        return value

    def nvmlDeviceGetPowerUsage(self, h):
        k = self.power_reads
        self.power_reads += 1
        value = self.gpus[h]["power_mw"](k)
        if value == "fail":
            raise FakeNVMLError(self.NVML_ERROR_UNKNOWN)
        return value


def gpu(name="NVIDIA H100 80GB HBM3", uuid="GPU-aaaa-0000", energy_mj=None, power_mw=lambda k: 150_000):
    return {"name": name, "uuid": uuid, "energy_mj": energy_mj, "power_mw": power_mw}


@pytest.fixture
def install_nvml(monkeypatch):
    """Install a FakePynvml as ``pynvml`` with NVML caches cleared; CUDA_VISIBLE_DEVICES unset."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def install(*gpus, init_error=None):
        fake = FakePynvml(list(gpus), init_error=init_error)
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        for fn in (hardware._nvml_init, hardware.nvml_handle, hardware.nvml_device_info,
                   hardware._nvml_uuids, hardware._detect):
            fn.cache_clear()
        return fake

    yield install
    for fn in (hardware._nvml_init, hardware.nvml_handle, hardware.nvml_device_info,
               hardware._nvml_uuids, hardware._detect):
        fn.cache_clear()


@pytest.fixture
def no_rapl(tmp_path):
    return str(tmp_path / "no-powercap")


def write_zone(root, name, zone, energy_uj, max_uj=262_143_328_850):
    z = root / name
    z.mkdir(parents=True, exist_ok=True)
    (z / "name").write_text(zone + "\n")
    (z / "energy_uj").write_text(f"{energy_uj}\n")
    (z / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return z


# ----------------------------------------------------------------------------- estimate
def test_estimate_exact_arithmetic_with_fake_clock_and_cpu_times(monkeypatch, no_rapl):
    monkeypatch.setattr(energy, "available_cpus", lambda: 4)
    with pytest.warns(EnergyFallbackWarning, match="RAPL|powercap") as rec:
        meter = EnergyMeter("cpu", rated_power_w=120.0, clock=fake_clock(10.0, 12.0),
                            cpu_times=fake_clock(100.0, 101.5), rapl_root=no_rapl)
    with meter as m:
        pass
    assert len(rec) == 1
    # utilization = 1.5 CPU-s / (2 s x 4 CPUs) = 0.1875; CPU idle fraction 0.3:
    # power = 120 W x (0.3 + 0.7 x 0.1875) = 120 x 0.43125 = 51.75 W; 2 s -> 103.5 J
    assert m.duration_s == 2.0
    assert m.avg_power_w == pytest.approx(51.75, rel=1e-12)
    assert m.energy_j == pytest.approx(103.5, rel=1e-12)
    assert (m.source, m.provenance) == ("estimated-tdp", "estimated")
    assert "powercap" in m.fallback_reason
    r = m.reading
    assert r.details["utilization"] == pytest.approx(0.1875)
    assert r.details["cpu_time_s"] == 1.5 and r.details["n_cpus"] == 4
    assert r.details["rated_power_source"].startswith("given")
    assert r.min_window_s == meter.min_window_s == EstimatedTdpBackend.min_window_s


def test_estimate_clips_utilization_and_uses_catalog(monkeypatch):
    calls = []

    def rated_power_w(name, cores=None):
        calls.append((name, cores))
        return 95.0, "catalog: generic CPU per-core x cores"

    monkeypatch.setattr(catalog, "rated_power_w", rated_power_w)  # looked up at call time
    energy._catalog_rated_power.cache_clear()
    backend = EstimatedTdpBackend("Some CPU", cpu_times=fake_clock(0.0, 50.0), n_cpus=2)
    m = EnergyMeter("cpu", backend=backend, clock=fake_clock(0.0, 4.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a forced backend never warns
        with m:
            pass
    # 50 CPU-s over 4 s x 2 CPUs = 6.25 -> clipped to 1.0: full rated power for 4 s
    assert m.energy_j == pytest.approx(380.0) and m.avg_power_w == pytest.approx(95.0)
    assert calls == [("Some CPU", 2)]
    assert m.reading.details["rated_power_source"] == "catalog: generic CPU per-core x cores"


def test_catalog_lookup_cpu_time_is_not_charged_to_the_window(monkeypatch):
    cpu = {"s": 0.0}

    def rated_power_w(name, cores=None):
        cpu["s"] += 10.0  # loading the catalog burns CPU time
        return 100.0, "catalog"

    monkeypatch.setattr(catalog, "rated_power_w", rated_power_w)  # looked up at call time
    energy._catalog_rated_power.cache_clear()
    backend = EstimatedTdpBackend("Some CPU", cpu_times=lambda: cpu["s"], n_cpus=1)
    with EnergyMeter("cpu", backend=backend, clock=fake_clock(0.0, 1.0)) as m:
        cpu["s"] += 0.25
    # utilization 0.25 CPU-s / (1 s x 1 CPU) = 0.25; 100 W x (0.3 + 0.7 x 0.25) x 1 s = 47.5 J
    assert m.energy_j == pytest.approx(47.5)


def test_forced_estimate_does_not_warn_and_catalog_failure_says_what_to_do(monkeypatch):

    def rated_power_w(name, cores=None):
        raise LookupError(f"{name} not in catalog")

    monkeypatch.setattr(catalog, "rated_power_w", rated_power_w)  # looked up at call time
    energy._catalog_rated_power.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = EnergyMeter("cpu", backend="estimated-tdp", clock=fake_clock(0.0, 1.0), cpu_times=fake_clock(0.0, 0.5))
    m.start()
    with pytest.raises(EnergyBackendError, match="pass rated_power_w="):
        m.stop()


# ----------------------------------------------------------------------------- RAPL
def test_rapl_fake_sysfs_with_wrap_around(tmp_path):
    root = tmp_path / "powercap"
    p0 = write_zone(root, "intel-rapl:0", "package-0", 1_000_000)
    write_zone(root, "intel-rapl:0:0", "core", 500)  # sub-zone: inside package-0, never added
    p1 = write_zone(root, "intel-rapl:1", "package-1", 262_143_000_000, max_uj=262_143_328_850)
    (root / "intel-rapl-mmio:0").mkdir()  # other powercap entries are ignored
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meter = EnergyMeter("cpu", rapl_root=str(root), clock=fake_clock(5.0, 7.0))
    with meter as m:
        (p0 / "energy_uj").write_text("6000000\n")  # +5 J
        (p1 / "energy_uj").write_text("671150\n")  # wrapped: 671150 + 262143328850 - 262143000000 = 1 J
    assert m.energy_j == pytest.approx(6.0, rel=1e-12)
    assert m.avg_power_w == pytest.approx(3.0, rel=1e-12)
    assert (m.source, m.provenance, m.fallback_reason) == ("rapl", "measured", "")
    assert m.reading.details == {"zones": ["package-0", "package-1"], "wrapped": 1}
    assert m.reading.device_name == "package-0, package-1"


def test_rapl_unreadable_falls_back_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(energy, "available_cpus", lambda: 1)
    root = tmp_path / "powercap"
    z = write_zone(root, "intel-rapl:0", "package-0", 0)
    (z / "energy_uj").write_text("permission denied stand-in\n")
    with pytest.warns(EnergyFallbackWarning, match="chmod a\\+r") as rec:
        with EnergyMeter("cpu", rapl_root=str(root), rated_power_w=10.0, clock=fake_clock(0.0, 1.0),
                         cpu_times=fake_clock(0.0, 0.25)) as m:
            pass
    assert len(rec) == 1
    # 10 W x (0.3 + 0.7 x 0.25) x 1 s = 4.75 J
    assert m.source == "estimated-tdp" and m.energy_j == pytest.approx(4.75)
    assert "not readable" in m.fallback_reason


# ----------------------------------------------------------------------------- NVML
def test_nvml_counter_path(install_nvml):
    fake = install_nvml(gpu(energy_mj=[999_000, 1_000_000, 1_250_000]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with EnergyMeter("cuda:0", clock=fake_clock(0.0, 2.5)) as m:
            pass
    assert m.energy_j == pytest.approx(250.0) and m.avg_power_w == pytest.approx(100.0)
    assert (m.source, m.provenance) == ("nvml-counter", "measured")
    r = m.reading
    assert r.device == "cuda:0" and r.device_name == "NVIDIA H100 80GB HBM3"
    assert r.details["driver_version"] == "550.54.15" and r.details["power_limit_w"] == 700.0
    assert r.details["nvml_index"] == 0 and r.min_window_s == 1.0
    # a second meter reuses the cached NVML init
    fake.gpus[0]["energy_mj"] = [0, 10, 20]
    with EnergyMeter("cuda", clock=fake_clock(0.0, 1.0)) as m2:
        pass
    assert m2.energy_j == pytest.approx(0.01)
    assert fake.init_calls == 1


def test_counter_not_supported_uses_power_sampling(install_nvml):
    install_nvml(gpu(energy_mj=None, power_mw=lambda k: 150_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # choosing power sampling is not a degradation warning
        with EnergyMeter(device="cuda:0", sample_interval_s=0.01) as m:
            time.sleep(0.05)
    assert (m.source, m.provenance, m.fallback_reason) == ("nvml-power", "measured", "")
    d = m.reading.details
    assert d["samples"] >= 2 and d["power_min_w"] == d["power_max_w"] == 150.0
    # constant power: energy is exactly 150 W over the meter's window, however samples fell
    assert m.avg_power_w == pytest.approx(150.0, rel=1e-9)
    assert not any(t.name == "effplan-nvml-power" for t in threading.enumerate())


def test_power_sampling_integrates_exactly(install_nvml):
    """Clock and power reads are paired under a lock: sample k is (0.1 k s, 100 + 10 k W)."""
    install_nvml(gpu(power_mw=lambda k: (100 + 10 * k) * 1000))
    ticks = iter(range(10_000))
    backend = NvmlPowerBackend(0, clock=lambda: 0.1 * next(ticks), interval_s=0.01)
    backend.start()
    deadline = time.monotonic() + 10
    while len(backend._times) < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    joules, details = backend.stop(duration_s=0.0)
    n = details["samples"]
    assert n >= 5  # start sample + >= 3 thread samples + stop sample
    t_end = 0.1 * (n - 1)
    # power is linear in time (100 + 100 t W), so the trapezoid rule is exact: 100 T + 50 T^2
    assert joules == pytest.approx(100 * t_end + 50 * t_end**2, rel=1e-9)


def test_integrate_trapezoid_by_hand():
    assert integrate_trapezoid([0.0, 1.0, 3.0], [10.0, 20.0, 20.0]) == 15.0 + 40.0
    assert integrate_trapezoid([0.0], [10.0]) == 0.0


def test_sampler_thread_stops_on_event_without_waiting_out_the_interval(install_nvml):
    install_nvml(gpu())
    backend = NvmlPowerBackend(0, interval_s=0.1)
    backend.start()
    thread = backend._thread
    assert thread.is_alive()
    backend.stop(0.0)
    assert not thread.is_alive()
    assert backend._stop_event.is_set()


def test_nvml_counter_failure_mid_run_falls_back_with_exactly_one_warning(install_nvml):
    install_nvml(gpu(energy_mj=[1_000, 2_000, "fail"]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with EnergyMeter("cuda:0", rated_power_w=300.0, clock=fake_clock(0.0, 2.0)) as m:
            pass
    fallback = [w for w in caught if issubclass(w.category, EnergyFallbackWarning)]
    assert len(fallback) == 1 and len(caught) == 1
    assert "failed mid-run" in str(fallback[0].message) and "NVIDIA driver" in str(fallback[0].message)
    # GPU without a usable NVML reading: rated power x assumed-busy utilization (upper bound)
    assert (m.source, m.provenance) == ("estimated-tdp", "estimated")
    assert m.energy_j == pytest.approx(600.0) and m.avg_power_w == pytest.approx(300.0)
    assert "nvml-counter failed mid-run" in m.fallback_reason
    assert m.reading.details["utilization_basis"] == "assumed-busy"


def test_power_sampler_failure_mid_run_falls_back(install_nvml):
    install_nvml(gpu(energy_mj=None, power_mw=lambda k: 100_000 if k == 0 else "fail"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meter = EnergyMeter("cuda:0", rated_power_w=200.0, sample_interval_s=0.01)
        with meter as m:
            deadline = time.monotonic() + 10
            while meter.backend._error is None and time.monotonic() < deadline:
                time.sleep(0.005)
    assert [w.category for w in caught] == [EnergyFallbackWarning]
    assert m.source == "estimated-tdp" and "sampling failed mid-run" in m.fallback_reason
    assert m.avg_power_w == pytest.approx(200.0)


def test_nvml_missing_warns_once_and_estimates(install_nvml, monkeypatch):
    install_nvml(init_error=12)  # NVML_ERROR_LIBRARY_NOT_FOUND
    monkeypatch.setattr(energy, "detect_hardware",
                        lambda device: SimpleNamespace(name="NVIDIA A100-SXM4-40GB", cpu_model="cpu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with EnergyMeter("cuda:0", rated_power_w=400.0, clock=fake_clock(1.0, 1.5)) as m:
            pass
    assert len(caught) == 1 and caught[0].category is EnergyFallbackWarning
    assert "NVML could not initialise" in str(caught[0].message)
    assert m.energy_j == pytest.approx(200.0) and m.source == "estimated-tdp"
    assert m.reading.device_name == "NVIDIA A100-SXM4-40GB"


def test_forced_nvml_backend_raises_instead_of_falling_back(install_nvml):
    install_nvml(init_error=12)
    with pytest.raises(EnergyBackendError, match="NVML could not initialise"):
        EnergyMeter("cuda:0", backend="nvml-counter")
    install_nvml(gpu(energy_mj=None))
    with pytest.raises(EnergyBackendError, match="not supported|NotSupported|code 3"):
        EnergyMeter("cuda:0", backend="nvml-counter")


def test_cuda_visible_devices_maps_meter_to_right_gpu(install_nvml, monkeypatch):
    install_nvml(gpu("GPU Zero", "GPU-0000", energy_mj=[0, 0, 0]),
                 gpu("GPU One", "GPU-1111", energy_mj=[0, 5_000, 9_000]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1111")
    with EnergyMeter("cuda:0", clock=fake_clock(0.0, 1.0)) as m:
        pass
    assert m.reading.device_name == "GPU One" and m.reading.details["nvml_index"] == 1
    assert m.energy_j == pytest.approx(4.0)


# ----------------------------------------------------------------------------- meter contract
def test_meter_state_errors_and_reuse(no_rapl):
    m = EnergyMeter("cpu", backend="estimated-tdp", rated_power_w=50.0,
                    clock=fake_clock(0.0, 1.0, 2.0, 4.0), cpu_times=fake_clock(0.0, 0.0, 0.0, 0.0))
    with pytest.raises(EffplanError, match="no reading yet"):
        m.energy_j
    with pytest.raises(EffplanError, match="without start"):
        m.stop()
    with pytest.raises(RuntimeError, match="boom"):
        with m:
            with pytest.raises(EffplanError, match="already running"):
                m.start()
            raise RuntimeError("boom")
    assert m.duration_s == 1.0  # the window is recorded even when the block raised
    with m:
        pass
    # no CPU time: the idle share only, 50 W x 0.3 x 2 s = 30 J
    assert m.duration_s == 2.0 and m.energy_j == pytest.approx(30.0)


def test_validation_at_the_boundary():
    with pytest.raises(ValidationError, match="backend") as err:
        EnergyMeter("cpu", backend="wattmeter")
    assert err.value.field == "backend"
    with pytest.raises(ValidationError) as err:
        EnergyMeter("tpu:0")
    assert err.value.field == "device"
    with pytest.raises(ValidationError) as err:
        EnergyMeter("cpu", backend="estimated-tdp", rated_power_w=-5)
    assert err.value.field == "rated_power_w"
    with pytest.raises(ValidationError, match="CUDA device"):
        EnergyMeter("cpu", backend="nvml-power")
    with pytest.raises(ValidationError) as err:
        measure_idle_power("cpu", seconds=0)
    assert err.value.field == "seconds"


def test_measure_idle_power_with_rapl_and_estimate(tmp_path, no_rapl):
    root = tmp_path / "powercap"
    z = write_zone(root, "intel-rapl:0", "package-0", 10_000_000)

    def sleep(seconds):
        assert seconds == 0.5
        (z / "energy_uj").write_text("11000000\n")  # 1 J while "sleeping"

    idle = measure_idle_power("cpu", 0.5, rapl_root=str(root), clock=fake_clock(0.0, 0.5), sleep=sleep)
    assert (idle.power_w, idle.source, idle.provenance, idle.duration_s) == (2.0, "rapl", "measured", 0.5)

    idle = measure_idle_power("cpu", 0.5, rapl_root=no_rapl, rated_power_w=65.0, warn=False,
                              clock=fake_clock(0.0, 0.5), sleep=lambda s: None,
                              cpu_times=fake_clock(3.0, 3.0))
    # a sleeping process: the CPU idle share of rated power, 65 W x 0.3 = 19.5 W
    assert (idle.power_w, idle.source, idle.provenance) == (pytest.approx(19.5), "estimated-tdp",
                                                            "estimated")
    assert "powercap" in idle.fallback_reason
    assert idle.to_frame().loc[0, "power_w"] == pytest.approx(19.5)


def test_idle_on_gpu_prefers_power_sampling(install_nvml):
    install_nvml(gpu(energy_mj=[1, 2, 3], power_mw=lambda k: 61_000))
    idle = measure_idle_power("cuda:0", 0.05, sample_interval_s=0.01)
    assert idle.source == "nvml-power" and idle.power_w == pytest.approx(61.0, rel=1e-9)


def test_reading_frame_and_above_idle():
    r = EnergyReading(energy_j=120.0, duration_s=2.0, avg_power_w=60.0, source="rapl", provenance="measured",
                      device="cpu", device_name="package-0", details={"zones": ["package-0"]})
    assert r.above_idle_j(20.0) == 80.0
    assert r.above_idle_j(90.0) == 0.0  # noise below idle is floored, never negative
    f = r.to_frame()
    assert f.loc[0, "energy_j"] == 120.0 and f.loc[0, "source"] == "rapl"
    assert f.loc[0, "detail_zones"] == ["package-0"]
    with pytest.raises(AttributeError):
        r.energy_j = 1.0  # frozen


def test_import_touches_no_hardware():
    import subprocess

    code = ("import sys, effplan, effplan.energy, effplan.hardware, effplan.store; "
            "assert 'pynvml' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(hardware.__file__).rsplit("/effplan/", 1)[0],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
