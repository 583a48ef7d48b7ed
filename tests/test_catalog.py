"""The hardware catalog: shipped data, validation of bad files, lookups, 'this machine'."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from effplan.refdata import catalog as C
from effplan.errors import UnknownHardwareError, ValidationError


def test_shipped_catalog_loads_with_sources_for_every_figure():
    cat = C.load_catalog()
    assert len(cat) >= 12
    for name in ("H100 SXM", "H200", "A100 80GB", "L40S", "L4", "A10G", "T4", "MI300X"):
        assert name in set(cat["name"]), name
    assert set(cat["kind"]) == {"gpu", "cpu"}
    assert (cat["kind"] == "cpu").sum() >= 3
    for fig, (src, date) in C.FIGURE_SOURCES.items():
        given = cat[fig].notna()
        assert (cat.loc[given, src] != "").all(), fig
        assert (cat.loc[given, date].str.match(r"^\d{4}-\d{2}$")).all(), fig
    # every GPU has the core figures needed for planning and projection
    gpus = cat[cat["kind"] == "gpu"]
    for col in ("peak_fp32_flops", "peak_fp16_flops", "memory_gb", "memory_bandwidth_gb_s",
                "rated_power_w", "price_per_hour_usd", "capex_usd"):
        assert gpus[col].notna().all(), col
    # dense, not sparse: H100 SXM dense FP16 tensor peak is 989.4 TFLOP/s (1979 with sparsity)
    h100 = C.find_hardware("H100 SXM")
    assert h100["peak_fp16_flops"] == pytest.approx(989.4e12)
    assert h100["memory_bandwidth_gb_s"] == 3350


def test_empty_cells_mean_unknown():
    assert math.isnan(C.peak_flops_per_s("T4", "tf32"))          # T4 has no TF32
    assert math.isnan(C.peak_flops_per_s("AWS c7g.4xlarge", "int8"))


def _write(tmp_path, df: pd.DataFrame):
    p = tmp_path / "hw.csv"
    df.to_csv(p, index=False)
    return p


def _raw():
    return pd.read_csv(C._shipped_path(), dtype=str, keep_default_na=False)


def test_missing_column_names_file_and_column(tmp_path):
    p = _write(tmp_path, _raw().drop(columns=["memory_gb"]))
    with pytest.raises(ValidationError) as e:
        C.load_catalog(p)
    assert e.value.field == "memory_gb"
    assert "hw.csv" in str(e.value)


def test_negative_value_names_file_row_column(tmp_path):
    raw = _raw()
    raw.loc[2, "rated_power_w"] = "-5"
    p = _write(tmp_path, raw)
    with pytest.raises(ValidationError) as e:
        C.load_catalog(p)
    assert e.value.field == "rated_power_w"
    assert e.value.where == f"{p.resolve()} row 3"      # 1-based data row
    assert "negative" in str(e.value)


def test_non_numeric_value_names_row(tmp_path):
    raw = _raw()
    raw.loc[0, "price_per_hour_usd"] = "about two"
    p = _write(tmp_path, raw)
    with pytest.raises(ValidationError, match=r"row 1: price_per_hour_usd: non-numeric value 'about two'"):
        C.load_catalog(p)


def test_figure_without_source_is_rejected(tmp_path):
    raw = _raw()
    raw.loc[1, "price_source"] = ""
    with pytest.raises(ValidationError) as e:
        C.load_catalog(_write(tmp_path, raw))
    assert e.value.field == "price_source"


def test_dataframe_catalog_override():
    raw = _raw()
    raw.loc[raw["name"] == "L4", "price_per_hour_usd"] = "0.5"
    cat = C.load_catalog(raw)
    assert C.find_hardware("L4", cat)["price_per_hour_usd"] == 0.5


def test_find_hardware_exact_case_and_aliases_only():
    assert C.find_hardware("H100 SXM")["name"] == "H100 SXM"
    assert C.find_hardware("NVIDIA H100 80GB HBM3")["name"] == "H100 SXM"   # NVML name (alias)
    assert C.find_hardware("l40s")["name"] == "L40S"                         # case-insensitive
    assert C.find_hardware("  l4 ")["name"] == "L4"                           # spaces ignored
    assert C.find_hardware("NVIDIA A100-SXM4-80GB")["name"] == "A100 80GB"
    # no substring matching either way (issue 10, case 2)
    assert C.find_hardware("Tesla T4 (PCIe)") is None
    assert C.find_hardware("MI300") is None
    assert C.find_hardware("Some Unknown Accelerator 9000") is None
    assert C.find_hardware("") is None


@pytest.mark.parametrize("name", ["t4g.xlarge", "cpu-pool4", "NVIDIA", "my-l4-box", "g6-box",
                                  "Azure NC A100 v4"])
def test_substrings_of_catalog_names_are_not_catalog_hardware(name):
    # each of these once silently became a catalog GPU (T4, L4, H100 SXM, A100 40GB)
    assert C.find_hardware(name) is None
    with pytest.raises(UnknownHardwareError) as e:
        C.resolve_hardware(name)
    assert e.value.field == "hardware" and repr(name) in str(e.value)


def test_unknown_name_error_says_did_you_mean():
    with pytest.raises(UnknownHardwareError) as e:
        C.resolve_hardware("L4x")
    assert "did you mean 'L4'" in str(e.value)
    assert e.value.suggestions[0] == "L4"
    with pytest.raises(UnknownHardwareError) as e:
        C.resolve_hardware("H100 PCIe", field="price_per_hour")
    assert e.value.field == "price_per_hour" and "H100 SXM" in e.value.suggestions
    assert C.closest_names("zzzzzzzz") == []


def test_alias_naming_two_rows_is_rejected():
    raw = _raw()
    raw.loc[raw["name"] == "T4", "aliases"] = "L4"
    with pytest.raises(ValidationError) as e:
        C.load_catalog(raw)
    assert e.value.field == "aliases" and "'L4' names both" in str(e.value)


@pytest.mark.parametrize("col", ["peak_fp32_flops", "peak_fp16_flops", "memory_bandwidth_gb_s", "memory_gb"])
def test_zero_peak_or_bandwidth_is_rejected(col):
    raw = _raw()
    raw.loc[raw["name"] == "L4", col] = "0"
    with pytest.raises(ValidationError) as e:
        C.load_catalog(raw)
    assert e.value.field == col and "must be > 0" in str(e.value) and "row 6" in str(e.value)


@pytest.mark.parametrize("value, message", [("inf", "not a finite number"), ("1e400", "not a finite number"),
                                            ("true", "non-numeric"), ("-1", "negative")])
def test_catalog_numbers_use_schema_rules(value, message):
    raw = _raw()
    raw.loc[raw["name"] == "L4", "price_per_hour_usd"] = value
    with pytest.raises(ValidationError, match=message):
        C.load_catalog(raw)


def test_price_of_zero_is_allowed():
    raw = _raw()
    raw.loc[raw["name"] == "L4", "price_per_hour_usd"] = "0"
    assert C.find_hardware("L4", C.load_catalog(raw))["price_per_hour_usd"] == 0.0


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not UTF-8"),
                                              (None, "cannot read")])
def test_unreadable_catalog_file_is_a_named_error(tmp_path, content, message):
    p = tmp_path / "hw.csv"
    if content is None:
        p.mkdir()  # a directory
    else:
        p.write_bytes(content)
    with pytest.raises(ValidationError, match=message) as e:
        C.load_catalog(p)
    assert e.value.field == "path"


def test_catalog_csv_with_bom_and_crlf_loads(tmp_path):
    p = tmp_path / "hw.csv"
    text = C._shipped_path().read_text(encoding="utf-8")
    p.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    cat = C.load_catalog(p)
    assert list(cat["name"]) == list(C.load_catalog()["name"])
    assert C.find_hardware("L4", cat)["price_per_hour_usd"] == 0.80


def test_peak_flops_dtype_families():
    assert C.peak_flops_per_s("A100 80GB", "float32") == 19.5e12
    assert C.peak_flops_per_s("A100 80GB", "tf32") == 156e12
    assert C.peak_flops_per_s("A100 80GB", "float16") == 312e12
    assert C.peak_flops_per_s("A100 80GB", "bfloat16") == 312e12
    assert C.peak_flops_per_s("A100 80GB", "qint8") == 624e12
    assert C.peak_flops_per_s("A100 80GB", "int8") == 624e12
    assert math.isnan(C.peak_flops_per_s("A100 80GB", "float64"))
    assert math.isnan(C.peak_flops_per_s("nope", "float32"))


def test_rated_power_catalog_and_generic_per_core():
    w, src = C.rated_power_w("NVIDIA L4")
    assert w == 72 and "L4" in src
    w, src = C.rated_power_w("Intel(R) Core(TM) i7-1185G7", cores=4)
    generic = C.find_hardware(C.GENERIC_CPU)["rated_power_w"]
    assert w == 4 * generic
    assert "generic per-core estimate" in src
    w, src = C.rated_power_w("Intel(R) Core(TM) i7-1185G7")
    assert math.isnan(w) and src == "unknown"


def test_this_machine_row_unknown_cpu_uses_generic_per_core(monkeypatch):
    import effplan.devices.hardware as H

    fake = SimpleNamespace(name="Fancy CPU 3000", cpu_model="Fancy CPU 3000", cpu_cores_physical=6)
    monkeypatch.setattr(H, "detect_hardware", lambda device="cpu": fake)
    cat = C.load_catalog(include_this_machine=True)
    row = C.find_hardware("Fancy CPU 3000", cat)
    gen = C.find_hardware(C.GENERIC_CPU, cat)
    assert row is not None and row["kind"] == "cpu"
    assert row["rated_power_w"] == 6 * gen["rated_power_w"]
    assert row["peak_fp32_flops"] == 6 * gen["peak_fp32_flops"]
    assert "generic per-core estimate" in row["power_source"] and "detected" in row["specs_source"]
    assert len(cat) == len(C.load_catalog()) + 1


def test_this_machine_row_known_gpu_copies_catalog(monkeypatch):
    import effplan.devices.hardware as H

    fake = SimpleNamespace(name="NVIDIA L4", cpu_model="x", cpu_cores_physical=8)
    monkeypatch.setattr(H, "detect_hardware", lambda device="cpu": fake)
    row = C.this_machine_row()
    assert row["name"] == "NVIDIA L4" and row["rated_power_w"] == 72
    assert row["specs_source"].startswith("detected: L4")


def test_vague_cpu_name_does_not_pick_a_specific_sku():
    # Many VMs report only "AMD EPYC": that must not become the 16-core "AMD EPYC 9R14" row.
    assert C.find_hardware("AMD EPYC") is None
    assert C.match_detected("AMD EPYC") is None
    # a DETECTED name loses its vendor decorations, then must equal a name or alias exactly
    assert C.match_detected("AMD EPYC 9R14 96-Core Processor")["name"] == "AWS c7a.4xlarge"
    assert C.match_detected("Intel(R) Xeon(R) Platinum 8488C CPU @ 3.20GHz")["name"] == "AWS c7i.4xlarge"
    assert C.match_detected("NVIDIA L4 (24 GB)")["name"] == "L4"
    assert C.match_detected("Tesla T4 (PCIe)")["name"] == "T4"
    assert C.match_detected("NVIDIA") is None and C.match_detected("t4g.xlarge") is None


def test_cpu_row_rated_power_scales_with_cores():
    cat = C.load_catalog()
    row = C.find_hardware("AWS c7a.4xlarge", cat)
    watts, src = C.rated_power_w("AMD EPYC 9R14", cores=4)
    # 4 of the row's 16 cores -> a quarter of its rated power
    assert watts == pytest.approx(float(row["rated_power_w"]) * 4 / 16)
    assert "scaled to 4 of 16 cores" in src
