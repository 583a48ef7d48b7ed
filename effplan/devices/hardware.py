"""Which machine a measurement was taken on: GPU and CPU models, versions, a stable machine id.

Nothing here runs at import time. NVML is initialised at most once per process
(:func:`nvml`, cached with ``functools.lru_cache``, failures cached too so that a machine without
a driver pays for the failed probe once), and ``pynvml.NVMLError`` is translated into
:class:`~effplan.errors.EnergyBackendError` at exactly one boundary, :func:`nvml_call`.

Privacy: the raw hostname is never stored; :attr:`HardwareInfo.host_hash` is a truncated SHA-256
of it, enough to tell machines apart when results from several of them are merged.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import math
import os
import platform
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

from ..errors import EnergyBackendError, ValidationError

__all__ = [
    "HardwareInfo",
    "detect_hardware",
    "normalize_device",
    "nvml_index_for",
    "nvml",
    "nvml_call",
    "NvmlNotSupportedError",
]

#: Length (hex characters) of the host hash and of ``hardware_id``.
_HASH_CHARS = 12


class NvmlNotSupportedError(EnergyBackendError):
    """The NVML call exists but this GPU/driver does not support it (e.g. no energy counter)."""


# --------------------------------------------------------------------------------------------
# NVML: one cached init, one error-translation boundary
# --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _nvml_init() -> tuple[ModuleType | None, str]:
    """Import and initialise pynvml once. Returns ``(module, "")`` or ``(None, reason)``."""
    try:
        import pynvml  # noqa: PLC0415 - optional hardware, imported lazily
    except ImportError as exc:
        return None, f"pynvml is not importable ({exc}); install nvidia-ml-py"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return None, (f"NVML could not initialise ({type(exc).__name__}: {exc}); install or load the "
                      "NVIDIA driver, or run on a machine with an NVIDIA GPU")
    return pynvml, ""


def nvml() -> ModuleType:
    """The initialised ``pynvml`` module (init cached per process).

    Raises :class:`EnergyBackendError` saying why NVML is unavailable and how to fix it.
    """
    module, reason = _nvml_init()
    if module is None:
        raise EnergyBackendError(reason)
    return module


def nvml_call(fn_name: str, *args: Any) -> Any:
    """Call ``pynvml.<fn_name>(*args)``, translating ``NVMLError`` into effplan's errors.

    This is the single boundary where vendor errors become :class:`EnergyBackendError`
    (or :class:`NvmlNotSupportedError` for ``NVML_ERROR_NOT_SUPPORTED`` /
    ``NVML_ERROR_FUNCTION_NOT_FOUND``, which callers treat as "use another method").
    """
    mod = nvml()
    try:
        return getattr(mod, fn_name)(*args)
    except mod.NVMLError as exc:
        code = getattr(exc, "value", None)
        unsupported = {getattr(mod, "NVML_ERROR_NOT_SUPPORTED", 3),
                       getattr(mod, "NVML_ERROR_FUNCTION_NOT_FOUND", 13)}
        cls = NvmlNotSupportedError if code in unsupported else EnergyBackendError
        raise cls(f"NVML {fn_name} failed ({type(exc).__name__}: {exc})") from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@functools.lru_cache(maxsize=64)
def nvml_handle(nvml_index: int) -> Any:
    """Cached NVML device handle for an NVML index."""
    return nvml_call("nvmlDeviceGetHandleByIndex", nvml_index)


@functools.lru_cache(maxsize=64)
def nvml_device_info(nvml_index: int) -> Mapping[str, Any]:
    """Name, driver version and enforced power limit (W) of one NVML device (cached)."""
    handle = nvml_handle(nvml_index)
    name = _text(nvml_call("nvmlDeviceGetName", handle))
    driver = _text(nvml_call("nvmlSystemGetDriverVersion"))
    try:
        limit_w = float(nvml_call("nvmlDeviceGetEnforcedPowerLimit", handle)) / 1000.0
    except EnergyBackendError:
        limit_w = math.nan
    return {"nvml_index": nvml_index, "name": name, "driver_version": driver, "power_limit_w": limit_w}


@functools.lru_cache(maxsize=1)
def _nvml_uuids() -> tuple[str, ...]:
    mod_count = nvml_call("nvmlDeviceGetCount")
    return tuple(_text(nvml_call("nvmlDeviceGetUUID", nvml_handle(i))) for i in range(int(mod_count)))


# --------------------------------------------------------------------------------------------
# Device strings and CUDA -> NVML index mapping
# --------------------------------------------------------------------------------------------

#: device types torch knows that effplan does not measure on, with the reason (see normalize_device)
UNSUPPORTED_DEVICES: Mapping[str, str] = {
    "mps": "Apple's MPS backend has no synchronising clock read, peak-memory counter or energy "
           "reading that effplan uses; measure on 'cpu'",
    "meta": "meta tensors hold no data: nothing runs, so there is nothing to time",
}


def normalize_device(device: Any = "auto", *, check_available: bool = False) -> str:
    """The ONE device rule: ``"auto" | "cpu" | "cuda" | "cuda:N" | torch.device`` -> ``"cpu"`` or
    ``"cuda:N"``.

    The name is read case-insensitively with surrounding spaces ignored (``" CPU "`` is ``"cpu"``,
    ``"CUDA:1"`` is ``"cuda:1"``); ``None`` is ``"auto"``. ``"auto"`` is ``"cuda:0"`` when torch
    sees a CUDA device (or, when torch is not imported and not asked to check, when NVML reports a
    GPU that ``CUDA_VISIBLE_DEVICES`` does not hide), else ``"cpu"``. A bare ``"cuda"`` is the
    current CUDA device when CUDA is initialised, else ``"cuda:0"``.

    ``check_available=True`` (what :func:`effplan.measure`, :func:`effplan.evaluate` and
    :func:`effplan.slim` use: they run models there) also requires the device to exist now:
    ``"cuda"`` / ``"cuda:N"`` without CUDA, or with fewer than N + 1 visible GPUs, raise
    :class:`ValidationError` on field ``device`` saying so (pass ``device='cpu'`` or ``'auto'``).
    Without it (hardware detection, energy meters) the name is only normalised.

    ``"mps"``, ``"meta"`` (:data:`UNSUPPORTED_DEVICES`, with the reason), any other device type
    and a malformed index raise :class:`ValidationError` on field ``device``.
    """
    text = str(device).strip().lower() if device is not None else "auto"
    if text == "auto":
        torch = _torch_if(check_available)
        if torch is not None:
            return "cuda:0" if torch.cuda.is_available() else "cpu"
        if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
            return "cpu"
        module, _ = _nvml_init()
        if module is None:
            return "cpu"
        try:
            count = int(nvml_call("nvmlDeviceGetCount"))
        except EnergyBackendError:
            return "cpu"
        return "cuda:0" if count > 0 else "cpu"
    if text == "cpu":
        return "cpu"
    kind, _, idx = text.partition(":")
    if kind in UNSUPPORTED_DEVICES:
        raise ValidationError("device", f"{device!r} is not supported: {UNSUPPORTED_DEVICES[kind]}")
    if kind == "cuda" and (not idx or idx.isdigit()):
        torch = _torch_if(check_available)
        if check_available and not torch.cuda.is_available():
            raise ValidationError("device", f"{device!r} asked for but CUDA is not available; pass "
                                            "device='cpu' or 'auto'")
        if not idx:
            if torch is not None and (check_available or torch.cuda.is_initialized()):
                return f"cuda:{torch.cuda.current_device()}"
            return "cuda:0"
        if check_available and int(idx) >= torch.cuda.device_count():
            raise ValidationError("device", f"{device!r} asked for but only {torch.cuda.device_count()} "
                                            "CUDA device(s) are visible; pass device='cuda:0' or 'auto'")
        return f"cuda:{int(idx)}"
    raise ValidationError("device", f"{device!r} is not a supported device; use 'auto', 'cpu', "
                                    "'cuda', 'cuda:N' or a torch.device")


def _torch_if(imported_or_needed: bool) -> ModuleType | None:
    """torch when it is imported already, or imported now when ``imported_or_needed``."""
    torch = sys.modules.get("torch")
    if torch is None and imported_or_needed:
        import torch  # noqa: PLC0415 - only where a device must be checked
    return torch


def cuda_index(device: str) -> int:
    """The integer index of a normalised ``"cuda:N"`` device string."""
    return int(device.split(":", 1)[1])


def _visible_entries(environ: Mapping[str, str]) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` parsed as CUDA does: entries up to the first invalid one."""
    raw = environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    entries: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            break
        if part.lstrip("-").isdigit():
            if int(part) < 0:  # CUDA stops at the first negative index
                break
            entries.append(str(int(part)))
        elif part.upper().startswith(("GPU-", "MIG-")):
            entries.append(part)
        else:  # CUDA ignores this entry and everything after it
            break
    return entries


def nvml_index_for(cuda_index: int, *, environ: Mapping[str, str] | None = None,
                   uuids: Callable[[], tuple[str, ...]] | None = None) -> int:
    """NVML device index of the CUDA device that torch calls ``cuda:<cuda_index>``.

    CUDA renumbers the devices listed in ``CUDA_VISIBLE_DEVICES`` from 0, while NVML always
    sees every GPU. Entries may be integers (``"2,3"``) or GPU UUIDs, full or a unique prefix
    (``"GPU-8f3c..."``). MIG instances (``"MIG-..."``) have no NVML energy counter of their own
    and raise :class:`EnergyBackendError`. Assumes CUDA and NVML order devices alike (true with
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` and on machines with one GPU model).

    ``environ`` and ``uuids`` (NVML UUIDs in NVML order) are injectable for tests.
    """
    if cuda_index < 0:
        raise ValidationError("device", f"CUDA index must be >= 0, got {cuda_index}")
    env = os.environ if environ is None else environ
    entries = _visible_entries(env)
    if entries is None:
        return cuda_index
    if cuda_index >= len(entries):
        raise EnergyBackendError(
            f"cuda:{cuda_index} is not visible: CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')!r} "
            f"makes {len(entries)} device(s) visible")
    entry = entries[cuda_index]
    if entry.isdigit():
        return int(entry)
    if entry.upper().startswith("MIG-"):
        raise EnergyBackendError(f"cuda:{cuda_index} is MIG instance {entry}; NVML has no per-instance "
                                 "energy reading: measure on a whole GPU or pass device='cpu'")
    all_uuids = (uuids or _nvml_uuids)()
    matches = [i for i, u in enumerate(all_uuids) if u.upper().startswith(entry.upper())]
    if len(matches) != 1:
        what = "no" if not matches else "more than one"
        raise EnergyBackendError(f"CUDA_VISIBLE_DEVICES entry {entry!r} matches {what} NVML GPU "
                                 f"(NVML sees {len(all_uuids)})")
    return matches[0]


# --------------------------------------------------------------------------------------------
# Hardware identity
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HardwareInfo:
    """Identity of the machine and device a measurement ran on.

    ``name`` is what goes in the measurements frame's ``hardware`` column: the GPU model for a
    CUDA device (e.g. ``"NVIDIA H100 80GB HBM3"``), else the CPU model. ``hardware_id`` is a
    stable short hash of host hash + CPU model + GPU models, so results from different machines
    stay apart when merged while two runs on one machine share it.
    """

    device: str
    name: str
    hardware_id: str
    host_hash: str
    cpu_model: str
    cpu_cores_physical: int
    cpu_cores_logical: int
    gpu_models: tuple[str, ...]
    gpu_count: int
    gpu_power_limit_w: float
    nvml_index: int | None
    driver_version: str
    cuda_version: str
    torch_version: str
    python_version: str
    os: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (``gpu_models`` as a list)."""
        d = asdict(self)
        d["gpu_models"] = list(self.gpu_models)
        return d

    def to_frame(self):  # -> pandas.DataFrame
        """One-row DataFrame of :meth:`to_dict` (``gpu_models`` joined with ``"; "``)."""
        import pandas as pd

        d = self.to_dict()
        d["gpu_models"] = "; ".join(self.gpu_models)
        return pd.DataFrame([d])


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_CHARS]


def _cpu_model(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """CPU model from /proc/cpuinfo (x86 ``model name``, ARM ``Model``/``Hardware``), else platform."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as fh:
            fields: dict[str, str] = {}
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() not in fields and value.strip():
                    fields[key.strip()] = value.strip()
    except OSError:
        fields = {}
    for key in ("model name", "Model", "Hardware", "cpu model", "cpu"):
        if fields.get(key):
            return " ".join(fields[key].split())
    return platform.processor() or platform.machine() or "unknown CPU"


def _torch_versions(import_torch: bool) -> tuple[str, str]:
    """(torch version, CUDA runtime version torch was built with, '' for CPU builds)."""
    torch = sys.modules.get("torch")
    if torch is None and import_torch:
        import torch  # noqa: PLC0415
    if torch is not None:
        return str(torch.__version__), str(torch.version.cuda or "")
    try:
        return importlib.metadata.version("torch"), ""
    except importlib.metadata.PackageNotFoundError:
        return "", ""


def _gpu_inventory() -> tuple[tuple[str, ...], str]:
    """(every GPU model NVML sees, driver version); empty when NVML is unavailable."""
    module, _ = _nvml_init()
    if module is None:
        return (), ""
    try:
        count = int(nvml_call("nvmlDeviceGetCount"))
        models = tuple(nvml_device_info(i)["name"] for i in range(count))
        driver = _text(nvml_call("nvmlSystemGetDriverVersion"))
    except EnergyBackendError:
        return (), ""
    return models, driver


@functools.lru_cache(maxsize=32)
def _detect(device: str) -> HardwareInfo:
    host_hash = _sha(socket.gethostname())
    cpu_model = _cpu_model()
    logical = os.cpu_count() or 1
    try:
        import psutil  # noqa: PLC0415

        physical = psutil.cpu_count(logical=False) or logical
    except ImportError:
        physical = logical
    is_cuda = device.startswith("cuda")
    torch_version, cuda_version = _torch_versions(import_torch=is_cuda)
    gpu_models, driver = _gpu_inventory()
    name = cpu_model
    power_limit_w = math.nan
    index: int | None = None
    if is_cuda:
        cidx = cuda_index(device)
        try:
            index = nvml_index_for(cidx)
            info = nvml_device_info(index)
            name, power_limit_w = info["name"], info["power_limit_w"]
        except EnergyBackendError:
            index = None
            import torch  # noqa: PLC0415

            if not torch.cuda.is_available() or cidx >= torch.cuda.device_count():
                raise ValidationError("device", f"{device} is not available on this machine "
                                                f"(torch sees {torch.cuda.device_count()} CUDA devices)")
            name = torch.cuda.get_device_name(cidx)
            if not gpu_models:
                gpu_models = tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    hardware_id = _sha("|".join([host_hash, cpu_model, *gpu_models]))
    return HardwareInfo(
        device=device, name=name, hardware_id=hardware_id, host_hash=host_hash, cpu_model=cpu_model,
        cpu_cores_physical=int(physical), cpu_cores_logical=int(logical), gpu_models=gpu_models,
        gpu_count=len(gpu_models), gpu_power_limit_w=power_limit_w, nvml_index=index,
        driver_version=driver, cuda_version=cuda_version, torch_version=torch_version,
        python_version=platform.python_version(), os=platform.platform(),
    )


def detect_hardware(device: Any = "cpu") -> HardwareInfo:
    """Identity of this machine as seen from ``device`` (cached per normalised device string).

    ``device`` is ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or a ``torch.device``. GPU models
    and the driver come from NVML (every GPU on the machine, so ``hardware_id`` does not depend
    on ``CUDA_VISIBLE_DEVICES``); without NVML, from torch for CUDA devices.
    """
    return _detect(normalize_device(device))


def available_cpus() -> int:
    """CPUs this process may run on (affinity / container limit where the OS says), >= 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
