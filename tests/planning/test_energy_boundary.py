"""Energy names its boundary (effplan.planning.energy_boundary): the reference table's figures,
the host share from Google's breakdown, and the side-by-side levels of a generation plan by hand."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import effplan
from effplan.planning import GenerationWorkload, Prices
from effplan.planning import energy_boundary as eb


def test_reference_table_holds_the_cited_figures():
    ref = eb.energy_reference()
    assert {"reference", "value", "unit", "boundary", "source", "url", "date"} <= set(ref.columns)
    ml = ref[ref["reference"].str.startswith("ML.ENERGY")].iloc[0]
    assert (ml["value"], ml["unit"], ml["boundary"]) == (0.12, "J", "accelerator")
    g = ref[ref["reference"].str.startswith("Google") & (ref["figure"] == "energy per prompt")]
    assert sorted(g["value"]) == [0.10, 0.24]
    assert set(g["boundary"]) == {"accelerator", "accelerator + host + idle + facility"}
    shares = ref[ref["figure"].str.startswith("share of energy")]["value"]
    assert shares.sum() == pytest.approx(1.01)   # 58 + 25 + 10 + 8, as published (rounded)
    assert ref["date"].str.len().gt(0).all() and ref["url"].str.startswith("https://").all()
    # the AI Energy Score figure could not be cited: the row says so, with no number
    ai = ref[ref["reference"] == "AI Energy Score"].iloc[0]
    assert pd.isna(ai["value"]) and "NOT FOUND" in ai["notes"]
    assert eb.host_share() == pytest.approx(25 / 58)


def test_device_boundary_labels():
    assert eb.device_boundary("nvml-counter", "gpu").startswith("accelerator only")
    assert eb.device_boundary("projected", "gpu").startswith("accelerator only")
    assert "RAPL" in eb.device_boundary("rapl", "cpu")


def _row(hw: str) -> dict:
    return {"candidate": "m", "hardware": hw, "mode": "generation", "batch_size": 8, "prompt_tokens": 100,
            "ttft_p50_ms": 100, "ttft_p95_ms": 120, "tpot_p50_ms": 20, "tpot_p95_ms": 25,
            "kv_cache_bytes_per_token": 1000.0, "param_bytes": 1e9, "energy_per_prompt_token_j": 0.01,
            "energy_per_output_token_j": 0.5, "idle_power_w": 30.0, "energy_source": "nvml-counter",
            "provenance": "measured"}


def test_generation_plan_levels_side_by_side_by_hand():
    rows = pd.DataFrame([_row("L4"), {**_row("AWS c7i.4xlarge"), "energy_source": "rapl"}])
    wl = GenerationWorkload(requests_per_day=1000, prompt_tokens=100, output_tokens=50, months=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = effplan.plan(rows, generation=wl, prices=Prices(pue=1.2))
    s = plan.summary.set_index("hardware")
    wh = (100 * 0.01 + 50 * 0.5) / 3600           # accelerator only, per response
    gpu = s.loc["L4"]
    assert gpu["energy_per_response_wh"] == pytest.approx(wh)
    assert gpu["energy_per_output_token_j"] == pytest.approx(0.5)
    assert gpu["energy_per_response_with_host_wh"] == pytest.approx(wh * (1 + 25 / 58))
    assert gpu["energy_per_response_facility_wh"] == pytest.approx(wh * (1 + 25 / 58) * 1.2)
    assert gpu["energy_kwh_with_host"] == pytest.approx(gpu["energy_kwh"] * (1 + 25 / 58))
    assert gpu["energy_boundary"].startswith("per token / per response: accelerator only (GPU board energy, NVML)")
    assert "x PUE 1.2 (no host)" in gpu["energy_boundary"]
    cpu = s.loc["AWS c7i.4xlarge"]
    assert cpu["energy_per_response_with_host_wh"] == pytest.approx(cpu["energy_per_response_wh"])
    assert "RAPL" in cpu["energy_boundary"] and "the device is the host" in cpu["energy_boundary"]
    m = plan.monthly[plan.monthly["hardware"] == "L4"]
    assert m["energy_kwh_with_host"].tolist() == pytest.approx((m["energy_kwh"] * (1 + 25 / 58)).tolist())
    assert m["energy_boundary"].str.contains("accelerator only").all()
    assert "energy_boundary" in plan.quarterly.columns
