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
