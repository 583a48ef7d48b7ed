"""The helpers the notebooks call (effplan.notebook), tested without a kernel."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from effplan import notebook
from effplan.records import store
from effplan.refdata.catalog import this_machine_row


def _frame(**over):
    base = {
        "candidate": ["a", "a", "b"], "hardware": ["L4", "L4", "L4"],
        "mode": ["inference"] * 3, "batch_size": [1, 8, 1],
        "latency_p95_ms": [2.0, 5.0, 1.0], "throughput_items_per_s": [500.0, 1600.0, 900.0],
        "energy_per_item_j": [0.1, 0.05, 0.08], "idle_power_w": [20.0] * 3,
        "energy_source": ["nvml-counter", "nvml-counter", "estimated-tdp"],
        "provenance": ["measured"] * 3, "flops_coverage": [1.0, 1.0, 0.5],
        "status": ["ok"] * 3,
    }
    base.update(over)
    return pd.DataFrame(base)


def test_measured_vs_estimated_labels_every_source():
    out = notebook.measured_vs_estimated(_frame()).set_index("candidate")
    assert out.loc["a", "energy"] == "measured (nvml-counter)"
    assert out.loc["b", "energy"].startswith("ESTIMATED")
    assert out.loc["a", "flops"] == "counted"
    assert out.loc["b", "flops"] == "lower bound (50% of operator calls counted)"
    assert out.loc["a", "points"] == 2 and out.loc["a", "failed"] == 0


def test_prices_for_prices_this_machine_and_keeps_given_prices():
    row = this_machine_row()
    frame = _frame(hardware=[row["name"]] * 3)
    prices = notebook.prices_for(frame)
    assert prices.price_per_hour[row["name"]] == pytest.approx(row["price_per_hour_usd"])
    given = notebook.prices_for(frame, {row["name"]: 1.25}, pue=1.3)
    assert given.price_per_hour[row["name"]] == 1.25 and given.pue == 1.3
    # catalog hardware keeps its catalog price: nothing to add
    assert notebook.prices_for(_frame()).price_per_hour in (None, {})


def test_notebook_measurements_loads_an_existing_results_file(tmp_path):
    path = tmp_path / "r.jsonl"
    store.save_frame(_frame(), path)
    m = notebook.notebook_measurements(path)
    assert sorted(m.to_frame()["candidate"]) == ["a", "a", "b"]


def test_show_renders_figures_as_png_and_frames_as_tables(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    notebook.show({"a figure": fig, "a table": pd.DataFrame({"x": [1]})})
    kinds = [type(o).__name__ for o in shown]
    assert kinds == ["HTML", "Image", "HTML", "HTML"]
    assert shown[1].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table" in shown[3].data


def test_quick_settings_and_trainable():
    assert notebook.measure_settings(False) == {}
    assert notebook.measure_settings(True)["time_budget_s"] > 0

    class C:
        def __init__(self, q):
            self.is_quantized = q

    a, b = C(False), C(True)
    assert notebook.trainable([a, b]) == [a]


def test_scenarios_side_by_side_pivots_in_given_order_and_keeps_infeasible_rows():
    import effplan

    meas = _frame()
    # end-to-end p95 (fill + queue + service): "b" at batch 1 needs 2.77 ms, "a" at least 6.6 ms
    wl = effplan.InferenceWorkload(86_400_000, slo_p95_ms=3.0, target_utilization=0.5, months=1)
    prices = effplan.Prices(price_per_hour={"L4": 1.0}, grid_gco2_per_kwh=100)
    side = effplan.compare_scenarios(
        {"tight": (wl, prices), "loose": (effplan.InferenceWorkload(86_400_000, target_utilization=0.5,
                                                                    months=1), prices)}, meas)
    tables = notebook.scenarios_side_by_side(side)
    cost = tables["cost over the horizon (USD)"].set_index(["candidate", "hardware"])
    assert list(cost.columns) == ["price from", "tight", "loose"]
    assert cost["price from"].str.len().min() > 0  # where each price came from, beside it
    # 1000 items/s. "a" misses 3 ms end to end at every batch (best 6.6 ms): empty cell, row kept.
    # "b" at batch 1 (1 ms): capacity 450/s -> 3 instances x 730 h x $1 = 2190.
    assert pd.isna(cost.loc[("a", "L4"), "tight"])
    assert cost.loc[("b", "L4"), "tight"] == pytest.approx(2190)
    # no target: "a" uses batch 8 (1600/s -> 800/s usable) -> 2 instances -> 1460
    assert cost.loc[("a", "L4"), "loose"] == pytest.approx(1460)
    assert "CO2 over the horizon (kg)" in tables


def test_report_mode_only_without_a_live_front_end(monkeypatch):
    for k in [k for k in __import__("os").environ if k.startswith("VOILA_") or k == "JPY_SESSION_NAME"]:
        monkeypatch.delenv(k)
    assert notebook.report_mode(None) is True          # papermill / nbconvert
    assert notebook.report_mode(False) is False        # an explicit parameter wins
    monkeypatch.setenv("JPY_SESSION_NAME", "/x/04.ipynb")  # JupyterLab kernel
    assert notebook.report_mode(None) is False
    assert notebook.report_mode(True) is True
    monkeypatch.delenv("JPY_SESSION_NAME")
    monkeypatch.setenv("VOILA_KERNEL_ID", "abc")       # Voila kernel
    assert notebook.report_mode(None) is False


def test_training_views_leave_out_int8_models_with_the_reason():
    import effplan

    rows = _frame(candidate=["fp", "fp", "q8"], mode=["training"] * 3, dtype=["float32"] * 2 + ["qint8"],
                  flops_per_item=[1e6] * 3, status=["ok", "ok", "ok"])
    assert set(notebook.untrainable(rows)) == {"q8"}
    assert "quantized" in notebook.untrainable(rows)["q8"]
    p = effplan.plan(rows, training=effplan.TrainingWorkload(runs_per_quarter=1, items_per_epoch=1e6),
                     prices=effplan.Prices(price_per_hour={"L4": 1.0}))
    assert "q8" in set(p.training["candidate"])  # the planner alone would rank it
    kept, left_out = notebook.training_rows(p, rows)
    assert set(kept["candidate"]) == {"fp"} and list(left_out) == ["q8"]
    fig = notebook.training_figure(p, rows)
    title = fig._suptitle.get_text()
    assert "left out, cannot be trained: q8" in title
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["fp @ L4"]


def test_table_is_formatted_and_long_tables_collapse():
    df = pd.DataFrame({"candidate": ["a", "b"], "cost_usd": [743.695971, 11720270.0],
                       "energy_kwh": [12.3456, 4567.0], "instances_max": [1.0, 3.0]})
    html = notebook.table(df).data
    assert "$744" in html and "$11,700,000" in html
    assert "12.3 kWh" in html and "4.57 MWh" in html
    assert ">1<" in html and "1.0" not in html and "743.69" not in html
    long = pd.DataFrame({"month": range(48), "cost_usd": 1.0})
    assert "<details" in notebook.table(long).data and "48 rows" in notebook.table(long).data
    assert "<details" not in html


def test_setup_turns_warnings_into_one_short_note(monkeypatch):
    import warnings

    from effplan.errors import EffplanWarning

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    old = warnings.showwarning
    try:
        notebook.setup()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = notebook._note_warning
            for _ in range(3):
                warnings.warn("energy is estimated from rated power", EffplanWarning)
    finally:
        warnings.showwarning = old
    assert len(shown) == 1
    html = shown[0].data
    assert "energy is estimated from rated power" in html
    assert ".py" not in html and "test_notebook" not in html and "lineno" not in html


@pytest.mark.parametrize("name", ["02_inference_budget.ipynb", "04_quarterly_what_if.ipynb"])
def test_notebook_parameters_start_from_effplan_defaults(name):
    """The notebooks show their defaults in the parameters cell (papermill needs literals);
    they must be the ones of effplan.defaults, which the CLI and the dashboard read."""
    import ast
    from pathlib import Path

    from effplan import defaults, report

    declared = report.declared_parameters(Path(__file__).resolve().parents[1] / "notebooks" / name)
    expected = {"monthly_growth": defaults.MONTHLY_GROWTH,
                "peak_to_average": defaults.PEAK_TO_AVERAGE,
                "target_utilization": defaults.TARGET_UTILIZATION, "months": defaults.MONTHS,
                "slo_p95_ms": defaults.SLO_P95_MS, "pue": defaults.PUE,
                "samples": defaults.SAMPLES}
    for key, value in expected.items():
        if key in declared:
            assert ast.literal_eval(declared[key]["default"]) == value, key
    assert ast.literal_eval(declared["requests_per_day"]["default"]) == 0.0  # demo traffic
    assert ast.literal_eval(declared["results_path"]["default"]) == ""        # shared folder


def test_workload_and_prices_use_defaults_and_demo_traffic():
    from effplan import defaults

    m = _frame(tags=["baseline", "baseline", ""])
    wl, pr = notebook.workload_and_prices(m, slo_p95_ms=10.0)
    assert wl.requests_per_day == defaults.demo_requests_per_day(m, slo_p95_ms=10.0)
    # at that traffic the baseline "a" needs at least 4 instances in the first month
    import effplan

    p = effplan.plan(m, inference=effplan.InferenceWorkload(
        requests_per_day=wl.requests_per_day, peak_to_average=2.0, target_utilization=0.6,
        slo_p95_ms=10.0, months=1), prices=effplan.Prices(price_per_hour={"L4": 1.0}))
    month0 = p.monthly.set_index("candidate").loc["a"]
    assert bool(month0["feasible"]) and month0["instances"] >= defaults.DEMO_BASELINE_INSTANCES
    assert (wl.peak_to_average, wl.target_utilization, pr.pue) == (
        defaults.PEAK_TO_AVERAGE, defaults.TARGET_UTILIZATION, defaults.PUE)
    wl, _ = notebook.workload_and_prices(m, requests_per_day=5e5, slo_p95_ms=0.0)
    assert wl.requests_per_day == 5e5 and wl.slo_p95_ms is None


def test_results_folder_is_shared(tmp_path, monkeypatch):
    from effplan import defaults

    (tmp_path / "proj" / "notebooks").mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").write_text("[project]\nname='x'\n")
    monkeypatch.delenv(defaults.RESULTS_DIR_ENV, raising=False)
    # from the project root (the CLI) and from notebooks/ (JupyterLab): the same folder
    assert defaults.results_dir(tmp_path / "proj") == tmp_path / "proj" / "results"
    assert defaults.results_dir(tmp_path / "proj" / "notebooks") == tmp_path / "proj" / "results"
    monkeypatch.setenv(defaults.RESULTS_DIR_ENV, str(tmp_path / "elsewhere"))
    assert defaults.results_file() == tmp_path / "elsewhere" / "measurements.jsonl"


def test_machines_keeps_two_hosts_apart_and_plan_uses_their_median():
    import effplan
    from effplan.errors import PlanWarning

    base = dict(candidate="m", hardware="lab-cpu", mode="inference", batch_size=8, latency_p95_ms=5.0,
                energy_per_item_j=0.1, idle_power_w=1.0, provenance="measured",
                energy_source="estimated-tdp", status="ok", stable=True)
    df = pd.DataFrame([dict(base, hardware_id="host-a", throughput_items_per_s=100.0),
                       dict(base, hardware_id="host-b", throughput_items_per_s=300.0),
                       dict(base, hardware_id="host-c", hardware="other-cpu", throughput_items_per_s=50.0)])
    m = notebook.machines(df)
    assert m[["hardware", "machine", "points", "plan_uses"]].values.tolist() == [
        ["lab-cpu", "host-a", 1, "median of 2 machines"],
        ["lab-cpu", "host-b", 1, "median of 2 machines"],
        ["other-cpu", "host-c", 1, "this machine"]]
    with pytest.warns(PlanWarning, match="several hosts"):
        p = effplan.plan(df[df["hardware"] == "lab-cpu"],
                         inference=effplan.InferenceWorkload(requests_per_day=1000, slo_p95_ms=None),
                         prices=effplan.Prices(price_per_hour={"lab-cpu": 1.0}))
    # both hosts reach the plan: the median of 100 and 300 items/s
    assert p.summary["throughput_items_per_s"].tolist() == [200.0]


def test_summary_view_shows_how_far_a_busy_figure_could_be_off():
    import pandas as pd

    from effplan.formatting import format_frame
    from effplan.notebook import summary_view

    s = pd.DataFrame({"candidate": ["a", "b"], "hardware": ["x", "x"], "cost_usd": [10.0, 20.0],
                      "provenance": ["measured", "measured"],
                      "timing_spread_rel": [0.1203, float("nan")]})
    view = summary_view(s)
    assert list(view.columns) == ["candidate", "hardware", "cost_usd", "provenance", "timing_spread_rel"]
    assert format_frame(view)["timing_spread_rel"].tolist() == ["±13%", "–"]   # as the statement rounds
    quiet = summary_view(s.assign(timing_spread_rel=float("nan")))
    assert "timing_spread_rel" not in quiet.columns      # nothing flagged: the table is unchanged
