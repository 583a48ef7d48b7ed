"""Reference tables: kernel overhead and published MLPerf throughputs (validated, sourced)."""

from __future__ import annotations

import pandas as pd
import pytest

from effplan.refdata.catalog import load_catalog
from effplan.errors import ValidationError
from effplan.refdata.reference import (kernel_overhead, mlperf_inference, overhead_per_operator_s,
                                       published_peak_share)


def test_kernel_overhead_rows_have_sources_and_ranges():
    df = kernel_overhead()
    assert set(df["family"]) == {"cuda", "cpu"}
    assert (df["source"].str.len() > 20).all() and (df["date"] != "").all()
    assert (df["overhead_low_us"] <= df["overhead_us"]).all()
    assert (df["overhead_us"] <= df["overhead_high_us"]).all()
    # a CUDA launch costs more than a CPU dispatch
    by = df.set_index("family")["overhead_us"]
    assert by["cuda"] > by["cpu"] > 0


def test_overhead_per_operator_s_maps_catalog_kind():
    central, lo, hi, source = overhead_per_operator_s("gpu")
    assert central == pytest.approx(kernel_overhead().set_index("family").loc["cuda",
                                                                               "overhead_us"] * 1e-6)
    assert lo <= central <= hi and "H100" in source
    with pytest.raises(ValidationError, match="kind"):
        overhead_per_operator_s("tpu")


def test_mlperf_rows_are_attributed():
    df = mlperf_inference()
    assert {"H100 SXM", "L4", "A100 80GB"} <= set(df["accelerator"])
    assert set(df["scenario"]) <= {"offline", "server"}
    assert df["round"].str.startswith("MLPerf Inference v").all()
    assert df["source"].str.contains("mlcommons/inference_results_v").all()
    # every accelerator name is a catalog name
    cat = load_catalog()
    assert set(df["accelerator"]) <= set(cat["name"])
    # server (latency-bounded) never beats offline for the same accelerator and model
    piv = df.pivot_table(index=["accelerator", "model"], columns="scenario",
                         values="throughput_items_per_s")
    both = piv.dropna()
    assert len(both) >= 3 and (both["server"] <= both["offline"]).all()


def test_published_peak_share_hand_computed():
    """H100 SXM: 88,714.3 images/s x 8.18e9 FLOPs / 1.9788e15 int8 ops/s = 0.3667."""
    cat = load_catalog().set_index("name")
    share = published_peak_share(cat.loc[["H100 SXM", "L4", "H200"], "peak_int8_ops"])
    assert share.loc["H100 SXM", "peak_share"] == pytest.approx(88714.3 * 8.18e9 / 1.9788e15)
    assert share.loc["L4", "peak_share"] == pytest.approx(12881.7 * 8.18e9 / 2.425e14)
    # H200 has no row: the highest published share, labelled so
    assert share.loc["H200", "peak_share"] == pytest.approx(share["peak_share"].max())
    assert "no published result" in share.loc["H200", "peak_share_source"]
    assert 0 < share["peak_share"].max() < 1


def test_loader_names_bad_field(tmp_path):
    bad = kernel_overhead()
    bad.loc[0, "source"] = " "
    path = tmp_path / "k.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ValidationError, match="source"):
        kernel_overhead(path)
    bad = kernel_overhead()
    bad.loc[1, "overhead_us"] = 99.0
    bad.to_csv(path, index=False)
    with pytest.raises(ValidationError, match="overhead_low_us <= overhead_us"):
        kernel_overhead(path)
    m = mlperf_inference().drop(columns=["throughput_per_accelerator_items_per_s"]).astype(str)
    m.loc[0, "throughput_items_per_s"] = "fast"
    m.to_csv(path, index=False)
    with pytest.raises(ValidationError, match="throughput_items_per_s"):
        mlperf_inference(path)


def test_training_utilization_by_model_size():
    from effplan.refdata.reference import training_utilization, training_utilization_range

    tab = training_utilization()
    assert (tab["source"].str.len() > 20).all()
    lo, mid, hi, src = training_utilization_range([5e5, 1.24e8, 7e10, 5.4e11, float("nan")])
    # 0.5M params: 0.01-0.5, central sqrt(0.01 * 0.5) = 0.0707
    assert (lo[0], hi[0]) == (0.01, 0.5) and mid[0] == pytest.approx(0.07071, rel=1e-3)
    assert (lo[1], hi[1]) == (0.05, 0.40)
    assert (lo[3], hi[3]) == (0.20, 0.50) and "PaLM" in src[3]
    assert all(lo[:4] < mid[:4]) and all(mid[:4] < hi[:4])
    # never a single 40%: every range is a range
    assert (tab["mfu_low"] < tab["mfu_high"]).all()
    assert pd.isna(lo[4]) and src[4] == ""
