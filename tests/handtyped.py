"""Hand-typed measurements shared by the plot and dashboard tests (provenance="entered")."""

from __future__ import annotations

import pandas as pd


def hand_measurements() -> pd.DataFrame:
    """Two candidates typed in by hand on a machine that is not in the catalog.

    small: batch 1 -> 300 items/s (p95 4 ms), batch 8 -> 1000 items/s (p95 10 ms)
    large: batch 1 ->  60 items/s (p95 20 ms), batch 8 ->  200 items/s (p95 50 ms)
    """
    return pd.DataFrame({
        "candidate": ["small", "small", "large", "large"],
        "hardware": "lab-cpu",
        "mode": "inference",
        "batch_size": [1, 8, 1, 8],
        "latency_p50_ms": [3.0, 8.0, 15.0, 40.0],
        "latency_p95_ms": [4.0, 10.0, 20.0, 50.0],
        "throughput_items_per_s": [300.0, 1000.0, 60.0, 200.0],
        "energy_per_item_j": [1.0, 0.5, 2.5, 1.25],
        "idle_power_w": 20.0,
        "flops_per_item": [2e9, 2e9, 1e10, 1e10],
        "quality": [0.90, 0.90, 0.95, 0.95],
        "provenance": "entered",
        "energy_source": "entered",
    })
