"""effplan.billing: FOCUS files read the same whatever their form; the spec's rules enforced
with errors naming the column; currencies; tags."""

from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import effplan
from effplan.records import billing as B
from effplan import focus_samples as fs
from effplan.errors import CurrencyError, DataWarning, ValidationError


@pytest.fixture(scope="module")
def plan():
    return fs.sample_plan(months=3)


@pytest.fixture(scope="module")
def bill(plan):
    return fs.focus_export(plan, months=2, granularity="day")


def _small(bill, n=None):
    usd = bill["focus_usd"]
    return usd if n is None else usd.head(n).copy()


def test_dataframe_folder_csv_parquet_and_hive_give_the_same_figures(tmp_path, plan, bill):
    usd, eur = bill["focus_usd"], bill["focus_eur"]
    fx = {"EUR": fs.USD_PER_EUR}
    ref = effplan.actuals(plan, [usd, eur], start="2026-10", fx=fx)
    # one CSV per currency, gzipped, in a folder
    folder = tmp_path / "csv"
    folder.mkdir()
    usd.to_csv(folder / "usd.csv.gz", index=False, compression="gzip")
    eur.to_csv(folder / "eur.csv", index=False)
    (folder / "manifest.json").write_text("{}")           # an export's manifest: skipped
    # Parquet files
    usd.to_parquet(tmp_path / "usd.parquet")
    eur.to_parquet(tmp_path / "eur.parquet")
    # a Hive-partitioned folder: billing_month=YYYY-MM/part-*.parquet
    hive = tmp_path / "hive"
    both = pd.concat([usd, eur], ignore_index=True)
    both["billing_month"] = both["BillingPeriodStart"].str[:7]
    both.to_parquet(hive, partition_cols=["billing_month"])
    for source in (folder, [tmp_path / "usd.parquet", tmp_path / "eur.parquet"], hive,
                   [folder / "usd.csv.gz", eur]):
        got = effplan.actuals(plan, source, start="2026-10", fx=fx)
        pd.testing.assert_frame_equal(got.variance, ref.variance)
        pd.testing.assert_frame_equal(got.excluded, ref.excluded)
        assert len(got.unmapped) == len(ref.unmapped)
        assert got.unmapped["cost_usd"].sum() == pytest.approx(ref.unmapped["cost_usd"].sum())
        assert got.bill_total_usd == pytest.approx(ref.bill_total_usd, rel=1e-12)


def test_eur_without_fx_is_a_named_error(plan, bill):
    with pytest.raises(CurrencyError) as exc:
        effplan.actuals(plan, list(bill.values()), start="2026-10")
    assert exc.value.field == "BillingCurrency"
    assert isinstance(exc.value, ValidationError)
    assert "EUR" in str(exc.value) and "fx=" in str(exc.value)


def test_eur_with_fx_is_converted_and_the_conversion_shown(bill):
    b = B.load_billing(bill["focus_eur"], fx={"eur": 1.08})
    cur = b.currency_table.set_index("currency").loc["EUR"]
    assert cur["usd_per_unit"] == 1.08 and cur["rate_source"] == "fx argument"
    eur = bill["focus_eur"]
    assert cur["billed_cost"] == pytest.approx(eur["BilledCost"].sum())
    assert cur["billed_cost_usd"] == pytest.approx(eur["BilledCost"].sum() * 1.08)
    np.testing.assert_allclose(b.effective_usd, eur["EffectiveCost"].to_numpy() * 1.08)
    with pytest.raises(ValidationError, match="fx"):
        B.load_billing(bill["focus_eur"], fx={"EUR": 0})


@pytest.mark.parametrize("column", list(B.REQUIRED_COLUMNS))
def test_a_missing_required_column_is_named(bill, column):
    df = _small(bill, 10).drop(columns=[column])
    with pytest.raises(ValidationError) as exc:
        B.load_billing(df)
    assert exc.value.field == column


@pytest.mark.parametrize("column,value,match", [
    ("ChargeCategory", "Support", "not a FOCUS ChargeCategory"),
    ("ServiceCategory", "Cats", "not a FOCUS ServiceCategory"),
    ("ChargePeriodStart", "yesterday", "not an ISO 8601"),
    ("BilledCost", None, "null"),
    ("ChargeCategory", None, "null"),
])
def test_values_outside_the_spec_are_named(bill, column, value, match):
    df = _small(bill, 10)
    df[column] = df[column].astype(object)
    df.loc[3, column] = value
    with pytest.raises(ValidationError, match=match) as exc:
        B.load_billing(df)
    assert exc.value.field == column


def test_end_before_start_and_csv_errors_are_named(tmp_path, bill):
    df = _small(bill, 5)
    df.loc[2, "ChargePeriodEnd"] = "2026-09-01T00:00:00Z"
    with pytest.raises(ValidationError, match="exclusive end") as exc:
        B.load_billing(df)
    assert exc.value.field == "ChargePeriodEnd"
    bad = _small(bill, 5)
    bad["EffectiveCost"] = bad["EffectiveCost"].astype(object)
    bad.loc[1, "EffectiveCost"] = "lots"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValidationError) as exc:
        B.load_billing(tmp_path / "bad.csv")
    assert exc.value.where == str(tmp_path / "bad.csv")
    with pytest.raises(ValidationError, match="no such file"):
        B.load_billing(tmp_path / "nope.csv")


def test_case_and_spaces_in_allowed_values_and_the_bom(tmp_path, bill):
    df = _small(bill, 6)
    df["ChargeCategory"] = " usage "
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False).encode())
    b = B.load_billing(p)
    assert (b.category == B.CHARGE_CATEGORIES.index("Usage")).all()


def test_hours_are_consumed_quantity_in_hour_units_only():
    base = dict(ChargeCategory="Usage", ChargePeriodStart="2026-10-01T00:00:00Z",
                ChargePeriodEnd="2026-10-01T01:00:00Z", BilledCost=1.0, EffectiveCost=1.0,
                BillingCurrency="USD", ServiceCategory="Compute", ConsumedQuantity=5.0)
    units = ["Hours", "hour", "Hrs", "GB-Hours", "Normalized Hour", None, "Requests"]
    df = pd.DataFrame([dict(base, ConsumedUnit=u) for u in units]
                      + [dict(base, ChargeCategory="Purchase", ConsumedUnit="Hours")])
    b = B.load_billing(df)
    assert b.hours.tolist() == [5.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert b.month.tolist() == [2026 * 12 + 9] * 8


def test_tags_json_map_and_bad_json():
    base = dict(ChargeCategory="Usage", ChargePeriodStart="2026-10-01T00:00:00Z",
                ChargePeriodEnd="2026-10-01T01:00:00Z", BilledCost=1.0, EffectiveCost=1.0,
                BillingCurrency="USD", ServiceCategory="Compute")
    tags = ['{"effplan-option": "a@L4", "team": "x"}', '{"team": "x"}', "{effplan-option: a@L4}",
            '{"effplan-option": true}', None, '["a@L4"]', {"effplan-option": "b@L4"}]
    df = pd.DataFrame([dict(base, Tags=t) for t in tags])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        b = B.load_billing(df)
    assert [b.tag_values[c] if c >= 0 else None for c in b.tag_code] == [
        "a@L4", None, None, None, None, None, "b@L4"]
    assert b.tags_bad.tolist() == [False, False, True, False, False, True, False]
    assert any(issubclass(x.category, DataWarning) for x in w)
    # Parquet map<string, string> tags
    import pyarrow as pa

    t = pa.table({**{k: [v] * 2 for k, v in base.items()},
                  "Tags": pa.array([[("effplan-option", "a@L4")], [("team", "y")]],
                                   type=pa.map_(pa.string(), pa.string()))})
    b = B.load_billing(t)
    assert [b.tag_values[c] if c >= 0 else None for c in b.tag_code] == ["a@L4", None]


def test_option_key_matches_label_forms_that_gcp_and_kubernetes_allow():
    assert B.option_key("digits-mlp@H100 SXM") == "digits-mlp_h100-sxm"
    assert B.option_key("digits-mlp_h100-sxm") == "digits-mlp_h100-sxm"
    assert B.option_key("Digits-MLP@AWS c7i.4xlarge") == "digits-mlp_aws-c7i-4xlarge"


def test_billing_files_walks_folders_and_skips_hidden(tmp_path, bill):
    (tmp_path / "a" / "b").mkdir(parents=True)
    _small(bill, 3).to_csv(tmp_path / "a" / "b" / "x.csv", index=False)
    _small(bill, 3).to_csv(tmp_path / ".hidden.csv", index=False)
    (tmp_path / "_SUCCESS").write_text("")
    assert [p.name for p in B.billing_files(tmp_path)] == ["x.csv"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValidationError, match="no FOCUS file"):
        B.billing_files(empty)


def test_gz_header_is_read(tmp_path, bill):
    p = tmp_path / "x.csv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write(_small(bill, 4).to_csv(index=False))
    assert B.load_billing(p).rows == 4
    assert json.loads(_small(bill, 1)["Tags"].iloc[0])["team"] == "ml-platform"
