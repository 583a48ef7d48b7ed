"""The what-if dashboard, driven from Python: controls -> re-plan -> table, total, charts.

Expected budgets are computed by hand from the hand-typed measurements below with the planner's
documented formulas (``effplan.planning``): for each month,
``instances = max(1, ceil(peak items/s / (throughput at the chosen batch x utilization)))`` and
``cost = instances x 730 h x price``; a quarter is three such months (no growth here).
"""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from effplan.errors import ValidationError  # noqa: E402
from effplan.planning import InferenceWorkload, Prices  # noqa: E402
from effplan.widgets import ALL_HARDWARE, BudgetDashboard, budget_table, parse_price  # noqa: E402
from handtyped import hand_measurements  # noqa: E402

HOURS = 730.0


# 86.4 M requests/day = 1000 requests/s on average; one item per request; peak = average.
START_RPD = 86_400_000.0


def quarter_cost(instances: int, price: float) -> float:
    return 3 * instances * HOURS * price


@pytest.fixture(autouse=True)
def _no_pyplot_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "the dashboard created a pyplot figure"


@pytest.fixture
def dash(tmp_path) -> BudgetDashboard:
    return BudgetDashboard(
        hand_measurements(),
        inference=InferenceWorkload(requests_per_day=START_RPD, target_utilization=0.5),
        prices=Prices(price_per_hour={"lab-cpu": 2.0}, grid_gco2_per_kwh=400),
        samples=0, export_dir=tmp_path / "exports")


def row(d: BudgetDashboard, candidate: str) -> pd.Series:
    t = d.table
    hit = t[t["candidate"] == candidate]
    assert len(hit) == 1, t
    return hit.iloc[0]


# ------------------------------------------------------------------------------ hand-checked budget
def test_initial_budget_is_hand_checked(dash):
    # small: no latency target -> batch 8, 1000 items/s x 0.5 = 500/s per instance -> 2 instances
    # large: batch 8, 200 x 0.5 = 100/s -> 10 instances
    assert row(dash, "small")["Q1"] == pytest.approx(quarter_cost(2, 2.0))   # 8,760
    assert row(dash, "large")["Q1"] == pytest.approx(quarter_cost(10, 2.0))  # 43,800
    assert row(dash, "small")["batch_size"] == 8
    expected = 4 * (quarter_cost(2, 2.0) + quarter_cost(10, 2.0))            # 210,240 over 12 months
    assert dash.total_usd == pytest.approx(expected)
    html = dash._total_html.value
    assert 'class="effplan-total"' in html
    assert f'data-total-usd="{expected:.2f}"' in html
    assert "$210,240" in html
    assert "$8,760" in dash._table_html.value
    assert dash.error == ""


def test_moving_the_traffic_slider_replans(dash):
    before = dash.plan
    dash.controls["requests_per_day"].value = 2 * START_RPD  # 2000 req/s -> small 4, large 20
    assert dash.plan is not before
    assert row(dash, "small")["Q1"] == pytest.approx(quarter_cost(4, 2.0))   # 17,520
    assert row(dash, "large")["Q1"] == pytest.approx(quarter_cost(20, 2.0))  # 87,600
    assert dash.total_usd == pytest.approx(4 * (17_520 + 87_600))
    assert 'data-total-usd="420480.00"' in dash._total_html.value
    assert dash.last_plan_ms > 0 and dash.last_draw_ms > 0
    assert dash.last_update_ms >= dash.last_plan_ms
    assert "updated in" in dash._status_html.value


def test_latency_target_changes_batch_and_flags_infeasible(dash):
    dash.controls["slo_p95_ms"].value = 5.0
    # small: only batch 1 (p95 4 ms) meets 5 ms -> 300 x 0.5 = 150/s -> ceil(1000/150) = 7
    assert row(dash, "small")["batch_size"] == 1
    assert row(dash, "small")["Q1"] == pytest.approx(quarter_cost(7, 2.0))   # 30,660
    # large: no batch meets 5 ms -> no cost (NaN, not 0), left out of the total and listed
    large = row(dash, "large")
    assert math.isnan(large["Q1"]) and math.isnan(large["total_usd"])
    assert large["note"] != ""
    assert dash.total_usd == pytest.approx(4 * quarter_cost(7, 2.0))
    assert "not in the total" in dash._total_html.value and "large @ lab-cpu" in dash._total_html.value


def test_utilization_growth_and_horizon(dash):
    assert dash.set(target_utilization=0.25, months=6)
    # small: 1000 x 0.25 = 250/s -> 4 instances; 6 months = 2 quarters
    assert row(dash, "small")["Q1"] == pytest.approx(quarter_cost(4, 2.0))
    assert list(c for c in dash.table.columns if c.startswith("Q")) == ["Q1", "Q2"]
    assert dash.total_usd == pytest.approx(2 * (quarter_cost(4, 2.0) + quarter_cost(20, 2.0)))
    dash.set(monthly_growth=0.5, months=3)
    # small at 0.25 utilization: months 0, 1, 2 carry 1000, 1500, 2250 req/s -> 4, 6, 9 instances
    assert row(dash, "small")["Q1"] == pytest.approx((4 + 6 + 9) * HOURS * 2.0)


def test_pue_and_grid_change_energy_and_co2_not_cost(dash):
    cost = dash.total_usd
    # small, one month: 2.628e9 items x 0.5 J + 20 W x idle s (2 x 730 h x 3600 - 2.628e6 s busy)
    items = 1000.0 * HOURS * 3600
    e_month_kwh = (items * 0.5 + 20.0 * (2 * HOURS * 3600 - items / 1000.0)) / 3.6e6
    assert row(dash, "small")["energy_kwh"] == pytest.approx(12 * e_month_kwh)
    dash.controls["pue"].value = 1.5
    assert row(dash, "small")["energy_kwh"] == pytest.approx(12 * e_month_kwh * 1.5)
    assert row(dash, "small")["co2_kg"] == pytest.approx(12 * e_month_kwh * 1.5 * 0.400)
    dash.controls["grid_gco2_per_kwh"].value = 100.0
    assert row(dash, "small")["co2_kg"] == pytest.approx(12 * e_month_kwh * 1.5 * 0.100)
    assert dash.total_usd == pytest.approx(cost)


def test_candidate_selection_only_redraws(dash):
    plan = dash.plan
    dash.controls["candidates"].value = ("small",)
    assert dash.plan is plan  # no re-plan for a view change
    assert list(dash.table["candidate"]) == ["small"]
    assert dash.total_usd == pytest.approx(4 * quarter_cost(2, 2.0))  # 35,040
    assert 'data-total-usd="35040.00"' in dash._total_html.value


# ------------------------------------------------------------------------------ prices
def test_price_box_sets_the_selected_hardware_price(dash):
    box = dash.controls["price_per_hour"]
    assert box.value == "2"
    box.value = "$3.50"
    assert dash.error == ""
    assert row(dash, "small")["Q1"] == pytest.approx(quarter_cost(2, 3.5))
    assert dash.plan.inputs["prices"]["price_per_hour"] == {"lab-cpu": 3.5}
    # a key naming hardware that is not in the plan is refused, visibly (issue 10, case 3)
    box.value = "lab-cpu=1; T4=0.4"
    assert "'T4'" in dash.error and "not in this plan" in dash.error
    assert row(dash, "small")["Q1"] == pytest.approx(quarter_cost(2, 3.5))  # last good plan kept
    box.value = "LAB-CPU=1"  # exact name, ignoring case
    assert dash.error == ""
    assert row(dash, "small")["Q1"] == pytest.approx(quarter_cost(2, 1.0))


def test_no_price_gives_no_total_and_a_warning_in_the_dashboard(dash):
    dash.controls["price_per_hour"].value = ""  # lab-cpu is not in the catalog: no price at all
    assert dash.error == ""
    assert math.isnan(dash.total_usd)
    assert any("lab-cpu" in w for w in dash.warnings)
    assert "lab-cpu" in dash._warning_html.value
    assert 'data-total-usd="nan"' in dash._total_html.value
    assert all(dash.table["note"] == "no price for this hardware")


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("control, bad, field", [
    ("target_utilization", 0.0, "target_utilization"),
    ("price_per_hour", "two dollars", "price_per_hour"),
    ("price_per_hour", "-1", "price_per_hour"),
    ("price_per_hour", "2,5", "ambiguous"),
    ("price_per_hour", "0,53", "ambiguous"),
    ("slo_p95_ms", -3.0, "slo_p95_ms"),
])
def test_invalid_input_is_shown_and_keeps_the_last_good_plan(dash, control, bad, field):
    dash.controls["requests_per_day"].value = 2 * START_RPD
    plan, table, total = dash.plan, dash.table.copy(), dash.total_usd
    dash.controls[control].value = bad  # must not raise
    assert field in dash.error
    assert "Input not applied" in dash._error_html.value
    assert field in dash._error_html.value
    assert dash.plan is plan
    assert dash.total_usd == total
    pd.testing.assert_frame_equal(dash.table, table)
    # fixing the input clears the message
    good = {"target_utilization": 0.5, "price_per_hour": "2", "slo_p95_ms": 0.0}[control]
    dash.controls[control].value = good
    assert dash.error == "" and dash._error_html.value == ""
    assert dash.total_usd == pytest.approx(total)


def test_replans_reuse_the_prepared_measurements_and_match_a_fresh_plan(dash):
    from effplan.planning import PreparedMeasurements, plan

    prep = dash.prepared
    assert isinstance(prep, PreparedMeasurements) and len(prep.measurements) == len(hand_measurements())
    assert dash.set(requests_per_day=3 * START_RPD, slo_p95_ms=30.0, pue=1.4)
    assert dash.prepared is prep            # held by the dashboard, not rebuilt per gesture
    fresh = plan(hand_measurements(), inference=dash._inference, prices=dash._prices, samples=0)
    pd.testing.assert_frame_equal(dash.plan.summary, fresh.summary)


def test_parse_price():
    assert parse_price("") is None
    assert parse_price(" $1200.50 ") == 1200.5
    assert parse_price("2.5 USD") == 2.5
    assert parse_price("a=1; b = 2.5") == {"a": 1.0, "b": 2.5}
    # a comma is never guessed (issue 10, case 1: "0,53" once became 53.0 and "2,5" 25.0)
    for ambiguous in ("0,53", "2,5", "1,200", "$1,200.50", "T4=0,53"):
        with pytest.raises(ValidationError, match="ambiguous"):
            parse_price(ambiguous)
    for bad in ("abc", "nan", "inf", "-2", "a=", "=3"):
        with pytest.raises(ValidationError, match="price_per_hour"):
            parse_price(bad)


def test_bad_construction_raises_named_field():
    with pytest.raises(ValidationError, match="measurements"):
        BudgetDashboard([1, 2, 3])


# ------------------------------------------------------------------------------ hardware, MC
def test_projected_hardware_in_the_dropdown(tmp_path):
    d = BudgetDashboard(
        hand_measurements(), inference=InferenceWorkload(START_RPD, target_utilization=0.5),
        prices=Prices(price_per_hour={"lab-cpu": 2.0}), hardware=["T4"], samples=0,
        export_dir=tmp_path)
    hw = d.controls["hardware"]
    assert list(hw.options) == ["lab-cpu", "T4", ALL_HARDWARE]
    assert hw.value == "lab-cpu"  # the measured hardware first
    hw.value = "T4"
    assert set(d.table["provenance"]) == {"projected"}
    assert d.controls["price_per_hour"].value == ""  # T4 has no override: catalog price
    assert d.controls["price_per_hour"].placeholder.startswith("catalog")
    q = d.plan.quarterly
    t4 = q[q["hardware"] == "T4"]
    assert d.total_usd == pytest.approx(float(t4["cost_usd"].sum()))
    price = float(d.plan.summary.set_index("hardware").loc["T4", "price_per_hour_usd"].iloc[0])
    assert t4["cost_usd"].to_numpy() == pytest.approx(t4["instances"].to_numpy() * 3 * HOURS * price)
    assert "projected" in d._table_html.value
    hw.value = ALL_HARDWARE
    assert len(d.table) == 4


def test_monte_carlo_band_in_table_and_total(tmp_path):
    d = BudgetDashboard(
        hand_measurements(), inference=InferenceWorkload(START_RPD, target_utilization=0.5),
        prices=Prices(price_per_hour={"lab-cpu": 2.0}), samples=64, seed=1, export_dir=tmp_path)
    t = d.table
    assert {"inference_usd_p10", "inference_usd_p90"} <= set(t.columns)
    assert (t["inference_usd_p10"] <= t["inference_usd_p90"]).all()
    s = d.plan.summary.set_index("candidate")
    assert row(d, "small")["inference_usd_p90"] == pytest.approx(s.loc["small", "cost_usd_p90"])
    assert "P10–P90" in d._total_html.value


# ------------------------------------------------------------------------------ export and report
def test_export_writes_csv_and_json_with_the_inputs(dash, tmp_path):
    dash.controls["requests_per_day"].value = 2 * START_RPD
    dash.controls["candidates"].value = ("small",)
    csv_path, json_path = dash.export(tmp_path / "out")
    df = pd.read_csv(csv_path)
    assert list(df["candidate"].unique()) == ["small"]
    assert df["cost_usd"].tolist() == pytest.approx([quarter_cost(4, 2.0)] * 4)
    meta = json.loads(json_path.read_text())
    assert meta["plan_inputs"]["inference"]["requests_per_day"] == pytest.approx(2 * START_RPD)
    assert meta["plan_inputs"]["prices"]["price_per_hour"] == {"lab-cpu": 2.0}
    assert meta["selection"] == {"candidates": ["small"], "hardware": ["lab-cpu"]}
    assert meta["total_usd"] == pytest.approx(4 * quarter_cost(4, 2.0))
    # a second export never overwrites the first
    csv2, json2 = dash.export(tmp_path / "out")
    assert csv2 != csv_path and json2 != json_path and csv_path.exists()


def test_export_button_writes_into_export_dir(dash, tmp_path):
    dash.controls["export"].click()
    files = sorted(p.suffix for p in (tmp_path / "exports").iterdir())
    assert files == [".csv", ".json"]
    assert "exported" in dash._status_html.value


def test_static_report_and_no_pyplot_leaks(dash):
    for v in (1e6, 1e7, 1e8, 5e7):
        dash.controls["requests_per_day"].value = v
    table, figs = dash.static_report()
    assert set(figs) == {"cost_per_quarter", "quality_vs_cost", "energy_and_co2",
                         "instances_over_time"}
    assert all(isinstance(f, Figure) for f in figs.values())
    pd.testing.assert_frame_equal(table, dash.table)
    assert dash._images["cost"].value[:8] == b"\x89PNG\r\n\x1a\n"
    # the autouse fixture checks plt.get_fignums() == [] afterwards


def test_widget_tree_classes_and_display(dash):
    for name in ("requests_per_day", "monthly_growth", "slo_p95_ms", "target_utilization",
                 "hardware", "price_per_hour", "pue", "grid_gco2_per_kwh", "candidates"):
        ctl = dash.controls[name]
        assert f"effplan-{name}" in ctl._dom_classes
        if name not in ("hardware", "candidates", "price_per_hour", "slo_p95_ms"):
            assert ctl.continuous_update is False, name
    assert dash.controls["requests_per_day"].description == "Requests / day"
    assert "effplan-dashboard" in dash.widget._dom_classes
    shown = []
    import IPython.display

    orig = IPython.display.display
    IPython.display.display = lambda obj: shown.append(obj)
    try:
        dash._ipython_display_()
    finally:
        IPython.display.display = orig
    assert shown == [dash.widget]


def test_budget_table_on_a_plan_directly(dash):
    t = budget_table(dash.plan, ["large"], ["lab-cpu"])
    assert list(t["candidate"]) == ["large"]
    assert t.attrs["total_usd"] == pytest.approx(4 * quarter_cost(10, 2.0))
    assert budget_table(dash.plan, ["nope"], None).attrs["rows_in_total"] == 0


def test_catalog_argument_prices_hardware_from_a_users_catalog(tmp_path):
    """A user's catalog that lists 'lab-cpu' at $3/h prices it without Prices overrides:
    small needs 2 instances (see the starting budget) -> Q1 = 3 x 2 x 730 x 3 = 13,140 USD."""
    from effplan.catalog import load_catalog

    cat = load_catalog()
    extra = cat[cat["name"] == "AWS c7i.4xlarge"].copy()
    extra["name"], extra["aliases"], extra["price_per_hour_usd"] = "lab-cpu", "", 3.0
    d = BudgetDashboard(
        hand_measurements(),
        inference=InferenceWorkload(requests_per_day=START_RPD, target_utilization=0.5),
        samples=0, catalog=pd.concat([cat, extra], ignore_index=True),
        export_dir=tmp_path / "exports")
    assert row(d, "small")["Q1"] == pytest.approx(quarter_cost(2, 3.0)) == 13_140.0


def test_not_stable_rows_are_flagged_in_the_dashboard(tmp_path):
    df = hand_measurements()
    df["stable"] = [True, False, True, True]  # small at batch 8 was measured under contention
    df["stop_reason"] = ["ci-met", "unstable", "ci-met", "ci-met"]
    df["timing_note"] = ["", "contended: other processes used 1.90 of 2 usable cores", "", ""]
    d = BudgetDashboard(df, inference=InferenceWorkload(requests_per_day=START_RPD, target_utilization=0.5),
                        prices=Prices(price_per_hour={"lab-cpu": 2.0}, grid_gco2_per_kwh=400),
                        samples=0, export_dir=tmp_path / "exports")
    # small falls back to batch 1: 300 items/s x 0.5 = 150/s per instance -> 7 instances
    assert row(d, "small")["batch_size"] == 1
    assert row(d, "small")["Q1"] == pytest.approx(quarter_cost(7, 2.0))
    assert any("NOT stable" in w and "small on lab-cpu (inference, bs=8)" in w for w in d.warnings)
    assert "NOT stable" in d._warning_html.value


def test_candidate_named_dollar_dollar_builds_the_dashboard(tmp_path):
    # issue 10, case 9: "$$" was read as matplotlib mathtext and the dashboard raised ValueError
    df = hand_measurements()
    df["candidate"] = df["candidate"].map({"small": "$$", "large": "large"})
    d = BudgetDashboard(df, inference=InferenceWorkload(requests_per_day=START_RPD, target_utilization=0.5),
                        prices=Prices(price_per_hour={"lab-cpu": 2.0}), export_dir=tmp_path)
    assert d.error == ""
    assert row(d, "$$")["Q1"] == pytest.approx(quarter_cost(2, 2.0))
