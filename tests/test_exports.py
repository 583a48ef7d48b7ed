"""What the dashboard hands to finance: the CSV and JSON downloads round-trip their units, the CSV
has no float noise, the boxes read as a manager says the numbers, and the one-page summary is
offered as a download. Budgets from hand-typed rows (tests/handtyped.py)."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handtyped import hand_measurements  # noqa: E402

from effplan.planning import InferenceWorkload, Prices  # noqa: E402
from effplan.records.column_units import column_unit  # noqa: E402
from effplan.widgets import BudgetDashboard  # noqa: E402

HOURS = 730.0


@pytest.fixture(scope="module")
def dash():
    # 1,000 items/s growing 5% a month: months 0-2 at 1,000, 1,050, 1,102.5 items/s.
    # small (500/s usable): 2, 3, 3 instances -> Q1 = 8 x 730 h x $2.10 = $12,264
    # large (100/s usable): 10, 11, 12 instances -> Q1 = 33 x 730 h x $2.10 = $50,589
    # ($2.10 x 730 is 1533.0000000000002 in floating point: the CSV must not say so)
    m = hand_measurements().assign(tags=["", "", "baseline", "baseline"])
    return BudgetDashboard(m, inference=InferenceWorkload(
        requests_per_day=86_400_000.0, target_utilization=0.5, slo_p95_ms=None,
        monthly_growth=0.05, start="2027-01"),
        prices=Prices(price_per_hour={"lab-cpu": 2.1}), samples=0)


def test_csv_and_json_round_trip_their_units(dash):
    csv_text, json_text = dash.export_payload()
    back = pd.read_csv(io.StringIO(csv_text)).set_index("candidate")
    base, small = 33 * HOURS * 2.1, 8 * HOURS * 2.1
    assert back.at["large", "quarter_cost_usd"] == pytest.approx(base) == pytest.approx(50_589)
    # a fraction, named so: -0.758 is 75.8% cheaper (a spreadsheet user reads the unit)
    assert back.at["small", "vs_baseline_rel"] == pytest.approx((small - base) / base)
    assert back.at["small", "vs_baseline_usd"] == pytest.approx(small - base)
    assert "vs_baseline_pct" not in back.columns
    # no float noise: 12 significant digits at most, never 9599.000000000002-like tails
    numbers = re.findall(r"\d+\.\d+", csv_text)
    assert numbers and not [n for n in numbers if len(n.replace(".", "").lstrip("0")) > 12]
    payload = json.loads(json_text)
    units = payload["csv_units"]
    assert units["quarter_cost_usd"] == "USD" and units["vs_baseline_usd"] == "USD"
    assert units["vs_baseline_rel"].startswith("fraction")
    assert units["latency_p95_ms"] == "milliseconds" and units["energy_kwh"] == "kWh"
    assert set(units) <= set(back.reset_index().columns)
    # the headline in the JSON: the saving as a fraction, named so
    assert payload["headline"]["savings_rel"] == pytest.approx(1 - 8 / 33)
    assert payload["headline"]["quarter"] == "2027-Q1"


def test_column_unit_reads_the_name():
    assert column_unit("quarter_cost_usd_p90") == "USD"
    assert column_unit("co2_kg") == "kg CO2" and column_unit("candidate") == ""


def test_boxes_read_as_a_manager_says_them_and_plan_exactly_what_they_hold(dash):
    r = dash._readouts
    assert "+5% / month" in r["monthly_growth"].value
    assert "50% of capacity" in r["target_utilization"].value
    assert "86.4 million / day" in r["requests_per_day"].value
    # the boxes still hold the raw numbers the plan uses (no clamping, no rounding)
    assert dash.controls["monthly_growth_text"].value == pytest.approx(0.05)
    assert dash.set(monthly_growth=0.123) is True
    assert "+12.3% / month" in r["monthly_growth"].value
    assert dash._inference.monthly_growth == pytest.approx(0.123)
    assert dash.set(monthly_growth=0.05) is True


def test_the_one_page_summary_is_a_download(dash):
    links = dict(re.findall(r'effplan-download-(csv|json|html)".*?base64,([A-Za-z0-9+/=]+)"',
                            dash._download_html.value))
    page = base64.b64decode(links["html"]).decode("utf-8")
    assert "<script" not in page and "effplan-summary-answer" in page
    assert dash.headline.sentence().split(":")[0] in page          # "Run small on lab-cpu"
    assert "2027-Q1 = Jan–Mar 2027" in page                          # the assumption line
