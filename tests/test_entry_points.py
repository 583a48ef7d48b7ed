"""One set of defaults, for real: for the same measurements and the same inputs, the CLI, the
notebooks (their own parameters cell and workload cell, executed) and the dashboard plan the same
workload -- utilisation, growth, peak, horizon, target and start month included."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handtyped import hand_measurements  # noqa: E402

import effplan  # noqa: E402
from effplan import cli, defaults  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _notebook_workload(name: str, measurements, **overrides):
    """Execute the notebook's parameters cell (with ``overrides`` injected after it, as papermill
    does) and the one code cell that builds ``workload``; return that workload."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    ns: dict = {"effplan": effplan}
    exec(params[0].source, ns)  # noqa: S102 - our own notebook
    ns.update(overrides, measurements=measurements)
    wl = [c for c in cells if c.source.lstrip().startswith(("workload, prices =", "workload ="))]
    assert len(wl) == 1, f"{name}: one cell builds the workload"
    exec(wl[0].source, ns)  # noqa: S102
    return ns["workload"]


@pytest.fixture(scope="module")
def frame():
    # fast enough for the 50 ms target at any traffic (the demo traffic is then found at once)
    return hand_measurements().assign(tags=["", "", "baseline", "baseline"],
                                      latency_p50_ms=[3.0, 8.0, 6.0, 15.0],
                                      latency_p95_ms=[4.0, 10.0, 8.0, 20.0])


def test_every_entry_point_plans_the_same_inference_workload(frame):
    cli_wl = cli.inference_workload(cli.build_parser().parse_args(["plan", "results/"]), frame)
    dash = effplan.widgets.BudgetDashboard(frame, samples=0)
    nb02 = _notebook_workload("02_inference_budget.ipynb", frame)
    nb04 = _notebook_workload("04_quarterly_what_if.ipynb", frame)
    want = cli_wl.to_dict()
    for who, wl in (("dashboard", dash._inference0), ("notebook 02", nb02), ("notebook 04", nb04)):
        assert wl.to_dict() == want, who
    # and those are the shared defaults, starting next month
    assert want["target_utilization"] == defaults.TARGET_UTILIZATION == 0.6
    assert want["monthly_growth"] == defaults.MONTHLY_GROWTH
    assert want["peak_to_average"] == defaults.PEAK_TO_AVERAGE
    assert want["months"] == defaults.MONTHS and want["slo_p95_ms"] == defaults.SLO_P95_MS
    assert want["start"] == defaults.start_month()
    assert want["requests_per_day"] == defaults.demo_requests_per_day(frame)


def test_every_entry_point_plans_the_same_generation_workload():
    rows = effplan.import_benchmark(effplan.importers.sample_path("vllm"), "vllm", candidate="llama",
                                    hardware="H100 SXM")
    dash = effplan.widgets.BudgetDashboard(rows, samples=0)
    d = dash._inference0.to_dict()   # the dashboard's own start: defaults.generation_workload
    same = dict(requests_per_day=d["requests_per_day"], prompt_tokens=d["prompt_tokens"],
                output_tokens=d["output_tokens"], slo_ttft_p95_ms=0.0, slo_tpot_p95_ms=0.0)
    nb05 = _notebook_workload("05_llm_serving_budget.ipynb", rows, **same)
    args = cli.build_parser().parse_args([
        "plan", "results/", "--requests-per-day", str(d["requests_per_day"]),
        "--prompt-tokens", str(d["prompt_tokens"]), "--output-tokens", str(d["output_tokens"])])
    cli_wl = cli.generation_workload(args)
    assert nb05.to_dict() == d
    assert cli_wl.to_dict() == d
    # notebook 05 used to plan at the class default 0.7: it is the shared 0.6 now
    assert d["target_utilization"] == defaults.TARGET_UTILIZATION
    assert _notebook_workload("05_llm_serving_budget.ipynb", rows).target_utilization == 0.6
