"""Package-level checks: the public API, import cost, shipped data, the README's example."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import effplan

REPO = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves():
    for name in effplan.__all__:
        assert getattr(effplan, name) is not None, name


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        effplan.nope  # noqa: B018


def test_planning_does_not_import_torch():
    """The what-if half must stay light: importing plan/catalog/schema must not pull torch."""
    code = (
        "import sys, effplan, effplan.planning, effplan.catalog, effplan.schema, effplan.store\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'pynvml' not in sys.modules, 'pynvml imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.slow
def test_wheel_ships_data_files(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True,
    )
    wheel = next(tmp_path.glob("effplan-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(p.name for p in (REPO / "effplan" / "data").glob("*.csv"))
    assert shipped, "no data files in effplan/data"
    for name in shipped:
        assert f"effplan/data/{name}" in names
    samples = sorted(p.name for p in (REPO / "effplan" / "data" / "engine_samples").iterdir())
    assert samples, "no engine benchmark samples in effplan/data/engine_samples"
    for name in samples:
        assert f"effplan/data/engine_samples/{name}" in names
    # the Voila template of `make app` (no CDN request)
    for name in ("conf.json", "index.html.j2"):
        assert f"effplan/jupyter/voila/templates/effplan/{name}" in names


@pytest.mark.slow
def test_readme_python_example_runs():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)  # noqa: S102 - our own README
    q = ns["p"].quarterly
    assert len(q) > 0
    assert {"cost_usd", "energy_kwh", "co2_kg"} <= set(q.columns)
    # on a busy CI runner some rows come out not stable: the example still gives an answer
    # (flagged when the choice or the baseline rests on such a row), never an error
    answer = ns["answer"]
    assert answer.found and answer.quarter_cost_usd > 0 and "$" in answer.sentence()
    assert ("busy machine" in answer.sentence()) == bool(answer.stability_note)


@pytest.mark.slow
def test_readme_plan_your_own_model_runs(tmp_path, monkeypatch, capsys):
    """The README's "Plan your own model": a CNN defined in code and an HF model from a config with
    a dict input, the baseline tag, samples=200 and this machine priced -- run as written."""
    pytest.importorskip("transformers")
    text = (REPO / "README.md").read_text()
    section = re.split(r"\n#{2,3} ", text.split("### Plan your own model", 1)[1], maxsplit=1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - our own README
    h = ns["mine"]
    assert h.found and h.baseline == "my-cnn" and h.quarter_cost_usd > 0
    assert {"my-cnn", "tiny-bert"} <= set(ns["p"].summary["candidate"])
    assert ns["p"].inputs["samples"] == 200 and h.quarter_cost_usd_p10 <= h.quarter_cost_usd_p90
    # this machine is priced from the catalog, labelled as the estimate it is
    assert "catalog estimate" in h.price_source or h.price_source.startswith("catalog:")
    out = capsys.readouterr().out
    assert h.sentence() in out and "Assumes 1 million requests/day" in out


# ------------------------------------------------------------------ size limits (issue 19)
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 150
MAX_PARAMETERS = 15  # named parameters, self / cls / *args / **kwargs not counted

#: What is still over a limit, each with why. The list only shrinks: an entry that no longer
#: exceeds its limit fails the test below, so it is removed when the code is split.
SIZE_ALLOWED: dict[tuple[str, str], str] = {
    ("effplan/ui/dashboard.py", "<module>"): "BudgetDashboard not yet split into controls / markup / export",
    ("effplan/views/figures.py", "<module>"): "figures not yet split by subject (cost, quality, measurement)",
    ("effplan/models/slimming.py", "<module>"): "recipes and the variant builder not yet split",
    ("effplan/planning/learning.py", "<module>"): "scaling-law and learning-curve fits not yet split",
    ("effplan/planning/generation.py", "<module>"): "generation planning engine not yet split from its workload",
    ("effplan/compare.py", "compare"): "the one-call comparison: its steps not yet split out",
    ("effplan/planning/actuals.py", "actuals"): "budget-vs-actuals join, not yet split",
    ("effplan/planning/actuals.py", "_reforecast"): "re-forecast from actuals, not yet split",
    ("effplan/planning/generation.py", "plan_generation"): "generation plan assembly, not yet split",
    ("effplan/planning/planner.py", "plan"): "plan(): argument checks and assembly, not yet split",
    ("effplan/planning/projection.py", "_project"): "roofline projection, not yet split",
    ("effplan/compare.py", "compare#params"): "public signature (issue 26); a config object would change it",
    ("effplan/learning_curves.py", "learning_curve#params"): "public signature; a config object would change it",
    ("effplan/ui/dashboard.py", "__init__#params"): "BudgetDashboard's public constructor",
}


def _over_limits() -> dict[tuple[str, str], int]:
    import ast

    over: dict[tuple[str, str], int] = {}
    for path in sorted((REPO / "effplan").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        src = path.read_text()
        if src.count("\n") > MAX_MODULE_LINES:
            over[(rel, "<module>")] = src.count("\n")
        for node in ast.walk(ast.parse(src)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                over[(rel, node.name)] = lines
            a = node.args
            named = [x for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
            if len(named) > MAX_PARAMETERS:
                over[(rel, f"{node.name}#params")] = len(named)
    return over


def test_modules_functions_and_signatures_stay_small():
    """No module over 800 lines, no function over 150 lines or with more than 15 parameters,
    except the listed, justified ones."""
    over = _over_limits()
    new = {k: v for k, v in over.items() if k not in SIZE_ALLOWED}
    assert not new, f"over the size limits (split them): {new}"
    fixed = sorted(k for k in SIZE_ALLOWED if k not in over)
    assert not fixed, f"now within the limits: remove from SIZE_ALLOWED: {fixed}"


def test_size_check_sees_a_long_function(tmp_path, monkeypatch):
    """The check itself can fail: a 151-line function and a 16-parameter one are caught."""
    pkg = tmp_path / "effplan"
    pkg.mkdir()
    body = "\n".join(["def long():"] + ["    x = 1"] * 150)
    many = "def many(" + ", ".join(f"a{i}" for i in range(16)) + "):\n    pass\n"
    (pkg / "m.py").write_text(body + "\n\n" + many)
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert _over_limits() == {("effplan/m.py", "long"): 151, ("effplan/m.py", "many#params"): 16}
