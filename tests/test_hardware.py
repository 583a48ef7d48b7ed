"""Hardware identity and CUDA -> NVML index mapping, with a small pynvml stand-in."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import types

import pytest

from effplan.devices import hardware
from effplan.errors import EnergyBackendError, ValidationError
from effplan.devices.hardware import HardwareInfo, detect_hardware, normalize_device, nvml_index_for

UUIDS = ("GPU-11111111-aaaa", "GPU-22222222-bbbb", "GPU-22223333-cccc", "GPU-44444444-dddd")


class _Err(Exception):
    def __init__(self, value):
        super().__init__(f"code {value}")
        self.value = value


def _fake_pynvml(names, init_error=None):
    m = types.ModuleType("pynvml")
    m.NVMLError = _Err
    m.NVML_ERROR_NOT_SUPPORTED = 3

    def init():
        if init_error is not None:
            raise _Err(init_error)

    m.nvmlInit = init
    m.nvmlDeviceGetCount = lambda: len(names)
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetName = lambda h: names[h].encode()  # old pynvml returns bytes
    m.nvmlDeviceGetUUID = lambda h: UUIDS[h]
    m.nvmlSystemGetDriverVersion = lambda: "550.54.15"
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: 350_000
    return m


@pytest.fixture
def nvml_fake(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def install(names, init_error=None):
        monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(names, init_error))
        for fn in (hardware._nvml_init, hardware.nvml_handle, hardware.nvml_device_info,
                   hardware._nvml_uuids, hardware._detect):
            fn.cache_clear()

    yield install
    for fn in (hardware._nvml_init, hardware.nvml_handle, hardware.nvml_device_info,
               hardware._nvml_uuids, hardware._detect):
        fn.cache_clear()


@pytest.mark.parametrize("env,expected", [
    (None, [0, 1, 2, 3]),                        # unset: identity
    ("2,0", [2, 0]),                             # integers are renumbered from 0
    ("3, 1", [3, 1]),                            # spaces tolerated
    ("1,foo,2", [1]),                            # CUDA stops at the first invalid entry
    ("0,-1,2", [0]),                             # ... and at a negative index
    ("GPU-44444444-dddd,GPU-11111111", [3, 0]),  # full UUID and unique prefix
])
def test_nvml_index_for(env, expected):
    environ = {} if env is None else {"CUDA_VISIBLE_DEVICES": env}
    got = [nvml_index_for(i, environ=environ, uuids=lambda: UUIDS) for i in range(len(expected))]
    assert got == expected


def test_nvml_index_for_errors():
    env = {"CUDA_VISIBLE_DEVICES": "1"}
    with pytest.raises(EnergyBackendError, match="1 device"):
        nvml_index_for(1, environ=env, uuids=lambda: UUIDS)
    with pytest.raises(EnergyBackendError, match="more than one"):
        nvml_index_for(0, environ={"CUDA_VISIBLE_DEVICES": "GPU-2222"}, uuids=lambda: UUIDS)
    with pytest.raises(EnergyBackendError, match="matches no"):
        nvml_index_for(0, environ={"CUDA_VISIBLE_DEVICES": "GPU-9999"}, uuids=lambda: UUIDS)
    with pytest.raises(EnergyBackendError, match="MIG"):
        nvml_index_for(0, environ={"CUDA_VISIBLE_DEVICES": "MIG-abcd"}, uuids=lambda: UUIDS)
    with pytest.raises(EnergyBackendError, match="0 device"):
        nvml_index_for(0, environ={"CUDA_VISIBLE_DEVICES": ""}, uuids=lambda: UUIDS)
    with pytest.raises(ValidationError):
        nvml_index_for(-1, environ={})


def test_nvml_index_for_reads_uuids_from_nvml(nvml_fake, monkeypatch):
    nvml_fake(["A", "B", "C", "D"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-22223333")
    assert nvml_index_for(0) == 2


def test_cpu_identity_without_gpus(nvml_fake):
    nvml_fake([], init_error=12)
    info = detect_hardware("cpu")
    host = socket.gethostname()
    assert info.host_hash == hashlib.sha256(host.encode()).hexdigest()[:12]
    expected_id = hashlib.sha256("|".join([info.host_hash, info.cpu_model]).encode()).hexdigest()[:12]
    assert info.hardware_id == expected_id
    assert info.name == info.cpu_model and info.device == "cpu"
    assert info.gpu_models == () and info.gpu_count == 0 and info.nvml_index is None
    assert info.cpu_cores_logical >= info.cpu_cores_physical >= 1
    d = info.to_dict()
    json.dumps(d)  # storable as is
    assert set(d) == set(HardwareInfo.__dataclass_fields__)
    if len(host) >= 4:  # the raw hostname is never stored
        assert host not in json.dumps(d)
    assert detect_hardware("cpu") is info  # cached per device


def test_gpu_identity_and_name_per_device(nvml_fake, monkeypatch):
    nvml_fake([], init_error=12)
    cpu_only = detect_hardware("cpu")
    nvml_fake(["NVIDIA H100 80GB HBM3", "NVIDIA L4"])
    cpu = detect_hardware("cpu")
    assert cpu.gpu_models == ("NVIDIA H100 80GB HBM3", "NVIDIA L4") and cpu.gpu_count == 2
    assert cpu.driver_version == "550.54.15"
    assert cpu.hardware_id != cpu_only.hardware_id  # different device sets -> different machines
    assert cpu.name == cpu.cpu_model
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    gpu = detect_hardware("cuda:0")
    assert gpu.name == "NVIDIA L4" and gpu.nvml_index == 1 and gpu.gpu_power_limit_w == 350.0
    assert gpu.hardware_id == cpu.hardware_id  # same machine whatever device is measured
    assert gpu.to_frame().loc[0, "gpu_models"] == "NVIDIA H100 80GB HBM3; NVIDIA L4"


def test_cpu_model_from_cpuinfo(tmp_path):
    p = tmp_path / "cpuinfo"
    p.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)  Gold 6338 CPU\n\n"
                 "processor\t: 1\nmodel name\t: Intel(R) Xeon(R)  Gold 6338 CPU\n")
    assert hardware._cpu_model(str(p)) == "Intel(R) Xeon(R) Gold 6338 CPU"
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n")
    assert hardware._cpu_model(str(arm)) == "Raspberry Pi 4 Model B Rev 1.4"
    assert hardware._cpu_model(str(tmp_path / "missing")) != ""


def test_normalize_device(nvml_fake, monkeypatch):
    torch = pytest.importorskip("torch")
    assert normalize_device("cpu") == "cpu"
    assert normalize_device("CUDA:1") == "cuda:1"
    assert normalize_device(torch.device("cuda", 2)) == "cuda:2"
    assert normalize_device(torch.device("cpu")) == "cpu"
    expected_auto = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert normalize_device("auto") == expected_auto
    for bad in ("tpu", "cuda:x", "mps:0", ""):
        with pytest.raises(ValidationError) as err:
            normalize_device(bad)
        assert err.value.field == "device"


def test_unavailable_cuda_device_is_a_validation_error(nvml_fake):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    nvml_fake([], init_error=12)
    with pytest.raises(ValidationError, match="not available") as err:
        detect_hardware("cuda:0")
    assert err.value.field == "device"
