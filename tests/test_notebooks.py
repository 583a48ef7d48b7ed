"""Every notebook runs top to bottom with papermill: default parameters and small ones.

Notebooks run with the repository as working directory (as ``make report`` does), results
written under the test's tmp folder. Defaults use quick measurement settings; the "small" run
shrinks the sweep further. Each executed notebook must keep valid widget metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from effplan import report

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NAMES = [nb.name for nb in NOTEBOOKS]

pytestmark = [pytest.mark.notebooks, pytest.mark.slow, pytest.mark.timeout(600)]

SMALL = {
    "01_measure_candidates.ipynb": {"batch_sizes": [1, 4], "training_batch_sizes": []},
    "02_inference_budget.ipynb": {"batch_sizes": [4], "months": 3, "samples": 0,
                                  "compare_hardware": ["T4"]},
    "03_training_budget.ipynb": {"training_batch_sizes": [8], "quarters": 1,
                                 "compare_hardware": [], "learning_fractions": [0.25, 0.5, 1.0],
                                 "learning_seeds": 2},
    "04_quarterly_what_if.ipynb": {"batch_sizes": [4], "months": 3, "samples": 0,
                                   "hardware": []},
    "05_llm_serving_budget.ipynb": {"concurrency": [2], "prompt_lengths": [32], "prompt_tokens": 32,
                                    "output_tokens": 16, "measured_output_tokens": 4, "months": 3,
                                    "samples": 0, "compare_hardware": ["L4"]},
    "06_budget_vs_actuals.ipynb": {"samples": 20},
}


@pytest.fixture(autouse=True)
def _kernel_env(monkeypatch):
    # The kernel must import this checkout's effplan even when it is not pip-installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")


def test_the_six_notebooks_exist():
    assert NAMES == ["01_measure_candidates.ipynb", "02_inference_budget.ipynb",
                     "03_training_budget.ipynb", "04_quarterly_what_if.ipynb",
                     "05_llm_serving_budget.ipynb", "06_budget_vs_actuals.ipynb"]


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs_and_with_typed_parameters(name):
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs committed"
    assert "widgets" not in nb.metadata
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: exactly one cell tagged 'parameters'"
    declared = report.declared_parameters(REPO / "notebooks" / name)
    for pname, info in declared.items():
        assert info["inferred_type_name"] != "None", f"{name}: parameter {pname} has no type"
        assert info["help"], f"{name}: parameter {pname} has no comment"
    assert {"results_path", "quick", "report"} <= set(declared)
    assert set(SMALL[name]) <= set(declared)
    # Thin: the narrative is markdown; code cells are short calls into effplan.
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 3
    for cell in nb.cells:
        if cell.cell_type == "code" and cell not in tagged:
            assert "def " not in cell.source and "class " not in cell.source, cell.source
            assert len(cell.source.splitlines()) <= 12, cell.source


def _run(names, tmp_path, overrides=None):
    results = tmp_path / "results" / "digits.jsonl"
    params = report.ReportParams(
        defaults={"results_path": str(results), "quick": True, "report": True},
        notebooks={n: dict((overrides or {}).get(n, {})) for n in names}, base_dir=REPO)
    executed = report.run_notebooks(names, params=params, out_dir=tmp_path / "out",
                                    notebooks_dir=REPO / "notebooks", cwd=REPO, timeout_s=300)
    return executed, results


def _outputs(nb, mime):
    return [o for c in nb.cells for o in c.get("outputs", []) if mime in o.get("data", {})]


@pytest.mark.parametrize("name", NAMES)
def test_runs_standalone_with_defaults(name, tmp_path, test_output):
    """Default parameters; no results file exists, so 02-04 measure a quick sweep themselves."""
    (executed,), results = _run([name], tmp_path)
    nb = nbformat.read(executed, as_version=4)
    nbformat.write(nb, test_output / name)
    assert report.check_widget_metadata(nb) == []
    assert len(_outputs(nb, "image/png")) >= (1 if name.startswith("03") else 3)
    assert _outputs(nb, "text/html"), "no static table"
    if name not in ("03_training_budget.ipynb", "06_budget_vs_actuals.ipynb"):  # 06 measures nothing
        assert results.is_file(), "the measurements were not saved for the next notebook"


def test_small_parameters_chain_through_one_results_file(tmp_path, test_output):
    """01 writes the results file; 02-04 load it (they do not measure again); 05 finds no
    generation rows there, so it measures the decoders and appends them; 06 reads its plan and
    bill (the shipped sample), not the results file."""
    executed, results = _run(NAMES, tmp_path, SMALL)
    from effplan.records import store

    rows = store.load(results)
    # 01 with small parameters: the baseline and its 3 quick slim variants (effplan.notebook.
    # QUICK_RECIPES: quantized, pruned, distilled) x 2 batch sizes, inference only ...
    inf = rows[rows["mode"] == "inference"]
    assert sorted(set(inf["batch_size"])) == [1, 4]
    assert sorted(set(inf["candidate"])) == ["digits-mlp"] + [
        f"digits-mlp-{r}" for r in sorted(["int8-dynamic", "prune-30", "distill"])]
    assert len(inf) == 8
    assert set(inf.loc[inf["candidate"] == "digits-mlp", "tags"]) == {"baseline"}
    # ... so 03 had no training rows and measured the 3 trainable candidates at batch 8.
    tr = rows[rows["mode"] == "training"]
    assert sorted(set(tr["candidate"])) == ["digits-mlp", "digits-mlp-slim", "digits-mlp-student"]
    assert set(tr["batch_size"]) == {8}
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        nbformat.write(nb, test_output / path.name)
        assert report.check_widget_metadata(nb) == []
    dash = nbformat.read(executed[NAMES.index("04_quarterly_what_if.ipynb")], as_version=4)
    assert "widgets" in dash.metadata  # the dashboard's state is saved with the notebook
    assert _outputs(dash, report.WIDGET_VIEW_MIME)
