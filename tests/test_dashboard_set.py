"""The dashboard plans exactly what it shows (issue 18, item 5).

A slider's range is presentation only: a value outside it is either valid for the planner --
then the slider widens and the plan is ``effplan.plan`` with exactly that value -- or refused
with a message naming the field and the allowed range, shown on the page, with nothing changed.
Nothing is clamped: not through ``set()``, not typed in a box, not at construction.

Expected figures come from a direct :func:`effplan.plan` call built with :mod:`effplan.defaults`
(not from the dashboard's code), and by hand with the planner's documented formula for the
hand-typed measurements (``tests/handtyped.py``; no growth, peak = average, utilisation 0.5):
``instances = max(1, ceil(requests/s / (throughput at batch 8 x 0.5)))`` -- small 1000 items/s,
large 200 -- and ``cost = instances x 730 h x $2`` per month.
"""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

import effplan
from effplan import defaults
from effplan.widgets import BudgetDashboard
from handtyped import hand_measurements

HOURS, PRICE = 730.0, 2.0
START_RPD = 86_400_000.0  # 1000 requests/s: small needs 2 instances, large 10
#: what the dashboard starts from, and what every expected plan is built from
START = dict(requests_per_day=START_RPD, monthly_growth=0.0, peak_to_average=1.0,
             slo_p95_ms=None, target_utilization=0.5)
PRICES = dict(price_per_hour={"lab-cpu": PRICE}, grid_gco2_per_kwh=400.0)
PRICE_FIELDS = {"pue", "grid_gco2_per_kwh", "electricity_usd_per_kwh"}


def make_dash(tmp_path, **workload) -> BudgetDashboard:
    return BudgetDashboard(hand_measurements(), inference=defaults.workload(**{**START, **workload}),
                           prices=defaults.prices(**PRICES), samples=0, baseline="large",
                           export_dir=tmp_path / "exports")


@pytest.fixture
def dash(tmp_path) -> BudgetDashboard:
    return make_dash(tmp_path)


def direct_plan(**values):
    """effplan.plan with the dashboard's starting inputs and ``values`` changed."""
    wl = {**START, **{k: v for k, v in values.items() if k not in PRICE_FIELDS}}
    pr = {**PRICES, **{k: v for k, v in values.items() if k in PRICE_FIELDS}}
    return effplan.plan(hand_measurements(), inference=defaults.workload(**wl),
                        prices=defaults.prices(**pr), samples=0)


def figures(plan) -> pd.DataFrame:
    """The quarterly cost, energy and CO2 of every option, in a fixed order."""
    q = plan.quarterly.set_index(["candidate", "hardware", "quarter"]).sort_index()
    return q[["instances", "cost_usd", "energy_kwh", "co2_kg"]].astype(float)


def page_text(dash: BudgetDashboard) -> str:
    """Every piece of HTML the page shows (the widget tree, as Voila renders it)."""
    out: list[str] = []

    def walk(w) -> None:
        if type(w).__name__ == "HTML":
            out.append(str(w.value))
        for child in getattr(w, "children", ()):
            walk(child)

    walk(dash.widget)
    return "\n".join(out)


def shown_cost(dash: BudgetDashboard) -> float:
    m = re.search(r'class="effplan-headline"[^>]*data-quarter-cost-usd="([^"]+)"', page_text(dash))
    assert m, page_text(dash)[:2000]
    return float(m.group(1))


def shown_values(dash: BudgetDashboard) -> dict:
    return {n: c.value for n, c in dash.controls.items() if n != "save"}


# ------------------------------------------------------------------------------ widened
# every value lies outside its slider's starting range and is valid for the planner
# (ranges at the start: traffic 10^5..10^10 per day, growth -0.2..0.5, peak 1..5,
# months 3..36, PUE 1..2.5, grid 0..1000 gCO2/kWh)
OUTSIDE = [
    ("requests_per_day", 1e15), ("requests_per_day", 5.0), ("monthly_growth", 0.8),
    ("monthly_growth", -0.5), ("peak_to_average", 8.0), ("months", 60), ("months", 1),
    ("pue", 3.0), ("grid_gco2_per_kwh", 1500.0),
]


@pytest.mark.parametrize("field, value", OUTSIDE)
def test_set_outside_a_slider_range_plans_exactly_that_value(dash, field, value):
    slider = dash.controls[field]
    assert dash.set(**{field: value}) is True and dash.error == ""
    exact = direct_plan(**{field: value})
    pd.testing.assert_frame_equal(figures(dash.plan), figures(exact))
    section = "prices" if field in PRICE_FIELDS else "inference"
    assert dash.plan.inputs[section][field] == value
    # what the page shows: the box holds the value, the slider was widened to it (not
    # clamped), and the headline is the direct plan's cheapest first quarter
    assert dash.controls[f"{field}_text"].value == value
    if field == "requests_per_day":  # a log slider: its range is in decades
        assert slider.value == pytest.approx(value) and 10 ** slider.min <= value <= 10 ** slider.max
    else:
        assert slider.value == value and slider.min <= value <= slider.max
    q1 = exact.quarterly[exact.quarterly["quarter"] == 1]
    assert shown_cost(dash) == pytest.approx(float(q1["cost_usd"].min()), abs=0.005)


def test_widened_values_hand_computed(dash):
    small_q1 = lambda d: float(d.table.set_index("candidate").at["small", "Q1"])  # noqa: E731
    # 1e15 requests/day = 11,574,074,074 /s over 500 /s per instance -> 23,148,149 instances
    assert dash.set(requests_per_day=1e15)
    assert small_q1(dash) == pytest.approx(3 * 23_148_149 * HOURS * PRICE)
    # 60 months = 20 quarters, each small 2 instances x 3 months (no growth)
    assert dash.set(requests_per_day=START_RPD, months=60)
    quarters = [c for c in dash.table.columns if re.fullmatch(r"Q\d+", c)]
    assert quarters == [f"Q{i}" for i in range(1, 21)]
    assert dash.headline.horizon_cost_usd == pytest.approx(20 * 3 * 2 * HOURS * PRICE)
    # a 1-month horizon: the first "quarter" is one month
    assert dash.set(months=1)
    assert small_q1(dash) == pytest.approx(2 * HOURS * PRICE)  # 2,920
    # PUE 3 triples the energy of PUE 1 (cost unchanged)
    assert dash.set(pue=1.0)
    e1 = float(dash.table.set_index("candidate").at["small", "energy_kwh"])
    assert dash.set(pue=3.0)
    assert float(dash.table.set_index("candidate").at["small", "energy_kwh"]) == pytest.approx(3 * e1)
    assert small_q1(dash) == pytest.approx(2 * HOURS * PRICE)


def test_zero_traffic_is_planned_as_zero(dash):
    # 0 requests/day is valid (min_replicas = 1 keeps one instance of each option); the log
    # slider cannot show it, the box holds it and the plan uses it
    assert dash.set(requests_per_day=0)
    assert dash.plan.inputs["inference"]["requests_per_day"] == 0
    assert dash.controls["requests_per_day_text"].value == 0
    assert list(dash.table["Q1"]) == [pytest.approx(3 * 1 * HOURS * PRICE)] * 2  # 4,380 each
    dash.controls["monthly_growth"].value = 0.1  # an unrelated change keeps the 0
    assert dash.plan.inputs["inference"]["requests_per_day"] == 0


# ------------------------------------------------------------------------------ refused
REFUSED = [
    # (values, field named, allowed range as the message says it)
    (dict(months=700), "months", "must be >= 1 and <= 600, got 700"),
    (dict(months=0), "months", "must be >= 1 and <= 600, got 0"),
    (dict(months=2.5), "months", "must be a whole number"),
    (dict(pue=11), "pue", "must be >= 1 and <= 10, got 11"),
    (dict(pue=0.5), "pue", "must be >= 1 and <= 10, got 0.5"),
    (dict(monthly_growth=-1.5), "monthly_growth", "must be > -1, got -1.5"),
    (dict(peak_to_average=0.5), "peak_to_average", "must be >= 1, got 0.5"),
    (dict(target_utilization=1.5), "target_utilization", "must be > 0 and <= 1, got 1.5"),
    (dict(target_utilization=0), "target_utilization", "must be > 0 and <= 1, got 0"),
    (dict(requests_per_day=-1), "requests_per_day", "must be >= 0, got -1"),
    (dict(requests_per_day=float("nan")), "requests_per_day", "must be a finite number"),
    (dict(grid_gco2_per_kwh=-5), "grid_gco2_per_kwh", "must be >= 0, got -5"),
    (dict(electricity_usd_per_kwh=-1), "electricity_usd_per_kwh", "must be >= 0, got -1"),
    (dict(months="twelve"), "months", "expected a number, got 'twelve'"),
    (dict(slo_p95_ms=-3), "slo_p95_ms", "must be >= 0 (0 = no latency target), got -3"),
    (dict(min_quality=-1), "min_quality", "must be >= 0 (0 = no quality bar), got -1"),
    (dict(hardware="nope"), "hardware", "'nope' is not an option here; choose one of: lab-cpu"),
    (dict(candidates=["nope"]), "candidates",
     "'nope' is not a candidate of this plan; choose from: small, large"),
    (dict(candidates="nope"), "candidates", "choose from: small, large"),
    (dict(portfolio="yes"), "portfolio", "expected True or False, got 'yes'"),
    # all or nothing: the valid months=6 is not applied either
    (dict(months=6, pue=11), "pue", "must be >= 1 and <= 10, got 11"),
    # the planner refuses it (a price for hardware not in the plan): the box goes back too
    (dict(price_per_hour="lab-cpu=1; T4=0.4"), "price_per_hour", "'T4'"),
]


@pytest.mark.parametrize("values, field, says", REFUSED,
                         ids=[f"{r[1]}-{i}" for i, r in enumerate(REFUSED)])
def test_refused_values_are_named_shown_and_change_nothing(dash, values, field, says):
    assert dash.set(requests_per_day=2 * START_RPD)  # a plan that is not the starting one
    plan, table, cost = dash.plan, dash.table.copy(), shown_cost(dash)
    controls = shown_values(dash)
    assert dash.set(**values) is False
    assert dash.error.startswith(f"{field}: ") and says in dash.error
    page = page_text(dash)
    assert "Input not applied" in page and f"{field}: " in page
    assert says.replace("'", "&#x27;").replace(">", "&gt;").replace("<", "&lt;") in page
    # nothing changed: the plan, the table, the headline and every control
    assert dash.plan is plan
    pd.testing.assert_frame_equal(dash.table, table)
    assert shown_cost(dash) == cost == pytest.approx(3 * 4 * HOURS * PRICE)  # small: 4 inst.
    assert shown_values(dash) == controls
    # a valid input afterwards is applied and clears the message
    assert dash.set(months=6) and dash.error == "" and "Input not applied" not in page_text(dash)


def test_refused_hardware_lists_every_option(tmp_path):
    d = BudgetDashboard(hand_measurements(), inference=defaults.workload(**START),
                        prices=defaults.prices(**PRICES), hardware=["T4"], samples=0,
                        export_dir=tmp_path)
    assert d.set(hardware="H100") is False
    assert d.error == ("hardware: 'H100' is not an option here; choose one of: lab-cpu, T4, "
                       "(all hardware)")
    assert d.set(hardware="T4") and d.error == ""


def test_unknown_control_name_is_a_mistake_in_code(dash):
    with pytest.raises(effplan.ValidationError, match="no such control"):
        dash.set(monthz=6)


# ------------------------------------------------------------------------------ the page
def test_typed_box_outside_the_slider_range_widens_it_or_is_refused(dash):
    """A user typing in the box beside a slider (the observer path, as the page drives it)."""
    box, slider = dash.controls["months_text"], dash.controls["months"]
    box.value = 60  # valid: planned, the slider widens to hold it
    assert dash.error == "" and dash.plan.inputs["inference"]["months"] == 60
    assert slider.value == 60 and slider.max >= 60
    pd.testing.assert_frame_equal(figures(dash.plan), figures(direct_plan(months=60)))
    plan = dash.plan
    box.value = 700  # refused, named, shown; the slider stays where the plan is
    assert dash.error == "months: must be >= 1 and <= 600, got 700"
    assert "Input not applied" in page_text(dash) and dash.plan is plan and slider.value == 60
    box.value = 48
    assert dash.error == "" and dash.plan.inputs["inference"]["months"] == 48
    dash.controls["pue_text"].value = 3.0
    assert dash.plan.inputs["prices"]["pue"] == 3.0 and dash.controls["pue"].value == 3.0
    dash.controls["requests_per_day_text"].value = 1e15
    assert dash.plan.inputs["inference"]["requests_per_day"] == 1e15
    assert 10 ** dash.controls["requests_per_day"].max >= 1e15


def test_a_slider_set_beyond_its_range_is_not_clamped(dash):
    dash.controls["months"].value = 60  # code moving a slider: widened, not clamped to 36
    assert dash.controls["months"].max == 60 and dash.controls["months_text"].value == 60
    assert dash.plan.inputs["inference"]["months"] == 60
    dash.controls["grid_gco2_per_kwh"].value = 1500.0
    assert dash.plan.inputs["prices"]["grid_gco2_per_kwh"] == 1500.0
    pd.testing.assert_frame_equal(figures(dash.plan),
                                  figures(direct_plan(months=60, grid_gco2_per_kwh=1500.0)))


def test_dragging_a_slider_shows_the_exact_value_planned(dash):
    dash.controls["monthly_growth"].value = 0.12  # a drag within the range
    assert dash.controls["monthly_growth_text"].value == 0.12
    assert dash.plan.inputs["inference"]["monthly_growth"] == 0.12


# ------------------------------------------------------------------------------ construction
def test_starting_values_outside_default_ranges_survive_unrelated_changes(tmp_path):
    d = make_dash(tmp_path, months=1, peak_to_average=8.0)
    d2 = BudgetDashboard(hand_measurements(), inference=defaults.workload(**{**START, "months": 1}),
                         prices=defaults.prices(**{**PRICES, "pue": 3.0}), samples=0,
                         export_dir=tmp_path)
    for dash, extra in ((d, dict(months=1, peak_to_average=8.0)), (d2, dict(months=1, pue=3.0))):
        assert dash.controls["months"].value == 1 and dash.controls["months_text"].value == 1
        assert dash.set(monthly_growth=0.1)  # an unrelated change
        assert dash.plan.inputs["inference"]["months"] == 1
        pd.testing.assert_frame_equal(figures(dash.plan),
                                      figures(direct_plan(monthly_growth=0.1, **extra)))
        dash.controls["target_utilization"].value = 0.25  # and one through the page's path
        assert dash.plan.inputs["inference"]["months"] == 1
    assert d.plan.inputs["inference"]["peak_to_average"] == 8.0
    assert d2.plan.inputs["prices"]["pue"] == 3.0
    # by hand: months 0 carries 1000 req/s x 8 peak = 8000/s over 1000 x 0.25 -> 32 instances
    assert float(d.table.set_index("candidate").at["small", "Q1"]) == pytest.approx(
        32 * HOURS * PRICE)


def test_generation_token_lengths_widen_or_are_refused(tmp_path):
    from test_widgets import GEN_PRICES, _gen_rows, _gen_workload

    g = BudgetDashboard(_gen_rows(), generation=_gen_workload(), prices=GEN_PRICES, samples=0,
                        export_dir=tmp_path)
    assert g.controls["output_tokens"].max == 2048
    assert g.set(output_tokens=5000)  # outside the slider, valid: planned exactly
    assert g.controls["output_tokens"].max >= 5000
    exact = effplan.plan(_gen_rows(), generation=_gen_workload(output_tokens=5000),
                         prices=GEN_PRICES, samples=0)
    pd.testing.assert_frame_equal(figures(g.plan), figures(exact))
    assert g.set(output_tokens=0) is False
    assert "output_tokens: must be >= 1, got 0" in g.error
    assert g.plan.inputs["generation"]["output_tokens"] == 5000


def test_price_given_as_a_number_is_exact(dash):
    assert dash.set(price_per_hour=1234.567)
    assert dash.controls["price_per_hour"].value == "1234.567"
    assert dash.plan.inputs["prices"]["price_per_hour"] == {"lab-cpu": 1234.567}
    small = float(dash.table.set_index("candidate").at["small", "Q1"])
    assert small == pytest.approx(3 * 2 * HOURS * 1234.567)
    assert not math.isnan(small)
