"""Shared hand-typed inputs for the planning tests (imported by tests/planning/test_*.py).

``meas()``: one candidate "m" measured on an L4 at three batch sizes; ``wl()``: the workload the
hand calculations use; ``tiny_catalog()``: two GPUs with round numbers for the projection.
"""

from __future__ import annotations

import importlib

import pandas as pd

from effplan.refdata import catalog as C

P = importlib.import_module("effplan.planning")


def meas(extra: list[dict] | None = None) -> pd.DataFrame:
    rows = [
        # batch, p95 ms, throughput items/s
        dict(batch_size=1, latency_p95_ms=5.0, throughput_items_per_s=200.0),
        dict(batch_size=8, latency_p95_ms=20.0, throughput_items_per_s=1000.0),
        dict(batch_size=32, latency_p95_ms=80.0, throughput_items_per_s=1600.0),
    ]
    for r in rows:
        r.update(candidate="m", hardware="NVIDIA L4", mode="inference", energy_per_item_j=0.5,
                 idle_power_w=20.0, provenance="measured", energy_source="nvml-counter", quality=0.91)
    return pd.DataFrame(rows + (extra or []))


PRICES = P.Prices(price_per_hour={"L4": 0.80}, grid_gco2_per_kwh=100)


def wl(**kw) -> P.InferenceWorkload:
    base = dict(requests_per_day=86_400_000, peak_to_average=2.0, slo_p95_ms=60,
                target_utilization=0.5, months=3)
    base.update(kw)
    return P.InferenceWorkload(**base)


def tiny_catalog() -> pd.DataFrame:
    raw = pd.read_csv(C._shipped_path(), dtype=str, keep_default_na=False)
    base = raw[raw["name"] == "L4"].iloc[0].to_dict()
    rows = []
    for name, peak, bw, watts, price in (("SrcGPU", "2e12", "400", "200", "2.0"),
                                         ("TestGPU", "1e12", "100", "100", "1.0")):
        r = dict(base, name=name, aliases="", peak_fp32_flops=peak, memory_bandwidth_gb_s=bw,
                 rated_power_w=watts, price_per_hour_usd=price, capex_usd="1000", memory_gb="16")
        rows.append(r)
    rows.append(raw[raw["name"] == C.GENERIC_CPU].iloc[0].to_dict())
    return C.load_catalog(pd.DataFrame(rows))


def src_rows(flops: float, byts: float, tput: float, hardware: str = "SrcGPU") -> pd.DataFrame:
    return pd.DataFrame([dict(candidate="c", hardware=hardware, mode="inference", batch_size=1,
                              latency_p95_ms=1.2, throughput_items_per_s=tput, energy_per_item_j=0.2,
                              idle_power_w=30.0, flops_per_item=flops, bytes_per_item=byts,
                              dtype="float32")])


NIGHT_DAY = [1.0] * 12 + [3.0] * 12          # normalised to 0.5 (12 h) and 1.5 (12 h)


def train_row(hardware: str = "NVIDIA L4") -> dict:
    """One measured training point for "m": 500 items/s per device at 0.144 J/item (72 W)."""
    return dict(candidate="m", hardware=hardware, mode="training", batch_size=32,
                latency_p95_ms=70.0, throughput_items_per_s=500.0, energy_per_item_j=0.144,
                idle_power_w=20.0)


def with_t4_inference() -> pd.DataFrame:
    """meas() plus the same inference figures typed in for a T4 (catalog-priced), and training
    measured on the L4 only: on the T4 the inference cost exists, the training cost does not."""
    t4 = meas()
    t4["hardware"] = "T4"
    return pd.concat([meas([train_row()]), t4], ignore_index=True)
