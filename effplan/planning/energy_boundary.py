"""Which energy an energy figure holds: accelerator only, + host CPU/DRAM, + facility (PUE).

Published serving energy is reported at different boundaries, and they differ by more than 2x:
Google's median Gemini text prompt is 0.10 Wh counting the active AI accelerator only and 0.24 Wh
for the whole system (58% accelerators, 25% host CPU and DRAM, 10% idle provisioned machines, 8%
data-centre overhead; 2025-08-21). ``effplan/data/energy_reference.csv`` holds these figures and
the ML.ENERGY leaderboard's, with sources and dates (:func:`energy_reference`).

A generation plan says, per option, which boundary its energy has (``energy_boundary``) and gives
the levels side by side:

* ``energy_per_output_token_j`` / ``energy_per_response_wh``: the serving device while it serves --
  a GPU's board energy (NVML) or its rated power x time (projected, estimated), i.e. the
  **accelerator only**; for a CPU the package (RAPL), which is the host itself;
* ``energy_per_response_with_host_wh`` = accelerator x ``(1 + HOST_SHARE)`` for GPU options, with
  ``HOST_SHARE = 0.25 / 0.58`` (host CPU and DRAM per accelerator energy, Google's breakdown) -- a
  sourced ratio, not a measurement of your host; for CPU options the device is the host, so it
  equals the device figure;
* ``energy_per_response_facility_wh`` = the host level x ``pue`` (:class:`effplan.Prices`);
* ``energy_kwh`` (monthly, quarterly, summary) is as before: device energy while serving + idle
  power x idle time, x PUE -- accelerator + facility, **no host**; ``energy_kwh_with_host`` adds the
  host share to it. CO2 stays on ``energy_kwh``.

Google's 10% "idle machines" is not applied: effplan models the idle time of its own instances.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["energy_reference", "host_share", "device_boundary", "add_energy_levels", "ENERGY_LEVEL_COLUMNS"]

ENERGY_LEVEL_COLUMNS: dict[str, str] = {
    "energy_boundary": "what the energy figures hold: accelerator only / + host CPU and DRAM / + facility "
                       "(PUE), per figure (effplan.planning.energy_boundary)",
    "energy_per_output_token_j": "device energy per output token while serving, J (accelerator only on a GPU)",
    "energy_per_response_with_host_wh": "energy_per_response_wh + the host CPU/DRAM share (GPU: x (1 + 25/58), "
                                        "Google 2025-08-21 breakdown; CPU: the device is the host), Wh",
    "energy_per_response_facility_wh": "energy_per_response_with_host_wh x PUE, Wh",
    "energy_kwh_with_host": "energy_kwh with the host CPU/DRAM share added (GPU options), kWh",
}


@functools.lru_cache(maxsize=1)
def _reference_cached(path: str) -> pd.DataFrame:
    return pd.read_csv(path)


def energy_reference() -> pd.DataFrame:
    """The sourced, dated reference figures of ``effplan/data/energy_reference.csv`` (a copy)."""
    p = Path(str(importlib.resources.files("effplan") / "data" / "energy_reference.csv"))
    return _reference_cached(str(p)).copy()


def host_share() -> float:
    """Host CPU and DRAM energy per unit of accelerator energy: Google's 25% / 58% (0.431)."""
    ref = energy_reference()
    g = ref[ref["reference"].str.startswith("Google")].set_index("figure")["value"].astype(float)
    return float(g["share of energy: host CPU and DRAM"] / g["share of energy: AI accelerators"])


def device_boundary(energy_source: str, kind: str) -> str:
    """The boundary of a row's device energy, from its ``energy_source`` and the hardware kind."""
    src = str(energy_source)
    if kind == "cpu":
        return ("CPU package (RAPL): the host's processor; DRAM and the rest of the host not included"
                if src == "rapl" else f"CPU, {src} (rated power x utilization x time)")
    if src.startswith("nvml"):
        return "accelerator only (GPU board energy, NVML)"
    if src in ("projected", "estimated-tdp"):
        return f"accelerator only (GPU rated power x time, {src})"
    if src == "entered":
        return "as entered (boundary not stated: read as accelerator only)"
    return f"accelerator only ({src})"


def add_energy_levels(summary: pd.DataFrame, monthly: pd.DataFrame, quarterly: pd.DataFrame,
                      cat: pd.DataFrame, pue: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The frames of a generation plan with ``energy_boundary`` and the side-by-side levels (see
    the module docstring)."""
    h = host_share()
    kinds = cat.set_index("name")["kind"].astype(str).to_dict()

    def factor(frame: pd.DataFrame) -> np.ndarray:
        k = frame["catalog_name"].astype(str).map(lambda n: kinds.get(n, "")).to_numpy(str)
        return np.where(k == "gpu", 1.0 + h, np.where(k == "cpu", 1.0, np.nan))

    def label(frame: pd.DataFrame) -> list[str]:
        pairs = list(zip(frame["catalog_name"].astype(str), frame["energy_source"].astype(str)))
        done: dict[tuple[str, str], str] = {}
        for pair in dict.fromkeys(pairs):
            done[pair] = one(*pair)
        return [done[p] for p in pairs]

    def one(n: str, src: str) -> str:
        if True:
            kind = kinds.get(n, "")
            dev = device_boundary(src, kind) if kind else f"unknown hardware kind ({src})"
            host = (f"with_host: + host CPU/DRAM x {h:.3f} (Google 2025-08-21: 25% host vs 58% accelerators)"
                    if kind == "gpu" else "with_host: the device is the host" if kind == "cpu"
                    else "with_host: unknown")
            return (f"per token / per response: {dev}; energy_kwh: that + idle, x PUE {pue:g} (no host); "
                    f"{host}; facility: with_host x PUE {pue:g}")

    s = summary.copy()
    f = factor(s)
    s["energy_boundary"] = label(s)
    s["energy_per_response_with_host_wh"] = s["energy_per_response_wh"].to_numpy(float) * f
    s["energy_per_response_facility_wh"] = s["energy_per_response_with_host_wh"] * pue
    s["energy_kwh_with_host"] = s["energy_kwh"].to_numpy(float) * f
    frames = []
    for frame in (monthly, quarterly):
        fr = frame.copy()
        fr["energy_boundary"] = label(fr)
        fr["energy_kwh_with_host"] = fr["energy_kwh"].to_numpy(float) * factor(fr)
        frames.append(fr)
    return s, frames[0], frames[1]
