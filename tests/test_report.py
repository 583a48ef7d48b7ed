"""effplan.report: parameters file, widget-metadata check, offline HTML export, CLI."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from effplan import report
from effplan.errors import ValidationError

REPO = Path(__file__).resolve().parents[1]
PNG_1x1 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
           "RU5ErkJggg==")
STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"


def _widget_nb(state: bool = True, model_id: str = "abc") -> nbformat.NotebookNode:
    out_widget = new_output("display_data", data={
        VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0},
        "text/plain": "HBox(children=(FloatSlider(value=1.0),))"})
    out_png = new_output("display_data", data={"image/png": PNG_1x1, "text/plain": "<Figure>"})
    out_tqdm = new_output("display_data", data={
        VIEW: {"model_id": "bar", "version_major": 2, "version_minor": 0},
        "text/plain": "effplan.measure: 100%|##########| 4/4"})
    nb = new_notebook(cells=[new_markdown_cell("# Title"),
                             new_code_cell("x", outputs=[out_widget, out_png, out_tqdm])])
    model = {"model_name": "HBoxModel", "model_module": "@jupyter-widgets/controls",
             "model_module_version": "2.0.0", "state": {}}
    block = {"version_major": 2, "version_minor": 0}
    if state:
        block["state"] = {"abc": model, "bar": model}
    nb.metadata["widgets"] = {STATE: block}
    return nb


def test_check_widget_metadata_accepts_valid_state_and_plain_notebooks():
    assert report.check_widget_metadata(_widget_nb()) == []
    assert report.check_widget_metadata(new_notebook(cells=[new_code_cell("1")])) == []


def test_check_widget_metadata_flags_missing_state():
    problems = report.check_widget_metadata(_widget_nb(state=False))
    assert any("'state' key is missing" in p for p in problems)


def test_check_widget_metadata_flags_dangling_view_and_bad_entries():
    nb = _widget_nb()
    del nb.metadata["widgets"][STATE]["state"]["abc"]
    nb.metadata["widgets"][STATE]["state"]["bad"] = {"model_name": "X"}
    problems = report.check_widget_metadata(nb)
    assert "cell 1: widget model abc not in the saved state" in problems
    assert "widget bad: missing model_module, model_module_version, state" in problems
    nb2 = _widget_nb()
    nb2.metadata.pop("widgets")
    assert report.check_widget_metadata(nb2) == [
        "cell 1: widget output but no metadata.widgets state saved (execute with widget state "
        "stored)"] * 2


def test_export_html_is_offline_hides_input_and_embeds_png(tmp_path):
    nb = _widget_nb()
    nb.cells[1].source = "secret_source_code_marker = 1"
    src = tmp_path / "nb.ipynb"
    nbformat.write(nb, src)
    (page,) = report.export_html(src, tmp_path / "html")
    text = page.read_text(encoding="utf-8")
    assert report.remote_scripts(text) == []
    assert not re.search(r"<script[^>]+src=[\"']https?://", text)
    assert "secret_source_code_marker" not in text  # input cells hidden
    assert f"data:image/png;base64,{PNG_1x1}" in text
    assert VIEW not in text and STATE not in text  # no widget manager needed
    assert "effplan-widget-note" in text  # the dashboard's place says what it was
    assert "effplan.measure: 100%" in text  # a progress bar keeps its text
    # The source notebook keeps its widget state (only the HTML copy is static).
    assert "widgets" in nbformat.read(src, as_version=4).metadata


def test_export_html_embed_mode_keeps_state(tmp_path):
    src = tmp_path / "nb.ipynb"
    nbformat.write(_widget_nb(), src)
    (page,) = report.export_html(src, tmp_path, widgets="embed",
                                 widget_renderer_url="embed-amd.js")
    text = page.read_text(encoding="utf-8")
    assert STATE in text and VIEW in text and "embed-amd.js" in text
    with pytest.raises(ValidationError, match="widgets"):
        report.export_html(src, tmp_path, widgets="live")


def test_load_params(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("defaults:\n  quick: true\n  months: 3\nnotebooks:\n  b.ipynb:\n    months: 6\n"
                 "  a.ipynb:\n")
    rp = report.load_params(p)
    assert rp.base_dir == tmp_path
    assert rp.for_notebook("b.ipynb") == {"quick": True, "months": 6}
    assert rp.for_notebook("a.ipynb") == {"quick": True, "months": 3}
    assert rp.for_notebook("other.ipynb") == {"quick": True, "months": 3}
    p.write_text("default:\n  quick: true\n")
    with pytest.raises(ValidationError, match="default"):
        report.load_params(p)
    p.write_text("notebooks:\n  a.ipynb: 3\n")
    with pytest.raises(ValidationError, match=r"notebooks\.a\.ipynb"):
        report.load_params(p)
    with pytest.raises(ValidationError, match="params"):
        report.load_params(tmp_path / "missing.yaml")


def test_shipped_reports_yaml_matches_the_notebooks():
    rp = report.load_params(REPO / "reports.yaml")
    names = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    assert list(rp.notebooks) == names  # every notebook, in running order
    for name in names:
        declared = report.declared_parameters(REPO / "notebooks" / name)
        unknown = set(rp.notebooks[name]) - set(declared)
        assert not unknown, f"reports.yaml sets {unknown} that {name} does not declare"


def _tiny_notebook(path: Path) -> None:
    params = new_code_cell("factor: int = 2  # multiplier\nlabel: str = 'x'  # a label")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[
        new_markdown_cell("# Tiny"), params,
        new_code_cell("from effplan.notebook import show\nimport pandas as pd\n"
                      "from matplotlib.figure import Figure\n"
                      "fig = Figure(); fig.add_subplot().plot([0, 1], [0, factor])\n"
                      "show(pd.DataFrame({'label': [label], 'value': [factor * 21]}))\nshow(fig)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cli_runs_and_exports_a_notebook(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])))
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _tiny_notebook(nbdir / "tiny.ipynb")
    (tmp_path / "r.yaml").write_text("defaults:\n  factor: 3\n  undeclared: 1\n")
    rc = report.main(["--params", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "out"),
                      "--notebooks-dir", str(nbdir)])
    assert rc == 0, capsys.readouterr().err
    executed = nbformat.read(tmp_path / "out" / "tiny.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "factor = 3" in injected[0].source
    assert "undeclared" not in injected[0].source  # only declared parameters are passed
    html = (tmp_path / "out" / "tiny.html").read_text(encoding="utf-8")
    assert re.search(r"<td[^>]*>63</td>", html)  # 3 * 21, the parameter reached the kernel
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) == 1
    assert report.remote_scripts(html) == []
    assert "from effplan.notebook import show" not in html


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_failing_notebook_is_reported_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    nb = new_notebook(cells=[new_code_cell("raise ValueError('boom')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "bad.ipynb")
    from effplan.errors import EffplanError

    with pytest.raises(EffplanError, match=r"bad.ipynb failed .*ValueError: boom"):
        report.run_notebooks(["bad.ipynb"], notebooks_dir=tmp_path, out_dir=tmp_path / "out",
                             cwd=tmp_path)
    assert (tmp_path / "out" / "bad.ipynb").is_file()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_report_runs_every_notebook_and_indexes_a_failure(tmp_path, monkeypatch, capsys):
    """`make report` with the second of three notebooks failing: the third still runs, every
    HTML page is written (the failed one shows how far it got), index.html lists the three with
    their status and the failure's cell and error, and the exit status is 1."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])))
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    for name in ("a_first.ipynb", "c_third.ipynb"):
        _tiny_notebook(nbdir / name)
    bad = new_notebook(cells=[new_markdown_cell("# Bad"), new_code_cell("x = 41 + 1"),
                              new_code_cell("raise ValueError(f'no demo traffic: {x}')")])
    bad.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(bad, nbdir / "b_second.ipynb")
    out = tmp_path / "out"
    rc = report.main(["--out", str(out), "--notebooks-dir", str(nbdir)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "FAILED   " in err and "b_second.ipynb: cell 2: ValueError: no demo traffic: 42" in err
    assert "1 of 3 notebook(s) FAILED (b_second.ipynb)" in err
    for stem in ("a_first", "b_second", "c_third"):
        assert (out / f"{stem}.html").is_file()
    assert re.search(r"<td[^>]*>42</td>", (out / "c_third.html").read_text(encoding="utf-8"))
    index = (out / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r'<tr class="(\w+)" data-notebook="([^"]+)" data-status="\w+"><td>[^<]+</td>'
                      r'<td><a href="([^"]+)">[^<]+</a></td><td[^>]*>\w+</td>'
                      r'<td class="error">([^<]*)</td></tr>', index)
    assert rows == [("ok", "a_first.ipynb", "a_first.html", ""),
                    ("failed", "b_second.ipynb", "b_second.html",
                     "cell 2: ValueError: no demo traffic: 42"),
                    ("ok", "c_third.ipynb", "c_third.html", "")]
    assert 'data-failed="1"' in index and "3 notebook(s): 2 ok, 1 failed" in index
    assert report.remote_scripts(index) == []
